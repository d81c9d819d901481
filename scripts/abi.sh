#!/bin/sh
# abi.sh - libkvgrid.so's ABI against the baseline committed in tests/abi/, so that a break
# is a deliberate, visible change and never an accident of a refactor.
#   sh scripts/abi.sh check      compare build/libkvgrid.so.MAJOR with tests/abi/
#                                (tests/test_abi.sh)
#   sh scripts/abi.sh baseline   rewrite tests/abi/ from it (`make abi-baseline`); then
#                                commit tests/abi/
# The baseline (in tests/, not in a top-level abi/, which git would confuse with the branch):
#   tests/abi/libkvgrid.symbols  every exported symbol, "NAME@@VERSION TYPE", sorted:
#                                compared exactly, with nm (binutils), always.
#   tests/abi/libkvgrid.abi      abidw's description of the library (functions, their
#                                parameter and return types, the layout of every public
#                                struct they reach), without file paths or source lines;
#                                compared with abidiff when abigail-tools is installed.
# Only the plain build (build/, gcc -O2 -g) is compared: the sanitizer builds live in
# build/asan and build/tsan and are never looked at.
# check exits 0 when both match, 1 with an explanation when they do not, 77 when there is
# no library to check.  A new function fails the check too, though it is compatible: the
# baseline must always be the ABI we ship, so the next removal is caught against it.
set -u
cd "$(dirname "$0")/.."
major=$(sed -n 's/^#define KVG_VERSION_MAJOR[[:space:]]*\([0-9]*\).*/\1/p' include/kvgrid.h)
lib=build/libkvgrid.so.$major
syms=tests/abi/libkvgrid.symbols
xml=tests/abi/libkvgrid.abi

symbols() { # the exported symbols of $1, one "NAME@@VERSION TYPE" per line
	nm -D --defined-only --with-symbol-versions "$1" | awk '{ print $3, $2 }' | LC_ALL=C sort
}

describe() { # abidw's description of $1 on stdout, stable across checkouts and edits
	# Only what kvgrid.h declares: the layout of the opaque structs (kvg_grid, kvg_req...)
	# is the library's own business, and so are the C library's functions it calls.
	abidw --no-corpus-path --no-comp-dir-path --no-show-locs --headers-dir include \
		--drop-private-types --drop-undefined-syms "$1"
}

have_abigail() { command -v abidw >/dev/null 2>&1 && command -v abidiff >/dev/null 2>&1; }

baseline() {
	[ -e "$lib" ] || { echo "abi: $lib not built (run make)" >&2; exit 1; }
	mkdir -p tests/abi
	symbols "$lib" >"$syms"
	echo "abi: wrote $syms ($(wc -l <"$syms") symbols)"
	if have_abigail; then
		describe "$lib" >"$xml" && echo "abi: wrote $xml"
	else
		echo "abi: abidw not installed (Debian: abigail-tools); $xml left as it was" >&2
	fi
	echo "abi: review 'git diff tests/abi/' and commit it with the change that needs it"
}

explain() { # what to do about a difference
	cat <<MSG
abi: libkvgrid.so no longer matches the committed baseline (tests/abi/).
abi:  - removed or changed symbols or types break programs built against kvgrid.h: undo
abi:    the change, or make it a new ABI on purpose (KVG_VERSION_MAJOR + 1, a new SONAME).
abi:  - added functions are compatible: put them in a new version node of
abi:    src/libkvgrid.map (KVGRID_1.1 ...), raise KVG_VERSION_MINOR;
abi:  - fields appended to struct kvg_config are compatible by design (its size field).
abi: Either way, record the new ABI with 'make abi-baseline' and commit tests/abi/ with it.
MSG
}

check() {
	[ -e "$lib" ] || { echo "abi: $lib not built (run make)"; exit 77; }
	[ -f "$syms" ] || { echo "abi: no baseline $syms: run 'make abi-baseline'"; exit 1; }
	tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
	symbols "$lib" >"$tmp/symbols"
	bad=0
	if ! cmp -s "$syms" "$tmp/symbols"; then
		bad=1
		LC_ALL=C comm -23 "$syms" "$tmp/symbols" | sed 's/^/abi: REMOVED (incompatible): /'
		LC_ALL=C comm -13 "$syms" "$tmp/symbols" | sed 's/^/abi: ADDED (compatible): /'
	fi
	if ! have_abigail; then
		echo "abi: abidiff not installed (Debian: abigail-tools): types not compared"
	elif [ ! -f "$xml" ]; then
		echo "abi: no $xml: types not compared (run 'make abi-baseline')"
		bad=1
	else
		describe "$lib" >"$tmp/current.abi"
		abidiff --no-show-locs "$xml" "$tmp/current.abi" >"$tmp/abidiff.txt" 2>&1
		rc=$?
		# abidiff's exit status is a bit set: 1 error, 2 usage error, 4 ABI change,
		# 8 incompatible ABI change.  Only 4 and 8 are about the library; an error of the
		# tool (an unreadable baseline from another abigail version) is reported, and
		# the exact symbol comparison above still stands.
		if [ $((rc & 12)) -ne 0 ]; then
			bad=1
			if [ $((rc & 8)) -ne 0 ]; then
				echo "abi: abidiff: INCOMPATIBLE change of the ABI:"
			else
				echo "abi: abidiff: change of the ABI" \
					"(review it; compatible only if additive):"
			fi
			sed 's/^/abi:   /' "$tmp/abidiff.txt"
		elif [ $((rc & 3)) -ne 0 ]; then
			echo "abi: abidiff could not compare (exit $rc), types not compared:"
			sed 's/^/abi:   /' "$tmp/abidiff.txt"
		fi
	fi
	if [ $bad -eq 0 ]; then
		echo "abi: $lib matches tests/abi/ ($(wc -l <"$syms") symbols)"
		exit 0
	fi
	explain
	exit 1
}

case "${1:-}" in
check) check ;;
baseline) baseline ;;
*) echo "usage: sh scripts/abi.sh check|baseline" >&2; exit 2 ;;
esac
