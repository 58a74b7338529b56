/*
 * Suite "read": iop_read() against a pread(2) reference, end of file,
 * pipes with IOP_OFFSET_CURRENT, error results and submit-time EINVAL.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "helpers.h"

#define FILE_SIZE (4u << 20)	/* 4 MiB */
#define SEED 0x1234abcdu
#define SENTINEL 0xa5
#define GUARD 16

/* One read in flight: its request, its buffer and what the callback saw. */
struct slot {
	uint64_t off;
	size_t len;
	unsigned char *buf;	/* len + GUARD bytes */
	atomic_int calls;
	atomic_long result;
};

static void slot_done(iop_job *job, ssize_t result, void *arg)
{
	struct slot *s = arg;

	(void)job;
	atomic_store(&s->result, (long)result);
	atomic_fetch_add(&s->calls, 1);
}

/*
 * Pick an (offset, length) pair: mostly anywhere in the file, and a good
 * share crossing end of file, past it, at exactly it, or of length 0.
 */
static void pick(uint64_t *rng, uint64_t *off, size_t *len)
{
	uint64_t r = rng_next(rng) % 100;

	if (r < 60) {
		*off = rng_next(rng) % FILE_SIZE;
		*len = rng_next(rng) % 65536 + 1;
	} else if (r < 75) {		/* crosses end of file */
		*off = FILE_SIZE - 1 - rng_next(rng) % 65536;
		*len = rng_next(rng) % 131072 + 1;
	} else if (r < 85) {		/* past end of file */
		*off = FILE_SIZE + rng_next(rng) % (1u << 20);
		*len = rng_next(rng) % 65536 + 1;
	} else if (r < 88) {		/* exactly at end of file */
		*off = FILE_SIZE;
		*len = rng_next(rng) % 4096 + 1;
	} else if (r < 93) {		/* length 0 */
		*off = rng_next(rng) % (FILE_SIZE + 4096);
		*len = 0;
	} else {			/* small reads near the start */
		*off = rng_next(rng) % 4096;
		*len = rng_next(rng) % 512 + 1;
	}
}

START_TEST(test_read_matches_pread_random)
{
	enum { TOTAL = 5000, BATCH = 250 };
	iop_pool *pool = pool_new(8);
	int fd = make_pattern_file(FILE_SIZE, SEED);
	struct slot *slots = calloc(BATCH, sizeof(*slots));
	unsigned char *ref = malloc(131072);
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	int crossed = 0, past = 0, bad_calls = 0, bad_result = 0;
	int bad_data = 0, bad_tail = 0;
	char first[200] = "";

	ck_assert_ptr_nonnull(slots);
	ck_assert_ptr_nonnull(ref);
	for (int base = 0; base < TOTAL; base += BATCH) {
		/* Submit a whole batch: BATCH reads in flight at once. */
		for (int i = 0; i < BATCH; i++) {
			struct slot *s = &slots[i];
			iop_job *job;

			pick(&rng, &s->off, &s->len);
			s->buf = malloc(s->len + GUARD);
			ck_assert_ptr_nonnull(s->buf);
			memset(s->buf, SENTINEL, s->len + GUARD);
			atomic_init(&s->calls, 0);
			atomic_init(&s->result, LONG_MIN);
			job = iop_read(pool, fd, s->buf, s->len,
				       (int64_t)s->off, slot_done, s);
			ck_assert_ptr_nonnull(job);
		}
		/* Wait for every callback of the batch. */
		for (;;) {
			int n = 0;

			for (int i = 0; i < BATCH; i++)
				n += load_int(&slots[i].calls) != 0;
			if (n == BATCH)
				break;
			ck_assert_int_gt(iop_wait(pool, TEST_WAIT_MS), 0);
		}
		/* Compare each with pread on the test thread. */
		for (int i = 0; i < BATCH; i++) {
			struct slot *s = &slots[i];
			long got = load_long(&s->result);
			ssize_t want = pread(fd, ref, s->len, (off_t)s->off);

			if (s->off < FILE_SIZE && s->off + s->len > FILE_SIZE)
				crossed++;
			if (s->off > FILE_SIZE)
				past++;
			if (load_int(&s->calls) != 1)
				bad_calls++;
			if (got != (long)want) {
				if (bad_result++ == 0)
					snprintf(first, sizeof(first),
						 "off %llu len %zu: got %ld, "
						 "pread %zd",
						 (unsigned long long)s->off,
						 s->len, got, want);
			} else if (want > 0 &&
				   memcmp(s->buf, ref, (size_t)want) != 0) {
				bad_data++;
			}
			/* Nothing written past what the read returned. */
			for (size_t k = got > 0 ? (size_t)got : 0;
			     k < s->len + GUARD; k++) {
				if (s->buf[k] != SENTINEL) {
					bad_tail++;
					break;
				}
			}
			free(s->buf);
			s->buf = NULL;
		}
	}
	ck_assert_msg(bad_result == 0,
		      "%d results differ from pread; first: %s", bad_result,
		      first);
	ck_assert_int_eq(bad_calls, 0);
	ck_assert_int_eq(bad_data, 0);
	ck_assert_int_eq(bad_tail, 0);
	/* The generator did exercise the end-of-file cases. */
	ck_assert_int_gt(crossed, 100);
	ck_assert_int_gt(past, 100);
	/* Nothing more is due. */
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	free(ref);
	free(slots);
	close(fd);
}
END_TEST

