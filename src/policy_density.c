/*
 * policy_density.c - "density": evict the block with the fewest expected hits per unit of
 * cache space-time, learned online, per class of request, from a ghost of recent blocks.
 *
 * Why: on the Mooncake traces most stored blocks belong to dead ends (requests that are
 * never continued), and the live ones come back after very different delays.  LRU gives
 * every block the same time in the cache; the optimum keeps only what is read again soon.
 * A policy cannot see the future, but it can see what became of earlier blocks like this
 * one: how many blocks of the same class of request were read again, and at what age.
 * From that it computes each class's hit density at each age (Beckmann et al., "LHD",
 * NSDI'18): the hits a block of that class and age can still expect, over the space-time
 * it would take until then, with the best eviction horizon.  The victim is the block whose
 * class and age give the least density.
 *
 * Requests: as in "prefix", policy_req.h tells which request a call belongs to (by the
 * grid's call names, or a run of depths 0, 1, 2, ...), with up to PREQ_RUNS requests open
 * at once when several engines' calls interleave.  A request's blocks wait in its pending
 * list; when it ends they are filed together into its class's
 * queue, deepest first, so that a request leaves from its tail and a chain is never cut
 * in the middle (giving a request's blocks different classes, by depth or by their own
 * reuse count, measured worse: heads left before tails).  The class is what the request
 * looked like: how many of its blocks were new (0, 1, 2-3, ... 64+) and which share of
 * them had been seen before (< 30%, 30-80%, >= 80%).  "Seen" means cached, or accessed in
 * the last 4 to 8 capacities of calls (two alternating Bloom filters of key hashes): a
 * request that continues a chain whose blocks were already evicted is classed as a
 * continuation, not as a new request, so the class does not depend on what this cache
 * happened to keep.  Partial blocks (shorter than the largest block of their request, as in
 * "prefix") are dead and go first.
 *
 * Caution: the learned densities are noisy, and acting on small differences between them
 * made the hit ratio swing around LRU's at small capacities.  The victim is therefore the
 * least dense class tail only when its density is below DN_MARGIN times that of the
 * oldest tail; otherwise the oldest tail goes, which is exactly "prefix".
 *
 * Learning: a direct-mapped ghost keyed by key_hash remembers, for a sample of one block in
 * 16 (by key_hash) filed in the last 4 to 8 capacities of calls, cached or not, its class
 * and filing time.  When a sampled block is accessed again, its ghost entry makes a reuse
 * event at that age for that class, whether or not the block was still cached: what the
 * policy learns does not depend on what it chose to keep.  Counts are halved every DN_DECAY_CAPS
 * capacities of calls so that the tables follow the traffic, and the density table is recomputed
 * every DN_UPDATE_CALLS calls.  Time is logical (policy calls), never now_us, so the grid and the
 * simulator see the same clock.
 *
 * A continuation hint from the serving layer (is this session going on?), b->hint, is one
 * more class dimension, learned like the others, so a useless hint only spreads the counts.
 * The engine gives it with KVG_STORE_CONTINUES / KVG_STORE_LAST on kvg_store and kvg_load;
 * the simulator passes the same field (sim_opts.hints).  A request takes the hint of its
 * first call, and a later call of it that carries one overrides it.
 *
 * Memory: 21 bytes per slot (13 for the queues, 4 of ghost, 4 of seen-filters), which
 * keeps the index under issue 2's 128 bytes per block (123 with two tiers), plus fixed
 * tables (~116 KiB, 33 of it for open requests).  insert/hit/remove are O(1) (a filter is
 * cleared every 4 capacities of calls: O(1) amortised); victim() looks at the tails of the
 * class queues (24 without hints, 72 with).  No allocation after create().
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_req.h"
#include "slot_list.h"

#define DN_NEW_BUCKETS	8 /* new blocks in the request: 0, 1, 2-3, 4-7, ..., 64+ */
#define DN_HIT_BUCKETS	3 /* share seen before: < 30%, 30-80%, >= 80% */
#define DN_HINTS	3 /* POLICY_HINT_NONE, _CONTINUES, _LAST */
#define DN_SHAPES	(DN_NEW_BUCKETS * DN_HIT_BUCKETS)
#define DN_CLASSES	(DN_SHAPES * DN_HINTS)
#define DN_PENDING	DN_CLASSES		 /* + run: the open requests */
#define DN_PARTIAL	(DN_CLASSES + PREQ_RUNS) /* partial blocks: evicted first */
#define DN_QUEUES	(DN_PARTIAL + 1)
#define DN_AGES		96   /* age buckets, 4 per octave of calls */
#define DN_PRIOR	64.0 /* pseudo-blocks of the all-class law in each class */
#define DN_UPDATE_CALLS (1u << 13)
#define DN_DECAY_CAPS	32	   /* halve the counts every 32 capacities of calls */
#define DN_SAMPLE_BITS	4	   /* the ghost learns from 1 block in 16 (by key_hash) */
#define DN_GHOST_CAPS	8	   /* and remembers 4-8 capacities of calls of them, */
#define DN_GHOST_MIN	(1u << 12) /* in at least this many entries */
#define DN_SEEN_CAPS	4	   /* a seen-filter takes 4 capacities of calls, */
#define DN_SEEN_BITS	16	   /* with up to 16 bits per slot of capacity each, */
#define DN_SEEN_MIN	(1u << 15) /* and at least this many */
#define DN_SEEN_HASHES	4
#define DN_PEND_MAX	256  /* sampled blocks remembered of one request */
#define DN_MARGIN	0.7f /* leave LRU order only for a tail this much less dense */
#define DN_NOCLASS	0xff
#define DN_PARTIAL_BIT	0x80

