#!/bin/sh
# Description: the kvgrid command line end to end on a real directory: put/get round trip
# byte for byte, persistence across processes, lookup of token blocks, stats (text and
# JSON), bench JSON fields, and one clear error line with a non-zero exit for bad input.
set -u
K=build/kvgrid
T=${KVG_TEST_TMP:-build/tmp}/cli.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

head -c 3000000 /dev/urandom > "$T/blob"
$K put --dir "$T/g" --key hello --in "$T/blob" >/dev/null || fail "put"
$K get --dir "$T/g" --key hello --out "$T/back" || fail "get"
cmp -s "$T/blob" "$T/back" || fail "get returned other bytes"
$K get --dir "$T/g" --key nope --out "$T/x" 2>"$T/err" && fail "get of a missing key succeeded"
grep -q "not found" "$T/err" || fail "miss not explained: $(cat "$T/err")"

# tokens: 3 full blocks of 256 + a partial one; payload split over the full blocks
seq 1 800 > "$T/tok"
head -c 3145728 /dev/urandom > "$T/kv"
$K put --dir "$T/g" --tokens "$T/tok" --in "$T/kv" | grep -q "stored 3 blocks" || fail "put tokens"
out=$($K lookup --dir "$T/g" --tokens "$T/tok" --json)
echo "$out" | grep -q '"hit_tokens": 768' || fail "lookup: $out"
seq 1 300 > "$T/tok2"; seq 1000 1500 >> "$T/tok2"
out=$($K lookup --dir "$T/g" --tokens "$T/tok2" --json)
echo "$out" | grep -q '"hit_tokens": 256' || fail "partial prefix: $out"
$K lookup --dir "$T/g" --tenant other --tokens "$T/tok" --json | grep -q '"hit_tokens": 0' ||
	fail "another tenant saw the blocks"

$K stats --dir "$T/g" --json > "$T/st" || fail "stats"
python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert j["nvme"]["blocks"] == 4, j
assert j["index_bytes"] / j["index_capacity"] < 128, j' "$T/st" || fail "stats json"

$K bench --tier dram --block-bytes 256K --queue-depth 4 --seconds 1 --size 64M --json > "$T/b" ||
	fail "bench dram"
python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
for k in ("write_gbps","read_gbps","write_p50_us","write_p99_us","read_p50_us","read_p99_us"):
    assert j[k] > 0, (k, j)
assert j["errors"] == 0, j' "$T/b" || fail "bench json"
$K bench --dir "$T" --tier nvme --block-bytes 1M --queue-depth 4 --seconds 1 --size 64M --fresh \
	--json > "$T/bn" || fail "bench nvme"
grep -q '"errors": 0' "$T/bn" || fail "bench nvme errors: $(cat "$T/bn")"
[ -z "$(ls "$T" | grep kvgrid-bench)" ] || fail "bench left its files"
# every command that opens a grid creates --dir with its parents, bench included
$K bench --dir "$T/new/a/b" --tier nvme --block-bytes 64K --queue-depth 2 --seconds 1 \
	--size 16M --json >"$T/bn2" 2>"$T/err" || fail "bench --dir of a new path: $(cat "$T/err")"
[ -d "$T/new/a/b" ] || fail "bench did not create --dir"
$K put --dir "$T/new2/x/y" --key k --in "$T/blob" >/dev/null 2>"$T/err" ||
	fail "put --dir of a new path: $(cat "$T/err")"
$K stats --dir "$T/new3/z" >/dev/null 2>"$T/err" || fail "stats --dir of a new path: $(cat "$T/err")"
touch "$T/afile"
$K put --dir "$T/afile/g" --key k --in "$T/blob" >/dev/null 2>"$T/err" &&
	fail "put under a file succeeded"
grep -q "Not a directory" "$T/err" || fail "put under a file: $(cat "$T/err")"

expect_usage() { # expected-exit, args...
	want=$1; shift
	$K "$@" >/dev/null 2>"$T/err"; rc=$?
	[ $rc -eq "$want" ] || fail "kvgrid $* exited $rc, want $want"
	[ "$(wc -l < "$T/err")" -ge 1 ] || fail "kvgrid $*: no error line"
	grep -q "^kvgrid" "$T/err" || fail "kvgrid $*: error not prefixed: $(cat "$T/err")"
}
expect_usage 2 bench --tier dram --bogus
expect_usage 2 bench --tier dram --block-bytes 12Q
expect_usage 2 bench --tier tape
expect_usage 2 put --dir "$T/g" --key k --set block_tokens=8
expect_usage 2 put --dir "$T/g" --key k --set nosuch=1
expect_usage 2 frobnicate
expect_usage 1 put --dir /proc/kvgrid-nope --key k --in "$T/blob"
printf 'dram_bytes = 1Q\n' > "$T/bad.conf"
expect_usage 2 stats --config "$T/bad.conf" --dir "$T/g"
grep -q "bad.conf:1:" "$T/err" || fail "config error has no line number: $(cat "$T/err")"
echo "cli: all checks passed"
