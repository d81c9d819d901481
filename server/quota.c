/*
 * quota.c - the per-tenant ledger (see quota.h).
 *
 * Entries live in one array allocated at start-up and are linked by 32-bit indices: a hash
 * chain (hnext) and a doubly linked list per tenant, oldest first (prev, next).  Index 0 is
 * never used, so 0 means "none".
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"

struct quota_entry {
	kvg_key key;
	uint64_t len;
	uint32_t tenant;
	uint32_t hnext, prev, next;
};

struct quota_list {
	uint32_t head, tail;
	struct quota_usage use;
};

struct quota {
	pthread_mutex_t lock; /* guards everything below */
	struct quota_entry *e;
	uint32_t cap;
	uint32_t free_head; /* free entries, chained by hnext */
	uint32_t *bucket;
	uint32_t n_bucket; /* power of two */
	struct quota_list *list;
	uint32_t n_list;
	uint64_t untracked;
};

int quota_open(uint64_t entries, uint32_t tenants, struct quota **out)
{
	if (entries < 16)
		entries = 16;
	if (entries > UINT32_MAX / 2)
		entries = UINT32_MAX / 2;
	struct quota *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->cap = (uint32_t)entries;
	q->n_bucket = 16;
	while (q->n_bucket < q->cap)
		q->n_bucket <<= 1;
	q->e = calloc(q->cap + 1, sizeof(*q->e));
	q->bucket = calloc(q->n_bucket, sizeof(*q->bucket));
	q->list = calloc(tenants, sizeof(*q->list));
	if (!q->e || !q->bucket || !q->list) {
		quota_close(q);
		return -ENOMEM;
	}
	q->n_list = tenants;
	for (uint32_t i = 1; i <= q->cap; i++)
		q->e[i].hnext = i < q->cap ? i + 1 : 0;
	q->free_head = 1;
	pthread_mutex_init(&q->lock, NULL);
	*out = q;
	return 0;
}

void quota_close(struct quota *q)
{
	if (!q)
		return;
	if (q->e)
		pthread_mutex_destroy(&q->lock);
	free(q->e);
	free(q->bucket);
	free(q->list);
	free(q);
}

/* Keys are already uniform hashes: their first bytes index the table. */
static uint32_t *quota_slot(struct quota *q, const kvg_key *key)
{
	uint32_t h;
	memcpy(&h, key->bytes, sizeof(h));
	return &q->bucket[h & (q->n_bucket - 1)];
}

static void quota_unlink(struct quota *q, uint32_t i)
{
	struct quota_entry *e = &q->e[i];
	struct quota_list *l = &q->list[e->tenant];
	if (e->prev)
		q->e[e->prev].next = e->next;
	else
		l->head = e->next;
	if (e->next)
		q->e[e->next].prev = e->prev;
	else
		l->tail = e->prev;
	l->use.bytes -= e->len;
	l->use.blocks--;
	uint32_t *p = quota_slot(q, &e->key);
	while (*p != i)
		p = &q->e[*p].hnext;
	*p = e->hnext;
	e->hnext = q->free_head;
	q->free_head = i;
}

static uint32_t quota_find(struct quota *q, const kvg_key *key)
{
	uint32_t i = *quota_slot(q, key);
	while (i && memcmp(q->e[i].key.bytes, key->bytes, KVG_KEY_BYTES) != 0)
		i = q->e[i].hnext;
	return i;
}

size_t quota_add(struct quota *q, uint32_t t, const kvg_key *key, uint64_t len,
		 uint64_t quota_bytes, kvg_key *victims, size_t victims_max)
{
	size_t n = 0;
	pthread_mutex_lock(&q->lock);
	if (t >= q->n_list)
		goto out_unlock;
	uint32_t i = quota_find(q, key);
	if (i)
		quota_unlink(q, i);
	i = q->free_head;
	if (!i) {
		q->untracked++;
		goto out_unlock;
	}
	struct quota_entry *e = &q->e[i];
	q->free_head = e->hnext;
	struct quota_list *l = &q->list[t];
	e->key = *key;
	e->len = len;
	e->tenant = t;
	uint32_t *slot = quota_slot(q, key);
	e->hnext = *slot;
	*slot = i;
	e->next = 0;
	e->prev = l->tail;
	if (l->tail)
		q->e[l->tail].next = i;
	else
		l->head = i;
	l->tail = i;
	l->use.bytes += len;
	l->use.blocks++;
	/* the block just stored is the newest: it goes last, and only if it alone is over */
	while (quota_bytes && l->use.bytes > quota_bytes && n < victims_max && l->head) {
		victims[n++] = q->e[l->head].key;
		quota_unlink(q, l->head);
		l->use.evictions++;
	}
out_unlock:
	pthread_mutex_unlock(&q->lock);
	return n;
}

void quota_remove(struct quota *q, const kvg_key *key)
{
	pthread_mutex_lock(&q->lock);
	uint32_t i = quota_find(q, key);
	if (i)
		quota_unlink(q, i);
	pthread_mutex_unlock(&q->lock);
}

void quota_usage(struct quota *q, uint32_t t, struct quota_usage *u)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_lock(&q->lock);
	if (t < q->n_list)
		*u = q->list[t].use;
	pthread_mutex_unlock(&q->lock);
}

uint64_t quota_untracked(struct quota *q)
{
	pthread_mutex_lock(&q->lock);
	uint64_t n = q->untracked;
	pthread_mutex_unlock(&q->lock);
	return n;
}
