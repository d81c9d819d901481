/*
 * grid.c - the public grid API of kvgrid.h: open and close, the configuration checks, key
 * derivation, and every call that has a backend behind it.  A grid's backend is chosen once,
 * at open: the local tiers (grid_local_ops: DRAM arena and NVMe segments) or kvgridd servers
 * (grid_remote_ops, when cfg.servers is set).  Each function here checks its arguments, then
 * makes one call through g->ops; grid.h lists the other files and the locking rules.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "grid.h"
#include "key.h"

/* ---- configuration, open and close ------------------------------------------------------ */

const struct kvg_config *kvg_config_of(const kvg_grid *g)
{
	return &g->cfg;
}

/* A local grid's NVMe capacity: cfg.nvme_bytes, checked against the filesystem, or, when 0,
 * decided from it (tier_nvme_space.c); cfg.nvme_bytes then holds the capacity in effect. */
static int size_nvme(kvg_grid *g, char *err, size_t len)
{
	struct kvg_config *c = &g->cfg;
	if (!c->dir[0] || c->servers[0])
		return 0;
	int rc = nvme_space(c, &g->nvme_space, err, len);
	if (!rc)
		c->nvme_bytes = g->nvme_space.capacity_bytes;
	return rc;
}

static int validate(struct kvg_config *c, char *err, size_t len)
{
	if (c->block_tokens < 16 || c->block_tokens > 1024)
		return err_set(err, len, KVG_ECONFIG, "block_tokens must be between 16 and 1024");
	if (c->chunk_bytes < KVG_ALIGN || c->chunk_bytes % KVG_ALIGN)
		return err_set(err, len, KVG_ECONFIG, "chunk_bytes must be a multiple of 4096");
	if (!c->dram_bytes && !c->dir[0] && !c->servers[0])
		return err_set(err, len, KVG_ECONFIG, "no tier: set dram_bytes, dir, or servers");
	if (c->dram_bytes && c->dram_bytes < c->chunk_bytes)
		return err_set(err, len, KVG_ECONFIG, "dram_bytes is smaller than one chunk");
	if (c->dir[0] && (!c->segment_bytes || c->segment_bytes % KVG_ALIGN))
		return err_set(err, len, KVG_ECONFIG, "segment_bytes must be a multiple of 4096");
	if (c->dir[0] && c->nvme_bytes && c->nvme_bytes < 2 * c->segment_bytes)
		return err_set(err, len, KVG_ECONFIG, "nvme_bytes must hold at least two segments");
	if (!policy_find(c->policy))
		return err_set(err, len, KVG_ECONFIG, "policy: unknown name");
	if (c->layers > 4096 || (c->layers && c->layers > REC_PARTS_MAX && c->dir[0]))
		return err_set(err, len, KVG_ECONFIG,
			       "layers: more than the record format's 496 parts");
	return 0;
}

/* Limits derived from the tier sizes in effect (after size_nvme). */
static void derive_limits(struct kvg_config *c)
{
	if (!c->max_blocks) {
		uint64_t m = (c->dram_bytes / c->chunk_bytes) + 64;
		if (c->dir[0])
			m += c->nvme_bytes / (64u << 10);
		c->max_blocks = m;
	}
	if (c->max_blocks >= UINT32_MAX)
		c->max_blocks = UINT32_MAX - 1;
}

static void grid_free(kvg_grid *g)
{
	log_close(&g->log);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->lock_cv);
	pthread_mutex_destroy(&g->qlock);
	pthread_cond_destroy(&g->qcv);
	free(g);
}

int kvg_open(const struct kvg_config *cfg, kvg_grid **out, char *err, size_t err_len)
{
	if (!cfg || !out)
		return -EINVAL;
	kvg_grid *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	int rc = config_import(&g->cfg, cfg, err, err_len);
	rc = rc ? rc : validate(&g->cfg, err, err_len);
	rc = rc ? rc : size_nvme(g, err, err_len);
	if (rc) {
		free(g);
		return rc;
	}
	derive_limits(&g->cfg);
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->lock_cv, NULL);
	pthread_mutex_init(&g->qlock, NULL);
	pthread_cond_init(&g->qcv, NULL);
	log_open(&g->log, g->cfg.log_file, (int)g->cfg.log_level);
	key_namespace(&g->cfg, &g->ns);
	g->block_bytes = kvg_config_block_bytes(&g->cfg);
	g->ops = g->cfg.servers[0] ? &grid_remote_ops : &grid_local_ops; /* the one choice */
	rc = g->ops->open(g, err, err_len);
	if (!rc)
		rc = grid_workers_start(g);
	if (rc) {
		kvg_close(g);
		return rc;
	}
	*out = g;
	return 0;
}

void kvg_close(kvg_grid *g)
{
	if (!g)
		return;
	grid_workers_stop(g);
	grid_reqs_drain(g);
	g->ops->close(g);
	grid_reqs_free(g);
	grid_free(g);
}

