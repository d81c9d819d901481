#!/bin/sh
# crash.sh - the kill harness: `sh tests/crash.sh [KILLS]` (make crash-test runs 200, then 100
# with CRASH_SHARED=1).
#
# Runs `kvgrid stress` on an NVMe-backed grid and kills it with SIGKILL at a random moment
# (during recovery, a verification pass or the workload) or, two runs in three, with a power cut
# of the fault backend at a random write instead (io_backend=fault, cutmode=mixed: unsynced
# writes lost, kept or torn, and the process gone at once).  A plain SIGKILL keeps the page
# cache, so only a power cut shows a durable store acknowledged before its sync: runs 1, 5, 7
# and 11 are power cuts of the durable grid, so such a bug fails within the first dozen kills
# (a durable grid with too few blocks left unacknowledged for its cut to land among new
# writes is started afresh first, since durable runs never delete).
# KILLS times in all, alternating between a
# durable grid (with its log of acknowledged stores) and a cache-mode grid, and between the
# automatic I/O backend (io_uring where it works) and psync.  Before every run it
# reopens the grid with `kvgrid stress --verify-only`, which loads every block: any wrong byte
# fails the harness (exit 3 from stress), and so does, in durable mode, any acknowledged block
# that is missing (exit 4).  Every CRASH_FSCK_EVERY kills it runs `kvgrid fsck` (read-only,
# then --repair, then read-only again, which must find no damage at all: a repair that only
# claimed its repairs fails here) and verifies again, so a repair that threw away good data
# would be caught.
#
# Prints one line per kill with CRASH_VERBOSE=1, and always a summary whose last line is
#   crash: KILLS kills, WRONG wrong bytes, LOST acknowledged blocks lost, ...
# Exit 0 when nothing wrong was served and nothing acknowledged was lost.
#
# With CRASH_SHARED=1 every grid also has a shared tier (shared_dir, doc/SHARED.md: one
# directory per grid, on the scratch filesystem), written through and synced before it
# publishes: the kills and power cuts then also land in publications.  The durable grid logs
# the stores acknowledged as published there (stress --shared-acks), and after every kill a
# fresh grid with an empty NVMe directory finds every one of them in the shared tier alone
# (exit 4 otherwise); no grid may meet an object that fails verification there (a partial
# object made visible), and temporaries are never taken for objects.
#
# Environment: KVG (default build/kvgrid), KVG_TEST_TMP (scratch; default build/tmp),
# CRASH_OPTS (extra stress options), CRASH_FSCK_EVERY (default 10), CRASH_MAX_MS (the latest
# moment of a kill after start, default 800), CRASH_SHARED (0 or 1, default 0).
set -u
cd "$(dirname "$0")/.."
kills=${1:-200}
bin=${KVG:-build/kvgrid}
tmp=${KVG_TEST_TMP:-$PWD/build/tmp}
every=${CRASH_FSCK_EVERY:-10}
max_ms=${CRASH_MAX_MS:-800}
shared=${CRASH_SHARED:-0}
base=$tmp/crash.$$
keys=384 cut_max=150
opts="--keys $keys --block-bytes 48K --dram 4M --nvme 64M --segment 2M --threads 3 ${CRASH_OPTS:-}"

[ -x "$bin" ] || { echo "crash.sh: $bin not built (make)"; exit 77; }
mkdir -p "$base" || exit 1
log=$base/stress.log
# a private copy: a rebuild of build/kvgrid during a long run must not look like a crash
cp "$bin" "$base/kvgrid" || exit 1
bin=$base/kvgrid

