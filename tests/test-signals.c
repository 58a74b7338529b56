/*
 * Suite "signals": a thread sends SIGALRM and SIGUSR1 to the process
 * thousands of times a second while reads, writes and calls run, as the
 * timers and reload signals of a legacy program would.  Checked:
 * - every handler runs on one of the program's own threads (the test
 *   thread, the sender, a thread blocked in iop_await()), never on a
 *   worker: the handler records gettid() and compares;
 * - no job result is a spurious -EINTR, every read of a regular file
 *   returns all it asked for with the right bytes, every write writes all;
 * - work functions run with every signal blocked, and their own sleeps
 *   are never interrupted;
 * - iop_wait() and iop_await() neither fail nor return early.
 * Run with handlers installed with and without SA_RESTART.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/prctl.h>

#include "helpers.h"

#define FILE_SIZE	(1u << 20)
#define CHUNK		65536
#define RUN_MS		800
#define SEED		0x5eed

/* The program's threads, and what the handlers saw. */
static atomic_int tid_main, tid_sender, tid_awaiter;
static atomic_long handled, foreign, foreign_tid;
static char foreign_name[17];


static void on_signal(int sig)
{
	int saved = errno;
	int t = (int)gettid_compat();

	(void)sig;
	atomic_fetch_add(&handled, 1);
	if (t != atomic_load(&tid_main) && t != atomic_load(&tid_sender) &&
	    t != atomic_load(&tid_awaiter)) {
		atomic_fetch_add(&foreign, 1);
		atomic_store(&foreign_tid, t);
		prctl(PR_GET_NAME, foreign_name);
	}
	errno = saved;
}

static void install(int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
}

/* Block or unblock SIGALRM and SIGUSR1 in the calling thread. */
static void set_test_signals(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(how, &set, NULL);
}

/* ---- The sender. ---- */

struct sender {
	atomic_bool stop;
	atomic_long sent;
	pthread_t thread;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct timespec ts = { 0, 50000 };	/* 50 us */

