# Shared by tests/test_llama_*.sh (sourced, not run).  Skips (exit 77) with the fetch's own
# reason when the pinned llama.cpp could not be fetched; sets K (kvgrid-llama), T (a fresh
# folder), M (the small test model) and helpers.
cd "$(dirname "$0")/.."
if [ ! -f build/llama.cpp/ok ]; then
	why=$(cat build/llama.cpp/unavailable 2>/dev/null || echo "llama.cpp was not fetched (run make)")
	echo "llama.cpp unavailable: $why"
	exit 77
fi
[ -x build/kvgrid-llama ] || { echo "build/kvgrid-llama is not built"; exit 77; }
K=build/kvgrid-llama
T="${KVG_TEST_TMP:-build/tmp}/$(basename "$0" .sh).$$"
rm -rf "$T" && mkdir -p "$T"
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
M="$T/small.gguf"
$K mkmodel --out "$M" --size small --seed 1 >/dev/null || fail "mkmodel"

# restored OUTPUT_FILE I: the restored count of prompt I in a `kvgrid-llama run` output
restored() { sed -n "s/^prompt $2 tokens [0-9]* restored \([0-9]*\)$/\1/p" "$1"; }

# same_logits A B WHAT: the two logits files are byte for byte equal
same_logits() {
	[ -s "$1" ] && [ -s "$2" ] || fail "$3: logits missing"
	cmp -s "$1" "$2" || fail "$3: logits differ from the uninterrupted run"
}

# reference PROMPT SPLIT OUT FLASH: the uninterrupted run, no grid: prefill [0, SPLIT), then
# the rest, in one context
reference() {
	$K run --model "$M" --no-grid --split "$2" --prompt "$1" --flash "$4" --logits "$3" \
		>/dev/null || fail "reference run"
}

# start_kvgridd NAME DIR: kvgridd on an ephemeral loopback port; sets PORT
start_kvgridd() {
	rm -f "$T/$1.port"
	build/kvgridd --port 0 --port-file "$T/$1.port" --dram 64M --dir "$2" \
		--log-file "$T/$1.log" &
	PIDS="$PIDS $!"
	KVGRIDD=$!
	i=0
	while [ ! -s "$T/$1.port" ]; do
		i=$((i + 1)); [ $i -lt 300 ] || fail "kvgridd $1 did not start"; sleep 0.05
	done
	PORT=$(cut -d' ' -f1 "$T/$1.port")
}
