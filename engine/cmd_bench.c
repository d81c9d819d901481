/*
 * cmd_bench.c - `kvgrid-llm bench`: time to first token with a full recompute and with the
 * prefix reloaded from a grid tier, measured in the same run on the same prompt.
 *
 * The run, in order: the BLAS's own sgemm rate (the ceiling for an honest recompute); a
 * warm-up; the recompute of all N tokens (its logits are the reference); a store of every
 * block but the one holding the last token into a fresh grid (DRAM only, or NVMe only with
 * no DRAM tier so every hit is a disk read); the read bandwidth of those very blocks through
 * the library, without compute; then R requests through the connector (lookup, layer-wise
 * load, suffix prefill) with the pages scrambled before each, and the suffix's prefill alone
 * with the prefix resident.  The reload path is compared with its model:
 *
 *     predicted = KV bytes / read bandwidth + suffix prefill
 *
 * (no overlap assumed; layer-wise loading can beat it).  The grid's directory is a fresh
 * mkdtemp under /var/tmp (or --dir) and is removed at the end.
 */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "forward.h"
#include "gridlink.h"
#include "kvgrid.h"
#include "llm.h"

#define REPS_MAX 16

struct bench_args {
	const char *config, *weights, *tier, *dir, *server;
	unsigned long context, bt, threads, reps;
	int dtype, json;
};

struct bench_out {
	double sgemm_gflops, sgemm_engine_gflops, sgemm_core_gflops;
	double recompute_ms, recompute_cpu_ms, grid_cpu_ms, grid_ms, grid_min_ms, suffix_ms,
	    read_gbps, write_gbps;
	double lookup_ms, layer_wait_ms, max_diff, flops;
	size_t cached, suffix;
	uint64_t kv_bytes;
	uint32_t tok_recompute, tok_grid, from[KVG_TIER_COUNT];
	int identical;
	char backend[16];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvgrid-llm bench [--config NAME|FILE] --context N [--tier dram|nvme|both] "
		"[--json]\n"
		"                        [--weights FILE|seed:N] [--kv-dtype bf16|fp16|fp32]\n"
		"                        [--block-tokens B] [--threads T] [--reps R] [--dir DIR]\n"
		"                        [--server HOST:PORT]\n"
		"TTFT of an N-token prompt recomputed, and with all but its last block reloaded\n"
		"from the tier (default nvme; both: one recompute, then DRAM and NVMe, one result\n"
		"each).  The NVMe grid lives in a fresh directory under DIR (default /var/tmp),\n"
		"removed at the end.  --server: the grid is a kvgridd (libkvgrid's client, native\n"
		"protocol; the tier reported is the server's).  Config default: demo.\n");
}

/* GFLOP/s of C[m][n] = A[m][k] B[n][k]^T on the BLAS's own threads, best of ~0.3 s. */
static double sgemm_rate(int m, int n, int k, int threads)
{
	openblas_set_num_threads(threads); /* the engine runs it single-threaded on its pool */
	float *a = calloc((size_t)m * k, 4), *b = calloc((size_t)n * k, 4),
	      *c = calloc((size_t)m * n, 4);
	double best = 0;
	if (a && b && c) {
		for (size_t i = 0; i < (size_t)m * k; i++)
			a[i] = (float)(i % 13) * 0.01f;
		for (size_t i = 0; i < (size_t)n * k; i++)
			b[i] = (float)(i % 7) * 0.01f;
		double end = llm_now_ms() + 300;
		while (llm_now_ms() < end) {
			double t0 = llm_now_ms();
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b,
				    k, 0.0f, c, n);
			double gf = 2.0 * m * n * k / ((llm_now_ms() - t0) / 1e3) / 1e9;
			best = gf > best ? gf : best;
		}
	}
	free(a), free(b), free(c);
	openblas_set_num_threads(1);
	return best;
}

/*
 * GFLOP per CPU-second of one core running single-threaded sgemm at 1024^3: the per-core
 * ceiling, in the unit that other processes' load cannot inflate.
 */
