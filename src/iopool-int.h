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
#include <sys/uio.h>

#include "iopool.h"
#include "queue.h"

#define IOP__DEFAULT_THREADS	4
#define IOP__DEFAULT_STACK	((size_t)1 << 20)
#define IOP__MIN_STACK		((size_t)16 << 10)
#define IOP__MAX_STACK		((size_t)1 << 30)
#define IOP__DEFAULT_IDLE_MS	10000
#define IOP__DEFAULT_LONG_MS	10000

/* Descriptors whose page-cache misses iop__read_now() remembers. */
#define IOP__NOWAIT_FDS		64
/* Reads a descriptor skips the attempt for, after one that missed. */
#define IOP__NOWAIT_SKIP	32
/*
 * The largest read tried at submit: a bigger one is mostly copying, which
 * the workers do on every core at once.
 */
#define IOP__NOWAIT_MAX		((size_t)64 << 10)
/* Reads after which a descriptor's open flags are looked at again. */
#define IOP__NOWAIT_RECHECK	256
/* O_DIRECT reads a pool keeps in the kernel at most (aio.c); more go to
 * the workers. */
#define IOP__AIO_DEPTH		256
/* Completions the polling thread collects per system call. */
#define IOP__AIO_BATCH		64

/*
 * How long a job may be expected to run (from what jobs of the same kind
 * took) for a thread waiting for results to run it itself rather than
 * sleep until a worker has: a cross-CPU wake-up costs microseconds.
 */
#define IOP__SMALL_NS		20000
/* Pools where no job runs on a waiting thread: no estimates, no threads
 * to spare a wake-up of, or the program said so. */
#define IOP__NO_HELP	(IOP_POOL_NO_TIMING | IOP_POOL_INLINE | \
			 IOP_POOL_WORKERS_ONLY)
/*
 * A job that is not short waits for a busy worker expected to come free
 * within this (from what the busy workers' jobs took before) rather than
 * wake an idle one: on a small machine every thread woken for a job that
 * a busy one could take soon costs context switches, which slow the other
 * jobs more than the wait.  A job queued four times as long wakes a
 * worker whatever the estimates say (the watchdog sees to it).
 */
#define IOP__ABSORB_NS		400000
/*
 * ... in full once this many workers are busy, and in proportion below:
 * with few busy, whatever they wait for (a device's queue) likely has
 * room for more, and a wake-up costs little next to the wait.
 */
#define IOP__ABSORB_BUSY	16
/*
 * Reads that wait for the device (iop__device_read()) a worker takes this
 * many at once, from the front of the queue: it asks the kernel to start
 * them all before it waits for the first, so that they are at the device
 * together, and one wake-up and mostly one sleep serve them all rather
 * than one each (on a small machine the context switches cost more CPU
 * than the reads).  Workers are woken for them one per this many queued.
 */
#define IOP__READ_BATCH		8
/* The kind iop__take_run_locked() takes such reads as. */
#define IOP__KIND_READS		UINT64_MAX
/* Short jobs a worker takes at once, and their expected running time. */
#define IOP__BATCH_MAX		256
#define IOP__BATCH_NS		50000
/*
 * How long a worker that ran short jobs looks for more before it sleeps,
 * while the polling thread runs a batch of them in iop_wait() and is about
 * to hand over what its callbacks submit: less than the wake-up it saves.
 */
#define IOP__SPIN_NS		30000

/*
 * While jobs that keep their CPUs busy run and more wait in the queue, a
 * worker that ends one may hold back the doorbell, so that the thread
 * sleeping in iop_wait() wakes once for several callbacks rather than once
 * for each: until fewer than IOP__HOLD_QUEUED jobs wait (the callbacks are
 * then due to queue more), and for no longer than that thread sleeps,
 * IOP__HOLD_NS at most while it allows holding (see complete.c).
 */
#define IOP__HOLD_QUEUED	2
#define IOP__HOLD_NS		1000000
/*
 * The thread in iop_wait() copies reads itself (iop__help_copy()) that
 * have taken no longer than this: with IOP__SELF_ROUNDS of them, it may
 * return up to 8 ms after callbacks ran.
 */
