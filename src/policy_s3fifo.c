/*
 * policy_s3fifo.c - S3-FIFO (Yang et al., "FIFO queues are all you need for cache
 * eviction", SOSP'23): a small FIFO that filters one-hit blocks, a main FIFO with lazy
 * promotion (a 2-bit hit count instead of moving on every hit), and a ghost FIFO that
 * remembers what the small queue dropped so that a block coming back goes straight to main.
 *
 * Why here: most KV blocks are written once and never read (dead-end requests), which is
 * the one-hit-wonder pattern S3-FIFO was built for; and hits cost no list surgery.
 *
 * Sizes: the small queue holds 10% of the tier's bytes; the ghost remembers as many blocks
 * as the main queue holds.  The ghost is a ring of slot numbers, checked against the
 * block's depth: a slot that left the index and was reused for another block at the same
 * depth gives a false ghost hit (the block only skips the small queue).
 *
 * 22 bytes per slot plus a 4-byte ghost ring per slot; O(1) amortised (a victim() call
 * moves at most a bounded number of blocks before it returns one); no allocation after
 * create().
 */
#include <stdlib.h>

#include "policy.h"
#include "slot_list.h"

/* a small-queue block moves to main when hit more than this (the paper's rule) */
#define S3_PROMOTE_HITS 1

enum { S3_SMALL = 0, S3_MAIN = 1, S3_NONE = 2 };

struct s3_queue {
	uint32_t head; /* newest */
	uint32_t tail; /* oldest */
	uint64_t bytes;
	uint32_t count;
};

struct policy {
	uint32_t *prev;
	uint32_t *next;
	uint32_t *bytes;     /* of each resident block, for the queues' byte counts */
	uint8_t *queue;	     /* S3_* */
	uint8_t *freq;	     /* 0..3 */
	uint32_t *ghost;     /* ring of slots dropped from small */
	uint32_t *ghost_seq; /* slot -> ring sequence when it entered the ghost */
	uint32_t *depth;     /* slot -> depth of the block stored there, a fingerprint */
	uint64_t ghost_next; /* next ring sequence */
	struct s3_queue q[2];
	uint32_t slots;
	uint64_t capacity_bytes;
	uint64_t full_bytes; /* largest block seen, to count capacity in blocks */
};

static void s3_unlink(struct policy *p, uint32_t s)
{
	struct s3_queue *q = &p->q[p->queue[s]];
	slot_list_unlink(p->prev, p->next, &q->head, &q->tail, s);
	q->bytes -= p->bytes[s];
	q->count--;
	p->queue[s] = S3_NONE;
}

static void s3_push(struct policy *p, uint32_t s, int which)
{
	struct s3_queue *q = &p->q[which];
	p->queue[s] = (uint8_t)which;
	slot_list_push(p->prev, p->next, &q->head, &q->tail, s);
	q->bytes += p->bytes[s];
	q->count++;
}

/* Blocks the ghost remembers: as many as main holds when the tier is full. */
static uint64_t s3_ghost_size(const struct policy *p)
{
	uint64_t blocks = p->full_bytes ? p->capacity_bytes / p->full_bytes : p->slots;
	blocks = blocks - blocks / 10;
	return blocks < p->slots ? blocks : p->slots;
}

/* Whether the block now stored in slot s was dropped from small lately.  A slot may have
 * been given to another block since; the depth, kept as a fingerprint, tells most of them
 * apart (a key hash in struct policy_block would tell all). */
static int s3_in_ghost(const struct policy *p, uint32_t s, uint32_t depth)
{
	uint64_t seq = p->ghost_seq[s];
	return seq != UINT32_MAX && p->ghost_next - seq <= s3_ghost_size(p) &&
	       p->ghost[seq % p->slots] == s && p->depth[s] == depth;
}

static void s3_to_ghost(struct policy *p, uint32_t s)
{
	p->ghost[p->ghost_next % p->slots] = s;
	p->ghost_seq[s] = (uint32_t)p->ghost_next; /* wraps after 4G drops: at worst a miss */
	p->ghost_next++;
	if (p->ghost_next >= UINT32_MAX)
		p->ghost_next = 0;
}

