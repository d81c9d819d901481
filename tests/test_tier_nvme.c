/*
 * test_tier_nvme.c - the NVMe tier through the public API, swept over io_uring and psync:
 * DRAM overflow demoted to NVMe, a full tier evicting whole segments, pins, restart
 * persistence (clean close, and a copy of the directory taken while the grid was open, which
 * has no checkpoint and is recovered by scanning), damage on disk (a flipped payload or
 * header byte) served as a miss and counted, and a directory in use refused.
 *
 * On-disk facts the damage tests rely on (src/record.h): segment files seg-NNNNNNNN.kvg, the
 * first record of a fresh tier in seg-00000000.kvg with its 4 KiB header block at offset 4096
 * (the fixed header in the block's last 128 bytes, REC_HDR_OFF; the key at its byte 24) and
 * its payload at 8192; the segment header at offset 0, its format at byte 8.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "policy.h"
#include "record.h"
#include "t_grid.h"

static kvg_grid *open_or_null(const struct kvg_config *c)
{
	kvg_grid *g = NULL;
	char err[512] = "";
	int rc = kvg_open(c, &g, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "kvg_open [%s]: %s (%s)\n", t_variant, err, kvg_strerror(rc));
		return NULL;
	}
	return g;
}

#define OPEN(g, c)                                                                                 \
	kvg_grid *g = open_or_null(c);                                                             \
	CHECK(g)

/* NVMe variant with a DRAM tier in front: dram_bytes of 64 KiB chunks. */
static void mixed_config(struct kvg_config *c, uint64_t dram_bytes)
{
	t_config(c);
	c->dram_bytes = dram_bytes;
}

static int sh(const char *fmt, const char *a, const char *b)
{
	char cmd[9000];
	snprintf(cmd, sizeof(cmd), fmt, a, b);
	return system(cmd);
}

/* XORs one byte of a file with mask. */
static int flip_byte(const char *dir, const char *name, off_t off, uint8_t mask)
{
	char path[8400];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	uint8_t b;
	int ok = pread(fd, &b, 1, off) == 1;
	b ^= mask;
	ok = ok && pwrite(fd, &b, 1, off) == 1 && fsync(fd) == 0;
	close(fd);
	return ok ? 0 : -1;
}

/* The key of the record whose header is at off in a segment file. */
static int record_key(const char *dir, const char *name, off_t off, kvg_key *key)
{
	char path[8400];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	int ok = pread(fd, key->bytes, KVG_KEY_BYTES, off + REC_HDR_OFF + 24) == KVG_KEY_BYTES;
	close(fd);
	return ok ? 0 : -1;
}

static int file_exists(const char *dir, const char *name)
{
	char path[8400];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

/* ---- tiers ------------------------------------------------------------------------------- */

/* Description: storing more than DRAM holds demotes the least recently used blocks to NVMe:
 * every block still loads and verifies, lookup reports the old ones on NVMe and the recent
 * ones in DRAM, a load of an old one reports tier NVMe, DRAM never holds more than its
 * capacity, and the stats count the DRAM evictions and demotions. */
static void overflow_demotes_to_nvme(void)
{
	struct kvg_config c;
	mixed_config(&c, 1 << 20); /* 16 chunks */
	c.promote_on_hit = 0;
	OPEN(g, &c);
	enum { N = 40, LEN = 60000 };
	kvg_key k[N];
	CHECK(t_chain(g, 100, N, k) == N);
	for (int i = 0; i < N; i++) {
		CHECK_RC(t_store(g, &k[i], 1, LEN, 1), 0);
		struct kvg_stats st = t_stats(g);
		CHECK(st.tier[KVG_TIER_DRAM].bytes <= st.tier[KVG_TIER_DRAM].capacity_bytes);
		CHECK(st.tier[KVG_TIER_DRAM].blocks <= 16);
	}
	uint8_t tiers[N];
	size_t hit;
	CHECK_RC(kvg_lookup_keys(g, k, N, &hit, tiers), 0);
	CHECK(hit == N);
	CHECK(tiers[0] == KVG_TIER_NVME);
	CHECK(tiers[N - 1] == KVG_TIER_DRAM);
	struct kvg_stats st = t_stats(g);
	CHECK(st.tier[KVG_TIER_DRAM].evictions >= N - 16);
	CHECK(st.tier[KVG_TIER_DRAM].demotions >= N - 16);
	CHECK(st.tier[KVG_TIER_NVME].blocks >= N - 16);
	for (int i = 0; i < N; i++) {
		uint8_t tier;
		CHECK_RC(t_load(g, &k[i], LEN, 1, &tier), 0);
		CHECK(tier == tiers[i]);
	}
	kvg_close(g);
}

/* Description: under every eviction policy, DRAM overflow is demoted, not lost: 40 blocks in
 * chains of 4 through a 16-chunk DRAM tier all load and verify afterwards, DRAM never holds
 * more than its capacity, and a reopen finds all 40. */
static void every_policy_demotes_overflow(void)
{
	static char name[64];
	for (int p = 0; policy_names[p]; p++) {
		/* an admission filter (admit()) refuses first-time blocks by design */
		if (policy_find(policy_names[p])->admit)
			continue;
		snprintf(name, sizeof(name), "%s, %s", t_v->name, policy_names[p]);
		t_variant = name;
		struct kvg_config c;
		mixed_config(&c, 1 << 20);
		snprintf(c.policy, sizeof(c.policy), "%s", policy_names[p]);
		enum { N = 40, LEN = 60000 };
		kvg_key k[N];
		{
			OPEN(g, &c);
			for (int ch = 0; ch < N / 4; ch++) {
				CHECK(t_chain(g, 180 + (uint32_t)ch, 4, &k[4 * ch]) == 4);
				CHECK_RC(t_store(g, &k[4 * ch], 4, LEN, 21), 0);
				struct kvg_stats st = t_stats(g);
				CHECK(st.tier[0].bytes <= st.tier[0].capacity_bytes);
				CHECK_RC(t_load(g, &k[4 * (ch / 2)], LEN, 21, NULL), 0);
			}
			for (int i = 0; i < N; i++)
				CHECK_RC(t_load(g, &k[i], LEN, 21, NULL), 0);
			kvg_close(g);
		}
		OPEN(g, &c);
		for (int i = 0; i < N; i++)
			CHECK_RC(t_load(g, &k[i], LEN, 21, NULL), 0);
		kvg_close(g);
		t_done();
	}
	t_variant = t_v->name;
}

/* Description: with demote_on_evict off, DRAM victims are dropped, not written: the oldest
 * blocks miss, nothing reaches NVMe, and the recent ones load. */
static void no_demotion_drops_victims(void)
{
	struct kvg_config c;
	mixed_config(&c, 1 << 20);
	c.demote_on_evict = 0;
	OPEN(g, &c);
	enum { N = 30, LEN = 60000 };
	kvg_key k[N];
	CHECK(t_chain(g, 101, N, k) == N);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_store(g, &k[i], 1, LEN, 1), 0);
	struct kvg_stats st = t_stats(g);
	CHECK(st.tier[KVG_TIER_NVME].blocks == 0);
	CHECK(st.tier[KVG_TIER_DRAM].evictions >= N - 16);
	CHECK_RC(t_load(g, &k[0], LEN, 1, NULL), KVG_ENOTFOUND);
	CHECK_RC(t_load(g, &k[N - 1], LEN, 1, NULL), 0);
	kvg_close(g);
}

