/*
 * Suite "read": iop_read() against a pread(2) reference, end of file,
 * pipes with IOP_OFFSET_CURRENT, error results and submit-time EINVAL,
 * and O_DIRECT reads (through Linux AIO where the build has it).
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
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
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

/* A callback that submits one more read, @inner, and notes where it is. */
struct resubmit {
	iop_pool *pool;
	int fd;
	struct slot *inner;
	int state;		/* iop_job_state() right after the submit */
};

static void resubmit_done(iop_job *job, ssize_t result, void *arg)
{
	struct resubmit *r = arg;
	iop_job *next;

	(void)job;
	ck_assert_int_eq(result, 4096);
	next = iop_read(r->pool, r->fd, r->inner->buf, r->inner->len,
			(int64_t)r->inner->off, slot_done, r->inner);
	ck_assert_ptr_nonnull(next);
	r->state = iop_job_state(next);
}

/*
 * Read block 0 of @fd with a callback, run by iop_poll() or iop_wait(),
 * that submits the read @inner; wait for @inner's callback.  Returns
 * @inner's state right after its submit: IOP_DONE if it was done inside
 * the submit, IOP_QUEUED if it was queued (handed over when the round of
 * callbacks ends, so that no worker can have run it yet).
 */
static int resubmit_read(iop_pool *pool, int fd, struct slot *inner,
			 bool wait)
{
	unsigned char first[4096];
	struct resubmit r = { .pool = pool, .fd = fd, .inner = inner,
			      .state = -1 };

	ck_assert_ptr_nonnull(iop_read(pool, fd, first, sizeof(first), 0,
				       resubmit_done, &r));
	while (r.state == -1)
		ck_assert_int_ge(wait ? iop_wait(pool, -1) : iop_poll(pool), 0);
	while (atomic_load(&inner->calls) == 0)
		ck_assert_int_ge(iop_wait(pool, -1), 0);
	return r.state;
}

