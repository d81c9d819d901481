/*
 * test_key.c - key derivation (src/key.c, doc/KEYS.md): keys are a pure function of the
 * namespace (model, KV layout, block size, tenant, hash) and the tokens; they chain, so a
 * block's key names its whole prefix; only full blocks get keys.
 *
 * `test_key --print` prints the test vectors of doc/KEYS.md, one "name hex" per line, for
 * tests/test_key_vectors.py to recompute with Python's hashlib.
 */
#include "key.h"
#include "t_grid.h"

/* The fixed configuration of the documented vectors (doc/KEYS.md). */
static void vec_config(struct kvg_config *c, uint32_t hash, const char *tenant)
{
	kvg_config_init(c);
	snprintf(c->model_id, sizeof(c->model_id), "meta-llama/Llama-3.1-8B");
	snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
	c->dtype = KVG_DTYPE_BF16;
	c->layers = 32;
	c->kv_heads = 8;
	c->head_dim = 128;
	c->block_tokens = 16;
	c->hash = hash;
	c->dram_bytes = 1 << 20;
	c->chunk_bytes = 64 << 10;
	c->hugepages = 0;
	c->workers = 1;
	c->req_max = 4;
	c->log_level = 0;
}

static kvg_grid *open_cfg(const struct kvg_config *c)
{
	kvg_grid *g = NULL;
	char err[256] = "";
	if (kvg_open(c, &g, err, sizeof(err))) {
		fprintf(stderr, "kvg_open: %s\n", err);
		return NULL;
	}
	return g;
}

static void print_key(const char *name, const kvg_key *k)
{
	char hex[65];
	kvg_key_hex(k, hex);
	printf("%s %s\n", name, hex);
}

/* Prints the vectors: tokens 0..47 (three blocks of 16), tenants "" and "acme", SHA-256 and
 * XXH3-128, and the raw key of the bytes "vllm:block:0". */
static int print_vectors(void)
{
	static const char *const hashes[] = {"sha256", "xxh3"};
	static const char *const tenants[] = {"", "acme"};
	uint32_t tok[48];
	for (uint32_t i = 0; i < 48; i++)
		tok[i] = i;
	for (uint32_t h = 0; h < 2; h++)
		for (int t = 0; t < 2; t++) {
			struct kvg_config c;
			vec_config(&c, h, tenants[t]);
			kvg_key ns, keys[3], raw;
			key_namespace(&c, &ns);
			kvg_grid *g = open_cfg(&c);
			if (!g)
				return 1;
			if (kvg_block_keys(g, tok, 48, NULL, keys, 3) != 3)
				return 1;
			kvg_raw_key(g, "vllm:block:0", 12, &raw);
			kvg_close(g);
			char name[64];
			const char *tn = t ? "acme" : "default";
			snprintf(name, sizeof(name), "%s.%s.namespace", hashes[h], tn);
			print_key(name, &ns);
			for (int i = 0; i < 3; i++) {
				snprintf(name, sizeof(name), "%s.%s.block%d", hashes[h], tn, i);
				print_key(name, &keys[i]);
			}
			snprintf(name, sizeof(name), "%s.%s.raw", hashes[h], tn);
			print_key(name, &raw);
		}
	return 0;
}

/* Description: two grids of the same configuration in one process give the same keys for
 * the same tokens, and the keys agree with key.c's namespace and block functions. */
static void keys_are_deterministic(void)
{
	for (uint32_t h = 0; h < 2; h++) {
		struct kvg_config c;
		vec_config(&c, h, "");
		kvg_grid *a = open_cfg(&c), *b = open_cfg(&c);
		CHECK(a && b);
		uint32_t tok[16 * 8];
		t_tokens(tok, 16 * 8, 7);
		kvg_key ka[8], kb[8], ns, direct;
		CHECK(kvg_block_keys(a, tok, 16 * 8, NULL, ka, 8) == 8);
		CHECK(kvg_block_keys(b, tok, 16 * 8, NULL, kb, 8) == 8);
		CHECK(memcmp(ka, kb, sizeof(ka)) == 0);
		key_namespace(&c, &ns);
		key_block(c.hash, &ns, NULL, tok, 16, &direct);
		CHECK(memcmp(&direct, &ka[0], sizeof(direct)) == 0);
		key_block(c.hash, &ns, &ka[0], tok + 16, 16, &direct);
		CHECK(memcmp(&direct, &ka[1], sizeof(direct)) == 0);
		kvg_key ra, rb;
		kvg_raw_key(a, "abc", 3, &ra);
		kvg_raw_key(b, "abc", 3, &rb);
		CHECK(memcmp(&ra, &rb, sizeof(ra)) == 0);
		kvg_close(a);
		kvg_close(b);
	}
}

