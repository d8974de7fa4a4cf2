#!/usr/bin/env bash
# kernel-config/check finds what a config lacks (and says nothing about a
# config that has everything), for plain and gzip'd configs.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
check=$top/kernel-config/check
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

grep -E '^CONFIG_' "$top/kernel-config/lazyroot.config" >"$tmp/full"
"$check" "$tmp/full" >"$tmp/out" || { cat "$tmp/out"; echo "FAIL: complete config reported incomplete"; exit 1; }
[ ! -s "$tmp/out" ] || { echo "FAIL: output for a complete config"; exit 1; }

grep -v -E '^CONFIG_CACHEFILES_ONDEMAND=' "$tmp/full" >"$tmp/no-od"
echo "# CONFIG_EROFS_FS_ONDEMAND is not set" >>"$tmp/no-od"
sed -i '/^CONFIG_EROFS_FS_ONDEMAND=/d' "$tmp/no-od"
gzip -c "$tmp/no-od" >"$tmp/config.gz"
rc=0
"$check" "$tmp/config.gz" >"$tmp/out" 2>/dev/null || rc=$?
[ $rc -eq 1 ] || { echo "FAIL: exit $rc for an incomplete config, want 1"; exit 1; }
grep -q '^missing: CONFIG_CACHEFILES_ONDEMAND=y (config has: absent)$' "$tmp/out" ||
	{ cat "$tmp/out"; echo "FAIL: absent option not listed"; exit 1; }
grep -q '^missing: CONFIG_EROFS_FS_ONDEMAND=y (config has: not set)$' "$tmp/out" ||
	{ cat "$tmp/out"; echo "FAIL: unset option not listed"; exit 1; }
[ "$(wc -l <"$tmp/out")" -eq 2 ] || { cat "$tmp/out"; echo "FAIL: more than the two missing options listed"; exit 1; }

rc=0
"$check" "$tmp/nonexistent" 2>/dev/null || rc=$?
[ $rc -eq 2 ] || { echo "FAIL: unreadable config gave exit $rc, want 2"; exit 1; }

# --backends: which backend a config can run.
backends() { # CONFIG-TEXT... -> output in $tmp/b, exit code returned
	printf '%s\n' "$@" >"$tmp/bc"
	rc=0
	"$check" --backends "$tmp/bc" >"$tmp/b" 2>&1 || rc=$?
	return $rc
}
backends "# Linux/x86 7.3.4 Kernel Configuration" CONFIG_EROFS_FS=m CONFIG_EROFS_FS_BACKED_BY_FILE=y \
	CONFIG_FANOTIFY=y CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y CONFIG_CACHEFILES=m CONFIG_EXT4_FS=y \
	CONFIG_BLK_DEV_RAM=m || { cat "$tmp/b"; echo "FAIL: a 7.3-like config runs no backend"; exit 1; }
for want in '^fanotify backend: yes' '^cachefiles backend: no' 'must carry.*EROFS_FS'; do
	grep -q "$want" "$tmp/b" || { cat "$tmp/b"; echo "FAIL: 7.3-like config misjudged ($want)"; exit 1; }
done
backends "# Linux/x86 6.12.10 Kernel Configuration" CONFIG_EROFS_FS=y CONFIG_EROFS_FS_BACKED_BY_FILE=y \
	CONFIG_FANOTIFY=y CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y CONFIG_EXT4_FS=y && {
	cat "$tmp/b"; echo "FAIL: a 6.12 config without on-demand mode said to run a backend"; exit 1; }
grep -q '^fanotify backend: no .*< 6.14' "$tmp/b" || { cat "$tmp/b"; echo "FAIL: 6.12 fanotify not refused for its version"; exit 1; }
backends "# Linux/x86 6.8.5 Kernel Configuration" CONFIG_EROFS_FS=y CONFIG_EROFS_FS_ONDEMAND=y \
	CONFIG_CACHEFILES=y CONFIG_CACHEFILES_ONDEMAND=y CONFIG_FSCACHE=y CONFIG_EXT4_FS=y CONFIG_BLK_DEV_RAM=y ||
	{ cat "$tmp/b"; echo "FAIL: a Fedora-6.8-like config runs no backend"; exit 1; }
grep -q '^cachefiles backend: yes' "$tmp/b" || { cat "$tmp/b"; echo "FAIL: cachefiles not found"; exit 1; }
for c in "${LAZYROOT_CACHE:-/var/cache/lazyroot}"/debian-kernel/*/config; do
	[ -r "$c" ] || continue
	"$check" --backends "$c" >"$tmp/b" || { cat "$tmp/b"; echo "FAIL: Debian's $c runs no backend"; exit 1; }
	echo "$(basename "$(dirname "$c")"): $(grep backend: "$tmp/b" | tr '\n' ' ')"
done

# The cached test kernel's config, when built, has every option.
. "$top/scripts/lib.sh"
if kdir=$(kernel_dir) && [ -r "$kdir/config" ]; then
	"$check" "$kdir/config" || { echo "FAIL: the built test kernel lacks fragment options"; exit 1; }
	echo "test kernel config complete: $kdir/config"
fi
echo "PASS"
