/*
 * The operations on descriptors: one small submit function and one small
 * run function per kind of job, the dispatch to the run functions, and
 * what counts as a whole transfer for chains.  Submit functions check
 * their arguments on the caller's thread; run functions execute on a
 * worker.  The operations on paths live in fileops.c.
 */
#include "iopool-int.h"
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * READ and WRITE: pread/pwrite at an offset, read/write at the
 * descriptor's position.  One transfer, never looped: a short count is
 * the result.
 */
static ssize_t run_rw(const struct iop__req *req)
{
	const bool cur = req->u.rw.offset == IOP_OFFSET_CURRENT;
	const off_t off = (off_t)req->u.rw.offset;
	void *buf = req->u.rw.buf;
	const size_t len = req->u.rw.len;
	ssize_t r;

	do {
		if (req->op == IOP__OP_READ)
			r = cur ? read(req->fd, buf, len)
				: pread(req->fd, buf, len, off);
		else
			r = cur ? write(req->fd, buf, len)
				: pwrite(req->fd, buf, len, off);
	} while (r < 0 && errno == EINTR);
	return iop__sysret(r);
}

/* READV and WRITEV, the same way. */
static ssize_t run_vec(const struct iop__req *req)
{
	const bool cur = req->u.vec.offset == IOP_OFFSET_CURRENT;
	const off_t off = (off_t)req->u.vec.offset;
	const struct iovec *iov = req->u.vec.iov;
	const int cnt = req->u.vec.iovcnt;
	ssize_t r;

	do {
		if (req->op == IOP__OP_READV)
			r = cur ? readv(req->fd, iov, cnt)
				: preadv(req->fd, iov, cnt, off);
		else
			r = cur ? writev(req->fd, iov, cnt)
				: pwritev(req->fd, iov, cnt, off);
	} while (r < 0 && errno == EINTR);
	return iop__sysret(r);
}

/*
 * Not retried: Linux has released the descriptor even when close reports
 * EINTR, and by then another thread may have been given the same number.
 */
static ssize_t run_close(const struct iop__req *req)
{
	return iop__sysret(close(req->fd));
}

static ssize_t run_fsync(const struct iop__req *req)
{
	int r;

	while ((r = fsync(req->fd)) < 0 && errno == EINTR)
		;
	return iop__sysret(r);
}

static ssize_t run_fdatasync(const struct iop__req *req)
{
	int r;

	while ((r = fdatasync(req->fd)) < 0 && errno == EINTR)
		;
	return iop__sysret(r);
}

static ssize_t run_fstat(const struct iop__req *req)
{
	return iop__sysret(fstat(req->fd, req->u.at.out));
}

static ssize_t run_ftruncate(const struct iop__req *req)
{
	int r;

	while ((r = ftruncate(req->fd, (off_t)req->u.range.len)) < 0 &&
	       errno == EINTR)
		;
	return iop__sysret(r);
}

static ssize_t run_fallocate(const struct iop__req *req)
{
	const off_t off = (off_t)req->u.range.offset;
	const off_t len = (off_t)req->u.range.len;
	int r;

	while ((r = fallocate(req->fd, req->u.range.mode, off, len)) < 0 &&
	       errno == EINTR)
		;
	return iop__sysret(r);
}

ssize_t iop__job_run(struct iop_job *job)
{
	const struct iop__req *req = &job->req;

	switch (req->op) {
	case IOP__OP_READ:
	case IOP__OP_WRITE:
		return run_rw(req);
	case IOP__OP_READV:
	case IOP__OP_WRITEV:
		return run_vec(req);
	case IOP__OP_CALL:
		return req->u.call.fn(req->u.call.ctx);
	case IOP__OP_OPENAT:
		return iop__run_openat(req);
	case IOP__OP_CLOSE:
		return run_close(req);
	case IOP__OP_FSYNC:
		return run_fsync(req);
	case IOP__OP_FDATASYNC:
		return run_fdatasync(req);
	case IOP__OP_FSTAT:
		return run_fstat(req);
	case IOP__OP_STATAT:
		return iop__run_statat(req);
	case IOP__OP_READFILE:
		return iop__run_readfile(req);
	case IOP__OP_FTRUNCATE:
		return run_ftruncate(req);
	case IOP__OP_FALLOCATE:
		return run_fallocate(req);
	case IOP__OP_RENAMEAT:
		return iop__run_renameat(req);
	case IOP__OP_UNLINKAT:
		return iop__run_unlinkat(req);
	case IOP__OP_MKDIRAT:
		return iop__run_mkdirat(req);
	case IOP__OP_LISTDIR:
		return iop__run_listdir(req);
	}
	return -ENOSYS;
}

/*
 * The bytes an iovec array asks for.  Only called for a job that
 * succeeded, so the kernel has accepted the array: the sum fits.
 */
static size_t iov_total(const struct iovec *iov, int cnt)
{
	size_t sum = 0;

	for (int i = 0; i < cnt; i++)
		sum += iov[i].iov_len;
	return sum;
}

/*
 * Whether @result lets a chain go on.  A short transfer does not: a
 * write cut short before an fsync would acknowledge half a record.  The
 * iovec array is still the pool's here (until the callback runs).
 */
