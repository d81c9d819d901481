/*
 * config.c - defaults, "name = value" parsing and validation of struct kvg_config.
 *
 * One table names every field once; kvg_config_set(), the config file parser and the CLI's
 * --set all go through it, so a name means the same everywhere.  Parsing is strict: unknown
 * names, bad numbers, trailing garbage and out-of-range values are refused with one line.
 *
 * The struct is part of the ABI and grows only at its end (kvgrid.h says why): every
 * function here reads or writes a field only when it lies within cfg->size, and
 * config_import() is the one place where a program's struct, of whatever size, becomes the
 * library's own.  A field appended later needs only its line in fields[] and its default.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "config.h"
#include "err.h"
#include "kvgrid.h"

enum field_type { F_U32, F_SIZE, F_BOOL, F_STR, F_ENUM };

struct field {
	const char *name;
	enum field_type type;
	size_t off;
	size_t size;		  /* bytes of the field in the struct (F_STR: its buffer) */
	uint64_t min, max;	  /* F_U32, F_SIZE */
	const char *const *names; /* F_ENUM: NULL-terminated; the value is the position */
};

static const char *const dtype_names[] = {"fp16", "bf16", "fp32", "fp8", "u8", NULL};
static const char *const hash_names[] = {"sha256", "xxh3", NULL};
static const char *const backend_names[] = {"auto", "uring", "psync", "fault", NULL};
static const char *const durability_names[] = {"cache", "durable", NULL};

#define OFF(f) offsetof(struct kvg_config, f)
#define SZ(f)  sizeof(((struct kvg_config *)0)->f)
#define U32(n, lo, hi)                                                                             \
	{                                                                                          \
#n, F_U32, OFF(n), SZ(n), lo, hi, NULL                                             \
	}
#define SIZE(n, lo, hi)                                                                            \
	{                                                                                          \
#n, F_SIZE, OFF(n), SZ(n), lo, hi, NULL                                            \
	}
#define BOOL(n)                                                                                    \
	{                                                                                          \
#n, F_BOOL, OFF(n), SZ(n), 0, 1, NULL                                              \
	}
#define STR(n)                                                                                     \
	{                                                                                          \
#n, F_STR, OFF(n), SZ(n), 0, 0, NULL                                               \
	}
#define ENUM(n, t)                                                                                 \
	{                                                                                          \
#n, F_ENUM, OFF(n), SZ(n), 0, 0, t                                                 \
	}

/* set_field() stores F_U32 and F_ENUM as uint32_t and F_BOOL as int, whichever the field
 * is declared as (log_level is an int) */
_Static_assert(sizeof(int) == sizeof(uint32_t), "config fields of 4 bytes");

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
    STR(shared_dir),
    SIZE(shared_bytes, 0, 1ull << 60),
    SIZE(shared_tenant_bytes, 0, 1ull << 60),
    BOOL(shared_write_through),
    BOOL(shared_sync),
    U32(shared_threads, 1, 256),
    U32(shared_grace_s, 1, 1u << 30),
    U32(shared_touch_s, 0, 1u << 30),
    U32(shared_refresh_ms, 0, 1u << 30),
    U32(shared_cache_ms, 0, 1u << 30),
    BOOL(shared_demote),
};

static void config_defaults(struct kvg_config *c)
{
	memset(c, 0, sizeof(*c));
	c->size = sizeof(*c);
	strcpy(c->model_id, "unspecified");
	c->dtype = KVG_DTYPE_BF16;
	c->block_tokens = 256;
	c->hash = KVG_HASH_SHA256;
	c->dram_bytes = 1ull << 30;
	c->chunk_bytes = 256 << 10;
	c->hugepages = 1;
	c->nvme_bytes = 0; /* automatic: half the room on dir's filesystem, at most 16 GiB */
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
	c->shared_write_through = 1;
	c->shared_sync = 1;
	c->shared_threads = 8;
	c->shared_grace_s = 600;
	c->shared_touch_s = 60;
	c->shared_refresh_ms = 200;
	c->shared_cache_ms = 5000;
}

/* ---- the struct's size: programs built against other versions of kvgrid.h ------------- */

#define FIELD_COUNT (sizeof(fields) / sizeof(fields[0]))

int kvg_config_init_size(struct kvg_config *c, size_t size)
{
	if (!c || size < sizeof(c->size) || size > UINT32_MAX)
		return KVG_ECONFIG;
	struct kvg_config d;
	config_defaults(&d);
	size_t known = size < sizeof(d) ? size : sizeof(d);
	memcpy(c, &d, known);
	memset((char *)c + known, 0, size - known); /* fields of a newer kvgrid.h: left zero */
	c->size = (uint32_t)size;
	return 0;
}

