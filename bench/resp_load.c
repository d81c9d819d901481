/*
 * resp_load.c - a lean RESP load generator, so that a comparison of two servers measures the
 * servers and not the client.  redis-benchmark parses every reply through a growing buffer
 * (several copies of a 1 MiB value); this client reads a value with one recv into a buffer
 * of its own, as an engine would, and is the same for every server it is pointed at.
 *
 *   build/bench/resp_load -p PORT -t get|set -d BYTES -c CONNS -n REQUESTS
 *                         [--threads T] [--keys K] [--discard] [--label NAME] [--prefix P]
 *   build/bench/resp_load --bare -t get|set -d BYTES -c CONNS -n REQUESTS ...
 *
 * CONNS connections, spread over T threads (default 2) with an epoll loop each, each with one
 * request in flight (as redis-benchmark without -P).  Before timing, K keys (default 16) are
 * stored with a random value of BYTES; GETs then read them round robin and check each
 * reply's length and first and last 8 bytes against the stored value (every reply of the
 * first round is compared whole).  --discard receives values with MSG_TRUNC (the kernel drops
 * them without a copy): the client then costs almost nothing, and the servers' own cost
 * decides.  Prints one CSV line: label,op,bytes,conns,rps,gbps,p50_ms,p99_ms,errors.
 *
 * --bare runs the same load against a bare server inside this process: it parses the
 * requests and answers every GET with one prebuilt reply from memory (writev of header, value,
 * CRLF) and every SET with +OK, on --threads threads with an epoll loop and a listening
 * socket (SO_REUSEPORT) each.  It does nothing a real server could skip, so it is the
 * reference for what a RESP server can get from this machine and loopback, measured in the
 * same run (a real server can still come out a little ahead: scheduling differs between one
 * process and two). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

struct opts {
	int port, set, conns, threads, keys, discard;
	size_t bytes;
	long requests;
	const char *label;
	const char *prefix; /* of the keys, "kvgrid:load" by default */
};

struct lconn {
	int fd;
	int key;	      /* key of the request in flight */
	uint64_t t0;	      /* its start, ns */
	size_t sent, req_len; /* of the request being sent */
	char hdr[64];	      /* reply header being read */
	size_t hdr_len;
	int64_t want;  /* value bytes (+ CRLF) still to read; -1: reading the header */
	size_t got;    /* value bytes read */
	char cmd[128]; /* the request's command part */
	size_t cmd_len;
	uint8_t *buf;
	int checked;   /* the first reply of this connection was compared whole */
	int wrong_len; /* the reply being read is not of the expected length */
};

struct lthread {
	const struct opts *o;
	struct lconn *c;
	int n;
	long planned, done, errors;
	uint64_t *lat;
	pthread_t tid;
};

static uint8_t *value;
static long next_key;

/* ---- the bare server: it only parses and answers from memory ------------------------ */

struct sconn {
	int fd;
	int args, state; /* args left in the request; state: 0 array hdr, 1 bulk hdr, 2 data */
	int64_t skip;	 /* bulk bytes (+ CRLF) left to skip */
	char line[64];
	size_t line_len;
	size_t out_off, out_len; /* of the reply being sent; out_len 0: none */
	int events;		 /* registered with epoll */
};

struct sserver {
	size_t bytes;
	char hdr[32];
	size_t hdr_len;
};

static struct sserver bare_srv;

/* Consumes input bytes; returns the number of complete requests seen. */
static int sconn_parse(struct sconn *c, const char *p, size_t n)
{
	int done = 0;
	for (size_t i = 0; i < n;) {
		if (c->state == 2) {
			size_t k = (size_t)c->skip < n - i ? (size_t)c->skip : n - i;
			c->skip -= (int64_t)k;
			i += k;
			if (c->skip == 0 && --c->args == 0)
				done++, c->state = 0;
			else if (c->skip == 0)
				c->state = 1;
			continue;
		}
		char ch = p[i++];
		if (c->line_len < sizeof(c->line) - 1)
			c->line[c->line_len++] = ch;
		if (ch != '\n')
			continue;
		c->line[c->line_len] = 0;
		c->line_len = 0;
		if (c->state == 0) {
			c->args = atoi(c->line + 1);
			c->state = 1;
		} else {
			c->skip = atol(c->line + 1) + 2;
			c->state = 2;
		}
	}
	return done;
}

struct sthread {
	int set, lfd;
};

