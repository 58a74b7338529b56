#!/bin/sh
# `make install` and `make uninstall` with DESTDIR, and what a user of the
# installed library sees.  From the build directory, into a temporary root:
# 1. make install puts libiopool.so (with SONAME libiopool.so.N, N =
#    current - age of configure's IOP_LT_VERSION, present as a file),
#    libiopool.a, include/iopool.h (the source's, byte for byte), iopool.pc
#    and the man pages of the Makefile in place.
# 2. pkg-config --modversion says the package version, and --cflags --libs
#    point into the temporary root.  A program built with those flags alone
#    and run from there loads the installed library, runs an iop_call()
#    on a worker thread (IOP_POOL_WORKERS_ONLY) both as a future and with a
#    callback, gets both results, and sees iop_version() equal to its
#    header's IOP_VERSION_STRING and to the package version.
# 3. pkg-config --static carries the pthread flags (Libs.private), and the
#    same program linked with them against libiopool.a needs no
#    libiopool.so and runs with the same results.
# 4. make uninstall leaves no file behind (only empty directories).
# Run by `make check`, which sets IOP_BUILDDIR, IOP_SRCDIR, MAKE, CC,
# CFLAGS, LDFLAGS, PKG_CONFIG, OBJDUMP, PACKAGE_VERSION, IOP_LT_VERSION,
# PTHREAD_CFLAGS, PTHREAD_LIBS, the installation directories (libdir,
# includedir, pkgconfigdir, mandir) and IOP_MANS (the man pages to install).
# Exits 0 on success, 1 after printing each failure, 77 without pkg-config,
# 99 when the test itself cannot run.

: "${MAKE:=make}" "${CC:=cc}" "${OBJDUMP:=objdump}"
if [ -z "${PKG_CONFIG:-}" ] || ! command -v "$PKG_CONFIG" >/dev/null 2>&1
then
	echo "SKIP: no pkg-config (PKG_CONFIG='${PKG_CONFIG:-}')"
	exit 77
fi
for v in IOP_BUILDDIR IOP_SRCDIR PACKAGE_VERSION IOP_LT_VERSION libdir \
	includedir pkgconfigdir mandir; do
	eval "val=\${$v:-}"
	if [ -z "$val" ]; then
		echo "ERROR: $v is not set: run this through make check"
		exit 99
	fi
done
. "$(dirname "$0")/shell-helpers.sh"
test_tmpdir install
root=$tmp/root

# in_build TARGET...: make TARGET... DESTDIR=$root in the build directory,
# as a make of its own (not part of the make check that runs this test).
in_build()
{
	(
		unset MAKEFLAGS MFLAGS MAKELEVEL
		cd "$IOP_BUILDDIR" && $MAKE "$@" DESTDIR="$root"
	) >"$tmp/make.log" 2>&1 && return 0
	echo "FAIL: make $* DESTDIR=$root:"
	tail -n 30 "$tmp/make.log"
	exit 1
}

# 1. Install, and look at what arrived.
in_build install
current=${IOP_LT_VERSION%%:*}
age=${IOP_LT_VERSION##*:}
soname=libiopool.so.$((current - age))
lib=$root$libdir
for f in "$lib/libiopool.so" "$lib/$soname" "$lib/libiopool.a" \
	"$root$includedir/iopool.h" "$root$pkgconfigdir/iopool.pc"; do
	[ -f "$f" ] || fail "make install did not install $f"
done
if [ -f "$lib/libiopool.so" ]; then
	got=$($OBJDUMP -p "$lib/libiopool.so" | awk '$1 == "SONAME" { print $2 }')
	[ "$got" = "$soname" ] ||
		fail "SONAME of the installed library is '$got', not $soname"
fi
cmp -s "$IOP_SRCDIR/include/iopool.h" "$root$includedir/iopool.h" ||
	fail "the installed iopool.h differs from include/iopool.h"
for page in ${IOP_MANS:-}; do
	name=${page##*/}
	[ -f "$root$mandir/man${name##*.}/$name" ] ||
		fail "make install did not install the man page $name"
done

# 2. pkg-config, looking only at the temporary root.
PKG_CONFIG_LIBDIR=$root$pkgconfigdir
PKG_CONFIG_PATH=$root$pkgconfigdir
PKG_CONFIG_SYSROOT_DIR=$root
PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1
PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR \
	PKG_CONFIG_ALLOW_SYSTEM_CFLAGS PKG_CONFIG_ALLOW_SYSTEM_LIBS
got=$("$PKG_CONFIG" --modversion iopool)
[ "$got" = "$PACKAGE_VERSION" ] ||
	fail "pkg-config --modversion iopool: '$got', not $PACKAGE_VERSION"
if ! flags=$("$PKG_CONFIG" --cflags --libs iopool); then
	echo "FAIL: pkg-config --cflags --libs iopool failed"
	exit 1
fi
for w in "-I$root$includedir" "-L$lib"; do
	case " $flags " in
	*" $w "*) ;;
	*) fail "pkg-config --cflags --libs lacks $w: $flags" ;;
	esac