#define IOP__HELP_COPY_NS	500000
/* A worker looks at whether its jobs block in one out of this many. */
#define IOP__BLOCK_SAMPLE	4

/*
 * A job of a batch running longer than this is unexpectedly slow: the
 * jobs behind it in its batch go back to the queue for other workers.
 */
#define IOP__STUCK_NS		200000

/* Kinds of job whose running time the pool remembers (hashed). */
#define IOP__EST_SLOTS		64

/* Rounds of callbacks one poll runs while callbacks end jobs themselves,
 * and rounds of short jobs one iop_wait() runs between them. */
#define IOP__SELF_ROUNDS	16

/* Jobs a callback batch may submit before they are handed over early. */
#define IOP__PENDING_MAX	256

/*
 * The same while a worker runs short jobs beside iop_wait() or looks for
 * them: it would sit idle until the round of callbacks ends, so it gets
 * them in twos (one lock round trip for two jobs).
 */
#define IOP__PENDING_SHARE	2
/* Free jobs the polling thread keeps for itself between batches. */
#define IOP__PCACHE_KEEP	256
/*
 * Job memory comes in slabs of this many bytes, aligned to their size, so
 * that a job finds its pool from its own address (iop__job_pool()) and
 * does not spend a pointer on it.
 */
#define IOP__SLAB_BYTES		((size_t)256 << 10)

enum iop__op {
	IOP__OP_READ,
	IOP__OP_WRITE,
	IOP__OP_READV,
	IOP__OP_WRITEV,
	IOP__OP_CALL,
	IOP__OP_OPENAT,
	IOP__OP_CLOSE,
	IOP__OP_FSYNC,
	IOP__OP_FDATASYNC,
	IOP__OP_FSTAT,
	IOP__OP_STATAT,
	IOP__OP_READFILE,
	IOP__OP_FTRUNCATE,
	IOP__OP_FALLOCATE,
	IOP__OP_RENAMEAT,
	IOP__OP_UNLINKAT,
	IOP__OP_MKDIRAT,
	IOP__OP_LISTDIR,
	IOP__OP_GROUP,		/* a group's carrier: never runs */
	IOP__NOPS
};

/*
 * Where a job is.  iop_job_state() reports HELD, PENDING, WAITING and
 * QUEUED as IOP_QUEUED.
 */
enum iop__state {
	IOP__FREE,		/* on a free list, or never used */
	IOP__HELD,		/* in a thread's open batch */
	IOP__PENDING,		/* submitted by a callback, on pool->pending */
	IOP__WAITING,		/* linked after a job that has not ended */
	IOP__QUEUED,		/* on pool->queue */
	IOP__RUNNING,		/* a worker is running it */
	IOP__DONE,		/* result set; callback or await still due */
};

/*
 * What a submit call asks for: copied into the job at submit, read-only
 * once the job is handed to the workers.
 */
struct iop__req {
	iop_done_fn *done;		/* NULL: a future */
	void *arg;
	union {
		/*
		 * The ops on paths own a copy of the path, the first member
		 * of at and rename, read through path; iop__req_path()
		 * says whether there is one.
		 */
		char *path;
		struct {		/* READ, WRITE */
			void *buf;
			size_t len;
			int64_t offset;
		} rw;
		struct {		/* READV, WRITEV */
			const struct iovec *iov;
			int iovcnt;
			int64_t offset;
		} vec;
		struct {		/* CALL */
			iop_work_fn *fn;
			void *ctx;
		} call;
		struct {		/* OPENAT, STATAT, READFILE, UNLINKAT,
					 * MKDIRAT, LISTDIR; FSTAT (no path) */
			char *path;
			void *out;	/* struct stat *, void **, ... */
			int flags;
			mode_t mode;
		} at;
		struct {		/* RENAMEAT: path is the old name */
			char *path;
			const char *newpath;	/* inside path's block */
			int newdirfd;
			unsigned flags;
		} rename;
		struct {		/* FTRUNCATE (len), FALLOCATE */
			int64_t offset;
			int64_t len;
			int mode;
		} range;
		struct iop_group *group;	/* GROUP */
	} u;
	int fd;				/* the descriptor, or the dirfd */
	unsigned char op;		/* enum iop__op */
};

