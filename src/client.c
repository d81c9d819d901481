/*
 * client.c - libkvgrid's client of kvgridd servers over the native protocol (see client.h,
 * proto_native.h and doc/PROTOCOL.md): open and close, sharding, and the batched calls.
 * A node's connections (connect, HELLO, framing, timeouts, failure) are client_conn.c's.
 *
 * Nodes and sharding.  cfg.servers names one or more nodes.  Each key belongs to the node
 * with the highest rendezvous score XXH64(key, seed of "host:port") among the nodes that are
 * up, so a node that goes away moves only its own keys (to their second-best node, where
 * they miss until stored again) and every other key stays where it was.  A node that fails
 * is left out for a while (client_conn.c), then tried again.
 *
 * Batches.  A call is cut into batches of CLIENT_BATCH_MAX keys, each grouped by owning
 * node.  A batch for one node travels as few frames as its size allows (one frame per
 * CLIENT_BATCH_MAX keys, and no PUT frame over the server's frame limit); values go out with
 * writev straight from the caller's buffers and come back with recv straight into them.
 * Request headers are built in the connection's scratch buffer: a call allocates nothing.
 *
 * Threads and locking.  Every call of client.h may run on any thread; client_open() and
 * client_close() must not overlap any other call.  A call holds at most one connection per
 * node, taken with client_node_get() (locked) and unlocked before it returns; a call that
 * holds several takes them in ascending node order, so concurrent callers cannot deadlock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "client_int.h"

/* The node that owns key: highest rendezvous score among the nodes that are up. */
static uint32_t client_owner(struct client *c, const kvg_key *key)
{
	uint32_t best = 0;
	uint64_t best_score = 0;
	int found = 0;
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		if (!client_node_up(c, i))
			continue;
		uint64_t s = XXH64(key->bytes, KVG_KEY_BYTES, c->node[i].seed);
		if (!found || s > best_score) {
			best = i;
			best_score = s;
			found = 1;
		}
	}
	if (!found) /* all down: the plain owner, which will fail fast */
		for (uint32_t i = 0; i < c->n_nodes; i++) {
			uint64_t s = XXH64(key->bytes, KVG_KEY_BYTES, c->node[i].seed);
			if (i == 0 || s > best_score) {
				best = i;
				best_score = s;
			}
		}
	return best;
}

/* Sends one PUT frame of the m items idx[] of ios (body bytes of body); *id is its id. */
static int client_put_send(struct client_conn *n, const struct kvg_io *ios, const uint16_t *idx,
			   size_t m, uint64_t body, uint32_t flags, uint64_t *id, uint64_t deadline)
{
	uint8_t *b = n->scratch;
	struct nat_hdr h = {.op = NAT_PUT, .id = ++n->next_id, .body_len = (uint32_t)body};
	nat_hdr_encode(b, &h);
	nat_put_u32(b + NAT_HDR_BYTES, (uint32_t)m);
	nat_put_u32(b + NAT_HDR_BYTES + 4, flags);
	int cnt = 0;
	n->iov[cnt++] = (struct iovec){b, NAT_HDR_BYTES + 8};
	uint8_t *item = b + NAT_HDR_BYTES + 8;
	for (size_t k = 0; k < m; k++, item += NAT_PUT_ITEM_BYTES) {
		const struct kvg_io *io = &ios[idx[k]];
		memcpy(item, io->key.bytes, KVG_KEY_BYTES);
		nat_put_u32(item + KVG_KEY_BYTES, (uint32_t)io->len);
		nat_put_u32(item + KVG_KEY_BYTES + 4, 0);
		n->iov[cnt++] = (struct iovec){item, NAT_PUT_ITEM_BYTES};
		n->iov[cnt++] = (struct iovec){io->buf, io->len};
	}
	*id = h.id;
	return client_sendv(n->fd, n->iov, cnt, deadline);
}

