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

/*
 * Block sizes, for telling a partial block when its request has no other block to compare
 * with (a one-block call: a RESP SET of one chunk).  Full blocks of a model come in one
 * size, over and over; partial ones in sizes spread over a range.  A size that two stores
 * and at least 1/64 of recent ones had is common; a block is short when its size is not
 * common and below the largest common one.  Two models (or tenants) with other block
 * sizes sharing a tier both have common sizes, so neither is taken for partial blocks of
 * the other.
 */
#define PSIZE_SLOTS 16

struct psize {
	uint64_t bytes[PSIZE_SLOTS];
	uint32_t count[PSIZE_SLOTS]; /* stores of that size, halved every 4096 stores */
	uint32_t total;
};

void psize_note(struct psize *z, uint64_t bytes); /* a block of bytes was stored */
int psize_short(const struct psize *z, uint64_t bytes);

#endif
