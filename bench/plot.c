/*
 * Plots with gnuplot: for each headline figure a bar chart of every
 * system (median, min-max bars, iopool in its own colour), and for W6
 * reads/s against worker threads and against reads in flight.  The data
 * (.dat) and the scripts (.gp) are always written; gnuplot, when it is on
 * the PATH, turns each script into a PNG in the same directory.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const unsigned sweep_threads[SWEEP_THREADS] = { 1, 2, 4, 8, 16, 32, 64 };
const unsigned sweep_windows[SWEEP_WINDOWS] = { 1, 4, 16, 64, 256, 1024 };

bool sweep_system(const struct bench_system *sys)
{
	return (sys->workloads & WL_BIT(6)) && sys != &sys_sync;
}

static FILE *open_in(const char *dir, const char *name, const char *ext)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
	f = fopen(path, "w");
	if (!f)
		perror(path);
	return f;
}

/* The lines every script starts with. */
static void gp_head(FILE *gp, const char *name, const char *title)
{
	fprintf(gp, "set terminal pngcairo size 900,500 noenhanced\n"
		    "set output '%s.png'\n"
		    "set title \"%s\"\n"
		    "set yrange [0:*]\n"
		    "set grid ytics\n"
		    "set linetype 1 lc rgb '#d55e00'\n"
		    "set linetype 2 lc rgb '#0072b2'\n"
		    "set linetype 3 lc rgb '#009e73'\n"
		    "set linetype 4 lc rgb '#56b4e9'\n"
		    "set datafile missing '-'\n",
		name, title);
}

/* A bar chart of @row's figure for every system that has it. */
static int plot_bars(const struct results *res, const char *dir,
		     const struct row *row, char *name, size_t size)
{
	FILE *dat, *gp;
	struct stat3 st;
	char title[256], label[32];
	double top = 0;
	int n = 0;

	snprintf(name, size, "%s-%s", wl_defs[row->wl].name, row->metric);
	dat = open_in(dir, name, "dat");
	if (!dat)
		return -1;
	fprintf(dat, "# system median min max colour label\n");
	for (int i = 0; i < res->nsys; i++) {
		const struct bench_system *s = res->systems[i];

		if (!results_get(res, row->wl, s, "", row->metric, &st))
			continue;
		fmt_num(label, sizeof(label), st.med);
		fprintf(dat, "%s %.10g %.10g %.10g %d %s\n", s->name, st.med,
			st.min, st.max, s == &sys_iopool ? 1 : 2, label);
		top = st.max > top ? st.max : top;
		n++;
	}
	fclose(dat);
	gp = open_in(dir, name, "gp");
	if (!gp)
		return -1;
	snprintf(title, sizeof(title), "%s %s: %s (%s is better)\\nmedian "
		 "of %d run(s), bars: min-max", wl_defs[row->wl].name,
		 wl_defs[row->wl].title, row->label,
		 row->better > 0 ? "higher" : "lower", res->reps);
	gp_head(gp, name, title);
	if (top >= 1e4)
		fprintf(gp, "set format y '%%.0s%%c'\n");
	fprintf(gp, "set ylabel '%s'\nset style fill solid 0.7 border -1\n"
		    "set boxwidth 0.6\nset xrange [-0.6:%d.4]\nunset key\n"
		    "plot '%s.dat' using 0:2:5:xtic(1) with boxes "
		    "lc variable, \\\n"
		    "     '' using 0:2:3:4 with yerrorbars lc rgb 'black' "
		    "pt -1, \\\n"
		    "     '' using 0:4:6 with labels "
		    "offset 0,0.8\n", row->label, n - 1, name);
	fclose(gp);
	return 0;
}

