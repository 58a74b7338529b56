#!/bin/sh
# Install what building and testing iopool needs on Debian or Ubuntu, asking
# apt-get only for the packages that are missing (through sudo when not
# root).  Usage: ./install-deps.sh [EXTRA-PACKAGE...]
set -e
need="gcc libc6-dev make autoconf automake libtool libtool-bin pkg-config check"
# CI (.ci/run) also runs the suites under valgrind: memcheck and helgrind
# (its headers come with it), with glibc's symbols (libc6-dbg) so that
# stacks and tests/valgrind.supp see glibc's own function names.  gcc's
# sanitizer runtimes come with gcc.
need="$need valgrind libc6-dbg"
# ... and the API fuzzer (fuzz/run.sh), which needs clang's libFuzzer.
need="$need clang libclang-rt-14-dev"
missing=""
for p in $need "$@"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -n "$missing" ] || exit 0
if [ "$(id -u)" -eq 0 ]; then
	sudo=""
else
	sudo="sudo"
fi
echo "install-deps: installing$missing"
$sudo apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
