/*
 * The systems compared, as the workload procedures (run.c) see them.
 *
 * run.c does everything that WORKLOADS.md defines the same way for every
 * system: files, page cache, warm-ups, the timed region, the figures.  A
 * system only supplies the mechanism: create its pool or ring, and run a
 * closed loop of no-ops, reads, sleeps, one round trip, or the W8 queue.
 * Each loop runs on the calling (main) thread, and every completion
 * callback runs there too.  All state is the system's own, in the
 * context its open() returns; nothing is allocated per op.  M1 (run-m1.c)
 * is a closed loop of jobs like W1's, with a 1 ms sleep in 1 job in 100.
 */
#ifndef IOP_BENCH_SYSTEMS_H
#define IOP_BENCH_SYSTEMS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What one child process runs. */
struct bench_cfg {
	int wl;			/* the workload, 1 to WL_COUNT */
	unsigned threads;	/* worker threads (io_uring: io-wq's cap) */
	unsigned window;	/* ops in flight */
	unsigned max_inflight;	/* the most ops in flight at once: window,
				 * or 2,000 for W4 (all submitted at once) */
	const char *name;	/* "W2 iopool", for messages */
};

/*
 * A closed loop of reads: @total reads of @len bytes from @fd, @window in
 * flight, in-flight slot k owning the buffer at @bufs + k * @len.  The
 * system asks for each read's offset with rplan_next() (which counts it
 * as submitted) and hands each result to rplan_done() in the read's
 * completion callback; it stops when rplan_inflight() is 0.
 */
enum rplan_kind {
	RPLAN_RANDOM16,		/* W2: w2_offset() */
	RPLAN_SEQUENTIAL,	/* W5: 0, len, 2 * len, ... */
	RPLAN_RANDOM18		/* W6, W7: cold_offset() */
};

struct rplan {
	int fd;
	size_t len;
	unsigned window;
	uint64_t total;
	uint64_t submitted;
	uint64_t completed;
	enum rplan_kind kind;
	uint64_t state;		/* generator state, or the next offset */
	unsigned char *bufs;
	bool failed;		/* a read failed verification: stop */
	const char *who;	/* for messages */
};

/*
 * The next read's offset in *@off: true, and the read counts as
 * submitted; false when all are submitted or the plan has failed.
 */
bool rplan_next(struct rplan *p, uint64_t *off);
/* The buffer of slot @slot (0 to window - 1). */
unsigned char *rplan_buf(const struct rplan *p, unsigned slot);
/*
 * A read completed with @got into @buf: verify it (a failure is reported
 * once and stops the plan) and count it.  Returns true if it was right.
 */
bool rplan_done(struct rplan *p, const void *buf, ssize_t got, uint64_t off);
/* A submit failed with @err: the read is not in flight; stop the plan. */
void rplan_abort(struct rplan *p, const char *call, int err);
uint64_t rplan_inflight(const struct rplan *p);

/*
 * W8: @nblock blocker jobs (w8_block()) hold every worker while @n no-op
 * jobs queue behind them.  Every job's callback adds 1 to its own byte of
 * @counts (no-op i: counts[i]; blocker k: counts[n + k]) and to @done.
 */
struct w8 {
	uint64_t n;
	unsigned nblock;
	int pipe_rd;		/* blockers read 1 byte each from it */
	atomic_uint entered;	/* blockers that have started */
	unsigned char *counts;
	uint64_t done;		/* callbacks run (main thread only) */
};

/* The blockers' work: count itself as entered, then read 1 byte. */
void w8_block(struct w8 *w);
/* A W8 callback for the job whose byte is @count. */
void w8_done(struct w8 *w, unsigned char *count);

/*
 * M1: a closed loop of @total jobs, @window in flight, where job i is long
 * (m1_is_long(i): its work is sleep_1ms()) or short (no work).  The system
 * keeps one struct mix_job per op in flight; mix_next() fills it and takes
 * the submit time right before the system submits it, mix_done() takes
 * the completion time first thing in the job's callback, on the main
 * thread, and keeps the short jobs' latencies.  The loop stops when
 * mix_inflight() is 0.  All of it runs on the main thread.
 */
