/*
 * Scheduling: the way from a submit call to the worker that starts the
 * job.  The submit paths (direct, held in a batch, from a callback), the
 * bounded queue and its overflow policies, the run queue with its
 * priority levels and aging, lanes with their caps, and deadlines with
 * the watchdog thread that enforces them.
 *
 * The run queue keeps one FIFO per priority and a bit mask of the levels
 * that have jobs, so the common case (every job at the default priority)
 * costs one mask test more than a plain FIFO.  A lane job that finds its
 * lane at the cap when a worker picks it moves to the lane's backlog, and
 * comes back to the run queue when a job of the lane ends (as many as the
 * lane has room for, in order).
 * Everything here runs with pool->lock held unless it says otherwise.
 */
#include "iopool-int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t iop__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void set_mask(struct iop__runq *rq, unsigned mask)
{
	rq->mask = mask;
	atomic_store_explicit(&rq->pub, mask, memory_order_relaxed);
}

static unsigned level_of(const struct iop_job *job)
{
	return (unsigned)(job->prio - IOP_PRIO_MIN);
}

/* Queue @job at the end of its level, or at the front (@front). */
static void queue_at_locked(struct iop_pool *pool, struct iop_job *job,
			    bool front)
{
	unsigned lvl = level_of(job);

	atomic_store_explicit(&job->state, IOP__QUEUED, memory_order_relaxed);
	if (front)
		iop__queue_push_front(&pool->runq.level[lvl], &job->node);
	else
		iop__queue_push(&pool->runq.level[lvl], &job->node);
	set_mask(&pool->runq, pool->runq.mask | 1u << lvl);
	iop__count(&pool->nqueued, 1);
}

void iop__queue_job_locked(struct iop_pool *pool, struct iop_job *job)
{
	queue_at_locked(pool, job, false);
}

/* A job left the queue: maybe a blocked submit has room now. */
static void dequeued_locked(struct iop_pool *pool)
{
	iop__count(&pool->nqueued, (uint64_t)-1);
	if (pool->nblocked > 0)
		pthread_cond_signal(&pool->room_cond);
}

static void level_remove(struct iop__runq *rq, unsigned lvl,
			 struct iop__node *n)
{
	iop__queue_remove(&rq->level[lvl], n);
	if (iop__queue_empty(&rq->level[lvl]))
		set_mask(rq, rq->mask & ~(1u << lvl));
}

/* Put @job, taken by a worker and not run, back at the front of its
 * level.  Lock held; the caller wakes a worker. */
void iop__requeue_front_locked(struct iop_pool *pool, struct iop_job *job)
{
	queue_at_locked(pool, job, true);
}

/* The queue's oldest job has waited long enough to wake a worker for,
 * whatever the estimates say. */
static bool stale_locked(const struct iop_pool *pool, int64_t now)
{
	const struct iop__runq *rq = &pool->runq;
	const struct iop_job *head;
	unsigned lvl;

	if (!rq->mask || (pool->flags & IOP_POOL_NO_TIMING))
		return false;
	lvl = 31 - (unsigned)__builtin_clz(rq->mask);
	head = iop__job_of(rq->level[lvl].head);
	return now - head->t_queued > 4 * IOP__ABSORB_NS;
}

static int start_watchdog_locked(struct iop_pool *pool);

/*
 * Jobs are about to be left to busy workers: have the watchdog look at
 * the queue in a while, and wake workers then for jobs that waited too
 * long, whoever else is around.  @now is the time, or 0 to read the
 * clock only if the check is not armed yet.  False if it cannot run.
 */
static bool arm_stale_check_locked(struct iop_pool *pool, int64_t now)
{
	if (pool->stale_check)
		return true;
	if (start_watchdog_locked(pool) != 0)
		return false;
	pool->stale_check = (now ? now : iop__now_ns()) + 2 * IOP__ABSORB_NS;
	pthread_cond_signal(&pool->dl_cond);
	return true;
}

/*
 * How many of @n jobs just queued (plain ones like @first, not short)
 * busy workers will take within IOP__ABSORB_NS, after the jobs already
 * queued: those need no worker woken.  A worker running a job expected to
 * take d ns frees up IOP__ABSORB_NS / d times in that span on average; a
 * worker whose job has run past its estimate by more than four times that
 * counts as not coming back, and once the oldest queued job has waited
 * that long, nothing is left to busy workers.  With fewer than
 * IOP__ABSORB_BUSY workers busy the span shrinks in proportion.
 */
static unsigned absorbed_locked(struct iop_pool *pool,
				const struct iop_job *first, unsigned n)
{
	uint64_t ahead = atomic_load_explicit(&pool->nqueued,
					      memory_order_relaxed);
	const struct iop__worker *w;
	uint64_t soon = 0;
	int64_t now, due, start, span = IOP__ABSORB_NS;

	if (first->xflags || pool->nrunning == 0 ||
	    (pool->flags & IOP_POOL_NO_TIMING))
		return 0;
	if (pool->nrunning < IOP__ABSORB_BUSY)
		span = span * pool->nrunning / IOP__ABSORB_BUSY;
	now = iop__now_ns();
	if (stale_locked(pool, now))
		return 0;
	for (w = pool->workers; w; w = w->next) {
		due = atomic_load_explicit(&w->due, memory_order_relaxed);
		start = atomic_load_explicit(&w->started,
					     memory_order_relaxed);
		if (due <= start || start <= 0 ||
		    now - due > 4 * IOP__ABSORB_NS)
			continue;
		soon += ((uint64_t)span << 16) / (uint64_t)(due - start);
	}
	soon >>= 16;
	if (soon <= ahead || !arm_stale_check_locked(pool, now))
		return 0;
	return soon - ahead < n ? (unsigned)(soon - ahead) : n;
}

/*
 * For @n reads that wait for the device, just queued at the only
 * priority level with jobs: one worker per IOP__READ_BATCH queued, since
 * each takes that many from the front (iop__device_read()), and at least
 * one if none is on its way.
 */
static unsigned device_wakes_locked(struct iop_pool *pool, unsigned n)
{
	uint64_t ahead = atomic_load_explicit(&pool->nqueued,
					      memory_order_relaxed);
	unsigned wake;

	wake = (unsigned)((ahead + n + IOP__READ_BATCH - 1) / IOP__READ_BATCH -
			  (ahead + IOP__READ_BATCH - 1) / IOP__READ_BATCH);
	if (wake == 0 && !iop__worker_coming_locked(pool))
		wake = 1;
	/* If the worker they are left to is stuck in one, the watchdog
	 * wakes another. */
	if (wake == 0 && !arm_stale_check_locked(pool, 0))
		wake = 1;
	return wake;
}

/* Workers that may start reads that copy now, one per CPU: those not
 * running one already and not on their way to. */
static unsigned copy_room_locked(const struct iop_pool *pool)
{
	unsigned busy = pool->ncopying + pool->nwakeups;

	return busy < pool->ncpus ? pool->ncpus - busy : 0;
}

