/*
 * server_soak.c - sustained mixed load on kvgridd: many clients, each its own connection,
 * mixing PUT, GET, LOOKUP and DELETE of prefix chains for a fixed time, every payload
 * verified, while clients come and go.
 *
 *   build/bench/server_soak PORT PID [clients] [seconds] [block_KiB] [tenants]
 *
 * With tenants > 0 the server runs with an auth file whose tokens tok-0 .. tok-N-1 name
 * tenants t0 .. tN-1, and SOAK_TOKENS names a directory holding one file per token
 * (tok-0 ...); client i is tenant i % N.  Every tenant uses the very same keys, so only the
 * server's tenant salt keeps their blocks apart.
 *
 * A block's length and bytes are a pure function of its key and its tenant (a PRNG seeded
 * by both), so any client can verify any block it loads without shared state, and a block
 * of another tenant or another key is caught by its length or its bytes.  Each client
 * works on chains of 16 blocks of mixed sizes (a few hundred bytes to block_KiB, most not a
 * multiple of 4 KiB): it stores a chain, looks up a prefix, loads random blocks of chains it
 * or others stored, deletes a block now and then, and asks for chains nobody ever stores
 * (which must miss).  Now and then it closes its connection and opens a new one, or opens
 * a raw connection that sends part of a request and hangs up.
 *
 * Prints operations, errors (any failed call other than a miss), wrong bytes (a block that
 * loaded but differs, or a never-stored block found), and the server's resident memory
 * (VmRSS of PID) at ten points: "memory flat" means the second half does not grow.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "kvgrid.h"

#define CHAIN  16
#define CHAINS 64
#define GHOSTS 1000000 /* chains at and above this are never stored */

static int port;
static double seconds = 60;
static size_t block_bytes = 64 << 10;
static int tenants;
static const char *token_dir;
static volatile int stop;

struct stats {
	uint64_t puts, gets, lookups, deletes, hits, misses, ghost_misses, errors, wrong;
	uint64_t reconnects, hangups;
	int tenant;
	char first_error[160];
};

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void block_key(uint64_t chain, int i, kvg_key *k)
{
	uint64_t s = chain * 131 + (uint64_t)i;
	for (int j = 0; j < KVG_KEY_BYTES; j += 8) {
		uint64_t v = splitmix(&s);
		memcpy(k->bytes + j, &v, 8);
	}
}

static uint64_t block_seed(const kvg_key *k, int tenant)
{
	uint64_t s;
	memcpy(&s, k->bytes, 8);
	return s ^ (uint64_t)(tenant + 1) * 0x2545f4914f6cdd1dull;
}

/* The length of a block: from a few hundred bytes to block_bytes, most not 4 KiB multiples. */
static size_t block_len(const kvg_key *k, int tenant)
{
	uint64_t s = block_seed(k, tenant);
	uint64_t r = splitmix(&s);
	switch (r % 6) {
	case 0:
		return block_bytes;
	case 1:
		return block_bytes / 2 + 13;
	case 2:
		return 4096;
	case 3:
		return 3 * 4096 + 1;
	case 4:
		return 300 + r % 900;
	default:
		return 1 + (r >> 8) % block_bytes;
	}
}

static void block_fill(const kvg_key *k, int tenant, uint8_t *buf, size_t n)
{
	uint64_t s = block_seed(k, tenant) ^ 0x5bd1e995u;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix(&s);
		memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
	}
}

static void note_error(struct stats *st, const char *what, int rc)
{
	st->errors++;
	if (!st->first_error[0])
		snprintf(st->first_error, sizeof(st->first_error), "%s: %s", what,
			 kvg_strerror(rc));
}

static int soak_open(struct stats *st, struct client **c)
{
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	snprintf(cfg.servers, sizeof(cfg.servers), "127.0.0.1:%d", port);
	if (tenants)
		snprintf(cfg.auth_token_file, sizeof(cfg.auth_token_file), "%s/tok-%d", token_dir,
			 st->tenant);
	cfg.timeout_ms = 30000;
	char err[256];
	int rc = client_open(&cfg, c, err, sizeof(err));
	if (rc) {
		st->errors++;
		if (!st->first_error[0])
			snprintf(st->first_error, sizeof(st->first_error), "open: %.140s", err);
	}
	return rc;
}

