/*
 * Suite "destroy": iop_pool_new() options, and iop_pool_destroy() on idle
 * and busy pools: queued jobs cancelled (callback once, -ECANCELED, work
 * never run), running jobs finishing with their real result, callbacks
 * due delivered, ESHUTDOWN for submits from those callbacks, awaiters of
 * queued futures released, and the refusal inside a callback.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* Expect iop_pool_new(@opts) to fail with EINVAL. */
static void expect_new_einval(const struct iop_options *opts, const char *what)
{
	iop_pool *pool;

	errno = 0;
	pool = iop_pool_new(opts);
	ck_assert_msg(pool == NULL, "iop_pool_new(%s) succeeded", what);
	ck_assert_msg(errno == EINVAL, "iop_pool_new(%s): errno %d", what,
		      errno);
}

START_TEST(test_destroy_new_rejects_bad_options)
{
	struct iop_options o;

	memset(&o, 0, sizeof(o));
	o.threads = 1000000;
	expect_new_einval(&o, "threads 1000000");
	o.threads = IOP_THREADS_MAX + 1;
	expect_new_einval(&o, "threads IOP_THREADS_MAX + 1");

	memset(&o, 0, sizeof(o));
	o.min_threads = 5;
	expect_new_einval(&o, "min_threads 5 above the default 4 threads");
	o.threads = 2;
	o.min_threads = 3;
	expect_new_einval(&o, "min_threads 3 above threads 2");
	memset(&o, 0, sizeof(o));
	o.overflow = 3;
	expect_new_einval(&o, "overflow 3");
	o.overflow = -1;
	expect_new_einval(&o, "overflow -1");
	memset(&o, 0, sizeof(o));
	o.flags = 1u << 30;
	expect_new_einval(&o, "flags 1 << 30");
	o.flags = IOP_POOL_INLINE;
	o.threads = 1;
	expect_new_einval(&o, "IOP_POOL_INLINE with threads 1");
	memset(&o, 0, sizeof(o));
	o.reserved[0] = 1;
	expect_new_einval(&o, "reserved[0] 1");
	memset(&o, 0, sizeof(o));
	o.reserved[4] = UINT64_MAX;
	expect_new_einval(&o, "reserved[4] ~0");

	memset(&o, 0, sizeof(o));
	o.stack_size = 1;
	expect_new_einval(&o, "stack_size 1");
	o.stack_size = 16 * 1024 - 1;
	expect_new_einval(&o, "stack_size 16 KiB - 1");
	o.stack_size = ((size_t)1 << 30) + 1;
	expect_new_einval(&o, "stack_size 1 GiB + 1");
	o.stack_size = SIZE_MAX;
	expect_new_einval(&o, "stack_size SIZE_MAX");
}
END_TEST

/* Run one job on @pool and return its result. */
static ssize_t run_one(iop_pool *pool, intptr_t value)
{
	struct done_rec d;

	done_rec_init(&d);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, (void *)value,
				       done_record, &d));
	drain_until(pool, &d.calls, 1);
	return (ssize_t)load_long(&d.result);
}

START_TEST(test_destroy_new_accepts_null_and_zeroed_options)
{
	struct iop_options o;
	iop_pool *pool;

	pool = iop_pool_new(NULL);
	ck_assert_ptr_nonnull(pool);
	ck_assert_int_eq(run_one(pool, 11), 11);
	iop_pool_destroy(pool);

	memset(&o, 0, sizeof(o));
	pool = iop_pool_new(&o);
	ck_assert_ptr_nonnull(pool);
	ck_assert_int_eq(run_one(pool, 12), 12);
	/* The pool keeps no pointer to the options. */
	o.threads = 1000000;
	o.reserved[0] = 5;
	ck_assert_int_eq(run_one(pool, 13), 13);
	iop_pool_destroy(pool);

	/* The limits themselves are accepted. */
	memset(&o, 0, sizeof(o));
	o.threads = 1;
	o.stack_size = 16 * 1024;
	pool = iop_pool_new(&o);
	ck_assert_ptr_nonnull(pool);
	ck_assert_int_eq(run_one(pool, 14), 14);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_destroy_idle_pool)
{
	for (unsigned threads = 0; threads <= 8; threads += 4) {
		iop_pool *pool = pool_new(threads);
		int fd = iop_pool_fd(pool);

		ck_assert_int_ge(fd, 0);
		iop_pool_destroy(pool);
		/* Its descriptor is closed (nothing here opens another). */
		errno = 0;
		ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
		ck_assert_int_eq(errno, EBADF);
	}
	/* Also straight after a job. */
	{
		iop_pool *pool = pool_new(2);

		ck_assert_int_eq(run_one(pool, 5), 5);
		iop_pool_destroy(pool);
	}
}
END_TEST

