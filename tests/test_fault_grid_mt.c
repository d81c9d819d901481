/*
 * test_fault_grid_mt.c - the grid over the fault backend (io_backend=fault): under every
 * plan it serves no wrong byte, never crashes or hangs, counts the failure in its stats and
 * says so in its log; in durable mode a store that completed survives the fault, a reopen and a
 * power cut; a failing disk degrades the NVMe tier while DRAM keeps serving, and the tier is
 * retried; a full disk and a burst larger than every tier are refused cleanly.
 *
 * Prints, at the end, the faults injected by kind (the figures of RELIABILITY.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io_fault.h"
#include "kvgrid.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define BLOCKS	48
#define LEN_MAX (64u * 1024)

static char dir[900], log_path[1000];
static uint64_t wrong_bytes; /* stays 0, or the test has already failed */
static uint64_t loads_verified;
static int failures; /* broken promises other than wrong bytes: reported, then exit 1 */

static void sh(const char *cmd)
{
	CHECK(system(cmd) == 0);
}

static void dir_fresh(const char *name)
{
	const char *tmp = getenv("KVG_TEST_TMP");
	char cmd[8400];
	snprintf(dir, sizeof(dir), "%s/test_fault_grid.%d.%s", tmp ? tmp : "build/tmp", getpid(),
		 name);
	snprintf(log_path, sizeof(log_path), "%s.log", dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, log_path);
	sh(cmd);
}

static void dir_gone(void)
{
	char cmd[8400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, log_path);
	sh(cmd);
}

static size_t len_of(uint32_t i)
{
	return 40000 + (size_t)i * 331 % 20000;
}

static void fill(uint32_t i, uint8_t *p, size_t len)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);
	for (size_t k = 0; k < len; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[k] = (uint8_t)(x >> 24);
	}
}

static struct kvg_config config(uint64_t dram, const char *plan, int durable)
{
	struct kvg_config c;
	kvg_config_init(&c);
	snprintf(c.model_id, sizeof(c.model_id), "test-fault-grid");
	c.dram_bytes = dram;
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	c.nvme_bytes = 16u << 20;
	c.segment_bytes = 1u << 20;
	c.io_backend = plan ? KVG_IO_FAULT : KVG_IO_PSYNC;
	snprintf(c.fault_plan, sizeof(c.fault_plan), "%s", plan ? plan : "");
	c.durability = durable ? KVG_DURABILITY_DURABLE : KVG_DURABILITY_CACHE;
	c.io_error_limit = 1000;
	c.degraded_retry_ms = 200;
	c.queue_depth = 8;
	c.workers = 2;
	snprintf(c.log_file, sizeof(c.log_file), "%.1000s", log_path);
	c.log_level = 2;
	return c;
}

static kvg_grid *grid_open(const struct kvg_config *c)
{
	kvg_grid *g;
	char err[512];
	int rc = kvg_open(c, &g, err, sizeof(err));
	if (rc)
		fprintf(stderr, "kvg_open: %s (%s)\n", err, kvg_strerror(rc));
	CHECK(rc == 0);
	return g;
}

static void key_of(kvg_grid *g, uint32_t i, kvg_key *k)
{
	char raw[32];
	int n = snprintf(raw, sizeof(raw), "block-%u", i);
	kvg_raw_key(g, raw, (size_t)n, k);
}

/* Stores block i; returns its status. */
static int store(kvg_grid *g, uint32_t i, uint32_t flags)
{
	static uint8_t buf[LEN_MAX];
	struct kvg_io io = {.buf = buf, .len = len_of(i)};
	key_of(g, i, &io.key);
	fill(i, buf, io.len);
	kvg_store_sync(g, &io, 1, flags);
	return io.status;
}

