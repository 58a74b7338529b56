/*
 * System "libuv": libuv's thread pool.  uv_queue_work() for W1, W3, W4, W8
 * and M1, uv_fs_read() with an offset for W2, W5, W6 and W7.  The pool size is
 * UV_THREADPOOL_SIZE, set with setenv() before the pool starts (libuv
 * reads it once, at the first submit).  The main thread runs
 * uv_run(loop, UV_RUN_ONCE) until the loop's work is done; the after-work
 * and read callbacks resubmit from there (closed loop).  Requests are
 * pre-allocated, one per op in flight, and reused.
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
#include <uv.h>

struct ul;

/* One in-flight read. */
struct urslot {
	uv_fs_t req;
	uv_buf_t buf;
	struct rplan *p;
	uint64_t off;
	struct ul *ul;
};

/* One M1 job in flight. */
struct umslot {
	uv_work_t req;
	struct ul *ul;
	struct mix *m;
	struct mix_job job;
};

struct ul {
	uv_loop_t loop;
	/* Job loops (W1, W4): the work, and counts on the main thread. */
	uv_work_cb fn;
	uint64_t total, submitted, completed;
	int err;		/* the first failure, an errno value */
	uv_work_t *jobs;	/* max_inflight requests */
	unsigned njobs;
	/* W3. */
	uv_work_t rt;
	int64_t *t1;
	bool rt_done;
	/* Reads: one slot per op in flight. */
	struct urslot *rslots;
	unsigned nslots;
	/* M1: one slot per op in flight (nslots of them). */
	struct umslot *mslots;
	/* W8: the driver's job objects, as WORKLOADS.md allocates them. */
	uv_work_t *w8_blockers;
	uv_work_t *w8_jobs;
};

/* W8's state, for the work functions and callbacks (one per process). */
static struct w8 *w8_cur;

static int fail(const char *what, int err)
{
	fprintf(stderr, "iopool-bench: libuv: %s: %s\n", what, strerror(err));
	return -1;
}

static const char *ul_version(void)
{
	static char v[64];

	snprintf(v, sizeof(v), "libuv %s", uv_version_string());
	return v;
}

static void *ul_open(const struct bench_cfg *cfg)
{
	struct ul *ul = calloc(1, sizeof(*ul));
	char n[16];
	int r;

	if (!ul)
		return NULL;
	snprintf(n, sizeof(n), "%u", cfg->threads);
	setenv("UV_THREADPOOL_SIZE", n, 1);
	ul->njobs = cfg->max_inflight;
	ul->nslots = cfg->window;
	ul->jobs = calloc(ul->njobs + 1, sizeof(*ul->jobs));
	ul->rslots = calloc(ul->nslots + 1, sizeof(*ul->rslots));
	ul->mslots = calloc(ul->nslots + 1, sizeof(*ul->mslots));
	r = uv_loop_init(&ul->loop);
	if (r || !ul->jobs || !ul->rslots || !ul->mslots) {
		fail("uv_loop_init", r ? -r : ENOMEM);
		if (!r)
			uv_loop_close(&ul->loop);
		free(ul->jobs);
		free(ul->rslots);
		free(ul->mslots);
		free(ul);
		return NULL;
	}
	return ul;
}

static void ul_close(void *ctx)
{
	struct ul *ul = ctx;

	uv_loop_close(&ul->loop);
	free(ul->jobs);
	free(ul->rslots);
	free(ul->mslots);
	free(ul->w8_blockers);
	free(ul->w8_jobs);
	free(ul);
}

/* Run the loop until *@done is true. */
static void run_until(struct ul *ul, const bool *done)
{
	while (!*done)
		uv_run(&ul->loop, UV_RUN_ONCE);
}

static void noop_work(uv_work_t *req)
{
}

static void sleep_work(uv_work_t *req)
{
	sleep_1ms();
}

static void job_after(uv_work_t *req, int status);

static void job_submit(struct ul *ul, uv_work_t *req)
{
	int r = uv_queue_work(&ul->loop, req, ul->fn, job_after);

	if (r)
		ul->err = -r;
	else
		ul->submitted++;
}

/* A W1 or W4 job ended: count it and keep the loop going. */
static void job_after(uv_work_t *req, int status)
{
	struct ul *ul = req->data;

	ul->completed++;
	if (status && !ul->err)
		ul->err = -status;
	if (ul->submitted < ul->total && !ul->err)
		job_submit(ul, req);
}

/* Submit @n jobs of @fn, @window at first, and wait for all of them. */
static int jobs(struct ul *ul, uv_work_cb fn, uint64_t n, uint64_t window)
{
	if (window > ul->njobs)
		return fail("jobs", EINVAL);
	ul->fn = fn;
	ul->total = n;
	ul->submitted = 0;
	ul->completed = 0;
	ul->err = 0;
	for (uint64_t i = 0; i < window && i < n && !ul->err; i++) {
		ul->jobs[i].data = ul;
		job_submit(ul, &ul->jobs[i]);
	}
	while (ul->completed < ul->submitted)
		uv_run(&ul->loop, UV_RUN_ONCE);
	return ul->err ? fail("uv_queue_work", ul->err) : 0;
}

static int ul_noops(void *ctx, uint64_t n, unsigned window)
{
	return jobs(ctx, noop_work, n, window);
}

/* W4: all @n at once; the pool's threads bound how many run. */
static int ul_sleeps(void *ctx, unsigned n, unsigned cap)
{
	return jobs(ctx, sleep_work, n, n);
}

static void roundtrip_after(uv_work_t *req, int status)
{
	struct ul *ul = req->data;

	*ul->t1 = mono_ns();
	ul->rt_done = true;
}

