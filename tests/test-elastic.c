/*
 * Suite "elastic": the number of worker threads follows the work.  Threads
 * start on demand up to the maximum, those above min_threads exit after
 * idle_timeout_ms, iop_pool_new() starts min_threads, and
 * iop_pool_set_threads() moves both limits at run time without losing,
 * repeating or interrupting a job.  Thread counts are read from
 * iop_pool_stats(), waiting for a state with a deadline, never sleeping.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

/* A short idle timeout, so that shrinking is seen quickly. */
#define IDLE_MS 50

/* What the jobs of one test share. */
struct crowd {
	struct gate gate;	/* held jobs block here */
	sem_t entered;		/* posted by each held job as it starts */
	atomic_int *runs;	/* per job: times its work ran */
	atomic_int *calls;	/* per job: times its callback ran */
	atomic_int ended;	/* callbacks run, all jobs */
	atomic_int wrong;	/* callbacks with an unexpected result */
	atomic_int running;	/* quick jobs running now */
	atomic_int max_running;
	size_t n;
};

/* One job: its index in the crowd, and whether it blocks on the gate. */
struct member {
	struct crowd *c;
	size_t i;
	bool held;
};

static struct member *crowd_init(struct crowd *c, size_t n)
{
	struct member *m = calloc(n, sizeof(*m));

	ck_assert_ptr_nonnull(m);
	gate_init(&c->gate);
	ck_assert_int_eq(sem_init(&c->entered, 0, 0), 0);
	c->runs = counters_new(n);
	c->calls = counters_new(n);
	atomic_init(&c->ended, 0);
	atomic_init(&c->wrong, 0);
	atomic_init(&c->running, 0);
	atomic_init(&c->max_running, 0);
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		m[i].c = c;
		m[i].i = i;
		m[i].held = false;
	}
	return m;
}

static void crowd_destroy(struct crowd *c, struct member *m)
{
	gate_destroy(&c->gate);
	sem_destroy(&c->entered);
	free(c->runs);
	free(c->calls);
	free(m);
}

/*
 * A held member posts entered and blocks on the gate; a quick one counts
 * how many quick members run at once.  Both return their index.
 */
static ssize_t member_work(void *ctx)
{
	struct member *m = ctx;
	struct crowd *c = m->c;

	atomic_fetch_add(&c->runs[m->i], 1);
	if (m->held) {
		sem_post(&c->entered);
		gate_wait(&c->gate);
	} else {
		int now = atomic_fetch_add(&c->running, 1) + 1;
		int max = atomic_load(&c->max_running);

		while (now > max && !atomic_compare_exchange_weak(
					    &c->max_running, &max, now))
			;
		/* Stay a moment, so that overlapping runs would be seen. */
		for (int k = 0; k < 20; k++)
			sched_yield();
		atomic_fetch_sub(&c->running, 1);
	}
	return (ssize_t)m->i;
}

static void member_done(iop_job *job, ssize_t result, void *arg)
{
	struct member *m = arg;

	(void)job;
	if (result != (ssize_t)m->i)
		atomic_fetch_add(&m->c->wrong, 1);
	atomic_fetch_add(&m->c->calls[m->i], 1);
	atomic_fetch_add(&m->c->ended, 1);
}

static void submit_member(iop_pool *pool, struct member *m, bool held)
{
	m->held = held;
	ck_assert_ptr_nonnull(iop_call(pool, member_work, m, member_done, m));
}

/* Every job ran once and had one callback with its own result. */
static void check_each_once(struct crowd *c)
{
	ck_assert_int_eq(counters_count_not(c->runs, c->n, 1), 0);
	ck_assert_int_eq(counters_count_not(c->calls, c->n, 1), 0);
	ck_assert_int_eq(load_int(&c->wrong), 0);
	ck_assert_int_eq(load_int(&c->ended), (int)c->n);
}

/* ---- Growing. ---- */

