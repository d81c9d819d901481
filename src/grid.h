/*
 * grid.h - the grid object behind kvgrid.h, private to the library.  Its files:
 *
 *   grid.c         the public API: argument checks, open and close, then one call through
 *                  g->ops, the backend chosen once at open (local tiers or kvgridd servers)
 *   grid_req.c     the request pool, the workers and their queues, completion and waits
 *   grid_block.c   the local backend's block paths: store, load, views, fills, lookup,
 *                  pin, delete, prefetch, stats
 *   grid_move.c    movement between tiers: policy membership, eviction, demotion (NVMe
 *                  writes of DRAM copies; publication of blocks leaving the local tiers to
 *                  the shared tier), promotion, background cleaning, tombstones
 *   grid_open.c    the local backend's open (recovery of the NVMe index), close (write-back
 *                  of DRAM-only blocks, checkpoint)
 *   grid_shared.c  the local backend over the shared tier (tier_shared.c): parallel blocks,
 *                  publication of stores and of demoted blocks, loads and lookups past the
 *                  local tiers
 *   grid_remote.c  the remote backend, over client.c
 *
 * Locking, for all of them: g->lock guards the index, the policies, arena allocation, the
 * NVMe tier's space and the counters (st).  It is held across no copy and no record I/O;
 * the one exception is a segment rollover: nvme_reserve() writes (and, durable, syncs) the
 * new segment's 4 KiB header under it, once per segment_bytes of records.  g->qlock guards
 * the request pool and the queues; r->mu guards one request's completion state.  Order:
 * g->lock, then qlock or r->mu; never the other way.  A function named do_x or documented
 * "locked" expects g->lock held; the others take what they need.
 */
#ifndef KVG_GRID_H
#define KVG_GRID_H

#include <pthread.h>
#include <string.h>

#include "client.h"
#include "index.h"
#include "log.h"
#include "policy.h"
#include "tier_dram.h"
#include "kvg_assert.h"
#include "tier_nvme.h"
#include "tier_shared.h"

struct kvg_req;

/*
 * A grid's backend, chosen once by kvg_open (cfg.servers set: remote), as an event loop
 * picks its poller once.  Every public call checks its arguments in grid.c, then makes one
 * call here; no function tests which backend it runs on.  The two must answer alike for the
 * same contents (include/kvgrid.h is the contract); where a remote grid cannot do what a
 * local one does, the header says what it answers instead.
 */
struct grid_ops {
	const char *name;
	/* sets up the backend's state in g (cfg validated, locks and log ready) */
	int (*open)(kvg_grid *g, char *err, size_t err_len);
	/* after the workers stopped and every request finished */
	void (*close)(kvg_grid *g);
	/* the blocks of a REQ_STORE or REQ_LOAD request: each ends with block_done() */
	void (*run)(kvg_grid *g, struct kvg_req *r);
	/* a worker helps a request that run split (req_split()): claims its pieces until none
	 * is left; NULL when the backend never splits */
	void (*help)(kvg_grid *g, struct kvg_req *r);
	int (*lookup_keys)(kvg_grid *g, const kvg_key *keys, size_t n, size_t *hit_blocks,
			   uint8_t *tiers);
	int (*pin)(kvg_grid *g, const kvg_key *keys, size_t n, int pin);
	int (*del)(kvg_grid *g, const kvg_key *keys, size_t n);
	int (*prefetch)(kvg_grid *g, const kvg_key *keys, size_t n);
	void (*stats)(kvg_grid *g, struct kvg_stats *st);
	/* zero-copy DRAM access; NULL when the backend has none (the calls then answer 0, as
	 * kvgrid.h documents for a remote grid) */
	int (*view_get)(kvg_grid *g, const kvg_key *key, struct iovec *iov, int max_iov,
			size_t *len, kvg_view **view);
	void (*view_release)(kvg_grid *g, kvg_view *view);
	int (*fill_begin)(kvg_grid *g, size_t len, struct iovec *iov, int max_iov,
			  struct kvg_fill *fill);
	int (*fill_commit)(kvg_grid *g, struct kvg_fill *fill, const kvg_key *key, uint32_t depth,
			   uint32_t flags);
	void (*fill_abort)(kvg_grid *g, struct kvg_fill *fill);
};

