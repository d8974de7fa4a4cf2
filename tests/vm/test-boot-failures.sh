#!/usr/bin/env bash
# Failures end in one clear console line, no mount, and a reboot; never a
# hang:
#  - no root=lazyroot: on the command line
#  - a source without a manifest
#  - a RAM disk too small for a cache
#  - a new root without the init= asked for (a FATAL line, not the kernel
#    panic a failing switch_root would be)
#  - a manifest signed by a key the initramfs does not trust
#  - a manifest whose signature does not match (edited after signing)
#  - an image older than rd.lazyroot.minversion (rollback), and older than
#    the minimum baked into the initramfs (which the command line cannot
#    lower)
#  - an initramfs for channel "prod": an image without a channel, one of
#    channel "debug" (signed by the same key), and a "prod" image whose
#    signature expired
# Each guest must name the cause and end itself (reboot -f with QEMU's
# -no-reboot), well within the timeout.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
vm_fixture
VM_TIMEOUT=60
base="brd.rd_size=65536 rd.lazyroot.faildelay=0"

check() { # NAME APPEND FATAL-REGEX [DAEMON-REGEX] [run-qemu args...]
	local name=$1 append=$2 want=$3 why=${4:-} log=$WORK/$1.log
	shift 4 || shift $#
	vm_boot "$log" "$base $append" "$@"
	if ! grep -qE "^lazyroot: FATAL: $want" "$log"; then
		vm_show "$log"
		fail "$name: expected a FATAL line matching /$want/"
	fi
	if [ -n "$why" ] && ! grep -qE "$why" "$log"; then
		vm_show "$log"
		fail "$name: lazyrootd did not say /$why/"
	fi
	[ -n "${MOUNTED_OK:-}" ] || ! grep -q 'erofs: (device erofs): mounted' "$log" ||
		fail "$name: the image was mounted anyway"
	grep -qE '^lazyroot: rebooting' "$log" || fail "$name: no reboot announced"
	note "$name: $(grep -E '^lazyroot: FATAL' "$log" | head -n 1)"
	row "boot: $name" "$(grep -E '^lazyroot: FATAL' "$log" | head -n 1 | tr -d '\r' | sed 's/^lazyroot: //'); rebooted"
	[ -z "$why" ] || note "$name:   $(grep -oE "$why.*" "$log" | head -n 1)"
}

vm_initramfs
check no-root "" "no root=lazyroot:URL" ""
check no-manifest "root=lazyroot:file:///proc" \
	"lazyrootd could not serve file:///proc: cannot fetch lazyroot.manifest from any mirror" ""
check small-cache "root=lazyroot:file:///proc brd.rd_size=4096 rd.lazyroot.faildelay=0" \
	"RAM disk is only 4096 KiB" ""

# Signed-image refusals, served over HTTP from copies of the fixture.
mkdir -p "$WORK/badsig"
cp -a "$FIX/pub/." "$WORK/badsig/"
sed -i 's/^image-version 1$/image-version 9/' "$WORK/badsig/lazyroot.manifest"
start_nginx "$FIX/pub" 1
good_port=$HTTP_PORT
start_nginx "$WORK/badsig" 2
bad_port=$HTTP_PORT

check bad-signature "root=lazyroot:http://10.0.2.100/" \
	"lazyrootd refused http://10.0.2.100/: no acceptable manifest on any mirror \\(bad signature\\)" \
	"manifest refused: bad signature" --guestfwd "$(fwd 10.0.2.100 80 "$bad_port")"
MOUNTED_OK=1 check no-init "root=lazyroot:http://10.0.2.100/ brd.rd_size=131072 init=/sbin/no-such-init" \
	"the new root has no executable /sbin/no-such-init" "" \
	--guestfwd "$(fwd 10.0.2.100 80 "$good_port")"
check rollback "root=lazyroot:http://10.0.2.100/ rd.lazyroot.minversion=2" \
	"lazyrootd refused .*\\(image version below the minimum \\(rollback\\)\\)" \
	"image version 1 is below the minimum 2 \\(rollback\\)" \
	--guestfwd "$(fwd 10.0.2.100 80 "$good_port")"
# Freshness and binding: copies of the fixture signed again with a
# channel and an expiry (lazyroot-image sign verifies them first).
tool=$BUILD/host/image/lazyroot-image
for v in debug expired prod; do
	mkdir -p "$WORK/$v"
	cp -a "$FIX/pub/." "$WORK/$v/"
done
"$tool" sign -q --key "$FIX/key.pem" --channel debug "$WORK/debug" || fail "sign --channel failed"
"$tool" sign -q --key "$FIX/key.pem" --channel prod --expires 1000000000 "$WORK/expired" ||
	fail "sign --expires failed"
"$tool" sign -q --key "$FIX/key.pem" --channel prod --expires +30 "$WORK/prod" || fail "sign failed"
start_nginx "$WORK/debug" 3
debug_port=$HTTP_PORT
start_nginx "$WORK/expired" 4
expired_port=$HTTP_PORT
start_nginx "$WORK/prod" 5
prod_port=$HTTP_PORT
vm_initramfs --key "$FIX/pub.pem" --min-version 2
check baked-minversion "root=lazyroot:http://10.0.2.100/ rd.lazyroot.minversion=1" \
	"lazyrootd refused .*\\(image version below the minimum \\(rollback\\)\\)" \
	"image version 1 is below the minimum 2 \\(rollback\\)" \
	--guestfwd "$(fwd 10.0.2.100 80 "$good_port")"
vm_initramfs --key "$FIX/pub.pem" --channel prod
check no-channel "root=lazyroot:http://10.0.2.100/" \
	"lazyrootd refused .*\\(an image of another channel\\)" \
	"channel '\\(none\\)', this machine boots 'prod'" --guestfwd "$(fwd 10.0.2.100 80 "$good_port")"
check other-channel "root=lazyroot:http://10.0.2.100/" \
	"lazyrootd refused .*\\(an image of another channel\\)" \
	"channel 'debug', this machine boots 'prod'" --guestfwd "$(fwd 10.0.2.100 80 "$debug_port")"
check expired "root=lazyroot:http://10.0.2.100/" \
	"lazyrootd refused .*\\(its signature expired\\)" \
	"signed for use until 1000000000" --guestfwd "$(fwd 10.0.2.100 80 "$expired_port")"
# ... and the right channel, unexpired, boots (to the new root's init).
vm_boot "$WORK/prod.log" "root=lazyroot:http://10.0.2.100/ brd.rd_size=131072" \
	--guestfwd "$(fwd 10.0.2.100 80 "$prod_port")"
expect "$WORK/prod.log" '^lazyroot-test: new root init running' "the prod image, unexpired, did not boot"
note "prod initramfs, prod image valid for 30 days: boots"
row "boot: channel prod initramfs, prod image signed for 30 days" "boots"

vm_initramfs --key "$FIX/other-pub.pem"
check wrong-key "root=lazyroot:http://10.0.2.100/" \
	"lazyrootd refused .*\\(signed by a key that is not trusted\\)" \
	"which is not among the 1 trusted keys" --guestfwd "$(fwd 10.0.2.100 80 "$good_port")"
echo "PASS"
