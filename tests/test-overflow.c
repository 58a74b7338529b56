/*
 * Suite "overflow": a bounded queue (max_queued) and what a submit does
 * when it finds the queue full: fail with EAGAIN, block until a queued
 * job starts (or until overflow_timeout_ms), or run the job on the
 * submitting thread.  Then IOP_POOL_INLINE, a pool without threads, and
 * the option checks of both.  Every job that was accepted ends exactly
 * once; a refused one never runs and never calls back.
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

/* The queue limit of every bounded pool here. */
enum { MAXQ = 4 };

/* Set by the test thread around a submit call, read by work functions. */
static atomic_int in_submit;

/*
 * One job: what its work saw (how often it ran, on which thread, whether
 * the test thread was inside a submit call then, its turn on a shared
 * clock) and what its callback saw.  @ended, shared by the jobs of a
 * test, counts callbacks.
 */
struct probe {
	atomic_int *ended;
	atomic_int *clock;	/* NULL: no turn recorded */
	ssize_t result;
	atomic_int ran;
	atomic_int at;
	atomic_int saw_in_submit;
	pthread_t thread;	/* written by the work */
	atomic_int calls;
	atomic_int off_thread;
	atomic_long got;
};

static void probe_init(struct probe *p, atomic_int *ended, ssize_t result)
{
	p->ended = ended;
	p->clock = NULL;
	p->result = result;
	atomic_init(&p->ran, 0);
	atomic_init(&p->at, 0);
	atomic_init(&p->saw_in_submit, 0);
	memset(&p->thread, 0, sizeof(p->thread));
	atomic_init(&p->calls, 0);
	atomic_init(&p->off_thread, 0);
	atomic_init(&p->got, 0);
}

static ssize_t probe_work(void *ctx)
{
	struct probe *p = ctx;

	p->thread = pthread_self();
	atomic_store(&p->saw_in_submit, atomic_load(&in_submit));
	if (p->clock != NULL)
		atomic_store(&p->at, atomic_fetch_add(p->clock, 1) + 1);
	atomic_fetch_add(&p->ran, 1);
	return p->result;
}

static void probe_done(iop_job *job, ssize_t result, void *arg)
{
	struct probe *p = arg;

	(void)job;
	if (!on_test_thread())
		atomic_fetch_add(&p->off_thread, 1);
	atomic_store(&p->got, (long)result);
	atomic_fetch_add(&p->calls, 1);
	if (p->ended != NULL)
		atomic_fetch_add(p->ended, 1);
}

/* Submit probe_work(@p) from the test thread, marking the call. */
static iop_job *submit_probe(iop_pool *pool, struct probe *p)
{
	iop_job *job;

	atomic_store(&in_submit, 1);
	job = iop_call(pool, probe_work, p, probe_done, p);
	atomic_store(&in_submit, 0);
	return job;
}

/* Ran once on a worker, called back once on the test thread. */
static void assert_probe_once(struct probe *p)
{
	ck_assert_int_eq(load_int(&p->ran), 1);
	ck_assert_int_eq(load_int(&p->calls), 1);
	ck_assert_int_eq(load_int(&p->off_thread), 0);
	ck_assert_int_eq(load_long(&p->got), p->result);
}

static struct iop_stats stats_of(iop_pool *pool)
{
	struct iop_stats st;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	ck_assert_int_eq(iop_pool_stats(pool, &st), 0);
	return st;
}

/*
 * A pool of one worker and MAXQ queue slots, the worker held by a gate
 * and the queue filled with probes: the next submit finds it full.
 */
struct full {
	iop_pool *pool;
	struct gate gate;
	sem_t entered;
	struct held h;
	struct done_rec hd;
	atomic_int ended;
	struct probe q[MAXQ];
};

