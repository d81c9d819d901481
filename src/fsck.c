/*
 * fsck.c - see fsck.h.
 *
 * A segment's records are walked by the same scanner the tier's recovery uses (record.c, in
 * its VERIFY mode: every payload and part checksum is checked too); this file keeps only
 * fsck's policy: the segment header's verdict, counting and reporting what the scanner finds,
 * the newest record per key, and the repairs.
 *
 * Payloads are hashed as they stream through one scratch buffer, so fsck's memory does not
 * grow with block size; only the table of keys (newest sequence number per key) grows with
 * the number of blocks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsck.h"

#define FSCK_BUF_BYTES (1u << 20)

/* ---- one segment ---------------------------------------------------------------------- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void visit_corrupt(const struct fsck_visit *v, struct fsck_report *rep, uint64_t off,
			  uint64_t bytes, const char *why)
{
	rep->corrupt++;
	rep->checked++;
	rep->bytes_corrupt += bytes;
	if (v && v->corrupt)
		v->corrupt(v->ctx, off, bytes, why);
}

static int all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

/*
 * A segment whose header is all zeros was created but never used -- unless records follow,
 * in which case its header was wiped out: the tier would reuse it and lose them.
 */
static int seg_unused(fsck_read_fn rd, void *rctx, uint64_t file_bytes, const uint8_t *grid_id,
		      uint8_t *chunk, size_t chunk_len, struct fsck_report *rep, const char **why)
{
	for (uint64_t off = SEG_HDR_BYTES; off < file_bytes; off += chunk_len) {
		ssize_t n = rd(rctx, chunk, chunk_len, off);
		if (n < 0)
			return (int)n;
		rep->bytes_checked += (uint64_t)n;
		for (size_t k = 0; k + REC_HDR_BYTES <= (size_t)n; k += KVG_ALIGN) {
			struct rec_hdr h;
			if (!rec_blk_check(chunk + k, &h) &&
			    (!grid_id || !memcmp(h.grid_id, grid_id, 16))) {
				*why = "wiped segment header in front of records";
				return KVG_ECORRUPT;
			}
		}
		if ((size_t)n < chunk_len)
			break;
	}
	rep->segments_unused++;
	return FSCK_SEG_UNUSED;
}

/* Why the segment header in blk (n bytes read) cannot be trusted, or NULL; fills *sh. */
static const char *seg_header_verdict(const uint8_t *blk, size_t n, const uint8_t *grid_id,
				      uint32_t seg_id, struct seg_hdr *sh)
{
	uint32_t fmt;
	if (n >= SEG_HDR_BYTES && !seg_hdr_format(blk, n, &fmt) && fmt != KVG_RECORD_FORMAT)
		return "segment of another record format";
	if (n < SEG_HDR_BYTES || seg_hdr_check(blk, n, sh))
		return "unreadable segment header";
	if (grid_id && memcmp(sh->grid_id, grid_id, 16))
		return "segment of another grid";
	if (seg_id != UINT32_MAX && sh->seg_id != seg_id)
		return "segment id differs from its file name";
	if (sh->seg_bytes < 2 * KVG_ALIGN || sh->seg_bytes % KVG_ALIGN)
		return "impossible segment size";
	return NULL;
}

int fsck_segment(fsck_read_fn rd, void *rctx, uint64_t file_bytes, const uint8_t *grid_id,
		 uint32_t seg_id, struct seg_hdr *sh, const struct fsck_visit *v,
		 struct fsck_report *rep, void *buf, size_t buf_len, const char **why)
{
	uint8_t *blk = buf, *chunk = (uint8_t *)buf + KVG_ALIGN;
	size_t chunk_len = buf_len - KVG_ALIGN;
	struct rec_scan sc;
	uint64_t end;
	int item;
	ssize_t n;

