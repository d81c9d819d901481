/*
 * cmd_stats.c - `kvgrid stats`: a grid's counters per tier, for a person or (--json) a
 * program.  --server HOST:PORT asks a kvgridd instead of opening a directory, and prints its
 * metrics too (what its /metrics endpoint serves: connections, requests, latency per
 * operation, tenants), read over the native protocol (METRICS).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "gridopt.h"

#define METRICS_MAX (1u << 20)

/* ---- the server's metrics text ------------------------------------------------------- */

/* The value of the sample `name{labels}` (labels "" for none) in Prometheus text, or -1. */
static double msample(const char *text, const char *name, const char *labels)
{
	size_t nl = strlen(name), ll = strlen(labels);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (*p == '#' || strncmp(p, name, nl))
			continue;
		const char *q = p + nl;
		if (ll) {
			if (*q != '{' || strncmp(q + 1, labels, ll) || q[1 + ll] != '}')
				continue;
			q += ll + 2;
		}
		if (*q == ' ')
			return strtod(q + 1, NULL);
	}
	return -1;
}

/* Calls fn(value, arg) for each distinct value of label `label` on samples named `name`. */
static void mlabels(const char *text, const char *name, const char *label,
		    void (*fn)(const char *value, void *arg), void *arg)
{
	char pre[160];
	snprintf(pre, sizeof(pre), "%s{%s=\"", name, label);
	size_t pl = strlen(pre);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, pre, pl))
			continue;
		const char *e = strchr(p + pl, '"');
		char v[128];
		if (!e || (size_t)(e - (p + pl)) >= sizeof(v))
			continue;
		memcpy(v, p + pl, (size_t)(e - (p + pl)));
		v[e - (p + pl)] = 0;
		fn(v, arg);
	}
}

/* The upper bound (seconds) of the histogram bucket holding quantile q of op's latency. */
static double mquantile(const char *text, const char *op, double count, double q)
{
	char pre[160];
	snprintf(pre, sizeof(pre), "kvgrid_request_duration_seconds_bucket{op=\"%s\",le=\"", op);
	size_t pl = strlen(pre);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, pre, pl))
			continue;
		const char *v = strstr(p, "} ");
		if (v && strtod(v + 2, NULL) >= q * count)
			return strncmp(p + pl, "+Inf", 4) ? strtod(p + pl, NULL) : -1;
	}
	return -1;
}

struct mreport {
	const char *text;
	int json, n;
};

static void report_latency(const char *op, void *arg)
{
	struct mreport *r = arg;
	char l[160];
	snprintf(l, sizeof(l), "op=\"%s\"", op);
	double n = msample(r->text, "kvgrid_request_duration_seconds_count", l);
	if (n <= 0)
		return;
	double q[3] = {mquantile(r->text, op, n, 0.5), mquantile(r->text, op, n, 0.99),
		       mquantile(r->text, op, n, 0.999)};
	if (r->json) {
		printf("%s\"%s\": {\"count\": %.0f, \"p50_le_s\": %g, \"p99_le_s\": %g, "
		       "\"p999_le_s\": %g}",
		       r->n++ ? ", " : "", op, n, q[0], q[1], q[2]);
		return;
	}
	printf("latency %-8s %10.0f requests  p50 <= %g ms  p99 <= %g ms  p99.9 <= %g ms\n", op, n,
	       q[0] * 1e3, q[1] * 1e3, q[2] * 1e3);
}

static void report_tenant(const char *t, void *arg)
{
	struct mreport *r = arg;
	static const char *const f[] = {"bytes",	"blocks",	  "hits_total",
					"misses_total", "requests_total", "quota_evictions_total"};
	double v[6];
	char l[160];
	snprintf(l, sizeof(l), "tenant=\"%s\"", t);
	for (int i = 0; i < 6; i++) {
		char name[64];
		snprintf(name, sizeof(name), "kvgrid_tenant_%s", f[i]);
		v[i] = msample(r->text, name, l);
	}
	if (r->json) {
		printf("%s\"%s\": {\"bytes\": %.0f, \"blocks\": %.0f, \"hits\": %.0f, "
		       "\"misses\": %.0f, \"requests\": %.0f, \"quota_evictions\": %.0f}",
		       r->n++ ? ", " : "", t, v[0], v[1], v[2], v[3], v[4], v[5]);
		return;
	}
	printf("tenant  %-8s bytes %.0f  blocks %.0f  hits %.0f  misses %.0f  requests %.0f  "
	       "quota evictions %.0f\n",
	       t, v[0], v[1], v[2], v[3], v[4], v[5]);
}

