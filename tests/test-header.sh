#!/bin/sh
# include/iopool.h stands on its own and stays clean for its users: a
# translation unit that includes it (twice, for the include guard) and
# uses its types, macros, enums and a few calls compiles without a single
# warning with
#	$CC  -std=c99 -pedantic -Wall -Wextra -Wstrict-prototypes -Werror
#	$CC  -std=c11 (the same)
#	$CXX -std=c++11 -pedantic -Wall -Wextra -Werror
# and, as C++, refers to the calls by their C names (the header's
# extern "C"), not by mangled ones: a C++ program would not link otherwise.
# The version macros must be integers the preprocessor can compare.
# Run by `make check`, which sets IOP_SRCDIR, CC, CXX and NM.  By hand,
# from the build directory:
#	IOP_SRCDIR=.. CC=gcc CXX=g++ NM=nm sh ../tests/test-header.sh
# Exits 0 on success (the C++ part skipped when $CXX cannot compile at
# all), 1 after printing each failure, 99 when the test cannot run.

CC=${CC:-cc}
CXX=${CXX:-c++}
NM=${NM:-nm}
include=${IOP_SRCDIR:-..}/include
if [ ! -f "$include/iopool.h" ]; then
	echo "ERROR: no header at $include/iopool.h"
	exit 99
fi
. "$(dirname "$0")/shell-helpers.sh"
test_tmpdir header

# Valid C99, C11 and C++11 alike: no designated initialisers, no
# compound literals, no C++-only syntax.
cat >"$tmp/use.c" <<'_EOF'
#include <iopool.h>
#include <iopool.h>

#if !defined(IOP_VERSION_MAJOR) || IOP_VERSION_MAJOR < 0 || \
	IOP_VERSION_MINOR < 0 || IOP_VERSION_PATCH < 0
#error "IOP_VERSION_* are not integers the preprocessor can compare"
#endif

static const char header_version[] = IOP_VERSION_STRING;
static struct iop_options zero_options;	/* C++: a const needs a value */

static void on_done(iop_job *job, ssize_t result, void *arg)
{
	(void)job;
	(void)result;
	(void)arg;
}

static void on_group(iop_group *group, const struct iop_group_result *r,
		     void *arg)
{
	(void)group;
	(void)arg;
	(void)(r->succeeded + r->failed + r->cancelled);
}

static ssize_t work(void *ctx)
{
	return ctx != NULL ? 1 : 0;
}

int use_header(int fd);

int use_header(int fd)
{
	struct iop_options opts = zero_options;
	struct iop_stats st;
	struct iop_dirent *entries = NULL;
	iop_done_fn *done = on_done;
	iop_work_fn *fn = work;
	enum iop_op op = IOP_OP_CALL;
	iop_pool *pool;
	iop_group *group;
	iop_job *job;
	ssize_t result = 0;
	char buf[64];

	opts.threads = IOP_THREADS_MAX;
	opts.overflow = IOP_OVERFLOW_BLOCK;
	opts.flags = IOP_POOL_WORKERS_ONLY | IOP_POOL_NO_TIMING;
	pool = iop_pool_new(&opts);
	if (pool == NULL)
		return -1;
	iop_batch_begin(pool);
	job = iop_read(pool, fd, buf, sizeof(buf), IOP_OFFSET_CURRENT, done,
		       NULL);
	group = iop_group_new(pool, on_group, NULL);
	if (job != NULL && group != NULL) {
		iop_job_set_priority(job, IOP_PRIO_MAX);
		iop_group_add(group, job);
		iop_group_seal(group);
	}
	iop_batch_end(pool);
	iop_listdir(pool, fd, ".", IOP_LISTDIR_SORT, &entries, done, NULL);
	job = iop_call(pool, fn, buf, NULL, NULL);
	if (job != NULL && iop_job_state(job) != IOP_QUEUED)
		result = iop_await(job);
	st.size = sizeof(st);
	iop_pool_stats(pool, &st);
	iop_wait(pool, -1);
	iop_pool_destroy(pool);
	return (int)result + (int)st.submitted + (int)op +
	       (int)st.running_ns[IOP_OP_READ][IOP_HIST_BUCKETS - 1] +
	       iop_version()[0] + header_version[0];
}
_EOF

# compile LABEL COMPILER FLAGS...: compile use.c to $tmp/use.o with the
# header's directory on the include path; report any message.
compile()
{
	label=$1
	shift
	"$@" -I"$include" -c -o "$tmp/use.o" "$tmp/src" >"$tmp/out" 2>&1
	st=$?
	if [ $st -ne 0 ] || [ -s "$tmp/out" ]; then
		echo "FAIL: $label: exit status $st, messages:"
		head -n 40 "$tmp/out"
		failed=1
		return 1
	fi
	echo "ok: $label"
}

cp "$tmp/use.c" "$tmp/src" || exit 99
for std in c99 c11; do
	# shellcheck disable=SC2086
	compile "C, -std=$std" $CC -x c -std=$std -pedantic -Wall -Wextra \
		-Wstrict-prototypes -Werror
done

# C++: only when $CXX compiles at all (configure sets CXX=g++ even when
# there is none).
echo 'int main() { return 0; }' >"$tmp/empty.cc"
# shellcheck disable=SC2086
if ! $CXX -c -o "$tmp/empty.o" "$tmp/empty.cc" >/dev/null 2>&1; then
	echo "SKIP: C++ part: '$CXX' cannot compile (install g++)"
	exit $failed
fi
# shellcheck disable=SC2086
if compile "C++, -std=c++11" $CXX -x c++ -std=c++11 -pedantic -Wall \
	-Wextra -Werror; then
	# The calls must be referred to by their C names.
	# shellcheck disable=SC2086
	$NM "$tmp/use.o" >"$tmp/nm" || exit 99
	for name in iop_pool_new iop_read iop_call iop_await iop_version \
		iop_pool_destroy; do
		if ! grep -q " U $name\$" "$tmp/nm"; then
			echo "FAIL: C++: no unmangled reference to $name" \
				"(extern \"C\" missing?)"
			failed=1
		fi
	done
	if grep ' U _Z.*iop_' "$tmp/nm"; then
		echo "FAIL: C++: mangled references to iopool calls (above)"
		failed=1
	fi
fi

exit $failed