static struct policy *s3_create(uint32_t slots, uint64_t capacity_bytes,
				const struct kvg_config *cfg)
{
	struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->prev = malloc(sizeof(uint32_t) * slots);
	p->next = malloc(sizeof(uint32_t) * slots);
	p->bytes = malloc(sizeof(uint32_t) * slots);
	p->ghost = malloc(sizeof(uint32_t) * slots);
	p->ghost_seq = malloc(sizeof(uint32_t) * slots);
	p->depth = malloc(sizeof(uint32_t) * slots);
	p->queue = malloc(slots);
	p->freq = malloc(slots);
	if (!p->prev || !p->next || !p->bytes || !p->ghost || !p->ghost_seq || !p->depth ||
	    !p->queue || !p->freq) {
		free(p->prev);
		free(p->next);
		free(p->bytes);
		free(p->ghost);
		free(p->ghost_seq);
		free(p->depth);
		free(p->queue);
		free(p->freq);
		free(p);
		return NULL;
	}
	for (uint32_t s = 0; s < slots; s++) {
		p->ghost_seq[s] = UINT32_MAX;
		p->ghost[s] = POLICY_NONE;
	}
	for (int i = 0; i < 2; i++)
		p->q[i].head = p->q[i].tail = POLICY_NONE;
	p->slots = slots;
	p->capacity_bytes = capacity_bytes;
	return p;
}

static void s3_destroy(struct policy *p)
{
	if (!p)
		return;
	free(p->prev);
	free(p->next);
	free(p->bytes);
	free(p->ghost);
	free(p->ghost_seq);
	free(p->depth);
	free(p->queue);
	free(p->freq);
	free(p);
}

static void s3_insert(struct policy *p, uint32_t s, const struct policy_block *b)
{
	if (b->bytes > p->full_bytes)
		p->full_bytes = b->bytes;
	p->bytes[s] = b->bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)b->bytes;
	p->freq[s] = 0;
	int ghost_hit = s3_in_ghost(p, s, b->depth);
	p->ghost_seq[s] = UINT32_MAX;
	p->depth[s] = b->depth;
	s3_push(p, s, ghost_hit ? S3_MAIN : S3_SMALL);
}

static void s3_hit(struct policy *p, uint32_t s, const struct policy_block *b)
{
	if (p->freq[s] < 3)
		p->freq[s]++;
}

static void s3_remove(struct policy *p, uint32_t s)
{
	s3_unlink(p, s);
}

/* One step of eviction from small: returns the dropped slot, or POLICY_NONE after moving
 * the tail to main (it was hit) or skipping it (not evictable). */
static uint32_t s3_from_small(struct policy *p, int (*evictable)(void *, uint32_t), void *ctx)
{
	uint32_t s = p->q[S3_SMALL].tail;
	s3_unlink(p, s);
	if (p->freq[s] > S3_PROMOTE_HITS) {
		p->freq[s] = 0;
		s3_push(p, s, S3_MAIN);
		return POLICY_NONE;
	}
	if (evictable && !evictable(ctx, s)) {
		s3_push(p, s, S3_SMALL);
		return POLICY_NONE;
	}
	s3_to_ghost(p, s);
	return s;
}

static uint32_t s3_from_main(struct policy *p, int (*evictable)(void *, uint32_t), void *ctx)
{
	uint32_t s = p->q[S3_MAIN].tail;
	s3_unlink(p, s);
	if (p->freq[s] > 0 || (evictable && !evictable(ctx, s))) {
		if (p->freq[s] > 0)
			p->freq[s]--;
		s3_push(p, s, S3_MAIN);
		return POLICY_NONE;
	}
	return s;
}

static uint32_t s3_victim(struct policy *p, int (*evictable)(void *, uint32_t), void *ctx)
{
	/* every block is moved at most 4 times (3 hit credits + a pass) before it can go, so
	 * this bound is only reached when nothing at all is evictable */
	uint64_t tries = 5ull * (p->q[S3_SMALL].count + p->q[S3_MAIN].count) + 1;
	uint64_t small_target = p->capacity_bytes / 10;
	while (tries-- > 0) {
		uint32_t s;
		if (p->q[S3_SMALL].count == 0 && p->q[S3_MAIN].count == 0)
			return POLICY_NONE;
		if (p->q[S3_MAIN].count == 0 ||
		    (p->q[S3_SMALL].count && p->q[S3_SMALL].bytes >= small_target))
			s = s3_from_small(p, evictable, ctx);
		else
			s = s3_from_main(p, evictable, ctx);
		if (s != POLICY_NONE)
			return s;
	}
	return POLICY_NONE;
}

const struct policy_ops policy_s3fifo_ops = {
    .name = "s3fifo",
    .create = s3_create,
    .destroy = s3_destroy,
    .insert = s3_insert,
    .hit = s3_hit,
    .remove = s3_remove,
    .victim = s3_victim,
    .admit = NULL,
    .bytes_per_slot = 26,
};
