/*
 * server_soak.c - sustained mixed load on kvgridd: many clients, each its own connection,
 * mixing PUT, GET and LOOKUP of prefix chains for a fixed time, every payload verified.
 *
 *   build/bench/server_soak PORT PID [clients] [seconds] [block_KiB]
 *
 * A block's bytes are a pure function of its key (a PRNG seeded by the key), so any client
 * can verify any block it loads without shared state.  Each client works on chains of 16
 * blocks: it stores a chain, looks up its prefix, loads random blocks of random chains it or
 * others stored.  Prints operations, errors (any failed call other than a miss), wrong bytes
 * (a block that loaded but differs), and the server's resident memory (VmRSS of PID) at
 * start, at half time and at the end: "memory flat" means the last two are close.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "kvgrid.h"

#define CHAIN  16
#define CHAINS 64

static int port;
static double seconds = 60;
static size_t block_bytes = 64 << 10;
static volatile int stop;

struct stats {
	uint64_t puts, gets, lookups, hits, misses, errors, wrong;
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

static void block_fill(const kvg_key *k, uint8_t *buf, size_t n)
{
	uint64_t s;
	memcpy(&s, k->bytes, 8);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix(&s);
		memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
	}
}

static void *soak_client(void *arg)
{
	struct stats *st = arg;
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	snprintf(cfg.servers, sizeof(cfg.servers), "127.0.0.1:%d", port);
	cfg.timeout_ms = 30000;
	struct client *c;
	char err[256];
	if (client_open(&cfg, &c, err, sizeof(err))) {
		st->errors++;
		return NULL;
	}
	uint8_t *buf = malloc(block_bytes * CHAIN), *want = malloc(block_bytes);
	uint64_t seed = (uint64_t)(uintptr_t)st;
	kvg_key keys[CHAIN];
	struct kvg_io ios[CHAIN];
	while (!stop) {
		uint64_t chain = splitmix(&seed) % CHAINS;
		for (int i = 0; i < CHAIN; i++)
			block_key(chain, i, &keys[i]);
		int op = (int)(splitmix(&seed) % 10);
		if (op < 3) { /* store a whole chain */
			for (int i = 0; i < CHAIN; i++) {
				block_fill(&keys[i], buf + i * block_bytes, block_bytes);
				ios[i] = (struct kvg_io){.key = keys[i],
							 .buf = buf + i * block_bytes,
							 .len = block_bytes};
			}
			st->errors += client_store(c, ios, CHAIN) != 0;
			st->puts += CHAIN;
		} else if (op < 5) { /* prefix lookup */
			size_t hits = 0;
			st->errors += client_lookup_keys(c, keys, CHAIN, &hits) != 0;
			st->lookups++;
		} else { /* load 4 blocks of the chain and verify them */
			int first = (int)(splitmix(&seed) % (CHAIN - 4));
			for (int i = 0; i < 4; i++)
				ios[i] = (struct kvg_io){.key = keys[first + i],
							 .buf = buf + i * block_bytes,
							 .len = block_bytes};
			client_load(c, ios, 4);
			for (int i = 0; i < 4; i++) {
				st->gets++;
				if (ios[i].status == KVG_ENOTFOUND) {
					st->misses++;
					continue;
				}
				if (ios[i].status) {
					st->errors++;
					continue;
				}
				st->hits++;
				block_fill(&keys[first + i], want, block_bytes);
				if (ios[i].len != block_bytes ||
				    memcmp(want, ios[i].buf, block_bytes))
					st->wrong++;
			}
		}
	}
	free(buf);
	free(want);
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
		fprintf(stderr, "usage: %s PORT PID [clients] [seconds] [block_KiB]\n", argv[0]);
		return 2;
	}
	port = atoi(argv[1]);
	int pid = atoi(argv[2]);
	int n = argc > 3 ? atoi(argv[3]) : 64;
	seconds = argc > 4 ? atof(argv[4]) : 60;
	block_bytes = (size_t)(argc > 5 ? atoi(argv[5]) : 64) << 10;
	pthread_t *th = calloc((size_t)n, sizeof(*th));
	struct stats *st = calloc((size_t)n, sizeof(*st));
	long rss0 = rss_kib(pid);
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, soak_client, &st[i]);
	usleep((useconds_t)(seconds * 5e5));
	long rss_half = rss_kib(pid);
	usleep((useconds_t)(seconds * 5e5));
	long rss_end = rss_kib(pid);
	stop = 1;
	struct stats t = {0};
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		t.puts += st[i].puts, t.gets += st[i].gets, t.lookups += st[i].lookups;
		t.hits += st[i].hits, t.misses += st[i].misses;
		t.errors += st[i].errors, t.wrong += st[i].wrong;
	}
	printf("clients %d, %.0f s, blocks of %zu KiB\n", n, seconds, block_bytes >> 10);
	printf("puts %llu gets %llu (hits %llu, misses %llu) lookups %llu\n",
	       (unsigned long long)t.puts, (unsigned long long)t.gets, (unsigned long long)t.hits,
	       (unsigned long long)t.misses, (unsigned long long)t.lookups);
	printf("ops_per_s %.0f\nerrors %llu\nwrong_bytes %llu\n",
	       (double)(t.puts + t.gets + t.lookups) / seconds, (unsigned long long)t.errors,
	       (unsigned long long)t.wrong);
	printf("server_rss_kib start %ld half %ld end %ld\n", rss0, rss_half, rss_end);
	return t.errors || t.wrong;
}
