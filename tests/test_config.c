/*
 * test_config.c - configuration (src/config.c) and kvg_open's validation: defaults, sizes and
 * enums by name, strict refusal of unknown names, bad numbers and out-of-range values with a
 * one-line reason, config files with line numbers in their errors, and kvg_open refusing
 * configurations that cannot work (no tier, too few segments, unknown policy, a directory it
 * cannot use) with KVG_ECONFIG or -errno and a reason.
 */
#include <errno.h>

#include "t_grid.h"

/* Description: kvg_config_init gives the documented defaults. */
static void defaults(void)
{
	struct kvg_config c;
	memset(&c, 0x5a, sizeof(c));
	kvg_config_init(&c);
	CHECK(c.block_tokens == 256);
	CHECK(c.hash == KVG_HASH_SHA256);
	CHECK(c.dram_bytes == 1ull << 30);
	CHECK(c.chunk_bytes == 256u << 10);
	CHECK(c.dir[0] == 0);
	CHECK(c.tenant[0] == 0);
	CHECK(c.segment_bytes == 256ull << 20);
	CHECK(c.queue_depth == 64);
	CHECK(c.max_value_bytes == 64ull << 20);
	CHECK(c.policy[0] != 0); /* a real policy: defaults_open opens with it */
	CHECK(c.demote_on_evict == 1 && c.promote_on_hit == 1);
	CHECK(c.req_max == 1024 && c.workers == 2);
	CHECK(c.io_backend == KVG_IO_AUTO);
	CHECK(c.durability == KVG_DURABILITY_CACHE);
}

/* Description: a grid opens from the defaults with only the DRAM size made smaller (a test
 * machine is shared), and serves a store and load. */
static void defaults_open(void)
{
	struct kvg_config c;
	kvg_config_init(&c);
	c.dram_bytes = 64ull << 20;
	c.log_level = 0;
	kvg_grid *g = NULL;
	char err[256] = "";
	CHECK_RC(kvg_open(&c, &g, err, sizeof(err)), 0);
	kvg_key k;
	kvg_raw_key(g, "d", 1, &k);
	CHECK_RC(t_store(g, &k, 1, 1000, 1), 0);
	CHECK_RC(t_load(g, &k, 1000, 1, NULL), 0);
	kvg_close(g);
}

/* Description: values by name: sizes with K/M/G/T suffixes (KiB, GB spellings too), hex,
 * enums by name, booleans as 1/0/true/false/yes/no/on/off, strings copied. */
static void set_good_values(void)
{
	struct kvg_config c;
	kvg_config_init(&c);
	char err[256];
	CHECK_RC(kvg_config_set(&c, "dram_bytes", "4G", err, sizeof(err)), 0);
	CHECK(c.dram_bytes == 4ull << 30);
	CHECK_RC(kvg_config_set(&c, "dram_bytes", "512K", err, sizeof(err)), 0);
	CHECK(c.dram_bytes == 512ull << 10);
	CHECK_RC(kvg_config_set(&c, "dram_bytes", "3MiB", err, sizeof(err)), 0);
	CHECK(c.dram_bytes == 3ull << 20);
	CHECK_RC(kvg_config_set(&c, "nvme_bytes", "2TB", err, sizeof(err)), 0);
	CHECK(c.nvme_bytes == 2ull << 40);
	CHECK_RC(kvg_config_set(&c, "dram_bytes", "12345", err, sizeof(err)), 0);
	CHECK(c.dram_bytes == 12345);
	CHECK_RC(kvg_config_set(&c, "queue_depth", "0x20", err, sizeof(err)), 0);
	CHECK(c.queue_depth == 32);
	CHECK_RC(kvg_config_set(&c, "block_tokens", "16", err, sizeof(err)), 0);
	CHECK(c.block_tokens == 16);
	CHECK_RC(kvg_config_set(&c, "block_tokens", "1024", err, sizeof(err)), 0);
	CHECK(c.block_tokens == 1024);
	CHECK_RC(kvg_config_set(&c, "dtype", "fp8", err, sizeof(err)), 0);
	CHECK(c.dtype == KVG_DTYPE_FP8);
	CHECK_RC(kvg_config_set(&c, "hash", "xxh3", err, sizeof(err)), 0);
	CHECK(c.hash == KVG_HASH_XXH3);
	CHECK_RC(kvg_config_set(&c, "io_backend", "psync", err, sizeof(err)), 0);
	CHECK(c.io_backend == KVG_IO_PSYNC);
	CHECK_RC(kvg_config_set(&c, "durability", "durable", err, sizeof(err)), 0);
	CHECK(c.durability == KVG_DURABILITY_DURABLE);
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	for (int i = 0; i < 4; i++) {
		CHECK_RC(kvg_config_set(&c, "mlock", yes[i], err, sizeof(err)), 0);
		CHECK(c.mlock == 1);
		CHECK_RC(kvg_config_set(&c, "mlock", no[i], err, sizeof(err)), 0);
		CHECK(c.mlock == 0);
	}
	CHECK_RC(kvg_config_set(&c, "model_id", "Qwen/Qwen2.5-7B", err, sizeof(err)), 0);
	CHECK(strcmp(c.model_id, "Qwen/Qwen2.5-7B") == 0);
	CHECK_RC(kvg_config_set(&c, "tenant", "", err, sizeof(err)), 0);
	CHECK(c.tenant[0] == 0);
	CHECK_RC(kvg_config_set(&c, "policy", "s3fifo", err, sizeof(err)), 0);
	CHECK(strcmp(c.policy, "s3fifo") == 0);
}

