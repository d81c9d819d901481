/*
 * forward.c - the Llama forward pass in fp32 over a paged KV cache.
 *
 * Per layer and per chunk of at most one page of tokens (x is the residual stream):
 *
 *     h = RMSNorm(x) * attn_norm;  [q k v] = h Wqkv^T;  q, k = RoPE(q, k)
 *     K/V -> rounded into the page (the cache dtype) and widened back for attention
 *     x += Attention(q, K[0..end], V[0..end]) Wo^T      (causal; GQA: q head h reads KV head
 *                                                        h / (heads / kv_heads))
 *     h = RMSNorm(x) * ffn_norm;   x += (SiLU(h Wg^T) * (h Wu^T)) Wd^T
 *
 * then RMSNorm and the output projection for the last token only (a prefill needs no other
 * logits).  Matrix products are OpenBLAS sgemm; every thread is the engine's own: OpenBLAS
 * runs single-threaded (set once at engine creation) and a product is split by output
 * columns across the engine's pool, one sgemm call per worker.  (OpenBLAS's own threads
 * busy-wait with sched_yield between calls, which on two cores steals the CPU from the
 * attention workers; measured as a quarter of all samples before this change.)  The split
 * depends only on the shapes, so results are reproducible.  Attention runs one KV head per
 * work item (its query heads as one matrix, so GQA shares each K/V tile), over key tiles of
 * ATTN_TILE positions with an online softmax, as FlashAttention does: the score matrix of a
 * tile stays in cache instead of an N x N matrix in memory.
 * Tile boundaries are absolute positions, so a chunk's arithmetic does not depend on how the
 * positions before it got into the cache.
 *
 * The rotary embedding pairs dimension i with i + head_dim/2 ("rotate half"), the layout of
 * Hugging Face Llama checkpoints; no rope scaling (Llama 3.1's long-context rescaling is not
 * modelled: this engine's job is the KV path, not matching a checkpoint's long-context
 * quality).
 */
#include "forward.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "kvdtype.h"
#include "pool.h"

#define ATTN_TILE 256 /* key positions per attention tile */

struct llm_fwd {
	const struct llm_model *m;
	struct llm_config c;
	uint32_t dtype, bt, max_ctx, max_pages;
	size_t esize, page_bytes;
	uint32_t dq, dkv, dqkv, group;
	uint8_t *pages; /* max_pages * page_bytes */
	size_t pages_bytes;
	float *act; /* one mapping for every float buffer below */
	size_t act_bytes;
	float *x;	 /* [max_ctx][hidden]: residual of the positions being prefilled */
	float *h;	 /* [bt][hidden] */
	float *qkv;	 /* [bt][dq + 2*dkv] */
	float *qh;	 /* [heads][bt][head_dim]: queries, head-major for attention */
	float *oh;	 /* [heads][bt][head_dim]: attention output, head-major */
	float *att;	 /* [bt][dq] */
	float *gu;	 /* [bt][2*ffn] */
	float *kf, *vf;	 /* [max_ctx][dkv]: K and V widened from the cache, this layer */
	float *rope_cos; /* [max_ctx][head_dim/2] */
	float *rope_sin;
	float *hl;	/* [hidden]: last token after the final norm */
	float *scratch; /* per worker: scores [group*bt][ATTN_TILE], max and sum [group*bt] */
	size_t scratch_floats;
	struct llm_pool *pool;
};

/* ---- small vector helpers ------------------------------------------------------------- */

/* 16-byte vectors: the baseline x86-64 ABI passes them in registers without -mavx */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
#define VL 4 /* lanes */

/*
 * exp(x) for x in about [-87, 88]: x = n*ln2 + r with |r| <= ln2/2, e^r by its Taylor series
 * to r^6 (relative error < 2e-7), 2^n built in the exponent bits.  Used for the softmax and
 * SiLU, where libm's expf would cost more than the attention products at long contexts.
 * The scalar and the vector forms do the same operations in the same order.
 */
