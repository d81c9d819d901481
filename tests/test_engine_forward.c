/*
 * test_engine_forward.c - the engine's forward pass against a straightforward reference: the
 * Llama equations written as plain loops in double precision, position by position, with no
 * BLAS, no paging, no tiling and no online softmax.  Also the pieces that a wrong index would
 * break silently: the rotary embedding, the GQA head mapping, the KV dtype conversions, and
 * the chunking rule that makes a resumed prefill bit-identical to a whole one.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "../engine/forward.h"
#include "../engine/kvdtype.h"
#include "../engine/model.h"
#include "t.h"

/* ---- the reference ------------------------------------------------------------------- */

static void ref_rmsnorm(double *out, const double *x, const float *w, uint32_t d, float eps)
{
	double ss = 0;
	for (uint32_t j = 0; j < d; j++)
		ss += x[j] * x[j];
	double inv = 1.0 / sqrt(ss / d + eps);
	for (uint32_t j = 0; j < d; j++)
		out[j] = x[j] * inv * w[j];
}

/* out[rows] = W[rows][cols] . v */
static void ref_matvec(double *out, const float *w, const double *v, uint32_t rows, uint32_t cols)
{
	for (uint32_t r = 0; r < rows; r++) {
		double s = 0;
		for (uint32_t c = 0; c < cols; c++)
			s += (double)w[(size_t)r * cols + c] * v[c];
		out[r] = s;
	}
}

static void ref_rope(double *v, uint32_t hd, double theta, size_t pos)
{
	for (uint32_t j = 0; j < hd / 2; j++) {
		double a = (double)pos * pow(theta, -2.0 * j / hd), c = cos(a), s = sin(a);
		double x = v[j], y = v[j + hd / 2];
		v[j] = x * c - y * s;
		v[j + hd / 2] = y * c + x * s;
	}
}

/* Rounds a value through the cache dtype, as the engine's exactness rule requires. */
static double ref_round(uint32_t dtype, double v)
{
	float f = (float)v, out;
	uint8_t tmp[4];
	llm_kv_encode(dtype, tmp, &f, 1);
	llm_kv_decode(dtype, &out, tmp, 1);
	return out;
}

