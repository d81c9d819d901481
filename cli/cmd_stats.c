/*
 * cmd_stats.c - `kvgrid stats`: a grid's counters per tier, for a person or (--json) a
 * program.  --server HOST:PORT asks a kvgridd instead of opening a directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gridopt.h"

static void print_tier(const char *name, const struct kvg_tier_stats *t)
{
	printf("%-5s %-10s capacity %llu  bytes %llu  blocks %llu  hits %llu  misses %llu  "
	       "evictions %llu  read %llu  written %llu  checksum_failures %llu  io_errors %llu%s\n",
	       name, t->backend, (unsigned long long)t->capacity_bytes,
	       (unsigned long long)t->bytes, (unsigned long long)t->blocks,
	       (unsigned long long)t->hits, (unsigned long long)t->misses,
	       (unsigned long long)t->evictions, (unsigned long long)t->bytes_read,
	       (unsigned long long)t->bytes_written, (unsigned long long)t->checksum_failures,
	       (unsigned long long)t->io_errors, t->degraded ? "  DEGRADED" : "");
}

static void json_tier(const char *name, const struct kvg_tier_stats *t, int last)
{
	printf("\"%s\": {\"backend\": \"%s\", \"capacity_bytes\": %llu, \"bytes\": %llu, "
	       "\"blocks\": %llu, \"hits\": %llu, \"misses\": %llu, \"evictions\": %llu, "
	       "\"bytes_read\": %llu, \"bytes_written\": %llu, \"checksum_failures\": %llu, "
	       "\"io_errors\": %llu, \"promotions\": %llu, \"demotions\": %llu, "
	       "\"degraded\": %s}%s",
	       name, t->backend, (unsigned long long)t->capacity_bytes,
	       (unsigned long long)t->bytes, (unsigned long long)t->blocks,
	       (unsigned long long)t->hits, (unsigned long long)t->misses,
	       (unsigned long long)t->evictions, (unsigned long long)t->bytes_read,
	       (unsigned long long)t->bytes_written, (unsigned long long)t->checksum_failures,
	       (unsigned long long)t->io_errors, (unsigned long long)t->promotions,
	       (unsigned long long)t->demotions, t->degraded ? "true" : "false", last ? "" : ", ");
}

int cmd_stats(int argc, char **argv)
{
	struct kvg_config c;
	kvg_config_init(&c);
	c.dram_bytes = 16 << 20;
	if (gridopt_parse("stats", &argc, argv, &c))
		return 2;
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			printf("usage: kvgrid stats (--dir DIR | --server HOST:PORT) [--json]\n"
			       GRIDOPT_HELP);
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--server") && i + 1 < argc) {
			snprintf(c.servers, sizeof(c.servers), "%s", argv[++i]);
		} else {
			return cli_usage("stats", "unknown or incomplete option '%s' (--help)",
					 argv[i]);
		}
	}
	if (!c.dir[0] && !c.servers[0])
		return cli_usage("stats", "give --dir DIR or --server HOST:PORT");
	kvg_grid *g = gridopt_open("stats", &c);
	if (!g)
		return 1;
	struct kvg_stats st;
	kvg_stats_get(g, &st);
	if (json) {
		printf("{");
		json_tier("dram", &st.tier[KVG_TIER_DRAM], 0);
		json_tier("nvme", &st.tier[KVG_TIER_NVME], 0);
		printf("\"index_blocks\": %llu, \"index_capacity\": %llu, \"index_bytes\": %llu, "
		       "\"recovered_blocks\": %llu, \"recovery_us\": %llu}\n",
		       (unsigned long long)st.index_blocks, (unsigned long long)st.index_capacity,
		       (unsigned long long)st.index_bytes, (unsigned long long)st.recovered_blocks,
		       (unsigned long long)st.recovery_us);
	} else {
		print_tier("dram", &st.tier[KVG_TIER_DRAM]);
		print_tier("nvme", &st.tier[KVG_TIER_NVME]);
		printf("index %llu of %llu blocks, %llu bytes; recovered %llu blocks in %.3f s\n",
		       (unsigned long long)st.index_blocks, (unsigned long long)st.index_capacity,
		       (unsigned long long)st.index_bytes, (unsigned long long)st.recovered_blocks,
		       st.recovery_us / 1e6);
	}
	kvg_close(g);
	return 0;
}
