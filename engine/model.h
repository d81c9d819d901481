/*
 * model.h - a Llama-architecture model: its shape (config) and its fp32 weights.
 *
 * A config comes by name (a built-in table: small shapes for tests and the demo, and the
 * shapes of real Llama models) or from a "name = value" file.  Weights are either generated
 * from a fixed seed, so that any config runs without a download, or loaded from a safetensors
 * file with Llama's tensor names (safetensors.h).  All weights live in one mapping owned by
 * the model; Wq, Wk, Wv are adjacent rows of one [d_q + 2*kv_dim][hidden] matrix and
 * W_gate, W_up of one [2*ffn][hidden] matrix, so that each is a single matrix product.
 * Matrices are row-major [out][in], as PyTorch's nn.Linear stores them.
 */
#ifndef LLM_MODEL_H
#define LLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define LLM_NAME_MAX 64

struct llm_config {
	char name[LLM_NAME_MAX];
	uint32_t layers;
	uint32_t hidden;   /* width of the residual stream */
	uint32_t heads;	   /* query heads */
	uint32_t kv_heads; /* key/value heads; heads is a multiple of it (GQA) */
	uint32_t head_dim; /* even (rotary pairs) */
	uint32_t ffn;	   /* SwiGLU inner width */
	uint32_t vocab;
	float rope_theta;
	float norm_eps;
	int tie_embeddings; /* the output projection is the embedding matrix */
};

struct llm_layer_weights {
	float *attn_norm; /* [hidden] */
	float *wqkv;	  /* [d_q + 2*kv_dim][hidden]: Wq rows, then Wk, then Wv */
	float *wo;	  /* [hidden][d_q] */
	float *ffn_norm;  /* [hidden] */
	float *wgu;	  /* [2*ffn][hidden]: W_gate rows, then W_up */
	float *wdown;	  /* [hidden][ffn] */
};

struct llm_model {
	struct llm_config cfg;
	char model_id[128];		 /* names the weights: the grid's namespace uses it */
	float *embed;			 /* [vocab][hidden] */
	float *norm;			 /* [hidden] */
	float *lm_head;			 /* [vocab][hidden]; equals embed when tied */
	struct llm_layer_weights *layer; /* [layers] */
	float *mem;			 /* owns every tensor above */
	size_t mem_bytes;
};

/* Fills cfg with the built-in config called name.  0, or -ENOENT for an unknown name. */
int llm_config_by_name(const char *name, struct llm_config *cfg);

/* The built-in names, NULL-terminated, for --help. */
extern const char *const llm_config_names[];

/*
 * Reads "key = value" lines ('#' comments) into cfg: layers, hidden, heads, kv_heads,
 * head_dim, ffn, vocab, rope_theta, norm_eps, tie_embeddings, name, and "base = NAME" to
 * start from a built-in config.  Returns 0, -errno if unreadable, or -EINVAL with
 * "path:line: reason" in err.  The result is checked with llm_config_check().
 */
int llm_config_load(const char *path, struct llm_config *cfg, char *err, size_t err_len);

/* 0 if cfg describes a model the engine can run, else -EINVAL and a reason in err. */
int llm_config_check(const struct llm_config *cfg, char *err, size_t err_len);

/* Query width heads*head_dim and key/value width kv_heads*head_dim. */
static inline uint32_t llm_config_dq(const struct llm_config *c)
{
	return c->heads * c->head_dim;
}
static inline uint32_t llm_config_dkv(const struct llm_config *c)
{
	return c->kv_heads * c->head_dim;
}

/* Weights excluding the embedding and the output projection. */
uint64_t llm_config_layer_params(const struct llm_config *c);

/*
 * FLOPs of prefilling positions [start, start+n) with [0, start) cached: the matrix products
 * of every layer, causal attention (QK^T and PV) and the last token's output projection.
 */
double llm_config_prefill_flops(const struct llm_config *c, uint64_t start, uint64_t n);

/* Allocates (zeroed) weights for cfg and points every tensor into one mapping. */
int llm_model_alloc(struct llm_model *m, const struct llm_config *cfg, char *err, size_t err_len);

/*
 * Allocates and fills weights from seed: uniform values scaled by 1/sqrt(fan_in), norms 1.
 * The same (cfg, seed) gives the same bits on every machine.  model_id becomes
 * "kvgrid-llm/NAME/seed-SEED".
 */
int llm_model_init_seed(struct llm_model *m, const struct llm_config *cfg, uint64_t seed, char *err,
			size_t err_len);

/* Releases the weights; m may be zeroed or partly built. */
void llm_model_free(struct llm_model *m);

#endif
