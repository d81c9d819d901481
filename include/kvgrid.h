/*
 * kvgrid.h - the public contract of libkvgrid, a KV-cache memory grid for LLM inference.
 *
 * An inference engine embeds libkvgrid to keep attention KV blocks outside GPU memory, in a
 * host DRAM arena and on local NVMe, so that a returning context is reloaded instead of
 * re-prefilled.  Blocks are addressed by chained hashes of their token ids, salted by a
 * namespace (model, KV layout, tenant); a lookup answers the longest cached prefix.
 *
 * Conventions, for every function below:
 *   - Actions return int: 0 on success, -errno for operating-system errors, or one of the
 *     KVG_E* codes (a reserved negative range); kvg_strerror() names any of them.
 *   - A miss is a result (KVG_ENOTFOUND), never a logged error.  A block whose checksum fails
 *     is counted and reported as a miss; its bytes are never returned.
 *   - The library has no global state: any number of grids may be open in one process.
 *   - Unless a function says otherwise, a kvg_grid may be used by many threads at once.
 *   - Pointers passed in are borrowed for the duration of the call only, except the buffers
 *     and the kvg_io array of an asynchronous request, which the caller keeps valid and
 *     untouched until the request has completed (kvg_req_poll() returned non-EINPROGRESS or
 *     the done callback ran).
 */
#ifndef KVGRID_H
#define KVGRID_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Versions.  KVG_VERSION_MAJOR is the ABI version: the number in the library's SONAME
 * (libkvgrid.so.1), raised only by a change that could break a program built against an
 * older header, which then needs rebuilding.  MINOR grows with compatible additions: new
 * functions (in a new symbol version node, KVGRID_1.1 and so on, so that a program using
 * them fails to load on an older library instead of failing later) or fields appended to
 * struct kvg_config.  PATCH counts fixes.  These macros give the header's version;
 * kvg_version() gives the version of the library actually loaded.
 */
#define KVG_VERSION_MAJOR  1
#define KVG_VERSION_MINOR  1
#define KVG_VERSION_PATCH  0
#define KVG_VERSION_NUMBER (KVG_VERSION_MAJOR * 10000 + KVG_VERSION_MINOR * 100 + KVG_VERSION_PATCH)
#define KVG_FORMAT_VERSION 1 /* key derivation, and the shared tier's object format */

/* Marks the library's exported functions; everything else in libkvgrid.so is hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define KVG_API __attribute__((visibility("default")))
#else
#define KVG_API
#endif

/*
 * The version of the loaded library as "MAJOR.MINOR.PATCH", a static string; also stores
 * each part where the pointer is not NULL.  A program may check at start-up that the major
 * version is the one it was built with (KVG_VERSION_MAJOR).  Never fails; any thread.
 */
KVG_API const char *kvg_version(int *major, int *minor, int *patch);

/* ---- errors -------------------------------------------------------------------------- */

#define KVG_EBASE	(-30700)
#define KVG_ENOTFOUND	(KVG_EBASE - 0)	 /* key not present in any tier: a miss */
#define KVG_ECORRUPT	(KVG_EBASE - 1)	 /* stored bytes failed verification: served as a miss */
#define KVG_ECONFIG	(KVG_EBASE - 2)	 /* bad configuration value or file */
#define KVG_EFULL	(KVG_EBASE - 3)	 /* no tier can place the block (all pinned or too big) */
#define KVG_ETOOBIG	(KVG_EBASE - 4)	 /* value larger than the tier's limit */
#define KVG_EBUFSIZE	(KVG_EBASE - 5)	 /* load buffer smaller than the stored block */
#define KVG_EDEGRADED	(KVG_EBASE - 6)	 /* tier disabled after repeated I/O errors */
#define KVG_EBUSY	(KVG_EBASE - 7)	 /* request pool exhausted; retry after completions */
#define KVG_ECLOSED	(KVG_EBASE - 8)	 /* grid is closing */
#define KVG_EPROTO	(KVG_EBASE - 9)	 /* remote peer spoke an invalid protocol */
#define KVG_ETIMEDOUT	(KVG_EBASE - 10) /* remote request timed out */
#define KVG_EAUTH	(KVG_EBASE - 11) /* remote authentication refused */
#define KVG_EINPROGRESS (KVG_EBASE - 12) /* asynchronous request not finished yet */
#define KVG_ELAST	(KVG_EBASE - 12)

