# bench/build.sh - sourced by every benchmark script after it changes to the repository root:
# builds what the benchmarks run (the library, the commands and build/bench/*) and installs
# fio and redis from Debian's packages when missing, so that each benchmark BENCHMARKS.md
# names runs from a fresh clone.  Cheap when everything is built.  KVG_BENCH_NO_BUILD=1
# skips it (a benchmark of binaries built elsewhere).
if [ -z "${KVG_BENCH_NO_BUILD:-}" ]; then
	make --no-print-directory -s benches >&2 || { echo "bench: the build failed" >&2; exit 1; }
	sh scripts/deps.sh bench >&2 || { echo "bench: cannot install fio and redis" >&2; exit 1; }
fi
