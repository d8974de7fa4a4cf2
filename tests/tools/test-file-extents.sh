#!/usr/bin/env bash
# The file extents (image/erofs-meta.c, image/publish.c) tell lazyrootd which
# runs of image blocks hold one file's data: a READ inside one brings that
# file's chunks. They are a hint, never served, but a wrong one fetches
# chunks of other files, so check them against real mkfs.erofs images:
# - uncompressed, twin images (every file's bytes inverted, same layout):
#   every block of every extent holds file bytes (differs between twins);
# - every file of random bytes that spans two chunks or more has an extent
#   that starts at its first block (found by content) and covers its blocks;
# - lz4hc: the list publishes, verifies, and names the large files;
# - `--no-file-extents` publishes none; a tampered list is refused.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/tools/lib.sh
. "$top/tests/tools/lib.sh"
tools_erofs_setup # $tool, and $w (removed at exit); or a skip

r=$w/a
mkdir -p "$r/bin" "$r/lib" "$r/many"
for i in $(seq 1 300); do printf 'entry %s %*s\n' "$i" $((i % 97)) x >"$r/many/file-$i"; done
# Random files (located by content below): under a chunk, across one
# boundary, many chunks; sizes that are and are not whole blocks.
for s in 3000 20000 70000 200000 1048576 3000001; do head -c "$s" /dev/urandom >"$r/bin/rand-$s"; done
seq 1 300000 >"$r/lib/text"
ln "$r/bin/rand-200000" "$r/lib/hardlink"
twin_images # $w/a and its twin $w/b, published uncompressed
ea=$(manifest_object "$w/pub-a" file-extents) || { echo "FAIL: no file-extents in the manifest"; exit 1; }
eb=$(manifest_object "$w/pub-b" file-extents) || { echo "FAIL: no file-extents in the twin's manifest"; exit 1; }
cmp -s "$ea" "$eb" || { echo "FAIL: the twin images' extents differ (the test's premise)"; exit 1; }
python3 - "$w/a.erofs" "$w/b.erofs" "$ea" "$r/bin" 16384 <<'PY'
import os, struct, sys
a = open(sys.argv[1], 'rb').read()
b = open(sys.argv[2], 'rb').read()
raw = open(sys.argv[3], 'rb').read()
cs = int(sys.argv[5]) // 4096
ext = [struct.unpack_from('<II', raw, i) for i in range(0, len(raw), 8)]
bad = [(f, n) for f, n in ext
       for k in range(f, f + n) if a[k*4096:(k+1)*4096] == b[k*4096:(k+1)*4096]]
if bad:
    print(f"FAIL: extents with blocks that hold no file bytes: {bad[:5]}")
    sys.exit(1)
if any(f // cs == (f + n - 1) // cs for f, n in ext):
    print("FAIL: an extent inside one chunk was published (no hint in it)")
    sys.exit(1)
by_first = dict(ext)
for name in sorted(os.listdir(sys.argv[4])):
    data = open(os.path.join(sys.argv[4], name), 'rb').read()
    if len(data) < 8192:  # its one block may be inline, next to its inode
        continue
    off = a.find(data[:4096])
    if off < 0 or off % 4096:
        print(f"FAIL: {name} not found block-aligned in the image (the test's premise)")
        sys.exit(1)
    first, full, blocks = off // 4096, len(data) // 4096, (len(data) + 4095) // 4096
    spans = first // cs != (first + blocks - 1) // cs
    n = by_first.get(first)
    if spans and full >= 2 and n not in (full, blocks):
        print(f"FAIL: {name} ({len(data)} bytes at block {first}): extent {n}, want {full} or {blocks} blocks")
        sys.exit(1)
    print(f"  {name}: block {first}, {blocks} blocks, extent {n}")
print(f"  {len(ext)} extents, every block of them file bytes")
PY
# A tampered list is refused by verify.
printf 'X' | dd of="$ea" bs=1 seek=3 conv=notrunc 2>/dev/null
if "$tool" verify -q --key "$w/p.pem" "$w/pub-a" 2>"$w/err"; then
	echo "FAIL: verify accepted a tampered file-extents list"; exit 1
fi
grep -q 'file extents missing, corrupt' "$w/err" || { cat "$w/err"; echo "FAIL: wrong complaint"; exit 1; }
echo "  a tampered list is refused by verify"
# lz4hc: the compressed text and the large random files have extents.
"$tool" build -q --key "$w/k.pem" --compress lz4hc --chunk-size 16384 "$w/a" "$w/pub-z"
"$tool" verify -q --key "$w/p.pem" "$w/pub-z" || { echo "FAIL: verify of an lz4hc image"; exit 1; }
ez=$(manifest_object "$w/pub-z" file-extents) || { echo "FAIL: no file-extents for an lz4hc image"; exit 1; }
n=$(($(stat -c %s "$ez") / 8))
[ "$n" -ge 3 ] || { echo "FAIL: lz4hc image: $n extents, want the text and two large files at least"; exit 1; }
echo "  lz4hc: $n extents"
"$tool" build -q --key "$w/k.pem" --no-file-extents "$w/a" "$w/pub-n"
! grep -q '^file-extents ' "$w/pub-n/lazyroot.manifest" || { echo "FAIL: --no-file-extents published a list"; exit 1; }
echo "PASS"
