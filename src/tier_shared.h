/*
 * tier_shared.h - the shared tier: immutable block objects in a directory that many hosts
 * mount (a distributed filesystem), used by any number of grids at once with no coordinator
 * besides the filesystem.  doc/SHARED.md gives the assumptions and what happens when one
 * fails; doc/FORMAT.md the layout.  In short:
 *
 *   shared_dir/
 *     .kvgrid/FORMAT                      "kvgrid-shared 1"
 *     .kvgrid/usage/<tenant>.<writer>     a writer's usage ledger (64 bytes, checksummed)
 *     t-<tenant>/<kk>/<key>               a block object: a record header block (record.h,
 *                                         flag REC_F_SHARED, the key inside) + the payload
 *     t-<tenant>/<kk>/.tmp-<key>-<writer>-<n>   an object being written
 *     t-<tenant>/<kk>/.bad-<key>-<writer>-<n>   an object that failed verification
 *
 * <tenant> is 16 hex digits of XXH3-64 of cfg.tenant, <key> the block key in hex, <kk> its
 * first two digits.  An object is written under a temporary name, synced, then published by
 * link() (which never replaces: EEXIST means another host published the same block), so a
 * name is either absent or a whole object.  Every read verifies the header, the key and the
 * payload checksums; an object that fails is a miss and is renamed to quarantine.
 *
 * Usage without a coordinator: each grid keeps one ledger per tenant it touched, counting
 * the bytes it published (link succeeded) and the bytes it removed (unlink or quarantine
 * succeeded: only one host's can).  The tier's usage is the sum over all ledgers, re-read
 * every cfg.shared_refresh_ms; ledgers outlive their writers, so usage is known after every
 * host restarts.  A periodic scan (every cfg.shared_grace_s) removes old temporaries and
 * quarantined objects and corrects the ledgers when the tree was quiet during the scan.
 * Recency is the object's mtime, refreshed by readers, and by local hits of published
 * blocks, at most every cfg.shared_touch_s.  A background thread does what need not delay
 * a caller: the unlink() of a temporary that link() published, the local hits' refreshes.
 *
 * Threads: every function may be called from any thread.  sh->mu guards the ledgers, the
 * usage view and the eviction candidates; the counters are atomics; the worker pool and the
 * background thread's queues have their own locks.  File I/O is never done under sh->mu
 * except the evictions' unlinks.
 */
#ifndef KVG_TIER_SHARED_H
#define KVG_TIER_SHARED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvgrid.h"
#include "log.h"

struct shared;

/* Opens (creating if needed) the tier at cfg->shared_dir.  Returns 0 or KVG_ECONFIG/-errno
 * with a reason in err. */
int shared_open(const struct kvg_config *cfg, struct log *log, struct shared **out, char *err,
		size_t err_len);
void shared_close(struct shared *sh);

/*
 * Publishes len bytes under key (parts: equal parts checksummed apart, 1 or the layers).
 * 0 when the block is in the tier afterwards (published now or by anyone before), else an
 * error (KVG_EFULL when no room could be made, -errno).
 */
int shared_publish(struct shared *sh, const kvg_key *key, const void *buf, size_t len,
		   uint32_t depth, uint32_t parts);

/*
 * shared_publish() of the payload in pieces iov[0..cnt) (a block's DRAM chunks, say).
 * *published, when not NULL, is set to 1 when this call made the object (0: it was there).
 */
int shared_publishv(struct shared *sh, const kvg_key *key, const struct iovec *iov, int cnt,
		    uint32_t depth, uint32_t parts, int *published);

/*
 * Reads and verifies the block of key into buf (cap bytes).  Returns 0 (*len, *depth set),
 * KVG_ENOTFOUND, KVG_ECORRUPT (the object failed verification and went to quarantine), or
 * KVG_EBUFSIZE (*len set to the size needed).
 */
int shared_read(struct shared *sh, const kvg_key *key, void *buf, size_t cap, size_t *len,
		uint32_t *depth);

/* Count of consecutive keys from keys[0] whose objects exist (stat in parallel); tiers[i]
 * gets KVG_TIER_SHARED for each when not NULL. */
size_t shared_present_run(struct shared *sh, const kvg_key *keys, size_t n, uint8_t *tiers);

/* Whether key's object is in the tier: 1 if it was seen there within cfg.shared_cache_ms
 * or one stat() finds it now, else 0 (an error reads as 0: the caller then publishes, and
 * an object that is there after all costs an EEXIST). */
int shared_exists(struct shared *sh, const kvg_key *key);

/* A local tier served key, which this grid believes published: its object's mtime is
 * refreshed soon by the background thread, unless this grid published or refreshed it
 * within cfg.shared_touch_s.  Cheap (no file I/O, a short lock at most once per touch_s per
 * key); any thread, any locks held. */
void shared_touch_later(struct shared *sh, const kvg_key *key);

/* Removes key's object: 1 if this call removed it, 0 if absent. */
int shared_delete(struct shared *sh, const kvg_key *key);

/* Runs fn(ctx, i) for i in [0, n) on the tier's threads and the caller's, returning when
 * every call has. */
void shared_parallel(struct shared *sh, size_t n, void (*fn)(void *ctx, size_t i), void *ctx);

/* The tier's counters (see kvg_tier_stats_get in kvgrid.h). */
void shared_stats(struct shared *sh, struct kvg_tier_stats *out);

/* One maintenance pass now (what the maintenance thread does every shared_grace_s): old
 * temporaries and quarantined objects removed, eviction candidates and ledgers refreshed.
 * Returns 0 or -errno. */
int shared_scan(struct shared *sh);

#endif