/* Description: every key of a chain differs from every other, and an XXH3 key's last 16
 * bytes are zero (the 128-bit digest is zero-padded to 32 bytes). */
static void keys_are_distinct_and_xxh3_padded(void)
{
	for (uint32_t h = 0; h < 2; h++) {
		struct kvg_config c;
		vec_config(&c, h, "");
		kvg_grid *g = open_cfg(&c);
		CHECK(g);
		/* the same block of tokens repeated: chaining must still give distinct keys */
		uint32_t tok[16 * 32];
		for (size_t i = 0; i < 16 * 32; i++)
			tok[i] = (uint32_t)(i % 16);
		kvg_key k[32];
		CHECK(kvg_block_keys(g, tok, 16 * 32, NULL, k, 32) == 32);
		for (int i = 0; i < 32; i++)
			for (int j = i + 1; j < 32; j++)
				CHECK(memcmp(&k[i], &k[j], sizeof(kvg_key)) != 0);
		static const uint8_t zero[16];
		for (int i = 0; i < 32; i++)
			CHECK((memcmp(k[i].bytes + 16, zero, 16) == 0) == (h == KVG_HASH_XXH3));
		kvg_close(g);
	}
}

/* Description: the same tokens under two tenants give disjoint keys (block and raw). */
static void tenants_get_different_keys(void)
{
	struct kvg_config ca, cb;
	vec_config(&ca, KVG_HASH_SHA256, "");
	vec_config(&cb, KVG_HASH_SHA256, "tenant-b");
	kvg_grid *a = open_cfg(&ca), *b = open_cfg(&cb);
	CHECK(a && b);
	uint32_t tok[64];
	t_tokens(tok, 64, 1);
	kvg_key ka[4], kb[4];
	CHECK(kvg_block_keys(a, tok, 64, NULL, ka, 4) == 4);
	CHECK(kvg_block_keys(b, tok, 64, NULL, kb, 4) == 4);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			CHECK(memcmp(&ka[i], &kb[j], sizeof(kvg_key)) != 0);
	kvg_key ra, rb;
	kvg_raw_key(a, "x", 1, &ra);
	kvg_raw_key(b, "x", 1, &rb);
	CHECK(memcmp(&ra, &rb, sizeof(ra)) != 0);
	kvg_close(a);
	kvg_close(b);
}

/* Description: each field of the namespace (model, dtype, layers, kv heads, head dim, block
 * tokens, hash, tenant) changes the first block's key; fields outside it (tier sizes, the
 * directory, the policy) do not. */
static void namespace_fields_change_keys(void)
{
	struct kvg_config base;
	vec_config(&base, KVG_HASH_SHA256, "");
	uint32_t tok[1024];
	t_tokens(tok, 1024, 3);
	kvg_key ns0, k0, ns, k;
	key_namespace(&base, &ns0);
	key_block(base.hash, &ns0, NULL, tok, base.block_tokens, &k0);
	for (int f = 0; f < 12; f++) {
		struct kvg_config c = base;
		int in_ns = 1;
		switch (f) {
		case 0:
			snprintf(c.model_id, sizeof(c.model_id), "meta-llama/Llama-3.1-70B");
			break;
		case 1:
			c.dtype = KVG_DTYPE_FP16;
			break;
		case 2:
			c.layers = 80;
			break;
		case 3:
			c.kv_heads = 4;
			break;
		case 4:
			c.head_dim = 64;
			break;
		case 5:
			c.block_tokens = 32;
			break;
		case 6:
			c.hash = KVG_HASH_XXH3;
			break;
		case 7:
			snprintf(c.tenant, sizeof(c.tenant), "t");
			break;
		case 8:
			c.dram_bytes = 2 << 20;
			in_ns = 0;
			break;
		case 9:
			snprintf(c.dir, sizeof(c.dir), "/somewhere");
			in_ns = 0;
			break;
		case 10:
			snprintf(c.policy, sizeof(c.policy), "s3fifo");
			in_ns = 0;
			break;
		case 11:
			c.max_value_bytes = 1 << 20;
			in_ns = 0;
			break;
		}
		key_namespace(&c, &ns);
		/* block_tokens changes the block too: compare over base's tokens of the new size */
		key_block(c.hash, &ns, NULL, tok, c.block_tokens, &k);
		t_variant = in_ns ? "in namespace" : "outside namespace";
		CHECK((memcmp(&ns, &ns0, sizeof(ns)) != 0) == in_ns);
		CHECK((memcmp(&k, &k0, sizeof(k)) != 0) == in_ns);
	}
	t_variant = "";
}

