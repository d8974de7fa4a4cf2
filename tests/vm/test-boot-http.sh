#!/usr/bin/env bash
# Boot the test root from nginx over HTTP on 127.0.0.1, reached by the
# guest (restricted user networking, DHCP) at 10.0.2.100:80 through
# guestfwd. Same assertions as the file boot, plus the network share.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
start_nginx "$FIX/pub"
vm_initramfs
log=$WORK/serial.log
vm_boot "$log" "root=lazyroot:http://10.0.2.100/ brd.rd_size=131072" \
	--guestfwd "$(fwd 10.0.2.100 80 "$HTTP_PORT")"
vm_show "$log"
check_boot "$log"
expect "$log" '^lazyroot: dhcp: ' "no DHCP lease line"
note "nginx served $(wc -l <"$WORK/nginx1/access.log") requests in this boot (all of them, after switch_root too)"
echo "PASS"
