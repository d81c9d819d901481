/*
 * tier_nvme_int.h - what the NVMe tier's own files share, and nothing else may call.
 *
 * The tier is one module in three files: tier_nvme.c (segments, space, the op pool and the
 * transfers), tier_nvme_recover.c (open, recovery, close) and tier_nvme_ckpt.c (the
 * checkpoint).  Locking as in tier_nvme.h: these run at open and close, when nothing else
 * touches the tier.
 */
#ifndef KVG_TIER_NVME_INT_H
#define KVG_TIER_NVME_INT_H

#include "tier_nvme.h"

/* tier_nvme.c */

/* Opens (creating and sizing if need be) segment file i into nv->segs[i].fd; *created is 1
 * for a new file.  0 or -errno. */
int nvme_seg_open_file(struct nvme *nv, uint32_t i, int *created);
/* Reads segment i's header: 0 and its generation, or KVG_ECORRUPT (new, foreign, bad). */
int nvme_seg_read_header(struct nvme *nv, uint32_t i, uint64_t *gen);
/* Sizes and fills the op pool from cfg; 0 or -ENOMEM (then nvme_pool_fini cleans up). */
int nvme_pool_init(struct nvme *nv, const struct kvg_config *cfg);
void nvme_pool_fini(struct nvme *nv);

/* tier_nvme_ckpt.c */

/* Loads index.ckpt if it is whole and agrees with every segment header, reporting its
 * entries to cb and their number in *count: 0, -ENOENT (none), or KVG_ECORRUPT (unusable:
 * nothing of it was applied). */
int nvme_ckpt_load(struct nvme *nv, void (*cb)(void *, const struct nvme_recovered *), void *ctx,
		   uint64_t *count);
/* Writes index.ckpt of the entries next yields (0 = end; it is walked twice), durably and
 * atomically: 0 or -errno (then no checkpoint is left). */
int nvme_ckpt_write(struct nvme *nv, int (*next)(void *, struct nvme_ckpt_ent *), void *ctx);
/* Removes index.ckpt (and makes that durable) before anything is written. */
void nvme_ckpt_drop(struct nvme *nv);

#endif