static double sgemm_core_rate(void)
{
	int n = 1024;
	float *a = calloc((size_t)n * n, 4), *b = calloc((size_t)n * n, 4),
	      *c = calloc((size_t)n * n, 4);
	double best = 0;
	if (a && b && c) {
		openblas_set_num_threads(1);
		double end = llm_now_ms() + 300;
		while (llm_now_ms() < end) {
			struct timespec t0, t1;
			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b,
				    n, 0.0f, c, n);
			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
			double s =
			    (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
			best = fmax(best, 2.0 * n * n * n / s / 1e9);
		}
	}
	free(a), free(b), free(c);
	return best;
}

/* CPU time of the whole process (every thread), in ms. */
static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int open_grid(const struct bench_args *a, struct llm_fwd *f, const char *dir, kvg_grid **g,
		     char *err, size_t err_len)
{
	struct kvg_config c;
	kvg_config_init(&c);
	llm_link_grid_config(f, &c);
	uint64_t bytes = (uint64_t)(a->context / a->bt + 2) * llm_fwd_page_bytes(f);
	if (a->server) {
		snprintf(c.servers, sizeof(c.servers), "%s", a->server);
		c.timeout_ms = 30000;
	} else if (!strcmp(a->tier, "dram")) {
		c.dram_bytes = bytes + (64u << 20);
	} else {
		c.dram_bytes = 0; /* every hit is a disk read */
		snprintf(c.dir, sizeof(c.dir), "%s", dir);
		c.nvme_bytes = 2 * bytes + (512u << 20);
	}
	return kvg_open(&c, g, err, err_len);
}

/* Stores blocks [0, nb) from the pages; returns GB/s or a negative error. */
static double store_prefix(kvg_grid *g, struct llm_fwd *f, const uint32_t *tok, size_t nb)
{
	kvg_key *keys = calloc(nb, sizeof(*keys));
	struct kvg_io *io = calloc(nb, sizeof(*io));
	double rate = -ENOMEM;
	if (keys && io) {
		kvg_block_keys(g, tok, nb * llm_fwd_block_tokens(f), NULL, keys, nb);
		for (size_t i = 0; i < nb; i++) {
			io[i].key = keys[i];
			io[i].buf = llm_fwd_page(f, i);
			io[i].len = llm_fwd_page_bytes(f);
			io[i].depth = (uint32_t)i;
		}
		double t0 = llm_now_ms();
		int rc = kvg_store_sync(g, io, nb, 0);
		double ms = llm_now_ms() - t0;
		rate = rc ? rc : (double)nb * llm_fwd_page_bytes(f) / (ms / 1e3) / 1e9;
	}
	free(keys), free(io);
	return rate;
}

/* Loads blocks [0, nb) into the pages, no compute, 3 times; median GB/s or an error. */
static double read_rate(kvg_grid *g, struct llm_fwd *f, const uint32_t *tok, size_t nb)
{
	kvg_key *keys = calloc(nb, sizeof(*keys));
	struct kvg_io *io = calloc(nb, sizeof(*io));
	double r[3], rate = -ENOMEM;
	if (keys && io) {
		kvg_block_keys(g, tok, nb * llm_fwd_block_tokens(f), NULL, keys, nb);
		int rc = 0;
		for (int k = 0; k < 3 && !rc; k++) {
			for (size_t i = 0; i < nb; i++) {
				memset(&io[i], 0, sizeof(io[i]));
				io[i].key = keys[i];
				io[i].buf = llm_fwd_page(f, i);
				io[i].len = llm_fwd_page_bytes(f);
				io[i].depth = (uint32_t)i;
			}
			double t0 = llm_now_ms();
			rc = kvg_load_sync(g, io, nb, KVG_LOAD_NOPROMOTE);
			r[k] =
			    (double)nb * llm_fwd_page_bytes(f) / ((llm_now_ms() - t0) / 1e3) / 1e9;
		}
		rate = rc ? rc : llm_median(r, 3);
	}
	free(keys), free(io);
	return rate;
}

