/*
 * Suite "notify": the pool descriptor (flags, readable exactly while
 * completions wait), bursts of completions, iop_poll() and iop_wait()
 * return values and timeouts, and their refusals (EDEADLK inside a
 * callback, EBUSY while another thread polls).
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
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

START_TEST(test_notify_fd_is_cloexec_and_nonblocking)
{
	iop_pool *pool = pool_new(0);
	int fd = iop_pool_fd(pool);
	int fdflags, flflags;

	ck_assert_int_ge(fd, 0);
	fdflags = fcntl(fd, F_GETFD);
	flflags = fcntl(fd, F_GETFL);
	ck_assert_int_ne(fdflags, -1);
	ck_assert_int_ne(flflags, -1);
	ck_assert(fdflags & FD_CLOEXEC);
	ck_assert(flflags & O_NONBLOCK);
	/* Stable for the pool's life. */
	ck_assert_int_eq(iop_pool_fd(pool), fd);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * The descriptor is what configure chose: an eventfd, or the read end of
 * a pipe without eventfd or with --disable-eventfd (so that the pipe leg
 * of CI cannot pass by testing the eventfd).
 */
START_TEST(test_notify_fd_is_the_configured_kind)
{
	iop_pool *pool = pool_new(0);
	int fd = iop_pool_fd(pool);
	char link[64], target[128];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	ck_assert_int_gt(n, 0);
	target[n] = '\0';
#ifdef IOP_NOTIFY_EVENTFD
	ck_assert_str_eq(target, "anon_inode:[eventfd]");
#else
	ck_assert_msg(strncmp(target, "pipe:", 5) == 0,
		      "the pool descriptor is %s, not a pipe", target);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
#endif
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_notify_fd_not_readable_when_idle)
{
	iop_pool *pool = pool_new(0);

	ck_assert_int_eq(fd_readable(iop_pool_fd(pool), 0), 0);
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(fd_readable(iop_pool_fd(pool), 0), 0);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * Readable once a job completes, the callback not run before the test
 * polls, and not readable once iop_poll() (or iop_wait()) ran it.
 */
START_TEST(test_notify_fd_readable_after_completion_until_polled)
{
	iop_pool *pool = pool_new(2);
	int fd = iop_pool_fd(pool);

	for (int round = 0; round < 4; round++) {
		struct done_rec d;
		int n;

		done_rec_init(&d);
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx,
					       (void *)(intptr_t)(round + 7),
					       done_record, &d));
		ck_assert_int_eq(fd_readable(fd, TEST_WAIT_MS), 1);
		/* Readable, yet nothing ran: callbacks wait for the poll. */
		ck_assert_int_eq(load_int(&d.calls), 0);
		n = round % 2 ? iop_wait(pool, 0) : iop_poll(pool);
		ck_assert_int_eq(n, 1);
		ck_assert_int_eq(load_int(&d.calls), 1);
		ck_assert_int_eq(load_long(&d.result), round + 7);
		ck_assert_int_eq(fd_readable(fd, 0), 0);
	}
	iop_pool_destroy(pool);
}
END_TEST

/* A burst: its jobs say they ran (semaphore) and count their callbacks. */
struct burst {
	sem_t *ran;
	atomic_int *calls;	/* per job */
	atomic_int wrong;
	atomic_int total;
};

struct burst_job {
	struct burst *b;
	size_t idx;
};

static ssize_t burst_work(void *ctx)
{
	struct burst_job *j = ctx;

	sem_post(j->b->ran);
	return (ssize_t)j->idx;
}

static void burst_done(iop_job *job, ssize_t result, void *arg)
{
	struct burst_job *j = arg;

	(void)job;
	if (result != (ssize_t)j->idx)
		atomic_fetch_add(&j->b->wrong, 1);
	atomic_fetch_add(&j->b->calls[j->idx], 1);
	atomic_fetch_add(&j->b->total, 1);
}

