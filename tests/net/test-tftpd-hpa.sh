#!/usr/bin/env bash
# lazyrootd's transport fetches and verifies the whole test image from
# tftpd-hpa on 127.0.0.1. (A guest on restricted user networking cannot
# reach a host UDP server: guestfwd carries TCP only, so TFTP boot tests
# use QEMU's built-in tftp=, and tftpd-hpa is checked here.)
# shellcheck source=tests/net/lib.sh
. "$(dirname "$0")/lib.sh"
command -v in.tftpd >/dev/null || skip "tftpd-hpa not installed (scripts/setup)"
net_require
vm_fixture
port=$(free_port)
in.tftpd --foreground --listen --address "127.0.0.1:$port" --secure --blocksize 1468 \
	--user "$(id -un)" "$FIX/pub" >"$WORK/tftpd.log" 2>&1 &
VM_PIDS="$!"
sleep 0.3
kill -0 "$VM_PIDS" 2>/dev/null || { cat "$WORK/tftpd.log"; fail "tftpd-hpa did not start"; }
verify_source "tftp://127.0.0.1:$port"
echo "PASS"
