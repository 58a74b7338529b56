/*
 * Suite "faults": allocation, thread creation and the pool descriptor
 * (eventfd, or the pipe where the pool uses one) failing, with
 * the library's sources linked into this program and its calls redirected
 * by the linker (-Wl,--wrap=malloc,...: --wrap does not reach calls inside
 * a shared library, so this test cannot use libiopool.so).
 *
 * - alloc: the Nth allocation call fails (malloc, calloc, realloc or
 *   strdup), for N = 1, 2, ... until a whole scenario runs without an
 *   injected failure; then the same with every call from the Nth on
 *   failing.  The scenario touches every allocation site: pool creation,
 *   job slabs, worker threads, paths, extras (links, lanes, deadlines,
 *   groups), groups, lanes, and the buffers readfile and listdir fill on a
 *   worker.  Each run checks: calls fail only with ENOMEM (NULL with errno,
 *   -ENOMEM, or the job's result -ENOMEM), each job that was submitted
 *   calls back (or is awaited) exactly once, nothing allocated is left
 *   after destroy, and no thread is left.
 * - threads: pthread_create() failing with EAGAIN at pool creation, when
 *   the pool grows on demand, for jobs handed over by a batch or by
 *   callbacks while no worker exists (they end at once with -EAGAIN, also
 *   for an event loop that never waits inside the library), at
 *   iop_pool_set_threads() and for the deadline watchdog; and a sweep
 *   over every thread creation.
 * - notify: eventfd() failing with EMFILE, ENFILE or ENOMEM at creation
 *   (pipe2() where the pool descriptor is a pipe: no eventfd, or
 *   configure --disable-eventfd), and a real EMFILE from RLIMIT_NOFILE.
 * Each test prints how many faults it injected.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

/* ---- The injector. ---- */

enum fault { F_MALLOC, F_CALLOC, F_REALLOC, F_STRDUP, F_THREAD, F_POOL_FD,
	     F_NKINDS };

/*
 * One plan per class of call (allocations share one): count the calls
 * while armed, fail the @at'th (and with @rest every later one too) with
 * @err.  Any thread may make the calls; the test thread arms and reads.
 */
struct plan {
	atomic_bool armed;
	atomic_long calls;
	atomic_long at;
	atomic_bool rest;
	int err;
};

enum { P_ALLOC, P_THREAD, P_POOL_FD, P_N };

static struct plan plans[P_N];
static atomic_long injected[F_NKINDS];

/* Blocks allocated through the wrappers and not yet freed. */
static atomic_long live_blocks;

static long live(void)
{
	return atomic_load(&live_blocks);
}

static int plan_of(enum fault f)
{
	return f == F_THREAD ? P_THREAD : f == F_POOL_FD ? P_POOL_FD : P_ALLOC;
}

/*
 * Set while Check itself runs on this thread: Debian links Check
 * statically, so its own malloc calls (every passing assertion sends a
 * message) come here too, and must neither fail nor count.
 */
static _Thread_local int in_check;

static bool should_fail(enum fault f)
{
	struct plan *p = &plans[plan_of(f)];
	long n, at;

	if (in_check || !atomic_load(&p->armed))
		return false;
	n = atomic_fetch_add(&p->calls, 1) + 1;
	at = atomic_load(&p->at);
	if (at <= 0 || n < at || (n > at && !atomic_load(&p->rest)))
		return false;
	atomic_fetch_add(&injected[f], 1);
	return true;
}

/* Fail call @at (1-based) of @which from now, and every later one with
 * @rest; @at 0 only counts. */
static void arm(int which, long at, bool rest, int err)
{
	struct plan *p = &plans[which];

	atomic_store(&p->armed, false);
	atomic_store(&p->calls, 0);
	atomic_store(&p->at, at);
	atomic_store(&p->rest, rest);
	p->err = err;
	atomic_store(&p->armed, true);
}

static long disarm(int which)
{
	atomic_store(&plans[which].armed, false);
	return atomic_load(&plans[which].calls);
}

static long injected_total(void)
{
	long n = 0;

	for (int f = 0; f < F_NKINDS; f++)
		n += atomic_load(&injected[f]);
	return n;
}

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
void __wrap_free(void *p);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg);