/* Description: a full NVMe tier (4 segments of 1 MiB, 9 records each) evicts whole segments:
 * 100 stores all succeed, evictions come in multiples of a segment's records, the oldest
 * blocks miss (never stale bytes from a reused segment), the newest segment's blocks load,
 * and the tier never holds more than its capacity. */
static void full_tier_evicts_whole_segments(void)
{
	struct kvg_config c;
	t_config(&c);
	c.nvme_bytes = 4 << 20;
	c.segment_bytes = 1 << 20;
	OPEN(g, &c);
	enum { N = 100, LEN = 100000 }; /* span 4096 + 102400: 9 per segment */
	kvg_key k[N];
	CHECK(t_chain(g, 102, N, k) == N);
	for (int i = 0; i < N; i++) {
		CHECK_RC(t_store(g, &k[i], 1, LEN, 3), 0);
		struct kvg_stats st = t_stats(g);
		CHECK(st.tier[KVG_TIER_NVME].bytes <= st.tier[KVG_TIER_NVME].capacity_bytes);
		CHECK(st.tier[KVG_TIER_NVME].evictions % 9 == 0);
		CHECK(st.tier[KVG_TIER_NVME].blocks <= 36);
	}
	struct kvg_stats st = t_stats(g);
	CHECK(st.tier[KVG_TIER_NVME].evictions >= N - 36);
	CHECK(st.tier[KVG_TIER_NVME].blocks + st.tier[KVG_TIER_NVME].evictions == N);
	size_t present = 0;
	for (int i = 0; i < N; i++) {
		int rc = t_load(g, &k[i], LEN, 3, NULL);
		CHECK(rc == 0 || rc == KVG_ENOTFOUND);
		present += rc == 0;
	}
	CHECK(present == st.tier[KVG_TIER_NVME].blocks);
	CHECK_RC(t_load(g, &k[0], LEN, 3, NULL), KVG_ENOTFOUND);
	for (int i = N - 9; i < N; i++)
		CHECK_RC(t_load(g, &k[i], LEN, 3, NULL), 0);
	CHECK(t_stats(g).tier[KVG_TIER_NVME].checksum_failures == 0);
	kvg_close(g);
}

/* Description: a pinned block is never evicted from NVMe (its segment stays), while the tier
 * cycles through the other segments; when every segment holds a pinned block a store fails
 * with KVG_EFULL; after unpin the block can be evicted again. */
static void pinned_blocks_stay_on_nvme(void)
{
	struct kvg_config c;
	t_config(&c);
	c.nvme_bytes = 4 << 20;
	c.segment_bytes = 1 << 20;
	OPEN(g, &c);
	enum { LEN = 100000 };
	kvg_key a[4], k[60];
	CHECK(t_chain(g, 103, 4, a) == 4);
	CHECK(t_chain(g, 104, 60, k) == 60);
	CHECK_RC(t_store(g, &a[0], 1, LEN, 1), 0);
	CHECK(kvg_pin(g, &a[0], 1) == 1);
	for (int i = 0; i < 60; i++)
		CHECK_RC(t_store(g, &k[i], 1, LEN, 2), 0);
	CHECK_RC(t_load(g, &a[0], LEN, 1, NULL), 0);
	CHECK(t_stats(g).tier[KVG_TIER_NVME].evictions > 0);

	/* pin one block in every other segment: no segment can go */
	for (int s = 1; s < 4; s++) {
		for (int i = 0; i < 9; i++) /* fill the open segment, then one more opens */
			CHECK_RC(t_store(g, &k[(s * 9 + i) % 60], 1, LEN, 2), 0);
	}
	int pinned = 0;
	for (int i = 0; i < 60; i++)
		pinned += kvg_pin(g, &k[i], 1);
	CHECK(pinned > 0);
	kvg_key extra[40];
	CHECK(t_chain(g, 105, 40, extra) == 40);
	int rc = 0, stored = 0;
	for (int i = 0; i < 40 && rc == 0; i++) {
		rc = t_store(g, &extra[i], 1, LEN, 4);
		stored += rc == 0;
	}
	CHECK_RC(rc, KVG_EFULL);
	CHECK(stored < 40);
	CHECK_RC(t_load(g, &a[0], LEN, 1, NULL), 0);

	/* unpin everything: the pinned blocks become evictable and stores succeed again */
	CHECK(kvg_unpin(g, &a[0], 1) == 1);
	for (int i = 0; i < 60; i++)
		kvg_unpin(g, &k[i], 1);
	for (int i = 0; i < 40; i++)
		CHECK_RC(t_store(g, &extra[i], 1, LEN, 4), 0);
	CHECK_RC(t_load(g, &a[0], LEN, 1, NULL), KVG_ENOTFOUND);
	kvg_close(g);
}

/* Description: a block as large as a segment can take (4 MiB segment: payload 4 MiB - 8 KiB,
 * with its header filling the segment after the segment header) is stored and loads; one
 * 4 KiB larger cannot fit any segment and is refused with KVG_ETOOBIG, storing nothing. */
static void largest_record_fits_a_segment(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	kvg_key k[2];
	CHECK(t_chain(g, 140, 2, k) == 2);
	size_t fit = (4 << 20) - 8192;
	CHECK_RC(t_store(g, &k[0], 1, fit, 1), 0);
	CHECK_RC(t_load(g, &k[0], fit, 1, NULL), 0);
	CHECK_RC(t_store(g, &k[1], 1, fit + 1, 1), KVG_ETOOBIG);
	size_t hit;
	CHECK_RC(kvg_lookup_keys(g, &k[1], 1, &hit, NULL), 0);
	CHECK(hit == 0);
	CHECK(t_stats(g).index_blocks == 1);
	kvg_close(g);
}

/* Description: an NVMe hit is promoted to DRAM (promote_on_hit): the first load reports tier
 * NVMe, the next one DRAM, and the stats count the promotion; with KVG_LOAD_NOPROMOTE the
 * block stays on NVMe. */
static void nvme_hit_is_promoted(void)
{
	struct kvg_config c;
	mixed_config(&c, 4 << 20);
	OPEN(g, &c);
	kvg_key k[2];
	CHECK(t_chain(g, 141, 2, k) == 2);
	uint8_t *buf = t_alloc(30000, 0);
	CHECK(buf);
	for (int i = 0; i < 2; i++) { /* on NVMe and in DRAM, then out of DRAM */
		t_fill(buf, 30000, &k[i], 2);
		struct kvg_io io = {.key = k[i], .buf = buf, .len = 30000};
		CHECK_RC(kvg_store_sync(g, &io, 1, KVG_STORE_NVME), 0);
	}
	kvg_key filler[70];
	CHECK(t_chain(g, 142, 70, filler) == 70);
	CHECK_RC(t_store(g, filler, 70, 60000, 3), 0);
	CHECK(kvg_delete(g, filler, 70) == 70); /* room for the promotion */
	uint8_t tiers[2];
	size_t hit;
	CHECK_RC(kvg_lookup_keys(g, k, 2, &hit, tiers), 0);
	CHECK(hit == 2 && tiers[0] == KVG_TIER_NVME && tiers[1] == KVG_TIER_NVME);
	uint64_t promotions = t_stats(g).tier[KVG_TIER_DRAM].promotions;
	uint8_t tier;
	CHECK_RC(t_load(g, &k[0], 30000, 2, &tier), 0);
	CHECK(tier == KVG_TIER_NVME);
	CHECK_RC(t_load(g, &k[0], 30000, 2, &tier), 0);
	CHECK(tier == KVG_TIER_DRAM);
	CHECK(t_stats(g).tier[KVG_TIER_DRAM].promotions == promotions + 1);
	struct kvg_io io = {.key = k[1], .buf = buf, .len = 30000};
	CHECK_RC(kvg_load_sync(g, &io, 1, KVG_LOAD_NOPROMOTE), 0);
	CHECK(io.tier == KVG_TIER_NVME && t_verify(buf, 30000, &k[1], 2));
	CHECK_RC(kvg_lookup_keys(g, &k[1], 1, &hit, tiers), 0);
	CHECK(tiers[0] == KVG_TIER_NVME);
	t_free(buf, 0);
	kvg_close(g);
}

