/*
 * llama.cpp's sequence state, cut into pieces of block_tokens tokens and joined back.
 *
 * llama_state_seq_get_data() writes one sequence of a plain (unified-cell) KV cache as
 * (llama.cpp v0.4.0, src/llama-context.cpp and src/llama-kv-cache.cpp; little-endian):
 *
 *   u32 magic 0xaf143cd8 | i32 seq_id | u32 n_stream
 *   per stream: u32 cell_count, and when it is not 0:
 *     cell_count x { i32 pos | u32 n_seq_id (1) | i32 seq_id }
 *     u32 v_trans | u32 n_layer
 *     n_layer x { i32 k_type | u64 k_row_bytes | cell_count rows of k_row_bytes }
 *     v_trans 0: n_layer x { i32 v_type | u64 v_row_bytes | cell_count rows }
 *     v_trans 1: n_layer x { i32 v_type | u32 v_el_bytes | u32 n_embd_v
 *                            | n_embd_v x (cell_count elements of v_el_bytes) }
 *
 * A piece is the part of that state for tokens [i*B, (i+1)*B), with its own header:
 *
 *   0   u32 magic "KVGL" (0x4c47564b)    4  u32 version (1)
 *   8   u32 block index i               12  u32 tokens B
 *   16  u32 n_layer                     20  u32 v_trans
 *   24  u32 n_stream of the context     28  u32 0
 *   32  u64 body bytes                  40  u64 XXH3-64 of the body, seeded with
 *                                           the XXH3-64 of bytes 0..31
 *   48  key of the block (32 bytes)
 *   80  body: n_layer x { i32 k_type, u32 0, u64 k_row_bytes }
 *             n_layer x { i32 v_type, u32 v_el_bytes, u32 n_embd_v, u32 0, u64 v_row_bytes }
 *             then per layer the B K rows, then per layer the B V rows (v_trans 0) or, per
 *             layer and per dimension, B elements (v_trans 1)
 *
 * Parsing checks every field and every length; anything unexpected is an error (the caller
 * serves a miss), never a read out of bounds.
 */
#ifndef KVGL_STATE_H
#define KVGL_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define KVGL_SEQ_MAGIC	     0xaf143cd8u
#define KVGL_PIECE_MAGIC     0x4c47564bu
#define KVGL_PIECE_VERSION   1u
#define KVGL_PIECE_HDR_BYTES 80u
#define KVGL_LAYERS_MAX	     1024u

struct kvgl_layer {
	int32_t k_type;
	uint64_t k_row; /* bytes of one token's K */
	int32_t v_type;
	uint32_t v_el;	   /* bytes of one V element (v_trans 1) */
	uint32_t n_embd_v; /* V dimensions (v_trans 1) */
	uint64_t v_row;	   /* bytes of one token's V (v_trans 0: as written; 1: v_el * n_embd_v) */
};

/* A parsed sequence state: where each layer's rows start inside the caller's bytes. */
struct kvgl_seq {
	uint32_t n_stream;
	uint32_t n_cells; /* tokens, positions 0..n_cells-1 in order */
	uint32_t v_trans;
	uint32_t n_layer;
	struct kvgl_layer *layers; /* n_layer, owned */
	const uint8_t **k_data;	   /* n_layer pointers into the state */
	const uint8_t **v_data;	   /* n_layer pointers into the state */
};

/*
 * Parses a whole-sequence state of len bytes.  Fails (-EINVAL, with a one-line reason in
 * why) on anything but one non-empty stream of cells at positions 0..n-1, each in one
 * sequence, with consistent layer records.  seq points into state: state outlives it.
 */
int kvgl_seq_parse(const uint8_t *state, size_t len, struct kvgl_seq *seq, char *why,
		   size_t why_len);
void kvgl_seq_free(struct kvgl_seq *seq);

/* Bytes of one piece of B tokens of seq's shape, header included. */
size_t kvgl_piece_bytes(const struct kvgl_seq *seq, uint32_t b_tokens);

/* Writes piece `index` (tokens [index*B, (index+1)*B), which seq must hold) into out,
 * which has kvgl_piece_bytes() bytes; key is the block's key (32 bytes). */
void kvgl_piece_write(const struct kvgl_seq *seq, uint32_t index, uint32_t b_tokens,
		      const uint8_t key[32], uint8_t *out);

/* A piece's bytes, len in all: in segments, in order (a loaded buffer is one segment; a
 * view of the grid's DRAM may be several). */
struct kvgl_src {
	const struct iovec *iov;
	int n_iov;
	size_t len;
};

/*
 * Checks a piece: header, version, index, tokens, key, length, the checksum (if verify_sum:
 * else kvgl_join must verify it), and that its layer table equals ref's (when ref->n_layer
 * is not 0) or else fills ref from it.  Returns 0 or -EINVAL with the reason in why
 * (-ENOMEM).
 */
int kvgl_piece_check(const struct kvgl_src *src, uint32_t index, uint32_t b_tokens,
		     const uint8_t key[32], int verify_sum, struct kvgl_seq *ref, char *why,
		     size_t why_len);

/* Bytes of the state kvgl_join() writes for n pieces of shape ref. */
size_t kvgl_join_bytes(const struct kvgl_seq *ref, size_t n, uint32_t b_tokens);

/*
 * Writes the state of n checked pieces (tokens 0..n*B-1) for sequence seq_id into out, of
 * kvgl_join_bytes() bytes.  With verify_sum, checks each piece's checksum on the way (one
 * pass over the bytes instead of two) and returns how many pieces from the start passed:
 * below n, out must be joined again from that many.  Returns n without verify_sum, 0 on
 * -ENOMEM.
 */
/* Joins of at least this many bytes copy half of the pieces on a second thread (tests set
 * it to 0 to exercise that path). */
extern size_t kvgl_join_split_bytes;

size_t kvgl_join(const struct kvgl_seq *ref, const struct kvgl_src *pieces, size_t n,
		 uint32_t b_tokens, int32_t seq_id, int verify_sum, uint8_t *out);

/*
 * The same join, a few pieces at a time, so that pieces still loading do not hold up those
 * that arrived: kvgl_join_begin() writes the headers of a state of n pieces into out
 * (kvgl_join_bytes() bytes); kvgl_join_add() copies pieces [i0, i1) into place (pieces[]
 * indexed from 0, checked), verifying their checksums if asked, and returns how many from
 * i0 passed; kvgl_join_end() frees the joiner.  A piece that fails means out must be joined
 * again with fewer pieces.  kvgl_join_begin() returns NULL on -ENOMEM.
 */
struct kvgl_joiner;
struct kvgl_joiner *kvgl_join_begin(const struct kvgl_seq *ref, size_t n, uint32_t b_tokens,
				    int32_t seq_id, uint8_t *out);
size_t kvgl_join_add(struct kvgl_joiner *j, const struct kvgl_src *pieces, size_t i0, size_t i1,
		     int verify_sum);
void kvgl_join_end(struct kvgl_joiner *j);

#endif
