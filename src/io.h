/*
 * io.h - asynchronous file I/O behind a small ops table, chosen once per NVMe tier.
 *
 *   uring  io_uring (liburing), one ring owned by one thread; production.
 *   psync  pread/pwrite/fdatasync on a pool of threads; tmpfs, old kernels, debugging.
 *   fault  wraps another backend and injects failures from a seedable plan (tests).
 *
 * Contract: io_submit() may be called from any thread and never blocks on the device.  Each
 * request completes exactly once: req->done(req, res) runs on a backend thread with res the
 * byte count (possibly short) or -errno.  The caller owns req and its buffers until then;
 * done may resubmit req (e.g. the remainder of a short transfer).  Buffers and offsets of a
 * file opened with O_DIRECT are KVG_ALIGN-aligned.
 */
#ifndef KVG_IO_H
#define KVG_IO_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

enum io_op { IO_READ = 0, IO_WRITE = 1, IO_FSYNC = 2 };

#define IO_IOV_MAX 8

struct io_req {
	int op; /* enum io_op */
	int fd;
	uint64_t off; /* file offset of iov[0] */
	struct iovec iov[IO_IOV_MAX];
	int iovcnt;
	int rw_flags; /* RWF_DSYNC for a write that must be durable when it completes */
	void (*done)(struct io_req *req, ssize_t res);
	void *arg;	     /* owner's context */
	struct io_req *next; /* backend's queue link; the owner leaves it alone */
};

struct io_config {
	uint32_t queue_depth;	 /* in-flight requests per ring */
	uint32_t threads;	 /* psync workers, uring rings */
	const char *fault_plan;	 /* fault backend: the plan (doc/DURABILITY.md) */
	const char *fault_inner; /* fault backend: "uring" or "psync" beneath it */
};

struct io_backend;

struct io_ops {
	const char *name;
	int (*create)(const struct io_config *cfg, struct io_backend **out);
	void (*submit)(struct io_backend *b, struct io_req *req);
	/* completes what is in flight, then stops the threads and frees b */
	void (*destroy)(struct io_backend *b);
};

extern const struct io_ops io_uring_ops;
extern const struct io_ops io_psync_ops;
extern const struct io_ops io_fault_ops;

/* The ops table named "uring", "psync" or "fault"; NULL for another name. */
const struct io_ops *io_find(const char *name);

/* A backend's own threads (where done callbacks run) call io_thread_enter() first;
 * io_on_backend_thread() then answers 1 there: such a thread must never wait for I/O,
 * which only it may complete. */
void io_thread_enter(void);
int io_on_backend_thread(void);

/* 1 if io_uring works in this process (probed once by creating a small ring). */
int io_uring_usable(void);

#endif
