/*
 * kvgrid-llama: llama.cpp's KV on the grid (build/libkvgrid-llama.{a,so}; doc/LLAMA.md).
 *
 * Two calls around an application's own llama_decode():
 *
 *   size_t done;
 *   kvgl_restore(kl, ctx, seq, tokens, n, &done);  // the longest cached prefix, in whole blocks
 *   decode tokens[done, n) as usual ... sample the first token ...
 *   kvgl_store(kl, ctx, seq, tokens, n);           // the new full blocks, stored in the background
 *
 * The sequence state (llama_state_seq_get_data) is cut into one piece per block of
 * block_tokens tokens, stored under the grid's chained block keys, and pieces are joined back
 * into a prefix state for llama_state_seq_set_data.  The keys' namespace carries the model
 * file's content hash, llama.cpp's version, the K and V types and the V layout: KV of one
 * model or layout is never found by another.  Every piece is checked (header, key, layer
 * table, checksum) before it is used; anything unexpected is a miss, never a wrong restore.
 *
 * Plain-attention models only: sliding-window, hybrid and recurrent memories are refused by
 * kvgl_open().  Link: -lkvgrid-llama -lkvgrid and llama.cpp's libllama / libggml-base.
 */
#ifndef KVGRID_LLAMA_H
#define KVGRID_LLAMA_H

#include <kvgrid.h>
#include <llama.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KVGL_API __attribute__((visibility("default")))
#else
#define KVGL_API
#endif

typedef struct kvgl kvgl;

struct kvgl_params {
	const char *model_path;		 /* the GGUF file: its content hash names the KV */
	const struct llama_model *model; /* loaded from model_path */
	enum ggml_type type_k, type_v;	 /* the context's K and V types */
	enum llama_flash_attn_type flash_attn_type; /* the context's (the V layout follows) */
	uint32_t block_tokens;	       /* tokens per piece, 16..1024; 0: the grid's default */
	const struct kvg_config *grid; /* tiers or servers (NULL: defaults, DRAM only); the
					* namespace fields (model_id, layers, kv_heads,
					* head_dim, dtype) are the adapter's own */
};

/* Fills p with defaults: F16 K and V, flash attention auto, block_tokens 0, no grid. */
KVGL_API void kvgl_params_init(struct kvgl_params *p);

/*
 * Opens the grid for one model.  Hashes the model file (XXH3-128 over its bytes) to name
 * the KV.  Returns 0, or an error with a one-line reason in err: -EINVAL for a model whose
 * memory is not a plain KV cache (sliding-window, hybrid, recurrent), an unreadable file,
 * or the grid's kvg_open() error.  *out is owned by the caller until kvgl_close().
 */
KVGL_API int kvgl_open(const struct kvgl_params *p, kvgl **out, char *err, size_t err_len);

/* Waits for stores in flight, then closes the grid. */
KVGL_API void kvgl_close(kvgl *kl);

/*
 * Restores into sequence seq of ctx the longest prefix of tokens[0, n) held by the grid,
 * in whole blocks and at most n - 1 tokens (the last token is always decoded, so that the
 * caller gets its logits).  *restored is how many tokens now sit in the sequence at
 * positions 0..*restored-1; the caller decodes the rest from there.  The sequence's former
 * content is replaced when something is restored, and kept when *restored is 0.
 * Returns 0 (a miss is 0 with *restored = 0: absent, damaged or foreign pieces, or a state
 * llama.cpp refuses) or a negative error (-ENOMEM).  Call it on the thread that decodes
 * with ctx, between decodes.
 */
KVGL_API int kvgl_restore(kvgl *kl, struct llama_context *ctx, llama_seq_id seq,
			  const llama_token *tokens, size_t n, size_t *restored);

/*
 * Stores the full blocks of tokens[0, n) that sequence seq of ctx holds (its positions
 * 0..n-1 must hold these tokens).  Copies the sequence's state (llama_state_seq_get_data)
 * on the calling thread, then cuts and stores the pieces on a background thread and
 * returns: call it after the first token is sampled, it never waits for the grid.  Blocks
 * the grid already holds are not written again.  Returns 0, -EBUSY when the previous store
 * is still being cut (the call is dropped, nothing is lost but this store), or an error
 * with the reason given by kvgl_last_error().
 */
KVGL_API int kvgl_store(kvgl *kl, struct llama_context *ctx, llama_seq_id seq,
			const llama_token *tokens, size_t n);

/* Waits until every store handed to the background is in the grid (timeout_ms -1:
 * forever).  Returns 0, or KVG_EINPROGRESS at the timeout. */
KVGL_API int kvgl_flush(kvgl *kl, int timeout_ms);

struct kvgl_stats {
	uint64_t restores, restored_tokens, misses, rejected_pieces, set_data_failures;
	uint64_t stores, stored_pieces, store_errors, busy_drops;
	uint64_t kv_bytes_restored; /* bytes of joined state handed to llama.cpp */
	double last_load_ms;	    /* the last restore: loading pieces from the grid */
	double last_join_ms;	    /* joining them into one state */
	double last_set_ms;	    /* llama_state_seq_set_data */
	uint64_t last_kv_bytes;	    /* KV bytes (rows only) of the last restore */
};

KVGL_API void kvgl_stats_get(kvgl *kl, struct kvgl_stats *st);

/* The grid under the adapter (for statistics), owned by kl. */
KVGL_API kvg_grid *kvgl_grid(kvgl *kl);

/* The reason of the last refused store or restore ("" if none; a store cut in the
 * background reports here once it is done); valid until the next call on kl.  The caller's
 * thread only. */
KVGL_API const char *kvgl_last_error(kvgl *kl);

/* The namespace's model_id string: llama.cpp version, model hash, K/V types, V layout. */
KVGL_API const char *kvgl_namespace(kvgl *kl);

#ifdef __cplusplus
}
#endif
#endif
