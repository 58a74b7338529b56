/*
 * legacy-sync: a plain sequential program before and after adopting
 * iopool, side by side.  No event loop, no callbacks: futures.
 *
 *	legacy-sync [-a AHEAD] FILE...
 *
 * The program reads each FILE whole and processes it (here: the CRC of
 * cksum(1)), one after the other.  sum_before() is the legacy code as it
 * was; sum_after() is the same loop with the reads started AHEAD files
 * early (default 4) as futures, so that the next files are read while
 * the current one is processed.  Both run on a cold cache: each file is
 * dropped from the page cache (posix_fadvise POSIX_FADV_DONTNEED, after
 * an fdatasync so that freshly written pages can go) before each run.
 * Standard output gets the results of both runs, "before CRC BYTES NAME"
 * for every file, then "after CRC BYTES NAME", each line as cksum would
 * print it after the word; standard error gets both timings.  From the
 * build directory, for example:
 *
 *	./examples/legacy-sync /usr/bin/[a-z]* > /dev/null
 *	./examples/legacy-sync ../src/[a-z]*.c | sed -n 's/^after //p' > sums
 *	cksum ../src/[a-z]*.c | cmp - sums	# silent: the same
 *
 * Dropping the page cache needs no privilege, but only pages no one else
 * holds go (a tmpfs keeps them all), so "cold" is best effort.  A file
 * that cannot be read gets "legacy-sync: before: NAME: reason" (and
 * after:) on stderr.  The exit status is 0 if every file was read and both
 * runs agree, 1 if not (2 for bad usage).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <iopool.h>

#include "crc.h"

#define PROG "legacy-sync"
#define MAX_AHEAD 64

/* What processing one file gave. */
struct result {
	int err;		/* errno of a file that could not be read. */
	uint32_t crc;
	uint64_t len;
};

/* ------------------------------------------------------------------ */
/* The legacy program's two steps, unchanged by the move to iopool.     */

/*
 * Read all of @name into *@data (malloc'd, freed by the caller).  Returns
 * its length, or -errno with *@data NULL.  This is what blocks.
 */
static ssize_t slurp(const char *name, void **data)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *more;
	ssize_t n;
	int fd = open(name, O_RDONLY | O_CLOEXEC), err = 0;

	*data = NULL;
	if (fd < 0)
		return -errno;
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 65536;
			more = realloc(buf, cap);
			if (!more) {
				err = ENOMEM;
				break;
			}
			buf = more;
		}
		n = read(fd, buf + len, cap - len);
		if (n == 0)
			break;
		if (n > 0) {
			len += (size_t)n;
		} else if (errno != EINTR) {
			err = errno;
			break;
		}
	}
	if (close(fd) < 0 && !err)
		err = errno;
	if (err) {
		free(buf);
		return -err;
	}
	*data = buf;
	return (ssize_t)len;
}

/* Process one file's @len bytes at @data (@len < 0: -errno). */
static void process(struct result *res, const void *data, ssize_t len)
{
	if (len < 0) {
		res->err = (int)-len;
		return;
	}
	res->len = (uint64_t)len;
	res->crc = cksum_finish(cksum_update(0, data, (size_t)len), res->len);
}

/* ------------------------------------------------------------------ */
/* Before and after.                                                   */

/* A file read ahead: the future, where it reads to, or why it failed. */
struct ahead {
	iop_job *job;
	void *data;
	int err;		/* The submit failed with this errno. */
};

/* Start reading @name into @a, as a future (no callback). */
static void read_ahead(iop_pool *pool, const char *name, struct ahead *a)
{
	a->job = iop_readfile(pool, AT_FDCWD, name, &a->data, NULL, NULL);
	a->err = a->job ? 0 : errno;
}

/* What slurp() returns, for the file read ahead into @a. */
static ssize_t collect(struct ahead *a, void **data)
{
	ssize_t len = a->job ? iop_await(a->job) : -a->err;

	*data = a->data;	/* NULL after any failure. */
	return len;
}

/* Before: read a file, process it, read the next: disk and CPU take turns. */
static void sum_before(char **names, int n, struct result *res)
{
	for (int i = 0; i < n; i++) {
		void *data;
		ssize_t len = slurp(names[i], &data);

		process(&res[i], data, len);
		free(data);
	}
}

/* After: the same loop, while the next @ahead files are being read. */
static void sum_after(iop_pool *pool, char **names, int n,
		      struct result *res, int ahead)
{
	struct ahead a[MAX_AHEAD];
	int next;

