/*
 * test_shared.c - the shared tier (cfg.shared_dir) used by several grids at once, each in a
 * process of its own as a host would be: own DRAM, own NVMe directory, one shared directory.
 *
 * The hosts' views of the shared directory come from $KVG_SHARED_DIRS ("A:B:C", one path
 * per host: tests/test_sharedfs.sh passes three FUSE mounts of one GlusterFS volume); by
 * default all three are one local scratch directory.  Every test uses a fresh subdirectory
 * of it.  Payloads are deterministic per key, so any wrong byte is seen.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "t.h"

#define HOSTS 3
#define BLOCK (256u << 10)
#define SPAN  (BLOCK + 4096u) /* an object's bytes: header block and payload */

static char host_dir[HOSTS][2048]; /* each host's path to the shared directory */
static char scratch[2048];	   /* local scratch: NVMe directories */
static const char *test_sub;	   /* the current test's subdirectory */
static int cached;		   /* KVG_SHARED_CACHED=1: mounts with client caches, where
				    * another host may see a new object late (a miss) */

/* ---- hosts ------------------------------------------------------------------------------- */

struct host_cfg {
	const char *tenant;
	uint64_t shared_bytes, tenant_bytes;
	uint32_t grace_s;
	int demote;	   /* shared_write_through 0, shared_demote 1 */
	int dram_only;	   /* no NVMe tier */
	uint32_t cache_ms; /* shared_cache_ms, if not 0 */
	uint32_t touch_s;  /* shared_touch_s, if not 0 */
};

static void host_config(struct kvg_config *c, int h, const struct host_cfg *hc)
{
	kvg_config_init(c);
	snprintf(c->model_id, sizeof(c->model_id), "test/shared");
	snprintf(c->tenant, sizeof(c->tenant), "%s", hc && hc->tenant ? hc->tenant : "");
	c->dram_bytes = 4u << 20;
	c->chunk_bytes = 64u << 10;
	c->hugepages = 0;
	snprintf(c->dir, sizeof(c->dir), "%s/%s-nvme%d-%d", scratch, test_sub, h, (int)getpid());
	mkdir(c->dir, 0755);
	c->nvme_bytes = 16u << 20;
	c->segment_bytes = 1u << 20;
	c->io_backend = KVG_IO_PSYNC;
	c->log_level = 0;
	c->req_max = 64;
	snprintf(c->shared_dir, sizeof(c->shared_dir), "%s/%s", host_dir[h], test_sub);
	c->shared_bytes = hc && hc->shared_bytes ? hc->shared_bytes : (1ull << 30);
	c->shared_tenant_bytes = hc ? hc->tenant_bytes : 0;
	c->shared_grace_s = hc && hc->grace_s ? hc->grace_s : 600;
	c->shared_refresh_ms = 0; /* exact accounting: every store re-reads the ledgers */
	if (hc && hc->demote) {
		c->shared_write_through = 0;
		c->shared_demote = 1;
	}
	if (hc && hc->dram_only) {
		c->dir[0] = 0;
		c->nvme_bytes = 0;
	}
	if (hc && hc->cache_ms)
		c->shared_cache_ms = hc->cache_ms;
	if (hc && hc->touch_s)
		c->shared_touch_s = hc->touch_s;
}

static kvg_grid *host_open(int h, const struct host_cfg *hc)
{
	struct kvg_config c;
	host_config(&c, h, hc);
	kvg_grid *g;
	char err[256];
	int rc = kvg_open(&c, &g, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "host %d: kvg_open: %s\n", h, err);
		return NULL;
	}
	return g;
}

static void key_of(kvg_grid *g, const char *tag, int i, kvg_key *k)
{
	char s[64];
	int n = snprintf(s, sizeof(s), "%s-%d", tag, i);
	kvg_raw_key(g, s, (size_t)n, k);
}

/* Stores blocks [from, to) of tag, one per call; returns the failures. */
static int store_range(kvg_grid *g, const char *tag, int from, int to, uint32_t flags)
{
	static uint8_t buf[BLOCK];
	int bad = 0;
	for (int i = from; i < to; i++) {
		struct kvg_io io = {.buf = buf, .len = BLOCK, .depth = (uint32_t)i};
		key_of(g, tag, i, &io.key);
		t_fill(buf, BLOCK, &io.key, 7);
		if (kvg_store_sync(g, &io, 1, flags))
			bad++;
	}
	return bad;
}

/* Loads block i of tag: 0 with the right bytes, a miss code, or -1000 for wrong bytes. */
static int load_one(kvg_grid *g, const char *tag, int i, uint8_t *tier)
{
	static uint8_t buf[BLOCK];
	struct kvg_io io = {.buf = buf, .len = BLOCK};
	key_of(g, tag, i, &io.key);
	int rc = kvg_load_sync(g, &io, 1, 0);
	if (tier)
		*tier = io.tier;
	if (rc)
		return rc;
	return io.len == BLOCK && t_verify(buf, BLOCK, &io.key, 7) ? 0 : -1000;
}

/* Runs fn(h, arg) in a child process as host h; returns its pid. */
static int gate_w = -1; /* write end of the start gate (see gate_wait), parent only */

static pid_t host_spawn(int h, int (*fn)(int h, void *arg), void *arg)
{
	fflush(stderr);
	pid_t p = fork();
	if (p == 0) {
		if (gate_w >= 0)
			close(gate_w); /* or the gate never opens */
		_exit(fn(h, arg) ? 1 : 0);
	}
	return p;
}

