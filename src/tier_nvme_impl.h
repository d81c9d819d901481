/*
 * tier_nvme_impl.h - the NVMe tier's own data: included by tier_nvme*.c only.  The grid sees
 * struct nvme as opaque and goes through tier_nvme.h's functions.
 *
 * Locking: segs[] (state, write_off, live, inflight, head), open_seg, seq and bytes_used
 * are guarded by the grid lock, which every "locked" function of tier_nvme.h expects held;
 * the error counters are atomics; the op pool has pool_lock.
 */
#ifndef KVG_TIER_NVME_IMPL_H
#define KVG_TIER_NVME_IMPL_H

#include "tier_nvme.h"

enum seg_state { SEG_FREE = 0, SEG_OPEN = 1, SEG_SEALED = 2, SEG_BAD = 3 };

struct segment {
	int fd;
	uint64_t gen;
	uint64_t write_off; /* bytes used, records end here */
	uint32_t state;
	uint32_t live;	   /* entries whose record is here (nvme_seg_live) */
	uint32_t inflight; /* reads and writes in flight (nvme_seg_io) */
	uint32_t head;	   /* first entry slot of the grid's list of them (nvme_seg_head) */
};

struct nvme {
	char dir[4096];
	int dir_fd;
	int lock_fd;
	uint8_t grid_id[16];
	struct log *log;
	const struct io_ops *ops;
	struct io_backend *io;
	int direct; /* files opened with O_DIRECT */
	int durable;
	uint64_t seg_bytes;
	uint32_t nsegs;
	struct segment *segs;
	uint32_t open_seg;   /* appending here, SLOT_NONE if none */
	uint64_t seq;	     /* next record sequence number */
	uint64_t bytes_used; /* sum of live record spans (approximate capacity use) */
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

#endif
