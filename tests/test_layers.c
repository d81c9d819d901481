/*
 * test_layers.c - layer-by-layer loads (KVG_LOAD_LAYERS), swept over DRAM only, NVMe via
 * io_uring and NVMe via psync (dram_bytes 0, so NVMe serves).  A block's payload is laid out
 * [layer][K,V][tokens][kv heads][head dim]; with 8 layers of a 16-token, 2-head, 64-dim bf16
 * layout, a block is 64 KiB and a layer 8 KiB, so NVMe can verify and report it layer by
 * layer.  An engine may start layer L's attention as soon as layer L has arrived: at that
 * moment layer L of every block must already hold the right bytes.
 */
#include <fcntl.h>
#include <pthread.h>

#include "t_grid.h"

#define LAYERS 8

static void layer_config(struct kvg_config *c, uint32_t layers)
{
	t_config(c);
	c->layers = layers;
}

static kvg_grid *open_or_null(const struct kvg_config *c)
{
	kvg_grid *g = NULL;
	char err[512] = "";
	int rc = kvg_open(c, &g, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "kvg_open [%s]: %s (%s)\n", t_variant, err, kvg_strerror(rc));
		return NULL;
	}
	return g;
}

#define OPEN(g, c)                                                                                 \
	kvg_grid *g = open_or_null(c);                                                             \
	CHECK(g)

/* 1 if bytes [off, off+len) of buf are those of t_fill(key, salt) at the same offsets. */
static int verify_range(const uint8_t *buf, size_t total, size_t off, size_t len,
			const kvg_key *key, uint32_t salt)
{
	uint8_t *want = malloc(total);
	if (!want)
		return 0;
	t_fill(want, total, key, salt);
	int ok = memcmp(buf + off, want + off, len) == 0;
	free(want);
	return ok;
}

struct layer_log {
	pthread_mutex_t mu;
	struct kvg_io *ios;
	size_t n;
	size_t block_bytes;
	uint32_t layers;
	uint32_t calls;
	uint32_t next; /* the layer expected next */
	int out_of_order;
	uint64_t bad_bytes; /* bit i: a reported layer of block i was wrong at the callback */
	uint32_t salt;
};

static void on_layer(kvg_req *r, uint32_t layer, void *arg)
{
	struct layer_log *lg = arg;
	size_t lb = lg->block_bytes / lg->layers;
	uint64_t bad = 0;
	/* A block's status is not read here: an I/O thread may be writing it.  Which blocks
	 * failed (their layers are reported only to end waits) is known after completion, when
	 * bad_ok() reads it. */
	for (size_t i = 0; i < lg->n && i < 64; i++)
		if (!verify_range(lg->ios[i].buf, lg->block_bytes, layer * lb, lb, &lg->ios[i].key,
				  lg->salt))
			bad |= 1ull << i;
	pthread_mutex_lock(&lg->mu);
	lg->calls++;
	if (layer != lg->next)
		lg->out_of_order = 1;
	lg->next = layer + 1;
	lg->bad_bytes |= bad;
	pthread_mutex_unlock(&lg->mu);
}

/* After the request completed: 1 if a block that loaded was reported with wrong bytes. */
static int bad_ok(const struct layer_log *lg)
{
	for (size_t i = 0; i < lg->n && i < 64; i++)
		if ((lg->bad_bytes >> i & 1) && lg->ios[i].status == 0)
			return 1;
	return 0;
}

/* Stores n blocks of the layout and returns aligned, zeroed load buffers for them. */
static int setup_blocks(kvg_grid *g, kvg_key *k, struct kvg_io *ios, size_t n, size_t bb,
			uint32_t seed, uint32_t salt)
{
	if (t_chain(g, seed, n, k) != n || t_store(g, k, n, bb, salt))
		return -1;
	for (size_t i = 0; i < n; i++) {
		ios[i] = (struct kvg_io){.key = k[i], .len = bb};
		ios[i].buf = t_alloc(bb, 0);
		if (!ios[i].buf)
			return -1;
		memset(ios[i].buf, 0, bb);
	}
	return 0;
}

/* Description: a KVG_LOAD_LAYERS load of 4 blocks calls layer_done once per layer, in order
 * 0..7, and when it is called for layer L, layer L of every block already holds the right
 * bytes; all of them before the request completes; then layers_ready
 * is 8 and all bytes verify. */
