/*
 * The adapter's pieces (run by tests/test_llama_pieces.sh).
 * Part 1, on synthetic llama.cpp sequence states of both V layouts: a state cut into pieces
 * and joined back is byte for byte the state of the prefix; every truncation, every flipped
 * header or table byte, flipped body bytes, a wrong index or key make a piece a miss; garbage
 * states are refused, never read out of bounds.
 * Part 2, on a real llama.cpp model (argv[1]): a damaged piece in the grid (a flipped byte,
 * a truncated piece, another block's piece under this block's key) ends the restored prefix
 * just before it, and the logits after that shorter restore are still bit-identical.
 */
#include "../llama/cmd.h"
#include "../llama/kvgl_state.h"
#include "t.h"

#include <errno.h>

/* ---- part 1: synthetic states ---------------------------------------------------------- */

struct shape {
	uint32_t n_layer, v_trans, n_stream, k_row, v_el, n_embd_v;
};

static uint8_t val(uint32_t l, uint32_t i, uint32_t j, uint32_t kv)
{
	uint32_t x = l * 2654435761u ^ i * 40503u ^ j * 2246822519u ^ kv * 3266489917u;
	return (uint8_t)(x ^ x >> 13);
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
	return p + 8;
}

/* What llama.cpp writes for a sequence of n cells of shape s (kvgl_state.h); *len set. */
static uint8_t *gen_state(const struct shape *s, uint32_t n, size_t *len)
{
	size_t cap = 64 + 4 * s->n_stream + 12 * (size_t)n +
		     s->n_layer * (24 + (size_t)n * (s->k_row + s->v_el * s->n_embd_v));
	uint8_t *b = calloc(1, cap), *p = b;
	p = put32(p, KVGL_SEQ_MAGIC);
	p = put32(p, 0);
	p = put32(p, s->n_stream);
	p = put32(p, n);
	for (uint32_t i = 0; i < n; i++) {
		p = put32(p, i);
		p = put32(p, 1);
		p = put32(p, 0);
	}
	p = put32(p, s->v_trans);
	p = put32(p, s->n_layer);
	for (uint32_t l = 0; l < s->n_layer; l++) {
		p = put32(p, 1);
		p = put64(p, s->k_row);
		for (uint32_t i = 0; i < n; i++)
			for (uint32_t j = 0; j < s->k_row; j++)
				*p++ = val(l, i, j, 0);
	}
	for (uint32_t l = 0; l < s->n_layer; l++) {
		p = put32(p, 1);
		if (s->v_trans) {
			p = put32(p, s->v_el);
			p = put32(p, s->n_embd_v);
			for (uint32_t d = 0; d < s->n_embd_v; d++)
				for (uint32_t i = 0; i < n; i++)
					for (uint32_t e = 0; e < s->v_el; e++)
						*p++ = val(l, i, d * s->v_el + e, 1);
		} else {
			p = put64(p, (uint64_t)s->v_el * s->n_embd_v);
			for (uint32_t i = 0; i < n; i++)
				for (uint32_t j = 0; j < s->v_el * s->n_embd_v; j++)
					*p++ = val(l, i, j, 1);
		}
	}
	for (uint32_t st = 1; st < s->n_stream; st++)
		p = put32(p, 0);
	*len = (size_t)(p - b);
	return b;
}

/* A piece in four segments cut at odd places, as a view of the grid's DRAM may be. */
struct seg {
	struct iovec iov[4];
	struct kvgl_src src;
};

static const struct kvgl_src *segments(struct seg *g, const uint8_t *p, size_t len)
{
	size_t cut[5] = {0, len < 7 ? len : 7, len < 100 ? len : 100, len / 2 > 100 ? len / 2 : len,
			 len};
	for (int i = 0; i < 4; i++)
		g->iov[i] = (struct iovec){(void *)(p + cut[i]), cut[i + 1] - cut[i]};
	g->src = (struct kvgl_src){g->iov, 4, len};
	return &g->src;
}

