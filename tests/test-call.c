/*
 * Suite "call": iop_call() completes each job exactly once with its own
 * result, callbacks run on the polling thread only (never on a worker,
 * never inside a submit), callbacks may resubmit, and workers block every
 * signal so that signals reach the program's own thread.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* Set by the test thread around each submit call it makes. */
static atomic_int in_submit;

/* Counts shared by every job of one test. */
struct tally {
	atomic_int done;
	atomic_int wrong_result;
	atomic_int off_thread;
	atomic_int during_submit;
};

/* One call job: what it should return and what happened to it. */
struct cjob {
	struct tally *t;
	ssize_t want;
	atomic_int ran;
	atomic_int calls;
	pthread_t worker;	/* written by the work function */
	pthread_t cb_thread;	/* written by the callback */
};

static void tally_init(struct tally *t)
{
	atomic_init(&t->done, 0);
	atomic_init(&t->wrong_result, 0);
	atomic_init(&t->off_thread, 0);
	atomic_init(&t->during_submit, 0);
	atomic_store(&in_submit, 0);
}

static struct cjob *cjobs_new(size_t n, struct tally *t)
{
	struct cjob *c = calloc(n, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	for (size_t i = 0; i < n; i++) {
		c[i].t = t;
		c[i].want = (ssize_t)i;
		atomic_init(&c[i].ran, 0);
		atomic_init(&c[i].calls, 0);
	}
	return c;
}

static ssize_t cjob_work(void *ctx)
{
	struct cjob *c = ctx;

	c->worker = pthread_self();
	atomic_fetch_add(&c->ran, 1);
	return c->want;
}

static void cjob_done(iop_job *job, ssize_t result, void *arg)
{
	struct cjob *c = arg;

	(void)job;
	c->cb_thread = pthread_self();
	if (result != c->want)
		atomic_fetch_add(&c->t->wrong_result, 1);
	if (!on_test_thread())
		atomic_fetch_add(&c->t->off_thread, 1);
	if (load_int(&in_submit))
		atomic_fetch_add(&c->t->during_submit, 1);
	atomic_fetch_add(&c->calls, 1);
	atomic_fetch_add(&c->t->done, 1);
}

static void submit_cjob(iop_pool *pool, struct cjob *c)
{
	iop_job *job;

	atomic_store(&in_submit, 1);
	job = iop_call(pool, cjob_work, c, cjob_done, c);
	atomic_store(&in_submit, 0);
	ck_assert_ptr_nonnull(job);
}

static size_t cjobs_not_once(struct cjob *c, size_t n)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		if (load_int(&c[i].ran) != 1 || load_int(&c[i].calls) != 1)
			bad++;
	return bad;
}

START_TEST(test_call_100k_each_once_with_own_result)
{
	enum { N = 100000 };
	iop_pool *pool = pool_new(4);
	struct tally t;
	struct cjob *c;

	tally_init(&t);
	c = cjobs_new(N, &t);
	for (size_t i = 0; i < N; i++)
		submit_cjob(pool, &c[i]);
	drain_until(pool, &t.done, N);
	ck_assert_int_eq(cjobs_not_once(c, N), 0);
	ck_assert_int_eq(load_int(&t.wrong_result), 0);
	ck_assert_int_eq(load_int(&t.off_thread), 0);
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	/* Destroy had nothing left to deliver. */
	ck_assert_int_eq(load_int(&t.done), N);
	free(c);
}
END_TEST

START_TEST(test_call_result_passes_through)
{
	static const ssize_t values[] = {
		12345, 1, 0, -ENOENT, -EIO, -ECANCELED, SSIZE_MAX,
	};
	enum { N = sizeof(values) / sizeof(values[0]) };
	iop_pool *pool = pool_new(0);
	struct tally t;
	struct cjob *c;

	tally_init(&t);
	c = cjobs_new(N, &t);
	for (size_t i = 0; i < N; i++) {
		c[i].want = values[i];
		submit_cjob(pool, &c[i]);
	}
	drain_until(pool, &t.done, N);
	ck_assert_int_eq(load_int(&t.wrong_result), 0);
	ck_assert_int_eq(cjobs_not_once(c, N), 0);
	iop_pool_destroy(pool);
	free(c);
}
END_TEST

