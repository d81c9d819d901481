#!/bin/sh
# Description: damage planted in the segment files of a real grid (random bytes over a record
# header, a flipped payload byte, a zeroed range, a truncated segment, a segment of another
# grid) never stops the grid from opening and is never served: every block loaded afterwards
# is byte-exact.  `kvgrid fsck` detects the damage (exit 1, corrupt > 0), `fsck --repair`
# repairs or quarantines all of it, a second fsck finds nothing, and the grid still verifies.
set -u
cd "$(dirname "$0")/.."
bin=${KVG:-build/kvgrid}
[ -x "$bin" ] || { echo "skip: $bin not built"; exit 77; }
base=${KVG_TEST_TMP:-build/tmp}/corrupt_disk.$$
opts="--keys 256 --block-bytes 40K --dram 2M --nvme 32M --segment 1M --threads 2"
fail() { echo "FAIL: $*"; exit 1; }
json() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2"; }
mkdir -p "$base" && trap 'rm -rf "$base"' EXIT
# a private copy: another engineer's rebuild of build/kvgrid must not fail this test
cp "$bin" "$base/kvgrid" && bin=$base/kvgrid
d=$base/grid

"$bin" stress --dir "$d" $opts --seconds 1 --seed 1 >/dev/null 2>"$base/log" ||
	fail "stress could not fill the grid"
"$bin" stress --dir "$base/other" $opts --seconds 1 --seed 2 >/dev/null 2>>"$base/log" ||
	fail "stress could not fill the other grid"
"$bin" fsck --dir "$d" --json --quiet >"$base/f0.json" || fail "fsck of a sound grid failed"
[ "$(json corrupt "$base/f0.json")" -eq 0 ] || fail "a sound grid has corruption"

# the segments that hold records (a non-zero header)
used=""
for f in "$d"/seg-*.kvg; do
	[ "$(od -An -tx1 -N8 "$f" | tr -d ' 0\n')" != "" ] && used="$used $f"
done
set -- $used
[ $# -ge 5 ] || fail "expected at least 5 used segments, got $#"

# 1: random bytes over the first record's header (checksummed part, the last 128 bytes of
#    its 4 KiB header block)
dd if=/dev/urandom of="$1" bs=1 seek=$((4096 + 3968 + 40)) count=64 conv=notrunc 2>/dev/null
# 2: one payload byte of the first record flipped
b=$(od -An -tu1 -j $((8192 + 100)) -N1 "$2" | tr -d ' ')
printf "$(printf '\\%03o' $(( (b + 1) % 256 )))" |
	dd of="$2" bs=1 seek=$((8192 + 100)) count=1 conv=notrunc 2>/dev/null
# 3: a zeroed range across the first records
dd if=/dev/zero of="$3" bs=4096 seek=2 count=12 conv=notrunc 2>/dev/null
# 4: a truncated segment
truncate -s 300K "$4"
# 5: a segment of another grid in place of one of ours (same number, so only the grid differs)
n5=$(basename "$5")
[ -f "$base/other/$n5" ] && cp "$base/other/$n5" "$5"

"$bin" fsck --dir "$d" --json --quiet >"$base/f1.json"
rc=$?
[ $rc -eq 1 ] || fail "fsck of a damaged grid exited $rc, expected 1"
c1=$(json corrupt "$base/f1.json")
[ "$c1" -ge 4 ] || fail "fsck found $c1 damaged items, expected at least 4"

# the grid opens and serves no wrong byte (stress exits 3 on one)
"$bin" stress --dir "$d" $opts --verify-only >"$base/v1.out" 2>>"$base/log"
rc=$?
[ $rc -eq 0 ] || fail "verify-only of the damaged grid exited $rc"

"$bin" fsck --dir "$d" --json --quiet >"$base/f2.json"
"$bin" fsck --dir "$d" --repair --json --quiet >"$base/f3.json"
rc=$?
[ $rc -eq 0 ] || fail "fsck --repair exited $rc"
[ "$(json repaired "$base/f3.json")" -eq "$(json corrupt "$base/f3.json")" ] ||
	fail "repair left damage: $(cat "$base/f3.json")"
"$bin" fsck --dir "$d" --json --quiet >"$base/f4.json" || fail "fsck after repair exited $?"
[ "$(json corrupt "$base/f4.json")" -eq 0 ] || fail "damage remains after repair"
"$bin" stress --dir "$d" $opts --verify-only >"$base/v2.out" 2>>"$base/log" ||
	fail "verify-only after repair exited $?"
"$bin" stress --dir "$d" $opts --seconds 1 >/dev/null 2>>"$base/log" ||
	fail "the repaired grid does not run"
echo "ok: $c1 damaged items detected, $(json repaired "$base/f3.json") repaired," \
	"$(json quarantined "$base/f3.json") segments quarantined; 0 wrong bytes"