/* The grid half of the run: store, read rate, R connector requests, suffix alone. */
static int bench_grid(const struct bench_args *a, struct llm_fwd *f, kvg_grid *g,
		      const uint32_t *tok, const float *ref, float *lg, struct bench_out *o,
		      char *err, size_t err_len)
{
	size_t n = a->context, bt = a->bt, nb = (n - 1) / bt, vocab = llm_fwd_model(f)->cfg.vocab;
	struct llm_link *lk;
	double t_grid[REPS_MAX], t_suffix[REPS_MAX], c_grid[REPS_MAX];
	o->write_gbps = store_prefix(g, f, tok, nb);
	o->read_gbps = read_rate(g, f, tok, nb);
	if (o->write_gbps < 0 || o->read_gbps < 0) {
		snprintf(err, err_len, "grid store/load failed: %s",
			 kvg_strerror((int)(o->write_gbps < 0 ? o->write_gbps : o->read_gbps)));
		return 1;
	}
	int rc = llm_link_create(g, f, &lk, err, err_len);
	if (rc)
		return 1;
	o->identical = 1;
	o->grid_min_ms = 1e30;
	for (unsigned long r = 0; r < a->reps && !rc; r++) {
		struct llm_link_stats st;
		if (llm_interrupted) {
			rc = -EINTR;
			break;
		}
		llm_link_flush(lk);
		llm_fwd_scramble(f, (uint8_t)(0x11 * (r + 1)));
		double c0 = cpu_ms();
		rc = llm_link_prefill(lk, tok, n, lg, &st);
		c_grid[r] = cpu_ms() - c0;
		if (rc)
			break;
		t_grid[r] = st.ttft_ms;
		o->grid_min_ms = fmin(o->grid_min_ms, st.ttft_ms);
		o->cached = st.cached_tokens;
		o->lookup_ms = st.lookup_ms;
		o->layer_wait_ms = st.layer_wait_ms;
		memcpy(o->from, st.blocks_from, sizeof(o->from));
		o->tok_grid = llm_argmax(lg, vocab);
		for (size_t i = 0; i < vocab; i++) {
			o->max_diff = fmax(o->max_diff, fabs((double)lg[i] - ref[i]));
			o->identical &= lg[i] == ref[i];
		}
		llm_link_flush(lk);
		double t0 = llm_now_ms(); /* the same suffix with the prefix already resident */
		rc = llm_fwd_prefill(f, tok + o->cached, o->cached, n - o->cached, NULL, NULL, lg);
		t_suffix[r] = llm_now_ms() - t0;
	}
	llm_link_destroy(lk);
	if (rc) {
		snprintf(err, err_len, "grid request failed: %s", kvg_strerror(rc));
		return 1;
	}
	o->grid_ms = llm_median(t_grid, a->reps);
	o->grid_cpu_ms = llm_median(c_grid, a->reps);
	o->suffix_ms = llm_median(t_suffix, a->reps);
	o->suffix = n - o->cached;
	o->kv_bytes = (uint64_t)(o->cached / bt) * llm_fwd_page_bytes(f);
	struct kvg_stats ks;
	kvg_stats_get(g, &ks);
	snprintf(o->backend, sizeof(o->backend), "%s",
		 ks.tier[strcmp(a->tier, "dram") ? KVG_TIER_NVME : KVG_TIER_DRAM].backend);
	return 0;
}

