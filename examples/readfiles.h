/*
 * readfiles: what readfiles.c and readfiles-sync.c (its --compare-sync
 * run) share.
 */
#ifndef EXAMPLES_READFILES_H
#define EXAMPLES_READFILES_H

#include <stdint.h>
#include <stdio.h>

/* The name in messages; the installed build says "iopool-readfiles". */
#ifndef PROG
#define PROG "readfiles"
#endif

/*
 * DIR/NAME, without doubling a slash that @dir already ends with, in
 * memory the caller frees; NULL when memory runs out.
 */
char *path_join(const char *dir, const char *name);

/*
 * The work of readfiles done with plain blocking calls on the calling
 * thread, for --compare-sync: walks the @nargs names @args (none of them
 * "-") as readfiles does, reads every file with read(2) in pieces of
 * @bytes, and writes to @out exactly the lines readfiles prints.  A name
 * that fails counts in *@failed, without a message (readfiles has said
 * why), except a FIFO, which cannot be read a second time: that one is
 * also said on stderr.  Returns 0, or the errno that stopped the walk
 * (ENOMEM, or a failed write to @out).
 */
int readfiles_sync(char **args, int nargs, size_t bytes, FILE *out,
		   uint64_t *failed);

/*
 * For --compare-sync, before each run: walk @args as readfiles_sync()
 * does, and drop every file from the page cache (posix_fadvise(2)
 * POSIX_FADV_DONTNEED), as far as the kernel lets us: mapped and dirty
 * pages stay, and a tmpfs keeps everything.  Files that fail are left
 * alone.  Returns 0, or ENOMEM.
 */
int readfiles_drop_cache(char **args, int nargs);

#endif /* EXAMPLES_READFILES_H */
