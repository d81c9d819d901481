#!/bin/sh
# The NVMe tier against fio at each block size and queue depth, optionally next to another
# kvgrid binary (an earlier version), all interleaved in one run -- fio write, fio randread,
# kvgrid, other kvgrid (the two kvgrids in the other order every second round), then the
# next case -- because this disk's speed drifts by minutes.
# fio: io_uring, O_DIRECT, random reads of a laid-out file and writes, the same file size,
# block size and queue depth, in the same directory.  Prints a table of means and ratios.
#
# Usage: [BASE=path/to/other/kvgrid] [SIZE=2G] [BLOCKS="64K 256K 1M 4M"] [QDS="16 64"]
#        sh bench/nvme_blocks.sh [DIR] [SECONDS] [ROUNDS]
# Results, one JSON line per round: build/bench-results/nvme_blocks.jsonl
set -e
cd "$(dirname "$0")/.."
[ -x build/kvgrid ] || make -j2 build/kvgrid >/dev/null
command -v fio >/dev/null || { echo "fio is not installed" >&2; exit 1; }
DIR=${1:-build/benchdir}
SECS=${2:-6}
ROUNDS=${3:-2}
SIZE=${SIZE:-2G}
BLOCKS=${BLOCKS:-64K 256K 1M 4M}
QDS=${QDS:-16 64}
BASE=${BASE:-}
mkdir -p "$DIR" build/bench-results
OUT=build/bench-results/nvme_blocks.jsonl
: >$OUT

fio_run() { # rw bs qd seconds key -> GB/s
	fio --name=kvg --filename="$DIR/fio.dat" --rw="$1" --bs="$2" --iodepth="$3" \
		--size="$SIZE" --direct=1 --ioengine=io_uring --time_based --runtime="$4" \
		--output-format=json 2>/dev/null | python3 -c '
import json,sys; j=json.load(sys.stdin)["jobs"][0]; k=sys.argv[1]
print("%.3f" % (j[k]["bw_bytes"]/1e9))' "$5"
}
kv_run() { # binary bs qd -> JSON
	"$1" bench --dir "$DIR" --tier nvme --block-bytes "$2" --queue-depth "$3" \
		--seconds "$SECS" --size "$SIZE" --json
}

echo "== NVMe tier vs fio: $SIZE, $SECS s per kvgrid run, $ROUNDS rounds, interleaved${BASE:+, base $BASE}"
fio --name=lay --filename="$DIR/fio.dat" --rw=write --bs=4m --size="$SIZE" --direct=1 \
	--ioengine=io_uring --output-format=terse >/dev/null 2>&1
r=0
while [ $r -lt "$ROUNDS" ]; do
	for bs in $BLOCKS; do
		for qd in $QDS; do
			fw=$(fio_run write $bs $qd $((SECS / 2)) write)
			fr=$(fio_run randread $bs $qd $((SECS / 2)) read)
			bj=null
			[ -z "$BASE" ] || [ $((r % 2)) -eq 0 ] || bj=$(kv_run "$BASE" $bs $qd)
			kj=$(kv_run build/kvgrid $bs $qd)
			[ -z "$BASE" ] || [ $((r % 2)) -eq 1 ] || bj=$(kv_run "$BASE" $bs $qd)
			echo "{\"bs\": \"$bs\", \"qd\": $qd, \"fio_write_gbps\": $fw, \"fio_read_gbps\": $fr, \"kvgrid\": $kj, \"base\": $bj}" >>$OUT
		done
	done
	r=$((r + 1))
done
rm -f "$DIR/fio.dat"
python3 - $OUT <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1])]
agg = collections.OrderedDict()
for r in rows:
    a = agg.setdefault((r["bs"], r["qd"]), collections.defaultdict(list))
    a["fw"].append(r["fio_write_gbps"]); a["fr"].append(r["fio_read_gbps"])
    a["kw"].append(r["kvgrid"]["write_gbps"]); a["kr"].append(r["kvgrid"]["read_gbps"])
    if r["base"]:
        a["bw"].append(r["base"]["write_gbps"]); a["br"].append(r["base"]["read_gbps"])
base = any(a["bw"] for a in agg.values())
m = lambda v: sum(v) / len(v)
if base:
    print("| block | QD | fio write GB/s | store GB/s (ratio) | base store (ratio) "
          "| fio read GB/s | load GB/s (ratio) | base load (ratio) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
else:
    print("| block | QD | fio write GB/s | store GB/s (ratio) | fio read GB/s | load GB/s (ratio) |")
    print("|---|---:|---:|---:|---:|---:|")
for (bs, qd), a in agg.items():
    fw, fr = m(a["fw"]), m(a["fr"])
    cells = ["%s" % bs, "%d" % qd, "%.2f" % fw, "%.2f (%.2f)" % (m(a["kw"]), m(a["kw"]) / fw)]
    if base:
        cells.append("%.2f (%.2f)" % (m(a["bw"]), m(a["bw"]) / fw))
    cells += ["%.2f" % fr, "%.2f (%.2f)" % (m(a["kr"]), m(a["kr"]) / fr)]
    if base:
        cells.append("%.2f (%.2f)" % (m(a["br"]), m(a["br"]) / fr))
    print("| " + " | ".join(cells) + " |")
PY
