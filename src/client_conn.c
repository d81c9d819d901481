/*
 * client_conn.c - a kvgridd node's pool of connections, for client.c (see client_int.h,
 * proto_native.h and doc/PROTOCOL.md).
 *
 * A connection is made on first use: a non-blocking TCP connect, then HELLO with the
 * protocol version and the auth token, whose reply gives the node's frame limit.  Bytes go
 * out with sendmsg and come back with recv, both non-blocking and waiting in poll, so that
 * no call waits past its deadline (cfg.timeout_ms per node).  client_call() frames a request
 * with a small reply; client.c builds its batched PUT and GET frames in the same scratch
 * buffer (allocated at open: a call allocates nothing) and sends them with client_sendv().
 * A node that fails (connect, I/O, timeout, protocol) is closed and left out for
 * CLIENT_RETRY_MS: its generation moves, so its other connections are stale and are closed
 * when next taken, and the next call after that tries to reconnect it.
 *
 * Threads and locking.  A pool of up to CLIENT_POOL connections per node, each guarded by
 * its own mutex, so any number of threads may call in (a caller alone always reuses the
 * first).  client_node_get() returns a connection locked; every other function that takes
 * a connection expects its lock held and leaves it held (but for client_conn_init() and
 * client_conn_free(), at open and close).  A node's shared fields (down_until_ms, gen,
 * frame_max, next, live) are atomics.  A node that refuses an extra connection while others
 * of the pool are up (a server at its connection limit) is not failed: the caller waits for
 * one of the live ones.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client_int.h"

#define CLIENT_RETRY_MS 1000

static uint64_t client_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits until fd is ready for events or the deadline passes: 0, KVG_ETIMEDOUT, -errno. */
static int client_wait(int fd, short events, uint64_t deadline_ms)
{
	for (;;) {
		uint64_t now = client_now_ms();
		if (now >= deadline_ms)
			return KVG_ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, (int)(deadline_ms - now));
		if (r > 0)
			return (p.revents & (POLLERR | POLLNVAL)) && !(p.revents & events) ? -EPIPE
											   : 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* Sends all of iov (modified in place). */
int client_sendv(int fd, struct iovec *iov, int cnt, uint64_t deadline_ms)
{
	while (cnt > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)(cnt > 1024 ? 1024 : cnt)};
		ssize_t r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			int rc = client_wait(fd, POLLOUT, deadline_ms);
			if (rc)
				return rc;
			continue;
		}
		size_t left = (size_t)r;
		while (cnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* Receives exactly len bytes into buf (NULL: discard them). */
int client_recv(int fd, void *buf, size_t len, uint64_t deadline_ms)
{
	uint8_t sink[4096];
	while (len > 0) {
		uint8_t *dst = buf ? buf : sink;
		size_t want = buf ? len : (len < sizeof(sink) ? len : sizeof(sink));
		ssize_t r = recv(fd, dst, want, MSG_DONTWAIT);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			int rc = client_wait(fd, POLLIN, deadline_ms);
			if (rc)
				return rc;
			continue;
		}
		if (buf)
			buf = (uint8_t *)buf + r;
		len -= (size_t)r;
	}
	return 0;
}

static void client_conn_close(struct client_conn *n)
{
	if (n->fd < 0)
		return;
	close(n->fd);
	n->fd = -1;
	__atomic_fetch_sub(&n->node->live, 1, __ATOMIC_RELAXED);
}

/* Leaves a node out for CLIENT_RETRY_MS; its connections are stale from now on (its
 * generation moves). */
static void client_node_down(struct client_node *nd)
{
	__atomic_fetch_add(&nd->gen, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&nd->down_until_ms, client_now_ms() + CLIENT_RETRY_MS, __ATOMIC_RELAXED);
}

/* Closes a connection that failed and leaves its node out (client_node_down). */
void client_node_fail(struct client_conn *n)
{
	client_conn_close(n);
	client_node_down(n->node);
}

/* Reads a reply header for request (op, id) and checks it belongs to it. */
int client_read_hdr(struct client_conn *n, uint8_t op, uint64_t id, uint64_t deadline,
		    struct nat_hdr *h)
{
	uint8_t b[NAT_HDR_BYTES];
	int rc = client_recv(n->fd, b, sizeof(b), deadline);
	if (rc)
		return rc;
	const char *why;
	if (nat_hdr_decode(b, UINT32_MAX, 0, h, &why) < 0 || h->op != op || h->id != id)
		return KVG_EPROTO;
	return 0;
}

/*
 * One request with a small reply: sends header + body (body_len bytes already written at
 * scratch + NAT_HDR_BYTES), reads the reply body into reply (cap bytes).  Returns the reply
 * status (0 or an error) with *reply_len set, or a transport error (the node is failed).
 */
static int client_call_raw(struct client_conn *n, uint8_t op, uint32_t body_len, uint8_t *reply,
			   size_t cap, size_t *reply_len, uint64_t deadline, int *transport)
{
	struct nat_hdr h = {.op = op, .id = ++n->next_id, .body_len = body_len};
	nat_hdr_encode(n->scratch, &h);
	struct iovec iov = {.iov_base = n->scratch, .iov_len = NAT_HDR_BYTES + body_len};
	struct nat_hdr r;
	int rc = client_sendv(n->fd, &iov, 1, deadline);
	if (!rc)
		rc = client_read_hdr(n, op, h.id, deadline, &r);
	if (!rc && r.body_len > cap)
		rc = KVG_EPROTO;
	if (!rc)
		rc = client_recv(n->fd, reply, r.body_len, deadline);
	*transport = rc != 0;
	if (rc)
		return rc;
	*reply_len = r.body_len;
	return r.status;
}