START_TEST(test_threads_grow_on_demand)
{
	enum { MAX = 4, N = 10 };
	struct iop_options opts = { .threads = MAX, .min_threads = 0 };
	iop_pool *pool = pool_new_opts(&opts);
	struct iop_stats st;
	struct crowd c;
	struct member *m = crowd_init(&c, N);

	/* min_threads 0: an idle pool has no thread at all. */
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 0);
	ck_assert_uint_eq(st.threads_started, 0);

	/* Each held job finds no idle thread, so one more starts. */
	for (unsigned k = 1; k <= MAX; k++) {
		submit_member(pool, &m[k - 1], true);
		ck_assert(sem_wait_n_ms(&c.entered, 1, TEST_WAIT_MS));
		pool_stats(pool, &st);
		ck_assert_uint_eq(st.threads, k);
		ck_assert_uint_eq(st.threads_started, k);
		ck_assert_uint_eq(st.threads_idle, 0);
		ck_assert_uint_eq(st.running, k);
		ck_assert_uint_eq(st.queued, 0);
	}

	/* The maximum is reached: more jobs wait, no thread starts. */
	for (unsigned k = MAX; k < N; k++)
		submit_member(pool, &m[k], true);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, MAX);
	ck_assert_uint_eq(st.threads_started, MAX);
	ck_assert_uint_eq(st.queued, N - MAX);
	ck_assert_int_eq(iop_poll(pool), 0);

	gate_open(&c.gate);
	drain_until(pool, &c.ended, N);
	check_each_once(&c);
	pool_stats(pool, &st);
	ck_assert_uint_le(st.threads, MAX);
	ck_assert_uint_eq(st.threads_started, MAX);
	ck_assert_uint_eq(st.submitted, N);
	ck_assert_uint_eq(st.completed, N);
	iop_pool_destroy(pool);
	crowd_destroy(&c, m);
}
END_TEST

/* ---- Shrinking. ---- */

/* Hold @n jobs of @m at once and see @n threads, then let them finish. */
static void hold_then_finish(iop_pool *pool, struct crowd *c,
			     struct member *m, unsigned n)
{
	struct iop_stats st;

	for (unsigned k = 0; k < n; k++)
		submit_member(pool, &m[k], true);
	ck_assert(sem_wait_n_ms(&c->entered, (int)n, TEST_WAIT_MS));
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, n);
	gate_open(&c->gate);
	drain_until(pool, &c->ended, (int)n);
}

START_TEST(test_threads_shrink_after_idle)
{
	enum { MAX = 4 };
	struct iop_options opts = { .threads = MAX,
				    .idle_timeout_ms = IDLE_MS };
	iop_pool *pool = pool_new_opts(&opts);
	struct iop_stats st;
	struct crowd c;
	struct member *m = crowd_init(&c, MAX + 1);

	c.n = MAX;
	hold_then_finish(pool, &c, m, MAX);
	check_each_once(&c);

	/* Idle for idle_timeout_ms, every thread above min_threads (0)
	 * exits. */
	ck_assert_uint_eq(wait_threads(pool, 0, TEST_WAIT_MS), 0);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads_started, MAX);

	/* A pool that has shrunk to nothing still runs the next job. */
	submit_member(pool, &m[MAX], false);
	c.n = MAX + 1;
	drain_until(pool, &c.ended, MAX + 1);
	check_each_once(&c);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads_started, MAX + 1);
	iop_pool_destroy(pool);
	crowd_destroy(&c, m);
}
END_TEST