fail() {
	echo "crash.sh: FAIL: $*"
	echo "crash.sh: directory kept for inspection: $base"
	tail -n 20 "$log" 2>/dev/null | sed 's/^/    /'
	exit 1
}
# After a reopen with a shared tier: no object there failed verification (none was visible
# half-written), and a grid with nothing local finds every block acknowledged as shared.
shared_check() {
	bad=$(json shared_checksum_failures "$base/verify.json")
	[ "${bad:-0}" = 0 ] || { partial=$((partial + bad)); fail "kill $i ($mode): $bad objects" \
	    "in the shared tier failed verification: a publication made a partial object visible"; }
	[ -n "$sacklog" ] && [ -f "$sacklog" ] || return 0
	rm -rf "$base/probe"
	"$bin" stress --dir "$base/probe" $opts --durable $sopts --verify-only --acks "$sacklog" \
	    --json >"$base/probe.json" 2>>"$log"
	rc=$?
	[ $rc -eq 3 ] && { wrong=$((wrong + 1)); fail "kill $i: the shared tier served a wrong byte"; }
	[ $rc -eq 4 ] && { lost=$((lost + 1)); fail "kill $i: blocks acknowledged as published to" \
	    "the shared tier are missing from it after the last $(eval echo \${last_$mode:-?})"; }
	[ $rc -ne 0 ] && fail "kill $i: verify-only over the shared tier alone exited $rc"
	sverified=$((sverified + $(json present "$base/probe.json")))
	sacks=$(sort -u "$sacklog" | wc -l)
}
rnd() { od -An -N2 -tu2 /dev/urandom | tr -d ' \n'; }
json() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2" | tail -n 1; }

sverified=0 sacks=0 partial=0
fresh=0 wrong=0 lost=0 verified=0 acked=0 acks=0 corrupt=0 cuts=0 repaired=0 fscks=0 in_verify=0 early=0
i=0
while [ $i -lt "$kills" ]; do
	i=$((i + 1))
	if [ $((i % 2)) -eq 1 ]; then mode=durable; flag=--durable; else mode=cache; flag=; fi
	dir=$base/$mode
	# every other pair of runs uses the portable backend (auto picks io_uring where it works)
	if [ $((i / 2 % 2)) -eq 0 ]; then backend=auto; else backend=psync; fi
	# the shared tier of this grid (none without CRASH_SHARED=1)
	sopts= sacklog=
	if [ "$shared" = 1 ]; then
		sopts="--set shared_dir=$base/shared-$mode --set shared_sync=1"
		[ $mode = durable ] && sacklog=$dir/stress.shared-acks
	fi

	# reopen and check everything after the previous kill
	"$bin" stress --dir "$dir" $opts $flag $sopts --verify-only --json >"$base/verify.json" 2>>"$log"
	rc=$?
	[ $rc -eq 3 ] && { wrong=$((wrong + 1)); fail "kill $i ($mode): a wrong byte was served"; }
	[ $rc -eq 4 ] && { lost=$((lost + 1)); fail "kill $i ($mode): acknowledged blocks lost" \
	    "after the last $(eval echo \${last_$mode:-?}) of this grid: a durable store, once" \
	    "acknowledged, must survive a kill and a power cut"; }
	[ $rc -ne 0 ] && fail "kill $i ($mode): verify-only exited $rc"
	verified=$((verified + $(json present "$base/verify.json")))
	[ "$shared" = 1 ] && shared_check

	# run, and kill at a random moment -- or, except every third run, by a power cut of the
	# fault backend at a random write: unsynced writes lost, kept or torn, the process gone at
	# once.  Durable runs (odd i) are cut at 1, 5, 7, 11, ... and killed at 3, 9, ...; cache
	# runs cut at 2, 4, 8, 10, ... and killed at 6, 12, ...
	how=kill
	if [ $((i % 3)) -ne 0 ]; then
		how=powercut
		# durable runs never delete, and a block already present is not written again: with
		# fewer than cut_max blocks left unacknowledged, a durable run may write too little for
		# its cut to come, and a cut among no new writes shows no missing sync.  The grid has
		# just passed its check: start a fresh one, so that the cut lands among new writes.
		if [ $mode = durable ] && [ -f "$dir/stress.acks" ] &&
		    [ $((keys - $(sort -u "$dir/stress.acks" | wc -l))) -lt $cut_max ]; then
			rm -rf "$dir"
			fresh=$((fresh + 1))
		fi
		plan="seed=$(rnd);cutmode=mixed;exit=5;powercut=write:$(( $(rnd) % cut_max + 1 ))"
		set -- --set io_backend=fault --set "fault_plan=$plan"
	else
		set -- --set io_backend=$backend
	fi
	[ -n "$sacklog" ] && set -- "$@" --shared-acks "$sacklog"
	"$bin" stress --dir "$dir" $opts $flag $sopts "$@" --seconds 60 >/dev/null 2>>"$log" &
	pid=$!
	ms=$(( $(rnd) % max_ms + 20 ))
	[ $how = powercut ] && ms=$((max_ms * 3)) # the cut comes first, the kill is a backstop
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	kill -9 $pid 2>/dev/null
	wait $pid
	rc=$?
	[ $rc -eq 3 ] && { wrong=$((wrong + 1)); fail "kill $i ($mode): a wrong byte was served"; }
	[ $rc -eq 5 ] && cuts=$((cuts + 1))
	if [ $rc -ne 137 ] && [ $rc -ne 5 ]; then
		# it ended before the kill: only a clean exit is acceptable
		[ $rc -eq 0 ] || fail "kill $i ($mode): stress exited $rc before the kill"
		early=$((early + 1))
	fi
	eval "last_$mode=\$how"
	[ "${CRASH_VERBOSE:-0}" = 1 ] && echo "kill $i ($mode, $backend, $how): exit $rc"

	if [ $((i % every)) -eq 0 ]; then
		for d in "$base/durable" "$base/cache"; do
			[ -d "$d" ] || continue
			"$bin" fsck --dir "$d" --json --quiet >"$base/fsck.json" 2>>"$log"
			rc=$?
			[ $rc -le 1 ] || fail "fsck of $d exited $rc"
			corrupt=$((corrupt + $(json corrupt "$base/fsck.json")))
			"$bin" fsck --dir "$d" --repair --json --quiet >"$base/fsck.json" 2>>"$log" ||
				fail "fsck --repair of $d left damage"
			fixed=$(json repaired "$base/fsck.json")
			repaired=$((repaired + fixed))
			# trust no repair count: a read-only pass afterwards must find nothing
			"$bin" fsck --dir "$d" --json --quiet >"$base/fsck.after.json" 2>>"$log"
			rc=$?
			left=$(json corrupt "$base/fsck.after.json")
			[ $rc -eq 0 ] && [ "${left:-x}" = 0 ] ||
				fail "kill $i: fsck --repair of $d claimed $fixed repairs, but a read-only" \
				    "fsck afterwards still finds ${left:-?} damaged records (exit $rc):" \
				    "a repair must leave no damage behind"
			fscks=$((fscks + 1))
		done
	fi
