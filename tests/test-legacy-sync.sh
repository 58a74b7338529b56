#!/bin/sh
# The legacy-sync example runs the same sequential program twice, before
# and after moving its reads to iopool futures: both runs must print, for
# every file, what cksum(1) prints, and the same errors, whatever the
# read-ahead.  Timings are printed but not judged.  Run by `make check`,
# which sets LEGACY_SYNC (the built examples/legacy-sync) and CKSUM
# (cksum's path, empty when configure found none).  By hand, from the
# build directory:
#	LEGACY_SYNC=./examples/legacy-sync CKSUM=/usr/bin/cksum \
#		sh ../tests/test-legacy-sync.sh
# Exits 0 on success, 1 after printing each failure, 77 when there is no
# cksum to compare with, 99 when the test itself cannot run.

if [ -z "${CKSUM:-}" ] || [ ! -x "$CKSUM" ]; then
	echo "SKIP: no cksum to compare with (CKSUM='${CKSUM:-}')"
	exit 77
fi
if [ -z "${LEGACY_SYNC:-}" ] || [ ! -x "$LEGACY_SYNC" ]; then
	echo "ERROR: LEGACY_SYNC='${LEGACY_SYNC:-}' is not a program"
	exit 99
fi

. "$(dirname "$0")/shell-helpers.sh"
test_tmpdir legacy-sync

# run ARG...: legacy-sync into $tmp/out and $tmp/err, its status into $st;
# the lines of each run into $tmp/before and $tmp/after, without the word.
run()
{
	"$LEGACY_SYNC" "$@" >"$tmp/out" 2>"$tmp/err"
	st=$?
	sed -n 's/^before //p' "$tmp/out" >"$tmp/before"
	sed -n 's/^after //p' "$tmp/out" >"$tmp/after"
}

# timings: stderr must hold the one timing line, "legacy-sync: cold
# cache: before S s, after S s (F times as fast)".
timings()
{
	if [ "$(grep -c '^legacy-sync: cold cache: before [0-9.]* s, after [0-9.]* s ([0-9.]* times as fast)$' "$tmp/err")" -ne 1 ]; then
		fail "$1: no timing line on stderr:"
		cat "$tmp/err"
	fi
}

# Thirty files: every awkward size, twice over with odd names, and a big
# one, so that reads ahead are still in flight while a file is summed.
f=$tmp/files
mkdir "$f" || exit 99
set --
i=0
for size in 0 1 4095 4096 4097 65535 65536 65537 131072 1000003 0 7 \
	8191 65536 262145 12 100 1000 10000 100000 300000 2 3 5 8 13 21 34 \
	55 4194304; do
	i=$((i + 1))
	name="$f/file $i.dat"
	head -c $size /dev/urandom >"$name" || exit 99
	set -- "$@" "$name"
done

# 1. Both runs print cksum's lines, whatever the read-ahead, and stderr
# only the timing line.
"$CKSUM" "$@" >"$tmp/expected" || exit 99
for opts in "" "-a 1" "-a 2" "-a 7" "-a 64"; do
	# shellcheck disable=SC2086
	run $opts "$@"
	check "before $opts" "$tmp/expected" "$tmp/before"
	check "after $opts" "$tmp/expected" "$tmp/after"
	[ "$st" -eq 0 ] || fail "$opts: exit status $st, expected 0"
	[ "$(wc -l <"$tmp/out")" -eq $(($# * 2)) ] ||
		fail "$opts: $(wc -l <"$tmp/out") lines, expected $(($# * 2))"
	timings "$opts"
	[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$opts: more on stderr:"
done
head -n 3 "$tmp/err"

# 2. The same file many times, and more files than the read-ahead.
set -- "$f/file 30.dat" "$f/file 30.dat" "$f/file 2.dat" "$f/file 30.dat"
run -a 3 "$@"
"$CKSUM" "$@" >"$tmp/expected" || exit 99
check "repeated: before" "$tmp/expected" "$tmp/before"
check "repeated: after" "$tmp/expected" "$tmp/after"

# 3. A missing file and a directory: the same error in both runs, in
# place, the other files still summed, exit status 1.
run "$f/file 2.dat" "$tmp/missing" "$f/file 10.dat" "$f" "$f/file 1.dat"
"$CKSUM" "$f/file 2.dat" "$f/file 10.dat" "$f/file 1.dat" \
	>"$tmp/expected" || exit 99
check "errors: before" "$tmp/expected" "$tmp/before"
check "errors: after" "$tmp/expected" "$tmp/after"
{
	for run in before after; do
		echo "legacy-sync: $run: $tmp/missing: No such file or directory"
		echo "legacy-sync: $run: $f: Is a directory"
	done
} >"$tmp/expected"
grep -v 'cold cache' "$tmp/err" >"$tmp/errors"
check "errors: stderr" "$tmp/expected" "$tmp/errors"
timings "errors"
[ "$st" -eq 1 ] || fail "errors: exit status $st, expected 1"

# 4. Bad usage.
for args in "" "-a 0" "-a 65" "-a x" "-q $f/file 1.dat"; do
	# shellcheck disable=SC2086
	run $args
	[ "$st" -eq 2 ] || fail "usage '$args': exit status $st, expected 2"
	grep -q '^usage: legacy-sync ' "$tmp/err" ||
		fail "usage '$args': no usage message"
	check "usage '$args': stdout" /dev/null "$tmp/out"
done

exit $failed
