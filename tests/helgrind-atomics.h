/*
 * Teach helgrind what C11 atomics synchronise.  CI builds the library and
 * the tests with `CPPFLAGS=-include .../tests/helgrind-atomics.h` for its
 * helgrind run; nothing else uses this file.
 *
 * Why: helgrind understands mutexes, condition variables, semaphores and
 * thread create/join, but not atomic instructions.  iopool hands finished
 * jobs from the workers to the polling thread through a lock-free stack
 * (src/queue.h: a release compare-and-swap pushes, an acquire exchange
 * takes the whole stack) and keeps counters in relaxed atomics.  Without
 * help helgrind reports a race on the stack's link words, and then on
 * every field of every job handed over that way, and on every buffer a
 * worker filled: the test's own pread buffers included.  Suppressions can
 * only name the places where those accesses happen, which is most of the
 * library and the tests; they would hide real races too.  This header
 * instead tells helgrind about the one thing it misses, the
 * happens-before edge each atomic creates, so its report stays about
 * real races.
 *
 * How: after <stdatomic.h>, every atomic_* macro of GCC's header is
 * redefined to do what the original does, plus:
 * - it marks the atomic object itself as not checked (an atomic object
 *   cannot race with itself: that is what makes it atomic, so every access
 *   to it, relaxed counters included, is fine);
 * - an operation with release semantics (release, acq_rel, seq_cst)
 *   first does ANNOTATE_HAPPENS_BEFORE(object);
 * - an operation with acquire semantics (acquire, consume, acq_rel,
 *   seq_cst) afterwards does ANNOTATE_HAPPENS_AFTER(object).
 * Helgrind joins every HAPPENS_BEFORE on an object into what a later
 * HAPPENS_AFTER on it receives, so an acquire sees every earlier release
 * on the same object, not only the one it read from.  That models
 * release sequences (several workers pushing onto one stack before the
 * poller takes it) and can only add edges, never invent a race; the cost
 * is that a race which C11 would allow only through a release the acquire
 * did not read from is missed.  Not modelled: atomics touched through
 * plain operators (x++ on an _Atomic x) and fences; iopool uses neither.
 *
 * GCC only (it uses GCC's __atomic builtins and statement expressions).
 * It includes no libc header, so that the feature macros (_GNU_SOURCE
 * from config.h) still take effect in the file it is forced into.
 */
#ifndef IOP_HELGRIND_ATOMICS_H
#define IOP_HELGRIND_ATOMICS_H

#if !defined(__GNUC__) || defined(__clang__)
#error "tests/helgrind-atomics.h needs GCC"
#endif

#include <stdatomic.h>
#include <valgrind/helgrind.h>

#define IOP_HG_RELEASES(mo) \
	((mo) == __ATOMIC_RELEASE || (mo) == __ATOMIC_ACQ_REL || \
	 (mo) == __ATOMIC_SEQ_CST)
#define IOP_HG_ACQUIRES(mo) \
	((mo) == __ATOMIC_ACQUIRE || (mo) == __ATOMIC_CONSUME || \
	 (mo) == __ATOMIC_ACQ_REL || (mo) == __ATOMIC_SEQ_CST)

/* Before the operation: stop checking the object; publish on release. */
static inline void iop_hg_pre(const volatile void *obj, unsigned long size,
			      int mo)
{
	VALGRIND_HG_DISABLE_CHECKING(obj, size);
	if (IOP_HG_RELEASES(mo))
		ANNOTATE_HAPPENS_BEFORE(obj);
}

/* After the operation: receive on acquire. */
static inline void iop_hg_post(const volatile void *obj, int mo)
{
	if (IOP_HG_ACQUIRES(mo))
		ANNOTATE_HAPPENS_AFTER(obj);
}

/* A read-modify-write: release before, acquire after. */
#define IOP_HG_RMW(PTR, MO, OP)						\
	__extension__ ({						\
		__auto_type iop_hg_p = (PTR);				\
		int iop_hg_mo = (MO);					\
		iop_hg_pre((const volatile void *)iop_hg_p,		\
			   sizeof(*iop_hg_p), iop_hg_mo);		\
		__auto_type iop_hg_r = OP;				\
		iop_hg_post((const volatile void *)iop_hg_p, iop_hg_mo); \
		iop_hg_r;						\
	})

#undef atomic_store_explicit
#define atomic_store_explicit(PTR, VAL, MO)				\
	__extension__ ({						\
		__auto_type iop_hg_p = (PTR);				\
		__typeof__((void)0, *iop_hg_p) iop_hg_v = (VAL);	\
		iop_hg_pre((const volatile void *)iop_hg_p,		\
			   sizeof(*iop_hg_p), (MO));			\
		__atomic_store(iop_hg_p, &iop_hg_v, (MO));		\
	})

#undef atomic_load_explicit
#define atomic_load_explicit(PTR, MO)					\
	__extension__ ({						\
		__auto_type iop_hg_p = (PTR);				\
		__typeof__((void)0, *iop_hg_p) iop_hg_v;		\
		iop_hg_pre((const volatile void *)iop_hg_p,		\
			   sizeof(*iop_hg_p), __ATOMIC_RELAXED);	\
		__atomic_load(iop_hg_p, &iop_hg_v, (MO));		\
		iop_hg_post((const volatile void *)iop_hg_p, (MO));	\
		iop_hg_v;						\
	})

