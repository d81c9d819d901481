/*
 * model.c - model configs (built-in and from files) and weights from a seed.
 *
 * The built-in table holds small shapes for tests ("tiny", "small"), the demo's shape
 * ("demo": GQA with 4 KV heads of 64, 8 layers, 8 KiB of bf16 KV per token; small enough
 * that a 16K-token prefill takes seconds on two cores, not hours) and the shapes of real
 * Llama models, which run too (slowly) with seeded weights or their own safetensors.
 * Seeded weights use splitmix64, a counter-based generator, so a tensor's values depend
 * only on (seed, tensor, index): the same bits on every machine and compiler.
 */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "conf.h"
#include "err.h"
#include "kvgrid.h"

static const struct llm_config builtin[] = {
    /* name        layers hidden heads kv hd  ffn   vocab  theta    eps   tie */
    {"tiny", 2, 64, 4, 2, 16, 160, 512, 10000.0f, 1e-5f, 0},
    {"small", 4, 256, 8, 4, 32, 704, 4096, 10000.0f, 1e-5f, 0},
    {"demo", 8, 512, 8, 4, 64, 1536, 32000, 500000.0f, 1e-5f, 0},
    {"tinyllama-1.1b", 22, 2048, 32, 4, 64, 5632, 32000, 10000.0f, 1e-5f, 0},
    {"llama-3.2-1b", 16, 2048, 32, 8, 64, 8192, 128256, 500000.0f, 1e-5f, 1},
    {"llama-3.1-8b", 32, 4096, 32, 8, 128, 14336, 128256, 500000.0f, 1e-5f, 0},
};
#define BUILTIN_COUNT (sizeof(builtin) / sizeof(builtin[0]))

const char *const llm_config_names[] = {"tiny",		"small",	"demo", "tinyllama-1.1b",
					"llama-3.2-1b", "llama-3.1-8b", NULL};

int llm_config_by_name(const char *name, struct llm_config *cfg)
{
	for (size_t i = 0; i < BUILTIN_COUNT; i++)
		if (!strcmp(builtin[i].name, name)) {
			*cfg = builtin[i];
			return 0;
		}
	return -ENOENT;
}

int llm_config_check(const struct llm_config *c, char *err, size_t err_len)
{
	const char *why = NULL;
	if (!c->layers || c->layers > 1024)
		why = "layers must be 1..1024";
	else if (!c->hidden || c->hidden > 65536)
		why = "hidden must be 1..65536";
	else if (!c->heads || !c->kv_heads || c->heads % c->kv_heads)
		why = "heads must be a non-zero multiple of kv_heads";
	else if (!c->head_dim || c->head_dim % 2 || c->head_dim > 1024)
		why = "head_dim must be even, 2..1024";
	else if (!c->ffn || c->ffn > 262144)
		why = "ffn must be 1..262144";
	else if (c->vocab < 2 || c->vocab > (1u << 24))
		why = "vocab must be 2..16M";
	else if (!(c->rope_theta > 1.0f))
		why = "rope_theta must be > 1";
	else if (!(c->norm_eps > 0.0f) || c->norm_eps > 1.0f)
		why = "norm_eps must be in (0, 1]";
	return why ? err_set(err, err_len, -EINVAL, "%s", why) : 0;
}

static int set_u32(uint32_t *dst, const char *v)
{
	char *end;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (end == v || *end || errno || x > 0xffffffffUL || *v == '-')
		return -1;
	*dst = (uint32_t)x;
	return 0;
}

static int set_float(float *dst, const char *v)
{
	char *end;
	errno = 0;
	float x = strtof(v, &end);
	if (end == v || *end || errno)
		return -1;
	*dst = x;
	return 0;
}

