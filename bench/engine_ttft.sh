#!/bin/sh
# TTFT against context length for the reference engine: recompute, prefix reloaded from DRAM,
# prefix reloaded from NVMe (kvgrid-llm bench --tier both: one recompute, both tiers), then
# one `kvgrid bench` NVMe run at the engine's block size for the read bandwidth, all in the
# same run.  Writes $OUT/ttft.jsonl, $OUT/kvgrid-bench.json, $OUT/table.md and the plot
# doc/ttft-context.svg (bench/engine_plot.py).  On the 2-core development machine the whole
# sweep takes a few minutes, most of it the 32K recompute.
#   CONTEXTS="1024 2048" CONFIG=small sh bench/engine_ttft.sh     (a quick look)
set -eu
cd "$(dirname "$0")/.."
. bench/build.sh
CONTEXTS=${CONTEXTS:-"1024 2048 4096 8192 16384 32768"}
CONFIG=${CONFIG:-demo}
OUT=${OUT:-build/bench-engine}
SVG=${SVG:-doc/ttft-context.svg}
DIR=${DIR:-/var/tmp}
[ -x build/kvgrid-llm ] && [ -x build/kvgrid ] || { echo "run make first" >&2; exit 1; }
mkdir -p "$OUT"
: >"$OUT/ttft.jsonl"
for n in $CONTEXTS; do
	echo "engine_ttft: context $n ..." >&2
	build/kvgrid-llm bench --config "$CONFIG" --context "$n" --tier both --dir "$DIR" --json \
		>>"$OUT/ttft.jsonl"
done
bb=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["kv_bytes_per_token"] * json.loads(open(sys.argv[1]).readline())["block_tokens"])' "$OUT/ttft.jsonl")
d=$(mktemp -d "$DIR/kvgrid-bench-XXXXXX")
echo "engine_ttft: kvgrid bench --tier nvme --block-bytes $bb ..." >&2
build/kvgrid bench --dir "$d" --tier nvme --block-bytes "$bb" --queue-depth 16 --seconds 4 \
	--json >"$OUT/kvgrid-bench.json" || echo '{}' >"$OUT/kvgrid-bench.json"
rm -rf "$d"
python3 bench/engine_plot.py "$OUT/ttft.jsonl" "$OUT/kvgrid-bench.json" "$SVG" >"$OUT/table.md"
cat "$OUT/table.md"
