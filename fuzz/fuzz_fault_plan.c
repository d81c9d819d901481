/*
 * fuzz_fault_plan.c - libFuzzer target: the fault backend's plan parser (io_fault_plan.c).
 * Any string must be accepted or refused with a reason, never crash or read out of bounds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io_fault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char plan[512], err[128];
	if (size >= sizeof(plan))
		return 0;
	memcpy(plan, data, size);
	plan[size] = 0;
	err[0] = 0;
	int rc = io_fault_plan_check(plan, err, sizeof(err));
	if (rc != 0 && rc != -EINVAL)
		abort();
	if (rc == -EINVAL && strncmp(err, "fault plan: ", 12))
		abort(); /* a refusal always says why */
	if (rc == 0 && io_fault_plan_check(plan, NULL, 0) != 0)
		abort();
	return 0;
}
