/*
 * test_grid.c - the grid's behaviour through the public API, swept over DRAM only, NVMe via
 * io_uring and NVMe via psync: longest-prefix lookup, store/load round trips verified byte by
 * byte, per-block statuses of mixed batches, the asynchronous request life cycle (poll, wait
 * with a timeout, done callbacks, a full request pool), refresh, delete, pin counts, session
 * hints, prefetch and two grids in one process.
 */
#include <errno.h>
#include <pthread.h>

#include "t_grid.h"

static kvg_grid *open_or_null(const struct kvg_config *c)
{
	kvg_grid *g = NULL;
	char err[512] = "";
	int rc = kvg_open(c, &g, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "kvg_open [%s]: %s (%s)\n", t_variant, err, kvg_strerror(rc));
		return NULL;
	}
	return g;
}

#define OPEN(g, c)                                                                                 \
	kvg_grid *g = open_or_null(c);                                                             \
	CHECK(g)

/* ---- lookup ---------------------------------------------------------------------------- */

/* Description: kvg_lookup answers the longest stored prefix in whole blocks: with blocks 0-2
 * of a 6-block context stored, any query of at least 3 full blocks hits 48 tokens, a query
 * of 2.5 blocks hits 32, and a query shorter than one block hits 0. */
static void lookup_partial_prefixes(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	uint32_t tok[16 * 6 + 5];
	t_tokens(tok, 16 * 6 + 5, 42);
	kvg_key k[6];
	CHECK(kvg_block_keys(g, tok, 16 * 6, NULL, k, 6) == 6);
	CHECK_RC(t_store(g, k, 3, 1000, 1), 0);
	size_t hit = 12345;
	CHECK_RC(kvg_lookup(g, tok, 16 * 6 + 5, &hit), 0);
	CHECK(hit == 48);
	CHECK_RC(kvg_lookup(g, tok, 16 * 3, &hit), 0);
	CHECK(hit == 48);
	CHECK_RC(kvg_lookup(g, tok, 16 * 3 - 1, &hit), 0);
	CHECK(hit == 32);
	CHECK_RC(kvg_lookup(g, tok, 16 * 2 + 8, &hit), 0);
	CHECK(hit == 32);
	CHECK_RC(kvg_lookup(g, tok, 15, &hit), 0);
	CHECK(hit == 0);
	CHECK_RC(kvg_lookup(g, tok, 0, &hit), 0);
	CHECK(hit == 0);
	/* another context sharing no prefix */
	uint32_t other[16 * 3];
	t_tokens(other, 16 * 3, 43);
	CHECK_RC(kvg_lookup(g, other, 16 * 3, &hit), 0);
	CHECK(hit == 0);
	kvg_close(g);
}

/* Description: a context longer than the lookup's internal batch of keys (150 blocks) is
 * answered in full, and a miss at block 100 stops the answer there. */
static void lookup_long_context(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	size_t nb = 150;
	uint32_t *tok = malloc(sizeof(uint32_t) * 16 * nb);
	kvg_key *k = malloc(sizeof(kvg_key) * nb);
	CHECK(tok && k);
	t_tokens(tok, 16 * nb, 77);
	CHECK(kvg_block_keys(g, tok, 16 * nb, NULL, k, nb) == nb);
	CHECK_RC(t_store(g, k, nb, 512, 1), 0);
	size_t hit = 0;
	CHECK_RC(kvg_lookup(g, tok, 16 * nb, &hit), 0);
	CHECK(hit == 16 * nb);
	CHECK(kvg_delete(g, &k[100], 1) == 1);
	CHECK_RC(kvg_lookup(g, tok, 16 * nb, &hit), 0);
	CHECK(hit == 16 * 100);
	free(tok);
	free(k);
	kvg_close(g);
}

/* Description: a hole in the middle ends the prefix: with blocks 0-5 stored and block 3
 * deleted, lookup hits 3 blocks, lookup_keys counts 3, and blocks 4-5 still load. */
static void lookup_stops_at_a_hole(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	uint32_t tok[16 * 6];
	t_tokens(tok, 16 * 6, 5);
	kvg_key k[6];
	CHECK(kvg_block_keys(g, tok, 16 * 6, NULL, k, 6) == 6);
	CHECK_RC(t_store(g, k, 6, 4096, 2), 0);
	CHECK(kvg_delete(g, &k[3], 1) == 1);
	size_t hit = 0;
	CHECK_RC(kvg_lookup(g, tok, 16 * 6, &hit), 0);
	CHECK(hit == 16 * 3);
	CHECK_RC(kvg_lookup_keys(g, k, 6, &hit, NULL), 0);
	CHECK(hit == 3);
	CHECK_RC(kvg_lookup_keys(g, &k[4], 2, &hit, NULL), 0);
	CHECK(hit == 2);
	CHECK_RC(t_load(g, &k[4], 4096, 2, NULL), 0);
	CHECK_RC(t_load(g, &k[3], 4096, 2, NULL), KVG_ENOTFOUND);
	kvg_close(g);
}

/* Description: tenants stay apart in one grid: blocks stored under tenant "a" are found by
 * keys of tenant "a" and not by the keys another tenant computes for the same tokens. */
static void lookup_keeps_tenants_apart(void)
{
	struct kvg_config c, cb;
	t_config(&c);
	snprintf(c.tenant, sizeof(c.tenant), "a");
	OPEN(g, &c);
	/* tenant b's keys, from a grid of the same model and layout */
	kvg_config_init(&cb);
	cb = c;
	snprintf(cb.tenant, sizeof(cb.tenant), "b");
	cb.dram_bytes = 1 << 20;
	cb.dir[0] = 0;
	OPEN(gb, &cb);
	uint32_t tok[16 * 4];
	t_tokens(tok, 16 * 4, 9);
	kvg_key ka[4], kb[4];
	CHECK(kvg_block_keys(g, tok, 16 * 4, NULL, ka, 4) == 4);
	CHECK(kvg_block_keys(gb, tok, 16 * 4, NULL, kb, 4) == 4);
	CHECK_RC(t_store(g, ka, 4, 2000, 3), 0);
	size_t hit = 99;
	CHECK_RC(kvg_lookup_keys(g, kb, 4, &hit, NULL), 0);
	CHECK(hit == 0);
	CHECK_RC(kvg_lookup_keys(g, ka, 4, &hit, NULL), 0);
	CHECK(hit == 4);
	CHECK_RC(kvg_lookup(gb, tok, 16 * 4, &hit), 0);
	CHECK(hit == 0);
	CHECK_RC(t_load(g, &kb[0], 2000, 3, NULL), KVG_ENOTFOUND);
	kvg_close(gb);
	kvg_close(g);
}

/* Description: kvg_lookup_keys reports the tier of each hit (DRAM in the DRAM variant, NVMe
 * in the NVMe ones), and the answer counts from keys[0] only. */
