/*
 * Description: the contract of include/kvgrid.h, function by function, held by every kind
 * of grid an engine can open through it: DRAM only, DRAM + NVMe (real files under
 * $KVG_TEST_TMP, O_DIRECT as the grid opens them) and a real kvgridd on an ephemeral
 * loopback port (cfg.servers).  Each check is one documented behaviour, written once as a
 * function of a grid fixture and run on every kind, so that a local/remote difference shows
 * as a named failure:
 *
 *   contract: <check> on <kind>: <what>: expected ..., got ...
 *
 * Every (check, kind) runs in a child process of its own under a time limit, so that a crash
 * (a NULL err on a failing open, say) is reported by name and the other checks still run.
 * The server is started once, with PR_SET_PDEATHSIG so that it dies with this program on
 * any exit path, and stopped by atexit and fatal-signal handlers as well.
 * CONTRACT_ONLY=substring runs the checks whose name holds it; CONTRACT_KIND=dram|nvme|remote
 * one kind.  Exit 0: every check held on every kind; 1: a check failed; 77: kvgridd is not
 * built (the local kinds still ran and passed).
 * Where the header leaves a behaviour open, the check asserts what it does say, and a
 * comment starting "Contract:" says what should be written down.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvgrid.h"
#include "t.h"
#include "t_grid.h"
#include "t_server.h"

#define BT	      16	   /* block_tokens of every fixture */
#define BLK	      32768	   /* kvg_config_block_bytes() of the fixtures' layout */
#define VALUE_MAX     (256u << 10) /* cfg.max_value_bytes of every fixture */
#define CHECK_LIMIT_S 30
#define EXIT_CONTRACT 42 /* a child whose check failed (1 is a sanitizer's) */

enum kind { K_DRAM, K_NVME, K_REMOTE, K_COUNT };
static const char *const kind_names[K_COUNT] = {"dram", "nvme", "remote"};

/* ---- the fixture ------------------------------------------------------------------------ */

#define FX_MAX_ALLOCS 256
#define FX_MAX_PEERS  8

struct fx {
	enum kind kind;
	struct kvg_config cfg; /* what g was opened with */
	kvg_grid *g;
	uint32_t seed; /* token and key seed: unique per check and kind (remote shares a server) */
	void *allocs[FX_MAX_ALLOCS];
	int nallocs;
	kvg_grid *peers[FX_MAX_PEERS];
	int npeers;
	char dirs[FX_MAX_PEERS][4096];
	int ndirs;
};

static char base_tmp[4096];    /* this run's scratch: $KVG_TEST_TMP/test_contract.PID */
static struct t_server server; /* kvgridd of the remote kind */
static pid_t main_pid;
static const char *cur_check = "", *cur_kind = "";
static int cur_failed;
static int gate_open, gate_entered; /* blocking callbacks (atomics) */

static void failf(int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "contract: %s on %s: %s (test_contract.c:%d)\n", cur_check, cur_kind, msg,
		line);
	cur_failed++;
}

