/*
 * M1 — mixed job lengths (not one of W1-W8; the performance issue asks
 * that W1-style batching keep working when jobs of very different lengths
 * are mixed).  Defined in the manner of ../shared/WORKLOADS.md, whose
 * common rules apply (timed region, getrusage, fresh process per run,
 * median of the repetitions):
 *
 * 200,000 jobs; window 256 in flight; 4 worker threads; closed loop as W1
 * (the driver fills the window at start and each completion callback
 * submits the next job until the total is reached).  Job i (from 0, in
 * submission order) is **long** when i % 100 == 99: its work function
 * blocks in the same relative nanosleep of 1,000,000 ns as W4
 * (sleep_1ms()); otherwise it is **short**: it does nothing and returns,
 * as in W1.  So 2,000 jobs are long and 198,000 short.  Warm-up (untimed,
 * same process and pool): 10,000 jobs of the same mix (100 long).
 * Report **jobs/s** = 200,000 / timed seconds, and the **latency of the
 * short jobs**, from just before the submit to the start of the job's
 * completion callback on the main thread: p50, p99, p99.9 in µs,
 * nearest-rank on the 198,000 sorted samples as W3 (index ⌈q·N⌉ − 1:
 * 98,999 / 196,019 / 197,801); mean also reported.  Also: the long jobs'
 * count (a check: 2,000, and every job completes once), wall ms and its
 * **ratio to the ideal 500 ms** (with 4 workers the long jobs alone need
 * 2,000 × 1 ms / 4), CPU ns/job and context switches/job.
 * Systems: iopool (iop_call), libuv (uv_queue_work), and sync as a
 * reference: one thread runs each job inline, so its wall time is about
 * 2,000 × 1 ms = 2 s and its "latency" has no queue in it.  io_uring: not
 * run.
 *
 * What it shows: a pool that moves short jobs to a worker in batches must
 * not leave them behind a long job on one worker while other workers
 * idle; then the short jobs' latency stays near W1's queueing delay and
 * the wall time near 500 ms.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "systems.h"
#include "workloads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool mix_next(struct mix *m, struct mix_job *j)
{
	if (m->failed || m->submitted == m->total)
		return false;
	j->i = m->submitted++;
	j->is_long = m1_is_long(j->i);
	j->t0 = mono_ns();
	return true;
}

void mix_done(struct mix *m, const struct mix_job *j, ssize_t result)
{
	int64_t t1 = mono_ns();

	m->completed++;
	if (j->is_long)
		m->nlong++;
	else if (m->nshort < m->total)
		m->lat[m->nshort++] = t1 - j->t0;
	if (result != 0 && !m->failed) {
		fprintf(stderr, "iopool-bench: %s: job %llu returned %zd\n",
			m->who, (unsigned long long)j->i, result);
		m->failed = true;
	}
}

void mix_abort(struct mix *m, const char *call, int err)
{
	if (!m->failed)
		fprintf(stderr, "iopool-bench: %s: %s: %s\n", m->who, call,
			strerror(err));
	m->submitted--;
	m->failed = true;
}

uint64_t mix_inflight(const struct mix *m)
{
	return m->submitted - m->completed;
}

static void mix_init(struct mix *m, uint64_t total, unsigned window)
{
	m->total = total;
	m->window = window;
	m->submitted = 0;
	m->completed = 0;
	m->nshort = 0;
	m->nlong = 0;
	m->failed = false;
}

/* Run @m on @sys; 0, or -1 if the loop failed or a count is wrong. */
static int mixed(const struct bench_system *sys, void *ctx, struct mix *m)
{
	uint64_t nlong = m1_long_count(m->total);

	if (sys->mixed(ctx, m) || m->failed)
		return -1;
	if (m->completed != m->total || m->nlong != nlong ||
	    m->nshort != m->total - nlong) {
		fprintf(stderr, "iopool-bench: %s: %llu of %llu jobs ran, "
			"%llu long (want %llu), %llu short\n", m->who,
			(unsigned long long)m->completed,
			(unsigned long long)m->total,
			(unsigned long long)m->nlong,
			(unsigned long long)nlong,
			(unsigned long long)m->nshort);
		return -1;
	}
	return 0;
}

int run_m1(const struct bench_system *sys, void *ctx,
	   const struct bench_cfg *cfg)
{
	/*
	 * Static, as W8's state: after a failure the system's close may
	 * still run callbacks that touch it.  One M1 runs per process, and
	 * after a failure the samples stay allocated until it exits.
	 */
	static struct mix m;
	struct lat_summary ls;
	struct meter mt;
	double ms;

	m.who = cfg->name;
	m.lat = malloc(M1_JOBS * sizeof(*m.lat));
	if (!m.lat)
		return -1;
	memset(m.lat, 0, M1_JOBS * sizeof(*m.lat));
	mix_init(&m, M1_WARMUP, cfg->window);
	if (mixed(sys, ctx, &m))
		return -1;
	mix_init(&m, M1_JOBS, cfg->window);
	meter_start(&mt);
	if (mixed(sys, ctx, &m))
		return -1;
	meter_stop(&mt);
	out_metric("threads", count_threads());
	out_throughput(&mt, M1_JOBS, "jobs_per_s", 0);
	ms = meter_seconds(&mt) * 1e3;
	out_metric("ratio_ideal", ms / M1_IDEAL_MS);
	out_metric("long_jobs", (double)m.nlong);
	out_metric("short_jobs", (double)m.nshort);
	lat_summarize(m.lat, m.nshort, &ls);
	out_metric("p50_us", ls.p50_us);
	out_metric("p99_us", ls.p99_us);
	out_metric("p999_us", ls.p999_us);
	out_metric("mean_us", ls.mean_us);
	free(m.lat);
	m.lat = NULL;
	return 0;
}
