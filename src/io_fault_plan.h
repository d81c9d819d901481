/*
 * io_fault_plan.h - the fault backend's plan, parsed (io_fault_plan.c) and applied
 * (io_fault.c); private to those two files.  The grammar is in doc/DURABILITY.md.
 */
#ifndef KVG_IO_FAULT_PLAN_H
#define KVG_IO_FAULT_PLAN_H

#include <stddef.h>
#include <stdint.h>

enum fault_kind { FK_FAIL, FK_SHORT, FK_TEAR, FK_FLIP, FK_POWERCUT, FK_DELAY };
#define OP_ANY		 3
#define FAULT_RULES_MAX	 16
#define UNDO_MAX_DEFAULT (64ull << 20)

struct fault_rule {
	int kind;	/* enum fault_kind */
	int op;		/* enum io_op or OP_ANY */
	uint64_t first; /* 1-based range of the op's count, inclusive */
	uint64_t last;
	double prob; /* > 0: each matching operation with this probability instead */
	int err;     /* FK_FAIL: positive errno; FK_DELAY: milliseconds */
};

struct fault_plan {
	uint64_t seed;
	uint64_t undo_max;
	char inner[8]; /* "uring", "psync" or "" (the caller's choice) */
	int cut_mixed; /* cutmode=mixed: unsynced writes lost, kept or torn */
	int cut_exit;  /* exit=N: the process dies with status N once the power cut is done */
	int n_rules;
	struct fault_rule rules[FAULT_RULES_MAX];
};

/*
 * Parses plan s (NULL: the empty plan) into *p.  Returns 0, or -EINVAL with a one-line reason
 * in err (which may be NULL).  Pure: safe on any string (fuzzed through io_fault_plan_check).
 */
int io_fault_plan_parse(const char *s, struct fault_plan *p, char *err, size_t err_len);

#endif
