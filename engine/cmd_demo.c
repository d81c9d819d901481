/*
 * cmd_demo.c - `kvgrid-llm demo`: an agentic workload, once recomputed and once with the grid.
 *
 * Several agent sessions share a long system prompt with tool descriptions.  Each session
 * starts with its own task; every later turn appends the model's reply (greedy decoding) and
 * a tool result, and asks again.  Requests from the sessions interleave round-robin, as
 * concurrent agents' requests reach one engine; one request runs at a time on this machine's
 * cores.  Each request runs twice, side by side: a full recompute (no grid, the baseline)
 * and through the grid connector (lookup, layer-wise load, suffix prefill, stores).  The
 * conversation continues with the recompute's reply, so both runs see the same prompts.
 *
 * The grid has a DRAM tier smaller than the workload's KV, in front of an NVMe tier in a
 * fresh directory (removed at the end): old blocks are demoted to NVMe and hits come from
 * both tiers.  One row per request, as it completes; a summary at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "forward.h"
#include "gridlink.h"
#include "kvgrid.h"
#include "llm.h"

struct demo_args {
	const char *config, *weights, *dir;
	unsigned long sessions, turns, system, task, tool, reply, bt, threads;
	unsigned long long dram;
	int json;
};

struct demo_row {
	double ttft_recompute, ttft_grid, max_diff;
	double cpu_recompute, cpu_grid; /* process CPU time of each prefill, ms */
	size_t ctx, cached;
	uint32_t from[KVG_TIER_COUNT];
	int same_token;
};

struct demo_sum {
	double wall_ms, sum_recompute, sum_grid, cpu_recompute, cpu_grid;
	size_t tokens, cached, rows, same;
	uint32_t from[KVG_TIER_COUNT];
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: kvgrid-llm demo [--config NAME|FILE] [--sessions S] [--turns T]\n"
	    "                       [--system-tokens N] [--task-tokens N] [--tool-tokens N]\n"
	    "                       [--reply-tokens N] [--dram BYTES] [--dir DIR] [--json]\n"
	    "S agent sessions share a system prompt of N tokens; each turn appends the reply and "
	    "a\n"
	    "tool result.  Every request runs recomputed and through the grid (DRAM tier of BYTES\n"
	    "in front of NVMe in a fresh directory under DIR, default /var/tmp, removed after).\n"
	    "Defaults: demo config, 4 sessions, 3 turns, 2048 system, 128 task, 320 tool, 8 reply\n"
	    "tokens, 128-token blocks (1 MiB), 16M DRAM.\n");
}

static int parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = *end == 'K' || *end == 'k'	 ? 10
		    : *end == 'M' || *end == 'm' ? 20
		    : *end == 'G' || *end == 'g' ? 30
						 : 0;
	if (end == s || *s == '-' || (shift && end[1]) || (!shift && *end))
		return -1;
	*out = v << shift;
	return 0;
}

