/*
 * cmd_put.c - `kvgrid put`: store a file as one block under a key string, or as the blocks
 * of a token file (the file then holds one payload of equal size per full token block).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gridopt.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: kvgrid put --dir DIR (--key STRING | --tokens FILE) [--in FILE]\n"
		   "  stores FILE (default stdin) under a raw key string, or split evenly over\n"
		   "  the full blocks of the token ids in --tokens.\n" GRIDOPT_HELP);
}

int cmd_put(int argc, char **argv)
{
	struct kvg_config c;
	kvg_config_init(&c);
	c.dram_bytes = 64 << 20;
	if (gridopt_parse("put", &argc, argv, &c))
		return 2;
	const char *key = NULL, *tokens = NULL, *in = "-";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
			key = argv[++i];
		} else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) {
			tokens = argv[++i];
		} else if (!strcmp(argv[i], "--in") && i + 1 < argc) {
			in = argv[++i];
		} else {
			return cli_usage("put", "unknown or incomplete option '%s' (--help)",
					 argv[i]);
		}
	}
	if (!key == !tokens)
		return cli_usage("put", "give exactly one of --key or --tokens");
	void *buf;
	size_t len;
	if (cli_read_file("put", in, &buf, &len))
		return 1;
	uint32_t *tok = NULL;
	size_t ntok = 0;
	if (tokens && cli_read_tokens("put", tokens, &tok, &ntok)) {
		free(buf);
		return 1;
	}
	kvg_grid *g = gridopt_open("put", &c);
	if (!g) {
		free(buf);
		free(tok);
		return 1;
	}
	int rc = 0;
	size_t nblocks = 1;
	if (key) {
		struct kvg_io io = {.buf = buf, .len = len};
		kvg_raw_key(g, key, strlen(key), &io.key);
		rc = kvg_store_sync(g, &io, 1, 0);
	} else {
		nblocks = ntok / c.block_tokens;
		if (!nblocks || len % nblocks) {
			rc = -1;
			fprintf(stderr,
				"kvgrid put: %zu bytes do not split evenly over %zu blocks\n", len,
				nblocks);
		} else {
			kvg_key *keys = calloc(nblocks, sizeof(kvg_key));
			struct kvg_io *ios = calloc(nblocks, sizeof(struct kvg_io));
			kvg_block_keys(g, tok, ntok, NULL, keys, nblocks);
			for (size_t i = 0; i < nblocks; i++) {
				ios[i].key = keys[i];
				ios[i].buf = (uint8_t *)buf + i * (len / nblocks);
				ios[i].len = len / nblocks;
				ios[i].depth = (uint32_t)i;
			}
			rc = kvg_store_sync(g, ios, nblocks, 0);
			free(keys);
			free(ios);
		}
	}
	if (rc > 0 || rc < -1)
		fprintf(stderr, "kvgrid put: %s\n", kvg_strerror(rc));
	else if (rc == 0)
		printf("stored %zu block%s, %zu bytes\n", nblocks, nblocks == 1 ? "" : "s", len);
	kvg_close(g);
	free(buf);
	free(tok);
	return rc ? 1 : 0;
}
