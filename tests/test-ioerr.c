/*
 * Suite "ioerr": I/O that fails underneath the pool.
 * - full: a file on a tiny full file system: a tmpfs of 64 KiB mounted in
 *   a private mount namespace (root with CAP_SYS_ADMIN, as in CI
 *   containers).  Where mounting is not allowed, the same test runs with
 *   RLIMIT_FSIZE instead (-EFBIG for -ENOSPC) and says so: a loop-mounted
 *   image needs the same privilege as a tmpfs, so it is no fallback.
 *   Writes, writev, fallocate and a chained fdatasync report the error in
 *   their results; fsync reports what the file system says; the bytes
 *   that did fit read back intact, and the pool goes on serving other
 *   files.
 * - truncate: a file truncated while its reads are queued returns short
 *   counts and end of file, never stale or foreign bytes; and truncated
 *   and regrown over and over while large reads run, every read returns
 *   0 to the bytes asked for, each byte either the file's or a zero.
 * - closed: a descriptor closed while its jobs are queued.  The contract
 *   (iopool.h): a descriptor passed in must stay open until the callback
 *   runs.  Broken, the library still does not crash: the jobs end with
 *   -EBADF, each exactly once.  And why the rule exists: if the number is
 *   reused by another open before the job runs, the job acts on the new
 *   file.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define SEED 0xf00d

/* A future's result, bounded: a lost job fails the test, not hangs it. */
static ssize_t await_ok(iop_job *job)
{
	ssize_t res = 0;

	ck_assert_ptr_nonnull(job);
	ck_assert_int_eq(iop_await_timeout(job, TEST_WAIT_MS, &res), 0);
	return res;
}

/* ---- A full file system. ---- */

#define TINY_FS		(64 << 10)
#define FSIZE_LIMIT	(1 << 20)

struct full {
	char dir[PATH_MAX];
	bool mounted;		/* else RLIMIT_FSIZE */
	int err;		/* ENOSPC, or EFBIG */
	size_t room;		/* about how many bytes fit */
	struct rlimit old;
};

/* Mount a tiny tmpfs on a new directory, in a mount namespace of our
 * own (it goes away with this forked test process). */
static bool mount_tiny(struct full *f)
{
	if (unshare(CLONE_NEWNS) != 0)
		return false;
	/* Source and type are ignored here; not NULL, for valgrind. */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
		return false;
	return mount("iopool-test", f->dir, "tmpfs", MS_NOSUID | MS_NODEV,
		     "size=64k,mode=0700") == 0;
}

static void full_setup(struct full *f)
{
	const char *t = getenv("TMPDIR");
	struct rlimit rl;

	snprintf(f->dir, sizeof(f->dir), "%s/iopool-full-XXXXXX",
		 t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	f->mounted = mount_tiny(f);
	if (f->mounted) {
		f->err = ENOSPC;
		f->room = TINY_FS;
		return;
	}
	/* The process may write no file past 1 MiB: write(2) says EFBIG
	 * (SIGXFSZ is ignored here, and blocked on the workers). */
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &f->old), 0);
	rl = f->old;
	rl.rlim_cur = FSIZE_LIMIT;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	f->err = EFBIG;
	f->room = FSIZE_LIMIT;
}

static void full_teardown(struct full *f)
{
	char path[PATH_MAX + 8];

	snprintf(path, sizeof(path), "%s/data", f->dir);
	unlink(path);
	if (f->mounted)
		umount2(f->dir, MNT_DETACH);
	else
		setrlimit(RLIMIT_FSIZE, &f->old);
	rmdir(f->dir);
}

