/*
 * safetensors.c - reads and writes safetensors files (format in safetensors.h).
 *
 * The header is parsed by a small JSON reader that accepts exactly what a safetensors header
 * may contain (objects, strings, integers, arrays, and any value under keys it ignores) and
 * rejects the rest with the byte offset where it stopped.  Every tensor's offsets are checked
 * against its dtype and shape and against the file's size before a byte of data is read, so
 * a truncated download is reported as such rather than as garbage weights.
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvdtype.h"

#define HEADER_MAX (64u << 20)

/* ---- the JSON subset ------------------------------------------------------------------- */

struct js {
	const char *p, *start, *end;
};

static void ws(struct js *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int eat(struct js *j, char c)
{
	ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return 0;
	}
	return -1;
}

/* A string into out (escapes kept as the escaped character; \uXXXX as '?'). */
static int str(struct js *j, char *out, size_t cap)
{
	size_t n = 0;
	if (eat(j, '"'))
		return -1;
	while (j->p < j->end && *j->p != '"') {
		char c = *j->p++;
		if (c == '\\') {
			if (j->p >= j->end)
				return -1;
			c = *j->p++;
			if (c == 'u') {
				if (j->end - j->p < 4)
					return -1;
				j->p += 4;
				c = '?';
			}
		}
		if (n + 1 >= cap)
			return -1;
		out[n++] = c;
	}
	if (j->p >= j->end)
		return -1;
	j->p++;
	out[n] = 0;
	return 0;
}

static int u64(struct js *j, uint64_t *v)
{
	ws(j);
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return -1;
	uint64_t x = 0;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*j->p++ - '0');
	}
	*v = x;
	return 0;
}

static int u64_array(struct js *j, uint64_t *v, uint32_t max, uint32_t *n)
{
	*n = 0;
	if (eat(j, '['))
		return -1;
	if (!eat(j, ']'))
		return 0;
	do {
		if (*n >= max || u64(j, &v[*n]))
			return -1;
		(*n)++;
	} while (!eat(j, ','));
	return eat(j, ']');
}

static int skip_value(struct js *j, int depth)
{
	char tmp[256];
	ws(j);
	if (j->p >= j->end || depth > 16)
		return -1;
	char c = *j->p;
	if (c == '"') {
		/* long strings are fine to skip: scan without copying */
		j->p++;
		while (j->p < j->end && *j->p != '"')
			j->p += *j->p == '\\' ? 2 : 1;
		return j->p < j->end ? (j->p++, 0) : -1;
	}
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		j->p++;
		if (!eat(j, close))
			return 0;
		do {
			if (c == '{' && (str(j, tmp, sizeof(tmp)) || eat(j, ':')))
				return -1;
			if (skip_value(j, depth + 1))
				return -1;
		} while (!eat(j, ','));
		return eat(j, close);
	}
	/* number, true, false, null */
	const char *s = j->p;
	while (j->p < j->end && !strchr(",}] \t\r\n", *j->p))
		j->p++;
	return j->p > s ? 0 : -1;
}

static int tensor_entry(struct js *j, struct llm_st_tensor *t)
{
	char key[64];
	int have = 0;
	if (eat(j, '{'))
		return -1;
	if (!eat(j, '}'))
		return -1;
	do {
		if (str(j, key, sizeof(key)) || eat(j, ':'))
			return -1;
		uint64_t off[2];
		uint32_t n;
		if (!strcmp(key, "dtype")) {
			if (str(j, t->dtype, sizeof(t->dtype)))
				return -1;
			have |= 1;
		} else if (!strcmp(key, "shape")) {
			if (u64_array(j, t->shape, LLM_ST_NDIM_MAX, &t->ndim))
				return -1;
			have |= 2;
		} else if (!strcmp(key, "data_offsets")) {
			if (u64_array(j, off, 2, &n) || n != 2)
				return -1;
			t->begin = off[0];
			t->end = off[1];
			have |= 4;
		} else if (skip_value(j, 1)) {
			return -1;
		}
	} while (!eat(j, ','));
	return eat(j, '}') || have != 7 ? -1 : 0;
}

static size_t dtype_esize(const char *dt)
{
	if (!strcmp(dt, "F32"))
		return 4;
	if (!strcmp(dt, "F16") || !strcmp(dt, "BF16"))
		return 2;
	return 0;
}

