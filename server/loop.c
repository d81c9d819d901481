/*
 * loop.c - workers, connections and their buffers (see loop.h).
 *
 * epoll is level-triggered: a connection asks for EPOLLIN while its input region has room
 * and for EPOLLOUT while it has replies queued, so a slow reader holds at most one input
 * region and one output region of server memory and costs no CPU while it waits.
 *
 * epoll user data: the connection's slot index, or one of the LOOP_TAG_* values.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "metrics.h"
#include "proto_lm.h"
#include "proto_native.h"

#define LOOP_TAG_LISTEN (1ull << 40) /* | listener index */
#define LOOP_TAG_STOP	(2ull << 40)
#define LOOP_TAG_DONE	(3ull << 40)
#define CONN_ZOMBIE	(-2) /* closed, but a load still writes into its buffers */
#define LOOP_EVENTS_MAX 64
#define LOOP_READS_MAX	16	    /* reads per readiness event, so no client starves others */
#define LOOP_KEEP_BYTES (32u << 20) /* pages of a buffer kept after a large request */

/* Releases the views whose pieces are all sent (all of them with all = 1). */
static void conn_release_views(struct conn *c, int all)
{
	while (c->views_first < c->views_n &&
	       (all || c->views[c->views_first].iov_last < c->iov_first)) {
		struct conn_view *v = &c->views[c->views_first++];
		kvg_view_release(c->w->srv->grid, v->view);
		c->lent_bytes -= v->bytes;
	}
	if (c->views_first == c->views_n)
		c->views_first = c->views_n = 0;
}

void conn_drop_output(struct conn *c)
{
	conn_release_views(c, 1);
	c->iov_first = c->iov_n = 0;
	c->out_len = 0;
}

static void conn_close(struct conn *c)
{
	struct worker *w = c->w;
	conn_drop_output(c);
	if (c->fill_state != FILL_NONE) { /* a value cut short: its room goes back */
		kv_fill_abort(w->srv, &c->fill);
		c->fill_state = FILL_NONE;
	}
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	if (c->req) {
		c->fd = CONN_ZOMBIE; /* the slot is freed when the load completes */
	} else {
		/* the slot keeps its address space for the next connection, not the pages */
		madvise(c->in, c->in_cap, MADV_DONTNEED);
		madvise(c->out, c->out_cap, MADV_DONTNEED);
		c->in_high = c->out_high = 0;
	}
	w->open--;
	metrics_sub(&w->srv->metrics->conns_open, 1);
}

static void conn_set_events(struct conn *c)
{
	uint32_t ev = 0;
	if (!c->closing && (c->in_end < c->in_cap || c->fill_state == FILL_VALUE))
		ev |= EPOLLIN;
	if (c->iov_n > c->iov_first || c->more)
		ev |= EPOLLOUT; /* with `more`: writable at once, so the loop comes back to us */
	if (ev == c->events)
		return;
	struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)(c - c->w->conns)};
	epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &e);
	c->events = ev;
}

void conn_emit(struct conn *c, uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	struct iovec *last = c->iov_n ? &c->iov[c->iov_n - 1] : NULL;
	uint8_t *tail = c->out + c->out_len;
	if (last && (uint8_t *)last->iov_base + last->iov_len == p) {
		last->iov_len += n;
	} else if (c->iov_n < CONN_IOV_MAX) {
		/* the loop keeps room for a handler's segments (see conn_can_parse) */
		c->iov[c->iov_n].iov_base = p;
		c->iov[c->iov_n].iov_len = n;
		c->iov_n++;
	} else if ((uint8_t *)last->iov_base + last->iov_len == tail && p >= tail) {
		/* no room for another segment (a reply of many values, as MGET's): the bytes
		 * move down to join the last one */
		memmove(tail, p, n);
		last->iov_len += n;
		p = tail;
	} else {
		/* nothing can join: the reply cannot be sent whole, the peer gets a closed
		 * connection rather than a reply with a hole */
		c->closing = 1;
		return;
	}
	size_t end = (size_t)(p + n - c->out);
	if (end > c->out_len)
		c->out_len = end;
	if (c->out_len > c->out_high)
		c->out_high = c->out_len;
}