static void lookup_keys_reports_tiers(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	kvg_key k[5];
	CHECK(t_chain(g, 10, 5, k) == 5);
	CHECK_RC(t_store(g, &k[1], 4, 3000, 1), 0);
	uint8_t tiers[5];
	memset(tiers, 0xee, sizeof(tiers));
	size_t hit = 99;
	CHECK_RC(kvg_lookup_keys(g, k, 5, &hit, tiers), 0);
	CHECK(hit == 0);
	CHECK_RC(kvg_lookup_keys(g, &k[1], 4, &hit, tiers), 0);
	CHECK(hit == 4);
	uint8_t want = t_v->nvme ? KVG_TIER_NVME : KVG_TIER_DRAM;
	for (int i = 0; i < 4; i++)
		CHECK(tiers[i] == want);
	CHECK(tiers[4] == 0xee); /* only the hits are written */
	CHECK_RC(kvg_lookup_keys(g, k, 0, &hit, tiers), 0);
	CHECK(hit == 0);
	kvg_close(g);
}

/* ---- round trips ------------------------------------------------------------------------- */

/* Description: blocks of many sizes (1 byte, around 4096, odd sizes, over a chunk, 1 MiB+1)
 * come back byte for byte, into aligned and unaligned buffers, and a load into a larger
 * buffer reports the block's own length. */
static void store_load_round_trips(void)
{
	static const size_t sizes[] = {1,    3,	    100,   4095,   4096,	 4097,
				       8191, 32768, 65537, 200000, (1 << 20) + 1};
	static const size_t skews[] = {0, 1, 7};
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	size_t n = sizeof(sizes) / sizeof(sizes[0]);
	for (size_t s = 0; s < 3; s++)
		for (size_t i = 0; i < n; i++) {
			kvg_key key;
			uint32_t raw[2] = {(uint32_t)s, (uint32_t)i};
			kvg_raw_key(g, raw, sizeof(raw), &key);
			size_t len = sizes[i], skew = skews[s];
			uint8_t *src = t_alloc(len, skew), *dst = t_alloc(len + 100, skew);
			CHECK(src && dst);
			t_fill(src, len, &key, 5);
			struct kvg_io io = {.key = key, .buf = src, .len = len};
			CHECK_RC(kvg_store_sync(g, &io, 1, 0), 0);
			CHECK_RC(io.status, 0);
			memset(dst, 0xa5, len + 100);
			struct kvg_io ld = {.key = key, .buf = dst, .len = len + 100};
			CHECK_RC(kvg_load_sync(g, &ld, 1, 0), 0);
			CHECK_RC(ld.status, 0);
			CHECK(ld.len == len);
			CHECK(t_verify(dst, len, &key, 5));
			for (size_t b = len; b < len + 100; b++)
				CHECK(dst[b] == 0xa5); /* nothing written past the block */
			CHECK(ld.tier == (t_v->nvme ? KVG_TIER_NVME : KVG_TIER_DRAM));
			t_free(src, skew);
			t_free(dst, skew);
		}
	kvg_close(g);
}

/* Description: a zero-byte block can be stored, is found by lookup, and loads with length 0;
 * with KVG_TEST_KNOWN_BUGS=1 also from an unaligned buffer (UBSan). */
static void zero_byte_block(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	for (int unaligned = 0; unaligned < 1 + t_known_bugs(); unaligned++) {
		kvg_key key;
		kvg_raw_key(g, unaligned ? "empty-u" : "empty", unaligned ? 7 : 5, &key);
		uint8_t *b = t_alloc(16, (size_t)unaligned);
		CHECK(b);
		struct kvg_io io = {.key = key, .buf = b, .len = 0};
		CHECK_RC(kvg_store_sync(g, &io, 1, 0), 0);
		size_t hit = 0;
		CHECK_RC(kvg_lookup_keys(g, &key, 1, &hit, NULL), 0);
		CHECK(hit == 1);
		struct kvg_io ld = {.key = key, .buf = b, .len = 16};
		CHECK_RC(kvg_load_sync(g, &ld, 1, 0), 0);
		CHECK(ld.len == 0);
		t_free(b, (size_t)unaligned);
	}
	kvg_close(g);
}

/* Description: a block of max_value_bytes is accepted and one byte more is refused with
 * KVG_ETOOBIG, per block and as the request's result, and is not stored. */
static void store_over_max_value_is_too_big(void)
{
	struct kvg_config c;
	t_config(&c);
	c.max_value_bytes = 64 << 10;
	OPEN(g, &c);
	kvg_key k[2];
	kvg_raw_key(g, "max", 3, &k[0]);
	kvg_raw_key(g, "max+1", 5, &k[1]);
	uint8_t *buf = t_alloc((64 << 10) + 1, 0);
	CHECK(buf);
	struct kvg_io io[2] = {{.key = k[0], .buf = buf, .len = 64 << 10},
			       {.key = k[1], .buf = buf, .len = (64 << 10) + 1}};
	CHECK_RC(kvg_store_sync(g, io, 2, 0), KVG_ETOOBIG);
	CHECK_RC(io[0].status, 0);
	CHECK_RC(io[1].status, KVG_ETOOBIG);
	size_t hit;
	CHECK_RC(kvg_lookup_keys(g, &k[1], 1, &hit, NULL), 0);
	CHECK(hit == 0);
	CHECK_RC(kvg_lookup_keys(g, &k[0], 1, &hit, NULL), 0);
	CHECK(hit == 1);
	t_free(buf, 0);
	kvg_close(g);
}

/* Description: loading into a buffer one byte too small fails that block with KVG_EBUFSIZE
 * and leaves the block in place: a load with room succeeds afterwards. */
static void load_into_small_buffer(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	kvg_key k;
	kvg_raw_key(g, "small", 5, &k);
	CHECK_RC(t_store(g, &k, 1, 10000, 4), 0);
	uint8_t *buf = t_alloc(10000, 0);
	CHECK(buf);
	struct kvg_io io = {.key = k, .buf = buf, .len = 9999};
	CHECK_RC(kvg_load_sync(g, &io, 1, 0), KVG_EBUFSIZE);
	CHECK_RC(io.status, KVG_EBUFSIZE);
	t_free(buf, 0);
	CHECK_RC(t_load(g, &k, 10000, 4, NULL), 0);
	kvg_close(g);
}

/* Description: a batch mixing hits and misses reports each block on its own: the hits load
 * and verify, each miss is KVG_ENOTFOUND with tier NONE, and the request returns the first
 * error; the stats count the misses. */
static void batch_of_hits_and_misses(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	kvg_key k[8];
	CHECK(t_chain(g, 20, 8, k) == 8);
	kvg_key present[4] = {k[0], k[2], k[5], k[6]};
	CHECK_RC(t_store(g, present, 4, 5000, 6), 0);
	struct kvg_stats before = t_stats(g);
	struct kvg_io io[8];
	for (int i = 0; i < 8; i++) {
		io[i] = (struct kvg_io){.key = k[i], .len = 5000};
		io[i].buf = t_alloc(5000, 0);
		CHECK(io[i].buf);
	}
	CHECK_RC(kvg_load_sync(g, io, 8, 0), KVG_ENOTFOUND);
	for (int i = 0; i < 8; i++) {
		int hit = i == 0 || i == 2 || i == 5 || i == 6;
		CHECK_RC(io[i].status, hit ? 0 : KVG_ENOTFOUND);
		if (hit)
			CHECK(t_verify(io[i].buf, 5000, &k[i], 6));
		else
			CHECK(io[i].tier == KVG_TIER_NONE);
	}
	struct kvg_stats after = t_stats(g);
	uint64_t misses = after.tier[0].misses + after.tier[1].misses - before.tier[0].misses -
			  before.tier[1].misses;
	uint64_t hits =
	    after.tier[0].hits + after.tier[1].hits - before.tier[0].hits - before.tier[1].hits;
	CHECK(misses == 4);
	CHECK(hits == 4);
	CHECK(after.loads - before.loads == 8);
	for (int i = 0; i < 8; i++)
		t_free(io[i].buf, 0);
	kvg_close(g);
}

