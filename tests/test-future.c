/*
 * Suite "future": jobs submitted without a callback, collected with
 * iop_await() on any thread (also inside a callback), invisible to the
 * pool descriptor and to iop_poll(), and released by destroy when never
 * awaited; iop_await_timeout() (kept on timeout, 0 only looks, EINVAL),
 * and -EDEADLK for a future held in the caller's own open batch.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "helpers.h"

#define SEED 0x5eed0001u

/* A call job that returns @want, counts its runs, posts @posted if set. */
struct fjob {
	ssize_t want;
	atomic_int ran;
	sem_t *posted;
};

static struct fjob *fjobs_new(size_t n)
{
	struct fjob *f = calloc(n, sizeof(*f));

	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < n; i++) {
		f[i].want = (ssize_t)i;
		atomic_init(&f[i].ran, 0);
	}
	return f;
}

static ssize_t fjob_work(void *ctx)
{
	struct fjob *f = ctx;

	atomic_fetch_add(&f->ran, 1);
	if (f->posted != NULL)
		sem_post(f->posted);
	return f->want;
}

static size_t fjobs_not_ran_once(struct fjob *f, size_t n)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		bad += load_int(&f[i].ran) != 1;
	return bad;
}

START_TEST(test_future_read_await_returns_result)
{
	iop_pool *pool = pool_new(0);
	int fd = make_pattern_file(100000, SEED);
	unsigned char a[1000], b[1000], c[1000], d[10];
	iop_job *ja, *jb, *jc, *jd;

	memset(c, 0xa5, sizeof(c));
	ja = iop_read(pool, fd, a, sizeof(a), 0, NULL, NULL);
	jb = iop_read(pool, fd, b, sizeof(b), 99500, NULL, NULL);
	jc = iop_read(pool, fd, c, sizeof(c), 100000, NULL, NULL);
	jd = iop_read(pool, -1, d, sizeof(d), 0, NULL, NULL);
	ck_assert_ptr_nonnull(ja);
	ck_assert_ptr_nonnull(jb);
	ck_assert_ptr_nonnull(jc);
	ck_assert_ptr_nonnull(jd);
	/* Awaited out of submission order on purpose. */
	ck_assert_int_eq(iop_await(jc), 0);
	ck_assert_int_eq(iop_await(jb), 500);
	ck_assert_int_eq(iop_await(jd), -EBADF);
	ck_assert_int_eq(iop_await(ja), 1000);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(a[i], pattern_byte(SEED, i));
	for (int i = 0; i < 500; i++)
		ck_assert_int_eq(b[i], pattern_byte(SEED, 99500 + i));
	ck_assert_int_eq(c[0], 0xa5);
	iop_pool_destroy(pool);
	close(fd);
}
END_TEST

START_TEST(test_future_call_await_returns_result)
{
	static const ssize_t values[] = { 4242, 1, 0, -ENOENT, -EPERM };
	enum { N = sizeof(values) / sizeof(values[0]) };
	iop_pool *pool = pool_new(0);
	struct fjob *f = fjobs_new(N);
	iop_job *jobs[N];

	for (size_t i = 0; i < N; i++) {
		f[i].want = values[i];
		jobs[i] = iop_call(pool, fjob_work, &f[i], NULL, NULL);
		ck_assert_ptr_nonnull(jobs[i]);
	}
	for (size_t i = 0; i < N; i++)
		ck_assert_int_eq(iop_await(jobs[i]), values[i]);
	ck_assert_int_eq(fjobs_not_ran_once(f, N), 0);
	iop_pool_destroy(pool);
	free(f);
}
END_TEST

/* A thread awaiting a slice of futures and checking their results. */
struct awaiter {
	iop_job **jobs;
	struct fjob *f;
	size_t n;
	atomic_int wrong;
	atomic_int awaited;
};

static void *awaiter_thread(void *arg)
{
	struct awaiter *a = arg;

	for (size_t i = 0; i < a->n; i++) {
		ssize_t r = iop_await(a->jobs[i]);

		if (r != a->f[i].want)
			atomic_fetch_add(&a->wrong, 1);
		atomic_fetch_add(&a->awaited, 1);
	}
	return NULL;
}

