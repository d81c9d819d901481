/*
 * test_engine_grid.c - the engine on a real grid: a prefix reloaded from DRAM or NVMe gives
 * the first token's logits bit for bit equal to a full recompute.
 *
 * The exactness rule (doc/ENGINE.md): the engine rounds every K/V value through the cache
 * dtype before attention reads it, also when it computes the value itself, and a chunk's
 * arithmetic depends only on its own tokens and the K/V bits before it.  So a prefix
 * reloaded from the grid, which holds exactly those bits, gives exactly the recompute's
 * logits: the tests compare with memcmp, no tolerance.
 *
 * Swept over: DRAM only; NVMe only via io_uring; NVMe only via psync.  Prefix lengths inside
 * a block, at block boundaries and past them; two tenants; two models; a close and reopen of
 * the grid; a load that fails (every NVMe read corrupted) and falls back to recompute.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../engine/forward.h"
#include "../engine/gridlink.h"
#include "../engine/model.h"
#include "io_fault.h" /* the fault backend's counters (and its link into this test) */
#include "t.h"

#define BT	16
#define MAX_CTX 256

enum variant { V_DRAM, V_URING, V_PSYNC };
static const char *const variant_names[] = {"dram", "nvme-uring", "nvme-psync"};
static enum variant variant;
static char dir[4096];
static struct llm_config cfg;
static struct llm_model model, other_model;
static struct llm_fwd *eng, *other_eng;

static int open_grid(struct llm_fwd *f, const char *tenant, const char *fault_plan, kvg_grid **g,
		     struct llm_link **lk)
{
	struct kvg_config c;
	char err[512];
	kvg_config_init(&c);
	llm_link_grid_config(f, &c);
	snprintf(c.tenant, sizeof(c.tenant), "%s", tenant);
	if (variant == V_DRAM) {
		c.dram_bytes = 8u << 20;
	} else {
		c.dram_bytes = 0; /* every hit comes from the disk */
		snprintf(c.dir, sizeof(c.dir), "%s", dir);
		c.nvme_bytes = 64u << 20;
		c.segment_bytes = 4u << 20;
		c.io_backend = variant == V_URING ? KVG_IO_URING : KVG_IO_PSYNC;
		if (fault_plan) {
			c.io_backend = KVG_IO_FAULT;
			snprintf(c.fault_plan, sizeof(c.fault_plan), "%s", fault_plan);
		}
	}
	int rc = kvg_open(&c, g, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "kvg_open: %s: %s\n", kvg_strerror(rc), err);
		return rc;
	}
	rc = llm_link_create(*g, f, lk, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "llm_link_create: %s\n", err);
		kvg_close(*g);
	}
	return rc;
}

static void close_grid(kvg_grid *g, struct llm_link *lk)
{
	llm_link_destroy(lk);
	kvg_close(g);
}

static void tokens(uint32_t *t, size_t n, uint32_t salt)
{
	for (size_t i = 0; i < n; i++)
		t[i] = (uint32_t)((i * 2654435761u + salt * 97u) % cfg.vocab);
}

/* The logits of a full recompute, on pages scrambled first (nothing stale can help). */
static void recompute(struct llm_fwd *f, const uint32_t *tok, size_t n, float *out)
{
	llm_fwd_scramble(f, 0xa5);
	if (llm_fwd_prefill(f, tok, 0, n, NULL, NULL, out))
		memset(out, 0xff, cfg.vocab * sizeof(float));
}

static uint32_t want_tier(void)
{
	return variant == V_DRAM ? KVG_TIER_DRAM : KVG_TIER_NVME;
}

/* ---- tests --------------------------------------------------------------------------- */

/* Description: for prompts of 17..80 tokens (inside a block, on boundaries, past them) the
 * second request reloads every full block but the one holding the last token, from the
 * expected tier, and its first-token logits equal the recompute's bit for bit. */
static void test_reload_equals_recompute(void)
{
	size_t lens[] = {17, 31, 32, 33, 48, 63, 80, 200};
	kvg_grid *g;
	struct llm_link *lk;
	CHECK_RC(open_grid(eng, "", NULL, &g, &lk), 0);
	float *want = calloc(cfg.vocab, 4), *got = calloc(cfg.vocab, 4);
	uint32_t tok[MAX_CTX];
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = lens[i];
		struct llm_link_stats st;
		tokens(tok, n, (uint32_t)i);
		recompute(eng, tok, n, want);
		CHECK_RC(llm_link_prefill(lk, tok, n, got, &st), 0); /* cold: stores */
		CHECK(st.cached_tokens == 0 && st.stored_blocks == n / BT);
		CHECK(memcmp(want, got, cfg.vocab * 4) == 0);
		llm_link_flush(lk);
		llm_fwd_scramble(eng, 0x5a);
		CHECK_RC(llm_link_prefill(lk, tok, n, got, &st), 0); /* warm: reloads */
		CHECK(st.cached_tokens == (n - 1) / BT * BT);
		CHECK(st.computed_tokens == n - st.cached_tokens);
		CHECK(st.blocks_from[want_tier()] == (n - 1) / BT && st.load_fallbacks == 0);
		CHECK(memcmp(want, got, cfg.vocab * 4) == 0);
	}
	free(want), free(got);
	close_grid(g, lk);
}

