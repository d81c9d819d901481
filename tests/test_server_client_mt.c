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

/* Starts kvgridd; conns_max (NULL: the default) limits its connections. */
static pid_t start(const char *tmp, const char *name, int *port, const char *conns_max)
{
	char pf[600];
	snprintf(pf, sizeof(pf), "%s/%s.port", tmp, name);
	unlink(pf);
	const char *bin = getenv("KVGRIDD") ? getenv("KVGRIDD") : "build/kvgridd";
	pid_t pid = fork();
	if (pid == 0) {
		if (conns_max)
			execl(bin, bin, "--port", "0", "--port-file", pf, "--dram", "64M",
			      "--threads", "2", "--conns-max", conns_max, (char *)NULL);
		else
			execl(bin, bin, "--port", "0", "--port-file", pf, "--dram", "64M",
			      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 600; i++) {
		FILE *f = fopen(pf, "r");
		if (f) {
			int ok = fscanf(f, "%d", port) == 1;
			fclose(f);
			if (ok)
				return pid;
		}
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

int main(void)
{
	const char *bin = getenv("KVGRIDD") ? getenv("KVGRIDD") : "build/kvgridd";
	if (access(bin, X_OK)) {
		printf("kvgridd is not built\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	char tmp[512];
	const char *base = getenv("KVG_TEST_TMP");
	snprintf(tmp, sizeof(tmp), "%s/test_server_client_mt.%d", base ? base : "build/tmp",
		 getpid());
	mkdir(base ? base : "build/tmp", 0755);
	mkdir(tmp, 0755);
	int p1 = 0, p2 = 0;
	pid_t s1 = start(tmp, "a", &p1, NULL), s2 = start(tmp, "b", &p2, NULL);
	if (s1 < 0 || s2 < 0) {
		fprintf(stderr, "kvgridd did not start\n");
		return 1;
	}
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	snprintf(cfg.servers, sizeof(cfg.servers), "127.0.0.1:%d,127.0.0.1:%d", p1, p2);
	cfg.timeout_ms = 20000;
	char err[256];
	int rc = client_open(&cfg, &cl, err, sizeof(err));
	if (rc == 0) {
		run_workers();
	} else {
		fprintf(stderr, "client_open: %s\n", err);
		failures++;
	}
	kill(s1, SIGTERM);
	kill(s2, SIGTERM);
	waitpid(s1, NULL, 0);
	waitpid(s2, NULL, 0);
	/* a server at its connection limit (one per worker): the client's threads share the
	 * connections it has instead of giving the node up */
	int p3 = 0;
	pid_t s3 = start(tmp, "limited", &p3, "2");
	snprintf(cfg.servers, sizeof(cfg.servers), "127.0.0.1:%d", p3);
	if (s3 < 0 || client_open(&cfg, &cl, err, sizeof(err))) {
		fprintf(stderr, "limited server: %s\n", s3 < 0 ? "did not start" : err);
		failures++;
	} else {
		run_workers();
	}
	if (s3 > 0) {
		kill(s3, SIGTERM);
		waitpid(s3, NULL, 0);
	}
	if (failures) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("test_server_client_mt: all checks passed\n");
	return 0;
}
