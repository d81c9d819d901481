#!/bin/sh
# make demo: the grid's own job (store, overflow, reopen, verify), then the reference
# engine's agentic workload with TTFT measured with and without the grid.
set -e
cd "$(dirname "$0")/.."
echo "== 1/2 the grid: a conversation's KV through DRAM and NVMe, reopened and verified"
build/kvgrid demo
if [ -x build/kvgrid-llm ]; then
	echo
	echo "== 2/2 the reference engine: agent sessions, TTFT with recompute vs with the grid"
	build/kvgrid-llm demo
fi
