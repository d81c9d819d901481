/*
 * replay.c - a trace through a real grid (see replay.h).
 *
 * Everything a replay needs is allocated before the first request: the keys of the whole
 * trace (32 bytes per block access), one payload buffer and one kvg_io array as large as
 * the longest request, and the per-request load latencies; the loop itself allocates
 * nothing, so the time it reports is the grid's.  The payload of a block begins with its
 * raw id and its length, so a load that returns another block's bytes is caught.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replay.h"

#define REPLAY_TAG_BYTES 16 /* raw id (8) + length (8) at the start of every payload */

#define REPLAY_ENGINES_MAX 64
#define REPLAY_HOSTS_MAX   16

/* What the engines of one replay share. */
struct replay_shared {
	kvg_grid *g; /* host 0's */
	kvg_grid *hosts[REPLAY_HOSTS_MAX];
	uint32_t nhosts;
	const struct trace *t;
	const struct replay_opts *o;
	kvg_key *keys;	     /* one per trace access */
	uint32_t max_blocks; /* of one request */
	size_t next;	     /* next request to take (atomic) */
	pthread_mutex_t mu;  /* guards done, the progress callback and the maxima */
	size_t done;
	uint64_t max_dram_blocks, max_index_blocks;
	double start;
};

/* One engine: its own buffers and counts. */
struct replay_ctx {
	struct replay_shared *sh;
	kvg_grid *g;
	int host; /* with hosts: the one whose requests this engine replays; -1: any */
	const struct trace *t;
	const struct replay_opts *o;
	const kvg_key *keys;
	struct kvg_io *ios; /* max_blocks */
	uint8_t *bufs;	    /* max_blocks * block_bytes */
	uint8_t *tiers;	    /* max_blocks */
	double *lat_us;	    /* one per request with a hit */
	size_t n_lat;
	struct replay_result r;
};

static double replay_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t replay_block_len(const struct replay_ctx *c, const struct trace_req *rq, uint32_t i)
{
	uint64_t full = c->o->block_bytes;
	if (!c->o->partial_bytes)
		return full;
	uint64_t tok = trace_block_tokens(rq, i, c->t->block_tokens);
	uint64_t len = full * tok / c->t->block_tokens;
	return len < REPLAY_TAG_BYTES ? REPLAY_TAG_BYTES : len;
}

static void replay_fill(uint8_t *buf, uint64_t raw_id, uint64_t len)
{
	memcpy(buf, &raw_id, 8);
	memcpy(buf + 8, &len, 8);
}

/* The kvg_store/kvg_load flags that carry rq's session hint (opts.hints). */
static uint32_t replay_flags(const struct replay_ctx *c, const struct trace_req *rq)
{
	if (!c->o->hints)
		return 0;
	switch (c->o->hints[rq - c->t->reqs]) {
	case 1:
		return KVG_STORE_CONTINUES;
	case 2:
		return KVG_STORE_LAST;
	default:
		return 0;
	}
}

/* Loads the cached prefix [0, h) of rq and checks every block's tag.  Returns how many
 * blocks from the first loaded. */
static uint32_t replay_load(struct replay_ctx *c, const struct trace_req *rq, uint32_t h,
			    struct replay_result *r)
{
	uint32_t got = h;
	for (uint32_t i = 0; i < h; i++) {
		struct kvg_io *io = &c->ios[i];
		memset(io, 0, sizeof(*io));
		io->key = c->keys[rq->first + i];
		io->buf = c->bufs + (size_t)i * c->o->block_bytes;
		io->len = c->o->block_bytes;
		io->depth = i;
	}
	double t0 = replay_now_s();
	int rc = kvg_load_sync(c->g, c->ios, h, replay_flags(c, rq));
	c->lat_us[c->n_lat++] = (replay_now_s() - t0) * 1e6;
	for (uint32_t i = 0; i < h; i++) {
		struct kvg_io *io = &c->ios[i];
		uint64_t id, len;
		if (rc && io->status) {
			if (got > i)
				got = i;
			if (io->status == KVG_ENOTFOUND && c->o->engines > 1)
				r->load_lost++; /* another engine evicted it since the lookup */
			else
				r->load_errors++;
			continue;
		}
		memcpy(&id, io->buf, 8);
		memcpy(&len, (uint8_t *)io->buf + 8, 8);
		if (id != c->t->raw_ids[rq->first + i] || len != io->len)
			r->verify_failures++;
	}
	return got;
}

