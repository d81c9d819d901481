/*
 * config.c - defaults, "name = value" parsing and validation of struct kvg_config.
 *
 * One table names every field once; kvg_config_set(), the config file parser and the CLI's
 * --set all go through it, so a name means the same everywhere.  Parsing is strict: unknown
 * names, bad numbers, trailing garbage and out-of-range values are refused with one line.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgrid.h"

enum field_type { F_U32, F_SIZE, F_BOOL, F_STR, F_ENUM };

struct field {
	const char *name;
	enum field_type type;
	size_t off;
	size_t str_size;     /* F_STR: buffer size */
	uint64_t min, max;   /* F_U32, F_SIZE */
	const char *const *names; /* F_ENUM: NULL-terminated; the value is the position */
};

static const char *const dtype_names[] = { "fp16", "bf16", "fp32", "fp8", "u8", NULL };
static const char *const hash_names[] = { "sha256", "xxh3", NULL };
static const char *const backend_names[] = { "auto", "uring", "psync", "fault", NULL };
static const char *const durability_names[] = { "cache", "durable", NULL };

#define OFF(f) offsetof(struct kvg_config, f)
#define U32(n, lo, hi) { #n, F_U32, OFF(n), 0, lo, hi, NULL }
#define SIZE(n, lo, hi) { #n, F_SIZE, OFF(n), 0, lo, hi, NULL }
#define BOOL(n) { #n, F_BOOL, OFF(n), 0, 0, 1, NULL }
#define STR(n) { #n, F_STR, OFF(n), sizeof(((struct kvg_config *)0)->n), 0, 0, NULL }
#define ENUM(n, t) { #n, F_ENUM, OFF(n), 0, 0, 0, t }

static const struct field fields[] = {
	STR(model_id),
	STR(tenant),
	ENUM(dtype, dtype_names),
	U32(layers, 0, 4096),
	U32(kv_heads, 0, 4096),
	U32(head_dim, 0, 65536),
	U32(block_tokens, 16, 1024),
	ENUM(hash, hash_names),
	SIZE(dram_bytes, 0, 1ull << 44),
	U32(chunk_bytes, 4096, 1u << 30),
	BOOL(hugepages),
	BOOL(mlock),
	STR(dir),
	SIZE(nvme_bytes, 0, 1ull << 50),
	SIZE(segment_bytes, 1u << 20, 1ull << 40),
	ENUM(io_backend, backend_names),
	U32(queue_depth, 1, 4096),
	U32(io_threads, 1, 64),
	ENUM(durability, durability_names),
	U32(io_error_limit, 1, 1u << 30),
	U32(degraded_retry_ms, 0, 1u << 30),
	STR(fault_plan),
	SIZE(max_blocks, 0, 1ull << 32),
	SIZE(max_value_bytes, 1, 1ull << 32),
	STR(policy),
	BOOL(demote_on_evict),
	BOOL(promote_on_hit),
	BOOL(nvme_admit_on_reuse),
	BOOL(write_through),
	SIZE(dram_free_bytes, 0, 1ull << 44),
	U32(req_max, 1, 1u << 20),
	U32(workers, 1, 256),
	STR(servers),
	STR(auth_token_file),
	U32(timeout_ms, 1, 1u << 30),
	STR(log_file),
	U32(log_level, 0, 3),
};

void kvg_config_init(struct kvg_config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->model_id, "unspecified");
	c->dtype = KVG_DTYPE_BF16;
	c->block_tokens = 256;
	c->hash = KVG_HASH_SHA256;
	c->dram_bytes = 1ull << 30;
	c->chunk_bytes = 256 << 10;
	c->hugepages = 1;
	c->nvme_bytes = 16ull << 30;
	c->segment_bytes = 256ull << 20;
	c->io_backend = KVG_IO_AUTO;
	c->queue_depth = 64;
	c->io_threads = 0; /* per backend: psync 8, uring 1 */
	c->durability = KVG_DURABILITY_CACHE;
	c->io_error_limit = 16;
	c->degraded_retry_ms = 5000;
	c->max_value_bytes = 64ull << 20;
	/* doc/POLICIES.md: never below LRU on the traces, the best online policy at 11 of 12
	 * points, and it learns from session hints (KVG_STORE_CONTINUES / _LAST) when given */
	strcpy(c->policy, "density");
	c->demote_on_evict = 1;
	c->promote_on_hit = 1;
	c->req_max = 1024;
	c->workers = 2;
	c->timeout_ms = 5000;
	c->log_level = 1;
}