/* Logits of the last of tokens[0..n), computed from scratch. */
static void ref_forward(const struct llm_model *m, uint32_t dtype, const uint32_t *tok, size_t n,
			double *logits)
{
	const struct llm_config *c = &m->cfg;
	uint32_t d = c->hidden, dq = llm_config_dq(c), dkv = llm_config_dkv(c), hd = c->head_dim;
	uint32_t group = c->heads / c->kv_heads;
	double *x = calloc(n * d, sizeof(double)), *h = calloc(d, sizeof(double));
	double *q = calloc(n * dq, sizeof(double)), *k = calloc(n * dkv, sizeof(double));
	double *v = calloc(n * dkv, sizeof(double)), *o = calloc(dq, sizeof(double));
	double *t = calloc(d > c->ffn ? d : c->ffn, sizeof(double)),
	       *g = calloc(c->ffn, sizeof(double));
	double *u = calloc(c->ffn, sizeof(double)), *p = calloc(n, sizeof(double));
	for (size_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < d; j++)
			x[i * d + j] = m->embed[(size_t)tok[i] * d + j];
	for (uint32_t l = 0; l < c->layers; l++) {
		const struct llm_layer_weights *w = &m->layer[l];
		for (size_t i = 0; i < n; i++) {
			ref_rmsnorm(h, x + i * d, w->attn_norm, d, c->norm_eps);
			ref_matvec(q + i * dq, w->wqkv, h, dq, d);
			ref_matvec(k + i * dkv, w->wqkv + (size_t)dq * d, h, dkv, d);
			ref_matvec(v + i * dkv, w->wqkv + (size_t)(dq + dkv) * d, h, dkv, d);
			for (uint32_t hh = 0; hh < c->heads; hh++)
				ref_rope(q + i * dq + hh * hd, hd, c->rope_theta, i);
			for (uint32_t hh = 0; hh < c->kv_heads; hh++)
				ref_rope(k + i * dkv + hh * hd, hd, c->rope_theta, i);
			for (uint32_t j = 0; j < dkv; j++) {
				k[i * dkv + j] = ref_round(dtype, k[i * dkv + j]);
				v[i * dkv + j] = ref_round(dtype, v[i * dkv + j]);
			}
		}
		for (size_t i = 0; i < n; i++) {
			for (uint32_t hh = 0; hh < c->heads; hh++) {
				uint32_t kvh = hh / group; /* the GQA rule */
				double mx = -INFINITY, sum = 0;
				for (size_t jj = 0; jj <= i; jj++) {
					double s = 0;
					for (uint32_t e = 0; e < hd; e++)
						s += q[i * dq + hh * hd + e] *
						     k[jj * dkv + kvh * hd + e];
					p[jj] = s / sqrt((double)hd);
					mx = p[jj] > mx ? p[jj] : mx;
				}
				for (size_t jj = 0; jj <= i; jj++)
					sum += (p[jj] = exp(p[jj] - mx));
				for (uint32_t e = 0; e < hd; e++) {
					double acc = 0;
					for (size_t jj = 0; jj <= i; jj++)
						acc += p[jj] * v[jj * dkv + kvh * hd + e];
					o[hh * hd + e] = acc / sum;
				}
			}
			ref_matvec(t, w->wo, o, d, dq);
			for (uint32_t j = 0; j < d; j++)
				x[i * d + j] += t[j];
			ref_rmsnorm(h, x + i * d, w->ffn_norm, d, c->norm_eps);
			ref_matvec(g, w->wgu, h, c->ffn, d);
			ref_matvec(u, w->wgu + (size_t)c->ffn * d, h, c->ffn, d);
			for (uint32_t j = 0; j < c->ffn; j++)
				g[j] = g[j] / (1.0 + exp(-g[j])) * u[j];
			ref_matvec(t, w->wdown, g, d, c->ffn);
			for (uint32_t j = 0; j < d; j++)
				x[i * d + j] += t[j];
		}
	}
	ref_rmsnorm(h, x + (n - 1) * d, m->norm, d, c->norm_eps);
	ref_matvec(logits, m->lm_head, h, c->vocab, d);
	free(x), free(h), free(q), free(k), free(v), free(o), free(t), free(g), free(u), free(p);
}

/* ---- helpers ------------------------------------------------------------------------- */

static struct llm_model model;
static struct llm_config cfg;

static struct llm_fwd *engine(uint32_t dtype, uint32_t bt, uint32_t max_ctx)
{
	struct llm_fwd_opts o = {
	    .kv_dtype = dtype, .block_tokens = bt, .max_ctx = max_ctx, .threads = 2};
	struct llm_fwd *f = NULL;
	char err[256];
	if (llm_fwd_create(&model, &o, &f, err, sizeof(err)))
		fprintf(stderr, "llm_fwd_create: %s\n", err);
	return f;
}

static void tokens(uint32_t *t, size_t n, uint32_t salt)
{
	for (size_t i = 0; i < n; i++)
		t[i] = (uint32_t)((i * 2654435761u + salt * 40503u) % cfg.vocab);
}

/* Largest |a-b| over the logits, relative to the largest |b| (at least 1). */
static double rel_diff(const float *a, const double *b, size_t n)
{
	double md = 0, mb = 1;
	for (size_t i = 0; i < n; i++) {
		md = fmax(md, fabs(a[i] - b[i]));
		mb = fmax(mb, fabs(b[i]));
	}
	return md / mb;
}

/* ---- tests --------------------------------------------------------------------------- */

/* Description: with an fp32 KV cache the engine's logits equal the reference's to 1e-4 for
 * contexts inside one page, at a page boundary and across several pages (GQA 4:2). */
