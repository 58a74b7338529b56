/*
 * Shared pieces of the iopool Check suites.
 *
 * Rules every suite follows (see STYLE.md):
 * - Check forks each test, so pools are created inside the test.
 * - ck_assert runs on the test's main thread only.  Work functions (on
 *   workers) and helper threads record what they saw in atomics or in
 *   their context, and the test asserts on that afterwards.
 * - Workers are held with a gate (a pipe the test controls) and counted
 *   with semaphores, never with sleeps.
 */
#ifndef IOP_TEST_HELPERS_H
#define IOP_TEST_HELPERS_H

#include <check.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "iopool.h"

/*
 * Seconds per test case.  CK_TIMEOUT_MULTIPLIER scales it for sanitizer
 * and valgrind runs.
 */
#define TEST_TIMEOUT 30

/*
 * How long the tests wait for something that should happen at once (a
 * descriptor becoming readable...), in milliseconds, before failing.
 * Generous, so a slow sanitizer run does not fail spuriously.
 */
#define TEST_WAIT_MS 20000

/*
 * Atomic loads for the tests.  Functions rather than macros, so that a
 * failed ck_assert shows "load_int(&d.calls)" and not the expansion of
 * atomic_load().
 */
static inline int load_int(atomic_int *p)
{
	return atomic_load(p);
}

static inline long load_long(atomic_long *p)
{
	return atomic_load(p);
}

/* Build one suite's runner, run it with CK_ENV, return the exit status. */
int run_suite(Suite *s);

/*
 * A test case with the house timeout and the fixture that records the
 * test's main thread (see test_thread()).
 */
TCase *tcase_new(const char *name);

/* The thread the running test started on; set by tcase_new's fixture. */
pthread_t test_thread(void);
bool on_test_thread(void);

/* A pool with @threads workers (0: the default); fails the test on NULL. */
iop_pool *pool_new(unsigned threads);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t now_ns(void);

/*
 * Temporary files.  pattern_byte() is the byte a pattern file holds at
 * @off for @seed.  make_pattern_file() creates a file of @size such bytes
 * under ${TMPDIR:-/tmp} with mkstemp, unlinks it at once and returns a
 * descriptor open for reading and writing (positioned at 0).
 */
unsigned char pattern_byte(uint32_t seed, uint64_t off);
int make_pattern_file(size_t size, uint32_t seed);

/* A small deterministic PRNG (xorshift64*), so failures reproduce. */
uint64_t rng_next(uint64_t *state);

/*
 * A gate holds worker threads until the test opens it: gate_wait() blocks
 * in read(2) on a pipe, and gate_open() closes the write end, so every
 * waiter (present or future) sees end of file and goes on.  Any thread may
 * open the gate, once.  gate_destroy() closes what is left.
 */
struct gate {
	int rfd;
	int wfd;
};

void gate_init(struct gate *g);
void gate_wait(struct gate *g);
void gate_open(struct gate *g);
void gate_destroy(struct gate *g);

/*
 * A held job: held_work() posts @entered (so the test can count the
 * workers it holds), blocks on @gate, then records that it ran and on
 * which thread and returns @result.
 */
struct held {
	struct gate *gate;
	sem_t *entered;
	ssize_t result;
	atomic_int ran;
	pthread_t worker;	/* written by the worker before it returns */
};

void held_init(struct held *h, struct gate *g, sem_t *entered, ssize_t result);
ssize_t held_work(void *ctx);

/*
 * What a done callback saw.  done_record() is a callback for any job
 * whose @arg is a struct done_rec: it counts calls, keeps the last result
 * and counts calls that were not on the test's thread.
 */
struct done_rec {
	atomic_int calls;
	atomic_long result;
	atomic_int off_thread;
};

void done_rec_init(struct done_rec *d);
void done_record(iop_job *job, ssize_t result, void *arg);

/*
 * A table of per-job counters, all starting at 0.  counters_count() says
 * how many entries differ from @want.
 */
atomic_int *counters_new(size_t n);
size_t counters_count_not(atomic_int *c, size_t n, int want);

/* A work function returning (ssize_t)(intptr_t)@ctx. */
ssize_t work_return_ctx(void *ctx);

/*
 * Run callbacks with iop_wait() until *@count reaches @target.  Returns 0,
 * the negative errno value iop_wait() returned, or -ETIMEDOUT when no
 * callback ran for TEST_WAIT_MS (call it only once the jobs it waits for
 * are able to finish).  Safe on any thread; drain_until() is the
 * asserting version for the test's thread.
 */
int wait_until(iop_pool *pool, atomic_int *count, int target);
void drain_until(iop_pool *pool, atomic_int *count, int target);

/* Wait up to @ms for @fd to become readable: 1 if it did, 0 if not. */
int fd_readable(int fd, int ms);

/*
 * How many of the signals a worker should have blocked are not blocked
 * in the calling thread (every signal that can be blocked: 1-31 except
 * SIGKILL and SIGSTOP, and SIGRTMIN..SIGRTMAX), or -1 if the mask cannot
 * be read.
 */
int signals_not_blocked(void);

/* sem_wait() @n times, retrying EINTR. */
void sem_wait_n(sem_t *s, int n);