/* Returns a static string for any value returned by this library (0, -errno, KVG_E*). */
KVG_API const char *kvg_strerror(int err);

/* ---- configuration -------------------------------------------------------------------- */

enum kvg_dtype {
	KVG_DTYPE_FP16 = 0,
	KVG_DTYPE_BF16 = 1,
	KVG_DTYPE_FP32 = 2,
	KVG_DTYPE_FP8 = 3,
	KVG_DTYPE_U8 = 4
};
enum kvg_hash { KVG_HASH_SHA256 = 0, KVG_HASH_XXH3 = 1 };
enum kvg_io_backend { KVG_IO_AUTO = 0, KVG_IO_URING = 1, KVG_IO_PSYNC = 2, KVG_IO_FAULT = 3 };
enum kvg_durability { KVG_DURABILITY_CACHE = 0, KVG_DURABILITY_DURABLE = 1 };
/* KVG_TIER_COUNT sizes struct kvg_stats.tier[] (DRAM and NVMe) and never changes; the shared
 * tier (cfg.shared_dir, doc/SHARED.md) is reported by lookups and loads as KVG_TIER_SHARED and
 * its counters come from kvg_tier_stats_get(). */
enum kvg_tier {
	KVG_TIER_DRAM = 0,
	KVG_TIER_NVME = 1,
	KVG_TIER_COUNT = 2,
	KVG_TIER_SHARED = 2,
	KVG_TIER_NONE = 255
};

#define KVG_NAME_MAX 128

/*
 * Everything a grid is opened with.  Fill it with kvg_config_init() (defaults that work:
 * DRAM only, 1 GiB), then set fields directly, with kvg_config_set("name", "value") or from
 * a file with kvg_config_load().  Strings are copied into the struct.
 *
 * Growing without breaking programs: the struct starts with its size in bytes, which
 * kvg_config_init() sets to sizeof(struct kvg_config) as the program was compiled, so the
 * library always knows which fields the program has.  Fields are only ever appended; none
 * moves, shrinks or changes meaning within an ABI version (KVG_VERSION_MAJOR).  So:
 *   - a program built against an older, smaller struct opens a grid with a newer library:
 *     the fields it does not have take their defaults;
 *   - a program built against a newer, larger struct runs on an older library as long as
 *     the fields that library does not know are left zero (as kvg_config_init leaves them
 *     there); a non-zero one is refused by kvg_open() with KVG_ECONFIG, never ignored.
 * This is the size-field pattern of Linux's clone3()/openat2() structs, chosen over an
 * opaque handle with getters and setters because programs (and kvgrid's own tools) set
 * these fields directly, and over reserved words because a size tells "field unknown to the
 * program: use the default" apart from "field set to zero", which reserved room cannot.
 */
struct kvg_config {
	uint32_t size; /* bytes of this struct as the program knows it: set by kvg_config_init */

	/* namespace: what makes KV reusable (see doc/KEYS.md) */
	char model_id[KVG_NAME_MAX]; /* e.g. "meta-llama/Llama-3.1-8B" */
	char tenant[KVG_NAME_MAX];   /* tenant salt; "" is the default tenant */
	uint32_t dtype;		     /* enum kvg_dtype */
	uint32_t layers;
	uint32_t kv_heads;
	uint32_t head_dim;
	uint32_t block_tokens; /* 16..1024, default 256 */
	uint32_t hash;	       /* enum kvg_hash, default SHA-256 */

	/* DRAM tier */
	uint64_t dram_bytes;  /* arena size; 0 disables the tier */
	uint32_t chunk_bytes; /* arena allocation unit, default 256 KiB */
	int hugepages;	      /* 1: try MADV_HUGEPAGE (default) */
	int mlock;	      /* 1: mlock the arena */

