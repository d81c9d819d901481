/*
 * config.h - what the rest of the library needs from config.c beyond kvgrid.h.
 */
#ifndef KVG_CONFIG_H
#define KVG_CONFIG_H

#include <stddef.h>

#include "kvgrid.h"

/*
 * Makes a program's struct kvg_config, of src->size bytes (its kvgrid.h's), the library's
 * own in dst: fields src does not have take their defaults; a src larger than this library
 * knows is accepted only if the unknown tail is all zero.  dst->size becomes the smaller of
 * the two sizes.  Returns 0 or KVG_ECONFIG with a reason; dst is filled only on success.
 */
int config_import(struct kvg_config *dst, const struct kvg_config *src, char *err, size_t err_len);

#endif /* KVG_CONFIG_H */
