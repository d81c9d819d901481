/*
 * grid.c - the embedded grid: kvg_open/close, lookup, asynchronous store and load, pin,
 * delete, prefetch and stats, over the DRAM arena and the NVMe tier.
 *
 * Locking: g->lock guards the index, the policies, arena allocation, NVMe space and the
 * counters; it is never held across a copy or an I/O.  An entry being copied or transferred
 * has refs > 0 and cannot be evicted or freed; one being stored is E_FILLING and invisible.
 * Requests run on g's worker threads (DRAM copies, eviction, remote calls) and complete on
 * whichever thread finishes their last block: a worker, or an I/O thread for NVMe reads.
 *
 * Tier movement: a store lands in DRAM; a DRAM victim is demoted (written to NVMe) unless it
 * is already there with a record no older than its last use; an NVMe hit is promoted to
 * DRAM, at once when room needs no I/O, else by a worker (REQ_PROMOTE, a queue served after
 * callers' requests) that writes the DRAM policy's victims down first: an I/O thread never
 * waits on I/O.  In cache mode a promoted block's NVMe record is written again when it
 * leaves DRAM (entry.nvme_stale), so that the NVMe tier's write order, which whole-segment
 * eviction follows, is the order of last use (not in durable mode: see promote()).  Close writes DRAM-only blocks back to NVMe so that a
 * reopen finds them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grid.h"
#include "key.h"

static uint64_t now_us(void)
{
	return nvme_now_us();
}

/* internal load flag, beside the public KVG_LOAD_*: promote whatever promote_on_hit says */
#define LOAD_PREFETCH 0x80000000u

static int has_dram(const kvg_grid *g)
{
	return g->arena.chunks > 0;
}

static int visible(const struct entry *e)
{
	return (e->state & (E_DRAM | E_NVME)) && !(e->state & E_FILLING);
}

/* The session hint a request's flags carry (KVG_STORE_CONTINUES / KVG_STORE_LAST). */
static uint8_t flags_hint(uint32_t flags)
{
	if (flags & KVG_STORE_CONTINUES)
		return POLICY_HINT_CONTINUES;
	if (flags & KVG_STORE_LAST)
		return POLICY_HINT_LAST;
	return POLICY_HINT_NONE;
}

/* What a policy is told of a block.  The hint is the one its last store or load carried
 * (store_one() and load_one() set e->hint from the request first), so that movement
 * between tiers later on (demotion, promotion) tells the policy the same. */
/* What the policies are told of e, as a block of call req_id of req_blocks blocks. */
static struct policy_block pblock_of(const struct entry *e, uint64_t req_id, uint32_t req_blocks)
{
	struct policy_block b = { .bytes = e->len, .depth = e->depth,
				  .parent_slot = POLICY_NONE, .now_us = now_us(),
				  .hint = e->hint, .req_blocks = req_blocks, .req_id = req_id };
	memcpy(&b.key_hash, e->key.bytes, sizeof(b.key_hash));
	return b;
}

/* pblock_of() for a call of its own (a tier's movement, a single-key call). */
static struct policy_block pblock(kvg_grid *g, const struct entry *e)
{
	return pblock_of(e, __atomic_add_fetch(&g->req_seq, 1, __ATOMIC_RELAXED), 1);
}

/* pblock_of() for a block of request r: its blocks are one call to the policies. */
static struct policy_block pblock_req(const struct entry *e, const struct kvg_req *r)
{
	return pblock_of(e, r->seq, r->n < UINT32_MAX ? (uint32_t)r->n : UINT32_MAX);
}

/* ---- policy membership (locked) ---------------------------------------------------- */

/*
 * A block is in a tier's policy order at most once, and only the order's members are told
 * of hits: a block taken as a victim but still being demoted, or one on its way into a
 * tier, is not a member, and a hit on it must not touch the order (it would corrupt it).
 */
static uint8_t pol_bit(int t)
{
	return t == KVG_TIER_DRAM ? E_POL_DRAM : E_POL_NVME;
}

static void pol_insert(kvg_grid *g, int t, uint32_t slot, const struct policy_block *b)
{
	struct entry *e = &g->ix.e[slot];
	if (e->state & pol_bit(t)) {
		g->pol_ops->hit(g->pol[t], slot, b);
		return;
	}
	g->pol_ops->insert(g->pol[t], slot, b);
	e->state |= pol_bit(t);
}

static void pol_hit(kvg_grid *g, int t, uint32_t slot, const struct policy_block *b)
{
	if (g->ix.e[slot].state & pol_bit(t))
		g->pol_ops->hit(g->pol[t], slot, b);
}

static void pol_remove(kvg_grid *g, int t, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	if (e->state & pol_bit(t)) {
		g->pol_ops->remove(g->pol[t], slot);
		e->state &= ~pol_bit(t);
	}
}

static uint32_t pol_victim(kvg_grid *g, int t, int (*ok)(void *, uint32_t))
{
	uint32_t v = g->pol_ops->victim(g->pol[t], ok, g);
	if (v != POLICY_NONE)
		g->ix.e[v].state &= ~pol_bit(t);
	return v;
}

/* ---- segment lists (locked) ---------------------------------------------------------- */

static void seg_link(kvg_grid *g, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	uint32_t head = nvme_seg_head(g->nv, e->seg);
	e->sprev = SLOT_NONE;
	e->snext = head;
	if (head != SLOT_NONE)
		g->ix.e[head].sprev = slot;
	nvme_seg_set_head(g->nv, e->seg, slot);
	nvme_seg_live(g->nv, e->seg, +1);
}

static void seg_unlink(kvg_grid *g, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	if (e->sprev != SLOT_NONE)
		g->ix.e[e->sprev].snext = e->snext;
	else
		nvme_seg_set_head(g->nv, e->seg, e->snext);
	if (e->snext != SLOT_NONE)
		g->ix.e[e->snext].sprev = e->sprev;
	nvme_seg_live(g->nv, e->seg, -1);
	e->snext = e->sprev = SLOT_NONE;
}

/* A sealed segment whose last entry has gone, with no I/O in flight, is free space again
 * (entries can leave one by one when the index, not the disk, is full). */
static void seg_maybe_free(kvg_grid *g, uint32_t seg)
{
	nvme_seg_release(g->nv, seg);
}

/* ---- dropping copies (locked) -------------------------------------------------------- */

static void maybe_free_slot(kvg_grid *g, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	if (!(e->state & (E_DRAM | E_NVME | E_FILLING)) && e->refs == 0)
		index_del(&g->ix, slot);
}

/* Returns the chunks freed (none while the block's chunks are lent to a view). */
static uint32_t drop_dram(kvg_grid *g, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	pol_remove(g, KVG_TIER_DRAM, slot);
	uint32_t freed = arena_release(&g->arena, e->dram);
	e->dram = SLOT_NONE;
	e->state &= ~E_DRAM;
	g->st.tier[KVG_TIER_DRAM].blocks--;
	g->st.tier[KVG_TIER_DRAM].bytes -= e->len;
	return freed;
}

static void drop_nvme(kvg_grid *g, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	pol_remove(g, KVG_TIER_NVME, slot);
	uint32_t seg = e->seg;
	seg_unlink(g, slot);
	e->seg = SLOT_NONE;
	e->state &= ~E_NVME;
	seg_maybe_free(g, seg);
	g->st.tier[KVG_TIER_NVME].blocks--;
	g->st.tier[KVG_TIER_NVME].bytes -= e->len;
}

/* ---- NVMe eviction (locked) ---------------------------------------------------------- */

static int seg_evictable(kvg_grid *g, uint32_t seg)
{
	if (!nvme_seg_evictable(g->nv, seg))
		return 0;
	for (uint32_t s = nvme_seg_head(g->nv, seg); s != SLOT_NONE; s = g->ix.e[s].snext)
		if (g->ix.e[s].pins || g->ix.e[s].refs)
			return 0;
	return 1;
}

static int nvme_evictable_cb(void *ctx, uint32_t slot)
{
	kvg_grid *g = ctx;
	struct entry *e = &g->ix.e[slot];
	return e->seg != SLOT_NONE && seg_evictable(g, e->seg);
}

/* Evicts the whole segment holding the policy's victim; 0, or KVG_EFULL if none can go. */
static int nvme_evict_one(kvg_grid *g)
{
	uint32_t v = pol_victim(g, KVG_TIER_NVME, nvme_evictable_cb);
	if (v == POLICY_NONE)
		return KVG_EFULL;
	uint32_t seg = g->ix.e[v].seg;
	for (uint32_t s; (s = nvme_seg_head(g->nv, seg)) != SLOT_NONE;) {
		drop_nvme(g, s);
		g->st.tier[KVG_TIER_NVME].evictions++;
		maybe_free_slot(g, s);
	}
	nvme_seg_free(g->nv, seg);
	return 0;
}

static int nvme_place(kvg_grid *g, uint64_t len, struct nvme_loc *loc)
{
	for (;;) {
		int rc = nvme_reserve(g->nv, len, loc);
		if (rc != -ENOSPC)
			return rc;
		if ((rc = nvme_evict_one(g)))
			return rc;
	}
}

/* ---- synchronous NVMe writes of DRAM copies (demotion, write-through, close) ---------- */

struct wait_all {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int left;
	int *rcs; /* status of each block, by op->arg_idx */
};

/* A write_back() write finished: note its status and give the op back at once, so that a
 * caller never sits on finished ops while it waits for the rest (the pool is bounded). */
