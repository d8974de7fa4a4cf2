# shellcheck shell=sh
# lazyroot init hook: mount a root filesystem served on demand by lazyrootd.
# POSIX sh, sourced by two initramfs flavours:
#  - the busybox /init (initramfs/init) calls lazyroot_main, which does it
#    all, network and switch_root included;
#  - dracut (hooks/dracut/95lazyroot) calls lazyroot_netroot from its
#    netroot handler once the network is up, and switches root itself.
# Every failure ends in lr_fail: one console line naming the cause, then an
# emergency shell (rd.shell) or a reboot (busybox) or dracut's own
# emergency handling, never a silent hang.
#
# Kernel command line keys: docs/cmdline.md has the full table.
# Trusted keys are the initramfs's /etc/lazyroot/keys/*.pem (never the
# command line); /etc/lazyroot/ca.pem, when present, is the https CA bundle.

LR_RUN=/run/lazyroot
LR_NEWROOT=/newroot
LR_TAG=lazyroot

lr_log() {
	echo "lazyroot: $*" >/dev/console
}

lr_uptime() {
	read -r up _ </proc/uptime
	echo "$up"
}

# rd.lazyroot.debug: when each step of the hook ended (scripts/boot-timeline).
lr_trace() {
	[ -z "${lr_debug:-}" ] || lr_log "step: $* at t=$(lr_uptime)s"
}

lr_shell() {
	lr_log "starting a shell; exit it to continue"
	setsid sh -c 'exec sh </dev/console >/dev/console 2>&1'
}

lr_fail() {
	if [ -n "${LR_BG:-}" ]; then
		# A step run in the background (lr_bg): its waiter fails for it.
		echo "$*" >"$LR_RUN/$LR_BG.fail"
		exit 1
	fi
	lr_log "FATAL: $*"
	if [ -n "${LR_DRACUT:-}" ]; then
		# dracut's die: its emergency shell (rd.shell) or a halt
		die "lazyroot: $*"
		exit 1
	fi
	if [ -n "$lr_rdshell" ]; then
		lr_shell
		lr_log "shell exited after a fatal error: rebooting"
	else
		lr_log "rebooting in ${lr_faildelay:-5} s (add rd.shell to the kernel command line for a shell)"
		sleep "${lr_faildelay:-5}"
	fi
	reboot -f
	exit 1
}

# lr_bg NAME FUNCTION: run a step in the background while the next one
# runs (under emulation the RAM disk's mke2fs and mount took 0.15 s and DHCP
# 0.25 s, one after the other); lr_wait NAME waits for it, and fails with
# its reason when it failed.
lr_bg() {
	rm -f "$LR_RUN/$1.fail"
	(
		LR_BG=$1
		"$2"
	) &
	eval "lr_pid_$1=\$!"
}

lr_wait() {
	eval "pid=\${lr_pid_$1:-}"
	[ -n "$pid" ] || return 0
	eval "lr_pid_$1="
	wait "$pid" && return 0
	lr_fail "$(cat "$LR_RUN/$1.fail" 2>/dev/null || echo "$1 failed")"
}

