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
#     kept manifest, chunks and tree), big.bin intact, nothing fetched;
#  4. image version 2 (other.bin replaced: 8 MiB of 77 MB new), prefetch
#     capped at 500 KB/s, and the power cut (QEMU killed) in the middle of
#     prefetching it;
#  5. version 2 again: prefetch completes, then offline every file reads
#     intact with v2's bytes; v2 fetched about its changed share only;
#  6. version 1 offered again: refused (rollback), no command-line key.
# Every boot ends like a power cut for the cache disk (the guests power
# off without unmounting it): the kernel replays its journal at the next
# mount (the hook runs no e2fsck on a journaled disk without a recorded
# error) and must find no file-system error.
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
stop_nginx_when "$log1"
vm_boot "$log1" "root=lazyroot:http://10.0.2.100/ rd.lazyroot.cache=/dev/vda lazyroot.test=prefetch" \
	--disk-rw "$disk" --guestfwd "$fwdspec"
vm_show "$log1" | grep -E 'cache device|prefetch complete|offline|FATAL' || true
! grep -q FATAL "$log1" || { vm_show "$log1"; fail "boot 1: the hook reported a fatal error"; }
expect "$log1" 'cache device /dev/vda is blank: making its file system' "boot 1: the blank disk was not set up"
# ext4 with a journal (initramfs/build carries e2fsprogs' mke2fs): a power
# cut costs a journal replay, not a full check of every stored chunk.
features=$(dumpe2fs -h "$disk" 2>/dev/null | sed -n 's/^Filesystem features: *//p')
for f in has_journal extent; do
	case " $features " in *" $f "*) ;; *) fail "boot 1: the cache disk has no $f (features: $features)" ;; esac
done
# No orphan file: the kernel's 'orphan_present' mark in the primary
# superblock sends bookworm's e2fsck into a full check (the hook's).
case " $features " in *" orphan_file "*) fail "boot 1: the cache disk has an orphan file (features: $features)" ;; esac
note "cache disk made with: $features"
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
# Boot 1 was cut off with the disk mounted: its journal is replayed by
# the kernel (no e2fsck ran before the mount), boot 1's open cache object
# deleted as an orphan.
expect "$log2" 'EXT4-fs \(vda\): recovery complete' "boot 2: the kernel did not replay the cache disk's journal"
# Boot 1's kernel objects (cachefiles) are removed before the bind, their
# directories kept; fanotify's image file is made anew.
if [ "$VM_BACKEND" = cachefiles ]; then
	expect "$log2" 'cache/cache: [0-9]+ entries .* of an earlier boot removed, [1-9][0-9]* directories kept' \
		"boot 2: boot 1's cache objects were not cleared"
fi
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

# --- image version 2: the same root with other.bin replaced
"$VM_TOP/tests/vm/make-test-root" "$WORK/root2" 64
head -c $((8 * 1024 * 1024)) /dev/urandom >"$WORK/root2/data/other.bin"
other2=$(md5sum "$WORK/root2/data/other.bin" | cut -d' ' -f1)
"$BUILD/host/image/lazyroot-image" build -q --key "$FIX/key.pem" --version 2 --compress lz4 \
	"$WORK/root2" "$WORK/pub2" || fail "building image version 2"
rm -rf "$WORK/root2"
start_nginx "$WORK/pub2" 3
fwdspec=$(fwd 10.0.2.100 80 "$HTTP_PORT")

# --- boot 4: power cut while prefetching v2
log4=$WORK/boot4.log
rc=0
"$VM_TOP/scripts/run-qemu" --kernel "$KERNEL" --initrd "$WORK/initrd.gz" \
	--append "root=lazyroot:http://10.0.2.100/ rd.lazyroot.cache=/dev/vda rd.lazyroot.prefetch=500K lazyroot.test=prefetch" \
	--timeout "$VM_TIMEOUT" --log "$log4" --stop-on 'lazyrootd: prefetch: [0-9.]+ of' \
	--disk-rw "$disk" --guestfwd "$fwdspec" >/dev/null 2>&1 || rc=$?
[ "$rc" = 125 ] || { vm_show "$log4"; fail "boot 4: prefetch was not under way to cut the power (run-qemu exit $rc)"; }
note "boot 4: power cut during prefetch: $(grep -m1 -oE 'prefetch: [0-9.]+ of [0-9.]+ MB local' "$log4")"

# --- boot 5: v2 again, prefetch completes, then offline
log5=$WORK/boot5.log
: >"$log5"
stop_nginx_when "$log5"
vm_boot "$log5" "root=lazyroot:http://10.0.2.100/ rd.lazyroot.cache=/dev/vda lazyroot.test=prefetch" \
	--disk-rw "$disk" --guestfwd "$fwdspec"
vm_show "$log5" | grep -E 'manifest verified|newest|prefetch complete|offline|FATAL' || true
! grep -q FATAL "$log5" || fail "boot 5: the hook reported a fatal error"
expect "$log5" 'manifest verified: image version 2' "boot 5: not image version 2"
expect "$log5" '^lazyroot-test: prefetch complete at' "boot 5: prefetch did not complete"
expect "$log5" '^lazyroot-test: offline: every file read, 0 read errors' "boot 5: reads failed offline"
expect "$log5" "^lazyroot-test: offline other.bin md5 $other2" "boot 5: other.bin is not version 2's"
expect "$log5" "^lazyroot-test: offline big.bin md5 $BIG_MD5" "boot 5: big.bin not intact"
v2_chunks=$(grep -c 'GET /chunks/' "$WORK/nginx3/access.log" || true)
v2_bytes=$(awk '$7 ~ /^\/chunks\// {s += $10} END {print s + 0}' "$WORK/nginx3/access.log")
note "v1 -> v2 (8 MiB of 77 MB changed): $v2_chunks chunk and node requests, $v2_bytes bytes over boots 4 and 5 (power cut included)"
[ "$v2_bytes" -le $((8 * 1024 * 1024 * 3 / 2)) ] ||
	fail "the upgrade fetched $v2_bytes bytes for 8 MiB of changed data"
wait "$NGINX_PID" 2>/dev/null || true

# --- boot 6: version 1 offered again
start_nginx "$FIX/pub" 4
fwdspec=$(fwd 10.0.2.100 80 "$HTTP_PORT")
log6=$WORK/boot6.log
VM_TIMEOUT=90 vm_boot "$log6" "root=lazyroot:http://10.0.2.100/ rd.lazyroot.cache=/dev/vda rd.lazyroot.faildelay=0" \
	--disk-rw "$disk" --guestfwd "$fwdspec"
expect "$log6" 'FATAL: lazyrootd refused .*rollback' "boot 6: version 1 was not refused after version 2"
note "boot 6: $(grep -m1 -oE 'FATAL: .*' "$log6" | tr -d '\r' | cut -c1-160)"
for l in "$log1" "$log2" "$log3" "$log4" "$log5" "$log6"; do
	! grep -q 'EXT4-fs error' "$l" || { grep 'EXT4-fs error' "$l" | head -3; fail "$(basename "$l"): the kernel found errors on the cache disk"; }
	! grep -q 'keeping .* I/O error' "$l" || fail "$(basename "$l"): the store could not write"
done
echo "PASS"
