#!/bin/sh
# Description: KV of one model is never found by another: pieces stored by a model are
# restored by the same model file (the control), but not by another model of the same shape
# and size (another seed), nor by the same model in a context with the other V layout, and a
# copy of the model file under another name finds them (the name is its content).
set -eu
. "$(dirname "$0")/llama_lib.sh"
M2="$T/other.gguf"
$K mkmodel --out "$M2" --size small --seed 2 >/dev/null || fail "mkmodel"
[ "$(stat -c %s "$M")" = "$(stat -c %s "$M2")" ] || fail "the two models differ in size"
D="$T/grid"
$K run --model "$M" --block 64 --tier nvme --dir "$D" --store --prompt 3:400 >/dev/null ||
	fail "store"
$K run --model "$M" --block 64 --tier nvme --dir "$D" --prompt 3:400 >"$T/out" || fail "control"
[ "$(restored "$T/out" 0)" = 384 ] || fail "the storing model restored $(restored "$T/out" 0), not 384"
cp "$M" "$T/renamed.gguf"
$K run --model "$T/renamed.gguf" --block 64 --tier nvme --dir "$D" --prompt 3:400 >"$T/out" ||
	fail "renamed"
[ "$(restored "$T/out" 0)" = 384 ] || fail "a renamed copy restored $(restored "$T/out" 0)"
$K run --model "$M2" --block 64 --tier nvme --dir "$D" --prompt 3:400 >"$T/out" ||
	fail "other model"
[ "$(restored "$T/out" 0)" = 0 ] || fail "another model restored $(restored "$T/out" 0) tokens"
$K run --model "$M" --block 64 --flash off --tier nvme --dir "$D" --prompt 3:400 >"$T/out" ||
	fail "other layout"
[ "$(restored "$T/out" 0)" = 0 ] || fail "the transposed V layout restored $(restored "$T/out" 0)"
$K run --model "$M" --block 256 --tier nvme --dir "$D" --prompt 3:400 >"$T/out" ||
	fail "other block size"
[ "$(restored "$T/out" 0)" = 0 ] || fail "another block size restored $(restored "$T/out" 0)"
echo "test_llama_namespace.sh: all checks passed"
