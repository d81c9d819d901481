/*
 * bench.h - what the benchmark programs in bench/ share: a monotonic clock, a comparison for
 * medians, and cheap block keys (a splitmix64 sequence: a key is opaque to the grid, a
 * uniform hash, and these cost a few instructions where kvg_raw_key's SHA-256 costs
 * thousands, so that the figures are the grid's; an engine computes its keys once per block
 * with kvg_block_keys, outside the transfer).
 */
#ifndef KVG_BENCH_H
#define KVG_BENCH_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "kvgrid.h"

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* For qsort of doubles, ascending. */
static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Key number k: 32 bytes of a splitmix64 sequence. */
static inline void bench_key_of(uint64_t k, kvg_key *key)
{
	for (int i = 0; i < KVG_KEY_BYTES / 8; i++) {
		uint64_t z = (k * 4 + (uint64_t)i + 1) * 0x9e3779b97f4a7c15ull;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		memcpy(key->bytes + 8 * i, &z, 8);
	}
}

#endif
