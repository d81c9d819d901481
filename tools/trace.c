/*
 * trace.c - reads Mooncake-format JSONL traces (see trace.h).
 *
 * The parser is a small hand-written scanner for the one shape a trace line has: a flat
 * JSON object whose values are numbers, arrays of numbers, strings, booleans or null.
 * Unknown keys are skipped, so traces with extra fields load; the four known keys must
 * hold non-negative integers.  Every rejection names what was wrong so that a user can fix
 * the line the error points at.  Dense ids come from an open-addressing table of raw ids,
 * grown by doubling while loading (load time is not a hot path).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

#define TRACE_LINE_IDS_MAX (1u << 20) /* ids in one line: 512M tokens at 512 per id */

struct trace_scan {
	const char *p;
	const char *end;
	char *err;
	size_t err_len;
};

static int scan_fail(struct trace_scan *s, const char *what)
{
	if (s->err && s->err_len)
		snprintf(s->err, s->err_len, "%s", what);
	return -EINVAL;
}

static void scan_ws(struct trace_scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n'))
		s->p++;
}

static int scan_char(struct trace_scan *s, char c)
{
	scan_ws(s);
	if (s->p >= s->end || *s->p != c)
		return 0;
	s->p++;
	return 1;
}

/* A JSON string; copies at most cap-1 bytes of it (escapes kept raw) into out. */
static int scan_string(struct trace_scan *s, char *out, size_t cap)
{
	size_t n = 0;
	if (!scan_char(s, '"'))
		return scan_fail(s, "expected a string");
	while (s->p < s->end && *s->p != '"') {
		if (*s->p == '\\' && s->p + 1 < s->end)
			s->p++;
		if (n + 1 < cap)
			out[n++] = *s->p;
		s->p++;
	}
	if (s->p >= s->end)
		return scan_fail(s, "unterminated string");
	s->p++;
	out[n] = 0;
	return 0;
}

/* A non-negative integer (a JSON number without sign, fraction or exponent). */
static int scan_uint(struct trace_scan *s, uint64_t *v, const char *what)
{
	char msg[96];
	uint64_t x = 0;
	scan_ws(s);
	const char *start = s->p;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		unsigned d = (unsigned)(*s->p - '0');
		if (x > (UINT64_MAX - d) / 10) {
			snprintf(msg, sizeof(msg), "%s: number too large", what);
			return scan_fail(s, msg);
		}
		x = x * 10 + d;
		s->p++;
	}
	if (s->p == start || (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'))) {
		snprintf(msg, sizeof(msg), "%s: expected a non-negative integer", what);
		return scan_fail(s, msg);
	}
	*v = x;
	return 0;
}

/* Skips any scalar or array value of a key we do not use. */
static int scan_skip_value(struct trace_scan *s)
{
	char tmp[2];
	int depth = 0;
	scan_ws(s);
	do {
		if (s->p >= s->end)
			return scan_fail(s, "unexpected end of line");
		char c = *s->p;
		if (c == '"') {
			int rc = scan_string(s, tmp, sizeof(tmp));
			if (rc)
				return rc;
		} else if (c == '[' || c == '{') {
			depth++;
			s->p++;
		} else if (c == ']' || c == '}') {
			if (depth == 0)
				return scan_fail(s, "unbalanced brackets");
			depth--;
			s->p++;
		} else if (c == ',' && depth == 0) {
			break;
		} else {
			s->p++;
		}
		scan_ws(s);
	} while (depth > 0 || (s->p < s->end && *s->p != ',' && *s->p != '}'));
	return 0;
}

static int scan_ids(struct trace_scan *s, uint64_t *ids, size_t max_ids, size_t *n_ids)
{
	size_t n = 0;
	if (!scan_char(s, '['))
		return scan_fail(s, "hash_ids: expected an array");
	if (!scan_char(s, ']')) {
		do {
			uint64_t v;
			int rc = scan_uint(s, &v, "hash_ids");
			if (rc)
				return rc;
			if (n < max_ids)
				ids[n] = v;
			n++;
		} while (scan_char(s, ','));
		if (!scan_char(s, ']'))
			return scan_fail(s, "hash_ids: expected ',' or ']'");
	}
	*n_ids = n;
	return 0;
}