/* Description: an unknown setting is refused with KVG_ECONFIG and its name in the reason,
 * and err may be NULL. */
static void set_unknown_name(void)
{
	struct kvg_config c;
	kvg_config_init(&c);
	char err[256] = "";
	CHECK_RC(kvg_config_set(&c, "dram_byte", "1G", err, sizeof(err)), KVG_ECONFIG);
	CHECK(strstr(err, "dram_byte") != NULL);
	CHECK_RC(kvg_config_set(&c, "", "1", err, sizeof(err)), KVG_ECONFIG);
	CHECK_RC(kvg_config_set(&c, "DRAM_BYTES", "1G", NULL, 0), KVG_ECONFIG);
	CHECK_RC(kvg_config_set(&c, NULL, "1", err, sizeof(err)), KVG_ECONFIG);
	CHECK_RC(kvg_config_set(&c, "layers", NULL, err, sizeof(err)), KVG_ECONFIG);
}

/* Description: bad numbers ("12Q", "-1", "+1", "", " 5", "1.5G", "0x", "5 ", too large for 64 bits,
 * a size overflowing with its suffix) are refused with the setting's name in the reason,
 * and the field keeps its value; likewise bad booleans and unknown enum names. */
static void set_bad_values(void)
{
	static const char *const bad_sizes[] = {
	    "12Q",	    "-1", "+1", "", " 5", "1.5G", "0x", "5 ", "4GG", "99999999999999999999",
	    "17179869184T", "G"};
	struct kvg_config c;
	kvg_config_init(&c);
	char err[256];
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		err[0] = 0;
		t_variant = bad_sizes[i];
		CHECK_RC(kvg_config_set(&c, "dram_bytes", bad_sizes[i], err, sizeof(err)),
			 KVG_ECONFIG);
		CHECK(strstr(err, "dram_bytes") != NULL);
		CHECK(c.dram_bytes == 1ull << 30);
		CHECK_RC(kvg_config_set(&c, "layers", bad_sizes[i], err, sizeof(err)), KVG_ECONFIG);
		CHECK(c.layers == 0);
	}
	t_variant = "";
	CHECK_RC(kvg_config_set(&c, "layers", "4K", err, sizeof(err)), KVG_ECONFIG); /* no suffix */
	CHECK_RC(kvg_config_set(&c, "mlock", "maybe", err, sizeof(err)), KVG_ECONFIG);
	CHECK(strstr(err, "mlock") && strstr(err, "maybe"));
	CHECK_RC(kvg_config_set(&c, "hash", "sha512", err, sizeof(err)), KVG_ECONFIG);
	CHECK(strstr(err, "sha512") != NULL);
	CHECK(c.hash == KVG_HASH_SHA256);
	CHECK_RC(kvg_config_set(&c, "dtype", "FP16", err, sizeof(err)), KVG_ECONFIG);
	char longv[300];
	memset(longv, 'm', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = 0;
	CHECK_RC(kvg_config_set(&c, "model_id", longv, err, sizeof(err)), KVG_ECONFIG);
	CHECK(strcmp(c.model_id, "unspecified") == 0);
}

/* Description: out-of-range values are refused: block_tokens 8 and 2048 (16..1024),
 * segment_bytes under 1 MiB, queue_depth 0, log_level 4. */
