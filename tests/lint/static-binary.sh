#!/usr/bin/env bash
# lazyrootd for the initramfs is fully static (no dynamic section) and
# stays within the 2 MiB budget.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BUILD:-$top/build}/static/fetcher/lazyrootd
[ -x "$bin" ] || { echo "SKIP: $bin not built (make static)"; exit 77; }
if readelf -d "$bin" | grep 'Dynamic section' >/dev/null; then
	echo "FAIL: $bin has a dynamic section"; exit 1
fi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
strip --strip-all -o "$tmp" "$bin"
size=$(stat -c %s "$tmp")
echo "lazyrootd static, stripped: $size bytes"
[ "$size" -le $((2 * 1024 * 1024)) ] || { echo "FAIL: over 2 MiB"; exit 1; }
echo "PASS"
