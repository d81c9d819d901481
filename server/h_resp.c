/*
 * h_resp.c - kvgridd's Redis commands: what redis-cli, redis-benchmark, python3-redis and
 * LMCache's redis:// connector send (doc/SERVER.md lists them and how they differ from
 * Redis).
 *
 * A value is stored and loaded in place: SET hands the grid the value where it lies in the
 * input region, and GET loads the block into the output region and writes "$<len>\r\n" just
 * in front of the value, over the end of the block's own header, so the reply goes out
 * straight from where the grid copied it.
 *
 * Keys are strings shared with lm:// (kind KV_STRING) and salted by the connection's tenant.
 * There is no expiry: EX/PX options of SET are accepted and ignored, as a cache may drop any
 * key at any time anyway.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "loop.h"
#include "metrics.h"
#include "quota.h"

#define HRESP_VERSION "7.0.0"

static int hresp_put(struct conn *c, size_t n)
{
	if (n == 0)
		return -1;
	conn_emit(c, conn_out_tail(c), n);
	return 0;
}

static int hresp_simple(struct conn *c, const char *s)
{
	return hresp_put(c, resp_put_simple((char *)conn_out_tail(c), conn_out_room(c), s));
}

static int hresp_error(struct conn *c, const char *s)
{
	return hresp_put(c, resp_put_error((char *)conn_out_tail(c), conn_out_room(c), s));
}

static int hresp_int(struct conn *c, int64_t v)
{
	return hresp_put(c, resp_put_int((char *)conn_out_tail(c), conn_out_room(c), v));
}

static int hresp_array(struct conn *c, size_t n)
{
	return hresp_put(c, resp_put_array_hdr((char *)conn_out_tail(c), conn_out_room(c), n));
}

static int hresp_bulk(struct conn *c, const void *p, size_t n)
{
	return hresp_put(c, resp_put_bulk((char *)conn_out_tail(c), conn_out_room(c), p, n));
}

static int hresp_bulk_str(struct conn *c, const char *s)
{
	return hresp_bulk(c, s, strlen(s));
}

static int hresp_nil(struct conn *c)
{
	return hresp_put(c, resp_put_nil((char *)conn_out_tail(c), conn_out_room(c)));
}

static int hresp_err_code(struct conn *c, int rc)
{
	char msg[160];
	if (rc == KVG_ETOOBIG)
		snprintf(msg, sizeof(msg), "ERR value too large for this server or over the quota");
	else
		snprintf(msg, sizeof(msg), "ERR %s", kvg_strerror(rc));
	metrics_add(&c->w->srv->metrics->errors, 1);
	return hresp_error(c, msg);
}

static void hresp_key(struct conn *c, const struct resp_arg *a, kvg_key *k)
{
	kv_key(c->w->srv, c->tenant, KV_STRING, a->p, a->len, k);
}

static void hresp_count_hit(struct conn *c, int hit)
{
	struct metrics *m = c->w->srv->metrics;
	metrics_add(hit ? &m->hits : &m->misses, 1);
	metrics_add(hit ? &m->tenant_hits[c->tenant->index] : &m->tenant_misses[c->tenant->index],
		    1);
}

/* Writes the reply of a GET whose block was loaded at blk: "$<len>\r\n" over the end of the
 * block's own header, the value, "\r\n"; or nil for a miss. */
static int hresp_get_reply(struct conn *c, uint8_t *blk, int rc, size_t block_len)
{
	size_t len = 0;
	if (rc == 0)
		rc = kv_loaded(blk, block_len, &len, NULL);
	if (rc == KVG_ENOTFOUND || rc == KVG_ECORRUPT) {
		hresp_count_hit(c, 0);
		return hresp_nil(c);
	}
	if (rc != 0)
		return hresp_err_code(c, rc);
	hresp_count_hit(c, 1);
	char hdr[RESP_HDR_MAX];
	size_t h = resp_put_bulk_hdr(hdr, sizeof(hdr), len);
	uint8_t *val = blk + KV_HDR_BYTES;
	memcpy(val - h, hdr, h); /* h < KV_HDR_BYTES: over the block's header */
	val[len] = '\r';
	val[len + 1] = '\n';
	conn_emit(c, val - h, h + len + 2);
	return 0;
}

