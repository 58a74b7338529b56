#!/bin/sh
# The checks the event-loop examples (epoll-loop, uv-loop, glib-loop) share,
# run by tests/test-epoll-loop.sh, test-uv-loop.sh and test-glib-loop.sh:
#	sh tests/loop-check.sh PROGRAM NAME
# PROGRAM is the built example and NAME its name in messages.
# 1. Files of awkward sizes (empty, one byte, around the 256 KiB read size,
#    an odd size, 16 MiB four times, /proc files whose st_size is 0) give
#    exactly the lines cksum prints, in order, and stderr only the report.
# 2. The report line counts the files and bytes read; the timer ticked,
#    and it ticked while reads were in flight (the loop went on while the
#    pool read: 64 MiB, summed on the loop's thread, take far longer than
#    a 1 ms tick); the longest gap between ticks stays under 5 s, a bound
#    only a loop blocked for good would break, not a benchmark.
# 3. A missing file and a directory get their error lines, in place, the
#    others are still summed, and the exit status is 1.
# 4. Bad usage exits 2.
# Compares with $CKSUM (configure's cksum), or cksum from $PATH.
# Exits 0 on success, 1 after printing each failure, 77 without cksum, 99
# when the test itself cannot run.

prog=$1
name=$2
if [ -z "$prog" ] || [ ! -x "$prog" ] || [ -z "$name" ]; then
	echo "ERROR: usage: loop-check.sh PROGRAM NAME ('$prog' '$name')"
	exit 99
fi
cksum=${CKSUM:-cksum}	# configure's, under make check.
if ! command -v "$cksum" >/dev/null 2>&1; then
	echo "SKIP: no cksum to compare with (CKSUM='${CKSUM:-}')"
	exit 77
fi
. "$(dirname "$0")/shell-helpers.sh"
test_tmpdir "$name"

# Failures name the example.
fail()
{
	echo "FAIL: $name: $*"
	failed=1
}

# run ARG...: the example into $tmp/out and $tmp/err, its status into $st.
run()
{
	"$prog" "$@" >"$tmp/out" 2>"$tmp/err"
	st=$?
}

f=$tmp/files
mkdir "$f" || exit 99
: >"$f/empty"
printf x >"$f/one"
for size in 4097 262143 262144 262145 1000003; do
	head -c $size /dev/urandom >"$f/r$size" || exit 99
done
head -c 16777216 /dev/urandom >"$f/big1" || exit 99
for i in 2 3 4; do
	cp "$f/big1" "$f/big$i" || exit 99
done
set -- "$f/empty" "$f/one" "$f/r4097" "$f/r262143" "$f/r262144" \
	"$f/r262145" "$f/r1000003" "$f/big1" "$f/big2" "$f/big3" "$f/big4"
for p in /proc/version /proc/filesystems; do
	[ -r "$p" ] && set -- "$@" "$p"
done
nfiles=$#
bytes=$(cat "$@" | wc -c) || exit 99

# 1. The sums, as cksum prints them, and the report line alone on stderr.
run -i 1 "$@"
"$cksum" "$@" >"$tmp/expected" || exit 99
check "sums" "$tmp/expected" "$tmp/out"
[ "$st" -eq 0 ] || fail "exit status $st, expected 0"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || {
	fail "stderr holds more than the report:"
	head -n 10 "$tmp/err"
}

# 2. The report: "NAME: N files, B bytes in S s; T ticks of 1 ms, R while
# reads were in flight; longest gap G ms".
pattern="^$name: \([0-9]*\) files, \([0-9]*\) bytes in [0-9.]* s;"
pattern="$pattern \([0-9]*\) ticks of 1 ms, \([0-9]*\) while reads were"
pattern="$pattern in flight; longest gap \([0-9]*\)\.[0-9] ms\$"
report=$(sed -n "s/$pattern/\1 \2 \3 \4 \5/p" "$tmp/err")
if [ -z "$report" ]; then
	fail "no report line on stderr:"
	cat "$tmp/err"
else
	# shellcheck disable=SC2086
	set -- $report
	echo "$name: $1 files, $2 bytes; $3 ticks, $4 while reads were in" \
		"flight; longest gap $5 ms"
	[ "$1" -eq "$nfiles" ] || fail "report: $1 files, expected $nfiles"
	[ "$2" -eq "$bytes" ] || fail "report: $2 bytes, expected $bytes"
	[ "$3" -gt 0 ] || fail "the timer never ticked"
	[ "$4" -gt 0 ] || fail "no tick came while reads were in flight"
	[ "$5" -lt 5000 ] || fail "a tick came $5 ms after the one before"
fi

# 3. A missing file and a directory among files.
run "$f/one" "$tmp/missing" "$f/r4097" "$f" "$f/empty"
"$cksum" "$f/one" "$f/r4097" "$f/empty" >"$tmp/expected" || exit 99
check "missing file: stdout" "$tmp/expected" "$tmp/out"
{
	echo "$name: $tmp/missing: No such file or directory"
	echo "$name: $f: Is a directory"
} >"$tmp/expected"
grep -v "ticks of" "$tmp/err" >"$tmp/err-errors"
check "missing file: stderr" "$tmp/expected" "$tmp/err-errors"
[ "$st" -eq 1 ] || fail "missing file: exit status $st, expected 1"

# 4. Bad usage.
for args in "" "-i 0" "-i x" "-i 60001" "-x $f/one"; do
	# shellcheck disable=SC2086
	run $args
	[ "$st" -eq 2 ] || fail "usage '$args': exit status $st, expected 2"
	grep -q "^usage: $name " "$tmp/err" ||
		fail "usage '$args': no usage message"
	check "usage '$args': stdout" /dev/null "$tmp/out"
done

exit $failed