/* Parses the header into st->t; returns 0 or -EBADMSG with the offset of the problem. */
static int parse_header(struct llm_st_file *st, const char *h, size_t len, const char *path,
			char *err, size_t err_len)
{
	struct js j = {h, h, h + len};
	size_t cap = 64;
	st->t = calloc(cap, sizeof(*st->t));
	if (!st->t)
		return -ENOMEM;
	if (eat(&j, '{'))
		goto bad;
	if (!eat(&j, '}'))
		goto done;
	do {
		char name[LLM_ST_NAME_MAX];
		if (str(&j, name, sizeof(name)) || eat(&j, ':'))
			goto bad;
		if (!strcmp(name, "__metadata__")) {
			if (skip_value(&j, 1))
				goto bad;
			continue;
		}
		if (st->count == cap) {
			struct llm_st_tensor *nt = realloc(st->t, 2 * cap * sizeof(*nt));
			if (!nt)
				return -ENOMEM;
			st->t = nt;
			cap *= 2;
		}
		struct llm_st_tensor *t = &st->t[st->count];
		memset(t, 0, sizeof(*t));
		snprintf(t->name, sizeof(t->name), "%s", name);
		if (tensor_entry(&j, t))
			goto bad;
		st->count++;
	} while (!eat(&j, ','));
	if (eat(&j, '}'))
		goto bad;
done:
	return 0;
bad:
	if (err)
		snprintf(err, err_len, "%s: malformed safetensors header near byte %zu", path,
			 (size_t)(j.p - j.start) + 8);
	return -EBADMSG;
}

/* Offsets inside the data section and consistent with dtype and shape. */
static int check_tensors(const struct llm_st_file *st, const char *path, char *err, size_t err_len)
{
	uint64_t data_bytes = st->file_bytes - st->data_start;
	for (size_t i = 0; i < st->count; i++) {
		const struct llm_st_tensor *t = &st->t[i];
		uint64_t numel = 1;
		for (uint32_t k = 0; k < t->ndim; k++)
			numel *= t->shape[k];
		size_t es = dtype_esize(t->dtype);
		if (t->end < t->begin || (es && t->end - t->begin != numel * es)) {
			if (err)
				snprintf(err, err_len,
					 "%s: tensor %s: data_offsets [%llu, %llu) do not "
					 "match its dtype %s and shape",
					 path, t->name, (unsigned long long)t->begin,
					 (unsigned long long)t->end, t->dtype);
			return -EBADMSG;
		}
		if (t->end > data_bytes) {
			if (err)
				snprintf(err, err_len,
					 "%s: truncated: tensor %s needs data bytes up to "
					 "%llu, the file has %llu",
					 path, t->name, (unsigned long long)t->end,
					 (unsigned long long)data_bytes);
			return -EBADMSG;
		}
	}
	return 0;
}

int llm_st_open(const char *path, struct llm_st_file *st, char *err, size_t err_len)
{
	memset(st, 0, sizeof(*st));
	st->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (st->fd < 0) {
		int rc = -errno;
		if (err)
			snprintf(err, err_len, "%s: %s", path, strerror(-rc));
		return rc;
	}
	struct stat sb;
	uint8_t lenb[8];
	char *h = NULL;
	int rc = fstat(st->fd, &sb) ? -errno : 0;
	if (rc)
		goto out_close;
	st->file_bytes = (uint64_t)sb.st_size;
	uint64_t hlen = 0;
	if (st->file_bytes < 8 || pread(st->fd, lenb, 8, 0) != 8)
		goto truncated;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | lenb[i];
	if (hlen > HEADER_MAX || hlen < 2) {
		if (err)
			snprintf(err, err_len, "%s: not a safetensors file (header length %llu)",
				 path, (unsigned long long)hlen);
		rc = -EBADMSG;
		goto out_close;
	}
	if (hlen > st->file_bytes - 8)
		goto truncated;
	st->data_start = 8 + hlen;
	h = malloc(hlen);
	if (!h) {
		rc = -ENOMEM;
		goto out_close;
	}
	if (pread(st->fd, h, hlen, 8) != (ssize_t)hlen) {
		free(h);
		goto truncated;
	}
	rc = parse_header(st, h, hlen, path, err, err_len);
	free(h);
	if (!rc)
		rc = check_tensors(st, path, err, err_len);
	if (rc)
		goto out_close;
	return 0;
truncated:
	if (err)
		snprintf(err, err_len, "%s: truncated: the file ends inside its header", path);
	rc = -EBADMSG;
out_close:
	llm_st_close(st);
	return rc;
}

void llm_st_close(struct llm_st_file *st)
{
	if (st->fd > 0)
		close(st->fd);
	free(st->t);
	memset(st, 0, sizeof(*st));
	st->fd = -1;
}

const struct llm_st_tensor *llm_st_find(const struct llm_st_file *st, const char *name)
{
	for (size_t i = 0; i < st->count; i++)
		if (!strcmp(st->t[i].name, name))
			return &st->t[i];
	return NULL;
}

/* ---- loading a model ------------------------------------------------------------------- */

static int read_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EBADMSG;
		p += r, len -= (size_t)r, off += (uint64_t)r;
	}
	return 0;
}

