#!/bin/bash
# dracut module: a root filesystem served on demand by lazyroot.
#
#   dracut -a lazyroot [--kver VERSION | --no-kernel] initrd.img
#   kernel command line: root=lazyroot:URL[,URL...] rd.lazyroot.*=...
#
# Opt-in (check returns 255): dracut never adds it by itself. It installs
# the static lazyrootd, the trusted keys and the https CA bundle from the
# building system (dracut.conf variables, defaults below), the lazyroot hook
# shared with the busybox initramfs, a cmdline hook that claims
# root=lazyroot:, and the netroot handler /sbin/lazyrootroot that dracut's
# network layer calls once an interface is up. Works in the shell-based
# and the systemd-based dracut initrd alike (both run netroot handlers
# from the initqueue). docs/dracut.md has the details.
#
#   lazyroot_daemon="/usr/sbin/lazyrootd"        the static daemon
#   lazyroot_keys="/etc/lazyroot/keys"           *.pem: trusted signing keys
#   lazyroot_ca="/etc/lazyroot/ca.pem"           optional https CA bundle
# and, when present, /etc/lazyroot/channel (the only image channel this
# machine boots) and /etc/lazyroot/min-version (the oldest version).

# called by dracut
check() {
	return 255
}

# called by dracut
depends() {
	# shutdown: dracut's /shutdown, run from the kept initramfs at the end
	echo network shutdown
	return 0
}

# called by dracut
installkernel() {
	# The root's filesystem and its writable overlay, the cache
	# filesystem's RAM disk and ext4, cachefiles for that backend. Built-in
	# ones are skipped by instmods.
	hostonly='' instmods erofs overlay brd ext4 cachefiles netfs
}

# called by dracut
install() {
	local daemon=${lazyroot_daemon:-/usr/sbin/lazyrootd}
	local keys=${lazyroot_keys:-/etc/lazyroot/keys}
	local ca=${lazyroot_ca:-/etc/lazyroot/ca.pem}
	local k n=0

	if [[ ! -x $dracutsysrootdir$daemon ]]; then
		derror "lazyroot: no lazyrootd at $daemon (set lazyroot_daemon= in dracut.conf)"
		return 1
	fi
	inst_simple "$daemon" /sbin/lazyrootd
	ln_r /sbin/lazyrootd /sbin/@lazyrootd
	for k in "$dracutsysrootdir$keys"/*.pem; do
		[[ -r $k ]] || continue
		n=$((n + 1))
		inst_simple "${k#$dracutsysrootdir}" "/etc/lazyroot/keys/$n-${k##*/}"
	done
	if [[ $n -eq 0 ]]; then
		derror "lazyroot: no trusted keys in $keys/*.pem (set lazyroot_keys= in dracut.conf)"
		return 1
	fi
	[[ -r $dracutsysrootdir$ca ]] && inst_simple "$ca" /etc/lazyroot/ca.pem
	for k in channel min-version; do
		[[ -r $dracutsysrootdir/etc/lazyroot/$k ]] && inst_simple "/etc/lazyroot/$k"
	done
	inst_simple "$moddir/lazyroot.sh" /lib/lazyroot/lazyroot.sh
	inst_multiple mke2fs mount umount mkdir cat tail tr sleep setsid modprobe
	# a cache disk (rd.lazyroot.cache=DEV|LABEL=|UUID=): found, checked, set up
	inst_multiple -o e2fsck findfs od dd wc
	inst_hook cmdline 90 "$moddir/parse-lazyroot.sh"
	inst_script "$moddir/lazyrootroot.sh" /sbin/lazyrootroot
	inst_hook pre-pivot 99 "$moddir/lazyroot-exitrd.sh"
	dracut_need_initqueue
}
