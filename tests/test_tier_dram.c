/*
 * test_tier_dram.c - the DRAM tier alone: eviction under tiny capacities (room for three
 * blocks), LRU order by loads and refreshes, capacity never exceeded, pins, blocks larger
 * than the arena, chunk chains of mixed sizes that never overlap, and views (zero-copy reads)
 * that outlive their block.
 */
#include "policy.h"
#include "t_grid.h"

#define CHUNK (64u << 10)
#define LEN   60000 /* one chunk */

static const char *policy = "lru"; /* of the grids open_dram opens */

static kvg_grid *open_dram(uint32_t chunks, uint64_t max_value_bytes)
{
	struct kvg_config c;
	t_v = &t_variants[0];
	t_config(&c);
	snprintf(c.policy, sizeof(c.policy), "%s", policy);
	c.dram_bytes = (uint64_t)chunks * CHUNK;
	c.chunk_bytes = CHUNK;
	if (max_value_bytes)
		c.max_value_bytes = max_value_bytes;
	kvg_grid *g = NULL;
	char err[256] = "";
	if (kvg_open(&c, &g, err, sizeof(err))) {
		fprintf(stderr, "kvg_open: %s\n", err);
		return NULL;
	}
	return g;
}

/* 1 if key is present. */
static int present(kvg_grid *g, const kvg_key *k)
{
	size_t hit = 0;
	if (kvg_lookup_keys(g, k, 1, &hit, NULL))
		return -1;
	return hit == 1;
}

/* Description: with room for three blocks, three stores evict nothing and a fourth evicts
 * exactly one block, the oldest; the evicted block misses, the others verify. */
static void room_for_three(void)
{
	kvg_grid *g = open_dram(3, 0);
	CHECK(g);
	kvg_key k[4];
	CHECK(t_chain(g, 200, 4, k) == 4);
	CHECK_RC(t_store(g, k, 3, LEN, 1), 0);
	struct kvg_stats st = t_stats(g);
	CHECK(st.tier[KVG_TIER_DRAM].evictions == 0);
	CHECK(st.tier[KVG_TIER_DRAM].blocks == 3);
	CHECK_RC(t_store(g, &k[3], 1, LEN, 1), 0);
	st = t_stats(g);
	CHECK(st.tier[KVG_TIER_DRAM].evictions == 1);
	CHECK(st.tier[KVG_TIER_DRAM].blocks == 3);
	CHECK(present(g, &k[0]) == 0);
	CHECK_RC(t_load(g, &k[0], LEN, 1, NULL), KVG_ENOTFOUND);
	for (int i = 1; i < 4; i++)
		CHECK_RC(t_load(g, &k[i], LEN, 1, NULL), 0);
	kvg_close(g);
}

/* Description: eviction follows LRU by loads: after A, B, C and a load of A, storing D evicts
 * B; after a load of C, storing E evicts A. */
static void lru_order_follows_loads(void)
{
	kvg_grid *g = open_dram(3, 0);
	CHECK(g);
	kvg_key k[5]; /* A B C D E */
	CHECK(t_chain(g, 201, 5, k) == 5);
	CHECK_RC(t_store(g, k, 3, LEN, 2), 0);
	CHECK_RC(t_load(g, &k[0], LEN, 2, NULL), 0);
	CHECK_RC(t_store(g, &k[3], 1, LEN, 2), 0);
	CHECK(present(g, &k[1]) == 0);
	CHECK(present(g, &k[0]) == 1 && present(g, &k[2]) == 1 && present(g, &k[3]) == 1);
	CHECK_RC(t_load(g, &k[2], LEN, 2, NULL), 0);
	CHECK_RC(t_store(g, &k[4], 1, LEN, 2), 0);
	CHECK(present(g, &k[0]) == 0);
	CHECK(present(g, &k[2]) == 1 && present(g, &k[3]) == 1 && present(g, &k[4]) == 1);
	kvg_close(g);
}

/* Description: storing a present key again counts as a use: after A, B, C and a second store
 * of A, storing D evicts B. */
static void refresh_counts_as_use(void)
{
	kvg_grid *g = open_dram(3, 0);
	CHECK(g);
	kvg_key k[4];
	CHECK(t_chain(g, 202, 4, k) == 4);
	CHECK_RC(t_store(g, k, 3, LEN, 3), 0);
	CHECK_RC(t_store(g, &k[0], 1, LEN, 3), 0);
	CHECK_RC(t_store(g, &k[3], 1, LEN, 3), 0);
	CHECK(present(g, &k[1]) == 0);
	CHECK(present(g, &k[0]) == 1);
	kvg_close(g);
}

