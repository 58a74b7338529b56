/*
 * The pieces of the workloads W1-W8 that do not depend on the system
 * measured (../shared/WORKLOADS.md defines them; that text is normative),
 * and of M1, the mixed-length workload that bench/run-m1.c defines:
 * the data files and their pattern, the offset generators, verification
 * of a completed read, M1's long jobs, percentiles, timing, and the
 * page-cache and memory readings.  tests/test-bench.c unit-tests this file
 * on its own.
 *
 * Every function runs on the calling thread and keeps no state across
 * calls, except where a comment says otherwise.
 */
#ifndef IOP_BENCH_WORKLOADS_H
#define IOP_BENCH_WORKLOADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/* The data files: sizes, default paths, and the variables that override. */
#define DATA_SIZE		268435456ULL	/* 256 MiB, W2 and W5 */
#define COLD_SIZE		1073741824ULL	/* 1 GiB, W6 and W7 */
#define DATA_FILE_DEFAULT	"/var/tmp/offload-anchors-256m.dat"
#define COLD_FILE_DEFAULT	"/var/tmp/offload-anchors-1g.dat"
#define DATA_FILE_ENV		"ANCHOR_FILE"
#define COLD_FILE_ENV		"ANCHOR_COLD_FILE"

/* Seeds of the offset generators (the warm-ups use seed + 1). */
#define W2_SEED			0x5EED0000A11C0DE5ULL
#define W6_SEED			0x5EED0000C01D0006ULL
#define W7_SEED			0x5EED0000C01D0007ULL

#define BLOCK_SIZE		4096u
/* W5's reads, and those that write the files and warm the cache. */
#define CHUNK_SIZE		1048576u

/*
 * The workloads, numbered as in WORKLOADS.md (W1-W8 are 1-8), then M1 as
 * 9; index 0 is unused.  A bit mask of workloads has bit n for number n.
 */
#define WL_M1			9
#define WL_COUNT		9

/* What one workload runs: its defaults (WORKLOADS.md). */
struct wl_def {
	const char *name;	/* "W1" */
	const char *title;	/* a few words for the table */
	unsigned threads;	/* worker threads */
	unsigned window;	/* ops in flight (W4: io_uring's cap) */
};

/* wl_defs[1] to wl_defs[WL_COUNT]. */
extern const struct wl_def wl_defs[WL_COUNT + 1];

/* The number of a workload name ("W3", "w3", "M1"), or 0 if it is none. */
int wl_parse(const char *name);

/*
 * The file content rule: the 8-byte little-endian word at byte offset @off
 * (a multiple of 8) is (off ^ 0xA5A5A5A5A5A5A5A5) * 0x9E3779B97F4A7C15.
 */
uint64_t pattern_word(uint64_t off);

/* Fill @buf (@len bytes, a multiple of 8) with the pattern from @off on. */
void pattern_fill(void *buf, size_t len, uint64_t off);

/*
 * splitmix64: advance *@state by the golden gamma and return the mixed
 * output.  The offset of a read is its output's top bits times 4 KiB:
 * W2 takes 16 bits (blocks 0-65,535 of the 256 MiB file), W6 and W7 take
 * 18 (blocks 0-262,143 of the 1 GiB file).
 */
uint64_t splitmix_next(uint64_t *state);
uint64_t w2_offset(uint64_t *state);
uint64_t cold_offset(uint64_t *state);

/*
 * Check one completed read of @want bytes at @off: the result @got must be
 * exactly @want and the first 8 bytes of @buf must be the pattern word of
 * @off.  Returns VERIFY_OK or what was wrong.
 */
enum verify {
	VERIFY_OK = 0,
	VERIFY_ERROR,		/* @got < 0: the read failed (-errno) */
	VERIFY_SHORT,		/* 0 <= @got != @want */
	VERIFY_WORD		/* the first word is not the pattern */
};
enum verify verify_read(const void *buf, ssize_t got, size_t want,
			uint64_t off);

/*
 * Write a line saying why a read failed verification to stderr: the
 * workload and system (@who), the read's offset, and what was found.
 */
void verify_report(const char *who, enum verify v, const void *buf,
		   ssize_t got, size_t want, uint64_t off);

/*
 * Nearest-rank percentile: the index ceil(q * n) - 1 of the sorted
 * samples, with q given in thousandths (500: p50, 990: p99, 999: p99.9),
 * in integer arithmetic so that no rounding moves it.  @n must be > 0.
 */
size_t pct_index(size_t n, unsigned q_thousandths);

/* Sort @n samples in place, ascending. */
void sort_i64(int64_t *v, size_t n);

