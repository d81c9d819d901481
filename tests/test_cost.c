/*
 * Description: the cost model computes, for a toy model worked out by hand, the KV bytes
 * per token, prefill FLOPs and time, the layer-by-layer overlapped TTFT, the break-even
 * bandwidth, and the totals (GPU-seconds, energy, cost per million tokens); the built-in
 * profiles have the published KV sizes; overrides from a file apply, and a bad line is
 * refused with its line number.
 */
#include <errno.h>
#include <math.h>

#include "costmodel.h"
#include "t.h"

static int near(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* 2 layers, 4 query heads of width 8, 1 KV head, 1000 parameters, fp16, 2 GPUs of
 * 1 MFLOP/s at MFU 0.5; links 100 B/s per GPU, 1000 B/s per node; 100 W per GPU, 1 W per
 * tier; $3.60 per GPU-hour. */
static void toy(struct cm_model *m, struct cm_hw *h)
{
	memset(m, 0, sizeof(*m));
	memset(h, 0, sizeof(*h));
	snprintf(m->name, sizeof(m->name), "toy");
	m->layers = 2;
	m->q_heads = 4;
	m->kv_heads = 1;
	m->head_dim_qk = 8;
	m->head_dim_v = 8;
	m->active_params = 1000;
	m->kv_dtype_bytes = 2;
	m->gpus = 2;
	h->flops = 1e6;
	h->mfu = 0.5;
	h->gpu_power_w = 100;
	h->gpu_cost_hour = 3.6;
	for (int t = 0; t < CM_TIERS; t++) {
		h->tier_bw_gpu[t] = 100;
		h->tier_bw_node[t] = 1000;
		h->tier_power_w[t] = 1;
		h->tier_cost_gb_month[t] = 1;
	}
}

/* KV per token = 2 (K, V) x 1 head x 8 x 2 layers x 2 bytes = 64. */
static void test_kv_bytes(void)
{
	struct cm_model m;
	struct cm_hw h;
	toy(&m, &h);
	CHECK(near(cm_kv_bytes_per_token(&m), 64));
	m.mla_latent = 10; /* MLA caches the latent only: 10 x 2 layers x 2 bytes */
	CHECK(near(cm_kv_bytes_per_token(&m), 40));
}

/* 3 new tokens after 2 cached: 2 x 1000 x 3 = 6000 linear; causal pairs 3 x 2 + 3 x 4 / 2
 * = 12, each 2 x 2 layers x 4 heads x (8 + 8) = 256 FLOPs: 3072.  9072 FLOPs on 2 GPUs at
 * 0.5 MFLOP/s each: 9.072 ms. */
static void test_prefill(void)
{
	struct cm_model m;
	struct cm_hw h;
	toy(&m, &h);
	CHECK(near(cm_prefill_flops(&m, 2, 3), 9072));
	CHECK(near(cm_prefill_s(&m, &h, 2, 3), 0.009072));
	CHECK(near(cm_prefill_flops(&m, 0, 0), 0));
}

/* 2 cached tokens are 128 bytes at min(2 x 100, 1000) = 200 B/s: 0.64 s.  Per layer: load
 * 0.32 s, compute 4.536 ms; TTFT = 0.32 + 1 x max(0.32, 0.004536) + 0.004536. */
static void test_ttft_overlap(void)
{
	struct cm_model m;
	struct cm_hw h;
	toy(&m, &h);
	CHECK(near(cm_load_s(&m, &h, CM_TIER_DRAM, 2), 0.64));
	CHECK(near(cm_ttft_s(&m, &h, CM_TIER_DRAM, 2, 3), 0.644536));
	/* nothing cached: the whole prefill */
	CHECK(near(cm_ttft_s(&m, &h, CM_TIER_DRAM, 0, 5), cm_prefill_s(&m, &h, 0, 5)));
	/* a fast tier hides the load under compute: TTFT = l + (L - 1) c + c */
	h.tier_bw_gpu[CM_TIER_NVME] = 1e12;
	h.tier_bw_node[CM_TIER_NVME] = 1e12;
	double l = 128 / 2e12 / 2, c = 0.009072 / 2;
	CHECK(near(cm_ttft_s(&m, &h, CM_TIER_NVME, 2, 3), l + c + c));
}

/* Break-even for 4 tokens: 256 bytes against 10560 FLOPs (8000 + 10 pairs x 256), i.e.
 * 10.56 ms: 24242.42 B/s. */
static void test_breakeven(void)
{
	struct cm_model m;
	struct cm_hw h;
	toy(&m, &h);
	CHECK(near(cm_breakeven_bw(&m, &h, 4), 256 / 0.01056));
}

/* One request of 5 tokens with 2 cached: base 13840 FLOPs = 13.84 ms on 2 GPUs, grid
 * 9.072 ms; energy (27.68 - 18.144) ms x 100 W - 0.64 s x 1 W = 0.3136 J; cost of the base:
 * 0.02768 GPU-s x $0.001/GPU-s per 5e-6 Mtok = $5.536. */
static void test_totals(void)
{
	struct cm_model m;
	struct cm_hw h;
	struct cm_totals t = {0};
	double base, grid;
	toy(&m, &h);
	cm_add(&t, &m, &h, CM_TIER_DRAM, 5, 2, &base, &grid);
	CHECK(t.requests == 1 && near(t.input_tokens, 5) && near(t.hit_tokens, 2));
	CHECK(near(base, 0.01384));
	CHECK(near(grid, cm_ttft_s(&m, &h, CM_TIER_DRAM, 2, 3)));
	CHECK(near(t.gpu_s_base, 0.02768));
	CHECK(near(t.gpu_s_grid, 0.018144));
	CHECK(near(t.load_bytes, 128));
	CHECK(near(cm_energy_avoided_kwh(&t, &h, CM_TIER_DRAM), 0.3136 / 3.6e6));
	CHECK(near(cm_cost_per_mtok_base(&t, &h), 5.536));
	/* 1 GB held for a 30-day month at $1/GB-month adds $1 to 5e-6 Mtok */
	CHECK(near(cm_cost_per_mtok_grid(&t, &h, CM_TIER_DRAM, 1e9, 30.0 * 24 * 3600),
		   (0.018144 * 0.001 + 1) / 5e-6));
	/* a prompt cached whole still prefills its last token */
	struct cm_totals u = {0};
	cm_add(&u, &m, &h, CM_TIER_DRAM, 5, 5, NULL, NULL);
	CHECK(near(u.gpu_s_grid, m.gpus * cm_prefill_s(&m, &h, 4, 1)));
}

/* The built-in profiles carry the published KV sizes. */
static void test_profiles(void)
{
	struct cm_model m;
	struct cm_hw h;
	CHECK_RC(cm_model_get("llama-3.1-8b", &m), 0);
	CHECK(near(cm_kv_bytes_per_token(&m), 131072)); /* 128 KiB */
	CHECK_RC(cm_model_get("Llama-3.1-70B", &m), 0);
	CHECK(near(cm_kv_bytes_per_token(&m), 327680)); /* 320 KiB */
	CHECK_RC(cm_model_get("deepseek-v3", &m), 0);
	CHECK(near(cm_kv_bytes_per_token(&m), 70272)); /* 61 x 576 x 2 */
	CHECK_RC(cm_model_get("nope", &m), -ENOENT);
	for (int i = 0; cm_hw_names[i]; i++) {
		char err[128];
		CHECK_RC(cm_hw_get(cm_hw_names[i], &h), 0);
		for (int j = 0; cm_model_names[j]; j++) {
			CHECK_RC(cm_model_get(cm_model_names[j], &m), 0);
			CHECK_RC(cm_check(&m, &h, err, sizeof(err)), 0);
		}
	}
}

/* A profile file overrides fields; a bad line is refused with its line number. */
static void test_profile_file(void)
{
	char dir[4096], path[4200], err[4400];
	struct cm_model m;
	struct cm_hw h;
	t_tmpdir(dir, sizeof(dir), "cost");
	snprintf(path, sizeof(path), "%s/p.conf", dir);
	FILE *f = fopen(path, "w");
	fputs("# my cluster\nmodel.layers = 40\nhw.mfu = 0.4  # measured\n"
	      "hw.tier_bw_node.nvme = 12e9\nhw.name = mine\n",
	      f);
	fclose(f);
	CHECK_RC(cm_model_get("llama-3.1-8b", &m), 0);
	CHECK_RC(cm_hw_get("h100", &h), 0);
	CHECK_RC(cm_load_file(&m, &h, path, err, sizeof(err)), 0);
	CHECK(m.layers == 40 && near(h.mfu, 0.4) && near(h.tier_bw_node[CM_TIER_NVME], 12e9));
	CHECK(!strcmp(h.name, "mine"));
	f = fopen(path, "w");
	fputs("model.layers = 40\n\nmodel.layers = 4.5\n", f);
	fclose(f);
	CHECK_RC(cm_load_file(&m, &h, path, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "p.conf:3: model.layers") != NULL);
	CHECK_RC(cm_set(&m, &h, "hw.warp_drive", "1", err, sizeof(err)), -EINVAL);
	CHECK_RC(cm_set(&m, &h, "hw.mfu", "-1", err, sizeof(err)), -EINVAL);
	CHECK_RC(cm_set(&m, &h, "hw.mfu", "2", err, sizeof(err)), 0);
	CHECK_RC(cm_check(&m, &h, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "hw.mfu") != NULL);
	t_rmdir(dir);
}

int main(void)
{
	RUN(test_kv_bytes);
	RUN(test_prefill);
	RUN(test_ttft_overlap);
	RUN(test_breakeven);
	RUN(test_totals);
	RUN(test_profiles);
	RUN(test_profile_file);
	return t_failed ? 1 : 0;
}
