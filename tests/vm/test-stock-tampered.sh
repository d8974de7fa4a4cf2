#!/usr/bin/env bash
# The tampered boot (test-boot-tampered.sh) on Debian's own stock 7.x kernel, unmodified:
# EROFS, virtio and the RAM disk come as modules from the initramfs, and
# lazyrootd serves the same signed image through fanotify pre-content
# events on a file-backed EROFS mount.
VM_KERNEL=debian exec "$(dirname "$0")/test-boot-tampered.sh"