/* The path a request owns (freed when its job is released), or NULL. */
static inline char *iop__req_path(const struct iop__req *req)
{
	switch (req->op) {
	case IOP__OP_OPENAT:
	case IOP__OP_STATAT:
	case IOP__OP_READFILE:
	case IOP__OP_UNLINKAT:
	case IOP__OP_MKDIRAT:
	case IOP__OP_LISTDIR:
	case IOP__OP_RENAMEAT:
		return req->u.path;
	}
	return NULL;
}

/*
 * What only some jobs use: chains, groups, lanes, deadlines.  Allocated
 * by the first call that needs it, while the job is held, and freed with
 * the job, so that a plain job stays small (W8 counts every byte).
 */
struct iop__jobx {
	struct iop_group *group;	/* set while held, read-only after */
	struct iop_job *chain_next;	/* runs after this one; lock */
	struct iop_job *chain_prev;	/* runs before this one; lock */
	struct iop_lane *lane;		/* set while held, read-only after */
	int64_t deadline;		/* CLOCK_MONOTONIC ns; set while held */
	struct iop_job *dl_next;	/* pool->deadlines; lock */
	struct iop_job *dl_prev;
};

/* iop_job.xflags: the rarely used parts of a job that are in use. */
#define IOP__X_LINKED	0x01	/* in a chain: has had a predecessor or a
				 * successor (x->chain_prev, chain_next) */
#define IOP__X_LANE	0x02	/* x->lane is set */
#define IOP__X_DEADLINE	0x04	/* x->deadline is set */
#define IOP__X_DLLIST	0x08	/* on pool->deadlines; lock */
#define IOP__X_BACKLOG	0x10	/* queued in its lane's backlog; lock */
#define IOP__X_READMIT	0x20	/* back from the backlog, in runq; lock */
#define IOP__X_DOOMED	0x40	/* ends at hand-over; lock */
#define IOP__X_ENDHEAD	0x80	/* the first such job of its chain; lock */

struct iop_job {
	struct iop__node node;		/* first: lists link through it */
	struct iop__req req;		/* set at submit, read-only after */
	union {
		const struct iop__batch *held_by;	/* while HELD */
		int64_t t_queued;	/* CLOCK_MONOTONIC ns at hand-over,
					 * until a worker starts it */
		ssize_t result;		/* once it has ended: written by
					 * the worker, read after the
					 * hand-back (stack or lock) */
	};
	struct iop__jobx *x;		/* NULL, or set while held */
	_Atomic unsigned char state;	/* enum iop__state */
	atomic_bool cancel;		/* iop_cancel() was called */
	signed char prio;		/* IOP_PRIO_MIN..IOP_PRIO_MAX */
	unsigned char xflags;		/* IOP__X_*: set while held, except
					 * DLLIST, BACKLOG, READMIT, DOOMED
					 * and ENDHEAD (lock) */
	unsigned char nwaiters;		/* threads in iop_await(); lock */
};

/* The extras of @job, allocated on first use (NULL: out of memory).
 * Only for a job held by the calling thread. */
struct iop__jobx *iop__jobx(struct iop_job *job);

static inline struct iop_job *iop__chain_next(const struct iop_job *job)
{
	return job->x ? job->x->chain_next : NULL;
}

static inline struct iop_job *iop__chain_prev(const struct iop_job *job)
{
	return job->x ? job->x->chain_prev : NULL;
}

static inline struct iop_group *iop__group_of(const struct iop_job *job)
{
	return job->x ? job->x->group : NULL;
}

