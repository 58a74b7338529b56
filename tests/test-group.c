/*
 * Suite "group": a group's callback runs exactly once, on the polling
 * thread, after the group was sealed and every member (callback jobs,
 * futures, chains) has ended and had its own callback, with the right
 * counts; members may end before later ones are added; iop_group_cancel()
 * ends queued, held and later members and flags running ones; the error
 * returns; destroy runs a due group callback and releases unsealed groups.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* What a group callback saw. */
struct group_rec {
	atomic_int calls;
	atomic_int off_thread;
	atomic_int *clock;	/* shared with the members' ordered_rec */
	atomic_int at;
	iop_group *group;	/* as passed to the callback */
	struct iop_group_result r;
};

static void group_rec_init(struct group_rec *g, atomic_int *clock)
{
	memset(g, 0, sizeof(*g));
	atomic_init(&g->calls, 0);
	atomic_init(&g->off_thread, 0);
	atomic_init(&g->at, 0);
	g->clock = clock;
}

static void group_record(iop_group *group, const struct iop_group_result *r,
			 void *arg)
{
	struct group_rec *g = arg;

	if (!on_test_thread())
		atomic_fetch_add(&g->off_thread, 1);
	g->group = group;
	g->r = *r;
	atomic_store(&g->at, atomic_fetch_add(g->clock, 1) + 1);
	atomic_fetch_add(&g->calls, 1);
}

static iop_group *group_new(iop_pool *pool, struct group_rec *g)
{
	iop_group *group = iop_group_new(pool, group_record, g);

	ck_assert_msg(group != NULL, "iop_group_new: %s", strerror(errno));
	return group;
}

/* Submit a call of step_work(@s) with callback @d (NULL: a future) and
 * add it to @group; the caller has a batch open. */
static iop_job *add_step(iop_pool *pool, iop_group *group, struct step *s,
			 struct ordered_rec *d)
{
	iop_job *job = iop_call(pool, step_work, s, d ? ordered_record : NULL,
				d);

	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_group_add(group, job), 0);
	return job;
}

/*
 * Run callbacks for up to about @ms until *@count reaches @target; 0 if
 * it did, -ETIMEDOUT if not.  For what should happen at once, where
 * drain_until()'s long wait would only slow down a failure.
 */
static int drain_for(iop_pool *pool, atomic_int *count, int target, int ms)
{
	int64_t end = now_ns() + (int64_t)ms * 1000000;

	while (atomic_load(count) < target) {
		int r = iop_wait(pool, 50);

		if (r < 0)
			return r;
		if (now_ns() > end)
			return atomic_load(count) < target ? -ETIMEDOUT : 0;
	}
	return 0;
}

/*
 * Ten members: five succeed (one held by a gate so the group must wait
 * for it, one with result 0), three fail with an errno, two are
 * cancelled while held.  A job outside the group runs alongside.  The
 * group callback runs once, on the test thread, after all ten member
 * callbacks, with 5/3/2.
 */