	/* NVMe tier */
	char dir[4096];		    /* directory of segment files; "" disables the tier */
	uint64_t nvme_bytes;	    /* capacity of the tier on disk; 0 (default): automatic, half of
				     * the free space on dir's filesystem plus what the grid's
				     * segment files hold, at most 16 GiB (doc/CONFIG.md).  A set
				     * value over that room is refused at open.  Disk is taken a
				     * segment at a time as the tier fills. */
	uint64_t segment_bytes;	    /* size of one segment file, default 256 MiB */
	uint32_t io_backend;	    /* enum kvg_io_backend */
	uint32_t queue_depth;	    /* in-flight I/Os per ring, default 64 */
	uint32_t io_threads;	    /* psync worker threads / uring rings, default 4 / 1 */
	uint32_t durability;	    /* enum kvg_durability */
	uint32_t io_error_limit;    /* errors before the tier is degraded, default 16 */
	uint32_t degraded_retry_ms; /* how long a degraded tier rests, default 5000 */
	char fault_plan[256];	    /* plan of the fault backend (doc/DURABILITY.md) */

	/* index, policies and movement between tiers */
	uint64_t max_blocks;	  /* index capacity; 0 = derived from the tier sizes */
	uint64_t max_value_bytes; /* largest block accepted, default 64 MiB */
	char policy[32];	  /* eviction policy name, default "density" (doc/POLICIES.md) */
	int demote_on_evict;	  /* DRAM victims are written to NVMe (default 1) */
	int promote_on_hit;	  /* NVMe hits are copied to DRAM (default 1) */
	int nvme_admit_on_reuse;  /* write to NVMe only blocks hit at least once (default 0) */
	int write_through;	  /* stores go to NVMe at once as well as DRAM (default 0) */
	uint64_t dram_free_bytes; /* with NVMe: DRAM kept free by demoting in the background,
				   * so stores rarely wait for NVMe writes (default 0: off) */
	uint32_t req_max;	  /* asynchronous requests in flight, default 1024 */
	uint32_t workers;	  /* threads that run DRAM copies and callbacks, default 2 */

	/* remote: "host:port[,host:port...]" switches the grid to kvgridd servers */
	char servers[1024];
	char auth_token_file[1024];
	uint32_t timeout_ms; /* remote request timeout, default 5000 */

	char log_file[1024]; /* "" logs to stderr */
	int log_level;	     /* 0 errors, 1 warnings (default), 2 info, 3 debug */

	/* shared tier (KVGRID 1.1): a directory many hosts mount; doc/SHARED.md */
	char shared_dir[4096];	      /* "" (default) disables the tier */
	uint64_t shared_bytes;	      /* capacity across all hosts; 0: half the filesystem */
	uint64_t shared_tenant_bytes; /* per-tenant quota across all hosts; 0: none */
	int shared_write_through;     /* stores are published to the tier (default 1) */
	int shared_sync;	      /* fsync an object before publishing it (default 1) */
	uint32_t shared_threads;      /* parallel file operations, default 8 */
	uint32_t shared_grace_s;      /* age at which temporaries are removed, default 600 */
	uint32_t shared_touch_s;      /* recency is refreshed at most this often, default 60 */
	uint32_t shared_refresh_ms;   /* other hosts' usage is re-read this often, default 200 */
	uint32_t shared_cache_ms;     /* a key seen in the tier is taken as present this long by
				       * lookups, default 5000; 0: every lookup asks the tier */
	int shared_demote; /* blocks leaving the local tiers (DRAM victims no NVMe takes, the
			    * live blocks of an NVMe segment being reused) are published to the
			    * tier if the policy would keep them (default 0) */
};