/*
 * 10,000 completions pile up while the test thread does not poll; one
 * iop_poll() then delivers every one of them.
 *
 * To know that all 10,000 are on the completion queue (not merely that
 * their work functions posted the semaphore), the test then holds every
 * worker in a sentinel job: a worker takes the sentinel only after it
 * has finished, and queued the completion of, the job it ran before.
 */
START_TEST(test_notify_burst_of_10000_delivered_by_one_poll)
{
	enum { N = 10000, THREADS = 4 };
	iop_pool *pool = pool_new(THREADS);
	int fd = iop_pool_fd(pool);
	struct burst b;
	struct burst_job *jobs = calloc(N, sizeof(*jobs));
	struct held sentinel[THREADS];
	struct done_rec sd;
	struct gate g;
	sem_t ran, entered;

	ck_assert_ptr_nonnull(jobs);
	ck_assert_int_eq(sem_init(&ran, 0, 0), 0);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	gate_init(&g);
	b.ran = &ran;
	b.calls = counters_new(N);
	atomic_init(&b.wrong, 0);
	atomic_init(&b.total, 0);
	for (size_t i = 0; i < N; i++) {
		jobs[i].b = &b;
		jobs[i].idx = i;
		ck_assert_ptr_nonnull(iop_call(pool, burst_work, &jobs[i],
					       burst_done, &jobs[i]));
	}
	sem_wait_n(&ran, N);
	done_rec_init(&sd);
	for (int i = 0; i < THREADS; i++) {
		held_init(&sentinel[i], &g, &entered, -1000 - i);
		ck_assert_ptr_nonnull(iop_call(pool, held_work, &sentinel[i],
					       done_record, &sd));
	}
	sem_wait_n(&entered, THREADS);

	ck_assert_int_eq(load_int(&b.total), 0);
	ck_assert_int_eq(fd_readable(fd, 0), 1);
	ck_assert_int_eq(iop_poll(pool), N);
	ck_assert_int_eq(load_int(&b.total), N);
	ck_assert_int_eq(counters_count_not(b.calls, N, 1), 0);
	ck_assert_int_eq(load_int(&b.wrong), 0);
	/* Drained, with the sentinels still held. */
	ck_assert_int_eq(fd_readable(fd, 0), 0);
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(load_int(&sd.calls), 0);

	gate_open(&g);
	drain_until(pool, &sd.calls, THREADS);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&b.total), N);
	free(b.calls);
	free(jobs);
	sem_destroy(&ran);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/* Submits @n burst jobs from its own thread, in small bursts. */
struct streamer {
	iop_pool *pool;
	struct burst_job *jobs;
	size_t n;
	atomic_int submit_failed;
};

static void *streamer_main(void *arg)
{
	struct streamer *s = arg;

	for (size_t i = 0; i < s->n; i++) {
		if (iop_call(s->pool, burst_work, &s->jobs[i], burst_done,
			     &s->jobs[i]) == NULL)
			atomic_fetch_add(&s->submit_failed, 1);
		if (i % 7 == 6)
			sched_yield();
	}
	return NULL;
}

/*
 * An event loop as a program would write it: sleep in poll(2) on the
 * pool descriptor, then iop_poll().  Completions keep landing while the
 * loop polls, so a completion pushed between draining the descriptor and
 * taking the list would leave it unreadable with callbacks waiting: the
 * loop would then stall, and the wait below fails.
 */
