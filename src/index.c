/*
 * index.c - see index.h.  Keys are already uniform hashes, so their first 8 bytes index the
 * bucket array directly.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "index.h"

static uint32_t bucket_of(const struct index *ix, const kvg_key *k)
{
	uint64_t h;
	memcpy(&h, k->bytes, 8);
	return (uint32_t)(h ^ (h >> 32)) & ix->mask;
}

int index_init(struct index *ix, uint32_t cap)
{
	uint32_t nb = 1;
	while (nb < cap && nb < (1u << 31))
		nb <<= 1;
	memset(ix, 0, sizeof(*ix));
	ix->e = calloc(cap, sizeof(struct entry));
	ix->bucket = malloc(sizeof(uint32_t) * nb);
	if (!ix->e || !ix->bucket) {
		free(ix->e);
		free(ix->bucket);
		return -12; /* -ENOMEM */
	}
	memset(ix->bucket, 0xff, sizeof(uint32_t) * nb);
	ix->cap = cap;
	ix->mask = nb - 1;
	for (uint32_t i = 0; i < cap; i++)
		ix->e[i].hnext = i + 1 < cap ? i + 1 : SLOT_NONE;
	ix->free_head = cap ? 0 : SLOT_NONE;
	return 0;
}

void index_free(struct index *ix)
{
	free(ix->e);
	free(ix->bucket);
	memset(ix, 0, sizeof(*ix));
}

uint32_t index_find(const struct index *ix, const kvg_key *key)
{
	for (uint32_t s = ix->bucket[bucket_of(ix, key)]; s != SLOT_NONE; s = ix->e[s].hnext)
		if (!memcmp(ix->e[s].key.bytes, key->bytes, KVG_KEY_BYTES))
			return s;
	return SLOT_NONE;
}

uint32_t index_add(struct index *ix, const kvg_key *key)
{
	uint32_t s = ix->free_head;
	if (s == SLOT_NONE)
		return SLOT_NONE;
	struct entry *e = &ix->e[s];
	ix->free_head = e->hnext;
	memset(e, 0, sizeof(*e));
	e->key = *key;
	e->dram = e->seg = e->snext = e->sprev = SLOT_NONE;
	e->state = E_USED;
	uint32_t b = bucket_of(ix, key);
	e->hnext = ix->bucket[b];
	ix->bucket[b] = s;
	ix->used++;
	return s;
}

void index_del(struct index *ix, uint32_t slot)
{
	struct entry *e = &ix->e[slot];
	uint32_t *p = &ix->bucket[bucket_of(ix, &e->key)];
	while (*p != slot)
		p = &ix->e[*p].hnext;
	*p = e->hnext;
	e->state = 0;
	e->hnext = ix->free_head;
	ix->free_head = slot;
	ix->used--;
}

uint64_t index_bytes(const struct index *ix)
{
	return (uint64_t)ix->cap * sizeof(struct entry) + (uint64_t)(ix->mask + 1) * 4;
}
