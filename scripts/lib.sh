# shellcheck shell=bash
# Helpers shared by the host-side scripts (bash). Sourced, never run.

LAZYROOT_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Heavy builds (kernel, static libraries) live outside the source tree, keyed
# by their inputs, so every clone on this machine (CI included) reuses them.
LAZYROOT_CACHE=${LAZYROOT_CACHE:-/var/cache/lazyroot}
# Debian source packages, downloaded once (deb_src_pick).
LAZYROOT_SRC=$LAZYROOT_CACHE/src
export LAZYROOT_TOP LAZYROOT_CACHE LAZYROOT_SRC

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# apt_has PKG APT-OPTION...: whether apt, with these options (a private
# state), knows a version of PKG. The whole record is read: with grep -q,
# apt-cache died of SIGPIPE now and then and pipefail turned that into no.
apt_has() {
	local p=$1
	shift
	[ -n "$(apt-cache "$@" show "$p" 2>/dev/null | sed -n '/^Version:/p')" ]
}

# hash_inputs FILE...: a short, stable digest of the files' contents.
hash_inputs() {
	cat "$@" | sha256sum | cut -c1-16
}

# musl_uapi DIR: musl ships no kernel UAPI headers; link linux-libc-dev's
# (linux/, this machine's asm/, asm-generic/) into DIR for musl-gcc's
# -isystem (the Makefile for lazyrootd, build-mke2fs for mke2fs).
musl_uapi() {
	local arch
	arch=$(gcc -print-multiarch) || arch=''
	[ -n "$arch" ] || die "gcc -print-multiarch names no architecture"
	[ -d "/usr/include/$arch/asm" ] || die "no /usr/include/$arch/asm: install linux-libc-dev"
	mkdir -p "$1"
	ln -sfn /usr/include/linux "$1/linux"
	ln -sfn "/usr/include/$arch/asm" "$1/asm"
	ln -sfn /usr/include/asm-generic "$1/asm-generic"
}

# The test kernel's cache directory for the current inputs; build-kernel
# fills it, everything else only reads it.
kernel_src_version() {
	dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null
}
kernel_dir() {
	local v
	v=$(kernel_src_version) || return 1
	[ -n "$v" ] || return 1
	echo "$LAZYROOT_CACHE/kernel/6.12-$v-$( (echo "$v"; cat "$LAZYROOT_TOP/kernel-config/lazyroot.config" "$LAZYROOT_TOP/scripts/build-kernel") | sha256sum | cut -c1-16)"
}

# The static dependency prefix (mbedTLS + libcurl for musl) for the current
# pins; build-deps fills it.
# deps_dir VERSION...: keyed by the build script and the source versions
# it resolved.
deps_dir() {
	echo "$LAZYROOT_CACHE/deps/$({ cat "$LAZYROOT_TOP/scripts/build-deps"; echo "$*"; } |
		sha256sum | cut -c1-16)"
}

# A deb-src entry for Debian trixie, the suite whose curl and mbedTLS
# sources we build. Added once; apt-get update only when it was missing.
ensure_deb_src() {
	local f=/etc/apt/sources.list.d/lazyroot-src.sources
	if [ ! -s "$f" ]; then
		log "adding $f (Debian trixie source packages)"
		local sudo=''
		[ "$(id -u)" = 0 ] || sudo=sudo
		printf '%s\n' "# Added by lazyroot (scripts/lib.sh): source packages for lazyrootd's" \
			"# static libcurl and mbedTLS." "Types: deb-src" \
			"URIs: http://deb.debian.org/debian" "Suites: trixie" "Components: main" \
			"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" | $sudo tee "$f" >/dev/null
	fi
	${sudo:-} apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
}