/* A lane: guarded by the pool lock, lives until destroy. */
struct iop_lane {
	struct iop_pool *pool;
	struct iop_lane *next;		/* pool->lanes */
	unsigned cap;
	unsigned running;
	unsigned readmitted;		/* back from the backlog, not started */
	struct iop__queue backlog;	/* jobs waiting for room, in order */
	char name[32];
};

/* Priority levels of the run queue, lowest first. */
#define IOP__LEVELS	(IOP_PRIO_MAX - IOP_PRIO_MIN + 1)
/* Starts of higher levels a waiting level lets pass before its turn. */
#define IOP__AGE_SKIPS	8

/* The run queue: one FIFO per priority; lock. */
struct iop__runq {
	struct iop__queue level[IOP__LEVELS];
	unsigned mask;			/* bit i: level[i] not empty */
	_Atomic unsigned pub;		/* a copy of mask, for a worker
					 * running a batch without the lock */
	unsigned skips[IOP__LEVELS];	/* starts that passed a level over */
};

/*
 * Statistics one thread collects.  Each counter is written by one thread
 * only (a worker, or anyone holding the lock for pool->inline_stats) with
 * a relaxed load and store, and read by iop_pool_stats() at any time.
 */
struct iop__stats {
	_Atomic uint64_t completed, failed, long_ran;
	_Atomic uint64_t queued_ns[IOP_OP_COUNT][IOP_HIST_BUCKETS];
	_Atomic uint64_t running_ns[IOP_OP_COUNT][IOP_HIST_BUCKETS];
};

/* One worker thread. */
struct iop__worker {
	struct iop__worker *next, *prev;	/* pool->workers / exited;
						 * lock and stats_lock */
	struct iop_pool *pool;
	pthread_t thread;
	_Atomic int64_t started;	/* start of the job in hand, 0: none */
	_Atomic int64_t due;		/* when it should end, 0: unknown */
	/*
	 * A batch of short jobs taken at once (see run_batch_locked()):
	 * batch[0..bcount) is set under the lock; the worker claims each
	 * next one with an atomic add on bnext (a worker out of short jobs
	 * claims the polling thread's the same way, under the lock), and
	 * another thread that finds the worker stuck takes the rest back
	 * with an exchange.  Once a batch is over, bnext >= bcount.
	 */
	bool small;			/* running a batch; lock */
	_Atomic unsigned bcount;	/* stored under the lock */
	_Atomic unsigned bnext;
	struct iop_job *batch[IOP__BATCH_MAX];
	/* What run_same() keeps of each job it ran, for the statistics. */
	struct {
		int64_t t_queued;
		ssize_t result;
	} ran[IOP__BATCH_MAX];
	struct iop__stats stats;
	/* Whether its jobs block, from one in IOP__BLOCK_SAMPLE (worker.c);
	 * this worker's own. */
	unsigned long njobs;
	bool blocks;
};

/*
 * A group: its counters are guarded by the pool lock.  It lives until its
 * callback has returned, or until destroy if it is never sealed.
 */
struct iop_group {
	struct iop_pool *pool;
	iop_group_fn *done;
	void *arg;
	struct iop_job *carrier;	/* delivers the callback via pool->done */
	struct iop_group *next, *prev;	/* pool->groups; lock */
	struct iop_group_result r;	/* lock */
	unsigned live;			/* members not yet ended; lock */
	bool sealed;			/* lock */
	atomic_bool cancelled;		/* set under lock, read anywhere */
};

/* A thread's open batch (see iop_batch_begin()). */
struct iop__batch {
	struct iop_pool *pool;		/* NULL: no batch open */
	unsigned depth;
	unsigned nheld;
	struct iop__queue held;
};

struct iop__notify {
	int rfd;			/* readable while completions wait */
	int wfd;			/* == rfd for an eventfd */
	atomic_bool rung;		/* set after each write, cleared by
					 * the drain that reads it */
};

