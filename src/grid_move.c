/*
 * grid_move.c - movement of blocks between the grid's tiers, for the local backend.
 *
 * A store lands in DRAM; a DRAM victim is demoted (written to NVMe) unless it is already
 * there with a record no older than its last use; an NVMe hit is promoted to DRAM, at once
 * when room needs no I/O, else by a worker (REQ_PROMOTE, a queue served after callers'
 * requests) that writes the DRAM policy's victims down first: an I/O thread never waits on
 * I/O.  In cache mode a promoted block's NVMe record is written again when it leaves DRAM
 * (entry.nvme_stale), so that the NVMe tier's write order, which whole-segment eviction
 * follows, is the order of last use (not in durable mode: see promote()).  NVMe space is
 * freed a whole segment at a time; the index may also drop single NVMe entries when it,
 * not the disk, is full.  With cfg.shared_demote, blocks that leave the local tiers (DRAM
 * victims no NVMe tier takes, the live blocks of a segment eviction reuses) are published
 * to the shared tier first, if the policy would keep them.
 *
 * Locking: every function here expects g->lock held unless its comment says otherwise.
 * write_back() and dram_alloc() (which calls it) drop the lock while their writes run and
 * take it again: callers re-read entries after them.  An entry being written or copied has
 * refs > 0 and is neither evicted nor freed meanwhile.  See grid.h for the lock order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grid.h"

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

void pol_insert(kvg_grid *g, int t, uint32_t slot, const struct policy_block *b)
{
	struct entry *e = &g->ix.e[slot];
	if (e->state & pol_bit(t)) {
		g->pol_ops->hit(g->pol[t], slot, b);
		return;
	}
	g->pol_ops->insert(g->pol[t], slot, b);
	e->state |= pol_bit(t);
}

void pol_hit(kvg_grid *g, int t, uint32_t slot, const struct policy_block *b)
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
	if (v != POLICY_NONE) {
		/* a policy only ever names a member of its order */
		KVG_ASSERT((g->ix.e[v].state & (E_USED | pol_bit(t))) == (E_USED | pol_bit(t)));
		g->ix.e[v].state &= ~pol_bit(t);
	}
	return v;
}

/* ---- segment lists (locked) ---------------------------------------------------------- */