#define EXPECT(c, ...)                                                                             \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			failf(__LINE__, __VA_ARGS__);                                              \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define EXPECT_EQ(what, got, want)                                                                 \
	do {                                                                                       \
		long long _g = (long long)(got), _w = (long long)(want);                           \
		if (_g != _w) {                                                                    \
			failf(__LINE__, "%s: expected %lld, got %lld", what, _w, _g);              \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define EXPECT_RC(what, got, want)                                                                 \
	do {                                                                                       \
		int _g = (got), _w = (want);                                                       \
		if (_g != _w) {                                                                    \
			failf(__LINE__, "%s: expected %d (%s), got %d (%s)", what, _w,             \
			      kvg_strerror(_w), _g, kvg_strerror(_g));                             \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* A zeroed 4096-aligned buffer of len bytes, freed after the check. */
static void *fx_buf(struct fx *f, size_t len)
{
	void *p = NULL;
	if (f->nallocs == FX_MAX_ALLOCS || posix_memalign(&p, 4096, len ? len : 1)) {
		fprintf(stderr, "contract: out of test buffers\n");
		exit(2);
	}
	memset(p, 0, len ? len : 1);
	f->allocs[f->nallocs++] = p;
	return p;
}

/* A fresh scratch directory, removed after the check. */
static const char *fx_dir(struct fx *f)
{
	if (f->ndirs == FX_MAX_PEERS) {
		fprintf(stderr, "contract: out of scratch directories\n");
		exit(2);
	}
	char *d = f->dirs[f->ndirs++];
	snprintf(d, 4096, "%s/%s-%s-XXXXXX", base_tmp, cur_check, kind_names[f->kind]);
	if (!mkdtemp(d)) {
		perror("mkdtemp");
		exit(2);
	}
	return d;
}

/* The configuration of a grid of kind k: the t_grid.h layout (4 layers x 2 kv heads x 64
 * dims of bf16, 16 tokens: 32 KiB blocks), LRU, 16 MiB of DRAM in 64 KiB chunks; NVMe
 * 64 MiB in 4 MiB segments under a fresh directory; remote: the server of this run. */
static void fx_config(struct fx *f, struct kvg_config *c)
{
	kvg_config_init(c);
	snprintf(c->model_id, sizeof(c->model_id), "test/contract-model");
	snprintf(c->tenant, sizeof(c->tenant), "alice");
	c->dtype = KVG_DTYPE_BF16;
	c->layers = 4;
	c->kv_heads = 2;
	c->head_dim = 64;
	c->block_tokens = BT;
	c->chunk_bytes = 64 << 10;
	c->hugepages = 0;
	c->workers = 2;
	c->req_max = 64;
	c->log_level = 0;
	c->max_value_bytes = VALUE_MAX;
	snprintf(c->policy, sizeof(c->policy), "lru");
	c->dram_bytes = 16ull << 20;
	if (f->kind == K_NVME) {
		snprintf(c->dir, sizeof(c->dir), "%s", fx_dir(f));
		c->nvme_bytes = 64ull << 20;
		c->segment_bytes = 4ull << 20;
		c->io_backend = KVG_IO_AUTO;
		c->queue_depth = 16;
	}
	if (f->kind == K_REMOTE) {
		snprintf(c->servers, sizeof(c->servers), "127.0.0.1:%d", server.port);
		c->timeout_ms = 3000;
	}
}

/* Opens a grid; prints the reason on failure. */
static int fx_open_cfg(const struct kvg_config *c, kvg_grid **g)
{
	char err[512] = "";
	*g = NULL;
	int rc = kvg_open(c, g, err, sizeof(err));
	if (rc)
		fprintf(stderr, "contract: %s on %s: kvg_open: %d (%s): %s\n", cur_check, cur_kind,
			rc, kvg_strerror(rc), err);
	return rc;
}

/* A second grid, closed after the check: c is the kind's config, changed by the caller. */
static kvg_grid *fx_peer(struct fx *f, const struct kvg_config *c)
{
	kvg_grid *g = NULL;
	if (f->npeers == FX_MAX_PEERS || fx_open_cfg(c, &g))
		return NULL;
	f->peers[f->npeers++] = g;
	return g;
}

/* A DRAM-only grid with the namespace of c (model, layout, tenant, hash): to derive keys. */
static kvg_grid *fx_keygrid(struct fx *f, const struct kvg_config *c)
{
	struct kvg_config k = *c;
	k.servers[0] = 0;
	k.dir[0] = 0;
	k.dram_bytes = 1ull << 20;
	return fx_peer(f, &k);
}

/* Closes f->g and opens it again with f->cfg (same NVMe directory, same server). */
static int fx_reopen(struct fx *f)
{
	kvg_close(f->g);
	f->g = NULL;
	return fx_open_cfg(&f->cfg, &f->g);
}

static void fx_teardown(struct fx *f)
{
	__atomic_store_n(&gate_open, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < f->npeers; i++)
		kvg_close(f->peers[i]);
	kvg_close(f->g);
	for (int i = 0; i < f->nallocs; i++)
		free(f->allocs[i]);
	for (int i = 0; i < f->ndirs; i++)
		t_rmdir(f->dirs[i]);
}

/* ---- block helpers ---------------------------------------------------------------------- */

/* Keys of the chain of n blocks of the token sequence seed, in g's namespace. */
static size_t chain(kvg_grid *g, uint32_t seed, size_t n, kvg_key *keys)
{
	uint32_t tok[64 * BT];
	if (n > 64)
		return 0;
	t_tokens(tok, n * BT, seed);
	return kvg_block_keys(g, tok, n * BT, NULL, keys, n);
}

/* n distinct raw keys of this check (a key that no other check or kind uses). */
static void raw_keys(struct fx *f, uint32_t tag, size_t n, kvg_key *keys)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t raw[3] = {f->seed, tag, (uint32_t)i};
		kvg_raw_key(f->g, raw, sizeof(raw), &keys[i]);
	}
}

static int gate_wait(void)
{
	__atomic_add_fetch(&gate_entered, 1, __ATOMIC_SEQ_CST);
	uint64_t t0 = t_now_ms();
	while (!__atomic_load_n(&gate_open, __ATOMIC_SEQ_CST) && t_now_ms() - t0 < 10000)
		usleep(1000);
	return 0;
}

/* Waits up to 5 s until *counter reaches want; returns its value. */
static int wait_count(int *counter, int want)
{
	uint64_t t0 = t_now_ms();
	while (__atomic_load_n(counter, __ATOMIC_SEQ_CST) < want && t_now_ms() - t0 < 5000)
		usleep(1000);
	return __atomic_load_n(counter, __ATOMIC_SEQ_CST);
}

static uint64_t hits_of(const struct kvg_stats *s)
{
	return s->tier[KVG_TIER_DRAM].hits + s->tier[KVG_TIER_NVME].hits;
}

static uint64_t misses_of(const struct kvg_stats *s)
{
	return s->tier[KVG_TIER_DRAM].misses + s->tier[KVG_TIER_NVME].misses;
}

static int valid_tier(uint8_t t)
{
	return t == KVG_TIER_DRAM || t == KVG_TIER_NVME;
}

/* The tier a freshly stored block must be reported in: a local store lands in DRAM; a
 * remote grid's blocks are where its servers keep them (either tier). */
static int fresh_tier_ok(const struct fx *f, uint8_t t)
{
	return f->kind == K_REMOTE ? valid_tier(t) : t == KVG_TIER_DRAM;
}

/* ---- keys ------------------------------------------------------------------------------- */

/* kvg_block_keys: one key per full block, the same for the same tokens, chained through
 * parent, and a changed token changes its block's key and every later one. */
static void check_block_keys_chain(struct fx *f)
{
	uint32_t tok[5 * BT + 7];
	kvg_key a[8], b[8], sentinel;
	t_tokens(tok, 5 * BT + 7, f->seed);
	memset(&sentinel, 0xa5, sizeof(sentinel));
	EXPECT_EQ("keys of 5 blocks and 7 tokens",
		  kvg_block_keys(f->g, tok, 5 * BT + 7, NULL, a, 8), 5);
	EXPECT_EQ("the same tokens again", kvg_block_keys(f->g, tok, 5 * BT + 7, NULL, b, 8), 5);
	EXPECT(!memcmp(a, b, 5 * sizeof(kvg_key)),
	       "the same tokens: expected the same keys, got others");
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			EXPECT(memcmp(&a[i], &a[j], sizeof(kvg_key)),
			       "keys %d and %d: expected distinct, got equal", i, j);
	b[2] = sentinel;
	EXPECT_EQ("max_keys 2", kvg_block_keys(f->g, tok, 5 * BT, NULL, b, 2), 2);
	EXPECT(!memcmp(&b[2], &sentinel, sizeof(kvg_key)),
	       "max_keys 2: expected keys[2] untouched, got written");
	EXPECT_EQ("fewer tokens than a block", kvg_block_keys(f->g, tok, BT - 1, NULL, b, 8), 0);
	EXPECT_EQ("continued from parent key[1]",
		  kvg_block_keys(f->g, tok + 2 * BT, 3 * BT, &a[1], b, 8), 3);
	EXPECT(!memcmp(b, &a[2], 3 * sizeof(kvg_key)),
	       "continued from parent: expected keys 2..4 of the whole chain, got others");
	tok[2 * BT + 5] ^= 1; /* a token of block 2 */
	EXPECT_EQ("keys after a changed token", kvg_block_keys(f->g, tok, 5 * BT, NULL, b, 8), 5);
	for (int i = 0; i < 5; i++)
		EXPECT(!memcmp(&a[i], &b[i], sizeof(kvg_key)) == (i < 2),
		       "a token of block 2 changed: expected key %d %s, got %s", i,
		       i < 2 ? "unchanged" : "changed", i < 2 ? "changed" : "unchanged");
}

/* kvg_block_keys and kvg_raw_key are deterministic across grids: a grid of this kind and a
 * DRAM grid of the same namespace derive the same keys (doc/KEYS.md). */
static void check_keys_same_across_kinds(struct fx *f)
{
	kvg_grid *ref = fx_keygrid(f, &f->cfg);
	EXPECT(ref, "a DRAM grid of the same namespace: expected it to open, got an error");
	kvg_key a[4], b[4], ra, rb;
	EXPECT_EQ("keys on this kind", chain(f->g, f->seed, 4, a), 4);
	EXPECT_EQ("keys on the DRAM grid", chain(ref, f->seed, 4, b), 4);
	EXPECT(!memcmp(a, b, sizeof(a)), "block keys of one namespace: expected equal on this kind "
					 "and a DRAM grid, got different");
	kvg_raw_key(f->g, "engine-hash-1", 13, &ra);
	kvg_raw_key(ref, "engine-hash-1", 13, &rb);
	EXPECT(!memcmp(&ra, &rb, sizeof(ra)), "raw keys of one namespace: expected equal on this "
					      "kind and a DRAM grid, got different");
}

/* kvg_raw_key: the same bytes give the same key; other bytes, another length or another
 * namespace give another; a raw key never equals a block key of the same bytes. */
static void check_raw_key(struct fx *f)
{
	kvg_key a, b, c, d, z1, z2;
	kvg_raw_key(f->g, "vllm:block:42", 13, &a);
	kvg_raw_key(f->g, "vllm:block:42", 13, &b);
	EXPECT(!memcmp(&a, &b, sizeof(a)), "the same bytes: expected the same key, got another");
	kvg_raw_key(f->g, "vllm:block:43", 13, &c);
	EXPECT(memcmp(&a, &c, sizeof(a)), "other bytes: expected another key, got the same");
	kvg_raw_key(f->g, "vllm:block:42", 12, &c);
	EXPECT(memcmp(&a, &c, sizeof(a)), "a shorter length: expected another key, got the same");
	/* Contract: whether raw may be NULL when len is 0 is not written (key_raw then passes
	 * NULL to memcpy, which UBSan reports); only "" is used here. */
	kvg_raw_key(f->g, "", 0, &z1);
	kvg_raw_key(f->g, "", 0, &z2);
	EXPECT(!memcmp(&z1, &z2, sizeof(z1)), "zero bytes twice: expected one key, got two");
	EXPECT(memcmp(&z1, &a, sizeof(z1)),
	       "zero bytes: expected another key than 13 bytes', got the same");
	uint32_t tok[BT];
	t_tokens(tok, BT, f->seed);
	EXPECT_EQ("block key", kvg_block_keys(f->g, tok, BT, NULL, &d, 1), 1);
	kvg_raw_key(f->g, tok, sizeof(tok), &c);
	EXPECT(memcmp(&c, &d, sizeof(c)),
	       "raw key of a block's token bytes: expected other than the block key, got equal");
	struct kvg_config other = f->cfg;
	snprintf(other.tenant, sizeof(other.tenant), "bob");
	kvg_grid *bob = fx_keygrid(f, &other);
	EXPECT(bob, "a grid of tenant bob: expected it to open, got an error");
	kvg_raw_key(bob, "vllm:block:42", 13, &c);
	EXPECT(memcmp(&a, &c, sizeof(a)), "another tenant: expected another raw key, got the same");
}

/* kvg_key_hex: 64 lowercase hex digits of the bytes in order, then a NUL; nothing after. */
static void check_key_hex(struct fx *f)
{
	kvg_key k;
	char hex[80], want[65];
	for (int i = 0; i < KVG_KEY_BYTES; i++)
		k.bytes[i] = (uint8_t)(i * 37 + 0x0f);
	for (int i = 0; i < KVG_KEY_BYTES; i++)
		snprintf(want + 2 * i, 3, "%02x", k.bytes[i]);
	memset(hex, 'Z', sizeof(hex));
	kvg_key_hex(&k, hex);
	EXPECT(hex[64] == 0, "hex[64]: expected NUL, got 0x%02x", (unsigned char)hex[64]);
	EXPECT(!strcmp(hex, want), "hex: expected %s, got %.64s", want, hex);
	EXPECT(hex[65] == 'Z', "hex[65]: expected untouched (65 bytes), got written");
	/* and of a key of this grid */
	kvg_raw_key(f->g, "x", 1, &k);
	kvg_key_hex(&k, hex);
	for (int i = 0; i < 64; i++)
		EXPECT((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'),
		       "hex digit %d: expected [0-9a-f], got '%c'", i, hex[i]);
}

/* kvg_strerror: a static, non-empty, distinct name for 0, every KVG_E* code and -errno. */
static void check_strerror(struct fx *f)
{
	(void)f;
	const char *unknown = kvg_strerror(KVG_EBASE - 1000);
	EXPECT(unknown && *unknown, "an unknown code: expected a string, got none");
	for (int e = KVG_ELAST; e <= 0; e = e == KVG_EBASE ? 0 : e + 1) {
		const char *s = kvg_strerror(e);
		EXPECT(s && *s, "kvg_strerror(%d): expected a name, got none", e);
		EXPECT(e == 0 || strcmp(s, unknown),
		       "kvg_strerror(%d): expected its own name, got the unknown one '%s'", e, s);
		EXPECT(kvg_strerror(e) == s,
		       "kvg_strerror(%d): expected a static string, got another pointer each call",
		       e);
		for (int o = KVG_ELAST; o <= KVG_EBASE; o++)
			EXPECT(o == e || strcmp(s, kvg_strerror(o)),
			       "kvg_strerror(%d) and (%d): expected distinct, got '%s'", e, o, s);
		if (e == 0)
			break;
	}
	int errs[] = {-ENOENT, -EINVAL, -ENOMEM, -EIO, -ECONNREFUSED};
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		const char *s = kvg_strerror(errs[i]);
		EXPECT(s && *s && strcmp(s, unknown),
		       "kvg_strerror(%d): expected the errno's name, got '%s'", errs[i],
		       s ? s : "(null)");
		for (int o = KVG_ELAST; o <= KVG_EBASE; o++)
			EXPECT(strcmp(s, kvg_strerror(o)),
			       "kvg_strerror(%d): expected other than KVG code %d's name, got '%s'",
			       errs[i], o, s);
	}
}

/* ---- configuration ---------------------------------------------------------------------- */

/* kvg_config_of: the configuration opened with, the same pointer each call, defaults
 * resolved (max_blocks derived); kvg_config_block_bytes of it is the layout's. */
static void check_config_of(struct fx *f)
{
	const struct kvg_config *c = kvg_config_of(f->g);
	EXPECT(c, "kvg_config_of: expected the configuration, got NULL");
	EXPECT(c == kvg_config_of(f->g), "kvg_config_of: expected one pointer, got two");
	EXPECT(!strcmp(c->model_id, f->cfg.model_id), "model_id: expected '%s', got '%s'",
	       f->cfg.model_id, c->model_id);
	EXPECT(!strcmp(c->tenant, f->cfg.tenant), "tenant: expected '%s', got '%s'", f->cfg.tenant,
	       c->tenant);
	EXPECT(!strcmp(c->servers, f->cfg.servers), "servers: expected '%s', got '%s'",
	       f->cfg.servers, c->servers);
	EXPECT(!strcmp(c->dir, f->cfg.dir), "dir: expected '%s', got '%s'", f->cfg.dir, c->dir);
	EXPECT_EQ("block_tokens", c->block_tokens, BT);
	EXPECT_EQ("layers", c->layers, 4);
	EXPECT_EQ("max_value_bytes", c->max_value_bytes, VALUE_MAX);
	EXPECT(c->max_blocks > 0, "max_blocks: expected resolved (> 0), got 0");
	EXPECT_EQ("kvg_config_block_bytes(kvg_config_of(g))", kvg_config_block_bytes(c), BLK);
	struct kvg_config d;
	kvg_config_init(&d);
	EXPECT_EQ("kvg_config_block_bytes of defaults (layout unset)", kvg_config_block_bytes(&d),
		  0);
	d.dtype = KVG_DTYPE_FP32;
	d.layers = 2, d.kv_heads = 3, d.head_dim = 5, d.block_tokens = 32;
	EXPECT_EQ("kvg_config_block_bytes of 2 x 2 x 32 x 3 x 5 fp32", kvg_config_block_bytes(&d),
		  2 * 2 * 32 * 3 * 5 * 4);
}

/* Writes the kind's settings as "name = value" lines (with comments) to path. */
static int write_settings(struct fx *f, const char *path, const char *extra)
{
	FILE *fp = fopen(path, "w");
	if (!fp)
		return -1;
	fprintf(fp, "# kvgrid settings of the %s kind\nmodel_id = %s\ntenant = %s\n",
		kind_names[f->kind], f->cfg.model_id, f->cfg.tenant);
	fprintf(
	    fp,
	    "dtype = bf16\nlayers = 4\nkv_heads = 2\nhead_dim = 64 # dims\nblock_tokens = 16\n");
	fprintf(fp, "chunk_bytes = 65536\nhugepages = 0\nlog_level = 0\npolicy = lru\n\n");
	fprintf(fp, "dram_bytes = 16M\nmax_value_bytes = 256K\n");
	if (f->kind == K_NVME)
		fprintf(fp, "dir = %s\nnvme_bytes = 64M\nsegment_bytes = 4M\n", f->cfg.dir);
	if (f->kind == K_REMOTE)
		fprintf(fp, "servers = %s\ntimeout_ms = 3000\n", f->cfg.servers);
	fprintf(fp, "%s", extra);
	return fclose(fp);
}

/* The number of the first line of path holding needle (1-based), or 0. */
static int line_of(const char *path, const char *needle)
{
	char line[8192];
	int n = 0, found = 0;
	FILE *fp = fopen(path, "r");
	while (fp && !found && fgets(line, sizeof(line), fp))
		if (n++, strstr(line, needle))
			found = n;
	if (fp)
		fclose(fp);
	return found;
}

static int same_config(const struct kvg_config *a, const struct kvg_config *b)
{
	return !strcmp(a->model_id, b->model_id) && !strcmp(a->tenant, b->tenant) &&
	       a->dtype == b->dtype && a->layers == b->layers && a->kv_heads == b->kv_heads &&
	       a->head_dim == b->head_dim && a->block_tokens == b->block_tokens &&
	       a->dram_bytes == b->dram_bytes && a->chunk_bytes == b->chunk_bytes &&
	       !strcmp(a->dir, b->dir) && a->nvme_bytes == b->nvme_bytes &&
	       a->segment_bytes == b->segment_bytes && !strcmp(a->servers, b->servers) &&
	       a->max_value_bytes == b->max_value_bytes && !strcmp(a->policy, b->policy);
}

/* kvg_config_set: the kind's settings by name build its configuration, which opens;
 * an unknown name, a bad size or an out-of-range value is KVG_ECONFIG with a reason. */
static void check_config_set(struct fx *f)
{
	struct kvg_config c;
	char err[256];
	kvg_config_init(&c);
	const char *set[][2] = {
	    {"model_id", f->cfg.model_id},
	    {"tenant", f->cfg.tenant},
	    {"dtype", "bf16"},
	    {"layers", "4"},
	    {"kv_heads", "2"},
	    {"head_dim", "64"},
	    {"block_tokens", "16"},
	    {"chunk_bytes", "65536"},
	    {"hugepages", "0"},
	    {"log_level", "0"},
	    {"policy", "lru"},
	    {"dram_bytes", "16M"},
	    {"max_value_bytes", "256K"},
	    {"dir", f->cfg.dir},
	    {"nvme_bytes", f->kind == K_NVME ? "64M" : "0"},
	    {"segment_bytes", f->kind == K_NVME ? "4M" : "256M"},
	    {"servers", f->cfg.servers},
	};
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
		err[0] = 0;
		int rc = kvg_config_set(&c, set[i][0], set[i][1], err, sizeof(err));
		EXPECT(rc == 0, "kvg_config_set(%s, %s): expected 0, got %d (%s): %s", set[i][0],
		       set[i][1], rc, kvg_strerror(rc), err);
	}
	c.segment_bytes = f->cfg.segment_bytes;
	c.nvme_bytes = f->cfg.nvme_bytes;
	EXPECT(same_config(&c, &f->cfg),
	       "settings by name: expected the kind's configuration, got another");
	if (f->kind == K_NVME) { /* one directory is one grid's at a time */
		kvg_close(f->g);
		f->g = NULL;
	}
	EXPECT(fx_peer(f, &c),
	       "kvg_open of the configuration set by name: expected 0, got an error");
	struct {
		const char *name, *value;
	} bad[] = {{"no_such_setting", "1"}, {"dram_bytes", "16Q"},  {"dram_bytes", "-1"},
		   {"block_tokens", "8"},    {"hugepages", "maybe"}, {"dtype", "fp7"}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kvg_config keep = c;
		err[0] = 0;
		EXPECT_RC("kvg_config_set of a bad setting",
			  kvg_config_set(&c, bad[i].name, bad[i].value, err, sizeof(err)),
			  KVG_ECONFIG);
		EXPECT(err[0], "kvg_config_set(%s, %s): expected a reason in err, got none",
		       bad[i].name, bad[i].value);
		EXPECT(!strchr(err, '\n'),
		       "kvg_config_set(%s, %s): expected a one-line reason, got '%s'", bad[i].name,
		       bad[i].value, err);
		EXPECT_RC("kvg_config_set of a bad setting, err NULL",
			  kvg_config_set(&c, bad[i].name, bad[i].value, NULL, 0), KVG_ECONFIG);
		EXPECT(same_config(&c, &keep),
		       "kvg_config_set(%s, %s) refused: expected the configuration unchanged, got "
		       "changed",
		       bad[i].name, bad[i].value);
	}
}

/* kvg_config_load: a file of the kind's settings (with comments and blank lines) loads and
 * opens; a bad line is KVG_ECONFIG with "path:line: reason"; a missing file is -ENOENT. */
static void check_config_load(struct fx *f)
{
	char path[4200], err[512];
	snprintf(path, sizeof(path), "%s/settings.conf", fx_dir(f));
	EXPECT(write_settings(f, path, "") == 0, "writing %s: expected 0, got an error", path);
	struct kvg_config c;
	kvg_config_init(&c);
	err[0] = 0;
	int rc = kvg_config_load(&c, path, err, sizeof(err));
	EXPECT(rc == 0, "kvg_config_load: expected 0, got %d (%s): %s", rc, kvg_strerror(rc), err);
	EXPECT(same_config(&c, &f->cfg),
	       "settings from a file: expected the kind's configuration, got another");
	if (f->kind == K_NVME) { /* one directory is one grid's at a time */
		kvg_close(f->g);
		f->g = NULL;
	}
	EXPECT(fx_peer(f, &c), "kvg_open of the configuration loaded: expected 0, got an error");
	EXPECT(write_settings(f, path, "layers = 4\nblock_tokens = seven\n") == 0, "writing %s",
	       path);
	int bad_line = line_of(path, "seven");
	kvg_config_init(&c);
	err[0] = 0;
	EXPECT_RC("kvg_config_load of a bad line", kvg_config_load(&c, path, err, sizeof(err)),
		  KVG_ECONFIG);
	char want[4300];
	snprintf(want, sizeof(want), "%s:%d: ", path, bad_line);
	EXPECT(!strncmp(err, want, strlen(want)), "err: expected to start '%s', got '%s'", want,
	       err);
	EXPECT_RC("kvg_config_load of a bad line, err NULL", kvg_config_load(&c, path, NULL, 0),
		  KVG_ECONFIG);
	snprintf(path + strlen(path), sizeof(path) - strlen(path), ".missing");
	EXPECT_RC("kvg_config_load of a missing file", kvg_config_load(&c, path, err, sizeof(err)),
		  -ENOENT);
}

/* kvg_parse_size: digits with K/M/G/T (and KiB...) in powers of 1024; anything else,
 * signs and overflow included, is KVG_ECONFIG. */
static void check_parse_size(struct fx *f)
{
	(void)f;
	struct {
		const char *s;
		uint64_t v;
	} ok[] = {{"0", 0},	    {"123", 123},	  {"4K", 4096},
		  {"1M", 1 << 20},  {"2GiB", 2ull << 30}, {"1T", 1ull << 40},
		  {"16M", 16 << 20}};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint64_t v = 7;
		int rc = kvg_parse_size(ok[i].s, &v);
		EXPECT(rc == 0 && v == ok[i].v,
		       "kvg_parse_size(\"%s\"): expected 0 and %llu, got %d and %llu", ok[i].s,
		       (unsigned long long)ok[i].v, rc, (unsigned long long)v);
	}
	const char *bad[] = {
	    "", "-1", "+1", "abc", "12Q", "1.5G", "99999999999999999999", "17179869184T"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 0;
		EXPECT(kvg_parse_size(bad[i], &v) == KVG_ECONFIG,
		       "kvg_parse_size(\"%s\"): expected KVG_ECONFIG, got %d", bad[i],
		       kvg_parse_size(bad[i], &v));
	}
}

