/*
 * kv.c - the server's use of the grid (see kv.h): tenant-salted keys, the value header,
 * replacement for Redis semantics and the per-tenant quota.
 */
#include <pthread.h>
#include <string.h>

#include "kv.h"
#include "quota.h"

#define KV_RAW_MAX     (SRV_TENANT_NAME_MAX + 2 + 1024)
#define KV_VICTIMS_MAX 64
#define KV_STRIPES     64

/*
 * Stores and deletes of one key are serialised here, by a lock striped on the key: a Redis
 * SET is a delete then a store, and two of them on one key from two workers must not
 * interleave (nor may a delete wait on a store of the same key in the grid).
 */
static pthread_mutex_t kv_stripe[KV_STRIPES] = {[0 ... KV_STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t *kv_lock_of(const kvg_key *key)
{
	return &kv_stripe[key->bytes[31] % KV_STRIPES];
}

void kv_key(const struct srv *s, const struct srv_tenant *t, int kind, const void *key, size_t len,
	    kvg_key *out)
{
	uint8_t raw[KV_RAW_MAX];
	size_t tl = strnlen(t->name, SRV_TENANT_NAME_MAX);
	memcpy(raw, t->name, tl);
	raw[tl] = 0;
	raw[tl + 1] = (uint8_t)kind;
	size_t room = sizeof(raw) - tl - 2;
	if (len <= room) {
		memcpy(raw + tl + 2, key, len);
		kvg_raw_key(s->grid, raw, tl + 2 + len, out);
		return;
	}
	/* a long key is first reduced to its own raw key, so any length stays apart */
	kvg_key inner;
	kvg_raw_key(s->grid, key, len, &inner);
	raw[tl + 1] = (uint8_t)(kind | 0x80);
	memcpy(raw + tl + 2, inner.bytes, KVG_KEY_BYTES);
	kvg_raw_key(s->grid, raw, tl + 2 + KVG_KEY_BYTES, out);
}

static void kv_put_i32(uint8_t *p, int32_t v)
{
	uint32_t u = (uint32_t)v;
	p[0] = (uint8_t)u;
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)(u >> 16);
	p[3] = (uint8_t)(u >> 24);
}

static int32_t kv_get_i32(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			 (uint32_t)p[3] << 24);
}

/* Enters a stored block in the tenant's ledger and deletes the tenant's oldest blocks while
 * it is over its quota. */
static void kv_account(struct srv *s, const struct srv_tenant *t, const kvg_key *key, size_t bytes)
{
	kvg_key victims[KV_VICTIMS_MAX];
	size_t n =
	    quota_add(s->quota, t->index, key, bytes, t->quota_bytes, victims, KV_VICTIMS_MAX);
	for (size_t i = 0; i < n; i++) { /* the tenant's oldest blocks, off the ledger already */
		pthread_mutex_t *vl = kv_lock_of(&victims[i]);
		pthread_mutex_lock(vl);
		kvg_delete(s->grid, &victims[i], 1);
		pthread_mutex_unlock(vl);
	}
}

static void kv_header(uint8_t *h, const struct lmp_meta *meta)
{
	kv_put_i32(h, (int32_t)KV_MAGIC);
	kv_put_i32(h + 4, meta ? 1 : 0);
	kv_put_i32(h + 8, meta ? meta->fmt : 0);
	kv_put_i32(h + 12, meta ? meta->dtype : 0);
	for (int i = 0; i < 4; i++)
		kv_put_i32(h + 16 + 4 * i, meta ? meta->shape[i] : 0);
}

int kv_put(struct srv *s, const struct srv_tenant *t, const kvg_key *key, uint8_t *val, size_t len,
	   const struct lmp_meta *meta, int replace, uint32_t flags)
{
	uint64_t quota = t->quota_bytes;
	if (len > s->cfg.value_max || (quota && len + KV_HDR_BYTES > quota))
		return KVG_ETOOBIG;
	uint8_t *h = val - KV_HDR_BYTES;
	kv_header(h, meta);
	pthread_mutex_t *lock = kv_lock_of(key);
	pthread_mutex_lock(lock);
	if (replace)
		kvg_delete(s->grid, key, 1);
	struct kvg_io io = {.key = *key, .buf = h, .len = len + KV_HDR_BYTES};
	int rc = kvg_store_sync(s->grid, &io, 1, flags);
	pthread_mutex_unlock(lock);
	if (rc == 0)
		rc = io.status;
	if (rc != 0)
		return rc;
	kv_account(s, t, key, len + KV_HDR_BYTES);
	return 0;
}

int kv_fill_begin(struct srv *s, const struct srv_tenant *t, const kvg_key *key, size_t len,
		  const struct lmp_meta *meta, struct kv_fill *f)
{
	uint64_t quota = t->quota_bytes;
	if (len > s->cfg.value_max || (quota && len + KV_HDR_BYTES > quota))
		return 1;
	int n = kvg_fill_begin(s->grid, len + KV_HDR_BYTES, f->iov, KV_FILL_IOV, &f->fill);
	if (n <= 0)
		return 1;
	f->key = *key;
	f->first = 0;
	f->n = n;
	f->len = f->left = len + KV_HDR_BYTES;
	uint8_t h[KV_HDR_BYTES];
	kv_header(h, meta);
	kv_fill_put(f, h, sizeof(h));
	return 0;
}

