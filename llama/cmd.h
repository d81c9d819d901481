/*
 * kvgrid-llama's commands and the helpers they share: loading llama.cpp's backends beside
 * the program, a model and a context, deterministic prompts, prefill in batches.
 */
#ifndef KVGL_CMD_H
#define KVGL_CMD_H

#include <kvgrid_llama.h>
#include <stddef.h>
#include <stdint.h>

int cmd_mkmodel(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/* Loads the CPU backends from llama.cpp/bins beside the program (or $KVGRID_LLAMA_BINS)
 * and silences llama.cpp's log unless $KVGRID_LLAMA_LOG is set.  Once per process. */
void cmd_backends_init(void);

/* Threads of the contexts cmd_llama_open makes (0: one per online CPU). */
extern int cmd_threads;

struct cmd_llama {
	struct llama_model *model;
	struct llama_context *ctx;
	struct llama_context_params cp;
	int n_vocab;
};

/* Loads model (NULL on error, with a message on stderr) and makes a context of n_ctx tokens,
 * flash attention on (1) or off (0), n_batch = n_ubatch = batch. */
int cmd_llama_open(struct cmd_llama *l, const char *model, uint32_t n_ctx, int flash,
		   uint32_t batch);
/* A fresh context on the same model (the old one freed). */
int cmd_llama_renew(struct cmd_llama *l);
void cmd_llama_close(struct cmd_llama *l);

/* Decodes tokens [from, n) of sequence 0 at positions from.. in batches; logits of the last
 * token only.  Returns 0 or -1. */
int cmd_prefill(struct cmd_llama *l, const llama_token *t, size_t from, size_t n);

/* The last decoded token's logits (n_vocab floats). */
const float *cmd_logits(struct cmd_llama *l);

/* n pseudo-random token ids in [1, n_vocab) from seed (xorshift64*). */
void cmd_tokens(uint64_t seed, llama_token *out, size_t n, int n_vocab);

double cmd_now_ms(void);

/* The grid options shared by run, bench and demo: --tier dram|nvme|server, --dir, --server,
 * --block.  Fills cfg; returns 0 or prints an error and returns -1. */
int cmd_grid_config(struct kvg_config *cfg, const char *tier, const char *dir, const char *server);

/* Opens the adapter on l's model and context parameters, with the grid of --tier/--dir/
 * --server, block tokens (0: default) and DRAM tier size (NULL: default).  Returns 0 or
 * prints why and returns -1. */
int cmd_open_grid(struct cmd_llama *l, const char *model, const char *tier, const char *dir,
		  const char *server, uint32_t block, const char *dram, kvgl **kl);

#endif