/* Reads a tensor's values, widened to fp32, into dst[n]. */
static int read_tensor(const struct llm_st_file *st, const struct llm_st_tensor *t, float *dst,
		       uint64_t n)
{
	uint64_t off = st->data_start + t->begin;
	if (!strcmp(t->dtype, "F32"))
		return read_full(st->fd, dst, n * 4, off);
	uint16_t buf[8192];
	int bf = !strcmp(t->dtype, "BF16");
	for (uint64_t i = 0; i < n;) {
		size_t cnt = n - i < 8192 ? (size_t)(n - i) : 8192;
		int rc = read_full(st->fd, buf, cnt * 2, off + i * 2);
		if (rc)
			return rc;
		for (size_t k = 0; k < cnt; k++)
			dst[i + k] = bf ? llm_bf16_to_f32(buf[k]) : llm_f16_to_f32(buf[k]);
		i += cnt;
	}
	return 0;
}

static void shape_str(char *out, size_t cap, const uint64_t *s, uint32_t nd)
{
	size_t o = (size_t)snprintf(out, cap, "[");
	for (uint32_t k = 0; k < nd && o < cap; k++)
		o += (size_t)snprintf(out + o, cap - o, "%s%llu", k ? ", " : "",
				      (unsigned long long)s[k]);
	if (o < cap)
		snprintf(out + o, cap - o, "]");
}

/* Finds name, checks its shape is [rows, cols] (cols 0: [rows]) and reads it into dst. */
static int load_one(const struct llm_st_file *st, const char *path, const char *name, float *dst,
		    uint64_t rows, uint64_t cols, char *err, size_t err_len)
{
	const struct llm_st_tensor *t = llm_st_find(st, name);
	if (!t) {
		if (err)
			snprintf(err, err_len, "%s: missing tensor %s", path, name);
		return -ENOENT;
	}
	uint64_t want[2] = {rows, cols};
	uint32_t nd = cols ? 2 : 1;
	if (t->ndim != nd || t->shape[0] != rows || (cols && t->shape[1] != cols)) {
		char got[96], exp[96];
		shape_str(got, sizeof(got), t->shape, t->ndim);
		shape_str(exp, sizeof(exp), want, nd);
		if (err)
			snprintf(err, err_len, "%s: tensor %s has shape %s, expected %s", path,
				 name, got, exp);
		return -EINVAL;
	}
	if (!dtype_esize(t->dtype)) {
		if (err)
			snprintf(err, err_len,
				 "%s: tensor %s has dtype %s; F32, F16 or BF16 expected", path,
				 name, t->dtype);
		return -EINVAL;
	}
	int rc = read_tensor(st, t, dst, rows * (cols ? cols : 1));
	if (rc && err)
		snprintf(err, err_len, "%s: tensor %s: read failed: %s", path, name, strerror(-rc));
	return rc;
}

struct slot {
	char name[LLM_ST_NAME_MAX];
	float *dst;
	uint64_t rows, cols;
};

/* The Llama tensors of m (with their places in m), in file order. */
static size_t model_slots(const struct llm_model *m, struct slot *s, size_t max)
{
	const struct llm_config *c = &m->cfg;
	uint64_t d = c->hidden, dq = llm_config_dq(c), dkv = llm_config_dkv(c), f = c->ffn;
	size_t n = 0;
#define SLOT(ptr, r, cl, ...)                                                                      \
	do {                                                                                       \
		if (n < max) {                                                                     \
			snprintf(s[n].name, sizeof(s[n].name), __VA_ARGS__);                       \
			s[n].dst = (ptr), s[n].rows = (r), s[n].cols = (cl);                       \
		}                                                                                  \
		n++;                                                                               \
	} while (0)
	SLOT(m->embed, c->vocab, d, "model.embed_tokens.weight");
	for (uint32_t l = 0; l < c->layers; l++) {
		const struct llm_layer_weights *w = &m->layer[l];
		SLOT(w->attn_norm, d, 0, "model.layers.%u.input_layernorm.weight", l);
		SLOT(w->wqkv, dq, d, "model.layers.%u.self_attn.q_proj.weight", l);
		SLOT(w->wqkv + dq * d, dkv, d, "model.layers.%u.self_attn.k_proj.weight", l);
		SLOT(w->wqkv + (dq + dkv) * d, dkv, d, "model.layers.%u.self_attn.v_proj.weight",
		     l);
		SLOT(w->wo, d, dq, "model.layers.%u.self_attn.o_proj.weight", l);
		SLOT(w->ffn_norm, d, 0, "model.layers.%u.post_attention_layernorm.weight", l);
		SLOT(w->wgu, f, d, "model.layers.%u.mlp.gate_proj.weight", l);
		SLOT(w->wgu + f * d, f, d, "model.layers.%u.mlp.up_proj.weight", l);
		SLOT(w->wdown, d, f, "model.layers.%u.mlp.down_proj.weight", l);
	}
	SLOT(m->norm, d, 0, "model.norm.weight");
	if (!c->tie_embeddings)
		SLOT(m->lm_head, c->vocab, d, "lm_head.weight");
#undef SLOT
	return n;
}

