/*
 * tier_nvme.c - see tier_nvme.h.
 *
 * Writes: a record is [header block 4 KiB][payload, padded to 4 KiB], built as one vector
 * of aligned pieces (the header block, the caller's buffer or arena chunks, a tail block
 * holding the last partial 4 KiB) and moved in groups of up to IO_IOV_MAX pieces, several
 * groups in flight.  Reads: the same vector pointed at the destination, except that of the
 * header block only its end is read -- the fixed header lies in its last 128 bytes
 * (record.h) -- one read unit of the file (nvme_dio_align: its O_DIRECT alignment, but not
 * less than its device's physical block), or as many as a layered read's part checksums
 * need; on a 512-byte-sector device a 64 KiB block then moves 64.5 KiB, not 68.  The
 * header is checked (magic, key, generation, length, checksum) and the payload verified
 * against its XXH3-64 before done(0) -- or, for a layered read, part by part, each part
 * reported only once verified.  Anything that does not verify is KVG_ECORRUPT: a miss,
 * never bytes.
 *
 * This file holds the tier's running state: segments and their space, the op pool, and the
 * transfers.  Opening (recovery included) and closing are in tier_nvme_recover.c, the
 * checkpoint a clean close leaves in tier_nvme_ckpt.c; the on-disk rules in record.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "index.h"
#include "kvg_assert.h"
#include "path.h"
#include "tier_nvme_int.h"

#define GROUP_MAX_BYTES (8u << 20)

uint64_t nvme_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- segments ------------------------------------------------------------------------ */

static void seg_path(const struct nvme *nv, uint32_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/seg-%08u.kvg", nv->dir, i);
}

static int seg_write_header(struct nvme *nv, uint32_t i)
{
	uint8_t *buf;
	if (posix_memalign((void **)&buf, KVG_ALIGN, SEG_HDR_BYTES))
		return -ENOMEM;
	memset(buf, 0, SEG_HDR_BYTES);
	struct seg_hdr *h = (struct seg_hdr *)buf;
	h->magic = SEG_MAGIC;
	h->format = KVG_RECORD_FORMAT;
	h->seg_id = i;
	h->generation = nv->segs[i].gen;
	memcpy(h->grid_id, nv->grid_id, 16);
	h->seg_bytes = nv->seg_bytes;
	seg_hdr_seal(h);
	ssize_t n = pwrite(nv->segs[i].fd, buf, SEG_HDR_BYTES, 0);
	int rc = n == SEG_HDR_BYTES ? 0 : n < 0 ? -errno : -EIO;
	if (!rc && nv->durable && fdatasync(nv->segs[i].fd) < 0)
		rc = -errno;
	free(buf);
	return rc;
}

/* Reads a segment's header: 0 and its generation, or KVG_ECORRUPT (new, foreign, bad). */
int nvme_seg_read_header(struct nvme *nv, uint32_t i, uint64_t *gen)
{
	uint8_t *buf;
	if (posix_memalign((void **)&buf, KVG_ALIGN, SEG_HDR_BYTES))
		return -ENOMEM;
	struct seg_hdr h;
	ssize_t n = nv->segs[i].fd < 0 ? 0 : pread(nv->segs[i].fd, buf, SEG_HDR_BYTES, 0);
	int rc = n == SEG_HDR_BYTES ? seg_hdr_check(buf, SEG_HDR_BYTES, &h) : KVG_ECORRUPT;
	if (!rc &&
	    (h.seg_id != i || memcmp(h.grid_id, nv->grid_id, 16) || h.seg_bytes != nv->seg_bytes))
		rc = KVG_ECORRUPT;
	if (!rc)
		*gen = h.generation;
	free(buf);
	return rc;
}

/* The physical block size of the device holding file fd's filesystem (sysfs), 0 if unknown. */
static uint32_t phys_block(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || major(st.st_dev) == 0)
		return 0; /* no block device (tmpfs, NFS, ...) */
	static const char *const fmt[] = {"/sys/dev/block/%u:%u/queue/physical_block_size",
					  "/sys/dev/block/%u:%u/../queue/physical_block_size"};
	for (int i = 0; i < 2; i++) { /* a whole disk, else a partition of one */
		char path[128];
		snprintf(path, sizeof(path), fmt[i], major(st.st_dev), minor(st.st_dev));
		FILE *f = fopen(path, "re");
		unsigned v = 0;
		int ok = f && fscanf(f, "%u", &v) == 1;
		if (f)
			fclose(f);
		if (ok && v)
			return v;
	}
	return 0;
}