START_TEST(test_notify_event_loop_loses_no_wakeup)
{
	enum { N = 50000 };
	iop_pool *pool = pool_new(4);
	int fd = iop_pool_fd(pool);
	struct burst b;
	struct burst_job *jobs = calloc(N, sizeof(*jobs));
	struct streamer st;
	pthread_t t;
	sem_t ran;

	ck_assert_ptr_nonnull(jobs);
	ck_assert_int_eq(sem_init(&ran, 0, 0), 0);
	b.ran = &ran;
	b.calls = counters_new(N);
	atomic_init(&b.wrong, 0);
	atomic_init(&b.total, 0);
	for (size_t i = 0; i < N; i++) {
		jobs[i].b = &b;
		jobs[i].idx = i;
	}
	st.pool = pool;
	st.jobs = jobs;
	st.n = N;
	atomic_init(&st.submit_failed, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, streamer_main, &st), 0);
	while (load_int(&b.total) < N) {
		ck_assert_msg(fd_readable(fd, TEST_WAIT_MS),
			      "descriptor not readable with %d of %d done",
			      load_int(&b.total), N);
		ck_assert_int_ge(iop_poll(pool), 0);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(load_int(&st.submit_failed), 0);
	ck_assert_int_eq(counters_count_not(b.calls, N, 1), 0);
	ck_assert_int_eq(load_int(&b.wrong), 0);
	iop_pool_destroy(pool);
	free(b.calls);
	free(jobs);
	sem_destroy(&ran);
}
END_TEST

/* Spin until @job has ended (its callback not yet run), or fail. */
static void until_done(iop_job *job)
{
	int64_t end = now_ns() + (int64_t)TEST_WAIT_MS * 1000000;

	while (iop_job_state(job) != IOP_DONE) {
		ck_assert_msg(now_ns() < end, "the job did not end");
		sched_yield();
	}
}

/*
 * A poll with a budget leaves callbacks for the next one; a completion
 * arriving meanwhile rings the descriptor, and the next poll reads that
 * ring while it runs the leftovers.  The descriptor must stay readable
 * while that completion waits (an event loop would otherwise sleep on it
 * for good).
 */
START_TEST(test_notify_budget_leftovers_keep_new_completion_readable)
{
	enum { N = 3 };
	iop_pool *pool = pool_new(1);
	int fd = iop_pool_fd(pool);
	struct done_rec d[N + 1];
	iop_job *jobs[N + 1];

	for (int i = 0; i <= N; i++)
		done_rec_init(&d[i]);
	for (int i = 0; i < N; i++) {
		jobs[i] = iop_call(pool, work_return_ctx, (void *)(intptr_t)i,
				   done_record, &d[i]);
		ck_assert_ptr_nonnull(jobs[i]);
	}
	for (int i = 0; i < N; i++)
		until_done(jobs[i]);
	ck_assert_int_eq(iop_poll_budget(pool, 1, 0), 1);
	ck_assert_int_eq(fd_readable(fd, 0), 1);	/* N - 1 left */

	jobs[N] = iop_call(pool, work_return_ctx, (void *)(intptr_t)N,
			   done_record, &d[N]);
	ck_assert_ptr_nonnull(jobs[N]);
	until_done(jobs[N]);
	ck_assert_int_eq(iop_poll_budget(pool, N - 1, 0), N - 1);
	ck_assert_int_eq(load_int(&d[N].calls), 0);
	ck_assert_int_eq(fd_readable(fd, 0), 1);	/* the new one waits */
	ck_assert_int_eq(iop_poll(pool), 1);
	ck_assert_int_eq(load_int(&d[N].calls), 1);
	ck_assert_int_eq(load_long(&d[N].result), N);
	ck_assert_int_eq(fd_readable(fd, 0), 0);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_notify_poll_idle_returns_zero)
{
	iop_pool *pool = pool_new(0);
	int64_t t0 = now_ns();

	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(iop_poll(pool), 0);
	/* A thousand polls that never block take far less than this. */
	ck_assert_int_lt(now_ns() - t0, (int64_t)5 * 1000000000);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_notify_wait_zero_returns_zero)
{
	iop_pool *pool = pool_new(0);

	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(iop_wait(pool, 0), 0);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_notify_wait_times_out_when_idle)
{
	iop_pool *pool = pool_new(0);

	for (int i = 0; i < 3; i++) {
		int64_t t0 = now_ns();
		int r = iop_wait(pool, 50);
		int64_t ms = (now_ns() - t0) / 1000000;

		ck_assert_int_eq(r, 0);
		ck_assert_int_ge(ms, 45);
		ck_assert_int_lt(ms, 10000);
	}
	iop_pool_destroy(pool);
}
END_TEST