START_TEST(test_group_done_after_members)
{
	static const ssize_t results[] = { 0, 1, 2, 3, 7, -EIO, -ENOENT,
					   -EPERM, 8, 9 };
	enum { N = 10, HELD = 4, CANCEL_A = 8, CANCEL_B = 9 };
	iop_pool *pool = pool_new(4);
	struct step s[N], so;
	struct ordered_rec d[N], dout;
	struct group_rec gr;
	atomic_int work_clock, clock;
	iop_job *jobs[N];
	iop_group *group;
	struct gate g;
	sem_t entered;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	group_rec_init(&gr, &clock);
	group = group_new(pool, &gr);
	for (int i = 0; i < N; i++) {
		step_init(&s[i], &work_clock, results[i]);
		ordered_init(&d[i], &clock);
	}
	s[HELD].gate = &g;
	s[HELD].entered = &entered;
	step_init(&so, &work_clock, 100);
	ordered_init(&dout, &clock);

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++)
		jobs[i] = add_step(pool, group, &s[i], &d[i]);
	ck_assert_ptr_nonnull(iop_call(pool, step_work, &so, ordered_record,
				       &dout));
	ck_assert_int_eq(iop_cancel(jobs[CANCEL_A]), 0);
	ck_assert_int_eq(iop_cancel(jobs[CANCEL_B]), 0);
	batch_end_expect(pool, N + 1, 2);
	ck_assert_int_eq(iop_group_seal(group), 0);

	/* Everything but the held member ends (nine members and the
	 * outsider); the group must wait. */
	sem_wait_n(&entered, 1);
	drain_until(pool, &clock, (N - 1) + 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	ck_assert_int_eq(load_int(&gr.calls), 0);
	ck_assert_int_eq(load_int(&d[HELD].d.calls), 0);

	gate_open(&g);
	drain_until(pool, &gr.calls, 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);

	ck_assert_int_eq(load_int(&gr.calls), 1);
	ck_assert_int_eq(load_int(&gr.off_thread), 0);
	ck_assert_ptr_eq(gr.group, group);
	ck_assert_uint_eq(gr.r.succeeded, 5);
	ck_assert_uint_eq(gr.r.failed, 3);
	ck_assert_uint_eq(gr.r.cancelled, 2);
	/* Last of all: after N member callbacks and the outsider's. */
	ck_assert_int_eq(load_int(&gr.at), N + 2);
	for (int i = 0; i < N; i++) {
		bool cancelled = i == CANCEL_A || i == CANCEL_B;

		ck_assert_int_eq(load_int(&d[i].d.calls), 1);
		ck_assert_int_lt(load_int(&d[i].at), load_int(&gr.at));
		ck_assert_int_eq(load_int(&s[i].ran), cancelled ? 0 : 1);
		ck_assert_int_eq(load_long(&d[i].d.result),
				 cancelled ? -ECANCELED : results[i]);
	}
	ck_assert_int_eq(load_long(&dout.d.result), 100);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * Members across two batches: those of the first (callback jobs and a
 * future, awaited) have all ended before the second batch is added, and
 * the group does not fire; nor after the second batch's members end while
 * the group is open; it fires once sealed, counting all of them.
 */
START_TEST(test_group_members_across_batches)
{
	enum { N1 = 3, N2 = 2 };
	iop_pool *pool = pool_new(2);
	struct step s1[N1], sf, s2[N2];
	struct ordered_rec d1[N1], d2[N2];
	struct group_rec gr;
	atomic_int work_clock, clock;
	iop_group *group;
	iop_job *f;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	group_rec_init(&gr, &clock);
	group = group_new(pool, &gr);

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N1; i++) {
		step_init(&s1[i], &work_clock, i + 1);
		ordered_init(&d1[i], &clock);
		add_step(pool, group, &s1[i], &d1[i]);
	}
	step_init(&sf, &work_clock, -EIO);
	f = add_step(pool, group, &sf, NULL);
	ck_assert_int_eq(iop_batch_end(pool), N1 + 1);
	drain_until(pool, &clock, N1);
	ck_assert_int_eq(iop_await(f), -EIO);
	/* Every member so far has ended: still open, so no callback. */
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	ck_assert_int_eq(load_int(&gr.calls), 0);

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N2; i++) {
		step_init(&s2[i], &work_clock, i == 0 ? -ENOSPC : 50);
		ordered_init(&d2[i], &clock);
		add_step(pool, group, &s2[i], &d2[i]);
	}
	ck_assert_int_eq(iop_batch_end(pool), N2);
	drain_until(pool, &clock, N1 + N2);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	ck_assert_int_eq(load_int(&gr.calls), 0);

	/* Sealed once all have ended: it fires from the next poll. */
	ck_assert_int_eq(iop_group_seal(group), 0);
	drain_until(pool, &gr.calls, 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&gr.calls), 1);
	ck_assert_int_eq(load_int(&gr.at), N1 + N2 + 1);
	ck_assert_uint_eq(gr.r.succeeded, N1 + 1);
	ck_assert_uint_eq(gr.r.failed, 2);
	ck_assert_uint_eq(gr.r.cancelled, 0);
	ck_assert_int_eq(load_int(&work_clock), N1 + 1 + N2);
}
END_TEST

/* An empty group: nothing while open; sealed, it fires with zeros. */
START_TEST(test_group_empty_sealed_fires_with_zeros)
{
	iop_pool *pool = pool_new(1);
	struct group_rec gr;
	atomic_int clock;
	iop_group *group;

	atomic_init(&clock, 0);
	group_rec_init(&gr, &clock);
	gr.r.succeeded = gr.r.failed = gr.r.cancelled = 99;
	group = group_new(pool, &gr);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	ck_assert_int_eq(load_int(&gr.calls), 0);
	ck_assert_int_eq(iop_group_seal(group), 0);
	drain_until(pool, &gr.calls, 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&gr.calls), 1);
	ck_assert_int_eq(load_int(&gr.off_thread), 0);
	ck_assert_ptr_eq(gr.group, group);
	ck_assert_uint_eq(gr.r.succeeded, 0);
	ck_assert_uint_eq(gr.r.failed, 0);
	ck_assert_uint_eq(gr.r.cancelled, 0);
}
END_TEST

