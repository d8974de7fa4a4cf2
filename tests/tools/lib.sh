# shellcheck shell=bash
# Shared by the tools tests. Sourced (tests/run runs every other *.sh here).

# tools_erofs_setup: what the tests of EROFS images need, or a skip (77):
# $tool (lazyroot-image), mkfs.erofs, python3; $w, a work directory
# removed at exit. Uses $top.
tools_erofs_setup() {
	tool=${BUILD:-$top/build}/host/image/lazyroot-image
	[ -x "$tool" ] || { echo "SKIP: lazyroot-image not built (make host)"; exit 77; }
	command -v mkfs.erofs >/dev/null || { echo "SKIP: mkfs.erofs not installed (scripts/setup)"; exit 77; }
	command -v python3 >/dev/null || { echo "SKIP: python3 not installed (scripts/setup)"; exit 77; }
	w=$(mktemp -d)
	trap 'rm -rf "$w"' EXIT
}

# twin_tree SRC DST: DST is a copy of SRC with every regular file's bytes
# inverted and everything else equal (names, sizes, modes, times): built
# by mkfs.erofs, the twin has the same layout, and every block that holds
# any file byte differs between the two images.
twin_tree() {
	cp -a "$1" "$2"
	python3 - "$2" <<'PY'
import os, sys
done = set()
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(d, f)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        st = os.stat(p)
        if st.st_ino in done:  # a hard link: inverted once already
            continue
        done.add(st.st_ino)
        data = open(p, 'rb').read()
        open(p, 'wb').write(bytes(255 - c for c in data))
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
PY
}

# twin_images: $w/b the twin of the tree $w/a (twin_tree); a key pair
# $w/k.pem, $w/p.pem; both trees built uncompressed in 16 KiB chunks into
# $w/a.erofs, $w/b.erofs and published in $w/pub-a, $w/pub-b (the first
# verified). Fails the test if any step does.
twin_images() {
	twin_tree "$w/a" "$w/b"
	"$tool" keygen -q "$w/k.pem" "$w/p.pem"
	for t in a b; do
		"$tool" build -q --key "$w/k.pem" --compress none --chunk-size 16384 \
			--keep-image "$w/$t.erofs" "$w/$t" "$w/pub-$t"
	done
	"$tool" verify -q --key "$w/p.pem" "$w/pub-a" || { echo "FAIL: verify of a published image"; exit 1; }
}

# manifest_object PUBDIR KEY: the path of the object the manifest's KEY
# line names (its first field, a digest); non-zero if there is none.
manifest_object() {
	local d
	d=$(sed -n "s/^$2 \([0-9a-f]*\) .*/\1/p" "$1/lazyroot.manifest")
	[ -n "$d" ] && echo "$1/chunks/${d:0:2}/$d"
}