/* Description: storing a key that is already present keeps the stored bytes (a refresh),
 * reports success, and does not add a block. */
static void store_of_present_key_refreshes(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	kvg_key k;
	kvg_raw_key(g, "again", 5, &k);
	CHECK_RC(t_store(g, &k, 1, 3000, 1), 0);
	struct kvg_stats a = t_stats(g);
	CHECK_RC(t_store(g, &k, 1, 3000, 2), 0);
	struct kvg_stats b = t_stats(g);
	CHECK_RC(t_load(g, &k, 3000, 1, NULL), 0);
	CHECK(b.index_blocks == a.index_blocks);
	CHECK(b.tier[0].blocks + b.tier[1].blocks == a.tier[0].blocks + a.tier[1].blocks);
	kvg_close(g);
}

/* Description: delete removes blocks from every tier and returns how many it removed
 * (missing keys are not counted); a deleted key misses, and can be stored again with new
 * bytes. */
static void delete_removes_blocks(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	kvg_key k[4];
	CHECK(t_chain(g, 30, 4, k) == 4);
	CHECK_RC(t_store(g, k, 3, 7000, 1), 0);
	CHECK(kvg_delete(g, k, 4) == 3);
	CHECK(kvg_delete(g, k, 4) == 0);
	size_t hit = 9;
	CHECK_RC(kvg_lookup_keys(g, k, 3, &hit, NULL), 0);
	CHECK(hit == 0);
	CHECK_RC(t_load(g, &k[1], 7000, 1, NULL), KVG_ENOTFOUND);
	struct kvg_stats st = t_stats(g);
	CHECK(st.index_blocks == 0);
	CHECK(st.tier[0].blocks == 0 && st.tier[1].blocks == 0);
	CHECK(st.tier[0].bytes == 0 && st.tier[1].bytes == 0);
	CHECK_RC(t_store(g, &k[1], 1, 7000, 2), 0);
	CHECK_RC(t_load(g, &k[1], 7000, 2, NULL), 0);
	kvg_close(g);
}

/* Description: pin and unpin return the number of present keys they changed; pins nest
 * (two pins need two unpins); unpinning an unpinned key changes nothing. */
static void pin_counts(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	kvg_key k[3];
	CHECK(t_chain(g, 31, 3, k) == 3);
	CHECK_RC(t_store(g, k, 2, 1000, 1), 0);
	CHECK(kvg_pin(g, k, 3) == 2);
	CHECK(kvg_pin(g, k, 1) == 1);
	CHECK(kvg_unpin(g, k, 3) == 2);
	CHECK(kvg_unpin(g, k, 3) == 1); /* k[0] was pinned twice */
	CHECK(kvg_unpin(g, k, 3) == 0);
	kvg_close(g);
}

/* Description: the stats count stores, loads and lookups, and per tier the blocks and bytes
 * held, hits, misses, and bytes read and written. */
static void stats_count_operations(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	kvg_key k[3];
	CHECK(t_chain(g, 32, 3, k) == 3);
	struct kvg_stats a = t_stats(g);
	CHECK_RC(t_store(g, k, 2, 10000, 1), 0);
	CHECK_RC(t_load(g, &k[0], 10000, 1, NULL), 0);
	CHECK_RC(t_load(g, &k[2], 10000, 1, NULL), KVG_ENOTFOUND);
	size_t hit;
	CHECK_RC(kvg_lookup_keys(g, k, 3, &hit, NULL), 0);
	struct kvg_stats b = t_stats(g);
	int t = t_v->nvme ? KVG_TIER_NVME : KVG_TIER_DRAM;
	CHECK(b.stores - a.stores == 2);
	CHECK(b.loads - a.loads == 2);
	CHECK(b.lookups - a.lookups >= 1);
	CHECK(b.tier[t].blocks == 2);
	CHECK(b.tier[t].bytes == 20000);
	CHECK(b.tier[t].hits - a.tier[t].hits == 1);
	CHECK(b.tier[t].misses - a.tier[t].misses == 1);
	CHECK(b.tier[t].bytes_read - a.tier[t].bytes_read >= 10000);
	CHECK(b.tier[t].bytes_written - a.tier[t].bytes_written >= 20000);
	CHECK(b.tier[t].capacity_bytes == (t_v->nvme ? c.nvme_bytes : c.dram_bytes));
	CHECK(b.index_blocks == 2);
	CHECK(b.index_capacity > 0 && b.index_bytes > 0);
	CHECK(strcmp(b.tier[t].backend,
		     t_v->nvme ? (t_v->io_backend == KVG_IO_URING ? "uring" : "psync") : "arena") ==
	      0);
	kvg_close(g);
}

/* Description: one request of 600 blocks (store, then load) completes once, with every
 * block's status 0 and bytes verified. */
static void large_batches(void)
{
	struct kvg_config c;
	t_config(&c);
	c.max_blocks = 1000;
	c.chunk_bytes = 4096; /* 600 blocks of one chunk each fit the 16 MiB arena */
	OPEN(g, &c);
	enum { N = 600, LEN = 4096 };
	kvg_key *k = malloc(sizeof(kvg_key) * N);
	struct kvg_io *io = calloc(N, sizeof(*io));
	uint8_t *mem = t_alloc((size_t)N * LEN, 0);
	CHECK(k && io && mem);
	CHECK(t_chain(g, 45, N, k) == N);
	for (int i = 0; i < N; i++) {
		io[i] = (struct kvg_io){.key = k[i], .buf = mem + (size_t)i * LEN, .len = LEN};
		t_fill(io[i].buf, LEN, &k[i], 7);
	}
	CHECK_RC(kvg_store_sync(g, io, N, 0), 0);
	memset(mem, 0, (size_t)N * LEN);
	CHECK_RC(kvg_load_sync(g, io, N, 0), 0);
	for (int i = 0; i < N; i++) {
		CHECK_RC(io[i].status, 0);
		CHECK(t_verify(io[i].buf, LEN, &k[i], 7));
	}
	t_free(mem, 0);
	free(io);
	free(k);
	kvg_close(g);
}

/* ---- asynchronous requests --------------------------------------------------------------- */

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int open;    /* the blocked callback may return */
	int entered; /* the callback is running */
	int calls;
};

static void gate_init(struct gate *gt)
{
	pthread_mutex_init(&gt->mu, NULL);
	pthread_cond_init(&gt->cv, NULL);
	gt->open = gt->entered = gt->calls = 0;
}