static void sync_write_done(struct nvme_op *op, int status)
{
	struct wait_all *w = op->arg;
	w->rcs[op->arg_idx] = status;
	nvme_op_put(op->nv, op);
	pthread_mutex_lock(&w->mu);
	w->left--;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Starts op as block i of the batch w waits for. */
static void wait_all_submit(kvg_grid *g, struct wait_all *w, struct nvme_op *op, int i)
{
	op->done = sync_write_done;
	op->arg = w;
	op->arg_idx = (uint32_t)i;
	pthread_mutex_lock(&w->mu);
	w->left++;
	pthread_mutex_unlock(&w->mu);
	nvme_submit(g->nv, op);
}

static void wait_all_wait(struct wait_all *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->left)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

static uint32_t parts_for(const kvg_grid *g, uint64_t len)
{
	uint32_t L = g->cfg.layers;
	if (L > 1 && L <= REC_PARTS_MAX && len % L == 0)
		return L;
	return 1;
}

/*
 * Writes the DRAM copies of slots[0..n) (n <= 64) to NVMe at once and publishes the ones
 * that land.  Called with g->lock held; drops it while the writes run.  Each slot has refs
 * held by the caller, which this releases.
 */
static void write_back(kvg_grid *g, const uint32_t *slots, int n)
{
	struct nvme_loc locs[64];
	int rcs[64], placed[64];
	struct wait_all w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, rcs };
	for (int i = 0; i < n; i++) {
		struct entry *e = &g->ix.e[slots[i]];
		rcs[i] = nvme_place(g, e->len, &locs[i]);
		placed[i] = rcs[i] == 0;
		if (placed[i])
			nvme_seg_io(g->nv, locs[i].seg, +1);
	}
	pthread_mutex_unlock(&g->lock);
	for (int i = 0; i < n; i++) {
		if (!placed[i])
			continue;
		struct entry *e = &g->ix.e[slots[i]]; /* refs held: fields stable */
		struct nvme_op *op = nvme_op_get(g->nv);
		op->write = 1;
		op->loc = locs[i];
		op->key = e->key;
		op->depth = e->depth;
		op->len = e->len;
		op->parts = parts_for(g, e->len);
		int cnt = arena_iov(&g->arena, e->dram, 0, e->len, op->src, op->src_cap);
		if (cnt < 0) {
			nvme_op_put(g->nv, op);
			rcs[i] = KVG_ETOOBIG;
			continue;
		}
		op->srccnt = cnt;
		wait_all_submit(g, &w, op, i);
	}
	wait_all_wait(&w);
	pthread_mutex_lock(&g->lock);
	for (int i = 0; i < n; i++) {
		struct entry *e = &g->ix.e[slots[i]];
		e->refs--;
		e->state &= ~E_DEMOTING;
		if (placed[i])
			nvme_seg_io(g->nv, locs[i].seg, -1);
		int renew = placed[i] && rcs[i] == 0 && (e->state & E_NVME) && e->nvme_stale;
		if (renew) /* the new record replaces the old one, which stays on disk unindexed
			    * (same key, same bytes) until its segment is reused */
			drop_nvme(g, slots[i]);
		if (placed[i] && rcs[i] == 0 && !(e->state & E_NVME)) {
			e->nvme_stale = 0;
			e->seg = locs[i].seg;
			e->off4k = locs[i].off4k;
			e->gen = locs[i].gen;
			e->state |= E_NVME;
			seg_link(g, slots[i]);
			struct policy_block b = pblock(g, e);
			pol_insert(g, KVG_TIER_NVME, slots[i], &b);
			g->st.tier[KVG_TIER_NVME].blocks++;
			g->st.tier[KVG_TIER_NVME].bytes += e->len;
			g->st.tier[KVG_TIER_DRAM].demotions++;
		} else if (rcs[i] && rcs[i] != KVG_EFULL && rcs[i] != KVG_EDEGRADED) {
			g->st.store_failures++;
		}
		if (placed[i]) /* after publishing: a failed write may leave it empty */
			seg_maybe_free(g, locs[i].seg);
	}
	pthread_cond_broadcast(&g->lock_cv);
}

/* ---- DRAM allocation with eviction (locked) ------------------------------------------ */

static int dram_evictable_cb(void *ctx, uint32_t slot)
{
	kvg_grid *g = ctx;
	struct entry *e = &g->ix.e[slot];
	return !e->pins && !e->refs && (e->state & E_DRAM) && !(e->state & E_FILLING);
}

/* A victim that leaves DRAM without I/O: on NVMe already, with a record that need not be
 * written again (not nvme_stale). */
static int dram_evictable_nowrite_cb(void *ctx, uint32_t slot)
{
	kvg_grid *g = ctx;
	struct entry *e = &g->ix.e[slot];
	return dram_evictable_cb(ctx, slot) && (e->state & E_NVME) && !e->nvme_stale;
}

/* Whether a DRAM victim is written down to NVMe: the configuration, then the NVMe
 * policy's admission filter (if it has one) decide. */
static int wants_demotion(kvg_grid *g, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	if (!g->nv || !g->cfg.demote_on_evict || nvme_degraded(g->nv))
		return 0;
	if ((e->state & E_NVME) && !e->nvme_stale)
		return 0;
	if (g->cfg.nvme_admit_on_reuse && e->hits == 0)
		return 0;
	if (g->pol_ops->admit) {
		struct policy_block b = pblock(g, e);
		return g->pol_ops->admit(g->pol[KVG_TIER_NVME], slot, &b);
	}
	return 1;
}

/*
 * First chunk of n free chunks, evicting DRAM victims as needed (demoting them to NVMe when
 * the policy wants them kept); CHUNK_END if nothing more can be evicted.  With may_write 0,
 * only victims that need no I/O are taken (I/O threads must not wait on I/O).
 */
static uint32_t dram_alloc(kvg_grid *g, uint32_t n, int may_write)
{
	for (;;) {
		uint32_t c = arena_alloc(&g->arena, n);
		if (c != CHUNK_END)
			return c;
		uint32_t demote[64];
		int nd = 0;
		uint32_t freed = g->arena.free_count;
		while (freed < n && nd < 64) {
			uint32_t v = pol_victim(g, KVG_TIER_DRAM, may_write ? dram_evictable_cb :
							dram_evictable_nowrite_cb);
			if (v == POLICY_NONE)
				break;
			struct entry *e = &g->ix.e[v];
			g->st.tier[KVG_TIER_DRAM].evictions++;
			if (may_write && wants_demotion(g, v)) {
				e->state |= E_DEMOTING;
				e->refs++;
				demote[nd++] = v;
				freed += arena_chunks_for(&g->arena, e->len);
				continue;
			}
			freed += drop_dram(g, v);
			maybe_free_slot(g, v);
		}
		if (nd) {
			write_back(g, demote, nd); /* drops and retakes the lock */
			for (int i = 0; i < nd; i++) {
				struct entry *e = &g->ix.e[demote[i]];
				if ((e->state & E_DRAM) && !e->refs && !e->pins) {
					drop_dram(g, demote[i]);
					maybe_free_slot(g, demote[i]);
				} else if (e->state & E_DRAM) {
					struct policy_block b = pblock(g, e);
					pol_insert(g, KVG_TIER_DRAM, demote[i], &b);
				}
			}
			continue;
		}
		if (freed < n)
			return arena_alloc(&g->arena, n);
	}
}

/*
 * Background demotion (cfg.dram_free_bytes): when a store leaves fewer than half of
 * clean_chunks free, a worker evicts DRAM victims ahead of need, writing the ones that are
 * not on NVMe yet, until clean_chunks are free; stores then find room without waiting for
 * NVMe writes.  One REQ_CLEAN at a time, in the background queue; a hint: skipped when the
 * request pool is empty.  Takes qlock only: call it without the grid lock.
 */
/* A request of the pool for background work (REQ_CLEAN, REQ_PROMOTE), set up with nothing
 * to wait for; NULL when closing or when the pool is empty.  qlock held. */
static struct kvg_req *bg_take(kvg_grid *g, int op)
{
	struct kvg_req *r = g->free_reqs;
	if (g->stop || !r)
		return NULL;
	g->free_reqs = r->next;
	r->in_use = 1;
	r->op = op;
	r->n = 0;
	r->ios = NULL;
	r->opts = (struct kvg_req_opts){ 0 };
	r->complete = 0;
	r->status = 0;
	r->pending = 1;
	r->layers = 0;
	r->next = NULL;
	return r;
}

/* Queues a background request: workers serve it when callers' requests do not wait.
 * qlock held. */
static void bg_push(kvg_grid *g, struct kvg_req *r)
{
	if (g->pqtail)
		g->pqtail->next = r;
	else
		g->pqhead = r;
	g->pqtail = r;
	pthread_cond_signal(&g->qcv);
}

static void clean_later(kvg_grid *g)
{
	pthread_mutex_lock(&g->qlock);
	struct kvg_req *r;
	if (g->cleaning) {
		g->clean_again = 1; /* the running clean may have passed this store's room */
	} else if ((r = bg_take(g, REQ_CLEAN))) {
		g->cleaning = 1;
		bg_push(g, r);
	}
	pthread_mutex_unlock(&g->qlock);
}

/* Whether a store that just took room should start a clean (grid lock held). */
static int wants_clean(const kvg_grid *g)
{
	return g->clean_chunks && g->arena.free_count < g->clean_chunks / 2 + 1;
}

