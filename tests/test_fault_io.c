/*
 * test_fault_io.c - the fault backend by itself, over a tiny synchronous inner backend and a
 * real file opened with O_DIRECT under $KVG_TEST_TMP: each plan clause does what
 * doc/DURABILITY.md says, on the file and in the counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io_fault.h"
#include "record.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define FILE_BYTES (64u * 1024)

/* ---- a synchronous inner backend: does the I/O inside submit ------------------------- */

static char sync_state; /* the inner backend keeps no state: any non-NULL handle will do */

static int sync_create(const struct io_config *cfg, struct io_backend **out)
{
	*out = (struct io_backend *)&sync_state;
	return 0;
}

static void sync_submit(struct io_backend *b, struct io_req *req)
{
	ssize_t res;
	if (req->op == IO_READ)
		res = preadv(req->fd, req->iov, req->iovcnt, (off_t)req->off);
	else if (req->op == IO_WRITE)
		res = pwritev(req->fd, req->iov, req->iovcnt, (off_t)req->off);
	else
		res = fdatasync(req->fd);
	req->done(req, res < 0 ? -errno : res);
}

static void sync_destroy(struct io_backend *b)
{
}

static const struct io_ops sync_ops = {"sync", sync_create, sync_submit, sync_destroy};

/* ---- helpers ------------------------------------------------------------------------- */

struct waiter {
	struct io_req req;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	ssize_t res;
};

