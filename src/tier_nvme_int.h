/*
 * tier_nvme_int.h - what the NVMe tier's own files share, and nothing else may call.
 *
 * The tier is one module in three files: tier_nvme.c (segments, space, the op pool and the
 * transfers), tier_nvme_recover.c (open, recovery, close) and tier_nvme_ckpt.c (the
 * checkpoint).  Locking as in tier_nvme.h: these run at open and close, when nothing else
 * touches the tier.
 *
 * The tier's data is here, not in tier_nvme.h: the grid sees struct nvme as opaque and goes
 * through tier_nvme.h's functions.  segs[] (state, write_off, live, inflight, head),
 * open_seg, seq and bytes_used are guarded by the grid lock, which every "locked" function
 * of tier_nvme.h expects held; the error counters are atomics; the op pool has pool_lock.
 */
#ifndef KVG_TIER_NVME_INT_H
#define KVG_TIER_NVME_INT_H

#include "tier_nvme.h"

enum seg_state { SEG_FREE = 0, SEG_OPEN = 1, SEG_SEALED = 2, SEG_BAD = 3 };

struct segment {
	int fd;
	uint64_t gen;
	uint64_t write_off; /* bytes used, records end here */
	uint32_t state;
	uint32_t live;	    /* entries whose record is here (nvme_seg_live) */
	uint32_t inflight;  /* reads and writes in flight (nvme_seg_io) */
	uint32_t head;	    /* first entry slot of the grid's list of them (nvme_seg_head) */
	uint32_t dio_align; /* the file's read unit (nvme_dio_align), 512..4096 */
};

struct nvme {
	char dir[4096];
	int dir_fd;
	int lock_fd;
	int dir_made; /* this open created dir (undone if the open fails) */
	uint8_t grid_id[16];
	struct log *log;
	const struct io_ops *ops;
	struct io_backend *io;
	int direct; /* files opened with O_DIRECT */
	int durable;
	uint64_t seg_bytes;
	uint32_t nsegs;
	struct segment *segs; /* fd -1: a segment whose file is not made yet (free) */
	uint32_t open_seg;    /* appending here, SLOT_NONE if none */
	int fs_full;	      /* the last segment file could not be made for lack of room */
	uint64_t seq;	      /* next record sequence number */
	uint64_t bytes_used;  /* sum of live record spans (approximate capacity use) */
	/* error accounting (atomics) */
	uint32_t io_errors_recent;
	uint32_t io_error_limit;
	uint32_t retry_ms;
	uint64_t degraded_until_us;
	uint64_t io_errors;
	uint64_t checksum_failures;
	uint64_t bytes_written; /* record spans, headers included */
	/* op pool */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct nvme_op *pool;
	struct nvme_op *free_ops;
	uint32_t pool_size;
	uint32_t max_vec;
	uint32_t max_src;
	char backend[16];
};

/* tier_nvme.c */

/* Opens segment file i into nv->segs[i].fd: an existing one (-ENOENT when there is none; a
 * short one is extended if it can be), or with create a new one, preallocated to seg_bytes
 * and removed again if that fails (-ENOSPC: no room).  0 or -errno. */
int nvme_seg_open_file(struct nvme *nv, uint32_t i, int create);
/* The read unit of file fd: the larger of its O_DIRECT offset and memory alignments (statx
 * STATX_DIOALIGN) and its device's physical block (sysfs), 512 when not direct, KVG_ALIGN
 * when either is unknown; a header read starts and ends on it. */
uint32_t nvme_dio_align(int fd, int direct);
/* Reads segment i's header: 0 and its generation, or KVG_ECORRUPT (new, foreign, bad). */
int nvme_seg_read_header(struct nvme *nv, uint32_t i, uint64_t *gen);
/* Sizes and fills the op pool from cfg; 0 or -ENOMEM (then nvme_pool_fini cleans up). */
int nvme_pool_init(struct nvme *nv, const struct kvg_config *cfg);
void nvme_pool_fini(struct nvme *nv);

/* tier_nvme_ckpt.c */

/* Loads index.ckpt if it is whole and agrees with every segment header, reporting its
 * entries to cb and their number in *count: 0, -ENOENT (none), or KVG_ECORRUPT (unusable:
 * nothing of it was applied). */
int nvme_ckpt_load(struct nvme *nv, void (*cb)(void *, const struct nvme_recovered *), void *ctx,
		   uint64_t *count);
/* Writes index.ckpt of the entries next yields (0 = end; it is walked twice), durably and
 * atomically: 0 or -errno (then no checkpoint is left). */
int nvme_ckpt_write(struct nvme *nv, int (*next)(void *, struct nvme_ckpt_ent *), void *ctx);
/* Removes index.ckpt (and makes that durable) before anything is written. */
void nvme_ckpt_drop(struct nvme *nv);

#endif
