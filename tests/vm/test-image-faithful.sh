#!/usr/bin/env bash
# lazyroot-image build reproduces the tree exactly: a root with setuid,
# setgid and sticky modes, owners and groups other than root, xattrs (a
# file capability, user.*), hard links, character and block devices, a
# FIFO, short and long symlinks, empty, inline, block-sized and large
# files, and mtimes in the past and the future. Built once as it is and
# once with SOURCE_DATE_EPOCH (newer mtimes clamped, everything else kept,
# the image reproducible). Both images are mounted by the test kernel in
# QEMU (plain EROFS from virtio disks: a loop-free mount), listed there by
# lr-list, and compared field by field with lr-list of the source tree.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
tool=$BUILD/host/image/lazyroot-image
lister=$BUILD/host/lr-list
slister=$BUILD/static/lr-list
if [ ! -x "$tool" ] || [ ! -x "$lister" ]; then skip "host tools not built (make host)"; fi
[ -x "$slister" ] || skip "static lr-list not built (make static)"
[ "$(id -u)" = 0 ] || skip "needs root to make devices and set owners"

t=$WORK/tree
mkdir -p "$t"/{bin,etc,var/mail,var/local,dev,data/many,empty-dir}
printf 'root:x:0:\nshadow:x:42:\n' >"$t/etc/group"
echo "secret" >"$t/etc/shadow"
chown 0:42 "$t/etc/shadow"
chmod 0640 "$t/etc/shadow"
head -c 20000 /dev/urandom >"$t/bin/chage"
chown 0:42 "$t/bin/chage"
chmod 2755 "$t/bin/chage"
head -c 30000 /dev/urandom >"$t/bin/su"
chmod 4755 "$t/bin/su"
chgrp 8 "$t/var/mail"
chmod 2775 "$t/var/mail"
chgrp 50 "$t/var/local"
chmod 3775 "$t/var/local"
mkdir -m 1777 "$t/tmp"
head -c 40000 /dev/urandom >"$t/bin/ping"
setcap cap_net_raw+ep "$t/bin/ping" 2>/dev/null || setfattr -n security.capability \
	-v 0x0100000200200000000000000000000000000000 "$t/bin/ping"
setfattr -n user.comment -v "kept" "$t/etc/shadow"
setfattr -n user.big -v "$(head -c 2000 /dev/zero | tr '\0' b)" "$t/data"
ln "$t/bin/su" "$t/bin/su-hardlink"
mknod "$t/dev/null" c 1 3
mknod "$t/dev/vda" b 254 0
mkfifo "$t/dev/initctl"
ln -s ../bin/su "$t/bin/su-link"
ln -s "$(printf 'deep/%.0s' $(seq 1 150))end" "$t/longlink"
: >"$t/data/empty"
head -c 4096 /dev/urandom >"$t/data/one-block"
head -c 3000000 /dev/urandom >"$t/data/large"
seq 1 100000 >"$t/data/compressible"
for i in $(seq 1 300); do echo "$i" >"$t/data/many/f$i"; done
chown -R 1000:1000 "$t/data/many"
chown 1001:1002 "$t/data/one-block"
touch -h -d '1999-12-31 23:59:59.123456789' "$t/bin/su-link"
touch -d '2001-02-03 04:05:06.5' "$t/data/large"
touch -d '2040-01-01 00:00:00' "$t/data/compressible" "$t/etc"
touch -d '2030-06-01' "$t"

"$tool" keygen -q "$WORK/k.pem" "$WORK/p.pem"
"$tool" build -q --key "$WORK/k.pem" --keep-image "$WORK/a.erofs" "$t" "$WORK/pub-a" ||
	fail "build of the tree failed"
sde=1700000000
for n in 1 2; do
	SOURCE_DATE_EPOCH=$sde "$tool" build -q --key "$WORK/k.pem" --keep-image "$WORK/b$n.erofs" \
		"$t" "$WORK/pub-b$n" || fail "build with SOURCE_DATE_EPOCH failed"
