/*
 * fuzz_segment.c - libFuzzer target: fsck's segment check (fsck_segment) over a whole segment
 * image, and with it the record scanner of record.c that the tier's recovery walks too.
 *
 * Random bytes almost never carry valid checksums, so to reach deep the target first repairs
 * what the first input byte asks for: bit 0 seals the segment header, bit 1 seals every
 * 4096-byte block that starts with the record magic (format, grid id and a length that fits),
 * bit 2 also gives those records the segment's generation, bit 3 also makes their payload
 * checksums right.  The rest of the input is the image.  Invariants: no crash, good + corrupt
 * == checked, never more bytes read than the image holds twice over (scan and payload), and a
 * second scan gives the same counts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fsck.h"

#define IMAGE_MAX (256u * 1024)
#define SCRATCH	  (3 * KVG_ALIGN) /* small chunks: exercises payloads crossing reads */

struct image {
	const uint8_t *p;
	size_t len;
};

static ssize_t image_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	const struct image *im = ctx;
	if (off >= im->len)
		return 0;
	if (len > im->len - off)
		len = im->len - off;
	memcpy(buf, im->p + off, len);
	return (ssize_t)len;
}

static const uint8_t grid_id[16] = "fuzz-grid-id-000";

static void fix_up(uint8_t *img, size_t len, uint8_t how)
{
	struct seg_hdr sh;
	uint64_t gen = 1;
	if (len < SEG_HDR_BYTES)
		return;
	memcpy(&sh, img, sizeof(sh));
	if (how & 1) {
		sh.magic = SEG_MAGIC;
		sh.format = KVG_RECORD_FORMAT;
		sh.seg_id = 0;
		sh.generation = sh.generation % 4;
		sh.seg_bytes = (len + KVG_ALIGN - 1) & ~(uint64_t)(KVG_ALIGN - 1);
		memcpy(sh.grid_id, grid_id, 16);
		seg_hdr_seal(&sh);
		memcpy(img, &sh, sizeof(sh));
	}
	gen = sh.generation;
	if (!(how & 2))
		return;
	for (size_t off = SEG_HDR_BYTES; off + REC_HDR_BYTES <= len; off += KVG_ALIGN) {
		struct rec_hdr h;
		memcpy(&h, img + off + REC_HDR_OFF, sizeof(h));
		if (h.magic != REC_MAGIC)
			continue;
		h.format = KVG_RECORD_FORMAT;
		memcpy(h.grid_id, grid_id, 16);
		if (how & 4)
			h.generation = gen;
		uint64_t room = len - off - REC_HDR_BYTES;
		h.payload_len = room ? h.payload_len % (room + 1) : 0;
		h.parts = h.parts % 4 + 1;
		if (h.parts > 1)
			h.payload_len -= h.payload_len % h.parts;
		if ((how & 8) && h.parts == 1)
			h.payload_csum = rec_payload_csum(img + off + REC_HDR_BYTES, h.payload_len);
		rec_hdr_seal(&h);
		memcpy(img + off + REC_HDR_OFF, &h, sizeof(h));
	}
}

static void scan(const uint8_t *img, size_t len, struct fsck_report *rep)
{
	static uint8_t buf[SCRATCH] __attribute__((aligned(4096)));
	struct image im = {img, len};
	struct seg_hdr sh;
	const char *why;
	memset(rep, 0, sizeof(*rep));
	int rc =
	    fsck_segment(image_read, &im, len, grid_id, 0, &sh, NULL, rep, buf, sizeof(buf), &why);
	if (rc != 0 && rc != KVG_ECORRUPT && rc != FSCK_SEG_UNUSED)
		abort();
	if (rc == KVG_ECORRUPT && !why)
		abort(); /* a bad segment always says why */
	if (rep->checked != rep->good + rep->corrupt)
		abort();
	if (rep->bytes_checked > 2 * (uint64_t)len + SEG_HDR_BYTES)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t img[IMAGE_MAX];
	struct fsck_report a, b;
	if (size < 1 || size - 1 > IMAGE_MAX)
		return 0;
	size_t len = size - 1;
	memcpy(img, data + 1, len);
	fix_up(img, len, data[0]);
	scan(img, len, &a);
	scan(img, len, &b);
	if (memcmp(&a, &b, sizeof(a)))
		abort(); /* a scan has no hidden state */
	return 0;
}
