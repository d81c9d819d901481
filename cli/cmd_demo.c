#include "cli.h"
int cmd_demo(int argc, char **argv) { return cli_fail("demo", "todo"); }