static void layer_callbacks_in_order(void)
{
	struct kvg_config c;
	layer_config(&c, LAYERS);
	OPEN(g, &c);
	size_t bb = kvg_config_block_bytes(&c);
	CHECK(bb == 65536);
	enum { N = 4 };
	kvg_key k[N];
	struct kvg_io ios[N];
	CHECK(setup_blocks(g, k, ios, N, bb, 300, 1) == 0);
	struct layer_log lg = {PTHREAD_MUTEX_INITIALIZER, ios, N, bb, LAYERS, 0, 0, 0, 0, 1};
	struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS, .layer_done = on_layer, .arg = &lg};
	kvg_req *r;
	CHECK_RC(kvg_load(g, ios, N, &o, &r), 0);
	CHECK_RC(kvg_req_wait(r, 20000), 0);
	pthread_mutex_lock(&lg.mu);
	uint32_t calls_at_completion = lg.calls;
	pthread_mutex_unlock(&lg.mu);
	CHECK(kvg_req_layers_ready(r) == LAYERS);
	kvg_req_free(r);
	/* late callbacks (a bug) must not find lg gone: give them a moment */
	for (int w = 0; w < 100 && __atomic_load_n(&lg.calls, __ATOMIC_ACQUIRE) < LAYERS; w++)
		usleep(10000);
	CHECK(calls_at_completion == LAYERS);
	CHECK(lg.calls == LAYERS);
	CHECK(!lg.out_of_order);
	CHECK(!bad_ok(&lg));
	for (int i = 0; i < N; i++) {
		CHECK_RC(ios[i].status, 0);
		CHECK(t_verify(ios[i].buf, bb, &k[i], 1));
		t_free(ios[i].buf, 0);
	}
	kvg_close(g);
}

/* Description: kvg_req_wait_layer for layers 0..7 in order returns 0, and at each return
 * that layer of every block verifies; layers_ready never goes backwards; a wait for a layer
 * past the last waits for the whole request. */
static void wait_layer_in_order(void)
{
	struct kvg_config c;
	layer_config(&c, LAYERS);
	OPEN(g, &c);
	size_t bb = kvg_config_block_bytes(&c), lb = bb / LAYERS;
	enum { N = 3 };
	kvg_key k[N];
	struct kvg_io ios[N];
	CHECK(setup_blocks(g, k, ios, N, bb, 301, 2) == 0);
	struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS};
	kvg_req *r;
	CHECK_RC(kvg_load(g, ios, N, &o, &r), 0);
	uint32_t seen = 0;
	for (uint32_t l = 0; l < LAYERS; l++) {
		CHECK_RC(kvg_req_wait_layer(r, l, 20000), 0);
		uint32_t ready = kvg_req_layers_ready(r);
		CHECK(ready > l && ready >= seen);
		seen = ready;
		for (int i = 0; i < N; i++)
			CHECK(verify_range(ios[i].buf, bb, l * lb, lb, &k[i], 2));
	}
	CHECK_RC(kvg_req_wait_layer(r, LAYERS + 5, 20000), 0);
	CHECK_RC(kvg_req_poll(r), 0);
	kvg_req_free(r);
	for (int i = 0; i < N; i++)
		t_free(ios[i].buf, 0);
	kvg_close(g);
}

/* Description: with many layers (64 and 200: part checksums of 512 and 1600 bytes, more than
 * the header read of a plain NVMe load takes) every layer of a layered load still arrives
 * verified and in order, and a plain load of the same blocks verifies them whole. */
static void many_layers(void)
{
	static const uint32_t layer_counts[] = {64, 200};
	for (int t = 0; t < 2; t++) {
		struct kvg_config c;
		layer_config(&c, layer_counts[t]);
		OPEN(g, &c);
		size_t bb = kvg_config_block_bytes(&c), lb = bb / layer_counts[t];
		enum { N = 2 };
		kvg_key k[N];
		struct kvg_io ios[N];
		CHECK(setup_blocks(g, k, ios, N, bb, 303, 4) == 0);
		struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS};
		kvg_req *r;
		CHECK_RC(kvg_load(g, ios, N, &o, &r), 0);
		for (uint32_t l = 0; l < layer_counts[t]; l++) {
			CHECK_RC(kvg_req_wait_layer(r, l, 20000), 0);
			for (int i = 0; i < N; i++)
				CHECK(verify_range(ios[i].buf, bb, l * lb, lb, &k[i], 4));
		}
		CHECK_RC(kvg_req_wait(r, 20000), 0);
		kvg_req_free(r);
		for (int i = 0; i < N; i++) {
			memset(ios[i].buf, 0, bb);
			CHECK_RC(kvg_load_sync(g, &ios[i], 1, 0), 0);
			CHECK(t_verify(ios[i].buf, bb, &k[i], 4));
			t_free(ios[i].buf, 0);
		}
		kvg_close(g);
		t_done();
	}
}

