/*
 * readfiles: a parallel cksum(1), and the example program of iopool.
 *
 *	readfiles [-j THREADS] [-d DEPTH] [-b BYTES] [-v] [--compare-sync]
 *		  [FILE|DIR|-]...
 *
 * For every file it prints the line GNU cksum prints, "CRC BYTES NAME",
 * byte for byte the same, in the order of the arguments.  A directory is
 * walked recursively, the entries of each directory in strcmp() order and
 * named DIR/NAME; "-" is standard input; no arguments means ".".
 *
 *	-j THREADS	worker threads of the pool (default 4)
 *	-d DEPTH	reads in flight at most, across all files (default 64)
 *	-b BYTES	bytes per read (default 65536)
 *	-v		progress and a summary on stderr even when stderr is
 *			not a terminal (when it is one, they are always shown)
 *	--compare-sync	then do the same work again with plain blocking
 *			calls on one thread (readfiles-sync.c), check that
 *			it gives the same lines, and say on stderr how long
 *			each took.  Before each run the files are dropped
 *			from the page cache, as far as the kernel lets us
 *			(posix_fadvise), so both start cold.  Not with "-".
 *
 * `make install` installs it as iopool-readfiles, whose messages then
 * start with that name (man page: man/iopool-readfiles.1).
 * From the build directory, for example:
 *
 *	./examples/readfiles -j 8 -d 128 /usr/include > sums
 *	./examples/readfiles ../configure.ac ../Makefile.am > sums
 *	cksum ../configure.ac ../Makefile.am | cmp - sums  # silent: same
 *	tar cf - ../src | ./examples/readfiles -
 *	./examples/readfiles --compare-sync /usr/include > /dev/null
 *
 * Errors go to stderr as "readfiles: NAME: reason", the other files are
 * still read, and the exit status is then 1.
 *
 * How it works: the main thread never waits for the file system.  Each
 * call that could is a job for the pool's workers, and the main thread
 * walks, sums and prints in the callbacks that iop_wait() runs.  The walk
 * goes one name at a time, in output order.  A name that may be a
 * directory (an argument, or an entry typed DT_DIR, DT_LNK or DT_UNKNOWN)
 * is looked at (iop_statat) and at the same time listed, sorted
 * (iop_listdir, which fails at once for anything else); the walk waits for
 * both answers.  Every other name joins the window: the files found and
 * not yet printed, in output order.  Each of those is opened (iop_openat),
 * looked at (iop_fstat), read (iop_read) and closed (iop_close).
 *
 * Memory is DEPTH buffers of BYTES each, allocated once: a buffer goes to
 * the earliest file in the window that can use another read, so the file
 * whose line is printed next always makes progress.  Regular files get
 * several reads in flight at increasing offsets.  They may finish in any
 * order, but a CRC is computed in order, so each file keeps its chunks in
 * a queue by offset and sums them from the front.  A file ends at the
 * first read that returns 0, never at st_size: files under /proc report
 * size 0, and a file may grow while it is read.  Pipes, FIFOs and
 * terminals are read at their current position, one read at a time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* For a getopt() that permutes, as cksum's does. */
#endif
#define _FILE_OFFSET_BITS 64	/* For st_size of large files on 32-bit. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <getopt.h>
#include <iopool.h>

#include "crc.h"
#include "readfiles.h"

#define DEFAULT_THREADS 4
#define DEFAULT_DEPTH 64
#define DEFAULT_BYTES 65536
#define MAX_DEPTH 65536
#define MAX_BYTES (1 << 30)

/* Progress is redrawn at most this often, in milliseconds. */
#define PROGRESS_MS 100

/* One buffer and the read that fills it. */
struct chunk {
	struct chunk *next;	/* In the free list or its file's queue. */
	struct file *file;	/* The file it reads, while in use. */
	unsigned char *buf;	/* BYTES long, set once at startup. */
	int64_t off;		/* Offset in the file of buf[0]. */
	size_t got;		/* Bytes in buf so far. */
	bool ready;		/* Holds all it will: sum it in its turn. */
	bool eof;		/* Its last read returned 0. */
};

