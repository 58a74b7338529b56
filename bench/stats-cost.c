/*
 * What collecting statistics costs: W1 of ../shared/WORKLOADS.md (no-op
 * round trips, window 256, 4 worker threads, 10,000 warm-up jobs, then
 * 1,000,000 timed) against whichever libiopool it is linked with.
 * bench/stats-overhead.sh builds it twice, with and without statistics,
 * and compares the two.  Prints one line: jobs/s.
 */
#include <iopool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WINDOW	256
#define WARMUP	10000
#define TIMED	1000000

static iop_pool *pool;
static long submitted, completed, total;

static ssize_t noop(void *ctx)
{
	(void)ctx;
	return 0;
}

static void done(iop_job *job, ssize_t result, void *arg)
{
	(void)job;
	(void)arg;
	if (result != 0)
		abort();
	completed++;
	if (submitted < total) {
		submitted++;
		if (!iop_call(pool, noop, NULL, done, NULL))
			abort();
	}
}

/* Run @n round trips with WINDOW in flight; returns the seconds taken. */
static double run(long n)
{
	struct timespec a, b;

	submitted = completed = 0;
	total = n;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (; submitted < WINDOW && submitted < total; submitted++)
		if (!iop_call(pool, noop, NULL, done, NULL))
			abort();
	while (completed < total)
		if (iop_wait(pool, -1) < 0)
			abort();
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
}

int main(void)
{
	struct iop_options opts = { .threads = 4 };

	pool = iop_pool_new(&opts);
	if (!pool) {
		perror("iop_pool_new");
		return 1;
	}
	run(WARMUP);
	printf("%.0f\n", TIMED / run(TIMED));
	iop_pool_destroy(pool);
	return 0;
}
