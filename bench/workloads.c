/*
 * The system-independent pieces of W1-W8 and M1: pattern, offsets,
 * verification, M1's long jobs, percentiles, timing, data files,
 * page-cache and memory readings.
 * See workloads.h for the contracts and ../shared/WORKLOADS.md for the
 * definitions they follow.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "workloads.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const struct wl_def wl_defs[WL_COUNT + 1] = {
	[1] = { "W1", "no-op round trips", 4, 256 },
	[2] = { "W2", "4 KiB random reads, cached", 4, 64 },
	[3] = { "W3", "single-job latency", 4, 1 },
	[4] = { "W4", "2000 jobs of 1 ms", 64, 64 },
	[5] = { "W5", "1 MiB sequential reads, cached", 4, 8 },
	[6] = { "W6", "cold 4 KiB random reads, O_DIRECT", 64, 64 },
	[7] = { "W7", "cold 4 KiB random reads, buffered", 64, 64 },
	[8] = { "W8", "memory per queued job", 4, 0 },
	[WL_M1] = { "M1", "1% of jobs 1 ms, the rest no-ops", 4, 256 },
};

int wl_parse(const char *name)
{
	for (int wl = 1; wl <= WL_COUNT; wl++)
		if (!strcasecmp(name, wl_defs[wl].name))
			return wl;
	return 0;
}

uint64_t pattern_word(uint64_t off)
{
	return (off ^ 0xA5A5A5A5A5A5A5A5ULL) * 0x9E3779B97F4A7C15ULL;
}

void pattern_fill(void *buf, size_t len, uint64_t off)
{
	unsigned char *p = buf;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w = htole64(pattern_word(off + i));

		memcpy(p + i, &w, 8);
	}
}

uint64_t splitmix_next(uint64_t *state)
{
	uint64_t z;

	*state += 0x9E3779B97F4A7C15ULL;
	z = *state;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

uint64_t w2_offset(uint64_t *state)
{
	return (splitmix_next(state) >> 48) * BLOCK_SIZE;
}

uint64_t cold_offset(uint64_t *state)
{
	return (splitmix_next(state) >> 46) * BLOCK_SIZE;
}

enum verify verify_read(const void *buf, ssize_t got, size_t want,
			uint64_t off)
{
	uint64_t w;

	if (got < 0)
		return VERIFY_ERROR;
	if ((size_t)got != want)
		return VERIFY_SHORT;
	memcpy(&w, buf, 8);
	if (le64toh(w) != pattern_word(off))
		return VERIFY_WORD;
	return VERIFY_OK;
}

void verify_report(const char *who, enum verify v, const void *buf,
		   ssize_t got, size_t want, uint64_t off)
{
	uint64_t w;

	switch (v) {
	case VERIFY_OK:
		break;
	case VERIFY_ERROR:
		fprintf(stderr, "iopool-bench: %s: read at offset %" PRIu64
			" failed: %s\n", who, off, strerror((int)-got));
		break;
	case VERIFY_SHORT:
		fprintf(stderr, "iopool-bench: %s: read at offset %" PRIu64
			" returned %zd bytes, not %zu\n", who, off, got, want);
		break;
	case VERIFY_WORD:
		memcpy(&w, buf, 8);
		fprintf(stderr, "iopool-bench: %s: wrong data at offset %"
			PRIu64 ": word 0x%016" PRIx64 ", want 0x%016" PRIx64
			"\n", who, off, le64toh(w), pattern_word(off));
		break;
	}
}

size_t pct_index(size_t n, unsigned q_thousandths)
{
	return ((uint64_t)n * q_thousandths + 999) / 1000 - 1;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

void sort_i64(int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_i64);
}

void lat_summarize(int64_t *ns, size_t n, struct lat_summary *out)
{
	int64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += ns[i];
	sort_i64(ns, n);
	out->p50_us = (double)ns[pct_index(n, 500)] / 1e3;
	out->p99_us = (double)ns[pct_index(n, 990)] / 1e3;
	out->p999_us = (double)ns[pct_index(n, 999)] / 1e3;
	out->mean_us = (double)sum / (double)n / 1e3;
}

bool m1_is_long(uint64_t i)
{
	return i % M1_LONG_EVERY == M1_LONG_EVERY - 1;
}

uint64_t m1_long_count(uint64_t n)
{
	return n / M1_LONG_EVERY;
}

int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void meter_start(struct meter *m)
{
	getrusage(RUSAGE_SELF, &m->r0);
	m->t0 = mono_ns();
}

void meter_stop(struct meter *m)
{
	m->t1 = mono_ns();
	getrusage(RUSAGE_SELF, &m->r1);
}

double meter_seconds(const struct meter *m)
{
	return (double)(m->t1 - m->t0) / 1e9;
}

static int64_t tv_ns(const struct timeval *tv)
{
	return (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000;
}

int64_t meter_user_ns(const struct meter *m)
{
	return tv_ns(&m->r1.ru_utime) - tv_ns(&m->r0.ru_utime);
}

int64_t meter_sys_ns(const struct meter *m)
{
	return tv_ns(&m->r1.ru_stime) - tv_ns(&m->r0.ru_stime);
}

long meter_ctxsw(const struct meter *m)
{
	return (m->r1.ru_nvcsw - m->r0.ru_nvcsw) +
	       (m->r1.ru_nivcsw - m->r0.ru_nivcsw);
}

void out_metric(const char *name, double value)
{
	printf("%s %.10g\n", name, value);
}

void out_throughput(const struct meter *m, uint64_t ops, const char *rate,
		    size_t bytes_per_op)
{
	double s = meter_seconds(m), n = (double)ops;
	double user = (double)meter_user_ns(m), sys = (double)meter_sys_ns(m);

	out_metric(rate, n / s);
	if (bytes_per_op)
		out_metric("mb_per_s", n * (double)bytes_per_op / s / 1e6);
	out_metric("cpu_ns_per_job", (user + sys) / n);
	out_metric("cpu_user_ns_per_job", user / n);
	out_metric("cpu_sys_ns_per_job", sys / n);
	out_metric("ctxsw_per_job", (double)meter_ctxsw(m) / n);
	out_metric("wall_ms", s * 1e3);
}

int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

const char *data_path(const char *env, const char *def)
{
	const char *p = getenv(env);

	return p && *p ? p : def;
}

/* Write @size bytes of the pattern to @fd in 1 MiB pwrite()s. */
static int write_pattern(int fd, uint64_t size)
{
	unsigned char *buf = malloc(CHUNK_SIZE);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t off = 0; off < size && !ret; off += CHUNK_SIZE) {
		size_t len = size - off < CHUNK_SIZE ? size - off : CHUNK_SIZE;
		size_t done = 0;

		pattern_fill(buf, len, off);
		while (done < len) {
			ssize_t n = pwrite(fd, buf + done, len - done,
					   (off_t)(off + done));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				ret = n < 0 ? -errno : -EIO;
				break;
			}
			done += (size_t)n;
		}
	}
	free(buf);
	return ret;
}

