/*
 * The pool: worker threads, the submit queue and shutdown.
 *
 * The flow of a job:
 *
 *   submit (any thread)
 *     -> take a free job and append it to pool->queue under pool->lock;
 *        signal one idle worker, if none is already on its way
 *        (a callback's submits gather on pool->pending instead, with no
 *        lock, and are appended in one step when the callback batch ends)
 *   worker
 *     -> pop the job under the lock, mark it RUNNING, drop the lock, run it
 *   completion
 *     -> callback job: push it onto pool->done, a lock-free stack; the
 *        push that finds the stack empty writes the eventfd, so a burst of
 *        completions costs one write
 *     -> future: set DONE under the lock, wake its iop_await() if waiting
 *   iop_poll() / iop_wait() on the program's thread
 *     -> drain the eventfd FIRST, then take the whole stack at once,
 *        reverse it to completion order and run the callbacks with no lock
 *        held.  (Taken the other way round, a push landing between the two
 *        would lose its only wake-up.)  Each job goes back to a free list
 *        when its callback returns.
 *
 * Each side makes at most one lock round trip per job: submit, and the
 * worker's pop.  The completion side is lock-free and taken in batches.
 * Job memory is reused through free lists; nothing is allocated per job
 * once the pool has warmed up.
 *
 * Locking: pool->lock guards the fields marked "lock" in struct iop_pool.
 * It is the only lock; no callback or work function ever runs under it.
 * Condition variables are signalled with it held.
 */
#include "iopool-int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

_Thread_local struct iop_pool *iop__current;

/* Wake up to @n idle workers that no earlier signal is already waking. */
static void wake_workers_locked(struct iop_pool *pool, unsigned n)
{
	while (n-- > 0 && pool->nwakeups < pool->nidle) {
		pool->nwakeups++;
		pthread_cond_signal(&pool->work_cond);
	}
}

