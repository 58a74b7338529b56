/*
 * Suite "threads": several submitting threads at once, futures and
 * callbacks mixed across threads, pools of 1 and 16 workers, several
 * pools each polled by its own thread, and the polling thread changing.
 * Every job must end exactly once.
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
#include <unistd.h>

#include "helpers.h"

/* Counts shared by the jobs of one test. */
struct tally {
	atomic_int ended;	/* callbacks run, plus failed submits */
	atomic_int submit_failed;
	atomic_int wrong;
	atomic_int off_thread;	/* callbacks not on the expected thread */
	atomic_int running;	/* work functions running right now */
	atomic_int max_running;
};

static void tally_init(struct tally *t)
{
	atomic_init(&t->ended, 0);
	atomic_init(&t->submit_failed, 0);
	atomic_init(&t->wrong, 0);
	atomic_init(&t->off_thread, 0);
	atomic_init(&t->running, 0);
	atomic_init(&t->max_running, 0);
}

/* One job: its expected result, its counters, where it ran. */
struct tjob {
	struct tally *t;
	ssize_t want;
	pthread_t poller;	/* the thread its callback must run on */
	atomic_int ran;
	atomic_int calls;
	pthread_t worker;	/* written by the work function */
};

static struct tjob *tjobs_new(size_t n, struct tally *t)
{
	struct tjob *j = calloc(n, sizeof(*j));

	ck_assert_ptr_nonnull(j);
	for (size_t i = 0; i < n; i++) {
		j[i].t = t;
		j[i].want = (ssize_t)i;
		j[i].poller = test_thread();
		atomic_init(&j[i].ran, 0);
		atomic_init(&j[i].calls, 0);
	}
	return j;
}

static ssize_t tjob_work(void *ctx)
{
	struct tjob *j = ctx;
	int now = atomic_fetch_add(&j->t->running, 1) + 1;
	int max = load_int(&j->t->max_running);

	while (now > max &&
	       !atomic_compare_exchange_weak(&j->t->max_running, &max, now))
		;
	j->worker = pthread_self();
	atomic_fetch_add(&j->ran, 1);
	atomic_fetch_sub(&j->t->running, 1);
	return j->want;
}

static void tjob_done(iop_job *job, ssize_t result, void *arg)
{
	struct tjob *j = arg;

	(void)job;
	if (result != j->want)
		atomic_fetch_add(&j->t->wrong, 1);
	if (!pthread_equal(pthread_self(), j->poller))
		atomic_fetch_add(&j->t->off_thread, 1);
	atomic_fetch_add(&j->calls, 1);
	atomic_fetch_add(&j->t->ended, 1);
}

/* How many jobs did not run exactly once or got @calls callbacks. */
static size_t tjobs_bad(struct tjob *j, size_t n, int calls)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		if (load_int(&j[i].ran) != 1 ||
		    load_int(&j[i].calls) != calls)
			bad++;
	return bad;
}

/* A thread submitting a slice of jobs. */
struct submitter {
	iop_pool *pool;
	struct tjob *jobs;
	size_t n;
	pthread_t thread;
};

static void *submitter_main(void *arg)
{
	struct submitter *s = arg;

	for (size_t i = 0; i < s->n; i++) {
		struct tjob *j = &s->jobs[i];

		if (iop_call(s->pool, tjob_work, j, tjob_done, j) == NULL) {
			atomic_fetch_add(&j->t->submit_failed, 1);
			atomic_fetch_add(&j->t->ended, 1);
		}
	}
	return NULL;
}

