/*
 * tier_nvme_ckpt.c - the NVMe tier's checkpoint: index.ckpt, written at a clean close, read
 * at the next open so that a large tier need not scan every record header.
 *
 * The checkpoint holds every live entry the grid reports at close and every segment's state
 * and generation.  It is trusted only whole: its size must match the counts in its header,
 * its trailing XXH3-64 must match, and every segment it says is in use must still carry the
 * generation it recorded; otherwise open scans the segments (tier_nvme_recover.c).  It is
 * written to index.ckpt.tmp, made durable and renamed over, and open deletes it before any
 * new write: a checkpoint on disk always describes the segments as they are.  Entries are
 * still only hints: every read verifies the record it points at (key, generation, length,
 * checksums), so a checkpoint that lies costs misses, never wrong bytes.
 *
 *  index.ckpt (little-endian, no padding anywhere)
 *  +-----------+----------------------+--------------------------------+-----------+
 *  | ckpt_head | ckpt_seg x nsegs     | nvme_ckpt_ent x entries        | csum u64  |
 *  | 56 B      | 24 B each, in order  | 52 B each                      | XXH3-64 of|
 *  |           | of segment number    | (one per live block)           | all before|
 *  +-----------+----------------------+--------------------------------+-----------+
 *
 *  ckpt_head
 *   0  magic      u64  "KVGCKPT1"
 *   8  format     u32  KVG_FORMAT_VERSION
 *  12  nsegs      u32  segments of the tier when it was written: an automatic capacity
 *                      may differ at the next open (records past the new count are
 *                      dropped, segments past the old count start free)
 *  16  grid_id    16B  must match dir/grid.id
 *  32  entries    u64  entries after the segment table (at most 2^32)
 *  40  seq        u64  the next record sequence number
 *  48  seg_bytes  u64  segment size: must match the configuration
 *
 *  ckpt_seg
 *   0  gen        u64  generation: must match the segment header when state is not free
 *   8  write_off  u64  bytes of the segment in use (records end here)
 *  16  state      u32  enum seg_state (SEG_FREE = 0; anything else is loaded as sealed)
 *  20  pad        u32  zero
 *
 *  nvme_ckpt_ent (declared in tier_nvme.h: the grid fills it)
 *   0  key        32B
 *  32  loc.seg    u32  segment number
 *  36  loc.off4k  u32  record offset / 4096
 *  40  loc.gen    u32  low 32 bits of the segment generation
 *  44  len        u32  payload bytes
 *  48  depth      u32  block index in its chain
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "tier_nvme_int.h"

#define CKPT_MAGIC	 0x3154504b4347564bull /* "KVGCKPT1" */
#define CKPT_ENTRIES_MAX (1ull << 32)

struct ckpt_head {
	uint64_t magic;
	uint32_t format;
	uint32_t nsegs;
	uint8_t grid_id[16];
	uint64_t entries;
	uint64_t seq;
	uint64_t seg_bytes;
};
_Static_assert(sizeof(struct ckpt_head) == 56, "checkpoint header is 56 bytes on disk");
_Static_assert(offsetof(struct ckpt_head, nsegs) == 12 &&
		   offsetof(struct ckpt_head, grid_id) == 16 &&
		   offsetof(struct ckpt_head, entries) == 32 &&
		   offsetof(struct ckpt_head, seq) == 40 &&
		   offsetof(struct ckpt_head, seg_bytes) == 48,
	       "checkpoint header fields sit where the diagram says");

struct ckpt_seg {
	uint64_t gen;
	uint64_t write_off;
	uint32_t state;
	uint32_t pad;
};
_Static_assert(sizeof(struct ckpt_seg) == 24, "checkpoint segment entry is 24 bytes on disk");
_Static_assert(offsetof(struct ckpt_seg, write_off) == 8 && offsetof(struct ckpt_seg, state) == 16,
	       "checkpoint segment fields sit where the diagram says");
_Static_assert(SEG_FREE == 0, "a free segment is state 0 on disk");