/*
 * Best effort: wait (up to about @ms) until thread @tid of this process
 * is asleep in the kernel ('S' in /proc/self/task/TID/stat).  Returns
 * true if it was seen asleep.  Used only to narrow a race the API leaves
 * no other way to observe (a thread being inside iop_await()).
 */
bool thread_seen_asleep(pid_t tid, int ms);
pid_t gettid_compat(void);

/*
 * An opener opens a gate from its own thread once told to (opener_go()).
 * Used where the test thread itself must block, in iop_pool_destroy(),
 * until the held jobs finish.  With @sleeper non-zero it first waits (best
 * effort, see thread_seen_asleep()) until that thread is asleep, so that
 * the gate opens only once the test thread is blocked inside destroy.
 * opener_join() says whether it saw the sleeper asleep before opening.
 */
struct opener {
	struct gate *gate;
	pid_t sleeper;
	sem_t go;
	atomic_bool saw_asleep;
	pthread_t thread;
};

void opener_start(struct opener *o, struct gate *g, pid_t sleeper);
void opener_go(struct opener *o);
bool opener_join(struct opener *o);

/*
 * Shared by the cancel, future, group and chain suites.
 */

/*
 * Wait (up to @ms, yielding, no sleep) until iop_job_state(@job) is
 * @state.  Returns true if it was seen.  Only while the handle is valid.
 */
bool job_state_reached(const iop_job *job, int state, int ms);

/*
 * A step: step_work() records that it ran (@ran, and @at, the value of
 * the shared @clock when it started, counted from 1) and returns @result.
 * With @entered set it posts it first; with @gate set it then blocks on
 * it.  The clock shows the order in which workers started steps.
 */
struct step {
	atomic_int *clock;
	struct gate *gate;
	sem_t *entered;
	ssize_t result;
	atomic_int ran;
	atomic_int at;
};

void step_init(struct step *s, atomic_int *clock, ssize_t result);
ssize_t step_work(void *ctx);

/*
 * What a done callback saw, and when: ordered_record() does what
 * done_record() does and sets @at to the next value of the shared
 * @clock (from 1), so a test can check the order of callbacks.
 */
struct ordered_rec {
	struct done_rec d;
	atomic_int *clock;
	atomic_int at;
};

void ordered_init(struct ordered_rec *o, atomic_int *clock);
void ordered_record(iop_job *job, ssize_t result, void *arg);

/*
 * A spinner: spinner_work() posts @entered, then yields until
 * iop_cancel_requested() says 1 (or TEST_WAIT_MS passed), records in
 * @saw_cancel what it saw and returns @result.  @before records what
 * iop_cancel_requested() said when the work started.
 */
struct spinner {
	sem_t *entered;
	ssize_t result;
	atomic_int ran;
	atomic_int before;
	atomic_int saw_cancel;
};

void spinner_init(struct spinner *s, sem_t *entered, ssize_t result);
ssize_t spinner_work(void *ctx);

/*
 * End the test thread's batch on @pool, in which @submitted jobs were
 * held and @cancelled of them cancelled (or in a cancelled group, or
 * linked after such a job) while held.  The header does not say whether
 * iop_batch_end() counts those as "handed over", so either count passes.
 */
void batch_end_expect(iop_pool *pool, int submitted, int cancelled);

/*
 * A batch holder: a thread that opens a batch on @pool, submits into it
 * a future (work_return_ctx with @value) and keeps it held until
 * holder_release().  holder_start() returns once the job is held (@job,
 * NULL if the submit failed; @begin_ret what iop_batch_begin() said);
 * holder_join() waits for the thread, after which @end_ret holds what
 * iop_batch_end() said.  The future is the test's to await.
 */
struct holder {
	iop_pool *pool;
	intptr_t value;
	iop_job *job;
	int begin_ret;
	int end_ret;
	sem_t held;
	sem_t end;
	pthread_t thread;
};

void holder_start(struct holder *h, iop_pool *pool, intptr_t value);
void holder_release(struct holder *h);
void holder_join(struct holder *h);

/*
 * Shared by the elastic and sched suites: pools with options, statistics,
 * and waits with a deadline (waiting for a state, never sleeping for one).
 */

/* A pool with @opts; fails the test on NULL. */
iop_pool *pool_new_opts(const struct iop_options *opts);

/* iop_pool_stats() into *@st, with its size set; fails the test on error. */
void pool_stats(const iop_pool *pool, struct iop_stats *st);

/*
 * Poll iop_pool_stats() about every millisecond, for up to @ms, until its
 * threads field is @want.  Returns the last count seen (@want on success).
 * Safe on any thread.
 */
unsigned wait_threads(const iop_pool *pool, unsigned want, int ms);

/*
 * Poll iop_pool_stats() about every millisecond for @ms and return the
 * fewest threads seen: for checking that threads stay (min_threads).
 */
unsigned min_threads_seen(const iop_pool *pool, int ms);

/* sem_wait() @n times, up to @ms in all: true if all @n posts came. */
bool sem_wait_n_ms(sem_t *s, int n, int ms);

#endif /* IOP_TEST_HELPERS_H */
