#!/usr/bin/env bash
# A killed worker, cachefiles backend (our 6.12 kernel): the root's init
# SIGKILLs lazyrootd's worker in the middle of reading a 64 MiB file that
# was never read before. The supervisor holds /dev/cachefiles, so the
# kernel keeps every request; the next worker writes `restore`, the kernel
# hands over what the dead one had taken and re-opens the objects whose
# anon fds died with it. The read must complete with exactly the image's
# bytes. Then every lazyrootd process is killed: the device closes and a
# file never read must fail with an error, never read as zeros.
# shellcheck source=tests/vm/lib.sh
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
! grep -q 'cachefiles: restore' "$log" || fail "the kernel refused restore"
check_boot "$log"
expect "$log" '^lazyroot-test: lazyrootd processes after the worker was killed: 2' \
	"no new worker after the kill"
line=$(grep -m1 '^lazyroot-test: every lazyrootd killed' "$log") || fail "no line about killing every lazyrootd"
case $line in
*"other.bin md5 $OTHER_MD5"*) fail "every lazyrootd killed: other.bin, never read, read intact: was it read before?" ;;
*"other.bin md5 "*) fail "every lazyrootd killed: other.bin read WRONG bytes: $line" ;;
*) note "every lazyrootd killed: reading other.bin failed, as it must ($line)" ;;
esac
row "boot: lazyrootd's worker SIGKILLed while a 64 MiB file is read (cachefiles)" \
	"the read completes intact; a new worker takes over (restore)"
row "boot: every lazyrootd process SIGKILLed (cachefiles)" "a file never read fails with EIO, never zeros"
echo "PASS"
