/*
 * grid_block.c - the local backend's block paths (grid_local_ops): store, load, zero-copy
 * views and fills, lookup, pin, delete, prefetch and stats, over the index, the DRAM arena
 * and the NVMe tier.  Movement between tiers is grid_move.c's; open and close grid_open.c's.
 *
 * Locking: each path takes g->lock to look up and claim an entry, and drops it for the copy
 * or the I/O.  An entry being copied or transferred has refs > 0 and cannot be evicted or
 * freed; one being stored is E_FILLING and invisible, so a lookup answers a miss, never a
 * block whose bytes are not all there.  NVMe reads complete on the tier's I/O threads
 * (load_nvme_done), which take g->lock again to publish and never wait on I/O.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grid.h"

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
	entry_unref(e);
	if (status == 0) {
		struct policy_block b = pblock_req(e, r);
		add_nvme(g, slot, &op->loc, &b);
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
	/* still E_FILLING: the slot stays ours if nvme_place() drops the lock */
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
	entry_ref(e);
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

/* Whether block i of store r is in the shared tier already: published by this store
 * (grid_shared.c marks it so) or promoted from there. */
static int in_shared(const kvg_grid *g, const struct kvg_req *r, size_t i)
{
	return g->sh && (r->ios[i].tier == KVG_TIER_SHARED || (r->opts.flags & STORE_IN_SHARED));
}

/*
 * A store of a key already present (or arriving): its bytes are kept (blocks are content-
 * addressed) and the policies hear of a hit.  Locked; unlocks.
 */
static void store_refresh(kvg_grid *g, struct kvg_req *r, size_t i, uint32_t slot)
{
	struct entry *e = &g->ix.e[slot];
	e->hint = flags_hint(r->opts.flags);
	if (in_shared(g, r, i))
		e->in_shared = 1;
	int want_nvme = g->nv && (g->cfg.durability == KVG_DURABILITY_DURABLE ||
				  (r->opts.flags & KVG_STORE_NVME));
	if (want_nvme && (e->state & E_DRAM) && !(e->state & (E_NVME | E_FILLING))) {
		/* only in DRAM (an earlier write-through failed): a store that promises NVMe
		 * must put it there before it answers */
		entry_ref(e);
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
}

/* No DRAM room for a new block: straight to NVMe if there is a tier, else a full grid.
 * Locked; unlocks. */
static void store_no_room(kvg_grid *g, struct kvg_req *r, size_t i, uint32_t slot)
{
	if (g->nv) {
		store_to_nvme(g, r, i, slot); /* unlocks */
		return;
	}
	g->ix.e[slot].state &= ~E_FILLING;
	index_del(&g->ix, slot);
	g->st.store_failures++;
	pthread_cond_broadcast(&g->lock_cv);
	pthread_mutex_unlock(&g->lock);
	block_done(r, i, KVG_EFULL);
}

/*
 * The block's bytes are in its DRAM chunks: it joins the DRAM tier, and is written through
 * to NVMe when the mode or the request asks.  In durable mode it stays invisible until its
 * record is on NVMe, so that "stored" means durable.  Locked, with our ref; unlocks.
 */
static void store_publish(kvg_grid *g, struct kvg_req *r, size_t i, uint32_t slot)
{
	struct kvg_io *io = &r->ios[i];
	struct entry *e = &g->ix.e[slot];
	KVG_ASSERT(e->state & E_FILLING);
	e->state |= E_DRAM;
	struct policy_block b = pblock_req(e, r);
	if (i > 0 && io->depth && r->ios[i - 1].depth + 1 == io->depth)
		b.parent_slot = index_find(&g->ix, &r->ios[i - 1].key); /* chain in one batch */
	pol_insert(g, KVG_TIER_DRAM, slot, &b);
	g->st.tier[KVG_TIER_DRAM].blocks++;
	g->st.tier[KVG_TIER_DRAM].bytes += e->len;
	g->st.tier[KVG_TIER_DRAM].bytes_written += e->len;
	int durable = g->nv && g->cfg.durability == KVG_DURABILITY_DURABLE;
	int through =
	    g->nv && (durable || g->cfg.write_through || (r->opts.flags & KVG_STORE_NVME));
	int rc = 0;
	if (through) {
		if (!durable) /* visible at once; in durable mode only once written */
			e->state &= ~E_FILLING;
		e->state |= E_DEMOTING;
		write_back(g, &slot, 1); /* releases our ref */
		e = &g->ix.e[slot];
		e->state &= ~E_FILLING;
		rc = (e->state & E_NVME) || !durable ? 0 : KVG_EFULL;
	} else {
		e->state &= ~E_FILLING;
		entry_unref(e);
	}
	pthread_cond_broadcast(&g->lock_cv); /* deletes wait for FILLING and refs to clear */
	pthread_mutex_unlock(&g->lock);
	block_done(r, i, rc);
}

void store_one(kvg_grid *g, struct kvg_req *r, size_t i)
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
	if (slot != SLOT_NONE)
		return store_refresh(g, r, i, slot); /* unlocks */
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
	e->in_shared = in_shared(g, r, i);
	e->state |= E_FILLING; /* invisible, and not evictable, while we work */
	uint32_t c = CHUNK_END;
	if (has_dram(g) && io->len <= g->arena.bytes)
		c = dram_alloc(g, arena_chunks_for(&g->arena, io->len), 1); /* may drop the lock */
	if (c == CHUNK_END)
		return store_no_room(g, r, i, slot); /* unlocks */
	e = &g->ix.e[slot]; /* (the lock may have been dropped; the slot is ours) */
	e->dram = c;
	entry_ref(e);
	int clean = wants_clean(g);
	pthread_mutex_unlock(&g->lock);
	if (clean)
		clean_later(g);
	arena_write(&g->arena, c, 0, io->buf, io->len);
	pthread_mutex_lock(&g->lock);
	store_publish(g, r, i, slot); /* unlocks */
}