void seg_link(kvg_grid *g, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	KVG_ASSERT_LOCKED(&g->lock);
	KVG_ASSERT((e->state & E_NVME) && e->seg != SLOT_NONE); /* its record is there */
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
	KVG_ASSERT(e->seg != SLOT_NONE);
	/* a member: either it has a predecessor, or it is the head */
	KVG_ASSERT(e->sprev != SLOT_NONE || nvme_seg_head(g->nv, e->seg) == slot);
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
void seg_maybe_free(kvg_grid *g, uint32_t seg)
{
	nvme_seg_release(g->nv, seg);
}

/* ---- dropping copies (locked) -------------------------------------------------------- */

void maybe_free_slot(kvg_grid *g, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	if (!(e->state & (E_DRAM | E_NVME | E_FILLING)) && e->refs == 0)
		index_del(&g->ix, slot);
}

/* Returns the chunks freed (none while the block's chunks are lent to a view). */
uint32_t drop_dram(kvg_grid *g, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	KVG_ASSERT_LOCKED(&g->lock);
	KVG_ASSERT((e->state & E_DRAM) && e->dram != SLOT_NONE);
	pol_remove(g, KVG_TIER_DRAM, slot);
	uint32_t freed = arena_release(&g->arena, e->dram);
	e->dram = SLOT_NONE;
	e->state &= ~E_DRAM;
	g->st.tier[KVG_TIER_DRAM].blocks--;
	g->st.tier[KVG_TIER_DRAM].bytes -= e->len;
	return freed;
}

/* Publishes slot's NVMe record at loc (a finished store or demotion, or one found by
 * recovery): its location, the segment's list, the NVMe policy and the counters.  Locked. */
void add_nvme(kvg_grid *g, uint32_t slot, const struct nvme_loc *loc, const struct policy_block *b)
{
	struct entry *e = &g->ix.e[slot];
	e->seg = loc->seg;
	e->off4k = loc->off4k;
	e->gen = loc->gen;
	e->state |= E_NVME;
	seg_link(g, slot);
	pol_insert(g, KVG_TIER_NVME, slot, b);
	g->st.tier[KVG_TIER_NVME].blocks++;
	g->st.tier[KVG_TIER_NVME].bytes += e->len;
}

void drop_nvme(kvg_grid *g, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	KVG_ASSERT_LOCKED(&g->lock);
	KVG_ASSERT(e->state & E_NVME);
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

/* Drops every entry of an evictable segment and frees it for reuse. */
static void seg_evict(kvg_grid *g, uint32_t seg)
{
	for (uint32_t s; (s = nvme_seg_head(g->nv, seg)) != SLOT_NONE;) {
		drop_nvme(g, s);
		g->st.tier[KVG_TIER_NVME].evictions++;
		maybe_free_slot(g, s);
	}
	nvme_seg_free(g->nv, seg);
}

/* Evicts the whole segment holding the policy's victim; 0, or KVG_EFULL if none can go. */
static int nvme_evict_one(kvg_grid *g)
{
	uint32_t v = pol_victim(g, KVG_TIER_NVME, nvme_evictable_cb);
	if (v == POLICY_NONE)
		return KVG_EFULL;
	seg_evict(g, g->ix.e[v].seg);
	return 0;
}

static int nvme_demote_seg(kvg_grid *g);

/*
 * Reserves room for a record of len bytes, evicting whole segments as needed.  With
 * cfg.shared_demote, an eviction publishes what leaves the grid first (nvme_demote_seg(),
 * which drops and retakes the lock: callers re-read entries after this); after a few
 * segments kept busy meanwhile (pinned, being read), a plain eviction.  Locked.
 */
int nvme_place(kvg_grid *g, uint64_t len, struct nvme_loc *loc)
{
	KVG_ASSERT_LOCKED(&g->lock);
	for (int tries = 0;; tries++) {
		int rc = nvme_reserve(g->nv, len, loc);
		if (rc != -ENOSPC)
			return rc;
		rc = shared_demotes(g) && tries < 8 ? nvme_demote_seg(g) : nvme_evict_one(g);
		if (rc == KVG_EFULL && g->segs_demoting) {
			/* the segments that could go are being published: one is about to */
			pthread_cond_wait(&g->lock_cv, &g->lock);
			continue;
		}
		if (rc)
			return rc;
	}
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

/* ---- synchronous NVMe writes of DRAM copies (demotion, write-through, close) ---------- */

struct wait_all {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int left;
	int *rcs; /* status of each block, by op->arg_idx */
};

/* A transfer of a wait_all batch finished: note its status and give the op back at once,
 * so that a caller never sits on finished ops while it waits for the rest (the pool is
 * bounded). */
static void wait_all_done(struct nvme_op *op, int status)
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
	op->done = wait_all_done;
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

uint32_t parts_for(const kvg_grid *g, uint64_t len)
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
void write_back(kvg_grid *g, const uint32_t *slots, int n)
{
	struct nvme_loc locs[64];
	int rcs[64], placed[64];
	struct wait_all w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, rcs};
	KVG_ASSERT(n <= 64);
	for (int i = 0; i < n; i++) {
		struct entry *e = &g->ix.e[slots[i]];
		/* the caller's ref keeps it, and E_DEMOTING marks the write it asked for */
		KVG_ASSERT(e->refs > 0 &&
			   (e->state & (E_DRAM | E_DEMOTING)) == (E_DRAM | E_DEMOTING));
		rcs[i] = nvme_place(g, e->len, &locs[i]); /* may drop the lock: the ref keeps e */
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
		entry_unref(e);
		e->state &= ~E_DEMOTING;
		if (placed[i])
			nvme_seg_io(g->nv, locs[i].seg, -1);
		int renew = placed[i] && rcs[i] == 0 && (e->state & E_NVME) && e->nvme_stale;
		if (renew) /* the new record replaces the old one, which stays on disk unindexed
			    * (same key, same bytes) until its segment is reused */
			drop_nvme(g, slots[i]);
		if (placed[i] && rcs[i] == 0 && !(e->state & E_NVME)) {
			e->nvme_stale = 0;
			struct policy_block b = pblock(g, e);
			add_nvme(g, slots[i], &locs[i], &b);
			g->st.tier[KVG_TIER_DRAM].demotions++;
		} else if (rcs[i] && rcs[i] != KVG_EFULL && rcs[i] != KVG_EDEGRADED) {
			g->st.store_failures++;
		}
		if (placed[i]) /* after publishing: a failed write may leave it empty */
			seg_maybe_free(g, locs[i].seg);
	}
	pthread_cond_broadcast(&g->lock_cv);
}

/* Writes tombstones for keys[0..n) whose NVMe records must not come back after a crash;
 * waits for them.  The grid lock is not held. */
void write_tombstones(kvg_grid *g, const kvg_key *keys, int n)
{
	int rcs[64];
	struct wait_all w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, rcs};
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

/* ---- demotion into the shared tier (cfg.shared_demote) ------------------------------- */

/*
 * With cfg.shared_demote, a block that leaves the local tiers altogether is published to the
 * shared tier instead of being dropped, if the policy would keep it: the filter DRAM->NVMe
 * demotion asks (the NVMe policy's admit) decides, and a block believed in the tier already
 * (entry.in_shared) is checked there first (one stat, none if seen within shared_cache_ms)
 * and published again only if another host evicted or deleted it.  Two ways out of the
 * local tiers: a DRAM victim that no NVMe tier takes (none, degraded, demote_on_evict off),
 * and the live blocks of an NVMe segment that whole-segment eviction is about to reuse
 * (those without a DRAM copy: the others stay).  The I/O runs with g->lock dropped, each
 * block held by a ref; an NVMe record is read and verified before its bytes are published,
 * and one that fails is not demoted.
 */

#define DEMOTE_READ_MAX	  32	      /* NVMe records read at once for publishing */
#define DEMOTE_READ_BYTES (64u << 20) /* and their bytes at most */

static int nvme_takes(kvg_grid *g)
{
	return g->nv && g->cfg.demote_on_evict && !nvme_degraded(g->nv);
}

/* The NVMe policy's admission filter, which decides whether a block leaving DRAM is worth
 * keeping (on NVMe, or in the shared tier); 1 for a policy without one.  Locked. */
static int nvme_policy_admits(kvg_grid *g, uint32_t slot)
{
	if (!g->pol_ops->admit)
		return 1;
	struct policy_block b = pblock(g, &g->ix.e[slot]);
	return g->pol_ops->admit(g->pol[KVG_TIER_NVME], slot, &b);
}

/* Whether a block leaving the local tiers goes to the shared tier (published, or checked
 * there when in_shared).  Locked. */
static int wants_shared(kvg_grid *g, uint32_t slot)
{
	return shared_demotes(g) && nvme_policy_admits(g, slot);
}

/* A block's demotion ended with rc (0: in the tier), present when a check found it there
 * and nothing was written: the grid now knows whether it is in the tier, and tier t counts
 * a demotion if this one put it there.  Locked, the slot held. */
static void shared_demoted(kvg_grid *g, uint32_t slot, int t, int rc, int present)
{
	g->ix.e[slot].in_shared = rc == 0;
	if (rc == 0 && !present)
		g->st.tier[t].demotions++;
}

/*
 * Publishes the DRAM copies of slots[0..n): victims marked E_DEMOTING, each with a ref held
 * by the caller, which this releases.  Called with g->lock held; drops it while the writes
 * run, as write_back() does.
 */
static void dram_to_shared(kvg_grid *g, const uint32_t *slots, size_t n)
{
	size_t pieces = 0, used = 0;
	for (size_t i = 0; i < n; i++)
		pieces += arena_chunks_for(&g->arena, g->ix.e[slots[i]].len) + 1;
	struct shared_demote *d = calloc(n, sizeof(*d));
	struct iovec *iov = malloc(pieces * sizeof(*iov));
	for (size_t i = 0; d && iov && i < n; i++) {
		struct entry *e = &g->ix.e[slots[i]]; /* refs held: fields stable */
		KVG_ASSERT(e->refs > 0 &&
			   (e->state & (E_DRAM | E_DEMOTING)) == (E_DRAM | E_DEMOTING));
		int cnt =
		    arena_iov(&g->arena, e->dram, 0, e->len, iov + used, (int)(pieces - used));
		d[i] = (struct shared_demote){.key = e->key,
					      .iov = iov + used,
					      .iovcnt = cnt > 0 ? cnt : 0,
					      .depth = e->depth,
					      .parts = parts_for(g, e->len),
					      .check = e->in_shared,
					      .rc = cnt < 0 ? KVG_ETOOBIG : 0};
		used += cnt > 0 ? (size_t)cnt : 0;
	}
	pthread_mutex_unlock(&g->lock);
	if (d && iov)
		grid_shared_demote(g, d, n);
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < n; i++) {
		struct entry *e = &g->ix.e[slots[i]];
		entry_unref(e);
		e->state &= ~E_DEMOTING;
		shared_demoted(g, slots[i], KVG_TIER_DRAM, d && iov ? d[i].rc : -ENOMEM,
			       d && iov && d[i].present);
	}
	pthread_cond_broadcast(&g->lock_cv);
	free(iov);
	free(d);
}

/* A block of a segment about to be reused, to publish; rc: 0 once it is in the tier. */
struct seg_block {
	uint32_t slot;
	struct nvme_loc loc;
	kvg_key key;
	uint32_t len, depth;
	int check; /* believed in the tier (in_shared): checked there before it is read */
	int rc;
	int present; /* the check found it there: nothing read or written */
};

/* Reads b[0..k) from NVMe (verified by the tier before it reports success) and publishes
 * those that read back intact.  g->lock not held. */
static void seg_blocks_publish(kvg_grid *g, struct seg_block *b, size_t k)
{
	void *buf[DEMOTE_READ_MAX];
	int rcs[DEMOTE_READ_MAX];
	struct iovec iov[DEMOTE_READ_MAX];
	struct shared_demote d[DEMOTE_READ_MAX];
	struct wait_all w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, rcs};
	KVG_ASSERT(k <= DEMOTE_READ_MAX);
	for (size_t j = 0; j < k; j++) {
		rcs[j] = -ENOMEM;
		if (posix_memalign(&buf[j], KVG_ALIGN, b[j].len ? b[j].len : 1)) {
			buf[j] = NULL;
			continue;
		}
		struct nvme_op *op = nvme_op_get(g->nv);
		op->loc = b[j].loc;
		op->key = b[j].key;
		op->len = b[j].len;
		op->dst = buf[j];
		wait_all_submit(g, &w, op, (int)j);
	}
	wait_all_wait(&w);
	for (size_t j = 0; j < k; j++) {
		iov[j] = (struct iovec){buf[j], b[j].len};
		d[j] = (struct shared_demote){.key = b[j].key,
					      .iov = &iov[j],
					      .iovcnt = 1,
					      .depth = b[j].depth,
					      .parts = parts_for(g, b[j].len),
					      .rc = rcs[j]};
	}
	grid_shared_demote(g, d, k);
	for (size_t j = 0; j < k; j++) {
		b[j].rc = d[j].rc;
		free(buf[j]);
	}
}

