#!/bin/sh
# Description: the command line's clients authenticate to a kvgridd started with --auth-file:
# without a token `kvgrid stats --server` is refused with a line that says how to give one;
# with --auth-file FILE or KVGRID_AUTH_FILE=FILE it reads the server's metrics, and put/get
# through the server round-trip a block byte for byte; a wrong token is refused.  The token
# is never a command-line argument (ps would show it).
set -u
cd "$(dirname "$0")/.."
K=build/kvgrid
[ -x build/kvgridd ] && [ -x $K ] || { echo "skip: kvgrid or kvgridd not built"; exit 77; }
T=${KVG_TEST_TMP:-build/tmp}/cli_auth.$$
mkdir -p "$T"
PID=""
trap '[ -z "$PID" ] || kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

printf 'tok-secret alice\n' >"$T/auth"
printf 'tok-secret\n' >"$T/token"
printf 'tok-wrong\n' >"$T/wrong"
build/kvgridd --port 0 --port-file "$T/port" --dram 64M --auth-file "$T/auth" \
	--log-file "$T/log" &
PID=$!
i=0
while [ ! -s "$T/port" ]; do
	i=$((i + 1)); [ $i -lt 300 ] || fail "kvgridd did not start: $(cat "$T/log")"; sleep 0.05
done
S=127.0.0.1:$(cut -d' ' -f1 "$T/port")

unset KVGRID_AUTH_FILE
$K stats --server "$S" >"$T/out" 2>"$T/err" && fail "stats without a token was served"
grep -q "authentication refused" "$T/err" || fail "no token: said '$(cat "$T/err")'"
grep -q -- "--auth-file" "$T/err" || fail "no token: no hint how to give one: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "no token: more than one error line: $(cat "$T/err")"

$K stats --server "$S" --auth-file "$T/wrong" >"$T/out" 2>"$T/err" &&
	fail "stats with a wrong token was served"
grep -q "authentication refused" "$T/err" || fail "wrong token: said '$(cat "$T/err")'"

$K stats --server "$S" --auth-file "$T/token" --json >"$T/out" 2>"$T/err" ||
	fail "stats --auth-file: $(cat "$T/err")"
grep -q '"server": {' "$T/out" || fail "stats --auth-file printed no server metrics: $(cat "$T/out")"
KVGRID_AUTH_FILE=$T/auth $K stats --server "$S" >"$T/out" 2>"$T/err" ||
	fail "stats with KVGRID_AUTH_FILE: $(cat "$T/err")"
grep -q "^server " "$T/out" || grep -q "connections" "$T/out" ||
	fail "stats with KVGRID_AUTH_FILE printed no server part: $(cat "$T/out")"

head -c 1000000 /dev/urandom >"$T/blob"
KVGRID_AUTH_FILE=$T/token $K put --server "$S" --key k1 --in "$T/blob" >/dev/null 2>"$T/err" ||
	fail "put through the server: $(cat "$T/err")"
$K get --server "$S" --auth-file "$T/token" --key k1 --out "$T/back" 2>"$T/err" ||
	fail "get through the server: $(cat "$T/err")"
cmp -s "$T/blob" "$T/back" || fail "get through the server returned other bytes"
$K get --server "$S" --key k1 --out "$T/back2" 2>"$T/err" && fail "get without a token was served"
echo "cli_auth: all checks passed"
