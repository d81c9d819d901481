/*
 * grid_open.c - the local backend's life cycle: open (the index, the policies, the DRAM
 * arena, the NVMe tier and the recovery of its index), and close (DRAM-only blocks written
 * back to NVMe so that a reopen finds them, then the NVMe checkpoint).
 *
 * Locking: recovery runs inside nvme_open() on the opening thread before any other thread
 * can see the grid, so recovered_cb() takes no lock.  Close runs after the workers have
 * stopped and every request has finished; flush_dram() still takes g->lock because
 * write_back() expects it (and drops it around its writes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "grid.h"

/* ---- open and recovery ------------------------------------------------------------------- */

/*
 * A good record found while recovering (locked).  The newest record of a key (by seq) wins; a
 * tombstone wins like any record and is remembered (a slot with no tier) until recovery
 * ends, so that an older copy found later in another segment stays deleted.
 */
static void recovered_add(kvg_grid *g, const struct nvme_recovered *r)
{
	kvg_key key;
	memcpy(key.bytes, r->hdr.key, KVG_KEY_BYTES);
	uint32_t s = index_find(&g->ix, &key);
	if (s != SLOT_NONE) {
		if (g->recover_seq[s] > r->hdr.seq)
			return; /* a newer record of this key is already known */
		if (g->ix.e[s].state & E_NVME)
			drop_nvme(g, s);
	} else {
		s = index_add(&g->ix, &key);
		if (s == SLOT_NONE)
			return; /* index full: the rest stay on disk, unindexed */
	}
	struct entry *e = &g->ix.e[s];
	g->recover_seq[s] = r->hdr.seq;
	if (r->hdr.flags & REC_F_TOMBSTONE)
		return; /* swept by forget_tombstones() */
	e->len = (uint32_t)r->hdr.payload_len;
	e->depth = r->hdr.depth;
	/* perhaps published before the restart (the bit is not on disk): checked in the tier
	 * before it is published again, and its local hits refresh the object if it is there */
	e->in_shared = g->cfg.shared_dir[0] != 0;
	struct policy_block b = pblock(g, e);
	add_nvme(g, s, &r->loc, &b);
}

static void recovered_cb(void *ctx, const struct nvme_recovered *r)
{
	kvg_grid *g = ctx;
	/* no other thread sees the grid yet: the lock is for the functions that assert it */
	pthread_mutex_lock(&g->lock);
	recovered_add(g, r);
	pthread_mutex_unlock(&g->lock);
}

/* After recovery: the slots that only remembered a deletion go. */
static void forget_tombstones(kvg_grid *g)
{
	for (uint32_t s = 0; s < g->ix.cap; s++) {
		struct entry *e = &g->ix.e[s];
		if ((e->state & E_USED) && !(e->state & (E_DRAM | E_NVME | E_FILLING)))
			index_del(&g->ix, s);
	}
}

