/*
 * client_int.h - what the client's own files share, and nothing else may call.
 *
 * The client is one module in two files: client_conn.c (a node's pool of connections:
 * connect and HELLO, framing, send and receive under a deadline, failure and reconnection)
 * and client.c (the calls of client.h: open and close, sharding keys over nodes, and the
 * batched operations built on client_conn.c's requests).  The rest of libkvgrid sees struct
 * client as opaque and goes through client.h.
 *
 * Locking: each connection has its own mutex, which guards every field of struct
 * client_conn; client_node_get() returns a connection locked and the caller unlocks it.  A
 * node's other fields are written with atomics (or at open, before any call); struct client
 * is written only at open and close.  Functions below that take a struct client_conn expect
 * its lock held, but for client_conn_init() and client_conn_free(), which run at open and
 * close.
 */
#ifndef KVG_CLIENT_INT_H
#define KVG_CLIENT_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "client.h"
#include "proto_native.h"

#define CLIENT_NODES_MAX 64
#define CLIENT_BATCH_MAX 1024 /* keys per frame */
#define CLIENT_POOL	 4    /* connections per node: the grid's workers call in concurrently */
#define CLIENT_TOKEN_MAX 256
/* a connection's scratch holds the largest request header: a PUT of CLIENT_BATCH_MAX items */
#define CLIENT_SCRATCH_BYTES (NAT_HDR_BYTES + 8 + CLIENT_BATCH_MAX * NAT_PUT_ITEM_BYTES + 64)
#define CLIENT_IOV_MAX	     (2 * CLIENT_BATCH_MAX + 2)

struct client_node;

/* One connection of a node's pool. */
struct client_conn {
	pthread_mutex_t lock; /* guards everything below */
	struct client_node *node;
	int fd;	      /* -1: not connected */
	uint64_t gen; /* the node's generation when this connection was made */
	uint64_t next_id;
	uint8_t *scratch;  /* CLIENT_SCRATCH_BYTES */
	struct iovec *iov; /* CLIENT_IOV_MAX */
};

/* A server.  Fields other than the pool are written with atomics (or before any call). */
struct client_node {
	char host[256];
	char port[16];
	uint64_t seed;		/* rendezvous seed: XXH64 of "host:port" */
	uint64_t down_until_ms; /* 0: up, or not tried yet */
	uint64_t gen;		/* bumped when the node fails: older connections are stale */
	uint64_t frame_max;	/* from HELLO */
	uint32_t next;		/* round robin over the pool when every connection is busy */
	uint32_t live;		/* connections of the pool that are connected */
	struct client_conn conn[CLIENT_POOL];
};

struct client {
	struct client_node node[CLIENT_NODES_MAX];
	uint32_t n_nodes;
	int timeout_ms;
	char token[CLIENT_TOKEN_MAX];
	size_t token_len;
};

/* --- client_conn.c --- */

/* Sets up connection n of node nd's pool, unconnected: 0 or -ENOMEM (nothing held). */
int client_conn_init(struct client_conn *n, struct client_node *nd);
/* Closes and frees a connection client_conn_init() set up; nothing else may hold it. */
void client_conn_free(struct client_conn *n);
/* Now plus the client's timeout, in CLOCK_MONOTONIC milliseconds. */
uint64_t client_deadline(const struct client *c);
/* Whether node i is not left out after a failure (a racy read: it only steers keys). */
int client_node_up(struct client *c, uint32_t i);
/* Takes a connection of node i's pool, connected: 0 with *out locked, or an error with
 * nothing held. */
int client_node_get(struct client *c, uint32_t i, uint64_t deadline, struct client_conn **out);
/* Closes a connection that failed and leaves its node out for a while. */
void client_node_fail(struct client_conn *n);
/* Sends all of iov (modified in place) before the deadline: 0, KVG_ETIMEDOUT or -errno. */
int client_sendv(int fd, struct iovec *iov, int cnt, uint64_t deadline_ms);
/* Receives exactly len bytes into buf (NULL: discard them): 0, KVG_ETIMEDOUT or -errno. */
int client_recv(int fd, void *buf, size_t len, uint64_t deadline_ms);
/* Reads a reply header for request (op, id) into *h: 0, KVG_EPROTO or a transport error. */
int client_read_hdr(struct client_conn *n, uint8_t op, uint64_t id, uint64_t deadline,
		    struct nat_hdr *h);
/* One request with a small reply (body_len bytes already at scratch + NAT_HDR_BYTES): the
 * reply's status with *reply_len set, or a transport error after which n's node is failed. */
int client_call(struct client_conn *n, uint8_t op, uint32_t body_len, uint8_t *reply, size_t cap,
		size_t *reply_len, uint64_t deadline);

#endif
