/*
 * cmd_stress.c - `kvgrid stress`: threads that store, load and delete blocks through the
 * public API and verify every byte they load, for crash and fault testing.
 *
 * Block number i (0 <= i < --keys) has the raw key "stress-<i>", a length derived from i, and
 * a payload derived from i and its offset, with i and the length in its first 16 bytes: any
 * wrong byte, and any block served under another block's key, is detected.  The first wrong
 * byte ends the process at once with exit status 3 and a line that says where it was.
 *
 * --durable opens the grid in durable mode and appends the number of every block whose store
 * completed to an acknowledgement log (DIR/stress.acks unless --acks FILE; fdatasync'd before
 * the next store, so it survives the kill).  --verify-only stores nothing: it loads every
 * block, checks the bytes of those present and, with --durable, that every acknowledged block
 * is present.  A crash harness (tests/crash.sh) alternates the two with SIGKILL, and with power
 * cuts of the fault backend (--set io_backend=fault --set fault_plan=...powercut=...), at which
 * stress dies at once with exit status 5, as the machine would.
 *
 * With a shared tier (--set shared_dir=DIR), --shared-acks FILE logs the blocks whose store
 * came back published there (kvg_io.tier == KVG_TIER_SHARED), also fdatasync'd: another
 * grid with an empty NVMe directory (--verify-only --durable --acks FILE) then finds every
 * one of them in the shared tier alone.  --json adds the shared tier's counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "io_fault.h"
#include "kvgrid.h"

#define STRESS_BATCH_MAX 4
#define EXIT_WRONG	 3
#define EXIT_POWERCUT	 5 /* the fault backend cut the power (io_backend=fault, powercut=...) */

struct stress {
	kvg_grid *g;
	uint32_t keys;
	uint64_t block_bytes;
	int durable;
	int acks_fd, shared_acks_fd;
	double seconds;
	uint64_t seed;
	volatile int stop;
	uint8_t *acked; /* verify-only: acked[i] is 1 if block i's store was acknowledged */

	/* totals, summed from the threads under lock */
	pthread_mutex_t lock;
	uint64_t stores, store_fail, loads, hits, misses, deletes, bytes_verified, acks;
};

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The length of block i: between 3/4 and all of block_bytes, rarely a multiple of 4096. */
static size_t block_len(const struct stress *s, uint32_t i)
{
	uint64_t span = s->block_bytes / 4 ? s->block_bytes / 4 : 1;
	size_t len = (size_t)(s->block_bytes - mix64(i + 0x51ed) % span);
	return len < 16 ? 16 : len;
}

/* Fills p with block i's payload (len bytes, len >= 16). */
static void block_fill(uint32_t i, uint8_t *p, size_t len)
{
	uint64_t w[2] = {i, len};
	memcpy(p, w, 16);
	for (size_t off = 16; off < len; off += 8) {
		uint64_t v = mix64(((uint64_t)i << 32) ^ off);
		memcpy(p + off, &v, len - off < 8 ? len - off : 8);
	}
}

static void block_key(const struct stress *s, uint32_t i, kvg_key *key)
{
	char raw[32];
	int n = snprintf(raw, sizeof(raw), "stress-%u", i);
	kvg_raw_key(s->g, raw, (size_t)n, key);
}

/* Checks a loaded block; on a wrong byte, says where and ends the process. */
static void block_verify(const struct stress *s, uint32_t i, const uint8_t *got, size_t got_len,
			 uint8_t *want, int tier)
{
	size_t len = block_len(s, i);
	if (got_len != len) {
		uint64_t w[2] = {0, 0};
		memcpy(w, got, got_len < 16 ? got_len : 16);
		/* the first 16 bytes say which block these bytes belong to */
		fprintf(stderr,
			"kvgrid stress: WRONG LENGTH: block %u loaded with %zu bytes, "
			"stored with %zu (tier %d); the bytes say block %llu of %llu "
			"bytes\n",
			i, got_len, len, tier, (unsigned long long)w[0], (unsigned long long)w[1]);
		_exit(EXIT_WRONG);
	}
	block_fill(i, want, len);
	if (memcmp(got, want, len) == 0)
		return;
	size_t at = 0;
	while (got[at] == want[at])
		at++;
	fprintf(stderr,
		"kvgrid stress: WRONG BYTE: block %u offset %zu: 0x%02x, expected 0x%02x "
		"(tier %d)\n",
		i, at, got[at], want[at], tier);
	_exit(EXIT_WRONG);
}