/* REQ_CLEAN, on a worker: room for clean_chunks is made (dram_alloc evicts and demotes as
 * for a store) and given straight back. */
static void dram_clean(kvg_grid *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->arena.free_count < g->clean_chunks) {
		uint32_t c = dram_alloc(g, g->clean_chunks, 1);
		if (c != CHUNK_END)
			arena_release(&g->arena, c);
	}
	pthread_mutex_unlock(&g->lock);
}

static int nvme_entry_evictable_cb(void *ctx, uint32_t slot)
{
	kvg_grid *g = ctx;
	struct entry *e = &g->ix.e[slot];
	return !e->pins && !e->refs && (e->state & E_NVME) && !(e->state & E_FILLING);
}

/* Frees one index slot held by an NVMe record (its space returns when its segment goes):
 * the index can fill before the disk does when blocks are small. */
static int nvme_evict_entry(kvg_grid *g)
{
	uint32_t v = pol_victim(g, KVG_TIER_NVME, nvme_entry_evictable_cb);
	if (v == POLICY_NONE)
		return KVG_EFULL;
	drop_nvme(g, v);
	g->st.tier[KVG_TIER_NVME].evictions++;
	if (g->ix.e[v].state & E_DRAM)
		drop_dram(g, v);
	maybe_free_slot(g, v);
	return 0;
}

/* A free index slot for key, evicting if the index is full; SLOT_NONE if impossible. */
static uint32_t slot_for(kvg_grid *g, const kvg_key *key)
{
	uint32_t s = index_add(&g->ix, key);
	while (s == SLOT_NONE) {
		uint32_t v = has_dram(g) ? pol_victim(g, KVG_TIER_DRAM, dram_evictable_cb)
					   : POLICY_NONE;
		if (v != POLICY_NONE) {
			g->st.tier[KVG_TIER_DRAM].evictions++;
			drop_dram(g, v);
			maybe_free_slot(g, v);
		} else if (!g->nv || nvme_evict_entry(g)) {
			return SLOT_NONE;
		}
		s = index_add(&g->ix, key);
	}
	return s;
}

/* ---- requests -------------------------------------------------------------------------- */

/*
 * Layers [layer, layer+count) of one block have arrived.  layer_done callbacks run in layer
 * order, one thread at a time (whichever advanced the ready count first reports on behalf of
 * the others), and the request does not complete while one runs.
 */
