/*
 * gridlink.h - the engine's connector to a kvgrid grid, through the public API only.
 *
 * What a production engine's connector (vLLM's KV connector, LMCache) does on each request:
 *
 *   1. keys of the prompt's full blocks (kvg_block_keys) and the longest cached prefix
 *      (kvg_lookup_keys), leaving at least one token to compute: the first token's logits
 *      need a forward pass of the last prompt token;
 *   2. one load of those blocks straight into the engine's KV pages, completing layer by
 *      layer (KVG_LOAD_LAYERS); the prefill waits for layer L (kvg_req_wait_layer) only
 *      just before layer L's attention, so later layers load while earlier ones compute;
 *   3. prefill of the uncached suffix only, then the first token;
 *   4. an asynchronous store of the prompt's new full blocks, submitted after the first
 *      token (it never delays it), from the pages themselves;
 *   5. greedy decoding, then a store of the blocks decoding filled, and the request ends
 *      when its stores are done (the pages are reused by the next request).
 *
 * A block that fails to load (evicted between lookup and load, a checksum failure) is not
 * an error for the request: the prefix is cut at the first failed block and the rest is
 * recomputed.  A grid is bound to the model through its config: model_id, dtype, layers,
 * kv_heads, head_dim and block_tokens (llm_link_grid_config); llm_link_create() refuses a
 * grid whose layout differs from the engine's pages.
 */
#ifndef LLM_GRIDLINK_H
#define LLM_GRIDLINK_H

#include <stddef.h>
#include <stdint.h>

#include "forward.h"
#include "kvgrid.h"

struct llm_link;

/* What the last request did. */
struct llm_link_stats {
	size_t ctx_tokens;		      /* prompt length */
	size_t cached_tokens;		      /* loaded from the grid */
	size_t computed_tokens;		      /* prefilled */
	uint32_t blocks_from[KVG_TIER_COUNT]; /* loaded blocks, by the tier that served them */
	uint32_t stored_blocks;
	uint32_t load_fallbacks; /* loads cut short by a failed block (rest recomputed) */
	double lookup_ms;	 /* keys + lookup */
	double ttft_ms;		 /* request start to first-token logits */
	double layer_wait_ms;	 /* time the prefill spent waiting for layers to arrive */
	double decode_ms;
	double store_wait_ms; /* waiting for this request's stores at its end */
};

/*
 * Sets cfg's namespace and KV layout for the model and engine: model_id (the model's),
 * dtype, layers, kv_heads, head_dim and block_tokens.  Other fields are left as they are.
 */
void llm_link_grid_config(const struct llm_fwd *f, struct kvg_config *cfg);

/*
 * Binds an open grid to an engine; both are borrowed and must outlive the link.  Returns 0,
 * -EINVAL (reason in err) if the grid's layout is not the engine's, or -ENOMEM.
 */
int llm_link_create(kvg_grid *g, struct llm_fwd *f, struct llm_link **out, char *err,
		    size_t err_len);

/* Waits for stores in flight and frees the link.  lk may be NULL. */
void llm_link_destroy(struct llm_link *lk);

/*
 * Steps 1-4 for tokens[0..n): the first token's logits into logits[vocab].  Returns 0 or
 * an error of the engine (-EINVAL) or the grid (a lookup that fails).  Stats into st.
 */
int llm_link_prefill(struct llm_link *lk, const uint32_t *tokens, size_t n, float *logits,
		     struct llm_link_stats *st);

/*
 * Step 5 after llm_link_prefill() of tokens[0..n): appends gen greedy tokens to tokens
 * (room for n + gen), stores the full blocks they complete and waits for the request's
 * stores.  logits holds the prefill's logits on entry.  Returns 0 or an error.
 */
int llm_link_decode(struct llm_link *lk, uint32_t *tokens, size_t n, size_t gen, float *logits,
		    struct llm_link_stats *st);

/* Waits for every store in flight (e.g. before reusing the pages without the grid). */
void llm_link_flush(struct llm_link *lk);

#endif