static void full_start(struct full *f, int overflow, unsigned timeout_ms)
{
	struct iop_options o = {
		.threads = 1,
		.max_queued = MAXQ,
		.overflow = overflow,
		.overflow_timeout_ms = timeout_ms,
	};
	struct iop_stats st;

	f->pool = iop_pool_new(&o);
	ck_assert_msg(f->pool != NULL, "iop_pool_new: %s", strerror(errno));
	gate_init(&f->gate);
	ck_assert_int_eq(sem_init(&f->entered, 0, 0), 0);
	done_rec_init(&f->hd);
	atomic_init(&f->ended, 0);

	/* The worker is running the held job before the queue fills, so
	 * the held job takes no queue slot. */
	held_init(&f->h, &f->gate, &f->entered, 100);
	ck_assert_ptr_nonnull(iop_call(f->pool, held_work, &f->h, done_record,
				       &f->hd));
	sem_wait_n(&f->entered, 1);
	for (int i = 0; i < MAXQ; i++) {
		probe_init(&f->q[i], &f->ended, i);
		ck_assert_msg(submit_probe(f->pool, &f->q[i]) != NULL,
			      "queued submit %d: %s", i, strerror(errno));
	}
	st = stats_of(f->pool);
	ck_assert_uint_eq(st.queued, MAXQ);
	ck_assert_uint_eq(st.running, 1);
}

/* Open the gate, run every callback due, check each job ended once. */
static void full_finish(struct full *f)
{
	if (f->gate.wfd >= 0)
		gate_open(&f->gate);
	drain_until(f->pool, &f->ended, MAXQ);
	drain_until(f->pool, &f->hd.calls, 1);
	ck_assert_int_eq(load_int(&f->h.ran), 1);
	ck_assert_int_eq(load_long(&f->hd.result), 100);
	ck_assert_int_eq(load_int(&f->hd.off_thread), 0);
	for (int i = 0; i < MAXQ; i++)
		assert_probe_once(&f->q[i]);
	ck_assert_int_eq(iop_poll(f->pool), 0);
	iop_pool_destroy(f->pool);
	/* Destroy ran nothing more. */
	ck_assert_int_eq(load_int(&f->ended), MAXQ);
	ck_assert_int_eq(load_int(&f->hd.calls), 1);
	sem_destroy(&f->entered);
	gate_destroy(&f->gate);
}

/*
 * IOP_OVERFLOW_FAIL: one job running, MAXQ queued; the next submit (a
 * callback job, a future, another op) fails with EAGAIN and never runs
 * or calls back.  Once the queue drains, submits work again.
 */
START_TEST(test_queue_full_eagain)
{
	struct full f;
	struct probe extra, later;
	atomic_int later_ended;
	struct iop_stats st;
	char buf[8];
	iop_job *job;

	full_start(&f, IOP_OVERFLOW_FAIL, 0);
	atomic_init(&later_ended, 0);
	probe_init(&extra, NULL, 55);

	errno = 0;
	job = submit_probe(f.pool, &extra);
	ck_assert_ptr_null(job);
	ck_assert_int_eq(errno, EAGAIN);
	errno = 0;
	ck_assert_ptr_null(iop_call(f.pool, probe_work, &extra, NULL, NULL));
	ck_assert_int_eq(errno, EAGAIN);
	errno = 0;
	ck_assert_ptr_null(iop_read(f.pool, -1, buf, sizeof(buf), 0,
				    probe_done, &extra));
	ck_assert_int_eq(errno, EAGAIN);

	/* Refused submits are not counted and took no slot. */
	st = stats_of(f.pool);
	ck_assert_uint_eq(st.submitted, 1 + MAXQ);
	ck_assert_uint_eq(st.queued, MAXQ);
	ck_assert_int_eq(iop_poll(f.pool), 0);

	/* Drain, then the queue has room again. */
	gate_open(&f.gate);
	drain_until(f.pool, &f.ended, MAXQ);
	probe_init(&later, &later_ended, 66);
	ck_assert_ptr_nonnull(submit_probe(f.pool, &later));
	drain_until(f.pool, &later_ended, 1);
	assert_probe_once(&later);
	full_finish(&f);

	ck_assert_int_eq(load_int(&extra.ran), 0);
	ck_assert_int_eq(load_int(&extra.calls), 0);
}
END_TEST

/*
 * Jobs held in a batch count against the limit: with two queued, a
 * batch may hold two more, and the third held submit fails with EAGAIN.
 * After the batch hands its two over, the queue is full for everyone.
 */
