/*
 * policy_prefix.c - "prefix": LRU that knows a block is worth nothing without the blocks
 * before it, and that a request's last, partial block is almost never read again.
 *
 * Why: plain LRU touches a request's blocks in chain order, so the head of a chain is the
 * least recent of them and goes first, which leaves the rest of the chain cached but
 * unreachable (a lookup stops at the first missing block).  And the last block of a prompt
 * is partial: when the conversation goes on, that block is rewritten with more tokens and
 * gets a new hash, so the partial block is dead the moment it is stored (0.8% of them are
 * ever read again on the conversation trace, 5% on the synthetic one).
 *
 * How: the grid names the call each block comes with, and policy_req.h tells from that
 * which request it belongs to, even when several engines' calls interleave (without
 * names: a run of calls whose depth goes 0, 1, 2, ... is a request).  An open request's
 * blocks wait in its pending list; when it ends they are filed into the main LRU list deepest
 * first, so that within one request the tail is evicted before the head and a dead chain
 * leaves tail first and all together.  A block stored shorter than the largest block of
 * its own request (of a request of one block: of a rare size, psize_short()) is partial
 * and filed into a list of its own, which is evicted first; comparing within the request
 * keeps the rule right when models or tenants with other block sizes share the tier.  Without
 * depths (all 0) the policy is plain LRU plus the partial-block rule.
 *
 * 8 bytes per slot plus a byte of list membership; every call O(1); no allocation after
 * create().
 */
#include <stdlib.h>

#include "policy.h"
#include "policy_req.h"
#include "slot_list.h"

/* lists: partial blocks, the filed blocks, and one pending list per open request */
enum { PX_PARTIAL = 0, PX_MAIN = 1, PX_PENDING = 2, PX_LISTS = PX_PENDING + PREQ_RUNS };

struct px_list {
	uint32_t head; /* most recent */
	uint32_t tail; /* next victim */
};

struct policy {
	uint32_t *prev;
	uint32_t *next;
	uint8_t *list_of; /* PX_* list the slot is on; bit 7: partial */
	struct px_list list[PX_LISTS];
	struct preq req;		     /* which request a call belongs to */
	struct psize sizes;		     /* of the blocks stored */
	uint64_t run_max[PREQ_RUNS];	     /* largest block of each open request */
	uint32_t run_n[PREQ_RUNS];	     /* blocks of each open request */
	uint64_t run_first_bytes[PREQ_RUNS]; /* its first block's bytes, if it stored it */
};

#define PX_PARTIAL_BIT 0x80

static void px_unlink(struct policy *p, uint32_t s)
{
	struct px_list *l = &p->list[p->list_of[s] & 0x7f];
	slot_list_unlink(p->prev, p->next, &l->head, &l->tail, s);
}

static void px_push(struct policy *p, uint32_t s, uint8_t which)
{
	struct px_list *l = &p->list[which];
	p->list_of[s] = (uint8_t)((p->list_of[s] & PX_PARTIAL_BIT) | which);
	slot_list_push(p->prev, p->next, &l->head, &l->tail, s);
}

/* Files the ended request's blocks.  Pending's head is its deepest block; pushing the
 * deepest first leaves the shallowest at the head of main, kept longest. */
static void px_end_request(struct policy *p, uint32_t run)
{
	uint32_t s = p->list[PX_PENDING + run].head;
	if (p->run_n[run] == 1 && p->run_first_bytes[run] && s != POLICY_NONE &&
	    psize_short(&p->sizes, p->run_first_bytes[run]))
		p->list_of[s] |= PX_PARTIAL_BIT; /* one short block: its last */
	while ((s = p->list[PX_PENDING + run].head) != POLICY_NONE) {
		px_unlink(p, s);
		px_push(p, s, (p->list_of[s] & PX_PARTIAL_BIT) ? PX_PARTIAL : PX_MAIN);
	}
	p->run_max[run] = 0;
	p->run_n[run] = 0;
}

static void px_touch(struct policy *p, uint32_t s, const struct policy_block *b, int stored)
{
	uint32_t run = preq_join(&p->req, s, b, px_end_request, p);
	if (p->run_n[run]++ == 0)
		p->run_first_bytes[run] = stored ? b->bytes : 0;
	if (b->bytes > p->run_max[run])
		p->run_max[run] = b->bytes;
	if (stored)
		psize_note(&p->sizes, b->bytes);
	/* only a block stored short is partial; a hit keeps what its store said */
	if (stored)
		p->list_of[s] = b->bytes < p->run_max[run] ? PX_PARTIAL_BIT : 0;
	px_push(p, s, (uint8_t)(PX_PENDING + run));
}

static struct policy *px_create(uint32_t slots, uint64_t capacity_bytes,
				const struct kvg_config *cfg)
{
	struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->prev = malloc(sizeof(uint32_t) * slots);
	p->next = malloc(sizeof(uint32_t) * slots);
	p->list_of = malloc(slots);
	if (!p->prev || !p->next || !p->list_of) {
		free(p->prev);
		free(p->next);
		free(p->list_of);
		free(p);
		return NULL;
	}
	for (int i = 0; i < PX_LISTS; i++)
		p->list[i].head = p->list[i].tail = POLICY_NONE;
	preq_init(&p->req);
	return p;
}

static void px_destroy(struct policy *p)
{
	if (!p)
		return;
	free(p->prev);
	free(p->next);
	free(p->list_of);
	free(p);
}

static void px_insert(struct policy *p, uint32_t s, const struct policy_block *b)
{
	px_touch(p, s, b, 1);
}

static void px_hit(struct policy *p, uint32_t s, const struct policy_block *b)
{
	px_unlink(p, s);
	px_touch(p, s, b, 0);
}

static void px_remove(struct policy *p, uint32_t s)
{
	px_unlink(p, s);
}

/* Partial blocks first, then main from its LRU end, then the open requests' own blocks,
 * the least recently touched request first, each from its deepest (only when the open
 * requests hold the whole tier). */
static uint32_t px_victim(struct policy *p, int (*evictable)(void *, uint32_t), void *ctx)
{
	static const int order[] = {PX_PARTIAL, PX_MAIN};
	for (int i = 0; i < 2; i++) {
		uint32_t s = slot_list_oldest(p->prev, p->list[order[i]].tail, evictable, ctx);
		if (s != POLICY_NONE) {
			px_unlink(p, s);
			return s;
		}
	}
	uint32_t order_runs[PREQ_RUNS], n = preq_by_age(&p->req, order_runs);
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t s = p->list[PX_PENDING + order_runs[k]].head; s != POLICY_NONE;
		     s = p->next[s])
			if (!evictable || evictable(ctx, s)) {
				px_unlink(p, s);
				return s;
			}
	return POLICY_NONE;
}

const struct policy_ops policy_prefix_ops = {
    .name = "prefix",
    .create = px_create,
    .destroy = px_destroy,
    .insert = px_insert,
    .hit = px_hit,
    .remove = px_remove,
    .victim = px_victim,
    .admit = NULL,
    .bytes_per_slot = 9,
};
