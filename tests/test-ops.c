/*
 * Suite "ops": every operation of the "More operations" section against
 * the plain system call on the same input (same result, same errno, same
 * bytes), the submit-time EINVAL cases, futures, path copies, and the
 * whole-transfer rule that chains follow.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "helpers.h"

/*
 * musl (1.2.3, Debian's musl-tools) has neither renameat2() nor its
 * flags: the comparisons below call the kernel directly, and the flags
 * have their values from <linux/fs.h>, which are kernel ABI.
 */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#ifndef HAVE_RENAMEAT2
#include <sys/syscall.h>

static int renameat2(int olddirfd, const char *oldpath, int newdirfd,
		     const char *newpath, unsigned flags)
{
	return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd,
			    newpath, flags);
}
#endif

#define SEED 0x5eed0fa1u

/* ------------------------------------------------------------------ */
/* Shared pieces.                                                      */

/*
 * The callback record of the one job a test is waiting for: fresh()
 * resets it and is passed as the job's @arg, finish() runs callbacks
 * until it has been called and returns the job's result.
 */
static struct done_rec rec;

static struct done_rec *fresh(void)
{
	done_rec_init(&rec);
	return &rec;
}

static ssize_t finish(iop_pool *pool, iop_job *job)
{
	ck_assert_msg(job != NULL, "submit failed: %s", strerror(errno));
	drain_until(pool, &rec.calls, 1);
	ck_assert_int_eq(load_int(&rec.off_thread), 0);
	return (ssize_t)load_long(&rec.result);
}

/* A system call's return value in job form: -errno on failure. */
static ssize_t sys(ssize_t r)
{
	return r < 0 ? -errno : r;
}

/* A directory of the test's own under ${TMPDIR:-/tmp}. */
struct tmp {
	char path[PATH_MAX];
	int fd;
};

static void tmp_make(struct tmp *t)
{
	const char *dir = getenv("TMPDIR");

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	snprintf(t->path, sizeof(t->path), "%s/iopool-ops-XXXXXX", dir);
	ck_assert_msg(mkdtemp(t->path) != NULL, "mkdtemp(%s): %s", t->path,
		      strerror(errno));
	t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(t->fd, 0);
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void tmp_remove(struct tmp *t)
{
	close(t->fd);
	ck_assert_int_eq(nftw(t->path, remove_one, 16, FTW_DEPTH | FTW_PHYS),
			 0);
}

/* @name under @t as an absolute path, in @buf. */
static const char *tmp_path(const struct tmp *t, const char *name,
			    char buf[PATH_MAX])
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", t->path, name);

	ck_assert_int_lt(n, PATH_MAX);
	return buf;
}

/* Create (or truncate) @name in @dirfd holding @len pattern bytes. */
static void put_file(int dirfd, const char *name, size_t len, uint32_t seed)
{
	int fd = openat(dirfd, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC,
			0644);
	unsigned char *buf = malloc(len + 1);

	ck_assert_int_ge(fd, 0);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern_byte(seed, i);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	free(buf);
	close(fd);
}

static int open_rw(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_CREAT | O_RDWR | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	return fd;
}

