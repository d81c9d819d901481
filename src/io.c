/*
 * io.c - choosing an I/O backend.
 */
#include <string.h>
#include <liburing.h>

#include "io.h"

/* weak: the fault backend is a test tool and may be left out of a build */
extern const struct io_ops io_fault_ops __attribute__((weak));

const struct io_ops *io_find(const char *name)
{
	if (!strcmp(name, "uring"))
		return &io_uring_ops;
	if (!strcmp(name, "psync"))
		return &io_psync_ops;
	if (!strcmp(name, "fault"))
		return &io_fault_ops ? &io_fault_ops : NULL;
	return NULL;
}

static __thread int backend_thread;

void io_thread_enter(void)
{
	backend_thread = 1;
}

int io_on_backend_thread(void)
{
	return backend_thread;
}

int io_uring_usable(void)
{
	struct io_uring ring;
	if (io_uring_queue_init(4, &ring, 0) < 0)
		return 0;
	io_uring_queue_exit(&ring);
	return 1;
}
