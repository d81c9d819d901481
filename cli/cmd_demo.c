/*
 * cmd_demo.c - `kvgrid demo`: the grid's main job on an embedded default.
 *
 * Several chat sessions share a system prompt; each turn appends to its context and the
 * KV of every new full block (Llama-3.1-8B layout: 32 layers, 8 KV heads, head dim 128,
 * bf16, 256 tokens = 32 MiB a block) is stored.  DRAM is smaller than the working set, so
 * blocks overflow to NVMe.  The grid is closed, reopened (recovery timed), and every block
 * is loaded back and verified byte for byte: from NVMe first, then from DRAM after
 * promotion.  Payloads are derived from their keys, so any wrong byte is detected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "gridopt.h"

#define SESSIONS      4
#define TURNS	      4
#define SYSTEM_BLOCKS 4
#define TURN_BLOCKS   2
#define BATCH	      4

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Payload of a key: 64-bit words of a xorshift stream seeded by the key. */
static void fill(uint64_t *w, size_t words, const kvg_key *k)
{
	uint64_t x;
	memcpy(&x, k->bytes, 8);
	x |= 1;
	for (size_t i = 0; i < words; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

static size_t verify(const uint64_t *w, size_t words, const kvg_key *k)
{
	uint64_t x;
	memcpy(&x, k->bytes, 8);
	x |= 1;
	size_t bad = 0;
	for (size_t i = 0; i < words; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		bad += w[i] != x;
	}
	return bad;
}

static void tokens_for(uint32_t *t, int session, int turn_block)
{
	/* system prompt shared by all sessions, then each session's own turns */
	for (int i = 0; i < SYSTEM_BLOCKS * 256; i++)
		t[i] = (uint32_t)(1000 + i * 7) % 128256;
	int own = turn_block * 256;
	for (int i = 0; i < own; i++)
		t[SYSTEM_BLOCKS * 256 + i] = (uint32_t)(session * 7919 + i * 31 + 17) % 128256;
}

static void progress(const char *what, int done, int total)
{
	if (!isatty(2))
		return;
	int w = 30, f = total ? done * w / total : w;
	fprintf(stderr, "\r  %-22s [%.*s%*s] %d/%d", what, f, "##############################",
		w - f, "", done, total);
	if (done == total)
		fputc('\n', stderr);
}

int cmd_demo(int argc, char **argv)
{
	struct kvg_config c;
	kvg_config_init(&c);
	c.dram_bytes = 384ull << 20;
	c.nvme_bytes = 4ull << 30;
	c.segment_bytes = 256ull << 20;
	c.chunk_bytes = 1 << 20;
	if (gridopt_parse("demo", &argc, argv, &c))
		return 2;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			printf(
			    "usage: kvgrid demo [--dir DIR] [--dram BYTES]\n"
			    "  stores a multi-session conversation's KV (Llama-3.1-8B layout), "
			    "overflows\n"
			    "  DRAM into NVMe, reopens, loads every block back and verifies it.\n");
			return 0;
		}
		return cli_usage("demo", "unknown option '%s' (--help)", argv[i]);
	}
	char tmp[4096] = "";
	if (!c.dir[0]) {
		snprintf(tmp, sizeof(tmp), "/var/tmp/kvgrid-demo-XXXXXX");
		if (!mkdtemp(tmp))
			return cli_fail("demo", "cannot create a directory in /var/tmp");
		snprintf(c.dir, sizeof(c.dir), "%s", tmp);
	}
	snprintf(c.model_id, sizeof(c.model_id), "meta-llama/Llama-3.1-8B");
	c.layers = 32;
	c.kv_heads = 8;
	c.head_dim = 128;
	c.dtype = KVG_DTYPE_BF16;
	c.block_tokens = 256;
	size_t bb = kvg_config_block_bytes(&c);
	printf("kvgrid demo: %d sessions x %d turns sharing a %d-token system prompt; "
	       "Llama-3.1-8B KV, %zu MiB a block\n  DRAM %llu MiB, NVMe %s\n",
	       SESSIONS, TURNS, SYSTEM_BLOCKS * 256, bb >> 20,
	       (unsigned long long)(c.dram_bytes >> 20), c.dir);
	int rc = 1;
	kvg_grid *g = gridopt_open("demo", &c);
	if (!g)
		goto out_rm;
	int maxb = SYSTEM_BLOCKS + TURNS * TURN_BLOCKS;
	uint32_t *tok = malloc(sizeof(uint32_t) * maxb * 256);
	kvg_key *all = malloc(sizeof(kvg_key) * SESSIONS * maxb), keys[64];
	uint64_t *buf;
	if (posix_memalign((void **)&buf, 4096, bb * BATCH))
		goto out_close;
	size_t nall = 0, stored = 0, reused = 0;
	double t0 = now_s();
	for (int turn = 0; turn < TURNS; turn++) {
		for (int s = 0; s < SESSIONS; s++) {
			int nb = SYSTEM_BLOCKS + (turn + 1) * TURN_BLOCKS;
			tokens_for(tok, s, (turn + 1) * TURN_BLOCKS);
			size_t n = kvg_block_keys(g, tok, (size_t)nb * 256, NULL, keys, 64), hit;
			kvg_lookup_keys(g, keys, n, &hit, NULL);
			reused += hit;
			for (size_t b = hit; b < n; b++) {
				fill(buf, bb / 8, &keys[b]);
				struct kvg_io io = {
				    .key = keys[b], .buf = buf, .len = bb, .depth = (uint32_t)b};
				if (kvg_store_sync(g, &io, 1, 0)) {
					fprintf(stderr, "kvgrid demo: store failed: %s\n",
						kvg_strerror(io.status));
					goto out_free;
				}
				all[nall++] = keys[b];
				stored++;
			}
			progress("storing turns", turn * SESSIONS + s + 1, TURNS * SESSIONS);
		}
	}
	double store_s = now_s() - t0;
	struct kvg_stats st;
	kvg_stats_get(g, &st);
	uint64_t db = st.tier[0].blocks, nbk = st.tier[1].blocks;
	printf("  stored %zu blocks (%.2f GiB) in %.2f s; %zu block lookups served from the grid\n",
	       stored, stored * (double)bb / (1 << 30), store_s, reused);
	printf("  before close: DRAM %llu blocks, NVMe %llu blocks (%llu demoted)\n",
	       (unsigned long long)db, (unsigned long long)nbk,
	       (unsigned long long)st.tier[0].demotions);
	kvg_close(g);
	g = gridopt_open("demo", &c);
	if (!g)
		goto out_free;
	kvg_stats_get(g, &st);
	double rec_ms = st.recovery_us / 1e3;
	uint64_t rec_blocks = st.recovered_blocks;
	/* every block back, 4 at a time: from NVMe (promoted into DRAM as they arrive), then
	 * the most recent ones again, now from DRAM */
	size_t bad = 0, miss = 0, nn = 0, nd = 0;
	double tn = 0, td = 0;
	size_t again = st.tier[0].capacity_bytes / bb > 2 ? st.tier[0].capacity_bytes / bb - 2 : 1;
	for (int pass = 0; pass < 2; pass++) {
		size_t from = pass ? (nall > again ? nall - again : 0) : 0;
		for (size_t i = from; i < nall; i += BATCH) {
			struct kvg_io io[BATCH];
			size_t k = nall - i < BATCH ? nall - i : BATCH;
			for (size_t j = 0; j < k; j++)
				io[j] = (struct kvg_io){
				    .key = all[i + j], .buf = buf + j * (bb / 8), .len = bb};
			double a = now_s();
			kvg_load_sync(g, io, k, 0);
			double el = now_s() - a;
			int in_dram = 1;
			for (size_t j = 0; j < k; j++) {
				if (io[j].status) {
					miss++;
					continue;
				}
				in_dram &= io[j].tier == KVG_TIER_DRAM;
				bad += verify(buf + j * (bb / 8), bb / 8, &all[i + j]);
			}
			if (in_dram) {
				td += el;
				nd += k;
			} else {
				tn += el;
				nn += k;
			}
			progress(pass ? "loading again (DRAM)" : "loading back (NVMe)",
				 (int)(i + k - from), (int)(nall - from));
		}
	}
	kvg_stats_get(g, &st);
	printf("\n  %-6s %8s %10s %14s\n", "tier", "blocks", "GiB", "load GB/s");
	printf("  %-6s %8llu %10.2f %14.2f\n", "DRAM", (unsigned long long)st.tier[0].blocks,
	       st.tier[0].bytes / (double)(1 << 30), td > 0 ? nd * (double)bb / td / 1e9 : 0);
	printf("  %-6s %8llu %10.2f %14.2f\n", "NVMe", (unsigned long long)st.tier[1].blocks,
	       st.tier[1].bytes / (double)(1 << 30), tn > 0 ? nn * (double)bb / tn / 1e9 : 0);
	printf("\n  recovery: %llu blocks in %.1f ms (%s); loaded %zu blocks from NVMe, %zu from "
	       "DRAM\n",
	       (unsigned long long)rec_blocks, rec_ms, st.tier[1].backend, nn, nd);
	printf("  verified %zu loads: %zu wrong 64-bit words, %zu misses\n", nn + nd, bad, miss);
	rc = bad || miss ? 1 : 0;
	printf("  %s\n", rc ? "FAILED" : "OK: every byte came back as stored");
out_free:
	free(buf);
out_close:
	kvg_close(g);
	free(tok);
	free(all);
out_rm:
	if (tmp[0]) {
		char cmd[4200];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd)) {
		}
	}
	return rc;
}
