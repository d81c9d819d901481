/*
 * conf.h - the one reader of "name = value" files: the grid's config (config.c), kvgridd's
 * (server/main.c), model configs (engine/model.c) and cost-model profiles (costmodel.c).
 * The reader knows the syntax; what a name means is the caller's, through a callback.
 *
 * Syntax, the same for every file:
 *   - one setting per line: name = value; the value is everything after the first '='
 *     (it may contain '='), with no quoting or escapes;
 *   - '#' starts a comment that runs to the end of the line (so no name or value holds '#');
 *   - blank lines are skipped; white space around name and value, and a CR before the LF,
 *     are ignored;
 *   - a line longer than CONF_LINE_MAX bytes is refused with its number, never split.
 * Reading stops at the first error; settings before it have been applied.
 */
#ifndef KVG_CONF_H
#define KVG_CONF_H

#include <stddef.h>
#include <stdio.h>

#define CONF_LINE_MAX 8192

/*
 * Called once per setting, in file order.  name and value are trimmed and valid only during
 * the call.  Returns 0 to go on, or a negative code to stop with; then it writes a reason
 * (without the file and line, which the reader adds) to why, why_len bytes, never NULL.
 */
typedef int (*conf_fn)(void *ctx, const char *name, const char *value, char *why, size_t why_len);

/*
 * Reads the file at path through fn.  Returns 0; -errno if it cannot be opened or read
 * ("path: reason" in err); fn's code ("path:line: why"); or KVG_ECONFIG for a line that is
 * not a setting or is too long ("path:line: expected 'name = value'", "path:line: line too
 * long").  err may be NULL or err_len 0.
 */
int conf_load(const char *path, conf_fn fn, void *ctx, char *err, size_t err_len);

/* As conf_load(), from an open stream (a pipe, fmemopen()); name stands for the path in
 * reasons.  f stays open and owned by the caller. */
int conf_read(FILE *f, const char *name, conf_fn fn, void *ctx, char *err, size_t err_len);

#endif /* KVG_CONF_H */