START_TEST(test_queue_full_counts_batch)
{
	struct iop_options o = { .threads = 1, .max_queued = MAXQ };
	struct gate g;
	sem_t entered;
	struct held h;
	struct done_rec hd;
	atomic_int ended;
	struct probe p[MAXQ], refused[2];
	iop_pool *pool;

	pool = iop_pool_new(&o);
	ck_assert_ptr_nonnull(pool);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&hd);
	atomic_init(&ended, 0);
	held_init(&h, &g, &entered, 0);
	ck_assert_ptr_nonnull(iop_call(pool, held_work, &h, done_record, &hd));
	sem_wait_n(&entered, 1);

	for (int i = 0; i < MAXQ; i++)
		probe_init(&p[i], &ended, i);
	for (int i = 0; i < 2; i++)
		probe_init(&refused[i], &ended, -1);
	ck_assert_ptr_nonnull(submit_probe(pool, &p[0]));
	ck_assert_ptr_nonnull(submit_probe(pool, &p[1]));
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_ptr_nonnull(submit_probe(pool, &p[2]));
	ck_assert_ptr_nonnull(submit_probe(pool, &p[3]));
	errno = 0;
	ck_assert_ptr_null(submit_probe(pool, &refused[0]));
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(iop_batch_end(pool), 2);
	errno = 0;
	ck_assert_ptr_null(submit_probe(pool, &refused[1]));
	ck_assert_int_eq(errno, EAGAIN);

	gate_open(&g);
	drain_until(pool, &ended, MAXQ);
	drain_until(pool, &hd.calls, 1);
	for (int i = 0; i < MAXQ; i++)
		assert_probe_once(&p[i]);
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(load_int(&refused[i].ran), 0);
		ck_assert_int_eq(load_int(&refused[i].calls), 0);
	}
	sem_destroy(&entered);
	gate_destroy(&g);
}
END_TEST

/* A thread whose submit may block (IOP_OVERFLOW_BLOCK). */
struct blocker {
	iop_pool *pool;
	struct probe *p;
	sem_t started;
	pid_t tid;		/* written before started is posted */
	atomic_int returned;
	iop_job *job;		/* read after the join */
	int err;
	pthread_t thread;
};

static void *blocker_main(void *arg)
{
	struct blocker *b = arg;

	b->tid = gettid_compat();
	sem_post(&b->started);
	errno = 0;
	b->job = iop_call(b->pool, probe_work, b->p, probe_done, b->p);
	b->err = errno;
	atomic_store(&b->returned, 1);
	return NULL;
}

static void blocker_start(struct blocker *b, iop_pool *pool, struct probe *p)
{
	b->pool = pool;
	b->p = p;
	b->job = NULL;
	b->err = 0;
	atomic_init(&b->returned, 0);
	ck_assert_int_eq(sem_init(&b->started, 0, 0), 0);
	ck_assert_int_eq(pthread_create(&b->thread, NULL, blocker_main, b), 0);
	sem_wait_n(&b->started, 1);
}

static void blocker_join(struct blocker *b)
{
	ck_assert_int_eq(pthread_join(b->thread, NULL), 0);
	sem_destroy(&b->started);
}

/*
 * IOP_OVERFLOW_BLOCK: a helper thread's submit into the full queue does
 * not return while the gate holds the worker (seen asleep, best effort,
 * and not returned); once the worker starts the first queued job, which
 * is itself held by a second gate, the submit returns its job while that
 * job is still running.
 */