lr_parse_cmdline() {
	lr_url='' lr_srcdev='' lr_cache=ram lr_overlay='' lr_debug='' lr_init=/sbin/init
	lr_rdshell='' lr_rdbreak='' lr_ip='' lr_minver='' lr_insecure='' lr_resolve=''
	lr_timeout='' lr_faildelay=5 lr_backend=auto lr_metadata=auto lr_prefetch=on lr_store=
	lr_record=''
	lr_srcfs=ext4 lr_bootif=''
	read -r cmdline </proc/cmdline
	# Split on blanks, never glob: a '*' or '?' on the command line is a
	# character of a value, not a pattern matched against init's files.
	set -f
	for arg in $cmdline; do
		case $arg in
		root=lazyroot:*) lr_url=${arg#root=lazyroot:} ;;
		rd.lazyroot.srcdev=*) lr_srcdev=${arg#*=} ;;
		rd.lazyroot.srcfstype=*) lr_srcfs=${arg#*=} ;;
		BOOTIF=*)
			# pxelinux/iPXE: 01-aa-bb-cc-dd-ee-ff (01: Ethernet)
			lr_bootif=$(echo "${arg#BOOTIF=01-}" | tr 'A-F-' 'a-f:') ;;
		rd.lazyroot.cache=*) lr_cache=${arg#*=} ;;
		rd.lazyroot.overlay=*) lr_overlay=${arg#*=} ;;
		rd.lazyroot.debug) lr_debug=1 ;;
		rd.lazyroot.minversion=*) lr_minver=${arg#*=} ;;
		rd.lazyroot.insecure) lr_insecure=1 ;;
		rd.lazyroot.resolve=*) lr_resolve="$lr_resolve ${arg#*=}" ;;
		rd.lazyroot.timeout=*) lr_timeout=${arg#*=} ;;
		rd.lazyroot.faildelay=*) lr_faildelay=${arg#*=} ;;
		rd.lazyroot.backend=*) lr_backend=${arg#*=} ;;
		rd.lazyroot.metadata=*) lr_metadata=${arg#*=} ;;
		rd.lazyroot.prefetch=*) lr_prefetch=${arg#*=} ;;
		rd.lazyroot.record) lr_record=1 ;;
		ip=*) lr_ip=${arg#ip=} ;;
		init=*) lr_init=${arg#init=} ;;
		rd.shell) lr_rdshell=1 ;;
		rd.break) lr_rdbreak=1 ;;
		esac
	done
	set +f
	[ -n "$lr_url" ] || lr_fail "no root=lazyroot:URL on the kernel command line"
	case $lr_srcfs in
	''|*[!a-z0-9]*) lr_fail "rd.lazyroot.srcfstype=$lr_srcfs: a file system type such as ext4, vfat or iso9660" ;;
	esac
	case $lr_overlay in
	""|none|tmpfs) ;;
	*) lr_fail "rd.lazyroot.overlay=$lr_overlay: only 'tmpfs' or 'none' are known" ;;
	esac
	case $lr_backend in
	auto|cachefiles|fanotify) ;;
	*) lr_fail "rd.lazyroot.backend=$lr_backend: use auto, cachefiles or fanotify" ;;
	esac
	case $lr_metadata in
	auto|prefill|lazy) ;;
	*) lr_fail "rd.lazyroot.metadata=$lr_metadata: use auto, prefill or lazy" ;;
	esac
	case $lr_prefetch in
	on|off) ;;
	*[0-9]|*[0-9][KMG])
		case ${lr_prefetch%[KMG]} in
		*[!0-9]*) lr_fail "rd.lazyroot.prefetch=$lr_prefetch: use on, off or a rate in bytes/s (e.g. 20M)" ;;
		esac ;;
	*) lr_fail "rd.lazyroot.prefetch=$lr_prefetch: use on, off or a rate in bytes/s (e.g. 20M)" ;;
	esac
	case $lr_minver in
	""|*[!0-9]*) [ -z "$lr_minver" ] || lr_fail "rd.lazyroot.minversion=$lr_minver is not a number" ;;
	esac
}

# Dotted netmask (or a prefix length) to a prefix length.
lr_prefixlen() {
	case $1 in
	*.*) ;;
	*) echo "$1"; return ;;
	esac
	n=0
	for o in $(echo "$1" | tr . ' '); do
		case $o in
		255) n=$((n + 8)) ;; 254) n=$((n + 7)) ;; 252) n=$((n + 6)) ;;
		248) n=$((n + 5)) ;; 240) n=$((n + 4)) ;; 224) n=$((n + 3)) ;;
		192) n=$((n + 2)) ;; 128) n=$((n + 1)) ;;
		esac
	done
	echo "$n"
}