/* Description: in durable mode a store completes only once its block is on NVMe: a copy of
 * the directory taken right after the store returned (no close) holds every block. */
static void durable_store_survives_a_crash(void)
{
	struct kvg_config c;
	mixed_config(&c, 4 << 20);
	c.durability = KVG_DURABILITY_DURABLE;
	enum { N = 12, LEN = 20000 };
	char copy[4096];
	snprintf(copy, sizeof(copy), "%.4000s.copy", t_dir);
	kvg_key k[N];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 143, N, k) == N);
		CHECK_RC(t_store(g, k, N, LEN, 4), 0);
		CHECK(t_stats(g).tier[KVG_TIER_NVME].blocks == N);
		CHECK(sh("cp -r '%s' '%s'", t_dir, copy) == 0);
		kvg_close(g);
	}
	struct kvg_config cc = c;
	snprintf(cc.dir, sizeof(cc.dir), "%.4000s", copy);
	kvg_grid *g = open_or_null(&cc);
	if (!g)
		t_rmdir(copy);
	CHECK(g);
	CHECK(t_stats(g).recovered_blocks == N);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_load(g, &k[i], LEN, 4, NULL), 0);
	kvg_close(g);
	t_rmdir(copy);
}

/* Description: reopening a directory under another tenant or another layout finds none of
 * the stored blocks by lookup (keys are namespaced), while the original namespace still does. */
static void reopen_under_another_namespace(void)
{
	struct kvg_config c;
	t_config(&c);
	uint32_t tok[16 * 4];
	t_tokens(tok, 16 * 4, 144);
	{
		OPEN(g, &c);
		kvg_key k[4];
		CHECK(kvg_block_keys(g, tok, 16 * 4, NULL, k, 4) == 4);
		CHECK_RC(t_store(g, k, 4, 5000, 5), 0);
		kvg_close(g);
	}
	for (int v = 0; v < 3; v++) {
		struct kvg_config o = c;
		if (v == 0)
			snprintf(o.tenant, sizeof(o.tenant), "someone-else");
		else if (v == 1)
			o.head_dim = 128;
		OPEN(g, &o);
		size_t hit = 99;
		CHECK_RC(kvg_lookup(g, tok, 16 * 4, &hit), 0);
		CHECK(hit == (v == 2 ? 16 * 4 : 0));
		kvg_close(g);
	}
}

/* Description: deleting a block held in both DRAM and NVMe removes both copies (stats of
 * both tiers drop to zero), it misses at once, and a clean reopen does not bring it back. */
static void delete_removes_both_copies(void)
{
	struct kvg_config c;
	mixed_config(&c, 4 << 20);
	kvg_key k[3];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 145, 3, k) == 3);
		uint8_t *buf = t_alloc(30000, 0);
		CHECK(buf);
		for (int i = 0; i < 3; i++) {
			t_fill(buf, 30000, &k[i], 6);
			struct kvg_io io = {.key = k[i], .buf = buf, .len = 30000};
			CHECK_RC(kvg_store_sync(g, &io, 1, KVG_STORE_NVME), 0);
		}
		t_free(buf, 0);
		struct kvg_stats st = t_stats(g);
		CHECK(st.tier[KVG_TIER_DRAM].blocks == 3 && st.tier[KVG_TIER_NVME].blocks == 3);
		CHECK(kvg_delete(g, k, 2) == 2);
		st = t_stats(g);
		CHECK(st.tier[KVG_TIER_DRAM].blocks == 1 && st.tier[KVG_TIER_NVME].blocks == 1);
		CHECK(st.tier[KVG_TIER_DRAM].bytes == 30000 &&
		      st.tier[KVG_TIER_NVME].bytes == 30000);
		CHECK_RC(t_load(g, &k[0], 30000, 6, NULL), KVG_ENOTFOUND);
		kvg_close(g);
	}
	OPEN(g, &c);
	CHECK(t_stats(g).recovered_blocks == 1);
	CHECK_RC(t_load(g, &k[0], 30000, 6, NULL), KVG_ENOTFOUND);
	CHECK_RC(t_load(g, &k[1], 30000, 6, NULL), KVG_ENOTFOUND);
	CHECK_RC(t_load(g, &k[2], 30000, 6, NULL), 0);
	kvg_close(g);
}

/* Description: a deleted block stays deleted after a crash: a copy of the directory taken
 * after kvg_delete returned (no close, so recovery scans the segments) does not bring it
 * back (deletes write a tombstone). */
static void delete_survives_a_crash(void)
{
	struct kvg_config c;
	t_config(&c);
	char copy[4096];
	snprintf(copy, sizeof(copy), "%.4000s.copy", t_dir);
	kvg_key k[3];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 146, 3, k) == 3);
		CHECK_RC(t_store(g, k, 3, 9000, 7), 0);
		CHECK(kvg_delete(g, &k[1], 1) == 1);
		CHECK(sh("cp -r '%s' '%s'", t_dir, copy) == 0);
		kvg_close(g);
	}
	struct kvg_config cc = c;
	snprintf(cc.dir, sizeof(cc.dir), "%.4000s", copy);
	kvg_grid *g = open_or_null(&cc);
	if (!g)
		t_rmdir(copy);
	CHECK(g);
	int back = t_load(g, &k[1], 9000, 7, NULL) == 0;
	int kept = t_load(g, &k[0], 9000, 7, NULL) == 0 && t_load(g, &k[2], 9000, 7, NULL) == 0;
	kvg_close(g);
	t_rmdir(copy);
	CHECK(kept);
	CHECK(!back);
}

/* ---- restart ----------------------------------------------------------------------------- */

/* Description: blocks of several sizes stored on NVMe survive close and reopen of the same
 * directory: all load and verify, and the stats count them as recovered. */
