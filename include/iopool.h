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
 *   future, iop_await() returns its result exactly once).  Besides the
 *   errors each one lists, every submit call (iop_read() ... iop_call())
 *   fails with EAGAIN when the queue is full (struct iop_options:
 *   max_queued) or the pool has no worker thread and none can be started,
 *   and with EOWNERDEAD in a child of fork(2) (see iop_pool_new()).
 * - The library never prints, logs or exits.  Misuse that cannot be detected
 *   safely (using a job handle after it was released) is undefined; where
 *   the library notices it, it aborts with a message on stderr.
 */
#ifndef IOPOOL_H
#define IOPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define IOP_EXPORT __attribute__((visibility("default")))
#else
#define IOP_EXPORT
#endif

/* ---- Version ------------------------------------------------------ */
/*
 * The version of this header, which is the package version (configure.ac's
 * AC_INIT; configure stops if the two differ).  Plain integers, so that
 * `#if IOP_VERSION_MAJOR > 0 || IOP_VERSION_MINOR >= 2` works.  The
 * library's shared object name follows its libtool interface version, not
 * this: libiopool.so.0 until the ABI breaks.
 */
#define IOP_VERSION_MAJOR 0
#define IOP_VERSION_MINOR 1
#define IOP_VERSION_PATCH 0
#define IOP__STRINGIFY(x) #x
#define IOP__VERSION_STR(a, b, c) \
	IOP__STRINGIFY(a) "." IOP__STRINGIFY(b) "." IOP__STRINGIFY(c)
/* "MAJOR.MINOR.PATCH" of this header, as a string literal: "0.1.0". */
#define IOP_VERSION_STRING \
	IOP__VERSION_STR(IOP_VERSION_MAJOR, IOP_VERSION_MINOR, IOP_VERSION_PATCH)

/*
 * The version of the library actually running, as "MAJOR.MINOR.PATCH"
 * (IOP_VERSION_STRING of the header it was built with), which may differ
 * from the header a program was compiled with.  The string has static
 * storage: never free or modify it.  Any thread may call it, at any time,
 * with or without a pool.  No errors: it never returns NULL.
 */
IOP_EXPORT const char *iop_version(void);
/* ---- end of version ------------------------------------------------ */

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
 * A work function for iop_call().  It runs with every signal blocked, on
 * a worker thread, or on a thread that waits for it, when the pool has
 * seen jobs of the same kind (calls of the same function; for the other
 * ops, the same op on the same descriptor) take under 20 microseconds,
 * since a wake-up costs more than such a job: iop_wait() (with a timeout
 * other than 0) runs batches of them from the head of the queue between
 * rounds of callbacks, as one of the pool's threads (no more jobs run at
 * once than the pool has threads), and iop_await() or
 * iop_await_timeout() runs the future it waits for when it is next in
 * the queue and no worker is busy.  If such a job blocks after all, an
 * idle worker gives the rest of that batch back to the workers.  So a
 * work function must not wait for something the waiting thread would do
 * only after its wait (as it must not wait for anything a callback does);
 * pools created with IOP_POOL_WORKERS_ONLY never do this.
 * Inline pools (IOP_POOL_INLINE) and IOP_OVERFLOW_INLINE run it on the
 * submitting thread, with that thread's own signal mask.  Its return
 * value becomes the job's result (by convention >= 0, or a negative errno
 * value).  A long one can check iop_cancel_requested() now and then and
 * give up early.
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
	 * The most worker threads, 1 to IOP_THREADS_MAX.  0: the default, 4.
	 * Threads start on demand, when a job is queued and no idle thread is
	 * there to take it, and exit after idle_timeout_ms above min_threads.
	 * Workers spend their time blocked in the kernel, not computing, so
	 * the count bounds how many blocking calls are in flight rather than
	 * how many cores are used.  Four keeps a local disk's queue busy for
	 * cached and sequential work without a crowd of threads on a small
	 * machine, and is what libuv and libeio users already tune from.
	 * Devices with deep queues (NVMe, network file systems) want more:
	 * say 32 to 64 for blocking calls that wait for them (QEMU's default
	 * is 64).  Reads need fewer: a worker takes reads that miss the page
	 * cache eight at a time, all at the device together, so 8 threads
	 * keep 64 in flight; and reads on O_DIRECT descriptors with a
	 * callback need none (see iop_read()).  The
	 * limit is an upper bound: with 16 or more workers busy, a queued job
	 * waits for one of them that is expected to come free within 0.4 ms
	 * (from what their jobs' kinds took before; with fewer busy, for
	 * proportionally less) rather than wake an idle one, so fewer threads
	 * may take turns.  A job that has waited 1.6 ms wakes one anyway:
	 * the pool's watchdog thread (also used for deadlines) starts the
	 * first time a job is left waiting, and looks every 0.8 ms.  For
	 * reads that miss the page cache, one thread starts, or wakes, per
	 * eight queued; for reads that copy from it (more than 64 KiB), no
	 * more than one per CPU (see iop_read()).
	 */
	unsigned threads;
	/*
	 * Threads kept alive while idle, 0 to threads.  0, the default: an
	 * idle pool costs no threads (as QEMU's pool); the first job after a
	 * quiet spell then pays for starting one (tens of microseconds).
	 * They are started by iop_pool_new().
	 */
	unsigned min_threads;
	/*
	 * Stack size of each worker thread in bytes, 16 KiB to 1 GiB.  0: the
	 * default, 1 MiB: enough for work functions with large frames
	 * (resolvers, compression) while far below the 8 MiB a plain thread
	 * reserves.  Only the pages a worker touches use memory.
	 */
	size_t stack_size;
	/*
	 * How long a thread above min_threads stays idle before it exits, in
	 * milliseconds.  0: the default, 10 s, the choice of libeio, QEMU and
	 * Tokio: long enough that a steady trickle of jobs reuses threads,
	 * short enough that a burst's threads are gone soon after it.
	 */
	unsigned idle_timeout_ms;
	/*
	 * The most jobs queued (submitted, not yet running); 0, the default,
	 * means no limit.  When a submit finds the queue full, @overflow
	 * decides.  Jobs held in a batch count against the limit of the thread
	 * holding them (see iop_batch_begin()).
	 */
	unsigned max_queued;
	/* IOP_OVERFLOW_FAIL (0, the default), _BLOCK or _INLINE; see there. */
	int overflow;
	/*
	 * With IOP_OVERFLOW_BLOCK: how long a submit waits for room, in
	 * milliseconds, before it fails with EAGAIN.  0: the default, no
	 * limit.
	 */
	unsigned overflow_timeout_ms;
	/* IOP_POOL_* flags, or 0. */
	unsigned flags;
	/*
	 * A job running longer than this (milliseconds) counts as long-running
	 * in iop_pool_stats(): a hung NFS read, a stuck device.  0: the
	 * default, 10 s.
	 */
	unsigned long_running_ms;
	/* Reserved, must be 0 (see above). */
	uint64_t reserved[5];
};

