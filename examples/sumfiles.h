/*
 * sumfiles: what the event-loop examples (epoll-loop.c, uv-loop.c,
 * glib-loop.c) share, so that each of them shows only how iopool joins its
 * loop: a reader that sums files with cksum(1)'s CRC (crc.h) through a
 * pool, and the account of a ticking timer.  Only the thread that polls
 * the pool may call these.
 */
#ifndef SUMFILES_H
#define SUMFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <iopool.h>

#include "crc.h"

/* ------------------------------------------------------------------ */
/* A reader that sums files in the background.                         */

/*
 * Reads @names one after the other through @pool and prints on standard
 * output, for each, the line cksum prints: "CRC BYTES NAME".  A file that
 * cannot be read gets "PROG: NAME: reason" on stderr instead, and the
 * others are still read.  Everything happens in the pool's callbacks: the
 * event loop calls iop_poll() or iop_poll_budget() whenever iop_pool_fd()
 * is readable, and stops once sumfiles_done() is true.  The calling thread
 * never waits for the file system: opens, reads and closes are jobs.
 * Returns NULL with errno set (ENOMEM) on failure.  @prog, @names and the
 * strings must outlive the reader.
 */
struct sumfiles *sumfiles_new(iop_pool *pool, const char *prog,
			      char **names, int nnames);

/*
 * Open the first file.  A file whose jobs cannot be queued (ENOMEM) fails
 * like any other, so after this the reader is either busy or done.
 */
void sumfiles_start(struct sumfiles *sf);

/* Reads queued or running now (0 while a file is opened or closed). */
unsigned sumfiles_reads_in_flight(const struct sumfiles *sf);

/* True once every file was summed or failed, and no job is in flight. */
bool sumfiles_done(const struct sumfiles *sf);

/* Bytes summed so far, all files together. */
uint64_t sumfiles_bytes(const struct sumfiles *sf);

/*
 * 0 if every file was summed and printed, 1 if one failed or standard
 * output could not be written (said on stderr).
 */
int sumfiles_status(const struct sumfiles *sf);

/* Free the reader; call once it is done, or after iop_pool_destroy(). */
void sumfiles_free(struct sumfiles *sf);

/* ------------------------------------------------------------------ */
/* What the examples measure of their timer.                           */

/*
 * A timer that should fire every @period_ms: how often it did, how often
 * reads were in flight when it did, and the longest gap between two ticks
 * (from the start for the first), which shows how late a tick came.
 */
struct ticks {
	unsigned period_ms;
	uint64_t count;
	uint64_t during_reads;
	uint64_t start_ns, prev_ns, max_gap_ns;
};

/*
 * The command line the loop examples share, "[-i TICK_MS] FILE...": the
 * tick period (1 to 60000 ms, default 10) into *@ms.  Returns the index
 * of the first FILE in @argv, or -1 for bad usage.
 */
int ticks_parse_args(int argc, char **argv, unsigned long *ms);

/* Start counting now; call it when the timer is started. */
void ticks_start(struct ticks *t, unsigned period_ms);

/* Count a tick now, with @reads_in_flight reads outstanding. */
void ticks_tick(struct ticks *t, unsigned reads_in_flight);

/*
 * Say on stderr, in one line, what was read and how the timer fared:
 * "PROG: N files, B bytes in S s; T ticks of P ms, R while reads were in
 * flight; longest gap G ms".
 */
void ticks_report(const struct ticks *t, const char *prog, int nfiles,
		  const struct sumfiles *sf);

#endif /* SUMFILES_H */
