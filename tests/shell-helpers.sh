# Sourced by the shell tests (". tests/shell-helpers.sh"): what they share.
#
# test_tmpdir NAME: make the scratch directory $tmp (removed when the test
# exits, also on a signal) and set $failed to 0; exits 99 if it cannot.
# fail MESSAGE...: report a failure, set $failed.
# check LABEL EXPECTED ACTUAL: report a difference between two files, with
# up to $check_lines (default 20) lines of the diff.
# check_status LABEL EXPECTED ACTUAL: report a wrong exit status.
# Each test ends with `exit $failed`.

test_tmpdir()
{
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-$1.XXXXXX") || exit 99
	trap 'rm -rf "$tmp"' EXIT
	trap 'exit 1' HUP INT PIPE TERM
	failed=0
}

fail()
{
	echo "FAIL: $*"
	failed=1
}

check()
{
	if ! cmp -s "$2" "$3"; then
		fail "$1"
		diff -u "$2" "$3" | head -n "${check_lines:-20}"
	fi
}

check_status()
{
	if [ "$2" != "$3" ]; then
		fail "$1: exit status $3, expected $2"
	fi
}
