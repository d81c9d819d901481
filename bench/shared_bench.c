/*
 * shared_bench.c - the shared tier's store and load throughput, and the cost of a 512-block
 * lookup, on a directory (bench/shared.sh runs it on GlusterFS mounts beside fio).
 *
 *   shared_bench store DIR BS N QD     publish N blocks of BS bytes, QD per batch
 *   shared_bench load DIR BS N QD      load them back (another mount: cold caches)
 *   shared_bench lookup DIR BS         store 512 blocks, then from a fresh grid: one lookup
 *                                      of the 512 (cold), another (warm), one load of all
 *
 * QD threads each store or load one block at a time (kvg_store_sync / kvg_load_sync of one
 * block, which runs on the calling thread), so QD blocks are in flight all the time, as
 * fio's numjobs = QD with psync; the lookup runs on shared_threads = QD.  Loads use
 * KVG_LOAD_NOPROMOTE: every byte comes from the shared tier.  Prints one JSON object.
 */
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "kvgrid.h"

static kvg_grid *open_on(const char *dir, uint32_t qd)
{
	struct kvg_config c;
	kvg_config_init(&c);
	c.dram_bytes = 64u << 20;
	c.hugepages = 0;
	c.log_level = 0;
	c.max_value_bytes = 64u << 20;
	c.promote_on_hit = 0;
	c.demote_on_evict = 0;
	snprintf(c.shared_dir, sizeof(c.shared_dir), "%s", dir);
	c.shared_threads = qd;
	c.shared_bytes = 1ull << 40;
	kvg_grid *g;
	char err[256];
	if (kvg_open(&c, &g, err, sizeof(err))) {
		fprintf(stderr, "shared_bench: %s\n", err);
		exit(1);
	}
	return g;
}

/* Waits until a new tier's directories are all made (a grid makes them in the background
 * when it opens one): the figures are those of a tier in use, as fio's directory exists
 * before fio starts. */
static void wait_layout(const char *dir)
{
	char pat[4200];
	snprintf(pat, sizeof(pat), "%s/t-*/ff", dir);
	for (int i = 0; i < 600; i++) {
		glob_t gl;
		int found = glob(pat, GLOB_ONLYDIR, NULL, &gl) == 0;
		if (found)
			globfree(&gl);
		if (found)
			return;
		usleep(100000);
	}
}

static void keys_of(kvg_grid *g, size_t bs, size_t n, kvg_key *keys)
{
	for (size_t i = 0; i < n; i++) {
		char s[64];
		int k = snprintf(s, sizeof(s), "bench-%zu-%zu", bs, i);
		kvg_raw_key(g, s, (size_t)k, &keys[i]);
	}
}

/* One of the qd workers of move(): takes the next block until none is left. */
struct mover {
	kvg_grid *g;
	int load;
	const kvg_key *keys;
	size_t n, bs;
	size_t next; /* atomic */
	int failed;  /* atomic: the first error */
};