/* A job in flight that does not finish does not end the wait early. */
START_TEST(test_notify_wait_times_out_with_job_held)
{
	iop_pool *pool = pool_new(2);
	struct done_rec d;
	struct held h;
	struct gate g;
	int64_t t0, ms;

	gate_init(&g);
	done_rec_init(&d);
	held_init(&h, &g, NULL, 77);
	ck_assert_ptr_nonnull(iop_call(pool, held_work, &h, done_record, &d));
	t0 = now_ns();
	ck_assert_int_eq(iop_wait(pool, 50), 0);
	ms = (now_ns() - t0) / 1000000;
	ck_assert_int_ge(ms, 45);
	ck_assert_int_eq(load_int(&d.calls), 0);
	gate_open(&g);
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_long(&d.result), 77);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

START_TEST(test_notify_wait_below_minus_one_is_einval)
{
	iop_pool *pool = pool_new(0);
	struct done_rec d;

	done_rec_init(&d);
	ck_assert_int_eq(iop_wait(pool, -2), -EINVAL);
	ck_assert_int_eq(iop_wait(pool, INT_MIN), -EINVAL);
	/* Also with a completion ready: the bad timeout is still refused. */
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       done_record, &d));
	ck_assert_int_eq(fd_readable(iop_pool_fd(pool), TEST_WAIT_MS), 1);
	ck_assert_int_eq(iop_wait(pool, -2), -EINVAL);
	ck_assert_int_eq(load_int(&d.calls), 0);
	ck_assert_int_eq(iop_wait(pool, -1), 1);
	ck_assert_int_eq(load_int(&d.calls), 1);
	iop_pool_destroy(pool);
}
END_TEST

static void *open_gate_thread(void *arg)
{
	gate_open(arg);
	return NULL;
}

START_TEST(test_notify_wait_forever_returns_after_completion)
{
	iop_pool *pool = pool_new(2);
	struct done_rec d;
	struct held h;
	struct gate g;
	pthread_t t;
	int r;

	gate_init(&g);
	done_rec_init(&d);
	held_init(&h, &g, NULL, 4242);
	ck_assert_ptr_nonnull(iop_call(pool, held_work, &h, done_record, &d));
	/* Another thread lets the job finish, whenever it gets to run. */
	ck_assert_int_eq(pthread_create(&t, NULL, open_gate_thread, &g), 0);
	r = iop_wait(pool, -1);
	ck_assert_int_ge(r, 1);
	ck_assert_int_eq(load_int(&d.calls), 1);
	ck_assert_int_eq(load_long(&d.result), 4242);
	ck_assert_int_eq(load_int(&d.off_thread), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

/* What iop_poll()/iop_wait() said when a callback called them. */
struct reentry {
	iop_pool *pool;
	int poll, wait0, wait100, wait_forever;
	atomic_int calls;
};

static void reentry_done(iop_job *job, ssize_t result, void *arg)
{
	struct reentry *r = arg;

	(void)job;
	(void)result;
	r->poll = iop_poll(r->pool);
	r->wait0 = iop_wait(r->pool, 0);
	r->wait100 = iop_wait(r->pool, 100);
	r->wait_forever = iop_wait(r->pool, -1);
	atomic_fetch_add(&r->calls, 1);
}

START_TEST(test_notify_poll_inside_callback_is_edeadlk)
{
	enum { N = 4 };
	iop_pool *pool = pool_new(2);
	struct reentry r[N];
	atomic_int all;

	atomic_init(&all, 0);
	for (int i = 0; i < N; i++) {
		r[i].pool = pool;
		r[i].poll = r[i].wait0 = r[i].wait100 = r[i].wait_forever = 1;
		atomic_init(&r[i].calls, 0);
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
					       reentry_done, &r[i]));
	}
	for (;;) {
		int n = 0;

		for (int i = 0; i < N; i++)
			n += load_int(&r[i].calls);
		if (n == N)
			break;
		ck_assert_int_gt(iop_wait(pool, TEST_WAIT_MS), 0);
	}
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&r[i].calls), 1);
		ck_assert_int_eq(r[i].poll, -EDEADLK);
		ck_assert_int_eq(r[i].wait0, -EDEADLK);
		ck_assert_int_eq(r[i].wait100, -EDEADLK);
		ck_assert_int_eq(r[i].wait_forever, -EDEADLK);
	}
	/* Outside a callback, polling works again. */
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* A callback that parks its (polling) thread on a gate. */
struct parked {
	struct gate *gate;
	sem_t *inside;
	atomic_int calls;
};

