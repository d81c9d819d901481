/*
 * Description: the Mooncake JSONL reader loads well-formed traces whole (dense ids in order
 * of first sight, raw ids kept, extra keys ignored, blank lines skipped), rejects a
 * malformed line with its line number and a reason, or skips bad lines and counts them
 * when asked; the parser never reads past the line it is given.
 */
#include <errno.h>

#include "t.h"
#include "trace.h"

static char dir[4096];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

/* A small trace loads whole: requests, dense ids, raw ids, token totals. */
static void test_load_good(void)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/good.jsonl", dir);
	write_file(
	    path,
	    "{\"timestamp\": 0, \"input_length\": 1000, \"output_length\": 5, "
	    "\"hash_ids\": [70, 71]}\n"
	    "\n"
	    "{\"hash_ids\":[70,71,9000000000],\"input_length\":1100,\"timestamp\":3,"
	    "\"output_length\":7,\"extra\":{\"a\":[1,\"x]\"]},\"s\":\"q\\\"\"}\n"
	    "   \n"
	    "{\"timestamp\": 9, \"input_length\": 10, \"output_length\": 0, \"hash_ids\": [5]}\n");
	struct trace t;
	char err[256] = "";
	CHECK_RC(trace_load(path, NULL, &t, err, sizeof(err)), 0);
	CHECK(t.n_reqs == 3);
	CHECK(t.n_ids == 6);
	CHECK(t.n_distinct == 4);
	CHECK(t.block_tokens == 512);
	CHECK(t.input_tokens == 2110);
	CHECK(t.skipped == 0);
	CHECK(t.reqs[1].timestamp_ms == 3 && t.reqs[1].output_length == 7);
	CHECK(t.reqs[1].first == 2 && t.reqs[1].n_blocks == 3);
	/* dense ids by first sight; raw ids kept as written */
	CHECK(t.ids[0] == 0 && t.ids[1] == 1 && t.ids[2] == 0 && t.ids[3] == 1);
	CHECK(t.ids[4] == 2 && t.ids[5] == 3);
	CHECK(t.raw_ids[4] == 9000000000ull && t.raw_ids[5] == 5);
	trace_free(&t);
	CHECK(t.reqs == NULL && t.n_reqs == 0);
}

/* Each kind of malformed line fails the load with "path:LINE: reason". */
static void test_bad_line_reports_line_number(void)
{
	static const struct {
		const char *line;
		const char *reason;
	} bad[] = {
	    {"{\"timestamp\": 1, \"input_length\": 5, \"hash_ids\": [1, x]}", "hash_ids"},
	    {"{\"timestamp\": 1, \"input_length\": -5, \"hash_ids\": [1]}", "input_length"},
	    {"{\"timestamp\": 1.5, \"input_length\": 5, \"hash_ids\": [1]}", "timestamp"},
	    {"{\"timestamp\": 1, \"input_length\": 5}", "missing hash_ids"},
	    {"{\"timestamp\": 1, \"hash_ids\": [1]}", "missing input_length"},
	    {"{\"input_length\": 5, \"hash_ids\": [1]}", "missing timestamp"},
	    {"{\"timestamp\": 1, \"input_length\": 5, \"hash_ids\": [1, 2", "hash_ids"},
	    {"[1, 2, 3]", "object"},
	    {"{\"timestamp\": 1, \"input_length\": 5, \"hash_ids\": [1]} trailing", "trailing"},
	    {"{\"timestamp\": 1, \"input_length\": 99999999999, \"hash_ids\": [1]}", "too large"},
	};
	char path[4200], text[512];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "%s/bad%zu.jsonl", dir, i);
		snprintf(text, sizeof(text),
			 "{\"timestamp\": 0, \"input_length\": 1, \"hash_ids\": [0]}\n\n%s\n",
			 bad[i].line);
		write_file(path, text);
		struct trace t;
		char err[512] = "", want[4300];
		CHECK_RC(trace_load(path, NULL, &t, err, sizeof(err)), -EINVAL);
		snprintf(want, sizeof(want), "%s:3: ", path);
		if (strncmp(err, want, strlen(want)) || !strstr(err, bad[i].reason)) {
			fprintf(stderr, "case %zu: got '%s', want '%s...%s'\n", i, err, want,
				bad[i].reason);
			CHECK(0);
		}
		CHECK(t.reqs == NULL && t.n_reqs == 0);
	}
}

