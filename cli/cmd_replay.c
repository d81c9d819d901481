/*
 * cmd_replay.c - `kvgrid replay`: replays a Mooncake-format trace through the grid (or
 * through the in-memory simulator) and reports hit ratios, per-tier traffic and load
 * latency, always next to the LRU and Belady references for the same trace and capacity,
 * so that a report says where a policy stands between the baseline and the optimum.
 *
 * --sweep runs the simulator over several capacities and policies and prints the policy
 * table (and an SVG plot with --svg), which is how doc/bench-policy.md is made.
 *
 * --hints oracle gives every request a session hint computed from the trace itself
 * (sim_continuation_hints(): "continues" if a later request reads its last full block, else
 * "last"), passed with the request's kvg_load/kvg_store as KVG_STORE_CONTINUES or
 * KVG_STORE_LAST.  It stands for a serving layer that knows whether a session goes on; it
 * is not something a policy could compute online.  --hints-wrong flips a share of them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kvgrid.h"
#include "policy.h"
#include "replay.h"
#include "sim.h"
#include "sim_svg.h"
#include "trace.h"

#define SWEEP_MAX    32
#define POLICIES_MAX 16

struct replay_args {
	const char *trace;
	const char *policy;
	const char *dir;
	const char *svg;
	const char *engine;
	const char *hints; /* "none" or "oracle" */
	double hints_wrong;
	uint8_t *hint_of; /* per request, with --hints oracle */
	uint64_t capacity_blocks;
	double capacity_pct;
	uint64_t dram_bytes;
	uint64_t nvme_bytes;
	uint64_t block_bytes;
	double speed;
	int json;
	int refs;
	int full_blocks;
	int skip_bad;
	uint32_t interleave; /* simulator: requests in flight at once */
	uint32_t engines;    /* through the store: engine threads at once */
	uint32_t hosts;	     /* through the store: grids the sessions are split across */
	const char *shared_dir;
	uint64_t shared_bytes;
	size_t max_reqs;
	double sweep[SWEEP_MAX];
	size_t n_sweep;
	const char *policies[POLICIES_MAX];
	size_t n_policies;
	char policies_buf[512];
	char sweep_buf[256];
};

static void replay_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: kvgrid replay --trace FILE [--policy P] [--capacity-blocks N | --capacity-pct "
	    "X |\n"
	    "                     --dram BYTES [--nvme BYTES]] [--block-bytes B] [--dir DIR]\n"
	    "                     [--speed asap|real|NUMx] [--engine grid|sim] [--json] "
	    "[--no-refs]\n"
	    "                     [--full-blocks] [--skip-bad] [--max-requests N]\n"
	    "                     [--hints none|oracle] [--hints-wrong FRACTION]\n"
	    "                     [--interleave N]   (with --engine sim or --sweep)\n"
	    "                     [--engines N]      (through the store)\n"
	    "                     [--hosts N [--shared-dir DIR --shared-bytes BYTES]]\n"
	    "       kvgrid replay --trace FILE --sweep 1,2,5,10,20,50 [--policies P,Q,...] [--svg "
	    "FILE]\n"
	    "                     [--json] [--hints ...]   (simulator; capacities in %% of the "
	    "distinct\n"
	    "                     blocks)\n"
	    "Replays each request as a serving system would: lookup of its blocks, load of the\n"
	    "cached prefix, store of the rest.  Reports the prefix-hit-token ratio (cached prefix\n"
	    "tokens / input tokens) and the block hit ratio, next to LRU and Belady (the offline\n"
	    "optimum, computed by the simulator) at the same capacity.\n"
	    "--hints oracle passes each request's session hint (KVG_STORE_CONTINUES if a later\n"
	    "request reads its last full block, else KVG_STORE_LAST) with its load and store: a\n"
	    "serving layer that knows whether the session goes on, not an online policy.\n"
	    "--hints-wrong F flips a share F of those hints (fixed seed).\n"
	    "--interleave N keeps N requests in flight and makes their block calls in turn, as\n"
	    "when several engines share one grid (simulator; LRU and Belady too).\n"
	    "--engines N replays through the store from N threads at once, each taking the next\n"
	    "request in order of arrival (the references stay one at a time).\n"
	    "--hosts N splits the sessions (requests grouped by their first block) across N "
	    "grids,\n"
	    "each with the tier sizes given (its NVMe under DIR/host-K) and an engine of its own;\n"
	    "with --shared-dir they share one shared tier of --shared-bytes (doc/SHARED.md).\n"
	    "policies: belady");
	for (int i = 0; policy_names[i]; i++)
		fprintf(f, " %s", policy_names[i]);
	fprintf(f, "\n");
}

