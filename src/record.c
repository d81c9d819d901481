/*
 * record.c - the NVMe tier's on-disk rules (format in record.h): sealing and checking segment
 * and record headers, the part checksums of a payload, and the record scanner that recovery
 * and fsck both walk segments with.  Only this file knows where a checksum lives or how a
 * segment's log is told apart from its free space; decoders are pure and safe on any bytes.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "record.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "on-disk format is little-endian");

/* records whose span is at least this are read header by header, not a window at a time */
#define SCAN_AHEAD_SPAN_MAX (256u << 10)

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
	if (out->magic != SEG_MAGIC || out->format != KVG_RECORD_FORMAT)
		return KVG_ECORRUPT;
	if (out->hdr_csum != XXH3_64bits(out, offsetof(struct seg_hdr, hdr_csum)))
		return KVG_ECORRUPT;
	return 0;
}

int seg_hdr_format(const void *raw, size_t len, uint32_t *format)
{
	struct seg_hdr h;
	if (len < sizeof(h))
		return KVG_ECORRUPT;
	memcpy(&h, raw, sizeof(h));
	if (h.magic != SEG_MAGIC ||
	    h.hdr_csum != XXH3_64bits(&h, offsetof(struct seg_hdr, hdr_csum)))
		return KVG_ECORRUPT;
	*format = h.format;
	return 0;
}

/* The checks of a fixed header at raw that must be of format fmt. */
static int hdr_check(const void *raw, uint32_t fmt, struct rec_hdr *out)
{
	memcpy(out, raw, sizeof(*out));
	if (out->magic != REC_MAGIC || out->format != fmt)
		return KVG_ECORRUPT;
	if (out->hdr_csum != XXH3_64bits(out, offsetof(struct rec_hdr, hdr_csum)))
		return KVG_ECORRUPT;
	if (out->payload_len > (1ull << 40) || out->parts == 0 || out->parts > REC_PARTS_MAX)
		return KVG_ECORRUPT;
	if (out->parts > 1 && out->payload_len % out->parts)
		return KVG_ECORRUPT;
	return 0;
}

int rec_hdr_check(const void *raw, size_t len, struct rec_hdr *out)
{
	if (len < sizeof(*out))
		return KVG_ECORRUPT;
	return hdr_check(raw, REC_FORMAT_HEAD, out);
}

int rec_hdr_check_tail(const void *hraw, struct rec_hdr *out)
{
	return hdr_check(hraw, KVG_RECORD_FORMAT, out);
}

uint64_t rec_payload_csum(const void *buf, size_t len)
{
	return XXH3_64bits(buf, len);
}

/* ---- part checksums --------------------------------------------------------------------- */

/* Where the part checksums of the header at hraw lie: after it (format 1), else before. */
static const uint8_t *parts_at(const void *hraw, const struct rec_hdr *h)
{
	if (h->format == REC_FORMAT_HEAD)
		return (const uint8_t *)hraw + REC_PART_CSUM_OFF;
	return (const uint8_t *)hraw - 8 * (size_t)h->parts;
}

uint64_t rec_part_csum_want(const void *hraw, const struct rec_hdr *h, uint32_t p)
{
	uint64_t want = h->payload_csum;
	assert(p < h->parts && h->parts <= REC_PARTS_MAX);
	if (h->parts > 1)
		memcpy(&want, parts_at(hraw, h) + 8 * (size_t)p, 8);
	return want;
}

int rec_parts_check(const void *hraw, const struct rec_hdr *h)
{
	if (h->parts <= 1)
		return 0;
	uint64_t c = XXH3_64bits(parts_at(hraw, h), (size_t)h->parts * 8);
	return c == h->payload_csum ? 0 : KVG_ECORRUPT;
}

/* A position in a payload lying in pieces, and the hashing of the bytes that follow it. */
struct iov_cursor {
	const struct iovec *iov;
	int cnt, i;
	uint64_t in; /* bytes of iov[i] already passed */
};

static void cursor_hash(struct iov_cursor *c, XXH3_state_t *st, uint64_t len)
{
	while (len && c->i < c->cnt) {
		uint64_t k = c->iov[c->i].iov_len - c->in;
		if (k > len)
			k = len;
		if (st)
			XXH3_64bits_update(st, (const uint8_t *)c->iov[c->i].iov_base + c->in, k);
		len -= k;
		c->in += k;
		if (c->in == c->iov[c->i].iov_len) {
			c->i++;
			c->in = 0;
		}
	}
}

uint64_t rec_payload_range_csum(const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len)
{
	struct iov_cursor c = {iov, iovcnt, 0, 0};
	cursor_hash(&c, NULL, off);
	if (c.i < iovcnt && c.in + len <= iov[c.i].iov_len) /* in one piece: the fast way */
		return XXH3_64bits((const uint8_t *)iov[c.i].iov_base + c.in, len);
	XXH3_state_t st;
	XXH3_INITSTATE(&st);
	XXH3_64bits_reset(&st);
	cursor_hash(&c, &st, len);
	return XXH3_64bits_digest(&st);
}