/* Description: a lookup is not a use: after A, B, C and a lookup of A, storing D still
 * evicts A (only loads and stores order the LRU). */
static void lookup_is_not_a_use(void)
{
	kvg_grid *g = open_dram(3, 0);
	CHECK(g);
	kvg_key k[4];
	CHECK(t_chain(g, 203, 4, k) == 4);
	CHECK_RC(t_store(g, k, 3, LEN, 3), 0);
	CHECK(present(g, &k[0]) == 1);
	CHECK_RC(t_store(g, &k[3], 1, LEN, 3), 0);
	CHECK(present(g, &k[0]) == 0);
	kvg_close(g);
}

/* Description: blocks of 1 to 5 chunks stored in a 16-chunk arena in a deterministic mixed
 * order: after every store the bytes held never exceed the capacity, evictions free as many
 * blocks as needed, and every block still present verifies. */
static void capacity_never_exceeded(void)
{
	kvg_grid *g = open_dram(16, 0);
	CHECK(g);
	enum { N = 120 };
	kvg_key k[N];
	size_t lens[N];
	CHECK(t_chain(g, 204, N, k) == N);
	for (int i = 0; i < N; i++) {
		lens[i] = (size_t)(t_token(5, (size_t)i) % (5 * CHUNK)) + 1;
		CHECK_RC(t_store(g, &k[i], 1, lens[i], 4), 0);
		struct kvg_stats st = t_stats(g);
		CHECK(st.tier[KVG_TIER_DRAM].bytes <= st.tier[KVG_TIER_DRAM].capacity_bytes);
		CHECK(st.tier[KVG_TIER_DRAM].capacity_bytes == 16 * CHUNK);
		CHECK(present(g, &k[i]) == 1);
	}
	struct kvg_stats st = t_stats(g);
	CHECK(st.tier[KVG_TIER_DRAM].evictions + st.tier[KVG_TIER_DRAM].blocks == N);
	uint64_t bytes = 0, blocks = 0;
	for (int i = 0; i < N; i++) {
		int rc = t_load(g, &k[i], lens[i], 4, NULL);
		CHECK(rc == 0 || rc == KVG_ENOTFOUND);
		if (rc == 0) {
			bytes += lens[i];
			blocks++;
		}
	}
	CHECK(blocks == st.tier[KVG_TIER_DRAM].blocks);
	CHECK(bytes == st.tier[KVG_TIER_DRAM].bytes);
	kvg_close(g);
}

/* Description: chunk chains never overlap: blocks of mixed sizes stored, half of them
 * deleted, the holes refilled with blocks of other sizes; every block verifies. */
static void chains_of_mixed_sizes_stay_apart(void)
{
	kvg_grid *g = open_dram(64, 0);
	CHECK(g);
	enum { N = 24 };
	kvg_key k[N], k2[N];
	CHECK(t_chain(g, 205, N, k) == N);
	CHECK(t_chain(g, 206, N, k2) == N);
	for (int i = 0; i < N; i++) /* 1, 2 or 3 chunks, 24 blocks: 48 chunks */
		CHECK_RC(t_store(g, &k[i], 1, (size_t)(i % 3 + 1) * CHUNK - 7, 5), 0);
	for (int i = 0; i < N; i += 2)
		CHECK(kvg_delete(g, &k[i], 1) == 1);
	for (int i = 0; i < N / 2; i++) /* 32 free chunks: refill with 2 and 3 chunk blocks */
		CHECK_RC(t_store(g, &k2[i], 1, (size_t)(i % 2 + 2) * CHUNK - 1, 6), 0);
	CHECK(t_stats(g).tier[KVG_TIER_DRAM].evictions == 0);
	for (int i = 1; i < N; i += 2)
		CHECK_RC(t_load(g, &k[i], (size_t)(i % 3 + 1) * CHUNK - 7, 5, NULL), 0);
	for (int i = 0; i < N / 2; i++)
		CHECK_RC(t_load(g, &k2[i], (size_t)(i % 2 + 2) * CHUNK - 1, 6, NULL), 0);
	kvg_close(g);
}

/* Description: a pinned block is never evicted: with A pinned in a three-block arena, ten
 * more stores keep A; with all three pinned, a store fails with KVG_EFULL; after unpinning,
 * stores evict again. */
