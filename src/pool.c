/*
 * The pool: creation, options, shutdown and fork.
 *
 * The flow of a job:
 *
 *   submit (any thread; sched.c)
 *     -> take a free job and append it to the run queue (pool->runq, one
 *        FIFO per priority) under pool->lock; signal one idle worker if
 *        none is already on its way and no busy worker is expected to
 *        come free for it soon (the watchdog wakes one if that fails),
 *        and start a thread if the queue holds more jobs than idle
 *        threads can take (worker.c)
 *        (a callback's submits gather on pool->pending, and a batch's on
 *        the thread's iop__batch, with no lock, and are handed over in one
 *        step when the callback batch or the batch ends; in iop_wait(),
 *        in twos while a worker runs short jobs beside it)
 *     -> an O_DIRECT read with a callback skips the queue: io_submit()
 *        from the submitting thread puts it in the kernel, which rings the
 *        eventfd when the device answers; the polling thread collects it
 *        onto the completion stack (aio.c)
 *   worker (worker.c)
 *     -> pick the job under the lock (highest priority, with aging; a lane
 *        at its cap parks the job in the lane; a passed deadline ends it),
 *        mark it RUNNING, drop the lock, run it (ops.c)
 *     -> reads that wait for the device (they missed the page cache, or
 *        take long) go eight to a worker, woken one per eight queued: it
 *        asks the kernel to start them all (posix_fadvise WILLNEED), then
 *        reads them in order, so the device has them together and the
 *        worker mostly sleeps once for the eight
 *     -> reads bigger than 64 KiB that the page cache serves are copying:
 *        no more workers wake or start for them than there are CPUs, and
 *        one that ends such a read takes the next
 *   completion (complete.c)
 *     -> callback job: push it onto pool->done, a lock-free stack (a
 *        plain one that ends on the polling thread goes on that thread's
 *        own list, taken with the stack); the push that finds the stack
 *        empty writes the eventfd, so a burst of completions costs one
 *        write (while jobs that keep their CPUs busy run and more wait, a
 *        worker holds that write back until the queue runs low, so that
 *        iop_wait() wakes once for several; it sleeps no longer than 1 ms
 *        while it lets workers do so)
 *     -> future, or a job linked to a next one: end it under the lock,
 *        wake its iop_await(), queue the next job of the chain (job.c)
 *   iop_poll() / iop_wait() on the program's thread
 *     -> drain the eventfd FIRST, then take the whole stack at once,
 *        reverse it to completion order and run the callbacks with no lock
 *        held.  (Taken the other way round, a push landing between the two
 *        would lose its only wake-up.)  Each job goes back to a free list
 *        when its callback returns.
 *     -> iop_wait(), between rounds of callbacks, takes a batch of short
 *        jobs off the queue and runs them itself, as one of the pool's
 *        threads (iop__help()): short jobs its callbacks submit wake no
 *        worker unless they add up to more than a wake-up costs (one
 *        worker shares them) or the wait leaves them queued, so a closed
 *        loop of tiny jobs costs no wake-up at all; a worker sharing them
 *        that runs out while this thread runs a batch takes the batch's
 *        next ones, and looks for more, for a wake-up's worth of time,
 *        before it sleeps.
 *     -> iop_wait(), with no callback and no short job left to run,
 *        copies the next read that copies itself, as one of the threads
 *        copying, one per CPU (iop__help_copy()): a worker fewer copies,
 *        none wakes for the reads its callbacks submit, and none is put
 *        off its CPU for the callbacks.
 *
 * Each side makes at most one lock round trip per job: submit, and the
 * worker's pick.  The completion side is lock-free and taken in batches.
 * Job memory is reused through free lists; nothing is allocated per job
 * once the pool has warmed up.  A job that never runs (cancelled, timed
 * out, cut from its chain, or destroyed with the pool) still ends exactly
 * once, through the same completion paths.
 *
 * Locking: pool->lock guards the fields marked "lock" in struct iop_pool,
 * and no callback or work function ever runs under it.  stats_lock guards
 * the worker list for iop_pool_stats(), so that reading statistics never
 * holds up a worker; it is taken inside pool->lock, never the other way.
 * Condition variables are signalled with their mutex held, except on the
 * submit paths (iop__lock_waking()), which wake workers right after they
 * let go of the lock, so that a woken worker does not find it still taken
 * and sleep again at once.
 */
#include "iopool-int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

IOP__TLS struct iop_pool *iop__current;
IOP__TLS struct iop__batch iop__batch;
IOP__TLS struct iop_job *iop__running;
IOP__TLS struct iop_pool *iop__polling;

