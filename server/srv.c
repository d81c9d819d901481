/*
 * srv.c - the two server-wide helpers every module uses: the log line and the token check
 * (see srv.h).  Kept apart from main.c so that the fuzz targets link the server's modules
 * without its main().
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "srv.h"

void srv_log(const char *fmt, ...)
{
	char line[1024];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	line[n++] = '\n';
	/* one write per line: lines of different threads do not interleave */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

const struct srv_tenant *srv_auth(const struct srv *s, const char *token, size_t len)
{
	if (len == 0 || len >= SRV_TOKEN_MAX)
		return NULL;
	const struct srv_tenant *found = NULL;
	for (uint32_t t = 0; t < s->n_tenants; t++) {
		const char *want = s->tenants[t].token;
		size_t wl = strlen(want);
		unsigned diff = wl == 0 || wl != len;
		for (size_t i = 0; i < SRV_TOKEN_MAX - 1; i++)
			diff |= (unsigned)(uint8_t)(i < len ? token[i] : 0) ^ (uint8_t)want[i];
		if (!diff && !found)
			found = &s->tenants[t];
	}
	return found;
}
