/*
 * readfiles --compare-sync: the work of readfiles done again the way a
 * sequential program does it, to show what the pool gains: stat(2) each
 * name, walk directories with scandir(3) in strcmp() order, open, read(2)
 * and close each file, all on the calling thread, one call after the
 * other.  Its lines must be byte for byte those of the pool's run.  The
 * same walk drops the files from the page cache before each run, so that
 * both start cold.
 */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64	/* As readfiles.c. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc.h"
#include "readfiles.h"

/* A directory being walked, to refuse a symlink back to it. */
struct ancestor {
	const struct ancestor *up;
	dev_t dev;
	ino_t ino;
};

/* The state of one run. */
struct sync_run {
	bool drop;		/* Only drop the files from the page cache. */
	unsigned char *buf;	/* bytes long. */
	size_t bytes;
	FILE *out;
	uint64_t failed;
	int fatal;		/* errno that stops the walk, or 0. */
};

/*
 * Sum the file @name and print its line.  It is opened non-blocking, so
 * that a FIFO without a writer cannot hang the run; anything else is then
 * read blocking, as a plain program would.
 */
static void sum_file(struct sync_run *s, const char *name)
{
	int fd = open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC), err = 0, flags;
	uint32_t crc = 0;
	uint64_t len = 0;
	struct stat st;
	ssize_t n;

	if (fd < 0) {
		s->failed++;
		return;
	}
	if (fstat(fd, &st) < 0) {
		err = errno;
	} else if (S_ISFIFO(st.st_mode)) {
		fprintf(stderr, PROG ": --compare-sync: %s: a FIFO cannot be "
			"read a second time\n", name);
		err = ESPIPE;
	} else if ((flags = fcntl(fd, F_GETFL)) < 0 ||
		   fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		err = errno;
	}
	while (!err && (n = read(fd, s->buf, s->bytes)) != 0) {
		if (n > 0) {
			crc = cksum_update(crc, s->buf, (size_t)n);
			len += (uint64_t)n;
		} else if (errno != EINTR) {
			err = errno;
		}
	}
	if (close(fd) < 0 && !err)
		err = errno;
	if (err)
		s->failed++;
	else if (fprintf(s->out, "%" PRIu32 " %" PRIu64 " %s\n",
			 cksum_finish(crc, len), len, name) < 0)
		s->fatal = errno ? errno : EIO;
}

/*
 * Drop the regular file @name from the page cache, as far as the kernel
 * lets us: pages mapped or dirty stay.  Failures only make the next run
 * warmer.  Nothing else is opened: opening a FIFO and closing it again
 * would cut off its writer before the real run.
 */
static void drop_file(const char *name, const struct stat *st)
{
	int fd;

	if (!S_ISREG(st->st_mode))
		return;
	fd = open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	(void)close(fd);
}

static int not_dots(const struct dirent *d)
{
	return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

static int by_strcmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Visit @name: a directory's entries in order, or a file. */
static void visit(struct sync_run *s, const char *name,
		  const struct ancestor *up)
{
	struct ancestor self;
	struct dirent **ents;
	struct stat st;
	char *path;
	int n, i;

	if (stat(name, &st) < 0) {
		s->failed++;
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (s->drop)
			drop_file(name, &st);
		else
			sum_file(s, name);
		return;
	}
	for (const struct ancestor *a = up; a; a = a->up)
		if (a->dev == st.st_dev && a->ino == st.st_ino) {
			s->failed++;	/* ELOOP */
			return;
		}
	n = scandir(name, &ents, not_dots, by_strcmp);
	if (n < 0) {
		if (errno == ENOMEM)
			s->fatal = ENOMEM;
		else
			s->failed++;
		return;
	}
	self = (struct ancestor){ .up = up, .dev = st.st_dev,
				  .ino = st.st_ino };
	for (i = 0; i < n; i++) {
		path = s->fatal ? NULL : path_join(name, ents[i]->d_name);
		if (path)
			visit(s, path, &self);
		else if (!s->fatal)
			s->fatal = ENOMEM;
		free(path);
		free(ents[i]);
	}
	free(ents);
}

int readfiles_drop_cache(char **args, int nargs)
{
	struct sync_run s = { .drop = true };

	for (int i = 0; i < nargs && !s.fatal; i++)
		visit(&s, args[i], NULL);
	return s.fatal;
}

int readfiles_sync(char **args, int nargs, size_t bytes, FILE *out,
		   uint64_t *failed)
{
	struct sync_run s = { .bytes = bytes, .out = out };

	s.buf = malloc(bytes);
	if (!s.buf)
		return ENOMEM;
	for (int i = 0; i < nargs && !s.fatal; i++)
		visit(&s, args[i], NULL);
	free(s.buf);
	*failed = s.failed;
	return s.fatal;
}
