/*
 * cli.h - the subcommands of build/kvgrid.  Each lives in cli/cmd_NAME.c as
 * `int cmd_NAME(int argc, char **argv)` (argv[0] is the subcommand's name) and returns the
 * process exit status: 0 success, 1 a failed check or operation, 2 bad usage.
 * Errors are one line on stderr, "kvgrid NAME: reason".
 */
#ifndef KVG_CLI_H
#define KVG_CLI_H

#include <stdint.h>
#include <stdio.h>

int cmd_put(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_lookup(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_stress(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_sim(int argc, char **argv);

/* Parses "123", "4K", "1M", "2G", "1T" (powers of 1024).  0 on success, -1 on bad input. */
int cli_parse_size(const char *s, uint64_t *out);
/* Parses a comma-separated list of percentages in (0, 100] into out (at most max); 0, or
 * -1 if a value is bad, there are too many or none.  s is cut up (strtok). */
int cli_parse_pcts(char *s, double *out, size_t max, size_t *n);
/* Prints "kvgrid CMD: msg" on stderr and returns 2 (usage) -- for `return cli_usage(...)`. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "kvgrid CMD: msg" on stderr and returns 1. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
