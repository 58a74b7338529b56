/*
 * The operations on paths: openat, fstatat, readfile, renameat, unlinkat,
 * mkdirat and listdir.  Each submit copies its path into memory the job
 * owns, so the caller may free its string as soon as the submit returns;
 * the core frees req->u.path when it releases the job.  Run functions
 * execute on a worker and never free it.
 */
#include "iopool-int.h"
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifndef HAVE_RENAMEAT2
#include <sys/syscall.h>	/* SYS_renameat2, for sys_renameat2() */
#endif

/*
 * The first buffer of a readfile when st_size gives no hint (/proc,
 * pipes, an empty file that may not stay empty): most such files fit.
 */
#define READFILE_CHUNK ((size_t)16 << 10)

/* openat(2) with O_CLOEXEC, retried on EINTR: the descriptor or -errno. */
static int open_cloexec(int dirfd, const char *path, int flags, mode_t mode)
{
	int fd;

	while ((fd = openat(dirfd, path, flags | O_CLOEXEC, mode)) < 0 &&
	       errno == EINTR)
		;
	return (int)iop__sysret(fd);
}

/* read(2), retried on EINTR: the byte count or -errno. */
static ssize_t read_retry(int fd, void *buf, size_t len)
{
	ssize_t n;

	while ((n = read(fd, buf, len)) < 0 && errno == EINTR)
		;
	return iop__sysret(n);
}

/*
 * Make room for @need elements of @size in @p, which holds *@cap, at most
 * @max.  The capacity doubles, so n appends cost O(n) copies.  Returns the
 * block (@p itself if it was large enough), or NULL if @need is over @max
 * or realloc fails, and @p is then still valid.
 */
static void *reserve(void *p, size_t *cap, size_t need, size_t size,
		     size_t max)
{
	size_t ncap = *cap < 16 ? 16 : *cap;

	if (max > SIZE_MAX / size)
		max = SIZE_MAX / size;
	if (need <= *cap)
		return p;
	if (need > max)
		return NULL;
	while (ncap < need && ncap <= max / 2)
		ncap *= 2;
	if (ncap < need || ncap > max)
		ncap = max;
	p = realloc(p, ncap * size);
	if (p)
		*cap = ncap;
	return p;
}

/*
 * Submit @req, whose path the job is to own.  If the submit fails, the
 * copy is freed here, keeping the submit's errno.
 */
static iop_job *submit_owned(iop_pool *pool, struct iop__req *req)
{
	iop_job *job = iop__submit(pool, req);
	int err = errno;

	if (!job) {
		free(req->u.path);
		errno = err;
	}
	return job;
}

/* Submit @req with a copy of @path; EINVAL for @pool or @path NULL. */
static iop_job *submit_path(iop_pool *pool, struct iop__req *req,
			    const char *path)
{
	if (!pool || !path)
		return iop__einval();
	req->u.path = strdup(path);
	if (!req->u.path)
		return NULL;
	return submit_owned(pool, req);
}

ssize_t iop__run_openat(const struct iop__req *req)
{
	return open_cloexec(req->fd, req->u.path, req->u.at.flags,
			    req->u.at.mode);
}

iop_job *iop_openat(iop_pool *pool, int dirfd, const char *path, int flags,
		    mode_t mode, iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(IOP__OP_OPENAT, dirfd, done, arg);

	req.u.at.flags = flags;
	req.u.at.mode = mode;
	return submit_path(pool, &req, path);
}

ssize_t iop__run_statat(const struct iop__req *req)
{
	return iop__sysret(
		fstatat(req->fd, req->u.path, req->u.at.out, req->u.at.flags));
}

iop_job *iop_statat(iop_pool *pool, int dirfd, const char *path,
		    struct stat *st, int flags, iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(IOP__OP_STATAT, dirfd, done, arg);

	if (!st)
		return iop__einval();
	req.u.at.out = st;
	req.u.at.flags = flags;
	return submit_path(pool, &req, path);
}

/* A file being read whole. */
struct fbuf {
	char *data;
	size_t len;		/* bytes read */
	size_t cap;		/* bytes allocated, at least len + 1 */
};

/*
 * How large the first buffer is: st_size + 1 for a regular file, so that
 * one allocation does; only a hint, since the file may change and /proc
 * files say 0.
 */
static size_t size_hint(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    (uintmax_t)st.st_size < (uintmax_t)SSIZE_MAX)
		return (size_t)st.st_size + 1;
	return READFILE_CHUNK;
}

