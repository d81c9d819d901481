/*
 * t_server.h - starting and stopping a real kvgridd for the C tests.  The server listens on
 * an ephemeral loopback port (--port 0) and writes it to a port file, which t_server_start
 * reads back; it dies with the test (PR_SET_PDEATHSIG), so a failed or killed test leaves
 * no server behind.  The binary is $KVGRIDD, else build/kvgridd.
 */
#ifndef KVG_T_SERVER_H
#define KVG_T_SERVER_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct t_server {
	pid_t pid; /* 0 when not running */
	int port;
	char name[64];
	char log[700]; /* its --log-file */
};

static inline const char *t_kvgridd_path(void)
{
	return getenv("KVGRIDD") ? getenv("KVGRIDD") : "build/kvgridd";
}

/* 1 if the server binary exists; tests that need it skip (exit 77) otherwise. */
static inline int t_kvgridd_built(void)
{
	return access(t_kvgridd_path(), X_OK) == 0;
}

/*
 * Starts kvgridd named `name` with its port file and log in dir, a 64 MiB DRAM tier, two
 * threads, and then the extra arguments (NULL-terminated, may be NULL; a later option
 * overrides an earlier one, so "--dram", "32M" resizes).  Waits up to 20 s for its port.
 * Returns 0, or -1 with the reason on stderr (the server is not left running).
 */
static inline int t_server_start(struct t_server *s, const char *dir, const char *name,
				 const char *const *extra)
{
	char pf[700];
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(pf, sizeof(pf), "%s/%s.port", dir, name);
	snprintf(s->log, sizeof(s->log), "%s/%s.log", dir, name);
	unlink(pf);
	const char *argv[40] = {
	    t_kvgridd_path(), "--port", "0",	      "--port-file", pf, "--dram", "64M",
	    "--threads",      "2",	"--log-file", s->log};
	int a = 11;
	for (int i = 0; extra && extra[i] && a < 39; i++)
		argv[a++] = extra[i];
	argv[a] = NULL;
	pid_t parent = getpid();
	fflush(NULL);
	s->pid = fork();
	if (s->pid < 0) {
		s->pid = 0;
		perror("fork");
		return -1;
	}
	if (s->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* the test died before prctl */
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 400; i++) {
		FILE *f = fopen(pf, "r");
		if (f) {
			int ok = fscanf(f, "%d", &s->port) == 1;
			fclose(f);
			if (ok)
				return 0;
		}
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			fprintf(stderr, "kvgridd %s exited at start (see %s)\n", name, s->log);
			return -1;
		}
		usleep(50000);
	}
	fprintf(stderr, "kvgridd %s did not write its port file in 20 s (see %s)\n", name, s->log);
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
	return -1;
}

/* Sends sig and reaps the server.  Returns its exit status, or -1 (killed, or not running). */
static inline int t_server_stop(struct t_server *s, int sig)
{
	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	int st = 0;
	waitpid(s->pid, &st, 0);
	s->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