START_TEST(test_threads_shrink_keeps_min_threads)
{
	enum { MAX = 4, MIN = 1 };
	struct iop_options opts = { .threads = MAX, .min_threads = MIN,
				    .idle_timeout_ms = IDLE_MS };
	iop_pool *pool = pool_new_opts(&opts);
	struct iop_stats st;
	struct crowd c;
	struct member *m = crowd_init(&c, MAX + 1);

	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, MIN);
	ck_assert_uint_eq(st.threads_started, MIN);

	/* The kept thread takes the first held job; three more start. */
	c.n = MAX;
	hold_then_finish(pool, &c, m, MAX);
	check_each_once(&c);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads_started, MAX);

	/* Down to min_threads, and it stays there over many timeouts. */
	ck_assert_uint_eq(wait_threads(pool, MIN, TEST_WAIT_MS), MIN);
	ck_assert_uint_eq(min_threads_seen(pool, 6 * IDLE_MS), MIN);

	/* The kept idle thread runs the next job: none starts for it. */
	submit_member(pool, &m[MAX], false);
	c.n = MAX + 1;
	drain_until(pool, &c.ended, MAX + 1);
	check_each_once(&c);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads_started, MAX);
	ck_assert_uint_eq(st.threads, MIN);
	iop_pool_destroy(pool);
	crowd_destroy(&c, m);
}
END_TEST

/* ---- Creation. ---- */

START_TEST(test_threads_min_started_by_pool_new)
{
	struct iop_options opts = { .threads = 4, .min_threads = 2,
				    .idle_timeout_ms = IDLE_MS };
	struct iop_options all = { .threads = 3, .min_threads = 3,
				   .idle_timeout_ms = IDLE_MS };
	iop_pool *pool = pool_new_opts(&opts);
	iop_pool *full = pool_new_opts(&all);
	struct iop_stats st;

	/* Started by iop_pool_new() itself, before any job. */
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 2);
	ck_assert_uint_eq(st.threads_started, 2);
	ck_assert_uint_eq(st.submitted, 0);
	pool_stats(full, &st);
	ck_assert_uint_eq(st.threads, 3);
	ck_assert_uint_eq(st.threads_started, 3);

	/* Idle far longer than idle_timeout_ms, they stay. */
	ck_assert_uint_eq(min_threads_seen(pool, 6 * IDLE_MS), 2);
	ck_assert_uint_eq(wait_threads(full, 3, 0), 3);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads_started, 2);
	iop_pool_destroy(full);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_threads_options_einval)
{
	struct iop_options above = { .threads = 4, .min_threads = 5 };
	struct iop_options above_default = { .min_threads = 5 };
	struct iop_options too_many = { .threads = IOP_THREADS_MAX + 1 };
	struct iop_options inline_min = { .flags = IOP_POOL_INLINE,
					  .min_threads = 1 };

	errno = 0;
	ck_assert_ptr_null(iop_pool_new(&above));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(iop_pool_new(&above_default));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(iop_pool_new(&too_many));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(iop_pool_new(&inline_min));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ---- iop_pool_set_threads(). ---- */

START_TEST(test_set_threads_at_runtime)
{
	enum { HELD = 3, QUICK = 20, N = HELD + QUICK };
	/* A long idle timeout: threads that leave here leave because of the
	 * maximum, not because they idled. */
	struct iop_options opts = { .threads = 1,
				    .idle_timeout_ms = 10 * TEST_WAIT_MS };
	iop_pool *pool = pool_new_opts(&opts);
	struct iop_stats st;
	struct crowd c;
	struct member *m = crowd_init(&c, N);

	/* One thread: one held job runs, two wait. */
	for (int k = 0; k < HELD; k++)
		submit_member(pool, &m[k], true);
	ck_assert(sem_wait_n_ms(&c.entered, 1, TEST_WAIT_MS));
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 1);
	ck_assert_uint_eq(st.queued, HELD - 1);

	/* Raising the maximum starts threads for the waiting jobs. */
	ck_assert_int_eq(iop_pool_set_threads(pool, 0, 3), 0);
	ck_assert(sem_wait_n_ms(&c.entered, HELD - 1, TEST_WAIT_MS));
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 3);
	ck_assert_uint_eq(st.threads_started, 3);
	ck_assert_uint_eq(st.queued, 0);

	/* Quick jobs queue behind the three held ones. */
	for (int k = HELD; k < N; k++)
		submit_member(pool, &m[k], false);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.queued, QUICK);

	/* Lowering the maximum interrupts nobody: all three still run. */
	ck_assert_int_eq(iop_pool_set_threads(pool, 0, 1), 0);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 3);
	ck_assert_uint_eq(st.running, 3);
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(load_int(&c.ended), 0);

	/* Released, the two threads above the maximum leave after their
	 * job: the quick jobs then run one at a time, each exactly once. */
	gate_open(&c.gate);
	drain_until(pool, &c.ended, N);
	check_each_once(&c);
	ck_assert_int_eq(load_int(&c.max_running), 1);
	ck_assert_uint_eq(wait_threads(pool, 1, TEST_WAIT_MS), 1);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads_started, 3);
	ck_assert_uint_eq(st.submitted, N);
	ck_assert_uint_eq(st.completed, N);

	/* A minimum above the current count starts threads now. */
	ck_assert_int_eq(iop_pool_set_threads(pool, 3, 4), 0);
	ck_assert_uint_eq(wait_threads(pool, 3, TEST_WAIT_MS), 3);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads_started, 5);
	ck_assert_uint_eq(st.submitted, N);
	iop_pool_destroy(pool);
	crowd_destroy(&c, m);
}
END_TEST