	*why = NULL;
	rep->segments++;
	n = rd(rctx, blk, SEG_HDR_BYTES, 0);
	if (n < 0)
		return (int)n;
	rep->bytes_checked += (uint64_t)n;
	if (n == (ssize_t)SEG_HDR_BYTES && all_zero(blk, SEG_HDR_BYTES))
		return seg_unused(rd, rctx, file_bytes, grid_id, chunk, chunk_len, rep, why);
	if ((*why = seg_header_verdict(blk, (size_t)n, grid_id, seg_id, sh)))
		return KVG_ECORRUPT;

	/* the records: the scanner judges, fsck counts and reports */
	end = min_u64(file_bytes, sh->seg_bytes);
	rec_scan_init(&sc, REC_SCAN_VERIFY, rd, rctx, end, sh->generation, grid_id, buf, buf_len);
	while ((item = rec_scan_next(&sc)) > 0) {
		if (item != REC_ITEM_RECORD) {
			visit_corrupt(v, rep, sc.off, sc.bytes, sc.why);
			continue;
		}
		rep->good++;
		rep->checked++;
		if (v && v->good)
			v->good(v->ctx, &sc.hdr, sc.off);
	}
	rep->bytes_checked += sc.bytes_read;
	rep->stale += sc.stale;
	if (item < 0)
		return item;
	if (sc.why) /* the log ends in the remains of a record */
		visit_corrupt(v, rep, sc.off, sc.bytes, sc.why);
	if (file_bytes != sh->seg_bytes) {
		rep->segments_bad++;
		visit_corrupt(v, rep, end,
			      file_bytes > end ? file_bytes - end : sh->seg_bytes - end,
			      file_bytes < sh->seg_bytes ? "truncated segment"
							 : "segment longer than its header says");
	}
	return 0;
}

/* ---- the table of keys: newest record per key ------------------------------------------ */

struct key_ent {
	uint8_t key[KVG_KEY_BYTES];
	uint64_t seq;
	uint64_t len;
	uint8_t used;
	uint8_t tomb;
};

struct key_table {
	struct key_ent *ents;
	size_t cap; /* a power of two */
	size_t count;
};

static int kt_grow(struct key_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024;
	struct key_ent *ents = calloc(cap, sizeof(*ents));
	if (!ents)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->ents[i].used)
			continue;
		uint64_t hv;
		memcpy(&hv, t->ents[i].key, 8);
		size_t j = (size_t)hv & (cap - 1);
		while (ents[j].used)
			j = (j + 1) & (cap - 1);
		ents[j] = t->ents[i];
	}
	free(t->ents);
	t->ents = ents;
	t->cap = cap;
	return 0;
}

/* Adds a good record; counts the one of the pair that is not newest as orphaned. */
static int kt_add(struct key_table *t, const struct rec_hdr *h, struct fsck_report *rep)
{
	uint64_t hv;
	if (t->count * 2 >= t->cap && kt_grow(t))
		return -ENOMEM;
	memcpy(&hv, h->key, 8);
	size_t j = (size_t)hv & (t->cap - 1);
	while (t->ents[j].used && memcmp(t->ents[j].key, h->key, KVG_KEY_BYTES))
		j = (j + 1) & (t->cap - 1);
	struct key_ent *e = &t->ents[j];
	if (e->used) {
		rep->orphaned++;
		if (h->seq <= e->seq)
			return 0;
	} else {
		t->count++;
	}
	memcpy(e->key, h->key, KVG_KEY_BYTES);
	e->used = 1;
	e->seq = h->seq;
	e->len = h->payload_len;
	e->tomb = (h->flags & REC_F_TOMBSTONE) != 0;
	return 0;
}

/* Counts the live blocks (a key's newest record is not a tombstone) and the deleted keys. */
static void kt_count(const struct key_table *t, struct fsck_report *rep)
{
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->ents[i].used)
			continue;
		if (t->ents[i].tomb) {
			rep->tombstones++;
		} else {
			rep->blocks++;
			rep->block_bytes += t->ents[i].len;
		}
	}
}

/* ---- the directory --------------------------------------------------------------------- */

/* What fsck_dir learns about the segment being scanned. */
struct seg_scan {
	const struct fsck_opts *opts;
	const char *name;
	struct key_table *keys;
	struct fsck_report *rep;
	uint64_t *good_off; /* offsets of its good records, in order */
	size_t n_good, cap_good;
	uint64_t corrupt;
	int err;
};

