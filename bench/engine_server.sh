#!/bin/sh
# The reference engine over kvgridd: TTFT of a CONTEXT-token prompt recomputed, and with all
# but its last block reloaded from (a) a kvgridd holding it in DRAM, (b) a kvgridd with 64 MiB
# of DRAM in front of NVMe (the prefix comes from its NVMe tier), (c) the embedded grid's
# NVMe tier, for comparison.  Loopback; the engine and the servers share this machine's cores.
#   sh bench/engine_server.sh [context_tokens] [reps]
set -e
cd "$(dirname "$0")/.."
. bench/build.sh
CTX=${1:-16384}
REPS=${2:-3}
T=${KVG_TEST_TMP:-$PWD/build/tmp}/bench-engine-server.$$
mkdir -p "$T/nvme"
build/kvgridd --port 0 --port-file "$T/a" --dram 3G >"$T/a.log" 2>&1 &
A=$!
build/kvgridd --port 0 --port-file "$T/b" --dram 64M --dir "$T/nvme" --nvme 4G >"$T/b.log" 2>&1 &
B=$!
trap 'kill $A $B 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 300); do [ -s "$T/a" ] && [ -s "$T/b" ] && break; sleep 0.1; done
echo "== kvgridd, DRAM"
build/kvgrid-llm bench --context "$CTX" --reps "$REPS" --server "127.0.0.1:$(cut -d' ' -f1 "$T/a")"
echo "== kvgridd, 64 MiB DRAM in front of NVMe"
build/kvgrid-llm bench --context "$CTX" --reps "$REPS" --server "127.0.0.1:$(cut -d' ' -f1 "$T/b")"
echo "== embedded grid, NVMe"
build/kvgrid-llm bench --context "$CTX" --reps "$REPS" --tier nvme --dir "$T"
