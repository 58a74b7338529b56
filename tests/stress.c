/*
 * tests/stress: random mixes of every op, from four submitter threads at
 * once, on pools of random shape that are destroyed (half of them while
 * busy) and replaced until the time is up.  Around the submits: batches,
 * chains, groups, priorities, lanes, deadlines, futures awaited with and
 * without a limit, cancels from three threads (two cancellers on futures,
 * the polling thread on callback jobs and groups, and each submitter on
 * the jobs it holds), thread limits and lane caps changed at run time.
 *
 * What it checks, per pool and at the end:
 * - every job submitted ended exactly once: its callback ran once, or its
 *   future was awaited once; submitted == succeeded + failed + cancelled +
 *   timed out, and the pool's own statistics agree (pools drained before
 *   destroy);
 * - every result is one the job could have: the bytes asked for, the
 *   expected errno for the jobs meant to fail, -ECANCELED only for a job
 *   that was cancelled (itself, its group, a job ahead of it in its chain,
 *   or by destroy), -ETIMEDOUT only for a job with a deadline, and a
 *   cancel that returned 0 always means -ECANCELED;
 * - every byte written and read back matches its checksum, and after each
 *   pool every slot of every data file holds what the last successful
 *   write put there;
 * - each group's callback ran once, with the counts of its members;
 * - no descriptor is left open (/proc/self/fd after each pool and at the
 *   end is what it was before).
 *
 * make check runs it for STRESS_SECONDS (default 3) seconds, which stays
 * short under the sanitizers and valgrind.  A soak:
 *	STRESS_SECONDS=600 ./tests/stress
 * STRESS_JOBS stops after about that many jobs (0, the default: no
 * limit), STRESS_EPOCH_MS is how long each pool lives (default 250) and
 * STRESS_SEED seeds the choices (default 1; thread timing still varies),
 * STRESS_SKIP=lane-deadline leaves out a combination with a known bug.
 * It prints what it did.  Exit status 0 when everything held, 1 after
 * printing each failure (the first 30), 77 when it cannot run here.
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
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "iopool.h"

#define SUBMITTERS	4
#define CANCELLERS	2
#define NSLOTS		32	/* slots per data file */
#define MAX_INFLIGHT	96	/* per submitter */
#define RING		256	/* handles offered to the cancellers */
#define NCONST		4	/* files for readfile */
#define NFIXED		5	/* entries of the listdir directory */
#define CALL_BYTES	64
#define GEN_UNKNOWN	UINT32_MAX
#define LOST_MS		30000	/* not ended by then: lost */

/* ---- Failures, counters, randomness. ---- */

static atomic_long failures;

