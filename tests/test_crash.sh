#!/bin/sh
# Description: a few SIGKILL cycles (tests/crash.sh) on a durable and a cache-mode grid: after
# every kill the grid reopens, serves no wrong byte, and in durable mode still holds every
# acknowledged block; fsck --repair in between never loses one either.  Then a few cycles of
# grids with a shared tier (CRASH_SHARED=1): every store acknowledged as published there is
# found in the shared tier alone after every kill, and no partial object is ever visible.
# `make crash-test` runs the same harness with 200 kills, and 100 over a shared tier.
cd "$(dirname "$0")/.."
CRASH_FSCK_EVERY=3 CRASH_MAX_MS=600 sh tests/crash.sh "${CRASH_KILLS:-6}" || exit $?
CRASH_SHARED=1 CRASH_FSCK_EVERY=3 CRASH_MAX_MS=600 exec sh tests/crash.sh "${CRASH_KILLS_SHARED:-4}"
