/*
 * main.c - build/kvgrid-llm: the reference engine's command line.  Dispatches to the
 * subcommands in engine/cmd_*.c (llm.h).
 */
#include <stdio.h>
#include <string.h>

#include "llm.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
    {"run", llm_cmd_run, "prefill a token sequence and greedily decode a few tokens"},
    {"bench", llm_cmd_bench, "TTFT with recompute vs prefix reloaded from a grid tier"},
    {"demo", llm_cmd_demo, "agent sessions sharing a long prompt: recompute vs the grid"},
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvgrid-llm COMMAND [options]   (kvgrid-llm COMMAND --help for each)\n\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-6s %s\n", cmds[i].name, cmds[i].help);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kvgrid-llm: unknown command '%s' (kvgrid-llm --help lists them)\n",
		argv[1]);
	return 2;
}
