/*
 * record.h - the on-disk format of the NVMe tier: segment files and block records, and the
 * rules every reader of them follows (header checks, part checksums, the record scanner).
 *
 * The tier's directory holds fixed-size segment files "seg-NNNNNNNN.kvg" and, after a clean
 * close, "index.ckpt" (a checkpoint of the index; its layout is in tier_nvme_ckpt.c).  A segment
 * is an append-only log of records; it is reused whole after eviction, with a new generation,
 * so that a stale location (segment, generation, offset) is never misread as a newer block.
 * Every offset and length on disk is a multiple of KVG_ALIGN, so that O_DIRECT can move it.
 *
 *  segment file
 *  +--------------------+-------------------------------+-------------------------------+--
 *  | segment header     | record 0                      | record 1                      |
 *  | 4096 B             | header 4096 B | payload (pad) | header 4096 B | payload (pad) |
 *  +--------------------+-------------------------------+-------------------------------+--
 *
 *  segment header (little-endian, 128 bytes used, rest zero)
 *   0  magic       u64  "KVGSEG01"
 *   8  format      u32  KVG_RECORD_FORMAT (2): the layout of every record in the segment
 *  12  seg_id      u32  number in the file name
 *  16  generation  u64  bumped each time the segment is reused
 *  24  grid_id     16B  random id of the grid that owns the directory
 *  40  seg_bytes   u64  file size
 *  48  reserved    72B
 * 120  hdr_csum    u64  XXH3-64 of bytes 0..119
 *
 *  record header block (4096 bytes): zeros, then the part checksums, then the fixed header
 *  in its last 128 bytes, right in front of the payload -- so that a load reads only the
 *  block's tail (one physical sector: 512 bytes on a 512-byte-sector drive) with the payload:
 *
 *  +---------------- zero ----------------+---------------------+--------------+---------
 *  | 0                                     | part_csum x parts   | fixed header | payload
 *  |                                       | 3968 - 8 * parts    | 3968 (128 B) | 4096
 *  +---------------------------------------+---------------------+--------------+---------
 *
 *  fixed header (little-endian; offsets from its start, block byte REC_HDR_OFF = 3968)
 *   0  magic       u32  "KVGR"
 *   4  format      u16  KVG_RECORD_FORMAT (2)
 *   6  flags       u16  REC_F_TOMBSTONE: the key is deleted (no payload)
 *   8  generation  u64  generation of the segment when written
 *  16  seq         u64  grid-wide sequence number: the newest record of a key wins
 *  24  key         32B
 *  56  payload_len u64  bytes of payload (the padding to KVG_ALIGN is not counted)
 *  64  payload_csum u64 XXH3-64 of the payload bytes
 *  72  grid_id     16B
 *  88  depth       u32  block index in its chain (policy hint)
 *  92  parts       u32  payload checksummed in this many equal parts (1, or the layers)
 *  96  reserved    24B
 * 120  hdr_csum    u64  XXH3-64 of bytes 0..119
 * -8*parts  part_csum u64 x parts  (parts > 1 only) XXH3-64 of each part, part 0 first,
 *                  ending where the fixed header starts; payload_csum is then the XXH3-64 of
 *                  this array, so one layer can be verified as soon as it arrives, before
 *                  the rest of the block -- and a whole block can be verified without the
 *                  array, by hashing the array its parts give.
 *
 *  Format 1 (kvgrid before this layout) put the fixed header at byte 0 of the block and the
 *  part checksums after it, at byte 128: a load had to read the whole 4096-byte block.  The
 *  shared tier's objects (tier_shared.c) still use that layout, format REC_FORMAT_HEAD (1):
 *  they are read whole, one file per block, so the header's place costs nothing there.  A
 *  tier directory whose segments are of format 1 is refused at open (nvme_open, fsck) with
 *  both formats named, and left untouched: its contents are a cache, rebuilt by using a new
 *  directory.
 */
#ifndef KVG_RECORD_H
#define KVG_RECORD_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "kvgrid.h"