static void waiter_done(struct io_req *req, ssize_t res)
{
	struct waiter *w = req->arg;
	pthread_mutex_lock(&w->lock);
	w->res = res;
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Submits one operation and waits for its single completion. */
static ssize_t io_sync(struct io_backend *b, int op, int fd, uint64_t off, void *buf, size_t len)
{
	struct waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	w.req.op = op;
	w.req.fd = fd;
	w.req.off = off;
	w.req.iov[0].iov_base = buf;
	w.req.iov[0].iov_len = len;
	w.req.iovcnt = op == IO_FSYNC ? 0 : 1;
	w.req.done = waiter_done;
	w.req.arg = &w;
	io_fault_ops.submit(b, &w.req);
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	return w.res;
}

static char path[4096];

/* A fresh O_DIRECT file of FILE_BYTES filled with byte 'o' ("old"). */
static int file_fresh(void)
{
	const char *tmp = getenv("KVG_TEST_TMP");
	snprintf(path, sizeof(path), "%s/test_fault_io.%d", tmp ? tmp : "build/tmp", getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	char *old = malloc(FILE_BYTES);
	memset(old, 'o', FILE_BYTES);
	CHECK(pwrite(fd, old, FILE_BYTES, 0) == FILE_BYTES);
	CHECK(fsync(fd) == 0);
	free(old);
	close(fd);
	fd = open(path, O_RDWR | O_DIRECT);
	if (fd < 0)
		fd = open(path, O_RDWR); /* a filesystem without O_DIRECT: still a real file */
	CHECK(fd >= 0);
	return fd;
}

static void file_gone(int fd)
{
	close(fd);
	unlink(path);
}

/* Reads the file as it is now, without the backend. */
static void file_read(void *buf, uint64_t off, size_t len)
{
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(pread(fd, buf, len, (off_t)off) == (ssize_t)len);
	close(fd);
}

static void *abuf(size_t len, int fill)
{
	void *p;
	CHECK(posix_memalign(&p, KVG_ALIGN, len) == 0);
	memset(p, fill, len);
	return p;
}

static struct io_backend *fault_open(const char *plan)
{
	struct io_config cfg = {.queue_depth = 8, .threads = 1, .fault_plan = plan};
	struct io_backend *b;
	CHECK(io_fault_create_over(&sync_ops, &cfg, &b) == 0);
	return b;
}

static int count_byte(const unsigned char *p, size_t len, unsigned char c)
{
	int n = 0;
	for (size_t i = 0; i < len; i++)
		n += p[i] == c;
	return n;
}

/* ---- specifications ------------------------------------------------------------------ */

/* Description: the plan grammar accepts every documented clause and rejects bad ones with a
 * reason. */
static void test_plan_grammar(void)
{
	static const char *const good[] = {
	    "",
	    "seed=7",
	    "fail=write:3:EIO",
	    "fail=any:2+:ENOSPC; short=read:0.5",
	    "tear=write:10",
	    "flip=read:0.01",
	    "powercut=20",
	    "powercut=write:5",
	    "fail=fsync:1-3:EINTR;fail=read:4:EAGAIN;undo_max=8",
	    " seed=1 ; fail=read:1:5 ",
	    "inner=psync;flip=read:0.5",
	    "inner=uring",
	};
	static const char *const bad[] = {
	    "seed",
	    "fail=write:3",
	    "fail=write:0:EIO",
	    "fail=write:3:EWHAT",
	    "tear=read:1",
	    "flip=write:1",
	    "short=fsync:1",
	    "bogus=1",
	    "fail=write:5-2:EIO",
	    "flip=read:1.5",
	    "powercut=0",
	    "fail=disk:1:EIO",
	    "short=read:1:2",
	    "inner=fault",
	};
	char err[128];
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (io_fault_plan_check(good[i], err, sizeof(err)))
			fprintf(stderr, "rejected '%s': %s\n", good[i], err);
		CHECK(io_fault_plan_check(good[i], err, sizeof(err)) == 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CHECK(io_fault_plan_check(bad[i], err, sizeof(err)) == -EINVAL);
		CHECK(strncmp(err, "fault plan: ", 12) == 0);
	}
}

/* Description: fail=write:2:ERRNO fails exactly the second write with that errno, leaves the
 * file untouched by it, and counts it by errno. */
static void test_fail_nth(const char *name, int err)
{
	char plan[64];
	snprintf(plan, sizeof(plan), "fail=write:2:%s", name);
	int fd = file_fresh();
	struct io_backend *b = fault_open(plan);
	unsigned char *w = abuf(8192, 'n'), *r = abuf(8192, 0);
	struct io_fault_counts c;

	CHECK(io_sync(b, IO_WRITE, fd, 0, w, 4096) == 4096);
	CHECK(io_sync(b, IO_WRITE, fd, 4096, w, 4096) == -err);
	CHECK(io_sync(b, IO_WRITE, fd, 8192, w, 4096) == 4096);
	file_read(r, 0, 8192);
	CHECK(count_byte(r, 4096, 'n') == 4096);
	CHECK(count_byte(r + 4096, 4096, 'o') == 4096); /* the failed write did not land */
	io_fault_counts_get(b, &c);
	CHECK(c.writes == 3);
	CHECK((err == EIO      ? c.eio
	       : err == ENOSPC ? c.enospc
	       : err == EINTR  ? c.eintr
			       : c.eagain) == 1);
	CHECK(io_fault_injected(&c) == 1);
	io_fault_ops.destroy(b);
	file_gone(fd);
	free(w);
	free(r);
}

/* Description: a shortened aligned read or write moves a whole number of 4096-byte units,
 * fewer than asked, and reports exactly what it moved. */
static void test_short(void)
{
	int fd = file_fresh();
	struct io_backend *b = fault_open("seed=3;short=write:1;short=read:1");
	unsigned char *w = abuf(16384, 'n'), *r = abuf(16384, 0), *f = abuf(16384, 0);

	ssize_t res = io_sync(b, IO_WRITE, fd, 0, w, 16384);
	CHECK(res >= 4096 && res <= 12288 && res % 4096 == 0);
	file_read(f, 0, 16384);
	CHECK(count_byte(f, (size_t)res, 'n') == res);
	CHECK(count_byte(f + res, 16384 - (size_t)res, 'o') == 16384 - res);

	ssize_t got = io_sync(b, IO_READ, fd, 0, r, 16384);
	CHECK(got >= 4096 && got <= 12288 && got % 4096 == 0);
	CHECK(memcmp(r, f, (size_t)got) == 0);

	struct io_fault_counts c;
	io_fault_counts_get(b, &c);
	CHECK(c.shorts == 2);
	io_fault_ops.destroy(b);
	file_gone(fd);
	free(w);
	free(r);
	free(f);
}

/* Description: a torn write reports full success, but only a 4096-aligned prefix (possibly
 * empty) reached the file; the rest keeps its old bytes. */
static void test_tear(void)
{
	int fd = file_fresh();
	struct io_backend *b = fault_open("seed=11;tear=write:1-8");
	unsigned char *w = abuf(16384, 'n'), *f = abuf(16384, 0);
	int torn = 0;

	for (int i = 0; i < 4; i++) {
		uint64_t off = (uint64_t)i * 16384;
		CHECK(io_sync(b, IO_WRITE, fd, off, w, 16384) == 16384);
		file_read(f, off, 16384);
		int n = count_byte(f, 16384, 'n');
		CHECK(n % 4096 == 0 && n < 16384);
		CHECK(count_byte(f, (size_t)n, 'n') == n); /* a prefix, not a scatter */
		torn++;
	}
	struct io_fault_counts c;
	io_fault_counts_get(b, &c);
	CHECK(c.tears == (uint64_t)torn);
	io_fault_ops.destroy(b);
	file_gone(fd);
	free(w);
	free(f);
}

/* Description: flip=read flips exactly one bit of what the read returns; the file is intact. */
static void test_flip(void)
{
	int fd = file_fresh();
	struct io_backend *b = fault_open("seed=5;flip=read:1");
	unsigned char *r = abuf(8192, 0), *f = abuf(8192, 0);
	int bits = 0;

	CHECK(io_sync(b, IO_READ, fd, 0, r, 8192) == 8192);
	file_read(f, 0, 8192);
	CHECK(count_byte(f, 8192, 'o') == 8192);
	for (int i = 0; i < 8192; i++)
		bits += __builtin_popcount((unsigned)(r[i] ^ f[i]));
	CHECK(bits == 1);
	CHECK(io_sync(b, IO_READ, fd, 0, r, 8192) == 8192); /* only the first read */
	CHECK(memcmp(r, f, 8192) == 0);
	struct io_fault_counts c;
	io_fault_counts_get(b, &c);
	CHECK(c.flips == 1 && c.reads == 2);
	io_fault_ops.destroy(b);
	file_gone(fd);
	free(r);
	free(f);
}

/* Description: at a power cut, writes made durable by an fsync stay, writes after the last
 * fsync are undone (old bytes back, newest first), and every later operation fails with EIO. */
static void test_powercut(void)
{
	int fd = file_fresh();
	struct io_backend *b = fault_open("powercut=2");
	unsigned char *a = abuf(4096, 'A'), *x = abuf(4096, 'X'), *y = abuf(4096, 'Y');
	unsigned char *f = abuf(16384, 0);

	CHECK(io_sync(b, IO_WRITE, fd, 0, a, 4096) == 4096);
	CHECK(io_sync(b, IO_FSYNC, fd, 0, NULL, 0) == 0); /* A is durable */
	CHECK(io_sync(b, IO_WRITE, fd, 4096, x, 4096) == 4096);
	CHECK(io_sync(b, IO_WRITE, fd, 4096, y, 4096) == 4096); /* overwrites X, undone to 'o' */
	CHECK(io_sync(b, IO_WRITE, fd, 8192, y, 4096) == 4096);
	file_read(f, 0, 16384);
	CHECK(count_byte(f + 4096, 8192, 'Y') == 8192);	     /* reached the file before the cut */
	CHECK(io_sync(b, IO_FSYNC, fd, 0, NULL, 0) == -EIO); /* the second fsync: power cut */
	CHECK(io_fault_powered_off());
	file_read(f, 0, 16384);
	CHECK(count_byte(f, 4096, 'A') == 4096);
	CHECK(count_byte(f + 4096, 12288, 'o') == 12288);
	CHECK(io_sync(b, IO_READ, fd, 0, f, 4096) == -EIO);
	CHECK(io_sync(b, IO_WRITE, fd, 0, x, 4096) == -EIO);
	struct io_fault_counts c;
	io_fault_counts_get(b, &c);
	CHECK(c.powercuts == 1 && c.dropped_writes == 3 && c.dropped_bytes == 12288);
	CHECK(c.refused == 2);
	io_fault_ops.destroy(b);
	file_gone(fd);
	free(a);
	free(x);
	free(y);
	free(f);
}

/* Description: with cutmode=mixed a power cut leaves each unsynced write lost, kept or torn
 * (new bytes on a 4096-aligned prefix, old bytes after it), and counts each fate. */
static void test_powercut_mixed(void)
{
	int fd = file_fresh();
	struct io_backend *b = fault_open("seed=9;cutmode=mixed;powercut=write:9");
	unsigned char *n = abuf(8192, 'n'), *f = abuf(8192, 0);
	for (int i = 0; i < 8; i++)
		CHECK(io_sync(b, IO_WRITE, fd, (uint64_t)i * 8192, n, 8192) == 8192);
	CHECK(io_sync(b, IO_WRITE, fd, 0, n, 4096) == -EIO); /* the 9th write: power cut */
	struct io_fault_counts c;
	io_fault_counts_get(b, &c);
	CHECK(c.dropped_writes + c.cut_kept + c.cut_torn == 8);
	CHECK(c.cut_kept > 0 || c.cut_torn > 0 || c.dropped_writes == 8);
	int lost = 0, kept = 0, torn = 0;
	for (int i = 0; i < 8; i++) {
		file_read(f, (uint64_t)i * 8192, 8192);
		int a = f[0] == 'n', z = f[4096] == 'n';
		CHECK(count_byte(f, 4096, f[0]) == 4096 &&
		      count_byte(f + 4096, 4096, f[4096]) == 4096);
		CHECK(!(z && !a)); /* a prefix survives, never a suffix alone */
		lost += !a, kept += a && z, torn += a && !z;
	}
	CHECK((uint64_t)lost == c.dropped_writes && (uint64_t)kept == c.cut_kept &&
	      (uint64_t)torn == c.cut_torn);
	io_fault_ops.destroy(b);
	file_gone(fd);
	free(n);
	free(f);
}

/* Description: exit=N ends the process with status N at the power cut, once the unsynced
 * writes are undone, so nothing else reaches the disk. */
static void test_powercut_exit(void)
{
	int fd = file_fresh();
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct io_backend *b = fault_open("exit=7;powercut=write:2");
		unsigned char *x = abuf(4096, 'X');
		io_sync(b, IO_WRITE, fd, 0, x, 4096);
		io_sync(b, IO_WRITE, fd, 4096, x, 4096); /* the cut: the process ends here */
		_exit(0);
	}
	int status;
	unsigned char *f = abuf(8192, 0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 7);
	file_read(f, 0, 8192);
	CHECK(count_byte(f, 8192, 'o') == 8192); /* the unsynced first write was undone */
	file_gone(fd);
	free(f);
}

/* Description: delay=OP:WHEN:MS holds an operation back, then completes it normally; a power
 * cut fails the operations still held back with EIO, and they never reach the file. */
static void test_delay(void)
{
	int fd = file_fresh();
	struct io_backend *b = fault_open("delay=write:1-2:20");
	unsigned char *x = abuf(4096, 'X'), *f = abuf(8192, 0);
	CHECK(io_sync(b, IO_WRITE, fd, 0, x, 4096) == 4096);
	file_read(f, 0, 4096);
	CHECK(count_byte(f, 4096, 'X') == 4096);
	io_fault_ops.destroy(b);

	b = fault_open("delay=write:1:60000");
	struct waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	w.req.op = IO_WRITE;
	w.req.fd = fd;
	w.req.off = 4096;
	w.req.iov[0].iov_base = x;
	w.req.iov[0].iov_len = 4096;
	w.req.iovcnt = 1;
	w.req.done = waiter_done;
	w.req.arg = &w;
	io_fault_ops.submit(b, &w.req); /* held back for a minute... */
	io_fault_powercut(b);		/* ...but the power goes first */
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	CHECK(w.res == -EIO);
	file_read(f, 4096, 4096);
	CHECK(count_byte(f, 4096, 'o') == 4096);
	struct io_fault_counts c;
	io_fault_counts_get(b, &c);
	CHECK(c.delays == 1 && c.powercuts == 1);
	io_fault_ops.destroy(b);
	file_gone(fd);
	free(x);
	free(f);
}

/* Description: a power cut due at an operation wins over the plan's other rules for it. */
static void test_powercut_precedence(void)
{
	int fd = file_fresh();
	struct io_backend *b = fault_open("short=write:1+;powercut=write:3");
	unsigned char *x = abuf(8192, 'X');
	CHECK(io_sync(b, IO_WRITE, fd, 0, x, 8192) == 4096);
	CHECK(io_sync(b, IO_WRITE, fd, 4096, x, 4096) == 4096); /* too small to shorten */
	CHECK(io_sync(b, IO_WRITE, fd, 0, x, 8192) == -EIO);
	struct io_fault_counts c;
	io_fault_counts_get(b, &c);
	CHECK(c.powercuts == 1 && c.shorts == 1 && c.dropped_writes == 2);
	io_fault_ops.destroy(b);
	file_gone(fd);
	free(x);
}

/* Description: io_fault_powercut() cuts power on demand; the process-wide totals include
 * destroyed backends. */
static void test_powercut_call_and_totals(void)
{
	struct io_fault_counts before, after;
	io_fault_totals(&before);
	int fd = file_fresh();
	struct io_backend *b = fault_open("");
	unsigned char *x = abuf(4096, 'X'), *f = abuf(4096, 0);
	CHECK(io_sync(b, IO_WRITE, fd, 0, x, 4096) == 4096);
	CHECK(io_fault_powercut_all() >= 1);
	file_read(f, 0, 4096);
	CHECK(count_byte(f, 4096, 'o') == 4096);
	io_fault_ops.destroy(b);
	io_fault_totals(&after);
	CHECK(after.powercuts == before.powercuts + 1);
	CHECK(after.dropped_writes == before.dropped_writes + 1);
	CHECK(after.writes == before.writes + 1);
	file_gone(fd);
	free(x);
	free(f);
}

/* Description: probabilistic plans are reproducible: the same seed injects the same faults
 * into the same sequence of operations, another seed does not. */
static uint64_t pattern(const char *plan)
{
	int fd = file_fresh();
	struct io_backend *b = fault_open(plan);
	unsigned char *r = abuf(4096, 0);
	uint64_t bits = 0;
	for (int i = 0; i < 64; i++)
		if (io_sync(b, IO_READ, fd, 0, r, 4096) < 0)
			bits |= 1ull << i;
	io_fault_ops.destroy(b);
	file_gone(fd);
	free(r);
	return bits;
}

static void test_seeded(void)
{
	uint64_t a = pattern("seed=42;fail=read:0.3:EIO");
	CHECK(a != 0 && a != ~0ull);
	CHECK(pattern("seed=42;fail=read:0.3:EIO") == a);
	CHECK(pattern("seed=43;fail=read:0.3:EIO") != a);
}

int main(void)
{
	test_plan_grammar();
	test_fail_nth("EIO", EIO);
	test_fail_nth("ENOSPC", ENOSPC);
	test_fail_nth("EINTR", EINTR);
	test_fail_nth("EAGAIN", EAGAIN);
	test_short();
	test_tear();
	test_flip();
	test_powercut();
	test_powercut_mixed();
	test_powercut_exit();
	test_delay();
	test_powercut_precedence();
	test_powercut_call_and_totals();
	test_seeded();
	printf("test_fault_io: ok\n");
	return 0;
}