static void restart_recovers_blocks(void)
{
	struct kvg_config c;
	t_config(&c);
	enum { N = 50 };
	static const size_t lens[] = {1, 4096, 5000, 32768, 70001};
	kvg_key k[N];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 110, N, k) == N);
		for (int i = 0; i < N; i++)
			CHECK_RC(t_store(g, &k[i], 1, lens[i % 5], 7), 0);
		kvg_close(g);
	}
	OPEN(g, &c);
	struct kvg_stats st = t_stats(g);
	CHECK(st.recovered_blocks == N);
	CHECK(st.recovery_us > 0); /* how long recovery took is reported */
	CHECK(st.tier[KVG_TIER_NVME].blocks == N);
	size_t hit;
	CHECK_RC(kvg_lookup_keys(g, k, N, &hit, NULL), 0);
	CHECK(hit == N);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_load(g, &k[i], lens[i % 5], 7, NULL), 0);
	/* and once more: a second generation of close and open */
	kvg_close(g);
	OPEN(g2, &c);
	CHECK(t_stats(g2).recovered_blocks == N);
	for (int i = 0; i < N; i += 7)
		CHECK_RC(t_load(g2, &k[i], lens[i % 5], 7, NULL), 0);
	kvg_close(g2);
}

/* Description: with DRAM in front, blocks that were only in DRAM at close are written back,
 * so a reopen finds every block (including the ones demoted earlier). */
static void restart_keeps_dram_blocks(void)
{
	struct kvg_config c;
	mixed_config(&c, 2 << 20);
	enum { N = 45, LEN = 40000 };
	kvg_key k[N];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 111, N, k) == N);
		CHECK_RC(t_store(g, k, N, LEN, 8), 0);
		kvg_close(g);
	}
	OPEN(g, &c);
	CHECK(t_stats(g).recovered_blocks == N);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_load(g, &k[i], LEN, 8, NULL), 0);
	kvg_close(g);
}

/* Description: kvg_close writes back many DRAM-only blocks (100, more than the NVMe tier's
 * op pool at queue_depth 16) without hanging, and a reopen finds them
 * all; a 60 s watchdog turns a hang into a failure. */
static void on_alarm(int sig)
{
	static const char msg[] = "FAIL: kvg_close hung writing back DRAM blocks "
				  "(write_back waits on the op pool it holds)\n";
	(void)sig;
	if (write(2, msg, sizeof(msg) - 1)) {
	}
	_exit(1);
}

static void close_flushes_many_dram_blocks(void)
{
	struct kvg_config c;
	t_config(&c);
	c.dram_bytes = 16 << 20;
	c.queue_depth = 16;
	enum { N = 100, LEN = 20000 };
	kvg_key k[N];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 112, N, k) == N);
		CHECK_RC(t_store(g, k, N, LEN, 9), 0);
		signal(SIGALRM, on_alarm);
		alarm(60);
		kvg_close(g);
		alarm(0);
	}
	OPEN(g, &c);
	CHECK(t_stats(g).recovered_blocks == N);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_load(g, &k[i], LEN, 9, NULL), 0);
	kvg_close(g);
}

/* Description: a block larger than 32 DRAM chunks (2 MiB + 1 in 64 KiB chunks) stored in
 * DRAM is written to NVMe at close and found after reopen; also with KVG_STORE_NVME it is on
 * NVMe at once. */
static void restart_keeps_large_dram_block(void)
{
	struct kvg_config c;
	mixed_config(&c, 8 << 20);
	const size_t len = (2 << 20) + 1;
	kvg_key k[2];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 113, 2, k) == 2);
		CHECK_RC(t_store(g, &k[0], 1, len, 1), 0);
		uint8_t *buf = t_alloc(len, 0);
		CHECK(buf);
		t_fill(buf, len, &k[1], 1);
		struct kvg_io io = {.key = k[1], .buf = buf, .len = len};
		CHECK_RC(kvg_store_sync(g, &io, 1, KVG_STORE_NVME), 0);
		t_free(buf, 0);
		CHECK(t_stats(g).tier[KVG_TIER_NVME].blocks == 1);
		kvg_close(g);
	}
	OPEN(g, &c);
	CHECK(t_stats(g).recovered_blocks == 2);
	CHECK_RC(t_load(g, &k[0], len, 1, NULL), 0);
	CHECK_RC(t_load(g, &k[1], len, 1, NULL), 0);
	kvg_close(g);
}

struct writer {
	kvg_grid *g;
	const kvg_key *keys;
	int n;
	int stop;
	int stored;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	for (int i = 0; i < w->n && !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE); i++)
		if (t_store(w->g, &w->keys[i], 1, 50000, 11) == 0)
			__atomic_add_fetch(&w->stored, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Description: a copy of the directory taken while the grid is open and writing (as after a
 * crash: no checkpoint) opens, recovers by scanning every block stored before the copy, and
 * serves only correct bytes: each block written during the copy verifies or misses. */
static void crash_copy_recovers_by_scan(void)
{
	struct kvg_config c;
	t_config(&c);
	enum { N = 30, M = 200, LEN = 50000 };
	char copy[4096];
	snprintf(copy, sizeof(copy), "%.4000s.copy", t_dir);
	kvg_key k[N], more[M];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 120, N, k) == N);
		CHECK(t_chain(g, 121, M, more) == M);
		CHECK_RC(t_store(g, k, N, 11, 10), 0); /* tiny blocks */
		for (int i = 0; i < N; i++)
			CHECK_RC(t_store(g, &k[i], 1, LEN, 10), 0); /* present: a refresh */
		struct writer w = {g, more, M, 0, 0};
		pthread_t th;
		CHECK(pthread_create(&th, NULL, writer_main, &w) == 0);
		while (__atomic_load_n(&w.stored, __ATOMIC_ACQUIRE) < 5)
			usleep(1000);
		int rc = sh("cp -r '%s' '%s'", t_dir, copy);
		__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
		CHECK(rc == 0);
		kvg_close(g);
	}
	CHECK(!file_exists(copy, "index.ckpt"));
	struct kvg_config cc = c;
	snprintf(cc.dir, sizeof(cc.dir), "%.4000s", copy);
	kvg_grid *g = open_or_null(&cc);
	if (!g)
		t_rmdir(copy);
	CHECK(g);
	struct kvg_stats st = t_stats(g);
	CHECK(st.recovered_blocks >= N + 5 - 1); /* the one being written may be torn */
	for (int i = 0; i < N; i++)
		CHECK_RC(t_load(g, &k[i], 11, 10, NULL), 0); /* the first store's bytes were kept */
	int served = 0;
	for (int i = 0; i < M; i++) {
		int rc = t_load(g, &more[i], 50000, 11, NULL);
		CHECK(rc == 0 || rc == KVG_ENOTFOUND || rc == KVG_ECORRUPT);
		served += rc == 0;
	}
	CHECK(served >= 4);
	kvg_close(g);
	t_rmdir(copy);
}

/* Description: after a crash (a copy taken with no checkpoint), new blocks are appended after
 * every recovered record: stores into the recovered grid, then a clean reopen, find the
 * blocks from before the crash, the last of them too, and the new ones, byte for byte.  (A
 * recovery that set the append point at the start of the last record would let the first new
 * store overwrite it: an acknowledged block lost.) */