/* The whole content of @fd, by pread, and its length in *@len. */
static unsigned char *slurp(int fd, size_t *len)
{
	struct stat st;
	unsigned char *buf;

	ck_assert_int_eq(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	buf = malloc(*len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pread(fd, buf, *len, 0), (ssize_t)*len);
	return buf;
}

static void assert_same_content(int a, int b)
{
	size_t la, lb;
	unsigned char *da = slurp(a, &la), *db = slurp(b, &lb);

	ck_assert_uint_eq(la, lb);
	ck_assert_msg(memcmp(da, db, la) == 0, "contents differ");
	free(da);
	free(db);
}

static void assert_same_stat(const struct stat *a, const struct stat *b)
{
	ck_assert_uint_eq(a->st_dev, b->st_dev);
	ck_assert_uint_eq(a->st_ino, b->st_ino);
	ck_assert_uint_eq(a->st_mode, b->st_mode);
	ck_assert_uint_eq(a->st_nlink, b->st_nlink);
	ck_assert_uint_eq(a->st_uid, b->st_uid);
	ck_assert_uint_eq(a->st_gid, b->st_gid);
	ck_assert_uint_eq(a->st_rdev, b->st_rdev);
	ck_assert_int_eq(a->st_size, b->st_size);
	ck_assert_int_eq(a->st_blocks, b->st_blocks);
	ck_assert_int_eq(a->st_mtim.tv_sec, b->st_mtim.tv_sec);
	ck_assert_int_eq(a->st_mtim.tv_nsec, b->st_mtim.tv_nsec);
	ck_assert_int_eq(a->st_ctim.tv_sec, b->st_ctim.tv_sec);
	ck_assert_int_eq(a->st_ctim.tv_nsec, b->st_ctim.tv_nsec);
}

/* Expect a submit to have failed with EINVAL. */
#define ck_assert_einval(call)                                             \
	do {                                                               \
		iop_job *job_;                                             \
		errno = 0;                                                 \
		job_ = (call);                                             \
		ck_assert_msg(job_ == NULL, "%s returned a job", #call);   \
		ck_assert_msg(errno == EINVAL, "%s: errno %d, not EINVAL", \
			      #call, errno);                               \
	} while (0)

/* ------------------------------------------------------------------ */
/* write, readv, writev.                                               */

/*
 * The same writes, at offsets inside, at and past the end (leaving a
 * hole), go to file A through the pool and to file B with pwrite.
 */
START_TEST(test_write_matches_pwrite)
{
	static const struct {
		int64_t off;
		size_t len;
	} w[] = { { 0, 1000 }, { 500, 3000 },   { 3500, 1 }, { 100000, 77 },
		  { 0, 0 },    { 200000, 65536 }, { 7, 13 } };
	iop_pool *pool = pool_new(2);
	struct tmp t;
	unsigned char buf[65536];
	int a, b;

	tmp_make(&t);
	a = open_rw(t.fd, "a");
	b = open_rw(t.fd, "b");
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		for (size_t k = 0; k < w[i].len; k++)
			buf[k] = pattern_byte(SEED + (uint32_t)i, k);
		ck_assert_int_eq(finish(pool, iop_write(pool, a, buf, w[i].len,
							w[i].off, done_record,
							fresh())),
				 pwrite(b, buf, w[i].len, (off_t)w[i].off));
	}
	assert_same_content(a, b);
	/* Position untouched by the pwrite form. */
	ck_assert_int_eq(lseek(a, 0, SEEK_CUR), 0);
	close(a);
	close(b);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_write_current_matches_write)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	const char msg[] = "one record\n";
	int a, b, aa, ba;

	tmp_make(&t);
	a = open_rw(t.fd, "a");
	b = open_rw(t.fd, "b");
	/* At the position, which moves... */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(finish(pool, iop_write(pool, a, msg, 5,
							IOP_OFFSET_CURRENT,
							done_record, fresh())),
				 write(b, msg, 5));
	ck_assert_int_eq(lseek(a, 0, SEEK_CUR), 15);
	/* ...and with O_APPEND at the end, whatever the position. */
	aa = openat(t.fd, "a", O_WRONLY | O_APPEND | O_CLOEXEC);
	ba = openat(t.fd, "b", O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(aa, 0);
	ck_assert_int_ge(ba, 0);
	ck_assert_int_eq(finish(pool, iop_write(pool, aa, msg, sizeof(msg) - 1,
						IOP_OFFSET_CURRENT,
						done_record, fresh())),
			 write(ba, msg, sizeof(msg) - 1));
	assert_same_content(a, b);
	close(aa);
	close(ba);
	close(a);
	close(b);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_write_errors_match_write)
{
	iop_pool *pool = pool_new(0);
	int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int p[2];
	char c = 'x';

	ck_assert_int_ge(ro, 0);
	ck_assert_int_eq(pipe(p), 0);
	/* A descriptor open only for reading, and no descriptor at all. */
	ck_assert_int_eq(finish(pool, iop_write(pool, ro, &c, 1, 0,
						done_record, fresh())),
			 sys(pwrite(ro, &c, 1, 0)));
	ck_assert_int_eq(load_long(&rec.result), -EBADF);
	ck_assert_int_eq(finish(pool, iop_write(pool, -1, &c, 1,
						IOP_OFFSET_CURRENT,
						done_record, fresh())),
			 sys(write(-1, &c, 1)));
	/* A pipe has no offsets, but a position will do. */
	ck_assert_int_eq(finish(pool, iop_write(pool, p[1], &c, 1, 0,
						done_record, fresh())),
			 sys(pwrite(p[1], &c, 1, 0)));
	ck_assert_int_eq(load_long(&rec.result), -ESPIPE);
	ck_assert_int_eq(finish(pool, iop_write(pool, p[1], &c, 1,
						IOP_OFFSET_CURRENT,
						done_record, fresh())),
			 1);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	close(p[1]);
	close(ro);
	iop_pool_destroy(pool);
}
END_TEST

/* Split @buf into @n pieces of uneven sizes (some empty). */
static void split_iov(struct iovec *iov, int n, unsigned char *buf,
		      size_t len)
{
	size_t at = 0;

	for (int i = 0; i < n; i++) {
		size_t piece = i == n - 1 ? len - at : (len / n) * (i % 3) / 2;

		if (at + piece > len)
			piece = len - at;
		iov[i].iov_base = buf + at;
		iov[i].iov_len = piece;
		at += piece;
	}
}

START_TEST(test_readv_matches_preadv)
{
	enum { SIZE = 100000, LEN = 9000, N = 7 };
	static const int64_t offs[] = { 0, 1234, SIZE - 5000, SIZE - 1, SIZE,
					SIZE + 10 };
	iop_pool *pool = pool_new(2);
	int fd = make_pattern_file(SIZE, SEED);
	unsigned char *got = malloc(LEN), *want = malloc(LEN);
	struct iovec giov[N], wiov[N];

	ck_assert_ptr_nonnull(got);
	ck_assert_ptr_nonnull(want);
	split_iov(giov, N, got, LEN);
	split_iov(wiov, N, want, LEN);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		ssize_t r;

		memset(got, 0xa5, LEN);
		memset(want, 0xa5, LEN);
		r = finish(pool, iop_readv(pool, fd, giov, N, offs[i],
					   done_record, fresh()));
		ck_assert_int_eq(r, preadv(fd, wiov, N, (off_t)offs[i]));
		ck_assert_int_eq(memcmp(got, want, LEN), 0);
	}
	/* At the position: readv, which moves it. */
	ck_assert_int_eq(lseek(fd, 10, SEEK_SET), 10);
	ck_assert_int_eq(finish(pool, iop_readv(pool, fd, giov, N,
						IOP_OFFSET_CURRENT,
						done_record, fresh())),
			 LEN);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 10 + LEN);
	ck_assert_int_eq(preadv(fd, wiov, N, 10), LEN);
	ck_assert_int_eq(memcmp(got, want, LEN), 0);
	free(got);
	free(want);
	close(fd);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_writev_matches_pwritev)
{
	enum { LEN = 20000, N = 9 };
	iop_pool *pool = pool_new(2);
	struct tmp t;
	unsigned char *buf = malloc(LEN);
	struct iovec iov[N];
	int a, b;

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < LEN; i++)
		buf[i] = pattern_byte(SEED, i);
	split_iov(iov, N, buf, LEN);
	tmp_make(&t);
	a = open_rw(t.fd, "a");
	b = open_rw(t.fd, "b");
	ck_assert_int_eq(finish(pool, iop_writev(pool, a, iov, N, 5000,
						 done_record, fresh())),
			 pwritev(b, iov, N, 5000));
	ck_assert_int_eq(load_long(&rec.result), LEN);
	ck_assert_int_eq(finish(pool, iop_writev(pool, a, iov, 3,
						 IOP_OFFSET_CURRENT,
						 done_record, fresh())),
			 writev(b, iov, 3));
	ck_assert_int_eq(lseek(a, 0, SEEK_CUR), lseek(b, 0, SEEK_CUR));
	assert_same_content(a, b);
	close(a);
	close(b);
	free(buf);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/* No iovecs at all is a valid, empty transfer, as for readv/writev. */
START_TEST(test_readv_writev_zero_count_is_zero)
{
	iop_pool *pool = pool_new(0);
	int fd = make_pattern_file(10, SEED);

	ck_assert_int_eq(finish(pool, iop_readv(pool, fd, NULL, 0, 0,
						done_record, fresh())),
			 preadv(fd, NULL, 0, 0));
	ck_assert_int_eq(load_long(&rec.result), 0);
	ck_assert_int_eq(finish(pool, iop_writev(pool, fd, NULL, 0,
						 IOP_OFFSET_CURRENT,
						 done_record, fresh())),
			 writev(fd, NULL, 0));
	ck_assert_int_eq(load_long(&rec.result), 0);
	close(fd);
	iop_pool_destroy(pool);
}
END_TEST

/* ------------------------------------------------------------------ */
/* close, fsync, fdatasync, fstat, ftruncate, fallocate.               */

START_TEST(test_close_closes_fd)
{
	iop_pool *pool = pool_new(0);
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(finish(pool, iop_close(pool, fd, done_record,
						fresh())),
			 0);
	/* The pool exists already, so nothing reuses the number meanwhile. */
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_close_bad_fd_is_ebadf)
{
	iop_pool *pool = pool_new(0);

	ck_assert_int_eq(finish(pool, iop_close(pool, -1, done_record,
						fresh())),
			 sys(close(-1)));
	ck_assert_int_eq(load_long(&rec.result), -EBADF);
	iop_pool_destroy(pool);
}
END_TEST

/* Both syncs: 0 on a file, and the kernel's answer on what cannot be. */
typedef iop_job *sync_submit_fn(iop_pool *, int, iop_done_fn *, void *);

static void check_sync(sync_submit_fn *submit, int (*call)(int))
{
	iop_pool *pool = pool_new(0);
	int fd = make_pattern_file(4096, SEED);
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(finish(pool, submit(pool, fd, done_record, fresh())),
			 sys(call(fd)));
	ck_assert_int_eq(load_long(&rec.result), 0);
	ck_assert_int_eq(finish(pool, submit(pool, p[0], done_record,
					     fresh())),
			 sys(call(p[0])));
	ck_assert_int_eq(load_long(&rec.result), -EINVAL);
	ck_assert_int_eq(finish(pool, submit(pool, -1, done_record, fresh())),
			 sys(call(-1)));
	ck_assert_int_eq(load_long(&rec.result), -EBADF);
	close(p[0]);
	close(p[1]);
	close(fd);
	iop_pool_destroy(pool);
}

