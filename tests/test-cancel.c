/*
 * Suite "cancel": iop_cancel() on queued, held, pending, running and
 * ended jobs, iop_cancel_requested() in work functions, iop_job_state()
 * along a job's life, and a storm of random cancels from three threads
 * in which every job still ends exactly once.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* Hold all @n workers of a pool with held jobs on @g (callback @d). */
static void hold_workers(iop_pool *pool, struct held *h, int n, struct gate *g,
			 sem_t *entered, struct done_rec *d)
{
	for (int i = 0; i < n; i++) {
		held_init(&h[i], g, entered, 1000 + i);
		ck_assert_ptr_nonnull(iop_call(pool, held_work, &h[i],
					       done_record, &d[i]));
	}
	sem_wait_n(entered, n);
}

/*
 * Every worker held, more jobs queued behind them, one cancelled: cancel
 * returns 0, the job is DONE at once and its callback runs exactly once
 * with -ECANCELED before any worker is free; its work never runs; a
 * second cancel says -EALREADY; the other jobs run with their results.
 */
START_TEST(test_cancel_queued_runs_done_once)
{
	enum { THREADS = 2, N = 10, VICTIM = 3 };
	iop_pool *pool = pool_new(THREADS);
	struct held h[THREADS];
	struct done_rec hd[THREADS];
	struct step s[N];
	struct ordered_rec d[N];
	iop_job *jobs[N];
	atomic_int work_clock, done_clock;
	struct gate g;
	sem_t entered;

	atomic_init(&work_clock, 0);
	atomic_init(&done_clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	for (int i = 0; i < THREADS; i++)
		done_rec_init(&hd[i]);
	hold_workers(pool, h, THREADS, &g, &entered, hd);
	for (int i = 0; i < N; i++) {
		step_init(&s[i], &work_clock, 100 + i);
		ordered_init(&d[i], &done_clock);
		jobs[i] = iop_call(pool, step_work, &s[i], ordered_record,
				   &d[i]);
		ck_assert_ptr_nonnull(jobs[i]);
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(iop_job_state(jobs[i]), IOP_QUEUED);

	ck_assert_int_eq(iop_cancel(jobs[VICTIM]), 0);
	/* Ended, callback not run yet: the handle is still valid. */
	ck_assert_int_eq(iop_job_state(jobs[VICTIM]), IOP_DONE);
	ck_assert_int_eq(iop_cancel(jobs[VICTIM]), -EALREADY);
	/* Its callback comes while every worker is still held. */
	drain_until(pool, &done_clock, 1);
	ck_assert_int_eq(load_int(&d[VICTIM].d.calls), 1);
	ck_assert_int_eq(load_long(&d[VICTIM].d.result), -ECANCELED);
	ck_assert_int_eq(load_int(&d[VICTIM].d.off_thread), 0);
	for (int i = 0; i < N; i++)
		if (i != VICTIM)
			ck_assert_int_eq(iop_job_state(jobs[i]), IOP_QUEUED);

	gate_open(&g);
	drain_until(pool, &done_clock, N);
	for (int i = 0; i < THREADS; i++)
		drain_until(pool, &hd[i].calls, 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);

	ck_assert_int_eq(load_int(&s[VICTIM].ran), 0);
	ck_assert_int_eq(load_int(&work_clock), N - 1);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&d[i].d.calls), 1);
		if (i == VICTIM)
			continue;
		ck_assert_int_eq(load_int(&s[i].ran), 1);
		ck_assert_int_eq(load_long(&d[i].d.result), 100 + i);
	}
	for (int i = 0; i < THREADS; i++) {
		ck_assert_int_eq(load_int(&hd[i].calls), 1);
		ck_assert_int_eq(load_long(&hd[i].result), 1000 + i);
	}
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/* A queued future, cancelled: iop_await() returns -ECANCELED. */
START_TEST(test_cancel_queued_future_awaits_ecanceled)
{
	iop_pool *pool = pool_new(1);
	struct held h;
	struct done_rec hd;
	struct step s;
	atomic_int clock;
	struct gate g;
	sem_t entered;
	iop_job *f;

	atomic_init(&clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&hd);
	hold_workers(pool, &h, 1, &g, &entered, &hd);
	step_init(&s, &clock, 5);
	f = iop_call(pool, step_work, &s, NULL, NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(iop_job_state(f), IOP_QUEUED);
	ck_assert_int_eq(iop_cancel(f), 0);
	ck_assert_int_eq(iop_job_state(f), IOP_DONE);
	ck_assert_int_eq(iop_cancel(f), -EALREADY);
	/* Awaited while the worker is still held: it has ended already. */
	ck_assert_int_eq(iop_await(f), -ECANCELED);
	/* Futures never reach the callback queue. */
	ck_assert_int_eq(iop_poll(pool), 0);
	gate_open(&g);
	drain_until(pool, &hd.calls, 1);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&s.ran), 0);
	ck_assert_int_eq(load_long(&hd.result), 1000);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/* A thread blocked in iop_await() on a queued future. */