# deb_src_fetch_without_asc NAME VERSION: after apt-get source failed only
# for the upstream tarball's signature (a mirror that lacks the .asc the
# .dsc lists): fetch the other files from the URIs apt names, each checked
# against the SHA256 of the signed index apt printed with it. The caller
# unpacks with deb_src_unpack (no .asc to check).
deb_src_fetch_without_asc() {
	local err=$LAZYROOT_SRC/$1.fetch.err uri file size sum empty list
	grep -q 'Failed to fetch http' "$err" || return 1
	! grep 'Failed to fetch http' "$err" | grep -v '\.asc ' >/dev/null || return 1
	# apt lists only the files its working directory lacks: ask from an
	# empty one, for all of them.
	empty=$(mktemp -d)
	list=$(cd "$empty" && apt-get --print-uris source "$1=$2" 2>/dev/null | grep "^'")
	rmdir "$empty"
	while read -r uri file size sum; do
		uri=${uri//\'/}
		case $file in *.asc) continue ;; esac
		case $sum in SHA256:*) sum=${sum#SHA256:} ;; *) return 1 ;; esac
		if [ "$(sha256sum "$LAZYROOT_SRC/$file" 2>/dev/null | cut -d' ' -f1)" != "$sum" ]; then
			curl -fsS -o "$LAZYROOT_SRC/$file.part" "$uri" || return 1
			[ "$(sha256sum "$LAZYROOT_SRC/$file.part" | cut -d' ' -f1)" = "$sum" ] || { rm -f "$LAZYROOT_SRC/$file.part"; return 1; }
			[ "$(stat -c %s "$LAZYROOT_SRC/$file.part")" = "$size" ] || { rm -f "$LAZYROOT_SRC/$file.part"; return 1; }
			mv "$LAZYROOT_SRC/$file.part" "$LAZYROOT_SRC/$file"
		fi
	done <<<"$list"
	[ -s "$LAZYROOT_SRC/$1_${2#*:}.dsc" ] || return 1
	log "$1 $2: the mirror has no upstream signature ($(grep -m1 -o '[^/ ]*\.asc' "$err")); its other files were fetched and checked against the signed index"
}

# deb_src_unpack DSC DIR: dpkg-source -x; without the signature check only
# where the upstream signature is missing (see deb_src_fetch_without_asc).
deb_src_unpack() {
	local asc
	asc=$(awk '/^Files:/ { on = 1; next } /^[^ ]/ { on = 0 } on && $3 ~ /\.asc$/ { print $3 }' "$1")
	if [ -n "$asc" ] && [ ! -s "$(dirname "$1")/$asc" ]; then
		dpkg-source --no-check -x "$1" "$2" >/dev/null 2>&1
	else
		dpkg-source -x "$1" "$2" >/dev/null 2>&1
	fi
}

# deb_src_candidates NAME SERIES: the Debian versions of source NAME whose upstream
# version is SERIES, among those apt lists, newest first.
deb_src_candidates() {
	local v list=()
	for v in $(apt-cache showsrc "$1" 2>/dev/null | sed -n 's/^Version: //p'); do
		case ${v#*:} in "$2"-*) list+=("$v") ;; esac
	done
	[ ${#list[@]} -gt 0 ] || return 0
	printf '%s\n' "${list[@]}" | sort -u | while read -r v; do
		# rank by dpkg's order: count the versions this one is newer than
		local n=0 w
		for w in "${list[@]}"; do dpkg --compare-versions "$v" gt "$w" && n=$((n + 1)); done
		echo "$n $v"
	done | sort -rn | cut -d' ' -f2
}

# deb_src_pick NAME SERIES VAR: the newest candidate whose source is here or can
# be downloaded now. An index may list a revision its pool does not (yet)
# serve: that one is skipped, and not asked again for a day.
deb_src_pick() {
	local v list dsc miss
	list=$(deb_src_candidates "$1" "$2")
	if [ -z "$list" ]; then
		ensure_deb_src
		list=$(deb_src_candidates "$1" "$2")
	fi
	for v in $list; do
		dsc="$LAZYROOT_SRC/$1_${v#*:}.dsc"
		miss="$LAZYROOT_SRC/$1_${v#*:}.unavailable"
		if [ ! -s "$dsc" ]; then
			[ -z "$(find "$miss" -mmin -1440 2>/dev/null)" ] || continue
			if ! (cd "$LAZYROOT_SRC" && apt-get source --download-only -qq "$1=$v" >/dev/null 2>"$LAZYROOT_SRC/$1.fetch.err") &&
				! deb_src_fetch_without_asc "$1" "$v"; then
				log "$1 $v is listed but cannot be downloaded ($(grep -m1 '^E:' "$LAZYROOT_SRC/$1.fetch.err" || tail -n 1 "$LAZYROOT_SRC/$1.fetch.err")); trying an older revision"
				rm -f "$LAZYROOT_SRC/$1_${v#*:}".* # what did arrive (not the shared orig tarball)
				touch "$miss"
				continue
			fi
		fi
		printf -v "$3" '%s' "$v"
		return 0
	done
	die "no $1 $2-* source package can be had from Debian's archive (apt-cache showsrc $1); lazyroot was tested with $1 $2: update ${3%_VERSION}_SERIES in scripts/${0##*/} to a series the archive has, and test it"
}
