/* cmd_sim.c - placeholder: `kvgrid sim` is not built yet. */
#include "cli.h"

int cmd_sim(int argc, char **argv)
{
	return cli_fail("sim", "not available in this build yet");
}