START_TEST(test_fsync_matches_fsync)
{
	check_sync(iop_fsync, fsync);
}
END_TEST

START_TEST(test_fdatasync_matches_fdatasync)
{
	check_sync(iop_fdatasync, fdatasync);
}
END_TEST

START_TEST(test_fstat_matches_fstat)
{
	iop_pool *pool = pool_new(0);
	int fd = make_pattern_file(12345, SEED);
	int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat got, want;

	ck_assert_int_ge(dir, 0);
	ck_assert_int_eq(finish(pool, iop_fstat(pool, fd, &got, done_record,
						fresh())),
			 fstat(fd, &want));
	assert_same_stat(&got, &want);
	ck_assert_int_eq(got.st_size, 12345);
	ck_assert_int_eq(finish(pool, iop_fstat(pool, dir, &got, done_record,
						fresh())),
			 fstat(dir, &want));
	assert_same_stat(&got, &want);
	ck_assert_int_eq(finish(pool, iop_fstat(pool, -1, &got, done_record,
						fresh())),
			 sys(fstat(-1, &want)));
	ck_assert_int_eq(load_long(&rec.result), -EBADF);
	close(dir);
	close(fd);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_ftruncate_sizes)
{
	static const int64_t sizes[] = { 1 << 20, 100, 0, 4097, 4097, 1 };
	iop_pool *pool = pool_new(0);
	struct tmp t;
	int a, b, ro;

	tmp_make(&t);
	a = open_rw(t.fd, "a");
	b = open_rw(t.fd, "b");
	put_file(t.fd, "a", 5000, SEED);
	put_file(t.fd, "b", 5000, SEED);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct stat st;

		ck_assert_int_eq(finish(pool, iop_ftruncate(pool, a, sizes[i],
							    done_record,
							    fresh())),
				 ftruncate(b, (off_t)sizes[i]));
		ck_assert_int_eq(fstat(a, &st), 0);
		ck_assert_int_eq(st.st_size, sizes[i]);
		assert_same_content(a, b);
	}
	/* Not open for writing, and not a file. */
	ro = openat(t.fd, "a", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(ro, 0);
	ck_assert_int_eq(finish(pool, iop_ftruncate(pool, ro, 10, done_record,
						    fresh())),
			 sys(ftruncate(ro, 10)));
	ck_assert_int_lt(load_long(&rec.result), 0);
	ck_assert_int_eq(finish(pool, iop_ftruncate(pool, t.fd, 10,
						    done_record, fresh())),
			 sys(ftruncate(t.fd, 10)));
	ck_assert_int_lt(load_long(&rec.result), 0);
	close(ro);
	close(a);
	close(b);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/*
 * Each mode on file A through the pool and on file B directly: the same
 * result, size and bytes.  A file system that cannot is no failure.
 */
START_TEST(test_fallocate_matches_fallocate)
{
	static const struct {
		int mode;
		int64_t off, len;
	} f[] = {
		{ 0, 0, 1 << 20 },
		{ FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20 },
		{ FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192 },
		{ FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 50 },
		{ FALLOC_FL_PUNCH_HOLE, 0, 4096 },	/* refused alone */
	};
	iop_pool *pool = pool_new(0);
	struct tmp t;
	int a, b;

	tmp_make(&t);
	put_file(t.fd, "a", 50000, SEED);
	put_file(t.fd, "b", 50000, SEED);
	a = open_rw(t.fd, "a");
	b = open_rw(t.fd, "b");
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		ssize_t want = sys(fallocate(b, f[i].mode, (off_t)f[i].off,
					     (off_t)f[i].len));
		ssize_t got = finish(pool, iop_fallocate(pool, a, f[i].mode,
							 f[i].off, f[i].len,
							 done_record,
							 fresh()));

		/* Equal even where the file system cannot (EOPNOTSUPP). */
		ck_assert_int_eq(got, want);
		assert_same_content(a, b);
		if (want == -EOPNOTSUPP && (f[i].mode & FALLOC_FL_KEEP_SIZE))
			fprintf(stderr, "test_fallocate_matches_fallocate: "
				"mode %#x not supported under %s, so only "
				"the error was compared\n", f[i].mode,
				t.path);
	}
	/* Without KEEP_SIZE a hole punch is refused. */
	ck_assert_int_lt(load_long(&rec.result), 0);
	ck_assert_int_eq(finish(pool, iop_fallocate(pool, -1, 0, 0, 1,
						    done_record, fresh())),
			 sys(fallocate(-1, 0, 0, 1)));
	ck_assert_int_eq(load_long(&rec.result), -EBADF);
	close(a);
	close(b);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* openat, statat.                                                     */

START_TEST(test_openat_missing_is_enoent)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	char path[PATH_MAX];

	tmp_make(&t);
	ck_assert_int_eq(finish(pool, iop_openat(pool, t.fd, "missing",
						 O_RDONLY, 0, done_record,
						 fresh())),
			 sys(openat(t.fd, "missing", O_RDONLY)));
	ck_assert_int_eq(load_long(&rec.result), -ENOENT);
	tmp_path(&t, "no/such/dir", path);
	ck_assert_int_eq(finish(pool, iop_openat(pool, AT_FDCWD, path,
						 O_RDONLY, 0, done_record,
						 fresh())),
			 -ENOENT);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_openat_creates_cloexec_with_mode)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	struct stat got, want;
	const int flags = O_CREAT | O_EXCL | O_WRONLY;
	int fd, ref;

	tmp_make(&t);
	fd = (int)finish(pool, iop_openat(pool, t.fd, "new", flags, 0640,
					  done_record, fresh()));
	ref = openat(t.fd, "ref", flags, 0640);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(ref, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
	ck_assert_int_eq(fstat(fd, &got), 0);
	ck_assert_int_eq(fstat(ref, &want), 0);
	ck_assert_uint_eq(got.st_mode, want.st_mode);
	/* The descriptor belongs to the caller and works. */
	ck_assert_int_eq(write(fd, "abc", 3), 3);
	close(fd);
	close(ref);
	/* O_EXCL on what now exists. */
	ck_assert_int_eq(finish(pool, iop_openat(pool, t.fd, "new", flags,
						 0640, done_record, fresh())),
			 sys(openat(t.fd, "ref", flags, 0640)));
	ck_assert_int_eq(load_long(&rec.result), -EEXIST);
	/* Relative to the current directory, and a directory read-only. */
	fd = (int)finish(pool, iop_openat(pool, AT_FDCWD, t.path,
					  O_RDONLY | O_DIRECTORY, 0,
					  done_record, fresh()));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_statat_matches_fstatat)
{
	static const struct {
		const char *name;
		int flags;
	} s[] = {
		{ "file", 0 },	{ "dir", 0 },
		{ "link", 0 },	{ "link", AT_SYMLINK_NOFOLLOW },
		{ "missing", 0 }, { "file/x", 0 },
		{ "", AT_EMPTY_PATH }, { "", 0 },
	};
	iop_pool *pool = pool_new(0);
	struct tmp t;

	tmp_make(&t);
	put_file(t.fd, "file", 3000, SEED);
	ck_assert_int_eq(mkdirat(t.fd, "dir", 0755), 0);
	ck_assert_int_eq(symlinkat("file", t.fd, "link"), 0);
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		struct stat got, want;
		ssize_t r;

		memset(&got, 0, sizeof(got));
		memset(&want, 0, sizeof(want));
		r = finish(pool, iop_statat(pool, t.fd, s[i].name, &got,
					    s[i].flags, done_record,
					    fresh()));
		ck_assert_int_eq(r, sys(fstatat(t.fd, s[i].name, &want,
						s[i].flags)));
		if (r == 0)
			assert_same_stat(&got, &want);
	}
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* readfile.                                                           */

