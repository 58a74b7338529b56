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
# ... and g++: tests/test-header.sh compiles iopool.h as C++ too (it skips
# that part without a C++ compiler, so CI must have one).
need="$need g++"
# ... and libuv and GLib: examples/uv-loop and examples/glib-loop (and their
# make check tests, which skip without them) are built only where
# configure finds them; libuv is also a peer of the benchmark.
need="$need libuv1-dev libglib2.0-dev"
# ... and groff: tests/test-man.sh renders every page of man/ with groff
# (it skips without it, so CI and a fresh machine must have it).
need="$need groff-base"
# ... and musl-gcc for CI's musl leg (.ci/musl-check), with curl, which
# fetches the Check sources that leg builds with musl-gcc.
need="$need musl-tools curl"
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
