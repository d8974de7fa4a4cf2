#!/usr/bin/env bash
# Boot from nginx over HTTPS: the server's certificate (for lazyroot.test)
# comes from a CA made for this test and placed in the initramfs; the name
# is pinned to the guestfwd address with rd.lazyroot.resolve.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
start_nginx "$FIX/pub"
vm_initramfs --key "$FIX/pub.pem" --ca "$WORK/ca.pem"
log=$WORK/serial.log
vm_boot "$log" "root=lazyroot:https://lazyroot.test/ rd.lazyroot.resolve=lazyroot.test:443:10.0.2.100 brd.rd_size=131072" \
	--guestfwd "$(fwd 10.0.2.100 443 "$HTTPS_PORT")"
vm_show "$log"
check_boot "$log"
! grep -q 'NOT verified' "$log" || fail "certificate verification was off"
echo "PASS"
