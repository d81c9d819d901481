#!/bin/sh
# Description: `kvgrid replay` counts hits as a serving system does (hand-computed answer
# on a small trace), gives the simulator's figures through the real grid (for the policies
# without memory of evicted blocks), never holds more blocks than the DRAM capacity,
# verifies every loaded byte, runs with an NVMe tier, reports a malformed line with its
# number (or skips and counts it with --skip-bad), sweeps capacities into a table and an
# SVG; on real traffic (a 1,000-request excerpt of Mooncake's trace kept with the tests)
# matches the simulator with the default candidate never below LRU and nothing above
# Belady; keeps N requests in flight in the simulator (--interleave) and replays from N
# engine threads through the store (--engines, also under TSan); passes session hints
# (--hints oracle) through kvg_load/kvg_store to the policy with the simulator's figures;
# and replays the whole conversation trace (tests/data/traces, or the directory in
# KVG_TRACES) through the store with the simulator's hit ratio.
set -u
K=build/kvgrid
T=tests/data/traces
TMP="${KVG_TEST_TMP:-build/tmp}/replay.$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0
no() { echo "FAIL: $*"; fail=1; }
json() { # file, python expression over d
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

# 1. Known answer, worked out by hand for LRU with room for 4 blocks (see the trace's
#    README): hits of 1024 + 512 + 512 + 512 tokens out of 7000; 5 of 16 blocks.
$K replay --trace $T/chat_small.jsonl --capacity-blocks 4 --policy lru --json >"$TMP/lru.json" ||
	no "replay lru exited $?"
[ "$(json "$TMP/lru.json" "d['hit_tokens'], d['input_tokens']")" = "2560 7000" ] ||
	no "lru hit tokens: $(json "$TMP/lru.json" "d['hit_tokens'], d['input_tokens']")"
[ "$(json "$TMP/lru.json" "round(d['block_hit_ratio'], 6)")" = "0.3125" ] ||
	no "lru block hit ratio: $(json "$TMP/lru.json" "d['block_hit_ratio']")"
[ "$(json "$TMP/lru.json" "d['engine']")" = grid ] || no "lru did not run through the grid"

# 2. Through the grid, every policy holds at most the capacity and loads back exactly what
#    was stored; the policies that keep no memory of evicted blocks give the simulator's
#    figures exactly.  s3fifo's ghost and reuse's admission bits are kept by index slot,
#    which the simulator never reuses and the grid does (a new block can inherit an old
#    one's slot), so those two may differ until struct policy_block carries a key hash.
for p in $($K replay --help | sed -n 's/^policies: //p'); do
	[ "$p" = belady ] && continue
	for cap in 2 3 5; do
		$K replay --trace $T/chat_small.jsonl --capacity-blocks $cap --policy $p --json \
			>"$TMP/g.json" || no "$p/$cap: grid replay exited $?"
		$K replay --trace $T/chat_small.jsonl --capacity-blocks $cap --policy $p --json \
			--engine sim >"$TMP/s.json" || no "$p/$cap: sim replay exited $?"
		g=$(json "$TMP/g.json" "d['prefix_hit_token_ratio'], d['block_hit_ratio']")
		s=$(json "$TMP/s.json" "d['prefix_hit_token_ratio'], d['block_hit_ratio']")
		case $p in s3fifo|reuse) ;; *) [ "$g" = "$s" ] || no "$p/$cap: grid $g != sim $s" ;; esac
		[ "$(json "$TMP/g.json" "d['max_dram_blocks'] <= $cap")" = True ] ||
			no "$p/$cap: held more than $cap blocks"
		[ "$(json "$TMP/g.json" "d['verify_failures'] + d['load_errors'] + d['store_errors']")" = 0 ] ||
			no "$p/$cap: load, store or verify errors"
	done
done

# 3. Belady is computed by the simulator and is never below LRU on this trace.
$K replay --trace $T/chat_small.jsonl --capacity-blocks 4 --policy belady --json >"$TMP/b.json" ||
	no "belady exited $?"
