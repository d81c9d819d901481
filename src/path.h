/*
 * path.h - directories on disk.  Every command and tier that takes a directory creates it,
 * with its parents, the way `mkdir -p` does.
 */
#ifndef KVG_PATH_H
#define KVG_PATH_H

/* Creates dir and any missing parents (mode 0755).  0 when dir exists as a directory
 * afterwards, else -errno (-ENOTDIR when a component is a file, -ENAMETOOLONG). */
int mkdir_parents(const char *dir);

#endif
