/*
 * seed.h - the seed of a randomized unit test: CUTOVER_SEED from the
 * environment, else a new one each run, printed either way so that a failure
 * can be repeated with CUTOVER_SEED=N.  tests/lib.sh does the same for the
 * integration scripts.
 */
#ifndef CUTOVER_TEST_SEED_H
#define CUTOVER_TEST_SEED_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t test_seed(const char *test)
{
	const char *s = getenv("CUTOVER_SEED");
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t v = s && *s ? strtoull(s, NULL, 10)
			     : ((uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 20) % 1000000000u;
	printf("%s: seed %llu (CUTOVER_SEED=%llu repeats it)\n", test, (unsigned long long)v,
	       (unsigned long long)v);
	fflush(stdout);
	return v;
}

#endif
