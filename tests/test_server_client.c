/*
 * Description: libkvgrid's client against real kvgridd servers on ephemeral loopback ports:
 * random binary blocks round-trip byte for byte; lookups count consecutive hits; a wrong
 * token is refused and the right one accepted; two tenants storing the same key never see
 * each other's block; keys are sharded over three servers by rendezvous hashing and, after
 * one is killed, calls return promptly and exactly the keys of the dead node are lost; a
 * grid opened with cfg.servers works through the public API; with an NVMe directory,
 * contents survive a SIGTERM and restart.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "kvgrid.h"
#include "t_server.h"

static int failures;
#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static char tmp[512];
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(void *p, size_t n)
{
	uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

static int open_client(struct client **c, const struct t_server *const *sv, int n,
		       const char *token_file)
{
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	cfg.timeout_ms = 2000;
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(cfg.servers + len, sizeof(cfg.servers) - len,
					"%s127.0.0.1:%d", i ? "," : "", sv[i]->port);
	if (token_file)
		snprintf(cfg.auth_token_file, sizeof(cfg.auth_token_file), "%s", token_file);
	char err[256] = "";
	int rc = client_open(&cfg, c, err, sizeof(err));
	if (rc && rc != KVG_EAUTH)
		fprintf(stderr, "client_open: %s\n", err);
	return rc;
}

#define NBLK 24
static kvg_key keys[NBLK];
static uint8_t *vals[NBLK];
static size_t lens[NBLK];

static void make_blocks(void)
{
	for (int i = 0; i < NBLK; i++) {
		fill(keys[i].bytes, KVG_KEY_BYTES);
		lens[i] = i == 0 ? 1 : (size_t)(rnd() % (3u << 20)) + 1;
		vals[i] = realloc(vals[i], lens[i]);
		fill(vals[i], lens[i]);
	}
}

static int store_all(struct client *c, int n)
{
	struct kvg_io ios[NBLK];
	for (int i = 0; i < n; i++)
		ios[i] = (struct kvg_io){.key = keys[i], .buf = vals[i], .len = lens[i]};
	return client_store(c, ios, (size_t)n);
}

/* Loads block i and compares it; 1 if it came back identical, 0 on a miss, -1 if wrong. */
static int load_one(struct client *c, int i)
{
	static uint8_t buf[4 << 20];
	struct kvg_io io = {.key = keys[i], .buf = buf, .len = sizeof(buf)};
	int rc = client_load(c, &io, 1);
	if (rc)
		return rc == KVG_ENOTFOUND ? 0 : rc;
	return io.len == lens[i] && memcmp(buf, vals[i], lens[i]) == 0 ? 1 : -1;
}

/* Random blocks of 1 B to 3 MiB round-trip exactly, in one batch; lookups and deletes. */
static void test_roundtrip(void)
{
	struct t_server s;
	struct client *c = NULL;
	if (t_server_start(&s, tmp, "rt", NULL) ||
	    open_client(&c, (const struct t_server *[]){&s}, 1, NULL)) {
		failures++;
		t_server_stop(&s, SIGKILL);
		return;
	}
	make_blocks();
	CHECK(store_all(c, NBLK) == 0);
	static uint8_t bufs[NBLK][4 << 20];
	struct kvg_io ios[NBLK];
	for (int i = 0; i < NBLK; i++)
		ios[i] = (struct kvg_io){.key = keys[i], .buf = bufs[i], .len = sizeof(bufs[i])};
	CHECK(client_load(c, ios, NBLK) == 0);
	for (int i = 0; i < NBLK; i++)
		CHECK(ios[i].status == 0 && ios[i].len == lens[i] &&
		      !memcmp(bufs[i], vals[i], lens[i]));
	/* a buffer too small is refused, not overrun */
	struct kvg_io small = {.key = keys[1], .buf = bufs[0], .len = lens[1] - 1};
	CHECK(client_load(c, &small, 1) == KVG_EBUFSIZE);
	kvg_key probe[NBLK + 1];
	memcpy(probe, keys, sizeof(keys));
	fill(probe[NBLK].bytes, KVG_KEY_BYTES);
	size_t hits = 0;
	CHECK(client_lookup_keys(c, probe, NBLK + 1, &hits) == 0 && hits == NBLK);
	CHECK(client_delete(c, &keys[5], 1) == 1);
	CHECK(client_lookup_keys(c, probe, NBLK, &hits) == 0 && hits == 5);
	CHECK(load_one(c, 5) == 0);
	CHECK(client_pin(c, keys, 3, 1) == 3 && client_pin(c, keys, 3, 0) == 3);
	struct kvg_stats st;
	CHECK(client_stats(c, &st) == 0 && st.tier[KVG_TIER_DRAM].blocks == NBLK - 1);
	client_close(c);
	CHECK(t_server_stop(&s, SIGTERM) == 0);
}