static void stores_after_a_crash_keep_the_last_record(void)
{
	struct kvg_config c;
	t_config(&c);
	c.durability = KVG_DURABILITY_DURABLE;
	enum { N = 5, LEN = 30000 };
	char copy[4096];
	snprintf(copy, sizeof(copy), "%.4000s.copy", t_dir);
	kvg_key k[N], more[N];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 131, N, k) == N);
		CHECK(t_chain(g, 132, N, more) == N);
		for (int i = 0; i < N; i++)
			CHECK_RC(t_store(g, &k[i], 1, LEN, 12), 0);
		int rc = sh("cp -r '%s' '%s'", t_dir, copy);
		kvg_close(g);
		CHECK(rc == 0);
	}
	CHECK(!file_exists(copy, "index.ckpt"));
	struct kvg_config cc = c;
	snprintf(cc.dir, sizeof(cc.dir), "%.4000s", copy);
	int lost = -1, lost_new = -1;
	for (int pass = 0; pass < 2; pass++) {
		kvg_grid *g = open_or_null(&cc);
		if (!g)
			break;
		if (pass == 0) /* the recovered grid's first stores */
			for (int i = 0; i < N; i++)
				if (t_store(g, &more[i], 1, LEN, 13))
					lost_new = N;
		lost = lost_new = 0;
		for (int i = 0; i < N; i++) {
			lost += t_load(g, &k[i], LEN, 12, NULL) != 0;
			lost_new += t_load(g, &more[i], LEN, 13, NULL) != 0;
		}
		kvg_close(g);
		if (lost || lost_new)
			break;
	}
	t_rmdir(copy);
	if (lost || lost_new)
		fprintf(stderr,
			"after a crash and new stores: %d of %d blocks from before the crash "
			"and %d of %d new ones lost (durable stores must survive)\n",
			lost, N, lost_new, N);
	CHECK(lost == 0);
	CHECK(lost_new == 0);
}

/* Description: after the tier has cycled through its segments (evictions, segments reused
 * under new generations), a clean reopen (checkpoint) recovers exactly the blocks present
 * before, and a scan (checkpoint removed) recovers at least those; every block either path
 * serves verifies. */
static void restart_after_segments_were_reused(void)
{
	for (int scan = 0; scan < 2; scan++) {
		struct kvg_config c;
		t_config(&c);
		c.nvme_bytes = 4 << 20;
		c.segment_bytes = 1 << 20;
		enum { N = 80, LEN = 100000 };
		kvg_key k[N];
		int was_present[N];
		uint64_t present = 0;
		{
			OPEN(g, &c);
			CHECK(t_chain(g, 160, N, k) == N);
			for (int i = 0; i < N; i++)
				CHECK_RC(t_store(g, &k[i], 1, LEN, 16), 0);
			for (int i = 0; i < N; i++) {
				size_t hit;
				CHECK_RC(kvg_lookup_keys(g, &k[i], 1, &hit, NULL), 0);
				was_present[i] = hit == 1;
				present += hit;
			}
			CHECK(present > 0 && present < N);
			kvg_close(g);
		}
		if (scan)
			CHECK(sh("rm -f '%s/index.ckpt'%s", c.dir, "") == 0);
		OPEN(g, &c);
		struct kvg_stats st = t_stats(g);
		if (scan)
			CHECK(st.recovered_blocks >= present);
		else
			CHECK(st.recovered_blocks == present);
		for (int i = 0; i < N; i++) {
			int rc = t_load(g, &k[i], LEN, 16, NULL);
			CHECK(rc == 0 || (rc == KVG_ENOTFOUND && !was_present[i]));
		}
		CHECK(t_stats(g).tier[KVG_TIER_NVME].checksum_failures == 0);
		kvg_close(g);
		t_done();
	}
}

/* Description: with the XXH3 hash, keys are the same after a reopen: a context stored before
 * closing is found in full by lookup afterwards and loads. */
static void restart_with_xxh3_keys(void)
{
	struct kvg_config c;
	t_config(&c);
	c.hash = KVG_HASH_XXH3;
	uint32_t tok[16 * 5];
	t_tokens(tok, 16 * 5, 161);
	kvg_key k[5];
	{
		OPEN(g, &c);
		CHECK(kvg_block_keys(g, tok, 16 * 5, NULL, k, 5) == 5);
		CHECK_RC(t_store(g, k, 5, 7000, 17), 0);
		kvg_close(g);
	}
	OPEN(g, &c);
	size_t hit = 0;
	CHECK_RC(kvg_lookup(g, tok, 16 * 5, &hit), 0);
	CHECK(hit == 16 * 5);
	for (int i = 0; i < 5; i++)
		CHECK_RC(t_load(g, &k[i], 7000, 17, NULL), 0);
	kvg_close(g);
}

/* Description: with a DRAM tier smaller than a block, the block is stored straight to NVMe,
 * loads from NVMe (never promoted: it cannot fit), and DRAM stays empty. */
static void block_larger_than_dram_goes_to_nvme(void)
{
	struct kvg_config c;
	mixed_config(&c, 1 << 20);
	OPEN(g, &c);
	kvg_key k;
	kvg_raw_key(g, "bigger than dram", 16, &k);
	const size_t len = (2 << 20) + 5;
	CHECK_RC(t_store(g, &k, 1, len, 18), 0);
	for (int i = 0; i < 2; i++) {
		uint8_t tier;
		CHECK_RC(t_load(g, &k, len, 18, &tier), 0);
		CHECK(tier == KVG_TIER_NVME);
	}
	struct kvg_stats st = t_stats(g);
	CHECK(st.tier[KVG_TIER_DRAM].blocks == 0 && st.tier[KVG_TIER_DRAM].bytes == 0);
	CHECK(st.tier[KVG_TIER_NVME].blocks == 1);
	kvg_close(g);
}

/* Description: reopening with a changed tier geometry never serves wrong bytes and keeps
 * working: more segments (nvme_bytes doubled) recover every block; fewer segments recover
 * the blocks of the segments kept; another segment size recovers none (the old segments do
 * not match) or whatever verifies; a smaller index (max_blocks) recovers at most that many.
 * After each reopen, new blocks store and load. */
static void reopen_with_changed_geometry(void)
{
	for (int v = 0; v < 4; v++) {
		struct kvg_config c;
		t_config(&c);
		c.nvme_bytes = 16 << 20;
		c.segment_bytes = 1 << 20;
		enum { N = 40, LEN = 100000 }; /* 9 per segment: segments 0..4 */
		kvg_key k[N];
		{
			OPEN(g, &c);
			CHECK(t_chain(g, 170, N, k) == N);
			CHECK_RC(t_store(g, k, N, LEN, 19), 0);
			kvg_close(g);
		}
		struct kvg_config o = c;
		if (v == 0)
			o.nvme_bytes = 32 << 20;
		else if (v == 1)
			o.nvme_bytes = 2 << 20; /* segments 0 and 1 kept */
		else if (v == 2)
			o.segment_bytes = 2 << 20;
		else
			o.max_blocks = 20;
		OPEN(g, &o);
		struct kvg_stats st = t_stats(g);
		int served = 0;
		for (int i = 0; i < N; i++) {
			int rc = t_load(g, &k[i], LEN, 19, NULL);
			CHECK(rc == 0 || rc == KVG_ENOTFOUND);
			served += rc == 0;
		}
		if (v == 0)
			CHECK(st.recovered_blocks == N && served == N);
		if (v == 1)
			CHECK(served == 18);
		if (v == 3)
			CHECK(st.recovered_blocks <= 20 && served <= 20);
		CHECK(t_stats(g).tier[KVG_TIER_NVME].checksum_failures == 0);
		kvg_key nk[3];
		CHECK(t_chain(g, 171, 3, nk) == 3);
		CHECK_RC(t_store(g, nk, 3, LEN, 20), 0);
		for (int i = 0; i < 3; i++)
			CHECK_RC(t_load(g, &nk[i], LEN, 20, NULL), 0);
		kvg_close(g);
		t_done();
	}
}