static int check(const uint8_t *p, size_t len, uint32_t index, uint32_t b, const uint8_t *key,
		 struct kvgl_seq *ref)
{
	struct seg g;
	char why[128];
	return kvgl_piece_check(segments(&g, p, len), index, b, key, 1, ref, why, sizeof why);
}

static const struct shape shapes[] = {
    {2, 0, 1, 64, 2, 16},
    {3, 1, 1, 32, 2, 12},
    {2, 1, 4, 16, 4, 8},
};

/* Description: cut into pieces and joined, a state is its prefix's state byte for byte. */
static void test_cut_join(void)
{
	for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
		const struct shape *s = &shapes[c];
		const uint32_t B = 16, n = 5 * B + 7;
		size_t len, want_len;
		uint8_t *st = gen_state(s, n, &len), key[5][32];
		struct kvgl_seq seq;
		char why[128];
		CHECK(kvgl_seq_parse(st, len, &seq, why, sizeof why) == 0);
		CHECK(seq.n_cells == n && seq.v_trans == s->v_trans && seq.n_layer == s->n_layer);
		size_t pb = kvgl_piece_bytes(&seq, B);
		uint8_t *pieces[5];
		struct kvgl_seq ref = {0};
		for (uint32_t i = 0; i < 5; i++) {
			memset(key[i], (int)i + 1, 32);
			pieces[i] = malloc(pb);
			kvgl_piece_write(&seq, i, B, key[i], pieces[i]);
			CHECK(check(pieces[i], pb, i, B, key[i], &ref) == 0);
		}
		for (uint32_t k = 1; k <= 5; k++) {
			uint8_t *want = gen_state(s, k * B, &want_len);
			size_t jl = kvgl_join_bytes(&ref, k, B);
			uint8_t *got = malloc(jl);
			struct seg sg[5];
			struct kvgl_src src[5];
			for (uint32_t i = 0; i < k; i++)
				src[i] = *segments(&sg[i], pieces[i], pb);
			CHECK(kvgl_join(&ref, src, k, B, 0, 1, got) == k);
			CHECK(jl == want_len && memcmp(got, want, jl) == 0);
			free(got);
			free(want);
		}
		/* a flipped body byte passes the header checks; the join's checksum finds it */
		pieces[3][pb - 1] ^= 4;
		struct kvgl_seq ref2 = {0};
		struct seg g;
		char why2[128];
		CHECK(kvgl_piece_check(segments(&g, pieces[3], pb), 3, B, key[3], 0, &ref2, why2,
				       sizeof why2) == 0);
		CHECK(check(pieces[3], pb, 3, B, key[3], &ref2) == -EINVAL);
		kvgl_seq_free(&ref2);
		struct kvgl_src src[5];
		struct seg sg[5];
		for (uint32_t i = 0; i < 5; i++)
			src[i] = *segments(&sg[i], pieces[i], pb);
		uint8_t *out = malloc(kvgl_join_bytes(&ref, 5, B));
		CHECK(kvgl_join(&ref, src, 5, B, 0, 1, out) == 3);
		free(out);
		for (uint32_t i = 0; i < 5; i++)
			free(pieces[i]);
		kvgl_seq_free(&ref);
		kvgl_seq_free(&seq);
		free(st);
	}
}

/* Description: a truncated piece, any flipped header or table byte, flipped body bytes, a
 * piece under another block's index or key: each is refused. */
