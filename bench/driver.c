/*
 * iopool-bench: compare iopool with a synchronous loop, libuv's thread
 * pool and io_uring on the workloads W1-W8 of ../shared/WORKLOADS.md, and
 * on M1, mixed job lengths (defined in run-m1.c and in --help).
 *
 *	make bench && ./bench/iopool-bench [--reps 3] [--csv out.csv] ...
 *
 * The driver runs every (system, workload) as a fresh process: it
 * re-executes itself as "iopool-bench --child SYSTEM WORKLOAD", which
 * prints one "METRIC VALUE" line per figure on its stdout.  Repetitions
 * are interleaved: one of every system and workload, then the next, each
 * starting with the next system in turn (see run_rep()).  Then
 * it prints the table of medians and iopool's ratios to the peers, and
 * optionally writes the CSV and the plots (with the W6 sweeps).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "driver.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A child that runs longer than this is killed (SIGALRM): a hang. */
#define CHILD_TIMEOUT_S	600
/* The most threads --threads takes (iopool's and libuv's limit). */
#define IOP_BENCH_THREADS_MAX	1024

static const struct bench_system *const all_systems[] = {
	&sys_iopool,
	&sys_sync,
#ifdef HAVE_LIBUV
	&sys_libuv,
#endif
#ifdef HAVE_LIBURING
	&sys_io_uring,
	&sys_io_uring_async,
#endif
};
#define NSYSTEMS (int)(sizeof(all_systems) / sizeof(all_systems[0]))

struct opts {
	unsigned wls;		/* bit n: run Wn */
	const struct bench_system *systems[NSYSTEMS];
	int nsys;
	int reps;
	const char *csv;
	const char *plot;
	bool no_sweep;
	unsigned threads;	/* override, 0: the workload's default */
	unsigned window;	/* override, 0: the workload's default */
	bool child;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: iopool-bench [OPTION]...\n"
"Run the workloads W1-W8 (WORKLOADS.md) and M1 (below) on iopool and its\n"
"peers, each (system, workload) as a fresh process, and print a table of\n"
"medians and iopool's ratios.\n"
"\n"
"  --workloads LIST  of W1,...,W8,M1 to run (default: all, in that order)\n"
"  --systems LIST    of:");
	for (int i = 0; i < NSYSTEMS; i++)
		fprintf(f, " %s", all_systems[i]->name);
	fprintf(f, "\n"
"                    (default: all of them; compiled in are those configure\n"
"                    found)\n"
"  --reps N          repetitions, interleaved (default 3)\n"
"  --csv FILE        write every figure as workload,system,rep,metric,value\n"
"                    (sweep points have workloads like W6/threads=8)\n"
"  --plot DIR        write PNG plots (gnuplot) and their data into DIR; with\n"
"                    W6 selected, also sweep W6 over threads 1-64 and reads\n"
"                    in flight 1-1024\n"
"  --no-sweep        with --plot: skip the W6 sweeps\n"
"  --threads N       override every workload's worker threads\n"
"  --window N        override every workload's ops in flight\n"
"  --child SYSTEM WORKLOAD\n"
"                    run one workload in this process and print its figures\n"
"  --help            print this and exit\n"
"\n"
"Data files: $%s (default %s) and\n"
"$%s (default %s), created when missing.\n"
"\n"
"M1, mixed job lengths (not in WORKLOADS.md; its common rules apply):\n"
"200,000 jobs, window 256 in flight, 4 worker threads, closed loop as W1\n"
"(each completion callback submits the next job).  Job i (from 0, in\n"
"submission order) is long when i %% 100 == 99: it blocks in a relative\n"
"nanosleep of 1 ms as in W4; the others are no-ops as in W1 (2,000 long,\n"
"198,000 short).  Warm-up: 10,000 jobs of the same mix, untimed.  Reports\n"
"jobs/s = 200,000 / timed seconds; the short jobs' latency, submit to\n"
"callback on the main thread, p50, p99, p99.9 in us, nearest-rank as W3;\n"
"the long jobs' count (a check); CPU ns/job, context switches/job; wall\n"
"ms and its ratio to the ideal 2,000 x 1 ms / 4 workers = 500 ms.\n"
"Systems: iopool (iop_call), libuv (uv_queue_work), sync (each job inline\n"
"on one thread, about 2 s: a reference); not io_uring.\n",
		DATA_FILE_ENV, DATA_FILE_DEFAULT, COLD_FILE_ENV,
		COLD_FILE_DEFAULT);
}