static int parse_policies(struct replay_args *a, const char *s)
{
	snprintf(a->policies_buf, sizeof(a->policies_buf), "%s", s);
	a->n_policies = 0;
	for (char *tok = strtok(a->policies_buf, ","); tok; tok = strtok(NULL, ",")) {
		if (strcmp(tok, "belady") && !policy_find(tok))
			return -1;
		if (a->n_policies >= POLICIES_MAX)
			return -1;
		a->policies[a->n_policies++] = tok;
	}
	return a->n_policies ? 0 : -1;
}

static int parse_speed(const char *s, double *speed)
{
	if (!strcmp(s, "asap")) {
		*speed = 0;
		return 0;
	}
	if (!strcmp(s, "real")) {
		*speed = 1;
		return 0;
	}
	char *end;
	double v = strtod(s, &end);
	if (end == s || (strcmp(end, "x") && *end) || v <= 0)
		return -1;
	*speed = v;
	return 0;
}

/* One option that takes a value.  -1 when it was taken, else the exit status (2). */
/* A whole number from 1 to 64 into *out: 0, or -1 if v is not one. */
static int parse_1_64(const char *v, uint32_t *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	if (end == v || *end || n < 1 || n > 64)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

static int replay_parse_value(struct replay_args *a, const char *o, const char *v)
{
	if (!strcmp(o, "--trace")) {
		a->trace = v;
	} else if (!strcmp(o, "--policy")) {
		a->policy = v;
		if (strcmp(v, "belady") && !policy_find(v))
			return cli_usage("replay", "unknown policy '%s'", v);
	} else if (!strcmp(o, "--policies")) {
		if (parse_policies(a, v))
			return cli_usage("replay", "bad --policies '%s'", v);
	} else if (!strcmp(o, "--dir")) {
		a->dir = v;
	} else if (!strcmp(o, "--svg")) {
		a->svg = v;
	} else if (!strcmp(o, "--engine")) {
		if (strcmp(v, "grid") && strcmp(v, "sim"))
			return cli_usage("replay", "--engine is grid or sim");
		a->engine = v;
	} else if (!strcmp(o, "--capacity-blocks")) {
		if (cli_parse_size(v, &a->capacity_blocks) || !a->capacity_blocks)
			return cli_usage("replay", "bad --capacity-blocks '%s'", v);
	} else if (!strcmp(o, "--capacity-pct")) {
		a->capacity_pct = atof(v);
		if (a->capacity_pct <= 0 || a->capacity_pct > 100)
			return cli_usage("replay", "--capacity-pct is in (0, 100]");
	} else if (!strcmp(o, "--dram")) {
		if (cli_parse_size(v, &a->dram_bytes) || !a->dram_bytes)
			return cli_usage("replay", "bad --dram '%s'", v);
	} else if (!strcmp(o, "--nvme")) {
		if (cli_parse_size(v, &a->nvme_bytes))
			return cli_usage("replay", "bad --nvme '%s'", v);
	} else if (!strcmp(o, "--block-bytes")) {
		if (cli_parse_size(v, &a->block_bytes) || !a->block_bytes ||
		    a->block_bytes % 4096 || a->block_bytes > (1u << 30))
			return cli_usage("replay", "--block-bytes must be a multiple of 4096");
	} else if (!strcmp(o, "--speed")) {
		if (parse_speed(v, &a->speed))
			return cli_usage("replay", "--speed is asap, real or a factor (10x)");
	} else if (!strcmp(o, "--hints")) {
		if (strcmp(v, "none") && strcmp(v, "oracle"))
			return cli_usage("replay", "--hints is none or oracle");
		a->hints = v;
	} else if (!strcmp(o, "--hints-wrong")) {
		char *end;
		a->hints_wrong = strtod(v, &end);
		if (end == v || *end || a->hints_wrong < 0 || a->hints_wrong > 1)
			return cli_usage("replay", "--hints-wrong is a fraction in [0, 1]");
	} else if (!strcmp(o, "--interleave")) {
		if (parse_1_64(v, &a->interleave))
			return cli_usage("replay", "--interleave is a number of requests, 1 to 64");
	} else if (!strcmp(o, "--hosts")) {
		if (parse_1_64(v, &a->hosts) || a->hosts > 16)
			return cli_usage("replay", "--hosts is a number of grids, 1 to 16");
	} else if (!strcmp(o, "--shared-dir")) {
		a->shared_dir = v;
	} else if (!strcmp(o, "--shared-bytes")) {
		if (kvg_parse_size(v, &a->shared_bytes))
			return cli_usage("replay", "--shared-bytes is a size");
	} else if (!strcmp(o, "--engines")) {
		if (parse_1_64(v, &a->engines))
			return cli_usage("replay", "--engines is a number of threads, 1 to 64");
	} else if (!strcmp(o, "--max-requests")) {
		a->max_reqs = (size_t)strtoull(v, NULL, 10);
	} else if (!strcmp(o, "--sweep")) {
		snprintf(a->sweep_buf, sizeof(a->sweep_buf), "%s", v);
		if (cli_parse_pcts(a->sweep_buf, a->sweep, SWEEP_MAX, &a->n_sweep))
			return cli_usage("replay", "bad --sweep '%s' (percentages)", v);
	} else {
		return cli_usage("replay", "unknown option '%s' (kvgrid replay --help)", o);
	}
	return -1;
}

/* Fills a from the command line.  -1 to go on, else the exit status. */
static int replay_parse(int argc, char **argv, struct replay_args *a)
{
	memset(a, 0, sizeof(*a));
	a->block_bytes = 4096;
	a->refs = 1;
	a->engine = "grid";
	a->hints = "none";
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			replay_usage(stdout);
			exit(0);
		} else if (!strcmp(o, "--json")) {
			a->json = 1;
		} else if (!strcmp(o, "--no-refs")) {
			a->refs = 0;
		} else if (!strcmp(o, "--full-blocks")) {
			a->full_blocks = 1;
		} else if (!strcmp(o, "--skip-bad")) {
			a->skip_bad = 1;
		} else if (i + 1 >= argc) {
			return cli_usage("replay", "%s needs a value (kvgrid replay --help)", o);
		} else {
			int rc = replay_parse_value(a, o, argv[++i]);
			if (rc >= 0)
				return rc;
		}
	}
	if (!a->trace)
		return cli_usage("replay", "--trace FILE is required");
	int sized = (a->capacity_blocks != 0) + (a->capacity_pct != 0) + (a->dram_bytes != 0);
	if (!a->n_sweep && sized != 1)
		return cli_usage("replay", "give one of --capacity-blocks, --capacity-pct, --dram");
	if (a->nvme_bytes && !a->dir)
		return cli_usage("replay", "--nvme needs --dir");
	if (a->hints_wrong > 0 && strcmp(a->hints, "oracle"))
		return cli_usage("replay", "--hints-wrong needs --hints oracle");
	if (a->interleave > 1 && !a->n_sweep && strcmp(a->engine, "sim"))
		return cli_usage("replay", "--interleave needs --engine sim or --sweep");
	if (a->engines > 1 && (a->n_sweep || !strcmp(a->engine, "sim")))
		return cli_usage("replay", "--engines is for the store (--engine grid)");
	return -1;
}

