/*
 * costmodel.c - the TTFT, energy and cost model (see costmodel.h and doc/COSTMODEL.md).
 *
 * Profiles: model shapes are the published configurations (config.json of
 * meta-llama/Llama-3.1-8B and -70B, deepseek-ai/DeepSeek-V3).  Hardware figures are
 * datasheet peaks (dense bf16) with an assumed prefill MFU of 0.5, and round, stated
 * assumptions for link bandwidths, tier power and prices; every one of them can be
 * overridden from a file, which is what a deployment should do with its own numbers.
 * Field names for overrides come from one table, so the file syntax and the struct
 * cannot drift apart.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "costmodel.h"
#include "kvgrid.h"

static const struct cm_model cm_models[] = {
    {"llama-3.1-8b", 32, 32, 8, 128, 128, 0, 8.03e9, 2, 1},
    {"llama-3.1-70b", 80, 64, 8, 128, 128, 0, 70.6e9, 2, 8},
    /* MLA: a 512-wide latent plus a 64-wide rope key per token and layer are cached;
     * prefill attends with 192-wide query/key heads and 128-wide value heads */
    {"deepseek-v3", 61, 128, 128, 192, 128, 576, 37e9, 2, 8},
};

const char *const cm_model_names[] = {"llama-3.1-8b", "llama-3.1-70b", "deepseek-v3", NULL};

/* Links: PCIe Gen5 x16 about 50 GB/s in practice (Gen4: 25), one 400 Gb/s NIC per GPU,
 * eight NVMe drives per node at about 6 GB/s each.  Prices: rental $/GPU-hour, and
 * DRAM $4/GB and NVMe $0.08/GB amortised over 36 months. */
static const struct cm_hw cm_hws[] = {
    {"h100",
     989e12,
     0.5,
     80e9,
     700,
     2.50,
     {50e9, 50e9, 50e9},
     {400e9, 50e9, 400e9},
     {30, 160, 200},
     {0.111, 0.0022, 0.111}},
    {"h200",
     989e12,
     0.5,
     141e9,
     700,
     3.50,
     {50e9, 50e9, 50e9},
     {400e9, 50e9, 400e9},
     {30, 160, 200},
     {0.111, 0.0022, 0.111}},
    {"a800",
     312e12,
     0.5,
     80e9,
     400,
     1.50,
     {25e9, 25e9, 25e9},
     {200e9, 25e9, 100e9},
     {20, 100, 100},
     {0.111, 0.0022, 0.111}},
};

const char *const cm_hw_names[] = {"h100", "h200", "a800", NULL};

int cm_model_get(const char *name, struct cm_model *m)
{
	for (size_t i = 0; i < sizeof(cm_models) / sizeof(cm_models[0]); i++)
		if (!strcasecmp(cm_models[i].name, name)) {
			*m = cm_models[i];
			return 0;
		}
	return -ENOENT;
}

int cm_hw_get(const char *name, struct cm_hw *h)
{
	for (size_t i = 0; i < sizeof(cm_hws) / sizeof(cm_hws[0]); i++)
		if (!strcasecmp(cm_hws[i].name, name)) {
			*h = cm_hws[i];
			return 0;
		}
	return -ENOENT;
}

/* ---- overrides ------------------------------------------------------------------------ */

enum cm_kind { CM_U32, CM_DBL, CM_STR };

struct cm_field {
	const char *name;
	int hw; /* 0: model field, 1: hw field */
	enum cm_kind kind;
	size_t off;
};

#define MF(n, k)                                                                                   \
	{                                                                                          \
		"model." #n, 0, k, offsetof(struct cm_model, n)                                    \
	}
#define HF(n, k)                                                                                   \
	{                                                                                          \
		"hw." #n, 1, k, offsetof(struct cm_hw, n)                                          \
	}
#define HT(n, t, i)                                                                                \
	{                                                                                          \
		"hw." #n "." t, 1, CM_DBL, offsetof(struct cm_hw, n) + i * sizeof(double)          \
	}

