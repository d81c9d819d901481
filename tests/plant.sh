#!/bin/sh
# plant.sh - breaks kvgrid on purpose, one promise at a time, and checks that the suite notices.
#
#   sh tests/plant.sh            every planted bug in the table below
#   sh tests/plant.sh NAME...    only those
#   sh tests/plant.sh --list     the table
#
# Copies the committed tree (git archive of PLANT_REV, default HEAD) into a scratch directory,
# builds it once and runs every named test on it (they must pass there: a test that fails on
# the clean tree proves nothing).  Then, for each bug: applies its one sed substitution,
# rebuilds (incrementally), runs the tests named for it, restores the file, and reports
#   CAUGHT name by test: the test's first failure line      or      MISSED name
# A substitution that does not match exactly one line of its file means the source moved:
# the script refuses before building anything and says which row to retarget.
# Exit: 0 if every bug was caught, 1 if any was missed, 2 if refused or the build or the
# clean baseline failed.  Slow (a build per bug): not part of `make test` (tests/run.sh only
# runs tests/test_*).
#
# Environment: PLANT_REV (default HEAD), PLANT_TIMEOUT (seconds per test, default 300),
# PLANT_KEEP=1 keeps the scratch tree, KVG_TEST_TMP (default build/tmp), CRASH_KILLS (kills
# of test_crash.sh, default 12 here: a missing sync must show within the first dozen).
set -u
cd "$(dirname "$0")/.."

# ---- the table ------------------------------------------------------------------------------
# bug NAME FILE SED-EXPRESSION TESTS PROMISE
#   FILE   path in the tree; SED-EXPRESSION one s/// that must match exactly one line there
#   TESTS  test_x (C, build/tests/test_x), test_x.sh or test_x.py, space separated
# When a change moves a targeted line, only FILE (and perhaps the expression) of its row
# changes: the script refuses until it is retargeted.
table() {
	bug durable-ack-before-sync src/tier_nvme.c \
	    's|r->rw_flags = op->write && op->nv->durable ? RWF_DSYNC : 0;|r->rw_flags = 0;|' \
	    "test_crash.sh test_fault_powercut" \
	    "a durable store is acknowledged only once its bytes are on stable storage"
	bug fsck-claims-repairs src/fsck.c \
	    's|rc = seg_rewrite(dir_fd, name, fd, &sh, &s, buf, FSCK_BUF_BYTES);|rc = 0; (void)seg_rewrite;|' \
	    "test_crash.sh test_fsck test_fsck_cli.sh" \
	    "fsck --repair counts as repaired only what it repaired; afterwards no damage remains"
	bug checksum-skipped-on-read src/tier_nvme.c \
	    's|st = op->hdr_ok ? verify_all(op) : KVG_ECORRUPT;|st = op->hdr_ok ? ((void)verify_all, 0) : KVG_ECORRUPT;|' \
	    "test_tier_nvme test_corrupt_disk.sh test_corrupt_random" \
	    "a block read from NVMe is served only if its checksum verifies: a miss, never wrong KV"
	bug long-key-tenant-salt server/kv.c \
	    's|kvg_raw_key(s->grid, raw, tl + 2 + KVG_KEY_BYTES, out);|kvg_raw_key(s->grid, raw + tl, 2 + KVG_KEY_BYTES, out);|' \
	    "test_server_tenant_keys.py test_server_tenant_native" \
	    "tenants never see each other's data, whatever the key's length"
	bug nvme-get-resp-short server/h_resp.c \
	    's|conn_emit(c, val - h, h + len + 2);|conn_emit(c, val - h, h + len + 1);|' \
	    "test_server_nvme_get.py" \
	    "a RESP GET of a loaded block sends exactly the bytes its header announces"
	bug nvme-get-lm-short server/h_lm.c \
	    's|conn_emit(c, out, LMP_REPLY_BYTES + len);|conn_emit(c, out, LMP_REPLY_BYTES + len - 1);|' \
	    "test_server_nvme_get.py" \
	    "an lm:// GET of a loaded block sends exactly the bytes its reply announces"
	bug recovery-drops-last-record src/tier_nvme_recover.c \
	    's|^\t\tcb(ctx, &r);$|\t\t{ static struct nvme_recovered pend[4096]; static char has[4096]; if (!found) has[i % 4096] = 0; if (has[i % 4096]) cb(ctx, \&pend[i % 4096]); pend[i % 4096] = r; has[i % 4096] = 1; }|' \
	    "test_tier_nvme test_crash.sh" \
	    "recovery after a crash keeps every record a segment holds, its last one too"
	bug keys-not-chained src/key.c \
	    's|put(&b, (parent ? parent : &zero)->bytes, KVG_KEY_BYTES);|put(\&b, zero.bytes, KVG_KEY_BYTES);|' \
	    "test_key test_key_vectors.py" \
	    "a block's key depends on every token before it (its parent's key), not on its own tokens alone"
}
# ---------------------------------------------------------------------------------------------

