#!/bin/sh
# bench/ab.sh OTHER_KVGRID [DIR] [SECONDS] [ROUNDS]: this tree's `kvgrid bench` against another
# build's (a refactor's before and after) in one run, each against the hardware's own figure:
#   NVMe tier, 1 MiB and 4 MiB blocks at QD 16 and 64: fio, this, other (other, this in every
#   second round), interleaved (this disk's speed drifts by minutes), each kvgrid figure as a
#   ratio of the fio beside it;
#   DRAM tier, 1 MiB blocks, QD 16 in requests of 4: each run measures memcpy on its threads.
# Same ratios within the run-to-run spread means the change cost nothing.  OTHER_KVGRID is a
# built `kvgrid`, e.g. from `git worktree add /tmp/before REV && make -C /tmp/before`.
set -e
[ $# -ge 1 ] || { echo "usage: sh bench/ab.sh OTHER_KVGRID [DIR] [SECONDS] [ROUNDS]" >&2; exit 2; }
B=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$B" ] || { echo "bench/ab.sh: $1 is not an executable" >&2; exit 2; }
cd "$(dirname "$0")/.."
. bench/build.sh
A=build/kvgrid
DIR=${2:-build/benchdir}
SECS=${3:-6}
ROUNDS=${4:-2}
SIZE=${SIZE:-4G}
OUT=build/bench-results/ab.jsonl
mkdir -p "$DIR" build/bench-results
: >"$OUT"
fio_gbps() { # rw bs qd secs field
	fio --name=kvg --filename="$DIR/fio.dat" --rw="$1" --bs="$2" --iodepth="$3" \
		--size="$SIZE" --direct=1 --ioengine=io_uring --time_based --runtime="$4" \
		--output-format=json 2>/dev/null | python3 -c '
import json,sys; j=json.load(sys.stdin)["jobs"][0]; print("%.3f" % (j[sys.argv[1]]["bw_bytes"]/1e9))' "$5"
}
fio --name=lay --filename="$DIR/fio.dat" --rw=write --bs=4m --size="$SIZE" --direct=1 \
	--ioengine=io_uring --output-format=terse >/dev/null 2>&1
r=0
while [ $r -lt "$ROUNDS" ]; do
	# which build runs first alternates by round: the second runs on a disk the first has
	# just written 4 GiB to
	order="this other"; [ $((r % 2)) -eq 0 ] || order="other this"
	for bs in 1M 4M; do
		for qd in 16 64; do
			fw=$(fio_gbps write $bs $qd $((SECS / 2)) write)
			fr=$(fio_gbps randread $bs $qd $((SECS / 2)) read)
			for who in $order; do
				bin=$A; [ $who = this ] || bin=$B
				j=$($bin bench --dir "$DIR" --tier nvme --block-bytes $bs --queue-depth $qd \
					--seconds "$SECS" --size "$SIZE" --json)
				echo "{\"tier\": \"nvme\", \"who\": \"$who\", \"bs\": \"$bs\", \"qd\": $qd, \"ref_write\": $fw, \"ref_read\": $fr, \"k\": $j}" >>"$OUT"
			done
		done
	done
	for who in $order; do
		bin=$A; [ $who = this ] || bin=$B
		j=$($bin bench --tier dram --block-bytes 1M --queue-depth 16 --batch 4 --seconds "$SECS" \
			--size 1G --json)
		echo "{\"tier\": \"dram\", \"who\": \"$who\", \"bs\": \"1M\", \"qd\": 16, \"k\": $j}" >>"$OUT"
	done
	r=$((r + 1))
done
rm -f "$DIR/fio.dat"
python3 - "$OUT" "$B" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1])]
agg = collections.OrderedDict()
for r in rows:
    k = r["k"]
    if r["tier"] == "nvme":
        w, rd = k["write_gbps"] / r["ref_write"], k["read_gbps"] / r["ref_read"]
    else:
        # builds since the interleaved memcpy slices report the store's own ratio
        w = k.get("write_vs_memcpy", k["write_gbps"] / k["memcpy_gbps"])
        rd = k["read_vs_memcpy"]
    a = agg.setdefault((r["tier"], r["bs"], r["qd"]), {"this": ([], []), "other": ([], [])})
    a[r["who"]][0].append(w); a[r["who"]][1].append(rd)
print("ratios to the reference in the same run (fio for NVMe, memcpy for DRAM); other = %s" % sys.argv[2])
print("| tier | block | QD | store: this | store: other | load: this | load: other |")
print("|---|---|---:|---|---|---|---|")
f = lambda v: "%.2f (%.2f-%.2f)" % (sum(v) / len(v), min(v), max(v))
for (t, bs, qd), a in agg.items():
    print("| %s | %s | %d | %s | %s | %s | %s |" % (t, bs, qd, f(a["this"][0]), f(a["other"][0]),
          f(a["this"][1]), f(a["other"][1])))
PY
