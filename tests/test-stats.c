/*
 * Suite "stats": iop_pool_stats() counts what the test counted (jobs
 * submitted, completed, failed, cancelled, timed out; queued and running
 * while workers are held), its histograms hold each job that ran once and
 * put a 20 ms job in the log2 bucket of its duration, IOP_POOL_NO_TIMING
 * keeps the counters but no histograms, long_running_ms flags a held job,
 * and the size field lets older and newer callers pass a shorter or
 * longer struct.  Then iop_poll_budget(): a callback budget runs exactly
 * that many, oldest first, and leaves the descriptor readable for the
 * rest; a time budget stops starting callbacks once it is spent.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

static struct iop_stats stats_of(iop_pool *pool)
{
	struct iop_stats st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	ck_assert_int_eq(iop_pool_stats(pool, &st), 0);
	return st;
}

static uint64_t hist_sum(const uint64_t *h)
{
	uint64_t n = 0;

	for (int b = 0; b < IOP_HIST_BUCKETS; b++)
		n += h[b];
	return n;
}

/* Entries in every histogram row except @op's. */
static uint64_t hist_others(const struct iop_stats *st, int op)
{
	uint64_t n = 0;

	for (int k = 0; k < IOP_OP_COUNT; k++)
		if (k != op)
			n += hist_sum(st->queued_ns[k]) +
			     hist_sum(st->running_ns[k]);
	return n;
}

/* The log2 bucket a duration of @ns belongs in (see IOP_HIST_BUCKETS). */
static int bucket_of(int64_t ns)
{
	int b;

	if (ns < 2)
		return 0;
	b = 63 - __builtin_clzll((unsigned long long)ns);
	return b < IOP_HIST_BUCKETS ? b : IOP_HIST_BUCKETS - 1;
}

/* Sleep @ms inside a work function or callback: it is the work. */
static void busy_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A job that sleeps @ms and measures how long that took. */
struct sleeper {
	int ms;
	int64_t took_ns;	/* written by the work */
};

static ssize_t sleeper_work(void *ctx)
{
	struct sleeper *s = ctx;
	int64_t t0 = now_ns();

	busy_ms(s->ms);
	s->took_ns = now_ns() - t0;
	return 0;
}

/*
 * Results the test knows: held jobs and quick ones that succeed, quick
 * ones that fail with -EIO, queued ones cancelled, and ones whose 1 ms
 * deadline passes while every worker is held.  The counters match, the
 * queue and running figures match while held, and the IOP_OP_CALL
 * histograms hold one entry per job that ran.  Then a 20 ms job lands in
 * the bucket of its measured duration.
 */
