/*
 * test_fsck.c - fsck over tier directories written by hand with record.c's seal functions:
 * what it counts on a sound directory, and how it detects and repairs each kind of damage
 * (bit flips, wiped headers, zeroed ranges, truncation, a segment of another grid).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "fsck.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define SEG_BYTES (256u * 1024)

static char dir[4096];
static const uint8_t grid_a[16] = "grid-A-grid-A-00";
static const uint8_t grid_b[16] = "grid-B-grid-B-00";

struct seg {
	int fd;
	uint64_t gen;
	uint64_t off; /* where the next record goes */
	const uint8_t *grid;
};

static void sh(const char *cmd)
{
	CHECK(system(cmd) == 0);
}

static void dir_fresh(const char *name, const uint8_t *grid)
{
	const char *tmp = getenv("KVG_TEST_TMP");
	char cmd[8300];
	snprintf(dir, sizeof(dir), "%s/test_fsck.%d.%s", tmp ? tmp : "build/tmp", getpid(), name);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
	sh(cmd);
	char p[4200];
	snprintf(p, sizeof(p), "%s/grid.id", dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, grid, 16) == 16);
	close(fd);
}

static void dir_gone(void)
{
	char cmd[8300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	sh(cmd);
}

static char *seg_path(uint32_t id)
{
	static char p[4200];
	snprintf(p, sizeof(p), "%s/seg-%08u.kvg", dir, id);
	return p;
}

static struct seg seg_new(uint32_t id, uint64_t gen, const uint8_t *grid)
{
	struct seg s = {.gen = gen, .off = SEG_HDR_BYTES, .grid = grid};
	uint8_t blk[SEG_HDR_BYTES] = {0};
	struct seg_hdr h = {.magic = SEG_MAGIC,
			    .format = KVG_RECORD_FORMAT,
			    .seg_id = id,
			    .generation = gen,
			    .seg_bytes = SEG_BYTES};
	memcpy(h.grid_id, grid, 16);
	seg_hdr_seal(&h);
	memcpy(blk, &h, sizeof(h));
	s.fd = open(seg_path(id), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(s.fd >= 0);
	CHECK(ftruncate(s.fd, SEG_BYTES) == 0);
	CHECK(pwrite(s.fd, blk, sizeof(blk), 0) == sizeof(blk));
	return s;
}

/* The payload of key number k: derived from k, so any byte can be checked. */
static void payload_of(uint32_t k, uint8_t *p, size_t len)
{
	uint64_t x = k * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* Appends a record of key number k; returns its offset.  parts > 1 checksums it by part. */
static uint64_t rec_put(struct seg *s, uint32_t k, uint64_t seq, size_t len, int tomb,
			uint32_t parts)
{
	uint8_t *blk = calloc(1, rec_span(len));
	struct rec_hdr h = {.magic = REC_MAGIC,
			    .format = KVG_RECORD_FORMAT,
			    .flags = tomb ? REC_F_TOMBSTONE : 0,
			    .generation = s->gen,
			    .seq = seq,
			    .payload_len = len,
			    .parts = parts};
	memcpy(h.key, &k, sizeof(k));
	memcpy(h.grid_id, s->grid, 16);
	payload_of(k, blk + REC_HDR_BYTES, len);
	if (parts > 1) {
		for (uint32_t i = 0; i < parts; i++) {
			uint64_t c =
			    XXH3_64bits(blk + REC_HDR_BYTES + i * (len / parts), len / parts);
			memcpy(blk + REC_HDR_OFF - 8 * parts + 8 * i, &c, 8);
		}
		h.payload_csum = XXH3_64bits(blk + REC_HDR_OFF - 8 * parts, 8 * parts);
	} else {
		h.payload_csum = rec_payload_csum(blk + REC_HDR_BYTES, len);
	}
	rec_hdr_seal(&h);
	memcpy(blk + REC_HDR_OFF, &h, sizeof(h));
	uint64_t off = s->off;
	CHECK(pwrite(s->fd, blk, rec_span(len), (off_t)off) == (ssize_t)rec_span(len));
	s->off += rec_span(len);
	free(blk);
	return off;
}

static void poke(uint32_t id, uint64_t off, const void *bytes, size_t len)
{
	int fd = open(seg_path(id), O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, bytes, len, (off_t)off) == (ssize_t)len);
	close(fd);
}

static int lines;
static void count_line(void *ctx, const char *line)
{
	lines++;
	if (getenv("VERBOSE"))
		fprintf(stderr, "  fsck: %s\n", line);
}

static struct fsck_report run(int repair)
{
	struct fsck_opts o = {.repair = repair, .say = count_line};
	struct fsck_report r;
	char err[256];
	int rc = fsck_dir(dir, &o, &r, err, sizeof(err));
	if (rc)
		fprintf(stderr, "fsck_dir: %s\n", err);
	CHECK(rc == 0);
	CHECK(r.checked == r.good + r.corrupt);
	return r;
}

/* Two segments: keys 0..9 in seg 0, keys 10..14 and a newer copy of key 3 and a tombstone of
 * key 4 in seg 1.  Returns the offsets of seg 0's records in offs. */
static void layout_standard(uint64_t offs[10])
{
	struct seg s0 = seg_new(0, 1, grid_a), s1 = seg_new(1, 1, grid_a);
	uint64_t seq = 1;
	for (uint32_t k = 0; k < 10; k++)
		offs[k] = rec_put(&s0, k, seq++, 5000 + k * 1000, 0, 1);
	for (uint32_t k = 10; k < 15; k++)
		rec_put(&s1, k, seq++, 3000, 0, 1);
	rec_put(&s1, 3, seq++, 6000 + 3 * 1000, 0, 1);
	rec_put(&s1, 4, seq++, 0, 1, 1);
	close(s0.fd);
	close(s1.fd);
}

/* Description: a sound directory has no corruption; newest seq wins per key, a superseded
 * record is orphaned and a tombstone removes its key from the live blocks. */
static void test_sound(void)
{
	uint64_t offs[10];
	dir_fresh("sound", grid_a);
	layout_standard(offs);
	struct fsck_report r = run(0);
	CHECK(r.segments == 2 && r.segments_bad == 0);
	CHECK(r.good == 17 && r.corrupt == 0);
	CHECK(r.blocks == 14);	/* 15 keys, key 4 deleted, key 3 counted once */
	CHECK(r.orphaned == 2); /* the old key 3 and the old key 4 */
	CHECK(r.tombstones == 1);
	CHECK(r.repaired == 0 && r.quarantined == 0);
	dir_gone();
}

/* Description: one flipped payload bit is a corrupt record (its block no longer counts);
 * --repair rewrites the segment without it and a second pass finds nothing wrong. */
static void test_bit_flip(void)
{
	uint64_t offs[10];
	dir_fresh("flip", grid_a);
	layout_standard(offs);
	uint8_t b;
	int fd = open(seg_path(0), O_RDWR);
	CHECK(pread(fd, &b, 1, (off_t)(offs[6] + REC_HDR_BYTES + 777)) == 1);
	b ^= 0x10;
	CHECK(pwrite(fd, &b, 1, (off_t)(offs[6] + REC_HDR_BYTES + 777)) == 1);
	close(fd);

	struct fsck_report r = run(0);
	CHECK(r.corrupt == 1 && r.good == 16 && r.blocks == 13);
	CHECK(r.repaired == 0);
	r = run(1);
	CHECK(r.corrupt == 1 && r.repaired == 1 && r.rewritten == 1);
	r = run(0);
	CHECK(r.corrupt == 0 && r.good == 16 && r.blocks == 13);
	dir_gone();
}

/* Description: a wiped record header in the middle of a segment is one damaged region; the
 * records after it are still found (resync at the next 4096-byte boundary). */
static void test_wiped_header(void)
{
	uint64_t offs[10];
	uint8_t junk[64];
	dir_fresh("wiped", grid_a);
	layout_standard(offs);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 1);
	poke(0, offs[2] + REC_HDR_OFF + 8, junk, sizeof(junk));
	struct fsck_report r = run(0);
	CHECK(r.corrupt == 1 && r.good == 16 && r.blocks == 13);
	CHECK(r.bytes_corrupt == offs[3] - offs[2]);
	run(1);
	r = run(0);
	CHECK(r.corrupt == 0 && r.good == 16);
	dir_gone();
}

/* Description: a zeroed range over three record headers is one damaged region; the records
 * it hit are dropped, the rest are kept. */
static void test_zeroed_range(void)
{
	uint64_t offs[10];
	dir_fresh("zeroed", grid_a);
	layout_standard(offs);
	size_t len = (size_t)(offs[5] - offs[3] + 4096 + 100);
	uint8_t *z = calloc(1, len);
	poke(0, offs[3] + 100, z, len);
	free(z);
	struct fsck_report r = run(0);
	CHECK(r.corrupt == 1);
	CHECK(r.bytes_corrupt == offs[6] - offs[3]);
	CHECK(r.good == 14); /* keys 3 (old copy), 4 (old) and 5 lost from seg 0 */
	r = run(1);
	CHECK(r.repaired == r.corrupt);
	r = run(0);
	CHECK(r.corrupt == 0 && r.good == 14);
	dir_gone();
}

/* Description: a truncated segment is counted; --repair restores its size and keeps the
 * records that were wholly before the cut. */
static void test_truncated(void)
{
	uint64_t offs[10];
	struct stat st;
	dir_fresh("trunc", grid_a);
	layout_standard(offs);
	CHECK(truncate(seg_path(0), (off_t)(offs[8] + 4096 + 4096)) == 0);
	struct fsck_report r = run(0);
	CHECK(r.segments_bad == 1);
	CHECK(r.corrupt == 2); /* the cut record 8 and the truncation itself */
	CHECK(r.good == 15);   /* record 9 is gone as well */
	r = run(1);
	CHECK(r.rewritten == 1 && r.repaired == 2);
	CHECK(stat(seg_path(0), &st) == 0 && st.st_size == SEG_BYTES);
	r = run(0);
	CHECK(r.corrupt == 0 && r.good == 15);
	dir_gone();
}

/* Description: a segment of another grid, and one with a garbled header, are bad segments;
 * --repair moves them to quarantine/ and removes index.ckpt. */
static void test_foreign_and_garbled(void)
{
	uint64_t offs[10];
	char p[4300];
	dir_fresh("foreign", grid_a);
	layout_standard(offs);
	struct seg s2 = seg_new(2, 1, grid_b);
	rec_put(&s2, 100, 1000, 4096, 0, 1);
	close(s2.fd);
	struct seg s3 = seg_new(3, 1, grid_a);
	rec_put(&s3, 101, 1001, 4096, 0, 1);
	close(s3.fd);
	poke(3, 16, "garbage!", 8);
	snprintf(p, sizeof(p), "%s/index.ckpt", dir);
	int fd = open(p, O_WRONLY | O_CREAT, 0644);
	close(fd);

	struct fsck_report r = run(0);
	CHECK(r.segments == 4 && r.segments_bad == 2 && r.corrupt == 2);
	CHECK(r.blocks == 14);
	r = run(1);
	CHECK(r.quarantined == 2 && r.repaired == 2 && r.ckpt_removed == 1);
	CHECK(access(p, F_OK) != 0);
	snprintf(p, sizeof(p), "%s/quarantine/seg-00000002.kvg", dir);
	CHECK(access(p, F_OK) == 0);
	CHECK(access(seg_path(2), F_OK) != 0 && access(seg_path(3), F_OK) != 0);
	r = run(0);
	CHECK(r.segments == 2 && r.corrupt == 0 && r.blocks == 14);
	dir_gone();
}

/* Description: a segment never written (all zeros, as the tier creates it) is unused, not
 * corrupt; a segment whose header was zeroed in front of its records is a bad segment. */
static void test_unused_and_wiped_segment(void)
{
	uint64_t offs[10];
	uint8_t zero[SEG_HDR_BYTES] = {0};
	dir_fresh("unused", grid_a);
	layout_standard(offs);
	int fd = open(seg_path(2), O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0 && ftruncate(fd, SEG_BYTES) == 0);
	close(fd);
	struct fsck_report r = run(1);
	CHECK(r.segments == 3 && r.segments_unused == 1 && r.corrupt == 0 && r.quarantined == 0);
	poke(1, 0, zero, sizeof(zero));
	r = run(0);
	CHECK(r.segments_bad == 1 && r.corrupt == 1 && r.segments_unused == 1);
	r = run(1);
	CHECK(r.quarantined == 1);
	dir_gone();
}

/* Description: records of an earlier generation beyond the current tail of a reused segment
 * are free space (stale), not corruption; a record of a later generation is corruption. */
static void test_generations(void)
{
	dir_fresh("gens", grid_a);
	struct seg old = seg_new(0, 1, grid_a);
	for (uint32_t k = 0; k < 8; k++)
		rec_put(&old, k, k + 1, 8192, 0, 1);
	close(old.fd);
	/* reuse: new header with generation 2, two new records over the first old ones */
	struct seg s = {.gen = 2, .off = SEG_HDR_BYTES, .grid = grid_a};
	uint8_t blk[SEG_HDR_BYTES] = {0};
	struct seg_hdr h = {.magic = SEG_MAGIC,
			    .format = KVG_RECORD_FORMAT,
			    .seg_id = 0,
			    .generation = 2,
			    .seg_bytes = SEG_BYTES};
	memcpy(h.grid_id, grid_a, 16);
	seg_hdr_seal(&h);
	memcpy(blk, &h, sizeof(h));
	s.fd = open(seg_path(0), O_RDWR);
	CHECK(s.fd >= 0 && pwrite(s.fd, blk, sizeof(blk), 0) == sizeof(blk));
	rec_put(&s, 50, 100, 8192, 0, 1);
	rec_put(&s, 51, 101, 8192, 0, 1);
	close(s.fd);
	struct fsck_report r = run(0);
	CHECK(r.good == 2 && r.corrupt == 0 && r.blocks == 2 && r.stale == 6);

	s.fd = open(seg_path(0), O_RDWR);
	s.gen = 3; /* a record claiming a generation the segment never had */
	rec_put(&s, 52, 102, 8192, 0, 1);
	close(s.fd);
	r = run(0);
	CHECK(r.corrupt == 1 && r.good == 2);
	dir_gone();
}

/* Description: a layered record (checksummed per part) is good when intact and corrupt when
 * any one part is damaged. */
static void test_layered(void)
{
	dir_fresh("layered", grid_a);
	struct seg s = seg_new(0, 1, grid_a);
	rec_put(&s, 1, 1, 4 * 5000, 0, 4);
	uint64_t off = rec_put(&s, 2, 2, 8 * 3000, 0, 8);
	rec_put(&s, 3, 3, 100, 0, 1);
	close(s.fd);
	struct fsck_report r = run(0);
	CHECK(r.good == 3 && r.corrupt == 0);
	poke(0, off + REC_HDR_BYTES + 5 * 3000 + 17, "X", 1);
	r = run(0);
	CHECK(r.good == 2 && r.corrupt == 1);
	dir_gone();
}

/* Description: fsck refuses a directory a grid holds open (its lock), and a directory that is
 * not a tier directory. */
static void test_refusals(void)
{
	uint64_t offs[10];
	struct fsck_opts o = {0};
	struct fsck_report r;
	char err[256], p[4300];
	dir_fresh("locked", grid_a);
	layout_standard(offs);
	snprintf(p, sizeof(p), "%s/LOCK", dir);
	int fd = open(p, O_RDWR | O_CREAT, 0644);
	CHECK(fd >= 0);
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) { /* another process holds the lock, as an open grid would */
		flock(fd, LOCK_EX);
		CHECK(write(ready[1], "x", 1) == 1);
		pause();
		_exit(0);
	}
	char x;
	CHECK(read(ready[0], &x, 1) == 1);
	CHECK(fsck_dir(dir, &o, &r, err, sizeof(err)) == -EBUSY);
	CHECK(strstr(err, "open") != NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fd);
	close(ready[0]);
	close(ready[1]);
	CHECK(fsck_dir(dir, &o, &r, err, sizeof(err)) == 0); /* the lock went with its holder */
	snprintf(p, sizeof(p), "%s/empty", dir);
	CHECK(mkdir(p, 0755) == 0);
	CHECK(fsck_dir(p, &o, &r, err, sizeof(err)) == -ENOENT);
	CHECK(fsck_dir("/nonexistent/kvgrid", &o, &r, err, sizeof(err)) == -ENOENT);
	dir_gone();
}