static void print_result(const struct bench_args *a, const struct llm_model *m,
			 const struct bench_out *o, size_t page_bytes)
{
	double pred = o->kv_bytes / (o->read_gbps * 1e9) * 1e3 + o->suffix_ms;
	double tps = a->context / (o->recompute_ms / 1e3),
	       gfs = o->flops / (o->recompute_ms / 1e3) / 1e9;
	const char *dt = a->dtype == KVG_DTYPE_BF16   ? "bf16"
			 : a->dtype == KVG_DTYPE_FP16 ? "fp16"
						      : "fp32";
	if (a->json) {
		printf(
		    "{\"config\":\"%s\",\"model_id\":\"%s\",\"context\":%lu,\"tier\":\"%s\","
		    "\"backend\":\"%s\",\"kv_dtype\":\"%s\",\"block_tokens\":%lu,\"layers\":%u,"
		    "\"kv_heads\":%u,\"head_dim\":%u,\"kv_bytes_per_token\":%zu,"
		    "\"cached_tokens\":%zu,\"suffix_tokens\":%zu,\"kv_bytes\":%llu,"
		    "\"ttft_recompute_ms\":%.3f,\"recompute_cpu_ms\":%.3f,\"ttft_grid_ms\":%.3f,"
		    "\"ttft_grid_min_ms\":%.3f,\"grid_cpu_ms\":%.3f,"
		    "\"speedup\":%.2f,\"max_abs_logit_diff\":%.9g,\"logits_bit_identical\":%s,"
		    "\"first_token_recompute\":%u,\"first_token_grid\":%u,"
		    "\"read_gbps\":%.6g,\"write_gbps\":%.6g,\"suffix_prefill_ms\":%.3f,"
		    "\"predicted_grid_ms\":%.3f,\"grid_vs_predicted\":%.3f,\"lookup_ms\":%.3f,"
		    "\"layer_wait_ms\":%.3f,\"blocks_from_dram\":%u,\"blocks_from_nvme\":%u,"
		    "\"prefill_tokens_per_s\":%.1f,\"prefill_gflops\":%.2f,\"sgemm_gflops\":%.2f,"
		    "\"sgemm_engine_shape_gflops\":%.2f,\"prefill_vs_sgemm\":%.3f,"
		    "\"prefill_gflops_per_core_cpu\":%.2f,\"sgemm_gflops_per_core_cpu\":%.2f,"
		    "\"reps\":%lu}\n",
		    m->cfg.name, m->model_id, a->context, a->server ? "server" : a->tier,
		    o->backend, dt, a->bt, m->cfg.layers, m->cfg.kv_heads, m->cfg.head_dim,
		    page_bytes / a->bt, o->cached, o->suffix, (unsigned long long)o->kv_bytes,
		    o->recompute_ms, o->recompute_cpu_ms, o->grid_ms, o->grid_min_ms,
		    o->grid_cpu_ms, o->recompute_ms / o->grid_ms, o->max_diff,
		    o->identical ? "true" : "false", o->tok_recompute, o->tok_grid, o->read_gbps,
		    o->write_gbps, o->suffix_ms, pred, o->grid_ms / pred, o->lookup_ms,
		    o->layer_wait_ms, o->from[KVG_TIER_DRAM], o->from[KVG_TIER_NVME], tps, gfs,
		    o->sgemm_gflops, o->sgemm_engine_gflops, gfs / o->sgemm_gflops,
		    o->flops / (o->recompute_cpu_ms / 1e3) / 1e9, o->sgemm_core_gflops, a->reps);
		return;
	}
	printf("model %s (%u layers, %u kv heads x %u, %s KV: %zu bytes/token), context %lu\n",
	       m->cfg.name, m->cfg.layers, m->cfg.kv_heads, m->cfg.head_dim, dt, page_bytes / a->bt,
	       a->context);
	printf("  BLAS sgemm           %8.1f GFLOP/s (1024^3), %.1f at the engine's FFN shape; "
	       "%.1f per core-second of CPU\n",
	       o->sgemm_gflops, o->sgemm_engine_gflops, o->sgemm_core_gflops);
	printf("  prefill              %8.1f GFLOP per core-second of CPU (%.0f%% of sgemm's)\n",
	       o->flops / (o->recompute_cpu_ms / 1e3) / 1e9,
	       100 * o->flops / (o->recompute_cpu_ms / 1e3) / 1e9 / o->sgemm_core_gflops);
	printf("  recompute            %10.1f ms  (%.0f tokens/s, %.1f GFLOP/s = %.0f%% of sgemm; "
	       "CPU %.1f s)\n",
	       o->recompute_ms, tps, gfs, 100 * gfs / o->sgemm_gflops, o->recompute_cpu_ms / 1e3);
	printf("  reload from %-4s     %10.1f ms  (median of %lu; %zu tokens reloaded = %.1f MiB, "
	       "%zu computed)\n",
	       a->server ? "kvgridd" : a->tier, o->grid_ms, a->reps, o->cached,
	       o->kv_bytes / 1048576.0, o->suffix);
	printf("  speed-up             %10.1f x\n", o->recompute_ms / o->grid_ms);
	printf("  model: %.1f MiB / %.2f GB/s + suffix %.1f ms = %.1f ms; measured/model %.2f\n",
	       o->kv_bytes / 1048576.0, o->read_gbps, o->suffix_ms, pred, o->grid_ms / pred);
	printf("  logits: max |diff| %.3g (%s), first token %u vs %u\n", o->max_diff,
	       o->identical ? "bit-identical" : "NOT identical", o->tok_recompute, o->tok_grid);
}

