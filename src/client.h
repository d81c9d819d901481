/*
 * client.h - libkvgrid's client of kvgridd servers (native protocol, doc/PROTOCOL.md).
 *
 * A grid opened with cfg.servers set forwards every operation here instead of to local tiers,
 * so that an engine switches between embedded and remote by configuration alone.  Keys are
 * derived locally exactly as for an embedded grid; the server applies the tenant's salt.
 * Calls are synchronous and thread-safe; grid_remote.c runs them on the grid's workers to provide
 * the asynchronous API.  Keys are sharded over the servers by rendezvous hashing.
 */
#ifndef KVG_CLIENT_H
#define KVG_CLIENT_H

#include <stddef.h>

#include "kvgrid.h"

struct client;

int client_open(const struct kvg_config *cfg, struct client **out, char *err, size_t err_len);
void client_close(struct client *c);
/* count of consecutive keys present from keys[0] */
int client_lookup_keys(struct client *c, const kvg_key *keys, size_t n, size_t *hit_blocks);
/* the same, and tiers (may be NULL) receives the tier of each of the first *hit_blocks keys,
 * as kvg_lookup_keys; KVG_TIER_NONE where the server is too old to say */
int client_lookup_tiers(struct client *c, const kvg_key *keys, size_t n, size_t *hit_blocks,
			uint8_t *tiers);
/* per-block status in ios[i].status; returns 0 or the first error */
int client_store(struct client *c, struct kvg_io *ios, size_t n);
/* as client_store; flags as kvg_store's (KVG_STORE_NVME travels, hints do not) */
int client_store_flags(struct client *c, struct kvg_io *ios, size_t n, uint32_t flags);
int client_load(struct client *c, struct kvg_io *ios, size_t n);
int client_delete(struct client *c, const kvg_key *keys, size_t n);
int client_pin(struct client *c, const kvg_key *keys, size_t n, int pin);
int client_stats(struct client *c, struct kvg_stats *st);
/* The first node's metrics (Prometheus text, NUL-terminated in buf); 0 or an error. */
int client_metrics(struct client *c, char *buf, size_t cap, size_t *len);

#endif
