/*
 * tier_nvme_space.c - how much disk the NVMe tier may take, decided before anything of it is
 * created.
 *
 * Segment files are made as the tier first writes to them (tier_nvme.c), so the capacity is
 * a bound, not a reservation.  It must still be one the filesystem can honour: the room the
 * grid has is the filesystem's free space plus what its own segment files already hold.
 *   - nvme_bytes set: refused (one line naming the free space and the setting) when it is
 *     larger than that room; nothing on disk is touched.
 *   - nvme_bytes 0 (the default): NVME_AUTO_SHARE of that room, at most NVME_AUTO_MAX_BYTES,
 *     at least two segments, never more than the room -- except that a directory that
 *     holds segments keeps them (and two at least) however full the filesystem: it must
 *     open again and serve what it holds.  An empty one refused when two do not fit.
 * The result is rounded down to whole segments.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "err.h"
#include "tier_nvme.h"

/* "1.9 GiB", "768 MiB", "40 KiB": for messages only. */
static const char *fmt_bytes(uint64_t b, char *buf, size_t len)
{
	static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0 || v >= 100 || v == (double)(uint64_t)v)
		snprintf(buf, len, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

/* Free space (for an unprivileged writer) of the filesystem dir is on, or would be on: the
 * nearest ancestor that exists is asked when dir does not exist yet.  0 or -errno. */
static int fs_free(const char *dir, uint64_t *free_bytes)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s", dir);
	for (;;) {
		struct statvfs v;
		if (statvfs(p, &v) == 0) {
			*free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
			return 0;
		}
		if (errno != ENOENT)
			return -errno;
		char *slash = strrchr(p, '/');
		while (slash && slash > p && slash[1] == 0) { /* "a/b/" */
			*slash = 0;
			slash = strrchr(p, '/');
		}
		if (!slash)
			snprintf(p, sizeof(p), ".");
		else if (slash == p)
			p[1] = 0; /* "/" */
		else
			*slash = 0;
	}
}

/* What the segment files in dir hold on disk, and the extent of their numbers
 * ((highest + 1) segments).  A missing dir holds nothing. */
static void segs_held(const char *dir, uint64_t *held_bytes, uint32_t *extent)
{
	*held_bytes = 0;
	*extent = 0;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		unsigned id;
		char tail[8];
		struct stat st;
		if (sscanf(e->d_name, "seg-%8u.kv%7s", &id, tail) != 2 || strcmp(tail, "g") ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		*held_bytes += (uint64_t)st.st_blocks * 512;
		if (id + 1 > *extent)
			*extent = id + 1;
	}
	closedir(d);
}

int nvme_space(const struct kvg_config *cfg, struct nvme_space *sp, char *err, size_t err_len)
{
	uint64_t seg = cfg->segment_bytes & ~(uint64_t)(KVG_ALIGN - 1);
	uint32_t extent;
	char a[32], b[32], c[32];
	memset(sp, 0, sizeof(*sp));
	int rc = fs_free(cfg->dir, &sp->free_bytes);
	if (rc)
		return err_set(err, err_len, rc,
			       "dir %s: cannot read its filesystem's free space: %s", cfg->dir,
			       strerror(-rc));
	segs_held(cfg->dir, &sp->held_bytes, &extent);
	uint64_t room = sp->free_bytes + sp->held_bytes;
	uint64_t fit = seg ? room / seg * seg : 0; /* the most that can be had, whole segments */
	if (cfg->nvme_bytes) {
		if (cfg->nvme_bytes > room)
			return err_set(err, err_len, KVG_ECONFIG,
				       "dir %s: nvme_bytes %s exceeds the %s free on its filesystem"
				       "%s%s%s; set nvme_bytes (--nvme) to at most %lluM",
				       cfg->dir, fmt_bytes(cfg->nvme_bytes, a, sizeof(a)),
				       fmt_bytes(sp->free_bytes, b, sizeof(b)),
				       sp->held_bytes ? " (plus " : "",
				       sp->held_bytes ? fmt_bytes(sp->held_bytes, c, sizeof(c))
						      : "",
				       sp->held_bytes ? " in its segments)" : "",
				       (unsigned long long)(fit >> 20));
		sp->capacity_bytes = cfg->nvme_bytes;
		return 0;
	}
	sp->automatic = 1;
	uint64_t cap = room / NVME_AUTO_SHARE;
	if (cap < 2 * seg)
		cap = 2 * seg;
	if (cap > NVME_AUTO_MAX_BYTES)
		cap = NVME_AUTO_MAX_BYTES;
	cap = seg ? cap / seg * seg : 0;
	if (cap > fit)
		cap = fit;
	if (cap < (uint64_t)extent * seg)
		cap = (uint64_t)extent * seg; /* what is on disk stays indexable */
	if (cap < 2 * seg && extent)
		cap = 2 * seg; /* a full filesystem: the second is made only if room appears */
	if (cap < 2 * seg)
		return err_set(err, err_len, KVG_ECONFIG,
			       "dir %s: only %s free on its filesystem, less than the NVMe tier's "
			       "two segments of %s; free space or set segment_bytes smaller",
			       cfg->dir, fmt_bytes(sp->free_bytes, a, sizeof(a)),
			       fmt_bytes(seg, b, sizeof(b)));
	sp->capacity_bytes = cap;
	return 0;
}
