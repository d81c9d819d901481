/* cmd_replay.c - placeholder: `kvgrid replay` is not built yet. */
#include "cli.h"

int cmd_replay(int argc, char **argv)
{
	return cli_fail("replay", "not available in this build yet");
}