/* ---- open and close --------------------------------------------------------------------- */

/* A configuration of this kind that validation refuses: the kind's own setting, wrong. */
static void bad_config(struct fx *f, struct kvg_config *c)
{
	*c = f->cfg;
	if (f->kind == K_DRAM)
		c->chunk_bytes = 1000;
	else if (f->kind == K_NVME)
		c->nvme_bytes = c->segment_bytes; /* fewer than two segments */
	else
		snprintf(c->servers, sizeof(c->servers), "127.0.0.1"); /* no port */
}

/* kvg_open of a bad configuration: KVG_ECONFIG with a reason in err; also with err NULL. */
static void check_open_bad_config(struct fx *f)
{
	struct kvg_config c;
	char err[256] = "";
	kvg_grid *g = NULL;
	bad_config(f, &c);
	EXPECT_RC("kvg_open of a bad configuration", kvg_open(&c, &g, err, sizeof(err)),
		  KVG_ECONFIG);
	EXPECT(err[0], "err: expected a reason, got none");
	c = f->cfg;
	c.block_tokens = 7;
	err[0] = 0;
	EXPECT_RC("kvg_open with block_tokens 7", kvg_open(&c, &g, err, sizeof(err)), KVG_ECONFIG);
	EXPECT(err[0], "err: expected a reason, got none");
	c = f->cfg;
	snprintf(c.policy, sizeof(c.policy), "no-such-policy");
	EXPECT_RC("kvg_open with an unknown policy, err NULL", kvg_open(&c, &g, NULL, 0),
		  KVG_ECONFIG);
	/* the crash-prone one last: a kind-specific bad setting with err NULL, err_len 0 */
	bad_config(f, &c);
	EXPECT_RC("kvg_open of a bad configuration, err NULL", kvg_open(&c, &g, NULL, 0),
		  KVG_ECONFIG);
}

/* A free loopback port (bound, then closed: a connect is refused). */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		if (fd >= 0)
			close(fd);
		return 1; /* port 1: nothing listens there either */
	}
	close(fd);
	return ntohs(a.sin_port);
}

/* A configuration of this kind that validates but cannot open: DRAM: none is known that
 * fails without risk (a huge arena would be touched), so an invalid one; NVMe: a directory
 * under a regular file; remote: a loopback port where nothing listens. */
static void unopenable_config(struct fx *f, struct kvg_config *c)
{
	*c = f->cfg;
	if (f->kind == K_DRAM) {
		c->dram_bytes = 1024; /* smaller than one chunk */
	} else if (f->kind == K_NVME) {
		char file[4200];
		snprintf(file, sizeof(file), "%s/plain-file", fx_dir(f));
		FILE *fp = fopen(file, "w");
		if (fp)
			fclose(fp);
		snprintf(c->dir, sizeof(c->dir), "%s/sub", file);
	} else {
		snprintf(c->servers, sizeof(c->servers), "127.0.0.1:%d", closed_port());
		c->timeout_ms = 1000;
	}
}

/* kvg_open that fails (no server, a directory it cannot create) returns an error, also
 * with err NULL and err_len 0, and never crashes. */
static void check_open_fails_err_null(struct fx *f)
{
	struct kvg_config c;
	kvg_grid *g = NULL;
	unopenable_config(f, &c);
	int rc = kvg_open(&c, &g, NULL, 0);
	if (rc == 0)
		kvg_close(g);
	EXPECT(rc < 0, "kvg_open that cannot open, err NULL: expected an error, got %d", rc);
}

/* The same open with an err buffer: an error, and its reason written (KVG_ECONFIG: always;
 * -errno: Contract: the header promises a reason for KVG_ECONFIG only). */
static void check_open_fails_reason(struct fx *f)
{
	struct kvg_config c;
	kvg_grid *g = NULL;
	char err[512] = "";
	unopenable_config(f, &c);
	int rc = kvg_open(&c, &g, err, sizeof(err));
	if (rc == 0)
		kvg_close(g);
	EXPECT(rc < 0, "kvg_open that cannot open: expected an error, got %d", rc);
	EXPECT(rc != KVG_ECONFIG || err[0], "KVG_ECONFIG: expected a reason in err, got none");
}

/* Any number of grids may be open at once: a second grid of this kind works while the
 * first is open, and after it is closed the first still works. */
static void check_two_grids(struct fx *f)
{
	struct kvg_config c;
	fx_config(f, &c); /* a new NVMe directory */
	kvg_grid *g2 = fx_peer(f, &c);
	EXPECT(g2, "a second grid: expected it to open, got an error");
	kvg_key k[2];
	raw_keys(f, 1, 2, k);
	EXPECT_RC("store in grid 1", t_store(f->g, &k[0], 1, 5000, 1), 0);
	EXPECT_RC("store in grid 2", t_store(g2, &k[1], 1, 5000, 2), 0);
	EXPECT_RC("load from grid 2", t_load(g2, &k[1], 5000, 2, NULL), 0);
	kvg_close(g2);
	f->peers[--f->npeers] = NULL;
	EXPECT_RC("load from grid 1 after grid 2 closed", t_load(f->g, &k[0], 5000, 1, NULL), 0);
}

