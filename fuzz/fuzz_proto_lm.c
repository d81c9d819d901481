/*
 * fuzz_proto_lm.c - libFuzzer target: the lm:// codec (proto_lm.c).  Input: any bytes, cut
 * into 186-byte request headers.  Checks that decoding never reads outside the header, that
 * a stripped key lies inside the key field and has no edge whitespace, and that a decoded
 * request re-encodes to a header that decodes to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto_lm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t off = 0; off + LMP_REQ_BYTES <= size; off += LMP_REQ_BYTES) {
		uint8_t *h = malloc(LMP_REQ_BYTES); /* exact size: ASan catches any overread */
		if (!h)
			return 0;
		memcpy(h, data + off, LMP_REQ_BYTES);
		struct lmp_req r, back;
		const char *why = NULL;
		int rc = lmp_decode_req(h, 1 << 20, &r, &why);
		if (r.key < (const char *)h + 36 ||
		    r.key + r.key_len > (const char *)h + LMP_REQ_BYTES)
			abort();
		if (r.key_len && (r.key[0] == ' ' || r.key[r.key_len - 1] == ' '))
			abort();
		if (rc == 0) {
			uint8_t enc[LMP_REQ_BYTES];
			lmp_encode_req(enc, r.command, r.length, &r.meta, r.key, r.key_len);
			if (lmp_decode_req(enc, 1 << 20, &back, &why) != 0 ||
			    back.command != r.command || back.length != r.length ||
			    memcmp(&back.meta, &r.meta, sizeof(r.meta)) ||
			    back.key_len != r.key_len || memcmp(back.key, r.key, r.key_len))
				abort();
		} else if (!why) {
			abort();
		}
		free(h);
	}
	return 0;
}
