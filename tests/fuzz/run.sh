#!/usr/bin/env bash
# Run every libFuzzer target for FUZZ_SECONDS (default 15) each, from seeds
# made now (a real manifest, real cachefiles messages) plus what earlier
# runs on this machine found (build/fuzz-corpus). Any crash fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$top/build}
secs=${FUZZ_SECONDS:-15}
command -v clang >/dev/null || { echo "SKIP: clang not installed (scripts/setup)"; exit 77; }
make -s -C "$top" fuzz >"$BUILD/fuzz-build.log" 2>&1 || { cat "$BUILD/fuzz-build.log"; exit 1; }
tool=$BUILD/host/image/lazyroot-image
corpus=$BUILD/fuzz-corpus
targets=(fuzz-manifest fuzz-cf-msg fuzz-fan-msg fuzz-tree fuzz-metamap fuzz-erofs-meta fuzz-erofs-root fuzz-bootorder fuzz-extents)
for f in "${targets[@]}"; do mkdir -p "$corpus/$f"; done
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT

# Seeds: a real signed manifest; OPEN/READ/CLOSE messages as the kernel
# sends them (little-endian header: msg_id, opcode, len, object_id).
if [ -x "$tool" ]; then
	head -c 65536 /dev/zero >"$w/img"
	"$tool" keygen -q "$w/k" "$w/p"
	"$tool" publish -q --no-meta-map --key "$w/k" --chunk-size 4096 "$w/img" "$w/pub"
	cp "$w/pub/lazyroot.manifest" "$corpus/fuzz-manifest/seed-manifest"
	# A real EROFS image (small: directories, inline and plain files, a
	# compressed file, symlinks) and its metadata map.
	if command -v mkfs.erofs >/dev/null; then
		mkdir -p "$w/root/d"
		for i in $(seq 40); do echo "file $i" >"$w/root/d/f$i"; done
		seq 1 3000 >"$w/root/text"
		ln -s d/f1 "$w/root/link"
		mkfs.erofs -zlz4hc --quiet "$w/e.erofs" "$w/root" >/dev/null 2>&1 &&
			cp "$w/e.erofs" "$corpus/fuzz-erofs-meta/seed-lz4" &&
			"$tool" publish -q --key "$w/k" --chunk-size 4096 "$w/e.erofs" "$w/epub" &&
			meta=$(sed -n 's/^meta-map \([0-9a-f]*\) .*/\1/p' "$w/epub/lazyroot.manifest") &&
			cp "$w/epub/chunks/${meta:0:2}/$meta" "$corpus/fuzz-metamap/seed-map"
		mkfs.erofs --quiet "$w/p.erofs" "$w/root" >/dev/null 2>&1 &&
			cp "$w/p.erofs" "$corpus/fuzz-erofs-meta/seed-plain"
		# The head of each, where the superblock and the root inode are.
		for e in e p; do
			[ ! -r "$w/$e.erofs" ] || head -c 8192 "$w/$e.erofs" >"$corpus/fuzz-erofs-root/seed-$e"
		done
	fi
fi
le32() { # a little-endian 32-bit value below 65536
	local lo hi
	lo=$(printf '%03o' $(($1 & 255)))
	hi=$(printf '%03o' $(($1 >> 8 & 255)))
	# shellcheck disable=SC2059  # the format is the octal escapes themselves
	printf "\\$lo\\$hi\\000\\000"
}
{ le32 1; le32 0; le32 46; le32 7; le32 12; le32 4; le32 5; le32 0; printf 'erofs,abcd\0abcd'; } \
	>"$corpus/fuzz-cf-msg/seed-open"
{ le32 2; le32 2; le32 32; le32 7; le32 4096; le32 0; le32 32768; le32 0; } >"$corpus/fuzz-cf-msg/seed-read"
{ le32 3; le32 1; le32 16; le32 7; } >"$corpus/fuzz-cf-msg/seed-close"
head -c 200 /dev/zero >"$corpus/fuzz-tree/seed-zero"
# A FAN_PRE_ACCESS event: metadata (event_len 48, vers 3, metadata_len 24,
# mask, fd 7, pid 1) and a range record (type 6, len 24, 8192+65536).
{ le32 48; printf '\003\000\030\000'; le32 0; printf '\000\000\020\000'; le32 7; le32 1
  printf '\006\000\030\000'; le32 0; le32 8192; le32 0; le32 65536; le32 0; } \
	>"$corpus/fuzz-fan-msg/seed-event"
# A boot-order list: 292 chunks (first byte 3), then chunks 5, 40, 6.
{ printf '\003'; le32 5; le32 40; le32 6; } >"$corpus/fuzz-bootorder/seed-list"
# Two extents of an image of 1954 blocks in 64 KiB chunks: 10+20, 30+100.
{ printf '\014'; le32 10; le32 20; le32 30; le32 100; } >"$corpus/fuzz-extents/seed-list"

rc=0
for f in "${targets[@]}"; do
	bin=$BUILD/fuzz/tests/fuzz/$f
	maxlen=4096
	[ "$f" != fuzz-erofs-meta ] || maxlen=65536
	[ "$f" != fuzz-metamap ] || maxlen=16384
	[ "$f" != fuzz-erofs-root ] || maxlen=8192
	if ! "$bin" -max_total_time="$secs" -max_len=$maxlen -timeout=10 -rss_limit_mb=1024 \
		-artifact_prefix="$BUILD/fuzz-$f-" "$corpus/$f" >"$w/$f.log" 2>&1; then
		tail -n 30 "$w/$f.log"
		echo "FAIL: $f crashed (artifact: $BUILD/fuzz-$f-*)"
		rc=1
	else
		echo "$f: $(grep -E '^#[0-9]+.*DONE' "$w/$f.log" | tail -n 1 | sed -E 's/^#([0-9]+).*cov: ([0-9]+).*/\1 runs, coverage \2/') in ${secs}s"
	fi
done
[ $rc -eq 0 ] && echo "PASS"
exit $rc
