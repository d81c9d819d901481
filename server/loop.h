/*
 * loop.h - kvgridd's workers: one thread, one epoll instance and one share of the
 * connections each; connections, their buffers and the output queue the protocol handlers
 * write replies into.
 *
 * Every worker listens on every port itself (SO_REUSEPORT: the kernel spreads new
 * connections), so workers share nothing but the grid and the counters.
 *
 * A connection is a small state machine:
 *
 *   SNIFF --first bytes--> RESP | LM | NATIVE --(error, QUIT, EOF)--> CLOSING --flushed--> closed
 *
 * Buffers.  A connection reads into an input region big enough for the largest request
 * (frame_max) and writes replies into an output region big enough for two of the largest
 * replies; both are reserved address space (mmap, MAP_NORESERVE), so only the pages a
 * connection really uses cost memory, and they are handed back (MADV_DONTNEED) after a
 * large request.  A handler parses one request in place, and appends its reply as segments
 * of the output region; the segments go out with writev.  While the output holds more than
 * one largest reply, or the segment table is nearly full, the connection stops parsing
 * (back-pressure on a client that does not read); once its input region is full too, it
 * stops reading.
 */
#ifndef KVG_LOOP_H
#define KVG_LOOP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <sys/types.h>

#include "kv.h"
#include "kvgrid.h"
#include "proto_resp.h"
#include "srv.h"

#define CONN_IOV_MAX	 256
#define CONN_VIEWS_MAX	 64   /* grid views whose pieces are queued on one connection */
#define LOOP_KEYS_MAX	 4096 /* keys in one native request */
#define CONN_IN_HEADROOM 64   /* room in front of the first request for a value header */

struct worker;

enum { FILL_NONE, FILL_VALUE, FILL_DONE };
#define LOOP_FILL_MIN	(64u << 10) /* smaller values are parsed from the input region */
#define LOOP_HEAD_BYTES 4096	    /* first read of a RESP request: enough for a SET's head */

struct conn {
	int fd;		 /* -1: free slot */
	uint8_t proto;	 /* enum srv_proto; PROTO_ANY until sniffed */
	uint8_t closing; /* flush what is queued, then close */
	uint8_t more;	 /* complete requests wait in the input: come back when writable */
	uint32_t events; /* registered with epoll */
	const struct srv_tenant *tenant; /* NULL until authenticated */
	uint8_t *in;			 /* in[0, in_cap): data lives in [in_start, in_end) */
	size_t in_cap, in_start, in_end;
	uint8_t *out; /* out[0, out_len) is written; segments of it are queued */
	size_t out_cap, out_len;
	struct iovec iov[CONN_IOV_MAX];
	int iov_first, iov_n;	  /* queued segments iov[iov_first, iov_n) */
	size_t in_high, out_high; /* high-water marks since memory was last handed back */
	/* grid views lent for queued segments, in order; view i is released once
	 * iov[views[i].iov_last] has been sent */
	struct conn_view {
		kvg_view *view;
		int iov_from, iov_last; /* its pieces: iov[iov_from, iov_last] */
		size_t bytes;
	} views[CONN_VIEWS_MAX];
	int views_first, views_n;
	size_t lent_bytes; /* bytes of the views out: counted against reply_reserve */
	struct worker *w;
	/* an asynchronous load in flight (conn_load_async): parsing waits for it */
	kvg_req *req;
	struct kvg_io io;
	void (*finish)(struct conn *c, int status); /* writes the reply, on the worker */
	/* a large value read straight into the arena (see conn_try_fill): FILL_VALUE while
	 * its bytes arrive, FILL_DONE until its protocol has finished the request */
	uint8_t fill_state;
	struct kv_fill fill;
	/* a native GET or RESP MGET in progress: its salted keys (allocated on first use),
	 * request id, next item and count */
	kvg_key *get_keys;
	uint64_t get_id;
	uint32_t get_next, get_n;
	struct conn *done_next; /* on the worker's completion list */
};

struct worker {
	struct srv *srv;
	int id;
	int epfd;
	int stop_fd;		   /* eventfd: shutdown */
	int done_fd;		   /* eventfd: asynchronous loads have completed */
	pthread_mutex_t done_lock; /* guards done_head */
	struct conn *done_head;
	int listen_fd[SRV_LISTENERS_MAX];
	struct conn *conns;
	uint32_t n_conns, open;
	int stopping;
	size_t reply_reserve;	     /* output room a handler may need for one request */
	struct resp_cmd cmd;	     /* the RESP parser's scratch */
	kvg_key keys[LOOP_KEYS_MAX]; /* a native request's keys, salted */
};

/*
 * A handler parses one request at p (avail bytes) and queues its reply.  It returns the
 * bytes it consumed (> 0), 0 if the request is not complete, or -1 to close the connection
 * after what is queued has been sent.
 */
