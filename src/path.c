/*
 * path.c - directories on disk.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "path.h"

static int mkdir_one(const char *p)
{
	struct stat st;
	if (mkdir(p, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(p, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int mkdir_parents(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);
	if (n == 0)
		return -ENOENT;
	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, n + 1);
	while (n > 1 && p[n - 1] == '/') /* "a/b/" is "a/b" */
		p[--n] = 0;
	/* each parent in turn, then dir itself; a parent that exists is fine */
	for (char *s = p + 1; *s; s++) {
		if (*s != '/' || s[-1] == '/')
			continue;
		*s = 0;
		int rc = mkdir_one(p);
		*s = '/';
		if (rc)
			return rc;
	}
	return mkdir_one(p);
}