static inline float exp_s(float x)
{
	x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
	float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
	float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
	float p =
	    1.0f + r * (1.0f + r * (0.5f + r * (0.166666667f +
						r * (0.0416666667f +
						     r * (0.00833333333f + r * 0.00138888889f)))));
	return p * llm_bits_f32((uint32_t)((int32_t)n + 127) << 23);
}

static inline v4f v4_splat(float v)
{
	return (v4f){v, v, v, v};
}

static inline v4f v4_select(v4i mask, v4f a, v4f b)
{
	return (v4f)((mask & (v4i)a) | (~mask & (v4i)b));
}

static inline v4f exp_v4(v4f x)
{
	x = v4_select(x < v4_splat(-87.0f), v4_splat(-87.0f), x);
	x = v4_select(x > v4_splat(88.0f), v4_splat(88.0f), x);
	v4f n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
	v4f r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
	v4f p =
	    1.0f + r * (1.0f + r * (0.5f + r * (0.166666667f +
						r * (0.0416666667f +
						     r * (0.00833333333f + r * 0.00138888889f)))));
	v4i e = (__builtin_convertvector(n, v4i) + 127) << 23;
	return p * (v4f)e;
}

static inline v4f v4_load(const float *p)
{
	v4f v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void v4_store(float *p, v4f v)
{
	memcpy(p, &v, sizeof(v));
}

/* s[j] = exp(s[j] - mx) for j < n; returns the sum. */
static float exp_row(float *s, uint32_t n, float mx)
{
	v4f acc = v4_splat(0.0f), vm = v4_splat(mx);
	uint32_t j = 0;
	for (; j + VL <= n; j += VL) {
		v4f e = exp_v4(v4_load(s + j) - vm);
		v4_store(s + j, e);
		acc += e;
	}
	float sum = 0.0f;
	for (; j < n; j++) {
		s[j] = exp_s(s[j] - mx);
		sum += s[j];
	}
	for (int k = 0; k < VL; k++)
		sum += acc[k];
	return sum;
}

static float max_row(const float *s, uint32_t n)
{
	float mx = s[0];
	for (uint32_t j = 1; j < n; j++)
		mx = s[j] > mx ? s[j] : mx;
	return mx;
}

/* ---- the layer's pieces ----------------------------------------------------------------- */

static void rmsnorm(float *out, const float *x, uint32_t rows, uint32_t d, const float *w,
		    float eps)
{
	for (uint32_t i = 0; i < rows; i++) {
		const float *xi = x + (size_t)i * d;
		float *oi = out + (size_t)i * d;
		float ss = 0.0f;
		for (uint32_t j = 0; j < d; j++)
			ss += xi[j] * xi[j];
		float inv = 1.0f / sqrtf(ss / (float)d + eps);
		for (uint32_t j = 0; j < d; j++)
			oi[j] = xi[j] * inv * w[j];
	}
}

static void rope_heads(const struct llm_fwd *f, float *vec, uint32_t n_heads, size_t pos)
{
	uint32_t hd = f->c.head_dim, half = hd / 2;
	const float *cs = f->rope_cos + pos * half, *sn = f->rope_sin + pos * half;
	for (uint32_t h = 0; h < n_heads; h++) {
		float *v = vec + (size_t)h * hd;
		for (uint32_t j = 0; j < half; j++) {
			float a = v[j], b = v[j + half];
			v[j] = a * cs[j] - b * sn[j];
			v[j + half] = b * cs[j] + a * sn[j];
		}
	}
}

void llm_fwd_rope(const struct llm_fwd *f, float *vec, uint32_t n_heads, size_t pos)
{
	rope_heads(f, vec, n_heads, pos);
}

/* Rotates q (heads) and k (kv heads, adjacent to q in a row) of rows at positions pos0.. */
static void rope(struct llm_fwd *f, float *qkv, uint32_t rows, size_t pos0)
{
	for (uint32_t i = 0; i < rows; i++)
		rope_heads(f, qkv + (size_t)i * f->dqkv, f->c.heads + f->c.kv_heads, pos0 + i);
}

static uint8_t *kv_addr(struct llm_fwd *f, uint32_t layer, int is_v, size_t pos)
{
	uint8_t *page = f->pages + (pos / f->bt) * f->page_bytes;
	size_t row = ((size_t)(2 * layer + is_v) * f->bt + pos % f->bt);
	return page + row * f->dkv * f->esize;
}

/* Rounds the chunk's K and V into the pages and widens them back for attention. */
static void kv_write(struct llm_fwd *f, uint32_t layer, size_t c0, uint32_t nc)
{
	for (uint32_t i = 0; i < nc; i++) {
		const float *row = f->qkv + (size_t)i * f->dqkv;
		for (int is_v = 0; is_v < 2; is_v++) {
			uint8_t *dst = kv_addr(f, layer, is_v, c0 + i);
			float *wide = (is_v ? f->vf : f->kf) + (c0 + i) * f->dkv;
			llm_kv_encode(f->dtype, dst, row + f->dq + (size_t)is_v * f->dkv, f->dkv);
			llm_kv_decode(f->dtype, wide, dst, f->dkv);
		}
	}
}

struct widen_job {
	struct llm_fwd *f;
	uint32_t layer;
	size_t end;
};

static void widen_page(void *arg, uint32_t page, uint32_t worker)
{
	struct widen_job *j = arg;
	struct llm_fwd *f = j->f;
	size_t p0 = (size_t)page * f->bt, cnt = j->end - p0 < f->bt ? j->end - p0 : f->bt;
	llm_kv_decode(f->dtype, f->kf + p0 * f->dkv, kv_addr(f, j->layer, 0, p0), cnt * f->dkv);
	llm_kv_decode(f->dtype, f->vf + p0 * f->dkv, kv_addr(f, j->layer, 1, p0), cnt * f->dkv);
}

/* Widens positions [0, end) of a layer from the pages, a page per work item. */
static void kv_widen_prefix(struct llm_fwd *f, uint32_t layer, size_t end)
{
	struct widen_job j = {f, layer, end};
	if (end)
		llm_pool_run(f->pool, (uint32_t)((end + f->bt - 1) / f->bt), widen_page, &j);
}

struct attn_job {
	struct llm_fwd *f;
	size_t c0, c1; /* the chunk's positions */
	uint32_t nc;
};

/* Causal attention of KV head g's query heads over keys [0, c1), tile by tile. */
static void attn_head(void *arg, uint32_t g, uint32_t worker)
{
	struct attn_job *j = arg;
	struct llm_fwd *f = j->f;
	uint32_t hd = f->c.head_dim, nc = j->nc, rows = f->group * nc;
	const float *q = f->qh + (size_t)g * rows * hd;
	float *o = f->oh + (size_t)g * rows * hd;
	float *s = f->scratch + worker * f->scratch_floats;
	float *mx = s + (size_t)f->group * f->bt * ATTN_TILE, *sum = mx + (size_t)f->group * f->bt;
	float scale = 1.0f / sqrtf((float)hd);

	for (uint32_t r = 0; r < rows; r++) {
		mx[r] = -INFINITY;
		sum[r] = 0.0f;
	}
	memset(o, 0, (size_t)rows * hd * sizeof(float));
	for (size_t t0 = 0; t0 < j->c1; t0 += ATTN_TILE) {
		uint32_t tn = (uint32_t)(j->c1 - t0 < ATTN_TILE ? j->c1 - t0 : ATTN_TILE);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)tn, (int)hd,
			    scale, q, (int)hd, f->kf + t0 * f->dkv + (size_t)g * hd, (int)f->dkv,
			    0.0f, s, ATTN_TILE);
		for (uint32_t r = 0; r < rows; r++) {
			float *sr = s + (size_t)r * ATTN_TILE;
			long see =
			    (long)(j->c0 + r % nc) + 1 - (long)t0; /* keys this row may see */
			uint32_t cnt = see <= 0 ? 0 : (see > (long)tn ? tn : (uint32_t)see);
			if (cnt) {
				float m_new = max_row(sr, cnt);
				m_new = m_new > mx[r] ? m_new : mx[r];
				float alpha = mx[r] == -INFINITY ? 0.0f : exp_s(mx[r] - m_new);
				float add = exp_row(sr, cnt, m_new);
				sum[r] = sum[r] * alpha + add;
				mx[r] = m_new;
				if (alpha != 1.0f)
					for (uint32_t k = 0; k < hd; k++)
						o[(size_t)r * hd + k] *= alpha;
			}
			memset(sr + cnt, 0, (tn - cnt) * sizeof(float));
		}
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)hd, (int)tn,
			    1.0f, s, ATTN_TILE, f->vf + t0 * f->dkv + (size_t)g * hd, (int)f->dkv,
			    1.0f, o, (int)hd);
	}
	for (uint32_t r = 0; r < rows; r++) {
		float inv = 1.0f / sum[r];
		for (uint32_t k = 0; k < hd; k++)
			o[(size_t)r * hd + k] *= inv;
	}
}

