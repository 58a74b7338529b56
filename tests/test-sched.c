/*
 * Suite "sched": the order in which queued jobs start.  Priorities (higher
 * first, FIFO within one, lower levels aged so they are never starved),
 * lanes (a cap on how many of a lane's jobs run at once, which holds up
 * nobody else), deadlines (a job not started in time ends -ETIMEDOUT, by
 * the watchdog even while every worker is stuck), and the per-job setters'
 * errors.  One worker held by a gate makes the queue order observable:
 * every job's work function records the start clock.
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
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

/* A deadline no test reaches, even under a sanitizer. */
#define FAR_MS (30 * TEST_WAIT_MS)

/* A pool of @threads and one job holding a worker on @g until opened. */
static iop_pool *pool_with_held(unsigned threads, struct gate *g,
				struct held *h, struct done_rec *hd)
{
	iop_pool *pool = pool_new(threads);
	sem_t entered;

	gate_init(g);
	done_rec_init(hd);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	held_init(h, g, &entered, 0);
	ck_assert_ptr_nonnull(iop_call(pool, held_work, h, done_record, hd));
	ck_assert(sem_wait_n_ms(&entered, 1, TEST_WAIT_MS));
	h->entered = NULL;	/* posted once; the semaphore goes now */
	sem_destroy(&entered);
	return pool;
}

/* ---- Priorities. ---- */

/*
 * Queue @n steps with priorities @prio (IOP_PRIO_DEFAULT where @set is
 * false: the setter is not called) behind a held worker, release it, and
 * check that they started highest first, FIFO within a priority.
 */
static void check_start_order(const int *prio, const bool *set, int n)
{
	struct gate g;
	struct held h;
	struct done_rec hd, d;
	iop_pool *pool = pool_with_held(1, &g, &h, &hd);
	struct step s[16];
	atomic_int clock;

	ck_assert_int_le(n, 16);
	atomic_init(&clock, 0);
	done_rec_init(&d);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < n; i++) {
		iop_job *job;

		step_init(&s[i], &clock, i);
		job = iop_call(pool, step_work, &s[i], done_record, &d);
		ck_assert_ptr_nonnull(job);
		if (set[i])
			ck_assert_int_eq(iop_job_set_priority(job, prio[i]), 0);
	}
	ck_assert_int_eq(iop_batch_end(pool), n);
	ck_assert_int_eq(load_int(&clock), 0);

	gate_open(&g);
	drain_until(pool, &d.calls, n);
	drain_until(pool, &hd.calls, 1);
	for (int i = 0; i < n; i++) {
		int want = 1;

		for (int k = 0; k < n; k++)
			if (prio[k] > prio[i] || (prio[k] == prio[i] && k < i))
				want++;
		ck_assert_int_eq(load_int(&s[i].ran), 1);
		ck_assert_msg(load_int(&s[i].at) == want,
			      "job %d (priority %d) started %d-th, not %d-th",
			      i, prio[i], load_int(&s[i].at), want);
	}
	iop_pool_destroy(pool);
	gate_destroy(&g);
}

START_TEST(test_priority_order)
{
	/* Eight levels (at most eight jobs: no level is aged), scrambled. */
	static const int prio[] = { 1, -4, 3, -1, 4, -3, -2, 2 };
	static const bool set[] = { 1, 1, 1, 1, 1, 1, 1, 1 };

	check_start_order(prio, set, 8);
}
END_TEST

START_TEST(test_priority_fifo_within_level)
{
	/* The ninth level (0, the default, also without the setter), and
	 * ties in order of submission. */
	static const int prio[] = { 0, IOP_PRIO_MAX, -3, 0, IOP_PRIO_MAX,
				    -3, 0, IOP_PRIO_MAX };
	static const bool set[] = { 0, 1, 1, 1, 1, 1, 0, 1 };

	check_start_order(prio, set, 8);
}
END_TEST

/*
 * A steady stream of high-priority jobs, each resubmitting two more from
 * its callback (in a batch, to set the priority), with low-priority jobs
 * among them.  One worker, so every start has its place in @seq.
 */
struct stream;

struct low {
	struct stream *st;
	atomic_int at;		/* its place in the stream's starts */
};

struct stream {
	iop_pool *pool;
	atomic_int seq;		/* starts so far, all jobs */
	atomic_int high_started;
	atomic_int ended;	/* callbacks run */
	atomic_int errors;	/* failed submits or setters in callbacks */
	struct low low[2];
	/* Used by the polling thread only (the callbacks). */
	int high_submitted;
	int high_total;
	int low2_after;		/* queue low[1] after this many highs */
	bool low2_submitted;
	int low2_queued_at;	/* starts seen once low[1] was queued */
};

static ssize_t high_work(void *ctx)
{
	struct stream *st = ctx;

	atomic_fetch_add(&st->seq, 1);
	atomic_fetch_add(&st->high_started, 1);
	return 0;
}

static ssize_t low_work(void *ctx)
{
	struct low *l = ctx;

	atomic_store(&l->at, atomic_fetch_add(&l->st->seq, 1) + 1);
	return 0;
}

static void stream_done(iop_job *job, ssize_t result, void *arg);

/* Submit into the caller's open batch, with @prio. */
static void submit_prio(struct stream *st, iop_work_fn *fn, void *ctx,
			int prio)
{
	iop_job *job = iop_call(st->pool, fn, ctx, stream_done, st);

	if (job == NULL || iop_job_set_priority(job, prio) != 0)
		atomic_fetch_add(&st->errors, 1);
}