START_TEST(test_threads_four_submitters_100k_callbacks)
{
	enum { THREADS = 4, PER = 25000, N = THREADS * PER };
	iop_pool *pool = pool_new(4);
	struct tally t;
	struct tjob *j;
	struct submitter s[THREADS];

	tally_init(&t);
	j = tjobs_new(N, &t);
	for (int k = 0; k < THREADS; k++) {
		s[k].pool = pool;
		s[k].jobs = j + k * PER;
		s[k].n = PER;
		ck_assert_int_eq(pthread_create(&s[k].thread, NULL,
						submitter_main, &s[k]), 0);
	}
	/* The test thread polls while the others submit. */
	drain_until(pool, &t.ended, N);
	for (int k = 0; k < THREADS; k++)
		ck_assert_int_eq(pthread_join(s[k].thread, NULL), 0);
	ck_assert_int_eq(load_int(&t.submit_failed), 0);
	ck_assert_int_eq(tjobs_bad(j, N, 1), 0);
	ck_assert_int_eq(load_int(&t.wrong), 0);
	ck_assert_int_eq(load_int(&t.off_thread), 0);
	ck_assert_int_le(load_int(&t.max_running), 4);
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&t.ended), N);
	free(j);
}
END_TEST

/*
 * Each thread submits futures and callback jobs alternately, awaiting
 * its own futures in batches; the test thread polls the callbacks.
 */
struct mixer {
	iop_pool *pool;
	struct tjob *jobs;
	size_t n;
	atomic_int awaited;
	atomic_int wrong;
	pthread_t thread;
};

static void *mixer_main(void *arg)
{
	enum { BATCH = 100 };
	struct mixer *m = arg;
	iop_job *pending[BATCH];
	size_t pidx[BATCH];
	int np = 0;

	for (size_t i = 0; i < m->n; i++) {
		struct tjob *j = &m->jobs[i];

		if (i % 2 == 0) {
			iop_job *f;

			f = iop_call(m->pool, tjob_work, j, NULL, NULL);
			if (f == NULL) {
				atomic_fetch_add(&j->t->submit_failed, 1);
				continue;
			}
			pidx[np] = i;
			pending[np++] = f;
		} else if (iop_call(m->pool, tjob_work, j, tjob_done, j) ==
			   NULL) {
			atomic_fetch_add(&j->t->submit_failed, 1);
			atomic_fetch_add(&j->t->ended, 1);
		}
		if (np == BATCH || i + 1 == m->n) {
			for (int k = 0; k < np; k++) {
				if (iop_await(pending[k]) !=
				    m->jobs[pidx[k]].want)
					atomic_fetch_add(&m->wrong, 1);
				atomic_fetch_add(&m->awaited, 1);
			}
			np = 0;
		}
	}
	return NULL;
}

START_TEST(test_threads_mixed_futures_and_callbacks)
{
	enum { THREADS = 4, PER = 5000, N = THREADS * PER };
	iop_pool *pool = pool_new(4);
	struct tally t;
	struct tjob *j;
	struct mixer m[THREADS];

	tally_init(&t);
	j = tjobs_new(N, &t);
	for (int k = 0; k < THREADS; k++) {
		m[k].pool = pool;
		m[k].jobs = j + k * PER;
		m[k].n = PER;
		atomic_init(&m[k].awaited, 0);
		atomic_init(&m[k].wrong, 0);
		/* Results are checked against the index within the slice. */
		for (size_t i = 0; i < PER; i++)
			m[k].jobs[i].want = (ssize_t)(k * 1000000 + i);
		ck_assert_int_eq(pthread_create(&m[k].thread, NULL, mixer_main,
						&m[k]), 0);
	}
	drain_until(pool, &t.ended, N / 2);
	for (int k = 0; k < THREADS; k++) {
		ck_assert_int_eq(pthread_join(m[k].thread, NULL), 0);
		ck_assert_int_eq(load_int(&m[k].awaited), PER / 2);
		ck_assert_int_eq(load_int(&m[k].wrong), 0);
	}
	ck_assert_int_eq(load_int(&t.submit_failed), 0);
	ck_assert_int_eq(load_int(&t.wrong), 0);
	ck_assert_int_eq(load_int(&t.off_thread), 0);
	for (size_t i = 0; i < N; i++) {
		/* Futures: ran once, no callback.  Others: both once. */
		ck_assert_int_eq(load_int(&j[i].ran), 1);
		ck_assert_int_eq(load_int(&j[i].calls), (int)(i % 2));
	}
	ck_assert_int_eq(iop_wait(pool, 0), 0);
	iop_pool_destroy(pool);
	free(j);
}
END_TEST

