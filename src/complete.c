/*
 * The completion side: workers hand finished jobs back here, and the
 * program's thread runs their callbacks in iop_poll() and iop_wait().
 */
#include "iopool-int.h"

#include <errno.h>
#include <time.h>

/*
 * Holding the doorbell.  A thread asleep in iop_wait() wakes for each ring,
 * and with jobs of a hundred microseconds or so that wake-up, once per
 * job, is a good part of the CPU the pool spends on them.  While the jobs
 * keep their CPUs busy (they do not block) and more wait in the queue, the
 * callbacks cannot give a worker anything to do sooner, and the wake-up
 * takes CPU from the jobs.  So a worker that ends such a job (not one of
 * a batch of short ones) may hold its ring back: until that no longer
 * holds when it takes its next job, or it has none (it rings then: the
 * callbacks are due to queue more).  Nothing is lost if it is slow to: it
 * may hold only while the thread in iop_wait() allows it (pool->hold_ok),
 * which then sleeps no longer than IOP__HOLD_NS and takes the stack when
 * it wakes, rung or not; before it stops allowing it, that thread rings
 * for any ring still held.  The two sides meet Dekker-style: a worker
 * counts itself in pool->nheld, then reads hold_ok; that thread clears
 * hold_ok, then reads nheld; one of them sees the other.  An event loop
 * that polls the descriptor itself never sets hold_ok, so every ring
 * reaches it at once.  Short jobs' callbacks never wait for a held ring:
 * a worker rings the one it holds before it runs a batch, and a batch
 * that starts while another worker holds one rings.
 *
 * held: the pool whose ring this thread (a worker) holds back.
 * may_hold: the job ending now is a worker's, allowed to hold its ring.
 */
static IOP__TLS struct iop_pool *held;
static IOP__TLS bool may_hold;

static unsigned queued(const struct iop_pool *pool)
{
	return (unsigned)atomic_load_explicit(&pool->nqueued,
					      memory_order_relaxed);
}

/*
 * The push found the stack empty: hold its ring back if allowed.  A worker
 * that holds one already (the poller took the stack meanwhile) goes
 * through the same steps, with an add of 0 as its count, so that its check
 * of hold_ok still meets the poller's.
 */
static bool hold_ring(struct iop_pool *pool)
{
	if (!may_hold || queued(pool) < IOP__HOLD_QUEUED ||
	    atomic_load_explicit(&pool->nsmall, memory_order_relaxed) > 0 ||
	    atomic_load_explicit(&pool->helper.started, memory_order_relaxed))
		return false;
	atomic_fetch_add(&pool->nheld, held ? 0 : 1);
	if (!atomic_load(&pool->hold_ok)) {
		held = NULL;
		atomic_fetch_sub(&pool->nheld, 1);
		return false;
	}
	held = pool;
	return true;
}

/* A worker goes on: ring the doorbell it holds back for @pool, unless it
 * may @keep holding it and the thread in iop_wait() still allows that. */
void iop__hold_check(struct iop_pool *pool, bool keep)
{
	if (held != pool || (keep && atomic_load(&pool->hold_ok)))
		return;
	held = NULL;
	atomic_fetch_sub(&pool->nheld, 1);
	iop__notify_signal(&pool->notify);
}

/*
 * Put a callback job on the completion stack; wake the poller if it was
 * empty.  Only the push onto an empty stack needs to: any later push lands
 * in a batch that the poller has yet to take.  A job ending on the polling
 * thread itself wakes no one: the poll takes the stack again, or rings
 * when it stops.  A plain one (@own: a read served at submit inside a
 * callback, a batch that iop_wait() runs) goes on that thread's own list
 * instead, which costs no atomic operation on the line the workers push
 * to and is taken with the stack; jobs that end under the lock (chains,
 * groups, cancels) keep to the stack, whose order is the order they ended
 * in, so that the callbacks of a chain run in chain order wherever its
 * jobs ran.
 */
static void push_done(struct iop_job *job, bool own)
{
	struct iop_pool *pool = iop__job_pool(job);

	if (iop__current == pool || iop__polling == pool) {
		if (own)
			iop__queue_push(&pool->own, &job->node);
		else
			iop__stack_push(&pool->done, &job->node);
		pool->self_pushed = true;
		return;
	}
	if (!iop__stack_push(&pool->done, &job->node) && !hold_ring(pool))
		iop__notify_signal(&pool->notify);
}

void iop__push_done_locked(struct iop_job *job)
{
	push_done(job, false);
}

/* Called by a worker once @job->result is set. */
void iop__complete(struct iop_job *job)
{
	struct iop_pool *pool = iop__job_pool(job);

	/* Jobs of a chain and futures end under the lock; see job.c.  A
	 * chain's last job too: on this thread's own list, its callback
	 * could run before that of the job before it, still on the stack. */
	if ((job->xflags & IOP__X_LINKED) || !job->req.done) {
		pthread_mutex_lock(&pool->lock);
		iop__chain_advance_locked(job);
		pthread_mutex_unlock(&pool->lock);
		return;
	}
	atomic_store_explicit(&job->state, IOP__DONE, memory_order_relaxed);
	push_done(job, true);
}