done

cat >"$tmp/prog.c" <<'_EOF'
#include <iopool.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_t main_thread;
static int on_main;	/* set by a work function that ran on this thread */
static ssize_t by_callback = -1;

static ssize_t add_one(void *ctx)
{
	if (pthread_equal(pthread_self(), main_thread))
		on_main = 1;
	return *(const int *)ctx + 1;
}

static void done(iop_job *job, ssize_t result, void *arg)
{
	(void)job;
	(void)arg;
	by_callback = result;
}

int main(void)
{
	struct iop_options opts;
	int x = 41, y = 99;
	iop_pool *pool;
	iop_job *job;
	ssize_t future;

	main_thread = pthread_self();
	memset(&opts, 0, sizeof(opts));
	opts.flags = IOP_POOL_WORKERS_ONLY;
	pool = iop_pool_new(&opts);
	if (!pool) {
		perror("iop_pool_new");
		return 2;
	}
	job = iop_call(pool, add_one, &x, NULL, NULL);
	future = job ? iop_await(job) : -1;
	if (!iop_call(pool, add_one, &y, done, NULL))
		perror("iop_call");
	while (by_callback == -1 && iop_wait(pool, 10000) > 0)
		;
	iop_pool_destroy(pool);
	printf("future %zd callback %zd worker %s version %s header %s\n",
	       future, by_callback, on_main ? "no" : "yes", iop_version(),
	       IOP_VERSION_STRING);
	return 0;
}
_EOF
want="future 42 callback 100 worker yes version $PACKAGE_VERSION"
want="$want header $PACKAGE_VERSION"

# try LABEL PROGRAM [ENV...]: run PROGRAM and compare its line with $want.
try()
{
	label=$1
	prog=$2
	shift 2
	if ! env "$@" "$prog" >"$tmp/out" 2>&1; then
		fail "$label: the program failed:"
		head -n 20 "$tmp/out"
		return
	fi
	got=$(cat "$tmp/out")
	[ "$got" = "$want" ] || fail "$label: printed '$got', expected '$want'"
}

# shellcheck disable=SC2086
if $CC ${CFLAGS:-} -o "$tmp/prog" "$tmp/prog.c" ${LDFLAGS:-} $flags \
	>"$tmp/cc.log" 2>&1; then
	try "shared" "$tmp/prog" LD_LIBRARY_PATH="$lib"
	$OBJDUMP -p "$tmp/prog" | grep -q "NEEDED *$soname\$" ||
		fail "shared: the program does not need $soname"
	# Which file the loader picks.  ldd is the C library's own: glibc's
	# cannot read a program linked against musl (it says so and fails),
	# and that build's run above already showed the library loading.
	if command -v ldd >/dev/null 2>&1 &&
		LD_LIBRARY_PATH=$lib ldd "$tmp/prog" >"$tmp/ldd" 2>&1; then
		grep -q "libiopool.* => $lib/$soname " "$tmp/ldd" ||
			fail "shared: the program does not load $lib/$soname:" \
				"$(grep libiopool "$tmp/ldd")"
	fi
else
	fail "shared: cannot build with: $CC ${CFLAGS:-} ... $flags"
	head -n 20 "$tmp/cc.log"
fi

# 3. The same, linked statically against libiopool.a.
if ! sflags=$("$PKG_CONFIG" --static --cflags --libs iopool); then
	echo "FAIL: pkg-config --static --cflags --libs iopool failed"
	exit 1
fi
for w in ${PTHREAD_CFLAGS:-} ${PTHREAD_LIBS:-}; do
	case " $sflags " in
	*" $w "*) ;;
	*) fail "pkg-config --static lacks $w (Libs.private): $sflags" ;;
	esac
done
static=""
for w in $sflags; do
	case $w in
	-liopool) static="$static -Wl,-Bstatic -liopool -Wl,-Bdynamic" ;;
	*) static="$static $w" ;;
	esac
done
# shellcheck disable=SC2086
if $CC ${CFLAGS:-} -o "$tmp/prog-static" "$tmp/prog.c" ${LDFLAGS:-} \
	$static >"$tmp/cc.log" 2>&1; then
	if $OBJDUMP -p "$tmp/prog-static" | grep -q 'NEEDED.*libiopool'; then
		fail "static: the program still needs libiopool.so"
	fi
	try "static" "$tmp/prog-static" -u LD_LIBRARY_PATH
else
	fail "static: cannot build with: $CC ${CFLAGS:-} ... $static"
	head -n 20 "$tmp/cc.log"
fi

# 4. Uninstall: no file may remain.
in_build uninstall
if [ -n "$(find "$root" ! -type d)" ]; then
	fail "make uninstall left files behind:"
	find "$root" ! -type d | sed "s|^$root|	|"
fi

exit $failed