uint32_t nvme_dio_align(int fd, int direct)
{
	if (!direct)
		return 512; /* buffered: any unit will do; the smallest that O_DIRECT knows */
	uint32_t a = 0;
#ifdef STATX_DIOALIGN
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN))
		a = sx.stx_dio_offset_align > sx.stx_dio_mem_align ? sx.stx_dio_offset_align
								   : sx.stx_dio_mem_align;
#endif
	uint32_t pb = phys_block(fd);
	if (!a || !pb)
		return KVG_ALIGN; /* unknown: the whole block, always allowed and aligned */
	/* a read smaller than the device's physical block is allowed but costs it more than
	 * the bytes it saves (measured on a 4096-byte-sector disk: 64.5 KiB reads at 512-byte
	 * offsets did 10-20% fewer a second than 68 KiB ones at 4096): never below it */
	if (a < pb)
		a = pb;
	if (a < 512)
		a = 512;
	return a <= KVG_ALIGN && !(a & (a - 1)) ? a : KVG_ALIGN;
}

/* Takes seg_bytes of disk for a new segment file; an old short one is extended. */
static int seg_preallocate(int fd, uint64_t bytes)
{
	int rc = posix_fallocate(fd, 0, (off_t)bytes);
	if (rc == EOPNOTSUPP || rc == EINVAL) /* no preallocation here: a sparse file then */
		rc = ftruncate(fd, (off_t)bytes) < 0 ? errno : 0;
	return -rc;
}

int nvme_seg_open_file(struct nvme *nv, uint32_t i, int create)
{
	char path[4200];
	seg_path(nv, i, path, sizeof(path));
	int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0);
	int fd = open(path, flags | (nv->direct ? O_DIRECT : 0), 0644);
	if (fd < 0 && errno == EINVAL && nv->direct) {
		nv->direct = 0; /* tmpfs and friends: say so once, go on buffered */
		log_msg(nv->log, LOG_WARN, "%s: O_DIRECT unavailable, using buffered I/O", nv->dir);
		fd = open(path, flags, 0644);
	}
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? -errno : 0;
	if (!rc && (uint64_t)st.st_size < nv->seg_bytes)
		rc = seg_preallocate(fd, nv->seg_bytes);
	nv->segs[i].dio_align = nvme_dio_align(fd, nv->direct);
	if (rc && !create && st.st_size == 0) {
		close(fd);
		unlink(path); /* an empty file left by a creation cut short: not made */
		return -ENOENT;
	}
	if (rc && !create) { /* a short old file: its records are still read, in place */
		log_msg(nv->log, LOG_WARN, "%s: segment %u is short and cannot grow: %s", nv->dir,
			i, strerror(-rc));
		rc = 0;
	}
	if (rc) {
		close(fd);
		unlink(path); /* no partial file left behind: the segment stays uncreated */
		return rc;
	}
	if (create)
		fsync(nv->dir_fd); /* the new name is durable before any record in it */
	nv->segs[i].fd = fd;
	return 0;
}

/*
 * A free segment to append to (locked): one whose file exists, else the lowest one not made
 * yet, made now -- disk is taken as the tier fills.  -ENOSPC when none is free, or when the
 * filesystem has no room for another file: the caller then evicts and reuses a segment.
 */
static int seg_pick(struct nvme *nv, uint32_t *out)
{
	uint32_t unmade = SLOT_NONE;
	for (uint32_t i = 0; i < nv->nsegs; i++) {
		const struct segment *s = &nv->segs[i];
		if (s->state != SEG_FREE || s->inflight)
			continue;
		if (s->fd >= 0) {
			*out = i;
			return 0;
		}
		if (unmade == SLOT_NONE)
			unmade = i;
	}
	if (unmade == SLOT_NONE)
		return -ENOSPC;
	int rc = nvme_seg_open_file(nv, unmade, 1);
	if (rc == -ENOSPC || rc == -EDQUOT) {
		if (!nv->fs_full)
			log_msg(nv->log, LOG_WARN,
				"%s: filesystem full: segment %u not created; the NVMe tier evicts "
				"to stay within the segments it has",
				nv->dir, unmade);
		nv->fs_full = 1;
		return -ENOSPC;
	}
	if (rc) {
		__atomic_add_fetch(&nv->io_errors, 1, __ATOMIC_RELAXED);
		log_msg(nv->log, LOG_ERR, "%s: segment %u: cannot create: %s", nv->dir, unmade,
			strerror(-rc));
		return rc;
	}
	nv->fs_full = 0;
	*out = unmade;
	return 0;
}

