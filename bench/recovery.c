/*
 * recovery.c - time to reopen an NVMe tier of N blocks: from the checkpoint a clean close
 * writes, and by scanning the segments (as after a crash: the checkpoint removed).
 * Usage: build/bench/recovery DIR [BLOCKS] [BLOCK_BYTES]; prints one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "kvgrid.h"

static int open_grid(struct kvg_config *c, kvg_grid **g)
{
	char err[512];
	if (kvg_open(c, g, err, sizeof(err))) {
		fprintf(stderr, "recovery: %s\n", err);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: recovery DIR [BLOCKS] [BLOCK_BYTES]\n");
		return 2;
	}
	uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
	uint64_t bb = argc > 3 ? strtoull(argv[3], NULL, 10) : 512;
	struct kvg_config c;
	kvg_config_init(&c);
	snprintf(c.dir, sizeof(c.dir), "%s", argv[1]);
	c.dram_bytes = 0;
	c.segment_bytes = 256ull << 20;
	uint64_t span = 4096 + ((bb + 4095) & ~4095ull);
	c.nvme_bytes = ((n * span) / c.segment_bytes + 3) * c.segment_bytes;
	c.max_blocks = n + n / 8 + 64;
	c.queue_depth = 64;
	kvg_grid *g;
	if (open_grid(&c, &g))
		return 1;
	void *buf;
	if (posix_memalign(&buf, 4096, bb))
		return 1;
	memset(buf, 7, bb);
	enum { BATCH = 256 };
	struct kvg_io io[4][BATCH];
	kvg_req *req[4] = {0};
	double t0 = now_s();
	uint64_t done = 0;
	for (uint64_t k = 0; k < n; k += BATCH) {
		int s = (int)((k / BATCH) % 4);
		if (req[s]) {
			kvg_req_wait(req[s], -1);
			kvg_req_free(req[s]);
		}
		uint64_t m = n - k < BATCH ? n - k : BATCH;
		for (uint64_t j = 0; j < m; j++) {
			uint64_t id = k + j;
			io[s][j] = (struct kvg_io){.buf = buf, .len = bb};
			kvg_raw_key(g, &id, sizeof(id), &io[s][j].key);
		}
		while (kvg_store(g, io[s], m, NULL, &req[s]))
			usleep(100);
		done += m;
	}
	for (int s = 0; s < 4; s++)
		if (req[s]) {
			kvg_req_wait(req[s], -1);
			kvg_req_free(req[s]);
		}
	double fill_s = now_s() - t0;
	struct kvg_stats st;
	kvg_stats_get(g, &st);
	uint64_t held = st.tier[KVG_TIER_NVME].blocks;
	t0 = now_s();
	kvg_close(g);
	double close_s = now_s() - t0;
	t0 = now_s();
	if (open_grid(&c, &g))
		return 1;
	double ckpt_open_s = now_s() - t0;
	kvg_stats_get(g, &st);
	uint64_t from_ckpt = st.recovered_blocks;
	kvg_close(g);
	char path[4200];
	snprintf(path, sizeof(path), "%s/index.ckpt", c.dir);
	unlink(path);
	if (system("sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null")) {
	}
	t0 = now_s();
	if (open_grid(&c, &g))
		return 1;
	double scan_open_s = now_s() - t0;
	kvg_stats_get(g, &st);
	uint64_t from_scan = st.recovered_blocks;
	kvg_close(g);
	printf("{\"blocks\": %llu, \"held\": %llu, \"block_bytes\": %llu, \"fill_s\": %.2f, "
	       "\"close_s\": %.2f, \"checkpoint_open_s\": %.2f, \"checkpoint_blocks\": %llu, "
	       "\"scan_open_s\": %.2f, \"scan_blocks\": %llu}\n",
	       (unsigned long long)done, (unsigned long long)held, (unsigned long long)bb, fill_s,
	       close_s, ckpt_open_s, (unsigned long long)from_ckpt, scan_open_s,
	       (unsigned long long)from_scan);
	free(buf);
	return from_ckpt == held && from_scan == held ? 0 : 1;
}