[ "$(json "$TMP/b.json" "d['engine'], d['prefix_hit_token_ratio'] >= d['references']['lru']['prefix_hit_token_ratio']")" = "sim True" ] ||
	no "belady: $(cat "$TMP/b.json")"

# 4. With an NVMe tier under a one-block DRAM tier, blocks are demoted and hit on NVMe.
$K replay --trace $T/chat_small.jsonl --dram 4K --nvme 8M --dir "$TMP/nvme" --policy lru \
	--json >"$TMP/n.json" || no "nvme replay exited $?"
[ "$(json "$TMP/n.json" "d['tiers']['nvme']['hit_blocks'] > 0 and d['tiers']['dram']['demotions'] > 0")" = True ] ||
	no "nvme tier unused: $(cat "$TMP/n.json")"
[ "$(json "$TMP/n.json" "d['verify_failures'] + d['load_errors']")" = 0 ] || no "nvme: load errors"

# 5. A malformed line is reported with its number; --skip-bad skips and counts it.
if $K replay --trace $T/bad_line3.jsonl --capacity-blocks 4 2>"$TMP/err" >/dev/null; then
	no "a bad line was accepted"
fi
grep -q "bad_line3.jsonl:3: hash_ids" "$TMP/err" || no "error without line number: $(cat "$TMP/err")"
$K replay --trace $T/bad_line3.jsonl --capacity-blocks 4 --skip-bad --json >"$TMP/sk.json" ||
	no "--skip-bad exited $?"
[ "$(json "$TMP/sk.json" "d['skipped_lines'], d['requests']")" = "1 3" ] ||
	no "skip count: $(cat "$TMP/sk.json")"

# 6. Usage errors exit 2.
$K replay --capacity-blocks 4 2>/dev/null; [ $? -eq 2 ] || no "missing --trace is not a usage error"
$K replay --trace $T/chat_small.jsonl --capacity-blocks 4 --policy nope 2>/dev/null
[ $? -eq 2 ] || no "unknown policy is not a usage error"

# 7. A sweep prints one row per policy and writes an SVG with one line per policy.
$K replay --trace $T/chat_small.jsonl --sweep 20,50,100 --policies lru,prefix,belady \
	--svg "$TMP/sweep.svg" >"$TMP/sweep.txt" || no "sweep exited $?"
[ "$(grep -c '^| \(lru\|prefix\|belady\) |' "$TMP/sweep.txt")" = 3 ] || no "sweep table: $(cat "$TMP/sweep.txt")"
[ "$(grep -c '<polyline' "$TMP/sweep.svg")" = 3 ] || no "sweep svg lines"
# the y axis (linear) is labelled at round numbers: equal steps of 1, 2 or 5 times a power of
# ten, each label a whole multiple of the step (not 0.0981, 0.196 ...)
python3 - "$TMP/sweep.svg" <<'PY' || no "sweep svg: y ticks are not at round numbers"
import math, re, sys
svg = open(sys.argv[1]).read()
ys = [float(v) for v in re.findall(r"text-anchor='end' font-size='11'>([^<]*)<", svg)]
assert len(ys) >= 3, ys
steps = {round(b - a, 12) for a, b in zip(ys, ys[1:])}
assert len(steps) == 1, ("unequal steps", ys)
st = steps.pop(); m = st / 10 ** math.floor(math.log10(st))
assert any(abs(m - k) < 1e-9 for k in (1, 2, 5)), ("step not 1-2-5", st, ys)
assert all(abs(y / st - round(y / st)) < 1e-9 for y in ys), ("label off the step", ys)
PY

