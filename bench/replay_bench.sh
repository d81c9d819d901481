#!/bin/sh
# Regenerates the figures of doc/bench-policy.md: the policy table of both Mooncake traces
# (simulator), the same table through the real store for lru, prefix and density, density
# with session hints through the store (--hints oracle: a serving layer that knows whether
# a session goes on, exact or with a share flipped), the policies with 4 and 8 requests in
# flight (simulator, --interleave) and from 4 engine threads through the store (--engines),
# the two-tier replay (DRAM + NVMe, with and without hints), the replay speed of the
# conversation trace through the store, the cost model's tables, and the SVG plots under
# doc/.  Takes 3 to 6 minutes on a 2-core machine.
usage() {
	cat <<'USAGE'
usage: sh bench/replay_bench.sh [OUT_DIR]      (default OUT_DIR: doc)
Replays both Mooncake traces (simulator and store), prints the tables of
doc/bench-policy.md and writes the SVG plots into OUT_DIR.
The traces are read from $KVG_TRACES (default tests/data/traces):
  mooncake_conversation_trace.jsonl, mooncake_synthetic_trace.jsonl
USAGE
}
case "${1:-}" in
-h | --help) usage; exit 0 ;;
-*) usage >&2; exit 2 ;;
esac
set -eu
S=${KVG_TRACES:-}
case $S in "" | /*) ;; *) S=$PWD/$S ;; esac
cd "$(dirname "$0")/.."
. bench/build.sh
K=build/kvgrid
S=${S:-tests/data/traces}
OUT=${1:-doc}
for t in conversation synthetic; do
	[ -r "$S/mooncake_${t}_trace.jsonl" ] || {
		echo "replay_bench: no $S/mooncake_${t}_trace.jsonl (set KVG_TRACES to the directory" \
			"holding the Mooncake traces; see tests/data/traces/README.md): skipped" >&2
		exit 77
	}
done
[ -x $K ] || make $K
PCTS=1,2,5,10,20,50
# A table of lru, prefix and density through the store on trace $1 at the six capacities,
# with more replay options after it.
store_table() {
	tr=$1
	shift
	echo "| policy | 1% | 2% | 5% | 10% | 20% | 50% |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for p in lru prefix density; do
		row="| $p |"
		for c in 1 2 5 10 20 50; do
			r=$($K replay --trace $S/mooncake_${tr}_trace.jsonl --capacity-pct $c \
				--policy $p "$@" --json --no-refs | python3 -c \
				'import json,sys; d=json.load(sys.stdin); print("%.4f" % d["prefix_hit_token_ratio"])')
			row="$row $r |"
		done
		echo "$row"
	done
}
for t in conversation synthetic; do
	echo "## $t: simulator"
	$K replay --trace $S/mooncake_${t}_trace.jsonl --sweep $PCTS --svg "$OUT/policy-$t.svg"
	echo
	echo "## $t: through the store (DRAM tier of N blocks of 4 KiB)"
	store_table $t
	echo
	echo "## $t: density with session hints, through the store (gap closed in brackets)"
	echo "| hints | 1% | 2% | 5% | 10% | 20% | 50% |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for w in 0 0.05 0.1 0.2; do
		row="| oracle, $w wrong |"
		for c in 1 2 5 10 20 50; do
			r=$($K replay --trace $S/mooncake_${t}_trace.jsonl --capacity-pct $c \
				--policy density --hints oracle --hints-wrong $w --json | python3 -c \
				'import json,sys; d=json.load(sys.stdin); print("%.4f (%.1f%%)" % (d["prefix_hit_token_ratio"], 100 * d["gap_closed"]))')
			row="$row $r |"
		done
		echo "$row"
	done
	echo
done
for t in conversation synthetic; do
	for n in 4 8; do
		echo "## $t: simulator, $n requests in flight (their block calls in turn)"
		$K replay --trace $S/mooncake_${t}_trace.jsonl --sweep $PCTS \
			--policies lru,prefix,density,belady --interleave $n
		echo
	done
done
for t in conversation synthetic; do
	echo "## $t: through the store from 4 engine threads at once (--engines 4; varies run to run)"
	store_table $t --engines 4
	echo
done
echo "## two tiers: conversation trace, DRAM 36M + NVMe 256M (4 KiB blocks), through the store"
TT=$(mktemp -d)
for p in lru density density-hints; do
	h=none
	[ $p = density-hints ] && h=oracle
	$K replay --trace $S/mooncake_conversation_trace.jsonl --dram 36M --nvme 256M --dir "$TT/$p" \
		--policy ${p%-hints} --hints $h --json | python3 -c 'import json,sys; d=json.load(sys.stdin); t=d["tiers"]; print("%s: %.4f (one LRU tier of the %d blocks held: %.4f); hit blocks DRAM %d NVMe %d; promotions %d, demotions %d; NVMe MB read %.0f written %.0f; %.1f s" % (sys.argv[1], d["prefix_hit_token_ratio"], d["capacity_blocks"], d["references"]["lru"]["prefix_hit_token_ratio"], t["dram"]["hit_blocks"], t["nvme"]["hit_blocks"], t["dram"]["promotions"], t["dram"]["demotions"], t["nvme"]["bytes_read"] / 1e6, t["nvme"]["bytes_written"] / 1e6, d["elapsed_s"]))' $p
	rm -rf "${TT:?}/$p"
done
rmdir "$TT"
echo
echo "## replay speed through the store: conversation trace, 10% capacity, --speed asap"
$K replay --trace $S/mooncake_conversation_trace.jsonl --capacity-pct 10 --policy prefix --json |
	python3 -c 'import json,sys; d=json.load(sys.stdin); print("%(elapsed_s).2f s, %(requests_per_s).0f requests/s, prefix_hit_token_ratio %(prefix_hit_token_ratio).4f, load p50 %(p50).1f us p99 %(p99).1f us" % dict(d, **d["load_latency_us"]))'
echo
echo "## cost model: Llama-3.1-70B on H200, NVMe tier, conversation trace"
$K sim --model llama-3.1-70b --hw h200 --tier nvme --trace $S/mooncake_conversation_trace.jsonl \
	--sweep $PCTS --policies lru,prefix,belady --svg-dir "$OUT"
echo
echo "## cost model: Llama-3.1-8B on H100, DRAM tier, conversation trace, prefix at 10%"
$K sim --model llama-3.1-8b --hw h100 --tier dram --trace $S/mooncake_conversation_trace.jsonl \
	--policy prefix --capacity-pct 10 --svg-dir "$OUT"
echo
echo "## checks against Mooncake (FAST'25): Llama-3.1-70B on 8 x A800"
$K sim --model llama-3.1-70b --hw a800 --context 8192 --cached 8192
$K sim --model llama-3.1-70b --hw a800 --context 131072 --cached 131072 --tier net