struct await_arg {
	iop_job *job;
	pid_t tid;
	sem_t started;
	ssize_t result;
};

static void *await_thread(void *arg)
{
	struct await_arg *a = arg;

	a->tid = gettid_compat();
	sem_post(&a->started);
	a->result = iop_await(a->job);
	return NULL;
}

/*
 * Another thread waits in iop_await() on a future that cannot start (the
 * only worker is held); cancelling it wakes that thread with -ECANCELED.
 * The handle is valid for the cancel: the await cannot return before the
 * job ends, and nothing but the cancel can end it.
 */
START_TEST(test_cancel_wakes_awaiter_of_queued_future)
{
	iop_pool *pool = pool_new(1);
	struct await_arg a;
	struct held h;
	struct done_rec hd;
	struct step s;
	atomic_int clock;
	struct gate g;
	sem_t entered;
	pthread_t t;

	atomic_init(&clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	ck_assert_int_eq(sem_init(&a.started, 0, 0), 0);
	done_rec_init(&hd);
	hold_workers(pool, &h, 1, &g, &entered, &hd);
	step_init(&s, &clock, 5);
	a.job = iop_call(pool, step_work, &s, NULL, NULL);
	ck_assert_ptr_nonnull(a.job);
	a.result = 0;
	ck_assert_int_eq(pthread_create(&t, NULL, await_thread, &a), 0);
	sem_wait_n(&a.started, 1);
	/* Best effort: let it get into the wait; correct either way. */
	(void)thread_seen_asleep(a.tid, 2000);
	ck_assert_int_eq(iop_cancel(a.job), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(a.result, -ECANCELED);
	gate_open(&g);
	drain_until(pool, &hd.calls, 1);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&s.ran), 0);
	sem_destroy(&a.started);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * Jobs held in the test thread's batch, cancelled there: still QUEUED
 * (held), no callback before the batch ends; at iop_batch_end() they end
 * with -ECANCELED without running, the others of the batch run.
 */
START_TEST(test_cancel_held_in_batch_ends_at_batch_end)
{
	iop_pool *pool = pool_new(2);
	struct step sa, sb, sf, sg;
	struct ordered_rec da, db;
	atomic_int work_clock, done_clock;
	iop_job *a, *b, *f, *fg;

	atomic_init(&work_clock, 0);
	atomic_init(&done_clock, 0);
	step_init(&sa, &work_clock, 1);
	step_init(&sb, &work_clock, 2);
	step_init(&sf, &work_clock, 3);
	step_init(&sg, &work_clock, 4);
	ordered_init(&da, &done_clock);
	ordered_init(&db, &done_clock);

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	a = iop_call(pool, step_work, &sa, ordered_record, &da);
	b = iop_call(pool, step_work, &sb, ordered_record, &db);
	f = iop_call(pool, step_work, &sf, NULL, NULL);
	fg = iop_call(pool, step_work, &sg, NULL, NULL);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fg);
	ck_assert_int_eq(iop_cancel(b), 0);
	ck_assert_int_eq(iop_cancel(f), 0);
	ck_assert_int_eq(iop_job_state(b), IOP_QUEUED);
	ck_assert_int_eq(iop_job_state(f), IOP_QUEUED);
	/* Nothing has been handed over, so nothing has ended. */
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(load_int(&db.d.calls), 0);
	batch_end_expect(pool, 4, 2);

	ck_assert_int_eq(iop_await(f), -ECANCELED);
	ck_assert_int_eq(iop_await(fg), 4);
	drain_until(pool, &done_clock, 2);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&da.d.calls), 1);
	ck_assert_int_eq(load_long(&da.d.result), 1);
	ck_assert_int_eq(load_int(&db.d.calls), 1);
	ck_assert_int_eq(load_long(&db.d.result), -ECANCELED);
	ck_assert_int_eq(load_int(&sa.ran), 1);
	ck_assert_int_eq(load_int(&sb.ran), 0);
	ck_assert_int_eq(load_int(&sf.ran), 0);
	ck_assert_int_eq(load_int(&sg.ran), 1);
}
END_TEST

