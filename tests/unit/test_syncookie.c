/* Unit tests for SipHash-2-4 (paper vectors, OpenSSL cross-check) and the SYN cookies built on it
 * (round trip, MSS/options, age, forgeries). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "sp_siphash.h"
#include "sp_syncookie.h"

#define TEST_RNG_SEED 0x9e3779b97f4a7c15ULL
#include "test_rng.h"

static void
rnd_bytes(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

static void
paper_key(struct sp_siphash_key *k)
{
	uint8_t b[16];

	for (int i = 0; i < 16; i++)
		b[i] = (uint8_t)i;
	sp_siphash_key_from_bytes(k, b);
}

/* The paper's Appendix A example and the first/last vectors of its reference table. */
static void
test_siphash_paper_vectors(void **state)
{
	struct sp_siphash_key k;
	uint8_t msg[64];

	(void)state;
	paper_key(&k);
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	assert_int_equal(sp_siphash24(&k, msg, 15), 0xa129ca6149be45e5ULL);
	assert_int_equal(sp_siphash24(&k, msg, 0), 0x726fdb47dd0e0e31ULL);
	assert_int_equal(sp_siphash24(&k, msg, 1), 0x74f839c593dc67fdULL);
	assert_int_equal(sp_siphash24(&k, NULL, 0), 0x726fdb47dd0e0e31ULL);
}

/* OpenSSL's SIPHASH (EVP_MAC, 8-byte output) agrees for random keys and every length 0..200. */
static void
test_siphash_matches_openssl(void **state)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	size_t size = 8;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
			       OSSL_PARAM_construct_end()};

	(void)state;
	assert_non_null(mac);
	for (int round = 0; round < 20; round++) {
		uint8_t keyb[16], msg[200], out[8];
		struct sp_siphash_key k;

		rnd_bytes(keyb, sizeof(keyb));
		rnd_bytes(msg, sizeof(msg));
		sp_siphash_key_from_bytes(&k, keyb);
		for (size_t len = 0; len <= sizeof(msg); len++) {
			EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
			size_t outl = 0;
			uint64_t want = 0;

			assert_non_null(ctx);
			assert_int_equal(EVP_MAC_init(ctx, keyb, sizeof(keyb), params), 1);
			assert_int_equal(EVP_MAC_update(ctx, msg, len), 1);
			assert_int_equal(EVP_MAC_final(ctx, out, &outl, sizeof(out)), 1);
			assert_int_equal(outl, 8);
			for (int i = 7; i >= 0; i--)
				want = want << 8 | out[i];
			assert_int_equal(sp_siphash24(&k, msg, len), want);
			EVP_MAC_CTX_free(ctx);
		}
	}
	EVP_MAC_free(mac);
}

static void
rnd_keys(struct sp_syncookie_keys *keys)
{
	uint8_t b[32];

	rnd_bytes(b, sizeof(b));
	sp_siphash_key_from_bytes(&keys->h1, b);
	sp_siphash_key_from_bytes(&keys->h2, b + 16);
}

static void
rnd_tuple(struct sp_syncookie_tuple *t, int ipv6)
{
	memset(t, 0, sizeof(*t));
	t->ipv6 = (uint8_t)ipv6;
	rnd_bytes(t->src, ipv6 ? 16 : 4);
	rnd_bytes(t->dst, ipv6 ? 16 : 4);
	t->sport = (uint16_t)rnd();
	t->dport = (uint16_t)rnd();
}

/* Random tuples (v4 and v6), ISNs, options and counts: every cookie checks out, with its options.
 */
static void
test_cookie_round_trip(void **state)
{
	struct sp_syncookie_keys keys;

	(void)state;
	rnd_keys(&keys);
	for (int i = 0; i < 100000; i++) {
		struct sp_syncookie_tuple t;
		struct sp_syncookie_opts syn = {
			.mss = (uint16_t)rnd(),
			.wscale = (uint8_t)(rnd() % 16),
			.sack_ok = rnd() & 1,
		};
		struct sp_syncookie_opts chosen, got;
		uint32_t isn = (uint32_t)rnd(), count = (uint32_t)rnd();
		uint32_t cookie;

		rnd_tuple(&t, i & 1);
		cookie = sp_syncookie_make(&keys, &t, isn, count, &syn, 0, &chosen);
		memset(&got, 0xee, sizeof(got));
		assert_int_equal(sp_syncookie_check(&keys, &t, isn, cookie, count, &got),
				 SP_SYNCOOKIE_OK);
		assert_int_equal(got.mss, chosen.mss);
		assert_int_equal(got.wscale, chosen.wscale);
		assert_int_equal(got.sack_ok, chosen.sack_ok);
		assert_int_equal(got.sack_ok, syn.sack_ok);
		/* one count later it is still good; two later it is stale */
		assert_int_equal(sp_syncookie_check(&keys, &t, isn, cookie, count + 1, NULL),
				 SP_SYNCOOKIE_OK);
		assert_int_equal(sp_syncookie_check(&keys, &t, isn, cookie, count + 2, NULL),
				 SP_SYNCOOKIE_STALE);
	}
}

