/*
 * proto_native.h - kvgrid's native binary protocol: the frames libkvgrid's client and
 * kvgridd exchange (doc/PROTOCOL.md has every operation byte by byte).
 *
 * Every request and reply is one frame: a 24-byte header and a body.  Integers are
 * little-endian.  A reply carries the id of its request, so a client may pipeline; replies
 * come back in request order.
 *
 *   0      4      5    6        8                16       20       24
 *   +------+------+----+--------+----------------+--------+--------+------------ - -
 *   | magic| ver  | op | flags  | request id     | status |body_len| body ...
 *   | KVGN | 1    |    | (0)    | u64            | i32    | u32    |
 *   +------+------+----+--------+----------------+--------+--------+------------ - -
 *
 * status is 0 in requests; in replies it is 0 or a negative kvgrid error (KVG_E*, -errno).
 * A frame whose magic, version or op is wrong, or whose body_len exceeds the receiver's
 * limit, is a protocol error: the receiver answers KVG_EPROTO (when it is a server) and
 * closes the connection, because it cannot know where the next frame starts.
 */
#ifndef KVG_PROTO_NATIVE_H
#define KVG_PROTO_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#define NAT_MAGIC	   0x4e47564bu /* "KVGN" read as a little-endian u32 */
#define NAT_VERSION	   1
#define NAT_HDR_BYTES	   24
#define NAT_ITEM_BYTES	   32  /* a GET reply's per-block header */
#define NAT_F_MORE	   0x1 /* reply flag: more frames of this reply follow */
#define NAT_PUT_ITEM_BYTES 40  /* a PUT request's per-block header: key, len, flags */
/* LOOKUP request flag: also answer each hit's tier (enum kvg_tier), one byte each.  The
 * reply's flags say whether they follow: a server older than the flag ignores it and
 * answers the 8 bytes alone, with flags 0. */
#define NAT_LOOKUP_F_TIERS 0x1
/* GET reply frames: bits 8-15 of the header's flags hold the tier the block was found in,
 * plus one (0: not said, as from an older server, or a miss). */
#define NAT_F_TIER_SHIFT 8

static inline uint16_t nat_tier_flags(int status, uint8_t tier)
{
	return status == 0 && tier < 255 ? (uint16_t)((tier + 1u) << NAT_F_TIER_SHIFT) : 0;
}

/* The tier a GET reply frame's flags tell (enum kvg_tier), or 255 (KVG_TIER_NONE). */
static inline uint8_t nat_flags_tier(uint16_t flags)
{
	unsigned t = flags >> NAT_F_TIER_SHIFT;
	return t ? (uint8_t)(t - 1) : 255;
}

enum nat_op {
	NAT_HELLO = 1,	/* u32 version, u32 token_len, token -> u32 version, u32 0, u64 value_max */
	NAT_LOOKUP = 2, /* u32 n, u32 flags, n keys -> u32 hits, u32 flags[, hits x u8 tier] */
	NAT_LOOKUP_TOKENS = 3, /* u32 n, u32 flags, n u32 tokens -> u64 hit tokens */
	NAT_GET = 4,	       /* u32 n, u32 flags, n keys -> n frames of (item header, payload) */
	NAT_PUT = 5,	  /* u32 n, u32 flags, n x (key, u32 len, u32 flags, payload) -> n x i32 */
	NAT_DELETE = 6,	  /* u32 n, u32 flags, n keys -> u32 count, u32 0 */
	NAT_PIN = 7,	  /* as DELETE */
	NAT_UNPIN = 8,	  /* as DELETE */
	NAT_STATS = 9,	  /* empty -> u32 fields, u32 0, fields x u64 */
	NAT_METRICS = 10, /* empty -> the server's metrics, Prometheus text */
	NAT_OP_MAX = 10
};

struct nat_hdr {
	uint32_t magic;
	uint8_t version;
	uint8_t op;
	uint16_t flags;
	uint64_t id;
	int32_t status;
	uint32_t body_len;
};

/* Writes h as 24 bytes at buf. */
void nat_hdr_encode(uint8_t *buf, const struct nat_hdr *h);

/*
 * Reads a header from 24 bytes at buf.  Returns 0, or -1 with a static reason in *why for a
 * bad magic, version or op (ops are not checked when check_op is 0: a client reading replies)
 * or a body longer than body_max.
 */
int nat_hdr_decode(const uint8_t *buf, uint32_t body_max, int check_op, struct nat_hdr *h,
		   const char **why);

/* True if the first bytes of a connection are the native magic (len >= 4). */
int nat_sniff(const uint8_t *p, size_t len);

/* Little-endian accessors for bodies. */
static inline uint32_t nat_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t nat_get_u64(const uint8_t *p)
{
	return (uint64_t)nat_get_u32(p) | (uint64_t)nat_get_u32(p + 4) << 32;
}
static inline void nat_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static inline void nat_put_u64(uint8_t *p, uint64_t v)
{
	nat_put_u32(p, (uint32_t)v);
	nat_put_u32(p + 4, (uint32_t)(v >> 32));
}

#endif
