/*
 * index.h - the grid's index: every block the grid holds, in any tier, by key.
 *
 * A fixed array of entries (slots) sized at open, and a chained hash table of slot numbers;
 * no allocation after index_init().  The caller (grid_*.c) holds the grid lock around every
 * call and owns the meaning of the state bits.  76 bytes per entry plus 4 per bucket; the
 * policies add their own per-slot bytes (doc/ARCHITECTURE.md sums them).
 */
#ifndef KVG_INDEX_H
#define KVG_INDEX_H

#include <stdint.h>

#include "kvgrid.h"

#define SLOT_NONE UINT32_MAX

/* entry.state bits */
#define E_USED	    0x01 /* slot is allocated */
#define E_DRAM	    0x02 /* a verified copy is in the DRAM arena */
#define E_NVME	    0x04 /* a record is on NVMe at (seg, off4k, gen) */
#define E_FILLING   0x08 /* being stored: not visible to lookup or load yet */
#define E_DEMOTING  0x10 /* its DRAM copy is being written to NVMe or the shared tier */
#define E_PROMOTING 0x20 /* an NVMe copy is being copied into DRAM */
#define E_POL_DRAM  0x40 /* in the DRAM policy's order */
#define E_POL_NVME  0x80 /* in the NVMe policy's order */

struct entry {
	kvg_key key;
	uint32_t len;	       /* payload bytes */
	uint32_t hnext;	       /* hash chain */
	uint32_t dram;	       /* first arena chunk, SLOT_NONE if not in DRAM */
	uint32_t seg;	       /* NVMe segment, SLOT_NONE if not on NVMe */
	uint32_t off4k;	       /* record offset in the segment, in 4 KiB units */
	uint32_t gen;	       /* segment generation the record was written under */
	uint32_t depth;	       /* block index in its chain (policy hint) */
	uint32_t snext, sprev; /* list of the entries of one segment */
	uint16_t pins;
	uint16_t refs; /* transfers in flight that read this entry's bytes */
	uint8_t state;
	uint8_t hits; /* saturating count of hits (admission filter) */
	uint8_t hint; /* POLICY_HINT_* of the last request that stored or loaded it */
	/* 1: promoted (cache mode), so used since its NVMe record was written; when it leaves
	 * DRAM the record is written again (demoted as if DRAM-only), so that its place in the
	 * NVMe tier's write order -- which whole-segment eviction follows -- is its last use */
	uint8_t nvme_stale : 1;
	/* 1: believed in the shared tier (published or promoted from there by this grid, or
	 * recovered from NVMe by a grid with a shared tier): when it leaves the local tiers
	 * (cfg.shared_demote) it is published only if a check finds it gone from there (another
	 * host evicted or deleted it); local hits refresh its object's recency */
	uint8_t in_shared : 1;
};
_Static_assert(sizeof(struct entry) == 76, "index entry size is part of the memory budget");

struct index {
	struct entry *e;
	uint32_t *bucket;
	uint32_t cap, mask, used, free_head;
};

int index_init(struct index *ix, uint32_t cap);
void index_free(struct index *ix);
uint32_t index_find(const struct index *ix, const kvg_key *key);
/* A new slot for key (which must not be present), or SLOT_NONE if the index is full. */
uint32_t index_add(struct index *ix, const kvg_key *key);
void index_del(struct index *ix, uint32_t slot);
uint64_t index_bytes(const struct index *ix);

#endif
