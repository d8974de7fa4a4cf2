#!/usr/bin/env bash
# PXE, as fleets boot: a guest with no -kernel. Its firmware (QEMU's iPXE
# option ROM for the virtio NIC) gets an address from QEMU's DHCP server,
# which names the boot file; iPXE loads that script, then the kernel and the
# lazyroot initramfs, over QEMU's TFTP server; the kernel's command line is
# in the script. The root then comes on demand from nginx over HTTP.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
[ -n "$(ls /usr/lib/ipxe/qemu/*virtio* /usr/share/qemu/*virtio*.rom 2>/dev/null)" ] ||
	skip "QEMU's iPXE option ROMs are missing (ipxe-qemu, scripts/setup)"
start_nginx "$FIX/pub"
vm_initramfs
tftp=$WORK/tftp
mkdir -p "$tftp"
cp "$KERNEL" "$tftp/vmlinuz"
cp "$WORK/initrd.gz" "$tftp/initrd.gz"
# iPXE prints to the firmware's text console, not the serial port, so the
# proof that the boot script ran is a nonce that only its kernel command
# line carries, echoed by the kernel on the serial console.
nonce=pxe$$$RANDOM
cat >"$tftp/boot.ipxe" <<IPXE
#!ipxe
echo lazyroot: iPXE booting over the network
kernel vmlinuz console=ttyS0 panic=-1 root=lazyroot:http://10.0.2.100/ brd.rd_size=131072 lazyroot.test=$nonce
initrd initrd.gz
boot
IPXE
log=$WORK/serial.log
start=$(date +%s.%N)
rc=0
"$VM_TOP/scripts/run-qemu" --pxe boot.ipxe --tftp "$tftp" --timeout "$VM_TIMEOUT" --log "$log" \
	--guestfwd "$(fwd 10.0.2.100 80 "$HTTP_PORT")" >/dev/null 2>&1 || rc=$?
BOOT_WALL=$(echo "$(date +%s.%N) - $start" | bc)
[ $rc -ne 124 ] || { tail -n 30 "$log"; fail "guest did not finish within ${VM_TIMEOUT}s"; }
expect "$log" "Kernel command line:.*lazyroot.test=$nonce" "the kernel did not come from the iPXE boot script (its nonce is not on the command line)"
vm_show "$log"
check_boot "$log"
note "wall clock from QEMU start (firmware, DHCP, TFTP of $(($(stat -c %s "$KERNEL") + $(stat -c %s "$WORK/initrd.gz"))) bytes) to power-off: ${BOOT_WALL}s"
echo "PASS"