/* With skip_bad, malformed lines are counted and the first one's number kept. */
static void test_skip_bad_counts(void)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/mixed.jsonl", dir);
	write_file(path, "{\"timestamp\": 0, \"input_length\": 1, \"hash_ids\": [0]}\n"
			 "garbage\n"
			 "{\"timestamp\": 1, \"input_length\": 600, \"hash_ids\": [0, 1]}\n"
			 "{\"timestamp\": 2}\n");
	struct trace t;
	struct trace_opts o = {.skip_bad = 1};
	char err[256];
	CHECK_RC(trace_load(path, &o, &t, err, sizeof(err)), 0);
	CHECK(t.n_reqs == 2);
	CHECK(t.skipped == 2);
	CHECK(t.first_bad_line == 2);
	trace_free(&t);
}

/* A missing file is -ENOENT with the path in the reason; max_reqs stops early. */
static void test_missing_file_and_max_reqs(void)
{
	char path[4200], err[4400];
	struct trace t;
	snprintf(path, sizeof(path), "%s/nope.jsonl", dir);
	CHECK_RC(trace_load(path, NULL, &t, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "nope.jsonl") != NULL);
	snprintf(path, sizeof(path), "%s/three.jsonl", dir);
	write_file(path, "{\"timestamp\":0,\"input_length\":1,\"hash_ids\":[0]}\n"
			 "{\"timestamp\":1,\"input_length\":1,\"hash_ids\":[1]}\n"
			 "{\"timestamp\":2,\"input_length\":1,\"hash_ids\":[2]}\n");
	struct trace_opts o = {.max_reqs = 2};
	CHECK_RC(trace_load(path, &o, &t, err, sizeof(err)), 0);
	CHECK(t.n_reqs == 2 && t.n_distinct == 2);
	trace_free(&t);
}

/* The parser stops at the length it is given: a line cut anywhere is an error, never a
 * read past the cut (ASan checks the reads; the copy has no terminator). */
static void test_parse_every_cut(void)
{
	const char *line = "{\"timestamp\": 12, \"input_length\": 1300, \"output_length\": 4, "
			   "\"hash_ids\": [3, 4, 5], \"note\": \"a,b}\"}";
	size_t n = strlen(line);
	uint64_t ids[8];
	size_t n_ids;
	struct trace_req rq;
	char why[128];
	for (size_t cut = 0; cut < n; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, line, cut);
		CHECK(trace_parse_line(copy, cut, &rq, ids, 8, &n_ids, why, sizeof(why)) ==
		      -EINVAL);
		free(copy);
	}
	CHECK_RC(trace_parse_line(line, n, &rq, ids, 8, &n_ids, why, sizeof(why)), 0);
	CHECK(rq.timestamp_ms == 12 && rq.input_length == 1300 && rq.n_blocks == 3);
	CHECK(n_ids == 3 && ids[0] == 3 && ids[2] == 5);
	CHECK_RC(trace_parse_line(line, n, &rq, ids, 2, &n_ids, why, sizeof(why)), -E2BIG);
}

/* Tokens per block: full blocks, then what is left of input_length, then 0. */
static void test_block_tokens(void)
{
	struct trace_req rq = {.input_length = 1100, .n_blocks = 3};
	CHECK(trace_block_tokens(&rq, 0, 512) == 512);
	CHECK(trace_block_tokens(&rq, 1, 512) == 512);
	CHECK(trace_block_tokens(&rq, 2, 512) == 76);
	CHECK(trace_block_tokens(&rq, 3, 512) == 0);
}

int main(void)
{
	t_tmpdir(dir, sizeof(dir), "trace");
	RUN(test_load_good);
	RUN(test_bad_line_reports_line_number);
	RUN(test_skip_bad_counts);
	RUN(test_missing_file_and_max_reqs);
	RUN(test_parse_every_cut);
	RUN(test_block_tokens);
	t_rmdir(dir);
	return t_failed ? 1 : 0;
}
