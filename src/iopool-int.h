/*
 * iopool's private structures and the iop__ calls shared between its
 * source files.  Nothing here is part of the ABI.
 */
#ifndef IOPOOL_INT_H
#define IOPOOL_INT_H

#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "iopool.h"
#include "queue.h"

#define IOP__DEFAULT_THREADS	4
#define IOP__DEFAULT_STACK	((size_t)1 << 20)
#define IOP__MIN_STACK		((size_t)16 << 10)
#define IOP__MAX_STACK		((size_t)1 << 30)

/* Jobs a callback batch may submit before they are handed over early. */
#define IOP__PENDING_MAX	64
/* Free jobs the polling thread keeps for itself between batches. */
#define IOP__PCACHE_KEEP	256
/* Jobs allocated at once when the free lists run dry. */
#define IOP__SLAB_JOBS		64

enum iop__op {
	IOP__OP_READ,
	IOP__OP_CALL,
};

/* Where a job is.  Public names for these states come with iop_job_state. */
enum iop__state {
	IOP__FREE,		/* on a free list, or never used */
	IOP__QUEUED,		/* submitted, not yet taken by a worker */
	IOP__RUNNING,		/* a worker is running it */
	IOP__DONE,		/* result set; callback or await still due */
};

/* What a submit call asks for: copied into the job under the pool lock. */
struct iop__req {
	iop_done_fn *done;		/* NULL: a future */
	void *arg;
	union {
		struct {
			void *buf;
			size_t len;
			int64_t offset;
		} rw;
		struct {
			iop_work_fn *fn;
			void *ctx;
		} call;
	} u;
	int fd;				/* READ */
	unsigned char op;		/* enum iop__op */
};

struct iop_job {
	struct iop__node node;		/* first: lists link through it */
	struct iop_pool *pool;		/* the owner of its slab, for life */
	struct iop__req req;		/* set at submit, read-only after */
	ssize_t result;			/* written by the worker, read after
					 * the hand-back (stack or lock) */
	_Atomic unsigned char state;	/* enum iop__state */
	unsigned char nwaiters;		/* threads in iop_await(); pool lock */
};

struct iop__notify {
	int rfd;			/* readable while completions wait */
	int wfd;			/* == rfd for an eventfd */
};

struct iop__slab {
	struct iop__slab *next;
	struct iop_job jobs[IOP__SLAB_JOBS];
};

struct iop_pool {
	pthread_mutex_t lock;
	pthread_cond_t work_cond;	/* workers wait for jobs; lock */
	pthread_cond_t await_cond;	/* iop_await() and destroy wait; lock */
	struct iop__queue queue;	/* submitted, not running; lock */
	struct iop__node *cache;	/* free jobs; lock */
	struct iop__slab *slabs;	/* all job memory; lock */
	unsigned nidle;			/* workers in cond_wait; lock */
	unsigned nwakeups;		/* signals sent, not yet taken; lock */
	unsigned nawaiting;		/* threads in iop_await(); lock */
	atomic_bool shutdown;		/* set under lock, read anywhere */

	struct iop__stack done;		/* finished callback jobs */
	struct iop__stack freed;	/* released jobs, for reuse */
	atomic_bool polling;		/* a thread is in poll/wait/destroy */

	/* Owned by the thread that holds `polling`. */
	struct iop__queue pending;	/* submitted by callbacks */
	unsigned npending;
	struct iop__node *pcache;	/* free jobs for those submits */
	unsigned npcache;

	/* Set at creation, read-only after. */
	struct iop__notify notify;
	unsigned threads_wanted;
	unsigned nthreads;		/* started; changed only by new/destroy */
	pthread_t *threads;
};

static inline struct iop_job *iop__job_of(struct iop__node *n)
{
	return (struct iop_job *)n;	/* node is the first member */
}

/*
 * The pool whose callbacks the calling thread is running right now, if any.
 * Submits from there go to the pool's pending list instead of the lock.
 */
extern _Thread_local struct iop_pool *iop__current;

/* pool.c */
iop_job *iop__submit(struct iop_pool *pool, const struct iop__req *req);
void iop__publish_pending(struct iop_pool *pool);

/* job.c */
struct iop_job *iop__job_alloc_locked(struct iop_pool *pool);
struct iop_job *iop__job_alloc_polling(struct iop_pool *pool);
void iop__job_release_polling(struct iop_pool *pool, struct iop_job *job);
void iop__job_trim_polling(struct iop_pool *pool);
void iop__job_free_all(struct iop_pool *pool);
void iop__future_finish(struct iop_job *job);
void iop__future_cancel_locked(struct iop_job *job);

/* complete.c */
void iop__complete(struct iop_job *job);
int iop__run_callbacks(struct iop_pool *pool, struct iop__node *list);
int iop__poll_once(struct iop_pool *pool);

/* notify.c */
int iop__notify_open(struct iop__notify *n);
void iop__notify_close(struct iop__notify *n);
void iop__notify_signal(struct iop__notify *n);
void iop__notify_drain(struct iop__notify *n);
int iop__notify_wait(struct iop__notify *n, int timeout_ms);

/* ops.c */
ssize_t iop__job_run(struct iop_job *job);

_Static_assert(offsetof(struct iop_job, node) == 0,
	       "lists link jobs through their first member");
_Static_assert(sizeof(void *) != 8 || sizeof(struct iop_job) <= 80,
	       "a queued job costs the pool at most 80 bytes on 64-bit");

#endif /* IOPOOL_INT_H */
