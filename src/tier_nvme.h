/*
 * tier_nvme.h - the NVMe tier: segment files in a directory, append-only records, reads
 * verified before any byte is handed out, recovery of the index at open.
 *
 * Space and segment state are guarded by the grid lock (the caller holds it for every
 * function marked "locked"); I/O runs through an io backend and completes on its threads.
 * struct nvme is opaque: the grid asks the functions below, never the fields.
 * The record format is in record.h; doc/ARCHITECTURE.md shows the flow.  The code is in
 * tier_nvme.c (segments, transfers), tier_nvme_recover.c (open, recovery, close) and
 * tier_nvme_ckpt.c (the checkpoint).
 */
#ifndef KVG_TIER_NVME_H
#define KVG_TIER_NVME_H

#include <pthread.h>
#include <stdint.h>
#include <sys/uio.h>

#include "io.h"
#include "kvgrid.h"
#include "log.h"
#include "record.h"

struct nvme_loc {
	uint32_t seg;
	uint32_t off4k;
	uint32_t gen; /* low 32 bits of the segment generation */
};

/* One record transfer.  The caller fills the public part; the tier owns the rest. */
struct nvme_op {
	int write;
	uint16_t rec_flags; /* write: REC_F_TOMBSTONE for a deletion record */
	struct nvme_loc loc;
	kvg_key key;
	uint32_t depth;
	uint64_t len;
	uint32_t parts;	   /* write: checksum parts (1 or layers) */
	int layered;	   /* read: verify and report part by part */
	void *dst;	   /* read: len bytes */
	struct iovec *src; /* write: payload pieces (src_cap of them, see nvme_open) */
	int srccnt;
	int src_cap;
	void (*part_done)(struct nvme_op *op, uint32_t part);
	void (*done)(struct nvme_op *op, int status);
	void *arg;
	uint32_t arg_idx;
	uint32_t arg_slot;

	/* private to tier_nvme.c */
	struct nvme *nv;
	pthread_mutex_t lock;
	uint8_t *hdr;	   /* 4 KiB, aligned: the record's header block */
	uint32_t hdr_read; /* read: bytes of the header block's end read with the payload */
	uint8_t *tail;	   /* 4 KiB, aligned */
	uint8_t *bounce;   /* lazily allocated, aligned, kept */
	uint64_t bounce_cap;
	struct iovec *vec; /* vector of the whole record */
	uint32_t nvec, vec_cap;
	uint32_t *group_end; /* vec index ending each io group */
	uint32_t ngroups, next_group, groups_done, inflight;
	uint64_t *group_off;
	uint8_t *arrived; /* per part: 0 pending, 1 arrived, 2 verified */
	uint32_t parts_verified;
	uint32_t cb_running; /* threads inside part_done */
	int finish_deferred; /* finished while cb_running: the last one out finishes */
	int hdr_ok;
	int status;
	int tail_used;
	uint64_t tail_bytes;
	void *read_into; /* where the payload lands (dst or bounce) */
	struct io_req req[8];
	uint32_t req_group[8]; /* group each window slot is moving */
	struct nvme_op *next_free;
};

struct nvme_recovered {
	struct rec_hdr hdr;
	struct nvme_loc loc;
};

/* The tier: opaque outside tier_nvme*.c (its fields are in tier_nvme_int.h). */
struct nvme;

/*
 * The disk the tier may take (tier_nvme_space.c).  Segment files are created as the tier
 * first writes to them, so this is a bound the filesystem must be able to honour: its free
 * space plus what the grid's segment files already hold ("room").  nvme_bytes 0 asks for
 * NVME_AUTO_SHARE of the room, at most NVME_AUTO_MAX_BYTES.
 */
#define NVME_AUTO_SHARE	    2		  /* automatic capacity: half of the room */
#define NVME_AUTO_MAX_BYTES (16ull << 30) /* and at most this, the former fixed default */

