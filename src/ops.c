/*
 * The operations: one small submit function and one small run function
 * per kind of job.  Submit functions check their arguments on the
 * caller's thread; run functions execute on a worker.
 */
#include "iopool-int.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <unistd.h>

static ssize_t run_read(const struct iop__req *req)
{
	ssize_t r;

	do {
		if (req->u.rw.offset == IOP_OFFSET_CURRENT)
			r = read(req->fd, req->u.rw.buf, req->u.rw.len);
		else
			r = pread(req->fd, req->u.rw.buf, req->u.rw.len,
				  (off_t)req->u.rw.offset);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

ssize_t iop__job_run(struct iop_job *job)
{
	switch (job->req.op) {
	case IOP__OP_READ:
		return run_read(&job->req);
	case IOP__OP_CALL:
		return job->req.u.call.fn(job->req.u.call.ctx);
	}
	return -ENOSYS;
}

static iop_job *invalid(void)
{
	errno = EINVAL;
	return NULL;
}

iop_job *iop_read(iop_pool *pool, int fd, void *buf, size_t len,
		  int64_t offset, iop_done_fn *done, void *arg)
{
	struct iop__req req = {
		.op = IOP__OP_READ,
		.done = done,
		.arg = arg,
		.u.rw = { .buf = buf, .len = len, .offset = offset },
		.fd = fd,
	};

	if (!pool || len > SSIZE_MAX || (!buf && len > 0) ||
	    (offset < 0 && offset != IOP_OFFSET_CURRENT))
		return invalid();
	return iop__submit(pool, &req);
}

iop_job *iop_call(iop_pool *pool, iop_work_fn *fn, void *ctx,
		  iop_done_fn *done, void *arg)
{
	struct iop__req req = {
		.op = IOP__OP_CALL,
		.done = done,
		.arg = arg,
		.u.call = { .fn = fn, .ctx = ctx },
	};

	if (!pool || !fn)
		return invalid();
	return iop__submit(pool, &req);
}
