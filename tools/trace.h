/*
 * trace.h - request traces with KV-block identity, in Mooncake's JSONL format.
 *
 * One request per line: {"timestamp": ms, "input_length": tokens, "output_length": tokens,
 * "hash_ids": [id, ...]}, one id per prompt block (512 tokens per id in Mooncake's release);
 * equal ids mean an equal prefix up to and including that block.  Other keys are ignored.
 * A trace is read whole into memory (the conversation trace is 288,500 ids: about 3 MB) so
 * that a replay or a simulation runs without I/O or allocation.  Ids are remapped to dense
 * numbers 0..n_distinct-1 in order of first appearance, which simulators use as slots; the
 * original ids are kept for deriving store keys.
 *
 * Not thread-safe; a loaded trace is read-only and may then be shared by threads.
 */
#ifndef KVG_TRACE_H
#define KVG_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct trace_req {
	uint64_t timestamp_ms;
	uint32_t input_length; /* tokens */
	uint32_t output_length;
	uint32_t first;	   /* index of the request's first block in trace.ids */
	uint32_t n_blocks; /* blocks of the request (the last is usually partial) */
};

struct trace {
	struct trace_req *reqs;
	size_t n_reqs;
	uint32_t *ids;	   /* dense ids, n_ids of them; request r owns [first, first+n_blocks) */
	uint64_t *raw_ids; /* the ids as written in the file, parallel to ids */
	size_t n_ids;
	uint32_t n_distinct;   /* distinct block ids */
	uint32_t block_tokens; /* tokens per id (trace_opts.block_tokens) */
	uint64_t input_tokens; /* sum of input_length */
	size_t skipped;	       /* bad lines skipped (trace_opts.skip_bad) */
	size_t first_bad_line; /* line number of the first skipped line, 0 if none */
};

struct trace_opts {
	uint32_t block_tokens; /* tokens per id; 0 means 512 (Mooncake) */
	int skip_bad;	       /* 1: skip malformed lines and count them; 0: fail on the first */
	size_t max_reqs;       /* stop after this many requests; 0 = all */
};

/*
 * Reads the JSONL file at path into t (zeroed by the caller or not: every field is set).
 * opts may be NULL (defaults).  Blank lines are ignored.  Returns 0; -errno if the file
 * cannot be read; -ENOMEM; or -EINVAL for a malformed line, with "path:LINE: reason" in
 * err.  On failure t holds nothing to free.
 */
int trace_load(const char *path, const struct trace_opts *opts, struct trace *t, char *err,
	       size_t err_len);

/* Frees what trace_load() allocated and zeroes t.  Safe on a zeroed trace. */
void trace_free(struct trace *t);

/*
 * Parses one line (len bytes, no NUL needed) into *req and up to max_ids raw ids in ids;
 * *n_ids receives the count of ids in the line (which may exceed max_ids: then -E2BIG).
 * req->first is left 0.  Returns 0 or -EINVAL with a reason (no line number) in err.
 * Exposed for tests and fuzzers.
 */
int trace_parse_line(const char *line, size_t len, struct trace_req *req, uint64_t *ids,
		     size_t max_ids, size_t *n_ids, char *err, size_t err_len);

/* Tokens of block i (0-based) of r: block_tokens, or what is left of input_length. */
static inline uint32_t trace_block_tokens(const struct trace_req *r, uint32_t i,
					  uint32_t block_tokens)
{
	uint64_t start = (uint64_t)i * block_tokens;
	if (start >= r->input_length)
		return 0;
	uint64_t left = r->input_length - start;
	return left < block_tokens ? (uint32_t)left : block_tokens;
}

#endif