/*
 * Fills the first size bytes of cfg with the defaults (zero past the fields this library
 * knows) and sets cfg->size = size.  size is what the program was compiled with; programs
 * call the kvg_config_init() below, which passes it, and bindings from other languages pass
 * their own.  Returns 0, or KVG_ECONFIG (cfg untouched) if cfg is NULL or size is smaller
 * than the size field itself.
 */
KVG_API int kvg_config_init_size(struct kvg_config *cfg, size_t size);

/* Fills cfg with the defaults.  Never fails. */
static inline void kvg_config_init(struct kvg_config *cfg)
{
	(void)kvg_config_init_size(cfg, sizeof(*cfg));
}

/*
 * Sets one field by name, as a config file or command line would ("dram_bytes", "4G").
 * Sizes accept K, M, G, T suffixes (powers of 1024).  Only fields within cfg->size are
 * known (cfg comes from kvg_config_init).  Returns 0, or KVG_ECONFIG with a one-line reason
 * written to err (which may be NULL).
 */
KVG_API int kvg_config_set(struct kvg_config *cfg, const char *name, const char *value, char *err,
			   size_t err_len);

/*
 * Reads "name = value" lines ('#' starts a comment) from path into cfg.  Returns 0, -errno
 * if the file cannot be read, or KVG_ECONFIG with "path:line: reason" in err.
 */
KVG_API int kvg_config_load(struct kvg_config *cfg, const char *path, char *err, size_t err_len);

/* Parses a size as settings do: "123", "4K", "1M", "2GiB", "1T" (powers of 1024).  Returns 0,
 * or KVG_ECONFIG for anything else (signs, garbage, overflow). */
KVG_API int kvg_parse_size(const char *s, uint64_t *out);

/* Bytes of one full block's KV for the configured layout (0 if the layout is unset). */
KVG_API uint64_t kvg_config_block_bytes(const struct kvg_config *cfg);

/* ---- the grid ------------------------------------------------------------------------- */

typedef struct kvg_grid kvg_grid;

/*
 * Opens a grid: allocates and touches the DRAM arena, opens or creates the NVMe directory
 * and recovers its index.  cfg (initialised by kvg_config_init) is copied: cfg->size bytes
 * of it are read, fields beyond them take their defaults.  *out is owned by the caller
 * until kvg_close().  Returns 0, KVG_ECONFIG (with a reason in err: a bad value, cfg->size
 * unset, or a field this library does not know set to non-zero), or -errno.
 */
KVG_API int kvg_open(const struct kvg_config *cfg, kvg_grid **out, char *err, size_t err_len);

/* Waits for requests in flight, makes the NVMe tier's index durable and frees everything. */
KVG_API void kvg_close(kvg_grid *g);

/*
 * The configuration the grid runs with (defaults resolved).  Valid until kvg_close().  Its
 * size is the one kvg_open() was given, capped at the library's own, so a copy of it opens
 * another grid; a program built against a newer kvgrid.h than the library reads only the
 * fields within size.
 */
KVG_API const struct kvg_config *kvg_config_of(const kvg_grid *g);

/* ---- keys ----------------------------------------------------------------------------- */

#define KVG_KEY_BYTES 32
typedef struct kvg_key {
	uint8_t bytes[KVG_KEY_BYTES];
} kvg_key;

/*
 * Chained block keys for token ids: key[i] = H(format, namespace, key[i-1], tokens of block
 * i as little-endian u32).  parent is the key of the block before tokens[0] (NULL at the
 * start of a context).  Writes at most max_keys keys, one per full block, and returns how
 * many it wrote.  Deterministic across processes, runs and machines (doc/KEYS.md).
 */
KVG_API size_t kvg_block_keys(const kvg_grid *g, const uint32_t *tokens, size_t n_tokens,
			      const kvg_key *parent, kvg_key *keys, size_t max_keys);

/*
 * A key for an engine's own block hash or any byte string (vLLM, SGLang, LMCache names):
 * H(format, namespace, "raw", bytes).  Tenants stay apart through the namespace.
 */
KVG_API void kvg_raw_key(const kvg_grid *g, const void *raw, size_t len, kvg_key *key);