START_TEST(test_full_fs_reports_enospc)
{
	enum { W = 16384 };
	struct full f;
	static unsigned char wbuf[W], rbuf[W];
	struct iovec iov[2] = { { wbuf, W / 2 }, { wbuf + W / 2, W / 2 } };
	iop_job *w, *s;
	iop_pool *pool;
	ssize_t r, written = 0;
	int fd, other, full_writes = 0, shorts = 0;
	char path[PATH_MAX + 8];

	/* Before any thread exists: the mount namespace is the process's. */
	full_setup(&f);
	pool = pool_new(2);
	other = make_pattern_file(W, SEED);
	snprintf(path, sizeof(path), "%s/data", f.dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < W; i++)
		wbuf[i] = pattern_byte(SEED + 1, i);

	/* Fill it: each write writes all, or some, or fails; never more
	 * than fits. */
	for (int i = 0; i < 2 * (int)(f.room / W) + 4; i++) {
		r = await_ok(iop_write(pool, fd, wbuf, W, written, NULL,
				       NULL));
		if (r == W) {
			written += r;
			continue;
		}
		if (r > 0) {
			written += r;
			shorts++;
			continue;
		}
		ck_assert_msg(r == -f.err, "write: %zd, expected %d", r,
			      -f.err);
		full_writes++;
	}
	ck_assert_int_gt(full_writes, 0);
	ck_assert_int_le(written, (ssize_t)f.room);

	/* The rest of the ways to write fail the same way. */
	ck_assert_int_eq(await_ok(iop_writev(pool, fd, iov, 2, written, NULL,
					     NULL)), -f.err);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), written);
	ck_assert_int_eq(await_ok(iop_write(pool, fd, wbuf, W,
					    IOP_OFFSET_CURRENT, NULL, NULL)),
			 -f.err);
	if (f.mounted) {
		r = await_ok(iop_fallocate(pool, fd, 0, written, 4 * W, NULL,
					   NULL));
		ck_assert_msg(r == -ENOSPC, "fallocate: %zd", r);
	}
	r = await_ok(iop_fsync(pool, fd, NULL, NULL));
	ck_assert_msg(r == 0 || r == -f.err || r == -EIO, "fsync: %zd", r);
	r = await_ok(iop_fdatasync(pool, fd, NULL, NULL));
	ck_assert_msg(r == 0 || r == -f.err || r == -EIO, "fdatasync: %zd",
		      r);

	/* A durable append cut short: the fdatasync behind it never runs. */
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	w = iop_write(pool, fd, wbuf, W, written, NULL, NULL);
	s = iop_fdatasync(pool, fd, NULL, NULL);
	ck_assert_int_eq(iop_link(w, s), 0);
	ck_assert_int_eq(iop_batch_end(pool), 2);
	ck_assert_int_eq(await_ok(w), -f.err);
	ck_assert_int_eq(await_ok(s), -ECANCELED);

	/* What fit reads back intact, and other files still work. */
	for (ssize_t off = 0; off < written; off += W) {
		size_t want = (size_t)(written - off < W ? written - off : W);

		r = await_ok(iop_read(pool, fd, rbuf, W, off, NULL, NULL));
		ck_assert_int_eq(r, (ssize_t)want);
		ck_assert_int_eq(memcmp(rbuf, wbuf, want), 0);
	}
	ck_assert_int_eq(await_ok(iop_read(pool, other, rbuf, W, 0, NULL,
					   NULL)), W);
	for (size_t i = 0; i < W; i++)
		ck_assert_int_eq(rbuf[i], pattern_byte(SEED, i));

	printf("ioerr: full file system (%s): %zd bytes fitted, %d short "
	       "writes, %d writes -%s, writev/chained write -%s, fsync and "
	       "fdatasync reported, chained fdatasync -ECANCELED, other files "
	       "unaffected\n", f.mounted ? "tmpfs size=64k" :
	       "no mount allowed here: RLIMIT_FSIZE 1 MiB instead",
	       written, shorts, full_writes,
	       f.err == ENOSPC ? "ENOSPC" : "EFBIG",
	       f.err == ENOSPC ? "ENOSPC" : "EFBIG");
	close(fd);
	close(other);
	iop_pool_destroy(pool);
	full_teardown(&f);
}
END_TEST

/* ---- Truncated under the reads. ---- */

#define TFILE (1u << 20)

