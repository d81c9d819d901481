/*
 * small_blocks.c - where a small block's time goes on the DRAM tier: the cost per block of
 * each stage of a load and a store through the C API, on one thread, next to a plain
 * memcpy of the same bytes on the same thread.
 *
 *   copy:        memcpy of the block from a region as big as the resident set (the floor);
 *   lookup:      kvg_lookup_keys of 512 present keys, per key;
 *   load_sync:   kvg_load_sync of BATCH blocks: submission, index and policy work under
 *                the grid lock, the copy and completion, all on the calling thread;
 *   load_async:  kvg_load + kvg_req_wait of BATCH blocks, one request in flight: the same
 *                work plus the hand-off to a worker and back;
 *   store_sync, store_async: the same for stores of new keys (DRAM full: each store
 *                evicts, as `kvgrid bench` does in steady state).
 * Each figure is the median of REPS timings of ITERS requests, in ns per block; the fixed
 * cost of a stage is its figure minus copy.  Usage: small_blocks BLOCK_BYTES BATCH
 * [ITERS [REPS]].  Prints one JSON object.  With REPS 1 and small ITERS it is the program
 * to run under callgrind (instructions per block: divide by ITERS * BATCH).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "kvgrid.h"

#define LOOKUP_KEYS 512

struct ctx {
	kvg_grid *g;
	size_t block, batch, resident, iters;
	uint64_t next_key; /* stores: keys never stored before */
	uint64_t rng;
	uint8_t *region; /* memcpy source, as big as the resident set */
	uint8_t *buf;	 /* batch blocks: the destination of loads, the source of stores */
	struct kvg_io *ios;
	kvg_key *keys;	   /* the resident set's keys (hashed once, not timed) */
	kvg_key *new_keys; /* stores: keys never stored, made before each timing */
	size_t new_used;
};

/* Key k (bench.h). */
static void key_of(struct ctx *c, uint64_t k, kvg_key *key)
{
	(void)c;
	bench_key_of(k, key);
}

/* ios for a request of batch blocks: random resident keys (load) or new ones (store). */
static void fill_ios(struct ctx *c, int load)
{
	for (size_t b = 0; b < c->batch; b++) {
		c->rng ^= c->rng << 13, c->rng ^= c->rng >> 7, c->rng ^= c->rng << 17;
		c->ios[b].key = load ? c->keys[c->rng % c->resident] : c->new_keys[c->new_used++];
		c->ios[b].buf = c->buf + b * c->block;
		c->ios[b].len = c->block;
	}
}

static int one_req(struct ctx *c, int load, int async)
{
	fill_ios(c, load);
	if (!async)
		return load ? kvg_load_sync(c->g, c->ios, c->batch, 0)
			    : kvg_store_sync(c->g, c->ios, c->batch, 0);
	kvg_req *r;
	int rc = load ? kvg_load(c->g, c->ios, c->batch, NULL, &r)
		      : kvg_store(c->g, c->ios, c->batch, NULL, &r);
	if (rc)
		return rc;
	rc = kvg_req_wait(r, -1);
	kvg_req_free(r);
	return rc;
}

/* ns per block of iters requests of one kind; -1 on a failed request */
static double time_reqs(struct ctx *c, int load, int async)
{
	for (size_t i = 0; !load && i < c->iters * c->batch; i++)
		key_of(c, c->next_key++, &c->new_keys[i]);
	c->new_used = 0;
	double t0 = now_s();
	for (size_t i = 0; i < c->iters; i++)
		if (one_req(c, load, async))
			return -1;
	return (now_s() - t0) * 1e9 / (c->iters * c->batch);
}

static double time_copy(struct ctx *c)
{
	double t0 = now_s();
	for (size_t i = 0; i < c->iters; i++)
		for (size_t b = 0; b < c->batch; b++) {
			c->rng ^= c->rng << 13, c->rng ^= c->rng >> 7, c->rng ^= c->rng << 17;
			memcpy(c->buf + b * c->block, c->region + (c->rng % c->resident) * c->block,
			       c->block);
		}
	return (now_s() - t0) * 1e9 / (c->iters * c->batch);
}

static double time_lookup(struct ctx *c)
{
	size_t hit = 0;
	double t0 = now_s();
	for (size_t i = 0; i < c->iters; i++)
		kvg_lookup_keys(c->g, c->keys, LOOKUP_KEYS, &hit, NULL);
	double ns = (now_s() - t0) * 1e9 / (c->iters * LOOKUP_KEYS);
	return hit == LOOKUP_KEYS ? ns : -1;
}

