/*
 * kvgrid-llama bench: time to first token of a cold prefill against the same prompt's prefix
 * restored from the grid, on a real llama.cpp model.
 *
 *   1. reference: prefill the prompt P (--context tokens), store its blocks, prefill a new
 *      suffix S: the uninterrupted run's logits
 *   2. cold: a fresh sequence prefills P+S in one go              -> ttft_prefill_ms
 *   3. grid: a fresh sequence restores P from the grid, prefills S -> ttft_grid_ms (median
 *      of --repeat runs after an untimed one), restore_ms and its parts
 * and, in the same run, the tier's own bandwidth for KV bytes: memcpy between warm buffers
 * (dram), O_DIRECT reads of a file of that size in --dir by 4 threads (nvme), a plain grid
 * load of the same pieces (server); and a plain grid load of the same pieces for every tier
 * (grid_gbps), which tells the adapter's own cost from the grid's.  logits_max_abs_diff compares 3
 * with 1 (the same split, no grid); logits_max_abs_diff_oneshot compares 3 with 2 (llama.cpp's own
 * batch-size rounding).
 */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bench_opts {
	const char *model, *tier, *dir, *server;
	size_t context, suffix;
	uint32_t block, repeat;
	int flash, json, threads;
};

struct bench_out {
	double ttft_prefill_ms, ttft_grid_ms, restore_ms, load_ms, join_ms, set_ms, store_call_ms;
	double cpu_prefill_ms, cpu_grid_ms; /* the process's CPU time over the same spans */
	double tier_gbps, grid_gbps, diff, diff_oneshot;
	uint64_t kv_bytes;
	size_t restored;
};

static double max_diff(const float *a, const float *b, int n)
{
	double m = 0;
	for (int i = 0; i < n; i++)
		m = fmax(m, fabs((double)a[i] - (double)b[i]));
	return m;
}

/* CPU time of the whole process (every thread), in ms: less sensitive than wall time to
 * the other work on a shared machine. */
static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* memcpy of n bytes between two warm buffers, best of 3, in GB/s. */
static double dram_gbps(size_t n)
{
	char *a = malloc(n), *b = malloc(n);
	double best = 0;
	if (!a || !b)
		goto out;
	memset(a, 1, n);
	memset(b, 2, n);
	for (int i = 0; i < 3; i++) {
		double t0 = cmd_now_ms();
		memcpy(b, a, n);
		best = fmax(best, n / ((cmd_now_ms() - t0) * 1e6));
	}
out:
	free(a);
	free(b);
	return best;
}

struct rd_job {
	int fd;
	off_t from, to;
	int err;
};

static void *rd_thread(void *arg)
{
	struct rd_job *j = arg;
	const size_t chunk = 4u << 20;
	void *buf = NULL;
	if (posix_memalign(&buf, 4096, chunk)) {
		j->err = 1;
		return NULL;
	}
	for (off_t at = j->from; at < j->to; at += chunk)
		if (pread(j->fd, buf, chunk, at) != (ssize_t)chunk)
			j->err = 1;
	free(buf);
	return NULL;
}

/* O_DIRECT reads of a file of n bytes (rounded to 4 MiB) in dir by 4 threads, 4 MiB each,
 * best of 3, in GB/s; 0 if the file cannot be made. */
static double nvme_gbps(const char *dir, size_t n)
{
	const size_t chunk = 4u << 20;
	size_t size = (n + 4 * chunk - 1) / (4 * chunk) * (4 * chunk);
	char path[4200];
	snprintf(path, sizeof path, "%s/kvgrid-llama-bw.probe", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	void *buf = NULL;
	double best = 0;
	if (fd < 0 || posix_memalign(&buf, 4096, chunk))
		goto out;
	memset(buf, 7, chunk);
	for (size_t at = 0; at < size; at += chunk)
		if (pwrite(fd, buf, chunk, (off_t)at) != (ssize_t)chunk)
			goto out;
	fsync(fd);
	for (int r = 0; r < 3; r++) {
		struct rd_job j[4];
		pthread_t th[4];
		double t0 = cmd_now_ms();
		for (int i = 0; i < 4; i++) {
			j[i] = (struct rd_job){fd, (off_t)(size / 4 * i),
					       (off_t)(size / 4 * (i + 1)), 0};
			pthread_create(&th[i], NULL, rd_thread, &j[i]);
		}
		int err = 0;
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL), err |= j[i].err;
		if (!err)
			best = fmax(best, size / ((cmd_now_ms() - t0) * 1e6));
	}
out:
	free(buf);
	if (fd >= 0)
		close(fd), unlink(path);
	return best;
}

