/*
 * Description: one libkvgrid client shared by several threads (as grid workers share it)
 * against two real kvgridd servers: concurrent batched stores and loads of distinct blocks
 * all come back byte for byte, and concurrent lookups of a stored chain see all of it; the
 * same against a server at its connection limit, where the threads share what connections
 * the client has.
 * Runs under ThreadSanitizer too (name ends in _mt).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "kvgrid.h"
#include "t_server.h"

#define THREADS 4
#define ROUNDS	20
#define BATCH	8
#define BLOCK	(96 << 10)

static struct client *cl;
static int failures; /* written under fail_lock */
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what, int t, int r)
{
	pthread_mutex_lock(&fail_lock);
	fprintf(stderr, "thread %d round %d: %s\n", t, r, what);
	failures++;
	pthread_mutex_unlock(&fail_lock);
}

static void make_block(int t, int r, int i, kvg_key *k, uint8_t *buf)
{
	uint64_t s = ((uint64_t)t << 40) | ((uint64_t)r << 20) | (uint64_t)i;
	for (int j = 0; j < KVG_KEY_BYTES; j++)
		k->bytes[j] = (uint8_t)((s * 2654435761u) >> (j % 8) * 8) ^ (uint8_t)j;
	memcpy(k->bytes, &s, sizeof(s));
	for (size_t j = 0; j < BLOCK; j++)
		buf[j] = (uint8_t)(s * 31 + j * 7 + (j >> 12));
}

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	uint8_t *src = malloc(BATCH * BLOCK), *dst = malloc(BATCH * BLOCK);
	struct kvg_io ios[BATCH];
	kvg_key keys[BATCH];
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < BATCH; i++) {
			make_block(t, r, i, &keys[i], src + i * BLOCK);
			ios[i] =
			    (struct kvg_io){.key = keys[i], .buf = src + i * BLOCK, .len = BLOCK};
		}
		if (client_store(cl, ios, BATCH))
			fail("store", t, r);
		size_t hits = 0;
		if (client_lookup_keys(cl, keys, BATCH, &hits) || hits != BATCH)
			fail("lookup", t, r);
		for (int i = 0; i < BATCH; i++)
			ios[i] =
			    (struct kvg_io){.key = keys[i], .buf = dst + i * BLOCK, .len = BLOCK};
		if (client_load(cl, ios, BATCH) || memcmp(src, dst, BATCH * BLOCK))
			fail("load", t, r);
	}
	free(src);
	free(dst);
	return NULL;
}

/* Runs THREADS workers on the client cl, then closes it. */
static void run_workers(void)
{
	pthread_t th[THREADS];
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	client_close(cl);
}

int main(void)
{
	if (!t_kvgridd_built()) {
		printf("%s is not built\n", t_kvgridd_path());
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	char tmp[512];
	const char *base = getenv("KVG_TEST_TMP");
	snprintf(tmp, sizeof(tmp), "%s/test_server_client_mt.%d", base ? base : "build/tmp",
		 getpid());
	mkdir(base ? base : "build/tmp", 0755);
	mkdir(tmp, 0755);
	struct t_server s1, s2, s3;
	if (t_server_start(&s1, tmp, "a", NULL) || t_server_start(&s2, tmp, "b", NULL)) {
		t_server_stop(&s1, SIGKILL);
		return 1;
	}
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	snprintf(cfg.servers, sizeof(cfg.servers), "127.0.0.1:%d,127.0.0.1:%d", s1.port, s2.port);
	cfg.timeout_ms = 20000;
	char err[256];
	int rc = client_open(&cfg, &cl, err, sizeof(err));
	if (rc == 0) {
		run_workers();
	} else {
		fprintf(stderr, "client_open: %s\n", err);
		failures++;
	}
	t_server_stop(&s1, SIGTERM);
	t_server_stop(&s2, SIGTERM);
	/* a server at its connection limit (one per worker): the client's threads share the
	 * connections it has instead of giving the node up */
	int started = t_server_start(&s3, tmp, "limited",
				     (const char *const[]){"--conns-max", "2", NULL}) == 0;
	snprintf(cfg.servers, sizeof(cfg.servers), "127.0.0.1:%d", s3.port);
	if (!started || client_open(&cfg, &cl, err, sizeof(err))) {
		fprintf(stderr, "limited server: %s\n", !started ? "did not start" : err);
		failures++;
	} else {
		run_workers();
	}
	t_server_stop(&s3, SIGTERM);
	if (failures) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("test_server_client_mt: all checks passed\n");
	return 0;
}