START_TEST(test_set_threads_min_kept_after_idle)
{
	struct iop_options opts = { .threads = 4,
				    .idle_timeout_ms = IDLE_MS };
	iop_pool *pool = pool_new_opts(&opts);
	struct iop_stats st;

	/* Two kept by the new minimum, over many idle timeouts. */
	ck_assert_int_eq(iop_pool_set_threads(pool, 2, 4), 0);
	ck_assert_uint_eq(wait_threads(pool, 2, TEST_WAIT_MS), 2);
	ck_assert_uint_eq(min_threads_seen(pool, 6 * IDLE_MS), 2);

	/* Minimum back to 0: they idle out. */
	ck_assert_int_eq(iop_pool_set_threads(pool, 0, 4), 0);
	ck_assert_uint_eq(wait_threads(pool, 0, TEST_WAIT_MS), 0);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads_started, 2);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_set_threads_einval)
{
	struct iop_options inl = { .flags = IOP_POOL_INLINE };
	iop_pool *pool = pool_new(2);
	iop_pool *inline_pool = pool_new_opts(&inl);
	struct iop_stats st;
	struct done_rec d;

	ck_assert_int_eq(iop_pool_set_threads(NULL, 0, 1), -EINVAL);
	ck_assert_int_eq(iop_pool_set_threads(pool, 0, 0), -EINVAL);
	ck_assert_int_eq(iop_pool_set_threads(pool, 2, 1), -EINVAL);
	ck_assert_int_eq(iop_pool_set_threads(pool, 0, IOP_THREADS_MAX + 1),
			 -EINVAL);
	ck_assert_int_eq(iop_pool_set_threads(pool, IOP_THREADS_MAX + 1,
					      IOP_THREADS_MAX + 1), -EINVAL);
	ck_assert_int_eq(iop_pool_set_threads(inline_pool, 0, 1), -EINVAL);

	/* The refused minimum of 2 above was not applied. */
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 0);

	/* The extremes are valid. */
	ck_assert_int_eq(iop_pool_set_threads(pool, 0, IOP_THREADS_MAX), 0);
	ck_assert_int_eq(iop_pool_set_threads(pool, 1, 1), 0);
	ck_assert_uint_eq(wait_threads(pool, 1, TEST_WAIT_MS), 1);

	/* Both pools still work. */
	done_rec_init(&d);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, (void *)7,
				       done_record, &d));
	ck_assert_ptr_nonnull(iop_call(inline_pool, work_return_ctx,
				       (void *)7, done_record, &d));
	drain_until(pool, &d.calls, 1);
	drain_until(inline_pool, &d.calls, 2);
	ck_assert_int_eq(load_long(&d.result), 7);
	iop_pool_destroy(inline_pool);
	iop_pool_destroy(pool);
}
END_TEST

/* ---- Churn: limits changing while jobs flow. ---- */

/* Submits its slice of jobs, directly and in batches. */
struct feeder {
	iop_pool *pool;
	struct member *m;
	size_t n;
	atomic_int failed;
	pthread_t thread;
};

