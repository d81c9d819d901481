/*
 * main.c - kvgridd: flags and config file, tenants and tokens, the grid, the workers, the
 * metrics endpoint, and signals (doc/SERVER.md).
 *
 * Start-up order: read flags (a --config file first, so flags override it), read the auth
 * file, refuse a non-loopback bind without auth (protected mode), open the grid, bind every
 * port, write the port file, start the threads.  Then the main thread only waits for
 * signals: SIGTERM and SIGINT stop the workers (each finishes and sends what it has, for up
 * to drain_ms) and close the grid, which makes the NVMe tier's index durable; SIGHUP reopens
 * the log file.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "loop.h"
#include "metrics.h"
#include "quota.h"
#include "srv.h"

#define MAIN_DEFAULT_PORT 7379

static const char main_usage[] =
    "usage: kvgridd [options]\n"
    "  --port P            one port for RESP, lm:// and native (default 7379; 0: any free)\n"
    "  --resp-port P       a port for RESP only (also --lm-port, --native-port)\n"
    "  --bind ADDR         listen address (default 127.0.0.1; others need --auth-file)\n"
    "  --metrics-port P    Prometheus /metrics over HTTP (default: off; 0: any free)\n"
    "  --dir DIR           NVMe tier directory (default: DRAM only)\n"
    "  --dram SIZE         DRAM arena (default 1G); --nvme SIZE: NVMe tier capacity\n"
    "                      (default: half the free space on its filesystem, at most 16G)\n"
    "  --threads N         worker threads (default 2)\n"
    "  --conns-max N       connections (default 1024)\n"
    "  --value-max SIZE    largest value (default 64M)\n"
    "  --auth-file FILE    lines 'token [tenant [quota]]': clients must authenticate\n"
    "  --quota SIZE        default per-tenant quota of bytes held (default: none)\n"
    "  --track-blocks N    blocks the per-tenant ledger accounts for (default 262144)\n"
    "  --drain-ms N        how long shutdown sends pending replies (default 2000)\n"
    "  --log-file FILE     log here instead of stderr (SIGHUP reopens it)\n"
    "  --port-file FILE    write 'PORT METRICS_PORT' once listening (for tests)\n"
    "  --config FILE       'name = value' lines: any option above without '--', or any grid\n"
    "                      setting of kvg_config_set (e.g. io_backend = psync)\n"
    "  --set NAME=VALUE    one grid setting\n";

static char main_log_file[1024];

static void main_reopen_log(void)
{
	if (!main_log_file[0])
		return;
	int fd = open(main_log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	dup2(fd, STDERR_FILENO);
	close(fd);
}

/* A byte count with an optional K/M/G/T suffix: the library's rule (kvg_parse_size). */
static int main_size(const char *v, uint64_t *out)
{
	return kvg_parse_size(v, out) ? -1 : 0;
}

static int main_port(const char *v, int *out)
{
	uint64_t p;
	if (main_size(v, &p) || p > 65535)
		return -1;
	*out = (int)p;
	return 0;
}

static int main_add_listen(struct srv_config *cfg, int port, int proto)
{
	if (cfg->n_listen == SRV_LISTENERS_MAX)
		return -1;
	cfg->listen[cfg->n_listen].port = port;
	cfg->listen[cfg->n_listen].proto = proto;
	cfg->n_listen++;
	return 0;
}

