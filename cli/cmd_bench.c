/*
 * cmd_bench.c - `kvgrid bench`: store and load throughput and latency of one tier through
 * the library's asynchronous API, with a fixed number of requests in flight.
 *
 * The store phase writes new keys (so every store moves bytes; the NVMe tier evicts whole
 * segments when it fills); the load phase reads random keys among those still resident.
 * For the DRAM tier the same run measures plain memcpy with as many threads as the grid's
 * workers, so the report can state the ratio on this machine, now: each phase is cut into
 * slices with a memcpy slice after each, and each phase is compared with the memcpy slices
 * run beside it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../bench/bench.h"
#include "cli.h"
#include "gridopt.h"

struct done_queue;

#define BATCH_MAX 64

struct slot {
	struct kvg_io io[BATCH_MAX]; /* one request of `batch` blocks */
	uint32_t batch;
	kvg_req *req;
	uint64_t start_ns;
	uint64_t end_ns; /* written by the done callback */
	void *buf;
	struct done_queue *q;
	uint32_t idx;
};

/* Completed slots, in completion order, so that any finished request is replaced at once
 * (as fio does) instead of waiting for the oldest one. */
struct done_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t *ring;
	uint32_t head, tail, cap;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void slot_done(kvg_req *r, void *arg)
{
	struct slot *s = arg;
	s->end_ns = now_ns();
	pthread_mutex_lock(&s->q->mu);
	s->q->ring[s->q->tail++ % s->q->cap] = s->idx;
	pthread_cond_signal(&s->q->cv);
	pthread_mutex_unlock(&s->q->mu);
}