START_TEST(test_call_null_fn_is_einval)
{
	iop_pool *pool = pool_new(0);
	struct done_rec d;

	done_rec_init(&d);
	errno = 0;
	ck_assert_ptr_null(iop_call(pool, NULL, NULL, done_record, &d));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(iop_call(pool, NULL, &d, NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(iop_call(NULL, work_return_ctx, NULL, done_record,
				    &d));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(iop_call(NULL, work_return_ctx, NULL, NULL, NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

START_TEST(test_call_callbacks_on_polling_thread_only)
{
	enum { N = 5000, THREADS = 4 };
	iop_pool *pool = pool_new(THREADS);
	struct tally t;
	struct cjob *c;
	pthread_t seen[THREADS + 1];
	int nseen = 0, cb_elsewhere = 0;

	tally_init(&t);
	c = cjobs_new(N, &t);
	for (size_t i = 0; i < N; i++) {
		submit_cjob(pool, &c[i]);
		if (i % 100 == 99)
			ck_assert_int_ge(iop_poll(pool), 0);
	}
	drain_until(pool, &t.done, N);
	ck_assert_int_eq(cjobs_not_once(c, N), 0);
	for (size_t i = 0; i < N; i++) {
		int known = 0;

		if (!pthread_equal(c[i].cb_thread, test_thread()))
			cb_elsewhere++;
		/* Short jobs may run on this thread while it waits in
		 * iop_wait() (see iop_work_fn): count the others. */
		if (pthread_equal(c[i].worker, test_thread()))
			continue;
		for (int k = 0; k < nseen; k++)
			known |= pthread_equal(seen[k], c[i].worker) != 0;
		if (!known && nseen <= THREADS)
			seen[nseen++] = c[i].worker;
	}
	ck_assert_int_eq(cb_elsewhere, 0);
	ck_assert_int_eq(load_int(&t.off_thread), 0);
	/* Other work ran on the pool's own threads, no more than it has. */
	ck_assert_int_le(nseen, THREADS);
	iop_pool_destroy(pool);
	free(c);
}
END_TEST

START_TEST(test_call_no_callback_inside_submit)
{
	enum { N = 20000 };
	iop_pool *pool = pool_new(4);
	struct tally t;
	struct cjob *c;

	tally_init(&t);
	c = cjobs_new(N, &t);
	/* Submit in bursts with polls between, so completions are due
	 * while the next submits run. */
	for (size_t i = 0; i < N; i++) {
		submit_cjob(pool, &c[i]);
		if (i % 50 == 49)
			ck_assert_int_ge(iop_poll(pool), 0);
	}
	drain_until(pool, &t.done, N);
	ck_assert_int_eq(load_int(&t.during_submit), 0);
	ck_assert_int_eq(cjobs_not_once(c, N), 0);
	iop_pool_destroy(pool);
	free(c);
}
END_TEST

/* A chain: each step's callback submits the next step. */
struct chain {
	iop_pool *pool;
	int step;		/* touched by the work fn, then the callback */
	int len;
	atomic_int *finished;	/* shared by all chains */
	atomic_int wrong;
	atomic_int submit_failed;
	atomic_int steps_done;
};

static ssize_t chain_work(void *ctx)
{
	struct chain *ch = ctx;

	return ch->step;
}

static void chain_done(iop_job *job, ssize_t result, void *arg)
{
	struct chain *ch = arg;

	(void)job;
	if (result != ch->step)
		atomic_fetch_add(&ch->wrong, 1);
	atomic_fetch_add(&ch->steps_done, 1);
	ch->step++;
	if (ch->step == ch->len) {
		atomic_fetch_add(ch->finished, 1);
		return;
	}
	atomic_store(&in_submit, 1);
	if (iop_call(ch->pool, chain_work, ch, chain_done, ch) == NULL) {
		atomic_fetch_add(&ch->submit_failed, 1);
		atomic_fetch_add(ch->finished, 1);
	}
	atomic_store(&in_submit, 0);
}

START_TEST(test_call_callback_resubmits_chain)
{
	enum { CHAINS = 8, LEN = 1000 };
	iop_pool *pool = pool_new(4);
	struct chain ch[CHAINS];
	atomic_int finished;

	atomic_init(&finished, 0);
	for (int i = 0; i < CHAINS; i++) {
		ch[i].pool = pool;
		ch[i].step = 0;
		ch[i].len = LEN;
		ch[i].finished = &finished;
		atomic_init(&ch[i].wrong, 0);
		atomic_init(&ch[i].submit_failed, 0);
		atomic_init(&ch[i].steps_done, 0);
		ck_assert_ptr_nonnull(iop_call(pool, chain_work, &ch[i],
					       chain_done, &ch[i]));
	}
	drain_until(pool, &finished, CHAINS);
	for (int i = 0; i < CHAINS; i++) {
		ck_assert_int_eq(load_int(&ch[i].submit_failed), 0);
		ck_assert_int_eq(load_int(&ch[i].wrong), 0);
		ck_assert_int_eq(load_int(&ch[i].steps_done), LEN);
		ck_assert_int_eq(ch[i].step, LEN);
	}
	ck_assert_int_eq(iop_wait(pool, 10), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* A worker's view of its signal mask, taken while it is held. */
struct sigview {
	struct gate *gate;
	sem_t *entered;
	int missing;		/* signals_not_blocked() */
	int named;		/* of SIGINT, SIGALRM, SIGUSR1, SIGTERM:
				 * how many sigismember() says are blocked */
	pthread_t worker;
};

static ssize_t sigview_work(void *ctx)
{
	static const int named[] = { SIGINT, SIGALRM, SIGUSR1, SIGTERM };
	struct sigview *v = ctx;
	sigset_t m;

	v->worker = pthread_self();
	v->missing = signals_not_blocked();
	v->named = 0;
	if (pthread_sigmask(SIG_BLOCK, NULL, &m) == 0)
		for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
			v->named += sigismember(&m, named[i]) == 1;
	sem_post(v->entered);
	/* Stay busy so the next job must go to another worker. */
	gate_wait(v->gate);
	return 0;
}

START_TEST(test_call_workers_block_every_signal)
{
	enum { THREADS = 8 };
	struct sigview v[THREADS];
	struct done_rec d;
	struct gate g;
	sem_t entered;
	sigset_t before, after;
	iop_pool *pool;

	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);
	pool = pool_new(THREADS);
	/* Creating the pool leaves the caller's mask alone. */
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
	for (int sig = 1; sig < 32; sig++)
		ck_assert_int_eq(sigismember(&before, sig),
				 sigismember(&after, sig));
	ck_assert_int_eq(sigismember(&after, SIGALRM), 0);

	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&d);
	for (int i = 0; i < THREADS; i++) {
		v[i].gate = &g;
		v[i].entered = &entered;
		v[i].missing = -2;
		ck_assert_ptr_nonnull(iop_call(pool, sigview_work, &v[i],
					       done_record, &d));
	}
	/* Every worker is now inside one of the jobs. */
	sem_wait_n(&entered, THREADS);
	gate_open(&g);
	drain_until(pool, &d.calls, THREADS);
	for (int i = 0; i < THREADS; i++) {
		ck_assert_msg(v[i].missing == 0,
			      "worker %d: %d signals not blocked", i,
			      v[i].missing);
		ck_assert_int_eq(v[i].named, 4);
		for (int k = 0; k < i; k++)
			ck_assert(!pthread_equal(v[i].worker, v[k].worker));
	}
	iop_pool_destroy(pool);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

static atomic_int alarm_count;
static atomic_int alarm_elsewhere;

static void on_alarm(int sig)
{
	(void)sig;
	if (!on_test_thread())
		atomic_fetch_add(&alarm_elsewhere, 1);
	atomic_fetch_add(&alarm_count, 1);
}

/*
 * A process-directed SIGALRM sent while every worker is busy in a job
 * goes to the test thread, the only thread that does not block it.
 * The test thread blocks SIGALRM around kill() so it can check that the
 * signal stayed pending (no worker took it), then takes it in
 * sigsuspend().
 */
START_TEST(test_call_sigalrm_handled_on_test_thread)
{
	enum { THREADS = 4, ROUNDS = 3 };
	struct sigaction sa, old_sa;
	struct held h[THREADS];
	struct done_rec d;
	struct gate g;
	sem_t entered;
	sigset_t alrm, old_mask, wait_mask, pending;
	iop_pool *pool;

	atomic_store(&alarm_count, 0);
	atomic_store(&alarm_elsewhere, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, &old_sa), 0);

	pool = pool_new(THREADS);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&d);
	for (int i = 0; i < THREADS; i++) {
		held_init(&h[i], &g, &entered, 100 + i);
		ck_assert_ptr_nonnull(iop_call(pool, held_work, &h[i],
					       done_record, &d));
	}
	sem_wait_n(&entered, THREADS);

	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &alrm, &old_mask), 0);
	wait_mask = old_mask;
	sigdelset(&wait_mask, SIGALRM);
	for (int r = 0; r < ROUNDS; r++) {
		ck_assert_int_eq(kill(getpid(), SIGALRM), 0);
		ck_assert_int_eq(sigpending(&pending), 0);
		ck_assert_int_eq(sigismember(&pending, SIGALRM), 1);
		ck_assert_int_eq(load_int(&alarm_count), r);
		ck_assert_int_eq(sigsuspend(&wait_mask), -1);
		ck_assert_int_eq(load_int(&alarm_count), r + 1);
	}
	ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &old_mask, NULL), 0);

	gate_open(&g);
	drain_until(pool, &d.calls, THREADS);
	iop_pool_destroy(pool);
	ck_assert_int_eq(sigaction(SIGALRM, &old_sa, NULL), 0);
	ck_assert_int_eq(load_int(&alarm_count), ROUNDS);
	ck_assert_int_eq(load_int(&alarm_elsewhere), 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(load_int(&h[i].ran), 1);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST


/*
 * One short job at a time, each waited for with iop_wait(): count how
 * many of @n ran on the waiting (test) thread, stopping at the first one
 * with @stop.  (The submit also wakes a worker, which may take the job
 * first: how often the waiting thread does depends on the load.)
 */
static int one_at_a_time_on_waiter(iop_pool *pool, int n, bool stop)
{
	struct tally t;
	struct cjob *c;
	int on_waiter = 0;

	tally_init(&t);
	c = cjobs_new((size_t)n, &t);
	for (int i = 0; i < n; i++) {
		submit_cjob(pool, &c[i]);
		drain_until(pool, &t.done, i + 1);
		on_waiter += pthread_equal(c[i].worker, test_thread()) != 0;
		if (stop && on_waiter > 0) {
			n = i + 1;
			break;
		}
	}
	ck_assert_int_eq(cjobs_not_once(c, (size_t)n), 0);
	ck_assert_int_eq(load_int(&t.wrong_result), 0);
	free(c);
	return on_waiter;
}

/*
 * A short job waited for alone, with every worker idle, runs on the
 * waiting thread (iop_work_fn); with IOP_POOL_WORKERS_ONLY never.
 */
START_TEST(test_call_short_job_runs_on_waiter_unless_workers_only)
{
	struct iop_options only = { .threads = 2,
				    .flags = IOP_POOL_WORKERS_ONLY };
	iop_pool *pool = pool_new(2);

	/* The first calls teach the pool that cjob_work is short. */
	ck_assert_int_gt(one_at_a_time_on_waiter(pool, 5000, true), 0);
	iop_pool_destroy(pool);

	pool = pool_new_opts(&only);
	ck_assert_int_eq(one_at_a_time_on_waiter(pool, 300, false), 0);
	iop_pool_destroy(pool);
}
END_TEST

static Suite *call_suite(void)
{
	Suite *s = suite_create("call");
	TCase *tc;

	tc = tcase_new("results");
	tcase_add_test(tc, test_call_100k_each_once_with_own_result);
	tcase_add_test(tc, test_call_result_passes_through);
	tcase_add_test(tc, test_call_null_fn_is_einval);
	suite_add_tcase(s, tc);

	tc = tcase_new("callbacks");
	tcase_add_test(tc, test_call_callbacks_on_polling_thread_only);
	tcase_add_test(tc, test_call_no_callback_inside_submit);
	tcase_add_test(tc, test_call_callback_resubmits_chain);
	tcase_add_test(tc, test_call_short_job_runs_on_waiter_unless_workers_only);
	suite_add_tcase(s, tc);

	tc = tcase_new("signals");
	tcase_add_test(tc, test_call_workers_block_every_signal);
	tcase_add_test(tc, test_call_sigalrm_handled_on_test_thread);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(call_suite());
}