extern const struct grid_ops grid_local_ops;  /* grid_block.c */
extern const struct grid_ops grid_remote_ops; /* grid_remote.c */

/* REQ_PROMOTE: a promotion an I/O thread could not make without I/O, handed to a worker
 * (promote_later() in grid_req.c); runs as a prefetch of one key. */
enum req_op { REQ_STORE = 0, REQ_LOAD = 1, REQ_PREFETCH = 2, REQ_PROMOTE = 3, REQ_CLEAN = 4 };

struct kvg_req {
	kvg_grid *g;
	int op;
	struct kvg_io *ios;
	size_t n;
	struct kvg_req_opts opts;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;
	size_t pending; /* blocks not finished, +1 while the dispatcher runs */
	int status;	/* first error */
	int complete;
	int in_use;
	int free_in_callback; /* kvg_req_free() was called from the done callback */
	pthread_t callback_thread;
	int in_callback;
	uint32_t layers;
	uint32_t layers_ready;
	uint32_t layers_reported; /* layer_done callbacks made */
	int layer_cb_busy;	  /* a thread is making them */
	uint32_t *layer_count;	  /* blocks whose layer L has arrived */
	kvg_key *prefetch_keys;	  /* REQ_PREFETCH: owned copy */
	kvg_key promote_key;	  /* REQ_PROMOTE: the one key */
	uint32_t promote_chunk;	  /* prefetch_one()'s private load: DRAM chunks reserved for the
				   * promotion (the first; CHUNK_END if none) */
	uint32_t promote_len;	  /* the block length they were reserved for */
	uint64_t seq;		  /* names the call to the policies (policy_block.req_id) */
	/* a request split across threads (req_split()): the next block to claim (atomic), the
	 * helper holds offered and not yet taken (qlock), and its place in g->helpq (qlock) */
	size_t cursor;
	uint32_t piece; /* blocks a claim takes */
	int sync;	/* a kvg_*_sync call's request: never split */
	uint32_t helpers;
	struct kvg_req *help_next;
	struct kvg_req *next;
};

struct kvg_grid {
	struct kvg_config cfg;
	struct log log;
	kvg_key ns;
	uint64_t block_bytes; /* of the layout; 0 if unset */

	pthread_mutex_t lock;	/* guards ix, arena allocation, pol, nv's space, st */
	pthread_cond_t lock_cv; /* signalled when refs drop (close, delete) */
	struct index ix;
	struct arena arena;
	struct nvme *nv;
	/* the NVMe tier's room, decided at open: cfg.nvme_bytes is then its capacity */
	struct nvme_space nvme_space;
	const struct grid_ops *ops; /* chosen at open, never changes */
	const struct policy_ops *pol_ops;
	struct policy *pol[KVG_TIER_COUNT];
	struct kvg_stats st;
	uint64_t *recover_seq;	/* during open only */
	struct client *remote;	/* the remote backend's connections (grid_remote.c) */
	struct shared *sh;	/* the shared tier (cfg.shared_dir), or NULL */
	uint32_t segs_demoting; /* NVMe segments being published before eviction (lock) */

	/* requests and workers */
	pthread_mutex_t qlock; /* guards free_reqs, the queues, stop, promotes_queued, idle */
	pthread_cond_t qcv;
	struct kvg_req *reqs;
	uint64_t req_seq; /* last call name given (atomic) */
	struct kvg_req *free_reqs;
	struct kvg_req *qhead, *qtail;
	struct kvg_req *pqhead, *pqtail; /* REQ_PROMOTE: served when qhead is empty */
	struct kvg_req *helpq;		 /* running requests that offer pieces to idle workers */
	uint32_t idle;			 /* workers waiting on qcv */
	int stop;
	uint32_t promotes_queued; /* REQ_PROMOTE requests queued or running */
	int cleaning;		  /* a REQ_CLEAN is queued or running (cfg.dram_free_bytes) */
	int clean_again;	  /* a store wanted one while it ran: it runs once more */
	uint32_t clean_chunks;	  /* arena chunks cfg.dram_free_bytes keeps free; 0: off */
	uint32_t nworkers;
	pthread_t *workers;
};

