/*
 * faultfs.c - a FUSE passthrough filesystem for tests that injects faults: errors on a
 * chosen fraction of open, read, write, fsync, link, rename, stat and other calls, short
 * reads and flipped bytes on read.  It stands for a network filesystem that fails now and
 * then (a lost brick, a server that answers EIO, a reply that never came back).
 *
 *   faultfs [--spec SPEC] BACKING MOUNTPOINT     mounts BACKING at MOUNTPOINT (libfuse3);
 *                                                returns once the mount is up, in the
 *                                                background until `umount MOUNTPOINT`
 *
 * The faults in effect are set at mount (--spec) and changed while mounted by writing a
 * spec to the control file MOUNTPOINT/.faultfs (one write; it never shows in a listing and
 * is never faulted).  Reading the control file gives the counts: one line per operation,
 * "OP calls N failed N", then "short N" and "flipped N".
 *
 * A spec is clauses separated by ';', ',' or white space (empty or "off": no faults):
 *   fail=OP:P[:ERR]   OP fails with ERR (EIO default; ENOSPC, ESTALE, ENOENT, EDQUOT,
 *                     EINTR) with probability P (0..1), before it reaches BACKING
 *   late=OP:P         OP is done on BACKING, then answers EIO (the reply was lost)
 *   short=read:P      a read returns part of what it could (at least one byte)
 *   flip=read:P       a read returns one byte flipped
 *   norename2         rename with flags (RENAME_NOREPLACE) answers EINVAL, as GlusterFS's
 *                     FUSE client does
 *   seed=N            the random sequence
 * OP is one of open (and create), read, write, fsync, link, rename, stat, unlink, mkdir,
 * readdir, utimens, any.  Files are opened with direct_io, so every read reaches faultfs
 * and no flipped byte lingers in the kernel's page cache after the faults stop.
 */
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CTL_NAME "/.faultfs"

enum op {
	OP_OPEN,
	OP_READ,
	OP_WRITE,
	OP_FSYNC,
	OP_LINK,
	OP_RENAME,
	OP_STAT,
	OP_UNLINK,
	OP_MKDIR,
	OP_READDIR,
	OP_UTIMENS,
	OP_COUNT
};
static const char *const op_names[OP_COUNT] = {"open",	"read",	   "write",  "fsync",
					       "link",	"rename",  "stat",   "unlink",
					       "mkdir", "readdir", "utimens"};

/* The faults in effect (spec_mu guards spec; the counters are atomic). */
struct spec {
	double fail[OP_COUNT], late[OP_COUNT], short_read, flip_read;
	int err[OP_COUNT];
	int norename2;
	uint64_t seed;
};
static pthread_mutex_t spec_mu = PTHREAD_MUTEX_INITIALIZER;
static struct spec spec;
static uint64_t rng_ctr, calls[OP_COUNT], failed[OP_COUNT], shorts, flips;
static int back_fd = -1; /* the backing directory: every path is opened relative to it */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A uniform draw in [0, 1). */
static double draw(void)
{
	uint64_t n = __atomic_add_fetch(&rng_ctr, 1, __ATOMIC_RELAXED);
	return (double)(mix64(spec.seed ^ (n * 0x9e3779b97f4a7c15ull)) >> 11) / 9007199254740992.0;
}

static struct spec spec_now(void)
{
	pthread_mutex_lock(&spec_mu);
	struct spec s = spec;
	pthread_mutex_unlock(&spec_mu);
	return s;
}

/* Counts a call of op; returns the -errno to fail it with before it is done, or 0. */
static int fault_before(enum op op)
{
	__atomic_add_fetch(&calls[op], 1, __ATOMIC_RELAXED);
	struct spec s = spec_now();
	if (s.fail[op] > 0 && draw() < s.fail[op]) {
		__atomic_add_fetch(&failed[op], 1, __ATOMIC_RELAXED);
		return -s.err[op];
	}
	return 0;
}

