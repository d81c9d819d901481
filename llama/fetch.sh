#!/bin/sh
# Fetches the pinned llama.cpp into OUT (build/llama): the prebuilt shared libraries of
# @node-llama-cpp/linux-x64 and the headers of the matching source, from the git bundle that
# node-llama-cpp ships.  Versions and integrity hashes are those of llama/package-lock.json;
# `npm ci --ignore-scripts` installs exactly them and never runs the packages' own install
# scripts (they would download or build other things).
#
#   sh llama/fetch.sh OUT
#
# Leaves, on success:
#   OUT/ok                 the llama.cpp tag and commit
#   OUT/bins/              the libraries (libllama.v0.4.0.so, libggml*.so, CPU variants)
#   OUT/include/           llama.h, ggml.h, gguf.h ... of the same commit
# and on failure OUT/unavailable, one line saying why (no npm, registry unreachable ...),
# so that the rest of the build goes on and the llama.cpp parts say why they are skipped.
# Cheap when OUT/ok (or OUT/unavailable) is newer than the lock file.
set -u
out=${1:?usage: fetch.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
lock="$here/package-lock.json"
mkdir -p "$out"
if [ -f "$out/ok" ] && [ "$out/ok" -nt "$lock" ] && [ -d "$out/include" ]; then
	exit 0
fi
# A failure is remembered too, so that every make does not wait on the network again:
# remove OUT (or make clean) to try again.
if [ -f "$out/unavailable" ] && [ "$out/unavailable" -nt "$lock" ]; then
	exit 0
fi
rm -f "$out/ok" "$out/unavailable"

unavailable() {
	echo "$*" >"$out/unavailable"
	echo "llama: $*" >&2
	exit 0
}

command -v npm >/dev/null 2>&1 || unavailable "npm is not installed (Debian package npm)"
command -v git >/dev/null 2>&1 || unavailable "git is not installed (Debian package git)"

npm_dir="$out/npm"
rm -rf "$npm_dir" && mkdir -p "$npm_dir"
cp "$here/package.json" "$lock" "$npm_dir/"
echo "llama: npm ci (node-llama-cpp and @node-llama-cpp/linux-x64, pinned by llama/package-lock.json)"
if ! (cd "$npm_dir" && timeout 600 npm ci --ignore-scripts --omit=optional --no-audit \
	--no-fund --loglevel=error --fetch-retries=1 --fetch-timeout=60000 >npm.log 2>&1); then
	tail -n 3 "$npm_dir/npm.log" >&2
	unavailable "npm ci failed (registry unreachable?): see $npm_dir/npm.log"
fi

mods="$npm_dir/node_modules"
bins="$mods/@node-llama-cpp/linux-x64/bins/linux-x64"
info="$mods/node-llama-cpp/llama/llama.cpp.info.json"
bundle="$mods/node-llama-cpp/llama/gitRelease.bundle"
[ -f "$bins/libllama.v0.4.0.so" ] || unavailable "no libllama.v0.4.0.so in $bins"
[ -f "$bundle" ] || unavailable "no llama/gitRelease.bundle in node-llama-cpp"
tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$info")
[ -n "$tag" ] || unavailable "no tag in $info"

# The bundle holds one squashed commit (its HEAD); the headers are taken from it.
src="$out/src.git"
rm -rf "$src" "$out/include"
git init -q --bare "$src" || unavailable "git init failed"
git -C "$src" fetch -q "$(cd "$(dirname "$bundle")" && pwd)/gitRelease.bundle" HEAD ||
	unavailable "cannot read $bundle"
commit=$(git -C "$src" rev-parse FETCH_HEAD)
mkdir -p "$out/include"
git -C "$src" archive FETCH_HEAD include/llama.h ggml/include | tar -x -C "$out/include" ||
	unavailable "no headers in the llama.cpp bundle"
mv "$out/include/ggml/include/"* "$out/include/" && rmdir "$out/include/ggml/include" \
	"$out/include/ggml"
mv "$out/include/include/llama.h" "$out/include/" && rmdir "$out/include/include"
rm -rf "$src"

ln -sfn "npm/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64" "$out/bins"
echo "$tag $commit" >"$out/ok"
echo "llama: llama.cpp $tag ($commit) in $out"
