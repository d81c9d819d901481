/*
 * bigmem.h - the engine's large buffers (weights, KV pages, activations).
 *
 * On the machines kvgrid runs on, the first touch of fresh memory is expensive (shadow
 * paging: about 4 ms per MiB on the development machine), so every large buffer is mapped
 * once at start-up, 2 MiB aligned with MADV_HUGEPAGE, and touched at once: the cost lands in
 * set-up, never inside a measured prefill.  Nothing is returned to the system until exit.
 */
#ifndef LLM_BIGMEM_H
#define LLM_BIGMEM_H

#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#define LLM_HUGE_BYTES ((size_t)2 << 20)

static inline size_t llm_big_round(size_t bytes)
{
	return (bytes + LLM_HUGE_BYTES - 1) & ~(LLM_HUGE_BYTES - 1);
}

/* Zeroed, touched memory of at least bytes (rounded up to 2 MiB), or NULL. */
static inline void *llm_big_alloc(size_t bytes)
{
	size_t len = llm_big_round(bytes ? bytes : 1);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, len, MADV_HUGEPAGE); /* a hint: fine if the kernel says no */
	memset(p, 0, len);
	return p;
}

static inline void llm_big_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, llm_big_round(bytes ? bytes : 1));
}

#endif