/* Where a file is on its way from the walk to its line.  OPENING covers
 * iop_openat() and then iop_fstat(). */
enum state { NEW, OPENING, READING, CLOSING, DONE };

/* One file to sum, from the time the walk finds it until its line. */
struct file {
	struct file *next;	/* The window, in output order. */
	struct readfiles *rf;
	char *name;
	enum state state;
	int fd;			/* -1 until opened, and once closed. */
	int err;		/* The first error, as errno, or 0. */
	bool is_stdin;		/* Named "-". */
	bool seekable;		/* pread() at offsets, else read(). */
	bool stop;		/* Queue no new read: EOF seen, or error. */
	bool eof;		/* The summed data reached end of file. */
	unsigned inflight;	/* Reads queued or running. */
	struct stat st;		/* From iop_fstat(); st_size is a hint. */
	int64_t next_off;	/* Where the next new chunk starts. */
	int64_t horizon;	/* New chunks start at offsets up to this. */
	int64_t len;		/* Bytes summed so far, in order. */
	uint32_t crc;
	struct chunk *first;	/* Chunks in flight or waiting, by offset. */
	struct chunk **last;
};

/* One directory of the walk, with the entries still to visit. */
struct dir {
	struct dir *up;
	char *path;
	struct iop_dirent *ents;	/* From iop_listdir(), sorted. */
	size_t n, i;
	dev_t dev;		/* To refuse a symlink back to an ancestor. */
	ino_t ino;
};

/* The whole program's state.  Only the main thread touches it. */
struct readfiles {
	iop_pool *pool;
	unsigned jobs;		/* Submitted, callback not run yet. */
	unsigned depth;
	size_t bytes;
	unsigned char *area;	/* depth * bytes, the buffers. */
	struct chunk *chunks;	/* depth of them. */
	struct chunk *free;

	/* Files found and not yet printed, in output order. */
	struct file *head, *tail;
	unsigned nwindow, max_window;
	bool stdin_busy;	/* A "-" is being read: the next one waits. */

	char **args;
	int nargs, iarg;
	struct dir *dirs;	/* The walk's stack, innermost first. */
	char *walk_name;	/* The name being looked at and listed: */
	struct stat walk_st;	/* what iop_statat() said of it, */
	ssize_t walk_stat_result;
	struct iop_dirent *walk_ents;	/* what iop_listdir() found. */
	ssize_t walk_list_result;
	unsigned walking;	/* Answers still due: 0, 1 or 2. */
	bool walk_done;

	int status;		/* The exit status so far. */
	int fatal;		/* errno of an error that stops everything, */
	const char *fatal_what;	/* and what failed. */

	bool progress, stdout_tty;
	bool compare;		/* --compare-sync, */
	FILE *copy;		/* and every line printed, again. */
	uint64_t files_done, files_failed, bytes_done;
	struct timespec start, last_draw;
	int shown;		/* Width of the progress line on screen. */
};

static double ms_since(const struct timespec *t)
{
	struct timespec now;

	if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
		return 0;
	return (now.tv_sec - t->tv_sec) * 1e3 +
	       (now.tv_nsec - t->tv_nsec) / 1e6;
}

/*
 * Messages to stderr are not checked: when stderr itself fails there is
 * nowhere left to report it, and the exit status still tells.
 */
static void progress_clear(struct readfiles *rf)
{
	if (rf->shown == 0)
		return;
	fprintf(stderr, "\r%*s\r", rf->shown, "");
	rf->shown = 0;
}

