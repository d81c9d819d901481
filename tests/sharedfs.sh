#!/bin/sh
# A real distributed filesystem for the shared tier's tests: GlusterFS volumes (replica 2
# over two local bricks each) served by a glusterd of our own, inside a network namespace of
# our own with only lo up (glusterd and the bricks listen on every address: nothing of
# theirs is reachable from the machine's namespace), and N FUSE mounts of each, one per
# simulated host.
#
#   tests/sharedfs.sh start STATE [N]   mounts STATE/m1..mN (volume kvgsh, strict) and
#                                       STATE/c1..cN (volume kvgshc, cached)
#   tests/sharedfs.sh stop STATE        unmounts, stops, kills, removes everything
#   tests/sharedfs.sh check             exit 77 with the reason if this machine cannot
#
# strict: the client caches and timeouts off (doc/SHARED.md: what the tier wants); cached:
# GlusterFS's defaults, where another mount sees a change about a second late and page
# caches keep old bytes.  One instance per machine (glusterd keeps some runtime paths of its
# own): start refuses while another runs.  The mounts are made with nsenter --net only, so
# that they stay in the machine's mount namespace where the tests see them (ip netns exec
# would make a private one and hide them).
set -u
HOST=127.0.0.2 # the CLI refuses 127.0.0.1 and localhost as a brick host

die() { echo "sharedfs: $*" >&2; exit 1; }

check() {
	[ "$(id -u)" = 0 ] || { echo "sharedfs: needs root (glusterd, FUSE mounts, namespaces)"; return 77; }
	[ -c /dev/fuse ] || { echo "sharedfs: no /dev/fuse: FUSE is missing"; return 77; }
	command -v glusterd >/dev/null && command -v mount.glusterfs >/dev/null ||
		{ echo "sharedfs: glusterd or mount.glusterfs missing: run scripts/deps.sh test"; return 1; }
	command -v nsenter >/dev/null && command -v ip >/dev/null ||
		{ echo "sharedfs: ip or nsenter missing: run scripts/deps.sh test"; return 1; }
	ns=kvgsh-check-$$
	if ! ip netns add "$ns" 2>/dev/null; then
		echo "sharedfs: cannot create a network namespace here"; return 77
	fi
	ip netns del "$ns"
	return 0
}

in_ns() { nsenter --net="/run/netns/$(cat "$STATE/netns")" "$@"; }

# volume NAME BRICK-PREFIX MOUNT-PREFIX N [option value]...: creates, starts and mounts one
volume() {
	vol=$1 b=$2 m=$3 n=$4; shift 4
	mkdir -p "$STATE/${b}1" "$STATE/${b}2"
	in_ns gluster --mode=script volume create "$vol" replica 2 \
		$HOST:"$STATE/${b}1" $HOST:"$STATE/${b}2" force >/dev/null || die "volume create $vol failed"
	in_ns gluster --mode=script volume set "$vol" network.ping-timeout 5 "$@" >/dev/null ||
		die "volume set $vol failed"
	in_ns gluster --mode=script volume start "$vol" >/dev/null || die "volume start $vol failed"
	for k in $(seq 1 "$n"); do
		mkdir -p "$STATE/$m$k"
		o="log-file=$STATE/log/$m$k.log${OPTS:+,$OPTS}"
		in_ns mount -t glusterfs -o "$o" $HOST:/"$vol" "$STATE/$m$k" ||
			die "mount $m$k failed (see $STATE/log/$m$k.log)"
	done
}

start() {
	STATE=$1; N=${2:-3}
	for ns in $(ip netns list 2>/dev/null | awk '/^kvgsh-/ { print $1 }'); do
		[ -n "$(ip netns pids "$ns")" ] && die "another instance runs (namespace $ns)"
	done
	mkdir -p "$STATE" && STATE=$(cd "$STATE" && pwd)
	NS=kvgsh-$$
	echo "$NS" >"$STATE/netns"
	ip netns add "$NS" || die "ip netns add failed"
	in_ns ip link set lo up || die "cannot bring lo up in $NS"
	mkdir -p "$STATE/glusterd" "$STATE/log"
	sed "s|option working-directory .*|option working-directory $STATE/glusterd|" \
		/etc/glusterfs/glusterd.vol >"$STATE/glusterd.vol"
	in_ns setsid glusterd -N -f "$STATE/glusterd.vol" -l "$STATE/log/glusterd.log" \
		</dev/null >/dev/null 2>&1 &
	i=0
	until in_ns gluster --mode=script volume list >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 100 ] && die "glusterd did not answer (see $STATE/log)"
		sleep 0.1
	done
	OPTS="attribute-timeout=0,entry-timeout=0,negative-timeout=0,reader-thread-count=4"
	volume kvgsh b m "$N" performance.stat-prefetch off performance.quick-read off \
		performance.io-cache off performance.read-ahead off performance.write-behind off \
		performance.open-behind off performance.readdir-ahead off \
		performance.strict-o-direct on
	OPTS=""
	volume kvgshc cb c "$N"
}

stop() {
	STATE=$1
	[ -d "$STATE" ] || return 0
	for m in "$STATE"/m* "$STATE"/c[0-9]*; do
		[ -d "$m" ] || continue
		mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	if [ -f "$STATE/netns" ] && [ -e "/run/netns/$(cat "$STATE/netns")" ]; then
		NS=$(cat "$STATE/netns")
		for vol in kvgsh kvgshc; do
			in_ns timeout 10 gluster --mode=script volume stop $vol force >/dev/null 2>&1
			in_ns timeout 10 gluster --mode=script volume delete $vol >/dev/null 2>&1
		done
		for p in $(ip netns pids "$NS"); do kill -TERM "$p" 2>/dev/null; done
		sleep 0.5
		for p in $(ip netns pids "$NS"); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$NS"
	fi
	rm -rf "$STATE"
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) shift; stop "$@" ;;
check) check ;;
*) echo "usage: $0 start STATE [N] | stop STATE | check" >&2; exit 2 ;;
esac