/* struct iop_options overflow policies, for a full queue (max_queued). */
enum {
	IOP_OVERFLOW_FAIL = 0,	/* the submit fails with EAGAIN */
	IOP_OVERFLOW_BLOCK = 1,	/* the submit waits for room, up to
				 * overflow_timeout_ms, then fails with EAGAIN;
				 * inside a callback it hands over the
				 * callback's own submits first */
	IOP_OVERFLOW_INLINE = 2	/* the submitting thread runs the job itself
				 * at once (PostgreSQL's I/O workers fall back
				 * to this); its callback still comes from
				 * iop_poll()/iop_wait() */
};

/*
 * struct iop_options flags.
 * IOP_POOL_INLINE: no worker threads at all.  Each job runs on the thread
 *   that submits it, inside the submit call (held jobs at iop_batch_end(),
 *   jobs submitted by callbacks when the callback batch ends), while its
 *   callback still comes from iop_poll()/iop_wait().  The same program then
 *   runs single-threaded: for debugging, under tools that dislike threads,
 *   or where threads are not allowed (Samba's pthreadpool does this).
 *   threads and min_threads must be 0.
 * IOP_POOL_NO_TIMING: do not read the clock per job, so iop_pool_stats()
 *   has counters but empty histograms and no long-running figures.  The
 *   pool then also cannot tell short jobs from long ones: no batches, and
 *   no job runs on a waiting thread (see iop_work_fn); nor does it look
 *   at which jobs block, so no wake-up of iop_wait() is held back.
 * IOP_POOL_WORKERS_ONLY: work functions run on worker threads only, never
 *   on a thread waiting in iop_wait() or iop_await() (see iop_work_fn).
 * IOP_POOL_NO_AIO: O_DIRECT reads go to worker threads like every other
 *   job, not into the kernel's asynchronous I/O (see iop_read()): for a
 *   sandbox that forbids io_setup(2), or to compare the two.
 */
#define IOP_POOL_INLINE		1u
#define IOP_POOL_NO_TIMING	2u
#define IOP_POOL_WORKERS_ONLY	4u
#define IOP_POOL_NO_AIO		8u

/*
 * Create a pool and start its min_threads worker threads.  @opts NULL, or
 * all zero, gives the defaults; the pool keeps no pointer to @opts.
 * Returns the pool, or NULL with errno set: EINVAL for an option out of
 * range (min_threads above threads, an unknown overflow policy or flag,
 * IOP_POOL_INLINE with threads) or a non-zero reserved word, ENOMEM, or
 * what eventfd(2) (pipe2(2) where the pool descriptor is a pipe) or
 * pthread_create(3) reported (EMFILE, ENFILE, EAGAIN).
 * Any thread may call it.
 *
 * fork(): a pool belongs to the process that created it.  In a child
 * forked while the pool exists, the pool never runs a job (a duplicated
 * write would be data corruption) and never deadlocks: submits and the
 * other calls that return a handle fail with errno EOWNERDEAD; iop_poll(),
 * iop_wait(), the awaits, cancels, batch, link, group, lane and thread
 * calls return -EOWNERDEAD; iop_pool_stats(), iop_job_state() and
 * iop_pool_fd() still answer; no callback runs there; iop_pool_destroy() only
 * frees the child's copy of the memory and closes its copy of the
 * descriptor (joining no thread: none exists there).  Create a new pool
 * in the child.  The parent's pool goes on untouched, whatever its
 * threads were doing at the fork.
 */
