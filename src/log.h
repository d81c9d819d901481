/*
 * log.h - the grid's log: one line per event, "time level message", to a file or stderr.
 * A log belongs to one grid (no global state).  Thread-safe.
 */
#ifndef KVG_LOG_H
#define KVG_LOG_H

#include <stdio.h>
#include <pthread.h>

enum { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

struct log {
	FILE *f; /* guarded by lock */
	int level;
	int own;
	pthread_mutex_t lock;
};

int log_open(struct log *l, const char *path, int level);
void log_close(struct log *l);
void log_msg(struct log *l, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
