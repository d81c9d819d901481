/*
 * srv.h - kvgridd's server-wide state: its configuration, its tenants and the one grid all
 * protocols share (doc/SERVER.md).
 *
 * main.c fills struct srv from flags and the config file, opens the grid, then starts the
 * workers (loop.c) and the metrics endpoint (metrics.c).  After start-up the struct is read
 * only, except the counters, which are atomics updated with relaxed ordering.
 */
#ifndef KVG_SRV_H
#define KVG_SRV_H

#include <stdint.h>
#include <stddef.h>

#include "kvgrid.h"

#define SRV_TENANTS_MAX	    64
#define SRV_TENANT_NAME_MAX 64
#define SRV_TOKEN_MAX	    256
#define SRV_LISTENERS_MAX   4

enum srv_proto { PROTO_ANY = 0, PROTO_RESP = 1, PROTO_LM = 2, PROTO_NATIVE = 3 };

/* One identity: who a token authenticates as.  Index 0 is the default tenant, used when the
 * server runs without auth. */
struct srv_tenant {
	char name[SRV_TENANT_NAME_MAX];
	char token[SRV_TOKEN_MAX];
	uint64_t quota_bytes; /* 0: unlimited */
	uint32_t index;
};

struct srv_listen {
	int port;  /* 0: ephemeral; the bound port is written back here */
	int proto; /* enum srv_proto: PROTO_ANY tells protocols apart by their first bytes */
};

struct srv_config {
	char bind[64];
	int port, resp_port, lm_port, native_port;   /* -1: off */
	struct srv_listen listen[SRV_LISTENERS_MAX]; /* built from the ports above */
	int n_listen;
	int metrics_port; /* -1: no metrics endpoint */
	uint32_t threads;
	uint32_t conns_max;
	uint64_t value_max;    /* largest value a client may store */
	uint64_t frame_max;    /* largest request: value_max plus headers, batches */
	uint64_t track_blocks; /* blocks the quota tracker can account for */
	uint64_t quota_bytes;  /* default quota of every tenant; 0: unlimited */
	uint32_t drain_ms;     /* how long shutdown waits for replies to be sent */
	char auth_file[1024];
	char log_file[1024];
	char port_file[1024];
	struct kvg_config grid;
};

struct quota;
struct metrics;

struct srv {
	struct srv_config cfg;
	kvg_grid *grid;
	struct quota *quota;
	struct metrics *metrics;
	struct srv_tenant tenants[SRV_TENANTS_MAX];
	uint32_t n_tenants;
	int auth; /* 1: clients must authenticate */
};

/* Log one line to stderr (which SIGHUP points at the log file again). */
void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Finds the tenant a token authenticates; NULL if none.  Constant time in the token. */
const struct srv_tenant *srv_auth(const struct srv *s, const char *token, size_t len);

#endif
