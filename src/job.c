/*
 * Job memory and futures.
 *
 * Jobs are allocated in slabs and never returned to malloc before the pool
 * is destroyed; released jobs are reused.  Three free lists keep the hot
 * paths short:
 * - pool->cache, guarded by the pool lock, feeds submits from any thread
 *   (they hold the lock anyway to queue the job);
 * - pool->pcache belongs to the polling thread: callbacks release their
 *   jobs there and their own submits take from it, with no lock at all;
 * - pool->freed, a lock-free stack, takes jobs released elsewhere (futures
 *   awaited on other threads, the polling thread's surplus); whoever runs
 *   dry takes it whole.
 */
#include "iopool-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Allocate a slab and return its jobs as a chain.  Called with the lock. */
static struct iop__node *slab_new_locked(struct iop_pool *pool)
{
	struct iop__slab *slab;
	unsigned i;

	slab = calloc(1, sizeof(*slab));
	if (!slab)
		return NULL;
	slab->next = pool->slabs;
	pool->slabs = slab;
	for (i = 0; i < IOP__SLAB_JOBS; i++) {
		slab->jobs[i].pool = pool;
		slab->jobs[i].node.next = i + 1 < IOP__SLAB_JOBS ?
					  &slab->jobs[i + 1].node : NULL;
	}
	return &slab->jobs[0].node;
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
		pool->cache = slab_new_locked(pool);
	if (!pool->cache)
		return NULL;
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

void iop__job_release_polling(struct iop_pool *pool, struct iop_job *job)
{
	atomic_store_explicit(&job->state, IOP__FREE, memory_order_relaxed);
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

void iop__job_free_all(struct iop_pool *pool)
{
	struct iop__slab *slab, *next;

	for (slab = pool->slabs; slab; slab = next) {
		next = slab->next;
		free(slab);
	}
}

/* A future's result is in: wake whoever awaits it.  Takes the lock. */
void iop__future_finish(struct iop_job *job)
{
	struct iop_pool *pool = job->pool;

	pthread_mutex_lock(&pool->lock);
	atomic_store_explicit(&job->state, IOP__DONE, memory_order_relaxed);
	if (job->nwaiters > 0)
		pthread_cond_broadcast(&pool->await_cond);
	pthread_mutex_unlock(&pool->lock);
}

/* A queued future will never run: end it with -ECANCELED.  Needs the lock. */
void iop__future_cancel_locked(struct iop_job *job)
{
	job->result = -ECANCELED;
	atomic_store_explicit(&job->state, IOP__DONE, memory_order_relaxed);
	if (job->nwaiters > 0)
		pthread_cond_broadcast(&job->pool->await_cond);
}

static void misuse(const char *what)
{
	fprintf(stderr, "iopool: %s\n", what);
	abort();
}

ssize_t iop_await(iop_job *job)
{
	struct iop_pool *pool;
	ssize_t result;

	if (!job)
		return -EINVAL;
	if (atomic_load_explicit(&job->state, memory_order_relaxed) ==
	    IOP__FREE)
		misuse("iop_await: the job was already released "
		       "(awaited twice, or its callback has run)");
	if (job->req.done)
		return -EINVAL;
	pool = job->pool;
	/* A callback awaiting its own submit: hand it over first. */
	if (iop__current == pool)
		iop__publish_pending(pool);

	pthread_mutex_lock(&pool->lock);
	pool->nawaiting++;
	job->nwaiters++;
	while (atomic_load_explicit(&job->state, memory_order_relaxed) !=
	       IOP__DONE)
		pthread_cond_wait(&pool->await_cond, &pool->lock);
	job->nwaiters--;
	result = job->result;
	atomic_store_explicit(&job->state, IOP__FREE, memory_order_relaxed);
	job->node.next = pool->cache;
	pool->cache = &job->node;
	if (--pool->nawaiting == 0 &&
	    atomic_load_explicit(&pool->shutdown, memory_order_relaxed))
		pthread_cond_broadcast(&pool->await_cond);
	pthread_mutex_unlock(&pool->lock);
	return result;
}