static void stream_done(iop_job *job, ssize_t result, void *arg)
{
	struct stream *st = arg;

	(void)job;
	if (result != 0)
		atomic_fetch_add(&st->errors, 1);
	if (iop_batch_begin(st->pool) != 0) {
		atomic_fetch_add(&st->errors, 1);
		goto out;
	}
	for (int k = 0; k < 2 && st->high_submitted < st->high_total; k++) {
		submit_prio(st, high_work, st, IOP_PRIO_MAX);
		st->high_submitted++;
	}
	if (!st->low2_submitted &&
	    load_int(&st->high_started) >= st->low2_after) {
		submit_prio(st, low_work, &st->low[1], IOP_PRIO_MIN);
		st->low2_submitted = true;
	}
	if (iop_batch_end(st->pool) < 0)
		atomic_fetch_add(&st->errors, 1);
	/* Read once handed over: starts counted "before it was queued"
	 * may include a few after, which only makes the check laxer. */
	if (st->low2_submitted && st->low2_queued_at < 0)
		st->low2_queued_at = load_int(&st->seq);
out:
	atomic_fetch_add(&st->ended, 1);
}

START_TEST(test_low_priority_not_starved)
{
	enum { INITIAL = 16, TOTAL = 300 };
	struct gate g;
	struct held h;
	struct done_rec hd;
	iop_pool *pool = pool_with_held(1, &g, &h, &hd);
	struct stream st;
	int ahead;

	memset(&st, 0, sizeof(st));
	st.pool = pool;
	atomic_init(&st.seq, 0);
	atomic_init(&st.high_started, 0);
	atomic_init(&st.ended, 0);
	atomic_init(&st.errors, 0);
	for (int k = 0; k < 2; k++) {
		st.low[k].st = &st;
		atomic_init(&st.low[k].at, 0);
	}
	st.high_total = TOTAL;
	st.low2_after = 60;
	st.low2_queued_at = -1;

	/* Behind the held worker: sixteen high jobs, one low among them. */
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < INITIAL / 2; i++)
		submit_prio(&st, high_work, &st, IOP_PRIO_MAX);
	submit_prio(&st, low_work, &st.low[0], IOP_PRIO_MIN);
	for (int i = INITIAL / 2; i < INITIAL; i++)
		submit_prio(&st, high_work, &st, IOP_PRIO_MAX);
	st.high_submitted = INITIAL;
	ck_assert_int_eq(iop_batch_end(pool), INITIAL + 1);
	ck_assert_int_eq(load_int(&st.errors), 0);

	gate_open(&g);
	drain_until(pool, &hd.calls, 1);
	drain_until(pool, &st.ended, TOTAL + 2);
	ck_assert_int_eq(load_int(&st.errors), 0);
	ck_assert_int_eq(load_int(&st.high_started), TOTAL);
	ck_assert(st.low2_submitted);

	/* The first low job was queued with sixteen highs: at least one
	 * went first (priority), at most eight (aging). */
	ahead = load_int(&st.low[0].at) - 1;
	ck_assert_msg(ahead >= 1 && ahead <= 8,
		      "%d high jobs started ahead of the low one", ahead);

	/* The second joined the stream while it ran: at most eight highs
	 * started between its queueing and its start, and one more if it
	 * came while the worker ran a batch (see iop_job_set_priority()). */
	ck_assert_int_ge(st.low2_queued_at, st.low2_after);
	ahead = load_int(&st.low[1].at) - 1 - st.low2_queued_at;
	ck_assert_msg(ahead <= 9,
		      "%d high jobs started ahead of the second low one",
		      ahead);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

/* ---- Lanes. ---- */

/* What the lane jobs of one test share. */
struct lane_ctx {
	struct gate gate;	/* lane jobs block here */
	sem_t entered;		/* posted as each lane job starts */
	atomic_int clock;	/* start order */
	atomic_int inside;	/* lane jobs running now */
	atomic_int hwm;		/* the most seen at once */
	atomic_int ended;	/* lane callbacks run */
	atomic_int wrong;
};

struct lane_job {
	struct lane_ctx *c;
	int i;
	atomic_int runs;
	atomic_int at;		/* start order, from 1 */
	atomic_int seen;	/* lane jobs inside when it started, itself
				 * included */
};

static void lane_ctx_init(struct lane_ctx *c, struct lane_job *j, int n)
{
	gate_init(&c->gate);
	ck_assert_int_eq(sem_init(&c->entered, 0, 0), 0);
	atomic_init(&c->clock, 0);
	atomic_init(&c->inside, 0);
	atomic_init(&c->hwm, 0);
	atomic_init(&c->ended, 0);
	atomic_init(&c->wrong, 0);
	for (int i = 0; i < n; i++) {
		j[i].c = c;
		j[i].i = i;
		atomic_init(&j[i].runs, 0);
		atomic_init(&j[i].at, 0);
		atomic_init(&j[i].seen, 0);
	}
}

static void lane_ctx_destroy(struct lane_ctx *c)
{
	gate_destroy(&c->gate);
	sem_destroy(&c->entered);
}

static ssize_t lane_work(void *ctx)
{
	struct lane_job *j = ctx;
	struct lane_ctx *c = j->c;
	int now = atomic_fetch_add(&c->inside, 1) + 1;
	int max = atomic_load(&c->hwm);

	while (now > max && !atomic_compare_exchange_weak(&c->hwm, &max, now))
		;
	atomic_store(&j->seen, now);
	atomic_store(&j->at, atomic_fetch_add(&c->clock, 1) + 1);
	atomic_fetch_add(&j->runs, 1);
	sem_post(&c->entered);
	gate_wait(&c->gate);
	/* Stay a moment once released, so that overlap would be seen. */
	for (int k = 0; k < 20; k++)
		sched_yield();
	atomic_fetch_sub(&c->inside, 1);
	return j->i;
}