int conn_emit_view(struct conn *c, const struct iovec *iov, int n, kvg_view *view, size_t bytes)
{
	if (n > conn_view_room(c))
		return -1;
	if (n == 0) { /* nothing to send from it */
		kvg_view_release(c->w->srv->grid, view);
		return 0;
	}
	memcpy(c->iov + c->iov_n, iov, sizeof(*iov) * (size_t)n);
	c->views[c->views_n++] = (struct conn_view){
	    .view = view, .iov_from = c->iov_n, .iov_last = c->iov_n + n - 1, .bytes = bytes};
	c->iov_n += n;
	c->lent_bytes += bytes;
	return 0;
}

int conn_write(struct conn *c, const void *p, size_t n)
{
	if (conn_out_room(c) < n || c->iov_n >= CONN_IOV_MAX)
		return -1;
	uint8_t *dst = conn_out_tail(c);
	memcpy(dst, p, n);
	conn_emit(c, dst, n);
	return 0;
}

/* Sends what is queued; 0 when all is sent or the socket is full, -1 on a dead socket. */
static int conn_flush(struct conn *c)
{
	struct metrics *m = c->w->srv->metrics;
	while (c->iov_first < c->iov_n) {
		ssize_t r = writev(c->fd, c->iov + c->iov_first, c->iov_n - c->iov_first);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		metrics_add(&m->bytes_out, (uint64_t)r);
		size_t left = (size_t)r;
		while (left && left >= c->iov[c->iov_first].iov_len)
			left -= c->iov[c->iov_first++].iov_len;
		if (left) {
			c->iov[c->iov_first].iov_base =
			    (uint8_t *)c->iov[c->iov_first].iov_base + left;
			c->iov[c->iov_first].iov_len -= left;
		}
		conn_release_views(c, 0);
	}
	conn_release_views(c, 1);
	c->iov_first = c->iov_n = 0;
	c->out_len = 0;
	if (c->out_high > LOOP_KEEP_BYTES && !c->req) { /* (a load may be writing there) */
		madvise(c->out + LOOP_KEEP_BYTES, c->out_high - LOOP_KEEP_BYTES, MADV_DONTNEED);
		c->out_high = 0;
	}
	return 0;
}

void conn_push(struct conn *c)
{
	size_t pending = 0;
	for (int i = c->iov_first; i < c->iov_n; i++)
		pending += c->iov[i].iov_len;
	/* a dead socket is found and closed by the caller's next flush */
	if (pending >= CONN_PUSH_BYTES && conn_flush(c) < 0) {
		conn_drop_output(c);
		c->closing = 1;
	}
}

/* Parsing goes on while one more largest reply and its segments fit. */
static int conn_can_parse(const struct conn *c)
{
	return conn_out_room(c) >= c->w->reply_reserve && c->iov_n + 8 <= CONN_IOV_MAX &&
	       c->lent_bytes < c->w->reply_reserve;
}

