/*
 * Intrusive job lists.  A job is on at most one list at a time, linked
 * through its node:
 * - struct iop__queue, a doubly linked FIFO, for lists owned by one thread
 *   or guarded by a lock (the submit queue, pending submits, a batch); a
 *   job can leave it from anywhere (a cancel) in O(1);
 * - struct iop__stack, a lock-free LIFO that any thread may push onto and
 *   one consumer empties whole (the completion stack, released jobs).
 *   Nothing ever pops a single node, so the stack has no ABA problem.
 *   It links through next only.
 */
#ifndef IOPOOL_QUEUE_H
#define IOPOOL_QUEUE_H

#include <stdatomic.h>
#include <stddef.h>

struct iop__node {
	struct iop__node *next;
	struct iop__node *prev;		/* queues only */
};

struct iop__queue {
	struct iop__node *head;
	struct iop__node *tail;
};

struct iop__stack {
	_Atomic(struct iop__node *) top;
};

static inline void iop__queue_init(struct iop__queue *q)
{
	q->head = NULL;
	q->tail = NULL;
}

static inline int iop__queue_empty(const struct iop__queue *q)
{
	return q->head == NULL;
}

static inline void iop__queue_push(struct iop__queue *q, struct iop__node *n)
{
	n->next = NULL;
	n->prev = q->tail;
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
}

static inline void iop__queue_push_front(struct iop__queue *q,
					 struct iop__node *n)
{
	n->prev = NULL;
	n->next = q->head;
	if (q->head)
		q->head->prev = n;
	else
		q->tail = n;
	q->head = n;
}

static inline void iop__queue_remove(struct iop__queue *q,
				     struct iop__node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		q->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		q->tail = n->prev;
}

static inline struct iop__node *iop__queue_pop(struct iop__queue *q)
{
	struct iop__node *n = q->head;

	if (n)
		iop__queue_remove(q, n);
	return n;
}

/* Move every node of @from to the end of @to, leaving @from empty. */
static inline void iop__queue_move(struct iop__queue *to,
				   struct iop__queue *from)
{
	if (!from->head)
		return;
	from->head->prev = to->tail;
	if (to->tail)
		to->tail->next = from->head;
	else
		to->head = from->head;
	to->tail = from->tail;
	iop__queue_init(from);
}

/*
 * Push the chain @first..@last (already linked through next) in one step.
 * Returns the previous top, so that the caller can tell whether the stack
 * went from empty to non-empty.
 */
static inline struct iop__node *iop__stack_push_chain(struct iop__stack *s,
						      struct iop__node *first,
						      struct iop__node *last)
{
	struct iop__node *top = atomic_load_explicit(&s->top,
						     memory_order_relaxed);

	do
		last->next = top;
	while (!atomic_compare_exchange_weak_explicit(&s->top, &top, first,
						      memory_order_release,
						      memory_order_relaxed));
	return top;
}

static inline struct iop__node *iop__stack_push(struct iop__stack *s,
						struct iop__node *n)
{
	return iop__stack_push_chain(s, n, n);
}

/* Take the whole stack, newest first. */
static inline struct iop__node *iop__stack_take(struct iop__stack *s)
{
	if (!atomic_load_explicit(&s->top, memory_order_relaxed))
		return NULL;
	return atomic_exchange_explicit(&s->top, NULL, memory_order_acquire);
}

/* Reverse a NULL-terminated chain: what a stack gave newest first comes
 * back oldest first. */
static inline struct iop__node *iop__chain_reverse(struct iop__node *n)
{
	struct iop__node *prev = NULL, *next;

	for (; n; n = next) {
		next = n->next;
		n->next = prev;
		prev = n;
	}
	return prev;
}

#endif /* IOPOOL_QUEUE_H */
