#!/bin/sh
# The grid's benchmarks, each against the hardware's limit measured in the same run:
#   1. NVMe tier vs fio (io_uring, O_DIRECT, same file size, block size and queue depth),
#      interleaved fio, kvgrid, fio, kvgrid ... because this disk's speed drifts by minutes;
#   2. DRAM tier load vs plain memcpy (same block size and thread count);
#   3. lookup of a 128K-token prefix vs the NVMe load of its KV (Llama-3.1-8B layout);
#   4. index memory per block.
# Usage: sh bench/run.sh [DIR] [SECONDS] [ROUNDS]    (DIR on the disk under test)
set -e
cd "$(dirname "$0")/.."
. bench/build.sh
DIR=${1:-build/benchdir}
SECS=${2:-6}
ROUNDS=${3:-2}
SIZE=${SIZE:-4G}
mkdir -p "$DIR"
K=build/kvgrid
OUT=build/bench-results
mkdir -p $OUT
: > $OUT/nvme.jsonl

fio_run() { # rw bs qd -> GB/s
	fio --name=kvg --filename="$DIR/fio.dat" --rw="$1" --bs="$2" --iodepth="$3" \
		--size="$SIZE" --direct=1 --ioengine=io_uring --time_based --runtime="$4" \
		--output-format=json 2>/dev/null | python3 -c '
import json,sys; j=json.load(sys.stdin)["jobs"][0]; k=sys.argv[1]
print("%.3f" % (j[k]["bw_bytes"]/1e9))' "$5"
}

echo "== NVMe tier vs fio ($SIZE file, $SECS s per run, $ROUNDS rounds, interleaved)"
# lay the fio file out once so its reads are of written blocks
fio --name=lay --filename="$DIR/fio.dat" --rw=write --bs=4m --size="$SIZE" --direct=1 \
	--ioengine=io_uring --output-format=terse >/dev/null 2>&1
for bs in 1M 4M; do
	for qd in 16 64; do
		r=0
		while [ $r -lt "$ROUNDS" ]; do
			fw=$(fio_run write $bs $qd $((SECS / 2)) write)
			fr=$(fio_run randread $bs $qd $((SECS / 2)) read)
			kj=$($K bench --dir "$DIR" --tier nvme --block-bytes $bs --queue-depth $qd \
				--seconds $SECS --size $SIZE --json)
			echo "{\"bs\": \"$bs\", \"qd\": $qd, \"fio_write_gbps\": $fw, \"fio_read_gbps\": $fr, \"kvgrid\": $kj}" >> $OUT/nvme.jsonl
			r=$((r + 1))
		done
	done
done
python3 - $OUT/nvme.jsonl <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1])]
agg = collections.OrderedDict()
for r in rows:
    a = agg.setdefault((r["bs"], r["qd"]), {"fw": [], "fr": [], "kw": [], "kr": [], "p99": []})
    a["fw"].append(r["fio_write_gbps"]); a["fr"].append(r["fio_read_gbps"])
    a["kw"].append(r["kvgrid"]["write_gbps"]); a["kr"].append(r["kvgrid"]["read_gbps"])
print("| block | QD | fio write GB/s | kvgrid store GB/s | ratio | fio read GB/s | kvgrid load GB/s | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for (bs, qd), a in agg.items():
    s = lambda v: sum(v) / len(v)
    print("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (bs, qd, s(a["fw"]), s(a["kw"]),
          s(a["kw"]) / s(a["fw"]), s(a["fr"]), s(a["kr"]), s(a["kr"]) / s(a["fr"])))
PY
rm -f "$DIR/fio.dat"

echo "== DRAM tier vs memcpy (16 blocks in flight as requests of 4; 3 runs, each measuring both; median ratio)"
: > $OUT/dram.jsonl
for r in 1 2 3; do
	$K bench --tier dram --block-bytes 1M --queue-depth 16 --batch 4 --seconds $SECS --size 1G --json \
		>> $OUT/dram.jsonl
done
python3 - $OUT/dram.jsonl <<'PY'
import json, sys
rows = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda j: j["read_vs_memcpy"])
for j in rows:
    print("  load %.2f GB/s, memcpy %.2f GB/s on %d threads: ratio %.2f; store %.2f GB/s" % (
        j["read_gbps"], j["memcpy_gbps"], j["memcpy_threads"], j["read_vs_memcpy"], j["write_gbps"]))
print("median ratio %.2f" % rows[1]["read_vs_memcpy"])
PY

echo "== recovery of one million blocks (checkpoint, and scan as after a crash)"
[ -n "${SKIP_RECOVERY:-}" ] || { rm -rf "$DIR/rec"; build/bench/recovery "$DIR/rec" 1000000 512 \
	| tee $OUT/recovery.json; rm -rf "$DIR/rec"; }

echo "== lookup of a 128K-token prefix vs loading its KV from NVMe"
build/bench/lookup 131072 sha256 > $OUT/lookup.json
python3 - $OUT/lookup.json $OUT/nvme.jsonl <<'PY'
import json, sys
l = json.load(open(sys.argv[1]))
rows = [json.loads(x) for x in open(sys.argv[2])]
rd = max(r["kvgrid"]["read_gbps"] for r in rows if r["bs"] == "4M")
load_s = l["kv_bytes"] / (rd * 1e9)
print("lookup %.0f us (SHA-256, hashing included) vs load of %.1f GiB at %.2f GB/s = %.1f s: %.4f%%"
      % (l["lookup_us"], l["kv_bytes"] / 2**30, rd, load_s, 100 * l["lookup_us"] / 1e6 / load_s))
print("index memory: %.0f bytes per block" % l["index_bytes_per_block"])
PY