int grid_local_open(kvg_grid *g, char *err, size_t err_len)
{
	const struct kvg_config *c = &g->cfg;
	int rc = index_init(&g->ix, (uint32_t)c->max_blocks);
	if (rc)
		return err_set(err, err_len, rc, "out of memory for the index");
	g->pol_ops = policy_find(c->policy);
	for (int t = 0; t < KVG_TIER_COUNT; t++) {
		uint64_t cap = t == KVG_TIER_DRAM ? c->dram_bytes : c->nvme_bytes;
		g->pol[t] = g->pol_ops->create((uint32_t)c->max_blocks, cap, c);
		if (!g->pol[t])
			return err_set(err, err_len, -ENOMEM, "out of memory for the policy");
	}
	if (c->dram_bytes) {
		rc = arena_init(&g->arena, c->dram_bytes, c->chunk_bytes, c->hugepages, c->mlock);
		if (rc) {
			if (err)
				snprintf(err, err_len, "dram_bytes: cannot map %llu bytes: %s",
					 (unsigned long long)c->dram_bytes, strerror(-rc));
			return rc;
		}
	}
	if (c->dir[0]) {
		g->recover_seq = calloc(c->max_blocks, sizeof(uint64_t));
		if (!g->recover_seq)
			return -ENOMEM;
		uint64_t t0 = now_us();
		rc = nvme_open(c, &g->log, &g->nv, recovered_cb, g, err, err_len);
		free(g->recover_seq);
		g->recover_seq = NULL;
		if (rc)
			return rc;
		forget_tombstones(g);
		g->st.recovery_us = now_us() - t0;
		g->st.recovered_blocks = g->st.tier[KVG_TIER_NVME].blocks;
		log_msg(&g->log, LOG_INFO, "%s: recovered %llu blocks in %.3f s (%s)", c->dir,
			(unsigned long long)g->st.recovered_blocks, g->st.recovery_us / 1e6,
			nvme_backend(g->nv));
		log_msg(&g->log, LOG_INFO,
			"%s: NVMe capacity %llu MiB (%s); %llu MiB free on its filesystem", c->dir,
			(unsigned long long)(c->nvme_bytes >> 20),
			g->nvme_space.automatic ? "automatic" : "nvme_bytes",
			(unsigned long long)(g->nvme_space.free_bytes >> 20));
	}
	if (c->shared_dir[0]) {
		rc = shared_open(c, &g->log, &g->sh, err, err_len);
		if (rc)
			return rc;
	}
	g->st.index_capacity = g->ix.cap;
	g->st.index_bytes = index_bytes(&g->ix) + 2ull * g->pol_ops->bytes_per_slot * g->ix.cap;
	if (g->nv && has_dram(g) && c->demote_on_evict && c->dram_free_bytes) {
		uint64_t k = (c->dram_free_bytes + g->arena.chunk_bytes - 1) / g->arena.chunk_bytes;
		g->clean_chunks = (uint32_t)(k < g->arena.chunks / 4 ? k : g->arena.chunks / 4);
	}
	return 0;
}

/* ---- close and checkpoint ------------------------------------------------------------------ */

struct ckpt_iter {
	kvg_grid *g;
	uint32_t next;
};

static int ckpt_next(void *ctx, struct nvme_ckpt_ent *out)
{
	struct ckpt_iter *it = ctx;
	struct index *ix = &it->g->ix;
	while (it->next < ix->cap) {
		struct entry *e = &ix->e[it->next++];
		if (!(e->state & E_USED) || !(e->state & E_NVME) || (e->state & E_FILLING))
			continue;
		memset(out, 0, sizeof(*out));
		out->key = e->key;
		out->loc.seg = e->seg;
		out->loc.off4k = e->off4k;
		out->loc.gen = e->gen;
		out->len = e->len;
		out->depth = e->depth;
		return 1;
	}
	it->next = 0; /* rewind: the writer walks twice (count, then write) */
	return 0;
}

/* Writes every DRAM-only block back to NVMe, so that a reopen finds what the grid held. */
static void flush_dram(kvg_grid *g)
{
	pthread_mutex_lock(&g->lock);
	uint32_t batch[64];
	int n = 0;
	for (uint32_t s = 0; s < g->ix.cap; s++) {
		struct entry *e = &g->ix.e[s];
		if ((e->state & E_USED) && (e->state & E_DRAM) &&
		    !(e->state & (E_NVME | E_FILLING))) {
			e->refs++;
			e->state |= E_DEMOTING;
			batch[n++] = s;
		}
		if (n == 64 || (n && s + 1 == g->ix.cap)) {
			write_back(g, batch, n);
			n = 0;
		}
	}
	if (n)
		write_back(g, batch, n);
	pthread_mutex_unlock(&g->lock);
}

/* Called by kvg_close after the workers stopped and requests finished, also when an open
 * failed halfway: every part is released only if it was set up. */
void grid_local_close(kvg_grid *g)
{
	if (g->nv && has_dram(g) && g->cfg.demote_on_evict)
		flush_dram(g);
	shared_close(g->sh);
	g->sh = NULL;
	if (g->nv) {
		struct ckpt_iter it = {g, 0};
		nvme_close(g->nv, ckpt_next, &it);
		g->nv = NULL;
	}
	for (int t = 0; t < KVG_TIER_COUNT; t++)
		if (g->pol[t])
			g->pol_ops->destroy(g->pol[t]);
	arena_free_all(&g->arena);
	index_free(&g->ix);
}