static int host_wait(pid_t p)
{
	int st;
	if (waitpid(p, &st, 0) != p)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs fn as host h and waits: its exit status. */
static int on_host(int h, int (*fn)(int h, void *arg), void *arg)
{
	return host_wait(host_spawn(h, fn, arg));
}

/* ---- the tree, as the test sees it ---------------------------------------------------------- */

struct tree {
	uint64_t objects, bytes, temps, bad;
};

static void tree_walk(const char *dir, struct tree *t, int depth)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		char p[4096];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, ".kvgrid"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st))
			continue;
		if (S_ISDIR(st.st_mode) && depth < 2)
			tree_walk(p, t, depth + 1);
		else if (!strncmp(de->d_name, ".tmp-", 5))
			t->temps++;
		else if (!strncmp(de->d_name, ".bad-", 5))
			t->bad++;
		else if (S_ISREG(st.st_mode) && strlen(de->d_name) == 64) {
			t->objects++;
			t->bytes += (uint64_t)st.st_size;
		}
	}
	closedir(d);
}

static struct tree tree_of(const char *sub)
{
	struct tree t = {0};
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", host_dir[0], sub ? sub : test_sub);
	tree_walk(p, &t, 0);
	return t;
}

/* The object file of key (the tier's layout, doc/FORMAT.md), via host 0's path. */
static void object_path(kvg_grid *g, const kvg_key *k, char *p, size_t len)
{
	char hex[65];
	kvg_key_hex(k, hex);
	const char *tenant = kvg_config_of(g)->tenant;
	(void)tenant;
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "%s/%s", host_dir[0], test_sub);
	/* the tenant directory is the only t-* entry in a test of one tenant */
	DIR *d = opendir(cmd);
	struct dirent *de;
	p[0] = 0;
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, "t-", 2))
			snprintf(p, len, "%s/%s/%.2s/%s", cmd, de->d_name, hex, hex);
	if (d)
		closedir(d);
}

/* ---- store on A, found and loaded on C --------------------------------------------------------
 */

static int a_stores(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	int bad = store_range(g, "chain", 0, 16, 0);
	kvg_close(g);
	return bad;
}

static int c_finds(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	int bad = 0;
	kvg_key keys[20];
	uint8_t tiers[20];
	for (int i = 0; i < 20; i++)
		key_of(g, "chain", i, &keys[i]);
	size_t hit = 0;
	if (kvg_lookup_keys(g, keys, 20, &hit, tiers) || hit != 16)
		bad |= 2;
	for (size_t i = 0; i < hit; i++)
		bad |= tiers[i] != KVG_TIER_SHARED ? 4 : 0;
	uint8_t tier;
	for (int i = 0; i < 16; i++)
		bad |= load_one(g, "chain", i, &tier) || tier != KVG_TIER_SHARED ? 8 : 0;
	/* promoted on hit: the second load is local */
	bad |= load_one(g, "chain", 15, &tier) || tier == KVG_TIER_SHARED ? 16 : 0;
	bad |= load_one(g, "chain", 16, NULL) != KVG_ENOTFOUND ? 32 : 0;
	struct kvg_tier_stats ts;
	if (kvg_tier_stats_get(g, KVG_TIER_SHARED, &ts) || ts.blocks != 16 ||
	    ts.bytes != 16ull * SPAN || ts.hits != 16)
		bad |= 64;
	kvg_close(g);
	if (bad)
		fprintf(stderr, "host C: failures %#x\n", bad);
	return bad;
}

/* Description: a prefix stored on host A is found by a lookup on host C, in the shared
 * tier, and loaded there with the right bytes; C's second load comes from its own tiers. */
static void test_store_a_load_c(void)
{
	test_sub = "a_to_c";
	CHECK(on_host(0, a_stores, NULL) == 0);
	CHECK(on_host(2, c_finds, NULL) == 0);
	struct tree t = tree_of(NULL);
	CHECK(t.objects == 16 && t.temps == 0 && t.bytes == 16ull * SPAN);
}

/* ---- the same block stored by two hosts at once -------------------------------------------------
 */

static int gate_fd = -1; /* read end of a pipe: hosts start when the parent closes it */

static void gate_wait(void)
{
	char c;
	while (read(gate_fd, &c, 1) > 0)
		;
}

static int same_blocks(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	gate_wait();
	int bad = store_range(g, "same", 0, 24, 0);
	kvg_close(g);
	return bad;
}

static int reads_same(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	int bad = 0;
	for (int i = 0; i < 24; i++)
		bad += load_one(g, "same", i, NULL) != 0;
	struct kvg_tier_stats ts;
	kvg_tier_stats_get(g, KVG_TIER_SHARED, &ts);
	if (ts.blocks != 24)
		bad += 100;
	kvg_close(g);
	return bad;
}

static pid_t spawn_gated(int h, int (*fn)(int, void *), void *arg, int fds[2])
{
	gate_fd = fds[0];
	gate_w = fds[1];
	pid_t p = host_spawn(h, fn, arg);
	return p;
}

/* Description: two hosts store the same 24 blocks at the same moment: each block is
 * published once (one object, counted once in the tier's usage), no temporary is left, and
 * a third host reads every block intact. */