static uint32_t next_done(struct done_queue *q)
{
	pthread_mutex_lock(&q->mu);
	while (q->head == q->tail)
		pthread_cond_wait(&q->cv, &q->mu);
	uint32_t i = q->ring[q->head++ % q->cap];
	pthread_mutex_unlock(&q->mu);
	return i;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct phase {
	double gbps;
	double p50_us, p99_us;
	uint64_t ops, errors;
	/* accumulated over the slices of a phase (phase_end() fills the figures above) */
	uint64_t bytes, ns, nlat;
	uint64_t *lat;
};

#define LAT_CAP (1u << 20)

static int phase_begin(struct phase *p)
{
	*p = (struct phase){0};
	p->lat = malloc(sizeof(uint64_t) * LAT_CAP);
	return p->lat ? 0 : -ENOMEM;
}

static void phase_end(struct phase *p)
{
	qsort(p->lat, p->nlat, sizeof(uint64_t), cmp_u64);
	p->gbps = p->ns ? p->bytes / (p->ns / 1e9) / 1e9 : 0;
	p->p50_us = p->nlat ? p->lat[p->nlat / 2] / 1e3 : 0;
	p->p99_us = p->nlat ? p->lat[(p->nlat * 99) / 100] / 1e3 : 0;
	free(p->lat);
	p->lat = NULL;
}

/* Key k: bench/bench.h's splitmix64 sequence; an engine computes its keys once per block,
 * outside the transfer, so the loop compared with memcpy times no SHA-256 per block. */
static void bench_key(kvg_grid *g, uint64_t k, kvg_key *key)
{
	(void)g;
	bench_key_of(k, key);
}

static int submit_slot(kvg_grid *g, struct slot *s, size_t block, int load, uint64_t *next_key,
		       uint64_t lo, uint64_t hi, uint64_t *rng)
{
	uint64_t k;
	if (load) {
		*rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;
		k = lo + *rng % (hi - lo > s->batch ? hi - lo - s->batch + 1 : 1);
	} else {
		k = (*next_key)++;
	}
	for (uint32_t b = 0; b < s->batch; b++) {
		bench_key(g, k + b, &s->io[b].key);
		s->io[b].buf = (uint8_t *)s->buf + (size_t)b * block;
		s->io[b].len = block;
	}
	if (!load)
		*next_key += s->batch - 1;
	struct kvg_req_opts o = {.done = slot_done, .arg = s};
	s->start_ns = now_ns();
	int rc;
	while ((rc = load ? kvg_load(g, s->io, s->batch, &o, &s->req)
			  : kvg_store(g, s->io, s->batch, &o, &s->req)) == KVG_EBUSY)
		usleep(50);
	if (rc)
		s->req = NULL;
	return rc;
}

/* Runs a slice of a phase with qd requests in flight, replacing each as soon as it
 * completes; adds its bytes, time and latencies to *out. */
static int run_phase(kvg_grid *g, struct slot *slots, uint32_t qd, size_t block, double secs,
		     int load, uint64_t *next_key, uint64_t lo, uint64_t hi, struct phase *out)
{
	struct done_queue q = {PTHREAD_MUTEX_INITIALIZER,
			       PTHREAD_COND_INITIALIZER,
			       calloc(qd + 1, sizeof(uint32_t)),
			       0,
			       0,
			       qd + 1};
	if (!q.ring)
		return -ENOMEM;
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ out->ops, t0 = now_ns(),
		 deadline = t0 + (uint64_t)(secs * 1e9);
	uint32_t inflight = 0;
	for (uint32_t i = 0; i < qd; i++) {
		slots[i].q = &q;
		slots[i].idx = i;
		if (submit_slot(g, &slots[i], block, load, next_key, lo, hi, &rng))
			out->errors++;
		else
			inflight++;
	}
	while (inflight) {
		struct slot *s = &slots[next_done(&q)];
		inflight--;
		int rc = kvg_req_poll(s->req);
		kvg_req_free(s->req);
		s->req = NULL;
		if (rc) {
			if (getenv("KVG_BENCH_DEBUG") && out->errors < 5)
				fprintf(stderr, "bench: %s of key %s failed: %s\n",
					load ? "load" : "store", "?", kvg_strerror(rc));
			out->errors++;
		} else {
			out->bytes += block * s->batch;
		}
		out->ops++;
		if (out->lat && out->nlat < LAT_CAP)
			out->lat[out->nlat++] = s->end_ns - s->start_ns;
		if (now_ns() >= deadline)
			continue;
		if (submit_slot(g, s, block, load, next_key, lo, hi, &rng))
			out->errors++;
		else
			inflight++;
	}
	out->ns += now_ns() - t0;
	free(q.ring);
	return 0;
}

/*
 * Plain memcpy, the DRAM tier's reference: the same bytes on as many threads as the grid
 * has workers, between the same places.  A load copies a random block of a region as big
 * as the arena into the caller's buffers, which are qd blocks in flight; a store copies the
 * other way.  Each thread owns its share of qd destination (or source) blocks and cycles
 * through them, as the requests in flight do; a single block reused by every copy would
 * stay in the cache and flatter memcpy as the blocks in flight grow.
 */
struct mc_arg {
	uint8_t *region;
	size_t region_bytes, block;
	uint8_t *ring; /* this thread's share of the blocks in flight */
	size_t ring_blocks;
	int store; /* ring -> region, else region -> ring */
	double secs;
	uint64_t bytes;
};

static void *memcpy_thread(void *p)
{
	struct mc_arg *a = p;
	uint64_t deadline = now_ns() + (uint64_t)(a->secs * 1e9), rng = (uintptr_t)a | 1;
	size_t blocks = a->region_bytes / a->block, j = 0;
	while (now_ns() < deadline) {
		for (int i = 0; i < 16; i++) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			uint8_t *far = a->region + (rng % blocks) * a->block;
			uint8_t *near = a->ring + j * a->block;
			j = j + 1 < a->ring_blocks ? j + 1 : 0;
			if (a->store)
				memcpy(far, near, a->block);
			else
				memcpy(near, far, a->block);
			a->bytes += a->block;
		}
	}
	return NULL;
}

/* The reference's memory, allocated and touched once; run in slices between the grid's own
 * (mc_slice()). */
struct mc_ref {
	uint8_t *region;
	size_t region_bytes, block, ring_blocks;
	uint32_t threads;
	uint8_t *ring[16];
};