int data_file_ensure(const char *path, uint64_t size)
{
	struct stat st;
	char tmp[4096];
	int fd, err;

	if (stat(path, &st) == 0 && (uint64_t)st.st_size == size)
		return 0;
	fprintf(stderr, "iopool-bench: creating %s (%" PRIu64 " bytes)\n",
		path, size);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = errno;
		goto out_msg;
	}
	err = -write_pattern(fd, size);
	if (!err && fsync(fd))
		err = errno;
	if (close(fd) && !err)
		err = errno;
	if (!err && rename(tmp, path))
		err = errno;
	if (!err)
		return 0;
	unlink(tmp);
out_msg:
	fprintf(stderr, "iopool-bench: cannot create %s: %s\n", path,
		strerror(err));
	return -1;
}

long size_pages(uint64_t size)
{
	long page = sysconf(_SC_PAGESIZE);

	return (long)((size + (uint64_t)page - 1) / (uint64_t)page);
}

long resident_pages(int fd, uint64_t size)
{
	long npages = size_pages(size), n = 0;
	unsigned char *vec = malloc((size_t)npages);
	void *map;

	if (!vec)
		return -1;
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED || mincore(map, size, vec)) {
		perror("iopool-bench: mmap/mincore");
		n = -1;
	} else {
		for (long i = 0; i < npages; i++)
			n += vec[i] & 1;
	}
	if (map != MAP_FAILED)
		munmap(map, size);
	free(vec);
	return n;
}

/* Read @fd from start to end in 1 MiB pread()s; 0 or -1. */
static int read_through(int fd, uint64_t size, unsigned char *buf)
{
	for (uint64_t off = 0; off < size; off += CHUNK_SIZE) {
		ssize_t n = pread(fd, buf, CHUNK_SIZE, (off_t)off);

		if (n < 0 && errno == EINTR)
			off -= CHUNK_SIZE;
		else if (n <= 0) {
			perror("iopool-bench: warming the page cache");
			return -1;
		}
	}
	return 0;
}

long cache_warm(int fd, uint64_t size)
{
	unsigned char *buf = malloc(CHUNK_SIZE);
	long missing = -1, res;

	if (!buf)
		return -1;
	for (int i = 0; i < 3; i++) {
		if (read_through(fd, size, buf))
			break;
		res = resident_pages(fd, size);
		if (res < 0)
			break;
		missing = size_pages(size) - res;
		if (!missing)
			break;
	}
	free(buf);
	return missing;
}

int cache_drop(int fd, uint64_t size, double *pct)
{
	long total = size_pages(size), res = -1;
	struct timespec pause = { 0, 100000000 };

	for (int i = 0; i < 3; i++) {
		if (i)
			nanosleep(&pause, NULL);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		res = resident_pages(fd, size);
		if (res < 0)
			return -1;
		*pct = 100.0 * (double)res / (double)total;
		if (res * 100 < total)
			return 0;
	}
	fprintf(stderr, "iopool-bench: %.2f%% of the file stays resident "
		"after POSIX_FADV_DONTNEED (must be under 1%%)\n", *pct);
	return -1;
}

/* Field 2 of /proc/self/statm in pages, read without stdio; -1 on error. */
static long statm_pages(void)
{
	char buf[128], *p;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strchr(buf, ' ');
	return p ? strtol(p + 1, NULL, 10) : -1;
}

long rss_statm_settled(void)
{
	long prev = -1, rss, page = sysconf(_SC_PAGESIZE);
	struct timespec pause = { 0, 10000000 };

	for (int i = 0; i <= 100; i++) {
		rss = statm_pages();
		if (rss < 0)
			return -1;
		if (rss == prev)
			break;
		prev = rss;
		nanosleep(&pause, NULL);
	}
	return prev * page;
}

long rss_smaps(void)
{
	static char buf[8192];
	int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;
	char *p;

	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "\nRss:");
	return p ? strtol(p + 5, NULL, 10) * 1024 : -1;
}

void sleep_1ms(void)
{
	struct timespec ts = { 0, 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void *buf_alloc(size_t align, size_t size)
{
	void *p;

	if (posix_memalign(&p, align, size))
		return NULL;
	memset(p, 0, size);
	return p;
}