/* Writes the key as 64 lowercase hex digits and a NUL into hex (65 bytes). */
KVG_API void kvg_key_hex(const kvg_key *key, char *hex);

/* ---- lookup --------------------------------------------------------------------------- */

/*
 * Length in tokens of the longest prefix of tokens whose blocks are all present, in any
 * tier (a multiple of block_tokens).  Returns 0 and sets *hit_tokens, or an error.
 */
KVG_API int kvg_lookup(kvg_grid *g, const uint32_t *tokens, size_t n_tokens, size_t *hit_tokens);

/*
 * Count of consecutive keys from keys[0] that are present.  tiers, when not NULL, receives
 * the tier of each of the first *hit_blocks keys (enum kvg_tier; KVG_TIER_NONE from a
 * remote grid's server too old to say).
 */
KVG_API int kvg_lookup_keys(kvg_grid *g, const kvg_key *keys, size_t n_keys, size_t *hit_blocks,
			    uint8_t *tiers);

/* ---- asynchronous store and load ------------------------------------------------------ */

/*
 * One block of a batch.  The caller owns the array and every buf until the request is done.
 * store: buf holds len bytes.  load: buf has room for len bytes; on success len is set to
 *        the block's length.  status is 0 or an error per block (KVG_ENOTFOUND is a miss);
 *        tier is where a load found the block.  depth, when known, is the block's index in
 *        its chain (0 = first block); policies use it.
 */
struct kvg_io {
	kvg_key key;
	void *buf;
	size_t len;
	uint32_t depth;
	int status;
	uint8_t tier;
};

typedef struct kvg_req kvg_req;

/* Called once when every block of a request has finished, from a grid thread or the
 * submitter's, before waiters in kvg_req_wait() are released; inside it kvg_req_poll()
 * already answers the final status, and kvg_req_free() may be called on the request. */
typedef void (*kvg_done_fn)(kvg_req *req, void *arg);
/* Called when layer `layer` of every block of a load has arrived (with KVG_LOAD_LAYERS).
 * Both callbacks may run on the NVMe tier's I/O thread: there they must not wait for the
 * grid's I/O (kvg_req_wait, kvg_load_sync of blocks on NVMe), which that thread completes. */
typedef void (*kvg_layer_fn)(kvg_req *req, uint32_t layer, void *arg);

#define KVG_LOAD_LAYERS	   0x1 /* complete layer by layer (needs cfg.layers) */
#define KVG_LOAD_NOPROMOTE 0x2 /* do not copy NVMe hits to DRAM */
#define KVG_STORE_NVME	   0x4 /* write to NVMe as well, now (write-through for this batch) */
/*
 * Session hints, on kvg_store and kvg_load (and the flags of kvg_store_sync/kvg_load_sync):
 * what the engine or agent framework knows of the session this request belongs to.
 * KVG_STORE_CONTINUES: the session is open and will likely send another turn (its blocks
 * are worth keeping); KVG_STORE_LAST: the session has ended, or this is a one-shot call (its
 * blocks are likely dead).  The grid hands the hint to the eviction policy with every block
 * of the batch; a policy may learn from it ("density" does: doc/POLICIES.md) or ignore it.
 * A hint never changes what is stored or returned.  At most one of the two per request
 * (both: -EINVAL).  A remote grid (cfg.servers) ignores them.
 */
#define KVG_STORE_CONTINUES 0x8
#define KVG_STORE_LAST	    0x10

struct kvg_req_opts {
	uint32_t flags;
	kvg_done_fn done;
	kvg_layer_fn layer_done;
	void *arg;
};

/*
 * Starts storing n blocks.  A key already present is refreshed (its bytes are kept).
 * *out is the request handle, owned by the caller until kvg_req_free().  opts may be NULL.
 * Returns 0, KVG_EBUSY when req_max requests are in flight, or an error.
 */
KVG_API int kvg_store(kvg_grid *g, struct kvg_io *ios, size_t n, const struct kvg_req_opts *opts,
		      kvg_req **out);

