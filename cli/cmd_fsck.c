/*
 * cmd_fsck.c - `kvgrid fsck --dir DIR [--repair] [--json] [--quiet]`: verifies every record
 * of an NVMe tier directory offline (src/fsck.c) and, with --repair, rewrites damaged segments
 * and quarantines foreign or unreadable ones.  The grid must be closed.
 *
 * Exit status: 0 when nothing is corrupt or everything corrupt was repaired, 1 when damage
 * remains (or the directory cannot be checked), 2 on bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fsck.h"
#include "kvgrid.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvgrid fsck --dir DIR [--repair] [--json] [--quiet]\n"
		"  Verifies every block record of the NVMe tier in DIR (the grid must be closed).\n"
		"  --repair  rewrite damaged segments without their bad records, move segments\n"
		"            of another grid or with unreadable headers to DIR/quarantine/, and\n"
		"            remove index.ckpt so that the next open rebuilds the index\n"
		"  --json    print one JSON object with the counts\n"
		"  --quiet   do not list the problems found\n");
}

static void say_line(void *ctx, const char *line)
{
	fprintf(stderr, "kvgrid fsck: %s\n", line);
}

static void print_json(const char *dir, const struct fsck_report *r, int repair)
{
	printf("{\"dir\":\"");
	for (const char *p = dir; *p; p++) {
		if (*p == '"' || *p == '\\')
			putchar('\\');
		if ((unsigned char)*p >= 0x20)
			putchar(*p);
	}
	printf("\",\"repair\":%s,\"segments\":%llu,\"segments_bad\":%llu,"
	       "\"segments_unused\":%llu,\"checked\":%llu,"
	       "\"good\":%llu,\"blocks\":%llu,\"block_bytes\":%llu,\"corrupt\":%llu,"
	       "\"orphaned\":%llu,\"tombstones\":%llu,\"stale\":%llu,\"repaired\":%llu,"
	       "\"quarantined\":%llu,\"rewritten\":%llu,\"ckpt_removed\":%llu,"
	       "\"bytes_checked\":%llu,\"bytes_corrupt\":%llu}\n",
	       repair ? "true" : "false", (unsigned long long)r->segments,
	       (unsigned long long)r->segments_bad, (unsigned long long)r->segments_unused,
	       (unsigned long long)r->checked, (unsigned long long)r->good,
	       (unsigned long long)r->blocks, (unsigned long long)r->block_bytes,
	       (unsigned long long)r->corrupt, (unsigned long long)r->orphaned,
	       (unsigned long long)r->tombstones, (unsigned long long)r->stale,
	       (unsigned long long)r->repaired, (unsigned long long)r->quarantined,
	       (unsigned long long)r->rewritten, (unsigned long long)r->ckpt_removed,
	       (unsigned long long)r->bytes_checked, (unsigned long long)r->bytes_corrupt);
}

static void print_text(const char *dir, const struct fsck_report *r)
{
	printf("%s: %llu segments (%llu bad, %llu unused), %llu records checked\n", dir,
	       (unsigned long long)r->segments, (unsigned long long)r->segments_bad,
	       (unsigned long long)r->segments_unused, (unsigned long long)r->checked);
	printf("  good       %llu\n  blocks     %llu (%llu bytes)\n  corrupt    %llu (%llu bytes)\n"
	       "  orphaned   %llu\n  tombstones %llu\n  repaired   %llu (%llu segments rewritten, "
	       "%llu quarantined)\n",
	       (unsigned long long)r->good, (unsigned long long)r->blocks,
	       (unsigned long long)r->block_bytes, (unsigned long long)r->corrupt,
	       (unsigned long long)r->bytes_corrupt, (unsigned long long)r->orphaned,
	       (unsigned long long)r->tombstones, (unsigned long long)r->repaired,
	       (unsigned long long)r->rewritten, (unsigned long long)r->quarantined);
}

int cmd_fsck(int argc, char **argv)
{
	const char *dir = NULL;
	int json = 0, quiet = 0;
	struct fsck_opts o = {.say = say_line};
	struct fsck_report r;
	char err[512];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--repair")) {
			o.repair = 1;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--quiet")) {
			quiet = 1;
		} else {
			return cli_usage("fsck",
					 "unknown or incomplete option '%s' (kvgrid fsck --help)",
					 argv[i]);
		}
	}
	if (!dir || !*dir)
		return cli_usage("fsck", "--dir DIR is required (kvgrid fsck --help)");
	if (quiet)
		o.say = NULL;
	int rc = fsck_dir(dir, &o, &r, err, sizeof(err));
	if (rc)
		return cli_fail("fsck", "%s", err);
	if (json)
		print_json(dir, &r, o.repair);
	else
		print_text(dir, &r);
	return r.corrupt > r.repaired ? 1 : 0;
}