void *__wrap_malloc(size_t size)
{
	void *p;

	if (should_fail(F_MALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	p = __real_malloc(size);
	if (p)
		atomic_fetch_add(&live_blocks, 1);
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	void *p;

	if (should_fail(F_CALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	p = __real_calloc(n, size);
	if (p)
		atomic_fetch_add(&live_blocks, 1);
	return p;
}

void *__wrap_realloc(void *old, size_t size)
{
	void *p;

	if (should_fail(F_REALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	p = __real_realloc(old, size);
	if (p && !old)
		atomic_fetch_add(&live_blocks, 1);
	else if (!p && old && size == 0)
		atomic_fetch_sub(&live_blocks, 1);
	return p;
}

char *__wrap_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p;

	if (should_fail(F_STRDUP)) {
		errno = ENOMEM;
		return NULL;
	}
	p = __real_malloc(n);
	if (p) {
		memcpy(p, s, n);
		atomic_fetch_add(&live_blocks, 1);
	}
	return p;
}

void __wrap_free(void *p)
{
	if (p)
		atomic_fetch_sub(&live_blocks, 1);
	__real_free(p);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg)
{
	if (should_fail(F_THREAD))
		return plans[P_THREAD].err;
	return __real_pthread_create(t, attr, fn, arg);
}

/*
 * What the pool descriptor comes from: eventfd(), or pipe2() where the
 * pool uses a pipe.  Each wrapper exists only where the C library has the
 * call, since __real_x links to x.
 */
#ifdef HAVE_EVENTFD
int __real_eventfd(unsigned int initval, int flags);
int __wrap_eventfd(unsigned int initval, int flags);

int __wrap_eventfd(unsigned int initval, int flags)
{
	if (should_fail(F_POOL_FD)) {
		errno = plans[P_POOL_FD].err;
		return -1;
	}
	return __real_eventfd(initval, flags);
}
#endif

#ifdef HAVE_PIPE2
int __real_pipe2(int fds[2], int flags);
int __wrap_pipe2(int fds[2], int flags);

int __wrap_pipe2(int fds[2], int flags)
{
	if (should_fail(F_POOL_FD)) {
		errno = plans[P_POOL_FD].err;
		return -1;
	}
	return __real_pipe2(fds, flags);
}
#endif

/* Check's assertion calls, wrapped so that Check runs undisturbed. */
void __real__mark_point(const char *file, int line);
void __real__ck_assert_failed(const char *file, int line, const char *expr,
			      const char *msg, ...);
void __wrap__mark_point(const char *file, int line);
void __wrap__ck_assert_failed(const char *file, int line, const char *expr,
			      const char *msg, ...);

void __wrap__mark_point(const char *file, int line)
{
	in_check++;
	__real__mark_point(file, line);
	in_check--;
}

void __wrap__ck_assert_failed(const char *file, int line, const char *expr,
			      const char *msg, ...)
{
	char buf[1024];
	va_list ap;

	in_check++;
	for (int i = 0; i < P_N; i++)
		atomic_store(&plans[i].armed, false);
	if (!msg)
		__real__ck_assert_failed(file, line, expr, NULL);
	va_start(ap, msg);
	vsnprintf(buf, sizeof(buf), msg, ap);
	va_end(ap);
	__real__ck_assert_failed(file, line, expr, "%s", buf);
	abort();	/* not reached */
}

/* Threads of this process, from /proc/self/task. */
static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * The threads of this process once a thread has been started and joined:
 * ThreadSanitizer starts a thread of its own with the first one, and it
 * stays.
 */
static int baseline_threads(void)
{
	iop_pool *pool = pool_new_opts(&(struct iop_options){
		.min_threads = 1 });

	iop_pool_destroy(pool);
	return thread_count();
}

/*
 * Wait (up to 2 s) until no more than @want threads are left: a pool
 * joins its threads before destroy returns, but the sanitizers' runtime
 * threads may come and go.
 */
static bool threads_back_to(int want)
{
	for (int i = 0; i < 2000; i++) {
		if (thread_count() <= want)
			return true;
		usleep(1000);
	}
	return false;
}

/* ---- The allocation scenario. ---- */

#define SCEN_FILE_SIZE 8192
#define SCEN_CALLS 70		/* more futures than one slab of jobs */

struct scen {
	iop_pool *pool;
	int fd, dirfd;
	char dir[PATH_MAX];
	unsigned char buf[SCEN_FILE_SIZE];
	struct done_rec d[8];
	bool sub[8];			/* job i was submitted */
	void *data;
	struct iop_dirent *ents;
	struct stat st;
	int opened;
	iop_job *call_fut, *calls[SCEN_CALLS];
	atomic_int group_calls;
	struct iop_group_result gres;
	atomic_int inner_calls;
	atomic_long inner_result;
	bool inner_sub;
	/* What happened, for the summary. */
	long refused, api_enomem, result_enomem, pool_refused;
};

static struct scen *cur;

/* Results a job may end with under allocation failures. */
static void check_result(const char *what, long res, long ok)
{
	ck_assert_msg(res == ok || res == -ENOMEM,
		      "%s ended with %ld, expected %ld or -ENOMEM", what, res,
		      ok);
	if (res == -ENOMEM)
		cur->result_enomem++;
}

/* A submit or a handle-returning call that failed: only ENOMEM. */
static void refused(const char *what)
{
	ck_assert_msg(errno == ENOMEM, "%s failed with %s, expected ENOMEM",
		      what, strerror(errno));
	cur->refused++;
}

/* An int-returning call: 0, or -ENOMEM. */
static bool api_ok(const char *what, int ret)
{
	ck_assert_msg(ret == 0 || ret == -ENOMEM, "%s returned %d", what, ret);
	if (ret == -ENOMEM)
		cur->api_enomem++;
	return ret == 0;
}

static void on_group(iop_group *g, const struct iop_group_result *r,
		     void *arg)
{
	struct scen *s = arg;

	(void)g;
	s->gres = *r;
	atomic_fetch_add(&s->group_calls, 1);
}

static void on_inner(iop_job *job, ssize_t result, void *arg)
{
	struct scen *s = arg;

	(void)job;
	atomic_store(&s->inner_result, result);
	atomic_fetch_add(&s->inner_calls, 1);
}

/* The read's callback also submits from inside a callback. */
static void on_read(iop_job *job, ssize_t result, void *arg)
{
	struct scen *s = cur;

	done_record(job, result, arg);
	s->inner_sub = iop_call(s->pool, work_return_ctx, (void *)9, on_inner,
				s) != NULL;
	if (!s->inner_sub)
		refused("iop_call from a callback");
}

static void scen_setup(struct scen *s)
{
	const char *t = getenv("TMPDIR");
	int fd;

	memset(s, 0, sizeof(*s));
	cur = s;
	s->opened = -1;
	snprintf(s->dir, sizeof(s->dir), "%s/iopool-faults-XXXXXX",
		 t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(s->dir));
	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(s->dirfd, 0);
	s->fd = make_pattern_file(SCEN_FILE_SIZE, 42);
	fd = openat(s->dirfd, "f1", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello, world\n", 13), 13);
	close(fd);
	ck_assert_int_eq(mkdirat(s->dirfd, "sub", 0700), 0);
	for (int i = 0; i < 3; i++) {
		char name[32];

		snprintf(name, sizeof(name), "sub/e%d", i);
		fd = openat(s->dirfd, name, O_WRONLY | O_CREAT | O_CLOEXEC,
			    0600);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	fd = openat(s->dirfd, "a", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	close(fd);
	for (int i = 0; i < 8; i++)
		done_rec_init(&s->d[i]);
}

static void scen_teardown(struct scen *s)
{
	static const char *const names[] = { "sub/e0", "sub/e1", "sub/e2",
					     "f1", "a", "b" };

	close(s->fd);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlinkat(s->dirfd, names[i], 0);
	unlinkat(s->dirfd, "sub", AT_REMOVEDIR);
	close(s->dirfd);
	rmdir(s->dir);
}

/* Submit job @i, or note that it was refused. */
static iop_job *sub(struct scen *s, int i, iop_job *job, const char *what)
{
	s->sub[i] = job != NULL;
	if (!job)
		refused(what);
	return job;
}

/* Wait until every submitted callback job (and the group) called back. */
static void scen_drain(struct scen *s, bool group)
{
	int64_t end = now_ns() + (int64_t)TEST_WAIT_MS * 1000000;

	for (;;) {
		bool all = true;

		for (int i = 0; i < 8; i++)
			if (s->sub[i] && load_int(&s->d[i].calls) == 0)
				all = false;
		if (s->inner_sub && load_int(&s->inner_calls) == 0)
			all = false;
		if (group && load_int(&s->group_calls) == 0)
			all = false;
		if (all)
			return;
		ck_assert_msg(now_ns() < end, "callbacks lost");
		ck_assert_int_ge(iop_wait(s->pool, 100), 0);
	}
}

/*
 * The scenario run under allocation failures.  Jobs 0-5 are callback
 * jobs: read, readfile, listdir, renameat, statat, openat.
 */
static void scenario_alloc(struct scen *s)
{
	struct iop_options opts = { .threads = 2, .min_threads = 1 };
	iop_group *group = NULL;
	iop_lane *lane;
	iop_job *j[8] = { NULL };
	int held = 0, ret;
	bool added = false;

	s->pool = iop_pool_new(&opts);
	if (!s->pool) {
		ck_assert_msg(errno == ENOMEM, "iop_pool_new: %s",
			      strerror(errno));
		s->pool_refused++;
		return;
	}
	lane = iop_lane_new(s->pool, "lane", 1);
	if (!lane)
		refused("iop_lane_new");
	group = iop_group_new(s->pool, on_group, s);
	if (!group)
		refused("iop_group_new");

	ck_assert_int_eq(iop_batch_begin(s->pool), 0);
	j[0] = sub(s, 0, iop_read(s->pool, s->fd, s->buf, 4096, 0, on_read,
				  &s->d[0]), "iop_read");
	j[1] = sub(s, 1, iop_readfile(s->pool, s->dirfd, "f1", &s->data,
				      done_record, &s->d[1]), "iop_readfile");
	j[2] = sub(s, 2, iop_listdir(s->pool, s->dirfd, "sub",
				     IOP_LISTDIR_SORT, &s->ents, done_record,
				     &s->d[2]), "iop_listdir");
	j[3] = sub(s, 3, iop_renameat(s->pool, s->dirfd, "a", s->dirfd, "b", 0,
				      done_record, &s->d[3]), "iop_renameat");
	j[4] = sub(s, 4, iop_statat(s->pool, s->dirfd, "f1", &s->st, 0,
				    done_record, &s->d[4]), "iop_statat");
	j[5] = sub(s, 5, iop_openat(s->pool, s->dirfd, "f1", O_RDONLY, 0,
				    done_record, &s->d[5]), "iop_openat");
	s->call_fut = iop_call(s->pool, work_return_ctx, (void *)5, NULL,
			       NULL);
	if (!s->call_fut)
		refused("iop_call");
	for (int i = 0; i < 6; i++)
		held += j[i] != NULL;
	held += s->call_fut != NULL;
	if (j[0] && s->call_fut)
		api_ok("iop_link", iop_link(j[0], s->call_fut));
	if (j[1] && lane)
		api_ok("iop_job_set_lane", iop_job_set_lane(j[1], lane));
	if (j[2]) {
		api_ok("iop_job_set_deadline",
		       iop_job_set_deadline(j[2], 60000));
		ck_assert_int_eq(iop_job_set_priority(j[2], 2), 0);
	}
	if (j[4] && group)
		added = api_ok("iop_group_add", iop_group_add(group, j[4]));
	ret = iop_batch_end(s->pool);
	ck_assert_int_eq(ret, held);
	if (group)
		ck_assert_int_eq(iop_group_seal(group), 0);

	for (int i = 0; i < SCEN_CALLS; i++) {
		s->calls[i] = iop_call(s->pool, work_return_ctx,
				       (void *)(intptr_t)(100 + i), NULL,
				       NULL);
		if (!s->calls[i])
			refused("iop_call");
	}
	ret = iop_pool_set_threads(s->pool, 2, 2);
	ck_assert_msg(ret == 0 || ret == -ENOMEM,
		      "iop_pool_set_threads: %d", ret);

	scen_drain(s, group != NULL);
	for (int i = 0; i < SCEN_CALLS; i++)
		if (s->calls[i])
			ck_assert_int_eq(iop_await(s->calls[i]), 100 + i);
	if (s->call_fut)	/* linked after a whole read, or alone */
		ck_assert_int_eq(iop_await(s->call_fut), 5);

	/* Each callback once, with a result it could have. */
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(load_int(&s->d[i].calls), s->sub[i] ? 1 : 0);
	if (s->sub[0])
		check_result("read", load_long(&s->d[0].result), 4096);
	if (s->sub[1]) {
		check_result("readfile", load_long(&s->d[1].result), 13);
		ck_assert((load_long(&s->d[1].result) < 0) ==
			  (s->data == NULL));
		free(s->data);
	}
	if (s->sub[2]) {
		check_result("listdir", load_long(&s->d[2].result), 3);
		ck_assert((load_long(&s->d[2].result) < 0) ==
			  (s->ents == NULL));
		free(s->ents);
	}
	if (s->sub[3]) {
		check_result("renameat", load_long(&s->d[3].result), 0);
		renameat(s->dirfd, "b", s->dirfd, "a");
	}
	if (s->sub[4])
		check_result("statat", load_long(&s->d[4].result), 0);
	if (s->sub[5] && load_long(&s->d[5].result) >= 0)
		close((int)load_long(&s->d[5].result));
	if (s->inner_sub) {
		ck_assert_int_eq(load_int(&s->inner_calls), 1);
		ck_assert_int_eq(load_long(&s->inner_result), 9);
	}
	if (group) {
		ck_assert_int_eq(load_int(&s->group_calls), 1);
		ck_assert_uint_eq(s->gres.succeeded + s->gres.failed +
				  s->gres.cancelled, added ? 1u : 0u);
	}
	iop_pool_destroy(s->pool);
	s->pool = NULL;
}

/*
 * Run the scenario with allocation call N failing (and with @rest every
 * later one), for N = 1, 2, ... until a run injects nothing.
 */
static void sweep_alloc(bool rest)
{
	long runs = 0, calls = 0, total = 0, refused_n = 0, api_n = 0;
	long result_n = 0, pool_n = 0;
	int tasks = baseline_threads();
	struct scen *s = malloc(sizeof(*s));
	long inj[F_NKINDS];

	ck_assert_ptr_nonnull(s);
	for (int f = 0; f < F_NKINDS; f++)
		atomic_store(&injected[f], 0);
	for (long n = 1; n < 5000; n++) {
		long before = injected_total(), base;

		scen_setup(s);
		base = atomic_load(&live_blocks);
		arm(P_ALLOC, n, rest, ENOMEM);
		scenario_alloc(s);
		calls = disarm(P_ALLOC);
		runs++;
		ck_assert_msg(atomic_load(&live_blocks) == base,
			      "allocation %ld failing%s: %ld blocks leaked", n,
			      rest ? " (and every later one)" : "",
			      atomic_load(&live_blocks) - base);
		ck_assert_msg(threads_back_to(tasks),
			      "allocation %ld failing: a thread was left", n);
		refused_n += s->refused;
		api_n += s->api_enomem;
		result_n += s->result_enomem;
		pool_n += s->pool_refused;
		scen_teardown(s);
		if (injected_total() == before)
			break;	/* ran whole: every call was tried */
	}
	for (int f = 0; f < F_NKINDS; f++)
		total += inj[f] = atomic_load(&injected[f]);
	printf("faults: allocation sweep%s: %ld runs over a scenario of %ld "
	       "allocation calls; %ld failures injected (malloc %ld, calloc "
	       "%ld, realloc %ld, strdup %ld); pool creations refused %ld, "
	       "submits and handles refused ENOMEM %ld, calls -ENOMEM %ld, "
	       "jobs ended -ENOMEM %ld; no leak, no lost or doubled "
	       "callback\n", rest ? " (every call from the Nth on)" : "",
	       runs, calls, total, inj[F_MALLOC], inj[F_CALLOC],
	       inj[F_REALLOC], inj[F_STRDUP], pool_n, refused_n, api_n,
	       result_n);
	ck_assert_int_gt(total, 0);
	free(s);
}

START_TEST(test_alloc_fails_at_each_call_in_turn)
{
	sweep_alloc(false);
}
END_TEST

START_TEST(test_alloc_fails_from_each_call_on)
{
	sweep_alloc(true);
}
END_TEST

/* Submits refused with ENOMEM call nothing back; the pool goes on. */
START_TEST(test_alloc_submit_fails_enomem_then_recovers)
{
	long base = atomic_load(&live_blocks);
	iop_pool *pool = pool_new(2);
	struct done_rec d;
	int n = 0;

	done_rec_init(&d);
	/* A fresh pool has no job memory yet: the first submit needs it. */
	arm(P_ALLOC, 1, true, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(iop_call(pool, work_return_ctx, (void *)1,
				    done_record, &d));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_ptr_null(iop_openat(pool, AT_FDCWD, "/", O_RDONLY, 0,
				      done_record, &d));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_ptr_null(iop_renameat(pool, AT_FDCWD, "x", AT_FDCWD, "y", 0,
					done_record, &d));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_ptr_null(iop_group_new(pool, on_group, NULL));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_ptr_null(iop_lane_new(pool, "l", 1));
	ck_assert_int_eq(errno, ENOMEM);
	disarm(P_ALLOC);
	ck_assert_int_eq(iop_wait(pool, 50), 0);
	ck_assert_int_eq(load_int(&d.calls), 0);

	/* Memory again: the pool works. */
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, (void *)1,
				       done_record, &d));
	drain_until(pool, &d.calls, 1);
	n = load_int(&d.calls);
	ck_assert_int_eq(n, 1);
	iop_pool_destroy(pool);
	ck_assert_int_eq(live(), base);
	printf("faults: submits under ENOMEM: 5 calls refused ENOMEM "
	       "(call, openat, renameat, group, lane), no callback, then the "
	       "pool works\n");
}
END_TEST

/* readfile and listdir allocate on the worker: their result says it. */
START_TEST(test_alloc_fails_on_the_worker)
{
	struct scen s;
	iop_pool *pool = pool_new(1);
	iop_job *warm, *rf, *ld;
	ssize_t r1, r2;

	scen_setup(&s);
	/* Warm up: the job slab and the worker exist before arming. */
	warm = iop_call(pool, work_return_ctx, (void *)1, NULL, NULL);
	ck_assert_int_eq(iop_await(warm), 1);
	/* The paths' strdup (calls 1 and 2, both before the batch hands
	 * the jobs over), then the worker's allocations. */
	arm(P_ALLOC, 3, true, ENOMEM);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	rf = iop_readfile(pool, s.dirfd, "f1", &s.data, NULL, NULL);
	ld = iop_listdir(pool, s.dirfd, "sub", 0, &s.ents, NULL, NULL);
	ck_assert_ptr_nonnull(rf);
	ck_assert_ptr_nonnull(ld);
	ck_assert_int_eq(iop_batch_end(pool), 2);
	r1 = iop_await(rf);
	r2 = iop_await(ld);
	disarm(P_ALLOC);
	ck_assert_int_eq(r1, -ENOMEM);
	ck_assert_ptr_null(s.data);
	ck_assert_int_eq(r2, -ENOMEM);
	ck_assert_ptr_null(s.ents);
	iop_pool_destroy(pool);
	scen_teardown(&s);
}
END_TEST

/* ---- Thread creation failing. ---- */

START_TEST(test_thread_create_fails_at_pool_new)
{
	long base = atomic_load(&live_blocks);
	int tasks = baseline_threads();

	for (long k = 1; k <= 3; k++) {
		struct iop_options opts = { .threads = 4, .min_threads = 3 };
		iop_pool *pool;

		arm(P_THREAD, k, false, EAGAIN);
		errno = 0;
		pool = iop_pool_new(&opts);
		disarm(P_THREAD);
		ck_assert_ptr_null(pool);
		ck_assert_int_eq(errno, EAGAIN);
		ck_assert(threads_back_to(tasks));
		ck_assert_int_eq(live(), base);
	}
	printf("faults: pthread_create failing at pool creation: 3 failures "
	       "injected (1st, 2nd, 3rd of 3 threads), 3 pools refused "
	       "EAGAIN, no thread or block left\n");
}
END_TEST

/* A pool with threads keeps its jobs when it cannot grow. */
START_TEST(test_thread_create_fails_when_growing)
{
	enum { N = 6 };
	struct iop_options opts = { .threads = 4, .min_threads = 1 };
	iop_pool *pool = pool_new_opts(&opts);
	struct iop_stats st;
	struct held h[N];
	struct done_rec d[N];
	struct gate g;
	sem_t entered;

	gate_init(&g);
	ck_assert_int_eq(sem_init(&entered, 0, 0), 0);
	arm(P_THREAD, 1, true, EAGAIN);
	for (int i = 0; i < N; i++) {
		held_init(&h[i], &g, &entered, i);
		done_rec_init(&d[i]);
		ck_assert_ptr_nonnull(iop_call(pool, held_work, &h[i],
					       done_record, &d[i]));
	}
	ck_assert(sem_wait_n_ms(&entered, 1, TEST_WAIT_MS));
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.threads, 1);
	ck_assert_uint_eq(st.submitted, N);
	gate_open(&g);
	for (int i = 0; i < N; i++) {
		drain_until(pool, &d[i].calls, 1);
		ck_assert_int_eq(load_long(&d[i].result), i);
	}
	printf("faults: pthread_create failing while the pool grows: %ld "
	       "failures injected, %d jobs ran once each on the one thread\n",
	       atomic_load(&injected[F_THREAD]), N);
	disarm(P_THREAD);
	iop_pool_destroy(pool);
	gate_destroy(&g);
}
END_TEST

/* No thread, none can start: the submit says so and calls nothing back. */
START_TEST(test_thread_create_fails_without_threads)
{
	struct iop_options opts = { .threads = 2 };
	iop_pool *pool = pool_new_opts(&opts);
	struct iop_stats st;
	struct done_rec d;

	done_rec_init(&d);
	arm(P_THREAD, 1, true, EAGAIN);
	errno = 0;
	ck_assert_ptr_null(iop_call(pool, work_return_ctx, (void *)1,
				    done_record, &d));
	ck_assert_int_eq(errno, EAGAIN);
	errno = 0;
	ck_assert_ptr_null(iop_call(pool, work_return_ctx, (void *)1, NULL,
				    NULL));
	ck_assert_int_eq(errno, EAGAIN);
	disarm(P_THREAD);
	pool_stats(pool, &st);
	ck_assert_uint_eq(st.submitted, 0);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	ck_assert_int_eq(load_int(&d.calls), 0);
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, (void *)2,
				       done_record, &d));
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_long(&d.result), 2);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * A batch handed over while no worker exists and none can start: the
 * submits succeeded, so each job must still end exactly once, and at once
 * with -EAGAIN, as a single submit would have failed (iop_batch_end() in
 * iopool.h).  Thread creation works again right after the batch end; no
 * job may wait for a later submit to start a thread.
 */
START_TEST(test_thread_create_fails_at_batch_end)
{
	enum { N = 3 };
	struct iop_options opts = { .threads = 2 };
	iop_pool *pool = pool_new_opts(&opts);
	struct done_rec d[N];
	iop_job *fut;
	ssize_t res = 0;
	int ret;

	arm(P_THREAD, 1, true, EAGAIN);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		done_rec_init(&d[i]);
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx,
					       (void *)(intptr_t)i,
					       done_record, &d[i]));
	}
	fut = iop_call(pool, work_return_ctx, (void *)7, NULL, NULL);
	ck_assert_ptr_nonnull(fut);
	ck_assert_int_eq(iop_batch_end(pool), N + 1);
	disarm(P_THREAD);

	ret = iop_await_timeout(fut, TEST_WAIT_MS, &res);
	ck_assert_msg(ret == 0, "a future handed over by a batch while no "
		      "thread could start never ended (%d)", ret);
	ck_assert_int_eq(res, -EAGAIN);
	for (int i = 0; i < N; i++) {
		drain_until(pool, &d[i].calls, 1);
		ck_assert_int_eq(load_long(&d[i].result), -EAGAIN);
	}
	ck_assert_int_eq(iop_wait(pool, 20), 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(load_int(&d[i].calls), 1);
	iop_pool_destroy(pool);
}
END_TEST

/*
 * The same for a program whose event loop sleeps in poll(2) on the pool's
 * descriptor and calls iop_poll() when it is readable, as README.md shows:
 * it never waits inside the library.
 */
START_TEST(test_thread_create_fails_at_batch_end_event_loop)
{
	enum { N = 3 };
	struct iop_options opts = { .threads = 2 };
	iop_pool *pool = pool_new_opts(&opts);
	struct done_rec d[N];
	int64_t end;
	int calls = 0;

	arm(P_THREAD, 1, true, EAGAIN);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	for (int i = 0; i < N; i++) {
		done_rec_init(&d[i]);
		ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx,
					       (void *)(intptr_t)i,
					       done_record, &d[i]));
	}
	ck_assert_int_eq(iop_batch_end(pool), N);
	disarm(P_THREAD);

	end = now_ns() + (int64_t)TEST_WAIT_MS * 1000000;
	while (calls < N && now_ns() < end) {
		fd_readable(iop_pool_fd(pool), 100);
		ck_assert_int_ge(iop_poll(pool), 0);
		calls = 0;
		for (int i = 0; i < N; i++)
			calls += load_int(&d[i].calls);
	}
	ck_assert_msg(calls == N, "%d of %d jobs handed over by a batch "
		      "while no thread could start ended, in an event loop "
		      "polling the pool's descriptor", calls, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(load_long(&d[i].result), -EAGAIN);
	iop_pool_destroy(pool);
}
END_TEST

static struct {
	iop_pool *pool;
	struct done_rec inner;
	bool submitted;
} cbsub;

/* A function the pool has never run, so it knows nothing of its cost
 * (a job known to be short may be run by the waiting thread itself). */
static ssize_t inner_work(void *ctx)
{
	(void)ctx;
	return 5;
}

static void submit_from_callback(iop_job *job, ssize_t result, void *arg)
{
	done_record(job, result, arg);
	/* Every worker has gone (idle timeout), none can start. */
	arm(P_THREAD, 1, true, EAGAIN);
	cbsub.submitted = iop_call(cbsub.pool, inner_work, NULL, done_record,
				   &cbsub.inner) != NULL;
}

/* The same for a job a callback submitted (handed over after it). */
START_TEST(test_thread_create_fails_for_callback_submits)
{
	struct iop_options opts = { .threads = 1, .idle_timeout_ms = 1 };
	struct done_rec d;

	cbsub.pool = pool_new_opts(&opts);
	done_rec_init(&d);
	done_rec_init(&cbsub.inner);
	ck_assert_ptr_nonnull(iop_call(cbsub.pool, work_return_ctx,
				       (void *)1, submit_from_callback, &d));
	ck_assert(fd_readable(iop_pool_fd(cbsub.pool), TEST_WAIT_MS));
	ck_assert_uint_eq(wait_threads(cbsub.pool, 0, TEST_WAIT_MS), 0);
	/* The callback; and the job it submitted, if that already ended. */
	ck_assert_int_ge(iop_poll(cbsub.pool), 1);
	disarm(P_THREAD);
	/* Submitted, it ends at once with -EAGAIN (iop_batch_end() in
	 * iopool.h: "the same holds for jobs submitted by callbacks"). */
	ck_assert(cbsub.submitted);
	ck_assert_msg(wait_until(cbsub.pool, &cbsub.inner.calls, 1) == 0,
		      "a job a callback submitted while no thread could start "
		      "never ended");
	ck_assert_int_eq(load_long(&cbsub.inner.result), -EAGAIN);
	ck_assert_int_eq(iop_wait(cbsub.pool, 20), 0);
	ck_assert_int_eq(load_int(&cbsub.inner.calls), 1);
	iop_pool_destroy(cbsub.pool);
}
END_TEST

START_TEST(test_thread_create_fails_at_set_threads)
{
	struct iop_options opts = { .threads = 4 };
	iop_pool *pool = pool_new_opts(&opts);
	struct done_rec d;

	done_rec_init(&d);
	arm(P_THREAD, 1, true, EAGAIN);
	ck_assert_int_eq(iop_pool_set_threads(pool, 2, 4), -EAGAIN);
	disarm(P_THREAD);
	/* The limits stand, and the pool starts threads once it can. */
	ck_assert_ptr_nonnull(iop_call(pool, work_return_ctx, (void *)3,
				       done_record, &d));
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(iop_pool_set_threads(pool, 2, 4), 0);
	ck_assert_uint_eq(wait_threads(pool, 2, TEST_WAIT_MS), 2);
	iop_pool_destroy(pool);
}
END_TEST

START_TEST(test_thread_create_fails_for_the_watchdog)
{
	struct iop_options opts = { .threads = 1, .min_threads = 1 };
	iop_pool *pool = pool_new_opts(&opts);
	struct done_rec d;
	iop_job *job;

	done_rec_init(&d);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	job = iop_call(pool, work_return_ctx, (void *)4, done_record, &d);
	ck_assert_ptr_nonnull(job);
	arm(P_THREAD, 1, true, EAGAIN);
	ck_assert_int_eq(iop_job_set_deadline(job, 1000), -EAGAIN);
	disarm(P_THREAD);
	ck_assert_int_eq(iop_batch_end(pool), 1);
	/* No deadline was set: it runs. */
	drain_until(pool, &d.calls, 1);
	ck_assert_int_eq(load_long(&d.result), 4);
	iop_pool_destroy(pool);
}
END_TEST

/* Every thread creation of a scenario failing in turn. */
static void scenario_threads(long *refused_pool, long *refused_submit,
			     long *refused_api)
{
	enum { N = 5 };
	struct iop_options opts = { .threads = 3, .min_threads = 1,
				    .idle_timeout_ms = 5 };
	iop_pool *pool = iop_pool_new(&opts);
	struct held h[N];
	struct done_rec d[N], dd;
	bool ok[N], dl = false;
	struct gate g;
	iop_job *job;
	int ret;

	if (!pool) {
		ck_assert_int_eq(errno, EAGAIN);
		(*refused_pool)++;
		return;
	}
	gate_init(&g);
	for (int i = 0; i < N; i++) {
		held_init(&h[i], &g, NULL, i);
		done_rec_init(&d[i]);
		ok[i] = iop_call(pool, held_work, &h[i], done_record,
				 &d[i]) != NULL;
		/* The pool has a thread: submits are not refused. */
		ck_assert_msg(ok[i], "submit refused: %s", strerror(errno));
	}
	done_rec_init(&dd);
	ck_assert_int_eq(iop_batch_begin(pool), 0);
	job = iop_call(pool, work_return_ctx, (void *)8, done_record, &dd);
	ck_assert_ptr_nonnull(job);
	ret = iop_job_set_deadline(job, 60000);
	ck_assert(ret == 0 || ret == -EAGAIN);
	dl = ret == 0;
	*refused_api += ret != 0;
	ck_assert_int_eq(iop_batch_end(pool), 1);
	ret = iop_pool_set_threads(pool, 2, 3);
	ck_assert(ret == 0 || ret == -EAGAIN);
	*refused_api += ret != 0;
	gate_open(&g);
	for (int i = 0; i < N; i++) {
		drain_until(pool, &d[i].calls, 1);
		ck_assert_int_eq(load_long(&d[i].result), i);
	}
	drain_until(pool, &dd.calls, 1);
	ck_assert_int_eq(load_long(&dd.result), 8);
	(void)dl;
	(void)refused_submit;
	iop_pool_destroy(pool);
	gate_destroy(&g);
}

START_TEST(test_thread_create_fails_at_each_in_turn)
{
	long runs = 0, calls = 0, rp = 0, rs = 0, ra = 0;
	long base = atomic_load(&live_blocks);
	int tasks = baseline_threads();

	atomic_store(&injected[F_THREAD], 0);
	for (long n = 1; n < 100; n++) {
		long before = atomic_load(&injected[F_THREAD]);

		arm(P_THREAD, n, false, EAGAIN);
		scenario_threads(&rp, &rs, &ra);
		calls = disarm(P_THREAD);
		runs++;
		ck_assert(threads_back_to(tasks));
		ck_assert_int_eq(live(), base);
		if (atomic_load(&injected[F_THREAD]) == before)
			break;
	}
	printf("faults: pthread_create sweep: %ld runs over a scenario of "
	       "%ld thread creations; %ld failures injected; pools refused "
	       "EAGAIN %ld, set_threads/set_deadline -EAGAIN %ld; every job "
	       "ran once\n", runs, calls, atomic_load(&injected[F_THREAD]),
	       rp, ra);
}
END_TEST

/* ---- The pool descriptor failing. ---- */

/* The call that makes the pool descriptor here, if this test wraps it. */
#if defined(IOP_NOTIFY_EVENTFD)
#define NOTIFY_CALL "eventfd()"
#elif defined(HAVE_PIPE2)
#define NOTIFY_CALL "pipe2()"
#endif

START_TEST(test_notify_open_fails_at_pool_new)
{
#ifdef NOTIFY_CALL
	static const int errs[] = { EMFILE, ENFILE, ENOMEM };
	const size_t nerrs = sizeof(errs) / sizeof(errs[0]);
	long base = atomic_load(&live_blocks);
	long before = atomic_load(&injected[F_POOL_FD]);
	int tasks = baseline_threads();

	for (size_t i = 0; i < nerrs; i++) {
		struct iop_options opts = { .min_threads = 2 };
		iop_pool *pool;

		arm(P_POOL_FD, 1, false, errs[i]);
		arm(P_THREAD, 0, false, 0);	/* count thread starts */
		errno = 0;
		pool = iop_pool_new(&opts);
		ck_assert_int_eq(disarm(P_POOL_FD), 1);
		ck_assert_ptr_null(pool);
		ck_assert_int_eq(errno, errs[i]);
		ck_assert_int_eq(disarm(P_THREAD), 0);
		ck_assert(threads_back_to(tasks));
		ck_assert_int_eq(live(), base);
	}
	ck_assert_int_eq(atomic_load(&injected[F_POOL_FD]) - before,
			 (long)nerrs);
	printf("faults: " NOTIFY_CALL " failing at pool creation: %ld "
	       "failures injected (EMFILE, ENFILE, ENOMEM), each pool refused "
	       "with that errno, no thread started, nothing leaked\n",
	       atomic_load(&injected[F_POOL_FD]) - before);
#else
	printf("faults: skipped test_notify_open_fails_at_pool_new: the "
	       "pool's pipe comes from pipe(2) here (no pipe2()), which this "
	       "test does not wrap\n");
#endif
}
END_TEST

/* The real thing: no descriptor left under RLIMIT_NOFILE. */
START_TEST(test_out_of_descriptors_at_pool_new)
{
	struct rlimit old, rl;
	int fds[128], n = 0, base = open("/dev/null", O_RDONLY | O_CLOEXEC);
	iop_pool *pool;

	ck_assert_int_ge(base, 0);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	rl.rlim_cur = 64;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	while (n < 128 && (fds[n] = fcntl(base, F_DUPFD_CLOEXEC, 0)) >= 0)
		n++;
	ck_assert_int_eq(errno, EMFILE);
	errno = 0;
	pool = iop_pool_new(NULL);
	while (n > 0)
		close(fds[--n]);
	close(base);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_ptr_null(pool);
	ck_assert_int_eq(errno, EMFILE);
	pool = iop_pool_new(NULL);
	ck_assert_ptr_nonnull(pool);
	iop_pool_destroy(pool);
}
END_TEST

static Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc;

	tc = tcase_new("alloc");
	tcase_add_test(tc, test_alloc_fails_at_each_call_in_turn);
	tcase_add_test(tc, test_alloc_fails_from_each_call_on);
	tcase_add_test(tc, test_alloc_submit_fails_enomem_then_recovers);
	tcase_add_test(tc, test_alloc_fails_on_the_worker);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	tc = tcase_new("threads");
	tcase_add_test(tc, test_thread_create_fails_at_pool_new);
	tcase_add_test(tc, test_thread_create_fails_when_growing);
	tcase_add_test(tc, test_thread_create_fails_without_threads);
	tcase_add_test(tc, test_thread_create_fails_at_batch_end);
	tcase_add_test(tc, test_thread_create_fails_at_batch_end_event_loop);
	tcase_add_test(tc, test_thread_create_fails_for_callback_submits);
	tcase_add_test(tc, test_thread_create_fails_at_set_threads);
	tcase_add_test(tc, test_thread_create_fails_for_the_watchdog);
	tcase_add_test(tc, test_thread_create_fails_at_each_in_turn);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_new("notify");
	tcase_add_test(tc, test_notify_open_fails_at_pool_new);
	tcase_add_test(tc, test_out_of_descriptors_at_pool_new);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(faults_suite());
}
