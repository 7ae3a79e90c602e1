/* Unit tests for lib/sp_tcp: incremental checksums against full recomputation, option parsing (real
 * SYNs, every malformation, fuzz), SYN-ACK options, MSS clamping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sp_tcp.h"

#define TEST_RNG_SEED 0x243f6a8885a308d3ULL
#include "test_rng.h"

/* A buffer whose 16-bit word at csum_off holds its checksum: the whole then sums to zero. */
static void
seal(uint8_t *buf, size_t len, size_t csum_off)
{
	uint16_t c;

	memset(buf + csum_off, 0, 2);
	c = sp_csum(buf, len);
	memcpy(buf + csum_off, &c, 2);
}

static void
test_csum_known_value(void **state)
{
	/* RFC 1071's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (network order); ~ = 220d */
	const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
	uint16_t c = sp_csum(data, sizeof(data));
	uint8_t b[2];

	(void)state;
	memcpy(b, &c, 2);
	assert_int_equal(b[0], 0x22);
	assert_int_equal(b[1], 0x0d);
	/* odd length: the last byte is padded with zero: 0001 + f203 + f4f5 + f600 = dcfb */
	c = sp_csum(data, 7);
	memcpy(b, &c, 2);
	assert_int_equal(b[0], 0x23);
	assert_int_equal(b[1], 0x04);
}

/* Random 16- and 32-bit field changes: the incremental result always verifies like a fresh one. */
static void
test_csum_incremental(void **state)
{
	(void)state;
	for (int i = 0; i < 200000; i++) {
		uint8_t buf[64];
		size_t len = 20 + rnd() % 44, off;
		uint16_t c;

		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)rnd();
		if (i % 7 == 0)
			memset(buf, 0xff, len); /* all-ones data: the -0 corner */
		seal(buf, len, 16);
		assert_int_equal(sp_csum(buf, len), 0);
		memcpy(&c, buf + 16, 2);
		if (i & 1) {
			uint32_t old, new = (uint32_t)rnd();

			off = 4 * (rnd() % 4); /* 0, 4, 8, 12: seq, ack, ... */
			memcpy(&old, buf + off, 4);
			memcpy(buf + off, &new, 4);
			c = sp_csum_update32(c, old, new);
		} else {
			uint16_t old, new = (uint16_t)rnd();

			off = 2 * (rnd() % 8);
			memcpy(&old, buf + off, 2);
			memcpy(buf + off, &new, 2);
			c = sp_csum_update16(c, old, new);
		}
		memcpy(buf + 16, &c, 2);
		assert_int_equal(sp_csum(buf, len), 0);
	}
}

/* Linux's SYN: MSS 1460, SACK-permitted, timestamps, NOP, window scale 7. */
static const uint8_t linux_syn[] = {0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x12, 0x34,
				    0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07};

static void
test_parse_real_syn(void **state)
{
	struct sp_tcp_opts o;

	(void)state;
	assert_int_equal(sp_tcp_parse_opts(linux_syn, sizeof(linux_syn), &o), SP_TCP_OPT_OK);
	assert_true(o.has_mss && o.mss == 1460 && o.mss_off == 2);
	assert_true(o.sack_ok);
	assert_true(o.has_ts && o.ts_val == 0x12345678 && o.ts_ecr == 0);
	assert_true(o.has_wscale && o.wscale == 7);
	assert_int_equal(o.sack_blocks, 0);
}

static void
test_parse_sack_blocks_and_unknown(void **state)
{
	uint8_t opt[40] = {1, 1, 5, 26}; /* NOP NOP SACK with 3 blocks (26 bytes) */
	struct sp_tcp_opts o;

	(void)state;
	opt[30] = 0xfe; /* unknown kind, length 4: skipped */
	opt[31] = 4;
	opt[34] = 0; /* EOL: the rest is ignored */
	opt[35] = 0x02;
	assert_int_equal(sp_tcp_parse_opts(opt, 40, &o), SP_TCP_OPT_OK);
	assert_int_equal(o.sack_blocks, 3);
	assert_int_equal(o.sack_off[0], 4);
	assert_int_equal(o.sack_off[1], 12);
	assert_int_equal(o.sack_off[2], 20);
	assert_false(o.has_mss);
}

static void
test_parse_malformed(void **state)
{
	static const struct {
		uint8_t opt[12];
		size_t len;
		int want;
	} cases[] = {
		{{2}, 1, SP_TCP_OPT_TRUNCATED},			/* kind without length */
		{{2, 4, 5}, 3, SP_TCP_OPT_TRUNCATED},		/* MSS cut short */
		{{1, 1, 8, 10, 0, 0}, 6, SP_TCP_OPT_TRUNCATED}, /* timestamps past the end */
		{{8, 1}, 2, SP_TCP_OPT_BAD_LENGTH},		/* length < 2 */
		{{0xfe, 0}, 2, SP_TCP_OPT_BAD_LENGTH},		/* length 0 would loop */
		{{2, 5, 5, 0xb4, 0}, 5, SP_TCP_OPT_BAD_LENGTH}, /* MSS of length 5 */
		{{3, 2}, 2, SP_TCP_OPT_BAD_LENGTH},		/* window scale of length 2 */
		{{4, 3, 0}, 3, SP_TCP_OPT_BAD_LENGTH},		/* SACK-permitted of length 3 */
		{{5, 6, 0, 0, 0, 0}, 6, SP_TCP_OPT_BAD_LENGTH}, /* SACK without a whole block */
		{{8, 8, 0, 0, 0, 0, 0, 0}, 8, SP_TCP_OPT_BAD_LENGTH},
	};
	struct sp_tcp_opts o;
	uint8_t big[41] = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(sp_tcp_parse_opts(cases[i].opt, cases[i].len, &o), cases[i].want);
	assert_int_equal(sp_tcp_parse_opts(big, 41, &o), SP_TCP_OPT_BAD_LENGTH);
	assert_int_equal(sp_tcp_parse_opts(big, 0, &o), SP_TCP_OPT_OK);
}

