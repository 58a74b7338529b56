/*
 * Suite "chain": iop_link() runs jobs one after another, in chain order
 * on the workers and for the callbacks; a failure, a short read or write,
 * or a cancel ends the rest of the chain with -ECANCELED without running
 * it; the error returns of iop_link(); futures in chains; many chains at
 * once, each step seeing its predecessor's effect.
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
#include <sys/uio.h>
#include <unistd.h>

#include "helpers.h"

#define SEED 0xc4a10001u

/* Submit a call of step_work(@s) with callback @d (NULL: a future). */
static iop_job *call_step(iop_pool *pool, struct step *s,
			  struct ordered_rec *d)
{
	iop_job *job = iop_call(pool, step_work, s, d ? ordered_record : NULL,
				d);

	ck_assert_ptr_nonnull(job);
	return job;
}

/* Link @n jobs in a row: jobs[0] -> jobs[1] -> ... */
static void link_all(iop_job **jobs, int n)
{
	for (int i = 0; i + 1 < n; i++)
		ck_assert_int_eq(iop_link(jobs[i], jobs[i + 1]), 0);
}

/*
 * A -> B -> C where A fails: B and C end -ECANCELED without running, and
 * the three callbacks run in chain order.  D, after C, also ends.
 */
START_TEST(test_chain_stops_after_failure)
{
	enum { N = 4 };
	iop_pool *pool = pool_new(4);
	struct step s[N];
	struct ordered_rec d[N];
	atomic_int work_clock, clock;
	iop_job *j[N];

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		step_init(&s[i], &work_clock, i == 0 ? -EIO : i);
		ordered_init(&d[i], &clock);
		j[i] = call_step(pool, &s[i], &d[i]);
	}
	link_all(j, N);
	ck_assert_int_eq(iop_batch_end(pool), N);
	drain_until(pool, &clock, N);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_long(&d[0].d.result), -EIO);
	ck_assert_int_eq(load_int(&s[0].ran), 1);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&d[i].d.calls), 1);
		ck_assert_int_eq(load_int(&d[i].at), i + 1);
		if (i == 0)
			continue;
		ck_assert_int_eq(load_long(&d[i].d.result), -ECANCELED);
		ck_assert_int_eq(load_int(&s[i].ran), 0);
	}
}
END_TEST

/* A successful chain: every step runs, in order, on the workers and in
 * the callbacks. */
START_TEST(test_chain_runs_in_order)
{
	enum { N = 6 };
	iop_pool *pool = pool_new(4);
	struct step s[N];
	struct ordered_rec d[N];
	atomic_int work_clock, clock;
	iop_job *j[N];

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	/* Submitted in reverse, linked forward: the links decide. */
	for (int i = N - 1; i >= 0; i--) {
		step_init(&s[i], &work_clock, 10 + i);
		ordered_init(&d[i], &clock);
		j[i] = call_step(pool, &s[i], &d[i]);
	}
	link_all(j, N);
	for (int i = 1; i < N; i++)
		ck_assert_int_eq(iop_job_state(j[i]), IOP_QUEUED);
	ck_assert_int_eq(iop_batch_end(pool), N);
	drain_until(pool, &clock, N);
	iop_pool_destroy(pool);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_long(&d[i].d.result), 10 + i);
		ck_assert_int_eq(load_int(&d[i].d.calls), 1);
		ck_assert_int_eq(load_int(&s[i].at), i + 1);
		ck_assert_int_eq(load_int(&d[i].at), i + 1);
	}
}
END_TEST

/* A step that checks what the write before it left in the file. */
struct verify {
	struct step st;
	int fd;			/* read the file through this one */
	const unsigned char *want;
	size_t len;
	atomic_int ok;
};

static ssize_t verify_written_work(void *ctx)
{
	struct verify *v = ctx;
	unsigned char *got = malloc(v->len + 1);
	ssize_t n;

	if (got != NULL) {
		n = pread(v->fd, got, v->len + 1, 0);
		atomic_store(&v->ok, n == (ssize_t)v->len &&
				     memcmp(got, v->want, v->len) == 0);
		free(got);
	}
	return step_work(&v->st);
}

/* A step that checks that descriptor @fd has been closed. */
static ssize_t verify_closed_work(void *ctx)
{
	struct verify *v = ctx;

	atomic_store(&v->ok, fcntl(v->fd, F_GETFD) == -1 && errno == EBADF);
	return step_work(&v->st);
}

/*
 * The durable write shape, with call steps between the ops:
 * c1 -> write -> c2 -> fdatasync -> c3 -> close -> c4.  The callbacks
 * run in that order; on the workers c2 sees the written bytes in the
 * file and c4 sees the descriptor closed, so each op ran after the one
 * before it; the call steps started in order.  After the chain the file
 * holds the data.
 */