START_TEST(test_queue_full_blocks_until_room)
{
	struct iop_options o = {
		.threads = 1,
		.max_queued = MAXQ,
		.overflow = IOP_OVERFLOW_BLOCK,
	};
	struct gate g1, g2;
	sem_t entered;
	struct held h0, q0;
	struct done_rec hd;
	atomic_int ended;
	struct probe q[MAXQ - 1], late;
	struct blocker b;
	struct iop_stats st;
	iop_job *q0_job;
	iop_pool *pool;
	bool asleep;

	pool = iop_pool_new(&o);
	ck_assert_ptr_nonnull(pool);
	gate_init(&g1);
	gate_init(&g2);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&hd);
	atomic_init(&ended, 0);

	held_init(&h0, &g1, &entered, 1);
	ck_assert_ptr_nonnull(iop_call(pool, held_work, &h0, done_record,
				       &hd));
	sem_wait_n(&entered, 1);
	/* The queue: q0 (held by g2 once it runs), then three probes. */
	held_init(&q0, &g2, &entered, 2);
	q0_job = iop_call(pool, held_work, &q0, done_record, &hd);
	ck_assert_ptr_nonnull(q0_job);
	for (int i = 0; i < MAXQ - 1; i++) {
		probe_init(&q[i], &ended, 10 + i);
		ck_assert_ptr_nonnull(submit_probe(pool, &q[i]));
	}
	probe_init(&late, &ended, 20);

	blocker_start(&b, pool, &late);
	asleep = thread_seen_asleep(b.tid, 2000);
	ck_assert_msg(load_int(&b.returned) == 0,
		      "a submit into the full queue returned (job %p, %s)"
		      " (seen asleep first: %d)", (void *)b.job,
		      strerror(b.err), asleep);
	st = stats_of(pool);
	ck_assert_uint_eq(st.queued, MAXQ);
	ck_assert_int_eq(iop_poll(pool), 0);
	ck_assert_int_eq(load_int(&b.returned), 0);

	/* h0 ends, the worker starts q0: one slot frees up. */
	gate_open(&g1);
	blocker_join(&b);
	ck_assert_msg(b.job != NULL, "blocked submit failed: %s",
		      strerror(b.err));
	sem_wait_n(&entered, 1);
	/* q0 is still held: the submit did not wait for it to end. */
	ck_assert_int_eq(load_int(&q0.ran), 0);
	ck_assert_int_eq(iop_job_state(q0_job), IOP_RUNNING);
	st = stats_of(pool);
	ck_assert_uint_eq(st.queued, MAXQ);
	ck_assert_uint_eq(st.running, 1);

	gate_open(&g2);
	drain_until(pool, &ended, MAXQ);
	drain_until(pool, &hd.calls, 2);
	for (int i = 0; i < MAXQ - 1; i++)
		assert_probe_once(&q[i]);
	assert_probe_once(&late);
	ck_assert_int_eq(load_int(&h0.ran), 1);
	ck_assert_int_eq(load_int(&q0.ran), 1);
	ck_assert_int_eq(load_int(&hd.off_thread), 0);
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	sem_destroy(&entered);
	gate_destroy(&g1);
	gate_destroy(&g2);
}
END_TEST

/*
 * IOP_OVERFLOW_BLOCK with overflow_timeout_ms 50: while the queue stays
 * full, the submit fails with EAGAIN after at least 50 ms (and long
 * before forever); the refused job never runs or calls back.
 */
START_TEST(test_queue_full_block_times_out)
{
	struct full f;
	struct probe extra;
	int64_t t0, elapsed;
	iop_job *job;
	int err;

	full_start(&f, IOP_OVERFLOW_BLOCK, 50);
	probe_init(&extra, NULL, 77);
	t0 = now_ns();
	errno = 0;
	job = submit_probe(f.pool, &extra);
	err = errno;
	elapsed = now_ns() - t0;
	ck_assert_ptr_null(job);
	ck_assert_int_eq(err, EAGAIN);
	ck_assert_msg(elapsed >= 50 * 1000000LL,
		      "gave up after %lld ns, before the 50 ms timeout",
		      (long long)elapsed);
	ck_assert_msg(elapsed < (int64_t)TEST_WAIT_MS * 1000000,
		      "waited %lld ns for a 50 ms timeout",
		      (long long)elapsed);
	ck_assert_int_eq(iop_poll(f.pool), 0);
	ck_assert_uint_eq(stats_of(f.pool).queued, MAXQ);
	full_finish(&f);
	ck_assert_int_eq(load_int(&extra.ran), 0);
	ck_assert_int_eq(load_int(&extra.calls), 0);
}
END_TEST

/*
 * IOP_OVERFLOW_INLINE: the job that finds the queue full runs on the
 * submitting thread inside the submit call, while the worker is still
 * held; its callback waits for the next iop_poll().  A future that
 * overflows has its result at once.  Inline jobs count in the stats.
 */