struct dn_queue {
	uint32_t head; /* filed last */
	uint32_t tail; /* filed first: the candidate */
};

struct dn_ghost {
	uint32_t time; /* clock when filed */
	uint16_t tag;  /* 16 bits of key_hash (others pick the entry) */
	uint8_t cls;   /* DN_NOCLASS: empty, or already counted */
	uint8_t pad;
};

struct dn_pend { /* a sampled block of an open request, to remember when it ends */
	uint32_t entry;
	uint16_t tag;
	uint8_t partial;
};

/* an open request (policy_req.h) */
struct dn_run {
	uint64_t max_bytes;	      /* its largest block: smaller ones it stores are partial */
	uint64_t first_bytes;	      /* its first block's bytes, if it stored it */
	uint32_t n, new_blocks, seen; /* its blocks, new ones, ones seen before */
	uint8_t hint;
	uint32_t n_pend;
	struct dn_pend pend[DN_PEND_MAX];
};

struct policy {
	struct psize sizes; /* of the blocks stored */
	uint32_t *prev;
	uint32_t *next;
	uint32_t *filed;   /* clock when the block was filed */
	uint8_t *queue_of; /* queue index; DN_PARTIAL_BIT: stored short */
	struct dn_queue q[DN_QUEUES];
	struct dn_ghost *ghost;
	uint32_t ghost_alloc; /* entries allocated (a power of two) */
	uint32_t ghost_mask;  /* entries used - 1: set from the capacity at the first call */
	uint64_t *seen[2];    /* Bloom filters of keys seen: [cur] and the one before */
	uint64_t seen_alloc;  /* bits allocated in each (a power of two) */
	uint64_t seen_mask;   /* bits used - 1: set at the first call */
	uint32_t seen_cur;
	uint32_t seen_next; /* clock at which the older filter is cleared and reused */
	uint32_t seen_every;
	struct preq req;
	struct dn_run run[PREQ_RUNS];
	uint64_t capacity_bytes;
	uint32_t clock; /* policy calls */
	uint32_t next_update;
	uint32_t next_decay;
	uint32_t decay_every;		   /* 0 until the first call */
	double filed_n[DN_CLASSES];	   /* blocks filed per class (decayed) */
	double reuse[DN_CLASSES][DN_AGES]; /* reuse events per class and age (decayed) */
	float dens[DN_CLASSES][DN_AGES];
	float dens_prior[DN_AGES];  /* of a class with no data */
	double age_lo[DN_AGES + 1]; /* dn_age_lo() of each bucket, for dn_update_class() */
};

