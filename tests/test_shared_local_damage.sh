#!/bin/sh
# Description: local NVMe is a cache of the shared tier: a durable grid whose local copy of
# a block is damaged (a byte of its payload flipped in the segment file, as a power cut
# tearing its write would leave it) loads the block from the shared tier, byte for byte;
# without a shared tier the same damage is a miss, never other bytes.
cd "$(dirname "$0")/.." || exit 1
KVG=${KVG:-build/kvgrid}
[ -x "$KVG" ] || { echo "FAIL: $KVG is not built"; exit 1; }
T="$(mkdir -p "${KVG_TEST_TMP:-build/tmp}" && cd "${KVG_TEST_TMP:-build/tmp}" && pwd)/test_shared_local_damage.$$"
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# damage DIR VALUE: flips one payload byte of VALUE's record in DIR's segment files
damage() {
	python3 - "$1" "$2" <<'PY' || fail "the record was not found in $1"
import glob, sys
value = open(sys.argv[2], "rb").read()
for seg in glob.glob(sys.argv[1] + "/seg-*.kvg"):
    with open(seg, "r+b") as f:
        data = f.read()
        at = data.find(value[:64])
        if at >= 0:
            f.seek(at + len(value) // 2)
            f.write(bytes([data[at + len(value) // 2] ^ 0xFF]))
            sys.exit(0)
sys.exit(1)
PY
}
head -c 200000 /dev/urandom >"$T/v"
for with in shared local; do
	set -- --dir "$T/nvme-$with" --set nvme_bytes=64M --set segment_bytes=4M --set durability=durable
	[ $with = shared ] && set -- "$@" --set "shared_dir=$T/shared"
	"$KVG" put --key k1 --in "$T/v" "$@" >/dev/null 2>"$T/err" || fail "put: $(cat "$T/err")"
	damage "$T/nvme-$with" "$T/v"
	if "$KVG" get --key k1 "$@" >"$T/back" 2>"$T/err"; then
		cmp -s "$T/v" "$T/back" || fail "$with: the damaged block came back with other bytes"
		[ $with = shared ] || fail "local: a damaged block without a shared tier was served"
	else
		[ $with = local ] ||
			fail "shared: the local copy was damaged and the shared tier's was not read: $(cat "$T/err")"
	fi
done
echo "test_shared_local_damage.sh: a damaged local copy is read from the shared tier; without one, a miss"