	for (next = 0; next < n && next < ahead; next++)
		read_ahead(pool, names[next], &a[next % ahead]);
	for (int i = 0; i < n; i++) {
		void *data;
		ssize_t len = collect(&a[i % ahead], &data);

		if (next < n) {	/* Into the place just emptied. */
			read_ahead(pool, names[next], &a[next % ahead]);
			next++;
		}
		process(&res[i], data, len);
		free(data);
	}
}

/* ------------------------------------------------------------------ */
/* Measuring.                                                          */

/*
 * Drop @n files from the page cache, as far as the kernel lets us.  A
 * file that cannot be opened is left for the runs to report.
 */
static void drop_cache(char **names, int n)
{
	int fd, err;

	for (int i = 0; i < n; i++) {
		fd = open(names[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* Dirty pages stay: write them back first.  Not on a pipe. */
		err = fdatasync(fd) < 0 && errno != EINVAL ? errno : 0;
		if (!err)
			err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		if (err && err != ESPIPE)
			fprintf(stderr, PROG ": %s: cannot drop it from the "
				"page cache: %s\n", names[i], strerror(err));
		if (close(fd) < 0)
			fprintf(stderr, PROG ": %s: close: %s\n", names[i],
				strerror(errno));
	}
}

static double now_s(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;	/* Cannot fail on Linux; a timing only. */
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool same(const struct result *a, const struct result *b)
{
	return a->err ? a->err == b->err
		      : !b->err && a->crc == b->crc && a->len == b->len;
}

/*
 * Print the results of run @what, one line per file; errors to stderr.
 * Returns 0 if every file was read and printed, 1 if not.
 */
static int print(const char *what, char **names, int n,
		 const struct result *res)
{
	int status = 0;

	for (int i = 0; i < n; i++) {
		if (res[i].err) {
			fprintf(stderr, PROG ": %s: %s: %s\n", what, names[i],
				strerror(res[i].err));
			status = 1;
		} else if (printf("%s %" PRIu32 " %" PRIu64 " %s\n", what,
				  res[i].crc, res[i].len, names[i]) < 0) {
			perror(PROG ": standard output");
			return 1;
		}
	}
	return status;
}

int main(int argc, char **argv)
{
	struct iop_options opts = { .threads = 4 };
	struct result *before, *after;
	double t0, t_before, t_after;
	unsigned long ahead = 4;
	iop_pool *pool;
	int n, status, opt;
	char *end;

	opterr = 0;	/* Ours: getopt's message would name .libs/lt-... */
	while ((opt = getopt(argc, argv, "a:")) != -1) {
		if (opt != 'a')
			goto usage;
		errno = 0;
		ahead = strtoul(optarg, &end, 10);
		if (*optarg < '0' || *optarg > '9' || *end || errno ||
		    ahead < 1 || ahead > MAX_AHEAD)
			goto usage;
	}
	n = argc - optind;
	if (n == 0)
		goto usage;
	argv += optind;
	cksum_init();
	before = calloc((size_t)n, sizeof(*before));
	after = calloc((size_t)n, sizeof(*after));
	/* One worker per file in flight: none waits for another's read. */
	opts.threads = (unsigned)ahead;
	pool = before && after ? iop_pool_new(&opts) : NULL;
	if (!pool) {
		perror(before && after ? PROG ": iop_pool_new" : PROG);
		free(before);
		free(after);
		return 1;
	}

	drop_cache(argv, n);
	t0 = now_s();
	sum_before(argv, n, before);
	t_before = now_s() - t0;

	drop_cache(argv, n);
	t0 = now_s();
	sum_after(pool, argv, n, after, (int)ahead);
	t_after = now_s() - t0;

	iop_pool_destroy(pool);
	status = print("before", argv, n, before);
	status |= print("after", argv, n, after);
	fprintf(stderr, PROG ": cold cache: before %.3f s, after %.3f s "
		"(%.2f times as fast)\n", t_before, t_after,
		t_after > 0 ? t_before / t_after : 0.0);
	for (int i = 0; i < n; i++) {
		if (!same(&before[i], &after[i])) {
			fprintf(stderr, PROG ": %s: the two runs disagree\n",
				argv[i]);
			status = 1;
		}
	}
	free(before);
	free(after);
	if (fclose(stdout) == EOF) {
		perror(PROG ": standard output");
		status = 1;
	}
	return status;
usage:
	fprintf(stderr, "usage: " PROG " [-a AHEAD] FILE...\n");
	return 2;
}
