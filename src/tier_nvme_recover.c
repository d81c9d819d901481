/*
 * tier_nvme_recover.c - opening the NVMe tier, recovering its index, and closing it.
 *
 * Open takes the directory (creating it, and holding dir/LOCK so that one grid at a time
 * owns it), its grid id (dir/grid.id, made at first use: records of another grid are never
 * read as ours), the segment files, an I/O backend and the op pool.  Then it recovers: from
 * index.ckpt when a clean close left one that agrees with every segment header
 * (tier_nvme_ckpt.c), else by scanning each segment's record headers with record.c's scanner
 * -- and deletes the checkpoint before any new write, so that a crash always falls back to
 * the scan.  Close stops the I/O, makes the segments durable and writes the checkpoint.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "index.h"
#include "path.h"
#include "tier_nvme_int.h"

#define SCAN_WINDOW_BYTES (1u << 20) /* recovery reads segments a megabyte at a time */

static int grid_id_load(struct nvme *nv, char *err, size_t err_len)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/grid.id", nv->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, nv->grid_id, 16);
		close(fd);
		if (n == 16)
			return 0;
		log_msg(nv->log, LOG_WARN, "%s: grid.id unreadable; treating the directory as new",
			nv->dir);
	}
	if (getrandom(nv->grid_id, 16, 0) != 16)
		return err_set(err, err_len, -EIO, "%s: no random bytes for the grid id", nv->dir);
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s/grid.id.tmp", nv->dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, nv->grid_id, 16) != 16 || fsync(fd) < 0) {
		int e = -errno;
		if (fd >= 0)
			close(fd);
		return err_set(err, err_len, e ? e : -EIO, "%s: cannot write grid.id: %s", nv->dir,
			       strerror(e ? -e : EIO));
	}
	close(fd);
	if (rename(tmp, path) < 0)
		return err_set(err, err_len, -errno, "%s: cannot write grid.id: %s", nv->dir,
			       strerror(errno));
	fsync(nv->dir_fd);
	return 0;
}

/*
 * Walks one segment's records (record.c's scanner, headers only), reporting the good ones;
 * returns how many.  Appending resumes where the last good record ends.
 */
static uint64_t seg_scan(struct nvme *nv, uint32_t i,
			 void (*cb)(void *, const struct nvme_recovered *), void *ctx,
			 uint64_t *bad)
{
	struct segment *s = &nv->segs[i];
	struct rec_scan sc;
	uint8_t *buf;
	if (posix_memalign((void **)&buf, KVG_ALIGN, SCAN_WINDOW_BYTES))
		return 0;
	rec_scan_init(&sc, REC_SCAN_INDEX, rec_read_fd, &s->fd, nv->seg_bytes, s->gen, nv->grid_id,
		      buf, SCAN_WINDOW_BYTES);
	uint64_t found = 0, end = SEG_HDR_BYTES;
	int item;
	/* a read error ends the log like the end of the file: what follows is not indexed */
	while ((item = rec_scan_next(&sc)) > 0) {
		if (item == REC_ITEM_GAP) { /* damage with good records after it */
			(*bad)++;
			continue;
		}
		assert(item == REC_ITEM_RECORD); /* INDEX mode reports no damaged records */
		struct nvme_recovered r = {.hdr = sc.hdr};
		r.loc.seg = i;
		r.loc.off4k = (uint32_t)(sc.off / KVG_ALIGN);
		r.loc.gen = (uint32_t)s->gen;
		cb(ctx, &r);
		if (sc.hdr.seq >= nv->seq)
			nv->seq = sc.hdr.seq + 1;
		found++;
		end = sc.off + sc.bytes;
	}
	free(buf);
	s->write_off = end;
	return found;
}

static int pick_backend(struct nvme *nv, const struct kvg_config *cfg, char *err, size_t len)
{
	const char *name = "psync";
	switch (cfg->io_backend) {
	case KVG_IO_URING:
		name = "uring";
		break;
	case KVG_IO_PSYNC:
		name = "psync";
		break;
	case KVG_IO_FAULT:
		name = "fault";
		break;
	default:
		name = io_uring_usable() ? "uring" : "psync";
		break;
	}
	nv->ops = io_find(name);
	if (!nv->ops)
		return err_set(err, len, KVG_ECONFIG, "io_backend: '%s' is not built in", name);
	struct io_config ic = {
	    .queue_depth = cfg->queue_depth,
	    .threads = cfg->io_threads,
	    .fault_plan = cfg->fault_plan,
	    .fault_inner = io_uring_usable() ? "uring" : "psync",
	};
	if (!strcmp(name, "psync") && !ic.threads)
		ic.threads = cfg->queue_depth < 16 ? cfg->queue_depth : 16;
	int rc = nv->ops->create(&ic, &nv->io);
	if (rc)
		return err_set(err, len, rc, "io backend %s: %s", name, strerror(-rc));
	snprintf(nv->backend, sizeof(nv->backend), "%s", name);
	if (cfg->io_backend == KVG_IO_AUTO && strcmp(name, "uring"))
		log_msg(nv->log, LOG_WARN, "io_uring unavailable here; using %s", name);
	return 0;
}