static int parse_args(int argc, char **argv, struct demo_args *a)
{
	static const struct option opts[] = {
	    {"config", 1, 0, 'c'},	{"weights", 1, 0, 'w'},	      {"sessions", 1, 0, 's'},
	    {"turns", 1, 0, 't'},	{"system-tokens", 1, 0, 'S'}, {"task-tokens", 1, 0, 'k'},
	    {"tool-tokens", 1, 0, 'o'}, {"reply-tokens", 1, 0, 'r'},  {"dram", 1, 0, 'm'},
	    {"dir", 1, 0, 'D'},		{"json", 0, 0, 'j'},	      {"block-tokens", 1, 0, 'b'},
	    {"threads", 1, 0, 'T'},	{"help", 0, 0, 'h'},	      {0, 0, 0, 0}};
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long *num = NULL;
		switch (o) {
		case 'c':
			a->config = optarg;
			break;
		case 'w':
			a->weights = optarg;
			break;
		case 'D':
			a->dir = optarg;
			break;
		case 'j':
			a->json = 1;
			break;
		case 's':
			num = &a->sessions;
			break;
		case 't':
			num = &a->turns;
			break;
		case 'S':
			num = &a->system;
			break;
		case 'k':
			num = &a->task;
			break;
		case 'o':
			num = &a->tool;
			break;
		case 'r':
			num = &a->reply;
			break;
		case 'b':
			num = &a->bt;
			break;
		case 'T':
			num = &a->threads;
			break;
		case 'm':
			if (parse_size(optarg, &a->dram))
				return llm_fail(2, "demo", "--dram: bad size '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return 2;
		}
		if (num) {
			char *end;
			*num = strtoul(optarg, &end, 10);
			if (end == optarg || *end || *optarg == '-')
				return llm_fail(2, "demo", "not a number: '%s'", optarg);
		}
	}
	if (optind < argc)
		return llm_fail(2, "demo", "unexpected argument '%s'", argv[optind]);
	if (!a->sessions || a->sessions > 64 || !a->turns || a->turns > 64)
		return llm_fail(2, "demo", "--sessions and --turns must be 1..64");
	if (!a->system || !a->task || !a->tool || a->reply < 2 || a->reply > 256)
		return llm_fail(2, "demo", "token counts must be positive (--reply-tokens 2..256)");
	if (a->bt < 16 || a->bt > 1024)
		return llm_fail(2, "demo", "--block-tokens must be 16..1024");
	return 0;
}

/* Tool result lengths vary by turn and session, as real ones do (+-25%). */
static size_t tool_len(const struct demo_args *a, size_t s, size_t t)
{
	size_t v = a->tool * 3 / 4 + (size_t)((s * 7919 + t * 104729) % (a->tool / 2 + 1));
	return v ? v : 1;
}

static int open_grid(const struct demo_args *a, struct llm_fwd *f, const char *dir, kvg_grid **g,
		     char *err, size_t len)
{
	struct kvg_config c;
	kvg_config_init(&c);
	llm_link_grid_config(f, &c);
	c.dram_bytes = a->dram;
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	c.nvme_bytes = 1ull << 30;
	c.segment_bytes = 64u << 20;
	return kvg_open(&c, g, err, len);
}

static void print_header(const struct demo_args *a, const struct llm_model *m,
			 const struct llm_fwd *f, kvg_grid *g, double setup_ms)
{
	size_t bt = a->bt, pb = llm_fwd_page_bytes(f);
	size_t per_session = a->task + a->turns * (a->tool + a->reply);
	double ws = (double)(a->system + a->sessions * per_session) / bt * pb / 1048576.0;
	struct kvg_stats ks;
	kvg_stats_get(g, &ks);
	printf(
	    "kvgrid-llm demo: %lu agent sessions x %lu turns, sharing a %lu-token system prompt\n",
	    a->sessions, a->turns, a->system);
	printf("  model %s: %u layers, %u heads, %u KV heads x %u (GQA), bf16 KV %.3g KiB/token;"
	       " %u-token blocks of %.3g MiB\n",
	       m->cfg.name, m->cfg.layers, m->cfg.heads, m->cfg.kv_heads, m->cfg.head_dim,
	       (double)pb / bt / 1024, (unsigned)bt, pb / 1048576.0);
	printf("  grid: DRAM %.3g MiB in front of NVMe (%s, %s); KV working set about %.3g MiB\n",
	       a->dram / 1048576.0, ks.tier[KVG_TIER_NVME].backend, kvg_config_of(g)->dir, ws);
	printf(
	    "  each request runs twice: full recompute, then through the grid (set-up %.1f s)\n\n",
	    setup_ms / 1e3);
	printf("%4s %4s %4s %7s %17s %11s %11s %8s %7s\n", "req", "sess", "turn", "context",
	       "cached (DRAM/NVMe)", "recompute", "with grid", "speedup", "logits");
	fflush(stdout);
}

