/*
 * test_engine_pool_mt.c - the engine's worker pool (engine/pool.c), alone: every item of a
 * job runs exactly once, on a worker id in range, and llm_pool_run() returns only when all of
 * them have finished, job after job.  Named _mt so that it also runs under ThreadSanitizer.
 */
#include <stdatomic.h>
#include <stdint.h>

#include "../engine/pool.h"
#include "t.h"

#define ITEMS 257

struct job {
	_Atomic uint32_t runs[ITEMS];
	uint32_t out[ITEMS]; /* plain writes: each item owns its slot; read after run returns */
	uint32_t threads;
	_Atomic int bad_worker;
};

static void work(void *arg, uint32_t item, uint32_t worker)
{
	struct job *j = arg;
	if (worker >= j->threads)
		atomic_store(&j->bad_worker, 1);
	atomic_fetch_add(&j->runs[item], 1);
	j->out[item] = item * 3 + 1;
}

/* Description: for 1, 2 and 4 threads and jobs of 1..257 items, repeated 200 times, every
 * item runs exactly once per job and its result is visible when llm_pool_run() returns. */
static void test_every_item_once(void)
{
	uint32_t counts[] = {1, 2, 4};
	for (size_t c = 0; c < 3; c++) {
		struct llm_pool *p;
		CHECK_RC(llm_pool_create(counts[c], &p), 0);
		CHECK(llm_pool_threads(p) == counts[c]);
		static struct job j;
		for (int rep = 0; rep < 200; rep++) {
			uint32_t n = 1 + (uint32_t)(rep * 37) % ITEMS;
			for (uint32_t i = 0; i < ITEMS; i++) {
				atomic_store(&j.runs[i], 0);
				j.out[i] = 0;
			}
			j.threads = counts[c];
			atomic_store(&j.bad_worker, 0);
			llm_pool_run(p, n, work, &j);
			for (uint32_t i = 0; i < ITEMS; i++) {
				CHECK(atomic_load(&j.runs[i]) == (i < n ? 1u : 0u));
				CHECK(j.out[i] == (i < n ? i * 3 + 1 : 0));
			}
			CHECK(!atomic_load(&j.bad_worker));
		}
		llm_pool_destroy(p);
	}
}

/* Description: a pool can be destroyed right after creation, and NULL is a no-op. */
static void test_destroy_idle(void)
{
	struct llm_pool *p;
	CHECK_RC(llm_pool_create(3, &p), 0);
	llm_pool_destroy(p);
	llm_pool_destroy(NULL);
}

int main(void)
{
	RUN(test_every_item_once);
	RUN(test_destroy_idle);
	return t_failed ? 1 : 0;
}