START_TEST(test_chain_write_fdatasync_close_order)
{
	enum { LEN = 4096, N = 7 };
	iop_pool *pool = pool_new(4);
	int fd = make_pattern_file(0, SEED);
	int wfd = dup(fd);
	unsigned char buf[LEN], back[LEN + 1];
	struct ordered_rec d[N];
	struct step c1, c3;
	struct verify c2, c4;
	atomic_int work_clock, clock;
	iop_job *j[N];

	ck_assert_int_ge(wfd, 0);
	for (size_t i = 0; i < LEN; i++)
		buf[i] = pattern_byte(SEED, i);
	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	for (int i = 0; i < N; i++)
		ordered_init(&d[i], &clock);
	step_init(&c1, &work_clock, 1);
	step_init(&c2.st, &work_clock, 2);
	c2.fd = fd;
	c2.want = buf;
	c2.len = LEN;
	atomic_init(&c2.ok, 0);
	step_init(&c3, &work_clock, 3);
	step_init(&c4.st, &work_clock, 4);
	c4.fd = wfd;
	atomic_init(&c4.ok, 0);

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	j[0] = call_step(pool, &c1, &d[0]);
	j[1] = iop_write(pool, wfd, buf, LEN, 0, ordered_record, &d[1]);
	j[2] = iop_call(pool, verify_written_work, &c2, ordered_record, &d[2]);
	j[3] = iop_fdatasync(pool, wfd, ordered_record, &d[3]);
	j[4] = call_step(pool, &c3, &d[4]);
	j[5] = iop_close(pool, wfd, ordered_record, &d[5]);
	j[6] = iop_call(pool, verify_closed_work, &c4, ordered_record, &d[6]);
	for (int i = 0; i < N; i++)
		ck_assert_ptr_nonnull(j[i]);
	link_all(j, N);
	ck_assert_int_eq(iop_batch_end(pool), N);
	drain_until(pool, &clock, N);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);

	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&d[i].d.calls), 1);
		ck_assert_int_eq(load_int(&d[i].at), i + 1);
	}
	ck_assert_int_eq(load_long(&d[0].d.result), 1);
	ck_assert_int_eq(load_long(&d[1].d.result), LEN);
	ck_assert_int_eq(load_long(&d[2].d.result), 2);
	ck_assert_int_eq(load_long(&d[3].d.result), 0);
	ck_assert_int_eq(load_long(&d[4].d.result), 3);
	ck_assert_int_eq(load_long(&d[5].d.result), 0);
	ck_assert_int_eq(load_long(&d[6].d.result), 4);
	ck_assert_int_eq(load_int(&c1.at), 1);
	ck_assert_int_eq(load_int(&c2.st.at), 2);
	ck_assert_int_eq(load_int(&c3.at), 3);
	ck_assert_int_eq(load_int(&c4.st.at), 4);
	ck_assert_int_eq(load_int(&c2.ok), 1);
	ck_assert_int_eq(load_int(&c4.ok), 1);
	ck_assert_int_eq(pread(fd, back, sizeof(back), 0), LEN);
	ck_assert_int_eq(memcmp(back, buf, LEN), 0);
	close(fd);
}
END_TEST

/*
 * A short read breaks the chain: a read of 200 bytes from a 100-byte
 * file returns 100 and the call linked after it ends -ECANCELED without
 * running.  So does a short readv.  A read of exactly what is there, and
 * a read of 0 bytes, are whole: the call after them runs.
 */
START_TEST(test_chain_short_read_breaks)
{
	enum { N = 4 };
	iop_pool *pool = pool_new(2);
	int fd = make_pattern_file(100, SEED);
	unsigned char b_short[200], b_vec[150], b_whole[100];
	struct iovec iov[2] = {
		{ .iov_base = b_vec, .iov_len = 50 },
		{ .iov_base = b_vec + 50, .iov_len = 100 },
	};
	struct ordered_rec dr[N], dc[N];
	struct step s[N];
	atomic_int work_clock, clock;
	iop_job *r[N], *c;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	for (int i = 0; i < N; i++) {
		ordered_init(&dr[i], &clock);
		ordered_init(&dc[i], &clock);
		step_init(&s[i], &work_clock, 100 + i);
	}
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	r[0] = iop_read(pool, fd, b_short, sizeof(b_short), 0, ordered_record,
			&dr[0]);
	r[1] = iop_readv(pool, fd, iov, 2, 0, ordered_record, &dr[1]);
	r[2] = iop_read(pool, fd, b_whole, sizeof(b_whole), 0, ordered_record,
			&dr[2]);
	r[3] = iop_read(pool, fd, NULL, 0, 100, ordered_record, &dr[3]);
	for (int i = 0; i < N; i++) {
		ck_assert_ptr_nonnull(r[i]);
		c = call_step(pool, &s[i], &dc[i]);
		ck_assert_int_eq(iop_link(r[i], c), 0);
	}
	ck_assert_int_eq(iop_batch_end(pool), 2 * N);
	drain_until(pool, &clock, 2 * N);
	iop_pool_destroy(pool);

	ck_assert_int_eq(load_long(&dr[0].d.result), 100);
	ck_assert_int_eq(load_long(&dr[1].d.result), 100);
	ck_assert_int_eq(load_long(&dr[2].d.result), 100);
	ck_assert_int_eq(load_long(&dr[3].d.result), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(load_long(&dc[i].d.result), -ECANCELED);
		ck_assert_int_eq(load_int(&s[i].ran), 0);
	}
	for (int i = 2; i < N; i++) {
		ck_assert_int_eq(load_long(&dc[i].d.result), 100 + i);
		ck_assert_int_eq(load_int(&s[i].ran), 1);
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_lt(load_int(&dr[i].at), load_int(&dc[i].at));
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(b_short[i], pattern_byte(SEED, i));
		ck_assert_int_eq(b_whole[i], pattern_byte(SEED, i));
		ck_assert_int_eq(b_vec[i], pattern_byte(SEED, i));
	}
	close(fd);
}
END_TEST