/* An open that fails leaves the disk as it found it: a directory it made goes again, with
 * the LOCK and grid.id it put there.  A directory that existed keeps its files. */
static void undo_dir(struct nvme *nv)
{
	if (!nv->dir_made)
		return;
	char path[4200];
	snprintf(path, sizeof(path), "%s/grid.id.tmp", nv->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/grid.id", nv->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/LOCK", nv->dir);
	unlink(path);
	rmdir(nv->dir); /* only if empty: anything else put there stays */
}

static int open_dir(struct nvme *nv, char *err, size_t err_len)
{
	struct stat st;
	nv->dir_made = stat(nv->dir, &st) < 0 && errno == ENOENT;
	int rc = mkdir_parents(nv->dir);
	if (rc)
		return err_set(err, err_len, rc, "dir %s: cannot create: %s", nv->dir,
			       strerror(-rc));
	nv->dir_fd = open(nv->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (nv->dir_fd < 0)
		return err_set(err, err_len, -errno, "dir %s: %s", nv->dir, strerror(errno));
	if (access(nv->dir, W_OK) < 0)
		return err_set(err, err_len, -errno, "dir %s: not writable: %s", nv->dir,
			       strerror(errno));
	char path[4200];
	snprintf(path, sizeof(path), "%s/LOCK", nv->dir);
	nv->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (nv->lock_fd < 0)
		return err_set(err, err_len, -errno, "dir %s: cannot create LOCK: %s", nv->dir,
			       strerror(errno));
	if (flock(nv->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return err_set(err, err_len, -EBUSY, "dir %s: in use by another grid (LOCK held)",
			       nv->dir);
	return 0;
}

/*
 * Refuses a directory whose segments were written in another record format (an older
 * kvgrid's, say): recovery would not read them and would reuse them as free, so the open
 * fails instead, changing nothing, and names the directory and both formats.
 */
static int check_format(struct nvme *nv, char *err, size_t err_len)
{
	uint8_t *buf;
	if (posix_memalign((void **)&buf, KVG_ALIGN, SEG_HDR_BYTES))
		return -ENOMEM;
	int rc = 0;
	for (uint32_t i = 0; i < nv->nsegs && !rc; i++) {
		uint32_t fmt;
		if (nv->segs[i].fd < 0 ||
		    pread(nv->segs[i].fd, buf, SEG_HDR_BYTES, 0) != SEG_HDR_BYTES ||
		    seg_hdr_format(buf, SEG_HDR_BYTES, &fmt) || fmt == KVG_RECORD_FORMAT)
			continue;
		rc = err_set(err, err_len, KVG_ECONFIG,
			     "dir %s: segments are in record format %u, this kvgrid reads format "
			     "%u; nothing was changed: open it with the kvgrid that wrote it, or "
			     "use a new directory (the NVMe tier is a cache)",
			     nv->dir, fmt, KVG_RECORD_FORMAT);
	}
	free(buf);
	return rc;
}

static int recover(struct nvme *nv, void (*cb)(void *, const struct nvme_recovered *), void *ctx,
		   uint64_t *blocks)
{
	uint64_t n = 0, bad = 0;
	int rc = nvme_ckpt_load(nv, cb, ctx, &n);
	if (rc == 0) {
		log_msg(nv->log, LOG_INFO, "%s: index loaded from checkpoint (%llu blocks)",
			nv->dir, (unsigned long long)n);
	} else {
		if (rc != -ENOENT)
			log_msg(nv->log, LOG_WARN, "%s: checkpoint unusable; scanning segments",
				nv->dir);
		for (uint32_t i = 0; i < nv->nsegs; i++) {
			struct segment *s = &nv->segs[i];
			uint64_t gen;
			if (nvme_seg_read_header(nv, i, &gen)) {
				s->state = SEG_FREE;
				s->write_off = SEG_HDR_BYTES;
				continue; /* new, foreign or damaged: reused with a new generation
					   */
			}
			s->gen = gen;
			uint64_t found = seg_scan(nv, i, cb, ctx, &bad);
			s->state = found ? SEG_SEALED : SEG_FREE;
			n += found;
		}
		if (bad)
			log_msg(nv->log, LOG_WARN,
				"%s: %llu damaged records skipped while scanning", nv->dir,
				(unsigned long long)bad);
	}
	/* from here on a crash must rescan: the checkpoint no longer describes the disk */
	nvme_ckpt_drop(nv);
	*blocks = n;
	return 0;
}

int nvme_open(const struct kvg_config *cfg, struct log *log, struct nvme **out,
	      void (*cb)(void *ctx, const struct nvme_recovered *r), void *ctx, char *err,
	      size_t err_len)
{
	struct nvme *nv = calloc(1, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	snprintf(nv->dir, sizeof(nv->dir), "%s", cfg->dir);
	nv->log = log;
	nv->dir_fd = nv->lock_fd = -1;
	nv->direct = 1;
	nv->durable = cfg->durability == KVG_DURABILITY_DURABLE;
	nv->seg_bytes = cfg->segment_bytes & ~(uint64_t)(KVG_ALIGN - 1);
	nv->nsegs = (uint32_t)(cfg->nvme_bytes / nv->seg_bytes);
	nv->io_error_limit = cfg->io_error_limit;
	nv->retry_ms = cfg->degraded_retry_ms;
	nv->open_seg = SLOT_NONE;
	pthread_mutex_init(&nv->pool_lock, NULL);
	pthread_cond_init(&nv->pool_cond, NULL);
	int rc;
	if (nv->nsegs < 2) {
		rc = err_set(err, err_len, KVG_ECONFIG,
			     "nvme_bytes must hold at least two segments of segment_bytes");
		goto out_free;
	}
	if ((rc = open_dir(nv, err, err_len)))
		goto out_free;
	if ((rc = grid_id_load(nv, err, err_len)))
		goto out_free;
	nv->segs = calloc(nv->nsegs, sizeof(struct segment));
	if (!nv->segs) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (uint32_t i = 0; i < nv->nsegs; i++)
		nv->segs[i].fd = -1;
	/* the segment files there are; the others are made when first written to */
	for (uint32_t i = 0; i < nv->nsegs; i++) {
		nv->segs[i].head = SLOT_NONE;
		nv->segs[i].write_off = SEG_HDR_BYTES;
		rc = nvme_seg_open_file(nv, i, 0);
		if (rc && rc != -ENOENT) {
			err_set(err, err_len, rc, "dir %s: cannot open segment %u: %s", nv->dir, i,
				strerror(-rc));
			goto out_free;
		}
	}
	if ((rc = check_format(nv, err, err_len)))
		goto out_free;
	if ((rc = pick_backend(nv, cfg, err, err_len)))
		goto out_free;
	if ((rc = nvme_pool_init(nv, cfg)))
		goto out_free;
	*out = nv;
	uint64_t blocks;
	recover(nv, cb, ctx, &blocks);
	return 0;
out_free:
	if (nv->lock_fd >= 0 || nv->dir_fd >= 0)
		undo_dir(nv);
	nvme_close(nv, NULL, NULL);
	return rc;
}

void nvme_close(struct nvme *nv, int (*next)(void *ctx, struct nvme_ckpt_ent *e), void *ctx)
{
	if (!nv)
		return;
	if (nv->io)
		nv->ops->destroy(nv->io);
	for (uint32_t i = 0; nv->segs && i < nv->nsegs; i++)
		if (nv->segs[i].fd >= 0 && nv->durable)
			fdatasync(nv->segs[i].fd);
	if (next && nv->io) {
		int rc = nvme_ckpt_write(nv, next, ctx);
		if (rc)
			log_msg(nv->log, LOG_WARN,
				"%s: checkpoint not written (%s); next open scans", nv->dir,
				strerror(-rc));
	}
	for (uint32_t i = 0; nv->segs && i < nv->nsegs; i++)
		if (nv->segs[i].fd >= 0)
			close(nv->segs[i].fd);
	nvme_pool_fini(nv);
	free(nv->segs);
	if (nv->lock_fd >= 0)
		close(nv->lock_fd);
	if (nv->dir_fd >= 0)
		close(nv->dir_fd);
	pthread_mutex_destroy(&nv->pool_lock);
	pthread_cond_destroy(&nv->pool_cond);
	free(nv);
}
