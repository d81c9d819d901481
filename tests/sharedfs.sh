#!/bin/sh
# A real distributed filesystem for the shared tier's tests: one GlusterFS volume (replica 2
# over two local bricks) served by a glusterd of our own, inside a network namespace of our
# own with only lo up (glusterd and the bricks listen on every address: nothing of theirs is
# reachable from the machine's namespace), and N FUSE mounts of it, one per simulated host.
#
#   tests/sharedfs.sh start STATE [N] [strict|cached]   prints the mount paths, one a line
#   tests/sharedfs.sh stop STATE                        unmounts, stops, removes everything
#   tests/sharedfs.sh check                             exit 77 with the reason if this
#                                                       machine cannot run it
#
# strict mounts turn the client caches and timeouts off (doc/SHARED.md: what the tier
# wants); cached ones keep GlusterFS's defaults, where another mount sees a change about a
# second late.  One instance per machine (glusterd keeps some runtime paths of its own), so
# start takes a lock.  The mounts are made with nsenter --net only, so that they stay in the
# machine's mount namespace where the tests see them (ip netns exec would hide them).
set -u
VOL=kvgsh
HOST=127.0.0.2 # the CLI refuses 127.0.0.1 and localhost as a brick host
LOCK=/run/kvgrid-sharedfs.lock

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

start() {
	STATE=$1; N=${2:-3}; MODE=${3:-strict}
	mkdir -p "$STATE" && STATE=$(cd "$STATE" && pwd)
	exec 9>"$LOCK"
	flock -w 120 9 || die "another instance holds $LOCK"
	echo $$ >"$STATE/lockpid"
	NS=kvgsh-$$
	echo "$NS" >"$STATE/netns"
	ip netns add "$NS" || die "ip netns add failed"
	in_ns ip link set lo up || die "cannot bring lo up in $NS"
	mkdir -p "$STATE/glusterd" "$STATE/log" "$STATE/b1" "$STATE/b2"
	sed "s|option working-directory .*|option working-directory $STATE/glusterd|" \
		/etc/glusterfs/glusterd.vol >"$STATE/glusterd.vol"
	in_ns setsid glusterd -N -f "$STATE/glusterd.vol" -l "$STATE/log/glusterd.log" \
		</dev/null >/dev/null 2>&1 &
	i=0
	until in_ns gluster --mode=script volume list >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 100 ] && die "glusterd did not answer (see $STATE/log)"
		sleep 0.1
	done
	in_ns gluster --mode=script volume create $VOL replica 2 \
		$HOST:"$STATE/b1" $HOST:"$STATE/b2" force >/dev/null || die "volume create failed"
	if [ "$MODE" = strict ]; then
		in_ns gluster --mode=script volume set $VOL performance.stat-prefetch off \
			performance.quick-read off performance.io-cache off performance.read-ahead off \
			performance.write-behind off performance.open-behind off \
			performance.readdir-ahead off performance.strict-o-direct on \
			network.ping-timeout 5 >/dev/null || die "volume set failed"
		OPTS="attribute-timeout=0,entry-timeout=0,negative-timeout=0"
	else
		in_ns gluster --mode=script volume set $VOL network.ping-timeout 5 >/dev/null
		OPTS=""
	fi
	in_ns gluster --mode=script volume start $VOL >/dev/null || die "volume start failed"
	for k in $(seq 1 "$N"); do
		mkdir -p "$STATE/m$k"
		o="log-file=$STATE/log/m$k.log${OPTS:+,$OPTS}"
		in_ns mount -t glusterfs -o "$o" $HOST:/$VOL "$STATE/m$k" ||
			die "mount $k failed (see $STATE/log/m$k.log)"
		echo "$STATE/m$k"
	done
}

stop() {
	STATE=$1
	[ -d "$STATE" ] || return 0
	for m in "$STATE"/m*; do
		[ -d "$m" ] || continue
		mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	if [ -f "$STATE/netns" ] && [ -e "/run/netns/$(cat "$STATE/netns")" ]; then
		NS=$(cat "$STATE/netns")
		in_ns timeout 20 gluster --mode=script volume stop $VOL force >/dev/null 2>&1
		in_ns timeout 20 gluster --mode=script volume delete $VOL >/dev/null 2>&1
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
*) echo "usage: $0 start STATE [N] [strict|cached] | stop STATE | check" >&2; exit 2 ;;
esac