static const struct bench_system *find_system(const char *name)
{
	for (int i = 0; i < NSYSTEMS; i++)
		if (!strcmp(all_systems[i]->name, name))
			return all_systems[i];
	return NULL;
}

/* Parse "W1,W3,M1" into a bit mask; 0 on an unknown name. */
static unsigned parse_workloads(const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	unsigned mask = 0;

	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int wl = wl_parse(tok);

		if (!wl) {
			fprintf(stderr, "iopool-bench: no workload %s\n", tok);
			mask = 0;
			break;
		}
		mask |= WL_BIT(wl);
	}
	free(copy);
	return mask;
}

/* Parse "iopool,libuv" into @o->systems; -1 on an unknown name. */
static int parse_systems(struct opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int ret = 0;

	o->nsys = 0;
	for (tok = strtok_r(copy, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		const struct bench_system *s = find_system(tok);

		if (!s) {
			fprintf(stderr, "iopool-bench: no system %s (not "
				"compiled in, or unknown)\n", tok);
			ret = -1;
		} else if (o->nsys < NSYSTEMS) {
			o->systems[o->nsys++] = s;
		}
	}
	free(copy);
	return o->nsys ? ret : -1;
}

static unsigned parse_count(const char *arg, unsigned max)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	return *end || v == 0 || v > max ? 0 : (unsigned)v;
}

/* Returns 0, or 2 (usage) after a message; exits for --help. */
static int parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "workloads", required_argument, NULL, 'w' },
		{ "systems", required_argument, NULL, 's' },
		{ "reps", required_argument, NULL, 'r' },
		{ "csv", required_argument, NULL, 'c' },
		{ "plot", required_argument, NULL, 'p' },
		{ "no-sweep", no_argument, NULL, 'N' },
		{ "threads", required_argument, NULL, 't' },
		{ "window", required_argument, NULL, 'W' },
		{ "child", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, bad = 0;

	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'w':
			o->wls = parse_workloads(optarg);
			bad |= !o->wls;
			break;
		case 's':
			bad |= parse_systems(o, optarg) != 0;
			break;
		case 'r':
			o->reps = (int)parse_count(optarg, 1000);
			bad |= !o->reps;
			break;
		case 'c':
			o->csv = optarg;
			break;
		case 'p':
			o->plot = optarg;
			break;
		case 'N':
			o->no_sweep = true;
			break;
		case 't':
			o->threads = parse_count(optarg, IOP_BENCH_THREADS_MAX);
			bad |= !o->threads;
			break;
		case 'W':
			o->window = parse_count(optarg, 65536);
			bad |= !o->window;
			break;
		case 'C':
			o->child = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bad = 1;
			break;
		}
	}
	if (bad || (o->child && argc - optind != 2) ||
	    (!o->child && optind != argc)) {
		usage(stderr);
		return 2;
	}
	return 0;
}

/* --child SYSTEM WORKLOAD: run it here; 0, 1 (failed) or 2 (usage). */
static int child_main(const struct opts *o, char **args)
{
	const struct bench_system *sys = find_system(args[0]);
	int wl = wl_parse(args[1]);
	struct bench_cfg cfg = { .wl = wl };
	char name[64];

	if (!sys || !wl) {
		fprintf(stderr, "iopool-bench: --child %s %s: no such %s\n",
			args[0], args[1], sys ? "workload" : "system");
		return 2;
	}
	cfg.threads = o->threads ? o->threads : wl_defs[wl].threads;
	cfg.window = o->window ? o->window : wl_defs[wl].window;
	snprintf(name, sizeof(name), "%s %s", wl_defs[wl].name, sys->name);
	cfg.name = name;
	alarm(CHILD_TIMEOUT_S);
	return run_workload(sys, &cfg);
}

