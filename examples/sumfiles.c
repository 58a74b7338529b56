/*
 * sumfiles: the file reader and timer account shared by the event-loop
 * examples; see sumfiles.h.
 *
 * How the reader works: one file at a time is opened (iop_openat), read in
 * chunks of CHUNK bytes with up to DEPTH reads in flight at increasing
 * offsets (iop_read), and closed (iop_close).  Reads may finish in any
 * order, but a CRC is computed in order, so the chunks form a ring in
 * offset order and are summed from its head as they become ready.  A file
 * ends at the first read that returns 0, never at its st_size (files
 * under /proc report 0).  Every step runs in a callback, on the thread
 * that polls the pool.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crc.h"
#include "sumfiles.h"

/*
 * Reads in flight per file, and bytes per read.  Reads of up to 64 KiB
 * that the page cache can serve are done at once inside iop_read(); these
 * are bigger, so that they go to the workers and the event loop sees
 * reads in flight even when the files are cached.
 */
#define DEPTH 4
#define CHUNK (256 * 1024)

/* ------------------------------------------------------------------ */
/* The reader.                                                         */

/* One buffer of the ring and the read that fills it. */
struct chunk {
	struct sumfiles *sf;
	unsigned char *buf;	/* CHUNK bytes, set once. */
	int64_t off;		/* Offset in the file of buf[0]. */
	size_t got;		/* Bytes in buf so far. */
	bool ready;		/* Holds all it will: sum it in its turn. */
	bool eof;		/* Its last read returned 0. */
};

/* The whole reader.  Only the polling thread touches it. */
struct sumfiles {
	iop_pool *pool;
	const char *prog;
	char **names;
	int nnames;
	int cur;		/* The file being read; nnames once all are. */
	unsigned jobs;		/* Submitted, callback not run yet. */
	unsigned reads;		/* Of those, reads. */
	int status;
	uint64_t bytes;

	/* The file being read. */
	int fd;			/* -1 until opened. */
	int err;		/* Its first error, as errno, or 0. */
	bool stop;		/* Queue no new read: EOF seen, or an error. */
	bool eof;		/* The summed data reached end of file. */
	int64_t next_off;	/* Where the next new chunk starts. */
	uint32_t crc;
	uint64_t len;		/* Bytes summed, in order. */
	unsigned head, used;	/* chunk[head] is summed next; used in use. */
	struct chunk chunk[DEPTH];
};

static void next_file(struct sumfiles *sf);
static void on_read(iop_job *job, ssize_t result, void *arg);

struct sumfiles *sumfiles_new(iop_pool *pool, const char *prog,
			      char **names, int nnames)
{
	struct sumfiles *sf = calloc(1, sizeof(*sf));
	unsigned char *area = malloc((size_t)DEPTH * CHUNK);

	if (!sf || !area) {
		free(sf);
		free(area);
		errno = ENOMEM;
		return NULL;
	}
	sf->pool = pool;
	sf->prog = prog;
	sf->names = names;
	sf->nnames = nnames;
	sf->cur = -1;
	sf->fd = -1;
	for (int i = 0; i < DEPTH; i++) {
		sf->chunk[i].sf = sf;
		sf->chunk[i].buf = area + (size_t)i * CHUNK;
	}
	return sf;
}

void sumfiles_free(struct sumfiles *sf)
{
	if (!sf)
		return;
	free(sf->chunk[0].buf);	/* The start of the one area. */
	free(sf);
}

unsigned sumfiles_reads_in_flight(const struct sumfiles *sf)
{
	return sf->reads;
}

bool sumfiles_done(const struct sumfiles *sf)
{
	return sf->cur >= sf->nnames && sf->jobs == 0;
}

uint64_t sumfiles_bytes(const struct sumfiles *sf)
{
	return sf->bytes;
}

int sumfiles_status(const struct sumfiles *sf)
{
	return sf->status;
}

static void file_fail(struct sumfiles *sf, int err)
{
	if (!sf->err)
		sf->err = err;
	sf->stop = true;
}

/* The current file is closed: print its line (or its error), go on. */
static void file_end(struct sumfiles *sf)
{
	const char *name = sf->names[sf->cur];

	sf->fd = -1;
	if (sf->err) {
		fprintf(stderr, "%s: %s: %s\n", sf->prog, name,
			strerror(sf->err));
		sf->status = 1;
	} else if (printf("%" PRIu32 " %" PRIu64 " %s\n",
			  cksum_finish(sf->crc, sf->len), sf->len, name) < 0 ||
		   fflush(stdout) == EOF) {
		fprintf(stderr, "%s: standard output: %s\n", sf->prog,
			strerror(errno));
		sf->status = 1;
		sf->cur = sf->nnames;	/* No use reading on. */
		return;
	}
	next_file(sf);
}

static void on_close(iop_job *job, ssize_t result, void *arg)
{
	struct sumfiles *sf = arg;

	(void)job;
	sf->jobs--;
	if (result < 0 && !sf->err)
		sf->err = (int)-result;
	file_end(sf);
}

/* Once the file is over and no read is in flight, close it. */
static void maybe_close(struct sumfiles *sf)
{
	if (!sf->stop || sf->reads > 0 || sf->fd < 0)
		return;
	if (iop_close(sf->pool, sf->fd, on_close, sf)) {
		sf->jobs++;
		sf->fd = -1;	/* The pool's now; on_close() follows. */
		return;
	}
	/* Out of memory: close it here, which may block, rather than leak. */
	file_fail(sf, errno);
	if (close(sf->fd) < 0)
		file_fail(sf, errno);
	file_end(sf);
}