/*
 * Futures as members: the group fires once they have ended (they have
 * no callback to wait for), before anyone awaits them; they are awaited
 * afterwards with their results.
 */
START_TEST(test_group_future_members)
{
	static const ssize_t results[] = { 1, 2, -EIO, 4 };
	enum { N = 4, CANCELLED = 3 };
	iop_pool *pool = pool_new(2);
	struct step s[N];
	struct group_rec gr;
	atomic_int work_clock, clock;
	iop_group *group;
	iop_job *f[N];

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	group_rec_init(&gr, &clock);
	group = group_new(pool, &gr);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		step_init(&s[i], &work_clock, results[i]);
		f[i] = add_step(pool, group, &s[i], NULL);
	}
	ck_assert_int_eq(iop_cancel(f[CANCELLED]), 0);
	batch_end_expect(pool, N, 1);
	ck_assert_int_eq(iop_group_seal(group), 0);
	drain_until(pool, &gr.calls, 1);
	ck_assert_uint_eq(gr.r.succeeded, 2);
	ck_assert_uint_eq(gr.r.failed, 1);
	ck_assert_uint_eq(gr.r.cancelled, 1);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(iop_await(f[i]),
				 i == CANCELLED ? -ECANCELED : results[i]);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&gr.calls), 1);
	ck_assert_int_eq(load_int(&s[CANCELLED].ran), 0);
}
END_TEST

/*
 * A chain inside a group: A fails, so B and C end -ECANCELED without
 * running; a fourth member succeeds.  The group counts 1/1/2 and fires
 * after all four callbacks.
 */
START_TEST(test_group_chain_members)
{
	enum { N = 4 };
	iop_pool *pool = pool_new(2);
	struct step s[N];
	struct ordered_rec d[N];
	struct group_rec gr;
	atomic_int work_clock, clock;
	iop_group *group;
	iop_job *j[N];

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	group_rec_init(&gr, &clock);
	group = group_new(pool, &gr);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		step_init(&s[i], &work_clock, i == 0 ? -EIO : i);
		ordered_init(&d[i], &clock);
		j[i] = add_step(pool, group, &s[i], &d[i]);
	}
	ck_assert_int_eq(iop_link(j[0], j[1]), 0);
	ck_assert_int_eq(iop_link(j[1], j[2]), 0);
	ck_assert_int_eq(iop_batch_end(pool), N);
	ck_assert_int_eq(iop_group_seal(group), 0);
	drain_until(pool, &gr.calls, 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_uint_eq(gr.r.succeeded, 1);
	ck_assert_uint_eq(gr.r.failed, 1);
	ck_assert_uint_eq(gr.r.cancelled, 2);
	ck_assert_int_eq(load_int(&gr.at), N + 1);
	ck_assert_int_eq(load_long(&d[0].d.result), -EIO);
	ck_assert_int_eq(load_long(&d[1].d.result), -ECANCELED);
	ck_assert_int_eq(load_long(&d[2].d.result), -ECANCELED);
	ck_assert_int_eq(load_long(&d[3].d.result), 3);
	ck_assert_int_eq(load_int(&s[1].ran), 0);
	ck_assert_int_eq(load_int(&s[2].ran), 0);
	/* In chain order. */
	ck_assert_int_lt(load_int(&d[0].at), load_int(&d[1].at));
	ck_assert_int_lt(load_int(&d[1].at), load_int(&d[2].at));
}
END_TEST

/*
 * iop_group_cancel() with both workers busy: one holds a job outside the
 * group, the other runs member R.  Queued members (two callback jobs, a
 * future) end -ECANCELED at once, while the gate is still closed; R sees
 * iop_cancel_requested() and returns early with its own result; a member
 * held in the batch at the time of the cancel and members added later
 * (a callback job, a future) end -ECANCELED at batch end without running.
 * The queued job outside the group runs.  The group counts 1/0/6.
 */