/* resubmit_read() of block 1, checked. */
static int resubmit_state(iop_pool *pool, int fd, bool wait)
{
	struct slot inner = { .off = 4096, .len = 4096 };
	int state;

	inner.buf = malloc(4096);
	ck_assert_ptr_nonnull(inner.buf);
	atomic_init(&inner.calls, 0);
	atomic_init(&inner.result, LONG_MIN);
	state = resubmit_read(pool, fd, &inner, wait);
	ck_assert_int_eq(atomic_load(&inner.result), 4096);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(inner.buf[i], pattern_byte(SEED, 4096 + i));
	free(inner.buf);
	return state;
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

/* ---- O_DIRECT reads (into the kernel where Linux AIO is built in) ---- */

#define DIRECT_SIZE ((1u << 20) + 1000)	/* EOF inside the last block */
#define DIRECT_BLOCKS (DIRECT_SIZE / 4096 + 4)	/* some past EOF */

/* A pattern file, its descriptor switched to O_DIRECT. */
static int direct_file(void)
{
	int fd = make_pattern_file(DIRECT_SIZE, SEED);
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ge(fl, 0);
	ck_assert_msg(fcntl(fd, F_SETFL, fl | O_DIRECT) == 0,
		      "O_DIRECT on the test file: %s", strerror(errno));
	return fd;
}

static unsigned char *aligned_buf(size_t len)
{
	void *p = NULL;

	ck_assert_int_eq(posix_memalign(&p, 4096, len), 0);
	memset(p, SENTINEL, len);
	return p;
}

/* Set @s up for a read of @len bytes at @off into a fresh aligned buffer. */
static void slot_aligned(struct slot *s, uint64_t off, size_t len)
{
	s->off = off;
	s->len = len;
	s->buf = aligned_buf(len);
	atomic_init(&s->calls, 0);
	atomic_init(&s->result, LONG_MIN);
}

static uint64_t threads_started(iop_pool *pool)
{
	struct iop_stats st = { .size = sizeof(st) };

	ck_assert_int_eq(iop_pool_stats(pool, &st), 0);
	return st.threads_started;
}

/* Whether this build reads O_DIRECT descriptors with Linux AIO. */
static bool kernel_aio(void)
{
#ifdef IOP_LINUX_AIO
	return true;
#else
	return false;
#endif
}

/* Compare a finished direct read with pread(2) of the same range, into a
 * buffer aligned as the read's was. */
static void check_against_pread(int fd, struct slot *s)
{
	size_t mis = (uintptr_t)s->buf % 4096;
	unsigned char *base = aligned_buf(s->len + mis), *ref = base + mis;
	ssize_t want = pread(fd, ref, s->len, (off_t)s->off);

	if (want < 0)
		want = -errno;
	ck_assert_int_eq(load_int(&s->calls), 1);
	ck_assert_int_eq(load_long(&s->result), want);
	if (want > 0)
		ck_assert_int_eq(memcmp(s->buf, ref, (size_t)want), 0);
	free(base);
}

/*
 * Aligned reads all over the file, past its end and across it, all in
 * flight at once: each callback runs once, with what pread() returns for
 * the same range.  With Linux AIO no worker thread is needed for them;
 * with IOP_POOL_NO_AIO the workers read them.
 */
START_TEST(test_read_direct_matches_pread)
{
	const unsigned n = 200;
	uint64_t rng = 42;
	int fd = direct_file();

	for (int pass = 0; pass < 2; pass++) {
		struct iop_options opts = {
			.threads = 4, .flags = pass ? IOP_POOL_NO_AIO : 0,
		};
		iop_pool *pool = iop_pool_new(&opts);
		struct slot *s = calloc(n, sizeof(*s));
		struct iop_stats st = { .size = sizeof(st) };

		ck_assert_ptr_nonnull(pool);
		ck_assert_ptr_nonnull(s);
		for (unsigned i = 0; i < n; i++) {
			uint64_t off = rng_next(&rng) % DIRECT_BLOCKS * 4096;

			slot_aligned(&s[i], off, 4096 * (1 + rng_next(&rng) % 2));
			ck_assert_ptr_nonnull(iop_read(pool, fd, s[i].buf,
						       s[i].len,
						       (int64_t)s[i].off,
						       slot_done, &s[i]));
		}
		for (unsigned i = 0; i < n; i++)
			drain_until(pool, &s[i].calls, 1);
		ck_assert_int_eq(iop_poll(pool), 0);	/* nothing twice */
		for (unsigned i = 0; i < n; i++) {
			check_against_pread(fd, &s[i]);
			free(s[i].buf);
		}
		ck_assert_int_eq(iop_pool_stats(pool, &st), 0);
		ck_assert_uint_eq(st.submitted, n);
		ck_assert_uint_eq(st.completed + st.failed, n);
		if (pass == 0 && kernel_aio())
			ck_assert_uint_eq(st.threads_started, 0);
		else
			ck_assert_uint_ge(st.threads_started, 1);
		iop_pool_destroy(pool);
		free(s);
	}
	close(fd);
}
END_TEST

/*
 * A buffer O_DIRECT cannot use: the kernel takes the read and fails it,
 * or a worker does; either way the result is pread()'s, -EINVAL.
 */
START_TEST(test_read_direct_misaligned_is_preads_error)
{
	iop_pool *pool = pool_new(2);
	int fd = direct_file();
	unsigned char *buf = aligned_buf(8192);
	struct slot s = { .off = 4096, .len = 4096, .buf = buf + 1 };

	atomic_init(&s.calls, 0);
	atomic_init(&s.result, LONG_MIN);
	ck_assert_ptr_nonnull(iop_read(pool, fd, s.buf, s.len, (int64_t)s.off,
				       slot_done, &s));
	drain_until(pool, &s.calls, 1);
	ck_assert_int_eq(load_long(&s.result), -EINVAL);
	check_against_pread(fd, &s);
	iop_pool_destroy(pool);
	free(buf);
	close(fd);
}
END_TEST

/*
 * Linux AIO: a read in the kernel is IOP_RUNNING, and stays so until the
 * polling thread collects it, so iop_cancel() answers -EBUSY; the pool
 * descriptor becomes readable when the device answers, for a loop that
 * polls it itself, and iop_poll() then runs the callback, once, with the
 * whole read.  Without Linux AIO a worker reads it, and the same holds
 * from the descriptor on.
 */
START_TEST(test_read_direct_wakes_descriptor)
{
	iop_pool *pool = pool_new(2);
	int fd = direct_file();
	struct slot s;
	struct pollfd pfd = { .fd = iop_pool_fd(pool), .events = POLLIN };
	iop_job *job;
	int ran = 0;

	slot_aligned(&s, 8192, 4096);
	job = iop_read(pool, fd, s.buf, s.len, (int64_t)s.off, slot_done, &s);
	ck_assert_ptr_nonnull(job);
	if (kernel_aio()) {
		ck_assert_int_eq(iop_job_state(job), IOP_RUNNING);
		ck_assert_int_eq(iop_cancel(job), -EBUSY);
	}
	while (ran == 0) {
		ck_assert_int_eq(poll(&pfd, 1, TEST_WAIT_MS), 1);
		ran = iop_poll(pool);
		ck_assert_int_ge(ran, 0);
	}
	ck_assert_int_eq(ran, 1);
	ck_assert_int_eq(load_long(&s.result), 4096);
	check_against_pread(fd, &s);
	iop_pool_destroy(pool);
	free(s.buf);
	close(fd);
}
END_TEST

/*
 * Destroyed with reads still in the kernel: destroy waits for them, and
 * each callback runs once, with its data.  (Without Linux AIO, reads
 * still queued are cancelled, as any queued job is.)
 */
START_TEST(test_read_direct_destroy_waits_for_reads)
{
	const unsigned n = 64;
	iop_pool *pool = pool_new(2);
	int fd = direct_file();
	struct slot *s = calloc(n, sizeof(*s));

	ck_assert_ptr_nonnull(s);
	for (unsigned i = 0; i < n; i++) {
		slot_aligned(&s[i], (uint64_t)i * 4096 * 3, 4096);
		ck_assert_ptr_nonnull(iop_read(pool, fd, s[i].buf, 4096,
					       (int64_t)s[i].off, slot_done,
					       &s[i]));
	}
	iop_pool_destroy(pool);
	for (unsigned i = 0; i < n; i++) {
		/* Reads a worker had not taken yet end with -ECANCELED. */
		if (!kernel_aio() &&
		    load_long(&s[i].result) == -ECANCELED) {
			ck_assert_int_eq(load_int(&s[i].calls), 1);
		} else {
			ck_assert_int_eq(load_long(&s[i].result), 4096);
			check_against_pread(fd, &s[i]);
		}
		free(s[i].buf);
	}
	free(s);
	close(fd);
}
END_TEST

/* A future on an O_DIRECT descriptor is read by a worker: it can be
 * awaited by a thread that never polls. */
START_TEST(test_read_direct_future_is_awaited)
{
	iop_pool *pool = pool_new(2);
	int fd = direct_file();
	unsigned char *buf = aligned_buf(4096);
	iop_job *job = iop_read(pool, fd, buf, 4096, 4096 * 5, NULL, NULL);

	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_await(job), 4096);
	for (int i = 0; i < 4096; i++)
		ck_assert_uint_eq(buf[i], pattern_byte(SEED, 4096 * 5 + i));
	ck_assert_uint_ge(threads_started(pool), 1);
	iop_pool_destroy(pool);
	free(buf);
	close(fd);
}
END_TEST