/*
 * A callback submits a job and a future and cancels both at once (they
 * are pending, not yet handed to the workers): both end -ECANCELED
 * without running; the future is awaited inside the callback.
 */
struct pending_cancel {
	iop_pool *pool;
	struct step s_job, s_fut;
	struct ordered_rec d_job;
	int cancel_job, cancel_fut;
	ssize_t fut_result;
	atomic_int calls;
};

static void pending_cancel_done(iop_job *job, ssize_t result, void *arg)
{
	struct pending_cancel *p = arg;
	iop_job *j, *f;

	(void)job;
	(void)result;
	j = iop_call(p->pool, step_work, &p->s_job, ordered_record,
		     &p->d_job);
	f = iop_call(p->pool, step_work, &p->s_fut, NULL, NULL);
	p->cancel_job = j ? iop_cancel(j) : -1000;
	p->cancel_fut = f ? iop_cancel(f) : -1000;
	p->fut_result = f ? iop_await(f) : -1000;
	atomic_fetch_add(&p->calls, 1);
}

START_TEST(test_cancel_pending_in_callback)
{
	iop_pool *pool = pool_new(2);
	struct pending_cancel p;
	atomic_int work_clock, done_clock;

	atomic_init(&work_clock, 0);
	atomic_init(&done_clock, 0);
	p.pool = pool;
	step_init(&p.s_job, &work_clock, 7);
	step_init(&p.s_fut, &work_clock, 8);
	ordered_init(&p.d_job, &done_clock);
	atomic_init(&p.calls, 0);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       pending_cancel_done, &p));
	drain_until(pool, &p.calls, 1);
	drain_until(pool, &done_clock, 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(p.cancel_job, 0);
	ck_assert_int_eq(p.cancel_fut, 0);
	ck_assert_int_eq(p.fut_result, -ECANCELED);
	ck_assert_int_eq(load_int(&p.d_job.d.calls), 1);
	ck_assert_int_eq(load_long(&p.d_job.d.result), -ECANCELED);
	ck_assert_int_eq(load_int(&p.s_job.ran), 0);
	ck_assert_int_eq(load_int(&p.s_fut.ran), 0);
}
END_TEST

/*
 * A job a callback submitted, handed to the workers when the callbacks
 * were done, then cancelled while every worker is busy: cancel returns 0
 * and its callback comes with -ECANCELED from the next wait, before any
 * worker is free; its work never runs.  The callback comes from a queued
 * job cancelled first, so that no worker is needed for it.
 */
struct published {
	iop_pool *pool;
	struct step s;
	struct ordered_rec d;
	iop_job *job;
	atomic_int calls;
};

static void submit_from_callback(iop_job *job, ssize_t result, void *arg)
{
	struct published *p = arg;

	(void)job;
	(void)result;
	p->job = iop_call(p->pool, step_work, &p->s, ordered_record, &p->d);
	atomic_fetch_add(&p->calls, 1);
}

START_TEST(test_cancel_published_while_workers_busy)
{
	iop_pool *pool = pool_new(1);
	struct held h;
	struct done_rec hd;
	struct published p;
	struct step s_first;
	atomic_int work_clock, done_clock;
	struct gate g;
	sem_t entered;
	iop_job *first;

	atomic_init(&work_clock, 0);
	atomic_init(&done_clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&hd);
	hold_workers(pool, &h, 1, &g, &entered, &hd);
	p.pool = pool;
	p.job = NULL;
	step_init(&p.s, &work_clock, 7);
	ordered_init(&p.d, &done_clock);
	atomic_init(&p.calls, 0);
	step_init(&s_first, &work_clock, 1);
	first = iop_call(pool, step_work, &s_first, submit_from_callback, &p);
	ck_assert_ptr_nonnull(first);
	ck_assert_int_eq(iop_cancel(first), 0);
	drain_until(pool, &p.calls, 1);
	ck_assert_ptr_nonnull(p.job);
	ck_assert_int_eq(iop_job_state(p.job), IOP_QUEUED);

	ck_assert_int_eq(iop_cancel(p.job), 0);
	drain_until(pool, &done_clock, 1);
	ck_assert_int_eq(load_long(&p.d.d.result), -ECANCELED);
	ck_assert_int_eq(load_int(&hd.calls), 0);	/* still held */

	gate_open(&g);
	drain_until(pool, &hd.calls, 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&p.d.d.calls), 1);
	ck_assert_int_eq(load_int(&p.s.ran), 0);
	ck_assert_int_eq(load_int(&s_first.ran), 0);
	ck_assert_int_eq(load_int(&work_clock), 0);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * A running job: cancel returns -EBUSY, the work sees
 * iop_cancel_requested() == 1 (it saw 0 when it started) and returns
 * early, and the job ends with the work's own result.  The request does
 * not leak into the next job on the same worker.  iop_cancel_requested()
 * is 0 on the test thread.
 */