done
cmp -s "$WORK/b1.erofs" "$WORK/b2.erofs" || fail "two builds with SOURCE_DATE_EPOCH differ"
[ "$(grep tree-root "$WORK/pub-b1/lazyroot.manifest")" = "$(grep tree-root "$WORK/pub-b2/lazyroot.manifest")" ] ||
	fail "two builds with SOURCE_DATE_EPOCH have different tree roots"
note "two builds with SOURCE_DATE_EPOCH=$sde: identical images and tree roots"

"$lister" "$t" >"$WORK/src.list" || fail "lr-list of the source tree failed"
# What the clamped image must show: mtimes after SOURCE_DATE_EPOCH become it.
awk -v sde=$sde '{ for (i = 1; i <= NF; i++) if ($i ~ /^t=/) { split(substr($i, 3), p, ".");
	if (p[1] + 0 > sde) $i = "t=" sde ".000000000" } print }' "$WORK/src.list" >"$WORK/src-clamped.list"

# The guest: mount both images read-only from virtio disks, list, stop.
mkdir -p "$WORK/extra/sbin"
cp "$slister" "$WORK/extra/sbin/lr-list"
strip "$WORK/extra/sbin/lr-list" 2>/dev/null || true
cat >"$WORK/extra/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
# Only emergencies on the console: late kernel messages (input devices
# probing) would otherwise land inside the listings.
echo 1 >/proc/sys/kernel/printk
exec </dev/console >/dev/console 2>&1
for d in vda vdb; do
	mkdir -p /mnt/$d
	if mount -t erofs -o ro /dev/$d /mnt/$d; then
		echo "LRLIST-$d-BEGIN"
		/sbin/lr-list /mnt/$d && echo "LRLIST-$d-END"
	else
		echo "LRLIST-$d-MOUNT-FAILED"
	fi
done
poweroff -f
INIT
chmod 755 "$WORK/extra/init"
"$VM_TOP/initramfs/build" --daemon "$DAEMON" --key "$WORK/p.pem" --extra "$WORK/extra" \
	"$WORK/initrd.gz" 2>/dev/null || fail "initramfs build failed"
log=$WORK/serial.log
vm_boot "$log" "rdinit=/init" --disk "$WORK/a.erofs" --disk "$WORK/b1.erofs"
tr -d '\r' <"$log" >"$log.txt"
for d in vda vdb; do
	grep -q "^LRLIST-$d-END" "$log.txt" || { tail -n 20 "$log.txt"; fail "the guest did not list $d"; }
	sed -n "/^LRLIST-$d-BEGIN/,/^LRLIST-$d-END/p" "$log.txt" | sed '1d;$d' >"$WORK/$d.list"
done
if ! diff -u "$WORK/src.list" "$WORK/vda.list" >"$WORK/diff-a"; then
	head -n 40 "$WORK/diff-a"
	fail "the image differs from its source tree ($(grep -c '^[-+][^-+]' "$WORK/diff-a") lines)"
fi
note "image of the tree: $(wc -l <"$WORK/vda.list") entries, every field equal to the source's"
if ! diff -u "$WORK/src-clamped.list" "$WORK/vdb.list" >"$WORK/diff-b"; then
	head -n 40 "$WORK/diff-b"
	fail "the SOURCE_DATE_EPOCH image differs from the clamped source listing"
fi
note "SOURCE_DATE_EPOCH image: newer mtimes clamped to $sde, every other field equal"
for f in ' 4755 ' ' 2755 ' ' 3775 ' ' 1777 ' ' 0:42 ' 'security.capability' ' r=254:0' ' p 0' ' n=2 '; do
	grep -q -- "$f" "$WORK/vda.list" || fail "the listing has no entry with '$f' (the test tree lost a feature)"
done
echo "PASS"