/* Description: a prompt that shares only its first blocks with a cached one reloads exactly
 * the shared blocks (the hash chain stops at the first differing token's block), and its
 * logits still equal the recompute's. */
static void test_partial_prefix(void)
{
	kvg_grid *g;
	struct llm_link *lk;
	CHECK_RC(open_grid(eng, "", NULL, &g, &lk), 0);
	uint32_t a[96], b[96];
	tokens(a, 96, 40);
	memcpy(b, a, sizeof(a));
	b[37] = (b[37] + 1) % cfg.vocab; /* block 2 differs */
	float *want = calloc(cfg.vocab, 4), *got = calloc(cfg.vocab, 4);
	struct llm_link_stats st;
	CHECK_RC(llm_link_prefill(lk, a, 96, got, &st), 0);
	llm_link_flush(lk); /* its stores read the pages that recompute() overwrites */
	recompute(eng, b, 96, want);
	CHECK_RC(llm_link_prefill(lk, b, 96, got, &st), 0);
	CHECK(st.cached_tokens == 2 * BT);
	CHECK(memcmp(want, got, cfg.vocab * 4) == 0);
	free(want), free(got);
	close_grid(g, lk);
}

/* Description: tenants and models never share KV: the same tokens stored by tenant "a" are
 * a miss for tenant "b" and for another model on the same directory, and after a close and
 * reopen (the index recovered from disk) tenant "a" reloads them bit-identically.  NVMe only:
 * a DRAM grid's contents end with it. */
static void test_tenants_models_and_restart(void)
{
	if (variant == V_DRAM)
		return;
	uint32_t tok[70];
	tokens(tok, 70, 77);
	float *want = calloc(cfg.vocab, 4), *got = calloc(cfg.vocab, 4);
	struct llm_link_stats st;
	kvg_grid *g;
	struct llm_link *lk;
	CHECK_RC(open_grid(eng, "a", NULL, &g, &lk), 0);
	CHECK_RC(llm_link_prefill(lk, tok, 70, got, &st), 0);
	CHECK_RC(llm_link_decode(lk, tok, 70, 0, got, &st), 0); /* ends the request */
	close_grid(g, lk);
	CHECK_RC(open_grid(eng, "b", NULL, &g, &lk), 0);
	CHECK_RC(llm_link_prefill(lk, tok, 70, got, &st), 0);
	CHECK(st.cached_tokens == 0); /* another tenant */
	close_grid(g, lk);
	CHECK_RC(open_grid(other_eng, "a", NULL, &g, &lk), 0);
	CHECK_RC(llm_link_prefill(lk, tok, 70, got, &st), 0);
	CHECK(st.cached_tokens == 0); /* another model */
	close_grid(g, lk);
	recompute(eng, tok, 70, want);
	CHECK_RC(open_grid(eng, "a", NULL, &g, &lk), 0);
	llm_fwd_scramble(eng, 0x33);
	CHECK_RC(llm_link_prefill(lk, tok, 70, got, &st), 0);
	CHECK(st.cached_tokens == 64 && st.blocks_from[KVG_TIER_NVME] == 4);
	CHECK(memcmp(want, got, cfg.vocab * 4) == 0);
	close_grid(g, lk);
	free(want), free(got);
}

/* Description: decoding stores the blocks it fills, so the next turn (prompt + reply + new
 * tokens) reloads them too; its logits stay within 1e-3 of a recompute (decoded K/V come from
 * single-row products, whose rounding may differ from a chunk's in the last bit). */
static void test_decode_blocks_are_reused(void)
{
	kvg_grid *g;
	struct llm_link *lk;
	CHECK_RC(open_grid(eng, "", NULL, &g, &lk), 0);
	uint32_t tok[MAX_CTX];
	tokens(tok, 40, 5);
	float *want = calloc(cfg.vocab, 4), *got = calloc(cfg.vocab, 4);
	struct llm_link_stats st;
	CHECK_RC(llm_link_prefill(lk, tok, 40, got, &st), 0);
	CHECK_RC(llm_link_decode(lk, tok, 40, 12, got, &st), 0); /* positions 40..50 computed */
	CHECK(st.stored_blocks == 2 + 1);			 /* block 2 = [32, 48) */
	tokens(tok + 52, 30, 6);				 /* the next turn's new tokens */
	recompute(eng, tok, 82, want);
	CHECK_RC(llm_link_prefill(lk, tok, 82, got, &st), 0);
	CHECK(st.cached_tokens == 48);
	double md = 0, mw = 1;
	for (uint32_t i = 0; i < cfg.vocab; i++) {
		md = fmax(md, fabs(want[i] - got[i]));
		mw = fmax(mw, fabs(want[i]));
	}
	CHECK(md / mw < 1e-3);
	free(want), free(got);
	close_grid(g, lk);
}

