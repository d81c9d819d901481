/*
 * server_native_bench.c - large-block loads from kvgridd over the native protocol (libkvgrid's
 * client) against a plain TCP stream on the same loopback, measured alternately in one run.
 *
 *   build/bench/server_native_bench PORT [block_MiB] [blocks_per_call] [seconds_per_round]
 *
 * The TCP stream is the ceiling: one thread writes block-sized chunks into a loopback socket,
 * another receives them into a buffer, nothing else.  The native run first stores 16 random
 * blocks, then loads them blocks_per_call at a time into the caller's buffers (each load
 * verified by a checksum of its first and last pages).  Three rounds of each, alternating;
 * prints the median of each and their ratio.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "bench.h"
#include "kvgrid.h"

#define NB 16

struct stream {
	int fd;
	size_t chunk;
	double secs;
	volatile int stop;
};

static void *stream_send(void *arg)
{
	struct stream *s = arg;
	char *buf = malloc(s->chunk);
	memset(buf, 0x5a, s->chunk);
	while (!s->stop) {
		size_t off = 0;
		while (off < s->chunk) {
			ssize_t w = send(s->fd, buf + off, s->chunk - off, MSG_NOSIGNAL);
			if (w <= 0)
				goto out;
			off += (size_t)w;
		}
	}
out:
	free(buf);
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

/* Bytes per second through a loopback TCP connection. */
static double tcp_stream(size_t chunk, double secs)
{
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	bind(l, (struct sockaddr *)&a, sizeof(a));
	listen(l, 1);
	getsockname(l, (struct sockaddr *)&a, &al);
	int cfd = socket(AF_INET, SOCK_STREAM, 0);
	connect(cfd, (struct sockaddr *)&a, sizeof(a));
	int sfd = accept(l, NULL, NULL);
	close(l);
	struct stream s = {.fd = sfd, .chunk = chunk, .secs = secs};
	pthread_t th;
	pthread_create(&th, NULL, stream_send, &s);
	char *buf = malloc(chunk);
	uint64_t got = 0;
	double t0 = now_s(), t1 = t0;
	while (t1 - t0 < secs) {
		ssize_t r = recv(cfd, buf, chunk, MSG_WAITALL);
		if (r <= 0)
			break;
		got += (uint64_t)r;
		t1 = now_s();
	}
	s.stop = 1;
	close(cfd);
	pthread_join(th, NULL);
	close(sfd);
	free(buf);
	return (double)got / (t1 - t0);
}

static uint64_t sum_edges(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < 4096 && i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	for (size_t i = n > 4096 ? n - 4096 : 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static double native_load(struct client *c, kvg_key *keys, uint64_t *sums, size_t bytes,
			  int per_call, uint8_t **bufs, double secs, int *bad)
{
	struct kvg_io ios[NB];
	uint64_t got = 0;
	double t0 = now_s(), t1 = t0;
	int next = 0;
	while (t1 - t0 < secs) {
		for (int i = 0; i < per_call; i++) {
			int k = (next + i) % NB;
			ios[i] = (struct kvg_io){.key = keys[k], .buf = bufs[i], .len = bytes};
		}
		if (client_load(c, ios, (size_t)per_call) != 0) {
			(*bad)++;
			break;
		}
		for (int i = 0; i < per_call; i++) {
			if (ios[i].len != bytes ||
			    sum_edges(bufs[i], bytes) != sums[(next + i) % NB])
				(*bad)++;
			got += ios[i].len;
		}
		next = (next + per_call) % NB;
		t1 = now_s();
	}
	return (double)got / (t1 - t0);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PORT [block_MiB] [blocks_per_call] [seconds]\n",
			argv[0]);
		return 2;
	}
	size_t bytes = (size_t)(argc > 2 ? atoi(argv[2]) : 4) << 20;
	int per_call = argc > 3 ? atoi(argv[3]) : 4;
	double secs = argc > 4 ? atof(argv[4]) : 2.0;
	if (per_call < 1 || per_call > NB)
		per_call = 4;
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	snprintf(cfg.servers, sizeof(cfg.servers), "127.0.0.1:%s", argv[1]);
	cfg.timeout_ms = 30000;
	struct client *c;
	char err[256];
	if (client_open(&cfg, &c, err, sizeof(err))) {
		fprintf(stderr, "client_open: %s\n", err);
		return 1;
	}
	kvg_key keys[NB];
	uint64_t sums[NB];
	uint8_t *bufs[NB];
	srand(7);
	for (int i = 0; i < NB; i++) {
		bufs[i] = malloc(bytes);
		for (size_t j = 0; j < bytes; j++)
			bufs[i][j] = (uint8_t)rand();
		for (int j = 0; j < KVG_KEY_BYTES; j++)
			keys[i].bytes[j] = (uint8_t)rand();
		sums[i] = sum_edges(bufs[i], bytes);
		struct kvg_io io = {.key = keys[i], .buf = bufs[i], .len = bytes};
		if (client_store(c, &io, 1)) {
			fprintf(stderr, "store failed: %s\n", kvg_strerror(io.status));
			return 1;
		}
	}
	double tcp[3], nat[3];
	int bad = 0;
	for (int r = 0; r < 3; r++) {
		tcp[r] = tcp_stream(bytes, secs);
		nat[r] = native_load(c, keys, sums, bytes, per_call, bufs, secs, &bad);
	}
	qsort(tcp, 3, sizeof(double), cmp_d);
	qsort(nat, 3, sizeof(double), cmp_d);
	printf("block %zu MiB, %d blocks per call, %.1f s per round, 3 rounds alternating\n",
	       bytes >> 20, per_call, secs);
	printf("tcp_stream_GBps %.2f\nnative_load_GBps %.2f\nratio %.2f\nbad_blocks %d\n",
	       tcp[1] / 1e9, nat[1] / 1e9, nat[1] / tcp[1], bad);
	client_close(c);
	return bad ? 1 : 0;
}
