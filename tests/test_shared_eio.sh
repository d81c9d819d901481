#!/bin/sh
# Description: the shared tier on a filesystem that fails: grids (kvgrid stress, each a
# process of its own with its own NVMe directory, as hosts) over a shared_dir on faultfs
# (tests/faultfs.c, a FUSE passthrough) while it answers EIO on a fraction of open, read,
# write, fsync, rename, link, stat and unlink calls (and ENOSPC, EDQUOT), loses replies of calls it did, shortens
# reads and flips bytes.  Every load answers the block's own bytes or a miss (stress exits 3
# on a wrong byte); the failures are counted in the tier's io_errors; a store acknowledged
# as published to the shared tier (--shared-acks) is there, whole, once the faults stop, and
# so is every block published before they began; no partial object is ever visible (a
# fresh grid reading every object finds no checksum failure).  Then flipped bytes on read:
# caught by verification, counted and quarantined, never served.
cd "$(dirname "$0")/.." || exit 1
KVG=${KVG:-build/kvgrid} # KVG=build/asan/kvgrid: the same under ASan+UBSan
[ -x "$KVG" ] || { echo "FAIL: $KVG is not built"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (FUSE mounts)"; exit 77; }
[ -c /dev/fuse ] || { echo "no /dev/fuse: FUSE is missing"; exit 77; }
[ -x build/tests/faultfs ] ||
	{ echo "build/tests/faultfs not built: libfuse3-dev is missing (scripts/deps.sh test)"; exit 77; }
T="$(mkdir -p "${KVG_TEST_TMP:-build/tmp}" && cd "${KVG_TEST_TMP:-build/tmp}" && pwd)/test_shared_eio.$$"
mkdir -p "$T/back" "$T/mnt"
cleanup() {
	mountpoint -q "$T/mnt" && { umount "$T/mnt" 2>/dev/null || umount -l "$T/mnt"; }
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
build/tests/faultfs "$T/back" "$T/mnt" 2>"$T/faultfs.err" ||
	{ echo "cannot mount faultfs here: $(cat "$T/faultfs.err")"; exit 77; }

fail() { echo "FAIL: $*"; exit 1; }
faults() { printf '%s' "$1" >"$T/mnt/.faultfs" || fail "faultfs refused the spec '$1'"; }
json() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2" | tail -n 1; }
# host NAME MODEL [stress options...]: one grid as a host, its own NVMe directory, its JSON
# report in $T/NAME.json; a wrong byte is exit 3, which fails the test here
host() {
	h=$1 model=$2; shift 2
	"$KVG" stress --dir "$T/nvme-$h" --keys 384 --block-bytes 48K --dram 2M --nvme 16M \
		--segment 1M --threads 3 --set "shared_dir=$T/mnt/tier" --set "model_id=$model" \
		--json "$@" >"$T/$h.json" 2>"$T/$h.err"
	rc=$?
	[ $rc -eq 3 ] && fail "host $h served a wrong byte: $(cat "$T/$h.err")"
	return $rc
}
io_errors=0
add_errors() { for h; do io_errors=$((io_errors + $(json shared_io_errors "$T/$h.json"))); done; }

# 1. blocks published before any fault
host pre before --durable --seconds 2 --shared-acks "$T/pre.acks" || fail "host pre: $(cat "$T/pre.err")"
pre=$(sort -u "$T/pre.acks" | wc -l)
[ "$pre" -ge 60 ] || fail "only $pre blocks published before the faults"

# 2. EIO everywhere while three hosts store and load new blocks and a fourth reads the old
# ones (the grids open first: an open that meets a fault fails cleanly, checked below)
EIO="seed=7;fail=read:0.1;fail=write:0.05;fail=fsync:0.1;fail=rename:0.15;fail=open:0.05"
EIO="$EIO;fail=stat:0.03;fail=unlink:0.1;late=rename:0.05;late=write:0.03;short=read:0.3"
host a during --durable --seconds 4 --shared-acks "$T/a.acks" --seed 1 &
pa=$!
host b during --durable --seconds 4 --shared-acks "$T/b.acks" --seed 2 &
pb=$!
host c during --durable --seconds 4 --shared-acks "$T/c.acks" --seed 3 &
pc=$!
sleep 0.3
faults "$EIO"
old=0 refused=0
for k in 1 2 3 4 5 6 7 8; do
	if host "old$k" before --verify-only; then
		old=$((old + 1))
		add_errors "old$k"
	else
		grep -q "cannot open the grid" "$T/old$k.err" || fail "host old$k: $(cat "$T/old$k.err")"
		refused=$((refused + 1))
	fi
done
[ $old -gt 0 ] || fail "no grid opened under faults to read the old blocks"
for p in $pa $pb $pc; do wait $p || fail "a host under faults exited $?: $(cat "$T"/[abc].err)"; done
add_errors a b c
cp "$T/mnt/.faultfs" "$T/counts.eio"
# the link() path (GlusterFS's: no renameat2 flags), with EIO on link and lost replies
faults "seed=8;norename2;fail=link:0.2;late=link:0.05;fail=unlink:0.2;fail=fsync:0.1;fail=open:0.05"
host l linkpath --durable --seconds 2 --shared-acks "$T/l.acks" || fail "host l: $(cat "$T/l.err")"
add_errors l
cp "$T/mnt/.faultfs" "$T/counts.link"
# an open under faults: the grid opens or refuses with a message, never hangs or crashes
faults "seed=9;fail=any:0.3;short=read:1"
host o opening --seconds 1 >/dev/null
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 1 ] || fail "a grid opening under faults exited $rc: $(cat "$T/o.err")"
faults off

for op in open read write fsync rename stat; do
	f=$(sed -n "s/^$op calls [0-9]* failed \([0-9]*\)/\1/p" "$T/counts.eio")
	[ "${f:-0}" -gt 0 ] || fail "faultfs failed no $op call: $(cat "$T/counts.eio")"
done
f=$(sed -n "s/^link calls [0-9]* failed \([0-9]*\)/\1/p" "$T/counts.link")
[ "${f:-0}" -gt 0 ] || fail "faultfs failed no link call: $(cat "$T/counts.link")"
[ $io_errors -gt 0 ] || fail "the hosts counted no shared io_errors under faults"

# 3. faults off: fresh hosts (empty NVMe directories: only the shared tier can answer) find
# every block published before the faults and every store acknowledged as shared under
# them, whole; and no object that fails verification (a partial one) is visible
check() { # name model acks
	host "$1" "$2" --durable --verify-only --acks "$3" ||
		fail "host $1: acknowledged blocks missing from the shared tier: $(cat "$T/$1.err")"
	[ "$(json shared_checksum_failures "$T/$1.json")" = 0 ] ||
		fail "host $1: an object failed verification: a partial object was visible"
}
check after1 before "$T/pre.acks"
cat "$T/a.acks" "$T/b.acks" "$T/c.acks" >"$T/during.acks"
check after2 during "$T/during.acks"
check after3 linkpath "$T/l.acks"
acked=$(sort -u "$T/during.acks" "$T/l.acks" | wc -l)
[ "$acked" -gt 0 ] || fail "no store was acknowledged as shared under faults"
tree=$(find "$T/back/tier" -name '[0-9a-f]*' -type f | grep -cE '/[0-9a-f]{64}$')
temps=$(find "$T/back/tier" -name '.tmp-*' | wc -l)

# 4. ENOSPC and EDQUOT at random (a full brick, a quota): the host evicts objects (of any
# grid: a cache's right), retries, or stores locally only, and acknowledges as shared only
# what it published
faults "seed=11;fail=write:0.2:ENOSPC;fail=fsync:0.1:EDQUOT;fail=open:0.05:ENOSPC"
host s nospace --durable --seconds 2 --shared-acks "$T/s.acks" || fail "host s: $(cat "$T/s.err")"
faults off
nospace=$(json shared_io_errors "$T/s.json")
[ "$nospace" -gt 0 ] || fail "host s counted no io_errors under ENOSPC"
check after5 nospace "$T/s.acks"

# 5. flipped bytes on read: verification catches them; the object is quarantined
# (a flipped byte in .kvgrid/FORMAT makes a grid refuse the directory: it tries again)
# A run counts only if bytes were flipped while it ran (faultfs's "flipped" count grew):
# the only flip of an attempt may fall on a read no check follows.
faults "seed=10;flip=read:0.2;short=read:0.2"
flipped() { awk '$1 == "flipped" { print $2 }' "$T/mnt/.faultfs"; }
k=0
while :; do
	f0=$(flipped)
	if host flip during --verify-only; then
		[ "$(flipped)" -gt "$f0" ] && break
	else
		grep -q "cannot open the grid" "$T/flip.err" || fail "host flip: $(cat "$T/flip.err")"
	fi
	k=$((k + 1))
	[ $k -lt 20 ] || fail "no grid opened and met flipped reads in 20 tries"
done
faults off
caught=$(json shared_checksum_failures "$T/flip.json")
[ "$caught" -gt 0 ] || fail "no flipped byte was caught: $(cat "$T/mnt/.faultfs")"
bad=$(find "$T/back/tier" -name '.bad-*' | wc -l)
[ "$bad" -gt 0 ] && [ "$bad" -le "$caught" ] || fail "$caught caught, but $bad quarantined"
host again during --durable --seconds 1 --shared-acks "$T/again.acks" || fail "host again"
check after4 during "$T/again.acks"

echo "test_shared_eio.sh: $pre blocks before the faults and $acked acknowledged as shared" \
	"under them all found whole afterwards; $io_errors shared io_errors counted;" \
	"$nospace failed publications under ENOSPC/EDQUOT;" \
	"$tree objects, $temps temporaries left; $old grids read the old blocks under faults" \
	"($refused refused to open); $caught flipped reads caught, $bad quarantined;" \
	"0 wrong bytes"