static void test_same_block_publish(void)
{
	test_sub = "same";
	int fds[2];
	CHECK(pipe(fds) == 0);
	pid_t a = spawn_gated(0, same_blocks, NULL, fds);
	pid_t b = spawn_gated(1, same_blocks, NULL, fds);
	close(fds[0]);
	usleep(300000); /* both grids open */
	close(fds[1]);
	gate_w = -1;
	CHECK(host_wait(a) == 0 && host_wait(b) == 0);
	struct tree t = tree_of(NULL);
	CHECK(t.objects == 24 && t.temps == 0);
	CHECK(on_host(2, reads_same, NULL) == 0);
}

/* ---- a host killed mid-store ------------------------------------------------------------------
 */

static int stores_forever(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	for (int i = 0;; i += 4)
		store_range(g, "killed", i, i + 4, 0);
	return 0;
}

static int checks_killed(int h, void *arg)
{
	struct host_cfg hc = {.grace_s = 1};
	kvg_grid *g = host_open(h, &hc);
	if (!g)
		return 1;
	int bad = 0, found = 0;
	for (int i = 0; i < 4000; i++) {
		int rc = load_one(g, "killed", i, NULL);
		if (rc == 0)
			found++;
		else if (rc != KVG_ENOTFOUND)
			bad++; /* a partial object must never be visible */
	}
	sleep(3); /* the maintenance pass (every grace_s) removes old temporaries */
	kvg_close(g);
	*(int *)arg = found;
	return bad || !found;
}

/* Description: a host killed (SIGKILL) in the middle of storing leaves only whole, verified
 * objects visible; its temporaries, and a planted old one, are removed by another host
 * after the grace period. */
static void test_kill_mid_store(void)
{
	test_sub = "kill";
	pid_t a = host_spawn(0, stores_forever, NULL);
	/* killed once it has published something (a loaded machine may take seconds to open a
	 * grid), then a little later, in the middle of further stores */
	for (int w = 0; w < 600 && tree_of(NULL).objects == 0; w++)
		usleep(100000);
	usleep(300000);
	kill(a, SIGKILL);
	CHECK(host_wait(a) == 128 + SIGKILL);
	/* an old temporary of a writer that died long ago */
	struct tree t = tree_of(NULL);
	CHECK(t.objects > 0);
	char p[4096], q[4200];
	snprintf(p, sizeof(p), "%s/%s", host_dir[0], test_sub);
	DIR *d = opendir(p);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, "t-", 2))
			snprintf(q, sizeof(q), "%s/%s/00/.tmp-planted", p, de->d_name);
	closedir(d);
	snprintf(p, sizeof(p),
		 "mkdir -p \"$(dirname '%s')\" && head -c 5000 /dev/zero > '%s' && "
		 "touch -d '1 hour ago' '%s'",
		 q, q, q);
	CHECK(system(p) == 0);
	int found = 0;
	CHECK(on_host(2, checks_killed, &found) == 0);
	t = tree_of(NULL);
	CHECK(t.temps == 0);
}

/* ---- corruption
 * ---------------------------------------------------------------------------------- */

static int stores_eight(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	int bad = store_range(g, "bad", 0, 8, 0);
	kvg_close(g);
	return bad;
}

static int copy_file(const char *from, const char *to)
{
	char cmd[9000];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	return system(cmd);
}

static int flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	uint8_t b;
	int ok = pread(fd, &b, 1, off) == 1;
	b ^= 0x5a;
	ok = ok && pwrite(fd, &b, 1, off) == 1;
	close(fd);
	return ok ? 0 : -1;
}

static int reads_planted(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	int bad = 0;
	bad |= load_one(g, "bad", 0, NULL) != 0 ? 1 : 0;
	bad |= load_one(g, "bad", 3, NULL) != KVG_ECORRUPT ? 2 : 0;   /* payload flipped */
	bad |= load_one(g, "bad", 4, NULL) != KVG_ECORRUPT ? 4 : 0;   /* header flipped */
	bad |= load_one(g, "bad", 5, NULL) != KVG_ECORRUPT ? 8 : 0;   /* cut short */
	bad |= load_one(g, "bad", 9, NULL) != KVG_ECORRUPT ? 16 : 0;  /* another key's object */
	bad |= load_one(g, "bad", 3, NULL) != KVG_ENOTFOUND ? 32 : 0; /* quarantined: gone */
	kvg_key keys[8];
	for (int i = 0; i < 8; i++)
		key_of(g, "bad", i, &keys[i]);
	size_t hit;
	kvg_lookup_keys(g, keys, 8, &hit, NULL);
	bad |= hit != 3 ? 64 : 0;
	struct kvg_tier_stats ts;
	kvg_tier_stats_get(g, KVG_TIER_SHARED, &ts);
	bad |= ts.checksum_failures != 4 ? 128 : 0;
	/* 8 published - 4 quarantined: the planted object was never counted (the maintenance
	 * scan corrects that), so the ledgers say one fewer than the directory's 5 */
	bad |= ts.blocks != 4 ? 256 : 0;
	kvg_close(g);
	if (bad)
		fprintf(stderr, "reads_planted: %#x (blocks %llu)\n", bad,
			(unsigned long long)ts.blocks);
	return bad;
}

static int stores_again(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	int bad = store_range(g, "bad", 3, 4, 0);
	kvg_close(g);
	return bad;
}

