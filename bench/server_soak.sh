#!/bin/sh
# Sustained load: CLIENTS clients mixing PUT, GET, prefix LOOKUP and DELETE on kvgridd for
# SECONDS, blocks of mixed sizes up to block_KiB, TENANTS tenants (an auth file; 0: none)
# over the same keys, chains never stored (misses), reconnects and clients that hang up
# mid-request; payloads verified, server memory sampled (bench/server_soak.c).
#   [NVME=1] sh bench/server_soak.sh [clients] [seconds] [block_KiB] [tenants]
# Defaults: 64 clients, 300 s, 64 KiB, 4 tenants.  The campaign: 64 1800 64 4, NVME=1.
set -e
cd "$(dirname "$0")/.."
. bench/build.sh
T=${KVG_TEST_TMP:-$PWD/build/tmp}/bench-soak.$$
mkdir -p "$T"
cp build/kvgridd "$T/kvgridd"
# DRAM smaller than the working set (64 chains x 16 blocks), so eviction runs all along;
# NVME=1 adds an NVMe tier under $T (evicted blocks are demoted, loads come from both tiers)
TIER=""
AUTH=""
tenants=${4:-4}
if [ "$tenants" -gt 0 ]; then
	mkdir -p "$T/tokens"
	: >"$T/auth"
	i=0
	while [ $i -lt "$tenants" ]; do
		echo "tok-$i t$i" >>"$T/auth"
		echo "tok-$i" >"$T/tokens/tok-$i"
		i=$((i + 1))
	done
	AUTH="--auth-file $T/auth"
fi
[ -n "${NVME:-}" ] && TIER="--dir $T/nvme --nvme 512M --set segment_bytes=32M"
"$T/kvgridd" --port 0 --port-file "$T/port" --dram 48M --threads 2 --conns-max 256 $TIER $AUTH \
	>"$T/log" 2>&1 &
KPID=$!
trap 'kill $KPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 600); do [ -f "$T/port" ] && break; sleep 0.1; done
SOAK_TOKENS="$T/tokens" build/bench/server_soak "$(cut -d' ' -f1 "$T/port")" "$KPID" \
	"${1:-64}" "${2:-300}" "${3:-64}" "$tenants"