/* A hostile client: connects, sends part of a request (or nothing), hangs up. */
static void hang_up(uint64_t *seed)
{
	static const char resp[] = "*3\r\n$3\r\nSET\r\n$4\r\nsoak\r\n$65536\r\npartial";
	static const char lm[] = "PUT soak 4096\r\npartial";
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		uint8_t junk[64];
		uint64_t r = splitmix(seed);
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)splitmix(seed);
		switch (r % 4) {
		case 0:
			(void)!write(fd, resp, (size_t)(r >> 8) % (sizeof(resp) - 1) + 1);
			break;
		case 1:
			(void)!write(fd, lm, (size_t)(r >> 8) % (sizeof(lm) - 1) + 1);
			break;
		case 2:
			(void)!write(fd, junk, (size_t)(r >> 8) % sizeof(junk) + 1);
			break;
		default:
			break; /* connect and close */
		}
	}
	close(fd);
}

/* Loads n blocks of keys (of chain ghost or not) and checks each: its own bytes or a miss. */
static void load_check(struct stats *st, struct client *c, const kvg_key *keys, int n, int ghost,
		       uint8_t *buf, uint8_t *want)
{
	struct kvg_io ios[CHAIN];
	for (int i = 0; i < n; i++)
		ios[i] = (struct kvg_io){
		    .key = keys[i], .buf = buf + i * block_bytes, .len = block_bytes};
	int rc = client_load(c, ios, (size_t)n);
	if (rc && rc != KVG_ENOTFOUND) {
		note_error(st, "load", rc);
		return;
	}
	for (int i = 0; i < n; i++) {
		st->gets++;
		if (ios[i].status == KVG_ENOTFOUND) {
			st->misses++;
			st->ghost_misses += ghost;
			continue;
		}
		if (ios[i].status) {
			note_error(st, "load block", ios[i].status);
			continue;
		}
		st->hits++;
		size_t len = block_len(&keys[i], st->tenant);
		if (ghost || ios[i].len != len) {
			st->wrong++;
			continue;
		}
		block_fill(&keys[i], st->tenant, want, len);
		if (memcmp(want, ios[i].buf, len))
			st->wrong++;
	}
}

static void store_chain(struct stats *st, struct client *c, const kvg_key *keys, uint8_t *buf)
{
	struct kvg_io ios[CHAIN];
	for (int i = 0; i < CHAIN; i++) {
		size_t len = block_len(&keys[i], st->tenant);
		block_fill(&keys[i], st->tenant, buf + i * block_bytes, len);
		ios[i] = (struct kvg_io){.key = keys[i], .buf = buf + i * block_bytes, .len = len};
	}
	int rc = client_store(c, ios, CHAIN);
	if (rc)
		note_error(st, "store", rc);
	st->puts += CHAIN;
}

static void *soak_client(void *arg)
{
	struct stats *st = arg;
	struct client *c;
	if (soak_open(st, &c))
		return NULL;
	uint8_t *buf = malloc(block_bytes * CHAIN), *want = malloc(block_bytes);
	uint64_t seed = (uint64_t)(uintptr_t)st;
	kvg_key keys[CHAIN];
	while (!stop) {
		int op = (int)(splitmix(&seed) % 100);
		int ghost = op >= 85 && op < 92;
		uint64_t chain =
		    ghost ? GHOSTS + splitmix(&seed) % GHOSTS : splitmix(&seed) % CHAINS;
		for (int i = 0; i < CHAIN; i++)
			block_key(chain, i, &keys[i]);
		if (op < 25) {
			store_chain(st, c, keys, buf);
		} else if (op < 40 || (ghost && op < 88)) { /* prefix lookup */
			size_t hits = 0;
			int rc = client_lookup_keys(c, keys, CHAIN, &hits);
			if (rc)
				note_error(st, "lookup", rc);
			else if (ghost && hits)
				st->wrong++; /* a block never stored found */
			st->lookups++;
		} else if (op < 92) { /* load 4 blocks of the chain and verify them */
			int first = (int)(splitmix(&seed) % (CHAIN - 4));
			load_check(st, c, keys + first, 4, ghost, buf, want);
		} else if (op < 94) { /* delete one block */
			int rc = client_delete(c, &keys[splitmix(&seed) % CHAIN], 1);
			if (rc < 0) /* else the count deleted: 0 or 1 */
				note_error(st, "delete", rc);
			st->deletes++;
		} else if (op < 97) { /* hang up and come back */
			client_close(c);
			st->reconnects++;
			if (soak_open(st, &c)) {
				c = NULL;
				break;
			}
		} else { /* a hostile client beside this one */
			hang_up(&seed);
			st->hangups++;
		}
	}
	free(buf);
	free(want);
	if (c)
		client_close(c);
	return NULL;
}