static int conn_sniff(struct conn *c)
{
	const uint8_t *p = c->in + c->in_start;
	size_t n = c->in_end - c->in_start;
	int letter = (p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z');
	if (n >= 4 && nat_sniff(p, n))
		c->proto = PROTO_NATIVE;
	else if (n >= 4 && lmp_sniff(p, n))
		c->proto = PROTO_LM;
	else if (p[0] == 'K' && n < 4 && !memchr(p, '\n', n))
		return 0; /* "KVGN" (native) or an inline command: wait and see */
	else if (p[0] == '*' || letter)
		c->proto = PROTO_RESP;
	else if (n < 4)
		return 0;
	else
		return -1;
	return 1;
}

/* Moves a partial request to the front when that is cheap or necessary. */
static void conn_compact(struct conn *c)
{
	size_t n = c->in_end - c->in_start;
	if (n == 0) {
		if (c->in_high > LOOP_KEEP_BYTES) {
			madvise(c->in + LOOP_KEEP_BYTES, c->in_high - LOOP_KEEP_BYTES,
				MADV_DONTNEED);
			c->in_high = 0;
		}
		c->in_start = c->in_end = CONN_IN_HEADROOM;
		return;
	}
	if (c->in_start == CONN_IN_HEADROOM)
		return;
	if (n <= 65536 || c->in_end == c->in_cap) {
		memmove(c->in + CONN_IN_HEADROOM, c->in + c->in_start, n);
		c->in_start = CONN_IN_HEADROOM;
		c->in_end = CONN_IN_HEADROOM + n;
	}
}

/* Handles the complete requests in the input; returns how many. */
/* The protocol's receive path for a large value in the pending input (see loop.h). */
static ssize_t conn_try_fill(struct conn *c)
{
	uint8_t *p = c->in + c->in_start;
	size_t n = c->in_end - c->in_start;
	if (c->proto == PROTO_RESP)
		return hresp_try_fill(c, p, n);
	if (c->proto == PROTO_LM)
		return hlm_try_fill(c, p, n);
	return 0;
}

static ssize_t conn_fill_end(struct conn *c)
{
	uint8_t *p = c->in + c->in_start;
	size_t n = c->in_end - c->in_start;
	return c->proto == PROTO_RESP ? hresp_fill_end(c, p, n) : hlm_fill_end(c, p, n);
}

static int conn_process(struct conn *c)
{
	static const conn_handler_fn handler[] = {NULL, hresp_handle, hlm_handle, hnat_handle};
	int done = 0;
	/* (a value that is complete may have nothing after it: lm:// publishes it at once) */
	while (!c->closing && !c->req && c->fill_state != FILL_VALUE &&
	       (c->in_end > c->in_start || c->fill_state == FILL_DONE) && conn_can_parse(c)) {
		if (c->fill_state == FILL_DONE) {
			ssize_t r = conn_fill_end(c);
			if (r == 0 && c->fill_state == FILL_DONE)
				break;
			if (r < 0) {
				c->closing = 1;
				break;
			}
			metrics_add(&c->w->srv->metrics->requests[c->proto], 1);
			c->in_start += (size_t)r;
			done++;
			continue;
		}
		if (c->proto == PROTO_ANY) {
			int r = conn_sniff(c);
			if (r == 0)
				break;
			if (r < 0) {
				metrics_add(&c->w->srv->metrics->proto_errors, 1);
				c->closing = 1;
				break;
			}
		}
		ssize_t r = handler[c->proto](c, c->in + c->in_start, c->in_end - c->in_start);
		if (r < 0) {
			c->closing = 1;
			break;
		}
		if (r == 0 && (r = conn_try_fill(c)) > 0) {
			c->in_start += (size_t)r; /* the rest of the value goes to the arena */
			break;
		}
		if (r == 0) {
			if (c->in_start == CONN_IN_HEADROOM && c->in_end == c->in_cap) {
				/* a request that can never fit: the parsers bound each part, not
				 * the sum of a request's arguments */
				metrics_add(&c->w->srv->metrics->proto_errors, 1);
				c->closing = 1;
			}
			break;
		}
		metrics_add(&c->w->srv->metrics->requests[c->proto], 1);
		c->in_start += (size_t)r;
		done++;
		conn_push(c);
	}
	conn_compact(c);
	return done;
}

/* One read of at most max bytes into the input region: the bytes read, 0 at EOF, or -1 with
 * errno. */
static ssize_t conn_read_in(struct conn *c, size_t max)
{
	ssize_t r;
	do
		r = read(c->fd, c->in + c->in_end, max);
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		metrics_add(&c->w->srv->metrics->bytes_in, (uint64_t)r);
		c->in_end += (size_t)r;
		if (c->in_end > c->in_high)
			c->in_high = c->in_end;
	}
	return r;
}