/* Reads the statuses of the PUT frame id (items idx[]). */
static int client_put_reply(struct client_conn *n, struct kvg_io *ios, const uint16_t *idx,
			    size_t m, uint64_t id, uint64_t deadline)
{
	uint8_t rep[8 + 4 * CLIENT_BATCH_MAX];
	struct nat_hdr r;
	int rc = client_read_hdr(n, NAT_PUT, id, deadline, &r);
	if (!rc && (r.body_len > sizeof(rep) || (r.status == 0 && r.body_len != 8 + 4 * m)))
		rc = KVG_EPROTO;
	if (!rc)
		rc = client_recv(n->fd, rep, r.body_len, deadline);
	if (rc)
		return rc;
	for (size_t k = 0; k < m; k++)
		ios[idx[k]].status = r.status ? r.status : (int)nat_get_u32(rep + 8 + 4 * k);
	return 0;
}

static void client_fail_items(struct kvg_io *ios, const uint16_t *idx, size_t k, int rc)
{
	for (size_t q = 0; q < k; q++)
		ios[idx[q]].status = rc;
}

/* One frame of a store batch in flight. */
struct client_frame {
	uint64_t id;
	uint16_t first, count; /* into the batch's order[] */
	uint8_t node;
};

/*
 * Sends node i's items order[from, to) in frames under its frame limit, appending them to
 * f.  Items too large to travel get KVG_ETOOBIG and are dropped from order[] (which is
 * compacted in place).  Returns the frames sent; stops at the first error (*err).
 */
static size_t client_store_send(struct client_conn *n, uint32_t i, struct kvg_io *ios,
				uint16_t *order, size_t from, size_t to, uint32_t flags,
				struct client_frame *f, uint64_t deadline, int *err)
{
	uint64_t frame_max = __atomic_load_n(&n->node->frame_max, __ATOMIC_RELAXED);
	size_t end = from;
	for (size_t q = from; q < to; q++) {
		if (8 + NAT_PUT_ITEM_BYTES + ios[order[q]].len > frame_max)
			ios[order[q]].status = KVG_ETOOBIG;
		else
			order[end++] = order[q];
	}
	size_t nf = 0, first = from;
	uint64_t body = 8;
	for (size_t q = from; q <= end && !*err; q++) {
		uint64_t item = q < end ? NAT_PUT_ITEM_BYTES + ios[order[q]].len : 0;
		if (q > first && (q == end || body + item > frame_max)) {
			f[nf] = (struct client_frame){.first = (uint16_t)first,
						      .count = (uint16_t)(q - first),
						      .node = (uint8_t)i};
			*err = client_put_send(n, ios, order + first, q - first, body, flags,
					       &f[nf].id, deadline);
			nf++;
			first = q;
			body = 8;
		}
		body += item;
	}
	return nf;
}

/* Groups blocks [0, m) by owning node: order[start[i] .. start[i + 1]) are node i's, in
 * batch order (a counting sort). */
static void client_by_node(const struct client *c, const uint8_t *owner, size_t m, uint16_t *order,
			   uint16_t *start)
{
	uint16_t fill[CLIENT_NODES_MAX];
	memset(start, 0, sizeof(uint16_t) * (CLIENT_NODES_MAX + 1));
	for (size_t j = 0; j < m; j++)
		start[owner[j] + 1]++;
	for (uint32_t i = 0; i < c->n_nodes; i++)
		start[i + 1] = (uint16_t)(start[i + 1] + start[i]);
	memcpy(fill, start, sizeof(fill));
	for (size_t j = 0; j < m; j++)
		order[fill[owner[j]]++] = (uint16_t)j;
}

/*
 * Stores one batch spread over nodes: every node's frames go out first, then the replies
 * are read, so the nodes store in parallel.  Nodes are locked in ascending order.
 */
