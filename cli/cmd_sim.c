/*
 * cmd_sim.c - `kvgrid sim`: turns cached prefixes into time, energy and money with the
 * cost model (tools/costmodel.h, doc/COSTMODEL.md).
 *
 * Three uses: one request (--context, --cached); a trace replayed in the simulator at one
 * capacity (per-request TTFT with and without the grid, GPU-seconds and energy avoided,
 * cost per million input tokens); and a sweep of capacities (cost per million tokens and
 * hit ratio against capacity, per policy).  Every report ends with the break-even load
 * bandwidth per context length.  --svg-dir writes the plots.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "costmodel.h"
#include "kvgrid.h"
#include "policy.h"
#include "sim.h"
#include "sim_svg.h"
#include "trace.h"

#define SIM_SWEEP_MAX	 16
#define SIM_POLICIES_MAX 8

static const char *const tier_names[CM_TIERS] = {"dram", "nvme", "net"};

struct sim_args {
	struct cm_model m;
	struct cm_hw h;
	enum cm_tier tier;
	const char *trace;
	const char *policy;
	const char *svg_dir;
	double context, cached;
	double capacity_pct;
	double sweep[SIM_SWEEP_MAX];
	size_t n_sweep;
	const char *policies[SIM_POLICIES_MAX];
	size_t n_policies;
	char policies_buf[256];
	int json;
};

static void sim_usage(FILE *f)
{
	fprintf(f,
		"usage: kvgrid sim [--model M] [--hw H] [--profile FILE] [--set NAME=VALUE]...\n"
		"                  [--tier dram|nvme|net] [--json] [--svg-dir DIR]\n"
		"                  (--context TOKENS [--cached TOKENS]\n"
		"                   | --trace FILE [--policy P] --capacity-pct X\n"
		"                   | --trace FILE --sweep 1,2,5,10,20,50 [--policies P,Q,...])\n"
		"TTFT, GPU-seconds, energy and cost of prefill with recompute only and with the\n"
		"grid (cached prefix loaded layer by layer under the suffix's prefill).\n"
		"models:");
	for (int i = 0; cm_model_names[i]; i++)
		fprintf(f, " %s", cm_model_names[i]);
	fprintf(f, "\nhardware:");
	for (int i = 0; cm_hw_names[i]; i++)
		fprintf(f, " %s", cm_hw_names[i]);
	fprintf(f, "\nfields for --set and --profile files: model.layers, hw.mfu, "
		   "hw.tier_bw_node.nvme, ... (doc/COSTMODEL.md)\n");
}

static int sim_parse(int argc, char **argv, struct sim_args *a)
{
	char err[512], sweep_buf[256];
	const char *model = "llama-3.1-70b", *hw = "h100";
	memset(a, 0, sizeof(*a));
	/* the profiles first, so that --profile and --set apply on top in any order */
	for (int i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "--model"))
			model = argv[i + 1];
		if (!strcmp(argv[i], "--hw"))
			hw = argv[i + 1];
	}
	if (cm_model_get(model, &a->m))
		return cli_usage("sim", "unknown model '%s' (kvgrid sim --help)", model);
	if (cm_hw_get(hw, &a->h))
		return cli_usage("sim", "unknown hardware '%s' (kvgrid sim --help)", hw);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			sim_usage(stdout);
			exit(0);
		} else if (!strcmp(o, "--json")) {
			a->json = 1, takes = 0;
		} else if (!v) {
			return cli_usage("sim", "%s needs a value (kvgrid sim --help)", o);
		} else if (!strcmp(o, "--model") || !strcmp(o, "--hw")) {
			/* read above */
		} else if (!strcmp(o, "--profile")) {
			if (cm_load_file(&a->m, &a->h, v, err, sizeof(err)))
				return cli_fail("sim", "%s", err);
		} else if (!strcmp(o, "--set")) {
			char buf[256];
			snprintf(buf, sizeof(buf), "%s", v);
			char *eq = strchr(buf, '=');
			if (!eq)
				return cli_usage("sim", "--set NAME=VALUE");
			*eq = 0;
			if (cm_set(&a->m, &a->h, buf, eq + 1, err, sizeof(err)))
				return cli_usage("sim", "--set: %s", err);
		} else if (!strcmp(o, "--tier")) {
			int t = !strcmp(v, "dram")   ? 0
				: !strcmp(v, "nvme") ? 1
				: !strcmp(v, "net")  ? 2
						     : -1;
			if (t < 0)
				return cli_usage("sim", "--tier is dram, nvme or net");
			a->tier = (enum cm_tier)t;
		} else if (!strcmp(o, "--context")) {
			a->context = atof(v);
		} else if (!strcmp(o, "--cached")) {
			a->cached = atof(v);
		} else if (!strcmp(o, "--trace")) {
			a->trace = v;
		} else if (!strcmp(o, "--policy")) {
			a->policy = v;
		} else if (!strcmp(o, "--capacity-pct")) {
			a->capacity_pct = atof(v);
		} else if (!strcmp(o, "--svg-dir")) {
			a->svg_dir = v;
		} else if (!strcmp(o, "--sweep")) {
			snprintf(sweep_buf, sizeof(sweep_buf), "%s", v);
			if (cli_parse_pcts(sweep_buf, a->sweep, SIM_SWEEP_MAX, &a->n_sweep))
				return cli_usage("sim", "bad --sweep '%s'", v);
		} else if (!strcmp(o, "--policies")) {
			snprintf(a->policies_buf, sizeof(a->policies_buf), "%s", v);
			for (char *t = strtok(a->policies_buf, ","); t; t = strtok(NULL, ",")) {
				if ((strcmp(t, "belady") && !policy_find(t)) ||
				    a->n_policies >= SIM_POLICIES_MAX)
					return cli_usage("sim", "bad --policies '%s'", v);
				a->policies[a->n_policies++] = t;
			}
		} else {
			return cli_usage("sim", "unknown option '%s' (kvgrid sim --help)", o);
		}
		i += takes;
	}
	if (cm_check(&a->m, &a->h, err, sizeof(err)))
		return cli_usage("sim", "%s", err);
	if (!a->trace && a->context <= 0)
		return cli_usage("sim", "give --context TOKENS or --trace FILE");
	if (a->trace && !a->n_sweep && (a->capacity_pct <= 0 || a->capacity_pct > 100))
		return cli_usage("sim", "--trace needs --capacity-pct in (0, 100] or --sweep");
	if (a->policy && strcmp(a->policy, "belady") && !policy_find(a->policy))
		return cli_usage("sim", "unknown policy '%s'", a->policy);
	if (a->cached < 0 || a->cached > a->context)
		return cli_usage("sim", "--cached must be between 0 and --context");
	return -1;
}

