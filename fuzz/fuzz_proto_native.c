/*
 * fuzz_proto_native.c - libFuzzer target: the native frame header codec (proto_native.c).
 * Input: any bytes, read as a stream of frames.  Checks that a header either decodes within
 * its limit or is refused with a reason, and that a decoded header re-encodes to the same
 * 24 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto_native.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;
	while (size - pos >= NAT_HDR_BYTES) {
		struct nat_hdr h;
		const char *why = NULL;
		if (nat_hdr_decode(data + pos, 4096, 1, &h, &why) < 0) {
			if (!why)
				abort();
			break;
		}
		if (h.body_len > 4096 || h.op == 0 || h.op > NAT_OP_MAX)
			abort();
		uint8_t enc[NAT_HDR_BYTES];
		nat_hdr_encode(enc, &h);
		if (memcmp(enc, data + pos, NAT_HDR_BYTES) != 0)
			abort();
		pos += NAT_HDR_BYTES;
		if (size - pos < h.body_len)
			break;
		pos += h.body_len;
	}
	return 0;
}
