#!/bin/sh
# pre-pivot hook: keep this initramfs in /run/initramfs. At shutdown
# systemd pivots back into it and runs dracut's /shutdown, which detaches the
# root lazyrootd serves and only then ends lazyrootd. (dracut's own way,
# dracut-initramfs-restore, unpacks the initrd from /boot, which a network
# root does not have; it does nothing when /run/initramfs is in place.)
# Sourced by dracut; returns, never exits.
[ -e /run/lazyroot/mounted ] || return 0
# About to pivot: the boot's own reads are done, lazyrootd may fetch ahead
# (not while recording a boot-order list: lazyroot.sh's lr_booted).
if ! grep -qw 'rd.lazyroot.record' /proc/cmdline; then
	lazyrootd booted --tag lazyroot 2>/dev/null || warn "lazyroot: lazyrootd did not take 'booted'"
fi
[ -x /run/initramfs/bin/sh ] && return 0
mkdir -p /run/initramfs
for d in /*; do
	case $d in
	/proc | /sys | /dev | /run | /sysroot | /tmp) mkdir -p "/run/initramfs$d" ;;
	*) cp -a "$d" /run/initramfs/ 2>/dev/null || warn "lazyroot: could not keep $d for shutdown" ;;
	esac
done
