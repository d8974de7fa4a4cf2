#!/usr/bin/env bash
# Keys and signatures are plain OpenSSL material (docs/image-format.md):
#  1. openssl verifies a manifest signature made by lazyroot-image;
#  2. lazyroot-image signs with a key openssl generated;
#  3. a manifest signed by openssl alone passes lazyroot-image verify;
#  4. the manifest's key-id is SHA-256 of the DER public key, first 8 bytes.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tool=${BUILD:-$top/build}/host/image/lazyroot-image
[ -x "$tool" ] || { echo "SKIP: $tool not built (make host)"; exit 77; }
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 77; }
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

head -c $((64 * 4096)) /dev/zero | openssl enc -aes-128-ctr -nosalt -K 00 -iv 00 2>/dev/null >"$w/image"
split_manifest() { # MANIFEST BODY SIG
	grep -v '^signature ' "$1" >"$2"
	sed -n 's/^signature //p' "$1" | base64 -d >"$3"
}

# 1
"$tool" keygen -q "$w/k1.pem" "$w/p1.pem"
"$tool" publish -q --no-meta-map --key "$w/k1.pem" --chunk-size 16384 "$w/image" "$w/pub1"
split_manifest "$w/pub1/lazyroot.manifest" "$w/body" "$w/sig"
openssl dgst -sha256 -verify "$w/p1.pem" -signature "$w/sig" "$w/body" | grep 'Verified OK' >/dev/null ||
	fail "openssl does not verify lazyroot-image's signature"
echo "openssl verifies a lazyroot-image signature"

# 2
openssl ecparam -name prime256v1 -genkey -noout -out "$w/k2.pem"
openssl ec -in "$w/k2.pem" -pubout -out "$w/p2.pem" 2>/dev/null
"$tool" publish -q --no-meta-map --key "$w/k2.pem" --chunk-size 16384 "$w/image" "$w/pub2"
"$tool" verify -q --key "$w/p2.pem" "$w/pub2" || fail "openssl-made key not usable by lazyroot-image"
echo "lazyroot-image signs with an openssl-made key"

# 3
split_manifest "$w/pub2/lazyroot.manifest" "$w/body2" "$w/sig2"
openssl dgst -sha256 -sign "$w/k2.pem" -out "$w/sig3" "$w/body2"
{ cat "$w/body2"; printf 'signature %s\n' "$(base64 -w0 "$w/sig3")"; } >"$w/pub2/lazyroot.manifest"
"$tool" verify -q --key "$w/p2.pem" "$w/pub2" || fail "openssl's own signature refused"
echo "a manifest signed by openssl alone verifies"
"$tool" verify -q --key "$w/p1.pem" "$w/pub2" 2>/dev/null && fail "verified with the wrong key"

# 4
id=$(openssl pkey -pubin -in "$w/p2.pem" -outform DER | sha256sum | cut -c1-16)
grep -qx "key-id $id" "$w/pub2/lazyroot.manifest" || fail "key-id is not sha256(DER public key)[:8]"
echo "key-id = first 8 bytes of SHA-256 of the DER public key ($id)"
echo "PASS"