/* kvg_close then kvg_open: the NVMe tier and a server keep what was stored (close makes
 * the NVMe index durable, DRAM-only blocks written back); a DRAM-only grid starts empty. */
static void check_reopen(struct fx *f)
{
	kvg_key k[3];
	raw_keys(f, 1, 3, k);
	EXPECT_RC("store 3 blocks", t_store(f->g, k, 3, BLK, 7), 0);
	EXPECT(fx_reopen(f) == 0, "reopen: expected 0, got an error");
	size_t hit = 99;
	uint8_t tiers[3] = {0xee, 0xee, 0xee};
	EXPECT_RC("kvg_lookup_keys after reopen", kvg_lookup_keys(f->g, k, 3, &hit, tiers), 0);
	EXPECT_EQ("hit blocks after reopen", hit, f->kind == K_DRAM ? 0 : 3);
	for (int i = 0; f->kind == K_NVME && i < 3; i++)
		EXPECT_EQ("tier after reopen (recovered from NVMe)", tiers[i], KVG_TIER_NVME);
	for (int i = 0; i < 3; i++) {
		uint8_t tier = 0xee;
		EXPECT_RC("load after reopen", t_load(f->g, &k[i], BLK, 7, &tier),
			  f->kind == K_DRAM ? KVG_ENOTFOUND : 0);
		if (f->kind == K_NVME)
			EXPECT_EQ("kvg_io.tier of a block recovered on NVMe", tier, KVG_TIER_NVME);
	}
}

/* kvg_close waits for requests in flight: the done callback of a request started just
 * before has run by the time kvg_close returns, and what it stored is kept.  Contract: the
 * header does not say whether a request must be freed before kvg_close; this one is not,
 * and its handle is not touched after the close. */
static int close_done_calls;
static void close_done(kvg_req *r, void *arg)
{
	(void)r;
	(void)arg;
	__atomic_add_fetch(&close_done_calls, 1, __ATOMIC_SEQ_CST);
}

static void check_close_waits(struct fx *f)
{
	kvg_key k[4];
	struct kvg_io ios[4];
	raw_keys(f, 1, 4, k);
	for (int i = 0; i < 4; i++) {
		ios[i] = (struct kvg_io){.key = k[i], .len = BLK, .buf = fx_buf(f, BLK)};
		t_fill(ios[i].buf, BLK, &k[i], 3);
	}
	struct kvg_req_opts o = {.done = close_done};
	kvg_req *r = NULL;
	EXPECT_RC("kvg_store", kvg_store(f->g, ios, 4, &o, &r), 0);
	kvg_close(f->g);
	f->g = NULL;
	EXPECT_EQ("done callbacks run when kvg_close returned",
		  __atomic_load_n(&close_done_calls, __ATOMIC_SEQ_CST), 1);
	for (int i = 0; i < 4; i++)
		EXPECT_RC("status of a block stored before close", ios[i].status, 0);
	if (f->kind == K_DRAM)
		return;
	EXPECT(fx_open_cfg(&f->cfg, &f->g) == 0, "reopen: expected 0, got an error");
	for (int i = 0; i < 4; i++)
		EXPECT_RC("load after close and reopen", t_load(f->g, &k[i], BLK, 3, NULL), 0);
}

/* ---- lookup ----------------------------------------------------------------------------- */

/* kvg_lookup: the longest prefix whose blocks are all present, a multiple of block_tokens;
 * a block stored after a gap does not count; a partial last block never counts. */
static void check_lookup_tokens(struct fx *f)
{
	uint32_t tok[5 * BT + 7];
	kvg_key k[5];
	t_tokens(tok, 5 * BT + 7, f->seed);
	EXPECT_EQ("keys", kvg_block_keys(f->g, tok, 5 * BT + 7, NULL, k, 5), 5);
	size_t hit = 99;
	EXPECT_RC("kvg_lookup of nothing stored", kvg_lookup(f->g, tok, 5 * BT + 7, &hit), 0);
	EXPECT_EQ("hit tokens of nothing stored", hit, 0);
	EXPECT_RC("store blocks 0..2", t_store(f->g, k, 3, BLK, 1), 0);
	EXPECT_RC("store block 4", t_store(f->g, &k[4], 1, BLK, 1), 0);
	EXPECT_RC("kvg_lookup", kvg_lookup(f->g, tok, 5 * BT + 7, &hit), 0);
	EXPECT_EQ("hit tokens with blocks 0..2 and 4 stored", hit, 3 * BT);
	EXPECT_RC("kvg_lookup of 2.5 blocks", kvg_lookup(f->g, tok, 2 * BT + 8, &hit), 0);
	EXPECT_EQ("hit tokens of 2.5 blocks", hit, 2 * BT);
	EXPECT_RC("kvg_lookup of 0 tokens", kvg_lookup(f->g, tok, 0, &hit), 0);
	EXPECT_EQ("hit tokens of 0 tokens", hit, 0);
	tok[5] ^= 1; /* another context from its first block on */
	EXPECT_RC("kvg_lookup of another context", kvg_lookup(f->g, tok, 5 * BT, &hit), 0);
	EXPECT_EQ("hit tokens of a context whose first block differs", hit, 0);
}

/* kvg_lookup_keys: the count of consecutive present keys from keys[0], and tiers[] gets the
 * tier of each of them (a fresh store: DRAM locally; a server's tier remotely). */
static void check_lookup_keys_tiers(struct fx *f)
{
	kvg_key k[5];
	raw_keys(f, 1, 5, k);
	EXPECT_RC("store keys 0, 1, 2 and 4", t_store(f->g, k, 3, 4096, 1), 0);
	EXPECT_RC("store key 4", t_store(f->g, &k[4], 1, 4096, 1), 0);
	size_t hit = 99;
	uint8_t tiers[5];
	memset(tiers, 0xee, sizeof(tiers));
	EXPECT_RC("kvg_lookup_keys", kvg_lookup_keys(f->g, k, 5, &hit, tiers), 0);
	EXPECT_EQ("hit blocks with keys 0..2 and 4 stored", hit, 3);
	for (int i = 0; i < 3; i++)
		EXPECT(fresh_tier_ok(f, tiers[i]),
		       "tiers[%d] of a hit block: expected %s, got %u%s", i,
		       f->kind == K_REMOTE ? "KVG_TIER_DRAM or KVG_TIER_NVME" : "KVG_TIER_DRAM (0)",
		       tiers[i], tiers[i] == 0xee ? " (left unwritten)" : "");
	EXPECT_RC("kvg_lookup_keys with tiers NULL", kvg_lookup_keys(f->g, k, 5, &hit, NULL), 0);
	EXPECT_EQ("hit blocks with tiers NULL", hit, 3);
	EXPECT_RC("kvg_lookup_keys from key 4", kvg_lookup_keys(f->g, &k[3], 2, &hit, NULL), 0);
	EXPECT_EQ("hit blocks from a missing key", hit, 0);
	EXPECT_RC("kvg_lookup_keys of 0 keys", kvg_lookup_keys(f->g, k, 0, &hit, tiers), 0);
	EXPECT_EQ("hit blocks of 0 keys", hit, 0);
}

/* ---- store and load --------------------------------------------------------------------- */

/* Blocks of many sizes, from unaligned buffers, come back byte for byte into larger
 * buffers, with len set to the block's length and tier to where the load found it; no byte
 * beyond the buffer is written. */
static void check_roundtrip(struct fx *f)
{
	static const size_t sizes[] = {1,     7,     4095,   4096, 4097,
				       65535, 65536, 100003, BLK,  VALUE_MAX};
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	kvg_key k[N];
	struct kvg_io ios[N];
	raw_keys(f, 1, N, k);
	for (size_t i = 0; i < N; i++) {
		uint8_t *b = fx_buf(f, sizes[i] + 3);
		ios[i] = (struct kvg_io){
		    .key = k[i], .len = sizes[i], .buf = b + 3, .depth = (uint32_t)i};
		t_fill(ios[i].buf, sizes[i], &k[i], 11);
	}
	EXPECT_RC("kvg_store_sync of one batch", kvg_store_sync(f->g, ios, N, 0), 0);
	for (size_t i = 0; i < N; i++)
		EXPECT_RC("store status", ios[i].status, 0);
	for (size_t i = 0; i < N; i++) {
		size_t room = sizes[i] + 100;
		uint8_t *b = fx_buf(f, room + 64 + 1);
		memset(b, 0x5c, room + 64 + 1);
		ios[i] = (struct kvg_io){.key = k[i], .len = room, .buf = b + 1, .tier = 0xee};
	}
	EXPECT_RC("kvg_load_sync of one batch", kvg_load_sync(f->g, ios, N, 0), 0);
	for (size_t i = 0; i < N; i++) {
		EXPECT_RC("load status", ios[i].status, 0);
		EXPECT_EQ("kvg_io.len after a load", ios[i].len, sizes[i]);
		EXPECT(t_verify(ios[i].buf, sizes[i], &k[i], 11),
		       "block of %zu bytes: expected the stored bytes, got others", sizes[i]);
		EXPECT(fresh_tier_ok(f, ios[i].tier), "kvg_io.tier of a hit: expected %s, got %u%s",
		       f->kind == K_REMOTE ? "KVG_TIER_DRAM or KVG_TIER_NVME" : "KVG_TIER_DRAM (0)",
		       ios[i].tier, ios[i].tier == 0xee ? " (left unwritten)" : "");
		const uint8_t *after = (const uint8_t *)ios[i].buf + sizes[i] + 100;
		for (int j = 0; j < 64; j++)
			EXPECT(after[j] == 0x5c,
			       "byte %d past the buffer: expected untouched, got written", j);
		EXPECT(((const uint8_t *)ios[i].buf)[-1] == 0x5c,
		       "the byte before the buffer: expected untouched, got written");
	}
}

/* A key never stored: kvg_load_sync returns KVG_ENOTFOUND, the block's status is
 * KVG_ENOTFOUND and its buffer is not written (a miss, never wrong KV). */
static void check_load_miss(struct fx *f)
{
	kvg_key k;
	raw_keys(f, 1, 1, &k);
	uint8_t *b = fx_buf(f, BLK);
	memset(b, 0x5c, BLK);
	struct kvg_io io = {.key = k, .buf = b, .len = BLK};
	EXPECT_RC("kvg_load_sync of a missing key", kvg_load_sync(f->g, &io, 1, 0), KVG_ENOTFOUND);
	EXPECT_RC("status of a missing key", io.status, KVG_ENOTFOUND);
	for (size_t i = 0; i < BLK; i++)
		EXPECT(b[i] == 0x5c, "buffer of a miss: expected untouched, got byte %zu written",
		       i);
}

/* A buffer one byte smaller than the block: KVG_EBUFSIZE, and nothing written past it. An
 * exact-size buffer loads.  Contract: the header does not say whether len reports the
 * block's length on KVG_EBUFSIZE (locally it does); not asserted. */
