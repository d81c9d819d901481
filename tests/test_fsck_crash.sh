#!/bin/sh
# Description: `kvgrid fsck --repair` killed with SIGKILL at a random moment loses nothing:
# after the interrupted repair and a complete one, the grid holds exactly the good blocks an
# uninterrupted repair keeps, serves no wrong byte, and no temporary file is left behind.
set -u
cd "$(dirname "$0")/.."
bin=${KVG:-build/kvgrid}
[ -x "$bin" ] || { echo "skip: $bin not built"; exit 77; }
base=${KVG_TEST_TMP:-build/tmp}/fsck_crash.$$
opts="--keys 512 --block-bytes 64K --dram 1M --nvme 48M --segment 1M --threads 2"
rounds=${FSCK_CRASH_ROUNDS:-12}
fail() { echo "FAIL: $*"; tail -n 5 "$base/log" 2>/dev/null; exit 1; }
json() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2"; }
rnd() { od -An -N2 -tu2 /dev/urandom | tr -d ' \n'; }
mkdir -p "$base" && trap 'rm -rf "$base"' EXIT
# a private copy: another engineer's rebuild of build/kvgrid must not fail this test
cp "$bin" "$base/kvgrid" && bin=$base/kvgrid

"$bin" stress --dir "$base/ref" $opts --durable --seconds 2 >/dev/null 2>"$base/log" ||
	fail "stress could not fill the grid"
# one flipped payload byte in every used segment: every segment needs a rewrite
for f in "$base/ref"/seg-*.kvg; do
	[ "$(od -An -tx1 -N8 "$f" | tr -d ' 0\n')" != "" ] || continue
	printf 'Z' | dd of="$f" bs=1 seek=$((8192 + 333)) count=1 conv=notrunc 2>/dev/null
done
cp -a "$base/ref" "$base/damaged"
"$bin" fsck --dir "$base/ref" --repair --json --quiet >"$base/ref.json" ||
	fail "the uninterrupted repair failed"
want=$(json blocks "$base/ref.json")
[ "$(json rewritten "$base/ref.json")" -gt 3 ] || fail "expected several segments to rewrite"

killed=0 r=0
while [ $r -lt "$rounds" ]; do
	r=$((r + 1))
	rm -rf "$base/g" && cp -a "$base/damaged" "$base/g"
	"$bin" fsck --dir "$base/g" --repair --quiet >/dev/null 2>&1 &
	pid=$!
	ms=$(( $(rnd) % 400 ))
	sleep "0.$(printf %03d $ms)"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	# damage left means the kill landed before the repair was done
	"$bin" fsck --dir "$base/g" --json --quiet >"$base/mid.json" 2>/dev/null ||
		killed=$((killed + 1))
	"$bin" fsck --dir "$base/g" --repair --json --quiet >"$base/g.json" 2>"$base/log" ||
		fail "round $r: the repair after the kill failed"
	"$bin" fsck --dir "$base/g" --json --quiet >"$base/g.json" || fail "round $r: damage remains"
	got=$(json blocks "$base/g.json")
	[ "$got" -eq "$want" ] || fail "round $r: $got blocks after an interrupted repair, $want expected"
	ls "$base/g" | grep -q '\.fsck$' && fail "round $r: a temporary file was left"
	"$bin" stress --dir "$base/g" $opts --verify-only >/dev/null 2>"$base/log" ||
		fail "round $r: verify-only exited $?"
done
[ $killed -gt 0 ] || echo "note: no kill landed mid-repair this time"
echo "ok: $rounds repairs, $killed killed mid-way; $want blocks kept every time; 0 wrong bytes"