int nvme_reserve(struct nvme *nv, uint64_t len, struct nvme_loc *loc)
{
	uint64_t span = rec_span(len);
	if (span > nv->seg_bytes - SEG_HDR_BYTES)
		return KVG_ETOOBIG;
	if (nvme_degraded(nv))
		return KVG_EDEGRADED;
	struct segment *s = nv->open_seg != SLOT_NONE ? &nv->segs[nv->open_seg] : NULL;
	if (!s || s->write_off + span > nv->seg_bytes) {
		if (s) {
			s->state = SEG_SEALED;
			if (s->live == 0 && s->inflight == 0) /* every entry already gone */
				nvme_seg_free(nv, (uint32_t)(s - nv->segs));
		}
		nv->open_seg = SLOT_NONE;
		uint32_t i;
		int rc = seg_pick(nv, &i);
		if (rc)
			return rc;
		s = &nv->segs[i];
		s->gen++;
		rc = seg_write_header(nv, i);
		if (rc) {
			__atomic_add_fetch(&nv->io_errors, 1, __ATOMIC_RELAXED);
			log_msg(nv->log, LOG_ERR, "segment %u: header write failed: %s", i,
				strerror(-rc));
			return rc;
		}
		s->state = SEG_OPEN;
		s->write_off = SEG_HDR_BYTES;
		nv->open_seg = i;
	}
	loc->seg = (uint32_t)(s - nv->segs);
	loc->off4k = (uint32_t)(s->write_off / KVG_ALIGN);
	loc->gen = (uint32_t)s->gen;
	s->write_off += span;
	nv->bytes_used += span;
	return 0;
}

void nvme_seg_free(struct nvme *nv, uint32_t seg)
{
	struct segment *s = &nv->segs[seg];
	if (nv->open_seg == seg)
		nv->open_seg = SLOT_NONE;
	uint64_t used = s->write_off > SEG_HDR_BYTES ? s->write_off - SEG_HDR_BYTES : 0;
	nv->bytes_used = nv->bytes_used > used ? nv->bytes_used - used : 0;
	s->state = SEG_FREE;
	s->write_off = SEG_HDR_BYTES;
}

int nvme_seg_evictable(const struct nvme *nv, uint32_t seg)
{
	const struct segment *s = &nv->segs[seg];
	return s->inflight == 0 && nv->open_seg != seg;
}

uint32_t nvme_seg_head(const struct nvme *nv, uint32_t seg)
{
	KVG_ASSERT(seg < nv->nsegs);
	return nv->segs[seg].head;
}

void nvme_seg_set_head(struct nvme *nv, uint32_t seg, uint32_t slot)
{
	KVG_ASSERT(seg < nv->nsegs);
	nv->segs[seg].head = slot;
}

void nvme_seg_live(struct nvme *nv, uint32_t seg, int delta)
{
	KVG_ASSERT(seg < nv->nsegs);
	struct segment *s = &nv->segs[seg];
	KVG_ASSERT(delta > 0 || s->live > 0); /* never below zero */
	s->live += (uint32_t)delta;
}

void nvme_seg_io(struct nvme *nv, uint32_t seg, int delta)
{
	KVG_ASSERT(seg < nv->nsegs);
	struct segment *s = &nv->segs[seg];
	/* (not the segment's state: a checkpoint that passes its checksum may still index a
	 * record in a segment it calls free; the read then fails verification: a miss) */
	KVG_ASSERT(delta > 0 || s->inflight > 0);
	s->inflight += (uint32_t)delta;
}

void nvme_seg_release(struct nvme *nv, uint32_t seg)
{
	const struct segment *s = &nv->segs[seg];
	if (s->live == 0 && s->inflight == 0 && s->state == SEG_SEALED)
		nvme_seg_free(nv, seg);
}