static int parse_args(int argc, char **argv, struct bench_args *a)
{
	static const struct option opts[] = {{"config", 1, 0, 'c'},
					     {"weights", 1, 0, 'w'},
					     {"context", 1, 0, 'n'},
					     {"tier", 1, 0, 'T'},
					     {"json", 0, 0, 'j'},
					     {"kv-dtype", 1, 0, 'd'},
					     {"block-tokens", 1, 0, 'b'},
					     {"threads", 1, 0, 't'},
					     {"reps", 1, 0, 'r'},
					     {"dir", 1, 0, 'D'},
					     {"server", 1, 0, 'S'},
					     {"help", 0, 0, 'h'},
					     {0, 0, 0, 0}};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end = NULL;
		switch (o) {
		case 'c':
			a->config = optarg;
			break;
		case 'w':
			a->weights = optarg;
			break;
		case 'T':
			a->tier = optarg;
			break;
		case 'D':
			a->dir = optarg;
			break;
		case 'S':
			a->server = optarg;
			break;
		case 'j':
			a->json = 1;
			break;
		case 'n':
			a->context = strtoul(optarg, &end, 10);
			break;
		case 'b':
			a->bt = strtoul(optarg, &end, 10);
			break;
		case 't':
			a->threads = strtoul(optarg, &end, 10);
			break;
		case 'r':
			a->reps = strtoul(optarg, &end, 10);
			break;
		case 'd':
			if ((a->dtype = llm_parse_dtype(optarg)) < 0)
				return llm_fail(2, "bench", "unknown --kv-dtype '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return 2;
		}
		if (end && *end)
			return llm_fail(2, "bench", "not a number: '%s'", optarg);
	}
	if (optind < argc)
		return llm_fail(2, "bench", "unexpected argument '%s'", argv[optind]);
	if (strcmp(a->tier, "dram") && strcmp(a->tier, "nvme") && strcmp(a->tier, "both"))
		return llm_fail(2, "bench", "--tier must be dram, nvme or both");
	if (a->server && !strcmp(a->tier, "both"))
		return llm_fail(2, "bench",
				"--server takes no --tier both (the server has its tiers)");
	if (a->bt < 16 || a->bt > 1024)
		return llm_fail(2, "bench", "--block-tokens must be 16..1024");
	if (a->context < a->bt + 1 || a->context > (1u << 20))
		return llm_fail(2, "bench",
				"--context must be more than one block (%lu) and at most 1M",
				a->bt);
	if (!a->reps || a->reps > REPS_MAX)
		return llm_fail(2, "bench", "--reps must be 1..%d", REPS_MAX);
	return 0;
}

