#!/bin/sh
# The readfiles example must print exactly what cksum(1) prints, byte for
# byte, for the same files in the same order: odd sizes, a deep directory
# tree whose strcmp() order differs from the locale's, pipes, /proc files,
# and errors; with --compare-sync, the blocking run agrees and both
# timings are shown.  Run by `make check`, which sets READFILES (the built
# examples/readfiles), IOPOOL_READFILES (the same, built to be installed)
# and CKSUM (cksum's path, empty when configure found none).  By hand,
# from the build directory:
#	READFILES=./examples/readfiles CKSUM=/usr/bin/cksum \
#		sh ../tests/test-readfiles.sh
# Exits 0 on success, 1 after printing each failure, 77 when there is no
# cksum to compare with, 99 when the test itself cannot run.

if [ -z "${CKSUM:-}" ] || [ ! -x "$CKSUM" ]; then
	echo "SKIP: no cksum to compare with (CKSUM='${CKSUM:-}')"
	exit 77
fi
if [ -z "${READFILES:-}" ] || [ ! -x "$READFILES" ]; then
	echo "ERROR: READFILES='${READFILES:-}' is not a program"
	exit 99
fi
case $READFILES in
/*) ;;
*) READFILES=$(pwd)/$READFILES ;;	# Some checks below change directory.
esac

. "$(dirname "$0")/shell-helpers.sh"
test_tmpdir readfiles
check_lines=40

# walk DIR: the files under DIR in readfiles' order, one per line: the
# entries of each directory in strcmp() order, each directory's files in
# place of its name.  Sorting whole paths would differ as soon as a name
# holds a byte below '/', as "sub-x" and "sub/z" do.
# The test's names hold no newline, so ls can list them.
walk()
{
	# shellcheck disable=SC2012
	LC_ALL=C ls -A "$1" | while IFS= read -r name; do
		case $1 in
		*/) path=$1$name ;;
		*) path=$1/$name ;;
		esac
		if [ -d "$path" ]; then
			walk "$path"
		else
			printf '%s\n' "$path"
		fi
	done
}

# expect ARG...: what cksum prints for the files readfiles visits for ARG...
# (not for "-", whose standard input is taken by the loop).
expect()
{
	for arg in "$@"; do
		if [ -d "$arg" ]; then
			walk "$arg"
		else
			printf '%s\n' "$arg"
		fi
	done | while IFS= read -r path; do
		"$CKSUM" "$path" 2>/dev/null
	done
}

# run ARG...: readfiles into $tmp/out and $tmp/err, its status into $st.
run()
{
	"$READFILES" "$@" >"$tmp/out" 2>"$tmp/err"
	st=$?
}

# Files of every awkward size: empty, one byte, around a page and around
# the default read size, an odd size near a megabyte, and 10 MiB.
f=$tmp/files
mkdir "$f" || exit 99
: >"$f/empty"
printf x >"$f/one"
for size in 4095 4096 4097 65535 65536 65537 1000003 10485760; do
	head -c $size /dev/urandom >"$f/r$size" || exit 99
done
files="$f/empty $f/one $f/r4095 $f/r4096 $f/r4097 $f/r65535 $f/r65536"
files="$files $f/r65537 $f/r1000003 $f/r10485760"

# A tree several levels deep.  Names sort differently by strcmp() than by
# locale (B, Z9, _x, a), and "sub" is followed by names with bytes below
# '/' ("sub-x", "sub.d"), so the walk order is not that of sorted paths.
t=$tmp/tree
mkdir -p "$t/a/b/c/d" "$t/sub/deeper" "$t/sub.d" "$t/empty-dir" \
	"$t/with space" || exit 99