/*
 * A short write breaks the chain: a non-blocking pipe takes only what
 * fits, so writing twice its capacity comes back short, and the call
 * linked after it ends -ECANCELED without running.  The same with writev.
 */
START_TEST(test_chain_short_write_breaks)
{
	iop_pool *pool = pool_new(2);
	struct ordered_rec dw, dc, dwv, dcv;
	struct step sc, scv;
	atomic_int work_clock, clock;
	struct iovec iov[2];
	unsigned char *buf;
	int p1[2], p2[2], cap;
	iop_job *w, *wv;

	ck_assert_int_eq(pipe2(p1, O_NONBLOCK), 0);
	ck_assert_int_eq(pipe2(p2, O_NONBLOCK), 0);
	cap = fcntl(p1[1], F_GETPIPE_SZ);
	ck_assert_int_gt(cap, 0);
	ck_assert_int_eq(fcntl(p2[1], F_GETPIPE_SZ), cap);
	buf = calloc(2, (size_t)cap);
	ck_assert_ptr_nonnull(buf);
	iov[0].iov_base = buf;
	iov[0].iov_len = (size_t)cap;
	iov[1].iov_base = buf + cap;
	iov[1].iov_len = (size_t)cap;
	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	ordered_init(&dw, &clock);
	ordered_init(&dc, &clock);
	ordered_init(&dwv, &clock);
	ordered_init(&dcv, &clock);
	step_init(&sc, &work_clock, 1);
	step_init(&scv, &work_clock, 2);

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	w = iop_write(pool, p1[1], buf, 2 * (size_t)cap, IOP_OFFSET_CURRENT,
		      ordered_record, &dw);
	wv = iop_writev(pool, p2[1], iov, 2, IOP_OFFSET_CURRENT,
			ordered_record, &dwv);
	ck_assert_ptr_nonnull(w);
	ck_assert_ptr_nonnull(wv);
	ck_assert_int_eq(iop_link(w, call_step(pool, &sc, &dc)), 0);
	ck_assert_int_eq(iop_link(wv, call_step(pool, &scv, &dcv)), 0);
	ck_assert_int_eq(iop_batch_end(pool), 4);
	drain_until(pool, &clock, 4);
	iop_pool_destroy(pool);

	ck_assert_int_gt(load_long(&dw.d.result), 0);
	ck_assert_int_lt(load_long(&dw.d.result), 2 * cap);
	ck_assert_int_gt(load_long(&dwv.d.result), 0);
	ck_assert_int_lt(load_long(&dwv.d.result), 2 * cap);
	ck_assert_int_eq(load_long(&dc.d.result), -ECANCELED);
	ck_assert_int_eq(load_long(&dcv.d.result), -ECANCELED);
	ck_assert_int_eq(load_int(&sc.ran), 0);
	ck_assert_int_eq(load_int(&scv.ran), 0);
	ck_assert_int_lt(load_int(&dw.at), load_int(&dc.at));
	ck_assert_int_lt(load_int(&dwv.at), load_int(&dcv.at));
	free(buf);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}
END_TEST

/*
 * Cancelling the head while it is held in the batch: at batch end the
 * whole chain ends -ECANCELED, in chain order, and nothing runs.
 */
START_TEST(test_chain_cancel_held_head)
{
	enum { N = 3 };
	iop_pool *pool = pool_new(2);
	struct step s[N];
	struct ordered_rec d[N];
	atomic_int work_clock, clock;
	iop_job *j[N];

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		step_init(&s[i], &work_clock, i);
		ordered_init(&d[i], &clock);
		j[i] = call_step(pool, &s[i], &d[i]);
	}
	link_all(j, N);
	ck_assert_int_eq(iop_cancel(j[0]), 0);
	batch_end_expect(pool, N, N);
	drain_until(pool, &clock, N);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&work_clock), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&d[i].d.calls), 1);
		ck_assert_int_eq(load_long(&d[i].d.result), -ECANCELED);
		ck_assert_int_eq(load_int(&d[i].at), i + 1);
	}
}
END_TEST

