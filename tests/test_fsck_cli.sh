#!/bin/sh
# Description: `kvgrid fsck` and `kvgrid stress` as a user meets them: --help exits 0, a bad
# flag, a missing --dir or a bad number exits 2 with one "kvgrid CMD: ..." line, a directory
# that is not a grid exits 1, a grid held open by another process is refused, and --json is one
# object with at least blocks, corrupt and repaired, whose blocks match what a durable stress
# run left (durable: no deletes, every block on disk).
set -u
cd "$(dirname "$0")/.."
bin=${KVG:-build/kvgrid}
[ -x "$bin" ] || { echo "skip: $bin not built"; exit 77; }
base=${KVG_TEST_TMP:-build/tmp}/fsck_cli.$$
mkdir -p "$base" && trap 'rm -rf "$base"' EXIT
# a private copy: another engineer's rebuild of build/kvgrid must not fail this test
cp "$bin" "$base/kvgrid" && bin=$base/kvgrid
fail() { echo "FAIL: $*"; exit 1; }
expect() { # want_rc, pattern for stderr (or ""), command...
	want=$1; pat=$2; shift 2
	"$@" >"$base/out" 2>"$base/err"; rc=$?
	[ $rc -eq "$want" ] || fail "'$*' exited $rc, expected $want: $(cat "$base/err")"
	[ -z "$pat" ] || grep -q "$pat" "$base/err" || fail "'$*' said '$(cat "$base/err")'"
}

expect 0 "" "$bin" fsck --help
expect 0 "" "$bin" stress --help
expect 2 "^kvgrid fsck: .*--dir" "$bin" fsck
expect 2 "^kvgrid fsck: unknown" "$bin" fsck --dir "$base" --frobnicate
expect 2 "^kvgrid stress: .*--dir" "$bin" stress --seconds 1
expect 2 "^kvgrid stress: --keys" "$bin" stress --dir "$base/g" --keys 0
expect 2 "^kvgrid stress: --block-bytes: bad number" "$bin" stress --dir "$base/g" --block-bytes 12Q
expect 2 "^kvgrid stress: unknown" "$bin" stress --dir "$base/g" --bogus
expect 1 "^kvgrid fsck: .*not a kvgrid directory" "$bin" fsck --dir "$base"
expect 1 "^kvgrid fsck: " "$bin" fsck --dir "$base/does/not/exist"

opts="--keys 64 --block-bytes 16K --dram 1M --nvme 16M --segment 1M --threads 2"
"$bin" stress --dir "$base/g" $opts --durable --seconds 1 --json >"$base/s.json" 2>/dev/null ||
	fail "stress exited $?"
grep -q '"wrong":0' "$base/s.json" || fail "stress JSON: $(cat "$base/s.json")"
"$bin" stress --dir "$base/g" $opts --durable --verify-only --json >"$base/v.json" 2>/dev/null ||
	fail "verify-only exited $?"
present=$(sed -n 's/.*"present":\([0-9]*\).*/\1/p' "$base/v.json")
expect 0 "" "$bin" fsck --dir "$base/g" --json
out=$(cat "$base/out")
[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "--json printed more than one line"
for k in blocks corrupt repaired checked good orphaned quarantined; do
	echo "$out" | grep -q "\"$k\":[0-9]" || fail "--json lacks $k: $out"
done
python3 -c 'import json,sys; json.loads(sys.argv[1])' "$out" || fail "not JSON: $out"
blocks=$(echo "$out" | sed -n 's/.*"blocks":\([0-9]*\).*/\1/p')
[ "$blocks" -eq "$present" ] || fail "fsck counts $blocks blocks, the grid served $present"

# a grid open in another process: fsck refuses to touch it
"$bin" stress --dir "$base/g" $opts --seconds 5 >/dev/null 2>&1 &
pid=$!
sleep 1
expect 1 "open in another process" "$bin" fsck --dir "$base/g" --repair
kill $pid 2>/dev/null; wait $pid 2>/dev/null
echo "ok"