/* W6 reads/s against threads (@threads) or reads in flight. */
static int plot_sweep(const struct results *res, const char *dir,
		      bool threads, char *name, size_t size)
{
	const unsigned *xs = threads ? sweep_threads : sweep_windows;
	int nx = threads ? SWEEP_THREADS : SWEEP_WINDOWS, ncol = 1;
	FILE *dat, *gp;
	struct stat3 st;

	snprintf(name, size, "W6-%s", threads ? "threads" : "window");
	dat = open_in(dir, name, "dat");
	if (!dat)
		return -1;
	fprintf(dat, "%s", threads ? "threads" : "window");
	for (int i = 0; i < res->nsys; i++)
		if (sweep_system(res->systems[i]) && ++ncol)
			fprintf(dat, " %s", res->systems[i]->name);
	fprintf(dat, "\n");
	for (int k = 0; k < nx; k++) {
		char variant[24];

		snprintf(variant, sizeof(variant), "%s=%u",
			 threads ? "threads" : "window", xs[k]);
		fprintf(dat, "%u", xs[k]);
		for (int i = 0; i < res->nsys; i++) {
			const struct bench_system *s = res->systems[i];

			if (!sweep_system(s))
				continue;
			if (results_get(res, 6, s, variant, "reads_per_s", &st))
				fprintf(dat, " %.10g", st.med);
			else
				fprintf(dat, " -");
		}
		fprintf(dat, "\n");
	}
	fclose(dat);
	gp = open_in(dir, name, "gp");
	if (!gp)
		return -1;
	gp_head(gp, name, threads ?
		"W6 cold 4 KiB random reads, O_DIRECT: reads/s against "
		"worker threads\\n64 reads in flight; medians" :
		"W6 cold 4 KiB random reads, O_DIRECT: reads/s against reads "
		"in flight\\n64 worker threads; medians");
	fprintf(gp, "set logscale x 2\nset xlabel '%s'\nset ylabel "
		    "'reads/s'\nset format y '%%.0s%%c'\nset grid xtics\n"
		    "set key below autotitle columnhead\n"
		    "plot for [i=2:%d] '%s.dat' using 1:i with linespoints "
		    "lw 2 pt 7",
		threads ? "worker threads" : "reads in flight", ncol, name);
	if (results_get(res, 6, &sys_sync, "", "reads_per_s", &st))
		fprintf(gp, ", \\\n     %.10g title 'sync (one thread, QD 1)' "
			    "with lines dt 2 lc rgb 'gray40'", st.med);
	fprintf(gp, "\n");
	fclose(gp);
	return 0;
}

/* Is @prog an executable file in a directory of $PATH? */
static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL, *dir, file[4096];
	bool found = false;

	if (!path)
		return false;
	copy = strdup(path);
	for (dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(file, sizeof(file), "%s/%s", dir, prog);
		found = access(file, X_OK) == 0;
	}
	free(copy);
	return found;
}

/* Run gnuplot on @name.gp inside @dir; 0 or -1. */
static int gnuplot(const char *dir, const char *name)
{
	char script[512];
	int status;
	pid_t pid;

	snprintf(script, sizeof(script), "%.400s.gp", name);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (chdir(dir) == 0)
			execlp("gnuplot", "gnuplot", script, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 ||
	    !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "iopool-bench: gnuplot failed on %s/%s\n", dir,
			script);
		return -1;
	}
	return 0;
}

int plot_all(const struct results *res, const char *dir, bool sweeps)
{
	char names[64][64];
	bool have = on_path("gnuplot");
	int n = 0, ret = 0;

	if (mkdir(dir, 0755) && errno != EEXIST) {
		perror(dir);
		return -1;
	}
	for (const struct row *row = report_rows; row->wl && !ret; row++)
		if (row->better && (res->wls & WL_BIT(row->wl)))
			ret = plot_bars(res, dir, row, names[n++], 64);
	for (int k = 0; sweeps && k < 2 && !ret; k++)
		ret = plot_sweep(res, dir, k == 0, names[n++], 64);
	for (int i = 0; have && i < n && !ret; i++)
		ret = gnuplot(dir, names[i]);
	if (!ret && have)
		printf("\nplots: %d PNG files in %s\n", n, dir);
	else if (!ret)
		printf("\nplots: gnuplot is not installed; its data and "
		       "scripts are in %s\n", dir);
	return ret;
}