int llm_st_load_model(struct llm_model *m, const struct llm_config *cfg, const char *path,
		      char *err, size_t err_len)
{
	struct llm_st_file st;
	int rc = llm_st_open(path, &st, err, err_len);
	if (rc)
		return rc;
	rc = llm_model_alloc(m, cfg, err, err_len);
	if (rc)
		goto out_close;
	size_t n = model_slots(m, NULL, 0);
	struct slot *s = calloc(n, sizeof(*s));
	if (!s) {
		rc = -ENOMEM;
		goto out_free;
	}
	model_slots(m, s, n);
	for (size_t i = 0; i < n && !rc; i++)
		rc = load_one(&st, path, s[i].name, s[i].dst, s[i].rows, s[i].cols, err, err_len);
	free(s);
	if (rc)
		goto out_free;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	snprintf(m->model_id, sizeof(m->model_id), "kvgrid-llm/%.40s/st-%.40s-%llu", cfg->name,
		 base, (unsigned long long)st.file_bytes);
	llm_st_close(&st);
	return 0;
out_free:
	llm_model_free(m);
out_close:
	llm_st_close(&st);
	return rc;
}

/* ---- writing ------------------------------------------------------------------------------ */

size_t llm_st_model_tensors(const struct llm_model *m, const char *dtype, struct llm_st_tensor *t,
			    size_t max)
{
	size_t n = model_slots(m, NULL, 0);
	struct slot *s = calloc(n, sizeof(*s));
	if (!s)
		return 0;
	model_slots(m, s, n);
	for (size_t i = 0; i < n && i < max; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		snprintf(t[i].name, sizeof(t[i].name), "%s", s[i].name);
		snprintf(t[i].dtype, sizeof(t[i].dtype), "%s", dtype);
		t[i].ndim = s[i].cols ? 2 : 1;
		t[i].shape[0] = s[i].rows;
		t[i].shape[1] = s[i].cols;
		t[i].data = s[i].dst;
	}
	free(s);
	return n;
}

static uint64_t numel_of(const struct llm_st_tensor *t)
{
	uint64_t n = 1;
	for (uint32_t k = 0; k < t->ndim; k++)
		n *= t->shape[k];
	return n;
}

static int write_data(FILE *f, const struct llm_st_tensor *t)
{
	uint64_t n = numel_of(t);
	if (!strcmp(t->dtype, "F32"))
		return fwrite(t->data, 4, n, f) == n ? 0 : -EIO;
	int bf = !strcmp(t->dtype, "BF16");
	for (uint64_t i = 0; i < n; i++) {
		uint16_t v = bf ? llm_f32_to_bf16(t->data[i]) : llm_f32_to_f16(t->data[i]);
		if (fwrite(&v, 2, 1, f) != 1)
			return -EIO;
	}
	return 0;
}

int llm_st_write(const char *path, const struct llm_st_tensor *t, size_t n, char *err,
		 size_t err_len)
{
	size_t cap = 256 + n * 512, len = 0;
	char *h = malloc(cap);
	if (!h)
		return -ENOMEM;
	uint64_t off = 0;
	len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (size_t i = 0; i < n; i++) {
		uint64_t bytes = numel_of(&t[i]) * dtype_esize(t[i].dtype);
		len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
					t[i].name, t[i].dtype);
		for (uint32_t k = 0; k < t[i].ndim; k++)
			len += (size_t)snprintf(h + len, cap - len, "%s%llu", k ? "," : "",
						(unsigned long long)t[i].shape[k]);
		len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%llu,%llu]}",
					(unsigned long long)off, (unsigned long long)(off + bytes));
		off += bytes;
	}
	len += (size_t)snprintf(h + len, cap - len, "}");
	while (len % 8) /* the format pads the header with spaces to 8 bytes */
		h[len++] = ' ';
	int rc = 0;
	FILE *f = fopen(path, "wb");
	if (!f) {
		rc = -errno;
		goto out_free;
	}
	uint8_t lenb[8];
	for (int i = 0; i < 8; i++)
		lenb[i] = (uint8_t)((uint64_t)len >> (8 * i));
	if (fwrite(lenb, 1, 8, f) != 8 || fwrite(h, 1, len, f) != len)
		rc = -EIO;
	for (size_t i = 0; i < n && !rc; i++)
		rc = write_data(f, &t[i]);
	if (fclose(f) && !rc)
		rc = -EIO;
out_free:
	free(h);
	if (rc && err)
		snprintf(err, err_len, "%s: cannot write: %s", path, strerror(-rc));
	return rc;
}