static void hresp_get_done(struct conn *c, int status)
{
	if (hresp_get_reply(c, c->io.buf, status, c->io.len) < 0)
		c->closing = 1;
}

/* Sends a GET's value straight from the DRAM arena: 1 if the reply is queued (a hit, a miss
 * or an error), 0 if the value must be loaded instead. */
static int hresp_get_view(struct conn *c, const kvg_key *k, int *ret)
{
	struct iovec iov[64];
	int n = conn_view_room(c) - 2; /* the bulk header and the final CRLF */
	if (n <= 0 || conn_out_room(c) < RESP_HDR_MAX + 2)
		return 0;
	if (n > 64)
		n = 64;
	size_t len = 0;
	kvg_view *v = NULL;
	int rc = kv_view(c->w->srv, k, iov, &n, &len, NULL, &v);
	if (rc == 1)
		return 0;
	if (rc == KVG_ENOTFOUND || rc == KVG_ECORRUPT) {
		hresp_count_hit(c, 0);
		*ret = hresp_nil(c);
		return 1;
	}
	hresp_count_hit(c, 1);
	char hdr[RESP_HDR_MAX];
	size_t h = resp_put_bulk_hdr(hdr, sizeof(hdr), len);
	conn_write(c, hdr, h);
	conn_emit_view(c, iov, n, v, len); /* room was checked above */
	conn_write(c, "\r\n", 2);
	*ret = 0;
	return 1;
}

/*
 * One GET reply: sent from the DRAM arena, or loaded in place.  A block on NVMe only is
 * loaded without blocking the worker: then 1 is returned and finish(c, status) writes the
 * reply when the block has landed.  Otherwise 0 (reply queued) or -1 (close).
 */
static int hresp_get_key(struct conn *c, const kvg_key *k, void (*finish)(struct conn *, int))
{
	int ret;
	if (hresp_get_view(c, k, &ret))
		return ret;
	uint8_t *blk = conn_out_tail(c);
	size_t room = conn_out_room(c);
	if (room < KV_HDR_BYTES + 2)
		return hresp_err_code(c, KVG_EBUFSIZE);
	if (kv_on_nvme(c->w->srv, k)) {
		size_t droom;
		uint8_t *d = conn_out_direct(c, 0, &droom);
		if (conn_load_async(c, k, d, droom - 2, finish) == 0)
			return 1;
	}
	size_t len = 0;
	int rc = kv_get(c->w->srv, k, blk, room - 2, &len, NULL, NULL);
	return hresp_get_reply(c, blk, rc, len + KV_HDR_BYTES);
}

/* MGET: the items after one that waits for NVMe wait in c->get_keys (salted), and the
 * reply goes on from hresp_mget_loaded when it has landed. */
static void hresp_mget_run(struct conn *c);

static void hresp_mget_loaded(struct conn *c, int status)
{
	hresp_get_done(c, status);
	c->get_next++;
	hresp_mget_run(c);
}

static void hresp_mget_run(struct conn *c)
{
	while (c->get_next < c->get_n && !c->closing) {
		int r = hresp_get_key(c, &c->get_keys[c->get_next], hresp_mget_loaded);
		if (r == 1)
			return;
		if (r < 0)
			c->closing = 1;
		c->get_next++;
	}
}

static int hresp_set(struct conn *c, struct resp_cmd *cmd)
{
	for (size_t i = 3; i < cmd->argc; i++) {
		struct resp_arg *o = &cmd->argv[i];
		if (resp_arg_is(o, "EX") || resp_arg_is(o, "PX") || resp_arg_is(o, "EXAT") ||
		    resp_arg_is(o, "PXAT"))
			i++;
		else if (!resp_arg_is(o, "KEEPTTL"))
			return hresp_error(c, "ERR syntax error (kvgridd's SET takes EX/PX only)");
	}
	kvg_key k;
	hresp_key(c, &cmd->argv[1], &k);
	int rc = kv_put(c->w->srv, c->tenant, &k, (uint8_t *)cmd->argv[2].p, cmd->argv[2].len, NULL,
			1, 0);
	return rc ? hresp_err_code(c, rc) : hresp_simple(c, "OK");
}

