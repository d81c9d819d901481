/*
 * fuzz_record.c - libFuzzer target: the segment and record header decoders (record.c).
 * Any bytes must decode without a crash; whatever decodes must re-seal to the same checksum,
 * and a record that passes must have a sane length and part count -- in both record formats
 * (the header at the start of the input, as a shared-tier object's; at the end of a 4096-byte
 * block, as a segment record's, when the input is that long).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seg_hdr sh;
	struct rec_hdr rh;

	if (seg_hdr_check(data, size, &sh) == 0) {
		struct seg_hdr again = sh;
		seg_hdr_seal(&again);
		if (again.hdr_csum != sh.hdr_csum || sh.magic != SEG_MAGIC)
			abort();
	}
	int tail = size >= REC_HDR_BYTES && rec_blk_check(data, &rh) == 0;
	if (tail && (rh.format != KVG_RECORD_FORMAT || rh.parts == 0 || rh.parts > REC_PARTS_MAX ||
		     rec_parts_check(data + REC_HDR_OFF, &rh) > 0))
		abort(); /* (the part checksums lie inside the block: ASan sees any stray read) */
	if (rec_hdr_check(data, size, &rh) == 0) {
		if (rh.format != REC_FORMAT_HEAD)
			abort();
		struct rec_hdr again = rh;
		rec_hdr_seal(&again);
		if (again.hdr_csum != rh.hdr_csum || rh.magic != REC_MAGIC)
			abort();
		if (rh.parts == 0 || rh.parts > REC_PARTS_MAX || rh.payload_len > (1ull << 40))
			abort();
		if (rec_span(rh.payload_len) < REC_HDR_BYTES + rh.payload_len)
			abort();
	}
	/* the same bytes made valid on purpose must pass: sealing is the inverse of checking */
	if (size >= sizeof(rh)) {
		memcpy(&rh, data, sizeof(rh));
		rh.magic = REC_MAGIC;
		rh.format = REC_FORMAT_HEAD;
		rh.payload_len &= (1ull << 30) - 1;
		rh.parts = 1;
		rec_hdr_seal(&rh);
		struct rec_hdr out;
		if (rec_hdr_check(&rh, sizeof(rh), &out) || memcmp(&out, &rh, sizeof(rh)))
			abort();
		rh.format = KVG_RECORD_FORMAT;
		rec_hdr_seal(&rh);
		if (rec_hdr_check_tail(&rh, &out) || memcmp(&out, &rh, sizeof(rh)) ||
		    rec_hdr_check(&rh, sizeof(rh), &out) == 0)
			abort(); /* each decoder takes its own format only */
	}
	return 0;
}