/* Redraw the progress line, at most once every PROGRESS_MS. */
static void progress_draw(struct readfiles *rf)
{
	double ms = ms_since(&rf->start);
	int n;

	if (!rf->progress || ms_since(&rf->last_draw) < PROGRESS_MS)
		return;
	if (clock_gettime(CLOCK_MONOTONIC, &rf->last_draw) < 0)
		return;
	n = fprintf(stderr, "\r%" PRIu64 " files, %.1f MB, %.1f MB/s",
		    rf->files_done, rf->bytes_done / 1e6,
		    ms > 0 ? rf->bytes_done / 1e3 / ms : 0.0);
	if (n < 1)
		return;
	/* Blank out what is left of a longer line drawn before. */
	if (n - 1 < rf->shown)
		fprintf(stderr, "%*s", rf->shown - (n - 1), "");
	rf->shown = n - 1 > rf->shown ? n - 1 : rf->shown;
}

static void summary(struct readfiles *rf)
{
	double ms = ms_since(&rf->start);

	if (!rf->progress)
		return;
	progress_clear(rf);
	fprintf(stderr, PROG ": %" PRIu64 " files, %" PRIu64 " failed, "
		"%" PRIu64 " bytes in %.3f s, %.1f MB/s\n",
		rf->files_done, rf->files_failed, rf->bytes_done, ms / 1e3,
		ms > 0 ? rf->bytes_done / 1e3 / ms : 0.0);
}

/* Stop everything: @what failed with @err.  The first error wins. */
static void set_fatal(struct readfiles *rf, const char *what, int err)
{
	if (rf->fatal)
		return;
	rf->fatal = err;
	rf->fatal_what = what;
}

/*
 * Count @job, just submitted by @what.  A submit fails only when memory
 * runs out (or the pool is being destroyed after such an error): then the
 * whole run stops.
 */
static bool submitted(struct readfiles *rf, const iop_job *job,
		      const char *what)
{
	if (!job) {
		set_fatal(rf, what, errno);
		return false;
	}
	rf->jobs++;
	return true;
}

/* ------------------------------------------------------------------ */
/* The walk.                                                           */

char *path_join(const char *dir, const char *name)
{
	size_t dlen = strlen(dir), nlen = strlen(name);
	bool slash = dlen > 0 && dir[dlen - 1] != '/';
	char *path = malloc(dlen + slash + nlen + 1);

	if (!path)
		return NULL;
	memcpy(path, dir, dlen);
	if (slash)
		path[dlen] = '/';
	memcpy(path + dlen + slash, name, nlen + 1);
	return path;
}

/* Put @name (taken) at the end of the window, as failed with @err or not. */
static void add_file(struct readfiles *rf, char *name, int err, bool is_stdin)
{
	struct file *f = calloc(1, sizeof(*f));

	if (!f) {
		free(name);
		set_fatal(rf, "walk", ENOMEM);
		return;
	}
	f->rf = rf;
	f->name = name;
	f->state = err ? DONE : NEW;
	f->fd = -1;
	f->err = err;
	f->is_stdin = is_stdin;
	f->last = &f->first;
	if (rf->tail)
		rf->tail->next = f;
	else
		rf->head = f;
	rf->tail = f;
	rf->nwindow++;
}

static void pop_dir(struct readfiles *rf)
{
	struct dir *d = rf->dirs;

	rf->dirs = d->up;
	free(d->ents);
	free(d->path);
	free(d);
}

/* Push the directory just listed onto the walk: its entries come next. */
static void push_dir(struct readfiles *rf)
{
	struct dir *d = calloc(1, sizeof(*d));

	if (!d) {
		free(rf->walk_ents);
		free(rf->walk_name);
		set_fatal(rf, "walk", ENOMEM);
		return;
	}
	d->path = rf->walk_name;
	d->ents = rf->walk_ents;
	d->n = (size_t)rf->walk_list_result;
	d->dev = rf->walk_st.st_dev;
	d->ino = rf->walk_st.st_ino;
	d->up = rf->dirs;
	rf->dirs = d;
}

