#!/usr/bin/env bash
# The Debian systemd root, booted through an initramfs made by Debian's own
# dracut (059, systemd-based initrd, network-legacy) with the lazyroot
# dracut module: dracut brings the network up and calls the lazyroot
# netroot handler, which starts lazyrootd and mounts the root. The same
# checks as the busybox flavour (test-debian-busybox.sh).
# vm-slow: minutes (tests/run starts it first)
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_debian_fixture
start_nginx "$DFIX/pub"
vm_dracut_initramfs
log=$WORK/serial.log
VM_STOP_ON=$VM_DEBIAN_STOP VM_TIMEOUT=${VM_TIMEOUT_DEBIAN:-480} vm_boot "$log" \
	"root=lazyroot:http://10.0.2.100/ rd.lazyroot.overlay=tmpfs brd.rd_size=393216 ip=dhcp rd.emergency=poweroff" \
	--mem 1536 --guestfwd "$(fwd 10.0.2.100 80 "$HTTP_PORT")"
check_debian_boot "$log"
echo "PASS"
