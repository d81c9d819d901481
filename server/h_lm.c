/*
 * h_lm.c - LMCache's lm:// protocol (proto_lm.h) served from the grid.
 *
 * LMCache's client sends one request at a time and reads exactly the reply it expects; a
 * PUT has no reply at all, so a failed PUT can only be counted, and the client finds out on
 * its next GET (a miss).  fmt, dtype and shape are kept in the value's header (kv.h) and
 * echoed exactly.  lm:// has no authentication: on a server with auth configured only
 * HEALTH works over it.
 */
#include <string.h>

#include "kv.h"
#include "loop.h"
#include "metrics.h"

static int hlm_reply(struct conn *c, int32_t code)
{
	uint8_t rep[LMP_REPLY_BYTES];
	lmp_encode_reply(rep, code, 0, NULL);
	return conn_write(c, rep, sizeof(rep));
}

static void hlm_count_hit(struct conn *c, int hit)
{
	struct metrics *m = c->w->srv->metrics;
	metrics_add(hit ? &m->hits : &m->misses, 1);
	metrics_add(hit ? &m->tenant_hits[c->tenant->index] : &m->tenant_misses[c->tenant->index],
		    1);
}

/* The block lands 4 bytes into the output tail, so the 36-byte reply header is written over
 * the block's own 32-byte header and the payload follows it without a gap. */
/* Writes the reply of a GET whose block was loaded at out + 4 (block_len bytes). */
static int hlm_get_reply(struct conn *c, uint8_t *out, int rc, size_t block_len)
{
	struct lmp_meta meta;
	size_t len = 0;
	if (rc == 0)
		rc = kv_loaded(out + 4, block_len, &len, &meta);
	hlm_count_hit(c, rc == 0);
	if (rc != 0 || len > INT32_MAX)
		return hlm_reply(c, LMP_FAIL);
	lmp_encode_reply(out, LMP_SUCCESS, (int32_t)len, &meta);
	conn_emit(c, out, LMP_REPLY_BYTES + len);
	return 0;
}

static void hlm_get_done(struct conn *c, int status)
{
	if (hlm_get_reply(c, (uint8_t *)c->io.buf - 4, status, c->io.len) < 0)
		c->closing = 1;
}

/* Sends a GET's value straight from the DRAM arena: 1 if the reply is queued, 0 if the
 * value must be loaded instead. */
static int hlm_get_view(struct conn *c, const kvg_key *k, int *ret)
{
	struct iovec iov[64];
	int n = conn_view_room(c) - 1;
	if (n <= 0)
		return 0;
	if (n > 64)
		n = 64;
	struct lmp_meta meta;
	size_t len = 0;
	kvg_view *v = NULL;
	int rc = kv_view(c->w->srv, k, iov, &n, &len, &meta, &v);
	if (rc == 1)
		return 0;
	if (rc == 0 && len > INT32_MAX) {
		kvg_view_release(c->w->srv->grid, v);
		rc = KVG_ETOOBIG;
	}
	hlm_count_hit(c, rc == 0);
	if (rc != 0) {
		*ret = hlm_reply(c, LMP_FAIL);
		return 1;
	}
	uint8_t *out = conn_out_tail(c);
	lmp_encode_reply(out, LMP_SUCCESS, (int32_t)len, &meta);
	conn_emit(c, out, LMP_REPLY_BYTES);
	conn_emit_view(c, iov, n, v, len); /* room was checked above */
	*ret = 0;
	return 1;
}

/* A GET: sent from the DRAM arena, or loaded in place; a block on NVMe only loads without
 * blocking the worker, and the reply follows when it lands. */
static int hlm_get(struct conn *c, const kvg_key *k)
{
	uint8_t *out = conn_out_tail(c);
	size_t room = conn_out_room(c);
	if (room <= LMP_REPLY_BYTES)
		return hlm_reply(c, LMP_FAIL);
	int ret;
	if (hlm_get_view(c, k, &ret))
		return ret;
	if (kv_on_nvme(c->w->srv, k)) {
		size_t droom;
		uint8_t *d = conn_out_direct(c, 4, &droom);
		if (conn_load_async(c, k, d, droom - 4, hlm_get_done) == 0)
			return 0;
	}
	size_t len = 0;
	int rc = kv_get(c->w->srv, k, out + 4, room - 4, &len, NULL, NULL);
	return hlm_get_reply(c, out, rc, len + KV_HDR_BYTES);
}