static void check_load_ebufsize(struct fx *f)
{
	kvg_key k;
	raw_keys(f, 1, 1, &k);
	EXPECT_RC("store a 10000-byte block", t_store(f->g, &k, 1, 10000, 5), 0);
	uint8_t *b = fx_buf(f, 10000 + 64);
	memset(b, 0x5c, 10000 + 64);
	struct kvg_io io = {.key = k, .buf = b, .len = 9999};
	EXPECT_RC("kvg_load_sync into 9999 bytes", kvg_load_sync(f->g, &io, 1, 0), KVG_EBUFSIZE);
	EXPECT_RC("status into 9999 bytes", io.status, KVG_EBUFSIZE);
	for (size_t i = 9999; i < 10000 + 64; i++)
		EXPECT(b[i] == 0x5c,
		       "byte %zu past a 9999-byte buffer: expected untouched, got written", i);
	io = (struct kvg_io){.key = k, .buf = b, .len = 10000};
	EXPECT_RC("kvg_load_sync into exactly 10000 bytes", kvg_load_sync(f->g, &io, 1, 0), 0);
	EXPECT_EQ("len", io.len, 10000);
	EXPECT(t_verify(b, 10000, &k, 5), "exact-size load: expected the stored bytes, got others");
}

/* A store of a key already present refreshes it and keeps its bytes. */
static void check_store_refresh(struct fx *f)
{
	kvg_key k;
	raw_keys(f, 1, 1, &k);
	EXPECT_RC("first store", t_store(f->g, &k, 1, BLK, 1), 0);
	EXPECT_RC("second store of other bytes", t_store(f->g, &k, 1, BLK, 2), 0);
	EXPECT_RC("load: the first store's bytes", t_load(f->g, &k, BLK, 1, NULL), 0);
}

/* A block larger than cfg.max_value_bytes ("largest block accepted"): KVG_ETOOBIG, and it
 * is not stored; one of exactly max_value_bytes is.  Contract: on a remote grid the limit
 * could be read as the server's; the grid's own configuration says what it accepts. */
static void check_store_too_big(struct fx *f)
{
	kvg_key k[2];
	raw_keys(f, 1, 2, k);
	EXPECT_RC("store of max_value_bytes", t_store(f->g, &k[0], 1, VALUE_MAX, 1), 0);
	struct kvg_io io = {.key = k[1], .len = VALUE_MAX + 1, .buf = fx_buf(f, VALUE_MAX + 1)};
	EXPECT_RC("kvg_store_sync of max_value_bytes + 1", kvg_store_sync(f->g, &io, 1, 0),
		  KVG_ETOOBIG);
	EXPECT_RC("status of max_value_bytes + 1", io.status, KVG_ETOOBIG);
	size_t hit = 9;
	EXPECT_RC("kvg_lookup_keys", kvg_lookup_keys(f->g, &k[1], 1, &hit, NULL), 0);
	EXPECT_EQ("hit blocks of the refused block", hit, 0);
}

/* kvg_delete returns the number removed; a deleted block misses; others stay. */
static void check_delete(struct fx *f)
{
	kvg_key k[4];
	raw_keys(f, 1, 4, k);
	EXPECT_RC("store 3", t_store(f->g, k, 3, BLK, 1), 0);
	kvg_key del[3] = {k[0], k[3], k[2]}; /* k[3] never stored */
	EXPECT_EQ("kvg_delete of 2 stored keys and 1 missing", kvg_delete(f->g, del, 3), 2);
	EXPECT_RC("load of a deleted key", t_load(f->g, &k[0], BLK, 1, NULL), KVG_ENOTFOUND);
	EXPECT_RC("load of a deleted key", t_load(f->g, &k[2], BLK, 1, NULL), KVG_ENOTFOUND);
	EXPECT_RC("load of a key not deleted", t_load(f->g, &k[1], BLK, 1, NULL), 0);
	size_t hit = 9;
	EXPECT_RC("kvg_lookup_keys", kvg_lookup_keys(f->g, k, 3, &hit, NULL), 0);
	EXPECT_EQ("hit blocks from a deleted key", hit, 0);
	EXPECT_EQ("kvg_delete again", kvg_delete(f->g, del, 3), 0);
	EXPECT_EQ("kvg_delete of 0 keys", kvg_delete(f->g, k, 0), 0);
}

/* A batch of hits and misses: the call returns the first error, each block its own status;
 * the hits load byte for byte. */
static void check_batch_status(struct fx *f)
{
	kvg_key k[4];
	raw_keys(f, 1, 4, k);
	EXPECT_RC("store keys 0 and 2", t_store(f->g, &k[0], 1, 3000, 4), 0);
	EXPECT_RC("store key 2", t_store(f->g, &k[2], 1, 3000, 4), 0);
	struct kvg_io ios[4];
	for (int i = 0; i < 4; i++)
		ios[i] = (struct kvg_io){.key = k[i], .len = 4000, .buf = fx_buf(f, 4000)};
	EXPECT_RC("kvg_load_sync of hit, miss, hit, miss", kvg_load_sync(f->g, ios, 4, 0),
		  KVG_ENOTFOUND);
	for (int i = 0; i < 4; i++)
		EXPECT_RC("status", ios[i].status, i % 2 ? KVG_ENOTFOUND : 0);
	for (int i = 0; i < 4; i += 2) {
		EXPECT_EQ("len of a hit", ios[i].len, 3000);
		EXPECT(t_verify(ios[i].buf, 3000, &k[i], 4),
		       "hit %d: expected its bytes, got others", i);
	}
}

/* Session hints: each alone is accepted and changes nothing stored or returned; both at
 * once are -EINVAL.  Contract: "A remote grid ignores them" could be read as "both" being
 * accepted there too; the header's "(both: -EINVAL)" is asserted on every kind. */
static void check_session_hints(struct fx *f)
{
	kvg_key k[2];
	raw_keys(f, 1, 2, k);
	struct kvg_io io = {.key = k[0], .len = 5000, .buf = fx_buf(f, 5000)};
	t_fill(io.buf, 5000, &k[0], 9);
	EXPECT_RC("kvg_store_sync with KVG_STORE_CONTINUES",
		  kvg_store_sync(f->g, &io, 1, KVG_STORE_CONTINUES), 0);
	io.key = k[1];
	t_fill(io.buf, 5000, &k[1], 9);
	EXPECT_RC("kvg_store_sync with KVG_STORE_LAST",
		  kvg_store_sync(f->g, &io, 1, KVG_STORE_LAST), 0);
	EXPECT_RC("kvg_store_sync with both hints",
		  kvg_store_sync(f->g, &io, 1, KVG_STORE_CONTINUES | KVG_STORE_LAST), -EINVAL);
	kvg_req *r = NULL;
	struct kvg_req_opts o = {.flags = KVG_STORE_CONTINUES | KVG_STORE_LAST};
	EXPECT_RC("kvg_store with both hints", kvg_store(f->g, &io, 1, &o, &r), -EINVAL);
	EXPECT_RC("kvg_load with both hints", kvg_load(f->g, &io, 1, &o, &r), -EINVAL);
	for (int i = 0; i < 2; i++) {
		struct kvg_io l = {.key = k[i], .len = 5000, .buf = fx_buf(f, 5000)};
		EXPECT_RC("kvg_load_sync with KVG_STORE_LAST",
			  kvg_load_sync(f->g, &l, 1, KVG_STORE_LAST), 0);
		EXPECT(t_verify(l.buf, 5000, &k[i], 9),
		       "a hinted block: expected its bytes, got others");
	}
}

/* ---- asynchronous requests -------------------------------------------------------------- */

/* kvg_store and kvg_load (opts NULL): 0 and a handle; kvg_req_wait answers 0, kvg_req_poll
 * the same after it; every block's status is 0; kvg_req_free releases. */
static void check_async_wait_poll(struct fx *f)
{
	kvg_key k[3];
	struct kvg_io ios[3];
	raw_keys(f, 1, 3, k);
	for (int i = 0; i < 3; i++) {
		ios[i] = (struct kvg_io){.key = k[i], .len = BLK, .buf = fx_buf(f, BLK)};
		t_fill(ios[i].buf, BLK, &k[i], 6);
	}
	kvg_req *r = NULL;
	EXPECT_RC("kvg_store", kvg_store(f->g, ios, 3, NULL, &r), 0);
	EXPECT(r, "kvg_store: expected a request handle, got NULL");
	EXPECT_RC("kvg_req_wait(-1) of a store", kvg_req_wait(r, -1), 0);
	EXPECT_RC("kvg_req_poll after the wait", kvg_req_poll(r), 0);
	for (int i = 0; i < 3; i++)
		EXPECT_RC("store status", ios[i].status, 0);
	kvg_req_free(r);
	for (int i = 0; i < 3; i++)
		ios[i] = (struct kvg_io){.key = k[i], .len = BLK, .buf = fx_buf(f, BLK)};
	r = NULL;
	EXPECT_RC("kvg_load", kvg_load(f->g, ios, 3, NULL, &r), 0);
	EXPECT(r, "kvg_load: expected a request handle, got NULL");
	int rc;
	uint64_t t0 = t_now_ms();
	while ((rc = kvg_req_poll(r)) == KVG_EINPROGRESS && t_now_ms() - t0 < 5000)
		usleep(200);
	EXPECT_RC("kvg_req_poll until done", rc, 0);
	EXPECT_RC("kvg_req_wait(0) when done", kvg_req_wait(r, 0), 0);
	for (int i = 0; i < 3; i++) {
		EXPECT_RC("load status", ios[i].status, 0);
		EXPECT(t_verify(ios[i].buf, BLK, &k[i], 6),
		       "async load %d: expected its bytes, got others", i);
	}
	kvg_req_free(r);
	kvg_req_free(NULL);
}

/* The done callback runs once per request, with its arg; inside it kvg_req_poll already
 * answers the final status (the first error for a load with a miss); kvg_req_free may be
 * called inside it. */
struct done_rec {
	int calls;
	int poll_in_cb;
	int free_in_cb;
};

static void done_cb(kvg_req *r, void *arg)
{
	struct done_rec *d = arg;
	d->poll_in_cb = kvg_req_poll(r);
	if (d->free_in_cb)
		kvg_req_free(r);
	__atomic_add_fetch(&d->calls, 1, __ATOMIC_SEQ_CST);
}

static void check_async_done_callback(struct fx *f)
{
	kvg_key k[2];
	raw_keys(f, 1, 2, k);
	struct kvg_io st = {.key = k[0], .len = 5000, .buf = fx_buf(f, 5000)};
	t_fill(st.buf, 5000, &k[0], 8);
	struct done_rec d1 = {0}, d2 = {0}, d3 = {.free_in_cb = 1};
	kvg_req *r = NULL;
	struct kvg_req_opts o = {.done = done_cb, .arg = &d1};
	EXPECT_RC("kvg_store with a done callback", kvg_store(f->g, &st, 1, &o, &r), 0);
	EXPECT_RC("kvg_req_wait", kvg_req_wait(r, -1), 0);
	EXPECT_EQ("done callbacks of a store, when its wait returned", d1.calls, 1);
	EXPECT_RC("kvg_req_poll inside the callback of a store", d1.poll_in_cb, 0);
	kvg_req_free(r);
	struct kvg_io ld[2];
	for (int i = 0; i < 2; i++)
		ld[i] = (struct kvg_io){.key = k[i], .len = 5000, .buf = fx_buf(f, 5000)};
	o.arg = &d2;
	EXPECT_RC("kvg_load of a hit and a miss, with a done callback",
		  kvg_load(f->g, ld, 2, &o, &r), 0);
	EXPECT_RC("kvg_req_wait", kvg_req_wait(r, -1), KVG_ENOTFOUND);
	EXPECT_EQ("done callbacks of a load", d2.calls, 1);
	EXPECT_RC("kvg_req_poll inside the callback of a load with a miss", d2.poll_in_cb,
		  KVG_ENOTFOUND);
	kvg_req_free(r);
	o.arg = &d3;
	EXPECT_RC("kvg_load with a callback that frees its request", kvg_load(f->g, ld, 1, &o, &r),
		  0);
	EXPECT_EQ("done callbacks that freed their request", wait_count(&d3.calls, 1), 1);
	EXPECT_RC("kvg_req_poll inside that callback", d3.poll_in_cb, 0);
	usleep(20000);
	EXPECT_EQ("done callbacks after a while (once only)",
		  __atomic_load_n(&d3.calls, __ATOMIC_SEQ_CST), 1);
	/* the freed request went back to the pool: a later request still runs */
	EXPECT_RC("kvg_load_sync after a request freed in its callback",
		  kvg_load_sync(f->g, ld, 1, 0), 0);
}

