/*
 * Suite "fork": a pool belongs to the process that created it.  In a
 * child forked while the pool has running and queued jobs, nothing of
 * the parent's runs (each job runs exactly once, in the parent), every
 * call refuses with EOWNERDEAD, and destroy returns at once; the parent
 * goes on as if nothing happened.  Forks while other threads hammer the
 * pool's lock never leave the child deadlocked, with or without idle
 * min_threads workers.
 *
 * Every test case is tagged "fork": ThreadSanitizer kills a forked child
 * that starts threads, so TSan runs set CK_EXCLUDE_TAGS=fork.
 *
 * The child never calls ck_assert: it records what it saw in a shared
 * anonymous mapping and exits with the number of surprises, and the
 * parent asserts on both.  The parent waits for the child with a
 * deadline (the child's end closes a pipe), so a hung child fails the
 * test instead of the whole run.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

/* How long a child may take before the parent calls it hung. */
#define CHILD_WAIT_MS 10000

/* ---- Running a child with a deadline. ---- */

/*
 * Fork; the child runs @fn(@arg) and _exit()s with its return value.
 * The returned pid is the parent's; *@rfd is a pipe whose only write end
 * the child holds, so it reports end of file once the child is gone.
 */
static pid_t fork_child(int (*fn)(void *), void *arg, int *rfd)
{
	int fds[2];
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		_exit(fn(arg) & 0x7f);
	}
	close(fds[1]);
	*rfd = fds[0];
	return pid;
}

/*
 * Wait up to @ms for the child to end.  Returns its exit status, or -1
 * if it hung (it is then killed and reaped), or -2 if it died of a
 * signal (*@sig says which).
 */
static int child_wait(pid_t pid, int rfd, int ms, int *sig)
{
	struct pollfd p = { .fd = rfd, .events = POLLIN };
	int64_t end = now_ns() + (int64_t)ms * 1000000;
	int r, st;

	*sig = 0;
	for (;;) {
		int left = (int)((end - now_ns()) / 1000000);

		if (left < 0)
			left = 0;
		r = poll(&p, 1, left);
		if (r != 0 && !(r < 0 && errno == EINTR))
			break;
		if (r == 0 && left == 0)
			break;
	}
	close(rfd);
	if (r == 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		return -1;
	}
	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	ck_assert_int_eq(r, pid);
	if (WIFSIGNALED(st)) {
		*sig = WTERMSIG(st);
		return -2;
	}
	return WEXITSTATUS(st);
}

/* Assert that the child ended by itself with status 0. */
static void assert_child_ok(int status, int sig, int step)
{
	ck_assert_msg(status != -1, "the child hung (last step begun: %d)",
		      step);
	ck_assert_msg(status != -2, "the child died of signal %d (step %d)",
		      sig, step);
	ck_assert_msg(status == 0, "the child saw %d surprises", status);
}

/* ---- Memory parent and child share. ---- */

enum { HELD = 2, QUEUED = 6 };
/* Job numbers: the quick job, the held ones, the queued, the future. */
enum { QUICK = 0, FIRST_HELD = 1, FIRST_QUEUED = FIRST_HELD + HELD,
       FUTURE = FIRST_QUEUED + QUEUED, NJOBS = FUTURE + 1 };

/* What the child saw, for the parent's asserts. */
struct report {
	atomic_int step;	/* the child call begun last */
	int call_null, call_err;
	int future_null, future_err;
	int read_null, read_err;
	int poll_ret, wait0_ret, wait_ret, budget_ret;
	int batch_ret;
	int await_ret, await_to_ret;
	int cancel_queued_ret, cancel_running_ret, poll_after_cancel;
	int callbacks;		/* callbacks run in the child (its count) */
};

struct shared {
	pid_t parent;
	atomic_int runs[NJOBS];		/* times each job's work ran */
	atomic_long total_runs;		/* all work of the stress test */
	atomic_int child_runs;		/* work that ran in a child */
	atomic_int child_callbacks;	/* callbacks that ran in a child */
	struct report rep;
};

