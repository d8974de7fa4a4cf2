#!/bin/sh
# cmdline hook: claim root=lazyroot:URL[,URL...] for the netroot handler.
# Sourced by dracut; returns, never exits.

[ -z "$root" ] && root=$(getarg root=)
case $root in
lazyroot:*) ;;
*) return 0 ;;
esac

# dracut's network layer brings interfaces up when netroot is set, and
# calls /sbin/lazyrootroot (the "lazyroot" netroot type) on each.
netroot=$root
# Something that is not a block device, so no generator waits for it.
root=lazyroot
# shellcheck disable=SC2034  # read by dracut
rootok=1
# Done when the handler has mounted the root.
echo '[ -e /run/lazyroot/mounted ]' >"$hookdir"/initqueue/finished/lazyroot.sh