/* One read into a large value's arena room (FILL_VALUE); as conn_read_in. */
static ssize_t conn_read_fill(struct conn *c)
{
	struct kv_fill *f = &c->fill;
	ssize_t r;
	do
		r = readv(c->fd, f->iov + f->first, f->n - f->first);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r;
	metrics_add(&c->w->srv->metrics->bytes_in, (uint64_t)r);
	f->left -= (size_t)r;
	size_t left = (size_t)r;
	while (left && left >= f->iov[f->first].iov_len)
		left -= f->iov[f->first++].iov_len;
	if (left) {
		f->iov[f->first].iov_base = (uint8_t *)f->iov[f->first].iov_base + left;
		f->iov[f->first].iov_len -= left;
	}
	if (f->left == 0)
		c->fill_state = FILL_DONE; /* then what follows, as usual */
	return r;
}

/*
 * Reads what the socket has; returns 1 on EOF, -1 on a dead socket.
 *
 * At the start of a RESP or lm:// request its head is read alone first: if it carries a
 * large value (a SET, a PUT), the value goes straight to the arena (conn_try_fill) instead
 * of through the input region.  That costs one more read when the first fills
 * LOOP_HEAD_BYTES and is not such a request.
 */
static int conn_read(struct conn *c)
{
	ssize_t r;
	for (;;) {
		while (c->fill_state == FILL_VALUE)
			if ((r = conn_read_fill(c)) <= 0)
				goto out;
		if ((c->proto != PROTO_RESP && c->proto != PROTO_LM) ||
		    c->fill_state != FILL_NONE || c->in_start != c->in_end || c->req ||
		    c->closing || !c->tenant || c->in_cap - c->in_end < LOOP_HEAD_BYTES)
			break;
		if ((r = conn_read_in(c, LOOP_HEAD_BYTES)) <= 0)
			goto out;
		if ((size_t)r < LOOP_HEAD_BYTES)
			return 0; /* that is all there is */
		ssize_t k = conn_try_fill(c);
		if (k <= 0)
			break;
		c->in_start += (size_t)k;
		conn_compact(c);
	}
	for (int i = 0; i < LOOP_READS_MAX && c->in_end < c->in_cap; i++) {
		size_t room = c->in_cap - c->in_end;
		if ((r = conn_read_in(c, room)) <= 0)
			goto out;
		if ((size_t)r < room)
			break;
	}
	return 0;
out:
	return r == 0 ? 1 : errno == EAGAIN ? 0 : -1;
}

/* One readiness event: read, parse and reply, again while replies leave at once and parsing
 * had stopped for lack of output room. */
static void conn_event(struct conn *c, uint32_t ev)
{
	int eof = 0;
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		int r = conn_read(c);
		if (r < 0) {
			conn_close(c);
			return;
		}
		eof = r > 0;
	}
	/* a few rounds, then other connections get their turn (see `more`) */
	c->more = 0;
	for (int round = 0;; round++) {
		int done = conn_process(c);
		/* parsing stopped for lack of output room, not for an incomplete request */
		int blocked = c->in_end > c->in_start && !conn_can_parse(c);
		if (conn_flush(c) < 0) {
			conn_close(c);
			return;
		}
		/* go on only while replies leave at once and requests wait */
		if (c->iov_n > 0 || c->closing || (done == 0 && !blocked) ||
		    c->in_end == c->in_start)
			break;
		if (round == 16) {
			c->more = 1;
			break;
		}
	}
	if (eof) /* what was complete is answered; a request cut short is dropped */
		c->closing = 1;
	/* a reply still being loaded is sent first, unless the peer is gone altogether */
	if (c->closing && c->iov_n == 0 && (!c->req || (ev & (EPOLLHUP | EPOLLERR)))) {
		conn_close(c);
		return;
	}
	conn_set_events(c);
}

