/*
 * iopool: run blocking I/O on a pool of worker threads and take the
 * completions back on your own thread.
 *
 * The flow of a job: a submit call (iop_read(), iop_call(), ...) queues the
 * job; a worker thread runs it synchronously; the finished job goes onto the
 * pool's completion queue and the pool's file descriptor (iop_pool_fd())
 * becomes readable; the program's own thread then calls iop_poll() or
 * iop_wait(), which runs the completion callbacks.  A job submitted without
 * a callback is a future: some thread collects its result with iop_await().
 *
 * Conventions, for every call below:
 * - A job's result is >= 0 (bytes, a value) or a negative errno value.
 * - Calls returning int return >= 0 on success or a negative errno value.
 * - Calls returning a pointer return NULL and set errno on failure.
 * - If a submit call fails, nothing was queued and no callback will run.
 *   If it succeeds, the job's callback runs exactly once (or, for a
 *   future, iop_await() returns its result exactly once).
 * - The library never prints, logs or exits.  Misuse that cannot be detected
 *   safely (using a job handle after it was released) is undefined; where
 *   the library notices it, it aborts with a message on stderr.
 */
#ifndef IOPOOL_H
#define IOPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define IOP_EXPORT __attribute__((visibility("default")))
#else
#define IOP_EXPORT
#endif

/* A pool of worker threads with one completion queue.  Opaque. */
typedef struct iop_pool iop_pool;

/*
 * One submitted job.  Opaque, and owned by the pool from submit until it is
 * released: a callback job is released when its callback returns, a future
 * when iop_await() returns.  The handle must not be used after that.
 */
typedef struct iop_job iop_job;

/*
 * A completion callback.  @job is the finished job, @result its result
 * (>= 0, or a negative errno value; -ECANCELED when the job never ran), and
 * @arg the pointer given at submit.  It runs on the thread that called
 * iop_poll(), iop_wait() or iop_pool_destroy(), never on a worker and never
 * inside a submit call.  It may submit new jobs.  It must not call
 * iop_poll(), iop_wait() or iop_pool_destroy() on the same pool (they
 * refuse, see there).  After it returns, @job is gone.
 */
typedef void iop_done_fn(iop_job *job, ssize_t result, void *arg);

/*
 * A work function for iop_call().  It runs on a worker thread with every
 * signal blocked; its return value becomes the job's result (by convention
 * >= 0, or a negative errno value).
 */
typedef ssize_t iop_work_fn(void *ctx);

/* The offset for iop_read() that means "the descriptor's current position". */
#define IOP_OFFSET_CURRENT ((int64_t)-1)

/* The most worker threads one pool may have. */
#define IOP_THREADS_MAX 1024

/*
 * Options for iop_pool_new().  Zero in any field means the default, so
 * `struct iop_options opts = { .threads = 8 };` sets just what it names.
 *
 * How this struct grows: its size never changes.  A new field takes the
 * place of reserved words, and zero keeps meaning "the default", so a
 * program built against an older header (which zeroed those words) gets
 * the defaults.  The reserved words must be zero: a library older than the
 * header a program was built with answers a field it does not know with
 * EINVAL instead of ignoring it.
 */
struct iop_options {
	/*
	 * Worker threads, 1 to IOP_THREADS_MAX.  0: the default, 4.  Workers
	 * spend their time blocked in the kernel, not computing, so the count
	 * bounds how many blocking calls are in flight rather than how many
	 * cores are used.  Four keeps a local disk's queue busy for cached and
	 * sequential work without a crowd of threads on a small machine, and is
	 * what libuv and libeio users already tune from.  Devices with deep
	 * queues (NVMe, network file systems) want more: say 32 to 64 for
	 * cold random reads.
	 */
	unsigned threads;
	/* Reserved, must be 0 (see above). */
	unsigned reserved0;
	/*
	 * Stack size of each worker thread in bytes, 16 KiB to 1 GiB.  0: the
	 * default, 1 MiB: enough for work functions with large frames
	 * (resolvers, compression) while far below the 8 MiB a plain thread
	 * reserves.  Only the pages a worker touches use memory.
	 */
	size_t stack_size;
	/* Reserved, must be 0 (see above). */
	uint64_t reserved[8];
};

/*
 * Create a pool and start its worker threads.  @opts NULL, or all zero,
 * gives the defaults; the pool keeps no pointer to @opts.
 * Returns the pool, or NULL with errno set: EINVAL for an option out of
 * range or a non-zero reserved word, ENOMEM, or what eventfd(2) or
 * pthread_create(3) reported (EMFILE, ENFILE, EAGAIN, ...).
 * Any thread may call it.
 */
IOP_EXPORT iop_pool *iop_pool_new(const struct iop_options *opts);

/*
 * Shut the pool down and free it.  Submits from now on fail with
 * ESHUTDOWN.  Jobs still queued end with -ECANCELED without running; jobs
 * already running finish.  Every callback still due runs on the calling
 * thread before this returns (a callback that submits gets ESHUTDOWN).
 * Futures end the same way; threads already blocked in iop_await() on them
 * get their results before the pool goes, and futures never awaited are
 * released by destroy, so their handles become invalid.  Then the workers
 * are joined, the pool's descriptor is closed and all its memory freed.
 *
 * @pool NULL does nothing, so destroy-then-NULL patterns are safe.
 * Called from inside one of this pool's callbacks it refuses: it sets errno
 * to EDEADLK and returns without touching the pool.
 * Call it from one thread, once no other thread submits to the pool.  A job
 * that never returns keeps destroy waiting for it.
 */
