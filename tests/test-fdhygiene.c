/*
 * Suite "fdhygiene": a program with a busy pool starts other programs
 * (fork + exec, posix_spawn) and none of them inherits a descriptor of
 * the pool's: not its eventfd, not the files iop_openat() opened for the
 * caller, not the file an iop_readfile() job has open while it runs.  Only
 * what the program itself passes on arrives.
 *
 * The child is /bin/ls -l /proc/self/fd, its output read through a pipe
 * (its stdout).  Every descriptor it lists must be one the test process
 * had before it created the pool (what the test harness handed down, such
 * as 0, 1 and 2), the one the test passes on purpose, or the directory ls
 * opened to list itself.  The descriptor passed on purpose proves that the
 * check sees inherited descriptors at all.
 *
 * Nothing here starts threads in a forked child, so ThreadSanitizer runs
 * this suite too.
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
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define LS "/bin/ls"
#define MAX_FDS 1024

extern char **environ;

/* A set of descriptor numbers, with the target each one pointed to. */
struct fdset {
	int n;
	int fd[MAX_FDS];
	char target[MAX_FDS][128];
};

/* The descriptors this process has open now (/proc/self/fd). */
static void fdset_self(struct fdset *s)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	ck_assert_ptr_nonnull(d);
	s->n = 0;
	while ((e = readdir(d)) != NULL) {
		char link[64];
		ssize_t len;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		if (fd == dirfd(d))
			continue;
		ck_assert_int_lt(s->n, MAX_FDS);
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		len = readlink(link, s->target[s->n],
			       sizeof(s->target[0]) - 1);
		s->target[s->n][len > 0 ? len : 0] = '\0';
		s->fd[s->n++] = fd;
	}
	closedir(d);
}

static bool fdset_has(const struct fdset *s, int fd)
{
	for (int i = 0; i < s->n; i++)
		if (s->fd[i] == fd)
			return true;
	return false;
}

/*
 * Parse `ls -l /proc/self/fd` output: lines "... N -> target".  Returns
 * the descriptors listed, except the one ls opened on /proc/PID/fd.
 */
static void fdset_parse_ls(struct fdset *s, char *out, pid_t child)
{
	char own[64];

	snprintf(own, sizeof(own), "/proc/%d/fd", (int)child);
	s->n = 0;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char *arrow = strstr(line, " -> ");
		char *num;

		if (!arrow)
			continue;
		*arrow = '\0';
		num = strrchr(line, ' ');
		if (!num)
			continue;
		if (strcmp(arrow + 4, own) == 0)
			continue;
		ck_assert_int_lt(s->n, MAX_FDS);
		s->fd[s->n] = atoi(num + 1);
		snprintf(s->target[s->n], sizeof(s->target[0]), "%s",
			 arrow + 4);
		s->n++;
	}
}