static void *feeder_main(void *arg)
{
	struct feeder *f = arg;

	for (size_t i = 0; i < f->n; i++) {
		bool batch = i % 64 < 16;

		if (batch && i % 16 == 0 && iop_batch_begin(f->pool) != 0)
			atomic_fetch_add(&f->failed, 1);
		if (iop_call(f->pool, member_work, &f->m[i], member_done,
			     &f->m[i]) == NULL)
			atomic_fetch_add(&f->failed, 1);
		if (batch && (i % 16 == 15 || i + 1 == f->n) &&
		    iop_batch_end(f->pool) < 0)
			atomic_fetch_add(&f->failed, 1);
	}
	return NULL;
}

/* Moves the limits around until told to stop. */
struct changer {
	iop_pool *pool;
	atomic_bool stop;
	atomic_int changes;
	atomic_int errors;
	pthread_t thread;
};

static void *changer_main(void *arg)
{
	struct changer *ch = arg;
	struct timespec pace = { 0, 200000 };
	uint64_t rng = 0x9E3779B97F4A7C15ull;

	while (!atomic_load(&ch->stop)) {
		unsigned max = 1 + (unsigned)(rng_next(&rng) % 8);
		unsigned min = (unsigned)(rng_next(&rng) % (max + 1));

		if (iop_pool_set_threads(ch->pool, min, max) != 0)
			atomic_fetch_add(&ch->errors, 1);
		atomic_fetch_add(&ch->changes, 1);
		/* Pacing only: let jobs flow between changes. */
		nanosleep(&pace, NULL);
	}
	return NULL;
}

START_TEST(test_set_threads_churn_loses_no_job)
{
	enum { FEEDERS = 2, PER = 10000, N = FEEDERS * PER };
	/* Idle threads leave after 1 ms: threads come and go all along. */
	struct iop_options opts = { .threads = 8, .idle_timeout_ms = 1 };
	iop_pool *pool = pool_new_opts(&opts);
	struct iop_stats st;
	struct crowd c;
	struct member *m = crowd_init(&c, N);
	struct feeder f[FEEDERS];
	struct changer ch = { .pool = pool };

	atomic_init(&ch.stop, false);
	atomic_init(&ch.changes, 0);
	atomic_init(&ch.errors, 0);
	ck_assert_int_eq(pthread_create(&ch.thread, NULL, changer_main, &ch),
			 0);
	for (int k = 0; k < FEEDERS; k++) {
		f[k].pool = pool;
		f[k].m = m + k * PER;
		f[k].n = PER;
		atomic_init(&f[k].failed, 0);
		ck_assert_int_eq(pthread_create(&f[k].thread, NULL,
						feeder_main, &f[k]), 0);
	}
	drain_until(pool, &c.ended, N);
	for (int k = 0; k < FEEDERS; k++) {
		ck_assert_int_eq(pthread_join(f[k].thread, NULL), 0);
		ck_assert_int_eq(load_int(&f[k].failed), 0);
	}
	atomic_store(&ch.stop, true);
	ck_assert_int_eq(pthread_join(ch.thread, NULL), 0);
	ck_assert_int_eq(load_int(&ch.errors), 0);
	ck_assert_int_gt(load_int(&ch.changes), 0);

	check_each_once(&c);
	ck_assert_int_eq(iop_poll(pool), 0);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.submitted, N);
	ck_assert_uint_eq(st.completed, N);
	ck_assert_uint_eq(st.failed + st.cancelled + st.timed_out, 0);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_le(st.threads, 8);
	iop_pool_destroy(pool);
	crowd_destroy(&c, m);
}
END_TEST


/* ---- Thread creation failing. ---- */