/* ---- load ------------------------------------------------------------------------------ */

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
		entry_unref(e); /* else promote() keeps the slot ours until it is done */
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
	} else if (status != KVG_EBUFSIZE && g->sh && !layered &&
		   !(r->opts.flags & LOAD_PREFETCH) && grid_shared_refetch(g, r, i) == 0) {
		/* the local copy is damaged or unreadable: the shared tier below still has the
		 * block (local NVMe is a cache of it), e.g. a store acknowledged because it was
		 * published there while its local write was torn by a crash */
		status = 0;
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

/* A DRAM hit claimed for its copy: our ref keeps its chunks while the lock is not held. */
struct load_hit {
	uint32_t idx, slot, chunk, len;
};

/* Blocks of one request whose DRAM hits are claimed under one hold of g->lock. */
#define LOAD_WINDOW 64

/* A load of request r found e: notes the request's session hint and the hit (for the
 * shared tier too), and takes a transfer reference.  Returns what the policy is told of
 * the hit.  g->lock held. */
static struct policy_block load_ref(kvg_grid *g, struct entry *e, const struct kvg_req *r)
{
	if (!(r->opts.flags & LOAD_PREFETCH)) { /* a prefetch is no word on the session */
		e->hint = flags_hint(r->opts.flags);
		grid_shared_hit(g, e); /* a use of the block, which its shared object's age says */
	}
	struct policy_block b = pblock_req(e, r);
	if (e->hits < 255)
		e->hits++;
	entry_ref(e);
	return b;
}

/*
 * Block i is a DRAM hit its buffer holds: claims it into *h (ref, policy hit, counters) and
 * returns 1.  Anything else (a miss, an NVMe hit, a short buffer) is left to load_one():
 * returns 0.  Locked.
 */
static int load_claim_dram(kvg_grid *g, struct kvg_req *r, size_t i, struct load_hit *h)
{
	struct kvg_io *io = &r->ios[i];
	uint32_t slot = index_find(&g->ix, &io->key);
	struct entry *e = slot != SLOT_NONE ? &g->ix.e[slot] : NULL;
	if (!e || (e->state & E_FILLING) || !(e->state & E_DRAM) || e->len > io->len)
		return 0;
	g->st.loads++;
	struct policy_block b = load_ref(g, e, r);
	pol_hit(g, KVG_TIER_DRAM, slot, &b);
	g->st.tier[KVG_TIER_DRAM].hits++;
	*h = (struct load_hit){.idx = (uint32_t)i, .slot = slot, .chunk = e->dram, .len = e->len};
	return 1;
}

/* Copies claimed hits out of the arena, without the lock.  A layered load (KVG_LOAD_LAYERS)
 * copies layer by layer across the blocks, so that layer 0 of all of them arrives first. */
static void load_copy_dram(kvg_grid *g, struct kvg_req *r, const struct load_hit *h, size_t n)
{
	uint32_t L = r->layers, whole = 0;
	int layered = L > 1 && (r->opts.flags & KVG_LOAD_LAYERS);
	for (size_t k = 0; k < n; k++) {
		struct kvg_io *io = &r->ios[h[k].idx];
		if (!layered || h[k].len % L) {
			arena_read(&g->arena, h[k].chunk, 0, io->buf, h[k].len);
			whole++;
		}
		io->len = h[k].len;
		io->tier = KVG_TIER_DRAM;
	}
	if (L && whole)
		req_layer_arrived_n(r, 0, L, whole);
	if (!layered || whole == n)
		return;
	for (uint32_t l = 0; l < L; l++) {
		for (size_t k = 0; k < n; k++) {
			uint64_t lb = h[k].len / L;
			if (h[k].len % L == 0)
				arena_read(&g->arena, h[k].chunk, l * lb,
					   (uint8_t *)r->ios[h[k].idx].buf + l * lb, lb);
		}
		req_layer_arrived_n(r, l, 1, (uint32_t)(n - whole));
	}
}

/* Gives back the claims of copied hits and finishes their blocks.  Takes g->lock. */
static void load_release_dram(kvg_grid *g, struct kvg_req *r, const struct load_hit *h, size_t n)
{
	pthread_mutex_lock(&g->lock);
	for (size_t k = 0; k < n; k++) {
		entry_unref(&g->ix.e[h[k].slot]);
		g->st.tier[KVG_TIER_DRAM].bytes_read += h[k].len;
		maybe_free_slot(g, h[k].slot);
	}
	pthread_cond_broadcast(&g->lock_cv);
	pthread_mutex_unlock(&g->lock);
	for (size_t k = 0; k < n; k++)
		block_done(r, h[k].idx, 0);
}

void load_one(kvg_grid *g, struct kvg_req *r, size_t i)
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
		if (g->sh && !(r->opts.flags & LOAD_PREFETCH))
			grid_shared_load(g, r, i); /* the tier below the local ones */
		else
			block_done(r, i, KVG_ENOTFOUND);
		return;
	}
	if (e->len > io->len) {
		io->len = e->len;
		pthread_mutex_unlock(&g->lock);
		block_done(r, i, KVG_EBUFSIZE);
		return;
	}
	struct load_hit h;
	if (load_claim_dram(g, r, i, &h)) {
		g->st.loads--; /* counted once, above */
		pthread_mutex_unlock(&g->lock);
		load_copy_dram(g, r, &h, 1);
		load_release_dram(g, r, &h, 1);
		return;
	}
	struct policy_block b = load_ref(g, e, r);
	if (has_dram(g))
		g->st.tier[KVG_TIER_DRAM].misses++;
	pol_hit(g, KVG_TIER_NVME, slot, &b);
	nvme_seg_io(g->nv, e->seg, +1);
	struct nvme_loc loc = {e->seg, e->off4k, e->gen};
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

