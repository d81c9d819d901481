/*
 * h_native.c - the native protocol's operations (proto_native.h, doc/PROTOCOL.md): what
 * libkvgrid's client uses.
 *
 * A frame that is well delimited but wrong inside (a count that does not match its length,
 * an operation before HELLO on a server with auth) gets a reply with an error status and the
 * connection goes on; a frame that cannot be delimited closes the connection.
 *
 * GET replies are sent from the DRAM arena (views), or built in place: a block is loaded
 * where its item header goes, and the 32-byte item header is written over the block's own
 * 32-byte header.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "loop.h"
#include "metrics.h"
#include "proto_native.h"

#define HNAT_STATS_FIELDS 35

/* Queues a reply frame of body_len bytes whose body was already written at tail + 24. */
static void hnat_reply(struct conn *c, const struct nat_hdr *req, int status, uint32_t body_len)
{
	uint8_t *out = conn_out_tail(c);
	struct nat_hdr h = {.op = req->op, .id = req->id, .status = status, .body_len = body_len};
	nat_hdr_encode(out, &h);
	conn_emit(c, out, NAT_HDR_BYTES + body_len);
}

static uint8_t *hnat_body(struct conn *c)
{
	return conn_out_tail(c) + NAT_HDR_BYTES;
}

/* Reads "u32 n, u32 flags, n keys", salting each key into w->keys.  Returns n or -1. */
static int hnat_keys(struct conn *c, const uint8_t *b, uint32_t len, uint32_t *flags)
{
	if (len < 8)
		return -1;
	uint32_t n = nat_get_u32(b);
	*flags = nat_get_u32(b + 4);
	if (n > LOOP_KEYS_MAX || len != 8 + (uint64_t)n * KVG_KEY_BYTES)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		kv_key(c->w->srv, c->tenant, KV_NATIVE, b + 8 + i * KVG_KEY_BYTES, KVG_KEY_BYTES,
		       &c->w->keys[i]);
	return (int)n;
}

static void hnat_hello(struct conn *c, const struct nat_hdr *h, const uint8_t *b)
{
	struct srv *s = c->w->srv;
	if (h->body_len < 8 || nat_get_u32(b + 4) > h->body_len - 8) {
		hnat_reply(c, h, KVG_EPROTO, 0);
		return;
	}
	if (s->auth) {
		const struct srv_tenant *t = srv_auth(s, (const char *)b + 8, nat_get_u32(b + 4));
		if (!t) {
			metrics_add(&s->metrics->auth_failures, 1);
			hnat_reply(c, h, KVG_EAUTH, 0);
			return;
		}
		c->tenant = t;
	}
	uint8_t *o = hnat_body(c);
	nat_put_u32(o, NAT_VERSION);
	nat_put_u32(o + 4, s->auth ? 1 : 0);
	nat_put_u64(o + 8, s->cfg.value_max);
	nat_put_u64(o + 16, s->cfg.frame_max);
	hnat_reply(c, h, 0, 24);
}

/* Writes the frame of GET item i (of n) whose block is at item (len bytes, from a load) or
 * in view's pieces; rc is the block's status, tier where the grid found it. */
static void hnat_get_item(struct conn *c, uint64_t id, int i, int n, uint8_t *item, int rc,
			  size_t len, const struct lmp_meta *meta, const struct iovec *iov,
			  int niov, kvg_view *view, uint8_t tier)
{
	struct metrics *m = c->w->srv->metrics;
	if (rc == KVG_ECORRUPT)
		rc = KVG_ENOTFOUND;
	metrics_add(rc == 0 ? &m->hits : &m->misses, 1);
	metrics_add(
	    rc == 0 ? &m->tenant_hits[c->tenant->index] : &m->tenant_misses[c->tenant->index], 1);
	if (rc)
		len = 0;
	nat_put_u32(item, (uint32_t)rc);
	nat_put_u32(item + 4, (uint32_t)len);
	nat_put_u32(item + 8, (uint32_t)meta->fmt);
	nat_put_u32(item + 12, (uint32_t)meta->dtype);
	for (int d = 0; d < 4; d++)
		nat_put_u32(item + 16 + 4 * d, (uint32_t)meta->shape[d]);
	struct nat_hdr r = {.op = NAT_GET,
			    .id = id,
			    .status = rc,
			    .flags =
				(uint16_t)((i + 1 < n ? NAT_F_MORE : 0) | nat_tier_flags(rc, tier)),
			    .body_len = (uint32_t)(NAT_ITEM_BYTES + len)};
	uint8_t *out = item - NAT_HDR_BYTES;
	nat_hdr_encode(out, &r);
	if (view) {
		conn_emit(c, out, NAT_HDR_BYTES + NAT_ITEM_BYTES);
		conn_emit_view(c, iov, niov, view, len); /* the caller left room */
	} else {
		conn_emit(c, out, NAT_HDR_BYTES + NAT_ITEM_BYTES + len);
	}
	conn_push(c);
}