/* ---- break-even table ------------------------------------------------------------------ */

static const double contexts[] = {1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072};
#define N_CONTEXTS (sizeof(contexts) / sizeof(contexts[0]))

static void print_profiles(const struct sim_args *a)
{
	printf("model %s: %u layers, KV %.1f KiB/token, %.3g active params, %u GPU(s)\n", a->m.name,
	       a->m.layers, cm_kv_bytes_per_token(&a->m) / 1024, a->m.active_params, a->m.gpus);
	printf("hw %s: %.0f TFLOP/s bf16 at MFU %.2f, %.0f W, $%.2f/GPU-hour; tier %s at "
	       "%.1f GB/s\n",
	       a->h.name, a->h.flops / 1e12, a->h.mfu, a->h.gpu_power_w, a->h.gpu_cost_hour,
	       tier_names[a->tier], cm_tier_bw(&a->m, &a->h, a->tier) / 1e9);
}

static void print_breakeven(const struct sim_args *a)
{
	printf("\n%10s %14s %14s %18s\n", "context", "prefill (s)", "KV (GB)", "break-even (GB/s)");
	for (size_t i = 0; i < N_CONTEXTS; i++)
		printf("%10.0f %14.3f %14.3f %18.2f\n", contexts[i],
		       cm_prefill_s(&a->m, &a->h, 0, contexts[i]),
		       contexts[i] * cm_kv_bytes_per_token(&a->m) / 1e9,
		       cm_breakeven_bw(&a->m, &a->h, contexts[i]) / 1e9);
}

