/*
 * Worker threads.  They start on demand: when jobs are queued and fewer
 * idle (or starting) threads are there to take them, up to max_threads.
 * A thread above min_threads that has waited idle_timeout_ms for work
 * exits; so does any thread above max_threads once its job is done, which
 * is how iop_pool_set_threads() lowers the count without interrupting or
 * losing a job.  An exited thread is joined by the next thread start or by
 * destroy.  An IOP_POOL_INLINE pool has no workers: the submitting thread
 * runs the queue itself (iop__drain_inline()).
 */
#include "iopool-int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

/* Worker threads alive.  Written under the lock, read anywhere. */
static unsigned threads(const struct iop_pool *pool)
{
	return atomic_load_explicit(&pool->nthreads, memory_order_relaxed);
}

/* Join the threads that have exited.  They left the lock for good. */
static void reap_locked(struct iop_pool *pool)
{
	struct iop__worker *w, *next;

	for (w = pool->exited; w; w = next) {
		next = w->next;
		pthread_join(w->thread, NULL);
		free(w);
	}
	pool->exited = NULL;
}

static void *worker_main(void *arg);

/*
 * Start one worker, with every signal blocked so that the program's
 * handlers run on its own threads only.  The new thread waits for the
 * lock, which the caller holds, before it does anything.
 */