/* Description: a model id and tenant are length-prefixed, so moving bytes between them
 * ("ab"+"c" vs "a"+"bc") gives another namespace. */
static void namespace_strings_are_length_prefixed(void)
{
	struct kvg_config a, b;
	vec_config(&a, KVG_HASH_SHA256, "c");
	vec_config(&b, KVG_HASH_SHA256, "bc");
	snprintf(a.model_id, sizeof(a.model_id), "ab");
	snprintf(b.model_id, sizeof(b.model_id), "a");
	kvg_key na, nb;
	key_namespace(&a, &na);
	key_namespace(&b, &nb);
	CHECK(memcmp(&na, &nb, sizeof(na)) != 0);
}

/* Description: changing one token of block 0 changes the key of every later block; changing
 * a token of block 2 leaves blocks 0 and 1 alone and changes 2 onwards; a chain continued
 * from a parent key equals the chain computed in one call. */
static void keys_chain_through_parents(void)
{
	for (uint32_t h = 0; h < 2; h++) {
		struct kvg_config c;
		vec_config(&c, h, "");
		kvg_grid *g = open_cfg(&c);
		CHECK(g);
		uint32_t tok[16 * 6], tok2[16 * 6];
		t_tokens(tok, 16 * 6, 11);
		kvg_key k[6], k2[6];
		CHECK(kvg_block_keys(g, tok, 16 * 6, NULL, k, 6) == 6);

		memcpy(tok2, tok, sizeof(tok));
		tok2[5] ^= 1; /* in block 0 */
		CHECK(kvg_block_keys(g, tok2, 16 * 6, NULL, k2, 6) == 6);
		for (int i = 0; i < 6; i++)
			CHECK(memcmp(&k[i], &k2[i], sizeof(kvg_key)) != 0);

		memcpy(tok2, tok, sizeof(tok));
		tok2[2 * 16 + 15] += 1; /* last token of block 2 */
		CHECK(kvg_block_keys(g, tok2, 16 * 6, NULL, k2, 6) == 6);
		for (int i = 0; i < 6; i++)
			CHECK((memcmp(&k[i], &k2[i], sizeof(kvg_key)) != 0) == (i >= 2));

		/* continuing from block 2's key gives blocks 3..5 */
		kvg_key tail[3];
		CHECK(kvg_block_keys(g, tok + 16 * 3, 16 * 3, &k[2], tail, 3) == 3);
		CHECK(memcmp(tail, &k[3], sizeof(tail)) == 0);
		/* without the parent, the same tokens are another chain */
		CHECK(kvg_block_keys(g, tok + 16 * 3, 16 * 3, NULL, tail, 3) == 3);
		CHECK(memcmp(&tail[0], &k[3], sizeof(kvg_key)) != 0);
		kvg_close(g);
	}
}

/* Description: only full blocks get keys: 16*3+15 tokens give 3 keys, 15 give none, and
 * max_keys bounds the count; the tokens of a trailing partial block do not affect the keys. */
static void only_full_blocks_get_keys(void)
{
	struct kvg_config c;
	vec_config(&c, KVG_HASH_SHA256, "");
	kvg_grid *g = open_cfg(&c);
	CHECK(g);
	uint32_t tok[16 * 4];
	t_tokens(tok, 16 * 4, 5);
	kvg_key k[4], k2[4];
	CHECK(kvg_block_keys(g, tok, 16 * 3 + 15, NULL, k, 4) == 3);
	CHECK(kvg_block_keys(g, tok, 15, NULL, k, 4) == 0);
	CHECK(kvg_block_keys(g, tok, 0, NULL, k, 4) == 0);
	CHECK(kvg_block_keys(g, tok, 16 * 4, NULL, k, 2) == 2);
	CHECK(kvg_block_keys(g, tok, 16 * 3 + 1, NULL, k, 4) == 3);
	tok[16 * 3] ^= 0xffff;
	CHECK(kvg_block_keys(g, tok, 16 * 3 + 1, NULL, k2, 4) == 3);
	CHECK(memcmp(k, k2, 3 * sizeof(kvg_key)) == 0);
	kvg_close(g);
}

