/*
 * record.c - sealing and checking segment and record headers (format in record.h).
 * Only this file knows the checksum of a header; decoders are pure and safe on any bytes.
 */
#include <string.h>
#include <xxhash.h>

#include "record.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "on-disk format is little-endian");

void seg_hdr_seal(struct seg_hdr *h)
{
	h->hdr_csum = XXH3_64bits(h, offsetof(struct seg_hdr, hdr_csum));
}

void rec_hdr_seal(struct rec_hdr *h)
{
	h->hdr_csum = XXH3_64bits(h, offsetof(struct rec_hdr, hdr_csum));
}

int seg_hdr_check(const void *raw, size_t len, struct seg_hdr *out)
{
	if (len < sizeof(*out))
		return KVG_ECORRUPT;
	memcpy(out, raw, sizeof(*out));
	if (out->magic != SEG_MAGIC || out->format != KVG_FORMAT_VERSION)
		return KVG_ECORRUPT;
	if (out->hdr_csum != XXH3_64bits(out, offsetof(struct seg_hdr, hdr_csum)))
		return KVG_ECORRUPT;
	return 0;
}

int rec_hdr_check(const void *raw, size_t len, struct rec_hdr *out)
{
	if (len < sizeof(*out))
		return KVG_ECORRUPT;
	memcpy(out, raw, sizeof(*out));
	if (out->magic != REC_MAGIC || out->format != KVG_FORMAT_VERSION)
		return KVG_ECORRUPT;
	if (out->hdr_csum != XXH3_64bits(out, offsetof(struct rec_hdr, hdr_csum)))
		return KVG_ECORRUPT;
	if (out->payload_len > (1ull << 40) || out->parts == 0 || out->parts > REC_PARTS_MAX)
		return KVG_ECORRUPT;
	if (out->parts > 1 && out->payload_len % out->parts)
		return KVG_ECORRUPT;
	return 0;
}

uint64_t rec_payload_csum(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}
