/*
 * policy_cost.c - "cost": keeps the blocks whose hit saves the most prefill compute per
 * byte held (GreedyDual-Size with a prefill cost).
 *
 * Why: a cached block saves the prefill of its tokens, and the attention part of that
 * prefill grows with the block's position (token i attends to i earlier tokens), so a
 * block deep in a long context saves more GPU time per byte than one near the start.
 * The saving of block d, relative to a block at position 0, is
 *     cost(d) = 1 + (d + 1/2) * block_tokens / ctx_equal
 * where ctx_equal is the context length at which a token's attention FLOPs equal its
 * weight FLOPs (2 * params vs 4 * layers * heads * head_dim * context): about 32K tokens
 * for Llama-3.1-8B and 70B (doc/COSTMODEL.md).
 *
 * How: GreedyDual: a block's priority is H = L + cost / bytes, where L is the priority of
 * the last victim (so blocks not used for a while fall behind new ones), and the victim is
 * the block with the least H.  To stay O(1), costs are rounded into PC_CLASSES log-spaced
 * depth classes; within a class H only grows with the time of the last access, so each
 * class is an LRU list and the victim is the least H among the classes' oldest blocks.
 * Partial blocks (smaller than the largest seen) have their cost scaled by their size, so
 * their cost per byte is the same as a full block's: size alone earns no place.
 *
 * Not prefix-aware on purpose: it is the cost-per-byte baseline the issue asks for; see
 * doc/POLICIES.md for how it fares against the prefix-aware ones.
 *
 * 13 bytes per slot; O(PC_CLASSES) per call; no allocation after create().
 */
#include <stdlib.h>

#include "policy.h"
#include "slot_list.h"

#define PC_CLASSES	    12 /* depth classes: 0, 1, 2-3, 4-7, ... 1024+ */
#define PC_CTX_EQUAL_TOKENS 32768.0

struct pc_list {
	uint32_t head;
	uint32_t tail;
};

struct policy {
	uint32_t *prev;
	uint32_t *next;
	float *h; /* priority of each resident block */
	uint8_t *cls;
	struct pc_list list[PC_CLASSES];
	double per_class[PC_CLASSES]; /* cost of a full block of the class, per full block */
	double inflation;	      /* L: the priority of the last victim */
	uint64_t full_bytes;
};

static uint8_t pc_class_of(uint32_t depth)
{
	uint8_t c = 0;
	while (depth && c < PC_CLASSES - 1) {
		depth >>= 1;
		c++;
	}
	return c;
}

static void pc_unlink(struct policy *p, uint32_t s)
{
	struct pc_list *l = &p->list[p->cls[s]];
	slot_list_unlink(p->prev, p->next, &l->head, &l->tail, s);
}

static void pc_push(struct policy *p, uint32_t s, const struct policy_block *b)
{
	uint8_t c = pc_class_of(b->depth);
	struct pc_list *l = &p->list[c];
	if (b->bytes > p->full_bytes)
		p->full_bytes = b->bytes;
	/* cost per full-block-equivalent of bytes: the same for a partial block of the class */
	p->h[s] = (float)(p->inflation + p->per_class[c]);
	p->cls[s] = c;
	slot_list_push(p->prev, p->next, &l->head, &l->tail, s);
}

static struct policy *pc_create(uint32_t slots, uint64_t capacity_bytes,
				const struct kvg_config *cfg)
{
	struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->prev = malloc(sizeof(uint32_t) * slots);
	p->next = malloc(sizeof(uint32_t) * slots);
	p->h = malloc(sizeof(float) * slots);
	p->cls = malloc(slots);
	if (!p->prev || !p->next || !p->h || !p->cls) {
		free(p->prev);
		free(p->next);
		free(p->h);
		free(p->cls);
		free(p);
		return NULL;
	}
	double bt = cfg && cfg->block_tokens ? cfg->block_tokens : 512;
	for (int c = 0; c < PC_CLASSES; c++) {
		/* the class's middle depth: 0, 1, 3, 6, 12, ... */
		double d = c == 0 ? 0 : c == 1 ? 1 : 1.5 * (double)(1u << (c - 1));
		p->per_class[c] = 1.0 + (d + 0.5) * bt / PC_CTX_EQUAL_TOKENS;
		p->list[c].head = p->list[c].tail = POLICY_NONE;
	}
	return p;
}

static void pc_destroy(struct policy *p)
{
	if (!p)
		return;
	free(p->prev);
	free(p->next);
	free(p->h);
	free(p->cls);
	free(p);
}

static void pc_insert(struct policy *p, uint32_t s, const struct policy_block *b)
{
	pc_push(p, s, b);
}

static void pc_hit(struct policy *p, uint32_t s, const struct policy_block *b)
{
	pc_unlink(p, s);
	pc_push(p, s, b);
}

static void pc_remove(struct policy *p, uint32_t s)
{
	pc_unlink(p, s);
}

static uint32_t pc_victim(struct policy *p, int (*evictable)(void *, uint32_t), void *ctx)
{
	uint32_t best = POLICY_NONE;
	for (int c = 0; c < PC_CLASSES; c++) {
		int budget = 64; /* pinned blocks are few: do not scan a whole class */
		for (uint32_t s = p->list[c].tail; s != POLICY_NONE && budget-- > 0;
		     s = p->prev[s]) {
			if (evictable && !evictable(ctx, s))
				continue;
			if (best == POLICY_NONE || p->h[s] < p->h[best])
				best = s;
			break;
		}
	}
	if (best != POLICY_NONE) {
		p->inflation = p->h[best];
		pc_unlink(p, best);
	}
	return best;
}

const struct policy_ops policy_cost_ops = {
    .name = "cost",
    .create = pc_create,
    .destroy = pc_destroy,
    .insert = pc_insert,
    .hit = pc_hit,
    .remove = pc_remove,
    .victim = pc_victim,
    .admit = NULL,
    .bytes_per_slot = 13,
};