/* Appends the acknowledged block numbers to the log fd and makes them durable. */
static void acks_append(int fd, const uint32_t *ids, int n)
{
	char line[STRESS_BATCH_MAX * 12];
	int len = 0;
	for (int k = 0; k < n; k++)
		len += snprintf(line + len, sizeof(line) - (size_t)len, "%u\n", ids[k]);
	/* one write per batch: O_APPEND keeps concurrent batches whole */
	if (write(fd, line, (size_t)len) != len || fdatasync(fd)) {
		fprintf(stderr, "kvgrid stress: cannot append to the acks log: %s\n",
			strerror(errno));
		_exit(1);
	}
}

struct worker {
	struct stress *s;
	uint64_t rng;
	uint8_t *buf[STRESS_BATCH_MAX]; /* block_bytes each */
	uint8_t *want;
	uint64_t stores, store_fail, loads, hits, misses, deletes, bytes_verified, acks;
};

static uint64_t rng_next(struct worker *w)
{
	return mix64(w->rng += 0x9e3779b97f4a7c15ull);
}

static void do_store(struct worker *w, const uint32_t *ids, int n)
{
	struct stress *s = w->s;
	struct kvg_io io[STRESS_BATCH_MAX];
	uint32_t ok[STRESS_BATCH_MAX], shared[STRESS_BATCH_MAX];
	int n_ok = 0, n_shared = 0;

	memset(io, 0, sizeof(io));
	for (int k = 0; k < n; k++) {
		block_key(s, ids[k], &io[k].key);
		io[k].len = block_len(s, ids[k]);
		io[k].buf = w->buf[k];
		block_fill(ids[k], w->buf[k], io[k].len);
	}
	kvg_store_sync(s->g, io, (size_t)n, s->durable ? KVG_STORE_NVME : 0);
	for (int k = 0; k < n; k++) {
		w->stores++;
		if (io[k].status == 0)
			ok[n_ok++] = ids[k];
		else
			w->store_fail++;
		if (io[k].status == 0 && io[k].tier == KVG_TIER_SHARED)
			shared[n_shared++] = ids[k];
	}
	if (s->durable && n_ok) {
		acks_append(s->acks_fd, ok, n_ok);
		w->acks += (uint64_t)n_ok;
	}
	if (s->shared_acks_fd >= 0 && n_shared)
		acks_append(s->shared_acks_fd, shared, n_shared);
}

static void do_load(struct worker *w, const uint32_t *ids, int n)
{
	struct stress *s = w->s;
	struct kvg_io io[STRESS_BATCH_MAX];

	memset(io, 0, sizeof(io));
	for (int k = 0; k < n; k++) {
		block_key(s, ids[k], &io[k].key);
		io[k].len = s->block_bytes;
		io[k].buf = w->buf[k];
	}
	kvg_load_sync(s->g, io, (size_t)n, 0);
	for (int k = 0; k < n; k++) {
		w->loads++;
		if (io[k].status != 0) {
			w->misses++;
			continue;
		}
		w->hits++;
		block_verify(s, ids[k], w->buf[k], io[k].len, w->want, io[k].tier);
		w->bytes_verified += io[k].len;
	}
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	uint32_t ids[STRESS_BATCH_MAX];

	while (!s->stop) {
		uint64_t r = rng_next(w);
		int n = 1 + (int)(r % STRESS_BATCH_MAX);
		for (int k = 0; k < n; k++)
			ids[k] = (uint32_t)(rng_next(w) % s->keys);
		unsigned what = (unsigned)((r >> 32) % 100);
		if (what < 45) {
			do_store(w, ids, n);
		} else if (what < 95 || s->durable) {
			/* durable runs never delete: every acknowledged block must stay */
			do_load(w, ids, n);
		} else {
			kvg_key key;
			block_key(s, ids[0], &key);
			kvg_delete(s->g, &key, 1);
			w->deletes++;
		}
	}
	return NULL;
}

