#!/bin/sh
# Description: the shared tier on a real GlusterFS (tests/sharedfs.sh: replica 2 over two
# local bricks, glusterd in a network namespace of its own).  Three FUSE mounts of one volume
# are three hosts, each with its own grid (own DRAM, own NVMe): build/tests/test_shared runs
# every scenario over them (store on A found on C, the same block published by two hosts at
# once, a host killed mid-store, planted corruption, capacity and quotas with three writers,
# restart, stale caches); then on the cached volume (GlusterFS's default client caches) the
# scenarios where caches could serve old bytes; then kvgridd on two hosts over one shared
# tier: what a RESP client (as LMCache's resp connector) and an lm:// client store on one
# is read by the same clients on the other.
cd "$(dirname "$0")/.." || exit 1
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
reason=$(sh tests/sharedfs.sh check)
rc=$?
[ $rc -eq 0 ] || { echo "$reason"; exit $rc; }
[ -x build/tests/test_shared ] && [ -x build/kvgridd ] || { echo "FAIL: not built (make tests)"; exit 1; }
T="$(mkdir -p "${KVG_TEST_TMP:-build/tmp}" && cd "${KVG_TEST_TMP:-build/tmp}" && pwd)/test_sharedfs.$$"
S="$T/fs"
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	sh tests/sharedfs.sh stop "$S"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$T"

sh tests/sharedfs.sh start "$S" 3 || fail "could not start GlusterFS (see above)"
echo "GlusterFS up: strict $S/m1..m3, cached $S/c1..c3"

KVG_SHARED_DIRS="$S/m1:$S/m2:$S/m3" timeout 300 build/tests/test_shared ||
	fail "test_shared over three strict mounts"
KVG_SHARED_CACHED=1 KVG_SHARED_ONLY=a_load_c,same_block,corrupt,stale KVG_SHARED_DIRS="$S/c1:$S/c2:$S/c3" \
	timeout 200 build/tests/test_shared || fail "test_shared over three cached mounts"

# A brick lost under replica 2: the three hosts go on over the other (misses or whole
# blocks, never other bytes); then the brick comes back, heals, and the other is lost: every
# block acknowledged while the first was down is still read intact.
NS=$(cat "$S/netns")
brick_kill() { # brick directory
	for p in $(ip netns pids "$NS"); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "$1 " && kill -9 "$p"
	done
}
nsx() { nsenter --net="/run/netns/$NS" "$@"; }
brick_kill "$S/b1"
for k in 1 2 3; do mkdir -p "$S/m$k/degraded"; done
KVG_SHARED_ONLY=a_load_c,same_block,stale \
	KVG_SHARED_DIRS="$S/m1/degraded:$S/m2/degraded:$S/m3/degraded" timeout 200 \
	build/tests/test_shared || fail "test_shared with brick 1 of 2 lost"
nsx gluster --mode=script volume start kvgsh force >/dev/null || fail "brick 1 did not restart"
nsx gluster --mode=script volume heal kvgsh >/dev/null 2>&1
i=0
while :; do
	left=$(nsx gluster --mode=script volume heal kvgsh info 2>/dev/null |
		awk '/^Number of entries:/ { n += $4 } END { print n + 0 }')
	[ "$left" = 0 ] && break
	i=$((i + 1)); [ $i -lt 120 ] || fail "brick 1 did not heal in 60 s ($left entries left)"
	sleep 0.5
done
brick_kill "$S/b2"
KVG_SHARED_ONLY=restart KVG_SHARED_DIRS="$S/m1/degraded:$S/m2/degraded:$S/m3/degraded" \
	timeout 200 build/tests/test_shared || fail "blocks stored while brick 1 was down, read from it alone"
nsx gluster --mode=script volume start kvgsh force >/dev/null || fail "brick 2 did not restart"
echo "brick loss: whole blocks or misses while degraded; nothing acknowledged was lost"

# kvgridd on two hosts: A on mount 1, B on mount 2, one shared tier
start_srv() { # name, mount; sets PORT
	mkdir -p "$T/$1.nvme"
	build/kvgridd --port 0 --port-file "$T/$1.port" --dram 64M --dir "$T/$1.nvme" --nvme 256M \
		--set segment_bytes=16M --set "shared_dir=$2/kvgridd" --log-file "$T/$1.log" \
		</dev/null >/dev/null 2>&1 &
	PIDS="$PIDS $!"
	i=0
	while [ ! -s "$T/$1.port" ]; do
		i=$((i + 1)); [ $i -lt 300 ] || fail "kvgridd $1 did not start: $(tail -3 "$T/$1.log")"
		sleep 0.05
	done
	PORT=$(cut -d' ' -f1 "$T/$1.port")
}
start_srv a "$S/m1"
PA=$PORT
start_srv b "$S/m2"
PB=$PORT
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
PYTHONPATH=tests $PY - "$PA" "$PB" <<'EOF' || fail "two kvgridd hosts over one shared tier"
import os, sys
import redis
from lmclient import LMClient
pa, pb = int(sys.argv[1]), int(sys.argv[2])
a = redis.Redis(port=pa)
b = redis.Redis(port=pb)
blocks = {f"llama@1@0@{i:04x}@bfloat16": os.urandom((1 << 20) + i) for i in range(8)}
for k, v in blocks.items():
    assert a.set(k, v), k
for k, v in blocks.items():  # host B never saw these: they come from the shared tier
    got = b.get(k)
    assert got == v, f"{k}: {None if got is None else len(got)} bytes back"
assert b.exists(*blocks) == len(blocks)
assert b.get("llama@1@0@ffff@bfloat16") is None
la, lb = LMClient("127.0.0.1", pa), LMClient("127.0.0.1", pb)
data = os.urandom(2 * 4 * 16 * 64 * 2)
la.put("model@1@0@lm@bfloat16", data, fmt=1, dtype=3, shape=(2, 4, 16, 64))
assert la.get("model@1@0@lm@bfloat16")[0] == data  # PUT has no reply: A has it once A answers
got = lb.get("model@1@0@lm@bfloat16")
assert got is not None and got[0] == data, "lm:// value from the other host"
print("two hosts: 8 RESP values and 1 lm:// value stored on A, read intact on B")
EOF
echo "test_sharedfs.sh: all checks passed"
