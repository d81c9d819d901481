#!/bin/sh
# Description: libkvgrid.so keeps its ABI.  The plain build's exported symbols and their
# versions match tests/abi/libkvgrid.symbols exactly, and abidiff (abigail-tools) finds no change
# against tests/abi/libkvgrid.abi (scripts/abi.sh says how the baseline is made and read); the
# library's file names and SONAME follow KVG_VERSION_MAJOR; and a program built against
# kvgrid.h alone, linked with -lkvgrid, loads libkvgrid.so.MAJOR, checks kvg_version() and
# opens, stores into and loads from a grid, with a config made by kvg_config_init.
# A deliberate change of the ABI is recorded with `make abi-baseline`.
set -u
cd "$(dirname "$0")/.."
major=$(sed -n 's/^#define KVG_VERSION_MAJOR[[:space:]]*\([0-9]*\).*/\1/p' include/kvgrid.h)
minor=$(sed -n 's/^#define KVG_VERSION_MINOR[[:space:]]*\([0-9]*\).*/\1/p' include/kvgrid.h)
patch=$(sed -n 's/^#define KVG_VERSION_PATCH[[:space:]]*\([0-9]*\).*/\1/p' include/kvgrid.h)
lib=build/libkvgrid.so.$major.$minor.$patch
[ -f "$lib" ] || { echo "skip: $lib not built"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(readlink build/libkvgrid.so.$major)" = "libkvgrid.so.$major.$minor.$patch" ] ||
	fail "build/libkvgrid.so.$major does not point to $lib"
[ "$(readlink build/libkvgrid.so)" = "libkvgrid.so.$major" ] ||
	fail "build/libkvgrid.so does not point to libkvgrid.so.$major"
readelf -d "$lib" | grep -q "SONAME.*\[libkvgrid\.so\.$major\]" ||
	fail "SONAME is not libkvgrid.so.$major"

sh scripts/abi.sh check || exit 1

T=${KVG_TEST_TMP:-build/tmp}/abi.$$
mkdir -p "$T" && trap 'rm -rf "$T"' EXIT
cat >"$T/user.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <kvgrid.h>

int main(void)
{
	int major = -1;
	const char *v = kvg_version(&major, NULL, NULL);
	if (major != KVG_VERSION_MAJOR) {
		fprintf(stderr, "library %s, header %d\n", v, KVG_VERSION_MAJOR);
		return 1;
	}
	struct kvg_config cfg;
	kvg_config_init(&cfg);
	char err[256] = "";
	if (kvg_config_set(&cfg, "dram_bytes", "16M", err, sizeof(err)))
		return fprintf(stderr, "set: %s\n", err), 1;
	kvg_grid *g;
	int rc = kvg_open(&cfg, &g, err, sizeof(err));
	if (rc)
		return fprintf(stderr, "open: %s: %s\n", kvg_strerror(rc), err), 1;
	char in[4096], out[4096];
	memset(in, 7, sizeof(in));
	struct kvg_io io = { .buf = in, .len = sizeof(in) };
	kvg_raw_key(g, "abi", 3, &io.key);
	rc = kvg_store_sync(g, &io, 1, 0);
	io.buf = out;
	io.len = sizeof(out);
	rc = rc ? rc : kvg_load_sync(g, &io, 1, 0);
	kvg_close(g);
	if (rc || memcmp(in, out, sizeof(in)))
		return fprintf(stderr, "store/load: %s\n", kvg_strerror(rc)), 1;
	printf("libkvgrid %s\n", v);
	return 0;
}
C
${CC:-cc} -std=c11 -Wall -Werror -Iinclude -o "$T/user" "$T/user.c" -Lbuild -lkvgrid ||
	fail "a program using only kvgrid.h does not build against libkvgrid.so"
readelf -d "$T/user" | grep -q "NEEDED.*\[libkvgrid\.so\.$major\]" ||
	fail "the program does not record libkvgrid.so.$major"
LD_LIBRARY_PATH=build "$T/user" || fail "the program failed against $lib"
echo "PASS"