void nvme_stats(struct nvme *nv, struct kvg_tier_stats *ts)
{
	ts->capacity_bytes = (uint64_t)nv->nsegs * nv->seg_bytes;
	ts->checksum_failures = __atomic_load_n(&nv->checksum_failures, __ATOMIC_RELAXED);
	ts->io_errors = __atomic_load_n(&nv->io_errors, __ATOMIC_RELAXED);
	ts->bytes_written = __atomic_load_n(&nv->bytes_written, __ATOMIC_RELAXED);
	ts->degraded = nvme_degraded(nv);
	snprintf(ts->backend, sizeof(ts->backend), "%.6s%s", nv->backend, nv->direct ? "" : "-buf");
}

const char *nvme_backend(const struct nvme *nv)
{
	return nv->backend;
}

int nvme_degraded(struct nvme *nv)
{
	uint64_t until = __atomic_load_n(&nv->degraded_until_us, __ATOMIC_RELAXED);
	if (!until)
		return 0;
	if (nvme_now_us() < until)
		return 1;
	/* rested: try again, with a fresh error budget */
	if (__atomic_compare_exchange_n(&nv->degraded_until_us, &until, 0, 0, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED)) {
		__atomic_store_n(&nv->io_errors_recent, 0, __ATOMIC_RELAXED);
		log_msg(nv->log, LOG_WARN, "%s: retrying the NVMe tier after a rest", nv->dir);
	}
	return 0;
}

static void note_io_error(struct nvme *nv, int err, const char *what)
{
	__atomic_add_fetch(&nv->io_errors, 1, __ATOMIC_RELAXED);
	uint32_t n = __atomic_add_fetch(&nv->io_errors_recent, 1, __ATOMIC_RELAXED);
	log_msg(nv->log, LOG_ERR, "%s: %s failed: %s", nv->dir, what, strerror(-err));
	if (n == nv->io_error_limit) {
		__atomic_store_n(&nv->degraded_until_us, nvme_now_us() + nv->retry_ms * 1000ull,
				 __ATOMIC_RELAXED);
		log_msg(nv->log, LOG_ERR,
			"%s: NVMe tier degraded after %u I/O errors; DRAM keeps serving; retry in "
			"%u ms",
			nv->dir, n, nv->retry_ms);
	}
}

/* ---- op pool ------------------------------------------------------------------------- */

static int op_init(struct nvme *nv, struct nvme_op *op)
{
	memset(op, 0, sizeof(*op));
	op->nv = nv;
	pthread_mutex_init(&op->lock, NULL);
	if (posix_memalign((void **)&op->hdr, KVG_ALIGN, REC_HDR_BYTES) ||
	    posix_memalign((void **)&op->tail, KVG_ALIGN, KVG_ALIGN))
		return -ENOMEM;
	memset(op->hdr, 0, REC_HDR_BYTES);
	memset(op->tail, 0, KVG_ALIGN);
	op->vec_cap = nv->max_vec;
	op->src_cap = (int)nv->max_src;
	op->src = calloc(op->src_cap, sizeof(struct iovec));
	if (!op->src)
		return -ENOMEM;
	op->vec = calloc(op->vec_cap, sizeof(struct iovec));
	op->group_end = calloc(op->vec_cap, sizeof(uint32_t));
	op->group_off = calloc(op->vec_cap, sizeof(uint64_t));
	op->arrived = calloc(REC_PARTS_MAX, 1);
	if (!op->vec || !op->group_end || !op->group_off || !op->arrived)
		return -ENOMEM;
	return 0;
}

static void op_fini(struct nvme_op *op)
{
	free(op->hdr);
	free(op->tail);
	free(op->bounce);
	free(op->vec);
	free(op->src);
	free(op->group_end);
	free(op->group_off);
	free(op->arrived);
	pthread_mutex_destroy(&op->lock);
}