static ssize_t report_cancel_requested(void *ctx)
{
	(void)ctx;
	return iop_cancel_requested();
}

START_TEST(test_cancel_running_returns_ebusy)
{
	iop_pool *pool = pool_new(1);
	struct spinner sp;
	struct ordered_rec d, dn;
	atomic_int clock;
	sem_t entered;
	iop_job *j;

	atomic_init(&clock, 0);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	spinner_init(&sp, &entered, 123);
	ordered_init(&d, &clock);
	ordered_init(&dn, &clock);
	j = iop_call(pool, spinner_work, &sp, ordered_record, &d);
	ck_assert_ptr_nonnull(j);
	sem_wait_n(&entered, 1);
	ck_assert_int_eq(iop_job_state(j), IOP_RUNNING);
	ck_assert_int_eq(iop_cancel_requested(), 0);
	ck_assert_int_eq(iop_cancel(j), -EBUSY);
	ck_assert_int_eq(iop_cancel_requested(), 0);
	drain_until(pool, &clock, 1);
	ck_assert_int_eq(load_int(&d.d.calls), 1);
	ck_assert_int_eq(load_long(&d.d.result), 123);
	ck_assert_int_eq(load_int(&sp.before), 0);
	ck_assert_int_eq(load_int(&sp.saw_cancel), 1);

	/* The same (only) worker, the next job: no request. */
	ck_assert_ptr_nonnull(iop_call(pool, report_cancel_requested, NULL,
				       ordered_record, &dn));
	drain_until(pool, &clock, 2);
	ck_assert_int_eq(load_long(&dn.d.result), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&sp.ran), 1);
	sem_destroy(&entered);
}
END_TEST

/* The same for a running future: -EBUSY, await gives the work's result. */
START_TEST(test_cancel_running_future_returns_ebusy)
{
	iop_pool *pool = pool_new(1);
	struct spinner sp;
	sem_t entered;
	iop_job *f;

	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	spinner_init(&sp, &entered, 77);
	f = iop_call(pool, spinner_work, &sp, NULL, NULL);
	ck_assert_ptr_nonnull(f);
	sem_wait_n(&entered, 1);
	ck_assert_int_eq(iop_job_state(f), IOP_RUNNING);
	ck_assert_int_eq(iop_cancel(f), -EBUSY);
	ck_assert_int_eq(iop_await(f), 77);
	ck_assert_int_eq(load_int(&sp.saw_cancel), 1);
	iop_pool_destroy(pool);
	sem_destroy(&entered);
}
END_TEST

/*
 * A future that has ended but was not awaited: cancel says -EALREADY and
 * iop_await() still returns the real result.
 */
