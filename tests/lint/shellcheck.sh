#!/usr/bin/env bash
# Every shell script in the tree passes shellcheck; initramfs code is
# checked as POSIX sh (it runs under busybox ash).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
command -v shellcheck >/dev/null || { echo "SKIP: shellcheck not installed"; exit 77; }
bash_scripts=(scripts/setup scripts/test scripts/demo scripts/build-kernel scripts/build-deps scripts/build-mke2fs scripts/run-qemu scripts/lib.sh
	initramfs/build tests/run tests/vm/*.sh tests/vm/make-test-root tests/lint/*.sh tests/net/*.sh
	tests/tools/*.sh tests/fuzz/run.sh .ci/run)
sh_scripts=(hooks/lazyroot.sh hooks/udhcpc.script initramfs/init kernel-config/check)
n=0
for f in "${bash_scripts[@]}"; do
	[ -e "$f" ] || { echo "FAIL: $f listed but missing"; exit 1; }
	n=$((n + 1))
done
shellcheck -x "${bash_scripts[@]}"
shellcheck -x -s sh "${sh_scripts[@]}"
# Under pipefail, `producer | grep -q` fails at random: grep -q exits at
# the first match, the producer dies of SIGPIPE if it writes after that,
# and the pipeline's status is 141 (a fresh machine's setup dropped kernel
# packages that way). grep PATTERN >/dev/null reads everything.
bad=0
for f in "${bash_scripts[@]}" scripts/*; do
	if [ ! -f "$f" ] || ! head -n 1 "$f" | grep bash >/dev/null || ! grep -q pipefail "$f"; then
		continue
	fi
	if grep -nE '^[^#]*\|[[:space:]]*grep -[[:alpha:]]*q' "$f"; then
		echo "FAIL: $f: a pipe into grep -q under pipefail (use grep PATTERN >/dev/null)"
		bad=1
	fi
done
[ "$bad" = 0 ] || exit 1
echo "shellcheck clean: $((n + ${#sh_scripts[@]})) scripts"
