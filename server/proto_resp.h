/*
 * proto_resp.h - the Redis protocol (RESP2) as kvgridd speaks it: a request parser and the
 * few reply encoders a server needs.
 *
 * A request is either a multibulk array of bulk strings
 *
 *     *<argc>\r\n  then argc times  $<len>\r\n<len bytes>\r\n
 *
 * or an inline command (words separated by spaces, ended by \n or \r\n), which is what a
 * person typing into telnet sends.  The parser is pure: it reads a buffer, never allocates,
 * and points each argument into that buffer, so a 64 MiB SET value is never copied.  It is
 * restartable: when a request is not complete it answers 0 and is called again, from the
 * start of the request, once more bytes have arrived.  Every count and length is bounded by
 * struct resp_limits; what exceeds them, or does not follow the grammar, is an error with a
 * reason that the server sends back before closing the connection.
 */
#ifndef KVG_PROTO_RESP_H
#define KVG_PROTO_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RESP_ARGS_MAX 4097 /* MSET of 2048 pairs */

struct resp_limits {
	size_t args_max;   /* <= RESP_ARGS_MAX */
	size_t bulk_max;   /* largest bulk string (a value) */
	size_t inline_max; /* longest inline command line, and longest "*N" / "$N" line */
};

struct resp_arg {
	char *p; /* into the parsed buffer; not NUL-terminated */
	size_t len;
};

struct resp_cmd {
	size_t argc;
	struct resp_arg argv[RESP_ARGS_MAX];
};

/*
 * Parses one request from buf[0, len).  Returns the bytes it takes (> 0) with cmd filled,
 * 0 if the request is not complete yet, or -1 with a static reason in *why.  An empty
 * inline line or "*0" is a request with argc 0, which the server ignores (as Redis does).
 */
ssize_t resp_parse(char *buf, size_t len, const struct resp_limits *lim, struct resp_cmd *cmd,
		   const char **why);

/*
 * Recognises the head of a plain SET, "*3\r\n$3\r\nSET\r\n$<klen>\r\n<key>\r\n$<vlen>\r\n"
 * (SET in any case), at buf[0, len), before its value has arrived: a receiver can then read
 * the value where it wants it.  Returns the head's length (> 0) with the key and the value's
 * length, 0 if buf is a prefix of such a head (or too short to tell), -1 if it is not one.
 * Lengths are bounded by lim as resp_parse bounds them.
 */
ssize_t resp_peek_set(const char *buf, size_t len, const struct resp_limits *lim,
		      struct resp_arg *key, uint64_t *vlen);

/* Case-insensitive comparison of an argument with a NUL-terminated ASCII word. */
int resp_arg_is(const struct resp_arg *a, const char *word);

/* Parses an argument as a non-negative decimal integer; 0 or -1. */
int resp_arg_u64(const struct resp_arg *a, uint64_t *v);

/*
 * Reply encoders.  Each writes into dst (room for cap bytes) and returns the bytes written,
 * or 0 if they do not fit.  RESP_HDR_MAX is the most a bulk, array or integer header takes.
 */
#define RESP_HDR_MAX 24
size_t resp_put_bulk_hdr(char *dst, size_t cap, size_t len);  /* "$<len>\r\n" */
size_t resp_put_array_hdr(char *dst, size_t cap, size_t n);   /* "*<n>\r\n" */
size_t resp_put_int(char *dst, size_t cap, int64_t v);	      /* ":<v>\r\n" */
size_t resp_put_simple(char *dst, size_t cap, const char *s); /* "+<s>\r\n" */
size_t resp_put_error(char *dst, size_t cap, const char *s);  /* "-<s>\r\n" */
size_t resp_put_nil(char *dst, size_t cap);		      /* "$-1\r\n" */
size_t resp_put_bulk(char *dst, size_t cap, const void *p, size_t len);

#endif