/*
 * How many workers to wake for @n jobs just queued, @first among them:
 * one per IOP__READ_BATCH for reads that wait for the device; for reads
 * that copy, no more than there are CPUs without one (a worker that ends
 * one takes the next); none if they are short and a worker running
 * short jobs will come back for them, one if they are short (it takes
 * them in batches), else @n less those that busy workers will take soon
 * (absorbed_locked()).
 */
unsigned iop__wakes_for_locked(struct iop_pool *pool,
			       const struct iop_job *first, unsigned n)
{
	unsigned back;

	if (n == 0)
		return 0;
	if (iop__device_read(pool, first) &&
	    (pool->runq.mask | 1u << level_of(first)) == 1u << level_of(first))
		return device_wakes_locked(pool, n);
	if (iop__copy_read(pool, first)) {
		n -= absorbed_locked(pool, first, n);
		back = copy_room_locked(pool);
		/* Left to workers running reads; if those are stuck, the
		 * watchdog wakes others. */
		if (back < n && !arm_stale_check_locked(pool, 0))
			back = n;
		return n < back ? n : back;
	}
	if (first->xflags || !iop__small(pool, first))
		return n - absorbed_locked(pool, first, n);
	if (pool->nsmall == 0)
		return 1;
	/* Unless a worker running short jobs is stuck in one. */
	back = iop__unstick_locked(pool, iop__now_ns());
	return back ? n + back : 0;
}

/* Take @job, QUEUED, off the run queue or its lane's backlog. */
void iop__unqueue_locked(struct iop_pool *pool, struct iop_job *job)
{
	if (job->xflags & IOP__X_BACKLOG) {
		iop__queue_remove(&job->x->lane->backlog, &job->node);
		job->xflags &= ~IOP__X_BACKLOG;
	} else {
		level_remove(&pool->runq, level_of(job), &job->node);
		if (job->xflags & IOP__X_READMIT) {
			job->xflags &= ~IOP__X_READMIT;
			job->x->lane->readmitted--;
		}
	}
	dequeued_locked(pool);
}

/*
 * The level to start from: the highest with jobs, unless a lower one has
 * been passed over IOP__AGE_SKIPS times, which then gets its turn.
 */
static unsigned peek_level(const struct iop__runq *rq)
{
	unsigned top = 31 - (unsigned)__builtin_clz(rq->mask), i;

	if (!(rq->mask & ((1u << top) - 1)))
		return top;		/* one level with jobs: no aging */
	for (i = 0; i < top; i++)
		if ((rq->mask >> i & 1) && rq->skips[i] >= IOP__AGE_SKIPS)
			return i;
	return top;
}

/* peek_level(), and every level below the one chosen that has jobs
 * counts one more pass. */
static unsigned pick_level(struct iop__runq *rq)
{
	unsigned top = 31 - (unsigned)__builtin_clz(rq->mask);
	unsigned lvl = peek_level(rq), i;

	if (lvl == top && !(rq->mask & ((1u << top) - 1)))
		return top;
	for (i = 0; i < lvl; i++)
		if (rq->mask >> i & 1)
			rq->skips[i]++;
	for (i = lvl + 1; i < top; i++)
		if (rq->mask >> i & 1)
			rq->skips[i]++;
	rq->skips[lvl] = 0;
	return lvl;
}

static void readmit_locked(struct iop_pool *pool, struct iop_lane *lane);

/*
 * Whether a worker may start @job, just popped: not if its deadline has
 * passed (it ends with -ETIMEDOUT) or its lane is at the cap (it waits in
 * the lane's backlog, still queued).
 */
static bool admit_locked(struct iop_pool *pool, struct iop_job *job,
			 int64_t *now)
{
	struct iop_lane *lane = job->x->lane;
	bool readmitted = job->xflags & IOP__X_READMIT;

	/* Back from the lane's backlog: its place there is used up. */
	if (readmitted) {
		job->xflags &= ~IOP__X_READMIT;
		lane->readmitted--;
	}
	if (job->xflags & IOP__X_DEADLINE) {
		if (*now == 0)
			*now = iop__now_ns();
		if (*now >= job->x->deadline) {
			dequeued_locked(pool);
			iop__end_locked(job, -ETIMEDOUT);
			if (readmitted)
				readmit_locked(pool, lane);
			return false;
		}
	}
	if (job->xflags & IOP__X_LANE) {
		if (lane->running >= lane->cap) {
			/* A readmitted job goes back ahead of the others. */
			job->xflags |= IOP__X_BACKLOG;
			if (readmitted)
				iop__queue_push_front(&lane->backlog,
						      &job->node);
			else
				iop__queue_push(&lane->backlog, &job->node);
			return false;
		}
		lane->running++;
	}
	iop__dl_remove_locked(pool, job);
	return true;
}

/*
 * Take the next job a worker (or an inline runner) may start, or NULL.
 * @now is the caller's idea of the time, 0 if it has none; it is read
 * only for jobs with a deadline.
 */
struct iop_job *iop__pick_locked(struct iop_pool *pool, int64_t *now)
{
	struct iop__runq *rq = &pool->runq;
	struct iop__node *n;
	struct iop_job *job;
	unsigned lvl;

	while (rq->mask) {
		lvl = pick_level(rq);
		n = rq->level[lvl].head;
		level_remove(rq, lvl, n);
		job = iop__job_of(n);
		if (job->xflags & (IOP__X_DEADLINE | IOP__X_LANE) &&
		    !admit_locked(pool, job, now))
			continue;
		dequeued_locked(pool);
		return job;
	}
	return NULL;
}

/*
 * Move jobs from @lane's backlog back to the run queue, as many as the
 * lane has room for, oldest first, to the back of their levels (behind
 * the lane's readmitted jobs, so the lane keeps its order).
 */
static void readmit_locked(struct iop_pool *pool, struct iop_lane *lane)
{
	struct iop__node *node;
	struct iop_job *job;
	unsigned moved = 0, lvl;

	while (lane->running + lane->readmitted < lane->cap &&
	       (node = iop__queue_pop(&lane->backlog))) {
		job = iop__job_of(node);
		job->xflags = (job->xflags & ~IOP__X_BACKLOG) | IOP__X_READMIT;
		lane->readmitted++;
		lvl = level_of(job);
		iop__queue_push(&pool->runq.level[lvl], node);
		set_mask(&pool->runq, pool->runq.mask | 1u << lvl);
		moved++;
	}
	if (moved)
		iop__wake_locked(pool, moved);
}

/* A job of @lane has ended: its slot goes to the lane's next job. */
void iop__lane_release_locked(struct iop_pool *pool, struct iop_lane *lane)
{
	lane->running--;
	readmit_locked(pool, lane);
}

/*
 * End every queued job (of @group, or all when @group is NULL) with
 * -ECANCELED: the run queue and every lane's backlog.
 */
void iop__cancel_queued_locked(struct iop_pool *pool,
			       const struct iop_group *group)
{
	iop__end_queued_locked(pool, group, -ECANCELED);
}