static uint16_t
chosen_mss(uint16_t mss, uint16_t clamp)
{
	struct sp_syncookie_keys keys = {{1, 2}, {3, 4}};
	struct sp_syncookie_tuple t = {.sport = 1, .dport = 2};
	struct sp_syncookie_opts syn = {.mss = mss, .wscale = SP_SYNCOOKIE_NO_WSCALE}, chosen, got;
	uint32_t cookie = sp_syncookie_make(&keys, &t, 7, 100, &syn, clamp, &chosen);

	assert_int_equal(sp_syncookie_check(&keys, &t, 7, cookie, 100, &got), SP_SYNCOOKIE_OK);
	assert_int_equal(got.mss, chosen.mss);
	return got.mss;
}

/* The largest table MSS not above the VM's (and our clamp); 536 without the option or below it. */
static void
test_cookie_mss_choice(void **state)
{
	(void)state;
	assert_int_equal(chosen_mss(1460, 0), 1460);
	assert_int_equal(chosen_mss(1459, 0), 1440);
	assert_int_equal(chosen_mss(9000, 0), 8960);
	assert_int_equal(chosen_mss(65535, 0), 8960);
	assert_int_equal(chosen_mss(9000, 1460), 1460);
	assert_int_equal(chosen_mss(1460, 1400), 1400);
	assert_int_equal(chosen_mss(1220, 0), 1220);
	assert_int_equal(chosen_mss(1219, 0), 536);
	assert_int_equal(chosen_mss(100, 0), 536);
	assert_int_equal(chosen_mss(0, 0), 536);
	for (int i = 0; i < SP_SYNCOOKIE_MSS_COUNT; i++)
		assert_int_equal(chosen_mss(sp_syncookie_mss_table[i], 0),
				 sp_syncookie_mss_table[i]);
}

/* Window scale 0..14 kept, above 14 taken as 14 (RFC 7323), "none" kept; SACK kept. */
static void
test_cookie_options(void **state)
{
	struct sp_syncookie_keys keys;
	struct sp_syncookie_tuple t;

	(void)state;
	rnd_keys(&keys);
	rnd_tuple(&t, 0);
	for (unsigned int ws = 0; ws <= 255; ws++) {
		for (int sack = 0; sack <= 1; sack++) {
			struct sp_syncookie_opts syn = {.mss = 1460,
							.wscale = (uint8_t)ws,
							.sack_ok = sack},
						 got;
			uint32_t cookie = sp_syncookie_make(&keys, &t, ws, 5, &syn, 0, NULL);

			assert_int_equal(sp_syncookie_check(&keys, &t, ws, cookie, 5, &got),
					 SP_SYNCOOKIE_OK);
			assert_int_equal(got.wscale, ws == SP_SYNCOOKIE_NO_WSCALE ? ws
						     : ws > 14			  ? 14
										  : ws);
			assert_int_equal(got.sack_ok, sack);
		}
	}
}

/* The counter wraps (8 bits in the cookie): ages are right across the wrap; the future is stale. */
static void
test_cookie_age(void **state)
{
	struct sp_syncookie_keys keys;
	struct sp_syncookie_tuple t;
	struct sp_syncookie_opts syn = {.mss = 1460, .wscale = 7, .sack_ok = 1};
	const uint32_t counts[] = {0, 1, 254, 255, 256, 0xffffff, 0xfffffffe, 0xffffffff};

	(void)state;
	rnd_keys(&keys);
	rnd_tuple(&t, 1);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		uint32_t c = counts[i];
		uint32_t cookie = sp_syncookie_make(&keys, &t, 42, c, &syn, 0, NULL);

		assert_int_equal(sp_syncookie_check(&keys, &t, 42, cookie, c, NULL),
				 SP_SYNCOOKIE_OK);
		assert_int_equal(sp_syncookie_check(&keys, &t, 42, cookie, c + 1, NULL),
				 SP_SYNCOOKIE_OK);
		for (uint32_t late = 2; late < 256; late += 17)
			assert_int_equal(sp_syncookie_check(&keys, &t, 42, cookie, c + late, NULL),
					 SP_SYNCOOKIE_STALE);
		/* from the future: the count is taken as 255 back, so the data does not check out
		 */
		assert_int_not_equal(sp_syncookie_check(&keys, &t, 42, cookie, c - 1, NULL),
				     SP_SYNCOOKIE_OK);
	}
	/* 64-second units */
	assert_int_equal(sp_syncookie_count(0), 0);
	assert_int_equal(sp_syncookie_count(63), 0);
	assert_int_equal(sp_syncookie_count(64), 1);
	assert_int_equal(sp_syncookie_count(1800000000), 28125000);
}

