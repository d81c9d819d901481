/*
 * tier_dram.h - the DRAM tier's arena: one preallocated region cut into fixed chunks.
 *
 * A block occupies a chain of chunks (not necessarily adjacent), linked through next[] as
 * a file allocation table is; free chunks form one list.  So any mix of block sizes fits
 * without fragmentation, and nothing is allocated after arena_init().  The caller holds the
 * grid lock for alloc/free; copies run without it on chunks the caller keeps referenced.
 */
#ifndef KVG_TIER_DRAM_H
#define KVG_TIER_DRAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct arena {
	uint8_t *base;
	uint64_t bytes; /* chunks * chunk_bytes */
	uint32_t chunk_bytes;
	uint32_t chunks;
	uint32_t *next; /* chain links, CHUNK_END ends a chain */
	uint32_t free_head;
	uint32_t free_count;
	uint16_t *lent; /* per chain head: views lent (arena_lend); ARENA_ORPHAN: released */
	int hugepages;	/* MADV_HUGEPAGE was accepted */
	int locked;	/* mlock succeeded */
};

#define CHUNK_END      UINT32_MAX
#define ARENA_ORPHAN   0x8000u /* in lent[]: the chain was released while lent */
#define ARENA_LEND_MAX 0x7fffu

/* Maps and touches the region.  Returns 0 or -errno. */
int arena_init(struct arena *a, uint64_t bytes, uint32_t chunk_bytes, int hugepages, int lock);
void arena_free_all(struct arena *a);
static inline uint32_t arena_chunks_for(const struct arena *a, uint64_t len)
{
	return len ? (uint32_t)((len + a->chunk_bytes - 1) / a->chunk_bytes) : 1;
}
/* First chunk of a new chain of n chunks, or CHUNK_END if fewer are free. */
uint32_t arena_alloc(struct arena *a, uint32_t n);
/* Returns a whole chain to the free list; the number of chunks freed.  A chain that is lent
 * is only marked: its last arena_unlend() frees it. */
uint32_t arena_release(struct arena *a, uint32_t first);
/*
 * Lending: a chain's bytes stay valid for a reader outside the grid lock (a socket send),
 * whatever becomes of the block meanwhile.  arena_lend returns 0, or -1 when the chain is
 * lent ARENA_LEND_MAX times already; arena_unlend returns the chunks it freed.
 */
int arena_lend(struct arena *a, uint32_t first);
uint32_t arena_unlend(struct arena *a, uint32_t first);
/* Copy len bytes in or out of a chain, starting off bytes into it. */
void arena_write(const struct arena *a, uint32_t first, uint64_t off, const void *src, size_t len);
void arena_read(const struct arena *a, uint32_t first, uint64_t off, void *dst, size_t len);
/* Fills iov with the pieces of [off, off+len) of a chain; returns the count, or -1 if more
 * than max are needed.  For scatter/gather sends straight from the arena. */
int arena_iov(const struct arena *a, uint32_t first, uint64_t off, size_t len, struct iovec *iov,
	      int max);

#endif
