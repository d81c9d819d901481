#!/bin/sh
# Description: redis-cli, unmodified, against kvgridd on an ephemeral loopback port: PING,
# binary-safe SET/GET of a 3 MiB random value through -x, EXISTS of several keys, DEL, MSET and
# MGET, INFO, DBSIZE, an unknown command answered with an error on a connection that stays
# usable, 2000 commands in --pipe mode, and AUTH refused then accepted.
set -eu
cd "$(dirname "$0")/.."
command -v redis-cli >/dev/null || { echo "redis-cli is not installed"; exit 77; }
[ -x build/kvgridd ] || { echo "kvgridd is not built"; exit 77; }
T="${KVG_TEST_TMP:-build/tmp}/test_server_resp.$$"
mkdir -p "$T"
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

start() { # name, extra args...; sets PORT
	name=$1; shift
	build/kvgridd --port 0 --port-file "$T/$name.port" --dram 64M --log-file "$T/$name.log" "$@" &
	PIDS="$PIDS $!"
	i=0
	while [ ! -s "$T/$name.port" ]; do
		i=$((i + 1)); [ $i -lt 300 ] || fail "kvgridd $name did not start"; sleep 0.05
	done
	PORT=$(cut -d' ' -f1 "$T/$name.port")
}

start main
cli() { redis-cli -p "$PORT" "$@"; }
[ "$(cli ping)" = PONG ] || fail "PING"
head -c 3145728 /dev/urandom >"$T/value"
[ "$(cli -x set bin <"$T/value")" = OK ] || fail "SET -x"
# redis-cli appends a newline to a bulk reply printed raw
cli --raw get bin | head -c 3145728 >"$T/back"
cmp -s "$T/value" "$T/back" || fail "3 MiB value came back different"
[ "$(cli set a 1)" = OK ] && [ "$(cli set b 2)" = OK ] || fail "SET"
[ "$(cli exists a b nope a)" = 3 ] || fail "EXISTS counts every present key"
[ "$(cli del a nope)" = 1 ] || fail "DEL"
[ "$(cli get a)" = "" ] || fail "GET of a deleted key"
[ "$(cli mset x 10 y 20)" = OK ] || fail "MSET"
[ "$(cli mget x y a | tr '\n' ,)" = "10,20,," ] || fail "MGET"
cli info | grep -q '^redis_version:' || fail "INFO"
[ "$(cli dbsize)" -ge 3 ] || fail "DBSIZE"
out=$(printf 'FOO bar\nPING\n' | cli 2>&1)
echo "$out" | grep -q "ERR unknown command" || fail "unknown command: $out"
echo "$out" | grep -q PONG || fail "connection unusable after an unknown command"
i=0; : >"$T/pipe"
while [ $i -lt 1000 ]; do
	printf 'SET p%d v%d\r\nGET p%d\r\n' $i $i $i >>"$T/pipe"; i=$((i + 1))
done
cli --pipe <"$T/pipe" | grep -q "errors: 0, replies: 2000" || fail "--pipe"
[ "$(cli get p999)" = v999 ] || fail "pipelined SET"

printf 'tok-one alice\n' >"$T/auth"
start auth --auth-file "$T/auth"
cli get k 2>&1 | grep -q NOAUTH || fail "GET without AUTH"
cli -a wrong --no-auth-warning get k 2>&1 | grep -q WRONGPASS || fail "wrong password"
[ "$(cli -a tok-one --no-auth-warning set k v)" = OK ] || fail "AUTH accepted"
[ "$(cli --user alice --pass tok-one --no-auth-warning get k)" = v ] || fail "AUTH user pass"
echo "test_server_resp.sh: all checks passed"
