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
# row WHAT OUTCOME: one row of the fault and bad-input table
# (scripts/reliability collects them into docs/reliability.md).
row() { printf 'row: %s | %s\n' "$1" "$2"; }

# VM_KERNEL picks the guest kernel: "test" (default) is our 6.12 build with
# everything built in (cachefiles backend); "debian" is Debian's stock 7.x
# cloud kernel, unmodified (scripts/debian-kernel), whose drivers are
# modules the initramfs carries (fanotify backend); "debian-6.18" another
# Debian series.
VM_KERNEL=${VM_KERNEL:-test}
vm_require() {
	command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (scripts/setup)"
	MODULES=''
	case $VM_KERNEL in
	test)
		KDIR=$(kernel_dir) || skip "linux-source-6.12 not installed (scripts/setup)"
		[ -r "$KDIR/bzImage" ] || skip "test kernel not built (scripts/build-kernel)"
		KERNEL=$KDIR/bzImage
		VM_BACKEND=cachefiles
		;;
	debian | debian-*)
		local series=${VM_KERNEL#debian}
		series=${series#-}
		KDIR=$("$VM_TOP/scripts/debian-kernel" --series "${series:-7}" 2>/dev/null) ||
			skip "Debian's stock kernel (series ${series:-7}) could not be fetched (scripts/debian-kernel)"
		KERNEL=$KDIR/vmlinuz
		MODULES=$KDIR/modules/lib/modules/$(cat "$KDIR/abi")
		VM_BACKEND=fanotify
		note "kernel: Debian $(cat "$KDIR/abi") ($(grep -m1 linux-image "$KDIR/packages"))"
		;;
	*) fail "VM_KERNEL=$VM_KERNEL: test or debian" ;;
	esac
	DAEMON=$BUILD/static/fetcher/lazyrootd
	[ -x "$DAEMON" ] || skip "static lazyrootd not built (make static)"
	WORK=$(mktemp -d /tmp/lazyroot-vm.XXXXXX)
	chmod 0755 "$WORK" # nginx workers run as nobody and serve copies made here
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

# Fixtures below are shared by the tests of a run, and tests/run starts
# boot tests side by side: one builder at a time, and a test that finds a
# fixture finds it whole. Closing the descriptor (or exiting) unlocks.
vm_lock() {
	mkdir -p "$BUILD"
	exec 9>>"$BUILD/.vm-fixtures.lock"
	flock 9
}
vm_unlock() {
	exec 9>&-
}

# The published test image, built once per inputs and shared by the tests
# of a run: a signing key pair (and a second, untrusted one), the test root
# published as a signed chunk store in $FIX/pub. lz4-compressed, or with
# `vm_fixture none` uncompressed (its own fixture).
vm_fixture() {
	local key tool=$BUILD/host/image/lazyroot-image comp=${1:-lz4}
	[ -x "$tool" ] || skip "lazyroot-image not built (make host)"
	key=$(hash_inputs "$VM_TOP/tests/vm/make-test-root" "$tool" /bin/busybox)
	[ "$comp" = lz4 ] || key=$key-$comp
	FIX=$BUILD/vm-fixture/$key
	vm_lock
	if [ ! -s "$FIX/pub/lazyroot.manifest" ]; then
		rm -rf "$FIX"
		mkdir -p "$FIX"
		"$tool" keygen -q "$FIX/key.pem" "$FIX/pub.pem"
		"$tool" keygen -q "$FIX/other-key.pem" "$FIX/other-pub.pem"
		"$VM_TOP/tests/vm/make-test-root" "$FIX/root" 64
		"$tool" build -q --key "$FIX/key.pem" --version 1 --compress "$comp" \
			--keep-image "$FIX/image.erofs" "$FIX/root" "$FIX/pub.tmp"
		md5sum "$FIX/root/data/big.bin" | cut -d' ' -f1 >"$FIX/big.md5"
		md5sum "$FIX/root/data/other.bin" | cut -d' ' -f1 >"$FIX/other.md5"
		rm -rf "$FIX/root"
		mv "$FIX/pub.tmp" "$FIX/pub"
	fi
	vm_unlock
	IMAGE_SIZE=$(stat -c %s "$FIX/image.erofs")
	BIG_MD5=$(cat "$FIX/big.md5")
	OTHER_MD5=$(cat "$FIX/other.md5")
}

# The Debian systemd root (scripts/make-debian-root), with the test's own
# parts added, published signed in $DFIX/pub, once per inputs: lr-list,
# a marker unit that checks the booted system (tests/vm/debian-root-check),
# a user with a password (logins go through the setgid shadow helper).
# $DFIX/root.list is lr-list of the tree the image was built from.
vm_debian_fixture() {
	local tool=$BUILD/host/image/lazyroot-image base key
	[ -x "$tool" ] || skip "lazyroot-image not built (make host)"
	if [ ! -x "$BUILD/static/lr-list" ] || [ ! -x "$BUILD/host/lr-list" ]; then
		skip "lr-list not built (make build)"
	fi
	vm_lock
	base=$("$VM_TOP/scripts/make-debian-root" 2>/dev/null) ||
		skip "the Debian root could not be made (scripts/make-debian-root)"
	# A Debian root carries its kernel's modules: this one those of
	# Debian's stock 7.x kernel the stock-kernel tests boot (the test
	# kernel has everything built in).
	local dk
	dk=$("$VM_TOP/scripts/debian-kernel" 2>/dev/null) || dk=''
	key=$(echo "$base $dk" | cat - "$tool" "$BUILD/static/lr-list" "$VM_TOP/tests/vm/debian-root-check" \
		"$VM_TOP/tests/vm/lib.sh" | sha256sum | cut -c1-16)
	DFIX=$BUILD/vm-debian/$key
	if [ ! -s "$DFIX/pub/lazyroot.manifest" ]; then
		rm -rf "$BUILD/vm-debian"
		mkdir -p "$DFIX"
		cp -a "$base/root" "$DFIX/root"
		local r=$DFIX/root
		if [ -n "$dk" ]; then
			mkdir -p "$r/usr/lib/modules"
			cp -a "$dk"/modules/lib/modules/* "$r/usr/lib/modules/"
		fi
		install -m 0755 "$BUILD/static/lr-list" "$r/usr/local/sbin/lr-list"
		strip "$r/usr/local/sbin/lr-list"
		install -m 0755 "$VM_TOP/tests/vm/debian-root-check" "$r/usr/local/sbin/lazyroot-check"
		cat >"$r/etc/systemd/system/lazyroot-check.service" <<'UNIT'
[Unit]
Description=lazyroot boot test: the marker, then checks of the booted system
After=multi-user.target

[Service]
# simple: the boot is done when this starts, so the check can wait for
# the system's state
Type=simple
ExecStart=/usr/local/sbin/lazyroot-check
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
		ln -s /etc/systemd/system/lazyroot-check.service \
			"$r/etc/systemd/system/multi-user.target.wants/lazyroot-check.service"
		chroot "$r" useradd -m -s /bin/bash tester
		echo 'tester:lazyroot' | chroot "$r" chpasswd
		"$tool" keygen -q "$DFIX/key.pem" "$DFIX/pub.pem"
		"$tool" build -q --key "$DFIX/key.pem" --version 1 --keep-image "$DFIX/image.erofs" \
			"$r" "$DFIX/pub.tmp" || fail "publishing the Debian root failed"
		"$BUILD/host/lr-list" "$r" >"$DFIX/root.list" || fail "lr-list of the Debian root failed"
		mv "$DFIX/pub.tmp" "$DFIX/pub"
		cp "$DFIX/root.list" "$DFIX/pub/root.list"
		rm -rf "$r"
	fi
	vm_unlock
	IMAGE_SIZE=$(stat -c %s "$DFIX/image.erofs")
}

# vm_dracut_initramfs: an initramfs made by Debian's own dracut, run inside
# (a copy of) the Debian root, with the lazyroot dracut module
# (hooks/dracut/install), trusting $DFIX's key; for the test kernel
# (--no-kernel: everything is built in) or Debian's kernel (its modules).
# The systemd-based initrd, as Debian's dracut makes by default, with the
# network-legacy network layer. Cached in build/vm-dracut per inputs.
vm_dracut_initramfs() {
	local base key out r log
	vm_lock
	base=$("$VM_TOP/scripts/make-debian-root" 2>/dev/null) || skip "no Debian root (scripts/make-debian-root)"
	command -v unshare >/dev/null || skip "unshare missing (util-linux)"
	key=$( (echo "$base $VM_KERNEL $KDIR $*"; cat "$DAEMON" "$DFIX/pub.pem" "$VM_TOP"/hooks/lazyroot.sh \
		"$VM_TOP"/hooks/dracut/install "$VM_TOP"/hooks/dracut/95lazyroot/*) | sha256sum | cut -c1-16)
	out=$BUILD/vm-dracut/$key.img
	if [ ! -s "$out" ]; then
		r=$WORK/droot
		log=$WORK/dracut.log
		cp -a "$base/root" "$r"
		"$VM_TOP/hooks/dracut/install" "$r" --daemon "$DAEMON" --key "$DFIX/pub.pem" 2>>"$log" ||
			fail "installing the dracut module failed"
		local args=(--force --gzip --no-hostonly --no-hostonly-cmdline -a "lazyroot network-legacy"
			--omit plymouth "$@")
		if [ -n "$MODULES" ]; then
			mkdir -p "$r/lib/modules"
			cp -a "$MODULES" "$r/lib/modules/"
			args+=(--kver "$(basename "$MODULES")")
		else
			args+=(--no-kernel --kver 6.12.0-lazyroot-test)
		fi
		# A private mount namespace: /dev, /proc and /sys for the chroot go
		# away with it.
		# shellcheck disable=SC2016  # expanded by the inner bash
		unshare -m bash -c 'set -e; r=$1; shift
			mount --bind /dev "$r/dev"; mount -t proc proc "$r/proc"; mount -t sysfs sysfs "$r/sys"
			chroot "$r" dracut "$@" /tmp/initrd.img' - "$r" "${args[@]}" >>"$log" 2>&1 ||
			{ tail -n 30 "$log"; fail "dracut failed in the Debian root"; }
		mkdir -p "$BUILD/vm-dracut"
		cp "$r/tmp/initrd.img" "$out.tmp"
		mv "$out.tmp" "$out"
		# shellcheck disable=SC2016  # a dpkg-query format
		note "dracut $(chroot "$r" dpkg-query -W -f '${Version}' dracut) made $(stat -c %s "$out") bytes ($(grep -c . "$log") log lines)"
		rm -rf "$r"
	fi
	vm_unlock
	cp "$out" "$WORK/initrd.gz"
}

# An ext2 disk holding a published directory (the file:// source).
# vm_source_disk [DIR]   (default: the fixture's)
vm_source_disk() {
	local size_mib=$(( IMAGE_SIZE / 1048576 + 32 ))
	mke2fs -q -t ext2 -d "${1:-$FIX/pub}" "$WORK/src.img" "${size_mib}M" >/dev/null 2>&1 ||
		fail "mke2fs of the source disk failed"
}

# vm_initramfs [initramfs/build options]  (default: trust the fixture key)
vm_initramfs() {
	[ $# -gt 0 ] || set -- --key "$FIX/pub.pem"
	[ -z "$MODULES" ] || set -- "$@" --kernel-modules "$MODULES"
	"$VM_TOP/initramfs/build" --daemon "$DAEMON" "$@" "$WORK/initrd.gz" 2>"$WORK/initramfs.log" ||
		{ cat "$WORK/initramfs.log"; fail "initramfs build failed"; }
}

# shellcheck source=scripts/servers.sh
. "$VM_TOP/scripts/servers.sh"

free_port() {
	lr_free_port || fail "no free port"
}

# start_nginx DIR [N]: serve DIR on 127.0.0.1:$HTTP_PORT (http) and
# $HTTPS_PORT (https for lazyroot.test, CA in $WORK/ca.pem); state in
# $WORK/nginxN. Stopped by vm_cleanup.
start_nginx() {
	local n=${2:-1}
	command -v nginx >/dev/null || skip "nginx not installed (scripts/setup)"
	lr_test_ca "$WORK" || fail "cannot make the test CA"
	mkdir -p "$WORK/nginx$n"
	cp "$WORK"/ca.pem "$WORK"/server.pem "$WORK"/server.key "$WORK/nginx$n/"
	lr_nginx_start "$1" "$WORK/nginx$n" || fail "nginx did not start"
	VM_PIDS="${VM_PIDS:-} $NGINX_PID"
}

fwd() {
	lr_fwd "$@"
}

# when_guest_says LOG TEXT CMD...: in the background, run CMD once a line
# starting with "lazyroot-test: TEXT" appears on LOG (bounded by the guest
# timeout).
when_guest_says() {
	local logf=$1 text=$2
	shift 2
	(
		for _ in $(seq $((VM_TIMEOUT * 2))); do
			if grep -q "^lazyroot-test: $text" "$logf" 2>/dev/null; then
				"$@"
				exit 0
			fi
			sleep 0.5
		done
	) &
	VM_PIDS="${VM_PIDS:-} $!"
}

# stop_nginx_when LOG: stop our nginx ($NGINX_PID) once the guest prints
# "lazyroot-test: stop the mirror now" on LOG.
stop_nginx_when() {
	when_guest_says "$1" 'stop the mirror now' kill "$NGINX_PID"
}

# start_fault_proxy UPSTREAM_PORT: tests/tools/fault-proxy on $PROXY_PORT
# in front of 127.0.0.1:UPSTREAM_PORT, following the rules in
# $PROXY_RULES (empty: every answer passes), counting in $PROXY_STATS.
start_fault_proxy() {
	PROXY_PORT=$(free_port)
	PROXY_RULES=$WORK/proxy.rules PROXY_STATS=$WORK/proxy.stats
	: >"$PROXY_RULES"
	"$VM_TOP/tests/tools/fault-proxy" --listen "$PROXY_PORT" --upstream "$1" \
		--rules "$PROXY_RULES" --stats "$PROXY_STATS" --lifetime $((VM_TIMEOUT * 6)) &
	VM_PIDS="${VM_PIDS:-} $!"
	for _ in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	fail "the fault proxy did not start"
}

# vm_boot LOG APPEND [run-qemu args...]: boot, wait for the guest to end.
vm_boot() {
	local logf=$1 append=$2
	shift 2
	local start end rc=0
	start=$(date +%s.%N)
	local stop=()
	[ -z "${VM_STOP_ON:-}" ] || stop=(--stop-on "$VM_STOP_ON")
	"$VM_TOP/scripts/run-qemu" --kernel "$KERNEL" --initrd "$WORK/initrd.gz" \
		--append "$append" --timeout "$VM_TIMEOUT" --log "$logf" "${stop[@]}" "$@" >/dev/null 2>&1 || rc=$?
	end=$(date +%s.%N)
	BOOT_WALL=$(echo "$end - $start" | bc)
	[ $rc -ne 124 ] || { vm_show "$logf"; fail "guest did not finish within ${VM_TIMEOUT}s"; }
	[ $rc -ne 125 ] || { tail -n 40 "$logf"; fail "the guest could not go on (its console matched /$VM_STOP_ON/)"; }
	return 0
}

# The lines of a serial log worth keeping in a CI log.
vm_show() {
	grep -E '^lazyroot|lazyrootd|FATAL|Kernel panic|erofs|CacheFiles|tainting' "$1" | sed 's/^/  | /' || true
}

# check_boot LOG: the common assertions of a successful boot; prints the
# figures (share requested and fetched before switch_root, boot times).
# Fails when more than 10% of the image crossed the network before
# switch_root.
check_boot() {
	local log=$1 line req size recv requests t_init t_root t_new
	! grep -q FATAL "$log" || { vm_show "$log"; fail "the hook reported a fatal error"; }
	expect "$log" "^lazyroot: lazyrootd ready \\($VM_BACKEND backend\\)" "lazyrootd did not use the $VM_BACKEND backend"
	expect "$log" '^lazyroot-test: new root init running' "new root's init did not run"
	expect "$log" '^lazyroot-test: lazyrootd argv0 @lazyrootd' "lazyrootd not running as @lazyrootd after switch_root"
	expect "$log" '^lazyroot-test: worker [0-9]+ uid: 85074 capeff: 0+ nonewprivs: 1 seccomp: 2' \
		"lazyrootd's worker is not sandboxed (uid 85074, no capabilities, no_new_privs, seccomp)"
	expect "$log" "^lazyroot-test: big.bin md5 $BIG_MD5" "file first read after switch_root not served intact"
	expect "$log" '^lazyroot-test: DONE' "new root's init did not finish"
	line=$(grep -E '^lazyroot: before switch_root: kernel requested' "$log") ||
		fail "no before-switch_root report"
	req=$(echo "$line" | sed -E 's/.*requested ([0-9]+) of.*/\1/')
	size=$(echo "$line" | sed -E 's/.*requested [0-9]+ of ([0-9]+) bytes.*/\1/')
	recv=$(echo "$line" | sed -E 's/.*; fetched ([0-9]+) bytes.*/\1/')
	requests=$(echo "$line" | sed -E 's/.* in ([0-9]+) requests.*/\1/')
	[ "$size" = "$IMAGE_SIZE" ] || fail "report says image of $size bytes, the image has $IMAGE_SIZE"
	t_init=$(sed -nE 's/^lazyroot: initramfs started at t=([0-9.]+)s.*/\1/p' "$log")
	t_root=$(sed -nE 's/^lazyroot: root mounted .* at t=([0-9.]+)s.*/\1/p' "$log")
	T_ROOT_MOUNTED=$(echo "$t_root - $t_init" | bc)
	FETCHED_BEFORE=$recv
	t_new=$(sed -nE 's/^lazyroot-test: new root init running .* at t=([0-9.]+)s.*/\1/p' "$log")
	note "image $size bytes; before switch_root: kernel requested $req ($(echo "scale=2; $req * 100 / $size" | bc)%), fetched $recv ($(echo "scale=2; $recv * 100 / $size" | bc)%) in $requests requests"
	note "guest clock: initramfs at ${t_init}s, root mounted at ${t_root}s (+${T_ROOT_MOUNTED}s), new init at ${t_new}s; wall ${BOOT_WALL}s (TCG)"
	note "backend $VM_BACKEND, kernel $VM_KERNEL: initramfs start -> root mounted ${T_ROOT_MOUNTED}s, fetched before switch_root $recv bytes"
	note "$(sed -nE 's/^lazyroot-test: (lazyrootd VmRSS.*)/\1/p' "$log")"
	[ $((recv * 10)) -le "$size" ] || fail "fetched more than 10% of the image before switch_root"
	[ $((req * 10)) -le "$size" ] || fail "kernel asked for more than 10% of the image before switch_root"
}

# Console lines after which a Debian boot cannot succeed: the test ends at
# once instead of at its timeout.
VM_DEBIAN_STOP='Freezing execution|Kernel panic|You are in emergency mode|Entering emergency mode|dracut: FATAL|lazyroot: FATAL'

# check_debian_boot LOG: the Debian root booted, its checks passed, the
# image's listing equals the source tree's, and it powered off cleanly.
# Prints the figures: time to the marker, bytes before switch_root and at
# the marker.
check_debian_boot() {
	local log=$1 t_init t_root t_marker line
	tr -d '\r' <"$log" >"$log.txt"
	grep -E '^lazyroot|lazyroot-check:|FATAL|Kernel panic|Failed|failed|rror' "$log.txt" | grep -v 'lr-list:' |
		sed 's/^/  | /' | head -n 80
	! grep -q FATAL "$log.txt" || fail "the hook reported a fatal error"
	expect "$log.txt" 'lazyroot-check: marker reached' "the marker unit did not run (systemd did not reach multi-user)"
	expect "$log.txt" 'lazyroot-check: init: (/usr)?/lib/systemd/systemd' "PID 1 is not systemd"
	expect "$log.txt" 'lazyroot-check: system state: (running|degraded)' "systemd is not running"
	! grep -q 'lazyroot-check: failed unit' "$log.txt" || fail "units failed"
	expect "$log.txt" 'lazyroot-check: journal: ok' "journald does not work"
	expect "$log.txt" 'lazyroot-check: login: ok' "a password check as the user failed (shadow group lost?)"
	! grep -q 'a wrong password was accepted' "$log.txt" || fail "a wrong password was accepted"
	expect "$log.txt" 'lazyroot-check: listing compared: [0-9]+ source entries, 0 differing lines' \
		"the booted image's listing differs from the source tree's"
	expect "$log.txt" 'lr-list exit 0, 0 errors' "reading the image in the guest gave errors"
	expect "$log.txt" 'lazyroot-check: lazyrootd processes: [12]' "lazyrootd did not survive switch_root"
	expect "$log.txt" 'reboot: Power down' "the guest did not power off"
	! grep -qE 'Failed to (unmount|deactivate|finalize)|not all.*unmounted|Not all file systems unmounted' "$log.txt" ||
		fail "the shutdown was not clean"
	# systemd-shutdown signals the worker (not root: not spared); it must
	# not wait for it (it waited 90 s, then 10 s more after SIGKILL).
	! grep -qE 'Waiting for process: [0-9]+ \(lazyrootd\)' "$log.txt" ||
		fail "systemd-shutdown waited for lazyrootd"
	local t_off t_down
	t_off=$(sed -nE 's/.*lazyroot-check: done at t=([0-9.]+)s.*/\1/p' "$log.txt")
	t_down=$(sed -nE 's/^\[ *([0-9.]+)\] reboot: Power down.*/\1/p' "$log.txt")
	# The kernel's own line, the same for every initramfs flavour.
	t_init=$(sed -nE 's/^\[ *([0-9.]+)\] Run \/init as init process.*/\1/p' "$log.txt" | head -n 1)
	t_root=$(sed -nE 's/^lazyroot: root mounted .* at t=([0-9.]+)s.*/\1/p' "$log.txt")
	t_marker=$(sed -nE 's/.*lazyroot-check: marker reached at t=([0-9.]+)s.*/\1/p' "$log.txt")
	line=$(grep -E '^lazyroot: before switch_root' "$log.txt")
	note "image $IMAGE_SIZE bytes; $(echo "$line" | sed -E 's/.*(kernel requested [0-9]+).*(fetched [0-9]+ bytes [^;]*).*/\1, \2/')"
	note "guest clock: initramfs start -> root mounted $(echo "$t_root - $t_init" | bc)s, -> marker unit $(echo "$t_marker - $t_init" | bc)s"
	note "$(sed -nE 's/.*lazyroot-check: (lazyrootd before the listing: .*)/\1/p' "$log.txt")(at the marker)"
	note "$(sed -nE 's/.*lazyroot-check: (listed .*)/\1/p' "$log.txt")"
	note "$(sed -nE 's/.*lazyroot-check: (lazyrootd after the listing: .*)/\1/p' "$log.txt")"
	note "shutdown: poweroff asked at t=${t_off}s, power down at t=${t_down}s"
}

# expect LOG REGEX WHAT
expect() {
	grep -qE "$2" "$1" || { vm_show "$1"; fail "$3 (no line matching /$2/ on the console)"; }
}