/* Grid thread: a load of conn_load_async finished; hand the connection to its worker. */
static void conn_load_done(kvg_req *req, void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;
	pthread_mutex_lock(&w->done_lock);
	c->done_next = w->done_head;
	w->done_head = c;
	pthread_mutex_unlock(&w->done_lock);
	uint64_t one = 1;
	if (write(w->done_fd, &one, sizeof(one)) < 0)
		srv_log("kvgridd: cannot wake worker %d", w->id);
}

int conn_load_async(struct conn *c, const kvg_key *key, uint8_t *dst, size_t cap,
		    void (*finish)(struct conn *c, int status))
{
	c->io = (struct kvg_io){.key = *key, .buf = dst, .len = cap};
	c->finish = finish;
	struct kvg_req_opts o = {.done = conn_load_done, .arg = c};
	kvg_req *req = NULL;
	/* c->req is set before the load can complete: the callback only queues c */
	int rc = kvg_load(c->w->srv->grid, &c->io, 1, &o, &req);
	if (rc == 0) {
		c->req = req;
		metrics_add(&c->w->srv->metrics->async_loads, 1);
	}
	return rc;
}

/* Worker: finishes the connections whose loads completed. */
static void loop_done(struct worker *w)
{
	uint64_t n;
	if (read(w->done_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&w->done_lock);
	struct conn *list = w->done_head;
	w->done_head = NULL;
	pthread_mutex_unlock(&w->done_lock);
	while (list) {
		struct conn *c = list;
		list = c->done_next;
		int rc = kvg_req_wait(c->req, -1);
		if (rc == 0)
			rc = c->io.status;
		kvg_req_free(c->req);
		c->req = NULL;
		if (c->fd == CONN_ZOMBIE) { /* closed meanwhile: now the slot is free */
			madvise(c->in, c->in_cap, MADV_DONTNEED);
			madvise(c->out, c->out_cap, MADV_DONTNEED);
			c->in_high = c->out_high = 0;
			c->fd = -1;
			continue;
		}
		c->finish(c, rc);
		conn_event(c, 0);
	}
}

static void *loop_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void loop_accept(struct worker *w, int lfd, int proto)
{
	struct srv *s = w->srv;
	for (int k = 0; k < 16; k++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct conn *c = NULL;
		for (uint32_t i = 0; i < w->n_conns && !c; i++)
			if (w->conns[i].fd == -1)
				c = &w->conns[i];
		if (!c) {
			metrics_add(&s->metrics->conns_refused, 1);
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (!c->in) {
			/* reserved once per slot, reused by every connection the slot serves */
			c->in_cap = CONN_IN_HEADROOM + s->cfg.frame_max;
			c->out_cap = 2 * w->reply_reserve;
			c->in = loop_map(c->in_cap);
			c->out = loop_map(c->out_cap);
			if (!c->in || !c->out) {
				srv_log("kvgridd: cannot reserve connection buffers");
				if (c->in)
					munmap(c->in, c->in_cap);
				c->in = NULL;
				close(fd);
				continue;
			}
		}
		c->fd = fd;
		c->w = w;
		c->proto = (uint8_t)proto;
		c->closing = 0;
		c->more = 0;
		c->tenant = s->auth ? NULL : &s->tenants[0];
		c->in_start = c->in_end = CONN_IN_HEADROOM;
		c->out_len = 0;
		c->iov_first = c->iov_n = 0;
		c->views_first = c->views_n = 0;
		c->lent_bytes = 0;
		c->fill_state = FILL_NONE;
		c->events = EPOLLIN;
		struct epoll_event e = {.events = EPOLLIN, .data.u64 = (uint64_t)(c - w->conns)};
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
			c->fd = -1;
			close(fd);
			continue;
		}
		w->open++;
		metrics_add(&s->metrics->conns_open, 1);
		metrics_add(&s->metrics->conns_total, 1);
	}
}

/* reuseport 0: a probe that fails if anything (another kvgridd too) holds the port. */
static int loop_listen_one(const char *addr, int port, int reuseport, char *err, size_t err_len)
{
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr *sa = (struct sockaddr *)&a4;
	socklen_t len = sizeof(a4);
	int family = AF_INET;
	if (inet_pton(AF_INET, addr, &a4.sin_addr) != 1) {
		if (inet_pton(AF_INET6, addr, &a6.sin6_addr) != 1) {
			snprintf(err, err_len, "bind: '%s' is not an IPv4 or IPv6 address", addr);
			return -EINVAL;
		}
		sa = (struct sockaddr *)&a6;
		len = sizeof(a6);
		family = AF_INET6;
	}
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, sa, len) < 0 || listen(fd, 1024) < 0) {
		int rc = -errno;
		snprintf(err, err_len, "cannot listen on %s:%d: %s", addr, port, strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

static int loop_bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int loop_worker_init(struct srv *s, struct worker *w, int id)
{
	w->srv = s;
	w->id = id;
	w->reply_reserve = s->cfg.value_max + KVG_KEY_BYTES * 2 + 4096;
	w->n_conns = (s->cfg.conns_max + s->cfg.threads - 1) / s->cfg.threads;
	w->conns = calloc(w->n_conns, sizeof(*w->conns));
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	for (int i = 0; i < SRV_LISTENERS_MAX; i++)
		w->listen_fd[i] = -1;
	if (!w->conns || w->epfd < 0 || w->stop_fd < 0 || w->done_fd < 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < w->n_conns; i++)
		w->conns[i].fd = -1;
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = LOOP_TAG_STOP};
	struct epoll_event d = {.events = EPOLLIN, .data.u64 = LOOP_TAG_DONE};
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->stop_fd, &e) < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->done_fd, &d) < 0)
		return -errno;
	return 0;
}

