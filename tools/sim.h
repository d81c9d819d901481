/*
 * sim.h - an in-memory cache simulator that replays a trace against an eviction policy.
 *
 * It runs the very policy code the tiers run (a struct policy_ops from policy_find()), with
 * the same call contract (insert/hit/victim/admit, one slot per block), but without
 * payloads, so a whole trace replays in well under a second and policy work is quick to
 * iterate on.  The capacity is a number of blocks: a tier whose arena holds that many
 * blocks.  "belady" is also accepted here: the offline optimum, which evicts the block
 * whose next use is farthest in the future and needs the whole trace in advance.
 *
 * Counting is the serving system's (issue 5): a request's blocks are looked up against the
 * cache as it was when the request arrived; then all its blocks are stored or refreshed in
 * order; only the longest run of cached blocks from the first one counts, as hit tokens
 * capped at input_length.
 */
#ifndef KVG_SIM_H
#define KVG_SIM_H

#include <stdint.h>

#include "kvgrid.h"
#include "trace.h"

struct sim_opts {
	const char *policy;	  /* a policy name, or "belady" */
	uint64_t capacity_blocks; /* blocks the tier holds; 0 = unbounded */
	uint64_t block_bytes;	  /* bytes of a full block (payload size); 0 means 1 */
	/* 1: a partial last block has bytes in proportion to its tokens (what an engine would
	 * store); 0: every block has block_bytes.  A block takes one place either way. */
	int partial_bytes;
	const struct kvg_config *cfg; /* passed to the policy's create(); may be NULL */
	/* called for each request with its hit tokens, as counted; may be NULL */
	void (*on_request)(void *arg, size_t index, uint64_t hit_tokens);
	void *on_request_arg;
	/* per request: a session hint (POLICY_HINT_*: 0 none, 1 the session continues, 2 last
	 * request), or NULL; given to the policy in policy_block.hint with each of the
	 * request's blocks, as the grid does with KVG_STORE_CONTINUES / KVG_STORE_LAST. */
	const uint8_t *hints;
	/* requests in flight at once (0 or 1: one after the other; at most 64): their block
	 * calls are made in turn, one block each, as when several engines share a grid */
	uint32_t interleave;
	/* called after each request (progress bars); may be NULL */
	void (*progress)(void *arg, size_t done, size_t total);
	void *progress_arg;
};

struct sim_result {
	uint64_t requests;
	uint64_t input_tokens;
	uint64_t hit_tokens; /* prefix-hit tokens, capped at input_length */
	uint64_t blocks;     /* block accesses (sum of n_blocks) */
	uint64_t hit_blocks; /* blocks of the cached prefixes */
	uint64_t inserts;    /* blocks stored */
	uint64_t refused;    /* blocks refused by admit() */
	uint64_t evictions;
	uint64_t max_resident;	       /* most blocks held at once: never above capacity_blocks */
	double prefix_hit_token_ratio; /* hit_tokens / input_tokens */
	double block_hit_ratio;	       /* hit_blocks / blocks */
};

/*
 * Replays t against opts->policy.  Returns 0 with *res filled; KVG_ECONFIG for an unknown
 * policy; -ENOMEM.  Allocates O(n_distinct) (and O(n_ids) for belady) for the run.
 */
int sim_run(const struct trace *t, const struct sim_opts *opts, struct sim_result *res);

/*
 * Next use of every access: next[j] is the index k > j of the next access to t->ids[j],
 * or UINT32_MAX if none.  next has t->n_ids entries.  Used by belady; exposed for tests.
 */
void sim_next_use(const struct trace *t, uint32_t *next);

/*
 * Oracle continuation hints, to measure what a hint from the serving layer would be worth
 * (doc/POLICIES.md, "Bounds"): hints[q] = 1 if a later request reads request q's last full
 * block, else 2 (0 if it has no full block); a share `wrong` of them, drawn from seed, is
 * flipped.  hints has t->n_reqs entries.  Returns 0 or -ENOMEM.
 */
int sim_continuation_hints(const struct trace *t, double wrong, uint64_t seed, uint8_t *hints);

#endif
