#!/bin/sh
# run.sh - runs every libFuzzer target (fuzz/fuzz_NAME.c) on its corpus fuzz/corpus/NAME/.
#   sh fuzz/run.sh SECONDS [NAME...]   fuzz each target for SECONDS (make fuzz); new inputs go
#                                      to build/fuzz/work/NAME, the checked-in corpus is read
#   sh fuzz/run.sh --corpus [NAME...]  replay the checked-in corpus plus FUZZ_RUNS (default
#                                      2000) mutations of it per target: the pass make test runs
#   sh fuzz/run.sh --execs N [NAME...]  fuzz each target until N executions (a campaign), or
#                                      for FUZZ_MAX_TIME seconds when set and sooner; an input
#                                      running over FUZZ_TIMEOUT seconds (default 10) fails
#   sh fuzz/run.sh --merge [NAME...]   fold build/fuzz/work/NAME into fuzz/corpus/NAME
#                                      (minimised with -merge=1)
# Prints one line per target, "fuzz NAME: N execs in S s (R/s), corpus C, crashes K", and
# exits non-zero if any target crashed (its reproducer lands in build/fuzz/crash-NAME-*).
# A target's maximum input length is FUZZ_MAX_LEN_NAME if set, else 4096 (65536 for segment);
# its corpus pass runs FUZZ_RUNS_NAME, else FUZZ_RUNS, else 2000 inputs (150 for ckpt).
cd "$(dirname "$0")/.."
mode=time; secs=60
case "${1:-}" in
--corpus) mode=corpus; shift ;;
--merge) mode=merge; shift ;;
--execs) mode=execs; execs_goal=${2:?--execs needs a count}; shift 2 ;;
[0-9]*) secs=$1; shift ;;
esac
sh fuzz/build.sh; rc=$?
[ $rc -eq 0 ] || exit $rc
names="$*"
[ -n "$names" ] || names=$(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_\(.*\)\.c|\1|')
failed=""
for n in $names; do
	bin=build/fuzz/fuzz_$n
	corpus=fuzz/corpus/$n
	work=build/fuzz/work/$n
	mkdir -p "$corpus" "$work"
	eval "max=\${FUZZ_MAX_LEN_$n:-}"
	[ -n "$max" ] || { [ "$n" = segment ] && max=65536 || max=4096; }
	# ckpt opens a whole grid per input (about 50/s): a shorter corpus pass
	eval "runs=\${FUZZ_RUNS_$n:-}"
	[ -n "$runs" ] || { [ "$n" = ckpt ] && runs=150 || runs=${FUZZ_RUNS:-2000}; }
	log=build/fuzz/$n.log
	common="-max_len=$max -print_final_stats=1 -artifact_prefix=build/fuzz/crash-$n- -rss_limit_mb=2048"
	case $mode in
	time) "$bin" $common -max_total_time="$secs" -timeout=10 "$work" "$corpus" >"$log" 2>&1 ;;
	corpus) "$bin" $common -runs="$runs" -timeout=10 "$work" "$corpus" >"$log" 2>&1 ;;
	execs) "$bin" $common -runs="$execs_goal" -max_total_time="${FUZZ_MAX_TIME:-0}" \
		-timeout="${FUZZ_TIMEOUT:-10}" \
		"$work" "$corpus" >"$log" 2>&1 ;;
	merge) "$bin" $common -merge=1 "$corpus" "$work" >"$log" 2>&1 ;;
	esac
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	t=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	size=$(ls "$corpus" | wc -l)
	if [ $rc -ne 0 ]; then
		failed="$failed $n"
		echo "fuzz $n: FAILED (exit $rc); see $log"
		grep -m 3 -E "ERROR|SUMMARY|abort|Assertion" "$log" | sed 's/^/    /'
	else
		secs_run=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
		echo "fuzz $n: ${execs:-0} execs in ${secs_run:-?} s (${t:-0}/s), corpus $size, crashes 0"
	fi
done
[ -z "$failed" ] || { echo "fuzz: failed:$failed"; exit 1; }
exit 0