static uint32_t dn_age_bucket(uint32_t age)
{
	if (age < 4)
		return age;
	uint32_t msb = 31 - (uint32_t)__builtin_clz(age);
	uint32_t b = msb * 4 + ((age >> (msb - 2)) & 3) - 4;
	return b < DN_AGES ? b : DN_AGES - 1;
}

/* Smallest age in bucket b, the inverse of dn_age_bucket(); b may be DN_AGES. */
static double dn_age_lo(uint32_t b)
{
	if (b < 4)
		return b;
	uint32_t msb = (b + 4) / 4, frac = (b + 4) % 4;
	return ldexp(4 + frac, (int)msb - 2);
}

static void dn_unlink(struct policy *p, uint32_t s)
{
	struct dn_queue *l = &p->q[p->queue_of[s] & ~DN_PARTIAL_BIT];
	slot_list_unlink(p->prev, p->next, &l->head, &l->tail, s);
}

static void dn_push(struct policy *p, uint32_t s, uint32_t which)
{
	struct dn_queue *l = &p->q[which];
	p->queue_of[s] = (uint8_t)((p->queue_of[s] & DN_PARTIAL_BIT) | which);
	slot_list_push(p->prev, p->next, &l->head, &l->tail, s);
}

/* The ghost entry of a sampled key, or NULL if the key is not in the sample. */
static struct dn_ghost *dn_ghost_at(struct policy *p, uint64_t key)
{
	if (key >> (64 - DN_SAMPLE_BITS))
		return NULL;
	return &p->ghost[(uint32_t)(key >> 16) & p->ghost_mask];
}

/* Whether key was seen in the last DN_SEEN_CAPS to 2 x DN_SEEN_CAPS capacities of calls
 * (a false "yes" now and then); then remembers it. */
static int dn_seen(struct policy *p, uint64_t key)
{
	uint64_t h1 = key, h2 = (key >> 32) | 1;
	int in[2] = {1, 1};
	for (int i = 0; i < DN_SEEN_HASHES; i++) {
		uint64_t bit = (h1 + (uint64_t)i * h2) & p->seen_mask;
		for (int f = 0; f < 2; f++)
			in[f] &= (int)(p->seen[f][bit >> 6] >> (bit & 63)) & 1;
		p->seen[p->seen_cur][bit >> 6] |= 1ull << (bit & 63);
	}
	return in[0] | in[1];
}

static void dn_seen_rotate(struct policy *p)
{
	p->seen_cur ^= 1;
	memset(p->seen[p->seen_cur], 0, (p->seen_mask + 1) / 8);
	p->seen_next = p->clock + p->seen_every;
}

static uint32_t dn_request_class(const struct dn_run *u)
{
	uint32_t nb = 0;
	for (uint32_t x = u->new_blocks; x && nb < DN_NEW_BUCKETS - 1; x >>= 1)
		nb++;
	uint32_t hb = u->seen * 10 < u->n * 3 ? 0 : u->seen * 10 < u->n * 8 ? 1 : 2;
	return u->hint * DN_SHAPES + nb * DN_HIT_BUCKETS + hb;
}

/*
 * Density of class c at each age a: the best, over horizons t >= a, of
 * P(reuse at an age in [a, t]) / E[space-time from a until the reuse or t],
 * from the class's reuse-age law r[] (blended with the all-class law as a prior).
 */
static void dn_update_class(struct policy *p, uint32_t c, const double *all, double all_n)
{
	double r[DN_AGES], n = p->filed_n[c] + DN_PRIOR, below = 0;
	for (uint32_t b = 0; b < DN_AGES; b++)
		r[b] = (p->reuse[c][b] + DN_PRIOR * (all_n > 0 ? all[b] / all_n : 0)) / n;
	for (uint32_t a = 0; a < DN_AGES; a++) {
		const double *age_lo = p->age_lo;
		double surv = 1 - below, lo = age_lo[a], best = 0, hits = 0, time = 0;
		below += r[a];
		for (uint32_t t = a; t < DN_AGES && surv > 1e-9; t++) {
			double hi = age_lo[t + 1] - lo, mid = (age_lo[t] - lo + hi) / 2;
			hits += r[t];
			time += r[t] * (mid > 0.5 ? mid : 0.5);
			double rest = surv - hits, d = hits / (time + (rest > 0 ? rest * hi : 0));
			if (d > best)
				best = d;
		}
		p->dens[c][a] = (float)best;
	}
}