/* Reads the acks log into s->acked (a torn last line is ignored). */
static int acks_load(struct stress *s, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[64];
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		char *end;
		unsigned long v = strtoul(line, &end, 10);
		if (*end != '\n' || end == line || v >= s->keys)
			continue;
		s->acked[v] = 1;
	}
	fclose(f);
	return 0;
}

/* Loads every block: checks the bytes of those present, counts acknowledged ones missing. */
static uint64_t verify_all(struct stress *s, struct worker *w, uint64_t *present)
{
	uint64_t missing = 0;
	for (uint32_t i = 0; i < s->keys; i++) {
		struct kvg_io io = {.buf = w->buf[0], .len = s->block_bytes};
		block_key(s, i, &io.key);
		kvg_load_sync(s->g, &io, 1, KVG_LOAD_NOPROMOTE);
		w->loads++;
		if (io.status == 0) {
			block_verify(s, i, w->buf[0], io.len, w->want, io.tier);
			w->hits++;
			w->bytes_verified += io.len;
			(*present)++;
		} else {
			w->misses++;
			if (s->acked[i]) {
				fprintf(stderr,
					"kvgrid stress: LOST: acknowledged block %u is missing "
					"(%s)\n",
					i, kvg_strerror(io.status));
				missing++;
			}
		}
	}
	return missing;
}

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: kvgrid stress --dir DIR [--seconds S] [--durable] [--verify-only]\n"
	       "         [--threads N] [--keys N] [--block-bytes N] [--dram N] [--nvme N]\n"
	       "         [--segment N] [--acks FILE] [--shared-acks FILE] [--seed N]\n"
	       "         [--config FILE] [--set NAME=VALUE]... [--json]\n"
	       "  Threads store, load (verifying every byte) and delete blocks derived from their\n"
	       "  number.  Exit 0: all good; 3: a wrong byte was served; 4: an acknowledged block\n"
	       "  is missing (--durable --verify-only); 5: a fault plan cut the power; 1: another\n"
	       "  failure; 2: bad usage.\n"
	       "  Defaults: --seconds 10 --threads 4 --keys 1024 --block-bytes 64K --dram 8M\n"
	       "            --nvme 128M --segment 4M; --acks DIR/stress.acks\n");
}

struct stress_args {
	const char *dir, *acks, *shared_acks, *config;
	const char *sets[32];
	int n_sets, threads, verify_only, json;
	uint64_t dram, nvme, segment;
};

/* A numeric option o with value v: 0, or the usage exit status. */
static int set_number(const char *o, const char *v, struct stress *s, struct stress_args *a)
{
	uint64_t n = 0;
	if (!strcmp(o, "--seconds")) {
		char *end;
		s->seconds = strtod(v, &end);
		if (*end || !(s->seconds > 0 && s->seconds < 1e6))
			return cli_usage("stress", "--seconds: bad number '%s'", v);
		return 0;
	}
	if (cli_parse_size(v, &n))
		return cli_usage("stress", "%s: bad number '%s'", o, v);
	if (!strcmp(o, "--keys")) {
		if (n < 1 || n > (1u << 24))
			return cli_usage("stress", "--keys: 1..16M");
		s->keys = (uint32_t)n;
	} else if (!strcmp(o, "--threads")) {
		if (n < 1 || n > 256)
			return cli_usage("stress", "--threads: 1..256");
		a->threads = (int)n;
	} else if (!strcmp(o, "--block-bytes")) {
		if (n < 16 || n > (64u << 20))
			return cli_usage("stress", "--block-bytes: 16..64M");
		s->block_bytes = n;
	} else if (!strcmp(o, "--dram")) {
		a->dram = n;
	} else if (!strcmp(o, "--nvme")) {
		a->nvme = n;
	} else if (!strcmp(o, "--segment")) {
		a->segment = n;
	} else {
		s->seed = n;
	}
	return 0;
}

