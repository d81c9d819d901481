/*
 * t.h - the tiny harness of kvgrid's C tests.  A test is a function with a Description;
 * CHECK fails the test with the line and the condition; a program runs its tests in order,
 * each swept over the configurations it names, and exits 0 only if all passed.
 */
#ifndef KVG_T_H
#define KVG_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvgrid.h"

static int t_failed;
static const char *t_name;
static const char *t_variant = "";

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "FAIL %s [%s] %s:%d: %s\n", t_name, t_variant, __FILE__,   \
				__LINE__, #c);                                                     \
			t_failed++;                                                                \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define CHECK_RC(expr, want)                                                                       \
	do {                                                                                       \
		int _rc = (expr);                                                                  \
		if (_rc != (want)) {                                                               \
			fprintf(stderr, "FAIL %s [%s] %s:%d: %s = %d (%s), want %d\n", t_name,     \
				t_variant, __FILE__, __LINE__, #expr, _rc, kvg_strerror(_rc),      \
				(want));                                                           \
			t_failed++;                                                                \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define RUN(fn)                                                                                    \
	do {                                                                                       \
		int _before = t_failed;                                                            \
		t_name = #fn;                                                                      \
		fn();                                                                              \
		fprintf(stderr, "%s %s [%s]\n", t_failed == _before ? "ok  " : "FAIL", #fn,        \
			t_variant);                                                                \
	} while (0)

/* A fresh scratch directory under $KVG_TEST_TMP (or build/tmp). */
static inline void t_tmpdir(char *out, size_t len, const char *tag)
{
	const char *base = getenv("KVG_TEST_TMP");
	if (!base)
		base = "build/tmp";
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "mkdir -p %s", base);
	if (system(cmd)) {
	}
	snprintf(out, len, "%s/%s-%d-XXXXXX", base, tag, (int)getpid());
	if (!mkdtemp(out)) {
		perror("mkdtemp");
		exit(2);
	}
}

static inline void t_rmdir(const char *dir)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd)) {
	}
}

/* Deterministic payload of a key: any wrong byte is detectable. */
static inline void t_fill(void *buf, size_t len, const kvg_key *k, uint32_t salt)
{
	uint64_t x;
	memcpy(&x, k->bytes, 8);
	x ^= salt * 0x9e3779b97f4a7c15ull;
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static inline int t_verify(const void *buf, size_t len, const kvg_key *k, uint32_t salt)
{
	uint64_t x;
	memcpy(&x, k->bytes, 8);
	x ^= salt * 0x9e3779b97f4a7c15ull;
	const uint8_t *p = buf;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (p[i] != (uint8_t)x)
			return 0;
	}
	return 1;
}

#endif
