/*
 * Description: the wire codecs (RESP, lm://, native frames) accept every well-formed request,
 * ask for more bytes when a request is cut short at any byte, and reject malformed or
 * oversized input with a reason instead of reading past the buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_lm.h"
#include "proto_native.h"
#include "proto_resp.h"

static int failures;
#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);      \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static struct resp_cmd cmd;
static const struct resp_limits lim = {.args_max = 16, .bulk_max = 1 << 20, .inline_max = 64};

/* A multibulk SET with a binary value parses whole, and every prefix of it asks for more. */
static void test_resp_multibulk_every_prefix(void)
{
	char req[] = "*3\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n$5\r\n\r\n\0\xff!\r\n";
	size_t n = sizeof(req) - 1;
	const char *why = NULL;
	for (size_t cut = 0; cut < n; cut++)
		CHECK(resp_parse(req, cut, &lim, &cmd, &why) == 0);
	CHECK(resp_parse(req, n, &lim, &cmd, &why) == (ssize_t)n);
	CHECK(cmd.argc == 3);
	CHECK(resp_arg_is(&cmd.argv[0], "set"));
	CHECK(cmd.argv[1].len == 3 && memcmp(cmd.argv[1].p, "k\0y", 3) == 0);
	CHECK(cmd.argv[2].len == 5 && memcmp(cmd.argv[2].p, "\r\n\0\xff!", 5) == 0);
}

/* Two pipelined requests parse one after the other. */
static void test_resp_pipeline(void)
{
	char req[] = "*1\r\n$4\r\nPING\r\nGET  key\r\n";
	const char *why;
	ssize_t a = resp_parse(req, sizeof(req) - 1, &lim, &cmd, &why);
	CHECK(a == 14 && cmd.argc == 1 && resp_arg_is(&cmd.argv[0], "PING"));
	ssize_t b = resp_parse(req + a, sizeof(req) - 1 - (size_t)a, &lim, &cmd, &why);
	CHECK(b == 10 && cmd.argc == 2 && resp_arg_is(&cmd.argv[1], "key"));
}

/* Malformed and oversized requests are errors with a reason. */
static void test_resp_rejects(void)
{
	const char *bad[] = {
	    "*2\r\n$3\r\nGET\r\n:1\r\n", /* not a bulk */
	    "*1\r\n$3\r\nGETX\r\n",	 /* bulk longer than its length */
	    "*x\r\n",			 /* count not a number */
	    "*17\r\n",			 /* more arguments than args_max */
	    "*1\r\n$2000000\r\n",	 /* bulk over bulk_max */
	    "*1\r\n$-5\r\n",		 /* negative bulk */
	    "*1\n",			 /* no \r */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[64];
		size_t n = strlen(bad[i]);
		memcpy(buf, bad[i], n);
		const char *why = NULL;
		CHECK(resp_parse(buf, n, &lim, &cmd, &why) == -1);
		CHECK(why && why[0] == 'E');
	}
	char longline[100];
	memset(longline, 'a', sizeof(longline));
	const char *why = NULL;
	CHECK(resp_parse(longline, sizeof(longline), &lim, &cmd, &why) == -1);
}

/* The head of a plain SET is recognised before its value arrives: every prefix of the head
 * asks for more, the whole head gives the key and the value's length, and anything that is
 * not such a head (other commands, other arity, bad lengths) is refused. */
