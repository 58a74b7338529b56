#!/bin/sh
# The manual pages in man/ must render without a single warning, and every
# public function must have one.  Run by `make check`, which sets
# IOP_SRCDIR (the source tree; under `make distcheck` it is read-only, so
# nothing is written there).  By hand, from the build directory:
#	IOP_SRCDIR=.. sh ../tests/test-man.sh
# It checks:
#  (a) every page renders with `groff -man -Tutf8 -ww -z` with nothing on
#      stderr, and, when mandoc is installed, `mandoc -Tlint -W warning`
#      reports nothing either;
#  (b) every function declared IOP_EXPORT in include/iopool.h has its page
#      man/NAME.3, and every man/NAME.3 is such a function;
#  (c) each page's .TH names it and its section, and its NAME section names
#      it; a section-1 or section-3 page has a SYNOPSIS that names it; a
#      section-3 page has the sections NAME, SYNOPSIS, DESCRIPTION, RETURN
#      VALUE, ERRORS, THREADS and SEE ALSO, and its SYNOPSIS holds the
#      function's prototype exactly as the header declares it (spaces
#      aside).
# Exits 0 on success, 1 after printing each failure, 77 when groff is not
# installed (Debian: groff-base), 99 when the test itself cannot run.

if ! command -v groff >/dev/null 2>&1; then
	echo "SKIP: groff is not installed (Debian: groff-base)"
	exit 77
fi
top=${IOP_SRCDIR:-${srcdir:-$(dirname "$0")/..}}
header=$top/include/iopool.h
if [ ! -f "$header" ] || [ ! -d "$top/man" ]; then
	echo "ERROR: no include/iopool.h or man/ under IOP_SRCDIR='$top'"
	exit 99
fi

. "$(dirname "$0")/shell-helpers.sh"
test_tmpdir man

# The public functions, one per line: the name, a tab, the prototype with
# IOP_EXPORT and every blank removed.
awk '
	/^IOP_EXPORT[ \t]/ { proto = ""; inside = 1 }
	inside {
		proto = proto $0
		if ($0 ~ /;/) {
			inside = 0
			sub(/^IOP_EXPORT/, "", proto)
			name = proto
			sub(/[ \t]*\(.*/, "", name)
			sub(/.*[^A-Za-z0-9_]/, "", name)
			gsub(/[ \t]/, "", proto)
			print name "\t" proto
		}
	}
' "$header" >"$tmp/functions" || exit 99
if [ ! -s "$tmp/functions" ]; then
	echo "ERROR: found no IOP_EXPORT prototype in $header"
	exit 99
fi

# section NAME FILE: the lines of section NAME of the rendered page FILE.
section()
{
	awk -v want="$1" '
		/^[A-Z][A-Z ]*[A-Z]$/ { inside = ($0 == want); next }
		inside { print }
	' "$2"
}

# (b) Every public function has its page.
while IFS='	' read -r name proto; do
	[ -f "$top/man/$name.3" ] || fail "$name has no page man/$name.3"
done <"$tmp/functions"

npages=0
for page in "$top"/man/*.[1-8]; do
	[ -f "$page" ] || continue
	npages=$((npages + 1))
	file=${page##*/}
	name=${file%.*}
	sec=${file##*.}

	# (a) Rendering: groff, and mandoc's stricter parser if present.
	if ! LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" \
		2>"$tmp/err" || [ -s "$tmp/err" ]; then
		fail "man/$file: groff -man -Tutf8 -ww -z:"
		sed 's/^/	/' "$tmp/err"
	fi
	if command -v mandoc >/dev/null 2>&1 &&
		! mandoc -Tlint -W warning "$page" >"$tmp/err" 2>&1; then
		fail "man/$file: mandoc -Tlint -W warning:"
		sed 's/^/	/' "$tmp/err"
	fi

	# (c) The page as text, one line per source line of SYNOPSIS (no fill
	# there) and lines wide enough that NAME never wraps.
	LC_ALL=C groff -man -Tascii -P-cbou -rLL=250n "$page" \
		2>/dev/null >"$tmp/text"
	th=$(awk '/^\.TH[ \t]/ { print $2 " " $3; exit }' "$page" | tr -d '"')
	case $(echo "$th" | tr '[:upper:]' '[:lower:]') in
	"$(echo "$name $sec" | tr '[:upper:]' '[:lower:]')") ;;
	*) fail "man/$file: .TH says '$th', not '$name $sec'" ;;
	esac
	section NAME "$tmp/text" >"$tmp/sect"
	grep -q -- "$name" "$tmp/sect" ||
		fail "man/$file: its NAME section does not name $name"
	case $sec in
	1 | 3)
		section SYNOPSIS "$tmp/text" >"$tmp/sect"
		grep -q -- "$name" "$tmp/sect" ||
			fail "man/$file: its SYNOPSIS does not name $name"
		;;
	esac
	[ "$sec" = 3 ] || continue

	for want in NAME SYNOPSIS DESCRIPTION "RETURN VALUE" ERRORS THREADS \
		"SEE ALSO"; do
		grep -qx -- "$want" "$tmp/text" ||
			fail "man/$file: no section $want"
	done
	proto=$(awk -F '	' -v n="$name" '$1 == n { print $2 }' \
		"$tmp/functions")
	if [ -z "$proto" ]; then
		fail "man/$file: include/iopool.h declares no function $name"
		continue
	fi
	synopsis=$(section SYNOPSIS "$tmp/text" | tr -d ' \t\n')
	case $synopsis in
	*"$proto"*) ;;
	*) fail "man/$file: its SYNOPSIS lacks the prototype of the header:"
		awk -v n="$name(" 'index($0, n) { on = 1 }
			on { print "	" $0 } on && /;/ { exit }' "$header" ;;
	esac
done

if [ "$npages" -eq 0 ]; then
	echo "ERROR: no page in $top/man"
	exit 99
fi
[ "$failed" -eq 0 ] && echo "PASS: $npages pages"
exit "$failed"