/* Description: when NVMe reads come back with a flipped bit, the blocks fail their checksums,
 * the request cuts its prefix at the first failed block and recomputes the rest (counted as a
 * fallback), and its logits are still the recompute's. */
static void test_failed_load_falls_back(void)
{
	if (variant == V_DRAM)
		return;
	kvg_grid *g;
	struct llm_link *lk;
	uint32_t tok[64];
	tokens(tok, 64, 9);
	float *want = calloc(cfg.vocab, 4), *got = calloc(cfg.vocab, 4);
	struct llm_link_stats st;
	CHECK_RC(open_grid(eng, "flip", "seed=3; flip=read:1+", &g, &lk), 0);
	CHECK_RC(llm_link_prefill(lk, tok, 64, got, &st), 0);
	llm_link_flush(lk);
	recompute(eng, tok, 64, want);
	CHECK_RC(llm_link_prefill(lk, tok, 64, got, &st), 0);
	CHECK(st.load_fallbacks == 1 && st.cached_tokens < 48 &&
	      st.cached_tokens + st.computed_tokens == 64);
	CHECK(memcmp(want, got, cfg.vocab * 4) == 0);
	struct kvg_stats ks;
	kvg_stats_get(g, &ks);
	CHECK(ks.tier[KVG_TIER_NVME].checksum_failures > 0);
	struct io_fault_counts fc;
	io_fault_totals(&fc);
	CHECK(fc.flips > 0);
	free(want), free(got);
	close_grid(g, lk);
}

/* Description: a grid whose KV layout is not the engine's is refused by the link. */
static void test_layout_mismatch_refused(void)
{
	struct kvg_config c;
	kvg_grid *g;
	struct llm_link *lk = NULL;
	char err[512] = "";
	kvg_config_init(&c);
	llm_link_grid_config(eng, &c);
	c.dram_bytes = 4u << 20;
	c.head_dim *= 2;
	CHECK_RC(kvg_open(&c, &g, err, sizeof(err)), 0);
	CHECK_RC(llm_link_create(g, eng, &lk, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "not the engine's"));
	kvg_close(g);
}

int main(void)
{
	char err[256];
	struct llm_fwd_opts o = {
	    .kv_dtype = KVG_DTYPE_BF16, .block_tokens = BT, .max_ctx = MAX_CTX, .threads = 2};
	if (llm_config_by_name("tiny", &cfg) ||
	    llm_model_init_seed(&model, &cfg, 42, err, sizeof(err)) ||
	    llm_model_init_seed(&other_model, &cfg, 43, err, sizeof(err)) ||
	    llm_fwd_create(&model, &o, &eng, err, sizeof(err)) ||
	    llm_fwd_create(&other_model, &o, &other_eng, err, sizeof(err))) {
		fprintf(stderr, "set-up: %s\n", err);
		return 1;
	}
	char base[2048];
	t_tmpdir(base, sizeof(base), "engine-grid");
	void (*tests[])(void) = {test_reload_equals_recompute, test_partial_prefix,
				 test_tenants_models_and_restart, test_decode_blocks_are_reused,
				 test_failed_load_falls_back};
	const char *names[] = {"test_reload_equals_recompute", "test_partial_prefix",
			       "test_tenants_models_and_restart", "test_decode_blocks_are_reused",
			       "test_failed_load_falls_back"};
	for (int v = V_DRAM; v <= V_PSYNC; v++) {
		variant = (enum variant)v;
		t_variant = variant_names[v];
		for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
			int before = t_failed;
			snprintf(dir, sizeof(dir), "%s/%s-%zu", base, variant_names[v], i);
			if (mkdir(dir, 0700)) {
				perror(dir);
				return 1;
			}
			t_name = names[i];
			tests[i]();
			fprintf(stderr, "%s %s [%s]\n", t_failed == before ? "ok  " : "FAIL",
				names[i], t_variant);
		}
	}
	t_variant = "";
	RUN(test_layout_mismatch_refused);
	llm_fwd_destroy(eng);
	llm_fwd_destroy(other_eng);
	llm_model_free(&model);
	llm_model_free(&other_model);
	t_rmdir(base);
	return t_failed ? 1 : 0;
}