/* Description: a directory whose segments are of another record format (an older kvgrid's)
 * is refused whole, naming both formats, and nothing in it is changed, even by --repair. */
static void test_old_format(void)
{
	uint64_t offs[10];
	struct fsck_opts o = {.repair = 1};
	struct fsck_report r;
	char err[256];
	dir_fresh("oldfmt", grid_a);
	layout_standard(offs);
	struct seg_hdr h = {
	    .magic = SEG_MAGIC, .format = 1, .seg_id = 1, .generation = 1, .seg_bytes = SEG_BYTES};
	memcpy(h.grid_id, grid_a, 16);
	seg_hdr_seal(&h);
	poke(1, 0, &h, sizeof(h));
	struct stat before, after;
	CHECK(stat(seg_path(1), &before) == 0);
	CHECK(fsck_dir(dir, &o, &r, err, sizeof(err)) == KVG_ECONFIG);
	CHECK(strstr(err, "record format 1") && strstr(err, "format 2") && strstr(err, dir));
	CHECK(stat(seg_path(1), &after) == 0 && after.st_mtime == before.st_mtime);
	char p[4300];
	snprintf(p, sizeof(p), "%s/quarantine", dir);
	CHECK(access(p, F_OK) != 0); /* nothing moved aside */
	struct seg_hdr back;
	int fd = open(seg_path(1), O_RDONLY);
	CHECK(fd >= 0 && pread(fd, &back, sizeof(back), 0) == sizeof(back));
	close(fd);
	CHECK(back.format == 1 && back.hdr_csum == h.hdr_csum);
	dir_gone();
}

