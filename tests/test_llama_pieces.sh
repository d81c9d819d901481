#!/bin/sh
# Description: the adapter's pieces: cut and joined states equal the prefix's state byte for
# byte (both V layouts, several streams); truncated, flipped, misplaced pieces and garbage
# states are refused; in a real grid under a real llama.cpp model a damaged, truncated or
# misplaced piece ends the restored prefix before it, with bit-identical logits
# (tests/llama_pieces.c); again under ASan+UBSan and TSan where make test built those.
set -eu
. "$(dirname "$0")/llama_lib.sh"
[ -x build/llama/tests/llama_pieces ] || fail "build/llama/tests/llama_pieces is not built"
KVGRID_LLAMA_BINS=build/llama.cpp/bins build/llama/tests/llama_pieces "$M"
# the same under ASan+UBSan and TSan, where make test built them
for b in build/asan/llama/tests/llama_pieces build/tsan/llama/tests/llama_pieces; do
	[ -x "$b" ] || continue
	echo "== $b"
	KVGRID_LLAMA_BINS=build/llama.cpp/bins "$b" "$M" || fail "$b"
done
echo "test_llama_pieces.sh: all checks passed"