/* Both answers are in: a directory is walked, any other name is a file. */
static void walk_answered(struct readfiles *rf)
{
	const struct stat *sb = &rf->walk_st;
	int err = (int)-rf->walk_stat_result;
	struct dir *d;

	if (!err && S_ISDIR(sb->st_mode)) {
		/* A symlink back to an ancestor would make the walk endless. */
		for (d = rf->dirs; d && !err; d = d->up)
			if (d->dev == sb->st_dev && d->ino == sb->st_ino)
				err = ELOOP;
		if (!err && rf->walk_list_result < 0)
			err = (int)-rf->walk_list_result;
		if (!err) {
			push_dir(rf);
			return;
		}
	}
	free(rf->walk_ents);
	add_file(rf, rf->walk_name, err, false);
}

static void walk_statted(iop_job *job, ssize_t result, void *arg)
{
	struct readfiles *rf = arg;

	(void)job;
	rf->jobs--;
	rf->walk_stat_result = result;
	if (--rf->walking == 0)
		walk_answered(rf);
}

static void walk_listed(iop_job *job, ssize_t result, void *arg)
{
	struct readfiles *rf = arg;

	(void)job;
	rf->jobs--;
	rf->walk_list_result = result;
	if (--rf->walking == 0)
		walk_answered(rf);
}

/*
 * One step of the walk: take the next name, from the innermost directory
 * or else from the arguments.  A name that cannot be a directory joins the
 * window at once; any other is looked at and listed first.
 */
static void walk_step(struct readfiles *rf)
{
	struct dir *d = rf->dirs;
	unsigned char type = DT_UNKNOWN;
	iop_job *job;
	char *name;

	if (d && d->i == d->n) {
		pop_dir(rf);
		return;
	}
	if (d) {
		type = d->ents[d->i].type;
		name = path_join(d->path, d->ents[d->i++].name);
	} else if (rf->iarg < rf->nargs) {
		name = strdup(rf->args[rf->iarg++]);
	} else {
		rf->walk_done = true;
		return;
	}
	if (!name) {
		set_fatal(rf, "walk", ENOMEM);
	} else if (!d && strcmp(name, "-") == 0) {
		add_file(rf, name, 0, true);
	} else if (type != DT_UNKNOWN && type != DT_DIR && type != DT_LNK) {
		add_file(rf, name, 0, false);
	} else {
		/* What a submit that fails leaves, for walk_answered(). */
		rf->walk_stat_result = rf->walk_list_result = -ECANCELED;
		rf->walk_ents = NULL;
		rf->walk_name = name;
		job = iop_statat(rf->pool, AT_FDCWD, name, &rf->walk_st, 0,
				 walk_statted, rf);
		rf->walking += submitted(rf, job, "iop_statat");
		job = iop_listdir(rf->pool, AT_FDCWD, name, IOP_LISTDIR_SORT,
				  &rf->walk_ents, walk_listed, rf);
		rf->walking += submitted(rf, job, "iop_listdir");
		if (!rf->walking)
			free(name);
	}
}

/* ------------------------------------------------------------------ */
/* A file: open, fstat, reads, close.                                  */

static void read_done(iop_job *job, ssize_t result, void *arg);

static void file_closed(iop_job *job, ssize_t result, void *arg)
{
	struct file *f = arg;

	(void)job;
	f->rf->jobs--;
	if (result < 0 && !f->err)
		f->err = (int)-result;
	f->fd = -1;
	f->state = DONE;
}

static void chunk_put(struct readfiles *rf, struct chunk *c)
{
	c->file = NULL;
	c->next = rf->free;
	rf->free = c;
}

/* Once no read of @f is in flight any more, close it. */
static void file_maybe_end(struct readfiles *rf, struct file *f)
{
	struct chunk *c;

	if (!f->stop || f->inflight > 0 || f->state >= CLOSING)
		return;
	if (!f->err && !f->eof) {
		/* Every offset below next_off had a chunk: a bug if not. */
		fprintf(stderr, PROG ": %s: ended before EOF\n", f->name);
		abort();
	}
	while ((c = f->first)) {
		f->first = c->next;
		chunk_put(rf, c);
	}
	if (f->is_stdin)
		rf->stdin_busy = false;
	if (f->fd >= 0 && !f->is_stdin) {
		f->state = CLOSING;
		submitted(rf, iop_close(rf->pool, f->fd, file_closed, f),
			  "iop_close");
	} else {
		f->state = DONE;
	}
}