START_TEST(test_destroy_null_does_nothing)
{
	errno = ENOTTY;
	iop_pool_destroy(NULL);
	ck_assert_int_eq(errno, ENOTTY);
}
END_TEST

/* A job whose work and callback both record what they saw. */
struct djob {
	ssize_t want;
	atomic_int ran;
	atomic_int calls;
	atomic_int off_thread;
	atomic_long result;
	sem_t *posted;		/* posted by the work function, if set */
};

static struct djob *djobs_new(size_t n)
{
	struct djob *d = calloc(n, sizeof(*d));

	ck_assert_ptr_nonnull(d);
	for (size_t i = 0; i < n; i++) {
		d[i].want = (ssize_t)i;
		atomic_init(&d[i].ran, 0);
		atomic_init(&d[i].calls, 0);
		atomic_init(&d[i].off_thread, 0);
		atomic_init(&d[i].result, 0);
		d[i].posted = NULL;
	}
	return d;
}

static ssize_t djob_work(void *ctx)
{
	struct djob *d = ctx;

	atomic_fetch_add(&d->ran, 1);
	if (d->posted != NULL)
		sem_post(d->posted);
	return d->want;
}

static void djob_done(iop_job *job, ssize_t result, void *arg)
{
	struct djob *d = arg;

	(void)job;
	if (!on_test_thread())
		atomic_fetch_add(&d->off_thread, 1);
	atomic_store(&d->result, (long)result);
	atomic_fetch_add(&d->calls, 1);
}

/*
 * Every worker is held by a gate and 5,000 jobs wait in the queue when
 * destroy begins.  Destroy blocks until the running jobs finish, so the
 * gate is opened by a helper thread, told to just before destroy is
 * called.  Each job must end exactly once: cancelled ones with -ECANCELED
 * and their work never run, the others with their real result.
 *
 * The helper opens the gate once it sees the test thread asleep, which
 * after telling it can only be inside destroy: then every queued job was
 * still queued when destroy began and must be cancelled.  (If it never
 * saw that, only the exactly-once invariant is asserted.)
 */
START_TEST(test_destroy_cancels_queued_jobs)
{
	enum { THREADS = 4, N = 5000 };
	iop_pool *pool = pool_new(THREADS);
	struct djob *d = djobs_new(N);
	struct held h[THREADS];
	struct done_rec hd[THREADS];
	struct opener o;
	struct gate g;
	sem_t entered;
	int cancelled = 0, completed = 0, bad = 0;
	bool strict;

	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	for (int i = 0; i < THREADS; i++) {
		held_init(&h[i], &g, &entered, 1000 + i);
		done_rec_init(&hd[i]);
		ck_assert_ptr_nonnull(iop_call(pool, held_work, &h[i],
					       done_record, &hd[i]));
	}
	sem_wait_n(&entered, THREADS);
	for (size_t i = 0; i < N; i++)
		ck_assert_ptr_nonnull(iop_call(pool, djob_work, &d[i],
					       djob_done, &d[i]));
	opener_start(&o, &g, gettid_compat());
	opener_go(&o);
	iop_pool_destroy(pool);
	strict = opener_join(&o);

	for (int i = 0; i < THREADS; i++) {
		ck_assert_int_eq(load_int(&hd[i].calls), 1);
		ck_assert_int_eq(load_long(&hd[i].result), 1000 + i);
		ck_assert_int_eq(load_int(&hd[i].off_thread), 0);
		ck_assert_int_eq(load_int(&h[i].ran), 1);
	}
	for (size_t i = 0; i < N; i++) {
		long r = load_long(&d[i].result);
		int ran = load_int(&d[i].ran);

		if (load_int(&d[i].calls) != 1 ||
		    load_int(&d[i].off_thread) != 0)
			bad++;
		else if (r == -ECANCELED && ran == 0)
			cancelled++;
		else if (r == (long)i && ran == 1)
			completed++;
		else
			bad++;
	}
	ck_assert_int_eq(bad, 0);
	ck_assert_int_eq(cancelled + completed, N);
	if (strict)
		ck_assert_int_eq(cancelled, N);
	sem_destroy(&entered);
	gate_destroy(&g);
	free(d);
}
END_TEST

/*
 * Jobs that have run but whose callbacks were never polled: destroy runs
 * each callback once, on the calling thread, with the real result.
 */
