#!/usr/bin/env bash
# A persistent cache disk (rd.lazyroot.cache=/dev/vda), three boots of the
# same signed image:
#  1. a blank disk: the hook formats it (first use), prefetch completes,
#     then with nginx stopped every file reads intact (test-prefetch's
#     flow);
#  2. the host changes bytes of some chunk files on the disk while the
#     machine is off; nginx runs again: the changed chunks are refused,
#     fetched again (exactly those), and big.bin reads intact;
#  3. nginx stopped for good: the machine boots offline from the disk (the
#     kept manifest, chunks and tree), big.bin intact, nothing fetched.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
command -v debugfs >/dev/null || skip "debugfs not installed (e2fsprogs)"
vm_require
vm_fixture
start_nginx "$FIX/pub"
vm_initramfs
disk=$WORK/cache.img
truncate -s 512M "$disk"
fwdspec=$(fwd 10.0.2.100 80 "$HTTP_PORT")
stat_of() { sed -nE "s/.*lazyroot-test: status $1 ([0-9-]+).*/\\1/p" "$2" | tail -n 1; }

# --- boot 1: first use, prefetch to completion, then offline reads
log1=$WORK/boot1.log
: >"$log1"
(
	for _ in $(seq $((VM_TIMEOUT * 2))); do
		if grep -q '^lazyroot-test: stop the mirror now' "$log1" 2>/dev/null; then
			kill "$NGINX_PID" 2>/dev/null
			exit 0
		fi
		sleep 0.5
	done
) &
VM_PIDS="$VM_PIDS $!"
vm_boot "$log1" "root=lazyroot:http://10.0.2.100/ rd.lazyroot.cache=/dev/vda lazyroot.test=prefetch" \
	--disk-rw "$disk" --guestfwd "$fwdspec"
vm_show "$log1" | grep -E 'cache device|prefetch complete|offline|FATAL' || true
! grep -q FATAL "$log1" || { vm_show "$log1"; fail "boot 1: the hook reported a fatal error"; }
expect "$log1" 'cache device /dev/vda is blank: making its file system' "boot 1: the blank disk was not set up"
expect "$log1" '^lazyroot-test: prefetch complete at' "boot 1: prefetch did not complete"
expect "$log1" '^lazyroot-test: offline: every file read, 0 read errors' "boot 1: reads failed with the mirror gone"
wait "$NGINX_PID" 2>/dev/null || true

# --- between boots: change 5 stored chunk files on the disk
chunks=$(debugfs -R 'ls -p store/chunks' "$disk" 2>/dev/null | awk -F/ '$6 != "" && $6 != "." && $6 != ".." {print $6}' | head -n 3)
n=0
for d in $chunks; do
	f=$(debugfs -R "ls -p store/chunks/$d" "$disk" 2>/dev/null | awk -F/ '$6 ~ /^[0-9a-f]+$/ {print $6}' | head -n 2)
	for c in $f; do
		debugfs -R "dump store/chunks/$d/$c $WORK/chunk" "$disk" >/dev/null 2>&1 || fail "debugfs dump"
		printf 'evil' | dd of="$WORK/chunk" bs=1 seek=100 conv=notrunc 2>/dev/null
		debugfs -w -f - "$disk" >/dev/null 2>&1 <<CMDS || fail "debugfs write"
cd store/chunks/$d
rm $c
write $WORK/chunk $c
CMDS
		n=$((n + 1))
	done
done
[ "$n" -gt 0 ] || fail "no stored chunks found on the cache disk"
note "changed $n stored chunk files on the cache disk between boots"

# --- boot 2: nginx again; only the changed chunks cross the network
start_nginx "$FIX/pub" 2
fwdspec=$(fwd 10.0.2.100 80 "$HTTP_PORT")
log2=$WORK/boot2.log
vm_boot "$log2" "root=lazyroot:http://10.0.2.100/ rd.lazyroot.cache=/dev/vda rd.lazyroot.prefetch=off" \
	--disk-rw "$disk" --guestfwd "$fwdspec"
vm_show "$log2" | grep -E 'local copy|removed|big.bin|FATAL' || true
! grep -q FATAL "$log2" || { vm_show "$log2"; fail "boot 2: the hook reported a fatal error"; }
expect "$log2" "^lazyroot-test: big.bin md5 $BIG_MD5" "boot 2: big.bin not intact"
! grep -q 'blank: making its file system' "$log2" || fail "boot 2: the cache disk was formatted again"
reqs=$(wc -l <"$WORK/nginx2/access.log")
chunk_reqs=$(grep -c 'GET /chunks/' "$WORK/nginx2/access.log" || true)
note "boot 2: nginx served $reqs requests, $chunk_reqs of them chunks or tree nodes, for $n changed chunk files"
[ "$chunk_reqs" -le "$n" ] || fail "boot 2: $chunk_reqs chunk requests for $n changed chunk files (the rest should come from the disk)"
kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null || true

# --- boot 3: no server at all
log3=$WORK/boot3.log
vm_boot "$log3" "root=lazyroot:http://10.0.2.100/ rd.lazyroot.cache=/dev/vda rd.lazyroot.prefetch=off" \
	--disk-rw "$disk" --guestfwd "$fwdspec"
vm_show "$log3" | grep -E 'local copy|big.bin|FATAL|root mounted' || true
! grep -q FATAL "$log3" || { vm_show "$log3"; fail "boot 3: the hook reported a fatal error"; }
expect "$log3" 'no mirror answered .*: booting the local copy of the manifest' "boot 3: the kept manifest was not used"
expect "$log3" "^lazyroot-test: big.bin md5 $BIG_MD5" "boot 3: big.bin not intact offline"
t_root=$(sed -nE 's/^lazyroot: root mounted .* at t=([0-9.]+)s.*/\1/p' "$log3")
t_init=$(sed -nE 's/^lazyroot: initramfs started at t=([0-9.]+)s.*/\1/p' "$log3")
note "boot 3 (offline): initramfs start -> root mounted $(echo "$t_root - $t_init" | bc)s"
echo "PASS"