/* Reads in the kernel through Linux AIO (aio.c). */
struct iop__aio_slots;
struct iop__aio {
	atomic_int state;		/* 0: not set up, 1: ready, -1: not
					 * used (for good); set under lock */
	unsigned long ctx;		/* the aio_context_t, once ready */
	struct iop__aio_slots *slots;	/* once ready; free ones: lock */
	atomic_uint inflight;		/* reads submitted, not collected */
	/* Collected: result >= 0, or < 0. */
	_Atomic uint64_t nsubmitted, ncompleted, nfailed;
};

/*
 * The head of a slab; its jobs follow, and are handed out in order (a job
 * is touched, and costs resident memory, only once it is first used).
 */
struct iop__slab {
	struct iop_pool *pool;		/* set once, read-only after */
	struct iop__slab *next;		/* pool->slabs; lock */
	unsigned used;			/* jobs handed out so far; lock */
};

#define IOP__SLAB_HEAD	64		/* bytes before the first job */
#define IOP__SLAB_JOBS	((IOP__SLAB_BYTES - IOP__SLAB_HEAD) / \
			 sizeof(struct iop_job))

static inline struct iop__slab *iop__slab_of(const struct iop_job *job)
{
	return (struct iop__slab *)((uintptr_t)job & ~(IOP__SLAB_BYTES - 1));
}

static inline struct iop_job *iop__slab_job(struct iop__slab *slab,
					    unsigned i)
{
	return (struct iop_job *)((char *)slab + IOP__SLAB_HEAD) + i;
}

/* The pool a job belongs to, for the job's whole life. */
static inline struct iop_pool *iop__job_pool(const struct iop_job *job)
{
	return iop__slab_of(job)->pool;
}

struct iop_pool {
	pthread_mutex_t lock;
	pthread_cond_t work_cond;	/* workers wait for jobs; lock */
	pthread_cond_t await_cond;	/* iop_await() and destroy wait; lock */
	pthread_cond_t room_cond;	/* IOP_OVERFLOW_BLOCK submits; lock */
	pthread_cond_t exit_cond;	/* destroy waits for workers; lock */
	pthread_cond_t dl_cond;		/* the watchdog waits; lock */
	struct iop__runq runq;		/* queued, not running; lock */
	_Atomic uint64_t nqueued;	/* in runq and lane backlogs; lock */
	struct iop__node *cache;	/* free jobs; lock */
	struct iop__slab *slabs;	/* all job memory, newest first; lock */
	unsigned nidle;			/* workers in cond_wait; lock */
	unsigned nwakeups;		/* signals sent, not yet taken; lock */
	bool defer_signals;		/* held by iop__lock_waking(); lock */
	unsigned nsignals;		/* for iop__unlock_waking(); lock */
	unsigned nawaiting;		/* threads in iop_await(); lock */
	unsigned nblocked;		/* submits waiting for room; lock */
	unsigned nrunning;		/* workers running jobs; lock */
	unsigned ncopying;		/* of those, reads that copy
					 * (iop__copy_read()); lock */
	int64_t t_moved;		/* when a worker last started or
					 * ended a job (0 without timing);
					 * lock */
	bool spinning;			/* a worker looks for short jobs
					 * without the lock; lock */
	bool watching;			/* an idle worker watches batches;
					 * lock */
	_Atomic unsigned nsmall;	/* workers running batches of short
					 * jobs, that will come back for
					 * more; lock */
	unsigned min_threads;		/* lock */
	unsigned max_threads;		/* lock */
	_Atomic unsigned nthreads;	/* workers alive; lock */
	unsigned nstarting;		/* started, not yet running; lock */
	struct iop__worker *workers;	/* alive; lock and stats_lock */
	struct iop__worker *exited;	/* to be joined; lock */
	struct iop_group *groups;	/* every group not yet delivered; lock */
	struct iop_lane *lanes;		/* lock */
	struct iop_job *deadlines;	/* queued jobs with one; lock */
	pthread_t watchdog;
	bool watchdog_started;		/* lock */
	int64_t stale_check;		/* when the watchdog looks at jobs
					 * left to busy workers, 0: no need;
					 * lock */
	atomic_bool shutdown;		/* set under lock, read anywhere */
	atomic_bool forked;		/* this is a child's copy */