/* Submit one read with a done_rec callback, run it, return its result. */
static ssize_t read_one(iop_pool *pool, int fd, void *buf, size_t len,
			int64_t off)
{
	struct done_rec d;

	done_rec_init(&d);
	ck_assert_ptr_nonnull(iop_read(pool, fd, buf, len, off, done_record,
				       &d));
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_int(&d.off_thread), 0);
	return (ssize_t)load_long(&d.result);
}

/* A callback that submits one more read and notes where it is. */
struct resubmit {
	iop_pool *pool;
	int fd;
	struct slot inner;
	int state;		/* iop_job_state() right after the submit */
};

static void resubmit_done(iop_job *job, ssize_t result, void *arg)
{
	struct resubmit *r = arg;
	iop_job *next;

	(void)job;
	ck_assert_int_eq(result, 4096);
	next = iop_read(r->pool, r->fd, r->inner.buf, 4096, 4096, slot_done,
			&r->inner);
	ck_assert_ptr_nonnull(next);
	r->state = iop_job_state(next);
}

/* Run one resubmitting read, its callback from iop_poll() or iop_wait(). */
static int resubmit_state(iop_pool *pool, int fd, bool wait)
{
	unsigned char first[4096];
	struct resubmit r = { .pool = pool, .fd = fd, .state = -1 };

	r.inner.buf = malloc(4096);
	ck_assert_ptr_nonnull(r.inner.buf);
	atomic_init(&r.inner.calls, 0);
	atomic_init(&r.inner.result, LONG_MIN);
	ck_assert_ptr_nonnull(iop_read(pool, fd, first, sizeof(first), 0,
				       resubmit_done, &r));
	while (r.state == -1)
		ck_assert_int_ge(wait ? iop_wait(pool, -1) : iop_poll(pool), 0);
	while (atomic_load(&r.inner.calls) == 0)
		ck_assert_int_ge(iop_wait(pool, -1), 0);
	ck_assert_int_eq(atomic_load(&r.inner.result), 4096);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(r.inner.buf[i], pattern_byte(SEED, 4096 + i));
	free(r.inner.buf);
	return r.state;
}

/*
 * A read the page cache can serve is done inside the submit when a
 * callback run by iop_poll() submits it; one that a callback run by
 * iop_wait() submits is queued instead, for the waiting thread and the
 * workers to run in batches.  (Where RWF_NOWAIT does not work on the
 * test's file, both are queued.)
 */
START_TEST(test_read_in_wait_callback_is_queued)
{
	iop_pool *pool = pool_new(2);
	int fd = make_pattern_file(1u << 20, SEED);
	bool nowait = false;
#if defined(HAVE_PREADV2) && HAVE_DECL_RWF_NOWAIT
	unsigned char probe[4096];
	struct iovec iov = { probe, sizeof(probe) };

	nowait = preadv2(fd, &iov, 1, 4096, RWF_NOWAIT) == 4096;
#endif
	ck_assert_int_eq(resubmit_state(pool, fd, true), IOP_QUEUED);
	ck_assert_int_eq(resubmit_state(pool, fd, false),
			 nowait ? IOP_DONE : IOP_QUEUED);
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

START_TEST(test_read_eof_returns_zero)
{
	iop_pool *pool = pool_new(0);
	int fd = make_pattern_file(10000, SEED);
	char buf[100];

	memset(buf, SENTINEL, sizeof(buf));
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf), 10000), 0);
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf), 10001), 0);
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf), INT64_MAX / 2),
			 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_int_eq((unsigned char)buf[i], SENTINEL);
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

START_TEST(test_read_short_at_eof_returns_rest)
{
	iop_pool *pool = pool_new(0);
	int fd = make_pattern_file(10000, SEED);
	unsigned char buf[4096];

	memset(buf, SENTINEL, sizeof(buf));
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf), 10000 - 100),
			 100);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(buf[i], pattern_byte(SEED, 9900 + i));
	ck_assert_int_eq(buf[100], SENTINEL);
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf), 9999), 1);
	ck_assert_int_eq(buf[0], pattern_byte(SEED, 9999));
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

