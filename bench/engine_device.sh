#!/bin/sh
# The engine's TTFT sweep and demo on a quiet machine, pinned to two cores (taskset -c 0,1),
# with statically linked binaries (the machine need not have the Debian packages):
#   gcc -static -o build/static/kvgrid-llm build/engine/*.o build/libkvgrid.a \
#       .../openblas-pthread/libopenblas.a -luring -lcrypto -lxxhash -lgfortran -lquadmath -lm
# A reference point free of other engineers' load; the development machine's own figures
# come from bench/engine_ttft.sh.  Results go to $OUT (default build/bench-engine-quiet).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-build/bench-engine-quiet}
LLM=${LLM:-build/static/kvgrid-llm}
KVG=${KVG:-build/static/kvgrid}
CONTEXTS=${CONTEXTS:-"1024 2048 4096 8192 16384 32768"}
DIR=${DIR:-/var/tmp}
PIN="taskset -c 0,1"
mkdir -p "$OUT"
: >"$OUT/ttft.jsonl"
lscpu | grep -E "Model name|^CPU\(s\)" >"$OUT/machine.txt"
for n in $CONTEXTS; do
	echo "context $n $(date +%T)"
	$PIN "$LLM" bench --config demo --context "$n" --tier both --dir "$DIR" --json \
		>>"$OUT/ttft.jsonl" || echo "bench $n failed"
done
d=$(mktemp -d "$DIR/kvgrid-bench-XXXXXX")
$PIN "$KVG" bench --dir "$d" --tier nvme --block-bytes 2097152 --queue-depth 16 --seconds 4 \
	--json >"$OUT/kvgrid-bench.json" 2>&1
rm -rf "$d"
start=$(date +%s.%N)
$PIN "$LLM" demo --dir "$DIR" >"$OUT/demo.txt" 2>&1
echo "demo wall $(awk "BEGIN { print $(date +%s.%N) - $start }") s" >>"$OUT/demo.txt"
tail -8 "$OUT/demo.txt"
