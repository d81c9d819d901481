/*
 * io_fault.c - the fault-injecting backend: a plan of rules decides, for each operation as it
 * is submitted, whether it reaches the inner backend whole, shortened, torn, or not at all.
 *
 * Each operation is counted per kind (the Nth read, the Nth write, the Nth fsync, 1-based) and
 * matched against the rules: a power cut due at this operation first, then the other rules in
 * the order the plan gives them; the first rule that matches applies.  Probabilistic rules draw
 * from one seeded generator, so a single-threaded run is reproducible from its seed.
 *
 * A caller's request is never modified: the backend submits its own copy (struct fault_op) to
 * the inner backend and completes the caller's request from that copy's callback.  Operations
 * that never reach the disk (injected errors, refusals after a power cut, empty tears) are
 * completed by the backend's own thread, never inside io_submit(), because a caller may hold
 * the lock its done handler takes.
 *
 * Power cuts: before a write is passed on, the bytes it will overwrite are read and kept in an
 * undo log (newest last).  A successful fsync of a file discards the entries of writes that had
 * completed when the fsync was submitted, and a write with RWF_DSYNC discards its own entry as
 * it completes: those bytes are durable.  At a power cut the backend
 * stops accepting work, waits for the operations in flight, then writes the old bytes back,
 * newest first.  When the log exceeds undo_max bytes its oldest entries are forgotten, which
 * models a disk that wrote its cache back on its own: still a legal crash outcome.
 *
 * The plan's grammar and its parser are in io_fault_plan.c; this file is the backend.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "err.h"
#include "io_fault.h"
#include "io_fault_plan.h"
#include "kvgrid.h"
#include "record.h"

/* One write whose previous bytes are kept until an fsync makes it durable. */
struct undo {
	int fd;
	uint64_t off;
	size_t len;
	uint64_t done_seq; /* 0 while in flight; then the order in which writes completed */
	void *old;	   /* len bytes (KVG_ALIGN-aligned buffer, for O_DIRECT files) */
	int kept;	   /* power cut: this write (or a prefix of it) stayed on the disk */
	struct undo *prev, *next;
};

/* Our copy of a caller's request, and what was decided for it. */
struct fault_op {
	struct io_req sub; /* what the inner backend sees */
	struct io_req *orig;
	struct io_backend *b;
	ssize_t res;	    /* immediate completions: the result to report */
	ssize_t report;	    /* tears: the full length to report on success */
	int flip;	    /* flip a bit of the data read */
	uint64_t watermark; /* fsync: writes completed before it was submitted */
	struct undo *undo;  /* write: its undo entry, if kept */
	uint64_t due_us;    /* delayed: when it goes to the inner backend (monotonic clock) */
	struct fault_op *next;
};

struct io_backend {
	const struct io_ops *inner_ops;
	struct io_backend *inner;
	struct fault_plan plan;

	/* lock guards everything below it */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct io_fault_counts counts;
	uint64_t seen[3]; /* operations per io_op, for the rules' counts */
	uint64_t seen_any;
	uint64_t rng;			    /* splitmix64 state */
	uint64_t done_seq;		    /* writes completed so far */
	uint32_t inflight;		    /* operations at the inner backend */
	int dead;			    /* the power is off */
	int undone;			    /* the undo log has been applied after the power cut */
	struct undo *undo_head, *undo_tail; /* oldest ... newest */
	uint64_t undo_bytes;
	struct fault_op *free_ops;	      /* recycled copies (grow on demand: a test backend) */
	struct fault_op *imm_head, *imm_tail; /* immediate completions for the thread */
	struct fault_op *delayed;	      /* delayed operations, soonest first */
	int flush;			      /* destroy: submit the delayed ones now */
	int stop;
	pthread_t thread;

	struct io_backend *reg_next; /* registry of live backends (reg_lock) */
};

/* Process-wide registry, so that tests can count and cut power without a handle. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct io_backend *reg_head;
static struct io_fault_counts reg_dead_totals; /* counts of destroyed backends */

/* ---- counters ------------------------------------------------------------------------- */

