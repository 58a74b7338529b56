/*
 * Suite "regress": what tests/stress and the API fuzzer found, each
 * reduced to a deterministic test.
 *
 * lane_deadline: a lane job that comes back from the lane's backlog (a
 * "readmitted" job) and is then found past its deadline ends -ETIMEDOUT;
 * the lane must still count it as gone, or the lane stops starting jobs
 * (found by tests/stress, seed 1, on an IOP_POOL_INLINE pool).
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

/* ---- lane_deadline ---- */

/*
 * A thread that runs one lane job on an inline pool: it submits the job
 * in a batch (to set its lane), and the batch end runs it right there,
 * blocked on @gate until the test opens it.
 */
struct lane_runner {
	iop_pool *pool;
	iop_lane *lane;
	struct gate gate;
	sem_t entered;
	struct held h;
	iop_job *job;
	int set_lane;
	pthread_t thread;
};

static void *lane_runner_main(void *arg)
{
	struct lane_runner *lr = arg;

	iop_batch_begin(lr->pool);
	lr->job = iop_call(lr->pool, held_work, &lr->h, NULL, NULL);
	lr->set_lane = lr->job ? iop_job_set_lane(lr->job, lr->lane) : -1;
	iop_batch_end(lr->pool);	/* runs it, and what it readmits */
	return NULL;
}

static void lane_runner_start(struct lane_runner *lr, iop_pool *pool,
			      iop_lane *lane)
{
	lr->pool = pool;
	lr->lane = lane;
	gate_init(&lr->gate);
	ck_assert_int_eq(sem_init(&lr->entered, 0, 0), 0);
	held_init(&lr->h, &lr->gate, &lr->entered, 7);
	ck_assert_int_eq(pthread_create(&lr->thread, NULL, lane_runner_main,
					lr), 0);
	ck_assert(sem_wait_n_ms(&lr->entered, 1, TEST_WAIT_MS));
}

static void lane_runner_finish(struct lane_runner *lr)
{
	gate_open(&lr->gate);
	ck_assert_int_eq(pthread_join(lr->thread, NULL), 0);
	ck_assert_int_eq(lr->set_lane, 0);
	ck_assert_int_eq(iop_await(lr->job), 7);
	gate_destroy(&lr->gate);
	sem_destroy(&lr->entered);
}

/* A future in @lane, held then handed over; with @deadline_ms >= 0, one. */
static iop_job *lane_future(iop_pool *pool, iop_lane *lane, intptr_t value,
			    int deadline_ms)
{
	iop_job *job;

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	job = iop_call(pool, work_return_ctx, (void *)value, NULL, NULL);
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_job_set_lane(job, lane), 0);
	if (deadline_ms >= 0)
		ck_assert_int_eq(iop_job_set_deadline(job, deadline_ms), 0);
	ck_assert_int_eq(iop_batch_end(pool), 1);
	return job;
}

/* Let @ms milliseconds of CLOCK_MONOTONIC pass: waiting for time itself
 * (a deadline), not for another thread. */
static void let_time_pass(int ms)
{
	int64_t end = now_ns() + (int64_t)ms * 1000000;
	struct timespec ts = { 0, 1000000 };

	while (now_ns() < end)
		nanosleep(&ts, NULL);
}

START_TEST(test_lane_deadline_readmitted_job_frees_its_place)
{
	struct iop_options opts = { .flags = IOP_POOL_INLINE };
	iop_pool *pool = pool_new_opts(&opts);
	iop_lane *lane = iop_lane_new(pool, "one", 1);
	struct lane_runner lr;
	iop_job *late, *next;
	ssize_t res = 0;

	ck_assert_ptr_nonnull(lane);

	/* The lane's one place is taken by a job held on another thread;
	 * a job with a 200 ms deadline waits in the lane's backlog. */
	lane_runner_start(&lr, pool, lane);
	late = lane_future(pool, lane, 2, 200);
	ck_assert_int_eq(iop_job_state(late), IOP_QUEUED);
	let_time_pass(400);

	/* The held job ends: the late one is readmitted, then found past
	 * its deadline. */
	lane_runner_finish(&lr);
	ck_assert_int_eq(iop_await(late), -ETIMEDOUT);

	/* The lane is empty again.  Take its place once more and queue a
	 * job behind it: when the place frees, that job must start. */
	lane_runner_start(&lr, pool, lane);
	next = lane_future(pool, lane, 3, -1);
	lane_runner_finish(&lr);
	ck_assert_msg(iop_await_timeout(next, TEST_WAIT_MS, &res) == 0,
		      "a lane job never started after a readmitted job of "
		      "the lane timed out (the lane's readmitted count "
		      "leaked)");
	ck_assert_int_eq(res, 3);
	iop_pool_destroy(pool);
}
END_TEST

static Suite *regress_suite(void)
{
	Suite *s = suite_create("regress");
	TCase *tc;

	tc = tcase_new("lane_deadline");
	tcase_add_test(tc, test_lane_deadline_readmitted_job_frees_its_place);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(regress_suite());
}