#define KVG_ALIGN	  4096u
#define SEG_MAGIC	  0x313047455347564bull /* "KVGSEG01" read as a little-endian u64 */
#define SEG_HDR_BYTES	  4096u
#define REC_MAGIC	  0x5247564bu /* "KVGR" */
#define REC_HDR_BYTES	  4096u
#define REC_F_TOMBSTONE	  0x1
#define REC_PARTS_MAX	  ((REC_HDR_BYTES - 128) / 8) /* 496 */
#define KVG_RECORD_FORMAT 2u /* NVMe segments: header at the end of its block (see above) */
#define REC_FORMAT_HEAD	  1u /* shared-tier objects: header at the start, parts after it */
#define REC_HDR_OFF	  (REC_HDR_BYTES - 128) /* the fixed header in a format-2 header block */

struct seg_hdr {
	uint64_t magic;
	uint32_t format;
	uint32_t seg_id;
	uint64_t generation;
	uint8_t grid_id[16];
	uint64_t seg_bytes;
	uint8_t reserved[72];
	uint64_t hdr_csum;
};
_Static_assert(sizeof(struct seg_hdr) == 128, "segment header is 128 bytes on disk");
_Static_assert(offsetof(struct seg_hdr, generation) == 16 &&
		   offsetof(struct seg_hdr, grid_id) == 24 &&
		   offsetof(struct seg_hdr, seg_bytes) == 40 &&
		   offsetof(struct seg_hdr, hdr_csum) == 120,
	       "segment header fields sit where the diagram says");

/* the fixed part of a record header block; where it and the part checksums lie depends on
 * the format: see the diagram */
struct rec_hdr {
	uint32_t magic;
	uint16_t format;
	uint16_t flags;
	uint64_t generation;
	uint64_t seq;
	uint8_t key[KVG_KEY_BYTES];
	uint64_t payload_len;
	uint64_t payload_csum;
	uint8_t grid_id[16];
	uint32_t depth;
	uint32_t parts;
	uint8_t reserved[24];
	uint64_t hdr_csum;
};
_Static_assert(sizeof(struct rec_hdr) == 128, "record header is 128 bytes on disk");
_Static_assert(offsetof(struct rec_hdr, seq) == 16 && offsetof(struct rec_hdr, key) == 24 &&
		   offsetof(struct rec_hdr, payload_len) == 56 &&
		   offsetof(struct rec_hdr, grid_id) == 72 &&
		   offsetof(struct rec_hdr, parts) == 92 &&
		   offsetof(struct rec_hdr, hdr_csum) == 120,
	       "record header fields sit where the diagram says");
#define REC_PART_CSUM_OFF 128u /* format 1: the part checksums, after the fixed header */
_Static_assert(REC_PART_CSUM_OFF + 8 * REC_PARTS_MAX <= REC_HDR_BYTES &&
		   8 * REC_PARTS_MAX <= REC_HDR_OFF,
	       "every part checksum fits in the header block, in either format");

/* Bytes at the end of a format-2 header block that hold its fixed header and the checksums
 * of parts parts (0: the fixed header alone). */
static inline uint32_t rec_tail_bytes(uint32_t parts)
{
	return 128u + (parts > 1 ? 8u * parts : 0u);
}

/* Bytes a record of payload_len occupies in its segment (header and padding included). */
static inline uint64_t rec_span(uint64_t payload_len)
{
	return REC_HDR_BYTES + ((payload_len + KVG_ALIGN - 1) & ~(uint64_t)(KVG_ALIGN - 1));
}

/* Fill the checksum of a header whose other fields are set (host is little-endian). */
void seg_hdr_seal(struct seg_hdr *h);
void rec_hdr_seal(struct rec_hdr *h);