/* The same with any @result (and after it, -ECANCELED for their chains). */
void iop__end_queued_locked(struct iop_pool *pool,
			    const struct iop_group *group, ssize_t result)
{
	struct iop__node *n, *next;
	struct iop_lane *lane;
	struct iop_job *job;
	unsigned lvl;

	for (lvl = 0; lvl < IOP__LEVELS; lvl++)
		for (n = pool->runq.level[lvl].head; n; n = next) {
			next = n->next;
			job = iop__job_of(n);
			if (group && iop__group_of(job) != group)
				continue;
			iop__unqueue_locked(pool, job);
			iop__end_locked(job, result);
		}
	for (lane = pool->lanes; lane; lane = lane->next)
		for (n = lane->backlog.head; n; n = next) {
			next = n->next;
			job = iop__job_of(n);
			if (group && iop__group_of(job) != group)
				continue;
			iop__unqueue_locked(pool, job);
			iop__end_locked(job, result);
		}
}

/* ---- How long jobs take. ---- */

/*
 * The kind of a job, for its running-time estimate: the function of a
 * call, or the op and descriptor of anything else.
 */
uint64_t iop__job_kind(const struct iop_job *job)
{
	if (job->req.op == IOP__OP_CALL)
		return (uint64_t)(uintptr_t)job->req.u.call.fn;
	return (uint64_t)(unsigned)job->req.fd << 8 | job->req.op;
}

/*
 * Each slot holds one word: a 40-bit tag of the kind's hash and 24 bits
 * of running time in units of 16 ns (up to about 268 ms), so that readers
 * and writers on any thread never see half an update.
 */
#define EST_UNIT_SHIFT	4
#define EST_MAX		((1u << 24) - 1)

static uint64_t kind_hash(uint64_t kind)
{
	return (kind ^ kind >> 29) * 0x9E3779B97F4A7C15ull;
}

/* The running time expected for @kind, or -1 when it is not known. */
int64_t iop__estimate(const struct iop_pool *pool, uint64_t kind)
{
	uint64_t h = kind_hash(kind);
	uint64_t e = atomic_load_explicit(&pool->est[h >> 58],
					  memory_order_relaxed);

	if (e == 0 || e >> 24 != (h >> 24 & 0xFFFFFFFFFFull))
		return -1;
	return (int64_t)(e & EST_MAX) << EST_UNIT_SHIFT;
}

/* A job of @kind ran for @ns: move the estimate towards it, quickly up
 * and slowly down, so that one slow run is not forgotten at once. */
void iop__estimate_add(struct iop_pool *pool, uint64_t kind, int64_t ns)
{
	uint64_t h = kind_hash(kind), units;
	int64_t old = iop__estimate(pool, kind);

	if (ns < 0)
		ns = 0;
	if (old >= 0)
		ns = ns > old ? (old + ns) / 2 : (7 * old + ns) / 8;
	units = (uint64_t)ns >> EST_UNIT_SHIFT;
	if (units > EST_MAX)
		units = EST_MAX;
	atomic_store_explicit(&pool->est[h >> 58],
			      (h >> 24 & 0xFFFFFFFFFFull) << 24 | units | !units,
			      memory_order_relaxed);
}

/* @job is known to be short: cheaper to run than to wake a thread for. */
bool iop__small(const struct iop_pool *pool, const struct iop_job *job)
{
	int64_t est = iop__estimate(pool, iop__job_kind(job));

	return est >= 0 && est < IOP__SMALL_NS;
}

/*
 * The job a worker would take next, if it is a plain one known to be
 * short (@copy false) or a read that copies (@copy true), and @want
 * unless that is NULL, taken off the queue; else NULL.  For a worker
 * filling a batch, and for a thread that would otherwise sleep until a
 * worker woke up to run it: taking only the next job keeps the queue's
 * order.
 */
static struct iop_job *take_head_locked(struct iop_pool *pool,
					const struct iop_job *want, bool copy)
{
	struct iop__runq *rq = &pool->runq;
	unsigned lvl;
	struct iop_job *job;

	if (!rq->mask)
		return NULL;
	lvl = peek_level(rq);
	/* Batches only where one priority level has jobs: then they start
	 * in queue order and no other level is passed over. */
	if (!want && rq->mask != 1u << lvl)
		return NULL;
	job = iop__job_of(rq->level[lvl].head);
	if ((want && job != want) || job->xflags ||
	    !(copy ? iop__copy_read(pool, job) : iop__small(pool, job)))
		return NULL;
	pick_level(rq);			/* the same level, counted */
	level_remove(rq, lvl, &job->node);
	dequeued_locked(pool);
	atomic_store_explicit(&job->state, IOP__RUNNING, memory_order_relaxed);
	return job;
}

struct iop_job *iop__take_small_locked(struct iop_pool *pool,
				       const struct iop_job *want)
{
	return take_head_locked(pool, want, false);
}

/*
 * The next job, if it is a plain read that copies (iop__copy_read()) at
 * the only priority level with jobs, and such reads have taken no more
 * than @budget ns, taken off the queue; else NULL.
 */
struct iop_job *iop__take_copy_locked(struct iop_pool *pool, int64_t budget)
{
	const struct iop__runq *rq = &pool->runq;
	int64_t est;

	if (!rq->mask)
		return NULL;
	est = iop__estimate(pool, iop__job_kind(iop__job_of(
					  rq->level[peek_level(rq)].head)));
	if (est <= 0 || est > budget)
		return NULL;
	return take_head_locked(pool, NULL, true);
}

/*
 * The job a worker would take next may be short, for all the pool knows
 * (a short one, or one of a kind not timed yet): a thread may soon run it
 * in a batch, the polling thread among them.  False when no job waits in
 * the run queue.
 */
bool iop__next_may_be_short_locked(const struct iop_pool *pool)
{
	const struct iop__runq *rq = &pool->runq;
	const struct iop_job *job;

	if (!rq->mask)
		return false;
	job = iop__job_of(rq->level[peek_level(rq)].head);
	return iop__estimate(pool, iop__job_kind(job)) < IOP__SMALL_NS;
}

/* Whether @job belongs in a batch of @kind (see below). */
static bool batch_member(struct iop_pool *pool, const struct iop_job *job,
			 uint64_t kind)
{
	if (kind == IOP__KIND_READS)
		return iop__device_read(pool, job);
	return !job->xflags && iop__job_kind(job) == kind;
}

/*
 * For a batch: take up to @max jobs of @kind off the head of the queue in
 * one step, as long as they are plain ones at the only priority level
 * with jobs: the ones iop__take_small_locked() would take one by one, or
 * with IOP__KIND_READS, reads that wait for the device, of any
 * descriptor.  Returns how many it put in @out.
 */
unsigned iop__take_run_locked(struct iop_pool *pool, uint64_t kind,
			      struct iop_job **out, unsigned max)
{
	struct iop__runq *rq = &pool->runq;
	struct iop__queue *q;
	struct iop__node *n;
	struct iop_job *job;
	unsigned lvl, k = 0;