static void gate_fini(struct gate *gt)
{
	pthread_mutex_destroy(&gt->mu);
	pthread_cond_destroy(&gt->cv);
}

/* A done callback that holds its thread until the gate opens. */
static void blocking_done(kvg_req *r, void *arg)
{
	struct gate *gt = arg;
	pthread_mutex_lock(&gt->mu);
	gt->entered = 1;
	gt->calls++;
	pthread_cond_broadcast(&gt->cv);
	while (!gt->open)
		pthread_cond_wait(&gt->cv, &gt->mu);
	pthread_mutex_unlock(&gt->mu);
}

static void gate_wait_entered(struct gate *gt)
{
	pthread_mutex_lock(&gt->mu);
	while (!gt->entered)
		pthread_cond_wait(&gt->cv, &gt->mu);
	pthread_mutex_unlock(&gt->mu);
}

static void gate_open(struct gate *gt)
{
	pthread_mutex_lock(&gt->mu);
	gt->open = 1;
	pthread_cond_broadcast(&gt->cv);
	pthread_mutex_unlock(&gt->mu);
}

/* Description: with the only worker held (by the done callback of an empty request), a
 * queued load polls KVG_EINPROGRESS, a wait with a 50 ms timeout returns KVG_EINPROGRESS,
 * a third request is refused with KVG_EBUSY (req_max 2); once the worker is free the load
 * completes, a wait returns 0 and the bytes verify.  On a grid whose only tier is NVMe a
 * load starts on the caller's thread and needs no worker, so the queued request there is
 * a store of the same bytes under another key, loaded once it is done. */
static void async_poll_wait_timeout_and_busy(void)
{
	struct kvg_config c;
	t_config(&c);
	c.workers = 1;
	c.req_max = 2;
	OPEN(g, &c);
	kvg_key k;
	kvg_raw_key(g, "async", 5, &k);
	CHECK_RC(t_store(g, &k, 1, 20000, 3), 0);
	struct gate gt;
	gate_init(&gt);
	struct kvg_req_opts hold = {.done = blocking_done, .arg = &gt};
	kvg_req *r0, *r1, *r2;
	CHECK_RC(kvg_store(g, NULL, 0, &hold, &r0), 0); /* empty: completes on the worker */
	gate_wait_entered(&gt);
	uint8_t *buf = t_alloc(20000, 0);
	CHECK(buf);
	kvg_key ks;
	kvg_raw_key(g, "async-store", 11, &ks);
	struct kvg_io io = {.key = k, .buf = buf, .len = 20000};
	if (t_v->nvme) {
		io.key = ks;
		t_fill(buf, 20000, &ks, 3);
		CHECK_RC(kvg_store(g, &io, 1, NULL, &r1), 0);
	} else {
		CHECK_RC(kvg_load(g, &io, 1, NULL, &r1), 0);
	}
	CHECK_RC(kvg_req_poll(r1), KVG_EINPROGRESS);
	CHECK_RC(kvg_req_wait(r1, 50), KVG_EINPROGRESS);
	struct kvg_io io2 = {.key = k, .buf = buf, .len = 20000};
	CHECK_RC(kvg_load(g, &io2, 1, NULL, &r2), KVG_EBUSY);
	gate_open(&gt);
	CHECK_RC(kvg_req_wait(r1, 10000), 0);
	CHECK_RC(kvg_req_poll(r1), 0);
	CHECK_RC(io.status, 0);
	if (!t_v->nvme)
		CHECK(t_verify(buf, 20000, &k, 3));
	CHECK_RC(kvg_req_wait(r0, -1), 0);
	CHECK(gt.calls == 1);
	kvg_req_free(r0);
	kvg_req_free(r1);
	if (t_v->nvme) /* the store's bytes, loaded now that the pool has room again */
		CHECK_RC(t_load(g, &ks, 20000, 3, NULL), 0);
	t_free(buf, 0);
	gate_fini(&gt);
	kvg_close(g);
}

static void count_call(kvg_req *r, void *arg)
{
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_RELEASE);
}

struct done_count {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;
	kvg_req *req;
	struct kvg_io *ios; /* the request's blocks */
	size_t n;
	int unfinished_at_call; /* blocks still KVG_EINPROGRESS when the callback ran */
};