START_TEST(test_destroy_runs_due_callbacks)
{
	enum { N = 200 };
	iop_pool *pool = pool_new(4);
	struct djob *d = djobs_new(N);
	sem_t ran;
	int total = 0;

	ck_assert_int_eq(sem_init(&ran, 0, 0), 0);
	for (size_t i = 0; i < N; i++) {
		d[i].posted = &ran;
		ck_assert_ptr_nonnull(iop_call(pool, djob_work, &d[i],
					       djob_done, &d[i]));
	}
	/* Every work function has run, so none can be cancelled. */
	sem_wait_n(&ran, N);
	for (size_t i = 0; i < N; i++)
		total += load_int(&d[i].calls);
	ck_assert_int_eq(total, 0);
	iop_pool_destroy(pool);
	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&d[i].calls), 1);
		ck_assert_int_eq(load_int(&d[i].ran), 1);
		ck_assert_int_eq(load_long(&d[i].result), (long)i);
		ck_assert_int_eq(load_int(&d[i].off_thread), 0);
	}
	sem_destroy(&ran);
	free(d);
}
END_TEST

/* A callback that tries to submit while destroy runs it. */
struct shut {
	iop_pool *pool;
	struct done_rec stray;	/* callbacks of submits that went in */
	atomic_int calls;
	atomic_int off_thread;
	int call_null, call_errno;
	int future_null, future_errno;
	int read_null, read_errno;
	char buf[4];
};

static void shut_done(iop_job *job, ssize_t result, void *arg)
{
	struct shut *s = arg;
	iop_job *j;

	(void)job;
	(void)result;
	if (!on_test_thread())
		atomic_fetch_add(&s->off_thread, 1);
	errno = 0;
	j = iop_call(s->pool, work_return_ctx, NULL, done_record, &s->stray);
	s->call_null = j == NULL;
	s->call_errno = errno;
	errno = 0;
	j = iop_call(s->pool, work_return_ctx, NULL, NULL, NULL);
	s->future_null = j == NULL;
	s->future_errno = errno;
	errno = 0;
	j = iop_read(s->pool, 0, s->buf, sizeof(s->buf), 0, done_record,
		     &s->stray);
	s->read_null = j == NULL;
	s->read_errno = errno;
	atomic_fetch_add(&s->calls, 1);
}

START_TEST(test_destroy_callback_submit_gets_eshutdown)
{
	enum { N = 20 };
	iop_pool *pool = pool_new(2);
	struct shut *s = calloc(N, sizeof(*s));

	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < N; i++) {
		s[i].pool = pool;
		done_rec_init(&s[i].stray);
		atomic_init(&s[i].calls, 0);
		atomic_init(&s[i].off_thread, 0);
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
					       shut_done, &s[i]));
	}
	/* Never polled: every callback runs inside destroy. */
	iop_pool_destroy(pool);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&s[i].calls), 1);
		ck_assert_int_eq(load_int(&s[i].off_thread), 0);
		ck_assert(s[i].call_null);
		ck_assert_int_eq(s[i].call_errno, ESHUTDOWN);
		ck_assert(s[i].future_null);
		ck_assert_int_eq(s[i].future_errno, ESHUTDOWN);
		ck_assert(s[i].read_null);
		ck_assert_int_eq(s[i].read_errno, ESHUTDOWN);
		ck_assert_int_eq(load_int(&s[i].stray.calls), 0);
	}
	free(s);
}
END_TEST

/* A callback that tries to destroy its own pool. */
struct selfdestroy {
	iop_pool *pool;
	atomic_int calls;
	int err;
};

static void selfdestroy_done(iop_job *job, ssize_t result, void *arg)
{
	struct selfdestroy *s = arg;

	(void)job;
	(void)result;
	errno = 0;
	iop_pool_destroy(s->pool);
	s->err = errno;
	atomic_fetch_add(&s->calls, 1);
}

START_TEST(test_destroy_inside_callback_is_edeadlk)
{
	iop_pool *pool = pool_new(2);
	struct selfdestroy s1 = { .pool = pool, .err = 0 };
	struct selfdestroy s2 = { .pool = pool, .err = 0 };

	atomic_init(&s1.calls, 0);
	atomic_init(&s2.calls, 0);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       selfdestroy_done, &s1));
	drain_until(pool, &s1.calls, 1);
	ck_assert_int_eq(s1.err, EDEADLK);
	/* The pool is untouched and still works. */
	ck_assert_int_eq(fcntl(iop_pool_fd(pool), F_GETFD) & FD_CLOEXEC,
			 FD_CLOEXEC);
	ck_assert_int_eq(run_one(pool, 99), 99);
	/* Also refused when the callback runs inside destroy itself. */
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       selfdestroy_done, &s2));
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&s1.calls), 1);
	ck_assert_int_eq(load_int(&s2.calls), 1);
	ck_assert_int_eq(s2.err, EDEADLK);
}
END_TEST

