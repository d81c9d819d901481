/*
 * policy_reuse.c - "reuse": LRU order with an admission filter that takes a block only
 * once it has shown reuse, meant for the NVMe tier.
 *
 * Why: every byte written to flash costs endurance and write bandwidth, and most KV
 * blocks are never read again (56% of requests on the conversation trace are dead ends).
 * A block offered for the second time (it was stored, dropped, and is being stored again,
 * or it was read and is now demoted) has shown that its prefix comes back; a block offered
 * once has not.  This is the "doorkeeper" of TinyLFU reduced to one bit per slot.
 *
 * How: admit(slot) answers yes if the slot was offered or hit before, and otherwise only
 * remembers the offer.  Ordering and victims are plain LRU.  The memory is per slot, so
 * it is exact while a block keeps its index slot (a DRAM victim demoted to NVMe keeps it;
 * the simulator's slots are block ids) and approximate once a slot is reused by another
 * block after the first left the index entirely: the depth kept with the bit tells most
 * such blocks apart; one at the same depth is admitted early -- never the reverse.  A key
 * hash in struct policy_block would make it exact everywhere (doc/POLICIES.md).
 *
 * 13 bytes per slot; O(1); no allocation after create().
 */
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "slot_list.h"

struct policy {
	uint32_t *prev;
	uint32_t *next;
	uint8_t *seen;	 /* 1: offered or hit before */
	uint32_t *depth; /* depth of the block last offered in the slot: a fingerprint */
	uint32_t head;	 /* most recently used */
	uint32_t tail;
};

static void ru_unlink(struct policy *p, uint32_t s)
{
	slot_list_unlink(p->prev, p->next, &p->head, &p->tail, s);
}

static void ru_push(struct policy *p, uint32_t s)
{
	slot_list_push(p->prev, p->next, &p->head, &p->tail, s);
}

static struct policy *ru_create(uint32_t slots, uint64_t capacity_bytes,
				const struct kvg_config *cfg)
{
	struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->prev = malloc(sizeof(uint32_t) * slots);
	p->next = malloc(sizeof(uint32_t) * slots);
	p->seen = calloc(slots, 1);
	p->depth = malloc(sizeof(uint32_t) * slots);
	if (!p->prev || !p->next || !p->seen || !p->depth) {
		free(p->depth);
		free(p->prev);
		free(p->next);
		free(p->seen);
		free(p);
		return NULL;
	}
	p->head = p->tail = POLICY_NONE;
	return p;
}

static void ru_destroy(struct policy *p)
{
	if (!p)
		return;
	free(p->prev);
	free(p->next);
	free(p->seen);
	free(p->depth);
	free(p);
}

static int ru_admit(struct policy *p, uint32_t s, const struct policy_block *b)
{
	if (p->seen[s] && p->depth[s] == b->depth)
		return 1;
	p->seen[s] = 1;
	p->depth[s] = b->depth;
	return 0;
}

static void ru_insert(struct policy *p, uint32_t s, const struct policy_block *b)
{
	p->seen[s] = 1;
	p->depth[s] = b->depth;
	ru_push(p, s);
}

static void ru_hit(struct policy *p, uint32_t s, const struct policy_block *b)
{
	ru_unlink(p, s);
	ru_push(p, s);
}

static void ru_remove(struct policy *p, uint32_t s)
{
	ru_unlink(p, s);
}

static uint32_t ru_victim(struct policy *p, int (*evictable)(void *, uint32_t), void *ctx)
{
	uint32_t s = slot_list_oldest(p->prev, p->tail, evictable, ctx);
	if (s != POLICY_NONE)
		ru_unlink(p, s);
	return s;
}

const struct policy_ops policy_reuse_ops = {
    .name = "reuse",
    .create = ru_create,
    .destroy = ru_destroy,
    .insert = ru_insert,
    .hit = ru_hit,
    .remove = ru_remove,
    .victim = ru_victim,
    .admit = ru_admit,
    .bytes_per_slot = 13,
};