_Static_assert(sizeof(struct nvme_ckpt_ent) == 52, "checkpoint entry is 52 bytes on disk");
_Static_assert(offsetof(struct nvme_ckpt_ent, loc) == 32 &&
		   offsetof(struct nvme_ckpt_ent, loc.off4k) == 36 &&
		   offsetof(struct nvme_ckpt_ent, loc.gen) == 40 &&
		   offsetof(struct nvme_ckpt_ent, len) == 44 &&
		   offsetof(struct nvme_ckpt_ent, depth) == 48,
	       "checkpoint entry fields sit where the diagram says");

static int ckpt_path(const struct nvme *nv, char *buf, size_t len)
{
	return snprintf(buf, len, "%s/index.ckpt", nv->dir);
}

/* The checkpoint's body, read whole before anything of it is believed. */
struct ckpt {
	struct ckpt_head h;
	struct ckpt_seg *segs;
	struct nvme_ckpt_ent *ents;
};

/*
 * Reads f into *ck if it is a whole checkpoint of this tier: right magic, format, grid,
 * geometry and size, and a trailing checksum that matches.  0 or KVG_ECORRUPT; ck's arrays
 * are the caller's to free either way.
 */
static int ckpt_read(const struct nvme *nv, FILE *f, struct ckpt *ck)
{
	struct ckpt_head *h = &ck->h;
	struct stat fst;
	if (fstat(fileno(f), &fst) < 0)
		return KVG_ECORRUPT;
	if (fread(h, sizeof(*h), 1, f) != 1 || h->magic != CKPT_MAGIC ||
	    h->format != KVG_FORMAT_VERSION || h->nsegs == 0 || h->nsegs > (1u << 24) ||
	    h->seg_bytes != nv->seg_bytes || memcmp(h->grid_id, nv->grid_id, 16) ||
	    h->entries > CKPT_ENTRIES_MAX)
		return KVG_ECORRUPT;
	/* the counts must fit the file before anything is allocated for them */
	if ((uint64_t)fst.st_size != sizeof(*h) + (uint64_t)h->nsegs * sizeof(struct ckpt_seg) +
					 h->entries * sizeof(struct nvme_ckpt_ent) + 8)
		return KVG_ECORRUPT;
	ck->segs = calloc(h->nsegs, sizeof(*ck->segs));
	ck->ents = malloc(sizeof(*ck->ents) * (h->entries ? h->entries : 1));
	if (!ck->segs || !ck->ents)
		return KVG_ECORRUPT;
	uint64_t csum_want;
	if (fread(ck->segs, sizeof(*ck->segs), h->nsegs, f) != h->nsegs ||
	    fread(ck->ents, sizeof(*ck->ents), h->entries, f) != h->entries ||
	    fread(&csum_want, 8, 1, f) != 1)
		return KVG_ECORRUPT;
	XXH3_state_t st;
	XXH3_INITSTATE(&st);
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, h, sizeof(*h));
	XXH3_64bits_update(&st, ck->segs, sizeof(*ck->segs) * h->nsegs);
	XXH3_64bits_update(&st, ck->ents, sizeof(*ck->ents) * h->entries);
	return XXH3_64bits_digest(&st) == csum_want ? 0 : KVG_ECORRUPT;
}

/* 1 if every segment the checkpoint says is in use still has the generation it recorded:
 * otherwise the segment was reused (or damaged) after the checkpoint was written. */
static int ckpt_agrees(struct nvme *nv, const struct ckpt *ck)
{
	for (uint32_t i = 0; i < nv->nsegs && i < ck->h.nsegs; i++) {
		if (ck->segs[i].state == SEG_FREE)
			continue;
		uint64_t gen;
		if (nvme_seg_read_header(nv, i, &gen) || gen != ck->segs[i].gen)
			return 0;
	}
	return 1;
}

