#!/usr/bin/env bash
# Boot with rd.lazyroot.overlay=tmpfs: the root is writable (tmpfs upper
# over the on-demand EROFS lower) and still served after switch_root.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
vm_source_disk
vm_initramfs
log=$WORK/serial.log
vm_boot "$log" "root=lazyroot:file:///run/lazyroot/src rd.lazyroot.srcdev=/dev/vda rd.lazyroot.overlay=tmpfs brd.rd_size=131072" \
	--disk "$WORK/src.img"
vm_show "$log"
check_boot "$log"
expect "$log" '^lazyroot-test: root is writable' "overlay root should be writable"
echo "PASS"