static void json_breakeven(const struct sim_args *a)
{
	printf("\"breakeven\": [");
	for (size_t i = 0; i < N_CONTEXTS; i++)
		printf("%s{\"context\": %.0f, \"prefill_s\": %.6f, \"kv_bytes\": %.0f, "
		       "\"bw_bytes_per_s\": %.0f}",
		       i ? ", " : "", contexts[i], cm_prefill_s(&a->m, &a->h, 0, contexts[i]),
		       contexts[i] * cm_kv_bytes_per_token(&a->m),
		       cm_breakeven_bw(&a->m, &a->h, contexts[i]));
	printf("]");
}

static int sim_one_request(const struct sim_args *a)
{
	double n_new = a->context - a->cached;
	double base = cm_ttft_s(&a->m, &a->h, a->tier, 0, a->context);
	double grid = cm_ttft_s(&a->m, &a->h, a->tier, a->cached, n_new);
	double load = cm_load_s(&a->m, &a->h, a->tier, a->cached);
	if (a->json) {
		printf("{\"model\": \"%s\", \"hw\": \"%s\", \"tier\": \"%s\", \"context\": %.0f, "
		       "\"cached\": %.0f, \"ttft_recompute_s\": %.6f, \"ttft_grid_s\": %.6f, "
		       "\"load_s\": %.6f, \"ttft_reduction\": %.4f, ",
		       a->m.name, a->h.name, tier_names[a->tier], a->context, a->cached, base, grid,
		       load, base > 0 ? 1 - grid / base : 0);
		json_breakeven(a);
		printf("}\n");
		return 0;
	}
	print_profiles(a);
	printf("\nrequest of %.0f tokens, %.0f cached in %s:\n", a->context, a->cached,
	       tier_names[a->tier]);
	printf("  TTFT recompute %.4f s, with the grid %.4f s (load %.4f s): %.1f%% less\n", base,
	       grid, load, base > 0 ? 100 * (1 - grid / base) : 0);
	print_breakeven(a);
	return 0;
}

/* ---- a trace --------------------------------------------------------------------------- */

struct trace_run {
	const struct sim_args *a;
	const struct trace *t;
	struct cm_totals tot;
	double *ttft_base;
	double *ttft_grid;
	struct sim_result res;
};

static void on_request(void *arg, size_t q, uint64_t hit_tokens)
{
	struct trace_run *r = arg;
	cm_add(&r->tot, &r->a->m, &r->a->h, r->a->tier, r->t->reqs[q].input_length,
	       (double)hit_tokens, &r->ttft_base[q], &r->ttft_grid[q]);
}

static uint64_t sim_pct_blocks(const struct trace *t, double pct)
{
	uint64_t b = (uint64_t)((double)t->n_distinct * pct / 100.0 + 0.5);
	return b ? b : 1;
}

static int run_trace(struct trace_run *r, const char *policy, double pct)
{
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	cfg.block_tokens = r->t->block_tokens;
	memset(&r->tot, 0, sizeof(r->tot));
	struct sim_opts o = {.policy = policy,
			     .capacity_blocks = sim_pct_blocks(r->t, pct),
			     .block_bytes = 4096,
			     .partial_bytes = 1,
			     .cfg = &cfg,
			     .on_request = on_request,
			     .on_request_arg = r};
	return sim_run(r->t, &o, &r->res);
}

static double trace_duration_s(const struct trace *t)
{
	if (!t->n_reqs)
		return 0;
	return (double)(t->reqs[t->n_reqs - 1].timestamp_ms - t->reqs[0].timestamp_ms) / 1000.0;
}

static double capacity_bytes(const struct sim_args *a, const struct trace *t, double pct)
{
	return (double)sim_pct_blocks(t, pct) * t->block_tokens * cm_kv_bytes_per_token(&a->m);
}