	if (!rq->mask || (rq->mask & (rq->mask - 1)))
		return 0;
	lvl = (unsigned)__builtin_ctz(rq->mask);
	q = &rq->level[lvl];
	for (n = q->head; n && k < max; n = n->next) {
		job = iop__job_of(n);
		if (!batch_member(pool, job, kind))
			break;
		atomic_store_explicit(&job->state, IOP__RUNNING,
				      memory_order_relaxed);
		out[k++] = job;
	}
	if (k == 0)
		return 0;
	q->head = n;
	if (n) {
		n->prev = NULL;
	} else {
		q->tail = NULL;
		set_mask(rq, rq->mask & ~(1u << lvl));
	}
	iop__count(&pool->nqueued, -(uint64_t)k);
	if (pool->nblocked > 0)
		pthread_cond_broadcast(&pool->room_cond);
	return k;
}

/* ---- Submitting. ---- */

/*
 * Take a free job for @req, in @state, and append it to @q, or return NULL
 * with errno set.  The caller owns @q: it holds the lock (@locked), or @q
 * belongs to the calling thread (a batch, the poller's pending list).
 */
static iop_job *enqueue(struct iop_pool *pool, struct iop__queue *q,
			const struct iop__req *req, enum iop__state state,
			bool locked)
{
	struct iop_job *job;

	if (atomic_load_explicit(&pool->shutdown, memory_order_relaxed)) {
		errno = ESHUTDOWN;
		return NULL;
	}
	if (locked) {
		job = iop__job_alloc_locked(pool);
	} else if (iop__current == pool) {
		job = iop__job_alloc_polling(pool);
	} else {
		pthread_mutex_lock(&pool->lock);
		job = iop__job_alloc_locked(pool);
		pthread_mutex_unlock(&pool->lock);
	}
	if (!job) {
		errno = ENOMEM;
		return NULL;
	}
	job->req = *req;
	job->prio = IOP_PRIO_DEFAULT;
	atomic_store_explicit(&job->state, state, memory_order_relaxed);
	if (q)
		iop__queue_push(q, &job->node);
	return job;
}

static bool timing(const struct iop_pool *pool)
{
	return !(pool->flags & IOP_POOL_NO_TIMING);
}

/* After jobs were handed over: an inline pool runs them now. */
static void after_handover(struct iop_pool *pool)
{
	if (pool->flags & IOP_POOL_INLINE)
		iop__drain_inline(pool);
}

/* The queue is full for a submit that would add @extra more jobs. */
static bool full(struct iop_pool *pool, unsigned extra)
{
	return pool->max_queued &&
	       atomic_load_explicit(&pool->nqueued, memory_order_relaxed) +
	       extra >= pool->max_queued;
}

/* IOP_OVERFLOW_BLOCK: wait until there is room.  False on timeout. */
static bool wait_room(struct iop_pool *pool, unsigned extra)
{
	struct timespec ts;
	int64_t deadline = 0;
	bool ok;

	if (extra >= pool->max_queued)
		return false;		/* it never will be */
	if (pool->overflow_ms) {
		deadline = iop__now_ns() + (int64_t)pool->overflow_ms * 1000000;
		ts.tv_sec = deadline / 1000000000;
		ts.tv_nsec = deadline % 1000000000;
	}
	pthread_mutex_lock(&pool->lock);
	pool->nblocked++;
	while (full(pool, extra) &&
	       !atomic_load_explicit(&pool->shutdown, memory_order_relaxed)) {
		if (!deadline)
			pthread_cond_wait(&pool->room_cond, &pool->lock);
		else if (pthread_cond_timedwait(&pool->room_cond, &pool->lock,
						&ts) == ETIMEDOUT)
			break;
	}
	pool->nblocked--;
	ok = !full(pool, extra);
	pthread_mutex_unlock(&pool->lock);
	return ok;
}

/* IOP_OVERFLOW_INLINE: run the job on this thread, now. */
static iop_job *run_now(struct iop_pool *pool, const struct iop__req *req)
{
	struct iop_job *job = enqueue(pool, NULL, req, IOP__RUNNING, false);

	if (!job)
		return NULL;
	pthread_mutex_lock(&pool->lock);
	iop__count(&pool->nsubmitted, 1);
	pthread_mutex_unlock(&pool->lock);
	if (timing(pool))
		job->t_queued = iop__now_ns();
	iop__run_here(pool, job);
	return job;
}

/*
 * The queue is full: apply the pool's overflow policy.  Returns NULL with
 * errno set, a job run inline, or (void *)1 to go on and queue.
 */
static iop_job *overflow(struct iop_pool *pool, const struct iop__req *req,
			 unsigned extra)
{
	switch (pool->overflow) {
	case IOP_OVERFLOW_INLINE:
		return run_now(pool, req);
	case IOP_OVERFLOW_BLOCK:
		if (iop__current == pool && iop__batch.pool != pool) {
			iop__publish_pending(pool, false);
			extra = 0;
		}
		if (wait_room(pool, extra))
			return (iop_job *)1;
		break;
	}
	errno = EAGAIN;
	return NULL;
}

/*
 * What iop__read_now() remembers per descriptor, in one word so that
 * threads reading it concurrently never see half an update: the
 * descriptor (a slot is shared by numbers with the same hash), whether it
 * is O_DIRECT (RWF_NOWAIT does not keep such a read from waiting for the
 * device; the kernel's asynchronous interface takes it instead), reads
 * left before its flags are looked at again (a number can be closed and
 * reused), reads left that skip the attempt after one that missed the
 * page cache, and whether the last read of more than IOP__NOWAIT_MAX
 * bytes that a worker ran slept in the kernel (iop__read_slept()).
 */
#define NW_FD(w)	((int)(uint32_t)(w))
#define NW_DIRECT	((uint64_t)1 << 32)
#define NW_CHECKS(w)	((unsigned)((w) >> 33 & 0xFFFF))
#define NW_SKIP(w)	((unsigned)((w) >> 49 & 0xFF))
#define NW_SLEPT	((uint64_t)1 << 57)
#define NW_MAKE(fd, direct, checks, skip)				\
	((uint64_t)(uint32_t)(fd) | ((direct) ? NW_DIRECT : 0) |	\
	 (uint64_t)(checks) << 33 | (uint64_t)(skip) << 49)

/* What to do with a read of @fd at submit. */
enum read_way {
	WAY_CACHED,	/* hits lately: try preadv2(RWF_NOWAIT) */
	WAY_SKIP,	/* missed lately: a worker reads it */
	WAY_DIRECT,	/* O_DIRECT: into the kernel (aio.c) */
};

/*
 * Whether @job is a read that waits for the device (never in a pool
 * without timing, which has no watchdog to fall back on): a plain read at
 * an offset, of at most IOP__NOWAIT_MAX bytes (a bigger one takes long
 * copying too), on a descriptor last seen without O_DIRECT (asking the
 * kernel for its data ahead fills the page cache, which O_DIRECT reads
 * pass by), whose reads missed the page cache lately (an attempt at
 * submit, within IOP__NOWAIT_SKIP reads) or are not short: a cached read
 * would be.  A number closed and reused as O_DIRECT is seen as such after
 * at most IOP__NOWAIT_RECHECK reads.
 */
