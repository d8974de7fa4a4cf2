#!/usr/bin/env bash
# Boot from QEMU's built-in TFTP server (tftp=, at 10.0.2.2 in the guest):
# the chunk store is the layout a server without ranges can serve. The
# guest uses a static ip= address here (the other network boots use DHCP).
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
vm_initramfs
log=$WORK/serial.log
vm_boot "$log" "root=lazyroot:tftp://10.0.2.2/ ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off brd.rd_size=131072" \
	--tftp "$FIX/pub"
vm_show "$log"
check_boot "$log"
expect "$log" '^lazyroot: network: eth0 10.0.2.15 gateway 10.0.2.2' "static ip= not applied"
echo "PASS"