/* The blocks of b[0..n) believed in the tier are checked there (in parallel); those found
 * get rc 0 and present, and go to the end of b.  Returns how many are left to publish
 * (b[0..return)).  g->lock not held. */
static size_t seg_check(kvg_grid *g, struct seg_block *b, size_t n)
{
	size_t nc = 0;
	for (size_t i = 0; i < n; i++)
		nc += b[i].check != 0;
	kvg_key *keys = nc ? malloc(nc * sizeof(*keys)) : NULL;
	uint8_t *present = nc ? calloc(nc, 1) : NULL;
	if (!keys || !present) { /* none to check, or no memory: publish all (EEXIST at worst) */
		free(keys);
		free(present);
		return n;
	}
	for (size_t i = 0, k = 0; i < n; i++)
		if (b[i].check)
			keys[k++] = b[i].key;
	grid_shared_present(g, keys, present, nc);
	for (size_t i = 0, k = 0; i < n; i++)
		if (b[i].check && present[k++]) {
			b[i].rc = 0;
			b[i].present = 1;
		}
	free(keys);
	free(present);
	size_t left = 0; /* the ones to publish first, in their order */
	for (size_t i = 0; i < n; i++)
		if (!b[i].present) {
			struct seg_block t = b[left];
			b[left++] = b[i];
			b[i] = t;
		}
	return left;
}