bool iop__device_read(struct iop_pool *pool, const struct iop_job *job)
{
	const struct iop__req *req = &job->req;
	uint64_t w;

	if (job->xflags || req->op != IOP__OP_READ ||
	    req->u.rw.offset < 0 || req->u.rw.len == 0 ||
	    req->u.rw.len > IOP__NOWAIT_MAX ||
	    (pool->flags & IOP_POOL_NO_TIMING))
		return false;
	w = atomic_load_explicit(&pool->nowait[(unsigned)req->fd %
					       IOP__NOWAIT_FDS],
				 memory_order_relaxed);
	if (w == 0 || NW_FD(w) != req->fd || (w & NW_DIRECT))
		return false;
	return NW_SKIP(w) > 0 ||
	       iop__estimate(pool, iop__job_kind(job)) >= IOP__SMALL_NS;
}

/* Whether the job a worker would take next is such a read, with more of
 * them for it to take (one priority level has jobs). */
bool iop__device_read_next_locked(struct iop_pool *pool)
{
	const struct iop__runq *rq = &pool->runq;

	return rq->mask && !(rq->mask & (rq->mask - 1)) &&
	       iop__device_read(pool, iop__job_of(
		       rq->level[__builtin_ctz(rq->mask)].head));
}

/* Whether @job is a read of more than IOP__NOWAIT_MAX bytes at an offset:
 * one that may be mostly copying. */
bool iop__big_read(const struct iop_job *job)
{
	return !job->xflags && job->req.op == IOP__OP_READ &&
	       job->req.u.rw.offset >= 0 &&
	       job->req.u.rw.len > IOP__NOWAIT_MAX;
}

/*
 * Whether @job is a read that keeps a CPU busy copying (never in a pool
 * without timing, as above): a big read (iop__big_read()) on a
 * descriptor last seen without O_DIRECT whose reads have not missed the
 * page cache lately, and whose last big read a worker ran did not sleep
 * in the kernel.  Such reads gain nothing from more threads than CPUs,
 * and lose to them: threads taking turns on a CPU cost switches, and
 * move between CPUs and lose their caches.
 */
bool iop__copy_read(struct iop_pool *pool, const struct iop_job *job)
{
	uint64_t w;

	if (!iop__big_read(job) || (pool->flags & IOP_POOL_NO_TIMING))
		return false;
	w = atomic_load_explicit(&pool->nowait[(unsigned)job->req.fd %
					       IOP__NOWAIT_FDS],
				 memory_order_relaxed);
	return w != 0 && NW_FD(w) == job->req.fd &&
	       !(w & (NW_DIRECT | NW_SLEPT)) && !NW_SKIP(w);
}

/* A worker ran a big read of @fd: whether it @slept in the kernel (waited
 * for the device) or only copied. */
void iop__read_slept(struct iop_pool *pool, int fd, bool slept)
{
	_Atomic uint64_t *slot = &pool->nowait[(unsigned)fd % IOP__NOWAIT_FDS];
	uint64_t w = atomic_load_explicit(slot, memory_order_relaxed);

	/* A hint: a submit that stores the word meanwhile wins. */
	if (w != 0 && NW_FD(w) == fd && !(w & NW_SLEPT) != !slept)
		atomic_compare_exchange_strong_explicit(
			slot, &w, w ^ NW_SLEPT, memory_order_relaxed,
			memory_order_relaxed);
}

/* Whether the job a worker would take next is such a read. */
bool iop__copy_read_next_locked(struct iop_pool *pool)
{
	const struct iop__runq *rq = &pool->runq;

	return rq->mask && iop__copy_read(pool, iop__job_of(
		rq->level[peek_level(rq)].head));
}

/* How to read @fd now, keeping what was learnt up to date. */
static enum read_way read_way(_Atomic uint64_t *slot, int fd)
{
	uint64_t w = atomic_load_explicit(slot, memory_order_relaxed);
	bool direct;
	int flags;

	if (w == 0 || NW_FD(w) != fd || NW_CHECKS(w) == 0) {
		flags = fcntl(fd, F_GETFL);
		direct = flags >= 0 && (flags & O_DIRECT);
		/* The same descriptor keeps its count of reads to skip,
		 * and what its big reads did. */
		w = NW_FD(w) == fd ?
		    NW_MAKE(fd, direct, IOP__NOWAIT_RECHECK, NW_SKIP(w)) |
		    (w & NW_SLEPT) :
		    NW_MAKE(fd, direct, IOP__NOWAIT_RECHECK, 0);
	}
	direct = w & NW_DIRECT;
	if (NW_SKIP(w) || direct) {
		w = NW_MAKE(fd, direct, NW_CHECKS(w) - 1,
			    NW_SKIP(w) ? NW_SKIP(w) - 1 : 0) | (w & NW_SLEPT);
		atomic_store_explicit(slot, w, memory_order_relaxed);
		return direct ? WAY_DIRECT : WAY_SKIP;
	}
	atomic_store_explicit(slot, NW_MAKE(fd, false, NW_CHECKS(w) - 1, 0) |
				    (w & NW_SLEPT),
			      memory_order_relaxed);
	return WAY_CACHED;
}

#if defined(HAVE_PREADV2) && HAVE_DECL_RWF_NOWAIT
/* A read on @fd missed the page cache: skip the next few attempts. */
static void nowait_missed(_Atomic uint64_t *slot, int fd)
{
	uint64_t w = atomic_load_explicit(slot, memory_order_relaxed);

	if (NW_FD(w) == fd)
		atomic_store_explicit(slot, NW_MAKE(fd, false, NW_CHECKS(w),
						    IOP__NOWAIT_SKIP) |
					    (w & NW_SLEPT),
				      memory_order_relaxed);
}

/* preadv2(RWF_NOWAIT): the job, ended, or NULL (see iop__read_now()). */
static iop_job *read_cached(struct iop_pool *pool, const struct iop__req *req,
			    _Atomic uint64_t *slot)
{
	struct iovec iov = { req->u.rw.buf, req->u.rw.len };
	struct iop_job *job;
	ssize_t r;

	r = preadv2(req->fd, &iov, 1, (off_t)req->u.rw.offset, RWF_NOWAIT);
	if (r != (ssize_t)req->u.rw.len && r != 0) {
		if (r < 0 && errno == EAGAIN)
			nowait_missed(slot, req->fd);
		return NULL;
	}
	job = enqueue(pool, NULL, req, IOP__RUNNING, false);
	if (!job)
		return NULL;
	atomic_fetch_add_explicit(&pool->nread_now, 1, memory_order_relaxed);
	job->result = r;
	iop__complete(job);
	return job;
}
#else
static iop_job *read_cached(struct iop_pool *pool, const struct iop__req *req,
			    _Atomic uint64_t *slot)
{
	(void)pool;
	(void)req;
	(void)slot;
	return NULL;
}
#endif

/* A job that was never visible to anyone goes back to the free lists. */
static void discard(struct iop_pool *pool, struct iop_job *job)
{
	if (iop__current == pool) {
		iop__job_release_polling(pool, job);
		return;
	}
	pthread_mutex_lock(&pool->lock);
	iop__job_release_locked(pool, job);
	pthread_mutex_unlock(&pool->lock);
}