/* With a small value limit, a batch travels as several PUT frames and its loads overflow the
 * server's reply room: everything still round-trips, and a value over the limit is refused
 * alone. */
static void test_frames(void)
{
	struct t_server s;
	struct client *c = NULL;
	const char *extra[] = {"--value-max", "4M", NULL};
	if (t_server_start(&s, tmp, "frames", extra) ||
	    open_client(&c, (const struct t_server *[]){&s}, 1, NULL)) {
		failures++;
		t_server_stop(&s, SIGKILL);
		return;
	}
	make_blocks();
	size_t keep = lens[3];
	uint8_t *big = malloc(6 << 20);
	fill(big, 6 << 20);
	uint8_t *v3 = vals[3];
	vals[3] = big; /* block 3 is now 6 MiB: over the server's frame limit */
	lens[3] = 6 << 20;
	struct kvg_io ios[NBLK];
	for (int i = 0; i < NBLK; i++)
		ios[i] = (struct kvg_io){.key = keys[i], .buf = vals[i], .len = lens[i]};
	CHECK(client_store(c, ios, NBLK) == KVG_ETOOBIG);
	for (int i = 0; i < NBLK; i++)
		CHECK(ios[i].status == (i == 3 ? KVG_ETOOBIG : 0));
	static uint8_t bufs[NBLK][4 << 20];
	for (int i = 0; i < NBLK; i++)
		ios[i] = (struct kvg_io){.key = keys[i], .buf = bufs[i], .len = sizeof(bufs[i])};
	CHECK(client_load(c, ios, NBLK) == KVG_ENOTFOUND);
	for (int i = 0; i < NBLK; i++) {
		if (i == 3)
			CHECK(ios[i].status == KVG_ENOTFOUND);
		else
			CHECK(ios[i].status == 0 && ios[i].len == lens[i] &&
			      !memcmp(bufs[i], vals[i], lens[i]));
	}
	vals[3] = v3;
	lens[3] = keep;
	free(big);
	client_close(c);
	CHECK(t_server_stop(&s, SIGTERM) == 0);
}

/* A wrong token is refused at open; the right one is accepted.  Two tenants storing the
 * same key never see each other's block. */