/* q of the chunk -> qh (head-major), attention on the pool, oh -> att (token-major). */
static void attention(struct llm_fwd *f, size_t c0, uint32_t nc)
{
	uint32_t hd = f->c.head_dim;
	for (uint32_t h = 0; h < f->c.heads; h++)
		for (uint32_t i = 0; i < nc; i++)
			memcpy(f->qh + ((size_t)h * nc + i) * hd,
			       f->qkv + (size_t)i * f->dqkv + h * hd, hd * sizeof(float));
	struct attn_job job = {.f = f, .c0 = c0, .c1 = c0 + nc, .nc = nc};
	llm_pool_run(f->pool, f->c.kv_heads, attn_head, &job);
	for (uint32_t h = 0; h < f->c.heads; h++)
		for (uint32_t i = 0; i < nc; i++)
			memcpy(f->att + (size_t)i * f->dq + h * hd,
			       f->oh + ((size_t)h * nc + i) * hd, hd * sizeof(float));
}

static void swiglu(float *gu, uint32_t rows, uint32_t ffn)
{
	for (uint32_t i = 0; i < rows; i++) {
		float *g = gu + (size_t)i * 2 * ffn, *u = g + ffn;
		uint32_t k = 0;
		for (; k + VL <= ffn; k += VL) {
			v4f x = v4_load(g + k);
			v4_store(g + k, x / (1.0f + exp_v4(-x)) * v4_load(u + k));
		}
		for (; k < ffn; k++)
			g[k] = g[k] / (1.0f + exp_s(-g[k])) * u[k];
	}
}