static void say(const struct fsck_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void say(const struct fsck_opts *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	if (!o->say)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	o->say(o->ctx, line);
}

static void scan_good(void *ctx, const struct rec_hdr *h, uint64_t off)
{
	struct seg_scan *s = ctx;
	if (s->n_good == s->cap_good) {
		size_t cap = s->cap_good ? s->cap_good * 2 : 256;
		uint64_t *p = realloc(s->good_off, cap * sizeof(*p));
		if (!p) {
			s->err = -ENOMEM;
			return;
		}
		s->good_off = p;
		s->cap_good = cap;
	}
	s->good_off[s->n_good++] = off;
	if (kt_add(s->keys, h, s->rep))
		s->err = -ENOMEM;
}

static void scan_corrupt(void *ctx, uint64_t off, uint64_t bytes, const char *why)
{
	struct seg_scan *s = ctx;
	s->corrupt++;
	say(s->opts, "%s offset %llu (%llu bytes): %s", s->name, (unsigned long long)off,
	    (unsigned long long)bytes, why);
}

/* Copies len bytes at from in src to to in dst through buf. */
static int copy_range(int src, int dst, uint64_t from, uint64_t to, uint64_t len, void *buf,
		      size_t buf_len)
{
	while (len) {
		size_t n = (size_t)min_u64(len, buf_len);
		ssize_t got = rec_read_fd(&src, buf, n, from);
		if (got < 0)
			return (int)got;
		if ((size_t)got != n)
			return -EIO;
		if (pwrite(dst, buf, n, (off_t)to) != (ssize_t)n)
			return -errno ? -errno : -EIO;
		from += n;
		to += n;
		len -= n;
	}
	return 0;
}

/*
 * Rewrites segment `name` with only its good records, packed from the first record slot,
 * into a new file that replaces it by rename once it is durable.
 */
static int seg_rewrite(int dir_fd, const char *name, int src, const struct seg_hdr *sh,
		       const struct seg_scan *s, void *buf, size_t buf_len)
{
	char tmp[300];
	uint64_t to = SEG_HDR_BYTES;
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s.fsck", name);
	fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = ftruncate(fd, (off_t)sh->seg_bytes) ? -errno : 0;
	if (!rc)
		rc = copy_range(src, fd, 0, 0, SEG_HDR_BYTES, buf, buf_len);
	for (size_t i = 0; !rc && i < s->n_good; i++) {
		struct rec_hdr h;
		if (rec_read_fd(&src, buf, REC_HDR_BYTES, s->good_off[i]) != REC_HDR_BYTES ||
		    rec_blk_check(buf, &h)) {
			rc = -EIO; /* it was good a moment ago: someone is writing the directory */
			break;
		}
		uint64_t span = rec_span(h.payload_len);
		rc = copy_range(src, fd, s->good_off[i], to, span, buf, buf_len);
		to += span;
	}
	if (!rc && fsync(fd))
		rc = -errno;
	close(fd);
	if (!rc && renameat(dir_fd, tmp, dir_fd, name))
		rc = -errno;
	if (rc)
		unlinkat(dir_fd, tmp, 0);
	else
		fsync(dir_fd);
	return rc;
}

/* Moves segment `name` to quarantine/, under a name not taken yet. */
static int seg_quarantine(int dir_fd, const char *name)
{
	char to[400];
	if (mkdirat(dir_fd, "quarantine", 0755) && errno != EEXIST)
		return -errno;
	for (int i = 0; i < 1000; i++) {
		if (i == 0)
			snprintf(to, sizeof(to), "quarantine/%s", name);
		else
			snprintf(to, sizeof(to), "quarantine/%s.%d", name, i);
		if (faccessat(dir_fd, to, F_OK, 0) == 0)
			continue;
		if (renameat(dir_fd, name, dir_fd, to))
			return -errno;
		fsync(dir_fd);
		return 0;
	}
	return -EEXIST;
}

static int seg_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names "seg-NNNNNNNN.kvg" in dir, sorted.  Returns the count or -errno. */
static int seg_list(int dir_fd, char ***out)
{
	DIR *d = fdopendir(dup(dir_fd));
	char **names = NULL;
	int n = 0, cap = 0;
	struct dirent *e;
	unsigned id;
	char tail[8];

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (sscanf(e->d_name, "seg-%8u.kv%7s", &id, tail) != 2 || strcmp(tail, "g") ||
		    strlen(e->d_name) != 16)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **p = realloc(names, sizeof(*p) * (size_t)cap);
			if (!p)
				goto out_nomem;
			names = p;
		}
		if (!(names[n] = strdup(e->d_name)))
			goto out_nomem;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, (size_t)n, sizeof(*names), seg_name_cmp);
	*out = names;
	return n;

