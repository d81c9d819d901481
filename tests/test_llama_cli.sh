#!/bin/sh
# Description: kvgrid-llama's commands as a user meets them: bad input gets one error line
# and a non-zero exit (unknown command, size, prompt, tier; a model file that is missing or
# not a GGUF); bench --json carries its named fields with the restored logits exact; demo
# runs two processes on one kvgridd, and after the restart every request restores a prefix.
set -eu
. "$(dirname "$0")/llama_lib.sh"
bad() { # expected-substring, command...
	want=$1; shift
	if "$@" >"$T/o" 2>"$T/e"; then fail "accepted: $*"; fi
	grep -q -- "$want" "$T/e" || fail "no '$want' for: $* ($(cat "$T/e"))"
}
bad "unknown command" $K frobnicate
bad "unknown size" $K mkmodel --out "$T/x.gguf" --size huge
bad "bad --prompt" $K run --model "$M" --prompt 7
bad "unknown tier" $K run --model "$M" --tier tape --prompt 1:10
bad "needs --dir" $K run --model "$M" --tier nvme --prompt 1:10
bad "cannot load model" $K run --model "$T/missing.gguf" --prompt 1:10
echo "not a gguf" >"$T/junk.gguf"
bad "cannot load model" $K run --model "$T/junk.gguf" --prompt 1:10
bad "at least one block" $K bench --model "$M" --context 10

$K bench --model "$M" --context 512 --block 64 --repeat 1 --json >"$T/bench.json" || fail "bench"
for f in ttft_prefill_ms ttft_grid_ms restore_ms kv_bytes logits_max_abs_diff; do
	grep -q "\"$f\": " "$T/bench.json" || fail "bench --json lacks $f"
done
grep -q '"logits_max_abs_diff": 0,' "$T/bench.json" || fail "bench: restored logits not exact"
grep -q '"restored_tokens": 512,' "$T/bench.json" || fail "bench: prefix not restored"

$K demo --sessions 2 --turns 2 --system-tokens 256 --task-tokens 32 --tool-tokens 16 \
	--reply-tokens 4 --dir "$T/demo" >"$T/demo.out" || fail "demo"
rows2=$(awk '$1 == 2 && $2 ~ /^[01]$/' "$T/demo.out" | wc -l)
[ "$rows2" = 4 ] || fail "demo: $rows2 rows after the restart, not 4"
awk '$1 == 2 && $2 ~ /^[01]$/ && $7 == 0 { bad = 1 } END { exit bad }' "$T/demo.out" ||
	fail "demo: a request after the restart restored nothing"
awk '$1 == 1 && $2 ~ /^[01]$/' "$T/demo.out" | cut -c1-10 | sort -u | grep -q "1    1" ||
	fail "demo: process 1 did not serve requests"
echo "test_llama_cli.sh: all checks passed"
