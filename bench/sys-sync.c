/*
 * System "sync": the plain synchronous loop on one thread, the bar that
 * offloading has to beat (W2, W4, W5, W6, W7, and M1 as a reference).
 * Read i goes into buffer i % window, one pread() at a time (queue depth
 * 1); W4 sleeps 2,000 times in a row; M1 runs each job inline, so its
 * short jobs never wait behind anything.  The "callback" is a plain call
 * of rplan_done(), so the verification is part of the measured work here
 * too.
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
#include <unistd.h>

/* A context that is not NULL; the loop has no state of its own. */
static int sync_ctx;

static const char *sync_version(void)
{
	return "plain loop";
}

static void *sync_open(const struct bench_cfg *cfg)
{
	return &sync_ctx;
}

static void sync_close(void *ctx)
{
}

static int sync_sleeps(void *ctx, unsigned n, unsigned cap)
{
	for (unsigned i = 0; i < n; i++)
		sleep_1ms();
	return 0;
}

static int sync_mixed(void *ctx, struct mix *m)
{
	struct mix_job j;

	while (mix_next(m, &j)) {
		if (j.is_long)
			sleep_1ms();
		mix_done(m, &j, 0);
	}
	return 0;
}

static int sync_reads(void *ctx, struct rplan *p)
{
	uint64_t off;

	while (rplan_next(p, &off)) {
		unsigned slot = (unsigned)((p->submitted - 1) % p->window);
		unsigned char *buf = rplan_buf(p, slot);
		ssize_t got;

		do
			got = pread(p->fd, buf, p->len, (off_t)off);
		while (got < 0 && errno == EINTR);
		rplan_done(p, buf, got < 0 ? -errno : got, off);
	}
	return 0;
}

const struct bench_system sys_sync = {
	.name = "sync",
	.workloads = WL_BIT(2) | WL_BIT(4) | WL_BIT(5) | WL_BIT(6) | WL_BIT(7) |
		     WL_BIT(WL_M1),
	.version = sync_version,
	.open = sync_open,
	.close = sync_close,
	.sleeps = sync_sleeps,
	.reads = sync_reads,
	.mixed = sync_mixed,
};