int trace_parse_line(const char *line, size_t len, struct trace_req *req, uint64_t *ids,
		     size_t max_ids, size_t *n_ids, char *err, size_t err_len)
{
	struct trace_scan s = {line, line + len, err, err_len};
	enum { HAVE_TS = 1, HAVE_IN = 2, HAVE_OUT = 4, HAVE_IDS = 8 };
	unsigned have = 0;
	char key[32];
	uint64_t v;
	int rc;

	memset(req, 0, sizeof(*req));
	*n_ids = 0;
	if (!scan_char(&s, '{'))
		return scan_fail(&s, "expected a JSON object");
	if (!scan_char(&s, '}')) {
		do {
			if ((rc = scan_string(&s, key, sizeof(key))))
				return rc;
			if (!scan_char(&s, ':'))
				return scan_fail(&s, "expected ':' after a key");
			if (!strcmp(key, "timestamp")) {
				rc = scan_uint(&s, &req->timestamp_ms, "timestamp");
				have |= HAVE_TS;
			} else if (!strcmp(key, "input_length") || !strcmp(key, "output_length")) {
				int in = key[0] == 'i';
				rc = scan_uint(&s, &v, key);
				if (!rc && v > UINT32_MAX)
					return scan_fail(&s, in ? "input_length: too large"
								: "output_length: too large");
				if (in)
					req->input_length = (uint32_t)v;
				else
					req->output_length = (uint32_t)v;
				have |= in ? HAVE_IN : HAVE_OUT;
			} else if (!strcmp(key, "hash_ids")) {
				rc = scan_ids(&s, ids, max_ids, n_ids);
				have |= HAVE_IDS;
			} else {
				rc = scan_skip_value(&s);
			}
			if (rc)
				return rc;
		} while (scan_char(&s, ','));
		if (!scan_char(&s, '}'))
			return scan_fail(&s, "expected ',' or '}'");
	}
	scan_ws(&s);
	if (s.p != s.end)
		return scan_fail(&s, "trailing characters after the object");
	if (!(have & HAVE_IDS))
		return scan_fail(&s, "missing hash_ids");
	if (!(have & HAVE_IN))
		return scan_fail(&s, "missing input_length");
	if (!(have & HAVE_TS))
		return scan_fail(&s, "missing timestamp");
	if (*n_ids > max_ids)
		return -E2BIG;
	req->n_blocks = (uint32_t)*n_ids;
	return 0;
}

/* ---- loading: dense ids and growing arrays ------------------------------------------ */

struct trace_map {
	uint64_t *keys;
	uint32_t *vals; /* UINT32_MAX: empty */
	size_t cap;	/* power of two */
	size_t count;
};

