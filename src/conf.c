/*
 * conf.c - the "name = value" reader (syntax and contract in conf.h).
 *
 * Lines are read into one buffer of CONF_LINE_MAX bytes on the stack: configuration files
 * are small, and refusing a longer line is clearer than splitting it into two settings.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "err.h"
#include "kvgrid.h"

static char *conf_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* True when fgets() filled the buffer without reaching the end of the line or file. */
static int conf_too_long(FILE *f, const char *line, size_t n)
{
	if (n < CONF_LINE_MAX - 1 || line[n - 1] == '\n')
		return 0;
	int c = getc(f);
	if (c == EOF)
		return 0;
	ungetc(c, f);
	return 1;
}

int conf_read(FILE *f, const char *name, conf_fn fn, void *ctx, char *err, size_t err_len)
{
	char line[CONF_LINE_MAX], why[512];
	int lineno = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (conf_too_long(f, line, strlen(line)))
			return err_set(err, err_len, KVG_ECONFIG, "%s:%d: line too long", name,
				       lineno);
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *s = conf_trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq)
			return err_set(err, err_len, KVG_ECONFIG, "%s:%d: expected 'name = value'",
				       name, lineno);
		*eq = 0;
		char *key = conf_trim(s), *value = conf_trim(eq + 1);
		why[0] = 0;
		int rc = fn(ctx, key, value, why, sizeof(why));
		if (rc)
			return err_set(err, err_len, rc, "%s:%d: %s", name, lineno,
				       why[0] ? why : "bad setting");
	}
	if (ferror(f))
		return err_set(err, err_len, -EIO, "%s: %s", name, strerror(EIO));
	return 0;
}

int conf_load(const char *path, conf_fn fn, void *ctx, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		return err_set(err, err_len, -e, "%s: %s", path, strerror(e));
	}
	int rc = conf_read(f, path, fn, ctx, err, err_len);
	fclose(f);
	return rc;
}