/* seg_blocks_publish() over b[0..n), a bounded batch at a time.  g->lock not held. */
static void seg_publish(kvg_grid *g, struct seg_block *b, size_t n)
{
	n = seg_check(g, b, n);
	for (size_t at = 0; at < n;) {
		size_t k = 1;
		uint64_t bytes = b[at].len;
		while (at + k < n && k < DEMOTE_READ_MAX &&
		       bytes + b[at + k].len <= DEMOTE_READ_BYTES)
			bytes += b[at + k++].len;
		seg_blocks_publish(g, b + at, k);
		at += k;
	}
}

/* After a demoting eviction's unlocked phase: the segment goes if it still may, else its
 * victim v (taken out of the policy's order) goes back in.  Locked. */
static void seg_demote_end(kvg_grid *g, uint32_t seg, uint32_t v)
{
	struct entry *e = &g->ix.e[v];
	if (nvme_seg_head(g->nv, seg) == SLOT_NONE) {
		seg_maybe_free(g, seg); /* every entry left meanwhile */
	} else if (seg_evictable(g, seg)) {
		seg_evict(g, seg);
	} else if ((e->state & (E_USED | E_NVME | E_POL_NVME)) == (E_USED | E_NVME)) {
		struct policy_block b = pblock(g, e); /* pinned or read meanwhile: it stays */
		pol_insert(g, KVG_TIER_NVME, v, &b);
	}
}