static void hnat_get_run(struct conn *c);

/* An asynchronous load of item c->get_next finished: its frame, then the items after it. */
static void hnat_get_loaded(struct conn *c, int status)
{
	struct lmp_meta meta = {0};
	uint8_t *item = c->io.buf;
	size_t len = 0;
	if (status == 0)
		status = kv_loaded(item, c->io.len, &len, &meta);
	hnat_get_item(c, c->get_id, (int)c->get_next, (int)c->get_n, item, status, len, &meta, NULL,
		      0, NULL, c->io.tier);
	c->get_next++;
	hnat_get_run(c);
}

/*
 * A GET is answered with one frame per key, in order, all with the request's id; every frame
 * but the last has NAT_F_MORE.  Each frame leaves as soon as its block is ready, so the
 * client receives block i while the server loads block i + 1.  A block in DRAM is sent from
 * the arena (a view); one on NVMe only is loaded without blocking the worker: the keys left
 * wait in c->get_keys, and hnat_get_loaded goes on from there when the block has landed.
 */
static void hnat_get_run(struct conn *c)
{
	while (c->get_next < c->get_n) {
		int i = (int)c->get_next, n = (int)c->get_n;
		const kvg_key *key = &c->get_keys[i];
		uint8_t *item = conn_out_tail(c) + NAT_HDR_BYTES;
		size_t room = conn_out_room(c);
		struct lmp_meta meta = {0};
		size_t len = 0;
		struct iovec iov[64];
		int niov = conn_view_room(c) - 1; /* and the item's header */
		if (niov > 64)
			niov = 64;
		kvg_view *v = NULL;
		uint8_t tier = KVG_TIER_DRAM; /* a view lends DRAM */
		int rc = room < NAT_HDR_BYTES + NAT_ITEM_BYTES ? KVG_EBUFSIZE
			 : niov > 0 ? kv_view(c->w->srv, key, iov, &niov, &len, &meta, &v)
				    : 1;
		if (rc == 1) {
			v = NULL;
			size_t droom;
			uint8_t *d = conn_out_direct(c, NAT_HDR_BYTES, &droom);
			if (kv_on_nvme(c->w->srv, key) &&
			    conn_load_async(c, key, d, droom - NAT_HDR_BYTES, hnat_get_loaded) == 0)
				return;
			rc = kv_get(c->w->srv, key, item, room - NAT_HDR_BYTES, &len, &meta, &tier);
		}
		hnat_get_item(c, c->get_id, i, n, item, rc, len, &meta, iov, niov, v, tier);
		c->get_next++;
	}
}

static void hnat_get(struct conn *c, const struct nat_hdr *h, int n)
{
	if (n == 0)
		return hnat_reply(c, h, 0, 0);
	if (!c->get_keys && !(c->get_keys = malloc(sizeof(kvg_key) * LOOP_KEYS_MAX)))
		return hnat_reply(c, h, -ENOMEM, 0);
	memcpy(c->get_keys, c->w->keys, sizeof(kvg_key) * (size_t)n);
	c->get_id = h->id;
	c->get_next = 0;
	c->get_n = (uint32_t)n;
	hnat_get_run(c);
}

/* Checks that the items of a PUT exactly fill its body before anything is stored. */
static int hnat_put_check(const uint8_t *b, uint32_t len, uint32_t *n_out)
{
	if (len < 8)
		return -1;
	uint32_t n = nat_get_u32(b);
	uint64_t pos = 8;
	for (uint32_t i = 0; i < n; i++) {
		if (len - pos < NAT_PUT_ITEM_BYTES)
			return -1;
		pos += NAT_PUT_ITEM_BYTES + (uint64_t)nat_get_u32(b + pos + KVG_KEY_BYTES);
		if (pos > len)
			return -1;
	}
	if (pos != len || n > LOOP_KEYS_MAX)
		return -1;
	*n_out = n;
	return 0;
}

