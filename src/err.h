/*
 * err.h - one way to write a reason into the (char *err, size_t err_len) buffers that
 * public and internal functions take next to their return code.
 *
 * Every such buffer may be NULL or of length 0 (the caller wants the code only); a reason
 * longer than the buffer is truncated and still NUL-terminated.  Returning the code lets
 * a failure read as one line: return err_set(err, len, KVG_ECONFIG, "%s: bad", name);
 */
#ifndef KVG_ERR_H
#define KVG_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* Formats the reason into err (when err && err_len) and returns rc unchanged. */
int err_set(char *err, size_t err_len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* As err_set(), with a va_list (for helpers that take "..." themselves). */
int err_vset(char *err, size_t err_len, int rc, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif /* KVG_ERR_H */
