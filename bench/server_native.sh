#!/bin/sh
# Native-protocol large-block loads from kvgridd against a plain TCP stream, same run, loopback.
#   sh bench/server_native.sh [block_MiB] [blocks_per_call] [seconds_per_round]
set -e
cd "$(dirname "$0")/.."
. bench/build.sh
T=${KVG_TEST_TMP:-$PWD/build/tmp}/bench-native.$$
mkdir -p "$T"
cp build/kvgridd "$T/kvgridd"
"$T/kvgridd" --port 0 --port-file "$T/port" --dram 2G --threads 2 >"$T/log" 2>&1 &
KPID=$!
trap 'kill $KPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 600); do [ -f "$T/port" ] && break; sleep 0.1; done
build/bench/server_native_bench "$(cut -d' ' -f1 "$T/port")" "${1:-4}" "${2:-4}" "${3:-2}"
