/*
 * batch_api.c - the C API's side of bench/python_api.py: the same work the Python package
 * is timed on, called straight from C on a grid opened with the same settings, so that the
 * Python figures are read as ratios of these in the same run.
 *   load:   kvg_load_sync of N blocks of B bytes from DRAM into buffers allocated and
 *           touched once;
 *   store:  kvg_store_sync of the same N blocks after kvg_delete of them (not timed), so
 *           every store places and copies its block (a store of a present key is only a
 *           refresh);
 *   lookup: kvg_lookup_keys of K present keys.
 * Usage: batch_api N B K REPS.  Prints one JSON object: the median of REPS timings each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "kvgrid.h"

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: batch_api BLOCKS BLOCK_BYTES LOOKUP_KEYS REPS\n");
		return 2;
	}
	size_t n = strtoull(argv[1], NULL, 10), bb = strtoull(argv[2], NULL, 10);
	size_t nk = strtoull(argv[3], NULL, 10);
	int reps = atoi(argv[4]);
	if (!n || !bb || !nk || reps < 1) {
		fprintf(stderr, "batch_api: every argument must be a positive number\n");
		return 2;
	}
	struct kvg_config c;
	kvg_config_init(&c);
	char err[256];
	c.dram_bytes = 4 * n * bb + (64 << 20); /* as bench/python_api.py */
	kvg_grid *g;
	if (kvg_open(&c, &g, err, sizeof(err))) {
		fprintf(stderr, "batch_api: %s\n", err);
		return 1;
	}
	struct kvg_io *ios = calloc(n, sizeof(*ios));
	kvg_key *lk = calloc(nk, sizeof(*lk));
	double *t = calloc(reps, sizeof(*t));
	char **src = calloc(n, sizeof(*src)), **dst = calloc(n, sizeof(*dst));
	for (size_t i = 0; i < n; i++) {
		src[i] = malloc(bb);
		dst[i] = malloc(bb);
		memset(src[i], (int)i + 1, bb);
		memset(dst[i], 0, bb);
	}
	kvg_key *keys = calloc(n, sizeof(*keys));
	for (size_t i = 0; i < n; i++) {
		char name[32];
		int len = snprintf(name, sizeof(name), "block%zu", i);
		kvg_raw_key(g, name, (size_t)len, &keys[i]);
	}
	double load_s, store_s, lookup_s;
	for (int r = 0; r < reps; r++) { /* store: delete (untimed), then place all n again */
		kvg_delete(g, keys, n);
		for (size_t i = 0; i < n; i++)
			ios[i] = (struct kvg_io){.key = keys[i], .buf = src[i], .len = bb};
		double t0 = now_s();
		int rc = kvg_store_sync(g, ios, n, 0);
		t[r] = now_s() - t0;
		if (rc) {
			fprintf(stderr, "batch_api: store: %s\n", kvg_strerror(rc));
			return 1;
		}
	}
	store_s = median(t, reps);
	for (int r = 0; r < reps; r++) {
		for (size_t i = 0; i < n; i++)
			ios[i] = (struct kvg_io){.key = keys[i], .buf = dst[i], .len = bb};
		double t0 = now_s();
		int rc = kvg_load_sync(g, ios, n, 0);
		t[r] = now_s() - t0;
		if (rc || memcmp(dst[n - 1], src[n - 1], bb)) {
			fprintf(stderr, "batch_api: load: %s\n",
				rc ? kvg_strerror(rc) : "wrong bytes");
			return 1;
		}
	}
	load_s = median(t, reps);
	for (size_t i = 0; i < nk; i++) { /* nk present keys (tiny blocks) */
		char name[32];
		int len = snprintf(name, sizeof(name), "lookup%zu", i);
		kvg_raw_key(g, name, (size_t)len, &lk[i]);
		struct kvg_io io = {.key = lk[i], .buf = src[0], .len = 64};
		kvg_store_sync(g, &io, 1, 0);
	}
	int inner = 2000;
	for (int r = 0; r < reps; r++) {
		size_t hit = 0;
		double t0 = now_s();
		for (int j = 0; j < inner; j++)
			kvg_lookup_keys(g, lk, nk, &hit, NULL);
		t[r] = (now_s() - t0) / inner;
		if (hit != nk) {
			fprintf(stderr, "batch_api: lookup found %zu of %zu\n", hit, nk);
			return 1;
		}
	}
	lookup_s = median(t, reps);
	printf("{\"blocks\": %zu, \"block_bytes\": %zu, \"load_gbs\": %.3f, \"store_gbs\": %.3f, "
	       "\"lookup_keys\": %zu, \"lookup_us\": %.3f}\n",
	       n, bb, n * bb / load_s / 1e9, n * bb / store_s / 1e9, nk, lookup_s * 1e6);
	kvg_close(g);
	return 0;
}