/*
 * Blocks [from, from+n) of a load, n <= LOAD_WINDOW: the DRAM hits are claimed under one
 * hold of the lock and given back under another; the other blocks (NVMe hits, misses) go
 * through load_one() first, so that their reads start before the copies.
 */
static void load_window(kvg_grid *g, struct kvg_req *r, size_t from, size_t n)
{
	struct load_hit h[LOAD_WINDOW];
	uint8_t hit[LOAD_WINDOW];
	size_t nh = 0;
	pthread_mutex_lock(&g->lock);
	for (size_t k = 0; k < n; k++) {
		r->ios[from + k].tier = KVG_TIER_NONE;
		hit[k] = (uint8_t)load_claim_dram(g, r, from + k, &h[nh]);
		nh += hit[k];
	}
	pthread_mutex_unlock(&g->lock);
	for (size_t k = 0; k < n; k++)
		if (!hit[k])
			load_one(g, r, from + k);
	if (!nh)
		return;
	load_copy_dram(g, r, h, nh);
	load_release_dram(g, r, h, nh);
}

/* Blocks [from, from+n) of a request, n <= LOAD_WINDOW. */
static void run_blocks(kvg_grid *g, struct kvg_req *r, size_t from, size_t n)
{
	if (r->op == REQ_LOAD) {
		load_window(g, r, from, n);
		return;
	}
	for (size_t i = from; i < from + n; i++)
		store_one(g, r, i);
}