static int cmp_dbl(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static double quantile(const double *sorted, size_t n, double q)
{
	if (!n)
		return 0;
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

static int write_svg(const char *dir, const char *name, const struct svg_chart *c,
		     const struct svg_series *s, size_t n)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		return cli_fail("sim", "%s: %s", path, strerror(errno));
	int rc = svg_write_lines(f, c, s, n);
	if (fclose(f) || rc)
		return cli_fail("sim", "%s: write failed", path);
	return 0;
}

/* The TTFT distribution with and without the grid, as a CDF on a log time axis. */
static int write_ttft_svg(const struct sim_args *a, double *base, double *grid, size_t n,
			  const char *policy)
{
	enum { PTS = 101 };
	static double x[2][PTS], y[PTS];
	for (int k = 0; k < PTS; k++) {
		y[k] = k / (double)(PTS - 1);
		x[0][k] = quantile(base, n, y[k]);
		x[1][k] = quantile(grid, n, y[k]);
	}
	char title[160], with[96];
	snprintf(title, sizeof(title), "TTFT distribution: %s on %s, %.3g%% capacity", a->m.name,
		 a->h.name, a->capacity_pct);
	snprintf(with, sizeof(with), "grid (%s, %s)", policy, tier_names[a->tier]);
	struct svg_series s[2] = {{"recompute only", x[0], y, PTS, 1}, {with, x[1], y, PTS, 0}};
	char xl[160];
	const char *tb = strrchr(a->trace, '/');
	snprintf(xl, sizeof(xl), "TTFT (s), requests of %s", tb ? tb + 1 : a->trace);
	struct svg_chart c = {title, xl, "share of requests", 1, 0, 1};
	return write_svg(a->svg_dir, "ttft-dist.svg", &c, s, 2);
}

/* What one trace run reports, computed once for both output formats. */
struct trace_report {
	const char *policy;
	double cap_bytes, duration_s, cost_base, cost_grid, kwh;
	double base_q[3], grid_q[3]; /* p50, p90, p99 */
};

static void trace_report_json(const struct sim_args *a, const struct trace_run *r,
			      const struct trace_report *p)
{
	double n = r->tot.requests ? (double)r->tot.requests : 1;
	printf("{\"model\": \"%s\", \"hw\": \"%s\", \"tier\": \"%s\", \"trace\": \"%s\", "
	       "\"policy\": \"%s\", \"capacity_pct\": %g, \"capacity_bytes\": %.0f, "
	       "\"requests\": %llu, \"prefix_hit_token_ratio\": %.6f, ",
	       a->m.name, a->h.name, tier_names[a->tier], a->trace, p->policy, a->capacity_pct,
	       p->cap_bytes, (unsigned long long)r->tot.requests, r->res.prefix_hit_token_ratio);
	printf("\"ttft_recompute_s\": {\"mean\": %.6f, \"p50\": %.6f, \"p90\": %.6f, "
	       "\"p99\": %.6f}, ",
	       r->tot.ttft_s_base / n, p->base_q[0], p->base_q[1], p->base_q[2]);
	printf("\"ttft_grid_s\": {\"mean\": %.6f, \"p50\": %.6f, \"p90\": %.6f, "
	       "\"p99\": %.6f}, ",
	       r->tot.ttft_s_grid / n, p->grid_q[0], p->grid_q[1], p->grid_q[2]);
	printf("\"gpu_s_recompute\": %.3f, \"gpu_s_grid\": %.3f, \"gpu_s_avoided\": %.3f, "
	       "\"energy_avoided_kwh\": %.4f, \"load_bytes\": %.0f, "
	       "\"cost_per_mtok_recompute\": %.5f, \"cost_per_mtok_grid\": %.5f, ",
	       r->tot.gpu_s_base, r->tot.gpu_s_grid, r->tot.gpu_s_base - r->tot.gpu_s_grid, p->kwh,
	       r->tot.load_bytes, p->cost_base, p->cost_grid);
	json_breakeven(a);
	printf("}\n");
}

static void trace_report_text(const struct sim_args *a, const struct trace_run *r,
			      const struct trace_report *p)
{
	double n = r->tot.requests ? (double)r->tot.requests : 1;
	const struct cm_totals *t = &r->tot;
	print_profiles(a);
	printf("trace %s: %llu requests over %.0f s; policy %s at %g%% capacity (%.1f GB of KV)\n",
	       a->trace, (unsigned long long)t->requests, p->duration_s, p->policy, a->capacity_pct,
	       p->cap_bytes / 1e9);
	printf("prefix-hit-token ratio %.4f\n\n", r->res.prefix_hit_token_ratio);
	printf("%-16s %10s %10s %10s %10s\n", "TTFT (s)", "mean", "p50", "p90", "p99");
	printf("%-16s %10.4f %10.4f %10.4f %10.4f\n", "recompute only", t->ttft_s_base / n,
	       p->base_q[0], p->base_q[1], p->base_q[2]);
	printf("%-16s %10.4f %10.4f %10.4f %10.4f\n", "with the grid", t->ttft_s_grid / n,
	       p->grid_q[0], p->grid_q[1], p->grid_q[2]);
	printf("\nGPU-seconds of prefill: %.0f recompute only, %.0f with the grid "
	       "(%.0f avoided, %.1f%%)\n",
	       t->gpu_s_base, t->gpu_s_grid, t->gpu_s_base - t->gpu_s_grid,
	       t->gpu_s_base > 0 ? 100 * (1 - t->gpu_s_grid / t->gpu_s_base) : 0);
	printf("energy avoided: %.2f kWh (GPU %.0f W, less %.1f GB read from %s)\n", p->kwh,
	       a->h.gpu_power_w, t->load_bytes / 1e9, tier_names[a->tier]);
	printf("cost per million input tokens: $%.4f recompute only, $%.4f with the grid\n",
	       p->cost_base, p->cost_grid);
	print_breakeven(a);
}

static int sim_trace(const struct sim_args *a, const struct trace *t)
{
	struct trace_report p = {.policy = a->policy ? a->policy : "lru"};
	struct trace_run r = {.a = a, .t = t};
	static const double q[3] = {0.5, 0.9, 0.99};
	size_t n = t->n_reqs ? t->n_reqs : 1;
	int rc = 1;
	r.ttft_base = malloc(n * sizeof(double));
	r.ttft_grid = malloc(n * sizeof(double));
	if (!r.ttft_base || !r.ttft_grid) {
		cli_fail("sim", "out of memory");
		goto out;
	}
	if (run_trace(&r, p.policy, a->capacity_pct)) {
		cli_fail("sim", "simulation failed");
		goto out;
	}
	qsort(r.ttft_base, t->n_reqs, sizeof(double), cmp_dbl);
	qsort(r.ttft_grid, t->n_reqs, sizeof(double), cmp_dbl);
	for (int i = 0; i < 3; i++) {
		p.base_q[i] = quantile(r.ttft_base, t->n_reqs, q[i]);
		p.grid_q[i] = quantile(r.ttft_grid, t->n_reqs, q[i]);
	}
	p.cap_bytes = capacity_bytes(a, t, a->capacity_pct);
	p.duration_s = trace_duration_s(t);
	p.cost_base = cm_cost_per_mtok_base(&r.tot, &a->h);
	p.cost_grid = cm_cost_per_mtok_grid(&r.tot, &a->h, a->tier, p.cap_bytes, p.duration_s);
	p.kwh = cm_energy_avoided_kwh(&r.tot, &a->h, a->tier);
	if (a->json)
		trace_report_json(a, &r, &p);
	else
		trace_report_text(a, &r, &p);
	rc = a->svg_dir ? write_ttft_svg(a, r.ttft_base, r.ttft_grid, t->n_reqs, p.policy) : 0;
out:
	free(r.ttft_base);
	free(r.ttft_grid);
	return rc;
}

/* Cost per million input tokens and hit ratio against capacity, per policy. */
static int sim_sweep(struct sim_args *a, const struct trace *t)
{
	static double cost[SIM_POLICIES_MAX + 1][SIM_SWEEP_MAX];
	static double hit[SIM_POLICIES_MAX][SIM_SWEEP_MAX];
	struct trace_run r = {.a = a, .t = t};
	size_t n = t->n_reqs ? t->n_reqs : 1;
	if (!a->n_policies) {
		a->policies[a->n_policies++] = "lru";
		a->policies[a->n_policies++] = "prefix";
		a->policies[a->n_policies++] = "belady";
	}
	r.ttft_base = malloc(n * sizeof(double));
	r.ttft_grid = malloc(n * sizeof(double));
	if (!r.ttft_base || !r.ttft_grid) {
		free(r.ttft_base);
		free(r.ttft_grid);
		return cli_fail("sim", "out of memory");
	}
	double base = 0, dur = trace_duration_s(t);
	for (size_t p = 0; p < a->n_policies; p++)
		for (size_t k = 0; k < a->n_sweep; k++) {
			if (run_trace(&r, a->policies[p], a->sweep[k])) {
				free(r.ttft_base);
				free(r.ttft_grid);
				return cli_fail("sim", "simulation failed");
			}
			base = cm_cost_per_mtok_base(&r.tot, &a->h);
			cost[p][k] = cm_cost_per_mtok_grid(&r.tot, &a->h, a->tier,
							   capacity_bytes(a, t, a->sweep[k]), dur);
			hit[p][k] = r.res.prefix_hit_token_ratio;
		}
	free(r.ttft_base);
	free(r.ttft_grid);
	for (size_t k = 0; k < a->n_sweep; k++)
		cost[a->n_policies][k] = base;
	if (a->json) {
		printf("{\"model\": \"%s\", \"hw\": \"%s\", \"tier\": \"%s\", \"trace\": \"%s\", "
		       "\"cost_per_mtok_recompute\": %.6f, \"capacity_pct\": [",
		       a->m.name, a->h.name, tier_names[a->tier], a->trace, base);
		for (size_t k = 0; k < a->n_sweep; k++)
			printf("%s%g", k ? ", " : "", a->sweep[k]);
		printf("], \"policies\": {");
		for (size_t p = 0; p < a->n_policies; p++) {
			printf("%s\"%s\": {\"cost_per_mtok\": [", p ? ", " : "", a->policies[p]);
			for (size_t k = 0; k < a->n_sweep; k++)
				printf("%s%.6f", k ? ", " : "", cost[p][k]);
			printf("], \"prefix_hit_token_ratio\": [");
			for (size_t k = 0; k < a->n_sweep; k++)
				printf("%s%.6f", k ? ", " : "", hit[p][k]);
			printf("]}");
		}
		printf("}}\n");
	} else {
		print_profiles(a);
		printf("trace %s; $ per million input tokens (recompute only: $%.4f)\n\n| policy |",
		       a->trace, base);
		for (size_t k = 0; k < a->n_sweep; k++)
			printf(" %g%% |", a->sweep[k]);
		printf("\n| --- |");
		for (size_t k = 0; k < a->n_sweep; k++)
			printf(" ---: |");
		printf("\n");
		for (size_t p = 0; p < a->n_policies; p++) {
			printf("| %s |", a->policies[p]);
			for (size_t k = 0; k < a->n_sweep; k++)
				printf(" $%.4f (%.3f) |", cost[p][k], hit[p][k]);
			printf("\n");
		}
		printf("(in parentheses: prefix-hit-token ratio)\n");
	}
	if (!a->svg_dir)
		return 0;
	struct svg_series s[SIM_POLICIES_MAX + 1];
	for (size_t p = 0; p <= a->n_policies; p++)
		s[p] = (struct svg_series){p < a->n_policies ? a->policies[p] : "recompute only",
					   a->sweep, cost[p], a->n_sweep, 0};
	for (size_t p = 0; p < a->n_policies; p++)
		s[p].dashed = !strcmp(a->policies[p], "lru") || !strcmp(a->policies[p], "belady");
	s[a->n_policies].dashed = 1;
	char title[160];
	snprintf(title, sizeof(title), "Prefill cost vs capacity: %s on %s (%s tier)", a->m.name,
		 a->h.name, tier_names[a->tier]);
	char xl[160];
	const char *tb = strrchr(a->trace, '/');
	snprintf(xl, sizeof(xl), "capacity (%% of distinct blocks of %s)", tb ? tb + 1 : a->trace);
	struct svg_chart c = {title, xl, "$ per million input tokens", 1, 0, 0};
	return write_svg(a->svg_dir, "cost-capacity.svg", &c, s, a->n_policies + 1);
}

int cmd_sim(int argc, char **argv)
{
	struct sim_args a;
	int rc = sim_parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	if (!a.trace)
		return sim_one_request(&a);
	struct trace t;
	char err[512];
	if (trace_load(a.trace, NULL, &t, err, sizeof(err)))
		return cli_fail("sim", "%s", err);
	rc = a.n_sweep ? sim_sweep(&a, &t) : sim_trace(&a, &t);
	trace_free(&t);
	return rc;
}
