/*
 * record.h - the on-disk format of the NVMe tier: segment files and block records.
 *
 * The tier's directory holds fixed-size segment files "seg-NNNNNNNN.kvg" and, after a clean
 * close, "index.ckpt" (a checkpoint of the index; see index_ckpt in tier_nvme.c).  A segment
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
 *   8  format      u32  KVG_FORMAT_VERSION
 *  12  seg_id      u32  number in the file name
 *  16  generation  u64  bumped each time the segment is reused
 *  24  grid_id     16B  random id of the grid that owns the directory
 *  40  seg_bytes   u64  file size
 *  48  reserved    72B
 * 120  hdr_csum    u64  XXH3-64 of bytes 0..119
 *
 *  record header (little-endian, 128 bytes used, rest of the 4096 zero)
 *   0  magic       u32  "KVGR"
 *   4  format      u16  KVG_FORMAT_VERSION
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
 * 128  part_csum   u64 x parts  (parts > 1 only) XXH3-64 of each part; payload_csum is
 *                  then the XXH3-64 of this array, so one layer can be verified as soon as
 *                  it arrives, before the rest of the block.
 */
#ifndef KVG_RECORD_H
#define KVG_RECORD_H

#include <stdint.h>
#include <stddef.h>

#include "kvgrid.h"

#define KVG_ALIGN 4096u
#define SEG_MAGIC 0x313047455347564bull /* "KVGSEG01" read as a little-endian u64 */
#define SEG_HDR_BYTES 4096u
#define REC_MAGIC 0x5247564bu /* "KVGR" */
#define REC_HDR_BYTES 4096u
#define REC_F_TOMBSTONE 0x1
#define REC_PARTS_MAX ((REC_HDR_BYTES - 128) / 8) /* 496 */

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
 */
int seg_hdr_check(const void *raw, size_t len, struct seg_hdr *out);
int rec_hdr_check(const void *raw, size_t len, struct rec_hdr *out);

/* XXH3-64 of a payload, as stored in payload_csum. */
uint64_t rec_payload_csum(const void *buf, size_t len);

#endif
