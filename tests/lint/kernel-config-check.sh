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

# The cached test kernel's config, when built, has every option.
. "$top/scripts/lib.sh"
if kdir=$(kernel_dir) && [ -r "$kdir/config" ]; then
	"$check" "$kdir/config" || { echo "FAIL: the built test kernel lacks fragment options"; exit 1; }
	echo "test kernel config complete: $kdir/config"
fi
echo "PASS"
