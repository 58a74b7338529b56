/*
 * Direct reads through the kernel: an iop_read() on an O_DIRECT
 * descriptor goes to the device with Linux's asynchronous I/O (io_submit)
 * from the submitting thread, not to a worker.  Such a read never touches
 * the page cache, so the kernel queues it and returns at once; a worker
 * would only sit blocked in pread() for it, at two or more context
 * switches per read.  The kernel adds 1 to the pool's eventfd for each
 * read it completes (IOCB_FLAG_RESFD), so the descriptor becomes readable
 * as it does for a worker's ring; the polling thread then collects the
 * results (io_getevents(), never blocking) before it takes the completion
 * stack, and the jobs go on from there like any other (complete.c).
 *
 * Only plain callback reads take this path: a future could be awaited by
 * a thread that never polls, and held jobs (chains, groups, lanes,
 * deadlines) and pools with max_queued keep the worker path's rules.  A
 * read the kernel refuses at submit (a bad descriptor, a full context)
 * goes to a worker instead, which reports what pread() says; one it
 * takes and fails (misaligned for O_DIRECT: -EINVAL) completes with the
 * error pread() would have returned.  Pools created with IOP_POOL_NO_AIO, inline pools,
 * builds whose pool descriptor is a pipe, and systems where io_setup()
 * fails (no AIO in the kernel, a sandbox, aio-max-nr reached) never take
 * it.
 *
 * An in-flight read is IOP_RUNNING: iop_cancel() answers -EBUSY as for a
 * worker's job, and the read ends on its own.  The context and its iocbs
 * are set up at the first such read; iop_pool_destroy() waits for every
 * read still in the kernel before it runs the last callbacks.
 *
 * Each read takes a slot: an iocb that stays in place until the read is
 * collected (the kernel copies it at submit, but memory checkers read it
 * again at completion), and the job it belongs to.  Slots are taken and
 * given back under pool->lock.
 */
#include "iopool-int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef IOP_LINUX_AIO
#include <linux/aio_abi.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct iop__aio_slots {
	struct iocb cb[IOP__AIO_DEPTH];
	_Atomic(struct iop_job *) job[IOP__AIO_DEPTH];
	unsigned free[IOP__AIO_DEPTH];	/* a stack of free slot numbers */
	unsigned nfree;
};

/* The system calls, which the C library does not wrap. */
static int sys_setup(unsigned nr, aio_context_t *ctx)
{
	return (int)syscall(SYS_io_setup, nr, ctx);
}

static int sys_destroy(aio_context_t ctx)
{
	return (int)syscall(SYS_io_destroy, ctx);
}

static int sys_submit(aio_context_t ctx, long nr, struct iocb **cbs)
{
	return (int)syscall(SYS_io_submit, ctx, nr, cbs);
}

static int sys_getevents(aio_context_t ctx, long min, long nr,
			 struct io_event *ev, struct timespec *ts)
{
	return (int)syscall(SYS_io_getevents, ctx, min, nr, ev, ts);
}

/* Set the context up, once; false if it cannot be (for good). */
static bool ready(struct iop_pool *pool)
{
	struct iop__aio *a = &pool->aio;
	struct iop__aio_slots *s;
	aio_context_t ctx = 0;
	int state;

	state = atomic_load_explicit(&a->state, memory_order_acquire);
	if (state != 0)
		return state > 0;
	pthread_mutex_lock(&pool->lock);
	state = atomic_load_explicit(&a->state, memory_order_relaxed);
	if (state == 0) {
		s = calloc(1, sizeof(*s));
		if (s && sys_setup(IOP__AIO_DEPTH, &ctx) == 0) {
			for (unsigned i = 0; i < IOP__AIO_DEPTH; i++)
				s->free[i] = IOP__AIO_DEPTH - 1 - i;
			s->nfree = IOP__AIO_DEPTH;
			a->ctx = ctx;
			a->slots = s;
			state = 1;
		} else {
			/* For good, out of memory included: the workers
			 * serve the reads. */
			free(s);
			state = -1;
		}
		atomic_store_explicit(&a->state, state, memory_order_release);
	}
	pthread_mutex_unlock(&pool->lock);
	return state > 0;
}

/* A free slot for @job, or -1.  The job pointer is published with release
 * order: the thread that collects the read sees the job as submitted. */
static int slot_get(struct iop_pool *pool, struct iop_job *job)
{
	struct iop__aio_slots *s = pool->aio.slots;
	int i = -1;

	pthread_mutex_lock(&pool->lock);
	if (s->nfree > 0)
		i = (int)s->free[--s->nfree];
	pthread_mutex_unlock(&pool->lock);
	if (i >= 0)
		atomic_store_explicit(&s->job[i], job, memory_order_release);
	return i;
}

static void slots_put_locked(struct iop__aio_slots *s, const unsigned *idx,
			     int n)
{
	for (int i = 0; i < n; i++)
		s->free[s->nfree++] = idx[i];
}

bool iop__aio_usable(struct iop_pool *pool, const struct iop__req *req)
{
	return !(pool->flags & (IOP_POOL_NO_AIO | IOP_POOL_INLINE)) &&
	       req->done && pool->notify.wfd == pool->notify.rfd &&
	       ready(pool);
}

