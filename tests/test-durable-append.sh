#!/bin/sh
# The durable-append example must append exactly its input to the log, in
# order, acknowledge every line once ("ack N BYTES", in line order), and
# stop with an error and a non-zero status when a write fails or is short.
# Run by `make check`, which sets DURABLE_APPEND (the built
# examples/durable-append).  By hand, from the build directory:
#	DURABLE_APPEND=./examples/durable-append \
#		sh ../tests/test-durable-append.sh
# Exits 0 on success, 1 after printing each failure, 99 when the test
# itself cannot run.

if [ -z "${DURABLE_APPEND:-}" ] || [ ! -x "$DURABLE_APPEND" ]; then
	echo "ERROR: DURABLE_APPEND='${DURABLE_APPEND:-}' is not a program"
	exit 99
fi

. "$(dirname "$0")/shell-helpers.sh"
test_tmpdir durable-append

# acks FILE: the acks due for the lines of FILE, "ack N BYTES" in order,
# BYTES counting the newline, which the last line may lack.
acks()
{
	bare=0
	if [ -n "$(tail -c 1 "$1")" ]; then
		bare=1
	fi
	LC_ALL=C awk -v bare=$bare '{ n[NR] = length($0) + 1 } END {
		for (i = 1; i <= NR; i++)
			printf "ack %d %d\n", i, n[i] - (i == NR && bare)
	}' "$1"
}

# run ARG... <INPUT: durable-append into $tmp/out and $tmp/err, status $st.
run()
{
	"$DURABLE_APPEND" "$@" >"$tmp/out" 2>"$tmp/err"
	st=$?
}

# Input: 2000 lines of varied lengths, among them empty ones, and in the
# middle one of 200000 bytes, longer than the program's first buffer.
in=$tmp/in
lines()
{
	LC_ALL=C awk -v from="$1" -v to="$2" 'BEGIN {
		for (i = from; i <= to; i++) {
			s = ""
			for (j = 0; j < (i * 37) % 101; j++)
				s = s sprintf("%c", 97 + (i + j) % 26)
			print i % 97 == 0 ? "" : i " " s
		}
	}'
}
{
	lines 1 1000 && head -c 200000 /dev/zero | tr '\0' x && echo &&
		lines 1001 2000
} >"$in" || exit 99
acks "$in" >"$tmp/acks" || exit 99

# 1. A new log: exactly the input, every line acknowledged once, in order,
# whatever the window.
for opts in "" "-w 1" "-w 7" "-w 4096"; do
	log=$tmp/log$opts
	# shellcheck disable=SC2086
	run $opts "$log" <"$in"
	check_status "new log $opts" 0 "$st"
	check "new log $opts: log" "$in" "$log"
	check "new log $opts: acks" "$tmp/acks" "$tmp/out"
	check "new log $opts: stderr" /dev/null "$tmp/err"
done

# 2. An existing log grows at its end; line numbers start again at 1.
log=$tmp/existing
printf 'first\nsecond\n' >"$log"
printf 'third\nfourth\n' >"$tmp/more"
run "$log" <"$tmp/more"
printf 'first\nsecond\nthird\nfourth\n' >"$tmp/expected"
check "existing log" "$tmp/expected" "$log"
printf 'ack 1 6\nack 2 7\n' >"$tmp/expected"
check "existing log: acks" "$tmp/expected" "$tmp/out"
check_status "existing log" 0 "$st"

# 3. A last line without a newline is appended as it is.
log=$tmp/bare
printf 'one\ntwo' | "$DURABLE_APPEND" "$log" >"$tmp/out" 2>"$tmp/err"
st=$?
printf 'one\ntwo' >"$tmp/expected"
check "no newline at the end" "$tmp/expected" "$log"
printf 'ack 1 4\nack 2 3\n' >"$tmp/expected"
check "no newline at the end: acks" "$tmp/expected" "$tmp/out"
check_status "no newline at the end" 0 "$st"

# 4. No input: the log is created, empty, and nothing is acknowledged.
log=$tmp/empty
run "$log" </dev/null
check_status "no input" 0 "$st"
check "no input: acks" /dev/null "$tmp/out"
if [ ! -f "$log" ] || [ -s "$log" ]; then
	echo "FAIL: no input: $log is not an empty file"
	failed=1
fi

