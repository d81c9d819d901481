/* Helpers shared by kvgrid-llama's commands (cmd.h). */
#include "cmd.h"

#include <ggml-backend.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cmd_threads;

double cmd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void quiet_log(enum ggml_log_level level, const char *text, void *arg)
{
	if (level == GGML_LOG_LEVEL_ERROR)
		fputs(text, stderr);
}

void cmd_backends_init(void)
{
	static int done;
	if (done++)
		return;
	if (!getenv("KVGRID_LLAMA_LOG"))
		llama_log_set(quiet_log, NULL);
	const char *env = getenv("KVGRID_LLAMA_BINS");
	char exe[PATH_MAX], dir[PATH_MAX + 32];
	if (env) {
		snprintf(dir, sizeof dir, "%s", env);
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		exe[n > 0 ? n : 0] = 0;
		snprintf(dir, sizeof dir, "%s/llama.cpp/bins", dirname(exe));
	}
	ggml_backend_load_all_from_path(dir);
	llama_backend_init();
}

int cmd_llama_renew(struct cmd_llama *l)
{
	if (l->ctx)
		llama_free(l->ctx);
	l->ctx = llama_init_from_model(l->model, l->cp);
	if (!l->ctx)
		fprintf(stderr, "kvgrid-llama: cannot create a llama.cpp context\n");
	return l->ctx ? 0 : -1;
}

int cmd_llama_open(struct cmd_llama *l, const char *model, uint32_t n_ctx, int flash,
		   uint32_t batch)
{
	memset(l, 0, sizeof(*l));
	cmd_backends_init();
	struct llama_model_params mp = llama_model_default_params();
	l->model = llama_model_load_from_file(model, mp);
	if (!l->model) {
		fprintf(stderr, "kvgrid-llama: cannot load model %s\n", model);
		return -1;
	}
	l->n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(l->model));
	l->cp = llama_context_default_params();
	l->cp.n_ctx = n_ctx;
	l->cp.n_batch = l->cp.n_ubatch = batch;
	l->cp.n_seq_max = 1;
	l->cp.flash_attn_type =
	    flash ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
	int threads = cmd_threads ? cmd_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	l->cp.n_threads = l->cp.n_threads_batch = threads;
	return cmd_llama_renew(l);
}

void cmd_llama_close(struct cmd_llama *l)
{
	if (l->ctx)
		llama_free(l->ctx);
	if (l->model)
		llama_model_free(l->model);
	memset(l, 0, sizeof(*l));
}

int cmd_prefill(struct cmd_llama *l, const llama_token *t, size_t from, size_t n)
{
	size_t step = l->cp.n_batch;
	struct llama_batch b = llama_batch_init((int32_t)step, 0, 1);
	int rc = 0;
	for (size_t at = from; at < n && rc == 0; at += step) {
		size_t m = n - at < step ? n - at : step;
		b.n_tokens = (int32_t)m;
		for (size_t i = 0; i < m; i++) {
			b.token[i] = t[at + i];
			b.pos[i] = (llama_pos)(at + i);
			b.n_seq_id[i] = 1;
			b.seq_id[i][0] = 0;
			b.logits[i] = at + i == n - 1;
		}
		if (llama_decode(l->ctx, b)) {
			fprintf(stderr, "kvgrid-llama: llama_decode failed\n");
			rc = -1;
		}
	}
	llama_batch_free(b);
	return rc;
}

const float *cmd_logits(struct cmd_llama *l)
{
	return llama_get_logits_ith(l->ctx, -1);
}

void cmd_tokens(uint64_t seed, llama_token *out, size_t n, int n_vocab)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		out[i] =
		    (llama_token)(1 + (x * 0x2545f4914f6cdd1dull >> 33) % (uint64_t)(n_vocab - 1));
	}
}

int cmd_grid_config(struct kvg_config *cfg, const char *tier, const char *dir, const char *server)
{
	char err[256];
	kvg_config_init(cfg);
	if (!strcmp(tier, "dram"))
		return 0;
	if (!strcmp(tier, "nvme")) {
		if (!dir) {
			fprintf(stderr, "kvgrid-llama: --tier nvme needs --dir DIR\n");
			return -1;
		}
		/* a small DRAM tier: what is restored comes from NVMe */
		if (kvg_config_set(cfg, "dir", dir, err, sizeof err) ||
		    kvg_config_set(cfg, "dram_bytes", "0", err, sizeof err)) {
			fprintf(stderr, "kvgrid-llama: %s\n", err);
			return -1;
		}
		return 0;
	}
	if (!strcmp(tier, "server")) {
		if (!server || kvg_config_set(cfg, "servers", server, err, sizeof err)) {
			fprintf(stderr, "kvgrid-llama: --tier server needs --server HOST:PORT\n");
			return -1;
		}
		return 0;
	}
	fprintf(stderr, "kvgrid-llama: unknown tier '%s' (dram, nvme or server)\n", tier);
	return -1;
}