/* Applies one "key = value"; returns a reason or NULL. */
static const char *config_set(struct llm_config *c, const char *k, const char *v)
{
	static const struct {
		const char *key;
		size_t off;
	} u32s[] = {
	    {"layers", offsetof(struct llm_config, layers)},
	    {"hidden", offsetof(struct llm_config, hidden)},
	    {"heads", offsetof(struct llm_config, heads)},
	    {"kv_heads", offsetof(struct llm_config, kv_heads)},
	    {"head_dim", offsetof(struct llm_config, head_dim)},
	    {"ffn", offsetof(struct llm_config, ffn)},
	    {"vocab", offsetof(struct llm_config, vocab)},
	};
	for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++)
		if (!strcmp(k, u32s[i].key))
			return set_u32((uint32_t *)((char *)c + u32s[i].off), v) ? "not a number"
										 : NULL;
	if (!strcmp(k, "rope_theta"))
		return set_float(&c->rope_theta, v) ? "not a number" : NULL;
	if (!strcmp(k, "norm_eps"))
		return set_float(&c->norm_eps, v) ? "not a number" : NULL;
	if (!strcmp(k, "tie_embeddings")) {
		if (strcmp(v, "0") && strcmp(v, "1"))
			return "must be 0 or 1";
		c->tie_embeddings = v[0] == '1';
		return NULL;
	}
	if (!strcmp(k, "name")) {
		if (strlen(v) >= sizeof(c->name))
			return "name too long";
		snprintf(c->name, sizeof(c->name), "%s", v);
		return NULL;
	}
	if (!strcmp(k, "base")) {
		char keep[LLM_NAME_MAX];
		memcpy(keep, c->name, sizeof(keep));
		if (llm_config_by_name(v, c))
			return "unknown base config";
		if (keep[0])
			memcpy(c->name, keep, sizeof(keep));
		return NULL;
	}
	return "unknown key";
}

static int model_conf_set(void *ctx, const char *name, const char *value, char *why, size_t why_len)
{
	const char *bad = config_set(ctx, name, value);
	return bad ? err_set(why, why_len, -EINVAL, "%s: %s", name, bad) : 0;
}

int llm_config_load(const char *path, struct llm_config *cfg, char *err, size_t err_len)
{
	struct llm_config c = {.rope_theta = 10000.0f, .norm_eps = 1e-5f};
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	snprintf(c.name, sizeof(c.name), "%.*s", (int)sizeof(c.name) - 1, base);
	int rc = conf_load(path, model_conf_set, &c, err, err_len);
	if (rc)
		return rc == KVG_ECONFIG ? -EINVAL : rc; /* this module's errors are -errno */
	char why[200];
	if ((rc = llm_config_check(&c, why, sizeof(why))))
		return err_set(err, err_len, rc, "%s: %s", path, why);
	*cfg = c;
	return 0;
}

uint64_t llm_config_layer_params(const struct llm_config *c)
{
	uint64_t d = c->hidden, dq = llm_config_dq(c), dkv = llm_config_dkv(c);
	return d * (dq + 2 * dkv) + dq * d + 3 * d * (uint64_t)c->ffn + 2 * d;
}

double llm_config_prefill_flops(const struct llm_config *c, uint64_t start, uint64_t n)
{
	double linear = 2.0 * (double)n * (double)llm_config_layer_params(c);
	/* position p attends to p+1 keys: QK^T and PV are 2*d_q FLOPs per key each */
	double keys = (double)n * (double)start + (double)n * (double)(n + 1) / 2.0;
	double attn = 4.0 * llm_config_dq(c) * keys;
	return c->layers * (linear + attn) + 2.0 * c->hidden * (double)c->vocab;
}