/* Queue the read of the rest of chunk @c.  Returns false if it failed. */
static bool submit_read(struct sumfiles *sf, struct chunk *c)
{
	if (!iop_read(sf->pool, sf->fd, c->buf + c->got, CHUNK - c->got,
		      c->off + (int64_t)c->got, on_read, c)) {
		file_fail(sf, errno);
		c->ready = true;	/* Nothing will come: let it go. */
		return false;
	}
	sf->jobs++;
	sf->reads++;
	return true;
}

/* Give every free chunk of the ring the next range of the file. */
static void fill(struct sumfiles *sf)
{
	struct chunk *c;

	while (!sf->stop && sf->used < DEPTH) {
		c = &sf->chunk[(sf->head + sf->used++) % DEPTH];
		c->off = sf->next_off;
		c->got = 0;
		c->ready = c->eof = false;
		sf->next_off += CHUNK;
		submit_read(sf, c);
	}
}

/* Sum the chunks at the head of the ring that are ready, in order. */
static void sum_ready(struct sumfiles *sf)
{
	struct chunk *c;

	while (sf->used > 0 && (c = &sf->chunk[sf->head])->ready) {
		if (!sf->err && !sf->eof) {
			sf->crc = cksum_update(sf->crc, c->buf, c->got);
			sf->len += c->got;
			sf->bytes += c->got;
			sf->eof = c->eof;
		}
		sf->head = (sf->head + 1) % DEPTH;
		sf->used--;
	}
}

/*
 * The callback of every read.  A short read that is not the end of the
 * file asks at once for the rest of the chunk, into the same buffer, so
 * that a chunk always covers its whole range.
 */
static void on_read(iop_job *job, ssize_t result, void *arg)
{
	struct chunk *c = arg;
	struct sumfiles *sf = c->sf;

	(void)job;
	sf->jobs--;
	sf->reads--;
	if (result < 0) {
		file_fail(sf, (int)-result);
	} else {
		c->got += (size_t)result;
		if (result > 0 && c->got < CHUNK && !sf->err &&
		    submit_read(sf, c))
			return;
		c->eof = result == 0;
		if (c->eof)
			sf->stop = true;
	}
	c->ready = true;
	sum_ready(sf);
	fill(sf);
	sum_ready(sf);	/* Chunks whose submit failed in fill(). */
	maybe_close(sf);
}

static void on_open(iop_job *job, ssize_t result, void *arg)
{
	struct sumfiles *sf = arg;

	(void)job;
	sf->jobs--;
	if (result < 0) {
		file_fail(sf, (int)-result);
		file_end(sf);
		return;
	}
	sf->fd = (int)result;
	fill(sf);
	sum_ready(sf);
	maybe_close(sf);	/* If every read failed to queue. */
}

/* Start the next file, or end: files that cannot be queued fail. */
static void next_file(struct sumfiles *sf)
{
	while (++sf->cur < sf->nnames) {
		sf->err = 0;
		sf->stop = sf->eof = false;
		sf->next_off = 0;
		sf->crc = 0;
		sf->len = 0;
		sf->head = sf->used = 0;
		if (iop_openat(sf->pool, AT_FDCWD, sf->names[sf->cur],
			       O_RDONLY, 0, on_open, sf)) {
			sf->jobs++;
			return;
		}
		fprintf(stderr, "%s: %s: %s\n", sf->prog, sf->names[sf->cur],
			strerror(errno));
		sf->status = 1;
	}
}

void sumfiles_start(struct sumfiles *sf)
{
	next_file(sf);
}

/* ------------------------------------------------------------------ */
/* The timer's account.                                                */

static uint64_t now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux; 0 would only skew a gap. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int ticks_parse_args(int argc, char **argv, unsigned long *ms)
{
	char *end;
	int opt;

	*ms = 10;
	opterr = 0;	/* Ours: getopt's message would name .libs/lt-... */
	while ((opt = getopt(argc, argv, "i:")) != -1) {
		if (opt != 'i')
			return -1;
		errno = 0;
		*ms = strtoul(optarg, &end, 10);
		if (*optarg < '0' || *optarg > '9' || *end || errno ||
		    *ms < 1 || *ms > 60000)
			return -1;
	}
	return optind < argc ? optind : -1;
}

void ticks_start(struct ticks *t, unsigned period_ms)
{
	*t = (struct ticks){ .period_ms = period_ms };
	t->start_ns = t->prev_ns = now_ns();
}

void ticks_tick(struct ticks *t, unsigned reads_in_flight)
{
	uint64_t now = now_ns();

	if (now - t->prev_ns > t->max_gap_ns)
		t->max_gap_ns = now - t->prev_ns;
	t->prev_ns = now;
	t->count++;
	if (reads_in_flight > 0)
		t->during_reads++;
}

void ticks_report(const struct ticks *t, const char *prog, int nfiles,
		  const struct sumfiles *sf)
{
	fprintf(stderr, "%s: %d files, %" PRIu64 " bytes in %.3f s; "
		"%" PRIu64 " ticks of %u ms, %" PRIu64 " while reads were "
		"in flight; longest gap %.1f ms\n", prog, nfiles,
		sumfiles_bytes(sf), (now_ns() - t->start_ns) / 1e9, t->count,
		t->period_ms, t->during_reads, t->max_gap_ns / 1e6);
}
