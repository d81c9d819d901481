/*
 * test_small_requests.c - the paths that make small requests cheap keep the contract:
 * a request's DRAM hits claimed together still answer each block on its own (bytes,
 * status, tier; the request's status is the first error), and a small request that runs
 * on the submitting thread (every worker busy, no NVMe tier) completes there with its done
 * callback, while one on a grid with an NVMe tier never does.
 */
#include <pthread.h>

#include "t_grid.h"

#define BLOCK (32u << 10)

/* A done callback that records its thread, and optionally blocks until released. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int block, entered, released, done;
	pthread_t thread;
};

static void gate_done(kvg_req *r, void *arg)
{
	(void)r;
	struct gate *gt = arg;
	pthread_mutex_lock(&gt->mu);
	gt->thread = pthread_self();
	gt->entered = 1;
	pthread_cond_broadcast(&gt->cv);
	while (gt->block && !gt->released)
		pthread_cond_wait(&gt->cv, &gt->mu);
	gt->done = 1;
	pthread_mutex_unlock(&gt->mu);
}

static void gate_init(struct gate *gt, int block)
{
	memset(gt, 0, sizeof(*gt));
	pthread_mutex_init(&gt->mu, NULL);
	pthread_cond_init(&gt->cv, NULL);
	gt->block = block;
}

static void gate_wait_entered(struct gate *gt)
{
	pthread_mutex_lock(&gt->mu);
	while (!gt->entered)
		pthread_cond_wait(&gt->cv, &gt->mu);
	pthread_mutex_unlock(&gt->mu);
}

static void gate_release(struct gate *gt)
{
	pthread_mutex_lock(&gt->mu);
	gt->released = 1;
	pthread_cond_broadcast(&gt->cv);
	pthread_mutex_unlock(&gt->mu);
}

static kvg_grid *open_grid(uint32_t workers)
{
	struct kvg_config c;
	t_config(&c);
	c.workers = workers;
	char err[256];
	kvg_grid *g = NULL;
	if (kvg_open(&c, &g, err, sizeof(err)))
		fprintf(stderr, "open: %s\n", err);
	return g;
}

/* Description: a load of hits, misses and a short buffer answers each block on its own:
 * hits verified with their tier, misses KVG_ENOTFOUND, the short buffer KVG_EBUFSIZE with
 * the needed length, and the request's status is the first error by block. */
static void mixed_batch_answers_each_block(void)
{
	kvg_grid *g = open_grid(2);
	CHECK(g);
	kvg_key keys[6];
	CHECK(t_chain(g, 11, 6, keys) == 6);
	kvg_key stored[3] = {keys[0], keys[2], keys[4]};
	CHECK_RC(t_store(g, stored, 3, BLOCK, 5), 0);
	CHECK_RC(t_store(g, &keys[3], 1, BLOCK, 5), 0);
	struct kvg_io io[6];
	for (int i = 0; i < 6; i++) {
		io[i] = (struct kvg_io){.key = keys[i], .len = BLOCK, .buf = t_alloc(BLOCK, 0)};
		CHECK(io[i].buf);
	}
	io[3].len = BLOCK / 2; /* too short for the stored block */
	struct gate gt;
	gate_init(&gt, 0);
	struct kvg_req_opts o = {.done = gate_done, .arg = &gt};
	kvg_req *r;
	CHECK_RC(kvg_load(g, io, 6, &o, &r), 0);
	CHECK_RC(kvg_req_wait(r, -1), KVG_ENOTFOUND);
	CHECK(gt.done);
	kvg_req_free(r);
	uint8_t want_tier = t_v->nvme ? KVG_TIER_NVME : KVG_TIER_DRAM;
	for (int i = 0; i < 6; i += 2) {
		CHECK_RC(io[i].status, 0);
		CHECK(io[i].len == BLOCK && io[i].tier == want_tier);
		CHECK(t_verify(io[i].buf, BLOCK, &keys[i], 5));
	}
	CHECK_RC(io[1].status, KVG_ENOTFOUND);
	CHECK_RC(io[5].status, KVG_ENOTFOUND);
	CHECK_RC(io[3].status, KVG_EBUFSIZE);
	CHECK(io[3].len == BLOCK);
	for (int i = 0; i < 6; i++)
		t_free(io[i].buf, 0);
	kvg_close(g);
}

/* Loads key k into a fresh buffer with gate gt as its done callback. */
static int load_gated(kvg_grid *g, const kvg_key *k, struct kvg_io *io, struct gate *gt,
		      kvg_req **r)
{
	*io = (struct kvg_io){.key = *k, .len = BLOCK, .buf = t_alloc(BLOCK, 0)};
	struct kvg_req_opts o = {.done = gate_done, .arg = gt};
	return io->buf ? kvg_load(g, io, 1, &o, r) : -12;
}

/* Description: with the only worker held by a callback and a request queued behind it, a
 * small load runs on the submitting thread: kvg_load returns it complete, its callback ran
 * on the caller's thread, its bytes verified.  On a grid with an NVMe tier it is queued
 * instead (a load there may wait on a disk) and completes once the worker is free. */
static void small_request_runs_on_submitter_when_workers_busy(void)
{
	kvg_grid *g = open_grid(1);
	CHECK(g);
	kvg_key keys[3];
	CHECK(t_chain(g, 12, 3, keys) == 3);
	CHECK_RC(t_store(g, keys, 3, BLOCK, 9), 0);
	struct gate ga, gb, gc;
	gate_init(&ga, 1);
	gate_init(&gb, 0);
	gate_init(&gc, 0);
	struct kvg_io ia, ib, ic;
	kvg_req *ra, *rb, *rc;
	CHECK_RC(load_gated(g, &keys[0], &ia, &ga, &ra), 0);
	gate_wait_entered(&ga); /* the worker (or an I/O thread) is held in A's callback */
	CHECK_RC(load_gated(g, &keys[1], &ib, &gb, &rb), 0);
	CHECK_RC(load_gated(g, &keys[2], &ic, &gc, &rc), 0);
	if (!t_v->nvme) {
		CHECK_RC(kvg_req_poll(rc), 0); /* ran here, done before kvg_load returned */
		CHECK(gc.done && pthread_equal(gc.thread, pthread_self()));
	}
	gate_release(&ga);
	CHECK_RC(kvg_req_wait(ra, -1), 0);
	CHECK_RC(kvg_req_wait(rb, -1), 0);
	CHECK_RC(kvg_req_wait(rc, -1), 0);
	if (t_v->nvme)
		CHECK(!pthread_equal(gc.thread, pthread_self()));
	CHECK(t_verify(ia.buf, BLOCK, &keys[0], 9) && t_verify(ib.buf, BLOCK, &keys[1], 9));
	CHECK(t_verify(ic.buf, BLOCK, &keys[2], 9));
	kvg_req_free(ra);
	kvg_req_free(rb);
	kvg_req_free(rc);
	t_free(ia.buf, 0);
	t_free(ib.buf, 0);
	t_free(ic.buf, 0);
	kvg_close(g);
}

int main(void)
{
	SWEEP(mixed_batch_answers_each_block);
	SWEEP(small_request_runs_on_submitter_when_workers_busy);
	T_EXIT();
}