/* ---- damage on disk ---------------------------------------------------------------------- */

/* Stores n blocks of len bytes on a fresh NVMe-only grid, closes it, and returns in *first
 * the key of the record at offset 4096 of seg-00000000.kvg. */
static int damage_setup(struct kvg_config *c, kvg_key *k, int n, size_t len, kvg_key *first)
{
	kvg_grid *g = open_or_null(c);
	if (!g)
		return -1;
	if (t_chain(g, 130, (size_t)n, k) != (size_t)n || t_store(g, k, (size_t)n, len, 12)) {
		kvg_close(g);
		return -1;
	}
	kvg_close(g);
	return record_key(c->dir, "seg-00000000.kvg", 4096, first);
}

/* Description: a byte flipped in a record's payload on disk makes that block a miss with
 * KVG_ECORRUPT (never its bytes) and counts one checksum failure; a second load is a clean
 * miss (KVG_ENOTFOUND) and lookup no longer finds it; the other blocks load.  Swept over the
 * checkpoint path and the scan path (checkpoint removed). */
static void flipped_payload_byte_is_a_miss(void)
{
	for (int scan = 0; scan < 2; scan++) {
		struct kvg_config c;
		t_config(&c);
		enum { N = 4, LEN = 20000 };
		kvg_key k[N], first;
		CHECK(damage_setup(&c, k, N, LEN, &first) == 0);
		CHECK(memcmp(&first, &k[0], sizeof(first)) == 0);
		CHECK(flip_byte(c.dir, "seg-00000000.kvg", 8192 + 1234, 0x10) == 0);
		if (scan)
			CHECK(sh("rm -f '%s/index.ckpt'%s", c.dir, "") == 0);
		OPEN(g, &c);
		CHECK(t_stats(g).recovered_blocks == N); /* headers are intact */
		uint8_t *buf = t_alloc(LEN, 0);
		CHECK(buf);
		memset(buf, 0, LEN);
		struct kvg_io io = {.key = k[0], .buf = buf, .len = LEN};
		int rc = kvg_load_sync(g, &io, 1, 0);
		CHECK(rc == KVG_ECORRUPT || rc == KVG_ENOTFOUND);
		CHECK(io.status == rc);
		CHECK(!t_verify(buf, LEN, &k[0], 12) || rc == 0);
		t_free(buf, 0);
		struct kvg_stats st = t_stats(g);
		CHECK(st.tier[KVG_TIER_NVME].checksum_failures == 1);
		CHECK_RC(t_load(g, &k[0], LEN, 12, NULL), KVG_ENOTFOUND);
		CHECK(t_stats(g).tier[KVG_TIER_NVME].checksum_failures == 1);
		size_t hit = 9;
		CHECK_RC(kvg_lookup_keys(g, k, N, &hit, NULL), 0);
		CHECK(hit == 0);
		for (int i = 1; i < N; i++)
			CHECK_RC(t_load(g, &k[i], LEN, 12, NULL), 0);
		kvg_close(g);
		t_done();
	}
}

/* Description: a byte flipped in a record's header on disk: the grid still opens; scanning
 * (no checkpoint) does not recover that record, so it misses, and the records after it are
 * recovered; with the checkpoint, the load finds the bad header and serves a miss. */
static void flipped_header_byte_is_not_recovered(void)
{
	for (int scan = 0; scan < 2; scan++) {
		struct kvg_config c;
		t_config(&c);
		enum { N = 4, LEN = 20000 };
		kvg_key k[N], first;
		CHECK(damage_setup(&c, k, N, LEN, &first) == 0);
		CHECK(flip_byte(c.dir, "seg-00000000.kvg", 4096 + REC_HDR_OFF + 40, 0x01) ==
		      0); /* in the key */
		if (scan)
			CHECK(sh("rm -f '%s/index.ckpt'%s", c.dir, "") == 0);
		OPEN(g, &c);
		struct kvg_stats st = t_stats(g);
		CHECK(st.recovered_blocks == (scan ? N - 1 : N));
		int rc = t_load(g, &k[0], LEN, 12, NULL);
		CHECK(rc == KVG_ENOTFOUND || rc == KVG_ECORRUPT);
		CHECK_RC(t_load(g, &k[0], LEN, 12, NULL), KVG_ENOTFOUND);
		for (int i = 1; i < N; i++)
			CHECK_RC(t_load(g, &k[i], LEN, 12, NULL), 0);
		/* the grid keeps working: store and load a new block */
		kvg_key nk;
		kvg_raw_key(g, "after-damage", 12, &nk);
		CHECK_RC(t_store(g, &nk, 1, LEN, 13), 0);
		CHECK_RC(t_load(g, &nk, LEN, 13, NULL), 0);
		kvg_close(g);
		t_done();
	}
}

/* Description: a damaged segment header (a flipped byte in its generation) costs only that
 * segment's blocks: the grid opens, the blocks of the other segment load, the lost ones
 * miss, and new stores work. */
static void damaged_segment_header_loses_one_segment(void)
{
	struct kvg_config c;
	t_config(&c);
	enum { N = 6, LEN = 1 << 20 }; /* 3 per 4 MiB segment */
	kvg_key k[N];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 150, N, k) == N);
		CHECK_RC(t_store(g, k, N, LEN, 14), 0);
		kvg_close(g);
	}
	CHECK(flip_byte(c.dir, "seg-00000000.kvg", 16, 0x01) == 0);
	OPEN(g, &c);
	CHECK(t_stats(g).recovered_blocks == 3);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_load(g, &k[i], LEN, 14, NULL), i < 3 ? KVG_ENOTFOUND : 0);
	kvg_key nk[4];
	CHECK(t_chain(g, 151, 4, nk) == 4);
	CHECK_RC(t_store(g, nk, 4, LEN, 15), 0);
	for (int i = 0; i < 4; i++)
		CHECK_RC(t_load(g, &nk[i], LEN, 15, NULL), 0);
	kvg_close(g);
}

/* Opens a grid on the fault backend (over the variant's backend) with plan, stores one
 * 50000-byte block and loads it once; returns that load's result, *st the stats after. */
static int fault_load(const char *plan, kvg_grid **out, kvg_key *k, struct kvg_stats *st)
{
	struct kvg_config c;
	t_config(&c);
	c.io_backend = KVG_IO_FAULT;
	snprintf(c.fault_plan, sizeof(c.fault_plan), "inner=%s; %s",
		 t_v->io_backend == KVG_IO_URING ? "uring" : "psync", plan);
	kvg_grid *g = open_or_null(&c);
	if (!g)
		return 1;
	kvg_raw_key(g, "fault", 5, k);
	int rc = t_store(g, k, 1, 50000, 24);
	if (rc == 0)
		rc = t_load(g, k, 50000, 24, NULL);
	*st = t_stats(g);
	*out = g;
	return rc;
}

/* Description: through the fault backend: a read that fails with EIO fails that load with
 * -EIO (never bytes), but the block stays and the next load verifies, counting one I/O
 * error and no checksum failure. */