static void test_forward_matches_reference_fp32(void)
{
	size_t lens[] = {1, 5, 16, 17, 47};
	struct llm_fwd *f = engine(KVG_DTYPE_FP32, 16, 64);
	CHECK(f);
	float *lg = calloc(cfg.vocab, sizeof(float));
	double *ref = calloc(cfg.vocab, sizeof(double));
	uint32_t tok[64];
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		tokens(tok, lens[i], (uint32_t)i);
		CHECK_RC(llm_fwd_prefill(f, tok, 0, lens[i], NULL, NULL, lg), 0);
		ref_forward(&model, KVG_DTYPE_FP32, tok, lens[i], ref);
		double rd = rel_diff(lg, ref, cfg.vocab);
		if (rd > 1e-4)
			fprintf(stderr, "n=%zu rel diff %g\n", lens[i], rd);
		CHECK(rd <= 1e-4);
	}
	free(lg), free(ref);
	llm_fwd_destroy(f);
}

/* Description: with bf16 and fp16 KV caches the logits equal a reference that rounds K and V
 * through the same dtype, within 1e-2 (an fp32 rounding difference can move a K/V value by
 * one bf16 step, 2^-8 relative, which shows in the logits at that order). */
static void test_forward_matches_reference_half(void)
{
	uint32_t dts[] = {KVG_DTYPE_BF16, KVG_DTYPE_FP16};
	float *lg = calloc(cfg.vocab, sizeof(float));
	double *ref = calloc(cfg.vocab, sizeof(double));
	uint32_t tok[40];
	tokens(tok, 40, 9);
	for (size_t i = 0; i < 2; i++) {
		struct llm_fwd *f = engine(dts[i], 16, 64);
		CHECK(f);
		CHECK_RC(llm_fwd_prefill(f, tok, 0, 40, NULL, NULL, lg), 0);
		ref_forward(&model, dts[i], tok, 40, ref);
		double rd = rel_diff(lg, ref, cfg.vocab);
		if (rd > 1e-2)
			fprintf(stderr, "dtype %u rel diff %g\n", dts[i], rd);
		CHECK(rd <= 1e-2);
		llm_fwd_destroy(f);
	}
	free(lg), free(ref);
}

/* Description: prefilling [0, k) and then [k, n) from the pages gives the same logits, bit
 * for bit, as prefilling [0, n) at once, for every page-aligned k: the property a reload
 * from the grid relies on. */
static void test_resumed_prefill_is_bit_identical(void)
{
	struct llm_fwd *f = engine(KVG_DTYPE_BF16, 16, 96);
	CHECK(f);
	uint32_t tok[70];
	tokens(tok, 70, 3);
	float *whole = calloc(cfg.vocab, sizeof(float)), *part = calloc(cfg.vocab, sizeof(float));
	CHECK_RC(llm_fwd_prefill(f, tok, 0, 70, NULL, NULL, whole), 0);
	for (size_t k = 16; k < 70; k += 16) {
		CHECK_RC(llm_fwd_prefill(f, tok, 0, k, NULL, NULL, NULL), 0);
		CHECK_RC(llm_fwd_prefill(f, tok + k, k, 70 - k, NULL, NULL, part), 0);
		CHECK(memcmp(whole, part, cfg.vocab * sizeof(float)) == 0);
	}
	free(whole), free(part);
	llm_fwd_destroy(f);
}

struct layer_feed {
	struct llm_fwd *f;
	const uint8_t *saved; /* the prefix pages as a whole prefill wrote them */
	size_t pages;
	uint32_t calls[8], n_calls;
};

/* Delivers layer L of every prefix page only when the engine asks for layer L. */
static int feed_layer(void *arg, uint32_t layer)
{
	struct layer_feed *lf = arg;
	size_t pb = llm_fwd_page_bytes(lf->f), part = pb / cfg.layers;
	for (size_t p = 0; p < lf->pages; p++)
		memcpy(llm_fwd_page(lf->f, p) + layer * part, lf->saved + p * pb + layer * part,
		       part);
	if (lf->n_calls < 8)
		lf->calls[lf->n_calls] = layer;
	lf->n_calls++;
	return 0;
}

/* Description: the engine asks for the cached prefix layer by layer, in order, once per layer,
 * and reads no layer's K/V before asking for it: with each layer's bytes delivered only when
 * asked (the rest of the pages garbage), the logits are still bit-identical.  This is the
 * contract a layer-wise grid load relies on, and it checks the page layout
 * [layer][K,V][tokens][kv_heads][head_dim] too. */