START_TEST(test_queue_full_runs_inline)
{
	struct full f;
	struct probe extra, fut;
	struct iop_stats st;
	iop_job *job;

	full_start(&f, IOP_OVERFLOW_INLINE, 0);
	probe_init(&extra, NULL, 88);
	probe_init(&fut, NULL, 99);

	job = submit_probe(f.pool, &extra);
	ck_assert_msg(job != NULL, "inline submit: %s", strerror(errno));
	ck_assert_int_eq(load_int(&extra.ran), 1);
	ck_assert_int_eq(load_int(&extra.saw_in_submit), 1);
	ck_assert(pthread_equal(extra.thread, test_thread()));
	/* Never inside the submit call: the callback is still due. */
	ck_assert_int_eq(load_int(&extra.calls), 0);
	ck_assert_int_eq(iop_job_state(job), IOP_DONE);
	ck_assert_int_eq(fd_readable(iop_pool_fd(f.pool), TEST_WAIT_MS), 1);
	for (int i = 0; i < MAXQ; i++)
		ck_assert_int_eq(load_int(&f.q[i].ran), 0);

	st = stats_of(f.pool);
	ck_assert_uint_eq(st.queued, MAXQ);
	ck_assert_uint_eq(st.submitted, 1 + MAXQ + 1);
	ck_assert_uint_eq(st.completed, 1);

	ck_assert_int_eq(iop_poll(f.pool), 1);
	ck_assert_int_eq(load_int(&extra.calls), 1);
	ck_assert_int_eq(load_int(&extra.off_thread), 0);
	ck_assert_int_eq(load_long(&extra.got), 88);

	/* A future that overflows ends inside its submit as well. */
	atomic_store(&in_submit, 1);
	job = iop_call(f.pool, probe_work, &fut, NULL, NULL);
	atomic_store(&in_submit, 0);
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(load_int(&fut.ran), 1);
	ck_assert_int_eq(load_int(&fut.saw_in_submit), 1);
	ck_assert_int_eq(iop_job_state(job), IOP_DONE);
	ck_assert_int_eq(iop_await(job), 99);

	full_finish(&f);
	ck_assert_int_eq(load_int(&extra.ran), 1);
	ck_assert_int_eq(load_int(&extra.calls), 1);
}
END_TEST

/* A callback that submits f->q[0] (an inline pool runs it at poll end). */
struct resubmit {
	iop_pool *pool;
	struct probe *next;
	iop_job *job;
	atomic_int calls;
};

static void resubmit_done(iop_job *job, ssize_t result, void *arg)
{
	struct resubmit *r = arg;

	(void)job;
	(void)result;
	r->job = iop_call(r->pool, probe_work, r->next, probe_done, r->next);
	/* Not inside this callback: when the callback batch ends. */
	if (load_int(&r->next->ran) != 0)
		atomic_fetch_add(&r->calls, 100);
	atomic_fetch_add(&r->calls, 1);
}

/*
 * IOP_POOL_INLINE: no thread at all.  Each job runs on the test thread
 * inside its submit call; callbacks come only from iop_poll()/iop_wait()
 * on that thread; a future has its result at once; an op works; a batch
 * of linked jobs runs at iop_batch_end() in chain order (and a failure
 * ends the rest with -ECANCELED); a callback's submit runs when the
 * callback batch ends.
 */