/* Read the child's "METRIC VALUE" lines from @fd into @r. */
static void read_metrics(int fd, struct run *r)
{
	FILE *f = fdopen(fd, "r");
	char line[256];

	if (!f) {
		close(fd);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		struct metric *m = &r->m[r->nmetrics];

		if (r->nmetrics < RUN_METRICS_MAX &&
		    sscanf(line, "%31s %lf", m->name, &m->value) == 2)
			r->nmetrics++;
	}
	fclose(f);
}

/*
 * Run @r in a fresh process (this program again, with --child), collect
 * its figures and wait for it.  @r->ok says whether it exited 0.
 */
static void run_child(struct run *r)
{
	char th[16], wi[16], *argv[10];
	int n = 0, pfd[2], status = 0;
	pid_t pid;

	argv[n++] = "iopool-bench";
	argv[n++] = "--child";
	argv[n++] = (char *)r->sys->name;
	argv[n++] = (char *)wl_defs[r->wl].name;
	if (r->threads) {
		snprintf(th, sizeof(th), "%u", r->threads);
		argv[n++] = "--threads";
		argv[n++] = th;
	}
	if (r->window) {
		snprintf(wi, sizeof(wi), "%u", r->window);
		argv[n++] = "--window";
		argv[n++] = wi;
	}
	argv[n] = NULL;
	if (pipe2(pfd, O_CLOEXEC)) {
		perror("iopool-bench: pipe");
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		execv("/proc/self/exe", argv);
		perror("iopool-bench: exec /proc/self/exe");
		_exit(127);
	}
	close(pfd[1]);
	if (pid < 0) {
		perror("iopool-bench: fork");
		close(pfd[0]);
		return;
	}
	read_metrics(pfd[0], r);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	r->ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!r->ok)
		fprintf(stderr, "iopool-bench: FAILED: %s%s%s %s, rep %d (%s "
			"%d)\n", wl_defs[r->wl].name, *r->variant ? "/" : "",
			r->variant, r->sys->name, r->rep,
			WIFEXITED(status) ? "exit" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status)
					  : WTERMSIG(status));
}

/* Print one line of progress on stderr: the run's headline figure. */
static void progress(const struct results *res, const struct run *r,
		     double secs)
{
	const struct row *row = report_rows;
	char num[32] = "-";
	double v;

	while (row->wl && (row->wl != r->wl || !row->better))
		row++;
	if (row->wl && run_get(r, row->metric, &v))
		fmt_num(num, sizeof(num), v);
	fprintf(stderr, "iopool-bench: rep %d/%d %s%s%s %s: %s %s (%.1f s)\n",
		r->rep, res->reps, wl_defs[r->wl].name, *r->variant ? "/" : "",
		r->variant, r->sys->name, num, row->wl ? row->label : "",
		secs);
}

/* Add a run to @res and carry it out; -1 if out of memory. */
static int add_run(struct results *res, const struct run *proto)
{
	struct run *r;
	int64_t t0 = mono_ns();

	if (res->n == res->cap) {
		size_t cap = res->cap ? 2 * res->cap : 64;
		struct run *p = realloc(res->runs, cap * sizeof(*p));

		if (!p)
			return -1;
		res->runs = p;
		res->cap = cap;
	}
	r = &res->runs[res->n++];
	*r = *proto;
	run_child(r);
	progress(res, r, (double)(mono_ns() - t0) / 1e9);
	return 0;
}

/*
 * One repetition of every selected (workload, system), the systems in
 * turn one place further on than in the repetition before: whoever reads
 * the cold file first after a pause pays for the blocks the disk's own
 * cache (a virtual disk's host) has let go, and that should not be the
 * same system every time.
 */
