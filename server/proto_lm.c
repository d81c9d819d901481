/*
 * proto_lm.c - lm:// request and reply codec (see proto_lm.h for the byte layout).
 *
 * LMCache's server strips the key with Python's str.strip(), so leading and trailing
 * whitespace (not only the padding spaces) is not part of a key; this does the same for the
 * ASCII whitespace Python strips.
 */
#include <string.h>

#include "proto_lm.h"

_Static_assert(LMP_REQ_BYTES == 9 * 4 + LMP_KEY_MAX, "lm:// request is 9 int32 and the key");
_Static_assert(LMP_REPLY_BYTES == 9 * 4, "lm:// reply is 9 int32");

static int32_t lmp_get_i32(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			 (uint32_t)p[3] << 24);
}

static void lmp_put_i32(uint8_t *p, int32_t v)
{
	uint32_t u = (uint32_t)v;
	p[0] = (uint8_t)u;
	p[1] = (uint8_t)(u >> 8);
	p[2] = (uint8_t)(u >> 16);
	p[3] = (uint8_t)(u >> 24);
}

/* Python's str.strip() without arguments: ASCII whitespace and the separators 0x1c..0x1f. */
static int lmp_is_space(uint8_t c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

int lmp_sniff(const uint8_t *p, size_t len)
{
	return len >= 4 && p[0] >= LMP_PUT && p[0] <= LMP_HEALTH && p[1] == 0 && p[2] == 0 &&
	       p[3] == 0;
}

int lmp_decode_req(const uint8_t *buf, size_t length_max, struct lmp_req *req, const char **why)
{
	req->command = lmp_get_i32(buf);
	req->length = lmp_get_i32(buf + 4);
	req->meta.fmt = lmp_get_i32(buf + 8);
	req->meta.dtype = lmp_get_i32(buf + 12);
	req->location = lmp_get_i32(buf + 16);
	for (int i = 0; i < 4; i++)
		req->meta.shape[i] = lmp_get_i32(buf + 20 + 4 * i);
	const uint8_t *k = buf + 36;
	size_t b = 0, e = LMP_KEY_MAX;
	while (b < e && lmp_is_space(k[b]))
		b++;
	while (e > b && lmp_is_space(k[e - 1]))
		e--;
	req->key = (const char *)k + b;
	req->key_len = e - b;
	if (req->command < LMP_PUT || req->command > LMP_HEALTH) {
		*why = "unknown lm:// command";
		return -1;
	}
	if (req->length < 0 || (req->command == LMP_PUT && (size_t)req->length > length_max)) {
		*why = "lm:// length out of range";
		return -1;
	}
	return 0;
}

void lmp_encode_req(uint8_t *buf, int32_t command, int32_t length, const struct lmp_meta *m,
		    const char *key, size_t key_len)
{
	static const struct lmp_meta dflt = {.fmt = 1, .dtype = 2};
	if (!m)
		m = &dflt;
	lmp_put_i32(buf, command);
	lmp_put_i32(buf + 4, length);
	lmp_put_i32(buf + 8, m->fmt);
	lmp_put_i32(buf + 12, m->dtype);
	lmp_put_i32(buf + 16, 0);
	for (int i = 0; i < 4; i++)
		lmp_put_i32(buf + 20 + 4 * i, m->shape[i]);
	if (key_len > LMP_KEY_MAX)
		key_len = LMP_KEY_MAX;
	memcpy(buf + 36, key, key_len);
	memset(buf + 36 + key_len, ' ', LMP_KEY_MAX - key_len);
}

void lmp_encode_reply(uint8_t *buf, int32_t code, int32_t length, const struct lmp_meta *m)
{
	/* what LMCache's server sends without data: MemoryFormat(1), torch.float16 (2), 0s */
	static const struct lmp_meta dflt = {.fmt = 1, .dtype = 2};
	if (!m)
		m = &dflt;
	lmp_put_i32(buf, code);
	lmp_put_i32(buf + 4, length);
	lmp_put_i32(buf + 8, m->fmt);
	lmp_put_i32(buf + 12, m->dtype);
	for (int i = 0; i < 4; i++)
		lmp_put_i32(buf + 16 + 4 * i, m->shape[i]);
	lmp_put_i32(buf + 32, 0);
}