struct worker {
	struct mover *m;
	uint8_t *buf; /* this worker's own: a load verifies what it read into it */
	pthread_t t;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct mover *m = w->m;
	size_t i;
	while ((i = __atomic_fetch_add(&m->next, 1, __ATOMIC_RELAXED)) < m->n) {
		struct kvg_io io = {.key = m->keys[i], .buf = w->buf, .len = m->bs};
		int rc = m->load ? kvg_load_sync(m->g, &io, 1, KVG_LOAD_NOPROMOTE)
				 : kvg_store_sync(m->g, &io, 1, 0);
		if (rc || io.len != m->bs) {
			__atomic_store_n(&m->failed, rc ? rc : -1, __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

/*
 * Stores or loads n blocks with qd of them in flight all the time, as fio's numjobs = qd
 * (psync): qd threads, each moving one block at a time (a batch of one runs on its caller's
 * thread), none waiting for the others.  Seconds taken.
 */
static double move(kvg_grid *g, int load, const kvg_key *keys, size_t n, size_t bs, size_t qd,
		   uint8_t *bufs)
{
	struct mover m = {.g = g, .load = load, .keys = keys, .n = n, .bs = bs};
	struct worker *w = calloc(qd, sizeof(*w));
	double t0 = now_s();
	for (size_t j = 0; j < qd; j++) {
		w[j] = (struct worker){.m = &m, .buf = bufs + j * bs};
		if (pthread_create(&w[j].t, NULL, work, &w[j])) {
			fprintf(stderr, "shared_bench: cannot start a thread\n");
			exit(1);
		}
	}
	for (size_t j = 0; j < qd; j++)
		pthread_join(w[j].t, NULL);
	double t = now_s() - t0;
	free(w);
	if (m.failed) {
		fprintf(stderr, "shared_bench: %s: %s\n", load ? "load" : "store",
			kvg_strerror(m.failed));
		exit(1);
	}
	return t;
}

static int lookup_bench(const char *dir, size_t bs)
{
	size_t n = 512, qd = 16;
	kvg_key *keys = malloc(n * sizeof(*keys));
	uint8_t *bufs = malloc(qd * bs);
	memset(bufs, 0x5a, qd * bs);
	kvg_grid *g = open_on(dir, (uint32_t)qd);
	wait_layout(dir);
	keys_of(g, bs, n, keys);
	move(g, 0, keys, n, bs, qd, bufs);
	kvg_close(g);
	g = open_on(dir, (uint32_t)qd); /* nothing local: every lookup goes to the tier */
	size_t hit;
	double t0 = now_s();
	kvg_lookup_keys(g, keys, n, &hit, NULL);
	double cold = now_s() - t0;
	t0 = now_s();
	size_t hit2;
	kvg_lookup_keys(g, keys, n, &hit2, NULL);
	double warm = now_s() - t0;
	double load = move(g, 1, keys, n, bs, qd, bufs);
	kvg_close(g);
	printf("{\"blocks\": %zu, \"hit\": %zu, \"block_bytes\": %zu, \"lookup_cold_ms\": %.2f, "
	       "\"lookup_warm_ms\": %.2f, \"load_ms\": %.1f, \"lookup_cold_over_load\": %.4f}\n",
	       n, hit == n && hit2 == n ? n : 0, bs, cold * 1e3, warm * 1e3, load * 1e3,
	       cold / load);
	free(keys);
	free(bufs);
	return hit == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: shared_bench store|load DIR BS N QD | lookup DIR BS\n");
		return 2;
	}
	uint64_t bs;
	if (kvg_parse_size(argv[3], &bs)) {
		fprintf(stderr, "shared_bench: bad size '%s'\n", argv[3]);
		return 2;
	}
	if (!strcmp(argv[1], "lookup"))
		return lookup_bench(argv[2], bs);
	if (argc < 6)
		return 2;
	size_t n = strtoull(argv[4], NULL, 10), qd = strtoull(argv[5], NULL, 10);
	int load = !strcmp(argv[1], "load");
	kvg_key *keys = malloc(n * sizeof(*keys));
	uint8_t *bufs = malloc(qd * bs);
	for (size_t i = 0; i < qd * bs; i++)
		bufs[i] = (uint8_t)(i * 2654435761u >> 13);
	kvg_grid *g = open_on(argv[2], (uint32_t)qd);
	if (!load)
		wait_layout(argv[2]);
	keys_of(g, bs, n, keys);
	double t = move(g, load, keys, n, bs, qd, bufs);
	kvg_close(g);
	printf("{\"op\": \"%s\", \"bs\": %llu, \"blocks\": %zu, \"qd\": %zu, \"seconds\": %.3f, "
	       "\"gbps\": %.3f}\n",
	       argv[1], (unsigned long long)bs, n, qd, t, (double)n * bs / t / 1e9);
	free(keys);
	free(bufs);
	return 0;
}
