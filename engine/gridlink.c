/*
 * gridlink.c - lookup, layer-wise load, suffix prefill and asynchronous store (gridlink.h).
 *
 * Every array a request needs (keys, the load's and the stores' kvg_io) is sized for the
 * engine's longest sequence when the link is created; a request allocates nothing.  The two
 * store requests of a request (after prefill, after decode) stay in flight while it decodes
 * and are waited for when it ends, because their buffers are the engine's pages.
 */
#include "gridlink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { STORE_PREFILL = 0, STORE_DECODE = 1 };

struct llm_link {
	kvg_grid *g;
	struct llm_fwd *f;
	size_t max_blocks;
	kvg_key *keys;		    /* [max_blocks] */
	uint8_t *tiers;		    /* [max_blocks] */
	struct kvg_io *load_io;	    /* [max_blocks] */
	struct kvg_io *store_io[2]; /* [max_blocks] each */
	kvg_req *store_req[2];
	kvg_req *load_req; /* the load of the request being prefilled */
	double wait_ms;	   /* this prefill's time in kvg_req_wait_layer */
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void llm_link_grid_config(const struct llm_fwd *f, struct kvg_config *cfg)
{
	const struct llm_model *m = llm_fwd_model(f);
	snprintf(cfg->model_id, sizeof(cfg->model_id), "%s", m->model_id);
	cfg->dtype = llm_fwd_kv_dtype(f);
	cfg->layers = m->cfg.layers;
	cfg->kv_heads = m->cfg.kv_heads;
	cfg->head_dim = m->cfg.head_dim;
	cfg->block_tokens = llm_fwd_block_tokens(f);
}

int llm_link_create(kvg_grid *g, struct llm_fwd *f, struct llm_link **out, char *err,
		    size_t err_len)
{
	const struct kvg_config *gc = kvg_config_of(g);
	struct kvg_config want = *gc;
	llm_link_grid_config(f, &want);
	if (gc->dtype != want.dtype || gc->layers != want.layers || gc->kv_heads != want.kv_heads ||
	    gc->head_dim != want.head_dim || gc->block_tokens != want.block_tokens ||
	    kvg_config_block_bytes(gc) != llm_fwd_page_bytes(f)) {
		if (err)
			snprintf(err, err_len,
				 "the grid's KV layout (dtype %u, %u layers, %u kv heads "
				 "of %u, %u-token blocks) is not the engine's",
				 gc->dtype, gc->layers, gc->kv_heads, gc->head_dim,
				 gc->block_tokens);
		return -EINVAL;
	}
	struct llm_link *lk = calloc(1, sizeof(*lk));
	if (!lk)
		return -ENOMEM;
	lk->g = g;
	lk->f = f;
	lk->max_blocks = llm_fwd_max_ctx(f) / llm_fwd_block_tokens(f);
	lk->keys = calloc(lk->max_blocks, sizeof(*lk->keys));
	lk->tiers = calloc(lk->max_blocks, 1);
	lk->load_io = calloc(lk->max_blocks, sizeof(struct kvg_io));
	lk->store_io[0] = calloc(lk->max_blocks, sizeof(struct kvg_io));
	lk->store_io[1] = calloc(lk->max_blocks, sizeof(struct kvg_io));
	if (!lk->keys || !lk->tiers || !lk->load_io || !lk->store_io[0] || !lk->store_io[1]) {
		llm_link_destroy(lk);
		return -ENOMEM;
	}
	*out = lk;
	return 0;
}

void llm_link_flush(struct llm_link *lk)
{
	for (int i = 0; i < 2; i++) {
		kvg_req_free(lk->store_req[i]); /* waits for it first */
		lk->store_req[i] = NULL;
	}
}

void llm_link_destroy(struct llm_link *lk)
{
	if (!lk)
		return;
	llm_link_flush(lk);
	free(lk->keys);
	free(lk->tiers);
	free(lk->load_io);
	free(lk->store_io[0]);
	free(lk->store_io[1]);
	free(lk);
}

/* Stores blocks [from, to) of the sequence (keys in lk->keys) from the pages; async. */
static void store_blocks(struct llm_link *lk, int which, size_t from, size_t to,
			 struct llm_link_stats *st)
{
	if (to <= from)
		return;
	struct kvg_io *io = lk->store_io[which];
	for (size_t i = from; i < to; i++) {
		struct kvg_io *b = &io[i - from];
		memset(b, 0, sizeof(*b));
		b->key = lk->keys[i];
		b->buf = llm_fwd_page(lk->f, i);
		b->len = llm_fwd_page_bytes(lk->f);
		b->depth = (uint32_t)i;
	}
	int rc;
	while ((rc = kvg_store(lk->g, io, to - from, NULL, &lk->store_req[which])) == KVG_EBUSY) {
		struct timespec ts = {0,
				      200000}; /* the grid's request pool is full: let it drain */
		nanosleep(&ts, NULL);
	}
	if (rc)
		lk->store_req[which] = NULL; /* a store that cannot start costs a future hit only */
	else
		st->stored_blocks += (uint32_t)(to - from);
}

/* The engine's hook before layer L's attention: wait until layer L has arrived. */
static int wait_layer(void *arg, uint32_t layer)
{
	struct llm_link *lk = arg;
	if (!lk->load_req)
		return 0;
	double t0 = now_ms();
	int rc = kvg_req_wait_layer(lk->load_req, layer, -1);
	lk->wait_ms += now_ms() - t0;
	return rc;
}

/* Starts the load of blocks [0, hit) into the pages; returns hit, or 0 if it cannot start. */
static size_t start_load(struct llm_link *lk, size_t hit)
{
	for (size_t i = 0; i < hit; i++) {
		struct kvg_io *b = &lk->load_io[i];
		memset(b, 0, sizeof(*b));
		b->key = lk->keys[i];
		b->buf = llm_fwd_page(lk->f, i);
		b->len = llm_fwd_page_bytes(lk->f);
		b->depth = (uint32_t)i;
	}
	struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS};
	int rc;
	while ((rc = kvg_load(lk->g, lk->load_io, hit, &o, &lk->load_req)) == KVG_EBUSY) {
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	if (rc) {
		lk->load_req = NULL;
		return 0;
	}
	return hit;
}

/* Waits for the load to end; returns how many leading blocks arrived intact. */
static size_t finish_load(struct llm_link *lk, size_t hit, struct llm_link_stats *st)
{
	if (!lk->load_req)
		return 0;
	kvg_req_wait(lk->load_req, -1);
	size_t good = 0;
	while (good < hit && lk->load_io[good].status == 0 &&
	       lk->load_io[good].len == llm_fwd_page_bytes(lk->f))
		good++;
	for (size_t i = 0; i < good; i++)
		if (lk->load_io[i].tier < KVG_TIER_COUNT)
			st->blocks_from[lk->load_io[i].tier]++;
	kvg_req_free(lk->load_req);
	lk->load_req = NULL;
	return good;
}

int llm_link_prefill(struct llm_link *lk, const uint32_t *tokens, size_t n, float *logits,
		     struct llm_link_stats *st)
{
	size_t bt = llm_fwd_block_tokens(lk->f);
	memset(st, 0, sizeof(*st));
	st->ctx_tokens = n;
	if (!n || n > llm_fwd_max_ctx(lk->f))
		return -EINVAL;
	llm_link_flush(
	    lk); /* the pages are about to be rewritten (normally a no-op: decode waits) */
	double t0 = now_ms();
	size_t full = n / bt, usable = (n - 1) / bt, hit = 0;
	kvg_block_keys(lk->g, tokens, n, NULL, lk->keys, full);
	int rc = usable ? kvg_lookup_keys(lk->g, lk->keys, usable, &hit, lk->tiers) : 0;
	if (rc)
		return rc;
	st->lookup_ms = now_ms() - t0;
	hit = hit ? start_load(lk, hit) : 0;
	lk->wait_ms = 0;
	rc = llm_fwd_prefill(lk->f, tokens + hit * bt, hit * bt, n - hit * bt, wait_layer, lk,
			     logits);
	size_t good = finish_load(lk, hit, st);
	if (good < hit || (rc && hit)) {
		/* a block did not arrive: recompute from the first missing one, all layers */
		st->load_fallbacks++;
		hit = good;
		rc = llm_fwd_prefill(lk->f, tokens + hit * bt, hit * bt, n - hit * bt, NULL, NULL,
				     logits);
	}
	if (rc)
		return rc;
	st->ttft_ms = now_ms() - t0;
	st->layer_wait_ms = lk->wait_ms;
	st->cached_tokens = hit * bt;
	st->computed_tokens = n - hit * bt;
	store_blocks(lk, STORE_PREFILL, hit, full, st);
	return 0;
}

int llm_link_decode(struct llm_link *lk, uint32_t *tokens, size_t n, size_t gen, float *logits,
		    struct llm_link_stats *st)
{
	double t0 = now_ms();
	size_t bt = llm_fwd_block_tokens(lk->f), vocab = llm_fwd_model(lk->f)->cfg.vocab;
	int rc = 0;
	if (n + gen > llm_fwd_max_ctx(lk->f))
		return -EINVAL;
	for (size_t i = 0; i < gen && !rc; i++) {
		tokens[n + i] = llm_argmax(logits, vocab);
		if (i + 1 < gen) /* the last token's KV is computed by the next request */
			rc = llm_fwd_prefill(lk->f, &tokens[n + i], n + i, 1, NULL, NULL, logits);
	}
	st->decode_ms = now_ms() - t0;
	if (!rc && gen > 1) {
		size_t done = n + gen - 1; /* positions whose KV is in the pages */
		size_t from = n / bt, to = done / bt;
		if (to > from) {
			kvg_block_keys(lk->g, tokens, to * bt, NULL, lk->keys, to);
			store_blocks(lk, STORE_DECODE, from, to, st);
		}
	}
	double t1 = now_ms();
	llm_link_flush(lk);
	st->store_wait_ms = now_ms() - t1;
	return rc;
}
