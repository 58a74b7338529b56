/*
 * What ops.c (the ops on descriptors, and the dispatch) and fileops.c
 * (the ops on paths) share.  Private, like iopool-int.h.
 */
#ifndef IOPOOL_OPS_H
#define IOPOOL_OPS_H

#include <errno.h>
#include <stddef.h>

#include "iopool-int.h"

/* A submit's answer to invalid arguments: NULL with errno EINVAL. */
static inline iop_job *iop__einval(void)
{
	errno = EINVAL;
	return NULL;
}

/*
 * A request for @op on @fd (a descriptor, or a dirfd) with its callback;
 * every other field zero, for the submit function to fill in.
 */
static inline struct iop__req iop__req_of(unsigned char op, int fd,
					  iop_done_fn *done, void *arg)
{
	return (struct iop__req){ .op = op, .fd = fd, .done = done,
				  .arg = arg };
}

/* A system call's return value as a job result: -errno on failure. */
static inline ssize_t iop__sysret(ssize_t r)
{
	return r < 0 ? -errno : r;
}

/* fileops.c: the run functions of the ops on paths, for iop__job_run(). */
ssize_t iop__run_openat(const struct iop__req *req);
ssize_t iop__run_statat(const struct iop__req *req);
ssize_t iop__run_readfile(const struct iop__req *req);
ssize_t iop__run_renameat(const struct iop__req *req);
ssize_t iop__run_unlinkat(const struct iop__req *req);
ssize_t iop__run_mkdirat(const struct iop__req *req);
ssize_t iop__run_listdir(const struct iop__req *req);

#endif /* IOPOOL_OPS_H */