static long rss_kib(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long kib = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PORT PID [clients] [seconds] [block_KiB] [tenants]\n",
			argv[0]);
		return 2;
	}
	port = atoi(argv[1]);
	int pid = atoi(argv[2]);
	int n = argc > 3 ? atoi(argv[3]) : 64;
	seconds = argc > 4 ? atof(argv[4]) : 60;
	block_bytes = (size_t)(argc > 5 ? atoi(argv[5]) : 64) << 10;
	tenants = argc > 6 ? atoi(argv[6]) : 0;
	token_dir = getenv("SOAK_TOKENS");
	if (n < 1 || seconds <= 0 || block_bytes < 4096 || tenants < 0 || (tenants && !token_dir)) {
		fprintf(stderr, "server_soak: bad arguments (tenants need SOAK_TOKENS=DIR)\n");
		return 2;
	}
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	struct stats *st = calloc((size_t)n, sizeof(*st));
	long rss[11];
	rss[0] = rss_kib(pid);
	for (int i = 0; i < n; i++) {
		st[i].tenant = tenants ? i % tenants : 0;
		pthread_create(&th[i], NULL, soak_client, &st[i]);
	}
	for (int k = 1; k <= 10; k++) {
		usleep((useconds_t)(seconds * 1e5));
		rss[k] = rss_kib(pid);
	}
	stop = 1;
	struct stats t = {0};
	const char *first = "";
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		t.puts += st[i].puts, t.gets += st[i].gets, t.lookups += st[i].lookups;
		t.deletes += st[i].deletes, t.hits += st[i].hits, t.misses += st[i].misses;
		t.ghost_misses += st[i].ghost_misses;
		t.errors += st[i].errors, t.wrong += st[i].wrong;
		t.reconnects += st[i].reconnects, t.hangups += st[i].hangups;
		if (!first[0] && st[i].first_error[0])
			first = st[i].first_error;
	}
	printf("clients %d, %.0f s, blocks of up to %zu KiB, tenants %d\n", n, seconds,
	       block_bytes >> 10, tenants);
	printf("puts %llu gets %llu (hits %llu, misses %llu of which never stored %llu) lookups "
	       "%llu deletes %llu\n",
	       (unsigned long long)t.puts, (unsigned long long)t.gets, (unsigned long long)t.hits,
	       (unsigned long long)t.misses, (unsigned long long)t.ghost_misses,
	       (unsigned long long)t.lookups, (unsigned long long)t.deletes);
	printf("reconnects %llu hangups %llu\n", (unsigned long long)t.reconnects,
	       (unsigned long long)t.hangups);
	printf("ops_per_s %.0f\nerrors %llu%s%s\nwrong_bytes %llu\n",
	       (double)(t.puts + t.gets + t.lookups + t.deletes) / seconds,
	       (unsigned long long)t.errors, first[0] ? " first: " : "", first,
	       (unsigned long long)t.wrong);
	printf("server_rss_kib");
	for (int k = 0; k <= 10; k++)
		printf(" %ld", rss[k]);
	printf("\nserver_rss_kib start %ld half %ld end %ld\n", rss[0], rss[5], rss[10]);
	return t.errors || t.wrong;
}