START_TEST(test_future_awaited_by_four_threads)
{
	enum { THREADS = 4, PER = 1000, N = THREADS * PER };
	iop_pool *pool = pool_new(4);
	struct fjob *f = fjobs_new(N);
	iop_job **jobs = calloc(N, sizeof(*jobs));
	struct awaiter a[THREADS];
	pthread_t t[THREADS];

	ck_assert_ptr_nonnull(jobs);
	/* Submitted on the test thread, round robin between the slices. */
	for (size_t i = 0; i < PER; i++) {
		for (size_t k = 0; k < THREADS; k++) {
			size_t j = k * PER + i;

			jobs[j] = iop_call(pool, fjob_work, &f[j], NULL, NULL);
			ck_assert_ptr_nonnull(jobs[j]);
		}
	}
	for (int k = 0; k < THREADS; k++) {
		a[k].jobs = jobs + k * PER;
		a[k].f = f + k * PER;
		a[k].n = PER;
		atomic_init(&a[k].wrong, 0);
		atomic_init(&a[k].awaited, 0);
		ck_assert_int_eq(pthread_create(&t[k], NULL, awaiter_thread,
						&a[k]), 0);
	}
	for (int k = 0; k < THREADS; k++) {
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
		ck_assert_int_eq(load_int(&a[k].wrong), 0);
		ck_assert_int_eq(load_int(&a[k].awaited), PER);
	}
	ck_assert_int_eq(fjobs_not_ran_once(f, N), 0);
	/* Futures never reach the callback queue. */
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	free(jobs);
	free(f);
}
END_TEST

/* Hand-off: a producer submits, a consumer awaits each as it arrives. */
struct handoff {
	iop_pool *pool;
	struct fjob *f;
	iop_job **jobs;		/* jobs[i] set before ready is posted */
	size_t n;
	sem_t ready;
	atomic_int submit_failed;
	atomic_int wrong;
	atomic_int awaited;
};

static void *producer_thread(void *arg)
{
	struct handoff *h = arg;

	for (size_t i = 0; i < h->n; i++) {
		h->jobs[i] = iop_call(h->pool, fjob_work, &h->f[i], NULL, NULL);
		if (h->jobs[i] == NULL)
			atomic_fetch_add(&h->submit_failed, 1);
		sem_post(&h->ready);
	}
	return NULL;
}

static void *consumer_thread(void *arg)
{
	struct handoff *h = arg;

	for (size_t i = 0; i < h->n; i++) {
		sem_wait_n(&h->ready, 1);
		if (h->jobs[i] == NULL)
			continue;
		if (iop_await(h->jobs[i]) != h->f[i].want)
			atomic_fetch_add(&h->wrong, 1);
		atomic_fetch_add(&h->awaited, 1);
	}
	return NULL;
}

START_TEST(test_future_submitted_and_awaited_on_other_threads)
{
	enum { N = 2000 };
	iop_pool *pool = pool_new(3);
	struct handoff h;
	pthread_t p, c;

	h.pool = pool;
	h.f = fjobs_new(N);
	h.jobs = calloc(N, sizeof(*h.jobs));
	h.n = N;
	ck_assert_ptr_nonnull(h.jobs);
	ck_assert_int_eq(sem_init(&h.ready, 0, 0), 0);
	atomic_init(&h.submit_failed, 0);
	atomic_init(&h.wrong, 0);
	atomic_init(&h.awaited, 0);
	ck_assert_int_eq(pthread_create(&c, NULL, consumer_thread, &h), 0);
	ck_assert_int_eq(pthread_create(&p, NULL, producer_thread, &h), 0);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
	ck_assert_int_eq(pthread_join(c, NULL), 0);
	ck_assert_int_eq(load_int(&h.submit_failed), 0);
	ck_assert_int_eq(load_int(&h.wrong), 0);
	ck_assert_int_eq(load_int(&h.awaited), N);
	ck_assert_int_eq(fjobs_not_ran_once(h.f, N), 0);
	iop_pool_destroy(pool);
	sem_destroy(&h.ready);
	free(h.jobs);
	free(h.f);
}
END_TEST

START_TEST(test_future_await_null_is_einval)
{
	ck_assert_int_eq(iop_await(NULL), -EINVAL);
}
END_TEST

/*
 * A job with a callback cannot be awaited, neither while it runs nor
 * once it finished and waits for its callback; its callback still runs
 * exactly once, with the real result.
 */
