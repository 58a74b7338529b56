/*
 * System "iopool": this library, as a program would use it, with default
 * options except the thread count.  W1, W3, W4, W8 and M1 submit with
 * iop_call() (the work of W4 and of M1's long jobs is the 1 ms
 * nanosleep), W2, W5, W6 and W7 with iop_read().  The main thread blocks
 * in iop_wait(pool, -1), which runs the callbacks; callbacks resubmit
 * (closed loop).  W8: the library allocates its own jobs, so the caller
 * has no job object to count, and the RSS growth is all of the pool's
 * memory per queued job.
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

#include "iopool.h"

struct ipool;

/*
 * One op in flight: a read (its plan, slot buffer and offset) or an M1 job
 * (its loop and the job).
 */
struct islot {
	struct ipool *ip;
	struct rplan *p;
	uint64_t off;
	unsigned char *buf;
	struct mix *m;
	struct mix_job job;
};

struct ipool {
	iop_pool *pool;
	/* Job loops (W1, W4): the work, and counts on the main thread. */
	iop_work_fn *fn;
	uint64_t total, submitted, completed;
	int err;		/* the first failure, an errno value */
	/* W3: where the callback puts its time, and whether it ran. */
	int64_t *t1;
	bool rt_done;
	/* Reads and M1: one slot per op in flight. */
	struct islot *slots;
	unsigned nslots;
};

/* W8's state, for the callbacks (one W8 per process). */
static struct w8 *w8_cur;

static int fail(const char *what, int err)
{
	fprintf(stderr, "iopool-bench: iopool: %s: %s\n", what, strerror(err));
	return -1;
}

static const char *ipool_version(void)
{
	return "iopool " PACKAGE_VERSION;
}

static void *ipool_open(const struct bench_cfg *cfg)
{
	struct iop_options opts = { .threads = cfg->threads };
	struct ipool *ip = calloc(1, sizeof(*ip));

	if (!ip)
		return NULL;
	ip->nslots = cfg->window;
	ip->slots = calloc(cfg->window ? cfg->window : 1, sizeof(*ip->slots));
	ip->pool = iop_pool_new(&opts);
	if (!ip->pool || !ip->slots) {
		fail("iop_pool_new", errno);
		free(ip->slots);
		free(ip);
		return NULL;
	}
	return ip;
}

static void ipool_close(void *ctx)
{
	struct ipool *ip = ctx;

	iop_pool_destroy(ip->pool);
	free(ip->slots);
	free(ip);
}

/* Run callbacks until *@completed reaches *@submitted. */
static int wait_all(struct ipool *ip, const uint64_t *submitted,
		    const uint64_t *completed)
{
	while (*completed < *submitted) {
		int r = iop_wait(ip->pool, -1);

		if (r < 0)
			return fail("iop_wait", -r);
	}
	return 0;
}

static ssize_t noop_work(void *ctx)
{
	return 0;
}

static ssize_t sleep_work(void *ctx)
{
	sleep_1ms();
	return 0;
}

static void job_done(iop_job *job, ssize_t result, void *arg);

static void job_submit(struct ipool *ip)
{
	if (!iop_call(ip->pool, ip->fn, NULL, job_done, ip))
		ip->err = errno;
	else
		ip->submitted++;
}

/* A W1 or W4 job ended: count it and keep the loop going. */
static void job_done(iop_job *job, ssize_t result, void *arg)
{
	struct ipool *ip = arg;

	ip->completed++;
	if (result != 0 && !ip->err)
		ip->err = result < 0 ? (int)-result : EIO;
	if (ip->submitted < ip->total && !ip->err)
		job_submit(ip);
}

/* Submit @n jobs of @fn, @window at first, and wait for all of them. */
static int jobs(struct ipool *ip, iop_work_fn *fn, uint64_t n,
		uint64_t window)
{
	ip->fn = fn;
	ip->total = n;
	ip->submitted = 0;
	ip->completed = 0;
	ip->err = 0;
	for (uint64_t i = 0; i < window && i < n && !ip->err; i++)
		job_submit(ip);
	if (wait_all(ip, &ip->submitted, &ip->completed))
		return -1;
	if (ip->err)
		return fail("job", ip->err);
	return 0;
}

static int ipool_noops(void *ctx, uint64_t n, unsigned window)
{
	return jobs(ctx, noop_work, n, window);
}

/* W4: all @n at once; the pool's workers bound how many run. */
static int ipool_sleeps(void *ctx, unsigned n, unsigned cap)
{
	return jobs(ctx, sleep_work, n, n);
}

static void roundtrip_done(iop_job *job, ssize_t result, void *arg)
{
	struct ipool *ip = arg;

	*ip->t1 = mono_ns();
	ip->rt_done = true;
}

