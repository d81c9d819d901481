/*
 * t_grid.h - configuration sweeps and block helpers for kvgrid's behaviour tests, on top of
 * t.h.  A swept test is a void function that reads the variant under test from t_v:
 *
 *   dram        DRAM arena only
 *   nvme-uring  NVMe tier only (dram_bytes 0), io_uring backend, O_DIRECT on real ext4
 *   nvme-psync  NVMe tier only, pread/pwrite backend
 *
 * SWEEP(fn) runs fn once per variant; a variant the machine cannot run (no io_uring) is
 * reported as skipped.  t_config() fills a small configuration for the variant (sizes that
 * keep a test to seconds) and gives it a fresh scratch directory; t_done() removes it.
 * Known core bugs are checked only with KVG_TEST_KNOWN_BUGS=1.
 */
#ifndef KVG_T_GRID_H
#define KVG_T_GRID_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io.h"
#include "kvgrid.h"
#include "t.h"

struct t_variant {
	const char *name;
	int nvme;	     /* 1: the NVMe tier serves, DRAM off */
	uint32_t io_backend; /* enum kvg_io_backend */
};

static const struct t_variant t_variants[] = {
    {"dram", 0, KVG_IO_AUTO},
    {"nvme-uring", 1, KVG_IO_URING},
    {"nvme-psync", 1, KVG_IO_PSYNC},
};
#define T_NVARIANTS 3

static const struct t_variant *t_v = &t_variants[0];
static char t_dir[4096]; /* scratch directory of the current test, "" if none */

static inline int t_uring_ok(void)
{
	static int ok = -1;
	if (ok < 0)
		ok = io_uring_usable();
	return ok;
}

/* 1 if the test should run: T_ONLY=substring runs only the tests whose name has it. */
static inline int t_only(const char *name)
{
	const char *only = getenv("T_ONLY");
	return !only || strstr(name, only);
}

