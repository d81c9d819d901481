#!/bin/sh
# crash.sh - the kill harness: `sh tests/crash.sh [KILLS]` (make crash-test runs 200).
#
# Runs `kvgrid stress` on an NVMe-backed grid and kills it with SIGKILL at a random moment
# (during recovery, a verification pass or the workload) -- every third time with a power cut
# of the fault backend at a random write instead (io_backend=fault, cutmode=mixed: unsynced
# writes lost, kept or torn, and the process gone at once) -- KILLS times, alternating between a
# durable grid (with its log of acknowledged stores) and a cache-mode grid, and between the
# automatic I/O backend (io_uring where it works) and psync.  Before every run it
# reopens the grid with `kvgrid stress --verify-only`, which loads every block: any wrong byte
# fails the harness (exit 3 from stress), and so does, in durable mode, any acknowledged block
# that is missing (exit 4).  Every CRASH_FSCK_EVERY kills it runs `kvgrid fsck` (read-only,
# then --repair) and verifies again, so a repair that threw away good data would be caught.
#
# Prints one line per kill with CRASH_VERBOSE=1, and always a summary whose last line is
#   crash: KILLS kills, WRONG wrong bytes, LOST acknowledged blocks lost, ...
# Exit 0 when nothing wrong was served and nothing acknowledged was lost.
#
# Environment: KVG (default build/kvgrid), KVG_TEST_TMP (scratch; default build/tmp),
# CRASH_OPTS (extra stress options), CRASH_FSCK_EVERY (default 10), CRASH_MAX_MS (the latest
# moment of a kill after start, default 800).
set -u
cd "$(dirname "$0")/.."
kills=${1:-200}
bin=${KVG:-build/kvgrid}
tmp=${KVG_TEST_TMP:-$PWD/build/tmp}
every=${CRASH_FSCK_EVERY:-10}
max_ms=${CRASH_MAX_MS:-800}
base=$tmp/crash.$$
opts="--keys 384 --block-bytes 48K --dram 4M --nvme 64M --segment 2M --threads 3 ${CRASH_OPTS:-}"

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
rnd() { od -An -N2 -tu2 /dev/urandom | tr -d ' \n'; }
json() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2" | tail -n 1; }

wrong=0 lost=0 verified=0 acked=0 acks=0 corrupt=0 cuts=0 repaired=0 fscks=0 in_verify=0 early=0
i=0
while [ $i -lt "$kills" ]; do
	i=$((i + 1))
	if [ $((i % 2)) -eq 1 ]; then mode=durable; flag=--durable; else mode=cache; flag=; fi
	dir=$base/$mode
	# every other pair of runs uses the portable backend (auto picks io_uring where it works)
	if [ $((i / 2 % 2)) -eq 0 ]; then backend=auto; else backend=psync; fi

	# reopen and check everything after the previous kill
	"$bin" stress --dir "$dir" $opts $flag --verify-only --json >"$base/verify.json" 2>>"$log"
	rc=$?
	[ $rc -eq 3 ] && { wrong=$((wrong + 1)); fail "kill $i ($mode): a wrong byte was served"; }
	[ $rc -eq 4 ] && { lost=$((lost + 1)); fail "kill $i ($mode): acknowledged blocks lost"; }
	[ $rc -ne 0 ] && fail "kill $i ($mode): verify-only exited $rc"
	verified=$((verified + $(json present "$base/verify.json")))

	# run, and kill at a random moment -- every third run by a power cut of the fault backend
	# at a random write instead: unsynced writes lost, kept or torn, the process gone at once
	how=kill
	if [ $((i % 3)) -eq 0 ]; then
		how=powercut
		plan="seed=$(rnd);cutmode=mixed;exit=5;powercut=write:$(( $(rnd) % 150 + 1 ))"
		set -- --set io_backend=fault --set "fault_plan=$plan"
	else
		set -- --set io_backend=$backend
	fi
	"$bin" stress --dir "$dir" $opts $flag "$@" --seconds 60 >/dev/null 2>>"$log" &
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
			repaired=$((repaired + $(json repaired "$base/fsck.json")))
			fscks=$((fscks + 1))
		done
	fi
done

# a last check of both grids
for m in durable cache; do
	[ -d "$base/$m" ] || continue
	flag=; [ $m = durable ] && flag=--durable
	"$bin" stress --dir "$base/$m" $opts $flag --verify-only --json >"$base/verify.json" 2>>"$log"
	rc=$?
	[ $rc -eq 0 ] || fail "final verify-only of the $m grid exited $rc"
	verified=$((verified + $(json present "$base/verify.json")))
	if [ $m = durable ]; then
		acks=$(wc -l <"$base/durable/stress.acks" 2>/dev/null || echo 0)
		acked=$(sort -u "$base/durable/stress.acks" 2>/dev/null | wc -l)
	fi
done

echo "crash: blocks verified after reopening: $verified"
echo "crash: durable stores acknowledged: ${acks:-0} (of ${acked:-0} distinct blocks), every one checked after every kill"
echo "crash: fsck runs: $fscks; damaged records found (torn by kills and power cuts): $corrupt; repaired: $repaired"
[ $early -gt 0 ] && echo "crash: $early runs ended before their kill"
echo "crash: $kills kills ($cuts of them power cuts), $wrong wrong bytes, $lost acknowledged blocks lost"
rm -rf "$base"
exit 0