IOP_EXPORT void iop_pool_destroy(iop_pool *pool);

/*
 * The pool's completion descriptor, for poll(2), epoll(7), select(2),
 * libuv's uv_poll or GLib's g_unix_fd_add.  It is readable while
 * completions wait for iop_poll(); iop_poll() and iop_wait() drain it.
 * It is close-on-exec and non-blocking, and belongs to the pool: do not
 * read, write or close it.  A burst of completions makes it readable once,
 * so wake on readability, then call iop_poll().  It may rarely be readable
 * with nothing waiting (iop_poll() then returns 0).  Futures never make it
 * readable.  Valid until iop_pool_destroy(); any thread may call this.
 * Returns the descriptor, or -EINVAL for @pool NULL.
 */
IOP_EXPORT int iop_pool_fd(const iop_pool *pool);

/*
 * Run the callbacks of every job that has finished, on the calling thread;
 * never blocks.  Returns how many callbacks ran (0 if none were ready), or
 * -EDEADLK when called from inside one of this pool's callbacks, -EBUSY
 * when another thread is polling this pool at the same moment, or -EINVAL
 * for @pool NULL.
 * Jobs that callbacks submit are handed to the workers when the batch of
 * callbacks ends (or when a callback waits for a future), so that a burst
 * of resubmissions costs one hand-off, not one each.
 * One thread at a time may poll a pool; any thread may be that thread.
 */
IOP_EXPORT int iop_poll(iop_pool *pool);

/*
 * Like iop_poll(), but first block until at least one completion is ready
 * or @timeout_ms milliseconds have passed.  @timeout_ms -1 waits without
 * limit, 0 does not block (the same as iop_poll()).  Signals that interrupt
 * the wait are retried, with the time already spent subtracted.
 * Returns how many callbacks ran (0 on timeout), or -EINVAL for @pool NULL
 * or a timeout below -1, -EDEADLK or -EBUSY as iop_poll(), or what poll(2)
 * reported (-ENOMEM).  Waiting without limit
 * while no callback job is in flight blocks until another thread submits
 * one and it completes.
 */
IOP_EXPORT int iop_wait(iop_pool *pool, int timeout_ms);

/*
 * Queue a read of up to @len bytes into @buf: pread(2) at @offset, or, with
 * @offset IOP_OFFSET_CURRENT, read(2) at the descriptor's current position
 * (pipes, FIFOs, sockets, terminals).  Interrupted calls are retried.
 * The result is what the call returned: the bytes read (>= 0; fewer than
 * @len at end of file or on a pipe, 0 at end of file) or -errno (-EBADF,
 * -EISDIR, -EINVAL, ...).  @len 0 is valid.
 *
 * Memory: @buf belongs to the pool until the callback runs (or the future
 * is awaited); @fd must stay open until then, since a closed number can be
 * reused by another open.  @done NULL makes the job a future (iop_await()).
 * Returns the job, or NULL with errno EINVAL (@pool NULL, @len above
 * SSIZE_MAX, @buf NULL with @len > 0, @offset negative other than
 * IOP_OFFSET_CURRENT), ENOMEM, or ESHUTDOWN once destroy has begun.
 * Any thread may submit, concurrently with other submitters.
 */
IOP_EXPORT iop_job *iop_read(iop_pool *pool, int fd, void *buf, size_t len,
			     int64_t offset, iop_done_fn *done, void *arg);

/*
 * Queue a call of @fn(@ctx) on a worker; its return value is the job's
 * result.  This is how any blocking call of existing code is offloaded.
 * @ctx belongs to the caller; the pool only passes it on.  It must stay
 * valid until @fn has returned, which is before the callback runs (or the
 * future is awaited).  @done NULL makes the job a future (iop_await()).
 * Returns the job, or NULL with errno EINVAL (@pool or @fn NULL), ENOMEM,
 * or ESHUTDOWN once destroy has begun.  Any thread may submit.
 */
IOP_EXPORT iop_job *iop_call(iop_pool *pool, iop_work_fn *fn, void *ctx,
			     iop_done_fn *done, void *arg);

/*
 * Block the calling thread until the future @job has ended, then release
 * it and return its result (>= 0, -errno, or -ECANCELED when the pool was
 * destroyed before the job started).  Runs no other job's callback.
 * Any thread may await, also from inside a callback; each future must be
 * awaited exactly once.  A future never awaited stays allocated until
 * iop_pool_destroy() releases it.
 * Returns -EINVAL for @job NULL or a job that has a callback (its result
 * goes to the callback).  Awaiting a future a second time uses a released
 * handle: undefined, and aborts with a message when the library can tell.
 */
IOP_EXPORT ssize_t iop_await(iop_job *job);

#ifdef __cplusplus
}
#endif

#endif /* IOPOOL_H */