static void client_store_batch(struct client *c, struct kvg_io *ios, size_t m, const uint8_t *owner,
			       uint32_t flags)
{
	uint16_t order[CLIENT_BATCH_MAX], start[CLIENT_NODES_MAX + 1];
	client_by_node(c, owner, m, order, start);
	struct client_frame f[CLIENT_BATCH_MAX];
	size_t nf = 0;
	struct client_conn *held[CLIENT_NODES_MAX] = {NULL};
	int failed[CLIENT_NODES_MAX] = {0};
	uint64_t deadline = client_deadline(c);
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		if (start[i + 1] == start[i])
			continue;
		int rc = client_node_get(c, i, deadline, &held[i]);
		if (!rc)
			nf += client_store_send(held[i], i, ios, order, start[i], start[i + 1],
						flags, f + nf, deadline, &rc);
		if (rc) {
			failed[i] = rc;
			for (size_t q = start[i]; q < start[i + 1]; q++)
				if (!ios[order[q]].status)
					ios[order[q]].status = rc;
		}
	}
	for (size_t k = 0; k < nf; k++) {
		uint32_t i = f[k].node;
		int rc = failed[i];
		if (!rc)
			rc = client_put_reply(held[i], ios, order + f[k].first, f[k].count, f[k].id,
					      deadline);
		if (rc) {
			failed[i] = rc;
			client_fail_items(ios, order + f[k].first, f[k].count, rc);
		}
	}
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		if (!held[i])
			continue;
		if (failed[i])
			client_node_fail(held[i]);
		pthread_mutex_unlock(&held[i]->lock);
	}
}

/* Reads the k reply frames of a GET (one per key, NAT_F_MORE on all but the last) straight
 * into the callers' buffers. */
static int client_get_items(struct client_conn *n, struct kvg_io *ios, const uint16_t *idx,
			    size_t k, uint64_t id, uint8_t *retry, uint64_t deadline)
{
	for (size_t q = 0; q < k; q++) {
		struct kvg_io *io = &ios[idx[q]];
		struct nat_hdr h;
		uint8_t it[NAT_ITEM_BYTES];
		int rc = client_read_hdr(n, NAT_GET, id, deadline, &h);
		if (!rc && (h.body_len < NAT_ITEM_BYTES || !(h.flags & NAT_F_MORE) != (q + 1 == k)))
			rc = KVG_EPROTO;
		if (!rc)
			rc = client_recv(n->fd, it, sizeof(it), deadline);
		if (rc)
			return rc;
		int st = (int)nat_get_u32(it);
		uint32_t len = nat_get_u32(it + 4);
		if (h.body_len != NAT_ITEM_BYTES + (uint64_t)len || (st != 0 && len != 0))
			return KVG_EPROTO;
		if (st == 0 && len > io->len) {
			st = KVG_EBUFSIZE; /* ours is too small: drain the bytes */
			rc = client_recv(n->fd, NULL, len, deadline);
			io->len = len; /* the size needed, as a local grid answers */
		} else if (st == 0) {
			rc = client_recv(n->fd, io->buf, len, deadline);
			io->len = len;
			io->tier = nat_flags_tier(h.flags) <= KVG_TIER_SHARED
				       ? nat_flags_tier(h.flags)
				       : KVG_TIER_NONE;
		} else if (st == KVG_EBUFSIZE && k > 1) {
			retry[idx[q]] = 1; /* the server's reply room ran out: ask for it alone */
		}
		if (rc)
			return rc;
		io->status = st;
	}
	return 0;
}

/* Sends a GET frame for the k keys idx[] of ios; *id is its request id. */
static int client_get_send(struct client_conn *n, const struct kvg_io *ios, const uint16_t *idx,
			   size_t k, uint64_t *id, uint64_t deadline)
{
	uint8_t *b = n->scratch;
	struct nat_hdr h = {
	    .op = NAT_GET, .id = ++n->next_id, .body_len = (uint32_t)(8 + k * KVG_KEY_BYTES)};
	nat_hdr_encode(b, &h);
	nat_put_u32(b + NAT_HDR_BYTES, (uint32_t)k);
	nat_put_u32(b + NAT_HDR_BYTES + 4, 0);
	for (size_t q = 0; q < k; q++)
		memcpy(b + NAT_HDR_BYTES + 8 + q * KVG_KEY_BYTES, ios[idx[q]].key.bytes,
		       KVG_KEY_BYTES);
	struct iovec iov = {b, NAT_HDR_BYTES + h.body_len};
	*id = h.id;
	return client_sendv(n->fd, &iov, 1, deadline);
}

/* Reads the reply to the GET sent on n with id, then asks again, one at a time, for the
 * blocks the server had no room for.  n is locked; this unlocks it. */