static void req_layer_arrived(struct kvg_req *r, uint32_t layer, uint32_t count)
{
	pthread_mutex_lock(&r->mu);
	for (uint32_t l = layer; l < layer + count && l < r->layers; l++)
		r->layer_count[l]++;
	uint32_t from = r->layers_ready;
	while (r->layers_ready < r->layers && r->layer_count[r->layers_ready] >= r->n)
		r->layers_ready++;
	if (r->layers_ready != from)
		pthread_cond_broadcast(&r->cv);
	kvg_layer_fn fn = r->opts.layer_done;
	if (!fn || !(r->opts.flags & KVG_LOAD_LAYERS) || r->layer_cb_busy) {
		pthread_mutex_unlock(&r->mu);
		return;
	}
	r->layer_cb_busy = 1;
	while (r->layers_reported < r->layers_ready) {
		uint32_t l = r->layers_reported++;
		pthread_mutex_unlock(&r->mu);
		fn(r, l, r->opts.arg);
		pthread_mutex_lock(&r->mu);
	}
	r->layer_cb_busy = 0;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Returns a request to the pool.  Caller holds nothing. */
static void req_release(kvg_grid *g, struct kvg_req *r)
{
	pthread_mutex_lock(&g->qlock);
	r->in_use = 0;
	r->next = g->free_reqs;
	g->free_reqs = r;
	pthread_mutex_unlock(&g->qlock);
}

/*
 * One unit of the request finished (a block, or the dispatcher's hold).  The last one runs
 * the done callback first and only then marks the request complete, so that a waiter sees
 * completion after the callback; a kvg_req_free() from inside the callback is deferred.
 */
static void req_put(struct kvg_req *r, int status)
{
	pthread_mutex_lock(&r->mu);
	if (status && !r->status)
		r->status = status;
	int last = --r->pending == 0;
	while (last && r->layer_cb_busy) /* a layer callback is still reporting */
		pthread_cond_wait(&r->cv, &r->mu);
	kvg_done_fn fn = r->opts.done;
	void *arg = r->opts.arg;
	if (last && fn) {
		r->in_callback = 1;
		r->callback_thread = pthread_self();
	}
	pthread_mutex_unlock(&r->mu);
	if (!last)
		return;
	if (fn)
		fn(r, arg);
	pthread_mutex_lock(&r->mu);
	r->in_callback = 0;
	r->complete = 1;
	int free_now = r->free_in_callback;
	r->free_in_callback = 0;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (free_now)
		req_release(r->g, r);
}

static void block_done(struct kvg_req *r, size_t i, int status)
{
	r->ios[i].status = status;
	if (r->op == REQ_LOAD && r->layers && status) {
		/* a failed block's layers never arrive: record the error first, so that layer
		 * waits end with it instead of hanging (layer_ready() checks r->status) */
		pthread_mutex_lock(&r->mu);
		if (!r->status)
			r->status = status;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	req_put(r, status);
}

/* ---- store ----------------------------------------------------------------------------- */

static void store_nvme_done(struct nvme_op *op, int status)
{
	struct kvg_req *r = op->arg;
	kvg_grid *g = r->g;
	uint32_t slot = op->arg_slot;
	size_t i = op->arg_idx;
	pthread_mutex_lock(&g->lock);
	struct entry *e = &g->ix.e[slot];
	nvme_seg_io(g->nv, op->loc.seg, -1);
	e->refs--;
	if (status == 0) {
		e->seg = op->loc.seg;
		e->off4k = op->loc.off4k;
		e->gen = op->loc.gen;
		e->state |= E_NVME;
		seg_link(g, slot);
		struct policy_block b = pblock_req(e, r);
		pol_insert(g, KVG_TIER_NVME, slot, &b);
		g->st.tier[KVG_TIER_NVME].blocks++;
		g->st.tier[KVG_TIER_NVME].bytes += e->len;
	} else {
		g->st.store_failures++;
	}
	seg_maybe_free(g, op->loc.seg); /* after publishing: only a failed write leaves it empty */
	e->state &= ~E_FILLING;
	maybe_free_slot(g, slot);
	pthread_cond_broadcast(&g->lock_cv);
	pthread_mutex_unlock(&g->lock);
	nvme_op_put(g->nv, op);
	block_done(r, i, status);
}

/* Writes a block straight to NVMe from the caller's buffer (no DRAM tier, or no room). */
static void store_to_nvme(kvg_grid *g, struct kvg_req *r, size_t i, uint32_t slot)
{
	struct kvg_io *io = &r->ios[i];
	struct nvme_loc loc;
	int rc = nvme_place(g, io->len, &loc);
	if (rc) {
		index_del(&g->ix, slot);
		pthread_cond_broadcast(&g->lock_cv); /* a delete may wait on this slot */
		pthread_mutex_unlock(&g->lock);
		block_done(r, i, rc == -ENOSPC ? KVG_EFULL : rc);
		return;
	}
	nvme_seg_io(g->nv, loc.seg, +1);
	struct entry *e = &g->ix.e[slot];
	e->state |= E_FILLING;
	e->refs++;
	pthread_mutex_unlock(&g->lock);
	struct nvme_op *op = nvme_op_get(g->nv);
	op->write = 1;
	op->loc = loc;
	op->key = io->key;
	op->depth = io->depth;
	op->len = io->len;
	op->parts = parts_for(g, io->len);
	op->src[0].iov_base = io->buf;
	op->src[0].iov_len = io->len;
	op->srccnt = 1;
	op->done = store_nvme_done;
	op->arg = r;
	op->arg_idx = (uint32_t)i;
	op->arg_slot = slot;
	nvme_submit(g->nv, op);
}

static void store_one(kvg_grid *g, struct kvg_req *r, size_t i)
{
	struct kvg_io *io = &r->ios[i];
	if (io->len > g->cfg.max_value_bytes || io->len > UINT32_MAX) {
		block_done(r, i, KVG_ETOOBIG);
		return;
	}
	pthread_mutex_lock(&g->lock);
	g->st.stores++;
	uint32_t slot = index_find(&g->ix, &io->key);
	/* durable: "stored" must mean durable, so a store racing one of the same key waits
	 * until that one is published (or has failed) */
	while (slot != SLOT_NONE && g->cfg.durability == KVG_DURABILITY_DURABLE && g->nv &&
	       (g->ix.e[slot].state & E_FILLING)) {
		pthread_cond_wait(&g->lock_cv, &g->lock);
		slot = index_find(&g->ix, &io->key);
	}
	if (slot != SLOT_NONE) { /* present or arriving: a refresh */
		struct entry *e = &g->ix.e[slot];
		e->hint = flags_hint(r->opts.flags);
		int want_nvme = g->nv && (g->cfg.durability == KVG_DURABILITY_DURABLE ||
					  (r->opts.flags & KVG_STORE_NVME));
		if (want_nvme && (e->state & E_DRAM) && !(e->state & (E_NVME | E_FILLING))) {
			/* only in DRAM (an earlier write-through failed): a store that promises
			 * NVMe must put it there before it answers */
			e->refs++;
			e->state |= E_DEMOTING;
			write_back(g, &slot, 1); /* releases the ref */
			int ok = (g->ix.e[slot].state & E_NVME) != 0;
			pthread_cond_broadcast(&g->lock_cv);
			pthread_mutex_unlock(&g->lock);
			block_done(r, i, ok ? 0 : KVG_EFULL);
			return;
		}
		struct policy_block b = pblock_req(e, r);
		if (e->state & E_DRAM)
			pol_hit(g, KVG_TIER_DRAM, slot, &b);
		else if (e->state & E_NVME)
			pol_hit(g, KVG_TIER_NVME, slot, &b);
		pthread_mutex_unlock(&g->lock);
		block_done(r, i, 0);
		return;
	}
	slot = slot_for(g, &io->key);
	if (slot == SLOT_NONE) {
		g->st.store_failures++;
		pthread_mutex_unlock(&g->lock);
		block_done(r, i, KVG_EFULL);
		return;
	}
	struct entry *e = &g->ix.e[slot];
	e->len = (uint32_t)io->len;
	e->depth = io->depth;
	e->hint = flags_hint(r->opts.flags);
	e->state |= E_FILLING; /* invisible, and not evictable, while we work */
	int durable = g->nv && g->cfg.durability == KVG_DURABILITY_DURABLE;
	uint32_t c = CHUNK_END;
	if (has_dram(g) && io->len <= g->arena.bytes)
		c = dram_alloc(g, arena_chunks_for(&g->arena, io->len), 1);
	e = &g->ix.e[slot]; /* (the lock may have been dropped; the slot is ours) */
	if (c == CHUNK_END) {
		e->state &= ~E_FILLING;
		if (g->nv) {
			store_to_nvme(g, r, i, slot); /* unlocks */
			return;
		}
		index_del(&g->ix, slot);
		g->st.store_failures++;
		pthread_cond_broadcast(&g->lock_cv);
		pthread_mutex_unlock(&g->lock);
		block_done(r, i, KVG_EFULL);
		return;
	}
	e->dram = c;
	e->refs++;
	int clean = wants_clean(g);
	pthread_mutex_unlock(&g->lock);
	if (clean)
		clean_later(g);
	arena_write(&g->arena, c, 0, io->buf, io->len);
	pthread_mutex_lock(&g->lock);
	e = &g->ix.e[slot];
	e->state |= E_DRAM;
	struct policy_block b = pblock_req(e, r);
	if (i > 0 && io->depth && r->ios[i - 1].depth + 1 == io->depth)
		b.parent_slot = index_find(&g->ix, &r->ios[i - 1].key); /* chain in one batch */
	pol_insert(g, KVG_TIER_DRAM, slot, &b);
	g->st.tier[KVG_TIER_DRAM].blocks++;
	g->st.tier[KVG_TIER_DRAM].bytes += e->len;
	g->st.tier[KVG_TIER_DRAM].bytes_written += e->len;
	int through = g->nv && (durable || g->cfg.write_through ||
				(r->opts.flags & KVG_STORE_NVME));
	if (through) {
		/* visible only once durable, in durable mode; at once otherwise */
		if (!durable)
			e->state &= ~E_FILLING;
		e->state |= E_DEMOTING;
		write_back(g, &slot, 1); /* releases our ref */
		e = &g->ix.e[slot];
		e->state &= ~E_FILLING;
		int ok = (e->state & E_NVME) != 0;
		pthread_cond_broadcast(&g->lock_cv);
		pthread_mutex_unlock(&g->lock);
		block_done(r, i, ok || !durable ? 0 : KVG_EFULL);
		return;
	}
	e->state &= ~E_FILLING;
	e->refs--;
	pthread_cond_broadcast(&g->lock_cv); /* deletes wait for FILLING and refs to clear */
	pthread_mutex_unlock(&g->lock);
	block_done(r, i, 0);
}

/* ---- load ------------------------------------------------------------------------------ */

static void promote_later(kvg_grid *g, const kvg_key *key);

/*
 * Copies a verified NVMe block into DRAM when room can be made without I/O and the DRAM
 * policy admits it.  When room would take I/O (the DRAM victims are not on NVMe yet: they
 * would have to be written down, which an I/O thread must not wait for) and may_defer is
 * set, the promotion is handed to a worker instead (promote_later()).  pre, when not
 * CHUNK_END, is room a worker already made for pre_len bytes: used if the block still fits
 * it, else given back.  The caller holds a ref on the entry -- so the slot still names the
 * same key and location -- and this releases it.
 */
static void promote(kvg_grid *g, uint32_t slot, const void *src, int may_defer, uint32_t pre,
		    uint32_t pre_len)
{
	pthread_mutex_lock(&g->lock);
	struct entry *e = &g->ix.e[slot];
	uint32_t c = CHUNK_END;
	int defer = 0;
	kvg_key key = e->key;
	int ok = has_dram(g) && !(e->state & (E_DRAM | E_PROMOTING)) && (e->state & E_NVME) &&
		 e->len <= g->arena.bytes;
	/* the DRAM policy may keep out a block it expects no reuse of */
	if (ok && g->pol_ops->admit && !g->pol_ops->admit_nvme_only) {
		struct policy_block b = pblock(g, e);
		ok = g->pol_ops->admit(g->pol[KVG_TIER_DRAM], slot, &b);
	}
	if (ok) {
		uint32_t need = arena_chunks_for(&g->arena, e->len);
		if (pre != CHUNK_END && need == arena_chunks_for(&g->arena, pre_len)) {
			c = pre;
			pre = CHUNK_END;
		} else {
			c = dram_alloc(g, need, 0);
		}
		e = &g->ix.e[slot];
		defer = c == CHUNK_END && may_defer;
		ok = c != CHUNK_END && !(e->state & (E_DRAM | E_PROMOTING)) && (e->state & E_NVME);
		if (!ok && c != CHUNK_END)
			arena_release(&g->arena, c);
	}
	if (ok) {
		e->state |= E_PROMOTING;
		pthread_mutex_unlock(&g->lock);
		arena_write(&g->arena, c, 0, src, e->len);
		pthread_mutex_lock(&g->lock);
		e = &g->ix.e[slot];
		e->state &= ~E_PROMOTING;
		e->dram = c;
		e->state |= E_DRAM;
		/* the rewrite on leaving DRAM keeps a cache's NVMe order fresh; a durable grid's
		 * NVMe tier holds what was acknowledged, and rewrites would only leave dead
		 * records behind, filling segments that eviction would then take whole */
		e->nvme_stale = g->cfg.durability != KVG_DURABILITY_DURABLE;
		struct policy_block b = pblock(g, e);
		pol_insert(g, KVG_TIER_DRAM, slot, &b);
		g->st.tier[KVG_TIER_DRAM].blocks++;
		g->st.tier[KVG_TIER_DRAM].bytes += e->len;
		g->st.tier[KVG_TIER_DRAM].promotions++;
	}
	if (pre != CHUNK_END)
		arena_release(&g->arena, pre);
	e->refs--;
	maybe_free_slot(g, slot);
	pthread_cond_broadcast(&g->lock_cv);
	pthread_mutex_unlock(&g->lock);
	if (defer)
		promote_later(g, &key);
}

static void load_part_done(struct nvme_op *op, uint32_t part)
{
	struct kvg_req *r = op->arg;
	req_layer_arrived(r, part, 1);
}

static void load_nvme_done(struct nvme_op *op, int status)
{
	struct kvg_req *r = op->arg;
	kvg_grid *g = r->g;
	uint32_t slot = op->arg_slot;
	size_t i = op->arg_idx;
	int layered = op->layered;
	pthread_mutex_lock(&g->lock);
	struct entry *e = &g->ix.e[slot];
	nvme_seg_io(g->nv, op->loc.seg, -1);
	seg_maybe_free(g, op->loc.seg);
	int do_promote = status == 0 && has_dram(g) &&
			 ((g->cfg.promote_on_hit && !(r->opts.flags & KVG_LOAD_NOPROMOTE)) ||
			  (r->opts.flags & LOAD_PREFETCH));
	if (!do_promote)
		e->refs--; /* else promote() keeps the slot ours until it is done */
	struct kvg_tier_stats *ts = &g->st.tier[KVG_TIER_NVME];
	if (status == 0) {
		ts->hits++;
		ts->bytes_read += e->len;
	} else {
		ts->misses++;
		/* a record that fails verification is gone for good: forget it.  An I/O error
		 * may pass (the tier degrades if it does not): the record stays indexed. */
		if (status == KVG_ECORRUPT && (e->state & E_NVME) && e->seg == op->loc.seg &&
		    e->off4k == op->loc.off4k)
			drop_nvme(g, slot);
	}
	maybe_free_slot(g, slot);
	pthread_cond_broadcast(&g->lock_cv);
	uint64_t len = op->len;
	pthread_mutex_unlock(&g->lock);
	nvme_op_put(g->nv, op); /* another thread may take it from here on */
	if (status == 0) {
		r->ios[i].len = len;
		r->ios[i].tier = KVG_TIER_NVME;
		if (r->layers && !layered)
			req_layer_arrived(r, 0, r->layers);
	}
	if (do_promote) {
		/* a prefetch's promotion is on a worker already, with room reserved: promote()
		 * takes or gives back the chunks (prefetch_one() reads promote_chunk only after
		 * the request completes) */
		uint32_t pre = CHUNK_END;
		if (r->opts.flags & LOAD_PREFETCH) {
			pre = r->promote_chunk;
			r->promote_chunk = CHUNK_END;
		}
		promote(g, slot, r->ios[i].buf, !(r->opts.flags & LOAD_PREFETCH), pre,
			r->promote_len); /* releases the ref */
	}
	block_done(r, i, status == 0 ? 0 : status == KVG_ECORRUPT ? KVG_ECORRUPT : status);
}

static void load_from_dram(kvg_grid *g, struct kvg_req *r, size_t i, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	uint32_t c = e->dram, len = e->len;
	pthread_mutex_unlock(&g->lock);
	struct kvg_io *io = &r->ios[i];
	uint32_t L = r->layers;
	if (L > 1 && (r->opts.flags & KVG_LOAD_LAYERS) && len % L == 0) {
		uint64_t lb = len / L;
		for (uint32_t l = 0; l < L; l++) {
			arena_read(&g->arena, c, l * lb, (uint8_t *)io->buf + l * lb, lb);
			req_layer_arrived(r, l, 1);
		}
	} else {
		arena_read(&g->arena, c, 0, io->buf, len);
		if (L)
			req_layer_arrived(r, 0, L);
	}
	io->len = len;
	io->tier = KVG_TIER_DRAM;
	pthread_mutex_lock(&g->lock);
	e = &g->ix.e[slot];
	e->refs--;
	g->st.tier[KVG_TIER_DRAM].bytes_read += len;
	maybe_free_slot(g, slot);
	pthread_cond_broadcast(&g->lock_cv);
	pthread_mutex_unlock(&g->lock);
	block_done(r, i, 0);
}

static void load_one(kvg_grid *g, struct kvg_req *r, size_t i)
{
	struct kvg_io *io = &r->ios[i];
	io->tier = KVG_TIER_NONE;
	pthread_mutex_lock(&g->lock);
	g->st.loads++;
	uint32_t slot = index_find(&g->ix, &io->key);
	struct entry *e = slot != SLOT_NONE ? &g->ix.e[slot] : NULL;
	int nvme_ok = e && (e->state & E_NVME) && !nvme_degraded(g->nv);
	if (!e || (e->state & E_FILLING) || (!(e->state & E_DRAM) && !nvme_ok)) {
		g->st.tier[has_dram(g) ? KVG_TIER_DRAM : KVG_TIER_NVME].misses++;
		pthread_mutex_unlock(&g->lock);
		block_done(r, i, KVG_ENOTFOUND);
		return;
	}
	if (e->len > io->len) {
		io->len = e->len;
		pthread_mutex_unlock(&g->lock);
		block_done(r, i, KVG_EBUFSIZE);
		return;
	}
	if (!(r->opts.flags & LOAD_PREFETCH)) /* a prefetch is no word on the session */
		e->hint = flags_hint(r->opts.flags);
	struct policy_block b = pblock_req(e, r);
	if (e->hits < 255)
		e->hits++;
	e->refs++;
	if (e->state & E_DRAM) {
		pol_hit(g, KVG_TIER_DRAM, slot, &b);
		g->st.tier[KVG_TIER_DRAM].hits++;
		load_from_dram(g, r, i, slot); /* unlocks */
		return;
	}
	if (has_dram(g))
		g->st.tier[KVG_TIER_DRAM].misses++;
	pol_hit(g, KVG_TIER_NVME, slot, &b);
	nvme_seg_io(g->nv, e->seg, +1);
	struct nvme_loc loc = { e->seg, e->off4k, e->gen };
	uint32_t len = e->len, L = r->layers;
	pthread_mutex_unlock(&g->lock);
	struct nvme_op *op = nvme_op_get(g->nv);
	op->loc = loc;
	op->key = io->key;
	op->len = len;
	op->dst = io->buf;
	op->layered = L > 1 && (r->opts.flags & KVG_LOAD_LAYERS) && parts_for(g, len) == L;
	op->parts = op->layered ? L : 1;
	op->part_done = load_part_done;
	op->done = load_nvme_done;
	op->arg = r;
	op->arg_idx = (uint32_t)i;
	op->arg_slot = slot;
	nvme_submit(g->nv, op);
}

/* ---- prefetch -------------------------------------------------------------------------- */

/*
 * Promotes an NVMe-only block to DRAM ahead of its load (kvg_prefetch), or after a load
 * whose I/O thread could not make room (REQ_PROMOTE).  Runs on a worker, so it may make
 * room with I/O: DRAM victims, as the DRAM policy picks them, are written down to NVMe
 * first (dram_alloc with may_write), and the chunks are reserved for the promotion that
 * follows the read (promote() gives them back if it does not take place).  Loads through a
 * private request straight into load_one(): waiting on the grid's own queue from a worker
 * could take every worker and stall the grid.
 */
static void prefetch_one(kvg_grid *g, const kvg_key *key)
{
	pthread_mutex_lock(&g->lock);
	uint32_t slot = index_find(&g->ix, key);
	struct entry *e = slot != SLOT_NONE ? &g->ix.e[slot] : NULL;
	if (!e || !has_dram(g) || (e->state & (E_DRAM | E_FILLING)) || !(e->state & E_NVME)) {
		pthread_mutex_unlock(&g->lock);
		return;
	}
	uint32_t len = e->len, c = CHUNK_END;
	pthread_mutex_unlock(&g->lock);
	void *buf;
	if (posix_memalign(&buf, KVG_ALIGN, len ? len : 1))
		return;
	pthread_mutex_lock(&g->lock);
	if (len <= g->arena.bytes)
		c = dram_alloc(g, arena_chunks_for(&g->arena, len), 1); /* may drop the lock */
	pthread_mutex_unlock(&g->lock);
	struct kvg_io io = { .key = *key, .buf = buf, .len = len };
	struct kvg_req r = { .g = g, .op = REQ_LOAD, .ios = &io, .n = 1, .pending = 2,
			     .opts = { .flags = LOAD_PREFETCH }, .promote_chunk = c,
			     .promote_len = len };
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	load_one(g, &r, 0); /* promotes on success (LOAD_PREFETCH) */
	req_put(&r, 0);
	kvg_req_wait(&r, -1);
	if (r.promote_chunk != CHUNK_END) { /* no promotion took them (a miss, an error) */
		pthread_mutex_lock(&g->lock);
		arena_release(&g->arena, r.promote_chunk);
		pthread_mutex_unlock(&g->lock);
	}
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	free(buf);
}

/* ---- workers --------------------------------------------------------------------------- */

static void run_remote(kvg_grid *g, struct kvg_req *r)
{
	int rc = r->op == REQ_STORE ? client_store(g->remote, r->ios, r->n) :
					client_load(g->remote, r->ios, r->n);
	(void)rc;
	for (size_t i = 0; i < r->n; i++) {
		if (r->op == REQ_LOAD && r->layers && r->ios[i].status == 0)
			req_layer_arrived(r, 0, r->layers);
		block_done(r, i, r->ios[i].status);
	}
}

static void run_req(kvg_grid *g, struct kvg_req *r)
{
	if (r->op == REQ_CLEAN) {
		/* a store that asked while this ran took room after it: clean again, or the
		 * last stores of a burst would leave DRAM short of dram_free_bytes */
		for (;;) {
			dram_clean(g);
			pthread_mutex_lock(&g->qlock);
			int again = g->clean_again && !g->stop;
			g->clean_again = 0;
			if (!again)
				g->cleaning = 0;
			pthread_mutex_unlock(&g->qlock);
			if (!again)
				break;
		}
		pthread_mutex_lock(&r->mu);
		r->pending = 1;
		pthread_mutex_unlock(&r->mu);
		req_put(r, 0);
		kvg_req_free(r); /* nobody holds a clean */
		return;
	}
	if (r->op == REQ_PREFETCH || r->op == REQ_PROMOTE) {
		if (r->op == REQ_PROMOTE) {
			prefetch_one(g, &r->promote_key);
			pthread_mutex_lock(&g->qlock);
			g->promotes_queued--;
			pthread_mutex_unlock(&g->qlock);
		}
		for (size_t i = 0; r->op == REQ_PREFETCH && i < r->n; i++)
			prefetch_one(g, &r->prefetch_keys[i]);
		free(r->prefetch_keys);
		r->prefetch_keys = NULL;
		pthread_mutex_lock(&r->mu);
		r->pending = 1;
		pthread_mutex_unlock(&r->mu);
		req_put(r, 0);
		kvg_req_free(r); /* nobody holds a prefetch */
		return;
	}
	if (g->remote)
		run_remote(g, r);
	else
		for (size_t i = 0; i < r->n; i++) {
			if (r->op == REQ_STORE)
				store_one(g, r, i);
			else
				load_one(g, r, i);
		}
	req_put(r, 0); /* the dispatcher's hold */
}

static void *worker_main(void *arg)
{
	kvg_grid *g = arg;
	pthread_mutex_lock(&g->qlock);
	for (;;) {
		while (!g->qhead && !g->pqhead && !g->stop)
			pthread_cond_wait(&g->qcv, &g->qlock);
		/* callers' requests first; background promotions when there are none */
		int user = g->qhead != NULL;
		struct kvg_req **head = user ? &g->qhead : &g->pqhead;
		struct kvg_req **tail = user ? &g->qtail : &g->pqtail;
		if (!*head)
			break; /* stopping, and both queues are drained */
		struct kvg_req *r = *head;
		*head = r->next;
		if (!*head)
			*tail = NULL;
		pthread_mutex_unlock(&g->qlock);
		run_req(g, r);
		pthread_mutex_lock(&g->qlock);
	}
	pthread_mutex_unlock(&g->qlock);
	return NULL;
}

static struct kvg_req *req_get(kvg_grid *g)
{
	pthread_mutex_lock(&g->qlock);
	struct kvg_req *r = g->stop ? NULL : g->free_reqs;
	if (r) {
		g->free_reqs = r->next;
		r->in_use = 1;
	}
	pthread_mutex_unlock(&g->qlock);
	return r;
}

static void req_enqueue(kvg_grid *g, struct kvg_req *r)
{
	r->next = NULL;
	pthread_mutex_lock(&g->qlock);
	if (g->qtail)
		g->qtail->next = r;
	else
		g->qhead = r;
	g->qtail = r;
	pthread_cond_signal(&g->qcv);
	pthread_mutex_unlock(&g->qlock);
}

/* Deferred promotions queued at most: each holds a request of the pool (at most a quarter
 * of it) and, when it runs, a worker.  They wait in their own queue, which workers serve
 * only when callers' requests do not wait. */
#define PROMOTES_QUEUED_MAX 64

/*
 * Hands the promotion of key to a worker (see promote()): takes no grid lock and waits for
 * nothing, so an I/O thread may call it.  Taking the request and queueing it under one hold
 * of qlock means a close (which sets stop under qlock, then lets the workers drain the
 * queue) either refuses it or runs it.  A hint: dropped when PROMOTES_QUEUED_MAX are
 * queued or a quarter of the request pool is not free.
 */
static void promote_later(kvg_grid *g, const kvg_key *key)
{
	pthread_mutex_lock(&g->qlock);
	struct kvg_req *r;
	if (g->promotes_queued < PROMOTES_QUEUED_MAX && g->promotes_queued < g->cfg.req_max / 4 &&
	    (r = bg_take(g, REQ_PROMOTE))) {
		g->promotes_queued++;
		r->promote_key = *key;
		r->n = 1;
		bg_push(g, r);
	}
	pthread_mutex_unlock(&g->qlock);
}

/* Starts a request: on a worker (queued), or with inline set on the calling thread, which
 * then does the copies and eviction itself (the synchronous calls wait anyway: this saves
 * the hand-off to a worker and back). */
static int submit_on(kvg_grid *g, int op, struct kvg_io *ios, size_t n,
		     const struct kvg_req_opts *opts, kvg_req **out, int inline_run)
{
	if (!g || (!ios && n) || !out)
		return -EINVAL;
	uint32_t flags = opts ? opts->flags : 0;
	if ((flags & KVG_STORE_CONTINUES) && (flags & KVG_STORE_LAST))
		return -EINVAL; /* one word on the session, not two */
	struct kvg_req *r = req_get(g);
	if (!r)
		return g->stop ? KVG_ECLOSED : KVG_EBUSY;
	r->op = op;
	r->ios = ios;
	r->n = n;
	r->seq = __atomic_add_fetch(&g->req_seq, 1, __ATOMIC_RELAXED);
	r->opts = opts ? *opts : (struct kvg_req_opts){ 0 };
	r->opts.flags &= ~LOAD_PREFETCH; /* internal: its request carries reserved chunks */
	r->pending = n + 1;
	r->status = 0;
	r->complete = 0;
	r->layers_ready = 0;
	r->layers_reported = 0;
	r->layer_cb_busy = 0;
	r->layers = op == REQ_LOAD ? g->cfg.layers : 0;
	if (r->layers)
		memset(r->layer_count, 0, sizeof(uint32_t) * r->layers);
	for (size_t i = 0; i < n; i++)
		ios[i].status = KVG_EINPROGRESS;
	*out = r;
	if (inline_run)
		run_req(g, r);
	else
		req_enqueue(g, r);
	return 0;
}

static int submit(kvg_grid *g, int op, struct kvg_io *ios, size_t n,
		  const struct kvg_req_opts *opts, kvg_req **out)
{
	return submit_on(g, op, ios, n, opts, out, 0);
}

int kvg_store(kvg_grid *g, struct kvg_io *ios, size_t n, const struct kvg_req_opts *opts,
	      kvg_req **out)
{
	return submit(g, REQ_STORE, ios, n, opts, out);
}

int kvg_load(kvg_grid *g, struct kvg_io *ios, size_t n, const struct kvg_req_opts *opts,
	     kvg_req **out)
{
	return submit(g, REQ_LOAD, ios, n, opts, out);
}

int kvg_req_poll(kvg_req *r)
{
	pthread_mutex_lock(&r->mu);
	/* final as soon as the last block is in: also inside (and racing) the done callback */
	int rc = r->complete || r->in_callback ? r->status : KVG_EINPROGRESS;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static int wait_until(kvg_req *r, int timeout_ms, int (*ready)(kvg_req *, void *), void *arg)
{
	struct timespec ts;
	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&r->mu);
	while (!ready(r, arg)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&r->cv, &r->mu);
		else if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT)
			break;
	}
	int ok = ready(r, arg);
	pthread_mutex_unlock(&r->mu);
	return ok;
}

