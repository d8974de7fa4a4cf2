#!/usr/bin/env bash
# A real OS: the Debian 12 systemd root (scripts/make-debian-root) served on
# demand over HTTP and booted with lazyroot's busybox initramfs, systemd as
# init, a tmpfs overlay for writable state. The root's marker unit checks
# the system (state, journald, logins through the setgid shadow helper),
# lists the whole image as the kernel serves it (content, owner, mode,
# xattrs, mtime of every entry) and compares it with the source tree's
# listing, then powers off: the shutdown must be clean.
# vm-slow: minutes (tests/run starts it first)
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_debian_fixture
start_nginx "$DFIX/pub"
vm_initramfs --key "$DFIX/pub.pem"
log=$WORK/serial.log
VM_STOP_ON=$VM_DEBIAN_STOP VM_TIMEOUT=${VM_TIMEOUT_DEBIAN:-420} vm_boot "$log" \
	"root=lazyroot:http://10.0.2.100/ rd.lazyroot.overlay=tmpfs brd.rd_size=393216" \
	--mem 1536 --guestfwd "$(fwd 10.0.2.100 80 "$HTTP_PORT")"
check_debian_boot "$log"
# systemd-shutdown pivoted into the exit initramfs the hook left in
# /run/initramfs, which detached the root before stopping lazyrootd.
expect "$log.txt" 'lazyroot: shutdown: root detached, lazyrootd stopped, [0-9]+ mounts left; poweroff' \
	"the exit initramfs did not detach the root"
echo "PASS"