int loop_open(struct srv *s, struct worker **out, char *err, size_t err_len)
{
	uint32_t n = s->cfg.threads;
	int has_err = err && err_len; /* err may be NULL (err_len 0) */
	if (has_err)
		err[0] = 0;
	struct worker *ws = calloc(n, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		ws[i].epfd = ws[i].stop_fd = ws[i].done_fd = -1;
		pthread_mutex_init(&ws[i].done_lock, NULL);
		for (int l = 0; l < SRV_LISTENERS_MAX; l++)
			ws[i].listen_fd[l] = -1;
	}
	int rc = 0;
	for (uint32_t i = 0; i < n && rc == 0; i++)
		rc = loop_worker_init(s, &ws[i], (int)i);
	for (int l = 0; l < s->cfg.n_listen && rc == 0; l++) {
		if (s->cfg.listen[l].port != 0) {
			/* SO_REUSEPORT would let a second server share the port and take half of
			 * its connections: make sure the port is free first */
			int probe =
			    loop_listen_one(s->cfg.bind, s->cfg.listen[l].port, 0, err, err_len);
			if (probe < 0) {
				rc = probe;
				break;
			}
			close(probe);
		}
		for (uint32_t i = 0; i < n && rc == 0; i++) {
			int fd =
			    loop_listen_one(s->cfg.bind, s->cfg.listen[l].port, 1, err, err_len);
			if (fd < 0) {
				rc = fd;
				break;
			}
			ws[i].listen_fd[l] = fd;
			if (s->cfg.listen[l].port == 0) /* the others reuse the port this one got */
				s->cfg.listen[l].port = loop_bound_port(fd);
			struct epoll_event e = {.events = EPOLLIN,
						.data.u64 = LOOP_TAG_LISTEN | (uint64_t)l};
			if (epoll_ctl(ws[i].epfd, EPOLL_CTL_ADD, fd, &e) < 0)
				rc = -errno;
		}
	}
	if (rc) {
		if (has_err && !err[0])
			snprintf(err, err_len, "cannot start workers: %s", strerror(-rc));
		loop_close(ws, n);
		return rc;
	}
	*out = ws;
	return 0;
}