/* Read more of @fd into @b: the byte count, 0 at end of file, or -errno. */
static ssize_t fbuf_fill(struct fbuf *b, int fd)
{
	ssize_t n;
	char c;
	void *p;

	if (b->len + 1 < b->cap)
		return read_retry(fd, b->data + b->len, b->cap - 1 - b->len);
	/*
	 * Full.  Read one byte on its own before growing: 0 is end of file,
	 * so a file as long as st_size said costs no second allocation.
	 */
	n = read_retry(fd, &c, 1);
	if (n <= 0)
		return n;
	if (b->len == SSIZE_MAX)
		return -EFBIG;
	p = reserve(b->data, &b->cap, b->len + 2, 1, (size_t)SSIZE_MAX + 1);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->data[b->len] = c;
	return 1;
}

/* Read @fd to end of file into *@out: the byte count, or -errno. */
static ssize_t read_all(int fd, char **out)
{
	struct fbuf b = { .cap = size_hint(fd) };
	ssize_t n;
	char *p;

	b.data = malloc(b.cap);
	if (!b.data)
		return -ENOMEM;
	while ((n = fbuf_fill(&b, fd)) > 0)
		b.len += (size_t)n;
	if (n < 0) {
		free(b.data);
		return n;
	}
	b.data[b.len] = '\0';
	/* The caller may keep it long: give back what the guess overshot. */
	p = b.len + 1 < b.cap ? realloc(b.data, b.len + 1) : NULL;
	*out = p ? p : b.data;
	return (ssize_t)b.len;
}

ssize_t iop__run_readfile(const struct iop__req *req)
{
	void **out = req->u.at.out;
	char *data = NULL;
	ssize_t n;
	int fd;

	fd = open_cloexec(req->fd, req->u.path, O_RDONLY, 0);
	n = fd;
	if (fd >= 0) {
		n = read_all(fd, &data);
		close(fd);
	}
	*out = n < 0 ? NULL : data;
	return n;
}

/*
 * *@data is cleared here, before a worker can see the job, so that it is
 * NULL after any failure, -ECANCELED included.
 */
iop_job *iop_readfile(iop_pool *pool, int dirfd, const char *path,
		      void **data, iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(IOP__OP_READFILE, dirfd, done, arg);

	if (!pool || !path || !data)
		return iop__einval();
	req.u.at.out = data;
	*data = NULL;
	return submit_path(pool, &req, path);
}

/*
 * renameat2(2) through the C library where it has it, else straight to
 * the kernel (musl 1.2.3 has no wrapper), else ENOSYS as from a kernel
 * without it.
 */
static int sys_renameat2(int olddirfd, const char *oldpath, int newdirfd,
			 const char *newpath, unsigned flags)
{
#if defined(HAVE_RENAMEAT2)
	return renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
#elif defined(SYS_renameat2)
	return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd,
			    newpath, flags);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * renameat(2) for flags 0, as documented; renameat2(2) only when flags
 * ask for it, so that plain renames work on kernels and file systems
 * without it.
 */
ssize_t iop__run_renameat(const struct iop__req *req)
{
	const char *newpath = req->u.rename.newpath;
	const int newdirfd = req->u.rename.newdirfd;
	int r;

	if (req->u.rename.flags == 0)
		r = renameat(req->fd, req->u.path, newdirfd, newpath);
	else
		r = sys_renameat2(req->fd, req->u.path, newdirfd, newpath,
				  req->u.rename.flags);
	return iop__sysret(r);
}

/* Both names go in one block: req.u.path, which the core frees, holds it. */
iop_job *iop_renameat(iop_pool *pool, int olddirfd, const char *oldpath,
		      int newdirfd, const char *newpath, unsigned flags,
		      iop_done_fn *done, void *arg)
{
	struct iop__req req =
		iop__req_of(IOP__OP_RENAMEAT, olddirfd, done, arg);
	size_t oldsize, newsize;

	if (!pool || !oldpath || !newpath)
		return iop__einval();
	req.u.rename.newdirfd = newdirfd;
	req.u.rename.flags = flags;
	oldsize = strlen(oldpath) + 1;
	newsize = strlen(newpath) + 1;
	req.u.path = malloc(oldsize + newsize);
	if (!req.u.path)
		return NULL;
	memcpy(req.u.path, oldpath, oldsize);
	memcpy(req.u.path + oldsize, newpath, newsize);
	req.u.rename.newpath = req.u.path + oldsize;
	return submit_owned(pool, &req);
}

ssize_t iop__run_unlinkat(const struct iop__req *req)
{
	return iop__sysret(unlinkat(req->fd, req->u.path, req->u.at.flags));
}