# The interface to use when ip= names none: the one whose MAC the PXE
# firmware booted from (BOOTIF=01-aa-bb-cc-dd-ee-ff), else the first
# hardware NIC (one with a device: no bridges, bonds or tunnels) that has
# a carrier, else the first hardware NIC. NICs appear and links come up
# asynchronously: up to 10 s.
lr_pick_iface() {
	i=0 first=''
	while [ $i -lt 100 ]; do
		for d in /sys/class/net/*; do
			n=${d##*/}
			if [ "$n" = lo ] || [ ! -e "$d/device" ]; then
				continue
			fi
			if [ -n "$lr_bootif" ]; then
				[ "$(cat "$d/address" 2>/dev/null)" != "$lr_bootif" ] || { iface=$n; return 0; }
				continue
			fi
			[ -n "$first" ] || first=$n
			ip link set "$n" up 2>/dev/null
			[ "$(cat "$d/carrier" 2>/dev/null)" != 1 ] || { iface=$n; return 0; }
		done
		sleep 0.1
		i=$((i + 1))
	done
	[ -z "$lr_bootif" ] || lr_fail "no interface with the MAC address BOOTIF names ($lr_bootif) within 10 s"
	iface=$first
	[ -z "$iface" ] || lr_log "no carrier on any interface within 10 s: trying $iface"
}

# Bring the network up when a mirror needs it: ip=dhcp (the default) or the
# kernel's static form ip=CLIENT::GATEWAY:NETMASK::IFACE:off.
lr_network() {
	case $lr_url in
	*http://* | *https://* | *tftp://*) ;;
	*) return 0 ;;
	esac
	ip link set lo up
	old_ifs=$IFS
	IFS=:
	# shellcheck disable=SC2086  # split ip= on colons
	set -- $lr_ip
	IFS=$old_ifs
	client=${1:-} gw=${3:-} mask=${4:-} iface=${6:-}
	[ -n "$iface" ] || lr_pick_iface
	[ -n "$iface" ] || lr_fail "no network interface appeared within 10 s (a mirror is $lr_url)"
	ip link set "$iface" up || lr_fail "cannot bring $iface up"
	case $client in
	"" | dhcp | on | any)
		udhcpc -i "$iface" -n -q -t 5 -T 2 -s /lib/lazyroot/udhcpc.script >/dev/null 2>&1 ||
			lr_fail "no DHCP lease on $iface (set ip=CLIENT::GATEWAY:NETMASK::IFACE:off for a static address)"
		;;
	*)
		ip addr add "$client/$(lr_prefixlen "${mask:-24}")" dev "$iface" ||
			lr_fail "cannot set address $client on $iface"
		[ -z "$gw" ] || ip route add default via "$gw" dev "$iface" ||
			lr_fail "cannot add the default route via $gw"
		lr_log "network: $iface $client gateway ${gw:-none}"
		;;
	esac
}

# Kernel modules the initramfs carries (initramfs/build --kernel-modules),
# in dependency order. Parameters come from the command line as for
# modprobe: brd.rd_size=N becomes insmod brd.ko rd_size=N.
lr_load_modules() {
	mkdir -p "$LR_RUN"
	if [ ! -r /lib/lazyroot/modules.load ]; then
		# dracut: modprobe, which takes MODULE.PARAM= from the command line
		# itself; built-in drivers make these no-ops.
		if command -v modprobe >/dev/null 2>&1; then
			modprobe -q -a erofs overlay brd cachefiles 2>/dev/null || true
		fi
		return 0
	fi
	read -r cmdline </proc/cmdline
	n=0
	while read -r ko; do
		m=${ko##*/}
		m=${m%.ko}
		[ -d "/sys/module/$m" ] && continue
		set --
		for arg in $cmdline; do
			case $arg in
			"$m".*=*) set -- "$@" "${arg#"$m".}" ;;
			esac
		done
		if insmod "$ko" "$@" 2>"$LR_RUN/insmod.err"; then
			n=$((n + 1))
		else
			lr_log "warning: cannot load module $m: $(cat "$LR_RUN/insmod.err")"
		fi
	done </lib/lazyroot/modules.load
	lr_log "loaded $n kernel modules at t=$(lr_uptime)s"
}

