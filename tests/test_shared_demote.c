/*
 * test_shared_demote.c - demotion into the shared tier (cfg.shared_demote): blocks that
 * leave a grid's local tiers are published to the shared tier instead of being dropped, and
 * another host (a process of its own, with its own tiers) loads them byte-exact.
 *
 * Host A has a tiny DRAM tier and a tiny NVMe tier (or none) and stores more blocks than
 * they hold, with shared_write_through = 0: the shared tier gets only what A demotes.  A
 * reports, through a result file, where each of its blocks ended (its own tiers, the shared
 * tier, nowhere) and its counters; host C then loads every block from the shared tier.
 * Payloads are deterministic per key, so any wrong byte is seen.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "t.h"

#define BLOCK  (64u << 10)
#define BLOCKS 160 /* stored by A: about twice what its DRAM and NVMe hold */

static char scratch[2048];
static char shared_dir[2048]; /* the current test's shared tier */
static const char *tier_name; /* and its name, which the hosts' NVMe directories carry */

struct mode {
	int nvme;    /* A has an NVMe tier */
	int demote;  /* cfg.shared_demote */
	int corrupt; /* A's first NVMe segment is damaged before it is evicted */
};

/* What host A saw, written to a file for the parent. */
enum { AT_MISSING = 0, AT_LOCAL = 1, AT_SHARED = 2 };
struct result {
	int ok;
	uint8_t where[2 * BLOCKS]; /* "blk-i" then "more-i" */
	uint64_t published;	   /* shared tier's demotions: objects this grid made */
	uint64_t shared_bytes_written;
	uint64_t dram_demotions, nvme_demotions;
	uint64_t nvme_csum_failures;
	uint64_t promoted; /* blocks loaded back from the shared tier */
};

static void config(struct kvg_config *c, const char *name, const struct mode *m)
{
	kvg_config_init(c);
	snprintf(c->model_id, sizeof(c->model_id), "test/shared-demote");
	c->dram_bytes = 1u << 20; /* 16 blocks */
	c->chunk_bytes = 64u << 10;
	c->hugepages = 0;
	if (m->nvme) {
		snprintf(c->dir, sizeof(c->dir), "%s/%s-%s-nvme", scratch, tier_name, name);
		mkdir(c->dir, 0755);
		c->nvme_bytes = 4u << 20; /* 4 segments of 15 blocks */
		c->segment_bytes = 1u << 20;
		c->io_backend = KVG_IO_PSYNC;
	}
	c->log_level = 0;
	snprintf(c->shared_dir, sizeof(c->shared_dir), "%s", shared_dir);
	c->shared_write_through = 0;
	c->shared_demote = m->demote;
}

static kvg_grid *open_grid(const char *name, const struct mode *m)
{
	struct kvg_config c;
	config(&c, name, m);
	kvg_grid *g;
	char err[256];
	if (kvg_open(&c, &g, err, sizeof(err))) {
		fprintf(stderr, "%s: kvg_open: %s\n", name, err);
		return NULL;
	}
	return g;
}

static void key_of(kvg_grid *g, int i, kvg_key *k)
{
	char s[64];
	int n = i < BLOCKS ? snprintf(s, sizeof(s), "blk-%d", i)
			   : snprintf(s, sizeof(s), "more-%d", i - BLOCKS);
	kvg_raw_key(g, s, (size_t)n, k);
}

/* Stores blocks [from, to), one call each: the failures. */
static int store_range(kvg_grid *g, int from, int to)
{
	static __thread uint8_t buf[BLOCK];
	int bad = 0;
	for (int i = from; i < to; i++) {
		struct kvg_io io = {.buf = buf, .len = BLOCK, .depth = (uint32_t)(i % BLOCKS)};
		key_of(g, i, &io.key);
		t_fill(buf, BLOCK, &io.key, 3);
		bad += kvg_store_sync(g, &io, 1, 0) != 0;
	}
	return bad;
}

/* Loads block i: 0 with the right bytes, a miss code, or -1000 for wrong bytes. */
static int load_block(kvg_grid *g, int i, uint32_t flags, uint8_t *tier)
{
	static __thread uint8_t buf[BLOCK];
	struct kvg_io io = {.buf = buf, .len = BLOCK};
	key_of(g, i, &io.key);
	int rc = kvg_load_sync(g, &io, 1, flags);
	*tier = io.tier;
	if (rc)
		return rc;
	return io.len == BLOCK && t_verify(buf, BLOCK, &io.key, 3) ? 0 : -1000;
}