START_TEST(test_stats_counts_match)
{
	enum { THREADS = 2, OK = 7, FAIL = 5, CANCEL = 4, LATE = 3,
	       RAN = THREADS + OK + FAIL,
	       ALL = THREADS + OK + FAIL + CANCEL + LATE };
	iop_pool *pool = pool_new(THREADS);
	struct gate g;
	sem_t entered;
	struct held h[THREADS];
	struct done_rec ok, fail, cancel, late, hd;
	iop_job *cj[CANCEL], *lj[LATE], *job;
	struct iop_stats st, before, after;
	struct sleeper sl = { .ms = 20 };
	int changed = -1, nchanged = 0, want;

	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&ok);
	done_rec_init(&fail);
	done_rec_init(&cancel);
	done_rec_init(&late);
	done_rec_init(&hd);

	st = stats_of(pool);
	ck_assert_uint_eq(st.submitted, 0);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.running, 0);

	for (int i = 0; i < THREADS; i++) {
		held_init(&h[i], &g, &entered, i);
		ck_assert_ptr_nonnull(iop_call(pool, held_work, &h[i],
					       done_record, &hd));
	}
	sem_wait_n(&entered, THREADS);
	for (int i = 0; i < OK; i++)
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx,
					       (void *)(intptr_t)i,
					       done_record, &ok));
	for (int i = 0; i < FAIL; i++)
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx,
					       (void *)(intptr_t)-EIO,
					       done_record, &fail));
	for (int i = 0; i < CANCEL; i++) {
		cj[i] = iop_call(pool, work_return_ctx, NULL, done_record,
				 &cancel);
		ck_assert_ptr_nonnull(cj[i]);
	}
	st = stats_of(pool);
	ck_assert_uint_eq(st.queued, OK + FAIL + CANCEL);
	ck_assert_uint_eq(st.running, THREADS);
	ck_assert_uint_eq(st.threads, THREADS);
	ck_assert_uint_eq(st.threads_idle, 0);
	ck_assert_uint_eq(st.submitted, THREADS + OK + FAIL + CANCEL);

	for (int i = 0; i < CANCEL; i++)
		ck_assert_int_eq(iop_cancel(cj[i]), 0);
	drain_until(pool, &cancel.calls, CANCEL);
	ck_assert_int_eq(load_long(&cancel.result), -ECANCELED);
	st = stats_of(pool);
	ck_assert_uint_eq(st.queued, OK + FAIL);
	ck_assert_uint_eq(st.cancelled, CANCEL);

	/* Deadlines pass while both workers are held. */
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < LATE; i++) {
		lj[i] = iop_call(pool, work_return_ctx, NULL, done_record,
				 &late);
		ck_assert_ptr_nonnull(lj[i]);
		ck_assert_int_eq(iop_job_set_deadline(lj[i], 1), 0);
	}
	ck_assert_int_eq(iop_batch_end(pool), LATE);
	drain_until(pool, &late.calls, LATE);
	ck_assert_int_eq(load_long(&late.result), -ETIMEDOUT);

	st = stats_of(pool);
	ck_assert_uint_eq(st.queued, OK + FAIL);
	ck_assert_uint_eq(st.running, THREADS);
	ck_assert_uint_eq(st.submitted, ALL);
	ck_assert_uint_eq(st.completed, 0);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.cancelled, CANCEL);
	ck_assert_uint_eq(st.timed_out, LATE);

	gate_open(&g);
	drain_until(pool, &hd.calls, THREADS);
	drain_until(pool, &ok.calls, OK);
	drain_until(pool, &fail.calls, FAIL);
	ck_assert_int_eq(load_long(&fail.result), -EIO);
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(load_int(&cancel.calls), CANCEL);
	ck_assert_int_eq(load_int(&late.calls), LATE);

	st = stats_of(pool);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.running, 0);
	ck_assert_uint_eq(st.long_running, 0);
	ck_assert_uint_eq(st.submitted, ALL);
	ck_assert_uint_eq(st.completed, THREADS + OK);
	ck_assert_uint_eq(st.failed, FAIL);
	ck_assert_uint_eq(st.cancelled, CANCEL);
	ck_assert_uint_eq(st.timed_out, LATE);
	ck_assert_uint_eq(st.submitted, st.completed + st.failed +
			  st.cancelled + st.timed_out);
	ck_assert_uint_ge(st.threads_started, THREADS);
	ck_assert_uint_eq(hist_sum(st.queued_ns[IOP_OP_CALL]), RAN);
	ck_assert_uint_eq(hist_sum(st.running_ns[IOP_OP_CALL]), RAN);
	ck_assert_uint_eq(hist_others(&st, IOP_OP_CALL), 0);

	/* One 20 ms job: one running_ns entry, in its duration's bucket.
	 * The pool times a little more than the work itself does, so the
	 * bucket is that of the measured time or the next. */
	before = stats_of(pool);
	job = iop_call(pool, sleeper_work, &sl, NULL, NULL);
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_await(job), 0);
	after = stats_of(pool);
	for (int b = 0; b < IOP_HIST_BUCKETS; b++) {
		uint64_t d = after.running_ns[IOP_OP_CALL][b] -
			     before.running_ns[IOP_OP_CALL][b];

		if (d != 0) {
			changed = b;
			nchanged += (int)d;
		}
	}
	want = bucket_of(sl.took_ns);
	ck_assert_int_eq(nchanged, 1);
	ck_assert_msg(changed == want || changed == want + 1,
		      "a job of %lld ns counted in bucket %d, not %d",
		      (long long)sl.took_ns, changed, want);
	ck_assert_int_ge(changed, 24);	/* 20 ms >= 2^24 ns */
	ck_assert_uint_eq(hist_sum(after.queued_ns[IOP_OP_CALL]), RAN + 1);
	ck_assert_uint_eq(after.completed, THREADS + OK + 1);

	iop_pool_destroy(pool);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * IOP_POOL_NO_TIMING: the same kind of counts, while every histogram
 * stays empty and nothing is long-running.  A held job still counts as
 * running.
 */
