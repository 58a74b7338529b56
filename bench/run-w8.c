/*
 * W8, memory per queued job (../shared/WORKLOADS.md): one blocker job per
 * worker holds every worker in read() of a pipe; then the resident set is
 * read before and after 1,000,000 no-op jobs are submitted, so the growth
 * is what the queued jobs cost.  Then the pipe frees the workers and every
 * callback must run exactly once.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "systems.h"
#include "workloads.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define W8_JOBS		1000000

/* Wait, in 1 ms sleeps, until every blocker holds its worker. */
static int w8_wait_blocked(struct w8 *w)
{
	for (int i = 0; i < 10000; i++) {
		if (atomic_load(&w->entered) == w->nblock)
			return 0;
		sleep_1ms();
	}
	fprintf(stderr, "iopool-bench: W8: the blockers did not all start\n");
	return -1;
}

/* Each job's callback ran exactly once: 0, or -1 with a message. */
static int w8_check_once(const struct w8 *w)
{
	for (uint64_t i = 0; i < w->n + w->nblock; i++) {
		if (w->counts[i] != 1) {
			fprintf(stderr, "iopool-bench: W8: job %llu ended %u "
				"times\n", (unsigned long long)i,
				w->counts[i]);
			return -1;
		}
	}
	return 0;
}

/* Write one byte per blocker to the pipe. */
static int wake_blockers(int fd, unsigned n)
{
	static const char bytes[64];

	while (n) {
		unsigned k = n < sizeof(bytes) ? n : sizeof(bytes);
		ssize_t w = write(fd, bytes, k);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		n -= (unsigned)w;
	}
	return 0;
}

/* The queue part of W8: RSS before and after the submits, then the drain. */
static int w8_measure(const struct bench_system *sys, void *ctx,
		      struct w8 *w, int pipe_wr)
{
	long rss0, rss1, sm0, sm1;
	int64_t t0, t1;

	if (sys->w8_start(ctx, w) || w8_wait_blocked(w))
		return -1;
	rss_smaps();
	rss0 = rss_statm_settled();
	sm0 = rss_smaps();
	if (sys->w8_submit(ctx, w))
		return -1;
	rss1 = rss_statm_settled();
	sm1 = rss_smaps();
	if (rss0 < 0 || rss1 < 0 || sm0 < 0 || sm1 < 0) {
		fprintf(stderr, "iopool-bench: W8: cannot read the RSS from "
			"/proc/self/statm and smaps_rollup\n");
		return -1;
	}
	if (sys->w8_poll(ctx, w) || w->done) {
		fprintf(stderr, "iopool-bench: W8: %llu jobs completed while "
			"every worker was blocked\n",
			(unsigned long long)w->done);
		return -1;
	}
	if (wake_blockers(pipe_wr, w->nblock))
		return -1;
	t0 = mono_ns();
	if (sys->w8_drain(ctx, w))
		return -1;
	t1 = mono_ns();
	if (w8_check_once(w))
		return -1;
	out_metric("bytes_per_job", (double)(rss1 - rss0) / (double)w->n);
	out_metric("bytes_per_job_smaps", (double)(sm1 - sm0) / (double)w->n);
	if (sys->w8_job_size)
		out_metric("job_size_bytes", (double)sys->w8_job_size);
	out_metric("rss0_bytes", (double)rss0);
	out_metric("rss1_bytes", (double)rss1);
	out_metric("drain_ms", (double)(t1 - t0) / 1e6);
	return 0;
}

int run_w8(const struct bench_system *sys, void *ctx,
	   const struct bench_cfg *cfg)
{
	/*
	 * Static: after a failure the system's close may still run callbacks
	 * that touch it.  One W8 runs per process.
	 */
	static struct w8 w;
	int fds[2];

	if (pipe(fds))
		return -1;
	/* One blocker per worker (4 by default), so that every one is held. */
	w.n = W8_JOBS;
	w.nblock = cfg->threads;
	w.pipe_rd = fds[0];
	w.done = 0;
	atomic_init(&w.entered, 0);
	/* Driver bookkeeping is allocated and touched before RSS0. */
	w.counts = malloc(w.n + w.nblock);
	if (!w.counts)
		return -1;
	memset(w.counts, 0, w.n + w.nblock);
	if (w8_measure(sys, ctx, &w, fds[1])) {
		/*
		 * Free the workers so that closing the system can end the
		 * jobs; their callbacks may still count in w.counts, so it
		 * stays (the process exits right after a failed run).
		 */
		close(fds[1]);
		return -1;
	}
	close(fds[1]);
	close(fds[0]);
	free(w.counts);
	return 0;
}
