/*
 * lookup.c - cost of a longest-prefix lookup of a 128K-token context (hashing included)
 * for a Llama-3.1-8B-shaped layout, and the index's memory per block.  Prints one JSON
 * object; bench/run.sh divides lookup time by the NVMe load time of the same KV.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "kvgrid.h"

int main(int argc, char **argv)
{
	size_t ntok = argc > 1 ? strtoull(argv[1], NULL, 10) : 131072;
	const char *hash = argc > 2 ? argv[2] : "sha256";
	struct kvg_config c;
	kvg_config_init(&c);
	char err[256];
	kvg_config_set(&c, "model_id", "meta-llama/Llama-3.1-8B", err, sizeof(err));
	kvg_config_set(&c, "hash", hash, err, sizeof(err));
	c.layers = 32;
	c.kv_heads = 8;
	c.head_dim = 128;
	c.dtype = KVG_DTYPE_BF16;
	c.block_tokens = 256;
	c.dram_bytes = 64 << 20;
	c.chunk_bytes = 4096;
	kvg_grid *g;
	if (kvg_open(&c, &g, err, sizeof(err))) {
		fprintf(stderr, "lookup: %s\n", err);
		return 1;
	}
	uint32_t *tok = malloc(ntok * sizeof(uint32_t));
	for (size_t i = 0; i < ntok; i++)
		tok[i] = (uint32_t)(i * 2654435761u % 128256);
	size_t nb = ntok / c.block_tokens;
	kvg_key *keys = malloc(nb * sizeof(kvg_key));
	kvg_block_keys(g, tok, ntok, NULL, keys, nb);
	static char payload[64];
	struct kvg_io *ios = calloc(nb, sizeof(struct kvg_io));
	for (size_t i = 0; i < nb; i++)
		ios[i] = (struct kvg_io){.key = keys[i], .buf = payload, .len = sizeof(payload)};
	if (kvg_store_sync(g, ios, nb, 0)) {
		fprintf(stderr, "lookup: store failed\n");
		return 1;
	}
	size_t hit = 0;
	int reps = 20;
	double t0 = now_s();
	for (int r = 0; r < reps; r++)
		kvg_lookup(g, tok, ntok, &hit);
	double per = (now_s() - t0) / reps;
	struct kvg_stats st;
	kvg_stats_get(g, &st);
	uint64_t kv_bytes = (uint64_t)ntok * 32 * 2 * 8 * 128 * 2;
	printf("{\"tokens\": %zu, \"hash\": \"%s\", \"hit_tokens\": %zu, \"lookup_us\": %.1f, "
	       "\"kv_bytes\": %llu, \"index_bytes_per_block\": %.1f}\n",
	       ntok, hash, hit, per * 1e6, (unsigned long long)kv_bytes,
	       (double)st.index_bytes / st.index_capacity);
	kvg_close(g);
	free(ios);
	free(keys);
	free(tok);
	return hit == ntok ? 0 : 1;
}