/* The latency figures of W3 and M1, in microseconds. */
struct lat_summary {
	double p50_us, p99_us, p999_us;	/* nearest-rank, pct_index() */
	double mean_us;
};

/*
 * Summarise @n > 0 latencies in nanoseconds at @ns into *@out.  Sorts
 * @ns in place.
 */
void lat_summarize(int64_t *ns, size_t n, struct lat_summary *out);

/*
 * M1 (bench/run-m1.c has its definition): 200,000 jobs, of which job i
 * (from 0, in submission order) is long when i % 100 == 99; a long job
 * sleeps 1 ms (sleep_1ms()), a short one does nothing.  With 4 workers the
 * 2,000 long jobs alone need 2,000 x 1 ms / 4 = 500 ms: the ideal wall time.
 */
#define M1_JOBS			200000
#define M1_WARMUP		10000
#define M1_LONG_EVERY		100
#define M1_IDEAL_MS		500.0

/* Is job @i of an M1 run a long one? */
bool m1_is_long(uint64_t i);

/* How many of the jobs 0 to @n - 1 are long. */
uint64_t m1_long_count(uint64_t n);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t mono_ns(void);

/*
 * A timed region: wall time from CLOCK_MONOTONIC, CPU time and context
 * switches from getrusage(RUSAGE_SELF), which counts every thread of the
 * process (io_uring's io-wq workers included).
 */
struct meter {
	int64_t t0, t1;
	struct rusage r0, r1;
};

void meter_start(struct meter *m);
void meter_stop(struct meter *m);
double meter_seconds(const struct meter *m);
/* User and system CPU nanoseconds, and context switches, in the region. */
int64_t meter_user_ns(const struct meter *m);
int64_t meter_sys_ns(const struct meter *m);
long meter_ctxsw(const struct meter *m);

/*
 * Print one figure for the driver: a line "NAME VALUE" on stdout.  The
 * driver collects these lines from each child process.
 */
void out_metric(const char *name, double value);

/*
 * Print the figures every throughput workload reports for @ops operations
 * in @m: @rate ("jobs_per_s" or "reads_per_s"), MB/s when @bytes_per_op is
 * not 0, CPU ns per op (all, user, system), context switches per op,
 * wall ms.
 */
void out_throughput(const struct meter *m, uint64_t ops, const char *rate,
		    size_t bytes_per_op);

/* Threads of this process now: the entries of /proc/self/task. */
int count_threads(void);

/*
 * The path of a data file: the environment variable @env if it is set and
 * not empty, else @def.
 */
const char *data_path(const char *env, const char *def);

/*
 * Make sure @path holds @size bytes of the pattern.  If it is missing or
 * of another size, write it to a temporary file beside it with 1 MiB
 * pwrite()s, fsync() it and rename() it into place.  An existing file of
 * the right size is trusted (every read is verified anyway).  Returns 0,
 * or -1 after a message on stderr.
 */
int data_file_ensure(const char *path, uint64_t size);

/*
 * Pages of the open file @fd (@size bytes) that are in the page cache,
 * counted with mmap(PROT_READ, MAP_SHARED) and mincore().  Returns the
 * count, or -1 after a message on stderr.
 */
long resident_pages(int fd, uint64_t size);

/* The pages of @size bytes (rounded up). */
long size_pages(uint64_t size);

/*
 * Read the whole file @fd (@size bytes) in 1 MiB pread()s until all its
 * pages are resident, at most 3 times.  Returns the pages still missing
 * after that (0 on success; the caller warns), or -1 on an error.
 */
long cache_warm(int fd, uint64_t size);

/*
 * Drop the file's pages (posix_fadvise DONTNEED) and check that under 1%
 * are resident, up to 3 tries 100 ms apart.  Returns 0 and the resident
 * share in percent in *@pct, or -1 after a message on stderr.
 */
int cache_drop(int fd, uint64_t size, double *pct);

/*
 * Resident memory in bytes: field 2 of /proc/self/statm times the page
 * size, read every 10 ms until two readings in a row agree (at most 1 s);
 * and the Rss: line of /proc/self/smaps_rollup, which the kernel computes
 * from the page tables (exact).  Both return -1 on an error.  The smaps
 * reader uses a static buffer: call it once before the first reading that
 * counts, so that the buffer is already resident.
 */
long rss_statm_settled(void);
long rss_smaps(void);

/* Sleep 1 ms with a relative nanosleep(), resumed if interrupted. */
void sleep_1ms(void);

/* An aligned, zeroed and touched buffer (posix_memalign), or NULL. */
void *buf_alloc(size_t align, size_t size);

#endif /* IOP_BENCH_WORKLOADS_H */