static int is_complete(kvg_req *r, void *arg)
{
	(void)arg;
	return r->complete;
}

int kvg_req_wait(kvg_req *r, int timeout_ms)
{
	wait_until(r, timeout_ms, is_complete, NULL);
	return kvg_req_poll(r);
}

uint32_t kvg_req_layers_ready(kvg_req *r)
{
	pthread_mutex_lock(&r->mu);
	uint32_t n = r->layers_ready;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static int layer_ready(kvg_req *r, void *arg)
{
	uint32_t layer = *(uint32_t *)arg;
	return r->layers_ready > layer || r->complete || r->status;
}

int kvg_req_wait_layer(kvg_req *r, uint32_t layer, int timeout_ms)
{
	if (layer >= r->layers)
		return kvg_req_wait(r, timeout_ms);
	if (!wait_until(r, timeout_ms, layer_ready, &layer))
		return KVG_EINPROGRESS;
	pthread_mutex_lock(&r->mu);
	int rc = r->status;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

void kvg_req_free(kvg_req *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	if (r->in_callback && pthread_equal(r->callback_thread, pthread_self())) {
		r->free_in_callback = 1; /* released when the callback returns */
		pthread_mutex_unlock(&r->mu);
		return;
	}
	pthread_mutex_unlock(&r->mu);
	kvg_req_wait(r, -1);
	req_release(r->g, r);
}

static int run_sync(kvg_grid *g, int op, struct kvg_io *ios, size_t n, uint32_t flags)
{
	struct kvg_req_opts o = { .flags = flags };
	kvg_req *r;
	int rc;
	while ((rc = submit_on(g, op, ios, n, &o, &r, 1)) == KVG_EBUSY) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	if (rc)
		return rc;
	rc = kvg_req_wait(r, -1);
	kvg_req_free(r);
	return rc;
}

int kvg_store_sync(kvg_grid *g, struct kvg_io *ios, size_t n, uint32_t flags)
{
	return run_sync(g, REQ_STORE, ios, n, flags);
}

int kvg_load_sync(kvg_grid *g, struct kvg_io *ios, size_t n, uint32_t flags)
{
	return run_sync(g, REQ_LOAD, ios, n, flags);
}

/* ---- views: zero-copy reads of DRAM ------------------------------------------------------ */

/* A view is the arena chain it lends, as a handle: chunk number + 1 (never NULL). */
int kvg_view_get(kvg_grid *g, const kvg_key *key, struct iovec *iov, int max_iov, size_t *len,
		 kvg_view **view)
{
	if (g->remote || !has_dram(g))
		return 0;
	pthread_mutex_lock(&g->lock);
	uint32_t slot = index_find(&g->ix, key);
	struct entry *e = slot != SLOT_NONE ? &g->ix.e[slot] : NULL;
	if (!e || !visible(e)) {
		g->st.loads++;
		g->st.tier[KVG_TIER_DRAM].misses++;
		pthread_mutex_unlock(&g->lock);
		return KVG_ENOTFOUND;
	}
	int n = 0; /* not in DRAM: the caller's load will count it */
	if (e->state & E_DRAM) {
		if ((n = arena_iov(&g->arena, e->dram, 0, e->len, iov, max_iov)) < 0)
			n = KVG_EBUFSIZE;
		else if (arena_lend(&g->arena, e->dram) < 0)
			n = KVG_EBUSY;
	}
	if (n > 0) {
		struct policy_block b = pblock(g, e);
		pol_hit(g, KVG_TIER_DRAM, slot, &b);
		if (e->hits < 255)
			e->hits++;
		g->st.loads++;
		g->st.tier[KVG_TIER_DRAM].hits++;
		g->st.tier[KVG_TIER_DRAM].bytes_read += e->len;
		*len = e->len;
		*view = (kvg_view *)(uintptr_t)((uintptr_t)e->dram + 1);
	}
	pthread_mutex_unlock(&g->lock);
	return n;
}

void kvg_view_release(kvg_grid *g, kvg_view *view)
{
	if (!view)
		return;
	pthread_mutex_lock(&g->lock);
	arena_unlend(&g->arena, (uint32_t)((uintptr_t)view - 1));
	pthread_mutex_unlock(&g->lock);
}

/* ---- fills: zero-copy stores into DRAM ---------------------------------------------------- */

int kvg_fill_begin(kvg_grid *g, size_t len, struct iovec *iov, int max_iov, struct kvg_fill *fill)
{
	fill->first = CHUNK_END;
	if (g->remote || !has_dram(g) || g->cfg.write_through ||
	    (g->nv && g->cfg.durability == KVG_DURABILITY_DURABLE))
		return 0;
	if (len > g->cfg.max_value_bytes || len > UINT32_MAX || len > g->arena.bytes)
		return KVG_ETOOBIG;
	pthread_mutex_lock(&g->lock);
	uint32_t c = dram_alloc(g, arena_chunks_for(&g->arena, len), 1);
	int n = KVG_EFULL;
	if (c != CHUNK_END && (n = arena_iov(&g->arena, c, 0, len, iov, max_iov)) < 0) {
		arena_release(&g->arena, c);
		n = KVG_EBUFSIZE;
	} else if (c != CHUNK_END) {
		fill->first = c;
		fill->len = (uint32_t)len;
	}
	if (n < 0)
		g->st.store_failures++;
	int clean = n > 0 && wants_clean(g);
	pthread_mutex_unlock(&g->lock);
	if (clean)
		clean_later(g);
	return n;
}

void kvg_fill_abort(kvg_grid *g, struct kvg_fill *fill)
{
	if (fill->first == CHUNK_END)
		return;
	pthread_mutex_lock(&g->lock);
	arena_release(&g->arena, fill->first);
	pthread_mutex_unlock(&g->lock);
	fill->first = CHUNK_END;
}

/* Publishes a filled reservation: the end of store_one(), without its copy. */
int kvg_fill_commit(kvg_grid *g, struct kvg_fill *fill, const kvg_key *key, uint32_t depth,
		    uint32_t flags, int replace)
{
	if (fill->first == CHUNK_END)
		return KVG_EFULL;
	if (replace)
		kvg_delete(g, key, 1);
	pthread_mutex_lock(&g->lock);
	g->st.stores++;
	uint32_t slot = index_find(&g->ix, key);
	if (slot != SLOT_NONE) { /* present or arriving (a store raced us): a refresh */
		struct entry *e = &g->ix.e[slot];
		struct policy_block b = pblock(g, e);
		if (e->state & E_DRAM)
			pol_hit(g, KVG_TIER_DRAM, slot, &b);
		else if (e->state & E_NVME)
			pol_hit(g, KVG_TIER_NVME, slot, &b);
		arena_release(&g->arena, fill->first);
		pthread_mutex_unlock(&g->lock);
		fill->first = CHUNK_END;
		return 0;
	}
	slot = slot_for(g, key);
	if (slot == SLOT_NONE) {
		g->st.store_failures++;
		arena_release(&g->arena, fill->first);
		pthread_mutex_unlock(&g->lock);
		fill->first = CHUNK_END;
		return KVG_EFULL;
	}
	struct entry *e = &g->ix.e[slot];
	e->len = fill->len;
	e->depth = depth;
	e->hint = flags_hint(flags);
	e->dram = fill->first;
	e->state |= E_DRAM;
	struct policy_block b = pblock(g, e);
	pol_insert(g, KVG_TIER_DRAM, slot, &b);
	g->st.tier[KVG_TIER_DRAM].blocks++;
	g->st.tier[KVG_TIER_DRAM].bytes += e->len;
	g->st.tier[KVG_TIER_DRAM].bytes_written += e->len;
	if (g->nv && (flags & KVG_STORE_NVME)) { /* write-through asked for this block */
		e->refs++;
		e->state |= E_DEMOTING;
		write_back(g, &slot, 1); /* releases our ref */
	}
	pthread_cond_broadcast(&g->lock_cv);
	pthread_mutex_unlock(&g->lock);
	fill->first = CHUNK_END;
	return 0;
}

/* ---- keys and lookup ------------------------------------------------------------------- */

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

/* Consecutive present keys from keys[0], the lock held. */
static size_t present_run(kvg_grid *g, const kvg_key *keys, size_t n, uint8_t *tiers)
{
	int nvme_ok = g->nv && !nvme_degraded(g->nv);
	size_t i;
	for (i = 0; i < n; i++) {
		uint32_t s = index_find(&g->ix, &keys[i]);
		if (s == SLOT_NONE)
			break;
		struct entry *e = &g->ix.e[s];
		if (!visible(e))
			break;
		if (!(e->state & E_DRAM) && !nvme_ok)
			break;
		if (tiers)
			tiers[i] = (e->state & E_DRAM) ? KVG_TIER_DRAM : KVG_TIER_NVME;
	}
	return i;
}

int kvg_lookup_keys(kvg_grid *g, const kvg_key *keys, size_t n_keys, size_t *hit_blocks,
		    uint8_t *tiers)
{
	if (!g || (!keys && n_keys) || !hit_blocks)
		return -EINVAL;
	if (g->remote)
		return client_lookup_keys(g->remote, keys, n_keys, hit_blocks);
	pthread_mutex_lock(&g->lock);
	g->st.lookups++;
	*hit_blocks = present_run(g, keys, n_keys, tiers);
	pthread_mutex_unlock(&g->lock);
	return 0;
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

/* ---- pin, delete, prefetch --------------------------------------------------------------- */

static int pin_many(kvg_grid *g, const kvg_key *keys, size_t n, int pin)
{
	if (g->remote) {
		int rc = client_pin(g->remote, keys, n, pin);
		return rc < 0 ? rc : (int)n;
	}
	int count = 0;
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < n; i++) {
		uint32_t s = index_find(&g->ix, &keys[i]);
		if (s == SLOT_NONE || !visible(&g->ix.e[s]))
			continue;
		struct entry *e = &g->ix.e[s];
		if (pin && e->pins < UINT16_MAX) {
			e->pins++;
			count++;
		} else if (!pin && e->pins) {
			e->pins--;
			count++;
		}
	}
	pthread_mutex_unlock(&g->lock);
	return count;
}

int kvg_pin(kvg_grid *g, const kvg_key *keys, size_t n)
{
	return pin_many(g, keys, n, 1);
}

int kvg_unpin(kvg_grid *g, const kvg_key *keys, size_t n)
{
	return pin_many(g, keys, n, 0);
}

/* Writes tombstones for keys[0..n) whose NVMe records must not come back after a crash;
 * waits for them.  The grid lock is not held. */
static void write_tombstones(kvg_grid *g, const kvg_key *keys, int n)
{
	int rcs[64];
	struct wait_all w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, rcs };
	struct nvme_loc locs[64];
	int placed[64];
	pthread_mutex_lock(&g->lock);
	for (int i = 0; i < n; i++) {
		placed[i] = nvme_place(g, 0, &locs[i]) == 0;
		if (placed[i])
			nvme_seg_io(g->nv, locs[i].seg, +1);
	}
	pthread_mutex_unlock(&g->lock);
	for (int i = 0; i < n; i++) {
		if (!placed[i])
			continue;
		struct nvme_op *op = nvme_op_get(g->nv);
		op->write = 1;
		op->rec_flags = REC_F_TOMBSTONE;
		op->loc = locs[i];
		op->key = keys[i];
		op->len = 0;
		op->parts = 1;
		op->srccnt = 0;
		wait_all_submit(g, &w, op, i);
	}
	wait_all_wait(&w);
	pthread_mutex_lock(&g->lock);
	for (int i = 0; i < n; i++)
		if (placed[i]) {
			nvme_seg_io(g->nv, locs[i].seg, -1);
			seg_maybe_free(g, locs[i].seg);
		}
	pthread_mutex_unlock(&g->lock);
}

/*
 * Removes blocks from every tier.  A block that had an NVMe record gets a tombstone record
 * too, so a crash does not bring it back (best effort: the tombstone lives in a segment of
 * its own choosing, which may be reused before the record's).
 */
int kvg_delete(kvg_grid *g, const kvg_key *keys, size_t n)
{
	if (g->remote) {
		int rc = client_delete(g->remote, keys, n);
		return rc;
	}
	int count = 0, ntomb = 0;
	kvg_key tomb[64];
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < n; i++) {
		uint32_t s = index_find(&g->ix, &keys[i]);
		if (s == SLOT_NONE)
			continue;
		/* wait out transfers of this entry so its bytes are not freed under them */
		while (s != SLOT_NONE && (g->ix.e[s].refs || (g->ix.e[s].state & E_FILLING))) {
			pthread_cond_wait(&g->lock_cv, &g->lock);
			s = index_find(&g->ix, &keys[i]);
		}
		if (s == SLOT_NONE)
			continue;
		struct entry *e = &g->ix.e[s];
		if (e->state & E_DRAM)
			drop_dram(g, s);
		if (e->state & E_NVME) {
			drop_nvme(g, s);
			if (!nvme_degraded(g->nv))
				tomb[ntomb++] = keys[i];
		}
		maybe_free_slot(g, s);
		count++;
		if (ntomb == 64) {
			pthread_mutex_unlock(&g->lock);
			write_tombstones(g, tomb, ntomb);
			ntomb = 0;
			pthread_mutex_lock(&g->lock);
		}
	}
	pthread_mutex_unlock(&g->lock);
	if (ntomb)
		write_tombstones(g, tomb, ntomb);
	return count;
}