iop_job *iop_unlinkat(iop_pool *pool, int dirfd, const char *path,
		      int flags, iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(IOP__OP_UNLINKAT, dirfd, done, arg);

	req.u.at.flags = flags;
	return submit_path(pool, &req, path);
}

ssize_t iop__run_mkdirat(const struct iop__req *req)
{
	return iop__sysret(mkdirat(req->fd, req->u.path, req->u.at.mode));
}

iop_job *iop_mkdirat(iop_pool *pool, int dirfd, const char *path,
		     mode_t mode, iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(IOP__OP_MKDIRAT, dirfd, done, arg);

	req.u.at.mode = mode;
	return submit_path(pool, &req, path);
}

/*
 * A listing being gathered: the entries, and their names one after the
 * other in the same order, until dlist_pack() makes them one block.
 */
struct dlist {
	struct iop_dirent *ents;	/* .name unset until packed */
	size_t n, cap;
	char *names;			/* each with its NUL */
	size_t nlen, ncap;
};

static int dlist_add(struct dlist *l, const struct dirent *d)
{
	const size_t size = strlen(d->d_name) + 1;
	void *p;

	p = reserve(l->ents, &l->cap, l->n + 1, sizeof(*l->ents), SIZE_MAX);
	if (!p)
		return -ENOMEM;
	l->ents = p;
	p = reserve(l->names, &l->ncap, l->nlen + size, 1, SIZE_MAX);
	if (!p)
		return -ENOMEM;
	l->names = p;
	memcpy(l->names + l->nlen, d->d_name, size);
	l->nlen += size;
	l->ents[l->n++] = (struct iop_dirent){ .ino = d->d_ino,
					       .type = d->d_type };
	return 0;
}

/* Every entry of @dir but "." and "..": 0 or -errno. */
static int dlist_read(struct dlist *l, DIR *dir)
{
	const struct dirent *d;
	int err;

	for (;;) {
		errno = 0;
		d = readdir(dir);
		if (!d)
			return -errno;	/* 0 at the end */
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		err = dlist_add(l, d);
		if (err)
			return err;
	}
}

static int dirent_cmp(const void *a, const void *b)
{
	const struct iop_dirent *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/*
 * Move the names behind the array, in one block that one free()
 * releases, and point each entry at its name.  The extra byte gives an
 * empty directory a block of its own, so the caller always has one to
 * free.  Returns the block, or NULL (ENOMEM) with @l untouched.
 */
static struct iop_dirent *dlist_pack(struct dlist *l)
{
	const size_t head = l->n * sizeof(*l->ents);
	struct iop_dirent *block;
	char *name;

	block = realloc(l->ents, head + l->nlen + 1);
	if (!block)
		return NULL;
	l->ents = NULL;
	name = (char *)block + head;
	if (l->nlen > 0)	/* names is NULL for an empty directory */
		memcpy(name, l->names, l->nlen);
	for (size_t i = 0; i < l->n; i++) {
		block[i].name = name;
		name += strlen(name) + 1;
	}
	return block;
}

/* The entries of an open directory, packed and maybe sorted, into *@out. */
static ssize_t list_dir(DIR *dir, unsigned flags, struct iop_dirent **out)
{
	struct dlist l = { 0 };
	ssize_t r = dlist_read(&l, dir);

	if (r == 0) {
		*out = dlist_pack(&l);
		r = *out ? (ssize_t)l.n : -ENOMEM;
	}
	if (r > 1 && (flags & IOP_LISTDIR_SORT))
		qsort(*out, l.n, sizeof(**out), dirent_cmp);
	free(l.ents);
	free(l.names);
	return r;
}

ssize_t iop__run_listdir(const struct iop__req *req)
{
	struct iop_dirent **out = req->u.at.out;
	ssize_t r;
	DIR *dir;
	int fd;

	*out = NULL;
	fd = open_cloexec(req->fd, req->u.path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	dir = fdopendir(fd);
	if (!dir) {
		r = -errno;
		close(fd);
		return r;
	}
	r = list_dir(dir, (unsigned)req->u.at.flags, out);
	closedir(dir);
	return r;
}

/* *@entries is cleared before submitting, as readfile's *@data is. */
iop_job *iop_listdir(iop_pool *pool, int dirfd, const char *path,
		     unsigned flags, struct iop_dirent **entries,
		     iop_done_fn *done, void *arg)
{
	struct iop__req req = iop__req_of(IOP__OP_LISTDIR, dirfd, done, arg);

	if (!pool || !path || !entries || (flags & ~IOP_LISTDIR_SORT))
		return iop__einval();
	req.u.at.out = entries;
	req.u.at.flags = (int)flags;
	*entries = NULL;
	return submit_path(pool, &req, path);
}