/* internal load flag, beside the public KVG_LOAD_*: promote whatever promote_on_hit says */
#define LOAD_PREFETCH 0x80000000u
/* internal store flag: the block comes from the shared tier (a promotion), so it is there */
#define STORE_IN_SHARED 0x40000000u

static inline uint64_t now_us(void)
{
	return nvme_now_us();
}

static inline int has_dram(const kvg_grid *g)
{
	return g->arena.chunks > 0;
}

/* Present for lookups and loads: in a tier, and not still being stored. */
static inline int visible(const struct entry *e)
{
	return (e->state & (E_DRAM | E_NVME)) && !(e->state & E_FILLING);
}

/* An entry's transfer references: a ref keeps its slot, key and bytes from going. */
static inline void entry_ref(struct entry *e)
{
	KVG_ASSERT(e->state & E_USED);
	KVG_ASSERT(e->refs < UINT16_MAX);
	e->refs++;
}

static inline void entry_unref(struct entry *e)
{
	KVG_ASSERT(e->refs > 0); /* never below zero */
	e->refs--;
}

/* The session hint a request's flags carry (KVG_STORE_CONTINUES / KVG_STORE_LAST). */
static inline uint8_t flags_hint(uint32_t flags)
{
	if (flags & KVG_STORE_CONTINUES)
		return POLICY_HINT_CONTINUES;
	if (flags & KVG_STORE_LAST)
		return POLICY_HINT_LAST;
	return POLICY_HINT_NONE;
}

/* What the policies are told of e, as a block of call req_id of req_blocks blocks.  The
 * hint is the one its last store or load carried (store_one() and load_one() set e->hint
 * first), so that movement between tiers later on tells the policy the same. */
static inline struct policy_block pblock_of(const struct entry *e, uint64_t req_id,
					    uint32_t req_blocks)
{
	struct policy_block b = {.bytes = e->len,
				 .depth = e->depth,
				 .parent_slot = POLICY_NONE,
				 .now_us = now_us(),
				 .hint = e->hint,
				 .req_blocks = req_blocks,
				 .req_id = req_id};
	memcpy(&b.key_hash, e->key.bytes, sizeof(b.key_hash));
	return b;
}

/* pblock_of() for a call of its own (a tier's movement, a single-key call). */
static inline struct policy_block pblock(kvg_grid *g, const struct entry *e)
{
	return pblock_of(e, __atomic_add_fetch(&g->req_seq, 1, __ATOMIC_RELAXED), 1);
}

/* pblock_of() for a block of request r: its blocks are one call to the policies. */
static inline struct policy_block pblock_req(const struct entry *e, const struct kvg_req *r)
{
	return pblock_of(e, r->seq, r->n < UINT32_MAX ? (uint32_t)r->n : UINT32_MAX);
}

/* ---- grid_req.c: requests and workers ----------------------------------------------- */

int grid_workers_start(kvg_grid *g);
void grid_workers_stop(kvg_grid *g); /* drains both queues, then joins */
void grid_reqs_drain(kvg_grid *g);   /* waits for requests still in flight */
void grid_reqs_free(kvg_grid *g);
struct kvg_req *req_get(kvg_grid *g); /* NULL when closing or the pool is empty */
void req_enqueue(kvg_grid *g, struct kvg_req *r);
void req_put(struct kvg_req *r, int status);
void req_put_n(struct kvg_req *r, size_t units, int status);
void req_layer_arrived(struct kvg_req *r, uint32_t layer, uint32_t count);
void req_layer_arrived_n(struct kvg_req *r, uint32_t layer, uint32_t count, uint32_t blocks);
void block_done(struct kvg_req *r, size_t i, int status);
uint32_t req_split(kvg_grid *g, struct kvg_req *r, uint32_t pieces);
void req_split_end(kvg_grid *g, struct kvg_req *r);
void clean_later(kvg_grid *g);
void promote_later(kvg_grid *g, const kvg_key *key);