# 8. Real traffic (the first 1,000 requests of Mooncake's conversation trace, stored with
#    the tests): through the store lru and prefix give the simulator's figures, prefix is
#    never below lru, and no policy beats Belady.
M=$T/mooncake_conversation_head1000.jsonl
for cap in 2 10 50; do
	for p in lru prefix; do
		$K replay --trace $M --capacity-pct $cap --policy $p --json >"$TMP/m.json" ||
			no "excerpt $p/$cap exited $?"
		[ "$(json "$TMP/m.json" "d['verify_failures'] + d['load_errors'] + d['store_errors']")" = 0 ] ||
			no "excerpt $p/$cap: errors"
		cp "$TMP/m.json" "$TMP/m-$p.json"
	done
	$K replay --trace $M --sweep $cap --json >"$TMP/ms.json" || no "excerpt sweep exited $?"
	python3 - "$TMP/m-lru.json" "$TMP/m-prefix.json" "$TMP/ms.json" <<'PY' || no "excerpt at $cap%"
import json, sys
lru, pre, sw = (json.load(open(f)) for f in sys.argv[1:])
pol = {k: v["prefix_hit_token_ratio"][0] for k, v in sw["policies"].items()}
assert abs(lru["prefix_hit_token_ratio"] - pol["lru"]) < 1e-6, (lru, pol)
assert abs(pre["prefix_hit_token_ratio"] - pol["prefix"]) < 1e-6, (pre, pol)
assert pol["prefix"] >= pol["lru"], pol
assert all(v <= pol["belady"] + 1e-9 for v in pol.values()), pol
PY
done

# 9. Session hints: --hints oracle passes each request's hint (KVG_STORE_CONTINUES or
#    KVG_STORE_LAST, computed from the trace) with its load and store.  Through the store
#    density then gives the simulator's figure with the same hints, which differs from the
#    figure without them (the flags reach the policy); the report says which hints it used.
for cap in 5 20; do
	for e in grid sim; do
		$K replay --trace $M --capacity-pct $cap --policy density --hints oracle --engine $e \
			--json >"$TMP/h-$e.json" || no "hints $e/$cap exited $?"
	done
	$K replay --trace $M --capacity-pct $cap --policy density --json >"$TMP/h-none.json" ||
		no "no hints/$cap exited $?"
	python3 - "$TMP/h-grid.json" "$TMP/h-sim.json" "$TMP/h-none.json" <<'PY' || no "hints at $cap%"
import json, sys
g, s, n = (json.load(open(f)) for f in sys.argv[1:])
assert (g["hints"], g["hints_wrong"], n["hints"]) == ("oracle", 0, "none"), (g, n)
assert g["prefix_hit_token_ratio"] == s["prefix_hit_token_ratio"], (g, s)
assert g["prefix_hit_token_ratio"] != n["prefix_hit_token_ratio"], (g, n)
assert g["verify_failures"] + g["load_errors"] + g["store_errors"] == 0, g
PY
done
$K replay --trace $M --capacity-pct 5 --policy density --hints oracle --hints-wrong 0.1 --json \
	>"$TMP/hw.json" || no "--hints-wrong exited $?"
[ "$(json "$TMP/hw.json" "d['hints'], d['hints_wrong']")" = "oracle 0.1" ] ||
	no "hints_wrong not reported: $(cat "$TMP/hw.json")"
$K replay --trace $M --capacity-pct 5 --hints-wrong 0.1 2>/dev/null
[ $? -eq 2 ] || no "--hints-wrong without --hints oracle is not a usage error"
$K replay --trace $M --capacity-pct 5 --hints maybe 2>/dev/null
[ $? -eq 2 ] || no "--hints maybe is not a usage error"

# 10. Several engines at once: --interleave N keeps N requests in flight in the simulator
#     (their block calls in turn, each call named as the grid names it).  One at a time is
#     the plain replay; with 4 the default still tells the requests apart, so it stays at
#     or above LRU under the same interleaving.  Outside the simulator it is a usage error.
$K replay --trace $M --capacity-pct 5 --engine sim --interleave 1 --json >"$TMP/i1.json" ||
	no "--interleave 1 exited $?"
