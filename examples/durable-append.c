/*
 * durable-append: append lines to a log file, acknowledging each one only
 * once it is on stable storage.  The example of batches and chains.
 *
 *	durable-append [-w WINDOW] LOG < LINES
 *
 * Each line of standard input is appended to LOG (created if missing) as
 * one record, newline included; a last line without one is appended as it
 * is, so LOG grows by exactly the input.  Once line N is on disk, "ack N
 * BYTES" goes to standard output.  Acks come in line order, and ack N means
 * lines 1 to N are all on disk.  -w sets how many records may be in flight
 * (default 16).  From the build directory, for example:
 *
 *	seq 100000 | ./examples/durable-append /tmp/log | tail -n 1
 *	(ulimit -f 1; seq 1000 | ./examples/durable-append /tmp/log2)
 *
 * The second stops at a short write.  Errors go to stderr as
 * "durable-append: LOG: ...", and the exit status is 0 only if every line
 * was acknowledged (2 for bad usage).
 *
 * How it works: a record is an iop_write() at the end of the log (opened
 * with O_APPEND by iop_openat()) linked to an iop_fdatasync(), whose
 * callback prints the ack.  The link starts the fdatasync only once the
 * write has written the whole record: a write that fails or is short
 * breaks the chain, and the fdatasync and all linked after it end with
 * -ECANCELED without running.  One batch queues a window of records as one
 * chain, write 1 -> fdatasync 1 -> write 2 -> ..., and the next window goes
 * once it has ended.  One chain, not one per record: O_APPEND writes queued
 * side by side run on different workers and may land in either order,
 * while a chain starts each write after the one before it, so the log
 * keeps the input's order.  (A database would write a whole window and
 * sync once: a group commit.)  Meanwhile the main thread waits in poll(2)
 * on standard input and iop_pool_fd(), reading on while a window is out.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iopool.h>

#define MAX_WINDOW 4096
#define INPUT_BYTES 65536	/* Read at once; a longer line grows it. */

/* One line of input, and the record it becomes. */
struct rec {
	struct rec *next;
	struct app *app;
	unsigned long no;	/* The line number, from 1. */
	size_t len;
	char data[];
};

/* The program's state.  Only the main thread touches it. */
struct app {
	iop_pool *pool;
	const char *path;
	int fd;			/* The log: -1 until open, and once closed. */
	unsigned jobs;		/* Submitted, callback not run yet. */
	unsigned window;
	struct rec *head, **tail;	/* Read, not yet acknowledged, */
	unsigned nrecs, nchain;	/* of which the first nchain are queued. */
	char *in;		/* Input not yet cut into lines. */
	size_t have, cap;
	bool eof, failed, done;
	unsigned long nlines, acked;
};

/* Say on stderr what failed (in record @r, if given): the run has failed. */
static void fail(struct app *app, const struct rec *r, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "durable-append: %s: ", app->path);
	if (r)
		fprintf(stderr, "line %lu: ", r->no);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	app->failed = true;
}

static void on_open(iop_job *job, ssize_t result, void *arg)
{
	struct app *app = arg;

	(void)job;
	app->jobs--;
	if (result < 0)
		fail(app, NULL, "%s", strerror((int)-result));
	else
		app->fd = (int)result;
}

static void on_write(iop_job *job, ssize_t result, void *arg)
{
	struct rec *r = arg;

	(void)job;
	r->app->jobs--;
	if (result == -ECANCELED)
		return;		/* A record before it failed, and said so. */
	if (result < 0)
		fail(r->app, r, "write: %s", strerror((int)-result));
	else if ((size_t)result < r->len)
		fail(r->app, r, "short write, %zd of %zu bytes", result,
		     r->len);
}

/* The record is on disk once its fdatasync has run: acknowledge it. */
static void on_sync(iop_job *job, ssize_t result, void *arg)
{
	struct rec *r = arg;

	(void)job;
	r->app->jobs--;
	if (result == 0) {
		printf("ack %lu %zu\n", r->no, r->len);
		r->app->acked++;
	} else if (result != -ECANCELED) {
		fail(r->app, r, "fdatasync: %s", strerror((int)-result));
	}
}

static void on_close(iop_job *job, ssize_t result, void *arg)
{
	struct app *app = arg;

	(void)job;
	app->jobs--;
	if (result < 0)
		fail(app, NULL, "close: %s", strerror((int)-result));
	app->fd = -1;
}

/*
 * Queue the next window, up to app->window records, in one batch as one
 * chain: write -> fdatasync -> write -> fdatasync -> ...
 */
static void queue_window(struct app *app)
{
	iop_job *w, *s = NULL, *prev = NULL;
	struct rec *r;

	iop_batch_begin(app->pool);	/* No other batch is open: no error. */
	for (r = app->head; r && app->nchain < app->window; r = r->next) {
		app->nchain++;
		w = iop_write(app->pool, app->fd, r->data, r->len,
			      IOP_OFFSET_CURRENT, on_write, r);
		s = w ? iop_fdatasync(app->pool, app->fd, on_sync, r) : NULL;
		app->jobs += (w != NULL) + (s != NULL);
		if (s && !(prev && iop_link(prev, w)) && !iop_link(w, s)) {
			prev = s;
			continue;
		}
		/* Out of memory: this record and those after it stay out. */
		fail(app, r, "cannot queue: %s",
		     s ? "iop_link failed" : strerror(errno));
		if (w)
			iop_cancel(w);	/* Held in the batch: it never runs. */
		if (s)
			iop_cancel(s);
		break;
	}
	iop_batch_end(app->pool);
}