/*
 * Cancelling the head once it is queued (the only worker is held): the
 * whole chain ends -ECANCELED at once, in chain order, before the worker
 * is free, and nothing of it runs.  A chain of futures the same way.
 */
START_TEST(test_chain_cancel_queued_head)
{
	enum { N = 3 };
	iop_pool *pool = pool_new(1);
	struct step s[N], sf[N], sx;
	struct ordered_rec d[N], dx;
	atomic_int work_clock, clock;
	iop_job *j[N], *f[N];
	struct gate g;
	sem_t entered;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	step_init(&sx, &work_clock, 50);
	sx.gate = &g;
	sx.entered = &entered;
	ordered_init(&dx, &clock);
	call_step(pool, &sx, &dx);
	sem_wait_n(&entered, 1);

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		step_init(&s[i], &work_clock, i);
		step_init(&sf[i], &work_clock, 10 + i);
		ordered_init(&d[i], &clock);
		j[i] = call_step(pool, &s[i], &d[i]);
		f[i] = call_step(pool, &sf[i], NULL);
	}
	link_all(j, N);
	link_all(f, N);
	ck_assert_int_eq(iop_batch_end(pool), 2 * N);
	ck_assert_int_eq(iop_job_state(j[0]), IOP_QUEUED);
	ck_assert_int_eq(iop_cancel(j[0]), 0);
	ck_assert_int_eq(iop_cancel(f[0]), 0);
	/* The worker is still held: they end without it. */
	drain_until(pool, &clock, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(iop_await(f[i]), -ECANCELED);
	ck_assert_int_eq(load_int(&dx.d.calls), 0);
	gate_open(&g);
	drain_until(pool, &dx.d.calls, 1);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&work_clock), 1);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_long(&d[i].d.result), -ECANCELED);
		ck_assert_int_eq(load_int(&d[i].at), i + 1);
	}
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * Cancelling a waiting middle job: it and the jobs after it end
 * -ECANCELED without running, while the head still runs to its own
 * result.  Once with the head running, once with it queued.
 */
START_TEST(test_chain_cancel_waiting_middle)
{
	enum { N = 4 };
	iop_pool *pool = pool_new(1);
	struct step s[N], t[N];
	struct ordered_rec ds[N], dt[N];
	atomic_int work_clock, clock;
	iop_job *js[N], *jt[N];
	struct gate g;
	sem_t entered;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		step_init(&s[i], &work_clock, i);
		step_init(&t[i], &work_clock, 10 + i);
		ordered_init(&ds[i], &clock);
		ordered_init(&dt[i], &clock);
	}
	/* Chain s: its head holds the only worker.  Chain t queues. */
	s[0].gate = &g;
	s[0].entered = &entered;
	for (int i = 0; i < N; i++)
		js[i] = call_step(pool, &s[i], &ds[i]);
	for (int i = 0; i < N; i++)
		jt[i] = call_step(pool, &t[i], &dt[i]);
	link_all(js, N);
	link_all(jt, N);
	ck_assert_int_eq(iop_batch_end(pool), 2 * N);
	sem_wait_n(&entered, 1);
	ck_assert_int_eq(iop_job_state(js[0]), IOP_RUNNING);
	ck_assert_int_eq(iop_job_state(js[1]), IOP_QUEUED);
	ck_assert_int_eq(iop_job_state(jt[0]), IOP_QUEUED);
	ck_assert_int_eq(iop_job_state(jt[2]), IOP_QUEUED);

	ck_assert_int_eq(iop_cancel(js[1]), 0);
	ck_assert_int_eq(iop_cancel(jt[2]), 0);
	/* Ended at once: s1..s3 and t2..t3, while the worker is held. */
	drain_until(pool, &clock, (N - 1) + (N - 2));
	ck_assert_int_eq(load_int(&ds[0].d.calls), 0);
	ck_assert_int_eq(load_int(&dt[0].d.calls), 0);
	gate_open(&g);
	drain_until(pool, &clock, 2 * N);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);

	ck_assert_int_eq(load_long(&ds[0].d.result), 0);
	ck_assert_int_eq(load_int(&s[0].ran), 1);
	for (int i = 1; i < N; i++) {
		ck_assert_int_eq(load_long(&ds[i].d.result), -ECANCELED);
		ck_assert_int_eq(load_int(&s[i].ran), 0);
	}
	for (int i = 1; i < N - 1; i++)
		ck_assert_int_lt(load_int(&ds[i].at), load_int(&ds[i + 1].at));
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(load_long(&dt[i].d.result), 10 + i);
		ck_assert_int_eq(load_int(&t[i].ran), 1);
	}
	ck_assert_int_lt(load_int(&t[0].at), load_int(&t[1].at));
	ck_assert_int_lt(load_int(&dt[0].at), load_int(&dt[1].at));
	for (int i = 2; i < N; i++) {
		ck_assert_int_eq(load_long(&dt[i].d.result), -ECANCELED);
		ck_assert_int_eq(load_int(&t[i].ran), 0);
	}
	ck_assert_int_lt(load_int(&dt[2].at), load_int(&dt[3].at));
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&ds[i].d.calls), 1);
		ck_assert_int_eq(load_int(&dt[i].d.calls), 1);
	}
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * iop_link() errors: -EINVAL for NULL, the same job and different pools;
 * -EBUSY for a job not held (submitted before the batch, or no longer
 * held after it) and for a side already linked.  The refused
 * calls change nothing: the chain that was built runs in order, the other
 * jobs run on their own.
 */
