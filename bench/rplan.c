/*
 * Bookkeeping the systems share inside their loops: the closed loop of
 * reads (struct rplan: offsets, slot buffers, verification in the
 * completion callback) and the W8 jobs' work and callbacks.  Everything
 * here runs on the main thread, except w8_block(), which runs on a worker.
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
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool rplan_next(struct rplan *p, uint64_t *off)
{
	if (p->failed || p->submitted == p->total)
		return false;
	switch (p->kind) {
	case RPLAN_RANDOM16:
		*off = w2_offset(&p->state);
		break;
	case RPLAN_SEQUENTIAL:
		*off = p->state;
		p->state += p->len;
		break;
	case RPLAN_RANDOM18:
		*off = cold_offset(&p->state);
		break;
	}
	p->submitted++;
	return true;
}

unsigned char *rplan_buf(const struct rplan *p, unsigned slot)
{
	return p->bufs + (size_t)slot * p->len;
}

bool rplan_done(struct rplan *p, const void *buf, ssize_t got, uint64_t off)
{
	enum verify v = verify_read(buf, got, p->len, off);

	p->completed++;
	if (v == VERIFY_OK)
		return true;
	if (!p->failed)
		verify_report(p->who, v, buf, got, p->len, off);
	p->failed = true;
	return false;
}

void rplan_abort(struct rplan *p, const char *call, int err)
{
	if (!p->failed)
		fprintf(stderr, "iopool-bench: %s: %s: %s\n", p->who, call,
			strerror(err));
	p->submitted--;
	p->failed = true;
}

uint64_t rplan_inflight(const struct rplan *p)
{
	return p->submitted - p->completed;
}

void w8_block(struct w8 *w)
{
	char c;

	atomic_fetch_add(&w->entered, 1);
	while (read(w->pipe_rd, &c, 1) < 0 && errno == EINTR)
		;
}

void w8_done(struct w8 *w, unsigned char *count)
{
	(*count)++;
	w->done++;
}