static void set_out_of_range(void)
{
	struct kvg_config c;
	kvg_config_init(&c);
	char err[256];
	CHECK_RC(kvg_config_set(&c, "block_tokens", "8", err, sizeof(err)), KVG_ECONFIG);
	CHECK(strstr(err, "block_tokens") && strstr(err, "range"));
	CHECK_RC(kvg_config_set(&c, "block_tokens", "2048", err, sizeof(err)), KVG_ECONFIG);
	CHECK_RC(kvg_config_set(&c, "block_tokens", "15", err, sizeof(err)), KVG_ECONFIG);
	CHECK_RC(kvg_config_set(&c, "block_tokens", "1025", err, sizeof(err)), KVG_ECONFIG);
	CHECK(c.block_tokens == 256);
	CHECK_RC(kvg_config_set(&c, "segment_bytes", "512K", err, sizeof(err)), KVG_ECONFIG);
	CHECK_RC(kvg_config_set(&c, "queue_depth", "0", err, sizeof(err)), KVG_ECONFIG);
	CHECK_RC(kvg_config_set(&c, "log_level", "4", err, sizeof(err)), KVG_ECONFIG);
	CHECK_RC(kvg_config_set(&c, "layers", "4097", err, sizeof(err)), KVG_ECONFIG);
}

/* Description: a reason longer than err is truncated, NUL-terminated, never overflowing. */
static void reason_fits_err(void)
{
	struct kvg_config c;
	kvg_config_init(&c);
	char err[16];
	memset(err, 'x', sizeof(err));
	char name[200];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	CHECK_RC(kvg_config_set(&c, name, "1", err, 8), KVG_ECONFIG);
	CHECK(strlen(err) == 7);
	CHECK(err[8] == 'x');
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* Description: a config file of "name = value" lines with comments, blank lines and spaces
 * is read into the struct. */
static void load_file(void)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/kvgrid.conf", t_scratch("conf"));
	CHECK(write_file(path, "# a grid\n"
			       "\n"
			       "model_id = meta-llama/Llama-3.1-8B   # the model\n"
			       "  layers=32\n"
			       "kv_heads =8\n"
			       "\thead_dim\t=\t128\n"
			       "dram_bytes = 2G\n"
			       "tenant = acme\n"
			       "hash = xxh3\n") == 0);
	struct kvg_config c;
	kvg_config_init(&c);
	char err[512] = "";
	CHECK_RC(kvg_config_load(&c, path, err, sizeof(err)), 0);
	CHECK(strcmp(c.model_id, "meta-llama/Llama-3.1-8B") == 0);
	CHECK(c.layers == 32 && c.kv_heads == 8 && c.head_dim == 128);
	CHECK(c.dram_bytes == 2ull << 30);
	CHECK(strcmp(c.tenant, "acme") == 0);
	CHECK(c.hash == KVG_HASH_XXH3);
	CHECK(kvg_config_block_bytes(&c) == 32ull * 2 * 256 * 8 * 128 * 2);
}

/* Description: an error in a config file is reported as "path:line: reason" for a bad value
 * on line 4, an unknown name on line 2, and a line without '='; a missing file gives -ENOENT
 * with the path in err. */