static struct shared *shared_new(void)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_msg(sh != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(sh, 0, sizeof(*sh));
	sh->parent = getpid();
	for (int i = 0; i < NJOBS; i++)
		atomic_init(&sh->runs[i], 0);
	atomic_init(&sh->total_runs, 0);
	atomic_init(&sh->child_runs, 0);
	atomic_init(&sh->child_callbacks, 0);
	atomic_init(&sh->rep.step, 0);
	return sh;
}

static void shared_free(struct shared *sh)
{
	munmap(sh, sizeof(*sh));
}

static void count_if_child(struct shared *sh, atomic_int *c)
{
	if (getpid() != sh->parent)
		atomic_fetch_add(c, 1);
}

/*
 * One job of a scene: it may post @entered and wait on @gate, then it
 * counts its run in the shared mapping (and whether that was in a child)
 * and returns its number.
 */
struct fjob {
	struct shared *sh;
	int idx;
	struct gate *gate;
	sem_t *entered;
	atomic_int *ended;
	atomic_int calls;	/* the parent's callbacks */
	atomic_long got;
};

static ssize_t fjob_work(void *ctx)
{
	struct fjob *j = ctx;

	if (j->entered != NULL)
		sem_post(j->entered);
	if (j->gate != NULL)
		gate_wait(j->gate);
	atomic_fetch_add(&j->sh->runs[j->idx], 1);
	count_if_child(j->sh, &j->sh->child_runs);
	return j->idx;
}

static void fjob_done(iop_job *job, ssize_t result, void *arg)
{
	struct fjob *j = arg;

	(void)job;
	count_if_child(j->sh, &j->sh->child_callbacks);
	atomic_store(&j->got, (long)result);
	atomic_fetch_add(&j->calls, 1);
	atomic_fetch_add(j->ended, 1);
}

/*
 * The parent's pool at the fork: two workers, one job finished with its
 * callback due (the descriptor readable), two running (held by the
 * gate), six callback jobs and a future queued behind them.
 */
struct scene {
	struct shared *sh;
	iop_pool *pool;
	struct gate gate;
	sem_t entered;
	atomic_int ended;
	struct fjob j[NJOBS];
	iop_job *handle[NJOBS];
};

static void scene_start(struct scene *sc)
{
	sc->sh = shared_new();
	sc->pool = pool_new(HELD);
	gate_init(&sc->gate);
	ck_assert_int_eq(sem_init(&sc->entered, 0, 0), 0);
	atomic_init(&sc->ended, 0);
	for (int i = 0; i < NJOBS; i++) {
		struct fjob *j = &sc->j[i];

		j->sh = sc->sh;
		j->idx = i;
		j->gate = i >= FIRST_HELD && i < FIRST_QUEUED ? &sc->gate
							      : NULL;
		j->entered = j->gate != NULL ? &sc->entered : NULL;
		j->ended = &sc->ended;
		atomic_init(&j->calls, 0);
		atomic_init(&j->got, -1);
	}

	/* The quick job ends; its callback waits for a poll. */
	sc->handle[QUICK] = iop_call(sc->pool, fjob_work, &sc->j[QUICK],
				     fjob_done, &sc->j[QUICK]);
	ck_assert_ptr_nonnull(sc->handle[QUICK]);
	ck_assert_int_eq(fd_readable(iop_pool_fd(sc->pool), TEST_WAIT_MS),
			 1);
	for (int i = FIRST_HELD; i < FIRST_QUEUED; i++) {
		sc->handle[i] = iop_call(sc->pool, fjob_work, &sc->j[i],
					 fjob_done, &sc->j[i]);
		ck_assert_ptr_nonnull(sc->handle[i]);
	}
	sem_wait_n(&sc->entered, HELD);
	for (int i = FIRST_QUEUED; i < FUTURE; i++) {
		sc->handle[i] = iop_call(sc->pool, fjob_work, &sc->j[i],
					 fjob_done, &sc->j[i]);
		ck_assert_ptr_nonnull(sc->handle[i]);
	}
	sc->handle[FUTURE] = iop_call(sc->pool, fjob_work, &sc->j[FUTURE],
				      NULL, NULL);
	ck_assert_ptr_nonnull(sc->handle[FUTURE]);
}

