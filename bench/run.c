/*
 * The procedures of W1-W8, the same for every system: files and page
 * cache, warm-up, the timed region, the checks and the figures, exactly as
 * ../shared/WORKLOADS.md defines them.  The systems (sys-*.c) supply only
 * their loops, through struct bench_system.  W8 and M1 have files of
 * their own (run-w8.c, run-m1.c).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "systems.h"
#include "workloads.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Counts from WORKLOADS.md. */
#define W1_JOBS		1000000
#define W1_WARMUP	10000
#define W2_READS	500000
#define W2_WARMUP	5000
#define W3_ROUNDS	100000
#define W3_WARMUP	1000
#define W4_JOBS		2000
#define W4_WARMUP	64
#define W4_IDEAL_MS	31.25
#define W5_PASSES	5
#define W6_READS	40000
#define W6_WARMUP	2000
#define W7_READS	20000

static void rplan_init(struct rplan *p, int fd, size_t len, unsigned window,
		       uint64_t total, enum rplan_kind kind, uint64_t seed)
{
	p->fd = fd;
	p->len = len;
	p->window = window;
	p->total = total;
	p->submitted = 0;
	p->completed = 0;
	p->kind = kind;
	p->state = seed;
	p->failed = false;
}

/* Run @p on @sys; 0, or -1 if the loop or a verification failed. */
static int reads(const struct bench_system *sys, void *ctx, struct rplan *p)
{
	if (sys->reads(ctx, p))
		return -1;
	if (p->failed)
		return -1;
	if (p->completed != p->total) {
		fprintf(stderr, "iopool-bench: %s: %llu of %llu reads ran\n",
			p->who, (unsigned long long)p->completed,
			(unsigned long long)p->total);
		return -1;
	}
	return 0;
}

static int run_w1(const struct bench_system *sys, void *ctx,
		  const struct bench_cfg *cfg)
{
	struct meter m;

	if (sys->noops(ctx, W1_WARMUP, cfg->window))
		return -1;
	meter_start(&m);
	if (sys->noops(ctx, W1_JOBS, cfg->window))
		return -1;
	meter_stop(&m);
	out_metric("threads", count_threads());
	out_throughput(&m, W1_JOBS, "jobs_per_s", 0);
	return 0;
}

/* Open a data file, with a message on failure. */
static int open_file(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		fprintf(stderr, "iopool-bench: %s: %s\n", path,
			strerror(errno));
	return fd;
}

/* Warm the page cache with the whole 256 MiB file; 0 or -1. */
static int warm_data(int fd, const char *who)
{
	long missing = cache_warm(fd, DATA_SIZE);

	if (missing < 0)
		return -1;
	if (missing)
		fprintf(stderr, "iopool-bench: %s: warning: %ld pages of the "
			"data file are not resident after 3 reads\n", who,
			missing);
	return 0;
}

/* After the timed region: report and warn about pages that left. */
static void check_still_cached(int fd, const char *who)
{
	long res = resident_pages(fd, DATA_SIZE);
	long dropped = size_pages(DATA_SIZE) - res;

	if (res < 0)
		return;
	out_metric("pages_dropped", (double)dropped);
	if (dropped)
		fprintf(stderr, "iopool-bench: %s: warning: %ld pages of the "
			"data file left the page cache during the run\n", who,
			dropped);
}

static int run_w2(const struct bench_system *sys, void *ctx,
		  const struct bench_cfg *cfg)
{
	struct rplan p = { .who = cfg->name };
	struct meter m;
	int ret = -1, fd;

	fd = open_file(data_path(DATA_FILE_ENV, DATA_FILE_DEFAULT), O_RDONLY);
	if (fd < 0)
		return -1;
	p.bufs = buf_alloc(BLOCK_SIZE, (size_t)cfg->window * BLOCK_SIZE);
	if (!p.bufs || warm_data(fd, cfg->name))
		goto out;
	rplan_init(&p, fd, BLOCK_SIZE, cfg->window, W2_WARMUP,
		   RPLAN_RANDOM16, W2_SEED + 1);
	if (reads(sys, ctx, &p))
		goto out;
	rplan_init(&p, fd, BLOCK_SIZE, cfg->window, W2_READS, RPLAN_RANDOM16,
		   W2_SEED);
	meter_start(&m);
	if (reads(sys, ctx, &p))
		goto out;
	meter_stop(&m);
	out_metric("threads", count_threads());
	out_throughput(&m, W2_READS, "reads_per_s", BLOCK_SIZE);
	check_still_cached(fd, cfg->name);
	ret = 0;
out:
	free(p.bufs);
	close(fd);
	return ret;
}