#undef atomic_exchange_explicit
#define atomic_exchange_explicit(PTR, VAL, MO)				\
	__extension__ ({						\
		__auto_type iop_hg_p = (PTR);				\
		__typeof__((void)0, *iop_hg_p) iop_hg_v = (VAL);	\
		__typeof__((void)0, *iop_hg_p) iop_hg_old;		\
		iop_hg_pre((const volatile void *)iop_hg_p,		\
			   sizeof(*iop_hg_p), (MO));			\
		__atomic_exchange(iop_hg_p, &iop_hg_v, &iop_hg_old, (MO)); \
		iop_hg_post((const volatile void *)iop_hg_p, (MO));	\
		iop_hg_old;						\
	})

/*
 * A compare-and-swap releases only if it succeeds, but which way it goes
 * is known only afterwards: publish with the success order before (an
 * extra edge from a failed attempt is harmless), and receive with the
 * stronger of the two orders after.
 */
#define IOP_HG_CAS(PTR, VAL, DES, SUC, FAIL, WEAK)			\
	__extension__ ({						\
		__auto_type iop_hg_p = (PTR);				\
		__typeof__((void)0, *iop_hg_p) iop_hg_d = (DES);	\
		_Bool iop_hg_ok;					\
		iop_hg_pre((const volatile void *)iop_hg_p,		\
			   sizeof(*iop_hg_p), (SUC));			\
		iop_hg_ok = __atomic_compare_exchange(iop_hg_p, (VAL),	\
						      &iop_hg_d, WEAK,	\
						      (SUC), (FAIL));	\
		iop_hg_post((const volatile void *)iop_hg_p,		\
			    iop_hg_ok ? (SUC) : (FAIL));		\
		iop_hg_ok;						\
	})

#undef atomic_compare_exchange_strong_explicit
#define atomic_compare_exchange_strong_explicit(PTR, VAL, DES, SUC, FAIL) \
	IOP_HG_CAS(PTR, VAL, DES, SUC, FAIL, 0)
#undef atomic_compare_exchange_weak_explicit
#define atomic_compare_exchange_weak_explicit(PTR, VAL, DES, SUC, FAIL) \
	IOP_HG_CAS(PTR, VAL, DES, SUC, FAIL, 1)

#undef atomic_fetch_add_explicit
#define atomic_fetch_add_explicit(PTR, VAL, MO) \
	IOP_HG_RMW(PTR, MO, __atomic_fetch_add(iop_hg_p, (VAL), iop_hg_mo))
#undef atomic_fetch_sub_explicit
#define atomic_fetch_sub_explicit(PTR, VAL, MO) \
	IOP_HG_RMW(PTR, MO, __atomic_fetch_sub(iop_hg_p, (VAL), iop_hg_mo))
#undef atomic_fetch_or_explicit
#define atomic_fetch_or_explicit(PTR, VAL, MO) \
	IOP_HG_RMW(PTR, MO, __atomic_fetch_or(iop_hg_p, (VAL), iop_hg_mo))
#undef atomic_fetch_xor_explicit
#define atomic_fetch_xor_explicit(PTR, VAL, MO) \
	IOP_HG_RMW(PTR, MO, __atomic_fetch_xor(iop_hg_p, (VAL), iop_hg_mo))
#undef atomic_fetch_and_explicit
#define atomic_fetch_and_explicit(PTR, VAL, MO) \
	IOP_HG_RMW(PTR, MO, __atomic_fetch_and(iop_hg_p, (VAL), iop_hg_mo))

/* The forms without _explicit are sequentially consistent. */
#undef atomic_store
#define atomic_store(PTR, VAL) \
	atomic_store_explicit(PTR, VAL, __ATOMIC_SEQ_CST)
#undef atomic_load
#define atomic_load(PTR) atomic_load_explicit(PTR, __ATOMIC_SEQ_CST)
#undef atomic_exchange
#define atomic_exchange(PTR, VAL) \
	atomic_exchange_explicit(PTR, VAL, __ATOMIC_SEQ_CST)
#undef atomic_compare_exchange_strong
#define atomic_compare_exchange_strong(PTR, VAL, DES)			\
	atomic_compare_exchange_strong_explicit(PTR, VAL, DES,		\
						__ATOMIC_SEQ_CST,	\
						__ATOMIC_SEQ_CST)
#undef atomic_compare_exchange_weak
#define atomic_compare_exchange_weak(PTR, VAL, DES)			\
	atomic_compare_exchange_weak_explicit(PTR, VAL, DES,		\
					      __ATOMIC_SEQ_CST,		\
					      __ATOMIC_SEQ_CST)
#undef atomic_fetch_add
#define atomic_fetch_add(PTR, VAL) \
	atomic_fetch_add_explicit(PTR, VAL, __ATOMIC_SEQ_CST)
#undef atomic_fetch_sub
#define atomic_fetch_sub(PTR, VAL) \
	atomic_fetch_sub_explicit(PTR, VAL, __ATOMIC_SEQ_CST)
#undef atomic_fetch_or
#define atomic_fetch_or(PTR, VAL) \
	atomic_fetch_or_explicit(PTR, VAL, __ATOMIC_SEQ_CST)
#undef atomic_fetch_xor
#define atomic_fetch_xor(PTR, VAL) \
	atomic_fetch_xor_explicit(PTR, VAL, __ATOMIC_SEQ_CST)
#undef atomic_fetch_and
#define atomic_fetch_and(PTR, VAL) \
	atomic_fetch_and_explicit(PTR, VAL, __ATOMIC_SEQ_CST)

#endif /* IOP_HELGRIND_ATOMICS_H */