/* Queued reads of a file truncated before they run. */
START_TEST(test_truncated_while_queued)
{
	enum { NEW = 100000 };
	iop_pool *pool = pool_new(1);
	int fd = make_pattern_file(TFILE, SEED);
	static unsigned char b[3][65536];
	static const int64_t off[3] = { 0, NEW - 10000, 500000 };
	static const ssize_t want[3] = { 65536, 10000, 0 };
	struct gate g;
	struct held h;
	sem_t entered;
	iop_job *hold, *j[3];

	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	held_init(&h, &g, &entered, 0);
	hold = iop_call(pool, held_work, &h, NULL, NULL);
	ck_assert_ptr_nonnull(hold);
	ck_assert(sem_wait_n_ms(&entered, 1, TEST_WAIT_MS));
	/* Held in a batch, so no read is tried at submit: all queued. */
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < 3; i++)
		j[i] = iop_read(pool, fd, b[i], sizeof(b[i]), off[i], NULL,
				NULL);
	ck_assert_int_eq(iop_batch_end(pool), 3);
	ck_assert_int_eq(ftruncate(fd, NEW), 0);
	gate_open(&g);
	ck_assert_int_eq(await_ok(hold), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(await_ok(j[i]), want[i]);
		for (ssize_t k = 0; k < want[i]; k++)
			ck_assert_int_eq(b[i][k],
					 pattern_byte(SEED, (uint64_t)(off[i] +
								     k)));
	}
	iop_pool_destroy(pool);
	gate_destroy(&g);
	close(fd);
}
END_TEST

struct shrinker {
	int fd;
	atomic_bool stop;
	atomic_long cuts;
	pthread_t thread;
};

/* Cut the file at random sizes and grow it back: the regrown part reads
 * as zeros until the pattern is written there again. */
static void *shrinker_main(void *arg)
{
	struct shrinker *s = arg;
	static unsigned char buf[65536];
	uint64_t rng = 3;

	while (!atomic_load(&s->stop)) {
		off_t cut = (off_t)(rng_next(&rng) % TFILE);

		if (ftruncate(s->fd, cut) != 0 ||
		    ftruncate(s->fd, TFILE) != 0)
			break;
		for (off_t o = cut; o < (off_t)TFILE; o += sizeof(buf)) {
			size_t n = TFILE - (size_t)o < sizeof(buf) ?
				   TFILE - (size_t)o : sizeof(buf);

			for (size_t i = 0; i < n; i++)
				buf[i] = pattern_byte(SEED, (uint64_t)o + i);
			if (pwrite(s->fd, buf, n, o) != (ssize_t)n)
				break;
		}
		atomic_fetch_add(&s->cuts, 1);
	}
	return NULL;
}

START_TEST(test_truncated_while_running)
{
	enum { N = 4, LEN = 256 << 10 };
	iop_pool *pool = pool_new(4);
	struct shrinker s = { .fd = make_pattern_file(TFILE, SEED) };
	unsigned char *b = malloc((size_t)N * LEN);
	long reads = 0, shorts = 0, zeros = 0, bad = 0;
	int64_t end = now_ns() + 500 * 1000000ll;
	uint64_t rng = 11;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(pthread_create(&s.thread, NULL, shrinker_main, &s),
			 0);
	while (now_ns() < end) {
		iop_job *j[N];
		int64_t off[N];

		for (int i = 0; i < N; i++) {
			off[i] = (int64_t)(rng_next(&rng) % (TFILE - LEN));
			j[i] = iop_read(pool, s.fd, b + (size_t)i * LEN, LEN,
					off[i], NULL, NULL);
		}
		for (int i = 0; i < N; i++) {
			ssize_t r = await_ok(j[i]);
			unsigned char *p = b + (size_t)i * LEN;

			ck_assert_msg(r >= 0 && r <= LEN, "read: %zd", r);
			reads++;
			shorts += r < LEN;
			for (ssize_t k = 0; k < r; k++) {
				unsigned char want = pattern_byte(
					SEED, (uint64_t)(off[i] + k));

				if (p[k] == want)
					continue;
				if (p[k] == 0)
					zeros++;
				else
					bad++;
			}
		}
	}
	atomic_store(&s.stop, true);
	pthread_join(s.thread, NULL);
	printf("ioerr: %ld reads of 256 KiB while the file was cut and "
	       "regrown %ld times: %ld short, %ld zero bytes (regrown), %ld "
	       "foreign bytes\n", reads, atomic_load(&s.cuts), shorts, zeros,
	       bad);
	ck_assert_int_eq(bad, 0);
	iop_pool_destroy(pool);
	close(s.fd);
	free(b);
}
END_TEST

