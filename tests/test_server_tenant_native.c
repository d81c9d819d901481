/*
 * Description: tenants stay apart over the native protocol for blocks named by long raw keys.
 * Two grids opened with cfg.servers on one kvgridd (--auth-file, tenants alice and bob), with
 * the same cfg.tenant and namespace, so they derive the very same 32-byte keys (kvg_raw_key of
 * raw keys of 1000 and 1024 bytes, around the server's inline key room of 1083 for "alice",
 * and of 4096, 4097 and 16384 bytes, past key_raw's one-shot buffer): only the server's tenant
 * salt (HELLO's token) keeps them apart.  Bob sees none of alice's blocks (LOOKUP 0, GET a
 * miss, DELETE 0); his stores under the same keys are his own; alice reads hers back byte
 * for byte.  (Native keys reach the server as 32 bytes, so this path never enters the
 * server's long-key branch: tests/test_server_tenant_keys.py covers that over RESP.)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvgrid.h"
#include "t_server.h"

static int failures;
#define EXPECT(c, ...)                                                                             \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                      \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static char tmp[512];

static kvg_grid *open_as(int port, const char *token_file)
{
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	cfg.timeout_ms = 3000;
	snprintf(cfg.servers, sizeof(cfg.servers), "127.0.0.1:%d", port);
	snprintf(cfg.auth_token_file, sizeof(cfg.auth_token_file), "%s", token_file);
	snprintf(cfg.tenant, sizeof(cfg.tenant), "%s", "team"); /* the same for both */
	kvg_grid *g = NULL;
	char err[256] = "";
	if (kvg_open(&cfg, &g, err, sizeof(err))) {
		fprintf(stderr, "kvg_open(servers, %s): %s\n", token_file, err);
		return NULL;
	}
	return g;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

#define NKEYS 8
static const size_t raw_lens[NKEYS] = {1000, 1024, 1082, 1083, 1084, 4096, 4097, 16384};

static void check_tenants(kvg_grid *alice, kvg_grid *bob)
{
	static uint8_t raw[NKEYS][16384], val[NKEYS][70000], buf[70000];
	kvg_key ka[NKEYS], kb[NKEYS];
	size_t vlen[NKEYS];
	for (int i = 0; i < NKEYS; i++) {
		for (size_t j = 0; j < raw_lens[i]; j++)
			raw[i][j] = (uint8_t)(j * 31 + (size_t)i * 7 + (j >> 8));
		vlen[i] = 1 + (size_t)i * 9001;
		for (size_t j = 0; j < vlen[i]; j++)
			val[i][j] = (uint8_t)(j ^ ((size_t)i << 3) ^ 0xa5);
		kvg_raw_key(alice, raw[i], raw_lens[i], &ka[i]);
		kvg_raw_key(bob, raw[i], raw_lens[i], &kb[i]);
		EXPECT(!memcmp(&ka[i], &kb[i], sizeof(ka[i])),
		       "the two clients derived different keys for a %zu-byte raw key: the test "
		       "would not reach the server's tenant salt",
		       raw_lens[i]);
	}
	for (int i = 0; i < NKEYS; i++) {
		struct kvg_io io = {.key = ka[i], .buf = val[i], .len = vlen[i]};
		EXPECT(kvg_store_sync(alice, &io, 1, 0) == 0 && io.status == 0,
		       "alice's store of a block under a %zu-byte raw key failed", raw_lens[i]);
	}
	for (int i = 0; i < NKEYS; i++) {
		size_t hits = 9;
		EXPECT(kvg_lookup_keys(bob, &kb[i], 1, &hits, NULL) == 0 && hits == 0,
		       "bob's LOOKUP finds alice's block under a %zu-byte raw key: tenants must "
		       "never see each other's keys",
		       raw_lens[i]);
		struct kvg_io io = {.key = kb[i], .buf = buf, .len = sizeof(buf)};
		int rc = kvg_load_sync(bob, &io, 1, 0);
		EXPECT(rc == KVG_ENOTFOUND,
		       "bob's GET of alice's block under a %zu-byte raw key answered %d (%s), "
		       "%zu bytes: a tenant must get a miss, never another's data",
		       raw_lens[i], rc, kvg_strerror(rc), io.len);
	}
	EXPECT(kvg_delete(bob, kb, NKEYS) == 0, "bob's DELETE removed alice's blocks");
	for (int i = 0; i < NKEYS; i++) {
		uint8_t mine[64];
		int n = snprintf((char *)mine, sizeof(mine), "bob's block %d", i);
		struct kvg_io io = {.key = kb[i], .buf = mine, .len = (size_t)n};
		EXPECT(kvg_store_sync(bob, &io, 1, 0) == 0 && io.status == 0,
		       "bob's store under a key alice uses failed");
	}
	for (int i = 0; i < NKEYS; i++) {
		struct kvg_io io = {.key = ka[i], .buf = buf, .len = sizeof(buf)};
		int rc = kvg_load_sync(alice, &io, 1, 0);
		EXPECT(rc == 0 && io.len == vlen[i] && !memcmp(buf, val[i], vlen[i]),
		       "alice's block under a %zu-byte raw key came back %s (%d, %zu of %zu bytes) "
		       "after bob stored under the same key: another tenant overwrote it",
		       raw_lens[i], rc ? "missing" : "different", rc, io.len, vlen[i]);
		char want[64];
		int n = snprintf(want, sizeof(want), "bob's block %d", i);
		io = (struct kvg_io){.key = kb[i], .buf = buf, .len = sizeof(buf)};
		rc = kvg_load_sync(bob, &io, 1, 0);
		EXPECT(rc == 0 && io.len == (size_t)n && !memcmp(buf, want, (size_t)n),
		       "bob's own block under a %zu-byte raw key did not read back", raw_lens[i]);
	}
}

int main(void)
{
	const char *base = getenv("KVG_TEST_TMP") ? getenv("KVG_TEST_TMP") : "build/tmp";
	mkdir(base, 0755);
	snprintf(tmp, sizeof(tmp), "%s/test_server_tenant_native.%d", base, getpid());
	if (mkdir(tmp, 0755) && errno != EEXIST) {
		perror(tmp);
		return 1;
	}
	if (!t_kvgridd_built()) {
		printf("%s not built\n", t_kvgridd_path());
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	char auth[700], ta[700], tb[700];
	snprintf(auth, sizeof(auth), "%s/auth", tmp);
	snprintf(ta, sizeof(ta), "%s/token-alice", tmp);
	snprintf(tb, sizeof(tb), "%s/token-bob", tmp);
	write_file(auth, "# token tenant\ntok-alice alice\ntok-bob bob\n");
	write_file(ta, "tok-alice\n");
	write_file(tb, "tok-bob\n");
	struct t_server srv;
	if (t_server_start(&srv, tmp, "kvgridd", (const char *const[]){"--auth-file", auth, NULL}))
		return 1;
	kvg_grid *alice = open_as(srv.port, ta), *bob = open_as(srv.port, tb);
	if (alice && bob)
		check_tenants(alice, bob);
	else
		failures++;
	if (alice)
		kvg_close(alice);
	if (bob)
		kvg_close(bob);
	t_server_stop(&srv, SIGTERM);
	if (failures) {
		fprintf(stderr, "test_server_tenant_native: %d checks failed\n", failures);
		return 1;
	}
	printf("test_server_tenant_native: tenants apart for blocks under raw keys of 1000 to "
	       "16384 bytes\n");
	return 0;
}
