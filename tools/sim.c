/*
 * sim.c - the in-memory policy simulator (see sim.h).
 *
 * Slots are the trace's dense block ids, so the resident set is a byte per block and a
 * lookup is an array read.  The policy is driven exactly as a tier drives it: hit() when a
 * resident block is accessed, admit() then victim() until there is room, then insert().
 * Belady keeps an indexed max-heap of resident blocks keyed by the position of their next
 * access; a block that would be used later than every resident one is not stored at all
 * (bypass), which is what the optimum does when it may choose.
 * An analysis tool, not part of libkvgrid: it reaches into the library through two of its
 * module headers only, policy.h (the policies, by name) and key.h (the grid's key hash).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"
#include "policy.h"
#include "sim.h"

void sim_next_use(const struct trace *t, uint32_t *next)
{
	uint32_t *last = malloc(sizeof(*last) * (t->n_distinct ? t->n_distinct : 1));
	if (!last) {
		/* quadratic fallback keeps the contract without failing */
		for (size_t j = 0; j < t->n_ids; j++) {
			next[j] = UINT32_MAX;
			for (size_t k = j + 1; k < t->n_ids; k++)
				if (t->ids[k] == t->ids[j]) {
					next[j] = (uint32_t)k;
					break;
				}
		}
		return;
	}
	memset(last, 0xff, sizeof(*last) * t->n_distinct);
	for (size_t j = t->n_ids; j-- > 0;) {
		next[j] = last[t->ids[j]];
		last[t->ids[j]] = (uint32_t)j;
	}
	free(last);
}

static void sim_finish(struct sim_result *r)
{
	r->prefix_hit_token_ratio = r->input_tokens ? (double)r->hit_tokens / r->input_tokens : 0;
	r->block_hit_ratio = r->blocks ? (double)r->hit_blocks / r->blocks : 0;
}

/* Counts the request's cached prefix against the resident set, before anything changes. */
static void sim_count(const struct trace *t, const struct sim_opts *o, const struct trace_req *rq,
		      const uint8_t *resident, struct sim_result *r)
{
	uint32_t h = 0;
	while (h < rq->n_blocks && resident[t->ids[rq->first + h]])
		h++;
	uint64_t tok = (uint64_t)h * t->block_tokens;
	tok = tok < rq->input_length ? tok : rq->input_length;
	r->hit_tokens += tok;
	r->hit_blocks += h;
	if (o->on_request)
		o->on_request(o->on_request_arg, (size_t)(rq - t->reqs), tok);
	r->blocks += rq->n_blocks;
	r->input_tokens += rq->input_length;
	r->requests++;
}

/* ---- belady ------------------------------------------------------------------------- */

struct belady {
	uint32_t *heap; /* slots, max-heap on key */
	uint32_t *pos;	/* slot -> heap index */
	uint32_t *key;	/* slot -> index of its next access */
	uint32_t n;
};

static void bh_swap(struct belady *b, uint32_t i, uint32_t j)
{
	uint32_t a = b->heap[i], c = b->heap[j];
	b->heap[i] = c;
	b->heap[j] = a;
	b->pos[c] = i;
	b->pos[a] = j;
}

static void bh_fix(struct belady *b, uint32_t i)
{
	while (i > 0 && b->key[b->heap[(i - 1) / 2]] < b->key[b->heap[i]]) {
		bh_swap(b, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < b->n && b->key[b->heap[l]] > b->key[b->heap[m]])
			m = l;
		if (r < b->n && b->key[b->heap[r]] > b->key[b->heap[m]])
			m = r;
		if (m == i)
			return;
		bh_swap(b, i, m);
		i = m;
	}
}