static int fail(char *err, size_t len, const char *fmt, const char *a, const char *b)
{
	if (err && len)
		snprintf(err, len, fmt, a, b);
	return KVG_ECONFIG;
}

static int parse_u64(const char *s, int sizes, uint64_t *out);

int kvg_parse_size(const char *s, uint64_t *out)
{
	return s && out && parse_u64(s, 1, out) == 0 ? 0 : KVG_ECONFIG;
}

static int parse_u64(const char *s, int sizes, uint64_t *out)
{
	char *end;
	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s)) /* strtoull takes signs */
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (end == s || errno)
		return -1;
	int shift = 0;
	if (sizes) {
		switch (*end) {
		case 'k': case 'K': shift = 10; end++; break;
		case 'm': case 'M': shift = 20; end++; break;
		case 'g': case 'G': shift = 30; end++; break;
		case 't': case 'T': shift = 40; end++; break;
		}
		if (shift && *end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
	}
	if (*end)
		return -1;
	if (shift && v > (~0ull >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int set_field(struct kvg_config *c, const struct field *f, const char *v, char *err,
		     size_t len)
{
	char *base = (char *)c + f->off;
	uint64_t n;
	switch (f->type) {
	case F_STR:
		if (strlen(v) >= f->str_size)
			return fail(err, len, "%s: value too long", f->name, NULL);
		strcpy(base, v);
		return 0;
	case F_BOOL:
		if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
			*(int *)base = 1;
		else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") ||
			 !strcmp(v, "off"))
			*(int *)base = 0;
		else
			return fail(err, len, "%s: expected a boolean, got '%s'", f->name, v);
		return 0;
	case F_ENUM:
		for (uint32_t i = 0; f->names[i]; i++)
			if (!strcmp(v, f->names[i])) {
				*(uint32_t *)base = i;
				return 0;
			}
		return fail(err, len, "%s: unknown value '%s'", f->name, v);
	case F_U32:
	case F_SIZE:
		if (parse_u64(v, f->type == F_SIZE, &n))
			return fail(err, len, "%s: expected a number, got '%s'", f->name, v);
		if (n < f->min || n > f->max)
			return fail(err, len, "%s: %s is out of range", f->name, v);
		if (f->type == F_U32)
			*(uint32_t *)base = (uint32_t)n;
		else
			*(uint64_t *)base = n;
		return 0;
	}
	return KVG_ECONFIG;
}

int kvg_config_set(struct kvg_config *c, const char *name, const char *value, char *err,
		   size_t err_len)
{
	if (!name || !value)
		return fail(err, err_len, "missing name or value%s%s", "", "");
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!strcmp(fields[i].name, name))
			return set_field(c, &fields[i], value, err, err_len);
	return fail(err, err_len, "unknown setting '%s'%s", name, "");
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

int kvg_config_load(struct kvg_config *c, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		if (err)
			snprintf(err, err_len, "%s: %s", path, strerror(e));
		return -e;
	}
	char line[8192], why[512];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			snprintf(why, sizeof(why), "line too long");
			rc = KVG_ECONFIG;
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(why, sizeof(why), "expected 'name = value'");
			rc = KVG_ECONFIG;
			break;
		}
		*eq = 0;
		rc = kvg_config_set(c, trim(s), trim(eq + 1), why, sizeof(why));
		if (rc)
			break;
	}
	fclose(f);
	if (rc && err)
		snprintf(err, err_len, "%s:%d: %s", path, lineno, why);
	return rc;
}

static uint32_t dtype_bytes(uint32_t dtype)
{
	switch (dtype) {
	case KVG_DTYPE_FP16: case KVG_DTYPE_BF16: return 2;
	case KVG_DTYPE_FP32: return 4;
	default: return 1;
	}
}

uint64_t kvg_config_block_bytes(const struct kvg_config *c)
{
	return (uint64_t)c->layers * 2 * c->block_tokens * c->kv_heads * c->head_dim *
	       dtype_bytes(c->dtype);
}
