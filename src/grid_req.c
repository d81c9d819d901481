/*
 * grid_req.c - the grid's asynchronous requests: the pool (cfg.req_max, allocated at
 * open), the worker threads (cfg.workers) and their two queues, completion, callbacks and
 * waits.  Backend-neutral: a REQ_STORE or REQ_LOAD runs through g->ops->run; background
 * work (REQ_CLEAN, REQ_PREFETCH, REQ_PROMOTE) exists only on the local backend.
 *
 * A request completes on whichever thread finishes its last block: a worker, the caller of
 * a synchronous call (which runs its request inline), or an I/O thread for NVMe reads.
 * r->pending counts blocks not finished, plus one held by the dispatcher while it runs, so
 * that a request never completes while blocks are still being started.
 *
 * A big request is split: the thread running it offers pieces to idle workers, which claim
 * them from the request's cursor beside it (req_split()), each holding a unit of pending.
 *
 * Locking: g->qlock guards the free list, the queues (helpq and r->helpers included), stop,
 * idle, cleaning, clean_again and promotes_queued; r->mu guards a request's completion state
 * (pending, status, complete, the layer counts and the callback flags).  Neither is held while a
 * callback runs or while a block's work runs.  qlock is never taken with r->mu held.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "grid.h"

/* ---- the pool and the queues (qlock) ------------------------------------------------ */

struct kvg_req *req_get(kvg_grid *g)
{
	pthread_mutex_lock(&g->qlock);
	struct kvg_req *r = g->stop ? NULL : g->free_reqs;
	if (r) {
		KVG_ASSERT(!r->in_use); /* the free list holds free requests only */
		g->free_reqs = r->next;
		r->in_use = 1;
	}
	pthread_mutex_unlock(&g->qlock);
	return r;
}

/* Returns a request to the pool.  Caller holds nothing. */
static void req_release(kvg_grid *g, struct kvg_req *r)
{
	pthread_mutex_lock(&g->qlock);
	KVG_ASSERT(r->in_use); /* released once */
	r->in_use = 0;
	r->next = g->free_reqs;
	g->free_reqs = r;
	pthread_mutex_unlock(&g->qlock);
}

/* Appends r to the callers' queue and wakes a worker.  qlock held. */
static void queue_locked(kvg_grid *g, struct kvg_req *r)
{
	r->next = NULL;
	if (g->qtail)
		g->qtail->next = r;
	else
		g->qhead = r;
	g->qtail = r;
	pthread_cond_signal(&g->qcv);
}

void req_enqueue(kvg_grid *g, struct kvg_req *r)
{
	pthread_mutex_lock(&g->qlock);
	queue_locked(g, r);
	pthread_mutex_unlock(&g->qlock);
}

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
	r->opts = (struct kvg_req_opts){0};
	r->sync = 0;
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

/*
 * Background demotion (cfg.dram_free_bytes): when a store leaves fewer than half of
 * clean_chunks free, a worker evicts DRAM victims ahead of need, writing the ones that are
 * not on NVMe yet, until clean_chunks are free; stores then find room without waiting for
 * NVMe writes.  One REQ_CLEAN at a time, in the background queue; a hint: skipped when the
 * request pool is empty.  Takes qlock only: call it without the grid lock.
 */
void clean_later(kvg_grid *g)
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
void promote_later(kvg_grid *g, const kvg_key *key)
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

/* ---- completion (r->mu) ---------------------------------------------------------------- */

/*
 * Layers [layer, layer+count) of `blocks` blocks have arrived.  layer_done callbacks run in
 * layer order, one thread at a time (whichever advanced the ready count first reports on
 * behalf of the others), and the request does not complete while one runs.
 */