static void print_row(size_t i, size_t s, size_t t, const struct demo_row *r)
{
	char cached[32], logits[16];
	snprintf(cached, sizeof(cached), "%zu (%u/%u)", r->cached, r->from[KVG_TIER_DRAM],
		 r->from[KVG_TIER_NVME]);
	if (r->max_diff == 0)
		snprintf(logits, sizeof(logits), "exact");
	else
		snprintf(logits, sizeof(logits), "%.0e", r->max_diff);
	printf("%s%4zu %4c %4zu %7zu %17s %8.0f ms %8.0f ms %7.1fx %7s%s\n",
	       isatty(STDOUT_FILENO) ? "\033[K" : "", i + 1, (int)('A' + s % 26), t + 1, r->ctx,
	       cached, r->ttft_recompute, r->ttft_grid, r->ttft_recompute / r->ttft_grid, logits,
	       r->same_token ? "" : " (first token differs)");
	fflush(stdout);
}

static double cpu_ms(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* One request, both ways.  ctx[0..n) is the prompt; the reply goes to ctx[n..n+reply). */
static int run_request(const struct demo_args *a, struct llm_fwd *f, struct llm_link *lk,
		       uint32_t *ctx, size_t n, float *ref, float *lg, struct demo_row *r)
{
	uint32_t vocab = llm_fwd_model(f)->cfg.vocab;
	struct llm_link_stats st;
	memset(r, 0, sizeof(*r));
	r->ctx = n;
	double c0 = cpu_ms(), t0 = llm_now_ms();
	int rc = llm_fwd_prefill(f, ctx, 0, n, NULL, NULL, ref);
	r->ttft_recompute = llm_now_ms() - t0;
	r->cpu_recompute = cpu_ms() - c0;
	for (size_t i = 0; !rc && i < a->reply; i++) { /* the reference reply */
		ctx[n + i] = llm_argmax(i ? lg : ref, vocab);
		if (i + 1 < a->reply)
			rc = llm_fwd_prefill(f, &ctx[n + i], n + i, 1, NULL, NULL, lg);
	}
	if (rc)
		return rc;
	uint32_t *mine = malloc((n + a->reply) * sizeof(*mine));
	if (!mine)
		return -ENOMEM;
	memcpy(mine, ctx, n * sizeof(*mine));
	c0 = cpu_ms();
	rc = llm_link_prefill(lk, mine, n, lg, &st);
	r->cpu_grid = cpu_ms() - c0;
	if (!rc) {
		r->ttft_grid = st.ttft_ms;
		r->cached = st.cached_tokens;
		memcpy(r->from, st.blocks_from, sizeof(r->from));
		r->same_token = llm_argmax(lg, vocab) == ctx[n];
		for (uint32_t i = 0; i < vocab; i++)
			r->max_diff = fmax(r->max_diff, fabs((double)lg[i] - ref[i]));
		rc = llm_link_decode(lk, mine, n, a->reply, lg, &st);
	}
	free(mine);
	return rc;
}

static int cmp_d(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

/* Nearest-rank percentile of v[0..n) (sorted in place). */
static double pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_d);
	size_t k = (size_t)ceil(p / 100.0 * (double)n);
	return v[k ? k - 1 : 0];
}

