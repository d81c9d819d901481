#!/bin/sh
# make demo: the grid's own job (store, overflow, reopen, verify), then the reference
# engine's agentic workload with TTFT measured with and without the grid, then llama.cpp's
# agent sessions in two processes sharing one kvgridd, before and after a restart.
set -e
cd "$(dirname "$0")/.."
echo "== 1/3 the grid: a conversation's KV through DRAM and NVMe, reopened and verified"
build/kvgrid demo
if [ -x build/kvgrid-llm ]; then
	echo
	echo "== 2/3 the reference engine: agent sessions, TTFT with recompute vs with the grid"
	build/kvgrid-llm demo
fi
echo
if [ -x build/kvgrid-llama ] && [ -f build/llama.cpp/ok ]; then
	echo "== 3/3 llama.cpp: agent sessions in two processes sharing kvgridd, then a restart"
	build/kvgrid-llama demo
else
	why=$(cat build/llama.cpp/unavailable 2>/dev/null || echo "build/kvgrid-llama is not built")
	echo "== 3/3 llama.cpp: skipped: $why"
fi
