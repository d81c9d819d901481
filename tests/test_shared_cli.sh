#!/bin/sh
# Description: the kvgrid CLI over the shared tier: a value put by one grid (its own NVMe
# directory) is got by another that shares only shared_dir, and `kvgrid stats --json` shows
# the shared tier with the block in it.
cd "$(dirname "$0")/.." || exit 1
[ -x build/kvgrid ] || { echo "FAIL: kvgrid is not built"; exit 1; }
T="${KVG_TEST_TMP:-build/tmp}/test_shared_cli.$$"
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
head -c 300000 /dev/urandom >"$T/v"
build/kvgrid put --dir "$T/a" --dram 8M --set "shared_dir=$T/tier" --key k1 --in "$T/v" >/dev/null ||
	fail "put"
build/kvgrid get --dir "$T/b" --dram 8M --set "shared_dir=$T/tier" --key k1 >"$T/back" || fail "get"
cmp -s "$T/v" "$T/back" || fail "the value came back different from the other grid"
build/kvgrid stats --dir "$T/c" --dram 8M --set "shared_dir=$T/tier" --json >"$T/stats" ||
	fail "stats"
grep -q '"shared": {"backend": "posix", "capacity_bytes": [1-9][0-9]*, "bytes": 304096, "blocks": 1,' \
	"$T/stats" || fail "stats --json: $(cat "$T/stats")"
build/kvgrid get --dir "$T/d" --dram 8M --set "shared_dir=$T/tier" --key nope >/dev/null 2>&1 &&
	fail "get of a key nobody stored"
echo "test_shared_cli.sh: all checks passed"
