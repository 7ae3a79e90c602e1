/* Reproducible pseudo-random test inputs for the unit tests (xorshift64*); define TEST_RNG_SEED
 * before including. */
#ifndef TEST_RNG_H
#define TEST_RNG_H

#include <stdint.h>

#ifndef TEST_RNG_SEED
#define TEST_RNG_SEED 0x9e3779b97f4a7c15ULL
#endif

static uint64_t rng_state = TEST_RNG_SEED;

static inline uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

#endif /* TEST_RNG_H */
