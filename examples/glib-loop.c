/*
 * glib-loop: iopool inside a GLib main loop (GMainLoop), next to a
 * g_timeout_add() timer that must keep ticking on time.  Built when
 * configure finds GLib (Debian: libglib2.0-dev).
 *
 *	glib-loop [-i TICK_MS] FILE...
 *
 * It sums FILEs as cksum(1) does, printing "CRC BYTES NAME" for each, in
 * order, while the timer ticks every TICK_MS milliseconds (default 10).
 * At the end one line on stderr says how many ticks came, how many of
 * them while reads were in flight, and the longest gap between two ticks.
 * From the build directory, for example:
 *
 *	./examples/glib-loop -i 2 /usr/bin/[a-z]* > /dev/null
 *	./examples/glib-loop ../configure ../README.md > sums
 *	cksum ../configure ../README.md | cmp - sums	# silent: the same
 *
 * Errors go to stderr as "glib-loop: NAME: reason", the other files are
 * still read, and the exit status is then 1 (2 for bad usage).
 *
 * How it works: g_unix_fd_add() makes a source of iop_pool_fd(), which is
 * readable while completions wait, and its callback runs them with
 * iop_poll_budget() (in sumfiles.c: each sums a chunk and queues the next
 * read), at most BUDGET_US microseconds' worth per dispatch, so that the
 * timer is not held back; what is left waits for the next dispatch, and
 * the descriptor stays readable meanwhile.  A GTK program does the same
 * with its default main context, and its widgets stay responsive while
 * files load.  Once every file is summed, the sources are removed and
 * the loop quits.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib-unix.h>
#include <iopool.h>

#include "sumfiles.h"

#define PROG "glib-loop"
#define BUDGET_US 2000

/* The program's state, the sources' user data. */
struct app {
	iop_pool *pool;
	struct sumfiles *sf;
	struct ticks ticks;
	GMainLoop *loop;
	guint timer_id;		/* The timer's source, 0 once removed. */
	int status;
};

/* Remove the timer and quit the loop; the caller removes its own source. */
static void stop(struct app *app)
{
	if (app->timer_id)
		g_source_remove(app->timer_id);
	app->timer_id = 0;
	g_main_loop_quit(app->loop);
}

static gboolean on_tick(gpointer data)
{
	struct app *app = data;

	ticks_tick(&app->ticks, sumfiles_reads_in_flight(app->sf));
	return G_SOURCE_CONTINUE;
}

/* The pool's descriptor is readable: run (some of) the callbacks. */
static gboolean on_pool(gint fd, GIOCondition cond, gpointer data)
{
	struct app *app = data;
	int n;

	(void)fd;
	if (cond & (G_IO_ERR | G_IO_NVAL)) {
		fprintf(stderr, PROG ": the pool's descriptor failed\n");
		app->status = 1;
		stop(app);
		return G_SOURCE_REMOVE;
	}
	n = iop_poll_budget(app->pool, 0, BUDGET_US);
	if (n < 0) {
		fprintf(stderr, PROG ": iop_poll_budget: %s\n", strerror(-n));
		app->status = 1;
	}
	if (n < 0 || sumfiles_done(app->sf)) {
		stop(app);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
	struct app app = { .status = 0 };
	unsigned long ms = 10;
	guint pool_id;
	int first;

	first = ticks_parse_args(argc, argv, &ms);
	if (first < 0)
		goto usage;
	cksum_init();
	app.pool = iop_pool_new(NULL);
	if (!app.pool) {
		perror(PROG ": iop_pool_new");
		return 1;
	}
	app.sf = sumfiles_new(app.pool, PROG, argv + first, argc - first);
	if (!app.sf) {
		perror(PROG ": sumfiles_new");
		iop_pool_destroy(app.pool);
		return 1;
	}
	/* GLib aborts when memory runs out: these cannot fail otherwise. */
	app.loop = g_main_loop_new(NULL, FALSE);
	pool_id = g_unix_fd_add(iop_pool_fd(app.pool), G_IO_IN, on_pool, &app);
	app.timer_id = g_timeout_add((guint)ms, on_tick, &app);
	ticks_start(&app.ticks, (unsigned)ms);
	sumfiles_start(app.sf);
	if (sumfiles_done(app.sf)) {	/* Nothing could be queued. */
		g_source_remove(app.timer_id);
		g_source_remove(pool_id);
	} else {
		g_main_loop_run(app.loop);
		if (app.status == 0)
			ticks_report(&app.ticks, PROG, argc - first, app.sf);
	}
	g_main_loop_unref(app.loop);
	/* After an error, jobs still in flight end here, before the free. */
	iop_pool_destroy(app.pool);
	if (app.status == 0)
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