/* Parses argv; returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct stress *s, struct stress_args *a)
{
	static const char *const strings[] = {"--dir",	  "--acks", "--shared-acks",
					      "--config", "--set",  NULL};
	static const char *const numbers[] = {"--seconds",     "--keys", "--threads",
					      "--block-bytes", "--dram", "--nvme",
					      "--segment",     "--seed", NULL};
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int string = 0, number = 0, rc;
		for (int k = 0; strings[k]; k++)
			string |= !strcmp(o, strings[k]);
		for (int k = 0; numbers[k]; k++)
			number |= !strcmp(o, numbers[k]);
		if ((string || number) && !v)
			return cli_usage("stress", "%s needs a value (kvgrid stress --help)", o);
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(o, "--durable")) {
			s->durable = 1;
		} else if (!strcmp(o, "--verify-only")) {
			a->verify_only = 1;
		} else if (!strcmp(o, "--json")) {
			a->json = 1;
		} else if (number) {
			if ((rc = set_number(o, v, s, a)))
				return rc;
		} else if (!strcmp(o, "--dir")) {
			a->dir = v;
		} else if (!strcmp(o, "--acks")) {
			a->acks = v;
		} else if (!strcmp(o, "--shared-acks")) {
			a->shared_acks = v;
		} else if (!strcmp(o, "--config")) {
			a->config = v;
		} else if (!strcmp(o, "--set")) {
			if (a->n_sets == 32 || !strchr(v, '='))
				return cli_usage("stress", "--set NAME=VALUE (at most 32)");
			a->sets[a->n_sets++] = v;
		} else {
			return cli_usage("stress", "unknown option '%s' (kvgrid stress --help)", o);
		}
		i += string || number;
	}
	if (!a->dir || !*a->dir)
		return cli_usage("stress", "--dir DIR is required (kvgrid stress --help)");
	return -1;
}

static int config_build(const struct stress *s, const struct stress_args *a, struct kvg_config *cfg)
{
	char err[512];
	kvg_config_init(cfg);
	snprintf(cfg->model_id, sizeof(cfg->model_id), "kvgrid-stress");
	cfg->dram_bytes = a->dram;
	cfg->nvme_bytes = a->nvme;
	cfg->segment_bytes = a->segment;
	if (s->durable)
		cfg->durability = KVG_DURABILITY_DURABLE;
	if (a->config && kvg_config_load(cfg, a->config, err, sizeof(err)))
		return cli_usage("stress", "%s", err);
	if (kvg_config_set(cfg, "dir", a->dir, err, sizeof(err)))
		return cli_usage("stress", "%s", err);
	for (int i = 0; i < a->n_sets; i++) {
		char name[128];
		const char *eq = strchr(a->sets[i], '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq - a->sets[i]), a->sets[i]);
		if (kvg_config_set(cfg, name, eq + 1, err, sizeof(err)))
			return cli_usage("stress", "--set %s: %s", a->sets[i], err);
	}
	return 0;
}

/* The shared tier's counters (none without one) closing the JSON object. */
static void report_shared(const struct stress *s)
{
	struct kvg_tier_stats t;
	if (kvg_tier_stats_get(s->g, KVG_TIER_SHARED, &t)) {
		printf("}\n");
		return;
	}
	printf(",\"shared_hits\":%llu,\"shared_misses\":%llu,\"shared_io_errors\":%llu,"
	       "\"shared_checksum_failures\":%llu,\"shared_blocks\":%llu}\n",
	       (unsigned long long)t.hits, (unsigned long long)t.misses,
	       (unsigned long long)t.io_errors, (unsigned long long)t.checksum_failures,
	       (unsigned long long)t.blocks);
}