static void file_fail(struct readfiles *rf, struct file *f, int err)
{
	if (!f->err)
		f->err = err;
	f->stop = true;
	file_maybe_end(rf, f);
}

/*
 * Choose how to read @f.  Pipes and the like have no offsets; everything
 * else is read with pread(), and st_size only hints how far ahead.
 */
static void file_statted(iop_job *job, ssize_t result, void *arg)
{
	struct file *f = arg;
	struct readfiles *rf = f->rf;
	mode_t mode = f->st.st_mode;

	(void)job;
	rf->jobs--;
	if (result < 0) {
		file_fail(rf, f, (int)-result);
		return;
	}
	f->seekable = !S_ISFIFO(mode) && !S_ISCHR(mode) && !S_ISSOCK(mode);
	if (f->seekable && S_ISREG(mode))
		f->horizon = f->st.st_size;
	f->state = READING;
}

static void file_opened(iop_job *job, ssize_t result, void *arg)
{
	struct file *f = arg;
	struct readfiles *rf = f->rf;

	(void)job;
	rf->jobs--;
	if (result < 0) {
		file_fail(rf, f, (int)-result);
		return;
	}
	f->fd = (int)result;
	submitted(rf, iop_fstat(rf->pool, f->fd, &f->st, file_statted, f),
		  "iop_fstat");
}

static void file_start(struct readfiles *rf, struct file *f)
{
	if (f->is_stdin) {
		rf->stdin_busy = true;
		f->fd = STDIN_FILENO;
		f->state = READING;	/* Not seekable: read in order. */
		return;
	}
	f->state = OPENING;
	submitted(rf, iop_openat(rf->pool, AT_FDCWD, f->name, O_RDONLY, 0,
				 file_opened, f),
		  "iop_openat");
}

static bool wants_read(const struct file *f)
{
	return f->state == READING && !f->stop &&
	       (f->seekable ? f->next_off <= f->horizon : f->inflight == 0);
}

/* Queue the read of the rest of chunk @c. */
static void submit_read(struct readfiles *rf, struct chunk *c)
{
	struct file *f = c->file;
	int64_t off = f->seekable ? c->off + (int64_t)c->got
				  : IOP_OFFSET_CURRENT;

	submitted(rf, iop_read(rf->pool, f->fd, c->buf + c->got,
			       rf->bytes - c->got, off, read_done, c),
		  "iop_read");
}

/* Give a free buffer to @f for its next chunk, at the end of its queue. */
static void issue_read(struct readfiles *rf, struct file *f)
{
	struct chunk *c = rf->free;

	rf->free = c->next;
	*c = (struct chunk){ .file = f, .buf = c->buf, .off = f->next_off };
	*f->last = c;
	f->last = &c->next;
	f->inflight++;
	if (f->seekable)
		f->next_off += (int64_t)rf->bytes;
	submit_read(rf, c);
}

/* Sum the chunks at the front of @f's queue that are ready, in order. */
static void sum_ready(struct readfiles *rf, struct file *f)
{
	struct chunk *c;

	while (!f->err && !f->eof && (c = f->first) && c->ready) {
		f->first = c->next;
		if (!f->first)
			f->last = &f->first;
		f->crc = cksum_update(f->crc, c->buf, c->got);
		f->len += (int64_t)c->got;
		rf->bytes_done += c->got;
		f->eof = c->eof;
		chunk_put(rf, c);
	}
}

/*
 * The callback of every read.  A short read of a seekable file is not its
 * end: the rest of the chunk is asked for again at once, into the same
 * buffer, so that a chunk always covers exactly its range.  Chunks past
 * the end of file (it grew meanwhile) or after an error stay in the queue
 * unsummed until the file ends.
 */
