/*
 * replay.h - replays a trace through a real grid (libkvgrid's public API), as a serving
 * system would drive it.
 *
 * For each request, in file order: derive one key per hash id (kvg_raw_key of the id's 8
 * bytes), ask kvg_lookup_keys() for the cached prefix, kvg_load_sync() that prefix, then
 * kvg_store_sync() every block after it (a block already present is refreshed); both with
 * the request's session hint, if any, as a serving layer that knows it would pass it.  Counting
 * is the simulator's (sim.h): hit tokens are the cached prefix's, capped at input_length,
 * looked up before the request changes anything.  Payloads are block_bytes per full block
 * (a partial last block in proportion to its tokens) and carry the block's id, which every
 * load checks.
 */
#ifndef KVG_REPLAY_H
#define KVG_REPLAY_H

#include <stdint.h>

#include "kvgrid.h"
#include "trace.h"

struct replay_opts {
	const char *policy;	  /* cfg.policy; NULL = the grid's default */
	uint64_t capacity_blocks; /* DRAM arena of this many blocks (if dram_bytes is 0) */
	uint64_t dram_bytes;	  /* or explicit tier sizes */
	uint64_t nvme_bytes;
	const char *dir;      /* NVMe tier directory; NULL or "" = DRAM only */
	uint32_t block_bytes; /* payload of a full block; a multiple of 4096 */
	int partial_bytes;    /* 1: partial last blocks are stored short (default in CLI) */
	double speed;	      /* 0: as fast as possible; 1: real time; 2: twice as fast */
	const struct kvg_config *base; /* fields to start from (io backend...); may be NULL */
	/* per request: a session hint (POLICY_HINT_*: 0 none, 1 continues, 2 last), passed
	 * as KVG_STORE_CONTINUES / KVG_STORE_LAST with the request's load and store; or NULL */
	const uint8_t *hints;
	/* engines replaying at once (0 or 1: one; at most 64): each a thread that takes the
	 * next request in order of arrival, as several engines sharing one grid */
	uint32_t engines;
	/* hosts (0 or 1: one grid; at most 16): the trace's sessions (requests grouped by their
	 * first block) are split across this many grids, each with the tier sizes above and its
	 * own NVMe directory (dir/host-N), each replayed by an engine of its own; with
	 * shared_dir they share one shared tier of shared_bytes, else nothing */
	uint32_t hosts;
	const char *shared_dir;
	uint64_t shared_bytes;
	void (*progress)(void *arg, size_t done, size_t total);
	void *progress_arg;
};

struct replay_result {
	uint64_t requests;
	uint64_t input_tokens;
	uint64_t hit_tokens;
	uint64_t blocks;
	uint64_t hit_blocks;
	uint64_t hit_blocks_tier[KVG_TIER_COUNT]; /* prefix blocks found in each tier */
	uint64_t load_errors;			  /* loads of a looked-up prefix that failed */
	uint64_t load_lost;	   /* with several engines: blocks of a looked-up prefix that
				    * another engine's store evicted before the load (not errors) */
	uint64_t store_errors;	   /* blocks the grid could not store */
	uint64_t verify_failures;  /* loaded bytes that were not the block's */
	uint64_t max_dram_blocks;  /* most blocks the DRAM tier held after a request */
	uint64_t max_index_blocks; /* most distinct blocks held in all tiers after a request */
	double load_us_p50, load_us_p90, load_us_p99, load_us_max; /* per request with a hit */
	double elapsed_s;
	double prefix_hit_token_ratio;
	double block_hit_ratio;
	struct kvg_stats stats; /* the grid's counters at the end */
};

/*
 * Opens a grid in memory (and dir, if set), replays t and closes it.  Returns 0 with *res
 * filled, or an error from kvg_open (with a reason in err) or -ENOMEM.  Errors of single
 * loads and stores are counted in *res, not returned.
 */
int replay_run(const struct trace *t, const struct replay_opts *o, struct replay_result *res,
	       char *err, size_t err_len);

#endif