static int reads_three(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	int rc = load_one(g, "bad", 3, NULL);
	kvg_close(g);
	return rc != 0 && !(cached && rc == KVG_ENOTFOUND);
}

/* Description: bytes planted in shared objects (a flipped payload byte, a flipped header
 * byte, a cut file, a good object copied under another key's name) are found on read:
 * each is a miss (KVG_ECORRUPT), goes to quarantine and out of the usage; the block can be
 * stored again and read. */
static void test_corrupt_quarantine(void)
{
	test_sub = "corrupt";
	CHECK(on_host(0, stores_eight, NULL) == 0);
	kvg_grid *g = host_open(1, NULL); /* for key names only */
	CHECK(g);
	kvg_key k;
	char p3[4096], p4[4096], p5[4096], p6[4096], p9[4096];
	key_of(g, "bad", 3, &k), object_path(g, &k, p3, sizeof(p3));
	key_of(g, "bad", 4, &k), object_path(g, &k, p4, sizeof(p4));
	key_of(g, "bad", 5, &k), object_path(g, &k, p5, sizeof(p5));
	key_of(g, "bad", 6, &k), object_path(g, &k, p6, sizeof(p6));
	key_of(g, "bad", 9, &k), object_path(g, &k, p9, sizeof(p9));
	kvg_close(g);
	CHECK(flip_byte(p3, 4096 + 1000) == 0);
	CHECK(flip_byte(p4, 30) == 0);
	CHECK(truncate(p5, 4096 + BLOCK / 2) == 0);
	char dir9[4096];
	snprintf(dir9, sizeof(dir9), "%s", p9);
	*strrchr(dir9, '/') = 0;
	mkdir(dir9, 0755);
	CHECK(copy_file(p6, p9) == 0);
	CHECK(on_host(2, reads_planted, NULL) == 0);
	struct tree t = tree_of(NULL);
	CHECK(t.bad == 4 && t.objects == 5);
	CHECK(on_host(0, stores_again, NULL) == 0);
	CHECK(on_host(1, reads_three, NULL) == 0);
}

/* ---- capacity and quotas with three writers
 * ------------------------------------------------------ */

#define CAP	   (40ull * SPAN)
#define QUOTA	   (12ull * SPAN)
#define PER_WRITER 60

static const struct host_cfg cap_cfg[HOSTS] = {
    {.tenant = "alpha", .shared_bytes = CAP, .tenant_bytes = QUOTA},
    {.tenant = "beta", .shared_bytes = CAP},
    {.tenant = "beta", .shared_bytes = CAP},
};

static int writes_over(int h, void *arg)
{
	kvg_grid *g = host_open(h, &cap_cfg[h]);
	if (!g)
		return 1;
	gate_wait();
	char tag[16];
	snprintf(tag, sizeof(tag), "w%d", h);
	int bad = store_range(g, tag, 0, PER_WRITER, 0);
	kvg_close(g);
	return bad;
}

/* A reader during the evictions: every load is the right bytes or a miss. */
static int reads_during(int h, void *arg)
{
	kvg_grid *g = host_open(h, &cap_cfg[1]);
	if (!g)
		return 1;
	gate_wait();
	int wrong = 0;
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < PER_WRITER; i++) {
			int rc = load_one(g, round % 2 ? "w2" : "w1", i, NULL);
			wrong += rc != 0 && rc != KVG_ENOTFOUND;
		}
	kvg_close(g);
	return wrong;
}

static int usage_after_restart(int h, void *arg)
{
	kvg_grid *g = host_open(h, &cap_cfg[h]);
	if (!g)
		return 1;
	struct kvg_tier_stats ts;
	kvg_tier_stats_get(g, KVG_TIER_SHARED, &ts);
	struct tree *t = arg;
	int bad = ts.bytes != t->bytes || ts.blocks != t->objects;
	if (bad)
		fprintf(stderr, "usage after restart: %llu bytes %llu blocks, tree %llu %llu\n",
			(unsigned long long)ts.bytes, (unsigned long long)ts.blocks,
			(unsigned long long)t->bytes, (unsigned long long)t->objects);
	/* the last block the two beta writers stored is the newest of all: still there (the
	 * other writer's may have aged out meanwhile) */
	int found = 0;
	for (int w = 0; w < HOSTS; w++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "w%d", w);
		if (w)
			found += load_one(g, tag, PER_WRITER - 1, NULL) == 0;
	}
	kvg_close(g);
	return bad || found < 1;
}

/* Description: three hosts (two tenants, one with a quota) store 3x60 blocks at once into
 * a tier of 40: the tier ends under its capacity and the tenant under its quota (give or
 * take the stores of the other hosts in flight), a reader on a fourth process never gets
 * wrong bytes while blocks are evicted under it, and after every host restarted the usage
 * the tier reports is exactly what the directory holds. */