/* After op succeeded on the backing directory: -EIO if its reply is to be lost, else rc. */
static int fault_after(enum op op, int rc)
{
	struct spec s = spec_now();
	if (rc >= 0 && s.late[op] > 0 && draw() < s.late[op]) {
		__atomic_add_fetch(&failed[op], 1, __ATOMIC_RELAXED);
		return -EIO;
	}
	return rc;
}

/* ---- the spec ----------------------------------------------------------------------------- */

static int parse_op(const char *s, int *op)
{
	if (!strcmp(s, "any")) {
		*op = -1;
		return 0;
	}
	if (!strcmp(s, "create")) {
		*op = OP_OPEN;
		return 0;
	}
	for (int i = 0; i < OP_COUNT; i++)
		if (!strcmp(s, op_names[i])) {
			*op = i;
			return 0;
		}
	return -1;
}

static int parse_err(const char *s)
{
	static const struct {
		const char *name;
		int err;
	} errs[] = {{"EIO", EIO},	{"ENOSPC", ENOSPC}, {"ESTALE", ESTALE},
		    {"ENOENT", ENOENT}, {"EDQUOT", EDQUOT}, {"EINTR", EINTR}};
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		if (!strcmp(s, errs[i].name))
			return errs[i].err;
	return 0;
}

static int parse_prob(const char *s, double *p)
{
	char *end;
	*p = strtod(s, &end);
	return end == s || *end || !(*p >= 0 && *p <= 1) ? -1 : 0;
}

/* One clause "name=op:p[:err]" (modified in place) into s: 0 or -1. */
static int parse_clause(char *c, struct spec *s)
{
	if (!strcmp(c, "off"))
		return 0;
	if (!strcmp(c, "norename2")) {
		s->norename2 = 1;
		return 0;
	}
	char *v = strchr(c, '=');
	if (!v)
		return -1;
	*v++ = 0;
	if (!strcmp(c, "seed")) {
		s->seed = strtoull(v, NULL, 10);
		return 0;
	}
	char *f[3] = {v, NULL, NULL};
	for (int k = 1; k < 3 && f[k - 1]; k++)
		if ((f[k] = strchr(f[k - 1], ':')))
			*f[k]++ = 0;
	int op, err = EIO;
	double p;
	if (!f[1] || parse_op(f[0], &op) || parse_prob(f[1], &p))
		return -1;
	if (f[2] && (strcmp(c, "fail") || !(err = parse_err(f[2]))))
		return -1;
	if (!strcmp(c, "short") || !strcmp(c, "flip")) {
		if (op != OP_READ)
			return -1;
		*(c[0] == 's' ? &s->short_read : &s->flip_read) = p;
		return 0;
	}
	if (strcmp(c, "fail") && strcmp(c, "late"))
		return -1;
	for (int i = 0; i < OP_COUNT; i++)
		if (op < 0 || op == i) {
			*(c[0] == 'f' ? &s->fail[i] : &s->late[i]) = p;
			if (c[0] == 'f')
				s->err[i] = err;
		}
	return 0;
}

/* Replaces the faults in effect by text's: 0, or -EINVAL (nothing changed). */
static int spec_set(const char *text, size_t len)
{
	char buf[4096];
	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, len);
	buf[len] = 0;
	struct spec s;
	memset(&s, 0, sizeof(s));
	s.seed = spec_now().seed;
	char *save = NULL;
	for (char *c = strtok_r(buf, ";, \t\n", &save); c; c = strtok_r(NULL, ";, \t\n", &save))
		if (parse_clause(c, &s)) {
			fprintf(stderr, "faultfs: bad spec clause '%s'\n", c);
			return -EINVAL;
		}
	pthread_mutex_lock(&spec_mu);
	spec = s;
	pthread_mutex_unlock(&spec_mu);
	return 0;
}

static int ctl_text(char *out, size_t cap)
{
	size_t n = 0;
	for (int i = 0; i < OP_COUNT && n < cap; i++)
		n += (size_t)snprintf(
		    out + n, cap - n, "%s calls %llu failed %llu\n", op_names[i],
		    (unsigned long long)__atomic_load_n(&calls[i], __ATOMIC_RELAXED),
		    (unsigned long long)__atomic_load_n(&failed[i], __ATOMIC_RELAXED));
	if (n < cap)
		n += (size_t)snprintf(out + n, cap - n, "short %llu\nflipped %llu\n",
				      (unsigned long long)shorts, (unsigned long long)flips);
	return n < cap ? (int)n : (int)cap;
}

