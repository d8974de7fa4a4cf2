#!/usr/bin/env bash
# An image without compressed files on the cachefiles backend: lazyrootd
# writes every verified chunk whole into the kernel's cache object (and,
# after switch_root, the chunks after a miss and the read-ahead of a
# streaming reader), so the kernel asks for far fewer ranges than it reads.
# The new root reads big.bin, drops the page cache and reads it again: the
# bytes are intact both times and the re-read needs no READ at all (the
# object holds every page; an uncompressed image is safe to re-read on 6.12,
# docs/architecture.md).
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture none
start_nginx "$FIX/pub"
vm_initramfs
log=$WORK/serial.log
vm_boot "$log" "root=lazyroot:http://10.0.2.100/ brd.rd_size=131072 lazyroot.test=reread" \
	--guestfwd "$(fwd 10.0.2.100 80 "$HTTP_PORT")"
vm_show "$log"
check_boot "$log"
expect "$log" 'lazyrootd: no compressed files in this image: verified chunks go whole' \
	"lazyrootd did not switch to whole chunks for an uncompressed image"
! grep -q 'this image has compressed files' "$log" || fail "an uncompressed image reported as compressed"
expect "$log" "^lazyroot-test: re-read big.bin md5 $BIG_MD5" "big.bin not intact when read again after drop_caches"
st() { sed -nE "s/.*lazyroot-test: status after the $1: .*$2 ([0-9]+).*/\\1/p" "$log" | tail -n 1; }
reads=$(st read reads) requested=$(st read bytes_requested) written=$(st read bytes_written)
reads2=$(st re-read reads)
if [ -z "$reads" ] || [ -z "$reads2" ]; then
	fail "no lazyrootd status from the guest"
fi
note "until big.bin was read (64 MiB): $reads READs from the kernel for $requested bytes; $written bytes written into the object"
note "re-reading big.bin after drop_caches: $((reads2 - reads)) READs"
[ "$reads2" -eq "$reads" ] || fail "the re-read needed $((reads2 - reads)) READs: the object did not hold big.bin"
[ "$written" -ge "$requested" ] || fail "wrote $written bytes for $requested requested: not whole chunks"
# One READ per kernel read-ahead window (128 KiB) would be 512 for big.bin
# alone; whole chunks and the read-ahead written into the object make it a
# fraction of that.
[ "$reads" -lt 256 ] || fail "$reads READs: the kernel still asks for every read-ahead window"
echo "PASS"