static void pinned_blocks_stay_in_dram(void)
{
	kvg_grid *g = open_dram(3, 0);
	CHECK(g);
	kvg_key a, k[10];
	kvg_raw_key(g, "pinned", 6, &a);
	CHECK(t_chain(g, 207, 10, k) == 10);
	CHECK_RC(t_store(g, &a, 1, LEN, 7), 0);
	CHECK(kvg_pin(g, &a, 1) == 1);
	for (int i = 0; i < 10; i++)
		CHECK_RC(t_store(g, &k[i], 1, LEN, 7), 0);
	CHECK_RC(t_load(g, &a, LEN, 7, NULL), 0);
	CHECK(kvg_pin(g, &k[8], 2) == 2);
	struct kvg_stats before = t_stats(g);
	kvg_key extra;
	kvg_raw_key(g, "extra", 5, &extra);
	CHECK_RC(t_store(g, &extra, 1, LEN, 7), KVG_EFULL);
	CHECK(present(g, &extra) == 0);
	struct kvg_stats after = t_stats(g);
	CHECK(after.store_failures == before.store_failures + 1);
	for (int i = 8; i < 10; i++)
		CHECK_RC(t_load(g, &k[i], LEN, 7, NULL), 0);
	CHECK(kvg_unpin(g, &a, 1) == 1);
	CHECK_RC(t_store(g, &extra, 1, LEN, 7), 0);
	CHECK(present(g, &a) == 0);
	kvg_close(g);
}

/* Description: with DRAM only, a block larger than the whole arena is refused (KVG_EFULL)
 * and evicts nothing, while a block of exactly the arena's size fits by evicting the rest. */
static void block_larger_than_arena(void)
{
	kvg_grid *g = open_dram(4, 1 << 20);
	CHECK(g);
	kvg_key k[3], big, whole;
	CHECK(t_chain(g, 208, 3, k) == 3);
	kvg_raw_key(g, "big", 3, &big);
	kvg_raw_key(g, "whole", 5, &whole);
	CHECK_RC(t_store(g, k, 3, LEN, 8), 0);
	CHECK_RC(t_store(g, &big, 1, 4 * CHUNK + 1, 8), KVG_EFULL);
	CHECK(t_stats(g).tier[KVG_TIER_DRAM].evictions == 0);
	for (int i = 0; i < 3; i++)
		CHECK(present(g, &k[i]) == 1);
	CHECK_RC(t_store(g, &whole, 1, 4 * CHUNK, 8), 0);
	CHECK(t_stats(g).tier[KVG_TIER_DRAM].evictions == 3);
	CHECK_RC(t_load(g, &whole, 4 * CHUNK, 8, NULL), 0);
	kvg_close(g);
}

/* Description: loads count DRAM hits and misses; evicted blocks count as misses after. */
static void hits_and_misses_counted(void)
{
	kvg_grid *g = open_dram(3, 0);
	CHECK(g);
	kvg_key k[4];
	CHECK(t_chain(g, 209, 4, k) == 4);
	CHECK_RC(t_store(g, k, 4, LEN, 9), 0);
	for (int i = 0; i < 4; i++)
		t_load(g, &k[i], LEN, 9, NULL);
	struct kvg_stats st = t_stats(g);
	CHECK(st.tier[KVG_TIER_DRAM].hits == 3);
	CHECK(st.tier[KVG_TIER_DRAM].misses == 1);
	CHECK(st.tier[KVG_TIER_DRAM].bytes_read == 3 * LEN);
	CHECK(st.tier[KVG_TIER_DRAM].bytes_written == 4 * LEN);
	CHECK(strcmp(st.tier[KVG_TIER_NVME].backend, "none") == 0);
	CHECK(st.tier[KVG_TIER_NVME].capacity_bytes == 0);
	kvg_close(g);
}

/* Description: every eviction policy keeps the tier's invariants under a mixed load (chains
 * of 1-8 blocks of 1 to 5 chunks, loads of random earlier blocks, a pinned block, deletes):
 * bytes held never exceed the capacity, the pinned block stays, every block either loads and
 * verifies or misses, and the stats' blocks and bytes match what loads. */
