/*
 * uv-loop: iopool inside a libuv loop, next to a uv_timer that must keep
 * ticking on time.  Built when configure finds libuv (Debian: libuv1-dev).
 *
 *	uv-loop [-i TICK_MS] FILE...
 *
 * It sums FILEs as cksum(1) does, printing "CRC BYTES NAME" for each, in
 * order, while a uv_timer ticks every TICK_MS milliseconds (default 10).
 * At the end one line on stderr says how many ticks came, how many of
 * them while reads were in flight, and the longest gap between two ticks.
 * From the build directory, for example:
 *
 *	./examples/uv-loop -i 2 /usr/bin/[a-z]* > /dev/null
 *	./examples/uv-loop ../configure ../README.md > sums
 *	cksum ../configure ../README.md | cmp - sums	# silent: the same
 *
 * Errors go to stderr as "uv-loop: NAME: reason", the other files are
 * still read, and the exit status is then 1 (2 for bad usage).
 *
 * How it works: a uv_poll_t watches iop_pool_fd(), which is readable while
 * completions wait, and its callback runs them with iop_poll_budget() (in
 * sumfiles.c: each sums a chunk and queues the next read), at most
 * BUDGET_US microseconds' worth per turn of the loop, so that the timer
 * is not held back; what is left waits for the next turn, and the
 * descriptor stays readable meanwhile.  Once every file is summed, both
 * handles are closed and uv_run() returns.  Why not libuv's own
 * uv_fs_read()?  Its pool is process-wide, with four threads by default
 * shared with DNS lookups; an iopool pool is yours, with its own thread
 * limits, chains, groups and statistics.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iopool.h>
#include <uv.h>

#include "sumfiles.h"

#define PROG "uv-loop"
#define BUDGET_US 2000

/* The program's state, reached from the handles through their data. */
struct app {
	iop_pool *pool;
	struct sumfiles *sf;
	struct ticks ticks;
	uv_poll_t poll;
	uv_timer_t timer;
	bool poll_open, timer_open;	/* Initialised, not yet closed. */
	int status;
};

/* Close the handles still open; uv_run() returns once they are closed. */
static void stop(struct app *app)
{
	if (app->poll_open)
		uv_close((uv_handle_t *)&app->poll, NULL);
	if (app->timer_open)
		uv_close((uv_handle_t *)&app->timer, NULL);
	app->poll_open = app->timer_open = false;
}

/* Say what failed with libuv error @err, and stop the loop. */
static void fail(struct app *app, const char *what, int err)
{
	fprintf(stderr, PROG ": %s: %s\n", what, uv_strerror(err));
	app->status = 1;
	stop(app);
}

static void on_tick(uv_timer_t *timer)
{
	struct app *app = timer->data;

	ticks_tick(&app->ticks, sumfiles_reads_in_flight(app->sf));
}

/* The pool's descriptor is readable: run (some of) the callbacks. */
static void on_pool(uv_poll_t *poll, int status, int events)
{
	struct app *app = poll->data;
	int n;

	(void)events;
	if (status < 0) {
		fail(app, "uv_poll", status);
		return;
	}
	n = iop_poll_budget(app->pool, 0, BUDGET_US);
	if (n < 0) {
		fprintf(stderr, PROG ": iop_poll_budget: %s\n", strerror(-n));
		app->status = 1;
		stop(app);
	} else if (sumfiles_done(app->sf)) {
		stop(app);
	}
}

/* Start watching the pool and the timer.  Returns 0 or a libuv error. */
static int start(struct app *app, uv_loop_t *loop, unsigned ms)
{
	int err;

	err = uv_poll_init(loop, &app->poll, iop_pool_fd(app->pool));
	if (err)
		return err;
	app->poll_open = true;
	app->poll.data = app;
	err = uv_timer_init(loop, &app->timer);
	if (err)
		return err;
	app->timer_open = true;
	app->timer.data = app;
	err = uv_poll_start(&app->poll, UV_READABLE, on_pool);
	if (!err)
		err = uv_timer_start(&app->timer, on_tick, ms, ms);
	return err;
}

int main(int argc, char **argv)
{
	struct app app = { .status = 0 };
	unsigned long ms = 10;
	uv_loop_t loop;
	int first, err;

	first = ticks_parse_args(argc, argv, &ms);
	if (first < 0)
		goto usage;
	cksum_init();
	err = uv_loop_init(&loop);
	if (err) {
		fprintf(stderr, PROG ": uv_loop_init: %s\n", uv_strerror(err));
		return 1;
	}
	app.pool = iop_pool_new(NULL);
	if (app.pool)
		app.sf = sumfiles_new(app.pool, PROG, argv + first,
				      argc - first);
	if (!app.pool || !app.sf) {
		perror(app.pool ? PROG ": sumfiles_new" : PROG ": iop_pool_new");
		app.status = 1;
	} else if ((err = start(&app, &loop, (unsigned)ms))) {
		fail(&app, "starting the loop", err);
	} else {
		ticks_start(&app.ticks, (unsigned)ms);
		sumfiles_start(app.sf);
		if (sumfiles_done(app.sf))	/* Nothing could be queued. */
			stop(&app);
	}
	/* Runs until both handles are closed: at the end, or at once. */
	err = uv_run(&loop, UV_RUN_DEFAULT);
	if (err)
		fail(&app, "uv_run: handles left open", UV_EBUSY);
	else if (app.status == 0)
		ticks_report(&app.ticks, PROG, argc - first, app.sf);
	err = uv_loop_close(&loop);
	if (err)
		fail(&app, "uv_loop_close", err);
	/* After an error, jobs still in flight end here, before the free. */
	iop_pool_destroy(app.pool);
	if (app.sf && app.status == 0)
		app.status = sumfiles_status(app.sf);
	sumfiles_free(app.sf);
	if (fclose(stdout) == EOF) {
		perror(PROG ": standard output");
		app.status = 1;
	}
	return app.status;
usage:
	fprintf(stderr, "usage: " PROG " [-i TICK_MS] FILE...\n");
	return 2;
}
