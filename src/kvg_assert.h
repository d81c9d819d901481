/*
 * kvg_assert.h - invariant assertions that stay on in every build, release included.
 *
 * An invariant that does not hold means the grid's own bookkeeping is wrong (a reference
 * count below zero, an entry in a list it is not marked as a member of, a lock not held),
 * and going on could hand out the wrong bytes for a key.  A miss is always a safe answer; a
 * wrong block never is.  So these never compile out (NDEBUG does not touch them): the
 * process stops at once, naming the file, line and condition.
 *
 * Keep each check O(1): they sit on hot paths.  Operating errors (I/O errors, bad checksums,
 * full tiers) are not invariants: handle them, never assert them.  The file is not named
 * assert.h because -Isrc would then shadow the C library's <assert.h>.
 */
#ifndef KVG_ASSERT_H
#define KVG_ASSERT_H

#include <pthread.h>

void kvg_assert_fail(const char *file, int line, const char *cond) __attribute__((noreturn, cold));

#define KVG_ASSERT(cond)                                                                           \
	do {                                                                                       \
		if (__builtin_expect(!(cond), 0))                                                  \
			kvg_assert_fail(__FILE__, __LINE__, #cond);                                \
	} while (0)

/*
 * A mutex is held by someone (not necessarily by this thread: a plain pthread mutex keeps no
 * owner).  Cheap: one trylock, which on a held lock fails without waiting.  Catches a
 * function documented "lock held" being called with the lock free.
 */
#define KVG_ASSERT_LOCKED(mu) KVG_ASSERT(kvg_mutex_is_held(mu))

static inline int kvg_mutex_is_held(pthread_mutex_t *mu)
{
	if (pthread_mutex_trylock(mu) != 0)
		return 1;
	pthread_mutex_unlock(mu);
	return 0;
}

#endif
