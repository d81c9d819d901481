/*
 * gridopt.h - the options every grid-opening subcommand shares:
 *   --dir DIR  --dram BYTES  --nvme BYTES  --config FILE  --set NAME=VALUE  --tenant T
 *   --model ID  --backend uring|psync|fault  --durable  --server HOST:PORT[,...]
 *   --auth-file FILE (or KVGRID_AUTH_FILE in the environment)
 * gridopt_parse() consumes the ones it knows from argv and leaves the rest in place.
 */
#ifndef KVG_GRIDOPT_H
#define KVG_GRIDOPT_H

#include "kvgrid.h"

#define GRIDOPT_HELP                                                                               \
	"  --dir DIR          NVMe tier directory (created if missing)\n"                          \
	"  --dram BYTES       DRAM arena size (K/M/G suffixes)\n"                                  \
	"  --nvme BYTES       NVMe tier capacity (default: half the free space, at most 16G)\n"    \
	"  --config FILE      settings file (name = value lines)\n"                                \
	"  --set NAME=VALUE   any setting (see doc/CONFIG.md); repeatable\n"                       \
	"  --tenant T  --model ID  --backend uring|psync  --durable\n"                             \
	"  --server H:P[,H:P] use kvgridd servers instead of a local grid\n"                       \
	"  --auth-file FILE   the servers' token: first word of FILE's first line\n"               \
	"                     (or KVGRID_AUTH_FILE=FILE; a token is never an argument)\n"

/*
 * Parses shared options out of argv (compacting it; *argc updated) into cfg, which the
 * caller has initialised with its defaults.  Returns 0, or 2 after printing one error line.
 */
int gridopt_parse(const char *cmd, int *argc, char **argv, struct kvg_config *cfg);

/* Opens the grid or prints "kvgrid CMD: reason" and returns NULL. */
kvg_grid *gridopt_open(const char *cmd, const struct kvg_config *cfg);

/* Reads whitespace-separated decimal token ids ("-" is stdin).  0, or 1 after an error line. */
int cli_read_tokens(const char *cmd, const char *path, uint32_t **tokens, size_t *n);
/* Reads a whole file ("-" is stdin) into a 4 KiB-aligned buffer.  0, or 1 after an error. */
int cli_read_file(const char *cmd, const char *path, void **buf, size_t *len);

#endif
