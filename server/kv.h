/*
 * kv.h - what every protocol handler does to the grid: derive a tenant's key, store a value
 * with its small header, load it back, test, delete, pin.
 *
 * Tenant salt.  A client key (a RESP or lm:// string, or a native 32-byte block key) is never
 * used as a grid key directly.  The grid key is
 *
 *     kvg_raw_key(grid, tenant name || 0x00 || kind || client key)
 *
 * where the tenant comes from the connection's authentication, never from the request, and
 * kind is 's' for string keys (RESP and lm:// share them) or 'n' for native keys.  Two
 * tenants storing the same tokens therefore never share a block, and no request can name
 * another tenant's block.
 *
 * Stored value.  Each block the server stores is a 32-byte header then the client's bytes:
 *
 *   0  magic  "KVGV"      8  fmt    i32 (lm:// MemoryFormat; 0 otherwise)
 *   4  flags  u32         12 dtype  i32
 *                         16 shape  4 x i32
 *
 * so that lm:// gets fmt, dtype and shape back exactly.  The header is written into the 32
 * bytes in front of the value in the connection's input buffer (bytes of the request already
 * parsed), and a load lands in the output buffer where the reply's own header will be written
 * over it: a value is copied once in each direction, by the grid.  A value in DRAM is not
 * copied at all on its way out: kv_view lends its arena pieces and the reply is sent from
 * them (conn_emit_view); a large SET value is not copied on its way in: kv_fill reserves
 * its arena room and the loop reads it there.
 */
#ifndef KVG_KV_H
#define KVG_KV_H

#include <stddef.h>
#include <stdint.h>

#include "kvgrid.h"
#include "proto_lm.h"
#include "srv.h"

#define KV_HDR_BYTES 32
#define KV_MAGIC     0x5647564bu /* "KVGV" */

enum kv_kind { KV_STRING = 's', KV_NATIVE = 'n' };

void kv_key(const struct srv *s, const struct srv_tenant *t, int kind, const void *key, size_t len,
	    kvg_key *out);

/*
 * Stores the value at val[0, len) under key; val[-KV_HDR_BYTES, 0) must be writable scratch.
 * replace: a key already present gets the new bytes (RESP SET); otherwise it keeps its
 * bytes (content-addressed blocks).  Returns 0, KVG_ETOOBIG, or a grid error.
 */
int kv_put(struct srv *s, const struct srv_tenant *t, const kvg_key *key, uint8_t *val, size_t len,
	   const struct lmp_meta *meta, int replace, uint32_t flags);

/*
 * Loads key into dst (cap bytes).  On 0 the value is at dst + KV_HDR_BYTES, *len long, and
 * meta (if not NULL) holds what was stored with it, tier (if not NULL) where the grid found
 * it.  KVG_ENOTFOUND on a miss, KVG_EBUFSIZE if cap is too small.
 */
int kv_get(struct srv *s, const kvg_key *key, uint8_t *dst, size_t cap, size_t *len,
	   struct lmp_meta *meta, uint8_t *tier);

/*
 * Lends key's value from the DRAM tier without copying it (kvg_view_get): iov[0, *n) get the
 * value's pieces (its header stripped; *n is their room on entry), *len its length and meta
 * (if not NULL) its header.  Returns 0 with *view to release (kvg_view_release) once the
 * pieces are sent; KVG_ENOTFOUND or KVG_ECORRUPT; or 1 when the block must be loaded
 * instead with kv_get (on NVMe only, in too many pieces, lent too often).
 */
int kv_view(struct srv *s, const kvg_key *key, struct iovec *iov, int *n, size_t *len,
	    struct lmp_meta *meta, kvg_view **view);

/*
 * A value received straight into the DRAM arena (kvg_fill_begin): kvgridd reads a large SET's
 * value from the socket into iov[first, n), the pieces still to fill, then commits it.
 */
#define KV_FILL_IOV 64
struct kv_fill {
	struct kvg_fill fill;
	kvg_key key;
	size_t len, left; /* value bytes, and those not received yet */
	struct iovec iov[KV_FILL_IOV];
	int first, n;
	uint64_t t0_us; /* when the request began (latency) */
};

/* Reserves room for a len-byte value of tenant t under key and writes the value header
 * (with meta, may be NULL); 0, or 1 when the value must take the ordinary path (kv_put): too
 * big, over the quota, no room in DRAM, or a grid that takes no fills. */
int kv_fill_begin(struct srv *s, const struct srv_tenant *t, const kvg_key *key, size_t len,
		  const struct lmp_meta *meta, struct kv_fill *f);
/* Copies n received bytes into the value (at most f->left). */
void kv_fill_put(struct kv_fill *f, const uint8_t *p, size_t n);
/* Publishes a complete value with Redis replace semantics and the tenant's quota, as kv_put. */
int kv_fill_commit(struct srv *s, const struct srv_tenant *t, struct kv_fill *f);
void kv_fill_abort(struct srv *s, struct kv_fill *f);

/* Checks a block loaded into dst (block_len bytes, as kv_get) and reads its header. */
int kv_loaded(const uint8_t *dst, size_t block_len, size_t *len, struct lmp_meta *meta);

/* True if key's block is (now) on NVMe only: loading it would wait for the device. */
int kv_on_nvme(struct srv *s, const kvg_key *key);

/* Count of consecutive keys present from keys[0]. */
int kv_lookup(struct srv *s, const kvg_key *keys, size_t n, size_t *hits);

/* Deletes keys; returns the number removed. */
int kv_delete(struct srv *s, const kvg_key *keys, size_t n);

#endif
