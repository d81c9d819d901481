#!/bin/sh
# Description: a few SIGKILL cycles (tests/crash.sh) on a durable and a cache-mode grid: after
# every kill the grid reopens, serves no wrong byte, and in durable mode still holds every
# acknowledged block; fsck --repair in between never loses one either.  `make crash-test` runs
# the same harness with 200 kills.
cd "$(dirname "$0")/.."
CRASH_FSCK_EVERY=3 CRASH_MAX_MS=600 exec sh tests/crash.sh "${CRASH_KILLS:-6}"
