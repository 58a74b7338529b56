/*
 * The driver's reports: medians over the repetitions, the table with
 * iopool's ratios to each peer, and the CSV of every raw figure.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define LABEL_W	26	/* the table's first column */
#define CELL_W	22	/* each system's column */

/* The rows of the table, in order; better != 0 marks headline figures. */
const struct row report_rows[] = {
	{ 1, "jobs_per_s", "jobs/s", +1 },
	{ 1, "cpu_ns_per_job", "CPU ns/job", 0 },
	{ 1, "ctxsw_per_job", "ctx switches/job", 0 },
	{ 1, "threads", "threads", 0 },
	{ 2, "reads_per_s", "reads/s", +1 },
	{ 2, "mb_per_s", "MB/s", 0 },
	{ 2, "cpu_ns_per_job", "CPU ns/read", 0 },
	{ 2, "ctxsw_per_job", "ctx switches/read", 0 },
	{ 2, "pages_dropped", "pages dropped", 0 },
	{ 3, "p50_us", "p50 us", -1 },
	{ 3, "p99_us", "p99 us", -1 },
	{ 3, "p999_us", "p99.9 us", -1 },
	{ 3, "mean_us", "mean us", 0 },
	{ 3, "cpu_ns_per_job", "CPU ns/round trip", 0 },
	{ 4, "wall_ms", "wall ms", -1 },
	{ 4, "ratio_ideal", "ratio to 31.25 ms", 0 },
	{ 5, "gb_per_s", "GB/s", +1 },
	{ 6, "reads_per_s", "reads/s", +1 },
	{ 6, "mb_per_s", "MB/s", 0 },
	{ 6, "cpu_ns_per_job", "CPU ns/read", 0 },
	{ 6, "ctxsw_per_job", "ctx switches/read", 0 },
	{ 6, "threads", "threads", 0 },
	{ 7, "reads_per_s", "reads/s", +1 },
	{ 7, "cpu_ns_per_job", "CPU ns/read", 0 },
	{ 7, "ctxsw_per_job", "ctx switches/read", 0 },
	{ 7, "threads", "threads", 0 },
	{ 7, "resident_pct_before", "resident % before", 0 },
	{ 7, "resident_pct_after", "resident % after", 0 },
	{ 8, "bytes_per_job", "bytes/queued job", -1 },
	{ 8, "bytes_per_job_smaps", "bytes/job (smaps)", 0 },
	{ 8, "job_size_bytes", "job object bytes", 0 },
	{ 8, "drain_ms", "drain ms", 0 },
	{ WL_M1, "jobs_per_s", "jobs/s", +1 },
	{ WL_M1, "p50_us", "short jobs p50 us", 0 },
	{ WL_M1, "p99_us", "short jobs p99 us", -1 },
	{ WL_M1, "p999_us", "short jobs p99.9 us", 0 },
	{ WL_M1, "long_jobs", "long jobs (check)", 0 },
	{ WL_M1, "wall_ms", "wall ms", 0 },
	{ WL_M1, "ratio_ideal", "ratio to ideal 500 ms", 0 },
	{ WL_M1, "cpu_ns_per_job", "CPU ns/job", 0 },
	{ WL_M1, "ctxsw_per_job", "ctx switches/job", 0 },
	{ WL_M1, "threads", "threads", 0 },
	{ 0, NULL, NULL, 0 },
};