IOP_EXPORT iop_pool *iop_pool_new(const struct iop_options *opts);

/*
 * Shut the pool down and free it.  Submits from now on fail with
 * ESHUTDOWN.  Jobs still queued end with -ECANCELED without running; jobs
 * already running finish (O_DIRECT reads in the kernel too).  Every callback still due runs on the calling
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
 * one and it completes.  Between rounds of callbacks it runs queued jobs
 * known to be short itself (see iop_work_fn), which is faster than a
 * hand-off: such jobs its callbacks submit then wake no worker, unless
 * together they are more work than a wake-up costs (one worker shares
 * them: the callbacks hand it theirs two at a time, and when it runs out
 * it takes the next ones of this thread's batch) or it returns with them
 * still queued.
 * With nothing else to do, it also copies the next queued read that copies
 * (see iop_read()) itself, if such reads have taken no more than 0.5 ms
 * and the timeout leaves room: it is then one of the threads copying, one
 * per CPU, and a worker fewer copies (not on a single CPU, where none
 * would copy beside it).  It copies at most 16 reads before it returns,
 * and wakes workers for those still queued before it sleeps or returns.
 * While every job that runs keeps its CPU busy and more wait in the queue,
 * it may take up to 1 ms longer to see a job end, so that it wakes once
 * for several callbacks rather than once each; the descriptor, polled
 * without iop_wait(), is never held back.
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
 * A read of up to 64 KiB at an offset that the page cache can serve in
 * full right away (preadv2(2) with RWF_NOWAIT) is done inside the submit
 * call, on the submitting thread, with no hand-off: on a small machine a
 * hand-off costs several times a cached read.  Bigger reads are mostly
 * copying, which the workers share across cores.  Nothing else changes: the job ends as any
 * other, its callback comes from iop_poll()/iop_wait() (the descriptor
 * becomes readable), and it counts as completed in iop_pool_stats(), with
 * no entry in the histograms.  Pools with max_queued, held batches and
 * reads at IOP_OFFSET_CURRENT always hand the read to a worker.  A read
 * that a callback submits while iop_wait() runs it is queued, not tried:
 * the waiting thread runs short reads itself, in batches, while a worker
 * takes others beside it, so that cached reads keep two cores busy.
 * After an attempt that misses the page cache, the next 32 reads of the
 * same descriptor go to a worker untried.
 *
 * Reads that wait for the device (at an offset, up to 64 KiB, on a
 * descriptor without O_DIRECT whose reads missed the page cache lately
 * or take 0.02 ms or more) go to the workers up to eight at a time, as
 * they stand in the queue: the worker asks the kernel to start all of
 * them (posix_fadvise(2) POSIX_FADV_WILLNEED on exactly each read's
 * range, so nothing else is read) and then reads them in order.  They
 * reach the device together, and the worker mostly sleeps once for the
 * eight rather than once each, which on a small machine costs more CPU
 * than the reads.  Reads taken together are IOP_RUNNING from then on
 * (iop_cancel() answers -EBUSY), and each callback comes when its own
 * read is done.
 *
 * Reads of more than 64 KiB at an offset that the page cache serves (on
 * a descriptor without O_DIRECT whose reads have not missed it lately,
 * and whose last such read did not sleep in the kernel) keep a CPU busy
 * copying: no more workers wake or start for them than there are CPUs,
 * and a worker that ends one takes the next, since threads taking turns
 * on a CPU copy slower than one thread per CPU.  If the workers running
 * jobs start or end none for four times what such a read takes (1.6 ms
 * at least) while reads wait, the watchdog wakes and starts more.  A
 * thread waiting in iop_wait() copies such reads itself, as one of those
 * threads (see iop_wait()).  Pools created with IOP_POOL_NO_TIMING keep
 * neither rule: a worker each.
 *
 * On Linux, a read at an offset on an O_DIRECT descriptor with a callback
 * goes to the device from the submitting thread, through the kernel's
 * asynchronous I/O (io_submit(2)), not to a worker: such a read bypasses
 * the page cache, so nothing blocks until the device answers, and no
 * thread needs to wait for it.  The job is IOP_RUNNING until the device
 * answers; the kernel makes the pool descriptor readable then, and the
 * callback comes from iop_poll()/iop_wait() as for any job.  iop_cancel()
 * answers -EBUSY, as for a job a worker runs, and iop_pool_destroy()
 * waits for the read.  Futures, held batches, pools with max_queued or
 * IOP_POOL_NO_AIO, inline pools, and reads the kernel refuses at submit
 * (a bad descriptor, more than 256 reads of the pool in the kernel at
 * once, no such interface on the system) go to a worker as usual.  The
 * result is what pread() would have returned: -EINVAL for a buffer,
 * length or offset not aligned as O_DIRECT needs, a short count at end
 * of file.
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
 * goes to the callback), -EDEADLK for a job held in the calling thread's
 * own open batch (see iop_batch_begin()).  Awaiting a future a second
 * time uses a released handle: undefined, and aborts with a message when
 * the library can tell.
 */
IOP_EXPORT ssize_t iop_await(iop_job *job);

/*
 * Where a job is, as iop_job_state() reports it.
 */