/* Run a readfile and check the NUL after the data. */
static ssize_t readfile_one(iop_pool *pool, int dirfd, const char *path,
			    char **data)
{
	void *p = (void *)1;	/* must be overwritten */
	ssize_t r = finish(pool, iop_readfile(pool, dirfd, path, &p,
					      done_record, fresh()));

	*data = p;
	if (r >= 0) {
		ck_assert_ptr_nonnull(p);
		ck_assert_int_eq((*data)[r], '\0');
	} else {
		ck_assert_ptr_null(p);
	}
	return r;
}

/* Sizes around the first buffer's 16 KiB and the st_size hint. */
START_TEST(test_readfile_matches_file)
{
	static const size_t sizes[] = { 0,     1,	4095,  4096,  16383,
					16384, 16385, 65536, 100000,
					(1u << 20) + 12345 };
	iop_pool *pool = pool_new(2);
	struct tmp t;

	tmp_make(&t);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t want_len;
		unsigned char *want;
		char *got;
		int fd;

		put_file(t.fd, "f", sizes[i], SEED + (uint32_t)i);
		ck_assert_int_eq(readfile_one(pool, t.fd, "f", &got),
				 (ssize_t)sizes[i]);
		fd = openat(t.fd, "f", O_RDONLY | O_CLOEXEC);
		want = slurp(fd, &want_len);
		ck_assert_uint_eq(want_len, sizes[i]);
		ck_assert_int_eq(memcmp(got, want, want_len), 0);
		free(want);
		free(got);
		close(fd);
	}
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_readfile_empty_is_empty_string)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	char path[PATH_MAX];
	char *data;

	tmp_make(&t);
	put_file(t.fd, "empty", 0, SEED);
	ck_assert_int_eq(readfile_one(pool, AT_FDCWD,
				      tmp_path(&t, "empty", path), &data),
			 0);
	ck_assert_str_eq(data, "");
	free(data);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/* st_size is 0, yet there is content: it is read until read() says 0. */
