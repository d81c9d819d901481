/* cmd_fsck.c - placeholder: `kvgrid fsck` is not built yet. */
#include "cli.h"

int cmd_fsck(int argc, char **argv)
{
	return cli_fail("fsck", "not available in this build yet");
}