START_TEST(test_threads_one_worker_completes_all)
{
	enum { N = 10000 };
	iop_pool *pool = pool_new(1);
	struct tally t;
	struct tjob *j;
	size_t other = 0;
	pthread_t worker;
	bool worker_seen = false;

	tally_init(&t);
	j = tjobs_new(N, &t);
	for (size_t i = 0; i < N; i++)
		ck_assert_ptr_nonnull(iop_call(pool, tjob_work, &j[i],
					       tjob_done, &j[i]));
	drain_until(pool, &t.ended, N);
	ck_assert_int_eq(tjobs_bad(j, N, 1), 0);
	ck_assert_int_eq(load_int(&t.wrong), 0);
	ck_assert_int_eq(load_int(&t.off_thread), 0);
	/*
	 * One worker: never two jobs at once, not even while the waiting
	 * thread runs some itself, and every job on that worker or on the
	 * waiting thread.
	 */
	ck_assert_int_eq(load_int(&t.max_running), 1);
	for (size_t i = 0; i < N; i++) {
		if (pthread_equal(j[i].worker, test_thread()))
			continue;
		if (!worker_seen) {
			worker = j[i].worker;
			worker_seen = true;
		}
		other += !pthread_equal(j[i].worker, worker);
	}
	ck_assert_int_eq(other, 0);
	iop_pool_destroy(pool);
	free(j);
}
END_TEST

/* A closed loop: each callback submits the next job, a window at a time. */
struct loop {
	iop_pool *pool;
	struct tjob *jobs;
	size_t next, n;
};

static void loop_done(iop_job *job, ssize_t result, void *arg);

/* Jobs long enough that the waiting thread shares them with a worker,
 * short enough to count as short: a microsecond of work each. */
static ssize_t loop_work(void *ctx)
{
	int64_t until = now_ns() + 1000;

	while (now_ns() < until)
		;
	return tjob_work(ctx);
}

static void loop_submit(struct loop *l)
{
	struct tjob *j = &l->jobs[l->next++];

	if (iop_call(l->pool, loop_work, j, loop_done, l) == NULL) {
		atomic_fetch_add(&j->t->submit_failed, 1);
		atomic_fetch_add(&j->t->ended, 1);
	}
}

/* The result is the job's index (its want). */
static void loop_done(iop_job *job, ssize_t result, void *arg)
{
	struct loop *l = arg;

	if (result >= 0 && (size_t)result < l->n) {
		tjob_done(job, result, &l->jobs[result]);
	} else {
		atomic_fetch_add(&l->jobs[0].t->wrong, 1);
		atomic_fetch_add(&l->jobs[0].t->ended, 1);
	}
	if (l->next < l->n)
		loop_submit(l);
}

/*
 * The waiting thread runs short jobs its callbacks submit while workers
 * run the rest, take the next ones of the waiting thread's batch when
 * they run out, and look for more rather than sleep: every job still runs
 * once, its callback once on the waiting thread, and never more jobs run
 * at once than the pool has threads.
 */
START_TEST(test_threads_closed_loop_shared_with_waiting_thread)
{
	enum { THREADS = 2, WINDOW = 64, N = 50000 };
	iop_pool *pool = pool_new(THREADS);
	struct tally t;
	struct loop l;

	tally_init(&t);
	l = (struct loop){ .pool = pool, .jobs = tjobs_new(N, &t), .n = N };
	while (l.next < WINDOW)
		loop_submit(&l);
	drain_until(pool, &t.ended, N);
	ck_assert_int_eq(load_int(&t.submit_failed), 0);
	ck_assert_int_eq(tjobs_bad(l.jobs, N, 1), 0);
	ck_assert_int_eq(load_int(&t.wrong), 0);
	ck_assert_int_eq(load_int(&t.off_thread), 0);
	ck_assert_int_le(load_int(&t.max_running), THREADS);
	iop_pool_destroy(pool);
	free(l.jobs);
}
END_TEST