/* Sets one server option by name; anything else is a grid setting.  0 or -1 with err. */
static int main_set(struct srv_config *cfg, const char *name, const char *v, char *err,
		    size_t err_len)
{
	uint64_t x = 0;
	int bad = 0;
	if (!strcmp(name, "port"))
		bad = main_port(v, &cfg->port);
	else if (!strcmp(name, "resp-port") || !strcmp(name, "resp_port"))
		bad = main_port(v, &cfg->resp_port);
	else if (!strcmp(name, "lm-port") || !strcmp(name, "lm_port"))
		bad = main_port(v, &cfg->lm_port);
	else if (!strcmp(name, "native-port") || !strcmp(name, "native_port"))
		bad = main_port(v, &cfg->native_port);
	else if (!strcmp(name, "metrics-port") || !strcmp(name, "metrics_port"))
		bad = main_port(v, &cfg->metrics_port);
	else if (!strcmp(name, "bind"))
		bad = snprintf(cfg->bind, sizeof(cfg->bind), "%s", v) >= (int)sizeof(cfg->bind);
	else if (!strcmp(name, "threads"))
		bad = main_size(v, &x) || x < 1 || x > 64 || !(cfg->threads = (uint32_t)x);
	else if (!strcmp(name, "conns-max") || !strcmp(name, "conns_max"))
		bad = main_size(v, &x) || x < 1 || x > 65536 || !(cfg->conns_max = (uint32_t)x);
	else if (!strcmp(name, "value-max") || !strcmp(name, "value_max"))
		bad = main_size(v, &cfg->value_max) || cfg->value_max < 1024 ||
		      cfg->value_max > (1ull << 31);
	else if (!strcmp(name, "quota"))
		bad = main_size(v, &cfg->quota_bytes);
	else if (!strcmp(name, "track-blocks") || !strcmp(name, "track_blocks"))
		bad = main_size(v, &cfg->track_blocks) || cfg->track_blocks < 16;
	else if (!strcmp(name, "drain-ms") || !strcmp(name, "drain_ms"))
		bad = main_size(v, &x) || x > 600000 || ((cfg->drain_ms = (uint32_t)x), 0);
	else if (!strcmp(name, "auth-file") || !strcmp(name, "auth_file"))
		bad = snprintf(cfg->auth_file, sizeof(cfg->auth_file), "%s", v) >=
		      (int)sizeof(cfg->auth_file);
	else if (!strcmp(name, "log-file") || !strcmp(name, "log_file"))
		bad = snprintf(cfg->log_file, sizeof(cfg->log_file), "%s", v) >=
		      (int)sizeof(cfg->log_file);
	else if (!strcmp(name, "port-file") || !strcmp(name, "port_file"))
		bad = snprintf(cfg->port_file, sizeof(cfg->port_file), "%s", v) >=
		      (int)sizeof(cfg->port_file);
	else if (!strcmp(name, "dram"))
		return kvg_config_set(&cfg->grid, "dram_bytes", v, err, err_len) ? -1 : 0;
	else if (!strcmp(name, "nvme"))
		return kvg_config_set(&cfg->grid, "nvme_bytes", v, err, err_len) ? -1 : 0;
	else
		return kvg_config_set(&cfg->grid, name, v, err, err_len) ? -1 : 0;
	if (bad)
		snprintf(err, err_len, "%s: bad value '%s'", name, v);
	return bad ? -1 : 0;
}

static int main_conf_set(void *ctx, const char *name, const char *value, char *why, size_t why_len)
{
	return main_set(ctx, name, value, why, why_len) ? KVG_ECONFIG : 0;
}

static int main_load_config(struct srv_config *cfg, const char *path, char *err, size_t err_len)
{
	return conf_load(path, main_conf_set, cfg, err, err_len) ? -1 : 0;
}

/* Auth file: "token [tenant [quota]]" per line; a token without a tenant is the default
 * tenant's. */
static int main_load_auth(struct srv *s, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, err_len, "auth-file %.256s: %s", path, strerror(errno));
		return -1;
	}
	char line[1024];
	int lineno = 0, rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		char *save = NULL;
		char *tok = strtok_r(line, " \t\r\n", &save);
		if (!tok || tok[0] == '#')
			continue;
		char *name = strtok_r(NULL, " \t\r\n", &save);
		char *quota = name ? strtok_r(NULL, " \t\r\n", &save) : NULL;
		struct srv_tenant *t = NULL;
		if (!name || !strcmp(name, "default"))
			t = &s->tenants[0];
		for (uint32_t i = 1; !t && i < s->n_tenants; i++)
			if (!strcmp(s->tenants[i].name, name))
				t = &s->tenants[i];
		if (!t && s->n_tenants < SRV_TENANTS_MAX) {
			t = &s->tenants[s->n_tenants];
			t->index = s->n_tenants++;
			t->quota_bytes = s->cfg.quota_bytes;
			snprintf(t->name, sizeof(t->name), "%s", name);
		}
		if (!t || strlen(tok) >= SRV_TOKEN_MAX ||
		    (name && strlen(name) >= SRV_TENANT_NAME_MAX) ||
		    (quota && main_size(quota, &t->quota_bytes))) {
			snprintf(err, err_len,
				 "auth-file %.256s:%d: bad line (too many tenants, or a "
				 "token, name or quota out of range)",
				 path, lineno);
			rc = -1;
			break;
		}
		snprintf(t->token, sizeof(t->token), "%s", tok);
		s->auth = 1;
	}
	fclose(f);
	if (rc == 0 && !s->auth) {
		snprintf(err, err_len, "auth-file %.256s: no token in it", path);
		rc = -1;
	}
	return rc;
}