/* ---- the operations: paths relative to back_fd ------------------------------------------- */

static const char *rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

/* path is NULL for calls on an open file that was unlinked (nullpath_ok) */
static int is_ctl(const char *path)
{
	return path && !strcmp(path, CTL_NAME);
}

static int ff_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if ((!fi && is_ctl(path)) || (fi && fi->fh == (uint64_t)-1)) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		return 0;
	}
	int rc = fault_before(OP_STAT);
	if (rc)
		return rc;
	rc = fi ? fstat((int)fi->fh, st) : fstatat(back_fd, rel(path), st, AT_SYMLINK_NOFOLLOW);
	return rc ? -errno : 0;
}

static int ff_opendir(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(back_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	return 0;
}

/* The whole directory at once (offsets 0): path may be NULL, the directory is fi's. */
static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	int rc = fault_before(OP_READDIR);
	if (rc)
		return rc;
	int fd = openat((int)fi->fh, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (fill(buf, de->d_name, NULL, 0, 0))
			break;
	closedir(d);
	return 0;
}

static int ff_releasedir(const char *path, struct fuse_file_info *fi)
{
	close((int)fi->fh);
	return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
	fi->direct_io = 1;
	if (is_ctl(path)) {
		fi->fh = (uint64_t)-1;
		return 0;
	}
	int rc = fault_before(OP_OPEN);
	if (rc)
		return rc;
	int fd = openat(back_fd, rel(path), (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	rc = fault_after(OP_OPEN, 0);
	if (rc)
		close(fd);
	return rc;
}

static int ff_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	fi->direct_io = 1;
	int rc = fault_before(OP_OPEN);
	if (rc)
		return rc;
	int fd = openat(back_fd, rel(path), fi->flags | O_CREAT | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	rc = fault_after(OP_OPEN, 0);
	if (rc)
		close(fd); /* the file stays, as after a lost reply */
	return rc;
}

static int ff_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (fi->fh == (uint64_t)-1) {
		char text[1024];
		int n = ctl_text(text, sizeof(text));
		if (off >= n)
			return 0;
		size_t k = (size_t)n - (size_t)off < size ? (size_t)n - (size_t)off : size;
		memcpy(buf, text + off, k);
		return (int)k;
	}
	int rc = fault_before(OP_READ);
	if (rc)
		return rc;
	ssize_t got = pread((int)fi->fh, buf, size, off);
	if (got < 0)
		return -errno;
	struct spec s = spec_now();
	if (got > 1 && s.short_read > 0 && draw() < s.short_read) {
		got = 1 + (ssize_t)(draw() * (double)(got - 1));
		__atomic_add_fetch(&shorts, 1, __ATOMIC_RELAXED);
	}
	if (got > 0 && s.flip_read > 0 && draw() < s.flip_read) {
		buf[(size_t)(draw() * (double)got)] ^= (char)(1u << (int)(draw() * 8));
		__atomic_add_fetch(&flips, 1, __ATOMIC_RELAXED);
	}
	return fault_after(OP_READ, (int)got);
}

static int ff_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	if (fi->fh == (uint64_t)-1)
		return spec_set(buf, size) ? -EINVAL : (int)size;
	int rc = fault_before(OP_WRITE);
	if (rc)
		return rc;
	ssize_t put = pwrite((int)fi->fh, buf, size, off);
	return put < 0 ? -errno : fault_after(OP_WRITE, (int)put);
}

static int ff_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	if (fi->fh == (uint64_t)-1)
		return 0;
	int rc = fault_before(OP_FSYNC);
	if (rc)
		return rc;
	rc = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
	return rc ? -errno : fault_after(OP_FSYNC, 0);
}

static int ff_release(const char *path, struct fuse_file_info *fi)
{
	if (fi->fh != (uint64_t)-1)
		close((int)fi->fh);
	return 0;
}