/* ---- grid_move.c: movement between tiers (all "locked" unless said) ---------------- */

void pol_insert(kvg_grid *g, int t, uint32_t slot, const struct policy_block *b);
void pol_hit(kvg_grid *g, int t, uint32_t slot, const struct policy_block *b);
void seg_link(kvg_grid *g, uint32_t slot);
void seg_maybe_free(kvg_grid *g, uint32_t seg);
void maybe_free_slot(kvg_grid *g, uint32_t slot);
uint32_t drop_dram(kvg_grid *g, uint32_t slot);
void add_nvme(kvg_grid *g, uint32_t slot, const struct nvme_loc *loc, const struct policy_block *b);
void drop_nvme(kvg_grid *g, uint32_t slot);
int nvme_place(kvg_grid *g, uint64_t len, struct nvme_loc *loc); /* may drop the lock */
uint32_t parts_for(const kvg_grid *g, uint64_t len);
void write_back(kvg_grid *g, const uint32_t *slots, int n);	/* drops and retakes g->lock */
void write_tombstones(kvg_grid *g, const kvg_key *keys, int n); /* g->lock not held */
uint32_t dram_alloc(kvg_grid *g, uint32_t n, int may_write);
int wants_clean(const kvg_grid *g);
void dram_clean(kvg_grid *g); /* g->lock not held */
uint32_t slot_for(kvg_grid *g, const kvg_key *key);
void promote(kvg_grid *g, uint32_t slot, const void *src, int may_defer, uint32_t pre,
	     uint32_t pre_len);			    /* g->lock not held */
void prefetch_one(kvg_grid *g, const kvg_key *key); /* g->lock not held; on a worker */

/* ---- grid_block.c and grid_open.c: the local backend --------------------------------- */

void load_one(kvg_grid *g, struct kvg_req *r, size_t i);
void store_one(kvg_grid *g, struct kvg_req *r, size_t i);

/* ---- grid_shared.c: the local backend over the shared tier ---------------------------- */

/* A block leaving the local tiers, to be published by grid_shared_demote(). */
struct shared_demote {
	kvg_key key;
	const struct iovec *iov; /* its bytes, in pieces */
	int iovcnt;
	uint32_t depth, parts;
	int check;   /* believed in the tier (entry.in_shared): published only if not there */
	int rc;	     /* set: 0 once the block is in the tier */
	int present; /* set: 1 when the check found it there (nothing written) */
	kvg_grid *g; /* set by grid_shared_demote() */
};

int shared_demotes(const kvg_grid *g); /* cfg.shared_demote on a grid with a shared tier */
void grid_shared_demote(kvg_grid *g, struct shared_demote *d, size_t n); /* g->lock not held */
void grid_shared_run(kvg_grid *g, struct kvg_req *r);			 /* a request's blocks */
void grid_shared_load(kvg_grid *g, struct kvg_req *r, size_t i);	 /* a local miss */
/* present[i] = 1 if the object of keys[i] is in the shared tier (shared_exists(), in
 * parallel), else 0.  g->lock not held. */
void grid_shared_present(kvg_grid *g, const kvg_key *keys, uint8_t *present, size_t n);
/* A local tier served block e: if it is believed in the shared tier, its object's recency
 * is refreshed there soon (rate-limited, in the background).  Locked. */
void grid_shared_hit(kvg_grid *g, const struct entry *e);
/* A load's block whose local copy failed: read from the shared tier, not promoted.  0 (io's
 * len and tier set, its layers arrived), or a miss.  g->lock not held. */
int grid_shared_refetch(kvg_grid *g, struct kvg_req *r, size_t i);
int grid_local_open(kvg_grid *g, char *err, size_t err_len);
void grid_local_close(kvg_grid *g);

#endif