START_TEST(test_readfile_proc_status_has_content)
{
	iop_pool *pool = pool_new(0);
	struct stat st;
	char *data, pid[64];
	ssize_t r;

	ck_assert_int_eq(stat("/proc/self/status", &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	r = readfile_one(pool, AT_FDCWD, "/proc/self/status", &data);
	ck_assert_int_gt(r, 0);
	ck_assert_uint_eq(strlen(data), (size_t)r);
	ck_assert_int_eq(strncmp(data, "Name:", 5), 0);
	snprintf(pid, sizeof(pid), "\nPid:\t%d\n", (int)getpid());
	ck_assert_ptr_nonnull(strstr(data, pid));
	free(data);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_readfile_errors_match_read)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	char buf[16], *data;
	int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	tmp_make(&t);
	ck_assert_int_ge(dir, 0);
	/* A directory opens, but read() refuses it. */
	ck_assert_int_eq(readfile_one(pool, AT_FDCWD, ".", &data),
			 sys(read(dir, buf, sizeof(buf))));
	ck_assert_int_eq(load_long(&rec.result), -EISDIR);
	ck_assert_int_eq(readfile_one(pool, t.fd, "missing", &data),
			 sys(openat(t.fd, "missing", O_RDONLY)));
	ck_assert_int_eq(load_long(&rec.result), -ENOENT);
	put_file(t.fd, "file", 10, SEED);
	ck_assert_int_eq(readfile_one(pool, t.fd, "file/x", &data),
			 -ENOTDIR);
	close(dir);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/*
 * A FIFO has no size at all: the worker reads while the test writes far
 * more than the first buffer, in pieces, then closes.
 */
START_TEST(test_readfile_fifo_grows_buffer)
{
	enum { LEN = 300000 };
	iop_pool *pool = pool_new(0);
	struct tmp t;
	unsigned char *buf = malloc(LEN);
	void *data = NULL;
	iop_job *job;
	int w;

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < LEN; i++)
		buf[i] = pattern_byte(SEED, i);
	tmp_make(&t);
	ck_assert_int_eq(mkfifoat(t.fd, "fifo", 0600), 0);
	job = iop_readfile(pool, t.fd, "fifo", &data, NULL, NULL);
	ck_assert_ptr_nonnull(job);
	/* Blocks until the worker has opened the other end. */
	w = openat(t.fd, "fifo", O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(w, 0);
	for (size_t at = 0; at < LEN; at += 7000) {
		size_t n = LEN - at < 7000 ? LEN - at : 7000;

		ck_assert_int_eq(write(w, buf + at, n), (ssize_t)n);
	}
	close(w);
	ck_assert_int_eq(iop_await(job), LEN);
	ck_assert_ptr_nonnull(data);
	ck_assert_int_eq(memcmp(data, buf, LEN), 0);
	ck_assert_int_eq(((char *)data)[LEN], '\0');
	free(data);
	free(buf);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/* *data is NULL for a job that never ran, too. */
START_TEST(test_readfile_cancelled_leaves_null)
{
	iop_pool *pool = pool_new(1);
	struct gate g;
	struct held h;
	sem_t entered;
	void *data = (void *)1;
	struct iop_dirent *ents = (void *)1;
	iop_job *jr, *jl;

	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	held_init(&h, &g, &entered, 0);
	ck_assert_ptr_nonnull(iop_call(pool, held_work, &h, NULL, NULL));
	sem_wait_n(&entered, 1);
	jr = iop_readfile(pool, AT_FDCWD, "/proc/self/status", &data, NULL,
			  NULL);
	jl = iop_listdir(pool, AT_FDCWD, ".", 0, &ents, NULL, NULL);
	ck_assert_ptr_nonnull(jr);
	ck_assert_ptr_nonnull(jl);
	ck_assert_int_eq(iop_cancel(jr), 0);
	ck_assert_int_eq(iop_cancel(jl), 0);
	gate_open(&g);
	ck_assert_int_eq(iop_await(jr), -ECANCELED);
	ck_assert_int_eq(iop_await(jl), -ECANCELED);
	ck_assert_ptr_null(data);
	ck_assert_ptr_null(ents);
	iop_pool_destroy(pool);
	gate_destroy(&g);
	sem_destroy(&entered);
}
END_TEST

/* ------------------------------------------------------------------ */
/* renameat, unlinkat, mkdirat.                                        */

static bool exists_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

START_TEST(test_renameat_matches_renameat)
{
	iop_pool *pool = pool_new(0);
	struct tmp t, u;
	char *data;

	tmp_make(&t);
	tmp_make(&u);
	put_file(t.fd, "old", 100, SEED);
	ck_assert_int_eq(finish(pool, iop_renameat(pool, t.fd, "old", u.fd,
						   "new", 0, done_record,
						   fresh())),
			 0);
	ck_assert(!exists_at(t.fd, "old"));
	ck_assert_int_eq(readfile_one(pool, u.fd, "new", &data), 100);
	ck_assert_int_eq((unsigned char)data[99], pattern_byte(SEED, 99));
	free(data);
	/* Gone now: the same error as renameat's. */
	ck_assert_int_eq(finish(pool, iop_renameat(pool, t.fd, "old", u.fd,
						   "new", 0, done_record,
						   fresh())),
			 sys(renameat(t.fd, "old", u.fd, "new")));
	ck_assert_int_eq(load_long(&rec.result), -ENOENT);
	/* Flags 0 replaces an existing target. */
	put_file(t.fd, "other", 7, SEED);
	ck_assert_int_eq(finish(pool, iop_renameat(pool, t.fd, "other", u.fd,
						   "new", 0, done_record,
						   fresh())),
			 0);
	ck_assert_int_eq(readfile_one(pool, u.fd, "new", &data), 7);
	free(data);
	iop_pool_destroy(pool);
	tmp_remove(&u);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_renameat_noreplace_is_eexist)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	char *data;

	tmp_make(&t);
	put_file(t.fd, "a", 10, SEED);
	put_file(t.fd, "b", 20, SEED);
	ck_assert_int_eq(finish(pool, iop_renameat(pool, t.fd, "a", t.fd, "b",
						   RENAME_NOREPLACE,
						   done_record, fresh())),
			 sys(renameat2(t.fd, "a", t.fd, "b",
				       RENAME_NOREPLACE)));
	ck_assert_int_eq(load_long(&rec.result), -EEXIST);
	ck_assert_int_eq(readfile_one(pool, t.fd, "b", &data), 20);
	free(data);
	ck_assert_int_eq(finish(pool, iop_renameat(pool, t.fd, "a", t.fd, "c",
						   RENAME_NOREPLACE,
						   done_record, fresh())),
			 0);
	ck_assert(exists_at(t.fd, "c"));
	ck_assert(!exists_at(t.fd, "a"));
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_renameat_exchange_swaps)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	ssize_t r;
	char *data;

	tmp_make(&t);
	put_file(t.fd, "a", 10, SEED);
	put_file(t.fd, "b", 20, SEED);
	r = finish(pool, iop_renameat(pool, t.fd, "a", t.fd, "b",
				      RENAME_EXCHANGE, done_record, fresh()));
	if (r == -EINVAL || r == -EOPNOTSUPP) {
		fprintf(stderr, "test_renameat_exchange_swaps: "
			"RENAME_EXCHANGE not supported under %s, skipped\n",
			t.path);
	} else {
		ck_assert_int_eq(r, 0);
		ck_assert_int_eq(readfile_one(pool, t.fd, "a", &data), 20);
		free(data);
		ck_assert_int_eq(readfile_one(pool, t.fd, "b", &data), 10);
		free(data);
	}
	/* Exchange needs both. */
	ck_assert_int_eq(finish(pool, iop_renameat(pool, t.fd, "a", t.fd,
						   "none", RENAME_EXCHANGE,
						   done_record, fresh())),
			 sys(renameat2(t.fd, "a", t.fd, "none",
				       RENAME_EXCHANGE)));
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_unlinkat_file_and_removedir)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;

	tmp_make(&t);
	put_file(t.fd, "file", 10, SEED);
	ck_assert_int_eq(mkdirat(t.fd, "dir", 0755), 0);
	ck_assert_int_eq(mkdirat(t.fd, "full", 0755), 0);
	put_file(t.fd, "full/x", 1, SEED);
	ck_assert_int_eq(finish(pool, iop_unlinkat(pool, t.fd, "file", 0,
						   done_record, fresh())),
			 0);
	ck_assert(!exists_at(t.fd, "file"));
	ck_assert_int_eq(finish(pool, iop_unlinkat(pool, t.fd, "file", 0,
						   done_record, fresh())),
			 sys(unlinkat(t.fd, "file", 0)));
	ck_assert_int_eq(load_long(&rec.result), -ENOENT);
	/* A directory wants AT_REMOVEDIR, and must be empty. */
	ck_assert_int_eq(finish(pool, iop_unlinkat(pool, t.fd, "dir", 0,
						   done_record, fresh())),
			 sys(unlinkat(t.fd, "dir", 0)));
	ck_assert_int_eq(load_long(&rec.result), -EISDIR);
	ck_assert_int_eq(finish(pool, iop_unlinkat(pool, t.fd, "full",
						   AT_REMOVEDIR, done_record,
						   fresh())),
			 sys(unlinkat(t.fd, "full", AT_REMOVEDIR)));
	ck_assert_int_eq(load_long(&rec.result), -ENOTEMPTY);
	ck_assert_int_eq(finish(pool, iop_unlinkat(pool, t.fd, "dir",
						   AT_REMOVEDIR, done_record,
						   fresh())),
			 0);
	ck_assert(!exists_at(t.fd, "dir"));
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_mkdirat_mode_and_eexist)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	struct stat got, want;

	tmp_make(&t);
	ck_assert_int_eq(finish(pool, iop_mkdirat(pool, t.fd, "d", 0751,
						  done_record, fresh())),
			 mkdirat(t.fd, "ref", 0751));
	ck_assert_int_eq(fstatat(t.fd, "d", &got, 0), 0);
	ck_assert_int_eq(fstatat(t.fd, "ref", &want, 0), 0);
	ck_assert(S_ISDIR(got.st_mode));
	ck_assert_uint_eq(got.st_mode, want.st_mode);
	ck_assert_int_eq(finish(pool, iop_mkdirat(pool, t.fd, "d", 0751,
						  done_record, fresh())),
			 sys(mkdirat(t.fd, "ref", 0751)));
	ck_assert_int_eq(load_long(&rec.result), -EEXIST);
	ck_assert_int_eq(finish(pool, iop_mkdirat(pool, t.fd, "no/d", 0751,
						  done_record, fresh())),
			 sys(mkdirat(t.fd, "no/d", 0751)));
	ck_assert_int_eq(load_long(&rec.result), -ENOENT);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* listdir.                                                            */

/* The reference: readdir's entries but "." and "..", in its order. */
struct ref_list {
	struct iop_dirent *ents;
	size_t n;
};

static void ref_list_read(struct ref_list *l, int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fdopendir(fd);
	struct dirent *d;
	size_t cap = 0;

	ck_assert_ptr_nonnull(dir);
	l->ents = NULL;
	l->n = 0;
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (l->n == cap) {
			cap = cap ? cap * 2 : 64;
			l->ents = realloc(l->ents, cap * sizeof(*l->ents));
			ck_assert_ptr_nonnull(l->ents);
		}
		l->ents[l->n].name = strdup(d->d_name);
		l->ents[l->n].ino = d->d_ino;
		l->ents[l->n].type = d->d_type;
		l->n++;
	}
	closedir(dir);
}

static void ref_list_free(struct ref_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free((char *)l->ents[i].name);
	free(l->ents);
}