static void print_summary(const struct demo_args *a, struct demo_row *rows, struct demo_sum *s,
			  kvg_grid *g)
{
	double *re = calloc(s->rows, sizeof(double)), *gr = calloc(s->rows, sizeof(double));
	if (!re || !gr) {
		free(re), free(gr);
		return;
	}
	for (size_t i = 0; i < s->rows; i++)
		re[i] = rows[i].ttft_recompute, gr[i] = rows[i].ttft_grid;
	double re50 = pct(re, s->rows, 50), re99 = pct(re, s->rows, 99);
	double gr50 = pct(gr, s->rows, 50), gr99 = pct(gr, s->rows, 99);
	struct kvg_stats ks;
	kvg_stats_get(g, &ks);
	const struct kvg_tier_stats *d = &ks.tier[KVG_TIER_DRAM], *nv = &ks.tier[KVG_TIER_NVME];
	if (a->json) {
		printf("{\"requests\":%zu,\"context_tokens\":%zu,\"cached_tokens\":%zu,"
		       "\"prefill_avoided\":%.4f,\"blocks_from_dram\":%u,\"blocks_from_nvme\":%u,"
		       "\"ttft_recompute_p50_ms\":%.2f,\"ttft_recompute_p99_ms\":%.2f,"
		       "\"ttft_grid_p50_ms\":%.2f,\"ttft_grid_p99_ms\":%.2f,\"speedup_p50\":%.2f,"
		       "\"speedup_total\":%.2f,\"same_first_token\":%zu,\"dram_evictions\":%llu,"
		       "\"nvme_blocks\":%llu,\"cpu_recompute_s\":%.3f,\"cpu_grid_s\":%.3f,"
		       "\"wall_s\":%.2f}\n",
		       s->rows, s->tokens, s->cached, (double)s->cached / s->tokens,
		       s->from[KVG_TIER_DRAM], s->from[KVG_TIER_NVME], re50, re99, gr50, gr99,
		       re50 / gr50, s->sum_recompute / s->sum_grid, s->same,
		       (unsigned long long)d->evictions, (unsigned long long)nv->blocks,
		       s->cpu_recompute / 1e3, s->cpu_grid / 1e3, s->wall_ms / 1e3);
	} else {
		printf("\nsummary of %zu requests (%.1f s in all)\n", s->rows, s->wall_ms / 1e3);
		printf("  TTFT recompute:  median %7.0f ms   p99 %7.0f ms\n", re50, re99);
		printf("  TTFT with grid:  median %7.0f ms   p99 %7.0f ms\n", gr50, gr99);
		printf("  speed-up:        %.1fx at the median, %.1fx over all requests' TTFT\n",
		       re50 / gr50, s->sum_recompute / s->sum_grid);
		printf(
		    "  in CPU time:     recompute %.1f s, with grid %.1f s for all prefills: %.1fx "
		    "(unaffected by other processes' load)\n",
		    s->cpu_recompute / 1e3, s->cpu_grid / 1e3, s->cpu_recompute / s->cpu_grid);
		printf("  prefill avoided: %zu of %zu prompt tokens (%.0f%%), blocks from DRAM %u, "
		       "from NVMe %u\n",
		       s->cached, s->tokens, 100.0 * s->cached / s->tokens, s->from[KVG_TIER_DRAM],
		       s->from[KVG_TIER_NVME]);
		printf("  grid now: DRAM %llu blocks (%llu evicted), NVMe %llu blocks, %.0f MiB "
		       "read\n",
		       (unsigned long long)d->blocks, (unsigned long long)d->evictions,
		       (unsigned long long)nv->blocks, nv->bytes_read / 1048576.0);
		printf("  first token with the grid = recompute's in %zu of %zu requests; logits "
		       "\"exact\" = bit-identical\n",
		       s->same, s->rows);
	}
	free(re), free(gr);
}

/* Runs every request, printing rows; fills rows[] and s. */
static int run_all(const struct demo_args *a, struct llm_fwd *f, struct llm_link *lk,
		   uint32_t **ctx, size_t *len, struct demo_row *rows, struct demo_sum *s)
{
	const struct llm_model *m = llm_fwd_model(f);
	float *ref = calloc(m->cfg.vocab, sizeof(float)), *lg = calloc(m->cfg.vocab, sizeof(float));
	int rc = ref && lg ? 0 : -ENOMEM;
	for (size_t t = 0; t < a->turns && !rc; t++) {
		for (size_t se = 0; se < a->sessions && !rc; se++) {
			if (llm_interrupted) {
				rc = -EINTR;
				break;
			}
			size_t add = t ? tool_len(a, se, t) : a->task;
			/* turn 0: system + task; later: previous reply (already there) + tool
			 * result */
			llm_random_tokens(ctx[se] + len[se], add, m->cfg.vocab, 77 + se, 1000 + t);
			len[se] += add;
			struct demo_row *r = &rows[s->rows];
			if (!a->json &&
			    isatty(STDOUT_FILENO)) { /* progress, overwritten by the row */
				printf("  ... request %zu/%lu: session %c, %zu tokens, recomputing "
				       "and "
				       "then with the grid\r",
				       s->rows + 1, a->sessions * a->turns, (int)('A' + se % 26),
				       len[se]);
				fflush(stdout);
			}
			rc = run_request(a, f, lk, ctx[se], len[se], ref, lg, r);
			if (rc)
				break;
			len[se] += a->reply;
			if (!a->json)
				print_row(s->rows, se, t, r);
			s->sum_recompute += r->ttft_recompute;
			s->sum_grid += r->ttft_grid;
			s->cpu_recompute += r->cpu_recompute;
			s->cpu_grid += r->cpu_grid;
			s->tokens += r->ctx;
			s->cached += r->cached;
			s->same += r->same_token;
			for (int k = 0; k < KVG_TIER_COUNT; k++)
				s->from[k] += r->from[k];
			s->rows++;
		}
	}
	free(ref), free(lg);
	return rc;
}

