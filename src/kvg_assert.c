/*
 * kvg_assert.c - where a broken invariant ends the process (see kvg_assert.h).  Writes with
 * write(2), not stdio: the process may be in any state, locks included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvg_assert.h"

void kvg_assert_fail(const char *file, int line, const char *cond)
{
	char msg[512];
	int n =
	    snprintf(msg, sizeof(msg), "kvgrid: %s:%d: invariant failed: %s\n", file, line, cond);
	if (n > (int)sizeof(msg) - 1)
		n = (int)sizeof(msg) - 1;
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0)
		n = 0; /* nothing more can be done: abort below says the rest */
	abort();
}
