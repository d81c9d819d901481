/*
 * test_fault_powercut.c - a power-cut campaign: round after round a child process opens a grid
 * over the fault backend, stores blocks and reports each completed store, until the power goes
 * at a random write; with cutmode=mixed every write not yet durable is then lost, kept or torn,
 * as a disk cache may leave it, and the child dies without closing.  The parent reopens the
 * directory without faults.
 *
 * Specification: the reopened grid never serves a wrong byte; in durable mode every store that
 * completed before the cut is present; fsck then finds only damage it can repair, and after
 * fsck --repair the same holds.  Rounds alternate durable and cache mode, psync and io_uring;
 * POWERCUT_ROUNDS=N runs N rounds instead of 24.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsck.h"
#include "io_fault.h"
#include "kvgrid.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define ROUNDS	24
#define BLOCKS	150
#define LEN_MAX (40u * 1024)

static char dir[1000];

static size_t len_of(uint32_t i)
{
	return 9000 + (size_t)i * 613 % 30000;
}

static void fill(uint32_t i, uint8_t *p, size_t len)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (i + 7);
	for (size_t k = 0; k < len; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p[k] = (uint8_t)x;
	}
}

static struct kvg_config config(const char *plan, int durable)
{
	struct kvg_config c;
	kvg_config_init(&c);
	snprintf(c.model_id, sizeof(c.model_id), "test-fault-powercut");
	c.dram_bytes = 1u << 20;
	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	c.nvme_bytes = 16u << 20;
	c.segment_bytes = 1u << 20;
	c.io_backend = plan ? KVG_IO_FAULT : KVG_IO_PSYNC;
	snprintf(c.fault_plan, sizeof(c.fault_plan), "%s", plan ? plan : "");
	c.durability = durable ? KVG_DURABILITY_DURABLE : KVG_DURABILITY_CACHE;
	c.io_error_limit = 1u << 30;
	c.log_level = 0;
	/* the child's "write failed" lines after the cut are expected: keep them out of the way */
	snprintf(c.log_file, sizeof(c.log_file), "/dev/null");
	return c;
}

static void key_of(kvg_grid *g, uint32_t i, kvg_key *k)
{
	char raw[32];
	int n = snprintf(raw, sizeof(raw), "pc-%u", i);
	kvg_raw_key(g, raw, (size_t)n, k);
}

/* The child: store until some time after the power went, report acks, die. */
static void child(const char *plan, int durable, int fd)
{
	static uint8_t buf[LEN_MAX];
	struct kvg_config c = config(plan, durable);
	kvg_grid *g;
	char err[256];
	if (kvg_open(&c, &g, err, sizeof(err)))
		_exit(2);
	int after = 0;
	for (uint32_t i = 0; i < BLOCKS && after < 8; i++) {
		struct kvg_io io = {.buf = buf, .len = len_of(i)};
		key_of(g, i, &io.key);
		fill(i, buf, io.len);
		kvg_store_sync(g, &io, 1, KVG_STORE_NVME);
		if (io.status == 0)
			dprintf(fd, "ack %u\n", i);
		after += io_fault_powered_off();
	}
	struct io_fault_counts t;
	io_fault_totals(&t);
	dprintf(fd, "cut %llu %llu %llu %llu\n", (unsigned long long)t.powercuts,
		(unsigned long long)t.dropped_writes, (unsigned long long)t.cut_kept,
		(unsigned long long)t.cut_torn);
	_exit(0);
}

/* Loads every block; returns how many are present; fails on a wrong byte or a lost ack. */
static int verify(const uint8_t *acked, int durable)
{
	static uint8_t buf[LEN_MAX], want[LEN_MAX];
	struct kvg_config c = config(NULL, durable);
	kvg_grid *g;
	char err[256];
	int present = 0;
	int rc = kvg_open(&c, &g, err, sizeof(err));
	if (rc)
		fprintf(stderr, "kvg_open after a power cut: %s\n", err);
	CHECK(rc == 0); /* a power cut never stops the grid from opening */
	for (uint32_t i = 0; i < BLOCKS; i++) {
		struct kvg_io io = {.buf = buf, .len = LEN_MAX};
		key_of(g, i, &io.key);
		kvg_load_sync(g, &io, 1, KVG_LOAD_NOPROMOTE);
		if (io.status == 0) {
			fill(i, want, len_of(i));
			CHECK(io.len == len_of(i) && memcmp(buf, want, io.len) == 0);
			present++;
		} else if (durable && acked[i]) {
			fprintf(stderr, "acknowledged durable block %u lost (%s)\n", i,
				kvg_strerror(io.status));
			exit(1);
		}
	}
	kvg_close(g);
	return present;
}

int main(void)
{
	const char *tmp = getenv("KVG_TEST_TMP");
	unsigned long long cuts = 0, dropped = 0, kept = 0, torn = 0, acks = 0, found = 0;
	unsigned long long repaired = 0;
	uint64_t seed = (uint64_t)getpid();
	char cmd[2200];

	const char *env = getenv("POWERCUT_ROUNDS"); /* longer campaigns: RELIABILITY.md */
	int rounds = env && atoi(env) > 0 ? atoi(env) : ROUNDS;

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(dir, sizeof(dir), "%s/test_fault_powercut.%d", tmp ? tmp : "build/tmp", getpid());
	for (int r = 0; r < rounds; r++) {
		int durable = r % 2, p[2];
		uint8_t acked[BLOCKS] = {0};
		char plan[160], line[128];
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		int at = 3 + (int)((seed >> 33) % 110); /* within the writes a child makes */
		snprintf(plan, sizeof(plan), "seed=%llu;inner=%s;cutmode=mixed;powercut=write:%d",
			 (unsigned long long)(seed >> 40), r / 2 % 2 ? "uring" : "psync", at);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s'", dir, dir);
		CHECK(system(cmd) == 0);

		CHECK(pipe(p) == 0);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child(plan, durable, p[1]);
		}
		close(p[1]);
		FILE *f = fdopen(p[0], "r");
		unsigned long long c1 = 0, d1 = 0, k1 = 0, t1 = 0;
		while (fgets(line, sizeof(line), f)) {
			unsigned id;
			if (sscanf(line, "ack %u", &id) == 1 && id < BLOCKS) {
				acked[id] = 1;
				acks++;
			}
			sscanf(line, "cut %llu %llu %llu %llu", &c1, &d1, &k1, &t1);
		}
		fclose(f);
		int status;
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status));
		cuts += c1, dropped += d1, kept += k1, torn += t1;

		int present = verify(acked, durable);
		struct fsck_opts o = {.repair = 1};
		struct fsck_report rep;
		char err[256];
		CHECK(fsck_dir(dir, &o, &rep, err, sizeof(err)) == 0);
		CHECK(rep.repaired == rep.corrupt); /* all of it repairable */
		found += rep.corrupt;
		repaired += rep.repaired;
		CHECK(verify(acked, durable) == present); /* the repair kept every good block */
		printf("round %2d %-7s %s: cut at write %3d, %3d present; fsck repaired %llu\n", r,
		       durable ? "durable" : "cache", r / 2 % 2 ? "uring" : "psync", at, present,
		       (unsigned long long)rep.repaired);
	}
	CHECK(system(cmd) == 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	printf(
	    "power cuts: %llu (unsynced writes: %llu lost, %llu kept, %llu torn); %llu stores "
	    "acknowledged, none lost; fsck found and repaired %llu damaged items; 0 wrong bytes\n",
	    cuts, dropped, kept, torn, acks, repaired);
	CHECK(found == repaired);
	return 0;
}