static void every_policy_keeps_invariants(void)
{
	for (int p = 0; policy_names[p]; p++) {
		policy = policy_names[p];
		t_variant = policy;
		kvg_grid *g = open_dram(24, 0);
		CHECK(g);
		enum { CHAINS = 40, MAXLEN = 8 };
		kvg_key k[CHAINS][MAXLEN];
		size_t len[CHAINS], n[CHAINS];
		kvg_key pinned;
		kvg_raw_key(g, "pinned", 6, &pinned);
		CHECK_RC(t_store(g, &pinned, 1, LEN, 1), 0);
		CHECK(kvg_pin(g, &pinned, 1) == 1);
		uint64_t x = 88;
		for (int ch = 0; ch < CHAINS; ch++) {
			n[ch] = (size_t)(t_token(11, (size_t)ch) % MAXLEN) + 1;
			len[ch] = (size_t)(t_token(12, (size_t)ch) % (5 * CHUNK)) + 1;
			CHECK(t_chain(g, 1000 + (uint32_t)ch, n[ch], k[ch]) == n[ch]);
			CHECK_RC(t_store(g, k[ch], n[ch], len[ch], 2), 0); /* depth 0..n-1 */
			struct kvg_stats st = t_stats(g);
			CHECK(st.tier[KVG_TIER_DRAM].bytes <=
			      st.tier[KVG_TIER_DRAM].capacity_bytes);
			for (int r = 0; r < 3; r++) { /* reuse of an earlier chain's head */
				x = x * 6364136223846793005ull + 1442695040888963407ull;
				int old = (int)((x >> 33) % (uint64_t)(ch + 1));
				int rc = t_load(g, &k[old][0], len[old], 2, NULL);
				CHECK(rc == 0 || rc == KVG_ENOTFOUND);
			}
			if (ch % 7 == 6)
				kvg_delete(g, &k[ch - 3][0], 1);
		}
		CHECK_RC(t_load(g, &pinned, LEN, 1, NULL), 0);
		uint64_t blocks = 1, bytes = LEN;
		for (int ch = 0; ch < CHAINS; ch++)
			for (size_t i = 0; i < n[ch]; i++) {
				int rc = t_load(g, &k[ch][i], len[ch], 2, NULL);
				CHECK(rc == 0 || rc == KVG_ENOTFOUND);
				if (rc == 0) {
					blocks++;
					bytes += len[ch];
				}
			}
		struct kvg_stats st = t_stats(g);
		CHECK(st.tier[KVG_TIER_DRAM].blocks == blocks);
		CHECK(st.tier[KVG_TIER_DRAM].bytes == bytes);
		CHECK(st.tier[KVG_TIER_DRAM].evictions > 0);
		kvg_close(g);
	}
	policy = "lru";
	t_variant = "dram";
}

/* 1 if the pieces of a view hold exactly len bytes of t_fill(key, salt). */
static int view_holds(const struct iovec *iov, int n, size_t len, const kvg_key *k, uint32_t salt)
{
	uint8_t *buf = malloc(len + 1);
	size_t got = 0;
	for (int i = 0; i < n && buf; i++) {
		if (got + iov[i].iov_len > len)
			break;
		memcpy(buf + got, iov[i].iov_base, iov[i].iov_len);
		got += iov[i].iov_len;
	}
	int ok = buf && got == len && t_verify(buf, len, k, salt);
	free(buf);
	return ok;
}

/* Description: a view lends a block's bytes without copying and counts as a DRAM hit; the
 * bytes stay as they were while the block is deleted, stored anew under its key and evicted,
 * and none of those calls waits for the view; the lent chunk is not reused until the view
 * is released, and is reusable after. */