static void test_damaged_piece(void)
{
	const struct shape *s = &shapes[1];
	const uint32_t B = 16;
	size_t len;
	uint8_t *st = gen_state(s, 3 * B, &len), key[32], other[32];
	struct kvgl_seq seq, ref;
	char why[128];
	CHECK(kvgl_seq_parse(st, len, &seq, why, sizeof why) == 0);
	size_t pb = kvgl_piece_bytes(&seq, B);
	uint8_t *p = malloc(pb), *q = malloc(pb);
	memset(key, 7, 32);
	memset(other, 8, 32);
	kvgl_piece_write(&seq, 1, B, key, p);
	for (size_t cut = 0; cut < pb; cut += (cut < 256 ? 1 : 97)) {
		ref = (struct kvgl_seq){0};
		CHECK(check(p, cut, 1, B, key, &ref) == -EINVAL);
	}
	for (size_t at = 0; at < pb; at += (at < 512 ? 1 : 31)) {
		memcpy(q, p, pb);
		q[at] ^= 0x10;
		ref = (struct kvgl_seq){0};
		CHECK(check(q, pb, 1, B, key, &ref) == -EINVAL);
	}
	ref = (struct kvgl_seq){0};
	CHECK(check(p, pb, 2, B, key, &ref) == -EINVAL);
	CHECK(check(p, pb, 1, B, other, &ref) == -EINVAL);
	CHECK(check(p, pb, 1, B * 2, key, &ref) == -EINVAL);
	CHECK(check(p, pb, 1, B, key, &ref) == 0);
	/* a piece of another shape never joins this one's */
	struct kvgl_seq seq2;
	size_t len2;
	uint8_t *st2 = gen_state(&shapes[2], 3 * B, &len2);
	CHECK(kvgl_seq_parse(st2, len2, &seq2, why, sizeof why) == 0);
	size_t pb2 = kvgl_piece_bytes(&seq2, B);
	uint8_t *r = malloc(pb2);
	kvgl_piece_write(&seq2, 2, B, key, r);
	CHECK(check(r, pb2, 2, B, key, &ref) == -EINVAL);
	kvgl_seq_free(&ref);
	kvgl_seq_free(&seq2);
	kvgl_seq_free(&seq);
	free(r), free(st2), free(p), free(q), free(st);
}

/* Description: states that are not one in-order prefix of one stream, truncated states
 * and random byte flips are refused (or, for flips inside the rows, parsed within bounds). */
static void test_bad_states(void)
{
	const struct shape *s = &shapes[0];
	size_t len;
	uint8_t *st = gen_state(s, 40, &len), *b = malloc(len);
	struct kvgl_seq seq;
	char why[128];
	for (size_t cut = 0; cut < len; cut += 7)
		CHECK(kvgl_seq_parse(st, cut, &seq, why, sizeof why) == -EINVAL);
	memcpy(b, st, len);
	memcpy(b + 16 + 12 * 5, &(uint32_t){9}, 4); /* cell 5 at position 9 */
	CHECK(kvgl_seq_parse(b, len, &seq, why, sizeof why) == -EINVAL);
	memcpy(b, st, len);
	memcpy(b + 16 + 12 * 5 + 4, &(uint32_t){2}, 4); /* a cell in two sequences */
	CHECK(kvgl_seq_parse(b, len, &seq, why, sizeof why) == -EINVAL);
	uint64_t x = 88172645463325252ull;
	for (int round = 0; round < 3000; round++) {
		memcpy(b, st, len);
		for (int k = 0; k < 1 + round % 4; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			b[x % len] ^= (uint8_t)(1u << (x >> 32) % 8);
		}
		if (kvgl_seq_parse(b, len, &seq, why, sizeof why) == 0) {
			CHECK(seq.n_cells == 40 && seq.n_layer == s->n_layer);
			kvgl_seq_free(&seq);
		}
	}
	free(b), free(st);
}

/* ---- part 2: a real model ------------------------------------------------------------- */

static const char *model_path;

/* Replaces the grid's block `index` of the chain by `bytes`. */
static int replace_piece(kvgl *kl, const kvg_key *key, const void *bytes, size_t len)
{
	kvg_delete(kvgl_grid(kl), key, 1);
	struct kvg_io io = {.key = *key, .buf = (void *)bytes, .len = len};
	return kvg_store_sync(kvgl_grid(kl), &io, 1, 0);
}

static void read_piece(kvgl *kl, const kvg_key *key, uint8_t *buf, size_t *len)
{
	struct kvg_io io = {.key = *key, .buf = buf, .len = *len};
	*len = kvg_load_sync(kvgl_grid(kl), &io, 1, 0) == 0 ? io.len : 0;
}

/* Decodes prompt t of n with a restore; returns the restored count, logits in out. */
static size_t decode(struct cmd_llama *l, kvgl *kl, const llama_token *t, size_t n, float *out)
{
	size_t done = 0;
	if (kl)
		kvgl_restore(kl, l->ctx, 0, t, n, &done);
	cmd_prefill(l, t, done, n);
	memcpy(out, cmd_logits(l), l->n_vocab * sizeof(float));
	return done;
}