static void lane_done(iop_job *job, ssize_t result, void *arg)
{
	struct lane_job *j = arg;

	(void)job;
	if (result != j->i)
		atomic_fetch_add(&j->c->wrong, 1);
	atomic_fetch_add(&j->c->ended, 1);
}

/* Submit jobs @from..@to-1 of @j into @lane, in one batch. */
static void submit_lane_jobs(iop_pool *pool, iop_lane *lane,
			     struct lane_job *j, int from, int to)
{
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = from; i < to; i++) {
		iop_job *job = iop_call(pool, lane_work, &j[i], lane_done,
					&j[i]);

		ck_assert_ptr_nonnull(job);
		ck_assert_int_eq(iop_job_set_lane(job, lane), 0);
	}
	ck_assert_int_eq(iop_batch_end(pool), to - from);
}

static int lane_runs_not_one(struct lane_job *j, int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++)
		bad += load_int(&j[i].runs) != 1;
	return bad;
}

START_TEST(test_lane_cap_respected)
{
	enum { N = 20, CAP = 2, OTHERS = 6 };
	iop_pool *pool = pool_new(8);
	iop_lane *lane = iop_lane_new(pool, "slow-nfs", CAP);
	struct lane_ctx c;
	struct lane_job j[N];
	struct done_rec od;
	struct iop_stats st;

	ck_assert_ptr_nonnull(lane);
	lane_ctx_init(&c, j, N);
	submit_lane_jobs(pool, lane, j, 0, N);
	ck_assert(sem_wait_n_ms(&c.entered, CAP, TEST_WAIT_MS));

	/* The lane is full, eight threads are allowed: other jobs run and
	 * complete while the lane's jobs are held. */
	done_rec_init(&od);
	for (int i = 0; i < OTHERS; i++)
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx,
					       (void *)(intptr_t)i,
					       done_record, &od));
	drain_until(pool, &od.calls, OTHERS);
	ck_assert_int_eq(load_int(&od.off_thread), 0);
	ck_assert_int_eq(load_int(&c.clock), CAP);
	ck_assert_int_eq(load_int(&c.hwm), CAP);
	ck_assert_int_eq(load_int(&c.ended), 0);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.queued, N - CAP);	/* waiting in the lane */
	ck_assert_uint_eq(st.running, CAP);
	ck_assert_uint_le(st.threads, 8);

	/* Released, the rest go through at most CAP at a time. */
	gate_open(&c.gate);
	drain_until(pool, &c.ended, N);
	ck_assert_int_eq(load_int(&c.hwm), CAP);
	ck_assert_int_eq(lane_runs_not_one(j, N), 0);
	ck_assert_int_eq(load_int(&c.wrong), 0);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.submitted, N + OTHERS);
	ck_assert_uint_eq(st.completed, N + OTHERS);
	ck_assert_uint_eq(st.queued, 0);
	iop_pool_destroy(pool);
	lane_ctx_destroy(&c);
}
END_TEST

START_TEST(test_lane_raise_cap_starts_waiting)
{
	enum { N = 6 };
	iop_pool *pool = pool_new(4);
	iop_lane *lane = iop_lane_new(pool, "raise", 1);
	struct lane_ctx c;
	struct lane_job j[N];

	ck_assert_ptr_nonnull(lane);
	lane_ctx_init(&c, j, N);
	submit_lane_jobs(pool, lane, j, 0, N);
	ck_assert(sem_wait_n_ms(&c.entered, 1, TEST_WAIT_MS));

	/* Raising the cap starts two waiting jobs at once, while the first
	 * is still held. */
	ck_assert_int_eq(iop_lane_set_cap(lane, 3), 0);
	ck_assert(sem_wait_n_ms(&c.entered, 2, TEST_WAIT_MS));
	ck_assert_int_eq(load_int(&c.inside), 3);

	gate_open(&c.gate);
	drain_until(pool, &c.ended, N);
	ck_assert_int_eq(load_int(&c.hwm), 3);
	ck_assert_int_eq(lane_runs_not_one(j, N), 0);
	ck_assert_int_eq(load_int(&c.wrong), 0);
	iop_pool_destroy(pool);
	lane_ctx_destroy(&c);
}
END_TEST

/*
 * Jobs waiting in a lane keep their order when a raised cap lets several
 * go at once.  Two threads: A holds one in the lane (cap 1), the other
 * moves B, C, D into the lane's wait and runs E, a job outside the lane.
 * Raised to 3, the lane lets B and C go, and the one free thread must
 * take B first (FIFO within a priority).
 */
