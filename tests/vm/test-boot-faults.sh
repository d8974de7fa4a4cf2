#!/usr/bin/env bash
# Faults on the way to the mirror, in a real boot (the test kernel), with
# tests/tools/fault-proxy between the guest and nginx:
#  1. outage: the mirror answers nothing (every connection reset) for 10 s,
#     starting at the first request after switch_root (the new init's
#     exec): the boot completes, slower, with 0 read errors;
#  2. dead primary: the first mirror refuses every connection; the root
#     is mounted within 2 s of the outage boot's (failover);
#  3. corrupted answers: the first answer for every chunk has a byte
#     changed, and prefetch reads the whole image: every bad answer is
#     refused (>= 1,000), and with the mirror then stopped every file of
#     the root reads intact;
#  4. every mirror gone past the READ deadline: the reader gets EIO (with
#     a console line from lazyrootd), and the same file reads intact once
#     the mirror is back.
# vm-alone: its checks compare the times of its own boots
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
vm_require
[ "$VM_BACKEND" = cachefiles ] || skip "runs on the test kernel"
vm_fixture
start_nginx "$FIX/pub"
start_fault_proxy "$HTTP_PORT"
vm_initramfs
dead=$(free_port)
mirror=(--guestfwd "$(fwd 10.0.2.100 80 "$PROXY_PORT")")
status() { sed -nE "s/^lazyroot-test: lazyrootd status: .*$2 ([0-9]+).*/\\1/p" "$1"; }
t_big() { sed -nE 's/^lazyroot-test: big.bin md5 [0-9a-f]+ at t=([0-9.]+)s.*/\1/p' "$1"; }

# 0. The same boot without faults: what the outage is measured against.
vm_boot "$WORK/plain.log" "root=lazyroot:http://10.0.2.100/ brd.rd_size=131072" "${mirror[@]}"
check_boot "$WORK/plain.log" >/dev/null
t_plain_root=$T_ROOT_MOUNTED
t_plain=$(t_big "$WORK/plain.log")
before=$(sed -nE 's/^lazyroot: before switch_root: .* in ([0-9]+) requests.*/\1/p' "$WORK/plain.log")
note "no faults: $(sed -n 's/^requests //p' "$PROXY_STATS") requests in the boot, $before before switch_root; root mounted after ${t_plain_root}s, big.bin read by t=${t_plain}s"

# 1. A 10 s outage from the first request after switch_root.
log=$WORK/outage.log
printf 'reset after=%s for=10\n' "$before" >"$PROXY_RULES"
vm_boot "$log" "root=lazyroot:http://10.0.2.100/ brd.rd_size=131072" "${mirror[@]}"
check_boot "$log"
resets=$(sed -n 's/^reset //p' "$PROXY_STATS")
t_out=$(t_big "$log")
note "outage: ${resets:-0} connections reset over 10 s; big.bin read by t=${t_out}s (no faults: ${t_plain}s)"
note "outage: $(grep -m1 '^lazyroot-test: lazyrootd status' "$log")"
row "boot: the mirror resets every connection for 10 s from the new init's exec" "boot completes, 0 read errors, 0 READ timeouts; big.bin read by t=${t_out}s (no faults: ${t_plain}s)"
[ "${resets:-0}" -ge 3 ] || fail "the outage reset only ${resets:-0} connections: it missed the boot"
[ "$(status "$log" read_errors)" = 0 ] || fail "readers saw errors during the outage"
[ "$(status "$log" read_timeouts)" = 0 ] || fail "READs timed out during the outage"
[ "$(echo "$t_out > $t_plain + 5" | bc)" = 1 ] || fail "the outage cost no time: did it happen?"

# 2. A dead first mirror.
: >"$PROXY_RULES"
log=$WORK/failover.log
vm_boot "$log" "root=lazyroot:http://10.0.2.101/,http://10.0.2.100/ brd.rd_size=131072" "${mirror[@]}" \
	--guestfwd "$(fwd 10.0.2.101 80 "$dead")"
check_boot "$log"
note "dead first mirror: root mounted after ${T_ROOT_MOUNTED}s (one mirror, no faults: ${t_plain_root}s)"
row "boot: the first of two mirrors refuses every connection" "root mounted after ${T_ROOT_MOUNTED}s (one good mirror: ${t_plain_root}s)"
[ "$(echo "$T_ROOT_MOUNTED <= $t_plain_root + 2" | bc)" = 1 ] || fail "failover took more than 2 s"

# 3. The first answer for every chunk corrupted; prefetch reads it all.
printf 'flip path=^/chunks/ per_path=1\n' >"$PROXY_RULES"
log=$WORK/flip.log
: >"$log"
stop_nginx_when "$log"
vm_boot "$log" "root=lazyroot:http://10.0.2.100/ brd.rd_size=262144 lazyroot.test=prefetch" \
	--mem 768 "${mirror[@]}"
vm_show "$log"
! grep -q FATAL "$log" || fail "the hook reported a fatal error"
flips=$(sed -n 's/^flip //p' "$PROXY_STATS")
line=$(grep -m1 '^lazyroot-test: offline: chunk_bytes' "$log") || fail "the guest did not get to read offline"
refused=$(echo "$line" | sed -nE 's/.*answers_rejected ([0-9]+).*/\1/p')
expect "$log" '^lazyroot-test: prefetch complete at' "prefetch did not complete"
expect "$log" '^lazyroot-test: offline: every file read, 0 read errors' "reads failed"
expect "$log" "^lazyroot-test: offline big.bin md5 $BIG_MD5" "big.bin not intact"
expect "$log" "^lazyroot-test: offline other.bin md5 $OTHER_MD5" "other.bin not intact"
note "corrupted answers: $flips flipped by the proxy, $refused refused by lazyrootd; every file read intact"
row "boot + prefetch: the first answer for every chunk has a byte changed" "$flips corrupted answers, $refused refused; prefetch completes; every file reads intact offline"
[ "${flips:-0}" -ge 1000 ] || fail "only ${flips:-0} corrupted answers were sent"
[ "${refused:-0}" -ge "$flips" ] || fail "$flips corrupted answers sent, only $refused refused"

# 4. Every mirror gone for longer than the READ deadline (5 s), then back.
start_nginx "$FIX/pub" 2
start_fault_proxy "$HTTP_PORT"
mirror=(--guestfwd "$(fwd 10.0.2.100 80 "$PROXY_PORT")")
log=$WORK/deadline.log
: >"$log"
when_guest_says "$log" 'stop the mirror now' sh -c "echo reset >'$PROXY_RULES'"
when_guest_says "$log" 'start the mirror now' sh -c ": >'$PROXY_RULES'"
vm_boot "$log" "root=lazyroot:http://10.0.2.100/ brd.rd_size=131072 rd.lazyroot.timeout=5 lazyroot.test=deadline" "${mirror[@]}"
vm_show "$log"
expect "$log" '^lazyroot-test: other.bin with every mirror gone: FAILED' "a read with every mirror gone did not fail"
expect "$log" 'lazyrootd: .*not served within 5000 ms: the reader gets EIO' "no console line about the failed read"
expect "$log" "^lazyroot-test: other.bin with the mirror back: md5 $OTHER_MD5" "reads did not work again with the mirror back"
note "every mirror gone: $(grep -m1 -o 'other.bin with every mirror gone: FAILED.*' "$log")"
note "mirror back: other.bin intact"
row "booted: every mirror gone past the READ deadline (5 s), then back" "the reader gets EIO (a console line says so); the same file reads intact once the mirror is back"
echo "PASS"