static void test_prefix_is_read_layer_by_layer(void)
{
	struct llm_fwd *f = engine(KVG_DTYPE_BF16, 16, 96);
	CHECK(f);
	uint32_t tok[75];
	tokens(tok, 75, 21);
	float *whole = calloc(cfg.vocab, sizeof(float)), *part = calloc(cfg.vocab, sizeof(float));
	CHECK_RC(llm_fwd_prefill(f, tok, 0, 75, NULL, NULL, whole), 0);
	size_t pages = 4, pb = llm_fwd_page_bytes(f);
	uint8_t *saved = malloc(pages * pb);
	for (size_t p = 0; p < pages; p++)
		memcpy(saved + p * pb, llm_fwd_page(f, p), pb);
	llm_fwd_scramble(f, 0x7f);
	struct layer_feed lf = {.f = f, .saved = saved, .pages = pages};
	CHECK_RC(llm_fwd_prefill(f, tok + 64, 64, 11, feed_layer, &lf, part), 0);
	CHECK(lf.n_calls == cfg.layers);
	for (uint32_t l = 0; l < cfg.layers; l++)
		CHECK(lf.calls[l] == l);
	CHECK(memcmp(whole, part, cfg.vocab * sizeof(float)) == 0);
	free(saved), free(whole), free(part);
	llm_fwd_destroy(f);
}

/* Description: decoding token by token gives logits close to (not necessarily bit-equal
 * with) a whole prefill of the same sequence: the single-row path computes the same model. */
static void test_decode_steps_match_prefill(void)
{
	struct llm_fwd *f = engine(KVG_DTYPE_FP32, 16, 64);
	CHECK(f);
	uint32_t tok[24];
	tokens(tok, 24, 5);
	float *a = calloc(cfg.vocab, sizeof(float)), *b = calloc(cfg.vocab, sizeof(float));
	double *bd = calloc(cfg.vocab, sizeof(double));
	CHECK_RC(llm_fwd_prefill(f, tok, 0, 24, NULL, NULL, a), 0);
	for (size_t i = 0; i < 24; i++)
		CHECK_RC(llm_fwd_prefill(f, tok + i, i, 1, NULL, NULL, b), 0);
	for (uint32_t i = 0; i < cfg.vocab; i++)
		bd[i] = b[i];
	CHECK(rel_diff(a, bd, cfg.vocab) <= 1e-5);
	free(a), free(b), free(bd);
	llm_fwd_destroy(f);
}

/* Description: RoPE at position 0 is the identity, keeps every pair's length, rotates pair
 * (j, j + head_dim/2) by pos * theta^(-2j/head_dim), and so makes q.k depend only on the
 * distance between positions. */
static void test_rope(void)
{
	struct llm_fwd *f = engine(KVG_DTYPE_FP32, 16, 4096);
	CHECK(f);
	uint32_t hd = cfg.head_dim;
	float q[64] = {0}, k[64] = {0}, q0[64] = {0}, k0[64] = {0};
	for (uint32_t i = 0; i < hd; i++) {
		q0[i] = sinf((float)i + 1.0f);
		k0[i] = cosf(0.5f * (float)i);
	}
	memcpy(q, q0, sizeof(q));
	llm_fwd_rope(f, q, 1, 0);
	CHECK(memcmp(q, q0, hd * sizeof(float)) == 0);
	size_t pos = 1234;
	memcpy(q, q0, sizeof(q));
	llm_fwd_rope(f, q, 1, pos);
	for (uint32_t j = 0; j < hd / 2; j++) {
		double a = (double)pos * pow(cfg.rope_theta, -2.0 * j / hd);
		double x = q0[j] * cos(a) - q0[j + hd / 2] * sin(a);
		double y = q0[j + hd / 2] * cos(a) + q0[j] * sin(a);
		CHECK(fabs(q[j] - x) < 1e-4 && fabs(q[j + hd / 2] - y) < 1e-4);
		double r0 = hypot(q0[j], q0[j + hd / 2]), r1 = hypot(q[j], q[j + hd / 2]);
		CHECK(fabs(r0 - r1) < 1e-5);
	}
	double dots[3];
	size_t pairs[3][2] = {{10, 3}, {1007, 1000}, {3007, 3000}};
	for (int t = 0; t < 3; t++) {
		memcpy(q, q0, sizeof(q));
		memcpy(k, k0, sizeof(k));
		llm_fwd_rope(f, q, 1, pairs[t][0]);
		llm_fwd_rope(f, k, 1, pairs[t][1]);
		dots[t] = 0;
		for (uint32_t i = 0; i < hd; i++)
			dots[t] += (double)q[i] * k[i];
	}
	CHECK(fabs(dots[0] - dots[1]) < 1e-3 && fabs(dots[0] - dots[2]) < 1e-3);
	llm_fwd_destroy(f);
}