/* Let the held jobs go; every job runs once, in the parent. */
static void scene_finish(struct scene *sc)
{
	gate_open(&sc->gate);
	ck_assert_int_eq(iop_await(sc->handle[FUTURE]), FUTURE);
	drain_until(sc->pool, &sc->ended, FUTURE);
	for (int i = 0; i < FUTURE; i++) {
		ck_assert_int_eq(load_int(&sc->j[i].calls), 1);
		ck_assert_int_eq(load_long(&sc->j[i].got), i);
	}
	for (int i = 0; i < NJOBS; i++)
		ck_assert_msg(load_int(&sc->sh->runs[i]) == 1,
			      "job %d ran %d times", i,
			      load_int(&sc->sh->runs[i]));
	ck_assert_int_eq(load_int(&sc->sh->child_runs), 0);
	ck_assert_int_eq(load_int(&sc->sh->child_callbacks), 0);
	ck_assert_int_eq(iop_poll(sc->pool), 0);
	iop_pool_destroy(sc->pool);
	ck_assert_int_eq(load_int(&sc->ended), FUTURE);
	sem_destroy(&sc->entered);
	gate_destroy(&sc->gate);
	shared_free(sc->sh);
}

static int callbacks_seen(struct scene *sc)
{
	int n = 0;

	for (int i = 0; i < NJOBS; i++)
		n += atomic_load(&sc->j[i].calls);
	return n;
}

/*
 * In the child: try everything on the parent's pool, record what each
 * call said, destroy the copy.  Returns the number of surprises.
 */
static int child_probe(void *arg)
{
	struct scene *sc = arg;
	struct report *r = &sc->sh->rep;
	iop_pool *pool = sc->pool;
	struct fjob extra;
	atomic_int extra_ended;
	char buf[16];
	ssize_t res;
	iop_job *job;
	int bad = 0;

	/* The parent opens the gate by closing its write end: ours must
	 * not keep the held workers waiting. */
	close(sc->gate.wfd);
	memset(&extra, 0, sizeof(extra));
	extra.sh = sc->sh;
	extra.idx = QUICK;
	extra.ended = &extra_ended;
	atomic_init(&extra.calls, 0);
	atomic_init(&extra_ended, 0);

	atomic_store(&r->step, 1);
	errno = 0;
	job = iop_call(pool, fjob_work, &extra, fjob_done, &extra);
	r->call_null = job == NULL;
	r->call_err = errno;
	bad += !(job == NULL && errno == EOWNERDEAD);

	atomic_store(&r->step, 2);
	errno = 0;
	job = iop_call(pool, fjob_work, &extra, NULL, NULL);
	r->future_null = job == NULL;
	r->future_err = errno;
	bad += !(job == NULL && errno == EOWNERDEAD);

	atomic_store(&r->step, 3);
	errno = 0;
	job = iop_read(pool, -1, buf, sizeof(buf), 0, fjob_done, &extra);
	r->read_null = job == NULL;
	r->read_err = errno;
	bad += !(job == NULL && errno == EOWNERDEAD);

	atomic_store(&r->step, 4);
	r->poll_ret = iop_poll(pool);
	bad += r->poll_ret != -EOWNERDEAD;
	atomic_store(&r->step, 5);
	r->wait0_ret = iop_wait(pool, 0);
	bad += r->wait0_ret != -EOWNERDEAD;
	atomic_store(&r->step, 6);
	r->wait_ret = iop_wait(pool, -1);
	bad += r->wait_ret != -EOWNERDEAD;
	atomic_store(&r->step, 7);
	r->budget_ret = iop_poll_budget(pool, 1, 0);
	bad += r->budget_ret != -EOWNERDEAD;

	atomic_store(&r->step, 8);
	r->batch_ret = iop_batch_begin(pool);
	bad += r->batch_ret != -EOWNERDEAD;
	if (r->batch_ret == 0)
		iop_batch_end(pool);

	atomic_store(&r->step, 9);
	r->await_ret = (int)iop_await(sc->handle[FUTURE]);
	bad += r->await_ret != -EOWNERDEAD;
	atomic_store(&r->step, 10);
	res = 0;
	r->await_to_ret = iop_await_timeout(sc->handle[FUTURE], -1, &res);
	bad += r->await_to_ret != -EOWNERDEAD;

	/* Not named by the fork paragraph, and taking the pool lock: any
	 * answer, as long as one comes and no callback runs here. */
	atomic_store(&r->step, 11);
	r->cancel_queued_ret = iop_cancel(sc->handle[FIRST_QUEUED]);
	r->cancel_running_ret = iop_cancel(sc->handle[FIRST_HELD]);
	r->poll_after_cancel = iop_poll(pool);
	bad += r->poll_after_cancel != -EOWNERDEAD;

	atomic_store(&r->step, 12);
	iop_pool_destroy(pool);

	atomic_store(&r->step, 13);
	r->callbacks = callbacks_seen(sc) + load_int(&extra.calls);
	bad += r->callbacks != 0;
	return bad;
}

