/*
 * Systems "io_uring" and "io_uring_async": io_uring through liburing.
 * A ring of max(window, 8) entries, flags 0; io-wq's worker caps (bounded
 * and unbounded) set to the thread count.  IORING_OP_NOP for W1 and W3,
 * IORING_OP_READ for W2, W5, W6 and W7, IORING_OP_TIMEOUT (1 ms, count 0,
 * at most @cap in flight) for W4.  The main thread calls
 * io_uring_submit_and_wait(1) and runs a callback per CQE; SQEs that the
 * callbacks prepare go out with the next submit_and_wait.
 *
 * io_uring_async sets IOSQE_ASYNC on every SQE, so each op runs on an
 * io-wq kernel worker: the kernel's own thread-pool offload.  Plain
 * io_uring completes NOPs and cached reads inline, inside
 * io_uring_enter(), and O_DIRECT and buffered misses without a worker.
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
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ur;

/* One W1 or W4 op in flight; W4's timespec must live until submitted. */
struct ujob {
	struct ur *ur;
	struct __kernel_timespec ts;
};

/* One in-flight read. */
struct urslot {
	struct ur *ur;
	struct rplan *p;
	uint64_t off;
	unsigned char *buf;
};

struct ur {
	struct io_uring ring;
	bool async;		/* IOSQE_ASYNC on every SQE */
	const char *name;
	/* Job loops (W1, W4): the op, and counts on the main thread. */
	bool timeout;		/* IORING_OP_TIMEOUT, else IORING_OP_NOP */
	uint64_t total, submitted, completed;
	int err;		/* the first failure, an errno value */
	struct ujob *jobs;	/* window of them */
	struct urslot *rslots;	/* window of them */
	unsigned nslots;
	/* W3. */
	int64_t *t1;
	bool rt_done;
};

typedef void cqe_fn(struct ur *ur, struct io_uring_cqe *cqe);

static int fail(const struct ur *ur, const char *what, int err)
{
	fprintf(stderr, "iopool-bench: %s: %s: %s\n", ur->name, what,
		strerror(err));
	return -1;
}

static const char *ur_version(void)
{
	return "liburing " LIBURING_VERSION;
}

static void *ur_open(const struct bench_cfg *cfg, bool async)
{
	struct ur *ur = calloc(1, sizeof(*ur));
	unsigned entries = cfg->window > 8 ? cfg->window : 8;
	unsigned workers[2] = { cfg->threads, cfg->threads };
	int r;

	if (!ur)
		return NULL;
	ur->async = async;
	ur->name = async ? "io_uring_async" : "io_uring";
	ur->nslots = cfg->window;
	ur->jobs = calloc(entries, sizeof(*ur->jobs));
	ur->rslots = calloc(entries, sizeof(*ur->rslots));
	r = io_uring_queue_init(entries, &ur->ring, 0);
	if (!r) {
		r = io_uring_register_iowq_max_workers(&ur->ring, workers);
		if (r)
			io_uring_queue_exit(&ur->ring);
	}
	if (r || !ur->jobs || !ur->rslots) {
		fail(ur, "io_uring_queue_init", r ? -r : ENOMEM);
		free(ur->jobs);
		free(ur->rslots);
		free(ur);
		return NULL;
	}
	return ur;
}

static void *ur_open_plain(const struct bench_cfg *cfg)
{
	return ur_open(cfg, false);
}

static void *ur_open_async(const struct bench_cfg *cfg)
{
	return ur_open(cfg, true);
}

static void ur_close(void *ctx)
{
	struct ur *ur = ctx;

	io_uring_queue_exit(&ur->ring);
	free(ur->jobs);
	free(ur->rslots);
	free(ur);
}

/*
 * A free SQE.  At most window ops are in flight and the ring has at least
 * that many entries, so the SQ cannot be full; flush it if it ever is.
 */
static struct io_uring_sqe *sqe_get(struct ur *ur)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ur->ring);

	if (!sqe) {
		io_uring_submit(&ur->ring);
		sqe = io_uring_get_sqe(&ur->ring);
	}
	return sqe;
}

static void sqe_finish(struct ur *ur, struct io_uring_sqe *sqe, void *data)
{
	io_uring_sqe_set_data(sqe, data);
	if (ur->async)
		io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
}

/* Submit what is prepared, wait for a completion, run @fn on each CQE. */
static int reap(struct ur *ur, cqe_fn *fn)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	int r = io_uring_submit_and_wait(&ur->ring, 1);

	if (r < 0 && r != -EINTR)
		return fail(ur, "io_uring_submit_and_wait", -r);
	io_uring_for_each_cqe(&ur->ring, head, cqe) {
		fn(ur, cqe);
		n++;
	}
	io_uring_cq_advance(&ur->ring, n);
	return 0;
}

