#!/usr/bin/env bash
# lazyrootd's transport against a mirror that misbehaves on purpose
# (tests/tools/fault-proxy in front of nginx, all on 127.0.0.1): resets,
# stalls, a slow drip, truncated, flipped, short and long bodies, 5xx and
# 404 answers, an oversized body, index names missing or wrong. Each time
# the image must still verify (every bad answer refused, the fetch
# retried), or, where the mirror is the only one and always wrong, fail
# with a line naming the URL and the HTTP status. Redirects: followed within the mirror's scheme, host and
# port, refused to another host or scheme. Proxy variables in the
# environment are ignored. An https certificate for another host name is
# refused.
# shellcheck source=tests/net/lib.sh
. "$(dirname "$0")/lib.sh"
net_require
vm_fixture
start_nginx "$FIX/pub" 1
start_fault_proxy "$HTTP_PORT"
rules=$PROXY_RULES stats=$PROXY_STATS
mirror=http://127.0.0.1:$PROXY_PORT

st() { sed -n "s/^$1 //p" "$WORK/out"; }
# Ports are picked per run: the table's rows must not depend on them.
noport() { sed -E 's/:[0-9]+(\/|$)/:PORT\1/g'; }
injected() { sed -n "s/^$1 //p" "$stats"; }

# with_rules NAME RULES [lazyrootd options...]: the image verifies through
# the proxy while RULES apply, and the proxy injected at least one fault.
with_rules() {
	local name=$1 rule=$2
	printf '%s\n' "$rule" >"$rules"
	shift 2
	"$LAZYROOTD" verify --key "$FIX/pub.pem" "$@" "${MIRRORS:-$mirror}" >"$WORK/out" 2>"$WORK/err" || {
		tail -n 20 "$WORK/err"
		fail "$name: verification failed"
	}
	[ "$(st chunks_verified)" = "$(st chunks)" ] || fail "$name: verified $(st chunks_verified) of $(st chunks) chunks"
	local n
	n=$(injected faults)
	[ "${n:-0}" -ge 1 ] || fail "$name: the proxy injected nothing"
	note "$name: $n faults injected; image verified: requests $(st requests), retries $(st retries), answers_rejected $(st answers_rejected), fetches_failed $(st fetches_failed)"
	row "mirror: $name ($(noport <<<"$rule"))" "$n injected; image verified, $(st answers_rejected) answers refused, $(st retries) retries, 0 fetches failed"
}

# The first answer for each chunk bent: each fetch fails once, the retry
# gets the right bytes. Wrong bytes must be refused, never accepted.
with_rules reset 'reset path=^/chunks/ per_path=1'
with_rules stall 'stall path=^/chunks/ count=3 per_path=1' --fetch-timeout 2
with_rules truncate 'truncate path=^/chunks/ per_path=1'
with_rules flip 'flip path=^/chunks/ per_path=1'
[ "$(st answers_rejected)" -ge "$(injected flip)" ] || fail "flip: $(injected flip) flipped, $(st answers_rejected) refused"
with_rules short 'short path=^/chunks/ per_path=1'
[ "$(st answers_rejected)" -ge "$(injected short)" ] || fail "short: $(injected short) short, $(st answers_rejected) refused"
with_rules long 'long path=^/chunks/ per_path=1'
with_rules 503 'status code=503 path=^/chunks/ per_path=1'
with_rules 404-once 'status code=404 path=^/chunks/ count=5 per_path=1'
with_rules big 'big bytes=33554432 path=^/chunks/ count=2 per_path=1'
with_rules 'slow drip' 'drip rate=500 path=^/chunks/ count=3 per_path=1' --fetch-timeout 2
# (the tree's root node is small enough to arrive in time; the others are cut off)
[ "$(st retries)" -ge 2 ] || fail "slow drip: not cut off by the transfer's time limit"

with_rules same-origin-redirect "redirect to=$mirror/{path}?r=1 path=^/chunks/[^?]*\$ every=3"
[ "$(st redirects)" -ge 1 ] || fail "no redirect followed"
with_rules 'manifest garbage' 'flip path=manifest count=1'
# Index names (docs/image-format.md): missing, or wrong bytes under them.
# Either way the names are given up and every chunk comes by digest.
with_rules 'index names missing' 'status code=404 path=^/index/'
[ "$(st index_names)" = off ] || fail "index names missing: still used"
with_rules 'index names wrong' 'flip path=^/index/'
[ "$(st index_names)" = off ] || fail "index names wrong: still used"
[ "$(st digest_mismatches)" -ge 1 ] || fail "index names wrong: no wrong bytes seen"