/*
 * The child of a pool with a finished, two running and seven queued jobs
 * runs none of them and gets EOWNERDEAD from every call; destroy returns.
 * In the parent each job then runs exactly once.
 */
START_TEST(test_fork_child_never_runs_parent_jobs)
{
	struct scene sc;
	struct report *r;
	int rfd, status, sig;
	pid_t pid;

	scene_start(&sc);
	r = &sc.sh->rep;
	pid = fork_child(child_probe, &sc, &rfd);
	status = child_wait(pid, rfd, CHILD_WAIT_MS, &sig);
	ck_assert_msg(status != -1, "the child hung (last step begun: %d)",
		      load_int(&r->step));
	ck_assert_msg(status != -2, "the child died of signal %d (step %d)",
		      sig, load_int(&r->step));
	ck_assert_int_eq(load_int(&r->step), 13);

	ck_assert_int_eq(r->call_null, 1);
	ck_assert_int_eq(r->call_err, EOWNERDEAD);
	ck_assert_int_eq(r->future_null, 1);
	ck_assert_int_eq(r->future_err, EOWNERDEAD);
	ck_assert_int_eq(r->read_null, 1);
	ck_assert_int_eq(r->read_err, EOWNERDEAD);
	ck_assert_int_eq(r->poll_ret, -EOWNERDEAD);
	ck_assert_int_eq(r->wait0_ret, -EOWNERDEAD);
	ck_assert_int_eq(r->wait_ret, -EOWNERDEAD);
	ck_assert_int_eq(r->budget_ret, -EOWNERDEAD);
	ck_assert_int_eq(r->batch_ret, -EOWNERDEAD);
	ck_assert_int_eq(r->await_ret, -EOWNERDEAD);
	ck_assert_int_eq(r->await_to_ret, -EOWNERDEAD);
	ck_assert_int_eq(r->poll_after_cancel, -EOWNERDEAD);
	ck_assert_int_eq(r->callbacks, 0);
	ck_assert_int_eq(status, 0);

	/* Nothing ran in the child, nor anything held or queued here. */
	ck_assert_int_eq(load_int(&sc.sh->child_runs), 0);
	ck_assert_int_eq(load_int(&sc.sh->child_callbacks), 0);
	ck_assert_int_eq(load_int(&sc.sh->runs[QUICK]), 1);
	for (int i = FIRST_HELD; i < NJOBS; i++)
		ck_assert_int_eq(load_int(&sc.sh->runs[i]), 0);
	scene_finish(&sc);
}
END_TEST

/*
 * The same fork, seen from the parent: the completion waiting at the
 * fork is still there (the child did not drain the shared descriptor),
 * the held and queued jobs are where they were and finish once the gate
 * opens, and new submits run with their callbacks exactly once.
 */
