/*
 * kvgrid-llama demo: agent sessions sharing a system prompt, over several turns, in two
 * llama.cpp processes sharing one kvgridd; then everything restarts (kvgridd on the same
 * directory, two new processes) and the sessions run again.
 *
 * Each request runs twice in its process, side by side: a cold prefill (the baseline) and
 * through the grid (restore the longest cached prefix, prefill the rest, store the new
 * blocks after the first token).  The reply is decoded greedily from the baseline's context,
 * so both phases see the same prompts; a tool result follows, and the next turn asks again.
 * One row per request as it completes; a summary per phase.
 */
#include "cmd.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct demo_opts {
	const char *model, *dir;
	uint32_t sessions, turns, system, task, tool, reply, block;
	int keep, flash;
};

struct demo_sess {
	llama_token *t;
	size_t n, cap;
};

static int sess_append(struct demo_sess *s, const llama_token *t, size_t n)
{
	if (s->n + n > s->cap) {
		size_t cap = (s->n + n) * 2;
		llama_token *r = realloc(s->t, cap * sizeof(*r));
		if (!r)
			return -1;
		s->t = r, s->cap = cap;
	}
	memcpy(s->t + s->n, t, n * sizeof(*t));
	s->n += n;
	return 0;
}

static int sess_append_seeded(struct demo_sess *s, uint64_t seed, size_t n, int n_vocab)
{
	llama_token *t = malloc(n * sizeof(*t));
	if (!t)
		return -1;
	cmd_tokens(seed, t, n, n_vocab);
	int rc = sess_append(s, t, n);
	free(t);
	return rc;
}

static int argmax(const float *l, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (l[i] > l[best])
			best = i;
	return best;
}

/* The greedy reply from the baseline context, which holds the prompt and its logits. */
static int reply(struct cmd_llama *base, struct demo_sess *s, uint32_t n)
{
	llama_token tok = argmax(cmd_logits(base), base->n_vocab);
	for (uint32_t i = 0; i < n; i++) {
		if (sess_append(s, &tok, 1))
			return -1;
		if (i + 1 < n) {
			if (cmd_prefill(base, s->t, s->n - 1, s->n))
				return -1;
			tok = argmax(cmd_logits(base), base->n_vocab);
		}
	}
	return 0;
}

struct demo_row {
	double ttft_cold, ttft_grid, restore, diff;
	size_t ctx, restored;
	int same;
};

/* One request: the baseline and the grid run of session s's prompt. */
static int request(struct cmd_llama *base, struct cmd_llama *g, kvgl *kl, struct demo_sess *s,
		   struct demo_row *r)
{
	float *cold = malloc(base->n_vocab * sizeof(float));
	if (!cold)
		return -1;
	llama_memory_seq_rm(llama_get_memory(base->ctx), 0, -1, -1);
	double t0 = cmd_now_ms();
	int rc = cmd_prefill(base, s->t, 0, s->n);
	r->ttft_cold = cmd_now_ms() - t0;
	if (rc == 0) {
		memcpy(cold, cmd_logits(base), base->n_vocab * sizeof(float));
		t0 = cmd_now_ms();
		rc = kvgl_restore(kl, g->ctx, 0, s->t, s->n, &r->restored);
		r->restore = cmd_now_ms() - t0;
	}
	if (rc == 0)
		rc = cmd_prefill(g, s->t, r->restored, s->n);
	r->ttft_grid = cmd_now_ms() - t0;
	if (rc == 0) {
		const float *lg = cmd_logits(g);
		r->diff = 0;
		for (int i = 0; i < g->n_vocab; i++)
			r->diff = fmax(r->diff, fabs((double)lg[i] - cold[i]));
		r->same = argmax(lg, g->n_vocab) == argmax(cold, g->n_vocab);
		r->ctx = s->n;
		kvgl_store(kl, g->ctx, 0, s->t, s->n); /* after the first token: never delays it */
	}
	free(cold);
	return rc;
}

static void print_row(int phase, int proc, uint32_t req, uint32_t sess, uint32_t turn,
		      const struct demo_row *r)
{
	char logits[32];
	if (r->diff == 0)
		snprintf(logits, sizeof logits, "exact");
	else
		snprintf(logits, sizeof logits, "%.0e%s", r->diff,
			 r->same ? "" : " (token differs)");
	printf("%5d %4d %4u %4c %4u %7zu %8zu %9.0f ms %8.0f ms %7.1f ms %7.1fx  %s\n", phase, proc,
	       req, 'A' + (char)sess, turn, r->ctx, r->restored, r->ttft_cold, r->ttft_grid,
	       r->restore, r->ttft_cold / r->ttft_grid, logits);
	fflush(stdout);
}