/* Runs a test once per variant. */
#define SWEEP(fn)                                                                                  \
	do {                                                                                       \
		for (int _v = 0; _v < T_NVARIANTS && t_only(#fn); _v++) {                          \
			t_v = &t_variants[_v];                                                     \
			t_variant = t_v->name;                                                     \
			if (t_v->io_backend == KVG_IO_URING && !t_uring_ok()) {                    \
				fprintf(stderr, "skip %s [%s]: no io_uring here\n", #fn,           \
					t_variant);                                                \
				continue;                                                          \
			}                                                                          \
			RUN(fn);                                                                   \
			t_done();                                                                  \
		}                                                                                  \
	} while (0)

/* Runs a test once, for the NVMe variants only. */
#define SWEEP_NVME(fn)                                                                             \
	do {                                                                                       \
		for (int _v = 1; _v < T_NVARIANTS && t_only(#fn); _v++) {                          \
			t_v = &t_variants[_v];                                                     \
			t_variant = t_v->name;                                                     \
			if (t_v->io_backend == KVG_IO_URING && !t_uring_ok()) {                    \
				fprintf(stderr, "skip %s [%s]: no io_uring here\n", #fn,           \
					t_variant);                                                \
				continue;                                                          \
			}                                                                          \
			RUN(fn);                                                                   \
			t_done();                                                                  \
		}                                                                                  \
	} while (0)

/* Removes the scratch directory of the test that just ran. */
static inline void t_done(void)
{
	if (t_dir[0])
		t_rmdir(t_dir);
	t_dir[0] = 0;
}

/* 1 when the checks of known, reported core bugs should run (KVG_TEST_KNOWN_BUGS=1). */
static inline int t_known_bugs(void)
{
	const char *s = getenv("KVG_TEST_KNOWN_BUGS");
	return s && *s == '1';
}

/* A fresh scratch directory in t_dir (removed by t_done). */
static inline const char *t_scratch(const char *tag)
{
	t_done();
	t_tmpdir(t_dir, sizeof(t_dir), tag);
	return t_dir;
}

/*
 * A small configuration for the current variant: layout of 4 layers x 2 kv heads x 64 dims,
 * block_tokens 16, so a full block is 4*2*16*2*64*2 = 32 KiB; DRAM 16 MiB in 64 KiB chunks,
 * or NVMe 64 MiB in 4 MiB segments under a fresh scratch directory.  The eviction policy is
 * LRU (issue 2), so that tests can say which block goes first; test_tier_dram sweeps every
 * policy for the invariants that do not depend on the order.
 */
static inline void t_config(struct kvg_config *c)
{
	kvg_config_init(c);
	snprintf(c->model_id, sizeof(c->model_id), "test/model-%s", "tiny");
	c->dtype = KVG_DTYPE_BF16;
	c->layers = 4;
	c->kv_heads = 2;
	c->head_dim = 64;
	c->block_tokens = 16;
	c->chunk_bytes = 64 << 10;
	c->hugepages = 0;
	c->workers = 2;
	c->req_max = 64;
	c->log_level = 0;
	/* T_POLICY=name runs a test program under another policy (tests of LRU order will fail) */
	snprintf(c->policy, sizeof(c->policy), "%s",
		 getenv("T_POLICY") ? getenv("T_POLICY") : "lru");
	if (t_v->nvme) {
		c->dram_bytes = 0;
		snprintf(c->dir, sizeof(c->dir), "%s", t_scratch("grid"));
		c->nvme_bytes = 64ull << 20;
		c->segment_bytes = 4ull << 20;
		c->io_backend = t_v->io_backend;
		c->queue_depth = 16;
	} else {
		c->dram_bytes = 16ull << 20;
	}
}

/* Deterministic token ids: seed picks the sequence, i the position. */
static inline uint32_t t_token(uint32_t seed, size_t i)
{
	uint64_t x = ((uint64_t)seed << 32 | (uint32_t)i) * 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	return (uint32_t)(x % 128000);
}

static inline void t_tokens(uint32_t *tok, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++)
		tok[i] = t_token(seed, i);
}

/* A buffer of len bytes aligned to 4096 (plus skew bytes, to exercise unaligned buffers). */
static inline void *t_alloc(size_t len, size_t skew)
{
	void *p = NULL;
	if (posix_memalign(&p, 4096, len + skew + 1))
		return NULL;
	return (uint8_t *)p + skew;
}

static inline void t_free(void *p, size_t skew)
{
	if (p)
		free((uint8_t *)p - skew);
}

/* Stores n blocks of len bytes, each filled with t_fill(key, salt).  0 or the first error;
 * every block must succeed. */
static inline int t_store(kvg_grid *g, const kvg_key *keys, size_t n, size_t len, uint32_t salt)
{
	struct kvg_io *ios = calloc(n ? n : 1, sizeof(*ios));
	int rc = 0;
	if (!ios)
		return -12;
	for (size_t i = 0; i < n; i++) {
		ios[i].key = keys[i];
		ios[i].len = len;
		ios[i].depth = (uint32_t)i;
		ios[i].buf = t_alloc(len, 0);
		if (!ios[i].buf) {
			rc = -12;
			goto out;
		}
		t_fill(ios[i].buf, len, &keys[i], salt);
	}
	rc = kvg_store_sync(g, ios, n, 0);
	for (size_t i = 0; !rc && i < n; i++)
		if (ios[i].status)
			rc = ios[i].status;
out:
	for (size_t i = 0; i < n; i++)
		t_free(ios[i].buf, 0);
	free(ios);
	return rc;
}

#define T_EBYTES (-99999) /* t_load: the block loaded, but its bytes are wrong */

/*
 * Loads one block expected to hold len bytes of t_fill(key, salt).  Returns 0 if it loaded
 * and every byte verified, T_EBYTES if it loaded with wrong bytes or length, or the block's
 * status.  *tier (may be NULL) gets the tier it came from.
 */
static inline int t_load(kvg_grid *g, const kvg_key *key, size_t len, uint32_t salt, uint8_t *tier)
{
	struct kvg_io io = {.key = *key, .len = len};
	io.buf = t_alloc(len, 0);
	if (!io.buf)
		return -12;
	int rc = kvg_load_sync(g, &io, 1, 0);
	if (tier)
		*tier = io.tier;
	if (io.status == 0 && (io.len != len || !t_verify(io.buf, len, key, salt)))
		rc = T_EBYTES;
	else if (io.status)
		rc = io.status;
	t_free(io.buf, 0);
	return rc;
}

/* Keys of the chain of n full blocks of the token sequence `seed` (at most 4096 blocks). */
static inline size_t t_chain(kvg_grid *g, uint32_t seed, size_t n, kvg_key *keys)
{
	size_t bt = kvg_config_of(g)->block_tokens;
	uint32_t *tok = malloc(sizeof(uint32_t) * bt * (n ? n : 1));
	if (!tok)
		return 0;
	t_tokens(tok, bt * n, seed);
	size_t got = kvg_block_keys(g, tok, bt * n, NULL, keys, n);
	free(tok);
	return got;
}

static inline struct kvg_stats t_stats(kvg_grid *g)
{
	struct kvg_stats st;
	kvg_stats_get(g, &st);
	return st;
}

static inline uint64_t t_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exit status of a test program: 0 if every test passed. */
#define T_EXIT() return t_failed ? 1 : 0

#endif