static void test_capacity_three_writers(void)
{
	test_sub = "capacity";
	int fds[2];
	CHECK(pipe(fds) == 0);
	gate_fd = fds[0];
	gate_w = fds[1];
	pid_t p[HOSTS + 1];
	for (int h = 0; h < HOSTS; h++)
		p[h] = host_spawn(h, writes_over, NULL);
	p[HOSTS] = host_spawn(1, reads_during, NULL);
	close(fds[0]);
	usleep(300000);
	close(fds[1]);
	gate_w = -1;
	int rc = 0;
	for (int h = 0; h <= HOSTS; h++)
		rc |= host_wait(p[h]);
	CHECK(rc == 0);
	struct tree all = tree_of(NULL);
	CHECK(all.temps == 0);
	fprintf(stderr, "capacity: %llu objects, %llu bytes of %llu\n",
		(unsigned long long)all.objects, (unsigned long long)all.bytes, CAP);
	CHECK(all.bytes <= CAP + (HOSTS - 1) * SPAN);
	CHECK(all.objects >= 20); /* evictions stop near the capacity, not far below */
	/* alpha's directory: the quota */
	struct tree alpha = {0};
	char p0[4096];
	snprintf(p0, sizeof(p0), "%s/%s", host_dir[0], test_sub);
	DIR *d = opendir(p0);
	struct dirent *de;
	uint64_t biggest = 0, smallest = ~0ull;
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "t-", 2))
			continue;
		char q[4400];
		snprintf(q, sizeof(q), "%s/%s", p0, de->d_name);
		struct tree t = {0};
		tree_walk(q, &t, 1);
		if (t.bytes > biggest)
			biggest = t.bytes;
		if (t.bytes < smallest)
			smallest = t.bytes, alpha = t;
	}
	if (d)
		closedir(d);
	fprintf(stderr, "quota: alpha %llu objects, %llu bytes of %llu\n",
		(unsigned long long)alpha.objects, (unsigned long long)alpha.bytes, QUOTA);
	CHECK(alpha.bytes <= QUOTA); /* (all of it may have aged out, if alpha finished first) */
	CHECK(on_host(2, usage_after_restart, &all) == 0);
}

/* ---- everything found after all hosts restart ---------------------------------------------- */

static int restarted_reads(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	int bad = 0;
	kvg_key keys[16];
	for (int i = 0; i < 16; i++)
		key_of(g, "chain", i, &keys[i]);
	size_t hit;
	kvg_lookup_keys(g, keys, 16, &hit, NULL);
	bad |= hit != 16;
	for (int i = 0; i < 16; i++)
		bad |= load_one(g, "chain", i, NULL) != 0;
	kvg_close(g);
	return bad;
}

/* Description: after every host has closed, a fresh host (new DRAM, new NVMe) finds and
 * loads every block the first test stored, and the ledger directory holds no more than the
 * ledgers of grids still open (closed ones are folded). */
