/*
 * grid_shared.c - the local backend over the shared tier (tier_shared.c): a request's
 * blocks run in parallel on the tier's threads, stores are published to the tier before
 * they enter the local tiers (cfg.shared_write_through) or, demoted, when they leave them
 * (cfg.shared_demote: grid_move.c decides which), loads that miss locally read the
 * tier and promote what they find into DRAM or NVMe (cfg.promote_on_hit), and lookups
 * carry on into the tier past the last local hit.
 *
 * Locking: nothing here holds g->lock across tier I/O; store_one() and load_one() take it
 * as they do for any request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grid.h"

/* A store's block: published to the shared tier (io->tier then says KVG_TIER_SHARED, which
 * block_done() reads: the block is stored even if no local tier has room), then stored
 * locally as any block. */
static void store_block(kvg_grid *g, struct kvg_req *r, size_t i)
{
	struct kvg_io *io = &r->ios[i];
	io->tier = KVG_TIER_NONE;
	if (g->cfg.shared_write_through && io->len <= g->cfg.max_value_bytes &&
	    shared_publish(g->sh, &io->key, io->buf, io->len, io->depth, parts_for(g, io->len)) ==
		0)
		io->tier = KVG_TIER_SHARED;
	store_one(g, r, i);
}

static void run_block(void *ctx, size_t i)
{
	struct kvg_req *r = ctx;
	if (r->op == REQ_STORE)
		store_block(r->g, r, i);
	else
		load_one(r->g, r, i);
}

void grid_shared_run(kvg_grid *g, struct kvg_req *r)
{
	shared_parallel(g->sh, r->n, run_block, r);
}

/*
 * Copies a block found in the shared tier into the local tiers, through the store path
 * (so eviction, demotion and write-through behave as for any store), on this thread: a
 * private request of one block, waited for before the caller's buffer is handed back.
 */
static void promote_copy(kvg_grid *g, const kvg_key *key, void *buf, size_t len, uint32_t depth)
{
	struct kvg_io io = {
	    .key = *key, .buf = buf, .len = len, .depth = depth, .tier = KVG_TIER_NONE};
	struct kvg_req r;
	memset(&r, 0, sizeof(r));
	r.g = g;
	r.op = REQ_STORE;
	r.opts.flags = STORE_IN_SHARED;
	r.ios = &io;
	r.n = 1;
	r.pending = 1;
	r.in_use = 1;
	r.seq = __atomic_add_fetch(&g->req_seq, 1, __ATOMIC_RELAXED);
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	store_one(g, &r, 0);
	pthread_mutex_lock(&r.mu);
	while (!r.complete)
		pthread_cond_wait(&r.cv, &r.mu);
	pthread_mutex_unlock(&r.mu);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	if (io.status == 0) {
		pthread_mutex_lock(&g->lock);
		g->st.tier[has_dram(g) ? KVG_TIER_DRAM : KVG_TIER_NVME].promotions++;
		pthread_mutex_unlock(&g->lock);
	}
}

int shared_demotes(const kvg_grid *g)
{
	return g->sh && g->cfg.shared_demote;
}

static void demote_block(void *ctx, size_t i)
{
	struct shared_demote *d = (struct shared_demote *)ctx + i;
	kvg_grid *g = d->g;
	d->present = 0;
	if (d->rc) /* the caller could not get its bytes */
		return;
	/* one this grid saw in the tier may have been evicted or deleted there since, by any
	 * host: one stat() says, and a block gone from there is published again */
	if (d->check && shared_exists(g->sh, &d->key)) {
		d->present = 1;
		return;
	}
	d->rc = shared_publishv(g->sh, &d->key, d->iov, d->iovcnt, d->depth, d->parts, NULL);
}

/* Blocks leaving the local tiers (cfg.shared_demote): published in parallel on the tier's
 * threads and the caller's; d[i].rc says which made it (one set non-zero by the caller is
 * skipped).  g->lock not held. */
void grid_shared_demote(kvg_grid *g, struct shared_demote *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i].g = g;
	shared_parallel(g->sh, n, demote_block, d);
}

struct present_ctx {
	kvg_grid *g;
	const kvg_key *keys;
	uint8_t *present;
};

static void present_block(void *ctx, size_t i)
{
	struct present_ctx *c = ctx;
	c->present[i] = (uint8_t)shared_exists(c->g->sh, &c->keys[i]);
}

void grid_shared_present(kvg_grid *g, const kvg_key *keys, uint8_t *present, size_t n)
{
	struct present_ctx c = {g, keys, present};
	shared_parallel(g->sh, n, present_block, &c);
}

void grid_shared_hit(kvg_grid *g, const struct entry *e)
{
	if (g->sh && e->in_shared)
		shared_touch_later(g->sh, &e->key);
}

/* A load's block that no local tier holds: read from the shared tier.  g->lock not held. */
void grid_shared_load(kvg_grid *g, struct kvg_req *r, size_t i)
{
	struct kvg_io *io = &r->ios[i];
	size_t len = 0;
	uint32_t depth = 0;
	int rc = shared_read(g->sh, &io->key, io->buf, io->len, &len, &depth);
	if (rc == KVG_EBUFSIZE)
		io->len = len;
	if (rc) {
		block_done(r, i, rc);
		return;
	}
	io->len = len;
	io->tier = KVG_TIER_SHARED;
	if (r->layers)
		req_layer_arrived(r, 0, r->layers);
	if (g->cfg.promote_on_hit && !(r->opts.flags & KVG_LOAD_NOPROMOTE))
		promote_copy(g, &io->key, io->buf, len, depth);
	block_done(r, i, 0);
}

int grid_shared_refetch(kvg_grid *g, struct kvg_req *r, size_t i)
{
	struct kvg_io *io = &r->ios[i];
	size_t len = 0;
	uint32_t depth = 0;
	int rc = shared_read(g->sh, &io->key, io->buf, io->len, &len, &depth);
	if (rc)
		return rc;
	io->len = len;
	io->tier = KVG_TIER_SHARED;
	if (r->layers)
		req_layer_arrived(r, 0, r->layers);
	return 0;
}

int kvg_tier_stats_get(kvg_grid *g, int tier, struct kvg_tier_stats *out)
{
	if (!g || !out || tier < 0)
		return -EINVAL;
	if (tier == KVG_TIER_SHARED) {
		if (!g->sh)
			return KVG_ENOTFOUND;
		shared_stats(g->sh, out);
		return 0;
	}
	if (tier >= KVG_TIER_COUNT)
		return KVG_ENOTFOUND;
	struct kvg_stats st;
	kvg_stats_get(g, &st);
	*out = st.tier[tier];
	return 0;
}
