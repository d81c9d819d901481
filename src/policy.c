/*
 * policy.c - the registry of eviction policies.  A new policy is one file policy_NAME.c
 * exporting `const struct policy_ops policy_NAME_ops`, and one line in each table below.
 */
#include <string.h>

#include "policy.h"

extern const struct policy_ops policy_lru_ops;
extern const struct policy_ops policy_prefix_ops;
extern const struct policy_ops policy_s3fifo_ops;
extern const struct policy_ops policy_cost_ops;
extern const struct policy_ops policy_reuse_ops;
extern const struct policy_ops policy_density_ops;

static const struct policy_ops *const policies[] = {
    &policy_lru_ops,
    &policy_prefix_ops,
    &policy_s3fifo_ops,
    &policy_cost_ops,
    &policy_reuse_ops,
    &policy_density_ops,
    NULL,
};

const char *const policy_names[] = {
    "lru", "prefix", "s3fifo", "cost", "reuse", "density", NULL,
};

const struct policy_ops *policy_find(const char *name)
{
	for (int i = 0; policies[i]; i++)
		if (strcmp(policies[i]->name, name) == 0)
			return policies[i];
	return NULL;
}