/* An O_DIRECT read into the kernel: the job, running, or NULL. */
static iop_job *read_direct(struct iop_pool *pool, const struct iop__req *req)
{
	struct iop_job *job;

	if (!iop__aio_usable(pool, req))
		return NULL;
	job = enqueue(pool, NULL, req, IOP__RUNNING, false);
	if (!job)
		return NULL;
	if (iop__aio_submit(pool, job))
		return job;
	discard(pool, job);
	return NULL;
}

/*
 * A read that needs no worker: one the page cache can serve right now,
 * with preadv2(RWF_NOWAIT) on the submitting thread, so that a cached read
 * costs no hand-off at all (on two cores a hand-off costs several times
 * the read); or one on an O_DIRECT descriptor, which goes into the kernel
 * from here (aio.c).  Returns the job, already ended and on its way to the
 * callback like any other, or running in the kernel; or NULL to submit the
 * read the usual way: a miss (EAGAIN), a short read, any error (the worker
 * will see it again and report it), a held batch, a pool with max_queued,
 * a read above IOP__NOWAIT_MAX or that a callback inside iop_wait()
 * submits, a descriptor that missed recently, a direct read
 * the kernel's asynchronous interface does not take, or no preadv2 here.
 */
iop_job *iop__read_now(struct iop_pool *pool, const struct iop__req *req)
{
	_Atomic uint64_t *slot =
		&pool->nowait[(unsigned)req->fd % IOP__NOWAIT_FDS];

	/* A submit that will fail leaves @buf alone. */
	if (iop__batch.pool == pool || pool->max_queued ||
	    atomic_load_explicit(&pool->shutdown, memory_order_relaxed) ||
	    atomic_load_explicit(&pool->forked, memory_order_relaxed))
		return NULL;
	switch (read_way(slot, req->fd)) {
	case WAY_DIRECT:
		return read_direct(pool, req);
	case WAY_SKIP:
		return NULL;
	case WAY_CACHED:
		break;
	}
	/*
	 * A callback that iop_wait() runs queues its reads: that thread
	 * runs short ones itself anyway, in batches, while a worker takes
	 * others beside it, so that cached reads keep two cores busy.  Reads
	 * that miss are no better tried there: the attempt starts the device
	 * on the read, but costs that thread the page allocation and the
	 * request; a closed loop of cold 4 KiB reads, 64 in flight, ran 8%
	 * slower that way, with 0.7 more context switches per read.
	 */
	if (req->u.rw.len > IOP__NOWAIT_MAX ||
	    (iop__current == pool && pool->in_wait))
		return NULL;
	return read_cached(pool, req, slot);
}

/* The common path: queue @req under the lock and wake a worker. */
static iop_job *submit_direct(struct iop_pool *pool,
			      const struct iop__req *req)
{
	int64_t t = timing(pool) ? iop__now_ns() : 0;
	struct iop_job *job;
	unsigned wake;
	int err;

	iop__lock_waking(pool);
	job = enqueue(pool, NULL, req, IOP__QUEUED, true);
	if (!job) {
		err = errno;
		goto out;
	}
	job->t_queued = t;
	wake = iop__wakes_for_locked(pool, job, 1);	/* before it counts */
	iop__queue_job_locked(pool, job);
	iop__count(&pool->nsubmitted, 1);
	err = -iop__wake_locked(pool, wake);
	if (err && atomic_load_explicit(&pool->nthreads,
					memory_order_relaxed) == 0 &&
	    !(pool->flags & IOP_POOL_INLINE)) {
		/* No thread to run it, and none could be started. */
		iop__unqueue_locked(pool, job);
		iop__count(&pool->nsubmitted, (uint64_t)-1);
		iop__job_release_locked(pool, job);
		job = NULL;
	}
out:
	iop__unlock_waking(pool);
	if (!job) {
		errno = err;
		return NULL;
	}
	after_handover(pool);
	return job;
}

iop_job *iop__submit(struct iop_pool *pool, const struct iop__req *req)
{
	bool batch = iop__batch.pool == pool;
	bool callback = !batch && iop__current == pool;
	struct iop_job *job;

	if (atomic_load_explicit(&pool->forked, memory_order_relaxed)) {
		errno = EOWNERDEAD;
		return NULL;
	}
	if (pool->max_queued) {
		unsigned extra = batch ? iop__batch.nheld :
				 callback ? pool->npending : 0;

		if (full(pool, extra)) {
			job = overflow(pool, req, extra);
			if (job != (iop_job *)1)
				return job;
		}
	}
	/* In this thread's batch: held until the batch ends. */
	if (batch) {
		job = enqueue(pool, &iop__batch.held, req, IOP__HELD, false);
		if (job) {
			job->held_by = &iop__batch;
			iop__batch.nheld++;
		}
		return job;
	}
	/* From inside a callback: no lock, handed over at the batch end. */
	if (callback) {
		job = enqueue(pool, &pool->pending, req, IOP__PENDING, false);
		if (job && ++pool->npending >= IOP__PENDING_MAX)
			iop__publish_pending(pool, true);
		return job;
	}
	return submit_direct(pool, req);
}

/*
 * Jobs were handed over, and starting a thread for them failed with @err:
 * if the pool has no thread at all, nothing would ever run them, so they
 * end now with @err (-EAGAIN, -ENOMEM), as a direct submit would have
 * failed.  Lock held.
 */
static void no_worker_locked(struct iop_pool *pool, int err)
{
	if (err && !(pool->flags & IOP_POOL_INLINE) &&
	    atomic_load_explicit(&pool->nthreads, memory_order_relaxed) == 0)
		iop__end_queued_locked(pool, NULL, err);
}

/*
 * Hand the @n held jobs of @held to the workers in one step: the end of a
 * batch, or of a callback batch.
 */
static void hand_over(struct iop_pool *pool, struct iop__queue *held,
		      unsigned n)
{
	int64_t t = timing(pool) ? iop__now_ns() : 0;
	const struct iop_job *first = iop__job_of(held->head);

	iop__lock_waking(pool);
	iop__count(&pool->nsubmitted, n);
	n = iop__wakes_for_locked(pool, first, n);
	iop__handover_locked(pool, held, t);
	no_worker_locked(pool, iop__wake_locked(pool, n));
	iop__unlock_waking(pool);
	after_handover(pool);
}

/*
 * Short jobs @first.. (@n of them, all of one kind) that callbacks
 * submitted inside iop_wait(), which goes on to run them itself as soon
 * as the round of callbacks ends: wake no worker, unless they add up to
 * more work than a wake-up costs and no worker runs short jobs or is on
 * its way, in which case one worker shares them.  If the wait leaves them
 * queued, it wakes one then (iop__pay_wake()).
 */
static unsigned share_wakes_locked(struct iop_pool *pool,
				   const struct iop_job *first, unsigned n)
{
	int64_t est = iop__estimate(pool, iop__job_kind(first));

	if (est * (int64_t)n >= IOP__SMALL_NS &&
	    !iop__worker_coming_locked(pool))
		return 1;
	pool->owe_wake = true;
	return 0;
}