static void read_done(iop_job *job, ssize_t result, void *arg)
{
	struct chunk *c = arg;
	struct file *f = c->file;
	struct readfiles *rf = f->rf;
	int64_t end;

	(void)job;
	rf->jobs--;
	if (result < 0) {
		f->inflight--;
		file_fail(rf, f, (int)-result);
		return;
	}
	c->got += (size_t)result;
	if (result > 0 && f->seekable && !f->err && !f->eof &&
	    c->got < rf->bytes) {
		submit_read(rf, c);
		return;
	}
	f->inflight--;
	c->ready = true;
	c->eof = result == 0;
	end = c->off + (int64_t)c->got;
	if (c->eof)
		f->stop = true;
	else if (f->seekable && end > f->st.st_size && end > f->horizon / 2)
		/* Longer than st_size said: read ever further on. */
		f->horizon = 2 * end;
	sum_ready(rf, f);
	file_maybe_end(rf, f);
}

/* ------------------------------------------------------------------ */
/* The main loop.                                                      */

/*
 * Walk on while the window has room, then start the files in it and hand
 * out the free buffers, in output order.  The window is bounded so that a
 * slow file (a pipe) at its head cannot make the walk race ahead.
 */
static void fill(struct readfiles *rf)
{
	struct file *f;

	while (!rf->walking && !rf->walk_done && !rf->fatal &&
	       rf->nwindow < rf->max_window)
		walk_step(rf);
	for (f = rf->head; f && !rf->fatal; f = f->next) {
		if (f->state == NEW && !(f->is_stdin && rf->stdin_busy))
			file_start(rf, f);
		while (rf->free && wants_read(f))
			issue_read(rf, f);
	}
}

/* Print the lines of the files at the head of the window that are done. */
static void print_ready(struct readfiles *rf)
{
	struct file *f;

	while ((f = rf->head) && f->state == DONE && !rf->fatal) {
		if (f->err) {
			if (fflush(stdout) == EOF) {
				set_fatal(rf, "write error", errno);
				break;
			}
			progress_clear(rf);
			fprintf(stderr, PROG ": %s: %s\n", f->name,
				strerror(f->err));
			rf->status = 1;
			rf->files_failed++;
		} else {
			if (rf->stdout_tty)
				progress_clear(rf);
			if (printf("%" PRIu32 " %" PRId64 " %s\n",
				   cksum_finish(f->crc, (uint64_t)f->len),
				   f->len, f->name) < 0) {
				set_fatal(rf, "write error", errno);
				break;
			}
			if (rf->copy &&
			    fprintf(rf->copy, "%" PRIu32 " %" PRId64 " %s\n",
				    cksum_finish(f->crc, (uint64_t)f->len),
				    f->len, f->name) < 0) {
				set_fatal(rf, "--compare-sync", ENOMEM);
				break;
			}
		}
		rf->files_done++;
		rf->head = f->next;
		if (!rf->head)
			rf->tail = NULL;
		rf->nwindow--;
		free(f->name);
		free(f);
	}
}

/*
 * Start what can start, print what is complete, and wait for completions,
 * whose callbacks run inside iop_wait().  Returns when all is printed or
 * rf->fatal is set.
 */
static void run(struct readfiles *rf)
{
	int n;

	for (;;) {
		/* Hand what fill() submits to the workers in one go. */
		iop_batch_begin(rf->pool);
		fill(rf);
		iop_batch_end(rf->pool);
		print_ready(rf);
		if (!rf->fatal && fflush(stdout) == EOF)
			set_fatal(rf, "write error", errno);
		if (rf->fatal || (!rf->head && rf->walk_done))
			return;
		if (rf->jobs == 0) {
			if (rf->head) {
				fprintf(stderr, PROG ": %s: stalled\n",
					rf->head->name);
				abort();
			}
			continue;	/* Only printed files left: walk on. */
		}
		progress_draw(rf);
		n = iop_wait(rf->pool, rf->progress ? PROGRESS_MS : -1);
		if (n < 0) {
			set_fatal(rf, "iop_wait", -n);
			return;
		}
	}
}