static int main_is_loopback(const char *addr)
{
	struct in_addr a4;
	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return !strcmp(addr, "::1");
}

static void main_defaults(struct srv_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->bind, sizeof(cfg->bind), "127.0.0.1");
	cfg->port = MAIN_DEFAULT_PORT;
	cfg->resp_port = cfg->lm_port = cfg->native_port = cfg->metrics_port = -1;
	cfg->threads = 2;
	cfg->conns_max = 1024;
	cfg->value_max = 64ull << 20;
	cfg->track_blocks = 262144;
	cfg->drain_ms = 2000;
	kvg_config_init(&cfg->grid);
	/* demote in the background, so that a worker's store rarely waits for NVMe: 1/32 of
	 * DRAM kept free unless dram_free_bytes is set (main_args resolves it) */
	cfg->grid.dram_free_bytes = UINT64_MAX;
}

/* Parses argv into cfg; returns 0, 1 for --help, -1 with err. */
static int main_args(int argc, char **argv, struct srv_config *cfg, char *err, size_t err_len)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc &&
		    main_load_config(cfg, argv[i + 1], err, err_len))
			return -1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return 1;
		if (strncmp(a, "--", 2) || i + 1 >= argc) {
			snprintf(err, err_len, "%s: unknown option or missing value (see --help)",
				 a);
			return -1;
		}
		const char *v = argv[++i];
		if (!strcmp(a, "--config"))
			continue;
		if (!strcmp(a, "--set")) {
			char name[128];
			const char *eq = strchr(v, '=');
			if (!eq || (size_t)(eq - v) >= sizeof(name)) {
				snprintf(err, err_len, "--set %s: expected NAME=VALUE", v);
				return -1;
			}
			snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
			if (kvg_config_set(&cfg->grid, name, eq + 1, err, err_len))
				return -1;
			continue;
		}
		if (main_set(cfg, a + 2, v, err, err_len))
			return -1;
	}
	return 0;
}

static int main_finish_config(struct srv *s, char *err, size_t err_len)
{
	struct srv_config *cfg = &s->cfg;
	main_add_listen(cfg, cfg->port, PROTO_ANY);
	if (cfg->resp_port >= 0)
		main_add_listen(cfg, cfg->resp_port, PROTO_RESP);
	if (cfg->lm_port >= 0)
		main_add_listen(cfg, cfg->lm_port, PROTO_LM);
	if (cfg->native_port >= 0)
		main_add_listen(cfg, cfg->native_port, PROTO_NATIVE);
	if (cfg->grid.dram_free_bytes == UINT64_MAX)
		cfg->grid.dram_free_bytes = cfg->grid.dram_bytes / 32;
	cfg->frame_max = cfg->value_max + (1u << 20);
	/* a stored block is the value and its 32-byte header */
	if (cfg->grid.max_value_bytes < cfg->value_max + 4096)
		cfg->grid.max_value_bytes = cfg->value_max + 4096;
	if (cfg->conns_max < cfg->threads)
		cfg->conns_max = cfg->threads;
	s->n_tenants = 1;
	s->tenants[0].quota_bytes = cfg->quota_bytes;
	if (cfg->auth_file[0] && main_load_auth(s, cfg->auth_file, err, err_len))
		return -1;
	if (!s->auth && !main_is_loopback(cfg->bind)) {
		snprintf(err, err_len,
			 "refusing to listen on %s without authentication (protected "
			 "mode): give --auth-file, or bind a loopback address",
			 cfg->bind);
		return -1;
	}
	return 0;
}

static int main_write_port_file(const struct srv *s, int metrics_port)
{
	char tmp[1100];
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->cfg.port_file);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d %d\n", s->cfg.listen[0].port, metrics_port);
	fclose(f);
	return rename(tmp, s->cfg.port_file) ? -errno : 0;
}

struct main_metrics_thread {
	struct srv *s;
	int fd, stop_fd;
};

static void *main_metrics_run(void *arg)
{
	struct main_metrics_thread *m = arg;
	metrics_serve(m->s, m->fd, m->stop_fd);
	return NULL;
}