static void load_file_errors(void)
{
	const char *dir = t_scratch("conf");
	char path[4200], err[8600];
	snprintf(path, sizeof(path), "%s/bad.conf", dir);
	struct kvg_config c;
	char want[4300];

	CHECK(write_file(path, "# ok\nlayers = 32\n\nblock_tokens = 2048\nkv_heads = 8\n") == 0);
	kvg_config_init(&c);
	CHECK_RC(kvg_config_load(&c, path, err, sizeof(err)), KVG_ECONFIG);
	snprintf(want, sizeof(want), "%s:4: ", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	CHECK(strstr(err, "block_tokens") != NULL);

	CHECK(write_file(path, "layers = 32\nlayres = 32\n") == 0);
	kvg_config_init(&c);
	CHECK_RC(kvg_config_load(&c, path, err, sizeof(err)), KVG_ECONFIG);
	snprintf(want, sizeof(want), "%s:2: ", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	CHECK(strstr(err, "layres") != NULL);

	CHECK(write_file(path, "layers = 32\nkv_heads 8\n") == 0);
	kvg_config_init(&c);
	CHECK_RC(kvg_config_load(&c, path, err, sizeof(err)), KVG_ECONFIG);
	snprintf(want, sizeof(want), "%s:2: ", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	snprintf(path, sizeof(path), "%s/missing.conf", dir);
	CHECK_RC(kvg_config_load(&c, path, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "missing.conf") != NULL);
}

/* Description: a config file with CRLF line endings reads like one with LF; a line longer
 * than the parser's buffer is refused with its line number, not split into two settings;
 * a value may contain '='. */
static void load_file_edge_cases(void)
{
	const char *dir = t_scratch("conf");
	char path[4200], err[8600], want[4300];
	snprintf(path, sizeof(path), "%s/edge.conf", dir);
	struct kvg_config c;

	CHECK(write_file(path, "layers = 32\r\nkv_heads = 8\r\ntenant = a=b\r\n") == 0);
	kvg_config_init(&c);
	CHECK_RC(kvg_config_load(&c, path, err, sizeof(err)), 0);
	CHECK(c.layers == 32 && c.kv_heads == 8);
	CHECK(strcmp(c.tenant, "a=b") == 0);

	size_t big = 9000;
	char *text = malloc(big + 64);
	CHECK(text);
	int n = snprintf(text, big + 64, "layers = 32\nmodel_id = ");
	memset(text + n, 'm', big);
	snprintf(text + n + big, 64, "\nlayers = 7\n");
	CHECK(write_file(path, text) == 0);
	free(text);
	kvg_config_init(&c);
	CHECK_RC(kvg_config_load(&c, path, err, sizeof(err)), KVG_ECONFIG);
	snprintf(want, sizeof(want), "%s:2: ", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	CHECK(c.layers == 32);
}

/* Opens c and expects failure with rc (0 = any error) and a reason containing word. */
static int open_fails(const struct kvg_config *c, int want, const char *word, char *err, size_t len)
{
	kvg_grid *g = (kvg_grid *)1;
	err[0] = 0;
	int rc = kvg_open(c, &g, err, len);
	if (rc == 0) {
		kvg_close(g);
		fprintf(stderr, "  kvg_open succeeded\n");
		return 0;
	}
	if ((want && rc != want) || rc > 0) {
		fprintf(stderr, "  kvg_open = %d (%s), want %d; err '%s'\n", rc, kvg_strerror(rc),
			want, err);
		return 0;
	}
	if (!err[0] || (word && !strstr(err, word))) {
		fprintf(stderr, "  reason '%s' lacks '%s'\n", err, word ? word : "");
		return 0;
	}
	return 1;
}

static void small_config(struct kvg_config *c)
{
	kvg_config_init(c);
	c->dram_bytes = 4 << 20;
	c->hugepages = 0;
	c->log_level = 0;
	c->req_max = 8;
}

/* Description: kvg_open refuses configurations that cannot work, with KVG_ECONFIG and a
 * reason naming the problem: no tier, block_tokens 8 or 2048 set directly, chunk_bytes not
 * a multiple of 4096, DRAM smaller than a chunk, nvme_bytes under two segments, an unknown
 * policy, more layers than the record format can checksum by part. */
static void open_refuses_bad_configs(void)
{
	char err[512];
	struct kvg_config c;

	small_config(&c);
	c.dram_bytes = 0;
	CHECK(open_fails(&c, KVG_ECONFIG, "tier", err, sizeof(err)));

	small_config(&c);
	c.block_tokens = 8;
	CHECK(open_fails(&c, KVG_ECONFIG, "block_tokens", err, sizeof(err)));
	c.block_tokens = 2048;
	CHECK(open_fails(&c, KVG_ECONFIG, "block_tokens", err, sizeof(err)));

	small_config(&c);
	c.chunk_bytes = 5000;
	CHECK(open_fails(&c, KVG_ECONFIG, "chunk_bytes", err, sizeof(err)));

	small_config(&c);
	c.dram_bytes = 4096;
	CHECK(open_fails(&c, KVG_ECONFIG, "dram_bytes", err, sizeof(err)));

	small_config(&c);
	snprintf(c.policy, sizeof(c.policy), "fifo-of-doom");
	CHECK(open_fails(&c, KVG_ECONFIG, "policy", err, sizeof(err)));

	small_config(&c);
	snprintf(c.dir, sizeof(c.dir), "%s", t_scratch("cfg"));
	c.segment_bytes = 4 << 20;
	c.nvme_bytes = 7 << 20;
	CHECK(open_fails(&c, KVG_ECONFIG, "segment", err, sizeof(err)));

	c.nvme_bytes = 64 << 20;
	c.segment_bytes = (4 << 20) + 100;
	CHECK(open_fails(&c, KVG_ECONFIG, "segment_bytes", err, sizeof(err)));

	c.segment_bytes = 4 << 20;
	c.layers = 497;
	CHECK(open_fails(&c, KVG_ECONFIG, "layers", err, sizeof(err)));
}

/* Description: a directory the grid cannot create or use is refused with -errno and a
 * reason naming it: under /proc, under a regular file, and a path that is a regular file. */
static void open_refuses_unusable_dirs(void)
{
	char err[8600];
	struct kvg_config c;
	small_config(&c);
	c.dram_bytes = 0;
	c.nvme_bytes = 64 << 20;
	c.segment_bytes = 4 << 20;
	snprintf(c.dir, sizeof(c.dir), "/proc/nope");
	CHECK(open_fails(&c, 0, "/proc/nope", err, sizeof(err)));

	const char *d = t_scratch("cfg");
	char file[4200];
	snprintf(file, sizeof(file), "%s/plain", d);
	CHECK(write_file(file, "x") == 0);
	snprintf(c.dir, sizeof(c.dir), "%.4000s/sub", file);
	CHECK(open_fails(&c, 0, "plain", err, sizeof(err)));
	snprintf(c.dir, sizeof(c.dir), "%.4000s", file);
	CHECK(open_fails(&c, 0, "plain", err, sizeof(err)));
}

/* Description: kvg_open's err may be NULL, and NULL arguments are -EINVAL. */
static void open_with_null_arguments(void)
{
	struct kvg_config c;
	small_config(&c);
	c.dram_bytes = 0;
	kvg_grid *g = NULL;
	CHECK_RC(kvg_open(&c, &g, NULL, 0), KVG_ECONFIG);
	CHECK(g == NULL);
	CHECK_RC(kvg_open(NULL, &g, NULL, 0), -EINVAL);
	small_config(&c);
	CHECK_RC(kvg_open(&c, NULL, NULL, 0), -EINVAL);
}

/* Description: kvg_strerror names every library code with a distinct non-empty string,
 * names -errno values as the system does, and never returns NULL. */
static void strerror_names_everything(void)
{
	for (int e = KVG_ELAST; e <= KVG_EBASE; e++) {
		const char *s = kvg_strerror(e);
		CHECK(s && *s && strcmp(s, "unknown error") != 0);
		for (int f = e + 1; f <= KVG_EBASE; f++)
			CHECK(strcmp(s, kvg_strerror(f)) != 0);
	}
	CHECK(strcmp(kvg_strerror(-ENOENT), strerror(ENOENT)) == 0);
	CHECK(kvg_strerror(0) && kvg_strerror(12345) && kvg_strerror(KVG_ELAST - 1));
}

/* Description: kvg_config_block_bytes is layers x 2 x block_tokens x kv_heads x head_dim x
 * dtype size: 32 MiB for a Llama-3.1-8B block of 256 bf16 tokens, 0 with no layout. */
static void block_bytes_of_layouts(void)
{
	struct kvg_config c;
	kvg_config_init(&c);
	CHECK(kvg_config_block_bytes(&c) == 0);
	c.layers = 32;
	c.kv_heads = 8;
	c.head_dim = 128;
	CHECK(kvg_config_block_bytes(&c) == 32ull << 20);
	c.dtype = KVG_DTYPE_FP32;
	CHECK(kvg_config_block_bytes(&c) == 64ull << 20);
	c.dtype = KVG_DTYPE_FP8;
	CHECK(kvg_config_block_bytes(&c) == 16ull << 20);
	c.block_tokens = 16;
	CHECK(kvg_config_block_bytes(&c) == 1ull << 20);
}

/* Description: a program built against an older kvgrid.h, whose struct kvg_config ends
 * before dir, opens a grid: it sets what its struct has, the fields it lacks take their
 * defaults, and kvg_config_set refuses names past its size.  The struct is allocated at
 * its exact size, so a read past it fails under ASan. */
#define OLD_FIELD(buf, f, out) memcpy(&(out), (buf) + offsetof(struct kvg_config, f), sizeof(out))

static void open_with_smaller_struct(void)
{
	size_t size = offsetof(struct kvg_config, dir);
	unsigned char *old = malloc(size); /* fields are read at their offsets: no c->f past it */
	struct kvg_config *c = (struct kvg_config *)old;
	CHECK(c);
	CHECK_RC(kvg_config_init_size(c, size), 0);
	uint32_t got_size, block_tokens;
	uint64_t dram_bytes;
	OLD_FIELD(old, size, got_size);
	OLD_FIELD(old, block_tokens, block_tokens);
	OLD_FIELD(old, dram_bytes, dram_bytes);
	CHECK(got_size == size && block_tokens == 256 && dram_bytes == 1ull << 30);
	char err[256] = "";
	int rc = kvg_config_set(c, "dram_bytes", "32M", err, sizeof(err));
	int rc_dir = kvg_config_set(c, "dir", "/tmp", err, sizeof(err));
	kvg_grid *g = NULL;
	int rc_open = rc ? rc : kvg_open(c, &g, err, sizeof(err));
	free(c);
	CHECK_RC(rc, 0);
	CHECK_RC(rc_dir, KVG_ECONFIG);
	CHECK(strstr(err, "dir: not in this program's struct kvg_config") != NULL);
	CHECK_RC(rc_open, 0);
	const struct kvg_config *run = kvg_config_of(g);
	CHECK(run->size == size);
	CHECK(run->dram_bytes == 32ull << 20);
	CHECK(run->dir[0] == 0 && run->req_max == 1024 && run->workers == 2);
	CHECK(run->timeout_ms == 5000 && run->log_level == 1);
	kvg_close(g);

	/* a size that cuts a field: the cut field is one the program does not have */
	size = offsetof(struct kvg_config, model_id) + 3;
	c = (struct kvg_config *)calloc(1, size);
	CHECK(c);
	CHECK_RC(kvg_config_init_size(c, size), 0);
	rc = kvg_open(c, &g, err, sizeof(err));
	free(c);
	CHECK_RC(rc, 0);
	CHECK(!strcmp(kvg_config_of(g)->model_id, "unspecified"));
	kvg_close(g);
}

/* Description: a program built against a newer kvgrid.h, whose struct kvg_config is
 * larger, opens a grid while the fields this library does not know are zero (as
 * kvg_config_init leaves them); a non-zero one is refused with KVG_ECONFIG and a reason
 * naming the struct, never ignored.  A size of 0 (not initialised) is refused too. */
static void open_with_larger_struct(void)
{
	size_t size = sizeof(struct kvg_config) + 64;
	struct kvg_config *c = malloc(size);
	CHECK(c);
	memset(c, 0x5a, size);
	CHECK_RC(kvg_config_init_size(c, size), 0);
	CHECK(c->size == size);
	c->dram_bytes = 32ull << 20;
	char err[256] = "";
	kvg_grid *g = NULL;
	int rc = kvg_open(c, &g, err, sizeof(err));
	if (rc == 0) {
		CHECK(kvg_config_of(g)->size == sizeof(struct kvg_config));
		kvg_close(g);
	}
	((unsigned char *)c)[size - 1] = 1;
	int rc_newer = kvg_open(c, &g, err, sizeof(err));
	c->size = 0;
	char err0[256] = "";
	int rc_zero = kvg_open(c, &g, err0, sizeof(err0));
	free(c);
	CHECK_RC(rc, 0);
	CHECK_RC(rc_newer, KVG_ECONFIG);
	CHECK(strstr(err, "struct kvg_config") && strstr(err, "newer kvgrid.h"));
	CHECK_RC(rc_zero, KVG_ECONFIG);
	CHECK(strstr(err0, "kvg_config_init") != NULL);
	CHECK_RC(kvg_config_init_size(NULL, sizeof(struct kvg_config)), KVG_ECONFIG);
	struct kvg_config small;
	CHECK_RC(kvg_config_init_size(&small, 2), KVG_ECONFIG);
}

int main(void)
{
	RUN(defaults);
	RUN(defaults_open);
	RUN(set_good_values);
	RUN(set_unknown_name);
	RUN(set_bad_values);
	RUN(set_out_of_range);
	RUN(reason_fits_err);
	RUN(load_file);
	t_done();
	RUN(load_file_errors);
	t_done();
	RUN(load_file_edge_cases);
	t_done();
	RUN(open_refuses_bad_configs);
	t_done();
	RUN(open_refuses_unusable_dirs);
	t_done();
	RUN(open_with_null_arguments);
	RUN(strerror_names_everything);
	RUN(block_bytes_of_layouts);
	RUN(open_with_smaller_struct);
	RUN(open_with_larger_struct);
	T_EXIT();
}
