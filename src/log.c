/*
 * log.c - see log.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <time.h>

#include "log.h"

int log_open(struct log *l, const char *path, int level)
{
	l->level = level;
	l->own = 0;
	l->f = stderr;
	pthread_mutex_init(&l->lock, NULL);
	if (path && *path) {
		l->f = fopen(path, "a");
		if (!l->f) {
			l->f = stderr;
			return -errno;
		}
		l->own = 1;
	}
	return 0;
}

void log_close(struct log *l)
{
	if (l->own)
		fclose(l->f);
	l->own = 0;
	pthread_mutex_destroy(&l->lock);
}

void log_msg(struct log *l, int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	if (level > l->level)
		return;
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&l->lock);
	fprintf(l->f, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ kvgrid %s: ", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		names[level]);
	vfprintf(l->f, fmt, ap);
	fputc('\n', l->f);
	fflush(l->f);
	pthread_mutex_unlock(&l->lock);
	va_end(ap);
}