static int sim_belady(const struct trace *t, const struct sim_opts *o, struct sim_result *r)
{
	size_t nd = t->n_distinct ? t->n_distinct : 1;
	struct belady b = {0};
	uint32_t *next = malloc(sizeof(*next) * (t->n_ids ? t->n_ids : 1));
	uint8_t *resident = calloc(nd, 1);
	b.heap = malloc(sizeof(uint32_t) * nd);
	b.pos = malloc(sizeof(uint32_t) * nd);
	b.key = malloc(sizeof(uint32_t) * nd);
	int rc = -ENOMEM;
	if (!next || !resident || !b.heap || !b.pos || !b.key)
		goto out;
	sim_next_use(t, next);
	uint64_t cap = o->capacity_blocks ? o->capacity_blocks : UINT64_MAX;
	for (size_t q = 0; q < t->n_reqs; q++) {
		const struct trace_req *rq = &t->reqs[q];
		sim_count(t, o, rq, resident, r);
		for (uint32_t i = 0; i < rq->n_blocks; i++) {
			uint32_t j = rq->first + i, s = t->ids[j];
			if (resident[s]) {
				b.key[s] = next[j];
				bh_fix(&b, b.pos[s]);
				continue;
			}
			if (b.n >= cap) {
				uint32_t top = b.heap[0];
				if (b.key[top] <= next[j]) {
					r->refused++; /* bypass: used later than all we hold */
					continue;
				}
				resident[top] = 0;
				b.heap[0] = b.heap[--b.n];
				b.pos[b.heap[0]] = 0;
				bh_fix(&b, 0);
				r->evictions++;
			}
			resident[s] = 1;
			b.key[s] = next[j];
			b.heap[b.n] = s;
			b.pos[s] = b.n++;
			bh_fix(&b, b.n - 1);
			r->inserts++;
			if (b.n > r->max_resident)
				r->max_resident = b.n;
		}
		if (o->progress)
			o->progress(o->progress_arg, q + 1, t->n_reqs);
	}
	rc = 0;
out:
	free(next);
	free(resident);
	free(b.heap);
	free(b.pos);
	free(b.key);
	return rc;
}

/* ---- any online policy -------------------------------------------------------------- */

static uint64_t sim_block_bytes(const struct trace *t, const struct trace_req *rq, uint32_t i,
				const struct sim_opts *o)
{
	uint64_t full = o->block_bytes ? o->block_bytes : 1;
	if (!o->partial_bytes)
		return full;
	uint32_t tok = trace_block_tokens(rq, i, t->block_tokens);
	uint64_t b = full * tok / t->block_tokens;
	return b ? b : 1;
}

/* The namespace `kvgrid replay` opens its grid with (tools/replay.c: the config, model
 * "kvgrid-replay", the trace's block size), so that key_hash below is the grid's. */
static void sim_namespace(const struct trace *t, const struct sim_opts *o, struct kvg_config *cfg,
			  kvg_key *ns)
{
	if (o->cfg)
		*cfg = *o->cfg;
	else
		kvg_config_init(cfg);
	snprintf(cfg->model_id, sizeof(cfg->model_id), "kvgrid-replay");
	cfg->block_tokens = t->block_tokens;
	key_namespace(cfg, ns);
}

/* The first 8 bytes of the key the replay stores the block under (kvg_raw_key() of its
 * raw id): policies keyed by key_hash then see exactly what they see in the grid. */
static uint64_t sim_key_hash(const struct kvg_config *cfg, const kvg_key *ns, uint64_t raw_id)
{
	kvg_key key;
	uint64_t h;
	key_raw(cfg->hash, ns, &raw_id, sizeof(raw_id), &key);
	memcpy(&h, key.bytes, sizeof(h));
	return h;
}