/* Loads block i: 1 if present (and then every byte was checked), 0 if not. */
static int load(kvg_grid *g, uint32_t i)
{
	static uint8_t buf[LEN_MAX], want[LEN_MAX];
	struct kvg_io io = {.buf = buf, .len = LEN_MAX};
	key_of(g, i, &io.key);
	memset(buf, 0xa5, sizeof(buf));
	kvg_load_sync(g, &io, 1, KVG_LOAD_NOPROMOTE);
	if (io.status != 0)
		return 0;
	fill(i, want, len_of(i));
	if (io.len != len_of(i) || memcmp(buf, want, io.len)) {
		wrong_bytes++;
		fprintf(stderr, "WRONG BYTES served for block %u (tier %d)\n", i, io.tier);
		exit(1);
	}
	loads_verified++;
	return 1;
}

static int log_has(const char *needle)
{
	char line[1024];
	int found = 0;
	FILE *f = fopen(log_path, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* ---- plans ---------------------------------------------------------------------------- */

enum expect {
	X_ALL,	    /* retried or absorbed: every store succeeds, every block loads */
	X_IO_ERR,   /* some operations fail: counted as I/O errors; misses allowed */
	X_CHECKSUM, /* bytes go bad: counted as checksum failures; misses allowed */
};

/* Description: under the plan, on an NVMe-only grid, no wrong byte is served, the failure is
 * counted in the stats and logged, and in durable mode every store that completed is loadable
 * after a clean reopen without faults. */
static void test_plan(const char *plan, int durable, enum expect x)
{
	struct kvg_stats st;
	int ok[BLOCKS], stored = 0, present = 0;

	dir_fresh("plan");
	struct kvg_config c = config(0, plan, durable);
	kvg_grid *g = grid_open(&c);
	for (uint32_t i = 0; i < BLOCKS; i++) {
		ok[i] = store(g, i, KVG_STORE_NVME) == 0;
		stored += ok[i];
	}
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < BLOCKS; i++)
			present += load(g, i);
	kvg_stats_get(g, &st);
	const struct kvg_tier_stats *nv = &st.tier[KVG_TIER_NVME];
	CHECK(!strcmp(nv->backend, "fault"));
	if (x == X_ALL) {
		CHECK(stored == BLOCKS);
		CHECK(present == 2 * BLOCKS);
	} else if (x == X_IO_ERR) {
		CHECK(nv->io_errors > 0);
		CHECK(log_has("failed"));
	} else {
		CHECK(nv->checksum_failures > 0);
		CHECK(log_has("verification"));
	}
	kvg_close(g);

	if (durable) { /* a clean reopen: every completed store is there, byte for byte */
		c = config(0, NULL, durable);
		g = grid_open(&c);
		for (uint32_t i = 0; i < BLOCKS; i++)
			if (ok[i] && !load(g, i)) {
				fprintf(stderr, "FAIL plan '%s': completed durable store %u lost\n",
					plan, i);
				failures++;
			}
		kvg_close(g);
	}
	printf("plan %-40s %-7s stored %2d/%d, loads present %3d/%d\n", plan,
	       durable ? "durable" : "cache", stored, BLOCKS, present, 2 * BLOCKS);
	dir_gone();
}

/* Description: a disk that keeps failing degrades the NVMe tier after io_error_limit errors,
 * says why in the log and the stats, DRAM keeps serving every block, and after
 * degraded_retry_ms the tier is tried again and works. */
static void test_degraded_and_retry(void)
{
	struct kvg_stats st;
	dir_fresh("degraded");
	struct kvg_config c = config(8u << 20, "fail=write:1-3:EIO", 0);
	c.io_error_limit = 3;
	c.degraded_retry_ms = 300;
	kvg_grid *g = grid_open(&c);
	for (uint32_t i = 0; i < 8; i++)
		CHECK(store(g, i, KVG_STORE_NVME) == 0); /* DRAM takes them */
	kvg_stats_get(g, &st);
	CHECK(st.tier[KVG_TIER_NVME].io_errors >= 3);
	CHECK(st.tier[KVG_TIER_NVME].degraded == 1);
	CHECK(log_has("degraded"));
	for (uint32_t i = 0; i < 8; i++)
		CHECK(load(g, i)); /* DRAM keeps serving */
	uint64_t written = st.tier[KVG_TIER_NVME].bytes_written;
	usleep(450 * 1000);
	for (uint32_t i = 8; i < 16; i++)
		CHECK(store(g, i, KVG_STORE_NVME) == 0);
	kvg_stats_get(g, &st);
	CHECK(st.tier[KVG_TIER_NVME].degraded == 0);
	CHECK(st.tier[KVG_TIER_NVME].bytes_written > written); /* the disk is used again */
	CHECK(log_has("retrying"));
	for (uint32_t i = 0; i < 16; i++)
		CHECK(load(g, i));
	kvg_close(g);
	dir_gone();
}

/* Description: a full disk (every write ENOSPC) never crashes the grid: in cache mode DRAM
 * keeps serving; in durable mode stores fail cleanly with an error and nothing is served
 * wrong. */
static void test_full_disk(void)
{
	dir_fresh("enospc");
	struct kvg_config c = config(4u << 20, "fail=write:1+:ENOSPC", 0);
	c.io_error_limit = 1u << 30;
	kvg_grid *g = grid_open(&c);
	int present = 0;
	for (uint32_t i = 0; i < 160; i++) /* ~8 MB: twice the DRAM */
		store(g, i, 0);
	for (uint32_t i = 0; i < 160; i++)
		present += load(g, i);
	CHECK(present > 0); /* DRAM still serves what it holds */
	struct kvg_stats st;
	kvg_stats_get(g, &st);
	CHECK(st.tier[KVG_TIER_DRAM].bytes <= st.tier[KVG_TIER_DRAM].capacity_bytes);
	kvg_close(g);
	dir_gone();

	dir_fresh("enospc-durable");
	c = config(4u << 20, "fail=write:1+:ENOSPC", 1);
	c.io_error_limit = 1u << 30;
	g = grid_open(&c);
	for (uint32_t i = 0; i < 16; i++)
		CHECK(store(g, i, KVG_STORE_NVME) != 0); /* never acknowledged: not durable */
	for (uint32_t i = 0; i < 16; i++)
		load(g, i);
	kvg_stats_get(g, &st);
	CHECK(st.tier[KVG_TIER_NVME].io_errors > 0 || st.store_failures > 0);
	kvg_close(g);
	dir_gone();
}

/* Description: a burst of stores larger than every tier together completes (each store
 * succeeds or fails with an error), and neither tier ever holds more than its capacity. */
static void test_burst(void)
{
	struct kvg_stats st;
	dir_fresh("burst");
	struct kvg_config c = config(2u << 20, NULL, 0);
	c.nvme_bytes = 8u << 20;
	kvg_grid *g = grid_open(&c);
	int failed = 0;
	for (uint32_t i = 0; i < 600; i++) { /* ~30 MB into 10 MB of tiers */
		failed += store(g, i, 0) != 0;
		if (i % 50 == 0) {
			kvg_stats_get(g, &st);
			CHECK(st.tier[KVG_TIER_DRAM].bytes <=
			      st.tier[KVG_TIER_DRAM].capacity_bytes);
			CHECK(st.tier[KVG_TIER_NVME].bytes <=
			      st.tier[KVG_TIER_NVME].capacity_bytes);
		}
	}
	int present = 0;
	for (uint32_t i = 0; i < 600; i++)
		present += load(g, i);
	kvg_stats_get(g, &st);
	CHECK(st.tier[KVG_TIER_DRAM].bytes <= st.tier[KVG_TIER_DRAM].capacity_bytes);
	CHECK(st.tier[KVG_TIER_NVME].bytes <= st.tier[KVG_TIER_NVME].capacity_bytes);
	CHECK(present > 0 && present < 600);
	printf("burst: 600 stores into 10 MB of tiers: %d refused, %d present afterwards\n", failed,
	       present);
	kvg_close(g);
	dir_gone();
}

/* Description: when every block is pinned and the tiers are full, a further store is refused
 * with KVG_EFULL (a clear error, with a name), not an out-of-memory kill or a hang. */
static void test_pinned_full(void)
{
	struct kvg_stats st;
	kvg_key keys[64];
	dir_fresh("pinned");
	struct kvg_config c = config(2u << 20, NULL, 0);
	c.dir[0] = 0; /* DRAM only: nothing to demote to */
	kvg_grid *g = grid_open(&c);
	int stored = 0;
	for (uint32_t i = 0; i < 64; i++) {
		key_of(g, i, &keys[i]);
		if (store(g, i, 0) == 0)
			stored++;
		kvg_pin(g, &keys[i], 1);
	}
	int rc = store(g, 1000, 0);
	CHECK(rc == KVG_EFULL);
	CHECK(strlen(kvg_strerror(rc)) > 0);
	kvg_stats_get(g, &st);
	CHECK(st.tier[KVG_TIER_DRAM].bytes <= st.tier[KVG_TIER_DRAM].capacity_bytes);
	CHECK(st.store_failures > 0);
	kvg_unpin(g, keys, 64);
	CHECK(store(g, 1000, 0) == 0); /* unpinned: room again */
	printf("pinned full: %d blocks pinned, the next store refused with '%s'\n", stored,
	       kvg_strerror(rc));
	kvg_close(g);
	dir_gone();
}

/*
 * Description: in durable mode a store that follows a failed store of the same key is
 * acknowledged only once the block is durable: after a crash (the process dies without
 * closing) every acknowledged block is there.
 */
static void test_durable_retry_after_failure(void)
{
	int p[2];
	dir_fresh("retry");
	CHECK(pipe(p) == 0);
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		struct kvg_config c = config(4u << 20, "fail=write:1-4:EIO", 1);
		kvg_grid *g = grid_open(&c);
		for (uint32_t i = 0; i < 4; i++) {
			int first = store(g, i, KVG_STORE_NVME);  /* its writes fail */
			int second = store(g, i, KVG_STORE_NVME); /* the engine retries */
			dprintf(p[1], "%u %d %d\n", i, first, second);
		}
		_exit(0); /* a crash: no close, no write-back of what is only in DRAM */
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	int acked[4] = {0}, firsts_failed = 0;
	unsigned i;
	int first, second;
	while (fscanf(f, "%u %d %d", &i, &first, &second) == 3 && i < 4) {
		acked[i] = first == 0 || second == 0;
		firsts_failed += first != 0;
	}
	fclose(f);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(firsts_failed > 0); /* the plan did fail a durable store */
	struct kvg_config c = config(1u << 20, NULL, 1);
	kvg_grid *g = grid_open(&c);
	for (i = 0; i < 4; i++)
		if (acked[i] && !load(g, i)) {
			fprintf(stderr,
				"FAIL durable retry: block %u acknowledged after a failed store, "
				"lost in a crash\n",
				i);
			failures++;
		}
	kvg_close(g);
	dir_gone();
}

/* ---- power cuts ----------------------------------------------------------------------- */

/*
 * The child opens the grid with the plan, stores blocks and reports each completed store on
 * the pipe; the power goes at the plan's moment; the child then dies without closing, as a
 * machine would.  It ends with a line of the fault counters.
 */
static void powercut_child(const char *plan, int durable, int fd)
{
	struct kvg_config c = config(durable ? 4u << 20 : 1u << 20, plan, durable);
	kvg_grid *g = grid_open(&c);
	for (uint32_t i = 0; i < 120; i++) {
		if (store(g, i, KVG_STORE_NVME) == 0)
			dprintf(fd, "ack %u\n", i);
		if (io_fault_powered_off() && i >= 60)
			break;
	}
	struct io_fault_counts t;
	io_fault_totals(&t);
	dprintf(fd, "cut %llu dropped %llu\n", (unsigned long long)t.powercuts,
		(unsigned long long)t.dropped_writes);
	_exit(0);
}

/* Description: after a power cut (writes not yet durable are dropped; the process dies without
 * closing), the reopened grid serves no wrong byte, and in durable mode every store that had
 * completed before the cut is there. */
static void test_powercut(const char *plan, int durable, struct io_fault_counts *sum)
{
	int p[2];
	char line[128];
	uint8_t acked[120] = {0};
	unsigned long long cuts = 0, dropped = 0;
	int n_acked = 0;

	dir_fresh(durable ? "cut-durable" : "cut-cache");
	CHECK(pipe(p) == 0);
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		powercut_child(plan, durable, p[1]);
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	while (fgets(line, sizeof(line), f)) {
		unsigned id;
		if (sscanf(line, "ack %u", &id) == 1 && id < 120) {
			acked[id] = 1;
			n_acked++;
		}
		sscanf(line, "cut %llu dropped %llu", &cuts, &dropped);
	}
	fclose(f);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(cuts == 1);
	sum->powercuts += cuts;
	sum->dropped_writes += dropped;

	struct kvg_config c = config(1u << 20, NULL, durable);
	kvg_grid *g = grid_open(&c);
	int present = 0;
	for (uint32_t i = 0; i < 120; i++) {
		int got = load(g, i);
		present += got;
		if (durable && acked[i] && !got) {
			fprintf(stderr, "FAIL power cut '%s': acknowledged durable block %u lost\n",
				plan, i);
			failures++;
		}
	}
	kvg_close(g);
	printf("powercut %-28s %-7s acked %3d, present after %3d, writes dropped %llu\n", plan,
	       durable ? "durable" : "cache", n_acked, present, dropped);
	dir_gone();
}

int main(void)
{
	static const struct {
		const char *plan;
		enum expect x;
	} plans[] = {
	    {"seed=1;fail=write:3:EIO", X_IO_ERR},
	    {"seed=2;fail=write:2-5:ENOSPC", X_IO_ERR},
	    {"seed=3;fail=read:0.2:EIO", X_IO_ERR},
	    {"seed=4;fail=fsync:1+:EIO;fail=write:0.1:EIO", X_IO_ERR},
	    {"seed=5;fail=any:0.1:EINTR", X_ALL},
	    {"seed=6;fail=any:0.1:EAGAIN", X_ALL},
	    {"seed=7;short=read:0.3;short=write:0.3", X_ALL},
	    {"seed=8;tear=write:0.15", X_CHECKSUM},
	    {"seed=9;flip=read:0.2", X_CHECKSUM},
	    {"seed=10;delay=any:0.2:30", X_ALL},
	};
	struct io_fault_counts cut_sum = {0};

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* swept over both backends beneath the fault backend */
	for (size_t k = 0; k < sizeof(plans) / sizeof(plans[0]); k++) {
		for (int inner = 0; inner < 2; inner++) {
			char plan[256];
			snprintf(plan, sizeof(plan), "inner=%s;%s", inner ? "uring" : "psync",
				 plans[k].plan);
			test_plan(plan, 0, plans[k].x);
			if (plans[k].x != X_CHECKSUM) /* a torn write that reports success is a
						       * lying disk: durability cannot survive */
				test_plan(plan, 1, plans[k].x);
		}
	}
	test_degraded_and_retry();
	test_full_disk();
	test_burst();
	test_pinned_full();
	test_durable_retry_after_failure();
	test_powercut("powercut=write:30", 1, &cut_sum);
	test_powercut("powercut=write:45", 0, &cut_sum);
	test_powercut("seed=3;short=write:0.2;powercut=write:40", 1, &cut_sum);

	struct io_fault_counts t;
	io_fault_totals(&t);
	io_fault_counts_add(&t, &cut_sum);
	printf("faults injected: eio %llu enospc %llu eintr %llu eagain %llu short %llu tear %llu "
	       "flip %llu delay %llu powercut %llu dropped-writes %llu; loads verified %llu, wrong "
	       "bytes "
	       "%llu\n",
	       (unsigned long long)t.eio, (unsigned long long)t.enospc, (unsigned long long)t.eintr,
	       (unsigned long long)t.eagain, (unsigned long long)t.shorts,
	       (unsigned long long)t.tears, (unsigned long long)t.flips,
	       (unsigned long long)t.delays, (unsigned long long)t.powercuts,
	       (unsigned long long)t.dropped_writes, (unsigned long long)loads_verified,
	       (unsigned long long)wrong_bytes);
	if (failures)
		fprintf(stderr, "%d broken promises (see FAIL lines)\n", failures);
	return failures ? 1 : 0;
}