void req_layer_arrived_n(struct kvg_req *r, uint32_t layer, uint32_t count, uint32_t blocks)
{
	pthread_mutex_lock(&r->mu);
	for (uint32_t l = layer; l < layer + count && l < r->layers; l++)
		r->layer_count[l] += blocks;
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

void req_layer_arrived(struct kvg_req *r, uint32_t layer, uint32_t count)
{
	req_layer_arrived_n(r, layer, count, 1);
}

/*
 * Units of the request finished (blocks, or the dispatcher's hold), status the first error
 * among them.  The last one runs the done callback first and only then marks the request
 * complete, so that a waiter sees completion after the callback; a kvg_req_free() from
 * inside the callback is deferred.
 */
void req_put_n(struct kvg_req *r, size_t units, int status)
{
	pthread_mutex_lock(&r->mu);
	if (status && !r->status)
		r->status = status;
	KVG_ASSERT(r->pending >= units && !r->complete); /* a unit finishes once */
	r->pending -= units;
	int last = r->pending == 0;
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

void req_put(struct kvg_req *r, int status)
{
	req_put_n(r, 1, status);
}

/* The request this thread is running (run_as()), if any: the blocks it finishes itself are
 * counted here and put together when the run ends, one round of r->mu for the request
 * instead of one per block.  A synchronous call made from a layer callback nests a run. */
struct run_ctx {
	struct kvg_req *r;
	size_t done;
	int status; /* the first error among them */
	struct run_ctx *outer;
};
static __thread struct run_ctx *run_cur;

void block_done(struct kvg_req *r, size_t i, int status)
{
	KVG_ASSERT(i < r->n);
	/* a store published to the shared tier is stored, even where no local tier had room
	 * (grid_shared.c marks it so) */
	if (r->g->sh && r->op == REQ_STORE && status == KVG_EFULL &&
	    r->ios[i].tier == KVG_TIER_SHARED)
		status = 0;
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
	struct run_ctx *c = run_cur;
	if (!c || c->r != r) { /* an I/O thread's completion, or a private request's */
		req_put(r, status);
		return;
	}
	c->done++;
	if (status && !c->status)
		c->status = status;
}

/* Runs fn(g, r) on this thread, holding one unit of r (the dispatcher's or a helper's),
 * which is put with the blocks the run finished. */
static void run_as(kvg_grid *g, struct kvg_req *r, void (*fn)(kvg_grid *, struct kvg_req *))
{
	struct run_ctx c = {.r = r, .outer = run_cur};
	run_cur = &c;
	fn(g, r);
	run_cur = c.outer;
	req_put_n(r, c.done + 1, c.status);
}

/* ---- requests split across threads ------------------------------------------------------ */

/*
 * The thread running r (a worker, or a synchronous caller) offers pieces of it to idle
 * workers: up to `pieces - 1` of them, as many as wait on qcv now, each taking a unit of r
 * (a helper's hold) and claiming pieces from r->cursor (g->ops->help).  Returns the number
 * offered.  Call with nothing held; r->cursor and r->piece set before.
 */
uint32_t req_split(kvg_grid *g, struct kvg_req *r, uint32_t pieces)
{
	pthread_mutex_lock(&g->qlock);
	uint32_t want = g->stop || !g->ops->help ? 0 : g->idle;
	pthread_mutex_unlock(&g->qlock);
	if (want > pieces - 1)
		want = pieces - 1;
	if (!want)
		return 0;
	pthread_mutex_lock(&r->mu); /* the holds first: a helper may put its own at once */
	r->pending += want;
	pthread_mutex_unlock(&r->mu);
	pthread_mutex_lock(&g->qlock);
	r->helpers = want;
	r->help_next = g->helpq;
	g->helpq = r;
	if (want > 1)
		pthread_cond_broadcast(&g->qcv);
	else
		pthread_cond_signal(&g->qcv);
	pthread_mutex_unlock(&g->qlock);
	return want;
}

/* r's pieces are all claimed: takes back the helper holds no worker has taken, so that r
 * never waits for a worker busy elsewhere.  By the thread that called req_split(). */
void req_split_end(kvg_grid *g, struct kvg_req *r)
{
	pthread_mutex_lock(&g->qlock);
	uint32_t left = r->helpers;
	if (left) {
		struct kvg_req **p = &g->helpq;
		while (*p != r)
			p = &(*p)->help_next;
		*p = r->help_next;
		r->helpers = 0;
	}
	pthread_mutex_unlock(&g->qlock);
	KVG_ASSERT(run_cur && run_cur->r == r); /* the splitting run's own context */
	run_cur->done += left;
}

/* kvgrid.h: adds 1 to the eventfd in arg; a closed fd is the caller's to answer for. */
void kvg_done_eventfd(kvg_req *req, void *arg)
{
	(void)req;
	uint64_t one = 1;
	ssize_t n = write((int)(intptr_t)arg, &one, sizeof one);
	(void)n;
}

/* ---- workers --------------------------------------------------------------------------- */

/* A background request is done: nobody waits on it or holds it. */
static void bg_finish(struct kvg_req *r)
{
	pthread_mutex_lock(&r->mu);
	KVG_ASSERT(r->pending == 1); /* only the dispatcher's hold: no blocks of its own */
	pthread_mutex_unlock(&r->mu);
	req_put(r, 0);
	kvg_req_free(r);
}

/* REQ_CLEAN: a store that asked while this ran took room after it: clean again, or the
 * last stores of a burst would leave DRAM short of dram_free_bytes. */
static void run_clean(kvg_grid *g, struct kvg_req *r)
{
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
	bg_finish(r);
}

/* REQ_PREFETCH (kvg_prefetch's keys) and REQ_PROMOTE (one key promote_later() handed on). */
static void run_prefetch(kvg_grid *g, struct kvg_req *r)
{
	if (r->op == REQ_PROMOTE) {
		prefetch_one(g, &r->promote_key);
		pthread_mutex_lock(&g->qlock);
		KVG_ASSERT(g->promotes_queued > 0);
		g->promotes_queued--;
		pthread_mutex_unlock(&g->qlock);
	}
	for (size_t i = 0; r->op == REQ_PREFETCH && i < r->n; i++)
		prefetch_one(g, &r->prefetch_keys[i]);
	free(r->prefetch_keys);
	r->prefetch_keys = NULL;
	bg_finish(r);
}

/* Runs a request on this thread: a worker, or the caller of a synchronous call. */
static void run_req(kvg_grid *g, struct kvg_req *r)
{
	KVG_ASSERT(r->in_use);
	switch (r->op) {
	case REQ_CLEAN:
		run_clean(g, r);
		return;
	case REQ_PREFETCH:
	case REQ_PROMOTE:
		run_prefetch(g, r);
		return;
	default:
		KVG_ASSERT(r->op == REQ_STORE || r->op == REQ_LOAD);
		run_as(g, r, g->ops->run); /* with the dispatcher's hold */
	}
}

static void *worker_main(void *arg)
{
	kvg_grid *g = arg;
	pthread_mutex_lock(&g->qlock);
	for (;;) {
		while (!g->helpq && !g->qhead && !g->pqhead && !g->stop) {
			g->idle++;
			pthread_cond_wait(&g->qcv, &g->qlock);
			g->idle--;
		}
		if (g->helpq) { /* pieces of a running request first: it is already late */
			struct kvg_req *r = g->helpq;
			if (--r->helpers == 0)
				g->helpq = r->help_next;
			pthread_mutex_unlock(&g->qlock);
			run_as(g, r, g->ops->help);
			pthread_mutex_lock(&g->qlock);
			continue;
		}
		/* callers' requests, then background promotions when there are none */
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

int grid_workers_start(kvg_grid *g)
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

void grid_workers_stop(kvg_grid *g)
{
	pthread_mutex_lock(&g->qlock);
	g->stop = 1;
	pthread_cond_broadcast(&g->qcv);
	pthread_mutex_unlock(&g->qlock);
	for (uint32_t i = 0; i < g->nworkers; i++)
		pthread_join(g->workers[i], NULL);
	g->nworkers = 0;
}

/* Requests still in flight (I/O completions) finish before the tiers go; in_use is qlock's
 * and completion r->mu's (kvg_req_wait), read while I/O threads still run. */
void grid_reqs_drain(kvg_grid *g)
{
	for (uint32_t i = 0; g->reqs && i < g->cfg.req_max; i++) {
		pthread_mutex_lock(&g->qlock);
		int used = g->reqs[i].in_use;
		pthread_mutex_unlock(&g->qlock);
		if (used)
			kvg_req_wait(&g->reqs[i], -1);
	}
}

void grid_reqs_free(kvg_grid *g)
{
	for (uint32_t i = 0; g->reqs && i < g->cfg.req_max; i++) {
		pthread_mutex_destroy(&g->reqs[i].mu);
		pthread_cond_destroy(&g->reqs[i].cv);
		free(g->reqs[i].layer_count);
		free(g->reqs[i].prefetch_keys);
	}
	free(g->reqs);
	g->reqs = NULL;
	free(g->workers);
	g->workers = NULL;
}

/* ---- submission and waits (the public request API) ----------------------------------- */

/* Requests of at most this many bytes may run on the submitting thread (run_here()). */
#define RUN_HERE_BYTES_MAX (1u << 20)

/*
 * Queues r for a worker, or returns 1 when the caller should run it itself: a small request
 * (RUN_HERE_BYTES_MAX) while every worker is busy (a request already waits in the queue),
 * on a grid without an NVMe or shared tier (nothing it does can wait on a disk or a
 * network filesystem) and not a layer-by-
 * layer load (its caller overlaps the layers with its own work).  The hand-off costs a
 * wake-up and a context switch or two each way, as much as copying a 64 KiB block on these
 * machines; and with every worker busy the submitter would otherwise only wait.
 */
static int run_here(kvg_grid *g, struct kvg_req *r)
{
	/* a load on a grid whose only tier is NVMe only submits reads (and answers misses):
	 * it never waits on the disk, so it starts on the caller's thread at once, except on
	 * an I/O thread (a callback's load), which must not wait for a free transfer there */
	if (r->op == REQ_LOAD && g->nv && !has_dram(g) && !g->sh && g->ops == &grid_local_ops &&
	    !io_on_backend_thread())
		return 1;
	size_t bytes = 0;
	for (size_t i = 0; i < r->n && bytes <= RUN_HERE_BYTES_MAX; i++)
		bytes += r->ios[i].len;
	int small = !g->nv && !g->sh && g->ops == &grid_local_ops && bytes <= RUN_HERE_BYTES_MAX &&
		    !(r->opts.flags & KVG_LOAD_LAYERS);
	pthread_mutex_lock(&g->qlock);
	int here = small && g->qhead;
	if (!here)
		queue_locked(g, r);
	pthread_mutex_unlock(&g->qlock);
	return here;
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
	r->opts = opts ? *opts : (struct kvg_req_opts){0};
	r->opts.flags &= ~LOAD_PREFETCH; /* internal: its request carries reserved chunks */
	r->sync = inline_run;
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
	if (inline_run || run_here(g, r))
		run_req(g, r);
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
	struct kvg_req_opts o = {.flags = flags};
	kvg_req *r;
	int rc;
	while ((rc = submit_on(g, op, ios, n, &o, &r, 1)) == KVG_EBUSY) {
		struct timespec ts = {0, 100000};
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
