/*
 * cmd_lookup.c - `kvgrid lookup`: the longest cached prefix of a token file, and the block
 * keys it hashes to (--keys), which is also how key test vectors are printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gridopt.h"

int cmd_lookup(int argc, char **argv)
{
	struct kvg_config c;
	kvg_config_init(&c);
	c.dram_bytes = 16 << 20;
	if (gridopt_parse("lookup", &argc, argv, &c))
		return 2;
	const char *tokens = NULL;
	int show_keys = 0, json = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			printf(
			    "usage: kvgrid lookup --dir DIR --tokens FILE [--keys] [--json]\n"
			    "  prints the cached prefix length in tokens and, with --keys, each\n"
			    "  block's key and the tier holding it.\n" GRIDOPT_HELP);
			return 0;
		} else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) {
			tokens = argv[++i];
		} else if (!strcmp(argv[i], "--keys")) {
			show_keys = 1;
		} else if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else {
			return cli_usage("lookup", "unknown or incomplete option '%s' (--help)",
					 argv[i]);
		}
	}
	if (!tokens)
		return cli_usage("lookup", "--tokens is required");
	uint32_t *tok;
	size_t ntok;
	if (cli_read_tokens("lookup", tokens, &tok, &ntok))
		return 1;
	kvg_grid *g = gridopt_open("lookup", &c);
	if (!g) {
		free(tok);
		return 1;
	}
	size_t nb = ntok / c.block_tokens, hit = 0;
	kvg_key *keys = calloc(nb + 1, sizeof(kvg_key));
	uint8_t *tiers = calloc(nb + 1, 1);
	kvg_block_keys(g, tok, ntok, NULL, keys, nb);
	int rc = kvg_lookup_keys(g, keys, nb, &hit, tiers);
	if (!rc) {
		if (json)
			printf("{\"tokens\": %zu, \"blocks\": %zu, \"hit_blocks\": %zu, "
			       "\"hit_tokens\": %zu}\n",
			       ntok, nb, hit, hit * c.block_tokens);
		else
			printf("%zu of %zu tokens cached (%zu of %zu full blocks)\n",
			       hit * c.block_tokens, ntok, hit, nb);
		for (size_t i = 0; show_keys && i < nb; i++) {
			char hex[65];
			kvg_key_hex(&keys[i], hex);
			printf("block %zu %s %s\n", i, hex,
			       i < hit ? (tiers[i] == KVG_TIER_DRAM ? "dram" : "nvme") : "-");
		}
	} else {
		fprintf(stderr, "kvgrid lookup: %s\n", kvg_strerror(rc));
	}
	kvg_close(g);
	free(keys);
	free(tiers);
	free(tok);
	return rc ? 1 : 0;
}