START_TEST(test_lane_raise_cap_keeps_order)
{
	enum { N = 4 };
	iop_pool *pool = pool_new(2);
	iop_lane *lane = iop_lane_new(pool, "order", 1);
	struct lane_ctx c;
	struct lane_job j[N];
	struct done_rec ed;

	ck_assert_ptr_nonnull(lane);
	lane_ctx_init(&c, j, N);
	submit_lane_jobs(pool, lane, j, 0, 1);		/* A */
	ck_assert(sem_wait_n_ms(&c.entered, 1, TEST_WAIT_MS));

	done_rec_init(&ed);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 1; i < N; i++) {			/* B, C, D */
		iop_job *job = iop_call(pool, lane_work, &j[i], lane_done,
					&j[i]);

		ck_assert_ptr_nonnull(job);
		ck_assert_int_eq(iop_job_set_lane(job, lane), 0);
	}
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, (void *)5,
				       done_record, &ed));	/* E */
	ck_assert_int_eq(iop_batch_end(pool), N);
	/* E ran on the second thread, after it passed B, C, D over. */
	drain_until(pool, &ed.calls, 1);
	ck_assert_int_eq(load_int(&c.clock), 1);

	ck_assert_int_eq(iop_lane_set_cap(lane, 3), 0);
	ck_assert(sem_wait_n_ms(&c.entered, 1, TEST_WAIT_MS));
	gate_open(&c.gate);
	drain_until(pool, &c.ended, N);
	for (int i = 0; i < N; i++)
		ck_assert_msg(load_int(&j[i].at) == i + 1,
			      "lane job %c started %d-th, not %d-th "
			      "(A B C D started %d %d %d %d)", 'A' + i,
			      load_int(&j[i].at), i + 1, load_int(&j[0].at),
			      load_int(&j[1].at), load_int(&j[2].at),
			      load_int(&j[3].at));
	ck_assert_int_eq(lane_runs_not_one(j, N), 0);
	iop_pool_destroy(pool);
	lane_ctx_destroy(&c);
}
END_TEST

START_TEST(test_lane_lower_cap_lets_running_finish)
{
	enum { N = 7, CAP = 3 };
	iop_pool *pool = pool_new(4);
	iop_lane *lane = iop_lane_new(pool, "lower", CAP);
	struct lane_ctx c;
	struct lane_job j[N];

	ck_assert_ptr_nonnull(lane);
	lane_ctx_init(&c, j, N);
	submit_lane_jobs(pool, lane, j, 0, N);
	ck_assert(sem_wait_n_ms(&c.entered, CAP, TEST_WAIT_MS));

	/* Lowered to 1: the three running go on; the rest then start one
	 * at a time, in order. */
	ck_assert_int_eq(iop_lane_set_cap(lane, 1), 0);
	ck_assert_int_eq(load_int(&c.inside), CAP);
	gate_open(&c.gate);
	drain_until(pool, &c.ended, N);
	ck_assert_int_eq(lane_runs_not_one(j, N), 0);
	ck_assert_int_eq(load_int(&c.hwm), CAP);
	for (int i = CAP; i < N; i++) {
		ck_assert_int_eq(load_int(&j[i].seen), 1);
		ck_assert_int_eq(load_int(&j[i].at), i + 1);
	}
	iop_pool_destroy(pool);
	lane_ctx_destroy(&c);
}
END_TEST