# A mirror that always answers wrong: failure, naming the URL and status.
printf 'status code=403 path=manifest\n' >"$rules"
rc=0
"$LAZYROOTD" verify --key "$FIX/pub.pem" "$mirror" >/dev/null 2>"$WORK/err" || rc=$?
[ "$rc" -ne 0 ] || fail "a mirror answering 403 to the manifest was accepted"
# 2: could not serve (LeakSanitizer's 23 would mean a leak on this path)
[ "$rc" -eq 2 ] || { cat "$WORK/err"; fail "exit $rc on a failed manifest fetch, not 2"; }
grep -q "cannot fetch lazyroot.manifest from any mirror; the last attempt: $mirror/lazyroot.manifest: HTTP 403" "$WORK/err" ||
	{ cat "$WORK/err"; fail "the failure does not name the URL and the HTTP status"; }
note "403: $(grep -o 'cannot fetch.*' "$WORK/err" | tail -n 1)"
row "the only mirror answers 403 to the manifest" "fails, exit 2: $(grep -o 'cannot fetch.*' "$WORK/err" | tail -n 1 | sed "s|$mirror|MIRROR|")"

# Redirects out of the mirror's origin: refused, counted, and with this
# mirror alone the image cannot be had.
other=$(free_port)
for to in "http://127.0.0.1:$other/{path}" "https://127.0.0.1:$PROXY_PORT/{path}" "http://localhost:$PROXY_PORT/{path}"; do
	printf 'redirect to=%s path=^/chunks/\n' "$to" >"$rules"
	if "$LAZYROOTD" verify --key "$FIX/pub.pem" --fetch-timeout 2 "$mirror" >"$WORK/out" 2>"$WORK/err"; then
		fail "redirect to $to was followed"
	fi
	grep -q "redirects to ${to%%\{*}.*: refused" "$WORK/err" || { tail -n 5 "$WORK/err"; fail "no refusal of the redirect to $to"; }
	note "redirect to $to: refused ($(grep -c ': refused' "$WORK/err") times)"
	row "redirect to $(noport <<<"${to%%/\{*}") (other host, port or scheme)" "refused, counted in redirects_refused; not followed"
done
# ... and with a good second mirror, the image comes from there.
MIRRORS=$mirror,http://127.0.0.1:$HTTP_PORT \
	with_rules 'redirect away, good second mirror' "redirect to=http://127.0.0.1:$other/{path} path=^/chunks/ per_path=1"

# Proxy variables in the environment do not apply.
: >"$rules"
dead=$(free_port)
http_proxy=http://127.0.0.1:$dead HTTP_PROXY=http://127.0.0.1:$dead ALL_PROXY=http://127.0.0.1:$dead \
	"$LAZYROOTD" verify --key "$FIX/pub.pem" "$mirror" >"$WORK/out" 2>"$WORK/err" ||
	{ tail -n 5 "$WORK/err"; fail "a proxy variable in the environment was used"; }
note "http_proxy/ALL_PROXY set to a dead port: ignored, image verified"
row "http_proxy, HTTP_PROXY, ALL_PROXY set to a dead port" "ignored; image verified"

# https with a certificate for another name (lazyroot.test, asked as 127.0.0.1).
if "$LAZYROOTD" verify --key "$FIX/pub.pem" --ca "$WORK/ca.pem" --fetch-timeout 2 \
	"https://127.0.0.1:$HTTPS_PORT" >/dev/null 2>"$WORK/err"; then
	fail "a certificate for lazyroot.test was accepted for 127.0.0.1"
fi
grep -q "lazyroot.manifest: .*Key was rejected\|certificate" "$WORK/err" || { cat "$WORK/err"; fail "no certificate error"; }
note "certificate for another host name: refused ($(grep -o 'fetch https.*' "$WORK/err" | head -n 1))"
row "https certificate for another host name" "refused (Key was rejected by service)"
echo "PASS"