static const struct cm_field cm_fields[] = {
    MF(name, CM_STR),
    MF(layers, CM_U32),
    MF(q_heads, CM_U32),
    MF(kv_heads, CM_U32),
    MF(head_dim_qk, CM_U32),
    MF(head_dim_v, CM_U32),
    MF(mla_latent, CM_U32),
    MF(active_params, CM_DBL),
    MF(kv_dtype_bytes, CM_DBL),
    MF(gpus, CM_U32),
    HF(name, CM_STR),
    HF(flops, CM_DBL),
    HF(mfu, CM_DBL),
    HF(hbm_bytes, CM_DBL),
    HF(gpu_power_w, CM_DBL),
    HF(gpu_cost_hour, CM_DBL),
    HT(tier_bw_gpu, "dram", 0),
    HT(tier_bw_gpu, "nvme", 1),
    HT(tier_bw_gpu, "net", 2),
    HT(tier_bw_node, "dram", 0),
    HT(tier_bw_node, "nvme", 1),
    HT(tier_bw_node, "net", 2),
    HT(tier_power_w, "dram", 0),
    HT(tier_power_w, "nvme", 1),
    HT(tier_power_w, "net", 2),
    HT(tier_cost_gb_month, "dram", 0),
    HT(tier_cost_gb_month, "nvme", 1),
    HT(tier_cost_gb_month, "net", 2),
};

int cm_set(struct cm_model *m, struct cm_hw *h, const char *name, const char *value, char *err,
	   size_t err_len)
{
	for (size_t i = 0; i < sizeof(cm_fields) / sizeof(cm_fields[0]); i++) {
		const struct cm_field *f = &cm_fields[i];
		if (strcmp(f->name, name))
			continue;
		char *base = f->hw ? (char *)h : (char *)m, *end;
		if (f->kind == CM_STR) {
			snprintf(base + f->off, 48, "%s", value);
			return 0;
		}
		double v = strtod(value, &end);
		if (end == value || *end || !isfinite(v) || v < 0) {
			snprintf(err, err_len, "%s: '%s' is not a non-negative number", name,
				 value);
			return -EINVAL;
		}
		if (f->kind == CM_U32) {
			if (v > UINT32_MAX || v != floor(v)) {
				snprintf(err, err_len, "%s: '%s' is not a whole number", name,
					 value);
				return -EINVAL;
			}
			uint32_t u = (uint32_t)v;
			memcpy(base + f->off, &u, sizeof(u));
		} else {
			memcpy(base + f->off, &v, sizeof(v));
		}
		return 0;
	}
	snprintf(err, err_len, "unknown field '%s'", name);
	return -EINVAL;
}

struct cm_conf {
	struct cm_model *m;
	struct cm_hw *h;
};

static int cm_conf_set(void *ctx, const char *name, const char *value, char *why, size_t why_len)
{
	struct cm_conf *cc = ctx;
	return cm_set(cc->m, cc->h, name, value, why, why_len);
}

int cm_load_file(struct cm_model *m, struct cm_hw *h, const char *path, char *err, size_t err_len)
{
	struct cm_conf cc = {m, h};
	int rc = conf_load(path, cm_conf_set, &cc, err, err_len);
	return rc == KVG_ECONFIG ? -EINVAL : rc; /* this module's errors are -errno */
}

int cm_check(const struct cm_model *m, const struct cm_hw *h, char *err, size_t err_len)
{
	const char *bad = !m->layers			   ? "model.layers"
			  : !m->q_heads			   ? "model.q_heads"
			  : !m->head_dim_qk		   ? "model.head_dim_qk"
			  : !m->mla_latent && !m->kv_heads ? "model.kv_heads"
			  : m->active_params <= 0	   ? "model.active_params"
			  : m->kv_dtype_bytes <= 0	   ? "model.kv_dtype_bytes"
			  : !m->gpus			   ? "model.gpus"
			  : h->flops <= 0		   ? "hw.flops"
			  : h->mfu <= 0 || h->mfu > 1	   ? "hw.mfu"
							   : NULL;
	for (int t = 0; !bad && t < CM_TIERS; t++)
		if (h->tier_bw_gpu[t] <= 0 || h->tier_bw_node[t] <= 0)
			bad = "hw.tier_bw_*";
	if (!bad)
		return 0;
	snprintf(err, err_len, "%s must be positive%s", bad,
		 !strcmp(bad, "hw.mfu") ? " and at most 1" : "");
	return -EINVAL;
}