static void parked_done(iop_job *job, ssize_t result, void *arg)
{
	struct parked *p = arg;

	(void)job;
	(void)result;
	sem_post(p->inside);
	gate_wait(p->gate);
	atomic_fetch_add(&p->calls, 1);
}

struct poller {
	iop_pool *pool;
	int rc;
};

static void *poller_thread(void *arg)
{
	struct poller *p = arg;

	p->rc = iop_wait(p->pool, -1);
	return NULL;
}

START_TEST(test_notify_second_poller_gets_ebusy)
{
	iop_pool *pool = pool_new(2);
	struct parked pk;
	struct poller pl = { .pool = pool, .rc = -12345 };
	struct gate g;
	sem_t inside;
	pthread_t t;

	gate_init(&g);
	ck_assert_int_eq(sem_init(&inside, 0, 0), 0);
	pk.gate = &g;
	pk.inside = &inside;
	atomic_init(&pk.calls, 0);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       parked_done, &pk));
	ck_assert_int_eq(pthread_create(&t, NULL, poller_thread, &pl), 0);
	/* The other thread is now inside iop_wait(), running a callback. */
	sem_wait_n(&inside, 1);
	ck_assert_int_eq(iop_poll(pool), -EBUSY);
	ck_assert_int_eq(iop_wait(pool, 0), -EBUSY);
	gate_open(&g);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(pl.rc, 1);
	ck_assert_int_eq(load_int(&pk.calls), 1);
	/* That thread is done polling: this one may now. */
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	sem_destroy(&inside);
	gate_destroy(&g);
}
END_TEST

/*
 * Jobs that keep a worker's CPU busy for about 50 us, queued behind each
 * other on one worker: the worker may hold back the doorbell for their
 * callbacks while more of them wait (the thread in iop_wait() then wakes
 * for several at once).  Behind them comes a job that blocks until the
 * test lets it go, with more queued after it, so that the worker is
 * still allowed to hold the last ring while it blocks.  Every callback of
 * a job that ended must still reach the program.
 */
#define HOLD_BUSY	64
#define HOLD_AFTER	3

struct hold_run {
	iop_pool *pool;
	int64_t callback_ns;		/* each busy callback spins this long */
	atomic_int *calls;		/* per busy job */
	atomic_int busy_done;		/* busy jobs before the blocker */
	struct done_rec blocked;
	struct done_rec after;
	struct held h;
	struct gate g;
	struct held first;		/* holds the run back, if asked */
	struct done_rec started;
};

static void spin_ns(int64_t ns)
{
	int64_t end = now_ns() + ns;

	while (now_ns() < end)
		;
}

static ssize_t busy_50us(void *ctx)
{
	spin_ns(50000);
	return (ssize_t)(intptr_t)ctx;
}

static void busy_done(iop_job *job, ssize_t result, void *arg)
{
	struct hold_run *r = arg;

	(void)job;
	spin_ns(r->callback_ns);
	if (result >= 0 && result < HOLD_BUSY) {
		atomic_fetch_add(&r->calls[result], 1);
		atomic_fetch_add(&r->busy_done, 1);
	}
}

/* Wait (yielding) until the pool's one worker is idle. */
static bool worker_idle(iop_pool *pool)
{
	struct iop_stats st = { .size = sizeof(st) };
	int64_t end = now_ns() + (int64_t)TEST_WAIT_MS * 1000000;

	do {
		ck_assert_int_eq(iop_pool_stats(pool, &st), 0);
		if (st.threads_idle == 1)
			return true;
		sched_yield();
	} while (now_ns() < end);
	return false;
}

