/*
 * The completion doorbell: an eventfd where configure found one (and
 * --disable-eventfd did not turn it off), else a self-pipe.  Workers ring
 * it when the completion stack goes from empty to non-empty; the polling
 * thread drains it before taking the stack.
 *
 * With a pipe, the pool descriptor (iop_pool_fd()) is the read end;
 * ringing writes one byte to the write end, and draining reads until the
 * pipe is empty.  Both ends are close-on-exec and non-blocking, like the
 * eventfd, so the rest of the library cannot tell them apart.
 */
#include "iopool-int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#ifdef IOP_NOTIFY_EVENTFD
#include <sys/eventfd.h>
#endif

#ifdef IOP_NOTIFY_EVENTFD
static int open_fds(int *rfd, int *wfd)
{
	*rfd = *wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *rfd < 0 ? -errno : 0;
}
#elif defined(HAVE_PIPE2)
static int open_fds(int *rfd, int *wfd)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	*rfd = fds[0];
	*wfd = fds[1];
	return 0;
}
#else
/*
 * No pipe2(2): the flags are set after the pipe exists, so a fork and
 * exec on another thread in between can leak the two descriptors into
 * the new program.  Linux C libraries have had pipe2() since 2008; this
 * is here so that the library still builds without it.
 */
static int set_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static int open_fds(int *rfd, int *wfd)
{
	int fds[2], err;

	if (pipe(fds) < 0)
		return -errno;
	err = set_flags(fds[0]);
	if (!err)
		err = set_flags(fds[1]);
	if (err) {
		close(fds[0]);
		close(fds[1]);
		return err;
	}
	*rfd = fds[0];
	*wfd = fds[1];
	return 0;
}
#endif

int iop__notify_open(struct iop__notify *n)
{
	int err = open_fds(&n->rfd, &n->wfd);

	if (err)
		n->rfd = n->wfd = -1;
	return err;
}

void iop__notify_close(struct iop__notify *n)
{
	if (n->wfd != n->rfd)
		close(n->wfd);
	close(n->rfd);
	n->rfd = n->wfd = -1;
}

/*
 * Make the descriptor readable: add 1 to the eventfd's counter, or write
 * one byte to the pipe.  EAGAIN means it already is (a full pipe, or an
 * eventfd counter near its limit), which is all a doorbell needs.
 */
void iop__notify_signal(struct iop__notify *n)
{
	uint64_t one = 1;
	ssize_t r;

	atomic_store_explicit(&n->rung, true, memory_order_release);
	do
		r = write(n->wfd, &one, n->wfd == n->rfd ? sizeof(one) : 1);
	while (r < 0 && errno == EINTR);
}

/*
 * Make the descriptor unreadable again.  One read empties an eventfd;
 * a pipe is read until it is empty: until EAGAIN, or a read shorter than
 * the buffer, which already shows that nothing was left (and saves the
 * read that would say EAGAIN; rings are rare, so a drain finds one byte).
 * Without @force the read is skipped when no write was announced since
 * the last drain: iop_wait() takes ready completions with no system call
 * at all.  Each write is announced just before it is made, so a drain
 * that sees the announcement may still find nothing to read, and the
 * write lands after it; the descriptor is then readable with nothing new,
 * which its contract allows, until the next forced drain (iop_poll(), or
 * iop_wait() after its descriptor woke it).
 */
void iop__notify_drain(struct iop__notify *n, bool force)
{
	char buf[256];
	ssize_t r;

	if (!atomic_exchange_explicit(&n->rung, false, memory_order_acquire) &&
	    !force)
		return;
	do
		r = read(n->rfd, buf, n->wfd == n->rfd ? sizeof(uint64_t)
						      : sizeof(buf));
	while ((r < 0 && errno == EINTR) ||
	       (n->wfd != n->rfd && r == (ssize_t)sizeof(buf)));
}

/*
 * Block until the descriptor is readable or @timeout_ms passes (-1: no
 * limit).  Returns 1 when readable, 0 on timeout, or -errno.  Interrupted
 * waits return 0 too: the caller recomputes what is left and waits again.
 */
int iop__notify_wait(struct iop__notify *n, int timeout_ms)
{
	struct pollfd pfd = { .fd = n->rfd, .events = POLLIN };
	int r;

	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r;
}

/* The same with a timeout in nanoseconds (>= 0). */
int iop__notify_wait_ns(struct iop__notify *n, int64_t timeout_ns)
{
	struct pollfd pfd = { .fd = n->rfd, .events = POLLIN };
	struct timespec ts = { timeout_ns / 1000000000, timeout_ns % 1000000000 };
	int r;

	r = ppoll(&pfd, 1, &ts, NULL);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	return r;
}