enum {
	IOP_QUEUED = 1,		/* submitted, not started: in the queue, held
				 * in a batch, or waiting for its chain */
	IOP_RUNNING = 2,	/* a worker is running it (or, for an
				 * O_DIRECT read, the device) */
	IOP_DONE = 3,		/* it has ended; its callback or iop_await()
				 * is still due */
};

/* ------------------------------------------------------------------ */
/* More operations.                                                    */
/*
 * Every op below has the shape of iop_read(): the pool first, @done and
 * @arg last, the job returned (or NULL with errno EINVAL, ENOMEM or
 * ESHUTDOWN and nothing queued), @done NULL for a future, any thread may
 * submit.  The result is what the system call returned, >= 0, or -errno.
 * The reads, writes, openat, fsync, fdatasync, ftruncate and fallocate
 * are retried on EINTR (workers block every signal, so it is rare); close
 * is not (on Linux the descriptor is gone even then), see iop_close().
 *
 * Memory: a path is copied at submit, so the caller may free its string
 * as soon as the submit call returns.  Every other pointer (buffers, iovec
 * arrays, struct stat, result pointers) belongs to the pool from submit
 * until the callback runs (or the future is awaited, or iop_await_timeout()
 * returns 0): the pool writes to it from a worker.  A descriptor passed in
 * must stay open until then.  Descriptors the pool opens are O_CLOEXEC.
 */

/*
 * Queue a write of @len bytes from @buf: pwrite(2) at @offset, or write(2)
 * at the descriptor's position (or at its end with O_APPEND) with @offset
 * IOP_OFFSET_CURRENT.  The result is the bytes written, which may be fewer
 * than @len (a full disk, a pipe): the op does not loop.  EINVAL as
 * iop_read().
 */
IOP_EXPORT iop_job *iop_write(iop_pool *pool, int fd, const void *buf,
			      size_t len, int64_t offset, iop_done_fn *done,
			      void *arg);

/*
 * Queue preadv(2)/pwritev(2) at @offset, or readv(2)/writev(2) with
 * @offset IOP_OFFSET_CURRENT.  @iov (the array, not copied) and every
 * buffer it points to belong to the pool until the callback runs.  EINVAL:
 * @iov NULL with @iovcnt > 0, @iovcnt below 0 or above IOV_MAX, lengths
 * adding up to more than SSIZE_MAX, @offset negative other than
 * IOP_OFFSET_CURRENT.
 */
IOP_EXPORT iop_job *iop_readv(iop_pool *pool, int fd, const struct iovec *iov,
			      int iovcnt, int64_t offset, iop_done_fn *done,
			      void *arg);
IOP_EXPORT iop_job *iop_writev(iop_pool *pool, int fd,
			       const struct iovec *iov, int iovcnt,
			       int64_t offset, iop_done_fn *done, void *arg);

/*
 * Queue openat(2) of @path relative to @dirfd (AT_FDCWD for the current
 * directory) with @flags and @mode; O_CLOEXEC is always added.  The result
 * is the new descriptor, which belongs to the caller from then on.  If the
 * job is cancelled or the pool destroyed before it runs, nothing is opened.
 * Beware: a descriptor opened by a job whose result nobody reads (a future
 * never awaited) leaks.  EINVAL: @path NULL.
 */
IOP_EXPORT iop_job *iop_openat(iop_pool *pool, int dirfd, const char *path,
			       int flags, mode_t mode, iop_done_fn *done,
			       void *arg);

/*
 * Queue close(2) of @fd.  Not retried on EINTR: Linux releases the
 * descriptor even then, and a retry could close a number another thread
 * has just been given.  The result is 0 or -errno (-EBADF, -EIO from NFS).
 */
IOP_EXPORT iop_job *iop_close(iop_pool *pool, int fd, iop_done_fn *done,
			      void *arg);

/* Queue fsync(2) or fdatasync(2) of @fd.  The result is 0 or -errno. */
IOP_EXPORT iop_job *iop_fsync(iop_pool *pool, int fd, iop_done_fn *done,
			      void *arg);
IOP_EXPORT iop_job *iop_fdatasync(iop_pool *pool, int fd, iop_done_fn *done,
				  void *arg);

/*
 * Queue fstat(2) of @fd into *@st (owned by the pool until the callback
 * runs).  The result is 0 or -errno.  EINVAL: @st NULL.
 * The library is built with 64-bit file offsets, so on 32-bit systems
 * programs passing a struct stat must be too (-D_FILE_OFFSET_BITS=64, or
 * AC_SYS_LARGEFILE), or the layouts differ.
 */
IOP_EXPORT iop_job *iop_fstat(iop_pool *pool, int fd, struct stat *st,
			      iop_done_fn *done, void *arg);

/*
 * Queue fstatat(2) of @path relative to @dirfd into *@st, with @flags
 * (AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, AT_NO_AUTOMOUNT).  The result is 0
 * or -errno.  EINVAL: @path or @st NULL.
 */
IOP_EXPORT iop_job *iop_statat(iop_pool *pool, int dirfd, const char *path,
			       struct stat *st, int flags, iop_done_fn *done,
			       void *arg);