/* The window has ended: drop its records. */
static void drop_window(struct app *app)
{
	struct rec *r;

	for (; app->nchain > 0; app->nchain--, app->nrecs--) {
		r = app->head;
		app->head = r->next;
		free(r);
	}
	if (!app->head)
		app->tail = &app->head;
}

/* Turn app->in[from, to) into a record at the end of the list. */
static bool add_record(struct app *app, size_t from, size_t to)
{
	struct rec *r = malloc(sizeof(*r) + (to - from));

	if (!r) {
		fail(app, NULL, "%s", strerror(ENOMEM));
		return false;
	}
	*r = (struct rec){ .app = app, .no = ++app->nlines, .len = to - from };
	memcpy(r->data, app->in + from, r->len);
	*app->tail = r;
	app->tail = &r->next;
	app->nrecs++;
	return true;
}

/* Read what standard input has; each complete line becomes a record. */
static void read_input(struct app *app)
{
	size_t start = 0, cap = app->cap ? 2 * app->cap : INPUT_BYTES;
	char *nl, *in;
	ssize_t n;

	if (app->have == app->cap) {
		in = realloc(app->in, cap);
		if (!in) {
			fail(app, NULL, "%s", strerror(ENOMEM));
			return;
		}
		app->in = in;
		app->cap = cap;
	}
	in = app->in;
	n = read(STDIN_FILENO, in + app->have, app->cap - app->have);
	if (n < 0 && errno != EINTR && errno != EAGAIN)
		fail(app, NULL, "standard input: %s", strerror(errno));
	if (n < 0)
		return;
	app->have += (size_t)n;
	app->eof = n == 0;
	while ((nl = memchr(in + start, '\n', app->have - start)) &&
	       add_record(app, start, (size_t)(nl + 1 - in)))
		start = (size_t)(nl + 1 - in);
	if (app->eof && start < app->have && add_record(app, start, app->have))
		start = app->have;
	memmove(in, in + start, app->have - start);
	app->have -= start;
}

static void close_log(struct app *app)
{
	app->jobs++;	/* on_close() counts it down, whichever runs it. */
	if (!iop_close(app->pool, app->fd, on_close, app))
		on_close(NULL, -errno, app);
}

/*
 * Whenever nothing is in flight: queue the next window, or close the log
 * once all is written (or something failed), or end once it is closed.
 */
static void step(struct app *app)
{
	while (app->jobs == 0 && !app->done) {
		drop_window(app);
		if (fflush(stdout) == EOF)
			fail(app, NULL, "standard output: %s", strerror(errno));
		if (app->fd < 0)
			app->done = true;	/* Never opened, or closed. */
		else if (!app->failed && app->head)
			queue_window(app);
		else if (!app->failed && !app->eof)
			break;			/* Wait for more input. */
		else
			close_log(app);
	}
}

int main(int argc, char **argv)
{
	struct app app = { .fd = -1, .tail = &app.head };
	struct pollfd pfd[2] = { { .events = POLLIN }, { .events = POLLIN } };
	unsigned long window = 16;
	char *end = "";
	int n;

	if (argc == 4 && strcmp(argv[1], "-w") == 0) {
		window = strtoul(argv[2], &end, 10);
		argv += 2;
		argc -= 2;
	}
	if (argc != 2 || *end || window < 1 || window > MAX_WINDOW) {
		fprintf(stderr, "usage: durable-append [-w WINDOW] LOG\n");
		return 2;
	}
	app.window = (unsigned)window;
	app.path = argv[1];
	/* A write past RLIMIT_FSIZE then fails with EFBIG, not the program. */
	signal(SIGXFSZ, SIG_IGN);
	app.pool = iop_pool_new(NULL);
	if (!app.pool) {
		fail(&app, NULL, "iop_pool_new: %s", strerror(errno));
		return 1;
	}
	if (iop_openat(app.pool, AT_FDCWD, app.path,
		       O_WRONLY | O_CREAT | O_APPEND, 0666, on_open, &app))
		app.jobs++;
	else
		fail(&app, NULL, "iop_openat: %s", strerror(errno));
	pfd[1].fd = iop_pool_fd(app.pool);
	for (step(&app); !app.done; step(&app)) {
		/* Read on while fewer than a window of records wait. */
		bool more = !app.eof && !app.failed &&
			    app.nrecs - app.nchain < app.window;

		pfd[0].fd = more ? STDIN_FILENO : -1;	/* -1: not watched. */
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fail(&app, NULL, "poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents)
			read_input(&app);
		if (pfd[1].revents && (n = iop_poll(app.pool)) < 0) {
			fail(&app, NULL, "iop_poll: %s", strerror(-n));
			break;
		}
	}
	iop_pool_destroy(app.pool);	/* After a break, jobs end here. */
	app.nchain = app.nrecs;
	drop_window(&app);
	free(app.in);
	if (fclose(stdout) == EOF)
		fail(&app, NULL, "standard output: %s", strerror(errno));
	if (!app.failed && app.acked != app.nlines)
		fail(&app, NULL, "only %lu of %lu lines acknowledged",
		     app.acked, app.nlines);
	return app.failed;
}