struct gemm_job {
	int m, n, k, lda, ldw, ldc, part;
	const float *a, *w;
	float *c;
	float beta;
};

static void gemm_part(void *arg, uint32_t item, uint32_t worker)
{
	struct gemm_job *j = arg;
	int n0 = (int)item * j->part, n1 = n0 + j->part < j->n ? n0 + j->part : j->n;
	if (n1 > n0)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->m, n1 - n0, j->k, 1.0f,
			    j->a, j->lda, j->w + (size_t)n0 * j->ldw, j->ldw, j->beta, j->c + n0,
			    j->ldc);
}

/* C[m][n] = A[m][k] W[n][k]^T + beta C, split by columns of C across the pool. */
static void gemm_nt(struct llm_fwd *f, int m, int n, int k, const float *a, int lda, const float *w,
		    int ldw, float beta, float *c, int ldc)
{
	uint32_t parts = llm_pool_threads(f->pool);
	struct gemm_job j = {m, n, k, lda, ldw, ldc, n, a, w, c, beta};
	/* below these sizes one call beats a hand-off; decode (m = 1) splits to read weights on
	 * both cores */
	if (parts > 1 && ((double)m * n * k >= 4e6 || (double)n * k >= 1e6)) {
		j.part = ((n + (int)parts - 1) / (int)parts + 15) & ~15;
		llm_pool_run(f->pool, parts, gemm_part, &j);
	} else {
		gemm_part(&j, 0, 0);
	}
}