START_TEST(test_group_cancel)
{
	enum { NQ = 2 };
	iop_pool *pool = pool_new(2);
	struct step sn0, sn1, sq[NQ], sqf, sh, sl, slf;
	struct ordered_rec dn0, dn1, dr, dq[NQ], dh, dl;
	struct spinner sp;
	struct group_rec gr;
	atomic_int work_clock, clock;
	iop_group *group;
	iop_job *qf, *lf;
	struct gate g;
	sem_t entered;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	group_rec_init(&gr, &clock);
	group = group_new(pool, &gr);

	/* Worker 1: a job outside the group, on the gate. */
	step_init(&sn0, &work_clock, 10);
	sn0.gate = &g;
	sn0.entered = &entered;
	ordered_init(&dn0, &clock);
	ck_assert_ptr_nonnull(iop_call(pool, step_work, &sn0, ordered_record,
				       &dn0));
	sem_wait_n(&entered, 1);
	/* Worker 2: member R, spinning until cancelled. */
	spinner_init(&sp, &entered, 99);
	ordered_init(&dr, &clock);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_int_eq(iop_group_add(group, iop_call(pool, spinner_work,
						       &sp, ordered_record,
						       &dr)), 0);
	ck_assert_int_eq(iop_batch_end(pool), 1);
	sem_wait_n(&entered, 1);

	/* Queued: members and one outsider. */
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < NQ; i++) {
		step_init(&sq[i], &work_clock, 20 + i);
		ordered_init(&dq[i], &clock);
		add_step(pool, group, &sq[i], &dq[i]);
	}
	step_init(&sqf, &work_clock, 30);
	qf = add_step(pool, group, &sqf, NULL);
	step_init(&sn1, &work_clock, 11);
	ordered_init(&dn1, &clock);
	ck_assert_ptr_nonnull(iop_call(pool, step_work, &sn1, ordered_record,
				       &dn1));
	ck_assert_int_eq(iop_batch_end(pool), NQ + 2);

	/* Held at the time of the cancel, and added after it. */
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	step_init(&sh, &work_clock, 40);
	ordered_init(&dh, &clock);
	add_step(pool, group, &sh, &dh);
	ck_assert_int_eq(iop_group_cancel(group), 0);
	step_init(&sl, &work_clock, 41);
	ordered_init(&dl, &clock);
	add_step(pool, group, &sl, &dl);
	step_init(&slf, &work_clock, 42);
	lf = add_step(pool, group, &slf, NULL);
	batch_end_expect(pool, 3, 3);
	ck_assert_int_eq(iop_group_seal(group), 0);

	/* Gate still closed: the queued ones and R end without it. */
	ck_assert_int_eq(iop_await(qf), -ECANCELED);
	ck_assert_int_eq(iop_await(lf), -ECANCELED);
	drain_until(pool, &dr.d.calls, 1);
	for (int i = 0; i < NQ; i++)
		drain_until(pool, &dq[i].d.calls, 1);
	drain_until(pool, &dh.d.calls, 1);
	drain_until(pool, &dl.d.calls, 1);
	drain_until(pool, &gr.calls, 1);
	ck_assert_int_eq(load_int(&dn0.d.calls), 0);

	gate_open(&g);
	drain_until(pool, &dn0.d.calls, 1);
	drain_until(pool, &dn1.d.calls, 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);

	ck_assert_int_eq(load_int(&gr.calls), 1);
	ck_assert_uint_eq(gr.r.succeeded, 1);
	ck_assert_uint_eq(gr.r.failed, 0);
	ck_assert_uint_eq(gr.r.cancelled, NQ + 4);
	ck_assert_int_eq(load_int(&sp.saw_cancel), 1);
	ck_assert_int_eq(load_int(&sp.before), 0);
	ck_assert_int_eq(load_long(&dr.d.result), 99);
	for (int i = 0; i < NQ; i++) {
		ck_assert_int_eq(load_long(&dq[i].d.result), -ECANCELED);
		ck_assert_int_eq(load_int(&sq[i].ran), 0);
	}
	ck_assert_int_eq(load_int(&sqf.ran), 0);
	ck_assert_int_eq(load_long(&dh.d.result), -ECANCELED);
	ck_assert_int_eq(load_int(&sh.ran), 0);
	ck_assert_int_eq(load_long(&dl.d.result), -ECANCELED);
	ck_assert_int_eq(load_int(&sl.ran), 0);
	ck_assert_int_eq(load_int(&slf.ran), 0);
	/* Outside the group: untouched. */
	ck_assert_int_eq(load_long(&dn0.d.result), 10);
	ck_assert_int_eq(load_long(&dn1.d.result), 11);
	ck_assert_int_eq(load_int(&sn1.ran), 1);
	ck_assert_int_eq(iop_group_cancel(NULL), -EINVAL);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * A member waiting in a chain behind a running job outside the group has
 * not started: iop_group_cancel() cancels it "as iop_cancel() does", so
 * it ends -ECANCELED at once (its callback from the next poll), without
 * waiting for its predecessor.  Compare iop_cancel() on such a job,
 * checked in the chain suite.
 */
