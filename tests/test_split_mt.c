/*
 * test_split_mt.c - a big request is shared between the thread that runs it and the idle
 * workers (req_split()), and still answers each block on its own: every block done once,
 * with its own status, tier and bytes; the request completes once, after its last block,
 * with its done callback run once; many such requests at once from several threads keep all
 * of that.  A synchronous call is never split (its caller runs it alone, in block order),
 * also when it is made from inside a layer callback of a request the thread is running.
 */
#include <pthread.h>

#include "t_grid.h"

#define BLOCK (16u << 10)
#define NBLK  512 /* 8 MiB a request: 32 pieces of 256 KiB */

static kvg_grid *open_grid(uint32_t workers)
{
	struct kvg_config c;
	t_config(&c);
	c.workers = workers;
	if (!t_v->nvme)
		c.dram_bytes = 64ull << 20;
	char err[256];
	kvg_grid *g = NULL;
	if (kvg_open(&c, &g, err, sizeof(err)))
		fprintf(stderr, "open: %s\n", err);
	return g;
}

struct count {
	pthread_mutex_t mu;
	int calls;
	int complete_seen; /* kvg_req_poll() inside the callback: final already */
};

static void count_done(kvg_req *r, void *arg)
{
	struct count *c = arg;
	int rc = kvg_req_poll(r);
	pthread_mutex_lock(&c->mu);
	c->calls++;
	c->complete_seen = rc != KVG_EINPROGRESS;
	pthread_mutex_unlock(&c->mu);
}

/* ios for keys[0..n), each with a fresh buffer of len bytes (filled for a store). */
static struct kvg_io *ios_make(const kvg_key *keys, size_t n, size_t len, int fill, uint32_t salt)
{
	struct kvg_io *io = calloc(n, sizeof(*io));
	for (size_t i = 0; io && i < n; i++) {
		io[i] = (struct kvg_io){.key = keys[i], .len = len, .depth = (uint32_t)i};
		io[i].buf = t_alloc(len, 0);
		if (!io[i].buf)
			return NULL; /* the test fails; the leak does not matter */
		if (fill)
			t_fill(io[i].buf, len, &keys[i], salt);
		else
			memset(io[i].buf, 0xee, len);
	}
	return io;
}

static void ios_free(struct kvg_io *io, size_t n)
{
	for (size_t i = 0; io && i < n; i++)
		t_free(io[i].buf, 0);
	free(io);
}

/* Description: one store of 512 blocks (some of them already present) and one load of those
 * blocks with never-stored ones among them, the asynchronous ones split across the workers
 * and the synchronous one run whole: every stored block loads with its own bytes and tier,
 * every other one is KVG_ENOTFOUND, the request's status is KVG_ENOTFOUND, and its done
 * callback ran once, already final. */
static void big_request_answers_each_block(void)
{
	kvg_grid *g = open_grid(2);
	CHECK(g);
	static kvg_key keys[NBLK + NBLK / 8];
	size_t nk = NBLK + NBLK / 8;
	CHECK(t_chain(g, 21, nk, keys) == nk);
	/* stored: every key but each 9th; 1 in 5 of them stored before, alone */
	static kvg_key stored[NBLK + NBLK / 8];
	size_t ns = 0;
	for (size_t i = 0; i < nk; i++)
		if (i % 9 != 4)
			stored[ns++] = keys[i];
	for (size_t i = 0; i < ns; i += 5)
		CHECK_RC(t_store(g, &stored[i], 1, BLOCK, 3), 0);
	struct kvg_io *sio = ios_make(stored, ns, BLOCK, 1, 3);
	CHECK(sio);
	struct count sc = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct kvg_req_opts so = {.done = count_done, .arg = &sc};
	kvg_req *r;
	CHECK_RC(kvg_store(g, sio, ns, &so, &r), 0);
	CHECK_RC(kvg_req_wait(r, -1), 0);
	CHECK(sc.calls == 1 && sc.complete_seen);
	kvg_req_free(r);
	for (size_t i = 0; i < ns; i++)
		CHECK_RC(sio[i].status, 0);
	ios_free(sio, ns);

	for (int sync = 0; sync < 2; sync++) {
		struct kvg_io *lio = ios_make(keys, nk, BLOCK, 0, 0);
		CHECK(lio);
		struct count lc = {.mu = PTHREAD_MUTEX_INITIALIZER};
		struct kvg_req_opts lo = {.done = count_done, .arg = &lc};
		if (sync) {
			CHECK_RC(kvg_load_sync(g, lio, nk, 0), KVG_ENOTFOUND);
		} else {
			CHECK_RC(kvg_load(g, lio, nk, &lo, &r), 0);
			CHECK_RC(kvg_req_wait(r, -1), KVG_ENOTFOUND);
			CHECK(lc.calls == 1 && lc.complete_seen);
			kvg_req_free(r);
		}
		uint8_t want_tier = t_v->nvme ? KVG_TIER_NVME : KVG_TIER_DRAM;
		size_t bad = 0;
		for (size_t i = 0; i < nk; i++) {
			if (i % 9 == 4)
				bad += lio[i].status != KVG_ENOTFOUND;
			else
				bad += lio[i].status != 0 || lio[i].len != BLOCK ||
				       lio[i].tier != want_tier ||
				       !t_verify(lio[i].buf, BLOCK, &keys[i], 3);
		}
		CHECK(bad == 0);
		ios_free(lio, nk);
	}
	kvg_close(g);
}

