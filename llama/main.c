/* kvgrid-llama: llama.cpp's KV on the grid (doc/LLAMA.md). */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

static int usage(FILE *f)
{
	fprintf(
	    f, "usage: kvgrid-llama COMMAND [options]   (COMMAND --help for its options)\n"
	       "  mkmodel   write a Llama GGUF with random weights (--size small|large)\n"
	       "  run       decode prompts with the grid: restore, prefill the rest, store\n"
	       "  bench     TTFT of a cold prefill against a prefix restored from the grid\n"
	       "  demo      agent sessions in two processes sharing one kvgridd, then a restart\n");
	return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	const char *c = argv[1];
	if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help"))
		return usage(stdout);
	if (!strcmp(c, "mkmodel"))
		return cmd_mkmodel(argc - 1, argv + 1);
	if (!strcmp(c, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(c, "bench"))
		return cmd_bench(argc - 1, argv + 1);
	if (!strcmp(c, "demo"))
		return cmd_demo(argc - 1, argv + 1);
	fprintf(stderr, "kvgrid-llama: unknown command '%s'\n", c);
	return usage(stderr);
}
