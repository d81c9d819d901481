/*
 * policy.h - the eviction policy interface.  Each tier has one policy instance that orders
 * the tier's blocks; the tier asks it for a victim when it needs room.
 *
 * Blocks are named by their index slot (a uint32 below the index capacity).  Every call is
 * made with the grid's index lock held, so a policy needs no locking of its own; calls must
 * be O(1) amortised and must not allocate: create() sizes everything for `slots`.
 *
 * A tier calls insert() when a block enters it, hit() when a lookup or load finds it there,
 * remove() when it leaves for any reason other than victim() (delete, overwrite, failed I/O),
 * and victim() to pick the next block to evict; victim() removes the block it returns from
 * its own order.  evictable(ctx, slot) says whether a candidate may go (not pinned, not in
 * flight); a policy skips the ones that may not.  victim() returns POLICY_NONE if nothing
 * can be evicted.
 */
#ifndef KVG_POLICY_H
#define KVG_POLICY_H

#include <stdint.h>

#include "kvgrid.h"

#define POLICY_NONE UINT32_MAX

/* policy_block.hint: what the serving layer said of the session the block's request belongs
 * to (KVG_STORE_CONTINUES / KVG_STORE_LAST on kvg_store and kvg_load); a policy may ignore it */
#define POLICY_HINT_NONE      0
#define POLICY_HINT_CONTINUES 1 /* the session is open and will likely send another turn */
#define POLICY_HINT_LAST      2 /* the session ended, or a one-shot call */

struct policy_block {
	uint64_t bytes;
	uint32_t depth;	      /* index of the block in its chain (0 = first); 0 if unknown */
	uint32_t parent_slot; /* slot of the block before it, POLICY_NONE if unknown */
	uint64_t now_us;      /* time of the call */
	uint64_t key_hash;    /* first 8 bytes of the key: names a block across slot reuse */
	uint8_t hint;	      /* POLICY_HINT_*: of the request that touched it last */
	/* the call this block comes with: calls of one kvg_store/kvg_load share req_id (0 if
	 * unnamed), which has req_blocks blocks in all; a tier's own movements (promotion,
	 * demotion) are calls of one block.  Tells interleaved requests apart (policy_req.h). */
	uint32_t req_blocks;
	uint64_t req_id;
};

struct policy;

struct policy_ops {
	const char *name;
	struct policy *(*create)(uint32_t slots, uint64_t capacity_bytes,
				 const struct kvg_config *cfg);
	void (*destroy)(struct policy *p);
	void (*insert)(struct policy *p, uint32_t slot, const struct policy_block *b);
	void (*hit)(struct policy *p, uint32_t slot, const struct policy_block *b);
	void (*remove)(struct policy *p, uint32_t slot);
	uint32_t (*victim)(struct policy *p, int (*evictable)(void *ctx, uint32_t slot), void *ctx);
	/* optional: 0 to refuse a block this tier is offered (admission filter); NULL admits all */
	int (*admit)(struct policy *p, uint32_t slot, const struct policy_block *b);
	/* 1: admit() filters only what is demoted to the NVMe tier; blocks stored by the caller
	 * and promotions into DRAM are not asked (nor is the simulator's one tier) */
	uint8_t admit_nvme_only;
	/* bytes of memory the policy uses per slot (index memory accounting) */
	uint32_t bytes_per_slot;
};

/* The policy named name ("lru", ...), or NULL. */
const struct policy_ops *policy_find(const char *name);

/* Names of all policies, NULL-terminated, for --help texts. */
extern const char *const policy_names[];

#endif