START_TEST(test_threads_sixteen_workers_complete_all)
{
	enum { THREADS = 16, N = 10000 };
	iop_pool *pool = pool_new(THREADS);
	struct held h[THREADS];
	struct done_rec hd;
	struct gate g;
	sem_t entered;
	struct tally t;
	struct tjob *j;

	/* Sixteen jobs are held at once, so there are sixteen workers. */
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&hd);
	for (int i = 0; i < THREADS; i++) {
		held_init(&h[i], &g, &entered, i);
		ck_assert_ptr_nonnull(iop_call(pool, held_work, &h[i],
					       done_record, &hd));
	}
	sem_wait_n(&entered, THREADS);

	tally_init(&t);
	j = tjobs_new(N, &t);
	for (size_t i = 0; i < N; i++)
		ck_assert_ptr_nonnull(iop_call(pool, tjob_work, &j[i],
					       tjob_done, &j[i]));
	/* Nothing else can run while all sixteen are held. */
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(load_int(&t.ended), 0);
	gate_open(&g);
	drain_until(pool, &t.ended, N);
	drain_until(pool, &hd.calls, THREADS);
	ck_assert_int_eq(tjobs_bad(j, N, 1), 0);
	ck_assert_int_eq(load_int(&t.wrong), 0);
	ck_assert_int_eq(load_int(&t.off_thread), 0);
	ck_assert_int_le(load_int(&t.max_running), THREADS);
	for (int a = 0; a < THREADS; a++)
		for (int b = 0; b < a; b++)
			ck_assert(!pthread_equal(h[a].worker, h[b].worker));
	iop_pool_destroy(pool);
	sem_destroy(&entered);
	gate_destroy(&g);
	free(j);
}
END_TEST

/* A thread with a pool of its own, polled by itself. */
struct owner {
	struct tally t;
	struct tjob *jobs;
	size_t n;
	int new_failed;
	int wait_err;
	pthread_t thread;
};

static void *owner_main(void *arg)
{
	struct owner *o = arg;
	struct iop_options opts = { .threads = 2 };
	iop_pool *pool = iop_pool_new(&opts);

	if (pool == NULL) {
		o->new_failed = 1;
		return NULL;
	}
	for (size_t i = 0; i < o->n; i++) {
		struct tjob *j = &o->jobs[i];

		j->poller = pthread_self();
		if (iop_call(pool, tjob_work, j, tjob_done, j) == NULL) {
			atomic_fetch_add(&o->t.submit_failed, 1);
			atomic_fetch_add(&o->t.ended, 1);
		}
	}
	o->wait_err = wait_until(pool, &o->t.ended, (int)o->n);
	iop_pool_destroy(pool);
	return NULL;
}

START_TEST(test_threads_pools_polled_by_own_threads)
{
	enum { THREADS = 4, PER = 5000 };
	struct owner o[THREADS];

	for (int k = 0; k < THREADS; k++) {
		tally_init(&o[k].t);
		o[k].jobs = tjobs_new(PER, &o[k].t);
		o[k].n = PER;
		o[k].new_failed = 0;
		o[k].wait_err = 0;
		ck_assert_int_eq(pthread_create(&o[k].thread, NULL, owner_main,
						&o[k]), 0);
	}
	for (int k = 0; k < THREADS; k++) {
		ck_assert_int_eq(pthread_join(o[k].thread, NULL), 0);
		ck_assert_int_eq(o[k].new_failed, 0);
		ck_assert_int_eq(o[k].wait_err, 0);
		ck_assert_int_eq(load_int(&o[k].t.submit_failed), 0);
		ck_assert_int_eq(load_int(&o[k].t.ended), PER);
		ck_assert_int_eq(load_int(&o[k].t.wrong), 0);
		/* Each callback ran on its own pool's polling thread. */
		ck_assert_int_eq(load_int(&o[k].t.off_thread), 0);
		ck_assert_int_eq(tjobs_bad(o[k].jobs, PER, 1), 0);
		free(o[k].jobs);
	}
}
END_TEST