static int hresp_mset(struct conn *c, struct resp_cmd *cmd)
{
	if (cmd->argc % 2 == 0)
		return hresp_error(c, "ERR wrong number of arguments for 'mset' command");
	for (size_t i = 1; i + 1 < cmd->argc; i += 2) {
		kvg_key k;
		hresp_key(c, &cmd->argv[i], &k);
		int rc = kv_put(c->w->srv, c->tenant, &k, (uint8_t *)cmd->argv[i + 1].p,
				cmd->argv[i + 1].len, NULL, 1, 0);
		if (rc)
			return hresp_err_code(c, rc);
	}
	return hresp_simple(c, "OK");
}

static int hresp_exists(struct conn *c, struct resp_cmd *cmd)
{
	int64_t n = 0;
	for (size_t i = 1; i < cmd->argc; i++) {
		kvg_key k;
		size_t hit = 0;
		hresp_key(c, &cmd->argv[i], &k);
		if (kv_lookup(c->w->srv, &k, 1, &hit) == 0)
			n += (int64_t)hit;
	}
	return hresp_int(c, n);
}

static int hresp_del(struct conn *c, struct resp_cmd *cmd)
{
	int64_t n = 0;
	for (size_t i = 1; i < cmd->argc; i++) {
		kvg_key k;
		hresp_key(c, &cmd->argv[i], &k);
		int r = kv_delete(c->w->srv, &k, 1);
		if (r > 0)
			n += r;
	}
	return hresp_int(c, n);
}

static int hresp_mget(struct conn *c, struct resp_cmd *cmd)
{
	size_t n = cmd->argc - 1;
	if (n > LOOP_KEYS_MAX)
		return hresp_error(c, "ERR too many keys");
	if (!c->get_keys && !(c->get_keys = malloc(sizeof(kvg_key) * LOOP_KEYS_MAX)))
		return hresp_err_code(c, -ENOMEM);
	if (hresp_array(c, n))
		return -1;
	for (size_t i = 0; i < n; i++)
		hresp_key(c, &cmd->argv[i + 1], &c->get_keys[i]);
	c->get_next = 0;
	c->get_n = (uint32_t)n;
	hresp_mget_run(c);
	return c->closing ? -1 : 0;
}

