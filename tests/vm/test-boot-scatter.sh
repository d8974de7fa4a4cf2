#!/usr/bin/env bash
# The signed file extents at work: after switch_root a program's page
# faults land anywhere in its file, and a READ that misses inside a file
# that spans chunks brings that file's chunks around it (daemon/extents.c).
# The new root reads other.bin (8 MiB, never read before) 4 KiB at a time
# from its end to its start, 256 KiB apart: beyond the fixed window of
# chunks around a READ (2 before), so without the extents every read is a
# READ of its own. With them most reads find their pages already in the
# kernel's object (an uncompressed image: chunks go in whole). Prefetch is
# off, so nothing else fetches the file.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture none
start_nginx "$FIX/pub"
vm_initramfs
grep -q '^file-extents ' "$FIX/pub/lazyroot.manifest" || fail "the fixture has no file extents"
log=$WORK/serial.log
vm_boot "$log" "root=lazyroot:http://10.0.2.100/ brd.rd_size=131072 rd.lazyroot.prefetch=off lazyroot.test=scatter" \
	--guestfwd "$(fwd 10.0.2.100 80 "$HTTP_PORT")"
vm_show "$log"
check_boot "$log"
expect "$log" "^lazyroot-test: other.bin md5 $OTHER_MD5" "other.bin not intact"
ext=$(sed -nE 's/.*lazyroot-test: scatter: file_extents ([0-9]+),.*/\1/p' "$log" | tail -n 1)
line=$(grep -a 'lazyroot-test: scatter: 32 reads' "$log" | tail -n 1)
if [ -z "$ext" ] || [ -z "$line" ]; then
	fail "no scatter report from the guest"
fi
[ "$ext" -gt 0 ] || fail "lazyrootd had no file extents after the boot"
bad=$(sed -nE 's/.*32 reads, ([0-9]+) failed.*/\1/p' <<<"$line")
reads=$(sed -nE 's/.*READs ([0-9]+).*/\1/p' <<<"$line")
note "file extents: $ext; 32 scattered 4 KiB reads of other.bin took $reads READs"
[ "$bad" = 0 ] || fail "$bad of the scattered reads failed"
# Each READ brings up to 4 MiB of the file (LR_FILE_AHEAD_BYTES), as fast as
# the link allows: far fewer READs than reads. Without the extents it is one
# per read.
[ "$reads" -le 16 ] || fail "$reads READs for 32 reads: a READ did not bring the file's chunks"
echo "PASS"
