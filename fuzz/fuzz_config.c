/*
 * fuzz_config.c - libFuzzer target: the configuration parser (kvg_config_set and
 * kvg_config_load).  The first byte picks the entry point; the rest is "name=value" for
 * kvg_config_set or the text of a config file for kvg_config_load.  Every input must end in
 * 0 or KVG_ECONFIG with a NUL-terminated reason, and leave a config whose fields stay usable.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvgrid.h"

static void check_cfg(const struct kvg_config *cfg)
{
	/* strings stay terminated whatever was set */
	if (!memchr(cfg->model_id, 0, sizeof(cfg->model_id)) ||
	    !memchr(cfg->tenant, 0, sizeof(cfg->tenant)) ||
	    !memchr(cfg->dir, 0, sizeof(cfg->dir)) ||
	    !memchr(cfg->fault_plan, 0, sizeof(cfg->fault_plan)) ||
	    !memchr(cfg->policy, 0, sizeof(cfg->policy)))
		abort();
	(void)kvg_config_block_bytes(cfg);
}

static void one_set(const uint8_t *data, size_t size)
{
	char buf[2048], err[256];
	struct kvg_config cfg;
	if (size >= sizeof(buf))
		return;
	memcpy(buf, data, size);
	buf[size] = 0;
	char *eq = strchr(buf, '=');
	const char *value = "";
	if (eq) {
		*eq = 0;
		value = eq + 1;
	}
	kvg_config_init(&cfg);
	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = 0;
	int rc = kvg_config_set(&cfg, buf, value, err, sizeof(err));
	if (rc != 0 && rc != KVG_ECONFIG)
		abort();
	if (rc && !memchr(err, 0, sizeof(err)))
		abort();
	check_cfg(&cfg);
}

static void one_load(const uint8_t *data, size_t size)
{
	char path[64], err[512];
	struct kvg_config cfg;
	int fd = memfd_create("fuzz_config", 0);
	if (fd < 0)
		return;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	kvg_config_init(&cfg);
	int rc = kvg_config_load(&cfg, path, err, sizeof(err));
	close(fd);
	if (rc > 0 || (rc < 0 && rc != KVG_ECONFIG && rc < -4095))
		abort();
	if (rc && !memchr(err, 0, sizeof(err)))
		abort();
	check_cfg(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		one_load(data + 1, size - 1);
	else
		one_set(data + 1, size - 1);
	return 0;
}