/* The metadata calls: fault, do, maybe lose the reply. */
#define META(op, call)                                                                             \
	do {                                                                                       \
		int rc_ = fault_before(op);                                                        \
		if (rc_)                                                                           \
			return rc_;                                                                \
		return (call) ? -errno : fault_after(op, 0);                                       \
	} while (0)

static int ff_unlink(const char *path)
{
	META(OP_UNLINK, unlinkat(back_fd, rel(path), 0));
}

static int ff_mkdir(const char *path, mode_t mode)
{
	META(OP_MKDIR, mkdirat(back_fd, rel(path), mode));
}

static int ff_rmdir(const char *path)
{
	META(OP_UNLINK, unlinkat(back_fd, rel(path), AT_REMOVEDIR));
}

static int ff_link(const char *from, const char *to)
{
	META(OP_LINK, linkat(back_fd, rel(from), back_fd, rel(to), 0));
}

static int ff_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags && spec_now().norename2)
		return -EINVAL;
	META(OP_RENAME, syscall(SYS_renameat2, back_fd, rel(from), back_fd, rel(to), flags));
}

static int ff_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	if (is_ctl(path) || (fi && fi->fh == (uint64_t)-1))
		return 0;
	META(OP_UTIMENS, fi ? futimens((int)fi->fh, tv)
			    : utimensat(back_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW));
}

static int ff_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (is_ctl(path) || (fi && fi->fh == (uint64_t)-1))
		return 0;
	if (fi)
		META(OP_WRITE, ftruncate((int)fi->fh, size));
	int fd = openat(back_fd, rel(path), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = ftruncate(fd, size) ? -errno : 0;
	close(fd);
	return rc;
}

static int ff_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return fchmodat(back_fd, rel(path), mode, 0) ? -errno : 0;
}

static int ff_statfs(const char *path, struct statvfs *st)
{
	return fstatvfs(back_fd, st) ? -errno : 0;
}

static void *ff_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->use_ino = 1;
	cfg->entry_timeout = 0; /* every lookup reaches faultfs, and may fail */
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->hard_remove = 1; /* an unlinked open file stays readable, as POSIX says */
	cfg->nullpath_ok = 1;
	return NULL;
}

static const struct fuse_operations ff_ops = {
    .init = ff_init,
    .getattr = ff_getattr,
    .opendir = ff_opendir,
    .readdir = ff_readdir,
    .releasedir = ff_releasedir,
    .open = ff_open,
    .create = ff_create,
    .read = ff_read,
    .write = ff_write,
    .fsync = ff_fsync,
    .release = ff_release,
    .unlink = ff_unlink,
    .mkdir = ff_mkdir,
    .rmdir = ff_rmdir,
    .link = ff_link,
    .rename = ff_rename,
    .utimens = ff_utimens,
    .truncate = ff_truncate,
    .chmod = ff_chmod,
    .statfs = ff_statfs,
};

int main(int argc, char **argv)
{
	const char *text = "";
	int a = 1;
	if (argc > 2 && !strcmp(argv[1], "--spec")) {
		text = argv[2];
		a = 3;
	}
	if (argc - a != 2) {
		fprintf(stderr, "usage: faultfs [--spec SPEC] BACKING MOUNTPOINT\n");
		return 2;
	}
	if (spec_set(text, strlen(text)))
		return 2;
	back_fd = open(argv[a], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (back_fd < 0) {
		fprintf(stderr, "faultfs: %s: %s\n", argv[a], strerror(errno));
		return 1;
	}
	/* the kernel's default would pass our own umask twice; modes come as asked */
	umask(0);
	/* FAULTFS_DEBUG=1: in the foreground, with libfuse's trace of every call */
	int debug = getenv("FAULTFS_DEBUG") != NULL;
	char *fargv[] = {argv[0], argv[a + 1], "-o", "fsname=faultfs,subtype=faultfs",
			 "-f",	  "-d",	       NULL};
	return fuse_main(debug ? 6 : 4, fargv, &ff_ops, NULL);
}