static int hlm_exist(struct conn *c, const kvg_key *k)
{
	size_t hit = 0;
	int rc = kv_lookup(c->w->srv, k, 1, &hit);
	return hlm_reply(c, rc == 0 && hit == 1 ? LMP_SUCCESS : LMP_FAIL);
}

ssize_t hlm_try_fill(struct conn *c, uint8_t *p, size_t avail)
{
	struct srv *s = c->w->srv;
	struct lmp_req req;
	const char *why = NULL;
	/* a PUT of a large value still arriving, from a connection with a tenant */
	if (avail < LMP_REQ_BYTES || !c->tenant ||
	    lmp_decode_req(p, s->cfg.value_max, &req, &why) < 0 || req.command != LMP_PUT ||
	    (size_t)req.length < LOOP_FILL_MIN || avail - LMP_REQ_BYTES >= (size_t)req.length)
		return 0;
	uint64_t t0 = metrics_now_us();
	kvg_key k;
	kv_key(s, c->tenant, KV_STRING, req.key, req.key_len, &k);
	if (kv_fill_begin(s, c->tenant, &k, (size_t)req.length, &req.meta, &c->fill))
		return 0;
	c->fill.t0_us = t0;
	kv_fill_put(&c->fill, p + LMP_REQ_BYTES, avail - LMP_REQ_BYTES);
	c->fill_state = FILL_VALUE;
	return (ssize_t)avail;
}

/* A PUT's value is complete: publish it (a PUT has no reply: a failure is only counted). */
ssize_t hlm_fill_end(struct conn *c, uint8_t *p, size_t avail)
{
	struct srv *s = c->w->srv;
	c->fill_state = FILL_NONE;
	if (kv_fill_commit(s, c->tenant, &c->fill))
		metrics_add(&s->metrics->errors, 1);
	else
		metrics_add(&s->metrics->direct_sets, 1);
	metrics_observe(s->metrics, MOP_SET, metrics_now_us() - c->fill.t0_us);
	metrics_add(&s->metrics->tenant_requests[c->tenant->index], 1);
	return 0;
}

ssize_t hlm_handle(struct conn *c, uint8_t *p, size_t avail)
{
	struct srv *s = c->w->srv;
	if (avail < LMP_REQ_BYTES)
		return 0;
	struct lmp_req req;
	const char *why = NULL;
	if (lmp_decode_req(p, s->cfg.value_max, &req, &why) < 0) {
		metrics_add(&s->metrics->proto_errors, 1);
		srv_log("kvgridd: lm:// client sent a bad request (%s); closing it", why);
		return -1;
	}
	size_t total = LMP_REQ_BYTES + (req.command == LMP_PUT ? (size_t)req.length : 0);
	if (avail < total)
		return 0;
	uint64_t t0 = metrics_now_us();
	int op = MOP_OTHER, rc = 0;
	kvg_key k;
	if (c->tenant)
		kv_key(s, c->tenant, KV_STRING, req.key, req.key_len, &k);
	if (req.command == LMP_HEALTH) {
		rc = hlm_reply(c, LMP_SUCCESS);
	} else if (!c->tenant || req.command == LMP_LIST) {
		if (req.command != LMP_PUT)
			rc = hlm_reply(c, LMP_FAIL);
	} else if (req.command == LMP_PUT) {
		op = MOP_SET;
		/* the value's header goes over the end of the request header (the key's padding) */
		if (kv_put(s, c->tenant, &k, p + LMP_REQ_BYTES, (size_t)req.length, &req.meta, 1,
			   0))
			metrics_add(&s->metrics->errors, 1);
	} else if (req.command == LMP_GET) {
		op = MOP_GET;
		rc = hlm_get(c, &k);
	} else {
		op = MOP_EXISTS;
		rc = hlm_exist(c, &k);
	}
	metrics_observe(s->metrics, op, metrics_now_us() - t0);
	if (c->tenant)
		metrics_add(&s->metrics->tenant_requests[c->tenant->index], 1);
	return rc < 0 ? -1 : (ssize_t)total;
}
