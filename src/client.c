/*
 * client.c - placeholder until the kvgridd client lands: every call answers -ENOTSUP, so a
 * grid configured with servers fails to open with a clear reason.
 */
#include <errno.h>
#include <stdio.h>

#include "client.h"

int client_open(const struct kvg_config *cfg, struct client **out, char *err, size_t err_len)
{
	if (err)
		snprintf(err, err_len, "servers: the kvgridd client is not built in this version");
	return -ENOTSUP;
}
void client_close(struct client *c) {}
int client_lookup_keys(struct client *c, const kvg_key *k, size_t n, size_t *h) { return -ENOTSUP; }
int client_store(struct client *c, struct kvg_io *ios, size_t n) { return -ENOTSUP; }
int client_load(struct client *c, struct kvg_io *ios, size_t n) { return -ENOTSUP; }
int client_delete(struct client *c, const kvg_key *k, size_t n) { return -ENOTSUP; }
int client_pin(struct client *c, const kvg_key *k, size_t n, int pin) { return -ENOTSUP; }
int client_stats(struct client *c, struct kvg_stats *st) { return -ENOTSUP; }
