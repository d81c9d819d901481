/*
 * fsck.h - offline verification and repair of an NVMe tier directory (format in record.h).
 *
 * fsck reads every segment file and checks, for every record of the segment's current
 * generation: its header checksum, its generation against the segment's, its grid id against
 * dir/grid.id, that it fits in the segment, and its payload checksum (part by part for layered
 * records).  Newest sequence number per key decides which good records are live blocks and
 * which are orphaned (superseded or deleted by a tombstone).
 *
 * Repair never guesses at bytes.  A segment whose header is unreadable or belongs to another
 * grid is moved to dir/quarantine/.  A segment with damaged records, or a truncated one, is
 * rewritten: its good records are copied, in order, into a new file of the right size that
 * then replaces it atomically (rename), so a crash during repair loses nothing.  index.ckpt is
 * removed whenever something changed, so that the next open rebuilds the index from the
 * segments.  The grid must not be open while fsck runs; fsck takes the tier's lock (dir/LOCK)
 * to make sure.
 */
#ifndef KVG_FSCK_H
#define KVG_FSCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "record.h"

struct fsck_report {
	uint64_t segments;	  /* segment files examined */
	uint64_t segments_bad;	  /* unreadable header, another grid's, wrong id or size */
	uint64_t segments_unused; /* created but never written (all-zero header, no records) */
	uint64_t checked;	  /* records and damaged regions examined: good + corrupt */
	uint64_t good;		  /* records that pass every check (tombstones included) */
	uint64_t blocks;	  /* live blocks: a key's newest good record, not a tombstone */
	uint64_t block_bytes;	  /* payload bytes of the live blocks */
	uint64_t corrupt;	  /* damaged records, damaged regions and bad segments */
	uint64_t orphaned;	  /* good records superseded by a newer record of their key */
	uint64_t tombstones;	  /* keys whose newest record is a tombstone */
	uint64_t stale;		  /* record headers of an earlier use of a segment (free space) */
	uint64_t repaired;	  /* corrupt items made harmless by a rewrite or a quarantine */
	uint64_t quarantined;	  /* segment files moved to quarantine/ */
	uint64_t rewritten;	  /* segment files rewritten without their damage */
	uint64_t ckpt_removed;	  /* 1 if index.ckpt was removed */
	uint64_t bytes_checked;	  /* bytes of segment files read */
	uint64_t bytes_corrupt;	  /* bytes of damaged records and regions */
};

#define FSCK_SEG_UNUSED 1

/* Reads up to len bytes at off of a segment image: the scanner's reader (record.h). */
typedef rec_read_fn fsck_read_fn;

/* What a segment scan reports, record by record.  Any callback may be NULL. */
struct fsck_visit {
	/* a good record at off (its header block, 4096 bytes, is at off) */
	void (*good)(void *ctx, const struct rec_hdr *h, uint64_t off);
	/* a damaged record or region of bytes at off; why is a static string */
	void (*corrupt)(void *ctx, uint64_t off, uint64_t bytes, const char *why);
	void *ctx;
};

/*
 * Scans one segment image of file_bytes through rd.  grid_id (16 bytes, NULL: any) is the
 * owner the records must name; seg_id (UINT32_MAX: any) the number of its file name.  Fills
 * *sh with the segment header when it decodes.  Adds what it finds to rep, except blocks,
 * orphaned and tombstones, which need every segment (fsck_dir does them).  buf is scratch of
 * buf_len bytes (>= 2 * KVG_ALIGN, a multiple of KVG_ALIGN).  Returns 0 when the segment is
 * sound as a whole (its records may still be damaged), KVG_ECORRUPT when it is not (bad
 * header, wrong owner, id or size; why says which), FSCK_SEG_UNUSED when it was never used
 * (an all-zero header and no record behind it), or -errno from rd.  Pure apart from rd:
 * safe on any bytes (fuzzed).
 */
int fsck_segment(fsck_read_fn rd, void *rctx, uint64_t file_bytes, const uint8_t *grid_id,
		 uint32_t seg_id, struct seg_hdr *sh, const struct fsck_visit *v,
		 struct fsck_report *rep, void *buf, size_t buf_len, const char **why);

struct fsck_opts {
	int repair;
	/* one line per problem found or action taken (NULL: silent) */
	void (*say)(void *ctx, const char *line);
	void *ctx;
};

/*
 * Checks (and with opts->repair, repairs) the tier directory dir.  Fills *rep.  Returns 0
 * when the directory was checked (look at rep->corrupt and rep->repaired), -EBUSY when a grid
 * has it open, -ENOENT when it is not a tier directory, or -errno; err says why.
 */
int fsck_dir(const char *dir, const struct fsck_opts *opts, struct fsck_report *rep, char *err,
	     size_t err_len);

#endif