START_TEST(test_lane_new_einval)
{
	iop_pool *pool = pool_new(1);
	iop_lane *lane;

	errno = 0;
	ck_assert_ptr_null(iop_lane_new(NULL, "x", 1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(iop_lane_new(pool, NULL, 1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(iop_lane_new(pool, "x", 0));
	ck_assert_int_eq(errno, EINVAL);

	/* A long name is cut, not refused. */
	lane = iop_lane_new(pool, "a lane name well over thirty-one bytes "
			    "long", 1);
	ck_assert_ptr_nonnull(lane);
	ck_assert_int_eq(iop_lane_set_cap(NULL, 1), -EINVAL);
	ck_assert_int_eq(iop_lane_set_cap(lane, 0), -EINVAL);
	ck_assert_int_eq(iop_lane_set_cap(lane, 5), 0);
	iop_pool_destroy(pool);
}
END_TEST

/* ---- Deadlines. ---- */

/* A job that must never run: it counts if it does. */
struct probe {
	atomic_int ran;
	ssize_t result;
};

static void probe_init(struct probe *p, ssize_t result)
{
	atomic_init(&p->ran, 0);
	p->result = result;
}

static ssize_t probe_work(void *ctx)
{
	struct probe *p = ctx;

	atomic_fetch_add(&p->ran, 1);
	return p->result;
}

START_TEST(test_deadline_expires_in_queue)
{
	struct gate g;
	struct held h;
	struct done_rec hd, ad, bd, zd;
	iop_pool *pool = pool_with_held(1, &g, &h, &hd);
	struct probe a, b, z;
	struct iop_stats st;
	iop_job *ja, *jb, *jz;
	int64_t t0, waited;

	probe_init(&a, 1);
	probe_init(&b, 2);
	probe_init(&z, 3);
	done_rec_init(&ad);
	done_rec_init(&bd);
	done_rec_init(&zd);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ja = iop_call(pool, probe_work, &a, done_record, &ad);
	jb = iop_call(pool, probe_work, &b, done_record, &bd);
	jz = iop_call(pool, probe_work, &z, done_record, &zd);
	ck_assert_ptr_nonnull(ja);
	ck_assert_ptr_nonnull(jb);
	ck_assert_ptr_nonnull(jz);
	t0 = now_ns();
	ck_assert_int_eq(iop_job_set_deadline(ja, 20), 0);
	ck_assert_int_eq(iop_job_set_deadline(jb, FAR_MS), 0);
	ck_assert_int_eq(iop_job_set_deadline(jz, 0), 0);
	ck_assert_int_eq(iop_batch_end(pool), 3);

	/* The only worker is stuck: the watchdog ends them anyway. */
	drain_until(pool, &ad.calls, 1);
	drain_until(pool, &zd.calls, 1);
	waited = now_ns() - t0;
	ck_assert_int_eq(load_long(&ad.result), -ETIMEDOUT);
	ck_assert_int_eq(load_long(&zd.result), -ETIMEDOUT);
	ck_assert_int_ge(waited, 20 * 1000000);
	ck_assert_int_eq(load_int(&a.ran), 0);
	ck_assert_int_eq(load_int(&z.ran), 0);
	ck_assert_int_eq(load_int(&h.ran), 0);		/* still stuck */
	ck_assert_int_eq(load_int(&bd.calls), 0);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.timed_out, 2);
	ck_assert_uint_eq(st.cancelled, 0);
	ck_assert_uint_eq(st.queued, 1);

	/* The generous deadline: it runs normally once the worker is
	 * free. */
	gate_open(&g);
	drain_until(pool, &bd.calls, 1);
	drain_until(pool, &hd.calls, 1);
	ck_assert_int_eq(load_long(&bd.result), 2);
	ck_assert_int_eq(load_int(&b.ran), 1);
	ck_assert_int_eq(load_int(&a.ran), 0);
	ck_assert_int_eq(load_int(&ad.calls), 1);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.timed_out, 2);
	ck_assert_uint_eq(st.submitted, 4);
	ck_assert_uint_eq(st.completed + st.failed + st.cancelled +
			  st.timed_out, 4);
	ck_assert_uint_eq(st.completed, 2);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

/*
 * A chain whose head times out: the rest end -ECANCELED, all while the
 * only worker is stuck, callbacks in chain order.
 */
START_TEST(test_deadline_chain_head_times_out)
{
	struct gate g;
	struct held h;
	struct done_rec hd;
	iop_pool *pool = pool_with_held(1, &g, &h, &hd);
	struct probe p[3];
	struct ordered_rec o[3];
	iop_job *job[3];
	atomic_int clock;
	struct iop_stats st;

	atomic_init(&clock, 0);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < 3; i++) {
		probe_init(&p[i], i);
		ordered_init(&o[i], &clock);
		job[i] = iop_call(pool, probe_work, &p[i], ordered_record,
				  &o[i]);
		ck_assert_ptr_nonnull(job[i]);
	}
	ck_assert_int_eq(iop_link(job[0], job[1]), 0);
	ck_assert_int_eq(iop_link(job[1], job[2]), 0);
	ck_assert_int_eq(iop_job_set_deadline(job[0], 20), 0);
	ck_assert_int_eq(iop_batch_end(pool), 3);

	drain_until(pool, &clock, 3);
	ck_assert_int_eq(load_long(&o[0].d.result), -ETIMEDOUT);
	ck_assert_int_eq(load_long(&o[1].d.result), -ECANCELED);
	ck_assert_int_eq(load_long(&o[2].d.result), -ECANCELED);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(load_int(&p[i].ran), 0);
		ck_assert_int_eq(load_int(&o[i].d.calls), 1);
		ck_assert_int_eq(load_int(&o[i].at), i + 1);
	}
	ck_assert_int_eq(load_int(&h.ran), 0);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.timed_out, 1);
	ck_assert_uint_eq(st.cancelled, 2);

	gate_open(&g);
	drain_until(pool, &hd.calls, 1);
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

/*
 * A deadline on the middle of a chain: it times out while it waits for
 * its predecessor; the job after it is cancelled, the head runs.
 */
START_TEST(test_deadline_mid_chain)
{
	struct gate g;
	struct held h;
	struct done_rec hd;
	iop_pool *pool = pool_with_held(1, &g, &h, &hd);
	struct probe p[3];
	struct ordered_rec o[3];
	iop_job *job[3];
	atomic_int clock;
	struct iop_stats st;

	atomic_init(&clock, 0);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < 3; i++) {
		probe_init(&p[i], 10 + i);
		ordered_init(&o[i], &clock);
		job[i] = iop_call(pool, probe_work, &p[i], ordered_record,
				  &o[i]);
		ck_assert_ptr_nonnull(job[i]);
	}
	ck_assert_int_eq(iop_link(job[0], job[1]), 0);
	ck_assert_int_eq(iop_link(job[1], job[2]), 0);
	ck_assert_int_eq(iop_job_set_deadline(job[1], 20), 0);
	ck_assert_int_eq(iop_batch_end(pool), 3);

	/* The middle and the last end while the worker is stuck. */
	drain_until(pool, &clock, 2);
	ck_assert_int_eq(load_long(&o[1].d.result), -ETIMEDOUT);
	ck_assert_int_eq(load_long(&o[2].d.result), -ECANCELED);
	ck_assert_int_eq(load_int(&o[0].d.calls), 0);
	ck_assert_int_eq(load_int(&h.ran), 0);

	/* The head had no deadline: it runs once the worker is free. */
	gate_open(&g);
	drain_until(pool, &clock, 3);
	drain_until(pool, &hd.calls, 1);
	ck_assert_int_eq(load_long(&o[0].d.result), 10);
	ck_assert_int_eq(load_int(&p[0].ran), 1);
	ck_assert_int_eq(load_int(&p[1].ran), 0);
	ck_assert_int_eq(load_int(&p[2].ran), 0);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.timed_out, 1);
	ck_assert_uint_eq(st.cancelled, 1);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

/*
 * A deadline on a job waiting in a lane at its cap (workers are free, the
 * lane is not): it times out there, and the lane goes on working.
 */