static void read_error_keeps_the_block(void)
{
	const struct io_ops *fault_ops = &io_fault_ops; /* link the weakly named backend in */
	CHECK(fault_ops->name != NULL);
	kvg_grid *g = NULL;
	kvg_key k;
	struct kvg_stats st;
	int rc = fault_load("fail=read:1:EIO", &g, &k, &st);
	CHECK(g);
	CHECK_RC(rc, -EIO);
	CHECK(st.tier[KVG_TIER_NVME].io_errors == 1);
	CHECK(st.tier[KVG_TIER_NVME].checksum_failures == 0);
	CHECK_RC(t_load(g, &k, 50000, 24, NULL), 0);
	kvg_close(g);
}

/* Description: through the fault backend, one bit flipped in what a load's read returns
 * (6 seeds, so the bit lands in different places): the load either verifies (the bit fell
 * in padding no byte of the block comes from) or is a KVG_ECORRUPT miss, counted once, after
 * which the block is forgotten; never wrong bytes; at least one seed hits the block. */
static void read_bit_flip_is_a_miss(void)
{
	const struct io_ops *fault_ops = &io_fault_ops;
	CHECK(fault_ops->name != NULL);
	int corrupt = 0;
	for (int seed = 1; seed <= 6; seed++) {
		char plan[64];
		snprintf(plan, sizeof(plan), "seed=%d; flip=read:1", seed);
		kvg_grid *g = NULL;
		kvg_key k;
		struct kvg_stats st;
		int rc = fault_load(plan, &g, &k, &st);
		CHECK(g);
		CHECK(rc == 0 || rc == KVG_ECORRUPT);
		CHECK(st.tier[KVG_TIER_NVME].checksum_failures == (rc == KVG_ECORRUPT));
		CHECK_RC(t_load(g, &k, 50000, 24, NULL), rc == 0 ? 0 : KVG_ENOTFOUND);
		corrupt += rc == KVG_ECORRUPT;
		kvg_close(g);
		t_done();
	}
	CHECK(corrupt > 0);
}

/* Description: a garbled checkpoint is not trusted: the grid scans the segments instead and
 * finds every block. */
static void garbled_checkpoint_falls_back_to_scan(void)
{
	struct kvg_config c;
	t_config(&c);
	enum { N = 6, LEN = 9000 };
	kvg_key k[N], first;
	CHECK(damage_setup(&c, k, N, LEN, &first) == 0);
	CHECK(file_exists(c.dir, "index.ckpt"));
	CHECK(flip_byte(c.dir, "index.ckpt", 70, 0xff) == 0);
	OPEN(g, &c);
	CHECK(t_stats(g).recovered_blocks == N);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_load(g, &k[i], LEN, 12, NULL), 0);
	kvg_close(g);
}

/* Description: a directory already open by a grid is refused to a second grid (LOCK) with a
 * reason, and opens again once the first grid has closed. */
static void directory_in_use_is_refused(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	kvg_grid *g2 = NULL;
	char err[512] = "";
	int rc = kvg_open(&c, &g2, err, sizeof(err));
	CHECK(rc != 0);
	CHECK(g2 == NULL);
	CHECK(strstr(err, "LOCK") || strstr(err, "in use"));
	kvg_close(g);
	OPEN(g3, &c);
	kvg_close(g3);
}

/* Description: on a filesystem without O_DIRECT (tmpfs: buffered I/O) a load reads 512
 * bytes of the header block, the smallest read unit, where O_DIRECT on this machine's disk
 * reads all 4096: blocks of several sizes, and layered blocks layer by layer, load and
 * verify, before and after a reopen (checkpoint) and a reopen by scanning. */
static void buffered_dir_reads_header_tails(void)
{
	struct kvg_config c;
	t_config(&c);
	if (access("/dev/shm", W_OK)) {
		printf("skip buffered_dir_reads_header_tails: no /dev/shm\n");
		return;
	}
	snprintf(c.dir, sizeof(c.dir), "/dev/shm/kvgrid-test-%d-%s", (int)getpid(), t_variant);
	enum { N = 20 };
	static const size_t lens[] = {1, 4096, 5000, 65536, 70001};
	size_t bb = kvg_config_block_bytes(&c);
	kvg_key k[N], lk[4];
	{
		OPEN(g, &c);
		CHECK(t_chain(g, 140, N, k) == N && t_chain(g, 141, 4, lk) == 4);
		for (int i = 0; i < N; i++)
			CHECK_RC(t_store(g, &k[i], 1, lens[i % 5], 8), 0);
		CHECK_RC(t_store(g, lk, 4, bb, 9), 0);
		kvg_close(g);
	}
	for (int scan = 0; scan < 2; scan++) {
		if (scan)
			CHECK(sh("rm -f '%s/index.ckpt'%s", c.dir, "") == 0);
		OPEN(g, &c);
		CHECK(t_stats(g).recovered_blocks == N + 4);
		for (int i = 0; i < N; i++)
			CHECK_RC(t_load(g, &k[i], lens[i % 5], 8, NULL), 0);
		struct kvg_io ios[4];
		for (int i = 0; i < 4; i++) {
			ios[i] = (struct kvg_io){.key = lk[i], .len = bb, .buf = t_alloc(bb, 0)};
			CHECK(ios[i].buf);
		}
		struct kvg_req_opts o = {.flags = KVG_LOAD_LAYERS};
		kvg_req *r;
		CHECK_RC(kvg_load(g, ios, 4, &o, &r), 0);
		CHECK_RC(kvg_req_wait(r, 20000), 0);
		kvg_req_free(r);
		for (int i = 0; i < 4; i++) {
			CHECK(t_verify(ios[i].buf, bb, &lk[i], 9));
			t_free(ios[i].buf, 0);
		}
		kvg_close(g);
	}
	CHECK(sh("rm -rf '%s'%s", c.dir, "") == 0);
}

/* Rewrites the format of seg-00000000.kvg's header in dir (sealed again, as a kvgrid of that
 * format would have written it). */
static int seg0_set_format(const char *dir, uint32_t format)
{
	char path[8400];
	snprintf(path, sizeof(path), "%s/seg-00000000.kvg", dir);
	int fd = open(path, O_RDWR);
	struct seg_hdr h;
	int ok = fd >= 0 && pread(fd, &h, sizeof(h), 0) == sizeof(h);
	h.format = format;
	seg_hdr_seal(&h);
	ok = ok && pwrite(fd, &h, sizeof(h), 0) == sizeof(h) && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* Description: a directory whose segments are of another record format (an older kvgrid's
 * header-first records) is refused at open with one line naming the directory and both
 * formats, and nothing in it is changed: put back in this format, every block loads. */
static void old_record_format_is_refused(void)
{
	struct kvg_config c;
	t_config(&c);
	enum { N = 4, LEN = 20000 };
	kvg_key k[N], first;
	CHECK(damage_setup(&c, k, N, LEN, &first) == 0);
	CHECK(seg0_set_format(c.dir, 1) == 0);
	kvg_grid *g = NULL;
	char err[512] = "", want[600];
	CHECK_RC(kvg_open(&c, &g, err, sizeof(err)), KVG_ECONFIG);
	CHECK(g == NULL);
	snprintf(want, sizeof(want),
		 "dir %s: segments are in record format 1, this kvgrid reads "
		 "format %u",
		 c.dir, KVG_RECORD_FORMAT);
	CHECK(strstr(err, want) != NULL && !strchr(err, '\n'));
	CHECK(file_exists(c.dir, "index.ckpt")); /* not even the checkpoint was dropped */
	CHECK(seg0_set_format(c.dir, KVG_RECORD_FORMAT) == 0);
	OPEN(g2, &c);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_load(g2, &k[i], LEN, 12, NULL), 0);
	kvg_close(g2);
	t_done();
}