static void views_outlive_delete_replace_and_eviction(void)
{
	kvg_grid *g = open_dram(3, 0);
	CHECK(g);
	kvg_key k[4], miss;
	CHECK(t_chain(g, 230, 4, k) == 4);
	CHECK(t_chain(g, 231, 1, &miss) == 1);
	CHECK_RC(t_store(g, &k[0], 1, LEN, 1), 0);
	struct iovec iov[4];
	size_t len = 0;
	kvg_view *v = NULL, *v2 = NULL;
	CHECK_RC(kvg_view_get(g, &miss, iov, 4, &len, &v), KVG_ENOTFOUND);
	uint64_t hits = t_stats(g).tier[KVG_TIER_DRAM].hits;
	CHECK_RC(kvg_view_get(g, &k[0], iov, 4, &len, &v), 1);
	CHECK(v && len == LEN && view_holds(iov, 1, LEN, &k[0], 1));
	CHECK(t_stats(g).tier[KVG_TIER_DRAM].hits == hits + 1);
	/* delete does not wait for the view; a new store under the key gets other chunks */
	CHECK_RC(kvg_delete(g, &k[0], 1), 1);
	CHECK_RC(t_store(g, &k[0], 1, LEN, 2), 0);
	CHECK_RC(t_load(g, &k[0], LEN, 2, NULL), 0);
	/* two chunks left for new blocks: k1 fits, k2 evicts the new k0 */
	CHECK_RC(t_store(g, &k[1], 1, LEN, 1), 0);
	CHECK_RC(t_store(g, &k[2], 1, LEN, 1), 0);
	CHECK(t_stats(g).tier[KVG_TIER_DRAM].blocks == 2);
	CHECK_RC(t_load(g, &k[0], LEN, 2, NULL), KVG_ENOTFOUND);
	CHECK(view_holds(iov, 1, LEN, &k[0], 1)); /* still the first bytes */
	/* a second view (a hit: k2 is now the oldest), then its block deleted */
	struct iovec iov2[4];
	CHECK_RC(kvg_view_get(g, &k[1], iov2, 4, &len, &v2), 1);
	CHECK_RC(t_store(g, &k[3], 1, LEN, 1), 0); /* evicts k2 */
	CHECK_RC(t_load(g, &k[2], LEN, 1, NULL), KVG_ENOTFOUND);
	CHECK_RC(kvg_delete(g, &k[1], 1), 1);
	CHECK(view_holds(iov2, 1, LEN, &k[1], 1));
	CHECK(view_holds(iov, 1, LEN, &k[0], 1));
	kvg_view_release(g, v2);
	kvg_view_release(g, v);
	/* both lent chunks are free again: with k3, three blocks fit without an eviction */
	uint64_t ev = t_stats(g).tier[KVG_TIER_DRAM].evictions;
	CHECK_RC(t_store(g, &k[0], 1, LEN, 3), 0);
	CHECK_RC(t_store(g, &k[1], 1, LEN, 3), 0);
	struct kvg_stats st = t_stats(g);
	CHECK(st.tier[KVG_TIER_DRAM].blocks == 3);
	CHECK(st.tier[KVG_TIER_DRAM].evictions == ev);
	CHECK_RC(t_load(g, &k[0], LEN, 3, NULL), 0);
	CHECK_RC(t_load(g, &k[1], LEN, 3, NULL), 0);
	CHECK_RC(t_load(g, &k[3], LEN, 1, NULL), 0);
	kvg_close(g);
}

/* Description: a block in chunks that are not adjacent comes as several pieces, in order;
 * with too little iov room the view is refused (KVG_EBUFSIZE) and nothing stays lent. */
static void views_of_scattered_chunks(void)
{
	kvg_grid *g = open_dram(4, 0);
	CHECK(g);
	kvg_key k[4];
	CHECK(t_chain(g, 232, 4, k) == 4);
	CHECK_RC(t_store(g, k, 3, LEN, 1), 0); /* chunks 0, 1, 2 */
	CHECK_RC(kvg_delete(g, &k[0], 1), 1);  /* free: 0, 3 */
	CHECK_RC(kvg_delete(g, &k[1], 1), 1);  /* free: 1, 0, 3 */
	size_t big = 2 * CHUNK - 100;
	CHECK_RC(t_store(g, &k[3], 1, big, 1), 0); /* chunks 1 then 0 */
	struct iovec iov[4];
	size_t len = 0;
	kvg_view *v = NULL;
	CHECK_RC(kvg_view_get(g, &k[3], iov, 1, &len, &v), KVG_EBUFSIZE);
	CHECK_RC(kvg_view_get(g, &k[3], iov, 4, &len, &v), 2);
	CHECK(len == big && iov[0].iov_len == CHUNK && iov[1].iov_len == big - CHUNK);
	CHECK(view_holds(iov, 2, big, &k[3], 1));
	kvg_view_release(g, v);
	/* nothing lent any more: deleting everything frees all four chunks */
	CHECK_RC(kvg_delete(g, &k[2], 1), 1);
	CHECK_RC(kvg_delete(g, &k[3], 1), 1);
	CHECK_RC(t_store(g, k, 4, LEN, 4), 0);
	CHECK(t_stats(g).tier[KVG_TIER_DRAM].evictions == 0);
	kvg_close(g);
}