START_TEST(test_group_cancel_waiting_member)
{
	iop_pool *pool = pool_new(1);
	struct step sa, sb;
	struct ordered_rec da, db;
	struct group_rec gr;
	atomic_int work_clock, clock;
	iop_group *group;
	iop_job *a, *b;
	struct gate g;
	sem_t entered;
	int r;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	group_rec_init(&gr, &clock);
	group = group_new(pool, &gr);
	step_init(&sa, &work_clock, 1);
	sa.gate = &g;
	sa.entered = &entered;
	step_init(&sb, &work_clock, 2);
	ordered_init(&da, &clock);
	ordered_init(&db, &clock);

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	a = iop_call(pool, step_work, &sa, ordered_record, &da);
	ck_assert_ptr_nonnull(a);
	b = add_step(pool, group, &sb, &db);
	ck_assert_int_eq(iop_link(a, b), 0);
	ck_assert_int_eq(iop_batch_end(pool), 2);
	ck_assert_int_eq(iop_group_seal(group), 0);
	sem_wait_n(&entered, 1);
	ck_assert_int_eq(iop_job_state(b), IOP_QUEUED);

	ck_assert_int_eq(iop_group_cancel(group), 0);
	r = drain_for(pool, &db.d.calls, 1, 3000);
	/* Open the gate before asserting, so a failure cannot hang. */
	gate_open(&g);
	ck_assert_msg(r == 0, "the waiting member did not end while its "
		      "predecessor ran (it ended only after the gate opened)");
	drain_until(pool, &gr.calls, 1);
	drain_until(pool, &da.d.calls, 1);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_long(&db.d.result), -ECANCELED);
	ck_assert_int_eq(load_int(&sb.ran), 0);
	ck_assert_int_eq(load_long(&da.d.result), 1);
	ck_assert_uint_eq(gr.r.cancelled, 1);
	ck_assert_uint_eq(gr.r.succeeded, 0);
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * The error returns, each leaving the job and group usable: EINVAL for
 * NULLs, different pools, a sealed group and a second seal; EBUSY for a
 * job not held (submitted outside a batch) and for a job already in a
 * group.  Refused jobs still run and end once; the group counts only its
 * one member.
 */
