/*
 * readfiles: a parallel cksum(1), and the example program of iopool.
 *
 *	readfiles [-j THREADS] [-d DEPTH] [-b BYTES] [-v] [FILE|DIR|-]...
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
 *
 * From the build directory, for example:
 *
 *	./examples/readfiles -j 8 -d 128 /usr/include > sums
 *	./examples/readfiles ../configure.ac ../Makefile.am > sums
 *	cksum ../configure.ac ../Makefile.am | cmp - sums  # silent: same
 *	tar cf - ../src | ./examples/readfiles -
 *
 * Errors go to stderr as "readfiles: NAME: reason", the other files are
 * still read, and the exit status is then 1.
 *
 * How it works: the main thread owns everything.  It opens the files,
 * queues reads with iop_read() and runs their callbacks in iop_wait().  The
 * workers only run the pread(2) and read(2) calls.  Memory is DEPTH buffers
 * of BYTES each, allocated once: a buffer goes to the earliest file in
 * output order that can use another read, so the file whose line is printed
 * next always makes progress.  Regular files get several reads in flight at
 * increasing offsets; the chunks may finish in any order, so a chunk that
 * arrives early waits on its file's list until the chunks before it have
 * been summed, since a CRC can only be computed in order.  A file ends at
 * the first read that returns 0, never at st_size: files under /proc report
 * size 0, and a file may grow while it is read.  Pipes, FIFOs and terminals
 * are read at their current position, one read at a time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* For a getopt() that permutes, as cksum's does. */
#endif
#define _FILE_OFFSET_BITS 64	/* For stat() of large files on 32-bit. */

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

#include <iopool.h>

#define DEFAULT_THREADS 4
#define DEFAULT_DEPTH 64
#define DEFAULT_BYTES 65536
#define MAX_DEPTH 65536
#define MAX_BYTES (1 << 30)

/* Progress is redrawn at most this often, in milliseconds. */
#define PROGRESS_MS 100

/* One buffer and the read that fills it. */
struct chunk {
	struct chunk *next;	/* In the free list or a waiting list. */
	struct file *file;	/* The file it reads, while in use. */
	unsigned char *buf;	/* BYTES long, set once at startup. */
	int64_t off;		/* Offset in the file of buf[0]. */
	size_t want;		/* Bytes asked for. */
	size_t got;		/* Bytes in buf so far. */
	bool eof;		/* A read of this chunk returned 0. */
};

/* One file to sum, from the time the walk finds it until its line. */
struct file {
	struct file *next;	/* The window, in output order. */
	struct readfiles *rf;
	char *name;
	int fd;			/* -1 before opening, after closing. */
	int err;		/* The first error, as errno, or 0. */
	bool is_stdin;		/* Named "-". */
	bool seekable;		/* pread() at offsets, else read(). */
	bool started;		/* Opened (or failed to). */
	bool stop;		/* Queue no new read: EOF seen, or error. */
	bool eof;		/* The summed data reached end of file. */
	bool done;		/* Nothing in flight, fd closed: print it. */
	unsigned inflight;	/* Chunks with a read queued or running. */
	int64_t next_off;	/* Where the next new chunk starts. */
	int64_t hint;		/* st_size at open: a guess, no more. */
	int64_t horizon;	/* New chunks start at offsets up to this. */
	int64_t len;		/* Bytes summed so far, in order. */
	uint32_t crc;
	struct chunk *waiting;	/* Finished chunks past len, by offset. */
};

/* One directory of the walk, with the names still to visit. */
struct dir {
	struct dir *up;
	char *path;
	char **names;		/* Sorted by strcmp(); freed as visited. */
	size_t n, i;
	dev_t dev;		/* To refuse a symlink back to an ancestor. */
	ino_t ino;
};

