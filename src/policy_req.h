/*
 * policy_req.h - which request a policy call belongs to, for the policies that file a
 * request's blocks together ("prefix", "density").
 *
 * A request is what an engine asks of the grid for one prompt: the load of its cached
 * prefix and the store of the rest, usually two calls (kvg_load, kvg_store) with depths
 * 0..h-1 and h..n-1.  When several engines share a grid, the block calls of their
 * requests arrive interleaved, so "a run of depths 0, 1, 2, ..." no longer tells one
 * request from the next.  The grid names each call (policy_block.req_id, req_blocks) and
 * the tracker keeps up to PREQ_RUNS requests open at once:
 *
 *  - a block of a call already seen joins that call's run;
 *  - a block of a new call that carries on where an open run stopped (its depth is the
 *    run's last depth + 1, and its parent, if known, is the run's last block) joins the
 *    run most recently touched among those: the store after the load of one request;
 *  - any other block starts a run.  Starting a run first ends the runs that are done: every
 *    block of their last call has been seen, or they have not been touched for
 *    2 x PREQ_RUNS calls (a call whose blocks do not all reach this tier never counts
 *    down to zero).  With no free run the least recently touched one ends.
 *
 * Ending a run is the policy's business (an end() callback): it files the run's blocks.
 * Calls that carry no req_id (0) are taken as one stream, as before request ids existed:
 * a block that does not continue the latest run's depths ends every open run.  One
 * request after another gives the same runs either way.
 */
#ifndef KVG_POLICY_REQ_H
#define KVG_POLICY_REQ_H

#include <stdint.h>

#include "policy.h"

#define PREQ_RUNS 16

struct preq_run {
	uint64_t id;	     /* req_id of the run's latest call */
	uint32_t last_depth; /* depth of its latest block */
	uint32_t last_slot;  /* and slot */
	uint32_t left;	     /* blocks of the latest call not seen yet */
	uint32_t touched;    /* tracker clock of the latest block */
	uint8_t open;
};

struct preq {
	struct preq_run run[PREQ_RUNS];
	uint32_t clock;
	uint32_t latest; /* run of the latest block */
};

struct policy;
typedef void (*preq_end_fn)(struct policy *p, uint32_t run);

void preq_init(struct preq *t);

/* The run (below PREQ_RUNS) that block b, in slot, joins; runs that end first are handed
 * to end(p, run) before it returns. */
uint32_t preq_join(struct preq *t, uint32_t slot, const struct policy_block *b, preq_end_fn end,
		   struct policy *p);

/* The open runs into out[], least recently touched first (victims of last resort); returns
 * how many. */
uint32_t preq_by_age(const struct preq *t, uint32_t out[PREQ_RUNS]);

#endif