/*
 * Queue a read of the whole file @path (relative to @dirfd) into memory
 * the pool allocates: it opens the file, reads until read(2) returns 0
 * (never trusting st_size, so /proc files and growing files work), and
 * closes it.  The result is the byte count; *@data then points to that
 * many bytes followed by a NUL byte (not counted), so text can be used as
 * a string.  *@data belongs to the caller once the callback runs (or the
 * future is awaited): release it with free(3).  The submit sets *@data to
 * NULL, and it stays NULL on any failure (-ENOENT, -EISDIR, -ENOMEM,
 * -EFBIG past SSIZE_MAX bytes, -ECANCELED, -ETIMEDOUT).  @data itself
 * belongs to the pool until the callback runs.  EINVAL: @path or @data
 * NULL.
 */
IOP_EXPORT iop_job *iop_readfile(iop_pool *pool, int dirfd, const char *path,
				 void **data, iop_done_fn *done, void *arg);

/* Queue ftruncate(2) of @fd to @length bytes.  EINVAL: @length < 0. */
IOP_EXPORT iop_job *iop_ftruncate(iop_pool *pool, int fd, int64_t length,
				  iop_done_fn *done, void *arg);

/*
 * Queue fallocate(2) of @fd with @mode (0, FALLOC_FL_KEEP_SIZE,
 * FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, ...) over @len bytes at
 * @offset.  The result is 0 or -errno (-EOPNOTSUPP where the file system
 * cannot).  EINVAL: @offset < 0 or @len <= 0.
 */
IOP_EXPORT iop_job *iop_fallocate(iop_pool *pool, int fd, int mode,
				  int64_t offset, int64_t len,
				  iop_done_fn *done, void *arg);

/*
 * Queue renameat2(2) of @oldpath (relative to @olddirfd) to @newpath
 * (relative to @newdirfd) with @flags (0, RENAME_NOREPLACE,
 * RENAME_EXCHANGE); with @flags 0 it is plain renameat(2).  Both paths are
 * copied.  The result is 0 or -errno (-ENOSYS for non-zero @flags where
 * neither the C library nor the kernel has renameat2).  EINVAL: a path
 * NULL.
 */
IOP_EXPORT iop_job *iop_renameat(iop_pool *pool, int olddirfd,
				 const char *oldpath, int newdirfd,
				 const char *newpath, unsigned flags,
				 iop_done_fn *done, void *arg);

/*
 * Queue unlinkat(2) of @path relative to @dirfd; @flags AT_REMOVEDIR
 * removes an empty directory.  The result is 0 or -errno.  EINVAL: @path
 * NULL.
 */
IOP_EXPORT iop_job *iop_unlinkat(iop_pool *pool, int dirfd, const char *path,
				 int flags, iop_done_fn *done, void *arg);

/*
 * Queue mkdirat(2) of @path relative to @dirfd with @mode.  The result is 0
 * or -errno.  EINVAL: @path NULL.
 */
IOP_EXPORT iop_job *iop_mkdirat(iop_pool *pool, int dirfd, const char *path,
				mode_t mode, iop_done_fn *done, void *arg);

/* One directory entry, as iop_listdir() returns it. */
struct iop_dirent {
	const char *name;	/* NUL-terminated, inside the same block */
	uint64_t ino;		/* inode number */
	unsigned char type;	/* DT_REG, DT_DIR, DT_LNK, ... or DT_UNKNOWN
				 * where the file system does not say */
};

/* iop_listdir() flags. */
#define IOP_LISTDIR_SORT 1u	/* sort by name, in strcmp(3) order */

/*
 * Queue a listing of the directory @path (relative to @dirfd; "." with a
 * directory descriptor lists that one): the name, inode and type of every
 * entry except "." and "..", in the order the file system gives, or sorted
 * with IOP_LISTDIR_SORT.  The result is the number of entries; *@entries
 * then points to an array of that many, and the names live in the same
 * block: one free(3) of *@entries releases it all (also for 0 entries: the
 * block is never NULL on success).  It belongs to the caller once the
 * callback runs (or the future is awaited).  The submit sets *@entries to
 * NULL, and it stays NULL on any failure (-ENOENT, -ENOTDIR, -ENOMEM,
 * -EACCES, -ECANCELED, -ETIMEDOUT).  EINVAL: @path or @entries NULL,
 * unknown @flags.
 */
IOP_EXPORT iop_job *iop_listdir(iop_pool *pool, int dirfd, const char *path,
				unsigned flags, struct iop_dirent **entries,
				iop_done_fn *done, void *arg);

/* ------------------------------------------------------------------ */
/* Cancel, state, futures with a deadline.                             */

/*
 * Ask for @job to be cancelled.
 * - Queued (also held in a batch, or waiting for its chain): it will never
 *   run; it ends with -ECANCELED, so its callback runs exactly once with
 *   that result (from the next iop_poll()/iop_wait()), or iop_await()
 *   returns it.  Returns 0.
 * - Running: it goes on; the request is recorded, so the work can stop
 *   early if it checks iop_cancel_requested().  Returns -EBUSY, and the
 *   job ends with whatever result the work returns.  The jobs linked
 *   after it (not started yet) end with -ECANCELED at once.
 * - Ended (a future not yet awaited, or a callback job whose callback has
 *   not run yet): returns -EALREADY; its result stands.
 * Jobs linked after a cancelled job end with -ECANCELED too (see
 * iop_link()).  Returns -EINVAL for @job NULL.
 * Valid while the handle is: for a callback job until its callback has
 * returned (so cancel from another thread only while you know the callback
 * has not run, for instance from the polling thread itself), for a future
 * until it has been awaited.  Any thread may call it.
 */