START_TEST(test_deadline_expires_in_lane)
{
	iop_pool *pool = pool_new(2);
	iop_lane *lane = iop_lane_new(pool, "dl", 1);
	struct lane_ctx c;
	struct lane_job j[2];
	struct probe b;
	struct done_rec bd;
	struct iop_stats st;
	iop_job *jb;

	ck_assert_ptr_nonnull(lane);
	lane_ctx_init(&c, j, 2);
	submit_lane_jobs(pool, lane, j, 0, 1);
	ck_assert(sem_wait_n_ms(&c.entered, 1, TEST_WAIT_MS));

	probe_init(&b, 4);
	done_rec_init(&bd);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	jb = iop_call(pool, probe_work, &b, done_record, &bd);
	ck_assert_ptr_nonnull(jb);
	ck_assert_int_eq(iop_job_set_lane(jb, lane), 0);
	ck_assert_int_eq(iop_job_set_deadline(jb, 20), 0);
	ck_assert_int_eq(iop_batch_end(pool), 1);

	drain_until(pool, &bd.calls, 1);
	ck_assert_int_eq(load_long(&bd.result), -ETIMEDOUT);
	ck_assert_int_eq(load_int(&b.ran), 0);
	ck_assert_int_eq(load_int(&c.ended), 0);	/* A still held */
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.timed_out, 1);
	ck_assert_uint_eq(st.queued, 0);

	/* The lane still works: the next job runs after A. */
	submit_lane_jobs(pool, lane, j, 1, 2);
	gate_open(&c.gate);
	drain_until(pool, &c.ended, 2);
	ck_assert_int_eq(lane_runs_not_one(j, 2), 0);
	ck_assert_int_eq(load_int(&c.hwm), 1);
	iop_pool_destroy(pool);
	lane_ctx_destroy(&c);
}
END_TEST

/* ---- The setters' errors. ---- */