int kvg_prefetch(kvg_grid *g, const kvg_key *keys, size_t n)
{
	if (g->remote || !g->nv || !has_dram(g) || !n)
		return 0;
	struct kvg_req *r = req_get(g);
	if (!r)
		return 0;
	r->prefetch_keys = malloc(sizeof(kvg_key) * n);
	if (!r->prefetch_keys) {
		r->complete = 1;
		kvg_req_free(r);
		return 0;
	}
	memcpy(r->prefetch_keys, keys, sizeof(kvg_key) * n);
	r->op = REQ_PREFETCH;
	r->n = n;
	r->ios = NULL;
	r->opts = (struct kvg_req_opts){ 0 };
	r->complete = 0;
	r->status = 0;
	r->pending = 1;
	r->layers = 0;
	req_enqueue(g, r);
	return (int)n;
}

/* ---- stats ------------------------------------------------------------------------------- */

void kvg_stats_get(kvg_grid *g, struct kvg_stats *st)
{
	if (g->remote) {
		memset(st, 0, sizeof(*st));
		client_stats(g->remote, st);
		return;
	}
	pthread_mutex_lock(&g->lock);
	*st = g->st;
	st->index_blocks = g->ix.used;
	pthread_mutex_unlock(&g->lock);
	struct kvg_tier_stats *d = &st->tier[KVG_TIER_DRAM], *n = &st->tier[KVG_TIER_NVME];
	d->capacity_bytes = g->arena.bytes;
	snprintf(d->backend, sizeof(d->backend), "%s", has_dram(g) ? "arena" : "none");
	if (g->nv) {
		nvme_stats(g->nv, n);
	} else {
		snprintf(n->backend, sizeof(n->backend), "none");
	}
}

