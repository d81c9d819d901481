/*
 * grid_remote.c - the remote backend (grid_remote_ops): a grid opened with cfg.servers keeps
 * no tiers of its own and forwards every call to kvgridd servers through client.c, so that an
 * engine switches between embedded and remote by configuration alone.  The request pool and
 * the workers (grid_req.c) give the remote grid the same asynchronous API as a local one:
 * a worker runs the synchronous client call of a request.
 *
 * The answers match a local grid's (include/kvgrid.h), with the differences the header
 * states: no zero-copy views or fills (kvg_view_get and kvg_fill_begin answer 0, "use
 * kvg_load / kvg_store"), no prefetch (0 scheduled: the protocol has no such operation),
 * session hints ignored.  A server that cannot be reached holds nothing usable: its keys are
 * misses, and calls on them fail with the transport's error.
 *
 * Locking: none of its own; client.c guards its connections.
 */
#include "grid.h"

static int remote_open(kvg_grid *g, char *err, size_t err_len)
{
	return client_open(&g->cfg, &g->remote, err, err_len);
}

static void remote_close(kvg_grid *g)
{
	client_close(g->remote);
	g->remote = NULL;
}

/*
 * Stores the blocks the grid's own limit accepts (cfg.max_value_bytes, what a local grid
 * checks), in runs between the ones it refuses with KVG_ETOOBIG: the limit is this grid's
 * configuration, whatever the servers would take.
 */
static void remote_store(kvg_grid *g, struct kvg_req *r)
{
	uint64_t max = g->cfg.max_value_bytes < UINT32_MAX ? g->cfg.max_value_bytes : UINT32_MAX;
	size_t from = 0;
	for (size_t i = 0; i <= r->n; i++) {
		int too_big = i < r->n && r->ios[i].len > max;
		if (i < r->n && !too_big)
			continue;
		if (i > from)
			client_store_flags(g->remote, r->ios + from, i - from, r->opts.flags);
		if (too_big)
			r->ios[i].status = KVG_ETOOBIG;
		from = i + 1;
	}
}

/* A store or load batch as client calls; each block then ends as a local one would. */
static void remote_run(kvg_grid *g, struct kvg_req *r)
{
	int load = r->op == REQ_LOAD;
	for (size_t i = 0; load && i < r->n; i++)
		r->ios[i].tier = KVG_TIER_NONE;
	if (load)
		client_load(g->remote, r->ios, r->n);
	else
		remote_store(g, r);
	for (size_t i = 0; i < r->n; i++) {
		if (load && r->layers && r->ios[i].status == 0)
			req_layer_arrived(r, 0, r->layers);
		block_done(r, i, r->ios[i].status);
	}
}

static int remote_lookup_keys(kvg_grid *g, const kvg_key *keys, size_t n, size_t *hit_blocks,
			      uint8_t *tiers)
{
	return client_lookup_tiers(g->remote, keys, n, hit_blocks, tiers);
}

/* The servers count what they pinned, as a local grid does: missing keys are skipped. */
static int remote_pin(kvg_grid *g, const kvg_key *keys, size_t n, int pin)
{
	return client_pin(g->remote, keys, n, pin);
}

static int remote_delete(kvg_grid *g, const kvg_key *keys, size_t n)
{
	return client_delete(g->remote, keys, n);
}

/* The protocol has no prefetch: nothing is scheduled (kvg_prefetch's "0 without both
 * tiers"); the servers promote NVMe hits on load as their configuration says. */
static int remote_prefetch(kvg_grid *g, const kvg_key *keys, size_t n)
{
	return 0;
}

/* The servers' counters, summed; zeros for the ones that cannot be reached. */
static void remote_stats(kvg_grid *g, struct kvg_stats *st)
{
	client_stats(g->remote, st);
}

const struct grid_ops grid_remote_ops = {
    .name = "remote",
    .open = remote_open,
    .close = remote_close,
    .run = remote_run,
    .lookup_keys = remote_lookup_keys,
    .pin = remote_pin,
    .del = remote_delete,
    .prefetch = remote_prefetch,
    .stats = remote_stats,
    /* views and fills lend DRAM arena pieces: the remote grid has no arena here */
};