START_TEST(test_fork_parent_unaffected)
{
	enum { MORE = 200 };
	struct scene sc;
	struct iop_stats st;
	struct fjob *more;
	atomic_int more_ended;
	int rfd, status, sig;
	pid_t pid;

	scene_start(&sc);
	pid = fork_child(child_probe, &sc, &rfd);
	status = child_wait(pid, rfd, CHILD_WAIT_MS, &sig);
	assert_child_ok(status, sig, load_int(&sc.sh->rep.step));

	ck_assert_int_eq(fd_readable(iop_pool_fd(sc.pool), 0), 1);
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	ck_assert_int_eq(iop_pool_stats(sc.pool, &st), 0);
	ck_assert_uint_eq(st.threads, HELD);
	ck_assert_uint_eq(st.running, HELD);
	ck_assert_uint_eq(st.queued, QUEUED + 1);
	ck_assert_uint_eq(st.submitted, NJOBS);
	for (int i = FIRST_HELD; i < FIRST_QUEUED; i++)
		ck_assert_int_eq(iop_job_state(sc.handle[i]), IOP_RUNNING);
	for (int i = FIRST_QUEUED; i < NJOBS; i++)
		ck_assert_int_eq(iop_job_state(sc.handle[i]), IOP_QUEUED);

	/* The quick job's callback, due since before the fork. */
	ck_assert_int_eq(iop_poll(sc.pool), 1);
	ck_assert_int_eq(load_int(&sc.j[QUICK].calls), 1);
	ck_assert_int_eq(iop_poll(sc.pool), 0);

	/* New submits work while the old jobs are still held. */
	more = calloc(MORE, sizeof(*more));
	ck_assert_ptr_nonnull(more);
	atomic_init(&more_ended, 0);
	for (int i = 0; i < MORE; i++) {
		more[i].sh = sc.sh;
		more[i].idx = QUICK;	/* runs[] is for the scene's jobs */
		more[i].ended = &more_ended;
		atomic_init(&more[i].calls, 0);
		atomic_init(&more[i].got, -1);
	}
	for (int i = 0; i < MORE; i++)
		ck_assert_ptr_nonnull(iop_call(sc.pool, fjob_work, &more[i],
					       fjob_done, &more[i]));
	gate_open(&sc.gate);
	drain_until(sc.pool, &more_ended, MORE);
	for (int i = 0; i < MORE; i++)
		ck_assert_int_eq(load_int(&more[i].calls), 1);
	free(more);
	/* scene_finish counts each scene job once: take the new ones off. */
	ck_assert_int_eq(atomic_fetch_sub(&sc.sh->runs[QUICK], MORE),
			 1 + MORE);
	scene_finish(&sc);
}
END_TEST

/* ---- Forks while another thread hammers the pool. ---- */

/*
 * Make @n workers run a held job at once, then let them go idle, so that
 * every worker has finished starting before the test forks.  A thread
 * still starting may hold a lock of AddressSanitizer's allocator, which
 * is not fork-safe: the child would hang creating threads of its own
 * (seen, with both new threads stuck in AsanThread::Init's calloc).
 */
static void warm_workers(iop_pool *pool, int n)
{
	struct gate g;
	sem_t entered;
	struct held *h = calloc((size_t)n, sizeof(*h));
	struct done_rec d;

	ck_assert_ptr_nonnull(h);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	done_rec_init(&d);
	for (int i = 0; i < n; i++) {
		held_init(&h[i], &g, &entered, 0);
		ck_assert_ptr_nonnull(iop_call(pool, held_work, &h[i],
					       done_record, &d));
	}
	sem_wait_n(&entered, n);
	gate_open(&g);
	drain_until(pool, &d.calls, n);
	sem_destroy(&entered);
	gate_destroy(&g);
	free(h);
}

/* A thread that submits tiny jobs and polls their callbacks, nonstop. */
struct hammer {
	iop_pool *pool;
	struct shared *sh;
	atomic_bool stop;
	atomic_int submitted;
	atomic_int callbacks;
	atomic_int off_thread;
	int err;		/* read after the join */
	pthread_t self;		/* set by the hammer thread itself */
	pthread_t thread;
};

static ssize_t tiny_work(void *ctx)
{
	struct shared *sh = ctx;

	atomic_fetch_add(&sh->total_runs, 1);
	count_if_child(sh, &sh->child_runs);
	return 0;
}