/* The same for a worker's job that may hold its ring back (see above). */
void iop__complete_holding(struct iop_job *job)
{
	may_hold = true;
	iop__complete(job);
	may_hold = false;
}

/* A member of a group has had its callback: count it.  True if that was
 * the last one, so the group's callback is now due. */
static bool member_ended(struct iop_pool *pool, struct iop_job *job)
{
	bool last;

	pthread_mutex_lock(&pool->lock);
	last = iop__group_member_ended_locked(job, job->result);
	pthread_mutex_unlock(&pool->lock);
	return last;
}

/*
 * Run the callbacks of pool->ready, oldest first, on this thread, and
 * release each job when its callback returns: at most @max of them (0: no
 * limit), and no new one once @deadline (CLOCK_MONOTONIC ns, 0: none) has
 * passed.  Jobs the callbacks submit are handed to the workers at the
 * end, in one step, or in twos while a worker runs short jobs beside
 * iop_wait() (IOP__PENDING_SHARE).  Returns how many callbacks ran;
 * *@again is set when a group's callback became due (it is on the
 * completion stack).
 */
static int run_ready(struct iop_pool *pool, unsigned max, int64_t deadline,
		     bool *again)
{
	struct iop_pool *outer = iop__current;
	struct iop__node *node;
	struct iop_job *job;
	unsigned n = 0;

	/* Short jobs left to iop_wait() get a worker before any callback
	 * runs that might wait for them. */
	if (pool->ready)
		iop__pay_wake(pool, false);
	iop__current = pool;
	while ((node = pool->ready) && (!max || n < max)) {
		if (deadline && n > 0 && iop__now_ns() >= deadline)
			break;
		pool->ready = node->next;
		job = iop__job_of(node);
		job->req.done(job, job->result, job->req.arg);
		if (job->x && job->x->group && member_ended(pool, job))
			*again = true;
		iop__job_release_polling(pool, job);
		n++;
		if (pool->npending >= IOP__PENDING_SHARE && pool->in_wait &&
		    atomic_load_explicit(&pool->nsmall, memory_order_relaxed))
			iop__publish_pending(pool, true);
	}
	iop__current = outer;
	iop__publish_pending(pool, true);
	iop__job_trim_polling(pool);
	return (int)n;
}

/* What has finished: this thread's own list, then the stack in
 * completion order. */
static struct iop__node *take_done(struct iop_pool *pool)
{
	struct iop__node *taken = iop__chain_reverse(
		iop__stack_take(&pool->done));

	if (!pool->own.head)
		return taken;
	pool->own.tail->next = taken;
	taken = pool->own.head;
	iop__queue_init(&pool->own);
	return taken;
}

/*
 * Drain the doorbell, then take what has finished (see pool.c), and run
 * callbacks within the budget.  When the last member of a group had its
 * callback, take once more, so that the group's callback runs in the same
 * call.  Completions left over keep the descriptor readable.
 */
static int poll_budget(struct iop_pool *pool, unsigned max, int64_t deadline,
		       bool force)
{
	unsigned rounds = 0;
	bool again;
	int n = 0;

	do {
		again = false;
		pool->self_pushed = false;
		/* Read the doorbell only to take the stack right after: a
		 * ring read while leftovers run would announce nothing. */
		if (!pool->ready) {
			/* The kernel rings for reads it completes (aio.c)
			 * without announcing it: read the doorbell, then
			 * collect them onto the stack. */
			if (iop__aio_busy(pool)) {
				iop__notify_drain(&pool->notify, true);
				iop__aio_collect(pool);
				pool->self_pushed = false;
			} else {
				iop__notify_drain(&pool->notify, force);
			}
			pool->ready = take_done(pool);
		}
		force = false;
		n += run_ready(pool, max ? max - (unsigned)n : 0, deadline,
			       &again);
		/* Callbacks ended jobs right here: run theirs too. */
		if (pool->self_pushed && ++rounds < IOP__SELF_ROUNDS &&
		    (!deadline || iop__now_ns() < deadline))
			again = true;
	} while (again && (!max || (unsigned)n < max));
	if (pool->ready || pool->self_pushed)
		iop__notify_signal(&pool->notify);
	return n;
}

/* @force: read the doorbell even if no write was announced (the caller
 * knows the descriptor is readable, or is about to block on it). */
int iop__poll_once(struct iop_pool *pool, bool force)
{
	return poll_budget(pool, 0, 0, force);
}

/* Become the polling thread of @pool, or say why not. */
static int enter_poll(struct iop_pool *pool)
{
	if (!pool)
		return -EINVAL;
	if (iop__pool_forked(pool))
		return -EOWNERDEAD;
	if (atomic_exchange_explicit(&pool->polling, true,
				     memory_order_acquire))
		return iop__current == pool ? -EDEADLK : -EBUSY;
	iop__polling = pool;
	return 0;
}

