#!/bin/sh
# dracut netroot handler: /sbin/lazyrootroot NETIF NETROOT NEWROOT, called
# by dracut's network layer (netroot) once NETIF is up. Mounts the root
# served by lazyrootd at NEWROOT; dracut switches to it.
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin

[ -e /run/lazyroot/mounted ] && exit 0 # a second interface: done already
case $2 in
lazyroot:*) ;;
*) exit 0 ;;
esac
# shellcheck source=hooks/lazyroot.sh
. /lib/lazyroot/lazyroot.sh
lazyroot_netroot "$1" "$2" "${3:-$NEWROOT}"
exit 0
