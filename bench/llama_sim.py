#!/usr/bin/env python3
"""Checks `kvgrid sim` against the llama.cpp TTFT that bench/llama_ttft.sh measured.

Reads the JSON lines of bench/llama_ttft.sh (stdin or a file), builds a profile of this
machine for the large test model (kvgrid-llama mkmodel --size large): its prefill FLOP/s,
calibrated on the smallest context's cold prefill in the same run, and each tier's
bandwidth as the run measured it (a plain grid load of the same pieces), then asks
`build/kvgrid sim` for every run and prints predicted against measured TTFT, cold and with
the grid.  The measure is the process's CPU time (cpu_prefill_ms, cpu_grid_ms) where the
run has it, wall time otherwise: on a shared 2-core machine wall time also counts the
minutes other work held the cores.

    sh bench/llama_ttft.sh > runs.jsonl && python3 bench/llama_sim.py runs.jsonl
"""
import json
import os
import subprocess
import sys
import tempfile

# The large test model (llama/cmd_mkmodel.c): 8 layers of 512, 8 query heads and 4 KV
# heads of 64, feed-forward 1536.  Weights used per token: the layers' matrices (the
# output layer runs for the last token only; the embedding is a lookup).
LAYERS, HEADS, KV_HEADS, HEAD, EMBD, FF = 8, 8, 4, 64, 512, 1536
PARAMS = LAYERS * (2 * EMBD * EMBD + 2 * EMBD * KV_HEADS * HEAD + 3 * EMBD * FF)


def prefill_flops(cached, new):
    """The cost model's FLOPs of `new` tokens after `cached` ones (doc/COSTMODEL.md)."""
    attn = 2 * LAYERS * HEADS * (HEAD + HEAD) * (new * cached + new * (new + 1) / 2)
    return 2 * PARAMS * new + attn


def sim(profile, context, cached, tier):
    out = subprocess.run(["build/kvgrid", "sim", "--profile", profile, "--context",
                          str(context), "--cached", str(cached), "--tier", tier, "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    src = open(sys.argv[1]) if len(sys.argv) > 1 else sys.stdin
    runs = [json.loads(line) for line in src if line.startswith("{")]
    if not runs:
        sys.exit("llama_sim: no runs on the input")
    cpu = all("cpu_prefill_ms" in r for r in runs)
    cold_key, grid_key = ("cpu_prefill_ms", "cpu_grid_ms") if cpu else ("ttft_prefill_ms",
                                                                          "ttft_grid_ms")
    base = min(runs, key=lambda r: (r["context"], r[cold_key]))
    n = base["context"] + base["suffix"]
    flops = prefill_flops(0, n) / (base[cold_key] / 1e3)
    print(f"profile: prefill {flops / 1e9:.1f} GFLOP/s (calibrated on the cold prefill of "
          f"{n} tokens, {base['threads']} thread(s)); tier bandwidths as measured per run; "
          f"measured = {'CPU' if cpu else 'wall'} time")
    print(f"{'context':>8} {'tier':>5} {'cold measured':>14} {'predicted':>10} {'error':>7} "
          f"{'grid measured':>14} {'predicted':>10} {'error':>7}")
    for r in runs:
        fd, path = tempfile.mkstemp(suffix=".conf")
        bw = r["grid_gbps"] * 1e9
        with os.fdopen(fd, "w") as f:
            f.write(f"model.name = kvgrid-llama-large\nmodel.layers = {LAYERS}\n"
                    f"model.q_heads = {HEADS}\nmodel.kv_heads = {KV_HEADS}\n"
                    f"model.head_dim_qk = {HEAD}\nmodel.head_dim_v = {HEAD}\n"
                    f"model.active_params = {PARAMS}\nmodel.kv_dtype_bytes = 2\n"
                    f"model.gpus = 1\nhw.name = dev-2core\nhw.flops = {flops:.6g}\n"
                    f"hw.mfu = 1\n")
            for t in ("dram", "nvme", "net"):
                f.write(f"hw.tier_bw_gpu.{t} = {bw:.6g}\nhw.tier_bw_node.{t} = {bw:.6g}\n")
        try:
            p = sim(path, r["context"] + r["suffix"], r["restored_tokens"],
                    "nvme" if r["tier"] == "nvme" else "dram")
        finally:
            os.unlink(path)
        cold, grid = r[cold_key] / 1e3, r[grid_key] / 1e3
        pc, pg = p["ttft_recompute_s"], p["ttft_grid_s"]
        print(f"{r['context']:>8} {r['tier']:>5} {cold:>12.2f} s {pc:>8.2f} s "
              f"{(pc - cold) / cold:>+7.0%} {grid:>12.3f} s {pg:>8.3f} s "
              f"{(pg - grid) / grid:>+7.0%}")


if __name__ == "__main__":
    main()