int llm_cmd_bench(int argc, char **argv)
{
	struct bench_args a = {.config = "demo",
			       .tier = "nvme",
			       .bt = 256,
			       .threads = 2,
			       .reps = 5,
			       .dtype = KVG_DTYPE_BF16};
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	char err[1024], dir[4096] = "";
	struct llm_model m;
	struct llm_fwd *f = NULL;
	kvg_grid *g = NULL;
	struct bench_out o = {0};
	llm_catch_signals();
	if ((rc = llm_load_model(&m, a.config, a.weights, err, sizeof(err))))
		return llm_fail(1, "bench", "%s", err);
	struct llm_fwd_opts fo = {.kv_dtype = (uint32_t)a.dtype,
				  .block_tokens = (uint32_t)a.bt,
				  .max_ctx = (uint32_t)a.context,
				  .threads = (uint32_t)a.threads};
	uint32_t *tok = calloc(a.context, sizeof(*tok));
	float *ref = calloc(m.cfg.vocab, sizeof(float)), *lg = calloc(m.cfg.vocab, sizeof(float));
	int status = 1;
	if (!tok || !ref || !lg || llm_fwd_create(&m, &fo, &f, err, sizeof(err))) {
		llm_fail(1, "bench", "%s", f ? "out of memory" : err);
		goto out;
	}
	o.sgemm_gflops = sgemm_rate(1024, 1024, 1024, (int)a.threads);
	o.sgemm_engine_gflops =
	    sgemm_rate((int)a.bt, (int)(2 * m.cfg.ffn), (int)m.cfg.hidden, (int)a.threads);
	o.sgemm_core_gflops = sgemm_core_rate();
	llm_random_tokens(tok, a.context, m.cfg.vocab, 1234, 0);
	llm_fwd_prefill(f, tok, 0, a.bt, NULL, NULL, lg); /* warm-up: threads, caches */
	double c0 = cpu_ms(), t0 = llm_now_ms();
	rc = llm_fwd_prefill(f, tok, 0, a.context, NULL, NULL, ref);
	o.recompute_ms = llm_now_ms() - t0;
	o.recompute_cpu_ms = cpu_ms() - c0;
	o.flops = llm_config_prefill_flops(&m.cfg, 0, a.context);
	o.tok_recompute = llm_argmax(ref, m.cfg.vocab);
	if (rc) {
		llm_fail(1, "bench", "prefill failed: %s", strerror(-rc));
		goto out;
	}
	/* one recompute, then each tier asked for: "both" is dram then nvme */
	const char *tiers[2] = {a.tier, NULL};
	if (!strcmp(a.tier, "both"))
		tiers[0] = "dram", tiers[1] = "nvme";
	for (int t = 0; t < 2 && tiers[t]; t++) {
		struct bench_out ot = o;
		if (llm_interrupted) {
			llm_fail(1, "bench", "interrupted");
			goto out;
		}
		a.tier = tiers[t];
		if (!a.server && !strcmp(a.tier, "nvme") &&
		    (rc = llm_tmpdir(a.dir, dir, sizeof(dir)))) {
			llm_fail(1, "bench", "cannot create a directory under %s: %s",
				 a.dir ? a.dir : "/var/tmp", strerror(-rc));
			goto out;
		}
		if ((rc = open_grid(&a, f, dir, &g, err, sizeof(err)))) {
			llm_fail(1, "bench", "kvg_open: %s", err);
			goto out;
		}
		if (bench_grid(&a, f, g, tok, ref, lg, &ot, err, sizeof(err))) {
			llm_fail(1, "bench", "%s", err);
			goto out;
		}
		print_result(&a, &m, &ot, llm_fwd_page_bytes(f));
		fflush(stdout);
		kvg_close(g);
		g = NULL;
		llm_rmtree(dir);
		dir[0] = 0;
	}
	status = 0;
out:
	if (g)
		kvg_close(g);
	llm_rmtree(dir);
	llm_fwd_destroy(f);
	free(tok), free(ref), free(lg);
	llm_model_free(&m);
	return status;
}