static void test_auth_and_tenants(void)
{
	char auth[600], ta[600], tb[600], bad[600];
	snprintf(auth, sizeof(auth), "%s/auth", tmp);
	snprintf(ta, sizeof(ta), "%s/token-a", tmp);
	snprintf(tb, sizeof(tb), "%s/token-b", tmp);
	snprintf(bad, sizeof(bad), "%s/token-bad", tmp);
	FILE *f = fopen(auth, "w");
	fprintf(f, "# token tenant\ntok-aaaa alice\ntok-bbbb bob\n");
	fclose(f);
	f = fopen(ta, "w"), fprintf(f, "tok-aaaa\n"), fclose(f);
	f = fopen(tb, "w"), fprintf(f, "tok-bbbb\n"), fclose(f);
	f = fopen(bad, "w"), fprintf(f, "tok-cccc\n"), fclose(f);
	struct t_server s;
	const char *extra[] = {"--auth-file", auth, NULL};
	if (t_server_start(&s, tmp, "auth", extra)) {
		failures++;
		return;
	}
	const struct t_server *sv[] = {&s};
	struct client *a = NULL, *b = NULL, *x = NULL;
	CHECK(open_client(&x, sv, 1, bad) == KVG_EAUTH);
	CHECK(open_client(&x, sv, 1, NULL) == KVG_EAUTH);
	CHECK(open_client(&a, sv, 1, ta) == 0);
	CHECK(open_client(&b, sv, 1, tb) == 0);
	if (a && b) {
		CHECK(store_all(a, 2) == 0);
		size_t hits = 9;
		CHECK(client_lookup_keys(b, keys, 1, &hits) == 0 && hits == 0);
		CHECK(load_one(b, 0) == 0);
		CHECK(load_one(a, 0) == 1);
		CHECK(client_delete(b, keys, 2) == 0);
		CHECK(load_one(a, 1) == 1);
	}
	client_close(a);
	client_close(b);
	t_server_stop(&s, SIGTERM);
}

/* Three nodes; one is killed: calls return, keys of the live nodes still hit, and only the
 * dead node's keys are lost. */
static void test_sharding(void)
{
	struct t_server s[3];
	const struct t_server *sv[3] = {&s[0], &s[1], &s[2]};
	int started = 0;
	for (; started < 3; started++) {
		char name[32];
		snprintf(name, sizeof(name), "shard%d", started);
		if (t_server_start(&s[started], tmp, name, NULL))
			break;
	}
	struct client *c = NULL, *one[3] = {NULL};
	if (started < 3 || open_client(&c, sv, 3, NULL)) {
		failures++;
		goto out;
	}
	make_blocks();
	CHECK(store_all(c, NBLK) == 0);
	int owner[NBLK], per_node[3] = {0};
	for (int n = 0; n < 3; n++)
		CHECK(open_client(&one[n], &sv[n], 1, NULL) == 0);
	for (int i = 0; i < NBLK; i++) {
		owner[i] = -1;
		for (int n = 0; n < 3; n++) {
			size_t hit = 0;
			if (one[n] && client_lookup_keys(one[n], &keys[i], 1, &hit) == 0 && hit) {
				CHECK(owner[i] == -1); /* exactly one node holds each key */
				owner[i] = n;
			}
		}
		CHECK(owner[i] >= 0);
		if (owner[i] >= 0)
			per_node[owner[i]]++;
	}
	CHECK(per_node[0] > 0 && per_node[1] > 0 && per_node[2] > 0);
	/* every node answers the tiers of its own hits, each in its key's place */
	uint8_t tiers[NBLK];
	memset(tiers, 77, sizeof(tiers));
	size_t hits = 0;
	CHECK(client_lookup_tiers(c, keys, NBLK, &hits, tiers) == 0 && hits == NBLK);
	for (int i = 0; i < NBLK; i++)
		CHECK(tiers[i] == KVG_TIER_DRAM);
	t_server_stop(&s[1], SIGKILL);
	int kept = 0, lost = 0, wrong = 0;
	for (int i = 0; i < NBLK; i++) {
		int r = load_one(c, i);
		if (r == 1)
			kept++;
		else if (owner[i] == 1)
			lost++;
		else
			wrong++;
		CHECK((r == 1) == (owner[i] != 1));
	}
	CHECK(kept == NBLK - per_node[1] && lost == per_node[1] && wrong == 0);
	/* the dead node's keys now belong to the live ones: they can be stored again */
	CHECK(store_all(c, NBLK) == 0);
	for (int i = 0; i < NBLK; i++)
		CHECK(load_one(c, i) == 1);
out:
	for (int n = 0; n < 3; n++)
		client_close(one[n]);
	client_close(c);
	for (int n = 0; n < started; n++)
		t_server_stop(&s[n], SIGTERM);
}

