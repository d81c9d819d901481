/*
 * Description: kvg_done_eventfd (KVGRID_1.1), the done callback that signals an eventfd.
 * Every store and load given it adds exactly 1 to the eventfd when, and only when, the
 * request has completed (kvg_req_poll() already final by then); many requests share one
 * eventfd and its counter sums them; a miss completes like a hit; a closed fd is ignored.
 * Swept over a DRAM-only grid and a DRAM + NVMe grid (loads from NVMe complete on an I/O
 * thread).
 */
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>

#include "t.h"

#define NBLK 16
#define BLK  (64 * 1024)

static struct kvg_config cfg;
static char dir[4096];

static kvg_grid *open_grid(void)
{
	kvg_grid *g = NULL;
	char err[256];
	if (kvg_open(&cfg, &g, err, sizeof(err))) {
		fprintf(stderr, "open: %s\n", err);
		return NULL;
	}
	return g;
}

/* Reads the eventfd's counter, waiting up to 10 s for it to be non-zero. */
static uint64_t efd_take(int efd)
{
	struct pollfd p = {.fd = efd, .events = POLLIN};
	if (poll(&p, 1, 10000) != 1)
		return 0;
	uint64_t v = 0;
	if (read(efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static void counts_every_completed_request(void)
{
	kvg_grid *g = open_grid();
	CHECK(g);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(efd >= 0);
	static uint8_t src[NBLK][BLK], dst[NBLK][BLK];
	kvg_key k[NBLK];
	struct kvg_io st[NBLK], ld[NBLK + 1];
	for (int i = 0; i < NBLK; i++) {
		kvg_raw_key(g, &i, sizeof(i), &k[i]);
		t_fill(src[i], BLK, &k[i], 7);
		st[i] = (struct kvg_io){.key = k[i], .buf = src[i], .len = BLK};
	}
	struct kvg_req_opts o = {.done = kvg_done_eventfd, .arg = (void *)(intptr_t)efd};
	kvg_req *r[NBLK];
	for (int i = 0; i < NBLK; i++) /* one request per block: NBLK completions */
		CHECK_RC(kvg_store(g, &st[i], 1, &o, &r[i]), 0);
	uint64_t got = 0;
	while (got < NBLK) {
		uint64_t v = efd_take(efd);
		CHECK(v > 0);
		got += v;
	}
	CHECK(got == NBLK);
	for (int i = 0; i < NBLK; i++) { /* signalled, so already final */
		CHECK_RC(kvg_req_poll(r[i]), 0);
		kvg_req_free(r[i]);
	}
	/* one load of every block and a missing one: a single completion, a miss inside */
	for (int i = 0; i <= NBLK; i++) {
		kvg_key miss;
		kvg_raw_key(g, "absent", 6, &miss);
		ld[i] = (struct kvg_io){
		    .key = i < NBLK ? k[i] : miss, .buf = i < NBLK ? dst[i] : dst[0], .len = BLK};
	}
	kvg_req *lr;
	CHECK_RC(kvg_load(g, ld, NBLK + 1, &o, &lr), 0);
	CHECK(efd_take(efd) == 1);
	CHECK_RC(kvg_req_poll(lr), KVG_ENOTFOUND);
	for (int i = 0; i < NBLK; i++) {
		CHECK_RC(ld[i].status, 0);
		CHECK(!memcmp(dst[i], src[i], BLK));
	}
	CHECK_RC(ld[NBLK].status, KVG_ENOTFOUND);
	kvg_req_free(lr);
	uint64_t v;
	CHECK(read(efd, &v, sizeof(v)) < 0); /* nothing more was signalled */
	close(efd);
	kvg_close(g);
}

static void closed_fd_is_ignored(void)
{
	kvg_grid *g = open_grid();
	CHECK(g);
	int efd = eventfd(0, EFD_CLOEXEC);
	CHECK(efd >= 0);
	close(efd); /* the request's write fails with EBADF: the grid carries on */
	static uint8_t buf[BLK];
	kvg_key k;
	kvg_raw_key(g, "closed", 6, &k);
	struct kvg_io io = {.key = k, .buf = buf, .len = BLK};
	struct kvg_req_opts o = {.done = kvg_done_eventfd, .arg = (void *)(intptr_t)efd};
	kvg_req *r;
	CHECK_RC(kvg_store(g, &io, 1, &o, &r), 0);
	CHECK_RC(kvg_req_wait(r, 10000), 0);
	kvg_req_free(r);
	kvg_close(g);
}

static void version_says_1_1(void)
{
	int major, minor;
	kvg_version(&major, &minor, NULL);
	CHECK(major == 1 && minor >= 1);
}

int main(void)
{
	t_tmpdir(dir, sizeof(dir), "done_eventfd");
	for (int v = 0; v < 2; v++) {
		kvg_config_init(&cfg);
		cfg.dram_bytes = 8 << 20;
		if (v) { /* DRAM smaller than the data: loads come from NVMe */
			cfg.dram_bytes = 512 << 10;
			cfg.chunk_bytes = 64 * 1024;
			snprintf(cfg.dir, sizeof(cfg.dir), "%s", dir);
			cfg.nvme_bytes = 64 << 20;
			cfg.segment_bytes = 8 << 20;
		}
		t_variant = v ? "dram+nvme" : "dram";
		RUN(counts_every_completed_request);
		RUN(closed_fd_is_ignored);
	}
	t_variant = "";
	RUN(version_says_1_1);
	t_rmdir(dir);
	return t_failed ? 1 : 0;
}