static void test_resp_peek_set(void)
{
	char req[] = "*3\r\n$3\r\nsEt\r\n$3\r\nk\0y\r\n$1048576\r\nVALUE...";
	size_t head = strlen("*3\r\n$3\r\nsEt\r\n$3\r\n") + 5 + strlen("$1048576\r\n");
	struct resp_arg key;
	uint64_t vlen = 0;
	for (size_t cut = 0; cut < head; cut++)
		CHECK(resp_peek_set(req, cut, &lim, &key, &vlen) == 0);
	CHECK(resp_peek_set(req, head, &lim, &key, &vlen) == (ssize_t)head);
	CHECK(resp_peek_set(req, sizeof(req) - 1, &lim, &key, &vlen) == (ssize_t)head);
	CHECK(vlen == 1048576 && key.len == 3 && memcmp(key.p, "k\0y", 3) == 0);
	static const char *const bad[] = {
	    "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",		   /* not SET */
	    "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",   /* options follow */
	    "*3\r\n$4\r\nSETX\r\n",			   /* another command */
	    "*3\r\n$3\r\nGET\r\n",			   /* another command */
	    "*3\r\n$3\r\nSET\r\n$1\r\nkX\r\n$1\r\n",	   /* key longer than said */
	    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999999\r\n", /* over bulk_max */
	    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$-1\r\n",	   /* negative */
	    "SET k v\r\n",				   /* inline */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(resp_peek_set(bad[i], strlen(bad[i]), &lim, &key, &vlen) == -1);
}

static void test_resp_encoders(void)
{
	char b[64];
	CHECK(resp_put_bulk(b, sizeof(b), "ab", 2) == 8 && memcmp(b, "$2\r\nab\r\n", 8) == 0);
	CHECK(resp_put_int(b, sizeof(b), -7) == 5 && memcmp(b, ":-7\r\n", 5) == 0);
	CHECK(resp_put_nil(b, sizeof(b)) == 5 && memcmp(b, "$-1\r\n", 5) == 0);
	CHECK(resp_put_simple(b, 3, "OK") == 0); /* does not fit */
}

/* An lm:// request made the way LMCache's client makes it decodes with the key stripped. */
static void test_lm_roundtrip(void)
{
	uint8_t req[LMP_REQ_BYTES];
	struct lmp_meta m = {.fmt = 1, .dtype = 3, .shape = {2, 32, 256, 1024}};
	const char *key = "meta/llama@1@0@-3fa2@bfloat16";
	lmp_encode_req(req, LMP_PUT, 4096, &m, key, strlen(key));
	CHECK(req[36 + strlen(key)] == ' ' && req[LMP_REQ_BYTES - 1] == ' ');
	CHECK(lmp_sniff(req, 4));
	struct lmp_req r;
	const char *why = NULL;
	CHECK(lmp_decode_req(req, 1 << 20, &r, &why) == 0);
	CHECK(r.command == LMP_PUT && r.length == 4096 && r.meta.dtype == 3);
	CHECK(r.meta.shape[3] == 1024 && r.key_len == strlen(key));
	CHECK(memcmp(r.key, key, r.key_len) == 0);
	CHECK(lmp_decode_req(req, 1000, &r, &why) == -1); /* PUT over the limit */
	req[0] = 9;
	CHECK(lmp_decode_req(req, 1 << 20, &r, &why) == -1 && !lmp_sniff(req, 4));
}

/* The reply bytes are exactly Python's struct.pack("iiiiiiiii", code, length, fmt, dtype,
 * shape0..3, location) as LMCache's server sends them. */
static void test_lm_reply_bytes(void)
{
	uint8_t rep[LMP_REPLY_BYTES];
	struct lmp_meta m = {.fmt = 1, .dtype = 3, .shape = {2, 3, 4, -1}};
	lmp_encode_reply(rep, LMP_SUCCESS, 96, &m);
	const uint8_t want[36] = {200, 0, 0, 0, 96,   0,    0,	  0,	1, 0, 0, 0,
				  3,   0, 0, 0, 2,    0,    0,	  0,	3, 0, 0, 0,
				  4,   0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
	CHECK(memcmp(rep, want, 36) == 0);
	lmp_encode_reply(rep, LMP_FAIL, 0, NULL);
	CHECK(rep[0] == 0x90 && rep[1] == 1 && rep[8] == 1 && rep[12] == 2 && rep[16] == 0);
}

static int read_fixture(const char *name, uint8_t *buf, size_t n)
{
	char path[256];
	snprintf(path, sizeof(path), "tests/fixtures/lm/%s", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t got = fread(buf, 1, n, f);
	fclose(f);
	return got == n ? 0 : -1;
}

/* The codec makes and reads exactly the golden bytes of LMCache's protocol.py. */
static void test_lm_golden_fixtures(void)
{
	uint8_t want[LMP_REQ_BYTES], got[LMP_REQ_BYTES], rep[LMP_REPLY_BYTES];
	const char *key = "meta-llama/Llama-3.1-8B@1@0@-1a2b3c4d5e6f@bfloat16";
	struct lmp_meta m = {.fmt = 1, .dtype = 3, .shape = {2, 2, 8, 3}};
	CHECK(read_fixture("put_request.bin", want, sizeof(want)) == 0);
	lmp_encode_req(got, LMP_PUT, 192, &m, key, strlen(key));
	CHECK(memcmp(got, want, sizeof(want)) == 0);
	CHECK(read_fixture("get_request.bin", want, sizeof(want)) == 0);
	lmp_encode_req(got, LMP_GET, 0, NULL, key, strlen(key));
	CHECK(memcmp(got, want, sizeof(want)) == 0);
	struct lmp_req r;
	const char *why;
	CHECK(lmp_decode_req(want, 1 << 20, &r, &why) == 0 && r.key_len == strlen(key));
	CHECK(read_fixture("get_reply_hit.bin", want, LMP_REPLY_BYTES) == 0);
	lmp_encode_reply(rep, LMP_SUCCESS, 192, &m);
	CHECK(memcmp(rep, want, LMP_REPLY_BYTES) == 0);
	CHECK(read_fixture("reply_fail.bin", want, LMP_REPLY_BYTES) == 0);
	lmp_encode_reply(rep, LMP_FAIL, 0, NULL);
	CHECK(memcmp(rep, want, LMP_REPLY_BYTES) == 0);
}

static void test_native_header(void)
{
	uint8_t b[NAT_HDR_BYTES];
	struct nat_hdr h = {
	    .op = NAT_GET, .id = 0x0102030405060708ull, .status = -5, .body_len = 100};
	nat_hdr_encode(b, &h);
	CHECK(memcmp(b, "KVGN\x01\x04", 6) == 0 && b[8] == 8 && b[15] == 1);
	struct nat_hdr d;
	const char *why = NULL;
	CHECK(nat_hdr_decode(b, 100, 1, &d, &why) == 0);
	CHECK(d.id == h.id && d.status == -5 && d.body_len == 100 && d.op == NAT_GET);
	CHECK(nat_hdr_decode(b, 99, 1, &d, &why) == -1); /* body over the limit */
	b[5] = 0x7f;
	CHECK(nat_hdr_decode(b, 100, 1, &d, &why) == -1); /* unknown op */
	b[5] = NAT_GET;
	b[4] = 2;
	CHECK(nat_hdr_decode(b, 100, 1, &d, &why) == -1); /* unknown version */
	b[0] = 'X';
	CHECK(nat_hdr_decode(b, 100, 1, &d, &why) == -1 && !nat_sniff(b, 4));
}

int main(void)
{
	test_resp_multibulk_every_prefix();
	test_resp_pipeline();
	test_resp_rejects();
	test_resp_encoders();
	test_resp_peek_set();
	test_lm_roundtrip();
	test_lm_reply_bytes();
	test_lm_golden_fixtures();
	test_native_header();
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("test_proto: all checks passed\n");
	return 0;
}