/*
 * Whole-segment eviction that publishes first: takes the NVMe policy's victim's segment as
 * nvme_evict_one() does, holds its entries (refs: no other thread evicts the segment or
 * frees a slot meanwhile, and I/O in flight keeps the segment from reuse), publishes those
 * that leave the grid with it, then evicts it if it still may go.  Returns 0, or KVG_EFULL
 * if no segment can go.  Locked; drops the lock while blocks are read and published.
 */
static int nvme_demote_seg(kvg_grid *g)
{
	uint32_t v = pol_victim(g, KVG_TIER_NVME, nvme_evictable_cb);
	if (v == POLICY_NONE)
		return KVG_EFULL;
	uint32_t seg = g->ix.e[v].seg;
	size_t live = 0, m = 0;
	for (uint32_t s = nvme_seg_head(g->nv, seg); s != SLOT_NONE; s = g->ix.e[s].snext)
		live++;
	uint32_t *held = malloc(live * sizeof(*held));
	struct seg_block *b = malloc(live * sizeof(*b));
	if (!held || !b) { /* no memory to publish with: a plain eviction */
		free(held);
		free(b);
		seg_evict(g, seg);
		return 0;
	}
	live = 0;
	for (uint32_t s = nvme_seg_head(g->nv, seg); s != SLOT_NONE; s = g->ix.e[s].snext) {
		struct entry *e = &g->ix.e[s];
		entry_ref(e);
		held[live++] = s;
		if (!(e->state & E_DRAM) && wants_shared(g, s))
			b[m++] = (struct seg_block){.slot = s,
						    .loc = {e->seg, e->off4k, e->gen},
						    .key = e->key,
						    .len = e->len,
						    .depth = e->depth,
						    .check = e->in_shared};
	}
	nvme_seg_io(g->nv, seg, +1);
	g->segs_demoting++;
	pthread_mutex_unlock(&g->lock);
	seg_publish(g, b, m);
	pthread_mutex_lock(&g->lock);
	g->segs_demoting--;
	for (size_t i = 0; i < m; i++)
		shared_demoted(g, b[i].slot, KVG_TIER_NVME, b[i].rc, b[i].present);
	for (size_t i = 0; i < live; i++) {
		entry_unref(&g->ix.e[held[i]]);
		maybe_free_slot(g, held[i]); /* one that left NVMe meanwhile */
	}
	nvme_seg_io(g->nv, seg, -1);
	seg_demote_end(g, seg, v);
	pthread_cond_broadcast(&g->lock_cv);
	free(held);
	free(b);
	return 0;
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
	if (!nvme_takes(g))
		return 0;
	if ((e->state & E_NVME) && !e->nvme_stale)
		return 0;
	if (g->cfg.nvme_admit_on_reuse && e->hits == 0)
		return 0;
	return nvme_policy_admits(g, slot);
}