done

# a last check of both grids
for m in durable cache; do
	[ -d "$base/$m" ] || continue
	flag=; [ $m = durable ] && flag=--durable
	mode=$m dir=$base/$m sopts= sacklog=
	if [ "$shared" = 1 ]; then
		sopts="--set shared_dir=$base/shared-$m --set shared_sync=1"
		[ $m = durable ] && sacklog=$dir/stress.shared-acks
	fi
	"$bin" stress --dir "$base/$m" $opts $flag $sopts --verify-only --json >"$base/verify.json" 2>>"$log"
	rc=$?
	[ $rc -eq 0 ] || fail "final verify-only of the $m grid exited $rc"
	verified=$((verified + $(json present "$base/verify.json")))
	[ "$shared" = 1 ] && shared_check
	if [ $m = durable ]; then
		acks=$(wc -l <"$base/durable/stress.acks" 2>/dev/null || echo 0)
		acked=$(sort -u "$base/durable/stress.acks" 2>/dev/null | wc -l)
	fi
done

echo "crash: blocks verified after reopening: $verified"
echo "crash: durable stores acknowledged: ${acks:-0} (of ${acked:-0} distinct blocks), every one checked after every kill"
echo "crash: durable grids started afresh for a power cut among new writes: $fresh"
echo "crash: fsck runs: $fscks; damaged records found (torn by kills and power cuts): $corrupt; repaired: $repaired"
if [ "$shared" = 1 ]; then
	temps=$(find "$base"/shared-* -name '.tmp-*' 2>/dev/null | wc -l)
	objs=$(find "$base"/shared-* -type f 2>/dev/null | grep -cE '/[0-9a-f]{64}$')
	echo "crash: shared tier: blocks verified from it alone after reopening: $sverified;" \
	    "stores acknowledged as shared: $sacks distinct blocks (the last durable grid's)," \
	    "every one found; objects failing verification: $partial; $objs objects and" \
	    "$temps temporaries of killed publications left"
fi
[ $early -gt 0 ] && echo "crash: $early runs ended before their kill"
echo "crash: $kills kills ($cuts of them power cuts), $wrong wrong bytes, $lost acknowledged blocks lost"
rm -rf "$base"
exit 0