START_TEST(test_read_len_zero_returns_zero)
{
	iop_pool *pool = pool_new(0);
	int fd = make_pattern_file(10000, SEED);
	unsigned char buf[1] = { SENTINEL };

	ck_assert_int_eq(read_one(pool, fd, buf, 0, 0), 0);
	ck_assert_int_eq(read_one(pool, fd, buf, 0, 5000), 0);
	ck_assert_int_eq(read_one(pool, fd, buf, 0, 20000), 0);
	/* A NULL buffer is fine when there is nothing to put in it. */
	ck_assert_int_eq(read_one(pool, fd, NULL, 0, 0), 0);
	ck_assert_int_eq(buf[0], SENTINEL);
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

START_TEST(test_read_current_advances_position)
{
	iop_pool *pool = pool_new(0);
	int fd = make_pattern_file(10000, SEED);
	unsigned char buf[1000];

	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf),
				  IOP_OFFSET_CURRENT), 1000);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(buf[i], pattern_byte(SEED, i));
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 1000);

	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf),
				  IOP_OFFSET_CURRENT), 1000);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(buf[i], pattern_byte(SEED, 1000 + i));
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 2000);

	/* An explicit offset is a pread: the position stays. */
	ck_assert_int_eq(read_one(pool, fd, buf, 10, 0), 10);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 2000);

	/* And from a position near the end, the rest, then 0. */
	ck_assert_int_eq(lseek(fd, 9500, SEEK_SET), 9500);
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf),
				  IOP_OFFSET_CURRENT), 500);
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf),
				  IOP_OFFSET_CURRENT), 0);
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

/*
 * The read is submitted before any data exists; the test thread writes
 * the data only afterwards, which it could not do if the submit had
 * blocked in read(2).  Then it polls for the completion.
 */
START_TEST(test_read_pipe_current_does_not_block_submitter)
{
	iop_pool *pool = pool_new(0);
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	for (int round = 0; round < 3; round++) {
		char msg[32], buf[100];
		struct done_rec d;
		int len = snprintf(msg, sizeof(msg), "hello %d", round);

		done_rec_init(&d);
		memset(buf, 0, sizeof(buf));
		ck_assert_ptr_nonnull(iop_read(pool, p[0], buf, sizeof(buf),
					       IOP_OFFSET_CURRENT, done_record,
					       &d));
		/* Still running: the worker waits in read(2). */
		ck_assert_int_eq(iop_poll(pool), 0);
		ck_assert_int_eq(load_int(&d.calls), 0);
		ck_assert_int_eq(write(p[1], msg, (size_t)len), len);
		drain_until(pool, &d.calls, 1);
		ck_assert_int_eq(load_long(&d.result), len);
		ck_assert_int_eq(load_int(&d.off_thread), 0);
		ck_assert_str_eq(buf, msg);
	}
	/* End of file on the pipe is a 0 result. */
	{
		char buf[10];

		close(p[1]);
		ck_assert_int_eq(read_one(pool, p[0], buf, sizeof(buf),
					  IOP_OFFSET_CURRENT), 0);
	}
	iop_pool_destroy(pool);
	close(p[0]);
}
END_TEST

START_TEST(test_read_pipe_with_offset_is_espipe)
{
	iop_pool *pool = pool_new(0);
	int p[2];
	char buf[10];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(read_one(pool, p[0], buf, sizeof(buf), 0), -ESPIPE);
	iop_pool_destroy(pool);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_read_bad_fd_is_ebadf)
{
	iop_pool *pool = pool_new(0);
	char buf[10];

	ck_assert_int_eq(read_one(pool, -1, buf, sizeof(buf), 0), -EBADF);
	ck_assert_int_eq(read_one(pool, -1, buf, sizeof(buf),
				  IOP_OFFSET_CURRENT), -EBADF);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_read_closed_fd_is_ebadf)
{
	iop_pool *pool = pool_new(0);
	char buf[10];
	int fd = open("/dev/null", O_RDONLY);

	/* The pool exists already, so nothing reuses the number meanwhile. */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf), 0), -EBADF);
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf),
				  IOP_OFFSET_CURRENT), -EBADF);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_read_directory_is_eisdir)
{
	iop_pool *pool = pool_new(0);
	char buf[10];
	int fd = open(".", O_RDONLY | O_DIRECTORY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf), 0), -EISDIR);
	ck_assert_int_eq(read_one(pool, fd, buf, sizeof(buf),
				  IOP_OFFSET_CURRENT), -EISDIR);
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

