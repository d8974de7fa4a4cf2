#!/usr/bin/env bash
# Boot from QEMU's built-in TFTP server (tftp=, at 10.0.2.2 in the guest):
# the chunk store is the layout a server without ranges can serve.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
vm_initramfs
log=$WORK/serial.log
vm_boot "$log" "root=lazyroot:tftp://10.0.2.2/ brd.rd_size=131072" --tftp "$FIX/pub"
vm_show "$log"
check_boot "$log"
echo "PASS"
