#!/bin/sh
# Description: the shared tier on a filesystem smaller than its shared_bytes (a 4 MiB
# tmpfs): publishing meets ENOSPC, evicts the oldest objects and tries again.  Every put
# succeeds, every get from another grid gives the value put or a miss (never other bytes),
# the newest values are there, and no temporary is left behind.
cd "$(dirname "$0")/.." || exit 1
[ -x build/kvgrid ] || { echo "FAIL: kvgrid is not built"; exit 1; }
T="$(mkdir -p "${KVG_TEST_TMP:-build/tmp}" && cd "${KVG_TEST_TMP:-build/tmp}" && pwd)/test_shared_enospc.$$"
mkdir -p "$T/small"
cleanup() { mountpoint -q "$T/small" && umount "$T/small"; rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
if ! mount -t tmpfs -o size=4m tmpfs "$T/small" 2>/dev/null; then
	echo "cannot mount a tmpfs here (needs root)"; exit 77
fi
fail() { echo "FAIL: $*"; exit 1; }
grid() { # host, args...
	h=$1; shift
	build/kvgrid "$@" --dir "$T/nvme-$h" --dram 4M --set "shared_dir=$T/small/tier" \
		--set shared_bytes=1G
}
i=0
while [ $i -lt 30 ]; do
	head -c 300000 /dev/urandom >"$T/v$i"
	grid a put --key "k$i" --in "$T/v$i" >/dev/null 2>"$T/err" || fail "put k$i: $(cat "$T/err")"
	i=$((i + 1))
done
found=0; i=0
while [ $i -lt 30 ]; do
	if grid b get --key "k$i" >"$T/back" 2>/dev/null; then
		cmp -s "$T/v$i" "$T/back" || fail "k$i came back with other bytes"
		found=$((found + 1))
	fi
	i=$((i + 1))
done
[ $found -ge 5 ] || fail "only $found of 30 values in the shared tier"
grid c get --key k29 >"$T/back" 2>/dev/null && cmp -s "$T/v29" "$T/back" ||
	fail "the newest value is not in the shared tier"
[ -z "$(find "$T/small" -name '.tmp-*')" ] || fail "temporaries left: $(find "$T/small" -name '.tmp-*')"
echo "test_shared_enospc.sh: 30 puts into 4 MiB, $found found intact by another grid"