	/* Counted under the lock, read anywhere. */
	_Atomic uint64_t nsubmitted, ncancelled, ntimed_out, nstarted;
	_Atomic uint64_t nfailed_unrun;	/* ended with an error, not run */
	/* Running time per kind of job, see sched.c. */
	_Atomic uint64_t est[IOP__EST_SLOTS];
	/* Reads served at submit (iop__read_now()); atomic adds. */
	_Atomic uint64_t nread_now;
	/* O_DIRECT reads in the kernel (aio.c). */
	struct iop__aio aio;
	/* Per descriptor (hashed), what iop__read_now() knows; sched.c. */
	_Atomic uint64_t nowait[IOP__NOWAIT_FDS];
	pthread_mutex_t stats_lock;	/* workers list, retired */
	struct iop__stats retired;	/* of exited workers; stats_lock */
	struct iop__stats inline_stats;	/* jobs run outside workers; lock */
	/*
	 * The polling thread as it runs short jobs in iop_wait() (see
	 * iop__help()): its batch, claimable like a worker's (helper.small
	 * says whether one is running), and its statistics.  Not on the
	 * workers list.
	 */
	struct iop__worker helper;
	int64_t helper_copy;		/* when the polling thread started
					 * the read it copies
					 * (iop__help_copy()), 0: none; lock */
	atomic_bool stood_down;		/* a worker left a read that copies
					 * to the polling thread; set under
					 * lock, taken by iop__pay_wake() */
	bool capped;			/* a worker left a job queued, so
					 * that no more than max_threads
					 * jobs run with the helper's; lock */

	struct iop__stack done;		/* finished callback jobs */
	struct iop__stack freed;	/* released jobs, for reuse */
	atomic_bool polling;		/* a thread is in poll/wait/destroy */
	/*
	 * Holding the doorbell (complete.c): set by the thread in
	 * iop_wait() while it sleeps no longer than IOP__HOLD_NS, and
	 * the workers that hold a ring back.  Sequentially consistent.
	 */
	atomic_bool hold_ok;
	_Atomic unsigned nheld;
	/* The thread in iop_wait() sleeps without looking at batches:
	 * one that starts rings (complete.c).  Sequentially consistent. */
	atomic_bool unwatched;

	/* Owned by the thread that holds `polling`. */
	struct iop__queue pending;	/* submitted by callbacks */
	unsigned npending;
	struct iop__node *pcache;	/* free jobs for those submits */
	unsigned npcache;
	struct iop__node *ready;	/* taken, not yet run (a budget) */
	struct iop__queue own;		/* plain callback jobs that ended on
					 * this thread: no atomic push,
					 * taken with pool->done */
	bool in_wait;			/* inside iop_wait(), which runs
					 * short jobs it queued itself */
	bool owe_wake;			/* short jobs were queued with no
					 * worker woken for them */
	bool self_pushed;		/* a callback's job ended on this
					 * thread, unannounced */

	/* Set at creation, read-only after. */
	struct iop__notify notify;
	unsigned ncpus;			/* online when it was created */
	size_t stack_size;
	int64_t idle_ns;
	int64_t long_ns;
	uint64_t max_queued;		/* 0: no limit */
	int overflow;
	unsigned overflow_ms;
	unsigned flags;			/* IOP_POOL_* */
	struct iop_pool *reg_next, *reg_prev;	/* all pools; registry lock */
};

/*
 * The library's thread-locals, in the initial-exec model: a submit reads
 * them several times, and the default model for a shared library calls
 * __tls_get_addr for each.  They are a few words of the static TLS space
 * glibc reserves for this, so dlopen() of the library still works.
 */
#if defined(__GNUC__)
#define IOP__TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define IOP__TLS _Thread_local
#endif

/* In a loop that waits for another thread's store. */
static inline void iop__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* A worker runs short jobs and will come back for more, or a signalled
 * one is on its way.  Lock held. */