/* Starts loading n blocks into their bufs; as kvg_store(). */
KVG_API int kvg_load(kvg_grid *g, struct kvg_io *ios, size_t n, const struct kvg_req_opts *opts,
		     kvg_req **out);

/* KVG_EINPROGRESS while running; then 0 if every block succeeded, else the first error. */
KVG_API int kvg_req_poll(kvg_req *req);

/* Waits up to timeout_ms (-1: forever) for the request; returns as kvg_req_poll(). */
KVG_API int kvg_req_wait(kvg_req *req, int timeout_ms);

/* Layers of a KVG_LOAD_LAYERS request that have fully arrived, for every block. */
KVG_API uint32_t kvg_req_layers_ready(kvg_req *req);

/* Waits up to timeout_ms until layer `layer` has arrived; 0, an error, or KVG_EINPROGRESS. */
KVG_API int kvg_req_wait_layer(kvg_req *req, uint32_t layer, int timeout_ms);

/* Releases a request.  Waits for it first if it is still running. */
KVG_API void kvg_req_free(kvg_req *req);

/*
 * A ready-made done callback (since 1.1, node KVGRID_1.1) for callers that wait on a file
 * descriptor instead of running code on a grid thread: pass it as kvg_req_opts.done with arg
 * = (void *)(intptr_t)fd, an eventfd(2) the caller owns and keeps open until the request has
 * completed.  It adds 1 to the eventfd's counter and nothing else, so completions wake an
 * event loop or poll(2) without the caller's language running a callback on a grid thread
 * (a Python ctypes callback would take the GIL there).  One eventfd may serve many requests:
 * its counter sums their completions.  A write that fails (fd closed) is ignored.
 */
KVG_API void kvg_done_eventfd(kvg_req *req, void *arg);

/* Synchronous conveniences: store/load one batch on the calling thread and wait for its
 * I/O.  Return as kvg_req_wait(). */
KVG_API int kvg_store_sync(kvg_grid *g, struct kvg_io *ios, size_t n, uint32_t flags);
KVG_API int kvg_load_sync(kvg_grid *g, struct kvg_io *ios, size_t n, uint32_t flags);

/*
 * Zero-copy reads of the DRAM tier, for senders (kvgridd writes a block's pages straight to
 * its sockets).  kvg_view_get() lends the bytes of a block held in DRAM: iov[0, n) get its
 * pieces, read-only, in order (adjacent chunks merged), *len its length, and *view a handle
 * that keeps those bytes valid and unchanged, whatever becomes of the block meanwhile
 * (eviction, delete, a new store under its key), until kvg_view_release().  A view never
 * blocks another call: it holds arena chunks, not the block, so while views are out their
 * chunks are not reusable.  Counts as a DRAM hit, as a load would.  Release every view
 * before kvg_close.
 * Returns n > 0; 0 if the block may be held elsewhere than in DRAM (on NVMe, in the shared
 * tier, or on a remote grid's servers: load it with kvg_load); KVG_ENOTFOUND; KVG_EBUFSIZE if it
 * has more than max_iov pieces; KVG_EBUSY if its chunks are lent too many times already.
 */
typedef struct kvg_view kvg_view;
KVG_API int kvg_view_get(kvg_grid *g, const kvg_key *key, struct iovec *iov, int max_iov,
			 size_t *len, kvg_view **view);
KVG_API void kvg_view_release(kvg_grid *g, kvg_view *view);

/*
 * Zero-copy stores into the DRAM tier, for receivers (kvgridd reads a large value from its
 * socket straight into the arena).  kvg_fill_begin() reserves DRAM room for one block of len
 * bytes (evicting as a store would): iov[0, n) get the arena pieces to fill, in order, and
 * *fill describes the reservation.  Nothing is visible until kvg_fill_commit() publishes
 * the bytes under key, as kvg_store would (a key already present is refreshed and keeps its
 * bytes, unless replace: then the old block is deleted first, as kvg_delete would); flags
 * as kvg_store's.  kvg_fill_abort() gives the room back.  Every begun fill must end in one
 * of the two, before kvg_close.
 * Returns n > 0; 0 if this grid takes no fills (no DRAM tier, durable or write-through
 * mode, a shared tier written through, a remote grid: use kvg_store); KVG_ETOOBIG; KVG_EFULL;
 * KVG_EBUFSIZE if the room comes in more than max_iov pieces.
 */
