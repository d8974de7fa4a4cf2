#!/usr/bin/env bash
# Never failing open, on Debian's stock 7.x kernel (fanotify backend): the
# root's init SIGKILLs lazyrootd's worker in the middle of reading a 64 MiB
# file that was never read before. The supervisor keeps the fanotify group
# open, starts a new worker, which answers what the dead one left; the read
# must complete with exactly the image's bytes. Then every lazyrootd
# process is killed and a file never read is read: what the kernel does
# then is reported (docs/architecture.md), not hidden.
# shellcheck source=tests/vm/lib.sh
VM_KERNEL=debian
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
start_nginx "$FIX/pub"
vm_initramfs
log=$WORK/serial.log
vm_boot "$log" "root=lazyroot:http://10.0.2.100/ brd.rd_size=131072 lazyroot.test=kill" \
	--guestfwd "$(fwd 10.0.2.100 80 "$HTTP_PORT")"
vm_show "$log"
expect "$log" '^lazyroot-test: 2 lazyrootd processes' "lazyrootd does not run as supervisor + worker"
expect "$log" '^lazyroot-test: killing worker [0-9]+ ' "the test did not find the worker to kill"
expect "$log" 'supervisor: worker [0-9]+ killed by signal 9' "the supervisor did not see the worker die"
! grep -q 'reading /data/big.bin FAILED' "$log" || fail "the read across the kill failed"
check_boot "$log"
expect "$log" '^lazyroot-test: lazyrootd processes after the worker was killed: 2' \
	"no new worker after the kill"
line=$(grep -m1 '^lazyroot-test: every lazyrootd killed' "$log") || fail "no line about killing every lazyrootd"
case $line in
*"md5 $OTHER_MD5"*) note "every lazyrootd killed: other.bin still read intact" ;;
*md5*) note "every lazyrootd killed: other.bin read WRONG bytes (holes as zeros: the kernel allows reads once the fanotify group closes; documented)" ;;
*) note "every lazyrootd killed: reading other.bin failed ($line)" ;;
esac
row "boot: lazyrootd's worker SIGKILLed while a 64 MiB file is read (fanotify, Debian's 7.x kernel)" \
	"the read completes intact; a new worker answers what the dead one left"
echo "PASS"