START_TEST(test_setters_errors)
{
	struct gate g;
	struct held h;
	struct done_rec hd, d;
	iop_pool *pool = pool_with_held(1, &g, &h, &hd);
	iop_pool *other = pool_new(1);
	iop_lane *lane = iop_lane_new(pool, "mine", 1);
	iop_lane *foreign = iop_lane_new(other, "theirs", 1);
	struct holder ho;
	iop_job *q, *j;

	ck_assert_ptr_nonnull(lane);
	ck_assert_ptr_nonnull(foreign);
	done_rec_init(&d);

	/* Queued (the worker is held), but not held in a batch. */
	q = iop_call(pool, work_return_ctx, (void *)1, done_record, &d);
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(iop_job_set_priority(q, 1), -EBUSY);
	ck_assert_int_eq(iop_job_set_lane(q, lane), -EBUSY);
	ck_assert_int_eq(iop_job_set_deadline(q, 10), -EBUSY);

	/* A batch is open, but q is not held in it. */
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_int_eq(iop_job_set_priority(q, 1), -EBUSY);
	ck_assert_int_eq(iop_job_set_lane(q, lane), -EBUSY);
	ck_assert_int_eq(iop_job_set_deadline(q, 10), -EBUSY);

	/* Held here: the range and NULL errors, then valid settings. */
	j = iop_call(pool, work_return_ctx, (void *)2, done_record, &d);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(iop_job_set_priority(NULL, 0), -EINVAL);
	ck_assert_int_eq(iop_job_set_priority(j, IOP_PRIO_MAX + 1), -EINVAL);
	ck_assert_int_eq(iop_job_set_priority(j, IOP_PRIO_MIN - 1), -EINVAL);
	ck_assert_int_eq(iop_job_set_lane(NULL, lane), -EINVAL);
	ck_assert_int_eq(iop_job_set_lane(j, NULL), -EINVAL);
	ck_assert_int_eq(iop_job_set_lane(j, foreign), -EINVAL);
	ck_assert_int_eq(iop_job_set_deadline(NULL, 10), -EINVAL);
	ck_assert_int_eq(iop_job_set_deadline(j, -1), -EINVAL);
	ck_assert_int_eq(iop_job_set_priority(j, IOP_PRIO_MIN), 0);
	ck_assert_int_eq(iop_job_set_priority(j, IOP_PRIO_MAX), 0);
	ck_assert_int_eq(iop_job_set_lane(j, lane), 0);
	ck_assert_int_eq(iop_job_set_deadline(j, FAR_MS), 0);
	ck_assert_int_eq(iop_batch_end(pool), 1);

	/* Handed over: no longer held. */
	ck_assert_int_eq(iop_job_set_priority(j, 0), -EBUSY);
	ck_assert_int_eq(iop_job_set_lane(j, lane), -EBUSY);
	ck_assert_int_eq(iop_job_set_deadline(j, 10), -EBUSY);

	/* Held in another thread's batch. */
	holder_start(&ho, pool, 3);
	ck_assert_int_eq(ho.begin_ret, 0);
	ck_assert_ptr_nonnull(ho.job);
	ck_assert_int_eq(iop_job_set_priority(ho.job, 1), -EBUSY);
	ck_assert_int_eq(iop_job_set_lane(ho.job, lane), -EBUSY);
	ck_assert_int_eq(iop_job_set_deadline(ho.job, 10), -EBUSY);
	holder_release(&ho);
	holder_join(&ho);
	ck_assert_int_eq(ho.end_ret, 1);

	/* Nothing refused above changed a job: all run normally. */
	gate_open(&g);
	drain_until(pool, &d.calls, 2);
	ck_assert_int_eq(iop_await(ho.job), 3);
	drain_until(pool, &hd.calls, 1);
	ck_assert_int_eq(load_int(&d.off_thread), 0);
	iop_pool_destroy(other);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST


/* ---- Fairness: short jobs are not held back behind a long one. ---- */

/* A job that is quick, or blocks on a gate when @block is set. */
struct quick {
	struct gate *gate;
	bool block;
	atomic_int *ran;	/* quick runs */
	atomic_bool *here;	/* set if it blocked on the test thread */
};

static ssize_t quick_work(void *ctx)
{
	struct quick *q = ctx;

	if (q->block) {
		if (q->here)
			atomic_store(q->here, on_test_thread());
		gate_wait(q->gate);
	} else {
		atomic_fetch_add(q->ran, 1);
	}
	return 0;
}

/* Another function, for a long job the pool has not seen be short. */
static ssize_t long_work(void *ctx)
{
	return quick_work(ctx);
}

static void count_done(iop_job *job, ssize_t result, void *arg)
{
	(void)job;
	(void)result;
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* Run @n quick jobs so that the pool learns they are short. */
static void teach_short(iop_pool *pool, struct quick *q, atomic_int *done,
			int n)
{
	int base = atomic_load(done);

	for (int i = 0; i < n; i++)
		ck_assert_ptr_nonnull(iop_call(pool, quick_work, q,
					       count_done, done));
	drain_until(pool, done, base + n);
}

/*
 * A long job runs on one worker; short jobs submitted behind it all
 * finish on the other workers while it still runs.
 */
START_TEST(test_long_job_does_not_hold_back_short_ones)
{
	enum { N = 200 };
	iop_pool *pool = pool_new(4);
	struct gate g;
	atomic_int ran = 0, done = 0, long_done = 0;
	struct quick q = { .gate = &g, .ran = &ran };
	struct quick slow = { .gate = &g, .block = true, .ran = &ran };

	gate_init(&g);
	teach_short(pool, &q, &done, 100);
	ck_assert_ptr_nonnull(iop_call(pool, long_work, &slow, count_done,
				       &long_done));
	for (int i = 0; i < N; i++)
		ck_assert_ptr_nonnull(iop_call(pool, quick_work, &q,
					       count_done, &done));
	drain_until(pool, &done, 100 + N);	/* the gate is still shut */
	ck_assert_int_eq(load_int(&long_done), 0);
	gate_open(&g);
	drain_until(pool, &long_done, 1);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

/*
 * A job of a kind known to be short that blocks after all, taken by a
 * worker together with short jobs behind it: those go back to the queue
 * and finish on other workers while it still blocks.
 */
START_TEST(test_stuck_batch_gives_back_short_jobs)
{
	enum { N = 60 };
	/* Workers only: the test thread opens the gate after its wait. */
	struct iop_options o = { .threads = 4,
				 .flags = IOP_POOL_WORKERS_ONLY };
	iop_pool *pool = pool_new_opts(&o);
	struct gate g;
	atomic_int ran = 0, done = 0;
	struct quick q = { .gate = &g, .ran = &ran };
	struct quick stuck = { .gate = &g, .block = true, .ran = &ran };

	gate_init(&g);
	teach_short(pool, &q, &done, 200);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_ptr_nonnull(iop_call(pool, quick_work, &stuck, count_done,
				       &done));
	for (int i = 0; i < N; i++)
		ck_assert_ptr_nonnull(iop_call(pool, quick_work, &q,
					       count_done, &done));
	ck_assert_int_eq(iop_batch_end(pool), N + 1);
	drain_until(pool, &done, 200 + N);	/* the gate is still shut */
	ck_assert_int_eq(load_int(&ran), 200 + N);
	gate_open(&g);
	drain_until(pool, &done, 200 + N + 1);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

/* Submits the stuck job and the short ones from inside a callback. */
struct launch {
	iop_pool *pool;
	struct quick *q, *stuck;
	atomic_int *done;
	int n;
	int hops;		/* launchers to go through first */
};

/*
 * A launcher ended: submit the next one, or the stuck job and @n short
 * ones.  A launcher submitted by a callback is one short job, which the
 * waiting thread runs itself, so by the last hop the worker that ran the
 * first launcher has long gone back to sleep and cannot take the stuck
 * job first.
 */
static void launch_done(iop_job *job, ssize_t result, void *arg)
{
	struct launch *l = arg;

	(void)job;
	(void)result;
	if (l->hops-- > 0) {
		ck_assert_ptr_nonnull(iop_call(l->pool, quick_work, l->q,
					       launch_done, l));
		return;
	}
	ck_assert_ptr_nonnull(iop_call(l->pool, quick_work, l->stuck,
				       count_done, l->done));
	for (int i = 0; i < l->n; i++)
		ck_assert_ptr_nonnull(iop_call(l->pool, quick_work, l->q,
					       count_done, l->done));
	atomic_fetch_add(l->done, 1);
}

/* Opens a gate once a count reaches a target, from its own thread. */
struct count_opener {
	atomic_int *count;
	int target;
	struct gate *gate;
};

static void *count_opener_main(void *arg)
{
	struct count_opener *o = arg;

	while (atomic_load(o->count) < o->target)
		sched_yield();
	gate_open(o->gate);
	return NULL;
}

/*
 * The same when the waiting thread itself took the batch (a few short
 * jobs that callbacks submit inside iop_wait() are less work than a
 * wake-up: they wake no worker, the waiting thread runs them).  It blocks
 * in the first one; an idle worker keeping watch
 * gives the rest back, and the workers run them.  The gate opens only
 * once they all ran, from another thread, so if they stayed behind the
 * blocked job the test would hang.  It repeats until the waiting thread
 * was the one that blocked, which shows that this path ran.
 */
START_TEST(test_stuck_help_gives_back_short_jobs)
{
	enum { N = 2, HOPS = 3, ATTEMPTS = 100 };
	iop_pool *pool = pool_new(4);
	atomic_int ran = 0, done = 0;
	atomic_bool here = false;
	struct gate g;
	struct quick q = { .gate = &g, .ran = &ran };
	struct quick stuck = { .gate = &g, .block = true, .ran = &ran,
			       .here = &here };
	struct launch l = { .pool = pool, .q = &q, .stuck = &stuck,
			    .done = &done, .n = N };
	int attempt;

	for (attempt = 0; attempt < ATTEMPTS && !atomic_load(&here);
	     attempt++) {
		struct count_opener o;
		int base;
		pthread_t opener;

		/* Again each time: a stuck job that a worker took makes
		 * jobs of its kind look long. */
		teach_short(pool, &q, &done, 200);
		o = (struct count_opener){
			.count = &ran, .gate = &g,
			.target = load_int(&ran) + HOPS + 1 + N };
		base = load_int(&done);
		l.hops = HOPS;
		gate_init(&g);
		ck_assert_int_eq(pthread_create(&opener, NULL,
						count_opener_main, &o), 0);
		ck_assert_ptr_nonnull(iop_call(pool, quick_work, &q,
					       launch_done, &l));
		drain_until(pool, &done, base + 2 + N);
		ck_assert_int_eq(pthread_join(opener, NULL), 0);
		gate_destroy(&g);
	}
	ck_assert_msg(atomic_load(&here),
		      "the waiting thread never ran the jobs itself");
	iop_pool_destroy(pool);
}
END_TEST

/* A job of about a millisecond, or one that blocks on a gate. */
struct nap {
	struct gate *gate;
	bool block;
	atomic_int *entered;
	atomic_int *ran;	/* naps done, if set */
};

static ssize_t nap_work(void *ctx)
{
	struct nap *n = ctx;
	struct timespec ms = { 0, 1000000 };

	if (n->block) {
		atomic_fetch_add(n->entered, 1);
		gate_wait(n->gate);
	} else {
		while (nanosleep(&ms, &ms) != 0)
			;
		if (n->ran)
			atomic_fetch_add(n->ran, 1);
	}
	return 0;
}

/*
 * A job of a kind known to take a millisecond may wait for a busy worker
 * expected to come free soon rather than wake an idle one; when the busy
 * ones block after all, it still gets the idle worker while they block,
 * though the test thread does nothing but yield until it has.
 */
START_TEST(test_job_left_to_busy_workers_gets_idle_one)
{
	/* Enough busy workers for the full 0.4 ms span (IOP__ABSORB_BUSY),
	 * all started at once, so that the idle one is there, asleep. */
	enum { THREADS = 20, TEACH = 40, BLOCKED = THREADS - 1 };
	struct iop_options o = { .threads = THREADS,
				 .min_threads = THREADS };
	iop_pool *pool = pool_new_opts(&o);
	atomic_int entered = 0, done = 0, blocked_done = 0, ran = 0;
	struct gate g;
	struct nap quick = { .gate = &g, .ran = &ran };
	struct nap stuck = { .gate = &g, .block = true, .entered = &entered };

	gate_init(&g);
	for (int i = 0; i < TEACH; i++)
		ck_assert_ptr_nonnull(iop_call(pool, nap_work, &quick,
					       count_done, &done));
	drain_until(pool, &done, TEACH);
	for (int i = 0; i < BLOCKED; i++)
		ck_assert_ptr_nonnull(iop_call(pool, nap_work, &stuck,
					       count_done, &blocked_done));
	while (atomic_load(&entered) < BLOCKED)
		sched_yield();
	ck_assert_ptr_nonnull(iop_call(pool, nap_work, &quick, count_done,
				       &done));
	while (load_int(&ran) < TEACH + 1)
		sched_yield();
	drain_until(pool, &done, TEACH + 1);	/* the gate is still shut */
	ck_assert_int_eq(load_int(&blocked_done), 0);
	gate_open(&g);
	drain_until(pool, &blocked_done, BLOCKED);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

static Suite *sched_suite(void)
{
	Suite *s = suite_create("sched");
	TCase *tc;

	tc = tcase_new("priority");
	tcase_add_test(tc, test_priority_order);
	tcase_add_test(tc, test_priority_fifo_within_level);
	tcase_add_test(tc, test_low_priority_not_starved);
	suite_add_tcase(s, tc);

	tc = tcase_new("lane");
	tcase_add_test(tc, test_lane_cap_respected);
	tcase_add_test(tc, test_lane_raise_cap_starts_waiting);
	tcase_add_test(tc, test_lane_raise_cap_keeps_order);
	tcase_add_test(tc, test_lane_lower_cap_lets_running_finish);
	tcase_add_test(tc, test_lane_new_einval);
	suite_add_tcase(s, tc);

	tc = tcase_new("deadline");
	tcase_add_test(tc, test_deadline_expires_in_queue);
	tcase_add_test(tc, test_deadline_chain_head_times_out);
	tcase_add_test(tc, test_deadline_mid_chain);
	tcase_add_test(tc, test_deadline_expires_in_lane);
	suite_add_tcase(s, tc);

	tc = tcase_new("fairness");
	tcase_add_test(tc, test_long_job_does_not_hold_back_short_ones);
	tcase_add_test(tc, test_stuck_batch_gives_back_short_jobs);
	tcase_add_test(tc, test_stuck_help_gives_back_short_jobs);
	tcase_add_test(tc, test_job_left_to_busy_workers_gets_idle_one);
	suite_add_tcase(s, tc);

	tc = tcase_new("setters");
	tcase_add_test(tc, test_setters_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(sched_suite());
}
