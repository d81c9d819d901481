/* cmd_stress.c - placeholder: `kvgrid stress` is not built yet. */
#include "cli.h"

int cmd_stress(int argc, char **argv)
{
	return cli_fail("stress", "not available in this build yet");
}