/*
 * Every pool of the process, for the fork handlers.  Lock order: the
 * registry lock, then each pool's lock, then its stats_lock.
 */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iop_pool *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/*
 * fork() with pools alive: before it, take every lock of every pool, so
 * that the child's copy of each is consistent (no worker was half way
 * through a queue operation); after it, release them.  In the child the
 * pools are marked forked: they refuse everything, since their threads do
 * not exist there and their jobs belong to the parent.
 */
static void atfork_prepare(void)
{
	struct iop_pool *pool;

	pthread_mutex_lock(&registry_lock);
	for (pool = registry; pool; pool = pool->reg_next) {
		pthread_mutex_lock(&pool->lock);
		pthread_mutex_lock(&pool->stats_lock);
	}
}

static void atfork_parent(void)
{
	struct iop_pool *pool;

	for (pool = registry; pool; pool = pool->reg_next) {
		pthread_mutex_unlock(&pool->stats_lock);
		pthread_mutex_unlock(&pool->lock);
	}
	pthread_mutex_unlock(&registry_lock);
}

static void atfork_child(void)
{
	struct iop_pool *pool;

	for (pool = registry; pool; pool = pool->reg_next) {
		atomic_store_explicit(&pool->forked, true,
				      memory_order_relaxed);
		pthread_mutex_unlock(&pool->stats_lock);
		pthread_mutex_unlock(&pool->lock);
	}
	pthread_mutex_unlock(&registry_lock);
}

