#!/usr/bin/env bash
# Failures end in one clear console line and a reboot, never a hang:
#  1. no root=lazyroot: on the command line
#  2. a source without an image description
#  3. a RAM disk too small for a cache
# Each guest must name the cause and then end itself (reboot -f with
# QEMU's -no-reboot), well within the timeout.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_initramfs
VM_TIMEOUT=60

check() { # NAME APPEND EXPECTED-REGEX
	local log=$WORK/$1.log
	vm_boot "$log" "$2"
	if ! grep -qE "^lazyroot: FATAL: $3" "$log"; then
		vm_show "$log"
		fail "$1: expected a FATAL line matching /$3/"
	fi
	grep -qE '^lazyroot: rebooting' "$log" || fail "$1: no reboot announced"
	note "$1: $(grep -E '^lazyroot: FATAL' "$log" | head -n 1) (guest ended after ${BOOT_WALL}s)"
}

check no-root "brd.rd_size=65536" "no root=lazyroot:URL"
check no-desc "root=lazyroot:file:///proc brd.rd_size=65536" "lazyrootd could not serve file:///proc"
grep -q "lazyrootd: cannot read file:///proc/lazyroot.desc" "$WORK/no-desc.log" ||
	fail "no-desc: lazyrootd did not say which file it could not read"
check small-cache "root=lazyroot:file:///proc brd.rd_size=4096" "RAM disk is only 4096 KiB"
echo "PASS"
