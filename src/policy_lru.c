/*
 * policy_lru.c - least recently used: a doubly linked list threaded through two arrays of
 * slot numbers, most recent at the head.  8 bytes per slot, no allocation after create().
 */
#include <stdlib.h>

#include "policy.h"
#include "slot_list.h"

struct policy {
	uint32_t *prev;
	uint32_t *next;
	uint32_t head; /* most recently used */
	uint32_t tail; /* least recently used */
	uint32_t slots;
};

static struct policy *lru_create(uint32_t slots, uint64_t capacity_bytes,
				 const struct kvg_config *cfg)
{
	struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->prev = malloc(sizeof(uint32_t) * slots);
	p->next = malloc(sizeof(uint32_t) * slots);
	if (!p->prev || !p->next) {
		free(p->prev);
		free(p->next);
		free(p);
		return NULL;
	}
	p->slots = slots;
	p->head = p->tail = POLICY_NONE;
	return p;
}

static void lru_destroy(struct policy *p)
{
	if (!p)
		return;
	free(p->prev);
	free(p->next);
	free(p);
}

static void lru_unlink(struct policy *p, uint32_t s)
{
	slot_list_unlink(p->prev, p->next, &p->head, &p->tail, s);
}

static void lru_push_head(struct policy *p, uint32_t s)
{
	slot_list_push(p->prev, p->next, &p->head, &p->tail, s);
}

static void lru_insert(struct policy *p, uint32_t s, const struct policy_block *b)
{
	lru_push_head(p, s);
}

static void lru_hit(struct policy *p, uint32_t s, const struct policy_block *b)
{
	if (p->head == s)
		return;
	lru_unlink(p, s);
	lru_push_head(p, s);
}

static void lru_remove(struct policy *p, uint32_t s)
{
	lru_unlink(p, s);
}

static uint32_t lru_victim(struct policy *p, int (*evictable)(void *, uint32_t), void *ctx)
{
	uint32_t s = slot_list_oldest(p->prev, p->tail, evictable, ctx);
	if (s != POLICY_NONE)
		lru_unlink(p, s);
	return s;
}

const struct policy_ops policy_lru_ops = {
    .name = "lru",
    .create = lru_create,
    .destroy = lru_destroy,
    .insert = lru_insert,
    .hit = lru_hit,
    .remove = lru_remove,
    .victim = lru_victim,
    .admit = NULL,
    .bytes_per_slot = 8,
};