/* Expect a submit to have failed with EINVAL. */
#define ck_assert_einval(call)                                             \
	do {                                                               \
		iop_job *job_;                                             \
		errno = 0;                                                 \
		job_ = (call);                                             \
		ck_assert_msg(job_ == NULL, "%s returned a job", #call);   \
		ck_assert_msg(errno == EINVAL, "%s: errno %d, not EINVAL", \
			      #call, errno);                               \
	} while (0)

START_TEST(test_read_einval_len_over_ssize_max)
{
	iop_pool *pool = pool_new(0);
	struct done_rec d;
	char buf[10];

	done_rec_init(&d);
	ck_assert_einval(iop_read(pool, 0, buf, (size_t)SSIZE_MAX + 1, 0,
				  done_record, &d));
	ck_assert_einval(iop_read(pool, 0, buf, SIZE_MAX, 0, done_record, &d));
	ck_assert_einval(iop_read(pool, 0, buf, SIZE_MAX, 0, NULL, NULL));
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

START_TEST(test_read_einval_null_buf)
{
	iop_pool *pool = pool_new(0);
	struct done_rec d;

	done_rec_init(&d);
	ck_assert_einval(iop_read(pool, 0, NULL, 1, 0, done_record, &d));
	ck_assert_einval(iop_read(pool, 0, NULL, 4096, IOP_OFFSET_CURRENT,
				  done_record, &d));
	ck_assert_einval(iop_read(pool, 0, NULL, 1, 0, NULL, NULL));
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

START_TEST(test_read_einval_negative_offset)
{
	iop_pool *pool = pool_new(0);
	struct done_rec d;
	char buf[10];

	done_rec_init(&d);
	ck_assert_einval(iop_read(pool, 0, buf, sizeof(buf), -2, done_record,
				  &d));
	ck_assert_einval(iop_read(pool, 0, buf, sizeof(buf), INT64_MIN,
				  done_record, &d));
	ck_assert_einval(iop_read(pool, 0, buf, sizeof(buf), -4096, NULL,
				  NULL));
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

START_TEST(test_read_einval_null_pool)
{
	struct done_rec d;
	char buf[10];

	done_rec_init(&d);
	ck_assert_einval(iop_read(NULL, 0, buf, sizeof(buf), 0, done_record,
				  &d));
	ck_assert_einval(iop_read(NULL, 0, buf, sizeof(buf), 0, NULL, NULL));
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

/*
 * After failed submits no callback runs: not at the next poll, not
 * alongside a later good job, not at destroy.
 */
START_TEST(test_read_failed_submit_runs_no_callback)
{
	iop_pool *pool = pool_new(2);
	struct done_rec bad, good;
	char buf[10];
	int fd = make_pattern_file(100, SEED);

	done_rec_init(&bad);
	done_rec_init(&good);
	for (int i = 0; i < 100; i++) {
		ck_assert_ptr_null(iop_read(pool, fd, buf,
					    (size_t)SSIZE_MAX + 1, 0,
					    done_record, &bad));
		ck_assert_ptr_null(iop_read(pool, fd, NULL, 5, 0, done_record,
					    &bad));
		ck_assert_ptr_null(iop_read(pool, fd, buf, 5, -7, done_record,
					    &bad));
	}
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(iop_wait(pool, 0), 0);
	/* A good job afterwards completes alone. */
	ck_assert_ptr_nonnull(iop_read(pool, fd, buf, 5, 0, done_record,
				       &good));
	drain_until(pool, &good.calls, 1);
	ck_assert_int_eq(load_long(&good.result), 5);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&bad.calls), 0);
	ck_assert_int_eq(load_int(&good.calls), 1);
	close(fd);
}
END_TEST

static Suite *read_suite(void)
{
	Suite *s = suite_create("read");
	TCase *tc;

	tc = tcase_new("pread");
	tcase_add_test(tc, test_read_matches_pread_random);
	tcase_add_test(tc, test_read_eof_returns_zero);
	tcase_add_test(tc, test_read_in_wait_callback_is_queued);
	tcase_add_test(tc, test_read_short_at_eof_returns_rest);
	tcase_add_test(tc, test_read_len_zero_returns_zero);
	tcase_add_test(tc, test_read_current_advances_position);
	suite_add_tcase(s, tc);

	tc = tcase_new("pipe");
	tcase_add_test(tc, test_read_pipe_current_does_not_block_submitter);
	tcase_add_test(tc, test_read_pipe_with_offset_is_espipe);
	suite_add_tcase(s, tc);

	tc = tcase_new("errors");
	tcase_add_test(tc, test_read_bad_fd_is_ebadf);
	tcase_add_test(tc, test_read_closed_fd_is_ebadf);
	tcase_add_test(tc, test_read_directory_is_eisdir);
	suite_add_tcase(s, tc);

	tc = tcase_new("einval");
	tcase_add_test(tc, test_read_einval_len_over_ssize_max);
	tcase_add_test(tc, test_read_einval_null_buf);
	tcase_add_test(tc, test_read_einval_negative_offset);
	tcase_add_test(tc, test_read_einval_null_pool);
	tcase_add_test(tc, test_read_failed_submit_runs_no_callback);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(read_suite());
}
