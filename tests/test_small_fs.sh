#!/bin/sh
# Description: the NVMe tier on a small filesystem (a loop-mounted ext4 image, else a tmpfs
# with a size limit): a small put takes little disk; the automatic capacity fits the free
# space and `kvgrid stats --json` reports it; a set nvme_bytes over the free space is one
# error line with nothing left behind; a filesystem filled up by another file makes stores
# evict or fail cleanly, and the directory reopens and serves what it holds byte for byte;
# kvgridd starts there, logs its capacity, and serves.  Needs root (mount): else exit 77.
set -u
K=build/kvgrid
[ -x $K ] && [ -x build/kvgridd ] || { echo "kvgrid is not built"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "not root: cannot mount a small filesystem"; exit 77; }
T=$(mktemp -d "${KVG_TEST_TMP:-build/tmp}/smallfs.XXXXXX") || exit 1
T=$(cd "$T" && pwd)
M="$T/m"
mkdir -p "$M"
SRV=""
cleanup() {
	[ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
	umount "$M" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# SMALL_FS=tmpfs skips ext4 for the tmpfs (buffered I/O: no O_DIRECT there)
if [ "${SMALL_FS:-}" != tmpfs ] && command -v mkfs.ext4 >/dev/null && truncate -s 96M "$T/img" &&
	mkfs.ext4 -q -F "$T/img" >/dev/null 2>&1 && mount -o loop "$T/img" "$M" 2>/dev/null; then
	FS=ext4
elif mount -t tmpfs -o size=64m tmpfs "$M" 2>/dev/null; then
	FS=tmpfs
else
	echo "cannot mount a small filesystem (no loop device, no tmpfs)"; exit 77
fi
echo "small filesystem: $FS, $(df -k "$M" | awk 'NR == 2 { print $4 }') KiB free"
free_kib() { df -k "$M" | awk 'NR == 2 { print $4 }'; }
G="--set segment_bytes=4M --dram 8M"

# 1. a small put costs about one segment, not the capacity
head -c 1000000 /dev/urandom >"$T/one"
free0=$(free_kib)
$K put --dir "$M/g" --key small --in "$T/one" $G >/dev/null || fail "small put"
used=$(du -sk "$M/g" | cut -f1)
[ "$used" -le 8192 ] || fail "a 1 MB put took $used KiB of disk"
cap=$($K stats --dir "$M/g" $G --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["nvme"]["capacity_bytes"])') ||
	fail "stats --json"
[ "$cap" -gt 0 ] && [ "$cap" -le $((free0 * 1024)) ] ||
	fail "automatic capacity $cap is not within the $free0 KiB that were free"
[ $((cap % (4 << 20))) -eq 0 ] || fail "capacity $cap is not whole segments"
$K stats --dir "$M/g" $G | grep -q "capacity $cap" || fail "stats text does not show $cap"
echo "small put: $used KiB on disk, automatic capacity $((cap >> 20)) MiB"

# 2. the default 256 MiB segments do not fit: one line, nothing created
$K put --dir "$M/big" --key x --in "$T/one" 2>"$T/err" && fail "256 MiB segments fit in $FS"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "not one line: $(cat "$T/err")"
grep -q "free" "$T/err" && grep -q "segment_bytes" "$T/err" || fail "unclear: $(cat "$T/err")"
[ -e "$M/big" ] && fail "the refused open left $M/big behind"

# 3. nvme_bytes over the free space: one line naming both, exit 1, nothing left behind
ls -A "$M" >"$T/before"
ls -A "$M/g" >"$T/before.g"
for d in "$M/new/sub" "$M/g"; do
	$K put --dir "$d" --key x --in "$T/one" $G --nvme 1G 2>"$T/err"
	rc=$?
	[ $rc -eq 1 ] || fail "nvme_bytes 1G on $FS: exit $rc: $(cat "$T/err")"
	[ "$(wc -l <"$T/err")" -eq 1 ] || fail "not one line: $(cat "$T/err")"
	grep -q "nvme_bytes 1 GiB exceeds the .* free" "$T/err" && grep -q "at most" "$T/err" ||
		fail "unclear error: $(cat "$T/err")"
done
echo "refused: $(cat "$T/err")"
ls -A "$M" | cmp -s - "$T/before" || fail "refused opens left files: $(ls -A "$M")"
ls -A "$M/g" | cmp -s - "$T/before.g" || fail "refused open changed $M/g: $(ls -A "$M/g")"
$K get --dir "$M/g" $G --key small --out "$T/back" && cmp -s "$T/one" "$T/back" ||
	fail "the first block was lost"

# 4. the grid stores, then another file eats the free space while it goes on storing
stored=""
i=0
while [ $i -lt 24 ]; do
	if [ $i -eq 8 ]; then
		dd if=/dev/zero of="$M/hog" bs=1M 2>/dev/null # until ENOSPC
		[ "$(free_kib)" -lt 4096 ] || fail "the hog left $(free_kib) KiB free"
	fi
	head -c 1500000 /dev/urandom >"$T/v$i"
	if $K put --dir "$M/g" $G --key "k$i" --in "$T/v$i" >/dev/null 2>"$T/err"; then
		stored="$stored $i"
	else
		rc=$?; echo "put k$i: exit $rc: $(cat "$T/err")"
		[ $rc -lt 128 ] || fail "put k$i crashed (exit $rc)"
		[ "$(wc -l <"$T/err")" -le 2 ] || fail "put k$i: $(cat "$T/err")"
	fi
	i=$((i + 1))
done
[ -n "$stored" ] || fail "no store succeeded on a full filesystem with segments to reuse"
served=0
for i in $stored; do
	if $K get --dir "$M/g" $G --key "k$i" --out "$T/back" 2>"$T/err"; then
		cmp -s "$T/v$i" "$T/back" || fail "k$i came back with other bytes"
		served=$((served + 1))
	else
		grep -q "not found" "$T/err" || fail "get k$i on a full filesystem: $(cat "$T/err")"
	fi
done
[ $served -gt 0 ] || fail "nothing served after the filesystem filled"
echo "full filesystem: stored$stored; $served served byte-exact after reopening"
$K stats --dir "$M/g" $G --json >/dev/null || fail "stats on the full filesystem"

# 5. kvgridd on the small filesystem: starts, logs its capacity, serves
rm -f "$M/hog"
build/kvgridd --port 0 --port-file "$T/port" --dram 8M --dir "$M/srv" \
	--set segment_bytes=4M --log-file "$T/srv.log" &
SRV=$!
n=0
while [ ! -s "$T/port" ]; do
	n=$((n + 1)); [ $n -lt 200 ] || fail "kvgridd did not start: $(cat "$T/srv.log")"
	kill -0 $SRV 2>/dev/null || fail "kvgridd exited: $(cat "$T/srv.log")"
	sleep 0.05
done
P=$(cut -d' ' -f1 "$T/port")
grep -q "NVMe tier in $M/srv: capacity [0-9]* MiB (automatic" "$T/srv.log" ||
	fail "no capacity in the start log: $(cat "$T/srv.log")"
$K put --server "127.0.0.1:$P" --key s --in "$T/one" >/dev/null || fail "put to kvgridd"
$K get --server "127.0.0.1:$P" --key s --out "$T/back" && cmp -s "$T/one" "$T/back" ||
	fail "get from kvgridd"
echo "kvgridd: $(grep -o "capacity [0-9]* MiB (automatic" "$T/srv.log")"
echo "ok"
