/*
 * Job memory and futures.
 *
 * Jobs live in slabs (mapped, aligned to their size, handed out in order)
 * that are unmapped only when the pool is destroyed; released jobs are
 * reused.  Three free lists keep the hot paths short:
 * - pool->cache, guarded by the pool lock, feeds submits from any thread
 *   (they hold the lock anyway to queue the job);
 * - pool->pcache belongs to the polling thread: callbacks release their
 *   jobs there and their own submits take from it, with no lock at all;
 * - pool->freed, a lock-free stack, takes jobs released elsewhere (futures
 *   awaited on other threads, the polling thread's surplus); whoever runs
 *   dry takes it whole.
 *
 * Then how a job ends without running (cancel, a broken chain, shutdown),
 * how held jobs are handed to the workers, and futures.
 */
#include "iopool-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

/*
 * Map a slab aligned to its size: map twice the size and give back what
 * lies outside the aligned part.  Its pages stay untouched (and cost no
 * resident memory) until its jobs are handed out.
 */
static struct iop__slab *slab_map(void)
{
	size_t size = IOP__SLAB_BYTES;
	char *p, *aligned;

	p = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	aligned = (char *)(((uintptr_t)p + size - 1) & ~(uintptr_t)(size - 1));
	if (aligned > p)
		munmap(p, (size_t)(aligned - p));
	munmap(aligned + size, (size_t)(p + size - aligned));
	return (struct iop__slab *)aligned;
}

/* A never used job: from the newest slab, or a new one.  Lock held. */
static struct iop_job *slab_take_locked(struct iop_pool *pool)
{
	struct iop__slab *slab = pool->slabs;

	if (!slab || slab->used == IOP__SLAB_JOBS) {
		slab = slab_map();
		if (!slab)
			return NULL;
		slab->pool = pool;
		slab->next = pool->slabs;
		pool->slabs = slab;
	}
	return iop__slab_job(slab, slab->used++);
}

static struct iop_job *take_first(struct iop__node **list)
{
	struct iop__node *n = *list;

	*list = n->next;
	return iop__job_of(n);
}

struct iop_job *iop__job_alloc_locked(struct iop_pool *pool)
{
	if (!pool->cache)
		pool->cache = iop__stack_take(&pool->freed);
	if (!pool->cache)
		return slab_take_locked(pool);
	return take_first(&pool->cache);
}

struct iop_job *iop__job_alloc_polling(struct iop_pool *pool)
{
	struct iop_job *job;

	if (!pool->pcache) {
		pool->pcache = iop__stack_take(&pool->freed);
		pool->npcache = 0;	/* unknown; only bounds the trim */
	}
	if (!pool->pcache) {
		pthread_mutex_lock(&pool->lock);
		job = iop__job_alloc_locked(pool);
		pthread_mutex_unlock(&pool->lock);
		return job;
	}
	if (pool->npcache > 0)
		pool->npcache--;
	return take_first(&pool->pcache);
}

struct iop__jobx *iop__jobx(struct iop_job *job)
{
	if (!job->x)
		job->x = calloc(1, sizeof(*job->x));
	return job->x;
}

/* Drop what a job owns and forget its links before it is reused. */
static void job_reset(struct iop_job *job)
{
	char *path = iop__req_path(&job->req);

	if (path) {
		free(path);
		job->req.u.path = NULL;
	}
	if (job->x) {
		free(job->x);
		job->x = NULL;
	}
	job->xflags = 0;
	atomic_store_explicit(&job->cancel, false, memory_order_relaxed);
	atomic_store_explicit(&job->state, IOP__FREE, memory_order_relaxed);
}

void iop__job_release_polling(struct iop_pool *pool, struct iop_job *job)
{
	job_reset(job);
	job->node.next = pool->pcache;
	pool->pcache = &job->node;
	pool->npcache++;
}

/* Give the polling thread's surplus back to the other submitters. */
void iop__job_trim_polling(struct iop_pool *pool)
{
	struct iop__node *first, *last;
	unsigned i;

	if (pool->npcache <= 2 * IOP__PCACHE_KEEP)
		return;
	last = pool->pcache;
	for (i = 1; i < IOP__PCACHE_KEEP; i++)
		last = last->next;
	first = last->next;
	last->next = NULL;
	pool->npcache = IOP__PCACHE_KEEP;
	for (last = first; last->next; last = last->next)
		;
	iop__stack_push_chain(&pool->freed, first, last);
}

void iop__job_release_locked(struct iop_pool *pool, struct iop_job *job)
{
	job_reset(job);
	job->node.next = pool->cache;
	pool->cache = &job->node;
}

