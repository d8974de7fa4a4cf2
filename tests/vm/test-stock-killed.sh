#!/usr/bin/env bash
# The killed-worker boot (test-boot-killed.sh) on Debian's own stock 7.x
# kernel, unmodified (fanotify backend): the supervisor keeps the fanotify
# group open and its journal tells the new worker what the dead one left.
VM_KERNEL=debian exec "$(dirname "$0")/test-boot-killed.sh"