static void client_get_finish(struct client_conn *n, struct kvg_io *ios, const uint16_t *idx,
			      size_t k, uint64_t id, uint64_t deadline)
{
	uint8_t retry[CLIENT_BATCH_MAX];
	memset(retry, 0, sizeof(retry));
	int rc = client_get_items(n, ios, idx, k, id, retry, deadline);
	for (size_t q = 0; !rc && q < k; q++) {
		if (!retry[idx[q]])
			continue;
		rc = client_get_send(n, ios, &idx[q], 1, &id, deadline);
		if (!rc)
			rc = client_get_items(n, ios, &idx[q], 1, id, retry, deadline);
	}
	if (rc) {
		client_node_fail(n);
		client_fail_items(ios, idx, k, rc);
	}
	pthread_mutex_unlock(&n->lock);
}

/*
 * Loads one batch (at most CLIENT_BATCH_MAX blocks) spread over nodes: the GET goes out to
 * every owning node first, then the replies are read node by node, so the nodes work in
 * parallel.  Nodes are locked in ascending order, so concurrent callers cannot deadlock.
 */
static void client_load_batch(struct client *c, struct kvg_io *ios, size_t m, const uint8_t *owner,
			      uint32_t flags)
{
	uint16_t order[CLIENT_BATCH_MAX], start[CLIENT_NODES_MAX + 1];
	client_by_node(c, owner, m, order, start);
	uint64_t deadline = client_deadline(c), ids[CLIENT_NODES_MAX];
	struct client_conn *sent[CLIENT_NODES_MAX] = {NULL};
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		size_t k = (size_t)(start[i + 1] - start[i]);
		if (k == 0)
			continue;
		struct client_conn *n = NULL;
		int rc = client_node_get(c, i, deadline, &n);
		if (!rc && (rc = client_get_send(n, ios, order + start[i], k, &ids[i], deadline))) {
			client_node_fail(n);
			pthread_mutex_unlock(&n->lock);
		}
		if (rc)
			client_fail_items(ios, order + start[i], k, rc);
		else
			sent[i] = n;
	}
	for (uint32_t i = 0; i < c->n_nodes; i++)
		if (sent[i])
			client_get_finish(sent[i], ios, order + start[i],
					  (size_t)(start[i + 1] - start[i]), ids[i], deadline);
}

static int client_first_error(const struct kvg_io *ios, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ios[i].status)
			return ios[i].status;
	return 0;
}

/* Runs a store or load of n blocks in batches of CLIENT_BATCH_MAX, each split by owner. */
static int client_batches(struct client *c, struct kvg_io *ios, size_t n, uint32_t flags,
			  void (*batch)(struct client *, struct kvg_io *, size_t, const uint8_t *,
					uint32_t))
{
	for (size_t base = 0; base < n; base += CLIENT_BATCH_MAX) {
		size_t m = n - base < CLIENT_BATCH_MAX ? n - base : CLIENT_BATCH_MAX;
		uint8_t owner[CLIENT_BATCH_MAX];
		for (size_t j = 0; j < m; j++) {
			owner[j] = (uint8_t)client_owner(c, &ios[base + j].key);
			ios[base + j].status = 0;
		}
		batch(c, ios + base, m, owner, flags);
	}
	return client_first_error(ios, n);
}

int client_store(struct client *c, struct kvg_io *ios, size_t n)
{
	return client_store_flags(c, ios, n, 0);
}

int client_store_flags(struct client *c, struct kvg_io *ios, size_t n, uint32_t flags)
{
	/* only write-through travels: session hints are not part of the protocol */
	return client_batches(c, ios, n, flags & KVG_STORE_NVME, client_store_batch);
}

int client_load(struct client *c, struct kvg_io *ios, size_t n)
{
	return client_batches(c, ios, n, 0, client_load_batch);
}

/*
 * Reads a LOOKUP reply's tiers (rep, len bytes, count hits) into tiers[idx[q]]: the hits'
 * tiers when the server sent them, KVG_TIER_NONE ("present, tier unknown") when it predates
 * NAT_LOOKUP_F_TIERS.  Returns 0 or KVG_EPROTO.
 */
