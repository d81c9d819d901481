/*
 * kvgrid-llama run: decodes prompts one after another in one llama.cpp context, each as a
 * new request on sequence 0: restore the longest cached prefix from the grid, prefill the
 * rest, write the last token's logits, store the new blocks.  The black-box tests drive it.
 *
 *   --prompt SEED:LEN[+SEED:LEN...]   tokens from seeded generators, concatenated
 *   --no-grid [--split K]             no grid: prefill [0, K) then [K, n) (the reference)
 *   --logits PREFIX                   PREFIX<i>.bin: the i-th prompt's logits, raw floats
 * Prints one line per prompt: "prompt I tokens N restored R".
 */
#include "cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROMPTS_MAX 16

struct run_opts {
	const char *model, *tier, *dir, *server, *logits, *dram;
	const char *prompts[PROMPTS_MAX];
	int n_prompts, no_grid, store, flash;
	size_t split;
	uint32_t block, n_ctx, batch;
	int threads;
};

/* Parses SEED:LEN[+SEED:LEN...] into *out (malloc'd); returns the length or 0. */
static size_t parse_prompt(const char *spec, int n_vocab, llama_token **out)
{
	size_t n = 0, cap = 0;
	llama_token *t = NULL;
	const char *p = spec;
	while (*p) {
		char *e;
		unsigned long long seed = strtoull(p, &e, 10), len;
		if (*e != ':')
			goto bad;
		len = strtoull(e + 1, &e, 10);
		if (len == 0 || len > (1u << 20) || (*e && *e != '+'))
			goto bad;
		if (n + len > cap) {
			cap = (n + len) * 2;
			llama_token *r = realloc(t, cap * sizeof(*t));
			if (!r)
				goto bad;
			t = r;
		}
		cmd_tokens(seed, t + n, len, n_vocab);
		n += len;
		p = *e ? e + 1 : e;
	}
	*out = t;
	return n;
bad:
	fprintf(stderr, "kvgrid-llama: bad --prompt '%s' (SEED:LEN[+SEED:LEN...])\n", spec);
	free(t);
	return 0;
}

static int write_logits(const char *prefix, int i, const float *l, int n_vocab)
{
	char path[4096];
	snprintf(path, sizeof path, "%s%d.bin", prefix, i);
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(l, sizeof(float), n_vocab, f) == (size_t)n_vocab;
	if (f && fclose(f))
		ok = 0;
	if (!ok)
		fprintf(stderr, "kvgrid-llama: cannot write %s\n", path);
	return ok ? 0 : -1;
}

/* One request: restore (or the reference split), prefill, logits, store. */
static int run_prompt(const struct run_opts *o, struct cmd_llama *l, kvgl *kl, int i)
{
	llama_token *t = NULL;
	size_t n = parse_prompt(o->prompts[i], l->n_vocab, &t), done = 0;
	if (!n)
		return -1;
	int rc = 0;
	llama_memory_seq_rm(llama_get_memory(l->ctx), 0, -1, -1);
	if (kl)
		rc = kvgl_restore(kl, l->ctx, 0, t, n, &done);
	else if (o->split && o->split < n)
		rc = cmd_prefill(l, t, 0, done = o->split);
	if (rc == 0)
		rc = cmd_prefill(l, t, done, n);
	if (rc == 0 && o->logits)
		rc = write_logits(o->logits, i, cmd_logits(l), l->n_vocab);
	if (rc == 0 && kl && o->store && (rc = kvgl_store(kl, l->ctx, 0, t, n)) == 0)
		rc = kvgl_flush(kl, -1);
	if (rc == 0 && kl && kvgl_last_error(kl)[0])
		fprintf(stderr, "kvgrid-llama: prompt %d: %s\n", i, kvgl_last_error(kl));
	if (rc == 0 && kl)
		printf("prompt %d tokens %zu restored %zu\n", i, n, done);
	else if (rc == 0)
		printf("prompt %d tokens %zu split %zu\n", i, n, done);
	free(t);
	return rc;
}