START_TEST(test_chain_link_errors)
{
	enum { N = 3 };
	iop_pool *pool = pool_new(2);
	iop_pool *other = pool_new(1);
	struct step s[N];
	struct ordered_rec d[N];
	atomic_int work_clock, clock;
	iop_job *j[N], *outside, *foreign;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	ck_assert_int_eq(iop_link(NULL, NULL), -EINVAL);
	outside = iop_call(pool, work_return_ctx, (void *)(intptr_t)60, NULL,
			   NULL);
	foreign = iop_call(other, work_return_ctx, (void *)(intptr_t)61, NULL,
			   NULL);
	ck_assert_ptr_nonnull(outside);
	ck_assert_ptr_nonnull(foreign);

	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		step_init(&s[i], &work_clock, i);
		ordered_init(&d[i], &clock);
		j[i] = call_step(pool, &s[i], &d[i]);
	}
	ck_assert_int_eq(iop_link(j[0], NULL), -EINVAL);
	ck_assert_int_eq(iop_link(NULL, j[0]), -EINVAL);
	ck_assert_int_eq(iop_link(j[0], j[0]), -EINVAL);
	ck_assert_int_eq(iop_link(j[0], foreign), -EINVAL);
	ck_assert_int_eq(iop_link(foreign, j[0]), -EINVAL);
	ck_assert_int_eq(iop_link(j[0], outside), -EBUSY);
	ck_assert_int_eq(iop_link(outside, j[0]), -EBUSY);

	ck_assert_int_eq(iop_link(j[0], j[1]), 0);
	ck_assert_int_eq(iop_link(j[0], j[2]), -EBUSY);
	ck_assert_int_eq(iop_link(j[2], j[1]), -EBUSY);
	ck_assert_int_eq(iop_link(j[0], j[1]), -EBUSY);
	ck_assert_int_eq(iop_link(j[1], j[2]), 0);
	ck_assert_int_eq(iop_batch_end(pool), N);

	/* No longer held: too late to link. */
	ck_assert_int_eq(iop_link(j[2], outside), -EBUSY);
	drain_until(pool, &clock, N);
	ck_assert_int_eq(iop_await(outside), 60);
	ck_assert_int_eq(iop_await(foreign), 61);
	iop_pool_destroy(pool);
	iop_pool_destroy(other);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_long(&d[i].d.result), i);
		ck_assert_int_eq(load_int(&s[i].at), i + 1);
		ck_assert_int_eq(load_int(&d[i].at), i + 1);
	}
}
END_TEST

/*
 * A job held in another thread's batch is not held in the caller's, even
 * while the caller has a batch of its own open on the same pool: linking
 * it either way is -EBUSY, and both jobs then run on their own.
 */