IOP_EXPORT int iop_cancel(iop_job *job);

/*
 * Called from a work function (iop_call()) on the thread running it (a
 * worker, a waiting thread, or the submitting thread of an inline pool):
 * 1 if iop_cancel() has been called on that job (or its group), 0 if not,
 * and 0 outside a work function.  Cheap enough to call in a loop.
 */
IOP_EXPORT int iop_cancel_requested(void);

/*
 * Where @job is: IOP_QUEUED, IOP_RUNNING or IOP_DONE, or -EINVAL for
 * @job NULL.  Valid while the handle is (see iop_cancel()).  The answer
 * may be stale by the time the caller reads it, except that IOP_DONE
 * stays IOP_DONE.  Any thread may call it; it takes no lock.
 */
IOP_EXPORT int iop_job_state(const iop_job *job);

/*
 * Like iop_await(), with a limit: wait up to @timeout_ms milliseconds (-1
 * without limit, 0 to only look) for the future @job to end.  If it ended,
 * stores its result in *@result, releases the job and returns 0.  If not,
 * returns -ETIMEDOUT and keeps the job: await it again later, cancel it,
 * or leave it to iop_pool_destroy().  This bounds a read from a hung
 * device without losing track of it.  Returns -EINVAL for @job or @result
 * NULL, a callback job, or @timeout_ms below -1, and -EDEADLK for a job
 * held in the calling thread's own open batch (it could never start).
 * Signals do not cut the wait short.
 */
IOP_EXPORT int iop_await_timeout(iop_job *job, int timeout_ms,
				 ssize_t *result);

/* ------------------------------------------------------------------ */
/* Batches: submit many jobs in one hand-off, and set them up first.    */
/*
 * Between iop_batch_begin(pool) and iop_batch_end(pool), the calling
 * thread's submits to @pool are held: they return their jobs as usual,
 * but no worker sees them until iop_batch_end() hands all of them over in
 * one step (one lock round trip and one wake-up per worker instead of one
 * per job).  While a job is held, calls that must come before a job can
 * start are valid on it: iop_link(), iop_group_add().  A held job that is
 * cancelled ends with -ECANCELED at iop_batch_end().
 *
 * A batch belongs to the thread that began it and to one pool.  Batches
 * nest (for the same pool; the outermost end hands over).  Awaiting a
 * future held in your own open batch would never return, so iop_await()
 * and iop_await_timeout() refuse it with -EDEADLK.  End every batch before
 * iop_pool_destroy().
 */

/*
 * Begin (or nest) a batch on @pool for the calling thread.  Returns 0, or
 * -EINVAL for @pool NULL, -EBUSY if this thread has a batch open on
 * another pool.
 */
IOP_EXPORT int iop_batch_begin(iop_pool *pool);

/*
 * End the calling thread's batch on @pool; the outermost end hands every
 * held job to the workers.  Returns how many jobs it handed over (0 for an
 * inner end; cancelled ones count, and end with -ECANCELED now), or
 * -EINVAL for @pool NULL or no batch of this thread open on @pool, or
 * -EOWNERDEAD in a forked child (see iop_pool_new()).  If the pool has
 * no worker thread and none can be started (pthread_create(3) fails), the
 * jobs end at once with that error (-EAGAIN, or -ENOMEM when the thread's
 * memory could not be allocated), as a single submit would have failed;
 * the same holds for jobs submitted by callbacks.
 */
IOP_EXPORT int iop_batch_end(iop_pool *pool);

/* ------------------------------------------------------------------ */
/* Chains.                                                             */

/*
 * Make @then start only after @first has ended successfully: a result
 * >= 0, and for the reads and writes (iop_read/write/readv/writev) the
 * whole length transferred, since a short write before an fsync would
 * acknowledge half a record (io_uring breaks its links the same way).
 * If @first fails, is short, or is cancelled, @then ends with -ECANCELED
 * without running, and so does everything linked after @then.  Each job
 * keeps its own callback, and callbacks of a chain run in chain order,
 * except that cancelling a job that waits in a chain ends it (and the
 * rest after it) at once, before the jobs ahead of it have ended.
 *
 * Chains are built by linking pairs: iop_link(w, s); iop_link(s, c) runs
 * w, then s, then c.  Both jobs must be held in the calling thread's open
 * batch (so neither can have started), be different, and belong to the
 * same pool; @first may have at most one successor and @then one
 * predecessor.  A durable append, the "asynchronous commit" of a log
 * record:
 *
 *	iop_batch_begin(pool);
 *	w = iop_write(pool, fd, rec, len, IOP_OFFSET_CURRENT, on_write, r);
 *	s = iop_fdatasync(pool, fd, on_durable, r);
 *	iop_link(w, s);
 *	iop_batch_end(pool);
 *
 * Returns 0, -EINVAL (NULL, the same job, different pools, or @then
 * already ahead of @first: a cycle), -EBUSY (a job not held in this
 * thread's batch, or already linked on that side), or -ENOMEM.
 */
