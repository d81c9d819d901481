/*
 * proto_lm.h - LMCache's lm:// protocol, byte for byte as LMCache's own client and server
 * speak it (lmcache/v1/protocol.py), so that an unmodified LMCache can use kvgridd as its
 * remote cache server.
 *
 * One operation at a time per connection.  Every integer is a little-endian int32 (Python's
 * struct "i" on x86-64 and arm64); there is no padding.
 *
 *  request, 186 bytes                          reply, 36 bytes
 *   0  command   1 PUT 2 GET 3 EXIST 4 LIST     0  code      200 success, 400 failure
 *      5 HEALTH                                 4  length    payload bytes that follow (GET)
 *   4  length    payload bytes (PUT)            8  fmt       echoed from the PUT
 *   8  fmt       LMCache MemoryFormat          12  dtype     echoed from the PUT
 *  12  dtype     LMCache dtype code            16  shape0..3 echoed from the PUT
 *  16  location  0 (LocalCPU 1, LocalDisk 2)   32  location  0
 *  20  shape0..3
 *  36  key       150 bytes of UTF-8, right-padded with spaces
 *
 * PUT is followed by `length` payload bytes and gets no reply.  GET answers a reply and, on
 * 200, exactly `length` bytes.  EXIST and HEALTH answer a reply with no payload.  LIST is not
 * implemented by LMCache's server; kvgridd answers 400.
 */
#ifndef KVG_PROTO_LM_H
#define KVG_PROTO_LM_H

#include <stddef.h>
#include <stdint.h>

#define LMP_REQ_BYTES	186
#define LMP_REPLY_BYTES 36
#define LMP_KEY_MAX	150

enum lmp_command { LMP_PUT = 1, LMP_GET = 2, LMP_EXIST = 3, LMP_LIST = 4, LMP_HEALTH = 5 };
enum lmp_code { LMP_SUCCESS = 200, LMP_FAIL = 400 };

/* What LMCache keeps with the bytes and expects back exactly: fmt, dtype, shape. */
struct lmp_meta {
	int32_t fmt;
	int32_t dtype;
	int32_t shape[4];
};

struct lmp_req {
	int32_t command;
	int32_t length;
	int32_t location;
	struct lmp_meta meta;
	const char *key; /* into the decoded buffer, padding stripped; not NUL-terminated */
	size_t key_len;
};

/* True if the first 4 bytes of a connection look like an lm:// command (1..5 as int32 LE). */
int lmp_sniff(const uint8_t *p, size_t len);

/*
 * Decodes a 186-byte request header from buf.  Returns 0, or -1 with a static reason in *why
 * for an unknown command or a negative or too large length (length_max for PUT).  req->key
 * points into buf.
 */
int lmp_decode_req(const uint8_t *buf, size_t length_max, struct lmp_req *req, const char **why);

/* Encodes a request (for clients and tests); key_len <= LMP_KEY_MAX. */
void lmp_encode_req(uint8_t *buf, int32_t command, int32_t length, const struct lmp_meta *m,
		    const char *key, size_t key_len);

/* Encodes a 36-byte reply; m NULL encodes LMCache's defaults for a reply without data. */
void lmp_encode_reply(uint8_t *buf, int32_t code, int32_t length, const struct lmp_meta *m);

#endif