$K replay --trace $M --capacity-pct 5 --engine sim --json >"$TMP/i0.json" || no "sim exited $?"
$K replay --trace $M --capacity-pct 5 --engine sim --interleave 4 --json >"$TMP/i4.json" ||
	no "--interleave 4 exited $?"
python3 - "$TMP/i1.json" "$TMP/i0.json" "$TMP/i4.json" <<'PY' || no "--interleave"
import json, sys
one, plain, four = (json.load(open(f)) for f in sys.argv[1:])
assert one["prefix_hit_token_ratio"] == plain["prefix_hit_token_ratio"], (one, plain)
assert (one["interleave"], four["interleave"]) == (1, 4), (one, four)
assert four["prefix_hit_token_ratio"] >= four["references"]["lru"]["prefix_hit_token_ratio"], four
PY
$K replay --trace $M --capacity-pct 5 --interleave 4 2>/dev/null
[ $? -eq 2 ] || no "--interleave through the store is not a usage error"
$K replay --trace $M --capacity-pct 5 --engine sim --interleave 65 2>/dev/null
[ $? -eq 2 ] || no "--interleave 65 is not a usage error"

# 11. Several engines through the store: --engines 4 replays from 4 threads at once; every
#     request is replayed once, every loaded byte is right, a prefix block evicted by
#     another engine between lookup and load is counted as lost (and not as a hit or an
#     error), and the ratio stays between nothing and Belady's.  Not for the simulator.
for p in lru density; do
	$K replay --trace $M --capacity-pct 5 --policy $p --engines 4 --json >"$TMP/e4.json" ||
		no "--engines 4 $p exited $?"
	python3 - "$TMP/e4.json" <<'PY' || no "--engines 4 $p"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["engines"] == 4 and d["requests"] == 1000, d
assert d["verify_failures"] + d["load_errors"] + d["store_errors"] == 0, d
assert d["load_lost"] >= 0
assert 0 < d["prefix_hit_token_ratio"] <= d["references"]["belady"]["prefix_hit_token_ratio"], d
PY
done
$K replay --trace $M --capacity-pct 5 --engine sim --engines 4 2>/dev/null
[ $? -eq 2 ] || no "--engines with the simulator is not a usage error"
#     Under ThreadSanitizer too (the build make test makes), with DRAM and with NVMe.
if [ -x build/tsan/kvgrid ]; then
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" build/tsan/kvgrid replay --trace $M \
		--capacity-pct 5 --engines 4 --json >/dev/null 2>"$TMP/tsan.err" ||
		no "--engines 4 under TSan: $(head -c 2000 "$TMP/tsan.err")"
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" build/tsan/kvgrid replay --trace $M \
		--dram 2M --nvme 16M --dir "$TMP/tsan-nvme" --engines 4 --json >/dev/null \
		2>"$TMP/tsan.err" || no "--engines 4 with NVMe under TSan: $(head -c 2000 "$TMP/tsan.err")"
fi

# 12. The whole conversation trace through the store: the same hit ratios as the simulator's.
S=${KVG_TRACES:-$T}/mooncake_conversation_trace.jsonl
if [ -r "$S" ]; then
	for p in lru prefix; do
		$K replay --trace $S --capacity-pct 10 --policy $p --json >"$TMP/c.json" ||
			no "conversation $p exited $?"
		[ "$(json "$TMP/c.json" "d['verify_failures'] + d['load_errors'] + d['store_errors']")" = 0 ] ||
			no "conversation $p: errors"
		if [ $p = lru ]; then
			[ "$(json "$TMP/c.json" "d['prefix_hit_token_ratio'] == d['references']['lru']['prefix_hit_token_ratio']")" = True ] ||
				no "conversation lru through the store differs from the simulator"
		fi
		echo "conversation $p: $(json "$TMP/c.json" "d['prefix_hit_token_ratio'], d['elapsed_s']")"
	done
else
	echo "(no $S: the whole conversation replay is skipped; KVG_TRACES names the directory)"
fi
exit $fail