/* A request split into pieces of about this many bytes: enough to pay for a helper's claim
 * and its wake-up, small enough that two threads end together. */
#define PIECE_BYTES (256u << 10)

/* The blocks of a piece of r, or 0 if r is run whole: an asynchronous request of at least
 * two pieces on a grid with DRAM (where the copies are; without it a request only starts
 * transfers, and its blocks keep their order on disk), not a layer-by-layer load (whose
 * layer 0 must arrive for every block first).  A synchronous call runs on its caller alone,
 * block by block: its blocks reach the policy in their order, as `kvgrid sim` models. */
static uint32_t piece_blocks(const kvg_grid *g, const struct kvg_req *r)
{
	if (!g->nworkers || !has_dram(g) || r->sync || r->n < 2 ||
	    (r->op == REQ_LOAD && (r->opts.flags & KVG_LOAD_LAYERS)))
		return 0;
	uint64_t bytes = 0;
	for (size_t i = 0; i < r->n && bytes < 2 * PIECE_BYTES; i++)
		bytes += r->ios[i].len;
	if (bytes < 2 * PIECE_BYTES)
		return 0;
	uint64_t per = r->ios[0].len ? PIECE_BYTES / r->ios[0].len : LOAD_WINDOW;
	return per < 1 ? 1 : per > LOAD_WINDOW ? LOAD_WINDOW : (uint32_t)per;
}

/* Claims pieces of r until none is left: the thread that split r, and its helpers. */
static void local_help(kvg_grid *g, struct kvg_req *r)
{
	for (;;) {
		size_t from = __atomic_fetch_add(&r->cursor, r->piece, __ATOMIC_RELAXED);
		if (from >= r->n)
			return;
		run_blocks(g, r, from, r->n - from < r->piece ? r->n - from : r->piece);
	}
}

/* REQ_STORE and REQ_LOAD: each block ends in block_done().  A big request is shared with
 * the workers that are idle (req_split()): the copies of one request then run on as many
 * threads as a memcpy of its bytes would. */
static void local_run(kvg_grid *g, struct kvg_req *r)
{
	if (g->sh) {
		grid_shared_run(g, r);
		return;
	}
	uint32_t piece = piece_blocks(g, r);
	if (!piece) {
		for (size_t i = 0; i < r->n; i += LOAD_WINDOW)
			run_blocks(g, r, i, r->n - i < LOAD_WINDOW ? r->n - i : LOAD_WINDOW);
		return;
	}
	r->piece = piece;
	r->cursor = 0;
	size_t pieces = (r->n + piece - 1) / piece;
	req_split(g, r, pieces > UINT32_MAX ? UINT32_MAX : (uint32_t)pieces);
	local_help(g, r);
	req_split_end(g, r);
}

/* ---- views: zero-copy reads of DRAM ------------------------------------------------------ */

