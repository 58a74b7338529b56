#!/bin/sh
# examples/uv-loop must sum files exactly as cksum(1) does while its timer
# keeps ticking, and tick while reads are in flight: the checks are those
# of tests/loop-check.sh, beside this script.  Run by `make check`, which
# sets UV_LOOP (the built examples/uv-loop; empty where configure found
# no libuv to build it with).  By hand, from the build directory:
#	UV_LOOP=./examples/uv-loop sh ../tests/test-uv-loop.sh
# Exits 0 on success, 1 after printing each failure, 77 when the example
# was not built (libuv missing: ./install-deps.sh installs it), 99 when
# the test itself cannot run.

if [ -z "${UV_LOOP:-}" ]; then
	echo "SKIP: examples/uv-loop was not built: configure found no libuv"
	exit 77
fi
exec sh "$(dirname "$0")/loop-check.sh" "$UV_LOOP" uv-loop