static uint64_t map_hash(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

static int map_init(struct trace_map *m, size_t cap)
{
	m->cap = cap;
	m->count = 0;
	m->keys = malloc(cap * sizeof(*m->keys));
	m->vals = malloc(cap * sizeof(*m->vals));
	if (!m->keys || !m->vals) {
		free(m->keys);
		free(m->vals);
		return -ENOMEM;
	}
	memset(m->vals, 0xff, cap * sizeof(*m->vals));
	return 0;
}

static void map_free(struct trace_map *m)
{
	free(m->keys);
	free(m->vals);
}

static uint32_t *map_slot(struct trace_map *m, uint64_t key)
{
	size_t i = map_hash(key) & (m->cap - 1);
	while (m->vals[i] != UINT32_MAX && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	m->keys[i] = key;
	return &m->vals[i];
}

/* The dense id of raw, assigning the next one on first sight. */
static int map_get(struct trace_map *m, uint64_t raw, uint32_t *dense)
{
	if ((m->count + 1) * 2 > m->cap) {
		struct trace_map bigger;
		int rc = map_init(&bigger, m->cap * 2);
		if (rc)
			return rc;
		for (size_t i = 0; i < m->cap; i++)
			if (m->vals[i] != UINT32_MAX)
				*map_slot(&bigger, m->keys[i]) = m->vals[i];
		bigger.count = m->count;
		map_free(m);
		*m = bigger;
	}
	uint32_t *v = map_slot(m, raw);
	if (*v == UINT32_MAX) {
		if (m->count >= UINT32_MAX - 1)
			return -E2BIG;
		*v = (uint32_t)m->count++;
	}
	*dense = *v;
	return 0;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 1024;
	while (c < need)
		c *= 2;
	void *p = realloc(*arr, c * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

static int trace_add(struct trace *t, struct trace_map *m, const struct trace_req *rq,
		     const uint64_t *ids, size_t n, size_t caps[3])
{
	int rc;
	if ((rc = grow((void **)&t->reqs, &caps[0], t->n_reqs + 1, sizeof(*t->reqs))))
		return rc;
	if ((rc = grow((void **)&t->raw_ids, &caps[1], t->n_ids + n, sizeof(*t->raw_ids))))
		return rc;
	if ((rc = grow((void **)&t->ids, &caps[2], t->n_ids + n, sizeof(*t->ids))))
		return rc;
	struct trace_req *r = &t->reqs[t->n_reqs++];
	*r = *rq;
	r->first = (uint32_t)t->n_ids;
	for (size_t i = 0; i < n; i++) {
		uint32_t d;
		if ((rc = map_get(m, ids[i], &d)))
			return rc;
		t->raw_ids[t->n_ids] = ids[i];
		t->ids[t->n_ids++] = d;
	}
	t->input_tokens += rq->input_length;
	t->n_distinct = (uint32_t)m->count;
	return 0;
}

int trace_load(const char *path, const struct trace_opts *opts, struct trace *t, char *err,
	       size_t err_len)
{
	struct trace_opts o = opts ? *opts : (struct trace_opts){0};
	struct trace_map m;
	uint64_t *line_ids = NULL;
	char *line = NULL, why[160];
	size_t line_cap = 0, caps[3] = {0, 0, 0}, lineno = 0;
	ssize_t len;
	int rc;

	memset(t, 0, sizeof(*t));
	t->block_tokens = o.block_tokens ? o.block_tokens : 512;
	FILE *f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if ((rc = map_init(&m, 1 << 16)))
		goto out_close;
	line_ids = malloc(TRACE_LINE_IDS_MAX * sizeof(*line_ids));
	if (!line_ids) {
		rc = -ENOMEM;
		goto out_map;
	}
	while ((len = getline(&line, &line_cap, f)) >= 0) {
		struct trace_req rq;
		size_t n;
		lineno++;
		size_t k = 0;
		while (k < (size_t)len &&
		       (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n'))
			k++;
		if (k == (size_t)len)
			continue;
		rc = trace_parse_line(line, (size_t)len, &rq, line_ids, TRACE_LINE_IDS_MAX, &n, why,
				      sizeof(why));
		if (rc == -E2BIG)
			snprintf(why, sizeof(why), "more than %u hash_ids", TRACE_LINE_IDS_MAX);
		if (rc && o.skip_bad) {
			if (!t->skipped++)
				t->first_bad_line = lineno;
			continue;
		}
		if (rc) {
			snprintf(err, err_len, "%s:%zu: %s", path, lineno, why);
			rc = -EINVAL;
			goto out_free;
		}
		if ((rc = trace_add(t, &m, &rq, line_ids, n, caps)))
			goto out_nomem;
		if (o.max_reqs && t->n_reqs >= o.max_reqs)
			break;
	}
	if (ferror(f)) {
		rc = -EIO;
		snprintf(err, err_len, "%s: read error", path);
		goto out_free;
	}
	rc = 0;
	goto out_line;
out_nomem:
	snprintf(err, err_len, "%s:%zu: out of memory", path, lineno);
out_free:
	free(t->reqs);
	free(t->ids);
	free(t->raw_ids);
	memset(t, 0, sizeof(*t));
out_line:
	free(line);
	free(line_ids);
out_map:
	map_free(&m);
out_close:
	fclose(f);
	return rc;
}

void trace_free(struct trace *t)
{
	free(t->reqs);
	free(t->ids);
	free(t->raw_ids);
	memset(t, 0, sizeof(*t));
}
