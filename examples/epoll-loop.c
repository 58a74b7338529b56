/*
 * epoll-loop: iopool in an epoll(7) loop, the shape of a server's main
 * loop, next to a timer that must keep ticking on time.
 *
 *	epoll-loop [-i TICK_MS] FILE...
 *
 * It sums FILEs as cksum(1) does, printing "CRC BYTES NAME" for each, in
 * order, while a timerfd ticks every TICK_MS milliseconds (default 10).
 * At the end one line on stderr says how many ticks came, how many of
 * them while reads were in flight, and the longest gap between two ticks:
 * with the reads in the pool, the loop never waits for the disk, so the
 * gaps stay near TICK_MS.  From the build directory, for example:
 *
 *	./examples/epoll-loop -i 2 /usr/bin/[a-z]* > /dev/null
 *	./examples/epoll-loop ../configure ../README.md > sums
 *	cksum ../configure ../README.md | cmp - sums	# silent: the same
 *
 * Errors go to stderr as "epoll-loop: NAME: reason", the other files are
 * still read, and the exit status is then 1 (2 for bad usage).
 *
 * How it works: the loop waits in epoll_wait(2) on two descriptors, the
 * timerfd and iop_pool_fd(), which is readable while completions wait.  A
 * server adds its listening socket and connections to the same epoll set.
 * When the pool's descriptor is readable, iop_poll_budget() runs the
 * callbacks (in sumfiles.c: each sums a chunk and queues the next read),
 * at most BUDGET_US microseconds' worth per turn of the loop, so that a
 * burst of completions cannot hold back the timer: what is left waits for
 * the next turn, and the descriptor stays readable meanwhile.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <iopool.h>

#include "sumfiles.h"

#define PROG "epoll-loop"
#define BUDGET_US 2000

/* What epoll_event.data.u32 says woke the loop. */
enum { EV_POOL, EV_TIMER };

/* A timerfd that fires every @ms, from now; -1 with errno on failure. */
static int timer_open(unsigned ms)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = ms / 1000,
				 .tv_nsec = (long)(ms % 1000) * 1000000 },
	};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0)
		return -1;
	its.it_value = its.it_interval;
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Watch @fd for reading, tagged @tag.  Returns 0, or -1 with errno. */
static int watch(int epfd, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * The loop: until every file is summed, wait for either descriptor.  The
 * timer is served first when both are ready.  Returns 0, or 1 after
 * saying on stderr what failed.
 */
static int run(iop_pool *pool, struct sumfiles *sf, int epfd, int tfd,
	       struct ticks *ticks)
{
	struct epoll_event ev[2];
	uint64_t expired;
	int n, i, got;

	while (!sumfiles_done(sf)) {
		n = epoll_wait(epfd, ev, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror(PROG ": epoll_wait");
			return 1;
		}
		if (n == 2 && ev[1].data.u32 == EV_TIMER) {
			ev[1] = ev[0];
			ev[0].data.u32 = EV_TIMER;
		}
		for (i = 0; i < n; i++) {
			if (ev[i].data.u32 == EV_TIMER) {
				/* How many periods passed: counted as one. */
				if (read(tfd, &expired, sizeof(expired)) < 0 &&
				    errno != EAGAIN) {
					perror(PROG ": timerfd");
					return 1;
				}
				ticks_tick(ticks,
					   sumfiles_reads_in_flight(sf));
				continue;
			}
			got = iop_poll_budget(pool, 0, BUDGET_US);
			if (got < 0) {
				fprintf(stderr, PROG ": iop_poll_budget: %s\n",
					strerror(-got));
				return 1;
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long ms = 10;
	struct sumfiles *sf = NULL;
	struct ticks ticks;
	iop_pool *pool = NULL;
	int epfd = -1, tfd = -1, status = 1, first;

	first = ticks_parse_args(argc, argv, &ms);
	if (first < 0)
		goto usage;
	cksum_init();
	pool = iop_pool_new(NULL);
	if (!pool) {
		perror(PROG ": iop_pool_new");
		goto out;
	}
	sf = sumfiles_new(pool, PROG, argv + first, argc - first);
	if (!sf) {
		perror(PROG ": sumfiles_new");
		goto out;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		perror(PROG ": epoll_create1");
		goto out;
	}
	tfd = timer_open((unsigned)ms);
	if (tfd < 0) {
		perror(PROG ": timerfd");
		goto out;
	}
	if (watch(epfd, iop_pool_fd(pool), EV_POOL) < 0 ||
	    watch(epfd, tfd, EV_TIMER) < 0) {
		perror(PROG ": epoll_ctl");
		goto out;
	}
	ticks_start(&ticks, (unsigned)ms);
	sumfiles_start(sf);
	status = run(pool, sf, epfd, tfd, &ticks);
	if (!status) {
		ticks_report(&ticks, PROG, argc - first, sf);
		status = sumfiles_status(sf);
	}
out:
	/* After an error, jobs still in flight end here, before the free. */
	iop_pool_destroy(pool);
	sumfiles_free(sf);
	if (tfd >= 0)
		close(tfd);
	if (epfd >= 0)
		close(epfd);
	if (fclose(stdout) == EOF) {
		perror(PROG ": standard output");
		status = 1;
	}
	return status;
usage:
	fprintf(stderr, "usage: " PROG " [-i TICK_MS] FILE...\n");
	return 2;
}