START_TEST(test_stats_no_timing)
{
	enum { OK = 10, FAIL = 4 };
	struct iop_options o = { .threads = 2, .flags = IOP_POOL_NO_TIMING };
	struct gate g;
	sem_t entered;
	struct held h;
	struct done_rec d, hd;
	struct iop_stats st;
	iop_pool *pool;

	pool = iop_pool_new(&o);
	ck_assert_ptr_nonnull(pool);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&d);
	done_rec_init(&hd);
	held_init(&h, &g, &entered, 3);
	ck_assert_ptr_nonnull(iop_call(pool, held_work, &h, done_record,
				       &hd));
	sem_wait_n(&entered, 1);
	for (int i = 0; i < OK + FAIL; i++)
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx,
					       (void *)(intptr_t)(i < OK ?
								  i : -EIO),
					       done_record, &d));
	drain_until(pool, &d.calls, OK + FAIL);
	st = stats_of(pool);
	ck_assert_uint_eq(st.running, 1);
	ck_assert_uint_eq(st.long_running, 0);
	gate_open(&g);
	drain_until(pool, &hd.calls, 1);

	st = stats_of(pool);
	ck_assert_uint_eq(st.submitted, OK + FAIL + 1);
	ck_assert_uint_eq(st.completed, OK + 1);
	ck_assert_uint_eq(st.failed, FAIL);
	ck_assert_uint_eq(st.cancelled, 0);
	ck_assert_uint_eq(st.timed_out, 0);
	ck_assert_uint_eq(st.running, 0);
	ck_assert_uint_eq(st.long_ran, 0);
	ck_assert_uint_eq(hist_others(&st, -1), 0);
	iop_pool_destroy(pool);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/* Poll the stats until long_running reaches @want, up to TEST_WAIT_MS. */
static struct iop_stats wait_long_running(iop_pool *pool, uint64_t want)
{
	int64_t end = now_ns() + (int64_t)TEST_WAIT_MS * 1000000;
	struct iop_stats st;

	for (;;) {
		st = stats_of(pool);
		if (st.long_running == want || now_ns() > end)
			return st;
		busy_ms(1);	/* waiting for time to pass, not a thread */
	}
}

/*
 * long_running_ms 10: a held job is not long-running at first (checked
 * only if the test got there within 10 ms of the submit), shows up in
 * long_running once 10 ms have passed, and in long_ran after it ends.
 */
START_TEST(test_stats_long_running)
{
	struct iop_options o = { .threads = 2, .long_running_ms = 10 };
	struct gate g;
	sem_t entered;
	struct held h;
	struct done_rec hd;
	struct iop_stats st;
	iop_pool *pool;
	int64_t t_submit, t_after;

	pool = iop_pool_new(&o);
	ck_assert_ptr_nonnull(pool);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&hd);
	held_init(&h, &g, &entered, 0);

	t_submit = now_ns();
	ck_assert_ptr_nonnull(iop_call(pool, held_work, &h, done_record,
				       &hd));
	sem_wait_n(&entered, 1);
	st = stats_of(pool);
	t_after = now_ns();
	ck_assert_uint_eq(st.running, 1);
	/* The job started after t_submit and was looked at before t_after. */
	if (t_after - t_submit < 10 * 1000000LL)
		ck_assert_uint_eq(st.long_running, 0);
	ck_assert_uint_eq(st.long_ran, 0);

	st = wait_long_running(pool, 1);
	ck_assert_uint_eq(st.long_running, 1);
	ck_assert_uint_eq(st.running, 1);
	ck_assert_uint_eq(st.long_ran, 0);

	gate_open(&g);
	drain_until(pool, &hd.calls, 1);
	st = stats_of(pool);
	ck_assert_uint_eq(st.running, 0);
	ck_assert_uint_eq(st.long_running, 0);
	ck_assert_uint_eq(st.long_ran, 1);
	ck_assert_uint_eq(st.completed, 1);
	iop_pool_destroy(pool);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

static ssize_t tiny_work(void *ctx)
{
	(void)ctx;
	return 0;
}

/*
 * Short jobs of one kind run in batches, timed as a whole: each still
 * counts exactly once, as completed and in both histograms.
 */
