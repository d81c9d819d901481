/*
 * proto_native.c - frame header codec of the native protocol (see proto_native.h).
 *
 * Bodies are read and written by the server and the client with the accessors of the
 * header, field by field, never by casting a struct onto the wire: the layout is the
 * documented byte order, whatever the compiler's padding.
 */
#include "proto_native.h"

void nat_hdr_encode(uint8_t *buf, const struct nat_hdr *h)
{
	nat_put_u32(buf, NAT_MAGIC);
	buf[4] = h->version ? h->version : NAT_VERSION;
	buf[5] = h->op;
	buf[6] = (uint8_t)h->flags;
	buf[7] = (uint8_t)(h->flags >> 8);
	nat_put_u64(buf + 8, h->id);
	nat_put_u32(buf + 16, (uint32_t)h->status);
	nat_put_u32(buf + 20, h->body_len);
}

int nat_hdr_decode(const uint8_t *buf, uint32_t body_max, int check_op, struct nat_hdr *h,
		   const char **why)
{
	h->magic = nat_get_u32(buf);
	h->version = buf[4];
	h->op = buf[5];
	h->flags = (uint16_t)(buf[6] | buf[7] << 8);
	h->id = nat_get_u64(buf + 8);
	h->status = (int32_t)nat_get_u32(buf + 16);
	h->body_len = nat_get_u32(buf + 20);
	if (h->magic != NAT_MAGIC) {
		*why = "bad frame magic";
		return -1;
	}
	if (h->version != NAT_VERSION) {
		*why = "unsupported protocol version";
		return -1;
	}
	if (check_op && (h->op == 0 || h->op > NAT_OP_MAX)) {
		*why = "unknown operation";
		return -1;
	}
	if (h->body_len > body_max) {
		*why = "frame too large";
		return -1;
	}
	return 0;
}

int nat_sniff(const uint8_t *p, size_t len)
{
	return len >= 4 && nat_get_u32(p) == NAT_MAGIC;
}