/* Runs the record scanner over segment id in mode; writes one line per item into out. */
static int scan_items(uint32_t id, enum rec_scan_mode mode, char out[][64], int max)
{
	static uint8_t buf[4 * KVG_ALIGN] __attribute__((aligned(4096)));
	int fd = open(seg_path(id), O_RDONLY), n = 0, item;
	struct rec_scan sc;
	CHECK(fd >= 0);
	rec_scan_init(&sc, mode, rec_read_fd, &fd, SEG_BYTES, 1, grid_a, buf, sizeof(buf));
	while ((item = rec_scan_next(&sc)) > 0 && n < max)
		snprintf(out[n++], 64, "%d %llu %llu", item, (unsigned long long)sc.off,
			 (unsigned long long)sc.bytes);
	CHECK(item == REC_ITEM_END && sc.why == NULL);
	close(fd);
	return n;
}

/* Description: the record scanner's two modes read one damaged segment by the same rules
 * and differ only in policy: recovery's (INDEX) indexes a record whose payload is damaged
 * (the read path verifies payloads) and folds a record of another grid into the gap before
 * the next good one; fsck's (VERIFY) reports both as damaged records, and only the wiped
 * header as a damaged region. */
static void test_scan_modes(void)
{
	uint64_t off[6];
	char got[16][64], want[16][64];
	dir_fresh("modes", grid_a);
	struct seg s = seg_new(0, 1, grid_a);
	for (uint32_t k = 0; k < 6; k++) {
		s.grid = k == 3 ? grid_b : grid_a;
		off[k] = rec_put(&s, k, k + 1, 5000 + 1000 * k, 0, 1);
	}
	close(s.fd);
	uint8_t b = 0x5a, zero[128] = {0};
	poke(0, off[1] + REC_HDR_BYTES + 100, &b, 1);
	poke(0, off[4] + REC_HDR_OFF, zero, sizeof(zero));
	uint64_t end5 = off[5] + rec_span(5000 + 1000 * 5);

	int n = scan_items(0, REC_SCAN_INDEX, got, 16), k = 0;
	snprintf(want[k++], 64, "%d %llu %llu", REC_ITEM_RECORD, (unsigned long long)off[0],
		 (unsigned long long)(off[1] - off[0]));
	snprintf(want[k++], 64, "%d %llu %llu", REC_ITEM_RECORD, (unsigned long long)off[1],
		 (unsigned long long)(off[2] - off[1]));
	snprintf(want[k++], 64, "%d %llu %llu", REC_ITEM_RECORD, (unsigned long long)off[2],
		 (unsigned long long)(off[3] - off[2]));
	snprintf(want[k++], 64, "%d %llu %llu", REC_ITEM_GAP, (unsigned long long)off[3],
		 (unsigned long long)(off[5] - off[3]));
	snprintf(want[k++], 64, "%d %llu %llu", REC_ITEM_RECORD, (unsigned long long)off[5],
		 (unsigned long long)(end5 - off[5]));
	CHECK(n == k);
	for (int i = 0; i < n; i++)
		CHECK(!strcmp(got[i], want[i]));

	n = scan_items(0, REC_SCAN_VERIFY, got, 16);
	snprintf(want[1], 64, "%d %llu %llu", REC_ITEM_DAMAGED, (unsigned long long)off[1],
		 (unsigned long long)(off[2] - off[1]));
	snprintf(want[3], 64, "%d %llu %llu", REC_ITEM_DAMAGED, (unsigned long long)off[3],
		 (unsigned long long)(off[4] - off[3]));
	snprintf(want[4], 64, "%d %llu %llu", REC_ITEM_GAP, (unsigned long long)off[4],
		 (unsigned long long)(off[5] - off[4]));
	snprintf(want[5], 64, "%d %llu %llu", REC_ITEM_RECORD, (unsigned long long)off[5],
		 (unsigned long long)(end5 - off[5]));
	CHECK(n == 6);
	for (int i = 0; i < n; i++)
		CHECK(!strcmp(got[i], want[i]));
	dir_gone();
}

int main(void)
{
	test_sound();
	test_bit_flip();
	test_wiped_header();
	test_zeroed_range();
	test_truncated();
	test_foreign_and_garbled();
	test_unused_and_wiped_segment();
	test_generations();
	test_layered();
	test_refusals();
	test_old_format();
	test_scan_modes();
	printf("test_fsck: ok (%d problem lines)\n", lines);
	return 0;
}