START_TEST(test_chain_link_other_threads_held_job_is_ebusy)
{
	iop_pool *pool = pool_new(2);
	struct holder h;
	iop_job *mine;

	holder_start(&h, pool, 70);
	ck_assert_ptr_nonnull(h.job);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	mine = iop_call(pool, work_return_ctx, (void *)(intptr_t)71, NULL,
			NULL);
	ck_assert_ptr_nonnull(mine);
	/* Checked at once: a wrong link would tie the two batches. */
	ck_assert_int_eq(iop_link(mine, h.job), -EBUSY);
	ck_assert_int_eq(iop_link(h.job, mine), -EBUSY);
	ck_assert_int_eq(iop_batch_end(pool), 1);
	holder_release(&h);
	holder_join(&h);
	ck_assert_int_eq(iop_await(mine), 71);
	ck_assert_int_eq(iop_await(h.job), 70);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * Chains of futures: awaited in order, awaited last-first, and one whose
 * head fails (the rest await -ECANCELED); a mixed chain of callback job,
 * future, callback job.  Steps start in chain order.
 */
START_TEST(test_chain_futures_awaited)
{
	enum { N = 3 };
	iop_pool *pool = pool_new(4);
	struct step sa[N], sb[N], sc[N], sm[N];
	struct ordered_rec dm[N];
	atomic_int ca, cb, cc, cm, clock;
	iop_job *a[N], *b[N], *c[N], *m[N];

	atomic_init(&ca, 0);
	atomic_init(&cb, 0);
	atomic_init(&cc, 0);
	atomic_init(&cm, 0);
	atomic_init(&clock, 0);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		step_init(&sa[i], &ca, 1 + i);
		step_init(&sb[i], &cb, 11 + i);
		step_init(&sc[i], &cc, i == 0 ? -ENOENT : 21 + i);
		step_init(&sm[i], &cm, 31 + i);
		ordered_init(&dm[i], &clock);
		a[i] = call_step(pool, &sa[i], NULL);
		b[i] = call_step(pool, &sb[i], NULL);
		c[i] = call_step(pool, &sc[i], NULL);
		m[i] = call_step(pool, &sm[i], i == 1 ? NULL : &dm[i]);
	}
	link_all(a, N);
	link_all(b, N);
	link_all(c, N);
	link_all(m, N);
	ck_assert_int_eq(iop_batch_end(pool), 4 * N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(iop_await(a[i]), 1 + i);
	for (int i = N - 1; i >= 0; i--)
		ck_assert_int_eq(iop_await(b[i]), 11 + i);
	ck_assert_int_eq(iop_await(c[0]), -ENOENT);
	for (int i = 1; i < N; i++)
		ck_assert_int_eq(iop_await(c[i]), -ECANCELED);
	ck_assert_int_eq(iop_await(m[1]), 32);
	drain_until(pool, &clock, 2);
	iop_pool_destroy(pool);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&sa[i].at), i + 1);
		ck_assert_int_eq(load_int(&sb[i].at), i + 1);
		ck_assert_int_eq(load_int(&sm[i].at), i + 1);
	}
	ck_assert_int_eq(load_int(&sc[1].ran), 0);
	ck_assert_int_eq(load_int(&sc[2].ran), 0);
	ck_assert_int_eq(load_long(&dm[0].d.result), 31);
	ck_assert_int_eq(load_long(&dm[2].d.result), 33);
	ck_assert_int_lt(load_int(&dm[0].at), load_int(&dm[2].at));
}
END_TEST

/*
 * Many chains at once: 1000 chains of 3 calls on 4 workers.  Each step
 * checks, on its worker, that its predecessor has left its mark (a plain
 * int, so the sanitizer runs also check that the library orders the
 * steps), and each callback checks the chain's callbacks so far.
 */
enum { MANY_CHAINS = 1000, MANY_LEN = 3, MANY_PER_BATCH = 100 };

struct many_chain {
	int step;		/* written by step k, read by step k + 1 */
	int callbacks;		/* on the test thread only */
	int bad_callbacks;	/* on the test thread only */
	atomic_int bad_steps;
};

struct many_step {
	struct many_chain *c;
	int k;
};

static atomic_int many_done;

static ssize_t many_work(void *ctx)
{
	struct many_step *s = ctx;

	if (s->c->step != s->k) {
		atomic_fetch_add(&s->c->bad_steps, 1);
		return -EPROTO;
	}
	s->c->step = s->k + 1;
	return s->k;
}

static void many_done_cb(iop_job *job, ssize_t result, void *arg)
{
	struct many_step *s = arg;

	(void)job;
	if (s->c->callbacks != s->k || result != s->k)
		s->c->bad_callbacks++;
	s->c->callbacks++;
	atomic_fetch_add(&many_done, 1);
}

START_TEST(test_chain_many_parallel)
{
	iop_pool *pool = pool_new(4);
	struct many_chain *c = calloc(MANY_CHAINS, sizeof(*c));
	struct many_step *s = calloc(MANY_CHAINS * MANY_LEN, sizeof(*s));
	int bad_steps = 0, bad_callbacks = 0, ended = 0;

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(s);
	atomic_init(&many_done, 0);
	for (int i = 0; i < MANY_CHAINS; i++) {
		iop_job *j[MANY_LEN];

		if (i % MANY_PER_BATCH == 0)
			ck_assert_int_eq(iop_batch_begin(pool), 0);
		atomic_init(&c[i].bad_steps, 0);
		for (int k = 0; k < MANY_LEN; k++) {
			struct many_step *st = &s[i * MANY_LEN + k];

			st->c = &c[i];
			st->k = k;
			j[k] = iop_call(pool, many_work, st, many_done_cb, st);
			ck_assert_ptr_nonnull(j[k]);
		}
		link_all(j, MANY_LEN);
		if (i % MANY_PER_BATCH == MANY_PER_BATCH - 1)
			ck_assert_int_eq(iop_batch_end(pool),
					 MANY_PER_BATCH * MANY_LEN);
	}
	drain_until(pool, &many_done, MANY_CHAINS * MANY_LEN);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	iop_pool_destroy(pool);
	for (int i = 0; i < MANY_CHAINS; i++) {
		bad_steps += load_int(&c[i].bad_steps);
		bad_callbacks += c[i].bad_callbacks;
		ended += c[i].callbacks;
		ck_assert_int_eq(c[i].step, MANY_LEN);
	}
	ck_assert_int_eq(bad_steps, 0);
	ck_assert_int_eq(bad_callbacks, 0);
	ck_assert_int_eq(ended, MANY_CHAINS * MANY_LEN);
	free(s);
	free(c);
}
END_TEST