/* Demoted victims leave DRAM, unless they were used or pinned meanwhile: those go back
 * into the DRAM policy's order.  Locked. */
static void dram_demoted(kvg_grid *g, const uint32_t *slots, int n)
{
	for (int i = 0; i < n; i++) {
		struct entry *e = &g->ix.e[slots[i]];
		if ((e->state & E_DRAM) && !e->refs && !e->pins) {
			drop_dram(g, slots[i]);
			maybe_free_slot(g, slots[i]);
		} else if (e->state & E_DRAM) {
			struct policy_block b = pblock(g, e);
			pol_insert(g, KVG_TIER_DRAM, slots[i], &b);
		}
	}
}

/*
 * First chunk of n free chunks, evicting DRAM victims as needed (demoting them to NVMe, or
 * with no NVMe tier to take them to the shared tier, when the policy wants them kept); CHUNK_END if
 * nothing more can be evicted.  With may_write 0, only victims that need no I/O are taken (I/O
 * threads must not wait on I/O).
 */
uint32_t dram_alloc(kvg_grid *g, uint32_t n, int may_write)
{
	KVG_ASSERT_LOCKED(&g->lock);
	for (;;) {
		uint32_t c = arena_alloc(&g->arena, n);
		if (c != CHUNK_END)
			return c;
		uint32_t demote[64],
		    up[64]; /* written down to NVMe, published to the shared tier */
		int nd = 0, nu = 0;
		uint32_t freed = g->arena.free_count;
		while (freed < n && nd + nu < 64) {
			uint32_t v =
			    pol_victim(g, KVG_TIER_DRAM,
				       may_write ? dram_evictable_cb : dram_evictable_nowrite_cb);
			if (v == POLICY_NONE)
				break;
			struct entry *e = &g->ix.e[v];
			g->st.tier[KVG_TIER_DRAM].evictions++;
			int to_nvme = may_write && wants_demotion(g, v);
			int to_shared = !to_nvme && may_write && !(e->state & E_NVME) &&
					!nvme_takes(g) && wants_shared(g, v);
			if (to_nvme || to_shared) {
				e->state |= E_DEMOTING;
				entry_ref(e);
				if (to_nvme)
					demote[nd++] = v;
				else
					up[nu++] = v;
				freed += arena_chunks_for(&g->arena, e->len);
				continue;
			}
			freed += drop_dram(g, v);
			maybe_free_slot(g, v);
		}
		if (nd || nu) {
			if (nd)
				write_back(g, demote, nd); /* drop and retake the lock */
			if (nu)
				dram_to_shared(g, up, (unsigned)nu);
			dram_demoted(g, demote, nd);
			dram_demoted(g, up, nu);
			continue;
		}
		if (freed < n)
			return arena_alloc(&g->arena, n);
	}
}