int llm_cmd_demo(int argc, char **argv)
{
	struct demo_args a = {.config = "demo",
			      .sessions = 4,
			      .turns = 3,
			      .system = 2048,
			      .task = 128,
			      .tool = 320,
			      .reply = 8,
			      .bt = 128,
			      .threads = 2,
			      .dram = 16ull << 20};
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	double t0 = llm_now_ms();
	llm_catch_signals();
	char err[1024], dir[4096] = "";
	struct llm_model m;
	struct llm_fwd *f = NULL;
	struct llm_link *lk = NULL;
	kvg_grid *g = NULL;
	size_t max_ctx = a.system + a.task + a.turns * (a.tool * 5 / 4 + 1 + a.reply) + 1;
	uint32_t **ctx = calloc(a.sessions, sizeof(*ctx));
	size_t *len = calloc(a.sessions, sizeof(*len));
	struct demo_row *rows = calloc(a.sessions * a.turns, sizeof(*rows));
	struct demo_sum s = {0};
	int status = 1;
	if ((rc = llm_load_model(&m, a.config, a.weights, err, sizeof(err))))
		return llm_fail(1, "demo", "%s", err);
	struct llm_fwd_opts fo = {.kv_dtype = KVG_DTYPE_BF16,
				  .block_tokens = (uint32_t)a.bt,
				  .max_ctx = (uint32_t)max_ctx,
				  .threads = (uint32_t)a.threads};
	if (!ctx || !len || !rows || llm_fwd_create(&m, &fo, &f, err, sizeof(err))) {
		llm_fail(1, "demo", "%s", f ? "out of memory" : err);
		goto out;
	}
	if ((rc = llm_tmpdir(a.dir, dir, sizeof(dir)))) {
		llm_fail(1, "demo", "cannot create a directory under %s: %s",
			 a.dir ? a.dir : "/var/tmp", strerror(-rc));
		goto out;
	}
	if ((rc = open_grid(&a, f, dir, &g, err, sizeof(err))) ||
	    (rc = llm_link_create(g, f, &lk, err, sizeof(err)))) {
		llm_fail(1, "demo", "grid: %s", err);
		goto out;
	}
	for (size_t se = 0; se < a.sessions; se++) {
		if (!(ctx[se] = calloc(max_ctx, sizeof(uint32_t))))
			goto out;
		llm_random_tokens(ctx[se], a.system, m.cfg.vocab, 77, 0); /* shared by all */
		len[se] = a.system;
	}
	if (!a.json)
		print_header(&a, &m, f, g, llm_now_ms() - t0);
	double t1 = llm_now_ms();
	rc = run_all(&a, f, lk, ctx, len, rows, &s);
	s.wall_ms = llm_now_ms() - t1;
	if (rc) {
		llm_fail(1, "demo", rc == -EINTR ? "interrupted" : "request failed: %s",
			 kvg_strerror(rc));
		goto out;
	}
	print_summary(&a, rows, &s, g);
	status = 0;
out:
	llm_link_destroy(lk);
	if (g)
		kvg_close(g);
	llm_rmtree(dir);
	llm_fwd_destroy(f);
	for (size_t se = 0; ctx && se < a.sessions; se++)
		free(ctx[se]);
	free(ctx), free(len), free(rows);
	llm_model_free(&m);
	return status;
}