static int ipool_roundtrip(void *ctx, int64_t *t1)
{
	struct ipool *ip = ctx;

	ip->t1 = t1;
	ip->rt_done = false;
	if (!iop_call(ip->pool, noop_work, NULL, roundtrip_done, ip))
		return fail("iop_call", errno);
	while (!ip->rt_done) {
		int r = iop_wait(ip->pool, -1);

		if (r < 0)
			return fail("iop_wait", -r);
	}
	return 0;
}

static void read_done(iop_job *job, ssize_t result, void *arg);

static void read_submit(struct islot *s)
{
	struct rplan *p = s->p;

	if (!rplan_next(p, &s->off))
		return;
	if (!iop_read(s->ip->pool, p->fd, s->buf, p->len, (int64_t)s->off,
		      read_done, s))
		rplan_abort(p, "iop_read", errno);
}

static void read_done(iop_job *job, ssize_t result, void *arg)
{
	struct islot *s = arg;

	rplan_done(s->p, s->buf, result, s->off);
	read_submit(s);
}

static int ipool_reads(void *ctx, struct rplan *p)
{
	struct ipool *ip = ctx;

	if (p->window > ip->nslots)
		return fail("reads", EINVAL);
	for (unsigned k = 0; k < p->window; k++) {
		ip->slots[k] = (struct islot){ .ip = ip, .p = p,
					       .buf = rplan_buf(p, k) };
		read_submit(&ip->slots[k]);
	}
	while (rplan_inflight(p)) {
		int r = iop_wait(ip->pool, -1);

		if (r < 0)
			return fail("iop_wait", -r);
	}
	return 0;
}

static void mix_cb(iop_job *job, ssize_t result, void *arg);

static void mix_submit(struct islot *s)
{
	if (!mix_next(s->m, &s->job))
		return;
	if (!iop_call(s->ip->pool, s->job.is_long ? sleep_work : noop_work,
		      NULL, mix_cb, s))
		mix_abort(s->m, "iop_call", errno);
}

/* An M1 job ended: time it, count it and submit the next one. */
static void mix_cb(iop_job *job, ssize_t result, void *arg)
{
	struct islot *s = arg;

	mix_done(s->m, &s->job, result);
	mix_submit(s);
}

static int ipool_mixed(void *ctx, struct mix *m)
{
	struct ipool *ip = ctx;

	if (m->window > ip->nslots)
		return fail("mixed", EINVAL);
	for (unsigned k = 0; k < m->window; k++) {
		ip->slots[k] = (struct islot){ .ip = ip, .m = m };
		mix_submit(&ip->slots[k]);
	}
	while (mix_inflight(m)) {
		int r = iop_wait(ip->pool, -1);

		if (r < 0)
			return fail("iop_wait", -r);
	}
	return 0;
}

static ssize_t blocker_work(void *ctx)
{
	w8_block(ctx);
	return 0;
}

static void w8_cb(iop_job *job, ssize_t result, void *arg)
{
	w8_done(w8_cur, arg);
}

static int ipool_w8_start(void *ctx, struct w8 *w)
{
	struct ipool *ip = ctx;

	w8_cur = w;
	for (unsigned k = 0; k < w->nblock; k++)
		if (!iop_call(ip->pool, blocker_work, w, w8_cb,
			      &w->counts[w->n + k]))
			return fail("iop_call", errno);
	return 0;
}

static int ipool_w8_submit(void *ctx, struct w8 *w)
{
	struct ipool *ip = ctx;

	for (uint64_t i = 0; i < w->n; i++)
		if (!iop_call(ip->pool, noop_work, NULL, w8_cb, &w->counts[i]))
			return fail("iop_call", errno);
	return 0;
}

static int ipool_w8_poll(void *ctx, struct w8 *w)
{
	struct ipool *ip = ctx;
	int r = iop_poll(ip->pool);

	return r < 0 ? fail("iop_poll", -r) : 0;
}

static int ipool_w8_drain(void *ctx, struct w8 *w)
{
	struct ipool *ip = ctx;

	while (w->done < w->n + w->nblock) {
		int r = iop_wait(ip->pool, -1);

		if (r < 0)
			return fail("iop_wait", -r);
	}
	return 0;
}

const struct bench_system sys_iopool = {
	.name = "iopool",
	.workloads = WL_BIT(1) | WL_BIT(2) | WL_BIT(3) | WL_BIT(4) |
		     WL_BIT(5) | WL_BIT(6) | WL_BIT(7) | WL_BIT(8) |
		     WL_BIT(WL_M1),
	.version = ipool_version,
	.open = ipool_open,
	.close = ipool_close,
	.noops = ipool_noops,
	.roundtrip = ipool_roundtrip,
	.sleeps = ipool_sleeps,
	.reads = ipool_reads,
	.mixed = ipool_mixed,
	.w8_start = ipool_w8_start,
	.w8_submit = ipool_w8_submit,
	.w8_poll = ipool_w8_poll,
	.w8_drain = ipool_w8_drain,
	.w8_job_size = 0,
};
