#!/bin/sh
# bench/dram_small.sh [OTHER_KVGRID] [SECONDS] [ROUNDS]: the DRAM tier with small blocks against
# memcpy, each `kvgrid bench --tier dram` run measuring memcpy of the same bytes on as many
# threads as the grid has workers, in slices between its own (a build older than the
# slices measures memcpy once, after its loads).  Blocks of 64 KiB and 256 KiB
# in requests of 1 and 4 blocks (16 blocks in flight) and of 64 blocks (64 in flight: one
# request).  With OTHER_KVGRID (another build, e.g. the commit before a change), both builds
# run each case in turn, the first alternating by round; the table gives the median ratio
# over the rounds and its range.
set -e
B=
if [ $# -ge 1 ] && [ -n "$1" ]; then
	B=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	[ -x "$B" ] || { echo "bench/dram_small.sh: $1 is not an executable" >&2; exit 2; }
fi
cd "$(dirname "$0")/.."
. bench/build.sh
A=build/kvgrid
SECS=${2:-3}
ROUNDS=${3:-3}
OUT=build/bench-results/dram_small.jsonl
mkdir -p build/bench-results
: >"$OUT"
run() { # build name, block, batch, qd
	j=$("$1" bench --tier dram --block-bytes "$3" --queue-depth "$5" --batch "$4" \
		--seconds "$SECS" --size 256M --json)
	echo "{\"build\": \"$2\", \"bs\": \"$3\", \"batch\": $4, \"qd\": $5, \"r\": $j}" >>"$OUT"
}
r=0
while [ $r -lt "$ROUNDS" ]; do
	for bs in 64K 256K; do
		for batch in 1 4 64; do
			qd=16; [ $batch -le 16 ] || qd=$batch
			if [ -z "$B" ]; then
				run $A this $bs $batch $qd
			elif [ $((r % 2)) -eq 0 ]; then
				run $A this $bs $batch $qd; run "$B" other $bs $batch $qd
			else
				run "$B" other $bs $batch $qd; run $A this $bs $batch $qd
			fi
		done
	done
	r=$((r + 1))
done
python3 - "$OUT" <<'PY'
import collections, json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
agg = collections.OrderedDict()
for x in rows:
    a = agg.setdefault((x["bs"], x["batch"], x["qd"]), {})
    b = a.setdefault(x["build"], {"load": [], "store": [], "p50": []})
    k = x["r"]
    b["load"].append(k["read_vs_memcpy"])
    b["store"].append(k.get("write_vs_memcpy", k["write_gbps"] / k["memcpy_gbps"]))
    b["p50"].append(x["r"]["read_p50_us"])
builds = [b for b in ("other", "this") if any(b in a for a in agg.values())]
f = lambda v: "%.2f (%.2f-%.2f)" % (statistics.median(v), min(v), max(v))
print("| block | blocks a request | QD | " + " | ".join(
    "%s %s / memcpy" % (k, b) for k in ("store", "load") for b in builds) +
    " | " + " | ".join("load p50 us %s" % b for b in builds) + " |")
print("|---|---:|---:|" + "---|" * (3 * len(builds)))
for (bs, batch, qd), a in agg.items():
    print("| %s | %d | %d | " % (bs, batch, qd) + " | ".join(
        f(a[b][k]) for k in ("store", "load") for b in builds) + " | " +
        " | ".join("%.0f" % statistics.median(a[b]["p50"]) for b in builds) + " |")
PY
