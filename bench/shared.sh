#!/bin/sh
# The shared tier on GlusterFS (tests/sharedfs.sh: replica 2, client caches off) against
# fio on the same mounts, interleaved (fio, kvgrid, fio, kvgrid: doc MACHINE notes say the
# disk drifts): store and load of 1 MiB and 4 MiB blocks, QD files in flight all the time
# (kvgrid: QD threads storing or loading one block each at a time; fio: numjobs = QD, one
# file per block, psync, fsync at close: the same work as a publish, a file written whole
# and synced).  Writes go through mount 1, reads through mount 2, so every read starts with
# cold client caches.  Each round is fio write, kvgrid store, fio read, kvgrid load; the
# summary gives the median of the rounds' ratios.  Then the 512-block lookup, cold and
# warm, against loading those blocks.
#   sh bench/shared.sh [ROUNDS] [QD]     prints one JSON line per round and per block size
set -u
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${1:-5}; QD=${2:-8}
[ -x build/bench/shared_bench ] || { echo "make benches first" >&2; exit 1; }
S=$(pwd)/build/tmp/bench-shared.$$
trap 'sh tests/sharedfs.sh stop "$S"' EXIT
trap 'exit 1' INT TERM
sh tests/sharedfs.sh start "$S" 2 || exit 1
M1=$S/m1; M2=$S/m2
fio_gbps() { # rw dir bs n
	fio --name=f --directory="$2" --rw="$1" --bs="$3" --filesize="$3" \
		--nrfiles=$(($4 / QD)) --numjobs="$QD" --ioengine=psync --fsync_on_close=1 \
		--create_on_open=$([ "$1" = write ] && echo 1 || echo 0) --group_reporting \
		--output-format=json 2>/dev/null |
		python3 -c "import json,sys; j=json.load(sys.stdin)['jobs'][0]; \
print('%.3f' % (j['$1']['bw_bytes'] / 1e9))"
}
kvg_gbps() { # op dir bs n
	build/bench/shared_bench "$1" "$2" "$3" "$4" "$QD" |
		python3 -c "import json,sys; print('%.3f' % json.load(sys.stdin)['gbps'])"
}
for bs in 1M 4M; do
	n=$([ $bs = 1M ] && echo 256 || echo 64)
	for r in $(seq 1 "$ROUNDS"); do
		mkdir -p "$M1/fio-$bs-$r"
		fw=$(fio_gbps write "$M1/fio-$bs-$r" $bs $n)
		kw=$(kvg_gbps store "$M1/kvg-$bs-$r" $bs $n)
		fr=$(fio_gbps read "$M2/fio-$bs-$r" $bs $n)
		kr=$(kvg_gbps load "$M2/kvg-$bs-$r" $bs $n)
		echo "{\"bs\": \"$bs\", \"qd\": $QD, \"round\": $r, \"fio_write_gbps\": $fw, \"kvgrid_store_gbps\": $kw, \"store_ratio\": $(python3 -c "print(round($kw/$fw,2))"), \"fio_read_gbps\": $fr, \"kvgrid_load_gbps\": $kr, \"load_ratio\": $(python3 -c "print(round($kr/$fr,2))")}" |
			tee -a "$S/rounds"
		rm -rf "$M1/fio-$bs-$r" "$M1/kvg-$bs-$r"
	done
	python3 - "$S/rounds" "$bs" <<'EOF'
import json, statistics, sys
rs = [j for j in map(json.loads, open(sys.argv[1])) if j["bs"] == sys.argv[2]]
med = lambda k: statistics.median(r[k] for r in rs)
print(json.dumps({"bs": sys.argv[2], "rounds": len(rs),
                  "median_store_ratio": med("store_ratio"), "median_load_ratio": med("load_ratio"),
                  "store_ratios": [r["store_ratio"] for r in rs],
                  "load_ratios": [r["load_ratio"] for r in rs]}))
EOF
done
for bs in 256K 1M; do
	build/bench/shared_bench lookup "$M1/lookup-$bs" $bs
done
