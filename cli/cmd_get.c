/*
 * cmd_get.c - `kvgrid get`: load the block of a key string into a file (or stdout).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gridopt.h"

int cmd_get(int argc, char **argv)
{
	struct kvg_config c;
	kvg_config_init(&c);
	c.dram_bytes = 64 << 20;
	if (gridopt_parse("get", &argc, argv, &c))
		return 2;
	const char *key = NULL, *out = "-";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			printf("usage: kvgrid get --dir DIR --key STRING [--out FILE]\n"
			       "  writes the block to FILE (default stdout); exit 1 on a "
			       "miss.\n" GRIDOPT_HELP);
			return 0;
		} else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
			key = argv[++i];
		} else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
			out = argv[++i];
		} else {
			return cli_usage("get", "unknown or incomplete option '%s' (--help)",
					 argv[i]);
		}
	}
	if (!key)
		return cli_usage("get", "--key is required");
	kvg_grid *g = gridopt_open("get", &c);
	if (!g)
		return 1;
	size_t cap = kvg_config_of(g)->max_value_bytes;
	void *buf;
	if (posix_memalign(&buf, 4096, cap)) {
		kvg_close(g);
		return cli_fail("get", "out of memory");
	}
	struct kvg_io io = {.buf = buf, .len = cap};
	kvg_raw_key(g, key, strlen(key), &io.key);
	int rc = kvg_load_sync(g, &io, 1, 0);
	kvg_close(g);
	if (rc) {
		free(buf);
		return cli_fail("get", "%s: %s", key, kvg_strerror(rc));
	}
	FILE *f = strcmp(out, "-") ? fopen(out, "wb") : stdout;
	int ok = f && fwrite(buf, 1, io.len, f) == io.len;
	if (f && f != stdout)
		ok = fclose(f) == 0 && ok;
	free(buf);
	if (!ok)
		return cli_fail("get", "%s: cannot write", out);
	return 0;
}