/* With req_max requests in flight (one, held in its done callback), kvg_store and kvg_load
 * answer KVG_EBUSY; once it completes they run again. */
static void gate_done(kvg_req *r, void *arg)
{
	(void)r;
	(void)arg;
	gate_wait();
}

static void check_async_ebusy(struct fx *f)
{
	struct kvg_config c = f->cfg;
	if (f->kind == K_NVME) {
		fx_config(f, &c); /* its own directory */
	}
	c.req_max = 1;
	kvg_grid *g = fx_peer(f, &c);
	EXPECT(g, "a grid of req_max 1: expected it to open, got an error");
	kvg_key k[2];
	raw_keys(f, 1, 2, k);
	struct kvg_io a = {.key = k[0], .len = 4096, .buf = fx_buf(f, 4096)};
	struct kvg_io b = {.key = k[1], .len = 4096, .buf = fx_buf(f, 4096)};
	struct kvg_req_opts o = {.done = gate_done};
	kvg_req *r1 = NULL, *r2 = NULL;
	__atomic_store_n(&gate_open, 0, __ATOMIC_SEQ_CST);
	EXPECT_RC("kvg_store held in its callback", kvg_store(g, &a, 1, &o, &r1), 0);
	int entered = wait_count(&gate_entered, 1);
	int busy_store = kvg_store(g, &b, 1, NULL, &r2);
	int busy_load = busy_store ? kvg_load(g, &b, 1, NULL, &r2) : 0;
	__atomic_store_n(&gate_open, 1, __ATOMIC_SEQ_CST);
	if (busy_store == 0)
		kvg_req_free(r2);
	EXPECT_RC("kvg_req_wait of the held store", kvg_req_wait(r1, -1), 0);
	kvg_req_free(r1);
	EXPECT_EQ("done callback entered", entered, 1);
	EXPECT_RC("kvg_store with req_max in flight", busy_store, KVG_EBUSY);
	EXPECT_RC("kvg_load with req_max in flight", busy_load, KVG_EBUSY);
	EXPECT_RC("kvg_store after it completed", kvg_store(g, &b, 1, NULL, &r2), 0);
	EXPECT_RC("kvg_req_wait", kvg_req_wait(r2, -1), 0);
	kvg_req_free(r2);
}

/* While a request runs (held in a layer callback), kvg_req_poll and a timed-out
 * kvg_req_wait answer KVG_EINPROGRESS; once released, kvg_req_wait answers 0. */
static int held_layers;
static void gate_layer(kvg_req *r, uint32_t layer, void *arg)
{
	(void)r;
	(void)arg;
	__atomic_add_fetch(&held_layers, 1, __ATOMIC_SEQ_CST);
	if (layer == 0)
		gate_wait();
}

static void check_async_inprogress(struct fx *f)
{
	kvg_key k;
	raw_keys(f, 1, 1, &k);
	EXPECT_RC("store", t_store(f->g, &k, 1, BLK, 2), 0);
	struct kvg_io io = {.key = k, .len = BLK, .buf = fx_buf(f, BLK)};
	struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS, .layer_done = gate_layer};
	kvg_req *r = NULL;
	__atomic_store_n(&gate_open, 0, __ATOMIC_SEQ_CST);
	EXPECT_RC("kvg_load held in its layer callback", kvg_load(f->g, &io, 1, &o, &r), 0);
	int entered = wait_count(&gate_entered, 1);
	int poll = kvg_req_poll(r), wait = kvg_req_wait(r, 20);
	__atomic_store_n(&gate_open, 1, __ATOMIC_SEQ_CST);
	int final = kvg_req_wait(r, -1);
	kvg_req_free(r);
	EXPECT_EQ("layer callback entered", entered, 1);
	EXPECT_RC("kvg_req_poll while running", poll, KVG_EINPROGRESS);
	EXPECT_RC("kvg_req_wait(20 ms) while running", wait, KVG_EINPROGRESS);
	EXPECT_RC("kvg_req_wait after release", final, 0);
	EXPECT(t_verify(io.buf, BLK, &k, 2), "loaded bytes: expected the stored ones, got others");
}

/* KVG_LOAD_LAYERS: layer_done runs once per layer, in order 0..layers-1; kvg_req_wait_layer
 * answers 0 for each; kvg_req_layers_ready is cfg.layers when done; a layer past the last
 * waits for the whole request; the bytes are exact. */
struct layer_rec {
	int calls;
	int order_ok;
	uint32_t next;
};

static void layer_cb(kvg_req *r, uint32_t layer, void *arg)
{
	(void)r;
	struct layer_rec *l = arg;
	if (layer != l->next)
		l->order_ok = 0;
	l->next = layer + 1;
	__atomic_add_fetch(&l->calls, 1, __ATOMIC_SEQ_CST);
}

static void check_layer_load(struct fx *f)
{
	kvg_key k[3];
	struct kvg_io ios[3];
	raw_keys(f, 1, 3, k);
	EXPECT_RC("store 3 blocks", t_store(f->g, k, 3, BLK, 12), 0);
	for (int i = 0; i < 3; i++)
		ios[i] = (struct kvg_io){.key = k[i], .len = BLK, .buf = fx_buf(f, BLK)};
	struct layer_rec l = {.order_ok = 1};
	struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS, .layer_done = layer_cb, .arg = &l};
	kvg_req *r = NULL;
	EXPECT_RC("kvg_load with KVG_LOAD_LAYERS", kvg_load(f->g, ios, 3, &o, &r), 0);
	for (uint32_t layer = 0; layer < 4; layer++) {
		int rc = kvg_req_wait_layer(r, layer, 5000);
		if (rc) {
			kvg_req_free(r);
			EXPECT_RC("kvg_req_wait_layer", rc, 0);
		}
	}
	int past = kvg_req_wait_layer(r, 4, 5000);
	int rc = kvg_req_wait(r, -1);
	uint32_t ready = kvg_req_layers_ready(r);
	kvg_req_free(r);
	EXPECT_RC("kvg_req_wait_layer of a layer past the last", past, 0);
	EXPECT_RC("kvg_req_wait", rc, 0);
	EXPECT_EQ("kvg_req_layers_ready when done", ready, 4);
	EXPECT_EQ("layer callbacks", l.calls, 4);
	EXPECT(l.order_ok,
	       "layer callbacks: expected layers 0, 1, 2, 3 in order, got another order");
	for (int i = 0; i < 3; i++)
		EXPECT(t_verify(ios[i].buf, BLK, &k[i], 12),
		       "block %d of a layer-wise load: expected its bytes, got others", i);
}

/* A layer-wise load with a missing block ends its layer waits with KVG_ENOTFOUND (the
 * layers of a failed block never arrive; a wait must not hang or answer 0). */
static void check_layer_load_miss(struct fx *f)
{
	kvg_key k[2];
	struct kvg_io ios[2];
	raw_keys(f, 1, 2, k);
	EXPECT_RC("store block 0", t_store(f->g, k, 1, BLK, 1), 0);
	for (int i = 0; i < 2; i++)
		ios[i] = (struct kvg_io){.key = k[i], .len = BLK, .buf = fx_buf(f, BLK)};
	struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS};
	kvg_req *r = NULL;
	EXPECT_RC("kvg_load with KVG_LOAD_LAYERS", kvg_load(f->g, ios, 2, &o, &r), 0);
	int l0 = kvg_req_wait_layer(r, 0, 5000);
	int rc = kvg_req_wait(r, 5000);
	kvg_req_free(r);
	EXPECT_RC("kvg_req_wait_layer(0) with a block missing", l0, KVG_ENOTFOUND);
	EXPECT_RC("kvg_req_wait with a block missing", rc, KVG_ENOTFOUND);
	EXPECT_RC("status of the missing block", ios[1].status, KVG_ENOTFOUND);
}

/* ---- views and fills -------------------------------------------------------------------- */

/* kvg_view_get of a block in DRAM: n > 0 pieces holding its bytes in order, *len its
 * length, counted as a DRAM hit; the bytes stay valid after a delete until release; a
 * missing key is KVG_ENOTFOUND.  On a remote grid it answers 0 (load it instead). */
static void check_view(struct fx *f)
{
	kvg_key k[2];
	raw_keys(f, 1, 2, k);
	EXPECT_RC("store a 100003-byte block", t_store(f->g, k, 1, 100003, 3), 0);
	struct iovec iov[16];
	size_t len = 0;
	kvg_view *v = NULL;
	struct kvg_stats s0, s1;
	kvg_stats_get(f->g, &s0);
	int n = kvg_view_get(f->g, &k[0], iov, 16, &len, &v);
	if (f->kind == K_REMOTE) {
		if (n > 0)
			kvg_view_release(f->g, v);
		EXPECT_EQ("kvg_view_get on a remote grid (documented: 0, load it instead)", n, 0);
		return;
	}
	kvg_stats_get(f->g, &s1);
	EXPECT(n > 0, "kvg_view_get of a block in DRAM: expected n > 0, got %d (%s)", n,
	       kvg_strerror(n));
	uint8_t *copy = fx_buf(f, 100003);
	size_t at = 0;
	for (int i = 0; i < n && at <= 100003; i++) {
		size_t take = iov[i].iov_len <= 100003 - at ? iov[i].iov_len : 100003 - at;
		memcpy(copy + at, iov[i].iov_base, take);
		at += iov[i].iov_len;
	}
	size_t pieces = at;
	int deleted = kvg_delete(f->g, &k[0], 1);
	int still = 1;
	at = 0;
	for (int i = 0; i < n && at < 100003; i++) {
		size_t take = iov[i].iov_len <= 100003 - at ? iov[i].iov_len : 100003 - at;
		if (memcmp(iov[i].iov_base, copy + at, take))
			still = 0;
		at += take;
	}
	kvg_view_release(f->g, v);
	EXPECT_EQ("view length", len, 100003);
	EXPECT_EQ("bytes in the view's pieces", pieces, 100003);
	EXPECT(t_verify(copy, 100003, &k[0], 3), "view: expected the block's bytes, got others");
	EXPECT_EQ("DRAM hits counted by a view",
		  s1.tier[KVG_TIER_DRAM].hits - s0.tier[KVG_TIER_DRAM].hits, 1);
	EXPECT_EQ("kvg_delete of a viewed block", deleted, 1);
	EXPECT(still,
	       "a view's bytes after kvg_delete: expected unchanged until release, got changed");
	EXPECT_RC("kvg_view_get of a missing key", kvg_view_get(f->g, &k[1], iov, 16, &len, &v),
		  KVG_ENOTFOUND);
	EXPECT_RC("load of the deleted block", t_load(f->g, &k[0], 100003, 3, NULL), KVG_ENOTFOUND);
	if (f->kind == K_NVME) { /* on NVMe only after a reopen: 0, "load it" */
		EXPECT_RC("store", t_store(f->g, &k[1], 1, 5000, 3), 0);
		EXPECT(fx_reopen(f) == 0, "reopen: expected 0, got an error");
		n = kvg_view_get(f->g, &k[1], iov, 16, &len, &v);
		if (n > 0)
			kvg_view_release(f->g, v);
		EXPECT_EQ("kvg_view_get of a block on NVMe only", n, 0);
	}
}

