#!/bin/sh
# Description: every libFuzzer target (fuzz/fuzz_*.c: record and segment decoders, config
# parser, key derivation, fault plans, wire protocols) replays its checked-in corpus
# fuzz/corpus/NAME/ plus a short burst of mutations without a crash, a leak or undefined
# behaviour.  Skipped where clang or its libFuzzer runtime is missing.
cd "$(dirname "$0")/.."
FUZZ_RUNS=${FUZZ_RUNS:-3000} exec sh fuzz/run.sh --corpus
