#!/usr/bin/env bash
# Two mirrors; the first serves a tampered chunk 0 (the superblock, which
# every mount reads). lazyrootd must detect it, take the chunk from the
# second mirror, boot, and never hand the bad bytes to the kernel.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
mkdir -p "$WORK/tampered"
cp -a "$FIX/pub/." "$WORK/tampered/"
chunk0=$(head -c 65536 "$FIX/image.erofs" | sha256sum | cut -c1-64)
obj="$WORK/tampered/chunks/${chunk0:0:2}/$chunk0"
[ -f "$obj" ] || fail "chunk 0 not found in the fixture at $obj"
# In place: the copy's index name for chunk 0 is a hard link to the same
# file (cp -a keeps links), so the bad mirror serves the bad bytes under
# both names.
printf 'tampered' | dd of="$obj" bs=1 seek=1024 conv=notrunc status=none
[ "$(stat -c %s "$obj")" = 65536 ] || fail "tampered chunk has the wrong size"
cmp -s "$obj" <(head -c 65536 "$FIX/image.erofs") && fail "chunk 0 was not tampered with"
[ "$(stat -c %h "$obj")" -ge 2 ] || fail "chunk 0 has no index name beside it in the copy"
start_nginx "$WORK/tampered" 1
bad_port=$HTTP_PORT
start_nginx "$FIX/pub" 2
good_port=$HTTP_PORT
vm_initramfs
log=$WORK/serial.log
vm_boot "$log" "root=lazyroot:http://10.0.2.100/,http://10.0.2.101/ brd.rd_size=131072" \
	--guestfwd "$(fwd 10.0.2.100 80 "$bad_port")" --guestfwd "$(fwd 10.0.2.101 80 "$good_port")"
vm_show "$log"
check_boot "$log"
expect "$log" 'lazyrootd: chunk 0 of the image: 65536 bytes that do not match the signed tree' \
	"the tampered chunk was not detected"
grep -qE 'rejected answers [1-9]' "$log" || fail "the report shows no rejected answer"
grep -q "GET /chunks/${chunk0:0:2}/$chunk0" "$WORK/nginx2/access.log" ||
	fail "chunk 0 was not fetched from the good mirror"
echo "PASS"