int llm_model_alloc(struct llm_model *m, const struct llm_config *cfg, char *err, size_t err_len)
{
	memset(m, 0, sizeof(*m));
	int rc = llm_config_check(cfg, err, err_len);
	if (rc)
		return rc;
	m->cfg = *cfg;
	uint64_t d = cfg->hidden, dq = llm_config_dq(cfg), dkv = llm_config_dkv(cfg);
	uint64_t per_layer = 2 * d + (dq + 2 * dkv) * d + d * dq + 2 * cfg->ffn * d + d * cfg->ffn;
	uint64_t table = (uint64_t)cfg->vocab * d;
	uint64_t floats = table * (cfg->tie_embeddings ? 1 : 2) + d + per_layer * cfg->layers;
	m->layer = calloc(cfg->layers, sizeof(*m->layer));
	m->mem_bytes = floats * sizeof(float);
	m->mem = m->layer ? llm_big_alloc(m->mem_bytes) : NULL;
	if (!m->mem) {
		if (err)
			snprintf(err, err_len, "cannot allocate %llu MiB of weights",
				 (unsigned long long)(m->mem_bytes >> 20));
		llm_model_free(m);
		return -ENOMEM;
	}
	float *p = m->mem;
	m->embed = p, p += table;
	m->lm_head = cfg->tie_embeddings ? m->embed : p;
	if (!cfg->tie_embeddings)
		p += table;
	m->norm = p, p += d;
	for (uint32_t l = 0; l < cfg->layers; l++) {
		struct llm_layer_weights *w = &m->layer[l];
		w->attn_norm = p, p += d;
		w->wqkv = p, p += (dq + 2 * dkv) * d;
		w->wo = p, p += d * dq;
		w->ffn_norm = p, p += d;
		w->wgu = p, p += 2 * cfg->ffn * d;
		w->wdown = p, p += d * cfg->ffn;
	}
	return 0;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* n values uniform in [-a, a], from the stream (seed, tensor). */
static void fill_uniform(float *dst, uint64_t n, float a, uint64_t seed, uint64_t tensor)
{
	uint64_t base = splitmix64(seed ^ (tensor * 0xd1342543de82ef95ull));
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = splitmix64(base + i);
		float u = (float)(r >> 40) * 0x1p-24f; /* [0, 1) */
		dst[i] = (2.0f * u - 1.0f) * a;
	}
}

static void fill_const(float *dst, uint64_t n, float v)
{
	for (uint64_t i = 0; i < n; i++)
		dst[i] = v;
}

int llm_model_init_seed(struct llm_model *m, const struct llm_config *cfg, uint64_t seed, char *err,
			size_t err_len)
{
	int rc = llm_model_alloc(m, cfg, err, err_len);
	if (rc)
		return rc;
	uint64_t d = cfg->hidden, dq = llm_config_dq(cfg), dkv = llm_config_dkv(cfg);
	/* uniform(-a, a) has variance a^2/3: a = sqrt(3/fan_in) keeps unit-scale activations */
	float a_d = sqrtf(3.0f / (float)d), a_q = sqrtf(3.0f / (float)dq);
	float a_f = sqrtf(3.0f / (float)cfg->ffn);
	fill_uniform(m->embed, (uint64_t)cfg->vocab * d, 1.0f, seed, 1);
	if (!cfg->tie_embeddings)
		fill_uniform(m->lm_head, (uint64_t)cfg->vocab * d, a_d, seed, 2);
	fill_const(m->norm, d, 1.0f);
	for (uint32_t l = 0; l < cfg->layers; l++) {
		struct llm_layer_weights *w = &m->layer[l];
		uint64_t t = 16 + 8 * (uint64_t)l;
		fill_const(w->attn_norm, d, 1.0f);
		fill_const(w->ffn_norm, d, 1.0f);
		fill_uniform(w->wqkv, (dq + 2 * dkv) * d, a_d, seed, t + 0);
		fill_uniform(w->wo, d * dq, a_q, seed, t + 1);
		fill_uniform(w->wgu, 2 * cfg->ffn * d, a_d, seed, t + 2);
		fill_uniform(w->wdown, d * cfg->ffn, a_f, seed, t + 3);
	}
	snprintf(m->model_id, sizeof(m->model_id), "kvgrid-llm/%s/seed-%llu", cfg->name,
		 (unsigned long long)seed);
	return 0;
}

void llm_model_free(struct llm_model *m)
{
	llm_big_free(m->mem, m->mem_bytes);
	free(m->layer);
	memset(m, 0, sizeof(*m));
}