START_TEST(test_future_await_callback_job_is_einval)
{
	iop_pool *pool = pool_new(2);
	struct done_rec d1, d2;
	struct held h;
	struct gate g;
	iop_job *held_job, *done_job;

	gate_init(&g);
	done_rec_init(&d1);
	done_rec_init(&d2);
	held_init(&h, &g, NULL, 31);
	held_job = iop_call(pool, held_work, &h, done_record, &d1);
	ck_assert_ptr_nonnull(held_job);
	/* Still held by the gate, so the handle is alive. */
	ck_assert_int_eq(iop_await(held_job), -EINVAL);

	done_job = iop_call(pool, work_return_ctx, (void *)(intptr_t)32,
			    done_record, &d2);
	ck_assert_ptr_nonnull(done_job);
	/* Finished, callback not run yet: alive too. */
	ck_assert_int_eq(fd_readable(iop_pool_fd(pool), TEST_WAIT_MS), 1);
	ck_assert_int_eq(iop_await(done_job), -EINVAL);
	drain_until(pool, &d2.calls, 1);
	ck_assert_int_eq(load_long(&d2.result), 32);

	ck_assert_int_eq(load_int(&d1.calls), 0);
	gate_open(&g);
	drain_until(pool, &d1.calls, 1);
	ck_assert_int_eq(load_long(&d1.result), 31);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d1.calls), 1);
	ck_assert_int_eq(load_int(&d2.calls), 1);
	gate_destroy(&g);
}
END_TEST

static ssize_t post_work(void *ctx)
{
	sem_post(ctx);
	return 0;
}

/*
 * A finished future leaves the descriptor unreadable and iop_poll() with
 * nothing to do.  One worker only: once the second future's work function
 * runs, the worker is done with the first.
 */
START_TEST(test_future_invisible_to_fd_and_poll)
{
	iop_pool *pool = pool_new(1);
	int fd = iop_pool_fd(pool);
	struct fjob f = { .want = 7, .posted = NULL };
	iop_job *jf, *js;
	sem_t second;

	atomic_init(&f.ran, 0);
	ck_assert_int_eq(sem_init(&second, 0, 0), 0);
	jf = iop_call(pool, fjob_work, &f, NULL, NULL);
	ck_assert_ptr_nonnull(jf);
	js = iop_call(pool, post_work, &second, NULL, NULL);
	ck_assert_ptr_nonnull(js);
	sem_wait_n(&second, 1);
	ck_assert_int_eq(load_int(&f.ran), 1);
	ck_assert_int_eq(fd_readable(fd, 0), 0);
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(iop_wait(pool, 0), 0);
	/* And a wait with a timeout is not ended by it either. */
	ck_assert_int_eq(iop_wait(pool, 30), 0);
	ck_assert_int_eq(iop_await(jf), 7);
	ck_assert_int_eq(iop_await(js), 0);
	ck_assert_int_eq(fd_readable(fd, 0), 0);
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	sem_destroy(&second);
}
END_TEST

/* A callback that submits futures and awaits them on the spot. */
struct nested {
	iop_pool *pool;
	int fd;
	size_t idx;
	ssize_t call_result;
	ssize_t read_result;
	unsigned char buf[16];
	atomic_int calls;
	atomic_int *total;
};

static void nested_done(iop_job *job, ssize_t result, void *arg)
{
	struct nested *n = arg;
	iop_job *fc, *fr;

	(void)job;
	(void)result;
	fc = iop_call(n->pool, work_return_ctx,
		      (void *)(intptr_t)(n->idx * 3), NULL, NULL);
	fr = iop_read(n->pool, n->fd, n->buf, sizeof(n->buf),
		      (int64_t)n->idx * 100, NULL, NULL);
	n->call_result = fc ? iop_await(fc) : -1000;
	n->read_result = fr ? iop_await(fr) : -1000;
	atomic_fetch_add(&n->calls, 1);
	atomic_fetch_add(n->total, 1);
}

START_TEST(test_future_awaited_inside_callback)
{
	enum { N = 10 };
	/* One worker: the awaited futures must still get to run. */
	iop_pool *pool = pool_new(1);
	int fd = make_pattern_file(100000, SEED);
	struct nested *n = calloc(N, sizeof(*n));
	atomic_int total;

	ck_assert_ptr_nonnull(n);
	atomic_init(&total, 0);
	for (size_t i = 0; i < N; i++) {
		n[i].pool = pool;
		n[i].fd = fd;
		n[i].idx = i;
		n[i].total = &total;
		atomic_init(&n[i].calls, 0);
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
					       nested_done, &n[i]));
	}
	drain_until(pool, &total, N);
	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&n[i].calls), 1);
		ck_assert_int_eq(n[i].call_result, (ssize_t)i * 3);
		ck_assert_int_eq(n[i].read_result, 16);
		for (int k = 0; k < 16; k++)
			ck_assert_int_eq(n[i].buf[k],
					 pattern_byte(SEED, i * 100 + k));
	}
	iop_pool_destroy(pool);
	free(n);
	close(fd);
}
END_TEST

