/*
 * io_psync.c - the portable backend: preadv2/pwritev2/fdatasync on a pool of threads.
 * Works on any filesystem (tmpfs too) and kernel; queue depth is the number of threads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "io.h"

struct io_backend {
	pthread_mutex_t lock; /* guards head, tail, stop */
	pthread_cond_t cond;
	struct io_req *head, *tail;
	int stop;
	uint32_t nthreads;
	pthread_t *threads;
};

static ssize_t run_one(struct io_req *r)
{
	ssize_t n;
	switch (r->op) {
	case IO_READ:
		n = preadv2(r->fd, r->iov, r->iovcnt, (off_t)r->off, 0);
		break;
	case IO_WRITE:
		n = pwritev2(r->fd, r->iov, r->iovcnt, (off_t)r->off, r->rw_flags);
		break;
	default:
		n = fdatasync(r->fd);
		break;
	}
	return n < 0 ? -errno : n;
}

static void *worker(void *arg)
{
	struct io_backend *b = arg;
	io_thread_enter();
	pthread_mutex_lock(&b->lock);
	for (;;) {
		while (!b->head && !b->stop)
			pthread_cond_wait(&b->cond, &b->lock);
		if (!b->head)
			break;
		struct io_req *r = b->head;
		b->head = r->next;
		if (!b->head)
			b->tail = NULL;
		pthread_mutex_unlock(&b->lock);
		r->done(r, run_one(r));
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static void psync_submit(struct io_backend *b, struct io_req *r)
{
	r->next = NULL;
	pthread_mutex_lock(&b->lock);
	if (b->tail)
		b->tail->next = r;
	else
		b->head = r;
	b->tail = r;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static void psync_destroy(struct io_backend *b)
{
	pthread_mutex_lock(&b->lock);
	b->stop = 1;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	for (uint32_t i = 0; i < b->nthreads; i++)
		pthread_join(b->threads[i], NULL);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b->threads);
	free(b);
}

static int psync_create(const struct io_config *cfg, struct io_backend **out)
{
	struct io_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->nthreads = cfg->threads ? cfg->threads : 8;
	b->threads = calloc(b->nthreads, sizeof(pthread_t));
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	if (!b->threads)
		goto out_free;
	for (uint32_t i = 0; i < b->nthreads; i++) {
		if (pthread_create(&b->threads[i], NULL, worker, b)) {
			b->nthreads = i;
			psync_destroy(b);
			return -EAGAIN;
		}
	}
	*out = b;
	return 0;
out_free:
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
	return -ENOMEM;
}

const struct io_ops io_psync_ops = {
    .name = "psync",
    .create = psync_create,
    .submit = psync_submit,
    .destroy = psync_destroy,
};
