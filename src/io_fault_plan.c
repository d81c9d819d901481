/*
 * io_fault_plan.c - parsing the fault backend's plan: "name=value" clauses separated by ';',
 * each either a setting (seed, undo_max, inner, exit, cutmode) or a rule (fail, short, tear,
 * flip, powercut, delay) of the form OP:WHEN[:ARG].  Kept apart from the backend because it
 * is pure string handling, fuzzed on its own (fuzz_fault_plan.c), while io_fault.c is the
 * threaded backend that applies the result.  Grammar in doc/DURABILITY.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "io.h"
#include "io_fault.h"
#include "io_fault_plan.h"

static int parse_op(const char *s, size_t n, int *op)
{
	static const char *const names[] = {"read", "write", "fsync", "any"};
	for (int i = 0; i < 4; i++)
		if (strlen(names[i]) == n && !strncmp(s, names[i], n)) {
			*op = i;
			return 0;
		}
	return -1;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 19)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* "N", "N+", "N-M" or a probability "0.25" into the rule. */
static int parse_when(const char *s, size_t n, struct fault_rule *r)
{
	const char *dot = memchr(s, '.', n);
	if (dot) {
		char buf[32];
		char *end;
		if (n >= sizeof(buf))
			return -1;
		memcpy(buf, s, n);
		buf[n] = 0;
		r->prob = strtod(buf, &end);
		if (*end || !(r->prob > 0.0 && r->prob <= 1.0))
			return -1;
		r->first = 1;
		r->last = UINT64_MAX;
		return 0;
	}
	if (n > 1 && s[n - 1] == '+') {
		r->last = UINT64_MAX;
		return parse_u64(s, n - 1, &r->first) || r->first == 0 ? -1 : 0;
	}
	const char *dash = memchr(s, '-', n);
	if (dash) {
		if (parse_u64(s, (size_t)(dash - s), &r->first) ||
		    parse_u64(dash + 1, n - (size_t)(dash - s) - 1, &r->last))
			return -1;
		return r->first == 0 || r->last < r->first ? -1 : 0;
	}
	if (parse_u64(s, n, &r->first) || r->first == 0)
		return -1;
	r->last = r->first;
	return 0;
}

static int parse_errno(const char *s, size_t n, int *err)
{
	static const struct {
		const char *name;
		int err;
	} names[] = {{"EIO", EIO},	 {"ENOSPC", ENOSPC}, {"EINTR", EINTR},
		     {"EAGAIN", EAGAIN}, {"EROFS", EROFS},   {"EDQUOT", EDQUOT},
		     {"ENOMEM", ENOMEM}, {"EBADF", EBADF},   {"EINVAL", EINVAL}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == n && !strncmp(s, names[i].name, n)) {
			*err = names[i].err;
			return 0;
		}
	uint64_t v;
	if (parse_u64(s, n, &v) || v == 0 || v > 4095)
		return -1;
	*err = (int)v;
	return 0;
}

/* Splits "a:b:c" (length n) into at most 3 fields; returns the count, or -1 for more. */
static int split3(const char *s, size_t n, const char *f[3], size_t fn[3])
{
	int k = 0;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != ':')
			continue;
		if (k == 3)
			return -1;
		f[k] = s + start;
		fn[k++] = i - start;
		start = i + 1;
	}
	return k;
}

/* A clause that sets the plan rather than adding a rule: 1 if name is one (then *rc is set). */
static int parse_setting(struct fault_plan *p, const char *name, size_t nn, const char *v,
			 size_t vn, char *err, size_t err_len, int *rc)
{
	uint64_t n;
	*rc = 0;
#define IS(lit) (nn == sizeof(lit) - 1 && !strncmp(name, lit, nn))
	if (IS("seed")) {
		if (parse_u64(v, vn, &p->seed))
			*rc = err_set(err, err_len, -EINVAL, "fault plan: bad seed");
	} else if (IS("undo_max")) {
		if (parse_u64(v, vn, &n) || n > (1ull << 20))
			*rc = err_set(err, err_len, -EINVAL,
				      "fault plan: undo_max is MiB, 0..1048576");
		else
			p->undo_max = n << 20;
	} else if (IS("inner")) {
		if (vn == 5 && (!strncmp(v, "uring", 5) || !strncmp(v, "psync", 5))) {
			memcpy(p->inner, v, 5);
			p->inner[5] = 0;
		} else {
			*rc = err_set(err, err_len, -EINVAL, "fault plan: inner is uring or psync");
		}
	} else if (IS("exit")) {
		if (parse_u64(v, vn, &n) || n > 255)
			*rc =
			    err_set(err, err_len, -EINVAL, "fault plan: exit is a status, 0..255");
		else
			p->cut_exit = (int)n;
	} else if (IS("cutmode")) {
		if ((vn == 4 && !strncmp(v, "drop", 4)) || (vn == 5 && !strncmp(v, "mixed", 5)))
			p->cut_mixed = vn == 5;
		else
			*rc =
			    err_set(err, err_len, -EINVAL, "fault plan: cutmode is drop or mixed");
	} else {
		return 0;
	}
#undef IS
	return 1;
}

