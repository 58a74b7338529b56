#!/bin/sh
# examples/glib-loop must sum files exactly as cksum(1) does while its timer
# keeps ticking, and tick while reads are in flight: the checks are those
# of tests/loop-check.sh, beside this script.  Run by `make check`, which
# sets GLIB_LOOP (the built examples/glib-loop; empty where configure
# found no GLib to build it with).  By hand, from the build directory:
#	GLIB_LOOP=./examples/glib-loop sh ../tests/test-glib-loop.sh
# Exits 0 on success, 1 after printing each failure, 77 when the example
# was not built (GLib missing: ./install-deps.sh installs it), 99 when
# the test itself cannot run.

if [ -z "${GLIB_LOOP:-}" ]; then
	echo "SKIP: examples/glib-loop was not built: configure found no GLib"
	exit 77
fi
exec sh "$(dirname "$0")/loop-check.sh" "$GLIB_LOOP" glib-loop
