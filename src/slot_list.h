/*
 * slot_list.h - the ordering primitive the eviction policies share: doubly linked lists of
 * index slots threaded through two arrays (prev, next) that the policy owns, so that O(1)
 * moves need no allocation.  A slot is on at most one list at a time; head is the most
 * recently pushed end, tail the oldest.  POLICY_NONE ends a list.
 */
#ifndef KVG_SLOT_LIST_H
#define KVG_SLOT_LIST_H

#include <stdint.h>

#include "policy.h"

static inline void slot_list_unlink(uint32_t *prev, uint32_t *next, uint32_t *head, uint32_t *tail,
				    uint32_t s)
{
	uint32_t pr = prev[s], nx = next[s];
	if (pr != POLICY_NONE)
		next[pr] = nx;
	else
		*head = nx;
	if (nx != POLICY_NONE)
		prev[nx] = pr;
	else
		*tail = pr;
}

static inline void slot_list_push(uint32_t *prev, uint32_t *next, uint32_t *head, uint32_t *tail,
				  uint32_t s)
{
	prev[s] = POLICY_NONE;
	next[s] = *head;
	if (*head != POLICY_NONE)
		prev[*head] = s;
	*head = s;
	if (*tail == POLICY_NONE)
		*tail = s;
}

/* The oldest slot of a list that evictable() accepts (every slot when it is NULL), or
 * POLICY_NONE; the caller unlinks it. */
static inline uint32_t slot_list_oldest(const uint32_t *prev, uint32_t tail,
					int (*evictable)(void *, uint32_t), void *ctx)
{
	for (uint32_t s = tail; s != POLICY_NONE; s = prev[s])
		if (!evictable || evictable(ctx, s))
			return s;
	return POLICY_NONE;
}

#endif