/*
 * Hand the jobs that callbacks submitted to the workers, in one step.
 * They are plain (no setter applies to them) and at the default
 * priority, so the whole list joins its level at once.  While PENDING,
 * iop_cancel() can only mark them (the list is this thread's); marked
 * ones end here.  After shutdown, or with a limit on queued jobs, they
 * go the long way.  @round_end: a round of callbacks has ended (or has
 * submitted so many that they go now, as they would at its end), and
 * iop_wait() may go on to run short ones itself; else a callback hands
 * them over to wait for one of them (a future, or room in the queue).
 */
void iop__publish_pending(struct iop_pool *pool, bool round_end)
{
	struct iop__queue *level =
		&pool->runq.level[IOP_PRIO_DEFAULT - IOP_PRIO_MIN];
	int64_t t = timing(pool) ? iop__now_ns() : 0;
	unsigned n = pool->npending, wake;
	struct iop__node *node, *next;
	struct iop_job *job, *first;
	uint64_t kind = 0;
	bool one_kind = true;

	if (n == 0)
		return;
	pool->npending = 0;
	if (pool->max_queued || (pool->flags & IOP_POOL_INLINE)) {
		hand_over(pool, &pool->pending, n);
		return;
	}
	pthread_mutex_lock(&pool->lock);
	if (atomic_load_explicit(&pool->shutdown, memory_order_relaxed)) {
		pthread_mutex_unlock(&pool->lock);
		hand_over(pool, &pool->pending, n);
		return;
	}
	pool->defer_signals = true;
	iop__count(&pool->nsubmitted, n);
	/* Queued from here on, so iop_cancel() takes them off the queue;
	 * those it marked while they were pending end now. */
	for (node = pool->pending.head; node; node = next) {
		next = node->next;
		job = iop__job_of(node);
		if (atomic_load_explicit(&job->cancel, memory_order_relaxed)) {
			iop__queue_remove(&pool->pending, node);
			iop__end_locked(job, -ECANCELED);
			n--;
			continue;
		}
		job->t_queued = t;
		atomic_store_explicit(&job->state, IOP__QUEUED,
				      memory_order_relaxed);
		if (node == pool->pending.head)
			kind = iop__job_kind(job);
		else if (iop__job_kind(job) != kind)
			one_kind = false;
	}
	if (n > 0) {
		first = iop__job_of(pool->pending.head);
		if (round_end && pool->in_wait && one_kind && !first->xflags &&
		    iop__small(pool, first))
			wake = share_wakes_locked(pool, first, n);
		else
			wake = iop__wakes_for_locked(pool, first, n);
		/* Reads that copy: iop_wait() copies one of them next
		 * (iop__help_copy()), and wakes a worker if it leaves it
		 * queued. */
		if (round_end && pool->in_wait && wake > 0 &&
		    !(pool->flags & IOP__NO_HELP) && pool->ncpus > 1 &&
		    iop__copy_read(pool, first)) {
			wake--;
			pool->owe_wake = true;
		}
		iop__queue_move(level, &pool->pending);
		set_mask(&pool->runq, pool->runq.mask |
			 1u << (IOP_PRIO_DEFAULT - IOP_PRIO_MIN));
		iop__count(&pool->nqueued, n);
		no_worker_locked(pool, iop__wake_locked(pool, wake));
	}
	iop__unlock_waking(pool);
}

/*
 * The polling thread is about to run callbacks (@leaving false), or to
 * sleep in iop_wait() or leave it (@leaving true), and jobs it queued
 * there woke no worker (see above), or workers stood down for the reads
 * it copied (iop__help_copy()).  If any are still queued and no worker is
 * on its way (for reads that copy: none copies, since one that does takes
 * the next), wake one: the callbacks may wait for them.  Sleeping or
 * leaving, it copies no more: reads that copy get their workers, one per
 * CPU.
 */
void iop__pay_wake(struct iop_pool *pool, bool leaving)
{
	bool copy;

	if (!pool->owe_wake &&
	    !(leaving && atomic_load(&pool->stood_down)))
		return;
	pool->owe_wake = false;
	iop__lock_waking(pool);
	if (leaving)
		atomic_store(&pool->stood_down, false);
	copy = iop__copy_read_next_locked(pool);
	if (leaving && copy)
		no_worker_locked(pool, iop__wake_locked(pool,
							copy_room_locked(pool)));
	else if (atomic_load_explicit(&pool->nqueued, memory_order_relaxed) >
		 0 && !iop__worker_coming_locked(pool) &&
		 !(copy && pool->ncopying > 0))
		no_worker_locked(pool, iop__wake_locked(pool, 1));
	iop__unlock_waking(pool);
}

int iop_batch_begin(iop_pool *pool)
{
	if (!pool)
		return -EINVAL;
	if (iop__pool_forked(pool))
		return -EOWNERDEAD;
	if (iop__batch.pool && iop__batch.pool != pool)
		return -EBUSY;
	if (iop__batch.depth++ == 0) {
		iop__batch.pool = pool;
		iop__batch.nheld = 0;
		iop__queue_init(&iop__batch.held);
	}
	return 0;
}

int iop_batch_end(iop_pool *pool)
{
	struct iop__queue held = iop__batch.held;
	unsigned n = iop__batch.nheld;

	if (!pool || iop__batch.pool != pool)
		return -EINVAL;
	if (--iop__batch.depth > 0)
		return iop__pool_forked(pool) ? -EOWNERDEAD : 0;
	if (iop__pool_forked(pool)) {
		iop__batch.pool = NULL;
		return -EOWNERDEAD;
	}
	iop__batch.pool = NULL;
	iop__batch.nheld = 0;
	iop__queue_init(&iop__batch.held);
	if (n > 0)
		hand_over(pool, &held, n);
	return (int)n;
}

/* ---- Per-job settings, lanes, deadlines. ---- */

int iop_job_set_priority(iop_job *job, int prio)
{
	if (!job || prio < IOP_PRIO_MIN || prio > IOP_PRIO_MAX)
		return -EINVAL;
	if (iop__pool_forked(iop__job_pool(job)))
		return -EOWNERDEAD;
	if (!iop__held_here(job))
		return -EBUSY;
	job->prio = (signed char)prio;
	return 0;
}

iop_lane *iop_lane_new(iop_pool *pool, const char *name, unsigned cap)
{
	struct iop_lane *lane;

	if (!pool || !name || cap == 0) {
		errno = EINVAL;
		return NULL;
	}
	if (iop__pool_forked(pool)) {
		errno = EOWNERDEAD;
		return NULL;
	}
	lane = calloc(1, sizeof(*lane));
	if (!lane) {
		errno = ENOMEM;
		return NULL;
	}
	lane->pool = pool;
	lane->cap = cap;
	iop__queue_init(&lane->backlog);
	strncpy(lane->name, name, sizeof(lane->name) - 1);
	pthread_mutex_lock(&pool->lock);
	if (atomic_load_explicit(&pool->shutdown, memory_order_relaxed)) {
		pthread_mutex_unlock(&pool->lock);
		free(lane);
		errno = ESHUTDOWN;
		return NULL;
	}
	lane->next = pool->lanes;
	pool->lanes = lane;
	pthread_mutex_unlock(&pool->lock);
	return lane;
}

