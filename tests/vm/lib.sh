# shellcheck shell=bash
# shellcheck disable=SC2034,SC2120  # sets variables for its callers; optional args
# Shared helpers for the QEMU boot tests. Sourced by tests/vm/test-*.sh.
# A test that cannot run here (no kernel, no QEMU) exits 77: a skip, said
# loudly, never a pass.

set -euo pipefail
VM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib.sh
. "$VM_TOP/scripts/lib.sh"
BUILD=${BUILD:-$VM_TOP/build}
# Boot tests under TCG take a few seconds each; this bounds a hung guest.
VM_TIMEOUT=${VM_TIMEOUT:-180}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
note() { echo "  $*"; }

vm_require() {
	command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (scripts/setup)"
	KDIR=$(kernel_dir) || skip "linux-source-6.12 not installed (scripts/setup)"
	[ -r "$KDIR/bzImage" ] || skip "test kernel not built (scripts/build-kernel)"
	DAEMON=$BUILD/static/fetcher/lazyrootd
	[ -x "$DAEMON" ] || skip "static lazyrootd not built (make static)"
	WORK=$(mktemp -d /tmp/lazyroot-vm.XXXXXX)
	trap 'vm_cleanup' EXIT
}

vm_cleanup() {
	local pid
	for pid in ${VM_PIDS:-}; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}

# The published test image, built once per inputs and shared by the tests
# of a run (mkfs.erofs of 64 MiB takes a while under lz4).
vm_fixture() {
	local key
	key=$(hash_inputs "$VM_TOP/tests/vm/make-test-root" "$VM_TOP/image/lazyroot-image" /bin/busybox)
	FIX=$BUILD/vm-fixture/$key
	if [ ! -s "$FIX/pub/lazyroot.desc" ]; then
		rm -rf "$FIX"
		mkdir -p "$FIX"
		"$VM_TOP/tests/vm/make-test-root" "$FIX/root" 64
		"$VM_TOP/image/lazyroot-image" build --compress lz4 "$FIX/root" "$FIX/pub.tmp" 2>/dev/null
		md5sum "$FIX/root/data/big.bin" | cut -d' ' -f1 >"$FIX/big.md5"
		rm -rf "$FIX/root"
		mv "$FIX/pub.tmp" "$FIX/pub"
	fi
	IMAGE_SIZE=$(stat -c %s "$FIX/pub/image.erofs")
	BIG_MD5=$(cat "$FIX/big.md5")
}

# An ext2 disk holding the published directory (the file:// source).
vm_source_disk() {
	local size_mib=$(( IMAGE_SIZE / 1048576 + 16 ))
	mke2fs -q -t ext2 -d "$FIX/pub" "$WORK/src.img" "${size_mib}M" >/dev/null 2>&1 || fail "mke2fs of the source disk failed"
}

vm_initramfs() {
	"$VM_TOP/initramfs/build" --daemon "$DAEMON" "$@" "$WORK/initrd.gz" 2>/dev/null
}

# vm_boot LOG APPEND [run-qemu args...]: boot, wait for the guest to end.
vm_boot() {
	local logf=$1 append=$2
	shift 2
	local start end rc=0
	start=$(date +%s.%N)
	"$VM_TOP/scripts/run-qemu" --kernel "$KDIR/bzImage" --initrd "$WORK/initrd.gz" \
		--append "$append" --timeout "$VM_TIMEOUT" --log "$logf" "$@" >/dev/null 2>&1 || rc=$?
	end=$(date +%s.%N)
	BOOT_WALL=$(echo "$end - $start" | bc)
	[ $rc -ne 124 ] || { vm_show "$logf"; fail "guest did not finish within ${VM_TIMEOUT}s"; }
	return 0
}

# The lines of a serial log worth keeping in a CI log.
vm_show() {
	grep -E '^lazyroot|lazyrootd:|FATAL|Kernel panic|erofs:|CacheFiles' "$1" | sed 's/^/  | /' || true
}

# expect LOG REGEX WHAT
expect() {
	grep -qE "$2" "$1" || { vm_show "$1"; fail "$3 (no line matching /$2/ on the console)"; }
}
