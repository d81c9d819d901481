/*
 * key.h - key derivation: the namespace digest and chained block keys (doc/KEYS.md).
 */
#ifndef KVG_KEY_H
#define KVG_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "kvgrid.h"

/* The namespace digest of a config: binds model, KV layout, block size and tenant. */
void key_namespace(const struct kvg_config *cfg, kvg_key *ns);

/* Key of one block: H('B', format, ns, parent or zeros, tokens as LE u32). */
void key_block(uint32_t hash, const kvg_key *ns, const kvg_key *parent, const uint32_t *tokens,
	       size_t n_tokens, kvg_key *out);

/* Key of a raw byte string: H('R', format, ns, u64 len, bytes). */
void key_raw(uint32_t hash, const kvg_key *ns, const void *raw, size_t len, kvg_key *out);

#endif