bool iop__job_whole(const struct iop_job *job, ssize_t result)
{
	const struct iop__req *req = &job->req;

	if (result < 0)
		return false;
	switch (req->op) {
	case IOP__OP_READ:
	case IOP__OP_WRITE:
		return (size_t)result == req->u.rw.len;
	case IOP__OP_READV:
	case IOP__OP_WRITEV:
		return (size_t)result ==
		       iov_total(req->u.vec.iov, req->u.vec.iovcnt);
	}
	return true;
}

/* Offsets are >= 0, or IOP_OFFSET_CURRENT for the descriptor's position. */
static bool offset_ok(int64_t offset)
{
	return offset >= 0 || offset == IOP_OFFSET_CURRENT;
}

static iop_job *submit_rw(iop_pool *pool, unsigned char op, int fd,
			  void *buf, size_t len, int64_t offset,
			  iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(op, fd, done, arg);

	if (!pool || len > SSIZE_MAX || (!buf && len > 0) ||
	    !offset_ok(offset))
		return iop__einval();
	req.u.rw.buf = buf;
	req.u.rw.len = len;
	req.u.rw.offset = offset;
	if (op == IOP__OP_READ && offset != IOP_OFFSET_CURRENT && len > 0) {
		iop_job *job = iop__read_now(pool, &req);

		if (job)
			return job;
	}
	return iop__submit(pool, &req);
}

iop_job *iop_read(iop_pool *pool, int fd, void *buf, size_t len,
		  int64_t offset, iop_done_fn *done, void *arg)
{
	return submit_rw(pool, IOP__OP_READ, fd, buf, len, offset, done, arg);
}

/* The worker only reads @buf; req.u.rw.buf is not const because of READ. */
iop_job *iop_write(iop_pool *pool, int fd, const void *buf, size_t len,
		   int64_t offset, iop_done_fn *done, void *arg)
{
	return submit_rw(pool, IOP__OP_WRITE, fd, (void *)buf, len, offset,
			 done, arg);
}

/* The lengths add up to at most SSIZE_MAX, as readv(2) requires. */
static bool iov_fits(const struct iovec *iov, int iovcnt)
{
	size_t total = 0;
	int i;

	for (i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > SSIZE_MAX - total)
			return false;
		total += iov[i].iov_len;
	}
	return true;
}

static iop_job *submit_vec(iop_pool *pool, unsigned char op, int fd,
			   const struct iovec *iov, int iovcnt,
			   int64_t offset, iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(op, fd, done, arg);

	if (!pool || iovcnt < 0 || iovcnt > IOV_MAX ||
	    (!iov && iovcnt > 0) || !offset_ok(offset) ||
	    !iov_fits(iov, iovcnt))
		return iop__einval();
	req.u.vec.iov = iov;
	req.u.vec.iovcnt = iovcnt;
	req.u.vec.offset = offset;
	return iop__submit(pool, &req);
}

iop_job *iop_readv(iop_pool *pool, int fd, const struct iovec *iov,
		   int iovcnt, int64_t offset, iop_done_fn *done, void *arg)
{
	return submit_vec(pool, IOP__OP_READV, fd, iov, iovcnt, offset, done,
			  arg);
}

iop_job *iop_writev(iop_pool *pool, int fd, const struct iovec *iov,
		    int iovcnt, int64_t offset, iop_done_fn *done, void *arg)
{
	return submit_vec(pool, IOP__OP_WRITEV, fd, iov, iovcnt, offset, done,
			  arg);
}

iop_job *iop_call(iop_pool *pool, iop_work_fn *fn, void *ctx,
		  iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(IOP__OP_CALL, -1, done, arg);

	if (!pool || !fn)
		return iop__einval();
	req.u.call.fn = fn;
	req.u.call.ctx = ctx;
	return iop__submit(pool, &req);
}

/* The ops that take nothing but a descriptor. */
static iop_job *submit_fd(iop_pool *pool, unsigned char op, int fd,
			  iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(op, fd, done, arg);

	if (!pool)
		return iop__einval();
	return iop__submit(pool, &req);
}

iop_job *iop_close(iop_pool *pool, int fd, iop_done_fn *done, void *arg)
{
	return submit_fd(pool, IOP__OP_CLOSE, fd, done, arg);
}

iop_job *iop_fsync(iop_pool *pool, int fd, iop_done_fn *done, void *arg)
{
	return submit_fd(pool, IOP__OP_FSYNC, fd, done, arg);
}

iop_job *iop_fdatasync(iop_pool *pool, int fd, iop_done_fn *done, void *arg)
{
	return submit_fd(pool, IOP__OP_FDATASYNC, fd, done, arg);
}

iop_job *iop_fstat(iop_pool *pool, int fd, struct stat *st,
		   iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(IOP__OP_FSTAT, fd, done, arg);

	if (!pool || !st)
		return iop__einval();
	req.u.at.out = st;
	return iop__submit(pool, &req);
}

iop_job *iop_ftruncate(iop_pool *pool, int fd, int64_t length,
		       iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(IOP__OP_FTRUNCATE, fd, done, arg);

	if (!pool || length < 0)
		return iop__einval();
	req.u.range.len = length;
	return iop__submit(pool, &req);
}

iop_job *iop_fallocate(iop_pool *pool, int fd, int mode, int64_t offset,
		       int64_t len, iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(IOP__OP_FALLOCATE, fd, done, arg);

	if (!pool || offset < 0 || len <= 0)
		return iop__einval();
	req.u.range.offset = offset;
	req.u.range.len = len;
	req.u.range.mode = mode;
	return iop__submit(pool, &req);
}