START_TEST(test_cancel_ended_future_is_ealready)
{
	iop_pool *pool = pool_new(2);
	iop_job *f, *g;

	f = iop_call(pool, work_return_ctx, (void *)(intptr_t)42, NULL, NULL);
	g = iop_call(pool, work_return_ctx, (void *)(intptr_t)-EIO, NULL,
		     NULL);
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(g);
	ck_assert(job_state_reached(f, IOP_DONE, TEST_WAIT_MS));
	ck_assert(job_state_reached(g, IOP_DONE, TEST_WAIT_MS));
	ck_assert_int_eq(iop_cancel(f), -EALREADY);
	ck_assert_int_eq(iop_cancel(g), -EALREADY);
	ck_assert_int_eq(iop_cancel(f), -EALREADY);
	ck_assert_int_eq(iop_job_state(f), IOP_DONE);
	ck_assert_int_eq(iop_await(f), 42);
	ck_assert_int_eq(iop_await(g), -EIO);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * A callback job that has finished but whose callback has not run yet:
 * cancel says -EALREADY, and the callback gets the real result, once.
 */
START_TEST(test_cancel_ended_callback_job_is_ealready)
{
	iop_pool *pool = pool_new(1);
	struct done_rec d;
	iop_job *j;

	done_rec_init(&d);
	j = iop_call(pool, work_return_ctx, (void *)(intptr_t)9, done_record,
		     &d);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(fd_readable(iop_pool_fd(pool), TEST_WAIT_MS), 1);
	ck_assert_int_eq(iop_job_state(j), IOP_DONE);
	ck_assert_int_eq(iop_cancel(j), -EALREADY);
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_long(&d.result), 9);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 1);
}
END_TEST

/*
 * iop_job_state along a job's life: QUEUED while held in a batch and
 * while queued behind a held worker, RUNNING while its work runs, DONE
 * once it has ended and until its callback (or await) releases it.
 */