/* A view is the arena chain it lends, as a handle: chunk number + 1 (never NULL). */
static int local_view_get(kvg_grid *g, const kvg_key *key, struct iovec *iov, int max_iov,
			  size_t *len, kvg_view **view)
{
	if (!has_dram(g))
		return 0;
	pthread_mutex_lock(&g->lock);
	uint32_t slot = index_find(&g->ix, key);
	struct entry *e = slot != SLOT_NONE ? &g->ix.e[slot] : NULL;
	if ((!e || !visible(e)) && g->sh) {
		pthread_mutex_unlock(&g->lock);
		return 0; /* perhaps in the shared tier: the caller's load will say */
	}
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
		grid_shared_hit(g, e);
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

static void local_view_release(kvg_grid *g, kvg_view *view)
{
	if (!view)
		return;
	pthread_mutex_lock(&g->lock);
	arena_unlend(&g->arena, (uint32_t)((uintptr_t)view - 1));
	pthread_mutex_unlock(&g->lock);
}

/* ---- fills: zero-copy stores into DRAM ---------------------------------------------------- */

static int local_fill_begin(kvg_grid *g, size_t len, struct iovec *iov, int max_iov,
			    struct kvg_fill *fill)
{
	fill->first = CHUNK_END;
	if (!has_dram(g) || g->cfg.write_through || (g->sh && g->cfg.shared_write_through) ||
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

static void local_fill_abort(kvg_grid *g, struct kvg_fill *fill)
{
	if (fill->first == CHUNK_END)
		return;
	pthread_mutex_lock(&g->lock);
	arena_release(&g->arena, fill->first);
	pthread_mutex_unlock(&g->lock);
	fill->first = CHUNK_END;
}

/* Publishes a filled reservation: the end of store_one(), without its copy. */
static int local_fill_commit(kvg_grid *g, struct kvg_fill *fill, const kvg_key *key, uint32_t depth,
			     uint32_t flags)
{
	if (fill->first == CHUNK_END)
		return KVG_EFULL;
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
		entry_ref(e);
		e->state |= E_DEMOTING;
		write_back(g, &slot, 1); /* releases our ref */
	}
	pthread_cond_broadcast(&g->lock_cv);
	pthread_mutex_unlock(&g->lock);
	fill->first = CHUNK_END;
	return 0;
}

/* ---- lookup, pin, delete, prefetch, stats ------------------------------------------------ */

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

static int local_lookup_keys(kvg_grid *g, const kvg_key *keys, size_t n_keys, size_t *hit_blocks,
			     uint8_t *tiers)
{
	pthread_mutex_lock(&g->lock);
	g->st.lookups++;
	size_t hit = present_run(g, keys, n_keys, tiers);
	pthread_mutex_unlock(&g->lock);
	if (g->sh && hit < n_keys) /* the shared tier, past the last local hit */
		hit +=
		    shared_present_run(g->sh, keys + hit, n_keys - hit, tiers ? tiers + hit : NULL);
	*hit_blocks = hit;
	return 0;
}

static int local_pin(kvg_grid *g, const kvg_key *keys, size_t n, int pin)
{
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

/*
 * Removes blocks from every tier.  A block that had an NVMe record gets a tombstone record
 * too, so a crash does not bring it back (best effort: the tombstone lives in a segment of
 * its own choosing, which may be reused before the record's).
 */
static int local_delete(kvg_grid *g, const kvg_key *keys, size_t n)
{
	int count = 0, ntomb = 0;
	kvg_key tomb[64];
	uint8_t *removed = g->sh ? calloc(n, 1) : NULL; /* removed from a local tier */
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
		if (removed)
			removed[i] = 1;
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
	for (size_t i = 0; g->sh && i < n; i++) /* counted once, whichever tiers held it */
		if (shared_delete(g->sh, &keys[i]) && !(removed && removed[i]))
			count++;
	free(removed);
	return count;
}

static int local_prefetch(kvg_grid *g, const kvg_key *keys, size_t n)
{
	if (!g->nv || !has_dram(g) || !n)
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
	r->opts = (struct kvg_req_opts){0};
	r->complete = 0;
	r->status = 0;
	r->pending = 1;
	r->layers = 0;
	req_enqueue(g, r);
	return (int)n;
}

static void local_stats(kvg_grid *g, struct kvg_stats *st)
{
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

const struct grid_ops grid_local_ops = {
    .name = "local",
    .open = grid_local_open,
    .close = grid_local_close,
    .run = local_run,
    .help = local_help,
    .lookup_keys = local_lookup_keys,
    .pin = local_pin,
    .del = local_delete,
    .prefetch = local_prefetch,
    .stats = local_stats,
    .view_get = local_view_get,
    .view_release = local_view_release,
    .fill_begin = local_fill_begin,
    .fill_commit = local_fill_commit,
    .fill_abort = local_fill_abort,
};