static void tiny_done(iop_job *job, ssize_t result, void *arg)
{
	struct hammer *h = arg;

	(void)job;
	if (result != 0 || !pthread_equal(pthread_self(), h->self))
		atomic_fetch_add(&h->off_thread, 1);
	count_if_child(h->sh, &h->sh->child_callbacks);
	atomic_fetch_add(&h->callbacks, 1);
}

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	int r;

	h->self = pthread_self();
	while (!atomic_load(&h->stop)) {
		for (int i = 0; i < 64; i++) {
			if (iop_call(h->pool, tiny_work, h->sh, tiny_done,
				     h) == NULL) {
				h->err = errno;
				return NULL;
			}
			atomic_fetch_add(&h->submitted, 1);
		}
		r = iop_poll(h->pool);
		if (r < 0) {
			h->err = -r;
			return NULL;
		}
	}
	r = wait_until(h->pool, &h->callbacks, load_int(&h->submitted));
	if (r < 0)
		h->err = -r;
	return NULL;
}

/* Wait (yielding) until @c passes @target, up to TEST_WAIT_MS. */
static bool reached(atomic_int *c, int target)
{
	int64_t end = now_ns() + (int64_t)TEST_WAIT_MS * 1000000;

	while (atomic_load(c) < target && now_ns() < end)
		sched_yield();
	return atomic_load(c) >= target;
}

/* What a stress child does: refuse, destroy, then a pool of its own. */
struct stress_child {
	iop_pool *pool;
	struct shared *sh;
	unsigned min_threads;
};

static void stress_done(iop_job *job, ssize_t result, void *arg)
{
	atomic_int *calls = arg;

	(void)job;
	atomic_fetch_add(calls, result == 5 ? 1 : 100);
}

static void group_ignore(iop_group *group, const struct iop_group_result *r,
			 void *arg)
{
	(void)group;
	(void)r;
	(void)arg;
}

static int child_stress(void *arg)
{
	struct stress_child *c = arg;
	struct report *r = &c->sh->rep;
	struct iop_options o = { .threads = 2,
				 .min_threads = c->min_threads };
	struct iop_stats st;
	atomic_int calls;
	iop_pool *mine;
	iop_job *job;
	int bad = 0;

	atomic_store(&r->step, 1);
	errno = 0;
	job = iop_call(c->pool, tiny_work, c->sh, NULL, NULL);
	bad += !(job == NULL && errno == EOWNERDEAD);
	atomic_store(&r->step, 2);
	bad += iop_poll(c->pool) != -EOWNERDEAD;
	atomic_store(&r->step, 3);
	bad += iop_wait(c->pool, -1) != -EOWNERDEAD;
	/*
	 * Calls the fork paragraph does not name, which take the pool's
	 * locks: any answer will do, as long as it comes.  A parent thread
	 * held those locks at the fork unless the fork handlers took them.
	 */
	atomic_store(&r->step, 4);
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	(void)iop_pool_stats(c->pool, &st);
	atomic_store(&r->step, 5);
	(void)iop_lane_new(c->pool, "child", 1);
	atomic_store(&r->step, 6);
	(void)iop_group_new(c->pool, group_ignore, NULL);
	atomic_store(&r->step, 7);
	iop_pool_destroy(c->pool);

	/* A new pool in the child works. */
	atomic_store(&r->step, 8);
	mine = iop_pool_new(&o);
	if (mine == NULL)
		return bad + 1;
	atomic_store(&r->step, 9);
	job = iop_call(mine, work_return_ctx, (void *)(intptr_t)7, NULL,
		       NULL);
	bad += job == NULL || iop_await(job) != 7;
	atomic_store(&r->step, 10);
	atomic_init(&calls, 0);
	bad += iop_call(mine, work_return_ctx, (void *)(intptr_t)5,
			stress_done, &calls) == NULL;
	bad += wait_until(mine, &calls, 1) != 0;
	bad += atomic_load(&calls) != 1;
	atomic_store(&r->step, 11);
	iop_pool_destroy(mine);
	atomic_store(&r->step, 12);
	return bad;
}

/*
 * Fork twenty times while another thread keeps many tiny jobs in flight
 * (so workers and the submitter contend for the pool lock at the fork):
 * no child deadlocks, which needs the fork handlers to take the locks,
 * and no job runs in a child or twice.  With @min_threads the pool
 * keeps idle workers too.
 */