/* A worker process: sessions proc, proc+2, ... over every turn, round-robin. */
static int worker(const struct demo_opts *o, int phase, int proc, int port)
{
	struct cmd_llama base, g;
	cmd_threads = 1; /* two processes share this machine's cores */
	uint32_t n_ctx = o->system + o->task + o->turns * (o->tool + o->reply) + 512;
	if (cmd_llama_open(&base, o->model, n_ctx, o->flash, 512) ||
	    cmd_llama_open(&g, o->model, n_ctx, o->flash, 512))
		return 1;
	char server[64];
	snprintf(server, sizeof server, "127.0.0.1:%d", port);
	kvgl *kl;
	if (cmd_open_grid(&g, o->model, "server", NULL, server, o->block, NULL, &kl))
		return 1;
	struct demo_sess s[64] = {{0}};
	int rc = 0;
	for (uint32_t i = proc; i < o->sessions && rc == 0; i += 2) {
		rc |= sess_append_seeded(&s[i], 1000, o->system, g.n_vocab); /* shared */
		rc |= sess_append_seeded(&s[i], 2000 + i, o->task, g.n_vocab);
	}
	for (uint32_t turn = 1; turn <= o->turns && rc == 0; turn++)
		for (uint32_t i = proc; i < o->sessions && rc == 0; i += 2) {
			struct demo_row r;
			rc = request(&base, &g, kl, &s[i], &r);
			if (rc == 0) {
				print_row(phase, proc, (turn - 1) * o->sessions + i + 1, i, turn,
					  &r);
				rc = reply(&base, &s[i], o->reply);
			}
			if (rc == 0)
				rc = sess_append_seeded(&s[i], 3000 + 100 * i + turn, o->tool,
							g.n_vocab);
		}
	kvgl_flush(kl, -1);
	kvgl_close(kl);
	for (uint32_t i = 0; i < o->sessions; i++)
		free(s[i].t);
	cmd_llama_close(&g);
	cmd_llama_close(&base);
	return rc ? 1 : 0;
}

