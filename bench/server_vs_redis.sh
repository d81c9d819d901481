#!/bin/sh
# kvgridd against redis-server (Debian, persistence off) with the same client, redis-benchmark,
# side by side in one run on loopback: GET and SET of 256 KiB and 1 MiB values with 1, 8 and
# 32 connections.  Prints one CSV line per case and the kvgridd/redis ratios.
#   sh bench/server_vs_redis.sh [requests_per_case]
# Client and servers share this machine's cores (2 on the project's build machine).
set -e
cd "$(dirname "$0")/.."
N=${1:-1000}
T=${KVG_TEST_TMP:-$PWD/build/tmp}/bench-server.$$
mkdir -p "$T"
cp build/kvgridd "$T/kvgridd" # a private copy: a rebuild of the tree must not pull it away
"$T/kvgridd" --port 0 --port-file "$T/port" --dram 3G --threads 2 >"$T/kvgridd.log" 2>&1 &
KPID=$!
redis-server --save '' --appendonly no --port 0 --unixsocket "$T/redis.sock" \
	--maxmemory 3gb --logfile "$T/redis.log" &
RPID=$!
trap 'kill $KPID $RPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 600); do [ -f "$T/port" ] && break; sleep 0.1; done
KPORT=$(cut -d' ' -f1 "$T/port")
# redis-server cannot report an ephemeral port; take a free one from the kernel instead
kill $RPID; wait $RPID 2>/dev/null || true
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --save '' --appendonly no --port "$RPORT" --bind 127.0.0.1 \
	--logfile "$T/redis.log" &
RPID=$!
for i in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "server,op,value_bytes,conns,rps,p50_ms,p99_ms"
for size in 262144 1048576; do
	head -c "$size" /dev/urandom >"$T/value"
	for port in "$KPORT" "$RPORT"; do
		redis-cli -p "$port" -x set key:__rand_int__ <"$T/value" >/dev/null
	done
	for op in get set; do
		for c in 1 8 32; do
			for port in "$KPORT" "$RPORT"; do
				name=kvgridd; [ "$port" = "$RPORT" ] && name=redis
				# SETs use random keys, so two connections never replace one key at once
				extra=""; [ "$op" = set ] && extra="-r 1000000"
				line=$(redis-benchmark -p "$port" -t "$op" -d "$size" -n "$N" -c "$c" \
					$extra --csv 2>/dev/null | tail -n 1)
				echo "$line" | awk -F'"' -v s="$name" -v o="$op" -v z="$size" -v c="$c" \
					'{ printf "%s,%s,%s,%s,%s,%s,%s\n", s, o, z, c, $4, $10, $14 }'
			done
		done
	done
done | tee "$T/results.csv"
echo
echo "ratio kvgridd/redis: op,value_bytes,conns,throughput_x,p99_x"
awk -F, 'NR > 1 { k = $2 "," $3 "," $4; if ($1 == "kvgridd") { kr[k] = $5; kp[k] = $7 }
	else { rr[k] = $5; rp[k] = $7; order[++n] = k } }
	END { for (i = 1; i <= n; i++) { k = order[i]; if (rr[k] > 0 && kp[k] > 0)
		printf "%s,%.2f,%.2f\n", k, kr[k] / rr[k], kp[k] / rp[k] } }' "$T/results.csv"