static void fork_under_load(unsigned threads, unsigned min_threads)
{
	enum { FORKS = 20 };
	struct iop_options o = { .threads = threads,
				 .min_threads = min_threads };
	struct stress_child c;
	struct hammer h;
	struct shared *sh = shared_new();
	int rfd, status, sig, seen;
	pid_t pid;

	h.pool = iop_pool_new(&o);
	ck_assert_msg(h.pool != NULL, "iop_pool_new: %s", strerror(errno));
	warm_workers(h.pool, (int)threads);
	h.sh = sh;
	atomic_init(&h.stop, false);
	atomic_init(&h.submitted, 0);
	atomic_init(&h.callbacks, 0);
	atomic_init(&h.off_thread, 0);
	h.err = 0;
	ck_assert_int_eq(pthread_create(&h.thread, NULL, hammer_main, &h), 0);

	c.pool = h.pool;
	c.sh = sh;
	c.min_threads = min_threads ? 1 : 0;
	for (int i = 0; i < FORKS; i++) {
		/* Fork while jobs flow: some ended since the last fork. */
		seen = load_int(&h.callbacks);
		ck_assert_msg(reached(&h.callbacks, seen + 200),
			      "fork %d: no callbacks for %d ms (err %d)", i,
			      TEST_WAIT_MS, h.err);
		atomic_store(&sh->rep.step, 0);
		pid = fork_child(child_stress, &c, &rfd);
		status = child_wait(pid, rfd, CHILD_WAIT_MS, &sig);
		ck_assert_msg(status != -1,
			      "fork %d: the child hung (last step begun: %d)",
			      i, load_int(&sh->rep.step));
		ck_assert_msg(status != -2,
			      "fork %d: the child died of signal %d (step %d)",
			      i, sig, load_int(&sh->rep.step));
		ck_assert_msg(status == 0, "fork %d: %d surprises in the child",
			      i, status);
	}
	atomic_store(&h.stop, true);
	ck_assert_int_eq(pthread_join(h.thread, NULL), 0);
	ck_assert_msg(h.err == 0, "hammer: %s", strerror(h.err));
	ck_assert_int_eq(load_int(&h.callbacks), load_int(&h.submitted));
	ck_assert_int_eq(load_int(&h.off_thread), 0);
	ck_assert_int_eq(atomic_load(&sh->total_runs),
			 load_int(&h.submitted));
	ck_assert_int_eq(load_int(&sh->child_runs), 0);
	ck_assert_int_eq(load_int(&sh->child_callbacks), 0);
	iop_pool_destroy(h.pool);
	shared_free(sh);
}

START_TEST(test_fork_while_workers_hammer_lock)
{
	fork_under_load(4, 0);
}
END_TEST

/*
 * A pool created with min_threads: its idle workers exist at the fork.
 * The child's destroy must not try to join them; the parent keeps them.
 */