static void counting_done(kvg_req *r, void *arg)
{
	struct done_count *d = arg;
	int unfinished = 0;
	for (size_t i = 0; i < d->n; i++)
		unfinished += d->ios[i].status == KVG_EINPROGRESS;
	pthread_mutex_lock(&d->mu);
	d->calls++;
	d->req = r;
	d->unfinished_at_call = unfinished;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

/* Description: the done callback runs exactly once per request, with the request and its
 * argument, once every block has its final status, for a store batch and for a load batch
 * with a miss; the request's result is then the first error and the bytes verify. */
static void async_done_callback(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	enum { N = 6, LEN = 12345 };
	kvg_key k[N + 1];
	CHECK(t_chain(g, 40, N + 1, k) == N + 1);
	struct kvg_io io[N + 1];
	for (int i = 0; i <= N; i++) {
		io[i] = (struct kvg_io){.key = k[i], .len = LEN};
		io[i].buf = t_alloc(LEN, 0);
		CHECK(io[i].buf);
		t_fill(io[i].buf, LEN, &k[i], 8);
	}
	struct done_count d = {
	    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, NULL, io, N, -1};
	struct kvg_req_opts o = {.done = counting_done, .arg = &d};
	kvg_req *r;
	CHECK_RC(kvg_store(g, io, N, &o, &r), 0);
	pthread_mutex_lock(&d.mu);
	while (d.calls == 0)
		pthread_cond_wait(&d.cv, &d.mu);
	pthread_mutex_unlock(&d.mu);
	CHECK(d.req == r);
	CHECK(d.unfinished_at_call == 0);
	CHECK_RC(kvg_req_wait(r, -1), 0);
	kvg_req_free(r);
	CHECK(d.calls == 1);

	for (int i = 0; i <= N; i++)
		memset(io[i].buf, 0, LEN);
	d.calls = 0;
	d.n = N + 1;
	d.unfinished_at_call = -1;
	CHECK_RC(kvg_load(g, io, N + 1, &o, &r), 0); /* the last one was never stored */
	pthread_mutex_lock(&d.mu);
	while (d.calls == 0)
		pthread_cond_wait(&d.cv, &d.mu);
	pthread_mutex_unlock(&d.mu);
	CHECK(d.unfinished_at_call == 0);
	CHECK_RC(kvg_req_wait(r, -1), KVG_ENOTFOUND);
	for (int i = 0; i < N; i++) {
		CHECK_RC(io[i].status, 0);
		CHECK(t_verify(io[i].buf, LEN, &k[i], 8));
	}
	CHECK_RC(io[N].status, KVG_ENOTFOUND);
	kvg_req_free(r);
	CHECK(d.calls == 1);
	for (int i = 0; i <= N; i++)
		t_free(io[i].buf, 0);
	kvg_close(g);
}

/* Description: many requests in flight at once from one thread (up to req_max), each
 * polled to completion in any order, all verify; kvg_req_free of a running request waits. */
static void async_many_in_flight(void)
{
	struct kvg_config c;
	t_config(&c);
	c.req_max = 16;
	OPEN(g, &c);
	enum { R = 16, B = 4, LEN = 9000 };
	kvg_key k[R * B];
	CHECK(t_chain(g, 41, R * B, k) == R * B);
	CHECK_RC(t_store(g, k, R * B, LEN, 9), 0);
	struct kvg_io io[R * B];
	kvg_req *r[R];
	for (int i = 0; i < R * B; i++) {
		io[i] = (struct kvg_io){.key = k[i], .len = LEN};
		io[i].buf = t_alloc(LEN, (size_t)i % 3);
		CHECK(io[i].buf);
	}
	for (int i = 0; i < R; i++)
		CHECK_RC(kvg_load(g, &io[i * B], B, NULL, &r[i]), 0);
	int left = R;
	uint64_t t0 = t_now_ms();
	while (left && t_now_ms() - t0 < 20000) {
		left = 0;
		for (int i = 0; i < R; i++) {
			int rc = kvg_req_poll(r[i]);
			if (rc == KVG_EINPROGRESS)
				left++;
			else
				CHECK_RC(rc, 0);
		}
	}
	CHECK(left == 0);
	for (int i = 0; i < R; i++)
		kvg_req_free(r[i]);
	for (int i = 0; i < R * B; i++) {
		CHECK(t_verify(io[i].buf, LEN, &k[i], 9));
		memset(io[i].buf, 0, LEN);
	}
	/* free without waiting first: kvg_req_free waits */
	for (int i = 0; i < R; i++)
		CHECK_RC(kvg_load(g, &io[i * B], B, NULL, &r[i]), 0);
	for (int i = 0; i < R; i++)
		kvg_req_free(r[i]);
	for (int i = 0; i < R * B; i++) {
		CHECK(t_verify(io[i].buf, LEN, &k[i], 9));
		t_free(io[i].buf, (size_t)i % 3);
	}
	kvg_close(g);
}

/* ---- grids ------------------------------------------------------------------------------- */

/* Description: two grids live in one process at once (no global state): the same keys hold
 * different bytes in each, stats are separate, and closing one leaves the other serving. */
static void two_grids_at_once(void)
{
	struct kvg_config ca, cb;
	t_config(&ca);
	char dir_a[4096];
	snprintf(dir_a, sizeof(dir_a), "%s", t_dir);
	t_dir[0] = 0; /* keep dir_a: the second t_config makes a new scratch dir */
	t_config(&cb);
	OPEN(a, &ca);
	OPEN(b, &cb);
	kvg_key k[8];
	CHECK(t_chain(a, 50, 8, k) == 8);
	CHECK_RC(t_store(a, k, 8, 6000, 1), 0);
	CHECK_RC(t_store(b, k, 4, 6000, 2), 0);
	for (int i = 0; i < 8; i++) {
		CHECK_RC(t_load(a, &k[i], 6000, 1, NULL), 0);
		CHECK_RC(t_load(b, &k[i], 6000, 2, NULL), i < 4 ? 0 : KVG_ENOTFOUND);
	}
	struct kvg_stats sa = t_stats(a), sb = t_stats(b);
	CHECK(sa.index_blocks == 8 && sb.index_blocks == 4);
	CHECK(sa.stores == 8 && sb.stores == 4);
	kvg_close(a);
	for (int i = 0; i < 4; i++)
		CHECK_RC(t_load(b, &k[i], 6000, 2, NULL), 0);
	kvg_close(b);
	if (dir_a[0])
		t_rmdir(dir_a);
}

/* Description: kvg_config_of gives the configuration the grid runs with, defaults resolved
 * (max_blocks derived from the tier sizes when 0). */
static void config_of_resolves_defaults(void)
{
	struct kvg_config c;
	t_config(&c);
	c.max_blocks = 0;
	OPEN(g, &c);
	const struct kvg_config *rc = kvg_config_of(g);
	CHECK(rc->max_blocks > 0);
	CHECK(rc->block_tokens == 16 && rc->layers == 4);
	CHECK(strcmp(rc->model_id, c.model_id) == 0);
	struct kvg_stats st = t_stats(g);
	CHECK(st.index_capacity >= rc->max_blocks);
	kvg_close(g);
}

/* Description: kvg_close waits for requests still in flight: 8 loads and 8 stores submitted
 * and never waited for all run their done callbacks before kvg_close returns, the loads'
 * bytes verify, and (NVMe) the stores are found after reopening. */
static void close_waits_for_requests_in_flight(void)
{
	struct kvg_config c;
	t_config(&c);
	enum { N = 8, LEN = 40000 };
	kvg_key k[2 * N];
	struct kvg_io io[2 * N];
	int calls = 0;
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 70, 2 * N, k) == 2 * N);
		CHECK_RC(t_store(g, k, N, LEN, 1), 0);
		struct kvg_req_opts o = {.done = count_call, .arg = &calls};
		for (int i = 0; i < 2 * N; i++) {
			io[i] = (struct kvg_io){.key = k[i], .len = LEN};
			io[i].buf = t_alloc(LEN, 0);
			CHECK(io[i].buf);
			if (i < N)
				memset(io[i].buf, 0, LEN);
			else
				t_fill(io[i].buf, LEN, &k[i], 1);
			kvg_req *r;
			if (i < N)
				CHECK_RC(kvg_load(g, &io[i], 1, &o, &r), 0);
			else
				CHECK_RC(kvg_store(g, &io[i], 1, &o, &r), 0);
		}
		kvg_close(g); /* the requests were never waited for nor freed */
	}
	CHECK(__atomic_load_n(&calls, __ATOMIC_ACQUIRE) == 2 * N);
	for (int i = 0; i < 2 * N; i++) {
		CHECK_RC(io[i].status, 0);
		CHECK(t_verify(io[i].buf, LEN, &k[i], 1));
		t_free(io[i].buf, 0);
	}
	if (!t_v->nvme)
		return;
	OPEN(g, &c);
	for (int i = 0; i < 2 * N; i++)
		CHECK_RC(t_load(g, &k[i], LEN, 1, NULL), 0);
	kvg_close(g);
}

/* Description: with write_through, a store lands on NVMe at once as well as in DRAM (a copy
 * of the directory taken before close holds it); with nvme_admit_on_reuse, DRAM victims that
 * were never loaded are dropped rather than written to NVMe, and loaded ones are demoted. */
