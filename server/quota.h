/*
 * quota.h - per-tenant accounting of the bytes and blocks kvgridd holds for each tenant,
 * and the choice of which of a tenant's own blocks go when it is over its quota.
 *
 * The grid does not know tenants (a tenant is only a salt in each key), so the server keeps
 * this ledger beside it: one entry per stored block (derived key, length, tenant), in a hash
 * table and in its tenant's oldest-first list.  Entries come from a pool sized at start-up
 * (track_blocks); when it is full, new blocks are stored but not accounted (counted in
 * `untracked`).  The grid may also evict a block on its own; its entry then lingers until it
 * is deleted, overwritten or reaches the head of the tenant's list, so the figure is an
 * upper bound of what the tenant holds.  One mutex guards everything.
 */
#ifndef KVG_QUOTA_H
#define KVG_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include "kvgrid.h"

struct quota;

struct quota_usage {
	uint64_t bytes;
	uint64_t blocks;
	uint64_t evictions; /* blocks deleted to keep the tenant under its quota */
};

int quota_open(uint64_t entries, uint32_t tenants, struct quota **out);
void quota_close(struct quota *q);

/*
 * Accounts a block of len bytes for tenant t (replacing an earlier entry of the same key),
 * then, while the tenant holds more than quota_bytes (0: no limit), takes its oldest blocks
 * off the ledger and writes their keys to victims (at most victims_max).  Returns how many
 * victims the caller must delete from the grid.
 */
size_t quota_add(struct quota *q, uint32_t t, const kvg_key *key, uint64_t len,
		 uint64_t quota_bytes, kvg_key *victims, size_t victims_max);

/* Forgets a block (deleted by a client). */
void quota_remove(struct quota *q, const kvg_key *key);

void quota_usage(struct quota *q, uint32_t t, struct quota_usage *u);

/* Blocks stored while the ledger was full. */
uint64_t quota_untracked(struct quota *q);

#endif