static void *worker_main(void *arg)
{
	struct iop_pool *pool = arg;
	struct iop__node *n;
	struct iop_job *job;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		n = iop__queue_pop(&pool->queue);
		if (!n) {
			if (atomic_load_explicit(&pool->shutdown,
						 memory_order_relaxed))
				break;
			pool->nidle++;
			pthread_cond_wait(&pool->work_cond, &pool->lock);
			pool->nidle--;
			if (pool->nwakeups > 0)
				pool->nwakeups--;
			continue;
		}
		job = iop__job_of(n);
		atomic_store_explicit(&job->state, IOP__RUNNING,
				      memory_order_relaxed);
		pthread_mutex_unlock(&pool->lock);

		job->result = iop__job_run(job);
		iop__complete(job);

		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static int check_options(const struct iop_options *o)
{
	size_t i;

	if (o->threads > IOP_THREADS_MAX || o->reserved0 != 0)
		return -EINVAL;
	if (o->stack_size != 0 && (o->stack_size < IOP__MIN_STACK ||
				   o->stack_size > IOP__MAX_STACK))
		return -EINVAL;
	for (i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
		if (o->reserved[i] != 0)
			return -EINVAL;
	return 0;
}

/*
 * Start the workers with every signal blocked, so that the program's
 * handlers run on its own threads only.  On failure the threads already
 * started are left running for the caller to stop.
 */
static int start_workers(struct iop_pool *pool, size_t stack_size)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int err;

	err = pthread_attr_init(&attr);
	if (err)
		return -err;
	err = pthread_attr_setstacksize(&attr, stack_size);
	if (err)
		goto out_attr;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; pool->nthreads < pool->threads_wanted; pool->nthreads++) {
		err = pthread_create(&pool->threads[pool->nthreads], &attr,
				     worker_main, pool);
		if (err)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
out_attr:
	pthread_attr_destroy(&attr);
	return -err;
}

/* Tell every worker to exit once the queue is empty, and join them. */
static void stop_workers(struct iop_pool *pool)
{
	unsigned i;

	pthread_mutex_lock(&pool->lock);
	atomic_store_explicit(&pool->shutdown, true, memory_order_relaxed);
	pthread_cond_broadcast(&pool->work_cond);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pool->nthreads = 0;
}

static int init_sync(struct iop_pool *pool)
{
	int err;

	err = pthread_mutex_init(&pool->lock, NULL);
	if (err)
		return -err;
	err = pthread_cond_init(&pool->work_cond, NULL);
	if (err)
		goto out_lock;
	err = pthread_cond_init(&pool->await_cond, NULL);
	if (err)
		goto out_work;
	return 0;
out_work:
	pthread_cond_destroy(&pool->work_cond);
out_lock:
	pthread_mutex_destroy(&pool->lock);
	return -err;
}

static void destroy_sync(struct iop_pool *pool)
{
	pthread_cond_destroy(&pool->await_cond);
	pthread_cond_destroy(&pool->work_cond);
	pthread_mutex_destroy(&pool->lock);
}

iop_pool *iop_pool_new(const struct iop_options *opts)
{
	static const struct iop_options defaults;
	struct iop_pool *pool;
	int err;

	if (!opts)
		opts = &defaults;
	err = check_options(opts);
	if (err)
		goto out;
	err = -ENOMEM;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		goto out;
	iop__queue_init(&pool->queue);
	iop__queue_init(&pool->pending);
	pool->threads_wanted = opts->threads ? opts->threads
					     : IOP__DEFAULT_THREADS;
	pool->threads = calloc(pool->threads_wanted, sizeof(pthread_t));
	if (!pool->threads)
		goto out_pool;
	err = init_sync(pool);
	if (err)
		goto out_threads;
	err = iop__notify_open(&pool->notify);
	if (err)
		goto out_sync;
	err = start_workers(pool, opts->stack_size ? opts->stack_size
						   : IOP__DEFAULT_STACK);
	if (err)
		goto out_workers;
	return pool;

out_workers:
	stop_workers(pool);
	iop__notify_close(&pool->notify);
out_sync:
	destroy_sync(pool);
out_threads:
	free(pool->threads);
out_pool:
	free(pool);
out:
	errno = -err;
	return NULL;
}

/*
 * Take every job still queued and end it with -ECANCELED: futures are
 * finished at once, callback jobs are returned as a chain, oldest first,
 * for the caller to run their callbacks.
 */
static struct iop__node *cancel_queued(struct iop_pool *pool)
{
	struct iop__queue cancelled;
	struct iop__node *n;
	struct iop_job *job;

	iop__queue_init(&cancelled);
	pthread_mutex_lock(&pool->lock);
	atomic_store_explicit(&pool->shutdown, true, memory_order_relaxed);
	while ((n = iop__queue_pop(&pool->queue))) {
		job = iop__job_of(n);
		if (job->req.done) {
			job->result = -ECANCELED;
			atomic_store_explicit(&job->state, IOP__DONE,
					      memory_order_relaxed);
			iop__queue_push(&cancelled, n);
		} else {
			iop__future_cancel_locked(job);
		}
	}
	pthread_mutex_unlock(&pool->lock);
	return cancelled.head;
}

/* Wait until no thread is left inside iop_await() on this pool. */
static void wait_awaiters(struct iop_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	while (pool->nawaiting > 0)
		pthread_cond_wait(&pool->await_cond, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}

void iop_pool_destroy(iop_pool *pool)
{
	struct iop__node *cancelled;

	if (!pool)
		return;
	if (iop__current == pool) {
		errno = EDEADLK;
		return;
	}
	atomic_store_explicit(&pool->polling, true, memory_order_relaxed);
	cancelled = cancel_queued(pool);
	stop_workers(pool);

	/* No worker is left: every finished job is on the done stack. */
	iop__poll_once(pool);
	iop__run_callbacks(pool, cancelled);

	wait_awaiters(pool);
	iop__job_free_all(pool);
	iop__notify_close(&pool->notify);
	destroy_sync(pool);
	free(pool->threads);
	free(pool);
}

int iop_pool_fd(const iop_pool *pool)
{
	if (!pool)
		return -EINVAL;
	return pool->notify.rfd;
}

/*
 * Take a free job for @req and append it to @q, or return NULL with
 * errno set.  The caller owns @q: it holds the lock, or @q is the polling
 * thread's pending list.
 */
static iop_job *enqueue(struct iop_pool *pool, struct iop__queue *q,
			const struct iop__req *req)
{
	struct iop_job *job;

	if (atomic_load_explicit(&pool->shutdown, memory_order_relaxed)) {
		errno = ESHUTDOWN;
		return NULL;
	}
	job = q == &pool->queue ? iop__job_alloc_locked(pool)
				: iop__job_alloc_polling(pool);
	if (!job) {
		errno = ENOMEM;
		return NULL;
	}
	job->req = *req;
	atomic_store_explicit(&job->state, IOP__QUEUED, memory_order_relaxed);
	iop__queue_push(q, &job->node);
	return job;
}

iop_job *iop__submit(struct iop_pool *pool, const struct iop__req *req)
{
	struct iop_job *job;
	int err;

	/* From inside a callback: no lock, handed over at the batch end. */
	if (iop__current == pool) {
		job = enqueue(pool, &pool->pending, req);
		if (job && ++pool->npending >= IOP__PENDING_MAX)
			iop__publish_pending(pool);
		return job;
	}
	pthread_mutex_lock(&pool->lock);
	job = enqueue(pool, &pool->queue, req);
	err = errno;
	if (job)
		wake_workers_locked(pool, 1);
	pthread_mutex_unlock(&pool->lock);
	if (!job)
		errno = err;
	return job;
}

/* Hand the jobs that callbacks submitted to the workers, in one step. */
void iop__publish_pending(struct iop_pool *pool)
{
	unsigned n = pool->npending;

	if (n == 0)
		return;
	pthread_mutex_lock(&pool->lock);
	iop__queue_move(&pool->queue, &pool->pending);
	wake_workers_locked(pool, n);
	pthread_mutex_unlock(&pool->lock);
	pool->npending = 0;
}