static void report(const struct stress *s, const struct stress_args *a, uint64_t present,
		   uint64_t missing, double secs)
{
	struct kvg_stats st;
	kvg_stats_get(s->g, &st);
	const struct kvg_tier_stats *nv = &st.tier[KVG_TIER_NVME];
	if (a->json) {
		printf("{\"mode\":\"%s\",\"durable\":%s,\"seconds\":%.3f,\"stores\":%llu,"
		       "\"store_failures\":%llu,\"loads\":%llu,\"hits\":%llu,\"misses\":%llu,"
		       "\"deletes\":%llu,\"bytes_verified\":%llu,\"wrong\":0,\"acks\":%llu,"
		       "\"present\":%llu,\"missing_acked\":%llu,\"recovered_blocks\":%llu,"
		       "\"recovery_us\":%llu,\"checksum_failures\":%llu,\"io_errors\":%llu,"
		       "\"degraded\":%d",
		       a->verify_only ? "verify" : "stress", s->durable ? "true" : "false", secs,
		       (unsigned long long)s->stores, (unsigned long long)s->store_fail,
		       (unsigned long long)s->loads, (unsigned long long)s->hits,
		       (unsigned long long)s->misses, (unsigned long long)s->deletes,
		       (unsigned long long)s->bytes_verified, (unsigned long long)s->acks,
		       (unsigned long long)present, (unsigned long long)missing,
		       (unsigned long long)st.recovered_blocks, (unsigned long long)st.recovery_us,
		       (unsigned long long)nv->checksum_failures, (unsigned long long)nv->io_errors,
		       nv->degraded);
		report_shared(s);
		return;
	}
	printf("stress %s: %.1f s, stores %llu (failed %llu), loads %llu (hits %llu, misses %llu), "
	       "deletes %llu, verified %llu bytes, wrong 0\n",
	       a->verify_only ? "verify-only" : "run", secs, (unsigned long long)s->stores,
	       (unsigned long long)s->store_fail, (unsigned long long)s->loads,
	       (unsigned long long)s->hits, (unsigned long long)s->misses,
	       (unsigned long long)s->deletes, (unsigned long long)s->bytes_verified);
	printf(
	    "  recovered %llu blocks in %llu us; nvme checksum failures %llu, io errors %llu%s\n",
	    (unsigned long long)st.recovered_blocks, (unsigned long long)st.recovery_us,
	    (unsigned long long)nv->checksum_failures, (unsigned long long)nv->io_errors,
	    nv->degraded ? ", degraded" : "");
	if (s->durable)
		printf(
		    "  acknowledged %llu this run; present %llu, acknowledged but missing %llu\n",
		    (unsigned long long)s->acks, (unsigned long long)present,
		    (unsigned long long)missing);
}

static int worker_init(struct worker *w, struct stress *s, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->s = s;
	w->rng = seed;
	for (int k = 0; k < STRESS_BATCH_MAX; k++)
		if (!(w->buf[k] = malloc(s->block_bytes)))
			return -1;
	return (w->want = malloc(s->block_bytes)) ? 0 : -1;
}