static int ul_roundtrip(void *ctx, int64_t *t1)
{
	struct ul *ul = ctx;
	int r;

	ul->t1 = t1;
	ul->rt_done = false;
	ul->rt.data = ul;
	r = uv_queue_work(&ul->loop, &ul->rt, noop_work, roundtrip_after);
	if (r)
		return fail("uv_queue_work", -r);
	run_until(ul, &ul->rt_done);
	return 0;
}

static void read_cb(uv_fs_t *req);

static void read_submit(struct urslot *s)
{
	struct rplan *p = s->p;
	int r;

	if (!rplan_next(p, &s->off))
		return;
	r = uv_fs_read(&s->ul->loop, &s->req, p->fd, &s->buf, 1,
		       (int64_t)s->off, read_cb);
	if (r)
		rplan_abort(p, "uv_fs_read", -r);
}

static void read_cb(uv_fs_t *req)
{
	struct urslot *s = req->data;
	ssize_t got = req->result;

	uv_fs_req_cleanup(req);
	req->data = s;
	rplan_done(s->p, s->buf.base, got, s->off);
	read_submit(s);
}

static int ul_reads(void *ctx, struct rplan *p)
{
	struct ul *ul = ctx;

	if (p->window > ul->nslots)
		return fail("reads", EINVAL);
	for (unsigned k = 0; k < p->window; k++) {
		struct urslot *s = &ul->rslots[k];

		s->ul = ul;
		s->p = p;
		s->buf = uv_buf_init((char *)rplan_buf(p, k), (unsigned)p->len);
		s->req.data = s;
		read_submit(s);
	}
	while (rplan_inflight(p))
		uv_run(&ul->loop, UV_RUN_ONCE);
	return 0;
}

static void mix_after(uv_work_t *req, int status);

static void mix_submit(struct umslot *s)
{
	int r;

	if (!mix_next(s->m, &s->job))
		return;
	r = uv_queue_work(&s->ul->loop, &s->req,
			  s->job.is_long ? sleep_work : noop_work, mix_after);
	if (r)
		mix_abort(s->m, "uv_queue_work", -r);
}

/* An M1 job ended: time it, count it and submit the next one. */
static void mix_after(uv_work_t *req, int status)
{
	struct umslot *s = req->data;

	mix_done(s->m, &s->job, status);
	mix_submit(s);
}

static int ul_mixed(void *ctx, struct mix *m)
{
	struct ul *ul = ctx;

	if (m->window > ul->nslots)
		return fail("mixed", EINVAL);
	for (unsigned k = 0; k < m->window; k++) {
		struct umslot *s = &ul->mslots[k];

		s->ul = ul;
		s->m = m;
		s->req.data = s;
		mix_submit(s);
	}
	while (mix_inflight(m))
		uv_run(&ul->loop, UV_RUN_ONCE);
	return 0;
}

static void blocker_work(uv_work_t *req)
{
	w8_block(w8_cur);
}

static void w8_after(uv_work_t *req, int status)
{
	w8_done(w8_cur, req->data);
}

/* The 4 blockers are one calloc(4, size), the no-ops one calloc(n, size). */
static int ul_w8_start(void *ctx, struct w8 *w)
{
	struct ul *ul = ctx;

	w8_cur = w;
	ul->w8_blockers = calloc(w->nblock, sizeof(uv_work_t));
	ul->w8_jobs = calloc(w->n, sizeof(uv_work_t));
	if (!ul->w8_blockers || !ul->w8_jobs)
		return fail("calloc", ENOMEM);
	for (unsigned k = 0; k < w->nblock; k++) {
		uv_work_t *req = &ul->w8_blockers[k];
		int r;

		req->data = &w->counts[w->n + k];
		r = uv_queue_work(&ul->loop, req, blocker_work, w8_after);
		if (r)
			return fail("uv_queue_work", -r);
	}
	return 0;
}

/* Submission initialises each object: memset 0, then uv_queue_work(). */
static int ul_w8_submit(void *ctx, struct w8 *w)
{
	struct ul *ul = ctx;

	for (uint64_t i = 0; i < w->n; i++) {
		uv_work_t *req = &ul->w8_jobs[i];
		int r;

		memset(req, 0, sizeof(*req));
		req->data = &w->counts[i];
		r = uv_queue_work(&ul->loop, req, noop_work, w8_after);
		if (r)
			return fail("uv_queue_work", -r);
	}
	return 0;
}

static int ul_w8_poll(void *ctx, struct w8 *w)
{
	struct ul *ul = ctx;

	uv_run(&ul->loop, UV_RUN_NOWAIT);
	return 0;
}

static int ul_w8_drain(void *ctx, struct w8 *w)
{
	struct ul *ul = ctx;

	while (w->done < w->n + w->nblock)
		uv_run(&ul->loop, UV_RUN_ONCE);
	return 0;
}

const struct bench_system sys_libuv = {
	.name = "libuv",
	.workloads = WL_BIT(1) | WL_BIT(2) | WL_BIT(3) | WL_BIT(4) |
		     WL_BIT(5) | WL_BIT(6) | WL_BIT(7) | WL_BIT(8) |
		     WL_BIT(WL_M1),
	.version = ul_version,
	.open = ul_open,
	.close = ul_close,
	.noops = ul_noops,
	.roundtrip = ul_roundtrip,
	.sleeps = ul_sleeps,
	.reads = ul_reads,
	.mixed = ul_mixed,
	.w8_start = ul_w8_start,
	.w8_submit = ul_w8_submit,
	.w8_poll = ul_w8_poll,
	.w8_drain = ul_w8_drain,
	.w8_job_size = sizeof(uv_work_t),
};