/* Description: a damaged, truncated or misplaced piece in the grid ends the restored
 * prefix just before it; what is restored still gives bit-identical logits. */
static void test_damaged_in_grid(void)
{
	struct cmd_llama l;
	CHECK(cmd_llama_open(&l, model_path, 2048, 1, 512) == 0);
	const uint32_t B = 64;
	const size_t n = 6 * B + 10;
	llama_token t[6 * 64 + 10];
	cmd_tokens(5, t, n, l.n_vocab);
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	cfg.dram_bytes = 64u << 20;
	struct kvgl_params p;
	kvgl_params_init(&p);
	p.model_path = model_path, p.model = l.model, p.block_tokens = B, p.grid = &cfg;
	p.flash_attn_type = l.cp.flash_attn_type;
	kvgl *kl;
	char err[256];
	CHECK(kvgl_open(&p, &kl, err, sizeof err) == 0);
	float *got = malloc(l.n_vocab * 4), *ref = malloc(l.n_vocab * 4);
	decode(&l, kl, t, n, got);
	CHECK(kvgl_store(kl, l.ctx, 0, t, n) == 0 && kvgl_flush(kl, -1) == 0);
	kvg_key keys[6];
	CHECK(kvg_block_keys(kvgl_grid(kl), (const uint32_t *)t, 6 * B, NULL, keys, 6) == 6);
	static uint8_t good[4][1 << 20], bad[1 << 20];
	size_t glen[4] = {sizeof good[0], sizeof good[0], sizeof good[0], sizeof good[0]};
	for (int i = 0; i < 4; i++)
		read_piece(kl, &keys[i], good[i], &glen[i]);
	CHECK(glen[2] > KVGL_PIECE_HDR_BYTES && glen[3] == glen[2]);
	/* the reference: the uninterrupted run with the prefix of 2 blocks decoded first */
	llama_memory_seq_rm(llama_get_memory(l.ctx), 0, -1, -1);
	cmd_prefill(&l, t, 0, 2 * B);
	cmd_prefill(&l, t, 2 * B, n);
	memcpy(ref, cmd_logits(&l), l.n_vocab * 4);
	for (int kind = 0; kind < 4; kind++) {
		size_t len = glen[2];
		memcpy(bad, good[2], len);
		if (kind == 0)
			bad[len / 2] ^= 1; /* a flipped bit in the rows */
		else if (kind == 1)
			len -= 100; /* truncated */
		else if (kind == 2)
			memcpy(bad, good[3], len); /* block 3's piece under block 2's key */
		else
			bad[8] ^= 1; /* the header's block index */
		CHECK(replace_piece(kl, &keys[2], bad, len) == 0);
		t_variant = kind == 0	? "flipped"
			    : kind == 1 ? "truncated"
			    : kind == 2 ? "misplaced"
					: "index";
		CHECK(decode(&l, kl, t, n, got) == 2 * B);
		CHECK(memcmp(got, ref, l.n_vocab * 4) == 0);
	}
	t_variant = "repaired";
	CHECK(replace_piece(kl, &keys[2], good[2], glen[2]) == 0);
	CHECK(decode(&l, kl, t, n, got) == 6 * B);
	struct kvgl_stats st;
	kvgl_stats_get(kl, &st);
	CHECK(st.rejected_pieces == 4 && st.set_data_failures == 0);
	kvgl_close(kl);
	free(got), free(ref);
	cmd_llama_close(&l);
}

int main(int argc, char **argv)
{
	RUN(test_cut_join);
	kvgl_join_split_bytes = 0; /* again, with half of the pieces joined on a second thread */
	t_variant = "two threads";
	RUN(test_cut_join);
	t_variant = "";
	RUN(test_damaged_piece);
	RUN(test_bad_states);
	if (argc > 1) {
		model_path = argv[1];
		RUN(test_damaged_in_grid);
	}
	return t_failed ? 1 : 0;
}