static int main_metrics_listen(struct srv *s, int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
	if (inet_pton(AF_INET, s->cfg.bind, &a.sin_addr) != 1)
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		int rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	socklen_t len = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Waits for signals until SIGTERM or SIGINT. */
static void main_wait(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		if (sig == SIGHUP) {
			main_reopen_log();
			srv_log("kvgridd: SIGHUP: log reopened");
		} else if (sig == SIGTERM || sig == SIGINT) {
			srv_log("kvgridd: %s: shutting down",
				sig == SIGTERM ? "SIGTERM" : "SIGINT");
			return;
		}
	}
}

static int main_run(struct srv *s)
{
	char err[512] = "";
	struct worker *ws = NULL;
	pthread_t th[64], mth;
	struct main_metrics_thread mt = {.s = s, .fd = -1, .stop_fd = -1};
	uint32_t started = 0;
	int rc = loop_open(s, &ws, err, sizeof(err));
	if (rc) {
		srv_log("kvgridd: %s", err);
		return 1;
	}
	int mport = s->cfg.metrics_port;
	if (mport >= 0) {
		mt.fd = main_metrics_listen(s, &mport);
		mt.stop_fd = eventfd(0, EFD_CLOEXEC);
		if (mt.fd < 0 || mt.stop_fd < 0 ||
		    pthread_create(&mth, NULL, main_metrics_run, &mt)) {
			srv_log("kvgridd: cannot serve metrics on port %d", s->cfg.metrics_port);
			rc = 1;
			goto out_close_loop;
		}
	}
	for (; started < s->cfg.threads; started++)
		if (pthread_create(&th[started], NULL, loop_run, &ws[started]))
			break;
	srv_log(
	    "kvgridd: listening on %s:%d (resp, lm://, native)%s%s, %u threads, metrics port %d",
	    s->cfg.bind, s->cfg.listen[0].port, s->auth ? ", auth on" : "",
	    s->auth ? "" : " (no auth: loopback only, protected mode)", started, mport);
	if (started == s->cfg.threads &&
	    (!s->cfg.port_file[0] || main_write_port_file(s, mport) == 0))
		main_wait();
	else
		rc = 1;
	loop_stop(ws, started);
	for (uint32_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (mt.fd >= 0) {
		uint64_t one = 1;
		if (write(mt.stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(mth, NULL);
	}
out_close_loop:
	if (mt.fd >= 0)
		close(mt.fd);
	if (mt.stop_fd >= 0)
		close(mt.stop_fd);
	loop_close(ws, s->cfg.threads);
	return rc;
}

int main(int argc, char **argv)
{
	static struct srv s; /* large (tenants); lives as long as the process */
	static struct metrics m;
	char err[1024] = "";
	main_defaults(&s.cfg);
	int r = main_args(argc, argv, &s.cfg, err, sizeof(err));
	if (r > 0) {
		fputs(main_usage, stdout);
		return 0;
	}
	if (r < 0 || main_finish_config(&s, err, sizeof(err))) {
		fprintf(stderr, "kvgridd: %s\n", err);
		return 2;
	}
	snprintf(main_log_file, sizeof(main_log_file), "%s", s.cfg.log_file);
	main_reopen_log();
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits it; main waits */
	s.metrics = &m;
	int rc = kvg_open(&s.cfg.grid, &s.grid, err, sizeof(err));
	if (rc) {
		srv_log("kvgridd: cannot open the grid: %s (%s)", err, kvg_strerror(rc));
		return 1;
	}
	const struct kvg_config *gc = kvg_config_of(s.grid);
	if (gc->dir[0] && !gc->servers[0])
		srv_log("kvgridd: NVMe tier in %s: capacity %llu MiB (%s)", gc->dir,
			(unsigned long long)(gc->nvme_bytes >> 20),
			s.cfg.grid.nvme_bytes
			    ? "nvme_bytes"
			    : "automatic: half the room on its filesystem, at most "
			      "16 GiB; set nvme_bytes (--nvme) to choose");
	rc = quota_open(s.cfg.track_blocks, SRV_TENANTS_MAX, &s.quota);
	if (rc) {
		srv_log("kvgridd: cannot allocate the tenant ledger: %s", kvg_strerror(rc));
		kvg_close(s.grid);
		return 1;
	}
	rc = main_run(&s);
	kvg_close(s.grid);
	quota_close(s.quota);
	srv_log("kvgridd: stopped");
	return rc;
}
