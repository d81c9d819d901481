#include "llm.h"
int llm_cmd_demo(int argc, char **argv) { return llm_fail(2, "demo", "not yet"); }
