#!/bin/sh
# build.sh - builds every fuzz/fuzz_*.c into build/fuzz/ with clang's libFuzzer (fuzz/fuzz.mk).
# Exit 77 (skip) when clang or its libFuzzer runtime is missing (Debian: clang,
# libclang-rt-14-dev); the build is incremental.
cd "$(dirname "$0")/.."
command -v clang >/dev/null 2>&1 || { echo "fuzz: clang not installed"; exit 77; }
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
	{ echo "fuzz: libFuzzer runtime not installed (libclang-rt-14-dev)"; exit 77; }
exec make --no-print-directory -s -f fuzz/fuzz.mk -j"${FUZZ_JOBS:-2}" "$@"
