/*
 * test_conf.c - the "name = value" reader (src/conf.c) that the grid's, kvgridd's, the
 * engine's model and the cost model's files share, and err_set() (src/err.c): what a line
 * may hold, how errors name the file and line, and that a reason buffer may be absent.
 */
#include <errno.h>

#include "conf.h"
#include "err.h"
#include "t.h"

struct seen {
	int n;
	char names[8][64];
	char values[8][256];
	int fail_at; /* 1-based setting that the callback refuses; 0: none */
};

static int remember(void *ctx, const char *name, const char *value, char *why, size_t why_len)
{
	struct seen *s = ctx;
	if (++s->n == s->fail_at)
		return err_set(why, why_len, -ERANGE, "%s: refused", name);
	if (s->n <= 8) {
		snprintf(s->names[s->n - 1], sizeof(s->names[0]), "%s", name);
		snprintf(s->values[s->n - 1], sizeof(s->values[0]), "%s", value);
	}
	return 0;
}

static int read_text(const char *text, struct seen *s, char *err, size_t err_len)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	if (!f)
		return -errno;
	int rc = conf_read(f, "t.conf", remember, s, err, err_len);
	fclose(f);
	return rc;
}

/* Description: comments, blank lines, white space around both parts and CRLF endings are
 * ignored; a value keeps inner spaces and any '=' after the first. */
static void syntax_accepted(void)
{
	struct seen s = {0};
	char err[256] = "";
	CHECK_RC(read_text("# head\n\n  a = 1  \r\nb=x y\t# tail\n\t\nc = k=v\nd =\n", &s, err,
			   sizeof(err)),
		 0);
	CHECK(s.n == 4);
	CHECK(!strcmp(s.names[0], "a") && !strcmp(s.values[0], "1"));
	CHECK(!strcmp(s.names[1], "b") && !strcmp(s.values[1], "x y"));
	CHECK(!strcmp(s.names[2], "c") && !strcmp(s.values[2], "k=v"));
	CHECK(!strcmp(s.names[3], "d") && !strcmp(s.values[3], ""));
	s = (struct seen){0};
	CHECK_RC(read_text("last = no newline", &s, err, sizeof(err)), 0);
	CHECK(s.n == 1 && !strcmp(s.values[0], "no newline"));
}

/* Description: a line without '=' is KVG_ECONFIG with "name:line:", and reading stops there
 * (settings before it were applied). */
static void syntax_refused(void)
{
	struct seen s = {0};
	char err[256] = "";
	CHECK_RC(read_text("a = 1\n\nnot a setting\nb = 2\n", &s, err, sizeof(err)), KVG_ECONFIG);
	CHECK(s.n == 1);
	CHECK(!strcmp(err, "t.conf:3: expected 'name = value'"));
}

/* Description: the callback's code and reason come back with the file and line. */
static void callback_error_has_line(void)
{
	struct seen s = {.fail_at = 2};
	char err[256] = "";
	CHECK_RC(read_text("a = 1\n# c\nb = 2\nc = 3\n", &s, err, sizeof(err)), -ERANGE);
	CHECK(s.n == 2);
	CHECK(!strcmp(err, "t.conf:3: b: refused"));
}

/* Description: a line longer than CONF_LINE_MAX is refused with its number, not split;
 * a line of exactly the longest length that ends the file is read. */
static void long_lines(void)
{
	char *text = malloc(3 * CONF_LINE_MAX);
	CHECK(text);
	int n = snprintf(text, 3 * CONF_LINE_MAX, "a = 1\nb = ");
	memset(text + n, 'v', CONF_LINE_MAX);
	strcpy(text + n + CONF_LINE_MAX, "\nc = 3\n");
	struct seen s = {0};
	char err[256] = "";
	int rc = read_text(text, &s, err, sizeof(err));
	CHECK_RC(rc, KVG_ECONFIG);
	CHECK(s.n == 1 && !strcmp(err, "t.conf:2: line too long"));

	n = snprintf(text, 3 * CONF_LINE_MAX, "b = ");
	memset(text + n, 'v', CONF_LINE_MAX - 1 - n);
	text[CONF_LINE_MAX - 1] = 0; /* CONF_LINE_MAX - 1 bytes, no newline: fits */
	s = (struct seen){0};
	rc = read_text(text, &s, err, sizeof(err));
	free(text);
	CHECK_RC(rc, 0);
	CHECK(s.n == 1);
}

/* Description: a missing file is -ENOENT with its path; err may be NULL or of length 0,
 * and a reason longer than err is truncated and terminated. */
static void missing_file_and_small_err(void)
{
	struct seen s = {0};
	char err[256] = "";
	CHECK_RC(conf_load("/nonexistent/kvgrid-test.conf", remember, &s, err, sizeof(err)),
		 -ENOENT);
	CHECK(strstr(err, "/nonexistent/kvgrid-test.conf: ") == err);
	CHECK_RC(conf_load("/nonexistent/kvgrid-test.conf", remember, &s, NULL, 0), -ENOENT);
	CHECK_RC(read_text("x\n", &s, NULL, 0), KVG_ECONFIG);
	char tiny[8];
	memset(tiny, 'z', sizeof(tiny));
	CHECK_RC(read_text("x\n", &s, tiny, 1), KVG_ECONFIG);
	CHECK(tiny[0] == 0 && tiny[1] == 'z');
	CHECK_RC(read_text("x\n", &s, tiny, sizeof(tiny)), KVG_ECONFIG);
	CHECK(!strcmp(tiny, "t.conf:"));
	CHECK_RC(err_set(NULL, 0, -EINVAL, "%s", "nothing written"), -EINVAL);
}

int main(void)
{
	RUN(syntax_accepted);
	RUN(syntax_refused);
	RUN(callback_error_has_line);
	RUN(long_lines);
	RUN(missing_file_and_small_err);
	return t_failed ? 1 : 0;
}
