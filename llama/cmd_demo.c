#include "cmd.h"
int cmd_demo(int argc, char **argv)
{
	return 2;
}
