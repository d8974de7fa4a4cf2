#!/usr/bin/env bash
# The benchmark harness's quick mode (scripts/bench --quick): the busybox
# test root at two small sizes, one boot per mode (local disk, NBD with
# nbdkit's file and curl plugins, full download, lazyroot over HTTP and
# HTTPS, with a boot-order list, with a warm cache disk) over the shaped
# link. Asserts that every mode boots and that the report, its table and
# its plots are produced; prints the table. The full run is by hand
# (docs/benchmarks.md).
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
for c in nbdkit nbd-client gnuplot /usr/bin/python3; do
	command -v "$c" >/dev/null || skip "$c not installed (scripts/setup)"
done
grep -q '^CONFIG_BLK_DEV_NBD=y' "$KDIR/config" || skip "the test kernel lacks NBD (scripts/build-kernel)"
out=$WORK/bench/benchmarks.md
BENCH_TIMEOUT=180 "$VM_TOP/scripts/bench" --quick --out "$out" || fail "scripts/bench --quick failed"
[ -s "$out" ] || fail "no report"
for m in local nbd-file nbd-curl full lazyroot-http lazyroot-https lazyroot-bootlist lazyroot-warm; do
	grep -qE "^\| (32M|64M) \| $m \| [0-9]" "$out" || fail "no figures for mode $m in the report"
done
grep -q '^| size | lazyroot mode |' "$out" || fail "no ratio table"
n=$(find "$WORK/bench" -name '*.png' -size +1k | wc -l)
[ "$n" -ge 2 ] || fail "the plots are missing"
sed -n '/^## shaped link/,/^## Plots/p' "$out" | sed 's/^/  /'
echo "PASS"
