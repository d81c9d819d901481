/*
 * io_uring.c - the production backend: one io_uring per thread, owned by that thread.
 *
 * Submitters hand requests over through a locked list and an eventfd; the ring thread
 * submits a batch, reaps every completion, runs the done callbacks, and repeats.  An
 * eventfd read stays armed in the ring (user_data 0) so a new submission wakes a thread
 * that is waiting on the device.  Requests beyond the ring's depth wait in the list.
 * The eventfd is written only by a submission that finds the list empty, and never by
 * the ring thread itself (a done callback that submits more): a non-empty list means a
 * wake-up is already on its way, and the ring thread takes the whole list before it waits
 * again -- so a burst of submissions costs one write(), not one per request.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <liburing.h>

#include "io.h"

struct ring {
	struct io_uring ring;
	int efd;
	uint64_t efd_buf;
	pthread_t thread;
	pthread_mutex_t lock; /* guards head, tail, stop */
	struct io_req *head, *tail;
	int stop;
	uint32_t inflight; /* ring thread only */
	uint32_t depth;
};

/* the ring this thread runs, if it is a ring thread */
static __thread struct ring *self_ring;

struct io_backend {
	uint32_t nrings;
	uint32_t rr; /* round robin over rings (racy by design: any ring will do) */
	struct ring *rings;
};

static void arm_eventfd(struct ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	io_uring_prep_read(sqe, r->efd, &r->efd_buf, sizeof(r->efd_buf), 0);
	io_uring_sqe_set_data(sqe, NULL);
}

/* Moves waiting requests into free submission entries.  Ring thread only. */
static void fill(struct ring *r)
{
	pthread_mutex_lock(&r->lock);
	while (r->head && r->inflight < r->depth) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
		if (!sqe)
			break;
		struct io_req *q = r->head;
		r->head = q->next;
		if (!r->head)
			r->tail = NULL;
		switch (q->op) {
		case IO_READ:
			io_uring_prep_readv(sqe, q->fd, q->iov, q->iovcnt, q->off);
			break;
		case IO_WRITE:
			io_uring_prep_writev2(sqe, q->fd, q->iov, q->iovcnt, q->off, q->rw_flags);
			break;
		default:
			io_uring_prep_fsync(sqe, q->fd, IORING_FSYNC_DATASYNC);
			break;
		}
		io_uring_sqe_set_data(sqe, q);
		r->inflight++;
	}
	pthread_mutex_unlock(&r->lock);
}

static void *ring_thread(void *arg)
{
	struct ring *r = arg;
	io_thread_enter();
	self_ring = r;
	arm_eventfd(r);
	for (;;) {
		fill(r);
		pthread_mutex_lock(&r->lock);
		int stop = r->stop && !r->head && r->inflight == 0;
		pthread_mutex_unlock(&r->lock);
		if (stop)
			break;
		int rc = io_uring_submit_and_wait(&r->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			break;
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int rearm = 0;
		io_uring_for_each_cqe(&r->ring, head, cqe)
		{
			struct io_req *q = io_uring_cqe_get_data(cqe);
			int res = cqe->res;
			seen++;
			if (!q) {
				rearm = 1;
				continue;
			}
			r->inflight--;
			q->done(q, res);
		}
		io_uring_cq_advance(&r->ring, seen);
		if (rearm)
			arm_eventfd(r);
	}
	return NULL;
}

static void uring_submit(struct io_backend *b, struct io_req *q)
{
	struct ring *r =
	    &b->rings[b->nrings == 1 ? 0
				     : __atomic_fetch_add(&b->rr, 1, __ATOMIC_RELAXED) % b->nrings];
	q->next = NULL;
	pthread_mutex_lock(&r->lock);
	int wake = !r->head && self_ring != r; /* see the top of this file */
	if (r->tail)
		r->tail->next = q;
	else
		r->head = q;
	r->tail = q;
	pthread_mutex_unlock(&r->lock);
	uint64_t one = 1;
	while (wake && write(r->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void ring_stop(struct ring *r)
{
	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	pthread_mutex_unlock(&r->lock);
	uint64_t one = 1;
	if (write(r->efd, &one, sizeof(one)) < 0) {
		/* the thread also wakes on its own completions */
	}
	pthread_join(r->thread, NULL);
	io_uring_queue_exit(&r->ring);
	close(r->efd);
	pthread_mutex_destroy(&r->lock);
}

static void uring_destroy(struct io_backend *b)
{
	for (uint32_t i = 0; i < b->nrings; i++)
		ring_stop(&b->rings[i]);
	free(b->rings);
	free(b);
}

static int ring_start(struct ring *r, uint32_t depth)
{
	memset(r, 0, sizeof(*r));
	r->depth = depth;
	r->efd = eventfd(0, EFD_CLOEXEC);
	if (r->efd < 0)
		return -errno;
	int rc = io_uring_queue_init(depth + 1, &r->ring, 0);
	if (rc < 0)
		goto out_close;
	pthread_mutex_init(&r->lock, NULL);
	rc = -pthread_create(&r->thread, NULL, ring_thread, r);
	if (rc)
		goto out_exit;
	return 0;
out_exit:
	pthread_mutex_destroy(&r->lock);
	io_uring_queue_exit(&r->ring);
out_close:
	close(r->efd);
	return rc;
}

static int uring_create(const struct io_config *cfg, struct io_backend **out)
{
	struct io_backend *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->nrings = cfg->threads ? cfg->threads : 1;
	b->rings = calloc(b->nrings, sizeof(struct ring));
	if (!b->rings) {
		free(b);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < b->nrings; i++) {
		int rc = ring_start(&b->rings[i], cfg->queue_depth ? cfg->queue_depth : 64);
		if (rc) {
			b->nrings = i;
			uring_destroy(b);
			return rc;
		}
	}
	*out = b;
	return 0;
}

const struct io_ops io_uring_ops = {
    .name = "uring",
    .create = uring_create,
    .submit = uring_submit,
    .destroy = uring_destroy,
};