static void dn_update(struct policy *p)
{
	double all[DN_AGES] = {0}, all_n = 0;
	for (uint32_t c = 0; c < DN_CLASSES; c++) {
		all_n += p->filed_n[c];
		for (uint32_t b = 0; b < DN_AGES; b++)
			all[b] += p->reuse[c][b];
	}
	/* a class never filed has the prior alone: compute it once */
	int prior_done = 0;
	for (uint32_t c = 0; c < DN_CLASSES; c++) {
		if (p->filed_n[c] > 0 || !prior_done) {
			dn_update_class(p, c, all, all_n);
			if (p->filed_n[c] > 0)
				continue;
			prior_done = 1;
			for (uint32_t a = 0; a < DN_AGES; a++)
				p->dens_prior[a] = p->dens[c][a];
		} else {
			for (uint32_t a = 0; a < DN_AGES; a++)
				p->dens[c][a] = p->dens_prior[a];
		}
	}
	if (p->decay_every && (int32_t)(p->clock - p->next_decay) >= 0) {
		for (uint32_t c = 0; c < DN_CLASSES; c++) {
			p->filed_n[c] /= 2;
			for (uint32_t b = 0; b < DN_AGES; b++)
				p->reuse[c][b] /= 2;
		}
		p->next_decay = p->clock + p->decay_every;
	}
	p->next_update = p->clock + DN_UPDATE_CALLS;
}

/* Files the ended request's blocks into its class, deepest first, and remembers them. */
static void dn_end_request(struct policy *p, uint32_t run)
{
	struct dn_run *u = &p->run[run];
	uint32_t s, c = dn_request_class(u);
	s = p->q[DN_PENDING + run].head;
	if (u->n == 1 && u->first_bytes && s != POLICY_NONE &&
	    psize_short(&p->sizes, u->first_bytes)) { /* one short block: its last */
		p->queue_of[s] |= DN_PARTIAL_BIT;
		if (u->n_pend == 1)
			u->pend[0].partial = 1;
	}
	while ((s = p->q[DN_PENDING + run].head) != POLICY_NONE) {
		dn_unlink(p, s);
		if (p->queue_of[s] & DN_PARTIAL_BIT) {
			dn_push(p, s, DN_PARTIAL);
			continue;
		}
		p->filed[s] = p->clock;
		dn_push(p, s, c);
	}
	for (uint32_t i = 0; i < u->n_pend; i++) {
		if (u->pend[i].partial)
			continue;
		struct dn_ghost *g = &p->ghost[u->pend[i].entry];
		g->tag = u->pend[i].tag;
		g->time = p->clock;
		g->cls = (uint8_t)c;
		p->filed_n[c] += 1;
	}
	u->n_pend = 0;
	u->n = u->new_blocks = u->seen = 0;
	u->max_bytes = 0;
	u->first_bytes = 0;
	u->hint = POLICY_HINT_NONE;
}

/* At the first call the block size is known, so the capacity in blocks is too: it sizes
 * the ghost and seen-filters actually used and the periods, the same way in the grid and
 * the simulator (whose slot counts differ). */
static void dn_first_call(struct policy *p, uint64_t bytes)
{
	uint64_t cap = p->capacity_bytes / (bytes ? bytes : 1);
	cap = cap < 1 ? 1 : cap > (1u << 30) ? (1u << 30) : cap;
	uint64_t g = 1, f = 1;
	while ((g * 2 <= (cap * DN_GHOST_CAPS >> DN_SAMPLE_BITS) || g < DN_GHOST_MIN) &&
	       g * 2 <= p->ghost_alloc)
		g <<= 1;
	p->ghost_mask = (uint32_t)g - 1;
	while ((f * 2 <= cap * DN_SEEN_BITS || f < DN_SEEN_MIN) && f * 2 <= p->seen_alloc)
		f <<= 1;
	p->seen_mask = f - 1;
	p->seen_every = (uint32_t)(cap * DN_SEEN_CAPS < (1u << 30) ? cap * DN_SEEN_CAPS : 1u << 30);
	p->seen_next = p->clock + p->seen_every;
	p->decay_every =
	    (uint32_t)(cap * DN_DECAY_CAPS < (1u << 30) ? cap * DN_DECAY_CAPS : 1u << 30);
	p->next_decay = p->clock + p->decay_every;
}

