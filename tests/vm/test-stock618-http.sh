#!/usr/bin/env bash
# The HTTP boot on Debian's stock 6.18 kernel (trixie-backports), whose
# file-backed EROFS reads metadata (superblock, inodes, inline data) from
# the page cache without fanotify events: lazyrootd must find that out
# (its probe) and write the image's metadata, from the signed metadata
# map, before the mount; data still comes on demand.
VM_KERNEL=debian-6.18 exec "$(dirname "$0")/test-boot-http.sh"