/* ---- open and close ---------------------------------------------------------------------- */

const struct kvg_config *kvg_config_of(const kvg_grid *g)
{
	return &g->cfg;
}

static int cfg_err(char *err, size_t len, const char *msg)
{
	if (err && len)
		snprintf(err, len, "%s", msg);
	return KVG_ECONFIG;
}

static int validate(struct kvg_config *c, char *err, size_t len)
{
	if (c->block_tokens < 16 || c->block_tokens > 1024)
		return cfg_err(err, len, "block_tokens must be between 16 and 1024");
	if (c->chunk_bytes < KVG_ALIGN || c->chunk_bytes % KVG_ALIGN)
		return cfg_err(err, len, "chunk_bytes must be a multiple of 4096");
	if (!c->dram_bytes && !c->dir[0] && !c->servers[0])
		return cfg_err(err, len, "no tier: set dram_bytes, dir, or servers");
	if (c->dram_bytes && c->dram_bytes < c->chunk_bytes)
		return cfg_err(err, len, "dram_bytes is smaller than one chunk");
	if (c->dir[0] && c->segment_bytes % KVG_ALIGN)
		return cfg_err(err, len, "segment_bytes must be a multiple of 4096");
	if (c->dir[0] && c->nvme_bytes < 2 * c->segment_bytes)
		return cfg_err(err, len, "nvme_bytes must hold at least two segments");
	if (!policy_find(c->policy))
		return cfg_err(err, len, "policy: unknown name");
	if (c->layers > 4096 || (c->layers && c->layers > REC_PARTS_MAX && c->dir[0]))
		return cfg_err(err, len, "layers: more than the record format's 496 parts");
	if (!c->max_blocks) {
		uint64_t m = (c->dram_bytes / c->chunk_bytes) + 64;
		if (c->dir[0])
			m += c->nvme_bytes / (64u << 10);
		c->max_blocks = m;
	}
	if (c->max_blocks >= UINT32_MAX)
		c->max_blocks = UINT32_MAX - 1;
	return 0;
}