static int run_w3(const struct bench_system *sys, void *ctx,
		  const struct bench_cfg *cfg)
{
	int64_t *lat = malloc(W3_ROUNDS * sizeof(*lat)), t1;
	struct lat_summary ls;
	struct meter m;

	if (!lat)
		return -1;
	memset(lat, 0, W3_ROUNDS * sizeof(*lat));
	for (int i = 0; i < W3_WARMUP; i++)
		if (sys->roundtrip(ctx, &t1))
			goto out_fail;
	meter_start(&m);
	for (int i = 0; i < W3_ROUNDS; i++) {
		int64_t t0 = mono_ns();

		if (sys->roundtrip(ctx, &t1))
			goto out_fail;
		lat[i] = t1 - t0;
	}
	meter_stop(&m);
	out_metric("threads", count_threads());
	lat_summarize(lat, W3_ROUNDS, &ls);
	out_metric("p50_us", ls.p50_us);
	out_metric("p99_us", ls.p99_us);
	out_metric("p999_us", ls.p999_us);
	out_metric("mean_us", ls.mean_us);
	out_metric("cpu_ns_per_job",
		   (double)(meter_user_ns(&m) + meter_sys_ns(&m)) / W3_ROUNDS);
	out_metric("ctxsw_per_job", (double)meter_ctxsw(&m) / W3_ROUNDS);
	free(lat);
	return 0;
out_fail:
	free(lat);
	return -1;
}

static int run_w4(const struct bench_system *sys, void *ctx,
		  const struct bench_cfg *cfg)
{
	struct meter m;
	double ms;

	if (sys->sleeps(ctx, W4_WARMUP, cfg->window))
		return -1;
	meter_start(&m);
	if (sys->sleeps(ctx, W4_JOBS, cfg->window))
		return -1;
	meter_stop(&m);
	out_metric("threads", count_threads());
	ms = meter_seconds(&m) * 1e3;
	out_metric("wall_ms", ms);
	out_metric("ratio_ideal", ms / W4_IDEAL_MS);
	out_metric("cpu_ns_per_job",
		   (double)(meter_user_ns(&m) + meter_sys_ns(&m)) / W4_JOBS);
	return 0;
}

/* One W5 pass of 256 reads of 1 MiB; its GB/s in *@gbs if @gbs. */
static int w5_pass(const struct bench_system *sys, void *ctx,
		   struct rplan *p, unsigned window, double *gbs)
{
	struct meter m;

	rplan_init(p, p->fd, CHUNK_SIZE, window, DATA_SIZE / CHUNK_SIZE,
		   RPLAN_SEQUENTIAL, 0);
	meter_start(&m);
	if (reads(sys, ctx, p))
		return -1;
	meter_stop(&m);
	if (gbs)
		*gbs = (double)DATA_SIZE / 1e9 / meter_seconds(&m);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int run_w5(const struct bench_system *sys, void *ctx,
		  const struct bench_cfg *cfg)
{
	struct rplan p = { .who = cfg->name };
	double gbs[W5_PASSES];
	int ret = -1;

	p.fd = open_file(data_path(DATA_FILE_ENV, DATA_FILE_DEFAULT),
			 O_RDONLY);
	if (p.fd < 0)
		return -1;
	p.bufs = buf_alloc(BLOCK_SIZE, (size_t)cfg->window * CHUNK_SIZE);
	if (!p.bufs || warm_data(p.fd, cfg->name) ||
	    w5_pass(sys, ctx, &p, cfg->window, NULL))
		goto out;
	for (int i = 0; i < W5_PASSES; i++)
		if (w5_pass(sys, ctx, &p, cfg->window, &gbs[i]))
			goto out;
	out_metric("threads", count_threads());
	qsort(gbs, W5_PASSES, sizeof(gbs[0]), cmp_double);
	out_metric("gb_per_s", gbs[W5_PASSES / 2]);
	check_still_cached(p.fd, cfg->name);
	ret = 0;
out:
	free(p.bufs);
	close(p.fd);
	return ret;
}

/*
 * Open the cold file with O_DIRECT and read its first block, so that a
 * file system without O_DIRECT fails here with a clear message.
 */
static int open_direct(const char *path, unsigned char *buf)
{
	int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, buf, BLOCK_SIZE, 0);
	int err = errno;

