#!/bin/sh
# Sustained load: CLIENTS clients mixing PUT, GET and prefix LOOKUP on kvgridd for SECONDS,
# payloads verified, server memory sampled.  The issue's figure is 64 clients for 300 s.
#   [NVME=1] sh bench/server_soak.sh [clients] [seconds] [block_KiB]
set -e
cd "$(dirname "$0")/.."
. bench/build.sh
T=${KVG_TEST_TMP:-$PWD/build/tmp}/bench-soak.$$
mkdir -p "$T"
cp build/kvgridd "$T/kvgridd"
# DRAM smaller than the working set (64 chains x 16 blocks), so eviction runs all along;
# NVME=1 adds an NVMe tier under $T (evicted blocks are demoted, loads come from both tiers)
TIER=""
[ -n "${NVME:-}" ] && TIER="--dir $T/nvme --nvme 512M --set segment_bytes=32M"
"$T/kvgridd" --port 0 --port-file "$T/port" --dram 48M --threads 2 --conns-max 256 $TIER \
	>"$T/log" 2>&1 &
KPID=$!
trap 'kill $KPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 600); do [ -f "$T/port" ] && break; sleep 0.1; done
build/bench/server_soak "$(cut -d' ' -f1 "$T/port")" "$KPID" "${1:-64}" "${2:-300}" "${3:-64}"