static int usage(void)
{
	fprintf(
	    stderr,
	    "usage: kvgrid-llama run --model FILE --prompt SEED:LEN[+SEED:LEN...] [--prompt ...]\n"
	    "         [--tier dram|nvme|server] [--dir DIR] [--server HOST:PORT] [--block N]\n"
	    "         [--flash on|off] [--ctx N] [--batch N] [--store] [--logits PREFIX]\n"
	    "         [--dram SIZE] [--threads N] [--no-grid [--split K]]\n");
	return 2;
}

static int parse(int argc, char **argv, struct run_opts *o)
{
	static const struct option opts[] = {
	    {"model", 1, 0, 'm'}, {"prompt", 1, 0, 'p'}, {"tier", 1, 0, 't'},
	    {"dir", 1, 0, 'd'},	  {"server", 1, 0, 's'}, {"block", 1, 0, 'b'},
	    {"flash", 1, 0, 'f'}, {"ctx", 1, 0, 'c'},	 {"batch", 1, 0, 'B'},
	    {"store", 0, 0, 'S'}, {"logits", 1, 0, 'l'}, {"no-grid", 0, 0, 'n'},
	    {"split", 1, 0, 'x'}, {"dram", 1, 0, 'D'},	 {"threads", 1, 0, 'T'},
	    {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
	*o = (struct run_opts){.tier = "dram", .flash = 1, .n_ctx = 4096, .batch = 512};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->model = optarg;
			break;
		case 'p':
			if (o->n_prompts == PROMPTS_MAX)
				return usage();
			o->prompts[o->n_prompts++] = optarg;
			break;
		case 't':
			o->tier = optarg;
			break;
		case 'd':
			o->dir = optarg;
			break;
		case 's':
			o->server = optarg;
			break;
		case 'b':
			o->block = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'f':
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return usage();
			o->flash = !strcmp(optarg, "on");
			break;
		case 'c':
			o->n_ctx = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'B':
			o->batch = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'S':
			o->store = 1;
			break;
		case 'l':
			o->logits = optarg;
			break;
		case 'n':
			o->no_grid = 1;
			break;
		case 'x':
			o->split = strtoull(optarg, NULL, 10);
			break;
		case 'D':
			o->dram = optarg;
			break;
		case 'T':
			o->threads = atoi(optarg);
			break;
		default:
			return usage();
		}
	}
	if (!o->model || !o->n_prompts || optind != argc || !o->batch)
		return usage();
	return 0;
}

/* Opens the adapter on l's model with the run's grid options. */
int cmd_open_grid(struct cmd_llama *l, const char *model, const char *tier, const char *dir,
		  const char *server, uint32_t block, const char *dram, kvgl **kl)
{
	struct kvg_config cfg;
	char err[256];
	if (cmd_grid_config(&cfg, tier, dir, server))
		return -1;
	if (dram && strcmp(tier, "nvme") &&
	    kvg_config_set(&cfg, "dram_bytes", dram, err, sizeof err)) {
		fprintf(stderr, "kvgrid-llama: --dram: %s\n", err);
		return -1;
	}
	struct kvgl_params p;
	kvgl_params_init(&p);
	p.model_path = model;
	p.model = l->model;
	p.type_k = l->cp.type_k;
	p.type_v = l->cp.type_v;
	p.flash_attn_type = l->cp.flash_attn_type;
	p.block_tokens = block;
	p.grid = &cfg;
	if (kvgl_open(&p, kl, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc;
	struct cmd_llama l;
	cmd_threads = o.threads;
	if (cmd_llama_open(&l, o.model, o.n_ctx, o.flash, o.batch))
		return 1;
	kvgl *kl = NULL;
	if (!o.no_grid &&
	    cmd_open_grid(&l, o.model, o.tier, o.dir, o.server, o.block, o.dram, &kl)) {
		cmd_llama_close(&l);
		return 1;
	}
	for (int i = 0; i < o.n_prompts && rc == 0; i++)
		rc = run_prompt(&o, &l, kl, i);
	kvgl_close(kl);
	cmd_llama_close(&l);
	return rc ? 1 : 0;
}
