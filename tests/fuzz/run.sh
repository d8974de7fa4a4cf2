#!/usr/bin/env bash
# Run every libFuzzer target for FUZZ_SECONDS (default 20) each, from seeds
# made now (a real manifest, real cachefiles messages) plus what earlier
# runs on this machine found (build/fuzz-corpus). Any crash fails.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$top/build}
secs=${FUZZ_SECONDS:-20}
command -v clang >/dev/null || { echo "SKIP: clang not installed (scripts/setup)"; exit 77; }
make -s -C "$top" fuzz >"$BUILD/fuzz-build.log" 2>&1 || { cat "$BUILD/fuzz-build.log"; exit 1; }
tool=$BUILD/host/image/lazyroot-image
corpus=$BUILD/fuzz-corpus
mkdir -p "$corpus"/{fuzz-manifest,fuzz-cf-msg,fuzz-tree}
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT

# Seeds: a real signed manifest; OPEN/READ/CLOSE messages as the kernel
# sends them (little-endian header: msg_id, opcode, len, object_id).
if [ -x "$tool" ]; then
	head -c 65536 /dev/zero >"$w/img"
	"$tool" keygen -q "$w/k" "$w/p"
	"$tool" publish -q --key "$w/k" --chunk-size 4096 "$w/img" "$w/pub"
	cp "$w/pub/lazyroot.manifest" "$corpus/fuzz-manifest/seed-manifest"
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

rc=0
for f in fuzz-manifest fuzz-cf-msg fuzz-tree; do
	bin=$BUILD/fuzz/tests/fuzz/$f
	if ! "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
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