START_TEST(test_group_errors)
{
	iop_pool *pool = pool_new(2);
	iop_pool *other = pool_new(1);
	struct group_rec gr, gr2, gro;
	atomic_int clock;
	iop_group *group, *group2, *gother;
	iop_job *outside, *member, *late, *foreign;

	atomic_init(&clock, 0);
	group_rec_init(&gr, &clock);
	group_rec_init(&gr2, &clock);
	group_rec_init(&gro, &clock);

	errno = 0;
	ck_assert_ptr_null(iop_group_new(NULL, group_record, &gr));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(iop_group_new(pool, NULL, &gr));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(iop_group_seal(NULL), -EINVAL);
	ck_assert_int_eq(iop_group_cancel(NULL), -EINVAL);

	group = group_new(pool, &gr);
	group2 = group_new(pool, &gr2);
	gother = iop_group_new(other, group_record, &gro);
	ck_assert_ptr_nonnull(gother);

	/* Not held: a future submitted outside any batch. */
	outside = iop_call(pool, work_return_ctx, (void *)(intptr_t)60, NULL,
			   NULL);
	ck_assert_ptr_nonnull(outside);
	ck_assert_int_eq(iop_group_add(group, outside), -EBUSY);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_int_eq(iop_group_add(group, outside), -EBUSY);

	member = iop_call(pool, work_return_ctx, (void *)(intptr_t)61, NULL,
			  NULL);
	ck_assert_ptr_nonnull(member);
	ck_assert_int_eq(iop_group_add(NULL, member), -EINVAL);
	ck_assert_int_eq(iop_group_add(group, NULL), -EINVAL);
	ck_assert_int_eq(iop_group_add(gother, member), -EINVAL);
	ck_assert_int_eq(iop_group_add(group, member), 0);
	ck_assert_int_eq(iop_group_add(group, member), -EBUSY);
	ck_assert_int_eq(iop_group_add(group2, member), -EBUSY);

	/* Sealed while its member is still held, so it cannot fire yet. */
	ck_assert_int_eq(iop_group_seal(group), 0);
	ck_assert_int_eq(iop_group_seal(group), -EINVAL);
	late = iop_call(pool, work_return_ctx, (void *)(intptr_t)62, NULL,
			NULL);
	ck_assert_ptr_nonnull(late);
	ck_assert_int_eq(iop_group_add(group, late), -EINVAL);
	/* Refused by one group, still free to join another. */
	ck_assert_int_eq(iop_group_add(group2, late), 0);
	ck_assert_int_eq(iop_batch_end(pool), 2);

	/* Another pool's job, held in this thread's batch on that pool. */
	ck_assert_int_eq(iop_batch_begin(other), 0);
	foreign = iop_call(other, work_return_ctx, (void *)(intptr_t)63, NULL,
			   NULL);
	ck_assert_ptr_nonnull(foreign);
	ck_assert_int_eq(iop_group_add(group2, foreign), -EINVAL);
	ck_assert_int_eq(iop_group_add(gother, foreign), 0);
	ck_assert_int_eq(iop_batch_end(other), 1);

	ck_assert_int_eq(iop_await(outside), 60);
	ck_assert_int_eq(iop_await(member), 61);
	ck_assert_int_eq(iop_await(late), 62);
	ck_assert_int_eq(iop_await(foreign), 63);
	ck_assert_int_eq(iop_group_seal(group2), 0);
	ck_assert_int_eq(iop_group_seal(gother), 0);
	drain_until(pool, &gr.calls, 1);
	drain_until(pool, &gr2.calls, 1);
	drain_until(other, &gro.calls, 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	iop_pool_destroy(other);
	ck_assert_int_eq(load_int(&gr.calls), 1);
	ck_assert_uint_eq(gr.r.succeeded, 1);
	ck_assert_uint_eq(gr.r.failed + gr.r.cancelled, 0);
	ck_assert_int_eq(load_int(&gr2.calls), 1);
	ck_assert_uint_eq(gr2.r.succeeded, 1);
	ck_assert_int_eq(load_int(&gro.calls), 1);
	ck_assert_uint_eq(gro.r.succeeded, 1);
}
END_TEST

/*
 * A job held in another thread's batch is not held in the caller's,
 * even while the caller has a batch of its own open on the same pool:
 * iop_group_add() refuses it with -EBUSY and the group never counts it.
 */
START_TEST(test_group_add_other_threads_held_job_is_ebusy)
{
	iop_pool *pool = pool_new(2);
	struct group_rec gr;
	atomic_int clock;
	iop_group *group;
	struct holder h;
	iop_job *mine;

	atomic_init(&clock, 0);
	group_rec_init(&gr, &clock);
	group = group_new(pool, &gr);
	holder_start(&h, pool, 70);
	ck_assert_ptr_nonnull(h.job);
	/* No batch open here. */
	ck_assert_int_eq(iop_group_add(group, h.job), -EBUSY);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	mine = iop_call(pool, work_return_ctx, (void *)(intptr_t)71, NULL,
			NULL);
	ck_assert_ptr_nonnull(mine);
	ck_assert_int_eq(iop_group_add(group, h.job), -EBUSY);
	ck_assert_int_eq(iop_group_add(group, mine), 0);
	ck_assert_int_eq(iop_batch_end(pool), 1);
	holder_release(&h);
	holder_join(&h);
	ck_assert_int_eq(iop_await(h.job), 70);
	ck_assert_int_eq(iop_await(mine), 71);
	ck_assert_int_eq(iop_group_seal(group), 0);
	drain_until(pool, &gr.calls, 1);
	iop_pool_destroy(pool);
	ck_assert_uint_eq(gr.r.succeeded, 1);
}
END_TEST

/*
 * A sealed group whose members are still running or queued when the
 * pool is destroyed: destroy cancels the queued members, lets the running
 * one finish, and runs the group callback, once, after every member
 * callback, on the calling thread.
 */
START_TEST(test_group_callback_runs_in_destroy)
{
	enum { NQ = 3 };
	iop_pool *pool = pool_new(1);
	struct step sr, sq[NQ];
	struct ordered_rec dr, dq[NQ];
	struct group_rec gr;
	atomic_int work_clock, clock;
	iop_group *group;
	struct opener o;
	struct gate g;
	sem_t entered;
	bool strict;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	group_rec_init(&gr, &clock);
	group = group_new(pool, &gr);
	step_init(&sr, &work_clock, 1);
	sr.gate = &g;
	sr.entered = &entered;
	ordered_init(&dr, &clock);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	add_step(pool, group, &sr, &dr);
	for (int i = 0; i < NQ; i++) {
		step_init(&sq[i], &work_clock, 2 + i);
		ordered_init(&dq[i], &clock);
		add_step(pool, group, &sq[i], &dq[i]);
	}
	ck_assert_int_eq(iop_batch_end(pool), NQ + 1);
	ck_assert_int_eq(iop_group_seal(group), 0);
	sem_wait_n(&entered, 1);

	opener_start(&o, &g, gettid_compat());
	opener_go(&o);
	iop_pool_destroy(pool);
	strict = opener_join(&o);

	ck_assert_int_eq(load_int(&gr.calls), 1);
	ck_assert_int_eq(load_int(&gr.off_thread), 0);
	ck_assert_int_eq(load_int(&gr.at), NQ + 2);
	ck_assert_int_eq(load_long(&dr.d.result), 1);
	ck_assert_uint_eq(gr.r.failed, 0);
	ck_assert_uint_eq(gr.r.succeeded + gr.r.cancelled, NQ + 1);
	if (strict) {
		ck_assert_uint_eq(gr.r.succeeded, 1);
		ck_assert_uint_eq(gr.r.cancelled, NQ);
	}
	for (int i = 0; i < NQ; i++) {
		ck_assert_int_eq(load_int(&dq[i].d.calls), 1);
		if (strict) {
			ck_assert_int_eq(load_long(&dq[i].d.result),
					 -ECANCELED);
			ck_assert_int_eq(load_int(&sq[i].ran), 0);
		}
	}
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * Groups never sealed never fire; destroy releases them (the sanitizer
 * and valgrind runs report a leak), also one with an ended member.
 */
START_TEST(test_group_unsealed_released_by_destroy)
{
	iop_pool *pool = pool_new(1);
	struct group_rec gr1, gr2;
	struct ordered_rec d;
	struct step s;
	atomic_int work_clock, clock;
	iop_group *g1;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	group_rec_init(&gr1, &clock);
	group_rec_init(&gr2, &clock);
	g1 = group_new(pool, &gr1);
	(void)group_new(pool, &gr2);
	step_init(&s, &work_clock, 1);
	ordered_init(&d, &clock);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	add_step(pool, g1, &s, &d);
	ck_assert_int_eq(iop_batch_end(pool), 1);
	drain_until(pool, &d.d.calls, 1);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&gr1.calls), 0);
	ck_assert_int_eq(load_int(&gr2.calls), 0);
}
END_TEST

static Suite *group_suite(void)
{
	Suite *s = suite_create("group");
	TCase *tc;

	tc = tcase_new("done");
	tcase_add_test(tc, test_group_done_after_members);
	tcase_add_test(tc, test_group_members_across_batches);
	tcase_add_test(tc, test_group_empty_sealed_fires_with_zeros);
	tcase_add_test(tc, test_group_future_members);
	tcase_add_test(tc, test_group_chain_members);
	suite_add_tcase(s, tc);

	tc = tcase_new("cancel");
	tcase_add_test(tc, test_group_cancel);
	tcase_add_test(tc, test_group_cancel_waiting_member);
	suite_add_tcase(s, tc);

	tc = tcase_new("errors");
	tcase_add_test(tc, test_group_errors);
	tcase_add_test(tc, test_group_add_other_threads_held_job_is_ebusy);
	suite_add_tcase(s, tc);

	tc = tcase_new("destroy");
	tcase_add_test(tc, test_group_callback_runs_in_destroy);
	tcase_add_test(tc, test_group_unsealed_released_by_destroy);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(group_suite());
}