/* A plain grid load of the first blocks of t (the pieces a restore reads), in GB/s. */
static double grid_gbps(kvgl *kl, const llama_token *t, size_t n_blocks, uint32_t block,
			size_t piece_room)
{
	kvg_key *keys = calloc(n_blocks, sizeof(*keys));
	struct kvg_io *io = calloc(n_blocks, sizeof(*io));
	char *buf = malloc(n_blocks * piece_room);
	double best = 0;
	if (!keys || !io || !buf)
		goto out;
	memset(buf, 0, n_blocks * piece_room);
	kvg_block_keys(kvgl_grid(kl), (const uint32_t *)t, n_blocks * block, NULL, keys, n_blocks);
	for (int r = 0; r < 3; r++) {
		size_t bytes = 0;
		for (size_t i = 0; i < n_blocks; i++)
			io[i] = (struct kvg_io){
			    .key = keys[i], .buf = buf + i * piece_room, .len = piece_room};
		double t0 = cmd_now_ms();
		if (kvg_load_sync(kvgl_grid(kl), io, n_blocks, 0))
			goto out;
		double ms = cmd_now_ms() - t0;
		for (size_t i = 0; i < n_blocks; i++)
			bytes += io[i].len;
		best = fmax(best, bytes / (ms * 1e6));
	}
out:
	free(keys), free(io), free(buf);
	return best;
}

/* Step 1: the uninterrupted run (prefix, store, suffix); logits into ref. */
static int bench_reference(struct cmd_llama *l, kvgl *kl, const llama_token *t, size_t np, size_t n,
			   float *ref, struct bench_out *o)
{
	llama_memory_seq_rm(llama_get_memory(l->ctx), 0, -1, -1);
	if (cmd_prefill(l, t, 0, np))
		return -1;
	double t0 = cmd_now_ms();
	int rc = kvgl_store(kl, l->ctx, 0, t, np);
	o->store_call_ms = cmd_now_ms() - t0;
	if (rc == 0)
		rc = cmd_prefill(l, t, np, n);
	if (rc == 0)
		memcpy(ref, cmd_logits(l), l->n_vocab * sizeof(float));
	return rc ? rc : kvgl_flush(kl, -1);
}

/* Step 3, once: restore, prefill the suffix; returns the TTFT or -1. */
static double bench_grid_once(struct cmd_llama *l, kvgl *kl, const llama_token *t, size_t n,
			      float *out, struct bench_out *o)
{
	size_t done = 0;
	double c0 = cpu_ms(), t0 = cmd_now_ms();
	if (kvgl_restore(kl, l->ctx, 0, t, n, &done))
		return -1;
	double t1 = cmd_now_ms();
	if (cmd_prefill(l, t, done, n))
		return -1;
	double ttft = cmd_now_ms() - t0;
	o->cpu_grid_ms = cpu_ms() - c0;
	struct kvgl_stats st;
	kvgl_stats_get(kl, &st);
	o->restore_ms = t1 - t0;
	o->load_ms = st.last_load_ms;
	o->join_ms = st.last_join_ms;
	o->set_ms = st.last_set_ms;
	o->kv_bytes = st.last_kv_bytes;
	o->restored = done;
	memcpy(out, cmd_logits(l), l->n_vocab * sizeof(float));
	return ttft;
}

static int bench_grid(struct cmd_llama *l, kvgl *kl, const llama_token *t, size_t n,
		      uint32_t repeat, float *out, struct bench_out *o)
{
	double ttft[16];
	struct bench_out runs[16];
	repeat = repeat < 1 ? 1 : repeat > 16 ? 16 : repeat;
	/* one untimed restore first: the adapter's buffers are then warm, as in a running
	 * server (a first touch of fresh memory costs about 4 ms per MiB on this machine) */
	runs[0] = *o;
	if (bench_grid_once(l, kl, t, n, out, &runs[0]) < 0)
		return -1;
	for (uint32_t i = 0; i < repeat; i++) {
		runs[i] = *o;
		if ((ttft[i] = bench_grid_once(l, kl, t, n, out, &runs[i])) < 0)
			return -1;
		runs[i].ttft_grid_ms = ttft[i];
	}
	qsort(ttft, repeat, sizeof(double), cmp_double);
	for (uint32_t i = 0; i < repeat; i++)
		if (runs[i].ttft_grid_ms == ttft[repeat / 2])
			*o = runs[i];
	return 0;
}