/*
 * Chains built in callbacks, in a closed loop: 20000 chains of 2 calls, 32
 * in flight, each chain's last callback building the next one, drained
 * with iop_wait() on 2 workers.  The thread in iop_wait() runs some of the
 * short steps itself while workers run others; whoever ran them, each
 * chain's callbacks run in chain order.
 */
enum { LOOP_CHAINS = 20000, LOOP_LEN = 2, LOOP_WINDOW = 32 };

struct loop;

struct loop_step {
	struct many_step m;
	struct loop *l;
};

struct loop {
	iop_pool *pool;
	struct many_chain c[LOOP_CHAINS];
	struct loop_step s[LOOP_CHAINS][LOOP_LEN];
	int next;		/* the next chain to build; test thread only */
	int build_errors;	/* test thread only */
};

static void loop_done_cb(iop_job *job, ssize_t result, void *arg);

static void loop_build(struct loop *l)
{
	int i = l->next++;
	iop_job *j[LOOP_LEN];

	if (iop_batch_begin(l->pool) != 0) {
		l->build_errors++;
		return;
	}
	for (int k = 0; k < LOOP_LEN; k++) {
		l->s[i][k].m.c = &l->c[i];
		l->s[i][k].m.k = k;
		l->s[i][k].l = l;
		j[k] = iop_call(l->pool, many_work, &l->s[i][k].m,
				loop_done_cb, &l->s[i][k]);
		if (!j[k])
			l->build_errors++;
	}
	for (int k = 0; k + 1 < LOOP_LEN; k++)
		if (!j[k] || !j[k + 1] || iop_link(j[k], j[k + 1]) != 0)
			l->build_errors++;
	if (iop_batch_end(l->pool) != LOOP_LEN)
		l->build_errors++;
}

static void loop_done_cb(iop_job *job, ssize_t result, void *arg)
{
	struct loop_step *st = arg;

	many_done_cb(job, result, &st->m);
	if (st->m.k == LOOP_LEN - 1 && st->l->next < LOOP_CHAINS)
		loop_build(st->l);
}

START_TEST(test_chain_order_closed_loop)
{
	struct loop *l = calloc(1, sizeof(*l));
	int bad_steps = 0, bad_callbacks = 0;

	ck_assert_ptr_nonnull(l);
	l->pool = pool_new(2);
	atomic_init(&many_done, 0);
	for (int i = 0; i < LOOP_CHAINS; i++)
		atomic_init(&l->c[i].bad_steps, 0);
	for (int i = 0; i < LOOP_WINDOW; i++)
		loop_build(l);
	drain_until(l->pool, &many_done, LOOP_CHAINS * LOOP_LEN);
	ck_assert_int_eq(iop_wait(l->pool, 20), 0);
	iop_pool_destroy(l->pool);
	ck_assert_int_eq(l->build_errors, 0);
	ck_assert_int_eq(l->next, LOOP_CHAINS);
	for (int i = 0; i < LOOP_CHAINS; i++) {
		bad_steps += load_int(&l->c[i].bad_steps);
		bad_callbacks += l->c[i].bad_callbacks;
		ck_assert_int_eq(l->c[i].step, LOOP_LEN);
		ck_assert_int_eq(l->c[i].callbacks, LOOP_LEN);
	}
	ck_assert_int_eq(bad_steps, 0);
	ck_assert_int_eq(bad_callbacks, 0);
	free(l);
}
END_TEST

/*
 * Destroy with a chain whose head runs and whose rest waits: the head
 * finishes with its result, the jobs waiting behind it end -ECANCELED
 * without running (they had not started), callbacks in chain order.  A
 * second chain, queued whole, ends -ECANCELED whole.
 */
