#!/usr/bin/env bash
# The cache disk over six boots (test-cache-disk.sh) on Debian's own stock
# 7.x kernel: the fanotify backend makes its image file anew every boot and
# takes what it can from the store on the disk, verified again.
VM_KERNEL=debian exec "$(dirname "$0")/test-cache-disk.sh"