static void print_result(const struct bench_opts *b, const struct bench_out *o)
{
	double tier_ms = o->tier_gbps > 0 ? o->kv_bytes / (o->tier_gbps * 1e6) : 0;
	double grid_ms = o->grid_gbps > 0 ? o->kv_bytes / (o->grid_gbps * 1e6) : 0;
	double bound = tier_ms + o->set_ms, gbound = grid_ms + o->set_ms;
	if (b->json) {
		printf("{\"context\": %zu, \"suffix\": %zu, \"block\": %u, \"tier\": \"%s\", "
		       "\"flash\": %d, \"threads\": %d, \"ttft_prefill_ms\": %.2f, "
		       "\"ttft_grid_ms\": %.2f, \"speedup\": %.2f, \"restored_tokens\": %zu, "
		       "\"restore_ms\": %.2f, \"load_ms\": %.2f, \"join_ms\": %.2f, "
		       "\"set_data_ms\": %.2f, \"kv_bytes\": %llu, \"tier_gbps\": %.3f, "
		       "\"restore_bound_ms\": %.2f, \"restore_ratio\": %.3f, \"grid_gbps\": %.3f, "
		       "\"restore_ratio_grid\": %.3f, \"store_call_ms\": %.2f, "
		       "\"cpu_prefill_ms\": %.2f, \"cpu_grid_ms\": %.2f, "
		       "\"logits_max_abs_diff\": %g, \"logits_max_abs_diff_oneshot\": %g}\n",
		       b->context, b->suffix, b->block, b->tier, b->flash, b->threads,
		       o->ttft_prefill_ms, o->ttft_grid_ms, o->ttft_prefill_ms / o->ttft_grid_ms,
		       o->restored, o->restore_ms, o->load_ms, o->join_ms, o->set_ms,
		       (unsigned long long)o->kv_bytes, o->tier_gbps, bound,
		       bound > 0 ? o->restore_ms / bound : 0, o->grid_gbps,
		       gbound > 0 ? o->restore_ms / gbound : 0, o->store_call_ms, o->cpu_prefill_ms,
		       o->cpu_grid_ms, o->diff, o->diff_oneshot);
		return;
	}
	printf("context %zu + suffix %zu, block %u, tier %s, flash %s, %d threads\n", b->context,
	       b->suffix, b->block, b->tier, b->flash ? "on" : "off", b->threads);
	printf("  TTFT cold prefill   %10.1f ms  (CPU %.1f ms)\n", o->ttft_prefill_ms,
	       o->cpu_prefill_ms);
	printf("  TTFT with the grid  %10.1f ms  (CPU %.1f ms; %.1fx shorter; %zu tokens "
	       "restored)\n",
	       o->ttft_grid_ms, o->cpu_grid_ms, o->ttft_prefill_ms / o->ttft_grid_ms, o->restored);
	printf("  restore             %10.1f ms  = fetch and join %.1f (join %.1f of it) + "
	       "set_data %.1f\n",
	       o->restore_ms, o->load_ms, o->join_ms, o->set_ms);
	printf("  KV bytes %.1f MB; tier %.2f GB/s -> %.1f ms; + set_data = %.1f ms; restore / "
	       "that %.2f\n",
	       o->kv_bytes / 1e6, o->tier_gbps, tier_ms, bound,
	       bound > 0 ? o->restore_ms / bound : 0);
	printf("  a plain grid load of the pieces %.2f GB/s -> %.1f ms; + set_data = %.1f ms; "
	       "restore / that %.2f\n",
	       o->grid_gbps, grid_ms, gbound, gbound > 0 ? o->restore_ms / gbound : 0);
	printf("  logits max |diff|: %g against the uninterrupted run, %g against one-shot "
	       "prefill\n",
	       o->diff, o->diff_oneshot);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: kvgrid-llama bench --model FILE --context N [--tier dram|nvme|server]\n"
		"         [--dir DIR] [--server HOST:PORT] [--suffix N] [--block N]\n"
		"         [--flash on|off] [--repeat N] [--json]\n");
	return 2;
}

static int parse(int argc, char **argv, struct bench_opts *b)
{
	static const struct option opts[] = {
	    {"model", 1, 0, 'm'}, {"context", 1, 0, 'c'}, {"tier", 1, 0, 't'},
	    {"dir", 1, 0, 'd'},	  {"server", 1, 0, 's'},  {"suffix", 1, 0, 'x'},
	    {"block", 1, 0, 'b'}, {"flash", 1, 0, 'f'},	  {"repeat", 1, 0, 'r'},
	    {"json", 0, 0, 'j'},  {"threads", 1, 0, 'T'}, {"help", 0, 0, 'h'},
	    {0, 0, 0, 0}};
	*b = (struct bench_opts){
	    .tier = "dram", .suffix = 64, .block = 256, .repeat = 3, .flash = 1};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'm')
			b->model = optarg;
		else if (c == 'c')
			b->context = strtoull(optarg, NULL, 10);
		else if (c == 't')
			b->tier = optarg;
		else if (c == 'd')
			b->dir = optarg;
		else if (c == 's')
			b->server = optarg;
		else if (c == 'x')
			b->suffix = strtoull(optarg, NULL, 10);
		else if (c == 'b')
			b->block = (uint32_t)strtoul(optarg, NULL, 10);
		else if (c == 'f' && (!strcmp(optarg, "on") || !strcmp(optarg, "off")))
			b->flash = !strcmp(optarg, "on");
		else if (c == 'r')
			b->repeat = (uint32_t)strtoul(optarg, NULL, 10);
		else if (c == 'j')
			b->json = 1;
		else if (c == 'T')
			b->threads = atoi(optarg);
		else
			return usage();
	}
	if (!b->model || optind != argc || !b->suffix || !b->block)
		return usage();
	if (b->context < b->block || b->context > (1u << 20)) {
		fprintf(stderr, "kvgrid-llama: --context must be at least one block (%u tokens)\n",
			b->block);
		return 2;
	}
	return 0;
}

