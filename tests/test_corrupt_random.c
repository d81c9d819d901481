/*
 * test_corrupt_random.c - a corruption campaign against a real grid directory: round after
 * round, random bytes of one live record (its checked header bytes or its payload) are
 * overwritten on disk while the grid is closed; the grid is reopened (from its checkpoint, or
 * by a scan when the checkpoint is removed as a crash would) and every block is loaded.
 *
 * Specification: the damaged block is never served (a miss, counted), every other block is
 * still served byte for byte, opening never fails, and fsck finds the damage.  Prints the
 * bytes planted and the damaged blocks detected (the figures of RELIABILITY.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsck.h"
#include "kvgrid.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define BLOCKS	64
#define ROUNDS	40
#define LEN_MAX (48u * 1024)

static char dir[1000];
static kvg_key keys[BLOCKS];
static int alive[BLOCKS];
static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

static size_t len_of(uint32_t i)
{
	return 20000 + (size_t)i * 397 % 28000;
}

static void fill(uint32_t i, uint8_t *p, size_t len)
{
	for (size_t k = 0; k < len; k++)
		p[k] = (uint8_t)((k * 131 + i * 7919) >> 3);
}

static struct kvg_config config(void)
{
	struct kvg_config c;
	kvg_config_init(&c);
	snprintf(c.model_id, sizeof(c.model_id), "test-corrupt-random");
	c.dram_bytes = 0; /* every load goes to disk */
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	c.nvme_bytes = 16u << 20;
	c.segment_bytes = 1u << 20;
	c.log_level = 0;
	return c;
}

static kvg_grid *grid_open(void)
{
	struct kvg_config c = config();
	kvg_grid *g;
	char err[512];
	int rc = kvg_open(&c, &g, err, sizeof(err));
	if (rc)
		fprintf(stderr, "kvg_open: %s\n", err);
	CHECK(rc == 0);
	return g;
}

/* Loads every block; returns how many were present.  Any wrong byte fails the test. */
static int load_all(kvg_grid *g, int *present)
{
	static uint8_t buf[LEN_MAX], want[LEN_MAX];
	int n = 0;
	for (uint32_t i = 0; i < BLOCKS; i++) {
		struct kvg_io io = {.key = keys[i], .buf = buf, .len = LEN_MAX};
		kvg_load_sync(g, &io, 1, 0);
		present[i] = io.status == 0;
		if (!present[i])
			continue;
		fill(i, want, len_of(i));
		CHECK(io.len == len_of(i));
		CHECK(memcmp(buf, want, io.len) == 0); /* never a wrong byte */
		n++;
	}
	return n;
}

/* ---- finding a live record on disk ---------------------------------------------------- */

struct found {
	char seg[1100];
	uint64_t off, len;
	int id;
};

struct pick_ctx {
	const char *seg;
	struct found *out;
	int seen;
};

static void on_good(void *ctx, const struct rec_hdr *h, uint64_t off)
{
	struct pick_ctx *p = ctx;
	for (int i = 0; i < BLOCKS; i++) {
		if (!alive[i] || memcmp(h->key, keys[i].bytes, KVG_KEY_BYTES) ||
		    (h->flags & REC_F_TOMBSTONE))
			continue;
		/* reservoir sampling: every live record equally likely */
		if (rnd() % (uint64_t)++p->seen == 0) {
			snprintf(p->out->seg, sizeof(p->out->seg), "%s", p->seg);
			p->out->off = off;
			p->out->len = h->payload_len;
			p->out->id = i;
		}
	}
}

struct file_ctx {
	int fd;
};

static ssize_t file_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	return pread(((struct file_ctx *)ctx)->fd, buf, len, (off_t)off);
}