static int hresp_info(struct conn *c)
{
	struct srv *s = c->w->srv;
	struct kvg_stats st;
	struct quota_usage u;
	kvg_stats_get(s->grid, &st);
	quota_usage(s->quota, c->tenant->index, &u);
	char buf[1536];
	int n =
	    snprintf(buf, sizeof(buf),
		     "# Server\r\nredis_version:" HRESP_VERSION "\r\nkvgrid_version:%d.%d\r\n"
		     "redis_mode:standalone\r\ntcp_port:%d\r\n"
		     "# Clients\r\nconnected_clients:%llu\r\n"
		     "# Memory\r\nused_memory:%llu\r\nmaxmemory:%llu\r\n"
		     "# Stats\r\nkeyspace_hits:%llu\r\nkeyspace_misses:%llu\r\n"
		     "evicted_keys:%llu\r\n"
		     "# Persistence\r\nloading:0\r\n"
		     "# Keyspace\r\ndb0:keys=%llu,expires=0,avg_ttl=0\r\n",
		     KVG_VERSION_MAJOR, KVG_VERSION_MINOR, s->cfg.listen[0].port,
		     (unsigned long long)__atomic_load_n(&s->metrics->conns_open, __ATOMIC_RELAXED),
		     (unsigned long long)st.tier[KVG_TIER_DRAM].bytes,
		     (unsigned long long)st.tier[KVG_TIER_DRAM].capacity_bytes,
		     (unsigned long long)(st.tier[0].hits + st.tier[1].hits),
		     (unsigned long long)(st.tier[0].misses),
		     (unsigned long long)(st.tier[0].evictions + st.tier[1].evictions),
		     (unsigned long long)u.blocks);
	return hresp_bulk(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static int hresp_hello(struct conn *c, struct resp_cmd *cmd);

/* Returns 1 when authenticated, 0 when an error reply was queued, -1 without output room. */
static int hresp_auth(struct conn *c, const struct resp_arg *user, const struct resp_arg *pass)
{
	struct srv *s = c->w->srv;
	if (!s->auth)
		return hresp_error(
		    c, "ERR AUTH <password> called without any password configured "
		       "for the default user. Are you sure your configuration is correct?");
	const struct srv_tenant *t = srv_auth(s, pass->p, pass->len);
	if (t && user && !resp_arg_is(user, "default") &&
	    (user->len != strlen(t->name) || memcmp(user->p, t->name, user->len) != 0))
		t = NULL;
	if (!t) {
		metrics_add(&s->metrics->auth_failures, 1);
		return hresp_error(c,
				   "WRONGPASS invalid username-password pair or user is disabled.");
	}
	c->tenant = t;
	return 1;
}

static int hresp_hello(struct conn *c, struct resp_cmd *cmd)
{
	uint64_t ver = 2;
	if (cmd->argc >= 2 && (resp_arg_u64(&cmd->argv[1], &ver) || ver < 2 || ver > 3))
		return hresp_error(c, "NOPROTO unsupported protocol version");
	if (ver == 3)
		return hresp_error(c, "NOPROTO kvgridd speaks RESP2 only");
	for (size_t i = 2; i < cmd->argc; i++) {
		if (resp_arg_is(&cmd->argv[i], "AUTH") && i + 2 < cmd->argc) {
			if (c->w->srv->auth) {
				int r = hresp_auth(c, &cmd->argv[i + 1], &cmd->argv[i + 2]);
				if (r <= 0)
					return r; /* the reply was WRONGPASS */
			}
			i += 2;
		} else if (resp_arg_is(&cmd->argv[i], "SETNAME") && i + 1 < cmd->argc) {
			i++;
		} else {
			return hresp_error(c, "ERR syntax error in HELLO");
		}
	}
	if (!c->tenant)
		return hresp_error(c,
				   "NOAUTH HELLO must be called with the client already "
				   "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
				   "option can be used to authenticate the client");
	static const char *const kv[] = {"server", "redis", "version", HRESP_VERSION, "proto"};
	int rc = hresp_array(c, 14);
	for (int i = 0; i < 5 && !rc; i++)
		rc = hresp_bulk_str(c, kv[i]);
	rc = rc ? rc : hresp_int(c, 2);
	rc = rc ? rc : hresp_bulk_str(c, "id");
	rc = rc ? rc : hresp_int(c, c->fd);
	static const char *const kv2[] = {"mode", "standalone", "role", "master", "modules"};
	for (int i = 0; i < 5 && !rc; i++)
		rc = hresp_bulk_str(c, kv2[i]);
	return rc ? rc : hresp_array(c, 0);
}

static int hresp_config(struct conn *c, struct resp_cmd *cmd)
{
	/* redis-benchmark asks for "save" and "appendonly": answer every name, empty */
	if (cmd->argc < 3 || !resp_arg_is(&cmd->argv[1], "GET"))
		return hresp_simple(c, "OK");
	int rc = hresp_array(c, 2 * (cmd->argc - 2));
	for (size_t i = 2; i < cmd->argc && !rc; i++) {
		rc = hresp_bulk(c, cmd->argv[i].p, cmd->argv[i].len);
		rc = rc ? rc : hresp_bulk(c, "", 0);
	}
	return rc;
}

static int hresp_get(struct conn *c, struct resp_cmd *cmd)
{
	kvg_key k;
	hresp_key(c, &cmd->argv[1], &k);
	int r = hresp_get_key(c, &k, hresp_get_done);
	return r < 0 ? -1 : 0;
}

static int hresp_ping(struct conn *c, struct resp_cmd *cmd)
{
	return cmd->argc > 1 ? hresp_bulk(c, cmd->argv[1].p, cmd->argv[1].len)
			     : hresp_simple(c, "PONG");
}

static int hresp_echo(struct conn *c, struct resp_cmd *cmd)
{
	return hresp_bulk(c, cmd->argv[1].p, cmd->argv[1].len);
}

static int hresp_auth_cmd(struct conn *c, struct resp_cmd *cmd)
{
	int two = cmd->argc > 2; /* AUTH tenant token, or AUTH token */
	int r = hresp_auth(c, two ? &cmd->argv[1] : NULL, &cmd->argv[two ? 2 : 1]);
	return r > 0 ? hresp_simple(c, "OK") : r;
}

static int hresp_select(struct conn *c, struct resp_cmd *cmd)
{
	return cmd->argv[1].len == 1 && cmd->argv[1].p[0] == '0'
		   ? hresp_simple(c, "OK")
		   : hresp_error(c, "ERR DB index is out of range");
}

static int hresp_dbsize(struct conn *c, struct resp_cmd *cmd)
{
	struct quota_usage u;
	quota_usage(c->w->srv->quota, c->tenant->index, &u);
	return hresp_int(c, (int64_t)u.blocks);
}

static int hresp_info_cmd(struct conn *c, struct resp_cmd *cmd)
{
	return hresp_info(c);
}

static int hresp_command(struct conn *c, struct resp_cmd *cmd)
{
	if (cmd->argc > 1 && resp_arg_is(&cmd->argv[1], "COUNT"))
		return hresp_int(c, 17);
	return hresp_array(c, 0); /* no command table: clients fall back to defaults */
}

static int hresp_ok(struct conn *c, struct resp_cmd *cmd)
{
	return hresp_simple(c, "OK");
}

static int hresp_quit(struct conn *c, struct resp_cmd *cmd)
{
	hresp_simple(c, "OK");
	return -1;
}

/* The commands: name, fewest arguments (the name included), the latency histogram they
 * count in, whether they work before authentication, and the function. */
/* clang-format off */
static const struct hresp_command {
	const char *name;
	uint8_t min_args;
	uint8_t op;
	uint8_t open;
	int (*fn)(struct conn *c, struct resp_cmd *cmd);
} hresp_commands[] = {
	{ "GET", 2, MOP_GET, 0, hresp_get },
	{ "SET", 3, MOP_SET, 0, hresp_set },
	{ "EXISTS", 2, MOP_EXISTS, 0, hresp_exists },
	{ "DEL", 2, MOP_DEL, 0, hresp_del },
	{ "UNLINK", 2, MOP_DEL, 0, hresp_del },
	{ "MGET", 2, MOP_GET, 0, hresp_mget },
	{ "MSET", 3, MOP_SET, 0, hresp_mset },
	{ "PING", 1, MOP_OTHER, 1, hresp_ping },
	{ "ECHO", 2, MOP_OTHER, 0, hresp_echo },
	{ "AUTH", 2, MOP_OTHER, 1, hresp_auth_cmd },
	{ "HELLO", 1, MOP_OTHER, 1, hresp_hello },
	{ "SELECT", 2, MOP_OTHER, 0, hresp_select },
	{ "DBSIZE", 1, MOP_OTHER, 0, hresp_dbsize },
	{ "INFO", 1, MOP_OTHER, 0, hresp_info_cmd },
	{ "COMMAND", 1, MOP_OTHER, 0, hresp_command },
	{ "CONFIG", 1, MOP_OTHER, 0, hresp_config },
	{ "CLIENT", 1, MOP_OTHER, 0, hresp_ok },
	{ "QUIT", 1, MOP_OTHER, 1, hresp_quit },
};
/* clang-format on */

static int hresp_unknown(struct conn *c, const struct resp_arg *a)
{
	char msg[128];
	snprintf(msg, sizeof(msg), "ERR unknown command '%.*s'", (int)(a->len > 48 ? 48 : a->len),
		 a->p);
	for (char *p = msg; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return hresp_error(c, msg);
}

/* Runs one command; returns 0, or -1 to close the connection once the reply is sent. */
static int hresp_dispatch(struct conn *c, struct resp_cmd *cmd, int *op)
{
	const struct resp_arg *a = &cmd->argv[0];
	const struct hresp_command *k = NULL;
	for (size_t i = 0; i < sizeof(hresp_commands) / sizeof(hresp_commands[0]) && !k; i++)
		if (resp_arg_is(a, hresp_commands[i].name))
			k = &hresp_commands[i];
	if (!k)
		return hresp_unknown(c, a);
	if (!c->tenant && !k->open)
		return hresp_error(c, "NOAUTH Authentication required.");
	if (cmd->argc < k->min_args) {
		char msg[96];
		snprintf(msg, sizeof(msg), "ERR wrong number of arguments for '%s' command",
			 k->name);
		return hresp_error(c, msg);
	}
	*op = k->op;
	return k->fn(c, cmd);
}

ssize_t hresp_try_fill(struct conn *c, uint8_t *p, size_t avail)
{
	struct srv *s = c->w->srv;
	const struct resp_limits lim = {
	    .args_max = RESP_ARGS_MAX, .bulk_max = s->cfg.value_max, .inline_max = 65536};
	struct resp_arg key;
	uint64_t vlen = 0;
	ssize_t head = resp_peek_set((const char *)p, avail, &lim, &key, &vlen);
	/* only a value still arriving, large enough to be worth it, from an authenticated
	 * client (anything else takes the ordinary path and its replies) */
	if (head <= 0 || vlen < LOOP_FILL_MIN || avail - (size_t)head >= vlen || !c->tenant)
		return 0;
	uint64_t t0 = metrics_now_us();
	kvg_key k;
	hresp_key(c, &key, &k);
	if (kv_fill_begin(s, c->tenant, &k, (size_t)vlen, NULL, &c->fill))
		return 0;
	c->fill.t0_us = t0;
	kv_fill_put(&c->fill, p + head, avail - (size_t)head);
	c->fill_state = FILL_VALUE;
	return (ssize_t)avail;
}

ssize_t hresp_fill_end(struct conn *c, uint8_t *p, size_t avail)
{
	struct srv *s = c->w->srv;
	if (avail < 2)
		return 0;
	c->fill_state = FILL_NONE;
	if (p[0] != '\r' || p[1] != '\n') {
		kv_fill_abort(s, &c->fill);
		metrics_add(&s->metrics->proto_errors, 1);
		hresp_error(c, "ERR Protocol error: expected '\\r\\n' after the value");
		return -1;
	}
	int rc = kv_fill_commit(s, c->tenant, &c->fill);
	if (rc == 0)
		metrics_add(&s->metrics->direct_sets, 1);
	int r = rc ? hresp_err_code(c, rc) : hresp_simple(c, "OK");
	metrics_observe(s->metrics, MOP_SET, metrics_now_us() - c->fill.t0_us);
	metrics_add(&s->metrics->tenant_requests[c->tenant->index], 1);
	return r < 0 ? -1 : 2;
}

ssize_t hresp_handle(struct conn *c, uint8_t *p, size_t avail)
{
	struct srv *s = c->w->srv;
	struct resp_cmd *cmd = &c->w->cmd;
	const struct resp_limits lim = {
	    .args_max = RESP_ARGS_MAX, .bulk_max = s->cfg.value_max, .inline_max = 65536};
	const char *why = NULL;
	ssize_t r = resp_parse((char *)p, avail, &lim, cmd, &why);
	if (r <= 0) {
		if (r < 0) {
			metrics_add(&s->metrics->proto_errors, 1);
			hresp_error(c, why);
		}
		return r;
	}
	if (cmd->argc == 0)
		return r;
	uint64_t t0 = metrics_now_us();
	int op = MOP_OTHER;
	int rc = hresp_dispatch(c, cmd, &op);
	metrics_observe(s->metrics, op, metrics_now_us() - t0);
	if (c->tenant)
		metrics_add(&s->metrics->tenant_requests[c->tenant->index], 1);
	return rc < 0 ? -1 : r;
}