/* Description: when a layer is not a multiple of 4 KiB (3 layers of a 48-token block: 16 KiB
 * per layer, but 5 layers of 6553.6 bytes cannot split), layers are still all reported, in
 * order, once each, and the bytes verify. */
static void layers_that_do_not_split(void)
{
	static const uint32_t layer_counts[] = {3, 5};
	for (int t = 0; t < 2; t++) {
		struct kvg_config c;
		layer_config(&c, layer_counts[t]);
		OPEN(g, &c);
		size_t bb = kvg_config_block_bytes(&c);
		enum { N = 2 };
		kvg_key k[N];
		struct kvg_io ios[N];
		CHECK(setup_blocks(g, k, ios, N, bb, 302, 3) == 0);
		struct layer_log lg = {
		    PTHREAD_MUTEX_INITIALIZER, ios, N, bb, layer_counts[t], 0, 0, 0, 0, 3};
		struct kvg_req_opts o = {
		    .flags = KVG_LOAD_LAYERS, .layer_done = on_layer, .arg = &lg};
		kvg_req *r;
		CHECK_RC(kvg_load(g, ios, N, &o, &r), 0);
		for (uint32_t l = 0; l < layer_counts[t]; l++)
			CHECK_RC(kvg_req_wait_layer(r, l, 20000), 0);
		CHECK_RC(kvg_req_wait(r, 20000), 0);
		kvg_req_free(r);
		CHECK(lg.calls == layer_counts[t]);
		CHECK(!lg.out_of_order && !bad_ok(&lg));
		for (int i = 0; i < N; i++) {
			CHECK(t_verify(ios[i].buf, bb, &k[i], 3));
			t_free(ios[i].buf, 0);
		}
		kvg_close(g);
		t_done();
	}
}

/* Description: without KVG_LOAD_LAYERS, a grid with layers set never calls layer_done, and
 * the request still reports all layers ready when complete. */
static void plain_load_calls_no_layer_callback(void)
{
	struct kvg_config c;
	layer_config(&c, LAYERS);
	OPEN(g, &c);
	size_t bb = kvg_config_block_bytes(&c);
	kvg_key k[2];
	struct kvg_io ios[2];
	CHECK(setup_blocks(g, k, ios, 2, bb, 303, 4) == 0);
	struct layer_log lg = {PTHREAD_MUTEX_INITIALIZER, ios, 2, bb, LAYERS, 0, 0, 0, 0, 4};
	struct kvg_req_opts o = {.layer_done = on_layer, .arg = &lg};
	kvg_req *r;
	CHECK_RC(kvg_load(g, ios, 2, &o, &r), 0);
	CHECK_RC(kvg_req_wait(r, 20000), 0);
	CHECK(kvg_req_layers_ready(r) == LAYERS);
	kvg_req_free(r);
	CHECK(lg.calls == 0);
	for (int i = 0; i < 2; i++) {
		CHECK(t_verify(ios[i].buf, bb, &k[i], 4));
		t_free(ios[i].buf, 0);
	}
	kvg_close(g);
}

/* Description: a layered load with a missing block does not hang: every layer wait returns
 * (an error, KVG_ENOTFOUND: layer L has not arrived for every block), the request fails
 * with KVG_ENOTFOUND, and the present block verifies.  Repeated 200 times: a wait must
 * never return 0 for a failed request, or an engine would read a layer that never came
 *. */
