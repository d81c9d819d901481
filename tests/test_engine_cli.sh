#!/bin/sh
# Description: build/kvgrid-llm end to end on the tiny config: `bench` reloads all but the
# last block from NVMe, from DRAM and from a kvgridd on loopback with bit-identical logits
# and says so in its JSON;
# `demo` runs its sessions with hits from both tiers and removes its directory; bad usage
# gives one clear line and exit 2, a failed run exit 1.
set -u
cd "$(dirname "$0")/.."
B=build/kvgrid-llm
[ -x "$B" ] || { echo "skip: $B not built"; exit 77; }
T="${KVG_TEST_TMP:-build/tmp}/engine-cli-$$"
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# json FILE EXPR: evaluates a Python expression over the JSON object j in FILE
json() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"; }

for tier in nvme dram; do
	$B bench --config tiny --context 100 --block-tokens 16 --tier $tier --reps 2 --dir "$T" \
		--json >"$T/bench-$tier.json" 2>"$T/err" || fail "bench --tier $tier: $(cat "$T/err")"
	json "$T/bench-$tier.json" 'j["logits_bit_identical"] is True and j["max_abs_logit_diff"] == 0' ||
		fail "$tier: logits differ: $(cat "$T/bench-$tier.json")"
	json "$T/bench-$tier.json" 'j["cached_tokens"] == 96 and j["suffix_tokens"] == 4' ||
		fail "$tier: wrong prefix: $(cat "$T/bench-$tier.json")"
	json "$T/bench-$tier.json" 'j["kv_bytes"] == 96 * j["kv_bytes_per_token"]' ||
		fail "$tier: kv_bytes: $(cat "$T/bench-$tier.json")"
	json "$T/bench-$tier.json" 'all(j[k] > 0 for k in ("ttft_recompute_ms", "ttft_grid_ms", "read_gbps", "sgemm_gflops", "prefill_gflops"))' ||
		fail "$tier: missing figures: $(cat "$T/bench-$tier.json")"
done
json "$T/bench-nvme.json" 'j["blocks_from_nvme"] == 6 and j["blocks_from_dram"] == 0' ||
	fail "nvme bench did not read from NVMe: $(cat "$T/bench-nvme.json")"
json "$T/bench-dram.json" 'j["blocks_from_dram"] == 6' ||
	fail "dram bench did not read from DRAM: $(cat "$T/bench-dram.json")"

# the same through a kvgridd on a loopback port: the engine stores and reloads over the
# native protocol, logits still bit-identical
if [ -x build/kvgridd ]; then
	build/kvgridd --port 0 --port-file "$T/kvgridd.port" --dram 64M >"$T/kvgridd.log" 2>&1 &
	KPID=$!
	for i in $(seq 1 300); do [ -s "$T/kvgridd.port" ] && break; sleep 0.1; done
	KPORT=$(cut -d' ' -f1 "$T/kvgridd.port" 2>/dev/null)
	[ -n "$KPORT" ] || { kill $KPID; fail "kvgridd did not start: $(cat "$T/kvgridd.log")"; }
	$B bench --config tiny --context 100 --block-tokens 16 --tier dram --reps 2 \
		--server "127.0.0.1:$KPORT" --json >"$T/bench-server.json" 2>"$T/err"
	rc=$?
	kill $KPID
	wait $KPID 2>/dev/null
	[ $rc -eq 0 ] || fail "bench --server: $(cat "$T/err")"
	json "$T/bench-server.json" 'j["logits_bit_identical"] is True and j["cached_tokens"] == 96' ||
		fail "server: $(cat "$T/bench-server.json")"
fi

$B demo --config tiny --block-tokens 16 --system-tokens 64 --task-tokens 8 --tool-tokens 20 \
	--dram 256K --sessions 3 --turns 3 --dir "$T" --json >"$T/demo.json" 2>"$T/err" ||
	fail "demo: $(cat "$T/err")"
json "$T/demo.json" 'j["requests"] == 9 and j["blocks_from_nvme"] > 0 and j["blocks_from_dram"] > 0' ||
	fail "demo did not hit both tiers: $(cat "$T/demo.json")"
json "$T/demo.json" 'j["prefill_avoided"] > 0.3 and j["dram_evictions"] > 0' ||
	fail "demo avoided too little prefill: $(cat "$T/demo.json")"
[ -z "$(ls -A "$T" | grep kvgrid-llm-)" ] || fail "a grid directory was left behind: $(ls "$T")"

$B demo --config tiny --block-tokens 16 --system-tokens 64 --task-tokens 8 --tool-tokens 20 \
	--dram 256K --sessions 2 --turns 2 --dir "$T" >"$T/demo.txt" 2>&1 || fail "demo table run"
grep -q "^summary of 4 requests" "$T/demo.txt" || fail "no summary: $(cat "$T/demo.txt")"
grep -q "TTFT with grid" "$T/demo.txt" || fail "no TTFT line: $(cat "$T/demo.txt")"

$B run --config tiny --tokens 40 --gen 3 >"$T/run.txt" 2>&1 || fail "run: $(cat "$T/run.txt")"

# usage errors: exit 2 and one line naming the command
for args in "bench --bogus" "bench --tier tape --context 600" "bench --context 10" \
	"demo --sessions 0" "demo --dram 12Q" "nosuchcommand"; do
	$B $args >/dev/null 2>"$T/err"
	rc=$?
	[ $rc -eq 2 ] || fail "'$args' exited $rc, want 2"
	[ "$(wc -l <"$T/err")" -ge 1 ] && grep -q "kvgrid-llm" "$T/err" || fail "'$args': no error line"
done
# operating errors: exit 1 with the reason
$B bench --config no-such-model --context 600 >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "unknown config" "$T/err" || fail "unknown config: $(cat "$T/err")"
$B run --config tiny --weights "$T/none.safetensors" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "none.safetensors" "$T/err" || fail "missing weights: $(cat "$T/err")"
echo "ok"