static void test_restart_finds_all(void)
{
	test_sub = "a_to_c";
	CHECK(on_host(1, restarted_reads, NULL) == 0);
	CHECK(on_host(0, restarted_reads, NULL) == 0);
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s/.kvgrid/usage", host_dir[0], test_sub);
	DIR *d = opendir(p);
	CHECK(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	CHECK(n <= 2); /* the last grid's ledger, and at most one not yet folded */
}

/* ---- stale views: overwritten and replaced objects under another host's caches ------------- */

static int stores_stale(int h, void *arg)
{
	kvg_grid *g = host_open(h, NULL);
	if (!g)
		return 1;
	int bad = store_range(g, "stale", 0, 8, 0);
	kvg_close(g);
	return bad;
}

/* Loads every block `rounds` times, the parent changing the files between rounds (it waits
 * on the gate pipe for each round): returns the loads that gave wrong bytes. */
static int reads_stale(int h, void *arg)
{
	struct host_cfg hc = {.grace_s = 600};
	kvg_grid *g = host_open(h, &hc);
	if (!g)
		return 1000;
	int wrong = 0, *fds = arg;
	for (int round = 0; round < 3; round++) {
		char c;
		if (read(fds[0], &c, 1) != 1)
			break;
		for (int i = 0; i < 8; i++) {
			/* NOPROMOTE: every round reads the shared tier, not a local copy */
			static uint8_t buf[BLOCK];
			struct kvg_io io = {.buf = buf, .len = BLOCK};
			key_of(g, "stale", i, &io.key);
			int rc = kvg_load_sync(g, &io, 1, KVG_LOAD_NOPROMOTE);
			if (rc == 0 && (io.len != BLOCK || !t_verify(buf, BLOCK, &io.key, 7)))
				wrong++;
		}
		if (write(fds[3], "x", 1) != 1)
			break;
	}
	kvg_close(g);
	return wrong;
}

/* Description: a host reads blocks through its mount (its caches warm) while, through
 * another mount, their files are overwritten in place with other blocks' objects, then
 * removed and published again: every load gives the right bytes or a miss. */
static void test_stale_views(void)
{
	test_sub = "stale";
	CHECK(on_host(0, stores_stale, NULL) == 0);
	int go[2], back[2];
	CHECK(pipe(go) == 0 && pipe(back) == 0);
	int fds[4] = {go[0], go[1], back[0], back[1]};
	pid_t r = host_spawn(1, reads_stale, fds);
	close(go[0]);
	close(back[1]);
	kvg_grid *g = host_open(2, NULL);
	CHECK(g);
	char p[8][4096];
	for (int i = 0; i < 8; i++) {
		kvg_key k;
		key_of(g, "stale", i, &k);
		object_path(g, &k, p[i], sizeof(p[i]));
	}
	kvg_close(g);
	char c;
	CHECK(write(go[1], "x", 1) == 1 && read(back[0], &c, 1) == 1); /* warm */
	char tmp[4200];
	for (int i = 0; i < 8; i++) { /* in place: same inode, other bytes */
		snprintf(tmp, sizeof(tmp), "cat '%s' > '%s'", p[(i + 1) % 8], p[i]);
		if (i == 7)
			snprintf(tmp, sizeof(tmp),
				 "head -c 4096 '%s' > '%s.h' && cat '%s.h' > '%s'", p[0], p[0],
				 p[0], p[7]);
		CHECK(system(tmp) == 0);
	}
	CHECK(write(go[1], "x", 1) == 1 && read(back[0], &c, 1) == 1);
	for (int i = 0; i < 8; i++)
		unlink(p[i]);
	CHECK(on_host(0, stores_stale, NULL) == 0); /* new inodes, the right bytes */
	CHECK(write(go[1], "x", 1) == 1 && read(back[0], &c, 1) == 1);
	close(go[1]);
	close(back[0]);
	CHECK(host_wait(r) == 0);
}

/* ---- the tier's directories replaced under running grids -------------------------------------
 */

/* Loads blocks [from, to) of tag from the tier only (no promotion); returns the failures. */
static int loads_tier(kvg_grid *g, const char *tag, int from, int to)
{
	static uint8_t buf[BLOCK];
	int bad = 0;
	for (int i = from; i < to; i++) {
		struct kvg_io io = {.buf = buf, .len = BLOCK};
		key_of(g, tag, i, &io.key);
		if (kvg_load_sync(g, &io, 1, KVG_LOAD_NOPROMOTE) || io.len != BLOCK ||
		    !t_verify(buf, BLOCK, &io.key, 7) || io.tier != KVG_TIER_SHARED)
			bad++;
	}
	return bad;
}

static int replaced_dirs(int h, void *arg)
{
	kvg_grid *a = host_open(0, NULL), *c = host_open(2, NULL);
	if (!a || !c)
		return 1;
	int bad = store_range(a, "rep", 0, 8, 0) ? 1 : 0;
	bad |= loads_tier(c, "rep", 0, 8) ? 2 : 0; /* c has its <kk> directories open now */
	char cmd[4400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s'/t-*", host_dir[0], test_sub);
	int rm = 1; /* a grid's maintenance thread may still be making the <kk> directories */
	for (int i = 0; i < 40 && rm; i++)
		if ((rm = system(cmd)))
			usleep(250000);
	bad |= rm ? 4 : 0;
	bad |= load_one(c, "rep", 0, NULL) != KVG_ENOTFOUND ? 8 : 0;
	kvg_grid *b = host_open(1, NULL);
	if (!b)
		return 1;
	bad |= store_range(b, "rep", 0, 8, 0) ? 16 : 0; /* into new directories */
	usleep(1100000); /* c's miss above checked the full path: the next check is due in 1 s */
	bad |= loads_tier(c, "rep", 0, 8) ? 32 : 0; /* c finds them there */
	bad |= loads_tier(c, "rep", 0, 8) ? 64 : 0;
	bad |= store_range(a, "rep2", 0, 8, 0) ? 128 : 0; /* a publishes into new ones */
	bad |= loads_tier(c, "rep2", 0, 8) ? 256 : 0;
	kvg_close(a);
	kvg_close(b);
	kvg_close(c);
	if (bad)
		fprintf(stderr, "replaced directories: failures %#x\n", bad);
	return bad;
}

/* Description: the tenant's directories removed and made again by another host while grids
 * run (grids look names up under directories they opened once): the old objects are misses,
 * and blocks published into the new directories, by another host or by a grid that had the
 * old ones open, are found and read intact. */
static void test_replaced_dirs(void)
{
	test_sub = "replaced";
	CHECK(on_host(0, replaced_dirs, NULL) == 0);
}

/* ---- a block gone from the tier is published again ---------------------------------------- */

/* Objects, bytes written and objects made by g, as its shared tier counts them. */
static void shared_counts(kvg_grid *g, uint64_t *written, uint64_t *made)
{
	struct kvg_tier_stats ts;
	kvg_tier_stats_get(g, KVG_TIER_SHARED, &ts);
	*written = ts.bytes_written;
	*made = ts.demotions;
}

/* Whether key's object is in the tier (a file under its name, seen through host 0). */
static int object_there(kvg_grid *g, const char *tag, int i)
{
	kvg_key k;
	char p[4096];
	struct stat st;
	key_of(g, tag, i, &k);
	object_path(g, &k, p, sizeof(p));
	return p[0] && stat(p, &st) == 0;
}

/* Host B's view: block i of tag loads from the shared tier with the right bytes. */
static int shared_loads(kvg_grid *b, const char *tag, int i)
{
	static uint8_t buf[BLOCK];
	struct kvg_io io = {.buf = buf, .len = BLOCK};
	key_of(b, tag, i, &io.key);
	return kvg_load_sync(b, &io, 1, KVG_LOAD_NOPROMOTE) == 0 && io.tier == KVG_TIER_SHARED &&
	       io.len == BLOCK && t_verify(buf, BLOCK, &io.key, 7);
}

static int deletes_one(kvg_grid *b, const char *tag, int i)
{
	kvg_key k;
	key_of(b, tag, i, &k);
	return kvg_delete(b, &k, 1);
}

static const struct host_cfg demote_dram = {.demote = 1, .dram_only = 1, .cache_ms = 100};

/* The first two of blocks tag-[0, n) that g finds in the shared tier only: 0 or -1. */
static int two_shared(kvg_grid *g, const char *tag, int n, int *x, int *y)
{
	int found = 0;
	for (int i = 0; i < n && found < 2; i++) {
		kvg_key k;
		size_t hit = 0;
		uint8_t tier = KVG_TIER_NONE;
		key_of(g, tag, i, &k);
		if (kvg_lookup_keys(g, &k, 1, &hit, &tier) == 0 && hit == 1 &&
		    tier == KVG_TIER_SHARED)
			*(found++ ? y : x) = i;
	}
	return found == 2 ? 0 : -1;
}

/* A (DRAM of 16 blocks, demotion) publishes blocks as they leave its DRAM and loads two of
 * them, x and y, back (promoted: known to be in the tier); B deletes x from the tier; A
 * pushes both out of its DRAM again. */
static int republishes(int h, void *arg)
{
	kvg_grid *a = host_open(0, &demote_dram), *b = host_open(1, NULL);
	if (!a || !b)
		return 1;
	int x = -1, y = -1;
	int bad = store_range(a, "rp", 0, 40, 0) || two_shared(a, "rp", 40, &x, &y) ? 1 : 0;
	uint8_t tier;
	bad |= load_one(a, "rp", x, &tier) || tier != KVG_TIER_SHARED ? 2 : 0;
	bad |= load_one(a, "rp", y, &tier) || tier != KVG_TIER_SHARED ? 2 : 0;
	bad |= deletes_one(b, "rp", x) != 1 || object_there(a, "rp", x) ? 4 : 0;
	bad |= shared_loads(b, "rp", x) ? 4 : 0;
	uint64_t w1, m1, w2, m2, o1 = tree_of(NULL).objects;
	shared_counts(a, &w1, &m1);
	usleep(3 * demote_dram.cache_ms * 1000); /* past what A saw of x in the tier */
	bad |= store_range(a, "rp", 40, 80, 0) ? 8 : 0;
	shared_counts(a, &w2, &m2);
	uint64_t o2 = tree_of(NULL).objects;
	/* x published again; y, still there, checked and not written */
	bad |= !object_there(a, "rp", x) || !shared_loads(b, "rp", x) ? 16 : 0;
	bad |= !shared_loads(b, "rp", y) ? 32 : 0;
	bad |= m2 - m1 != o2 - o1 || w2 - w1 != (m2 - m1) * BLOCK ? 64 : 0;
	kvg_close(a);
	kvg_close(b);
	if (bad)
		fprintf(stderr,
			"republish: failures %#x (x %d y %d, made %llu, objects %llu -> %llu)\n",
			bad, x, y, (unsigned long long)(m2 - m1), (unsigned long long)o1,
			(unsigned long long)o2);
	return bad;
}

/* Description: with demotion, a block this host published, loaded back (so known to be in
 * the tier), and that another host then removed from the tier, is published again when it
 * leaves this host's DRAM once more, and the other host loads it byte-exact; a block still
 * in the tier is checked there and not written again. */
static void test_republish_after_removal(void)
{
	test_sub = "republish";
	CHECK(on_host(0, republishes, NULL) == 0);
	CHECK(tree_of(NULL).temps == 0);
}

static const struct host_cfg wt_nvme = {0};
static const struct host_cfg demote_nvme = {.demote = 1};

/* A stores rs-0..19 with write-through (published, and on its NVMe after close); B deletes
 * rs-0; A opens again on the same NVMe directory, now demoting, and pushes every rs block
 * out of its tiers with 100 others. */
static int republishes_after_reopen(int h, void *arg)
{
	kvg_grid *a = host_open(0, &wt_nvme), *b = host_open(1, NULL);
	if (!a || !b)
		return 1;
	int bad = store_range(a, "rs", 0, 20, 0) ? 1 : 0;
	kvg_close(a);
	bad |= deletes_one(b, "rs", 0) != 1 ? 2 : 0;
	a = host_open(0, &demote_nvme);
	if (!a)
		return 1;
	uint8_t tier;
	bad |= load_one(a, "rs", 0, &tier) || tier != KVG_TIER_NVME ? 4 : 0; /* recovered */
	bad |= store_range(a, "rt", 0, 100, 0) ? 8 : 0;
	uint64_t w, m;
	shared_counts(a, &w, &m);
	for (int i = 0; i < 20; i++)
		bad |= !shared_loads(b, "rs", i) ? 16 : 0;
	/* the recovered blocks still in the tier were checked, not written again */
	bad |= m == 0 || w != m * BLOCK ? 32 : 0;
	kvg_close(a);
	kvg_close(b);
	if (bad)
		fprintf(stderr, "reopen: failures %#x (made %llu, wrote %llu blocks)\n", bad,
			(unsigned long long)m, (unsigned long long)(w / BLOCK));
	return bad;
}

/* Description: blocks recovered from NVMe when a grid opens again are checked in the tier
 * before they are demoted (the grid does not remember across a restart which it
 * published): those still there are not written again, and one another host deleted
 * meanwhile is published again and loads byte-exact there. */
static void test_republish_after_reopen(void)
{
	test_sub = "reopen";
	CHECK(on_host(0, republishes_after_reopen, NULL) == 0);
	CHECK(tree_of(NULL).temps == 0);
}

/* ---- local hits keep a block's shared object recent ---------------------------------------- */

#define HOT	  8
#define HOT_CAP	  (12ull * SPAN)
#define OLD_AGE_S 1000

static const struct host_cfg touching = {.touch_s = 1};
static const struct host_cfg small_tier = {.shared_bytes = HOT_CAP};

static int64_t mtime_of(kvg_grid *g, const char *tag, int i)
{
	kvg_key k;
	char p[4096];
	struct stat st;
	key_of(g, tag, i, &k);
	object_path(g, &k, p, sizeof(p));
	return p[0] && stat(p, &st) == 0 ? (int64_t)st.st_mtime : -1;
}

static int set_mtime(kvg_grid *g, const char *tag, int i, time_t t)
{
	kvg_key k;
	char p[4096];
	key_of(g, tag, i, &k);
	object_path(g, &k, p, sizeof(p));
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	return p[0] ? utimensat(AT_FDCWD, p, ts, 0) : -1;
}

/* A publishes hot-0..7 (write-through) whose objects then look old, hot-0 the oldest; A
 * serves hot-0 from its DRAM; B, in a tier of 12 objects, stores 8 blocks of its own. */
static int hot_survives(int h, void *arg)
{
	kvg_grid *a = host_open(0, &touching);
	if (!a)
		return 1;
	int bad = store_range(a, "hot", 0, HOT, 0) ? 1 : 0;
	time_t old = time(NULL) - OLD_AGE_S;
	for (int i = 0; i < HOT; i++)
		bad |= set_mtime(a, "hot", i, old + i) ? 2 : 0;
	sleep(1); /* touch_s past the publication */
	uint8_t tier;
	bad |= load_one(a, "hot", 0, &tier) || tier != KVG_TIER_DRAM ? 4 : 0;
	int64_t m = -1;
	for (int t = 0; t < 300 && (m = mtime_of(a, "hot", 0)) < old + OLD_AGE_S / 2; t++)
		usleep(10000); /* the refresh is done in the background */
	bad |= m < old + OLD_AGE_S / 2 ? 8 : 0;
	kvg_grid *b = host_open(1, &small_tier);
	bad |= !b || store_range(b, "new", 0, HOT, 0) ? 16 : 0;
	struct kvg_tier_stats ts;
	kvg_tier_stats_get(b, KVG_TIER_SHARED, &ts);
	bad |= ts.evictions == 0 || object_there(a, "hot", 1) ? 32 : 0; /* older ones went */
	bad |= !object_there(a, "hot", 0) ? 64 : 0;
	kvg_close(b);
	kvg_close(a);
	if (bad)
		fprintf(stderr, "hot: failures %#x (%llu evicted)\n", bad,
			(unsigned long long)ts.evictions);
	return bad;
}

/* Description: a block served from a host's own DRAM refreshes its shared object's recency
 * (in the background, at most every shared_touch_s): an eviction pass by another host
 * removes older objects and keeps it, although it was the oldest before the hit. */
static void test_local_hits_keep_recency(void)
{
	test_sub = "recency";
	CHECK(on_host(0, hot_survives, NULL) == 0);
}

/* KVG_SHARED_ONLY=a,b runs only the tests whose names contain a or b */
static int wanted(const char *name)
{
	const char *only = getenv("KVG_SHARED_ONLY");
	if (!only || !*only)
		return 1;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", only);
	char *save, *tok;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (strstr(name, tok))
			return 1;
	return 0;
}

#define RUN_IF(fn)                                                                                 \
	do {                                                                                       \
		if (wanted(#fn))                                                                   \
			RUN(fn);                                                                   \
	} while (0)

int main(void)
{
	t_tmpdir(scratch, sizeof(scratch), "shared");
	const char *dirs = getenv("KVG_SHARED_DIRS");
	cached = getenv("KVG_SHARED_CACHED") && !strcmp(getenv("KVG_SHARED_CACHED"), "1");
	char one[2048];
	snprintf(one, sizeof(one), "%s/tier", scratch);
	mkdir(one, 0755);
	for (int h = 0; h < HOSTS; h++)
		snprintf(host_dir[h], sizeof(host_dir[h]), "%s", one);
	if (dirs && *dirs) {
		char buf[8192];
		snprintf(buf, sizeof(buf), "%s", dirs);
		char *save, *tok = strtok_r(buf, ":", &save);
		for (int h = 0; h < HOSTS && tok; h++, tok = strtok_r(NULL, ":", &save))
			snprintf(host_dir[h], sizeof(host_dir[h]), "%s", tok);
		t_variant = "hosts";
	} else {
		t_variant = "local";
	}
	RUN_IF(test_store_a_load_c);
	RUN_IF(test_same_block_publish);
	RUN_IF(test_kill_mid_store);
	RUN_IF(test_corrupt_quarantine);
	RUN_IF(test_capacity_three_writers);
	RUN_IF(test_restart_finds_all);
	RUN_IF(test_stale_views);
	RUN_IF(test_replaced_dirs);
	RUN_IF(test_republish_after_removal);
	RUN_IF(test_republish_after_reopen);
	RUN_IF(test_local_hits_keep_recency);
	if (!t_failed)
		t_rmdir(scratch);
	return t_failed ? 1 : 0;
}
