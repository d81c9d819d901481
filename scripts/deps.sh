#!/bin/sh
# Installs, from Debian's packages, whatever the build, tests and benchmarks need and the
# machine lacks.  Cheap when everything is there: it only tests for files.
set -e
need=""
have() { [ -e "$1" ]; }
have /usr/include/liburing.h || need="$need liburing-dev"
have /usr/include/openssl/sha.h || need="$need libssl-dev"
have /usr/include/xxhash.h || need="$need libxxhash-dev"
have /usr/include/x86_64-linux-gnu/cblas.h || have /usr/include/cblas.h || \
	have /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h || need="$need libopenblas-dev"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
command -v cc >/dev/null 2>&1 || need="$need gcc"
command -v make >/dev/null 2>&1 || need="$need make"
command -v python3 >/dev/null 2>&1 || need="$need python3"
if [ "${1:-}" = "test" ]; then
	command -v clang >/dev/null 2>&1 || need="$need clang"
	ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || \
		need="$need libclang-rt-14-dev"
	command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
	command -v redis-cli >/dev/null 2>&1 || need="$need redis-tools"
	PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
	$PY -c 'import redis' >/dev/null 2>&1 || need="$need python3-redis"
fi
if [ "${1:-}" = "bench" ]; then
	command -v fio >/dev/null 2>&1 || need="$need fio"
	command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
	command -v redis-benchmark >/dev/null 2>&1 || need="$need redis-tools"
fi
[ -z "$need" ] && exit 0
echo "deps: installing$need"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $need >/dev/null
