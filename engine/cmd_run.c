/*
 * cmd_run.c - `kvgrid-llm run`: prefill a reproducible prompt and decode greedily, without a
 * grid.  The quickest check that a config and its weights run, and what prefill costs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "kvgrid.h"
#include "llm.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvgrid-llm run [--config NAME|FILE] [--weights FILE|seed:N] [--tokens N]\n"
		"                      [--gen K] [--kv-dtype bf16|fp16|fp32] [--block-tokens B]\n"
		"                      [--threads T] [--prompt-seed S]\n"
		"Prefills N pseudo-random tokens (default 1024) and decodes K more (default 8).\n");
}

int llm_cmd_run(int argc, char **argv)
{
	const char *config = "demo", *weights = NULL;
	unsigned long tokens = 1024, gen = 8, bt = 256, threads = 2, pseed = 7;
	int dtype = KVG_DTYPE_BF16;
	static const struct option opts[] = {{"config", 1, 0, 'c'},   {"weights", 1, 0, 'w'},
					     {"tokens", 1, 0, 'n'},   {"gen", 1, 0, 'g'},
					     {"kv-dtype", 1, 0, 'd'}, {"block-tokens", 1, 0, 'b'},
					     {"threads", 1, 0, 't'},  {"prompt-seed", 1, 0, 's'},
					     {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			config = optarg;
			break;
		case 'w':
			weights = optarg;
			break;
		case 'n':
			tokens = strtoul(optarg, NULL, 10);
			break;
		case 'g':
			gen = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			bt = strtoul(optarg, NULL, 10);
			break;
		case 't':
			threads = strtoul(optarg, NULL, 10);
			break;
		case 's':
			pseed = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			if ((dtype = llm_parse_dtype(optarg)) < 0)
				return llm_fail(2, "run", "unknown --kv-dtype '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !tokens || !bt || tokens + gen > (1u << 22))
		return llm_fail(2, "run", "bad arguments (see --help)");
	char err[512];
	struct llm_model m;
	double t0 = llm_now_ms();
	int rc = llm_load_model(&m, config, weights, err, sizeof(err));
	if (rc)
		return llm_fail(1, "run", "%s", err);
	struct llm_fwd_opts fo = {.kv_dtype = (uint32_t)dtype,
				  .block_tokens = (uint32_t)bt,
				  .max_ctx = (uint32_t)(tokens + gen),
				  .threads = (uint32_t)threads};
	struct llm_fwd *f;
	uint32_t *seq = calloc(tokens + gen, sizeof(*seq));
	float *logits = calloc(m.cfg.vocab, sizeof(*logits));
	if (!seq || !logits || (rc = llm_fwd_create(&m, &fo, &f, err, sizeof(err)))) {
		free(seq), free(logits), llm_model_free(&m);
		return llm_fail(1, "run", "%s", seq && logits ? err : "out of memory");
	}
	double t1 = llm_now_ms();
	llm_random_tokens(seq, tokens, m.cfg.vocab, pseed, 0);
	rc = llm_fwd_prefill(f, seq, 0, tokens, NULL, NULL, logits);
	double t2 = llm_now_ms();
	size_t n = tokens;
	for (unsigned long i = 0; !rc && i < gen; i++, n++) {
		seq[n] = llm_argmax(logits, m.cfg.vocab);
		if (i + 1 < gen)
			rc = llm_fwd_prefill(f, &seq[n], n, 1, NULL, NULL, logits);
	}
	double t3 = llm_now_ms();
	if (!rc) {
		double fl = llm_config_prefill_flops(&m.cfg, 0, tokens);
		printf("model %s (%s): set-up %.0f ms\n", m.cfg.name, m.model_id, t1 - t0);
		printf("prefill %lu tokens: %.1f ms, %.0f tokens/s, %.1f GFLOP/s\n", tokens,
		       t2 - t1, tokens / ((t2 - t1) / 1e3), fl / ((t2 - t1) / 1e3) / 1e9);
		printf("decode %lu tokens: %.1f ms/token:", gen,
		       gen > 1 ? (t3 - t2) / (gen - 1) : 0.0);
		for (size_t i = tokens; i < n; i++)
			printf(" %u", seq[i]);
		printf("\n");
	}
	llm_fwd_destroy(f);
	free(seq), free(logits), llm_model_free(&m);
	return rc ? llm_fail(1, "run", "prefill failed: %s", kvg_strerror(rc)) : 0;
}