/* Starts kvgridd (beside this program) on dir; returns its pid, *port its port. */
static pid_t start_kvgridd(const char *dir, int *port)
{
	char exe[PATH_MAX], bin[PATH_MAX + 16], pf[PATH_MAX + 16], log[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = 0;
	snprintf(bin, sizeof bin, "%s/kvgridd", dirname(exe));
	snprintf(pf, sizeof pf, "%s/port", dir);
	snprintf(log, sizeof log, "%s/kvgridd.log", dir);
	unlink(pf);
	pid_t pid = fork();
	if (pid == 0) {
		execl(bin, bin, "--port", "0", "--port-file", pf, "--dir", dir, "--dram", "256M",
		      "--log-file", log, (char *)NULL);
		fprintf(stderr, "kvgrid-llama: cannot run %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 600; i++) {
		FILE *f = fopen(pf, "r");
		if (f && fscanf(f, "%d", port) == 1) {
			fclose(f);
			return pid;
		}
		if (f)
			fclose(f);
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		usleep(50000);
	}
	fprintf(stderr, "kvgrid-llama: kvgridd did not start (see %s)\n", log);
	if (pid > 0)
		kill(pid, SIGKILL), waitpid(pid, NULL, 0);
	return -1;
}

/* One phase: kvgridd and two worker processes, all started fresh. */
static int phase(const struct demo_opts *o, int ph, const char *gdir)
{
	int port = 0, rc = 0;
	pid_t srv = start_kvgridd(gdir, &port);
	if (srv < 0)
		return 1;
	pid_t w[2];
	for (int p = 0; p < 2; p++)
		if ((w[p] = fork()) == 0)
			_exit(worker(o, ph, p, port));
	for (int p = 0; p < 2; p++) {
		int st = 0;
		if (w[p] < 0 || waitpid(w[p], &st, 0) != w[p] || !WIFEXITED(st) || WEXITSTATUS(st))
			rc = 1;
	}
	kill(srv, SIGTERM);
	waitpid(srv, NULL, 0);
	return rc;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: kvgrid-llama demo [--model FILE] [--dir DIR] [--sessions S] [--turns T]\n"
		"         [--system-tokens N] [--task-tokens N] [--tool-tokens N]\n"
		"         [--reply-tokens N] [--block N] [--keep]\n"
		"S agent sessions (default 4) share a system prompt; two llama.cpp processes\n"
		"share one kvgridd; then everything restarts and the sessions run again.\n"
		"Without --model a small random model is made; without --dir a fresh folder\n"
		"(removed at the end unless --keep).\n");
	return 2;
}

static int parse(int argc, char **argv, struct demo_opts *o)
{
	static const struct option opts[] = {
	    {"model", 1, 0, 'm'},	{"dir", 1, 0, 'd'},	      {"sessions", 1, 0, 's'},
	    {"turns", 1, 0, 't'},	{"system-tokens", 1, 0, 'y'}, {"task-tokens", 1, 0, 'k'},
	    {"tool-tokens", 1, 0, 'o'}, {"reply-tokens", 1, 0, 'r'},  {"block", 1, 0, 'b'},
	    {"keep", 0, 0, 'K'},	{"help", 0, 0, 'h'},	      {0, 0, 0, 0}};
	/* flash attention off by default: llama.cpp v0.4.0's CPU flash attention takes about as
	 * long to decode a 32-token remainder after 2K cached tokens as to prefill all 2K (150
	 * against 142 ms here; 3.5 ms without it), which would hide the grid's effect */
	*o = (struct demo_opts){.sessions = 4,
				.turns = 3,
				.system = 2048,
				.task = 96,
				.tool = 64,
				.reply = 8,
				.block = 64};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		uint32_t v = optarg ? (uint32_t)strtoul(optarg, NULL, 10) : 0;
		if (c == 'm')
			o->model = optarg;
		else if (c == 'd')
			o->dir = optarg;
		else if (c == 's')
			o->sessions = v;
		else if (c == 't')
			o->turns = v;
		else if (c == 'y')
			o->system = v;
		else if (c == 'k')
			o->task = v;
		else if (c == 'o')
			o->tool = v;
		else if (c == 'r')
			o->reply = v;
		else if (c == 'b')
			o->block = v;
		else if (c == 'K')
			o->keep = 1;
		else if (c == 'f' && (!strcmp(optarg, "on") || !strcmp(optarg, "off")))
			o->flash = !strcmp(optarg, "on");
		else
			return usage();
	}
	if (optind != argc || !o->sessions || o->sessions > 64 || !o->turns || !o->system ||
	    !o->task || !o->reply)
		return usage();
	return 0;
}

static void summary_header(const struct demo_opts *o, const char *dir)
{
	printf("kvgrid-llama demo: %u agent sessions x %u turns, a shared system prompt of %u "
	       "tokens,\n  two llama.cpp processes (proc 0, 1) sharing one kvgridd (%s); phase 2 "
	       "restarts everything\n",
	       o->sessions, o->turns, o->system, dir);
	printf("%5s %4s %4s %4s %4s %7s %8s %12s %11s %10s %8s  %s\n", "phase", "proc", "req",
	       "sess", "turn", "context", "restored", "TTFT cold", "TTFT grid", "restore",
	       "speedup", "logits vs cold");
	fflush(stdout);
}

int cmd_demo(int argc, char **argv)
{
	struct demo_opts o;
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc;
	char tmp[] = "/tmp/kvgrid-llama-demo.XXXXXX", model[PATH_MAX], gdir[PATH_MAX];
	const char *dir = o.dir;
	if (!dir && !(dir = mkdtemp(tmp))) {
		fprintf(stderr, "kvgrid-llama: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(gdir, sizeof gdir, "%s/grid", dir);
	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "kvgrid-llama: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	mkdir(gdir, 0755);
	if (!o.model) {
		snprintf(model, sizeof model, "%s/model.gguf", dir);
		char *mk[] = {"mkmodel", "--out", model, "--size", "small", NULL};
		optind = 1;
		if (cmd_mkmodel(5, mk))
			return 1;
		o.model = model;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	summary_header(&o, gdir);
	for (int ph = 1; ph <= 2 && rc == 0; ph++)
		rc = phase(&o, ph, gdir);
	if (rc == 0)
		printf(
		    "phase 1 stored the sessions' blocks in kvgridd; phase 2, after a restart of "
		    "kvgridd and of both\nprocesses, restored them from its NVMe tier.  'logits vs "
		    "cold' compares with a one-shot\nprefill: llama.cpp rounds differently when a "
		    "prompt is decoded in other batches, grid\nor not; against the same split "
		    "decoded without the grid they are bit-identical (make test).\n");
	if (!o.dir && !o.keep) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd)) {
		}
	}
	return rc ? 1 : 0;
}