IOP_EXPORT int iop_link(iop_job *first, iop_job *then);

/* ------------------------------------------------------------------ */
/* Groups.                                                             */

/* A set of jobs with one callback for when all of them have ended. */
typedef struct iop_group iop_group;

/* How a group's members ended. */
struct iop_group_result {
	unsigned succeeded;	/* result >= 0 */
	unsigned failed;	/* result < 0, other than -ECANCELED */
	unsigned cancelled;	/* result -ECANCELED */
};

/*
 * A group's callback: it runs once, on the polling thread (like a job's
 * callback, from iop_poll(), iop_wait() or iop_pool_destroy()), after the
 * group was sealed and every member has ended and had its own callback
 * run.  @r is valid during the call.  After it returns, @group is gone.
 */
typedef void iop_group_fn(iop_group *group,
			  const struct iop_group_result *r, void *arg);

/*
 * Create an empty, open group on @pool.  Returns it, or NULL with errno
 * EINVAL (@pool or @done NULL), ENOMEM or ESHUTDOWN.  Any thread may call
 * it.  The group belongs to the pool; it is released after its callback.
 */
IOP_EXPORT iop_group *iop_group_new(iop_pool *pool, iop_group_fn *done,
				    void *arg);

/*
 * Add @job, held in the calling thread's open batch, to @group (open, same
 * pool).  A job belongs to at most one group.  Members may end before
 * later ones are added; the group's callback waits for iop_group_seal().
 * Returns 0, -EINVAL (NULL, different pools, a sealed group), -EBUSY
 * (@job not held in this thread's batch, or already in a group), or
 * -ENOMEM.
 */
IOP_EXPORT int iop_group_add(iop_group *group, iop_job *job);

/*
 * No more members: once every member has ended, the callback runs (from
 * the next poll, also if the group is empty or all have ended already).
 * Returns 0, or -EINVAL for @group NULL or a group already sealed.
 */
IOP_EXPORT int iop_group_seal(iop_group *group);

/*
 * Cancel every member that has not started (as iop_cancel() does, held
 * ones included) and every member added later; running members see
 * iop_cancel_requested().  Returns 0, or -EINVAL for @group NULL.  Valid
 * until the group's callback has started.
 */
IOP_EXPORT int iop_group_cancel(iop_group *group);

/* ------------------------------------------------------------------ */
/* Pool management: threads, priorities, lanes, deadlines.             */

/*
 * Change the thread limits at run time: @min_threads kept alive while
 * idle, at most @max_threads (1 to IOP_THREADS_MAX, @min_threads <=
 * @max_threads).  Threads above the new maximum exit as soon as they
 * finish the job in hand; none is interrupted, and no job is lost or run
 * twice.  Threads below the new minimum start now.  Returns 0, -EINVAL
 * (@pool NULL, limits out of range, an IOP_POOL_INLINE pool), or what
 * pthread_create(3) reported (-EAGAIN): the limits are set anyway and the
 * pool runs with the threads it has.  Any thread may call it.
 */
IOP_EXPORT int iop_pool_set_threads(iop_pool *pool, unsigned min_threads,
				    unsigned max_threads);

/* Job priorities: higher runs first, FIFO within a priority. */
#define IOP_PRIO_MIN	(-4)
#define IOP_PRIO_MAX	4
#define IOP_PRIO_DEFAULT 0

/*
 * Set the priority of @job, held in the calling thread's open batch, to
 * @prio (IOP_PRIO_MIN to IOP_PRIO_MAX; jobs start at IOP_PRIO_DEFAULT).
 * Workers take the highest priority first, except that lower priorities
 * are never starved: a priority level with jobs waiting gets its turn
 * after at most 8 jobs of higher levels have been started ahead of it, so
 * each waiting level receives at least one start in nine.  (A job that
 * arrives while a worker runs a batch of short ones may see one more
 * start: the worker notices it between two jobs, without the lock.)
 * Returns 0, -EINVAL (@job NULL, @prio out of range), -EBUSY (@job not
 * held in this thread's batch) or -EOWNERDEAD in a forked child.
 */
IOP_EXPORT int iop_job_set_priority(iop_job *job, int prio);

/*
 * A lane: a named class of jobs with its own cap on how many may run at
 * once, so that jobs that may block for long (a slow network file system:
 * cap 2) cannot occupy every worker while local reads wait.  Jobs of a
 * lane at its cap wait in the lane, in order, and do not hold up others.
 */
typedef struct iop_lane iop_lane;

/*
 * Create a lane on @pool with @name (copied; at most 31 bytes are kept)
 * and @cap (1 or more) concurrently running jobs.  The lane belongs to
 * the pool and lives until iop_pool_destroy().  Returns it, or NULL with
 * errno EINVAL (@pool or @name NULL, @cap 0), ENOMEM, ESHUTDOWN, or
 * EOWNERDEAD in a forked child.
 */
IOP_EXPORT iop_lane *iop_lane_new(iop_pool *pool, const char *name,
				  unsigned cap);

/*
 * Change @lane's cap; raising it starts waiting jobs at once, lowering it
 * lets running ones finish.  Returns 0, -EINVAL for @lane NULL or @cap 0,
 * or -EOWNERDEAD in a forked child.
 */