int rec_part_verify(const void *hraw, const struct rec_hdr *h, uint32_t p, const struct iovec *iov,
		    int iovcnt)
{
	uint64_t pb = rec_part_bytes(h);
	uint64_t got = rec_payload_range_csum(iov, iovcnt, (uint64_t)p * pb, pb);
	return got == rec_part_csum_want(hraw, h, p) ? 0 : KVG_ECORRUPT;
}

/* Hashes the payload_len bytes in iov part by part into csum[] (h->parts of them). */
static void parts_hash(const struct rec_hdr *h, const struct iovec *iov, int iovcnt, uint64_t *csum)
{
	struct iov_cursor c = {iov, iovcnt, 0, 0};
	uint64_t pb = rec_part_bytes(h);
	for (uint32_t p = 0; p < h->parts; p++) { /* one pass over the pieces, a part at a time */
		if (c.i < iovcnt && c.in + pb <= iov[c.i].iov_len) { /* in one piece */
			csum[p] = XXH3_64bits((const uint8_t *)iov[c.i].iov_base + c.in, pb);
			cursor_hash(&c, NULL, pb);
			continue;
		}
		XXH3_state_t st;
		XXH3_INITSTATE(&st);
		XXH3_64bits_reset(&st);
		cursor_hash(&c, &st, pb);
		csum[p] = XXH3_64bits_digest(&st);
	}
}

int rec_payload_verify(const struct rec_hdr *h, const struct iovec *iov, int iovcnt)
{
	uint64_t csum[REC_PARTS_MAX];
	assert(h->parts >= 1 && h->parts <= REC_PARTS_MAX);
	parts_hash(h, iov, iovcnt, csum);
	uint64_t got = h->parts == 1 ? csum[0] : XXH3_64bits(csum, (size_t)h->parts * 8);
	return got == h->payload_csum ? 0 : KVG_ECORRUPT;
}

void rec_hdr_seal_payload(void *hraw, const struct iovec *iov, int iovcnt)
{
	struct rec_hdr *h = hraw;
	uint64_t csum[REC_PARTS_MAX];
	parts_hash(h, iov, iovcnt, csum);
	if (h->parts == 1) {
		h->payload_csum = csum[0];
	} else {
		memcpy((uint8_t *)parts_at(hraw, h), csum, (size_t)h->parts * 8);
		h->payload_csum = XXH3_64bits(csum, (size_t)h->parts * 8);
	}
	rec_hdr_seal(h);
}

/* ---- the record scanner ----------------------------------------------------------------- */

