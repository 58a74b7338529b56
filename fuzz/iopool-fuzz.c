/*
 * The API fuzzer: each input is a program of iopool calls on a small
 * pool, run against a model of what each call must answer.
 *
 * Built two ways from this one file:
 * - fuzz/run.sh (or `make fuzz`): with clang -fsanitize=fuzzer,address,
 *   undefined and the library's sources, as a libFuzzer target;
 * - tests/fuzz-replay (make check): with fuzz/replay.c and the library,
 *   replaying fuzz/corpus/, so every finding kept there stays a test.
 *
 * The input: byte 0 chooses the pool (threads, inline, a bounded queue,
 * or options that must be refused); then each call is one opcode byte and
 * its argument bytes (missing bytes read as 0).  Calls cover every submit
 * (good and bad arguments: NULL pointers, lengths above SSIZE_MAX,
 * offsets below -1, iovcnt out of range, bad descriptors and paths),
 * cancel, state, poll, wait, budgets, await with and without a limit,
 * batches, links, groups, lanes, priorities, deadlines, thread limits,
 * statistics, destroy and a new pool, and callbacks that submit, poll,
 * cancel or destroy from inside.
 *
 * The model checks: bad arguments give the errno the header documents;
 * every submit that succeeded ends exactly once (its callback runs once,
 * or its future is awaited once, or destroy releases it); each result is
 * the one the model computes (bytes of a known file, -EBADF, -ENOENT,
 * ...), -ECANCELED only with a reason (a cancel, a group cancel, a cut
 * chain, destroy), and surely -ECANCELED after a cancel that returned 0
 * or behind a link that failed; -ETIMEDOUT only with a deadline; each
 * sealed group calls back once with its members' count; no descriptor is
 * left open.  A violation aborts with a message: a crash to libFuzzer.
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
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "iopool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXJ		40	/* jobs per pool */
#define MAXG		4	/* groups per pool */
#define MAXL		2	/* lanes per pool */
#define BUF		8192
#define FSZ		5000	/* bytes of the file "f" */
#define LOST_MS		5000	/* not ended by then: lost */