/* Prints a kvgridd's metrics (for a person, or as the "server" member of the JSON object). */
static int report_server(const struct kvg_config *cfg, int json)
{
	struct client *cl = NULL;
	char err[256] = "";
	char *text = malloc(METRICS_MAX);
	size_t len = 0;
	int rc = text ? client_open(cfg, &cl, err, sizeof(err)) : -12;
	if (!rc)
		rc = client_metrics(cl, text, METRICS_MAX, &len);
	client_close(cl);
	if (rc) {
		fprintf(stderr, "kvgrid stats: %s: no metrics: %s\n", cfg->servers,
			err[0] ? err : kvg_strerror(rc));
		free(text);
		return 1;
	}
	static const char *const g[] = {"kvgrid_connections",
					"kvgrid_connections_total",
					"kvgrid_connections_refused_total",
					"kvgrid_hits_total",
					"kvgrid_misses_total",
					"kvgrid_errors_total",
					"kvgrid_async_loads_total",
					"kvgrid_protocol_errors_total",
					"kvgrid_auth_failures_total"};
	double v[9], req[3];
	for (int i = 0; i < 9; i++)
		v[i] = msample(text, g[i], "");
	static const char *const pn[3] = {"resp", "lm", "native"};
	for (int i = 0; i < 3; i++) {
		char l[32];
		snprintf(l, sizeof(l), "proto=\"%s\"", pn[i]);
		req[i] = msample(text, "kvgrid_requests_total", l);
	}
	struct mreport r = {.text = text, .json = json};
	if (json) {
		printf("\"server\": {\"connections\": %.0f, \"connections_total\": %.0f, "
		       "\"connections_refused\": %.0f, \"hits\": %.0f, \"misses\": %.0f, "
		       "\"errors\": %.0f, \"async_loads\": %.0f, \"protocol_errors\": %.0f, "
		       "\"auth_failures\": %.0f, \"requests\": {\"resp\": %.0f, \"lm\": %.0f, "
		       "\"native\": %.0f}, \"latency\": {",
		       v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], req[0], req[1],
		       req[2]);
		mlabels(text, "kvgrid_request_duration_seconds_count", "op", report_latency, &r);
		printf("}, \"tenants\": {");
		r.n = 0;
		mlabels(text, "kvgrid_tenant_requests_total", "tenant", report_tenant, &r);
		printf("}}");
	} else {
		printf(
		    "server  %s: connections %.0f open, %.0f total, %.0f refused; requests resp "
		    "%.0f, lm %.0f, native %.0f; hits %.0f, misses %.0f, errors %.0f; async NVMe "
		    "loads %.0f; protocol errors %.0f, auth failures %.0f\n",
		    cfg->servers, v[0], v[1], v[2], req[0], req[1], req[2], v[3], v[4], v[5], v[6],
		    v[7], v[8]);
		mlabels(text, "kvgrid_request_duration_seconds_count", "op", report_latency, &r);
		mlabels(text, "kvgrid_tenant_requests_total", "tenant", report_tenant, &r);
	}
	free(text);
	return 0;
}

static void print_tier(const char *name, const struct kvg_tier_stats *t)
{
	printf(
	    "%-5s %-10s capacity %llu  bytes %llu  blocks %llu  hits %llu  misses %llu  "
	    "evictions %llu  read %llu  written %llu  checksum_failures %llu  io_errors %llu%s\n",
	    name, t->backend, (unsigned long long)t->capacity_bytes, (unsigned long long)t->bytes,
	    (unsigned long long)t->blocks, (unsigned long long)t->hits,
	    (unsigned long long)t->misses, (unsigned long long)t->evictions,
	    (unsigned long long)t->bytes_read, (unsigned long long)t->bytes_written,
	    (unsigned long long)t->checksum_failures, (unsigned long long)t->io_errors,
	    t->degraded ? "  DEGRADED" : "");
}