/* The whole program's state.  Only the main thread touches it. */
struct readfiles {
	iop_pool *pool;
	unsigned depth;
	size_t bytes;
	unsigned char *area;	/* depth * bytes, the buffers. */
	struct chunk *chunks;	/* depth of them. */
	struct chunk *free;
	unsigned nfree;

	/* Files found and not yet printed, in output order. */
	struct file *head, *tail;
	unsigned nwindow, max_window;
	bool stdin_busy;	/* A "-" is being read: the next one waits. */

	char **args;
	int nargs, iarg;
	struct dir *dirs;	/* The walk's stack, innermost first. */
	bool walk_done;

	int status;		/* The exit status so far. */
	int fatal;		/* errno of an error that stops everything, */
	const char *fatal_what;	/* and what failed. */

	bool progress, stdout_tty;
	uint64_t files_done, files_failed, bytes_done;
	struct timespec start, last_draw;
	int shown;		/* Width of the progress line on screen. */
};

/*
 * The POSIX cksum CRC: polynomial 0x04C11DB7, most significant bit first,
 * starting from 0; the length follows the data, least significant byte
 * first, and the result is complemented.  crc_table[k][i] is the CRC of
 * byte i followed by k zero bytes, so that eight bytes are folded in with
 * eight independent lookups (slicing-by-8, as coreutils does): one lookup
 * per byte would make the main thread, not the disk, the bottleneck.
 */
static uint32_t crc_table[8][256];

static void crc_init(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = (uint32_t)i << 24;

		for (int bit = 0; bit < 8; bit++)
			c = c & 0x80000000u ? c << 1 ^ 0x04C11DB7u : c << 1;
		crc_table[0][i] = c;
	}
	for (int k = 1; k < 8; k++)
		for (unsigned i = 0; i < 256; i++) {
			uint32_t c = crc_table[k - 1][i];

			crc_table[k][i] = c << 8 ^ crc_table[0][c >> 24];
		}
}

static uint32_t crc_byte(uint32_t crc, unsigned char b)
{
	return crc << 8 ^ crc_table[0][(crc >> 24 ^ b) & 0xff];
}

static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
	for (; n >= 8; p += 8, n -= 8) {
		uint32_t a = crc ^ ((uint32_t)p[0] << 24 |
				    (uint32_t)p[1] << 16 |
				    (uint32_t)p[2] << 8 | p[3]);

		crc = crc_table[7][a >> 24] ^ crc_table[6][a >> 16 & 0xff] ^
		      crc_table[5][a >> 8 & 0xff] ^ crc_table[4][a & 0xff] ^
		      crc_table[3][p[4]] ^ crc_table[2][p[5]] ^
		      crc_table[1][p[6]] ^ crc_table[0][p[7]];
	}
	for (; n > 0; p++, n--)
		crc = crc_byte(crc, *p);
	return crc;
}

static uint32_t crc_finish(uint32_t crc, uint64_t len)
{
	for (; len > 0; len >>= 8)
		crc = crc_byte(crc, len & 0xff);
	return ~crc;
}

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
	fprintf(stderr, "readfiles: %" PRIu64 " files, %" PRIu64 " failed, "
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

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t from, size_t n)
{
	for (size_t i = from; i < n; i++)
		free(names[i]);
	free(names);
}

/* Append a copy of @name to *@names, growing it.  Returns 0 or ENOMEM. */
static int add_name(char ***names, size_t *n, size_t *cap, const char *name)
{
	if (*n == *cap) {
		size_t cap2 = *cap ? *cap * 2 : 16;
		char **grown = realloc(*names, cap2 * sizeof(*grown));

		if (!grown)
			return ENOMEM;
		*names = grown;
		*cap = cap2;
	}
	(*names)[*n] = strdup(name);
	if (!(*names)[*n])
		return ENOMEM;
	(*n)++;
	return 0;
}

/*
 * Read the names in directory @path, without "." and "..", sorted by
 * strcmp().  They are read whole and the directory closed at once, so the
 * walk holds no descriptor however deep it goes.  Returns 0 or an errno.
 */