static void write_through_and_admit_on_reuse(void)
{
	if (!t_v->nvme)
		return;
	struct kvg_config c;
	t_config(&c);
	c.dram_bytes = 1 << 20; /* 16 chunks of 64 KiB */
	c.write_through = 1;
	{
		OPEN(g, &c);
		kvg_key k[4];
		CHECK(t_chain(g, 71, 4, k) == 4);
		CHECK_RC(t_store(g, k, 4, 10000, 2), 0);
		struct kvg_stats st = t_stats(g);
		CHECK(st.tier[KVG_TIER_NVME].blocks == 4);
		CHECK(st.tier[KVG_TIER_DRAM].blocks == 4);
		uint8_t tier;
		CHECK_RC(t_load(g, &k[0], 10000, 2, &tier), 0);
		CHECK(tier == KVG_TIER_DRAM);
		kvg_close(g);
	}
	t_done();
	t_config(&c);
	c.dram_bytes = 1 << 20;
	c.nvme_admit_on_reuse = 1;
	OPEN(g, &c);
	kvg_key a[8], b[20];
	CHECK(t_chain(g, 72, 8, a) == 8);
	CHECK(t_chain(g, 73, 20, b) == 20);
	CHECK_RC(t_store(g, a, 8, 60000, 3), 0);
	for (int i = 0; i < 4; i++) /* a[0..3] are used once; a[4..7] never */
		CHECK_RC(t_load(g, &a[i], 60000, 3, NULL), 0);
	CHECK_RC(t_store(g, b, 20, 60000, 4), 0); /* pushes every a[] out of DRAM */
	for (int i = 0; i < 8; i++)
		CHECK_RC(t_load(g, &a[i], 60000, 3, NULL), i < 4 ? 0 : KVG_ENOTFOUND);
	kvg_close(g);
}

/* ---- session hints ----------------------------------------------------------------------- */

/* Stores chain keys[0..n) of len-byte blocks (t_fill with salt) in one call with flags. */
static int store_flags(kvg_grid *g, const kvg_key *keys, int n, size_t len, uint32_t salt,
		       uint32_t flags)
{
	struct kvg_io io[32];
	for (int i = 0; i < n && i < 32; i++) {
		io[i] = (struct kvg_io){
		    .key = keys[i], .buf = t_alloc(len, 0), .len = len, .depth = (uint32_t)i};
		t_fill(io[i].buf, len, &keys[i], salt);
	}
	int rc = kvg_store_sync(g, io, (size_t)n, flags);
	for (int i = 0; i < n && i < 32; i++)
		t_free(io[i].buf, 0);
	return rc;
}

/* Description: under "density" the NVMe tier does not take what will not be read: DRAM
 * victims of a session the engine marked KVG_STORE_LAST are dropped, not written to NVMe,
 * while those of a session marked KVG_STORE_CONTINUES are demoted and load from NVMe. */
static void density_keeps_ended_sessions_off_nvme(void)
{
	if (!t_v->nvme)
		return;
	struct kvg_config c;
	t_config(&c);
	c.dram_bytes = 1 << 20; /* 16 chunks of 64 KiB */
	snprintf(c.policy, sizeof(c.policy), "density");
	OPEN(g, &c);
	kvg_key a[6], b[6], x[20];
	CHECK(t_chain(g, 81, 6, a) == 6);
	CHECK(t_chain(g, 82, 6, b) == 6);
	CHECK(t_chain(g, 83, 20, x) == 20);
	CHECK_RC(store_flags(g, a, 6, 60000, 5, KVG_STORE_LAST), 0);
	CHECK_RC(store_flags(g, b, 6, 60000, 5, KVG_STORE_CONTINUES), 0);
	CHECK_RC(store_flags(g, x, 20, 60000, 5, 0), 0); /* pushes a[] and b[] out of DRAM */
	for (int i = 0; i < 6; i++) {
		uint8_t tier = 0xff;
		CHECK_RC(t_load(g, &a[i], 60000, 5, NULL), KVG_ENOTFOUND);
		CHECK_RC(t_load(g, &b[i], 60000, 5, &tier), 0);
		CHECK(tier == KVG_TIER_NVME);
	}
	kvg_close(g);
}

/* One request of the hint workload: ids [first, first + 4) as raw keys; loads the cached
 * prefix and stores the rest, as a serving layer would, with flags.  Adds the blocks that
 * were cached to *hits. */
static void hint_request(kvg_grid *g, uint64_t first, uint32_t flags, uint8_t *buf, size_t *hits)
{
	kvg_key k[4];
	struct kvg_io io[4];
	for (uint32_t i = 0; i < 4; i++) {
		uint64_t id = first + i;
		kvg_raw_key(g, &id, sizeof(id), &k[i]);
	}
	size_t hit = 0;
	CHECK_RC(kvg_lookup_keys(g, k, 4, &hit, NULL), 0);
	for (uint32_t i = 0; i < 4; i++) {
		io[i] = (struct kvg_io){
		    .key = k[i], .buf = buf + (size_t)i * 4096, .len = 4096, .depth = i};
		if (i >= hit)
			t_fill(io[i].buf, 4096, &k[i], 1);
	}
	if (hit)
		CHECK_RC(kvg_load_sync(g, io, hit, flags), 0);
	for (size_t i = 0; i < hit; i++)
		CHECK(t_verify(io[i].buf, 4096, &k[i], 1));
	if (hit < 4)
		CHECK_RC(kvg_store_sync(g, io + hit, 4 - hit, flags), 0);
	*hits += hit;
}

/* Blocks hit by the continuations of a workload where requests marked KVG_STORE_LAST are
 * never read again and those marked KVG_STORE_CONTINUES are, six rounds (48 new blocks)
 * later, in a DRAM tier of 40 blocks under "density"; hints 0 sends no flags. */
static void hint_workload_hits(int hints, size_t *hits)
{
	struct kvg_config c;
	t_config(&c);
	c.chunk_bytes = 4096;
	c.dram_bytes = 40 * 4096;
	snprintf(c.policy, sizeof(c.policy), "density");
	kvg_grid *g = open_or_null(&c);
	CHECK(g);
	uint8_t *buf = t_alloc(4 * 4096, 0);
	size_t none = 0;
	uint32_t cont = hints ? KVG_STORE_CONTINUES : 0, last = hints ? KVG_STORE_LAST : 0;
	*hits = 0;
	for (uint64_t r = 0; r < 1000 && !t_failed; r++) {
		hint_request(g, r * 10, last, buf, &none);
		hint_request(g, r * 10 + 4, cont, buf, &none);
		if (r >= 6)
			hint_request(g, (r - 6) * 10 + 4, cont, buf, hits);
	}
	t_free(buf, 0);
	kvg_close(g);
}

/* Description: the session hints (KVG_STORE_CONTINUES, KVG_STORE_LAST on kvg_store_sync and
 * kvg_load_sync) reach the eviction policy: with them "density" keeps the sessions that come
 * back and hits their continuations, which it cannot tell apart without them; bytes are
 * verified either way.  Both flags at once are refused. */
static void session_hints_reach_the_policy(void)
{
	if (t_v->nvme)
		return; /* a DRAM tier of 40 blocks: the order is the policy's alone */
	size_t plain = 0, hinted = 0;
	hint_workload_hits(0, &plain);
	hint_workload_hits(1, &hinted);
	fprintf(stderr, "continuation blocks hit: %zu without hints, %zu with\n", plain, hinted);
	CHECK(hinted > 2 * plain + 500);
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	kvg_key k;
	kvg_raw_key(g, "both", 4, &k);
	uint8_t *buf = t_alloc(4096, 0);
	struct kvg_io io = {.key = k, .buf = buf, .len = 4096};
	CHECK_RC(kvg_store_sync(g, &io, 1, KVG_STORE_CONTINUES | KVG_STORE_LAST), -EINVAL);
	CHECK_RC(kvg_load_sync(g, &io, 1, KVG_STORE_CONTINUES | KVG_STORE_LAST), -EINVAL);
	t_free(buf, 0);
	kvg_close(g);
}

