/*
 * kvgrid-llama mkmodel: a Llama-architecture GGUF with random weights from a seed, written
 * with the GGUF writer of libggml-base (gguf_init_empty, gguf_set_val_*, gguf_add_tensor,
 * gguf_write_to_file).  tokenizer.ggml.model is "none": token ids are fed directly.  The
 * weights are uniform in +-1/sqrt(fan-in), so activations stay in range through the layers.
 */
#include "cmd.h"

#include <getopt.h>
#include <gguf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shape {
	const char *name;
	uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
};

/* small: the tests' model (a few MB, milliseconds a token); large: 8K tokens of prefill
 * take seconds on two cores. */
static const struct shape shapes[] = {
    {"small", 128, 2, 4, 2, 256, 512, 8192},
    {"large", 512, 8, 8, 4, 1536, 4096, 32768},
};

static uint64_t rng;

static float urand(float a)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	uint64_t x = rng * 0x2545f4914f6cdd1dull;
	return a * (2.0f * (float)(x >> 40) / (float)(1ull << 24) - 1.0f);
}

/* A weight of ne0 x ne1 (ne0 = fan-in), F16, or a norm of ne0 ones (F32, ne1 = 0). */
static struct ggml_tensor *weight(struct ggml_context *g, const char *name, int64_t ne0,
				  int64_t ne1)
{
	struct ggml_tensor *t;
	if (ne1 == 0) {
		t = ggml_new_tensor_1d(g, GGML_TYPE_F32, ne0);
		for (int64_t i = 0; i < ne0; i++)
			((float *)t->data)[i] = 1.0f;
	} else {
		t = ggml_new_tensor_2d(g, GGML_TYPE_F16, ne0, ne1);
		float a = 1.0f / sqrtf((float)ne0), *row = malloc(ne0 * sizeof(float));
		for (int64_t r = 0; r < ne1; r++) {
			for (int64_t i = 0; i < ne0; i++)
				row[i] = urand(a);
			ggml_fp32_to_fp16_row(row, (ggml_fp16_t *)t->data + r * ne0, ne0);
		}
		free(row);
	}
	ggml_set_name(t, name);
	return t;
}

static void set_meta(struct gguf_context *gg, const struct shape *s, uint64_t seed)
{
	char name[64];
	snprintf(name, sizeof name, "kvgrid-test-%s-seed%llu", s->name, (unsigned long long)seed);
	gguf_set_val_str(gg, "general.architecture", "llama");
	gguf_set_val_str(gg, "general.name", name);
	gguf_set_val_u32(gg, "llama.context_length", s->n_ctx);
	gguf_set_val_u32(gg, "llama.embedding_length", s->n_embd);
	gguf_set_val_u32(gg, "llama.block_count", s->n_layer);
	gguf_set_val_u32(gg, "llama.feed_forward_length", s->n_ff);
	gguf_set_val_u32(gg, "llama.attention.head_count", s->n_head);
	gguf_set_val_u32(gg, "llama.attention.head_count_kv", s->n_head_kv);
	gguf_set_val_f32(gg, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gguf_set_val_u32(gg, "llama.rope.dimension_count", s->n_embd / s->n_head);
	gguf_set_val_f32(gg, "llama.rope.freq_base", 10000.0f);
	gguf_set_val_u32(gg, "llama.vocab_size", s->n_vocab);
	gguf_set_val_str(gg, "tokenizer.ggml.model", "none");
}

static void add_tensors(struct gguf_context *gg, struct ggml_context *g, const struct shape *s)
{
	int64_t e = s->n_embd, kv = (int64_t)s->n_embd / s->n_head * s->n_head_kv;
	char n[64];
	gguf_add_tensor(gg, weight(g, "token_embd.weight", e, s->n_vocab));
	gguf_add_tensor(gg, weight(g, "output_norm.weight", e, 0));
	gguf_add_tensor(gg, weight(g, "output.weight", e, s->n_vocab));
	for (uint32_t l = 0; l < s->n_layer; l++) {
#define W(suffix, a, b)                                                                            \
	do {                                                                                       \
		snprintf(n, sizeof n, "blk.%u." suffix, l);                                        \
		gguf_add_tensor(gg, weight(g, n, a, b));                                           \
	} while (0)
		W("attn_norm.weight", e, 0);
		W("attn_q.weight", e, e);
		W("attn_k.weight", e, kv);
		W("attn_v.weight", e, kv);
		W("attn_output.weight", e, e);
		W("ffn_norm.weight", e, 0);
		W("ffn_gate.weight", e, s->n_ff);
		W("ffn_up.weight", e, s->n_ff);
		W("ffn_down.weight", s->n_ff, e);
#undef W
	}
}

static size_t model_bytes(const struct shape *s)
{
	size_t e = s->n_embd, kv = e / s->n_head * s->n_head_kv;
	size_t per_layer = 2 * e * e + 2 * e * kv + 3 * e * s->n_ff;
	return 2 * (2 * e * s->n_vocab + s->n_layer * per_layer) + 4 * e * (2 * s->n_layer + 1) +
	       (size_t)(4 + 9 * s->n_layer) * 1024 + (1u << 20);
}

static int usage(void)
{
	fprintf(stderr, "usage: kvgrid-llama mkmodel --out FILE [--size small|large] [--seed N]\n");
	return 2;
}

int cmd_mkmodel(int argc, char **argv)
{
	static const struct option opts[] = {{"out", 1, 0, 'o'},
					     {"size", 1, 0, 's'},
					     {"seed", 1, 0, 'e'},
					     {"help", 0, 0, 'h'},
					     {0, 0, 0, 0}};
	const char *out = NULL, *size = "small";
	uint64_t seed = 1;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'o')
			out = optarg;
		else if (c == 's')
			size = optarg;
		else if (c == 'e')
			seed = strtoull(optarg, NULL, 10);
		else
			return usage();
	}
	const struct shape *s = NULL;
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		if (!strcmp(shapes[i].name, size))
			s = &shapes[i];
	if (!out || optind != argc)
		return usage();
	if (!s) {
		fprintf(stderr, "kvgrid-llama: unknown size '%s' (small or large)\n", size);
		return 2;
	}
	rng = seed * 0x9e3779b97f4a7c15ull + 0x1234567;
	struct ggml_init_params ip = {.mem_size = model_bytes(s), .mem_buffer = NULL};
	struct ggml_context *g = ggml_init(ip);
	struct gguf_context *gg = gguf_init_empty();
	set_meta(gg, s, seed);
	add_tensors(gg, g, s);
	int ok = gguf_write_to_file(gg, out, false);
	gguf_free(gg);
	ggml_free(g);
	if (!ok) {
		fprintf(stderr, "kvgrid-llama: cannot write %s\n", out);
		return 1;
	}
	printf("%s: llama, %s, seed %llu, %u layers, %u kv heads of %u, vocab %u\n", out, s->name,
	       (unsigned long long)seed, s->n_layer, s->n_head_kv, s->n_embd / s->n_head,
	       s->n_vocab);
	return 0;
}