static int sim_policy(const struct trace *t, const struct sim_opts *o, const struct policy_ops *ops,
		      struct sim_result *r)
{
	size_t nd = t->n_distinct ? t->n_distinct : 1;
	uint64_t cap = o->capacity_blocks ? o->capacity_blocks : UINT64_MAX;
	uint64_t full = o->block_bytes ? o->block_bytes : 1;
	uint64_t cap_bytes = o->capacity_blocks ? o->capacity_blocks * full : UINT64_MAX;
	struct kvg_config zero;
	memset(&zero, 0, sizeof(zero));
	uint8_t *resident = calloc(nd, 1);
	struct policy *p = ops->create((uint32_t)nd, cap_bytes, o->cfg ? o->cfg : &zero);
	uint64_t used = 0;
	int rc = -ENOMEM;
	struct kvg_config kcfg;
	kvg_key ns;
	sim_namespace(t, o, &kcfg, &ns);
	if (!resident || !p)
		goto out;
	/* Requests in flight: o->interleave of them (at least 1) have their block calls made
	 * in turn, one block each, as several engines' requests reach one grid together. */
	uint32_t width = o->interleave > 1 ? o->interleave : 1;
	size_t fly[64], cur[64], nfly = 0, next_q = 0, turn = 0;
	if (width > 64)
		width = 64;
	while (next_q < t->n_reqs || nfly) {
		while (nfly < width && next_q < t->n_reqs) {
			sim_count(t, o, &t->reqs[next_q], resident, r);
			fly[nfly] = next_q++;
			cur[nfly++] = 0;
		}
		if (turn >= nfly)
			turn = 0;
		size_t q = fly[turn];
		const struct trace_req *rq = &t->reqs[q];
		uint32_t i = (uint32_t)cur[turn]++;
		if (cur[turn] >= rq->n_blocks) {
			fly[turn] = fly[nfly - 1]; /* done: the last in flight takes its turn */
			cur[turn] = cur[nfly - 1];
			nfly--;
			if (o->progress)
				o->progress(o->progress_arg, next_q - nfly, t->n_reqs);
		} else {
			turn++;
		}
		if (i >= rq->n_blocks)
			continue;
		uint32_t j = rq->first + i, s = t->ids[j];
		struct policy_block pb = {
		    .bytes = sim_block_bytes(t, rq, i, o),
		    .depth = i,
		    .parent_slot = i ? t->ids[j - 1] : POLICY_NONE,
		    .now_us = rq->timestamp_ms * 1000,
		    .key_hash = sim_key_hash(&kcfg, &ns, t->raw_ids[j]),
		    .hint = o->hints ? o->hints[q] : POLICY_HINT_NONE,
		    .req_blocks = rq->n_blocks,
		    .req_id = q + 1,
		};
		if (resident[s]) {
			ops->hit(p, s, &pb);
			continue;
		}
		if (ops->admit && !ops->admit_nvme_only && !ops->admit(p, s, &pb)) {
			r->refused++;
			continue;
		}
		while (used >= cap) {
			uint32_t v = ops->victim(p, NULL, NULL);
			if (v == POLICY_NONE || !resident[v])
				break; /* a broken policy: stop rather than loop */
			resident[v] = 0;
			used--;
			r->evictions++;
		}
		if (used >= cap) {
			rc = -EFAULT;
			goto out;
		}
		ops->insert(p, s, &pb);
		resident[s] = 1;
		used++;
		r->inserts++;
		if (used > r->max_resident)
			r->max_resident = used;
	}
	rc = 0;
out:
	if (p)
		ops->destroy(p);
	free(resident);
	return rc;
}

int sim_continuation_hints(const struct trace *t, double wrong, uint64_t seed, uint8_t *hints)
{
	uint32_t *next = malloc(sizeof(*next) * (t->n_ids ? t->n_ids : 1));
	if (!next)
		return -ENOMEM;
	sim_next_use(t, next);
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t q = 0; q < t->n_reqs; q++) {
		const struct trace_req *rq = &t->reqs[q];
		uint32_t full = rq->input_length / t->block_tokens;
		full = full < rq->n_blocks ? full : rq->n_blocks;
		hints[q] = 0;
		if (!full)
			continue;
		hints[q] = next[rq->first + full - 1] != UINT32_MAX ? 1 : 2;
		x ^= x << 13; /* xorshift64 */
		x ^= x >> 7;
		x ^= x << 17;
		if ((double)(x >> 11) / (double)(1ull << 53) < wrong)
			hints[q] = 3 - hints[q];
	}
	free(next);
	return 0;
}

int sim_run(const struct trace *t, const struct sim_opts *o, struct sim_result *res)
{
	int rc;
	memset(res, 0, sizeof(*res));
	if (!strcmp(o->policy, "belady")) {
		rc = sim_belady(t, o, res);
	} else {
		const struct policy_ops *ops = policy_find(o->policy);
		if (!ops)
			return KVG_ECONFIG;
		rc = sim_policy(t, o, ops, res);
	}
	sim_finish(res);
	return rc;
}
