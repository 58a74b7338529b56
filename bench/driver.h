/*
 * The driver's side of iopool-bench: the results of the child runs, and
 * what reads them (report.c: the table and the CSV; plot.c: gnuplot).
 * driver.c parses the options, starts one child process per (system,
 * workload, repetition) and collects the "METRIC VALUE" lines each child
 * prints.  All of it runs on the driver's one thread.
 */
#ifndef IOP_BENCH_DRIVER_H
#define IOP_BENCH_DRIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "systems.h"
#include "workloads.h"

#define RUN_METRICS_MAX	32

struct metric {
	char name[32];
	double value;
};

/* One child process: what it ran and the figures it printed. */
struct run {
	int wl;
	const struct bench_system *sys;
	int rep;		/* from 1 */
	char variant[24];	/* "" (the defaults), or "threads=8"... */
	unsigned threads;	/* 0: the workload's default */
	unsigned window;	/* 0: the workload's default */
	bool ok;		/* exited 0 */
	int nmetrics;
	struct metric m[RUN_METRICS_MAX];
};

struct results {
	struct run *runs;
	size_t n, cap;
	/* The systems selected: the table's columns, in order. */
	const struct bench_system *const *systems;
	int nsys;
	unsigned wls;		/* the workloads selected: bit n, number n */
	int reps;
	unsigned threads;	/* --threads for every workload, or 0 */
	unsigned window;	/* --window for every workload, or 0 */
	double wall_s;		/* the whole run, for the heading */
};

/* The median, min and max of one figure over the runs that have it. */
struct stat3 {
	double med, min, max;
	int n;
};

/*
 * A row of the table: @metric of workload @wl.  @better says which way is
 * better (+1 higher, -1 lower); rows with it set are the headline figures
 * that get iopool's ratios and a plot.
 */
struct row {
	int wl;
	const char *metric;
	const char *label;
	int better;
};

extern const struct row report_rows[];

/* The figure @name of run @r in *@v; false if it has none. */
bool run_get(const struct run *r, const char *name, double *v);

/*
 * The figure @metric of @sys on @wl (@variant "" for the defaults) over
 * its successful runs.  False if there is none.
 */
bool results_get(const struct results *res, int wl,
		 const struct bench_system *sys, const char *variant,
		 const char *metric, struct stat3 *st);

/* Did any run of @sys on @wl (@variant) fail? */
bool results_failed(const struct results *res, int wl,
		    const struct bench_system *sys, const char *variant);

/* A number in 3-4 significant digits with k/M/G: "12.0M", "982k". */
void fmt_num(char *buf, size_t size, double v);

/* Print the table of medians and iopool's ratios to stdout. */
void report_table(const struct results *res);

/* Write every figure of every successful run to @path; 0 or -1. */
int report_csv(const struct results *res, const char *path);

/* The W6 sweeps (threads at window 64; window at 64 threads). */
#define SWEEP_THREADS	7
#define SWEEP_WINDOWS	6
extern const unsigned sweep_threads[SWEEP_THREADS];
extern const unsigned sweep_windows[SWEEP_WINDOWS];

/* Does @sys take part in the W6 sweeps? (sync has no threads or depth.) */
bool sweep_system(const struct bench_system *sys);

/*
 * Write the plots' data and gnuplot scripts into @dir and run gnuplot on
 * them if it is installed.  Returns 0, or -1 after a message.
 */
int plot_all(const struct results *res, const char *dir, bool sweeps);

#endif /* IOP_BENCH_DRIVER_H */