/* Description: GQA maps query head h to KV head h / (heads / kv_heads): a GQA model equals
 * the multi-head model whose K/V heads are copies of the GQA heads in that order; and a page
 * holds layers * 2 * block_tokens * kv_heads * head_dim elements, not heads. */
static void test_gqa_mapping_and_page_shape(void)
{
	struct llm_config mc = cfg;
	mc.kv_heads = cfg.heads;
	struct llm_model mha;
	char err[256];
	CHECK_RC(llm_model_alloc(&mha, &mc, err, sizeof(err)), 0);
	uint32_t d = cfg.hidden, dq = llm_config_dq(&cfg), dkv = llm_config_dkv(&cfg);
	uint32_t hd = cfg.head_dim, group = cfg.heads / cfg.kv_heads;
	memcpy(mha.embed, model.embed, (size_t)cfg.vocab * d * sizeof(float));
	memcpy(mha.lm_head, model.lm_head, (size_t)cfg.vocab * d * sizeof(float));
	memcpy(mha.norm, model.norm, d * sizeof(float));
	for (uint32_t l = 0; l < cfg.layers; l++) {
		const struct llm_layer_weights *g = &model.layer[l];
		struct llm_layer_weights *w = &mha.layer[l];
		memcpy(w->attn_norm, g->attn_norm, d * sizeof(float));
		memcpy(w->ffn_norm, g->ffn_norm, d * sizeof(float));
		memcpy(w->wqkv, g->wqkv, (size_t)dq * d * sizeof(float));
		for (int kv = 0; kv < 2; kv++) /* K then V: head h of the MHA copies head h/group */
			for (uint32_t h = 0; h < cfg.heads; h++)
				memcpy(w->wqkv + ((size_t)dq * (1 + kv) + (size_t)h * hd) * d,
				       g->wqkv + ((size_t)dq + (size_t)kv * dkv +
						  (size_t)(h / group) * hd) *
						     d,
				       (size_t)hd * d * sizeof(float));
		memcpy(w->wo, g->wo, (size_t)d * dq * sizeof(float));
		memcpy(w->wgu, g->wgu, (size_t)2 * cfg.ffn * d * sizeof(float));
		memcpy(w->wdown, g->wdown, (size_t)d * cfg.ffn * sizeof(float));
	}
	struct llm_fwd_opts o = {.kv_dtype = KVG_DTYPE_FP32, .block_tokens = 16, .max_ctx = 64};
	struct llm_fwd *fg = engine(KVG_DTYPE_FP32, 16, 64), *fm = NULL;
	CHECK(fg);
	CHECK_RC(llm_fwd_create(&mha, &o, &fm, err, sizeof(err)), 0);
	CHECK(llm_fwd_page_bytes(fg) == (size_t)cfg.layers * 2 * 16 * cfg.kv_heads * hd * 4);
	CHECK(llm_fwd_page_bytes(fm) == (size_t)cfg.layers * 2 * 16 * cfg.heads * hd * 4);
	uint32_t tok[33];
	tokens(tok, 33, 11);
	float *a = calloc(cfg.vocab, sizeof(float)), *b = calloc(cfg.vocab, sizeof(float));
	double *bd = calloc(cfg.vocab, sizeof(double));
	CHECK_RC(llm_fwd_prefill(fg, tok, 0, 33, NULL, NULL, a), 0);
	CHECK_RC(llm_fwd_prefill(fm, tok, 0, 33, NULL, NULL, b), 0);
	for (uint32_t i = 0; i < cfg.vocab; i++)
		bd[i] = b[i];
	CHECK(rel_diff(a, bd, cfg.vocab) <= 1e-5);
	free(a), free(b), free(bd);
	llm_fwd_destroy(fg);
	llm_fwd_destroy(fm);
	llm_model_free(&mha);
}