/*
 * Futures never awaited (finished, running and still queued) are all
 * released by destroy: the sanitizer/valgrind runs report any leak.
 * Running ones finish; finished ones ran once; queued ones never (at
 * most once if the opener could not see the test thread asleep).
 */
START_TEST(test_future_unawaited_released_by_destroy)
{
	enum { THREADS = 2, DONE = 50, QUEUED = 50 };
	iop_pool *pool = pool_new(THREADS);
	struct fjob *f = fjobs_new(DONE + QUEUED);
	struct held h[THREADS];
	struct opener o;
	struct gate g;
	sem_t ran, entered;
	bool strict;

	ck_assert_int_eq(sem_init(&ran, 0, 0), 0);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	gate_init(&g);
	for (size_t i = 0; i < DONE; i++) {
		f[i].posted = &ran;
		ck_assert_ptr_nonnull(iop_call(pool, fjob_work, &f[i], NULL,
					       NULL));
	}
	sem_wait_n(&ran, DONE);
	for (int i = 0; i < THREADS; i++) {
		held_init(&h[i], &g, &entered, i);
		ck_assert_ptr_nonnull(iop_call(pool, held_work, &h[i], NULL,
					       NULL));
	}
	sem_wait_n(&entered, THREADS);
	for (size_t i = DONE; i < DONE + QUEUED; i++)
		ck_assert_ptr_nonnull(iop_call(pool, fjob_work, &f[i], NULL,
					       NULL));
	/* The gate opens once this thread is asleep in destroy. */
	opener_start(&o, &g, gettid_compat());
	opener_go(&o);
	iop_pool_destroy(pool);
	strict = opener_join(&o);
	for (size_t i = 0; i < DONE; i++)
		ck_assert_int_eq(load_int(&f[i].ran), 1);
	for (size_t i = DONE; i < DONE + QUEUED; i++) {
		int runs = load_int(&f[i].ran);
		int most = strict ? 0 : 1;

		ck_assert_int_le(runs, most);
	}
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(load_int(&h[i].ran), 1);
	sem_destroy(&ran);
	sem_destroy(&entered);
	gate_destroy(&g);
	free(f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Futures with a deadline, and futures held in a batch.               */

/*
 * A future held by the gate: a 50 ms await gives -ETIMEDOUT after at
 * least 50 ms and keeps the job; once the gate opens, awaits without
 * limit and with a long limit return 0 and the results.
 */
START_TEST(test_await_timeout_keeps_job)
{
	iop_pool *pool = pool_new(2);
	struct held h1, h2;
	struct gate g;
	sem_t entered;
	iop_job *f1, *f2;
	ssize_t r = -1000;
	int64_t t0, spent;

	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	held_init(&h1, &g, &entered, 11);
	held_init(&h2, &g, &entered, 22);
	f1 = iop_call(pool, held_work, &h1, NULL, NULL);
	f2 = iop_call(pool, held_work, &h2, NULL, NULL);
	ck_assert_ptr_nonnull(f1);
	ck_assert_ptr_nonnull(f2);
	sem_wait_n(&entered, 2);

	t0 = now_ns();
	ck_assert_int_eq(iop_await_timeout(f1, 50, &r), -ETIMEDOUT);
	spent = now_ns() - t0;
	ck_assert_int_ge(spent, 50 * 1000000);
	ck_assert_int_eq(r, -1000);
	/* Kept: still a live future, still running. */
	ck_assert_int_eq(iop_job_state(f1), IOP_RUNNING);
	ck_assert_int_eq(iop_await_timeout(f2, 1, &r), -ETIMEDOUT);
	ck_assert_int_eq(r, -1000);

	gate_open(&g);
	ck_assert_int_eq(iop_await_timeout(f1, -1, &r), 0);
	ck_assert_int_eq(r, 11);
	r = -1000;
	ck_assert_int_eq(iop_await_timeout(f2, TEST_WAIT_MS, &r), 0);
	ck_assert_int_eq(r, 22);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&h1.ran), 1);
	ck_assert_int_eq(load_int(&h2.ran), 1);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * Timeout 0 only looks: -ETIMEDOUT at once for a future that has not
 * ended (running, and queued behind it), 0 and the result once it has.
 */
START_TEST(test_await_timeout_zero_only_looks)
{
	iop_pool *pool = pool_new(1);
	struct held h;
	struct gate g;
	sem_t entered;
	iop_job *fr, *fq;
	ssize_t r = -1000;
	int64_t t0;

	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	held_init(&h, &g, &entered, 5);
	fr = iop_call(pool, held_work, &h, NULL, NULL);
	ck_assert_ptr_nonnull(fr);
	sem_wait_n(&entered, 1);
	fq = iop_call(pool, work_return_ctx, (void *)(intptr_t)6, NULL, NULL);
	ck_assert_ptr_nonnull(fq);

	t0 = now_ns();
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(iop_await_timeout(fr, 0, &r), -ETIMEDOUT);
		ck_assert_int_eq(iop_await_timeout(fq, 0, &r), -ETIMEDOUT);
	}
	/* 200 looks, none of which may wait: far below the 5 s allowed. */
	ck_assert_int_lt(now_ns() - t0, (int64_t)TEST_WAIT_MS * 1000000 / 4);
	ck_assert_int_eq(r, -1000);
	ck_assert_int_eq(iop_job_state(fq), IOP_QUEUED);

	gate_open(&g);
	ck_assert(job_state_reached(fq, IOP_DONE, TEST_WAIT_MS));
	ck_assert(job_state_reached(fr, IOP_DONE, TEST_WAIT_MS));
	ck_assert_int_eq(iop_await_timeout(fq, 0, &r), 0);
	ck_assert_int_eq(r, 6);
	ck_assert_int_eq(iop_await_timeout(fr, 0, &r), 0);
	ck_assert_int_eq(r, 5);
	iop_pool_destroy(pool);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * -EINVAL: timeout below -1, result NULL, job NULL, a callback job.  The
 * refused calls leave the jobs alone: the future is awaited afterwards,
 * the callback job's callback runs once with its result.
 */
START_TEST(test_await_timeout_einval)
{
	iop_pool *pool = pool_new(1);
	struct done_rec d;
	struct held h;
	struct gate g;
	sem_t entered;
	iop_job *f, *cb;
	ssize_t r = -1000;

	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&d);
	held_init(&h, &g, &entered, 3);
	cb = iop_call(pool, held_work, &h, done_record, &d);
	ck_assert_ptr_nonnull(cb);
	sem_wait_n(&entered, 1);
	f = iop_call(pool, work_return_ctx, (void *)(intptr_t)4, NULL, NULL);
	ck_assert_ptr_nonnull(f);

	ck_assert_int_eq(iop_await_timeout(NULL, 0, &r), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(NULL, -1, &r), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(f, -2, &r), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(f, -1000, &r), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(f, 10, NULL), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(f, -1, NULL), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(cb, 0, &r), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(cb, 10, &r), -EINVAL);
	ck_assert_int_eq(iop_await_timeout(cb, -1, &r), -EINVAL);
	ck_assert_int_eq(r, -1000);
	ck_assert_int_eq(iop_job_state(f), IOP_QUEUED);

	gate_open(&g);
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_long(&d.result), 3);
	ck_assert_int_eq(iop_await_timeout(f, -1, &r), 0);
	ck_assert_int_eq(r, 4);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 1);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * A future held in the calling thread's own open batch could never
 * start: iop_await() and iop_await_timeout() (any timeout) refuse it with
 * -EDEADLK, also after an inner batch end, and keep it; after the
 * outermost end it is awaited normally.
 */
