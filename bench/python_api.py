#!/usr/bin/env python3
"""The Python package against the C API, in the same run (BENCHMARKS.md, section 7).

Each round runs build/bench/batch_api (bench/batch_api.c: the C API alone, in a program of
its own), then, in this process and on one grid, the C call and the Python call in
alternation, rep by rep (the order flipping), so that both see the same machine state:
  - load:   kvg_load_sync of N blocks of B bytes from DRAM (one foreign call on a kvg_io
            array built once) against Grid.load into numpy arrays (allocated and touched
            once), and against load_async + Future.result;
  - store:  kvg_store_sync against Grid.store from numpy arrays, each after Grid.delete of
            the blocks (not timed), so every store places and copies its block;
  - lookup: Grid.lookup of K present keys given as a KeyList (what block_keys and raw_keys
            return), and as a Python list of K 32-byte bytes (repacked per call), against
            the C program's kvg_lookup_keys; Grid.exists of the K keys (per-key presence).
Each figure is the median of REPS timings; a round's ratio compares it with the C figure
of the same round.  Usage: python3 bench/python_api.py [ROUNDS] [REPS]  (N=64, B=1 MiB,
K=128; BENCH_BLOCKS, BENCH_BLOCK_BYTES, BENCH_KEYS change them).  Prints a table and, last,
one JSON line with the medians over the rounds.
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("KVGRID_LIB", os.path.join(ROOT, "build", "libkvgrid.so.1"))
sys.path.insert(0, os.path.join(ROOT, "python"))
import numpy as np  # noqa: E402

import kvgrid  # noqa: E402

N = int(os.environ.get("BENCH_BLOCKS", 64))
B = int(os.environ.get("BENCH_BLOCK_BYTES", 1 << 20))
K = int(os.environ.get("BENCH_KEYS", 128))
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 30
C_BENCH = os.path.join(ROOT, "build", "bench", "batch_api")


def timed(fn, reps, before=None, inner=1):
    t = []
    for _ in range(reps):
        if before:
            before()
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        t.append((time.perf_counter() - t0) / inner)
    return statistics.median(t)


def alternating(c_call, py_call, reps, before=None):
    """Medians of c_call and py_call timed in alternation (the order flips every rep), so
    both see the same machine state."""
    tc, tp = [], []
    for r in range(reps):
        for which in ((0, 1) if r % 2 else (1, 0)):
            if before:
                before()
            fn, out = (c_call, tc) if which == 0 else (py_call, tp)
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(tc), statistics.median(tp)


def python_round(g, keys, src, dst, lk, lk_list):
    """This round's figures.  The in-process C figures are one foreign call each
    (kvg_load_sync / kvg_store_sync on a kvg_io array built once, about 1 us of ctypes),
    alternating with the Python call that does the same from numpy arrays."""
    lib = kvgrid._lib.lib
    ios_ld, n, keep_ld = g._ios(keys, dst, True)
    ios_st, _, keep_st = g._ios(keys, src, False)
    out = {}
    c, p = alternating(lambda: lib.kvg_store_sync(g._g, ios_st, n, 0),
                       lambda: g.store(keys, src), REPS, before=lambda: g.delete(keys))
    out["c_store_gbs"], out["store_gbs"] = N * B / c / 1e9, N * B / p / 1e9
    c, p = alternating(lambda: lib.kvg_load_sync(g._g, ios_ld, n, 0),
                       lambda: g.load(keys, dst), REPS)
    out["c_load_gbs"], out["load_gbs"] = N * B / c / 1e9, N * B / p / 1e9
    assert np.array_equal(dst[-1], src[-1])
    c, p = alternating(lambda: lib.kvg_load_sync(g._g, ios_ld, n, 0),
                       lambda: g.load_async(keys, dst).result(), REPS)
    out["load_async_gbs"] = N * B / p / 1e9
    out["load_async_ratio"] = c / p
    out["lookup_us"] = timed(lambda: g.lookup(lk), REPS, inner=500) * 1e6
    out["lookup_list_us"] = timed(lambda: g.lookup(lk_list), REPS, inner=200) * 1e6
    out["exists_us"] = timed(lambda: g.exists(lk), REPS, inner=200) * 1e6
    return out


def main():
    if not os.access(C_BENCH, os.X_OK):
        sys.exit("python_api: %s is not built (make benches)" % C_BENCH)
    g = kvgrid.Grid(dram_bytes=4 * N * B + (64 << 20))  # as batch_api.c
    keys = g.raw_keys([b"block%d" % i for i in range(N)])
    src = [np.full(B, i + 1, np.uint8) for i in range(N)]
    dst = [np.empty(B, np.uint8) for _ in range(N)]
    for d in dst:
        d.fill(0)  # touched once, as the C side's buffers
    lk = g.raw_keys([b"lookup%d" % i for i in range(K)])
    g.store(lk, [src[0][:64]] * K)
    lk_list = list(lk)
    rows = []
    print("        C API in this process (alternating)  |  C program  | lookup of %d keys, us" % K)
    print("round  C load  Py load  ratio  async  | C store  Py store  ratio | load  store | "
          "C      Py     +us   list   +us  exists")
    for r in range(ROUNDS):
        c = json.loads(subprocess.run([C_BENCH, str(N), str(B), str(K), str(REPS)],
                                      check=True, capture_output=True, text=True).stdout)
        p = python_round(g, keys, src, dst, lk, lk_list)
        row = dict(c=c, py=p, load_ratio=p["load_gbs"] / p["c_load_gbs"],
                   load_async_ratio=p["load_async_ratio"],
                   store_ratio=p["store_gbs"] / p["c_store_gbs"],
                   lookup_overhead_us=p["lookup_us"] - c["lookup_us"],
                   lookup_list_overhead_us=p["lookup_list_us"] - c["lookup_us"])
        rows.append(row)
        print("%5d  %6.2f  %7.2f  %5.2f  %5.2f  | %7.2f  %8.2f  %5.2f | %5.2f %5.2f | "
              "%5.2f  %5.2f  %4.1f  %5.2f  %4.1f  %5.2f" % (
                  r + 1, p["c_load_gbs"], p["load_gbs"], row["load_ratio"],
                  row["load_async_ratio"], p["c_store_gbs"], p["store_gbs"],
                  row["store_ratio"], c["load_gbs"], c["store_gbs"], c["lookup_us"],
                  p["lookup_us"], row["lookup_overhead_us"], p["lookup_list_us"],
                  row["lookup_list_overhead_us"], p["exists_us"]), flush=True)
    g.close()

    def med(f):
        return round(statistics.median(f(r) for r in rows), 3)
    summary = {
        "blocks": N, "block_bytes": B, "lookup_keys": K, "rounds": ROUNDS, "reps": REPS,
        "c_load_gbs": med(lambda r: r["py"]["c_load_gbs"]),
        "py_load_gbs": med(lambda r: r["py"]["load_gbs"]),
        "load_ratio": med(lambda r: r["load_ratio"]),
        "load_ratio_min": round(min(r["load_ratio"] for r in rows), 3),
        "load_async_ratio": med(lambda r: r["load_async_ratio"]),
        "c_store_gbs": med(lambda r: r["py"]["c_store_gbs"]),
        "py_store_gbs": med(lambda r: r["py"]["store_gbs"]),
        "store_ratio": med(lambda r: r["store_ratio"]),
        "store_ratio_min": round(min(r["store_ratio"] for r in rows), 3),
        "c_program_load_gbs": med(lambda r: r["c"]["load_gbs"]),
        "c_program_store_gbs": med(lambda r: r["c"]["store_gbs"]),
        "c_lookup_us": med(lambda r: r["c"]["lookup_us"]),
        "py_lookup_us": med(lambda r: r["py"]["lookup_us"]),
        "lookup_overhead_us": med(lambda r: r["lookup_overhead_us"]),
        "py_lookup_list_us": med(lambda r: r["py"]["lookup_list_us"]),
        "lookup_list_overhead_us": med(lambda r: r["lookup_list_overhead_us"]),
        "py_exists_us": med(lambda r: r["py"]["exists_us"]),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