lr_mount_srcdev() {
	[ -n "$lr_srcdev" ] || return 0
	mkdir -p "$LR_RUN/src"
	i=0
	# Block devices appear asynchronously; wait a bounded time (10 s).
	while [ ! -b "$lr_srcdev" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -b "$lr_srcdev" ] || lr_fail "source device $lr_srcdev did not appear within 10 s"
	# A disk anyone may have handed the machine: one file system type
	# (no probing of every driver the kernel has), and nothing on it runs,
	# opens a device or gains privilege, here or in the booted system
	# (the mount moves there).
	mount -t "$lr_srcfs" -o ro,nosuid,nodev,noexec "$lr_srcdev" "$LR_RUN/src" ||
		lr_fail "cannot mount source device $lr_srcdev read-only as $lr_srcfs (rd.lazyroot.srcfstype=)"
}

# e2fsprogs' mke2fs (dracut's, or the static one initramfs/build adds),
# which makes ext4 cache disks; none: busybox's, which makes only ext2.
# Looked for by path: busybox's shell runs its own applet for a bare
# 'mke2fs' whatever PATH says. Only e2fsprogs' answers -V with its
# library's version.
lr_e2fsprogs() {
	for p in /sbin/mke2fs /usr/sbin/mke2fs /bin/mke2fs /usr/bin/mke2fs; do
		if [ -x "$p" ] && "$p" -V 2>&1 | grep -q 'EXT2FS Library'; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

lr_setup_cache() {
	mkdir -p "$LR_RUN/cache"
	case $lr_cache in
	ram)
		dev=/dev/ram0
		[ -b $dev ] || lr_fail "no $dev: kernel lacks BLK_DEV_RAM (or brd.rd_nr=0)"
		kib=$(($(cat /sys/block/ram0/size) / 2))
		# The cache must hold what is fetched; cachefiles culls at 7% free.
		[ "$kib" -ge 16384 ] ||
			lr_fail "RAM disk is only $kib KiB: boot with brd.rd_size=KiB (at least the image size)"
		# ext2 without a journal: nothing to replay on a RAM disk, and
		# the least mke2fs work under slow emulation. (ext4 with extents
		# instead, so that cachefiles' direct writes stay direct: no
		# faster, same hour, 3 boots each: python3 at 7.9-8.1 s against
		# 7.4-8.1 s, cold read 6.1-6.3 against 5.6-6.3 MB/s.) Inodes:
		# cachefiles makes 256 fan-out directories and a few more, the
		# chunk store one file per chunk and 256 directories: one inode
		# per 16 KiB (1024 on the smallest 16 MiB disk; busybox's mke2fs
		# has no -N). No size argument: busybox reads it as KiB,
		# e2fsprogs as blocks; both fill the device without one. A bare
		# 'mke2fs' is busybox's where it has the applet, else
		# e2fsprogs' making its default, ext2.
		mke2fs -q -b 4096 -m 0 -i 16384 $dev >/dev/null 2>&1 ||
			lr_fail "mke2fs on $dev failed"
		lr_mount_cache $dev || lr_fail "cannot mount the RAM disk's file system ($dev)"
		;;
	/dev/* | LABEL=* | UUID=*)
		# A disk that keeps verified chunks across boots (lazyrootd
		# --store): later boots fetch only what they lack, or nothing.
		dev=''
		i=0
		while [ $i -lt 100 ]; do
			case $lr_cache in
			/dev/*) [ -b "$lr_cache" ] && dev=$lr_cache ;;
			*) dev=$(findfs "$lr_cache" 2>/dev/null) || dev='' ;;
			esac
			[ -n "$dev" ] && break
			sleep 0.1
			i=$((i + 1))
		done
		[ -n "$dev" ] || lr_fail "cache device $lr_cache did not appear within 10 s"
		lr_trace "cache device $dev found"
		lr_cache_disk "$dev"
		lr_mount_cache_disk "$dev"
		;;
	*) lr_fail "rd.lazyroot.cache=$lr_cache: use 'ram', a block device, LABEL= or UUID=" ;;
	esac
}

# A cache disk is rarely unmounted cleanly (the root depends on it until the
# very end). ext4 with a journal and no recorded error is mounted as it is:
# the kernel replays the journal and releases the orphaned cache object
# itself (found -> mounted 0.32-0.46 s under emulation, beside DHCP; e2fsck
# doing the same before the mount: 0.42-0.56 s).
# Anything else (ext2 from busybox's mke2fs, an error the kernel recorded,
# a disk the kernel will not mount) is checked first, taking every fix
# e2fsck offers (-y: it is a cache, every chunk is verified on use). What
# it cannot repair is made anew; only the highest booted version is lost
# with it.
lr_mount_cache_disk() {
	if lr_journaled_clean "$1"; then
		if lr_mount_cache "$1" 2>"$LR_RUN/mount.err"; then
			lr_trace "cache device $1 mounted (journaled, no recorded error: not checked)"
			return 0
		fi
		lr_log "cache device $1: the kernel did not mount it ($(tail -n 1 "$LR_RUN/mount.err")): checking it"
	fi
	lr_check_disk "$1"
	lr_mount_cache "$1" ||
		lr_fail "cannot mount cache filesystem $1 (needs ext2/ext4: tmpfs cannot hold a cachefiles cache)"
}

# The superblock (at 1024): s_state (offset 58) is 1 (valid, no error
# bit), s_feature_compat (offset 92) has has_journal (4). One read of the
# 35 bytes from the first to the last: its first two and its last one.
lr_journaled_clean() {
	sb=$(lr_hexdump "$1" 1082 35)
	[ ${#sb} -eq 70 ] || return 1
	state=${sb%"${sb#????}"}
	compat=${sb#"${sb%??}"}
	[ "$state" = 0100 ] && [ $((0x$compat & 4)) -ne 0 ]
}

# lr_hexdump DEV OFFSET COUNT: COUNT bytes of DEV at OFFSET, in hex.
lr_hexdump() {
	dd if="$1" bs=1 skip="$2" count="$3" 2>/dev/null | od -An -tx1 | tr -d ' \n'
}

# Nothing on the cache is ever executed or opened as a device.
lr_mount_cache() {
	mount -t ext4 -o nosuid,nodev,noexec "$1" "$LR_RUN/cache"
}

lr_check_disk() {
	command -v e2fsck >/dev/null 2>&1 || { lr_log "warning: no e2fsck: cache device $1 mounted unchecked"; return 0; }
	e2fsck -y "$1" >"$LR_RUN/e2fsck.log" 2>&1
	rc=$?
	lr_trace "cache device $1 checked (e2fsck exit $rc)"
	[ $rc -le 3 ] && return 0
	lr_log "cache device $1: e2fsck could not repair it (exit $rc): making it anew ($(tail -n 1 "$LR_RUN/e2fsck.log"))"
	dd if=/dev/zero of="$1" bs=65536 count=1 2>/dev/null
	lr_cache_disk "$1"
}

# A cache disk is set up on first use: formatted only when it is blank (its
# first 64 KiB all zeros); a disk holding anything but an ext2/3/4 file
# system is refused, never overwritten.
lr_cache_disk() {
	magic=$(lr_hexdump "$1" 1080 2)
	[ "$magic" = 53ef ] && return 0
	nonzero=$(dd if="$1" bs=65536 count=1 2>/dev/null | tr -d '\000' | wc -c)
	[ "$nonzero" -eq 0 ] ||
		lr_fail "cache device $1 holds something that is not an ext2/ext4 file system: not formatting it (wipe it to let lazyroot set it up)"
	lr_log "cache device $1 is blank: making its file system (first use)"
	if mkfs=$(lr_e2fsprogs); then
		# ext4: a journal (a power cut needs a replay, not a full
		# check at the next boot) and extents (no indirect block per
		# stored chunk for e2fsck to read). No orphan file (e2fsprogs
		# >= 1.47 makes one by default): the kernel then marks the
		# primary superblock 'orphan_present' while this boot's cache
		# object is open, and bookworm's e2fsck (1.47.0; 1.47.2's
		# ignores the mark) takes the difference from the backups for
		# damage and checks the whole disk after every power cut. An
		# e2fsprogs that knows no orphan file makes none and refuses
		# the option.
		"$mkfs" -q -t ext4 -O ^orphan_file -L lazyroot-cache -b 4096 -i 16384 "$1" >/dev/null 2>&1 ||
			"$mkfs" -q -t ext4 -L lazyroot-cache -b 4096 -i 16384 "$1" >/dev/null 2>&1
	else
		mke2fs -q -L lazyroot-cache -b 4096 -i 16384 "$1" >/dev/null 2>&1
	fi || lr_fail "mke2fs on cache device $1 failed"
}

lr_start_daemon() {
	set --
	for k in /etc/lazyroot/keys/*.pem; do
		[ -r "$k" ] && set -- "$@" --key "$k"
	done
	[ $# -gt 0 ] || lr_fail "no trusted keys in this initramfs (/etc/lazyroot/keys/*.pem)"
	[ -r /etc/lazyroot/ca.pem ] && set -- "$@" --ca /etc/lazyroot/ca.pem
	# The initramfs's own minimum (baked in at build time) holds whatever
	# the command line says; rd.lazyroot.minversion= can only raise it.
	if [ -r /etc/lazyroot/min-version ]; then
		read -r lr_baked </etc/lazyroot/min-version
		case $lr_baked in
		''|*[!0-9]*) lr_fail "/etc/lazyroot/min-version in this initramfs is not a number" ;;
		esac
		[ -n "$lr_minver" ] && [ "$lr_minver" -ge "$lr_baked" ] || lr_minver=$lr_baked
	fi
	[ -n "$lr_minver" ] && set -- "$@" --min-version "$lr_minver"
	if [ -r /etc/lazyroot/channel ]; then
		read -r lr_baked </etc/lazyroot/channel
		set -- "$@" --channel "$lr_baked"
	fi
	[ -n "$lr_insecure" ] && set -- "$@" --insecure
	[ -n "$lr_timeout" ] && set -- "$@" --read-timeout "$lr_timeout"
	[ -n "$lr_debug" ] && set -- "$@" --verbose
	set -- "$@" --backend "$lr_backend" --metadata "$lr_metadata"
	# A cache disk keeps verified chunks across boots (lazyrootd --store):
	# later boots fetch only what they lack, or nothing.
	case $lr_cache in
	ram) ;;
	*) lr_store=$LR_RUN/cache/store ;;
	esac
	[ -n "$lr_store" ] && set -- "$@" --store "$lr_store"
	# Recording a boot-order list: nothing fetched in the background, and
	# no 'booted' (lr_booted), so that every chunk the boot reads passes
	# through a READ, where lazyrootd records it.
	if [ -n "$lr_record" ]; then
		set -- "$@" --prefetch off
	else
		case $lr_prefetch in
		on|off) set -- "$@" --prefetch "$lr_prefetch" ;;
		*) set -- "$@" --prefetch on --prefetch-rate "$lr_prefetch" ;;
		esac
	fi
	set -f
	for r in $lr_resolve; do
		set -- "$@" --resolve "$r"
	done
	set +f
	# Started by its '@' name: systemd leaves processes whose argv[0]
	# starts with '@' alone at shutdown (root storage daemons).
	lr_ready=$(@lazyrootd --daemon --log=kmsg --tag "$LR_TAG" --cache-dir "$LR_RUN/cache" \
		"$@" "$lr_url" 2>"$LR_RUN/lazyrootd.err")
	rc=$?
	why=$(tail -n 1 "$LR_RUN/lazyrootd.err" 2>/dev/null)
	case $rc in
	0) ;;
	1) lr_fail "lazyrootd refused $lr_url: ${why:-bad configuration or an image that fails verification}" ;;
	*) lr_fail "lazyrootd could not serve $lr_url: ${why:-exit $rc}" ;;
	esac
	# "cachefiles FSID" or "fanotify IMAGE-FILE"
	lr_kind=${lr_ready%% *}
	lr_arg=${lr_ready#* }
	case $lr_kind in
	cachefiles|fanotify)
		if [ -z "$lr_arg" ] || [ "$lr_arg" = "$lr_ready" ]; then
			lr_fail "lazyrootd reported '$lr_ready'"
		fi
		;;
	*) lr_fail "lazyrootd started but reported '$lr_ready' (expected a backend)" ;;
	esac
	lr_log "lazyrootd ready ($lr_kind backend) at t=$(lr_uptime)s"
}

lr_mount_root() {
	mkdir -p "$LR_NEWROOT" "$LR_RUN/ro"
	if [ "$lr_overlay" = tmpfs ]; then
		lower=$LR_RUN/ro
	else
		lower=$LR_NEWROOT
	fi
	if [ "$lr_kind" = fanotify ]; then
		# mount(8) would put a loop device under a regular file, and
		# loop reads raise no fanotify events: lazyrootd calls mount(2).
		lazyrootd mount "$lr_arg" "$lower" 2>"$LR_RUN/mount.err" ||
			lr_fail "EROFS mount of $lr_arg failed: $(cat "$LR_RUN/mount.err")"
	elif ! mount -t erofs -o "ro,fsid=$lr_arg" none "$lower" 2>"$LR_RUN/mount.err"; then
		err=$(cat "$LR_RUN/mount.err")
		case $err in
		*"No buffer space"*)
			lr_fail "EROFS mount of fsid $lr_arg failed: no on-demand cache is bound (lazyrootd not running?)" ;;
		*)
			lr_fail "EROFS mount of fsid $lr_arg failed: $err" ;;
		esac
	fi
	if [ "$lr_overlay" = tmpfs ]; then
		mkdir -p "$LR_RUN/rw"
		mount -t tmpfs -o mode=0755 tmpfs "$LR_RUN/rw" || lr_fail "cannot mount tmpfs for the overlay"
		mkdir -p "$LR_RUN/rw/upper" "$LR_RUN/rw/work"
		mount -t overlay overlay \
			-o "lowerdir=$lower,upperdir=$LR_RUN/rw/upper,workdir=$LR_RUN/rw/work" \
			"$LR_NEWROOT" || lr_fail "cannot mount the tmpfs overlay on the root"
	fi
	[ -x "$LR_NEWROOT$lr_init" ] || [ -L "$LR_NEWROOT$lr_init" ] ||
		lr_fail "the new root has no executable $lr_init (set init=)"
	# The cache (and source) filesystems stay alive through lazyrootd's
	# files and the kernel's references; out of the mount table, nothing
	# at shutdown tries to unmount (or remount) what the root depends on.
	umount -l "$LR_RUN/cache" 2>/dev/null || lr_log "warning: cannot detach $LR_RUN/cache"
	[ -z "$lr_srcdev" ] || umount -l "$LR_RUN/src" 2>/dev/null ||
		lr_log "warning: cannot detach $LR_RUN/src"
}

lr_report() {
	# What the kernel asked for so far and what crossed the network, against
	# the image: on-demand boot touches a small share of it.
	status=$(lazyrootd status --tag "$LR_TAG") || { lr_log "no status from lazyrootd"; return 0; }
	req=0 size=1 reads=0 recv=0 requests=0 meta=0 nodes=0 bad=0
	for kv in $(echo "$status" | tr ' ' '='); do
		case $kv in
		bytes_requested=*) req=${kv#*=} ;;
		image_size=*) size=${kv#*=} ;;
		reads=*) reads=${kv#*=} ;;
		bytes_received=*) recv=${kv#*=} ;;
		requests=*) requests=${kv#*=} ;;
		manifest_bytes=*) meta=${kv#*=} ;;
		node_bytes=*) nodes=${kv#*=} ;;
		digest_mismatches=*) bad=${kv#*=} ;;
		esac
	done
	lr_log "before switch_root: kernel requested $req of $size bytes ($((req * 1000 / size / 10)).$((req * 1000 / size % 10))%) in $reads reads; fetched $recv bytes ($((recv * 1000 / size / 10)).$((recv * 1000 / size % 10))%) in $requests requests (manifest $meta, tree $nodes); rejected answers $bad; t=$(lr_uptime)s"
}

# The exit initramfs (systemd's /run/initramfs/shutdown): at shutdown,
# systemd-shutdown pivots back into it so the root lazyrootd serves can be
# detached before lazyrootd stops (initramfs/shutdown). busybox only.
lr_prepare_shutdown() {
	[ -r /lib/lazyroot/shutdown ] || return 0
	# Two processes: the script links the applets it runs itself, at
	# shutdown (a process per link cost the boot 0.1 s under emulation).
	if ! mkdir -p /run/initramfs/bin /run/initramfs/oldroot ||
		! cp /bin/busybox /lib/lazyroot/shutdown /run/initramfs/bin/; then
		lr_log "warning: no exit initramfs in /run/initramfs: shutdown cannot detach the root"
		return 0
	fi
	mv /run/initramfs/bin/shutdown /run/initramfs/shutdown
}

# The boot's own reads are done: from now on lazyrootd fetches ahead of
# READs (the chunks after a miss, the hash tree's nodes) and, unless
# rd.lazyroot.prefetch=off, the rest of the image in the background
# (demand reads keep priority). Not while recording a boot-order list: a
# chunk fetched ahead reaches the kernel without a READ, and the list would
# miss it.
lr_booted() {
	[ -n "$lr_record" ] && return 0
	lazyrootd booted --tag "$LR_TAG" 2>/dev/null || lr_log "warning: lazyrootd did not take 'booted' (prefetch starts by itself later)"
}

# The new root's init, resolved through its symlinks inside the new root
# and its first bytes read: switch_root runs as PID 1, so its own failure
# ("can't execute '/sbin/init'") is a kernel panic with no cause on the
# console. An init that is missing or cannot be read (the root's data
# unavailable) is a FATAL line instead.
lr_check_init() {
	p=$lr_init n=0
	while [ -L "$LR_NEWROOT$p" ] && [ $n -lt 16 ]; do
		t=$(readlink "$LR_NEWROOT$p")
		case $t in
		/*) p=$t ;;
		*) p=$(dirname "$p")/$t ;;
		esac
		n=$((n + 1))
	done
	if [ ! -f "$LR_NEWROOT$p" ] || [ ! -x "$LR_NEWROOT$p" ]; then
		lr_fail "the new root has no executable $lr_init (set init=; followed to $p)"
	fi
	err=$(head -c 64 "$LR_NEWROOT$p" 2>&1 >/dev/null) ||
		lr_fail "the new root's init $lr_init cannot be read: ${err:-read error}"
}

lr_switch_root() {
	lr_check_init
	lr_trace "init checked"
	lr_prepare_shutdown
	lr_trace "exit initramfs ready"
	lr_booted
	lr_trace "lazyrootd told the boot is done"
	# busybox switch_root moves nothing: carry the API filesystems (and
	# /run, with our cache and lower mounts) into the new root ourselves.
	for d in /dev /proc /sys /run; do
		if [ -d "$LR_NEWROOT$d" ]; then
			mount --move "$d" "$LR_NEWROOT$d" || lr_log "warning: could not move $d"
		fi
	done
	# switch_root must run as PID 1, so it replaces this shell; the
	# checks in lr_mount_root and lr_check_init make its own failure modes
	# unlikely.
	exec switch_root "$LR_NEWROOT" "$lr_init"
}

# dracut's netroot handler (/sbin/lazyrootroot NETIF NETROOT NEWROOT): the
# network is up, dracut switches root itself.
lazyroot_netroot() {
	LR_DRACUT=1
	LR_NEWROOT=$3
	lr_log "netroot handler started on $1 at t=$(lr_uptime)s"
	lr_parse_cmdline
	lr_load_modules
	lr_mount_srcdev
	lr_setup_cache
	lr_log "cache ready at t=$(lr_uptime)s"
	lr_start_daemon
	lr_mount_root
	lr_log "root mounted ($lr_kind $lr_arg) at t=$(lr_uptime)s"
	lr_report
	: >"$LR_RUN/mounted"
}

lazyroot_main() {
	lr_log "initramfs started at t=$(lr_uptime)s"
	lr_parse_cmdline
	lr_load_modules
	lr_mount_srcdev
	lr_bg cache lr_setup_cache
	lr_network
	lr_trace "network up"
	lr_wait cache
	lr_log "cache ready at t=$(lr_uptime)s"
	lr_start_daemon
	lr_mount_root
	lr_log "root mounted ($lr_kind $lr_arg) at t=$(lr_uptime)s"
	lr_report
	lr_trace "reported"
	if [ -n "$lr_rdbreak" ]; then
		lr_shell
	fi
	lr_switch_root
}