out_nomem:
	closedir(d);
	while (n)
		free(names[--n]);
	free(names);
	return -ENOMEM;
}

/* Checks one segment file and repairs it if asked.  Returns 0 or -errno (fatal only). */
static int fsck_one(int dir_fd, const char *name, const uint8_t *grid_id, const struct fsck_opts *o,
		    struct key_table *keys, struct fsck_report *rep, void *buf)
{
	struct seg_scan s = {.opts = o, .name = name, .keys = keys, .rep = rep};
	struct fsck_visit v = {scan_good, scan_corrupt, &s};
	struct seg_hdr sh;
	struct stat st;
	const char *why;
	unsigned id = UINT32_MAX;
	int rc, fd;

	sscanf(name, "seg-%8u", &id);
	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		rep->segments++;
		rep->segments_bad++;
		visit_corrupt(NULL, rep, 0, 0, "unreadable segment file");
		say(o, "%s: cannot open: %s", name, strerror(errno));
		rc = 0;
		goto out_close;
	}
	rc = fsck_segment(rec_read_fd, &fd, (uint64_t)st.st_size, grid_id, id, &sh, &v, rep, buf,
			  FSCK_BUF_BYTES, &why);
	if (s.err) {
		rc = s.err;
		goto out_close;
	}
	if (rc == FSCK_SEG_UNUSED) {
		rc = 0;
	} else if (rc) {
		/* the whole segment cannot be trusted: an unreadable disk is treated the same */
		rep->segments_bad++;
		visit_corrupt(NULL, rep, 0, (uint64_t)st.st_size, why);
		say(o, "%s: %s", name, why ? why : strerror(-rc));
		rc = 0;
		if (o->repair && !(rc = seg_quarantine(dir_fd, name))) {
			rep->quarantined++;
			rep->repaired++;
			say(o, "%s: moved to quarantine/", name);
		}
	} else if (s.corrupt && o->repair) {
		rc = seg_rewrite(dir_fd, name, fd, &sh, &s, buf, FSCK_BUF_BYTES);
		if (!rc) {
			rep->rewritten++;
			rep->repaired += s.corrupt;
			say(o, "%s: rewritten with its %zu good records", name, s.n_good);
		}
	}
	if (rc) {
		say(o, "%s: repair failed: %s", name, strerror(-rc));
		rc = 0; /* counted as not repaired; go on with the others */
	}
out_close:
	if (fd >= 0)
		close(fd);
	free(s.good_off);
	return rc == -ENOMEM ? rc : 0;
}

/* Removes the temporary files of a repair that was interrupted ("seg-NNNNNNNN.kvg.fsck"):
 * the segment they were to replace is still whole, so they are simply dropped. */
static void stale_temps_remove(int dir_fd, const struct fsck_opts *o)
{
	DIR *d = fdopendir(dup(dir_fd));
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n == 21 && !strncmp(e->d_name, "seg-", 4) && !strcmp(e->d_name + 16, ".fsck") &&
		    unlinkat(dir_fd, e->d_name, 0) == 0)
			say(o, "%s: removed, left by an interrupted repair", e->d_name);
	}
	closedir(d);
}

/*
 * The record format of the first segment in names[] whose header is of another format than
 * this build's (0 if none): such a directory is refused whole, checked or repaired by
 * nothing, as the tier refuses to open it -- fsck's verdicts would be about a layout it does
 * not read, and its repairs would lose the blocks.
 */