/* ---- the model ------------------------------------------------------------------------- */

double cm_kv_bytes_per_token(const struct cm_model *m)
{
	double per_layer =
	    m->mla_latent ? m->mla_latent : 2.0 * m->kv_heads * m->head_dim_qk; /* K and V */
	return per_layer * m->layers * m->kv_dtype_bytes;
}

double cm_prefill_flops(const struct cm_model *m, double n_cached, double n_new)
{
	double pairs = n_new * n_cached + n_new * (n_new + 1) / 2;
	double per_pair = 2.0 * m->layers * m->q_heads * (m->head_dim_qk + m->head_dim_v);
	return 2.0 * m->active_params * n_new + per_pair * pairs;
}

double cm_prefill_s(const struct cm_model *m, const struct cm_hw *h, double n_cached, double n_new)
{
	return cm_prefill_flops(m, n_cached, n_new) / (m->gpus * h->flops * h->mfu);
}

double cm_tier_bw(const struct cm_model *m, const struct cm_hw *h, enum cm_tier t)
{
	return fmin(m->gpus * h->tier_bw_gpu[t], h->tier_bw_node[t]);
}

double cm_load_s(const struct cm_model *m, const struct cm_hw *h, enum cm_tier t, double n)
{
	return n * cm_kv_bytes_per_token(m) / cm_tier_bw(m, h, t);
}

double cm_ttft_s(const struct cm_model *m, const struct cm_hw *h, enum cm_tier t, double n_cached,
		 double n_new)
{
	double compute = cm_prefill_s(m, h, n_cached, n_new);
	if (n_cached <= 0)
		return compute;
	double L = m->layers, l = cm_load_s(m, h, t, n_cached) / L, c = compute / L;
	return l + (L - 1) * fmax(l, c) + c;
}

double cm_breakeven_bw(const struct cm_model *m, const struct cm_hw *h, double n)
{
	return n * cm_kv_bytes_per_token(m) / cm_prefill_s(m, h, 0, n);
}

void cm_add(struct cm_totals *t, const struct cm_model *m, const struct cm_hw *h, enum cm_tier tier,
	    double input_tokens, double hit_tokens, double *ttft_base, double *ttft_grid)
{
	/* a fully cached prompt still prefills its last token to produce the first output */
	double cached = fmin(hit_tokens, fmax(input_tokens - 1, 0));
	double base = cm_ttft_s(m, h, tier, 0, input_tokens);
	double grid = cm_ttft_s(m, h, tier, cached, input_tokens - cached);
	t->requests++;
	t->input_tokens += input_tokens;
	t->hit_tokens += hit_tokens;
	t->gpu_s_base += m->gpus * base;
	t->gpu_s_grid += m->gpus * cm_prefill_s(m, h, cached, input_tokens - cached);
	t->ttft_s_base += base;
	t->ttft_s_grid += grid;
	t->load_bytes += cached * cm_kv_bytes_per_token(m);
	t->load_s += cm_load_s(m, h, tier, cached);
	if (ttft_base)
		*ttft_base = base;
	if (ttft_grid)
		*ttft_grid = grid;
}

double cm_energy_avoided_kwh(const struct cm_totals *t, const struct cm_hw *h, enum cm_tier tier)
{
	double joules =
	    (t->gpu_s_base - t->gpu_s_grid) * h->gpu_power_w - t->load_s * h->tier_power_w[tier];
	return joules / 3.6e6;
}

double cm_cost_per_mtok_base(const struct cm_totals *t, const struct cm_hw *h)
{
	if (t->input_tokens <= 0)
		return 0;
	return t->gpu_s_base / 3600 * h->gpu_cost_hour / (t->input_tokens / 1e6);
}

double cm_cost_per_mtok_grid(const struct cm_totals *t, const struct cm_hw *h, enum cm_tier tier,
			     double capacity_bytes, double duration_s)
{
	if (t->input_tokens <= 0)
		return 0;
	double month_s = 30.0 * 24 * 3600;
	double storage = capacity_bytes / 1e9 * h->tier_cost_gb_month[tier] * duration_s / month_s;
	double gpu = t->gpu_s_grid / 3600 * h->gpu_cost_hour;
	return (gpu + storage) / (t->input_tokens / 1e6);
}
