/*
 * forward.h - the forward pass: prefill and decode over a paged KV cache.
 *
 * One llm_fwd holds everything a sequence needs, allocated once: the KV pages, activations,
 * rotary tables and per-worker attention scratch.  It serves one sequence at a time and is
 * driven by one thread.
 *
 * KV pages.  Page i holds positions [i*B, (i+1)*B) of every layer, B = block_tokens, laid out
 * exactly as a grid block's payload:
 *
 *     page = [layer 0: K[B][kv_heads][head_dim], V[B][kv_heads][head_dim]] [layer 1: ...] ...
 *
 * in the KV dtype, so a page is stored to and loaded from the grid without a copy.
 *
 * Prefill of positions [start, start+n) with [0, start) already in the pages runs layer by
 * layer; within a layer, in chunks aligned to page boundaries.  Before layer L first reads the
 * cached prefix it calls wait(arg, L): that is where a grid load's layer L is awaited, so the
 * query/key/value products of layer L and all of layers < L overlap the loading of later
 * layers.  Computing a chunk depends only on its own tokens and on the K/V bits of earlier
 * positions, and K/V pass through the cache dtype before attention reads them, so prefilling
 * [start, end) gives the same logits bit for bit whether [0, start) was computed by this
 * engine or loaded back from the grid (see doc/ENGINE.md, "Exactness").
 */
#ifndef LLM_FORWARD_H
#define LLM_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct llm_fwd;

struct llm_fwd_opts {
	uint32_t kv_dtype;     /* enum kvg_dtype: KVG_DTYPE_BF16 (default), FP16 or FP32 */
	uint32_t block_tokens; /* page size in tokens; the grid's block_tokens */
	uint32_t max_ctx;      /* longest sequence, in tokens */
	uint32_t threads;      /* attention workers (0: 2) */
};

/* Called before layer `layer` reads the cached prefix; non-zero aborts the prefill with it. */
typedef int (*llm_layer_wait_fn)(void *arg, uint32_t layer);

/*
 * Allocates and touches every buffer for sequences of up to max_ctx tokens.  The model is
 * borrowed and must outlive the engine.  Returns 0, -EINVAL (bad options, reason in err) or
 * -ENOMEM.
 */
int llm_fwd_create(const struct llm_model *m, const struct llm_fwd_opts *o, struct llm_fwd **out,
		   char *err, size_t err_len);
void llm_fwd_destroy(struct llm_fwd *f);

/*
 * Computes positions [start, start+n) for tokens[0..n) (the tokens at those positions),
 * writing their K/V into the pages, and the logits of the last one into logits[vocab] (may
 * be NULL).  The pages must hold positions [0, start) by the time wait(arg, L) returns for
 * each layer L (wait may be NULL).  Returns 0, the wait function's error, or -EINVAL if the
 * sequence would exceed max_ctx or a token is out of the vocabulary.
 */
int llm_fwd_prefill(struct llm_fwd *f, const uint32_t *tokens, size_t start, size_t n,
		    llm_layer_wait_fn wait, void *arg, float *logits);

/* Page i's bytes (a grid block's payload). */
uint8_t *llm_fwd_page(struct llm_fwd *f, size_t i);
size_t llm_fwd_page_bytes(const struct llm_fwd *f);
uint32_t llm_fwd_block_tokens(const struct llm_fwd *f);
uint32_t llm_fwd_max_ctx(const struct llm_fwd *f);
uint32_t llm_fwd_kv_dtype(const struct llm_fwd *f);
const struct llm_model *llm_fwd_model(const struct llm_fwd *f);

/*
 * Applies the rotary embedding of position pos to n_heads vectors of head_dim floats at vec,
 * exactly as the forward pass does (tables of max_ctx positions; pos < max_ctx).
 */
void llm_fwd_rope(const struct llm_fwd *f, float *vec, uint32_t n_heads, size_t pos);

/* Fills every page with a byte pattern: a test's way to prove nothing stale is read. */
void llm_fwd_scramble(struct llm_fwd *f, uint8_t byte);

/* Index of the largest logit (the first one on ties). */
uint32_t llm_argmax(const float *logits, size_t n);

#endif