static int dirent_strcmp(const void *a, const void *b)
{
	const struct iop_dirent *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static void assert_same_entries(const struct iop_dirent *got,
				const struct iop_dirent *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(got[i].name, want[i].name);
		ck_assert_uint_eq(got[i].ino, want[i].ino);
		ck_assert_uint_eq(got[i].type, want[i].type);
	}
}

/* A directory with many names, bytes above 0x7f, and every type. */
static void fill_dir(int dirfd)
{
	char name[32];

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "f%03d-%c", (i * 37) % 300,
			 'A' + i % 50);
		put_file(dirfd, name, 0, SEED);
	}
	put_file(dirfd, "\xc3\xa9t\xc3\xa9", 1, SEED);	/* UTF-8 */
	put_file(dirfd, "Zebra", 1, SEED);
	put_file(dirfd, "_under", 1, SEED);
	put_file(dirfd, ".hidden", 1, SEED);
	ck_assert_int_eq(mkdirat(dirfd, "subdir", 0755), 0);
	ck_assert_int_eq(symlinkat("Zebra", dirfd, "link"), 0);
	ck_assert_int_eq(mkfifoat(dirfd, "fifo", 0600), 0);
}

START_TEST(test_listdir_sorted_matches_readdir)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	struct ref_list want;
	struct iop_dirent *got = (void *)1;

	tmp_make(&t);
	fill_dir(t.fd);
	ref_list_read(&want, t.fd);
	qsort(want.ents, want.n, sizeof(*want.ents), dirent_strcmp);
	ck_assert_int_eq(finish(pool, iop_listdir(pool, AT_FDCWD, t.path,
						  IOP_LISTDIR_SORT, &got,
						  done_record, fresh())),
			 (ssize_t)want.n);
	ck_assert_uint_eq(want.n, 307);
	ck_assert_ptr_nonnull(got);
	assert_same_entries(got, want.ents, want.n);
	/* The types are the file system's, where it says. */
	for (size_t i = 0; i < want.n; i++) {
		if (got[i].type == DT_UNKNOWN)
			continue;
		if (strcmp(got[i].name, "subdir") == 0)
			ck_assert_uint_eq(got[i].type, DT_DIR);
		if (strcmp(got[i].name, "link") == 0)
			ck_assert_uint_eq(got[i].type, DT_LNK);
		if (strcmp(got[i].name, "fifo") == 0)
			ck_assert_uint_eq(got[i].type, DT_FIFO);
	}
	free(got);
	ref_list_free(&want);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/* Unsorted: the file system's own order, which readdir also gives. */
START_TEST(test_listdir_unsorted_matches_readdir_order)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	struct ref_list want;
	struct iop_dirent *got = NULL;

	tmp_make(&t);
	fill_dir(t.fd);
	ref_list_read(&want, t.fd);
	ck_assert_int_eq(finish(pool, iop_listdir(pool, t.fd, ".", 0, &got,
						  done_record, fresh())),
			 (ssize_t)want.n);
	assert_same_entries(got, want.ents, want.n);
	free(got);
	ref_list_free(&want);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/* An empty directory: 0 entries, and still a block to free. */
START_TEST(test_listdir_empty_gives_block)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	struct iop_dirent *got = NULL;

	tmp_make(&t);
	ck_assert_int_eq(finish(pool, iop_listdir(pool, t.fd, ".",
						  IOP_LISTDIR_SORT, &got,
						  done_record, fresh())),
			 0);
	ck_assert_ptr_nonnull(got);
	free(got);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