START_TEST(test_cancel_job_state_transitions)
{
	iop_pool *pool = pool_new(1);
	struct step sr, sq, sb, sf;
	struct ordered_rec dr, dq, db;
	atomic_int work_clock, done_clock;
	struct gate g;
	sem_t entered;
	iop_job *r, *q, *b, *f;

	atomic_init(&work_clock, 0);
	atomic_init(&done_clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	step_init(&sr, &work_clock, 1);
	sr.gate = &g;
	sr.entered = &entered;
	step_init(&sq, &work_clock, 2);
	step_init(&sb, &work_clock, 3);
	step_init(&sf, &work_clock, 4);
	ordered_init(&dr, &done_clock);
	ordered_init(&dq, &done_clock);
	ordered_init(&db, &done_clock);

	r = iop_call(pool, step_work, &sr, ordered_record, &dr);
	ck_assert_ptr_nonnull(r);
	sem_wait_n(&entered, 1);
	ck_assert_int_eq(iop_job_state(r), IOP_RUNNING);
	q = iop_call(pool, step_work, &sq, ordered_record, &dq);
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(iop_job_state(q), IOP_QUEUED);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	b = iop_call(pool, step_work, &sb, ordered_record, &db);
	f = iop_call(pool, step_work, &sf, NULL, NULL);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(iop_job_state(b), IOP_QUEUED);
	ck_assert_int_eq(iop_job_state(f), IOP_QUEUED);
	ck_assert_int_eq(iop_batch_end(pool), 2);
	ck_assert_int_eq(iop_job_state(b), IOP_QUEUED);
	ck_assert_int_eq(iop_job_state(f), IOP_QUEUED);
	ck_assert_int_eq(iop_job_state(r), IOP_RUNNING);

	gate_open(&g);
	/* No poll yet, so no callback has run and every handle is valid. */
	ck_assert(job_state_reached(r, IOP_DONE, TEST_WAIT_MS));
	ck_assert(job_state_reached(q, IOP_DONE, TEST_WAIT_MS));
	ck_assert(job_state_reached(b, IOP_DONE, TEST_WAIT_MS));
	ck_assert(job_state_reached(f, IOP_DONE, TEST_WAIT_MS));
	ck_assert_int_eq(load_int(&done_clock), 0);
	/* DONE stays DONE. */
	ck_assert_int_eq(iop_job_state(r), IOP_DONE);
	ck_assert_int_eq(iop_job_state(f), IOP_DONE);
	drain_until(pool, &done_clock, 3);
	ck_assert_int_eq(iop_job_state(f), IOP_DONE);
	ck_assert_int_eq(iop_await(f), 4);
	iop_pool_destroy(pool);
	/* One worker: queue order is start order. */
	ck_assert_int_eq(load_int(&sr.at), 1);
	ck_assert_int_eq(load_int(&sq.at), 2);
	ck_assert_int_eq(load_int(&sb.at), 3);
	ck_assert_int_eq(load_int(&sf.at), 4);
	ck_assert_int_eq(load_long(&dr.d.result), 1);
	ck_assert_int_eq(load_long(&dq.d.result), 2);
	ck_assert_int_eq(load_long(&db.d.result), 3);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/* What iop_cancel_requested() says inside a callback. */
static atomic_int requested_in_callback = -1;

static void record_requested(iop_job *job, ssize_t result, void *arg)
{
	(void)job;
	(void)result;
	atomic_store(&requested_in_callback, iop_cancel_requested());
	atomic_fetch_add((atomic_int *)arg, 1);
}

START_TEST(test_cancel_null_is_einval)
{
	iop_pool *pool;
	atomic_int calls;

	ck_assert_int_eq(iop_cancel(NULL), -EINVAL);
	ck_assert_int_eq(iop_job_state(NULL), -EINVAL);
	ck_assert_int_eq(iop_cancel_requested(), 0);
	pool = pool_new(1);
	atomic_init(&calls, 0);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       record_requested, &calls));
	drain_until(pool, &calls, 1);
	ck_assert_int_eq(load_int(&requested_in_callback), 0);
	ck_assert_int_eq(iop_cancel_requested(), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The storm.                                                          */

enum {
	STORM_N = 100000,	/* jobs in all */
	STORM_CB = 60000,	/* of which callback jobs: [0, STORM_CB) */
	STORM_WINDOW = 1000,	/* jobs in flight at once per submitter */
	STORM_THREADS = 4,
};

/* What iop_cancel() returned for a job, as bits. */
#define CANCEL_OK	1
#define CANCEL_BUSY	2
#define CANCEL_ALREADY	4
#define CANCEL_OTHER	8

/*
 * Per job i: how often its work ran, whether the work saw a cancel
 * request, how often it ended (callback ran, or await returned), its
 * result and what every cancel of it returned.  The callback jobs belong
 * to the test thread, which submits a window, lets the canceller thread
 * cancel in it while it cancels too, and only then polls: so no callback
 * can run (and no handle go stale) while anyone cancels.  The futures
 * belong to the future thread, which submits, cancels and awaits its own.
 */
struct storm {
	iop_pool *pool;
	atomic_int *ran;
	atomic_int *saw;
	atomic_int *ended;
	atomic_int *bits;
	atomic_long *result;
	iop_job **jobs;
	atomic_int callbacks;
	atomic_int submit_failed;
	atomic_int batch_failed;

	/* The canceller: the window to cancel in, set before go. */
	sem_t go;
	sem_t finished;
	size_t win_first;
	bool stop;
	uint64_t canceller_rng;
};

/* Set before the first submit; read by the workers. */
static struct storm *storm;

/*
 * Records that job @ctx ran.  Every 16th job lingers a little, checking
 * iop_cancel_requested(), so that some cancels find their job running.
 */
static ssize_t storm_work(void *ctx)
{
	size_t i = (size_t)(uintptr_t)ctx;
	int rounds = i % 16 == 0 ? 100 : 1;

	atomic_fetch_add(&storm->ran[i], 1);
	for (int k = 0; k < rounds; k++) {
		if (iop_cancel_requested()) {
			atomic_store(&storm->saw[i], 1);
			break;
		}
		if (rounds > 1)
			sched_yield();
	}
	return (ssize_t)i;
}

static void storm_done(iop_job *job, ssize_t result, void *arg)
{
	size_t i = (size_t)(uintptr_t)arg;

	(void)job;
	atomic_store(&storm->result[i], (long)result);
	atomic_fetch_add(&storm->ended[i], 1);
	atomic_fetch_add(&storm->callbacks, 1);
}

static void storm_cancel(size_t i)
{
	int r = iop_cancel(storm->jobs[i]);
	int bit;

	if (r == 0)
		bit = CANCEL_OK;
	else if (r == -EBUSY)
		bit = CANCEL_BUSY;
	else if (r == -EALREADY)
		bit = CANCEL_ALREADY;
	else
		bit = CANCEL_OTHER;
	atomic_fetch_or(&storm->bits[i], bit);
}

/* Cancel @n random jobs of the window at @first. */
static void storm_cancel_some(size_t first, size_t n, uint64_t *rng)
{
	for (size_t k = 0; k < n; k++)
		storm_cancel(first + rng_next(rng) % STORM_WINDOW);
}

static void *canceller_thread(void *arg)
{
	struct storm *st = arg;

	for (;;) {
		sem_wait_n(&st->go, 1);
		if (st->stop)
			break;
		storm_cancel_some(st->win_first, STORM_WINDOW / 8,
				  &st->canceller_rng);
		/* And the lingering ones, which it may find running. */
		for (size_t i = STORM_WINDOW; i >= 16; i -= 16)
			storm_cancel(st->win_first + i - 16);
		sem_post(&st->finished);
	}
	return NULL;
}

static void *future_thread(void *arg)
{
	struct storm *st = arg;
	uint64_t rng = 0x600dcafe;
	size_t first;
	int r;

	for (first = STORM_CB; first < STORM_N; first += STORM_WINDOW) {
		bool batch = (first / STORM_WINDOW) % 3 == 0;

		if (batch && iop_batch_begin(st->pool) != 0)
			atomic_fetch_add(&st->batch_failed, 1);
		for (size_t i = first; i < first + STORM_WINDOW; i++) {
			void *ctx = (void *)(uintptr_t)i;

			st->jobs[i] = iop_call(st->pool, storm_work, ctx,
					       NULL, NULL);
			if (st->jobs[i] == NULL)
				atomic_fetch_add(&st->submit_failed, 1);
		}
		if (batch) {
			storm_cancel_some(first, STORM_WINDOW / 16, &rng);
			/* Cancelled held jobs may or may not count. */
			r = iop_batch_end(st->pool);
			if (r <= 0 || r > STORM_WINDOW)
				atomic_fetch_add(&st->batch_failed, 1);
		}
		storm_cancel_some(first, STORM_WINDOW / 4, &rng);
		for (size_t i = first; i < first + STORM_WINDOW; i++) {
			if (st->jobs[i] == NULL)
				continue;
			atomic_store(&st->result[i], (long)iop_await(
							     st->jobs[i]));
			atomic_fetch_add(&st->ended[i], 1);
		}
	}
	return NULL;
}

/* Submit and settle one window of callback jobs on the test thread. */
static void storm_callback_window(struct storm *st, size_t first,
				  uint64_t *rng)
{
	bool batch = (first / STORM_WINDOW) % 2 == 1;
	int r;

	if (batch)
		ck_assert_int_eq(iop_batch_begin(st->pool), 0);
	for (size_t i = first; i < first + STORM_WINDOW; i++) {
		st->jobs[i] = iop_call(st->pool, storm_work,
				       (void *)(uintptr_t)i, storm_done,
				       (void *)(uintptr_t)i);
		ck_assert_ptr_nonnull(st->jobs[i]);
	}
	st->win_first = first;
	if (batch) {
		/* Held: these cancels all return 0.  The canceller starts
		 * before the hand-over and races with it. */
		storm_cancel_some(first, STORM_WINDOW / 16, rng);
		sem_post(&st->go);
		/* Cancelled held jobs may or may not count. */
		r = iop_batch_end(st->pool);
		ck_assert_int_gt(r, 0);
		ck_assert_int_le(r, STORM_WINDOW);
	} else {
		sem_post(&st->go);
	}
	storm_cancel_some(first, STORM_WINDOW / 8, rng);
	/* Only once the canceller is done may callbacks run. */
	sem_wait_n(&st->finished, 1);
	drain_until(st->pool, &st->callbacks, (int)(first + STORM_WINDOW));
}

/* Check job @i against the invariants; returns a description or NULL. */
static const char *storm_check(struct storm *st, size_t i)
{
	int ran = load_int(&st->ran[i]);
	long res = load_long(&st->result[i]);
	int bits = load_int(&st->bits[i]);

	if (load_int(&st->ended[i]) != 1)
		return "did not end exactly once";
	if (ran > 1)
		return "ran more than once";
	if (bits & CANCEL_OTHER)
		return "iop_cancel returned something unexpected";
	if (res == -ECANCELED) {
		if (ran != 0)
			return "ran, yet reported -ECANCELED";
		if (!(bits & CANCEL_OK))
			return "-ECANCELED though no cancel returned 0";
		return NULL;
	}
	if (ran != 1)
		return "never ran, yet not -ECANCELED";
	if (res != (long)i)
		return "wrong result";
	if (bits & CANCEL_OK)
		return "a cancel returned 0, yet the job ran";
	if (load_int(&st->saw[i]) && !(bits & CANCEL_BUSY))
		return "work saw a cancel request, no cancel said -EBUSY";
	return NULL;
}

START_TEST(test_cancel_storm)
{
	struct storm st;
	uint64_t rng = 0x5107c0de;
	pthread_t canceller, futures;
	size_t succeeded = 0, cancelled = 0;

	memset(&st, 0, sizeof(st));
	st.pool = pool_new(STORM_THREADS);
	st.ran = counters_new(STORM_N);
	st.saw = counters_new(STORM_N);
	st.ended = counters_new(STORM_N);
	st.bits = counters_new(STORM_N);
	st.result = calloc(STORM_N, sizeof(*st.result));
	st.jobs = calloc(STORM_N, sizeof(*st.jobs));
	ck_assert_ptr_nonnull(st.result);
	ck_assert_ptr_nonnull(st.jobs);
	for (size_t i = 0; i < STORM_N; i++)
		atomic_init(&st.result[i], 0);
	atomic_init(&st.callbacks, 0);
	atomic_init(&st.submit_failed, 0);
	atomic_init(&st.batch_failed, 0);
	ck_assert_int_eq(sem_init(&st.go, 0, 0), 0);
	ck_assert_int_eq(sem_init(&st.finished, 0, 0), 0);
	st.canceller_rng = 0xc0ffee;
	storm = &st;

	ck_assert_int_eq(pthread_create(&canceller, NULL, canceller_thread,
					&st), 0);
	ck_assert_int_eq(pthread_create(&futures, NULL, future_thread, &st),
			 0);
	for (size_t first = 0; first < STORM_CB; first += STORM_WINDOW)
		storm_callback_window(&st, first, &rng);
	st.stop = true;
	sem_post(&st.go);
	ck_assert_int_eq(pthread_join(canceller, NULL), 0);
	ck_assert_int_eq(pthread_join(futures, NULL), 0);
	ck_assert_int_eq(iop_wait(st.pool, 20), 0);
	iop_pool_destroy(st.pool);

	ck_assert_int_eq(load_int(&st.submit_failed), 0);
	ck_assert_int_eq(load_int(&st.batch_failed), 0);
	ck_assert_int_eq(load_int(&st.callbacks), STORM_CB);
	ck_assert_uint_eq(counters_count_not(st.ended, STORM_N, 1), 0);
	for (size_t i = 0; i < STORM_N; i++) {
		const char *bad = storm_check(&st, i);

		ck_assert_msg(bad == NULL, "job %zu: %s (ran %d, result %ld, "
			      "cancel bits %#x)", i, bad, load_int(&st.ran[i]),
			      load_long(&st.result[i]), load_int(&st.bits[i]));
		if (load_long(&st.result[i]) == -ECANCELED)
			cancelled++;
		else
			succeeded++;
	}
	ck_assert_uint_eq(succeeded + cancelled, STORM_N);
	/* The cancels of held jobs alone guarantee some. */
	ck_assert_uint_gt(cancelled, 0);
	ck_assert_uint_gt(succeeded, 0);
	sem_destroy(&st.go);
	sem_destroy(&st.finished);
	free(st.ran);
	free(st.saw);
	free(st.ended);
	free(st.bits);
	free(st.result);
	free(st.jobs);
}
END_TEST

static Suite *cancel_suite(void)
{
	Suite *s = suite_create("cancel");
	TCase *tc;

	tc = tcase_new("queued");
	tcase_add_test(tc, test_cancel_queued_runs_done_once);
	tcase_add_test(tc, test_cancel_queued_future_awaits_ecanceled);
	tcase_add_test(tc, test_cancel_wakes_awaiter_of_queued_future);
	tcase_add_test(tc, test_cancel_held_in_batch_ends_at_batch_end);
	tcase_add_test(tc, test_cancel_pending_in_callback);
	tcase_add_test(tc, test_cancel_published_while_workers_busy);
	suite_add_tcase(s, tc);

	tc = tcase_new("running");
	tcase_add_test(tc, test_cancel_running_returns_ebusy);
	tcase_add_test(tc, test_cancel_running_future_returns_ebusy);
	suite_add_tcase(s, tc);

	tc = tcase_new("ended");
	tcase_add_test(tc, test_cancel_ended_future_is_ealready);
	tcase_add_test(tc, test_cancel_ended_callback_job_is_ealready);
	suite_add_tcase(s, tc);

	tc = tcase_new("state");
	tcase_add_test(tc, test_cancel_job_state_transitions);
	tcase_add_test(tc, test_cancel_null_is_einval);
	suite_add_tcase(s, tc);

	tc = tcase_new("storm");
	tcase_add_test(tc, test_cancel_storm);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(cancel_suite());
}
