#!/bin/sh
# examples/epoll-loop must sum files exactly as cksum(1) does while its timer
# keeps ticking, and tick while reads are in flight: the checks are those
# of tests/loop-check.sh, beside this script.  Run by `make check`, which
# sets EPOLL_LOOP (the built examples/epoll-loop).  By hand, from the build
# directory:
#	EPOLL_LOOP=./examples/epoll-loop sh ../tests/test-epoll-loop.sh
# Exits 0 on success, 1 after printing each failure, 99 when the test
# itself cannot run.

if [ -z "${EPOLL_LOOP:-}" ]; then
	echo "ERROR: EPOLL_LOOP is not set: run this through make check"
	exit 99
fi
exec sh "$(dirname "$0")/loop-check.sh" "$EPOLL_LOOP" epoll-loop
