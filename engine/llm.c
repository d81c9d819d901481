/*
 * llm.c - helpers shared by kvgrid-llm's subcommands: clock, errors, model selection,
 * reproducible prompts.
 */
#include "llm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvgrid.h"
#include "path.h"
#include "safetensors.h"

double llm_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int llm_fail(int rc, const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "kvgrid-llm %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return rc;
}

int llm_load_model(struct llm_model *m, const char *config, const char *weights, char *err,
		   size_t err_len)
{
	struct llm_config cfg;
	int rc = llm_config_by_name(config, &cfg);
	if (rc == -ENOENT) {
		if (!strchr(config, '/') && !strchr(config, '.')) {
			snprintf(err, err_len,
				 "unknown config '%s' (built-in: tiny, small, demo, "
				 "tinyllama-1.1b, llama-3.2-1b, llama-3.1-8b; or a file)",
				 config);
			return -ENOENT;
		}
		rc = llm_config_load(config, &cfg, err, err_len);
	}
	if (rc)
		return rc;
	if (weights && strncmp(weights, "seed:", 5))
		return llm_st_load_model(m, &cfg, weights, err, err_len);
	uint64_t seed = 1;
	if (weights) {
		char *end;
		seed = strtoull(weights + 5, &end, 10);
		if (end == weights + 5 || *end) {
			snprintf(err, err_len, "bad --weights '%s' (FILE or seed:N)", weights);
			return -EINVAL;
		}
	}
	return llm_model_init_seed(m, &cfg, seed, err, err_len);
}

int llm_parse_dtype(const char *s)
{
	if (!strcmp(s, "bf16"))
		return KVG_DTYPE_BF16;
	if (!strcmp(s, "fp16"))
		return KVG_DTYPE_FP16;
	if (!strcmp(s, "fp32"))
		return KVG_DTYPE_FP32;
	return -1;
}

void llm_random_tokens(uint32_t *out, size_t n, uint32_t vocab, uint64_t seed, uint64_t stream)
{
	uint64_t x = (seed * 0x9e3779b97f4a7c15ull ^ (stream + 1) * 0xd1342543de82ef95ull) | 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x >> 12, x ^= x << 25, x ^= x >> 27; /* xorshift64* */
		out[i] = (uint32_t)(((x * 0x2545f4914f6cdd1dull) >> 32) % vocab);
	}
}

int llm_tmpdir(const char *base, char *out, size_t len)
{
	if (!base)
		base = "/var/tmp";
	int rc = mkdir_parents(base);
	if (rc)
		return rc;
	if ((size_t)snprintf(out, len, "%s/kvgrid-llm-XXXXXX", base) >= len)
		return -ENAMETOOLONG;
	return mkdtemp(out) ? 0 : -errno;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

void llm_rmtree(const char *path)
{
	if (path && *path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double llm_median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

volatile int llm_interrupted;

static void on_signal(int sig)
{
	llm_interrupted = 1;
	signal(sig, SIG_DFL);
}

void llm_catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL); /* `| head` must not leave a grid directory behind */
}
