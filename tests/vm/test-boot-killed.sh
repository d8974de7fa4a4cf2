#!/usr/bin/env bash
# A killed worker: the root's init SIGKILLs lazyrootd's worker in the
# middle of reading a 64 MiB file that was never read before. The
# supervisor holds the kernel channel, so the kernel keeps every request,
# and starts a new worker: with cachefiles (our 6.12 kernel) it writes
# `restore`, the kernel hands over what the dead one had taken and re-opens
# the objects whose anon fds died with it; with fanotify (test-stock-killed)
# a journal says what the dead one left. The read must complete with
# exactly the image's bytes. Then every lazyrootd process is killed and a
# file never read is read: with cachefiles the device closes and the read
# must fail, never return zeros; with fanotify the kernel lets holes read
# as zeros (docs/architecture.md): reported, not hidden.
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
# The new worker knows what the dead one made local (shared bitmaps):
# without that it took the image for empty and prefetched it again.
before=$(sed -nE 's/^lazyroot-test: before the kill: local_bytes ([0-9]+).*/\1/p' "$log")
adopted=$(sed -nE 's/^lazyroot-test: after the kill: adopted_bytes ([0-9]+).*/\1/p' "$log")
{ [ -n "$before" ] && [ -n "$adopted" ]; } || fail "no local_bytes before the kill or adopted_bytes after it"
[ "$before" -gt 0 ] || fail "the worker held nothing local before the kill: the check cannot tell"
[ "$adopted" -ge "$before" ] || fail "the new worker adopted $adopted bytes, the dead one held $before"
note "local before the kill $before bytes; the new worker adopted $adopted"
row "boot: the worker SIGKILLed with $before bytes of the image local ($VM_BACKEND)" \
	"the new worker adopts them ($adopted bytes) instead of fetching them again"
expect "$log" '^lazyroot-test: lazyrootd processes after the worker was killed: 2' \
	"no new worker after the kill"
line=$(grep -m1 '^lazyroot-test: every lazyrootd killed' "$log") || fail "no line about killing every lazyrootd"
case $VM_BACKEND in
cachefiles)
	case $line in
	*"other.bin md5 $OTHER_MD5"*) fail "every lazyrootd killed: other.bin, never read, read intact: was it read before?" ;;
	*"other.bin md5 "*) fail "every lazyrootd killed: other.bin read WRONG bytes: $line" ;;
	*) note "every lazyrootd killed: reading other.bin failed, as it must ($line)" ;;
	esac
	row "boot: lazyrootd's worker SIGKILLed while a 64 MiB file is read (cachefiles, our 6.12 kernel)" \
		"the read completes intact; a new worker takes over what the dead one left (restore)"
	row "boot: every lazyrootd process SIGKILLed (cachefiles)" "a file never read fails with an error, never zeros"
	;;
*)
	case $line in
	*"other.bin md5 $OTHER_MD5"*) note "every lazyrootd killed: other.bin still read intact" ;;
	*"other.bin md5 "*) note "every lazyrootd killed: other.bin read WRONG bytes (holes as zeros: the kernel allows reads once the fanotify group closes; documented)" ;;
	*) note "every lazyrootd killed: reading other.bin failed ($line)" ;;
	esac
	row "boot: lazyrootd's worker SIGKILLed while a 64 MiB file is read (fanotify, Debian's stock kernel)" \
		"the read completes intact; a new worker answers what the dead one left"
	;;
esac
echo "PASS"