static void job_submit(struct ur *ur, struct ujob *j)
{
	struct io_uring_sqe *sqe = sqe_get(ur);

	if (!sqe) {
		ur->err = EBUSY;
		return;
	}
	if (ur->timeout) {
		j->ts.tv_sec = 0;
		j->ts.tv_nsec = 1000000;
		io_uring_prep_timeout(sqe, &j->ts, 0, 0);
	} else {
		io_uring_prep_nop(sqe);
	}
	sqe_finish(ur, sqe, j);
	ur->submitted++;
}

/* A W1 or W4 op ended (a timeout with the expected -ETIME). */
static void job_cqe(struct ur *ur, struct io_uring_cqe *cqe)
{
	int want = ur->timeout ? -ETIME : 0;

	ur->completed++;
	if (cqe->res != want && !ur->err)
		ur->err = cqe->res < 0 ? -cqe->res : EIO;
	if (ur->submitted < ur->total && !ur->err)
		job_submit(ur, io_uring_cqe_get_data(cqe));
}

static int jobs(struct ur *ur, bool timeout, uint64_t n, unsigned window)
{
	if (window > ur->nslots)
		return fail(ur, "jobs", EINVAL);
	ur->timeout = timeout;
	ur->total = n;
	ur->submitted = 0;
	ur->completed = 0;
	ur->err = 0;
	for (unsigned i = 0; i < window && i < n && !ur->err; i++) {
		ur->jobs[i].ur = ur;
		job_submit(ur, &ur->jobs[i]);
	}
	while (ur->completed < ur->submitted)
		if (reap(ur, job_cqe))
			return -1;
	return ur->err ? fail(ur, "op", ur->err) : 0;
}

static int ur_noops(void *ctx, uint64_t n, unsigned window)
{
	return jobs(ctx, false, n, window);
}

/* W4: timeouts, at most @cap in flight (standing in for 64 workers). */
static int ur_sleeps(void *ctx, unsigned n, unsigned cap)
{
	return jobs(ctx, true, n, cap);
}

static void roundtrip_cqe(struct ur *ur, struct io_uring_cqe *cqe)
{
	*ur->t1 = mono_ns();
	ur->rt_done = true;
	if (cqe->res != 0)
		ur->err = cqe->res < 0 ? -cqe->res : EIO;
}

static int ur_roundtrip(void *ctx, int64_t *t1)
{
	struct ur *ur = ctx;
	struct io_uring_sqe *sqe = sqe_get(ur);

	if (!sqe)
		return fail(ur, "io_uring_get_sqe", EBUSY);
	ur->t1 = t1;
	ur->rt_done = false;
	ur->err = 0;
	io_uring_prep_nop(sqe);
	sqe_finish(ur, sqe, ur);
	while (!ur->rt_done)
		if (reap(ur, roundtrip_cqe))
			return -1;
	return ur->err ? fail(ur, "nop", ur->err) : 0;
}

static void read_submit(struct urslot *s)
{
	struct rplan *p = s->p;
	struct io_uring_sqe *sqe;

	if (!rplan_next(p, &s->off))
		return;
	sqe = sqe_get(s->ur);
	if (!sqe) {
		rplan_abort(p, "io_uring_get_sqe", EBUSY);
		return;
	}
	io_uring_prep_read(sqe, p->fd, s->buf, (unsigned)p->len, s->off);
	sqe_finish(s->ur, sqe, s);
}

static void read_cqe(struct ur *ur, struct io_uring_cqe *cqe)
{
	struct urslot *s = io_uring_cqe_get_data(cqe);

	rplan_done(s->p, s->buf, cqe->res, s->off);
	read_submit(s);
}

static int ur_reads(void *ctx, struct rplan *p)
{
	struct ur *ur = ctx;

	if (p->window > ur->nslots)
		return fail(ur, "reads", EINVAL);
	for (unsigned k = 0; k < p->window; k++) {
		ur->rslots[k] = (struct urslot){ ur, p, 0, rplan_buf(p, k) };
		read_submit(&ur->rslots[k]);
	}
	while (rplan_inflight(p))
		if (reap(ur, read_cqe))
			return -1;
	return 0;
}

const struct bench_system sys_io_uring = {
	.name = "io_uring",
	.workloads = WL_BIT(1) | WL_BIT(2) | WL_BIT(3) | WL_BIT(4) |
		     WL_BIT(5) | WL_BIT(6) | WL_BIT(7),
	.version = ur_version,
	.open = ur_open_plain,
	.close = ur_close,
	.noops = ur_noops,
	.roundtrip = ur_roundtrip,
	.sleeps = ur_sleeps,
	.reads = ur_reads,
};

const struct bench_system sys_io_uring_async = {
	.name = "io_uring_async",
	.workloads = WL_BIT(1) | WL_BIT(2) | WL_BIT(3) | WL_BIT(5) |
		     WL_BIT(7),
	.version = ur_version,
	.open = ur_open_async,
	.close = ur_close,
	.noops = ur_noops,
	.roundtrip = ur_roundtrip,
	.sleeps = ur_sleeps,
	.reads = ur_reads,
};
