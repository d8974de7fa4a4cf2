#!/usr/bin/env bash
# scripts/boot-timeline reads a boot's console log into figures: feed it a
# log whose figures are known (three READs: one waiting on a tree node, one
# waiting on a node while its chunk came by index name at the same time;
# one node fetched ahead that no READ waited for; one chunk read ahead;
# two transfers) and check each one, then a log without lazyrootd's debug
# lines, which it must refuse.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
command -v python3 >/dev/null || { echo "SKIP: python3 not installed (scripts/setup)"; exit 77; }
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
cat >"$w/boot.log" <<'LOG'
[    1.000000] Run /init as init process
lazyroot: initramfs started at t=1.10s
[    2.000000] lazyrootd: READ 1: 0+4096 (chunks 0-0)
[    2.001000] lazyrootd: fetching node 1/0
[    2.031000] lazyrootd: fetched node 1/0: 0
[    2.032000] lazyrootd: transfer: 4096 bytes, first byte after 28000 us, done after 29000 us, port 1
[    2.033000] lazyrootd: fetching chunk 0/0
[    2.034000] lazyrootd: fetching chunk 0/1
[    2.080000] lazyrootd: transfer: 65536 bytes, first byte after 30000 us, done after 46000 us, port 1
[    2.081000] lazyrootd: fetched chunk 0/0: 0
[    2.100000] lazyrootd: READ 1 completed
[    2.120000] lazyrootd: fetching node 1/1
[    2.140000] lazyrootd: fetched node 1/1: 0
[    2.150000] lazyrootd: READ 2: 131072+8192 (chunks 2-2)
[    2.151000] lazyrootd: fetching chunk 0/2
[    2.250000] lazyrootd: READ 2 completed
[    2.260000] lazyrootd: READ 4: 19660800+4096 (chunks 300-300)
[    2.260500] lazyrootd: fetching node 1/2
[    2.261000] lazyrootd: fetching chunk 0/300 by index
[    2.290500] lazyrootd: fetched node 1/2: 0
[    2.292000] lazyrootd: fetched chunk 0/300: 0
[    2.300000] lazyrootd: READ 4 completed
lazyroot-bench: first application (python3 3.11) at t=2.30s
[    2.400000] lazyrootd: READ 3: 196608+4096 (chunks 3-3)
LOG
out=$("$top/scripts/boot-timeline" "$w/boot.log")
echo "$out"
fail=0
expect() {
	if grep -qF -- "$1" <<<"$out"; then echo "ok: $1"; else echo "MISSING: $1"; fail=1; fi
}
expect "READs from the kernel: 3 (0 unfinished at the mark); 16 KiB asked"
expect "waiting: 0.24 s in all, median 100 ms, longest 100 ms"
expect "between one READ's end and the next one's start: 0.06 s in all, median 30 ms"
expect "tree nodes a READ waited for: 1, 0.03 s in all, median 30 ms (of 3 nodes fetched)"
expect "... and with the READ's chunks asked for by index at the same time: 1, 0.03 s"
expect "Chunks fetched: 4; asked for by a READ: 3; fetched and asked: 3"
expect "< 16 KiB (manifest, nodes): 1, first byte after 28 ms, the rest of the body 1 ms"
expect ">= 16 KiB (chunks): 1, first byte after 30 ms, the rest of the body 16 ms"
expect "lazyroot: initramfs started"
# A log without lazyrootd's debug lines is an error, not an empty report.
grep -v lazyrootd "$w/boot.log" >"$w/plain.log"
if "$top/scripts/boot-timeline" "$w/plain.log" >/dev/null 2>&1; then
	echo "MISSING: refusal of a log without READ lines"
	fail=1
fi
exit $fail