/* ---- A descriptor closed while its jobs wait. ---- */

/* Hold the one worker of @pool; returns the holding future. */
static iop_job *hold_worker(iop_pool *pool, struct gate *g, struct held *h,
			    sem_t *entered)
{
	iop_job *hold;

	gate_init(g);
	ck_assert_int_eq(sem_init(entered, 0, 0), 0);
	held_init(h, g, entered, 0);
	hold = iop_call(pool, held_work, h, NULL, NULL);
	ck_assert_ptr_nonnull(hold);
	ck_assert(sem_wait_n_ms(entered, 1, TEST_WAIT_MS));
	return hold;
}

START_TEST(test_fd_closed_while_queued_gives_ebadf)
{
	iop_pool *pool = pool_new(1);
	int fd = make_pattern_file(8192, SEED);
	static unsigned char buf[4096];
	struct done_rec d[4];
	struct stat sb;
	struct gate g;
	struct held h;
	sem_t entered;
	iop_job *hold, *fut;

	hold = hold_worker(pool, &g, &h, &entered);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < 4; i++)
		done_rec_init(&d[i]);
	ck_assert_ptr_nonnull(iop_read(pool, fd, buf, sizeof(buf), 0,
				       done_record, &d[0]));
	ck_assert_ptr_nonnull(iop_write(pool, fd, buf, 16, 0, done_record,
					&d[1]));
	ck_assert_ptr_nonnull(iop_fsync(pool, fd, done_record, &d[2]));
	ck_assert_ptr_nonnull(iop_fstat(pool, fd, &sb, done_record, &d[3]));
	fut = iop_read(pool, fd, buf, sizeof(buf), 0, NULL, NULL);
	ck_assert_int_eq(iop_batch_end(pool), 5);
	ck_assert_int_eq(close(fd), 0);	/* against the contract */
	gate_open(&g);
	ck_assert_int_eq(await_ok(hold), 0);
	ck_assert_int_eq(await_ok(fut), -EBADF);
	for (int i = 0; i < 4; i++) {
		drain_until(pool, &d[i].calls, 1);
		ck_assert_int_eq(load_long(&d[i].result), -EBADF);
	}
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(load_int(&d[i].calls), 1);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

/* Why the rule: the job acts on whatever the number means when it runs. */
START_TEST(test_fd_reused_while_queued_reads_the_new_file)
{
	iop_pool *pool = pool_new(1);
	int fd = make_pattern_file(4096, SEED), fd2;
	static unsigned char buf[4096];
	struct gate g;
	struct held h;
	sem_t entered;
	iop_job *hold, *fut;

	hold = hold_worker(pool, &g, &h, &entered);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	fut = iop_read(pool, fd, buf, sizeof(buf), 0, NULL, NULL);
	ck_assert_int_eq(iop_batch_end(pool), 1);
	close(fd);
	fd2 = make_pattern_file(4096, SEED + 9);	/* the lowest number */
	ck_assert_int_eq(fd2, fd);
	gate_open(&g);
	ck_assert_int_eq(await_ok(hold), 0);
	ck_assert_int_eq(await_ok(fut), 4096);
	ck_assert_int_eq(buf[0], pattern_byte(SEED + 9, 0));
	ck_assert_int_eq(buf[4095], pattern_byte(SEED + 9, 4095));
	iop_pool_destroy(pool);
	gate_destroy(&g);
	close(fd2);
}
END_TEST

static Suite *ioerr_suite(void)
{
	Suite *s = suite_create("ioerr");
	TCase *tc;

	tc = tcase_new("full");
	tcase_add_test(tc, test_full_fs_reports_enospc);
	suite_add_tcase(s, tc);

	tc = tcase_new("truncate");
	tcase_add_test(tc, test_truncated_while_queued);
	tcase_add_test(tc, test_truncated_while_running);
	suite_add_tcase(s, tc);

	tc = tcase_new("closed");
	tcase_add_test(tc, test_fd_closed_while_queued_gives_ebadf);
	tcase_add_test(tc, test_fd_reused_while_queued_reads_the_new_file);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(ioerr_suite());
}