IOP_EXPORT int iop_lane_set_cap(iop_lane *lane, unsigned cap);

/*
 * Put @job, held in the calling thread's open batch, in @lane (same
 * pool).  Returns 0, -EINVAL (NULL, different pools), -EBUSY (not held
 * in this thread's batch), -ENOMEM, or -EOWNERDEAD in a forked child.
 */
IOP_EXPORT int iop_job_set_lane(iop_job *job, iop_lane *lane);

/*
 * Give @job, held in the calling thread's open batch, a deadline
 * @timeout_ms milliseconds from now: if no worker has started it by
 * then, it ends with -ETIMEDOUT without running (and the jobs linked
 * after it with -ECANCELED).  The pool's watchdog thread, started with
 * the first deadline (or the first job left waiting for a busy worker,
 * see struct iop_options), enforces it even while every worker is stuck.
 * Returns 0, -EINVAL (@job NULL, @timeout_ms negative), -EBUSY (not held
 * here), -ENOMEM, -EAGAIN when the watchdog thread cannot be started, or
 * -EOWNERDEAD in a forked child (where no thread is started).
 */
IOP_EXPORT int iop_job_set_deadline(iop_job *job, int timeout_ms);

/* ------------------------------------------------------------------ */
/* Statistics, and a budget for the event loop.                        */

/* Kinds of job, for the per-kind histograms of struct iop_stats. */
enum iop_op {
	IOP_OP_READ, IOP_OP_WRITE, IOP_OP_READV, IOP_OP_WRITEV, IOP_OP_CALL,
	IOP_OP_OPENAT, IOP_OP_CLOSE, IOP_OP_FSYNC, IOP_OP_FDATASYNC,
	IOP_OP_FSTAT, IOP_OP_STATAT, IOP_OP_READFILE, IOP_OP_FTRUNCATE,
	IOP_OP_FALLOCATE, IOP_OP_RENAMEAT, IOP_OP_UNLINKAT, IOP_OP_MKDIRAT,
	IOP_OP_LISTDIR,
	IOP_OP_COUNT
};

/*
 * Log2 histogram buckets: bucket 0 counts durations below 2 ns, bucket k
 * (1 to IOP_HIST_BUCKETS - 2) those in [2^k, 2^(k+1)) ns, and the last
 * bucket everything from 2^(IOP_HIST_BUCKETS - 1) ns (about 9 minutes) up.
 */
#define IOP_HIST_BUCKETS 40

/*
 * A snapshot of a pool's statistics.  Counters run from iop_pool_new().
 * How it grows: new fields are added at the end and @size says how much
 * of the struct the caller has, so older programs keep working.
 */
struct iop_stats {
	size_t size;		/* in: sizeof(struct iop_stats) */
	unsigned threads;	/* worker threads alive */
	unsigned threads_idle;	/* of those, waiting for work */
	uint64_t queued;	/* jobs queued now (in lanes too), not running */
	uint64_t running;	/* jobs running now */
	uint64_t long_running;	/* of those, running longer than
				 * long_running_ms */
	uint64_t submitted;	/* jobs handed to the pool */
	uint64_t completed;	/* ran, result >= 0 */
	uint64_t failed;	/* ran, result < 0; or could not run
				 * because no thread could start */
	uint64_t cancelled;	/* ended -ECANCELED without running */
	uint64_t timed_out;	/* ended -ETIMEDOUT at their deadline */
	uint64_t long_ran;	/* ran longer than long_running_ms */
	uint64_t threads_started; /* worker threads ever started */
	/*
	 * Time from hand-over to start, and running time, per kind of job.
	 * Short jobs of one kind that a thread runs as one batch are timed
	 * together: each counts with the batch's average running time.
	 */
	uint64_t queued_ns[IOP_OP_COUNT][IOP_HIST_BUCKETS];
	uint64_t running_ns[IOP_OP_COUNT][IOP_HIST_BUCKETS];
};

/*
 * Fill *@st with a snapshot of @pool's statistics (up to @st->size
 * bytes).  Cheap, takes no lock the workers wait for, and any thread may
 * call it at any time; the fields are read one by one while the pool
 * runs, so they may be a moment apart from each other.  Jobs that run
 * inline (IOP_POOL_INLINE, IOP_OVERFLOW_INLINE) count as well.
 * Returns 0, or -EINVAL for NULL or a @size below offsetof(queued_ns).
 */
IOP_EXPORT int iop_pool_stats(const iop_pool *pool, struct iop_stats *st);

/*
 * Like iop_poll(), within a budget: run at most @max_callbacks callbacks
 * (0: no limit) and start no new one after @max_us microseconds (0: no
 * limit), so that a burst of completions cannot hold an event loop (what
 * libeio's max_poll_reqs and max_poll_time do).  Completions left over
 * wait for the next call, and the pool's descriptor stays readable while
 * they do.  Returns how many callbacks ran, or the errors of iop_poll().
 */
IOP_EXPORT int iop_poll_budget(iop_pool *pool, unsigned max_callbacks,
			       unsigned max_us);

#ifdef __cplusplus
}
#endif

#endif /* IOPOOL_H */