/* Description: the grid names each call for the policy (policy_block.req_id, req_blocks),
 * so the blocks of one kvg_store are one request to "prefix" even without depths: filed
 * together when the next request starts, the last of them first out (a tail before its
 * head).  Unnamed, each depth-0 block would be a request of its own and the first stored
 * would go first. */
static void calls_are_named_for_the_policy(void)
{
	if (t_v->nvme)
		return; /* a DRAM tier of 4 blocks: the order is the policy's alone */
	struct kvg_config c;
	t_config(&c);
	c.chunk_bytes = 4096;
	c.dram_bytes = 4 * 4096;
	snprintf(c.policy, sizeof(c.policy), "prefix");
	OPEN(g, &c);
	kvg_key k[5];
	for (int i = 0; i < 5; i++)
		kvg_raw_key(g, &i, sizeof(i), &k[i]);
	struct kvg_io io[3];
	for (int i = 0; i < 3; i++) { /* one call: k0, k1, k2, all at depth 0 */
		io[i] = (struct kvg_io){.key = k[i], .buf = t_alloc(4096, 0), .len = 4096};
		t_fill(io[i].buf, 4096, &k[i], 7);
	}
	CHECK_RC(kvg_store_sync(g, io, 3, 0), 0);
	for (int i = 0; i < 3; i++)
		t_free(io[i].buf, 0);
	CHECK_RC(t_store(g, k + 3, 1, 4096, 7), 0);
	CHECK_RC(t_store(g, k + 4, 1, 4096, 7), 0); /* needs room: one block goes */
	CHECK_RC(t_load(g, &k[2], 4096, 7, 0), KVG_ENOTFOUND);
	for (int i = 0; i < 5; i++)
		if (i != 2)
			CHECK_RC(t_load(g, &k[i], 4096, 7, 0), 0);
	kvg_close(g);
}

/* ---- prefetch ---------------------------------------------------------------------------- */

/* Description: with DRAM and NVMe, a block that lives only on NVMe is promoted to DRAM by
 * kvg_prefetch, after which it loads from DRAM, and a load issued right after the prefetch
 * completes within 10 s (no deadlock).  Swept over (workers, prefetch
 * calls): (3, 1), (2, 2) and (1, 1). */
static void prefetch_promotes_to_dram(void)
{
	static const uint32_t cases[3][2] = {{3, 1}, {2, 2}, {1, 1}};
	for (int cs = 0; cs < 3; cs++) {
		uint32_t workers = cases[cs][0], calls = cases[cs][1];
		struct kvg_config c;
		t_config(&c);
		c.workers = workers;
		c.dram_bytes = 4 << 20;
		c.promote_on_hit = 0; /* only the prefetch moves blocks up */
		OPEN(g, &c);
		kvg_key k[4];
		CHECK(t_chain(g, 60, 4, k) == 4);
		uint8_t *buf = t_alloc(8192, 0);
		CHECK(buf);
		for (int i = 0; i < 4; i++) { /* to NVMe at once, and DRAM */
			t_fill(buf, 8192, &k[i], 1);
			struct kvg_io io = {.key = k[i], .buf = buf, .len = 8192};
			CHECK_RC(kvg_store_sync(g, &io, 1, KVG_STORE_NVME), 0);
		}
		t_free(buf, 0);
		/* fill DRAM with other blocks so the four leave it (they are on NVMe already) */
		kvg_key filler[80];
		CHECK(t_chain(g, 61, 80, filler) == 80);
		CHECK_RC(t_store(g, filler, 80, 60000, 2), 0);
		CHECK(kvg_delete(g, filler + 60, 20) == 20); /* room that needs no write-back */
		uint8_t tiers[4];
		size_t hit;
		CHECK_RC(kvg_lookup_keys(g, k, 4, &hit, tiers), 0);
		CHECK(hit == 4);
		CHECK(tiers[0] == KVG_TIER_NVME);
		CHECK(kvg_prefetch(g, k, 2) == 2);
		if (calls == 2)
			CHECK(kvg_prefetch(g, k + 2, 2) == 2);
		uint8_t *b2 = t_alloc(8192, 0);
		struct kvg_io io = {.key = k[3], .buf = b2, .len = 8192};
		kvg_req *r;
		CHECK_RC(kvg_load(g, &io, 1, NULL, &r), 0);
		int rc = kvg_req_wait(r, 10000);
		if (rc == KVG_EINPROGRESS) {
			fprintf(stderr,
				"BUG: kvg_prefetch holds a worker while it waits for "
				"a load that needs a worker (workers=%u, %u prefetch calls): "
				"deadlock\n",
				workers, calls);
			t_failed++;
			return; /* the grid is stuck: leave it */
		}
		CHECK_RC(rc, 0);
		kvg_req_free(r);
		CHECK(t_verify(b2, 8192, &k[3], 1));
		t_free(b2, 0);
		/* prefetch is a hint that runs in the background: wait for it to land */
		uint64_t t0 = t_now_ms();
		do {
			CHECK_RC(kvg_lookup_keys(g, k, 1, &hit, tiers), 0);
		} while (tiers[0] != KVG_TIER_DRAM && t_now_ms() - t0 < 10000);
		CHECK(tiers[0] == KVG_TIER_DRAM);
		uint8_t tier;
		CHECK_RC(t_load(g, &k[0], 8192, 1, &tier), 0);
		CHECK(tier == KVG_TIER_DRAM);
		CHECK(t_stats(g).tier[KVG_TIER_DRAM].promotions >= 1);
		kvg_close(g);
		t_done();
	}
}

/* The tier of key's block as a lookup sees it, waiting up to 10 s for it to become want
 * (promotions run in the background). */
static uint8_t tier_when(kvg_grid *g, const kvg_key *key, uint8_t want)
{
	uint8_t tier = KVG_TIER_NONE;
	uint64_t t0 = t_now_ms();
	do {
		size_t hit = 0;
		if (kvg_lookup_keys(g, key, 1, &hit, &tier) || !hit)
			tier = KVG_TIER_NONE;
	} while (tier != want && t_now_ms() - t0 < 10000);
	return tier;
}

/* Description: with DRAM full of blocks that are on no other tier, a block hit on NVMe is
 * still promoted: the I/O thread hands the promotion to a worker, which writes the DRAM
 * policy's victim down to NVMe to make room.  When the promoted block later leaves DRAM,
 * its NVMe record is written again (it is used since the old one was written), so that
 * whole-segment eviction sees its last use.  Every block keeps its bytes throughout. */
