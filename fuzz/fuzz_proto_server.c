/*
 * fuzz_proto_server.c - libFuzzer target: kvgridd's protocol handlers end to end
 * (server/h_resp.c, h_lm.c, h_native.c over kv.c and quota.c) on a real, small DRAM grid.
 * Input: one byte of options (bits 0-1: protocol RESP, lm:// or native; bit 2: auth on),
 * then the bytes a client would send.  The handlers run as the event loop runs them; the
 * checks are ASan's and UBSan's plus: every reply segment lies inside the output region, and
 * no handler consumes more than it was given.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "loop.h"
#include "metrics.h"
#include "quota.h"
#include "srv.h"

#define FZ_VALUE_MAX 65536
#define FZ_INPUT_MAX (1 << 17)

static struct srv s;
static struct metrics m;
static struct worker *w;
static struct conn c;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	s.cfg.value_max = FZ_VALUE_MAX;
	s.cfg.frame_max = FZ_VALUE_MAX + 4096;
	kvg_config_init(&s.cfg.grid);
	s.cfg.grid.dram_bytes = 8 << 20;
	s.cfg.grid.max_value_bytes = FZ_VALUE_MAX + 4096;
	s.cfg.grid.workers = 1;
	char err[256];
	if (kvg_open(&s.cfg.grid, &s.grid, err, sizeof(err)) ||
	    quota_open(1024, SRV_TENANTS_MAX, &s.quota)) {
		fprintf(stderr, "fuzz_proto_server: setup failed: %s\n", err);
		abort();
	}
	s.metrics = &m;
	s.n_tenants = 2;
	s.tenants[0].quota_bytes = 256 << 10;
	s.tenants[1].index = 1;
	snprintf(s.tenants[1].name, sizeof(s.tenants[1].name), "t1");
	snprintf(s.tenants[1].token, sizeof(s.tenants[1].token), "tok");
	w = calloc(1, sizeof(*w));
	w->srv = &s;
	w->reply_reserve = FZ_VALUE_MAX + KVG_KEY_BYTES * 2 + 4096;
	c.w = w;
	/* replies a handler pushes out early (conn_push) go to /dev/null */
	c.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	c.in_cap = CONN_IN_HEADROOM + FZ_INPUT_MAX;
	c.in = malloc(c.in_cap);
	c.out_cap = 2 * w->reply_reserve;
	c.out = malloc(c.out_cap);
	if (!w || !c.in || !c.out || c.fd < 0)
		abort();
	return 0;
}

/* Every queued segment lies in the output region or is a piece of a view the connection
 * holds; then the output is dropped and the views released. */
static void fz_check_output(void)
{
	int v = c.views_first;
	for (int i = 0; i < c.iov_n; i++) {
		uint8_t *p = c.iov[i].iov_base;
		while (v < c.views_n && c.views[v].iov_last < i)
			v++;
		int lent = v < c.views_n && c.views[v].iov_from <= i;
		if (!lent && (p < c.out || p + c.iov[i].iov_len > c.out + c.out_cap))
			abort();
	}
	conn_drop_output(&c);
	if (c.lent_bytes)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const conn_handler_fn handler[] = {hresp_handle, hlm_handle, hnat_handle,
						  hresp_handle};
	if (size < 1 || size - 1 > FZ_INPUT_MAX)
		return 0;
	s.auth = (data[0] >> 2) & 1;
	c.tenant = s.auth ? NULL : &s.tenants[0];
	c.proto = (uint8_t)((data[0] & 3) == 3 ? 1 : (data[0] & 3) + 1);
	conn_handler_fn h = handler[data[0] & 3];
	memcpy(c.in + CONN_IN_HEADROOM, data + 1, size - 1);
	size_t pos = CONN_IN_HEADROOM, end = CONN_IN_HEADROOM + size - 1;
	while (pos < end) {
		if (c.out_cap - c.out_len < w->reply_reserve || c.iov_n + 8 > CONN_IOV_MAX ||
		    c.lent_bytes >= w->reply_reserve)
			fz_check_output();
		ssize_t r = h(&c, c.in + pos, end - pos);
		if (r <= 0)
			break;
		if ((size_t)r > end - pos)
			abort();
		pos += (size_t)r;
	}
	fz_check_output();
	return 0;
}