/* True when the whole field lies within the first size bytes of the struct. */
static int field_within(const struct field *f, size_t size)
{
	return f->off + f->size <= size;
}

int config_import(struct kvg_config *dst, const struct kvg_config *src, char *err, size_t err_len)
{
	size_t size = src->size; /* every version of the struct starts with it */
	if (size < sizeof(src->size))
		return err_set(err, err_len, KVG_ECONFIG,
			       "struct kvg_config: size is %zu: not set by kvg_config_init()",
			       size);
	if (size > sizeof(*dst)) {
		const unsigned char *tail = (const unsigned char *)src;
		for (size_t i = sizeof(*dst); i < size; i++)
			if (tail[i])
				return err_set(err, err_len, KVG_ECONFIG,
					       "struct kvg_config: the program's has %zu bytes and "
					       "sets byte %zu, past the %zu this libkvgrid knows "
					       "(built against a newer kvgrid.h?)",
					       size, i, sizeof(*dst));
		size = sizeof(*dst);
	}
	config_defaults(dst);
	memcpy(dst, src, size);
	/* a field cut by size is one the program does not have: its default stands */
	struct kvg_config d;
	config_defaults(&d);
	for (size_t i = 0; i < FIELD_COUNT; i++)
		if (fields[i].off < size && !field_within(&fields[i], size))
			memcpy((char *)dst + fields[i].off, (char *)&d + fields[i].off,
			       fields[i].size);
	dst->size = (uint32_t)size;
	return 0;
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
		case 'k':
		case 'K':
			shift = 10;
			end++;
			break;
		case 'm':
		case 'M':
			shift = 20;
			end++;
			break;
		case 'g':
		case 'G':
			shift = 30;
			end++;
			break;
		case 't':
		case 'T':
			shift = 40;
			end++;
			break;
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
		if (strlen(v) >= f->size)
			return err_set(err, len, KVG_ECONFIG, "%s: value too long", f->name);
		strcpy(base, v);
		return 0;
	case F_BOOL:
		if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
			*(int *)base = 1;
		else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") ||
			 !strcmp(v, "off"))
			*(int *)base = 0;
		else
			return err_set(err, len, KVG_ECONFIG, "%s: expected a boolean, got '%s'",
				       f->name, v);
		return 0;
	case F_ENUM:
		for (uint32_t i = 0; f->names[i]; i++)
			if (!strcmp(v, f->names[i])) {
				*(uint32_t *)base = i;
				return 0;
			}
		return err_set(err, len, KVG_ECONFIG, "%s: unknown value '%s'", f->name, v);
	case F_U32:
	case F_SIZE:
		if (parse_u64(v, f->type == F_SIZE, &n))
			return err_set(err, len, KVG_ECONFIG, "%s: expected a number, got '%s'",
				       f->name, v);
		if (n < f->min || n > f->max)
			return err_set(err, len, KVG_ECONFIG, "%s: %s is out of range", f->name, v);
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
		return err_set(err, err_len, KVG_ECONFIG, "missing name or value");
	for (size_t i = 0; i < FIELD_COUNT; i++) {
		if (strcmp(fields[i].name, name))
			continue;
		if (!field_within(&fields[i], c->size))
			return err_set(err, err_len, KVG_ECONFIG,
				       "%s: not in this program's struct kvg_config (%u bytes)%s",
				       name, c->size,
				       c->size ? "" : ": call kvg_config_init() first");
		return set_field(c, &fields[i], value, err, err_len);
	}
	return err_set(err, err_len, KVG_ECONFIG, "unknown setting '%s'", name);
}

static int config_conf_set(void *ctx, const char *name, const char *value, char *why,
			   size_t why_len)
{
	return kvg_config_set(ctx, name, value, why, why_len);
}

int kvg_config_load(struct kvg_config *c, const char *path, char *err, size_t err_len)
{
	return conf_load(path, config_conf_set, c, err, err_len);
}

static uint32_t dtype_bytes(uint32_t dtype)
{
	switch (dtype) {
	case KVG_DTYPE_FP16:
	case KVG_DTYPE_BF16:
		return 2;
	case KVG_DTYPE_FP32:
		return 4;
	default:
		return 1;
	}
}

uint64_t kvg_config_block_bytes(const struct kvg_config *c)
{
	return (uint64_t)c->layers * 2 * c->block_tokens * c->kv_heads * c->head_dim *
	       dtype_bytes(c->dtype);
}