/* Fills one block through kvg_fill_begin; returns n or the error. */
static int fill_block(struct fx *f, kvg_grid *g, const kvg_key *k, size_t len, uint32_t salt,
		      struct kvg_fill *fl)
{
	struct iovec iov[32];
	int n = kvg_fill_begin(g, len, iov, 32, fl);
	if (n <= 0)
		return n;
	uint8_t *tmp = fx_buf(f, len);
	t_fill(tmp, len, k, salt);
	size_t at = 0;
	for (int i = 0; i < n && at < len; i++) {
		size_t take = iov[i].iov_len < len - at ? iov[i].iov_len : len - at;
		memcpy(iov[i].iov_base, tmp + at, take);
		at += iov[i].iov_len;
	}
	return at == len ? n : -1000000 - (int)at;
}

/* kvg_fill_begin/commit: nothing is visible before the commit; after it the block loads;
 * a commit on a present key keeps its bytes unless replace; abort leaves nothing; a block
 * over max_value_bytes is KVG_ETOOBIG.  A remote grid, or a durable or write-through one,
 * takes no fills: 0. */
static void check_fill(struct fx *f)
{
	kvg_key k[3];
	struct kvg_fill fl;
	raw_keys(f, 1, 3, k);
	int n = fill_block(f, f->g, &k[0], 100003, 1, &fl);
	if (f->kind == K_REMOTE) {
		if (n > 0)
			kvg_fill_abort(f->g, &fl);
		EXPECT_EQ("kvg_fill_begin on a remote grid (documented: 0, use kvg_store)", n, 0);
		return;
	}
	EXPECT(n > 0, "kvg_fill_begin of 100003 bytes: expected n > 0 pieces covering them, got %d",
	       n);
	size_t hit = 9;
	int lk = kvg_lookup_keys(f->g, &k[0], 1, &hit, NULL);
	int rc = kvg_fill_commit(f->g, &fl, &k[0], 0, 0, 0);
	EXPECT_RC("kvg_lookup_keys during a fill", lk, 0);
	EXPECT_EQ("hit blocks of a key being filled (before commit)", hit, 0);
	EXPECT_RC("kvg_fill_commit", rc, 0);
	EXPECT_RC("load of a filled block", t_load(f->g, &k[0], 100003, 1, NULL), 0);
	EXPECT(fill_block(f, f->g, &k[0], 100003, 2, &fl) > 0, "second fill: expected n > 0");
	EXPECT_RC("kvg_fill_commit on a present key, no replace",
		  kvg_fill_commit(f->g, &fl, &k[0], 0, 0, 0), 0);
	EXPECT_RC("load: the first fill's bytes (refresh keeps them)",
		  t_load(f->g, &k[0], 100003, 1, NULL), 0);
	EXPECT(fill_block(f, f->g, &k[0], 100003, 3, &fl) > 0, "third fill: expected n > 0");
	EXPECT_RC("kvg_fill_commit with replace", kvg_fill_commit(f->g, &fl, &k[0], 0, 0, 1), 0);
	EXPECT_RC("load: the replacing fill's bytes", t_load(f->g, &k[0], 100003, 3, NULL), 0);
	EXPECT(fill_block(f, f->g, &k[1], 5000, 1, &fl) > 0, "fill to abort: expected n > 0");
	kvg_fill_abort(f->g, &fl);
	EXPECT_RC("load of an aborted fill", t_load(f->g, &k[1], 5000, 1, NULL), KVG_ENOTFOUND);
	struct iovec iov[4];
	EXPECT_RC("kvg_fill_begin over max_value_bytes",
		  kvg_fill_begin(f->g, VALUE_MAX + 1, iov, 4, &fl), KVG_ETOOBIG);
	if (f->kind != K_NVME)
		return;
	struct kvg_config c;
	fx_config(f, &c);
	c.durability = KVG_DURABILITY_DURABLE;
	kvg_grid *g = fx_peer(f, &c);
	EXPECT(g, "a durable grid: expected it to open, got an error");
	n = kvg_fill_begin(g, 5000, iov, 4, &fl);
	if (n > 0)
		kvg_fill_abort(g, &fl);
	EXPECT_EQ("kvg_fill_begin on a durable grid", n, 0);
}

/* ---- pin, delete, prefetch -------------------------------------------------------------- */

/* kvg_pin and kvg_unpin return the number of keys pinned or unpinned: missing keys are
 * skipped.  Contract: an unpin of a present key that holds no pin is counted as 0 here
 * (nothing was unpinned); the header could say so. */
static void check_pin_count(struct fx *f)
{
	kvg_key k[2];
	raw_keys(f, 1, 2, k); /* k[1] never stored */
	EXPECT_RC("store 1", t_store(f->g, k, 1, 4096, 1), 0);
	EXPECT_EQ("kvg_pin of 2 keys, 1 stored", kvg_pin(f->g, k, 2), 1);
	EXPECT_EQ("kvg_pin again (pins nest)", kvg_pin(f->g, k, 2), 1);
	EXPECT_EQ("kvg_unpin of 2 keys, 1 stored", kvg_unpin(f->g, k, 2), 1);
	EXPECT_EQ("kvg_unpin again", kvg_unpin(f->g, k, 2), 1);
	EXPECT_EQ("kvg_unpin of a key with no pin left", kvg_unpin(f->g, k, 2), 0);
	EXPECT_EQ("kvg_pin of a missing key", kvg_pin(f->g, &k[1], 1), 0);
	EXPECT_EQ("kvg_pin of 0 keys", kvg_pin(f->g, k, 0), 0);
}

/* A pinned block is never evicted from its tier: after twice the DRAM's worth of other
 * blocks, it still loads (from DRAM) while the first unpinned block was evicted. */
static void check_pin_survives(struct fx *f)
{
	/* local DRAM: 16 MiB of 64 KiB chunks; the server's: 32 MiB of 64 KiB chunks */
	size_t fill = f->kind == K_REMOTE ? 1100 : 600, batch = 50;
	kvg_key pinned, first;
	raw_keys(f, 1, 1, &pinned);
	raw_keys(f, 2, 1, &first);
	EXPECT_RC("store the block to pin", t_store(f->g, &pinned, 1, BLK, 1), 0);
	EXPECT_EQ("kvg_pin", kvg_pin(f->g, &pinned, 1), 1);
	EXPECT_RC("store the first unpinned block", t_store(f->g, &first, 1, BLK, 1), 0);
	kvg_key *ks = fx_buf(f, sizeof(kvg_key) * fill);
	raw_keys(f, 3, fill, ks);
	int rc = 0;
	for (size_t done = 0; done < fill && !rc; done += batch)
		rc = t_store(f->g, ks + done, batch, BLK, 1);
	size_t hit = 9;
	uint8_t tier = 0xee, ptier = 0xee;
	int lk = kvg_lookup_keys(f->g, &first, 1, &hit, &tier);
	int ld = t_load(f->g, &pinned, BLK, 1, &ptier);
	int unpinned = kvg_unpin(f->g, &pinned, 1);
	/* the server outlives this check: give its DRAM back to the checks after it */
	kvg_delete(f->g, ks, fill);
	kvg_delete(f->g, &first, 1);
	kvg_delete(f->g, &pinned, 1);
	EXPECT(rc == 0, "storing blocks to fill DRAM: expected 0, got %d (%s)", rc,
	       kvg_strerror(rc));
	EXPECT_RC("kvg_lookup_keys of the first unpinned block", lk, 0);
	if (f->kind == K_NVME)
		EXPECT(hit == 1 && tier == KVG_TIER_NVME,
		       "the first unpinned block: expected demoted to NVMe, got hit %zu tier %u",
		       hit, tier);
	else
		EXPECT_EQ("hit blocks of the first unpinned block (evicted)", hit, 0);
	EXPECT_RC("load of the pinned block", ld, 0);
	EXPECT(fresh_tier_ok(f, ptier), "tier of the pinned block: expected %s, got %u",
	       f->kind == K_REMOTE ? "a tier" : "KVG_TIER_DRAM", ptier);
	EXPECT_EQ("kvg_unpin", unpinned, 1);
}

/* kvg_prefetch returns the number scheduled: 0 without both tiers (a DRAM-only grid; a
 * remote grid, whose tiers are its servers': Contract: the header could name it); with both,
 * NVMe-resident blocks are promoted to DRAM in the background. */
static void check_prefetch(struct fx *f)
{
	kvg_key k[2];
	raw_keys(f, 1, 2, k);
	EXPECT_RC("store 2", t_store(f->g, k, 2, BLK, 1), 0);
	if (f->kind != K_NVME) {
		EXPECT_EQ("kvg_prefetch without both tiers", kvg_prefetch(f->g, k, 2), 0);
		EXPECT_RC("load after kvg_prefetch", t_load(f->g, &k[0], BLK, 1, NULL), 0);
		return;
	}
	EXPECT(fx_reopen(f) == 0, "reopen: expected 0, got an error");
	size_t hit = 0;
	uint8_t tiers[2] = {0xee, 0xee};
	EXPECT_RC("kvg_lookup_keys after reopen", kvg_lookup_keys(f->g, k, 2, &hit, tiers), 0);
	EXPECT(hit == 2 && tiers[0] == KVG_TIER_NVME && tiers[1] == KVG_TIER_NVME,
	       "after reopen: expected 2 blocks on NVMe, got %zu (%u, %u)", hit, tiers[0],
	       tiers[1]);
	EXPECT_EQ("kvg_prefetch of 2 NVMe blocks", kvg_prefetch(f->g, k, 2), 2);
	uint64_t t0 = t_now_ms();
	do {
		usleep(2000);
		kvg_lookup_keys(f->g, k, 2, &hit, tiers);
	} while ((tiers[0] != KVG_TIER_DRAM || tiers[1] != KVG_TIER_DRAM) &&
		 t_now_ms() - t0 < 5000);
	EXPECT(hit == 2 && tiers[0] == KVG_TIER_DRAM && tiers[1] == KVG_TIER_DRAM,
	       "prefetched blocks: expected in DRAM within 5 s, got hit %zu tiers (%u, %u)", hit,
	       tiers[0], tiers[1]);
	EXPECT_RC("load of a prefetched block", t_load(f->g, &k[1], BLK, 1, NULL), 0);
}

/* ---- stats ------------------------------------------------------------------------------ */

/* kvg_stats_get: stores, loads, hits, misses, lookups and blocks move with the calls;
 * capacities and backends are filled. */