/* Two threads submit direct reads while the test thread runs the
 * callbacks: more than the kernel context holds, so some go to workers. */
struct direct_submitter {
	iop_pool *pool;
	int fd;
	struct slot *s;
	unsigned n;
	atomic_int failed;
};

static void *direct_submit(void *arg)
{
	struct direct_submitter *d = arg;

	for (unsigned i = 0; i < d->n; i++)
		if (!iop_read(d->pool, d->fd, d->s[i].buf, d->s[i].len,
			      (int64_t)d->s[i].off, slot_done, &d->s[i]))
			atomic_fetch_add(&d->failed, 1);
	return NULL;
}

START_TEST(test_read_direct_threads_exactly_once)
{
	enum { THREADS = 2, PER = 300 };
	iop_pool *pool = pool_new(4);
	int fd = direct_file();
	struct direct_submitter d[THREADS];
	pthread_t t[THREADS];

	for (int k = 0; k < THREADS; k++) {
		d[k] = (struct direct_submitter){ .pool = pool, .fd = fd,
						   .n = PER };
		atomic_init(&d[k].failed, 0);
		d[k].s = calloc(PER, sizeof(*d[k].s));
		ck_assert_ptr_nonnull(d[k].s);
		for (unsigned i = 0; i < PER; i++) {
			slot_aligned(&d[k].s[i],
				     (uint64_t)((i * 7 + (unsigned)k) %
						(DIRECT_SIZE / 4096)) * 4096,
				     4096);
		}
	}
	for (int k = 0; k < THREADS; k++)
		ck_assert_int_eq(pthread_create(&t[k], NULL, direct_submit,
						&d[k]), 0);
	for (int k = 0; k < THREADS; k++)
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
	for (int k = 0; k < THREADS; k++) {
		ck_assert_int_eq(atomic_load(&d[k].failed), 0);
		for (unsigned i = 0; i < PER; i++)
			drain_until(pool, &d[k].s[i].calls, 1);
	}
	ck_assert_int_eq(iop_poll(pool), 0);
	for (int k = 0; k < THREADS; k++) {
		for (unsigned i = 0; i < PER; i++) {
			ck_assert_int_eq(load_long(&d[k].s[i].result), 4096);
			check_against_pread(fd, &d[k].s[i]);
			free(d[k].s[i].buf);
		}
		free(d[k].s);
	}
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

#if defined(HAVE_PREADV2) && HAVE_DECL_RWF_NOWAIT
/* Whether page @block of the file mapped at @map is in the page cache,
 * read. */
static bool page_resident(const unsigned char *map, uint64_t block)
{
	unsigned char v = 0;

	ck_assert_int_eq(mincore((void *)(map + block * 4096), 4096, &v), 0);
	return v & 1;
}

/*
 * After an attempt at submit that misses the page cache, reads of that
 * descriptor skip the attempt for a while: a cached read that a callback
 * run by iop_poll() submits, done inside the submit before the miss, is
 * queued after it, and a worker returns the right bytes either way.
 * (Where RWF_NOWAIT does not work on the test's file, both are queued.)
 * An attempt on a page out of the cache starts the device on it, and a
 * fast device can bring the page in before the attempt gives up, so that
 * it does not miss after all: then the next cold page is tried.
 */
START_TEST(test_read_after_miss_skips_attempt)
{
	enum { TRIES = 8 };
	const size_t size = 1u << 20;
	iop_pool *pool = pool_new(1);
	int fd = make_pattern_file(size, SEED);
	unsigned char *map, *warm = aligned_buf(4096);
	struct iovec iov = { warm, 4096 };
	bool nowait, missed = false;

	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(map, MAP_FAILED);
	/* Out of the cache, and no read-ahead: a read brings in its page
	 * alone.  Then blocks 0 and 1 only are cached. */
	ck_assert_int_eq(fdatasync(fd), 0);
	ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
	ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	for (int t = 0; t < TRIES; t++)
		ck_assert_msg(!page_resident(map, 100 + 20 * (uint64_t)t),
			      "the test file's pages stay in the cache");
	ck_assert_int_eq(pread(fd, warm, 4096, 0), 4096);
	ck_assert_int_eq(pread(fd, warm, 4096, 4096), 4096);
	nowait = preadv2(fd, &iov, 1, 4096, RWF_NOWAIT) == 4096;

	ck_assert_int_eq(resubmit_state(pool, fd, false),
			 nowait ? IOP_DONE : IOP_QUEUED);
	/* The miss: queued, not done inside the submit. */
	for (int t = 0; t < TRIES && !missed; t++) {
		uint64_t block = 100 + 20 * (uint64_t)t;
		struct slot cold;

		slot_aligned(&cold, block * 4096, 4096);
		missed = resubmit_read(pool, fd, &cold, false) ==
			 IOP_QUEUED;
		ck_assert_int_eq(load_long(&cold.result), 4096);
		for (int i = 0; i < 4096; i++)
			ck_assert_uint_eq(cold.buf[i],
					  pattern_byte(SEED, block * 4096 + i));
		free(cold.buf);
	}
	ck_assert_msg(missed, "%d reads of pages out of the cache all hit it",
		      TRIES);
	ck_assert_int_eq(resubmit_state(pool, fd, false), IOP_QUEUED);
	iop_pool_destroy(pool);
	munmap(map, size);
	free(warm);
	close(fd);
}
END_TEST

#define COLD_SIZE (4u << 20)		/* 1024 blocks */
#define COLD_READS 64

/* A pattern file of COLD_SIZE bytes, none of it in the page cache, with
 * no read-ahead: a read brings in its page alone.  Mapped at *@map. */
static int cold_file(unsigned char **map)
{
	int fd = make_pattern_file(COLD_SIZE, SEED);

	*map = mmap(NULL, COLD_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(*map, MAP_FAILED);
	ck_assert_int_eq(fdatasync(fd), 0);
	ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
	ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	for (uint64_t b = 0; b < COLD_SIZE / 4096; b++)
		ck_assert_msg(!page_resident(*map, b),
			      "the test file's pages stay in the cache");
	return fd;
}

static unsigned resident_pages(const unsigned char *map)
{
	unsigned n = 0;

	for (uint64_t b = 0; b < COLD_SIZE / 4096; b++)
		n += page_resident(map, b);
	return n;
}

/* Read block @block of @fd through @pool, in a held batch of its own if
 * @held, and check it. */
static void read_block(iop_pool *pool, int fd, uint64_t block, bool held)
{
	struct slot one;

	slot_aligned(&one, block * 4096, 4096);
	if (held)
		ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_ptr_nonnull(iop_read(pool, fd, one.buf, 4096,
				       (int64_t)one.off, slot_done, &one));
	if (held)
		ck_assert_int_eq(iop_batch_end(pool), 1);
	drain_until(pool, &one.calls, 1);
	check_against_pread(fd, &one);
	free(one.buf);
}

/*
 * Two reads, then COLD_READS reads of other blocks handed over at once
 * (a held batch), through @pool; each callback runs once, with the
 * file's bytes.  The first two teach the pool about @fd: the first is
 * tried at submit (and the kernel's answer says how @fd is opened), the
 * second, held, goes to a worker untried, which waits for the device as
 * long as a read of it takes.
 */
static void cold_reads(iop_pool *pool, int fd)
{
	struct slot *s = calloc(COLD_READS, sizeof(*s));

	ck_assert_ptr_nonnull(s);
	read_block(pool, fd, 1000, false);
	read_block(pool, fd, 1010, true);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (unsigned i = 0; i < COLD_READS; i++) {
		slot_aligned(&s[i], (uint64_t)(i * 13 + 7) * 4096, 4096);
		ck_assert_ptr_nonnull(iop_read(pool, fd, s[i].buf, 4096,
					       (int64_t)s[i].off, slot_done,
					       &s[i]));
	}
	ck_assert_int_eq(iop_batch_end(pool), COLD_READS);
	for (unsigned i = 0; i < COLD_READS; i++)
		drain_until(pool, &s[i].calls, 1);
	ck_assert_int_eq(iop_poll(pool), 0);	/* nothing twice */
	for (unsigned i = 0; i < COLD_READS; i++) {
		check_against_pread(fd, &s[i]);
		free(s[i].buf);
	}
	free(s);
}

/* Whether RWF_NOWAIT works on @fd's file: block @block, read into the
 * cache first, comes back with it. */
static bool nowait_works(int fd, uint64_t block)
{
	unsigned char *buf = aligned_buf(4096);
	struct iovec iov = { buf, 4096 };
	bool works;

	ck_assert_int_eq(pread(fd, buf, 4096, (off_t)(block * 4096)), 4096);
	works = preadv2(fd, &iov, 1, (off_t)(block * 4096), RWF_NOWAIT) ==
		4096;
	free(buf);
	return works;
}

/*
 * Reads that wait for the device share workers: the 64 cold reads of one
 * file handed over together start at most one worker per eight of them
 * (a worker each would start 64), and what the workers ask the kernel to
 * read ahead is exactly those reads' pages, nothing around them.  (The
 * pool knows that they wait from the first read's miss at submit; where
 * RWF_NOWAIT does not work, only from how long reads take, which depends
 * on the device: then the number of workers is not checked.)
 */
START_TEST(test_read_cold_reads_share_workers)
{
	struct iop_options opts = { .threads = COLD_READS };
	iop_pool *pool = pool_new_opts(&opts);
	unsigned char *map;
	int fd = cold_file(&map);
	bool nowait = nowait_works(fd, 1023);

	cold_reads(pool, fd);
	if (nowait)
		ck_assert_uint_le(threads_started(pool), 1 + COLD_READS / 8);
	ck_assert_uint_eq(resident_pages(map), 3 + COLD_READS);
	iop_pool_destroy(pool);
	munmap(map, COLD_SIZE);
	close(fd);
}
END_TEST

/*
 * O_DIRECT reads that go to the workers (IOP_POOL_NO_AIO) are not read
 * ahead: the page cache, which they pass by, stays empty.
 */
START_TEST(test_read_direct_on_workers_not_read_ahead)
{
	struct iop_options opts = {
		.threads = COLD_READS, .flags = IOP_POOL_NO_AIO,
	};
	iop_pool *pool = pool_new_opts(&opts);
	unsigned char *map;
	int fd = cold_file(&map), fl = fcntl(fd, F_GETFL);

	ck_assert_int_ge(fl, 0);
	ck_assert_msg(fcntl(fd, F_SETFL, fl | O_DIRECT) == 0,
		      "O_DIRECT on the test file: %s", strerror(errno));
	cold_reads(pool, fd);
	ck_assert_uint_eq(resident_pages(map), 0);
	iop_pool_destroy(pool);
	munmap(map, COLD_SIZE);
	close(fd);
}
END_TEST
#endif

/* Whether this runs under valgrind, which preloads its own libraries. */
static bool under_valgrind(void)
{
	const char *pre = getenv("LD_PRELOAD");

	return pre && strstr(pre, "vgpreload");
}

/*
 * Reads that copy from the page cache take no more threads than there
 * are CPUs: 24 cached reads of 1 MiB handed over at once, on a pool that
 * may start twice as many threads as CPUs and more, start one per CPU,
 * and each callback runs once with the file's bytes.  (Valgrind runs one
 * thread at a time, so that a worker sleeps in the kernel whenever
 * another wants to run: the pool then sees reads that wait, not copy,
 * and the number of threads is not checked.)
 */
START_TEST(test_read_copies_take_a_thread_per_cpu)
{
	const unsigned n = 24, mib = 1u << 20;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct iop_options opts = { .threads = 2 * (unsigned)cpus + 2 };
	iop_pool *pool;
	struct slot *s = calloc(n, sizeof(*s));
	unsigned char *ref = aligned_buf(mib);
	int fd = make_pattern_file((size_t)n * mib, SEED);

	ck_assert_int_ge(cpus, 1);
	ck_assert_ptr_nonnull(s);
	if (opts.threads > IOP_THREADS_MAX)
		opts.threads = IOP_THREADS_MAX;
	pool = pool_new_opts(&opts);
	/* The first read shows the pool the descriptor. */
	slot_aligned(&s[0], 0, mib);
	ck_assert_ptr_nonnull(iop_read(pool, fd, s[0].buf, mib, 0, slot_done,
				       &s[0]));
	drain_until(pool, &s[0].calls, 1);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (unsigned i = 1; i < n; i++) {
		slot_aligned(&s[i], (uint64_t)i * mib, mib);
		ck_assert_ptr_nonnull(iop_read(pool, fd, s[i].buf, mib,
					       (int64_t)s[i].off, slot_done,
					       &s[i]));
	}
	ck_assert_int_eq(iop_batch_end(pool), (int)n - 1);
	for (unsigned i = 1; i < n; i++)
		drain_until(pool, &s[i].calls, 1);
	ck_assert_int_eq(iop_poll(pool), 0);	/* nothing twice */
	if (!under_valgrind())
		ck_assert_uint_le(threads_started(pool), (uint64_t)cpus);
	for (unsigned i = 0; i < n; i++) {
		ck_assert_int_eq(load_int(&s[i].calls), 1);
		ck_assert_int_eq(load_long(&s[i].result), (long)mib);
		ck_assert_int_eq(pread(fd, ref, mib, (off_t)s[i].off),
				 (ssize_t)mib);
		ck_assert_int_eq(memcmp(s[i].buf, ref, mib), 0);
		free(s[i].buf);
	}
	iop_pool_destroy(pool);
	free(ref);
	free(s);
	close(fd);
}
END_TEST

/*
 * A closed loop of cached reads of 256 KiB of one file, in order, as a
 * program reading a file keeps a window of them in flight: each callback
 * submits the next read.  Each buffer is fresh anonymous memory, so that
 * the thread that copies into it takes its page faults.
 */
#define LOOP_READS 96
#define LOOP_LEN (256u << 10)

static struct {
	iop_pool *pool;
	int fd;
	unsigned next;
	bool chain;		/* callbacks submit the next read */
	atomic_int done;
	struct slot s[LOOP_READS];
} loop;

static void loop_submit(void);

static void loop_done(iop_job *job, ssize_t result, void *arg)
{
	slot_done(job, result, arg);
	atomic_fetch_add(&loop.done, 1);
	if (loop.chain)
		loop_submit();
}

static void loop_submit(void)
{
	struct slot *s;

	if (loop.next == LOOP_READS)
		return;
	s = &loop.s[loop.next++];
	ck_assert_ptr_nonnull(iop_read(loop.pool, loop.fd, s->buf, s->len,
				       (int64_t)s->off, loop_done, s));
}

/* The file and the pool; the first read, done, shows the pool the
 * descriptor and how long such a read takes. */
static void loop_setup(void)
{
	loop.pool = pool_new(0);
	loop.fd = make_pattern_file((size_t)LOOP_READS * LOOP_LEN, SEED);
	loop.next = 0;
	loop.chain = false;
	atomic_init(&loop.done, 0);
	for (unsigned i = 0; i < LOOP_READS; i++) {
		struct slot *s = &loop.s[i];

		s->off = (uint64_t)i * LOOP_LEN;
		s->len = LOOP_LEN;
		s->buf = mmap(NULL, LOOP_LEN, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ck_assert_ptr_ne(s->buf, MAP_FAILED);
		/* One fault per page, on the thread that writes it. */
		(void)madvise(s->buf, LOOP_LEN, MADV_NOHUGEPAGE);
		atomic_init(&s->calls, 0);
		atomic_init(&s->result, LONG_MIN);
	}
	loop_submit();
	drain_until(loop.pool, &loop.done, 1);
	loop.chain = true;
}

/* Each read ended once, with the file's bytes; then clean up. */
static void loop_check_teardown(void)
{
	unsigned char *ref = aligned_buf(LOOP_LEN);

	ck_assert_int_eq(iop_poll(loop.pool), 0);	/* nothing twice */
	for (unsigned i = 0; i < LOOP_READS; i++) {
		struct slot *s = &loop.s[i];

		ck_assert_int_eq(load_int(&s->calls), 1);
		ck_assert_int_eq(load_long(&s->result), (long)LOOP_LEN);
		ck_assert_int_eq(pread(loop.fd, ref, LOOP_LEN, (off_t)s->off),
				 (ssize_t)LOOP_LEN);
		ck_assert_int_eq(memcmp(s->buf, ref, LOOP_LEN), 0);
		ck_assert_int_eq(munmap(s->buf, LOOP_LEN), 0);
	}
	iop_pool_destroy(loop.pool);
	free(ref);
	close(loop.fd);
}

/* Page faults the calling thread has taken. */
static long thread_minflt(void)
{
	struct rusage ru;

	ck_assert_int_eq(getrusage(RUSAGE_THREAD, &ru), 0);
	return ru.ru_minflt;
}

/*
 * iop_wait() copies reads itself: while a window of cached reads is in
 * flight and the callbacks submit the next ones, the waiting thread
 * takes some of them off the queue and copies them, which shows in the
 * page faults of their fresh buffers on that thread: at least one
 * buffer's worth.  Each read ends once, with the right bytes.  (Not on a
 * single CPU, where no worker would copy beside it; not under valgrind,
 * where reads look as if they wait, see above.)
 */
START_TEST(test_read_wait_copies_reads_itself)
{
	const unsigned window = 8;
	long before, faults;

	loop_setup();
	before = thread_minflt();
	ck_assert_int_eq(iop_batch_begin(loop.pool), 0);
	for (unsigned i = 0; i < window; i++)
		loop_submit();
	ck_assert_int_ge(iop_batch_end(loop.pool), 0);
	drain_until(loop.pool, &loop.done, LOOP_READS);
	faults = thread_minflt() - before;
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1 && !under_valgrind())
		ck_assert_int_ge(faults, LOOP_LEN / 4096);
	loop_check_teardown();
}
END_TEST

/*
 * Reads that copy, still queued when an iop_wait() that copied some of
 * them returns, end without another iop_wait(): the workers take them,
 * and the rest are collected with poll(2) on the pool's descriptor and
 * iop_poll() alone.  Each ends once, with the right bytes.
 */
START_TEST(test_read_wait_leaves_copies_to_workers)
{
	int n;

	loop_setup();
	ck_assert_int_eq(iop_batch_begin(loop.pool), 0);
	while (loop.next < LOOP_READS)
		loop_submit();
	ck_assert_int_ge(iop_batch_end(loop.pool), 0);
	ck_assert_int_gt(iop_wait(loop.pool, TEST_WAIT_MS), 0);
	while (load_int(&loop.done) < LOOP_READS) {
		ck_assert_int_eq(fd_readable(iop_pool_fd(loop.pool),
					     TEST_WAIT_MS), 1);
		n = iop_poll(loop.pool);
		ck_assert_int_ge(n, 0);
	}
	loop_check_teardown();
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
#if defined(HAVE_PREADV2) && HAVE_DECL_RWF_NOWAIT
	tcase_add_test(tc, test_read_after_miss_skips_attempt);
	tcase_add_test(tc, test_read_cold_reads_share_workers);
	tcase_add_test(tc, test_read_direct_on_workers_not_read_ahead);
#endif
	tcase_add_test(tc, test_read_copies_take_a_thread_per_cpu);
	tcase_add_test(tc, test_read_wait_copies_reads_itself);
	tcase_add_test(tc, test_read_wait_leaves_copies_to_workers);
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

	tc = tcase_new("direct");
	tcase_add_test(tc, test_read_direct_matches_pread);
	tcase_add_test(tc, test_read_direct_misaligned_is_preads_error);
	tcase_add_test(tc, test_read_direct_wakes_descriptor);
	tcase_add_test(tc, test_read_direct_destroy_waits_for_reads);
	tcase_add_test(tc, test_read_direct_future_is_awaited);
	tcase_add_test(tc, test_read_direct_threads_exactly_once);
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
