#!/usr/bin/env bash
# Boot the test root from a file:// source: the signed chunk store on a
# virtio disk, read-only root. Asserts: the new root's init ran, lazyrootd
# kept serving after switch_root (a 64 MiB file first read there has the
# right checksum), it runs as @lazyrootd, at most 10% of the image was
# asked for and fetched before switch_root.
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
check_boot "$log"
expect "$log" '^lazyroot-test: root is read-only' "root should be read-only without an overlay"
echo "PASS"
