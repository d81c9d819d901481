/*
 * gridopt.c - see gridopt.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gridopt.h"

static int set(const char *cmd, struct kvg_config *c, const char *name, const char *value)
{
	char err[512];
	if (kvg_config_set(c, name, value, err, sizeof(err)))
		return cli_usage(cmd, "%s", err);
	return 0;
}

int gridopt_parse(const char *cmd, int *argc, char **argv, struct kvg_config *c)
{
	static const struct {
		const char *flag, *name;
	} map[] = {
	    {"--dir", "dir"},	    {"--dram", "dram_bytes"}, {"--nvme", "nvme_bytes"},
	    {"--tenant", "tenant"}, {"--model", "model_id"},  {"--backend", "io_backend"},
	    {"--policy", "policy"}, {"--server", "servers"},  {"--auth-file", "auth_token_file"},
	};
	int out = 1;
	/* a token is never an argument, so that ps does not show it: a file, named by a flag or
	 * by the environment (the flag wins) */
	const char *auth = getenv("KVGRID_AUTH_FILE");
	if (auth && *auth && set(cmd, c, "auth_token_file", auth))
		return 2;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		int used = 0;
		for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
			if (strcmp(a, map[k].flag))
				continue;
			if (i + 1 >= *argc)
				return cli_usage(cmd, "%s needs a value", a);
			if (set(cmd, c, map[k].name, argv[++i]))
				return 2;
			used = 1;
		}
		if (!used && !strcmp(a, "--durable")) {
			c->durability = KVG_DURABILITY_DURABLE;
			used = 1;
		} else if (!used && !strcmp(a, "--config")) {
			if (i + 1 >= *argc)
				return cli_usage(cmd, "--config needs a file");
			char err[600];
			if (kvg_config_load(c, argv[++i], err, sizeof(err)))
				return cli_usage(cmd, "%s", err);
			used = 1;
		} else if (!used && !strcmp(a, "--set")) {
			if (i + 1 >= *argc)
				return cli_usage(cmd, "--set needs NAME=VALUE");
			char kv[4096];
			snprintf(kv, sizeof(kv), "%s", argv[++i]);
			char *eq = strchr(kv, '=');
			if (!eq)
				return cli_usage(cmd, "--set %s: expected NAME=VALUE", kv);
			*eq = 0;
			if (set(cmd, c, kv, eq + 1))
				return 2;
			used = 1;
		}
		if (!used)
			argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;
	return 0;
}

kvg_grid *gridopt_open(const char *cmd, const struct kvg_config *c)
{
	kvg_grid *g;
	char err[600] = "";
	int rc = kvg_open(c, &g, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "kvgrid %s: %s%s\n", cmd, err[0] ? err : kvg_strerror(rc),
			rc == KVG_EAUTH && !c->auth_token_file[0]
			    ? " (give the token's file: --auth-file FILE or KVGRID_AUTH_FILE)"
			    : "");
		return NULL;
	}
	return g;
}

int cli_read_tokens(const char *cmd, const char *path, uint32_t **tokens, size_t *n)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	if (!f)
		return cli_fail(cmd, "%s: %s", path, strerror(errno));
	size_t cap = 4096, len = 0;
	uint32_t *t = malloc(cap * sizeof(uint32_t));
	char word[64];
	int rc = 0;
	while (t && fscanf(f, "%63s", word) == 1) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(word, &end, 10);
		if (*end || errno || v > UINT32_MAX || word[0] == '-') {
			rc = cli_fail(cmd, "%s: '%s' is not a token id", path, word);
			break;
		}
		if (len == cap) {
			uint32_t *nt = realloc(t, (cap *= 2) * sizeof(uint32_t));
			if (!nt)
				break;
			t = nt;
		}
		t[len++] = (uint32_t)v;
	}
	if (f != stdin)
		fclose(f);
	if (!t)
		return cli_fail(cmd, "out of memory");
	if (rc) {
		free(t);
		return rc;
	}
	*tokens = t;
	*n = len;
	return 0;
}

int cli_parse_pcts(char *s, double *out, size_t max, size_t *n)
{
	*n = 0;
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		char *end;
		double v = strtod(tok, &end);
		if (end == tok || *end || v <= 0 || v > 100 || *n >= max)
			return -1;
		out[(*n)++] = v;
	}
	return *n ? 0 : -1;
}

int cli_read_file(const char *cmd, const char *path, void **buf, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f)
		return cli_fail(cmd, "%s: %s", path, strerror(errno));
	size_t cap = 1 << 20, n = 0;
	uint8_t *b = NULL;
	if (posix_memalign((void **)&b, 4096, cap)) {
		if (f != stdin)
			fclose(f);
		return cli_fail(cmd, "out of memory");
	}
	for (;;) {
		if (n == cap) {
			uint8_t *nb;
			if (posix_memalign((void **)&nb, 4096, cap * 2)) {
				free(b);
				if (f != stdin)
					fclose(f);
				return cli_fail(cmd, "out of memory");
			}
			memcpy(nb, b, n);
			free(b);
			b = nb;
			cap *= 2;
		}
		size_t k = fread(b + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
	}
	int bad = ferror(f);
	if (f != stdin)
		fclose(f);
	if (bad) {
		free(b);
		return cli_fail(cmd, "%s: read error", path);
	}
	*buf = b;
	*len = n;
	return 0;
}