for name in B Z9 _x a/A a/b/x a/b/c/y a/b/c/d/z sub/z sub/deeper/w \
	sub-x sub.d/v "with space/file name" .hidden; do
	head -c $(( ${#name} * 1237 )) /dev/urandom >"$t/$name" || exit 99
done
cp "$f/r65537" "$t/a/b/c/big" || exit 99
ln -s ../B "$t/a/link-to-file" || exit 99
ln -s ../sub "$t/a/link-to-dir" || exit 99

# 1. Files named one by one, then a tree: same lines, same order.
# shellcheck disable=SC2086
run $files "$t"
# shellcheck disable=SC2086
expect $files "$t" >"$tmp/expected"
check "files and a tree" "$tmp/expected" "$tmp/out"
check "files and a tree: stderr" /dev/null "$tmp/err"
check_status "files and a tree" 0 "$st"

# 2. Thread counts, depths and read sizes change nothing.
cp "$tmp/out" "$tmp/default"
for opts in "-j 1 -d 1" "-j 8 -d 256 -b 4096" "-j 3 -d 5 -b 4097" \
	"-j 2 -d 2 -b 1000" "-v"; do
	# shellcheck disable=SC2086
	run $opts $files "$t"
	check "options $opts" "$tmp/default" "$tmp/out"
	check_status "options $opts" 0 "$st"
done
run -j 4 -d 7 -b 1 "$f/empty" "$f/one" "$f/r4097" "$t/sub"
expect "$f/empty" "$f/one" "$f/r4097" "$t/sub" >"$tmp/expected"
check "one byte per read" "$tmp/expected" "$tmp/out"

# 3. A missing file: an error line in its place, the others still summed,
# exit status 1.
run "$f/one" "$tmp/missing" "$f/r4095"
expect "$f/one" "$f/r4095" >"$tmp/expected"
check "missing file: stdout" "$tmp/expected" "$tmp/out"
echo "readfiles: $tmp/missing: No such file or directory" >"$tmp/expected"
check "missing file: stderr" "$tmp/expected" "$tmp/err"
check_status "missing file" 1 "$st"

# 4. Standard input: a pipe, a file, a directory, and "-" among files.
printf 'hello, world\n' | "$READFILES" - >"$tmp/out" 2>"$tmp/err"
printf 'hello, world\n' | "$CKSUM" - >"$tmp/expected"
check "short pipe" "$tmp/expected" "$tmp/out"
# The cat makes a pipe, where short reads happen, out of a file.
# shellcheck disable=SC2002
cat "$f/r1000003" | "$READFILES" -b 4096 - >"$tmp/out" 2>"$tmp/err"
# shellcheck disable=SC2002
cat "$f/r1000003" | "$CKSUM" - >"$tmp/expected"
check "long pipe" "$tmp/expected" "$tmp/out"
"$READFILES" "$f/one" - "$f/r4097" - <"$f/r65537" >"$tmp/out" 2>"$tmp/err"
"$CKSUM" "$f/one" - "$f/r4097" - <"$f/r65537" >"$tmp/expected"
check "stdin among files" "$tmp/expected" "$tmp/out"
"$READFILES" - <"$t" >"$tmp/out" 2>"$tmp/err"
st=$?
echo "readfiles: -: Is a directory" >"$tmp/expected"
check "directory on stdin" "$tmp/expected" "$tmp/err"
check_status "directory on stdin" 1 "$st"

# 5. No arguments: the current directory, named ./NAME.
(cd "$t" && "$READFILES" >"$tmp/out" 2>"$tmp/err")
st=$?
(cd "$t" && expect .) >"$tmp/expected"
check "no arguments" "$tmp/expected" "$tmp/out"
check_status "no arguments" 0 "$st"

# 6. A FIFO is read in order, like a pipe.
if mkfifo "$tmp/fifo" 2>/dev/null; then
	cat "$f/r65537" >"$tmp/fifo" &
	run "$f/one" "$tmp/fifo" "$f/r4095"
	wait
	cat "$f/r65537" >"$tmp/fifo" &
	"$CKSUM" "$f/one" "$tmp/fifo" "$f/r4095" >"$tmp/expected"
	wait
	check "fifo" "$tmp/expected" "$tmp/out"
fi

# 7. Files whose st_size is 0 but are not empty.
for p in /proc/version /proc/filesystems; do
	[ -r "$p" ] || continue
	run "$p"
	"$CKSUM" "$p" >"$tmp/expected"
	check "$p" "$tmp/expected" "$tmp/out"
done

# 8. A symlink back to an ancestor is reported, not followed forever.
mkdir -p "$tmp/loop/d" && ln -s .. "$tmp/loop/d/up" || exit 99
run "$tmp/loop"
# The reason is strerror(ELOOP), which musl words differently from glibc
# (named last, so that a mismatch shows glibc's words).
for eloop in "Symbolic link loop" "Too many levels of symbolic links"; do
	echo "readfiles: $tmp/loop/d/up: $eloop" >"$tmp/expected"
	cmp -s "$tmp/expected" "$tmp/err" && break
done
check "symlink loop" "$tmp/expected" "$tmp/err"
check_status "symlink loop" 1 "$st"

# 9. Bad numbers are a usage error.
for opts in "-j 0" "-j 1025" "-d 0" "-d x" "-b -1" "-b 12k" "-j" "-x"; do
	# shellcheck disable=SC2086
	run $opts "$f/one"
	check_status "bad option $opts" 2 "$st"
	if ! grep -q '^usage: readfiles' "$tmp/err"; then
		echo "FAIL: bad option $opts: no usage message"
		failed=1
	fi
	check "bad option $opts: stdout" /dev/null "$tmp/out"
done

# 10. A dangling symlink is reported in its place, an empty directory
# adds nothing, and a trailing slash is not doubled.
d=$tmp/odd
mkdir -p "$d/empty" && printf a >"$d/a" && ln -s nowhere "$d/b-dangling" &&
	printf c >"$d/c" || exit 99
run "$d/"
expect "$d/" >"$tmp/expected"
check "dangling symlink: stdout" "$tmp/expected" "$tmp/out"
echo "readfiles: $d/b-dangling: No such file or directory" >"$tmp/expected"
check "dangling symlink: stderr" "$tmp/expected" "$tmp/err"
check_status "dangling symlink" 1 "$st"

# 11. The main thread never waits for the file system: with strace, where
# it can trace, no thread but the workers opens or looks at the files.
# (The first pid of the trace is the main thread: the libtool wrapper, if
# any, execs the program in the same process.)
if command -v strace >/dev/null 2>&1 &&
	strace -f -o /dev/null true 2>/dev/null; then
	# LeakSanitizer cannot run under ptrace: leave it out here.
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		strace -f -o "$tmp/trace" -e trace=%file,read,pread64 \
		"$READFILES" "$t" - <"$f/one" >"$tmp/out" 2>"$tmp/err"
	check_status "strace" 0 $?
	main=$(sed -n '1s/ .*//p' "$tmp/trace")
	if [ -z "$main" ] || [ "$(grep -c "^$main " "$tmp/trace")" -lt 2 ]; then
		echo "FAIL: strace: cannot find the main thread in the trace"
		failed=1
	elif grep -e "^$main .*$tmp/" -e "^$main read(0," "$tmp/trace" |
		grep -v execve >"$tmp/main-calls"; then
		echo "FAIL: the main thread touched the file system:"
		head -n 5 "$tmp/main-calls"
		failed=1
	fi
fi

# 12. --compare-sync: the same lines as cksum on stdout, once; on stderr
# one line with the timings of both runs, and with a failing file also its
# error, once; the blocking run must agree with the pool's.  Standard
# input cannot be read twice: a usage error.
timing_line='^readfiles: --compare-sync: iopool [0-9.]* s, blocking reads [0-9.]* s: [0-9.]* times as fast$'
# shellcheck disable=SC2086
run --compare-sync $files "$t"
# shellcheck disable=SC2086
expect $files "$t" >"$tmp/expected"
check "--compare-sync: stdout" "$tmp/expected" "$tmp/out"
check_status "--compare-sync" 0 "$st"
if [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q "$timing_line" "$tmp/err"
then
	echo "FAIL: --compare-sync: no timings line alone on stderr:"
	head -n 5 "$tmp/err"
	failed=1
fi
run -j 2 -b 4097 "$f/one" "$tmp/missing" --compare-sync "$d/" "$f/r65537"
expect "$f/one" "$d/" "$f/r65537" >"$tmp/expected"
check "--compare-sync with errors: stdout" "$tmp/expected" "$tmp/out"
check_status "--compare-sync with errors" 1 "$st"
{
	echo "readfiles: $tmp/missing: No such file or directory"
	echo "readfiles: $d/b-dangling: No such file or directory"
} >"$tmp/expected"
grep -v -e "$timing_line" "$tmp/err" >"$tmp/errors"
check "--compare-sync with errors: stderr" "$tmp/expected" "$tmp/errors"
if ! grep -q "$timing_line" "$tmp/err"; then
	echo "FAIL: --compare-sync with errors: no timings line"
	failed=1
fi
run --compare-sync "$f/one" - </dev/null
check_status "--compare-sync with -" 2 "$st"
check "--compare-sync with -: stdout" /dev/null "$tmp/out"
for opts in "--compare-sync=yes" "--no-such-option"; do
	run $opts "$f/one"
	check_status "bad option $opts" 2 "$st"
	if ! grep -q "^readfiles: unknown option $opts\$" "$tmp/err"; then
		echo "FAIL: bad option $opts: not named in the message:"
		head -n 3 "$tmp/err"
		failed=1
	fi
done
# A FIFO cannot be read a second time: the comparison says so and fails.
if [ -p "$tmp/fifo" ]; then
	cat "$f/r4097" >"$tmp/fifo" &
	run --compare-sync "$f/one" "$tmp/fifo"
	wait
	check_status "--compare-sync with a FIFO" 1 "$st"
	if ! grep -q "a FIFO cannot be read a second time" "$tmp/err" ||
		! grep -q "the blocking reads gave other results" "$tmp/err"; then
		echo "FAIL: --compare-sync with a FIFO: no complaint:"
		cat "$tmp/err"
		failed=1
	fi
fi

# 13. The installed program, iopool-readfiles, is the same program under
# its own name (make check sets IOPOOL_READFILES to the built one).
if [ -n "${IOPOOL_READFILES:-}" ]; then
	"$IOPOOL_READFILES" --compare-sync "$f/one" "$tmp/missing" \
		>"$tmp/out" 2>"$tmp/err"
	st=$?
	expect "$f/one" >"$tmp/expected"
	check "iopool-readfiles: stdout" "$tmp/expected" "$tmp/out"
	check_status "iopool-readfiles" 1 "$st"
	if ! grep -q "^iopool-readfiles: $tmp/missing: No such file" \
		"$tmp/err" ||
		! grep -q "^iopool-readfiles: --compare-sync: iopool" "$tmp/err"
	then
		echo "FAIL: iopool-readfiles does not say its own name:"
		cat "$tmp/err"
		failed=1
	fi
fi

exit $failed