/* One layer over one chunk [c0, c0+nc) whose residual rows are xr. */
static int layer_chunk(struct llm_fwd *f, uint32_t l, size_t c0, uint32_t nc, float *xr,
		       size_t start, int *prefix_ready, llm_layer_wait_fn wait, void *arg)
{
	const struct llm_layer_weights *w = &f->m->layer[l];
	uint32_t d = f->c.hidden, ffn = f->c.ffn;
	rmsnorm(f->h, xr, nc, d, w->attn_norm, f->c.norm_eps);
	gemm_nt(f, (int)nc, (int)f->dqkv, (int)d, f->h, (int)d, w->wqkv, (int)d, 0.0f, f->qkv,
		(int)f->dqkv);
	rope(f, f->qkv, nc, c0);
	kv_write(f, l, c0, nc);
	if (!*prefix_ready) {
		int rc = wait && start ? wait(arg, l) : 0;
		if (rc)
			return rc;
		kv_widen_prefix(f, l, start);
		*prefix_ready = 1;
	}
	attention(f, c0, nc);
	gemm_nt(f, (int)nc, (int)d, (int)f->dq, f->att, (int)f->dq, w->wo, (int)f->dq, 1.0f, xr,
		(int)d);
	rmsnorm(f->h, xr, nc, d, w->ffn_norm, f->c.norm_eps);
	gemm_nt(f, (int)nc, (int)(2 * ffn), (int)d, f->h, (int)d, w->wgu, (int)d, 0.0f, f->gu,
		(int)(2 * ffn));
	swiglu(f->gu, nc, ffn);
	gemm_nt(f, (int)nc, (int)d, (int)ffn, f->gu, (int)(2 * ffn), w->wdown, (int)ffn, 1.0f, xr,
		(int)d);
	return 0;
}

int llm_fwd_prefill(struct llm_fwd *f, const uint32_t *tokens, size_t start, size_t n,
		    llm_layer_wait_fn wait, void *arg, float *logits)
{
	uint32_t d = f->c.hidden;
	if (!n || start + n > f->max_ctx)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (tokens[i] >= f->c.vocab)
			return -EINVAL;
		memcpy(f->x + i * d, f->m->embed + (size_t)tokens[i] * d, d * sizeof(float));
	}
	size_t end = start + n;
	for (uint32_t l = 0; l < f->c.layers; l++) {
		int prefix_ready = 0;
		for (size_t c0 = start, c1; c0 < end; c0 = c1) {
			c1 = (c0 / f->bt + 1) * f->bt;
			c1 = c1 < end ? c1 : end;
			int rc = layer_chunk(f, l, c0, (uint32_t)(c1 - c0), f->x + (c0 - start) * d,
					     start, &prefix_ready, wait, arg);
			if (rc)
				return rc;
		}
	}
	if (logits) {
		rmsnorm(f->hl, f->x + (n - 1) * d, 1, d, f->m->norm, f->c.norm_eps);
		cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)f->c.vocab, (int)d, 1.0f,
			    f->m->lm_head, (int)d, f->hl, 1, 0.0f, logits, 1);
	}
	return 0;
}

/* ---- set-up ----------------------------------------------------------------------------- */

static void rope_tables(struct llm_fwd *f)
{
	uint32_t half = f->c.head_dim / 2;
	for (uint32_t j = 0; j < half; j++) {
		double inv_freq = pow((double)f->c.rope_theta, -2.0 * j / f->c.head_dim);
		for (size_t p = 0; p < f->max_ctx; p++) {
			double a = (double)p * inv_freq;
			f->rope_cos[p * half + j] = (float)cos(a);
			f->rope_sin[p * half + j] = (float)sin(a);
		}
	}
}

static int check_opts(const struct llm_model *m, const struct llm_fwd_opts *o, char *err,
		      size_t err_len)
{
	const char *why = NULL;
	if (!llm_kv_esize(o->kv_dtype))
		why = "kv dtype must be bf16, fp16 or fp32";
	else if (o->block_tokens < 1 || o->block_tokens > 4096)
		why = "block_tokens must be 1..4096";
	else if (!o->max_ctx || o->max_ctx > (1u << 22))
		why = "max_ctx must be 1..4M tokens";
	else if (!m->mem)
		why = "model has no weights";
	if (why && err)
		snprintf(err, err_len, "%s", why);
	return why ? -EINVAL : 0;
}

