/*
 * key.c - key derivation.  Every byte that enters a hash is written here explicitly in
 * little-endian order, so keys are the same in every process, on every run and machine.
 * doc/KEYS.md gives the serialisation and test vectors; tests/test_key_vectors.py checks
 * them against Python's hashlib.
 *
 * H is SHA-256 (default, collision resistant) or XXH3-128 (opt-in, faster; the 16-byte
 * digest is written little-endian, low half first, and the key's last 16 bytes are zero).
 */
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <stdlib.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <xxhash.h>

#include "key.h"

#define NS_TAG "kvgrid-namespace"

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *src, size_t n)
{
	if (b->len + n <= b->cap)
		memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void put_u32(struct buf *b, uint32_t v)
{
	uint8_t le[4] = {v, v >> 8, v >> 16, v >> 24};
	put(b, le, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
	put_u32(b, (uint32_t)v);
	put_u32(b, (uint32_t)(v >> 32));
}

static void digest(uint32_t hash, const void *msg, size_t len, kvg_key *out)
{
	if (hash == KVG_HASH_XXH3) {
		XXH128_hash_t h = XXH3_128bits(msg, len);
		memset(out, 0, sizeof(*out));
		for (int i = 0; i < 8; i++) {
			out->bytes[i] = (uint8_t)(h.low64 >> (8 * i));
			out->bytes[8 + i] = (uint8_t)(h.high64 >> (8 * i));
		}
		return;
	}
	SHA256(msg, len, out->bytes);
}

void key_namespace(const struct kvg_config *c, kvg_key *ns)
{
	uint8_t mem[64 + 2 * KVG_NAME_MAX];
	struct buf b = {mem, 0, sizeof(mem)};
	size_t model_len = strnlen(c->model_id, KVG_NAME_MAX);
	size_t tenant_len = strnlen(c->tenant, KVG_NAME_MAX);
	put(&b, NS_TAG, strlen(NS_TAG));
	put_u32(&b, KVG_FORMAT_VERSION);
	put_u32(&b, c->hash);
	put_u32(&b, (uint32_t)model_len);
	put(&b, c->model_id, model_len);
	put_u32(&b, c->dtype);
	put_u32(&b, c->layers);
	put_u32(&b, c->kv_heads);
	put_u32(&b, c->head_dim);
	put_u32(&b, c->block_tokens);
	put_u32(&b, (uint32_t)tenant_len);
	put(&b, c->tenant, tenant_len);
	digest(c->hash, mem, b.len, ns);
}

void key_block(uint32_t hash, const kvg_key *ns, const kvg_key *parent, const uint32_t *tokens,
	       size_t n_tokens, kvg_key *out)
{
	uint8_t mem[1 + 4 + 2 * KVG_KEY_BYTES + 4 * 1024];
	struct buf b = {mem, 0, sizeof(mem)};
	static const kvg_key zero;
	put(&b, "B", 1);
	put_u32(&b, KVG_FORMAT_VERSION);
	put(&b, ns->bytes, KVG_KEY_BYTES);
	put(&b, (parent ? parent : &zero)->bytes, KVG_KEY_BYTES);
	for (size_t i = 0; i < n_tokens && i < 1024; i++)
		put_u32(&b, tokens[i]);
	digest(hash, mem, b.len, out);
}

void key_raw(uint32_t hash, const kvg_key *ns, const void *raw, size_t len, kvg_key *out)
{
	uint8_t head[1 + 4 + KVG_KEY_BYTES + 8];
	struct buf b = {head, 0, sizeof(head)};
	put(&b, "R", 1);
	put_u32(&b, KVG_FORMAT_VERSION);
	put(&b, ns->bytes, KVG_KEY_BYTES);
	put_u64(&b, len);
	if (len <= 4096) { /* the common case: one message on the stack, one call */
		uint8_t mem[sizeof(head) + 4096];
		memcpy(mem, head, b.len);
		memcpy(mem + b.len, raw, len);
		digest(hash, mem, b.len + len, out);
		return;
	}
	if (hash == KVG_HASH_XXH3) {
		XXH3_state_t st;
		XXH3_INITSTATE(&st);
		XXH3_128bits_reset(&st);
		XXH3_128bits_update(&st, head, b.len);
		XXH3_128bits_update(&st, raw, len);
		XXH128_hash_t h = XXH3_128bits_digest(&st);
		memset(out, 0, sizeof(*out));
		for (int i = 0; i < 8; i++) {
			out->bytes[i] = (uint8_t)(h.low64 >> (8 * i));
			out->bytes[8 + i] = (uint8_t)(h.high64 >> (8 * i));
		}
		return;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(ctx, head, b.len) && EVP_DigestUpdate(ctx, raw, len) &&
	    EVP_DigestFinal_ex(ctx, out->bytes, &n) && n == KVG_KEY_BYTES) {
		EVP_MD_CTX_free(ctx);
		return;
	}
	/* out of memory inside libcrypto: no key is better than a wrong one */
	EVP_MD_CTX_free(ctx);
	abort();
}

/* Printing a key is the keys' business: the NVMe tier logs them and must not reach into the
 * grid for it. */
void kvg_key_hex(const kvg_key *key, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < KVG_KEY_BYTES; i++) {
		hex[2 * i] = digits[key->bytes[i] >> 4];
		hex[2 * i + 1] = digits[key->bytes[i] & 15];
	}
	hex[2 * KVG_KEY_BYTES] = 0;
}