/* ---- progress ----------------------------------------------------------------------- */

struct progress {
	const char *label;
	int last;
};

static void progress_cb(void *arg, size_t done, size_t total)
{
	struct progress *p = arg;
	int pct = total ? (int)(done * 100 / total) : 100;
	if (pct == p->last)
		return;
	p->last = pct;
	char bar[41];
	int fill = pct * 40 / 100;
	for (int i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[40] = 0;
	fprintf(stderr, "\r%-10s [%s] %3d%% %zu/%zu", p->label, bar, pct, done, total);
	if (done == total)
		fputc('\n', stderr);
	fflush(stderr);
}

/* ---- one run ------------------------------------------------------------------------- */

static uint64_t pct_blocks(const struct trace *t, double pct)
{
	uint64_t b = (uint64_t)((double)t->n_distinct * pct / 100.0 + 0.5);
	return b ? b : 1;
}

/* The simulator on t at cap blocks, with a's payload, interleaving and (if hints) hints. */
static int run_sim(const struct trace *t, const struct replay_args *a, const char *policy,
		   uint64_t cap, int hints, struct sim_result *r, struct progress *pg)
{
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	cfg.block_tokens = t->block_tokens;
	struct sim_opts o = {
	    .policy = policy,
	    .capacity_blocks = cap,
	    .block_bytes = 4096,
	    .partial_bytes = !a->full_blocks,
	    .cfg = &cfg,
	    .hints = hints ? a->hint_of : NULL,
	    .interleave = a->interleave,
	    .progress = pg ? progress_cb : NULL,
	    .progress_arg = pg,
	};
	return sim_run(t, &o, r);
}

static double gap_closed(double v, double lru, double belady)
{
	return belady - lru > 1e-9 ? (v - lru) / (belady - lru) : 0;
}

static void print_tier_json(const struct kvg_tier_stats *s, uint64_t hit_blocks)
{
	printf("{\"hit_blocks\": %llu, \"blocks\": %llu, \"bytes\": %llu, \"evictions\": %llu, "
	       "\"bytes_read\": %llu, \"bytes_written\": %llu, \"promotions\": %llu, "
	       "\"demotions\": %llu}",
	       (unsigned long long)hit_blocks, (unsigned long long)s->blocks,
	       (unsigned long long)s->bytes, (unsigned long long)s->evictions,
	       (unsigned long long)s->bytes_read, (unsigned long long)s->bytes_written,
	       (unsigned long long)s->promotions, (unsigned long long)s->demotions);
}

static void report_json(const struct replay_args *a, const struct trace *t, uint64_t cap,
			const char *engine, double ptr, double bhr, const struct replay_result *g,
			const struct sim_result *lru, const struct sim_result *bel,
			const struct sim_result *s)
{
	printf("{\"trace\": \"%s\", \"requests\": %zu, \"block_accesses\": %zu, "
	       "\"distinct_blocks\": %u, \"skipped_lines\": %zu, \"policy\": \"%s\", "
	       "\"engine\": \"%s\", \"capacity_blocks\": %llu, \"capacity_pct\": %.4f, "
	       "\"block_bytes\": %llu, \"prefix_hit_token_ratio\": %.6f, "
	       "\"block_hit_ratio\": %.6f, \"hints\": \"%s\", \"hints_wrong\": %.4f, "
	       "\"interleave\": %u",
	       a->trace, t->n_reqs, t->n_ids, t->n_distinct, t->skipped, a->policy, engine,
	       (unsigned long long)cap, 100.0 * cap / (t->n_distinct ? t->n_distinct : 1),
	       (unsigned long long)a->block_bytes, ptr, bhr, a->hints, a->hints_wrong,
	       a->interleave ? a->interleave : 1);
	if (s)
		printf(", \"hit_tokens\": %llu, \"input_tokens\": %llu, \"evictions\": %llu, "
		       "\"max_resident_blocks\": %llu",
		       (unsigned long long)s->hit_tokens, (unsigned long long)s->input_tokens,
		       (unsigned long long)s->evictions, (unsigned long long)s->max_resident);
	if (g) {
		printf(
		    ", \"hit_tokens\": %llu, \"input_tokens\": %llu, \"elapsed_s\": %.3f, "
		    "\"requests_per_s\": %.1f, \"load_latency_us\": {\"p50\": %.1f, \"p90\": %.1f,"
		    " \"p99\": %.1f, \"max\": %.1f}, \"load_errors\": %llu, \"store_errors\": "
		    "%llu, "
		    "\"engines\": %u, \"load_lost\": %llu, "
		    "\"verify_failures\": %llu, \"max_dram_blocks\": %llu, "
		    "\"max_index_blocks\": %llu, \"tiers\": {\"dram\": ",
		    (unsigned long long)g->hit_tokens, (unsigned long long)g->input_tokens,
		    g->elapsed_s, g->elapsed_s > 0 ? g->requests / g->elapsed_s : 0, g->load_us_p50,
		    g->load_us_p90, g->load_us_p99, g->load_us_max,
		    (unsigned long long)g->load_errors, (unsigned long long)g->store_errors,
		    a->engines ? a->engines : 1, (unsigned long long)g->load_lost,
		    (unsigned long long)g->verify_failures, (unsigned long long)g->max_dram_blocks,
		    (unsigned long long)g->max_index_blocks);
		print_tier_json(&g->stats.tier[KVG_TIER_DRAM], g->hit_blocks_tier[KVG_TIER_DRAM]);
		printf(", \"nvme\": ");
		print_tier_json(&g->stats.tier[KVG_TIER_NVME], g->hit_blocks_tier[KVG_TIER_NVME]);
		printf("}");
	}
	if (lru && bel)
		printf(", \"references\": {\"lru\": {\"prefix_hit_token_ratio\": %.6f, "
		       "\"block_hit_ratio\": %.6f}, \"belady\": {\"prefix_hit_token_ratio\": %.6f, "
		       "\"block_hit_ratio\": %.6f}}, \"gap_closed\": %.4f",
		       lru->prefix_hit_token_ratio, lru->block_hit_ratio,
		       bel->prefix_hit_token_ratio, bel->block_hit_ratio,
		       gap_closed(ptr, lru->prefix_hit_token_ratio, bel->prefix_hit_token_ratio));
	printf("}\n");
}

static void report_text(const struct replay_args *a, const struct trace *t, uint64_t cap,
			const char *engine, double ptr, double bhr, const struct replay_result *g,
			const struct sim_result *lru, const struct sim_result *bel)
{
	printf("trace     %s: %zu requests, %zu block accesses, %u distinct blocks", a->trace,
	       t->n_reqs, t->n_ids, t->n_distinct);
	if (t->skipped)
		printf(", %zu bad lines skipped (first: line %zu)", t->skipped, t->first_bad_line);
	printf("\ncapacity  %llu blocks (%.2f%% of distinct) of %llu bytes; engine %s\n",
	       (unsigned long long)cap, 100.0 * cap / (t->n_distinct ? t->n_distinct : 1),
	       (unsigned long long)a->block_bytes, engine);
	if (a->hint_of)
		printf("hints     oracle (from the trace: a serving layer that knows whether a "
		       "session "
		       "goes on), %.1f%% flipped\n",
		       100 * a->hints_wrong);
	printf("\n%-22s %18s %12s\n", "policy", "prefix-hit-tokens", "block-hits");
	printf("%-22s %18.4f %12.4f\n", a->policy, ptr, bhr);
	if (lru && bel) {
		printf("%-22s %18.4f %12.4f\n", "lru (reference)", lru->prefix_hit_token_ratio,
		       lru->block_hit_ratio);
		printf("%-22s %18.4f %12.4f\n", "belady (reference)", bel->prefix_hit_token_ratio,
		       bel->block_hit_ratio);
		printf("gap closed: %.1f%% of the way from LRU to Belady\n",
		       100 * gap_closed(ptr, lru->prefix_hit_token_ratio,
					bel->prefix_hit_token_ratio));
	}
	if (!g)
		return;
	static const char *const names[] = {"dram", "nvme"};
	printf("\n%-6s %12s %12s %14s %14s %10s %10s\n", "tier", "hit-blocks", "evictions",
	       "bytes-read", "bytes-written", "promoted", "demoted");
	for (int i = 0; i < KVG_TIER_COUNT; i++) {
		const struct kvg_tier_stats *s = &g->stats.tier[i];
		printf("%-6s %12llu %12llu %14llu %14llu %10llu %10llu\n", names[i],
		       (unsigned long long)g->hit_blocks_tier[i], (unsigned long long)s->evictions,
		       (unsigned long long)s->bytes_read, (unsigned long long)s->bytes_written,
		       (unsigned long long)s->promotions, (unsigned long long)s->demotions);
	}
	printf("\nload latency per request with a hit (us): p50 %.1f  p90 %.1f  p99 %.1f  "
	       "max %.1f\n",
	       g->load_us_p50, g->load_us_p90, g->load_us_p99, g->load_us_max);
	printf("replayed in %.2f s (%.0f requests/s, %.0f block accesses/s); errors: load %llu, "
	       "store %llu, verify %llu\n",
	       g->elapsed_s, g->elapsed_s > 0 ? g->requests / g->elapsed_s : 0,
	       g->elapsed_s > 0 ? g->blocks / g->elapsed_s : 0, (unsigned long long)g->load_errors,
	       (unsigned long long)g->store_errors, (unsigned long long)g->verify_failures);
}

static int replay_one(const struct replay_args *a, const struct trace *t)
{
	uint64_t cap = a->capacity_blocks;
	if (a->capacity_pct)
		cap = pct_blocks(t, a->capacity_pct);
	if (a->dram_bytes)
		cap = (a->dram_bytes + a->nvme_bytes) / a->block_bytes;
	int tty = isatty(2);
	struct sim_result lru, bel, s;
	struct replay_result g;
	int is_sim = !strcmp(a->engine, "sim") || !strcmp(a->policy, "belady");
	const char *engine = is_sim ? "sim" : "grid";
	double ptr, bhr;
	if (is_sim) {
		struct progress pg = {"simulate", -1};
		int rc = run_sim(t, a, a->policy, cap, 1, &s, tty ? &pg : NULL);
		if (rc)
			return cli_fail("replay", "simulation: %s", kvg_strerror(rc));
		ptr = s.prefix_hit_token_ratio;
		bhr = s.block_hit_ratio;
	} else {
		char err[256] = "";
		struct progress pg = {"replay", -1};
		struct replay_opts o = {
		    .policy = a->policy,
		    .capacity_blocks = a->dram_bytes ? 0 : cap,
		    .dram_bytes = a->dram_bytes,
		    .nvme_bytes = a->nvme_bytes,
		    .dir = a->dir,
		    .block_bytes = (uint32_t)a->block_bytes,
		    .partial_bytes = !a->full_blocks,
		    .speed = a->speed,
		    .hints = a->hint_of,
		    .engines = a->engines,
		    .hosts = a->hosts,
		    .shared_dir = a->shared_dir,
		    .shared_bytes = a->shared_bytes,
		    .progress = tty ? progress_cb : NULL,
		    .progress_arg = &pg,
		};
		int rc = replay_run(t, &o, &g, err, sizeof(err));
		if (rc)
			return cli_fail("replay", "%s%s%s", kvg_strerror(rc), err[0] ? ": " : "",
					err);
		ptr = g.prefix_hit_token_ratio;
		bhr = g.block_hit_ratio;
		/* tiers given in bytes: NVMe records take more room than their payload, so the
		 * references use the blocks the grid actually held at most */
		if (a->dram_bytes && g.max_index_blocks)
			cap = g.max_index_blocks;
	}
	if (a->refs && (run_sim(t, a, "lru", cap, 0, &lru, NULL) ||
			run_sim(t, a, "belady", cap, 0, &bel, NULL)))
		return cli_fail("replay", "out of memory computing the references");
	if (a->json)
		report_json(a, t, cap, engine, ptr, bhr, is_sim ? NULL : &g, a->refs ? &lru : NULL,
			    a->refs ? &bel : NULL, is_sim ? &s : NULL);
	else
		report_text(a, t, cap, engine, ptr, bhr, is_sim ? NULL : &g, a->refs ? &lru : NULL,
			    a->refs ? &bel : NULL);
	return 0;
}

/* ---- sweep --------------------------------------------------------------------------- */

static int write_sweep_svg(const struct replay_args *a, const double (*ratio)[SWEEP_MAX])
{
	struct svg_series ser[POLICIES_MAX];
	const char *base = strrchr(a->trace, '/');
	char title[160];
	snprintf(title, sizeof(title), "Prefix-hit-token ratio vs capacity: %s",
		 base ? base + 1 : a->trace);
	for (size_t p = 0; p < a->n_policies; p++) {
		ser[p] = (struct svg_series){a->policies[p], a->sweep, ratio[p], a->n_sweep,
					     !strcmp(a->policies[p], "lru") ||
						 !strcmp(a->policies[p], "belady")};
	}
	struct svg_chart c = {
	    title, "capacity (% of distinct blocks)", "prefix-hit-token ratio", 1, 0, 0};
	FILE *f = fopen(a->svg, "w");
	if (!f)
		return cli_fail("replay", "%s: %s", a->svg, strerror(errno));
	int rc = svg_write_lines(f, &c, ser, a->n_policies);
	if (fclose(f) || rc)
		return cli_fail("replay", "%s: write failed", a->svg);
	return 0;
}

static int replay_sweep(struct replay_args *a, const struct trace *t)
{
	static double ratio[POLICIES_MAX][SWEEP_MAX], blocks_ratio[POLICIES_MAX][SWEEP_MAX];
	if (!a->n_policies) {
		a->policies[a->n_policies++] = "lru";
		for (int i = 0; policy_names[i] && a->n_policies < POLICIES_MAX - 1; i++)
			if (strcmp(policy_names[i], "lru"))
				a->policies[a->n_policies++] = policy_names[i];
		a->policies[a->n_policies++] = "belady";
	}
	for (size_t p = 0; p < a->n_policies; p++)
		for (size_t k = 0; k < a->n_sweep; k++) {
			struct sim_result r;
			int rc =
			    run_sim(t, a, a->policies[p], pct_blocks(t, a->sweep[k]), 1, &r, NULL);
			if (rc)
				return cli_fail("replay", "simulation: %s", kvg_strerror(rc));
			ratio[p][k] = r.prefix_hit_token_ratio;
			blocks_ratio[p][k] = r.block_hit_ratio;
		}
	if (a->json) {
		printf("{\"trace\": \"%s\", \"distinct_blocks\": %u, \"capacity_pct\": [", a->trace,
		       t->n_distinct);
		for (size_t k = 0; k < a->n_sweep; k++)
			printf("%s%g", k ? ", " : "", a->sweep[k]);
		printf("], \"policies\": {");
		for (size_t p = 0; p < a->n_policies; p++) {
			printf("%s\"%s\": {\"prefix_hit_token_ratio\": [", p ? ", " : "",
			       a->policies[p]);
			for (size_t k = 0; k < a->n_sweep; k++)
				printf("%s%.6f", k ? ", " : "", ratio[p][k]);
			printf("], \"block_hit_ratio\": [");
			for (size_t k = 0; k < a->n_sweep; k++)
				printf("%s%.6f", k ? ", " : "", blocks_ratio[p][k]);
			printf("]}");
		}
		printf("}}\n");
	} else {
		printf("prefix-hit-token ratio, %s (%u distinct blocks)\n\n| policy |", a->trace,
		       t->n_distinct);
		for (size_t k = 0; k < a->n_sweep; k++)
			printf(" %g%% |", a->sweep[k]);
		printf("\n| --- |");
		for (size_t k = 0; k < a->n_sweep; k++)
			printf(" ---: |");
		printf("\n");
		for (size_t p = 0; p < a->n_policies; p++) {
			printf("| %s |", a->policies[p]);
			for (size_t k = 0; k < a->n_sweep; k++)
				printf(" %.4f |", ratio[p][k]);
			printf("\n");
		}
	}
	return a->svg ? write_sweep_svg(a, (const double(*)[SWEEP_MAX])ratio) : 0;
}

int cmd_replay(int argc, char **argv)
{
	struct replay_args a;
	int rc = replay_parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	struct kvg_config defaults;
	kvg_config_init(&defaults);
	if (!a.policy)
		a.policy = defaults.policy;
	struct trace t;
	struct trace_opts to = {.skip_bad = a.skip_bad, .max_reqs = a.max_reqs};
	char err[512];
	rc = trace_load(a.trace, &to, &t, err, sizeof(err));
	if (rc)
		return cli_fail("replay", "%s", err);
	if (!a.json && t.skipped)
		fprintf(stderr, "kvgrid replay: skipped %zu bad lines (first: line %zu)\n",
			t.skipped, t.first_bad_line);
	if (!strcmp(a.hints, "oracle")) {
		a.hint_of = malloc(t.n_reqs ? t.n_reqs : 1);
		if (!a.hint_of || sim_continuation_hints(&t, a.hints_wrong, 1, a.hint_of)) {
			free(a.hint_of);
			trace_free(&t);
			return cli_fail("replay", "out of memory computing the hints");
		}
	}
	rc = a.n_sweep ? replay_sweep(&a, &t) : replay_one(&a, &t);
	free(a.hint_of);
	trace_free(&t);
	return rc;
}