static void fail(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&failures, 1) >= 30)
		return;
	va_start(ap, fmt);
	fputs("stress: FAIL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* How long to wait for a job before calling it lost: less once failing. */
static int lost_ms(void)
{
	return atomic_load(&failures) ? 100 : LOST_MS;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* True with probability @pct percent. */
static bool chance(uint64_t *s, unsigned pct)
{
	return rnd(s) % 100 < pct;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void nap_us(long us)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = us * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

enum kind {
	K_READ, K_READV, K_WRITE, K_WRITEV, K_FSYNC, K_FDATASYNC, K_FSTAT,
	K_STATAT, K_READFILE, K_LISTDIR, K_FTRUNCATE, K_FALLOCATE, K_OPENAT,
	K_CLOSE, K_MKDIRAT, K_RENAMEAT, K_UNLINKAT, K_CALL, K_NKINDS
};

static const char *const kind_name[K_NKINDS] = {
	"read", "readv", "write", "writev", "fsync", "fdatasync", "fstat",
	"statat", "readfile", "listdir", "ftruncate", "fallocate", "openat",
	"close", "mkdirat", "renameat", "unlinkat", "call",
};

/* What the whole run did; atomics, since every thread counts. */
static struct {
	atomic_long submitted, callbacks, futures, by_kind[K_NKINDS];
	atomic_long succeeded, failed, cancelled, timed_out, bad;
	atomic_long submit_eagain, cancels, cancel_ret[3], group_cancels;
	atomic_long batches, chains, groups, groups_done, held_cancels;
	atomic_long edeadlk, await_timeouts, set_threads, lane_caps;
	atomic_long bytes_written, bytes_verified, destroy_cancelled;
	long epochs, destroys_busy, destroys_drained, inline_pools;
	long bounded_pools, verified_slots;
	/* The longest waits, in ns: a job that ends late, not lost. */
	atomic_llong slowest_await;
	int64_t slowest_drain, slowest_epoch;
	struct iop_options slowest_opts;
} tally;

static void note_max(atomic_llong *max, int64_t v)
{
	long long cur = atomic_load(max);

	while (v > cur && !atomic_compare_exchange_weak(max, &cur, v))
		;
}

/*
 * This pool's outcomes by result, to compare with iop_pool_stats():
 * >= 0, -ECANCELED, -ETIMEDOUT, any other < 0.
 */
static struct {
	atomic_long submitted, nonneg, cancelled, timed_out, negative;
} epoch;

/* ---- Files. ---- */

/* A data file: NSLOTS slots, each holding one generation of a pattern. */
struct slot {
	atomic_int busy;		/* jobs in flight on it */
	_Atomic uint32_t gen;		/* what it holds; GEN_UNKNOWN */
};

struct dfile {
	unsigned id;
	int fd;
	size_t slot_size;
	char name[32];
	struct slot slots[NSLOTS];
};

/* The byte stream of (file, slot, generation), 8 bytes at a time. */
static uint64_t pattern_word(unsigned file, unsigned slot, uint32_t gen,
			     size_t i)
{
	uint64_t x = ((uint64_t)file << 48) ^ ((uint64_t)slot << 32) ^ gen;

	x += (i + 1) * 0x9E3779B97F4A7C15ull;
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	return x;
}

static void pattern_fill(unsigned char *buf, size_t len, unsigned file,
			 unsigned slot, uint32_t gen)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = pattern_word(file, slot, gen, i / 8);

		memcpy(buf + i, &w, len - i < 8 ? len - i : 8);
	}
}

/* FNV-1a, 64 bits: the checksum each read is verified with. */
static uint64_t fnv(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t pattern_sum(unsigned file, unsigned slot, uint32_t gen,
			    size_t len)
{
	unsigned char *tmp = malloc(len);
	uint64_t h;

	pattern_fill(tmp, len, file, slot, gen);
	h = fnv(tmp, len);
	free(tmp);
	return h;
}

static int dirfd_tmp = -1;
static char tmpdir[PATH_MAX];
static size_t const_size[NCONST] = { 0, 100, 20000, 70001 };

/* ---- Descriptors: /proc/self/fd as a sorted list of "fd target". ---- */

struct fdset {
	size_t n;
	char line[512][320];
};

static int cmp_line(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool fd_snapshot(struct fdset *s)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int self;

	if (!d)
		return false;
	self = dirfd(d);
	s->n = 0;
	while ((e = readdir(d)) != NULL) {
		char path[300], target[64] = "";
		ssize_t n;

		if (e->d_name[0] == '.' || atoi(e->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n >= 0)
			target[n] = '\0';
		if (s->n < 512)
			snprintf(s->line[s->n++], 320, "%s %s", e->d_name,
				 target);
	}
	closedir(d);
	qsort(s->line, s->n, sizeof(s->line[0]), cmp_line);
	return true;
}

static void fd_compare(const struct fdset *before, const char *when)
{
	static struct fdset now;
	size_t i = 0, j = 0;

	fd_snapshot(&now);
	while (i < before->n || j < now.n) {
		int c = i == before->n ? 1 : j == now.n ? -1 :
			strcmp(before->line[i], now.line[j]);

		if (c < 0)
			fail("%s: descriptor gone: %s", when,
			     before->line[i++]);
		else if (c > 0)
			fail("%s: descriptor left open: %s", when,
			     now.line[j++]);
		else
			i++, j++;
	}
}

/* ---- Jobs as the test sees them. ---- */

struct grec;

/* Kinds of call work. */
enum { CALL_SUM, CALL_SPIN, CALL_SLEEP, CALL_FAIL };

/*
 * One submitted job.  Made and submitted by one thread, ended by a
 * callback on the polling thread or by whoever awaits the future; lives
 * until the pool is gone.
 */
struct rec {
	struct rec *next;		/* the maker's list */
	_Atomic(iop_job *) job;
	struct sub *sub;		/* NULL: submitted by a callback */
	struct grec *group;
	unsigned char kind, call;
	bool future, submitted;
	bool deadline;			/* may end -ETIMEDOUT */
	bool after;			/* linked after one: may be cut */
	bool lost;			/* reported: never ended */
	bool lane;			/* in a lane */
	atomic_bool cancel_asked;
	atomic_bool cancel_zero;	/* an iop_cancel() of it returned 0 */
	atomic_int cstate;		/* 0 free, 1 cancelling, 2 ours */
	atomic_int ended;
	ssize_t result;
	ssize_t expect;			/* the result of success */
	int expect_err;			/* 0, or the errno it is for */
	struct dfile *file;
	unsigned slot;
	uint32_t gen;			/* written, or due to a read */
	size_t len;
	int fd;				/* to close, or opened */
	int flags;
	unsigned char *buf;
	struct iovec iov[3];
	struct stat st;
	void *data;
	struct iop_dirent *ents;
	char path[48], path2[48];
};

/* A group, and what its members' callbacks saw. */
struct grec {
	struct grec *next;
	iop_group *group;
	unsigned members;
	atomic_bool cancel_asked;
	atomic_int called;
	unsigned ok, failed, cancelled;	/* polling thread only */
};

/* A thread that makes jobs: a submitter, or the polling thread. */
struct maker {
	struct rec *recs;
	struct grec *grecs;
	uint64_t rng;
};

struct sub {
	struct maker m;
	unsigned id;
	pthread_t thread;
	struct dfile data;
	int scratch;			/* ftruncate, fallocate, close */
	uint32_t next_gen;
	unsigned serial;		/* names in the directory */
	atomic_int inflight;
	struct rec **futs;		/* not yet awaited */
	size_t nfuts, capfuts;
	bool burst;			/* slow jobs for a busy destroy */
};

/*
 * STRESS_SKIP=lane-deadline: never give a job in a lane a deadline, to
 * look for other failures while that combination has a known bug open
 * (tests/test-regress.c, lane_deadline).
 */
static bool skip_lane_deadlines;

static struct sub subs[SUBMITTERS];
static struct maker poller;
static iop_pool *pool;
static iop_lane *lanes[2];
static unsigned nlanes;
static struct iop_options popts;
static atomic_bool stop, destroying;
static atomic_int subs_done;
static atomic_long cb_outstanding, groups_outstanding;
static _Atomic(struct rec *) cb_ring[RING], fut_ring[RING];
static _Atomic(struct grec *) g_ring[RING];

static struct rec *rec_new(struct maker *m, enum kind k, struct sub *s)
{
	struct rec *r = calloc(1, sizeof(*r));

	if (!r) {
		fail("out of memory");
		exit(1);
	}
	r->kind = (unsigned char)k;
	r->sub = s;
	r->fd = -1;
	r->next = m->recs;
	m->recs = r;
	return r;
}

static void on_done(iop_job *job, ssize_t result, void *arg);
static void finish(struct rec *r, ssize_t result);

/* ---- Work functions for iop_call(). ---- */

static ssize_t call_work(void *ctx)
{
	struct rec *r = ctx;
	int64_t end;

	switch (r->call) {
	case CALL_SUM:
		return (ssize_t)(fnv(r->buf, CALL_BYTES) & 0x7fffffff);
	case CALL_SPIN:
		end = now_ns() + 300000;
		while (now_ns() < end)
			if (iop_cancel_requested())
				return 1;
		return 0;
	case CALL_SLEEP:
		nap_us(50 + (long)(r->len % 250));
		return 0;
	default:
		return -EIO;
	}
}

/* ---- Submitting. ---- */

static iop_job *submit_rec(struct rec *r)
{
	iop_done_fn *done = r->future ? NULL : on_done;
	int fd = r->file ? r->file->fd : r->fd;
	int64_t off = r->file ? (int64_t)r->slot * (int64_t)r->file->slot_size
			      : 0;

	switch (r->kind) {
	case K_READ:
		return iop_read(pool, fd, r->buf, r->len, off, done, r);
	case K_WRITE:
		return iop_write(pool, fd, r->buf, r->len, off, done, r);
	case K_READV:
		return iop_readv(pool, fd, r->iov, 3, off, done, r);
	case K_WRITEV:
		return iop_writev(pool, fd, r->iov, 3, off, done, r);
	case K_FSYNC:
		return iop_fsync(pool, fd, done, r);
	case K_FDATASYNC:
		return iop_fdatasync(pool, fd, done, r);
	case K_FSTAT:
		return iop_fstat(pool, fd, &r->st, done, r);
	case K_STATAT:
		return iop_statat(pool, dirfd_tmp, r->path, &r->st, 0, done, r);
	case K_READFILE:
		return iop_readfile(pool, dirfd_tmp, r->path, &r->data, done,
				    r);
	case K_LISTDIR:
		return iop_listdir(pool, dirfd_tmp, r->path,
				   (unsigned)r->flags, &r->ents, done, r);
	case K_FTRUNCATE:
		return iop_ftruncate(pool, fd, (int64_t)r->len, done, r);
	case K_FALLOCATE:
		return iop_fallocate(pool, fd, r->flags, (int64_t)r->gen,
				     (int64_t)r->len, done, r);
	case K_OPENAT:
		return iop_openat(pool, dirfd_tmp, r->path, r->flags, 0600,
				  done, r);
	case K_CLOSE:
		return iop_close(pool, fd, done, r);
	case K_MKDIRAT:
		return iop_mkdirat(pool, dirfd_tmp, r->path, 0700, done, r);
	case K_RENAMEAT:
		return iop_renameat(pool, dirfd_tmp, r->path, dirfd_tmp,
				    r->path2, 0, done, r);
	case K_UNLINKAT:
		return iop_unlinkat(pool, dirfd_tmp, r->path, r->flags, done,
				    r);
	case K_CALL:
		return iop_call(pool, call_work, r, done, r);
	}
	return NULL;
}

static void slot_release(struct rec *r)
{
	if (r->file)
		atomic_fetch_sub_explicit(&r->file->slots[r->slot].busy, 1,
					  memory_order_release);
}

/* Drop what a job that was never submitted holds. */
static void unsubmitted(struct rec *r)
{
	slot_release(r);
	if (r->kind == K_CLOSE && r->fd >= 0)
		close(r->fd);
	free(r->buf);
	r->buf = NULL;
}

/*
 * Submit @r.  A failed submit must say EAGAIN (a bounded queue) or
 * ESHUTDOWN (a callback's submit during destroy): no other failure is
 * expected here.
 */
static iop_job *post(struct rec *r)
{
	iop_job *job;
	int err;

	if (!r->future)
		atomic_fetch_add(&cb_outstanding, 1);
	if (r->sub)
		atomic_fetch_add(&r->sub->inflight, 1);
	job = submit_rec(r);
	if (!job) {
		err = errno;
		if (!r->future)
			atomic_fetch_sub(&cb_outstanding, 1);
		if (r->sub)
			atomic_fetch_sub(&r->sub->inflight, 1);
		if (err == EAGAIN && popts.max_queued)
			atomic_fetch_add(&tally.submit_eagain, 1);
		else if (!(err == ESHUTDOWN && atomic_load(&destroying)))
			fail("submit of %s failed: %s", kind_name[r->kind],
			     strerror(err));
		unsubmitted(r);
		return NULL;
	}
	r->submitted = true;
	atomic_store(&r->job, job);
	atomic_fetch_add(&tally.submitted, 1);
	atomic_fetch_add(&epoch.submitted, 1);
	atomic_fetch_add(&tally.by_kind[r->kind], 1);
	atomic_fetch_add(r->future ? &tally.futures : &tally.callbacks, 1);
	return job;
}

/* Offer @r to the threads that cancel (after it is fully set up). */
static void offer(struct rec *r, uint64_t *rng)
{
	unsigned i = (unsigned)(rnd(rng) % RING);

	if (r->future)
		atomic_store(&fut_ring[i], r);
	else
		atomic_store(&cb_ring[i], r);
}

/* ---- Ending: the checks every result goes through. ---- */

static bool cancel_legit(const struct rec *r)
{
	return atomic_load(&r->cancel_asked) || r->after ||
	       (r->group && atomic_load(&r->group->cancel_asked)) ||
	       atomic_load(&destroying);
}

/* Whether @result is the success @r was due; checks its data. */
static bool success(struct rec *r, ssize_t result)
{
	switch (r->kind) {
	case K_READ:
	case K_READV:
		if (result != (ssize_t)r->len)
			return false;
		if (fnv(r->buf, r->len) !=
		    pattern_sum(r->file->id, r->slot, r->gen, r->len)) {
			fail("read of file %u slot %u: checksum differs from "
			     "generation %" PRIu32, r->file->id, r->slot,
			     r->gen);
			return true;	/* counted once, as this failure */
		}
		atomic_fetch_add(&tally.bytes_verified, result);
		return true;
	case K_WRITE:
	case K_WRITEV:
		if (result != (ssize_t)r->len)
			return false;
		atomic_fetch_add(&tally.bytes_written, result);
		return true;
	case K_FSTAT:
	case K_STATAT:
		return result == 0 && r->st.st_size == (off_t)r->expect;
	case K_READFILE:
		if (result != r->expect || !r->data ||
		    ((char *)r->data)[result] != '\0')
			return false;
		if (fnv(r->data, (size_t)result) !=
		    pattern_sum(100, r->slot, 0, (size_t)result))
			fail("readfile %s: checksum differs", r->path);
		atomic_fetch_add(&tally.bytes_verified, result);
		return true;
	case K_LISTDIR:
		if (result != NFIXED || !r->ents)
			return false;
		if (r->flags & IOP_LISTDIR_SORT)
			for (int i = 1; i < NFIXED; i++)
				if (strcmp(r->ents[i - 1].name,
					   r->ents[i].name) >= 0)
					fail("listdir: not sorted");
		return true;
	case K_FALLOCATE:
		return result == 0 || result == -EOPNOTSUPP;
	case K_OPENAT:
		return result >= 0;
	case K_CALL:
		if (r->call == CALL_SPIN)
			return result == 0 ||
			       (result == 1 && cancel_legit(r));
		return result == r->expect;
	default:
		return result == 0;
	}
}

/* Free what the job gave back, close what it opened. */
static void release_outputs(struct rec *r, ssize_t result)
{
	free(r->data);
	r->data = NULL;
	free(r->ents);
	r->ents = NULL;
	free(r->buf);
	r->buf = NULL;
	if (r->kind == K_CLOSE && result != 0 && r->fd >= 0 &&
	    (result == -ECANCELED || result == -ETIMEDOUT))
		close(r->fd);	/* it never ran: still open */
}

/* Count @result by class, for the pool's statistics. */
static void count_result(ssize_t result)
{
	if (result >= 0)
		atomic_fetch_add(&epoch.nonneg, 1);
	else if (result == -ECANCELED)
		atomic_fetch_add(&epoch.cancelled, 1);
	else if (result == -ETIMEDOUT)
		atomic_fetch_add(&epoch.timed_out, 1);
	else
		atomic_fetch_add(&epoch.negative, 1);
}

static void close_opened(struct rec *r, int fd);

static void finish(struct rec *r, ssize_t result)
{
	struct slot *slot = r->file ? &r->file->slots[r->slot] : NULL;
	bool ok = false;

	if (atomic_fetch_add(&r->ended, 1) != 0) {
		fail("%s job ended twice (result %zd)", kind_name[r->kind],
		     result);
		return;
	}
	r->result = result;
	count_result(result);
	if (atomic_load(&r->cancel_zero) && result != -ECANCELED)
		fail("%s: iop_cancel() returned 0, yet it ended with %zd",
		     kind_name[r->kind], result);
	if (result == -ECANCELED) {
		atomic_fetch_add(&tally.cancelled, 1);
		if (atomic_load(&destroying))
			atomic_fetch_add(&tally.destroy_cancelled, 1);
		if (!cancel_legit(r))
			fail("%s ended -ECANCELED, but nothing cancelled it",
			     kind_name[r->kind]);
	} else if (result == -ETIMEDOUT) {
		atomic_fetch_add(&tally.timed_out, 1);
		if (!r->deadline)
			fail("%s ended -ETIMEDOUT without a deadline",
			     kind_name[r->kind]);
	} else if (r->expect_err && result == -r->expect_err) {
		atomic_fetch_add(&tally.failed, 1);
		ok = true;
	} else if (!r->expect_err && success(r, result)) {
		atomic_fetch_add(&tally.succeeded, 1);
		ok = true;
	} else {
		atomic_fetch_add(&tally.bad, 1);
		fail("%s ended with %zd (%s)%s", kind_name[r->kind], result,
		     result < 0 ? strerror((int)-result) : "unexpected value",
		     r->expect_err ? ", expected another error" : "");
	}
	if (slot && (r->kind == K_WRITE || r->kind == K_WRITEV)) {
		if (ok)
			atomic_store(&slot->gen, r->gen);
		else if (result != -ECANCELED && result != -ETIMEDOUT)
			atomic_store(&slot->gen, GEN_UNKNOWN);
	}
	if (r->kind == K_OPENAT && result >= 0)
		close_opened(r, (int)result);
	release_outputs(r, result);
	slot_release(r);
	if (r->group) {		/* members are callback jobs */
		if (result >= 0)
			r->group->ok++;
		else if (result == -ECANCELED)
			r->group->cancelled++;
		else
			r->group->failed++;
	}
	if (r->sub)
		atomic_fetch_sub(&r->sub->inflight, 1);
	if (!r->future)
		atomic_fetch_sub(&cb_outstanding, 1);
}

static void on_done(iop_job *job, ssize_t result, void *arg)
{
	struct rec *r = arg;

	(void)job;
	finish(r, result);
}

/*
 * A descriptor an openat job opened: a callback closes it through the
 * pool (its submit may fail during destroy, or on a full queue), an
 * awaiting thread closes it itself.
 */
static void close_opened(struct rec *r, int fd)
{
	struct rec *c;

	if (r->future) {
		close(fd);
		return;
	}
	c = rec_new(&poller, K_CLOSE, NULL);
	c->fd = fd;
	c->future = false;
	post(c);
}

static void on_group(iop_group *group, const struct iop_group_result *res,
		     void *arg)
{
	struct grec *g = arg;

	(void)group;
	if (atomic_fetch_add(&g->called, 1) != 0) {
		fail("group callback ran twice");
		return;
	}
	atomic_fetch_add(&tally.groups_done, 1);
	atomic_fetch_sub(&groups_outstanding, 1);
	if (res->succeeded + res->failed + res->cancelled != g->members ||
	    res->succeeded != g->ok || res->failed != g->failed ||
	    res->cancelled != g->cancelled)
		fail("group of %u: callback says %u/%u/%u, members' callbacks "
		     "%u/%u/%u (succeeded/failed/cancelled)", g->members,
		     res->succeeded, res->failed, res->cancelled, g->ok,
		     g->failed, g->cancelled);
}

/* ---- Units: the jobs one choice of a submitter makes. ---- */

/* A free slot of @s's file, or -1. */
static int pick_slot(struct sub *s)
{
	for (int tries = 0; tries < 4; tries++) {
		unsigned k = (unsigned)(rnd(&s->m.rng) % NSLOTS);
		struct slot *sl = &s->data.slots[k];

		if (atomic_load_explicit(&sl->busy, memory_order_acquire) ==
		    0 && atomic_load(&sl->gen) != GEN_UNKNOWN)
			return (int)k;
	}
	return -1;
}

static void split_iov(struct rec *r)
{
	size_t a = r->len / 3, b = r->len / 4;

	r->iov[0] = (struct iovec){ r->buf, a };
	r->iov[1] = (struct iovec){ r->buf + a, b };
	r->iov[2] = (struct iovec){ r->buf + a + b, r->len - a - b };
}

static struct rec *slot_rec(struct sub *s, enum kind k, unsigned slot,
			    uint32_t gen, bool future)
{
	struct rec *r = rec_new(&s->m, k, s);

	r->future = future;
	r->file = &s->data;
	r->slot = slot;
	r->gen = gen;
	r->len = s->data.slot_size;
	r->buf = malloc(r->len);
	if (k == K_WRITE || k == K_WRITEV)
		pattern_fill(r->buf, r->len, s->data.id, slot, gen);
	else if (k == K_READ || k == K_READV)
		memset(r->buf, 0xa5, r->len);
	if (k == K_READV || k == K_WRITEV)
		split_iov(r);
	atomic_fetch_add(&s->data.slots[slot].busy, 1);
	return r;
}

/* A job on no slot. */
static struct rec *plain_rec(struct sub *s, enum kind k, bool future)
{
	struct rec *r = rec_new(&s->m, k, s);
	uint64_t *rng = &s->m.rng;
	unsigned c;

	r->future = future;
	switch (k) {
	case K_FSYNC:
	case K_FDATASYNC:
		r->fd = s->data.fd;
		break;
	case K_FSTAT:
		r->fd = s->data.fd;
		r->expect = (ssize_t)(NSLOTS * s->data.slot_size);
		break;
	case K_STATAT:
		if (chance(rng, 20)) {
			snprintf(r->path, sizeof(r->path), "absent-%u", s->id);
			r->expect_err = ENOENT;
		} else {
			snprintf(r->path, sizeof(r->path), "%s", s->data.name);
			r->expect = (ssize_t)(NSLOTS * s->data.slot_size);
		}
		break;
	case K_READFILE:
		c = (unsigned)(rnd(rng) % NCONST);
		if (chance(rng, 15)) {
			snprintf(r->path, sizeof(r->path), "absent-%u", c);
			r->expect_err = ENOENT;
		} else {
			snprintf(r->path, sizeof(r->path), "const-%u", c);
			r->slot = c;
			r->expect = (ssize_t)const_size[c];
		}
		break;
	case K_LISTDIR:
		snprintf(r->path, sizeof(r->path), "fixed");
		r->flags = chance(rng, 50) ? IOP_LISTDIR_SORT : 0;
		break;
	case K_FTRUNCATE:
		r->fd = s->scratch;
		r->len = rnd(rng) % 65536;
		break;
	case K_FALLOCATE:
		r->fd = s->scratch;
		r->gen = (uint32_t)(rnd(rng) % 65536);	/* the offset */
		r->len = rnd(rng) % 65536 + 1;
		r->flags = chance(rng, 50) ? FALLOC_FL_KEEP_SIZE : 0;
		break;
	case K_OPENAT:
		if (chance(rng, 15)) {
			snprintf(r->path, sizeof(r->path), "absent-%u", s->id);
			r->flags = O_RDONLY;
			r->expect_err = ENOENT;
		} else if (chance(rng, 50)) {
			snprintf(r->path, sizeof(r->path), "%s", s->data.name);
			r->flags = O_RDONLY;
		} else {
			snprintf(r->path, sizeof(r->path), "new-%u-%u", s->id,
				 s->serial++ % 16);
			r->flags = O_RDWR | O_CREAT;
		}
		break;
	case K_CLOSE:
		r->fd = dup(s->scratch);
		if (r->fd < 0)
			fail("dup: %s", strerror(errno));
		break;
	case K_UNLINKAT:	/* alone: a name that is not there */
		snprintf(r->path, sizeof(r->path), "absent-%u", s->id);
		r->expect_err = ENOENT;
		break;
	case K_MKDIRAT:		/* alone: left for the cleanup */
		snprintf(r->path, sizeof(r->path), "m-%u-%u", s->id,
			 s->serial++);
		break;
	case K_READ:		/* on no file: a bad descriptor */
		r->fd = -1;
		r->len = 16;
		r->buf = malloc(16);
		r->expect_err = EBADF;
		break;
	case K_CALL:
		r->call = (unsigned char)(rnd(rng) % 4);
		r->len = rnd(rng) % 1000;
		if (r->call == CALL_SUM) {
			r->buf = malloc(CALL_BYTES);
			for (int i = 0; i < CALL_BYTES; i++)
				r->buf[i] = (unsigned char)rnd(rng);
			r->expect = (ssize_t)(fnv(r->buf, CALL_BYTES) &
					      0x7fffffff);
		} else if (r->call == CALL_FAIL) {
			r->expect_err = EIO;
		}
		break;
	default:
		break;
	}
	return r;
}

/* The jobs of one unit, to set up while held. */
struct unit {
	struct rec *r[3];
	iop_job *job[3];
	unsigned n;
	bool chain;
};

/* A kind of single job, for a unit of one. */
static enum kind pick_plain(uint64_t *rng)
{
	static const enum kind k[] = {
		K_FSTAT, K_STATAT, K_READFILE, K_LISTDIR, K_FTRUNCATE,
		K_FALLOCATE, K_OPENAT, K_CLOSE, K_UNLINKAT, K_MKDIRAT, K_READ,
		K_CALL, K_CALL, K_CALL, K_FSYNC, K_FDATASYNC,
	};

	return k[rnd(rng) % (sizeof(k) / sizeof(k[0]))];
}

/*
 * Make and submit one unit: a read or a write on a slot, a chain (write,
 * fsync, read back; or mkdir, rename, rmdir), or a single other job.
 * Chains only inside a batch (@held), and not on a pool that may run a
 * submit inline instead of holding it.  @cb_only: callback jobs only
 * (group members).
 */
static void make_unit(struct sub *s, struct unit *u, bool held, bool cb_only)
{
	uint64_t *rng = &s->m.rng;
	bool can_chain = held && popts.overflow != IOP_OVERFLOW_INLINE;
	unsigned pick = (unsigned)(rnd(rng) % 100);
	int slot;
	uint32_t gen;

	u->n = 0;
	u->chain = false;
#define FUT() (!cb_only && chance(rng, 40))
	if (pick < 35 && (slot = pick_slot(s)) >= 0) {
		bool w = chance(rng, 50);
		bool v = chance(rng, 30);
		enum kind k = w ? (v ? K_WRITEV : K_WRITE)
				: (v ? K_READV : K_READ);

		gen = w ? ++s->next_gen
			: atomic_load(&s->data.slots[slot].gen);
		u->r[u->n++] = slot_rec(s, k, (unsigned)slot, gen, FUT());
	} else if (pick < 55 && can_chain && (slot = pick_slot(s)) >= 0) {
		gen = ++s->next_gen;
		u->chain = true;
		u->r[u->n++] = slot_rec(s, chance(rng, 50) ? K_WRITE
							    : K_WRITEV,
					(unsigned)slot, gen, FUT());
		u->r[u->n++] = slot_rec(s, chance(rng, 50) ? K_FSYNC
							    : K_FDATASYNC,
					(unsigned)slot, gen, FUT());
		u->r[u->n++] = slot_rec(s, chance(rng, 50) ? K_READ : K_READV,
					(unsigned)slot, gen, FUT());
		/* fsync takes the slot's descriptor, not its bytes */
		free(u->r[1]->buf);
		u->r[1]->buf = NULL;
	} else if (pick < 62 && can_chain) {
		struct rec *a, *b, *c;

		u->chain = true;
		a = u->r[u->n++] = plain_rec(s, K_MKDIRAT, FUT());
		b = u->r[u->n++] = rec_new(&s->m, K_RENAMEAT, s);
		c = u->r[u->n++] = rec_new(&s->m, K_UNLINKAT, s);
		b->future = FUT();
		c->future = FUT();
		snprintf(b->path, sizeof(b->path), "%s", a->path);
		snprintf(b->path2, sizeof(b->path2), "e-%u-%u", s->id,
			 s->serial++);
		snprintf(c->path, sizeof(c->path), "%s", b->path2);
		c->flags = AT_REMOVEDIR;
	} else {
		u->r[u->n++] = plain_rec(s, pick_plain(rng), FUT());
	}
#undef FUT
	for (unsigned i = 0; i < u->n; i++)
		u->job[i] = NULL;
}

/*
 * Submit the unit's jobs and link a chain.  A chain with a member that
 * did not submit is cancelled whole (its held members end -ECANCELED),
 * so that a read never runs without the write it checks.
 */
static unsigned submit_unit(struct sub *s, struct unit *u)
{
	unsigned ok = 0, i;
	bool broken = false;
	int ret;

	for (i = 0; i < u->n; i++) {
		if (broken) {
			unsubmitted(u->r[i]);
			continue;
		}
		u->job[i] = post(u->r[i]);
		if (!u->job[i]) {
			broken = u->chain;
			continue;
		}
		ok++;
		if (u->chain && i > 0 && u->job[i - 1]) {
			ret = iop_link(u->job[i - 1], u->job[i]);
			if (ret != 0)
				fail("iop_link of held jobs: %d", ret);
			else
				u->r[i]->after = true;
		}
	}
	if (broken) {
		for (i = 0; i < u->n; i++) {
			if (!u->job[i])
				continue;
			atomic_store(&u->r[i]->cancel_asked, true);
			ret = iop_cancel(u->job[i]);
			if (ret != 0)
				fail("cancel of a held job: %d", ret);
			else
				atomic_store(&u->r[i]->cancel_zero, true);
		}
	}
	if (u->chain && ok)
		atomic_fetch_add(&tally.chains, 1);
	return ok;
}

/* Settings that only held jobs take. */
static void tune_held(struct sub *s, struct rec *r, iop_job *job)
{
	uint64_t *rng = &s->m.rng;
	int ret;

	if (chance(rng, 30)) {
		ret = iop_job_set_priority(job, (int)(rnd(rng) % 9) - 4);
		if (ret)
			fail("iop_job_set_priority: %d", ret);
	}
	if (nlanes && chance(rng, 20)) {
		ret = iop_job_set_lane(job, lanes[rnd(rng) % nlanes]);
		if (ret)
			fail("iop_job_set_lane: %d", ret);
		else
			r->lane = true;
	}
	if (chance(rng, 10) && !(r->lane && skip_lane_deadlines)) {
		ret = iop_job_set_deadline(job, (int)(rnd(rng) % 4));
		if (ret)
			fail("iop_job_set_deadline: %d", ret);
		else
			r->deadline = true;
	}
}

static void keep_future(struct sub *s, struct rec *r)
{
	if (s->nfuts == s->capfuts) {
		s->capfuts = s->capfuts ? 2 * s->capfuts : 64;
		s->futs = realloc(s->futs, s->capfuts * sizeof(*s->futs));
	}
	s->futs[s->nfuts++] = r;
}

/* After a unit went in: keep its futures, offer its jobs to cancellers. */
static void settle_unit(struct sub *s, struct unit *u)
{
	for (unsigned i = 0; i < u->n; i++) {
		if (!u->job[i])
			continue;
		if (u->r[i]->future)
			keep_future(s, u->r[i]);
		if (chance(&s->m.rng, 30))
			offer(u->r[i], &s->m.rng);
	}
}

/* One batch: units held, set up, some cancelled, handed over at once. */
static void do_batch(struct sub *s)
{
	uint64_t *rng = &s->m.rng;
	unsigned n = 1 + (unsigned)(rnd(rng) % 6), held = 0, i, j;
	struct grec *g = NULL;
	struct unit u[6];
	iop_job *fut = NULL;
	ssize_t res;
	int ret;

	if (popts.overflow != IOP_OVERFLOW_INLINE && chance(rng, 25)) {
		g = calloc(1, sizeof(*g));
		g->next = s->m.grecs;
		s->m.grecs = g;
		g->group = iop_group_new(pool, on_group, g);
		if (!g->group) {
			fail("iop_group_new: %s", strerror(errno));
			g = NULL;
		} else {
			atomic_fetch_add(&groups_outstanding, 1);
			atomic_fetch_add(&tally.groups, 1);
		}
	}
	ret = iop_batch_begin(pool);
	if (ret)
		fail("iop_batch_begin: %d", ret);
	atomic_fetch_add(&tally.batches, 1);
	for (i = 0; i < n; i++) {
		make_unit(s, &u[i], true, g != NULL);
		held += submit_unit(s, &u[i]);
		for (j = 0; j < u[i].n; j++) {
			if (!u[i].job[j])
				continue;
			if (popts.overflow != IOP_OVERFLOW_INLINE)
				tune_held(s, u[i].r[j], u[i].job[j]);
			if (g) {
				ret = iop_group_add(g->group, u[i].job[j]);
				if (ret)
					fail("iop_group_add: %d", ret);
				u[i].r[j]->group = g;
				g->members++;
			}
			if (u[i].r[j]->future && !fut)
				fut = u[i].job[j];
			if (popts.overflow != IOP_OVERFLOW_INLINE &&
			    chance(rng, 5)) {
				atomic_store(&u[i].r[j]->cancel_asked, true);
				ret = iop_cancel(u[i].job[j]);
				atomic_fetch_add(&tally.held_cancels, 1);
				if (ret)
					fail("cancel of a held job: %d", ret);
				else
					atomic_store(&u[i].r[j]->cancel_zero,
						     true);
			}
		}
	}
	/* A future held in one's own batch cannot be awaited. */
	if (fut && popts.overflow != IOP_OVERFLOW_INLINE && chance(rng, 20)) {
		if (iop_await(fut) != -EDEADLK ||
		    iop_await_timeout(fut, 0, &res) != -EDEADLK)
			fail("await of a held future did not say EDEADLK");
		atomic_fetch_add(&tally.edeadlk, 1);
	}
	if (g && chance(rng, 10)) {
		atomic_store(&g->cancel_asked, true);
		if (iop_group_cancel(g->group))
			fail("iop_group_cancel failed");
		atomic_fetch_add(&tally.group_cancels, 1);
	}
	ret = iop_batch_end(pool);
	if (ret < 0 || (popts.overflow != IOP_OVERFLOW_INLINE &&
			ret != (int)held))
		fail("iop_batch_end: %d, %u jobs held", ret, held);
	for (i = 0; i < n; i++)
		settle_unit(s, &u[i]);
	if (g) {
		if (iop_group_seal(g->group))
			fail("iop_group_seal failed");
		/* Valid for the poller until the callback starts. */
		atomic_store(&g_ring[rnd(rng) % RING], g);
	}
}

/*
 * Claim a future for awaiting: wait while a canceller works on it, then
 * keep the cancellers off it.
 */
static void claim(struct rec *r)
{
	int want = 0;

	while (!atomic_compare_exchange_weak(&r->cstate, &want, 2)) {
		want = 0;
		sched_yield();
	}
}

/* Await @job for up to lost_ms(), noting how long it took. */
static int timed_await(iop_job *job, ssize_t *res)
{
	int64_t t0 = now_ns();
	int ret = iop_await_timeout(job, lost_ms(), res);

	note_max(&tally.slowest_await, now_ns() - t0);
	return ret;
}

/* Await up to @max futures: whole, or with a short limit. */
static void await_some(struct sub *s, size_t max, bool all)
{
	size_t i = 0;
	ssize_t res;
	int ret;

	while (i < s->nfuts && (all || max-- > 0)) {
		struct rec *r = s->futs[i];
		iop_job *job = atomic_load(&r->job);

		claim(r);
		if (!all && chance(&s->m.rng, 40)) {
			ret = iop_await_timeout(job, (int)(rnd(&s->m.rng) % 2),
						&res);
			if (ret == -ETIMEDOUT) {
				atomic_fetch_add(&tally.await_timeouts, 1);
				atomic_store(&r->cstate, 0);
				i++;
				continue;
			}
			if (ret != 0) {
				/* Not awaitable: drop it, reported. */
				fail("iop_await_timeout: %d", ret);
				s->futs[i] = s->futs[--s->nfuts];
				continue;
			}
		} else if (iop_job_state(job) == IOP_DONE) {
			res = iop_await(job);
		} else if (timed_await(job, &res) != 0) {
			/* Left to destroy, which releases it. */
			fail("a %s future did not end in %d ms (in a lane: "
			     "%s, deadline: %s; %s pool, %u lanes)",
			     kind_name[r->kind], lost_ms(),
			     r->lane ? "yes" : "no", r->deadline ? "yes" : "no",
			     popts.flags & IOP_POOL_INLINE ? "an inline" :
			     "a threaded", nlanes);
			r->lost = true;
			s->futs[i] = s->futs[--s->nfuts];
			continue;
		}
		finish(r, res);
		s->futs[i] = s->futs[--s->nfuts];
	}
}

static void *submitter_main(void *arg)
{
	struct sub *s = arg;
	struct unit u;

	while (!atomic_load(&stop)) {
		unsigned pick = (unsigned)(rnd(&s->m.rng) % 100);

		if (atomic_load(&s->inflight) >= MAX_INFLIGHT) {
			if (s->nfuts)
				await_some(s, 8, false);
			else
				nap_us(100);
		} else if (pick < 40) {
			do_batch(s);
		} else if (pick < 85) {
			make_unit(s, &u, false, false);
			submit_unit(s, &u);
			settle_unit(s, &u);
		} else {
			await_some(s, 4, false);
		}
	}
	/* Slow callback jobs, for a destroy to find queued or running. */
	for (int i = 0; s->burst && i < 16; i++) {
		struct rec *r = plain_rec(s, K_CALL, false);

		r->call = CALL_SLEEP;
		r->expect_err = 0;
		r->expect = 0;
		free(r->buf);
		r->buf = NULL;
		post(r);
	}
	await_some(s, 0, true);
	atomic_fetch_add(&subs_done, 1);
	return NULL;
}

/* ---- Cancellers: futures from other threads, and run-time changes. ---- */

static void count_cancel(int ret)
{
	atomic_fetch_add(&tally.cancels, 1);
	if (ret == 0)
		atomic_fetch_add(&tally.cancel_ret[0], 1);
	else if (ret == -EBUSY)
		atomic_fetch_add(&tally.cancel_ret[1], 1);
	else if (ret == -EALREADY)
		atomic_fetch_add(&tally.cancel_ret[2], 1);
	else
		fail("iop_cancel returned %d", ret);
}

static void *canceller_main(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 7919 + 17;
	unsigned id = (unsigned)(uintptr_t)arg;
	struct iop_stats st;
	int ret;

	while (!atomic_load(&stop) || atomic_load(&subs_done) < SUBMITTERS) {
		struct rec *r = atomic_load(&fut_ring[rnd(&rng) % RING]);
		int want = 0;

		if (r && atomic_compare_exchange_strong(&r->cstate, &want, 1)) {
			atomic_store(&r->cancel_asked, true);
			ret = iop_cancel(atomic_load(&r->job));
			count_cancel(ret);
			if (ret == 0)
				atomic_store(&r->cancel_zero, true);
			atomic_store(&r->cstate, 0);
		}
		if (id == 0 && chance(&rng, 2) &&
		    !(popts.flags & IOP_POOL_INLINE)) {
			unsigned max = 1 + (unsigned)(rnd(&rng) % 8);
			unsigned min = (unsigned)(rnd(&rng) % (max + 1)) / 2;

			ret = iop_pool_set_threads(pool, min, max);
			if (ret)
				fail("iop_pool_set_threads(%u, %u): %d", min,
				     max, ret);
			atomic_fetch_add(&tally.set_threads, 1);
		}
		if (id == 1 && nlanes && chance(&rng, 2)) {
			ret = iop_lane_set_cap(lanes[rnd(&rng) % nlanes],
					       1 + (unsigned)(rnd(&rng) % 3));
			if (ret)
				fail("iop_lane_set_cap: %d", ret);
			atomic_fetch_add(&tally.lane_caps, 1);
		}
		if (chance(&rng, 5)) {
			st.size = sizeof(st);
			if (iop_pool_stats(pool, &st))
				fail("iop_pool_stats failed");
		}
		nap_us(20 + (long)(rnd(&rng) % 100));
	}
	return NULL;
}

/* ---- The polling thread. ---- */

/* Cancel a callback job or a group whose callback has not run yet. */
static void poller_cancels(void)
{
	uint64_t *rng = &poller.rng;
	struct rec *r;
	struct grec *g;
	int ret;

	if (chance(rng, 30)) {
		r = atomic_load(&cb_ring[rnd(rng) % RING]);
		/* Callbacks run on this thread only: ended 0 means the
		 * handle is still valid. */
		if (r && atomic_load(&r->ended) == 0) {
			atomic_store(&r->cancel_asked, true);
			ret = iop_cancel(atomic_load(&r->job));
			count_cancel(ret);
			if (ret == 0)
				atomic_store(&r->cancel_zero, true);
		}
	}
	if (chance(rng, 3)) {
		g = atomic_load(&g_ring[rnd(rng) % RING]);
		if (g && atomic_load(&g->called) == 0) {
			atomic_store(&g->cancel_asked, true);
			if (iop_group_cancel(g->group))
				fail("iop_group_cancel failed");
			atomic_fetch_add(&tally.group_cancels, 1);
		}
	}
}

/* One round of running callbacks, by one of the ways a program would. */
static void poll_once(int ms)
{
	struct pollfd p = { .fd = iop_pool_fd(pool), .events = POLLIN };
	unsigned pick = (unsigned)(rnd(&poller.rng) % 10);
	int n;

	if (pick < 6) {
		n = iop_wait(pool, ms);
	} else if (pick < 8) {
		if (poll(&p, 1, ms) < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		n = iop_poll(pool);
	} else {
		n = iop_poll_budget(pool, 1 + (unsigned)(rnd(&poller.rng) %
							 16), 200);
		if (n == 0)
			n = iop_wait(pool, ms);
	}
	if (n < 0)
		fail("polling returned %d", n);
}

/* ---- Pools. ---- */

static void random_options(uint64_t *rng)
{
	memset(&popts, 0, sizeof(popts));
	if (chance(rng, 12)) {
		popts.flags = IOP_POOL_INLINE;
		tally.inline_pools++;
	} else {
		popts.threads = 1 + (unsigned)(rnd(rng) % 8);
		popts.min_threads = (unsigned)(rnd(rng) %
					       (popts.threads + 1)) / 2;
		popts.idle_timeout_ms = 1 + (unsigned)(rnd(rng) % 30);
		if (chance(rng, 30)) {
			popts.max_queued = 16 + (unsigned)(rnd(rng) % 64);
			popts.overflow = (int)(rnd(rng) % 3);
			popts.overflow_timeout_ms =
				chance(rng, 50) ? 0 : 20;
			tally.bounded_pools++;
		}
		if (chance(rng, 30))
			popts.stack_size = (size_t)64 << 10;
	}
	if (chance(rng, 20))
		popts.flags |= IOP_POOL_NO_TIMING;
	if (chance(rng, 20))
		popts.long_running_ms = 1;
}

/* The pool's statistics against what the callbacks and awaits saw. */
static void check_stats(void)
{
	struct iop_stats st = { .size = sizeof(st) };

	if (iop_pool_stats(pool, &st)) {
		fail("iop_pool_stats failed");
		return;
	}
	if (st.submitted != (uint64_t)atomic_load(&epoch.submitted) ||
	    st.completed != (uint64_t)atomic_load(&epoch.nonneg) ||
	    st.cancelled != (uint64_t)atomic_load(&epoch.cancelled) ||
	    st.timed_out != (uint64_t)atomic_load(&epoch.timed_out) ||
	    st.failed != (uint64_t)atomic_load(&epoch.negative) ||
	    st.queued != 0 || st.running != 0)
		fail("pool statistics: submitted %" PRIu64 " completed %"
		     PRIu64 " failed %" PRIu64 " cancelled %" PRIu64
		     " timed out %" PRIu64 " queued %" PRIu64 " running %"
		     PRIu64 "; seen: submitted %ld, >= 0 %ld, < 0 %ld, "
		     "cancelled %ld, timed out %ld", st.submitted,
		     st.completed, st.failed, st.cancelled, st.timed_out,
		     st.queued, st.running, atomic_load(&epoch.submitted),
		     atomic_load(&epoch.nonneg), atomic_load(&epoch.negative),
		     atomic_load(&epoch.cancelled),
		     atomic_load(&epoch.timed_out));
}

/* Run callbacks until every callback job and group has had its own. */
static void drain(void)
{
	int64_t idle_since = now_ns();
	long last = -1;

	while (atomic_load(&cb_outstanding) > 0 ||
	       atomic_load(&groups_outstanding) > 0) {
		long left = atomic_load(&cb_outstanding) +
			    atomic_load(&groups_outstanding);

		if (left != last) {
			last = left;
			idle_since = now_ns();
		} else if (now_ns() - idle_since > LOST_MS * 1000000ll) {
			fail("%ld callbacks (jobs and groups) never came",
			     left);
			return;
		}
		poll_once(10);
	}
}

/* Each job ended exactly once; free what the pool's jobs used. */
static void check_and_free(struct maker *m)
{
	struct rec *r, *rn;
	struct grec *g, *gn;

	for (r = m->recs; r; r = rn) {
		rn = r->next;
		if (r->submitted && !r->lost && atomic_load(&r->ended) != 1)
			fail("%s %s ended %d times", kind_name[r->kind],
			     r->future ? "future" : "callback job",
			     atomic_load(&r->ended));
		free(r->buf);
		free(r->data);
		free(r->ents);
		free(r);
	}
	m->recs = NULL;
	for (g = m->grecs; g; g = gn) {
		gn = g->next;
		if (g->group && atomic_load(&g->called) != 1)
			fail("group callback ran %d times",
			     atomic_load(&g->called));
		free(g);
	}
	m->grecs = NULL;
}

/* Every slot holds what its last successful write put there. */
static void verify_files(void)
{
	for (unsigned k = 0; k < SUBMITTERS; k++) {
		struct dfile *f = &subs[k].data;
		unsigned char *buf = malloc(f->slot_size);

		for (unsigned i = 0; i < NSLOTS; i++) {
			uint32_t gen = atomic_load(&f->slots[i].gen);
			ssize_t n;

			if (atomic_load(&f->slots[i].busy) != 0)
				fail("file %u slot %u: %d jobs still on it", k,
				     i, atomic_load(&f->slots[i].busy));
			if (gen == GEN_UNKNOWN)
				continue;
			n = pread(f->fd, buf, f->slot_size,
				  (off_t)(i * f->slot_size));
			if (n != (ssize_t)f->slot_size ||
			    fnv(buf, f->slot_size) !=
			    pattern_sum(f->id, i, gen, f->slot_size))
				fail("file %u slot %u does not hold "
				     "generation %" PRIu32, k, i, gen);
			tally.verified_slots++;
		}
		free(buf);
	}
}

/* Remove the directories jobs made ("m-...", "e-..."): one pool's worth,
 * so that the directory never grows into a slow one. */
static void tidy_dir(void)
{
	int fd = openat(dirfd_tmp, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		fail("tidying the directory: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "m-", 2) == 0 ||
		    strncmp(e->d_name, "e-", 2) == 0)
			unlinkat(dirfd_tmp, e->d_name, AT_REMOVEDIR);
	closedir(d);
}

static void run_epoch(uint64_t *rng, int64_t epoch_ns, struct fdset *fds)
{
	pthread_t cthreads[CANCELLERS];
	bool busy_destroy = chance(rng, 50);
	int64_t end;
	unsigned i;

	int64_t t0 = now_ns();

	random_options(rng);
	pool = iop_pool_new(&popts);
	if (!pool) {
		fail("iop_pool_new: %s", strerror(errno));
		exit(1);
	}
	nlanes = (unsigned)(rnd(rng) % 3);
	for (i = 0; i < nlanes; i++) {
		lanes[i] = iop_lane_new(pool, i ? "slow" : "fs",
					1 + (unsigned)(rnd(rng) % 3));
		if (!lanes[i])
			fail("iop_lane_new: %s", strerror(errno));
	}
	memset(&epoch, 0, sizeof(epoch));
	memset(cb_ring, 0, sizeof(cb_ring));
	memset(fut_ring, 0, sizeof(fut_ring));
	memset(g_ring, 0, sizeof(g_ring));
	atomic_store(&stop, false);
	atomic_store(&subs_done, 0);
	for (i = 0; i < SUBMITTERS; i++) {
		subs[i].burst = busy_destroy;
		pthread_create(&subs[i].thread, NULL, submitter_main,
			       &subs[i]);
	}
	for (i = 0; i < CANCELLERS; i++)
		pthread_create(&cthreads[i], NULL, canceller_main,
			       (void *)(uintptr_t)i);

	end = now_ns() + epoch_ns;
	while (now_ns() < end) {
		poll_once(2);
		poller_cancels();
	}
	atomic_store(&stop, true);
	/* Submitters await their futures before they leave; keep polling,
	 * since a full bounded queue may wait for callbacks' submits. */
	while (atomic_load(&subs_done) < SUBMITTERS)
		poll_once(1);
	for (i = 0; i < SUBMITTERS; i++)
		pthread_join(subs[i].thread, NULL);
	for (i = 0; i < CANCELLERS; i++)
		pthread_join(cthreads[i], NULL);

	if (busy_destroy) {
		/* Queued jobs end -ECANCELED, running ones finish, and every
		 * callback still due runs in here. */
		atomic_store(&destroying, true);
		iop_pool_destroy(pool);
		atomic_store(&destroying, false);
		tally.destroys_busy++;
		if (atomic_load(&cb_outstanding) ||
		    atomic_load(&groups_outstanding))
			fail("destroy returned with %ld callbacks and %ld "
			     "group callbacks not run",
			     atomic_load(&cb_outstanding),
			     atomic_load(&groups_outstanding));
	} else {
		int64_t td = now_ns();

		drain();
		if (now_ns() - td > tally.slowest_drain)
			tally.slowest_drain = now_ns() - td;
		check_stats();
		atomic_store(&destroying, true);
		iop_pool_destroy(pool);
		atomic_store(&destroying, false);
		tally.destroys_drained++;
	}
	pool = NULL;
	for (i = 0; i < SUBMITTERS; i++) {
		check_and_free(&subs[i].m);
		free(subs[i].futs);
		subs[i].futs = NULL;
		subs[i].nfuts = subs[i].capfuts = 0;
	}
	check_and_free(&poller);
	verify_files();
	tidy_dir();
	fd_compare(fds, "after a pool");
	tally.epochs++;
	if (now_ns() - t0 > tally.slowest_epoch) {
		tally.slowest_epoch = now_ns() - t0;
		tally.slowest_opts = popts;
	}
}

/* ---- Setup and cleanup of the directory. ---- */

static void must(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "stress: setup: %s: %s\n", what,
			strerror(errno));
		exit(99);
	}
}

static void write_all(int fd, const void *buf, size_t len)
{
	must(pwrite(fd, buf, len, 0) == (ssize_t)len, "pwrite");
}

static void setup(uint64_t seed)
{
	static const size_t sizes[] = { 512, 4096, 12288, 16384 };
	const char *t = getenv("TMPDIR");
	unsigned char *buf;
	int fd;

	snprintf(tmpdir, sizeof(tmpdir), "%s/iopool-stress-XXXXXX",
		 t && *t ? t : "/tmp");
	must(mkdtemp(tmpdir) != NULL, "mkdtemp");
	dirfd_tmp = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	must(dirfd_tmp >= 0, "open the directory");
	for (unsigned k = 0; k < SUBMITTERS; k++) {
		struct sub *s = &subs[k];
		struct dfile *f = &s->data;

		s->id = k;
		s->m.rng = seed * 1000003 + k + 1;
		f->id = k;
		f->slot_size = sizes[k % 4];
		snprintf(f->name, sizeof(f->name), "data-%u", k);
		f->fd = openat(dirfd_tmp, f->name,
			       O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		must(f->fd >= 0, "open a data file");
		buf = malloc(f->slot_size);
		for (unsigned i = 0; i < NSLOTS; i++) {
			pattern_fill(buf, f->slot_size, k, i, 0);
			must(pwrite(f->fd, buf, f->slot_size,
				    (off_t)(i * f->slot_size)) ==
			     (ssize_t)f->slot_size, "pwrite");
		}
		free(buf);
		s->scratch = openat(dirfd_tmp, "scratch",
				    O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		must(s->scratch >= 0, "open the scratch file");
	}
	for (unsigned c = 0; c < NCONST; c++) {
		char name[32];

		snprintf(name, sizeof(name), "const-%u", c);
		fd = openat(dirfd_tmp, name, O_RDWR | O_CREAT | O_CLOEXEC,
			    0600);
		must(fd >= 0, "open a readfile file");
		buf = malloc(const_size[c] + 1);
		pattern_fill(buf, const_size[c], 100, c, 0);
		write_all(fd, buf, const_size[c]);
		free(buf);
		close(fd);
	}
	must(mkdirat(dirfd_tmp, "fixed", 0700) == 0, "mkdir fixed");
	for (unsigned i = 0; i < NFIXED; i++) {
		char name[32];

		snprintf(name, sizeof(name), "fixed/entry-%u", NFIXED - i);
		fd = openat(dirfd_tmp, name, O_WRONLY | O_CREAT | O_CLOEXEC,
			    0600);
		must(fd >= 0, "create an entry");
		close(fd);
	}
	poller.rng = seed * 31 + 7;
}

/* Remove @name under @dirfd and everything in it. */
static void remove_tree(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	if (fd < 0) {
		unlinkat(dirfd, name, 0);
		return;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (e->d_type == DT_DIR)
			remove_tree(fd, e->d_name);
		else
			unlinkat(fd, e->d_name, 0);
	}
	closedir(d);
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

static void cleanup(void)
{
	for (unsigned k = 0; k < SUBMITTERS; k++) {
		close(subs[k].data.fd);
		close(subs[k].scratch);
	}
	close(dirfd_tmp);
	remove_tree(AT_FDCWD, tmpdir);
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v && *v ? strtol(v, NULL, 10) : def;
}

static void report(double secs, uint64_t seed)
{
	printf("stress: seed %" PRIu64 ", %.1f s, %ld pools (%ld destroyed "
	       "busy, %ld drained; %ld inline, %ld with a bounded queue)\n",
	       seed, secs, tally.epochs, tally.destroys_busy,
	       tally.destroys_drained, tally.inline_pools,
	       tally.bounded_pools);
	printf("stress: jobs %ld (callbacks %ld, futures %ld): succeeded %ld, "
	       "failed as meant %ld, cancelled %ld (%ld by destroy), timed "
	       "out %ld, wrong %ld\n", atomic_load(&tally.submitted),
	       atomic_load(&tally.callbacks), atomic_load(&tally.futures),
	       atomic_load(&tally.succeeded), atomic_load(&tally.failed),
	       atomic_load(&tally.cancelled),
	       atomic_load(&tally.destroy_cancelled),
	       atomic_load(&tally.timed_out), atomic_load(&tally.bad));
	printf("stress: by op:");
	for (int k = 0; k < K_NKINDS; k++)
		printf(" %s %ld", kind_name[k],
		       atomic_load(&tally.by_kind[k]));
	printf("\nstress: cancels %ld from 3 threads (0: %ld, -EBUSY: %ld, "
	       "-EALREADY: %ld), held cancels %ld, group cancels %ld\n",
	       atomic_load(&tally.cancels), atomic_load(&tally.cancel_ret[0]),
	       atomic_load(&tally.cancel_ret[1]),
	       atomic_load(&tally.cancel_ret[2]),
	       atomic_load(&tally.held_cancels),
	       atomic_load(&tally.group_cancels));
	printf("stress: batches %ld, chains %ld, groups %ld (callbacks %ld), "
	       "EDEADLK awaits %ld, await timeouts %ld, set_threads %ld, "
	       "lane caps %ld, submits refused EAGAIN %ld\n",
	       atomic_load(&tally.batches), atomic_load(&tally.chains),
	       atomic_load(&tally.groups), atomic_load(&tally.groups_done),
	       atomic_load(&tally.edeadlk),
	       atomic_load(&tally.await_timeouts),
	       atomic_load(&tally.set_threads), atomic_load(&tally.lane_caps),
	       atomic_load(&tally.submit_eagain));
	printf("stress: slowest: a pool's life %.2f s (threads %u, max_queued "
	       "%u, overflow %d, flags %#x), an await %.1f ms, a drain "
	       "%.1f ms\n", (double)tally.slowest_epoch / 1e9,
	       tally.slowest_opts.threads, tally.slowest_opts.max_queued,
	       tally.slowest_opts.overflow, tally.slowest_opts.flags,
	       (double)atomic_load(&tally.slowest_await) / 1e6,
	       (double)tally.slowest_drain / 1e6);
	printf("stress: bytes written %ld, read back and verified %ld, slots "
	       "verified after pools %ld\n",
	       atomic_load(&tally.bytes_written),
	       atomic_load(&tally.bytes_verified), tally.verified_slots);
}

int main(void)
{
	double secs = (double)env_long("STRESS_SECONDS", 3);
	long max_jobs = env_long("STRESS_JOBS", 0);
	int64_t epoch_ns = env_long("STRESS_EPOCH_MS", 250) * 1000000;
	uint64_t seed = (uint64_t)env_long("STRESS_SEED", 1);
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
	static struct fdset before, during;
	int64_t start, end;
	long total;

	skip_lane_deadlines = getenv("STRESS_SKIP") &&
			      strstr(getenv("STRESS_SKIP"), "lane-deadline");
	if (!fd_snapshot(&before)) {
		printf("SKIP: no /proc/self/fd\n");
		return 77;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	setup(seed);
	fd_snapshot(&during);
	start = now_ns();
	end = start + (int64_t)(secs * 1e9);
	do {
		run_epoch(&rng, epoch_ns, &during);
		total = atomic_load(&tally.submitted);
	} while (now_ns() < end && !(max_jobs > 0 && total >= max_jobs) &&
		 atomic_load(&failures) == 0);
	cleanup();
	fd_compare(&before, "at the end");

	total = atomic_load(&tally.submitted);
	if (total != atomic_load(&tally.succeeded) +
	    atomic_load(&tally.failed) + atomic_load(&tally.cancelled) +
	    atomic_load(&tally.timed_out) + atomic_load(&tally.bad))
		fail("submitted %ld != succeeded + failed + cancelled + timed "
		     "out + wrong", total);
	report((double)(now_ns() - start) / 1e9, seed);
	if (atomic_load(&failures)) {
		printf("stress: FAILED (%ld failures)\n",
		       atomic_load(&failures));
		return 1;
	}
	printf("stress: OK: nothing lost, doubled, corrupted or left open\n");
	return 0;
}