bool iop__aio_submit(struct iop_pool *pool, struct iop_job *job)
{
	const struct iop__req *req = &job->req;
	struct iop__aio_slots *s = pool->aio.slots;
	struct iocb *cb;
	unsigned idx;
	int i, r;

	i = slot_get(pool, job);
	if (i < 0)
		return false;
	cb = &s->cb[i];
	memset(cb, 0, sizeof(*cb));
	cb->aio_data = (uint64_t)i;
	cb->aio_lio_opcode = IOCB_CMD_PREAD;
	cb->aio_fildes = (uint32_t)req->fd;
	cb->aio_buf = (uint64_t)(uintptr_t)req->u.rw.buf;
	cb->aio_nbytes = req->u.rw.len;
	cb->aio_offset = (int64_t)req->u.rw.offset;
	cb->aio_flags = IOCB_FLAG_RESFD;
	cb->aio_resfd = (uint32_t)pool->notify.rfd;
	/* Counted first, so that a poller never sees a read in the kernel
	 * while the count says there is none. */
	atomic_fetch_add_explicit(&pool->aio.inflight, 1, memory_order_seq_cst);
	do
		r = sys_submit(pool->aio.ctx, 1, &cb);
	while (r < 0 && errno == EINTR);
	if (r == 1) {
		atomic_fetch_add_explicit(&pool->aio.nsubmitted, 1,
					  memory_order_relaxed);
		return true;
	}
	/* Refused (EBADF, EAGAIN for a full context): the caller hands
	 * the read to a worker, which reports what pread() says. */
	atomic_fetch_sub_explicit(&pool->aio.inflight, 1, memory_order_relaxed);
	idx = (unsigned)i;
	pthread_mutex_lock(&pool->lock);
	slots_put_locked(s, &idx, 1);
	pthread_mutex_unlock(&pool->lock);
	return false;
}

/*
 * Collect what the kernel has completed, and end those jobs: at least
 * @min of them (blocking until then), or none if none has.  Returns how
 * many ended.
 */
static unsigned collect(struct iop_pool *pool, long min)
{
	struct iop__aio_slots *s = pool->aio.slots;
	struct io_event ev[IOP__AIO_BATCH];
	struct iop_job *job[IOP__AIO_BATCH];
	unsigned idx[IOP__AIO_BATCH];
	struct timespec zero = { 0, 0 };
	int n;

	do
		n = sys_getevents(pool->aio.ctx, min, IOP__AIO_BATCH, ev,
				  min ? NULL : &zero);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		idx[i] = (unsigned)ev[i].data;
		job[i] = atomic_load_explicit(&s->job[idx[i]],
					      memory_order_acquire);
		/* The kernel reports errors as -errno, as the pool does. */
		job[i]->result = (ssize_t)ev[i].res;
		atomic_fetch_add_explicit(job[i]->result >= 0 ?
					  &pool->aio.ncompleted :
					  &pool->aio.nfailed, 1,
					  memory_order_relaxed);
	}
	pthread_mutex_lock(&pool->lock);
	slots_put_locked(s, idx, n);
	pthread_mutex_unlock(&pool->lock);
	atomic_fetch_sub_explicit(&pool->aio.inflight, (unsigned)n,
				  memory_order_relaxed);
	for (int i = 0; i < n; i++)
		iop__complete(job[i]);
	return (unsigned)n;
}

bool iop__aio_busy(const struct iop_pool *pool)
{
	return atomic_load_explicit(&pool->aio.inflight,
				    memory_order_seq_cst) > 0;
}

/* On the polling thread, after it drained the descriptor. */
void iop__aio_collect(struct iop_pool *pool)
{
	while (iop__aio_busy(pool) &&
	       collect(pool, 0) == IOP__AIO_BATCH)
		;
}

/*
 * iop_pool_destroy(), once no worker is left: wait for every read still
 * in the kernel, end it, and close the context.  No read starts after
 * this (the pool refuses submits once destroy has begun).
 */
void iop__aio_finish(struct iop_pool *pool)
{
	struct iop__aio *a = &pool->aio;

	if (atomic_load_explicit(&a->state, memory_order_acquire) <= 0)
		return;
	while (iop__aio_busy(pool))
		collect(pool, 1);
	atomic_store_explicit(&a->state, -1, memory_order_relaxed);
	sys_destroy(a->ctx);
}

/* Free the slots (in a forked child, where the context is the parent's,
 * only this). */
void iop__aio_free(struct iop_pool *pool)
{
	free(pool->aio.slots);
	pool->aio.slots = NULL;
}
#else
bool iop__aio_usable(struct iop_pool *pool, const struct iop__req *req)
{
	(void)pool;
	(void)req;
	return false;
}

bool iop__aio_submit(struct iop_pool *pool, struct iop_job *job)
{
	(void)pool;
	(void)job;
	return false;
}

bool iop__aio_busy(const struct iop_pool *pool)
{
	(void)pool;
	return false;
}

void iop__aio_collect(struct iop_pool *pool)
{
	(void)pool;
}

void iop__aio_finish(struct iop_pool *pool)
{
	(void)pool;
}

void iop__aio_free(struct iop_pool *pool)
{
	(void)pool;
}
#endif