static int list_dir(const char *path, char ***namesp, size_t *np)
{
	DIR *dir = opendir(path);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int err = 0;

	if (!dir)
		return errno;
	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de) {
			err = errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		err = add_name(&names, &n, &cap, de->d_name);
		if (err)
			break;
	}
	if (closedir(dir) < 0 && !err)
		err = errno;
	if (err) {
		free_names(names, 0, n);
		return err;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	*namesp = names;
	*np = n;
	return 0;
}

/* Push directory @path (taking it) onto the walk.  Returns 0 or an errno. */
static int push_dir(struct readfiles *rf, char *path, const struct stat *sb)
{
	struct dir *d;
	int err;

	/* A symlink to an ancestor would make the walk endless. */
	for (d = rf->dirs; d; d = d->up)
		if (d->dev == sb->st_dev && d->ino == sb->st_ino)
			return ELOOP;
	d = calloc(1, sizeof(*d));
	if (!d)
		return ENOMEM;
	err = list_dir(path, &d->names, &d->n);
	if (err) {
		free(d);
		return err;
	}
	d->path = path;
	d->dev = sb->st_dev;
	d->ino = sb->st_ino;
	d->up = rf->dirs;
	rf->dirs = d;
	return 0;
}

static void pop_dir(struct readfiles *rf)
{
	struct dir *d = rf->dirs;

	rf->dirs = d->up;
	free_names(d->names, d->i, d->n);
	free(d->path);
	free(d);
}

/* DIR/NAME, without doubling a slash that DIR already ends with. */
static char *path_join(const char *dir, const char *name)
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

/*
 * Turn @name (taken) into work: a directory is pushed onto the walk, and
 * anything else, including a name stat() fails on, becomes a file record
 * (the error is reported in its place in the output).  Returns the record,
 * or NULL after pushing a directory or, with rf->fatal set, on ENOMEM.
 */
static struct file *visit(struct readfiles *rf, char *name, bool is_stdin)
{
	struct file *f;
	struct stat sb;
	int err = 0;

	if (!is_stdin) {
		if (stat(name, &sb) < 0)
			err = errno;
		else if (S_ISDIR(sb.st_mode) &&
			 (err = push_dir(rf, name, &sb)) == 0)
			return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		free(name);
		set_fatal(rf, "walk", ENOMEM);
		return NULL;
	}
	f->rf = rf;
	f->name = name;
	f->fd = -1;
	f->err = err;
	f->is_stdin = is_stdin;
	return f;
}

/* The next file of the walk, or NULL at its end or on a fatal error. */
static struct file *next_file(struct readfiles *rf)
{
	struct file *f = NULL;
	struct dir *d;
	char *name;

	while (!f && !rf->fatal) {
		d = rf->dirs;
		if (d && d->i == d->n) {
			pop_dir(rf);
			continue;
		}
		if (d) {
			name = path_join(d->path, d->names[d->i]);
			free(d->names[d->i++]);
		} else if (rf->iarg < rf->nargs) {
			name = strdup(rf->args[rf->iarg++]);
		} else {
			rf->walk_done = true;
			break;
		}
		if (!name) {
			set_fatal(rf, "walk", ENOMEM);
			break;
		}
		f = visit(rf, name, !d && strcmp(name, "-") == 0);
	}
	return f;
}

static void chunk_put(struct readfiles *rf, struct chunk *c)
{
	c->file = NULL;
	c->next = rf->free;
	rf->free = c;
	rf->nfree++;
}

static void drop_waiting(struct readfiles *rf, struct file *f)
{
	struct chunk *c;

	while ((c = f->waiting)) {
		f->waiting = c->next;
		chunk_put(rf, c);
	}
}

static void file_fail(struct readfiles *rf, struct file *f, int err)
{
	if (!f->err)
		f->err = err;
	f->stop = true;
	drop_waiting(rf, f);
}