/* Polls one pool until @target callbacks ended, then stops. */
struct relay {
	iop_pool *pool;
	atomic_int *ended;
	int target;
	int err;
};

static void *relay_main(void *arg)
{
	struct relay *r = arg;

	r->err = wait_until(r->pool, r->ended, r->target);
	return NULL;
}

static atomic_int relay_on_test_thread;
static atomic_int relay_elsewhere;

static void relay_done(iop_job *job, ssize_t result, void *arg)
{
	struct tjob *j = arg;

	(void)job;
	if (result != j->want)
		atomic_fetch_add(&j->t->wrong, 1);
	if (on_test_thread())
		atomic_fetch_add(&relay_on_test_thread, 1);
	else
		atomic_fetch_add(&relay_elsewhere, 1);
	atomic_fetch_add(&j->calls, 1);
	atomic_fetch_add(&j->t->ended, 1);
}

/*
 * Any thread may be the polling thread, one at a time: another thread
 * polls the first half, the test thread the rest.
 */
START_TEST(test_threads_polling_thread_may_change)
{
	enum { N = 2000 };
	iop_pool *pool = pool_new(4);
	struct tally t;
	struct tjob *j;
	struct relay r;
	pthread_t th;

	atomic_store(&relay_on_test_thread, 0);
	atomic_store(&relay_elsewhere, 0);
	tally_init(&t);
	j = tjobs_new(N, &t);
	for (size_t i = 0; i < N / 2; i++)
		ck_assert_ptr_nonnull(iop_call(pool, tjob_work, &j[i],
					       relay_done, &j[i]));
	r.pool = pool;
	r.ended = &t.ended;
	r.target = N / 2;
	r.err = 1;
	ck_assert_int_eq(pthread_create(&th, NULL, relay_main, &r), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(r.err, 0);
	ck_assert_int_eq(load_int(&relay_elsewhere), N / 2);
	for (size_t i = N / 2; i < N; i++)
		ck_assert_ptr_nonnull(iop_call(pool, tjob_work, &j[i],
					       relay_done, &j[i]));
	drain_until(pool, &t.ended, N);
	ck_assert_int_eq(load_int(&relay_on_test_thread), N / 2);
	ck_assert_int_eq(load_int(&relay_elsewhere), N / 2);
	ck_assert_int_eq(tjobs_bad(j, N, 1), 0);
	ck_assert_int_eq(load_int(&t.wrong), 0);
	iop_pool_destroy(pool);
	free(j);
}
END_TEST

static Suite *threads_suite(void)
{
	Suite *s = suite_create("threads");
	TCase *tc;

	tc = tcase_new("submitters");
	tcase_add_test(tc, test_threads_four_submitters_100k_callbacks);
	tcase_add_test(tc, test_threads_mixed_futures_and_callbacks);
	suite_add_tcase(s, tc);

	tc = tcase_new("workers");
	tcase_add_test(tc, test_threads_one_worker_completes_all);
	tcase_add_test(tc, test_threads_sixteen_workers_complete_all);
	tcase_add_test(tc, test_threads_closed_loop_shared_with_waiting_thread);
	suite_add_tcase(s, tc);

	tc = tcase_new("pollers");
	tcase_add_test(tc, test_threads_pools_polled_by_own_threads);
	tcase_add_test(tc, test_threads_polling_thread_may_change);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(threads_suite());
}