/* Takes the segments' state from the checkpoint and reports its entries to cb. */
static void ckpt_apply(struct nvme *nv, const struct ckpt *ck,
		       void (*cb)(void *, const struct nvme_recovered *), void *ctx)
{
	for (uint32_t i = 0; i < nv->nsegs; i++) {
		if (i >= ck->h.nsegs) { /* the capacity grew: free, its old generation kept */
			uint64_t gen;
			nv->segs[i].gen = nvme_seg_read_header(nv, i, &gen) ? 0 : gen;
			continue;
		}
		nv->segs[i].gen = ck->segs[i].gen;
		nv->segs[i].write_off = ck->segs[i].write_off;
		nv->segs[i].state = ck->segs[i].state == SEG_FREE ? SEG_FREE : SEG_SEALED;
	}
	for (uint64_t k = 0; k < ck->h.entries; k++) {
		const struct nvme_ckpt_ent *e = &ck->ents[k];
		struct nvme_recovered r = {0};
		if (e->loc.seg >= nv->nsegs)
			continue;
		r.hdr.magic = REC_MAGIC;
		memcpy(r.hdr.key, e->key.bytes, KVG_KEY_BYTES);
		r.hdr.payload_len = e->len;
		r.hdr.depth = e->depth;
		r.hdr.seq = k; /* a checkpoint holds one entry per key */
		r.loc = e->loc;
		cb(ctx, &r);
	}
	nv->seq = ck->h.seq;
}

int nvme_ckpt_load(struct nvme *nv, void (*cb)(void *, const struct nvme_recovered *), void *ctx,
		   uint64_t *count)
{
	char path[4200];
	ckpt_path(nv, path, sizeof(path));
	FILE *f = fopen(path, "rb");
	if (!f)
		return -ENOENT;
	struct ckpt ck = {0};
	int rc = ckpt_read(nv, f, &ck);
	if (!rc && !ckpt_agrees(nv, &ck))
		rc = KVG_ECORRUPT;
	if (!rc) {
		ckpt_apply(nv, &ck, cb, ctx);
		*count = ck.h.entries;
	}
	free(ck.segs);
	free(ck.ents);
	fclose(f);
	return rc;
}

int nvme_ckpt_write(struct nvme *nv, int (*next)(void *, struct nvme_ckpt_ent *), void *ctx)
{
	char path[4200], tmp[4300];
	ckpt_path(nv, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return -errno;
	char *fbuf = malloc(1 << 20); /* per call: two grids may close at once */
	if (fbuf)
		setvbuf(f, fbuf, _IOFBF, 1 << 20);
	struct ckpt_head h = {.magic = CKPT_MAGIC,
			      .format = KVG_FORMAT_VERSION,
			      .nsegs = nv->nsegs,
			      .seq = nv->seq,
			      .seg_bytes = nv->seg_bytes};
	memcpy(h.grid_id, nv->grid_id, 16);
	/* count first: the header carries the number of entries */
	struct nvme_ckpt_ent e;
	uint64_t count = 0;
	while (next(ctx, &e))
		count++;
	h.entries = count;
	XXH3_state_t st;
	XXH3_INITSTATE(&st);
	XXH3_64bits_reset(&st);
	int ok = fwrite(&h, sizeof(h), 1, f) == 1;
	XXH3_64bits_update(&st, &h, sizeof(h));
	for (uint32_t i = 0; i < nv->nsegs && ok; i++) {
		struct ckpt_seg s = {.gen = nv->segs[i].gen,
				     .write_off = nv->segs[i].write_off,
				     .state = nv->segs[i].state};
		ok = fwrite(&s, sizeof(s), 1, f) == 1;
		XXH3_64bits_update(&st, &s, sizeof(s));
	}
	uint64_t written = 0;
	while (ok && written < count && next(ctx, &e)) {
		ok = fwrite(&e, sizeof(e), 1, f) == 1;
		XXH3_64bits_update(&st, &e, sizeof(e));
		written++;
	}
	uint64_t c = XXH3_64bits_digest(&st);
	ok = ok && written == count && fwrite(&c, 8, 1, f) == 1 && fflush(f) == 0 &&
	     fsync(fileno(f)) == 0;
	fclose(f);
	free(fbuf);
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return -EIO;
	}
	fsync(nv->dir_fd);
	return 0;
}

void nvme_ckpt_drop(struct nvme *nv)
{
	char path[4200];
	ckpt_path(nv, path, sizeof(path));
	if (unlink(path) == 0)
		fsync(nv->dir_fd);
}
