/*
 * proto_resp.c - RESP2 request parser and reply encoders (see proto_resp.h).
 *
 * The parser keeps no state between calls: a partial request is parsed again from its first
 * byte when more data arrives.  Headers are short and the argument count is bounded, so this
 * costs little, and it leaves no half-parsed state to get wrong when a client disconnects
 * mid-value.
 */
#include <string.h>
#include <stdio.h>

#include "proto_resp.h"

/* Reads a "<prefix><int>\r\n" line at p (p[0] is the prefix).  Returns the line's length
 * with \r\n, 0 if the line is incomplete, -1 if malformed. */
static ssize_t resp_line_int(const char *p, size_t avail, size_t line_max, int64_t *v,
			     const char **why)
{
	size_t scan = avail < line_max ? avail : line_max;
	const char *nl = memchr(p, '\n', scan);
	if (!nl) {
		if (avail >= line_max) {
			*why = "ERR Protocol error: too big count line";
			return -1;
		}
		return 0;
	}
	size_t n = (size_t)(nl - p);
	if (n < 3 || p[n - 1] != '\r') {
		*why = "ERR Protocol error: expected '\\r\\n'";
		return -1;
	}
	int neg = 0;
	size_t i = 1;
	if (p[i] == '-') {
		neg = 1;
		i++;
	}
	if (i >= n - 1 || n - 1 - i > 18) {
		*why = "ERR Protocol error: invalid count";
		return -1;
	}
	int64_t x = 0;
	for (; i < n - 1; i++) {
		if (p[i] < '0' || p[i] > '9') {
			*why = "ERR Protocol error: invalid count";
			return -1;
		}
		x = x * 10 + (p[i] - '0');
	}
	*v = neg ? -x : x;
	return (ssize_t)n + 1;
}