int iop__spawn_locked(struct iop_pool *pool)
{
	struct iop__worker *w;
	pthread_attr_t attr;
	sigset_t all, old;
	int err;

	reap_locked(pool);
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->pool = pool;
	w->blocks = true;		/* until a job says otherwise */
	err = pthread_attr_init(&attr);
	if (err)
		goto out_free;
	err = pthread_attr_setstacksize(&attr, pool->stack_size);
	if (!err) {
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		err = pthread_create(&w->thread, &attr, worker_main, w);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_attr_destroy(&attr);
	if (err)
		goto out_free;
	pthread_mutex_lock(&pool->stats_lock);
	w->next = pool->workers;
	if (w->next)
		w->next->prev = w;
	pool->workers = w;
	pthread_mutex_unlock(&pool->stats_lock);
	atomic_store_explicit(&pool->nthreads, threads(pool) + 1,
			      memory_order_relaxed);
	pool->nstarting++;
	iop__count(&pool->nstarted, 1);
	return 0;
out_free:
	free(w);
	return -err;
}

/*
 * Take the lock for a section that may wake workers (a submit): the
 * signals wait until iop__unlock_waking() has let go of the lock, so that
 * a woken worker does not find it still taken and sleep on it again.
 */
void iop__lock_waking(struct iop_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pool->defer_signals = true;
}

void iop__unlock_waking(struct iop_pool *pool)
{
	unsigned n = pool->nsignals;

	pool->nsignals = 0;
	pool->defer_signals = false;
	pthread_mutex_unlock(&pool->lock);
	while (n-- > 0)
		pthread_cond_signal(&pool->work_cond);
}

/*
 * @n jobs were queued: wake up to @n idle workers that no earlier signal
 * is already waking, and start threads while the queue holds more jobs
 * than idle and starting threads can take: reads that wait for the
 * device count IOP__READ_BATCH to a thread, and no thread starts for
 * reads that copy once there is one per CPU for them (iop__copy_read()),
 * unless @any (the workers look stuck: see stale_check_locked()).
 * Returns 0, or the -errno of a thread that could not be started (the
 * pool goes on with what it has).
 */
static int wake_locked(struct iop_pool *pool, unsigned n, bool any)
{
	unsigned nthreads, per = 1;
	bool copy = false;
	int err = 0;

	if (pool->flags & IOP_POOL_INLINE)
		return 0;
	while (n-- > 0 && pool->nwakeups < pool->nidle) {
		pool->nwakeups++;
		if (pool->defer_signals)
			pool->nsignals++;
		else
			pthread_cond_signal(&pool->work_cond);
	}
	if (!any) {
		if (iop__device_read_next_locked(pool))
			per = IOP__READ_BATCH;
		copy = iop__copy_read_next_locked(pool);
	}
	for (;;) {
		nthreads = threads(pool);
		if (err || nthreads >= pool->max_threads ||
		    atomic_load_explicit(&pool->nqueued, memory_order_relaxed)
		    <= (pool->nidle + pool->nstarting) * per ||
		    (copy && pool->ncopying + pool->nidle + pool->nstarting >=
			     pool->ncpus) ||
		    atomic_load_explicit(&pool->shutdown, memory_order_relaxed))
			break;
		err = iop__spawn_locked(pool);
	}
	return err;
}

int iop__wake_locked(struct iop_pool *pool, unsigned n)
{
	return wake_locked(pool, n, false);
}

int iop__wake_any_locked(struct iop_pool *pool, unsigned n)
{
	return wake_locked(pool, n, true);
}

/* Run @job's work on this thread and set its result. */
static ssize_t run_bare(struct iop_job *job)
{
	struct iop_job *outer = iop__running;
	ssize_t result;

	iop__running = job;
	result = iop__job_run(job);
	iop__running = outer;
	job->result = result;
	return result;
}

/*
 * Run @job, taken off the queue and marked RUNNING, on this thread and
 * hand it back.  @now is the time if the caller knows it (0 if not); on
 * return it is the time the job ended (0 without timing).  Counts into
 * @st, which only this thread writes.  A worker's @due says when the job
 * is expected to end, from what jobs of its kind took (0: not known).
 */
static void run_job(struct iop_pool *pool, struct iop_job *job,
		    _Atomic int64_t *started, _Atomic int64_t *due,
		    struct iop__stats *st, int64_t *now, bool hold)
{
	bool timed = !(pool->flags & IOP_POOL_NO_TIMING);
	struct iop__ran ran = { .op = job->req.op, .long_ns = pool->long_ns,
				.kind = iop__job_kind(job) };
	ssize_t result;

	if (timed) {
		ran.t_queued = job->t_queued;	/* result takes its place */
		ran.t_start = *now ? *now : iop__now_ns();
		atomic_store_explicit(started, ran.t_start,
				      memory_order_relaxed);
		if (due) {
			int64_t est = iop__estimate(pool, ran.kind);

			atomic_store_explicit(due, est > 0 ? ran.t_start + est
							   : 0,
					      memory_order_relaxed);
		}
	} else {
		atomic_store_explicit(started, -1, memory_order_relaxed);
	}
	result = run_bare(job);
	if (timed) {
		ran.t_end = iop__now_ns();
		iop__estimate_add(pool, ran.kind, ran.t_end - ran.t_start);
	}
	*now = ran.t_end;
	atomic_store_explicit(started, 0, memory_order_relaxed);
	if (due)
		atomic_store_explicit(due, 0, memory_order_relaxed);
	if (st) {
		iop__stats_ran(st, &ran, result);
	} else {
		/* Not a worker: inline_stats belongs to the lock holder. */
		pthread_mutex_lock(&pool->lock);
		iop__stats_ran(&pool->inline_stats, &ran, result);
		pthread_mutex_unlock(&pool->lock);
	}
	if (hold)
		iop__complete_holding(job);
	else
		iop__complete(job);
}

/* Run @job (not queued, RUNNING) on the calling thread, not a worker. */
void iop__run_here(struct iop_pool *pool, struct iop_job *job)
{
	_Atomic int64_t started;
	int64_t now = 0;

	run_job(pool, job, &started, NULL, NULL, &now, false);
}

/*
 * Before a thread waits for a queued job: if the pool has no worker at
 * all (creating one failed when the job was handed over), try again.
 * False if jobs are queued and there is still no worker.  Lock held.
 */
bool iop__ensure_worker_locked(struct iop_pool *pool)
{
	if ((pool->flags & IOP_POOL_INLINE) || threads(pool) > 0 ||
	    atomic_load_explicit(&pool->nqueued, memory_order_relaxed) == 0)
		return true;
	iop__wake_locked(pool, 0);
	return threads(pool) > 0;
}

/*
 * Run @job on a thread that waits for results, with every signal blocked
 * as on a worker, so that a work function sees the same conditions.  It
 * counts into pool->inline_stats.
 */
void iop__run_helping(struct iop_pool *pool, struct iop_job *job)
{
	_Atomic int64_t started;
	int64_t now = 0;
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	run_job(pool, job, &started, NULL, NULL, &now, false);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * Wait for work.  False when this thread should exit: it waited
 * idle_timeout_ms, above min_threads, and no job came.
 */
static bool idle_wait_locked(struct iop_pool *pool)
{
	bool timed = threads(pool) >
		     pool->min_threads;
	struct timespec ts;
	int64_t deadline;
	int err = 0;

	/* One idle worker keeps watch over running batches. */
	if ((pool->nsmall > 0 || pool->helper.small) && !pool->watching) {
		pool->watching = true;
		deadline = iop__now_ns() + IOP__STUCK_NS;
		ts.tv_sec = deadline / 1000000000;
		ts.tv_nsec = deadline % 1000000000;
		pool->nidle++;
		err = pthread_cond_timedwait(&pool->work_cond, &pool->lock,
					     &ts);
		pool->nidle--;
		if (pool->nwakeups > 0)
			pool->nwakeups--;
		pool->watching = false;
		if (err == ETIMEDOUT)
			iop__wake_locked(pool, iop__unstick_locked(
				pool, iop__now_ns()));
		return true;
	}
	pool->nidle++;
	if (timed) {
		deadline = iop__now_ns() + pool->idle_ns;
		ts.tv_sec = deadline / 1000000000;
		ts.tv_nsec = deadline % 1000000000;
		err = pthread_cond_timedwait(&pool->work_cond, &pool->lock,
					     &ts);
	} else {
		pthread_cond_wait(&pool->work_cond, &pool->lock);
	}
	pool->nidle--;
	if (pool->nwakeups > 0)
		pool->nwakeups--;
	return !(err == ETIMEDOUT && pool->runq.mask == 0 &&
		 threads(pool) >
		 pool->min_threads);
}

/* This worker leaves: off the list, its counts kept, to be joined. */
static void exit_locked(struct iop_pool *pool, struct iop__worker *w)
{
	atomic_store_explicit(&pool->nthreads, threads(pool) - 1,
			      memory_order_relaxed);
	pthread_mutex_lock(&pool->stats_lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		pool->workers = w->next;
	if (w->next)
		w->next->prev = w->prev;
	iop__stats_add(&pool->retired, &w->stats);
	pthread_mutex_unlock(&pool->stats_lock);
	w->next = pool->exited;
	pool->exited = w;
	if (threads(pool) == 0)
		pthread_cond_broadcast(&pool->exit_cond);
}

/* Jobs are queued at another priority than @level: a batch stops and
 * lets the queue order them with the rest of it. */
static bool other_level(struct iop_pool *pool, unsigned level)
{
	return atomic_load_explicit(&pool->runq.pub,
				    memory_order_relaxed) & ~level;
}

/*
 * Run the jobs of @w's batch, all of @kind, timed as a whole: two clock
 * reads for the batch rather than one per job, each job counted with the
 * batch's average (their estimate is one figure anyway).  @w->started
 * holds the batch's start, so a batch running past IOP__STUCK_NS is seen
 * as stuck.  Returns where it stopped, as the loop in
 * run_batch_locked() does.
 */
static unsigned run_same(struct iop__worker *w, unsigned n, uint64_t kind,
			 unsigned level, int64_t *now)
{
	struct iop_pool *pool = w->pool;
	struct iop__ran ran = { .op = w->batch[0]->req.op, .kind = kind,
				.long_ns = pool->long_ns };
	int64_t per;
	unsigned i, j, k = 0;

	ran.t_start = *now ? *now : iop__now_ns();
	atomic_store_explicit(&w->started, ran.t_start, memory_order_relaxed);
	for (i = 0; i < n;
	     i = atomic_fetch_add_explicit(&w->bnext, 1, memory_order_relaxed)) {
		w->ran[k].t_queued = w->batch[i]->t_queued; /* result's place */
		w->ran[k++].result = run_bare(w->batch[i]);
		iop__complete(w->batch[i]);
		if (other_level(pool, level))
			break;
	}
	*now = iop__now_ns();
	atomic_store_explicit(&w->started, 0, memory_order_relaxed);
	per = (*now - ran.t_start) / (int64_t)k;
	iop__estimate_add(pool, kind, per);
	for (j = 0; j < k; j++) {
		ran.t_queued = w->ran[j].t_queued;
		ran.t_end = ran.t_start + per;
		iop__stats_ran(&w->stats, &ran, w->ran[j].result);
		ran.t_start = ran.t_end;
	}
	return i;
}

/*
 * @first is short: take more short jobs queued behind it, up to about
 * IOP__BATCH_NS of expected work, and run them all with the lock dropped.
 * One worker drains a backlog of tiny jobs this way while the others
 * sleep, with one lock round trip per batch.  The jobs stay claimable: if
 * one of them runs unexpectedly long, iop__unstick_locked() (called by an
 * idle worker keeping watch, a submit or a waiting poller) puts the rest
 * back in the queue for other workers; and a worker out of short jobs
 * takes the polling thread's next ones (steal_locked()).  @w is a worker,
 * or the polling thread's pool->helper.  Called and returns with the lock
 * held.
 */
static void run_batch_locked(struct iop__worker *w, struct iop_job *first,
			     int64_t *now)
{
	struct iop_pool *pool = w->pool;
	bool helper = w == &pool->helper;
	uint64_t kind = iop__job_kind(first), k;
	int64_t budget = iop__estimate(pool, kind);
	unsigned level = 1u << (first->prio - IOP_PRIO_MIN);
	bool same = true, ring = false;
	struct iop_job *job;
	unsigned n = 1, i, more, share;

	w->batch[0] = first;
	/* The jobs of the same kind behind it, in one step. */
	if (budget < IOP__BATCH_NS) {
		more = (unsigned)((IOP__BATCH_NS - 1) / (budget ? budget : 1));
		if (more > IOP__BATCH_MAX - 1)
			more = IOP__BATCH_MAX - 1;
		/* Another thread runs short jobs too, or is on its way:
		 * leave it half of them, or two thirds if this is the
		 * polling thread, which runs their callbacks as well. */
		if (iop__worker_coming_locked(pool) ||
		    (!helper && pool->helper.small)) {
			share = (unsigned)(atomic_load_explicit(
				&pool->nqueued, memory_order_relaxed) + 1) /
				(helper ? 3 : 2);
			if (more > share)
				more = share;
		}
		more = iop__take_run_locked(pool, kind, w->batch + 1, more);
		n += more;
		budget += (int64_t)more * budget;
	}
	while (n < IOP__BATCH_MAX && budget < IOP__BATCH_NS &&
	       (job = iop__take_small_locked(pool, NULL))) {
		w->batch[n++] = job;
		k = iop__job_kind(job);
		same = same && k == kind;
		budget += iop__estimate(pool, k);
	}
	atomic_store_explicit(&w->bcount, n, memory_order_relaxed);
	atomic_store_explicit(&w->bnext, 1, memory_order_relaxed);
	w->small = true;
	if (helper) {
		/* Someone to notice if one of them blocks: a worker
		 * running short jobs keeps watch once it is idle, else
		 * wake one. */
		if ((n > 1 || pool->runq.mask) && !pool->watching &&
		    !iop__worker_coming_locked(pool))
			iop__wake_locked(pool, 1);
	} else {
		atomic_store(&pool->nsmall, pool->nsmall + 1);
		/* The polling thread sleeps without watching, or a ring
		 * is held back: ring, for these jobs' callbacks. */
		ring = atomic_load(&pool->unwatched) ||
		       atomic_load_explicit(&pool->nheld,
					    memory_order_relaxed) > 0;
	}
	pool->nrunning++;
	pthread_mutex_unlock(&pool->lock);
	if (ring)
		iop__notify_signal(&pool->notify);
	/* Short jobs' callbacks do not wait for a ring held back. */
	if (!helper)
		iop__hold_check(pool, false);

	if (same)
		i = run_same(w, n, kind, level, now);
	else
		for (i = 0; i < n; i = atomic_fetch_add_explicit(
			     &w->bnext, 1, memory_order_relaxed)) {
			run_job(pool, w->batch[i], &w->started, NULL,
				&w->stats, now, false);
			if (other_level(pool, level))
				break;
		}

	pthread_mutex_lock(&pool->lock);
	if (i < n) {
		i = atomic_exchange_explicit(&w->bnext, IOP__BATCH_MAX,
					     memory_order_relaxed);
		while (n > i)
			iop__requeue_front_locked(pool, w->batch[--n]);
	}
	w->small = false;
	if (!helper)
		atomic_store_explicit(&pool->nsmall, pool->nsmall - 1,
				      memory_order_relaxed);
	pool->nrunning--;
	pool->t_moved = *now;
	/* A worker held back for the helper's batch can go on. */
	if (helper && pool->capped) {
		pool->capped = false;
		iop__wake_locked(pool, 1);
	}
}

/*
 * The polling thread, in iop_wait() between rounds of callbacks, finds
 * short jobs queued: it runs a batch of them itself, as a worker would
 * (every signal blocked), which costs less than waking a worker and being
 * woken by it.  Their completions need no ring: this thread takes them
 * next.  A worker that shares the short jobs and runs out of them takes
 * the next ones of this batch meanwhile.  While it runs them, one idle
 * worker keeps watch, so that jobs behind one that blocks after all go
 * back to the queue for the workers.  True if it ran any.
 */
bool iop__help(struct iop_pool *pool)
{
	struct iop_job *first;
	sigset_t all, old;
	int64_t now = 0;

	if ((pool->flags & IOP__NO_HELP) ||
	    !atomic_load_explicit(&pool->runq.pub, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&pool->lock);
	/* It counts as one of the pool's threads. */
	first = pool->nrunning < pool->max_threads ?
		iop__take_small_locked(pool, NULL) : NULL;
	if (!first) {
		pthread_mutex_unlock(&pool->lock);
		return false;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	run_batch_locked(&pool->helper, first, &now);
	pthread_mutex_unlock(&pool->lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return true;
}

/*
 * The polling thread, in iop_wait() with no callback and no short job
 * left to run, finds a read that copies (iop__copy_read()) next in the
 * queue: it copies it itself, as a worker would (every signal blocked),
 * rather than sleep while workers copy and be woken by them.  It counts
 * as one of the threads copying, one per CPU: with it, one worker fewer
 * copies, no worker is woken for the reads its callbacks submit (see
 * iop__publish_pending()), and none is put off its CPU for the callbacks.
 * A worker that would make one copier too many while it copies stands
 * down (worker_main()); before this thread sleeps or leaves, it wakes
 * workers for the reads still queued (iop__pay_wake()).  Only reads that
 * have taken no more than IOP__HELP_COPY_NS, and none that would run
 * past @deadline (0: none), going by what such reads have taken; never on
 * one CPU, where no worker would copy beside it.  True if it ran one.
 */
bool iop__help_copy(struct iop_pool *pool, int64_t deadline)
{
	struct iop_job *job = NULL;
	int64_t now = 0, budget = IOP__HELP_COPY_NS;

	if ((pool->flags & IOP__NO_HELP) || pool->ncpus < 2 ||
	    !atomic_load_explicit(&pool->runq.pub, memory_order_relaxed))
		return false;
	if (deadline) {
		now = iop__now_ns();
		if (deadline - now < budget)
			budget = deadline - now;
	}
	pthread_mutex_lock(&pool->lock);
	/* One thread too many copying for a moment at most: a worker
	 * stands down at the end of its read. */
	if (pool->nrunning < pool->max_threads &&
	    pool->ncopying <= pool->ncpus)
		job = iop__take_copy_locked(pool, budget);
	if (!job) {
		pthread_mutex_unlock(&pool->lock);
		return false;
	}
	if (!now)
		now = iop__now_ns();
	pool->nrunning++;
	pool->ncopying++;
	pool->helper_copy = now;
	pool->t_moved = now;
	pthread_mutex_unlock(&pool->lock);
	iop__run_helping(pool, job);
	pthread_mutex_lock(&pool->lock);
	pool->nrunning--;
	pool->ncopying--;
	pool->helper_copy = 0;
	pool->t_moved = iop__now_ns();
	pthread_mutex_unlock(&pool->lock);
	return true;
}

/* The rest of @w's batch, if it is stuck (see below). */
static unsigned unstick_one_locked(struct iop_pool *pool,
				   struct iop__worker *w, int64_t now)
{
	int64_t started;
	unsigned from, i, back = 0;

	if (!w->small)
		return 0;
	started = atomic_load_explicit(&w->started, memory_order_relaxed);
	if (started <= 0 || now - started < IOP__STUCK_NS)
		return 0;
	/* Any value >= IOP__BATCH_MAX stops the worker, and never lets it
	 * claim a job twice, however often this runs. */
	from = atomic_exchange_explicit(&w->bnext, IOP__BATCH_MAX,
					memory_order_relaxed);
	for (i = atomic_load_explicit(&w->bcount, memory_order_relaxed);
	     i > from; i--) {
		iop__requeue_front_locked(pool, w->batch[i - 1]);
		back++;
	}
	return back;
}

/*
 * Give the rest of any batch that has been running for longer than
 * IOP__STUCK_NS (one of its jobs blocks) back to the queue: the workers'
 * and the polling thread's.  Returns how many jobs went back (the caller
 * wakes workers for them).  Lock held.
 */
unsigned iop__unstick_locked(struct iop_pool *pool, int64_t now)
{
	struct iop__worker *w;
	unsigned back = unstick_one_locked(pool, &pool->helper, now);

	for (w = pool->workers; w; w = w->next)
		back += unstick_one_locked(pool, w, now);
	return back;
}

/* The polling thread's batch has jobs nobody has claimed yet.  Read
 * without the lock: a hint, which steal_locked() checks under it. */
static bool helper_unclaimed(struct iop_pool *pool)
{
	return atomic_load_explicit(&pool->helper.bnext,
				    memory_order_relaxed) <
	       atomic_load_explicit(&pool->helper.bcount,
				    memory_order_relaxed);
}

/*
 * This worker ran short jobs and finds none queued, while the polling
 * thread still has jobs of its batch to run: claim the next one, as that
 * thread would (the batch stays claimable, see run_batch_locked()), so
 * that the two share the batch rather than one of them idling until the
 * other is done.  It counts as one of the pool's threads, within
 * max_threads.  The job, RUNNING, or NULL.  Lock held.
 */
static struct iop_job *steal_locked(struct iop_pool *pool)
{
	struct iop__worker *h = &pool->helper;
	unsigned i;

	if (!h->small || pool->nrunning >= pool->max_threads ||
	    !helper_unclaimed(pool))
		return NULL;
	/* The batch cannot end and start again meanwhile: that thread
	 * takes the lock for that. */
	i = atomic_fetch_add_explicit(&h->bnext, 1, memory_order_relaxed);
	if (i >= atomic_load_explicit(&h->bcount, memory_order_relaxed))
		return NULL;
	return h->batch[i];
}

/*
 * This worker just ran short jobs and finds none queued, while the
 * polling thread runs a batch of them in iop_wait(): it is about to hand
 * over the jobs its callbacks submit, and a worker that slept now would
 * cost a wake-up for them.  Look for them, or for jobs of that batch left
 * to claim, without the lock for up to IOP__SPIN_NS instead, counted as a
 * thread running short jobs (so that nobody wakes another worker for
 * them), where a CPU is left for it: at most one worker at a time, and
 * not while as many jobs run as there are CPUs.  False if it did not look
 * (the caller sleeps), true once it has (the caller looks at the queue
 * and that batch again).  Called and returns with the lock held.
 */
static bool spin_locked(struct iop_pool *pool)
{
	int64_t until;
	unsigned i = 0;

	if (pool->spinning || !pool->helper.small ||
	    pool->nrunning >= pool->ncpus)
		return false;
	pool->spinning = true;
	atomic_store_explicit(&pool->nsmall, pool->nsmall + 1,
			      memory_order_relaxed);
	pthread_mutex_unlock(&pool->lock);
	until = iop__now_ns() + IOP__SPIN_NS;
	while (!atomic_load_explicit(&pool->runq.pub, memory_order_relaxed) &&
	       !helper_unclaimed(pool) &&
	       atomic_load_explicit(&pool->polling, memory_order_relaxed) &&
	       !atomic_load_explicit(&pool->shutdown, memory_order_relaxed) &&
	       ((++i & 31) != 0 || iop__now_ns() < until))
		iop__cpu_relax();
	pthread_mutex_lock(&pool->lock);
	atomic_store_explicit(&pool->nsmall, pool->nsmall - 1,
			      memory_order_relaxed);
	pool->spinning = false;
	return true;
}

/*
 * The voluntary context switches of this thread so far: a job that made
 * one slept in the kernel (blocked) rather than keep its CPU busy.  -1
 * where the system does not count them per thread: every job then looks
 * as if it blocked.
 */
static long voluntary_switches(void)
{
#ifdef RUSAGE_THREAD
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) == 0)
		return ru.ru_nvcsw;
#endif
	return -1;
}

/*
 * Ask the kernel to start reading what the @n reads of @jobs (on
 * descriptors without O_DIRECT) want, so that the device has them all
 * while this worker waits for the first.  Only advice: a read the kernel
 * does not start here starts when the worker reads.
 */
static void read_ahead(struct iop_job *const *jobs, unsigned n)
{
	const struct iop__req *req;

	for (unsigned i = 0; i < n; i++) {
		req = &jobs[i]->req;
		(void)posix_fadvise(req->fd, (off_t)req->u.rw.offset,
				    (off_t)req->u.rw.len,
				    POSIX_FADV_WILLNEED);
	}
}

/*
 * The polling thread copies a read (iop__help_copy()), as many threads as
 * CPUs copy without this worker (so at least one other worker does), and
 * the next job is a read that copies: leave it to the next of them that
 * is free, unless that thread's read has run for longer than such reads
 * should.  Lock held.
 */
static bool stand_down_locked(struct iop_pool *pool)
{
	return pool->helper_copy && pool->ncopying >= pool->ncpus &&
	       iop__copy_read_next_locked(pool) &&
	       iop__now_ns() - pool->helper_copy < IOP__HELP_COPY_NS;
}

static void *worker_main(void *arg)
{
	struct iop__worker *w = arg;
	struct iop_pool *pool = w->pool;
	struct iop_lane *lane;
	struct iop_job *job;
	int64_t now = 0, start = 0;
	bool was_small = false, spun = false, hold, sample, copy, big;
	int fd;
	unsigned nreads, i;
	long switches = 0;

	pthread_mutex_lock(&pool->lock);
	pool->nstarting--;
	for (;;) {
		/* Above the maximum (iop_pool_set_threads()): leave. */
		if (threads(pool) >
		    pool->max_threads)
			break;
		/* The helper runs one of max_threads jobs at a time. */
		if (pool->helper.small &&
		    pool->nrunning >= pool->max_threads &&
		    pool->runq.mask) {
			pool->capped = true;
			job = NULL;
		} else if (stand_down_locked(pool)) {
			atomic_store(&pool->stood_down, true);
			job = NULL;
		} else {
			job = iop__pick_locked(pool, &now);
		}
		if (!job && (was_small || spun) &&
		    (job = steal_locked(pool))) {
			run_batch_locked(w, job, &now);
			was_small = true;
			spun = false;
			continue;
		}
		if (!job) {
			iop__hold_check(pool, false);
			if (atomic_load_explicit(&pool->shutdown,
						 memory_order_relaxed))
				break;
			spun = was_small && spin_locked(pool);
			if (!spun && !idle_wait_locked(pool))
				break;
			was_small = false;
			now = 0;
			continue;
		}
		spun = false;
		atomic_store_explicit(&job->state, IOP__RUNNING,
				      memory_order_relaxed);
		/* A read that waits for the device: such reads queued
		 * right behind it come along. */
		nreads = 0;
		if (iop__device_read(pool, job))
			nreads = iop__take_run_locked(pool, IOP__KIND_READS,
						      w->batch + 1,
						      IOP__READ_BATCH - 1);
		else if (iop__small(pool, job) && !job->xflags) {
			run_batch_locked(w, job, &now);
			was_small = true;
			continue;
		}
		was_small = false;
		lane = job->xflags & IOP__X_LANE ? job->x->lane : NULL;
		copy = iop__copy_read(pool, job);
		pool->nrunning++;
		pool->ncopying += copy;
		/* Ending the last job was moving too. */
		if (!(pool->flags & IOP_POOL_NO_TIMING))
			pool->t_moved = now ? now : iop__now_ns();
		/* Jobs still waiting, and this worker's jobs keep its CPU
		 * busy: the callbacks can wait (see complete.c). */
		hold = !w->blocks &&
		       atomic_load_explicit(&pool->nqueued,
					    memory_order_relaxed) >=
		       IOP__HOLD_QUEUED;
		pthread_mutex_unlock(&pool->lock);

		iop__hold_check(pool, hold);
		/* Not where the program asked for no per-job costs; every
		 * big read, whose sleeping or not decides whether such
		 * reads copy (iop__copy_read()). */
		fd = job->req.fd;
		big = iop__big_read(job) &&
		      !(pool->flags & IOP_POOL_NO_TIMING);
		sample = (!(pool->flags & IOP_POOL_NO_TIMING) &&
			  ++w->njobs % IOP__BLOCK_SAMPLE == 0) || big;
		if (sample)
			switches = voluntary_switches();
		if (nreads) {
			w->batch[0] = job;
			now = start = pool->flags & IOP_POOL_NO_TIMING ?
				      0 : iop__now_ns();
			read_ahead(w->batch, nreads + 1);
		}
		run_job(pool, job, &w->started, &w->due, &w->stats, &now,
			hold);
		if (sample)
			w->blocks = switches < 0 ||
				    voluntary_switches() != switches;
		if (big)
			iop__read_slept(pool, fd, w->blocks);
		/* Each ran from when its read was asked for. */
		for (i = 1; i <= nreads; i++) {
			now = start;
			run_job(pool, w->batch[i], &w->started, &w->due,
				&w->stats, &now, hold);
		}

		pthread_mutex_lock(&pool->lock);
		pool->nrunning--;
		pool->ncopying -= copy;
		pool->t_moved = now;
		if (lane)
			iop__lane_release_locked(pool, lane);
	}
	iop__hold_check(pool, false);
	exit_locked(pool, w);
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* A work function that submits to an inline pool: the outer loop runs it. */
static IOP__TLS struct iop_pool *draining;

/* IOP_POOL_INLINE: run every queued job on this thread, now. */
void iop__drain_inline(struct iop_pool *pool)
{
	struct iop_pool *outer = draining;
	struct iop_lane *lane;
	struct iop_job *job;
	int64_t now = 0;

	if (draining == pool)
		return;
	draining = pool;
	pthread_mutex_lock(&pool->lock);
	while ((job = iop__pick_locked(pool, &now))) {
		atomic_store_explicit(&job->state, IOP__RUNNING,
				      memory_order_relaxed);
		lane = job->xflags & IOP__X_LANE ? job->x->lane : NULL;
		pthread_mutex_unlock(&pool->lock);
		iop__run_here(pool, job);
		now = 0;
		pthread_mutex_lock(&pool->lock);
		if (lane)
			iop__lane_release_locked(pool, lane);
	}
	pthread_mutex_unlock(&pool->lock);
	draining = outer;
}

/* Destroy: shutdown is set and the queue empty; let every worker go. */
void iop__stop_workers(struct iop_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	pthread_cond_broadcast(&pool->work_cond);
	while (threads(pool) > 0)
		pthread_cond_wait(&pool->exit_cond, &pool->lock);
	reap_locked(pool);
	pthread_mutex_unlock(&pool->lock);
}

/* A forked child's copy: the threads do not exist here; free their
 * memory without joining. */
void iop__free_workers(struct iop_pool *pool)
{
	struct iop__worker *w, *next;

	for (w = pool->workers; w; w = next) {
		next = w->next;
		free(w);
	}
	for (w = pool->exited; w; w = next) {
		next = w->next;
		free(w);
	}
	pool->workers = pool->exited = NULL;
}

int iop_pool_set_threads(iop_pool *pool, unsigned min_threads,
			 unsigned max_threads)
{
	unsigned nthreads;
	int err = 0;

	if (!pool || max_threads == 0 || max_threads > IOP_THREADS_MAX ||
	    min_threads > max_threads || (pool->flags & IOP_POOL_INLINE))
		return -EINVAL;
	if (iop__pool_forked(pool))
		return -EOWNERDEAD;
	pthread_mutex_lock(&pool->lock);
	pool->min_threads = min_threads;
	pool->max_threads = max_threads;
	for (;;) {
		nthreads = threads(pool);
		if (err || nthreads >= min_threads ||
		    atomic_load_explicit(&pool->shutdown, memory_order_relaxed))
			break;
		err = iop__spawn_locked(pool);
	}
	if (!err)
		err = iop__wake_locked(pool, 0);
	/* Idle threads recheck the limits: above the maximum, they leave;
	 * above the minimum, their wait gets a timeout. */
	pthread_cond_broadcast(&pool->work_cond);
	pthread_mutex_unlock(&pool->lock);
	return err;
}