ssize_t rec_read_fd(void *ctx, void *buf, size_t len, uint64_t off)
{
	int fd = *(const int *)ctx;
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

void rec_scan_init(struct rec_scan *s, enum rec_scan_mode mode, rec_read_fn rd, void *rctx,
		   uint64_t end, uint64_t generation, const uint8_t *grid_id, void *buf,
		   size_t buf_len)
{
	assert(buf_len % KVG_ALIGN == 0 && buf_len >= REC_HDR_BYTES);
	assert(mode == REC_SCAN_INDEX || buf_len >= 2 * KVG_ALIGN);
	memset(s, 0, sizeof(*s));
	s->read = rd;
	s->read_ctx = rctx;
	s->mode = mode;
	s->end = end;
	s->generation = generation;
	s->grid_id = grid_id;
	s->buf = buf;
	s->buf_len = buf_len;
	s->pos = SEG_HDR_BYTES;
}

/*
 * Points *raw at the 4096 bytes at off, from the window when it holds them, else read: a
 * window ahead while records are small (INDEX), one header otherwise.  Returns 1, 0 when the
 * image ends before them, or -errno.  VERIFY's window is only ever buf's first 4096 bytes,
 * which payloads never stream through.
 */
static int scan_at(struct rec_scan *s, uint64_t off, const uint8_t **raw)
{
	if (off >= s->win_start && off + REC_HDR_BYTES <= s->win_start + s->win_len) {
		*raw = s->buf + (off - s->win_start);
		return 1;
	}
	int ahead = s->mode == REC_SCAN_INDEX && s->last_span < SCAN_AHEAD_SPAN_MAX;
	uint64_t want = ahead ? s->buf_len : REC_HDR_BYTES;
	if (want > s->end - off)
		want = s->end - off;
	ssize_t n = s->read(s->read_ctx, s->buf, (size_t)want, off);
	s->win_len = 0;
	if (n < 0)
		return (int)n;
	if (n < (ssize_t)REC_HDR_BYTES)
		return 0;
	s->bytes_read += (uint64_t)n;
	s->win_start = off;
	s->win_len = (uint64_t)n;
	*raw = s->buf;
	return 1;
}

/* The slot at pos joins the gap: a header of an earlier generation is free space, a magic
 * that does not decode may be the remains of a record. */
static void gap_extend(struct rec_scan *s, const uint8_t *raw, int decodes, const struct rec_hdr *h)
{
	uint32_t magic;
	memcpy(&magic, raw + REC_HDR_OFF, sizeof(magic));
	if (decodes && h->generation < s->generation)
		s->stale++;
	else if (magic == REC_MAGIC)
		s->gap_magic = 1;
	if (!s->gap)
		s->gap = s->pos;
	s->pos += KVG_ALIGN;
	s->last_span = 0;
}

/*
 * Why the record whose decoded header claims the slot at off (its generation is not earlier
 * than the segment's) is not good, from its header alone, or NULL; *next is where the scan
 * goes on: by the record's span once its length is known to fit, else by one slot.
 */
static const char *claim_check(const struct rec_scan *s, const struct rec_hdr *h, uint64_t off,
			       uint64_t *next)
{
	uint64_t span = rec_span(h->payload_len);
	*next = off + KVG_ALIGN;
	if (h->generation > s->generation)
		return "record from a later generation than its segment";
	if (span > s->end - off)
		return "record runs past the end of the segment";
	*next = off + span;
	if (s->grid_id && memcmp(h->grid_id, s->grid_id, 16))
		return "record of another grid";
	return NULL;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * Streams the payload of the record at off through buf after its first 4096 bytes (so that
 * memory does not grow with block size) and checks each part as it completes: 0 good, 1
 * mismatch or cut short, -errno.
 */
static int payload_check(struct rec_scan *s, const struct rec_hdr *h, const uint8_t *blk,
			 uint64_t off)
{
	uint8_t *chunk = s->buf + KVG_ALIGN;
	size_t chunk_len = s->buf_len - KVG_ALIGN;
	uint64_t len = h->payload_len, part_len = rec_part_bytes(h), pos = 0, in_part = 0;
	uint32_t part = 0;
	XXH3_state_t st;

	if (len == 0)
		return 0;
	XXH3_INITSTATE(&st);
	XXH3_64bits_reset(&st);
	while (pos < len) {
		ssize_t n = s->read(s->read_ctx, chunk, (size_t)min_u64(chunk_len, len - pos),
				    off + REC_HDR_BYTES + pos);
		if (n <= 0)
			return n < 0 ? (int)n : 1;
		s->bytes_read += (uint64_t)n;
		for (size_t i = 0; i < (size_t)n;) {
			size_t take = (size_t)min_u64((uint64_t)n - i, part_len - in_part);
			XXH3_64bits_update(&st, chunk + i, take);
			i += take;
			in_part += take;
			if (in_part < part_len)
				continue;
			if (XXH3_64bits_digest(&st) !=
			    rec_part_csum_want(blk + REC_HDR_OFF, h, part))
				return 1;
			part++;
			in_part = 0;
			XXH3_64bits_reset(&st);
		}
		pos += (uint64_t)n;
	}
	return 0;
}

/* VERIFY: why the record with a good header at off is damaged after all, or NULL. */
static const char *record_verify(struct rec_scan *s, const struct rec_hdr *h, const uint8_t *blk,
				 uint64_t off, int *err)
{
	if (rec_parts_check(blk + REC_HDR_OFF, h))
		return "damaged part checksums";
	int rc = payload_check(s, h, blk, off);
	if (rc < 0)
		*err = rc;
	return rc ? "payload checksum mismatch" : NULL;
}

/* Reports the gap that ends at pos; the claim at pos is read again, from the window. */
static int gap_report(struct rec_scan *s)
{
	s->off = s->gap;
	s->bytes = s->pos - s->gap;
	s->why = "damaged record header";
	s->gap = 0;
	s->gap_magic = 0;
	return REC_ITEM_GAP;
}

static int end_report(struct rec_scan *s)
{
	s->off = s->gap ? s->gap : s->pos;
	s->bytes = s->end > s->off ? s->end - s->off : 0;
	s->why = s->gap && s->gap_magic ? "damaged record at the end of the log" : NULL;
	return REC_ITEM_END;
}

int rec_scan_next(struct rec_scan *s)
{
	s->why = NULL;
	while (s->pos + REC_HDR_BYTES <= s->end) {
		const uint8_t *raw = NULL;
		struct rec_hdr h;
		uint64_t next = 0;
		const char *why = NULL;
		int rc = scan_at(s, s->pos, &raw);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break; /* the image ends inside this slot */
		int decodes = rec_blk_check(raw, &h) == 0;
		int claim = decodes && h.generation >= s->generation;
		if (claim)
			why = claim_check(s, &h, s->pos, &next);
		if (!claim || (why && s->mode == REC_SCAN_INDEX)) {
			gap_extend(s, raw, decodes, &h);
			continue;
		}
		if (s->gap)
			return gap_report(s);
		if (!why && s->mode == REC_SCAN_VERIFY) {
			int err = 0;
			why = record_verify(s, &h, raw, s->pos, &err);
			if (err)
				return err;
		}
		s->hdr = h;
		s->blk = raw;
		s->off = s->pos;
		s->bytes = next - s->pos;
		s->why = why;
		s->pos = next;
		s->last_span = s->bytes;
		return why ? REC_ITEM_DAMAGED : REC_ITEM_RECORD;
	}
	return end_report(s);
}