static int client_lookup_reply(const uint8_t *rep, size_t len, uint32_t count, const uint16_t *idx,
			       uint8_t *tiers)
{
	int sent = (nat_get_u32(rep + 4) & NAT_LOOKUP_F_TIERS) != 0;
	if (len != 8 + (sent ? (size_t)count : 0))
		return KVG_EPROTO;
	for (uint32_t q = 0; tiers && q < count; q++) {
		uint8_t t = sent ? rep[8 + q] : KVG_TIER_NONE;
		tiers[idx[q]] = t <= KVG_TIER_SHARED ? t : KVG_TIER_NONE;
	}
	return 0;
}

/*
 * One key operation (LOOKUP, DELETE, PIN, UNPIN) on the m keys owned by node i.  Returns
 * the count the server answered, or an error.  *first_miss (LOOKUP only) is set to the
 * batch index of the node's first missing key, or m if all are present; tiers (LOOKUP
 * only, may be NULL) receives the tier of each of the node's hits, by batch index.
 */
static int client_keys_node(struct client *c, uint32_t i, uint8_t op, const kvg_key *keys, size_t m,
			    const uint8_t *owner, size_t *first_miss, uint8_t *tiers)
{
	uint64_t deadline = client_deadline(c);
	struct client_conn *n = NULL;
	int rc = client_node_get(c, i, deadline, &n);
	if (rc)
		return rc;
	uint8_t *b = n->scratch + NAT_HDR_BYTES;
	uint16_t idx[CLIENT_BATCH_MAX];
	size_t k = 0;
	for (size_t j = 0; j < m; j++) {
		if (owner[j] != i)
			continue;
		memcpy(b + 8 + k * KVG_KEY_BYTES, keys[j].bytes, KVG_KEY_BYTES);
		idx[k++] = (uint16_t)j;
	}
	nat_put_u32(b, (uint32_t)k);
	nat_put_u32(b + 4, op == NAT_LOOKUP && tiers ? NAT_LOOKUP_F_TIERS : 0);
	uint8_t rep[8 + CLIENT_BATCH_MAX];
	size_t len = 0;
	rc =
	    client_call(n, op, 8 + (uint32_t)(k * KVG_KEY_BYTES), rep, sizeof(rep), &len, deadline);
	pthread_mutex_unlock(&n->lock);
	uint32_t count = rc == 0 && len >= 8 ? nat_get_u32(rep) : 0;
	if (rc == 0 && (len < 8 || count > k))
		rc = KVG_EPROTO;
	if (rc == 0 && op == NAT_LOOKUP)
		rc = client_lookup_reply(rep, len, count, idx, tiers);
	else if (rc == 0 && len != 8)
		rc = KVG_EPROTO;
	if (rc)
		return rc;
	if (first_miss)
		*first_miss = count < k ? idx[count] : m;
	return (int)count;
}

static void client_owners(struct client *c, const kvg_key *keys, size_t m, uint8_t *owner,
			  uint64_t *used)
{
	*used = 0;
	for (size_t j = 0; j < m; j++) {
		owner[j] = (uint8_t)client_owner(c, &keys[j]);
		*used |= 1ull << owner[j];
	}
}

int client_lookup_keys(struct client *c, const kvg_key *keys, size_t n, size_t *hit_blocks)
{
	return client_lookup_tiers(c, keys, n, hit_blocks, NULL);
}

int client_lookup_tiers(struct client *c, const kvg_key *keys, size_t n, size_t *hit_blocks,
			uint8_t *tiers)
{
	*hit_blocks = 0;
	for (size_t base = 0; base < n; base += CLIENT_BATCH_MAX) {
		size_t m = n - base < CLIENT_BATCH_MAX ? n - base : CLIENT_BATCH_MAX;
		uint8_t owner[CLIENT_BATCH_MAX];
		uint64_t used;
		client_owners(c, keys + base, m, owner, &used);
		size_t hits = m;
		for (uint32_t i = 0; i < c->n_nodes; i++) {
			if (!(used & (1ull << i)))
				continue;
			size_t miss = m;
			/* an unreachable node holds nothing we can use: its keys are misses */
			int rc = client_keys_node(c, i, NAT_LOOKUP, keys + base, m, owner, &miss,
						  tiers ? tiers + base : NULL);
			if (rc < 0) {
				miss = 0;
				while (miss < m && owner[miss] != i)
					miss++;
			}
			if (miss < hits)
				hits = miss;
		}
		*hit_blocks += hits;
		if (hits < m)
			break;
	}
	return 0;
}

