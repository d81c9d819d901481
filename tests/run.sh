#!/bin/sh
# Runs every test, each alone under a time limit, and prints one line per test and a last
# line "N passed, N failed, N skipped".  A test passes with exit 0, is skipped with exit 77.
#   build/tests/test_*          C tests (plain build)
#   build/asan/tests/test_*     the same under AddressSanitizer + UBSan
#   build/tsan/tests/test_*_mt*, test_layers  the threaded ones under ThreadSanitizer
#   tests/test_*.sh, tests/test_*.py   black-box tests of the binaries
#   asan/test_python_*.py       the Python package's tests on the ASan+UBSan library
# TEST_FILTER=substring runs only the tests whose name contains it.
cd "$(dirname "$0")/.."
# Tests use Debian's tools and python3 (with python3-redis), ahead of any other on PATH
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
pass=0; fail=0; skip=0; failed=""
export KVG_TEST_TMP="${KVG_TEST_TMP:-$PWD/build/tmp}"
mkdir -p "$KVG_TEST_TMP"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1"
run() { # name, limit_s, command...
	name=$1; limit=$2; shift 2
	case "$name" in *"${TEST_FILTER:-}"*) ;; *) return ;; esac
	log="$KVG_TEST_TMP/$(echo "$name" | tr '/ ' '__').log"
	start=$(date +%s)
	timeout -k 5 "$limit" "$@" >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	if [ $rc -eq 0 ]; then pass=$((pass + 1)); echo "PASS $name (${secs}s)"
	elif [ $rc -eq 77 ]; then skip=$((skip + 1)); echo "SKIP $name: $(tail -n 1 "$log")"
	else
		fail=$((fail + 1)); failed="$failed $name"
		echo "FAIL $name (exit $rc, ${secs}s); last lines of $log:"
		tail -n 15 "$log" | sed 's/^/    /'
	fi
}
for t in build/tests/test_*; do
	case "$t" in *.o) continue ;; esac; [ -x "$t" ] || continue
	run "$(basename "$t")" 300 "$t"
done
for t in build/asan/tests/test_*; do
	case "$t" in *.o) continue ;; esac; [ -x "$t" ] || continue
	run "asan/$(basename "$t")" 600 "$t"
done
for t in build/tsan/tests/test_*_mt* build/tsan/tests/test_layers; do
	case "$t" in *.o) continue ;; esac; [ -x "$t" ] || continue
	run "tsan/$(basename "$t")" 600 "$t"
done
for t in tests/test_*.sh; do [ -f "$t" ] && run "$(basename "$t")" 600 sh "$t"; done
# Debian's python3 has the distribution's modules (python3-redis); prefer it to any other
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
export KVG_PYTHON=$PY
for t in tests/test_*.py; do [ -f "$t" ] && run "$(basename "$t")" 600 $PY "$t"; done
# The Python package's tests again on the ASan+UBSan library, the sanitizer runtimes
# preloaded into the interpreter (leaks off: the interpreter's own are not ours)
asan_lib=build/asan/libkvgrid.so.1
rt="$(gcc -print-file-name=libasan.so 2>/dev/null) $(gcc -print-file-name=libubsan.so 2>/dev/null)"
if [ -f "$asan_lib" ] && [ -f "${rt%% *}" ]; then
	for t in tests/test_python_*.py; do
		[ -f "$t" ] && run "asan/$(basename "$t")" 600 env KVG_TEST_LIB="$PWD/$asan_lib" \
			LD_PRELOAD="$rt" ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" $PY "$t"
	done
fi
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