/* Where block i is for g: its own tiers, the shared tier (a lookup goes on there), nowhere. */
static uint8_t where_of(kvg_grid *g, int i)
{
	kvg_key k;
	size_t hit = 0;
	uint8_t tier = KVG_TIER_NONE;
	key_of(g, i, &k);
	if (kvg_lookup_keys(g, &k, 1, &hit, &tier) || hit != 1)
		return AT_MISSING;
	return tier == KVG_TIER_SHARED ? AT_SHARED : AT_LOCAL;
}

/* Damages every 4 KiB page of A's first NVMe segment past its header: record headers and
 * payloads then fail verification. */
static int corrupt_segment(kvg_grid *g)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/seg-00000000.kvg", kvg_config_of(g)->dir);
	int fd = open(p, O_RDWR);
	if (fd < 0)
		return -1;
	for (off_t off = 4096; off < (1 << 20); off += 4096) {
		uint8_t b;
		if (pread(fd, &b, 1, off + 100) != 1)
			break;
		b ^= 0x5a;
		if (pwrite(fd, &b, 1, off + 100) != 1)
			break;
	}
	fsync(fd);
	close(fd);
	return 0;
}

static void counters(kvg_grid *g, struct result *r)
{
	struct kvg_stats st;
	struct kvg_tier_stats sh;
	kvg_stats_get(g, &st);
	kvg_tier_stats_get(g, KVG_TIER_SHARED, &sh);
	r->published = sh.demotions;
	r->shared_bytes_written = sh.bytes_written;
	r->dram_demotions = st.tier[KVG_TIER_DRAM].demotions;
	r->nvme_demotions = st.tier[KVG_TIER_NVME].demotions;
	r->nvme_csum_failures = st.tier[KVG_TIER_NVME].checksum_failures;
}

/*
 * Host A: stores BLOCKS blocks; loads back every one that went to the shared tier (promoted
 * into its own tiers, so known to be there); stores BLOCKS more, which push them out again.
 */
static int host_a(const struct mode *m, struct result *r)
{
	kvg_grid *g = open_grid("a", m);
	if (!g)
		return 1;
	int bad = store_range(g, 0, 40);
	if (m->corrupt && corrupt_segment(g))
		bad++;
	bad += store_range(g, 40, BLOCKS);
	for (int i = 0; i < BLOCKS; i++) {
		uint8_t tier;
		if (where_of(g, i) != AT_SHARED)
			continue;
		bad += load_block(g, i, 0, &tier) != 0 || tier != KVG_TIER_SHARED;
		r->promoted++;
	}
	bad += store_range(g, BLOCKS, 2 * BLOCKS);
	for (int i = 0; i < 2 * BLOCKS; i++)
		r->where[i] = where_of(g, i);
	counters(g, r);
	kvg_close(g);
	r->ok = bad == 0;
	return bad;
}

