/*
 * grid.h - the grid object behind kvgrid.h: the index, the tiers, their policies, the
 * request pool and the worker threads.  Private to the library; exposed to its own tests
 * and tools only through this header.
 */
#ifndef KVG_GRID_H
#define KVG_GRID_H

#include <pthread.h>

#include "client.h"
#include "index.h"
#include "log.h"
#include "policy.h"
#include "tier_dram.h"
#include "tier_nvme.h"

/* REQ_PROMOTE: a promotion an I/O thread could not make without I/O, handed to a worker
 * (promote_later() in grid.c); runs as a prefetch of one key. */
enum req_op { REQ_STORE = 0, REQ_LOAD = 1, REQ_PREFETCH = 2, REQ_PROMOTE = 3, REQ_CLEAN = 4 };

struct kvg_req {
	kvg_grid *g;
	int op;
	struct kvg_io *ios;
	size_t n;
	struct kvg_req_opts opts;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;
	size_t pending;     /* blocks not finished, +1 while the dispatcher runs */
	int status;         /* first error */
	int complete;
	int in_use;
	int free_in_callback; /* kvg_req_free() was called from the done callback */
	pthread_t callback_thread;
	int in_callback;
	uint32_t layers;
	uint32_t layers_ready;
	uint32_t layers_reported; /* layer_done callbacks made */
	int layer_cb_busy;        /* a thread is making them */
	uint32_t *layer_count; /* blocks whose layer L has arrived */
	kvg_key *prefetch_keys; /* REQ_PREFETCH: owned copy */
	kvg_key promote_key;    /* REQ_PROMOTE: the one key */
	uint32_t promote_chunk; /* prefetch_one()'s private load: DRAM chunks reserved for the
				 * promotion (the first; CHUNK_END if none) */
	uint32_t promote_len;   /* the block length they were reserved for */
	uint64_t seq;           /* names the call to the policies (policy_block.req_id) */
	struct kvg_req *next;
};

struct kvg_grid {
	struct kvg_config cfg;
	struct log log;
	kvg_key ns;
	uint64_t block_bytes; /* of the layout; 0 if unset */

	pthread_mutex_t lock; /* guards ix, arena allocation, pol, nv's space, st */
	pthread_cond_t lock_cv; /* signalled when refs drop (close, delete) */
	struct index ix;
	struct arena arena;
	struct nvme *nv;
	const struct policy_ops *pol_ops;
	struct policy *pol[KVG_TIER_COUNT];
	struct kvg_stats st;
	uint64_t *recover_seq; /* during open only */
	struct client *remote;

	/* requests and workers */
	pthread_mutex_t qlock; /* guards free_reqs, both queues, stop, promotes_queued */
	pthread_cond_t qcv;
	struct kvg_req *reqs;
	uint64_t req_seq; /* last call name given (atomic) */
	struct kvg_req *free_reqs;
	struct kvg_req *qhead, *qtail;
	struct kvg_req *pqhead, *pqtail; /* REQ_PROMOTE: served when qhead is empty */
	int stop;
	uint32_t promotes_queued; /* REQ_PROMOTE requests queued or running */
	int cleaning;		  /* a REQ_CLEAN is queued or running (cfg.dram_free_bytes) */
	int clean_again;	  /* a store wanted one while it ran: it runs once more */
	uint32_t clean_chunks;	  /* arena chunks cfg.dram_free_bytes keeps free; 0: off */
	uint32_t nworkers;
	pthread_t *workers;
};

#endif