static void hnat_put(struct conn *c, const struct nat_hdr *h, uint8_t *b)
{
	uint32_t n;
	if (hnat_put_check(b, h->body_len, &n) < 0) {
		hnat_reply(c, h, KVG_EPROTO, 0);
		return;
	}
	uint32_t flags = nat_get_u32(b + 4);
	uint8_t *o = hnat_body(c);
	nat_put_u32(o, n);
	nat_put_u32(o + 4, 0);
	size_t pos = 8;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *item = b + pos;
		uint32_t len = nat_get_u32(item + KVG_KEY_BYTES);
		kvg_key k;
		kv_key(c->w->srv, c->tenant, KV_NATIVE, item, KVG_KEY_BYTES, &k);
		/* kv_put writes the value header over this item's header: read first */
		int rc = kv_put(c->w->srv, c->tenant, &k, item + NAT_PUT_ITEM_BYTES, len, NULL, 0,
				flags & KVG_STORE_NVME);
		if (rc)
			metrics_add(&c->w->srv->metrics->errors, 1);
		nat_put_u32(o + 8 + 4 * i, (uint32_t)rc);
		pos += NAT_PUT_ITEM_BYTES + len;
	}
	hnat_reply(c, h, 0, 8 + 4 * n);
}

static void hnat_lookup_tokens(struct conn *c, const struct nat_hdr *h, uint8_t *b)
{
	struct srv *s = c->w->srv;
	uint32_t n = h->body_len >= 8 ? nat_get_u32(b) : 0;
	uint32_t bt = kvg_config_of(s->grid)->block_tokens;
	if (h->body_len < 8 || h->body_len != 8 + (uint64_t)n * 4 ||
	    n / (bt ? bt : 1) > LOOP_KEYS_MAX) {
		hnat_reply(c, h, KVG_EPROTO, 0);
		return;
	}
	/* kvg_block_keys wants aligned host u32s; the tokens arrive little-endian (the host's
	 * order on x86-64 and arm64) at any offset: slide them back over the parsed n and flags */
	uint8_t *tok = (uint8_t *)b + 8;
	size_t mis = (uintptr_t)tok % sizeof(uint32_t);
	if (mis) {
		memmove(tok - mis, tok, (size_t)n * 4);
		tok -= mis;
	}
	size_t nk = kvg_block_keys(s->grid, (const uint32_t *)(void *)tok, n, NULL, c->w->keys,
				   LOOP_KEYS_MAX);
	for (size_t i = 0; i < nk; i++)
		kv_key(s, c->tenant, KV_NATIVE, c->w->keys[i].bytes, KVG_KEY_BYTES, &c->w->keys[i]);
	size_t hits = 0;
	int rc = kv_lookup(s, c->w->keys, nk, &hits);
	nat_put_u64(hnat_body(c), (uint64_t)hits * bt);
	hnat_reply(c, h, rc, rc ? 0 : 8);
}

/* LOOKUP: consecutive hits; with NAT_LOOKUP_F_TIERS, each hit's tier too, written straight
 * into the reply (a request is only served with room for its largest reply). */
static void hnat_lookup(struct conn *c, const struct nat_hdr *h, int n, uint32_t flags)
{
	uint8_t *o = hnat_body(c);
	int tiers = (flags & NAT_LOOKUP_F_TIERS) != 0;
	size_t hits = 0;
	int r =
	    kvg_lookup_keys(c->w->srv->grid, c->w->keys, (size_t)n, &hits, tiers ? o + 8 : NULL);
	nat_put_u32(o, (uint32_t)hits);
	nat_put_u32(o + 4, tiers ? NAT_LOOKUP_F_TIERS : 0);
	hnat_reply(c, h, r, r ? 0 : 8 + (tiers ? (uint32_t)hits : 0));
}

static void hnat_stats(struct conn *c, const struct nat_hdr *h)
{
	struct kvg_stats st;
	kvg_stats_get(c->w->srv->grid, &st);
	uint64_t f[HNAT_STATS_FIELDS];
	int k = 0;
	for (int t = 0; t < KVG_TIER_COUNT; t++) {
		const struct kvg_tier_stats *ts = &st.tier[t];
		const uint64_t v[] = {ts->capacity_bytes,
				      ts->bytes,
				      ts->blocks,
				      ts->hits,
				      ts->misses,
				      ts->evictions,
				      ts->bytes_read,
				      ts->bytes_written,
				      ts->checksum_failures,
				      ts->io_errors,
				      ts->promotions,
				      ts->demotions,
				      (uint64_t)ts->degraded};
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
			f[k++] = v[i];
	}
	const uint64_t g[] = {st.lookups,	 st.stores,	  st.loads,
			      st.store_failures, st.index_blocks, st.index_capacity,
			      st.index_bytes,	 st.recovery_us,  st.recovered_blocks};
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
		f[k++] = g[i];
	uint8_t *o = hnat_body(c);
	nat_put_u32(o, (uint32_t)k);
	nat_put_u32(o + 4, 0);
	for (int i = 0; i < k; i++)
		nat_put_u64(o + 8 + 8 * i, f[i]);
	hnat_reply(c, h, 0, 8 + 8 * (uint32_t)k);
}