/* A cookie is bound to its tuple, the VM's ISN, the count and our keys: change any and it fails. */
static void
test_cookie_binding(void **state)
{
	struct sp_syncookie_keys keys, other;
	struct sp_syncookie_opts syn = {.mss = 1460, .wscale = 7, .sack_ok = 1};
	int accepted = 0;

	(void)state;
	rnd_keys(&keys);
	rnd_keys(&other);
	for (int i = 0; i < 20000; i++) {
		struct sp_syncookie_tuple t, u;
		uint32_t isn = (uint32_t)rnd(), c = (uint32_t)rnd();
		uint32_t cookie;

		rnd_tuple(&t, i & 1);
		cookie = sp_syncookie_make(&keys, &t, isn, c, &syn, 0, NULL);
		for (int field = 0; field < 6; field++) {
			u = t;
			switch (field) {
			case 0:
				u.src[rnd() % (t.ipv6 ? 16 : 4)] ^= (uint8_t)(1u << (rnd() % 8));
				break;
			case 1:
				u.dst[rnd() % (t.ipv6 ? 16 : 4)] ^= (uint8_t)(1u << (rnd() % 8));
				break;
			case 2:
				u.sport ^= (uint16_t)(1u << (rnd() % 16));
				break;
			case 3:
				u.dport ^= (uint16_t)(1u << (rnd() % 16));
				break;
			case 4:
				u.ipv6 ^= 1;
				break;
			default:
				break;
			}
			if (field < 5)
				accepted += sp_syncookie_check(&keys, &u, isn, cookie, c, NULL) ==
					    SP_SYNCOOKIE_OK;
		}
		/* the ISN is added, not hashed (as in Linux): one a few units off only moves the
		 * data field, like an ACK number a few units off; the keyed bits reject anything
		 * further */
		accepted += sp_syncookie_check(&keys, &t, isn + 0x10000, cookie, c, NULL) ==
			    SP_SYNCOOKIE_OK;
		accepted += sp_syncookie_check(&other, &t, isn, cookie, c, NULL) == SP_SYNCOOKIE_OK;
		/* (cookie + 1 would be another valid data value: only the keyed bits bind) */
		accepted += sp_syncookie_check(&keys, &t, isn, cookie ^ (1u << 24), c, NULL) ==
			    SP_SYNCOOKIE_OK;
		accepted += sp_syncookie_check(&keys, &t, isn, cookie ^ (1u << 8), c, NULL) ==
			    SP_SYNCOOKIE_OK;
	}
	/* 180,000 wrong guesses at ~2^-23 each: expected 0.02 acceptances */
	assert_true(accepted <= 2);
}

/* Random ACK numbers for a real tuple and ISN: almost all forged, none crash, a handful at most
 * pass. */
static void
test_cookie_forgery_rate(void **state)
{
	struct sp_syncookie_keys keys;
	struct sp_syncookie_tuple t;
	int ok = 0, stale = 0, forged = 0;

	(void)state;
	rnd_keys(&keys);
	rnd_tuple(&t, 0);
	for (int i = 0; i < 2000000; i++) {
		switch (sp_syncookie_check(&keys, &t, 1000, (uint32_t)rnd(), 77, NULL)) {
		case SP_SYNCOOKIE_OK:
			ok++;
			break;
		case SP_SYNCOOKIE_STALE:
			stale++;
			break;
		default:
			forged++;
			break;
		}
	}
	/* expected: ok 2e6 * 2^-23 = 0.24, stale 2e6 * 2^-16 * 254/256 = 30 */
	assert_true(ok <= 3);
	assert_true(stale < 100);
	assert_true(forged > 1999800);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_paper_vectors),
		cmocka_unit_test(test_siphash_matches_openssl),
		cmocka_unit_test(test_cookie_round_trip),
		cmocka_unit_test(test_cookie_mss_choice),
		cmocka_unit_test(test_cookie_options),
		cmocka_unit_test(test_cookie_age),
		cmocka_unit_test(test_cookie_binding),
		cmocka_unit_test(test_cookie_forgery_rate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