/*
 * Decode and check a header from raw bytes (len >= 128).  Return 0 if the magic, format and
 * checksum are right, KVG_ECORRUPT otherwise.  Pure functions: safe on any input (fuzzed).
 * seg_hdr_check wants KVG_RECORD_FORMAT; rec_hdr_check decodes the fixed header at raw of
 * format REC_FORMAT_HEAD (a shared-tier object); rec_hdr_check_tail the one at hraw of
 * format KVG_RECORD_FORMAT (hraw = a segment record's header block + REC_HDR_OFF), and
 * rec_blk_check that of a whole 4096-byte segment record header block.
 */
int seg_hdr_check(const void *raw, size_t len, struct seg_hdr *out);
int rec_hdr_check(const void *raw, size_t len, struct rec_hdr *out);
int rec_hdr_check_tail(const void *hraw, struct rec_hdr *out);
static inline int rec_blk_check(const void *blk, struct rec_hdr *out)
{
	return rec_hdr_check_tail((const uint8_t *)blk + REC_HDR_OFF, out);
}

/* 0 and the segment header's format in *format if its magic and checksum are right,
 * whatever the format (so that a directory of another format is told apart from damage);
 * KVG_ECORRUPT otherwise. */
int seg_hdr_format(const void *raw, size_t len, uint32_t *format);

/* XXH3-64 of a payload, as stored in payload_csum. */
uint64_t rec_payload_csum(const void *buf, size_t len);

/*
 * Part checksums.  A record's payload is checksummed in h->parts equal parts of
 * rec_part_bytes() bytes; part p's checksum is payload_csum when parts == 1, else part_csum[p]
 * in the header block, and payload_csum is then the XXH3-64 of that array.  hraw points to
 * the record's fixed header (format 2: its header block + REC_HDR_OFF; format 1: the block)
 * and h is that header decoded (a check passed, so parts is within bounds and divides
 * payload_len); the array lies before hraw (format 2) or after it (format 1), and the bytes
 * it covers must be there (format 2: rec_tail_bytes(parts) bytes ending at hraw + 128).
 * Only these functions know where a part's checksum lives: the writer, the read path,
 * recovery and fsck all go through them.
 */
static inline uint64_t rec_part_bytes(const struct rec_hdr *h)
{
	return h->payload_len / h->parts;
}

/* The checksum part p must have. */
uint64_t rec_part_csum_want(const void *hraw, const struct rec_hdr *h, uint32_t p);

/* 0 if the part checksums at hraw hash to payload_csum (always, for parts == 1), else
 * KVG_ECORRUPT: one damaged array entry must not condemn a good part, or pass a bad one. */
int rec_parts_check(const void *hraw, const struct rec_hdr *h);

/* XXH3-64 of bytes [off, off + len) of a payload lying in iovcnt pieces (which hold them). */
uint64_t rec_payload_range_csum(const struct iovec *iov, int iovcnt, uint64_t off, uint64_t len);

/* 0 if part p of the payload in iov verifies against hraw, else KVG_ECORRUPT. */
int rec_part_verify(const void *hraw, const struct rec_hdr *h, uint32_t p, const struct iovec *iov,
		    int iovcnt);

/* 0 if the whole payload in iov verifies against h alone, else KVG_ECORRUPT: the checksums
 * of its parts are computed and hashed, so the stored array is not needed. */
int rec_payload_verify(const struct rec_hdr *h, const struct iovec *iov, int iovcnt);

/*
 * Seals the fixed header at hraw whose fields (format, payload_len and parts included, parts
 * valid) are set: checksums the payload_len bytes lying in iov part by part, fills the part
 * checksums where the format puts them and payload_csum, then the header checksum.
 */
void rec_hdr_seal_payload(void *hraw, const struct iovec *iov, int iovcnt);