START_TEST(test_inline_mode_callbacks_from_poll)
{
	enum { N = 3, CHAIN = 3 };
	struct iop_options o = { .flags = IOP_POOL_INLINE };
	atomic_int ended, clock;
	struct probe p[N], c[CHAIN], bad[CHAIN], after;
	struct resubmit rs;
	struct iop_stats st;
	unsigned char buf[4096];
	struct done_rec rd;
	iop_job *job, *cj[CHAIN];
	iop_pool *pool;
	int fd;

	pool = iop_pool_new(&o);
	ck_assert_msg(pool != NULL, "iop_pool_new(INLINE): %s",
		      strerror(errno));
	atomic_init(&ended, 0);
	atomic_init(&clock, 0);

	for (int i = 0; i < N; i++) {
		probe_init(&p[i], &ended, i);
		ck_assert_ptr_nonnull(submit_probe(pool, &p[i]));
		ck_assert_int_eq(load_int(&p[i].ran), 1);
		ck_assert_int_eq(load_int(&p[i].saw_in_submit), 1);
		ck_assert(pthread_equal(p[i].thread, test_thread()));
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(load_int(&p[i].calls), 0);
	ck_assert_int_eq(fd_readable(iop_pool_fd(pool), 0), 1);
	ck_assert_int_eq(iop_poll(pool), N);
	for (int i = 0; i < N; i++)
		assert_probe_once(&p[i]);
	ck_assert_int_eq(iop_wait(pool, 0), 0);

	/* A future: done when the submit returns. */
	job = iop_call(pool, work_return_ctx, (void *)(intptr_t)42, NULL,
		       NULL);
	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_job_state(job), IOP_DONE);
	ck_assert_int_eq(iop_await(job), 42);

	/* An op, with its callback from iop_wait(). */
	fd = make_pattern_file(sizeof(buf), 7);
	done_rec_init(&rd);
	memset(buf, 0, sizeof(buf));
	ck_assert_ptr_nonnull(iop_read(pool, fd, buf, sizeof(buf), 0,
				       done_record, &rd));
	ck_assert_int_eq(load_int(&rd.calls), 0);
	drain_until(pool, &rd.calls, 1);
	ck_assert_int_eq(load_long(&rd.result), (long)sizeof(buf));
	ck_assert_int_eq(load_int(&rd.off_thread), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i] != pattern_byte(7, i))
			ck_abort_msg("byte %zu differs", i);
	close(fd);

	/* A chain in a batch: held until the end, then run in order. */
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < CHAIN; i++) {
		probe_init(&c[i], &ended, 30 + i);
		c[i].clock = &clock;
		cj[i] = submit_probe(pool, &c[i]);
		ck_assert_ptr_nonnull(cj[i]);
	}
	ck_assert_int_eq(iop_link(cj[0], cj[1]), 0);
	ck_assert_int_eq(iop_link(cj[1], cj[2]), 0);
	for (int i = 0; i < CHAIN; i++)
		ck_assert_int_eq(load_int(&c[i].ran), 0);
	ck_assert_int_eq(iop_batch_end(pool), CHAIN);
	for (int i = 0; i < CHAIN; i++) {
		ck_assert_int_eq(load_int(&c[i].ran), 1);
		ck_assert_int_eq(load_int(&c[i].at), i + 1);
		ck_assert(pthread_equal(c[i].thread, test_thread()));
		ck_assert_int_eq(load_int(&c[i].calls), 0);
	}
	drain_until(pool, &ended, N + CHAIN);
	for (int i = 0; i < CHAIN; i++)
		assert_probe_once(&c[i]);

	/* A chain whose first job fails: the rest never run. */
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < CHAIN; i++) {
		probe_init(&bad[i], &ended, i == 0 ? -EIO : 40 + i);
		cj[i] = submit_probe(pool, &bad[i]);
		ck_assert_ptr_nonnull(cj[i]);
	}
	ck_assert_int_eq(iop_link(cj[0], cj[1]), 0);
	ck_assert_int_eq(iop_link(cj[1], cj[2]), 0);
	ck_assert_int_eq(iop_batch_end(pool), CHAIN);
	drain_until(pool, &ended, N + 2 * CHAIN);
	assert_probe_once(&bad[0]);
	for (int i = 1; i < CHAIN; i++) {
		ck_assert_int_eq(load_int(&bad[i].ran), 0);
		ck_assert_int_eq(load_int(&bad[i].calls), 1);
		ck_assert_int_eq(load_long(&bad[i].got), -ECANCELED);
	}

	/* A callback's submit runs once the callback batch has ended. */
	probe_init(&after, &ended, 50);
	rs.pool = pool;
	rs.next = &after;
	rs.job = NULL;
	atomic_init(&rs.calls, 0);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, NULL,
				       resubmit_done, &rs));
	drain_until(pool, &rs.calls, 1);
	ck_assert_ptr_nonnull(rs.job);
	ck_assert_int_eq(load_int(&after.ran), 1);
	ck_assert(pthread_equal(after.thread, test_thread()));
	drain_until(pool, &ended, N + 2 * CHAIN + 1);
	assert_probe_once(&after);
	ck_assert_int_eq(load_int(&rs.calls), 1);

	st = stats_of(pool);
	ck_assert_uint_eq(st.threads, 0);
	ck_assert_uint_eq(st.threads_started, 0);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.running, 0);
	/* N probes, the future, the read, two chains, the resubmitter and
	 * what it submitted. */
	ck_assert_uint_eq(st.submitted, N + 1 + 1 + 2 * CHAIN + 2);
	ck_assert_uint_eq(st.completed, N + 1 + 1 + CHAIN + 2);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.cancelled, CHAIN - 1);
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
}
END_TEST