/* Runs host A in a child process; its result through a file. */
static int run_host_a(const struct mode *m, struct result *r)
{
	char p[2200];
	snprintf(p, sizeof(p), "%s/result", scratch);
	unlink(p);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		struct result mine;
		memset(&mine, 0, sizeof(mine));
		int rc = host_a(m, &mine);
		FILE *f = fopen(p, "w");
		if (!f || fwrite(&mine, sizeof(mine), 1, f) != 1)
			rc = 1;
		if (f)
			fclose(f);
		_exit(rc ? 1 : 0);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	FILE *f = fopen(p, "r");
	int ok = f && fread(r, sizeof(*r), 1, f) == 1;
	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

/* Host C (in a child process, with tiers of its own): loads every block A stored without
 * promoting.  Exit status 0 when every block A saw in the shared tier loads byte-exact from
 * there, and nothing loads wrong bytes; found is written to a file. */
static int host_c(const struct result *a, uint64_t *found)
{
	char p[2200];
	snprintf(p, sizeof(p), "%s/found", scratch);
	unlink(p);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		struct mode m = {.nvme = 1};
		kvg_grid *g = open_grid("c", &m);
		if (!g)
			_exit(1);
		uint64_t n = 0;
		int bad = 0;
		for (int i = 0; i < 2 * BLOCKS; i++) {
			uint8_t tier;
			int rc = load_block(g, i, KVG_LOAD_NOPROMOTE, &tier);
			if (rc == 0 && tier == KVG_TIER_SHARED)
				n++;
			else if (rc == 0 || rc != KVG_ENOTFOUND || a->where[i] == AT_SHARED)
				bad++; /* wrong bytes, an error, or a block A demoted that is
					  missing */
		}
		kvg_close(g);
		FILE *f = fopen(p, "w");
		if (!f || fwrite(&n, sizeof(n), 1, f) != 1)
			bad++;
		if (f)
			fclose(f);
		if (bad)
			fprintf(stderr, "host C: %d blocks wrong or missing\n", bad);
		_exit(bad ? 1 : 0);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	FILE *f = fopen(p, "r");
	int ok = f && fread(found, sizeof(*found), 1, f) == 1;
	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

/* Objects in the shared tier's tree (t-<tenant>/<kk>/<key>), and temporaries left. */
static uint64_t objects(uint64_t *temps)
{
	uint64_t n = 0;
	*temps = 0;
	DIR *top = opendir(shared_dir);
	struct dirent *t;
	while (top && (t = readdir(top))) {
		if (strncmp(t->d_name, "t-", 2))
			continue;
		char tp[4200];
		snprintf(tp, sizeof(tp), "%s/%s", shared_dir, t->d_name);
		DIR *kk = opendir(tp);
		struct dirent *k;
		while (kk && (k = readdir(kk))) {
			if (k->d_name[0] == '.')
				continue;
			char kp[4500];
			snprintf(kp, sizeof(kp), "%s/%s", tp, k->d_name);
			DIR *o = opendir(kp);
			struct dirent *e;
			while (o && (e = readdir(o))) {
				if (!strncmp(e->d_name, ".tmp-", 5))
					(*temps)++;
				else if (strlen(e->d_name) == 64)
					n++;
			}
			if (o)
				closedir(o);
		}
		if (kk)
			closedir(kk);
	}
	if (top)
		closedir(top);
	return n;
}

static int count_at(const struct result *r, int at)
{
	int n = 0;
	for (int i = 0; i < 2 * BLOCKS; i++)
		n += r->where[i] == at;
	return n;
}

static void use_tier(const char *name)
{
	tier_name = name;
	snprintf(shared_dir, sizeof(shared_dir), "%s/%s", scratch, name);
}

/* Checks common to every run: the objects are those A made before it closed (counted once:
 * each write made one object), plus at most its local blocks, which its close may have
 * demoted in making NVMe room for its DRAM; C loads exactly the objects there are. */
#define CHECK_OBJECTS(r)                                                                           \
	do {                                                                                       \
		uint64_t temps, found = 0;                                                         \
		uint64_t objs = objects(&temps);                                                   \
		CHECK(temps == 0);                                                                 \
		CHECK(objs >= (r).published &&                                                     \
		      objs <= (r).published + (uint64_t)count_at(&(r), AT_LOCAL));                 \
		CHECK((r).shared_bytes_written == (r).published * BLOCK);                          \
		CHECK(host_c(&(r), &found) == 0);                                                  \
		CHECK(found == objs);                                                              \
	} while (0)

/* Description: with tiny DRAM and NVMe, shared_write_through = 0 and shared_demote = 1,
 * the blocks that whole-segment eviction takes from NVMe are published: none of A's blocks
 * is lost (each is in its own tiers or the shared tier), another host loads every demoted
 * one byte-exact, and blocks promoted back from the tier and evicted again are not
 * published a second time (NVMe demotions = objects made = objects in the tree). */
static void test_nvme_demotes(void)
{
	use_tier("nvme");
	struct mode m = {.nvme = 1, .demote = 1};
	struct result r;
	CHECK(run_host_a(&m, &r) == 0 && r.ok);
	CHECK(count_at(&r, AT_MISSING) == 0);
	CHECK(count_at(&r, AT_SHARED) > BLOCKS / 2);
	CHECK(r.promoted > 0);
	CHECK(r.published > 0 && r.nvme_demotions == r.published);
	CHECK_OBJECTS(r);
}

/* Description: with shared_demote = 0 (and shared_write_through = 0) the blocks A's tiers
 * cannot hold are dropped: nothing is published and another host finds none of them. */
static void test_off_publishes_nothing(void)
{
	use_tier("off");
	struct mode m = {.nvme = 1, .demote = 0};
	struct result r;
	CHECK(run_host_a(&m, &r) == 0 && r.ok);
	CHECK(count_at(&r, AT_SHARED) == 0 && count_at(&r, AT_MISSING) > BLOCKS);
	CHECK(r.published == 0 && r.nvme_demotions == 0);
	CHECK_OBJECTS(r);
}

/* Description: a grid with DRAM only publishes its DRAM victims: none lost, another host
 * loads them byte-exact, and none is published twice (DRAM demotions = objects made). */
static void test_dram_only_demotes(void)
{
	use_tier("dram");
	struct mode m = {.nvme = 0, .demote = 1};
	struct result r;
	CHECK(run_host_a(&m, &r) == 0 && r.ok);
	CHECK(count_at(&r, AT_MISSING) == 0);
	CHECK(count_at(&r, AT_SHARED) > BLOCKS);
	CHECK(r.promoted > 0);
	CHECK(r.published > 0 && r.dram_demotions == r.published);
	CHECK_OBJECTS(r);
}

/* Description: NVMe records damaged on disk before their segment is evicted fail
 * verification and are not demoted (missing, never published with wrong bytes); the
 * other blocks are, and another host loads only intact bytes. */
static void test_corrupt_not_demoted(void)
{
	use_tier("corrupt");
	struct mode m = {.nvme = 1, .demote = 1, .corrupt = 1};
	struct result r;
	CHECK(run_host_a(&m, &r) == 0 && r.ok);
	CHECK(r.nvme_csum_failures > 0);
	CHECK(count_at(&r, AT_MISSING) > 0 && count_at(&r, AT_SHARED) > 0);
	CHECK(r.nvme_demotions == r.published);
	CHECK_OBJECTS(r);
}

/* ---- demotion while the grid is busy ------------------------------------------------------ */

#define MT_THREADS 4
#define MT_BLOCKS  80 /* per thread: MT_THREADS * MT_BLOCKS = 2 * BLOCKS */

struct mt_arg {
	kvg_grid *g;
	int t;
	int wrong, errors;
};

/* Stores its own blocks and, after each, loads (promoting) and pins an earlier one of any
 * thread's: loads answer the right bytes or a miss. */
static void *mt_worker(void *p)
{
	struct mt_arg *a = p;
	static __thread uint8_t buf[BLOCK];
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(a->t + 1);
	for (int i = 0; i < MT_BLOCKS; i++) {
		int id = a->t * MT_BLOCKS + i;
		struct kvg_io io = {.buf = buf, .len = BLOCK};
		key_of(a->g, id, &io.key);
		t_fill(buf, BLOCK, &io.key, 3);
		int rc = kvg_store_sync(a->g, &io, 1, 0);
		if (rc) /* a full grid would be a pin left behind */
			fprintf(stderr, "store: %d %s\n", rc, kvg_strerror(rc)), a->errors++;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int other = (int)(x % (uint64_t)(MT_THREADS * MT_BLOCKS));
		uint8_t tier;
		kvg_key k;
		key_of(a->g, other, &k);
		int pinned = kvg_pin(a->g, &k, 1) == 1;
		rc = load_block(a->g, other, 0, &tier);
		a->wrong += rc == -1000;
		if (rc != 0 && rc != KVG_ENOTFOUND && rc != -1000)
			fprintf(stderr, "load: %d %s\n", rc, kvg_strerror(rc)), a->errors++;
		if (pinned)
			kvg_unpin(a->g, &k, 1);
	}
	return NULL;
}

/* Description: four threads store blocks into a tiny DRAM and NVMe grid with shared_demote
 * while they load (and promote) and pin earlier blocks: no store fails, no load returns
 * wrong bytes, no block is lost (each is in the grid's tiers or the shared tier), none is
 * published twice, and every object the shared tier ends with loads byte-exact on another
 * host. */
static void test_demote_while_busy(void)
{
	use_tier("busy");
	struct mode m = {.nvme = 1, .demote = 1};
	kvg_grid *g = open_grid("a", &m);
	CHECK(g);
	pthread_t th[MT_THREADS];
	struct mt_arg a[MT_THREADS];
	for (int t = 0; t < MT_THREADS; t++) {
		a[t] = (struct mt_arg){.g = g, .t = t};
		CHECK(pthread_create(&th[t], NULL, mt_worker, &a[t]) == 0);
	}
	int wrong = 0, errors = 0;
	for (int t = 0; t < MT_THREADS; t++) {
		pthread_join(th[t], NULL);
		wrong += a[t].wrong;
		errors += a[t].errors;
	}
	struct result r;
	memset(&r, 0, sizeof(r));
	int missing = 0;
	for (int i = 0; i < MT_THREADS * MT_BLOCKS; i++) {
		r.where[i] = where_of(g, i);
		missing += r.where[i] == AT_MISSING;
	}
	counters(g, &r);
	kvg_close(g);
	fprintf(stderr, "busy: %d missing of %d, %llu published\n", missing, MT_THREADS * MT_BLOCKS,
		(unsigned long long)r.published);
	CHECK(wrong == 0 && errors == 0);
	CHECK(missing == 0);
	CHECK(r.published > 0 && r.nvme_demotions == r.published);
	CHECK_OBJECTS(r);
}

int main(void)
{
	t_tmpdir(scratch, sizeof(scratch), "shared-demote");
	t_variant = "local";
	RUN(test_nvme_demotes);
	RUN(test_off_publishes_nothing);
	RUN(test_dram_only_demotes);
	RUN(test_corrupt_not_demoted);
	RUN(test_demote_while_busy);
	if (!t_failed)
		t_rmdir(scratch);
	return t_failed ? 1 : 0;
}
