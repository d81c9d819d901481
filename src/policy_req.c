/*
 * policy_req.c - the request tracker of policy_req.h.  PREQ_RUNS is small, so every
 * search is a scan of the runs: O(1) per call.
 */
#include <string.h>

#include "policy_req.h"

void preq_init(struct preq *t)
{
	memset(t, 0, sizeof(*t));
}

static void preq_end(struct preq *t, uint32_t r, preq_end_fn end, struct policy *p)
{
	t->run[r].open = 0;
	end(p, r);
}

/* Ends the runs that are done (see policy_req.h) and returns a free run. */
static uint32_t preq_start(struct preq *t, preq_end_fn end, struct policy *p)
{
	uint32_t free_run = PREQ_RUNS;
	for (uint32_t r = 0; r < PREQ_RUNS; r++) {
		struct preq_run *u = &t->run[r];
		if (u->open && (u->left == 0 || t->clock - u->touched > 2 * PREQ_RUNS))
			preq_end(t, r, end, p);
		if (!u->open && free_run == PREQ_RUNS)
			free_run = r;
	}
	if (free_run == PREQ_RUNS) {
		uint32_t by_age[PREQ_RUNS];
		preq_by_age(t, by_age);
		free_run = by_age[0];
		preq_end(t, free_run, end, p);
	}
	return free_run;
}

/* One stream (no req_id): the latest run goes on while depths do, else all runs end. */
static uint32_t preq_join_stream(struct preq *t, const struct policy_block *b, preq_end_fn end,
				 struct policy *p)
{
	struct preq_run *u = &t->run[t->latest];
	if (u->open && b->depth != 0 && b->depth == u->last_depth + 1 && u->id == 0)
		return t->latest;
	for (uint32_t r = 0; r < PREQ_RUNS; r++)
		if (t->run[r].open)
			preq_end(t, r, end, p);
	return 0;
}

uint32_t preq_join(struct preq *t, uint32_t slot, const struct policy_block *b, preq_end_fn end,
		   struct policy *p)
{
	uint32_t r = PREQ_RUNS;
	int new_call = 1;
	t->clock++;
	if (b->req_id == 0) {
		r = preq_join_stream(t, b, end, p);
		new_call = !t->run[r].open;
	} else if (t->run[t->latest].open && t->run[t->latest].id == b->req_id) {
		/* the next block of the latest call, the common case: open runs have distinct
		 * ids (a call joins the run that has its id), so the scan below would find this
		 * one */
		r = t->latest;
		new_call = 0;
	} else {
		uint32_t best_touch = 0;
		for (uint32_t i = 0; i < PREQ_RUNS; i++) {
			const struct preq_run *u = &t->run[i];
			if (!u->open)
				continue;
			if (u->id == b->req_id) {
				r = i;
				new_call = 0;
				break;
			}
			if (b->depth != 0 && b->depth == u->last_depth + 1 &&
			    (b->parent_slot == POLICY_NONE || b->parent_slot == u->last_slot) &&
			    (r == PREQ_RUNS || u->touched > best_touch)) {
				r = i;
				best_touch = u->touched;
			}
		}
		if (r == PREQ_RUNS)
			r = preq_start(t, end, p);
	}
	struct preq_run *u = &t->run[r];
	if (!u->open)
		*u = (struct preq_run){.open = 1};
	if (new_call) {
		u->id = b->req_id;
		u->left = b->req_blocks;
	}
	if (u->left)
		u->left--;
	u->last_depth = b->depth;
	u->last_slot = slot;
	u->touched = t->clock;
	t->latest = r;
	return r;
}

uint32_t preq_by_age(const struct preq *t, uint32_t out[PREQ_RUNS])
{
	uint32_t n = 0;
	for (uint32_t r = 0; r < PREQ_RUNS; r++) {
		if (!t->run[r].open)
			continue;
		uint32_t k = n++;
		for (; k > 0 && t->run[out[k - 1]].touched > t->run[r].touched; k--)
			out[k] = out[k - 1];
		out[k] = r;
	}
	return n;
}

static int psize_common(const struct psize *z, uint32_t i)
{
	return z->count[i] >= 2 && (uint64_t)z->count[i] * 64 >= z->total;
}

void psize_note(struct psize *z, uint64_t bytes)
{
	uint32_t at = 0;
	for (uint32_t i = 0; i < PSIZE_SLOTS; i++) {
		if (z->count[i] && z->bytes[i] == bytes) {
			at = i;
			break;
		}
		if (z->count[i] < z->count[at])
			at = i; /* else the least counted size gives way */
	}
	if (!z->count[at] || z->bytes[at] != bytes) {
		z->bytes[at] = bytes;
		z->count[at] = 0;
	}
	z->count[at]++;
	if (++z->total >= 4096) {
		z->total = 0;
		for (uint32_t i = 0; i < PSIZE_SLOTS; i++) {
			z->count[i] /= 2;
			z->total += z->count[i];
		}
	}
}

int psize_short(const struct psize *z, uint64_t bytes)
{
	uint64_t largest = 0;
	for (uint32_t i = 0; i < PSIZE_SLOTS; i++) {
		if (!psize_common(z, i))
			continue;
		if (z->bytes[i] == bytes)
			return 0;
		if (z->bytes[i] > largest)
			largest = z->bytes[i];
	}
	return bytes < largest;
}
