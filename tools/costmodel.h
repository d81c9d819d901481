/*
 * costmodel.h - what a cached prefix is worth: prefill time (TTFT) with recompute only and
 * with the grid, GPU-seconds, energy and money, for a model and a hardware profile.
 *
 * The model is deliberately first-order (doc/COSTMODEL.md has the formulas and the checks
 * against Mooncake's published figures):
 *   - prefill FLOPs of n new tokens after p cached ones =
 *       2 * active_params * n  +  attn_flops_per_pair * (n * p + n * (n + 1) / 2)
 *     with attn_flops_per_pair = 2 * layers * q_heads * (head_dim_qk + head_dim_v)
 *     (QK^T and AV for every causal query-key pair);
 *   - prefill time = FLOPs / (gpus * peak bf16 FLOP/s * MFU), no queueing, no batching;
 *   - loading p cached tokens reads p * kv_bytes_per_token at the tier's bandwidth (the
 *     lesser of gpus * the per-GPU link and the node's total), layer
 *     by layer, overlapped with the suffix's prefill: with L layers, load l = load / L and
 *     compute c = prefill / L, TTFT = l + (L - 1) * max(l, c) + c;
 *   - energy avoided = GPU power * GPU-seconds avoided - tier read power * read time.
 * Profiles are built in and every field can be overridden from "name = value" files.
 */
#ifndef KVG_COSTMODEL_H
#define KVG_COSTMODEL_H

#include <stddef.h>
#include <stdint.h>

enum cm_tier { CM_TIER_DRAM = 0, CM_TIER_NVME = 1, CM_TIER_NET = 2, CM_TIERS = 3 };

struct cm_model {
	char name[48];
	uint32_t layers;
	uint32_t q_heads;
	uint32_t kv_heads;
	uint32_t head_dim_qk; /* per-head width of queries and keys */
	uint32_t head_dim_v;  /* per-head width of values */
	uint32_t mla_latent;  /* MLA: cached latent width per token and layer; 0 = GQA */
	double active_params; /* parameters used per token (MoE: the active ones) */
	double kv_dtype_bytes;
	uint32_t gpus; /* GPUs of one prefill instance (tensor parallel) */
};

struct cm_hw {
	char name[48];
	double flops; /* peak dense bf16 FLOP/s of one GPU */
	double mfu;   /* share of peak that prefill reaches */
	double hbm_bytes;
	double gpu_power_w;		     /* board power while computing */
	double gpu_cost_hour;		     /* $ per GPU-hour */
	double tier_bw_gpu[CM_TIERS];	     /* bytes/s from the tier into one GPU (its link) */
	double tier_bw_node[CM_TIERS];	     /* bytes/s the tier delivers to all GPUs together */
	double tier_power_w[CM_TIERS];	     /* power drawn while reading at tier_bw */
	double tier_cost_gb_month[CM_TIERS]; /* $ per GB-month of capacity */
};

/* Built-in profiles by name (case-insensitive): "llama-3.1-8b", "llama-3.1-70b",
 * "deepseek-v3"; "h100", "h200", "a800".  Return 0, or -ENOENT. */
int cm_model_get(const char *name, struct cm_model *m);
int cm_hw_get(const char *name, struct cm_hw *h);
/* NULL-terminated lists of the built-in names. */
extern const char *const cm_model_names[];
extern const char *const cm_hw_names[];

/*
 * Sets one field: "model.layers", "hw.mfu", "hw.tier_bw_node.nvme" (bytes/s, as a plain
 * number such as 12e9), ...  Returns 0 or -EINVAL with a
 * reason in err.
 */
int cm_set(struct cm_model *m, struct cm_hw *h, const char *name, const char *value, char *err,
	   size_t err_len);
/* Reads "name = value" lines ('#' comments) through cm_set.  0, -errno, or -EINVAL with
 * "path:line: reason" in err. */
int cm_load_file(struct cm_model *m, struct cm_hw *h, const char *path, char *err, size_t err_len);
/* 0 if the profiles can be computed with, else -EINVAL with the field at fault in err. */
int cm_check(const struct cm_model *m, const struct cm_hw *h, char *err, size_t err_len);

/* KV bytes of one token (all layers). */
double cm_kv_bytes_per_token(const struct cm_model *m);
/* FLOPs to prefill n_new tokens after n_cached cached ones. */
double cm_prefill_flops(const struct cm_model *m, double n_cached, double n_new);
/* Seconds of that prefill on the instance (gpus GPUs at flops * mfu each). */
double cm_prefill_s(const struct cm_model *m, const struct cm_hw *h, double n_cached, double n_new);
/* Bytes/s a request reads from tier t: min(gpus * per-GPU link, node total). */
double cm_tier_bw(const struct cm_model *m, const struct cm_hw *h, enum cm_tier t);
/* Seconds to read the KV of n tokens from a tier. */
double cm_load_s(const struct cm_model *m, const struct cm_hw *h, enum cm_tier t, double n);
/* TTFT of a request of n_cached + n_new tokens whose first n_cached come from tier t,
 * loaded layer by layer under the suffix's prefill.  n_cached = 0 is recompute only. */
double cm_ttft_s(const struct cm_model *m, const struct cm_hw *h, enum cm_tier t, double n_cached,
		 double n_new);
/* Bandwidth (bytes/s) above which loading a context of n tokens is faster than
 * prefilling it: kv_bytes(n) / prefill_s(0, n). */
double cm_breakeven_bw(const struct cm_model *m, const struct cm_hw *h, double n);

/* Totals over a trace: feed every request with cm_add(), then read the fields. */
struct cm_totals {
	uint64_t requests;
	double input_tokens;
	double hit_tokens;
	double gpu_s_base;  /* GPU-seconds of prefill, recompute only (x gpus) */
	double gpu_s_grid;  /* GPU-seconds of prefill of the uncached suffixes */
	double ttft_s_base; /* sums, for means */
	double ttft_s_grid;
	double load_bytes; /* KV read from the tier */
	double load_s;	   /* tier busy reading */
};

void cm_add(struct cm_totals *t, const struct cm_model *m, const struct cm_hw *h, enum cm_tier tier,
	    double input_tokens, double hit_tokens, double *ttft_base, double *ttft_grid);
/* Energy avoided in kWh: GPU energy of the avoided GPU-seconds less the tier's reads. */
double cm_energy_avoided_kwh(const struct cm_totals *t, const struct cm_hw *h, enum cm_tier tier);
/* $ per million input tokens: GPU time only (base), or GPU time plus holding
 * capacity_bytes in the tier for duration_s (grid). */
double cm_cost_per_mtok_base(const struct cm_totals *t, const struct cm_hw *h);
double cm_cost_per_mtok_grid(const struct cm_totals *t, const struct cm_hw *h, enum cm_tier tier,
			     double capacity_bytes, double duration_s);

#endif
