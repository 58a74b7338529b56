/* Shared pieces of the iopool Check suites; see helpers.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Written by the fixture before the test starts any thread. */
static pthread_t main_thread;

static void record_main_thread(void)
{
	main_thread = pthread_self();
}

int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

TCase *tcase_new(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, TEST_TIMEOUT);
	tcase_add_checked_fixture(tc, record_main_thread, NULL);
	return tc;
}

pthread_t test_thread(void)
{
	return main_thread;
}

bool on_test_thread(void)
{
	return pthread_equal(pthread_self(), main_thread) != 0;
}

iop_pool *pool_new(unsigned threads)
{
	struct iop_options opts = { .threads = threads };
	iop_pool *pool = iop_pool_new(&opts);

	ck_assert_msg(pool != NULL, "iop_pool_new(threads=%u): %s", threads,
		      strerror(errno));
	return pool;
}

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

unsigned char pattern_byte(uint32_t seed, uint64_t off)
{
	uint64_t x = off * 0x9E3779B97F4A7C15ull + seed;

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 27;
	return (unsigned char)(x >> 24);
}

int make_pattern_file(size_t size, uint32_t seed)
{
	const char *dir = getenv("TMPDIR");
	char path[PATH_MAX];
	unsigned char buf[65536];
	size_t done = 0;
	int fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/iopool-test-XXXXXX", dir);
	fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
	ck_assert_int_eq(unlink(path), 0);

	while (done < size) {
		size_t n = size - done;
		ssize_t w;

		if (n > sizeof(buf))
			n = sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern_byte(seed, done + i);
		w = pwrite(fd, buf, n, (off_t)done);
		ck_assert_msg(w == (ssize_t)n, "pwrite: %zd (%s)", w,
			      strerror(errno));
		done += n;
	}
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

uint64_t rng_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

void gate_init(struct gate *g)
{
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	g->rfd = fds[0];
	g->wfd = fds[1];
}

void gate_wait(struct gate *g)
{
	char c;
	ssize_t n;

	/* Nothing is ever written: the only way on is end of file. */
	do
		n = read(g->rfd, &c, 1);
	while (n < 0 && errno == EINTR);
}

void gate_open(struct gate *g)
{
	close(g->wfd);
	g->wfd = -1;
}

void gate_destroy(struct gate *g)
{
	if (g->wfd >= 0)
		close(g->wfd);
	close(g->rfd);
}

void held_init(struct held *h, struct gate *g, sem_t *entered, ssize_t result)
{
	h->gate = g;
	h->entered = entered;
	h->result = result;
	atomic_init(&h->ran, 0);
	memset(&h->worker, 0, sizeof(h->worker));
}

ssize_t held_work(void *ctx)
{
	struct held *h = ctx;

	if (h->entered != NULL)
		sem_post(h->entered);
	gate_wait(h->gate);
	h->worker = pthread_self();
	atomic_fetch_add(&h->ran, 1);
	return h->result;
}

void done_rec_init(struct done_rec *d)
{
	atomic_init(&d->calls, 0);
	atomic_init(&d->result, 0);
	atomic_init(&d->off_thread, 0);
}

void done_record(iop_job *job, ssize_t result, void *arg)
{
	struct done_rec *d = arg;

	(void)job;
	if (!on_test_thread())
		atomic_fetch_add(&d->off_thread, 1);
	atomic_store(&d->result, (long)result);
	atomic_fetch_add(&d->calls, 1);
}

atomic_int *counters_new(size_t n)
{
	atomic_int *c = malloc(n * sizeof(*c));

	ck_assert_ptr_nonnull(c);
	for (size_t i = 0; i < n; i++)
		atomic_init(&c[i], 0);
	return c;
}

size_t counters_count_not(atomic_int *c, size_t n, int want)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		if (atomic_load(&c[i]) != want)
			bad++;
	return bad;
}

ssize_t work_return_ctx(void *ctx)
{
	return (ssize_t)(intptr_t)ctx;
}

int wait_until(iop_pool *pool, atomic_int *count, int target)
{
	while (atomic_load(count) < target) {
		int r = iop_wait(pool, TEST_WAIT_MS);

		if (r < 0)
			return r;
		/* Jobs that can finish are in flight: a wait that saw none
		 * finish for this long lost a completion or its wake-up. */
		if (r == 0 && atomic_load(count) < target)
			return -ETIMEDOUT;
	}
	return 0;
}