/*
 * Make thread creation fail from here on, in this (forked) test process:
 * limit the address space to what is mapped now plus @room bytes, so that
 * a worker's 1 GiB stack no longer fits.  The sanitizers map terabytes of
 * shadow memory and cannot live under such a limit: the tests skip there.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LIMIT_AS_WORKS 0
#else
#define LIMIT_AS_WORKS 1
#endif

static void limit_address_space(size_t room)
{
	struct rlimit rl;
	unsigned long pages;
	FILE *f = fopen("/proc/self/statm", "r");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%lu", &pages), 1);
	fclose(f);
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &rl), 0);
	rl.rlim_cur = (rlim_t)pages * 4096 + room;
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
}

static void unlimit_address_space(void)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_AS, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
}

#define BIG_STACK ((size_t)1 << 30)

START_TEST(test_spawn_failure_fails_submit_clearly)
{
	struct iop_options opts = { .threads = 2, .stack_size = BIG_STACK };
	iop_pool *pool;
	struct iop_stats st;
	struct done_rec d;

	if (!LIMIT_AS_WORKS)
		return;
	pool = pool_new_opts(&opts);
	done_rec_init(&d);
	limit_address_space((size_t)256 << 20);

	/* No thread, and none can start: the submit says so, and nothing
	 * was queued or will call back. */
	errno = 0;
	ck_assert_ptr_null(iop_call(pool, work_return_ctx, (void *)1,
				    done_record, &d));
	ck_assert_msg(errno == EAGAIN || errno == ENOMEM, "errno %d", errno);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 0);
	ck_assert_uint_eq(st.submitted, 0);
	ck_assert_uint_eq(st.queued, 0);

	/* Once threads can start again, so can jobs. */
	unlimit_address_space();
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, (void *)2,
				       done_record, &d));
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_long(&d.result), 2);
	ck_assert_int_eq(load_int(&d.calls), 1);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_spawn_failure_keeps_jobs)
{
	enum { N = 5 };
	struct iop_options opts = { .threads = 4, .stack_size = BIG_STACK };
	iop_pool *pool;
	struct iop_stats st;
	struct crowd c;
	struct member *m;

	if (!LIMIT_AS_WORKS)
		return;
	pool = pool_new_opts(&opts);
	m = crowd_init(&c, N);
	/* Room for one worker's stack, not two. */
	limit_address_space(((size_t)3 << 29));

	/* The first job starts the one thread that fits; the others find
	 * no thread can start, and wait for it instead of failing. */
	for (unsigned k = 0; k < N; k++)
		submit_member(pool, &m[k], true);
	ck_assert(sem_wait_n_ms(&c.entered, 1, TEST_WAIT_MS));
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 1);
	ck_assert_uint_eq(st.submitted, N);
	ck_assert_uint_eq(st.queued, N - 1);

	gate_open(&c.gate);
	drain_until(pool, &c.ended, N);
	check_each_once(&c);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.completed, N);
	ck_assert_uint_eq(st.threads_started, 1);
	unlimit_address_space();
	iop_pool_destroy(pool);
	crowd_destroy(&c, m);
}
END_TEST

static Suite *elastic_suite(void)
{
	Suite *s = suite_create("elastic");
	TCase *tc;

	tc = tcase_new("grow");
	tcase_add_test(tc, test_threads_grow_on_demand);
	suite_add_tcase(s, tc);

	tc = tcase_new("shrink");
	tcase_add_test(tc, test_threads_shrink_after_idle);
	tcase_add_test(tc, test_threads_shrink_keeps_min_threads);
	suite_add_tcase(s, tc);

	tc = tcase_new("create");
	tcase_add_test(tc, test_threads_min_started_by_pool_new);
	tcase_add_test(tc, test_threads_options_einval);
	suite_add_tcase(s, tc);

	tc = tcase_new("set_threads");
	tcase_add_test(tc, test_set_threads_at_runtime);
	tcase_add_test(tc, test_set_threads_min_kept_after_idle);
	tcase_add_test(tc, test_set_threads_einval);
	tcase_add_test(tc, test_set_threads_churn_loses_no_job);
	suite_add_tcase(s, tc);

	tc = tcase_new("spawn_failure");
	tcase_add_test(tc, test_spawn_failure_fails_submit_clearly);
	tcase_add_test(tc, test_spawn_failure_keeps_jobs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(elastic_suite());
}
