#!/bin/sh
# Description: llama.cpp's first-token logits with a prefix restored from the grid are bit
# for bit those of an uninterrupted run (the same context decoding the prefix then the rest,
# never through the grid): block sizes 64 and 256, flash attention on (V rows) and off (V
# transposed), a prompt whose shared prefix ends inside a block, on the DRAM tier in one
# process, on the NVMe tier from a second process, and through kvgridd from a second process
# and again after kvgridd restarts on the same directory.
set -eu
. "$(dirname "$0")/llama_lib.sh"

# The first request stores 600 tokens; the second shares 450 of them, then goes its own way:
# its restored prefix is the whole blocks of the 450, and it prefills the rest.
FIRST=7:600
SECOND=7:450+9:50

for B in 64 256; do
	R=$((450 / B * B))
	for FA in on off; do
		name="block $B, flash $FA"
		reference "$SECOND" $R "$T/ref-$B-$FA-" $FA
		# DRAM, one process
		$K run --model "$M" --block $B --flash $FA --dram 64M --store \
			--prompt $FIRST --prompt $SECOND --logits "$T/dram-$B-$FA-" >"$T/out" ||
			fail "$name: dram run"
		[ "$(restored "$T/out" 0)" = 0 ] || fail "$name: a fresh grid restored something"
		[ "$(restored "$T/out" 1)" = $R ] || fail "$name: dram restored $(restored "$T/out" 1), not $R"
		same_logits "$T/dram-$B-$FA-1.bin" "$T/ref-$B-$FA-0.bin" "$name, dram"
		# NVMe: stored by one process, restored by another
		D="$T/nvme-$B-$FA"
		$K run --model "$M" --block $B --flash $FA --tier nvme --dir "$D" --store \
			--prompt $FIRST >/dev/null || fail "$name: nvme store"
		$K run --model "$M" --block $B --flash $FA --tier nvme --dir "$D" \
			--prompt $SECOND --logits "$T/nvme-$B-$FA-" >"$T/out" || fail "$name: nvme run"
		[ "$(restored "$T/out" 0)" = $R ] || fail "$name: nvme restored $(restored "$T/out" 0)"
		same_logits "$T/nvme-$B-$FA-0.bin" "$T/ref-$B-$FA-0.bin" "$name, nvme"
	done
done

# kvgridd: one process stores, another restores; then kvgridd restarts and a third restores.
B=64 R=448
reference "$SECOND" $R "$T/ref-srv-" on
start_kvgridd srv "$T/srv-dir"
$K run --model "$M" --block $B --tier server --server 127.0.0.1:$PORT --store \
	--prompt $FIRST >/dev/null || fail "kvgridd store"
$K run --model "$M" --block $B --tier server --server 127.0.0.1:$PORT --prompt $SECOND \
	--logits "$T/srv-a-" >"$T/out" || fail "kvgridd restore"
[ "$(restored "$T/out" 0)" = $R ] || fail "kvgridd restored $(restored "$T/out" 0)"
same_logits "$T/srv-a-0.bin" "$T/ref-srv-0.bin" "kvgridd, second process"
kill $KVGRIDD && wait $KVGRIDD 2>/dev/null || true
start_kvgridd srv2 "$T/srv-dir"
$K run --model "$M" --block $B --tier server --server 127.0.0.1:$PORT --prompt $SECOND \
	--logits "$T/srv-b-" >"$T/out" || fail "kvgridd restore after restart"
[ "$(restored "$T/out" 0)" = $R ] || fail "after a restart kvgridd restored $(restored "$T/out" 0)"
same_logits "$T/srv-b-0.bin" "$T/ref-srv-0.bin" "kvgridd, after a restart"
echo "test_llama_logits.sh: all checks passed"
