#!/bin/sh
# Description: every C source and header of the project follows .clang-format
# (`clang-format --dry-run -Werror`), so that a diff shows changes, not re-indentation.
# Fails with the first offending lines of each file; `make format` rewrites them.
set -u
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null 2>&1 || { echo "skip: clang-format is not installed"; exit 77; }
if [ -d .git ] && command -v git >/dev/null 2>&1; then
	files=$(git ls-files '*.c' '*.h')
else
	files=$(find include src tools cli server engine tests bench fuzz -name '*.[ch]' 2>/dev/null)
fi
[ -n "$files" ] || { echo "FAIL: no C files found"; exit 1; }
bad=0
for f in $files; do
	[ -f "$f" ] || continue
	if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
		bad=$((bad + 1))
		echo "FAIL: $f differs from .clang-format:"
		clang-format --dry-run -Werror "$f" 2>&1 | head -n 6 | sed 's/^/    /'
	fi
done
[ $bad -eq 0 ] || { echo "FAIL: $bad files differ from .clang-format (make format)"; exit 1; }
echo "format: $(echo "$files" | wc -w) files follow .clang-format"