/* Say @why about option @opt, if @why is given, then how to call us. */
static _Noreturn void usage(const char *why, const char *opt)
{
	if (why)
		fprintf(stderr, PROG ": %s %s\n", why, opt);
	fprintf(stderr, "usage: " PROG " [-j THREADS] [-d DEPTH] [-b BYTES] "
		"[-v] [--compare-sync] [FILE|DIR|-]...\n");
	exit(2);
}

/* A decimal number from @min to @max, or usage() for anything else. */
static unsigned long parse_num(int opt, const char *s, unsigned long min,
			       unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v < min || v > max) {
		fprintf(stderr, PROG ": -%c: bad number '%s' (%lu to %lu)\n",
			opt, s, min, max);
		usage(NULL, NULL);
	}
	return v;
}

/* The one long option. */
static const struct option long_opts[] = {
	{ "compare-sync", no_argument, NULL, 'S' },
	{ NULL, 0, NULL, 0 },
};

static void parse_args(struct readfiles *rf, int argc, char **argv,
		       struct iop_options *opts)
{
	static char *dot[] = { ".", NULL };
	char optname[3] = "-?";
	bool verbose = false;
	int opt;

	opts->threads = DEFAULT_THREADS;
	rf->depth = DEFAULT_DEPTH;
	rf->bytes = DEFAULT_BYTES;
	/* Our own messages: getopt's would name .libs/readfiles. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":j:d:b:v", long_opts,
				  NULL)) != -1) {
		optname[1] = (char)optopt;
		switch (opt) {
		case 'j':
			opts->threads = (unsigned)parse_num(opt, optarg, 1,
							    IOP_THREADS_MAX);
			break;
		case 'd':
			rf->depth = (unsigned)parse_num(opt, optarg, 1,
							MAX_DEPTH);
			break;
		case 'b':
			rf->bytes = parse_num(opt, optarg, 1, MAX_BYTES);
			break;
		case 'v':
			verbose = true;
			break;
		case 'S':
			rf->compare = true;
			break;
		case ':':
			usage("a number must follow", optname);
		default:
			/* A long option is named whole, --compare-sync=x too. */
			usage("unknown option", optopt && optopt != 'S'
						? optname : argv[optind - 1]);
		}
	}
	rf->args = optind < argc ? argv + optind : dot;
	rf->nargs = optind < argc ? argc - optind : 1;
	for (int i = 0; rf->compare && i < rf->nargs; i++)
		if (strcmp(rf->args[i], "-") == 0) {
			fprintf(stderr, PROG ": --compare-sync cannot read "
				"standard input twice\n");
			usage(NULL, NULL);
		}
	rf->progress = verbose || isatty(STDERR_FILENO);
	rf->stdout_tty = isatty(STDOUT_FILENO);
}

/* Allocate the buffers, all of them once.  Returns 0 or ENOMEM. */
static int setup_buffers(struct readfiles *rf)
{
	if (rf->bytes > SIZE_MAX / rf->depth)
		return ENOMEM;
	rf->area = malloc(rf->depth * rf->bytes);
	rf->chunks = calloc(rf->depth, sizeof(*rf->chunks));
	if (!rf->area || !rf->chunks)
		return ENOMEM;
	for (unsigned i = 0; i < rf->depth; i++) {
		rf->chunks[i].buf = rf->area + (size_t)i * rf->bytes;
		chunk_put(rf, &rf->chunks[i]);
	}
	/* Room for every buffer's file, and as many done ones waiting. */
	rf->max_window = 2 * rf->depth + 1;
	return 0;
}

/*
 * Free what is left once the pool is gone (all of it after an error).
 * Descriptors still open after an error are left for exit() to close.
 */
static void teardown(struct readfiles *rf)
{
	struct file *f;

	while ((f = rf->head)) {
		rf->head = f->next;
		free(f->name);
		free(f);
	}
	while (rf->dirs)
		pop_dir(rf);
	free(rf->chunks);
	free(rf->area);
}

