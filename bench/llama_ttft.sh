#!/bin/sh
# llama.cpp's TTFT with a prompt's prefix restored from the grid against a cold prefill, on
# the large random test model (kvgrid-llama mkmodel --size large), at 8K and 16K tokens, from
# the DRAM tier and from the NVMe tier (DRAM off, so every byte comes from disk).  Each run
# also measures the tier's own bandwidth for the same KV bytes (memcpy; O_DIRECT reads of a
# file in the same directory) and llama.cpp's set_data time, so that the restore time can be
# compared with KV bytes / bandwidth + set_data.  One JSON line per run (kvgrid-llama bench
# --json); BENCHMARKS.md holds the figures.
#   sh bench/llama_ttft.sh [DIR] [THREADS]    (DIR on the disk under test, default build/tmp)
set -eu
cd "$(dirname "$0")/.."
[ -f build/llama.cpp/ok ] || { echo "llama.cpp unavailable: $(cat build/llama.cpp/unavailable 2>/dev/null)"; exit 1; }
dir=${1:-build/tmp}/llama-ttft.$$
threads=${2:-1}
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
build/kvgrid-llama mkmodel --out "$dir/large.gguf" --size large --seed 1 >&2
for ctx in 8192 16384; do
	for tier in nvme dram; do
		rm -rf "$dir/grid"
		build/kvgrid-llama bench --model "$dir/large.gguf" --context $ctx --tier $tier \
			--dir "$dir/grid" --threads "$threads" --repeat 5 --json
	done
done
