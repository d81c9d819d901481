/*
 * version.c - the version of the library that is loaded (kvgrid.h: Versions).
 */
#include "kvgrid.h"

#define VERSION_STR2(x) #x
#define VERSION_STR(x)	VERSION_STR2(x)

const char *kvg_version(int *major, int *minor, int *patch)
{
	if (major)
		*major = KVG_VERSION_MAJOR;
	if (minor)
		*minor = KVG_VERSION_MINOR;
	if (patch)
		*patch = KVG_VERSION_PATCH;
	return VERSION_STR(KVG_VERSION_MAJOR) "." VERSION_STR(KVG_VERSION_MINOR) "." VERSION_STR(
	    KVG_VERSION_PATCH);
}