struct mix {
	uint64_t total;
	unsigned window;
	uint64_t submitted;
	uint64_t completed;
	uint64_t nshort, nlong;	/* of the completed */
	int64_t *lat;		/* @total slots: short jobs' ns, in the
				 * order their callbacks ran */
	bool failed;		/* a submit or a job failed: stop */
	const char *who;	/* for messages */
};

struct mix_job {
	uint64_t i;		/* the job's number, from 0 */
	bool is_long;		/* m1_is_long(i) */
	int64_t t0;		/* mono_ns() just before the submit */
};

/*
 * The next job into *@j: true, and it counts as submitted; false when all
 * are submitted or the loop has failed.
 */
bool mix_next(struct mix *m, struct mix_job *j);
/* Job @j ended with @result (0 expected): time it and count it. */
void mix_done(struct mix *m, const struct mix_job *j, ssize_t result);
/* A submit failed with @err: the job is not in flight; stop the loop. */
void mix_abort(struct mix *m, const char *call, int err);
uint64_t mix_inflight(const struct mix *m);

struct bench_system {
	const char *name;	/* as on the command line and in the CSV */
	unsigned workloads;	/* bit n set: runs Wn */
	/* The library version, for the table's heading. */
	const char *(*version)(void);
	/* Create the pool or ring for @cfg; NULL after a message. */
	void *(*open)(const struct bench_cfg *cfg);
	void (*close)(void *ctx);
	/*
	 * The loops; each returns 0, or -1 after a message on stderr.
	 * noops (W1): @n no-op jobs, @window in flight.
	 * roundtrip (W3): submit one no-op job and block until its callback
	 *   has run; the callback stores mono_ns() in *@t1.
	 * sleeps (W4): @n jobs of sleep_1ms(), at most @cap in flight where
	 *   the system has no worker threads to bound them.
	 * reads (W2, W5, W6, W7): run @p to its end.
	 * mixed (M1): run @m to its end, @m->window in flight.
	 */
	int (*noops)(void *ctx, uint64_t n, unsigned window);
	int (*roundtrip)(void *ctx, int64_t *t1);
	int (*sleeps)(void *ctx, unsigned n, unsigned cap);
	int (*reads)(void *ctx, struct rplan *p);
	int (*mixed)(void *ctx, struct mix *m);
	/*
	 * W8.  w8_start: allocate the job objects the driver owns (if any)
	 * and submit the blockers.  w8_submit: submit the @n no-ops.
	 * w8_poll: run ready callbacks without blocking.  w8_drain: run
	 * callbacks until @done reaches @n + @nblock.  w8_job_size: the size
	 * of the per-job object the caller allocates, 0 if there is none
	 * (the library allocates its jobs itself).
	 */
	int (*w8_start)(void *ctx, struct w8 *w);
	int (*w8_submit)(void *ctx, struct w8 *w);
	int (*w8_poll)(void *ctx, struct w8 *w);
	int (*w8_drain)(void *ctx, struct w8 *w);
	size_t w8_job_size;
};

#define WL_BIT(n)	(1u << (n))

/* The systems compiled in (each file defines one or two). */
extern const struct bench_system sys_iopool;
extern const struct bench_system sys_sync;
#ifdef HAVE_LIBUV
extern const struct bench_system sys_libuv;
#endif
#ifdef HAVE_LIBURING
extern const struct bench_system sys_io_uring;
extern const struct bench_system sys_io_uring_async;
#endif

/*
 * Run workload @cfg->wl on @sys in this process and print its figures
 * (out_metric()).  Returns 0, or 1 when the run failed (a message is on
 * stderr).
 */
int run_workload(const struct bench_system *sys, const struct bench_cfg *cfg);

/*
 * The procedures of W8 (run-w8.c) and M1 (run-m1.c), for run_workload():
 * 0, or -1 after a message.
 */
int run_w8(const struct bench_system *sys, void *ctx,
	   const struct bench_cfg *cfg);
int run_m1(const struct bench_system *sys, void *ctx,
	   const struct bench_cfg *cfg);

#endif /* IOP_BENCH_SYSTEMS_H */
