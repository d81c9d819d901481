/*
 * test_engine_safetensors.c - Llama weights from safetensors files the test writes itself,
 * good and bad, and model configs from files.  A good file gives back the exact weights (and
 * so the exact logits); a bad one gives a clear error naming the file and the tensor.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../engine/forward.h"
#include "../engine/kvdtype.h"
#include "../engine/model.h"
#include "../engine/safetensors.h"
#include "t.h"

static char dir[4096];
static struct llm_config cfg;
static struct llm_model model;

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

/* Writes model's tensors in dtype, leaving out the one called skip (may be NULL). */
static int write_model(const char *path, const struct llm_model *m, const char *dtype,
		       const char *skip)
{
	size_t n = llm_st_model_tensors(m, dtype, NULL, 0);
	struct llm_st_tensor *t = calloc(n, sizeof(*t));
	llm_st_model_tensors(m, dtype, t, n);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!skip || strcmp(t[i].name, skip))
			t[k++] = t[i];
	char err[256];
	int rc = llm_st_write(path, t, k, err, sizeof(err));
	free(t);
	return rc;
}

static void logits_of(const struct llm_model *m, float *out)
{
	struct llm_fwd_opts o = {.kv_dtype = KVG_DTYPE_BF16, .block_tokens = 16, .max_ctx = 32};
	struct llm_fwd *f = NULL;
	char err[256];
	uint32_t tok[20];
	for (int i = 0; i < 20; i++)
		tok[i] = (uint32_t)(i * 37 + 5) % m->cfg.vocab;
	if (llm_fwd_create(m, &o, &f, err, sizeof(err)) ||
	    llm_fwd_prefill(f, tok, 0, 20, NULL, NULL, out))
		memset(out, 0xff, m->cfg.vocab * sizeof(float));
	llm_fwd_destroy(f);
}

/* Description: an F32 file written from a model loads back bit-identical, tensor by tensor
 * and so in its logits; its model_id names the file. */
static void test_f32_round_trip(void)
{
	char p[4200], err[512];
	path_of(p, sizeof(p), "good.safetensors");
	CHECK_RC(write_model(p, &model, "F32", NULL), 0);
	struct llm_model back;
	CHECK_RC(llm_st_load_model(&back, &cfg, p, err, sizeof(err)), 0);
	CHECK(back.mem_bytes == model.mem_bytes);
	CHECK(memcmp(back.mem, model.mem, model.mem_bytes) == 0);
	CHECK(strstr(back.model_id, "good.safetensors"));
	float *a = calloc(cfg.vocab, 4), *b = calloc(cfg.vocab, 4);
	logits_of(&model, a);
	logits_of(&back, b);
	CHECK(memcmp(a, b, cfg.vocab * 4) == 0);
	free(a), free(b);
	llm_model_free(&back);
}

/* Description: BF16 and F16 tensors are widened exactly: the loaded weights equal the
 * originals rounded to that dtype. */
static void test_half_tensors_widen_exactly(void)
{
	const char *dts[] = {"BF16", "F16"};
	for (int d = 0; d < 2; d++) {
		char p[4200], err[512];
		path_of(p, sizeof(p), "half.safetensors");
		CHECK_RC(write_model(p, &model, dts[d], NULL), 0);
		struct llm_model back;
		CHECK_RC(llm_st_load_model(&back, &cfg, p, err, sizeof(err)), 0);
		size_t n = model.mem_bytes / 4;
		for (size_t i = 0; i < n; i += 7) {
			float o = model.mem[i];
			float want = d ? llm_f16_to_f32(llm_f32_to_f16(o))
				       : llm_bf16_to_f32(llm_f32_to_bf16(o));
			CHECK(back.mem[i] == want);
		}
		llm_model_free(&back);
	}
}

/* Description: a file without one of the tensors is refused with -ENOENT naming it. */
static void test_missing_tensor(void)
{
	char p[4200], err[512] = "";
	const char *gone = "model.layers.1.mlp.up_proj.weight";
	path_of(p, sizeof(p), "missing.safetensors");
	CHECK_RC(write_model(p, &model, "F32", gone), 0);
	struct llm_model back;
	CHECK_RC(llm_st_load_model(&back, &cfg, p, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "missing tensor") && strstr(err, gone) && strstr(err, p));
	CHECK(back.mem == NULL);
}

/* Description: a tensor of the wrong shape (a checkpoint of another config) is refused with
 * -EINVAL, saying which tensor, its shape and the expected one. */
static void test_wrong_shape(void)
{
	struct llm_config other = cfg;
	other.ffn = cfg.ffn * 2;
	struct llm_model om;
	char p[4200], err[512] = "";
	CHECK_RC(llm_model_init_seed(&om, &other, 3, err, sizeof(err)), 0);
	path_of(p, sizeof(p), "shape.safetensors");
	CHECK_RC(write_model(p, &om, "F32", NULL), 0);
	llm_model_free(&om);
	struct llm_model back;
	CHECK_RC(llm_st_load_model(&back, &cfg, p, err, sizeof(err)), -EINVAL);
	char want[128];
	snprintf(want, sizeof(want), "has shape [%u, %u], expected [%u, %u]", other.ffn, cfg.hidden,
		 cfg.ffn, cfg.hidden);
	CHECK(strstr(err, "model.layers.0.mlp.gate_proj.weight") && strstr(err, want));
}