static int run_rep(struct results *res, const struct opts *o, int rep)
{
	for (int wl = 1; wl <= WL_COUNT; wl++) {
		if (!(o->wls & WL_BIT(wl)))
			continue;
		for (int i = 0; i < o->nsys; i++) {
			struct run r = { .wl = wl,
					 .sys = o->systems[(i + rep - 1) %
							   o->nsys],
					 .rep = rep, .threads = o->threads,
					 .window = o->window };

			if ((r.sys->workloads & WL_BIT(wl)) && add_run(res, &r))
				return -1;
		}
	}
	return 0;
}

/* One repetition of the W6 sweeps: threads at window 64, then window. */
static int run_sweep_rep(struct results *res, const struct opts *o, int rep)
{
	for (int k = 0; k < SWEEP_THREADS + SWEEP_WINDOWS; k++) {
		for (int i = 0; i < o->nsys; i++) {
			struct run r = { .wl = 6, .sys = o->systems[i],
					 .rep = rep };

			if (!sweep_system(r.sys))
				continue;
			if (k < SWEEP_THREADS)
				r.threads = sweep_threads[k];
			else
				r.window = sweep_windows[k - SWEEP_THREADS];
			snprintf(r.variant, sizeof(r.variant), "%s=%u",
				 r.threads ? "threads" : "window",
				 r.threads ? r.threads : r.window);
			if (add_run(res, &r))
				return -1;
		}
	}
	return 0;
}

/* Create the data files the selected workloads read; 0 or -1. */
static int ensure_files(unsigned wls)
{
	if ((wls & (WL_BIT(2) | WL_BIT(5))) &&
	    data_file_ensure(data_path(DATA_FILE_ENV, DATA_FILE_DEFAULT),
			     DATA_SIZE))
		return -1;
	if ((wls & (WL_BIT(6) | WL_BIT(7))) &&
	    data_file_ensure(data_path(COLD_FILE_ENV, COLD_FILE_DEFAULT),
			     COLD_SIZE))
		return -1;
	return 0;
}

static int count_failed(const struct results *res)
{
	int n = 0;

	for (size_t i = 0; i < res->n; i++)
		n += !res->runs[i].ok;
	return n;
}

static void opts_defaults(struct opts *o)
{
	if (!o->wls)
		o->wls = (WL_BIT(WL_COUNT + 1) - 1) & ~1u;
	if (!o->nsys) {
		for (int i = 0; i < NSYSTEMS; i++)
			o->systems[i] = all_systems[i];
		o->nsys = NSYSTEMS;
	}
	if (!o->reps)
		o->reps = 3;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct results res = { 0 };
	bool sweeps;
	int64_t t0;
	int failed, ret = parse_opts(&o, argc, argv);

	if (ret)
		return ret;
	if (o.child)
		return child_main(&o, argv + optind);
	opts_defaults(&o);
	if (ensure_files(o.wls))
		return 1;
	sweeps = o.plot && !o.no_sweep && (o.wls & WL_BIT(6));
	res.systems = o.systems;
	res.nsys = o.nsys;
	res.wls = o.wls;
	res.reps = o.reps;
	res.threads = o.threads;
	res.window = o.window;
	t0 = mono_ns();
	for (int rep = 1; rep <= o.reps && !ret; rep++)
		ret = run_rep(&res, &o, rep);
	for (int rep = 1; sweeps && rep <= o.reps && !ret; rep++)
		ret = run_sweep_rep(&res, &o, rep);
	res.wall_s = (double)(mono_ns() - t0) / 1e9;
	report_table(&res);
	if (o.csv && report_csv(&res, o.csv))
		ret = -1;
	if (o.plot && plot_all(&res, o.plot, sweeps))
		ret = -1;
	failed = count_failed(&res);
	if (failed)
		fprintf(stderr, "iopool-bench: %d run%s FAILED (see above)\n",
			failed, failed == 1 ? "" : "s");
	free(res.runs);
	return ret || failed ? 1 : 0;
}
