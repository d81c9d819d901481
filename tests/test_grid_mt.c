/*
 * test_grid_mt.c - many engine threads on one grid at once, swept over DRAM only, NVMe via
 * io_uring, NVMe via psync, and DRAM in front of NVMe (demotion under load); also run under
 * ThreadSanitizer by make test.  Every block's bytes are a function of its key alone, so a
 * load that succeeds must verify whoever stored it; small tiers keep eviction busy.
 * A watchdog turns a hang into a failure.
 */
#include <pthread.h>
#include <signal.h>

#include "t_grid.h"

#if defined(__SANITIZE_THREAD__)
#define T_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define T_TSAN 1
#endif
#endif
#ifndef T_TSAN
#define T_TSAN 0
#endif

/* A way to set a variant aside under ThreadSanitizer while a reported race is open (none
 * now). */
static int nvme_skipped_here(void)
{
	(void)T_TSAN;
	return 0;
}

#define THREADS 6
#define SHARED	96   /* keys every thread stores and loads */
#define RUN_MS	1500 /* per configuration */

struct shared {
	kvg_grid *g;
	kvg_key keys[SHARED];
	size_t lens[SHARED];
	uint64_t deadline_ms;
	int wrong_bytes; /* loads that succeeded with bad bytes or length */
	int bad_status;	 /* statuses outside the expected set */
	uint64_t loads_ok, stores_ok, misses;
};

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL test_grid_mt: watchdog: the grid hung\n";
	(void)sig;
	if (write(2, msg, sizeof(msg) - 1)) {
	}
	_exit(1);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *engine_thread(void *arg)
{
	struct shared *sh = ((void **)arg)[0];
	uint64_t seed = (uint64_t)(uintptr_t)((void **)arg)[1] * 7919 + 1;
	size_t maxlen = 0;
	for (int i = 0; i < SHARED; i++)
		if (sh->lens[i] > maxlen)
			maxlen = sh->lens[i];
	uint8_t *buf[4];
	for (int b = 0; b < 4; b++)
		buf[b] = t_alloc(maxlen, (size_t)b * 3);
	uint64_t loads_ok = 0, stores_ok = 0, misses = 0;
	int wrong = 0, bad = 0;
	while (t_now_ms() < sh->deadline_ms) {
		/* a batch of 4 blocks: store or load */
		struct kvg_io io[4];
		int store = rnd(&seed) % 3 == 0;
		for (int b = 0; b < 4; b++) {
			int i = (int)(rnd(&seed) % SHARED);
			io[b] = (struct kvg_io){.key = sh->keys[i],
						.buf = buf[b],
						.len = sh->lens[i],
						.depth = (uint32_t)i};
			if (store)
				t_fill(buf[b], sh->lens[i], &sh->keys[i], 0);
			else
				memset(buf[b], 0, sh->lens[i]);
		}
		int rc = store ? kvg_store_sync(sh->g, io, 4, 0) : kvg_load_sync(sh->g, io, 4, 0);
		(void)rc;
		for (int b = 0; b < 4; b++) {
			int st = io[b].status;
			if (store) {
				if (st == 0)
					stores_ok++;
				else if (st != KVG_EFULL)
					bad++;
			} else if (st == 0) {
				if (io[b].len != sh->lens[io[b].depth] ||
				    !t_verify(buf[b], io[b].len, &io[b].key, 0))
					wrong++;
				loads_ok++;
			} else if (st == KVG_ENOTFOUND || st == KVG_ECORRUPT) {
				misses++;
			} else {
				bad++;
			}
		}
		if (rnd(&seed) % 16 == 0) { /* lookups, pins and deletes mixed in */
			int i = (int)(rnd(&seed) % (SHARED - 8));
			size_t hit;
			uint8_t tiers[8];
			if (kvg_lookup_keys(sh->g, &sh->keys[i], 8, &hit, tiers) || hit > 8)
				bad++;
			int p = kvg_pin(sh->g, &sh->keys[i], 2);
			if (p < 0 || p > 2)
				bad++;
			kvg_unpin(sh->g, &sh->keys[i], 2);
			if (rnd(&seed) % 4 == 0)
				kvg_delete(sh->g, &sh->keys[i], 1);
		}
	}
	for (int b = 0; b < 4; b++)
		t_free(buf[b], (size_t)b * 3);
	__atomic_add_fetch(&sh->loads_ok, loads_ok, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->stores_ok, stores_ok, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->misses, misses, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->wrong_bytes, wrong, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->bad_status, bad, __ATOMIC_RELAXED);
	return NULL;
}

static int mixed; /* 1: the NVMe variant runs with a DRAM tier in front */