typedef ssize_t (*conn_handler_fn)(struct conn *c, uint8_t *p, size_t avail);
ssize_t hresp_handle(struct conn *c, uint8_t *p, size_t avail);
ssize_t hlm_handle(struct conn *c, uint8_t *p, size_t avail);
ssize_t hnat_handle(struct conn *c, uint8_t *p, size_t avail);

/*
 * The receive path for large values (RESP SET, lm:// PUT).  X_try_fill looks at an
 * incomplete request: if it carries a large value still arriving, it reserves the value's
 * room in the arena (kv_fill_begin), moves the bytes already read there, and returns what it
 * consumed: the loop then reads the rest of the value straight into the arena (FILL_VALUE);
 * else 0.  X_fill_end, once the value is complete (FILL_DONE), takes what follows it (RESP:
 * the final CRLF) and publishes the value: as a handler's return.
 */
ssize_t hresp_try_fill(struct conn *c, uint8_t *p, size_t avail);
ssize_t hresp_fill_end(struct conn *c, uint8_t *p, size_t avail);
ssize_t hlm_try_fill(struct conn *c, uint8_t *p, size_t avail);
ssize_t hlm_fill_end(struct conn *c, uint8_t *p, size_t avail);

/* Output: free room at the end of the output region. */
static inline uint8_t *conn_out_tail(struct conn *c)
{
	return c->out + c->out_len;
}
static inline size_t conn_out_room(const struct conn *c)
{
	return c->out_cap - c->out_len;
}

/* Queues out[p, p + n) (which must lie at or after out_len's previous value) for sending and
 * moves out_len past it.  Contiguous segments merge. */
void conn_emit(struct conn *c, uint8_t *p, size_t n);

/*
 * Queues n pieces lent by the grid (a value in the DRAM arena, bytes long) after what is
 * queued, and takes charge of view: it is released once they are sent or the connection
 * closes.  Returns -1 without queuing or taking anything when there is no room for n more
 * segments (then copy the value instead).  conn_view_room() is that room.
 */
int conn_emit_view(struct conn *c, const struct iovec *iov, int n, kvg_view *view, size_t bytes);
static inline int conn_view_room(const struct conn *c)
{
	return c->views_n < CONN_VIEWS_MAX ? CONN_IOV_MAX - c->iov_n : 0;
}

/* Forgets every queued segment and releases the views (the peer is gone). */
void conn_drop_output(struct conn *c);

/* Starts sending what is queued, if it is CONN_PUSH_BYTES or more, so that a large reply
 * leaves while the next block is being loaded. */
#define CONN_PUSH_BYTES (256u << 10)
void conn_push(struct conn *c);

/*
 * Starts loading key into dst (cap bytes, inside the output region) without blocking the
 * worker; when it completes, finish(c, status) runs on the worker with c->io.len set, and
 * the connection parses again.  Returns 0 if started, else an error (load synchronously).
 * The connection parses no further request until then, so replies stay in order.
 */
int conn_load_async(struct conn *c, const kvg_key *key, uint8_t *dst, size_t cap,
		    void (*finish)(struct conn *c, int status));

/*
 * Where an NVMe load into the output region should land: the first address at or after the
 * tail that leaves `lead` bytes in front of it (for the reply's header) and is aligned for
 * O_DIRECT, so the device reads straight into it (an unaligned one goes through a bounce
 * buffer and a copy).  *room is reduced to what is left from there.  The bytes skipped are
 * never sent: the reply is queued from the returned address on.
 */
#define CONN_DIRECT_ALIGN 4096u
static inline uint8_t *conn_out_direct(struct conn *c, size_t lead, size_t *room)
{
	uint8_t *p = conn_out_tail(c) + lead;
	size_t gap = (CONN_DIRECT_ALIGN - ((uintptr_t)p & (CONN_DIRECT_ALIGN - 1))) &
		     (CONN_DIRECT_ALIGN - 1);
	*room = conn_out_room(c);
	if (*room < lead + gap + CONN_DIRECT_ALIGN)
		return conn_out_tail(c) + lead;
	*room -= gap;
	return p + gap;
}

/* Copies n bytes to the tail and queues them; -1 if there is no room. */
int conn_write(struct conn *c, const void *p, size_t n);

/*
 * Creates the listening sockets of every worker for cfg.listen (binding port 0 once and
 * reusing the port it got), and the workers.  Returns 0 or -errno, with a reason in err.
 */
int loop_open(struct srv *s, struct worker **out, char *err, size_t err_len);

/* Runs worker w until loop_stop(); the thread function of each worker. */
void *loop_run(void *w);

/* Asks every worker to stop accepting, finish, flush (up to drain_ms) and return. */
void loop_stop(struct worker *ws, uint32_t n);

void loop_close(struct worker *ws, uint32_t n);

#endif