/*
 * Queue the run.  The worker first runs HOLD_BUSY busy jobs on their own,
 * so that it knows they keep its CPU busy.  With @start, the run waits
 * behind a job held on that gate.
 */
static void hold_run_start(struct hold_run *r, int64_t callback_ns,
			   struct gate *start)
{
	intptr_t i;

	r->pool = pool_new(1);
	r->callback_ns = 0;
	r->calls = counters_new(HOLD_BUSY);
	atomic_init(&r->busy_done, 0);
	for (i = 0; i < HOLD_BUSY; i++)
		ck_assert_ptr_nonnull(iop_call(r->pool, busy_50us, (void *)i,
					       busy_done, r));
	drain_until(r->pool, &r->busy_done, HOLD_BUSY);
	ck_assert_uint_eq(counters_count_not(r->calls, HOLD_BUSY, 1), 0);
	free(r->calls);
	/* Once the worker sleeps, nothing is left to ring: the descriptor
	 * stays quiet until the run below makes it readable. */
	ck_assert(worker_idle(r->pool));
	ck_assert_int_eq(iop_poll(r->pool), 0);
	ck_assert_int_eq(fd_readable(iop_pool_fd(r->pool), 0), 0);

	r->callback_ns = callback_ns;
	r->calls = counters_new(HOLD_BUSY);
	atomic_store(&r->busy_done, 0);
	done_rec_init(&r->blocked);
	done_rec_init(&r->after);
	gate_init(&r->g);
	held_init(&r->h, &r->g, NULL, 5);
	done_rec_init(&r->started);
	if (start) {
		held_init(&r->first, start, NULL, 0);
		ck_assert_ptr_nonnull(iop_call(r->pool, held_work, &r->first,
					       done_record, &r->started));
	}
	for (i = 0; i < HOLD_BUSY; i++)
		ck_assert_ptr_nonnull(iop_call(r->pool, busy_50us, (void *)i,
					       busy_done, r));
	ck_assert_ptr_nonnull(iop_call(r->pool, held_work, &r->h,
				       done_record, &r->blocked));
	for (i = 0; i < HOLD_AFTER; i++)
		ck_assert_ptr_nonnull(iop_call(r->pool, work_return_ctx,
					       (void *)i, done_record,
					       &r->after));
}

/* The blocked job never ran its callback early; let it go, and every
 * callback runs exactly once. */
static void hold_run_finish(struct hold_run *r)
{
	ck_assert_int_eq(load_int(&r->blocked.calls), 0);
	gate_open(&r->g);
	drain_until(r->pool, &r->after.calls, HOLD_AFTER);
	drain_until(r->pool, &r->blocked.calls, 1);
	ck_assert_int_eq(load_long(&r->blocked.result), 5);
	ck_assert_uint_eq(counters_count_not(r->calls, HOLD_BUSY, 1), 0);
	ck_assert_int_eq(load_int(&r->busy_done), HOLD_BUSY);
	iop_pool_destroy(r->pool);
	gate_destroy(&r->g);
	free(r->calls);
}

/* Opens the gate if the test is still waiting after 10 s: a callback the
 * worker held back never came. */
struct hold_guard {
	struct gate *g;
	sem_t done;
	atomic_bool opened;
	pthread_t thread;
};

static void *hold_guard_main(void *arg)
{
	struct hold_guard *hg = arg;
	struct timespec ts;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	do
		r = sem_timedwait(&hg->done, &ts);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		atomic_store(&hg->opened, true);
		gate_open(hg->g);
	}
	return NULL;
}

/*
 * iop_wait(pool, -1) with no time limit returns with every callback of
 * the busy jobs while the worker blocks in the next job, holding back the
 * last ring: the waiting thread sleeps no longer than the pool lets a ring
 * be held.
 */