/* A free index slot for key, evicting if the index is full; SLOT_NONE if impossible. */
uint32_t slot_for(kvg_grid *g, const kvg_key *key)
{
	KVG_ASSERT_LOCKED(&g->lock);
	uint32_t s = index_add(&g->ix, key);
	while (s == SLOT_NONE) {
		uint32_t v =
		    has_dram(g) ? pol_victim(g, KVG_TIER_DRAM, dram_evictable_cb) : POLICY_NONE;
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

/* ---- background demotion (cfg.dram_free_bytes) -------------------------------------- */

/* Whether a store that just took room should start a clean (grid lock held). */
int wants_clean(const kvg_grid *g)
{
	return g->clean_chunks && g->arena.free_count < g->clean_chunks / 2 + 1;
}

/* REQ_CLEAN, on a worker: room for clean_chunks is made (dram_alloc evicts and demotes as
 * for a store) and given straight back. */
void dram_clean(kvg_grid *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->arena.free_count < g->clean_chunks) {
		uint32_t c = dram_alloc(g, g->clean_chunks, 1);
		if (c != CHUNK_END)
			arena_release(&g->arena, c);
	}
	pthread_mutex_unlock(&g->lock);
}

/* ---- promotion and prefetch ------------------------------------------------------------ */

/*
 * Copies a verified NVMe block into DRAM when room can be made without I/O and the DRAM
 * policy admits it.  When room would take I/O (the DRAM victims are not on NVMe yet: they
 * would have to be written down, which an I/O thread must not wait for) and may_defer is
 * set, the promotion is handed to a worker instead (promote_later()).  pre, when not
 * CHUNK_END, is room a worker already made for pre_len bytes: used if the block still fits
 * it, else given back.  The caller holds a ref on the entry -- so the slot still names the
 * same key and location -- and this releases it.
 */
void promote(kvg_grid *g, uint32_t slot, const void *src, int may_defer, uint32_t pre,
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
	entry_unref(e);
	maybe_free_slot(g, slot);
	pthread_cond_broadcast(&g->lock_cv);
	pthread_mutex_unlock(&g->lock);
	if (defer)
		promote_later(g, &key);
}

/*
 * Promotes an NVMe-only block to DRAM ahead of its load (kvg_prefetch), or after a load
 * whose I/O thread could not make room (REQ_PROMOTE).  Runs on a worker, so it may make
 * room with I/O: DRAM victims, as the DRAM policy picks them, are written down to NVMe
 * first (dram_alloc with may_write), and the chunks are reserved for the promotion that
 * follows the read (promote() gives them back if it does not take place).  Loads through a
 * private request straight into load_one(): waiting on the grid's own queue from a worker
 * could take every worker and stall the grid.
 */
void prefetch_one(kvg_grid *g, const kvg_key *key)
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
	struct kvg_io io = {.key = *key, .buf = buf, .len = len};
	struct kvg_req r = {.g = g,
			    .op = REQ_LOAD,
			    .ios = &io,
			    .n = 1,
			    .pending = 2,
			    .opts = {.flags = LOAD_PREFETCH},
			    .promote_chunk = c,
			    .promote_len = len};
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
