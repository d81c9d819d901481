#!/bin/sh
# Installs, from Debian's packages, whatever the build, tests and benchmarks need and the
# machine lacks.  It asks dpkg which packages are installed, not whether some header exists:
# another package may ship a file of the same name (libblas-dev installs a cblas.h of its
# own, without OpenBLAS's symbols).  Cheap when everything is there: one dpkg-query.
#   sh scripts/deps.sh          the build and `make demo`
#   sh scripts/deps.sh test     plus what `make test` needs
#   sh scripts/deps.sh bench    plus what `make bench` needs
set -e
want="liburing-dev libssl-dev libxxhash-dev libopenblas-pthread-dev pkg-config gcc make \
libc6-dev python3 git"
# `make` itself fetches the pinned llama.cpp with npm (llama/fetch.sh) and git (its headers come
# from a git bundle), so both are in the build set: `make`, `make demo` and `make test` all
# get them.  npm is optional: a node.js that ships its own npm (NodeSource's) counts, since
# Debian's npm package would conflict with it, and where it cannot be installed the build
# goes on without the llama.cpp parts (they say why).
want_npm=0
command -v npm >/dev/null 2>&1 || want_npm=1
case "${1:-}" in
test) want="$want clang clang-format libclang-rt-14-dev redis-server redis-tools python3-redis \
python3-numpy python3-torch python3-venv python3-pip python3-setuptools python3-wheel \
abigail-tools glusterfs-server glusterfs-client iproute2 util-linux libfuse3-dev fuse3" ;;
bench) want="$want fio redis-server redis-tools python3-numpy glusterfs-server glusterfs-client \
iproute2" ;;
"") ;;
*) echo "deps: unknown set '$1' (use: test, bench or nothing)" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps: not a Debian system (no dpkg-query); install the equivalents of:" >&2
	echo "deps:   $want" >&2
	exit 0
fi
# dpkg-query -W prints one line per package it knows; a package it does not know is an
# error on stderr and no line, so both unknown and not-installed count as missing.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' $want 2>/dev/null |
	awk '$2 == "ii" { print $1 }')
need=""
for p in $want; do
	case " $(echo $installed) " in *" $p "*) ;; *) need="$need $p" ;; esac
done
[ -z "$need" ] && [ $want_npm = 0 ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || [ -z "$need" ]
if [ -n "$need" ]; then
	echo "deps: installing$need"
	$SUDO apt-get install -y -qq $need >/dev/null
fi
if [ $want_npm = 1 ]; then
	echo "deps: installing npm (fetches the pinned llama.cpp)"
	$SUDO apt-get install -y -qq npm >/dev/null ||
		echo "deps: npm could not be installed: the llama.cpp parts will be skipped" >&2
fi