enum { COPY, LOOKUP, LOAD_SYNC, LOAD_ASYNC, STORE_SYNC, STORE_ASYNC, CASES };
static const char *case_name[CASES] = {"copy_ns",	"lookup_ns",	 "load_sync_ns",
				       "load_async_ns", "store_sync_ns", "store_async_ns"};

static double run_case(struct ctx *c, int k)
{
	switch (k) {
	case COPY:
		return time_copy(c);
	case LOOKUP:
		return time_lookup(c);
	case LOAD_SYNC:
	case LOAD_ASYNC:
		return time_reqs(c, 1, k == LOAD_ASYNC);
	default:
		return time_reqs(c, 0, k == STORE_ASYNC);
	}
}

static int setup(struct ctx *c)
{
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	char err[256];
	cfg.dram_bytes = 256ull << 20;
	cfg.chunk_bytes = (uint32_t)((c->block + 4095) & ~4095ull);
	if (cfg.max_value_bytes < c->block)
		cfg.max_value_bytes = c->block;
	if (kvg_open(&cfg, &c->g, err, sizeof(err))) {
		fprintf(stderr, "small_blocks: %s\n", err);
		return 1;
	}
	c->resident = (cfg.dram_bytes / cfg.chunk_bytes) / 2;
	c->region = aligned_alloc(4096, c->resident * c->block);
	c->buf = aligned_alloc(4096, c->batch * c->block);
	c->ios = calloc(c->batch > LOOKUP_KEYS ? c->batch : LOOKUP_KEYS, sizeof(struct kvg_io));
	c->keys = calloc(c->resident, sizeof(kvg_key));
	c->new_keys = calloc(c->iters * c->batch, sizeof(kvg_key));
	if (!c->region || !c->buf || !c->ios || !c->keys || !c->new_keys)
		return 1;
	memset(c->region, 7, c->resident * c->block);
	memset(c->buf, 3, c->batch * c->block);
	/* the resident set: keys 0..resident-1; stores of new keys start above */
	struct kvg_io io = {.buf = c->buf, .len = c->block};
	for (uint64_t k = 0; k < c->resident; k++) {
		key_of(c, k, &c->keys[k]);
		io.key = c->keys[k];
		if (kvg_store_sync(c->g, &io, 1, 0))
			return 1;
	}
	c->next_key = 1ull << 40;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: small_blocks BLOCK_BYTES BATCH [ITERS [REPS]]\n");
		return 2;
	}
	struct ctx c = {.block = strtoull(argv[1], NULL, 10), .batch = strtoull(argv[2], NULL, 10)};
	c.iters = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
	int reps = argc > 4 ? atoi(argv[4]) : 5;
	if (!c.block || !c.batch || c.batch > 4096 || reps < 1) {
		fprintf(stderr, "small_blocks: BLOCK_BYTES and BATCH (<= 4096) must be positive\n");
		return 2;
	}
	if (!c.iters) /* about 64 MiB copied per timing, about 20000 blocks at most */
		c.iters = (64ull << 20) / (c.block * c.batch) + 1;
	if (c.iters * c.batch > 20000 && c.iters > 8)
		c.iters = 20000 / c.batch + 1;
	c.rng = 0x9e3779b97f4a7c15ull;
	if (setup(&c)) {
		fprintf(stderr, "small_blocks: setup failed\n");
		return 1;
	}
	printf("{\"block_bytes\": %zu, \"batch\": %zu, \"iters\": %zu", c.block, c.batch, c.iters);
	const char *only = getenv("SMALL_BLOCKS_CASE"); /* one case (callgrind) */
	int rc = 0;
	for (int k = 0; k < CASES; k++) {
		if (only && strcmp(only, case_name[k]))
			continue;
		double v[32];
		int n = reps < 32 ? reps : 32;
		for (int i = 0; i < n; i++)
			v[i] = run_case(&c, k);
		qsort(v, n, sizeof(double), cmp_double);
		if (v[0] < 0)
			rc = 1;
		printf(", \"%s\": %.0f", case_name[k], v[n / 2]);
	}
	printf("}\n");
	kvg_close(c.g);
	free(c.region);
	free(c.buf);
	free(c.ios);
	free(c.keys);
	free(c.new_keys);
	return rc;
}