static int client_count_op(struct client *c, uint8_t op, const kvg_key *keys, size_t n)
{
	int total = 0, err = 0;
	for (size_t base = 0; base < n; base += CLIENT_BATCH_MAX) {
		size_t m = n - base < CLIENT_BATCH_MAX ? n - base : CLIENT_BATCH_MAX;
		uint8_t owner[CLIENT_BATCH_MAX];
		uint64_t used;
		client_owners(c, keys + base, m, owner, &used);
		for (uint32_t i = 0; i < c->n_nodes; i++) {
			if (!(used & (1ull << i)))
				continue;
			int rc = client_keys_node(c, i, op, keys + base, m, owner, NULL, NULL);
			if (rc < 0 && !err)
				err = rc;
			else if (rc > 0)
				total += rc;
		}
	}
	return total > 0 || !err ? total : err;
}

int client_delete(struct client *c, const kvg_key *keys, size_t n)
{
	return client_count_op(c, NAT_DELETE, keys, n);
}

int client_pin(struct client *c, const kvg_key *keys, size_t n, int pin)
{
	return client_count_op(c, pin ? NAT_PIN : NAT_UNPIN, keys, n);
}

/* Adds one node's STATS reply (fields in the order of doc/PROTOCOL.md) to st. */
static void client_stats_add(struct kvg_stats *st, const uint8_t *f, uint32_t nf)
{
	uint64_t v[35] = {0};
	for (uint32_t i = 0; i < nf && i < 35; i++)
		v[i] = nat_get_u64(f + 8 * i);
	for (int t = 0; t < KVG_TIER_COUNT; t++) {
		struct kvg_tier_stats *ts = &st->tier[t];
		const uint64_t *x = v + 13 * t;
		ts->capacity_bytes += x[0];
		ts->bytes += x[1];
		ts->blocks += x[2];
		ts->hits += x[3];
		ts->misses += x[4];
		ts->evictions += x[5];
		ts->bytes_read += x[6];
		ts->bytes_written += x[7];
		ts->checksum_failures += x[8];
		ts->io_errors += x[9];
		ts->promotions += x[10];
		ts->demotions += x[11];
		ts->degraded |= x[12] != 0;
	}
	const uint64_t *g = v + 26;
	st->lookups += g[0];
	st->stores += g[1];
	st->loads += g[2];
	st->store_failures += g[3];
	st->index_blocks += g[4];
	st->index_capacity += g[5];
	st->index_bytes += g[6];
	if (g[7] > st->recovery_us)
		st->recovery_us = g[7];
	st->recovered_blocks += g[8];
}

int client_stats(struct client *c, struct kvg_stats *st)
{
	memset(st, 0, sizeof(*st));
	int err = 0, ok = 0;
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		uint64_t deadline = client_deadline(c);
		struct client_conn *n = NULL;
		int rc = client_node_get(c, i, deadline, &n);
		if (rc) {
			err = rc;
			continue;
		}
		uint8_t rep[8 + 8 * 64];
		size_t len = 0;
		rc = client_call(n, NAT_STATS, 0, rep, sizeof(rep), &len, deadline);
		pthread_mutex_unlock(&n->lock);
		if (rc == 0 && len >= 8 && len >= 8 + 8 * (uint64_t)nat_get_u32(rep)) {
			client_stats_add(st, rep + 8, nat_get_u32(rep));
			ok = 1;
		} else if (rc) {
			err = rc;
		}
	}
	snprintf(st->tier[KVG_TIER_DRAM].backend, sizeof(st->tier[0].backend), "remote");
	snprintf(st->tier[KVG_TIER_NVME].backend, sizeof(st->tier[1].backend), "remote");
	return ok ? 0 : err;
}