int client_call(struct client_conn *n, uint8_t op, uint32_t body_len, uint8_t *reply, size_t cap,
		size_t *reply_len, uint64_t deadline)
{
	int transport;
	int rc = client_call_raw(n, op, body_len, reply, cap, reply_len, deadline, &transport);
	if (transport)
		client_node_fail(n);
	return rc;
}

static int client_connect(struct client *c, struct client_conn *n, uint64_t deadline)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	if (getaddrinfo(n->node->host, n->node->port, &hints, &ai))
		return -EHOSTUNREACH;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rc = fd < 0 ? -errno : 0;
	if (!rc && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
		rc = -errno;
	freeaddrinfo(ai);
	if (!rc)
		rc = client_wait(fd, POLLOUT, deadline);
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (!rc && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr))
		rc = soerr ? -soerr : -errno;
	if (rc) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	n->fd = fd;
	n->gen = __atomic_load_n(&n->node->gen, __ATOMIC_RELAXED);
	__atomic_fetch_add(&n->node->live, 1, __ATOMIC_RELAXED);
	uint8_t *b = n->scratch + NAT_HDR_BYTES;
	nat_put_u32(b, NAT_VERSION);
	nat_put_u32(b + 4, (uint32_t)c->token_len);
	memcpy(b + 8, c->token, c->token_len);
	uint8_t rep[64];
	size_t len = 0;
	int transport;
	rc = client_call_raw(n, NAT_HELLO, 8 + (uint32_t)c->token_len, rep, sizeof(rep), &len,
			     deadline, &transport);
	if (rc == 0 && len < 24)
		rc = KVG_EPROTO;
	if (rc) {
		client_conn_close(n);
		return rc;
	}
	__atomic_store_n(&n->node->frame_max, nat_get_u64(rep + 16), __ATOMIC_RELAXED);
	__atomic_store_n(&n->node->down_until_ms, 0, __ATOMIC_RELAXED);
	return 0;
}

int client_node_up(struct client *c, uint32_t i)
{
	/* a racy read is fine: it only steers keys, and a wrong guess costs one miss */
	return __atomic_load_n(&c->node[i].down_until_ms, __ATOMIC_RELAXED) <= client_now_ms();
}

/*
 * Takes a connection of node i's pool (a free one if any, else waits for one), connected:
 * returns 0 with *out locked, or an error with nothing held.
 */
int client_node_get(struct client *c, uint32_t i, uint64_t deadline, struct client_conn **out)
{
	struct client_node *nd = &c->node[i];
	struct client_conn *n = NULL;
	/* the lowest free one: a caller alone always reuses the first connection */
	for (uint32_t p = 0; p < CLIENT_POOL && !n; p++)
		if (pthread_mutex_trylock(&nd->conn[p].lock) == 0)
			n = &nd->conn[p];
	if (!n) {
		n = &nd->conn[__atomic_fetch_add(&nd->next, 1, __ATOMIC_RELAXED) % CLIENT_POOL];
		pthread_mutex_lock(&n->lock);
	}
	if (n->fd >= 0 && n->gen != __atomic_load_n(&nd->gen, __ATOMIC_RELAXED))
		client_conn_close(n); /* made before the node last failed */
	int rc = 0;
	if (n->fd < 0)
		rc = client_node_up(c, i) ? client_connect(c, n, deadline) : -ECONNREFUSED;
	if (rc) {
		pthread_mutex_unlock(&n->lock);
		if (rc == -ECONNREFUSED && !client_node_up(c, i))
			return rc;
		/* the node still serves our other connections (it may be at its connection
		 * limit): share one of them rather than give the node up */
		if (__atomic_load_n(&nd->live, __ATOMIC_RELAXED) > 0)
			for (uint32_t p = 0; p < CLIENT_POOL; p++) {
				struct client_conn *o = &nd->conn[p];
				pthread_mutex_lock(&o->lock);
				if (o->fd >= 0 &&
				    o->gen == __atomic_load_n(&nd->gen, __ATOMIC_RELAXED)) {
					*out = o;
					return 0;
				}
				pthread_mutex_unlock(&o->lock);
			}
		client_node_down(nd);
		return rc;
	}
	*out = n;
	return 0;
}

uint64_t client_deadline(const struct client *c)
{
	return client_now_ms() + (uint64_t)c->timeout_ms;
}

int client_conn_init(struct client_conn *n, struct client_node *nd)
{
	n->node = nd;
	n->fd = -1;
	n->iov = malloc(CLIENT_IOV_MAX * sizeof(*n->iov));
	n->scratch = n->iov ? malloc(CLIENT_SCRATCH_BYTES) : NULL;
	if (!n->scratch) {
		free(n->iov);
		n->iov = NULL;
		return -ENOMEM;
	}
	pthread_mutex_init(&n->lock, NULL);
	return 0;
}

void client_conn_free(struct client_conn *n)
{
	if (n->fd >= 0)
		close(n->fd);
	pthread_mutex_destroy(&n->lock);
	free(n->scratch);
	free(n->iov);
}