	atomic_store(&tid_sender, (int)gettid_compat());
	set_test_signals(SIG_UNBLOCK);
	while (!atomic_load(&s->stop)) {
		kill(getpid(), SIGALRM);
		kill(getpid(), SIGUSR1);
		atomic_fetch_add(&s->sent, 2);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* ---- Jobs and what they saw. ---- */

struct sig_stats {
	atomic_long reads, writes, calls, awaits;
	atomic_long eintr;		/* results or sleeps cut short */
	atomic_long short_io;		/* fewer bytes than due */
	atomic_long bad_data;		/* bytes that differ */
	atomic_long unblocked;		/* work run with signals open */
	atomic_long other;		/* any other unexpected result */
};

static struct sig_stats st;

struct rd {
	unsigned char buf[CHUNK];
	uint64_t off;
	bool write;
	atomic_int calls;
};

static void check_read(const unsigned char *buf, uint64_t off, ssize_t r)
{
	if (r == -EINTR) {
		atomic_fetch_add(&st.eintr, 1);
		return;
	}
	if (r != CHUNK) {
		atomic_fetch_add(r >= 0 ? &st.short_io : &st.other, 1);
		return;
	}
	for (size_t i = 0; i < CHUNK; i++)
		if (buf[i] != pattern_byte(SEED, off + i)) {
			atomic_fetch_add(&st.bad_data, 1);
			return;
		}
}

static void on_rw(iop_job *job, ssize_t result, void *arg)
{
	struct rd *r = arg;

	(void)job;
	atomic_fetch_add(&r->calls, 1);
	if (!r->write) {
		check_read(r->buf, r->off, result);
		atomic_fetch_add(&st.reads, 1);
		return;
	}
	atomic_fetch_add(&st.writes, 1);
	if (result == -EINTR)
		atomic_fetch_add(&st.eintr, 1);
	else if (result != CHUNK)
		atomic_fetch_add(result >= 0 ? &st.short_io : &st.other, 1);
}

/* A call: sleeps a little, several times; none may be cut short. */
static ssize_t sleepy_work(void *ctx)
{
	(void)ctx;
	if (signals_not_blocked() != 0)
		atomic_fetch_add(&st.unblocked, 1);
	for (int i = 0; i < 3; i++) {
		struct timespec ts = { 0, 20000 };

		if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
			return -EINTR;
	}
	return 0;
}

static void on_call(iop_job *job, ssize_t result, void *arg)
{
	atomic_int *calls = arg;

	(void)job;
	atomic_fetch_add(calls, 1);
	atomic_fetch_add(&st.calls, 1);
	if (result == -EINTR)
		atomic_fetch_add(&st.eintr, 1);
	else if (result != 0)
		atomic_fetch_add(&st.other, 1);
}

/* ---- A thread blocked in iop_await() on futures, round after round. */

struct awaiter {
	iop_pool *pool;
	int fd;
	atomic_bool stop;
	atomic_long rounds;
	pthread_t thread;
};

static void *awaiter_main(void *arg)
{
	struct awaiter *a = arg;
	static unsigned char buf[4][CHUNK];
	uint64_t rng = 99;

	atomic_store(&tid_awaiter, (int)gettid_compat());
	set_test_signals(SIG_UNBLOCK);
	while (!atomic_load(&a->stop)) {
		iop_job *j[4];
		uint64_t off[4];

		for (int i = 0; i < 4; i++) {
			off[i] = rng_next(&rng) % (FILE_SIZE - CHUNK);
			j[i] = iop_read(a->pool, a->fd, buf[i], CHUNK,
					(int64_t)off[i], NULL, NULL);
			if (!j[i])
				atomic_fetch_add(&st.other, 1);
		}
		for (int i = 0; i < 4; i++) {
			if (!j[i])
				continue;
			check_read(buf[i], off[i], iop_await(j[i]));
			atomic_fetch_add(&st.awaits, 1);
		}
		atomic_fetch_add(&a->rounds, 1);
	}
	return NULL;
}

static void run_under_signals(int sa_flags)
{
	enum { NR = 8, NW = 4, NC = 4 };
	iop_pool *pool = pool_new(4);
	int fd = make_pattern_file(FILE_SIZE, SEED);
	int wfd = make_pattern_file(NW * CHUNK, 1);
	struct rd *r = calloc(NR + NW, sizeof(*r));
	struct sender snd = { 0 };
	struct awaiter aw = { .pool = pool, .fd = fd };
	atomic_int ccalls;
	uint64_t rng = 7;
	int64_t end;
	long rounds = 0, waits_bad = 0;

	ck_assert_ptr_nonnull(r);
	memset(&st, 0, sizeof(st));
	atomic_store(&handled, 0);
	atomic_store(&foreign, 0);
	atomic_store(&tid_main, (int)gettid_compat());
	install(sa_flags);
	/* The two threads start with the signals blocked and open them once
	 * they have said who they are, so that no handler runs on a thread
	 * not yet known as the program's. */
	set_test_signals(SIG_BLOCK);
	ck_assert_int_eq(pthread_create(&aw.thread, NULL, awaiter_main, &aw),
			 0);
	ck_assert_int_eq(pthread_create(&snd.thread, NULL, sender_main, &snd),
			 0);
	set_test_signals(SIG_UNBLOCK);

	end = now_ns() + (int64_t)RUN_MS * 1000000;
	while (now_ns() < end) {
		int want = NR + NW + NC, got;

		atomic_init(&ccalls, 0);
		for (int i = 0; i < NR + NW; i++) {
			struct rd *x = &r[i];

			atomic_init(&x->calls, 0);
			x->write = i >= NR;
			if (x->write) {
				x->off = (uint64_t)(i - NR) * CHUNK;
				for (size_t k = 0; k < CHUNK; k++)
					x->buf[k] = (unsigned char)(k + i);
				ck_assert_ptr_nonnull(iop_write(
					pool, wfd, x->buf, CHUNK,
					(int64_t)x->off, on_rw, x));
			} else {
				x->off = rng_next(&rng) % (FILE_SIZE - CHUNK);
				ck_assert_ptr_nonnull(iop_read(
					pool, fd, x->buf, CHUNK,
					(int64_t)x->off, on_rw, x));
			}
		}
		for (int i = 0; i < NC; i++)
			ck_assert_ptr_nonnull(iop_call(pool, sleepy_work, NULL,
						       on_call, &ccalls));
		do {
			int n = iop_wait(pool, TEST_WAIT_MS);

			if (n < 0)
				waits_bad++;
			ck_assert_msg(n != 0, "no callback for %d ms",
				      TEST_WAIT_MS);
			got = load_int(&ccalls);
			for (int i = 0; i < NR + NW; i++)
				got += load_int(&r[i].calls);
		} while (got < want && waits_bad == 0);
		ck_assert_int_eq(got, want);
		rounds++;
	}
	atomic_store(&snd.stop, true);
	atomic_store(&aw.stop, true);
	pthread_join(snd.thread, NULL);
	pthread_join(aw.thread, NULL);
	iop_pool_destroy(pool);

	printf("signals%s: %ld sent (%.0f a second), %ld handled, %ld on a "
	       "thread not the program's; %ld reads, %ld writes, %ld calls, "
	       "%ld awaited reads: %ld -EINTR, %ld short, %ld wrong bytes, "
	       "%ld other\n", sa_flags & SA_RESTART ? " (SA_RESTART)" : "",
	       atomic_load(&snd.sent),
	       (double)atomic_load(&snd.sent) * 1000.0 / RUN_MS,
	       atomic_load(&handled), atomic_load(&foreign),
	       atomic_load(&st.reads), atomic_load(&st.writes),
	       atomic_load(&st.calls), atomic_load(&st.awaits),
	       atomic_load(&st.eintr), atomic_load(&st.short_io),
	       atomic_load(&st.bad_data), atomic_load(&st.other));
	ck_assert_int_eq(waits_bad, 0);
	ck_assert_int_gt(load_long(&handled), 0);
	ck_assert_msg(load_long(&foreign) == 0,
		      "%ld handlers ran on thread %ld (%s), not the program's",
		      load_long(&foreign), load_long(&foreign_tid),
		      foreign_name);
	ck_assert_int_eq(load_long(&st.eintr), 0);
	ck_assert_int_eq(load_long(&st.short_io), 0);
	ck_assert_int_eq(load_long(&st.bad_data), 0);
	ck_assert_int_eq(load_long(&st.unblocked), 0);
	ck_assert_int_eq(load_long(&st.other), 0);
	ck_assert_int_gt(rounds, 0);
	free(r);
	close(fd);
	close(wfd);
}

START_TEST(test_signals_without_restart)
{
	run_under_signals(0);
}
END_TEST

START_TEST(test_signals_with_restart)
{
	run_under_signals(SA_RESTART);
}
END_TEST

static Suite *signals_suite(void)
{
	Suite *s = suite_create("signals");
	TCase *tc = tcase_new("storm");

	tcase_add_test(tc, test_signals_without_restart);
	tcase_add_test(tc, test_signals_with_restart);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(signals_suite());
}
