/*
 * The adapter between llama.cpp and the grid (include/kvgrid_llama.h, doc/LLAMA.md).
 *
 * restore: block keys of the prompt -> longest present prefix -> load the pieces into one
 * staging buffer -> check each (kvgl_state.c) -> join them into a sequence state ->
 * llama_state_seq_set_data.  The first piece that fails a check ends the prefix there.
 * store: llama_state_seq_get_data into a staging buffer on the caller's thread (llama.cpp
 * must not decode meanwhile), then a background thread parses it, writes one piece per new
 * full block and stores them.  Staging buffers are kept and reused: fresh memory is slow to
 * touch, and a restore or store should not pay for it each time.
 */
#include "kvgl_state.h"

#include <errno.h>
#include <fcntl.h>
#include <kvgrid_llama.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#ifndef KVGL_LLAMA_VERSION
#define KVGL_LLAMA_VERSION "unknown"
#endif

struct buf {
	uint8_t *p;
	size_t cap;
};

struct kvgl {
	kvg_grid *g;
	uint32_t b_tokens;
	char ns[KVG_NAME_MAX];
	char err[256];	      /* the caller's thread: restore and store calls */
	char bg_err[256];     /* the store thread's, under mu, moved to err by kvgl_last_error */
	int v_trans_expected; /* 0, 1, or -1 (flash attention auto) */
	enum ggml_type type_k, type_v;
	uint64_t k_row, v_row; /* expected per-layer bytes of one token */
	uint32_t n_layer;

	struct buf stage, joined; /* restore, caller's thread */
	kvg_key *keys;		  /* restore, caller's thread */
	size_t keys_cap;

	pthread_t worker;
	pthread_mutex_t mu; /* guards the fields below and st */
	pthread_cond_t cv;
	int job, stop; /* a store is handed to the worker; close asked */
	struct buf job_state, job_pieces;
	uint32_t *job_tokens;
	size_t job_n, job_state_len, job_tokens_cap;
	struct kvgl_stats st;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void set_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && len)
		vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* Grows b to at least n bytes (contents not kept), by half again at least, so that a
 * conversation growing turn by turn does not pay for fresh memory every turn.  0 or
 * -ENOMEM. */
static int buf_reserve(struct buf *b, size_t n)
{
	if (b->cap >= n)
		return 0;
	if (n < b->cap + b->cap / 2)
		n = b->cap + b->cap / 2;
	void *p = NULL;
	if (posix_memalign(&p, 2u << 20, n))
		return -ENOMEM;
	madvise(p, n, MADV_HUGEPAGE); /* fewer, cheaper first touches; advice only */
	free(b->p);
	b->p = p;
	b->cap = n;
	return 0;
}

void kvgl_params_init(struct kvgl_params *p)
{
	memset(p, 0, sizeof(*p));
	p->type_k = GGML_TYPE_F16;
	p->type_v = GGML_TYPE_F16;
	p->flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
}