/* Stores (or refreshes) blocks [h, n) of rq. */
static void replay_store(struct replay_ctx *c, const struct trace_req *rq, uint32_t h,
			 struct replay_result *r)
{
	uint32_t n = rq->n_blocks - h;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = h + k;
		struct kvg_io *io = &c->ios[k];
		memset(io, 0, sizeof(*io));
		io->key = c->keys[rq->first + i];
		io->buf = c->bufs + (size_t)k * c->o->block_bytes;
		io->len = replay_block_len(c, rq, i);
		io->depth = i;
		replay_fill(io->buf, c->t->raw_ids[rq->first + i], io->len);
	}
	if (kvg_store_sync(c->g, c->ios, n, replay_flags(c, rq)))
		for (uint32_t k = 0; k < n; k++)
			if (c->ios[k].status)
				r->store_errors++;
}

static void replay_request(struct replay_ctx *c, const struct trace_req *rq,
			   struct replay_result *r)
{
	size_t h = 0;
	if (kvg_lookup_keys(c->g, &c->keys[rq->first], rq->n_blocks, &h, c->tiers))
		h = 0;
	uint32_t got = h ? replay_load(c, rq, (uint32_t)h, r) : 0;
	if (c->o->engines > 1 && got < h)
		h = got; /* what the engine has of its prefix: the rest it recomputes and stores */
	uint64_t tok = (uint64_t)h * c->t->block_tokens;
	r->hit_tokens += tok < rq->input_length ? tok : rq->input_length;
	r->hit_blocks += h;
	r->blocks += rq->n_blocks;
	r->input_tokens += rq->input_length;
	r->requests++;
	for (size_t i = 0; i < h; i++)
		if (c->tiers[i] < KVG_TIER_COUNT)
			r->hit_blocks_tier[c->tiers[i]]++;
	if (h < rq->n_blocks)
		replay_store(c, rq, (uint32_t)h, r);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double replay_pct(const double *v, size_t n, double q)
{
	if (!n)
		return 0;
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

/* The most the NVMe tier may hold: nvme_bytes, or, when 0 (decided at open from the free
 * space), the automatic capacity's bound. */
static uint64_t nvme_max(const struct kvg_config *cfg)
{
	return cfg->nvme_bytes ? cfg->nvme_bytes : 16ull << 30;
}

static int replay_open(struct replay_shared *c, uint32_t host, char *err, size_t err_len)
{
	const struct replay_opts *o = c->o;
	struct kvg_config cfg;
	if (o->base)
		cfg = *o->base;
	else
		kvg_config_init(&cfg);
	snprintf(cfg.model_id, sizeof(cfg.model_id), "kvgrid-replay");
	cfg.block_tokens = c->t->block_tokens;
	cfg.chunk_bytes = o->block_bytes;
	cfg.dram_bytes = o->dram_bytes ? o->dram_bytes : o->capacity_blocks * o->block_bytes;
	if (o->dir && o->dir[0]) {
		if (c->nhosts > 1)
			snprintf(cfg.dir, sizeof(cfg.dir), "%s/host-%u", o->dir, host);
		else
			snprintf(cfg.dir, sizeof(cfg.dir), "%s", o->dir);
		if (o->nvme_bytes)
			cfg.nvme_bytes = o->nvme_bytes;
		/* the NVMe tier evicts a whole segment at a time: keep segments small next to the
		 * tier (at least 64 of them, of at least 1 MiB) so that eviction stays fine-grained
		 */
		while (cfg.segment_bytes > (1u << 20) && nvme_max(&cfg) < 64 * cfg.segment_bytes)
			cfg.segment_bytes /= 2;
	} else {
		cfg.dir[0] = 0;
	}
	if (o->policy)
		snprintf(cfg.policy, sizeof(cfg.policy), "%s", o->policy);
	/* index: every block of the trace could be indexed at once, plus room to spare */
	uint64_t tier_blocks =
	    cfg.dram_bytes / o->block_bytes + (cfg.dir[0] ? nvme_max(&cfg) / o->block_bytes : 0);
	uint64_t want = (tier_blocks < c->t->n_distinct ? tier_blocks : c->t->n_distinct);
	cfg.max_blocks = want + c->max_blocks + 1024;
	if (o->shared_dir && o->shared_dir[0]) {
		snprintf(cfg.shared_dir, sizeof(cfg.shared_dir), "%s", o->shared_dir);
		cfg.shared_bytes = o->shared_bytes;
	}
	return kvg_open(&cfg, &c->hosts[host], err, err_len);
}

/* Sizes the shared part: the keys of every access and the longest request. */
static int replay_alloc_shared(struct replay_shared *sh)
{
	const struct trace *t = sh->t;
	for (size_t q = 0; q < t->n_reqs; q++)
		if (t->reqs[q].n_blocks > sh->max_blocks)
			sh->max_blocks = t->reqs[q].n_blocks;
	sh->keys = malloc(sizeof(*sh->keys) * (t->n_ids ? t->n_ids : 1));
	return sh->keys ? 0 : -ENOMEM;
}

static int replay_alloc(struct replay_ctx *c, struct replay_shared *sh)
{
	size_t mb = sh->max_blocks ? sh->max_blocks : 1;
	c->sh = sh;
	c->g = sh->g;
	c->host = -1;
	c->t = sh->t;
	c->o = sh->o;
	c->keys = sh->keys;
	c->ios = calloc(mb, sizeof(*c->ios));
	c->bufs = aligned_alloc(4096, mb * (size_t)c->o->block_bytes);
	c->tiers = calloc(mb, 1);
	c->lat_us = malloc(sizeof(double) * (c->t->n_reqs ? c->t->n_reqs : 1));
	if (!c->ios || !c->bufs || !c->tiers || !c->lat_us)
		return -ENOMEM;
	return 0;
}

static void replay_free(struct replay_ctx *c)
{
	free(c->ios);
	free(c->bufs);
	free(c->tiers);
	free(c->lat_us);
}

/* Sleeps until the request's time at the chosen speed (speed > 0). */
static void replay_pace(const struct replay_ctx *c, const struct trace_req *rq, double start)
{
	double due =
	    start + (double)(rq->timestamp_ms - c->t->reqs[0].timestamp_ms) / 1000.0 / c->o->speed;
	double wait = due - replay_now_s();
	if (wait > 0) {
		struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
		nanosleep(&ts, NULL);
	}
}

/* An engine: takes the next request until none is left (several engines take them in
 * order of arrival and run them at once). */
/* The host a request goes to: by its first block, so that a session's turns (which start
 * alike) stay on one host, as a session-affine router sends them. */
static int replay_host_of(const struct replay_shared *sh, const struct trace_req *rq, size_t q)
{
	uint64_t x = rq->n_blocks ? sh->t->raw_ids[rq->first] : q;
	return (int)(((x + 1) * 0x9e3779b97f4a7c15ull >> 32) % sh->nhosts);
}

static void *replay_engine(void *arg)
{
	struct replay_ctx *c = arg;
	struct replay_shared *sh = c->sh;
	const struct trace *t = c->t;
	size_t mine = 0; /* with a host: the next request to consider */
	for (;;) {
		size_t q =
		    c->host < 0 ? __atomic_fetch_add(&sh->next, 1, __ATOMIC_RELAXED) : mine++;
		if (q >= t->n_reqs)
			break;
		if (c->host >= 0 && replay_host_of(sh, &t->reqs[q], q) != c->host)
			continue;
		if (c->o->speed > 0)
			replay_pace(c, &t->reqs[q], sh->start);
		replay_request(c, &t->reqs[q], &c->r);
		struct kvg_stats st;
		kvg_stats_get(c->g, &st);
		pthread_mutex_lock(&sh->mu);
		if (st.tier[KVG_TIER_DRAM].blocks > sh->max_dram_blocks)
			sh->max_dram_blocks = st.tier[KVG_TIER_DRAM].blocks;
		if (st.index_blocks > sh->max_index_blocks)
			sh->max_index_blocks = st.index_blocks;
		sh->done++;
		if (c->o->progress)
			c->o->progress(c->o->progress_arg, sh->done, t->n_reqs);
		pthread_mutex_unlock(&sh->mu);
	}
	return NULL;
}

/* Adds engine counts b into a. */
static void replay_add(struct replay_result *a, const struct replay_result *b)
{
	a->requests += b->requests;
	a->input_tokens += b->input_tokens;
	a->hit_tokens += b->hit_tokens;
	a->blocks += b->blocks;
	a->hit_blocks += b->hit_blocks;
	for (int i = 0; i < KVG_TIER_COUNT; i++)
		a->hit_blocks_tier[i] += b->hit_blocks_tier[i];
	a->load_errors += b->load_errors;
	a->load_lost += b->load_lost;
	a->store_errors += b->store_errors;
	a->verify_failures += b->verify_failures;
}

int replay_run(const struct trace *t, const struct replay_opts *o, struct replay_result *res,
	       char *err, size_t err_len)
{
	struct replay_opts oh = *o; /* with hosts: one engine each */
	uint32_t nh = o->hosts > 1 ? o->hosts : 1;
	if (nh > 1)
		oh.engines = nh;
	struct replay_shared sh = {.t = t, .o = &oh, .nhosts = nh};
	struct replay_ctx c[REPLAY_ENGINES_MAX];
	pthread_t th[REPLAY_ENGINES_MAX];
	uint32_t n = oh.engines > 1 ? oh.engines : 1, started = 0;
	int rc;
	o = &oh;

	memset(res, 0, sizeof(*res));
	memset(c, 0, sizeof(c));
	if (!o->block_bytes || o->block_bytes % 4096) {
		snprintf(err, err_len, "block bytes must be a positive multiple of 4096");
		return KVG_ECONFIG;
	}
	if (n > REPLAY_ENGINES_MAX || nh > REPLAY_HOSTS_MAX || (nh > 1 && o->engines > nh)) {
		snprintf(err, err_len, "at most %d engines and %d hosts (one engine each)",
			 REPLAY_ENGINES_MAX, REPLAY_HOSTS_MAX);
		return KVG_ECONFIG;
	}
	pthread_mutex_init(&sh.mu, NULL);
	if ((rc = replay_alloc_shared(&sh))) {
		snprintf(err, err_len, "out of memory");
		goto out_free;
	}
	for (uint32_t h = 0; h < nh; h++)
		if ((rc = replay_open(&sh, h, err, err_len))) {
			while (h--)
				kvg_close(sh.hosts[h]);
			goto out_free;
		}
	sh.g = sh.hosts[0];
	for (size_t j = 0; j < t->n_ids; j++)
		kvg_raw_key(sh.g, &t->raw_ids[j], sizeof(t->raw_ids[j]), &sh.keys[j]);
	for (uint32_t e = 0; e < n; e++)
		if ((rc = replay_alloc(&c[e], &sh))) {
			snprintf(err, err_len, "out of memory");
			for (uint32_t h = 0; h < nh; h++)
				kvg_close(sh.hosts[h]);
			goto out_free;
		} else if (nh > 1) {
			c[e].host = (int)e;
			c[e].g = sh.hosts[e];
		}
	sh.start = replay_now_s();
	if (n == 1) {
		replay_engine(&c[0]);
	} else {
		for (; started < n; started++)
			if (pthread_create(&th[started], NULL, replay_engine, &c[started]))
				break;
		if (!started) /* no thread at all: this one is the engine */
			replay_engine(&c[0]);
		for (uint32_t e = 0; e < started; e++)
			pthread_join(th[e], NULL);
	}
	res->elapsed_s = replay_now_s() - sh.start;
	kvg_stats_get(sh.g, &res->stats);
	for (uint32_t h = 0; h < nh; h++)
		kvg_close(sh.hosts[h]);
	size_t n_lat = 0;
	for (uint32_t e = 0; e < n; e++) {
		replay_add(res, &c[e].r);
		memmove(c[0].lat_us + n_lat, c[e].lat_us, sizeof(double) * c[e].n_lat);
		n_lat += c[e].n_lat; /* at most one per request in all */
	}
	res->max_dram_blocks = sh.max_dram_blocks;
	res->max_index_blocks = sh.max_index_blocks;
	qsort(c[0].lat_us, n_lat, sizeof(double), cmp_double);
	res->load_us_p50 = replay_pct(c[0].lat_us, n_lat, 0.50);
	res->load_us_p90 = replay_pct(c[0].lat_us, n_lat, 0.90);
	res->load_us_p99 = replay_pct(c[0].lat_us, n_lat, 0.99);
	res->load_us_max = n_lat ? c[0].lat_us[n_lat - 1] : 0;
	res->prefix_hit_token_ratio =
	    res->input_tokens ? (double)res->hit_tokens / res->input_tokens : 0;
	res->block_hit_ratio = res->blocks ? (double)res->hit_blocks / res->blocks : 0;
	rc = 0;
out_free:
	for (uint32_t e = 0; e < n; e++)
		replay_free(&c[e]);
	free(sh.keys);
	pthread_mutex_destroy(&sh.mu);
	return rc;
}