int llm_fwd_create(const struct llm_model *m, const struct llm_fwd_opts *o, struct llm_fwd **out,
		   char *err, size_t err_len)
{
	int rc = check_opts(m, o, err, err_len);
	if (rc)
		return rc;
	struct llm_fwd *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->m = m;
	f->c = m->cfg;
	f->dtype = o->kv_dtype;
	f->esize = llm_kv_esize(o->kv_dtype);
	f->bt = o->block_tokens;
	f->max_pages = (o->max_ctx + f->bt - 1) / f->bt;
	f->max_ctx = f->max_pages * f->bt;
	f->dq = llm_config_dq(&f->c);
	f->dkv = llm_config_dkv(&f->c);
	f->dqkv = f->dq + 2 * f->dkv;
	f->group = f->c.heads / f->c.kv_heads;
	f->page_bytes = (size_t)f->c.layers * 2 * f->bt * f->dkv * f->esize;
	uint32_t threads = o->threads ? o->threads : 2;

	size_t d = f->c.hidden, bt = f->bt, ctx = f->max_ctx, hd = f->c.head_dim;
	f->scratch_floats = (size_t)f->group * bt * (ATTN_TILE + 2);
	f->scratch_floats = (f->scratch_floats + 15) & ~(size_t)15; /* 64-byte apart */
	size_t sizes[] = {ctx * d,
			  bt * d,
			  bt * f->dqkv,
			  f->c.heads * bt * hd,
			  f->c.heads * bt * hd,
			  bt * f->dq,
			  bt * 2 * (size_t)f->c.ffn,
			  ctx * f->dkv,
			  ctx * f->dkv,
			  ctx * hd / 2,
			  ctx * hd / 2,
			  d,
			  threads * f->scratch_floats};
	float **ptrs[] = {&f->x,  &f->h,  &f->qkv,	&f->qh,	      &f->oh, &f->att,	  &f->gu,
			  &f->kf, &f->vf, &f->rope_cos, &f->rope_sin, &f->hl, &f->scratch};
	size_t total = 0;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		total += (sizes[i] + 15) & ~(size_t)15;
	f->act_bytes = total * sizeof(float);
	f->pages_bytes = f->max_pages * f->page_bytes;
	f->act = llm_big_alloc(f->act_bytes);
	f->pages = llm_big_alloc(f->pages_bytes);
	rc = f->act && f->pages ? llm_pool_create(threads, &f->pool) : -ENOMEM;
	if (rc) {
		if (err)
			snprintf(err, err_len, "cannot allocate the engine's %zu MiB",
				 (f->act_bytes + f->pages_bytes) >> 20);
		llm_fwd_destroy(f);
		return rc;
	}
	float *p = f->act;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		*ptrs[i] = p;
		p += (sizes[i] + 15) & ~(size_t)15;
	}
	rope_tables(f);
	openblas_set_num_threads(1); /* the pool's workers are the only compute threads */
	*out = f;
	return 0;
}

void llm_fwd_destroy(struct llm_fwd *f)
{
	if (!f)
		return;
	llm_pool_destroy(f->pool);
	llm_big_free(f->act, f->act_bytes);
	llm_big_free(f->pages, f->pages_bytes);
	free(f);
}

uint8_t *llm_fwd_page(struct llm_fwd *f, size_t i)
{
	return i < f->max_pages ? f->pages + i * f->page_bytes : NULL;
}

size_t llm_fwd_page_bytes(const struct llm_fwd *f)
{
	return f->page_bytes;
}

uint32_t llm_fwd_block_tokens(const struct llm_fwd *f)
{
	return f->bt;
}

uint32_t llm_fwd_max_ctx(const struct llm_fwd *f)
{
	return f->max_ctx;
}

uint32_t llm_fwd_kv_dtype(const struct llm_fwd *f)
{
	return f->dtype;
}

const struct llm_model *llm_fwd_model(const struct llm_fwd *f)
{
	return f->m;
}

void llm_fwd_scramble(struct llm_fwd *f, uint8_t byte)
{
	memset(f->pages, byte, f->pages_bytes);
}

uint32_t llm_argmax(const float *logits, size_t n)
{
	size_t best = 0;
	for (size_t i = 1; i < n; i++)
		if (logits[i] > logits[best])
			best = i;
	return (uint32_t)best;
}