struct kvg_fill {
	uint32_t first; /* the reservation (opaque) */
	uint32_t len;
};
KVG_API int kvg_fill_begin(kvg_grid *g, size_t len, struct iovec *iov, int max_iov,
			   struct kvg_fill *fill);
KVG_API int kvg_fill_commit(kvg_grid *g, struct kvg_fill *fill, const kvg_key *key, uint32_t depth,
			    uint32_t flags, int replace);
KVG_API void kvg_fill_abort(kvg_grid *g, struct kvg_fill *fill);

/* ---- pin, delete, prefetch ------------------------------------------------------------ */

/* A pinned block is never evicted from the tier it is in.  Pins nest.  Missing keys are
 * skipped; returns the number of keys pinned (or unpinned), or on a remote grid an error
 * when no server it asked could be reached. */
KVG_API int kvg_pin(kvg_grid *g, const kvg_key *keys, size_t n);
KVG_API int kvg_unpin(kvg_grid *g, const kvg_key *keys, size_t n);

/* Removes blocks from every tier (the shared tier's object too: gone for every host),
 * waiting for transfers of them to finish first (views
 * are not waited for: they keep their bytes, see kvg_view_get()); a block
 * that had an NVMe record gets a tombstone record so that recovery after a crash does not
 * bring it back (best effort: the tombstone may be evicted before the record).  Returns
 * the number removed (on a remote grid, an error if no server it asked could be reached). */
KVG_API int kvg_delete(kvg_grid *g, const kvg_key *keys, size_t n);

/* Hint: these blocks will be loaded soon (an agent's session comes back); NVMe-resident ones
 * are promoted to DRAM in the background by a grid worker, which makes room as the DRAM
 * policy decides (its victims are written down to NVMe first).  Returns the number
 * scheduled (0 without both tiers, and on a remote grid). */
KVG_API int kvg_prefetch(kvg_grid *g, const kvg_key *keys, size_t n);

/* ---- stats ---------------------------------------------------------------------------- */

struct kvg_tier_stats {
	uint64_t capacity_bytes;
	uint64_t bytes; /* bytes of blocks held */
	uint64_t blocks;
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions;
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t checksum_failures;
	uint64_t io_errors;
	uint64_t promotions; /* blocks copied up into this tier */
	uint64_t demotions;  /* blocks written down from this tier */
	int degraded;
	char backend[16]; /* "arena", "uring", "psync", "fault" */
};

struct kvg_stats {
	struct kvg_tier_stats tier[KVG_TIER_COUNT];
	uint64_t lookups;
	uint64_t stores;
	uint64_t loads;
	uint64_t store_failures;
	uint64_t index_blocks;
	uint64_t index_capacity;
	uint64_t index_bytes; /* memory of the index */
	uint64_t recovery_us; /* time the last open took to rebuild the NVMe index */
	uint64_t recovered_blocks;
};

/* Copies the current counters.  Never fails on an open grid. */
KVG_API void kvg_stats_get(kvg_grid *g, struct kvg_stats *st);

/*
 * The counters of one tier (enum kvg_tier), KVG_TIER_SHARED included (KVGRID 1.1).  For the
 * shared tier, capacity_bytes is cfg.shared_bytes in effect, bytes and blocks what all hosts
 * hold there as this grid last learnt it, and the other counters this grid's own.  Returns
 * 0, KVG_ENOTFOUND if the grid has no such tier (no shared_dir, a remote grid), or -EINVAL.
 */
KVG_API int kvg_tier_stats_get(kvg_grid *g, int tier, struct kvg_tier_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* KVGRID_H */
