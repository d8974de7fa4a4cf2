#!/usr/bin/env bash
# Background prefetch to completion, then offline. The root's init waits
# until `lazyrootd status` says "prefetch complete" (it starts when the hook
# says the boot is done), asks for the mirror to go away, and this script
# stops nginx; with no mirror reachable, every file of the root is read and
# both large files must have their exact MD5s, with no chunk fetched after
# the stop. Prefetch must fetch the image about once (<= 1.01x its size).
# The test kernel (cachefiles: into lazyrootd's local chunk store) by
# default; test-stock-prefetch.sh runs it on Debian's kernel (fanotify:
# into the image file).
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
start_nginx "$FIX/pub"
vm_initramfs
log=$WORK/serial.log
: >"$log"
stop_nginx_when "$log"
# The RAM disk holds the chunk store and the kernel's cache object (up to
# twice the image) for cachefiles, the image file for fanotify.
vm_boot "$log" "root=lazyroot:http://10.0.2.100/ brd.rd_size=262144 lazyroot.test=prefetch" \
	--mem 768 --guestfwd "$(fwd 10.0.2.100 80 "$HTTP_PORT")"
vm_show "$log"
! grep -q FATAL "$log" || fail "the hook reported a fatal error"
expect "$log" "^lazyroot: lazyrootd ready \\($VM_BACKEND backend\\)" "lazyrootd did not use the $VM_BACKEND backend"
expect "$log" 'lazyrootd: the boot is done \(lazyrootd booted\)' "the hook did not tell lazyrootd that the boot is done"
line=$(grep -m1 '^lazyroot-test: prefetch [a-z]* at t=' "$log") || fail "no prefetch result from the guest"
case $line in
*"prefetch complete at"*"network_needed 0"*) ;;
*) fail "prefetch did not complete: $line" ;;
esac
t_done=$(echo "$line" | sed -E 's/.* at t=([0-9.]+)s.*/\1/')
chunk_bytes=$(echo "$line" | sed -E 's/.*chunk_bytes ([0-9]+) .*/\1/')
expect "$log" '^lazyroot-test: the mirror is unreachable' "the mirror was still reachable from the guest"
expect "$log" '^lazyroot-test: offline: every file read, 0 read errors' "reads failed with the mirror gone"
expect "$log" "^lazyroot-test: offline big.bin md5 $BIG_MD5" "big.bin not intact offline"
expect "$log" "^lazyroot-test: offline other.bin md5 $OTHER_MD5" "other.bin not intact offline"
after=$(grep -m1 '^lazyroot-test: offline: chunk_bytes' "$log") || fail "no offline counters"
read -r before_stop after_stop < <(echo "$after" | sed -E 's/.*chunk_bytes ([0-9]+) -> ([0-9]+),.*/\1 \2/')
[ "$before_stop" = "$after_stop" ] || fail "chunks were fetched after the mirror was gone ($before_stop -> $after_stop bytes)"
expect "$log" "read_errors 0," "lazyrootd counted read errors"
[ $((chunk_bytes * 100)) -le $((IMAGE_SIZE * 101)) ] ||
	fail "chunks fetched: $chunk_bytes bytes for a $IMAGE_SIZE-byte image (more than 1.01x)"
t_root=$(sed -nE 's/^lazyroot: root mounted .* at t=([0-9.]+)s.*/\1/p' "$log")
note "backend $VM_BACKEND: prefetch complete at t=${t_done}s (root mounted at ${t_root}s); chunks fetched $chunk_bytes bytes for a $IMAGE_SIZE-byte image ($(echo "scale=3; $chunk_bytes / $IMAGE_SIZE" | bc)x); offline: every file read, 0 errors, 0 bytes fetched"
echo "PASS"