bool run_get(const struct run *r, const char *name, double *v)
{
	for (int i = 0; i < r->nmetrics; i++) {
		if (!strcmp(r->m[i].name, name)) {
			*v = r->m[i].value;
			return true;
		}
	}
	return false;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static bool run_matches(const struct run *r, int wl,
			const struct bench_system *sys, const char *variant)
{
	return r->wl == wl && r->sys == sys && !strcmp(r->variant, variant);
}

bool results_get(const struct results *res, int wl,
		 const struct bench_system *sys, const char *variant,
		 const char *metric, struct stat3 *st)
{
	double *v = malloc((res->n + 1) * sizeof(*v));
	int n = 0;

	if (!v)
		return false;
	for (size_t i = 0; i < res->n; i++) {
		const struct run *r = &res->runs[i];

		if (r->ok && run_matches(r, wl, sys, variant) &&
		    run_get(r, metric, &v[n]))
			n++;
	}
	if (n) {
		qsort(v, (size_t)n, sizeof(*v), cmp_double);
		st->med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
		st->min = v[0];
		st->max = v[n - 1];
	}
	st->n = n;
	free(v);
	return n > 0;
}

bool results_failed(const struct results *res, int wl,
		    const struct bench_system *sys, const char *variant)
{
	for (size_t i = 0; i < res->n; i++)
		if (!res->runs[i].ok &&
		    run_matches(&res->runs[i], wl, sys, variant))
			return true;
	return false;
}

void fmt_num(char *buf, size_t size, double v)
{
	static const char *const suffix[] = { "", "k", "M", "G" };
	double a = v < 0 ? -v : v;
	int k = a >= 1e9 ? 3 : a >= 1e6 ? 2 : a >= 1e4 ? 1 : 0;
	double s = v, sa;

	for (int i = 0; i < k; i++)
		s /= 1e3;
	sa = s < 0 ? -s : s;
	if (k == 0 && v == (double)(long long)v)
		snprintf(buf, size, "%lld", (long long)v);	/* a count */
	else if (sa >= 100)
		snprintf(buf, size, "%.0f%s", s, suffix[k]);
	else if (sa >= 10)
		snprintf(buf, size, "%.1f%s", s, suffix[k]);
	else if (sa >= 1)
		snprintf(buf, size, "%.2f%s", s, suffix[k]);
	else
		snprintf(buf, size, "%.3f%s", s, suffix[k]);
}

/* One cell: "12.0M (11.8M-12.3M)", "-", "n/a" or "FAILED". */
static void fmt_cell(char *buf, size_t size, const struct results *res,
		     const struct row *row, const struct bench_system *sys)
{
	char med[16], lo[16], hi[16];
	struct stat3 st;

	if (!(sys->workloads & WL_BIT(row->wl)))
		snprintf(buf, size, "-");
	else if (results_get(res, row->wl, sys, "", row->metric, &st)) {
		fmt_num(med, sizeof(med), st.med);
		fmt_num(lo, sizeof(lo), st.min);
		fmt_num(hi, sizeof(hi), st.max);
		if (st.n > 1)
			snprintf(buf, size, "%s (%s-%s)", med, lo, hi);
		else
			snprintf(buf, size, "%s", med);
	} else if (results_failed(res, row->wl, sys, ""))
		snprintf(buf, size, "FAILED");
	else
		snprintf(buf, size, "n/a");
}

static void print_heading(const struct results *res)
{
	struct utsname u;
	char date[64];
	time_t now = time(NULL);

	strftime(date, sizeof(date), "%Y-%m-%d %H:%M", localtime(&now));
	uname(&u);
	printf("\niopool-bench %s: %s %s, %ld CPUs; medians of %d fresh-"
	       "process runs, interleaved; %.0f s in all\n", date, u.sysname,
	       u.release, sysconf(_SC_NPROCESSORS_ONLN), res->reps,
	       res->wall_s);
	printf("systems:");
	for (int i = 0; i < res->nsys; i++)
		printf(" %s (%s)%s", res->systems[i]->name,
		       res->systems[i]->version(),
		       i + 1 < res->nsys ? "," : "\n");
	if (res->threads || res->window)
		printf("NOT the workloads' defaults: --threads %u --window %u "
		       "(0: the default)\n", res->threads, res->window);
	printf("cells: median (min-max); '-': the system does not run the "
	       "workload\n\n");
}

static void print_header_row(const struct results *res)
{
	printf("%-*s", LABEL_W, "workload / figure");
	for (int i = 0; i < res->nsys; i++)
		printf(" %-*s", CELL_W, res->systems[i]->name);
	printf("\n");
}

static void print_row(const struct results *res, const struct row *row)
{
	char label[64], cell[64];
	bool any = false;
	struct stat3 st;

	for (int i = 0; i < res->nsys; i++)
		any |= results_get(res, row->wl, res->systems[i], "",
				   row->metric, &st);
	if (!any && !row->better)
		return;
	snprintf(label, sizeof(label), "%s %s", wl_defs[row->wl].name,
		 row->label);
	printf("%-*s", LABEL_W, label);
	for (int i = 0; i < res->nsys; i++) {
		fmt_cell(cell, sizeof(cell), res, row, res->systems[i]);
		printf(" %-*s", CELL_W, cell);
	}
	printf("\n");
}

/* "W1 jobs/s (higher is better): iopool/libuv 7.10x ..." */
static void print_ratios(const struct results *res, const struct row *row)
{
	struct stat3 mine, peer;
	int n = 0;

	if (!results_get(res, row->wl, &sys_iopool, "", row->metric, &mine))
		return;
	for (int i = 0; i < res->nsys; i++) {
		const struct bench_system *s = res->systems[i];

		/* M1's sync loop has no queue: its latency compares with
		 * nothing a pool does. */
		if (s == &sys_iopool ||
		    (row->wl == WL_M1 && row->better < 0 && s == &sys_sync) ||
		    !results_get(res, row->wl, s, "", row->metric, &peer) ||
		    peer.med == 0)
			continue;
		if (!n++)
			printf("  %s %s (%s is better):",
			       wl_defs[row->wl].name, row->label,
			       row->better > 0 ? "higher" : "lower");
		printf(" iopool/%s %.2fx", s->name, mine.med / peer.med);
	}
	if (n)
		printf("\n");
}

void report_table(const struct results *res)
{
	const struct row *row;
	int wl = 0;

	print_heading(res);
	print_header_row(res);
	for (row = report_rows; row->wl; row++) {
		if (!(res->wls & WL_BIT(row->wl)))
			continue;
		if (row->wl != wl && wl)
			printf("\n");
		wl = row->wl;
		print_row(res, row);
	}
	printf("\niopool against each peer in this run (iopool's median / the "
	       "peer's):\n");
	for (row = report_rows; row->wl; row++)
		if (row->better && (res->wls & WL_BIT(row->wl)))
			print_ratios(res, row);
	if (res->wls & WL_BIT(8))
		printf("\nW8: iopool allocates its jobs inside the library, so "
		       "their size is not visible\nto the caller (job object "
		       "bytes: n/a) and bytes/queued job is all of the pool's\n"
		       "memory per queued job; libuv's job object is the "
		       "caller's uv_work_t.\n");
	if (res->wls & WL_BIT(WL_M1))
		printf("\nM1: the latencies are the 198,000 short jobs', "
		       "submit to callback; sync runs\neach job inline on "
		       "one thread (no queue, so no waiting: a reference for "
		       "the\nwall time, not for the latency).\n");
	fflush(stdout);
}

int report_csv(const struct results *res, const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		return -1;
	}
	fprintf(f, "workload,system,rep,metric,value\n");
	for (size_t i = 0; i < res->n; i++) {
		const struct run *r = &res->runs[i];

		for (int k = 0; r->ok && k < r->nmetrics; k++)
			fprintf(f, "%s%s%s,%s,%d,%s,%.10g\n",
				wl_defs[r->wl].name, *r->variant ? "/" : "",
				r->variant, r->sys->name, r->rep,
				r->m[k].name, r->m[k].value);
	}
	if (fclose(f)) {
		perror(path);
		return -1;
	}
	return 0;
}