static void atfork_register(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static void registry_add(struct iop_pool *pool)
{
	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&registry_lock);
	pool->reg_prev = NULL;
	pool->reg_next = registry;
	if (registry)
		registry->reg_prev = pool;
	registry = pool;
	pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(struct iop_pool *pool)
{
	pthread_mutex_lock(&registry_lock);
	if (pool->reg_prev)
		pool->reg_prev->reg_next = pool->reg_next;
	else
		registry = pool->reg_next;
	if (pool->reg_next)
		pool->reg_next->reg_prev = pool->reg_prev;
	pthread_mutex_unlock(&registry_lock);
}

bool iop__pool_forked(const struct iop_pool *pool)
{
	return atomic_load_explicit(&pool->forked, memory_order_relaxed);
}

static int check_options(const struct iop_options *o)
{
	size_t i;

	if (o->threads > IOP_THREADS_MAX || o->min_threads > IOP_THREADS_MAX)
		return -EINVAL;
	if (o->min_threads > (o->threads ? o->threads : IOP__DEFAULT_THREADS))
		return -EINVAL;
	if (o->stack_size != 0 && (o->stack_size < IOP__MIN_STACK ||
				   o->stack_size > IOP__MAX_STACK))
		return -EINVAL;
	if (o->overflow < IOP_OVERFLOW_FAIL || o->overflow > IOP_OVERFLOW_INLINE)
		return -EINVAL;
	if (o->flags & ~(IOP_POOL_INLINE | IOP_POOL_NO_TIMING |
			 IOP_POOL_WORKERS_ONLY | IOP_POOL_NO_AIO))
		return -EINVAL;
	if ((o->flags & IOP_POOL_INLINE) && (o->threads || o->min_threads))
		return -EINVAL;
	for (i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
		if (o->reserved[i] != 0)
			return -EINVAL;
	return 0;
}

static void apply_options(struct iop_pool *pool, const struct iop_options *o)
{
	long cpus;

	pool->max_threads = o->threads ? o->threads : IOP__DEFAULT_THREADS;
	pool->min_threads = o->min_threads;
	pool->stack_size = o->stack_size ? o->stack_size : IOP__DEFAULT_STACK;
	pool->idle_ns = (int64_t)(o->idle_timeout_ms ? o->idle_timeout_ms :
				  IOP__DEFAULT_IDLE_MS) * 1000000;
	pool->long_ns = (int64_t)(o->long_running_ms ? o->long_running_ms :
				  IOP__DEFAULT_LONG_MS) * 1000000;
	pool->max_queued = o->max_queued;
	pool->overflow = o->overflow;
	pool->overflow_ms = o->overflow_timeout_ms;
	pool->flags = o->flags;
	if (pool->flags & IOP_POOL_INLINE)
		pool->max_threads = 0;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	pool->ncpus = cpus > 0 ? (unsigned)cpus : 1;
}

/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
static int cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int err;

	err = pthread_condattr_init(&attr);
	if (err)
		return err;
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return err;
}

static int init_sync(struct iop_pool *pool)
{
	int err;

	err = pthread_mutex_init(&pool->lock, NULL);
	if (err)
		return -err;
	err = pthread_mutex_init(&pool->stats_lock, NULL);
	if (err)
		goto out_lock;
	err = cond_init_monotonic(&pool->work_cond);
	if (err)
		goto out_stats;
	err = cond_init_monotonic(&pool->await_cond);
	if (err)
		goto out_work;
	err = cond_init_monotonic(&pool->room_cond);
	if (err)
		goto out_await;
	err = cond_init_monotonic(&pool->dl_cond);
	if (err)
		goto out_room;
	err = pthread_cond_init(&pool->exit_cond, NULL);
	if (err)
		goto out_dl;
	return 0;
out_dl:
	pthread_cond_destroy(&pool->dl_cond);
out_room:
	pthread_cond_destroy(&pool->room_cond);
out_await:
	pthread_cond_destroy(&pool->await_cond);
out_work:
	pthread_cond_destroy(&pool->work_cond);
out_stats:
	pthread_mutex_destroy(&pool->stats_lock);
out_lock:
	pthread_mutex_destroy(&pool->lock);
	return -err;
}

static void destroy_sync(struct iop_pool *pool)
{
	pthread_cond_destroy(&pool->exit_cond);
	pthread_cond_destroy(&pool->dl_cond);
	pthread_cond_destroy(&pool->room_cond);
	pthread_cond_destroy(&pool->await_cond);
	pthread_cond_destroy(&pool->work_cond);
	pthread_mutex_destroy(&pool->stats_lock);
	pthread_mutex_destroy(&pool->lock);
}

/* Start the min_threads workers. */
static int start_min_threads(struct iop_pool *pool)
{
	int err = 0;

	pthread_mutex_lock(&pool->lock);
	while (!err && atomic_load_explicit(&pool->nthreads,
					    memory_order_relaxed) <
	       pool->min_threads)
		err = iop__spawn_locked(pool);
	pthread_mutex_unlock(&pool->lock);
	return err;
}

iop_pool *iop_pool_new(const struct iop_options *opts)
{
	static const struct iop_options defaults;
	struct iop_pool *pool;
	unsigned i;
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
	for (i = 0; i < IOP__LEVELS; i++)
		iop__queue_init(&pool->runq.level[i]);
	iop__queue_init(&pool->pending);
	iop__queue_init(&pool->own);
	pool->helper.pool = pool;
	apply_options(pool, opts);
	err = init_sync(pool);
	if (err)
		goto out_pool;
	err = iop__notify_open(&pool->notify);
	if (err)
		goto out_sync;
	err = start_min_threads(pool);
	if (err)
		goto out_workers;
	registry_add(pool);
	return pool;

out_workers:
	atomic_store_explicit(&pool->shutdown, true, memory_order_relaxed);
	iop__stop_workers(pool);
	iop__notify_close(&pool->notify);
out_sync:
	destroy_sync(pool);
out_pool:
	free(pool);
out:
	errno = -err;
	return NULL;
}

/* Refuse new submits and end every queued job with -ECANCELED. */
static void cancel_queued(struct iop_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	atomic_store_explicit(&pool->shutdown, true, memory_order_relaxed);
	iop__cancel_queued_locked(pool, NULL);
	pthread_cond_broadcast(&pool->room_cond);
	pthread_cond_signal(&pool->dl_cond);
	pthread_mutex_unlock(&pool->lock);
}

/* Wait until no thread is left inside iop_await() on this pool. */
static void wait_awaiters(struct iop_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	while (pool->nawaiting > 0)
		pthread_cond_wait(&pool->await_cond, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}

/* Free what is left of the pool; every thread of it is gone. */
static void free_pool(struct iop_pool *pool)
{
	iop__aio_free(pool);
	iop__group_free_all(pool);
	iop__job_free_all(pool);
	iop__notify_close(&pool->notify);
	free(pool);
}

/*
 * In a forked child: no thread of the pool exists, its locks and
 * condition variables may be in any state (glibc's pthread_cond_destroy()
 * could wait for waiters that are gone), and its jobs are the parent's.
 * Free the memory and close the descriptors, touch nothing else.
 */
static void destroy_forked(struct iop_pool *pool)
{
	pool->watchdog_started = false;
	iop__free_workers(pool);
	iop__sched_free_all(pool);
	free_pool(pool);
}

void iop_pool_destroy(iop_pool *pool)
{
	if (!pool)
		return;
	if (iop__current == pool) {
		errno = EDEADLK;
		return;
	}
	registry_remove(pool);
	if (iop__pool_forked(pool)) {
		destroy_forked(pool);
		return;
	}
	atomic_store_explicit(&pool->polling, true, memory_order_relaxed);
	cancel_queued(pool);
	iop__stop_workers(pool);
	iop__aio_finish(pool);

	/* No worker is left: every job has ended and every callback still
	 * due is on the completion stack. */
	while (iop__poll_once(pool, true) > 0)
		;

	wait_awaiters(pool);
	iop__sched_free_all(pool);
	destroy_sync(pool);
	free_pool(pool);
}

int iop_pool_fd(const iop_pool *pool)
{
	if (!pool)
		return -EINVAL;
	return pool->notify.rfd;
}
