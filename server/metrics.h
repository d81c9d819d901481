/*
 * metrics.h - kvgridd's counters and its Prometheus text endpoint (GET /metrics over HTTP on
 * its own port).
 *
 * Counters are plain uint64_t updated with relaxed atomic adds from every worker: cheap on
 * the hot path, exact at any scrape.  Latencies go into fixed histogram buckets per
 * operation.  The endpoint runs on its own thread and also renders the grid's counters
 * (kvg_stats_get) and each tenant's ledger (quota.h).
 */
#ifndef KVG_METRICS_H
#define KVG_METRICS_H

#include <stdint.h>

#include "srv.h"

enum metrics_op { MOP_GET, MOP_SET, MOP_EXISTS, MOP_DEL, MOP_LOOKUP, MOP_OTHER, MOP_COUNT };
#define METRICS_BUCKETS 14

struct metrics {
	uint64_t conns_total, conns_open, conns_refused;
	uint64_t requests[4]; /* by enum srv_proto */
	uint64_t proto_errors, auth_failures;
	uint64_t bytes_in, bytes_out;
	uint64_t hits, misses, errors;
	uint64_t async_loads; /* loads from NVMe that did not block a worker */
	uint64_t direct_sets; /* SET values received straight into the arena */
	uint64_t lat_count[MOP_COUNT], lat_sum_us[MOP_COUNT];
	uint64_t lat_bucket[MOP_COUNT][METRICS_BUCKETS];
	uint64_t tenant_hits[SRV_TENANTS_MAX], tenant_misses[SRV_TENANTS_MAX];
	uint64_t tenant_requests[SRV_TENANTS_MAX];
};

static inline void metrics_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static inline void metrics_sub(uint64_t *c, uint64_t v)
{
	__atomic_fetch_sub(c, v, __ATOMIC_RELAXED);
}

/* Records one operation of us microseconds. */
void metrics_observe(struct metrics *m, int op, uint64_t us);

/* Microseconds of CLOCK_MONOTONIC. */
uint64_t metrics_now_us(void);

/* Renders the Prometheus text into buf; returns its length (truncated to cap - 1). */
size_t metrics_render(struct srv *s, char *buf, size_t cap);

/* Serves GET /metrics on fd (a listening socket) until stop_fd (an eventfd) is readable.
 * Runs on the caller's thread. */
void metrics_serve(struct srv *s, int fd, int stop_fd);

#endif