/* Random option bytes (exact-size heap copies, so the sanitizer sees any overread). */
static void
test_parse_fuzz(void **state)
{
	(void)state;
	for (int i = 0; i < 200000; i++) {
		size_t len = rnd() % 41;
		uint8_t *p = malloc(len ? len : 1);
		struct sp_tcp_opts o;
		int rc;

		assert_non_null(p);
		for (size_t k = 0; k < len; k++)
			p[k] = (uint8_t)(rnd() % 4 ? rnd() % 12 : rnd());
		rc = sp_tcp_parse_opts(p, len, &o);
		assert_true(rc == SP_TCP_OPT_OK || rc == SP_TCP_OPT_TRUNCATED ||
			    rc == SP_TCP_OPT_BAD_LENGTH);
		if (rc == SP_TCP_OPT_OK && o.has_mss)
			assert_true(o.mss_off + 2u <= len);
		for (int b = 0; rc == SP_TCP_OPT_OK && b < o.sack_blocks; b++)
			assert_true(o.sack_off[b] + 8u <= len);
		free(p);
	}
}

static void
test_synack_options(void **state)
{
	uint8_t buf[12];
	struct sp_tcp_opts o;
	size_t n;

	(void)state;
	n = sp_tcp_write_synack_opts(buf, 1460, false, 0, false);
	assert_int_equal(n, 4);
	n = sp_tcp_write_synack_opts(buf, 8960, true, 20, true);
	assert_int_equal(n, 12);
	assert_int_equal(sp_tcp_parse_opts(buf, n, &o), SP_TCP_OPT_OK);
	assert_true(o.has_mss && o.mss == 8960);
	assert_true(o.has_wscale && o.wscale == 14);
	assert_true(o.sack_ok && !o.has_ts);
	n = sp_tcp_write_synack_opts(buf, 536, true, 7, false);
	assert_int_equal(n % 4, 0);
	assert_int_equal(sp_tcp_parse_opts(buf, n, &o), SP_TCP_OPT_OK);
	assert_true(o.wscale == 7 && !o.sack_ok && o.mss == 536);
}

/* A 20-byte TCP header followed by opt: clamp, then the checksum still verifies. */
static void
clamp_case(const uint8_t *opt, size_t len, uint16_t mss, int want_rc, uint16_t want_mss)
{
	uint8_t seg[60];
	uint16_t csum;
	struct sp_tcp_opts o;

	for (size_t k = 0; k < 20; k++)
		seg[k] = (uint8_t)rnd();
	memcpy(seg + 20, opt, len);
	seal(seg, 20 + len, 16);
	memcpy(&csum, seg + 16, 2);
	assert_int_equal(sp_tcp_clamp_mss(seg + 20, len, mss, &csum), want_rc);
	memcpy(seg + 16, &csum, 2);
	assert_int_equal(sp_csum(seg, 20 + len), 0);
	if (want_rc >= 0) {
		assert_int_equal(sp_tcp_parse_opts(seg + 20, len, &o), SP_TCP_OPT_OK);
		assert_int_equal(o.mss, want_mss);
	}
}

static void
test_clamp_mss(void **state)
{
	const uint8_t odd[] = {1, 2, 4, 0x23, 0x28, 1, 1, 1}; /* NOP, MSS 9000 at offset 3 */
	const uint8_t bad[] = {2, 4, 5};

	(void)state;
	for (int i = 0; i < 1000; i++) {
		clamp_case(linux_syn, sizeof(linux_syn), 1400, 1, 1400);
		clamp_case(linux_syn, sizeof(linux_syn), 1460, 0, 1460);
		clamp_case(linux_syn, sizeof(linux_syn), 9000, 0, 1460);
		clamp_case(odd, sizeof(odd), 1460, 1, 1460);
		clamp_case(odd, sizeof(odd), 8960, 1, 8960);
		clamp_case(odd + 5, 3, 1460, 0, 0); /* NOPs only: no MSS */
		clamp_case(bad, sizeof(bad), 1460, SP_TCP_OPT_TRUNCATED, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csum_known_value),
		cmocka_unit_test(test_csum_incremental),
		cmocka_unit_test(test_parse_real_syn),
		cmocka_unit_test(test_parse_sack_blocks_and_unknown),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_fuzz),
		cmocka_unit_test(test_synack_options),
		cmocka_unit_test(test_clamp_mss),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