int nvme_pool_init(struct nvme *nv, const struct kvg_config *cfg)
{
	/* a write's pieces: one per arena chunk of the largest block, plus slack */
	uint64_t chunk = cfg->chunk_bytes ? cfg->chunk_bytes : KVG_ALIGN;
	nv->max_src = (uint32_t)(cfg->max_value_bytes / chunk) + 4;
	if (nv->max_src < 16)
		nv->max_src = 16;
	nv->max_vec = (uint32_t)(cfg->max_value_bytes / GROUP_MAX_BYTES) + 8;
	if (nv->max_vec < nv->max_src * 2 + 4)
		nv->max_vec = nv->max_src * 2 + 4;
	if (nv->max_vec < REC_PARTS_MAX + 2)
		nv->max_vec = REC_PARTS_MAX + 2;
	nv->pool_size = cfg->queue_depth * (cfg->io_threads ? cfg->io_threads : 1) + 16;
	nv->pool = calloc(nv->pool_size, sizeof(struct nvme_op));
	if (!nv->pool)
		return -ENOMEM;
	for (uint32_t i = 0; i < nv->pool_size; i++) {
		int rc = op_init(nv, &nv->pool[i]);
		if (rc)
			return rc; /* nvme_pool_fini() frees what was made */
		nv->pool[i].next_free = nv->free_ops;
		nv->free_ops = &nv->pool[i];
	}
	return 0;
}

void nvme_pool_fini(struct nvme *nv)
{
	for (uint32_t i = 0; nv->pool && i < nv->pool_size; i++)
		op_fini(&nv->pool[i]);
	free(nv->pool);
	nv->pool = NULL;
}

struct nvme_op *nvme_op_get(struct nvme *nv)
{
	pthread_mutex_lock(&nv->pool_lock);
	while (!nv->free_ops)
		pthread_cond_wait(&nv->pool_cond, &nv->pool_lock);
	struct nvme_op *op = nv->free_ops;
	nv->free_ops = op->next_free;
	pthread_mutex_unlock(&nv->pool_lock);
	op->write = op->layered = 0;
	op->rec_flags = 0;
	op->parts = 1;
	op->srccnt = 0;
	op->dst = NULL;
	op->part_done = NULL;
	op->done = NULL;
	op->depth = 0;
	return op;
}

void nvme_op_put(struct nvme *nv, struct nvme_op *op)
{
	pthread_mutex_lock(&nv->pool_lock);
	op->next_free = nv->free_ops;
	nv->free_ops = op;
	pthread_cond_signal(&nv->pool_cond);
	pthread_mutex_unlock(&nv->pool_lock);
}

/* ---- transfers ----------------------------------------------------------------------- */

static int vec_add(struct nvme_op *op, void *base, uint64_t len)
{
	if (op->nvec == op->vec_cap)
		return -1;
	op->vec[op->nvec].iov_base = base;
	op->vec[op->nvec].iov_len = len;
	op->nvec++;
	return 0;
}

/* Cuts the vector into I/O groups: whole parts for a layered read, else greedy. */
static void make_groups(struct nvme_op *op, int per_entry)
{
	/* the vector starts with the header block, or (reads) its last hdr_read bytes */
	uint64_t off = (uint64_t)op->loc.off4k * KVG_ALIGN + REC_HDR_BYTES - op->vec[0].iov_len;
	uint64_t bytes = 0;
	uint32_t n = 0;
	op->ngroups = 0;
	op->group_off[0] = off;
	for (uint32_t i = 0; i < op->nvec; i++) {
		uint64_t len = op->vec[i].iov_len;
		int cut = n > 0 && (n == IO_IOV_MAX || bytes + len > GROUP_MAX_BYTES ||
				    (per_entry && i >= 2));
		if (cut) {
			op->group_end[op->ngroups++] = i;
			op->group_off[op->ngroups] = off;
			n = 0;
			bytes = 0;
		}
		n++;
		bytes += len;
		off += len;
	}
	op->group_end[op->ngroups++] = op->nvec;
}

static void group_done(struct io_req *r, ssize_t res);

static void group_issue(struct nvme_op *op, struct io_req *r, uint32_t g)
{
	uint32_t first = g ? op->group_end[g - 1] : 0, last = op->group_end[g];
	r->op = op->write ? IO_WRITE : IO_READ;
	r->fd = op->nv->segs[op->loc.seg].fd;
	r->off = op->group_off[g];
	r->iovcnt = (int)(last - first);
	memcpy(r->iov, &op->vec[first], sizeof(struct iovec) * r->iovcnt);
	r->rw_flags = op->write && op->nv->durable ? RWF_DSYNC : 0;
	r->done = group_done;
	r->arg = op;
	op->req_group[r - op->req] = g;
	op->nv->ops->submit(op->nv->io, r);
}

static uint64_t iov_total(const struct io_req *r)
{
	uint64_t t = 0;
	for (int i = 0; i < r->iovcnt; i++)
		t += r->iov[i].iov_len;
	return t;
}