/* XXH3-128 of the whole file into out[2]. */
static int hash_file(const char *path, uint64_t out[2], char *err, size_t err_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_err(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	XXH3_state_t *s = XXH3_createState();
	size_t cap = 4u << 20;
	uint8_t *b = malloc(cap);
	int rc = s && b ? 0 : -ENOMEM;
	if (rc == 0)
		XXH3_128bits_reset(s);
	ssize_t n;
	while (rc == 0 && (n = read(fd, b, cap)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			set_err(err, err_len, "%s: %s", path, strerror(errno));
			break;
		}
		XXH3_128bits_update(s, b, (size_t)n);
	}
	if (rc == 0) {
		XXH128_hash_t h = XXH3_128bits_digest(s);
		out[0] = h.high64;
		out[1] = h.low64;
	}
	free(b);
	XXH3_freeState(s);
	close(fd);
	return rc;
}

/* Refuses memories that are not one plain KV cache of the whole context. */
static int check_model(const struct llama_model *m, char *err, size_t err_len)
{
	const char *what = NULL;
	if (llama_model_is_recurrent(m))
		what = "a recurrent memory";
	else if (llama_model_is_hybrid(m))
		what = "a hybrid memory";
	else if (llama_model_n_swa(m) > 0)
		what = "a sliding-window memory";
	else if (llama_model_rope_type(m) == LLAMA_ROPE_TYPE_MROPE ||
		 llama_model_rope_type(m) == LLAMA_ROPE_TYPE_IMROPE ||
		 llama_model_rope_type(m) == LLAMA_ROPE_TYPE_VISION)
		what = "multi-dimensional positions (M-RoPE)";
	if (!what)
		return 0;
	set_err(err, err_len, "kvgrid-llama: the model has %s; only plain KV caches are supported",
		what);
	return -EINVAL;
}

/* "<arch>.attention.<name>" from the model's metadata, or dflt. */
static int64_t meta_int(const struct llama_model *m, const char *name, int64_t dflt)
{
	char arch[64], key[160], val[64];
	if (llama_model_meta_val_str(m, "general.architecture", arch, sizeof arch) < 0)
		return dflt;
	snprintf(key, sizeof key, "%s.attention.%s", arch, name);
	if (llama_model_meta_val_str(m, key, val, sizeof val) < 0)
		return dflt;
	return strtoll(val, NULL, 10);
}

static uint32_t grid_dtype(enum ggml_type t)
{
	switch (t) {
	case GGML_TYPE_F16:
		return KVG_DTYPE_FP16;
	case GGML_TYPE_BF16:
		return KVG_DTYPE_BF16;
	case GGML_TYPE_F32:
		return KVG_DTYPE_FP32;
	default:
		return KVG_DTYPE_U8;
	}
}

/* The namespace: what makes a piece reusable, and nothing else. */
static void layout(kvgl *kl, const struct kvgl_params *p, const uint64_t h[2])
{
	const struct llama_model *m = p->model;
	int64_t n_head = llama_model_n_head(m), n_head_kv = llama_model_n_head_kv(m);
	int64_t head = n_head ? llama_model_n_embd(m) / n_head : 0;
	int64_t hk = meta_int(m, "key_length", head), hv = meta_int(m, "value_length", head);
	kl->type_k = p->type_k;
	kl->type_v = p->type_v;
	kl->n_layer = (uint32_t)llama_model_n_layer(m);
	kl->k_row = ggml_row_size(p->type_k, hk * n_head_kv);
	kl->v_row = ggml_row_size(p->type_v, hv * n_head_kv);
	kl->v_trans_expected = p->flash_attn_type == LLAMA_FLASH_ATTN_TYPE_ENABLED    ? 0
			       : p->flash_attn_type == LLAMA_FLASH_ATTN_TYPE_DISABLED ? 1
										      : -1;
	const char *fa = kl->v_trans_expected == 0 ? "rows"
			 : kl->v_trans_expected	   ? "trans"
						   : "auto";
	snprintf(kl->ns, sizeof kl->ns, "llama.cpp %s/%016llx%016llx/k%d-v%d/v-%s",
		 KVGL_LLAMA_VERSION, (unsigned long long)h[0], (unsigned long long)h[1],
		 (int)p->type_k, (int)p->type_v, fa);
}

static void *store_worker(void *arg);

static int open_grid(kvgl *kl, const struct kvgl_params *p, char *err, size_t err_len)
{
	struct kvg_config cfg;
	if (p->grid)
		cfg = *p->grid;
	else
		kvg_config_init(&cfg);
	const struct llama_model *m = p->model;
	snprintf(cfg.model_id, sizeof cfg.model_id, "%s", kl->ns);
	cfg.layers = kl->n_layer;
	cfg.kv_heads = (uint32_t)llama_model_n_head_kv(m);
	cfg.head_dim =
	    llama_model_n_head(m) ? (uint32_t)(llama_model_n_embd(m) / llama_model_n_head(m)) : 0;
	cfg.dtype = grid_dtype(p->type_k);
	if (p->block_tokens)
		cfg.block_tokens = p->block_tokens;
	int rc = kvg_open(&cfg, &kl->g, err, err_len);
	if (rc == 0)
		kl->b_tokens = kvg_config_of(kl->g)->block_tokens;
	return rc;
}

int kvgl_open(const struct kvgl_params *p, kvgl **out, char *err, size_t err_len)
{
	if (!p || !p->model || !p->model_path) {
		set_err(err, err_len, "kvgrid-llama: model and model_path are required");
		return -EINVAL;
	}
	int rc = check_model(p->model, err, err_len);
	if (rc)
		return rc;
	uint64_t h[2] = {0, 0};
	if ((rc = hash_file(p->model_path, h, err, err_len)))
		return rc;
	kvgl *kl = calloc(1, sizeof(*kl));
	if (!kl)
		return -ENOMEM;
	layout(kl, p, h);
	if ((rc = open_grid(kl, p, err, err_len)))
		goto out_free;
	pthread_mutex_init(&kl->mu, NULL);
	pthread_cond_init(&kl->cv, NULL);
	if ((rc = -pthread_create(&kl->worker, NULL, store_worker, kl))) {
		set_err(err, err_len, "kvgrid-llama: cannot start the store thread");
		goto out_close;
	}
	*out = kl;
	return 0;
out_close:
	pthread_cond_destroy(&kl->cv);
	pthread_mutex_destroy(&kl->mu);
	kvg_close(kl->g);
out_free:
	free(kl);
	return rc;
}

void kvgl_close(kvgl *kl)
{
	if (!kl)
		return;
	pthread_mutex_lock(&kl->mu);
	kl->stop = 1;
	pthread_cond_broadcast(&kl->cv);
	pthread_mutex_unlock(&kl->mu);
	pthread_join(kl->worker, NULL);
	kvg_close(kl->g);
	pthread_cond_destroy(&kl->cv);
	pthread_mutex_destroy(&kl->mu);
	free(kl->stage.p);
	free(kl->joined.p);
	free(kl->keys);
	free(kl->job_state.p);
	free(kl->job_pieces.p);
	free(kl->job_tokens);
	free(kl);
}

kvg_grid *kvgl_grid(kvgl *kl)
{
	return kl->g;
}

const char *kvgl_last_error(kvgl *kl)
{
	pthread_mutex_lock(&kl->mu);
	if (kl->bg_err[0]) {
		memcpy(kl->err, kl->bg_err, sizeof kl->err);
		kl->bg_err[0] = 0;
	}
	pthread_mutex_unlock(&kl->mu);
	return kl->err;
}

const char *kvgl_namespace(kvgl *kl)
{
	return kl->ns;
}

void kvgl_stats_get(kvgl *kl, struct kvgl_stats *st)
{
	pthread_mutex_lock(&kl->mu);
	*st = kl->st;
	pthread_mutex_unlock(&kl->mu);
}

/* ---- restore ------------------------------------------------------------------------- */

/* Bytes of one piece of this model and context. */
static size_t piece_bytes(const kvgl *kl)
{
	return KVGL_PIECE_HDR_BYTES + (size_t)kl->n_layer * 40 +
	       (size_t)kl->n_layer * (kl->k_row + kl->v_row) * kl->b_tokens;
}

/* The table a piece must carry: this context's types and row sizes. */
static int table_expected(const kvgl *kl, const struct kvgl_seq *t)
{
	if (t->n_layer != kl->n_layer)
		return 0;
	if (kl->v_trans_expected >= 0 && t->v_trans != (uint32_t)kl->v_trans_expected)
		return 0;
	for (uint32_t l = 0; l < t->n_layer; l++) {
		const struct kvgl_layer *ly = &t->layers[l];
		if (ly->k_type != (int32_t)kl->type_k || ly->v_type != (int32_t)kl->type_v ||
		    ly->k_row != kl->k_row || ly->v_row != kl->v_row)
			return 0;
	}
	return 1;
}

#define VIEW_IOV_MAX   64
#define RESTORE_GROUPS 8 /* loads in flight at once, joined in order as each arrives */

/* One piece being restored: a view of the grid's DRAM (no copy), or loaded into stage. */
struct piece {
	kvg_view *view;
	struct iovec iov[VIEW_IOV_MAX];
};

/* One restore of hit pieces, in groups of per: group g's loads are io[g*per, +m[g]) (their
 * depth is the piece's index), requested as req[g]; src[i] is piece i's bytes. */
struct restore {
	kvgl *kl;
	size_t hit, per, groups;
	struct piece *pc;
	struct kvgl_src *src;
	struct kvg_io *io;
	size_t *m;
	kvg_req **req;
	struct kvgl_seq ref;
	struct kvgl_joiner *joiner;
	size_t hit0; /* hit before absent pieces cut it short: what was allocated */
	llama_seq_id seq;
	int rejected;
	double join_ms;
};

/* Views what DRAM holds and starts loading the rest, a request per group; ends the prefix
 * at the first absent piece.  0 or -ENOMEM. */
static int restore_begin(struct restore *r)
{
	kvgl *kl = r->kl;
	size_t pb = piece_bytes(kl);
	if (buf_reserve(&kl->stage, pb * r->hit))
		return -ENOMEM;
	for (size_t i = 0; i < r->hit; i++) {
		size_t len = 0;
		int n = kvg_view_get(kl->g, &kl->keys[i], r->pc[i].iov, VIEW_IOV_MAX, &len,
				     &r->pc[i].view);
		if (n > 0) {
			r->src[i] = (struct kvgl_src){r->pc[i].iov, n, len};
		} else if (n == KVG_ENOTFOUND || n == KVG_ECORRUPT) {
			r->hit = i; /* the prefix ends here */
			break;
		} else {
			r->pc[i].view = NULL;
			r->pc[i].iov[0] = (struct iovec){kl->stage.p + i * pb, pb};
			r->src[i] = (struct kvgl_src){r->pc[i].iov, 1, 0}; /* len: once loaded */
			size_t g = i / r->per, at = g * r->per + r->m[g]++;
			r->io[at] = (struct kvg_io){.key = kl->keys[i],
						    .buf = kl->stage.p + i * pb,
						    .len = pb,
						    .depth = (uint32_t)i};
		}
	}
	r->groups = (r->hit + r->per - 1) / r->per;
	for (size_t g = 0; g < r->groups; g++)
		if (r->m[g] && kvg_load(kl->g, &r->io[g * r->per], r->m[g], NULL, &r->req[g])) {
			r->req[g] = NULL;
			r->m[g] = 0;
			r->hit =
			    r->hit < g * r->per ? r->hit : g * r->per; /* not loaded: the end */
		}
	return 0;
}

/* Waits for group g, checks its pieces in order and joins those that pass; returns how
 * many from the group's start are now in the joined state. */
static size_t restore_group(struct restore *r, size_t g)
{
	kvgl *kl = r->kl;
	size_t i0 = g * r->per, i1 = i0 + r->per < r->hit ? i0 + r->per : r->hit, bad = i1;
	if (r->req[g])
		kvg_req_wait(r->req[g], -1);
	for (size_t k = 0; k < r->m[g]; k++) {
		const struct kvg_io *io = &r->io[i0 + k];
		r->src[io->depth].len = io->status == 0 ? io->len : 0;
		r->pc[io->depth].iov[0].iov_len = r->src[io->depth].len;
		if (io->status != 0 && io->depth < bad)
			bad = io->depth;
	}
	size_t i;
	for (i = i0; i < bad; i++)
		if (kvgl_piece_check(&r->src[i], (uint32_t)i, kl->b_tokens, kl->keys[i].bytes, 0,
				     &r->ref, kl->err, sizeof kl->err) ||
		    !table_expected(kl, &r->ref)) {
			r->rejected = 1;
			break;
		}
	if (i > i0 && !r->joiner &&
	    buf_reserve(&kl->joined, kvgl_join_bytes(&r->ref, r->hit, kl->b_tokens)) == 0)
		r->joiner = kvgl_join_begin(&r->ref, r->hit, kl->b_tokens, r->seq, kl->joined.p);
	if (i == i0 || !r->joiner)
		return 0;
	double t0 = now_ms();
	size_t ok = kvgl_join_add(r->joiner, r->src, i0, i, 1);
	r->join_ms += now_ms() - t0;
	if (ok < i - i0) {
		r->rejected = 1;
		set_err(kl->err, sizeof kl->err, "piece %zu: checksum wrong", i0 + ok);
	}
	return ok;
}

/* Waits for every load still in flight and lets go of views, requests and memory. */
static void restore_end(struct restore *r)
{
	for (size_t g = 0; r->req && g < (r->hit0 + r->per - 1) / r->per; g++)
		if (r->req[g])
			kvg_req_free(r->req[g]);
	for (size_t i = 0; r->pc && i < r->hit0; i++)
		if (r->pc[i].view)
			kvg_view_release(r->kl->g, r->pc[i].view);
	kvgl_join_end(r->joiner);
	kvgl_seq_free(&r->ref);
	free(r->pc), free(r->src), free(r->io), free(r->m), free(r->req);
}

/* Hands the joined state of n pieces to llama.cpp; returns n, or 0 if it was refused. */
static size_t set_state(struct restore *r, struct llama_context *ctx, size_t n)
{
	kvgl *kl = r->kl;
	size_t len = kvgl_join_bytes(&r->ref, n, kl->b_tokens);
	if (n < r->hit) /* a piece failed: the state is joined again without it */
		kvgl_join(&r->ref, r->src, n, kl->b_tokens, r->seq, 0, kl->joined.p);
	double t0 = now_ms();
	size_t got = llama_state_seq_set_data(ctx, kl->joined.p, len, r->seq);
	double t1 = now_ms();
	pthread_mutex_lock(&kl->mu);
	kl->st.last_set_ms = t1 - t0;
	kl->st.kv_bytes_restored += len;
	if (got != len)
		kl->st.set_data_failures++;
	pthread_mutex_unlock(&kl->mu);
	if (got != len)
		set_err(kl->err, sizeof kl->err, "llama.cpp refused the joined state");
	return got == len ? n : 0;
}

static size_t restore_blocks(kvgl *kl, struct llama_context *ctx, llama_seq_id seq, size_t hit)
{
	struct restore r = {.kl = kl, .hit = hit, .hit0 = hit, .seq = seq};
	r.per = (hit + RESTORE_GROUPS - 1) / RESTORE_GROUPS;
	size_t groups = (hit + r.per - 1) / r.per, n = 0;
	r.pc = calloc(hit, sizeof(*r.pc));
	r.src = calloc(hit, sizeof(*r.src));
	r.io = calloc(hit, sizeof(*r.io));
	r.m = calloc(groups, sizeof(*r.m));
	r.req = calloc(groups, sizeof(*r.req));
	double t0 = now_ms();
	if (r.pc && r.src && r.io && r.m && r.req && restore_begin(&r) == 0) {
		for (size_t g = 0; g < r.groups; g++) {
			size_t want = (g + 1) * r.per < r.hit ? r.per : r.hit - g * r.per;
			size_t got = restore_group(&r, g);
			n += got;
			if (got < want)
				break;
		}
	}
	pthread_mutex_lock(&kl->mu);
	kl->st.last_load_ms = now_ms() - t0;
	kl->st.last_join_ms = r.join_ms;
	kl->st.last_kv_bytes = (uint64_t)n * kl->b_tokens * kl->n_layer * (kl->k_row + kl->v_row);
	kl->st.rejected_pieces += r.rejected;
	pthread_mutex_unlock(&kl->mu);
	if (n && (n = set_state(&r, ctx, n)) == 0)
		llama_memory_seq_rm(llama_get_memory(ctx), seq, -1, -1);
	restore_end(&r);
	return n;
}

int kvgl_restore(kvgl *kl, struct llama_context *ctx, llama_seq_id seq, const llama_token *tokens,
		 size_t n, size_t *restored)
{
	*restored = 0;
	kl->err[0] = 0;
	llama_memory_seq_rm(llama_get_memory(ctx), seq, -1, -1);
	size_t want = n ? (n - 1) / kl->b_tokens : 0, hit = 0;
	if (want > kl->keys_cap) {
		kvg_key *k = realloc(kl->keys, want * sizeof(*k));
		if (!k)
			return -ENOMEM;
		kl->keys = k;
		kl->keys_cap = want;
	}
	if (want)
		want = kvg_block_keys(kl->g, (const uint32_t *)tokens, want * kl->b_tokens, NULL,
				      kl->keys, want);
	if (want && kvg_lookup_keys(kl->g, kl->keys, want, &hit, NULL))
		hit = 0;
	size_t got = hit ? restore_blocks(kl, ctx, seq, hit) : 0;
	pthread_mutex_lock(&kl->mu);
	kl->st.restores++;
	kl->st.restored_tokens += got * kl->b_tokens;
	if (!got)
		kl->st.misses++;
	pthread_mutex_unlock(&kl->mu);
	*restored = got * kl->b_tokens;
	return 0;
}

/* ---- store --------------------------------------------------------------------------- */

/* Cuts the staged state into pieces for the blocks the grid lacks and stores them.
 * Runs on the worker thread without the lock; the job buffers are its own meanwhile. */
static int store_job(kvgl *kl, uint64_t *stored, char *why, size_t why_len)
{
	struct kvgl_seq seq;
	int rc = kvgl_seq_parse(kl->job_state.p, kl->job_state_len, &seq, why, why_len);
	if (rc)
		return rc;
	size_t full = (seq.n_cells < kl->job_n ? seq.n_cells : kl->job_n) / kl->b_tokens, have = 0;
	kvg_key *keys = calloc(full ? full : 1, sizeof(*keys));
	struct kvg_io *io = calloc(full ? full : 1, sizeof(*io));
	size_t pb = kvgl_piece_bytes(&seq, kl->b_tokens);
	rc = keys && io ? 0 : -ENOMEM;
	if (rc == 0 && !table_expected(kl, &seq)) {
		set_err(why, why_len, "the state's K/V types or V layout differ from the params");
		rc = -EINVAL;
	}
	if (rc == 0 && full) {
		kvg_block_keys(kl->g, kl->job_tokens, full * kl->b_tokens, NULL, keys, full);
		if (kvg_lookup_keys(kl->g, keys, full, &have, NULL))
			have = 0;
	}
	if (rc == 0 && have < full && buf_reserve(&kl->job_pieces, pb * (full - have)))
		rc = -ENOMEM;
	for (size_t i = have; rc == 0 && i < full; i++) {
		uint8_t *p = kl->job_pieces.p + (i - have) * pb;
		kvgl_piece_write(&seq, (uint32_t)i, kl->b_tokens, keys[i].bytes, p);
		io[i - have] = (struct kvg_io){.key = keys[i], .buf = p, .len = pb, .depth = i};
	}
	if (rc == 0 && have < full)
		rc = kvg_store_sync(kl->g, io, full - have, KVG_STORE_CONTINUES);
	if (rc == 0)
		*stored = full - have;
	else if (rc != -EINVAL)
		set_err(why, why_len, "storing pieces: %s", kvg_strerror(rc));
	free(keys);
	free(io);
	kvgl_seq_free(&seq);
	return rc;
}

static void *store_worker(void *arg)
{
	kvgl *kl = arg;
	pthread_mutex_lock(&kl->mu);
	for (;;) {
		while (!kl->job && !kl->stop)
			pthread_cond_wait(&kl->cv, &kl->mu);
		if (!kl->job)
			break;
		pthread_mutex_unlock(&kl->mu);
		char why[256] = "";
		uint64_t stored = 0;
		int rc = store_job(kl, &stored, why, sizeof why);
		pthread_mutex_lock(&kl->mu);
		kl->st.stored_pieces += stored;
		if (rc) {
			kl->st.store_errors++;
			snprintf(kl->bg_err, sizeof kl->bg_err, "%s", why);
		}
		kl->job = 0;
		pthread_cond_broadcast(&kl->cv);
	}
	pthread_mutex_unlock(&kl->mu);
	return NULL;
}

int kvgl_store(kvgl *kl, struct llama_context *ctx, llama_seq_id seq, const llama_token *tokens,
	       size_t n)
{
	pthread_mutex_lock(&kl->mu);
	int busy = kl->job;
	if (busy)
		kl->st.busy_drops++;
	pthread_mutex_unlock(&kl->mu);
	if (busy)
		return -EBUSY;
	size_t len = llama_state_seq_get_size(ctx, seq);
	if (len == 0 || buf_reserve(&kl->job_state, len))
		return -ENOMEM;
	if (n > kl->job_tokens_cap) {
		uint32_t *t = realloc(kl->job_tokens, n * sizeof(*t));
		if (!t)
			return -ENOMEM;
		kl->job_tokens = t;
		kl->job_tokens_cap = n;
	}
	size_t got = llama_state_seq_get_data(ctx, kl->job_state.p, len, seq);
	if (got == 0 || got > len) {
		set_err(kl->err, sizeof kl->err, "llama_state_seq_get_data failed");
		return -EIO;
	}
	memcpy(kl->job_tokens, tokens, n * sizeof(*tokens));
	pthread_mutex_lock(&kl->mu);
	kl->job_state_len = got;
	kl->job_n = n;
	kl->job = 1;
	kl->st.stores++;
	pthread_cond_broadcast(&kl->cv);
	pthread_mutex_unlock(&kl->mu);
	return 0;
}

int kvgl_flush(kvgl *kl, int timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	long long ns = dl.tv_nsec + (long long)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000LL;
	dl.tv_sec += ns / 1000000000LL;
	dl.tv_nsec = ns % 1000000000LL;
	int rc = 0;
	pthread_mutex_lock(&kl->mu);
	while (kl->job && rc == 0)
		rc = timeout_ms < 0 ? pthread_cond_wait(&kl->cv, &kl->mu)
				    : pthread_cond_timedwait(&kl->cv, &kl->mu, &dl);
	int busy = kl->job;
	pthread_mutex_unlock(&kl->mu);
	return busy ? KVG_EINPROGRESS : 0;
}