int iop_lane_set_cap(iop_lane *lane, unsigned cap)
{
	struct iop_pool *pool;

	if (!lane || cap == 0)
		return -EINVAL;
	pool = lane->pool;
	if (iop__pool_forked(pool))
		return -EOWNERDEAD;
	pthread_mutex_lock(&pool->lock);
	lane->cap = cap;
	readmit_locked(pool, lane);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

int iop_job_set_lane(iop_job *job, iop_lane *lane)
{
	if (!job || !lane || iop__job_pool(job) != lane->pool)
		return -EINVAL;
	if (iop__pool_forked(lane->pool))
		return -EOWNERDEAD;
	if (!iop__held_here(job))
		return -EBUSY;
	if (!iop__jobx(job))
		return -ENOMEM;
	job->x->lane = lane;
	job->xflags |= IOP__X_LANE;
	return 0;
}

void iop__dl_add_locked(struct iop_pool *pool, struct iop_job *job)
{
	job->x->dl_prev = NULL;
	job->x->dl_next = pool->deadlines;
	if (pool->deadlines)
		pool->deadlines->x->dl_prev = job;
	pool->deadlines = job;
	job->xflags |= IOP__X_DLLIST;
	pthread_cond_signal(&pool->dl_cond);
}

void iop__dl_remove_locked(struct iop_pool *pool, struct iop_job *job)
{
	struct iop__jobx *x = job->x;

	if (!(job->xflags & IOP__X_DLLIST))
		return;
	if (x->dl_prev)
		x->dl_prev->x->dl_next = x->dl_next;
	else
		pool->deadlines = x->dl_next;
	if (x->dl_next)
		x->dl_next->x->dl_prev = x->dl_prev;
	job->xflags &= ~IOP__X_DLLIST;
}

/*
 * End the first job on pool->deadlines whose deadline has passed.  Returns
 * true if it ended one (the list changed: start over), else stores the
 * earliest deadline still to come in *@next (INT64_MAX: none).
 */
static bool expire_one_locked(struct iop_pool *pool, int64_t now,
			      int64_t *next)
{
	struct iop_job *job;

	*next = INT64_MAX;
	for (job = pool->deadlines; job; job = job->x->dl_next) {
		if (job->x->deadline > now) {
			if (job->x->deadline < *next)
				*next = job->x->deadline;
			continue;
		}
		if (atomic_load_explicit(&job->state, memory_order_relaxed) ==
		    IOP__QUEUED)
			iop__unqueue_locked(pool, job);
		iop__end_locked(job, -ETIMEDOUT);
		return true;
	}
	return false;
}

/*
 * How long the workers may go without starting or ending a job before
 * those that the queue was left to look stuck: four times the longer of
 * IOP__ABSORB_NS and what the queue's next job is expected to take.
 */
static int64_t stuck_after_locked(const struct iop_pool *pool)
{
	const struct iop__runq *rq = &pool->runq;
	int64_t est = -1;

	if (rq->mask)
		est = iop__estimate(pool, iop__job_kind(iop__job_of(
			rq->level[peek_level(rq)].head)));
	return 4 * (est > IOP__ABSORB_NS ? est : IOP__ABSORB_NS);
}

/*
 * Jobs were left to busy workers (absorbed_locked(), reads left to
 * workers that take several): once their time has come, wake workers for
 * the queue if its oldest job waited too long, and look again while jobs
 * are queued.  If workers run jobs but have not started or ended one for
 * long either (stuck_after_locked()), those it was left to look stuck:
 * wake and start threads for every queued job, whatever kind of read it
 * is.  Returns when to look next.
 */
static int64_t stale_check_locked(struct iop_pool *pool, int64_t now)
{
	if (!pool->stale_check)
		return INT64_MAX;
	if (now < pool->stale_check)
		return pool->stale_check;
	if (stale_locked(pool, now)) {
		unsigned n = (unsigned)atomic_load_explicit(
			&pool->nqueued, memory_order_relaxed);

		if (pool->nrunning > 0 &&
		    now - pool->t_moved > stuck_after_locked(pool))
			iop__wake_any_locked(pool, n);
		else
			iop__wake_locked(pool, n);
	}
	pool->stale_check = pool->runq.mask ? now + 2 * IOP__ABSORB_NS : 0;
	return pool->stale_check ? pool->stale_check : INT64_MAX;
}

/*
 * The watchdog: sleeps until the earliest deadline of a queued or waiting
 * job, and ends the jobs whose deadline has passed, whatever the workers
 * are doing; and sees to jobs left to busy workers that did not come back
 * (stale_check_locked()).  It starts with the first of either.
 */
static void *watchdog_main(void *arg)
{
	struct iop_pool *pool = arg;
	struct timespec ts;
	int64_t next, now, check;

	pthread_mutex_lock(&pool->lock);
	while (!atomic_load_explicit(&pool->shutdown, memory_order_relaxed)) {
		now = iop__now_ns();
		if (expire_one_locked(pool, now, &next))
			continue;
		check = stale_check_locked(pool, now);
		if (check < next)
			next = check;
		if (next == INT64_MAX) {
			pthread_cond_wait(&pool->dl_cond, &pool->lock);
			continue;
		}
		ts.tv_sec = next / 1000000000;
		ts.tv_nsec = next % 1000000000;
		pthread_cond_timedwait(&pool->dl_cond, &pool->lock, &ts);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static int start_watchdog_locked(struct iop_pool *pool)
{
	sigset_t all, old;
	int err;

	if (pool->watchdog_started)
		return 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&pool->watchdog, NULL, watchdog_main, pool);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err)
		pool->watchdog_started = true;
	return -err;
}

int iop_job_set_deadline(iop_job *job, int timeout_ms)
{
	struct iop_pool *pool;
	int err;

	if (!job || timeout_ms < 0)
		return -EINVAL;
	pool = iop__job_pool(job);
	/* In a forked child no thread may start: the child's destroy joins
	 * none. */
	if (iop__pool_forked(pool))
		return -EOWNERDEAD;
	if (!iop__held_here(job))
		return -EBUSY;
	if (!iop__jobx(job))
		return -ENOMEM;
	if (!(pool->flags & IOP_POOL_INLINE)) {
		pthread_mutex_lock(&pool->lock);
		err = start_watchdog_locked(pool);
		pthread_mutex_unlock(&pool->lock);
		if (err)
			return err;
	}
	job->x->deadline = iop__now_ns() + (int64_t)timeout_ms * 1000000;
	job->xflags |= IOP__X_DEADLINE;
	return 0;
}

/* Destroy: stop the watchdog (shutdown is set), free the lanes. */
void iop__sched_free_all(struct iop_pool *pool)
{
	struct iop_lane *lane, *next;

	if (pool->watchdog_started &&
	    !atomic_load_explicit(&pool->forked, memory_order_relaxed)) {
		pthread_mutex_lock(&pool->lock);
		pthread_cond_signal(&pool->dl_cond);
		pthread_mutex_unlock(&pool->lock);
		pthread_join(pool->watchdog, NULL);
	}
	for (lane = pool->lanes; lane; lane = next) {
		next = lane->next;
		free(lane);
	}
	pool->lanes = NULL;
}
