# shellcheck shell=bash
# Helpers shared by the host-side scripts (bash). Sourced, never run.

LAZYROOT_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Heavy builds (kernel, static libraries) live outside the source tree, keyed
# by their inputs, so every clone on this machine (CI included) reuses them.
LAZYROOT_CACHE=${LAZYROOT_CACHE:-/var/cache/lazyroot}
export LAZYROOT_TOP LAZYROOT_CACHE

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# hash_inputs FILE...: a short, stable digest of the files' contents.
hash_inputs() {
	cat "$@" | sha256sum | cut -c1-16
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