# 5. A writer that waits for each ack before it sends the next line gets
# it: the program acknowledges what it has without waiting for a window to
# fill or for more input.  (A hang here is that bug; timeout(1) ends it.)
log=$tmp/dialog
if mkfifo "$tmp/fifo" 2>/dev/null; then
	limit=
	if command -v timeout >/dev/null 2>&1; then
		limit="timeout 60"
	fi
	{
		for i in 1 2 3; do
			echo "line $i"
			IFS= read -r ack <&3 || break
			echo "$ack" >>"$tmp/dialog-acks"
		done
	} 3<"$tmp/fifo" | $limit "$DURABLE_APPEND" -w 100 "$log" >"$tmp/fifo"
	st=$?
	printf 'ack 1 7\nack 2 7\nack 3 7\n' >"$tmp/expected"
	check "dialog: acks" "$tmp/expected" "$tmp/dialog-acks"
	check_status "dialog" 0 "$st"
fi

# 6. A log in a missing directory: an error on stderr, nothing
# acknowledged, exit status 1.
run "$tmp/missing/log" <"$in"
check_status "missing directory" 1 "$st"
check "missing directory: stdout" /dev/null "$tmp/out"
echo "durable-append: $tmp/missing/log: No such file or directory" \
	>"$tmp/expected"
check "missing directory: stderr" "$tmp/expected" "$tmp/err"

# 7. A file size limit (ulimit -f: 512 or 1024 bytes a block, depending on
# the shell) cuts a write short: the chain breaks there.  The lines before
# it are acknowledged, the short one and all after it are not, the log
# ends at the limit, and the status is 1.  Then a write at the limit fails
# outright.  A shell without ulimit -f skips this part.
seq 1 500 | LC_ALL=C awk '{ printf "%099d\n", $1 }' >"$tmp/hundreds"
log=$tmp/limited
# shellcheck disable=SC2039,SC3045
if (ulimit -f 1) 2>/dev/null; then
	(ulimit -f 1 && exec "$DURABLE_APPEND" -w 3 "$log") \
		<"$tmp/hundreds" >"$tmp/out" 2>"$tmp/err"
	st=$?
	check_status "file size limit" 1 "$st"
	size=$(wc -c <"$log")
	size=$((size))
	case $size in
	512 | 1024) ;;
	*)
		echo "FAIL: file size limit: log of $size bytes"
		failed=1
		size=512
		;;
	esac
	whole=$((size / 100))
	head -c "$size" "$tmp/hundreds" >"$tmp/expected"
	check "file size limit: log" "$tmp/expected" "$log"
	head -n "$whole" "$tmp/hundreds" >"$tmp/part"
	acks "$tmp/part" >"$tmp/expected"
	check "file size limit: acks" "$tmp/expected" "$tmp/out"
	echo "durable-append: $log: line $((whole + 1)): short write," \
		"$((size % 100)) of 100 bytes" >"$tmp/expected"
	check "file size limit: stderr" "$tmp/expected" "$tmp/err"

	cp "$log" "$tmp/before"
	(ulimit -f 1 && exec "$DURABLE_APPEND" "$log") \
		<"$tmp/hundreds" >"$tmp/out" 2>"$tmp/err"
	st=$?
	check_status "at the file size limit" 1 "$st"
	check "at the file size limit: log" "$tmp/before" "$log"
	check "at the file size limit: acks" /dev/null "$tmp/out"
	echo "durable-append: $log: line 1: write: File too large" \
		>"$tmp/expected"
	check "at the file size limit: stderr" "$tmp/expected" "$tmp/err"
else
	echo "SKIP: file size limit: no ulimit -f in this shell"
fi

# 8. Bad usage: status 2 and a usage message.
for args in "" "-w 0 $tmp/x" "-w 4097 $tmp/x" "-w x $tmp/x" "-x $tmp/x" \
	"$tmp/x $tmp/y"; do
	# shellcheck disable=SC2086
	run $args </dev/null
	check_status "usage '$args'" 2 "$st"
	if ! grep -q '^usage: durable-append' "$tmp/err"; then
		echo "FAIL: usage '$args': no usage message"
		failed=1
	fi
done

# 9. One fdatasync per line, when strace can tell.
if command -v strace >/dev/null 2>&1 &&
	strace -f -o /dev/null true 2>/dev/null; then
	head -n 50 "$in" >"$tmp/fifty"
	# LeakSanitizer cannot run under ptrace: leave it out here.
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		strace -f -e trace=fdatasync -o "$tmp/trace" \
		"$DURABLE_APPEND" -w 8 "$tmp/traced" <"$tmp/fifty" >/dev/null
	check_status "strace" 0 $?
	n=$(grep -c 'fdatasync(' "$tmp/trace")
	if [ "$n" -ne 50 ]; then
		echo "FAIL: $n fdatasync calls for 50 lines"
		failed=1
	fi
fi

exit $failed
