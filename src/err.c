/*
 * err.c - names for every value the library returns.
 */
#include <string.h>

#include "kvgrid.h"

const char *kvg_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case KVG_ENOTFOUND: return "not found (miss)";
	case KVG_ECORRUPT: return "stored block failed verification (served as a miss)";
	case KVG_ECONFIG: return "invalid configuration";
	case KVG_EFULL: return "no room in any tier (blocks pinned or in flight)";
	case KVG_ETOOBIG: return "block larger than the tier accepts";
	case KVG_EBUFSIZE: return "buffer smaller than the stored block";
	case KVG_EDEGRADED: return "tier degraded after repeated I/O errors";
	case KVG_EBUSY: return "too many requests in flight";
	case KVG_ECLOSED: return "grid is closing";
	case KVG_EPROTO: return "protocol error from peer";
	case KVG_ETIMEDOUT: return "remote request timed out";
	case KVG_EAUTH: return "authentication refused";
	case KVG_EINPROGRESS: return "request in progress";
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}