/* A thread awaiting one queued future across destroy. */
struct fawaiter {
	iop_job *job;
	sem_t *ready;
	atomic_int tid;
	ssize_t result;
	pthread_t thread;
};

static void *fawaiter_main(void *arg)
{
	struct fawaiter *a = arg;

	atomic_store(&a->tid, (int)gettid_compat());
	sem_post(a->ready);
	a->result = iop_await(a->job);
	return NULL;
}

/*
 * Futures queued behind held workers, each awaited by its own thread,
 * when destroy begins: each awaiter gets -ECANCELED (the work never ran)
 * or the real result, and none hangs.
 *
 * A future is only safe to await until destroy releases it, so the test
 * makes sure the awaiters are asleep (inside iop_await(), the only place
 * they can sleep after posting "ready") before calling destroy.  As in
 * test_destroy_cancels_queued_jobs, the gate opens once the test thread
 * is asleep in destroy, and then every queued future must be cancelled.
 */
START_TEST(test_destroy_wakes_awaiters_of_queued_futures)
{
	enum { THREADS = 2, N = 6 };
	iop_pool *pool = pool_new(THREADS);
	struct djob *d = djobs_new(N);
	struct fawaiter a[N];
	struct held h[THREADS];
	struct done_rec hd;
	struct opener o;
	struct gate g;
	sem_t entered, ready;
	int cancelled = 0, completed = 0;
	bool strict;

	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	ck_assert_int_eq(sem_init(&ready, 0, 0), 0);
	done_rec_init(&hd);
	for (int i = 0; i < THREADS; i++) {
		held_init(&h[i], &g, &entered, 500 + i);
		ck_assert_ptr_nonnull(iop_call(pool, held_work, &h[i],
					       done_record, &hd));
	}
	sem_wait_n(&entered, THREADS);
	for (int i = 0; i < N; i++) {
		a[i].job = iop_call(pool, djob_work, &d[i], NULL, NULL);
		ck_assert_ptr_nonnull(a[i].job);
		a[i].ready = &ready;
		a[i].result = -12345;
		atomic_init(&a[i].tid, 0);
		ck_assert_int_eq(pthread_create(&a[i].thread, NULL,
						fawaiter_main, &a[i]), 0);
	}
	sem_wait_n(&ready, N);
	for (int i = 0; i < N; i++)
		(void)thread_seen_asleep((pid_t)load_int(&a[i].tid), 5000);

	opener_start(&o, &g, gettid_compat());
	opener_go(&o);
	iop_pool_destroy(pool);
	strict = opener_join(&o);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(pthread_join(a[i].thread, NULL), 0);

	ck_assert_int_eq(load_int(&hd.calls), THREADS);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(load_int(&h[i].ran), 1);
	for (int i = 0; i < N; i++) {
		int ran = load_int(&d[i].ran);

		if (a[i].result == -ECANCELED && ran == 0)
			cancelled++;
		else if (a[i].result == i && ran == 1)
			completed++;
		else
			ck_abort_msg("future %d: result %zd, ran %d", i,
				     a[i].result, ran);
	}
	ck_assert_int_eq(cancelled + completed, N);
	if (strict)
		ck_assert_int_eq(cancelled, N);
	sem_destroy(&entered);
	sem_destroy(&ready);
	gate_destroy(&g);
	free(d);
}
END_TEST

static Suite *destroy_suite(void)
{
	Suite *s = suite_create("destroy");
	TCase *tc;

	tc = tcase_new("new");
	tcase_add_test(tc, test_destroy_new_rejects_bad_options);
	tcase_add_test(tc, test_destroy_new_accepts_null_and_zeroed_options);
	suite_add_tcase(s, tc);

	tc = tcase_new("idle");
	tcase_add_test(tc, test_destroy_idle_pool);
	tcase_add_test(tc, test_destroy_null_does_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_new("busy");
	tcase_add_test(tc, test_destroy_cancels_queued_jobs);
	tcase_add_test(tc, test_destroy_runs_due_callbacks);
	tcase_add_test(tc, test_destroy_callback_submit_gets_eshutdown);
	tcase_add_test(tc, test_destroy_inside_callback_is_edeadlk);
	tcase_add_test(tc, test_destroy_wakes_awaiters_of_queued_futures);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(destroy_suite());
}