/* The tier's own bandwidth for these KV bytes, and the grid's for a plain load of the same
 * pieces (for a server, the two are the same measure). */
static void tier_bandwidth(const struct bench_opts *b, kvgl *kl, const llama_token *t,
			   struct bench_out *o)
{
	size_t blocks = o->restored / b->block;
	o->grid_gbps = grid_gbps(kl, t, blocks, b->block, o->kv_bytes / blocks + (1u << 20));
	if (!strcmp(b->tier, "dram"))
		o->tier_gbps = dram_gbps(o->kv_bytes);
	else if (!strcmp(b->tier, "nvme"))
		o->tier_gbps = nvme_gbps(b->dir, o->kv_bytes);
	else
		o->tier_gbps = o->grid_gbps;
}

static int bench_run(const struct bench_opts *b, struct cmd_llama *l, kvgl *kl, struct bench_out *o)
{
	size_t np = b->context, n = np + b->suffix;
	llama_token *t = malloc(n * sizeof(*t));
	float *ref = malloc(l->n_vocab * 4), *one = malloc(l->n_vocab * 4),
	      *grid = malloc(l->n_vocab * 4);
	int rc = t && ref && one && grid ? 0 : -1;
	if (rc == 0) {
		cmd_tokens(11, t, np, l->n_vocab);
		cmd_tokens(12, t + np, b->suffix, l->n_vocab);
		rc = bench_reference(l, kl, t, np, n, ref, o);
	}
	if (rc == 0) {
		llama_memory_seq_rm(llama_get_memory(l->ctx), 0, -1, -1);
		double c0 = cpu_ms(), t0 = cmd_now_ms();
		rc = cmd_prefill(l, t, 0, n);
		o->ttft_prefill_ms = cmd_now_ms() - t0;
		o->cpu_prefill_ms = cpu_ms() - c0;
		if (rc == 0)
			memcpy(one, cmd_logits(l), l->n_vocab * 4);
	}
	if (rc == 0)
		rc = bench_grid(l, kl, t, n, b->repeat, grid, o);
	if (rc == 0 && o->restored == 0) {
		fprintf(stderr, "kvgrid-llama: nothing was restored: %s\n", kvgl_last_error(kl));
		rc = -1;
	}
	if (rc == 0) {
		o->diff = max_diff(grid, ref, l->n_vocab);
		o->diff_oneshot = max_diff(grid, one, l->n_vocab);
		tier_bandwidth(b, kl, t, o);
	}
	free(t), free(ref), free(one), free(grid);
	return rc;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_opts b;
	int rc = parse(argc, argv, &b);
	if (rc)
		return rc;
	struct cmd_llama l;
	cmd_threads = b.threads;
	uint32_t n_ctx = (uint32_t)((b.context + b.suffix + 255) / 256 * 256);
	if (cmd_llama_open(&l, b.model, n_ctx, b.flash, 512))
		return 1;
	b.threads = l.cp.n_threads;
	kvgl *kl = NULL;
	/* DRAM for the context's pieces, twice over, and no more: fresh memory is slow to touch */
	const struct llama_model *m = l.model;
	size_t per_token = (size_t)llama_model_n_layer(m) * 2 * 2 * llama_model_n_head_kv(m) *
			   (llama_model_n_embd(m) / llama_model_n_head(m));
	char dram[32];
	snprintf(dram, sizeof dram, "%zu", 2 * per_token * n_ctx + (64u << 20));
	if (cmd_open_grid(&l, b.model, b.tier, b.dir, b.server, b.block,
			  strcmp(b.tier, "dram") ? NULL : dram, &kl)) {
		cmd_llama_close(&l);
		return 1;
	}
	struct bench_out o = {0};
	rc = bench_run(&b, &l, kl, &o);
	if (rc == 0)
		print_result(&b, &o);
	kvgl_close(kl);
	cmd_llama_close(&l);
	return rc ? 1 : 0;
}
