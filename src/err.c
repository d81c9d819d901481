/*
 * err.c - names for every value the library returns, and the one formatter of reasons
 * into callers' (err, err_len) buffers (err.h).
 */
#include "err.h"

#include <stdio.h>
#include <string.h>

#include "kvgrid.h"

int err_vset(char *err, size_t err_len, int rc, const char *fmt, va_list ap)
{
	if (err && err_len)
		vsnprintf(err, err_len, fmt, ap);
	return rc;
}

int err_set(char *err, size_t err_len, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(err, err_len, rc, fmt, ap);
	va_end(ap);
	return rc;
}

const char *kvg_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case KVG_ENOTFOUND:
		return "not found (miss)";
	case KVG_ECORRUPT:
		return "stored block failed verification (served as a miss)";
	case KVG_ECONFIG:
		return "invalid configuration";
	case KVG_EFULL:
		return "no room in any tier (blocks pinned or in flight)";
	case KVG_ETOOBIG:
		return "block larger than the tier accepts";
	case KVG_EBUFSIZE:
		return "buffer smaller than the stored block";
	case KVG_EDEGRADED:
		return "tier degraded after repeated I/O errors";
	case KVG_EBUSY:
		return "too many requests in flight";
	case KVG_ECLOSED:
		return "grid is closing";
	case KVG_EPROTO:
		return "protocol error from peer";
	case KVG_ETIMEDOUT:
		return "remote request timed out";
	case KVG_EAUTH:
		return "authentication refused";
	case KVG_EINPROGRESS:
		return "request in progress";
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}