/* Shutdown: stop accepting, answer what is complete, send it for up to drain_ms. */
static void loop_drain(struct worker *w)
{
	for (int l = 0; l < SRV_LISTENERS_MAX; l++) {
		if (w->listen_fd[l] >= 0) {
			close(w->listen_fd[l]);
			w->listen_fd[l] = -1;
		}
	}
	for (uint32_t i = 0; i < w->n_conns; i++) {
		struct conn *c = &w->conns[i];
		if (c->fd < 0)
			continue;
		conn_process(c);
		c->closing = 1;
		if (conn_flush(c) < 0 || (c->iov_n == 0 && !c->req))
			conn_close(c);
		else
			conn_set_events(c);
	}
	uint64_t deadline = metrics_now_us() + (uint64_t)w->srv->cfg.drain_ms * 1000;
	struct epoll_event ev[LOOP_EVENTS_MAX];
	while (w->open > 0 && metrics_now_us() < deadline) {
		int n = epoll_wait(w->epfd, ev, LOOP_EVENTS_MAX, 50);
		for (int i = 0; i < n; i++) {
			uint64_t tag = ev[i].data.u64;
			if (tag == LOOP_TAG_DONE)
				loop_done(w);
			else if (tag < LOOP_TAG_LISTEN && w->conns[tag].fd >= 0)
				conn_event(&w->conns[tag], ev[i].events);
		}
	}
	for (uint32_t i = 0; i < w->n_conns; i++)
		if (w->conns[i].fd >= 0)
			conn_close(&w->conns[i]);
	for (uint32_t i = 0; i < w->n_conns; i++) { /* loads in flight write into buffers */
		struct conn *c = &w->conns[i];
		if (c->req) {
			kvg_req_free(c->req); /* waits for it */
			c->req = NULL;
			c->fd = -1;
		}
	}
}

void *loop_run(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[LOOP_EVENTS_MAX];
	while (!w->stopping) {
		int n = epoll_wait(w->epfd, ev, LOOP_EVENTS_MAX, -1);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			uint64_t tag = ev[i].data.u64;
			if (tag == LOOP_TAG_STOP)
				w->stopping = 1;
			else if (tag == LOOP_TAG_DONE)
				loop_done(w);
			else if (tag >= LOOP_TAG_LISTEN)
				loop_accept(w, w->listen_fd[tag & 0xff],
					    w->srv->cfg.listen[tag & 0xff].proto);
			else if (w->conns[tag].fd >= 0)
				conn_event(&w->conns[tag], ev[i].events);
		}
	}
	loop_drain(w);
	return NULL;
}

void loop_stop(struct worker *ws, uint32_t n)
{
	uint64_t one = 1;
	for (uint32_t i = 0; i < n; i++)
		if (write(ws[i].stop_fd, &one, sizeof(one)) < 0)
			srv_log("kvgridd: cannot wake worker %u", i);
}

void loop_close(struct worker *ws, uint32_t n)
{
	if (!ws)
		return;
	for (uint32_t i = 0; i < n; i++) {
		struct worker *w = &ws[i];
		for (int l = 0; l < SRV_LISTENERS_MAX; l++)
			if (w->listen_fd[l] >= 0)
				close(w->listen_fd[l]);
		for (uint32_t k = 0; w->conns && k < w->n_conns; k++) {
			struct conn *c = &w->conns[k];
			if (c->fd >= 0)
				close(c->fd);
			if (c->fill_state != FILL_NONE)
				kv_fill_abort(w->srv, &c->fill);
			if (c->in)
				munmap(c->in, c->in_cap);
			if (c->out)
				munmap(c->out, c->out_cap);
			free(c->get_keys);
		}
		free(w->conns);
		if (w->epfd >= 0)
			close(w->epfd);
		if (w->stop_fd >= 0)
			close(w->stop_fd);
		if (w->done_fd >= 0)
			close(w->done_fd);
		pthread_mutex_destroy(&w->done_lock);
	}
	free(ws);
}