uint64_t io_fault_injected(const struct io_fault_counts *c)
{
	return c->eio + c->enospc + c->eintr + c->eagain + c->other_errno + c->shorts + c->tears +
	       c->flips + c->powercuts + c->dropped_writes + c->cut_torn + c->delays;
}

void io_fault_counts_add(struct io_fault_counts *dst, const struct io_fault_counts *src)
{
	const uint64_t *s = (const uint64_t *)src;
	uint64_t *d = (uint64_t *)dst;
	for (size_t i = 0; i < sizeof(*src) / sizeof(uint64_t); i++)
		d[i] += s[i];
}
_Static_assert(sizeof(struct io_fault_counts) % sizeof(uint64_t) == 0, "counters are u64");

static void count_errno(struct io_fault_counts *c, int err)
{
	switch (err) {
	case EIO:
		c->eio++;
		break;
	case ENOSPC:
		c->enospc++;
		break;
	case EINTR:
		c->eintr++;
		break;
	case EAGAIN:
		c->eagain++;
		break;
	default:
		c->other_errno++;
		break;
	}
}

/* ---- decisions (lock held) ------------------------------------------------------------ */

static uint64_t rng_next(struct io_backend *b)
{
	uint64_t z = (b->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi], hi >= lo. */
static uint64_t rng_range(struct io_backend *b, uint64_t lo, uint64_t hi)
{
	return lo + rng_next(b) % (hi - lo + 1);
}

/* The rule that applies to this operation, or NULL: a power cut due now wins (it is an
 * event, not a change to one operation); otherwise the first rule, in plan order. */
static const struct fault_rule *plan_match(struct io_backend *b, int op)
{
	uint64_t n_op = b->seen[op], n_any = b->seen_any;
	for (int i = 0; i < 2 * b->plan.n_rules; i++) {
		const struct fault_rule *r = &b->plan.rules[i % b->plan.n_rules];
		if ((i < b->plan.n_rules) != (r->kind == FK_POWERCUT))
			continue;
		if (r->op != op && r->op != OP_ANY)
			continue;
		uint64_t n = r->op == OP_ANY ? n_any : n_op;
		if (n < r->first || n > r->last)
			continue;
		if (r->prob > 0.0 && (double)(rng_next(b) >> 11) / 9007199254740992.0 >= r->prob)
			continue;
		return r;
	}
	return NULL;
}

static size_t iov_bytes(const struct io_req *req)
{
	size_t n = 0;
	for (int i = 0; i < req->iovcnt; i++)
		n += req->iov[i].iov_len;
	return n;
}

/* Keeps only the first keep bytes of sub's vector. */
static void iov_cut(struct io_req *sub, size_t keep)
{
	for (int i = 0; i < sub->iovcnt; i++) {
		if (keep <= sub->iov[i].iov_len) {
			sub->iov[i].iov_len = keep;
			sub->iovcnt = keep ? i + 1 : i;
			return;
		}
		keep -= sub->iov[i].iov_len;
	}
}

/*
 * A prefix length in [lo_units, units-1] units of the transfer's alignment (the largest power
 * of two up to KVG_ALIGN dividing its length: O_DIRECT needs it), of bytes when it is not
 * even 2-aligned; -1 if the transfer is too small to cut.
 */
static ssize_t cut_point(struct io_backend *b, size_t len, int allow_zero)
{
	size_t unit = KVG_ALIGN;
	while (unit > 1 && len % unit)
		unit >>= 1;
	size_t units = len / unit;
	size_t lo = allow_zero ? 0 : 1;
	if (units < lo + 1)
		return -1;
	return (ssize_t)(rng_range(b, lo, units - 1) * unit);
}

/* ---- the undo log (lock held) --------------------------------------------------------- */

static void undo_unlink(struct io_backend *b, struct undo *u)
{
	if (u->prev)
		u->prev->next = u->next;
	else
		b->undo_head = u->next;
	if (u->next)
		u->next->prev = u->prev;
	else
		b->undo_tail = u->prev;
	b->undo_bytes -= u->len;
	free(u->old);
	free(u);
}

/* Reads the bytes a write is about to replace; NULL if the log is off or full. */
static struct undo *undo_keep(struct io_backend *b, const struct io_req *req, size_t len)
{
	struct undo *u;
	if (len == 0 || len > b->plan.undo_max)
		return NULL;
	while (b->undo_head && b->undo_bytes + len > b->plan.undo_max) {
		if (!b->undo_head->done_seq)
			break; /* the oldest is still in flight: keep it */
		undo_unlink(b, b->undo_head);
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	if (posix_memalign(&u->old, KVG_ALIGN, (len + KVG_ALIGN - 1) & ~(size_t)(KVG_ALIGN - 1))) {
		free(u);
		return NULL;
	}
	ssize_t got = pread(req->fd, u->old, len, (off_t)req->off);
	if (got < 0)
		got = 0;
	/* beyond the end of the file the write extends it; we put back zeros */
	memset((char *)u->old + got, 0, len - (size_t)got);
	u->fd = req->fd;
	u->off = req->off;
	u->len = len;
	u->prev = b->undo_tail;
	if (b->undo_tail)
		b->undo_tail->next = u;
	else
		b->undo_head = u;
	b->undo_tail = u;
	b->undo_bytes += len;
	return u;
}

/* A successful fsync of fd: writes completed before it are durable. */
static void undo_durable(struct io_backend *b, int fd, uint64_t watermark)
{
	struct undo *u = b->undo_head, *next;
	for (; u; u = next) {
		next = u->next;
		if (u->fd == fd && u->done_seq && u->done_seq <= watermark)
			undo_unlink(b, u);
	}
}

/* The power is off and nothing is in flight: put back what was not durable, newest first. */
/* 1 if [off, off+len) of fd overlaps a newer write that the power cut kept (whole or torn). */
static int undo_shadowed(const struct undo *u)
{
	for (const struct undo *n = u->next; n; n = n->next)
		if (n->kept && n->fd == u->fd && n->off < u->off + u->len &&
		    u->off < n->off + n->len)
			return 1;
	return 0;
}

/*
 * The power is off and nothing is in flight: decide the fate of every write not yet durable,
 * newest first.  cutmode=drop undoes them all; cutmode=mixed, like a real disk cache, lets each
 * one be lost, survive, or be torn (a 4096-aligned prefix survives).  An older write under a
 * newer one that survived is left alone, so that the file never shows an impossible state.
 */
static void undo_apply(struct io_backend *b)
{
	struct undo *u, *prev;
	for (u = b->undo_tail; u; u = u->prev) {
		size_t keep = 0;
		uint64_t fate = b->plan.cut_mixed ? rng_next(b) % 3 : 0;
		if (undo_shadowed(u)) {
			u->kept = 1;
			continue;
		}
		if (fate == 1) {
			u->kept = 1;
			b->counts.cut_kept++;
			continue;
		}
		if (fate == 2 && u->len >= 2 * KVG_ALIGN && u->len % KVG_ALIGN == 0) {
			keep = (size_t)rng_range(b, 1, u->len / KVG_ALIGN - 1) * KVG_ALIGN;
			u->kept = 1;
			b->counts.cut_torn++;
		}
		size_t n = u->len - keep;
		if (pwrite(u->fd, (char *)u->old + keep, n, (off_t)(u->off + keep)) == (ssize_t)n &&
		    !keep) {
			b->counts.dropped_writes++;
			b->counts.dropped_bytes += u->len;
		}
	}
	for (u = b->undo_tail; u; u = prev) {
		prev = u->prev;
		undo_unlink(b, u);
	}
	b->undone = 1;
	pthread_cond_broadcast(&b->cond);
	if (b->plan.cut_exit)
		_exit(b->plan.cut_exit); /* the machine is gone: nothing else reaches the disk */
}

/* ---- operations ----------------------------------------------------------------------- */

static struct fault_op *op_get(struct io_backend *b)
{
	struct fault_op *o = b->free_ops;
	if (o) {
		b->free_ops = o->next;
		memset(o, 0, sizeof(*o));
		return o;
	}
	return calloc(1, sizeof(*o));
}

static void op_put(struct io_backend *b, struct fault_op *o)
{
	o->next = b->free_ops;
	b->free_ops = o;
}

/* Hands o to the backend's thread, which completes o->orig with o->res.  Lock held. */
static void complete_later(struct io_backend *b, struct fault_op *o, ssize_t res)
{
	o->res = res;
	o->next = NULL;
	if (b->imm_tail)
		b->imm_tail->next = o;
	else
		b->imm_head = o;
	b->imm_tail = o;
	pthread_cond_broadcast(&b->cond);
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Queues o (counted in flight) for the inner backend after us microseconds.  Lock held. */
static void delay_later(struct io_backend *b, struct fault_op *o, uint64_t us)
{
	struct fault_op **pp = &b->delayed;
	o->due_us = mono_us() + us;
	while (*pp && (*pp)->due_us <= o->due_us)
		pp = &(*pp)->next;
	o->next = *pp;
	*pp = o;
	pthread_cond_broadcast(&b->cond);
}

/*
 * The head of the delayed queue is due (lock held; dropped and retaken): it goes to the inner
 * backend, or fails with EIO if the power went meanwhile.
 */
static void delay_run(struct io_backend *b)
{
	struct fault_op *o = b->delayed;
	b->delayed = o->next;
	if (!b->dead) {
		pthread_mutex_unlock(&b->lock);
		b->inner_ops->submit(b->inner, &o->sub);
		pthread_mutex_lock(&b->lock);
		return;
	}
	struct io_req *orig = o->orig;
	b->inflight--;
	if (!b->undone && b->inflight == 0)
		undo_apply(b);
	op_put(b, o);
	pthread_mutex_unlock(&b->lock);
	orig->done(orig, -EIO);
	pthread_mutex_lock(&b->lock);
}

/* Sleeps until the next delayed operation is due or something else happens.  Lock held. */
static void delay_wait(struct io_backend *b)
{
	uint64_t due = b->delayed->due_us;
	struct timespec ts = {(time_t)(due / 1000000), (long)(due % 1000000) * 1000};
	pthread_cond_timedwait(&b->cond, &b->lock, &ts);
}

static void *fault_thread(void *arg)
{
	struct io_backend *b = arg;
	io_thread_enter();
	pthread_mutex_lock(&b->lock);
	for (;;) {
		struct fault_op *o = b->imm_head;
		if (!o && b->delayed) {
			if (b->flush || b->delayed->due_us <= mono_us())
				delay_run(b);
			else
				delay_wait(b);
			continue;
		}
		if (!o) {
			if (b->stop)
				break;
			pthread_cond_wait(&b->cond, &b->lock);
			continue;
		}
		b->imm_head = o->next;
		if (!b->imm_head)
			b->imm_tail = NULL;
		struct io_req *orig = o->orig;
		ssize_t res = o->res;
		op_put(b, o);
		pthread_mutex_unlock(&b->lock);
		orig->done(orig, res);
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* Flips one bit among the first n bytes of the vector. */
static void flip_bit(struct io_backend *b, struct io_req *sub, size_t n)
{
	uint64_t r = rng_next(b);
	size_t at = (size_t)(r % n);
	for (int i = 0; i < sub->iovcnt; i++) {
		if (at < sub->iov[i].iov_len) {
			((unsigned char *)sub->iov[i].iov_base)[at] ^=
			    (unsigned char)(1u << (r >> 61));
			return;
		}
		at -= sub->iov[i].iov_len;
	}
}

static void fault_done(struct io_req *sub, ssize_t res)
{
	struct fault_op *o = sub->arg;
	struct io_backend *b = o->b;
	struct io_req *orig = o->orig;

	pthread_mutex_lock(&b->lock);
	b->inflight--;
	if (b->dead) {
		res = -EIO; /* the power went before the caller heard back */
	} else if (res >= 0) {
		if (o->undo && (sub->rw_flags & (RWF_DSYNC | RWF_SYNC)))
			undo_unlink(b, o->undo); /* written through: durable as it completes */
		else if (o->undo)
			o->undo->done_seq = ++b->done_seq;
		if (sub->op == IO_FSYNC)
			undo_durable(b, sub->fd, o->watermark);
		if (o->flip && res > 0) {
			flip_bit(b, sub, (size_t)res);
			b->counts.flips++;
		}
		if (o->report)
			res = o->report;
	}
	if (b->dead && !b->undone && b->inflight == 0)
		undo_apply(b);
	op_put(b, o);
	pthread_mutex_unlock(&b->lock);
	orig->done(orig, res);
}

/* Power off (lock held): from now on every operation fails. */
static void do_powercut(struct io_backend *b)
{
	if (b->dead)
		return;
	b->dead = 1;
	b->flush = 1; /* delayed operations fail now rather than when due */
	pthread_cond_broadcast(&b->cond);
	b->counts.powercuts++;
	if (b->inflight == 0)
		undo_apply(b);
}

/* Decides what happens to one operation and starts it (lock held).  Returns o to submit to
 * the inner backend, or NULL when the operation was completed some other way. */
static struct fault_op *fault_decide(struct io_backend *b, struct fault_op *o)
{
	struct io_req *req = o->orig, *sub = &o->sub;
	int op = req->op;
	size_t len = iov_bytes(req);
	const struct fault_rule *r;
	ssize_t cut;

	if (op >= 0 && op <= IO_FSYNC)
		b->seen[op]++;
	if (op == IO_READ)
		b->counts.reads++;
	else if (op == IO_WRITE)
		b->counts.writes++;
	else if (op == IO_FSYNC)
		b->counts.fsyncs++;
	b->seen_any++;
	if (b->dead) {
		b->counts.refused++;
		complete_later(b, o, -EIO);
		return NULL;
	}
	r = op >= 0 && op <= IO_FSYNC ? plan_match(b, op) : NULL;
	if (r && r->kind == FK_POWERCUT) {
		do_powercut(b);
		complete_later(b, o, -EIO);
		return NULL;
	}
	if (r && r->kind == FK_FAIL) {
		count_errno(&b->counts, r->err);
		complete_later(b, o, -r->err);
		return NULL;
	}
	*sub = *req;
	sub->done = fault_done;
	sub->arg = o;
	sub->next = NULL;
	if (r && r->kind == FK_SHORT && (cut = cut_point(b, len, 0)) > 0) {
		iov_cut(sub, (size_t)cut);
		b->counts.shorts++;
	} else if (r && r->kind == FK_TEAR && (cut = cut_point(b, len, 1)) >= 0) {
		b->counts.tears++;
		if (cut == 0) {
			complete_later(b, o, (ssize_t)len);
			return NULL;
		}
		iov_cut(sub, (size_t)cut);
		o->report = (ssize_t)len;
	} else if (r && r->kind == FK_FLIP) {
		o->flip = 1;
	}
	if (op == IO_WRITE)
		o->undo = undo_keep(b, sub, iov_bytes(sub));
	if (op == IO_FSYNC)
		o->watermark = b->done_seq;
	b->inflight++;
	if (r && r->kind == FK_DELAY) {
		b->counts.delays++;
		delay_later(b, o, (uint64_t)r->err * 1000);
		return NULL;
	}
	return o;
}

static void fault_submit(struct io_backend *b, struct io_req *req)
{
	struct fault_op *o;

	pthread_mutex_lock(&b->lock);
	o = op_get(b);
	if (!o) {
		/* out of memory in a test backend: the caller still gets exactly one completion */
		pthread_mutex_unlock(&b->lock);
		req->done(req, -ENOMEM);
		return;
	}
	o->orig = req;
	o->b = b;
	o = fault_decide(b, o);
	pthread_mutex_unlock(&b->lock);
	if (o)
		b->inner_ops->submit(b->inner, &o->sub);
}

/* ---- life cycle ----------------------------------------------------------------------- */

int io_fault_create_over(const struct io_ops *inner, const struct io_config *cfg,
			 struct io_backend **out)
{
	struct io_backend *b;
	int rc;

	if (!inner || inner == &io_fault_ops)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	rc = io_fault_plan_parse(cfg->fault_plan, &b->plan, NULL, 0);
	if (rc)
		goto out_free;
	b->rng = b->plan.seed;
	b->inner_ops = inner;
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* delays are measured on it */
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = inner->create(cfg, &b->inner);
	if (rc)
		goto out_destroy_lock;
	rc = -pthread_create(&b->thread, NULL, fault_thread, b);
	if (rc)
		goto out_destroy_inner;
	pthread_mutex_lock(&reg_lock);
	b->reg_next = reg_head;
	reg_head = b;
	pthread_mutex_unlock(&reg_lock);
	*out = b;
	return 0;

out_destroy_inner:
	inner->destroy(b->inner);
out_destroy_lock:
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
out_free:
	free(b);
	return rc;
}

static int fault_create(const struct io_config *cfg, struct io_backend **out)
{
	const char *name = cfg->fault_inner && *cfg->fault_inner ? cfg->fault_inner : "psync";
	struct fault_plan plan;
	if (io_fault_plan_parse(cfg->fault_plan, &plan, NULL, 0))
		return -EINVAL;
	if (plan.inner[0]) /* the plan's choice wins: tests sweep both backends */
		name = plan.inner;
	if (!strcmp(name, "uring") && !io_uring_usable())
		name = "psync";
	const struct io_ops *inner = io_find(name);
	if (!inner || inner == &io_fault_ops)
		return -EINVAL;
	return io_fault_create_over(inner, cfg, out);
}

static void fault_destroy(struct io_backend *b)
{
	struct io_backend **pp;

	if (!b)
		return;
	pthread_mutex_lock(&b->lock); /* delayed operations go to the inner backend first */
	b->flush = 1;
	pthread_cond_broadcast(&b->cond);
	while (b->delayed) {
		pthread_mutex_unlock(&b->lock);
		usleep(1000);
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	b->inner_ops->destroy(b->inner); /* completes what is in flight through fault_done */
	pthread_mutex_lock(&b->lock);
	b->stop = 1;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);

	pthread_mutex_lock(&reg_lock);
	for (pp = &reg_head; *pp; pp = &(*pp)->reg_next)
		if (*pp == b) {
			*pp = b->reg_next;
			break;
		}
	io_fault_counts_add(&reg_dead_totals, &b->counts);
	pthread_mutex_unlock(&reg_lock);

	while (b->undo_head)
		undo_unlink(b, b->undo_head);
	while (b->free_ops) {
		struct fault_op *o = b->free_ops;
		b->free_ops = o->next;
		free(o);
	}
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

const struct io_ops io_fault_ops = {
    .name = "fault",
    .create = fault_create,
    .submit = fault_submit,
    .destroy = fault_destroy,
};

/* ---- queries -------------------------------------------------------------------------- */

void io_fault_counts_get(struct io_backend *b, struct io_fault_counts *out)
{
	pthread_mutex_lock(&b->lock);
	*out = b->counts;
	pthread_mutex_unlock(&b->lock);
}

void io_fault_powercut(struct io_backend *b)
{
	pthread_mutex_lock(&b->lock);
	do_powercut(b);
	pthread_mutex_unlock(&b->lock);
}

void io_fault_totals(struct io_fault_counts *out)
{
	pthread_mutex_lock(&reg_lock);
	*out = reg_dead_totals;
	for (struct io_backend *b = reg_head; b; b = b->reg_next) {
		struct io_fault_counts c;
		io_fault_counts_get(b, &c);
		io_fault_counts_add(out, &c);
	}
	pthread_mutex_unlock(&reg_lock);
}

int io_fault_powercut_all(void)
{
	int n = 0;
	pthread_mutex_lock(&reg_lock);
	for (struct io_backend *b = reg_head; b; b = b->reg_next, n++)
		io_fault_powercut(b);
	pthread_mutex_unlock(&reg_lock);
	return n;
}

int io_fault_powered_off(void)
{
	int off = 0;
	pthread_mutex_lock(&reg_lock);
	for (struct io_backend *b = reg_head; b && !off; b = b->reg_next) {
		pthread_mutex_lock(&b->lock);
		off = b->dead && b->undone;
		pthread_mutex_unlock(&b->lock);
	}
	pthread_mutex_unlock(&reg_lock);
	return off;
}