/* One "name=value" clause; value has length vn. */
static int parse_clause(struct fault_plan *p, const char *name, size_t nn, const char *v, size_t vn,
			char *err, size_t err_len)
{
	const char *f[3];
	size_t fn[3];
	struct fault_rule r = {0};
	int k;

	if (parse_setting(p, name, nn, v, vn, err, err_len, &k))
		return k;
#define IS(lit) (nn == sizeof(lit) - 1 && !strncmp(name, lit, nn))
	if (IS("fail"))
		r.kind = FK_FAIL;
	else if (IS("short"))
		r.kind = FK_SHORT;
	else if (IS("tear"))
		r.kind = FK_TEAR;
	else if (IS("flip"))
		r.kind = FK_FLIP;
	else if (IS("powercut"))
		r.kind = FK_POWERCUT;
	else if (IS("delay"))
		r.kind = FK_DELAY;
	else
		return err_set(err, err_len, -EINVAL, "fault plan: unknown clause '%.*s'", (int)nn,
			       name);
#undef IS
	k = split3(v, vn, f, fn);
	if (k < 1)
		return err_set(err, err_len, -EINVAL, "fault plan: too many fields in a clause");
	if (r.kind == FK_POWERCUT && k == 1) { /* "powercut=N": at the Nth fsync */
		r.op = IO_FSYNC;
		f[1] = f[0];
		fn[1] = fn[0];
		k = 2;
	} else if (k < 2 || parse_op(f[0], fn[0], &r.op)) {
		return err_set(err, err_len, -EINVAL,
			       "fault plan: expected OP:WHEN (OP read|write|fsync|any)");
	}
	if (parse_when(f[1], fn[1], &r))
		return err_set(err, err_len, -EINVAL,
			       "fault plan: WHEN is N, N+, N-M or a probability");
	if (r.kind == FK_FAIL) {
		if (k != 3 || parse_errno(f[2], fn[2], &r.err))
			return err_set(err, err_len, -EINVAL,
				       "fault plan: fail=OP:WHEN:ERRNO (EIO, ENOSPC...)");
	} else if (r.kind == FK_DELAY) {
		uint64_t ms;
		if (k != 3 || parse_u64(f[2], fn[2], &ms) || ms > 60000)
			return err_set(err, err_len, -EINVAL,
				       "fault plan: delay=OP:WHEN:MS (MS 0..60000)");
		r.err = (int)ms;
	} else if (k != 2) {
		return err_set(err, err_len, -EINVAL, "fault plan: too many fields");
	}
	if ((r.kind == FK_TEAR && r.op != IO_WRITE) || (r.kind == FK_FLIP && r.op != IO_READ) ||
	    (r.kind == FK_SHORT && r.op == IO_FSYNC))
		return err_set(err, err_len, -EINVAL,
			       "fault plan: tear is for writes, flip for reads, short for "
			       "reads and writes");
	if (p->n_rules == FAULT_RULES_MAX)
		return err_set(err, err_len, -EINVAL, "fault plan: more than %d rules",
			       FAULT_RULES_MAX);
	p->rules[p->n_rules++] = r;
	return 0;
}

int io_fault_plan_parse(const char *s, struct fault_plan *p, char *err, size_t err_len)
{
	memset(p, 0, sizeof(*p));
	p->seed = 1;
	p->undo_max = UNDO_MAX_DEFAULT;
	if (!s)
		return 0;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == ';')
			s++;
		if (!*s)
			break;
		const char *end = s;
		while (*end && *end != ';')
			end++;
		const char *eq = memchr(s, '=', (size_t)(end - s));
		if (!eq)
			return err_set(err, err_len, -EINVAL, "fault plan: expected name=value");
		const char *v = eq + 1;
		const char *ve = end;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		int rc = parse_clause(p, s, (size_t)(eq - s), v, (size_t)(ve - v), err, err_len);
		if (rc)
			return rc;
		s = end;
	}
	return 0;
}

int io_fault_plan_check(const char *plan, char *err, size_t err_len)
{
	struct fault_plan p;
	return io_fault_plan_parse(plan, &p, err, err_len);
}