/* Once nothing more will be read into @f, close it: it can be printed. */
static void file_maybe_end(struct readfiles *rf, struct file *f)
{
	if (!f->stop || f->inflight > 0 || f->done)
		return;
	if (f->is_stdin)
		rf->stdin_busy = false;
	else if (f->fd >= 0 && close(f->fd) < 0 && !f->err)
		f->err = errno;
	f->fd = -1;
	drop_waiting(rf, f);
	if (!f->err && !f->eof) {
		/* Every offset below next_off had a chunk: a bug if not. */
		fprintf(stderr, "readfiles: %s: ended before EOF\n", f->name);
		abort();
	}
	f->done = true;
	rf->files_done++;
}

/* Open @f on the main thread, and choose how to read it. */
static void file_start(struct readfiles *rf, struct file *f)
{
	struct stat sb;

	f->started = true;
	if (f->is_stdin) {
		f->fd = STDIN_FILENO;
		rf->stdin_busy = true;
	} else if (!f->err) {
		f->fd = open(f->name, O_RDONLY | O_CLOEXEC);
		if (f->fd < 0 || fstat(f->fd, &sb) < 0)
			f->err = errno;
	}
	if (f->err) {
		f->stop = true;
		file_maybe_end(rf, f);
		return;
	}
	/*
	 * Pipes and the like have no offsets.  Everything else is read with
	 * pread(); st_size only hints how far ahead to read at first.
	 */
	f->seekable = !f->is_stdin && !S_ISFIFO(sb.st_mode) &&
		      !S_ISCHR(sb.st_mode) && !S_ISSOCK(sb.st_mode);
	if (f->seekable && S_ISREG(sb.st_mode))
		f->hint = f->horizon = sb.st_size;
}

static bool wants_read(const struct file *f)
{
	if (!f->started || f->stop)
		return false;
	if (!f->seekable)
		return f->inflight == 0;
	return f->next_off <= f->horizon;
}

static void read_done(iop_job *job, ssize_t result, void *arg);

/* Queue the read of the rest of chunk @c.  Returns 0 or an errno. */
static int submit(struct readfiles *rf, struct chunk *c)
{
	struct file *f = c->file;
	int64_t off = IOP_OFFSET_CURRENT;

	if (f->seekable)
		off = c->off + (int64_t)c->got;
	if (!iop_read(rf->pool, f->fd, c->buf + c->got, c->want - c->got, off,
		      read_done, c))
		return errno;
	return 0;
}

/* Give a free buffer to @f for its next chunk. */
static void issue_read(struct readfiles *rf, struct file *f)
{
	struct chunk *c = rf->free;
	int err;

	rf->free = c->next;
	rf->nfree--;
	c->next = NULL;
	c->file = f;
	c->off = f->next_off;
	c->want = rf->bytes;
	c->got = 0;
	c->eof = false;
	err = submit(rf, c);
	if (err) {
		chunk_put(rf, c);
		file_fail(rf, f, err);
		file_maybe_end(rf, f);
		return;
	}
	f->inflight++;
	if (f->seekable)
		f->next_off += (int64_t)rf->bytes;
}

/* Add the bytes of @c, which starts at f->len, to the sum. */
static void consume(struct readfiles *rf, struct file *f, struct chunk *c)
{
	f->crc = crc_update(f->crc, c->buf, c->got);
	f->len += (int64_t)c->got;
	rf->bytes_done += c->got;
	if (c->eof) {
		f->eof = true;
		f->stop = true;
	}
	chunk_put(rf, c);
}

/*
 * Chunk @c of @f holds all it will: sum it if it is next in order, and the
 * waiting chunks that follow it; otherwise make it wait, sorted by offset.
 */