/* Description: 6 threads store, load, look up, pin and delete batches of 4 blocks from a
 * shared set of 96 keys (sizes 1 B to 150 KiB) on a grid too small to hold them all, for
 * 1.5 s: every load that succeeds verifies byte for byte, every status is 0, a miss or
 * KVG_EFULL, and afterwards the tiers hold no more than their capacity and every present
 * block verifies. */
static void threads_store_and_load(void)
{
	if (nvme_skipped_here())
		return;
	struct kvg_config c;
	t_config(&c);
	if (!t_v->nvme)
		c.dram_bytes = 2 << 20;
	if (mixed) {
		if (!t_v->nvme)
			return;
		c.dram_bytes = 2 << 20;
	}
	c.nvme_bytes = 16 << 20;
	c.segment_bytes = 1 << 20;
	c.workers = 3;
	struct shared *sh = calloc(1, sizeof(*sh));
	CHECK(sh);
	char err[256] = "";
	CHECK_RC(kvg_open(&c, &sh->g, err, sizeof(err)), 0);
	CHECK(t_chain(sh->g, 500, SHARED, sh->keys) == SHARED);
	for (int i = 0; i < SHARED; i++)
		sh->lens[i] = i == 0 ? 1 : (size_t)(t_token(9, (size_t)i) % (150 << 10)) + 1;
	sh->deadline_ms = t_now_ms() + RUN_MS;
	pthread_t th[THREADS];
	void *args[THREADS][2];
	for (int t = 0; t < THREADS; t++) {
		args[t][0] = sh;
		args[t][1] = (void *)(uintptr_t)(t + 1);
		CHECK(pthread_create(&th[t], NULL, engine_thread, args[t]) == 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	CHECK(sh->wrong_bytes == 0);
	CHECK(sh->bad_status == 0);
	CHECK(sh->stores_ok > 0 && sh->loads_ok > 0);
	struct kvg_stats st = t_stats(sh->g);
	for (int t = 0; t < KVG_TIER_COUNT; t++)
		CHECK(st.tier[t].bytes <= st.tier[t].capacity_bytes);
	CHECK(st.tier[KVG_TIER_NVME].checksum_failures == 0);
	for (int i = 0; i < SHARED; i++) {
		int rc = t_load(sh->g, &sh->keys[i], sh->lens[i], 0, NULL);
		CHECK(rc == 0 || rc == KVG_ENOTFOUND);
	}
	kvg_close(sh->g);
	free(sh);
}

struct async_ctx {
	kvg_grid *g;
	int thread;
	int done_calls;
	int failures;
};

static void count_done(kvg_req *r, void *arg)
{
	int *calls = arg;
	__atomic_add_fetch(calls, 1, __ATOMIC_RELAXED);
}

static void *async_thread(void *arg)
{
	struct async_ctx *a = arg;
	enum { R = 4, B = 4, LEN = 20000 };
	kvg_key k[R * B];
	uint32_t raw[2] = {(uint32_t)a->thread, 0};
	for (int i = 0; i < R * B; i++) {
		raw[1] = (uint32_t)i;
		kvg_raw_key(a->g, raw, sizeof(raw), &k[i]);
	}
	struct kvg_io io[R * B];
	uint8_t *bufs = malloc((size_t)R * B * LEN);
	if (!bufs) {
		a->failures++;
		return NULL;
	}
	for (int round = 0; round < 10; round++) {
		int op = round % 2; /* store, then load the same blocks */
		kvg_req *r[R];
		for (int i = 0; i < R * B; i++) {
			io[i] =
			    (struct kvg_io){.key = k[i], .buf = bufs + (size_t)i * LEN, .len = LEN};
			if (op == 0)
				t_fill(io[i].buf, LEN, &k[i], (uint32_t)round);
			else
				memset(io[i].buf, 0, LEN);
		}
		struct kvg_req_opts o = {.done = count_done, .arg = &a->done_calls};
		int oldest = 0; /* requests before this one have been waited for and freed */
		for (int q = 0; q < R; q++) {
			int rc;
			while ((rc = op == 0
					 ? kvg_store(a->g, &io[q * B], B, &o, &r[q])
					 : kvg_load(a->g, &io[q * B], B, &o, &r[q])) == KVG_EBUSY) {
				/* the pool counts requests until they are freed: free one of ours
				 */
				if (oldest < q) {
					if (r[oldest] && kvg_req_wait(r[oldest], -1))
						a->failures++;
					kvg_req_free(r[oldest]);
					r[oldest++] = NULL;
				} else {
					usleep(100);
				}
			}
			if (rc) {
				a->failures++;
				r[q] = NULL;
			}
		}
		for (int q = oldest; q < R; q++) {
			if (!r[q])
				continue;
			if (kvg_req_wait(r[q], -1))
				a->failures++;
			kvg_req_free(r[q]);
		}
		if (op == 1)
			for (int i = 0; i < R * B;
			     i++) /* stored in round-1: a refresh keeps round 0 */
				if (!t_verify(io[i].buf, LEN, &k[i], 0))
					a->failures++;
	}
	free(bufs);
	return NULL;
}

/* Description: 8 threads each keep up to 4 asynchronous requests in flight on a grid whose
 * request pool (req_max 12) is smaller than their total; on KVG_EBUSY a thread frees one of
 * its own requests and retries: every request completes with 0, its done callback runs
 * exactly once, and the loads verify. */
static void threads_with_async_requests(void)
{
	if (mixed || nvme_skipped_here())
		return;
	struct kvg_config c;
	t_config(&c);
	c.req_max = 12;
	enum { T = 8 };
	kvg_grid *g = NULL;
	char err[256] = "";
	CHECK_RC(kvg_open(&c, &g, err, sizeof(err)), 0);
	struct async_ctx a[T];
	pthread_t th[T];
	for (int t = 0; t < T; t++) {
		a[t] = (struct async_ctx){g, t, 0, 0};
		CHECK(pthread_create(&th[t], NULL, async_thread, &a[t]) == 0);
	}
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < T; t++) {
		CHECK(a[t].failures == 0);
		CHECK(a[t].done_calls == 10 * 4);
	}
	kvg_close(g);
}

#define DEMO_LEN (1 << 20)

struct demo_ctx {
	kvg_grid *g;
	kvg_key *keys;
	int n;
	uint64_t deadline_ms;
	int stored; /* keys[0..stored) have been stored (release/acquire) */
	int wrong;
};

static void *demo_storer(void *arg)
{
	struct demo_ctx *d = arg;
	for (int i = 0; i < d->n && t_now_ms() < d->deadline_ms; i++) {
		t_store(d->g, &d->keys[i], 1, DEMO_LEN, 22);
		__atomic_store_n(&d->stored, i + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Loads, again and again, the oldest block still in DRAM: the next one to be demoted. */
static void *demo_loader(void *arg)
{
	struct demo_ctx *d = arg;
	while (t_now_ms() < d->deadline_ms) {
		int s = __atomic_load_n(&d->stored, __ATOMIC_ACQUIRE);
		for (int i = s > 12 ? s - 12 : 0; i < s; i++) {
			uint8_t tier;
			size_t hit;
			if (kvg_lookup_keys(d->g, &d->keys[i], 1, &hit, &tier) || !hit ||
			    tier != KVG_TIER_DRAM)
				continue;
			int rc = t_load(d->g, &d->keys[i], DEMO_LEN, 22, NULL);
			if (rc != 0 && rc != KVG_ENOTFOUND)
				__atomic_add_fetch(&d->wrong, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

/* Description: loads of blocks while they are being demoted from DRAM to NVMe (a DRAM tier
 * of four 1 MiB blocks, one thread storing new blocks, two loading the oldest block still in
 * DRAM) neither hang the grid nor fail: every load verifies or misses, and afterwards every
 * block loads (a load during a demotion called the policy's hit() on a
 * block its victim() had removed, corrupting the list; the grid spun in victim()). */
static void loads_during_demotion(void)
{
	if (!t_v->nvme || mixed)
		return;
	alarm(60); /* a hang fails in a minute, not four */
	struct kvg_config c;
	t_config(&c);
	c.dram_bytes = 4 << 20;
	c.nvme_bytes = 512ull << 20; /* 384 records of 1 MiB: all N fit, a miss is a lost block */
	c.workers = 3;
	enum { N = 200 };
	kvg_key *k = malloc(sizeof(kvg_key) * N);
	CHECK(k);
	char err[256] = "";
	kvg_grid *g = NULL;
	CHECK_RC(kvg_open(&c, &g, err, sizeof(err)), 0);
	CHECK(t_chain(g, 700, N, k) == N);
	struct demo_ctx d = {g, k, N, t_now_ms() + 1500, 0, 0};
	pthread_t th[3];
	CHECK(pthread_create(&th[0], NULL, demo_storer, &d) == 0);
	CHECK(pthread_create(&th[1], NULL, demo_loader, &d) == 0);
	CHECK(pthread_create(&th[2], NULL, demo_loader, &d) == 0);
	for (int t = 0; t < 3; t++)
		pthread_join(th[t], NULL);
	CHECK(d.wrong == 0);
	for (int i = 0; i < d.stored; i++)
		CHECK_RC(t_load(g, &k[i], DEMO_LEN, 22, NULL), 0);
	kvg_close(g);
	free(k);
	alarm(240);
}

struct durable_ctx {
	kvg_grid *g;
	kvg_key *keys;
	int n;
	int seed;
	int failures;
};

static void *durable_thread(void *arg)
{
	struct durable_ctx *d = arg;
	for (int j = 0; j < d->n; j++) {
		int i = (j * 7 + d->seed * 13) % d->n; /* each thread its own order */
		if (t_store(d->g, &d->keys[i], 1, 20000, 23))
			d->failures++;
	}
	return NULL;
}

/* Description: in durable mode, 4 threads storing the same 40 keys in different orders each
 * see every store return only once the block is on NVMe: a copy of the directory taken right
 * after (no close: a crash) recovers all 40 and every one verifies. */
static void durable_stores_from_threads(void)
{
	if (!t_v->nvme || mixed)
		return;
	struct kvg_config c;
	t_config(&c);
	c.dram_bytes = 4 << 20;
	c.durability = KVG_DURABILITY_DURABLE;
	c.workers = 4;
	enum { N = 40, T = 4 };
	kvg_key k[N];
	char copy[4096];
	snprintf(copy, sizeof(copy), "%.4000s.copy", t_dir);
	kvg_grid *g = NULL;
	char err[256] = "";
	CHECK_RC(kvg_open(&c, &g, err, sizeof(err)), 0);
	CHECK(t_chain(g, 800, N, k) == N);
	struct durable_ctx d[T];
	pthread_t th[T];
	for (int t = 0; t < T; t++) {
		d[t] = (struct durable_ctx){g, k, N, t, 0};
		CHECK(pthread_create(&th[t], NULL, durable_thread, &d[t]) == 0);
	}
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < T; t++)
		CHECK(d[t].failures == 0);
	char cmd[9000];
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s'", t_dir, copy);
	CHECK(system(cmd) == 0);
	kvg_close(g);
	struct kvg_config cc = c;
	snprintf(cc.dir, sizeof(cc.dir), "%.4000s", copy);
	g = NULL;
	int rc = kvg_open(&cc, &g, err, sizeof(err));
	if (rc)
		t_rmdir(copy);
	CHECK_RC(rc, 0);
	int lost = 0;
	for (int i = 0; i < N; i++)
		lost += t_load(g, &k[i], 20000, 23, NULL) != 0;
	kvg_close(g);
	t_rmdir(copy);
	CHECK(lost == 0);
}

struct closer {
	kvg_grid *g;
};

static void *close_thread(void *arg)
{
	kvg_close(((struct closer *)arg)->g);
	return NULL;
}

/* Description: two grids in one process close at the same moment from two threads (each
 * writes its checkpoint), then both reopen and find every block: closing shares nothing. */
static void two_grids_close_at_once(void)
{
	if (!t_v->nvme || mixed || nvme_skipped_here())
		return;
	struct kvg_config ca, cb;
	t_config(&ca);
	char dir_a[4096];
	snprintf(dir_a, sizeof(dir_a), "%s", t_dir);
	t_dir[0] = 0;
	t_config(&cb);
	enum { N = 300, LEN = 4096 };
	kvg_key *k = malloc(sizeof(kvg_key) * N);
	CHECK(k);
	for (int round = 0; round < 3; round++) {
		kvg_grid *ga = NULL, *gb = NULL;
		char err[256] = "";
		CHECK_RC(kvg_open(&ca, &ga, err, sizeof(err)), 0);
		CHECK_RC(kvg_open(&cb, &gb, err, sizeof(err)), 0);
		CHECK(t_stats(ga).recovered_blocks == (round ? N : 0));
		CHECK(t_stats(gb).recovered_blocks == (round ? N : 0));
		if (round == 0) {
			CHECK(t_chain(ga, 600, N, k) == N);
			CHECK_RC(t_store(ga, k, N, LEN, 1), 0);
			CHECK_RC(t_store(gb, k, N, LEN, 2), 0);
		}
		CHECK_RC(t_load(ga, &k[N - 1], LEN, 1, NULL), 0);
		CHECK_RC(t_load(gb, &k[N - 1], LEN, 2, NULL), 0);
		struct closer x = {ga}, y = {gb};
		pthread_t t1, t2;
		CHECK(pthread_create(&t1, NULL, close_thread, &x) == 0);
		CHECK(pthread_create(&t2, NULL, close_thread, &y) == 0);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
	}
	free(k);
	t_rmdir(dir_a);
}

int main(void)
{
	signal(SIGALRM, on_alarm);
	alarm(240);
	SWEEP(threads_store_and_load);
	mixed = 1;
	fprintf(stderr, "with DRAM in front of NVMe:\n");
	SWEEP_NVME(threads_store_and_load);
	mixed = 0;
	SWEEP(threads_with_async_requests);
	SWEEP(two_grids_close_at_once);
	SWEEP_NVME(loads_during_demotion);
	SWEEP_NVME(durable_stores_from_threads);
	T_EXIT();
}