START_TEST(test_stats_batched_jobs_count_once_each)
{
	enum { TEACH = 200, N = 5000 };
	iop_pool *pool = pool_new(2);
	struct iop_stats before, after;
	struct done_rec d;

	done_rec_init(&d);
	for (int i = 0; i < TEACH; i++)
		ck_assert_ptr_nonnull(iop_call(pool, tiny_work, NULL,
					       done_record, &d));
	drain_until(pool, &d.calls, TEACH);
	before = stats_of(pool);
	for (int i = 0; i < N; i++)
		ck_assert_ptr_nonnull(iop_call(pool, tiny_work, NULL,
					       done_record, &d));
	drain_until(pool, &d.calls, TEACH + N);
	after = stats_of(pool);
	ck_assert_uint_eq(after.completed - before.completed, N);
	ck_assert_uint_eq(after.failed, 0);
	ck_assert_uint_eq(hist_sum(after.running_ns[IOP_OP_CALL]) -
			  hist_sum(before.running_ns[IOP_OP_CALL]), N);
	ck_assert_uint_eq(hist_sum(after.queued_ns[IOP_OP_CALL]) -
			  hist_sum(before.queued_ns[IOP_OP_CALL]), N);
	ck_assert_uint_eq(hist_others(&after, IOP_OP_CALL), 0);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * @size: a caller with a shorter struct (down to the histograms) gets
 * just that prefix written; a newer caller's longer struct gets what the
 * library has and nothing past it; below the histograms is -EINVAL, as
 * are NULL arguments.
 */
START_TEST(test_stats_size)
{
	const size_t prefix = offsetof(struct iop_stats, queued_ns);
	const size_t part = offsetof(struct iop_stats,
				     queued_ns[IOP_OP_CALL + 1]);
	iop_pool *pool = pool_new(1);
	struct done_rec d;
	struct iop_stats full;
	unsigned char *buf;
	size_t big = sizeof(struct iop_stats) + 64;
	struct iop_stats *st;

	/* Something to count. */
	done_rec_init(&d);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       done_record, &d));
	drain_until(pool, &d.calls, 1);
	full = stats_of(pool);
	ck_assert_uint_eq(full.submitted, 1);
	ck_assert_uint_eq(hist_sum(full.queued_ns[IOP_OP_CALL]), 1);

	buf = malloc(big);
	ck_assert_ptr_nonnull(buf);
	st = (struct iop_stats *)buf;

	/* Just the counters. */
	memset(buf, 0xa5, big);
	st->size = prefix;
	ck_assert_int_eq(iop_pool_stats(pool, st), 0);
	ck_assert_uint_eq(st->size, prefix);
	ck_assert_uint_eq(st->submitted, 1);
	ck_assert_uint_eq(st->completed, 1);
	ck_assert_uint_eq(st->threads_started, full.threads_started);
	for (size_t i = prefix; i < big; i++)
		if (buf[i] != 0xa5)
			ck_abort_msg("byte %zu written past size %zu", i,
				     prefix);

	/* Up to IOP_OP_CALL's queued_ns row. */
	memset(buf, 0xa5, big);
	st->size = part;
	ck_assert_int_eq(iop_pool_stats(pool, st), 0);
	ck_assert_uint_eq(st->size, part);
	ck_assert_uint_eq(hist_sum(st->queued_ns[IOP_OP_CALL]), 1);
	ck_assert_uint_eq(hist_sum(st->queued_ns[IOP_OP_READ]), 0);
	for (size_t i = part; i < big; i++)
		if (buf[i] != 0xa5)
			ck_abort_msg("byte %zu written past size %zu", i, part);

	/* A newer caller's longer struct. */
	memset(buf, 0xa5, big);
	st->size = big;
	ck_assert_int_eq(iop_pool_stats(pool, st), 0);
	ck_assert_uint_eq(st->submitted, 1);
	ck_assert_uint_eq(hist_sum(st->running_ns[IOP_OP_CALL]), 1);
	for (size_t i = sizeof(struct iop_stats); i < big; i++)
		if (buf[i] != 0xa5)
			ck_abort_msg("byte %zu written past the library's "
				     "struct", i);

	/* Too short, or NULL. */
	st->size = prefix - 1;
	ck_assert_int_eq(iop_pool_stats(pool, st), -EINVAL);
	st->size = 0;
	ck_assert_int_eq(iop_pool_stats(pool, st), -EINVAL);
	st->size = sizeof(struct iop_stats);
	ck_assert_int_eq(iop_pool_stats(NULL, st), -EINVAL);
	ck_assert_int_eq(iop_pool_stats(pool, NULL), -EINVAL);

	free(buf);
	iop_pool_destroy(pool);
}
END_TEST

/* ---- iop_poll_budget() ---- */

/* A callback that records its turn and may take @ms doing so. */
struct turn {
	atomic_int *clock;
	int ms;
	atomic_int at;
	atomic_int calls;
	atomic_int off_thread;
	atomic_long got;
};

static void turn_done(iop_job *job, ssize_t result, void *arg)
{
	struct turn *t = arg;

	(void)job;
	if (t->ms > 0)
		busy_ms(t->ms);
	if (!on_test_thread())
		atomic_fetch_add(&t->off_thread, 1);
	atomic_store(&t->got, (long)result);
	atomic_store(&t->at, atomic_fetch_add(t->clock, 1) + 1);
	atomic_fetch_add(&t->calls, 1);
}

/*
 * @n callback jobs on a one-worker pool, all finished and on the
 * completion queue when this returns: a future submitted after them
 * runs after every one of them was handed back.
 */