static void *bare_run(void *arg)
{
	const struct sthread *st = arg;
	int set = st->set, lfd = st->lfd;
	int ep = epoll_create1(0);
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
	char buf[1 << 16];
	struct epoll_event ev[64];
	for (;;) {
		int n = epoll_wait(ep, ev, 64, -1);
		for (int i = 0; i < n; i++) {
			struct sconn *c = ev[i].data.ptr;
			if (!c) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
				if (fd < 0)
					continue;
				int one = 1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				c = calloc(1, sizeof(*c));
				c->fd = fd;
				c->events = EPOLLIN;
				struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
				continue;
			}
			int replies = 0;
			ssize_t r;
			/* a short read has drained the socket: no second call to learn it */
			while ((r = recv(c->fd, buf, sizeof(buf), 0)) > 0) {
				replies += sconn_parse(c, buf, (size_t)r);
				if ((size_t)r < sizeof(buf))
					break;
			}
			if (r == 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				free(c);
				continue;
			}
			/* one request in flight per connection: at most one reply pending */
			if (replies)
				c->out_off = 0,
				c->out_len = set ? 5 : bare_srv.hdr_len + bare_srv.bytes + 2;
			while (c->out_len && c->out_off < c->out_len) {
				struct iovec v[3];
				int k = 0;
				size_t off = c->out_off, hl = set ? 5 : bare_srv.hdr_len;
				const char *h = set ? "+OK\r\n" : bare_srv.hdr;
				if (off < hl)
					v[k++] = (struct iovec){(char *)h + off, hl - off};
				if (!set) {
					size_t vo = off > hl ? off - hl : 0;
					if (vo < bare_srv.bytes)
						v[k++] =
						    (struct iovec){value + vo, bare_srv.bytes - vo};
					size_t to = off > hl + bare_srv.bytes
							? off - hl - bare_srv.bytes
							: 0;
					v[k++] = (struct iovec){(char *)"\r\n" + to, 2 - to};
				}
				ssize_t w = writev(c->fd, v, k);
				if (w <= 0)
					break;
				c->out_off += (size_t)w;
			}
			if (c->out_len && c->out_off == c->out_len)
				c->out_len = 0;
			int want = c->out_len ? EPOLLOUT | EPOLLIN : EPOLLIN;
			if (want != c->events) { /* only when the interest changes */
				struct epoll_event ce = {.events = (uint32_t)want, .data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ce);
				c->events = want;
			}
		}
	}
	return NULL;
}

/* A listening socket on 127.0.0.1:port (0: any) that shares its port (SO_REUSEPORT). */
static int bare_listen(int port, int *bound)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof(a);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 512) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		perror("resp_load: bare server");
		exit(1);
	}
	*bound = ntohs(a.sin_port);
	return fd;
}

/* Starts the bare server on an ephemeral loopback port; returns the port.  Each thread
 * has a listening socket of its own on that port, so the kernel spreads connections. */