static void missing_block_ends_layer_waits(void)
{
	struct kvg_config c;
	layer_config(&c, LAYERS);
	OPEN(g, &c);
	size_t bb = kvg_config_block_bytes(&c);
	kvg_key k[2];
	struct kvg_io ios[2];
	CHECK(setup_blocks(g, k, ios, 1, bb, 304, 5) == 0);
	kvg_raw_key(g, "never stored", 12, &k[1]);
	ios[1] = (struct kvg_io){.key = k[1], .len = bb};
	ios[1].buf = t_alloc(bb, 0);
	CHECK(ios[1].buf);
	int zero_for_failed = 0;
	for (int rep = 0; rep < 200; rep++) {
		struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS};
		kvg_req *r;
		CHECK_RC(kvg_load(g, ios, 2, &o, &r), 0);
		int rc = kvg_req_wait_layer(r, 0, 20000);
		CHECK(rc == 0 || rc == KVG_ENOTFOUND);
		zero_for_failed += rc == 0;
		for (uint32_t l = 1; l < LAYERS; l++) {
			rc = kvg_req_wait_layer(r, l, 20000);
			CHECK(rc == 0 || rc == KVG_ENOTFOUND);
		}
		CHECK_RC(kvg_req_wait(r, 20000), KVG_ENOTFOUND);
		CHECK_RC(ios[0].status, 0);
		CHECK_RC(ios[1].status, KVG_ENOTFOUND);
		kvg_req_free(r);
	}
	CHECK(t_verify(ios[0].buf, bb, &k[0], 5));
	if (zero_for_failed)
		fprintf(stderr, "kvg_req_wait_layer returned 0 for a failed request %d/200 times\n",
			zero_for_failed);
	CHECK(zero_for_failed == 0);
	for (int i = 0; i < 2; i++)
		t_free(ios[i].buf, 0);
	kvg_close(g);
}

/* Description: on NVMe, a byte flipped on disk in layer 5 of a block's payload: a wait for
 * layers 0-4 returns 0 with that layer verified, or the request's error once it has failed;
 * the wait for layer 5 and the request fail with KVG_ECORRUPT (never 0); one checksum
 * failure is counted, and the block is a miss afterwards; layers_ready never counts layer 5,
 * which never arrived. */
static void corrupt_layer_stops_at_that_layer(void)
{
	struct kvg_config c;
	layer_config(&c, LAYERS);
	size_t bb = kvg_config_block_bytes(&c), lb = bb / LAYERS;
	kvg_key k;
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 305, 1, &k) == 1);
		CHECK_RC(t_store(g, &k, 1, bb, 6), 0);
		kvg_close(g);
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/seg-00000000.kvg", c.dir);
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	uint8_t b;
	off_t off = 8192 + 5 * (off_t)lb + 77;
	CHECK(pread(fd, &b, 1, off) == 1);
	b ^= 0x40;
	CHECK(pwrite(fd, &b, 1, off) == 1);
	close(fd);
	OPEN(g, &c);
	uint8_t *buf = t_alloc(bb, 0);
	CHECK(buf);
	struct kvg_io io = {.key = k, .buf = buf, .len = bb};
	struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS};
	kvg_req *r;
	CHECK_RC(kvg_load(g, &io, 1, &o, &r), 0);
	for (uint32_t l = 0; l < 5; l++) {
		int rc = kvg_req_wait_layer(r, l, 20000);
		CHECK(rc == 0 || rc == KVG_ECORRUPT);
		if (rc == 0)
			CHECK(verify_range(buf, bb, l * lb, lb, &k, 6));
	}
	CHECK_RC(kvg_req_wait_layer(r, 5, 20000), KVG_ECORRUPT);
	CHECK_RC(kvg_req_wait(r, 20000), KVG_ECORRUPT);
	CHECK_RC(io.status, KVG_ECORRUPT);
	CHECK(kvg_req_layers_ready(r) <= 5);
	kvg_req_free(r);
	CHECK(t_stats(g).tier[KVG_TIER_NVME].checksum_failures == 1);
	CHECK_RC(t_load(g, &k, bb, 6, NULL), KVG_ENOTFOUND);
	t_free(buf, 0);
	kvg_close(g);
}

int main(void)
{
	SWEEP(layer_callbacks_in_order);
	SWEEP(wait_layer_in_order);
	SWEEP(layers_that_do_not_split);
	SWEEP(many_layers);
	SWEEP(plain_load_calls_no_layer_callback);
	SWEEP(missing_block_ends_layer_waits);
	SWEEP_NVME(corrupt_layer_stops_at_that_layer);
	T_EXIT();
}
