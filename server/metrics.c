/*
 * metrics.c - Prometheus text rendering and the tiny HTTP/1.0 server in front of it.
 *
 * The HTTP side is deliberately minimal: one request per connection, read with a deadline,
 * answered and closed.  Scrapes are rare, so this thread allocates its buffer per scrape.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "quota.h"

static const uint64_t metrics_le_us[METRICS_BUCKETS] = {
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000, UINT64_MAX};
static const char *const metrics_op_name[MOP_COUNT] = {"get", "set",	"exists",
						       "del", "lookup", "other"};
static const char *const metrics_proto_name[4] = {"unknown", "resp", "lm", "native"};

uint64_t metrics_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void metrics_observe(struct metrics *m, int op, uint64_t us)
{
	int b = 0;
	while (b < METRICS_BUCKETS - 1 && us > metrics_le_us[b])
		b++;
	metrics_add(&m->lat_bucket[op][b], 1);
	metrics_add(&m->lat_count[op], 1);
	metrics_add(&m->lat_sum_us[op], us);
}

struct metrics_out {
	char *buf;
	size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void mo(struct metrics_out *o, const char *fmt, ...)
{
	if (o->len + 1 >= o->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n < o->cap - o->len ? (size_t)n : o->cap - o->len - 1;
}

static uint64_t ld(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static void metrics_render_grid(struct srv *s, struct metrics_out *o)
{
	struct kvg_stats st;
	kvg_stats_get(s->grid, &st);
	static const char *const tn[] = {"dram", "nvme", "shared"};
	struct kvg_tier_stats tiers[3] = {st.tier[KVG_TIER_DRAM], st.tier[KVG_TIER_NVME]};
	int ntiers = kvg_tier_stats_get(s->grid, KVG_TIER_SHARED, &tiers[2]) == 0 ? 3 : 2;
	static const char *const f[] = {"capacity_bytes",
					"bytes",
					"blocks",
					"hits_total",
					"misses_total",
					"evictions_total",
					"read_bytes_total",
					"written_bytes_total",
					"checksum_failures_total",
					"io_errors_total",
					"promotions_total",
					"demotions_total"};
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		mo(o, "# TYPE kvgrid_tier_%s %s\n", f[k],
		   strstr(f[k], "total") ? "counter" : "gauge");
		for (int t = 0; t < ntiers; t++) {
			const struct kvg_tier_stats *ts = &tiers[t];
			const uint64_t v[] = {
			    ts->capacity_bytes, ts->bytes,	   ts->blocks,
			    ts->hits,		ts->misses,	   ts->evictions,
			    ts->bytes_read,	ts->bytes_written, ts->checksum_failures,
			    ts->io_errors,	ts->promotions,	   ts->demotions};
			mo(o, "kvgrid_tier_%s{tier=\"%s\"} %llu\n", f[k], tn[t],
			   (unsigned long long)v[k]);
		}
	}
	mo(o, "kvgrid_tier_degraded{tier=\"nvme\"} %d\n", st.tier[KVG_TIER_NVME].degraded);
	mo(o, "kvgrid_index_blocks %llu\nkvgrid_index_capacity %llu\n",
	   (unsigned long long)st.index_blocks, (unsigned long long)st.index_capacity);
	mo(o, "kvgrid_store_failures_total %llu\n", (unsigned long long)st.store_failures);
}

static void metrics_render_tenants(struct srv *s, struct metrics_out *o)
{
	struct metrics *m = s->metrics;
	mo(o, "# TYPE kvgrid_tenant_bytes gauge\n# TYPE kvgrid_tenant_blocks gauge\n");
	for (uint32_t t = 0; t < s->n_tenants; t++) {
		struct quota_usage u;
		quota_usage(s->quota, t, &u);
		const char *n = s->tenants[t].name[0] ? s->tenants[t].name : "default";
		mo(o, "kvgrid_tenant_bytes{tenant=\"%s\"} %llu\n", n, (unsigned long long)u.bytes);
		mo(o, "kvgrid_tenant_blocks{tenant=\"%s\"} %llu\n", n,
		   (unsigned long long)u.blocks);
		mo(o, "kvgrid_tenant_quota_evictions_total{tenant=\"%s\"} %llu\n", n,
		   (unsigned long long)u.evictions);
		mo(o, "kvgrid_tenant_hits_total{tenant=\"%s\"} %llu\n", n,
		   (unsigned long long)ld(&m->tenant_hits[t]));
		mo(o, "kvgrid_tenant_misses_total{tenant=\"%s\"} %llu\n", n,
		   (unsigned long long)ld(&m->tenant_misses[t]));
		mo(o, "kvgrid_tenant_requests_total{tenant=\"%s\"} %llu\n", n,
		   (unsigned long long)ld(&m->tenant_requests[t]));
	}
	mo(o, "kvgrid_tenant_untracked_blocks_total %llu\n",
	   (unsigned long long)quota_untracked(s->quota));
}

static void metrics_render_latency(struct metrics *m, struct metrics_out *o)
{
	mo(o, "# TYPE kvgrid_request_duration_seconds histogram\n");
	for (int op = 0; op < MOP_COUNT; op++) {
		uint64_t cum = 0;
		for (int b = 0; b < METRICS_BUCKETS; b++) {
			cum += ld(&m->lat_bucket[op][b]);
			if (metrics_le_us[b] == UINT64_MAX)
				mo(o,
				   "kvgrid_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} "
				   "%llu\n",
				   metrics_op_name[op], (unsigned long long)cum);
			else
				mo(o,
				   "kvgrid_request_duration_seconds_bucket{op=\"%s\",le=\"%g\"} "
				   "%llu\n",
				   metrics_op_name[op], (double)metrics_le_us[b] / 1e6,
				   (unsigned long long)cum);
		}
		mo(o, "kvgrid_request_duration_seconds_sum{op=\"%s\"} %.6f\n", metrics_op_name[op],
		   (double)ld(&m->lat_sum_us[op]) / 1e6);
		mo(o, "kvgrid_request_duration_seconds_count{op=\"%s\"} %llu\n",
		   metrics_op_name[op], (unsigned long long)ld(&m->lat_count[op]));
	}
}

size_t metrics_render(struct srv *s, char *buf, size_t cap)
{
	struct metrics *m = s->metrics;
	struct metrics_out o = {.buf = buf, .cap = cap};
	buf[0] = 0;
	mo(&o, "# TYPE kvgrid_connections gauge\nkvgrid_connections %llu\n",
	   (unsigned long long)ld(&m->conns_open));
	mo(&o, "kvgrid_connections_total %llu\nkvgrid_connections_refused_total %llu\n",
	   (unsigned long long)ld(&m->conns_total), (unsigned long long)ld(&m->conns_refused));
	for (int p = 1; p < 4; p++)
		mo(&o, "kvgrid_requests_total{proto=\"%s\"} %llu\n", metrics_proto_name[p],
		   (unsigned long long)ld(&m->requests[p]));
	mo(&o, "kvgrid_protocol_errors_total %llu\nkvgrid_auth_failures_total %llu\n",
	   (unsigned long long)ld(&m->proto_errors), (unsigned long long)ld(&m->auth_failures));
	mo(&o, "kvgrid_net_read_bytes_total %llu\nkvgrid_net_written_bytes_total %llu\n",
	   (unsigned long long)ld(&m->bytes_in), (unsigned long long)ld(&m->bytes_out));
	mo(&o, "kvgrid_hits_total %llu\nkvgrid_misses_total %llu\nkvgrid_errors_total %llu\n",
	   (unsigned long long)ld(&m->hits), (unsigned long long)ld(&m->misses),
	   (unsigned long long)ld(&m->errors));
	mo(&o, "kvgrid_async_loads_total %llu\n", (unsigned long long)ld(&m->async_loads));
	mo(&o, "kvgrid_direct_sets_total %llu\n", (unsigned long long)ld(&m->direct_sets));
	metrics_render_latency(m, &o);
	metrics_render_grid(s, &o);
	metrics_render_tenants(s, &o);
	return o.len;
}

static void metrics_answer(struct srv *s, int fd)
{
	char req[4096];
	size_t n = 0;
	uint64_t deadline = metrics_now_us() + 2000000;
	while (n < sizeof(req) - 1 && !memmem(req, n, "\r\n\r\n", 4)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t now = metrics_now_us();
		if (now >= deadline || poll(&p, 1, (int)((deadline - now) / 1000) + 1) <= 0)
			return;
		ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
		if (r <= 0)
			return;
		n += (size_t)r;
	}
	size_t cap = 1 << 20;
	char *body = malloc(cap);
	if (!body)
		return;
	const char *status = "200 OK";
	size_t len;
	if (n >= 12 && memcmp(req, "GET /metrics", 12) == 0) {
		len = metrics_render(s, body, cap);
	} else {
		status = "404 Not Found";
		len = (size_t)snprintf(body, cap, "try GET /metrics\n");
	}
	char hdr[256];
	int h = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, len);
	if (send(fd, hdr, (size_t)h, MSG_NOSIGNAL) == h) {
		size_t off = 0;
		while (off < len) {
			ssize_t w = send(fd, body + off, len - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	free(body);
}

void metrics_serve(struct srv *s, int fd, int stop_fd)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = stop_fd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[1].revents)
			return;
		if (!(p[0].revents & POLLIN))
			continue;
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		metrics_answer(s, c);
		close(c);
	}
}
