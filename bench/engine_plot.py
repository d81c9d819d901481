#!/usr/bin/env python3
"""Table and SVG plot of TTFT against context length from `kvgrid-llm bench --json` lines.

usage: engine_plot.py TTFT.jsonl KVGRID_BENCH.json OUT.svg  > table.md

Reads one JSON object per line (tier "dram" and "nvme" for each context), prints a markdown
table (TTFT recompute, DRAM, NVMe, speed-ups, exactness) and the checks of the 16K row
against the NVMe read bandwidth of `kvgrid bench`, and writes a log-log SVG line chart.
Standard library only.
"""
import json
import math
import sys


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                j = json.loads(line)
                rows.setdefault(j["context"], {})[j["tier"]] = j
    return rows


def table(rows, kb):
    read_kvgrid = kb.get("read_gbps")
    out = ["| context | KV MiB | recompute ms | DRAM reload ms | NVMe reload ms | speed-up DRAM | "
           "speed-up NVMe | recompute CPU s | NVMe reload CPU ms | CPU-time speed-up NVMe | "
           "NVMe model ms | NVMe / model | logits |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for n in sorted(rows):
        d, v = rows[n].get("dram"), rows[n].get("nvme")
        if not d or not v:
            continue
        gbps = read_kvgrid or v["read_gbps"]
        model = v["kv_bytes"] / (gbps * 1e9) * 1e3 + v["suffix_prefill_ms"]
        exact = "bit-identical" if d["logits_bit_identical"] and v["logits_bit_identical"] \
            else "max diff %.2g" % max(d["max_abs_logit_diff"], v["max_abs_logit_diff"])
        rc, gc = v.get("recompute_cpu_ms", 0), v.get("grid_cpu_ms", 0)
        out.append("| %d | %.1f | %.0f | %.1f | %.1f | %.1fx | %.1fx | %.1f | %.0f | %s | %.1f | %.2f | %s |" % (
            n, v["kv_bytes"] / 2**20, v["ttft_recompute_ms"], d["ttft_grid_ms"], v["ttft_grid_ms"],
            d["ttft_recompute_ms"] / d["ttft_grid_ms"], v["ttft_recompute_ms"] / v["ttft_grid_ms"],
            rc / 1e3, gc, ("%.1fx" % (rc / gc)) if gc else "-", model, v["ttft_grid_ms"] / model,
            exact))
    return out, read_kvgrid


def checks(rows, read_kvgrid):
    out = []
    v = rows.get(16384, {}).get("nvme")
    if not v:
        return out
    gbps = read_kvgrid or v["read_gbps"]
    model = v["kv_bytes"] / (gbps * 1e9) * 1e3 + v["suffix_prefill_ms"]
    sp = v["ttft_recompute_ms"] / v["ttft_grid_ms"]
    out.append("")
    out.append("16K tokens, NVMe: recompute %.0f ms, reload %.1f ms: %.1fx shorter (goal >= 10x: %s)" % (
        v["ttft_recompute_ms"], v["ttft_grid_ms"], sp, "met" if sp >= 10 else "NOT met"))
    if v.get("grid_cpu_ms"):
        r = v["recompute_cpu_ms"] / v["grid_cpu_ms"]
        out.append("16K tokens, NVMe, in CPU time (what contention from other processes cannot "
                   "inflate): recompute %.1f s, reload %.0f ms: %.1fx (goal >= 10x: %s)" % (
                       v["recompute_cpu_ms"] / 1e3, v["grid_cpu_ms"], r, "met" if r >= 10 else "NOT met"))
    out.append("16K tokens, NVMe: KV %.1f MiB / %.2f GB/s (%s) + suffix prefill %.1f ms = %.1f ms; "
               "reload / that = %.2f (goal <= 1.25: %s)" % (
                   v["kv_bytes"] / 2**20, gbps, "kvgrid bench" if read_kvgrid else "in-run load",
                   v["suffix_prefill_ms"], model, v["ttft_grid_ms"] / model,
                   "met" if v["ttft_grid_ms"] <= 1.25 * model else "NOT met"))
    out.append("prefill: %.0f tokens/s, %.1f GFLOP/s wall-clock; the BLAS's sgemm %.1f GFLOP/s at "
               "1024^3, %.1f at the FFN shape (both under the same load)" % (
                   v["prefill_tokens_per_s"], v["prefill_gflops"], v["sgemm_gflops"],
                   v["sgemm_engine_shape_gflops"]))
    if v.get("sgemm_gflops_per_core_cpu"):
        out.append("prefill per core-second of CPU: %.1f GFLOP, single-threaded sgemm at 1024^3: %.1f "
                   "GFLOP: %.0f%%" % (v["prefill_gflops_per_core_cpu"], v["sgemm_gflops_per_core_cpu"],
                                      100 * v["prefill_gflops_per_core_cpu"] / v["sgemm_gflops_per_core_cpu"]))
    return out


def svg(rows, path):
    W, H, L, R, T, B = 640, 400, 70, 130, 30, 50
    ns = sorted(n for n in rows if "dram" in rows[n] and "nvme" in rows[n])
    if not ns:
        return
    series = [("recompute", "#c0392b", lambda n: rows[n]["nvme"]["ttft_recompute_ms"]),
              ("NVMe reload", "#2471a3", lambda n: rows[n]["nvme"]["ttft_grid_ms"]),
              ("DRAM reload", "#229954", lambda n: rows[n]["dram"]["ttft_grid_ms"])]
    ys = [f(n) for _, _, f in series for n in ns]
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x0, x1 = math.log2(ns[0]), math.log2(ns[-1])
    if x1 == x0:
        x1 = x0 + 1

    def px(n):
        return L + (math.log2(n) - x0) / (x1 - x0) * (W - L - R)

    def py(ms):
        return H - B - (math.log10(ms) - y0) / (y1 - y0) * (H - T - B)

    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
         'font-size="12">' % (W, H), '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="18" font-size="14">Time to first token vs context (%s, %s KV)</text>' % (
             L, rows[ns[0]]["nvme"]["config"], rows[ns[0]]["nvme"]["kv_dtype"])]
    for e in range(y0, y1 + 1):
        y = py(10 ** e)
        o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (L, y, W - R, y))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%s ms</text>' % (
            L - 6, y + 4, ("%g" % 10 ** e)))
    for n in ns:
        x = px(n)
        o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>' % (x, T, x, H - B))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%dK</text>' % (x, H - B + 16, n // 1024))
    o.append('<text x="%d" y="%d" text-anchor="middle">context (tokens, log scale)</text>' % (
        (L + W - R) // 2, H - 12))
    for i, (name, color, f) in enumerate(series):
        pts = " ".join("%.1f,%.1f" % (px(n), py(f(n))) for n in ns)
        o.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>' % (pts, color))
        for n in ns:
            o.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px(n), py(f(n)), color))
        ly = T + 20 + 20 * i
        o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>' % (
            W - R + 10, ly, W - R + 30, ly, color))
        o.append('<text x="%d" y="%d">%s</text>' % (W - R + 35, ly + 4, name))
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def main():
    rows = load(sys.argv[1])
    try:
        with open(sys.argv[2]) as f:
            kb = json.load(f)
    except (OSError, ValueError):
        kb = {}
    t, read_kvgrid = table(rows, kb)
    print("\n".join(t))
    if read_kvgrid:
        print("\nNVMe read bandwidth, `kvgrid bench` at the engine's block size in the same run: "
              "%.2f GB/s" % read_kvgrid)
    print("\n".join(checks(rows, read_kvgrid)))
    svg(rows, sys.argv[3])


if __name__ == "__main__":
    main()
