/*
 * tier_dram.c - see tier_dram.h.  The region is mapped 2 MiB-aligned with MADV_HUGEPAGE and
 * touched page by page at start-up: first-touch faults cost milliseconds per MiB on
 * virtualised hosts, and must never land on a store.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tier_dram.h"

#define HUGE_2M (2u << 20)

int arena_init(struct arena *a, uint64_t bytes, uint32_t chunk_bytes, int hugepages, int lock)
{
	memset(a, 0, sizeof(*a));
	a->chunk_bytes = chunk_bytes;
	a->chunks = (uint32_t)(bytes / chunk_bytes);
	a->bytes = (uint64_t)a->chunks * chunk_bytes;
	a->free_head = CHUNK_END;
	if (!a->chunks)
		return 0;
	/* over-map by 2 MiB so the base can be aligned for huge pages */
	size_t map = a->bytes + HUGE_2M;
	uint8_t *m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	uint8_t *base = (uint8_t *)(((uintptr_t)m + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1));
	if (base > m)
		munmap(m, base - m);
	uint8_t *end = base + a->bytes;
	if (m + map > end)
		munmap(end, m + map - end);
	a->base = base;
	if (hugepages && madvise(base, a->bytes, MADV_HUGEPAGE) == 0)
		a->hugepages = 1;
	long page = sysconf(_SC_PAGESIZE);
	for (uint64_t off = 0; off < a->bytes; off += page)
		base[off] = 0;
	if (lock && mlock(base, a->bytes) == 0)
		a->locked = 1;
	a->next = malloc(sizeof(uint32_t) * a->chunks);
	a->lent = calloc(a->chunks, sizeof(uint16_t));
	if (!a->next || !a->lent) {
		free(a->next);
		free(a->lent);
		munmap(base, a->bytes);
		a->base = NULL;
		a->next = NULL;
		a->lent = NULL;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < a->chunks; i++)
		a->next[i] = i + 1 < a->chunks ? i + 1 : CHUNK_END;
	a->free_head = 0;
	a->free_count = a->chunks;
	return 0;
}

void arena_free_all(struct arena *a)
{
	if (a->base)
		munmap(a->base, a->bytes);
	free(a->next);
	free(a->lent);
	memset(a, 0, sizeof(*a));
}

uint32_t arena_alloc(struct arena *a, uint32_t n)
{
	if (n == 0 || n > a->free_count)
		return CHUNK_END;
	uint32_t first = a->free_head, last = first;
	for (uint32_t i = 1; i < n; i++)
		last = a->next[last];
	a->free_head = a->next[last];
	a->next[last] = CHUNK_END;
	a->free_count -= n;
	return first;
}

static uint32_t chain_free(struct arena *a, uint32_t first)
{
	uint32_t n = 1, last = first;
	while (a->next[last] != CHUNK_END) {
		last = a->next[last];
		n++;
	}
	a->next[last] = a->free_head;
	a->free_head = first;
	a->free_count += n;
	return n;
}

uint32_t arena_release(struct arena *a, uint32_t first)
{
	if (first == CHUNK_END)
		return 0;
	if (a->lent[first]) {
		a->lent[first] |= ARENA_ORPHAN;
		return 0;
	}
	return chain_free(a, first);
}

int arena_lend(struct arena *a, uint32_t first)
{
	if ((a->lent[first] & ARENA_LEND_MAX) == ARENA_LEND_MAX)
		return -1;
	a->lent[first]++;
	return 0;
}

uint32_t arena_unlend(struct arena *a, uint32_t first)
{
	if (--a->lent[first] != ARENA_ORPHAN)
		return 0;
	a->lent[first] = 0;
	return chain_free(a, first);
}

/* Walks to the chunk holding byte off of a chain; *in gets the offset inside it. */
static uint32_t seek(const struct arena *a, uint32_t c, uint64_t off, uint64_t *in)
{
	while (off >= a->chunk_bytes) {
		c = a->next[c];
		off -= a->chunk_bytes;
	}
	*in = off;
	return c;
}

void arena_write(const struct arena *a, uint32_t first, uint64_t off, const void *src, size_t len)
{
	uint64_t in;
	uint32_t c = seek(a, first, off, &in);
	const uint8_t *s = src;
	while (len) {
		size_t n = a->chunk_bytes - in < len ? a->chunk_bytes - in : len;
		memcpy(a->base + (uint64_t)c * a->chunk_bytes + in, s, n);
		s += n;
		len -= n;
		in = 0;
		c = a->next[c];
	}
}

void arena_read(const struct arena *a, uint32_t first, uint64_t off, void *dst, size_t len)
{
	uint64_t in;
	uint32_t c = seek(a, first, off, &in);
	uint8_t *d = dst;
	while (len) {
		size_t n = a->chunk_bytes - in < len ? a->chunk_bytes - in : len;
		memcpy(d, a->base + (uint64_t)c * a->chunk_bytes + in, n);
		d += n;
		len -= n;
		in = 0;
		c = a->next[c];
	}
}

int arena_iov(const struct arena *a, uint32_t first, uint64_t off, size_t len, struct iovec *iov,
	      int max)
{
	uint64_t in;
	uint32_t c = seek(a, first, off, &in);
	int n = 0;
	while (len) {
		size_t k = a->chunk_bytes - in < len ? a->chunk_bytes - in : len;
		uint8_t *p = a->base + (uint64_t)c * a->chunk_bytes + in;
		if (n && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len == p)
			iov[n - 1].iov_len += k; /* adjacent chunks: one piece */
		else if (n == max)
			return -1;
		else
			iov[n++] = (struct iovec){.iov_base = p, .iov_len = k};
		len -= k;
		in = 0;
		c = a->next[c];
	}
	return n;
}