/* Description: the largest block size (1024 tokens) hashes every token: changing the last
 * token of a 1024-token block changes its key. */
static void largest_block_hashes_every_token(void)
{
	struct kvg_config c;
	vec_config(&c, KVG_HASH_SHA256, "");
	c.block_tokens = 1024;
	kvg_grid *g = open_cfg(&c);
	CHECK(g);
	static uint32_t tok[1024];
	t_tokens(tok, 1024, 9);
	kvg_key a, b;
	CHECK(kvg_block_keys(g, tok, 1024, NULL, &a, 1) == 1);
	tok[1023]++;
	CHECK(kvg_block_keys(g, tok, 1024, NULL, &b, 1) == 1);
	CHECK(memcmp(&a, &b, sizeof(a)) != 0);
	kvg_close(g);
}

/* Description: raw keys depend on every byte and on the length (a zero byte appended is
 * another key), and large inputs (streamed through the incremental hash) are deterministic
 * and differ by their last byte. */
static void raw_keys_cover_every_byte(void)
{
	for (uint32_t h = 0; h < 2; h++) {
		struct kvg_config c;
		vec_config(&c, h, "");
		kvg_grid *g = open_cfg(&c);
		CHECK(g);
		uint8_t small[5] = {1, 2, 3, 0, 0};
		kvg_key a, b;
		kvg_raw_key(g, small, 3, &a);
		kvg_raw_key(g, small, 4, &b);
		CHECK(memcmp(&a, &b, sizeof(a)) != 0);
		kvg_raw_key(g, small, 0, &b);
		CHECK(memcmp(&a, &b, sizeof(a)) != 0);
		size_t big_len = 10000;
		uint8_t *big = malloc(big_len);
		CHECK(big);
		for (size_t i = 0; i < big_len; i++)
			big[i] = (uint8_t)(i * 31);
		kvg_key x, y, z;
		kvg_raw_key(g, big, big_len, &x);
		kvg_raw_key(g, big, big_len, &y);
		big[big_len - 1] ^= 1;
		kvg_raw_key(g, big, big_len, &z);
		free(big);
		CHECK(memcmp(&x, &y, sizeof(x)) == 0);
		CHECK(memcmp(&x, &z, sizeof(x)) != 0);
		/* 4096 bytes (stack path) and 4097 bytes (streamed path) agree with the layout */
		uint8_t *m = calloc(1, 4097);
		CHECK(m);
		kvg_raw_key(g, m, 4096, &x);
		kvg_raw_key(g, m, 4097, &y);
		free(m);
		CHECK(memcmp(&x, &y, sizeof(x)) != 0);
		kvg_close(g);
	}
}

/* Description: a block key and a raw key of the same bytes never coincide (domain tags "B"
 * and "R" keep them apart). */
static void raw_and_block_keys_are_apart(void)
{
	struct kvg_config c;
	vec_config(&c, KVG_HASH_SHA256, "");
	kvg_grid *g = open_cfg(&c);
	CHECK(g);
	uint32_t tok[16];
	t_tokens(tok, 16, 2);
	kvg_key b, r;
	CHECK(kvg_block_keys(g, tok, 16, NULL, &b, 1) == 1);
	kvg_raw_key(g, tok, sizeof(tok), &r);
	CHECK(memcmp(&b, &r, sizeof(b)) != 0);
	kvg_close(g);
}

/* Description: kvg_key_hex writes 64 lowercase hex digits, most significant nibble first. */
static void key_hex_is_lowercase(void)
{
	kvg_key k;
	for (int i = 0; i < KVG_KEY_BYTES; i++)
		k.bytes[i] = (uint8_t)(i * 17 + 10);
	char hex[66];
	memset(hex, 'Z', sizeof(hex));
	kvg_key_hex(&k, hex);
	CHECK(strlen(hex) == 64);
	CHECK(strncmp(hex, "0a1b2c3d", 8) == 0);
	for (int i = 0; i < 64; i++)
		CHECK((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--print"))
		return print_vectors();
	RUN(keys_are_deterministic);
	RUN(keys_are_distinct_and_xxh3_padded);
	RUN(tenants_get_different_keys);
	RUN(namespace_fields_change_keys);
	RUN(namespace_strings_are_length_prefixed);
	RUN(keys_chain_through_parents);
	RUN(only_full_blocks_get_keys);
	RUN(largest_block_hashes_every_token);
	RUN(raw_keys_cover_every_byte);
	RUN(raw_and_block_keys_are_apart);
	RUN(key_hex_is_lowercase);
	T_EXIT();
}