/* Description: a truncated file is reported as truncated (-EBADMSG) wherever it was cut:
 * inside the length, inside the header, or inside the data. */
static void test_truncated_files(void)
{
	char p[4200], err[512];
	path_of(p, sizeof(p), "cut.safetensors");
	CHECK_RC(write_model(p, &model, "F32", NULL), 0);
	struct stat sb;
	CHECK(stat(p, &sb) == 0);
	off_t cuts[] = {sb.st_size - 1, sb.st_size / 2, 40, 5}; /* shrinking: truncate() extends */
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		CHECK(truncate(p, cuts[i]) == 0);
		struct llm_model back;
		err[0] = 0;
		CHECK_RC(llm_st_load_model(&back, &cfg, p, err, sizeof(err)), -EBADMSG);
		if (!strstr(err, "truncated"))
			fprintf(stderr, "cut %lld: %s\n", (long long)cuts[i], err);
		CHECK(strstr(err, "truncated"));
	}
}

/* Description: a header that is not the safetensors JSON, or whose offsets disagree with a
 * tensor's dtype and shape, is refused with -EBADMSG; an unreadable path with -ENOENT. */
static void test_malformed_headers(void)
{
	const char *bad[] = {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]",
			     "[1,2,3]",
			     "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
			     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}"};
	char p[4200], err[512];
	path_of(p, sizeof(p), "bad.safetensors");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *f = fopen(p, "wb");
		CHECK(f);
		uint64_t len = strlen(bad[i]);
		uint8_t lenb[8];
		for (int b = 0; b < 8; b++)
			lenb[b] = (uint8_t)(len >> (8 * b));
		fwrite(lenb, 1, 8, f);
		fwrite(bad[i], 1, len, f);
		fwrite("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 1, 16, f);
		fclose(f);
		struct llm_st_file st;
		err[0] = 0;
		CHECK_RC(llm_st_open(p, &st, err, sizeof(err)), -EBADMSG);
		CHECK(strstr(err, p));
	}
	path_of(p, sizeof(p), "no-such-file.safetensors");
	struct llm_st_file st;
	CHECK_RC(llm_st_open(p, &st, err, sizeof(err)), -ENOENT);
}

/* Description: with tied embeddings no lm_head.weight is needed and the output projection is
 * the embedding matrix. */
static void test_tied_embeddings(void)
{
	struct llm_config tc = cfg;
	tc.tie_embeddings = 1;
	struct llm_model tm, back;
	char p[4200], err[512];
	CHECK_RC(llm_model_init_seed(&tm, &tc, 5, err, sizeof(err)), 0);
	CHECK(tm.lm_head == tm.embed);
	path_of(p, sizeof(p), "tied.safetensors");
	CHECK_RC(write_model(p, &tm, "F32", NULL), 0);
	CHECK_RC(llm_st_load_model(&back, &tc, p, err, sizeof(err)), 0);
	CHECK(back.lm_head == back.embed);
	CHECK(memcmp(back.mem, tm.mem, tm.mem_bytes) == 0);
	llm_model_free(&back);
	llm_model_free(&tm);
}

/* Description: a config file sets any field, can start from a built-in ("base = demo"), and
 * a bad line is reported with its file and line number. */
static void test_config_files(void)
{
	char p[4200], err[512] = "";
	path_of(p, sizeof(p), "m.conf");
	FILE *f = fopen(p, "w");
	CHECK(f);
	fprintf(f, "# a demo with fewer layers\nbase = demo\nname = demo-2l\nlayers = 2\n"
		   "rope_theta = 10000   # classic\n");
	fclose(f);
	struct llm_config c;
	CHECK_RC(llm_config_load(p, &c, err, sizeof(err)), 0);
	CHECK(c.layers == 2 && c.hidden == 512 && c.kv_heads == 4 && c.rope_theta == 10000.0f);
	CHECK(!strcmp(c.name, "demo-2l"));
	f = fopen(p, "w");
	fprintf(f, "base = tiny\nheads = 3\n");
	fclose(f);
	CHECK_RC(llm_config_load(p, &c, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "multiple of kv_heads"));
	f = fopen(p, "w");
	fprintf(f, "base = tiny\n\nlayrs = 3\n");
	fclose(f);
	CHECK_RC(llm_config_load(p, &c, err, sizeof(err)), -EINVAL);
	char want[4300];
	snprintf(want, sizeof(want), "%s:3: layrs: unknown key", p);
	CHECK(strstr(err, want));
	CHECK_RC(llm_config_by_name("no-such-model", &c), -ENOENT);
	CHECK_RC(llm_config_by_name("llama-3.1-8b", &c), 0);
	CHECK(c.layers == 32 && c.kv_heads == 8 && c.head_dim == 128 && c.hidden == 4096);
}

int main(void)
{
	char err[256];
	t_tmpdir(dir, sizeof(dir), "engine-st");
	if (llm_config_by_name("tiny", &cfg) ||
	    llm_model_init_seed(&model, &cfg, 42, err, sizeof(err)))
		return 1;
	RUN(test_f32_round_trip);
	RUN(test_half_tensors_widen_exactly);
	RUN(test_missing_tensor);
	RUN(test_wrong_shape);
	RUN(test_truncated_files);
	RUN(test_malformed_headers);
	RUN(test_tied_embeddings);
	RUN(test_config_files);
	llm_model_free(&model);
	t_rmdir(dir);
	return t_failed ? 1 : 0;
}
