#!/bin/sh
# The library exports exactly the calls include/iopool.h declares with
# IOP_EXPORT: the global symbols defined in the dynamic symbol table of the
# built .libs/libiopool.so (functions or data, any kind) are compared with
# the names of the IOP_EXPORT declarations, and both differences are
# listed.  Also: every name is iop_ (never iop__, the internal prefix); the
# shared object's SONAME is libiopool.so.(current - age) from configure's
# IOP_LT_VERSION; and every global symbol libiopool.a defines starts with
# iop_, since a static link puts hidden names in the program's namespace.
# Nothing is ignored: sanitizer builds (-fsanitize=address,undefined or
# thread) add undefined references to their runtimes but define no extra
# symbols, so the lists match there too.
# Run by `make check`, which sets IOP_BUILDDIR, IOP_SRCDIR, NM, OBJDUMP and
# IOP_LT_VERSION.  By hand, from the build directory:
#	IOP_BUILDDIR=. IOP_SRCDIR=.. NM=nm OBJDUMP=objdump \
#		IOP_LT_VERSION=0:0:0 sh ../tests/test-symbols.sh
# Exits 0 on success, 1 after printing each failure, 77 when there is no
# shared library (--disable-shared), 99 when the test itself cannot run.

lib=${IOP_BUILDDIR:-.}/.libs/libiopool.so
archive=${IOP_BUILDDIR:-.}/.libs/libiopool.a
header=${IOP_SRCDIR:-..}/include/iopool.h
NM=${NM:-nm}
OBJDUMP=${OBJDUMP:-objdump}

if [ ! -f "$header" ]; then
	echo "ERROR: no header at $header"
	exit 99
fi
if [ ! -f "$lib" ]; then
	echo "SKIP: no shared library at $lib"
	exit 77
fi
. "$(dirname "$0")/shell-helpers.sh"
test_tmpdir symbols

# Exported: "ADDRESS TYPE NAME" lines with an upper-case (global) TYPE; a
# symbol version (NAME@@VERSION), should one ever be added, is cut off.
# shellcheck disable=SC2086
if ! $NM -D --defined-only "$lib" >"$tmp/nm"; then
	echo "ERROR: $NM -D --defined-only $lib failed"
	exit 99
fi
# _init and _fini are the C library's: musl's crti.o defines them global
# in every shared object it links.
awk 'NF == 3 && $2 ~ /^[A-Z]$/ && $3 != "_init" && $3 != "_fini" {
	sub(/@.*/, "", $3); print $3 }' \
	"$tmp/nm" | LC_ALL=C sort -u >"$tmp/exported"

# Declared: each declaration that starts a line with IOP_EXPORT, joined up
# to its ';', gives the identifier before its first '('.
awk '
	/^IOP_EXPORT/ { decl = ""; inside = 1 }
	inside {
		decl = decl " " $0
		if (index($0, ";")) {
			inside = 0
			sub(/\(.*/, "", decl)
			sub(/[ \t]+$/, "", decl)
			sub(/.*[^A-Za-z0-9_]/, "", decl)
			print decl
		}
	}
' "$header" | LC_ALL=C sort -u >"$tmp/declared"

if [ ! -s "$tmp/declared" ] || [ ! -s "$tmp/exported" ]; then
	echo "FAIL: no IOP_EXPORT declarations in $header" \
		"($(wc -l <"$tmp/declared")) or no exports in $lib" \
		"($(wc -l <"$tmp/exported"))"
	exit 1
fi
LC_ALL=C comm -23 "$tmp/exported" "$tmp/declared" >"$tmp/extra"
LC_ALL=C comm -13 "$tmp/exported" "$tmp/declared" >"$tmp/missing"
if [ -s "$tmp/extra" ]; then
	echo "FAIL: exported by $lib but not declared IOP_EXPORT in iopool.h:"
	sed 's/^/	/' "$tmp/extra"
	failed=1
fi
if [ -s "$tmp/missing" ]; then
	echo "FAIL: declared IOP_EXPORT in iopool.h but not exported by $lib:"
	sed 's/^/	/' "$tmp/missing"
	failed=1
fi
if grep -v '^iop_[a-z0-9]' "$tmp/declared" >"$tmp/badnames"; then
	echo "FAIL: public names not of the form iop_name:"
	sed 's/^/	/' "$tmp/badnames"
	failed=1
fi
echo "$(wc -l <"$tmp/exported") symbols exported," \
	"$(wc -l <"$tmp/declared") declared IOP_EXPORT"

# The SONAME: libiopool.so.(current - age).
if [ -n "${IOP_LT_VERSION:-}" ]; then
	current=${IOP_LT_VERSION%%:*}
	age=${IOP_LT_VERSION##*:}
	want=libiopool.so.$((current - age))
	# shellcheck disable=SC2086
	soname=$($OBJDUMP -p "$lib" | awk '$1 == "SONAME" { print $2 }')
	if [ "$soname" != "$want" ]; then
		echo "FAIL: SONAME of $lib is '$soname', expected $want" \
			"(-version-info $IOP_LT_VERSION)"
		failed=1
	fi
fi

# The static archive: hidden visibility does not apply there.
if [ -f "$archive" ]; then
	# shellcheck disable=SC2086
	$NM -g --defined-only "$archive" |
		awk 'NF == 3 && $2 ~ /^[A-Z]$/ && $3 !~ /^iop_/ { print $3 }' |
		LC_ALL=C sort -u >"$tmp/unprefixed"
	if [ -s "$tmp/unprefixed" ]; then
		echo "FAIL: $archive defines global symbols without iop_:"
		sed 's/^/	/' "$tmp/unprefixed"
		failed=1
	fi
fi

exit $failed