static void promotion_displaces_dram_victims(void)
{
	struct kvg_config c;
	t_config(&c);
	c.dram_bytes = 8 * (64 << 10); /* 8 blocks of 60000 bytes, one chunk each */
	OPEN(g, &c);
	kvg_key a[8], b[8], cc[8];
	CHECK(t_chain(g, 70, 8, a) == 8 && t_chain(g, 71, 8, b) == 8 && t_chain(g, 72, 8, cc) == 8);
	CHECK_RC(t_store(g, a, 8, 60000, 1), 0);
	CHECK_RC(t_store(g, b, 8, 60000, 2), 0); /* a[] demoted: DRAM holds b[] alone */
	struct kvg_stats s0 = t_stats(g);
	CHECK(s0.tier[KVG_TIER_DRAM].demotions == 8);
	uint8_t tier;
	CHECK_RC(t_load(g, &a[0], 60000, 1, &tier), 0);
	CHECK(tier == KVG_TIER_NVME);
	CHECK(tier_when(g, &a[0], KVG_TIER_DRAM) == KVG_TIER_DRAM);
	struct kvg_stats s1 = t_stats(g);
	CHECK(s1.tier[KVG_TIER_DRAM].promotions == 1);
	CHECK(s1.tier[KVG_TIER_DRAM].demotions == 9); /* b[0], the LRU victim, went down */
	CHECK(tier_when(g, &b[0], KVG_TIER_NVME) == KVG_TIER_NVME);
	CHECK_RC(t_load(g, &a[0], 60000, 1, &tier), 0);
	CHECK(tier == KVG_TIER_DRAM);
	/* eight new blocks push out b[1..7] and a[0]: all eight are written down, a[0] too */
	CHECK_RC(t_store(g, cc, 8, 60000, 3), 0);
	struct kvg_stats s2 = t_stats(g);
	CHECK(s2.tier[KVG_TIER_DRAM].demotions == 17);
	/* b[1..7] are new there; a[0]'s new record replaced its old one */
	CHECK(s2.tier[KVG_TIER_NVME].blocks == s1.tier[KVG_TIER_NVME].blocks + 7);
	for (int i = 0; i < 8; i++) {
		CHECK_RC(t_load(g, &a[i], 60000, 1, NULL), 0);
		CHECK_RC(t_load(g, &b[i], 60000, 2, NULL), 0);
		CHECK_RC(t_load(g, &cc[i], 60000, 3, NULL), 0);
	}
	kvg_close(g);
}

/* Description: with dram_free_bytes, a worker demotes in the background: once stores fill
 * DRAM, a store that leaves less than half of that room free (here 4 of 16 chunks) starts
 * a clean that writes victims down ahead of need until it is free again, so DRAM ends the
 * burst with at least 3 chunks free, even when the last stores ran during a clean; every
 * block still loads byte for byte from one tier or the other. */
static void background_demotion_keeps_dram_free(void)
{
	struct kvg_config c;
	t_config(&c);
	c.dram_bytes = 16 * (64 << 10); /* 16 blocks of 60000 bytes, one chunk each */
	c.dram_free_bytes = 4 * (64 << 10);
	OPEN(g, &c);
	kvg_key k[40];
	CHECK(t_chain(g, 80, 40, k) == 40);
	for (int j = 0; j < 5; j++)
		CHECK_RC(t_store(g, k + 8 * j, 8, 60000, 1), 0);
	struct kvg_stats st = t_stats(g);
	uint64_t t0 = t_now_ms();
	while (st.tier[KVG_TIER_DRAM].blocks > 13 && t_now_ms() - t0 < 10000) {
		usleep(10000);
		st = t_stats(g);
	}
	if (st.tier[KVG_TIER_DRAM].blocks > 13 || st.tier[KVG_TIER_DRAM].blocks < 8)
		fprintf(stderr, "DRAM holds %llu blocks after %llu ms, %llu demotions\n",
			(unsigned long long)st.tier[KVG_TIER_DRAM].blocks,
			(unsigned long long)(t_now_ms() - t0),
			(unsigned long long)st.tier[KVG_TIER_DRAM].demotions);
	CHECK(st.tier[KVG_TIER_DRAM].blocks <= 13 && st.tier[KVG_TIER_DRAM].blocks >= 8);
	CHECK(st.tier[KVG_TIER_DRAM].demotions >= 27);
	for (int i = 0; i < 40; i++)
		CHECK_RC(t_load(g, &k[i], 60000, 1, NULL), 0);
	kvg_close(g);
}

/* Description: in durable mode a promoted block is not written again when it leaves DRAM:
 * its record already holds what was acknowledged, and rewrites would only leave dead
 * records that fill segments, which eviction takes whole, acknowledged blocks with them.
 * Loads that promote and evict over and over write nothing, and every block stays. */
static void durable_promotions_write_nothing(void)
{
	struct kvg_config c;
	t_config(&c);
	c.dram_bytes = 8 * (64 << 10);
	c.durability = KVG_DURABILITY_DURABLE;
	OPEN(g, &c);
	kvg_key k[16];
	CHECK(t_chain(g, 80, 16, k) == 16);
	CHECK_RC(t_store(g, k, 16, 60000, 1), 0);
	struct kvg_stats s0 = t_stats(g);
	for (int round = 0; round < 4; round++)
		for (int i = 0; i < 16; i++)
			CHECK_RC(t_load(g, &k[i], 60000, 1, NULL), 0);
	struct kvg_stats s1 = t_stats(g);
	CHECK(s1.tier[KVG_TIER_DRAM].promotions > 0);
	CHECK(s1.tier[KVG_TIER_DRAM].demotions == s0.tier[KVG_TIER_DRAM].demotions);
	CHECK(s1.tier[KVG_TIER_NVME].bytes_written == s0.tier[KVG_TIER_NVME].bytes_written);
	CHECK(s1.tier[KVG_TIER_NVME].blocks == 16);
	kvg_close(g);
}

int main(void)
{
	SWEEP(lookup_partial_prefixes);
	SWEEP(lookup_long_context);
	SWEEP(lookup_stops_at_a_hole);
	SWEEP(lookup_keeps_tenants_apart);
	SWEEP(lookup_keys_reports_tiers);
	SWEEP(store_load_round_trips);
	SWEEP(zero_byte_block);
	SWEEP(store_over_max_value_is_too_big);
	SWEEP(load_into_small_buffer);
	SWEEP(batch_of_hits_and_misses);
	SWEEP(store_of_present_key_refreshes);
	SWEEP(delete_removes_blocks);
	SWEEP(pin_counts);
	SWEEP(stats_count_operations);
	SWEEP(large_batches);
	SWEEP(async_poll_wait_timeout_and_busy);
	SWEEP(async_done_callback);
	SWEEP(async_many_in_flight);
	SWEEP(two_grids_at_once);
	SWEEP(config_of_resolves_defaults);
	SWEEP(close_waits_for_requests_in_flight);
	SWEEP(session_hints_reach_the_policy);
	SWEEP(calls_are_named_for_the_policy);
	SWEEP(density_keeps_ended_sessions_off_nvme);
	SWEEP_NVME(write_through_and_admit_on_reuse);
	SWEEP_NVME(prefetch_promotes_to_dram);
	SWEEP_NVME(promotion_displaces_dram_victims);
	SWEEP_NVME(background_demotion_keeps_dram_free);
	SWEEP_NVME(durable_promotions_write_nothing);
	T_EXIT();
}