/*
 * --compare-sync: the same work with blocking calls (readfiles-sync.c),
 * after the pool's run, which took @pool_ms.  Its lines must be the ones
 * the pool's run printed (rf->copy), its failures as many.  Returns 0, or
 * 1 after saying on stderr what went wrong.
 */
static int compare_sync(struct readfiles *rf, char *copy, size_t copy_len,
			double pool_ms)
{
	struct timespec t0 = { 0 };
	uint64_t failed = 0;
	char *lines = NULL;
	size_t len = 0;
	double ms;
	FILE *out = open_memstream(&lines, &len);
	int err = out ? 0 : errno;

	if (!err)
		err = readfiles_drop_cache(rf->args, rf->nargs);
	if (clock_gettime(CLOCK_MONOTONIC, &t0) < 0 && !err)
		err = errno;
	if (!err)
		err = readfiles_sync(rf->args, rf->nargs, rf->bytes, out,
				     &failed);
	ms = ms_since(&t0);
	if (out && fclose(out) == EOF && !err)
		err = errno;
	if (err) {
		fprintf(stderr, PROG ": --compare-sync: %s\n", strerror(err));
	} else if (len != copy_len || memcmp(lines, copy, len) != 0 ||
		   failed != rf->files_failed) {
		fprintf(stderr, PROG ": --compare-sync: the blocking reads "
			"gave other results\n");
		err = -1;
	} else {
		fprintf(stderr, PROG ": --compare-sync: iopool %.3f s, "
			"blocking reads %.3f s: %.2f times as fast\n",
			pool_ms / 1e3, ms / 1e3, pool_ms > 0 ? ms / pool_ms : 0);
	}
	free(lines);
	return err != 0;
}

int main(int argc, char **argv)
{
	struct readfiles rf = { .status = 0 };
	struct iop_options opts = { .threads = 0 };
	char *copy = NULL;
	size_t copy_len = 0;
	double pool_ms;
	int err;

	parse_args(&rf, argc, argv, &opts);
	cksum_init();
	/* Both runs of --compare-sync start on a cold cache. */
	err = rf.compare ? readfiles_drop_cache(rf.args, rf.nargs) : 0;
	if (err) {
		fprintf(stderr, PROG ": --compare-sync: %s\n", strerror(err));
		return 1;
	}
	if (clock_gettime(CLOCK_MONOTONIC, &rf.start) < 0)
		memset(&rf.start, 0, sizeof(rf.start));
	/* Runs shorter than one redraw show only the summary. */
	rf.last_draw = rf.start;
	err = setup_buffers(&rf);
	if (err) {
		fprintf(stderr, PROG ": %u buffers of %zu bytes: %s\n",
			rf.depth, rf.bytes, strerror(err));
		teardown(&rf);
		return 1;
	}
	rf.pool = iop_pool_new(&opts);
	if (!rf.pool) {
		fprintf(stderr, PROG ": iop_pool_new: %s\n",
			strerror(errno));
		teardown(&rf);
		return 1;
	}
	if (rf.compare && !(rf.copy = open_memstream(&copy, &copy_len)))
		set_fatal(&rf, "--compare-sync", errno);
	if (!rf.fatal)
		run(&rf);
	/* Jobs still in flight after an error end here, before teardown. */
	iop_pool_destroy(rf.pool);
	pool_ms = ms_since(&rf.start);
	if (rf.copy && fclose(rf.copy) == EOF)
		set_fatal(&rf, "--compare-sync", errno);
	if (!rf.fatal && fclose(stdout) == EOF)
		set_fatal(&rf, "write error", errno);
	summary(&rf);
	if (rf.fatal) {
		fprintf(stderr, PROG ": %s: %s\n", rf.fatal_what,
			strerror(rf.fatal));
		rf.status = 1;
	} else if (rf.compare && compare_sync(&rf, copy, copy_len, pool_ms)) {
		rf.status = 1;
	}
	free(copy);
	teardown(&rf);
	return rf.status;
}
