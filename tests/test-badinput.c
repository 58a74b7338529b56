/*
 * Suite "badinput": every bad input of docs/bad-input.md, each a test
 * with the result include/iopool.h documents for it.  A submit refused
 * with EINVAL queues nothing (the pool's submitted counter stays put) and
 * calls nothing back; a bad descriptor or path is the system call's
 * error, delivered as the job's result; misuse the library can detect
 * gets an error code, and use of a released job handle aborts with a
 * message, tested in a forked child.
 *
 * The test names follow the rows of the table, in its order.  The TCase
 * whose forked child starts threads is tagged "fork" (ThreadSanitizer runs
 * exclude it).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* How long a forked child may take before the parent calls it hung. */
#define CHILD_WAIT_MS 20000

/*
 * A submit that must fail with errno EINVAL.  errno is cleared first, so
 * a stale EINVAL does not pass.
 */
#define ASSERT_EINVAL(call)						\
	do {								\
		iop_job *j_;						\
		int e_;							\
		errno = 0;						\
		j_ = (call);						\
		e_ = errno;						\
		ck_assert_msg(j_ == NULL && e_ == EINVAL,		\
			      "%s: job %p, errno %d (%s), want EINVAL",	\
			      #call, (void *)j_, e_, strerror(e_));	\
	} while (0)

/* The pool's submitted counter: refused submits must not move it. */
static uint64_t submitted(const iop_pool *pool)
{
	struct iop_stats st;

	pool_stats(pool, &st);
	return st.submitted;
}

/* Await a future that must have been accepted. */
static ssize_t await_ok(iop_job *job)
{
	ck_assert_msg(job != NULL, "submit failed: %s", strerror(errno));
	return iop_await(job);
}

/* Run a callback job to its end on this thread; its callback's result. */
static ssize_t callback_result(iop_pool *pool, iop_job *job,
			       struct done_rec *d)
{
	ck_assert_msg(job != NULL, "submit failed: %s", strerror(errno));
	drain_until(pool, &d->calls, 1);
	ck_assert_int_eq(load_int(&d->off_thread), 0);
	return load_long(&d->result);
}

/* A directory under ${TMPDIR:-/tmp}, open, for the path tests. */
struct tmpdir {
	char path[PATH_MAX];
	int fd;
};

static void tmpdir_make(struct tmpdir *t)
{
	const char *dir = getenv("TMPDIR");

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	snprintf(t->path, sizeof(t->path), "%s/iopool-badinput-XXXXXX", dir);
	ck_assert_msg(mkdtemp(t->path) != NULL, "mkdtemp: %s",
		      strerror(errno));
	t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(t->fd, 0);
}

/* Remove the directory and the plain files the tests left in it. */
static void tmpdir_remove(struct tmpdir *t, const char *const *names)
{
	for (; names && *names; names++)
		unlinkat(t->fd, *names, 0);
	close(t->fd);
	ck_assert_msg(rmdir(t->path) == 0, "rmdir(%s): %s", t->path,
		      strerror(errno));
}

/* A NUL-terminated string of @len copies of @c; free() it. */
static char *long_string(size_t len, char c)
{
	char *s = malloc(len + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, len);
	s[len] = '\0';
	return s;
}

/* A worker held on a gate, so that jobs queued after it stay queued. */
struct blocker {
	struct gate gate;
	struct held held;
	struct done_rec done;
	sem_t entered;
};

static iop_pool *pool_with_blocker(struct blocker *b)
{
	iop_pool *pool = pool_new(1);

	gate_init(&b->gate);
	done_rec_init(&b->done);
	ck_assert_int_eq(sem_init(&b->entered, 0, 0), 0);
	held_init(&b->held, &b->gate, &b->entered, 0);
	ck_assert_ptr_nonnull(iop_call(pool, held_work, &b->held,
				       done_record, &b->done));
	sem_wait_n(&b->entered, 1);
	return pool;
}

/* Open the gate and collect the blocker's callback. */
static void blocker_release(iop_pool *pool, struct blocker *b)
{
	gate_open(&b->gate);
	drain_until(pool, &b->done.calls, 1);
}

static void blocker_destroy(struct blocker *b)
{
	gate_destroy(&b->gate);
	sem_destroy(&b->entered);
}

static ssize_t work_fail(void *ctx)
{
	(void)ctx;
	return -EIO;
}

/* ==== NULL pointers. ==== */

/* Every submit with @pool NULL: NULL, errno EINVAL. */
START_TEST(test_null_pool_submit)
{
	char buf[8];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct stat st;
	void *data;
	struct iop_dirent *ents;

	ASSERT_EINVAL(iop_read(NULL, 0, buf, sizeof(buf), 0, NULL, NULL));
	ASSERT_EINVAL(iop_write(NULL, 1, buf, 1, 0, NULL, NULL));
	ASSERT_EINVAL(iop_readv(NULL, 0, &iov, 1, 0, NULL, NULL));
	ASSERT_EINVAL(iop_writev(NULL, 1, &iov, 1, 0, NULL, NULL));
	ASSERT_EINVAL(iop_call(NULL, work_return_ctx, NULL, NULL, NULL));
	ASSERT_EINVAL(iop_openat(NULL, AT_FDCWD, "/", O_RDONLY, 0, NULL,
				 NULL));
	ASSERT_EINVAL(iop_close(NULL, -1, NULL, NULL));
	ASSERT_EINVAL(iop_fsync(NULL, 0, NULL, NULL));
	ASSERT_EINVAL(iop_fdatasync(NULL, 0, NULL, NULL));
	ASSERT_EINVAL(iop_fstat(NULL, 0, &st, NULL, NULL));
	ASSERT_EINVAL(iop_statat(NULL, AT_FDCWD, "/", &st, 0, NULL, NULL));
	ASSERT_EINVAL(iop_readfile(NULL, AT_FDCWD, "/", &data, NULL, NULL));
	ASSERT_EINVAL(iop_ftruncate(NULL, 0, 0, NULL, NULL));
	ASSERT_EINVAL(iop_fallocate(NULL, 0, 0, 0, 1, NULL, NULL));
	ASSERT_EINVAL(iop_renameat(NULL, AT_FDCWD, "a", AT_FDCWD, "b", 0,
				   NULL, NULL));
	ASSERT_EINVAL(iop_unlinkat(NULL, AT_FDCWD, "a", 0, NULL, NULL));
	ASSERT_EINVAL(iop_mkdirat(NULL, AT_FDCWD, "a", 0700, NULL, NULL));
	ASSERT_EINVAL(iop_listdir(NULL, AT_FDCWD, "/", 0, &ents, NULL,
				  NULL));
}
END_TEST

/* The pool calls with @pool NULL: -EINVAL (handles: NULL, EINVAL). */
START_TEST(test_null_pool_calls)
{
	struct iop_stats st = { .size = sizeof(st) };
	iop_group *g;
	iop_lane *l;

	ck_assert_int_eq(iop_poll(NULL), -EINVAL);
	ck_assert_int_eq(iop_wait(NULL, 0), -EINVAL);
	ck_assert_int_eq(iop_wait(NULL, -1), -EINVAL);
	ck_assert_int_eq(iop_poll_budget(NULL, 1, 1), -EINVAL);
	ck_assert_int_eq(iop_pool_fd(NULL), -EINVAL);
	ck_assert_int_eq(iop_batch_begin(NULL), -EINVAL);
	ck_assert_int_eq(iop_batch_end(NULL), -EINVAL);
	ck_assert_int_eq(iop_pool_set_threads(NULL, 0, 1), -EINVAL);
	ck_assert_int_eq(iop_pool_stats(NULL, &st), -EINVAL);
	errno = 0;
	g = iop_group_new(NULL, NULL, NULL);
	ck_assert(g == NULL && errno == EINVAL);
	errno = 0;
	l = iop_lane_new(NULL, "lane", 1);
	ck_assert(l == NULL && errno == EINVAL);
}
END_TEST

/* iop_pool_destroy(NULL) does nothing (and leaves errno alone). */
START_TEST(test_null_pool_destroy)
{
	errno = 12345;
	iop_pool_destroy(NULL);
	ck_assert_int_eq(errno, 12345);
}
END_TEST

/* @buf NULL with @len > 0: EINVAL, nothing queued. */
START_TEST(test_null_buf_with_len)
{
	iop_pool *pool = pool_new(1);
	struct done_rec d;

	done_rec_init(&d);
	ASSERT_EINVAL(iop_read(pool, 0, NULL, 1, 0, NULL, NULL));
	ASSERT_EINVAL(iop_read(pool, 0, NULL, 4096, IOP_OFFSET_CURRENT,
			       done_record, &d));
	ASSERT_EINVAL(iop_write(pool, 1, NULL, 1, 0, done_record, &d));
	ck_assert_uint_eq(submitted(pool), 0);
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(load_int(&d.calls), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

/* @buf NULL with @len 0 is valid: the job reads or writes 0 bytes. */
START_TEST(test_null_buf_zero_len)
{
	iop_pool *pool = pool_new(1);
	int fd = make_pattern_file(16, 1);
	struct done_rec d;

	done_rec_init(&d);
	ck_assert_int_eq(await_ok(iop_read(pool, fd, NULL, 0, 0, NULL, NULL)),
			 0);
	ck_assert_int_eq(await_ok(iop_write(pool, fd, NULL, 0, 4, NULL,
					    NULL)), 0);
	ck_assert_int_eq(callback_result(pool, iop_read(pool, fd, NULL, 0, 8,
							done_record, &d), &d),
			 0);
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

/* iop_call() with @fn NULL: EINVAL, whatever @done is. */
START_TEST(test_null_fn)
{
	iop_pool *pool = pool_new(1);
	struct done_rec d;

	done_rec_init(&d);
	ASSERT_EINVAL(iop_call(pool, NULL, NULL, NULL, NULL));
	ASSERT_EINVAL(iop_call(pool, NULL, &d, done_record, &d));
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

/*
 * @done NULL with @arg set is a future (the arg is unused); a callback
 * job with @arg NULL gets NULL back.
 */
static void done_expect_null_arg(iop_job *job, ssize_t result, void *arg)
{
	(void)job;
	ck_assert_ptr_null(arg);
	ck_assert_int_eq(result, 42);
}

START_TEST(test_null_done_or_arg)
{
	iop_pool *pool = pool_new(1);
	int dummy;

	ck_assert_int_eq(await_ok(iop_call(pool, work_return_ctx,
					   (void *)(intptr_t)42, NULL,
					   &dummy)), 42);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx,
				       (void *)(intptr_t)42,
				       done_expect_null_arg, NULL));
	ck_assert_int_eq(iop_wait(pool, TEST_WAIT_MS), 1);
	iop_pool_destroy(pool);
}
END_TEST

/* Result pointers NULL (struct stat, *data, *entries): EINVAL. */
START_TEST(test_null_out_pointer)
{
	iop_pool *pool = pool_new(1);

	ASSERT_EINVAL(iop_fstat(pool, 0, NULL, NULL, NULL));
	ASSERT_EINVAL(iop_statat(pool, AT_FDCWD, "/", NULL, 0, NULL, NULL));
	ASSERT_EINVAL(iop_readfile(pool, AT_FDCWD, "/etc/hostname", NULL,
				   NULL, NULL));
	ASSERT_EINVAL(iop_listdir(pool, AT_FDCWD, "/", 0, NULL, NULL, NULL));
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* Paths NULL: EINVAL for every op that takes one. */
START_TEST(test_null_path)
{
	iop_pool *pool = pool_new(1);
	struct stat st;
	void *data = &data;
	struct iop_dirent *ents;

	ASSERT_EINVAL(iop_openat(pool, AT_FDCWD, NULL, O_RDONLY, 0, NULL,
				 NULL));
	ASSERT_EINVAL(iop_statat(pool, AT_FDCWD, NULL, &st, 0, NULL, NULL));
	ASSERT_EINVAL(iop_readfile(pool, AT_FDCWD, NULL, &data, NULL, NULL));
	ASSERT_EINVAL(iop_unlinkat(pool, AT_FDCWD, NULL, 0, NULL, NULL));
	ASSERT_EINVAL(iop_mkdirat(pool, AT_FDCWD, NULL, 0700, NULL, NULL));
	ASSERT_EINVAL(iop_listdir(pool, AT_FDCWD, NULL, 0, &ents, NULL,
				  NULL));
	ASSERT_EINVAL(iop_renameat(pool, AT_FDCWD, NULL, AT_FDCWD, "b", 0,
				   NULL, NULL));
	ASSERT_EINVAL(iop_renameat(pool, AT_FDCWD, "a", AT_FDCWD, NULL, 0,
				   NULL, NULL));
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* The job calls with @job NULL: -EINVAL. */
START_TEST(test_null_job)
{
	ssize_t r = 7;

	ck_assert_int_eq(iop_await(NULL), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(NULL, 0, &r), -EINVAL);
	ck_assert_int_eq(r, 7);
	ck_assert_int_eq(iop_cancel(NULL), -EINVAL);
	ck_assert_int_eq(iop_job_state(NULL), -EINVAL);
	ck_assert_int_eq(iop_link(NULL, NULL), -EINVAL);
	ck_assert_int_eq(iop_job_set_priority(NULL, 0), -EINVAL);
	ck_assert_int_eq(iop_job_set_deadline(NULL, 1000), -EINVAL);
	ck_assert_int_eq(iop_job_set_lane(NULL, NULL), -EINVAL);
}
END_TEST

/* iop_await_timeout() with @result NULL: -EINVAL, and the job is kept. */
START_TEST(test_null_await_result)
{
	iop_pool *pool = pool_new(1);
	iop_job *job = iop_call(pool, work_return_ctx, (void *)(intptr_t)9,
				NULL, NULL);

	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_await_timeout(job, 0, NULL), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(job, -1, NULL), -EINVAL);
	ck_assert_int_eq(iop_await(job), 9);
	iop_pool_destroy(pool);
}
END_TEST

/* Groups and lanes: NULL callback, group or name: EINVAL. */
START_TEST(test_null_group_lane)
{
	iop_pool *pool = pool_new(1);

	errno = 0;
	ck_assert_ptr_null(iop_group_new(pool, NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(iop_group_add(NULL, NULL), -EINVAL);
	ck_assert_int_eq(iop_group_seal(NULL), -EINVAL);
	ck_assert_int_eq(iop_group_cancel(NULL), -EINVAL);
	errno = 0;
	ck_assert_ptr_null(iop_lane_new(pool, NULL, 1));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(iop_lane_set_cap(NULL, 1), -EINVAL);
	iop_pool_destroy(pool);
}
END_TEST

/* iop_pool_stats() with @st NULL or a size too small: -EINVAL. */
START_TEST(test_null_stats)
{
	iop_pool *pool = pool_new(1);
	struct iop_stats st;

	ck_assert_int_eq(iop_pool_stats(pool, NULL), -EINVAL);
	memset(&st, 0, sizeof(st));
	st.size = 0;
	ck_assert_int_eq(iop_pool_stats(pool, &st), -EINVAL);
	st.size = offsetof(struct iop_stats, queued_ns) - 1;
	ck_assert_int_eq(iop_pool_stats(pool, &st), -EINVAL);
	iop_pool_destroy(pool);
}
END_TEST

/* ==== Lengths, offsets and counts out of range. ==== */

/* @len above SSIZE_MAX: EINVAL for reads and writes. */
START_TEST(test_len_above_ssize_max)
{
	iop_pool *pool = pool_new(1);
	char buf[8];

	ASSERT_EINVAL(iop_read(pool, 0, buf, (size_t)SSIZE_MAX + 1, 0, NULL,
			       NULL));
	ASSERT_EINVAL(iop_read(pool, 0, buf, SIZE_MAX, IOP_OFFSET_CURRENT,
			       NULL, NULL));
	ASSERT_EINVAL(iop_write(pool, 1, buf, (size_t)SSIZE_MAX + 1, 0, NULL,
				NULL));
	ASSERT_EINVAL(iop_write(pool, 1, buf, SIZE_MAX, IOP_OFFSET_CURRENT,
				NULL, NULL));
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* An offset below 0 other than IOP_OFFSET_CURRENT (-1): EINVAL. */
START_TEST(test_negative_offset)
{
	iop_pool *pool = pool_new(1);
	char buf[8];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	const int64_t bad[] = { -2, -4096, INT64_MIN };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ASSERT_EINVAL(iop_read(pool, 0, buf, 1, bad[i], NULL, NULL));
		ASSERT_EINVAL(iop_write(pool, 1, buf, 1, bad[i], NULL, NULL));
		ASSERT_EINVAL(iop_readv(pool, 0, &iov, 1, bad[i], NULL,
					NULL));
		ASSERT_EINVAL(iop_writev(pool, 1, &iov, 1, bad[i], NULL,
					 NULL));
	}
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* IOP_OFFSET_CURRENT is the one valid negative offset: read(2). */
START_TEST(test_offset_current)
{
	iop_pool *pool = pool_new(1);
	int fd = make_pattern_file(64, 3);
	unsigned char buf[16];

	ck_assert_int_eq(lseek(fd, 10, SEEK_SET), 10);
	ck_assert_int_eq(await_ok(iop_read(pool, fd, buf, sizeof(buf),
					   IOP_OFFSET_CURRENT, NULL, NULL)),
			 16);
	ck_assert_uint_eq(buf[0], pattern_byte(3, 10));
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 26);
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

/* @iovcnt 0 (also with @iov NULL) is valid: 0 bytes. */
START_TEST(test_iovcnt_zero)
{
	iop_pool *pool = pool_new(1);
	int fd = make_pattern_file(16, 4);
	char buf[4];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

	ck_assert_int_eq(await_ok(iop_readv(pool, fd, NULL, 0, 0, NULL,
					    NULL)), 0);
	ck_assert_int_eq(await_ok(iop_readv(pool, fd, &iov, 0, 0, NULL,
					    NULL)), 0);
	ck_assert_int_eq(await_ok(iop_writev(pool, fd, NULL, 0,
					     IOP_OFFSET_CURRENT, NULL, NULL)),
			 0);
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

/* @iovcnt below 0: EINVAL. */
START_TEST(test_iovcnt_negative)
{
	iop_pool *pool = pool_new(1);
	char buf[4];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

	ASSERT_EINVAL(iop_readv(pool, 0, &iov, -1, 0, NULL, NULL));
	ASSERT_EINVAL(iop_writev(pool, 1, &iov, -1, 0, NULL, NULL));
	ASSERT_EINVAL(iop_readv(pool, 0, &iov, INT_MIN, 0, NULL, NULL));
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* @iovcnt above IOV_MAX: EINVAL; exactly IOV_MAX is fine. */
START_TEST(test_iovcnt_above_iov_max)
{
	iop_pool *pool = pool_new(1);
	int fd = make_pattern_file(IOV_MAX + 1, 5);
	unsigned char *buf = malloc(IOV_MAX + 1);
	struct iovec *iov = calloc(IOV_MAX + 1, sizeof(*iov));

	ck_assert(buf && iov);
	for (int i = 0; i <= IOV_MAX; i++) {
		iov[i].iov_base = buf + i;
		iov[i].iov_len = 1;
	}
	ASSERT_EINVAL(iop_readv(pool, fd, iov, IOV_MAX + 1, 0, NULL, NULL));
	ASSERT_EINVAL(iop_writev(pool, fd, iov, IOV_MAX + 1, 0, NULL, NULL));
	ASSERT_EINVAL(iop_readv(pool, fd, iov, INT_MAX, 0, NULL, NULL));
	ck_assert_uint_eq(submitted(pool), 0);
	ck_assert_int_eq(await_ok(iop_readv(pool, fd, iov, IOV_MAX, 0, NULL,
					    NULL)), IOV_MAX);
	ck_assert_uint_eq(buf[IOV_MAX - 1], pattern_byte(5, IOV_MAX - 1));
	iop_pool_destroy(pool);
	free(iov);
	free(buf);
	close(fd);
}
END_TEST

/* @iov NULL with @iovcnt > 0: EINVAL. */
START_TEST(test_iov_null_with_count)
{
	iop_pool *pool = pool_new(1);

	ASSERT_EINVAL(iop_readv(pool, 0, NULL, 1, 0, NULL, NULL));
	ASSERT_EINVAL(iop_writev(pool, 1, NULL, 3, IOP_OFFSET_CURRENT, NULL,
				 NULL));
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* iovec lengths adding up to more than SSIZE_MAX: EINVAL. */
START_TEST(test_iov_total_above_ssize_max)
{
	iop_pool *pool = pool_new(1);
	char buf[1];
	struct iovec iov[3] = {
		{ .iov_base = buf, .iov_len = SSIZE_MAX / 2 + 1 },
		{ .iov_base = buf, .iov_len = SSIZE_MAX / 2 + 1 },
		{ .iov_base = buf, .iov_len = SIZE_MAX },
	};

	ASSERT_EINVAL(iop_readv(pool, 0, iov, 2, 0, NULL, NULL));
	ASSERT_EINVAL(iop_writev(pool, 1, iov, 2, 0, NULL, NULL));
	ASSERT_EINVAL(iop_readv(pool, 0, iov + 2, 1, 0, NULL, NULL));
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* iop_ftruncate() with @length < 0 (-1 included): EINVAL. */
START_TEST(test_ftruncate_negative)
{
	iop_pool *pool = pool_new(1);

	ASSERT_EINVAL(iop_ftruncate(pool, 0, -1, NULL, NULL));
	ASSERT_EINVAL(iop_ftruncate(pool, 0, INT64_MIN, NULL, NULL));
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* iop_fallocate() with @offset < 0 or @len <= 0: EINVAL. */
START_TEST(test_fallocate_bad_range)
{
	iop_pool *pool = pool_new(1);

	ASSERT_EINVAL(iop_fallocate(pool, 0, 0, -1, 1, NULL, NULL));
	ASSERT_EINVAL(iop_fallocate(pool, 0, 0, 0, 0, NULL, NULL));
	ASSERT_EINVAL(iop_fallocate(pool, 0, 0, 0, -1, NULL, NULL));
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* iop_listdir() with unknown flags: EINVAL. */
START_TEST(test_listdir_unknown_flags)
{
	iop_pool *pool = pool_new(1);
	struct iop_dirent *ents;

	ASSERT_EINVAL(iop_listdir(pool, AT_FDCWD, "/", 2, &ents, NULL,
				  NULL));
	ASSERT_EINVAL(iop_listdir(pool, AT_FDCWD, "/", ~0u, &ents, NULL,
				  NULL));
	ck_assert_uint_eq(submitted(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* ==== Bad descriptors: the system call's error as the result. ==== */

/* fd -1: every descriptor op ends with -EBADF. */
START_TEST(test_fd_minus_one)
{
	iop_pool *pool = pool_new(2);
	char buf[8] = "1234567";
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct stat st;
	struct done_rec d;

	done_rec_init(&d);
	ck_assert_int_eq(await_ok(iop_read(pool, -1, buf, 8, 0, NULL, NULL)),
			 -EBADF);
	ck_assert_int_eq(await_ok(iop_read(pool, -1, buf, 8,
					   IOP_OFFSET_CURRENT, NULL, NULL)),
			 -EBADF);
	ck_assert_int_eq(await_ok(iop_write(pool, -1, buf, 8, 0, NULL,
					    NULL)), -EBADF);
	ck_assert_int_eq(await_ok(iop_readv(pool, -1, &iov, 1, 0, NULL,
					    NULL)), -EBADF);
	ck_assert_int_eq(await_ok(iop_writev(pool, -1, &iov, 1, 0, NULL,
					     NULL)), -EBADF);
	ck_assert_int_eq(await_ok(iop_fsync(pool, -1, NULL, NULL)), -EBADF);
	ck_assert_int_eq(await_ok(iop_fdatasync(pool, -1, NULL, NULL)),
			 -EBADF);
	ck_assert_int_eq(await_ok(iop_fstat(pool, -1, &st, NULL, NULL)),
			 -EBADF);
	ck_assert_int_eq(await_ok(iop_ftruncate(pool, -1, 0, NULL, NULL)),
			 -EBADF);
	ck_assert_int_eq(await_ok(iop_close(pool, -1, NULL, NULL)), -EBADF);
	ck_assert_int_eq(callback_result(pool, iop_read(pool, -1, buf, 8, 0,
							done_record, &d), &d),
			 -EBADF);
	iop_pool_destroy(pool);
}
END_TEST

/* A descriptor closed before the submit: -EBADF. */
START_TEST(test_fd_closed)
{
	iop_pool *pool = pool_new(1);
	int fd = make_pattern_file(16, 6);
	char buf[8] = "1234567";
	struct stat st;

	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(await_ok(iop_read(pool, fd, buf, 8, 0, NULL, NULL)),
			 -EBADF);
	ck_assert_int_eq(await_ok(iop_write(pool, fd, buf, 8, 0, NULL,
					    NULL)), -EBADF);
	ck_assert_int_eq(await_ok(iop_fstat(pool, fd, &st, NULL, NULL)),
			 -EBADF);
	ck_assert_int_eq(await_ok(iop_close(pool, fd, NULL, NULL)), -EBADF);
	iop_pool_destroy(pool);
}
END_TEST

/* Reading from a directory descriptor: -EISDIR. */
START_TEST(test_fd_directory_read)
{
	iop_pool *pool = pool_new(1);
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[64];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(await_ok(iop_read(pool, fd, buf, sizeof(buf), 0,
					   NULL, NULL)), -EISDIR);
	ck_assert_int_eq(await_ok(iop_read(pool, fd, buf, sizeof(buf),
					   IOP_OFFSET_CURRENT, NULL, NULL)),
			 -EISDIR);
	ck_assert_int_eq(await_ok(iop_readv(pool, fd, &iov, 1, 0, NULL,
					    NULL)), -EISDIR);
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

/*
 * Writing to a directory: a directory descriptor is never open for
 * writing, so the write ends -EBADF; opening one for writing ends -EISDIR.
 */
START_TEST(test_fd_directory_write)
{
	iop_pool *pool = pool_new(1);
	struct tmpdir t;
	char buf[4] = "abc";

	tmpdir_make(&t);
	ck_assert_int_eq(await_ok(iop_write(pool, t.fd, buf, 3, 0, NULL,
					    NULL)), -EBADF);
	ck_assert_int_eq(await_ok(iop_write(pool, t.fd, buf, 3,
					    IOP_OFFSET_CURRENT, NULL, NULL)),
			 -EBADF);
	ck_assert_int_eq(await_ok(iop_openat(pool, t.fd, ".", O_WRONLY, 0,
					     NULL, NULL)), -EISDIR);
	ck_assert_int_eq(await_ok(iop_openat(pool, AT_FDCWD, t.path, O_RDWR,
					     0, NULL, NULL)), -EISDIR);
	iop_pool_destroy(pool);
	tmpdir_remove(&t, NULL);
}
END_TEST

/* Writing to a read-only descriptor: -EBADF; the file is unchanged. */
START_TEST(test_fd_readonly_write)
{
	iop_pool *pool = pool_new(1);
	struct tmpdir t;
	const char *const names[] = { "f", NULL };
	struct iovec iov = { .iov_base = "xyz", .iov_len = 3 };
	struct stat st;
	int fd;

	tmpdir_make(&t);
	fd = openat(t.fd, "f", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	fd = openat(t.fd, "f", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(await_ok(iop_write(pool, fd, "xyz", 3, 0, NULL,
					    NULL)), -EBADF);
	ck_assert_int_eq(await_ok(iop_write(pool, fd, "xyz", 3,
					    IOP_OFFSET_CURRENT, NULL, NULL)),
			 -EBADF);
	ck_assert_int_eq(await_ok(iop_writev(pool, fd, &iov, 1, 0, NULL,
					     NULL)), -EBADF);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	close(fd);
	iop_pool_destroy(pool);
	tmpdir_remove(&t, names);
}
END_TEST

/* Reading from a write-only descriptor: -EBADF. */
START_TEST(test_fd_writeonly_read)
{
	iop_pool *pool = pool_new(1);
	struct tmpdir t;
	const char *const names[] = { "f", NULL };
	char buf[8];
	int fd;

	tmpdir_make(&t);
	fd = openat(t.fd, "f", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "data", 4), 4);
	ck_assert_int_eq(await_ok(iop_read(pool, fd, buf, 4, 0, NULL, NULL)),
			 -EBADF);
	close(fd);
	iop_pool_destroy(pool);
	tmpdir_remove(&t, names);
}
END_TEST

/* A relative path with @dirfd -1 (not AT_FDCWD): -EBADF. */
START_TEST(test_dirfd_bad)
{
	iop_pool *pool = pool_new(1);
	struct stat st;
	void *data = &data;

	ck_assert_int_eq(await_ok(iop_openat(pool, -1, "x", O_RDONLY, 0,
					     NULL, NULL)), -EBADF);
	ck_assert_int_eq(await_ok(iop_statat(pool, -1, "x", &st, 0, NULL,
					     NULL)), -EBADF);
	ck_assert_int_eq(await_ok(iop_readfile(pool, -1, "x", &data, NULL,
					       NULL)), -EBADF);
	ck_assert_ptr_null(data);
	iop_pool_destroy(pool);
}
END_TEST

/* ==== Paths: the kernel's error as the result. ==== */

/* An empty path: -ENOENT from every path op; nothing is created. */
START_TEST(test_path_empty)
{
	iop_pool *pool = pool_new(2);
	struct tmpdir t;
	struct stat st;
	void *data = &data;
	struct iop_dirent *ents = (void *)&ents;

	tmpdir_make(&t);
	ck_assert_int_eq(await_ok(iop_openat(pool, t.fd, "", O_RDONLY, 0,
					     NULL, NULL)), -ENOENT);
	ck_assert_int_eq(await_ok(iop_openat(pool, t.fd, "",
					     O_CREAT | O_WRONLY, 0600, NULL,
					     NULL)), -ENOENT);
	ck_assert_int_eq(await_ok(iop_statat(pool, t.fd, "", &st, 0, NULL,
					     NULL)), -ENOENT);
	ck_assert_int_eq(await_ok(iop_readfile(pool, t.fd, "", &data, NULL,
					       NULL)), -ENOENT);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(await_ok(iop_listdir(pool, t.fd, "", 0, &ents, NULL,
					      NULL)), -ENOENT);
	ck_assert_ptr_null(ents);
	ck_assert_int_eq(await_ok(iop_mkdirat(pool, t.fd, "", 0700, NULL,
					      NULL)), -ENOENT);
	ck_assert_int_eq(await_ok(iop_unlinkat(pool, t.fd, "", 0, NULL,
					       NULL)), -ENOENT);
	ck_assert_int_eq(await_ok(iop_renameat(pool, t.fd, "", t.fd, "b", 0,
					       NULL, NULL)), -ENOENT);
	iop_pool_destroy(pool);
	tmpdir_remove(&t, NULL);	/* fails if anything was created */
}
END_TEST

/* A path component longer than NAME_MAX: -ENAMETOOLONG. */
START_TEST(test_path_name_too_long)
{
	iop_pool *pool = pool_new(1);
	char *name = long_string(NAME_MAX + 1, 'n');
	struct stat st;

	ck_assert_int_eq(await_ok(iop_openat(pool, AT_FDCWD, name, O_RDONLY,
					     0, NULL, NULL)), -ENAMETOOLONG);
	ck_assert_int_eq(await_ok(iop_statat(pool, AT_FDCWD, name, &st, 0,
					     NULL, NULL)), -ENAMETOOLONG);
	iop_pool_destroy(pool);
	free(name);
}
END_TEST

/*
 * A path not NUL-terminated within PATH_MAX: PATH_MAX + 10 bytes that are
 * not NUL, then the NUL.  The pool copies the whole string and the kernel
 * answers -ENAMETOOLONG for every path op; nothing is created.
 */
START_TEST(test_path_beyond_path_max)
{
	iop_pool *pool = pool_new(2);
	char *path = long_string(PATH_MAX + 10, 'p');
	struct stat st;
	void *data = &data;
	struct iop_dirent *ents = (void *)&ents;

	ck_assert_int_eq(await_ok(iop_openat(pool, AT_FDCWD, path, O_RDONLY,
					     0, NULL, NULL)), -ENAMETOOLONG);
	ck_assert_int_eq(await_ok(iop_openat(pool, AT_FDCWD, path,
					     O_CREAT | O_WRONLY, 0600, NULL,
					     NULL)), -ENAMETOOLONG);
	ck_assert_int_eq(await_ok(iop_statat(pool, AT_FDCWD, path, &st, 0,
					     NULL, NULL)), -ENAMETOOLONG);
	ck_assert_int_eq(await_ok(iop_readfile(pool, AT_FDCWD, path, &data,
					       NULL, NULL)), -ENAMETOOLONG);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(await_ok(iop_listdir(pool, AT_FDCWD, path, 0, &ents,
					      NULL, NULL)), -ENAMETOOLONG);
	ck_assert_ptr_null(ents);
	ck_assert_int_eq(await_ok(iop_mkdirat(pool, AT_FDCWD, path, 0700,
					      NULL, NULL)), -ENAMETOOLONG);
	ck_assert_int_eq(await_ok(iop_unlinkat(pool, AT_FDCWD, path, 0, NULL,
					       NULL)), -ENAMETOOLONG);
	ck_assert_int_eq(await_ok(iop_renameat(pool, AT_FDCWD, path,
					       AT_FDCWD, "x", 0, NULL, NULL)),
			 -ENAMETOOLONG);
	iop_pool_destroy(pool);
	free(path);
}
END_TEST

/*
 * The path is copied at submit: the caller may scribble over (and free)
 * its string at once, even while the job is still queued.
 */
START_TEST(test_path_freed_after_submit)
{
	struct blocker b;
	iop_pool *pool = pool_with_blocker(&b);
	char *path = strdup("/");
	struct stat st;
	iop_job *job;

	ck_assert_ptr_nonnull(path);
	job = iop_statat(pool, AT_FDCWD, path, &st, 0, NULL, NULL);
	ck_assert_ptr_nonnull(job);
	path[0] = 'x';
	free(path);
	blocker_release(pool, &b);
	ck_assert_int_eq(iop_await(job), 0);
	ck_assert(S_ISDIR(st.st_mode));
	iop_pool_destroy(pool);
	blocker_destroy(&b);
}
END_TEST

/* Wrong kinds of file: readfile of a directory -EISDIR, listdir of a
 * file -ENOTDIR, both leaving their result pointer NULL. */
START_TEST(test_path_wrong_type)
{
	iop_pool *pool = pool_new(1);
	struct tmpdir t;
	const char *const names[] = { "f", NULL };
	void *data = &data;
	struct iop_dirent *ents = (void *)&ents;
	int fd;

	tmpdir_make(&t);
	fd = openat(t.fd, "f", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(await_ok(iop_readfile(pool, t.fd, ".", &data, NULL,
					       NULL)), -EISDIR);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(await_ok(iop_listdir(pool, t.fd, "f", 0, &ents,
					      NULL, NULL)), -ENOTDIR);
	ck_assert_ptr_null(ents);
	iop_pool_destroy(pool);
	tmpdir_remove(&t, names);
}
END_TEST

/* ==== Options and limits. ==== */

/* A pool that must be refused with EINVAL. */
static void assert_pool_einval(const struct iop_options *o, const char *what)
{
	iop_pool *pool;

	errno = 0;
	pool = iop_pool_new(o);
	ck_assert_msg(pool == NULL && errno == EINVAL,
		      "%s: pool %p, errno %d (%s)", what, (void *)pool, errno,
		      strerror(errno));
}

/* threads = 1,000,000 (or IOP_THREADS_MAX + 1): EINVAL. */
START_TEST(test_options_threads_million)
{
	struct iop_options o = { .threads = 1000000 };

	assert_pool_einval(&o, "threads 1000000");
	o.threads = IOP_THREADS_MAX + 1;
	assert_pool_einval(&o, "threads IOP_THREADS_MAX + 1");
	o.threads = UINT32_MAX;
	assert_pool_einval(&o, "threads UINT32_MAX");
	o.threads = 0;
	o.min_threads = 1000000;
	assert_pool_einval(&o, "min_threads 1000000");
}
END_TEST

/* min_threads above threads (or above the default 4): EINVAL. */
START_TEST(test_options_min_above_max)
{
	struct iop_options o = { .threads = 2, .min_threads = 3 };

	assert_pool_einval(&o, "min 3 > threads 2");
	o.threads = 0;
	o.min_threads = 5;
	assert_pool_einval(&o, "min 5 > default 4");
}
END_TEST

/* Stack sizes outside 16 KiB .. 1 GiB: EINVAL. */
START_TEST(test_options_stack_size)
{
	struct iop_options o = { .stack_size = 1 };

	assert_pool_einval(&o, "stack 1 byte");
	o.stack_size = 16 * 1024 - 1;
	assert_pool_einval(&o, "stack 16 KiB - 1");
	o.stack_size = ((size_t)1 << 30) + 1;
	assert_pool_einval(&o, "stack 1 GiB + 1");
	o.stack_size = SIZE_MAX;
	assert_pool_einval(&o, "stack SIZE_MAX");
}
END_TEST

/*
 * An unknown overflow policy or flag, a non-zero reserved word, or
 * IOP_POOL_INLINE with threads: EINVAL.
 */
START_TEST(test_options_unknown)
{
	struct iop_options o = { .overflow = 3 };

	assert_pool_einval(&o, "overflow 3");
	o.overflow = -1;
	assert_pool_einval(&o, "overflow -1");
	o.overflow = 0;
	o.flags = 0x80000000u;
	assert_pool_einval(&o, "flags 0x80000000");
	o.flags = 0;
	o.reserved[4] = 1;
	assert_pool_einval(&o, "reserved[4] 1");
	o.reserved[4] = 0;
	o.flags = IOP_POOL_INLINE;
	o.threads = 2;
	assert_pool_einval(&o, "IOP_POOL_INLINE with threads 2");
	o.threads = 0;
	o.min_threads = 1;
	assert_pool_einval(&o, "IOP_POOL_INLINE with min_threads 1");
}
END_TEST

/* iop_pool_set_threads() out of range: -EINVAL, and the pool still runs. */
START_TEST(test_set_threads_bad)
{
	iop_pool *pool = pool_new(2);
	struct iop_options o = { .flags = IOP_POOL_INLINE };
	iop_pool *inl;

	ck_assert_int_eq(iop_pool_set_threads(pool, 5, 2), -EINVAL);
	ck_assert_int_eq(iop_pool_set_threads(pool, 0, 0), -EINVAL);
	ck_assert_int_eq(iop_pool_set_threads(pool, 0, 1000000), -EINVAL);
	ck_assert_int_eq(iop_pool_set_threads(pool, 0, IOP_THREADS_MAX + 1),
			 -EINVAL);
	ck_assert_int_eq(await_ok(iop_call(pool, work_return_ctx,
					   (void *)(intptr_t)3, NULL, NULL)),
			 3);
	iop_pool_destroy(pool);

	inl = pool_new_opts(&o);
	ck_assert_int_eq(iop_pool_set_threads(inl, 0, 1), -EINVAL);
	iop_pool_destroy(inl);
}
END_TEST

/* Lanes with cap 0: EINVAL. */
START_TEST(test_lane_cap_zero)
{
	iop_pool *pool = pool_new(1);
	iop_lane *lane;

	errno = 0;
	ck_assert_ptr_null(iop_lane_new(pool, "zero", 0));
	ck_assert_int_eq(errno, EINVAL);
	lane = iop_lane_new(pool, "one", 1);
	ck_assert_ptr_nonnull(lane);
	ck_assert_int_eq(iop_lane_set_cap(lane, 0), -EINVAL);
	iop_pool_destroy(pool);
}
END_TEST

/* Priorities outside IOP_PRIO_MIN..IOP_PRIO_MAX: -EINVAL. */
START_TEST(test_priority_out_of_range)
{
	iop_pool *pool = pool_new(1);
	iop_job *job;

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	job = iop_call(pool, work_return_ctx, (void *)(intptr_t)1, NULL,
		       NULL);
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_job_set_priority(job, IOP_PRIO_MAX + 1),
			 -EINVAL);
	ck_assert_int_eq(iop_job_set_priority(job, IOP_PRIO_MIN - 1),
			 -EINVAL);
	ck_assert_int_eq(iop_job_set_priority(job, INT_MIN), -EINVAL);
	batch_end_expect(pool, 1, 0);
	ck_assert_int_eq(iop_await(job), 1);
	iop_pool_destroy(pool);
}
END_TEST

/* ==== Timeouts. ==== */

/* iop_wait() with a timeout below -1: -EINVAL at once, no callback. */
START_TEST(test_wait_timeout_below_minus_one)
{
	iop_pool *pool = pool_new(1);
	struct done_rec d;
	int64_t t0;

	done_rec_init(&d);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       done_record, &d));
	t0 = now_ns();
	ck_assert_int_eq(iop_wait(pool, -2), -EINVAL);
	ck_assert_int_eq(iop_wait(pool, INT_MIN), -EINVAL);
	ck_assert_int_lt(now_ns() - t0, (int64_t)TEST_WAIT_MS * 1000000);
	ck_assert_int_eq(load_int(&d.calls), 0);
	drain_until(pool, &d.calls, 1);
	iop_pool_destroy(pool);
}
END_TEST

/* iop_await_timeout() below -1: -EINVAL, the job is kept. */
START_TEST(test_await_timeout_below_minus_one)
{
	iop_pool *pool = pool_new(1);
	iop_job *job = iop_call(pool, work_return_ctx, (void *)(intptr_t)5,
				NULL, NULL);
	ssize_t r = 77;

	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_await_timeout(job, -2, &r), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(job, INT_MIN, &r), -EINVAL);
	ck_assert_int_eq(r, 77);
	ck_assert_int_eq(iop_await_timeout(job, -1, &r), 0);
	ck_assert_int_eq(r, 5);
	iop_pool_destroy(pool);
}
END_TEST

/* A negative deadline: -EINVAL; the job runs as if none was asked. */
START_TEST(test_deadline_negative)
{
	iop_pool *pool = pool_new(1);
	iop_job *job;

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	job = iop_call(pool, work_return_ctx, (void *)(intptr_t)8, NULL,
		       NULL);
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_job_set_deadline(job, -1), -EINVAL);
	ck_assert_int_eq(iop_job_set_deadline(job, INT_MIN), -EINVAL);
	batch_end_expect(pool, 1, 0);
	ck_assert_int_eq(iop_await(job), 8);
	iop_pool_destroy(pool);
}
END_TEST

/* ==== Cancels. ==== */

/* Cancel twice: 0, then -EALREADY; one callback, with -ECANCELED. */
START_TEST(test_cancel_twice)
{
	struct blocker b;
	iop_pool *pool = pool_with_blocker(&b);
	struct done_rec d;
	iop_job *job;

	done_rec_init(&d);
	job = iop_call(pool, work_return_ctx, (void *)(intptr_t)1,
		       done_record, &d);
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_cancel(job), 0);
	ck_assert_int_eq(iop_cancel(job), -EALREADY);
	ck_assert_int_eq(iop_job_state(job), IOP_DONE);
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_long(&d.result), -ECANCELED);
	blocker_release(pool, &b);
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(load_int(&d.calls), 1);
	iop_pool_destroy(pool);
	blocker_destroy(&b);
}
END_TEST

/* Cancel after the job ended, before its callback: -EALREADY, the
 * result stands. */
START_TEST(test_cancel_after_done)
{
	iop_pool *pool = pool_new(1);
	struct done_rec d;
	iop_job *job;

	done_rec_init(&d);
	job = iop_call(pool, work_fail, NULL, done_record, &d);
	ck_assert_ptr_nonnull(job);
	ck_assert(job_state_reached(job, IOP_DONE, TEST_WAIT_MS));
	ck_assert_int_eq(iop_cancel(job), -EALREADY);
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_long(&d.result), -EIO);
	iop_pool_destroy(pool);
}
END_TEST

/* The same for a future not yet awaited. */
START_TEST(test_cancel_future_after_done)
{
	iop_pool *pool = pool_new(1);
	iop_job *job = iop_call(pool, work_return_ctx, (void *)(intptr_t)6,
				NULL, NULL);

	ck_assert_ptr_nonnull(job);
	ck_assert(job_state_reached(job, IOP_DONE, TEST_WAIT_MS));
	ck_assert_int_eq(iop_cancel(job), -EALREADY);
	ck_assert_int_eq(iop_cancel(job), -EALREADY);
	ck_assert_int_eq(iop_await(job), 6);
	iop_pool_destroy(pool);
}
END_TEST

/* ==== Calls from the wrong place. ==== */

/* Awaiting a callback job: -EINVAL; its callback still runs, once. */
START_TEST(test_await_callback_job)
{
	struct blocker b;
	iop_pool *pool = pool_with_blocker(&b);
	struct done_rec d;
	ssize_t r = 55;
	iop_job *job;

	done_rec_init(&d);
	job = iop_call(pool, work_return_ctx, (void *)(intptr_t)4,
		       done_record, &d);
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_await(job), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(job, 0, &r), -EINVAL);
	ck_assert_int_eq(r, 55);
	blocker_release(pool, &b);
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_long(&d.result), 4);
	iop_pool_destroy(pool);
	blocker_destroy(&b);
}
END_TEST

/* Awaiting a future held in this thread's own open batch: -EDEADLK. */
START_TEST(test_await_own_held_job)
{
	iop_pool *pool = pool_new(1);
	ssize_t r;
	iop_job *job;

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	job = iop_call(pool, work_return_ctx, (void *)(intptr_t)2, NULL,
		       NULL);
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_await(job), -EDEADLK);
	ck_assert_int_eq(iop_await_timeout(job, 0, &r), -EDEADLK);
	batch_end_expect(pool, 1, 0);
	ck_assert_int_eq(iop_await(job), 2);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * What a callback saw when it called back into its own pool.  Filled on
 * the polling thread (the test's), so plain fields do.
 */
struct reentry {
	iop_pool *pool;
	int calls;
	int wait0, wait_inf, wait_bad, poll, budget;
	int destroy_errno;
	iop_job *resubmit;
};

static void done_reenter_wait(iop_job *job, ssize_t result, void *arg)
{
	struct reentry *re = arg;

	(void)job;
	(void)result;
	re->calls++;
	re->wait0 = iop_wait(re->pool, 0);
	re->wait_inf = iop_wait(re->pool, -1);
	re->wait_bad = iop_wait(re->pool, -2);
	re->poll = iop_poll(re->pool);
	re->budget = iop_poll_budget(re->pool, 1, 0);
}

/* iop_wait()/iop_poll() inside a callback: -EDEADLK, never a hang. */
START_TEST(test_wait_inside_callback)
{
	iop_pool *pool = pool_new(1);
	struct reentry re = { .pool = pool };

	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       done_reenter_wait, &re));
	ck_assert_int_eq(iop_wait(pool, TEST_WAIT_MS), 1);
	ck_assert_int_eq(re.calls, 1);
	ck_assert_int_eq(re.wait0, -EDEADLK);
	ck_assert_int_eq(re.wait_inf, -EDEADLK);
	/* -EINVAL or -EDEADLK: both are documented for that call. */
	ck_assert(re.wait_bad == -EDEADLK || re.wait_bad == -EINVAL);
	ck_assert_int_eq(re.poll, -EDEADLK);
	ck_assert_int_eq(re.budget, -EDEADLK);
	iop_pool_destroy(pool);
}
END_TEST

static void done_reenter_destroy(iop_job *job, ssize_t result, void *arg)
{
	struct reentry *re = arg;

	(void)job;
	(void)result;
	re->calls++;
	errno = 0;
	iop_pool_destroy(re->pool);
	re->destroy_errno = errno;
	/* The pool must be untouched: a submit still works. */
	re->resubmit = iop_call(re->pool, work_return_ctx,
				(void *)(intptr_t)11, NULL, NULL);
}

/* iop_pool_destroy() inside a callback: errno EDEADLK, pool untouched. */
START_TEST(test_destroy_inside_callback)
{
	iop_pool *pool = pool_new(1);
	struct reentry re = { .pool = pool };

	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       done_reenter_destroy, &re));
	ck_assert_int_eq(iop_wait(pool, TEST_WAIT_MS), 1);
	ck_assert_int_eq(re.calls, 1);
	ck_assert_int_eq(re.destroy_errno, EDEADLK);
	ck_assert_ptr_nonnull(re.resubmit);
	ck_assert_int_eq(iop_await(re.resubmit), 11);
	ck_assert_int_ge(iop_pool_fd(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* Destroy twice, setting the pointer to NULL after the first: fine. */
START_TEST(test_destroy_twice_null)
{
	iop_pool *pool = pool_new(2);

	ck_assert_int_eq(await_ok(iop_call(pool, work_return_ctx, NULL, NULL,
					   NULL)), 0);
	iop_pool_destroy(pool);
	pool = NULL;
	iop_pool_destroy(pool);
}
END_TEST

/* Ending a batch that was never begun (or ending it twice): -EINVAL. */
START_TEST(test_batch_end_unbalanced)
{
	iop_pool *pool = pool_new(1);
	iop_pool *other = pool_new(1);

	ck_assert_int_eq(iop_batch_end(pool), -EINVAL);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_int_eq(iop_batch_begin(other), -EBUSY);
	ck_assert_int_eq(iop_batch_end(other), -EINVAL);
	ck_assert_int_eq(iop_batch_end(pool), 0);
	ck_assert_int_eq(iop_batch_end(pool), -EINVAL);
	iop_pool_destroy(other);
	iop_pool_destroy(pool);
}
END_TEST

/* iop_link() of a job to itself, or of a job not held: -EINVAL/-EBUSY. */
START_TEST(test_link_bad)
{
	iop_pool *pool = pool_new(1);
	iop_job *a, *b, *c;

	c = iop_call(pool, work_return_ctx, NULL, NULL, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	a = iop_call(pool, work_return_ctx, NULL, NULL, NULL);
	b = iop_call(pool, work_return_ctx, NULL, NULL, NULL);
	ck_assert(a && b);
	ck_assert_int_eq(iop_link(a, a), -EINVAL);
	ck_assert_int_eq(iop_link(a, NULL), -EINVAL);
	ck_assert_int_eq(iop_link(NULL, b), -EINVAL);
	ck_assert_int_eq(iop_link(c, b), -EBUSY);
	ck_assert_int_eq(iop_link(a, b), 0);
	ck_assert_int_eq(iop_link(b, a), -EINVAL);	/* a cycle */
	batch_end_expect(pool, 2, 0);
	ck_assert_int_eq(iop_await(a), 0);
	ck_assert_int_eq(iop_await(b), 0);
	ck_assert_int_eq(iop_await(c), 0);
	iop_pool_destroy(pool);
}
END_TEST

static void group_done(iop_group *g, const struct iop_group_result *r,
		       void *arg)
{
	(void)g;
	(void)r;
	(*(int *)arg)++;
}

/* Sealing a group twice: -EINVAL; its callback runs once. */
START_TEST(test_group_seal_twice)
{
	iop_pool *pool = pool_new(1);
	int calls = 0;
	iop_group *g = iop_group_new(pool, group_done, &calls);

	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(iop_group_seal(g), 0);
	ck_assert_int_eq(iop_group_seal(g), -EINVAL);
	for (int i = 0; i < 100 && calls == 0; i++)
		ck_assert_int_ge(iop_wait(pool, TEST_WAIT_MS / 100), 0);
	ck_assert_int_eq(calls, 1);
	iop_pool_destroy(pool);
	ck_assert_int_eq(calls, 1);
}
END_TEST

/* ==== Forked children: aborts, and a pool used after fork(). ==== */

/*
 * Fork; the child runs @fn(@arg) with its stderr on a pipe and _exit()s
 * with fn's value.  Waits up to CHILD_WAIT_MS.  Returns the wait status
 * (or -1 if the child hung: it is killed), and what the child wrote to
 * stderr in @err (NUL-terminated, cut at @size - 1).
 */
static int run_child(int (*fn)(void *), void *arg, char *err, size_t size)
{
	int fds[2], st;
	size_t have = 0;
	int64_t end;
	pid_t pid;

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(fds[1], 2);
		_exit(fn(arg) & 0x7f);
	}
	close(fds[1]);
	end = now_ns() + (int64_t)CHILD_WAIT_MS * 1000000;
	for (;;) {
		struct pollfd p = { .fd = fds[0], .events = POLLIN };
		int left = (int)((end - now_ns()) / 1000000);
		ssize_t n;
		char sink[256];

		if (left <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			close(fds[0]);
			err[have] = '\0';
			return -1;
		}
		if (poll(&p, 1, left) <= 0)
			continue;
		if (have < size - 1)
			n = read(fds[0], err + have, size - 1 - have);
		else
			n = read(fds[0], sink, sizeof(sink));
		if (n == 0)
			break;
		if (n > 0 && have < size - 1)
			have += (size_t)n;
	}
	close(fds[0]);
	err[have] = '\0';
	while (waitpid(pid, &st, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	return st;
}

/* The child must have died of SIGABRT after printing @msg. */
static void assert_aborted(int st, const char *err, const char *msg)
{
	ck_assert_msg(st != -1, "the child hung; its stderr: %s", err);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
		      "the child did not abort (status %#x); stderr: %s", st,
		      err);
	ck_assert_msg(strstr(err, msg) != NULL,
		      "stderr lacks \"%s\": %s", msg, err);
}

/*
 * The aborting children use an IOP_POOL_INLINE pool: the checks are the
 * same as with workers, and a child without threads leaves no thread
 * memory for valgrind to report when it dies, and runs under TSan too.
 */
static iop_pool *inline_pool(void)
{
	struct iop_options o = { .flags = IOP_POOL_INLINE };

	return iop_pool_new(&o);
}

static int child_await_twice(void *arg)
{
	iop_pool *pool = inline_pool();
	iop_job *job;

	(void)arg;
	if (!pool)
		return 1;
	job = iop_call(pool, work_return_ctx, (void *)(intptr_t)3, NULL,
		       NULL);
	if (!job || iop_await(job) != 3)
		return 2;
	iop_await(job);		/* aborts */
	return 3;
}

/* Awaiting a future twice: abort with a message on stderr. */
START_TEST(test_await_twice_aborts)
{
	char err[4096];
	int st = run_child(child_await_twice, NULL, err, sizeof(err));

	assert_aborted(st, err,
		       "iopool: iop_await: the job was already released");
}
END_TEST

static void done_keep_job(iop_job *job, ssize_t result, void *arg)
{
	(void)result;
	*(iop_job **)arg = job;
}

static int child_cancel_released(void *arg)
{
	iop_pool *pool = inline_pool();
	iop_job *seen = NULL;

	(void)arg;
	if (!pool)
		return 1;
	if (!iop_call(pool, work_return_ctx, NULL, done_keep_job, &seen))
		return 2;
	while (!seen)
		if (iop_wait(pool, CHILD_WAIT_MS) < 0)
			return 3;
	iop_cancel(seen);	/* released when its callback returned */
	return 4;
}

/* Cancelling a job whose callback has run: abort with a message. */
START_TEST(test_cancel_released_aborts)
{
	char err[4096];
	int st = run_child(child_cancel_released, NULL, err, sizeof(err));

	assert_aborted(st, err,
		       "iopool: iop_cancel: the job was already released");
}
END_TEST

/* What the parent's pool looked like to the forked child. */
struct forked {
	iop_pool *pool;
	iop_job *done_future;	/* ended in the parent before the fork */
	int fd;
};

/* In the child: report a failed check on stderr (the parent shows it). */
#define CHILD_CHECK(cond)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "child, line %d: %s failed\n",	\
				__LINE__, #cond);			\
			return 1;					\
		}							\
	} while (0)

static int child_use_parent_pool(void *arg)
{
	struct forked *f = arg;
	char buf[8];
	ssize_t r;
	iop_pool *fresh;
	iop_job *job;

	errno = 0;
	CHILD_CHECK(iop_read(f->pool, f->fd, buf, 8, 0, NULL, NULL) == NULL);
	CHILD_CHECK(errno == EOWNERDEAD);
	errno = 0;
	CHILD_CHECK(iop_call(f->pool, work_return_ctx, NULL, NULL, NULL) ==
		    NULL);
	CHILD_CHECK(errno == EOWNERDEAD);
	errno = 0;
	CHILD_CHECK(iop_group_new(f->pool, group_done, NULL) == NULL);
	CHILD_CHECK(errno == EOWNERDEAD);
	CHILD_CHECK(iop_poll(f->pool) == -EOWNERDEAD);
	CHILD_CHECK(iop_wait(f->pool, -1) == -EOWNERDEAD);
	CHILD_CHECK(iop_await(f->done_future) == -EOWNERDEAD);
	CHILD_CHECK(iop_await_timeout(f->done_future, 0, &r) == -EOWNERDEAD);
	CHILD_CHECK(iop_cancel(f->done_future) == -EOWNERDEAD);
	CHILD_CHECK(iop_batch_begin(f->pool) == -EOWNERDEAD);
	CHILD_CHECK(iop_pool_set_threads(f->pool, 0, 2) == -EOWNERDEAD);
	CHILD_CHECK(iop_job_state(f->done_future) == IOP_DONE);
	CHILD_CHECK(iop_pool_fd(f->pool) >= 0);
	iop_pool_destroy(f->pool);
	/* A new pool in the child works. */
	fresh = iop_pool_new(NULL);
	CHILD_CHECK(fresh != NULL);
	job = iop_read(fresh, f->fd, buf, 8, 0, NULL, NULL);
	CHILD_CHECK(job != NULL);
	CHILD_CHECK(iop_await(job) == 8);
	CHILD_CHECK(buf[0] == (char)pattern_byte(8, 0));
	iop_pool_destroy(fresh);
	return 0;
}

/*
 * Using a pool in a process forked from its owner: every call refuses
 * with EOWNERDEAD (handles: NULL, errno EOWNERDEAD), destroy only frees
 * the copy; the parent's pool goes on.
 */
START_TEST(test_forked_child_refuses)
{
	struct forked f;
	char err[4096];
	int st;

	f.pool = pool_new(2);
	f.fd = make_pattern_file(64, 8);
	f.done_future = iop_call(f.pool, work_return_ctx,
				 (void *)(intptr_t)12, NULL, NULL);
	ck_assert_ptr_nonnull(f.done_future);
	ck_assert(job_state_reached(f.done_future, IOP_DONE, TEST_WAIT_MS));
	st = run_child(child_use_parent_pool, &f, err, sizeof(err));
	ck_assert_msg(st != -1, "the child hung; stderr: %s", err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the child failed (status %#x); stderr: %s", st, err);
	/* The parent's pool is untouched. */
	ck_assert_int_eq(iop_await(f.done_future), 12);
	ck_assert_int_eq(await_ok(iop_call(f.pool, work_return_ctx,
					   (void *)(intptr_t)13, NULL, NULL)),
			 13);
	iop_pool_destroy(f.pool);
	close(f.fd);
}
END_TEST

static Suite *badinput_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc;

	tc = tcase_new("null");
	tcase_add_test(tc, test_null_pool_submit);
	tcase_add_test(tc, test_null_pool_calls);
	tcase_add_test(tc, test_null_pool_destroy);
	tcase_add_test(tc, test_null_buf_with_len);
	tcase_add_test(tc, test_null_buf_zero_len);
	tcase_add_test(tc, test_null_fn);
	tcase_add_test(tc, test_null_done_or_arg);
	tcase_add_test(tc, test_null_out_pointer);
	tcase_add_test(tc, test_null_path);
	tcase_add_test(tc, test_null_job);
	tcase_add_test(tc, test_null_await_result);
	tcase_add_test(tc, test_null_group_lane);
	tcase_add_test(tc, test_null_stats);
	suite_add_tcase(s, tc);

	tc = tcase_new("range");
	tcase_add_test(tc, test_len_above_ssize_max);
	tcase_add_test(tc, test_negative_offset);
	tcase_add_test(tc, test_offset_current);
	tcase_add_test(tc, test_iovcnt_zero);
	tcase_add_test(tc, test_iovcnt_negative);
	tcase_add_test(tc, test_iovcnt_above_iov_max);
	tcase_add_test(tc, test_iov_null_with_count);
	tcase_add_test(tc, test_iov_total_above_ssize_max);
	tcase_add_test(tc, test_ftruncate_negative);
	tcase_add_test(tc, test_fallocate_bad_range);
	tcase_add_test(tc, test_listdir_unknown_flags);
	suite_add_tcase(s, tc);

	tc = tcase_new("fd");
	tcase_add_test(tc, test_fd_minus_one);
	tcase_add_test(tc, test_fd_closed);
	tcase_add_test(tc, test_fd_directory_read);
	tcase_add_test(tc, test_fd_directory_write);
	tcase_add_test(tc, test_fd_readonly_write);
	tcase_add_test(tc, test_fd_writeonly_read);
	tcase_add_test(tc, test_dirfd_bad);
	suite_add_tcase(s, tc);

	tc = tcase_new("path");
	tcase_add_test(tc, test_path_empty);
	tcase_add_test(tc, test_path_name_too_long);
	tcase_add_test(tc, test_path_beyond_path_max);
	tcase_add_test(tc, test_path_freed_after_submit);
	tcase_add_test(tc, test_path_wrong_type);
	suite_add_tcase(s, tc);

	tc = tcase_new("options");
	tcase_add_test(tc, test_options_threads_million);
	tcase_add_test(tc, test_options_min_above_max);
	tcase_add_test(tc, test_options_stack_size);
	tcase_add_test(tc, test_options_unknown);
	tcase_add_test(tc, test_set_threads_bad);
	tcase_add_test(tc, test_lane_cap_zero);
	tcase_add_test(tc, test_priority_out_of_range);
	suite_add_tcase(s, tc);

	tc = tcase_new("timeouts");
	tcase_add_test(tc, test_wait_timeout_below_minus_one);
	tcase_add_test(tc, test_await_timeout_below_minus_one);
	tcase_add_test(tc, test_deadline_negative);
	suite_add_tcase(s, tc);

	tc = tcase_new("cancel");
	tcase_add_test(tc, test_cancel_twice);
	tcase_add_test(tc, test_cancel_after_done);
	tcase_add_test(tc, test_cancel_future_after_done);
	suite_add_tcase(s, tc);

	tc = tcase_new("misuse");
	tcase_add_test(tc, test_await_callback_job);
	tcase_add_test(tc, test_await_own_held_job);
	tcase_add_test(tc, test_wait_inside_callback);
	tcase_add_test(tc, test_destroy_inside_callback);
	tcase_add_test(tc, test_destroy_twice_null);
	tcase_add_test(tc, test_batch_end_unbalanced);
	tcase_add_test(tc, test_link_bad);
	tcase_add_test(tc, test_group_seal_twice);
	suite_add_tcase(s, tc);

	/* Children without threads: these run under TSan as well. */
	tc = tcase_new("abort");
	tcase_add_test(tc, test_await_twice_aborts);
	tcase_add_test(tc, test_cancel_released_aborts);
	suite_add_tcase(s, tc);

	/* A child of a process with threads starts threads: not under TSan
	 * (CK_EXCLUDE_TAGS=fork). */
	tc = tcase_new("forked");
	tcase_set_tags(tc, "fork");
	tcase_add_test(tc, test_forked_child_refuses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(badinput_suite());
}