static int mc_open(struct mc_ref *m, size_t region, size_t block, uint32_t threads,
		   uint64_t in_flight)
{
	*m = (struct mc_ref){.region_bytes = region, .block = block};
	m->threads = threads > 16 ? 16 : threads ? threads : 1;
	m->ring_blocks = in_flight / m->threads ? in_flight / m->threads : 1;
	if (posix_memalign((void **)&m->region, 2 << 20, region))
		return -ENOMEM;
	memset(m->region, 1, region);
	for (uint32_t i = 0; i < m->threads; i++) {
		if (posix_memalign((void **)&m->ring[i], 4096, block * m->ring_blocks))
			return -ENOMEM;
		memset(m->ring[i], 0, block * m->ring_blocks);
	}
	return 0;
}

static void mc_close(struct mc_ref *m)
{
	for (uint32_t i = 0; i < m->threads; i++)
		free(m->ring[i]);
	free(m->region);
}

/* secs of memcpy on every thread, the way a store (or a load) goes; adds to *bytes, *ns. */
static void mc_slice(struct mc_ref *m, double secs, int store, uint64_t *bytes, uint64_t *ns)
{
	struct mc_arg a[16];
	pthread_t th[16];
	uint64_t t0 = now_ns();
	for (uint32_t i = 0; i < m->threads; i++) {
		a[i] = (struct mc_arg){m->region,      m->region_bytes, m->block, m->ring[i],
				       m->ring_blocks, store,		secs,	  0};
		pthread_create(&th[i], NULL, memcpy_thread, &a[i]);
	}
	for (uint32_t i = 0; i < m->threads; i++) {
		pthread_join(th[i], NULL);
		*bytes += a[i].bytes;
	}
	*ns += now_ns() - t0;
}

/* Slices a DRAM phase is cut into, each followed by as long a memcpy slice, so that the
 * grid and memcpy see the same machine (these machines' memcpy swings 2x within seconds). */
#define DRAM_SLICES 8

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: kvgrid bench --dir DIR --tier dram|nvme --block-bytes N --queue-depth Q\n"
	    "                    --seconds S [--json] [--size BYTES] [--batch B]\n"
	    "  stores new blocks for S/2 seconds, then loads random resident ones for S/2,\n"
	    "  Q requests in flight; files are created under DIR and removed.  --size is the\n"
	    "  tier's capacity (default: DRAM 1 GiB, NVMe 4 GiB).  The NVMe tier is written\n"
	    "  over once before timing (steady state, as fio's laid-out file); --fresh skips it.\n"
	    "  --batch B: the Q blocks in flight go as requests of B blocks (default "
	    "1).\n" GRIDOPT_HELP);
}

