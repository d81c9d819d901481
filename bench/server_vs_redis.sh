#!/bin/sh
# kvgridd against redis-server (Debian, persistence off), each client the same for both
# servers, side by side in one run on loopback: GET and SET of 256 KiB and 1 MiB values with 1,
# 8 and 32 connections.  Two clients: build/bench/resp_load (the project's lean RESP client:
# one recv per value, so the servers' costs decide) and redis-benchmark (whose reply parsing
# is the bottleneck at 1 MiB).  Prints, per client and case, the median throughput and p99 of
# each server over REPS (default 3) alternating runs, and their ratios; with resp_load also
# a bare server's throughput (resp_load --bare: a server inside the client that only parses
# and answers from memory: what this machine allows a RESP server) and each server's share
# of it (nan for redis-benchmark).
# SIZES, OPS, CONNS and CLIENTS narrow the cases (e.g. SIZES=1048576 OPS=get CONNS="8 32"
# CLIENTS=resp_load); KVGRIDD_THREADS sets kvgridd's workers (default 2); KEEP=1 keeps
# every run in runs.csv; DISCARD=1 has resp_load drop values in the kernel (MSG_TRUNC)
# instead of copying them out, so the servers alone share the cores.
#   sh bench/server_vs_redis.sh [requests_per_case]
# Client and servers share this machine's cores (2 on the project's build machine).
set -e
cd "$(dirname "$0")/.."
. bench/build.sh
N=${1:-1000}
T=${KVG_TEST_TMP:-$PWD/build/tmp}/bench-server.$$
mkdir -p "$T"
cp build/kvgridd "$T/kvgridd" # a private copy: a rebuild of the tree must not pull it away
"$T/kvgridd" --port 0 --port-file "$T/port" --dram 3G --threads ${KVGRIDD_THREADS:-2} >"$T/kvgridd.log" 2>&1 &
KPID=$!
RPID=""
trap 'kill $KPID $RPID 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
for i in $(seq 1 600); do [ -f "$T/port" ] && break; sleep 0.1; done
KPORT=$(cut -d' ' -f1 "$T/port")
# redis-server cannot report an ephemeral port: take a free one from the kernel
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --save '' --appendonly no --port "$RPORT" --bind 127.0.0.1 \
	--logfile "$T/redis.log" &
RPID=$!
for i in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
REPS=${REPS:-3}
DISCARD_FLAG=""; [ -n "${DISCARD:-}" ] && DISCARD_FLAG=--discard
echo "client,server,op,value_bytes,conns,rep,rps,p50_ms,p99_ms" >"$T/runs.csv"
for size in ${SIZES:-262144 1048576}; do
	head -c "$size" /dev/urandom >"$T/value"
	for port in "$KPORT" "$RPORT"; do
		redis-cli -p "$port" -x set key:__rand_int__ <"$T/value" >/dev/null
	done
	for op in ${OPS:-get set}; do
		for c in ${CONNS:-1 8 32}; do
			# kvgridd and redis alternate, REPS times: both see the same background load
			for rep in $(seq 1 "$REPS"); do
				for client in ${CLIENTS:-resp_load redis-benchmark}; do
					for port in "$KPORT" "$RPORT"; do
						name=kvgridd; [ "$port" = "$RPORT" ] && name=redis
						if [ "$client" = resp_load ]; then
							build/bench/resp_load -p "$port" -t "$op" -d "$size" -n "$N" \
								-c "$c" --keys 16 --label "$name" $DISCARD_FLAG |
							awk -F, -v r="$rep" '{ printf "resp_load,%s,%s,%s,%s,%s,%s,%s,%s\n", $1, $2, $3, $4, r, $5, $7, $8 }'
							# the bare server: what this machine allows a RESP server
							[ "$port" = "$RPORT" ] &&
							build/bench/resp_load --bare -t "$op" -d "$size" -n "$N" \
								-c "$c" --label bare $DISCARD_FLAG |
							awk -F, -v r="$rep" '{ printf "resp_load,%s,%s,%s,%s,%s,%s,%s,%s\n", $1, $2, $3, $4, r, $5, $7, $8 }'
							continue
						fi
						# SETs use random keys, so two connections never replace one key at once
						extra=""; [ "$op" = set ] && extra="-r 1000000"
						line=$(redis-benchmark -p "$port" -t "$op" -d "$size" -n "$N" -c "$c" \
							$extra --csv 2>/dev/null | tail -n 1)
						echo "$line" | awk -F'"' -v s="$name" -v o="$op" -v z="$size" -v c="$c" \
							-v r="$rep" '{ printf "redis-benchmark,%s,%s,%s,%s,%s,%s,%s,%s\n", s, o, z, c, r, $4, $10, $14 }'
					done
				done
			done >>"$T/runs.csv"
		done
	done
done
python3 - "$T/runs.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cases = []
for r in rows:
    k = (r["client"], r["op"], r["value_bytes"], r["conns"])
    if k not in cases:
        cases.append(k)
def med(server, k, f):
    v = [float(r[f]) for r in rows if r["server"] == server and (r["client"], r["op"], r["value_bytes"], r["conns"]) == k]
    return statistics.median(v) if v else float("nan")
print("client,op,value_bytes,conns,kvgridd_rps,redis_rps,throughput_x,kvgridd_p99_ms,redis_p99_ms,bare_rps,kvgridd_of_bare,redis_of_bare")
for k in sorted(cases, key=cases.index):
    kr, rr, cr = med("kvgridd", k, "rps"), med("redis", k, "rps"), med("bare", k, "rps")
    kp, rp = med("kvgridd", k, "p99_ms"), med("redis", k, "p99_ms")
    print("%s,%s,%s,%s,%.0f,%.0f,%.2f,%.2f,%.2f,%.0f,%.2f,%.2f" % (k + (kr, rr, kr / rr, kp, rp, cr, kr / cr, rr / cr)))
PY
echo "(medians of $REPS alternating runs of $N requests per client; KEEP=1 keeps every run in $T/runs.csv)"