static inline bool iop__worker_coming_locked(const struct iop_pool *pool)
{
	return pool->nsmall > 0 || pool->nwakeups > 0;
}

static inline struct iop_job *iop__job_of(struct iop__node *n)
{
	return (struct iop_job *)n;	/* node is the first member */
}

/*
 * The pool whose callbacks the calling thread is running right now, if any.
 * Submits from there go to the pool's pending list instead of the lock.
 */
extern IOP__TLS struct iop_pool *iop__current;

/* The calling thread's batch, and the job its worker is running. */
extern IOP__TLS struct iop__batch iop__batch;
extern IOP__TLS struct iop_job *iop__running;

/* The pool this thread is polling (in iop_poll() or iop_wait()). */
extern IOP__TLS struct iop_pool *iop__polling;

bool iop__held_here(const struct iop_job *job);

/* pool.c */
bool iop__pool_forked(const struct iop_pool *pool);

/* worker.c */
int iop__spawn_locked(struct iop_pool *pool);
int iop__wake_locked(struct iop_pool *pool, unsigned n);
int iop__wake_any_locked(struct iop_pool *pool, unsigned n);
void iop__lock_waking(struct iop_pool *pool);
void iop__unlock_waking(struct iop_pool *pool);
void iop__run_here(struct iop_pool *pool, struct iop_job *job);
void iop__run_helping(struct iop_pool *pool, struct iop_job *job);
bool iop__help(struct iop_pool *pool);
bool iop__ensure_worker_locked(struct iop_pool *pool);
unsigned iop__unstick_locked(struct iop_pool *pool, int64_t now);
void iop__drain_inline(struct iop_pool *pool);
void iop__stop_workers(struct iop_pool *pool);
void iop__free_workers(struct iop_pool *pool);

/* sched.c */
iop_job *iop__submit(struct iop_pool *pool, const struct iop__req *req);
iop_job *iop__read_now(struct iop_pool *pool, const struct iop__req *req);

/* aio.c */
bool iop__aio_usable(struct iop_pool *pool, const struct iop__req *req);
bool iop__aio_submit(struct iop_pool *pool, struct iop_job *job);
bool iop__aio_busy(const struct iop_pool *pool);
void iop__aio_collect(struct iop_pool *pool);
void iop__aio_finish(struct iop_pool *pool);
void iop__aio_free(struct iop_pool *pool);
uint64_t iop__job_kind(const struct iop_job *job);
int64_t iop__estimate(const struct iop_pool *pool, uint64_t kind);
void iop__estimate_add(struct iop_pool *pool, uint64_t kind, int64_t ns);
bool iop__small(const struct iop_pool *pool, const struct iop_job *job);
bool iop__device_read(struct iop_pool *pool, const struct iop_job *job);
bool iop__device_read_next_locked(struct iop_pool *pool);
bool iop__big_read(const struct iop_job *job);
bool iop__copy_read(struct iop_pool *pool, const struct iop_job *job);
void iop__read_slept(struct iop_pool *pool, int fd, bool slept);
bool iop__copy_read_next_locked(struct iop_pool *pool);
bool iop__next_may_be_short_locked(const struct iop_pool *pool);
struct iop_job *iop__take_copy_locked(struct iop_pool *pool, int64_t budget);
bool iop__help_copy(struct iop_pool *pool, int64_t deadline);
struct iop_job *iop__take_small_locked(struct iop_pool *pool,
				       const struct iop_job *want);
unsigned iop__take_run_locked(struct iop_pool *pool, uint64_t kind,
			      struct iop_job **out, unsigned max);
void iop__publish_pending(struct iop_pool *pool, bool round_end);
void iop__pay_wake(struct iop_pool *pool, bool leaving);
void iop__queue_job_locked(struct iop_pool *pool, struct iop_job *job);
void iop__unqueue_locked(struct iop_pool *pool, struct iop_job *job);
void iop__requeue_front_locked(struct iop_pool *pool, struct iop_job *job);
unsigned iop__wakes_for_locked(struct iop_pool *pool,
			       const struct iop_job *first, unsigned n);