static void json_tier(const char *name, const struct kvg_tier_stats *t, int last)
{
	printf("\"%s\": {\"backend\": \"%s\", \"capacity_bytes\": %llu, \"bytes\": %llu, "
	       "\"blocks\": %llu, \"hits\": %llu, \"misses\": %llu, \"evictions\": %llu, "
	       "\"bytes_read\": %llu, \"bytes_written\": %llu, \"checksum_failures\": %llu, "
	       "\"io_errors\": %llu, \"promotions\": %llu, \"demotions\": %llu, "
	       "\"degraded\": %s}%s",
	       name, t->backend, (unsigned long long)t->capacity_bytes,
	       (unsigned long long)t->bytes, (unsigned long long)t->blocks,
	       (unsigned long long)t->hits, (unsigned long long)t->misses,
	       (unsigned long long)t->evictions, (unsigned long long)t->bytes_read,
	       (unsigned long long)t->bytes_written, (unsigned long long)t->checksum_failures,
	       (unsigned long long)t->io_errors, (unsigned long long)t->promotions,
	       (unsigned long long)t->demotions, t->degraded ? "true" : "false", last ? "" : ", ");
}

int cmd_stats(int argc, char **argv)
{
	struct kvg_config c;
	kvg_config_init(&c);
	c.dram_bytes = 16 << 20;
	if (gridopt_parse("stats", &argc, argv, &c))
		return 2;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			printf("usage: kvgrid stats (--dir DIR | --server HOST:PORT) "
			       "[--json]\n" GRIDOPT_HELP);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else {
			return cli_usage("stats", "unknown or incomplete option '%s' (--help)",
					 argv[i]);
		}
	}
	if (!c.dir[0] && !c.servers[0] && !c.shared_dir[0])
		return cli_usage("stats",
				 "give --dir DIR, --server HOST:PORT or --set shared_dir=DIR");
	kvg_grid *g = gridopt_open("stats", &c);
	if (!g)
		return 1;
	struct kvg_stats st;
	kvg_stats_get(g, &st);
	struct kvg_tier_stats sh;
	int has_shared = kvg_tier_stats_get(g, KVG_TIER_SHARED, &sh) == 0;
	if (json) {
		printf("{");
		json_tier("dram", &st.tier[KVG_TIER_DRAM], 0);
		json_tier("nvme", &st.tier[KVG_TIER_NVME], 0);
		if (has_shared)
			json_tier("shared", &sh, 0);
		printf("\"index_blocks\": %llu, \"index_capacity\": %llu, \"index_bytes\": %llu, "
		       "\"recovered_blocks\": %llu, \"recovery_us\": %llu",
		       (unsigned long long)st.index_blocks, (unsigned long long)st.index_capacity,
		       (unsigned long long)st.index_bytes, (unsigned long long)st.recovered_blocks,
		       (unsigned long long)st.recovery_us);
		if (c.servers[0]) {
			printf(", ");
			if (report_server(&c, 1))
				printf("\"server\": null");
		}
		printf("}\n");
	} else {
		print_tier("dram", &st.tier[KVG_TIER_DRAM]);
		print_tier("nvme", &st.tier[KVG_TIER_NVME]);
		if (has_shared)
			print_tier("shared", &sh);
		printf("index %llu of %llu blocks, %llu bytes; recovered %llu blocks in %.3f s\n",
		       (unsigned long long)st.index_blocks, (unsigned long long)st.index_capacity,
		       (unsigned long long)st.index_bytes, (unsigned long long)st.recovered_blocks,
		       st.recovery_us / 1e6);
		if (c.servers[0] && report_server(&c, 0)) {
			kvg_close(g);
			return 1;
		}
	}
	kvg_close(g);
	return 0;
}
