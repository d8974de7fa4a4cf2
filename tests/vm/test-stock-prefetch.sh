#!/usr/bin/env bash
# Prefetch to completion, then offline (test-prefetch.sh), on Debian's own
# stock 7.x kernel: the fanotify backend keeps prefetched chunks in the
# sparse image file itself.
VM_KERNEL=debian exec "$(dirname "$0")/test-prefetch.sh"
