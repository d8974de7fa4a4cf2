#!/usr/bin/env bash
# A Debian kernel, Debian's dracut and a Debian root, with nothing built
# here but lazyroot: Debian's stock 7.x kernel boots the Debian systemd root
# through an initramfs made by Debian's dracut with the lazyroot module
# (test-debian-dracut.sh on the test kernel), fanotify backend.
# vm-slow: minutes (tests/run starts it first)
VM_KERNEL=debian exec "$(dirname "$0")/test-debian-dracut.sh"
