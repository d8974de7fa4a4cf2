#!/usr/bin/env bash
# Boot the test root from a file:// source on a virtio disk, read-only.
# Asserts: the new root's init ran, lazyrootd kept serving after
# switch_root (a 64 MiB file first read there has the right checksum),
# lazyrootd runs as @lazyrootd, and the kernel asked for at most 10% of the
# image before switch_root.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
vm_source_disk
vm_initramfs
log=$WORK/serial.log
vm_boot "$log" "root=lazyroot:file:///run/lazyroot/src rd.lazyroot.srcdev=/dev/vda brd.rd_size=131072" \
	--disk "$WORK/src.img"
vm_show "$log"
! grep -q FATAL "$log" || fail "the hook reported a fatal error"
expect "$log" '^lazyroot-test: new root init running' "new root's init did not run"
expect "$log" '^lazyroot-test: lazyrootd argv0 @lazyrootd' "lazyrootd not running as @lazyrootd after switch_root"
expect "$log" "^lazyroot-test: big.bin md5 $BIG_MD5" "file first read after switch_root not served intact"
expect "$log" '^lazyroot-test: root is read-only' "root should be read-only without an overlay"
expect "$log" '^lazyroot-test: DONE' "new root's init did not finish"

line=$(grep -E '^lazyroot: before switch_root: kernel requested' "$log") ||
	fail "no before-switch_root report"
req=$(echo "$line" | sed -E 's/.*requested ([0-9]+) of ([0-9]+) bytes.*/\1/')
size=$(echo "$line" | sed -E 's/.*requested ([0-9]+) of ([0-9]+) bytes.*/\2/')
[ "$size" = "$IMAGE_SIZE" ] || fail "report says image of $size bytes, the image has $IMAGE_SIZE"
share=$(echo "scale=2; $req * 100 / $size" | bc)
note "before switch_root the kernel requested $req of $size bytes ($share%)"
note "boot to DONE took ${BOOT_WALL}s wall time (TCG)"
[ $((req * 10)) -le "$size" ] || fail "kernel requested $share% of the image before switch_root (limit 10%)"
echo "PASS"
