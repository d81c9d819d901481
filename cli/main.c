/*
 * main.c - build/kvgrid: the command line of the grid.  Dispatches to cli/cmd_*.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "record.h"
#include "kvgrid.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
    {"put", cmd_put, "store a file as a block (by key string or token file)"},
    {"get", cmd_get, "load a block into a file"},
    {"lookup", cmd_lookup, "longest cached prefix of a token file"},
    {"stats", cmd_stats, "counters of a grid, per tier"},
    {"fsck", cmd_fsck, "verify every block on disk, report and repair"},
    {"bench", cmd_bench, "store/load throughput and latency of a tier"},
    {"demo", cmd_demo, "store, overflow, reopen and verify a synthetic conversation"},
    {"stress", cmd_stress, "threads storing and verifying blocks (crash testing)"},
    {"replay", cmd_replay, "replay a Mooncake trace through the grid"},
    {"sim", cmd_sim, "TTFT, energy and cost model of a replay"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: kvgrid COMMAND [options]   (kvgrid COMMAND --help for each)\n\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("kvgrid %d.%d (format %d, NVMe record format %u)\n", KVG_VERSION_MAJOR,
		       KVG_VERSION_MINOR, KVG_FORMAT_VERSION, KVG_RECORD_FORMAT);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kvgrid: unknown command '%s' (kvgrid --help lists them)\n", argv[1]);
	return 2;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	return kvg_parse_size(s, out) ? -1 : 0; /* one size syntax for flags and settings */
}

static void vsay(const char *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "kvgrid %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(cmd, fmt, ap);
	va_end(ap);
	return 2;
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(cmd, fmt, ap);
	va_end(ap);
	return 1;
}
