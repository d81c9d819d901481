/*
 * pool.h - a fixed set of worker threads that split one loop between them.
 *
 * The engine's matrix products run on OpenBLAS's own threads; the parts that are not one big
 * product (attention's per-head tiles with their softmax) run here instead, one KV head per
 * work item, each item calling single-threaded BLAS.  The caller's thread is worker 0 and
 * takes items too; llm_pool_run() returns when every item is done.  A pool is driven by one
 * thread at a time.  Items are handed out in any order: results must not depend on which
 * worker ran an item (each item writes only its own outputs).
 */
#ifndef LLM_POOL_H
#define LLM_POOL_H

#include <stdint.h>

struct llm_pool;

/* Called once per item; worker is in [0, threads) and indexes per-worker scratch. */
typedef void (*llm_pool_fn)(void *arg, uint32_t item, uint32_t worker);

/* Starts threads-1 workers (threads >= 1).  0 or -errno. */
int llm_pool_create(uint32_t threads, struct llm_pool **out);

/* Runs fn over items [0, n) on every worker and returns when all are done. */
void llm_pool_run(struct llm_pool *p, uint32_t n, llm_pool_fn fn, void *arg);

uint32_t llm_pool_threads(const struct llm_pool *p);

/* Stops and joins the workers.  p may be NULL. */
void llm_pool_destroy(struct llm_pool *p);

#endif