struct iop_job *iop__pick_locked(struct iop_pool *pool, int64_t *now);
void iop__lane_release_locked(struct iop_pool *pool, struct iop_lane *lane);
void iop__dl_add_locked(struct iop_pool *pool, struct iop_job *job);
void iop__dl_remove_locked(struct iop_pool *pool, struct iop_job *job);
void iop__cancel_queued_locked(struct iop_pool *pool,
			       const struct iop_group *group);
void iop__end_queued_locked(struct iop_pool *pool,
			    const struct iop_group *group, ssize_t result);
void iop__sched_free_all(struct iop_pool *pool);
int64_t iop__now_ns(void);

/* stats.c */
/* How a job ran, for the statistics; times are 0 without timing. */
struct iop__ran {
	unsigned op;
	uint64_t kind;
	int64_t t_queued, t_start, t_end;
	int64_t long_ns;
};

void iop__stats_ran(struct iop__stats *st, const struct iop__ran *ran,
		    ssize_t result);
void iop__stats_add(struct iop__stats *to, const struct iop__stats *from);

static inline void iop__count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed)
			      + n, memory_order_relaxed);
}

/* job.c */
struct iop_job *iop__job_alloc_locked(struct iop_pool *pool);
struct iop_job *iop__job_alloc_polling(struct iop_pool *pool);
void iop__job_release_polling(struct iop_pool *pool, struct iop_job *job);
void iop__job_release_locked(struct iop_pool *pool, struct iop_job *job);
void iop__job_trim_polling(struct iop_pool *pool);
void iop__job_free_all(struct iop_pool *pool);
void iop__cancel_waiting_locked(struct iop_pool *pool,
				const struct iop_group *group);
void iop__end_locked(struct iop_job *job, ssize_t result);
void iop__chain_advance_locked(struct iop_job *job);
void iop__handover_locked(struct iop_pool *pool, struct iop__queue *held,
			  int64_t t_queued);
void iop__misuse(const char *what);

/* batch.c */
bool iop__group_member_ended_locked(struct iop_job *job, ssize_t result);
void iop__group_free_all(struct iop_pool *pool);
bool iop__job_dead(const struct iop_job *job);

/* complete.c */
void iop__complete(struct iop_job *job);
void iop__complete_holding(struct iop_job *job);
void iop__hold_check(struct iop_pool *pool, bool keep);
void iop__push_done_locked(struct iop_job *job);
int iop__poll_once(struct iop_pool *pool, bool force);

/* notify.c */
int iop__notify_open(struct iop__notify *n);
void iop__notify_close(struct iop__notify *n);
void iop__notify_signal(struct iop__notify *n);
void iop__notify_drain(struct iop__notify *n, bool force);
int iop__notify_wait(struct iop__notify *n, int timeout_ms);
int iop__notify_wait_ns(struct iop__notify *n, int64_t timeout_ns);

/* ops.c */
ssize_t iop__job_run(struct iop_job *job);
bool iop__job_whole(const struct iop_job *job, ssize_t result);

_Static_assert(offsetof(struct iop_job, node) == 0,
	       "lists link jobs through their first member");
_Static_assert(sizeof(void *) != 8 || sizeof(struct iop_job) <= 88,
	       "a queued job costs the pool at most 88 bytes on 64-bit");
_Static_assert(sizeof(struct iop__slab) <= IOP__SLAB_HEAD,
	       "a slab's head fits before its first job");
_Static_assert(sizeof(void *) != 8 || sizeof(struct iop_options) == 80,
	       "struct iop_options never changes size");
_Static_assert((int)IOP__OP_LISTDIR == (int)IOP_OP_LISTDIR &&
	       (int)IOP__OP_CALL == (int)IOP_OP_CALL &&
	       (int)IOP__OP_GROUP == (int)IOP_OP_COUNT,
	       "internal op numbers are the public ones");

#endif /* IOPOOL_INT_H */