static void chunk_ready(struct readfiles *rf, struct file *f, struct chunk *c)
{
	struct chunk **pp;

	if (!f->seekable)
		c->off = f->len;
	if (f->err || f->eof) {
		/* Past end of file (it grew meanwhile) or after an error. */
		chunk_put(rf, c);
		return;
	}
	if (c->off != f->len) {
		for (pp = &f->waiting; *pp && (*pp)->off < c->off;
		     pp = &(*pp)->next)
			;
		c->next = *pp;
		*pp = c;
		return;
	}
	consume(rf, f, c);
	while (!f->eof && f->waiting && f->waiting->off == f->len) {
		c = f->waiting;
		f->waiting = c->next;
		consume(rf, f, c);
	}
	if (f->eof)
		drop_waiting(rf, f);
}

/*
 * The callback of every read, run on the main thread by iop_wait() (or by
 * iop_pool_destroy(), with -ECANCELED, after a fatal error).  A short read
 * of a seekable file is not its end: the rest of the chunk is asked for
 * again at once, into the same buffer, so that a chunk always covers
 * exactly its range and no second buffer is needed.
 */
static void read_done(iop_job *job, ssize_t result, void *arg)
{
	struct chunk *c = arg;
	struct file *f = c->file;
	struct readfiles *rf = f->rf;
	int64_t end;
	int err;

	(void)job;
	if (result < 0) {
		chunk_put(rf, c);
		file_fail(rf, f, (int)-result);
	} else if (result > 0 && f->seekable && !f->err && !f->eof &&
		   c->got + (size_t)result < c->want) {
		c->got += (size_t)result;
		err = submit(rf, c);
		if (!err)
			return;
		chunk_put(rf, c);
		file_fail(rf, f, err);
	} else {
		c->got += (size_t)result;
		c->eof = result == 0;
		end = c->off + (int64_t)c->got;
		if (c->eof)
			f->stop = true;
		else if (f->seekable && end > f->hint && end > f->horizon / 2)
			/* Longer than st_size said: read ever further on. */
			f->horizon = 2 * end;
		chunk_ready(rf, f, c);
	}
	f->inflight--;
	file_maybe_end(rf, f);
}

static void serve(struct readfiles *rf, struct file *f)
{
	if (!f->started && !(f->is_stdin && rf->stdin_busy))
		file_start(rf, f);
	while (rf->free && wants_read(f))
		issue_read(rf, f);
}

/*
 * Hand out the free buffers: first to the files already in the window, in
 * output order, then to new files from the walk while the window has room.
 * The window is bounded so that a slow file (a pipe) at its head cannot
 * make the walk race ahead without limit.
 */
static void fill(struct readfiles *rf)
{
	struct file *f;

	for (f = rf->head; f && rf->free; f = f->next)
		serve(rf, f);
	while (rf->free && rf->nwindow < rf->max_window && !rf->fatal) {
		f = next_file(rf);
		if (!f)
			break;
		if (rf->tail)
			rf->tail->next = f;
		else
			rf->head = f;
		rf->tail = f;
		rf->nwindow++;
		serve(rf, f);
	}
}

static void file_free(struct file *f)
{
	if (f->fd >= 0 && !f->is_stdin)
		close(f->fd);	/* Only after a fatal error: unchecked. */
	free(f->name);
	free(f);
}

/* Print the lines of the files at the head of the window that are done. */
static void print_ready(struct readfiles *rf)
{
	struct file *f;

	while ((f = rf->head) && f->done && !rf->fatal) {
		if (f->err) {
			if (fflush(stdout) == EOF) {
				set_fatal(rf, "write error", errno);
				break;
			}
			progress_clear(rf);
			fprintf(stderr, "readfiles: %s: %s\n", f->name,
				strerror(f->err));
			rf->status = 1;
			rf->files_failed++;
		} else {
			if (rf->stdout_tty)
				progress_clear(rf);
			if (printf("%" PRIu32 " %" PRId64 " %s\n",
				   crc_finish(f->crc, (uint64_t)f->len),
				   f->len, f->name) < 0) {
				set_fatal(rf, "write error", errno);
				break;
			}
		}
		rf->head = f->next;
		if (!rf->head)
			rf->tail = NULL;
		rf->nwindow--;
		file_free(f);
	}
}