START_TEST(test_listdir_errors_match_open)
{
	iop_pool *pool = pool_new(0);
	struct tmp t;
	struct iop_dirent *got = (void *)1;
	const int flags = O_RDONLY | O_DIRECTORY;

	tmp_make(&t);
	put_file(t.fd, "file", 1, SEED);
	ck_assert_int_eq(finish(pool, iop_listdir(pool, t.fd, "missing", 0,
						  &got, done_record, fresh())),
			 sys(openat(t.fd, "missing", flags)));
	ck_assert_int_eq(load_long(&rec.result), -ENOENT);
	ck_assert_ptr_null(got);
	got = (void *)1;
	ck_assert_int_eq(finish(pool, iop_listdir(pool, t.fd, "file", 0, &got,
						  done_record, fresh())),
			 sys(openat(t.fd, "file", flags)));
	ck_assert_int_eq(load_long(&rec.result), -ENOTDIR);
	ck_assert_ptr_null(got);
	iop_pool_destroy(pool);
	tmp_remove(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Futures.                                                            */

START_TEST(test_write_future_await)
{
	iop_pool *pool = pool_new(0);
	int fd = make_pattern_file(0, SEED);
	iop_job *job = iop_write(pool, fd, "hello", 5, 3, NULL, NULL);
	char buf[8] = "";

	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_await(job), 5);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 8);
	ck_assert_int_eq(memcmp(buf, "\0\0\0hello", 8), 0);
	/* A future makes no callback due. */
	ck_assert_int_eq(iop_poll(pool), 0);
	close(fd);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_statat_future_await)
{
	iop_pool *pool = pool_new(0);
	struct stat got, want;
	iop_job *ok, *bad;

	ok = iop_statat(pool, AT_FDCWD, "/", &got, 0, NULL, NULL);
	bad = iop_statat(pool, AT_FDCWD, "/no/such/path", &want, 0, NULL,
			 NULL);
	ck_assert_ptr_nonnull(ok);
	ck_assert_ptr_nonnull(bad);
	ck_assert_int_eq(iop_await(bad), -ENOENT);
	ck_assert_int_eq(iop_await(ok), 0);
	ck_assert_int_eq(stat("/", &want), 0);
	assert_same_stat(&got, &want);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_readfile_future_await)
{
	iop_pool *pool = pool_new(0);
	void *data = NULL;
	iop_job *job = iop_readfile(pool, AT_FDCWD, "/proc/self/status",
				    &data, NULL, NULL);

	ck_assert_ptr_nonnull(job);
	ck_assert_int_gt(iop_await(job), 0);
	ck_assert_ptr_nonnull(data);
	ck_assert_int_eq(strncmp(data, "Name:", 5), 0);
	free(data);
	iop_pool_destroy(pool);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Paths are copied at submit.                                         */

/* Overwrite and free a string at once, as a caller may. */
static void scribble_free(char *s)
{
	memset(s, 'x', strlen(s));
	free(s);
}

/*
 * The worker is held, so each op runs only after its path strings were
 * overwritten and freed: it must have used its own copy (and under
 * ASan, a use of the caller's would be a heap-use-after-free).
 */
START_TEST(test_path_freed_after_submit)
{
	iop_pool *pool = pool_new(1);
	struct done_rec dh, dopen, dstat, dren;
	struct tmp t;
	struct gate g;
	struct held h;
	sem_t entered;
	struct stat st, orig;
	char path[PATH_MAX], *s, *s2;

	tmp_make(&t);
	put_file(t.fd, "orig", 10, SEED);
	ck_assert_int_eq(fstatat(t.fd, "orig", &orig, 0), 0);
	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	held_init(&h, &g, &entered, 0);
	done_rec_init(&dh);
	done_rec_init(&dopen);
	done_rec_init(&dstat);
	done_rec_init(&dren);
	ck_assert_ptr_nonnull(iop_call(pool, held_work, &h, done_record,
				       &dh));
	sem_wait_n(&entered, 1);

	s = strdup(tmp_path(&t, "orig", path));
	ck_assert_ptr_nonnull(iop_openat(pool, AT_FDCWD, s, O_RDONLY, 0,
					 done_record, &dopen));
	scribble_free(s);
	s = strdup(path);
	ck_assert_ptr_nonnull(iop_statat(pool, AT_FDCWD, s, &st, 0,
					 done_record, &dstat));
	scribble_free(s);
	s = strdup("orig");
	s2 = strdup("renamed");
	ck_assert_ptr_nonnull(iop_renameat(pool, t.fd, s, t.fd, s2, 0,
					   done_record, &dren));
	scribble_free(s);
	scribble_free(s2);

	gate_open(&g);
	drain_until(pool, &dh.calls, 1);
	drain_until(pool, &dopen.calls, 1);
	drain_until(pool, &dstat.calls, 1);
	drain_until(pool, &dren.calls, 1);
	ck_assert_int_ge(load_long(&dopen.result), 0);
	ck_assert_int_eq(load_long(&dstat.result), 0);
	ck_assert_uint_eq(st.st_ino, orig.st_ino);
	ck_assert_int_eq(load_long(&dren.result), 0);
	ck_assert(exists_at(t.fd, "renamed"));
	ck_assert(!exists_at(t.fd, "orig"));
	{
		struct stat fst;
		int fd = (int)load_long(&dopen.result);

		ck_assert_int_eq(fstat(fd, &fst), 0);
		ck_assert_uint_eq(fst.st_ino, orig.st_ino);
		close(fd);
	}
	iop_pool_destroy(pool);
	gate_destroy(&g);
	sem_destroy(&entered);
	tmp_remove(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Chains: a short transfer is no success.                             */

/*
 * @first linked to a call returning 7, in one batch; returns the call's
 * result and puts @first's in *@first_result.
 */
static ssize_t chain_after(iop_pool *pool, iop_job *first,
			   struct done_rec *d1, ssize_t *first_result)
{
	struct done_rec d2;
	iop_job *then;

	done_rec_init(&d2);
	ck_assert_ptr_nonnull(first);
	then = iop_call(pool, work_return_ctx, (void *)(intptr_t)7,
			done_record, &d2);
	ck_assert_ptr_nonnull(then);
	ck_assert_int_eq(iop_link(first, then), 0);
	ck_assert_int_eq(iop_batch_end(pool), 2);
	drain_until(pool, &d1->calls, 1);
	drain_until(pool, &d2.calls, 1);
	*first_result = (ssize_t)load_long(&d1->result);
	return (ssize_t)load_long(&d2.result);
}

START_TEST(test_readv_short_breaks_chain)
{
	iop_pool *pool = pool_new(2);
	int fd = make_pattern_file(1000, SEED);
	char a[50], b[50];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	struct done_rec d;
	ssize_t r;

	/* The whole 100 bytes: the chain goes on. */
	done_rec_init(&d);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_int_eq(chain_after(pool, iop_readv(pool, fd, iov, 2, 900,
						     done_record, &d),
				     &d, &r),
			 7);
	ck_assert_int_eq(r, 100);
	/* 60 of 100 bytes before end of file: it stops. */
	done_rec_init(&d);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_int_eq(chain_after(pool, iop_readv(pool, fd, iov, 2, 940,
						     done_record, &d),
				     &d, &r),
			 -ECANCELED);
	ck_assert_int_eq(r, 60);
	close(fd);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_read_short_breaks_chain)
{
	iop_pool *pool = pool_new(2);
	int fd = make_pattern_file(1000, SEED);
	char buf[100];
	struct done_rec d;
	ssize_t r;

	done_rec_init(&d);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_int_eq(chain_after(pool, iop_read(pool, fd, buf, 100, 950,
						    done_record, &d),
				     &d, &r),
			 -ECANCELED);
	ck_assert_int_eq(r, 50);
	/* Other ops only need a result >= 0. */
	done_rec_init(&d);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	ck_assert_int_eq(chain_after(pool, iop_fsync(pool, fd, done_record,
						     &d),
				     &d, &r),
			 7);
	ck_assert_int_eq(r, 0);
	close(fd);
	iop_pool_destroy(pool);
}
END_TEST

/* ------------------------------------------------------------------ */
/* EINVAL at submit.                                                   */

START_TEST(test_ops_einval_null_pool)
{
	struct stat st;
	struct iovec iov = { &st, 1 };
	void *data;
	struct iop_dirent *ents;

	ck_assert_einval(iop_write(NULL, 1, "x", 1, 0, NULL, NULL));
	ck_assert_einval(iop_readv(NULL, 0, &iov, 1, 0, NULL, NULL));
	ck_assert_einval(iop_writev(NULL, 1, &iov, 1, 0, NULL, NULL));
	ck_assert_einval(iop_openat(NULL, AT_FDCWD, "/", O_RDONLY, 0, NULL,
				    NULL));
	ck_assert_einval(iop_close(NULL, 0, NULL, NULL));
	ck_assert_einval(iop_fsync(NULL, 0, NULL, NULL));
	ck_assert_einval(iop_fdatasync(NULL, 0, NULL, NULL));
	ck_assert_einval(iop_fstat(NULL, 0, &st, NULL, NULL));
	ck_assert_einval(iop_statat(NULL, AT_FDCWD, "/", &st, 0, NULL, NULL));
	ck_assert_einval(iop_readfile(NULL, AT_FDCWD, "/", &data, NULL,
				      NULL));
	ck_assert_einval(iop_ftruncate(NULL, 0, 0, NULL, NULL));
	ck_assert_einval(iop_fallocate(NULL, 0, 0, 0, 1, NULL, NULL));
	ck_assert_einval(iop_renameat(NULL, AT_FDCWD, "a", AT_FDCWD, "b", 0,
				      NULL, NULL));
	ck_assert_einval(iop_unlinkat(NULL, AT_FDCWD, "a", 0, NULL, NULL));
	ck_assert_einval(iop_mkdirat(NULL, AT_FDCWD, "a", 0755, NULL, NULL));
	ck_assert_einval(iop_listdir(NULL, AT_FDCWD, "/", 0, &ents, NULL,
				     NULL));
}
END_TEST

START_TEST(test_write_einval)
{
	iop_pool *pool = pool_new(0);
	struct done_rec d;
	char buf[10] = "";

	done_rec_init(&d);
	ck_assert_einval(iop_write(pool, 1, buf, (size_t)SSIZE_MAX + 1, 0,
				   done_record, &d));
	ck_assert_einval(iop_write(pool, 1, NULL, 1, 0, done_record, &d));
	ck_assert_einval(iop_write(pool, 1, buf, 1, -2, done_record, &d));
	ck_assert_einval(iop_write(pool, 1, buf, 1, INT64_MIN, NULL, NULL));
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

START_TEST(test_readv_writev_einval)
{
	iop_pool *pool = pool_new(0);
	struct done_rec d;
	char buf[10];
	struct iovec iov = { buf, sizeof(buf) };

	done_rec_init(&d);
	ck_assert_einval(iop_readv(pool, 0, NULL, 1, 0, done_record, &d));
	ck_assert_einval(iop_readv(pool, 0, &iov, -1, 0, done_record, &d));
	ck_assert_einval(iop_readv(pool, 0, &iov, IOV_MAX + 1, 0,
				   done_record, &d));
	ck_assert_einval(iop_readv(pool, 0, &iov, 1, -2, done_record, &d));
	ck_assert_einval(iop_writev(pool, 1, NULL, 2, IOP_OFFSET_CURRENT,
				    done_record, &d));
	ck_assert_einval(iop_writev(pool, 1, &iov, INT_MIN, 0, done_record,
				    &d));
	ck_assert_einval(iop_writev(pool, 1, &iov, IOV_MAX + 1, 0, NULL,
				    NULL));
	ck_assert_einval(iop_writev(pool, 1, &iov, 1, INT64_MIN, NULL, NULL));
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

START_TEST(test_fd_ops_einval)
{
	iop_pool *pool = pool_new(0);
	struct done_rec d;

	done_rec_init(&d);
	ck_assert_einval(iop_fstat(pool, 0, NULL, done_record, &d));
	ck_assert_einval(iop_ftruncate(pool, 0, -1, done_record, &d));
	ck_assert_einval(iop_ftruncate(pool, 0, INT64_MIN, NULL, NULL));
	ck_assert_einval(iop_fallocate(pool, 0, 0, -1, 10, done_record, &d));
	ck_assert_einval(iop_fallocate(pool, 0, 0, 0, 0, done_record, &d));
	ck_assert_einval(iop_fallocate(pool, 0, 0, 0, -5, NULL, NULL));
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

START_TEST(test_path_ops_einval)
{
	iop_pool *pool = pool_new(0);
	struct done_rec d;
	struct stat st;
	void *data = (void *)1;
	struct iop_dirent *ents = (void *)1;

	done_rec_init(&d);
	ck_assert_einval(iop_openat(pool, AT_FDCWD, NULL, O_RDONLY, 0,
				    done_record, &d));
	ck_assert_einval(iop_statat(pool, AT_FDCWD, NULL, &st, 0,
				    done_record, &d));
	ck_assert_einval(iop_statat(pool, AT_FDCWD, "/", NULL, 0,
				    done_record, &d));
	ck_assert_einval(iop_readfile(pool, AT_FDCWD, NULL, &data,
				      done_record, &d));
	ck_assert_einval(iop_readfile(pool, AT_FDCWD, "/", NULL,
				      done_record, &d));
	ck_assert_einval(iop_renameat(pool, AT_FDCWD, NULL, AT_FDCWD, "b", 0,
				      done_record, &d));
	ck_assert_einval(iop_renameat(pool, AT_FDCWD, "a", AT_FDCWD, NULL, 0,
				      done_record, &d));
	ck_assert_einval(iop_unlinkat(pool, AT_FDCWD, NULL, 0, done_record,
				      &d));
	ck_assert_einval(iop_mkdirat(pool, AT_FDCWD, NULL, 0755, done_record,
				     &d));
	ck_assert_einval(iop_listdir(pool, AT_FDCWD, NULL, 0, &ents,
				     done_record, &d));
	ck_assert_einval(iop_listdir(pool, AT_FDCWD, "/", 0, NULL,
				     done_record, &d));
	ck_assert_einval(iop_listdir(pool, AT_FDCWD, "/", 2, &ents,
				     done_record, &d));
	ck_assert_einval(iop_listdir(pool, AT_FDCWD, "/",
				     IOP_LISTDIR_SORT | 0x80000000u, &ents,
				     NULL, NULL));
	/* A refused submit leaves the result pointers alone. */
	ck_assert_ptr_eq(data, (void *)1);
	ck_assert_ptr_eq(ents, (void *)1);
	ck_assert_int_eq(iop_poll(pool), 0);
	iop_pool_destroy(pool);
	ck_assert_int_eq(load_int(&d.calls), 0);
}
END_TEST

static Suite *ops_suite(void)
{
	Suite *s = suite_create("ops");
	TCase *tc;

	tc = tcase_new("rw");
	tcase_add_test(tc, test_write_matches_pwrite);
	tcase_add_test(tc, test_write_current_matches_write);
	tcase_add_test(tc, test_write_errors_match_write);
	tcase_add_test(tc, test_readv_matches_preadv);
	tcase_add_test(tc, test_writev_matches_pwritev);
	tcase_add_test(tc, test_readv_writev_zero_count_is_zero);
	suite_add_tcase(s, tc);

	tc = tcase_new("fd");
	tcase_add_test(tc, test_close_closes_fd);
	tcase_add_test(tc, test_close_bad_fd_is_ebadf);
	tcase_add_test(tc, test_fsync_matches_fsync);
	tcase_add_test(tc, test_fdatasync_matches_fdatasync);
	tcase_add_test(tc, test_fstat_matches_fstat);
	tcase_add_test(tc, test_ftruncate_sizes);
	tcase_add_test(tc, test_fallocate_matches_fallocate);
	suite_add_tcase(s, tc);

	tc = tcase_new("path");
	tcase_add_test(tc, test_openat_missing_is_enoent);
	tcase_add_test(tc, test_openat_creates_cloexec_with_mode);
	tcase_add_test(tc, test_statat_matches_fstatat);
	tcase_add_test(tc, test_renameat_matches_renameat);
	tcase_add_test(tc, test_renameat_noreplace_is_eexist);
	tcase_add_test(tc, test_renameat_exchange_swaps);
	tcase_add_test(tc, test_unlinkat_file_and_removedir);
	tcase_add_test(tc, test_mkdirat_mode_and_eexist);
	tcase_add_test(tc, test_path_freed_after_submit);
	suite_add_tcase(s, tc);

	tc = tcase_new("readfile");
	tcase_add_test(tc, test_readfile_matches_file);
	tcase_add_test(tc, test_readfile_empty_is_empty_string);
	tcase_add_test(tc, test_readfile_proc_status_has_content);
	tcase_add_test(tc, test_readfile_errors_match_read);
	tcase_add_test(tc, test_readfile_fifo_grows_buffer);
	tcase_add_test(tc, test_readfile_cancelled_leaves_null);
	suite_add_tcase(s, tc);

	tc = tcase_new("listdir");
	tcase_add_test(tc, test_listdir_sorted_matches_readdir);
	tcase_add_test(tc, test_listdir_unsorted_matches_readdir_order);
	tcase_add_test(tc, test_listdir_empty_gives_block);
	tcase_add_test(tc, test_listdir_errors_match_open);
	suite_add_tcase(s, tc);

	tc = tcase_new("future");
	tcase_add_test(tc, test_write_future_await);
	tcase_add_test(tc, test_statat_future_await);
	tcase_add_test(tc, test_readfile_future_await);
	suite_add_tcase(s, tc);

	tc = tcase_new("chain");
	tcase_add_test(tc, test_readv_short_breaks_chain);
	tcase_add_test(tc, test_read_short_breaks_chain);
	suite_add_tcase(s, tc);

	tc = tcase_new("einval");
	tcase_add_test(tc, test_ops_einval_null_pool);
	tcase_add_test(tc, test_write_einval);
	tcase_add_test(tc, test_readv_writev_einval);
	tcase_add_test(tc, test_fd_ops_einval);
	tcase_add_test(tc, test_path_ops_einval);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(ops_suite());
}