void kv_fill_put(struct kv_fill *f, const uint8_t *p, size_t n)
{
	if (n > f->left)
		n = f->left;
	f->left -= n;
	while (n) {
		struct iovec *v = &f->iov[f->first];
		size_t k = v->iov_len < n ? v->iov_len : n;
		memcpy(v->iov_base, p, k);
		v->iov_base = (uint8_t *)v->iov_base + k;
		v->iov_len -= k;
		p += k;
		n -= k;
		if (v->iov_len == 0)
			f->first++;
	}
}

int kv_fill_commit(struct srv *s, const struct srv_tenant *t, struct kv_fill *f)
{
	if (f->left)
		return KVG_EPROTO;
	pthread_mutex_t *lock = kv_lock_of(&f->key);
	pthread_mutex_lock(lock);
	int rc = kvg_fill_commit(s->grid, &f->fill, &f->key, 0, 0, 1);
	pthread_mutex_unlock(lock);
	if (rc == 0)
		kv_account(s, t, &f->key, f->len);
	return rc;
}

void kv_fill_abort(struct srv *s, struct kv_fill *f)
{
	kvg_fill_abort(s->grid, &f->fill);
}

int kv_loaded(const uint8_t *dst, size_t block_len, size_t *len, struct lmp_meta *meta)
{
	if (block_len < KV_HDR_BYTES || (uint32_t)kv_get_i32(dst) != KV_MAGIC)
		return KVG_ECORRUPT; /* not written by kvgridd: never hand it out */
	*len = block_len - KV_HDR_BYTES;
	if (meta) {
		meta->fmt = kv_get_i32(dst + 8);
		meta->dtype = kv_get_i32(dst + 12);
		for (int i = 0; i < 4; i++)
			meta->shape[i] = kv_get_i32(dst + 16 + 4 * i);
	}
	return 0;
}

int kv_get(struct srv *s, const kvg_key *key, uint8_t *dst, size_t cap, size_t *len,
	   struct lmp_meta *meta, uint8_t *tier)
{
	struct kvg_io io = {.key = *key, .buf = dst, .len = cap};
	int rc = kvg_load_sync(s->grid, &io, 1, 0);
	if (tier)
		*tier = io.tier;
	if (rc == 0)
		rc = io.status;
	return rc ? rc : kv_loaded(dst, io.len, len, meta);
}

int kv_view(struct srv *s, const kvg_key *key, struct iovec *iov, int *n, size_t *len,
	    struct lmp_meta *meta, kvg_view **view)
{
	size_t block_len = 0;
	int r = kvg_view_get(s->grid, key, iov, *n, &block_len, view);
	if (r == KVG_ENOTFOUND)
		return r;
	if (r <= 0)
		return 1;
	/* take the header off the front of the pieces */
	uint8_t hdr[KV_HDR_BYTES];
	size_t got = 0;
	int first = 0;
	while (got < KV_HDR_BYTES && first < r) {
		size_t k = iov[first].iov_len < KV_HDR_BYTES - got ? iov[first].iov_len
								   : KV_HDR_BYTES - got;
		memcpy(hdr + got, iov[first].iov_base, k);
		got += k;
		iov[first].iov_base = (uint8_t *)iov[first].iov_base + k;
		iov[first].iov_len -= k;
		if (iov[first].iov_len == 0)
			first++;
	}
	int rc = got == KV_HDR_BYTES ? kv_loaded(hdr, block_len, len, meta) : KVG_ECORRUPT;
	if (rc) {
		kvg_view_release(s->grid, *view);
		*view = NULL;
		return rc;
	}
	memmove(iov, iov + first, sizeof(*iov) * (size_t)(r - first));
	*n = r - first;
	return 0;
}

int kv_on_nvme(struct srv *s, const kvg_key *key)
{
	if (!s->cfg.grid.dir[0])
		return 0;
	size_t hit = 0;
	uint8_t tier = KVG_TIER_NONE;
	return kvg_lookup_keys(s->grid, key, 1, &hit, &tier) == 0 && hit == 1 &&
	       tier == KVG_TIER_NVME;
}

int kv_lookup(struct srv *s, const kvg_key *keys, size_t n, size_t *hits)
{
	return kvg_lookup_keys(s->grid, keys, n, hits, NULL);
}

int kv_delete(struct srv *s, const kvg_key *keys, size_t n)
{
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		quota_remove(s->quota, &keys[i]);
		pthread_mutex_t *lock = kv_lock_of(&keys[i]);
		pthread_mutex_lock(lock);
		int r = kvg_delete(s->grid, &keys[i], 1);
		pthread_mutex_unlock(lock);
		if (r < 0)
			return count ? count : r;
		count += r;
	}
	return count;
}
