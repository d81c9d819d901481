#!/bin/sh
# The Python package against the C API in the same run (bench/python_api.py, BENCHMARKS.md
# section 7).  Usage: sh bench/python_api.sh [ROUNDS] [REPS]
set -e
cd "$(dirname "$0")/.."
. bench/build.sh
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3  # Debian's, with python3-numpy
exec $PY bench/python_api.py "$@"