struct worker_arg {
	kvg_grid *g;
	uint32_t seed;
	int rounds;
	size_t wrong;
	int failed;
};

/* Stores a chain of its own as one request, then loads it back, async and sync, rounds
 * times; counts wrong answers. */
static void *client(void *p)
{
	struct worker_arg *a = p;
	enum { N = 96 };
	kvg_key keys[N];
	if (t_chain(a->g, a->seed, N, keys) != N) {
		a->failed = 1;
		return NULL;
	}
	for (int k = 0; k < a->rounds; k++) {
		struct kvg_io *sio = ios_make(keys, N, BLOCK, 1, a->seed + (uint32_t)k);
		struct kvg_io *lio = ios_make(keys, N, BLOCK, 0, 0);
		if (!sio || !lio) {
			a->failed = 1;
			return NULL;
		}
		/* a fresh salt each round: delete first, as content-addressed blocks keep the
		 * bytes a key was first stored with */
		if (kvg_delete(a->g, keys, N) < 0 || kvg_store_sync(a->g, sio, N, 0)) {
			a->failed = 1;
		} else {
			kvg_req *r = NULL;
			int rc = k % 2 ? kvg_load_sync(a->g, lio, N, 0)
				       : kvg_load(a->g, lio, N, NULL, &r);
			if (!rc && r)
				rc = kvg_req_wait(r, -1);
			kvg_req_free(r);
			/* the grid may evict under pressure: a miss is allowed, wrong bytes not */
			for (size_t i = 0; i < N; i++)
				if (lio[i].status == 0 &&
				    !t_verify(lio[i].buf, BLOCK, &keys[i], a->seed + (uint32_t)k))
					a->wrong++;
				else if (lio[i].status && lio[i].status != KVG_ENOTFOUND)
					a->failed = 1;
			if (rc && rc != KVG_ENOTFOUND)
				a->failed = 1;
		}
		ios_free(sio, N);
		ios_free(lio, N);
	}
	return NULL;
}

/* Description: four threads each store and load requests of 96 blocks (1.5 MiB, six pieces)
 * at once, deleting and storing their keys again with new bytes each round, over a grid of
 * two workers: no block is ever answered with wrong bytes, and nothing fails but misses. */
static void many_big_requests_at_once(void)
{
	kvg_grid *g = open_grid(2);
	CHECK(g);
	struct worker_arg a[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct worker_arg){.g = g, .seed = 100 + (uint32_t)i, .rounds = 12};
		CHECK(pthread_create(&th[i], NULL, client, &a[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(!a[i].failed);
		CHECK(a[i].wrong == 0);
	}
	kvg_close(g);
}

struct nested {
	kvg_grid *g;
	const kvg_key *keys;
	size_t n;
	int rc;
	size_t bad;
	int ran;
};

/* Layer 0 arrived: load a big request synchronously from inside the callback. */
static void nested_layer(kvg_req *r, uint32_t layer, void *arg)
{
	(void)r;
	struct nested *ns = arg;
	if (layer || ns->ran)
		return;
	ns->ran = 1;
	struct kvg_io *io = ios_make(ns->keys, ns->n, BLOCK, 0, 0);
	if (!io) {
		ns->rc = -12;
		return;
	}
	ns->rc = kvg_load_sync(ns->g, io, ns->n, 0);
	for (size_t i = 0; i < ns->n; i++)
		ns->bad += io[i].status || !t_verify(io[i].buf, BLOCK, &ns->keys[i], 7);
	ios_free(io, ns->n);
}

/* Description: a synchronous load of 256 blocks made from a layer callback of another load
 * (a run nested in a run on the same thread) is answered whole, and the outer load still
 * completes with its own bytes.  DRAM only: with an NVMe tier a layer callback
 * runs on the I/O thread, where no call may wait for the grid's I/O (kvgrid.h). */
static void sync_load_inside_layer_callback(void)
{
	kvg_grid *g = open_grid(2);
	CHECK(g);
	static kvg_key keys[257];
	CHECK(t_chain(g, 31, 257, keys) == 257);
	CHECK_RC(t_store(g, keys, 257, BLOCK, 7), 0);
	struct nested ns = {.g = g, .keys = keys + 1, .n = 256};
	struct kvg_io *outer = ios_make(keys, 1, BLOCK, 0, 0);
	CHECK(outer);
	struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS, .layer_done = nested_layer, .arg = &ns};
	kvg_req *r;
	CHECK_RC(kvg_load(g, outer, 1, &o, &r), 0);
	CHECK_RC(kvg_req_wait(r, -1), 0);
	kvg_req_free(r);
	CHECK(ns.ran);
	CHECK_RC(ns.rc, 0);
	CHECK(ns.bad == 0);
	CHECK(outer[0].status == 0 && t_verify(outer[0].buf, BLOCK, &keys[0], 7));
	ios_free(outer, 1);
	kvg_close(g);
}

int main(void)
{
	SWEEP(big_request_answers_each_block);
	SWEEP(many_big_requests_at_once);
	t_v = &t_variants[0]; /* dram */
	t_variant = t_v->name;
	if (t_only("sync_load_inside_layer_callback"))
		RUN(sync_load_inside_layer_callback);
	T_EXIT();
}