/*
 * The record scanner: walks the records of one segment image from its first record slot, the
 * one set of rules by which both recovery (tier_nvme_recover.c) and fsck read a segment.
 *
 * A record slot is good when its header decodes (rec_blk_check), is of the segment's
 * generation, names the grid (when one is given) and fits before the end; the scan then moves
 * on by the record's span.  Anything else moves it on by 4096 bytes, looking for the next good
 * header: the slots skipped that way form a gap.  A gap followed by a record is damage; a gap
 * that runs to the end is the segment's free space (zeros, or records of an earlier
 * generation), unless one of its slots still carries the record magic: the remains of a
 * damaged last record.  A last record whose header is wiped out entirely looks like free
 * space: recovery never indexes it, so it can only ever be a miss.
 *
 * Two modes, one per caller's policy:
 *   REC_SCAN_INDEX   recovery: headers only, read a window ahead (small records parse from
 *                    memory); a header that fails any check is simply part of a gap, and the
 *                    payload is left to the read path, which verifies it before use.
 *   REC_SCAN_VERIFY  fsck: every byte.  A header of the segment's generation or a later one
 *                    is a claim to a record: if it fails a check (later generation, past the
 *                    end, another grid, part checksums, payload) it is reported as a damaged
 *                    record, and the gap before it, if any, as damaged headers.
 */

/* Reads up to len bytes at off of a segment image: bytes read (short at its end) or -errno. */
typedef ssize_t (*rec_read_fn)(void *ctx, void *buf, size_t len, uint64_t off);

/* A rec_read_fn over a file: ctx points to its int descriptor; retries short reads. */
ssize_t rec_read_fd(void *ctx, void *buf, size_t len, uint64_t off);

enum rec_scan_mode { REC_SCAN_INDEX, REC_SCAN_VERIFY };

enum rec_item {
	REC_ITEM_END = 0, /* no more records: off is where the log ends, why says if damaged */
	REC_ITEM_RECORD,  /* a good record: hdr, blk, off, bytes (its span) */
	REC_ITEM_DAMAGED, /* VERIFY: a record that fails a check: hdr, blk, off, bytes, why */
	REC_ITEM_GAP,	  /* slots without a good header, followed by a record: off, bytes, why */
};

struct rec_scan {
	/* set by rec_scan_init */
	rec_read_fn read;
	void *read_ctx;
	enum rec_scan_mode mode;
	uint64_t end;		/* records lie in [SEG_HDR_BYTES, end) */
	uint64_t generation;	/* the segment's */
	const uint8_t *grid_id; /* 16 bytes, or NULL: records of any grid */
	uint8_t *buf;		/* scratch, see rec_scan_init */
	size_t buf_len;

	/* the item rec_scan_next returned last */
	uint64_t off;	    /* where it starts */
	uint64_t bytes;	    /* how long it is (END: from off to end) */
	struct rec_hdr hdr; /* RECORD, DAMAGED */
	const uint8_t *blk; /* RECORD, DAMAGED: its 4096-byte header block, until the next call */
	const char *why; /* DAMAGED, GAP, END: a static string; END: NULL if the log ends clean */

	/* totals over the scan */
	uint64_t bytes_read; /* bytes of the image read (headers, and payloads in VERIFY) */
	uint64_t stale;	     /* whole headers of an earlier generation met (free space) */

	/* private */
	uint64_t pos, gap, last_span, win_start, win_len;
	int gap_magic;
};

/*
 * Starts a scan of the image rd reads, whose records end at end.  buf (buf_len bytes, a
 * multiple of KVG_ALIGN, aligned for O_DIRECT if the image needs it) is the scan's scratch:
 * at least REC_HDR_BYTES for INDEX (read-ahead uses all of it), at least 2 * KVG_ALIGN for
 * VERIFY (payloads stream through all but the first 4096 bytes).
 */
void rec_scan_init(struct rec_scan *s, enum rec_scan_mode mode, rec_read_fn rd, void *rctx,
		   uint64_t end, uint64_t generation, const uint8_t *grid_id, void *buf,
		   size_t buf_len);

/*
 * Moves to the next item and returns its kind (REC_ITEM_*, REC_ITEM_END once there is no
 * more), or -errno when rd fails.  Pure apart from rd: safe on any bytes (fuzzed via fsck).
 */
int rec_scan_next(struct rec_scan *s);

#endif