rev=${PLANT_REV:-HEAD}
limit=${PLANT_TIMEOUT:-300}
export CRASH_KILLS="${CRASH_KILLS:-12}"
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

n=0
bug() { # collect the rows: name, file, expression, tests, promise
	n=$((n + 1))
	eval "b_name_$n=\$1 b_file_$n=\$2 b_expr_$n=\$3 b_tests_$n=\$4 b_promise_$n=\$5"
}
table
get() { eval "printf '%s' \"\$b_$1_$2\""; }

if [ "${1:-}" = --list ]; then
	i=0
	while [ $i -lt $n ]; do
		i=$((i + 1))
		printf '%-28s %-18s %s\n    promise: %s\n' "$(get name $i)" "$(get file $i)" \
		    "$(get tests $i)" "$(get promise $i)"
	done
	exit 0
fi

# which rows: all, or those named
sel=""
if [ $# -eq 0 ]; then
	i=0; while [ $i -lt $n ]; do i=$((i + 1)); sel="$sel $i"; done
else
	for want in "$@"; do
		i=0 found=0
		while [ $i -lt $n ]; do
			i=$((i + 1))
			[ "$(get name $i)" = "$want" ] && { sel="$sel $i"; found=1; }
		done
		[ $found = 1 ] || { echo "plant.sh: no planted bug named '$want' (--list)"; exit 2; }
	done
fi

tmp=${KVG_TEST_TMP:-$PWD/build/tmp}
case "$tmp" in /*) ;; *) tmp=$PWD/$tmp ;; esac
base=$tmp/plant.$$
tree=$base/tree
mkdir -p "$tree" || exit 2
cleanup() { [ "${PLANT_KEEP:-0}" = 1 ] || rm -rf "$base"; }
trap cleanup EXIT
git archive "$rev" | tar -x -C "$tree" || { echo "plant.sh: cannot export $rev"; exit 2; }
echo "plant.sh: tree of $(git rev-parse --short "$rev") in $tree"

# every substitution must still apply, exactly once, before anything is built
refused=0
for i in $sel; do
	f=$(get file $i) e=$(get expr $i)
	if [ ! -f "$tree/$f" ]; then
		echo "plant.sh: REFUSED $(get name $i): $f is not in the tree (moved? retarget its row)"
		refused=1
		continue
	fi
	hits=$(sed -n "${e}p" "$tree/$f" | wc -l)
	if [ "$hits" -ne 1 ]; then
		echo "plant.sh: REFUSED $(get name $i): its substitution matches $hits lines of $f," \
		    "not exactly 1: the source moved; retarget its row in tests/plant.sh"
		echo "    $e"
		refused=1
	fi
done
[ $refused = 0 ] || exit 2

# the C tests the selected rows name, to build alongside the binaries
ctests=""
for i in $sel; do
	for t in $(get tests $i); do
		case "$t" in *.sh | *.py) ;; *) case " $ctests " in *" build/tests/$t "*) ;;
			*) ctests="$ctests build/tests/$t" ;; esac ;; esac
	done
done
build() { (cd "$tree" && make -j2 all $ctests) >"$base/build.log" 2>&1; }

# run_test TEST LOG: the test's exit status (77: skipped)
run_test() {
	case "$1" in
	*.sh) (cd "$tree" && KVG_TEST_TMP="$base/tmp" timeout -k 5 "$limit" sh "tests/$1") ;;
	*.py) (cd "$tree" && KVG_TEST_TMP="$base/tmp" timeout -k 5 "$limit" $PY "tests/$1") ;;
	*) (cd "$tree" && KVG_TEST_TMP="$base/tmp" timeout -k 5 "$limit" "build/tests/$1") ;;
	esac >"$2" 2>&1
}
# the first line of a log that says what failed
why() {
	grep -m 1 -E 'FAIL|check failed|Assertion|assert|Error|error:' "$1" ||
		tail -n 1 "$1"
}

mkdir -p "$base/tmp"
echo "plant.sh: building the clean tree"
build || { echo "plant.sh: the clean tree does not build:"; tail -n 20 "$base/build.log"; exit 2; }
alltests=""
for i in $sel; do
	for t in $(get tests $i); do
		case " $alltests " in *" $t "*) ;; *) alltests="$alltests $t" ;; esac
	done
done
bad=0
for t in $alltests; do
	run_test "$t" "$base/clean.$t.log"
	rc=$?
	if [ $rc -eq 77 ]; then
		echo "plant.sh: $t skips here ($(tail -n 1 "$base/clean.$t.log")): it cannot catch anything"
		bad=1
	elif [ $rc -ne 0 ]; then
		echo "plant.sh: $t fails on the clean tree (exit $rc): $(why "$base/clean.$t.log")"
		bad=1
	fi
done
[ $bad = 0 ] || { echo "plant.sh: the clean baseline does not pass; nothing planted"; exit 2; }
echo "plant.sh: clean tree passes:$alltests"

missed=0 caught=0 broken=0
summary=""
for i in $sel; do
	name=$(get name $i) f=$(get file $i) e=$(get expr $i)
	cp -p "$tree/$f" "$base/orig"
	sed -i "$e" "$tree/$f"
	touch "$tree/$f"
	echo "plant.sh: planted $name in $f -- breaks: $(get promise $i)"
	if ! build; then
		echo "plant.sh: BUILD FAILED with $name planted (fix its row):"
		tail -n 8 "$base/build.log" | sed 's/^/    /'
		broken=$((broken + 1))
		line="BROKEN $name: does not build"
	else
		by=""
		for t in $(get tests $i); do
			log="$base/$name.$t.log"
			start=$(date +%s)
			run_test "$t" "$log"
			rc=$?
			secs=$(( $(date +%s) - start ))
			if [ $rc -eq 0 ]; then
				echo "    $t: passed (${secs}s) -- did not notice"
			elif [ $rc -eq 77 ]; then
				echo "    $t: skipped -- $(tail -n 1 "$log")"
			else
				msg=$(why "$log")
				echo "    $t: FAILED, exit $rc (${secs}s): $msg"
				by="${by:+$by; }$t: $msg"
			fi
		done
		if [ -n "$by" ]; then
			caught=$((caught + 1))
			line="CAUGHT $name by $by"
		else
			missed=$((missed + 1))
			line="MISSED $name ($f): nothing failed; promise unguarded: $(get promise $i)"
		fi
	fi
	echo "$line"
	summary="$summary
$line"
	cp -p "$base/orig" "$tree/$f"
	touch "$tree/$f"
done

echo
echo "plant.sh: summary$summary"
echo "plant.sh: $caught caught, $missed missed, $broken did not build"
[ $broken -eq 0 ] || exit 2
[ $missed -eq 0 ] || exit 1
exit 0