static void iov_advance(struct io_req *r, uint64_t n)
{
	r->off += n;
	while (n && r->iovcnt) {
		if (n >= r->iov[0].iov_len) {
			n -= r->iov[0].iov_len;
			memmove(r->iov, r->iov + 1, sizeof(struct iovec) * (r->iovcnt - 1));
			r->iovcnt--;
		} else {
			r->iov[0].iov_base = (uint8_t *)r->iov[0].iov_base + n;
			r->iov[0].iov_len -= n;
			n = 0;
		}
	}
}

static int check_header(struct nvme_op *op)
{
	struct rec_hdr h;
	if (rec_hdr_check_tail(op->hdr + REC_HDR_OFF, &h))
		return KVG_ECORRUPT;
	if (memcmp(h.key, op->key.bytes, KVG_KEY_BYTES) || (uint32_t)h.generation != op->loc.gen ||
	    h.payload_len != op->len || (h.flags & REC_F_TOMBSTONE) ||
	    memcmp(h.grid_id, op->nv->grid_id, 16))
		return KVG_ECORRUPT;
	if (op->layered && h.parts != op->parts)
		return KVG_ECORRUPT; /* written under another layout: cannot verify by layer */
	/* a layered read verifies part by part against the stored checksums, which it read
	 * (hdr_read covers them); a whole read does not need them (rec_payload_verify) */
	if (op->layered &&
	    (rec_tail_bytes(h.parts) > op->hdr_read || rec_parts_check(op->hdr + REC_HDR_OFF, &h)))
		return KVG_ECORRUPT;
	op->parts = h.parts;
	return 0;
}

/* Part p against the header's checksums, wherever its bytes landed (buffer, then tail).
 * Only after check_header() passed: the header block's fields are then trusted. */
static int verify_part(struct nvme_op *op, uint32_t p)
{
	uint64_t main_len = op->len - op->tail_bytes;
	struct iovec payload[2] = {
	    {op->read_into, main_len},
	    {op->tail, op->tail_bytes},
	};
	const uint8_t *hraw = op->hdr + REC_HDR_OFF;
	return rec_part_verify(hraw, (const struct rec_hdr *)hraw, p, payload, 2);
}

static int verify_all(struct nvme_op *op)
{
	uint64_t main_len = op->len - op->tail_bytes;
	struct iovec payload[2] = {
	    {op->read_into, main_len},
	    {op->tail, op->tail_bytes},
	};
	return rec_payload_verify((const struct rec_hdr *)(op->hdr + REC_HDR_OFF), payload, 2);
}

/* Copies the payload's last partial block, and the bounce buffer, to the destination. */
static void land(struct nvme_op *op)
{
	uint64_t main_len = op->len - op->tail_bytes;
	if (op->read_into != op->dst && main_len)
		memcpy(op->dst, op->read_into, main_len);
	if (op->tail_bytes)
		memcpy((uint8_t *)op->dst + main_len, op->tail, op->tail_bytes);
}

/* Layered read: report every part that has arrived and verifies, in order.  op->lock held. */
static void advance_parts(struct nvme_op *op, uint32_t *from, uint32_t *to)
{
	*from = op->parts_verified;
	while (op->status == 0 && op->parts_verified < op->parts &&
	       op->arrived[op->parts_verified] == 1) {
		uint32_t p = op->parts_verified;
		if (verify_part(op, p)) {
			op->status = KVG_ECORRUPT;
			break;
		}
		op->arrived[p] = 2;
		op->parts_verified++;
	}
	*to = op->parts_verified;
}

static void op_finish(struct nvme_op *op)
{
	struct nvme *nv = op->nv;
	int st = op->status;
	if (!op->write && st == 0) {
		if (!op->layered) {
			st = op->hdr_ok ? verify_all(op) : KVG_ECORRUPT;
		}
		if (st == 0)
			land(op);
	}
	if (st == KVG_ECORRUPT) {
		__atomic_add_fetch(&nv->checksum_failures, 1, __ATOMIC_RELAXED);
		char hex[65];
		kvg_key_hex(&op->key, hex);
		log_msg(nv->log, LOG_WARN,
			"%s: block %.16s at segment %u offset %llu failed "
			"verification; served as a miss",
			nv->dir, hex, op->loc.seg, (unsigned long long)op->loc.off4k * KVG_ALIGN);
	}
	if (st == 0 && op->write) /* reads are counted by the grid, per tier */
		__atomic_add_fetch(&nv->bytes_written, rec_span(op->len), __ATOMIC_RELAXED);
	op->done(op, st);
}