/* Fills the pieces of a reservation with len bytes of t_fill(key, salt). */
static void fill_pieces(const struct iovec *iov, int n, size_t len, const kvg_key *k, uint32_t salt)
{
	uint8_t *buf = malloc(len);
	t_fill(buf, len, k, salt);
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		memcpy(iov[i].iov_base, buf + off, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	free(buf);
}

/* Description: a fill reserves DRAM room (evicting as a store does), is invisible until
 * committed, then loads byte for byte; an aborted fill gives its room back; a commit under a
 * key already present keeps the old bytes unless it replaces them, and gives back its own
 * room when it does not. */
static void fills_publish_refresh_replace_and_abort(void)
{
	kvg_grid *g = open_dram(3, 0);
	CHECK(g);
	kvg_key k[4];
	CHECK(t_chain(g, 240, 4, k) == 4);
	struct iovec iov[4];
	struct kvg_fill f;
	CHECK_RC(kvg_fill_begin(g, LEN, iov, 4, &f), 1);
	CHECK(iov[0].iov_len == LEN);
	fill_pieces(iov, 1, LEN, &k[0], 1);
	CHECK_RC(t_load(g, &k[0], LEN, 1, NULL), KVG_ENOTFOUND); /* not yet published */
	CHECK_RC(kvg_fill_commit(g, &f, &k[0], 0, 0, 0), 0);
	CHECK_RC(t_load(g, &k[0], LEN, 1, NULL), 0);
	struct kvg_stats st = t_stats(g);
	CHECK(st.tier[KVG_TIER_DRAM].blocks == 1 && st.tier[KVG_TIER_DRAM].bytes == LEN);
	/* an aborted fill: its chunk is free again (k1, k2 then fit beside k0) */
	CHECK_RC(kvg_fill_begin(g, LEN, iov, 4, &f), 1);
	kvg_fill_abort(g, &f);
	CHECK_RC(t_store(g, &k[1], 2, LEN, 1), 0);
	CHECK(t_stats(g).tier[KVG_TIER_DRAM].evictions == 0);
	/* a full arena: the fill evicts the oldest block (k0) */
	CHECK_RC(kvg_fill_begin(g, LEN, iov, 4, &f), 1);
	CHECK(t_stats(g).tier[KVG_TIER_DRAM].evictions == 1);
	CHECK_RC(t_load(g, &k[0], LEN, 1, NULL), KVG_ENOTFOUND);
	/* committed under k1, present: a refresh, k1 keeps its bytes, the room comes back */
	fill_pieces(iov, 1, LEN, &k[1], 2);
	CHECK_RC(kvg_fill_commit(g, &f, &k[1], 0, 0, 0), 0);
	CHECK_RC(t_load(g, &k[1], LEN, 1, NULL), 0);
	CHECK_RC(t_store(g, &k[3], 1, LEN, 1), 0); /* fits in the room given back */
	CHECK(t_stats(g).tier[KVG_TIER_DRAM].evictions == 1);
	/* with replace the new bytes win */
	CHECK_RC(kvg_fill_begin(g, LEN, iov, 4, &f), 1);
	fill_pieces(iov, 1, LEN, &k[2], 7);
	CHECK_RC(kvg_fill_commit(g, &f, &k[2], 0, 0, 1), 0);
	CHECK_RC(t_load(g, &k[2], LEN, 7, NULL), 0);
	st = t_stats(g);
	CHECK(st.tier[KVG_TIER_DRAM].blocks == 3 && st.tier[KVG_TIER_DRAM].bytes == 3 * LEN);
	/* too big for the arena: refused before anything is reserved */
	CHECK_RC(kvg_fill_begin(g, 4 * CHUNK, iov, 4, &f), KVG_ETOOBIG);
	kvg_close(g);
}

int main(void)
{
	t_variant = "dram";
	RUN(room_for_three);
	RUN(lru_order_follows_loads);
	RUN(refresh_counts_as_use);
	RUN(lookup_is_not_a_use);
	RUN(capacity_never_exceeded);
	RUN(chains_of_mixed_sizes_stay_apart);
	RUN(pinned_blocks_stay_in_dram);
	RUN(block_larger_than_arena);
	RUN(hits_and_misses_counted);
	RUN(every_policy_keeps_invariants);
	RUN(views_outlive_delete_replace_and_eviction);
	RUN(views_of_scattered_chunks);
	RUN(fills_publish_refresh_replace_and_abort);
	T_EXIT();
}