/* Free all job memory, and the paths of futures nobody awaited. */
/*
 * End the members of @group that wait in a chain (their predecessor has
 * not ended) with -ECANCELED.  Such jobs are on no list, so this looks at
 * every job; group cancels are rare.
 */
void iop__cancel_waiting_locked(struct iop_pool *pool,
				const struct iop_group *group)
{
	struct iop__slab *slab;
	struct iop_job *job;
	unsigned i;

	for (slab = pool->slabs; slab; slab = slab->next)
		for (i = 0; i < slab->used; i++) {
			job = iop__slab_job(slab, i);
			/* WAITING first: only then is group stable. */
			if (atomic_load_explicit(&job->state,
						 memory_order_relaxed) ==
			    IOP__WAITING && iop__group_of(job) == group)
				iop__end_locked(job, -ECANCELED);
		}
}

void iop__job_free_all(struct iop_pool *pool)
{
	struct iop__slab *slab, *next;
	struct iop_job *job;
	unsigned i;

	for (slab = pool->slabs; slab; slab = next) {
		next = slab->next;
		for (i = 0; i < slab->used; i++) {
			job = iop__slab_job(slab, i);
			free(iop__req_path(&job->req));
			free(job->x);
		}
		munmap(slab, IOP__SLAB_BYTES);
	}
}

/*
 * @job has ended with its result set: hand it back.  A callback job goes
 * onto the completion stack for the poller; a future is marked DONE and
 * its awaiters woken.  After this, @job may be released at any moment by
 * the thread that takes it, so nothing may touch it afterwards (except a
 * future, while the lock is held).
 */
static void finish_locked(struct iop_job *job)
{
	if (job->req.done) {
		atomic_store_explicit(&job->state, IOP__DONE,
				      memory_order_relaxed);
		iop__push_done_locked(job);
		return;
	}
	if (iop__group_of(job))
		iop__group_member_ended_locked(job, job->result);
	atomic_store_explicit(&job->state, IOP__DONE, memory_order_relaxed);
	if (job->nwaiters > 0)
		pthread_cond_broadcast(&iop__job_pool(job)->await_cond);
}

/*
 * End @job with @result without running it, and every job linked after it
 * with -ECANCELED.  @job is on no list.  Called with the lock held.
 */
void iop__end_locked(struct iop_job *job, ssize_t result)
{
	struct iop_pool *pool = iop__job_pool(job);
	struct iop_job *prev = iop__chain_prev(job), *next;

	if (prev) {
		prev->x->chain_next = NULL;
		job->x->chain_prev = NULL;
	}
	for (; job; job = next) {
		next = iop__chain_next(job);
		if (next) {
			job->x->chain_next = NULL;
			next->x->chain_prev = NULL;
		}
		iop__dl_remove_locked(pool, job);
		iop__count(result == -ETIMEDOUT ? &pool->ntimed_out :
			   result == -ECANCELED ? &pool->ncancelled :
			   &pool->nfailed_unrun, 1);
		job->result = result;
		finish_locked(job);
		result = -ECANCELED;
	}
}

/*
 * A worker finished @job, which was linked: hand it back, then start its
 * successor or, if @job failed or came up short, end the rest of the chain.
 * Both under the lock, so the successor cannot finish (and its callback
 * cannot be taken) before @job is on the completion stack: callbacks of a
 * chain run in chain order.
 */
void iop__chain_advance_locked(struct iop_job *job)
{
	struct iop_pool *pool = iop__job_pool(job);
	struct iop_job *next = iop__chain_next(job);
	bool whole = next && iop__job_whole(job, job->result);

	if (next) {
		job->x->chain_next = NULL;
		next->x->chain_prev = NULL;
	}
	finish_locked(job);
	if (!next)
		return;
	if (whole && !iop__job_dead(next) &&
	    !atomic_load_explicit(&pool->shutdown, memory_order_relaxed)) {
		iop__queue_job_locked(pool, next);
		iop__wake_locked(pool, 1);
	} else {
		iop__end_locked(next, -ECANCELED);
	}
}

/*
 * Mark the held jobs that must end at hand-over: cancelled ones and every
 * job linked after them (after shutdown: all), walking each chain once
 * from its head.  The first marked job of each chain is the one to end;
 * ending it ends the rest.
 */
static void mark_doomed(struct iop__queue *held, bool down)
{
	struct iop__node *n;
	struct iop_job *job;
	bool doomed;

	for (n = held->head; n; n = n->next) {
		job = iop__job_of(n);
		if (iop__chain_prev(job))
			continue;	/* reached from its chain's head */
		for (doomed = false; job; job = iop__chain_next(job)) {
			if (!doomed && (down || iop__job_dead(job))) {
				doomed = true;
				job->xflags |= IOP__X_ENDHEAD;
			}
			if (doomed)
				job->xflags |= IOP__X_DOOMED;
		}
	}
}

