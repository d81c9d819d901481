/*
 * fuzz_proto_resp.c - libFuzzer target: the RESP request parser (proto_resp.c).  Input: any
 * bytes, parsed as a stream of pipelined requests with small limits.  Checks that every
 * request consumes at least one byte and no more than it was given, that every argument lies
 * inside the buffer, and that a complete request parses to the same result when given again
 * with trailing bytes (the parser is restartable and does not look past its request).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto_resp.h"

static struct resp_cmd cmd, again;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct resp_limits lim = {.args_max = 64, .bulk_max = 4096, .inline_max = 512};
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	/* the SET head peek stays inside the input and agrees with the full parser */
	struct resp_arg key;
	uint64_t vlen = 0;
	ssize_t h = resp_peek_set(buf, size, &lim, &key, &vlen);
	if (h > (ssize_t)size ||
	    (h > 0 && (key.p < buf || key.p + key.len > buf + h || vlen > lim.bulk_max)))
		abort();
	if (h > 0 && size - (size_t)h >= vlen + 2 && buf[h + vlen] == '\r' &&
	    buf[h + vlen + 1] == '\n') {
		const char *why = NULL;
		ssize_t r = resp_parse(buf, size, &lim, &cmd, &why);
		if (r != h + (ssize_t)vlen + 2 || cmd.argc != 3 ||
		    !resp_arg_is(&cmd.argv[0], "SET") || cmd.argv[1].len != key.len ||
		    cmd.argv[2].len != vlen)
			abort();
	}
	size_t pos = 0;
	while (pos < size) {
		const char *why = NULL;
		ssize_t r = resp_parse(buf + pos, size - pos, &lim, &cmd, &why);
		if (r < 0) {
			if (!why)
				abort();
			break;
		}
		if (r == 0)
			break;
		if ((size_t)r > size - pos || cmd.argc > lim.args_max)
			abort();
		for (size_t i = 0; i < cmd.argc; i++)
			if (cmd.argv[i].p < buf + pos ||
			    cmd.argv[i].p + cmd.argv[i].len > buf + pos + r)
				abort();
		/* the same request alone parses the same */
		ssize_t r2 = resp_parse(buf + pos, (size_t)r, &lim, &again, &why);
		if (r2 != r || again.argc != cmd.argc)
			abort();
		pos += (size_t)r;
	}
	free(buf);
	return 0;
}