/* The server's metrics text; with auth, other tenants' lines are left out. */
static void hnat_metrics(struct conn *c, const struct nat_hdr *h)
{
	struct srv *s = c->w->srv;
	char *o = (char *)hnat_body(c);
	size_t room = conn_out_room(c) - NAT_HDR_BYTES;
	size_t n = metrics_render(s, o, room);
	if (s->auth) {
		char mine[SRV_TENANT_NAME_MAX + 16];
		snprintf(mine, sizeof(mine), "tenant=\"%s\"",
			 c->tenant->name[0] ? c->tenant->name : "default");
		size_t w = 0;
		for (size_t r = 0; r < n;) {
			char *nl = memchr(o + r, '\n', n - r);
			size_t len = nl ? (size_t)(nl - (o + r)) + 1 : n - r;
			char save = o[r + len - 1];
			o[r + len - 1] = 0; /* for strstr, within the line */
			int keep = !strstr(o + r, "tenant=\"") || strstr(o + r, mine);
			o[r + len - 1] = save;
			if (keep) {
				memmove(o + w, o + r, len);
				w += len;
			}
			r += len;
		}
		n = w;
	}
	hnat_reply(c, h, 0, (uint32_t)n);
}

static int hnat_op_metric(int op)
{
	switch (op) {
	case NAT_GET:
		return MOP_GET;
	case NAT_PUT:
		return MOP_SET;
	case NAT_LOOKUP:
		return MOP_EXISTS;
	case NAT_LOOKUP_TOKENS:
		return MOP_LOOKUP;
	case NAT_DELETE:
		return MOP_DEL;
	default:
		return MOP_OTHER;
	}
}

static void hnat_dispatch(struct conn *c, const struct nat_hdr *h, uint8_t *b)
{
	struct srv *s = c->w->srv;
	if (h->op == NAT_HELLO)
		return hnat_hello(c, h, b);
	if (!c->tenant)
		return hnat_reply(c, h, KVG_EAUTH, 0);
	if (h->op == NAT_PUT)
		return hnat_put(c, h, b);
	if (h->op == NAT_LOOKUP_TOKENS)
		return hnat_lookup_tokens(c, h, b);
	if (h->op == NAT_STATS)
		return hnat_stats(c, h);
	if (h->op == NAT_METRICS)
		return hnat_metrics(c, h);
	uint32_t flags;
	int n = hnat_keys(c, b, h->body_len, &flags);
	if (n < 0)
		return hnat_reply(c, h, KVG_EPROTO, 0);
	if (h->op == NAT_GET)
		return hnat_get(c, h, n);
	if (h->op == NAT_LOOKUP)
		return hnat_lookup(c, h, n, flags);
	int r = 0;
	if (h->op == NAT_DELETE)
		r = kv_delete(s, c->w->keys, (size_t)n);
	else if (h->op == NAT_PIN)
		r = kvg_pin(s->grid, c->w->keys, (size_t)n);
	else
		r = kvg_unpin(s->grid, c->w->keys, (size_t)n);
	uint8_t *o = hnat_body(c);
	nat_put_u32(o, (uint32_t)(r > 0 ? r : 0));
	nat_put_u32(o + 4, 0);
	hnat_reply(c, h, r < 0 ? r : 0, r < 0 ? 0 : 8);
}

ssize_t hnat_handle(struct conn *c, uint8_t *p, size_t avail)
{
	struct srv *s = c->w->srv;
	if (avail < NAT_HDR_BYTES)
		return 0;
	struct nat_hdr h;
	const char *why = NULL;
	if (nat_hdr_decode(p, (uint32_t)s->cfg.frame_max, 1, &h, &why) < 0) {
		metrics_add(&s->metrics->proto_errors, 1);
		hnat_reply(c, &h, KVG_EPROTO, 0);
		return -1;
	}
	if (avail - NAT_HDR_BYTES < h.body_len)
		return 0;
	uint64_t t0 = metrics_now_us();
	hnat_dispatch(c, &h, p + NAT_HDR_BYTES);
	metrics_observe(s->metrics, hnat_op_metric(h.op), metrics_now_us() - t0);
	if (c->tenant)
		metrics_add(&s->metrics->tenant_requests[c->tenant->index], 1);
	return NAT_HDR_BYTES + (ssize_t)h.body_len;
}