int client_metrics(struct client *c, char *buf, size_t cap, size_t *len)
{
	if (cap == 0)
		return KVG_EBUFSIZE;
	uint64_t deadline = client_deadline(c);
	struct client_conn *n = NULL;
	int rc = client_node_get(c, 0, deadline, &n);
	if (rc)
		return rc;
	rc = client_call(n, NAT_METRICS, 0, (uint8_t *)buf, cap - 1, len, deadline);
	pthread_mutex_unlock(&n->lock);
	buf[rc == 0 ? *len : 0] = 0;
	return rc;
}

static int client_read_token(const char *path, char *tok, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -errno;
	char line[CLIENT_TOKEN_MAX + 2] = "";
	int rc = fgets(line, sizeof(line), f) ? 0 : -EINVAL;
	fclose(f);
	size_t n = strcspn(line, "\r\n \t");
	if (rc || n == 0 || n >= cap)
		return -EINVAL;
	memcpy(tok, line, n);
	tok[n] = 0;
	*len = n;
	return 0;
}

/* Splits "host:port[,host:port...]" ("[v6]:port" for IPv6) into the node table. */
static int client_parse_servers(struct client *c, const char *list, char *err, size_t err_len)
{
	const char *p = list;
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *colon = memrchr(p, ':', len);
		struct client_node *n = &c->node[c->n_nodes];
		const char *h = p;
		size_t hl = colon ? (size_t)(colon - p) : 0;
		if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		size_t pl = colon ? len - hl - 1 - (h != p ? 2 : 0) : 0;
		if (!colon || hl == 0 || hl >= sizeof(n->host) || pl == 0 ||
		    pl >= sizeof(n->port) || c->n_nodes == CLIENT_NODES_MAX) {
			snprintf(err, err_len,
				 "servers: bad entry '%.*s' (want host:port, at most %d)", (int)len,
				 p, CLIENT_NODES_MAX);
			return KVG_ECONFIG;
		}
		memcpy(n->host, h, hl);
		memcpy(n->port, colon + 1, pl);
		n->seed = XXH64(p, len, 0);
		c->n_nodes++;
		p += len;
		if (*p == ',')
			p++;
	}
	if (c->n_nodes == 0) {
		snprintf(err, err_len, "servers: empty list");
		return KVG_ECONFIG;
	}
	return 0;
}

int client_open(const struct kvg_config *cfg, struct client **out, char *err, size_t err_len)
{
	/* err may be NULL (err_len 0): every write to it and every read of it is guarded */
	int has_err = err && err_len;
	if (has_err)
		err[0] = 0;
	struct client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->timeout_ms = cfg->timeout_ms ? (int)cfg->timeout_ms : 5000;
	int rc = client_parse_servers(c, cfg->servers, err, err_len);
	if (!rc && cfg->auth_token_file[0] &&
	    client_read_token(cfg->auth_token_file, c->token, sizeof(c->token), &c->token_len)) {
		snprintf(err, err_len, "auth_token_file %s: cannot read a token",
			 cfg->auth_token_file);
		rc = KVG_ECONFIG;
	}
	for (uint32_t i = 0; !rc && i < c->n_nodes; i++) {
		c->node[i].frame_max = 1u << 20;
		for (int p = 0; !rc && p < CLIENT_POOL; p++)
			rc = client_conn_init(&c->node[i].conn[p], &c->node[i]);
	}
	/* reach at least one node now, so that a wrong address or token fails the open */
	int reached = 0, last = 0;
	for (uint32_t i = 0; !rc && i < c->n_nodes; i++) {
		struct client_conn *n = NULL;
		last = client_node_get(c, i, client_deadline(c), &n);
		if (last == 0) {
			pthread_mutex_unlock(&n->lock);
			reached = 1;
		} else if (last == KVG_EAUTH) {
			rc = last;
		}
	}
	if (!rc && !reached)
		rc = last;
	if (rc) {
		if (has_err && (!err[0] || rc != KVG_ECONFIG))
			snprintf(err, err_len, "servers %s: %s", cfg->servers, kvg_strerror(rc));
		client_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void client_close(struct client *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->n_nodes; i++) {
		for (int p = 0; p < CLIENT_POOL; p++) {
			struct client_conn *n = &c->node[i].conn[p];
			if (!n->scratch)
				goto out_free; /* this one and the ones after it were never set up
						*/
			client_conn_free(n);
		}
	}
out_free:
	free(c);
}