static void dn_touch(struct policy *p, uint32_t s, const struct policy_block *b, int stored)
{
	if (!p->decay_every)
		dn_first_call(p, b->bytes);
	p->clock++;
	uint32_t run = preq_join(&p->req, s, b, dn_end_request, p);
	struct dn_run *u = &p->run[run];
	if (b->hint != POLICY_HINT_NONE && b->hint < DN_HINTS)
		u->hint = b->hint;
	if (u->n == 0)
		u->first_bytes = stored ? b->bytes : 0;
	if (b->bytes > u->max_bytes)
		u->max_bytes = b->bytes;
	if (stored)
		psize_note(&p->sizes, b->bytes);
	if (p->clock == p->seen_next)
		dn_seen_rotate(p);
	int seen = dn_seen(p, b->key_hash) || !stored;
	/* only a block stored short is partial; a hit keeps what its store said */
	if (stored)
		p->queue_of[s] = b->bytes < u->max_bytes ? DN_PARTIAL_BIT : 0;
	struct dn_ghost *g = dn_ghost_at(p, b->key_hash);
	if (g) {
		uint16_t tag = (uint16_t)b->key_hash;
		if (g->cls != DN_NOCLASS && g->tag == tag) {
			p->reuse[g->cls][dn_age_bucket(p->clock - g->time)] += 1;
			g->cls = DN_NOCLASS;
		}
		if (u->n_pend < DN_PEND_MAX)
			u->pend[u->n_pend++] = (struct dn_pend){
			    .entry = (uint32_t)(g - p->ghost),
			    .tag = tag,
			    .partial = (p->queue_of[s] & DN_PARTIAL_BIT) != 0,
			};
	}
	u->n++;
	if (seen)
		u->seen++;
	else
		u->new_blocks++;
	dn_push(p, s, DN_PENDING + run);
	if (p->clock == p->next_update)
		dn_update(p);
}

static void dn_destroy(struct policy *p)
{
	if (!p)
		return;
	free(p->prev);
	free(p->next);
	free(p->filed);
	free(p->queue_of);
	free(p->ghost);
	free(p->seen[0]);
	free(p->seen[1]);
	free(p);
}

static struct policy *dn_create(uint32_t slots, uint64_t capacity_bytes,
				const struct kvg_config *cfg)
{
	struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	/* at most DN_GHOST_CAPS / 2^DN_SAMPLE_BITS ghost entries and 2 x DN_SEEN_BITS bits per
	 * slot (bytes_per_slot), or the minimum sizes */
	uint64_t g = 1, f = 1;
	while ((g * 2 <= ((uint64_t)slots * DN_GHOST_CAPS >> DN_SAMPLE_BITS) || g < DN_GHOST_MIN) &&
	       g < (1u << 26))
		g <<= 1;
	while ((f * 2 <= (uint64_t)slots * DN_SEEN_BITS || f < DN_SEEN_MIN) && f < (1ull << 36))
		f <<= 1;
	p->prev = malloc(sizeof(uint32_t) * slots);
	p->next = malloc(sizeof(uint32_t) * slots);
	p->filed = malloc(sizeof(uint32_t) * slots);
	p->queue_of = malloc(slots);
	p->ghost = malloc(sizeof(*p->ghost) * g);
	p->seen[0] = calloc(f / 64, sizeof(uint64_t));
	p->seen[1] = calloc(f / 64, sizeof(uint64_t));
	if (!p->prev || !p->next || !p->filed || !p->queue_of || !p->ghost || !p->seen[0] ||
	    !p->seen[1]) {
		dn_destroy(p);
		return NULL;
	}
	for (uint64_t i = 0; i < g; i++)
		p->ghost[i].cls = DN_NOCLASS;
	p->ghost_alloc = (uint32_t)g;
	p->ghost_mask = (uint32_t)g - 1;
	p->seen_alloc = f;
	p->seen_mask = f - 1;
	p->capacity_bytes = capacity_bytes;
	for (int i = 0; i < DN_QUEUES; i++)
		p->q[i].head = p->q[i].tail = POLICY_NONE;
	preq_init(&p->req);
	for (uint32_t b = 0; b <= DN_AGES; b++)
		p->age_lo[b] = dn_age_lo(b);
	dn_update(p); /* the prior alone: every class alike, so LRU order by filing time */
	return p;
}

