#!/usr/bin/env bash
# The metadata map (image/erofs-meta.c) must never call a block "data" that
# is not regular-file content: on kernels that read EROFS metadata without
# fanotify events, such a block would be a hole when the kernel reads it.
# Check: build the same tree twice with mkfs.erofs (uncompressed), once
# with every regular file's bytes inverted (same names, sizes, modes,
# times, so the same layout). A block holding any file byte differs between
# the two images; every block the map does not list must differ. Also:
# `lazyroot-image verify` checks the map and its pieces, and refuses a
# tampered piece.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/tools/lib.sh
. "$top/tests/tools/lib.sh"
tools_erofs_setup # $tool, and $w (removed at exit); or a skip

# A tree with what images hold: small files (inline tails), large ones,
# files of exact block multiples, empty files, a big directory, long and
# short symlinks, hard links, a FIFO, a device node, xattrs.
r=$w/a
mkdir -p "$r/etc" "$r/big" "$r/many" "$r/dev"
for i in $(seq 1 600); do printf 'entry %s %*s\n' "$i" $((i % 97)) x >"$r/many/file-$i"; done
head -c 5000000 /dev/urandom >"$r/big/random.bin"
seq 1 400000 >"$r/big/text"
head -c 8192 /dev/urandom >"$r/big/two-blocks"
: >"$r/etc/empty"
echo "hello" >"$r/etc/small"
ln -s "$(printf 'long/%.0s' $(seq 1 200))target" "$r/longlink"
ln -s etc/small "$r/shortlink"
ln "$r/big/two-blocks" "$r/big/hardlink"
mkfifo "$r/dev/fifo"
mknod "$r/dev/null-ish" c 1 3 2>/dev/null || true
setfattr -n user.test -v "$(head -c 300 /dev/zero | tr '\0' v)" "$r/etc/small" 2>/dev/null || true
twin_images # $w/a and its twin $w/b, published uncompressed
ma=$(manifest_object "$w/pub-a" meta-map) || { echo "FAIL: no meta-map in the manifest"; exit 1; }
mb=$(manifest_object "$w/pub-b" meta-map) || { echo "FAIL: no meta-map in the twin's manifest"; exit 1; }
cmp -s <(grep '^r ' "$ma") <(grep '^r ' "$mb") ||
	{ echo "FAIL: the twin images' layouts differ (the test's premise)"; exit 1; }
python3 - "$w/a.erofs" "$w/b.erofs" "$ma" <<'PY'
import sys
a = open(sys.argv[1], 'rb').read()
b = open(sys.argv[2], 'rb').read()
meta = set()
for line in open(sys.argv[3]):
    if line.startswith('r '):
        s, n = map(int, line.split()[1:])
        meta.update(range(s, s + n))
blocks = len(a) // 4096
data = [k for k in range(blocks) if k not in meta]
same = [k for k in data if a[k*4096:(k+1)*4096] == b[k*4096:(k+1)*4096]]
print(f"  {blocks} blocks: {len(meta)} metadata, {len(data)} data; data blocks equal in both twins: {len(same)}")
if same:
    print(f"FAIL: blocks called data that hold no file content: {same[:10]}")
    sys.exit(1)
if len(data) < blocks // 2:
    print("FAIL: the map calls most of the image metadata (the walker found almost no data)")
    sys.exit(1)
PY
# A tampered piece is refused by verify.
piece=$(grep -m1 '^p ' "$ma" | cut -d' ' -f2)
pf="$w/pub-a/chunks/${piece:0:2}/$piece"
printf 'X' | dd of="$pf" bs=1 seek=100 conv=notrunc 2>/dev/null
if "$tool" verify -q --key "$w/p.pem" "$w/pub-a" 2>"$w/err"; then
	echo "FAIL: verify accepted a tampered metadata piece"; exit 1
fi
grep -q 'metadata piece 0 missing or corrupt' "$w/err" || { cat "$w/err"; echo "FAIL: wrong complaint"; exit 1; }
echo "  a tampered metadata piece is refused by verify"
# Compressed images: the map publishes and verifies (their data blocks are
# checked by the boot test on Debian's 6.18, which needs the map).
"$tool" build -q --key "$w/k.pem" --compress lz4hc "$w/a" "$w/pub-z"
"$tool" verify -q --key "$w/p.pem" "$w/pub-z" || { echo "FAIL: verify of an lz4hc image"; exit 1; }
echo "PASS"