/* The segment files in dir. */
static int seg_files(const char *dir)
{
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^seg-.*\\.kvg$'", dir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

/* Description: segment files are made when the tier first writes to them, not at open: an
 * opened grid has none, one store makes one, and a reopen finds the block and makes no
 * more (the other 15 segments of the 64 MiB tier cost no disk). */
static void segments_are_made_when_first_written(void)
{
	struct kvg_config c;
	t_config(&c);
	OPEN(g, &c);
	CHECK(seg_files(c.dir) == 0);
	kvg_key k[1];
	CHECK(t_chain(g, 301, 1, k) == 1);
	CHECK_RC(t_store(g, k, 1, 100000, 7), 0);
	CHECK(seg_files(c.dir) == 1);
	kvg_close(g);
	OPEN(g2, &c);
	CHECK_RC(t_load(g2, &k[0], 100000, 7, NULL), 0);
	CHECK(seg_files(c.dir) == 1);
	kvg_close(g2);
}

/* Description: a segment file removed while the grid was closed costs only its blocks: the
 * checkpoint no longer agrees, the scan takes the missing segment as free, blocks elsewhere
 * load, its blocks are misses, and the tier writes there again. */
static void missing_segment_file_is_free(void)
{
	struct kvg_config c;
	t_config(&c);
	c.nvme_bytes = 8 << 20;
	c.segment_bytes = 1 << 20;
	OPEN(g, &c);
	enum { N = 20, LEN = 100000 }; /* 9 per segment: segments 0, 1 and 2 */
	kvg_key k[N];
	CHECK(t_chain(g, 302, N, k) == N);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_store(g, &k[i], 1, LEN, 5), 0);
	kvg_close(g);
	CHECK(seg_files(c.dir) == 3);
	CHECK(sh("rm -f '%s/%s'", c.dir, "seg-00000001.kvg") == 0);
	OPEN(g2, &c);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_load(g2, &k[i], LEN, 5, NULL), i >= 9 && i < 18 ? KVG_ENOTFOUND : 0);
	kvg_key more[N];
	CHECK(t_chain(g2, 303, N, more) == N);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_store(g2, &more[i], 1, LEN, 6), 0);
	for (int i = 0; i < N; i++)
		CHECK_RC(t_load(g2, &more[i], LEN, 6, NULL), 0);
	CHECK(t_stats(g2).tier[KVG_TIER_NVME].checksum_failures == 0);
	kvg_close(g2);
}

/* Description: nvme_bytes 0 (the default) is an automatic capacity: whole segments, at most
 * 16 GiB and no more than the filesystem's free space; stats and kvg_config_of report it. */
static void automatic_capacity_fits_the_filesystem(void)
{
	struct kvg_config c;
	t_config(&c);
	c.nvme_bytes = 0;
	struct statvfs v;
	CHECK(statvfs(t_dir, &v) == 0);
	uint64_t free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
	OPEN(g, &c);
	uint64_t cap = t_stats(g).tier[KVG_TIER_NVME].capacity_bytes;
	CHECK(cap >= 2 * c.segment_bytes);
	CHECK(cap % c.segment_bytes == 0);
	CHECK(cap <= 16ull << 30);
	CHECK(cap <= free_bytes);
	CHECK(kvg_config_of(g)->nvme_bytes == cap);
	CHECK(seg_files(c.dir) == 0);
	kvg_close(g);
}

/* Description: a set nvme_bytes larger than the filesystem's free space is refused at open
 * with one line naming nvme_bytes and the free space, and leaves nothing behind: no
 * directory where there was none, no new file where there was one. */
static void nvme_bytes_over_free_space_is_refused(void)
{
	struct kvg_config c;
	t_config(&c);
	char base[4096];
	snprintf(base, sizeof(base), "%s", c.dir);
	snprintf(c.dir, sizeof(c.dir), "%s/new/sub", base);
	c.nvme_bytes = 1ull << 50; /* a PiB */
	kvg_grid *g = NULL;
	char err[512] = "";
	CHECK_RC(kvg_open(&c, &g, err, sizeof(err)), KVG_ECONFIG);
	CHECK(g == NULL);
	CHECK(strstr(err, "nvme_bytes 1024 TiB exceeds the ") && strstr(err, " free on its "));
	CHECK(strstr(err, "at most") && !strchr(err, '\n'));
	struct stat st;
	CHECK(stat(c.dir, &st) < 0 && errno == ENOENT);
	snprintf(c.dir, sizeof(c.dir), "%s", base);
	c.nvme_bytes = 8 << 20;
	OPEN(g2, &c);
	kvg_close(g2);
	c.nvme_bytes = 1ull << 50;
	CHECK_RC(kvg_open(&c, &g, err, sizeof(err)), KVG_ECONFIG);
	CHECK(seg_files(c.dir) == 0);
}

int main(void)
{
	SWEEP_NVME(overflow_demotes_to_nvme);
	SWEEP_NVME(every_policy_demotes_overflow);
	SWEEP_NVME(no_demotion_drops_victims);
	SWEEP_NVME(full_tier_evicts_whole_segments);
	SWEEP_NVME(pinned_blocks_stay_on_nvme);
	SWEEP_NVME(largest_record_fits_a_segment);
	SWEEP_NVME(nvme_hit_is_promoted);
	SWEEP_NVME(delete_removes_both_copies);
	SWEEP_NVME(delete_survives_a_crash);
	SWEEP_NVME(restart_recovers_blocks);
	SWEEP_NVME(durable_store_survives_a_crash);
	SWEEP_NVME(reopen_under_another_namespace);
	SWEEP_NVME(restart_keeps_dram_blocks);
	SWEEP_NVME(restart_after_segments_were_reused);
	SWEEP_NVME(restart_with_xxh3_keys);
	SWEEP_NVME(block_larger_than_dram_goes_to_nvme);
	SWEEP_NVME(reopen_with_changed_geometry);
	SWEEP_NVME(close_flushes_many_dram_blocks);
	SWEEP_NVME(restart_keeps_large_dram_block);
	SWEEP_NVME(crash_copy_recovers_by_scan);
	SWEEP_NVME(stores_after_a_crash_keep_the_last_record);
	SWEEP_NVME(flipped_payload_byte_is_a_miss);
	SWEEP_NVME(flipped_header_byte_is_not_recovered);
	SWEEP_NVME(damaged_segment_header_loses_one_segment);
	SWEEP_NVME(garbled_checkpoint_falls_back_to_scan);
	SWEEP_NVME(read_error_keeps_the_block);
	SWEEP_NVME(read_bit_flip_is_a_miss);
	SWEEP_NVME(directory_in_use_is_refused);
	SWEEP_NVME(old_record_format_is_refused);
	SWEEP_NVME(buffered_dir_reads_header_tails);
	SWEEP_NVME(segments_are_made_when_first_written);
	SWEEP_NVME(missing_segment_file_is_free);
	SWEEP_NVME(automatic_capacity_fits_the_filesystem);
	SWEEP_NVME(nvme_bytes_over_free_space_is_refused);
	T_EXIT();
}