static void group_done(struct io_req *r, ssize_t res)
{
	struct nvme_op *op = r->arg;
	struct nvme *nv = op->nv;
	uint32_t g = op->req_group[r - op->req];
	if (res == -EINTR || res == -EAGAIN) {
		nv->ops->submit(nv->io, r);
		return;
	}
	if (res > 0 && (uint64_t)res < iov_total(r)) { /* short: move on by what was done */
		iov_advance(r, (uint64_t)res);
		nv->ops->submit(nv->io, r);
		return;
	}
	if (res == 0 && iov_total(r))
		res = -EIO; /* end of file inside a record */
	if (res < 0)
		note_io_error(nv, (int)res, op->write ? "write" : "read");

	uint32_t from = 0, to = 0;
	pthread_mutex_lock(&op->lock);
	if (res < 0 && op->status == 0)
		op->status = (int)res;
	op->groups_done++;
	op->inflight--;
	if (!op->write && res >= 0) {
		if (g == 0) {
			op->hdr_ok = check_header(op) == 0;
			if (!op->hdr_ok)
				op->status = KVG_ECORRUPT;
		}
		if (op->layered) {
			op->arrived[g] = 1;
			if (op->hdr_ok)
				advance_parts(op, &from, &to);
		}
	}
	int more = op->status == 0 && op->next_group < op->ngroups;
	uint32_t next = more ? op->next_group++ : 0;
	if (more)
		op->inflight++;
	int finished = op->inflight == 0 && (op->groups_done == op->ngroups || op->status);
	/* part callbacks run unlocked; the op must not finish (and its request complete and
	 * be reused) while another thread is still inside one */
	if (to > from)
		op->cb_running++;
	if (finished && op->cb_running) {
		op->finish_deferred = 1;
		finished = 0;
	}
	pthread_mutex_unlock(&op->lock);

	for (uint32_t p = from; p < to; p++)
		if (op->part_done)
			op->part_done(op, p);
	if (to > from) {
		pthread_mutex_lock(&op->lock);
		int fin = --op->cb_running == 0 && op->finish_deferred;
		if (fin)
			op->finish_deferred = 0;
		pthread_mutex_unlock(&op->lock);
		if (fin)
			finished = 1;
	}
	if (more)
		group_issue(op, r, next);
	else if (finished)
		op_finish(op);
}

static int ensure_bounce(struct nvme_op *op, uint64_t len)
{
	if (op->bounce_cap >= len)
		return 0;
	free(op->bounce);
	op->bounce = NULL;
	op->bounce_cap = 0;
	uint64_t cap = (len + (1 << 20) - 1) & ~(uint64_t)((1 << 20) - 1);
	if (posix_memalign((void **)&op->bounce, KVG_ALIGN, cap))
		return -ENOMEM;
	op->bounce_cap = cap;
	return 0;
}

