/*
 * Batches, chains and groups: what is set up on jobs while they are held,
 * before any worker can see them.
 *
 * A batch is thread-local: the thread's submits to the batch's pool go to
 * iop__batch.held instead of the run queue, and iop_batch_end() (sched.c)
 * hands them over under one lock (iop__handover_locked() in job.c).  Since
 * a held job cannot have started, linking it or adding it to a group
 * cannot race with its end.
 *
 * A group counts its members that have not ended (live).  A callback
 * member ends when its callback has returned, a future when its result is
 * set.  Once the group is sealed and live drops to zero, its carrier (a
 * job that never runs) goes onto the completion stack, and the poller runs
 * the group's callback like any other.
 */
#include "iopool-int.h"

#include <errno.h>
#include <stdlib.h>

int iop_link(iop_job *first, iop_job *then)
{
	const struct iop_job *j;

	if (!first || !then || first == then || iop__job_pool(first) != iop__job_pool(then))
		return -EINVAL;
	if (iop__pool_forked(iop__job_pool(first)))
		return -EOWNERDEAD;
	if (!iop__held_here(first) || !iop__held_here(then) ||
	    iop__chain_next(first) || iop__chain_prev(then))
		return -EBUSY;
	/* @then must not already come before @first: no cycles. */
	for (j = iop__chain_prev(first); j; j = iop__chain_prev(j))
		if (j == then)
			return -EINVAL;
	if (!iop__jobx(first) || !iop__jobx(then))
		return -ENOMEM;
	/* Held jobs are touched by no other thread: no lock needed. */
	first->x->chain_next = then;
	/* Both end under the lock, onto the completion stack, so that the
	 * callbacks run in chain order (see iop__complete()). */
	first->xflags |= IOP__X_LINKED;
	then->xflags |= IOP__X_LINKED;
	then->x->chain_prev = first;
	return 0;
}

bool iop__job_dead(const struct iop_job *job)
{
	const struct iop_group *group = iop__group_of(job);

	return atomic_load_explicit(&job->cancel, memory_order_relaxed) ||
	       (group && atomic_load_explicit(&group->cancelled,
					      memory_order_relaxed));
}

/* The carrier's callback: run the group's own, then free the group. */
static void group_deliver(iop_job *carrier, ssize_t result, void *arg)
{
	struct iop_group *group = arg;

	(void)carrier;
	(void)result;
	group->done(group, &group->r, group->arg);
	free(group);
}

iop_group *iop_group_new(iop_pool *pool, iop_group_fn *done, void *arg)
{
	struct iop_group *group;
	struct iop_job *carrier;
	int err = ENOMEM;

	if (!pool || !done) {
		errno = EINVAL;
		return NULL;
	}
	if (iop__pool_forked(pool)) {
		errno = EOWNERDEAD;
		return NULL;
	}
	group = calloc(1, sizeof(*group));
	if (!group)
		goto out;
	group->pool = pool;
	group->done = done;
	group->arg = arg;
	pthread_mutex_lock(&pool->lock);
	if (atomic_load_explicit(&pool->shutdown, memory_order_relaxed)) {
		err = ESHUTDOWN;
		goto out_unlock;
	}
	carrier = iop__job_alloc_locked(pool);
	if (!carrier)
		goto out_unlock;
	carrier->req = (struct iop__req){
		.op = IOP__OP_GROUP,
		.done = group_deliver,
		.arg = group,
		.u.group = group,
	};
	atomic_store_explicit(&carrier->state, IOP__WAITING,
			      memory_order_relaxed);
	group->carrier = carrier;
	group->next = pool->groups;
	if (pool->groups)
		pool->groups->prev = group;
	pool->groups = group;
	pthread_mutex_unlock(&pool->lock);
	return group;

out_unlock:
	pthread_mutex_unlock(&pool->lock);
	free(group);
out:
	errno = err;
	return NULL;
}

int iop_group_add(iop_group *group, iop_job *job)
{
	struct iop_pool *pool;
	int ret = 0;

	if (!group || !job || group->pool != iop__job_pool(job))
		return -EINVAL;
	if (iop__pool_forked(group->pool))
		return -EOWNERDEAD;
	if (!iop__held_here(job) || iop__group_of(job))
		return -EBUSY;
	if (!iop__jobx(job))
		return -ENOMEM;
	pool = group->pool;
	pthread_mutex_lock(&pool->lock);
	if (group->sealed) {
		ret = -EINVAL;
	} else {
		group->live++;
		job->x->group = group;
	}
	pthread_mutex_unlock(&pool->lock);
	return ret;
}

/* Every member has ended and no more can come: its callback is due. */
static void deliver_locked(struct iop_group *group)
{
	struct iop_pool *pool = group->pool;

	if (group->prev)
		group->prev->next = group->next;
	else
		pool->groups = group->next;
	if (group->next)
		group->next->prev = group->prev;
	atomic_store_explicit(&group->carrier->state, IOP__DONE,
			      memory_order_relaxed);
	iop__push_done_locked(group->carrier);
}

int iop_group_seal(iop_group *group)
{
	struct iop_pool *pool;
	int ret = 0;

	if (!group)
		return -EINVAL;
	pool = group->pool;
	if (iop__pool_forked(pool))
		return -EOWNERDEAD;
	pthread_mutex_lock(&pool->lock);
	if (group->sealed) {
		ret = -EINVAL;
	} else {
		group->sealed = true;
		if (group->live == 0)
			deliver_locked(group);
	}
	pthread_mutex_unlock(&pool->lock);
	return ret;
}

/* Count how @job, a member, ended.  True if its group became due. */
bool iop__group_member_ended_locked(struct iop_job *job, ssize_t result)
{
	struct iop_group *group = iop__group_of(job);

	if (result >= 0)
		group->r.succeeded++;
	else if (result == -ECANCELED)
		group->r.cancelled++;
	else
		group->r.failed++;
	if (--group->live > 0 || !group->sealed)
		return false;
	deliver_locked(group);
	return true;
}

int iop_group_cancel(iop_group *group)
{
	struct iop_pool *pool;

	if (!group)
		return -EINVAL;
	pool = group->pool;
	if (iop__pool_forked(pool))
		return -EOWNERDEAD;
	pthread_mutex_lock(&pool->lock);
	/* Held and waiting members see the flag before they could start. */
	atomic_store_explicit(&group->cancelled, true, memory_order_relaxed);
	iop__cancel_queued_locked(pool, group);
	iop__cancel_waiting_locked(pool, group);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

/* Destroy: free the groups that were never sealed (or never ended). */
void iop__group_free_all(struct iop_pool *pool)
{
	struct iop_group *group, *next;

	for (group = pool->groups; group; group = next) {
		next = group->next;
		free(group);
	}
	pool->groups = NULL;
}