START_TEST(test_fork_with_min_threads)
{
	enum { N = 100 };
	struct iop_options o = { .threads = 4, .min_threads = 2 };
	struct stress_child c;
	struct shared *sh = shared_new();
	struct iop_stats st;
	struct fjob *j;
	atomic_int ended;
	int rfd, status, sig;
	iop_pool *pool;
	pid_t pid;

	pool = iop_pool_new(&o);
	ck_assert_msg(pool != NULL, "iop_pool_new: %s", strerror(errno));
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	ck_assert_int_eq(iop_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.threads, 2);
	/* Fork with the two workers idle, waiting for work. */
	warm_workers(pool, 2);
	ck_assert_int_eq(iop_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.threads, 2);
	ck_assert_uint_eq(st.threads_started, 2);
	ck_assert_uint_eq(st.running, 0);

	c.pool = pool;
	c.sh = sh;
	c.min_threads = 2;
	pid = fork_child(child_stress, &c, &rfd);
	status = child_wait(pid, rfd, CHILD_WAIT_MS, &sig);
	assert_child_ok(status, sig, load_int(&sh->rep.step));

	ck_assert_int_eq(iop_pool_stats(pool, &st), 0);
	ck_assert_uint_eq(st.threads, 2);
	j = calloc(N, sizeof(*j));
	ck_assert_ptr_nonnull(j);
	atomic_init(&ended, 0);
	for (int i = 0; i < N; i++) {
		j[i].sh = sh;
		j[i].idx = QUICK;
		j[i].ended = &ended;
		atomic_init(&j[i].calls, 0);
		atomic_init(&j[i].got, -1);
		ck_assert_ptr_nonnull(iop_call(pool, fjob_work, &j[i],
					       fjob_done, &j[i]));
	}
	drain_until(pool, &ended, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(load_int(&j[i].calls), 1);
	ck_assert_int_eq(load_int(&sh->runs[QUICK]), N);
	ck_assert_int_eq(load_int(&sh->child_runs), 0);
	ck_assert_int_eq(load_int(&sh->child_callbacks), 0);
	iop_pool_destroy(pool);
	free(j);
	shared_free(sh);
}
END_TEST

/* Forks under load with idle min_threads workers as well. */
START_TEST(test_fork_under_load_with_min_threads)
{
	fork_under_load(4, 2);
}
END_TEST

/* ---- A batch open across the fork. ---- */

struct setter_scene {
	iop_pool *pool;
	iop_lane *lane;
	iop_job *job;		/* held in the forking thread's batch */
};

/* In the child: every call on the held job refuses with EOWNERDEAD, and
 * none starts a thread (the deadline setter used to start the
 * watchdog, which the child's destroy then left running). */
static int child_setters(void *arg)
{
	struct setter_scene *sc = arg;
	int bad = 0;

	bad += iop_job_set_priority(sc->job, 1) != -EOWNERDEAD;
	bad += iop_job_set_lane(sc->job, sc->lane) != -EOWNERDEAD;
	bad += iop_job_set_deadline(sc->job, 1000) != -EOWNERDEAD;
	bad += iop_batch_end(sc->pool) != -EOWNERDEAD;	/* the inner one */
	bad += iop_batch_end(sc->pool) != -EOWNERDEAD;	/* the outer one */
	iop_pool_destroy(sc->pool);
	return bad;
}

START_TEST(test_fork_setters_refuse_held_job)
{
	struct setter_scene sc;
	struct done_rec d;
	int rfd, status, sig;
	pid_t pid;

	sc.pool = iop_pool_new(NULL);
	ck_assert_ptr_nonnull(sc.pool);
	sc.lane = iop_lane_new(sc.pool, "lane", 1);
	ck_assert_ptr_nonnull(sc.lane);
	done_rec_init(&d);
	ck_assert_int_eq(iop_batch_begin(sc.pool), 0);
	ck_assert_int_eq(iop_batch_begin(sc.pool), 0);
	sc.job = iop_call(sc.pool, work_return_ctx, (void *)(intptr_t)7,
			  done_record, &d);
	ck_assert_ptr_nonnull(sc.job);

	pid = fork_child(child_setters, &sc, &rfd);
	status = child_wait(pid, rfd, CHILD_WAIT_MS, &sig);
	assert_child_ok(status, sig, 0);

	/* The parent's batch and job are untouched by the child. */
	ck_assert_int_eq(iop_job_set_priority(sc.job, 1), 0);
	ck_assert_int_eq(iop_batch_end(sc.pool), 0);
	ck_assert_int_eq(iop_batch_end(sc.pool), 1);
	drain_until(sc.pool, &d.calls, 1);
	ck_assert_int_eq(atomic_load(&d.result), 7);
	ck_assert_int_eq(atomic_load(&d.off_thread), 0);
	iop_pool_destroy(sc.pool);
}
END_TEST

static Suite *fork_suite(void)
{
	Suite *s = suite_create("fork");
	TCase *tc;

	tc = tcase_new("child");
	tcase_set_tags(tc, "fork");
	tcase_add_test(tc, test_fork_child_never_runs_parent_jobs);
	tcase_add_test(tc, test_fork_parent_unaffected);
	tcase_add_test(tc, test_fork_setters_refuse_held_job);
	suite_add_tcase(s, tc);

	tc = tcase_new("stress");
	tcase_set_tags(tc, "fork");
	tcase_add_test(tc, test_fork_while_workers_hammer_lock);
	tcase_add_test(tc, test_fork_with_min_threads);
	tcase_add_test(tc, test_fork_under_load_with_min_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(fork_suite());
}