/* Read all of @fd (until end of file) within TEST_WAIT_MS; free() it. */
static char *read_all(int fd)
{
	size_t size = 65536, have = 0;
	char *buf = malloc(size);
	int64_t end = now_ns() + (int64_t)TEST_WAIT_MS * 1000000;

	ck_assert_ptr_nonnull(buf);
	for (;;) {
		ssize_t n;

		struct pollfd p = { .fd = fd, .events = POLLIN };
		int left = (int)((end - now_ns()) / 1000000);

		/* At end of file a pipe reports POLLHUP, not POLLIN. */
		ck_assert_msg(left > 0 && (poll(&p, 1, left) > 0 ||
					   errno == EINTR),
			      "the child's output stalled");
		n = read(fd, buf + have, size - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		have += (size_t)n;
		ck_assert_uint_lt(have, size - 1);
	}
	buf[have] = '\0';
	return buf;
}

/*
 * What the test passes on purpose: a descriptor without FD_CLOEXEC,
 * opened after the baseline.
 */
struct spawn_ctx {
	int passed;		/* inherited on purpose */
	const struct fdset *baseline;
	pid_t pid;		/* out */
	int out;		/* out: read end of the child's stdout */
	int err;		/* out: errno of a failed spawn, or 0 */
};

/* Start `ls -l /proc/self/fd` with fork + exec; stdout on a pipe. */
static void start_ls_fork(struct spawn_ctx *c)
{
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	c->pid = fork();
	ck_assert_int_ge(c->pid, 0);
	if (c->pid == 0) {
		/* dup2 clears FD_CLOEXEC on the new number only. */
		if (dup2(p[1], 1) < 0)
			_exit(126);
		execl(LS, "ls", "-l", "/proc/self/fd", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	c->out = p[0];
	c->err = 0;
}

/*
 * Start the same child with posix_spawn().  A work function runs this on
 * a worker thread, so it must not ck_assert: failures land in c->err.
 */
static void start_ls_spawn(struct spawn_ctx *c)
{
	char *argv[] = { "ls", "-l", "/proc/self/fd", NULL };
	posix_spawn_file_actions_t fa;
	int p[2];

	c->pid = -1;
	c->out = -1;
	if (pipe2(p, O_CLOEXEC) != 0) {
		c->err = errno;
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	c->err = posix_spawn(&c->pid, LS, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (c->err) {
		close(p[0]);
		return;
	}
	c->out = p[0];
}

static ssize_t work_spawn(void *ctx)
{
	start_ls_spawn(ctx);
	return 0;
}

/*
 * Collect the child's listing and check it: every descriptor in it is in
 * the baseline or is the one passed on purpose, and that one is there.
 * @pool_fds (@npool of them) are the pool's, named in the message.
 */
static void check_child(struct spawn_ctx *c, const int *pool_fds, int npool)
{
	char *out = read_all(c->out);
	struct fdset *got = malloc(sizeof(*got));
	bool passed_seen = false;
	int st;

	ck_assert_ptr_nonnull(got);
	close(c->out);
	while (waitpid(c->pid, &st, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "ls failed (status %#x)", st);
	fdset_parse_ls(got, out, c->pid);
	ck_assert_msg(got->n > 0, "no descriptor listed by ls");
	for (int i = 0; i < got->n; i++) {
		int fd = got->fd[i];

		if (fd == c->passed) {
			passed_seen = true;
			continue;
		}
		for (int k = 0; k < npool; k++)
			ck_assert_msg(fd != pool_fds[k],
				      "the child inherited the pool's "
				      "descriptor %d (%s)", fd,
				      got->target[i]);
		ck_assert_msg(!strstr(got->target[i], "eventfd"),
			      "the child inherited an eventfd: %d (%s)", fd,
			      got->target[i]);
		ck_assert_msg(fdset_has(c->baseline, fd),
			      "the child inherited descriptor %d (%s), "
			      "opened after the pool was created", fd,
			      got->target[i]);
	}
	ck_assert_msg(passed_seen, "the descriptor passed on purpose (%d) "
		      "is missing: the check sees nothing", c->passed);
	free(got);
	free(out);
}

/* ---- The busy pool. ---- */

struct busy {
	iop_pool *pool;
	char dir[PATH_MAX];
	int dirfd;
	int opened[3];		/* iop_openat() results, kept open */
	int fifo_w;		/* our end of the FIFO the readfile reads */
	void *data;		/* iop_readfile() result */
	iop_job *readfile;
	struct gate gate;
	struct held held[2];
	struct done_rec held_done;
	sem_t entered;
	int pool_fds[8];	/* descriptors the pool opened or owns */
	int npool;
};

/* Wait until a descriptor other than @not_this points at @path. */
static int wait_fd_on(const char *path, int not_this)
{
	struct fdset *s = malloc(sizeof(*s));
	int64_t end = now_ns() + (int64_t)TEST_WAIT_MS * 1000000;
	int found = -1;

	ck_assert_ptr_nonnull(s);
	while (found < 0 && now_ns() < end) {
		fdset_self(s);
		for (int i = 0; i < s->n; i++)
			if (s->fd[i] != not_this &&
			    strcmp(s->target[i], path) == 0)
				found = s->fd[i];
		if (found < 0)
			sched_yield();
	}
	free(s);
	return found;
}

static void cloexec(int fd)
{
	ck_assert_int_eq(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
}

/*
 * A pool of 6 with: two workers held on a gate, three files opened by
 * iop_openat() and kept, and an iop_readfile() of a FIFO blocked in
 * read(2) with the FIFO open (we hold its write end).  Three workers stay
 * free for the jobs of the test.
 */
static void busy_start(struct busy *b)
{
	const char *tmp = getenv("TMPDIR");
	char fifo[PATH_MAX + 8];
	int fd;

	memset(b, 0, sizeof(*b));
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	snprintf(b->dir, sizeof(b->dir), "%s/iopool-fdhygiene-XXXXXX", tmp);
	ck_assert_ptr_nonnull(mkdtemp(b->dir));
	b->dirfd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(b->dirfd, 0);
	fd = openat(b->dirfd, "data", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello\n", 6), 6);
	close(fd);
	ck_assert_int_eq(mkfifoat(b->dirfd, "fifo", 0600), 0);

	b->pool = pool_new(6);
	b->pool_fds[b->npool++] = iop_pool_fd(b->pool);

	/* Two workers held; the gate's pipe is ours, not inheritable. */
	gate_init(&b->gate);
	cloexec(b->gate.rfd);
	cloexec(b->gate.wfd);
	done_rec_init(&b->held_done);
	ck_assert_int_eq(sem_init(&b->entered, 0, 0), 0);
	for (int i = 0; i < 2; i++) {
		held_init(&b->held[i], &b->gate, &b->entered, 0);
		ck_assert_ptr_nonnull(iop_call(b->pool, held_work,
					       &b->held[i], done_record,
					       &b->held_done));
	}
	sem_wait_n(&b->entered, 2);

	/* Files the pool opened for us, kept open. */
	for (int i = 0; i < 3; i++) {
		ssize_t r = iop_await(iop_openat(b->pool, b->dirfd, "data",
						 O_RDONLY, 0, NULL, NULL));

		ck_assert_int_ge(r, 0);
		b->opened[i] = (int)r;
		b->pool_fds[b->npool++] = (int)r;
	}

	/*
	 * A readfile in flight: O_RDWR on a FIFO does not block and counts
	 * as a writer, so the job's open succeeds and its read(2) waits.
	 */
	snprintf(fifo, sizeof(fifo), "%s/fifo", b->dir);
	b->fifo_w = openat(b->dirfd, "fifo", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(b->fifo_w, 0);
	b->readfile = iop_readfile(b->pool, b->dirfd, "fifo", &b->data,
				   NULL, NULL);
	ck_assert_ptr_nonnull(b->readfile);
	fd = wait_fd_on(fifo, b->fifo_w);
	ck_assert_msg(fd >= 0, "the readfile job never opened the FIFO");
	b->pool_fds[b->npool++] = fd;
	ck_assert_int_eq(iop_job_state(b->readfile), IOP_RUNNING);
}

static void busy_stop(struct busy *b)
{
	/* End of file for the readfile, then let the held workers go. */
	ck_assert_int_eq(write(b->fifo_w, "xy", 2), 2);
	close(b->fifo_w);
	ck_assert_int_eq(iop_await(b->readfile), 2);
	ck_assert_str_eq(b->data, "xy");
	free(b->data);
	gate_open(&b->gate);
	drain_until(b->pool, &b->held_done.calls, 2);
	for (int i = 0; i < 3; i++)
		close(b->opened[i]);
	iop_pool_destroy(b->pool);
	gate_destroy(&b->gate);
	sem_destroy(&b->entered);
	ck_assert_int_eq(unlinkat(b->dirfd, "data", 0), 0);
	ck_assert_int_eq(unlinkat(b->dirfd, "fifo", 0), 0);
	close(b->dirfd);
	ck_assert_int_eq(rmdir(b->dir), 0);
}

/* Open /dev/null without FD_CLOEXEC: the descriptor passed on purpose. */
static int open_passed(void)
{
	int fd = open("/dev/null", O_RDONLY);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static struct fdset baseline;

/* fork + exec from the test thread while the pool is busy. */
START_TEST(test_fork_exec_inherits_no_pool_fd)
{
	struct busy b;
	struct spawn_ctx c = { .baseline = &baseline };

	fdset_self(&baseline);
	busy_start(&b);
	c.passed = open_passed();
	start_ls_fork(&c);
	check_child(&c, b.pool_fds, b.npool);
	close(c.passed);
	busy_stop(&b);
}
END_TEST

/* posix_spawn from a work function, on one of the pool's own workers. */
START_TEST(test_spawn_from_worker_inherits_no_pool_fd)
{
	struct busy b;
	struct spawn_ctx c = { .baseline = &baseline };

	fdset_self(&baseline);
	busy_start(&b);
	c.passed = open_passed();
	ck_assert_int_eq(iop_await(iop_call(b.pool, work_spawn, &c, NULL,
					    NULL)), 0);
	ck_assert_msg(c.err == 0, "posix_spawn: %s", strerror(c.err));
	check_child(&c, b.pool_fds, b.npool);
	close(c.passed);
	busy_stop(&b);
}
END_TEST

/*
 * Children started while the pool keeps opening and closing files: a
 * descriptor that got FD_CLOEXEC only after open() returned would leak
 * into a child started in between.  Twenty children, each checked.
 */
struct churn {
	iop_pool *pool;
	int dirfd;
	int stop;		/* these three: the polling thread's */
	int inflight;
	int opens;
	int errors;
};

static void churn_done(iop_job *job, ssize_t result, void *arg);

static void churn_submit(struct churn *ch)
{
	if (iop_openat(ch->pool, ch->dirfd, "data", O_RDONLY, 0, churn_done,
		       ch))
		ch->inflight++;
	else
		ch->errors++;
}

/* Each open closes its file and submits the next, until told to stop. */
static void churn_done(iop_job *job, ssize_t result, void *arg)
{
	struct churn *ch = arg;

	(void)job;
	ch->inflight--;
	if (result < 0) {
		ch->errors++;
		return;
	}
	ch->opens++;
	close((int)result);
	if (!ch->stop)
		churn_submit(ch);
}

START_TEST(test_spawn_during_open_churn)
{
	struct busy b;
	struct churn ch = { 0 };
	int fds[1];

	fdset_self(&baseline);
	busy_start(&b);
	ch.pool = b.pool;
	ch.dirfd = b.dirfd;
	/* Three chains of opens on the three free workers. */
	for (int i = 0; i < 3; i++)
		churn_submit(&ch);
	fds[0] = iop_pool_fd(b.pool);
	for (int i = 0; i < 20; i++) {
		struct spawn_ctx c = { .baseline = &baseline };

		c.passed = open_passed();
		start_ls_fork(&c);
		ck_assert_int_ge(iop_poll(b.pool), 0);
		check_child(&c, fds, 1);
		close(c.passed);
		ck_assert_int_ge(iop_wait(b.pool, 10), 0);
	}
	ch.stop = 1;
	while (ch.inflight > 0)
		ck_assert_int_gt(iop_wait(b.pool, TEST_WAIT_MS), 0);
	ck_assert_int_eq(ch.errors, 0);
	ck_assert_int_gt(ch.opens, 0);
	busy_stop(&b);
}
END_TEST

/* The pool's descriptor itself is close-on-exec, as the header says. */
START_TEST(test_pool_fd_cloexec)
{
	iop_pool *pool = pool_new(1);
	int flags = fcntl(iop_pool_fd(pool), F_GETFD);

	ck_assert_int_ge(flags, 0);
	ck_assert(flags & FD_CLOEXEC);
	iop_pool_destroy(pool);
}
END_TEST

static Suite *fdhygiene_suite(void)
{
	Suite *s = suite_create("fdhygiene");
	TCase *tc = tcase_new("exec");

	tcase_add_test(tc, test_pool_fd_cloexec);
	tcase_add_test(tc, test_fork_exec_inherits_no_pool_fd);
	tcase_add_test(tc, test_spawn_from_worker_inherits_no_pool_fd);
	tcase_add_test(tc, test_spawn_during_open_churn);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (access(LS, X_OK) != 0) {
		fprintf(stderr, "%s not found: skipped\n", LS);
		return 77;
	}
	return run_suite(fdhygiene_suite());
}