START_TEST(test_notify_held_ring_reaches_wait)
{
	struct hold_run r;
	struct hold_guard hg = { .g = &r.g };
	int n;

	hold_run_start(&r, 0, NULL);
	ck_assert_int_eq(sem_init(&hg.done, 0, 0), 0);
	atomic_init(&hg.opened, false);
	ck_assert_int_eq(pthread_create(&hg.thread, NULL, hold_guard_main,
					&hg), 0);
	while (load_int(&r.busy_done) < HOLD_BUSY) {
		n = iop_wait(r.pool, -1);
		ck_assert_int_ge(n, 1);
	}
	ck_assert(!atomic_load(&hg.opened));
	ck_assert_int_eq(sem_post(&hg.done), 0);
	ck_assert_int_eq(pthread_join(hg.thread, NULL), 0);
	sem_destroy(&hg.done);
	hold_run_finish(&r);
}
END_TEST

/*
 * A program that switches between iop_wait() and polling the descriptor
 * itself: after iop_wait() returns, a ring a worker holds back reaches
 * the descriptor, and completions pushed outside iop_wait() are never
 * held.  The run starts once the test's thread sleeps in iop_wait()
 * (best effort), so that the worker holds rings from the first job; the
 * callbacks are slower than the jobs, so that it runs ahead, and still
 * holds a ring for jobs that ended while iop_wait() ran callbacks when it
 * reaches the job that blocks.
 */
START_TEST(test_notify_held_ring_reaches_descriptor_after_wait)
{
	struct hold_run r;
	struct opener o;
	struct gate start;
	unsigned i = 0;
	int fd;

	gate_init(&start);
	hold_run_start(&r, 200000, &start);
	fd = iop_pool_fd(r.pool);
	opener_start(&o, &start, gettid_compat());
	opener_go(&o);
	while (load_int(&r.busy_done) < HOLD_BUSY) {
		if (i++ % 2 == 0) {
			ck_assert_int_ge(iop_wait(r.pool, -1), 1);
			continue;
		}
		if (fd_readable(fd, 10000) != 1) {
			gate_open(&r.g);	/* let the pool go down */
			ck_abort_msg("a completion never made the "
				     "descriptor readable");
		}
		ck_assert_int_ge(iop_poll(r.pool), 0);
	}
	opener_join(&o);
	ck_assert_int_eq(load_int(&r.started.calls), 1);
	hold_run_finish(&r);
	gate_destroy(&start);
}
END_TEST

static Suite *notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc;

	tc = tcase_new("fd");
	tcase_add_test(tc, test_notify_fd_is_cloexec_and_nonblocking);
	tcase_add_test(tc, test_notify_fd_is_the_configured_kind);
	tcase_add_test(tc, test_notify_fd_not_readable_when_idle);
	tcase_add_test(tc,
		       test_notify_fd_readable_after_completion_until_polled);
	tcase_add_test(tc, test_notify_burst_of_10000_delivered_by_one_poll);
	tcase_add_test(tc, test_notify_event_loop_loses_no_wakeup);
	suite_add_tcase(s, tc);

	tc = tcase_new("poll");
	tcase_add_test(tc, test_notify_poll_idle_returns_zero);
	tcase_add_test(tc,
		test_notify_budget_leftovers_keep_new_completion_readable);
	tcase_add_test(tc, test_notify_poll_inside_callback_is_edeadlk);
	tcase_add_test(tc, test_notify_second_poller_gets_ebusy);
	suite_add_tcase(s, tc);

	tc = tcase_new("wait");
	tcase_add_test(tc, test_notify_wait_zero_returns_zero);
	tcase_add_test(tc, test_notify_wait_times_out_when_idle);
	tcase_add_test(tc, test_notify_wait_times_out_with_job_held);
	tcase_add_test(tc, test_notify_wait_below_minus_one_is_einval);
	tcase_add_test(tc, test_notify_wait_forever_returns_after_completion);
	suite_add_tcase(s, tc);

	tc = tcase_new("hold");
	tcase_add_test(tc, test_notify_held_ring_reaches_wait);
	tcase_add_test(tc, test_notify_held_ring_reaches_descriptor_after_wait);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(notify_suite());
}
