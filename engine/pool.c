/*
 * pool.c - worker threads for llm_pool_run().
 *
 * One job at a time: the driver publishes (fn, arg, n) under the lock with a new generation
 * number and wakes the workers; every worker, the driver included, takes item numbers from a
 * shared counter until they run out, then counts itself done.  The driver waits until all
 * workers have checked in, so the job's arguments stay valid for as long as anyone uses them.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct llm_pool {
	pthread_mutex_t lock; /* guards every field below except the threads array */
	pthread_cond_t wake;  /* a new generation (or stop) was published */
	pthread_cond_t idle;  /* a worker finished its share */
	uint64_t generation;
	llm_pool_fn fn;
	void *arg;
	uint32_t n, next, done_workers;
	int stop;
	uint32_t threads;
	pthread_t *tid; /* threads-1 workers */
};

struct worker_start {
	struct llm_pool *p;
	uint32_t id;
};

/* Takes items until none is left; called with the lock held, returns with it held. */
static void take_items(struct llm_pool *p, uint32_t id)
{
	llm_pool_fn fn = p->fn;
	void *arg = p->arg;
	while (p->next < p->n) {
		uint32_t item = p->next++;
		pthread_mutex_unlock(&p->lock);
		fn(arg, item, id);
		pthread_mutex_lock(&p->lock);
	}
}

static void *worker_main(void *v)
{
	struct worker_start *ws = v;
	struct llm_pool *p = ws->p;
	uint32_t id = ws->id;
	free(ws);
	uint64_t seen = 0;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && p->generation == seen)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->stop)
			break;
		seen = p->generation;
		take_items(p, id);
		p->done_workers++;
		pthread_cond_signal(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int llm_pool_create(uint32_t threads, struct llm_pool **out)
{
	struct llm_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->threads = threads ? threads : 1;
	p->tid = calloc(p->threads, sizeof(*p->tid));
	if (!p->tid) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->idle, NULL);
	for (uint32_t i = 1; i < p->threads; i++) {
		struct worker_start *ws = malloc(sizeof(*ws));
		int rc = ws ? 0 : ENOMEM;
		if (ws) {
			ws->p = p;
			ws->id = i;
			rc = pthread_create(&p->tid[i], NULL, worker_main, ws);
			if (rc)
				free(ws);
		}
		if (rc) {
			p->threads = i; /* destroy joins the ones that started */
			llm_pool_destroy(p);
			return -rc;
		}
	}
	*out = p;
	return 0;
}

void llm_pool_run(struct llm_pool *p, uint32_t n, llm_pool_fn fn, void *arg)
{
	if (p->threads == 1 || n == 1) {
		for (uint32_t i = 0; i < n; i++)
			fn(arg, i, 0);
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->fn = fn;
	p->arg = arg;
	p->n = n;
	p->next = 0;
	p->done_workers = 0;
	p->generation++;
	pthread_cond_broadcast(&p->wake);
	take_items(p, 0);
	while (p->done_workers < p->threads - 1)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

uint32_t llm_pool_threads(const struct llm_pool *p)
{
	return p->threads;
}

void llm_pool_destroy(struct llm_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (uint32_t i = 1; i < p->threads; i++)
		pthread_join(p->tid[i], NULL);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p->tid);
	free(p);
}
