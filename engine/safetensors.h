/*
 * safetensors.h - Llama weights from (and to) a safetensors file.
 *
 * The format (github.com/huggingface/safetensors):
 *
 *     [u64 little-endian N] [N bytes of JSON header] [tensor data ...]
 *     header: { "NAME": {"dtype": "F32"|"F16"|"BF16", "shape": [..],
 *                        "data_offsets": [begin, end]}, ..., "__metadata__": {...} }
 *
 * offsets are relative to the first byte after the header.  One file holds the whole model
 * (sharded checkpoints with an index.json are not read).  Tensor names are Hugging Face
 * Llama's: model.embed_tokens.weight, model.layers.I.{input_layernorm,
 * post_attention_layernorm}.weight, model.layers.I.self_attn.{q,k,v,o}_proj.weight,
 * model.layers.I.mlp.{gate,up,down}_proj.weight, model.norm.weight and lm_head.weight (absent
 * when the config ties embeddings).  Every tensor is widened to fp32.
 *
 * Errors name the file and the tensor: -ENOENT for a missing tensor, -EINVAL for a wrong
 * shape or dtype, -EBADMSG for a malformed header, a truncated file or inconsistent offsets,
 * -errno when the file cannot be read.
 */
#ifndef LLM_SAFETENSORS_H
#define LLM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define LLM_ST_NAME_MAX 128
#define LLM_ST_NDIM_MAX 4

struct llm_st_tensor {
	char name[LLM_ST_NAME_MAX];
	char dtype[8]; /* "F32", "F16", "BF16" */
	uint32_t ndim;
	uint64_t shape[LLM_ST_NDIM_MAX];
	uint64_t begin, end; /* data offsets, relative to the data section */
	const float *data;   /* writer only: fp32 values, converted to dtype on write */
};

/* A parsed header.  Owned by the caller; release with llm_st_close(). */
struct llm_st_file {
	int fd;
	uint64_t data_start; /* 8 + header length */
	uint64_t file_bytes;
	struct llm_st_tensor *t;
	size_t count;
};

/* Opens path and parses and checks its header.  0 or an error (reason in err). */
int llm_st_open(const char *path, struct llm_st_file *st, char *err, size_t err_len);
void llm_st_close(struct llm_st_file *st);

/* The tensor called name, or NULL. */
const struct llm_st_tensor *llm_st_find(const struct llm_st_file *st, const char *name);

/*
 * Allocates m for cfg and fills every tensor from path, checking names and shapes against
 * cfg.  model_id becomes "kvgrid-llm/NAME/st-BASENAME-SIZE".  0 or an error (reason in err);
 * on error m holds nothing.
 */
int llm_st_load_model(struct llm_model *m, const struct llm_config *cfg, const char *path,
		      char *err, size_t err_len);

/* Writes tensors t[0..n) (their data, shape and dtype; offsets are computed) to path. */
int llm_st_write(const char *path, const struct llm_st_tensor *t, size_t n, char *err,
		 size_t err_len);

/*
 * The tensors of model m under Llama's names, with data pointing into m, in dtype ("F32",
 * "BF16" or "F16").  Writes at most max entries and returns the number a full list needs.
 */
size_t llm_st_model_tensors(const struct llm_model *m, const char *dtype, struct llm_st_tensor *t,
			    size_t max);

#endif