/* Picks one record of a live block, uniformly. */
static int pick_record(struct found *f)
{
	static uint8_t buf[1 << 20] __attribute__((aligned(4096)));
	struct pick_ctx p = {.out = f};
	struct fsck_visit v = {.good = on_good, .ctx = &p};
	f->id = -1;
	for (int s = 0; s < 16; s++) {
		char path[1100];
		struct stat st;
		struct fsck_report rep = {0};
		struct seg_hdr sh;
		const char *why;
		snprintf(path, sizeof(path), "%s/seg-%08d.kvg", dir, s);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		CHECK(fstat(fd, &st) == 0);
		struct file_ctx fc = {fd};
		p.seg = path;
		fsck_segment(file_read, &fc, (uint64_t)st.st_size, NULL, UINT32_MAX, &sh, &v, &rep,
			     buf, sizeof(buf), &why);
		close(fd);
	}
	return f->id;
}

/* Overwrites 1..16 random bytes of the record's checked area; returns how many changed. */
static int plant(const struct found *f)
{
	int fd = open(f->seg, O_RDWR);
	CHECK(fd >= 0);
	int n = 1 + (int)(rnd() % 16), changed = 0;
	for (int k = 0; k < n; k++) {
		uint64_t at;
		if (rnd() % 4 == 0) /* the header: the 120 checksummed bytes and the checksum */
			at = f->off + REC_HDR_OFF + rnd() % 128;
		else
			at = f->off + REC_HDR_BYTES + rnd() % f->len;
		uint8_t b, nb;
		CHECK(pread(fd, &b, 1, (off_t)at) == 1);
		nb = (uint8_t)(b ^ (1 + rnd() % 255));
		CHECK(pwrite(fd, &nb, 1, (off_t)at) == 1);
		changed++;
	}
	close(fd);
	return changed;
}

int main(void)
{
	const char *tmp = getenv("KVG_TEST_TMP");
	char cmd[1200], ckpt[1100];
	static uint8_t buf[LEN_MAX];
	int present[BLOCKS];
	uint64_t planted = 0, detected = 0, served = 0, scans = 0;

	snprintf(dir, sizeof(dir), "%s/test_corrupt_random.%d", tmp ? tmp : "build/tmp", getpid());
	snprintf(ckpt, sizeof(ckpt), "%s/index.ckpt", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);

	kvg_grid *g = grid_open();
	for (uint32_t i = 0; i < BLOCKS; i++) {
		char raw[32];
		int n = snprintf(raw, sizeof(raw), "blk-%u", i);
		kvg_raw_key(g, raw, (size_t)n, &keys[i]);
		struct kvg_io io = {.key = keys[i], .buf = buf, .len = len_of(i)};
		fill(i, buf, io.len);
		CHECK(kvg_store_sync(g, &io, 1, KVG_STORE_NVME) == 0);
		alive[i] = 1;
	}
	kvg_close(g);

	for (int round = 0; round < ROUNDS; round++) {
		struct found f;
		if (pick_record(&f) < 0)
			break;
		planted += (uint64_t)plant(&f);
		if (round % 2) { /* as after a crash: no checkpoint, the segments are scanned */
			unlink(ckpt);
			scans++;
		}
		g = grid_open(); /* one bad record never stops the grid from opening */
		served += (uint64_t)load_all(g, present);
		CHECK(!present[f.id]); /* the damaged block is a miss */
		for (int i = 0; i < BLOCKS; i++)
			CHECK(present[i] == (alive[i] && i != f.id)); /* nothing else is lost */
		alive[f.id] = 0;
		detected++;
		kvg_close(g);
	}
	CHECK(detected == ROUNDS);

	struct fsck_opts o = {0};
	struct fsck_report r;
	char err[256];
	CHECK(fsck_dir(dir, &o, &r, err, sizeof(err)) == 0);
	CHECK(r.corrupt > 0);
	o.repair = 1;
	CHECK(fsck_dir(dir, &o, &r, err, sizeof(err)) == 0 && r.repaired == r.corrupt);
	g = grid_open();
	int left = load_all(g, present);
	CHECK(left == BLOCKS - ROUNDS);
	kvg_close(g);

	printf("corruption: %d rounds, %llu bytes planted in %llu records (%llu reopened by scan), "
	       "%llu damaged blocks detected as misses, %llu good loads verified, 0 wrong bytes\n",
	       ROUNDS, (unsigned long long)planted, (unsigned long long)detected,
	       (unsigned long long)scans, (unsigned long long)detected, (unsigned long long)served);
	CHECK(system(cmd) == 0);
	return 0;
}