static void fz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("iopool-fuzz: model violated: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define EXPECT(cond, ...) do { if (!(cond)) fz_fail(__VA_ARGS__); } while (0)

/* ---- The files every input uses, made once. ---- */

static int dirfd_g = -1;	/* a directory with f, d/{a,b} */
static int fd_f = -1;		/* "f", read-only, for pread */
static int fd_cur = -1;		/* "f" again, read at its position */
static int fd_w = -1;		/* "w", read-write, written */
static int fd_wo = -1;		/* "w", write-only: reads give -EBADF */
static unsigned char fbytes[FSZ];

static char tmp_dir[PATH_MAX];

/* At exit: remove the directory (a crash leaves it, for a look). */
static void cleanup(void)
{
	static const char *const names[] = { "d/a", "d/b", "f", "w" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlinkat(dirfd_g, names[i], 0);
	unlinkat(dirfd_g, "d", AT_REMOVEDIR);
	rmdir(tmp_dir);
}

static void setup_once(void)
{
	char dir[PATH_MAX];
	const char *t = getenv("TMPDIR");
	int fd;

	if (dirfd_g >= 0)
		return;
	snprintf(dir, sizeof(dir), "%s/iopool-fuzz-XXXXXX",
		 t && *t ? t : "/tmp");
	if (!mkdtemp(dir))
		fz_fail("mkdtemp: %s", strerror(errno));
	dirfd_g = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (int i = 0; i < FSZ; i++)
		fbytes[i] = (unsigned char)(i * 7 + i / 251);
	fd = openat(dirfd_g, "f", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, fbytes, FSZ) != FSZ)
		fz_fail("setup: %s", strerror(errno));
	close(fd);
	mkdirat(dirfd_g, "d", 0700);
	close(openat(dirfd_g, "d/a", O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	close(openat(dirfd_g, "d/b", O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	snprintf(tmp_dir, sizeof(tmp_dir), "%s", dir);
	atexit(cleanup);
	fd_f = openat(dirfd_g, "f", O_RDONLY | O_CLOEXEC);
	fd_cur = openat(dirfd_g, "f", O_RDONLY | O_CLOEXEC);
	fd_w = openat(dirfd_g, "w", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	fd_wo = openat(dirfd_g, "w", O_WRONLY | O_CLOEXEC);
	if (dirfd_g < 0 || fd_f < 0 || fd_cur < 0 || fd_w < 0 || fd_wo < 0)
		fz_fail("setup: %s", strerror(errno));
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- The input. ---- */

static const uint8_t *in;
static size_t in_len, in_pos;
static bool no_input;		/* in a callback: its submit reads none */

static unsigned u8(void)
{
	return in_pos < in_len && !no_input ? in[in_pos++] : 0;
}


/* ---- The model. ---- */

enum op {
	OP_READ, OP_WRITE, OP_READV, OP_WRITEV, OP_CALL, OP_OPENAT, OP_CLOSE,
	OP_FSYNC, OP_FDATASYNC, OP_FSTAT, OP_STATAT, OP_READFILE,
	OP_FTRUNCATE, OP_FALLOCATE, OP_RENAMEAT, OP_UNLINKAT, OP_MKDIRAT,
	OP_LISTDIR, OP_NOPS
};

/* How a result is judged: exactly @expect, 0 to @expect, 0 or
 * -EOPNOTSUPP, 0 or -EISDIR. */
enum want { W_EXACT, W_UPTO, W_FALLOC, W_DIR0 };

/* What a callback does from inside, before it returns. */
enum { CB_NONE, CB_SUBMIT, CB_POLL, CB_WAIT, CB_DESTROY, CB_CANCEL,
       CB_BUDGET, CB_N };

struct fjob {
	iop_job *h;
	unsigned char op;
	bool future, held, ended, released;
	enum want want;
	ssize_t expect;
	size_t len;			/* a read's or write's length */
	int64_t off;			/* a read of "f": from where */
	bool check_data;
	bool cancel_tried, cancel_zero, deadline, spin;
	int prev, next, group, cb;
	ssize_t result;
	int close_fd;			/* to close if the job never ran */
	unsigned char buf[BUF];
	struct iovec iov[3];
	struct stat st;
	void *data;
	struct iop_dirent *ents;
};

struct fgroup {
	iop_group *h;
	bool sealed, called, cancelled, has_future;
	unsigned members, ok, failed, cancelled_n;
};

static struct {
	iop_pool *pool;
	struct iop_options opts;
	struct fjob j[MAXJ];
	int nj;
	struct fgroup g[MAXG];
	int ng;
	iop_lane *lane[MAXL];
	int nl;
	int depth;			/* batch nesting */
	int held;			/* jobs the open batch holds */
	bool destroying;
} M;

static struct iovec big_iov[IOV_MAX + 1];

static bool bounded(void)
{
	return M.opts.max_queued != 0;
}

/* A job whose handle may be used now: submitted, and not yet ended
 * (its callback not run, its future not awaited) nor released. */
static bool valid(int i)
{
	return i >= 0 && i < M.nj && M.j[i].h && !M.j[i].ended &&
	       !M.j[i].released;
}

/* A valid job, looking round from @k; -1 if none. */
static int pick_job(unsigned k)
{
	for (int n = 0; n < M.nj; n++) {
		int i = (int)((k + (unsigned)n) % (unsigned)M.nj);

		if (valid(i))
			return i;
	}
	return -1;
}

static int pick_group(unsigned k)
{
	for (int n = 0; n < M.ng; n++) {
		int i = (int)((k + (unsigned)n) % (unsigned)M.ng);

		if (M.g[i].h && !M.g[i].called)
			return i;
	}
	return -1;
}

/* Whether job @x's result lets the job linked after it start. */
static bool whole(const struct fjob *x)
{
	if (x->result < 0)
		return false;
	switch (x->op) {
	case OP_READ: case OP_WRITE: case OP_READV: case OP_WRITEV:
		return (size_t)x->result == x->len;
	default:
		return true;
	}
}

static bool group_cancelled(const struct fjob *x)
{
	return x->group >= 0 && M.g[x->group].cancelled;
}

/*
 * Whether job @i may end -ECANCELED: a cancel of it, of its group, or of
 * a job ahead of it in its chain; a deadline ahead; a job ahead that did
 * not end whole, or whose end is not known yet; or destroy.
 */
static bool may_be_cut(int i)
{
	const struct fjob *x = &M.j[i];

	if (M.destroying || x->cancel_tried || group_cancelled(x))
		return true;
	for (int p = x->prev; p >= 0; p = M.j[p].prev) {
		const struct fjob *y = &M.j[p];

		if (y->cancel_tried || y->deadline || !y->ended || !whole(y) ||
		    group_cancelled(y))
			return true;
	}
	return false;
}

static void check_result(int i, ssize_t r)
{
	struct fjob *x = &M.j[i];
	int p = x->prev;

	if (x->cancel_zero)
		EXPECT(r == -ECANCELED, "job %d (op %d): a cancel returned 0, "
		       "yet it ended %zd", i, x->op, r);
	if (p >= 0 && M.j[p].ended && !whole(&M.j[p]) && !M.destroying)
		EXPECT(r == -ECANCELED, "job %d (op %d): the job ahead ended "
		       "%zd, this one %zd", i, x->op, M.j[p].result, r);
	if (r == -ECANCELED) {
		EXPECT(may_be_cut(i), "job %d (op %d) ended -ECANCELED with "
		       "nothing to cut it", i, x->op);
		return;
	}
	if (r == -ETIMEDOUT && x->deadline)
		return;
	if (x->spin && r == 1000 && (x->cancel_tried || group_cancelled(x)))
		return;			/* it saw the cancel */
	switch (x->want) {
	case W_EXACT:
		EXPECT(r == x->expect, "job %d (op %d): result %zd, expected "
		       "%zd", i, x->op, r, x->expect);
		break;
	case W_UPTO:
		EXPECT(r >= 0 && r <= x->expect, "job %d (op %d): result %zd, "
		       "expected 0 to %zd", i, x->op, r, x->expect);
		break;
	case W_FALLOC:
		EXPECT(r == 0 || r == -EOPNOTSUPP, "fallocate: %zd", r);
		break;
	case W_DIR0:
		EXPECT(r == 0 || r == -EISDIR, "0 bytes of a directory: %zd",
		       r);
		break;
	}
	if (x->check_data && r > 0)
		EXPECT(memcmp(x->buf, fbytes + x->off, (size_t)r) == 0,
		       "job %d: read the wrong bytes", i);
	if (x->op == OP_READFILE && r >= 0)
		EXPECT(x->data && memcmp(x->data, fbytes, FSZ) == 0 &&
		       ((char *)x->data)[FSZ] == '\0', "readfile: data");
	if (x->op == OP_READFILE && r < 0)
		EXPECT(x->data == NULL, "readfile failed, *data set");
	if (x->op == OP_LISTDIR && r == 2 && x->len)	/* sorted */
		EXPECT(strcmp(x->ents[0].name, "a") == 0 &&
		       strcmp(x->ents[1].name, "b") == 0, "listdir order");
	if (x->op == OP_LISTDIR && r < 0)
		EXPECT(x->ents == NULL, "listdir failed, *entries set");
	if (x->op == OP_FSTAT && r == 0)
		EXPECT(x->st.st_size == FSZ, "fstat: size");
}

/* The job ended with @r: check it, take back what it gave. */
static void end_job(int i, ssize_t r)
{
	struct fjob *x = &M.j[i];
	struct fgroup *g = x->group >= 0 ? &M.g[x->group] : NULL;

	EXPECT(!x->ended && !x->released, "job %d (op %d) ended twice "
	       "(%zd, then %zd)", i, x->op, x->result, r);
	x->ended = true;
	x->result = r;
	check_result(i, r);
	if (x->op == OP_OPENAT && r >= 0)
		close((int)r);
	if (x->close_fd >= 0 && (r == -ECANCELED || r == -ETIMEDOUT))
		close(x->close_fd);	/* the close never ran */
	free(x->data);
	x->data = NULL;
	free(x->ents);
	x->ents = NULL;
	if (g && !x->future) {
		if (r >= 0)
			g->ok++;
		else if (r == -ECANCELED)
			g->cancelled_n++;
		else
			g->failed++;
	}
}

static void cancel_job(int i);
static void submit(unsigned op, unsigned fl);

static void fz_done(iop_job *job, ssize_t r, void *arg)
{
	struct fjob *x = arg;
	int i = (int)(x - M.j), k, ret;

	EXPECT(i >= 0 && i < M.nj && x->h == job && !x->future,
	       "a callback for a job the model does not know");
	end_job(i, r);
	switch (x->cb) {
	case CB_SUBMIT:
		no_input = true;
		submit(OP_CALL, 0);
		no_input = false;
		break;
	case CB_POLL:
		EXPECT(iop_poll(M.pool) == -EDEADLK, "poll in a callback");
		break;
	case CB_WAIT:
		EXPECT(iop_wait(M.pool, 0) == -EDEADLK, "wait in a callback");
		break;
	case CB_BUDGET:
		EXPECT(iop_poll_budget(M.pool, 1, 0) == -EDEADLK,
		       "poll_budget in a callback");
		break;
	case CB_DESTROY:
		errno = 0;
		iop_pool_destroy(M.pool);
		EXPECT(errno == EDEADLK, "destroy in a callback: %d", errno);
		break;
	case CB_CANCEL:
		/* Its own job has ended: too late to cancel. */
		ret = iop_cancel(job);
		EXPECT(ret == -EALREADY, "cancel of itself in its callback: "
		       "%d", ret);
		k = pick_job((unsigned)i);
		if (k >= 0)
			cancel_job(k);
		break;
	}
}

static void fz_group(iop_group *group, const struct iop_group_result *r,
		     void *arg)
{
	struct fgroup *g = arg;

	EXPECT(g->h == group && !g->called && g->sealed,
	       "group callback: twice, or before sealing");
	g->called = true;
	EXPECT(r->succeeded + r->failed + r->cancelled == g->members,
	       "group of %u members: %u/%u/%u", g->members, r->succeeded,
	       r->failed, r->cancelled);
	if (!g->has_future)
		EXPECT(r->succeeded == g->ok && r->failed == g->failed &&
		       r->cancelled == g->cancelled_n,
		       "group: %u/%u/%u, members' callbacks saw %u/%u/%u",
		       r->succeeded, r->failed, r->cancelled, g->ok, g->failed,
		       g->cancelled_n);
}

/* A work function: @ctx's job says what it returns. */
static ssize_t fz_work(void *ctx)
{
	struct fjob *x = ctx;
	struct timespec t0, t;

	if (!x->spin)
		return x->expect;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (iop_cancel_requested())
			return 1000;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000000L +
		 (t.tv_nsec - t0.tv_nsec) < 500000L);
	return x->expect;
}

/* ---- Submits: arguments from the input, and the answer expected. ---- */

static const size_t lens[] = { 0, 1, 100, 4096, BUF, FSZ,
			       (size_t)SSIZE_MAX + 1 };
static const int64_t roffs[] = { 0, 1, 4999, FSZ, 10000, (int64_t)1 << 40,
				 IOP_OFFSET_CURRENT, -2, INT64_MIN };
static const int64_t woffs[] = { 0, 100, 4096, IOP_OFFSET_CURRENT, -2 };

#define PICK(t, b) ((t)[(b) % (sizeof(t) / sizeof((t)[0]))])

/* Set @x up for a read of @len at @off from the descriptor @which
 * chooses; returns the descriptor. */
static int plan_read(struct fjob *x, unsigned which, size_t len,
		     int64_t off)
{
	size_t n;

	x->want = W_EXACT;
	switch (which % 5) {
	case 0:				/* "f" at an offset */
		if (off == IOP_OFFSET_CURRENT) {
			x->want = W_UPTO;
			x->expect = (ssize_t)len;
			return fd_cur;
		}
		n = off < 0 || off >= FSZ ? 0 : (size_t)(FSZ - off);
		x->expect = (ssize_t)(n < len ? n : len);
		x->off = off;
		x->check_data = true;
		return fd_f;
	case 1:				/* "f" at its position */
		x->want = W_UPTO;
		x->expect = (ssize_t)len;
		return fd_cur;
	case 2:
		x->expect = -EBADF;	/* open for writing only */
		return fd_wo;
	case 3:
		/* read(2) of a directory says EISDIR, even for 0 bytes;
		 * preadv2(2) of 0 bytes says 0 (the pool may try that). */
		x->expect = -EISDIR;
		if (len == 0)
			x->want = W_DIR0;
		return dirfd_g;
	default:
		x->expect = -EBADF;
		return -1;
	}
}

static int plan_write(struct fjob *x, unsigned which, size_t len)
{
	x->want = W_EXACT;
	switch (which % 4) {
	case 0:
		x->expect = (ssize_t)len;
		return fd_w;
	case 1:
		x->expect = -EBADF;	/* read-only */
		return fd_f;
	case 2:
		x->expect = -EBADF;	/* a directory opened read-only */
		return dirfd_g;
	default:
		x->expect = -EBADF;
		return -1;
	}
}

/* The arguments of one submit, as the input gave them. */
struct args {
	unsigned op, fl, a, b, c;
	bool nullp;			/* pass NULL for a pointer */
	iop_done_fn *done;
	bool bad;			/* out: EINVAL is due */
};

/* A read is at the descriptor's position: any length up to the asked. */
static void at_position(struct fjob *x, int64_t off)
{
	if (off == IOP_OFFSET_CURRENT && x->expect >= 0) {
		x->want = W_UPTO;
		x->check_data = false;
	}
}

static iop_job *submit_rw(struct fjob *x, struct args *g)
{
	size_t len = PICK(lens, g->b);
	int64_t off = g->op == OP_READ ? PICK(roffs, g->c) : PICK(woffs, g->c);
	void *buf = g->nullp ? NULL : x->buf;
	int fd;

	g->bad = len > SSIZE_MAX || (g->nullp && len > 0) || off < -1;
	x->len = len;
	if (g->op == OP_WRITE) {
		fd = plan_write(x, g->a, len);
		return iop_write(M.pool, fd, buf, len, off, g->done, x);
	}
	fd = plan_read(x, g->a, len, off);
	at_position(x, off);
	return iop_read(M.pool, fd, buf, len, off, g->done, x);
}

static iop_job *submit_vec(struct fjob *x, struct args *g)
{
	static const int cnts[] = { 0, 1, 3, -1, IOV_MAX + 1, 2 };
	const struct iovec *iov = x->iov;
	int cnt = PICK(cnts, g->b), fd;
	size_t len = PICK(lens, g->c);
	int64_t off;

	if (len > BUF)
		len = BUF;
	for (int k = 0; k < 3; k++)
		x->iov[k] = (struct iovec){ x->buf + k * (len / 3), len / 3 };
	if (cnt >= 1 && cnt <= 3)
		x->iov[cnt - 1].iov_len = len - (len / 3) * (size_t)(cnt - 1);
	if (cnt == 2 && (g->fl & 0x40)) {	/* past SSIZE_MAX */
		x->iov[0].iov_len = SSIZE_MAX;
		x->iov[1].iov_len = SSIZE_MAX;
		g->bad = true;
	}
	if (cnt == IOV_MAX + 1)
		iov = big_iov;
	if (cnt <= 0)
		len = 0;
	off = g->op == OP_READV ? PICK(roffs, u8()) : PICK(woffs, u8());
	g->bad = g->bad || cnt < 0 || cnt > IOV_MAX ||
		 (g->nullp && cnt > 0) || off < -1;
	x->len = len;
	if (g->nullp)
		iov = NULL;
	if (g->op == OP_WRITEV) {
		fd = plan_write(x, g->a, len);
		return iop_writev(M.pool, fd, iov, cnt, off, g->done, x);
	}
	fd = plan_read(x, g->a, len, off);
	at_position(x, off);
	return iop_readv(M.pool, fd, iov, cnt, off, g->done, x);
}

/* The ops on a descriptor other than reads and writes, and calls. */
static iop_job *submit_fd(struct fjob *x, struct args *g)
{
	static const int64_t tl[] = { 0, 100, FSZ, -1 };
	static const int64_t fo[] = { 0, 4096, -1 };
	static const int64_t fl[] = { 1, 4096, 0, -5 };
	bool badfd = g->a & 1;
	int64_t o, l;
	int fd;

	x->want = W_EXACT;
	x->expect = badfd ? -EBADF : 0;
	switch (g->op) {
	case OP_CALL:
		x->expect = (ssize_t)(g->a % 100);
		x->spin = g->b & 1;
		g->bad = g->nullp;
		return iop_call(M.pool, g->nullp ? NULL : fz_work, x, g->done,
				x);
	case OP_CLOSE:
		/* Odd a: a descriptor of ours to close; even: -1. */
		if (g->a & 1) {
			fd = x->close_fd = dup(fd_f);
			x->expect = 0;
		} else {
			fd = -1;
			x->expect = -EBADF;
		}
		return iop_close(M.pool, fd, g->done, x);
	case OP_FSYNC:
		return iop_fsync(M.pool, badfd ? -1 : fd_w, g->done, x);
	case OP_FDATASYNC:
		return iop_fdatasync(M.pool, badfd ? -1 : fd_w, g->done, x);
	case OP_FSTAT:
		g->bad = g->nullp;
		return iop_fstat(M.pool, badfd ? -1 : fd_f,
				 g->nullp ? NULL : &x->st, g->done, x);
	case OP_FTRUNCATE:
		l = PICK(tl, g->b);
		g->bad = l < 0;
		return iop_ftruncate(M.pool, badfd ? -1 : fd_w, l, g->done, x);
	default:			/* OP_FALLOCATE */
		o = PICK(fo, g->b);
		l = PICK(fl, g->c);
		g->bad = o < 0 || l <= 0;
		x->want = W_FALLOC;
		return iop_fallocate(M.pool, fd_w, 0, o, l, g->done, x);
	}
}

/* openat, statat and readfile: a path, and what it must give. */
static iop_job *submit_open(struct fjob *x, struct args *g)
{
	static const char *const opaths[] = { "f", "nope", "", "d", "f/x" };
	static const ssize_t ores[] = { 0, -ENOENT, -ENOENT, 0, -ENOTDIR };
	static const char *const spaths[] = { "f", "nope", "" };
	static const ssize_t sres[] = { 0, -ENOENT, -ENOENT };
	static const char *const rpaths[] = { "f", "nope", "d" };
	static const ssize_t rres[] = { FSZ, -ENOENT, -EISDIR };
	bool nopath = g->b & 1;

	x->want = W_EXACT;
	switch (g->op) {
	case OP_OPENAT:
		g->bad = g->nullp;
		x->expect = PICK(ores, g->a);
		if (x->expect == 0) {
			x->want = W_UPTO;	/* a descriptor */
			x->expect = INT_MAX;
		}
		return iop_openat(M.pool, dirfd_g,
				  g->nullp ? NULL : PICK(opaths, g->a),
				  O_RDONLY, 0, g->done, x);
	case OP_STATAT:
		g->bad = g->nullp || nopath;
		x->expect = PICK(sres, g->a);
		return iop_statat(M.pool, dirfd_g,
				  nopath ? NULL : PICK(spaths, g->a),
				  g->nullp ? NULL : &x->st, 0, g->done, x);
	default:			/* OP_READFILE */
		g->bad = g->nullp || nopath;
		x->expect = PICK(rres, g->a);
		return iop_readfile(M.pool, dirfd_g,
				    nopath ? NULL : PICK(rpaths, g->a),
				    g->nullp ? NULL : &x->data, g->done, x);
	}
}

/* renameat, unlinkat, mkdirat and listdir. */
static iop_job *submit_tree(struct fjob *x, struct args *g)
{
	static const char *const upaths[] = { "nope", "d", "d" };
	static const int uflags[] = { 0, 0, AT_REMOVEDIR };
	static const ssize_t ures[] = { -ENOENT, -EISDIR, -ENOTEMPTY };
	static const char *const lpaths[] = { "d", "f", "nope" };
	static const ssize_t lres[] = { 2, -ENOTDIR, -ENOENT };
	unsigned lflags = g->b % 3 == 2 ? 2u : g->b % 3 ? IOP_LISTDIR_SORT : 0;
	bool self = g->a & 1, nonew = g->b & 1;

	x->want = W_EXACT;
	g->bad = g->nullp;
	switch (g->op) {
	case OP_RENAMEAT:
		/* "f" onto itself, or a name that is not there. */
		g->bad = g->nullp || nonew;
		x->expect = self ? 0 : -ENOENT;
		return iop_renameat(M.pool, dirfd_g,
				    g->nullp ? NULL : self ? "f" : "nope",
				    dirfd_g,
				    nonew ? NULL : self ? "f" : "nope2", 0,
				    g->done, x);
	case OP_UNLINKAT:
		x->expect = PICK(ures, g->a);
		return iop_unlinkat(M.pool, dirfd_g,
				    g->nullp ? NULL : PICK(upaths, g->a),
				    PICK(uflags, g->a), g->done, x);
	case OP_MKDIRAT:
		x->expect = -EEXIST;
		return iop_mkdirat(M.pool, dirfd_g, g->nullp ? NULL : "d",
				   0700, g->done, x);
	default:			/* OP_LISTDIR */
		g->bad = g->nullp || lflags == 2 || (g->c & 1);
		x->len = lflags == IOP_LISTDIR_SORT;
		x->expect = PICK(lres, g->a);
		return iop_listdir(M.pool, dirfd_g,
				   g->c & 1 ? NULL : PICK(lpaths, g->a),
				   lflags, g->nullp ? NULL : &x->ents,
				   g->done, x);
	}
}

/*
 * Make job slot @i's submit of @op from the input: returns the job (or
 * NULL with errno), and sets *@bad when the arguments are invalid (EINVAL
 * due).
 */
static iop_job *do_submit(int i, unsigned op, unsigned fl, bool *bad)
{
	struct fjob *x = &M.j[i];
	struct args g = { .op = op, .fl = fl, .nullp = fl & 0x80,
			  .done = x->future ? NULL : fz_done };
	iop_job *job;

	g.a = u8();
	g.b = u8();
	g.c = u8();
	switch (op) {
	case OP_READ:
	case OP_WRITE:
		job = submit_rw(x, &g);
		break;
	case OP_READV:
	case OP_WRITEV:
		job = submit_vec(x, &g);
		break;
	case OP_OPENAT:
	case OP_STATAT:
	case OP_READFILE:
		job = submit_open(x, &g);
		break;
	case OP_RENAMEAT:
	case OP_UNLINKAT:
	case OP_MKDIRAT:
	case OP_LISTDIR:
		job = submit_tree(x, &g);
		break;
	default:
		job = submit_fd(x, &g);
		break;
	}
	*bad = g.bad;
	return job;
}

/*
 * Submit an @op with flags @fl: bit 0 a future, bits 1-3 what its
 * callback does, bit 7 a NULL pointer where one is passed, bit 6 an
 * overflowing length (writev, readv).
 */
static void submit(unsigned op, unsigned fl)
{
	struct fjob *x;
	iop_job *h;
	bool bad;
	int i, err;

	if (M.nj == MAXJ) {
		in_pos += 3;
		return;
	}
	i = M.nj++;
	x = &M.j[i];
	memset(x, 0, offsetof(struct fjob, buf));
	x->op = (unsigned char)op;
	x->prev = x->next = x->group = -1;
	x->close_fd = -1;
	/* openat and close ride on callbacks, so that what they open or
	 * leave open is always known. */
	x->future = (fl & 1) && op != OP_OPENAT && op != OP_CLOSE;
	x->cb = (int)((fl >> 1) & 7) % CB_N;
	errno = 0;
	h = do_submit(i, op, fl, &bad);
	err = errno;
	if (bad) {
		EXPECT(!h && err == EINVAL, "op %u with bad arguments: %s, "
		       "errno %d", op, h ? "accepted" : "refused", err);
	}
	if (!h) {
		EXPECT(bad || (err == EAGAIN && bounded()) ||
		       (err == ESHUTDOWN && M.destroying),
		       "op %u refused: errno %d", op, err);
		if (x->close_fd >= 0)
			close(x->close_fd);
		M.nj--;
		return;
	}
	x->h = h;
	if (M.depth > 0) {
		/* A bounded queue may run a submit at once instead. */
		x->held = !bounded() || iop_job_state(h) == IOP_QUEUED;
		M.held += x->held;
	}
}

/* ---- The other calls. ---- */

static void cancel_job(int i)
{
	struct fjob *x = &M.j[i];
	int ret = iop_cancel(x->h);

	x->cancel_tried = true;
	EXPECT(ret == 0 || ret == -EBUSY || ret == -EALREADY,
	       "cancel: %d", ret);
	if (x->held)
		EXPECT(ret == 0, "cancel of a held job: %d", ret);
	if (ret == 0)
		x->cancel_zero = true;
}

static void await_job(int i, int ms)
{
	struct fjob *x = &M.j[i];
	ssize_t r = 0;
	int ret;

	if (!x->future) {
		EXPECT(iop_await(x->h) == -EINVAL, "await of a callback job");
		EXPECT(iop_await_timeout(x->h, 0, &r) == -EINVAL,
		       "await_timeout of a callback job");
		return;
	}
	if (x->held) {
		EXPECT(iop_await(x->h) == -EDEADLK, "await of a held future");
		EXPECT(iop_await_timeout(x->h, 0, &r) == -EDEADLK,
		       "await_timeout of a held future");
		return;
	}
	if (ms >= 0) {
		ret = iop_await_timeout(x->h, ms, &r);
		EXPECT(ret == 0 || ret == -ETIMEDOUT, "await_timeout: %d",
		       ret);
		if (ret == 0)
			end_job(i, r);
		return;
	}
	if (iop_job_state(x->h) == IOP_DONE) {
		end_job(i, iop_await(x->h));
		return;
	}
	ret = iop_await_timeout(x->h, LOST_MS, &r);
	EXPECT(ret == 0, "future %d (op %d) never ended", i, x->op);
	end_job(i, r);
}

static void batch_end(void)
{
	int ret = iop_batch_end(M.pool);

	if (M.depth == 0) {
		EXPECT(ret == -EINVAL, "batch_end without a batch: %d", ret);
		return;
	}
	if (--M.depth > 0) {
		EXPECT(ret == 0, "inner batch_end: %d", ret);
		return;
	}
	EXPECT(ret == M.held, "batch_end: %d, %d held", ret, M.held);
	for (int i = 0; i < M.nj; i++)
		M.j[i].held = false;
	M.held = 0;
}

static void link_jobs(int a, int b)
{
	int ret = iop_link(M.j[a].h, M.j[b].h), want;
	bool cycle = false;

	for (int p = M.j[a].prev; p >= 0; p = M.j[p].prev)
		cycle |= p == b;
	if (a == b)
		want = -EINVAL;
	else if (!M.j[a].held || !M.j[b].held || M.j[a].next >= 0 ||
		 M.j[b].prev >= 0)
		want = -EBUSY;
	else if (cycle)
		want = -EINVAL;
	else
		want = 0;
	EXPECT(ret == want, "link %d -> %d: %d, expected %d", a, b, ret,
	       want);
	if (ret == 0) {
		M.j[a].next = b;
		M.j[b].prev = a;
	}
}

static void group_add(int g, int i)
{
	struct fgroup *gr = &M.g[g];
	struct fjob *x = &M.j[i];
	int ret = iop_group_add(gr->h, x->h), want;

	if (!x->held || x->group >= 0)
		want = -EBUSY;
	else if (gr->sealed)
		want = -EINVAL;
	else
		want = 0;
	EXPECT(ret == want, "group_add: %d, expected %d", ret, want);
	if (ret == 0) {
		x->group = g;
		gr->members++;
		gr->has_future |= x->future;
	}
}

static void new_pool(unsigned c);

/* End the batch, destroy the pool, and check that everything ended. */
static void destroy_pool(void)
{
	while (M.depth > 0)
		batch_end();
	M.destroying = true;
	iop_pool_destroy(M.pool);
	M.destroying = false;
	for (int i = 0; i < M.nj; i++) {
		struct fjob *x = &M.j[i];

		if (!x->future)
			EXPECT(x->ended, "job %d (op %d): no callback by the "
			       "end of destroy", i, x->op);
		if (!x->ended)
			x->released = true;
		/* What a released future's job gave back is ours. */
		free(x->data);
		free(x->ents);
		x->data = NULL;
		x->ents = NULL;
	}
	for (int g = 0; g < M.ng; g++)
		EXPECT(M.g[g].called == M.g[g].sealed,
		       "group %d: sealed %d, called back %d", g,
		       M.g[g].sealed, M.g[g].called);
	M.pool = NULL;
}

static void new_pool(unsigned c)
{
	struct iop_options *o = &M.opts;

	memset(o, 0, sizeof(*o));
	M.nj = M.ng = M.nl = M.depth = M.held = 0;
	M.destroying = false;
	if (c % 8 == 7) {		/* options that must be refused */
		switch ((c >> 3) % 7) {
		case 0: o->threads = IOP_THREADS_MAX + 1; break;
		case 1: o->threads = 2; o->min_threads = 3; break;
		case 2: o->stack_size = 100; break;
		case 3: o->overflow = 9; break;
		case 4: o->flags = 0x100; break;
		case 5: o->reserved[1] = 1; break;
		default: o->flags = IOP_POOL_INLINE; o->threads = 1; break;
		}
		errno = 0;
		EXPECT(iop_pool_new(o) == NULL && errno == EINVAL,
		       "bad options accepted, or errno %d", errno);
		memset(o, 0, sizeof(*o));
		o->threads = 2;
	} else if (c % 8 == 6) {
		o->flags = IOP_POOL_INLINE;
	} else {
		o->threads = 1 + c % 3;
		o->min_threads = (c >> 2) & 1;
		if (c & 0x20) {
			o->max_queued = 2 + (c >> 6);
			o->overflow = (int)((c >> 3) % 3);
			o->overflow_timeout_ms = 20;
		}
	}
	if (c & 0x10)
		o->flags |= IOP_POOL_NO_TIMING;
	o->idle_timeout_ms = 50;
	M.pool = iop_pool_new(o);
	EXPECT(M.pool != NULL, "iop_pool_new: %s", strerror(errno));
}

/* Calls with NULL or out-of-range arguments, and what each must say. */
static void bad_calls(void)
{
	struct iop_stats st = { .size = sizeof(st) };
	ssize_t r;

	errno = 0;
	EXPECT(!iop_read(NULL, fd_f, &r, 1, 0, fz_done, NULL) &&
	       errno == EINVAL, "read, pool NULL");
	errno = 0;
	EXPECT(!iop_call(NULL, fz_work, NULL, NULL, NULL) && errno == EINVAL,
	       "call, pool NULL");
	errno = 0;
	EXPECT(!iop_group_new(M.pool, NULL, NULL) && errno == EINVAL,
	       "group_new, done NULL");
	errno = 0;
	EXPECT(!iop_group_new(NULL, fz_group, NULL) && errno == EINVAL,
	       "group_new, pool NULL");
	errno = 0;
	EXPECT(!iop_lane_new(M.pool, NULL, 1) && errno == EINVAL,
	       "lane_new, name NULL");
	errno = 0;
	EXPECT(!iop_lane_new(M.pool, "x", 0) && errno == EINVAL,
	       "lane_new, cap 0");
	EXPECT(iop_poll(NULL) == -EINVAL, "poll NULL");
	EXPECT(iop_wait(NULL, 0) == -EINVAL, "wait NULL");
	EXPECT(iop_wait(M.pool, -2) == -EINVAL, "wait -2");
	EXPECT(iop_poll_budget(NULL, 1, 1) == -EINVAL, "poll_budget NULL");
	EXPECT(iop_pool_fd(NULL) == -EINVAL, "pool_fd NULL");
	EXPECT(iop_pool_fd(M.pool) >= 0, "pool_fd");
	EXPECT(iop_cancel(NULL) == -EINVAL, "cancel NULL");
	EXPECT(iop_job_state(NULL) == -EINVAL, "job_state NULL");
	EXPECT(iop_await(NULL) == -EINVAL, "await NULL");
	EXPECT(iop_await_timeout(NULL, 0, &r) == -EINVAL,
	       "await_timeout NULL");
	EXPECT(iop_batch_begin(NULL) == -EINVAL, "batch_begin NULL");
	EXPECT(iop_batch_end(NULL) == -EINVAL, "batch_end NULL");
	EXPECT(iop_link(NULL, NULL) == -EINVAL, "link NULL");
	EXPECT(iop_group_add(NULL, NULL) == -EINVAL, "group_add NULL");
	EXPECT(iop_group_seal(NULL) == -EINVAL, "group_seal NULL");
	EXPECT(iop_group_cancel(NULL) == -EINVAL, "group_cancel NULL");
	EXPECT(iop_pool_set_threads(NULL, 0, 1) == -EINVAL,
	       "set_threads NULL");
	EXPECT(iop_job_set_priority(NULL, 0) == -EINVAL, "set_priority NULL");
	EXPECT(iop_job_set_deadline(NULL, 0) == -EINVAL, "set_deadline NULL");
	EXPECT(iop_job_set_lane(NULL, NULL) == -EINVAL, "set_lane NULL");
	EXPECT(iop_lane_set_cap(NULL, 1) == -EINVAL, "lane_set_cap NULL");
	EXPECT(iop_pool_stats(NULL, &st) == -EINVAL, "stats NULL");
	EXPECT(iop_pool_stats(M.pool, NULL) == -EINVAL, "stats st NULL");
	st.size = 8;
	EXPECT(iop_pool_stats(M.pool, &st) == -EINVAL, "stats size 8");
	EXPECT(iop_cancel_requested() == 0, "cancel_requested off a worker");
	iop_pool_destroy(NULL);
}

/* One call from the input. */
static void step(void)
{
	unsigned cmd = u8() % 41, a, b;
	int i, k, g, ret;

	if (cmd < OP_NOPS) {
		submit(cmd, u8());
		return;
	}
	a = u8();
	switch (cmd) {
	case 18:			/* cancel */
		i = pick_job(a);
		if (i >= 0)
			cancel_job(i);
		break;
	case 19:
		EXPECT(iop_poll(M.pool) >= 0, "poll");
		break;
	case 20:
		/* Mostly 0 or 1 ms: a fuzzer wants many runs a second. */
		EXPECT(iop_wait(M.pool, a % 8 == 7 ? 2 : (int)(a % 2)) >= 0,
		       "wait");
		break;
	case 21:
		EXPECT(iop_poll_budget(M.pool, a % 4, (a >> 2) % 4 * 100) >= 0,
		       "poll_budget");
		break;
	case 22:			/* await */
	case 23:			/* await with a short limit */
		i = pick_job(a);
		if (i >= 0)
			await_job(i, cmd == 22 ? -1 : (int)(u8() % 2));
		break;
	case 24:
		if (M.depth < 3) {
			EXPECT(iop_batch_begin(M.pool) == 0, "batch_begin");
			M.depth++;
		}
		break;
	case 25:
		batch_end();
		break;
	case 26:			/* link */
		i = pick_job(a);
		k = pick_job(u8());
		if (i >= 0 && k >= 0)
			link_jobs(i, k);
		break;
	case 27:
		if (M.ng < MAXG) {
			struct fgroup *gr = &M.g[M.ng];

			memset(gr, 0, sizeof(*gr));
			gr->h = iop_group_new(M.pool, fz_group, gr);
			EXPECT(gr->h != NULL, "group_new: %d", errno);
			M.ng++;
		}
		break;
	case 28:			/* group_add */
		g = pick_group(a);
		i = pick_job(u8());
		if (g >= 0 && i >= 0)
			group_add(g, i);
		break;
	case 29:			/* seal */
		g = pick_group(a);
		if (g >= 0) {
			ret = iop_group_seal(M.g[g].h);
			EXPECT(ret == (M.g[g].sealed ? -EINVAL : 0),
			       "group_seal: %d", ret);
			M.g[g].sealed = true;
		}
		break;
	case 30:			/* group cancel */
		g = pick_group(a);
		if (g >= 0) {
			EXPECT(iop_group_cancel(M.g[g].h) == 0,
			       "group_cancel");
			M.g[g].cancelled = true;
		}
		break;
	case 31:			/* priority, in range or not */
		i = pick_job(a);
		b = u8();
		if (i >= 0) {
			int p = (int)(b % 11) - 5;

			ret = iop_job_set_priority(M.j[i].h, p);
			EXPECT(ret == (p < IOP_PRIO_MIN || p > IOP_PRIO_MAX ?
				       -EINVAL : M.j[i].held ? 0 : -EBUSY),
			       "set_priority(%d): %d", p, ret);
		}
		break;
	case 32: {			/* deadline */
		static const int dl[] = { -1, 0, 1, 5, 1000 };
		int ms;

		i = pick_job(a);
		ms = PICK(dl, u8());
		if (i >= 0) {
			ret = iop_job_set_deadline(M.j[i].h, ms);
			EXPECT(ret == (ms < 0 ? -EINVAL : M.j[i].held ? 0 :
				       -EBUSY), "set_deadline(%d): %d", ms,
			       ret);
			M.j[i].deadline |= ret == 0;
		}
		break;
	}
	case 33:
		if (M.nl < MAXL) {
			M.lane[M.nl] = iop_lane_new(M.pool, "lane",
						    1 + a % 2);
			EXPECT(M.lane[M.nl] != NULL, "lane_new");
			M.nl++;
		}
		break;
	case 34:			/* set_lane */
		i = pick_job(u8());
		if (M.nl && i >= 0) {
			ret = iop_job_set_lane(M.j[i].h, M.lane[a % M.nl]);
			EXPECT(ret == (M.j[i].held ? 0 : -EBUSY),
			       "set_lane: %d", ret);
		}
		break;
	case 35:
		if (M.nl) {
			ret = iop_lane_set_cap(M.lane[a % M.nl], u8() % 3);
			EXPECT(ret == 0 || ret == -EINVAL, "lane_set_cap");
		}
		break;
	case 36: {			/* thread limits */
		unsigned min = a % 4, max = u8() % 5;
		bool inl = M.opts.flags & IOP_POOL_INLINE;

		if (a & 0x80)
			max = IOP_THREADS_MAX + 1;
		ret = iop_pool_set_threads(M.pool, min, max);
		EXPECT(ret == (inl || max == 0 || max > IOP_THREADS_MAX ||
			       min > max ? -EINVAL : 0),
		       "set_threads(%u, %u): %d", min, max, ret);
		break;
	}
	case 37: {
		struct iop_stats st = { .size = sizeof(st) };

		EXPECT(iop_pool_stats(M.pool, &st) == 0, "stats");
		break;
	}
	case 38:
		i = pick_job(a);
		if (i >= 0) {
			ret = iop_job_state(M.j[i].h);
			EXPECT(ret >= IOP_QUEUED && ret <= IOP_DONE,
			       "job_state: %d", ret);
			if (M.j[i].held)
				EXPECT(ret == IOP_QUEUED, "held: %d", ret);
		}
		break;
	case 39:
		destroy_pool();
		new_pool(a);
		break;
	default:
		bad_calls();
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fds;

	setup_once();
	ftruncate(fd_w, 0);
	lseek(fd_w, 0, SEEK_SET);
	lseek(fd_cur, 0, SEEK_SET);
	fds = count_fds();
	in = data;
	in_len = size;
	in_pos = 0;
	new_pool(u8());
	for (int n = 0; n < 64 && in_pos < in_len; n++)
		step();
	destroy_pool();
	EXPECT(count_fds() == fds, "descriptors: %d before, %d after", fds,
	       count_fds());
	return 0;
}
