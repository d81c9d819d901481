/*
 * Cutting llama.cpp's sequence state into per-block pieces and joining pieces back
 * (formats in kvgl_state.h).  Pure byte handling: no llama.cpp calls, so the parser can be
 * exercised on any bytes.  A reader (struct rd) never reads past its end; each failure
 * names the field that was wrong.
 */
#include "kvgl_state.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* An invariant that stays checked in release builds. */
#define KVGL_ASSERT(c)                                                                             \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "kvgrid-llama: %s:%d: %s\n", __FILE__, __LINE__, #c);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct rd {
	const uint8_t *p, *end;
	int bad;
};

static void rd_bytes(struct rd *r, void *out, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		memset(out, 0, n);
		return;
	}
	memcpy(out, r->p, n);
	r->p += n;
}

static uint32_t rd_u32(struct rd *r)
{
	uint32_t v;
	rd_bytes(r, &v, 4);
	return v;
}

static uint64_t rd_u64(struct rd *r)
{
	uint64_t v;
	rd_bytes(r, &v, 8);
	return v;
}

/* Skips n bytes and returns where they start, or NULL past the end. */
static const uint8_t *rd_skip(struct rd *r, uint64_t n)
{
	if (r->bad || (uint64_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *at = r->p;
	r->p += n;
	return at;
}

static int fail(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (why && why_len)
		vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void kvgl_seq_free(struct kvgl_seq *seq)
{
	free(seq->layers);
	free(seq->k_data);
	free(seq->v_data);
	memset(seq, 0, sizeof(*seq));
}

static int seq_alloc(struct kvgl_seq *seq, uint32_t n_layer)
{
	seq->n_layer = n_layer;
	seq->layers = calloc(n_layer, sizeof(*seq->layers));
	seq->k_data = calloc(n_layer, sizeof(*seq->k_data));
	seq->v_data = calloc(n_layer, sizeof(*seq->v_data));
	return seq->layers && seq->k_data && seq->v_data ? 0 : -ENOMEM;
}

/* The cell records: n cells at positions 0..n-1, each in exactly one sequence. */
static int parse_cells(struct rd *r, uint32_t n, char *why, size_t why_len)
{
	for (uint32_t i = 0; i < n && !r->bad; i++) {
		int32_t pos = (int32_t)rd_u32(r);
		uint32_t n_seq = rd_u32(r);
		(void)rd_u32(r);
		if (!r->bad && n_seq != 1)
			return fail(why, why_len, "cell %u belongs to %u sequences", i, n_seq);
		if (!r->bad && pos != (int32_t)i)
			return fail(why, why_len,
				    "cell %u holds position %d: not a prefix in order", i, pos);
	}
	return r->bad ? fail(why, why_len, "state ends inside the cell records") : 0;
}

static int parse_k(struct rd *r, struct kvgl_seq *seq, char *why, size_t why_len)
{
	for (uint32_t l = 0; l < seq->n_layer; l++) {
		struct kvgl_layer *ly = &seq->layers[l];
		ly->k_type = (int32_t)rd_u32(r);
		ly->k_row = rd_u64(r);
		if (ly->k_type < 0 || ly->k_row == 0 || ly->k_row > (1u << 24))
			return fail(why, why_len, "layer %u: bad K type %d or row of %llu bytes", l,
				    ly->k_type, (unsigned long long)ly->k_row);
		seq->k_data[l] = rd_skip(r, ly->k_row * seq->n_cells);
	}
	return r->bad ? fail(why, why_len, "state ends inside the K rows") : 0;
}

static int parse_v(struct rd *r, struct kvgl_seq *seq, char *why, size_t why_len)
{
	for (uint32_t l = 0; l < seq->n_layer; l++) {
		struct kvgl_layer *ly = &seq->layers[l];
		ly->v_type = (int32_t)rd_u32(r);
		if (seq->v_trans) {
			ly->v_el = rd_u32(r);
			ly->n_embd_v = rd_u32(r);
			if (ly->v_el == 0 || ly->v_el > 16 || ly->n_embd_v == 0 ||
			    ly->n_embd_v > (1u << 20))
				return fail(why, why_len, "layer %u: bad transposed V shape", l);
			ly->v_row = (uint64_t)ly->v_el * ly->n_embd_v;
		} else {
			ly->v_row = rd_u64(r);
			if (ly->v_row == 0 || ly->v_row > (1u << 24))
				return fail(why, why_len, "layer %u: bad V row of %llu bytes", l,
					    (unsigned long long)ly->v_row);
		}
		if (ly->v_type < 0)
			return fail(why, why_len, "layer %u: bad V type %d", l, ly->v_type);
		seq->v_data[l] = rd_skip(r, ly->v_row * seq->n_cells);
	}
	return r->bad ? fail(why, why_len, "state ends inside the V rows") : 0;
}

/* One non-empty stream: its cells, then its layers. */
static int parse_stream(struct rd *r, struct kvgl_seq *seq, char *why, size_t why_len)
{
	int rc = parse_cells(r, seq->n_cells, why, why_len);
	if (rc)
		return rc;
	seq->v_trans = rd_u32(r);
	uint32_t n_layer = rd_u32(r);
	if (r->bad || seq->v_trans > 1 || n_layer == 0 || n_layer > KVGL_LAYERS_MAX)
		return fail(why, why_len, "bad V layout %u or layer count %u", seq->v_trans,
			    n_layer);
	if (seq_alloc(seq, n_layer))
		return -ENOMEM;
	rc = parse_k(r, seq, why, why_len);
	return rc ? rc : parse_v(r, seq, why, why_len);
}

int kvgl_seq_parse(const uint8_t *state, size_t len, struct kvgl_seq *seq, char *why,
		   size_t why_len)
{
	struct rd r = {state, state + len, 0};
	memset(seq, 0, sizeof(*seq));
	if (rd_u32(&r) != KVGL_SEQ_MAGIC)
		return fail(why, why_len, "not a llama.cpp sequence state (magic)");
	(void)rd_u32(&r);
	seq->n_stream = rd_u32(&r);
	if (r.bad || seq->n_stream == 0 || seq->n_stream > 4096)
		return fail(why, why_len, "bad stream count %u", seq->n_stream);
	int found = 0, rc = 0;
	for (uint32_t s = 0; s < seq->n_stream && rc == 0; s++) {
		uint32_t cells = rd_u32(&r);
		if (r.bad)
			rc = fail(why, why_len, "state ends before stream %u", s);
		else if (cells && found++)
			rc = fail(why, why_len, "the sequence spans two streams");
		else if (cells) {
			seq->n_cells = cells;
			rc = parse_stream(&r, seq, why, why_len);
		}
	}
	if (rc == 0 && !found)
		rc = fail(why, why_len, "the sequence is empty");
	if (rc == 0 && r.p != r.end)
		rc = fail(why, why_len, "%zu bytes left after the state", (size_t)(r.end - r.p));
	if (rc)
		kvgl_seq_free(seq);
	return rc;
}

static size_t table_bytes(const struct kvgl_seq *seq)
{
	return (size_t)seq->n_layer * (16 + 24);
}

static size_t row_bytes(const struct kvgl_seq *seq)
{
	size_t n = 0;
	for (uint32_t l = 0; l < seq->n_layer; l++)
		n += seq->layers[l].k_row + seq->layers[l].v_row;
	return n;
}

size_t kvgl_piece_bytes(const struct kvgl_seq *seq, uint32_t b_tokens)
{
	return KVGL_PIECE_HDR_BYTES + table_bytes(seq) + row_bytes(seq) * b_tokens;
}

static uint8_t *put(uint8_t *p, const void *v, size_t n)
{
	memcpy(p, v, n);
	return p + n;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	return put(p, &v, 4);
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
	return put(p, &v, 8);
}

static uint8_t *put_table(uint8_t *p, const struct kvgl_seq *seq)
{
	for (uint32_t l = 0; l < seq->n_layer; l++) {
		p = put_u32(p, (uint32_t)seq->layers[l].k_type);
		p = put_u32(p, 0);
		p = put_u64(p, seq->layers[l].k_row);
	}
	for (uint32_t l = 0; l < seq->n_layer; l++) {
		const struct kvgl_layer *ly = &seq->layers[l];
		p = put_u32(p, (uint32_t)ly->v_type);
		p = put_u32(p, ly->v_el);
		p = put_u32(p, ly->n_embd_v);
		p = put_u32(p, 0);
		p = put_u64(p, ly->v_row);
	}
	return p;
}

/* Rows [first, first+n) of one layer's V: contiguous rows, or per dimension when
 * transposed (the state holds n_cells elements per dimension). */
static uint8_t *put_v_rows(uint8_t *p, const struct kvgl_seq *seq, uint32_t l, uint32_t first,
			   uint32_t n)
{
	const struct kvgl_layer *ly = &seq->layers[l];
	if (!seq->v_trans)
		return put(p, seq->v_data[l] + (size_t)first * ly->v_row, (size_t)n * ly->v_row);
	for (uint32_t j = 0; j < ly->n_embd_v; j++)
		p = put(p, seq->v_data[l] + ((size_t)j * seq->n_cells + first) * ly->v_el,
			(size_t)n * ly->v_el);
	return p;
}

/* The checksum covers the header's first 32 bytes (so no field goes unchecked) and the body. */
static uint64_t piece_sum(const uint8_t *hdr, const uint8_t *body, uint64_t body_len)
{
	return XXH3_64bits_withSeed(body, body_len, XXH3_64bits(hdr, 32));
}

void kvgl_piece_write(const struct kvgl_seq *seq, uint32_t index, uint32_t b_tokens,
		      const uint8_t key[32], uint8_t *out)
{
	uint32_t first = index * b_tokens;
	uint8_t *body = out + KVGL_PIECE_HDR_BYTES, *p = put_table(body, seq);
	for (uint32_t l = 0; l < seq->n_layer; l++)
		p = put(p, seq->k_data[l] + (size_t)first * seq->layers[l].k_row,
			(size_t)b_tokens * seq->layers[l].k_row);
	for (uint32_t l = 0; l < seq->n_layer; l++)
		p = put_v_rows(p, seq, l, first, b_tokens);
	uint64_t body_len = (uint64_t)(p - body);
	uint8_t *h = out;
	h = put_u32(h, KVGL_PIECE_MAGIC);
	h = put_u32(h, KVGL_PIECE_VERSION);
	h = put_u32(h, index);
	h = put_u32(h, b_tokens);
	h = put_u32(h, seq->n_layer);
	h = put_u32(h, seq->v_trans);
	h = put_u32(h, seq->n_stream);
	h = put_u32(h, 0);
	h = put_u64(h, body_len);
	h = put_u64(h, piece_sum(out, body, body_len));
	put(h, key, 32);
}

/* Reads a piece's layer table into t (t->n_layer set, arrays allocated). */
static int read_table(struct rd *r, struct kvgl_seq *t, uint32_t v_trans)
{
	t->v_trans = v_trans;
	for (uint32_t l = 0; l < t->n_layer; l++) {
		t->layers[l].k_type = (int32_t)rd_u32(r);
		(void)rd_u32(r);
		t->layers[l].k_row = rd_u64(r);
	}
	for (uint32_t l = 0; l < t->n_layer; l++) {
		struct kvgl_layer *ly = &t->layers[l];
		ly->v_type = (int32_t)rd_u32(r);
		ly->v_el = rd_u32(r);
		ly->n_embd_v = rd_u32(r);
		(void)rd_u32(r);
		ly->v_row = rd_u64(r);
		if (ly->k_row == 0 || ly->k_row > (1u << 24) || ly->v_row == 0 ||
		    ly->v_row > (1u << 24) || ly->k_type < 0 || ly->v_type < 0)
			return -EINVAL;
		if (v_trans && (uint64_t)ly->v_el * ly->n_embd_v != ly->v_row)
			return -EINVAL;
	}
	return r->bad ? -EINVAL : 0;
}

static int same_table(const struct kvgl_seq *a, const struct kvgl_seq *b)
{
	if (a->n_layer != b->n_layer || a->v_trans != b->v_trans || a->n_stream != b->n_stream)
		return 0;
	for (uint32_t l = 0; l < a->n_layer; l++) {
		const struct kvgl_layer *x = &a->layers[l], *y = &b->layers[l];
		if (x->k_type != y->k_type || x->k_row != y->k_row || x->v_type != y->v_type ||
		    x->v_el != y->v_el || x->n_embd_v != y->n_embd_v || x->v_row != y->v_row)
			return 0;
	}
	return 1;
}

/* Copies len bytes at offset off of src into dst; 0, or -1 past its end. */
static int src_copy(void *dst, const struct kvgl_src *src, size_t off, size_t len)
{
	uint8_t *d = dst;
	if (off > src->len || len > src->len - off)
		return -1;
	for (int i = 0; i < src->n_iov && len; i++) {
		size_t seg = src->iov[i].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		size_t m = seg - off < len ? seg - off : len;
		memcpy(d, (const uint8_t *)src->iov[i].iov_base + off, m);
		d += m, len -= m, off = 0;
	}
	return len ? -1 : 0;
}

/* The checksum of a piece held in segments (see piece_sum). */
static uint64_t src_sum(const struct kvgl_src *src, const uint8_t *hdr)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return 0;
	XXH3_64bits_reset_withSeed(st, XXH3_64bits(hdr, 32));
	size_t skip = KVGL_PIECE_HDR_BYTES;
	for (int i = 0; i < src->n_iov; i++) {
		size_t seg = src->iov[i].iov_len;
		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		XXH3_64bits_update(st, (const uint8_t *)src->iov[i].iov_base + skip, seg - skip);
		skip = 0;
	}
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

/* Header checks: *n_layer and the other fields in f[]; 0 or -EINVAL. */
static int check_header(const struct kvgl_src *src, uint8_t hdr[KVGL_PIECE_HDR_BYTES],
			uint32_t index, uint32_t b_tokens, const uint8_t key[32], int verify_sum,
			uint32_t f[8], char *why, size_t why_len)
{
	if (src_copy(hdr, src, 0, KVGL_PIECE_HDR_BYTES))
		return fail(why, why_len, "piece %u: shorter than a header", index);
	struct rd r = {hdr, hdr + KVGL_PIECE_HDR_BYTES, 0};
	for (int i = 0; i < 8; i++)
		f[i] = rd_u32(&r);
	uint64_t body_len = rd_u64(&r), sum = rd_u64(&r);
	const uint8_t *pkey = rd_skip(&r, 32);
	if (r.bad || f[0] != KVGL_PIECE_MAGIC || f[1] != KVGL_PIECE_VERSION || f[7] != 0)
		return fail(why, why_len, "piece %u: not a kvgrid-llama piece", index);
	if (f[2] != index || f[3] != b_tokens || memcmp(pkey, key, 32) != 0)
		return fail(why, why_len, "piece %u: names another block", index);
	if (f[4] == 0 || f[4] > KVGL_LAYERS_MAX || f[5] > 1 || f[6] == 0)
		return fail(why, why_len, "piece %u: bad layer count or V layout", index);
	if (body_len != src->len - KVGL_PIECE_HDR_BYTES || (verify_sum && src_sum(src, hdr) != sum))
		return fail(why, why_len, "piece %u: length or checksum wrong", index);
	return 0;
}

int kvgl_piece_check(const struct kvgl_src *src, uint32_t index, uint32_t b_tokens,
		     const uint8_t key[32], int verify_sum, struct kvgl_seq *ref, char *why,
		     size_t why_len)
{
	uint8_t hdr[KVGL_PIECE_HDR_BYTES];
	uint32_t f[8];
	int rc = check_header(src, hdr, index, b_tokens, key, verify_sum, f, why, why_len);
	if (rc)
		return rc;
	struct kvgl_seq t = {.n_stream = f[6]};
	size_t tlen = (size_t)f[4] * 40;
	uint8_t *table = malloc(tlen);
	if (!table || seq_alloc(&t, f[4])) {
		free(table);
		kvgl_seq_free(&t);
		return -ENOMEM;
	}
	rc = src_copy(table, src, KVGL_PIECE_HDR_BYTES, tlen) ? -EINVAL : 0;
	struct rd r = {table, table + tlen, 0};
	if (rc == 0)
		rc = read_table(&r, &t, f[5]);
	free(table);
	if (rc == 0 && kvgl_piece_bytes(&t, b_tokens) != src->len)
		rc = -EINVAL;
	if (rc == 0 && ref->n_layer && !same_table(ref, &t))
		rc = -EINVAL;
	if (rc == 0 && ref->n_layer == 0) {
		*ref = t;
		return 0;
	}
	kvgl_seq_free(&t);
	return rc ? fail(why, why_len, "piece %u: layer table inconsistent", index) : 0;
}

size_t kvgl_join_bytes(const struct kvgl_seq *ref, size_t n, uint32_t b_tokens)
{
	size_t cells = n * b_tokens, per_layer_hdr = 0;
	for (uint32_t l = 0; l < ref->n_layer; l++)
		per_layer_hdr +=
		    12 + 12; /* {i32, u64} for K; {i32, u64} or {i32, u32, u32} for V */
	return 12 + 4 * (size_t)ref->n_stream + cells * 12 + 8 + per_layer_hdr +
	       row_bytes(ref) * cells;
}

/* Offset of layer l's K (k) or V (!k) rows inside a checked piece. */
static size_t piece_part(const struct kvgl_seq *ref, uint32_t l, int k, uint32_t b_tokens)
{
	size_t off = KVGL_PIECE_HDR_BYTES + table_bytes(ref);
	for (uint32_t i = 0; i < ref->n_layer; i++) {
		if (k && i == l)
			return off;
		off += (size_t)b_tokens * ref->layers[i].k_row;
	}
	for (uint32_t i = 0; i < l; i++)
		off += (size_t)b_tokens * ref->layers[i].v_row;
	return off;
}

/* Checksums of the pieces being joined (NULL entries: not verified).  The join reads each
 * piece's body in its own order, so each sum is fed as its bytes are copied. */
typedef XXH3_state_t *sums_t;

/* Appends len bytes at off of a checked piece (its length was checked: never fails). */
static uint8_t *put_src(uint8_t *p, const struct kvgl_src *src, size_t off, size_t len, sums_t sum)
{
	int rc = src_copy(p, src, off, len);
	KVGL_ASSERT(rc == 0);
	if (sum)
		XXH3_64bits_update(sum, p, len);
	return p + len;
}

/* Starts the sum of pieces [i0, i1) with their seed and layer table. */
static int sums_begin(const struct kvgl_seq *ref, const struct kvgl_src *pieces, size_t i0,
		      size_t i1, sums_t *sums)
{
	size_t tlen = table_bytes(ref);
	uint8_t hdr[KVGL_PIECE_HDR_BYTES], *table = malloc(tlen);
	int rc = table ? 0 : -ENOMEM;
	for (size_t i = i0; i < i1 && rc == 0; i++) {
		sums[i] = XXH3_createState();
		if (!sums[i] || src_copy(hdr, &pieces[i], 0, sizeof hdr) ||
		    src_copy(table, &pieces[i], KVGL_PIECE_HDR_BYTES, tlen)) {
			rc = -ENOMEM;
			break;
		}
		XXH3_64bits_reset_withSeed(sums[i], XXH3_64bits(hdr, 32));
		XXH3_64bits_update(sums[i], table, tlen);
	}
	free(table);
	return rc;
}

/* How many pieces from i0 match their header's checksum; frees their sums. */
static size_t sums_end(const struct kvgl_src *pieces, size_t i0, size_t i1, sums_t *sums)
{
	size_t ok = i1 - i0;
	for (size_t i = i0; i < i1; i++) {
		uint64_t want = 0;
		if (!sums[i] || src_copy(&want, &pieces[i], 40, 8) ||
		    XXH3_64bits_digest(sums[i]) != want)
			ok = ok < i - i0 ? ok : i - i0;
		XXH3_freeState(sums[i]);
		sums[i] = NULL;
	}
	return ok;
}

/* The rows of pieces [i0, i1) of n, copied to their places in a joined state whose row
 * sections start at k_at[l] and v_at[l] (after each section's own header). */
struct join_part {
	const struct kvgl_seq *ref;
	const struct kvgl_src *pieces;
	size_t n, i0, i1;
	uint32_t b;
	const size_t *k_at, *v_at;
	uint8_t *out;
	sums_t *sums;
};

static void *join_rows(void *arg)
{
	const struct join_part *j = arg;
	const struct kvgl_seq *ref = j->ref;
	for (uint32_t l = 0; l < ref->n_layer; l++) {
		size_t row = (size_t)j->b * ref->layers[l].k_row, at = piece_part(ref, l, 1, j->b);
		for (size_t i = j->i0; i < j->i1; i++)
			put_src(j->out + j->k_at[l] + i * row, &j->pieces[i], at, row, j->sums[i]);
	}
	for (uint32_t l = 0; l < ref->n_layer; l++) {
		const struct kvgl_layer *ly = &ref->layers[l];
		size_t at = piece_part(ref, l, 0, j->b), row = (size_t)j->b * ly->v_row;
		if (!ref->v_trans) {
			for (size_t i = j->i0; i < j->i1; i++)
				put_src(j->out + j->v_at[l] + i * row, &j->pieces[i], at, row,
					j->sums[i]);
			continue;
		}
		size_t el = (size_t)j->b * ly->v_el; /* one dimension of one piece */
		for (uint32_t d = 0; d < ly->n_embd_v; d++)
			for (size_t i = j->i0; i < j->i1; i++)
				put_src(j->out + j->v_at[l] + (d * j->n + i) * el, &j->pieces[i],
					at + d * el, el, j->sums[i]);
	}
	return NULL;
}

/* Writes the joined state's headers and cell records; k_at and v_at receive where each
 * layer's rows go. */
static void join_headers(const struct kvgl_seq *ref, size_t n, uint32_t b, int32_t seq_id,
			 uint8_t *out, size_t *k_at, size_t *v_at)
{
	uint32_t cells = (uint32_t)(n * b);
	uint8_t *p = out;
	p = put_u32(p, KVGL_SEQ_MAGIC);
	p = put_u32(p, (uint32_t)seq_id);
	p = put_u32(p, ref->n_stream);
	p = put_u32(p, cells);
	for (uint32_t i = 0; i < cells; i++) {
		p = put_u32(p, i);
		p = put_u32(p, 1);
		p = put_u32(p, (uint32_t)seq_id);
	}
	p = put_u32(p, ref->v_trans);
	p = put_u32(p, ref->n_layer);
	for (uint32_t l = 0; l < ref->n_layer; l++) {
		p = put_u32(p, (uint32_t)ref->layers[l].k_type);
		p = put_u64(p, ref->layers[l].k_row);
		k_at[l] = (size_t)(p - out);
		p += (size_t)cells * ref->layers[l].k_row;
	}
	for (uint32_t l = 0; l < ref->n_layer; l++) {
		const struct kvgl_layer *ly = &ref->layers[l];
		p = put_u32(p, (uint32_t)ly->v_type);
		if (ref->v_trans) {
			p = put_u32(p, ly->v_el);
			p = put_u32(p, ly->n_embd_v);
		} else {
			p = put_u64(p, ly->v_row);
		}
		v_at[l] = (size_t)(p - out);
		p += (size_t)cells * ly->v_row;
	}
	for (uint32_t s = 1; s < ref->n_stream; s++)
		p = put_u32(p, 0);
	KVGL_ASSERT((size_t)(p - out) == kvgl_join_bytes(ref, n, b));
}

size_t kvgl_join_split_bytes = 4u << 20;

struct kvgl_joiner {
	const struct kvgl_seq *ref;
	size_t n;
	uint32_t b;
	uint8_t *out;
	size_t *at; /* k_at[n_layer], then v_at[n_layer] */
	sums_t *sums;
};

struct kvgl_joiner *kvgl_join_begin(const struct kvgl_seq *ref, size_t n, uint32_t b_tokens,
				    int32_t seq_id, uint8_t *out)
{
	struct kvgl_joiner *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	*j = (struct kvgl_joiner){ref, n, b_tokens, out};
	j->at = calloc(2 * (size_t)ref->n_layer, sizeof(*j->at));
	j->sums = calloc(n ? n : 1, sizeof(*j->sums));
	if (!j->at || !j->sums) {
		kvgl_join_end(j);
		return NULL;
	}
	join_headers(ref, n, b_tokens, seq_id, out, j->at, j->at + ref->n_layer);
	return j;
}

size_t kvgl_join_add(struct kvgl_joiner *j, const struct kvgl_src *pieces, size_t i0, size_t i1,
		     int verify_sum)
{
	KVGL_ASSERT(i0 <= i1 && i1 <= j->n);
	if (verify_sum && sums_begin(j->ref, pieces, i0, i1, j->sums)) {
		sums_end(pieces, i0, i1, j->sums);
		return 0;
	}
	const size_t *k_at = j->at, *v_at = j->at + j->ref->n_layer;
	struct join_part a = {j->ref, pieces, j->n, i0, i1, j->b, k_at, v_at, j->out, j->sums};
	struct join_part b = a;
	pthread_t th;
	int two =
	    i1 - i0 >= 2 && kvgl_piece_bytes(j->ref, j->b) * (i1 - i0) >= kvgl_join_split_bytes;
	if (two) {
		a.i1 = b.i0 = i0 + (i1 - i0) / 2;
		two = pthread_create(&th, NULL, join_rows, &b) == 0;
		if (!two)
			a.i1 = i1;
	}
	join_rows(&a);
	if (two)
		pthread_join(th, NULL);
	return verify_sum ? sums_end(pieces, i0, i1, j->sums) : i1 - i0;
}

void kvgl_join_end(struct kvgl_joiner *j)
{
	if (!j)
		return;
	for (size_t i = 0; j->sums && i < j->n; i++)
		XXH3_freeState(j->sums[i]);
	free(j->sums);
	free(j->at);
	free(j);
}

size_t kvgl_join(const struct kvgl_seq *ref, const struct kvgl_src *pieces, size_t n,
		 uint32_t b_tokens, int32_t seq_id, int verify_sum, uint8_t *out)
{
	struct kvgl_joiner *j = kvgl_join_begin(ref, n, b_tokens, seq_id, out);
	size_t ok = j ? kvgl_join_add(j, pieces, 0, n, verify_sum) : 0;
	kvgl_join_end(j);
	return ok;
}
