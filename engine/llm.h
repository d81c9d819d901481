/*
 * llm.h - the subcommands of build/kvgrid-llm and the helpers they share.  Each lives in
 * engine/cmd_NAME.c as `int llm_cmd_NAME(int argc, char **argv)` (argv[0] is the
 * subcommand) and returns the exit status: 0 success, 1 a failed run or check, 2 bad usage.
 * Errors are one line on stderr, "kvgrid-llm NAME: reason".
 */
#ifndef LLM_H
#define LLM_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

int llm_cmd_run(int argc, char **argv);
int llm_cmd_bench(int argc, char **argv);
int llm_cmd_demo(int argc, char **argv);

/* Monotonic clock in milliseconds. */
double llm_now_ms(void);

/* Prints "kvgrid-llm CMD: msg" on stderr and returns rc. */
int llm_fail(int rc, const char *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * The model of --config NAME|FILE and --weights FILE.safetensors|seed:N: a built-in name
 * first, else a config file; weights from a seed (default 1) unless a safetensors file is
 * given.  0, or -errno with the reason in err.
 */
int llm_load_model(struct llm_model *m, const char *config, const char *weights, char *err,
		   size_t err_len);

/* "bf16", "fp16", "fp32" -> enum kvg_dtype; -1 if unknown. */
int llm_parse_dtype(const char *s);

/* Pseudo-random token ids in [0, vocab) from (seed, stream): a reproducible prompt. */
void llm_random_tokens(uint32_t *out, size_t n, uint32_t vocab, uint64_t seed, uint64_t stream);

/*
 * A fresh directory: mkdtemp of BASE/kvgrid-llm-XXXXXX, BASE = base or /var/tmp (a real
 * disk: /tmp may be tmpfs, where O_DIRECT fails).  0 or -errno.
 */
int llm_tmpdir(const char *base, char *out, size_t len);

/* Removes a directory tree made by llm_tmpdir(). */
void llm_rmtree(const char *path);

/*
 * After llm_catch_signals(), the first SIGINT, SIGTERM, SIGHUP or SIGPIPE sets llm_interrupted (and
 * puts the default action back, so a second one ends the process): long runs check it between
 * requests and leave through their clean-up, removing their grid directory.
 */
extern volatile int llm_interrupted;
void llm_catch_signals(void);

/* Median of n values (sorts them in place). */
double llm_median(double *v, size_t n);

#endif