START_TEST(test_await_own_batch_is_edeadlk)
{
	iop_pool *pool = pool_new(2);
	iop_job *f, *g;
	ssize_t r = -1000;

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	f = iop_call(pool, work_return_ctx, (void *)(intptr_t)12, NULL, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(iop_await(f), -EDEADLK);
	ck_assert_int_eq(iop_await_timeout(f, 0, &r), -EDEADLK);
	ck_assert_int_eq(iop_await_timeout(f, 50, &r), -EDEADLK);
	ck_assert_int_eq(iop_await_timeout(f, -1, &r), -EDEADLK);
	ck_assert_int_eq(r, -1000);

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	g = iop_call(pool, work_return_ctx, (void *)(intptr_t)13, NULL, NULL);
	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(iop_batch_end(pool), 0);
	/* The inner end handed nothing over. */
	ck_assert_int_eq(iop_await(g), -EDEADLK);
	ck_assert_int_eq(iop_await_timeout(f, -1, &r), -EDEADLK);
	ck_assert_int_eq(iop_job_state(f), IOP_QUEUED);
	ck_assert_int_eq(iop_job_state(g), IOP_QUEUED);
	ck_assert_int_eq(iop_batch_end(pool), 2);

	ck_assert_int_eq(iop_await_timeout(f, TEST_WAIT_MS, &r), 0);
	ck_assert_int_eq(r, 12);
	ck_assert_int_eq(iop_await(g), 13);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * Held in another thread's batch is not a deadlock for this thread: the
 * await times out (the job cannot start yet), then succeeds once that
 * thread ends its batch.
 */
START_TEST(test_await_other_threads_batch_times_out)
{
	iop_pool *pool = pool_new(2);
	struct holder h;
	ssize_t r = -1000;

	holder_start(&h, pool, 21);
	ck_assert_int_eq(h.begin_ret, 0);
	ck_assert_ptr_nonnull(h.job);
	ck_assert_int_eq(iop_await_timeout(h.job, 0, &r), -ETIMEDOUT);
	ck_assert_int_eq(iop_await_timeout(h.job, 30, &r), -ETIMEDOUT);
	ck_assert_int_eq(iop_job_state(h.job), IOP_QUEUED);
	holder_release(&h);
	ck_assert_int_eq(iop_await_timeout(h.job, TEST_WAIT_MS, &r), 0);
	ck_assert_int_eq(r, 21);
	holder_join(&h);
	ck_assert_int_eq(h.end_ret, 1);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * The same while this thread has a batch of its own open on the pool:
 * the future is held, but in the other thread's batch, not in the
 * caller's, so it is still no deadlock (-ETIMEDOUT, not -EDEADLK); and
 * the caller's own held future is still refused with -EDEADLK.
 */
START_TEST(test_await_other_threads_batch_with_own_open)
{
	iop_pool *pool = pool_new(2);
	struct holder h;
	ssize_t r = -1000;
	iop_job *mine;

	holder_start(&h, pool, 22);
	ck_assert_ptr_nonnull(h.job);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	mine = iop_call(pool, work_return_ctx, (void *)(intptr_t)23, NULL,
			NULL);
	ck_assert_ptr_nonnull(mine);
	ck_assert_int_eq(iop_await_timeout(mine, 0, &r), -EDEADLK);
	ck_assert_int_eq(iop_await_timeout(h.job, 0, &r), -ETIMEDOUT);
	ck_assert_int_eq(iop_await_timeout(h.job, 30, &r), -ETIMEDOUT);
	ck_assert_int_eq(iop_batch_end(pool), 1);
	holder_release(&h);
	ck_assert_int_eq(iop_await_timeout(h.job, TEST_WAIT_MS, &r), 0);
	ck_assert_int_eq(r, 22);
	ck_assert_int_eq(iop_await(mine), 23);
	holder_join(&h);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * Give up waiting, then cancel: a queued future times out, is cancelled
 * (0) and then awaits -ECANCELED without its work running; a running one
 * times out, the cancel says -EBUSY, and its real result follows.
 */
START_TEST(test_await_timeout_then_cancel)
{
	iop_pool *pool = pool_new(1);
	struct fjob q = { .want = 8, .posted = NULL };
	struct held h;
	struct gate g;
	sem_t entered;
	iop_job *fr, *fq;
	ssize_t r = -1000;

	atomic_init(&q.ran, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	held_init(&h, &g, &entered, 9);
	fr = iop_call(pool, held_work, &h, NULL, NULL);
	ck_assert_ptr_nonnull(fr);
	sem_wait_n(&entered, 1);
	fq = iop_call(pool, fjob_work, &q, NULL, NULL);
	ck_assert_ptr_nonnull(fq);

	ck_assert_int_eq(iop_await_timeout(fq, 20, &r), -ETIMEDOUT);
	ck_assert_int_eq(iop_cancel(fq), 0);
	ck_assert_int_eq(iop_await_timeout(fq, 0, &r), 0);
	ck_assert_int_eq(r, -ECANCELED);

	r = -1000;
	ck_assert_int_eq(iop_await_timeout(fr, 20, &r), -ETIMEDOUT);
	ck_assert_int_eq(iop_cancel(fr), -EBUSY);
	ck_assert_int_eq(iop_await_timeout(fr, 0, &r), -ETIMEDOUT);
	gate_open(&g);
	ck_assert_int_eq(iop_await_timeout(fr, TEST_WAIT_MS, &r), 0);
	ck_assert_int_eq(r, 9);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&q.ran), 0);
	ck_assert_int_eq(load_int(&h.ran), 1);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * Inside a callback, a future submitted there is still pending (not yet
 * handed to the workers): a limited iop_await_timeout() must hand it over
 * and return 0 with its result, not wait out the limit.
 */
struct cb_await {
	iop_pool *pool;
	int ret;
	ssize_t result;
	atomic_int calls;
};

static void cb_await_done(iop_job *job, ssize_t result, void *arg)
{
	struct cb_await *c = arg;
	iop_job *f;

	(void)job;
	(void)result;
	f = iop_call(c->pool, work_return_ctx, (void *)(intptr_t)55, NULL,
		     NULL);
	c->result = -1000;
	c->ret = f ? iop_await_timeout(f, TEST_WAIT_MS, &c->result) : -1000;
	atomic_fetch_add(&c->calls, 1);
}

START_TEST(test_await_timeout_inside_callback)
{
	iop_pool *pool = pool_new(1);
	struct cb_await c;

	c.pool = pool;
	atomic_init(&c.calls, 0);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       cb_await_done, &c));
	drain_until(pool, &c.calls, 1);
	ck_assert_int_eq(c.ret, 0);
	ck_assert_int_eq(c.result, 55);
	iop_pool_destroy(pool);
}
END_TEST

static atomic_int timeout_alarms;

static void count_alarm(int sig)
{
	(void)sig;
	atomic_fetch_add(&timeout_alarms, 1);
}

/*
 * Signals do not cut a limited await short: with SIGALRM (a handler
 * without SA_RESTART) arriving every 10 ms on the test thread, the only
 * thread that takes it, a 200 ms await of a held future still lasts at
 * least 200 ms and says -ETIMEDOUT; an await without limit rides out
 * the signals too and returns the result once the gate opens.
 */
START_TEST(test_await_timeout_signals_do_not_cut_short)
{
	iop_pool *pool = pool_new(1);
	struct itimerval every = { .it_interval = { 0, 10000 },
				   .it_value = { 0, 10000 } };
	struct itimerval off;
	struct sigaction sa, old_sa;
	struct opener o;
	struct held h;
	struct gate g;
	sem_t entered;
	iop_job *f;
	ssize_t r = -1000;
	int64_t t0, spent;

	atomic_store(&timeout_alarms, 0);
	memset(&off, 0, sizeof(off));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = count_alarm;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, &old_sa), 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	held_init(&h, &g, &entered, 17);
	f = iop_call(pool, held_work, &h, NULL, NULL);
	ck_assert_ptr_nonnull(f);
	sem_wait_n(&entered, 1);

	ck_assert_int_eq(setitimer(ITIMER_REAL, &every, NULL), 0);
	t0 = now_ns();
	ck_assert_int_eq(iop_await_timeout(f, 200, &r), -ETIMEDOUT);
	spent = now_ns() - t0;
	ck_assert_int_ge(spent, 200 * 1000000);
	ck_assert_int_gt(load_int(&timeout_alarms), 0);
	ck_assert_int_eq(r, -1000);

	/* Opened only once this thread sleeps in the await, if seen. */
	opener_start(&o, &g, gettid_compat());
	opener_go(&o);
	ck_assert_int_eq(iop_await_timeout(f, -1, &r), 0);
	(void)opener_join(&o);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
	ck_assert_int_eq(r, 17);
	iop_pool_destroy(pool);
	ck_assert_int_eq(sigaction(SIGALRM, &old_sa, NULL), 0);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/* A thread that submits one future and awaits it. */
struct side_job {
	iop_pool *pool;
	ssize_t result;
};

static void *side_job_thread(void *arg)
{
	struct side_job *sj = arg;
	iop_job *f = iop_call(sj->pool, work_return_ctx, (void *)(intptr_t)77,
			      NULL, NULL);

	sj->result = f ? iop_await(f) : -1000;
	return NULL;
}

/*
 * Jobs submitted in a batch (nested once) stay held until the outermost
 * end: on a one-worker pool another thread's job, submitted later, runs
 * and completes first, while the held ones have not run and no callback
 * of theirs came.  The inner end hands over nothing; the outer end hands
 * over all three.
 */
START_TEST(test_batch_holds_until_outermost_end)
{
	iop_pool *pool = pool_new(1);
	struct fjob *f = fjobs_new(3);
	struct side_job sj = { .pool = pool, .result = 0 };
	struct done_rec d;
	iop_job *a, *b, *c;
	pthread_t t;

	done_rec_init(&d);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	a = iop_call(pool, fjob_work, &f[0], NULL, NULL);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	b = iop_call(pool, fjob_work, &f[1], NULL, NULL);
	c = iop_call(pool, fjob_work, &f[2], done_record, &d);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(iop_batch_end(pool), 0);

	ck_assert_int_eq(pthread_create(&t, NULL, side_job_thread, &sj), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(sj.result, 77);
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(load_int(&d.calls), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(load_int(&f[i].ran), 0);
	ck_assert_int_eq(iop_job_state(a), IOP_QUEUED);
	ck_assert_int_eq(iop_job_state(c), IOP_QUEUED);

	ck_assert_int_eq(iop_batch_end(pool), 3);
	ck_assert_int_eq(iop_await(a), 0);
	ck_assert_int_eq(iop_await(b), 1);
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_long(&d.result), 2);
	iop_pool_destroy(pool);
	ck_assert_int_eq(fjobs_not_ran_once(f, 3), 0);
	free(f);
}
END_TEST

/*
 * Batch errors: NULL pool, end without a batch, begin on a second pool
 * while one is open (-EBUSY), end on the wrong pool.  Submits to the
 * other pool while a batch is open are not held.
 */
START_TEST(test_batch_errors)
{
	iop_pool *pool = pool_new(1);
	iop_pool *other = pool_new(1);
	iop_job *f;

	ck_assert_int_eq(iop_batch_begin(NULL), -EINVAL);
	ck_assert_int_eq(iop_batch_end(NULL), -EINVAL);
	ck_assert_int_eq(iop_batch_end(pool), -EINVAL);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_int_eq(iop_batch_begin(other), -EBUSY);
	ck_assert_int_eq(iop_batch_end(other), -EINVAL);
	f = iop_call(other, work_return_ctx, (void *)(intptr_t)5, NULL, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(iop_await(f), 5);
	ck_assert_int_eq(iop_batch_end(pool), 0);
	ck_assert_int_eq(iop_batch_end(pool), -EINVAL);
	/* The refused begin left nothing behind. */
	ck_assert_int_eq(iop_batch_begin(other), 0);
	ck_assert_int_eq(iop_batch_end(other), 0);
	ck_assert_int_eq(iop_batch_end(other), -EINVAL);
	iop_pool_destroy(pool);
	iop_pool_destroy(other);
}
END_TEST

static Suite *future_suite(void)
{
	Suite *s = suite_create("future");
	TCase *tc;

	tc = tcase_new("await");
	tcase_add_test(tc, test_future_read_await_returns_result);
	tcase_add_test(tc, test_future_call_await_returns_result);
	tcase_add_test(tc, test_future_await_null_is_einval);
	tcase_add_test(tc, test_future_await_callback_job_is_einval);
	tcase_add_test(tc, test_future_invisible_to_fd_and_poll);
	tcase_add_test(tc, test_future_awaited_inside_callback);
	suite_add_tcase(s, tc);

	tc = tcase_new("threads");
	tcase_add_test(tc, test_future_awaited_by_four_threads);
	tcase_add_test(tc, test_future_submitted_and_awaited_on_other_threads);
	suite_add_tcase(s, tc);

	tc = tcase_new("destroy");
	tcase_add_test(tc, test_future_unawaited_released_by_destroy);
	suite_add_tcase(s, tc);

	tc = tcase_new("timeout");
	tcase_add_test(tc, test_await_timeout_keeps_job);
	tcase_add_test(tc, test_await_timeout_zero_only_looks);
	tcase_add_test(tc, test_await_timeout_einval);
	tcase_add_test(tc, test_await_timeout_then_cancel);
	tcase_add_test(tc, test_await_timeout_inside_callback);
	tcase_add_test(tc, test_await_timeout_signals_do_not_cut_short);
	suite_add_tcase(s, tc);

	tc = tcase_new("batch");
	tcase_add_test(tc, test_await_own_batch_is_edeadlk);
	tcase_add_test(tc, test_await_other_threads_batch_times_out);
	tcase_add_test(tc, test_await_other_threads_batch_with_own_open);
	tcase_add_test(tc, test_batch_holds_until_outermost_end);
	tcase_add_test(tc, test_batch_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(future_suite());
}