static ssize_t resp_parse_inline(char *buf, size_t len, const struct resp_limits *lim,
				 struct resp_cmd *cmd, const char **why)
{
	size_t scan = len < lim->inline_max ? len : lim->inline_max;
	char *nl = memchr(buf, '\n', scan);
	if (!nl) {
		if (len >= lim->inline_max) {
			*why = "ERR Protocol error: too big inline request";
			return -1;
		}
		return 0;
	}
	size_t end = (size_t)(nl - buf);
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	cmd->argc = 0;
	size_t i = 0;
	while (i < end) {
		while (i < end && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		if (i == end)
			break;
		size_t start = i;
		while (i < end && buf[i] != ' ' && buf[i] != '\t')
			i++;
		if (cmd->argc == lim->args_max) {
			*why = "ERR Protocol error: too many arguments";
			return -1;
		}
		cmd->argv[cmd->argc].p = buf + start;
		cmd->argv[cmd->argc].len = i - start;
		cmd->argc++;
	}
	return (ssize_t)(nl - buf) + 1;
}

static ssize_t resp_parse_multibulk(char *buf, size_t len, const struct resp_limits *lim,
				    struct resp_cmd *cmd, const char **why)
{
	int64_t count;
	ssize_t r = resp_line_int(buf, len, lim->inline_max, &count, why);
	if (r <= 0)
		return r;
	if (count > (int64_t)lim->args_max) {
		*why = "ERR Protocol error: invalid multibulk length";
		return -1;
	}
	size_t pos = (size_t)r;
	cmd->argc = 0;
	for (int64_t k = 0; k < count; k++) {
		if (pos >= len)
			return 0;
		if (buf[pos] != '$') {
			*why = "ERR Protocol error: expected '$'";
			return -1;
		}
		int64_t blen;
		r = resp_line_int(buf + pos, len - pos, lim->inline_max, &blen, why);
		if (r <= 0)
			return r;
		if (blen < 0 || (uint64_t)blen > lim->bulk_max) {
			*why = "ERR Protocol error: invalid bulk length";
			return -1;
		}
		pos += (size_t)r;
		if (len - pos < (size_t)blen + 2)
			return 0;
		if (buf[pos + blen] != '\r' || buf[pos + blen + 1] != '\n') {
			*why = "ERR Protocol error: bulk not followed by '\\r\\n'";
			return -1;
		}
		cmd->argv[cmd->argc].p = buf + pos;
		cmd->argv[cmd->argc].len = (size_t)blen;
		cmd->argc++;
		pos += (size_t)blen + 2;
	}
	return (ssize_t)pos;
}

ssize_t resp_parse(char *buf, size_t len, const struct resp_limits *lim, struct resp_cmd *cmd,
		   const char **why)
{
	if (len == 0)
		return 0;
	if (buf[0] == '*')
		return resp_parse_multibulk(buf, len, lim, cmd, why);
	return resp_parse_inline(buf, len, lim, cmd, why);
}

int resp_arg_is(const struct resp_arg *a, const char *word)
{
	size_t n = strlen(word);
	return a->len == n && strncasecmp(a->p, word, n) == 0;
}

int resp_arg_u64(const struct resp_arg *a, uint64_t *v)
{
	if (a->len == 0 || a->len > 19)
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < a->len; i++) {
		if (a->p[i] < '0' || a->p[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(a->p[i] - '0');
	}
	*v = x;
	return 0;
}

static size_t resp_put_fmt(char *dst, size_t cap, char type, int64_t v)
{
	int n = snprintf(dst, cap, "%c%lld\r\n", type, (long long)v);
	return (n < 0 || (size_t)n >= cap) ? 0 : (size_t)n;
}

size_t resp_put_bulk_hdr(char *dst, size_t cap, size_t len)
{
	return resp_put_fmt(dst, cap, '$', (int64_t)len);
}

size_t resp_put_array_hdr(char *dst, size_t cap, size_t n)
{
	return resp_put_fmt(dst, cap, '*', (int64_t)n);
}

size_t resp_put_int(char *dst, size_t cap, int64_t v)
{
	return resp_put_fmt(dst, cap, ':', v);
}

static size_t resp_put_line(char *dst, size_t cap, char type, const char *s)
{
	size_t n = strlen(s);
	if (n + 3 > cap)
		return 0;
	dst[0] = type;
	memcpy(dst + 1, s, n);
	dst[n + 1] = '\r';
	dst[n + 2] = '\n';
	return n + 3;
}

size_t resp_put_simple(char *dst, size_t cap, const char *s)
{
	return resp_put_line(dst, cap, '+', s);
}

size_t resp_put_error(char *dst, size_t cap, const char *s)
{
	return resp_put_line(dst, cap, '-', s);
}

size_t resp_put_nil(char *dst, size_t cap)
{
	return resp_put_fmt(dst, cap, '$', -1);
}

size_t resp_put_bulk(char *dst, size_t cap, const void *p, size_t len)
{
	size_t h = resp_put_bulk_hdr(dst, cap, len);
	if (h == 0 || cap - h < len + 2)
		return 0;
	memcpy(dst + h, p, len);
	dst[h + len] = '\r';
	dst[h + len + 1] = '\n';
	return h + len + 2;
}

/* Reads "<c><decimal>\r\n" at buf[*pos, len): 1 with *v, 0 if incomplete, -1 if not that. */
static int peek_line(const char *buf, size_t len, size_t *pos, char c, uint64_t max, uint64_t *v)
{
	size_t i = *pos;
	if (i >= len)
		return 0;
	if (buf[i++] != c)
		return -1;
	uint64_t x = 0;
	size_t digits = 0;
	for (; i < len && buf[i] >= '0' && buf[i] <= '9'; i++, digits++) {
		x = x * 10 + (uint64_t)(buf[i] - '0');
		if (x > max || digits > 19)
			return -1;
	}
	if (i >= len)
		return 0;
	if (!digits || buf[i] != '\r')
		return -1;
	if (i + 1 >= len)
		return 0;
	if (buf[i + 1] != '\n')
		return -1;
	*pos = i + 2;
	*v = x;
	return 1;
}

ssize_t resp_peek_set(const char *buf, size_t len, const struct resp_limits *lim,
		      struct resp_arg *key, uint64_t *vlen)
{
	size_t pos = 0;
	uint64_t n;
	int r;
	if ((r = peek_line(buf, len, &pos, '*', 3, &n)) <= 0)
		return r;
	if (n != 3)
		return -1;
	if ((r = peek_line(buf, len, &pos, '$', 3, &n)) <= 0)
		return r;
	if (n != 3)
		return -1;
	static const char set[] = "SET\r\n";
	for (int i = 0; i < 5; i++, pos++) {
		if (pos >= len)
			return 0;
		char ch = buf[pos];
		if (i < 3 && ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		if (ch != set[i])
			return -1;
	}
	uint64_t kl;
	if ((r = peek_line(buf, len, &pos, '$', lim->bulk_max, &kl)) <= 0)
		return r;
	if (len - pos < kl + 2)
		return 0;
	if (buf[pos + kl] != '\r' || buf[pos + kl + 1] != '\n')
		return -1;
	key->p = (char *)buf + pos;
	key->len = (size_t)kl;
	pos += kl + 2;
	if ((r = peek_line(buf, len, &pos, '$', lim->bulk_max, vlen)) <= 0)
		return r;
	return (ssize_t)pos;
}