struct nvme_space {
	uint64_t capacity_bytes; /* the tier's capacity: whole segments */
	uint64_t free_bytes;	 /* free on the filesystem of cfg->dir */
	uint64_t held_bytes;	 /* allocated to the segment files already in cfg->dir */
	int automatic;		 /* 1: cfg->nvme_bytes was 0 */
};

/* Decides the capacity for cfg (cfg->dir, nvme_bytes, segment_bytes) and creates nothing.
 * Returns 0, KVG_ECONFIG (a set nvme_bytes over the room, or a room under two segments: the
 * one-line reason in err) or -errno (the free space cannot be read). */
int nvme_space(const struct kvg_config *cfg, struct nvme_space *sp, char *err, size_t err_len);

/*
 * Opens or creates the tier in cfg->dir and recovers it: cb is called for every good record
 * (newest per key decided by the caller through hdr.seq; tombstones included).  The caller
 * counts the blocks it keeps and times the open.  Returns 0, KVG_ECONFIG (reason in err) or
 * -errno.
 */
int nvme_open(const struct kvg_config *cfg, struct log *log, struct nvme **out,
	      void (*cb)(void *ctx, const struct nvme_recovered *r), void *ctx, char *err,
	      size_t err_len);

/* A checkpoint entry, as the grid reports it at close: written to disk as it is (layout and
 * size asserts in tier_nvme_ckpt.c). */
struct nvme_ckpt_ent {
	kvg_key key;
	struct nvme_loc loc;
	uint32_t len;
	uint32_t depth;
};

/* Stops I/O; if next is given, writes the checkpoint of the entries it yields (0 = end). */
void nvme_close(struct nvme *nv, int (*next)(void *ctx, struct nvme_ckpt_ent *e), void *ctx);

/* locked: reserves room for a record of len payload bytes; -ENOSPC when no free segment. */
int nvme_reserve(struct nvme *nv, uint64_t len, struct nvme_loc *loc);
/* locked: the segment may be reused (its entries are gone); bumps its generation. */
void nvme_seg_free(struct nvme *nv, uint32_t seg);
/* locked: 1 if the segment can be evicted now */
int nvme_seg_evictable(const struct nvme *nv, uint32_t seg);
/* 1 while the tier rests after repeated errors */
int nvme_degraded(struct nvme *nv);

/*
 * Segment accounting for the grid.  Each segment has a list of the index entries whose
 * record it holds: the grid links them (through entry.snext/sprev), the tier keeps the head
 * and the count of live entries, so that it frees a sealed segment no entry uses any more.
 * I/O in flight on a segment (nvme_seg_io) keeps it from being freed or reused.  All locked.
 */
uint32_t nvme_seg_head(const struct nvme *nv, uint32_t seg); /* SLOT_NONE: empty */
void nvme_seg_set_head(struct nvme *nv, uint32_t seg, uint32_t slot);
void nvme_seg_live(struct nvme *nv, uint32_t seg, int delta); /* +1 linked, -1 unlinked */
void nvme_seg_io(struct nvme *nv, uint32_t seg, int delta);   /* +1 started, -1 ended */
/* Frees the segment if it is sealed, with no live entry and no I/O in flight. */
void nvme_seg_release(struct nvme *nv, uint32_t seg);

/* The tier's own figures for kvg_stats (capacity, error counters, backend, degraded). */
void nvme_stats(struct nvme *nv, struct kvg_tier_stats *ts);
/* The I/O backend's name ("uring", "psync", "fault"), for log lines. */
const char *nvme_backend(const struct nvme *nv);

/* Takes an op from the pool (waits if all are in flight); puts it back. */
struct nvme_op *nvme_op_get(struct nvme *nv);
void nvme_op_put(struct nvme *nv, struct nvme_op *op);
/* Starts a transfer; op->done runs exactly once, on an I/O thread or before return. */
void nvme_submit(struct nvme *nv, struct nvme_op *op);

uint64_t nvme_now_us(void);

#endif