int cmd_bench(int argc, char **argv)
{
	struct kvg_config c;
	kvg_config_init(&c);
	if (gridopt_parse("bench", &argc, argv, &c))
		return 2;
	const char *tier = NULL;
	uint64_t block = 1 << 20, qd = 16, size = 0, batch = 1;
	double secs = 10;
	int json = 0, precondition = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--fresh")) {
			precondition = 0;
		} else if (!v) {
			return cli_usage("bench", "unknown or incomplete option '%s' (--help)", a);
		} else if (!strcmp(a, "--tier")) {
			tier = argv[++i];
		} else if (!strcmp(a, "--block-bytes")) {
			if (cli_parse_size(argv[++i], &block) || block == 0 || block > (1ull << 30))
				return cli_usage("bench", "--block-bytes: bad size '%s'", v);
		} else if (!strcmp(a, "--queue-depth")) {
			if (cli_parse_size(argv[++i], &qd) || qd == 0 || qd > 1024)
				return cli_usage("bench",
						 "--queue-depth: expected 1..1024, got '%s'", v);
		} else if (!strcmp(a, "--batch")) {
			if (cli_parse_size(argv[++i], &batch) || batch == 0 || batch > BATCH_MAX)
				return cli_usage("bench", "--batch: expected 1..%d, got '%s'",
						 BATCH_MAX, v);
		} else if (!strcmp(a, "--seconds")) {
			char *end;
			secs = strtod(argv[++i], &end);
			if (*end || secs <= 0 || secs > 86400)
				return cli_usage("bench", "--seconds: bad value '%s'", v);
		} else if (!strcmp(a, "--size")) {
			if (cli_parse_size(argv[++i], &size) || size == 0)
				return cli_usage("bench", "--size: bad size '%s'", v);
		} else {
			return cli_usage("bench", "unknown option '%s' (--help)", a);
		}
	}
	if (!tier || (strcmp(tier, "dram") && strcmp(tier, "nvme")))
		return cli_usage("bench", "--tier dram|nvme is required");
	int nvme = !strcmp(tier, "nvme");
	if (nvme && !c.dir[0])
		return cli_usage("bench", "--dir DIR is required for the nvme tier");
	char dir[4200] = "";
	c.queue_depth = (uint32_t)qd;
	c.max_value_bytes = block > c.max_value_bytes ? block : c.max_value_bytes;
	c.req_max = (uint32_t)qd + 8;
	if (nvme) {
		snprintf(dir, sizeof(dir), "%s/kvgrid-bench-%d", c.dir, (int)getpid());
		if (strlen(dir) >= sizeof(c.dir))
			return cli_usage("bench", "--dir: path too long");
		memcpy(c.dir, dir, strlen(dir) + 1);
		c.dram_bytes = 0;
		c.nvme_bytes = size ? size : 4ull << 30;
		if (c.segment_bytes > c.nvme_bytes / 8)
			c.segment_bytes = (c.nvme_bytes / 8) & ~4095ull;
		if (c.segment_bytes < 2 * (block + 8192))
			c.segment_bytes = (2 * (block + 8192) + 4095) & ~4095ull;
		c.demote_on_evict = 0;
	} else {
		c.dir[0] = 0;
		c.dram_bytes = size ? size : 1ull << 30;
		if (c.chunk_bytes > block)
			c.chunk_bytes = (uint32_t)((block + 4095) & ~4095ull);
	}
	kvg_grid *g = gridopt_open("bench", &c);
	if (!g)
		return 1;
	/* qd blocks in flight, as requests of `batch` blocks each */
	if (batch > qd)
		batch = qd;
	uint64_t nslots = qd / batch;
	struct slot *slots = calloc(nslots, sizeof(struct slot));
	for (uint64_t i = 0; slots && i < nslots; i++) {
		if (posix_memalign(&slots[i].buf, 4096, block * batch))
			return cli_fail("bench", "out of memory");
		memset(slots[i].buf, (int)(i * 37 + 1), block * batch);
		slots[i].batch = (uint32_t)batch;
	}
	uint64_t next = 0;
	struct phase w, r;
	struct mc_ref mc;
	if (phase_begin(&w) || phase_begin(&r) ||
	    (!nvme && mc_open(&mc, c.dram_bytes, block, c.workers, qd)))
		return cli_fail("bench", "out of memory");
	if (nvme && precondition) {
		/* write the tier over until it evicts, as fio lays out its file: steady state,
		 * every segment file made (the tier makes them as it fills), not fresh extents */
		struct phase pre = {0};
		double est = (double)c.nvme_bytes / 1.5e9 + 1;
		struct kvg_stats ps = {0};
		for (int k = 0; k < 8 && ps.tier[KVG_TIER_NVME].evictions == 0; k++) {
			run_phase(g, slots, (uint32_t)nslots, block, est / 2, 0, &next, 0, 0, &pre);
			kvg_stats_get(g, &ps);
		}
	}
	/* NVMe: each phase at once (fio runs beside it, in the script); DRAM: in slices, each
	 * followed by a memcpy slice as long */
	int slices = nvme ? 1 : DRAM_SLICES;
	uint64_t mcw_bytes = 0, mcw_ns = 0, mcr_bytes = 0, mcr_ns = 0;
	for (int k = 0; k < slices; k++) {
		run_phase(g, slots, (uint32_t)nslots, block, secs / 2 / slices, 0, &next, 0, 0, &w);
		if (!nvme)
			mc_slice(&mc, secs / 2 / slices, 1, &mcw_bytes, &mcw_ns);
	}
	/* resident keys: the newest ones that fit in the tier */
	uint64_t cap = nvme ? c.nvme_bytes / (block + 8192) : c.dram_bytes / block;
	uint64_t resident = cap / 2 < next ? cap / 2 : next; /* whole segments leave at once */
	if (resident == 0)
		resident = 1;
	for (int k = 0; k < slices; k++) {
		run_phase(g, slots, (uint32_t)nslots, block, secs / 2 / slices, 1, &next,
			  next - resident, next, &r);
		if (!nvme)
			mc_slice(&mc, secs / 2 / slices, 0, &mcr_bytes, &mcr_ns);
	}
	phase_end(&w);
	phase_end(&r);
	if (!nvme)
		mc_close(&mc);
	double mcw = mcw_ns ? mcw_bytes / (mcw_ns / 1e9) / 1e9 : 0;
	double mcr = mcr_ns ? mcr_bytes / (mcr_ns / 1e9) / 1e9 : 0;
	struct kvg_stats st;
	kvg_stats_get(g, &st);
	const char *backend = st.tier[nvme].backend;
	kvg_close(g);
	if (nvme) {
		char cmd[8400];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd)) {
		}
	}
	for (uint64_t i = 0; i < nslots; i++)
		free(slots[i].buf);
	free(slots);
	if (json) {
		printf("{\"tier\": \"%s\", \"backend\": \"%s\", \"block_bytes\": %llu, "
		       "\"queue_depth\": %llu, \"batch\": %llu, \"seconds\": %.1f, \"write_gbps\": "
		       "%.3f, "
		       "\"read_gbps\": %.3f, \"write_p50_us\": %.1f, \"write_p99_us\": %.1f, "
		       "\"read_p50_us\": %.1f, \"read_p99_us\": %.1f, \"writes\": %llu, "
		       "\"reads\": %llu, \"errors\": %llu",
		       tier, backend, (unsigned long long)block, (unsigned long long)qd,
		       (unsigned long long)batch, secs, w.gbps, r.gbps, w.p50_us, w.p99_us,
		       r.p50_us, r.p99_us, (unsigned long long)w.ops, (unsigned long long)r.ops,
		       (unsigned long long)(w.errors + r.errors));
		if (!nvme)
			printf(", \"memcpy_gbps\": %.3f, \"memcpy_threads\": %u, "
			       "\"read_vs_memcpy\": %.3f, \"memcpy_store_gbps\": %.3f, "
			       "\"write_vs_memcpy\": %.3f",
			       mcr, mc.threads, mcr > 0 ? r.gbps / mcr : 0, mcw,
			       mcw > 0 ? w.gbps / mcw : 0);
		printf("}\n");
	} else {
		printf("%s tier (%s), %llu-byte blocks, queue depth %llu\n", tier, backend,
		       (unsigned long long)block, (unsigned long long)qd);
		printf("  store  %7.3f GB/s  p50 %8.1f us  p99 %8.1f us  (%llu ops)\n", w.gbps,
		       w.p50_us, w.p99_us, (unsigned long long)w.ops);
		printf("  load   %7.3f GB/s  p50 %8.1f us  p99 %8.1f us  (%llu ops)\n", r.gbps,
		       r.p50_us, r.p99_us, (unsigned long long)r.ops);
		if (!nvme)
			printf("  memcpy %7.3f GB/s (beside the stores) and %.3f GB/s (beside the "
			       "loads) on %u threads: store is %.0f%%, load %.0f%% of it\n",
			       mcw, mcr, mc.threads, mcw > 0 ? 100 * w.gbps / mcw : 0,
			       mcr > 0 ? 100 * r.gbps / mcr : 0);
		if (w.errors + r.errors)
			printf("  errors %llu\n", (unsigned long long)(w.errors + r.errors));
	}
	return w.errors + r.errors ? 1 : 0;
}