static int build_write(struct nvme_op *op)
{
	struct rec_hdr *h = (struct rec_hdr *)(op->hdr + REC_HDR_OFF);
	memset(op->hdr, 0, REC_HDR_BYTES);
	h->magic = REC_MAGIC;
	h->format = KVG_RECORD_FORMAT;
	h->flags = op->rec_flags;
	h->generation = op->nv->segs[op->loc.seg].gen;
	h->seq = __atomic_fetch_add(&op->nv->seq, 1, __ATOMIC_RELAXED);
	memcpy(h->key, op->key.bytes, KVG_KEY_BYTES);
	h->payload_len = op->len;
	memcpy(h->grid_id, op->nv->grid_id, 16);
	h->depth = op->depth;
	uint32_t parts = op->parts;
	if (parts < 1 || parts > REC_PARTS_MAX || op->len % parts)
		parts = 1;
	h->parts = parts;

	/* payload pieces must be aligned: if any is not, gather everything in the bounce */
	int aligned = 1;
	for (int i = 0; i < op->srccnt; i++)
		if (((uintptr_t)op->src[i].iov_base % KVG_ALIGN) ||
		    (i + 1 < op->srccnt && op->src[i].iov_len % KVG_ALIGN))
			aligned = 0;
	if (!aligned && op->len) {
		if (ensure_bounce(op, op->len))
			return -ENOMEM;
		uint64_t o = 0;
		for (int i = 0; i < op->srccnt; i++) {
			memcpy(op->bounce + o, op->src[i].iov_base, op->src[i].iov_len);
			o += op->src[i].iov_len;
		}
		op->src[0].iov_base = op->bounce;
		op->src[0].iov_len = op->len;
		op->srccnt = 1;
	}
	rec_hdr_seal_payload(h, op->src, op->srccnt); /* checksums of the logical payload */

	op->nvec = 0;
	vec_add(op, op->hdr, REC_HDR_BYTES);
	uint64_t left = op->len;
	for (int i = 0; i < op->srccnt && left; i++) {
		uint64_t len = op->src[i].iov_len < left ? op->src[i].iov_len : left;
		uint64_t whole = len & ~(uint64_t)(KVG_ALIGN - 1);
		if (whole && vec_add(op, op->src[i].iov_base, whole))
			return -E2BIG;
		if (len > whole) { /* the last partial 4 KiB goes through the zeroed tail block */
			memset(op->tail, 0, KVG_ALIGN);
			memcpy(op->tail, (uint8_t *)op->src[i].iov_base + whole, len - whole);
			if (vec_add(op, op->tail, KVG_ALIGN))
				return -E2BIG;
		}
		left -= len;
	}
	make_groups(op, 0);
	return 0;
}

static int build_read(struct nvme_op *op)
{
	op->read_into = op->dst;
	op->tail_bytes = op->len % KVG_ALIGN;
	if ((uintptr_t)op->dst % KVG_ALIGN && op->len >= KVG_ALIGN) {
		if (ensure_bounce(op, op->len))
			return -ENOMEM;
		op->read_into = op->bounce;
	}
	uint64_t main_len = op->len - op->tail_bytes;
	uint32_t parts = op->layered ? op->parts : 1;
	if (parts < 1 || parts > REC_PARTS_MAX || op->len % parts || (op->len / parts) % KVG_ALIGN)
		parts = 1;
	/* the header block's end: the fixed header, and the part checksums a layered read
	 * verifies by, in whole O_DIRECT units of the file */
	uint32_t unit = op->nv->segs[op->loc.seg].dio_align;
	if (!unit)
		unit = KVG_ALIGN;
	op->hdr_read = (rec_tail_bytes(parts) + unit - 1) & ~(unit - 1);
	op->nvec = 0;
	vec_add(op, op->hdr + REC_HDR_BYTES - op->hdr_read, op->hdr_read);
	if (parts > 1) {
		uint64_t pb = op->len / parts;
		for (uint32_t p = 0; p < parts; p++)
			vec_add(op, (uint8_t *)op->read_into + p * pb, pb);
	} else {
		for (uint64_t o = 0; o < main_len; o += GROUP_MAX_BYTES) {
			uint64_t k =
			    main_len - o < GROUP_MAX_BYTES ? main_len - o : GROUP_MAX_BYTES;
			if (vec_add(op, (uint8_t *)op->read_into + o, k))
				return -E2BIG;
		}
		if (op->tail_bytes)
			vec_add(op, op->tail, KVG_ALIGN);
		op->layered = 0; /* verified whole; reported as one part */
	}
	op->parts = parts;
	make_groups(op, parts > 1);
	memset(op->arrived, 0, parts);
	return 0;
}

void nvme_submit(struct nvme *nv, struct nvme_op *op)
{
	op->status = 0;
	op->hdr_ok = 0;
	op->groups_done = op->next_group = op->inflight = 0;
	op->parts_verified = 0;
	op->tail_bytes = 0;
	op->cb_running = 0;
	op->finish_deferred = 0;
	int rc = op->write ? build_write(op) : build_read(op);
	if (!rc && nv->segs[op->loc.seg].fd < 0)
		rc = KVG_ECORRUPT; /* a segment never made holds nothing: a miss */
	if (rc) {
		op->status = rc;
		op->done(op, rc);
		return;
	}
	uint32_t win = op->ngroups < 8 ? op->ngroups : 8;
	pthread_mutex_lock(&op->lock);
	op->next_group = win;
	op->inflight = win;
	pthread_mutex_unlock(&op->lock);
	for (uint32_t g = 0; g < win; g++)
		group_issue(op, &op->req[g], g);
}