/*
 * What a local grid answers, a remote one answers too (keys[2] stored, keys[3] not): the
 * tier of each hit and of each load; pin, unpin and delete count the keys they acted on, not the
 * keys asked; a miss leaves no tier; a buffer too small learns the size needed; views and fills,
 * which a remote grid has not, answer the documented 0.
 */
static void remote_contract(kvg_grid *g)
{
	uint8_t tiers[2] = {77, 77};
	size_t hits = 0;
	CHECK(kvg_lookup_keys(g, &keys[2], 2, &hits, tiers) == 0 && hits == 1);
	CHECK(tiers[0] == KVG_TIER_DRAM && tiers[1] == 77);
	CHECK(kvg_pin(g, &keys[2], 2) == 1);
	CHECK(kvg_unpin(g, &keys[2], 2) == 1);
	CHECK(kvg_unpin(g, &keys[2], 2) == 0); /* no pin left to take off */
	static uint8_t buf[4 << 20];
	struct kvg_io miss = {.key = keys[3], .buf = buf, .len = sizeof(buf), .tier = 9};
	CHECK(kvg_load_sync(g, &miss, 1, 0) == KVG_ENOTFOUND && miss.tier == KVG_TIER_NONE);
	struct kvg_io hit = {.key = keys[2], .buf = buf, .len = sizeof(buf), .tier = 9};
	CHECK(kvg_load_sync(g, &hit, 1, 0) == 0 && hit.tier == KVG_TIER_DRAM);
	struct kvg_io small = {.key = keys[2], .buf = buf, .len = lens[2] - 1};
	CHECK(kvg_load_sync(g, &small, 1, 0) == KVG_EBUFSIZE && small.len == lens[2]);
	struct iovec iov[4];
	size_t len = 0;
	kvg_view *view = NULL;
	CHECK(kvg_view_get(g, &keys[2], iov, 4, &len, &view) == 0 && view == NULL);
	struct kvg_fill fill;
	CHECK(kvg_fill_begin(g, 4096, iov, 4, &fill) == 0);
	CHECK(kvg_fill_commit(g, &fill, &keys[4], 0, 0, 0) == KVG_EFULL);
	CHECK(kvg_prefetch(g, &keys[2], 1) == 0);
	CHECK(kvg_delete(g, &keys[2], 2) == 1);
	CHECK(kvg_lookup_keys(g, &keys[2], 1, &hits, tiers) == 0 && hits == 0);
}

/* A grid opened with cfg.servers stores and loads through the public API. */
static void test_grid_remote(void)
{
	struct t_server s;
	if (t_server_start(&s, tmp, "grid", NULL)) {
		failures++;
		return;
	}
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	snprintf(cfg.servers, sizeof(cfg.servers), "127.0.0.1:%d", s.port);
	kvg_grid *g = NULL;
	char err[256] = "";
	int rc = kvg_open(&cfg, &g, err, sizeof(err));
	CHECK(rc == 0);
	if (rc == 0) {
		make_blocks();
		struct kvg_io io = {.key = keys[2], .buf = vals[2], .len = lens[2]};
		CHECK(kvg_store_sync(g, &io, 1, 0) == 0);
		static uint8_t buf[4 << 20];
		struct kvg_io back = {.key = keys[2], .buf = buf, .len = sizeof(buf)};
		CHECK(kvg_load_sync(g, &back, 1, 0) == 0);
		CHECK(back.len == lens[2] && memcmp(buf, vals[2], lens[2]) == 0);
		size_t hits = 0;
		CHECK(kvg_lookup_keys(g, &keys[2], 2, &hits, NULL) == 0 && hits == 1);
		remote_contract(g);
		kvg_close(g);
	} else {
		fprintf(stderr, "kvg_open(servers): %s\n", err);
	}
	t_server_stop(&s, SIGTERM);
}

/* A port nothing listens on: bound, then closed again. */
static int dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* kvg_open with servers none of which answers fails with an error, also when the caller
 * passes no error buffer (err NULL, err_len 0, as the header allows). */