	if (n == BLOCK_SIZE)
		return fd;
	if (n < 0 && err == EINVAL)
		fprintf(stderr, "iopool-bench: W6: the file system of %s does "
			"not support O_DIRECT (set %s to a file elsewhere)\n",
			path, COLD_FILE_ENV);
	else
		fprintf(stderr, "iopool-bench: W6: %s: %s\n", path,
			n < 0 ? strerror(err) : "short read");
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The W6 and W7 figures after the timed region @m of @n reads. */
static void out_cold(const struct meter *m, uint64_t n)
{
	out_metric("threads", count_threads());
	out_throughput(m, n, "reads_per_s", BLOCK_SIZE);
}

static int run_w6(const struct bench_system *sys, void *ctx,
		  const struct bench_cfg *cfg)
{
	struct rplan p = { .who = cfg->name };
	struct meter m;
	int ret = -1;

	p.bufs = buf_alloc(BLOCK_SIZE, (size_t)cfg->window * BLOCK_SIZE);
	if (!p.bufs)
		return -1;
	p.fd = open_direct(data_path(COLD_FILE_ENV, COLD_FILE_DEFAULT),
			   p.bufs);
	if (p.fd < 0)
		goto out_free;
	rplan_init(&p, p.fd, BLOCK_SIZE, cfg->window, W6_WARMUP,
		   RPLAN_RANDOM18, W6_SEED + 1);
	if (reads(sys, ctx, &p))
		goto out;
	rplan_init(&p, p.fd, BLOCK_SIZE, cfg->window, W6_READS,
		   RPLAN_RANDOM18, W6_SEED);
	meter_start(&m);
	if (reads(sys, ctx, &p))
		goto out;
	meter_stop(&m);
	out_cold(&m, W6_READS);
	ret = 0;
out:
	close(p.fd);
out_free:
	free(p.bufs);
	return ret;
}

static int run_w7(const struct bench_system *sys, void *ctx,
		  const struct bench_cfg *cfg)
{
	struct rplan p = { .who = cfg->name };
	double before, after;
	struct meter m;
	long res;
	int ret = -1;

	p.fd = open_file(data_path(COLD_FILE_ENV, COLD_FILE_DEFAULT),
			 O_RDONLY);
	if (p.fd < 0)
		return -1;
	p.bufs = buf_alloc(BLOCK_SIZE, (size_t)cfg->window * BLOCK_SIZE);
	if (!p.bufs || cache_drop(p.fd, COLD_SIZE, &before))
		goto out;
	rplan_init(&p, p.fd, BLOCK_SIZE, cfg->window, W7_READS,
		   RPLAN_RANDOM18, W7_SEED);
	meter_start(&m);
	if (reads(sys, ctx, &p))
		goto out;
	meter_stop(&m);
	out_cold(&m, W7_READS);
	res = resident_pages(p.fd, COLD_SIZE);
	after = 100.0 * (double)res / (double)size_pages(COLD_SIZE);
	out_metric("resident_pct_before", before);
	if (res >= 0)
		out_metric("resident_pct_after", after);
	ret = 0;
out:
	free(p.bufs);
	close(p.fd);
	return ret;
}

typedef int run_fn(const struct bench_system *sys, void *ctx,
		   const struct bench_cfg *cfg);

static run_fn *const procedures[WL_COUNT + 1] = {
	NULL, run_w1, run_w2, run_w3, run_w4, run_w5, run_w6, run_w7, run_w8,
	[WL_M1] = run_m1,
};

int run_workload(const struct bench_system *sys, const struct bench_cfg *c)
{
	struct bench_cfg copy = *c, *cfg = &copy;
	void *ctx;
	int ret;

	if (!(sys->workloads & WL_BIT(cfg->wl))) {
		fprintf(stderr, "iopool-bench: %s does not run %s\n",
			sys->name, wl_defs[cfg->wl].name);
		return 1;
	}
	if ((cfg->wl == 2 || cfg->wl == 5) &&
	    data_file_ensure(data_path(DATA_FILE_ENV, DATA_FILE_DEFAULT),
			     DATA_SIZE))
		return 1;
	if ((cfg->wl == 6 || cfg->wl == 7) &&
	    data_file_ensure(data_path(COLD_FILE_ENV, COLD_FILE_DEFAULT),
			     COLD_SIZE))
		return 1;
	cfg->max_inflight = cfg->wl == 4 && cfg->window < W4_JOBS ?
			    W4_JOBS : cfg->window;
	ctx = sys->open(cfg);
	if (!ctx)
		return 1;
	ret = procedures[cfg->wl](sys, ctx, cfg);
	sys->close(ctx);
	fflush(stdout);
	return ret ? 1 : 0;
}