/* Description: bf16 and fp16 rounding is to nearest, ties to even, with the IEEE edge cases:
 * fp16 overflow to infinity from 65520, subnormals, NaN kept; widening is exact. */
static void test_kv_dtype_rounding(void)
{
	CHECK(llm_f32_to_bf16(1.0f) == 0x3f80);
	CHECK(llm_f32_to_bf16(llm_bits_f32(0x3f808000)) == 0x3f80); /* tie -> even */
	CHECK(llm_f32_to_bf16(llm_bits_f32(0x3f818000)) == 0x3f82); /* tie -> even (up) */
	CHECK(llm_f32_to_bf16(llm_bits_f32(0x3f808001)) == 0x3f81);
	CHECK(llm_f32_to_bf16(NAN) != 0x7f80 && (llm_f32_to_bf16(NAN) & 0x7f80) == 0x7f80);
	CHECK(llm_bf16_to_f32(0xc040) == -3.0f);
	CHECK(llm_f32_to_f16(1.0f) == 0x3c00);
	CHECK(llm_f32_to_f16(-2.0f) == 0xc000);
	CHECK(llm_f32_to_f16(65504.0f) == 0x7bff);
	CHECK(llm_f32_to_f16(65519.0f) == 0x7bff);
	CHECK(llm_f32_to_f16(65520.0f) == 0x7c00);
	CHECK(llm_f32_to_f16(0x1p-24f) == 0x0001);
	CHECK(llm_f32_to_f16(0x1p-25f) == 0x0000);	    /* tie -> even (zero) */
	CHECK(llm_f32_to_f16(0x1.8p-24f) == 0x0002);	    /* tie -> even (two) */
	CHECK(llm_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);   /* tie -> even */
	CHECK(llm_f32_to_f16(1.0f + 0x1.8p-10f) == 0x3c02); /* tie -> even (up) */
	CHECK((llm_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (llm_f32_to_f16(NAN) & 0x3ff));
	for (uint32_t h = 0; h < 0x7c00; h++) /* every finite half round-trips */
		CHECK(llm_f32_to_f16(llm_f16_to_f32((uint16_t)h)) == h);
	CHECK(llm_f16_to_f32(0x0001) == 0x1p-24f);
}

/* Description: bad engine options and out-of-range input are refused, not run. */
static void test_bad_input_is_refused(void)
{
	struct llm_fwd_opts o = {.kv_dtype = KVG_DTYPE_FP8, .block_tokens = 16, .max_ctx = 64};
	struct llm_fwd *f = NULL;
	char err[256] = "";
	CHECK_RC(llm_fwd_create(&model, &o, &f, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "dtype"));
	f = engine(KVG_DTYPE_BF16, 16, 32);
	CHECK(f);
	uint32_t tok[40] = {0};
	CHECK_RC(llm_fwd_prefill(f, tok, 0, 33, NULL, NULL, NULL), -EINVAL);
	tok[3] = cfg.vocab;
	CHECK_RC(llm_fwd_prefill(f, tok, 0, 8, NULL, NULL, NULL), -EINVAL);
	llm_fwd_destroy(f);
}

int main(void)
{
	char err[256];
	if (llm_config_by_name("tiny", &cfg) ||
	    llm_model_init_seed(&model, &cfg, 42, err, sizeof(err))) {
		fprintf(stderr, "model: %s\n", err);
		return 1;
	}
	RUN(test_kv_dtype_rounding);
	RUN(test_rope);
	RUN(test_forward_matches_reference_fp32);
	RUN(test_forward_matches_reference_half);
	RUN(test_resumed_prefill_is_bit_identical);
	RUN(test_prefix_is_read_layer_by_layer);
	RUN(test_decode_steps_match_prefill);
	RUN(test_gqa_mapping_and_page_shape);
	RUN(test_bad_input_is_refused);
	llm_model_free(&model);
	return t_failed ? 1 : 0;
}