/*
 * Hand the held jobs of @held (a batch, or the pending list) to the
 * workers: jobs linked after another wait for it, cancelled ones (and
 * their chains) end with -ECANCELED, and the rest are queued.  After
 * shutdown every one of them is cancelled.  Jobs with a deadline go on
 * the watchdog's list.  @t_queued (0 without timing) is when they become
 * visible to the workers; it takes the place of held_by, under the lock
 * that iop__held_here() reads it with.  Called with the lock held; the
 * caller wakes workers.
 */
void iop__handover_locked(struct iop_pool *pool, struct iop__queue *held,
			  int64_t t_queued)
{
	struct iop__queue heads;
	struct iop__node *n, *next;
	struct iop_job *job;

	mark_doomed(held, atomic_load_explicit(&pool->shutdown,
					       memory_order_relaxed));
	iop__queue_init(&heads);
	for (n = held->head; n; n = next) {
		next = n->next;
		job = iop__job_of(n);
		job->t_queued = t_queued;
		if (job->xflags & IOP__X_DOOMED) {
			if (job->xflags & IOP__X_ENDHEAD)
				iop__queue_push(&heads, n);
			job->xflags &= ~(IOP__X_DOOMED | IOP__X_ENDHEAD);
			continue;
		}
		if (job->xflags & IOP__X_DEADLINE)
			iop__dl_add_locked(pool, job);
		if (iop__chain_prev(job))
			atomic_store_explicit(&job->state, IOP__WAITING,
					      memory_order_relaxed);
		else
			iop__queue_job_locked(pool, job);
	}
	iop__queue_init(held);
	for (n = heads.head; n; n = next) {
		next = n->next;
		iop__end_locked(iop__job_of(n), -ECANCELED);
	}
}

/*
 * Whether @job is held in the calling thread's open batch.  Only a thread
 * with a batch open on the job's pool looks, and under the lock: held_by
 * shares its word with t_queued, which the holder's iop_batch_end() sets.
 */
bool iop__held_here(const struct iop_job *job)
{
	struct iop_pool *pool = iop__job_pool(job);
	bool held;

	if (iop__batch.pool != pool)
		return false;
	pthread_mutex_lock(&pool->lock);
	held = atomic_load_explicit(&job->state, memory_order_relaxed) ==
	       IOP__HELD && job->held_by == &iop__batch;
	pthread_mutex_unlock(&pool->lock);
	return held;
}

void iop__misuse(const char *what)
{
	fprintf(stderr, "iopool: %s\n", what);
	abort();
}

int iop_cancel(iop_job *job)
{
	struct iop_pool *pool;
	int ret = 0;

	if (!job)
		return -EINVAL;
	pool = iop__job_pool(job);
	if (iop__pool_forked(pool))
		return -EOWNERDEAD;
	pthread_mutex_lock(&pool->lock);
	switch (atomic_load_explicit(&job->state, memory_order_relaxed)) {
	case IOP__HELD:
	case IOP__PENDING:
		/* Ended at hand-over, by whoever holds it. */
		atomic_store_explicit(&job->cancel, true,
				      memory_order_relaxed);
		break;
	case IOP__QUEUED:
		iop__unqueue_locked(pool, job);
		/* fall through */
	case IOP__WAITING:
		iop__end_locked(job, -ECANCELED);
		break;
	case IOP__RUNNING:
		atomic_store_explicit(&job->cancel, true,
				      memory_order_relaxed);
		/* The rest of its chain has not started: it never will. */
		if (iop__chain_next(job))
			iop__end_locked(iop__chain_next(job), -ECANCELED);
		ret = -EBUSY;
		break;
	case IOP__DONE:
		ret = -EALREADY;
		break;
	default:
		pthread_mutex_unlock(&pool->lock);
		iop__misuse("iop_cancel: the job was already released");
	}
	pthread_mutex_unlock(&pool->lock);
	return ret;
}

int iop_cancel_requested(void)
{
	return iop__running && iop__job_dead(iop__running);
}

int iop_job_state(const iop_job *job)
{
	if (!job)
		return -EINVAL;
	switch (atomic_load_explicit(&job->state, memory_order_acquire)) {
	case IOP__RUNNING:
		return IOP_RUNNING;
	case IOP__DONE:
		return IOP_DONE;
	case IOP__FREE:
		iop__misuse("iop_job_state: the job was already released");
	}
	return IOP_QUEUED;
}

