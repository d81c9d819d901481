/*
 * fuzz_key.c - libFuzzer target: key derivation from token ids (key.c through the public
 * kvg_block_keys).  Input: one byte of options (hash, parent or not, block size), then token
 * ids as little-endian u32.  Checks that keys are deterministic, that each is the chained hash
 * of its block and its parent's key, and that splitting a context anywhere on a block boundary
 * and passing the last key as parent gives the same keys.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"
#include "kvgrid.h"

#define MAX_KEYS 256

static kvg_grid *grids[2][3]; /* [hash][block size choice], opened once */
static const uint32_t block_sizes[3] = {16, 32, 64};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	for (int h = 0; h < 2; h++) {
		for (int b = 0; b < 3; b++) {
			struct kvg_config cfg;
			char err[256];
			kvg_config_init(&cfg);
			cfg.dram_bytes = 1 << 20;
			cfg.block_tokens = block_sizes[b];
			cfg.hash = h ? KVG_HASH_XXH3 : KVG_HASH_SHA256;
			cfg.workers = 1;
			snprintf(cfg.model_id, sizeof(cfg.model_id), "fuzz-model");
			if (kvg_open(&cfg, &grids[h][b], err, sizeof(err))) {
				fprintf(stderr, "fuzz_key: kvg_open: %s\n", err);
				abort();
			}
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static kvg_key keys[MAX_KEYS], again[MAX_KEYS], tail[MAX_KEYS];
	uint32_t tokens[MAX_KEYS * 16];
	kvg_key parent, ns, k;

	if (size < 1)
		return 0;
	uint8_t opt = data[0];
	kvg_grid *g = grids[opt & 1][(opt >> 1) % 3];
	uint32_t bt = block_sizes[(opt >> 1) % 3];
	const struct kvg_config *cfg = kvg_config_of(g);
	size_t n = (size - 1) / 4;
	if (n > sizeof(tokens) / sizeof(tokens[0]))
		n = sizeof(tokens) / sizeof(tokens[0]);
	memcpy(tokens, data + 1, n * 4);
	memset(&parent, opt, sizeof(parent));
	const kvg_key *par = (opt & 0x80) ? &parent : NULL;

	size_t m = kvg_block_keys(g, tokens, n, par, keys, MAX_KEYS);
	if (m != n / bt)
		abort(); /* one key per full block, no more */
	if (kvg_block_keys(g, tokens, n, par, again, MAX_KEYS) != m ||
	    memcmp(keys, again, m * sizeof(kvg_key)))
		abort(); /* deterministic */
	key_namespace(cfg, &ns);
	for (size_t i = 0; i < m; i++) {
		key_block(cfg->hash, &ns, i ? &keys[i - 1] : par, tokens + i * bt, bt, &k);
		if (memcmp(&k, &keys[i], sizeof(k)))
			abort(); /* the chain is the documented one */
	}
	if (m >= 2) {
		size_t cut = 1 + opt % (m - 1);
		size_t t = kvg_block_keys(g, tokens + cut * bt, n - cut * bt, &keys[cut - 1], tail,
					  MAX_KEYS);
		if (t != m - cut || memcmp(tail, keys + cut, t * sizeof(kvg_key)))
			abort(); /* resuming from a parent key gives the same chain */
	}
	kvg_raw_key(g, data, size, &k);
	kvg_raw_key(g, data, size, &parent);
	if (memcmp(&k, &parent, sizeof(k)))
		abort();
	return 0;
}
