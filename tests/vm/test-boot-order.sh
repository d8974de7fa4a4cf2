#!/usr/bin/env bash
# The boot-order list, end to end on the test kernel: boot 1 reads big.bin
# and hands lazyrootd's recorded order to the host (`lazyrootd bootlist`);
# the host signs it into a copy of the published image (`lazyroot-image
# sign --boot-order`); boot 2 fetches those chunks ahead of the kernel and
# reads big.bin intact. Prints both boots' time from the new init to
# big.bin read (background prefetch off in both). Boot 1 records
# (rd.lazyroot.record: no chunks fetched ahead of READs, or the list would
# miss them); boot 2 fetches ahead as any boot does.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
tool=$BUILD/host/image/lazyroot-image
# A copy of the published directory: chunks shared (hard links, never
# written), the manifest its own.
cp -al "$FIX/pub" "$WORK/pub"
rm "$WORK/pub/lazyroot.manifest"
cp "$FIX/pub/lazyroot.manifest" "$WORK/pub/"
start_nginx "$WORK/pub"
vm_initramfs
fwdspec=$(fwd 10.0.2.100 80 "$HTTP_PORT")
read_time() {
	local init fin
	init=$(sed -nE 's/^lazyroot-test: new root init running as PID 1 at t=([0-9.]+)s.*/\1/p' "$1")
	fin=$(sed -nE 's/^lazyroot-test: big.bin md5 [0-9a-f]+ at t=([0-9.]+)s.*/\1/p' "$1")
	echo "$fin - $init" | bc
}

log1=$WORK/boot1.log
vm_boot "$log1" "root=lazyroot:http://10.0.2.100/ brd.rd_size=262144 rd.lazyroot.record lazyroot.test=bootlist" \
	--guestfwd "$fwdspec"
expect "$log1" "^lazyroot-test: big.bin md5 $BIG_MD5" "boot 1: big.bin not intact"
expect "$log1" '^lazyroot-test: bootlist end' "boot 1: no boot-order list from the guest"
{
	echo "lazyroot-bootlist 1"
	tr -d '\r' <"$log1" | sed -nE 's/^lazyroot-test: blr ([0-9]+) ([0-9]+)$/\1 \2/p' |
		while read -r a b; do seq "$a" "$b"; done
} >"$WORK/bootlist"
n=$(($(wc -l <"$WORK/bootlist") - 1))
[ "$n" -gt 1000 ] || fail "boot 1 recorded $n chunks; reading big.bin alone reads over 1000"
"$tool" sign -q --key "$FIX/key.pem" --boot-order "$WORK/bootlist" "$WORK/pub" ||
	fail "lazyroot-image sign --boot-order failed"
"$tool" verify -q --key "$FIX/pub.pem" "$WORK/pub" || fail "the signed directory does not verify"
grep -q '^boot-order ' "$WORK/pub/lazyroot.manifest" || fail "no boot-order line in the manifest"

log2=$WORK/boot2.log
vm_boot "$log2" "root=lazyroot:http://10.0.2.100/ brd.rd_size=262144 rd.lazyroot.prefetch=off" \
	--guestfwd "$fwdspec"
vm_show "$log2" | grep -E 'boot order|big.bin' || true
! grep -q FATAL "$log2" || { vm_show "$log2"; fail "boot 2: the hook reported a fatal error"; }
expect "$log2" "lazyrootd: boot order: fetching the $n chunks" "boot 2: the list was not taken"
expect "$log2" "^lazyroot-test: big.bin md5 $BIG_MD5" "boot 2: big.bin not intact"
t1=$(read_time "$log1")
t2=$(read_time "$log2")
note "recorded $n chunks; new init -> big.bin read: ${t1}s without the list, ${t2}s with it ($(echo "scale=2; $t2 / $t1" | bc)x)"
note "$(grep -m1 -oE 'boot order: [0-9]+ chunks local [0-9.]+ s after the list arrived' "$log2")"
echo "PASS"
