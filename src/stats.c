/*
 * Statistics.  Each worker counts into its own struct iop__stats, so that
 * collecting costs no shared cache line and no lock: a relaxed load and
 * store per counter, and one clock read per job (the end of one job is the
 * start of the next), or two per batch of short jobs of one kind.  Jobs
 * run outside the workers count into pool->inline_stats under the lock; a
 * worker that exits folds its counts into pool->retired.  iop_pool_stats()
 * sums them under stats_lock, which workers take only when they start and
 * exit.
 */
#include "iopool-int.h"

#include <errno.h>
#include <string.h>

/*
 * Built with -DIOP__STATS=0, the library counts nothing per job: only
 * bench/stats-overhead.sh does that, to measure what counting costs.
 */
#ifndef IOP__STATS
#define IOP__STATS 1
#endif

/* The log2 bucket of @ns (see IOP_HIST_BUCKETS). */
static unsigned bucket(int64_t ns)
{
	unsigned b;

	if (ns < 2)
		return 0;
	b = 63 - (unsigned)__builtin_clzll((unsigned long long)ns);
	return b < IOP_HIST_BUCKETS ? b : IOP_HIST_BUCKETS - 1;
}

/* Count a job that ran, with @result.  Called by the one thread that
 * writes @st. */
void iop__stats_ran(struct iop__stats *st, const struct iop__ran *ran,
		    ssize_t result)
{
	if (!IOP__STATS)
		return;
	iop__count(result >= 0 ? &st->completed : &st->failed, 1);
	if (!ran->t_start)
		return;
	iop__count(&st->queued_ns[ran->op][bucket(ran->t_start -
						   ran->t_queued)], 1);
	iop__count(&st->running_ns[ran->op][bucket(ran->t_end -
						    ran->t_start)], 1);
	if (ran->t_end - ran->t_start > ran->long_ns)
		iop__count(&st->long_ran, 1);
}

static uint64_t get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Add @from's counts to @to.  The caller is the only writer of @to. */
void iop__stats_add(struct iop__stats *to, const struct iop__stats *from)
{
	unsigned op, b;

	iop__count(&to->completed, get(&from->completed));
	iop__count(&to->failed, get(&from->failed));
	iop__count(&to->long_ran, get(&from->long_ran));
	for (op = 0; op < IOP_OP_COUNT; op++)
		for (b = 0; b < IOP_HIST_BUCKETS; b++) {
			iop__count(&to->queued_ns[op][b],
				   get(&from->queued_ns[op][b]));
			iop__count(&to->running_ns[op][b],
				   get(&from->running_ns[op][b]));
		}
}

/* Add @from to the public snapshot @st. */
static void add_out(struct iop_stats *st, const struct iop__stats *from)
{
	unsigned op, b;

	st->completed += get(&from->completed);
	st->failed += get(&from->failed);
	st->long_ran += get(&from->long_ran);
	for (op = 0; op < IOP_OP_COUNT; op++)
		for (b = 0; b < IOP_HIST_BUCKETS; b++) {
			st->queued_ns[op][b] += get(&from->queued_ns[op][b]);
			st->running_ns[op][b] += get(&from->running_ns[op][b]);
		}
}

/* Count the workers running a job now, and those running it too long. */
static void count_running(const struct iop_pool *pool, struct iop_stats *st)
{
	const struct iop__worker *w;
	int64_t now = iop__now_ns(), started;

	for (w = pool->workers; w; w = w->next) {
		started = atomic_load_explicit(&w->started,
					       memory_order_relaxed);
		if (!started)
			continue;
		st->running++;
		/* -1: running, but the pool does not time jobs. */
		if (started > 0 && now - started > pool->long_ns)
			st->long_running++;
	}
}

int iop_pool_stats(const iop_pool *pool, struct iop_stats *st)
{
	struct iop_pool *p = (struct iop_pool *)pool;
	struct iop_stats all;
	const struct iop__worker *w;
	size_t size;

	if (!pool || !st || st->size < offsetof(struct iop_stats, queued_ns))
		return -EINVAL;
	size = st->size < sizeof(all) ? st->size : sizeof(all);
	memset(&all, 0, sizeof(all));
	all.size = size;
	pthread_mutex_lock(&p->stats_lock);
	for (w = p->workers; w; w = w->next) {
		all.threads++;
		add_out(&all, &w->stats);
	}
	add_out(&all, &p->retired);
	add_out(&all, &p->inline_stats);
	add_out(&all, &p->helper.stats);
	count_running(p, &all);
	pthread_mutex_unlock(&p->stats_lock);
	all.threads_idle = all.threads - (unsigned)all.running;
	all.queued = get(&p->nqueued);
	all.submitted = get(&p->nsubmitted) + get(&p->nread_now) +
			get(&p->aio.nsubmitted);
	all.completed += get(&p->nread_now) + get(&p->aio.ncompleted);
	all.cancelled = get(&p->ncancelled);
	all.failed += get(&p->nfailed_unrun) + get(&p->aio.nfailed);
	all.timed_out = get(&p->ntimed_out);
	all.threads_started = get(&p->nstarted);
	memcpy(st, &all, size);
	return 0;
}
