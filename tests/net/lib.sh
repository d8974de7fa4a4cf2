# shellcheck shell=bash
# Host-side network tests: the real transport (host lazyrootd, ASan build)
# against real servers started on 127.0.0.1 by the test.
# shellcheck source=tests/vm/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../vm/lib.sh"

net_require() {
	LAZYROOTD=$BUILD/host/fetcher/lazyrootd
	[ -x "$LAZYROOTD" ] || skip "host lazyrootd not built (make host)"
	WORK=$(mktemp -d /tmp/lazyroot-net.XXXXXX)
	chmod 0755 "$WORK"
	trap 'vm_cleanup' EXIT
}

# verify_source URL [lazyrootd options...]: fetch and verify every chunk.
verify_source() {
	local url=$1 out
	shift
	out=$("$LAZYROOTD" verify --key "$FIX/pub.pem" "$@" "$url" 2>"$WORK/verify.err") || {
		cat "$WORK/verify.err"
		fail "lazyrootd verify $url failed"
	}
	local n v
	n=$(echo "$out" | sed -n 's/^chunks //p')
	v=$(echo "$out" | sed -n 's/^chunks_verified //p')
	if [ -z "$n" ] || [ "$n" != "$v" ]; then fail "verified $v of $n chunks from $url"; fi
	note "$url: $(grep -o 'verified .*' "$WORK/verify.err")"
	note "  requests $(echo "$out" | sed -n 's/^requests //p'), retries $(echo "$out" | sed -n 's/^retries //p'), bytes $(echo "$out" | sed -n 's/^bytes_received //p')"
}