static void check_stats(struct fx *f)
{
	kvg_key k[4];
	raw_keys(f, 1, 4, k);
	struct kvg_stats s0, s1, s2, s3;
	kvg_stats_get(f->g, &s0);
	EXPECT_RC("store 3", t_store(f->g, k, 3, BLK, 1), 0);
	kvg_stats_get(f->g, &s1);
	EXPECT_EQ("stores after storing 3 blocks", s1.stores - s0.stores, 3);
	EXPECT_EQ("DRAM blocks after storing 3 blocks",
		  s1.tier[KVG_TIER_DRAM].blocks - s0.tier[KVG_TIER_DRAM].blocks, 3);
	EXPECT(s1.index_blocks >= 3, "index_blocks: expected >= 3, got %llu",
	       (unsigned long long)s1.index_blocks);
	for (int i = 0; i < 3; i++)
		EXPECT_RC("load", t_load(f->g, &k[i], BLK, 1, NULL), 0);
	EXPECT_RC("load of a missing key", t_load(f->g, &k[3], BLK, 1, NULL), KVG_ENOTFOUND);
	kvg_stats_get(f->g, &s2);
	EXPECT_EQ("loads after 4 loads", s2.loads - s1.loads, 4);
	EXPECT_EQ("hits after 3 hits", hits_of(&s2) - hits_of(&s1), 3);
	EXPECT_EQ("misses after 1 miss", misses_of(&s2) - misses_of(&s1), 1);
	size_t hit;
	EXPECT_RC("kvg_lookup_keys", kvg_lookup_keys(f->g, k, 4, &hit, NULL), 0);
	kvg_stats_get(f->g, &s3);
	EXPECT(s3.lookups > s2.lookups,
	       "lookups after kvg_lookup_keys: expected to move, got %llu -> %llu",
	       (unsigned long long)s2.lookups, (unsigned long long)s3.lookups);
	EXPECT(s3.tier[KVG_TIER_DRAM].backend[0], "DRAM backend name: expected one, got empty");
	EXPECT(s3.index_capacity >= s3.index_blocks, "index_capacity: expected >= index_blocks");
	if (f->kind == K_REMOTE)
		return; /* capacities are the servers' */
	EXPECT_EQ("DRAM capacity_bytes", s3.tier[KVG_TIER_DRAM].capacity_bytes, f->cfg.dram_bytes);
	EXPECT_EQ("NVMe capacity_bytes", s3.tier[KVG_TIER_NVME].capacity_bytes,
		  f->kind == K_NVME ? f->cfg.nvme_bytes : 0);
	EXPECT(!strcmp(s3.tier[KVG_TIER_DRAM].backend, "arena"),
	       "DRAM backend: expected \"arena\", got \"%s\"", s3.tier[KVG_TIER_DRAM].backend);
}

/* ---- namespaces ------------------------------------------------------------------------- */

/* Blocks stored under one tenant and model miss for another tenant or model: their keys
 * differ at every block and are not found here; where the storage is shared (an NVMe
 * directory reopened, a second client of the same server) the other namespace's kvg_lookup
 * of the same tokens is 0, while the same namespace finds them (the positive control). */
static void check_namespaces_apart(struct fx *f)
{
	uint32_t tok[3 * BT];
	kvg_key mine[3];
	t_tokens(tok, 3 * BT, f->seed);
	EXPECT_EQ("keys", kvg_block_keys(f->g, tok, 3 * BT, NULL, mine, 3), 3);
	EXPECT_RC("store 3 blocks", t_store(f->g, mine, 3, 4096, 1), 0);
	const char *what[2] = {"another tenant", "another model_id"};
	for (int w = 0; w < 2; w++) {
		struct kvg_config c = f->cfg;
		if (w == 0)
			snprintf(c.tenant, sizeof(c.tenant), "bob");
		else
			snprintf(c.model_id, sizeof(c.model_id), "test/other-model");
		kvg_grid *kg = fx_keygrid(f, &c);
		EXPECT(kg, "a key grid of %s: expected it to open, got an error", what[w]);
		kvg_key theirs[3];
		EXPECT_EQ("their keys", kvg_block_keys(kg, tok, 3 * BT, NULL, theirs, 3), 3);
		for (int i = 0; i < 3; i++)
			EXPECT(memcmp(&mine[i], &theirs[i], sizeof(kvg_key)),
			       "%s, block %d: expected another key, got the same", what[w], i);
		size_t hit = 9;
		EXPECT_RC("kvg_lookup_keys of their keys",
			  kvg_lookup_keys(f->g, theirs, 3, &hit, NULL), 0);
		EXPECT(hit == 0, "%s's keys here: expected 0 hits, got %zu", what[w], hit);
		EXPECT_RC("load of their first key", t_load(f->g, &theirs[0], 4096, 1, NULL),
			  KVG_ENOTFOUND);
		if (f->kind == K_DRAM)
			continue;
		kvg_grid *shared;
		if (f->kind == K_REMOTE) {
			shared = fx_peer(f, &c);
		} else { /* the same directory, reopened in the other namespace */
			kvg_close(f->g);
			f->g = NULL;
			shared = fx_peer(f, &c);
		}
		EXPECT(shared, "%s on the same storage: expected it to open, got an error",
		       what[w]);
		EXPECT_RC("kvg_lookup there", kvg_lookup(shared, tok, 3 * BT, &hit), 0);
		EXPECT(hit == 0, "%s on the same storage: expected 0 hit tokens, got %zu", what[w],
		       hit);
		if (f->kind == K_NVME) {
			kvg_close(shared);
			f->peers[--f->npeers] = NULL;
			EXPECT(fx_open_cfg(&f->cfg, &f->g) == 0,
			       "reopen: expected 0, got an error");
		}
	}
	struct kvg_config same = f->cfg;
	kvg_grid *s = f->kind == K_REMOTE ? fx_peer(f, &same) : f->g;
	size_t hit = 0;
	EXPECT(s, "the same namespace on the same storage: expected it to open");
	EXPECT_RC("kvg_lookup in the same namespace", kvg_lookup(s, tok, 3 * BT, &hit), 0);
	EXPECT_EQ("hit tokens in the same namespace (positive control)", hit, 3 * BT);
}

/* ---- the table -------------------------------------------------------------------------- */

struct check {
	const char *name;
	void (*fn)(struct fx *f);
};

static const struct check checks[] = {
    {"block_keys_chain", check_block_keys_chain},
    {"keys_same_across_kinds", check_keys_same_across_kinds},
    {"raw_key", check_raw_key},
    {"key_hex", check_key_hex},
    {"strerror", check_strerror},
    {"config_of", check_config_of},
    {"config_set", check_config_set},
    {"config_load", check_config_load},
    {"parse_size", check_parse_size},
    {"open_bad_config", check_open_bad_config},
    {"open_fails_err_null", check_open_fails_err_null},
    {"open_fails_reason", check_open_fails_reason},
    {"two_grids", check_two_grids},
    {"reopen", check_reopen},
    {"close_waits", check_close_waits},
    {"lookup_tokens", check_lookup_tokens},
    {"lookup_keys_tiers", check_lookup_keys_tiers},
    {"roundtrip", check_roundtrip},
    {"load_miss", check_load_miss},
    {"load_ebufsize", check_load_ebufsize},
    {"store_refresh", check_store_refresh},
    {"store_too_big", check_store_too_big},
    {"delete", check_delete},
    {"batch_status", check_batch_status},
    {"session_hints", check_session_hints},
    {"async_wait_poll", check_async_wait_poll},
    {"async_done_callback", check_async_done_callback},
    {"async_ebusy", check_async_ebusy},
    {"async_inprogress", check_async_inprogress},
    {"layer_load", check_layer_load},
    {"layer_load_miss", check_layer_load_miss},
    {"view", check_view},
    {"fill", check_fill},
    {"pin_count", check_pin_count},
    {"pin_survives", check_pin_survives},
    {"prefetch", check_prefetch},
    {"stats", check_stats},
    {"namespaces_apart", check_namespaces_apart},
};
#define N_CHECKS (sizeof(checks) / sizeof(checks[0]))

/* ---- the server ------------------------------------------------------------------------- */

static void server_kill(void)
{
	if (getpid() == main_pid)
		t_server_stop(&server, SIGKILL);
}

static void on_fatal(int sig)
{
	server_kill();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Starts kvgridd on an ephemeral loopback port, with small chunks (checks cross them). */
static int server_start(void)
{
	const char *extra[] = {"--dram", "32M", "--set", "chunk_bytes=65536", NULL};
	return t_server_start(&server, base_tmp, "kvgridd", extra);
}

/* ---- running ---------------------------------------------------------------------------- */

/* Runs one check on one kind in a child; 0 if it held. */
static int run_one(size_t ci, enum kind kind)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(CHECK_LIMIT_S);
		signal(SIGPIPE, SIG_IGN);
		struct fx f;
		memset(&f, 0, sizeof(f));
		f.kind = kind;
		f.seed = (uint32_t)(ci * 7919 + kind * 104729) ^ (uint32_t)main_pid << 8;
		fx_config(&f, &f.cfg);
		if (fx_open_cfg(&f.cfg, &f.g) == 0)
			checks[ci].fn(&f);
		else
			cur_failed++;
		fx_teardown(&f);
		exit(cur_failed ? EXIT_CONTRACT : 0); /* exit: LeakSanitizer checks the child */
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		fprintf(stderr,
			"contract: %s on %s: expected the check to return, got killed by signal %d "
			"(%s)\n",
			cur_check, cur_kind, WTERMSIG(st),
			WTERMSIG(st) == SIGALRM ? "over the time limit" : strsignal(WTERMSIG(st)));
	else if (WEXITSTATUS(st) != EXIT_CONTRACT)
		fprintf(
		    stderr,
		    "contract: %s on %s: expected exit 0 or %d, got exit %d (a sanitizer's report "
		    "above?)\n",
		    cur_check, cur_kind, EXIT_CONTRACT, WEXITSTATUS(st));
	return 1;
}

int main(void)
{
	main_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *base = getenv("KVG_TEST_TMP") ? getenv("KVG_TEST_TMP") : "build/tmp";
	mkdir(base, 0755);
	snprintf(base_tmp, sizeof(base_tmp), "%s/test_contract.%d", base, (int)main_pid);
	if (mkdir(base_tmp, 0755)) {
		perror(base_tmp);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGALRM};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_fatal);
	atexit(server_kill);
	const char *only = getenv("CONTRACT_ONLY"), *only_kind = getenv("CONTRACT_KIND");
	int want_remote = !only_kind || !strcmp(only_kind, "remote");
	int built = access(t_kvgridd_path(), X_OK) == 0, remote_ok = 0;
	int failed[K_COUNT] = {0}, ran[K_COUNT] = {0};
	if (want_remote && !built)
		fprintf(stderr, "contract: %s not built: the remote kind is skipped\n",
			t_kvgridd_path());
	else if (want_remote && !(remote_ok = server_start() == 0))
		failed[K_REMOTE]++; /* built, but it would not start: a failure, not a skip */
	for (size_t ci = 0; ci < N_CHECKS; ci++) {
		if (only && !strstr(checks[ci].name, only))
			continue;
		for (int kind = 0; kind < K_COUNT; kind++) {
			if (only_kind && strcmp(only_kind, kind_names[kind]))
				continue;
			cur_check = checks[ci].name;
			cur_kind = kind_names[kind];
			t_name = cur_check;
			t_variant = cur_kind;
			if (kind == K_REMOTE && !remote_ok)
				continue;
			uint64_t t0 = t_now_ms();
			int bad = run_one(ci, (enum kind)kind);
			ran[kind]++;
			failed[kind] += bad != 0;
			t_failed += bad != 0;
			fprintf(stderr, "%s %s [%s] (%llu ms)\n", bad ? "FAIL" : "ok  ", cur_check,
				cur_kind, (unsigned long long)(t_now_ms() - t0));
		}
	}
	server_kill();
	t_rmdir(base_tmp);
	int total = 0;
	for (int kind = 0; kind < K_COUNT; kind++) {
		fprintf(stderr, "contract: %s: %d of %d checks failed\n", kind_names[kind],
			failed[kind], ran[kind]);
		total += failed[kind];
	}
	if (total)
		return 1;
	if (want_remote && !built) {
		printf("kvgridd not built (%s): the remote kind was not checked\n",
		       t_kvgridd_path());
		return 77;
	}
	return 0;
}