/* ---- keys (derived here, the same for either backend) ------------------------------------ */

size_t kvg_block_keys(const kvg_grid *g, const uint32_t *tokens, size_t n_tokens,
		      const kvg_key *parent, kvg_key *keys, size_t max_keys)
{
	size_t bt = g->cfg.block_tokens, n = 0;
	const kvg_key *prev = parent;
	for (size_t off = 0; off + bt <= n_tokens && n < max_keys; off += bt, n++) {
		key_block(g->cfg.hash, &g->ns, prev, tokens + off, bt, &keys[n]);
		prev = &keys[n];
	}
	return n;
}

void kvg_raw_key(const kvg_grid *g, const void *raw, size_t len, kvg_key *key)
{
	key_raw(g->cfg.hash, &g->ns, raw, len, key);
}

/* ---- lookup ---------------------------------------------------------------------------------- */

int kvg_lookup_keys(kvg_grid *g, const kvg_key *keys, size_t n_keys, size_t *hit_blocks,
		    uint8_t *tiers)
{
	if (!g || (!keys && n_keys) || !hit_blocks)
		return -EINVAL;
	return g->ops->lookup_keys(g, keys, n_keys, hit_blocks, tiers);
}

int kvg_lookup(kvg_grid *g, const uint32_t *tokens, size_t n_tokens, size_t *hit_tokens)
{
	if (!g || (!tokens && n_tokens) || !hit_tokens)
		return -EINVAL;
	kvg_key keys[64];
	const kvg_key *parent = NULL;
	kvg_key last;
	size_t bt = g->cfg.block_tokens, done = 0;
	*hit_tokens = 0;
	while (done + bt <= n_tokens) {
		size_t n = kvg_block_keys(g, tokens + done, n_tokens - done, parent, keys, 64);
		size_t hit;
		int rc = kvg_lookup_keys(g, keys, n, &hit, NULL);
		if (rc)
			return rc;
		*hit_tokens += hit * bt;
		if (hit < n)
			break;
		last = keys[n - 1];
		parent = &last;
		done += n * bt;
	}
	return 0;
}

/* ---- views and fills: zero-copy DRAM, where the backend has an arena --------------------- */

int kvg_view_get(kvg_grid *g, const kvg_key *key, struct iovec *iov, int max_iov, size_t *len,
		 kvg_view **view)
{
	if (!g->ops->view_get)
		return 0; /* "load it with kvg_load" */
	return g->ops->view_get(g, key, iov, max_iov, len, view);
}

void kvg_view_release(kvg_grid *g, kvg_view *view)
{
	if (view && g->ops->view_release)
		g->ops->view_release(g, view);
}

int kvg_fill_begin(kvg_grid *g, size_t len, struct iovec *iov, int max_iov, struct kvg_fill *fill)
{
	fill->first = CHUNK_END; /* commit and abort of a fill that never began are harmless */
	if (!g->ops->fill_begin)
		return 0; /* "use kvg_store" */
	return g->ops->fill_begin(g, len, iov, max_iov, fill);
}

void kvg_fill_abort(kvg_grid *g, struct kvg_fill *fill)
{
	if (fill->first != CHUNK_END && g->ops->fill_abort)
		g->ops->fill_abort(g, fill);
	fill->first = CHUNK_END;
}

int kvg_fill_commit(kvg_grid *g, struct kvg_fill *fill, const kvg_key *key, uint32_t depth,
		    uint32_t flags, int replace)
{
	if (fill->first == CHUNK_END || !g->ops->fill_commit)
		return KVG_EFULL; /* no reservation: nothing to publish */
	if (replace)
		kvg_delete(g, key, 1);
	return g->ops->fill_commit(g, fill, key, depth, flags);
}

/* ---- pin, delete, prefetch, stats -------------------------------------------------------------
 */

int kvg_pin(kvg_grid *g, const kvg_key *keys, size_t n)
{
	if (!g || (!keys && n))
		return -EINVAL;
	return n ? g->ops->pin(g, keys, n, 1) : 0;
}

int kvg_unpin(kvg_grid *g, const kvg_key *keys, size_t n)
{
	if (!g || (!keys && n))
		return -EINVAL;
	return n ? g->ops->pin(g, keys, n, 0) : 0;
}

int kvg_delete(kvg_grid *g, const kvg_key *keys, size_t n)
{
	if (!g || (!keys && n))
		return -EINVAL;
	return n ? g->ops->del(g, keys, n) : 0;
}

int kvg_prefetch(kvg_grid *g, const kvg_key *keys, size_t n)
{
	if (!g || (!keys && n))
		return -EINVAL;
	return n ? g->ops->prefetch(g, keys, n) : 0;
}

void kvg_stats_get(kvg_grid *g, struct kvg_stats *st)
{
	memset(st, 0, sizeof(*st));
	g->ops->stats(g, st);
}