static void leave_poll(struct iop_pool *pool)
{
	iop__polling = NULL;
	atomic_store_explicit(&pool->polling, false, memory_order_release);
}

int iop_poll(iop_pool *pool)
{
	int n = enter_poll(pool);

	if (n < 0)
		return n;
	n = iop__poll_once(pool, true);
	leave_poll(pool);
	return n;
}

/*
 * Wait for the doorbell up to @timeout_ms (-1: no limit).  While a worker
 * runs a batch of short jobs, look every IOP__STUCK_NS whether it is stuck
 * in one, and if so hand the rest of its batch to other workers: nothing
 * else would notice while this thread sleeps.  While jobs wait in the
 * queue, sleep no longer than IOP__HOLD_NS, so that workers may hold their
 * rings back.
 */
static int wait_watching(struct iop_pool *pool, int timeout_ms)
{
	/* While jobs wait, workers may hold rings back. */
	bool hold = queued(pool) >= IOP__HOLD_QUEUED, watch;
	int64_t bound = -1;
	unsigned back;
	int ready;

	atomic_store(&pool->hold_ok, hold);
	if (hold || atomic_load(&pool->nheld) > 0)
		bound = IOP__HOLD_NS;
	/*
	 * Watch running batches, queued jobs that are likely short (this
	 * thread may run them itself when it looks), and jobs queued with
	 * no worker to run them.  A worker that starts a batch while this
	 * thread sleeps unwatched rings (run_batch_locked()): the two meet
	 * Dekker-style, as holding does.
	 */
	atomic_store(&pool->unwatched, true);
	watch = atomic_load(&pool->nsmall) > 0;
	if (!watch && queued(pool) > 0) {
		pthread_mutex_lock(&pool->lock);
		watch = iop__next_may_be_short_locked(pool) ||
			atomic_load_explicit(&pool->nthreads,
					     memory_order_relaxed) == 0;
		pthread_mutex_unlock(&pool->lock);
	}
	if (watch) {
		atomic_store_explicit(&pool->unwatched, false,
				      memory_order_relaxed);
		bound = IOP__STUCK_NS;
	}
	if (bound < 0 || (timeout_ms >= 0 &&
			  (int64_t)timeout_ms * 1000000 < bound))
		ready = iop__notify_wait(&pool->notify, timeout_ms);
	else
		ready = iop__notify_wait_ns(&pool->notify, bound);
	atomic_store_explicit(&pool->unwatched, false, memory_order_relaxed);
	if (ready != 0 || !watch)
		return ready;
	pthread_mutex_lock(&pool->lock);
	back = iop__unstick_locked(pool, iop__now_ns());
	iop__wake_locked(pool, back);
	iop__ensure_worker_locked(pool);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

/* Leaving iop_wait(): no more holding, and ring for what is held. */
static void stop_holding(struct iop_pool *pool)
{
	atomic_store(&pool->hold_ok, false);
	if (atomic_load(&pool->nheld) > 0)
		iop__notify_signal(&pool->notify);
}

int iop_wait(iop_pool *pool, int timeout_ms)
{
	int64_t deadline = 0, left;
	unsigned rounds = 0;
	bool force;
	int n, ran = 0, ready;

	if (timeout_ms < -1)
		return -EINVAL;
	n = enter_poll(pool);
	if (n < 0)
		return n;
	if (timeout_ms > 0)
		deadline = iop__now_ns() + (int64_t)timeout_ms * 1000000;
	pool->in_wait = timeout_ms != 0;
	for (force = false;;) {
		n = iop__poll_once(pool, force);
		ran += n;
		force = false;
		/*
		 * Run short jobs rather than sleep until a worker has, or
		 * wake one for them, or copy a read rather than sleep
		 * while workers copy: some rounds of that, then return.
		 */
		if (timeout_ms != 0 && rounds < IOP__SELF_ROUNDS &&
		    (!deadline || iop__now_ns() < deadline) &&
		    (iop__help(pool) || iop__help_copy(pool, deadline))) {
			rounds++;
			continue;
		}
		n = ran;
		if (n != 0 || timeout_ms == 0)
			break;
		left = -1;
		if (timeout_ms > 0) {
			left = deadline - iop__now_ns();
			if (left <= 0)
				break;
			left = (left + 999999) / 1000000;	/* round up */
		}
		iop__pay_wake(pool, true);
		ready = wait_watching(pool, (int)left);
		if (ready < 0) {
			n = ready;
			break;
		}
		force = ready > 0;
	}
	pool->in_wait = false;
	stop_holding(pool);
	iop__pay_wake(pool, true);
	leave_poll(pool);
	return n;
}

int iop_poll_budget(iop_pool *pool, unsigned max_callbacks, unsigned max_us)
{
	int64_t deadline = 0;
	int n = enter_poll(pool);

	if (n < 0)
		return n;
	if (max_us)
		deadline = iop__now_ns() + (int64_t)max_us * 1000;
	n = poll_budget(pool, max_callbacks, deadline, true);
	leave_poll(pool);
	return n;
}