/* Checks common to both awaits; 0 if @job may be awaited. */
static int await_check(iop_job *job)
{
	if (!job)
		return -EINVAL;
	if (iop__pool_forked(iop__job_pool(job)))
		return -EOWNERDEAD;
	if (atomic_load_explicit(&job->state, memory_order_relaxed) ==
	    IOP__FREE)
		iop__misuse("iop_await: the job was already released "
			    "(awaited twice, or its callback has run)");
	if (job->req.done)
		return -EINVAL;
	if (iop__held_here(job))
		return -EDEADLK;
	/* A callback awaiting its own submit: hand it over first. */
	if (iop__current == iop__job_pool(job))
		iop__publish_pending(iop__job_pool(job), false);
	return 0;
}

/*
 * Wait on await_cond for a millisecond, or until @deadline (NULL: none)
 * if that comes first: then ETIMEDOUT, else 0.
 */
static int wait_a_little_locked(struct iop_pool *pool,
				const struct timespec *deadline)
{
	int64_t soon = iop__now_ns() + 1000000, end;
	struct timespec ts;

	if (deadline) {
		end = (int64_t)deadline->tv_sec * 1000000000 + deadline->tv_nsec;
		if (end <= soon)
			return pthread_cond_timedwait(&pool->await_cond,
						      &pool->lock, deadline);
	}
	ts.tv_sec = soon / 1000000000;
	ts.tv_nsec = soon % 1000000000;
	pthread_cond_timedwait(&pool->await_cond, &pool->lock, &ts);
	return 0;
}

/*
 * Wait for @job with the lock held, until @deadline (a CLOCK_MONOTONIC
 * time; NULL: no limit).  On success take its result and release it.
 */
static int await_locked(struct iop_job *job, const struct timespec *deadline,
			ssize_t *result)
{
	struct iop_pool *pool = iop__job_pool(job);
	int err = 0;

	pool->nawaiting++;
	job->nwaiters++;
	while (atomic_load_explicit(&job->state, memory_order_relaxed) !=
	       IOP__DONE && err != ETIMEDOUT) {
		/* No worker at all (none could start): try again, and look
		 * again in a millisecond rather than wait for nothing. */
		if (!iop__ensure_worker_locked(pool)) {
			err = wait_a_little_locked(pool, deadline);
			continue;
		}
		if (deadline)
			err = pthread_cond_timedwait(&pool->await_cond,
						     &pool->lock, deadline);
		else
			pthread_cond_wait(&pool->await_cond, &pool->lock);
	}
	job->nwaiters--;
	if (atomic_load_explicit(&job->state, memory_order_relaxed) ==
	    IOP__DONE) {
		*result = job->result;
		if (job->nwaiters == 0)
			iop__job_release_locked(pool, job);
		err = 0;
	}
	if (--pool->nawaiting == 0 &&
	    atomic_load_explicit(&pool->shutdown, memory_order_relaxed))
		pthread_cond_broadcast(&pool->await_cond);
	return -err;
}

/*
 * The future is the next job to run, no worker is running one, and it is
 * known to be short: run it here, now, rather than sleep until a worker
 * has (see iop__help()).
 */
static void help_future(struct iop_job *job)
{
	struct iop_pool *pool = iop__job_pool(job);
	bool take;

	if (pool->flags & IOP__NO_HELP)
		return;
	pthread_mutex_lock(&pool->lock);
	take = atomic_load_explicit(&job->state, memory_order_relaxed) ==
	       IOP__QUEUED && pool->nrunning == 0 &&
	       iop__take_small_locked(pool, job);
	pthread_mutex_unlock(&pool->lock);
	if (take)
		iop__run_helping(pool, job);
}

ssize_t iop_await(iop_job *job)
{
	struct iop_pool *pool;
	ssize_t result;
	int err = await_check(job);

	if (err)
		return err;
	help_future(job);
	pool = iop__job_pool(job);
	pthread_mutex_lock(&pool->lock);
	await_locked(job, NULL, &result);
	pthread_mutex_unlock(&pool->lock);
	return result;
}

int iop_await_timeout(iop_job *job, int timeout_ms, ssize_t *result)
{
	struct iop_pool *pool;
	struct timespec deadline;
	int err;

	if (!result || timeout_ms < -1)
		return -EINVAL;
	err = await_check(job);
	if (err)
		return err;
	if (timeout_ms < 0) {
		*result = iop_await(job);
		return 0;
	}
	if (timeout_ms > 0)
		help_future(job);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pool = iop__job_pool(job);
	pthread_mutex_lock(&pool->lock);
	err = await_locked(job, &deadline, result);
	pthread_mutex_unlock(&pool->lock);
	return err;
}
