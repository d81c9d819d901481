/*
 * seeds.c - writes the binary seed inputs of the checked-in fuzz corpus (records, segment
 * images, token lists).  Not a fuzz target; run by hand when the format changes:
 *   cc -D_GNU_SOURCE -Iinclude -Isrc fuzz/seeds.c src/record.c -lxxhash -o build/seeds &&
 *   build/seeds fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "record.h"

static const char *root;

static void put(const char *dir, const char *name, const void *p, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/seed-%s", root, dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len) {
		perror(path);
		exit(1);
	}
	fclose(f);
}

static const uint8_t grid_id[16] = "fuzz-grid-id-000";

/* A segment record at off in img (its header at the end of its header block): payload of
 * len bytes, in parts. */
static size_t record(uint8_t *img, size_t off, uint64_t gen, uint64_t seq, size_t len,
		     uint32_t parts, uint16_t flags)
{
	struct rec_hdr h = {.magic = REC_MAGIC,
			    .format = KVG_RECORD_FORMAT,
			    .flags = flags,
			    .generation = gen,
			    .seq = seq,
			    .payload_len = len,
			    .parts = parts};
	memset(h.key, (int)seq, sizeof(h.key));
	memcpy(h.grid_id, grid_id, 16);
	uint8_t *p = img + off + REC_HDR_BYTES;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seq);
	if (parts > 1) {
		for (uint32_t i = 0; i < parts; i++) {
			uint64_t c = XXH3_64bits(p + i * (len / parts), len / parts);
			memcpy(img + off + REC_HDR_OFF - 8 * parts + 8 * i, &c, 8);
		}
		h.payload_csum =
		    XXH3_64bits(img + off + REC_HDR_OFF - 8 * parts, 8 * (size_t)parts);
	} else {
		h.payload_csum = rec_payload_csum(p, len);
	}
	rec_hdr_seal(&h);
	memcpy(img + off + REC_HDR_OFF, &h, sizeof(h));
	return off + rec_span(len);
}

static void segments(void)
{
	static uint8_t buf[1 + 65536];
	uint8_t *img = buf + 1;
	struct seg_hdr sh = {.magic = SEG_MAGIC,
			     .format = KVG_RECORD_FORMAT,
			     .seg_id = 0,
			     .generation = 2,
			     .seg_bytes = 65536};
	memcpy(sh.grid_id, grid_id, 16);
	seg_hdr_seal(&sh);
	memcpy(img, &sh, sizeof(sh));
	size_t off = SEG_HDR_BYTES;
	off = record(img, off, 2, 1, 5000, 1, 0);
	off = record(img, off, 2, 2, 4 * 3000, 4, 0);
	off = record(img, off, 2, 3, 0, 1, REC_F_TOMBSTONE);
	off = record(img, off, 2, 4, 100, 1, 0);
	record(img, off + KVG_ALIGN, 1, 5, 3000, 1, 0); /* stale, after a gap */
	buf[0] = 0;
	put("segment", "sound", buf, sizeof(buf));
	buf[0] = 0x0f;
	put("segment", "sound-fixup", buf, sizeof(buf));
	img[SEG_HDR_BYTES + REC_HDR_BYTES + 10] ^= 1;
	buf[0] = 0;
	put("segment", "payload-flip", buf, sizeof(buf));
	memset(img + SEG_HDR_BYTES + REC_HDR_OFF + 50, 0, 16);
	put("segment", "header-wiped", buf, sizeof(buf));
	put("segment", "truncated", buf, 1 + 20000);
	memset(img, 0, SEG_HDR_BYTES);
	put("segment", "zero-header", buf, sizeof(buf));
	put("record", "layered-record", img + SEG_HDR_BYTES + 12288, REC_HDR_BYTES);
	memcpy(img, &sh, sizeof(sh));
	put("record", "segment", img, 128);
	static uint8_t r[REC_HDR_BYTES];
	record(memset(buf, 0, sizeof(buf)), 0, 1, 9, 0, 1, 0);
	memcpy(r, buf, sizeof(r));
	put("record", "empty-record", r, REC_HDR_BYTES);
	/* a shared-tier object's header: format 1, at the start */
	struct rec_hdr h = {.magic = REC_MAGIC,
			    .format = REC_FORMAT_HEAD,
			    .generation = 1,
			    .seq = 10,
			    .payload_len = 0,
			    .parts = 1};
	memcpy(h.grid_id, grid_id, 16);
	h.payload_csum = rec_payload_csum(r, 0);
	rec_hdr_seal(&h);
	put("record", "shared-record", &h, sizeof(h));
}

static void tokens(void)
{
	uint8_t buf[1 + 4 * 200];
	for (int v = 0; v < 4; v++) {
		char name[16];
		buf[0] = (uint8_t)(v * 0x41);
		for (int i = 0; i < 200; i++) {
			uint32_t t = (uint32_t)(i * 31 + v);
			memcpy(buf + 1 + 4 * i, &t, 4);
		}
		snprintf(name, sizeof(name), "ctx%d", v);
		put("key", name, buf, sizeof(buf));
	}
}

int main(int argc, char **argv)
{
	root = argc > 1 ? argv[1] : "fuzz/corpus";
	segments();
	tokens();
	return 0;
}
