/*
 * fuzz_ckpt.c - libFuzzer target: the NVMe tier's checkpoint loader (index.ckpt, read by
 * kvg_open), through the public API.
 *
 * At start a small NVMe-only grid is written and closed, which leaves a valid checkpoint.
 * Each input is a list of patches -- 3 bytes each: a little-endian u16 offset into the
 * checkpoint and a byte to put there -- applied to that checkpoint, whose trailing XXH3-64 is
 * then recomputed (the loader checks it first, so random bytes alone would never get past it).
 * The grid is reopened from the patched checkpoint and every block is loaded.
 * Invariants: the open succeeds, and every block served is byte for byte the one stored (a
 * checkpoint that lies about locations or lengths may cost misses, never wrong bytes).  Any
 * byte may be patched, the entry count included: the loader checks the counts against the
 * file's size before it allocates anything (layout in src/tier_nvme_ckpt.c).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "kvgrid.h"

#define BLOCKS	24
#define LEN_MAX (24u * 1024)

static char dir[256], ckpt_path[300];
static uint8_t *pristine;
static size_t pristine_len;
static kvg_key keys[BLOCKS];

static size_t len_of(uint32_t i)
{
	return 3000 + (size_t)i * 797 % 20000;
}

static void fill(uint32_t i, uint8_t *p, size_t len)
{
	for (size_t k = 0; k < len; k++)
		p[k] = (uint8_t)(k * 31 + i * 101 + (k >> 9));
}

static struct kvg_config config(void)
{
	struct kvg_config c;
	kvg_config_init(&c);
	snprintf(c.model_id, sizeof(c.model_id), "fuzz-ckpt");
	c.dram_bytes = 0; /* every load reads the disk, where the checkpoint says */
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	c.nvme_bytes = 4u << 20;
	c.segment_bytes = 1u << 20;
	c.io_backend = KVG_IO_PSYNC;
	c.workers = 1;
	c.log_level = 0;
	snprintf(c.log_file, sizeof(c.log_file), "/dev/null");
	return c;
}

static kvg_grid *grid_open(void)
{
	struct kvg_config c = config();
	kvg_grid *g;
	char err[256];
	if (kvg_open(&c, &g, err, sizeof(err))) {
		fprintf(stderr, "fuzz_ckpt: kvg_open: %s\n", err);
		abort(); /* a bad checkpoint must never stop the grid from opening */
	}
	return g;
}

static void grid_remove(void)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "fuzz_ckpt: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static uint8_t buf[LEN_MAX];
	char cmd[600];
	snprintf(dir, sizeof(dir), "build/fuzz/ckpt-grid.%d", getpid());
	snprintf(ckpt_path, sizeof(ckpt_path), "%s/index.ckpt", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p build/fuzz", dir);
	if (system(cmd))
		abort();
	atexit(grid_remove);
	kvg_grid *g = grid_open();
	for (uint32_t i = 0; i < BLOCKS; i++) {
		char raw[16];
		int n = snprintf(raw, sizeof(raw), "c%u", i);
		kvg_raw_key(g, raw, (size_t)n, &keys[i]);
		struct kvg_io io = {.key = keys[i], .buf = buf, .len = len_of(i)};
		fill(i, buf, io.len);
		if (kvg_store_sync(g, &io, 1, 0))
			abort();
	}
	kvg_close(g);
	FILE *f = fopen(ckpt_path, "rb");
	if (!f)
		abort();
	fseek(f, 0, SEEK_END);
	pristine_len = (size_t)ftell(f);
	rewind(f);
	pristine = malloc(pristine_len);
	if (!pristine || fread(pristine, 1, pristine_len, f) != pristine_len || pristine_len < 16)
		abort();
	fclose(f);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ck[1 << 16], buf[LEN_MAX], want[LEN_MAX];
	size_t len = pristine_len;
	if (len > sizeof(ck))
		return 0;
	memcpy(ck, pristine, len);
	for (size_t k = 0; k + 3 <= size; k += 3) {
		size_t off = (size_t)(data[k] | data[k + 1] << 8);
		if (off < len - 8)
			ck[off] = data[k + 2];
	}
	if (size % 3 == 1 && data[size - 1] < len - 8)
		len = data[size - 1] + 8; /* sometimes a truncated checkpoint, still sealed */
	uint64_t c = XXH3_64bits(ck, len - 8);
	memcpy(ck + len - 8, &c, 8);
	int fd = open(ckpt_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, ck, len) != (ssize_t)len)
		abort();
	close(fd);

	kvg_grid *g = grid_open();
	for (uint32_t i = 0; i < BLOCKS; i++) {
		struct kvg_io io = {.key = keys[i], .buf = buf, .len = LEN_MAX};
		kvg_load_sync(g, &io, 1, 0);
		if (io.status != 0)
			continue;
		fill(i, want, len_of(i));
		if (io.len != len_of(i) || memcmp(buf, want, io.len))
			abort(); /* a wrong byte served */
	}
	kvg_close(g);
	return 0;
}
