/*
 * The completion side: workers hand finished jobs back here, and the
 * program's thread runs their callbacks in iop_poll() and iop_wait().
 */
#include "iopool-int.h"

#include <errno.h>
#include <time.h>

/* Called by a worker once @job->result is set. */
void iop__complete(struct iop_job *job)
{
	struct iop_pool *pool = job->pool;

	if (!job->req.done) {
		iop__future_finish(job);
		return;
	}
	atomic_store_explicit(&job->state, IOP__DONE, memory_order_relaxed);
	/* Only the push onto an empty stack needs to wake the poller: any
	 * later push lands in a batch that the poller has yet to take. */
	if (!iop__stack_push(&pool->done, &job->node))
		iop__notify_signal(&pool->notify);
}

/*
 * Run the callbacks of the chain @list, oldest first, on this thread, and
 * release each job when its callback returns.  Jobs the callbacks submit
 * are handed to the workers at the end, in one step.
 */
int iop__run_callbacks(struct iop_pool *pool, struct iop__node *list)
{
	struct iop_pool *outer = iop__current;
	struct iop__node *next;
	struct iop_job *job;
	int n = 0;

	if (!list)
		return 0;
	iop__current = pool;
	for (; list; list = next) {
		next = list->next;
		job = iop__job_of(list);
		job->req.done(job, job->result, job->req.arg);
		iop__job_release_polling(pool, job);
		n++;
	}
	iop__current = outer;
	iop__publish_pending(pool);
	iop__job_trim_polling(pool);
	return n;
}

/* Drain the doorbell, then take what has finished.  See pool.c. */
int iop__poll_once(struct iop_pool *pool)
{
	iop__notify_drain(&pool->notify);
	return iop__run_callbacks(pool,
		iop__chain_reverse(iop__stack_take(&pool->done)));
}

/* Become the polling thread of @pool, or say why not. */
static int enter_poll(struct iop_pool *pool)
{
	if (!pool)
		return -EINVAL;
	if (atomic_exchange_explicit(&pool->polling, true,
				     memory_order_acquire))
		return iop__current == pool ? -EDEADLK : -EBUSY;
	return 0;
}

static void leave_poll(struct iop_pool *pool)
{
	atomic_store_explicit(&pool->polling, false, memory_order_release);
}

int iop_poll(iop_pool *pool)
{
	int n = enter_poll(pool);

	if (n < 0)
		return n;
	n = iop__poll_once(pool);
	leave_poll(pool);
	return n;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int iop_wait(iop_pool *pool, int timeout_ms)
{
	int64_t deadline = 0, left;
	int n, ready;

	if (timeout_ms < -1)
		return -EINVAL;
	n = enter_poll(pool);
	if (n < 0)
		return n;
	if (timeout_ms > 0)
		deadline = now_ns() + (int64_t)timeout_ms * 1000000;
	for (;;) {
		n = iop__poll_once(pool);
		if (n != 0 || timeout_ms == 0)
			break;
		left = -1;
		if (timeout_ms > 0) {
			left = deadline - now_ns();
			if (left <= 0)
				break;
			left = (left + 999999) / 1000000;	/* round up */
		}
		ready = iop__notify_wait(&pool->notify, (int)left);
		if (ready < 0) {
			n = ready;
			break;
		}
	}
	leave_poll(pool);
	return n;
}