/*
 * The main loop: queue reads, print what is complete, and wait for
 * completions, whose callbacks run inside iop_wait().  It returns when all
 * is printed or rf->fatal is set.
 */
static void run(struct readfiles *rf)
{
	int n;

	for (;;) {
		fill(rf);
		print_ready(rf);
		if (!rf->fatal && fflush(stdout) == EOF)
			set_fatal(rf, "write error", errno);
		if (rf->fatal || (!rf->head && rf->walk_done))
			return;
		if (rf->nfree == rf->depth) {
			if (rf->head) {
				fprintf(stderr, "readfiles: %s: stalled\n",
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

/* Say @why about option -@opt, if @why is given, then how to call us. */
static _Noreturn void usage(const char *why, int opt)
{
	if (why)
		fprintf(stderr, "readfiles: %s -%c\n", why, opt);
	fprintf(stderr, "usage: readfiles [-j THREADS] [-d DEPTH] [-b BYTES] "
		"[-v] [FILE|DIR|-]...\n");
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
		fprintf(stderr,
			"readfiles: -%c: bad number '%s' (%lu to %lu)\n",
			opt, s, min, max);
		usage(NULL, 0);
	}
	return v;
}

static void parse_args(struct readfiles *rf, int argc, char **argv,
		       struct iop_options *opts)
{
	static char *dot[] = { ".", NULL };
	bool verbose = false;
	int opt;

	opts->threads = DEFAULT_THREADS;
	rf->depth = DEFAULT_DEPTH;
	rf->bytes = DEFAULT_BYTES;
	/* Our own messages: getopt's would name .libs/readfiles. */
	opterr = 0;
	while ((opt = getopt(argc, argv, ":j:d:b:v")) != -1) {
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
		case ':':
			usage("a number must follow", optopt);
		default:
			usage("unknown option", optopt);
		}
	}
	rf->args = optind < argc ? argv + optind : dot;
	rf->nargs = optind < argc ? argc - optind : 1;
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

/* Free what is left after the pool is gone (all of it after an error). */
static void teardown(struct readfiles *rf)
{
	struct file *f;

	while ((f = rf->head)) {
		rf->head = f->next;
		file_free(f);
	}
	while (rf->dirs)
		pop_dir(rf);
	free(rf->chunks);
	free(rf->area);
}

int main(int argc, char **argv)
{
	struct readfiles rf = { .status = 0 };
	struct iop_options opts = { .threads = 0 };
	int err;

	parse_args(&rf, argc, argv, &opts);
	crc_init();
	if (clock_gettime(CLOCK_MONOTONIC, &rf.start) < 0)
		memset(&rf.start, 0, sizeof(rf.start));
	/* Runs shorter than one redraw show only the summary. */
	rf.last_draw = rf.start;
	err = setup_buffers(&rf);
	if (err) {
		fprintf(stderr, "readfiles: %u buffers of %zu bytes: %s\n",
			rf.depth, rf.bytes, strerror(err));
		teardown(&rf);
		return 1;
	}
	rf.pool = iop_pool_new(&opts);
	if (!rf.pool) {
		fprintf(stderr, "readfiles: iop_pool_new: %s\n",
			strerror(errno));
		teardown(&rf);
		return 1;
	}
	run(&rf);
	/* Reads still in flight after an error end here, before teardown. */
	iop_pool_destroy(rf.pool);
	if (!rf.fatal && fclose(stdout) == EOF)
		set_fatal(&rf, "write error", errno);
	summary(&rf);
	if (rf.fatal) {
		fprintf(stderr, "readfiles: %s: %s\n", rf.fatal_what,
			strerror(rf.fatal));
		rf.status = 1;
	}
	teardown(&rf);
	return rf.status;
}