START_TEST(test_chain_destroy_cancels_waiting)
{
	enum { N = 3 };
	iop_pool *pool = pool_new(1);
	struct step s[N], t[N];
	struct ordered_rec ds[N], dt[N];
	atomic_int work_clock, clock;
	iop_job *js[N], *jt[N];
	struct opener o;
	struct gate g;
	sem_t entered;
	bool strict;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		step_init(&s[i], &work_clock, i);
		step_init(&t[i], &work_clock, 10 + i);
		ordered_init(&ds[i], &clock);
		ordered_init(&dt[i], &clock);
	}
	s[0].gate = &g;
	s[0].entered = &entered;
	for (int i = 0; i < N; i++)
		js[i] = call_step(pool, &s[i], &ds[i]);
	for (int i = 0; i < N; i++)
		jt[i] = call_step(pool, &t[i], &dt[i]);
	link_all(js, N);
	link_all(jt, N);
	ck_assert_int_eq(iop_batch_end(pool), 2 * N);
	sem_wait_n(&entered, 1);

	opener_start(&o, &g, gettid_compat());
	opener_go(&o);
	iop_pool_destroy(pool);
	strict = opener_join(&o);

	ck_assert_int_eq(load_long(&ds[0].d.result), 0);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(load_int(&ds[i].d.calls), 1);
		ck_assert_int_eq(load_int(&dt[i].d.calls), 1);
		if (i > 0) {
			ck_assert_int_lt(load_int(&ds[i - 1].at),
					 load_int(&ds[i].at));
			ck_assert_int_lt(load_int(&dt[i - 1].at),
					 load_int(&dt[i].at));
		}
		if (!strict)
			continue;
		if (i > 0) {
			ck_assert_int_eq(load_long(&ds[i].d.result),
					 -ECANCELED);
			ck_assert_int_eq(load_int(&s[i].ran), 0);
		}
		ck_assert_int_eq(load_long(&dt[i].d.result), -ECANCELED);
		ck_assert_int_eq(load_int(&t[i].ran), 0);
	}
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/*
 * A chain built inside a callback, in a batch the callback opens: it
 * runs in order after the callback returns, callbacks in chain order.
 */
struct in_callback {
	iop_pool *pool;
	struct step s[3];
	struct ordered_rec d[3];
	int begin_ret, end_ret, link_ret[2];
	atomic_int calls;
};

static void build_chain_done(iop_job *job, ssize_t result, void *arg)
{
	struct in_callback *ic = arg;
	iop_job *j[3];

	(void)job;
	(void)result;
	ic->begin_ret = iop_batch_begin(ic->pool);
	for (int i = 0; i < 3; i++)
		j[i] = iop_call(ic->pool, step_work, &ic->s[i], ordered_record,
				&ic->d[i]);
	ic->link_ret[0] = j[0] && j[1] ? iop_link(j[0], j[1]) : -1000;
	ic->link_ret[1] = j[1] && j[2] ? iop_link(j[1], j[2]) : -1000;
	ic->end_ret = iop_batch_end(ic->pool);
	atomic_fetch_add(&ic->calls, 1);
}

START_TEST(test_chain_built_in_callback)
{
	iop_pool *pool = pool_new(4);
	struct in_callback ic;
	atomic_int work_clock, clock;

	atomic_init(&work_clock, 0);
	atomic_init(&clock, 0);
	ic.pool = pool;
	atomic_init(&ic.calls, 0);
	for (int i = 0; i < 3; i++) {
		step_init(&ic.s[i], &work_clock, i);
		ordered_init(&ic.d[i], &clock);
	}
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       build_chain_done, &ic));
	drain_until(pool, &ic.calls, 1);
	drain_until(pool, &clock, 3);
	iop_pool_destroy(pool);
	ck_assert_int_eq(ic.begin_ret, 0);
	ck_assert_int_eq(ic.link_ret[0], 0);
	ck_assert_int_eq(ic.link_ret[1], 0);
	ck_assert_int_eq(ic.end_ret, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(load_long(&ic.d[i].d.result), i);
		ck_assert_int_eq(load_int(&ic.s[i].at), i + 1);
		ck_assert_int_eq(load_int(&ic.d[i].at), i + 1);
	}
}
END_TEST

static Suite *chain_suite(void)
{
	Suite *s = suite_create("chain");
	TCase *tc;

	tc = tcase_new("order");
	tcase_add_test(tc, test_chain_stops_after_failure);
	tcase_add_test(tc, test_chain_runs_in_order);
	tcase_add_test(tc, test_chain_write_fdatasync_close_order);
	tcase_add_test(tc, test_chain_futures_awaited);
	tcase_add_test(tc, test_chain_many_parallel);
	tcase_add_test(tc, test_chain_order_closed_loop);
	tcase_add_test(tc, test_chain_built_in_callback);
	suite_add_tcase(s, tc);

	tc = tcase_new("short");
	tcase_add_test(tc, test_chain_short_read_breaks);
	tcase_add_test(tc, test_chain_short_write_breaks);
	suite_add_tcase(s, tc);

	tc = tcase_new("cancel");
	tcase_add_test(tc, test_chain_cancel_held_head);
	tcase_add_test(tc, test_chain_cancel_queued_head);
	tcase_add_test(tc, test_chain_cancel_waiting_middle);
	tcase_add_test(tc, test_chain_destroy_cancels_waiting);
	suite_add_tcase(s, tc);

	tc = tcase_new("errors");
	tcase_add_test(tc, test_chain_link_errors);
	tcase_add_test(tc, test_chain_link_other_threads_held_job_is_ebusy);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(chain_suite());
}