static void assert_new_einval(const struct iop_options *o, const char *what)
{
	iop_pool *pool;

	errno = 0;
	pool = iop_pool_new(o);
	if (pool != NULL)
		iop_pool_destroy(pool);
	ck_assert_msg(pool == NULL, "iop_pool_new accepted %s", what);
	ck_assert_msg(errno == EINVAL, "%s: errno %d (%s), not EINVAL", what,
		      errno, strerror(errno));
}

/* Unknown overflow policies and IOP_POOL_INLINE with threads. */
START_TEST(test_options_einval)
{
	struct iop_options o;
	iop_pool *pool;

	o = (struct iop_options){ .max_queued = 4, .overflow = 3 };
	assert_new_einval(&o, "overflow 3");
	o = (struct iop_options){ .max_queued = 4, .overflow = -1 };
	assert_new_einval(&o, "overflow -1");
	o = (struct iop_options){ .overflow = 1000 };
	assert_new_einval(&o, "overflow 1000 without max_queued");
	o = (struct iop_options){ .flags = IOP_POOL_INLINE, .threads = 1 };
	assert_new_einval(&o, "IOP_POOL_INLINE with threads 1");
	o = (struct iop_options){ .flags = IOP_POOL_INLINE, .min_threads = 1 };
	assert_new_einval(&o, "IOP_POOL_INLINE with min_threads 1");
	o = (struct iop_options){ .flags = IOP_POOL_INLINE, .threads = 4,
				  .min_threads = 2 };
	assert_new_einval(&o, "IOP_POOL_INLINE with threads 4, min 2");
	o = (struct iop_options){ .flags = 1u << 30 };
	assert_new_einval(&o, "flag 1 << 30");

	/* The valid neighbours. */
	o = (struct iop_options){ .max_queued = 4,
				  .overflow = IOP_OVERFLOW_BLOCK,
				  .overflow_timeout_ms = 10 };
	pool = iop_pool_new(&o);
	ck_assert_ptr_nonnull(pool);
	iop_pool_destroy(pool);
	o = (struct iop_options){ .max_queued = 1,
				  .overflow = IOP_OVERFLOW_INLINE };
	pool = iop_pool_new(&o);
	ck_assert_ptr_nonnull(pool);
	iop_pool_destroy(pool);
	o = (struct iop_options){ .flags = IOP_POOL_INLINE |
					   IOP_POOL_NO_TIMING };
	pool = iop_pool_new(&o);
	ck_assert_ptr_nonnull(pool);
	iop_pool_destroy(pool);
}
END_TEST

static Suite *overflow_suite(void)
{
	Suite *s = suite_create("overflow");
	TCase *tc;

	tc = tcase_new("full");
	tcase_add_test(tc, test_queue_full_eagain);
	tcase_add_test(tc, test_queue_full_counts_batch);
	tcase_add_test(tc, test_queue_full_blocks_until_room);
	tcase_add_test(tc, test_queue_full_block_times_out);
	tcase_add_test(tc, test_queue_full_runs_inline);
	suite_add_tcase(s, tc);

	tc = tcase_new("inline");
	tcase_add_test(tc, test_inline_mode_callbacks_from_poll);
	suite_add_tcase(s, tc);

	tc = tcase_new("options");
	tcase_add_test(tc, test_options_einval);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(overflow_suite());
}