static void worker_fini(struct worker *w, struct stress *s)
{
	pthread_mutex_lock(&s->lock);
	s->stores += w->stores;
	s->store_fail += w->store_fail;
	s->loads += w->loads;
	s->hits += w->hits;
	s->misses += w->misses;
	s->deletes += w->deletes;
	s->bytes_verified += w->bytes_verified;
	s->acks += w->acks;
	pthread_mutex_unlock(&s->lock);
	for (int k = 0; k < STRESS_BATCH_MAX; k++)
		free(w->buf[k]);
	free(w->want);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the threads for s->seconds. */
static int run_threads(struct stress *s, int threads)
{
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	int started = 0, rc = 0;

	if (!w || !t) {
		rc = -1;
		goto out_free;
	}
	for (; started < threads; started++) {
		if (worker_init(&w[started], s, mix64(s->seed * 1000 + (uint64_t)started)) ||
		    pthread_create(&t[started], NULL, worker_run, &w[started])) {
			worker_fini(&w[started], s);
			rc = -1;
			break;
		}
	}
	double end = now_s() + s->seconds;
	while (!rc && now_s() < end) {
		usleep(20000);
		/* a fault plan cut the power: the machine is gone, so is this process, at once */
		if (io_fault_powered_off())
			_exit(EXIT_POWERCUT);
	}
	s->stop = 1;
	for (int i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		worker_fini(&w[i], s);
	}
out_free:
	free(w);
	free(t);
	return rc;
}

int cmd_stress(int argc, char **argv)
{
	struct stress s = {.keys = 1024,
			   .block_bytes = 64 << 10,
			   .seconds = 10,
			   .acks_fd = -1,
			   .shared_acks_fd = -1,
			   .lock = PTHREAD_MUTEX_INITIALIZER};
	struct stress_args a = {
	    .threads = 4, .dram = 8 << 20, .nvme = 128 << 20, .segment = 4 << 20};
	struct kvg_config cfg;
	char err[512], acks_path[4200];
	uint64_t present = 0, missing = 0;
	int rc;

	if ((rc = parse_args(argc, argv, &s, &a)) >= 0)
		return rc;
	if ((rc = config_build(&s, &a, &cfg)))
		return rc;
	snprintf(acks_path, sizeof(acks_path), "%s", a.acks ? a.acks : "");
	if (!a.acks)
		snprintf(acks_path, sizeof(acks_path), "%s/stress.acks", a.dir);
	double t0 = now_s();
	if ((rc = kvg_open(&cfg, &s.g, err, sizeof(err))))
		return cli_fail("stress", "cannot open the grid: %s",
				err[0] ? err : kvg_strerror(rc));
	if (!(s.acked = calloc(s.keys, 1))) {
		rc = cli_fail("stress", "out of memory");
		goto out_close;
	}
	if (a.verify_only) {
		struct worker w;
		if (s.durable && (rc = acks_load(&s, acks_path))) {
			rc = cli_fail("stress", "%s: %s", acks_path, strerror(-rc));
			goto out_free;
		}
		if (worker_init(&w, &s, 1)) {
			worker_fini(&w, &s);
			rc = cli_fail("stress", "out of memory");
			goto out_free;
		}
		missing = verify_all(&s, &w, &present);
		worker_fini(&w, &s);
	} else {
		if (s.durable) {
			s.acks_fd =
			    open(acks_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
			if (s.acks_fd < 0) {
				rc = cli_fail("stress", "%s: %s", acks_path, strerror(errno));
				goto out_free;
			}
		}
		if (a.shared_acks &&
		    (s.shared_acks_fd = open(
			 a.shared_acks, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
			rc = cli_fail("stress", "%s: %s", a.shared_acks, strerror(errno));
			goto out_free;
		}
		if (run_threads(&s, a.threads)) {
			rc = cli_fail("stress", "cannot start the threads");
			goto out_free;
		}
	}
	report(&s, &a, present, missing, now_s() - t0);
	rc = missing ? 4 : 0;
out_free:
	if (s.acks_fd >= 0)
		close(s.acks_fd);
	if (s.shared_acks_fd >= 0)
		close(s.shared_acks_fd);
	free(s.acked);
out_close:
	kvg_close(s.g);
	return rc;
}