static void test_open_unreachable_no_err(void)
{
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	cfg.timeout_ms = 500;
	snprintf(cfg.servers, sizeof(cfg.servers), "127.0.0.1:%d", dead_port());
	kvg_grid *g = NULL;
	int rc = kvg_open(&cfg, &g, NULL, 0);
	CHECK(rc < 0 && g == NULL);
	char err[128];
	memset(err, 'x', sizeof(err)); /* a caller's buffer need not start empty */
	rc = kvg_open(&cfg, &g, err, sizeof(err));
	CHECK(rc < 0 && g == NULL && strstr(err, "servers 127.0.0.1:") == err);
}

/* With an NVMe directory, what was stored survives SIGTERM and a restart. */
static void test_restart(void)
{
	char dir[600];
	snprintf(dir, sizeof(dir), "%s/nvme", tmp);
	mkdir(dir, 0755);
	const char *extra[] = {"--dir",	 dir,
			       "--nvme", "256M",
			       "--set",	 "io_backend=psync",
			       "--set",	 "segment_bytes=32M",
			       NULL};
	struct t_server s;
	struct client *c = NULL;
	if (t_server_start(&s, tmp, "restart", extra) ||
	    open_client(&c, (const struct t_server *[]){&s}, 1, NULL)) {
		failures++;
		t_server_stop(&s, SIGKILL);
		return;
	}
	make_blocks();
	CHECK(store_all(c, 8) == 0);
	client_close(c);
	CHECK(t_server_stop(&s, SIGTERM) == 0);
	c = NULL;
	if (t_server_start(&s, tmp, "restart", extra) ||
	    open_client(&c, (const struct t_server *[]){&s}, 1, NULL)) {
		failures++;
		t_server_stop(&s, SIGKILL);
		return;
	}
	/* every block is on NVMe only after the restart: one batch of all eight (each item
	 * loaded asynchronously in turn, then from DRAM for those promoted meanwhile), twice */
	static uint8_t bufs[8][4 << 20];
	for (int round = 0; round < 2; round++) {
		struct kvg_io ios[8];
		for (int i = 0; i < 8; i++)
			ios[i] = (struct kvg_io){
			    .key = keys[i], .buf = bufs[i], .len = sizeof(bufs[i]), .tier = 9};
		CHECK(client_load(c, ios, 8) == 0);
		int from_nvme = 0;
		for (int i = 0; i < 8; i++) {
			CHECK(ios[i].status == 0 && ios[i].len == lens[i] &&
			      !memcmp(bufs[i], vals[i], lens[i]));
			CHECK(ios[i].tier == KVG_TIER_DRAM || ios[i].tier == KVG_TIER_NVME);
			from_nvme += ios[i].tier == KVG_TIER_NVME;
		}
		CHECK(round > 0 || from_nvme > 0); /* the server says where it found them */
	}
	for (int i = 0; i < 8; i++)
		CHECK(load_one(c, i) == 1);
	struct kvg_stats st;
	CHECK(client_stats(c, &st) == 0 && st.tier[KVG_TIER_NVME].hits >= 8);
	client_close(c);
	t_server_stop(&s, SIGTERM);
}

int main(void)
{
	const char *base = getenv("KVG_TEST_TMP");
	snprintf(tmp, sizeof(tmp), "%s/test_server_client.%d", base ? base : "build/tmp", getpid());
	mkdir(base ? base : "build/tmp", 0755);
	if (mkdir(tmp, 0755) && errno != EEXIST) {
		perror(tmp);
		return 1;
	}
	if (!t_kvgridd_built()) {
		printf("%s not built\n", t_kvgridd_path());
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	test_roundtrip();
	test_frames();
	test_auth_and_tenants();
	test_sharding();
	test_grid_remote();
	test_open_unreachable_no_err();
	test_restart();
	for (int i = 0; i < NBLK; i++)
		free(vals[i]);
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("test_server_client: all checks passed\n");
	return 0;
}