static struct turn *finished_jobs(iop_pool *pool, int n, atomic_int *clock,
				  int ms)
{
	struct turn *t = calloc((size_t)n, sizeof(*t));
	iop_job *f;

	ck_assert_ptr_nonnull(t);
	for (int i = 0; i < n; i++) {
		t[i].clock = clock;
		t[i].ms = ms;
		atomic_init(&t[i].at, 0);
		atomic_init(&t[i].calls, 0);
		atomic_init(&t[i].off_thread, 0);
		atomic_init(&t[i].got, -1);
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx,
					       (void *)(intptr_t)i, turn_done,
					       &t[i]));
	}
	f = iop_call(pool, work_return_ctx, (void *)(intptr_t)-1, NULL, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(iop_await(f), -1);
	return t;
}

/*
 * 100 finished jobs: iop_poll_budget(pool, 10, 0) runs exactly the 10
 * oldest, and the descriptor stays readable; ten such calls run all of
 * them in order, each once.  Then no budget at all runs everything.
 */
START_TEST(test_poll_budget)
{
	enum { N = 100, STEP = 10 };
	iop_pool *pool = pool_new(1);
	int fd = iop_pool_fd(pool);
	atomic_int clock;
	struct turn *t;
	int ran = 0;

	atomic_init(&clock, 0);
	t = finished_jobs(pool, N, &clock, 0);
	ck_assert_int_eq(fd_readable(fd, TEST_WAIT_MS), 1);
	while (ran < N) {
		ck_assert_int_eq(iop_poll_budget(pool, STEP, 0), STEP);
		ran += STEP;
		ck_assert_int_eq(load_int(&clock), ran);
		for (int i = 0; i < N; i++)
			ck_assert_int_eq(load_int(&t[i].calls), i < ran);
		if (ran < N)
			ck_assert_msg(fd_readable(fd, 0),
				      "%d callbacks left, descriptor not "
				      "readable", N - ran);
	}
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&t[i].at), i + 1);
		ck_assert_int_eq(load_long(&t[i].got), i);
		ck_assert_int_eq(load_int(&t[i].off_thread), 0);
	}
	ck_assert_int_eq(iop_poll_budget(pool, STEP, 0), 0);
	free(t);

	/* No limit: everything, as iop_poll(). */
	atomic_store(&clock, 0);
	t = finished_jobs(pool, N, &clock, 0);
	ck_assert_int_eq(iop_poll_budget(pool, 0, 0), N);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&t[i].calls), 1);
		ck_assert_int_eq(load_int(&t[i].at), i + 1);
	}
	free(t);

	ck_assert_int_eq(iop_poll_budget(NULL, 1, 0), -EINVAL);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * A time budget: 100 finished callbacks of at least 1 ms each and
 * max_us 5000 run at least one and far fewer than all (no callback
 * starts after 5 ms, so about five); the rest stay for later, with the
 * descriptor readable, and each runs once.
 */
START_TEST(test_poll_budget_time)
{
	enum { N = 100 };
	iop_pool *pool = pool_new(1);
	int fd = iop_pool_fd(pool);
	atomic_int clock;
	struct turn *t;
	int n, ran;

	atomic_init(&clock, 0);
	t = finished_jobs(pool, N, &clock, 1);
	n = iop_poll_budget(pool, 0, 5000);
	ck_assert_int_ge(n, 1);
	ck_assert_msg(n <= 10, "%d callbacks of 1 ms in 5 ms", n);
	ck_assert_int_eq(load_int(&clock), n);
	ck_assert(fd_readable(fd, 0));

	/* A callback budget inside a time budget. */
	ck_assert_int_eq(iop_poll_budget(pool, 1, 1000000), 1);
	ran = n + 1;
	while (ran < N) {
		n = iop_poll_budget(pool, 0, 5000);
		ck_assert_int_ge(n, 1);
		ran += n;
	}
	ck_assert_int_eq(ran, N);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&t[i].calls), 1);
		ck_assert_int_eq(load_int(&t[i].at), i + 1);
	}
	ck_assert_int_eq(iop_poll(pool), 0);
	free(t);
	iop_pool_destroy(pool);
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc;

	tc = tcase_new("stats");
	tcase_add_test(tc, test_stats_counts_match);
	tcase_add_test(tc, test_stats_no_timing);
	tcase_add_test(tc, test_stats_long_running);
	tcase_add_test(tc, test_stats_size);
	tcase_add_test(tc, test_stats_batched_jobs_count_once_each);
	suite_add_tcase(s, tc);

	tc = tcase_new("budget");
	tcase_add_test(tc, test_poll_budget);
	tcase_add_test(tc, test_poll_budget_time);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(stats_suite());
}