void drain_until(iop_pool *pool, atomic_int *count, int target)
{
	int r = wait_until(pool, count, target);

	ck_assert_msg(r == 0, "iop_wait returned %d (%s)", r, strerror(-r));
	ck_assert_int_eq(atomic_load(count), target);
}

int fd_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int64_t end = now_ns() + (int64_t)ms * 1000000;
	int r;

	for (;;) {
		int left = (int)((end - now_ns()) / 1000000);

		if (left < 0)
			left = 0;
		p.revents = 0;
		r = poll(&p, 1, left);
		if (r >= 0 || errno != EINTR)
			break;
	}
	return r == 1 && (p.revents & POLLIN) != 0;
}

int signals_not_blocked(void)
{
	sigset_t m;
	int missing = 0;

	if (pthread_sigmask(SIG_BLOCK, NULL, &m) != 0)
		return -1;
	for (int sig = 1; sig < 32; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigismember(&m, sig) != 1)
			missing++;
	}
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		if (sigismember(&m, sig) != 1)
			missing++;
	return missing;
}

void sem_wait_n(sem_t *s, int n)
{
	for (int i = 0; i < n; i++)
		while (sem_wait(s) != 0 && errno == EINTR)
			;
}

pid_t gettid_compat(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static char thread_state(pid_t tid)
{
	char path[64], buf[512];
	char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (f == NULL)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold anything; the state follows its ')'. */
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return '?';
	return p[2];
}

bool thread_seen_asleep(pid_t tid, int ms)
{
	int64_t end = now_ns() + (int64_t)ms * 1000000;

	do {
		char s = thread_state(tid);

		if (s == 'S')
			return true;
		if (s == '?')
			return false;
		sched_yield();
	} while (now_ns() < end);
	return false;
}

static void *opener_main(void *arg)
{
	struct opener *o = arg;

	sem_wait_n(&o->go, 1);
	if (o->sleeper != 0)
		atomic_store(&o->saw_asleep,
			     thread_seen_asleep(o->sleeper, TEST_WAIT_MS));
	gate_open(o->gate);
	return NULL;
}

void opener_start(struct opener *o, struct gate *g, pid_t sleeper)
{
	o->gate = g;
	o->sleeper = sleeper;
	atomic_init(&o->saw_asleep, false);
	ck_assert_int_eq(sem_init(&o->go, 0, 0), 0);
	ck_assert_int_eq(pthread_create(&o->thread, NULL, opener_main, o), 0);
}

void opener_go(struct opener *o)
{
	sem_post(&o->go);
}

bool opener_join(struct opener *o)
{
	ck_assert_int_eq(pthread_join(o->thread, NULL), 0);
	sem_destroy(&o->go);
	return atomic_load(&o->saw_asleep);
}

bool job_state_reached(const iop_job *job, int state, int ms)
{
	int64_t end = now_ns() + (int64_t)ms * 1000000;

	do {
		if (iop_job_state(job) == state)
			return true;
		sched_yield();
	} while (now_ns() < end);
	return iop_job_state(job) == state;
}

void step_init(struct step *s, atomic_int *clock, ssize_t result)
{
	s->clock = clock;
	s->gate = NULL;
	s->entered = NULL;
	s->result = result;
	atomic_init(&s->ran, 0);
	atomic_init(&s->at, 0);
}

ssize_t step_work(void *ctx)
{
	struct step *s = ctx;

	atomic_store(&s->at, atomic_fetch_add(s->clock, 1) + 1);
	atomic_fetch_add(&s->ran, 1);
	if (s->entered != NULL)
		sem_post(s->entered);
	if (s->gate != NULL)
		gate_wait(s->gate);
	return s->result;
}

void ordered_init(struct ordered_rec *o, atomic_int *clock)
{
	done_rec_init(&o->d);
	o->clock = clock;
	atomic_init(&o->at, 0);
}

void ordered_record(iop_job *job, ssize_t result, void *arg)
{
	struct ordered_rec *o = arg;

	atomic_store(&o->at, atomic_fetch_add(o->clock, 1) + 1);
	done_record(job, result, &o->d);
}

void spinner_init(struct spinner *s, sem_t *entered, ssize_t result)
{
	s->entered = entered;
	s->result = result;
	atomic_init(&s->ran, 0);
	atomic_init(&s->before, 0);
	atomic_init(&s->saw_cancel, 0);
}

ssize_t spinner_work(void *ctx)
{
	struct spinner *s = ctx;
	int64_t end = now_ns() + (int64_t)TEST_WAIT_MS * 1000000;

	atomic_store(&s->before, iop_cancel_requested());
	atomic_fetch_add(&s->ran, 1);
	if (s->entered != NULL)
		sem_post(s->entered);
	while (!iop_cancel_requested() && now_ns() < end)
		sched_yield();
	atomic_store(&s->saw_cancel, iop_cancel_requested());
	return s->result;
}

static void *holder_main(void *arg)
{
	struct holder *h = arg;

	h->begin_ret = iop_batch_begin(h->pool);
	if (h->begin_ret == 0)
		h->job = iop_call(h->pool, work_return_ctx, (void *)h->value,
				  NULL, NULL);
	sem_post(&h->held);
	sem_wait_n(&h->end, 1);
	h->end_ret = h->begin_ret == 0 ? iop_batch_end(h->pool) : -1;
	return NULL;
}

void holder_start(struct holder *h, iop_pool *pool, intptr_t value)
{
	h->pool = pool;
	h->value = value;
	h->job = NULL;
	h->begin_ret = -1;
	h->end_ret = -1;
	ck_assert_int_eq(sem_init(&h->held, 0, 0), 0);
	ck_assert_int_eq(sem_init(&h->end, 0, 0), 0);
	ck_assert_int_eq(pthread_create(&h->thread, NULL, holder_main, h), 0);
	sem_wait_n(&h->held, 1);
}

void holder_release(struct holder *h)
{
	sem_post(&h->end);
}

void holder_join(struct holder *h)
{
	ck_assert_int_eq(pthread_join(h->thread, NULL), 0);
	sem_destroy(&h->held);
	sem_destroy(&h->end);
}

/* ---- Shared by the elastic and sched suites. ---- */

iop_pool *pool_new_opts(const struct iop_options *opts)
{
	iop_pool *pool = iop_pool_new(opts);

	ck_assert_msg(pool != NULL,
		      "iop_pool_new(threads=%u, min_threads=%u): %s",
		      opts ? opts->threads : 0, opts ? opts->min_threads : 0,
		      strerror(errno));
	return pool;
}

void pool_stats(const iop_pool *pool, struct iop_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	ck_assert_int_eq(iop_pool_stats(pool, st), 0);
}

static void nap_1ms(void)
{
	struct timespec ts = { 0, 1000000 };

	nanosleep(&ts, NULL);
}

unsigned wait_threads(const iop_pool *pool, unsigned want, int ms)
{
	int64_t end = now_ns() + (int64_t)ms * 1000000;
	struct iop_stats st;

	for (;;) {
		st.size = sizeof(st);
		if (iop_pool_stats(pool, &st) != 0)
			return UINT_MAX;
		if (st.threads == want || now_ns() >= end)
			return st.threads;
		nap_1ms();
	}
}

unsigned min_threads_seen(const iop_pool *pool, int ms)
{
	int64_t end = now_ns() + (int64_t)ms * 1000000;
	unsigned fewest = UINT_MAX;
	struct iop_stats st;

	do {
		st.size = sizeof(st);
		if (iop_pool_stats(pool, &st) != 0)
			return 0;
		if (st.threads < fewest)
			fewest = st.threads;
		nap_1ms();
	} while (now_ns() < end);
	return fewest;
}

bool sem_wait_n_ms(sem_t *s, int n, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	for (int i = 0; i < n; i++)
		while (sem_timedwait(s, &ts) != 0)
			if (errno != EINTR)
				return false;
	return true;
}

void batch_end_expect(iop_pool *pool, int submitted, int cancelled)
{
	int r = iop_batch_end(pool);

	ck_assert_msg(r == submitted || r == submitted - cancelled,
		      "iop_batch_end returned %d, want %d (or %d)", r,
		      submitted, submitted - cancelled);
}