static void dn_insert(struct policy *p, uint32_t s, const struct policy_block *b)
{
	dn_touch(p, s, b, 1);
}

static void dn_hit(struct policy *p, uint32_t s, const struct policy_block *b)
{
	dn_unlink(p, s);
	dn_touch(p, s, b, 0);
}

static void dn_remove(struct policy *p, uint32_t s)
{
	dn_unlink(p, s);
}

static uint32_t dn_first_evictable(struct policy *p, uint32_t q, int (*evictable)(void *, uint32_t),
				   void *ctx)
{
	return slot_list_oldest(p->prev, p->q[q].tail, evictable, ctx);
}

/* The class tail of least density at its age (the older one on a tie), if it is clearly
 * less dense than the oldest tail; else the oldest tail. */
static uint32_t dn_least_dense(struct policy *p, int (*evictable)(void *, uint32_t), void *ctx)
{
	uint32_t s = POLICY_NONE, s_age = 0, old = POLICY_NONE, old_age = 0;
	float s_dens = INFINITY, old_dens = 0;
	for (uint32_t c = 0; c < DN_CLASSES; c++) {
		uint32_t t = dn_first_evictable(p, c, evictable, ctx);
		if (t == POLICY_NONE)
			continue;
		uint32_t age = p->clock - p->filed[t];
		float d = p->dens[c][dn_age_bucket(age)];
		if (old == POLICY_NONE || age > old_age) {
			old = t;
			old_age = age;
			old_dens = d;
		}
		if (d < s_dens || (d == s_dens && age > s_age)) {
			s = t;
			s_age = age;
			s_dens = d;
		}
	}
	return s_dens < DN_MARGIN * old_dens ? s : old;
}

/* Partial blocks first; then the least dense class tail; then the open requests' blocks,
 * the least recently touched request first, from its deepest (only when the open requests
 * hold the whole tier). */
static uint32_t dn_victim(struct policy *p, int (*evictable)(void *, uint32_t), void *ctx)
{
	uint32_t s = dn_first_evictable(p, DN_PARTIAL, evictable, ctx);
	if (s == POLICY_NONE)
		s = dn_least_dense(p, evictable, ctx);
	uint32_t runs[PREQ_RUNS], n = s == POLICY_NONE ? preq_by_age(&p->req, runs) : 0;
	for (uint32_t k = 0; k < n && s == POLICY_NONE; k++)
		for (uint32_t t = p->q[DN_PENDING + runs[k]].head; t != POLICY_NONE; t = p->next[t])
			if (!evictable || evictable(ctx, t)) {
				s = t;
				break;
			}
	if (s != POLICY_NONE)
		dn_unlink(p, s);
	return s;
}

/* As the NVMe tier's filter: a block of a session the engine said has ended is not worth
 * a write.  (Partial blocks are not refused: "smaller than the largest block seen" tells
 * a request's last block only where all blocks have one size, and a grid shared by models
 * or tenants with other block sizes, or kvgridd's RESP values, would never reach NVMe.) */
static int dn_admit(struct policy *p, uint32_t s, const struct policy_block *b)
{
	return b->hint != POLICY_HINT_LAST;
}

const struct policy_ops policy_density_ops = {
    .name = "density",
    .create = dn_create,
    .destroy = dn_destroy,
    .insert = dn_insert,
    .hit = dn_hit,
    .remove = dn_remove,
    .victim = dn_victim,
    .admit = dn_admit,
    .admit_nvme_only = 1,
    .bytes_per_slot =
	13 + (DN_GHOST_CAPS * sizeof(struct dn_ghost) >> DN_SAMPLE_BITS) + 2 * DN_SEEN_BITS / 8,
};
