#!/usr/bin/env bash
# lazyrootd's transport against nginx on 127.0.0.1: HTTP, HTTPS with a CA
# made now (and refused without it; TLS sessions resumed), host names pinned at start, a dead
# first mirror (failover), and a
# mirror that tampers with chunks (every bad answer refused, the image
# still verifies from the good mirror).
# shellcheck source=tests/net/lib.sh
. "$(dirname "$0")/lib.sh"
net_require
vm_fixture
start_nginx "$FIX/pub" 1
http=$HTTP_PORT https=$HTTPS_PORT
verify_source "http://127.0.0.1:$http"
verify_source "https://lazyroot.test:$https" --ca "$WORK/ca.pem" --resolve "lazyroot.test:$https:127.0.0.1"
# Connections after the first resume a TLS session (libcurl's session
# cache in the multi handle; TLS 1.3 tickets: with TLS 1.2 alone, curl's
# mbedTLS backend offers session IDs, which nginx keeps only with an
# ssl_session_cache) instead of each paying a full handshake.
tls=$WORK/nginx1/tls.log
conns=$(sort -u "$tls" | wc -l)
full=$(sort -u "$tls" | grep -c ' \.$' || true)
note "https: $conns connections, $full full TLS handshakes, $((conns - full)) resumed"
[ "$conns" -gt 1 ] || fail "https used one connection: nothing to learn about session reuse"
[ "$full" -lt "$conns" ] || fail "every https connection made a full TLS handshake"
if "$LAZYROOTD" verify --key "$FIX/pub.pem" --fetch-timeout 2 \
	--resolve "lazyroot.test:$https:127.0.0.1" "https://lazyroot.test:$https" >/dev/null 2>"$WORK/noca.err"; then
	fail "https without the CA bundle was accepted"
fi
grep -q "Key was rejected\|certificate" "$WORK/noca.err" || { cat "$WORK/noca.err"; fail "no certificate error reported"; }
note "https without the CA: refused ($(grep -m1 -o 'fetch lazyroot.manifest.*' "$WORK/noca.err"))"

# A host name is resolved once at start and pinned (after switch_root the
# daemon can resolve nothing: its /etc is gone).
"$LAZYROOTD" verify --key "$FIX/pub.pem" "http://localhost:$http" >/dev/null 2>"$WORK/pin.err" ||
	{ cat "$WORK/pin.err"; fail "verify via localhost failed"; }
grep -q "pinned localhost:$http:" "$WORK/pin.err" || { cat "$WORK/pin.err"; fail "localhost was not pinned"; }
note "$(grep -o "pinned localhost.*" "$WORK/pin.err")"

dead=$(free_port)
verify_source "http://127.0.0.1:$dead,http://127.0.0.1:$http"

mkdir -p "$WORK/tampered"
cp -a "$FIX/pub/." "$WORK/tampered/"
n=0
for f in "$WORK"/tampered/chunks/*/*; do
	n=$((n + 1))
	[ $((n % 50)) -eq 0 ] || continue
	printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc status=none
done
start_nginx "$WORK/tampered" 2
out=$("$LAZYROOTD" verify --key "$FIX/pub.pem" "http://127.0.0.1:$HTTP_PORT,http://127.0.0.1:$http" 2>/dev/null) ||
	fail "verification with a tampering first mirror failed"
bad=$(echo "$out" | sed -n 's/^digest_mismatches //p')
[ "$bad" -ge 1 ] || fail "no tampered answer was seen"
note "tampering mirror first: $bad bad answers refused, image verified from the good mirror"
if "$LAZYROOTD" verify --key "$FIX/pub.pem" "http://127.0.0.1:$HTTP_PORT" >/dev/null 2>&1; then
	fail "verification from the tampering mirror alone succeeded"
fi
note "tampering mirror alone: verification fails"
echo "PASS"