static uint32_t foreign_format(int dir_fd, char **names, int n, void *buf)
{
	for (int i = 0; i < n; i++) {
		int fd = openat(dir_fd, names[i], O_RDONLY | O_CLOEXEC);
		uint32_t fmt = 0;
		if (fd < 0)
			continue;
		if (rec_read_fd(&fd, buf, SEG_HDR_BYTES, 0) != SEG_HDR_BYTES ||
		    seg_hdr_format(buf, SEG_HDR_BYTES, &fmt))
			fmt = 0;
		close(fd);
		if (fmt && fmt != KVG_RECORD_FORMAT)
			return fmt;
	}
	return 0;
}

/* Reads dir/grid.id; 1 if present and well formed. */
static int grid_id_read(int dir_fd, uint8_t id[16])
{
	int fd = openat(dir_fd, "grid.id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, id, 16);
	char extra;
	int ok = n == 16 && read(fd, &extra, 1) == 0;
	close(fd);
	return ok;
}

int fsck_dir(const char *dir, const struct fsck_opts *opts, struct fsck_report *rep, char *err,
	     size_t err_len)
{
	struct key_table keys = {0};
	uint8_t grid_id[16];
	char **names = NULL;
	void *buf = NULL;
	int dir_fd, lock_fd = -1, n, rc;
	int have_id;

	memset(rep, 0, sizeof(*rep));
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		rc = -errno;
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
		return rc;
	}
	have_id = grid_id_read(dir_fd, grid_id);
	n = seg_list(dir_fd, &names);
	if (n < 0) {
		rc = n;
		snprintf(err, err_len, "%s: %s", dir, strerror(-n));
		goto out_close_dir;
	}
	if (!have_id && n == 0) {
		rc = -ENOENT;
		snprintf(err, err_len, "%s: not a kvgrid directory (no grid.id, no segments)", dir);
		goto out_free_names;
	}
	/* the tier holds an exclusive lock on dir/LOCK while the grid is open */
	lock_fd = openat(dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock_fd >= 0 && flock(lock_fd, (opts->repair ? LOCK_EX : LOCK_SH) | LOCK_NB)) {
		rc = -EBUSY;
		snprintf(err, err_len, "%s: the grid is open in another process", dir);
		goto out_close_lock;
	}
	if (!have_id && n > 0)
		say(opts, "grid.id: missing or damaged; segments of any grid are accepted");
	if (posix_memalign(&buf, KVG_ALIGN, FSCK_BUF_BYTES)) {
		rc = -ENOMEM;
		goto out_close_lock;
	}
	uint32_t fmt = foreign_format(dir_fd, names, n, buf);
	if (fmt) {
		rc = KVG_ECONFIG;
		snprintf(err, err_len,
			 "%s: segments are in record format %u, this kvgrid reads format %u; "
			 "nothing was checked or changed",
			 dir, fmt, KVG_RECORD_FORMAT);
		goto out_free_buf;
	}
	if (opts->repair)
		stale_temps_remove(dir_fd, opts);
	for (int i = 0; i < n; i++) {
		rc = fsck_one(dir_fd, names[i], have_id ? grid_id : NULL, opts, &keys, rep, buf);
		if (rc) {
			snprintf(err, err_len, "%s: %s", dir, strerror(-rc));
			goto out_free_buf;
		}
	}
	kt_count(&keys, rep);
	if (opts->repair && (rep->quarantined || rep->rewritten) &&
	    unlinkat(dir_fd, "index.ckpt", 0) == 0) {
		rep->ckpt_removed = 1;
		fsync(dir_fd);
		say(opts,
		    "index.ckpt: removed; the next open rebuilds the index from the segments");
	}
	rc = 0;
out_free_buf:
	free(buf);
	free(keys.ents);
out_close_lock:
	if (lock_fd >= 0)
		close(lock_fd);
out_free_names:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
out_close_dir:
	close(dir_fd);
	return rc;
}