static int bare_start(int threads, int set, size_t bytes)
{
	static struct sthread st[64];
	bare_srv.bytes = bytes;
	bare_srv.hdr_len = (size_t)snprintf(bare_srv.hdr, sizeof(bare_srv.hdr), "$%zu\r\n", bytes);
	int port = 0;
	for (int i = 0; i < threads && i < 64; i++) {
		st[i].set = set;
		st[i].lfd = bare_listen(port, &port);
	}
	for (int i = 0; i < threads && i < 64; i++) {
		pthread_t t;
		pthread_create(&t, NULL, bare_run, &st[i]);
		pthread_detach(t);
	}
	return port;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("resp_load: connect");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void start(struct lconn *c, const struct opts *o, int key)
{
	char k[64];
	int kl = snprintf(k, sizeof(k), "%s:%d", o->prefix, key);
	if (kl >= (int)sizeof(k))
		kl = (int)sizeof(k) - 1; /* a long prefix is cut */
	if (o->set)
		c->cmd_len =
		    (size_t)snprintf(c->cmd, sizeof(c->cmd),
				     "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%zu\r\n", kl, k, o->bytes);
	else
		c->cmd_len = (size_t)snprintf(c->cmd, sizeof(c->cmd),
					      "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", kl, k);
	c->req_len = c->cmd_len + (o->set ? o->bytes + 2 : 0);
	c->key = key;
	c->sent = 0;
	c->hdr_len = 0;
	c->want = -1;
	c->got = 0;
	c->wrong_len = 0;
	c->t0 = now_ns();
}

/* Sends what is left of the request; -1 on error. */
static int pump_send(struct lconn *c, const struct opts *o)
{
	while (c->sent < c->req_len) {
		struct iovec v[3];
		int n = 0;
		size_t off = c->sent;
		if (off < c->cmd_len)
			v[n++] = (struct iovec){c->cmd + off, c->cmd_len - off};
		if (o->set) {
			size_t vo = off > c->cmd_len ? off - c->cmd_len : 0;
			if (vo < o->bytes)
				v[n++] = (struct iovec){value + vo, o->bytes - vo};
			size_t to = off > c->cmd_len + o->bytes ? off - c->cmd_len - o->bytes : 0;
			v[n++] = (struct iovec){(char *)"\r\n" + to, 2 - to};
		}
		ssize_t r = writev(c->fd, v, n);
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		c->sent += (size_t)r;
	}
	return 0;
}

/* Reads what has arrived; 1 when the reply is complete (*ok set), 0 if not yet, -1 on error. */
static int pump_recv(struct lconn *c, const struct opts *o, int *ok)
{
	for (;;) {
		if (c->want < 0) {
			ssize_t r =
			    recv(c->fd, c->hdr + c->hdr_len, 1, 0); /* header byte by byte */
			if (r <= 0)
				return r < 0 && errno == EAGAIN ? 0 : -1;
			c->hdr_len++;
			if (c->hdr_len >= 2 && c->hdr[c->hdr_len - 2] == '\r' &&
			    c->hdr[c->hdr_len - 1] == '\n') {
				c->hdr[c->hdr_len - 2] = 0;
				if (o->set) {
					*ok = strcmp(c->hdr, "+OK") == 0;
					return 1;
				}
				long n = c->hdr[0] == '$' ? atol(c->hdr + 1) : -1;
				if (n < 0) {
					*ok = 0;
					return 1; /* a miss or an error: counted */
				}
				/* a value of another length (another writer's key) is read past
				 * and counted as an error */
				c->wrong_len = n != (long)o->bytes;
				c->want = (int64_t)n + 2;
			} else if (c->hdr_len == sizeof(c->hdr) - 1) {
				return -1;
			}
			continue;
		}
		size_t left = (size_t)c->want - c->got;
		if (left == 0)
			break;
		ssize_t r;
		if ((o->discard && c->checked) || c->wrong_len)
			r = recv(c->fd, NULL, left, MSG_TRUNC);
		else
			r = recv(c->fd, c->buf + c->got, left, 0);
		if (r <= 0)
			return r < 0 && errno == EAGAIN ? 0 : -1;
		c->got += (size_t)r;
	}
	*ok = 1;
	if (c->wrong_len) {
		*ok = 0;
	} else if (!c->checked) {
		*ok = memcmp(c->buf, value, o->bytes) == 0 &&
		      memcmp(c->buf + o->bytes, "\r\n", 2) == 0;
		c->checked = 1;
	} else if (!o->discard) {
		size_t b = o->bytes;
		*ok = (b < 8 || (memcmp(c->buf, value, 8) == 0 &&
				 memcmp(c->buf + b - 8, value + b - 8, 8) == 0)) &&
		      memcmp(c->buf + b, "\r\n", 2) == 0;
	}
	return 1;
}

static void *run(void *arg)
{
	struct lthread *t = arg;
	const struct opts *o = t->o;
	int ep = epoll_create1(0);
	long inflight = 0;
	for (int i = 0; i < t->n && t->done + inflight < t->planned; i++) {
		struct lconn *c = &t->c[i];
		start(c, o, (int)(__atomic_fetch_add(&next_key, 1, __ATOMIC_RELAXED) % o->keys));
		struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
		inflight++;
	}
	struct epoll_event ev[64];
	while (inflight > 0) {
		int n = epoll_wait(ep, ev, 64, 10000);
		if (n <= 0) {
			fprintf(stderr, "resp_load: no progress for 10 s\n");
			exit(1);
		}
		for (int i = 0; i < n; i++) {
			struct lconn *c = ev[i].data.ptr;
			int ok = 0, r = 0;
			errno = 0;
			if (pump_send(c, o) < 0)
				r = -1;
			if (r == 0 && c->sent == c->req_len)
				r = pump_recv(c, o, &ok);
			if (r < 0) {
				fprintf(stderr,
					"resp_load: connection lost (%s; reply so far \"%.*s\")\n",
					errno ? strerror(errno) : "closed by the server",
					(int)c->hdr_len, c->hdr);
				exit(1);
			}
			if (r == 0) {
				struct epoll_event e = {.events = c->sent < c->req_len ? EPOLLOUT
										       : EPOLLIN,
							.data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
				continue;
			}
			t->lat[t->done++] = now_ns() - c->t0;
			t->errors += !ok;
			inflight--;
			if (t->done + inflight < t->planned) {
				start(c, o,
				      (int)(__atomic_fetch_add(&next_key, 1, __ATOMIC_RELAXED) %
					    o->keys));
				inflight++;
				pump_send(c, o);
				struct epoll_event e = {.events = c->sent < c->req_len ? EPOLLOUT
										       : EPOLLIN,
							.data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
			}
		}
	}
	close(ep);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Stores every key with the value, on one blocking connection. */
static void preload(const struct opts *o)
{
	struct opts so = *o;
	so.set = 1;
	struct lconn c = {.fd = dial(o->port), .buf = malloc(64)};
	for (int k = 0; k < o->keys; k++) {
		start(&c, &so, k);
		int ok = 0, r;
		while (c.sent < c.req_len)
			if (pump_send(&c, &so) < 0)
				exit(1);
		while ((r = pump_recv(&c, &so, &ok)) == 0)
			;
		if (r < 0 || !ok) {
			fprintf(stderr, "resp_load: preload SET refused (%s)\n", c.hdr);
			exit(1);
		}
	}
	close(c.fd);
	free(c.buf);
}

static void usage(void)
{
	fprintf(stderr, "usage: resp_load -p PORT -t get|set -d BYTES -c CONNS -n REQUESTS "
			"[--threads T] [--keys K] [--discard] [--label NAME] [--prefix KEYS]\n"
			"       resp_load --bare -t get|set -d BYTES -c CONNS -n REQUESTS ...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = {.conns = 1,
			 .threads = 2,
			 .keys = 16,
			 .bytes = 1 << 20,
			 .requests = 1000,
			 .label = "server",
			 .prefix = "kvgrid:load"};
	int bare = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--discard")) {
			o.discard = 1;
			continue;
		}
		if (!strcmp(a, "--bare")) {
			bare = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "-p"))
			o.port = atoi(v);
		else if (!strcmp(a, "-t"))
			o.set = !strcmp(v, "set");
		else if (!strcmp(a, "-d"))
			o.bytes = (size_t)atol(v);
		else if (!strcmp(a, "-c"))
			o.conns = atoi(v);
		else if (!strcmp(a, "-n"))
			o.requests = atol(v);
		else if (!strcmp(a, "--threads"))
			o.threads = atoi(v);
		else if (!strcmp(a, "--keys"))
			o.keys = atoi(v);
		else if (!strcmp(a, "--label"))
			o.label = v;
		else if (!strcmp(a, "--prefix"))
			o.prefix = v;
		else
			usage();
	}
	if (bare)
		o.port = 1; /* set below, once the value exists */
	if (o.port <= 0 || o.conns < 1 || o.requests < 1 || o.keys < 1 || o.threads < 1 ||
	    o.bytes < 1)
		usage();
	if (o.threads > o.conns)
		o.threads = o.conns;
	value = malloc(o.bytes);
	if (!value)
		return 1;
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (size_t i = 0; i < o.bytes; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		value[i] = (uint8_t)x;
	}
	if (bare)
		o.port = bare_start(o.threads, o.set, o.bytes);
	else
		preload(&o);
	struct lthread *t = calloc((size_t)o.threads, sizeof(*t));
	struct lconn *cs = calloc((size_t)o.conns, sizeof(*cs));
	for (int i = 0; i < o.conns; i++) {
		cs[i].fd = dial(o.port);
		cs[i].buf = malloc(o.bytes + 2);
		if (!cs[i].buf)
			return 1;
		memset(cs[i].buf, 0, o.bytes + 2); /* touched before timing */
	}
	long per = o.requests / o.threads, rest = o.requests % o.threads;
	int per_c = o.conns / o.threads, rest_c = o.conns % o.threads, ci = 0;
	for (int i = 0; i < o.threads; i++) {
		t[i].o = &o;
		t[i].c = cs + ci;
		t[i].n = per_c + (i < rest_c);
		ci += t[i].n;
		t[i].planned = per + (i < rest);
		t[i].lat = malloc(sizeof(uint64_t) * (size_t)(t[i].planned + 1));
		for (int k = 0; k < t[i].n; k++) /* non-blocking from now on */
			fcntl(t[i].c[k].fd, F_SETFL, fcntl(t[i].c[k].fd, F_GETFL) | O_NONBLOCK);
	}
	uint64_t t0 = now_ns();
	for (int i = 0; i < o.threads; i++)
		pthread_create(&t[i].tid, NULL, run, &t[i]);
	long errors = 0, done = 0;
	for (int i = 0; i < o.threads; i++) {
		pthread_join(t[i].tid, NULL);
		errors += t[i].errors;
		done += t[i].done;
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	uint64_t *all = malloc(sizeof(uint64_t) * (size_t)done);
	long k = 0;
	for (int i = 0; i < o.threads; i++)
		for (long j = 0; j < t[i].done; j++)
			all[k++] = t[i].lat[j];
	qsort(all, (size_t)done, sizeof(uint64_t), cmp_u64);
	double rps = (double)done / secs;
	printf("%s,%s,%zu,%d,%.0f,%.3f,%.3f,%.3f,%ld\n", o.label, o.set ? "set" : "get", o.bytes,
	       o.conns, rps, rps * (double)o.bytes / 1e9, (double)all[done / 2] / 1e6,
	       (double)all[(size_t)((double)done * 0.99)] / 1e6, errors);
	return errors ? 3 : 0;
}