/*
 * A good record found while recovering.  The newest record of a key (by seq) wins; a
 * tombstone wins like any record and is remembered (a slot with no tier) until recovery
 * ends, so that an older copy found later in another segment stays deleted.
 */
static void recovered_cb(void *ctx, const struct nvme_recovered *r)
{
	kvg_grid *g = ctx;
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
	e->seg = r->loc.seg;
	e->off4k = r->loc.off4k;
	e->gen = r->loc.gen;
	e->state |= E_NVME;
	seg_link(g, s);
	struct policy_block b = pblock(g, e);
	pol_insert(g, KVG_TIER_NVME, s, &b);
	g->st.tier[KVG_TIER_NVME].blocks++;
	g->st.tier[KVG_TIER_NVME].bytes += e->len;
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

static int start_workers(kvg_grid *g)
{
	g->reqs = calloc(g->cfg.req_max, sizeof(struct kvg_req));
	if (!g->reqs)
		return -ENOMEM;
	uint32_t L = g->cfg.layers;
	for (uint32_t i = 0; i < g->cfg.req_max; i++) {
		struct kvg_req *r = &g->reqs[i];
		r->g = g;
		pthread_mutex_init(&r->mu, NULL);
		pthread_cond_init(&r->cv, NULL);
		if (L && !(r->layer_count = calloc(L, sizeof(uint32_t))))
			return -ENOMEM;
		r->next = g->free_reqs;
		g->free_reqs = r;
	}
	g->workers = calloc(g->cfg.workers, sizeof(pthread_t));
	if (!g->workers)
		return -ENOMEM;
	for (uint32_t i = 0; i < g->cfg.workers; i++) {
		if (pthread_create(&g->workers[i], NULL, worker_main, g))
			return -EAGAIN;
		g->nworkers++;
	}
	return 0;
}

static void stop_workers(kvg_grid *g)
{
	pthread_mutex_lock(&g->qlock);
	g->stop = 1;
	pthread_cond_broadcast(&g->qcv);
	pthread_mutex_unlock(&g->qlock);
	for (uint32_t i = 0; i < g->nworkers; i++)
		pthread_join(g->workers[i], NULL);
	g->nworkers = 0;
}

static int open_local(kvg_grid *g, char *err, size_t err_len)
{
	const struct kvg_config *c = &g->cfg;
	int rc = index_init(&g->ix, (uint32_t)c->max_blocks);
	if (rc)
		return cfg_err(err, err_len, "out of memory for the index"), rc;
	g->pol_ops = policy_find(c->policy);
	for (int t = 0; t < KVG_TIER_COUNT; t++) {
		uint64_t cap = t == KVG_TIER_DRAM ? c->dram_bytes : c->nvme_bytes;
		g->pol[t] = g->pol_ops->create((uint32_t)c->max_blocks, cap, c);
		if (!g->pol[t])
			return cfg_err(err, err_len, "out of memory for the policy"), -ENOMEM;
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
	}
	g->st.index_capacity = g->ix.cap;
	g->st.index_bytes = index_bytes(&g->ix) + 2ull * g->pol_ops->bytes_per_slot * g->ix.cap;
	if (g->nv && has_dram(g) && c->demote_on_evict && c->dram_free_bytes) {
		uint64_t k = (c->dram_free_bytes + g->arena.chunk_bytes - 1) / g->arena.chunk_bytes;
		g->clean_chunks = (uint32_t)(k < g->arena.chunks / 4 ? k : g->arena.chunks / 4);
	}
	return 0;
}

int kvg_open(const struct kvg_config *cfg, kvg_grid **out, char *err, size_t err_len)
{
	if (!cfg || !out)
		return -EINVAL;
	kvg_grid *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->cfg = *cfg;
	int rc = validate(&g->cfg, err, err_len);
	if (rc) {
		free(g);
		return rc;
	}
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->lock_cv, NULL);
	pthread_mutex_init(&g->qlock, NULL);
	pthread_cond_init(&g->qcv, NULL);
	log_open(&g->log, g->cfg.log_file, (int)g->cfg.log_level);
	key_namespace(&g->cfg, &g->ns);
	g->block_bytes = kvg_config_block_bytes(&g->cfg);
	if (g->cfg.servers[0])
		rc = client_open(&g->cfg, &g->remote, err, err_len);
	else
		rc = open_local(g, err, err_len);
	if (!rc)
		rc = start_workers(g);
	if (rc) {
		kvg_close(g);
		return rc;
	}
	*out = g;
	return 0;
}

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
		if ((e->state & E_USED) && (e->state & E_DRAM) && !(e->state & (E_NVME | E_FILLING))) {
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

void kvg_close(kvg_grid *g)
{
	if (!g)
		return;
	stop_workers(g);
	/* requests still in flight (I/O completions) finish before the tiers go; in_use is
	 * qlock's and completion r->mu's (kvg_req_wait), read while I/O threads still run */
	for (uint32_t i = 0; g->reqs && i < g->cfg.req_max; i++) {
		pthread_mutex_lock(&g->qlock);
		int used = g->reqs[i].in_use;
		pthread_mutex_unlock(&g->qlock);
		if (used)
			kvg_req_wait(&g->reqs[i], -1);
	}
	if (g->nv && has_dram(g) && g->cfg.demote_on_evict)
		flush_dram(g);
	if (g->nv) {
		struct ckpt_iter it = { g, 0 };
		nvme_close(g->nv, ckpt_next, &it);
	}
	if (g->remote)
		client_close(g->remote);
	for (uint32_t i = 0; g->reqs && i < g->cfg.req_max; i++) {
		pthread_mutex_destroy(&g->reqs[i].mu);
		pthread_cond_destroy(&g->reqs[i].cv);
		free(g->reqs[i].layer_count);
		free(g->reqs[i].prefetch_keys);
	}
	free(g->reqs);
	free(g->workers);
	for (int t = 0; t < KVG_TIER_COUNT; t++)
		if (g->pol[t])
			g->pol_ops->destroy(g->pol[t]);
	arena_free_all(&g->arena);
	index_free(&g->ix);
	log_close(&g->log);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->lock_cv);
	pthread_mutex_destroy(&g->qlock);
	pthread_cond_destroy(&g->qcv);
	free(g);
}
