/* cmocka unit tests for the sp_pkt header parser: hand-built frames, truncation sweeps, fuzzing. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sp_pkt.h"

#define FRAME_MAX 2048

/* Frame builders: every helper writes at b and returns the number of bytes written. */

static void
put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

/* Ethernet header with n VLAN tags (tpid[i], tci[i], outer first) and the final ethertype. */
static size_t
put_eth_tags(uint8_t *b, const uint16_t *tpid, const uint16_t *tci, unsigned int n, uint16_t et)
{
	static const uint8_t macs[12] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
					 0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
	size_t off = 12;
	unsigned int i;

	memcpy(b, macs, sizeof(macs));
	for (i = 0; i < n; i++) {
		put16(b + off, tpid[i]);
		put16(b + off + 2, tci[i]);
		off += 4;
	}
	put16(b + off, et);
	return off + 2;
}

static size_t
put_eth(uint8_t *b, uint16_t et)
{
	return put_eth_tags(b, NULL, NULL, 0, et);
}

/* IPv4 header of ihl 32-bit words (at least 20 bytes are written; options are NOPs). */
static size_t
put_ipv4(uint8_t *b, uint8_t ihl, uint16_t tot_len, uint16_t frag, uint8_t proto)
{
	size_t hlen = ihl >= 5 ? (size_t)ihl * 4 : 20;

	memset(b, 0, hlen);
	b[0] = (uint8_t)(0x40 | (ihl & 0x0f));
	put16(b + 2, tot_len);
	put16(b + 4, 0x1234); /* id */
	put16(b + 6, frag);
	b[8] = 64;
	b[9] = proto;
	b[12] = 10, b[13] = 0, b[14] = 0, b[15] = 1;
	b[16] = 10, b[17] = 0, b[18] = 0, b[19] = 2;
	if (hlen > 20)
		memset(b + 20, 0x01, hlen - 20);
	return hlen;
}

static size_t
put_ipv6(uint8_t *b, uint16_t plen, uint8_t nh)
{
	memset(b, 0, 40);
	b[0] = 0x60;
	put16(b + 4, plen);
	b[6] = nh;
	b[7] = 64;
	b[8] = 0xfd, b[23] = 1;
	b[24] = 0xfd, b[39] = 2;
	return 40;
}

/* Generic IPv6 extension header (hop-by-hop, routing, destination options). */
static size_t
put_ext(uint8_t *b, uint8_t nh, uint8_t hdr_ext_len)
{
	size_t n = ((size_t)hdr_ext_len + 1) * 8;

	memset(b, 0, n);
	b[0] = nh;
	b[1] = hdr_ext_len;
	b[2] = 0x01; /* PadN option: contents irrelevant to the parser */
	return n;
}

static size_t
put_frag6(uint8_t *b, uint8_t nh, uint16_t offset_units, int mf)
{
	memset(b, 0, 8);
	b[0] = nh;
	put16(b + 2, (uint16_t)((offset_units << 3) | (mf ? 1 : 0)));
	put16(b + 4, 0xabcd);
	return 8;
}

static size_t
put_ah(uint8_t *b, uint8_t nh, uint8_t len_field)
{
	size_t n = ((size_t)len_field + 2) * 4;

	memset(b, 0, n);
	b[0] = nh;
	b[1] = len_field;
	return n;
}

/* TCP header; doff*4 bytes written when doff >= 5, otherwise 20. */
static size_t
put_tcp(uint8_t *b, uint16_t sport, uint16_t dport, uint8_t doff, uint8_t flags)
{
	size_t hlen = doff >= 5 ? (size_t)doff * 4 : 20;

	memset(b, 0, hlen);
	put16(b, sport);
	put16(b + 2, dport);
	put16(b + 4, 0x0102), put16(b + 6, 0x0304); /* seq */
	b[12] = (uint8_t)(doff << 4);
	b[13] = flags;
	put16(b + 14, 65535);
	if (hlen > 20)
		memset(b + 20, 0x01, hlen - 20);
	return hlen;
}

static size_t
put_udp(uint8_t *b, uint16_t sport, uint16_t dport, uint16_t ulen)
{
	memset(b, 0, 8);
	put16(b, sport);
	put16(b + 2, dport);
	put16(b + 4, ulen);
	return 8;
}

static size_t
put_icmp(uint8_t *b, uint8_t type, uint8_t code)
{
	memset(b, 0, 8);
	b[0] = type;
	b[1] = code;
	put16(b + 4, 0x0042); /* id */
	put16(b + 6, 0x0007); /* seq */
	return 8;
}

static size_t
put_payload(uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(0xa0 + i);
	return n;
}

/* 60-byte frame: Ethernet + IPv4 (20) + TCP (20, 1234 -> 80, SYN|ACK) + 6 bytes of payload. */
static size_t
build_ipv4_tcp(uint8_t *b)
{
	size_t off = put_eth(b, 0x0800);

	off += put_ipv4(b + off, 5, 20 + 20 + 6, 0x4000 /* DF */, 6);
	off += put_tcp(b + off, 1234, 80, 5, 0x12);
	off += put_payload(b + off, 6);
	return off;
}

/* Exact comparison of every field of sp_pkt_info, reporting the first mismatching field. */

#define CHECK_FIELD(got, exp, f, line)                                                             \
	do {                                                                                       \
		if ((got)->f != (exp)->f) {                                                        \
			print_error("line %d: field " #f ": got %lu, want %lu\n", line,            \
				    (unsigned long)(got)->f, (unsigned long)(exp)->f);             \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

static void
check_info(const struct sp_pkt_info *got, const struct sp_pkt_info *exp, int line)
{
	CHECK_FIELD(got, exp, err, line);
	CHECK_FIELD(got, exp, ethertype, line);
	CHECK_FIELD(got, exp, n_vlan, line);
	CHECK_FIELD(got, exp, vlan_tci[0], line);
	CHECK_FIELD(got, exp, vlan_tci[1], line);
	CHECK_FIELD(got, exp, l3, line);
	CHECK_FIELD(got, exp, l4, line);
	CHECK_FIELD(got, exp, ip_proto, line);
	CHECK_FIELD(got, exp, is_fragment, line);
	CHECK_FIELD(got, exp, l3_off, line);
	CHECK_FIELD(got, exp, l4_off, line);
	CHECK_FIELD(got, exp, payload_off, line);
	CHECK_FIELD(got, exp, l3_end, line);
	CHECK_FIELD(got, exp, sport, line);
	CHECK_FIELD(got, exp, dport, line);
	CHECK_FIELD(got, exp, tcp_flags, line);
}

/*
 * Parse a copy of the first len bytes of frame in an exactly-sized heap buffer (so that
 * AddressSanitizer flags any read past the end), check the return value and every field.
 */
static void
parse_expect(const uint8_t *frame, size_t len, const struct sp_pkt_info *exp, int line)
{
	struct sp_pkt_info got;
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	if (len)
		memcpy(copy, frame, len);
	memset(&got, 0xa5, sizeof(got)); /* the parser must zero it */
	rc = sp_pkt_parse(copy, (uint32_t)len, &got);
	free(copy);
	if (rc != (exp->err == SP_PKT_ERR_NONE ? 0 : -EINVAL)) {
		print_error("line %d: len %zu: rc %d, err %s, want err %s\n", line, len, rc,
			    sp_pkt_err_name(got.err), sp_pkt_err_name(exp->err));
		fail();
	}
	check_info(&got, exp, line);
}

#define PARSE_EXPECT(frame, len, ...)                                                              \
	do {                                                                                       \
		const struct sp_pkt_info exp_ = {__VA_ARGS__};                                     \
		parse_expect(frame, len, &exp_, __LINE__);                                         \
	} while (0)

/* IPv4 */

static void
test_ipv4_tcp(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n = build_ipv4_tcp(b);

	(void)state;
	assert_int_equal(n, 60);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_TCP, .ip_proto = 6,
		     .l3_off = 14, .l4_off = 34, .payload_off = 54, .l3_end = 60, .sport = 1234,
		     .dport = 80, .tcp_flags = 0x12);
}

static void
test_ipv4_tcp_options(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n = put_eth(b, 0x0800);

	(void)state;
	/* IHL 6 (4 bytes of IP options), TCP doff 8 (12 bytes of TCP options), 10 bytes payload */
	n += put_ipv4(b + n, 6, 24 + 32 + 10, 0, 6);
	n += put_tcp(b + n, 40000, 443, 8, 0x18);
	n += put_payload(b + n, 10);
	assert_int_equal(n, 80);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_TCP, .ip_proto = 6,
		     .l3_off = 14, .l4_off = 38, .payload_off = 70, .l3_end = 80, .sport = 40000,
		     .dport = 443, .tcp_flags = 0x18);
}

static void
test_ipv4_udp(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n = put_eth(b, 0x0800);

	(void)state;
	n += put_ipv4(b + n, 5, 20 + 8 + 12, 0, 17);
	n += put_udp(b + n, 53, 33333, 8 + 12);
	n += put_payload(b + n, 12);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_UDP, .ip_proto = 17,
		     .l3_off = 14, .l4_off = 34, .payload_off = 42, .l3_end = 54, .sport = 53,
		     .dport = 33333);
}

static void
test_ipv4_icmp(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n = put_eth(b, 0x0800);

	(void)state;
	n += put_ipv4(b + n, 5, 20 + 8 + 4, 0, 1);
	n += put_icmp(b + n, 3, 4); /* destination unreachable, fragmentation needed */
	n += put_payload(b + n, 4);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_ICMP, .ip_proto = 1,
		     .l3_off = 14, .l4_off = 34, .payload_off = 38, .l3_end = 46, .sport = 3,
		     .dport = 4);
}

static void
test_ipv4_other_proto(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n = put_eth(b, 0x0800);

	(void)state;
	/* GRE: no L4 parsing, l4_off still points at it */
	n += put_ipv4(b + n, 5, 20 + 8, 0, 47);
	n += put_payload(b + n, 8);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_OTHER, .ip_proto = 47,
		     .l3_off = 14, .l4_off = 34, .l3_end = 42);

	/* ICMPv6 (58) carried over IPv4 is not ICMP: "other" */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 20 + 8, 0, 58);
	n += put_icmp(b + n, 128, 0);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_OTHER, .ip_proto = 58,
		     .l3_off = 14, .l4_off = 34, .l3_end = 42);

	/* other-protocol L4 with an empty L3 payload is still fine (nothing to read) */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 20, 0, 47);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_OTHER, .ip_proto = 47,
		     .l3_off = 14, .l4_off = 34, .l3_end = 34);
}

static void
test_ipv4_fragments(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n;

	(void)state;
	/* first fragment: MF set, offset 0 -> L4 parsed */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 20 + 20 + 16, 0x2000, 6);
	n += put_tcp(b + n, 5555, 22, 5, 0x10);
	n += put_payload(b + n, 16);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_TCP, .ip_proto = 6,
		     .is_fragment = 1, .l3_off = 14, .l4_off = 34, .payload_off = 54, .l3_end = 70,
		     .sport = 5555, .dport = 22, .tcp_flags = 0x10);

	/* middle fragment: MF set, offset 100 (800 bytes) -> no L4, no error */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 20 + 24, 0x2000 | 100, 6);
	n += put_payload(b + n, 24);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_NONE, .ip_proto = 6,
		     .is_fragment = 1, .l3_off = 14, .l3_end = 58);

	/* last fragment: MF clear, offset 1 -> no L4 even though the bytes look like TCP */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 20 + 20, 1, 6);
	n += put_tcp(b + n, 1, 2, 5, 0x02);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_NONE, .ip_proto = 6,
		     .is_fragment = 1, .l3_off = 14, .l3_end = 54);

	/* DF alone is not a fragment (covered by build_ipv4_tcp too), reserved bit neither */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 20 + 8, 0xc000, 17);
	n += put_udp(b + n, 1, 2, 8);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_UDP, .ip_proto = 17,
		     .l3_off = 14, .l4_off = 34, .payload_off = 42, .l3_end = 42, .sport = 1,
		     .dport = 2);
}

static void
test_ipv4_bad_headers(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n;

	(void)state;
	/* IHL 4 */
	n = build_ipv4_tcp(b);
	b[14] = 0x44;
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV4_BAD_HEADER, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l3_off = 14);

	/* IHL 0 */
	n = build_ipv4_tcp(b);
	b[14] = 0x40;
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV4_BAD_HEADER, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l3_off = 14);

	/* version 6 under ethertype 0x0800 */
	n = build_ipv4_tcp(b);
	b[14] = 0x65;
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV4_BAD_HEADER, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l3_off = 14);

	/* IHL 15 (60 bytes) but only 20 bytes of IP in the frame */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 60, 0, 6);
	b[14] = 0x4f;
	assert_int_equal(n, 34);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV4_TRUNCATED, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .ip_proto = 6, .l3_off = 14);
	/* ... and one byte short of the 60 bytes */
	memset(b + n, 0x01, 39);
	PARSE_EXPECT(b, n + 39, .err = SP_PKT_ERR_IPV4_TRUNCATED, .ethertype = 0x0800,
		     .l3 = SP_L3_IPV4, .ip_proto = 6, .l3_off = 14);
	/* exactly 60 bytes, total length 60: parses, TCP header missing -> L4_TRUNCATED */
	memset(b + n, 0x01, 40);
	PARSE_EXPECT(b, n + 40, .err = SP_PKT_ERR_L4_TRUNCATED, .ethertype = 0x0800,
		     .l3 = SP_L3_IPV4, .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14, .l4_off = 74,
		     .l3_end = 74);

	/* total length 19 < IHL*4 */
	n = build_ipv4_tcp(b);
	put16(b + 16, 19);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV4_BAD_HEADER, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .ip_proto = 6, .l3_off = 14);

	/* total length 24 < IHL*4 = 28 */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 7, 24, 0, 17);
	n += put_udp(b + n, 1, 2, 8);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV4_BAD_HEADER, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .ip_proto = 17, .l3_off = 14);

	/* total length 0 */
	n = build_ipv4_tcp(b);
	put16(b + 16, 0);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV4_BAD_HEADER, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .ip_proto = 6, .l3_off = 14);

	/* total length one byte beyond the frame */
	n = build_ipv4_tcp(b);
	put16(b + 16, 47);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV4_TRUNCATED, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .ip_proto = 6, .l3_off = 14);
	/* total length 65535 */
	put16(b + 16, 65535);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV4_TRUNCATED, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .ip_proto = 6, .l3_off = 14);
}

static void
test_ipv4_padding(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n = put_eth(b, 0x0800);

	(void)state;
	/* 28-byte IPv4/UDP packet (no payload) padded to a 60-byte minimum Ethernet frame */
	n += put_ipv4(b + n, 5, 28, 0, 17);
	n += put_udp(b + n, 68, 67, 8);
	memset(b + n, 0, 60 - n);
	assert_int_equal(n, 42);
	PARSE_EXPECT(b, 60, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_UDP, .ip_proto = 17,
		     .l3_off = 14, .l4_off = 34, .payload_off = 42, .l3_end = 42, .sport = 68,
		     .dport = 67);

	/* padding does not extend the L4 bound: TCP header in the padding is L4_TRUNCATED */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 20 + 8, 0, 6);
	put_tcp(b + n, 1, 2, 5, 0x02); /* 20 bytes, of which only 8 are inside the IP packet */
	memset(b + n + 20, 0, 60 - n - 20);
	PARSE_EXPECT(b, 60, .err = SP_PKT_ERR_L4_TRUNCATED, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14, .l4_off = 34, .l3_end = 42);
}

/* L4 anomalies */

static void
test_tcp_bad_offset(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n;

	(void)state;
	/* doff 4: ports and flags are still reported */
	n = build_ipv4_tcp(b);
	b[34 + 12] = 0x40;
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_TCP_BAD_OFFSET, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14, .l4_off = 34, .l3_end = 60,
		     .sport = 1234, .dport = 80, .tcp_flags = 0x12);

	/* doff 0 */
	b[34 + 12] = 0x00;
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_TCP_BAD_OFFSET, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14, .l4_off = 34, .l3_end = 60,
		     .sport = 1234, .dport = 80, .tcp_flags = 0x12);

	/* doff 7 (28 bytes) but 26 bytes of L4 in the IP packet */
	b[34 + 12] = 0x70;
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_TCP_BAD_OFFSET, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14, .l4_off = 34, .l3_end = 60,
		     .sport = 1234, .dport = 80, .tcp_flags = 0x12);

	/* doff 6 (24 bytes) fits in 26: accepted, 2 bytes of payload */
	b[34 + 12] = 0x60;
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_TCP, .ip_proto = 6,
		     .l3_off = 14, .l4_off = 34, .payload_off = 58, .l3_end = 60, .sport = 1234,
		     .dport = 80, .tcp_flags = 0x12);

	/* doff 15 (60 bytes) */
	b[34 + 12] = 0xf0;
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_TCP_BAD_OFFSET, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14, .l4_off = 34, .l3_end = 60,
		     .sport = 1234, .dport = 80, .tcp_flags = 0x12);

	/* doff 6 beyond l3_end while the frame (padding) is long enough: still bad */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 40, 0, 6);
	n += put_tcp(b + n, 7, 8, 6, 0x01);
	memset(b + n, 0, 64 - n);
	PARSE_EXPECT(b, 64, .err = SP_PKT_ERR_TCP_BAD_OFFSET, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14, .l4_off = 34, .l3_end = 54,
		     .sport = 7, .dport = 8, .tcp_flags = 0x01);
	/* doff exactly to l3_end: zero-length payload, payload_off == l3_end */
	put16(b + 16, 44);
	PARSE_EXPECT(b, 64, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_TCP, .ip_proto = 6,
		     .l3_off = 14, .l4_off = 34, .payload_off = 58, .l3_end = 58, .sport = 7,
		     .dport = 8, .tcp_flags = 0x01);
}

static void
test_l4_truncated(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n;

	(void)state;
	/* UDP: 7 bytes of L4 */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 27, 0, 17);
	n += put_udp(b + n, 1, 2, 8);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_L4_TRUNCATED, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l4 = SP_L4_UDP, .ip_proto = 17, .l3_off = 14, .l4_off = 34, .l3_end = 41);
	/* UDP: exactly 8 */
	put16(b + 16, 28);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_UDP, .ip_proto = 17,
		     .l3_off = 14, .l4_off = 34, .payload_off = 42, .l3_end = 42, .sport = 1,
		     .dport = 2);

	/* ICMP: 3 bytes of L4, then exactly 4 */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 23, 0, 1);
	n += put_icmp(b + n, 0, 0);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_L4_TRUNCATED, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l4 = SP_L4_ICMP, .ip_proto = 1, .l3_off = 14, .l4_off = 34, .l3_end = 37);
	put16(b + 16, 24);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_ICMP, .ip_proto = 1,
		     .l3_off = 14, .l4_off = 34, .payload_off = 38, .l3_end = 38);

	/* TCP: 19 bytes of L4 */
	n = put_eth(b, 0x0800);
	n += put_ipv4(b + n, 5, 39, 0, 6);
	n += put_tcp(b + n, 1, 2, 5, 0);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_L4_TRUNCATED, .ethertype = 0x0800, .l3 = SP_L3_IPV4,
		     .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14, .l4_off = 34, .l3_end = 53);
}

/* Truncation sweeps */

static void
test_truncate_ipv4_tcp(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t full = build_ipv4_tcp(b);
	size_t len;

	(void)state;
	for (len = 0; len <= full; len++) {
		if (len < 14) {
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_RUNT);
		} else if (len < 34) {
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_IPV4_TRUNCATED, .ethertype = 0x0800,
				     .l3 = SP_L3_IPV4, .l3_off = 14);
		} else if (len < full) {
			/* header complete, total length (46) beyond the frame */
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_IPV4_TRUNCATED, .ethertype = 0x0800,
				     .l3 = SP_L3_IPV4, .ip_proto = 6, .l3_off = 14);
		} else {
			PARSE_EXPECT(b, len, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_TCP,
				     .ip_proto = 6, .l3_off = 14, .l4_off = 34, .payload_off = 54,
				     .l3_end = 60, .sport = 1234, .dport = 80, .tcp_flags = 0x12);
		}
	}
}

/* Same frame, but the IPv4 total length follows the cut: the L4 boundaries show up. */
static void
test_truncate_ipv4_tcp_consistent_len(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t full = build_ipv4_tcp(b);
	size_t len;

	(void)state;
	for (len = 34; len <= full; len++) {
		put16(b + 16, (uint16_t)(len - 14));
		if (len < 54) {
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_L4_TRUNCATED, .ethertype = 0x0800,
				     .l3 = SP_L3_IPV4, .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14,
				     .l4_off = 34, .l3_end = (uint32_t)len);
		} else {
			PARSE_EXPECT(b, len, .ethertype = 0x0800, .l3 = SP_L3_IPV4, .l4 = SP_L4_TCP,
				     .ip_proto = 6, .l3_off = 14, .l4_off = 34, .payload_off = 54,
				     .l3_end = (uint32_t)len, .sport = 1234, .dport = 80,
				     .tcp_flags = 0x12);
		}
	}
}

/* QinQ + IPv4/UDP, every cut. */
static void
test_truncate_qinq_udp(void **state)
{
	static const uint16_t tpid[2] = {0x88a8, 0x8100};
	static const uint16_t tci[2] = {0x0064, 0xe0c8};
	uint8_t b[FRAME_MAX];
	size_t full, len;

	(void)state;
	full = put_eth_tags(b, tpid, tci, 2, 0x0800);
	full += put_ipv4(b + full, 5, 20 + 8 + 4, 0, 17);
	full += put_udp(b + full, 4789, 4789, 12);
	full += put_payload(b + full, 4);
	assert_int_equal(full, 22 + 32);
	for (len = 0; len <= full; len++) {
		if (len < 14) {
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_RUNT);
		} else if (len < 18) {
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_VLAN_TRUNCATED, .ethertype = 0x88a8);
		} else if (len < 22) {
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_VLAN_TRUNCATED, .ethertype = 0x8100,
				     .n_vlan = 1, .vlan_tci = {0x0064});
		} else if (len < 42) {
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_IPV4_TRUNCATED, .ethertype = 0x0800,
				     .n_vlan = 2, .vlan_tci = {0x0064, 0xe0c8}, .l3 = SP_L3_IPV4,
				     .l3_off = 22);
		} else if (len < full) {
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_IPV4_TRUNCATED, .ethertype = 0x0800,
				     .n_vlan = 2, .vlan_tci = {0x0064, 0xe0c8}, .l3 = SP_L3_IPV4,
				     .ip_proto = 17, .l3_off = 22);
		} else {
			PARSE_EXPECT(b, len, .ethertype = 0x0800, .n_vlan = 2,
				     .vlan_tci = {0x0064, 0xe0c8}, .l3 = SP_L3_IPV4,
				     .l4 = SP_L4_UDP, .ip_proto = 17, .l3_off = 22, .l4_off = 42,
				     .payload_off = 50, .l3_end = 54, .sport = 4789, .dport = 4789);
		}
	}
}

/* IPv6 + hop-by-hop + TCP, every cut of the frame, then every cut of the payload length. */
static void
test_truncate_ipv6_tcp(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t full, len;

	(void)state;
	full = put_eth(b, 0x86dd);
	full += put_ipv6(b + full, 8 + 20 + 3, 0);
	full += put_ext(b + full, 6, 0);
	full += put_tcp(b + full, 179, 50000, 5, 0x18);
	full += put_payload(b + full, 3);
	assert_int_equal(full, 14 + 40 + 8 + 20 + 3);
	for (len = 0; len <= full; len++) {
		if (len < 14) {
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_RUNT);
		} else if (len < full) {
			PARSE_EXPECT(b, len, .err = SP_PKT_ERR_IPV6_TRUNCATED, .ethertype = 0x86dd,
				     .l3 = SP_L3_IPV6, .l3_off = 14);
		} else {
			PARSE_EXPECT(b, len, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_TCP,
				     .ip_proto = 6, .l3_off = 14, .l4_off = 62, .payload_off = 82,
				     .l3_end = 85, .sport = 179, .dport = 50000, .tcp_flags = 0x18);
		}
	}
	/* payload length follows the cut (frame keeps its full size: trailing bytes = padding) */
	for (len = 1; len < 8 + 20 + 3; len++) {
		put16(b + 18, (uint16_t)len);
		if (len < 8) {
			PARSE_EXPECT(b, full, .err = SP_PKT_ERR_IPV6_TRUNCATED, .ethertype = 0x86dd,
				     .l3 = SP_L3_IPV6, .ip_proto = 0, .l3_off = 14,
				     .l3_end = (uint32_t)(54 + len));
		} else if (len < 28) {
			PARSE_EXPECT(b, full, .err = SP_PKT_ERR_L4_TRUNCATED, .ethertype = 0x86dd,
				     .l3 = SP_L3_IPV6, .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14,
				     .l4_off = 62, .l3_end = (uint32_t)(54 + len));
		} else {
			PARSE_EXPECT(b, full, .ethertype = 0x86dd, .l3 = SP_L3_IPV6,
				     .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14, .l4_off = 62,
				     .payload_off = 82, .l3_end = (uint32_t)(54 + len),
				     .sport = 179, .dport = 50000, .tcp_flags = 0x18);
		}
	}
}

/* ARP, other ethertypes, runts */

static void
test_arp(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n = put_eth(b, 0x0806);

	(void)state;
	put16(b + n, 1);	  /* htype Ethernet */
	put16(b + n + 2, 0x0800); /* ptype IPv4 */
	b[n + 4] = 6;
	b[n + 5] = 4;
	put16(b + n + 6, 1); /* request */
	memset(b + n + 8, 0x11, 20);
	n += 28;
	PARSE_EXPECT(b, n, .ethertype = 0x0806, .l3 = SP_L3_ARP, .l3_off = 14, .l3_end = 42);
	/* padded to 60: still clean, l3_end unchanged */
	memset(b + n, 0, 60 - n);
	PARSE_EXPECT(b, 60, .ethertype = 0x0806, .l3 = SP_L3_ARP, .l3_off = 14, .l3_end = 42);
	/* one byte short */
	PARSE_EXPECT(b, n - 1, .err = SP_PKT_ERR_ARP_TRUNCATED, .ethertype = 0x0806,
		     .l3 = SP_L3_ARP, .l3_off = 14);
	/* just the Ethernet header */
	PARSE_EXPECT(b, 14, .err = SP_PKT_ERR_ARP_TRUNCATED, .ethertype = 0x0806, .l3 = SP_L3_ARP,
		     .l3_off = 14);
}

static void
test_other_ethertype_and_runt(void **state)
{
	uint8_t b[FRAME_MAX];
	struct sp_pkt_info info;
	size_t n = put_eth(b, 0x88cc); /* LLDP */

	(void)state;
	n += put_payload(b + n, 20);
	PARSE_EXPECT(b, n, .ethertype = 0x88cc, .l3 = SP_L3_OTHER, .l3_off = 14, .l3_end = 34);
	/* Ethernet header only */
	PARSE_EXPECT(b, 14, .ethertype = 0x88cc, .l3 = SP_L3_OTHER, .l3_off = 14, .l3_end = 14);
	/* runts */
	PARSE_EXPECT(b, 13, .err = SP_PKT_ERR_RUNT);
	PARSE_EXPECT(b, 0, .err = SP_PKT_ERR_RUNT);
	/* NULL with length 0 */
	memset(&info, 0xff, sizeof(info));
	assert_int_equal(sp_pkt_parse(NULL, 0, &info), -EINVAL);
	assert_int_equal(info.err, SP_PKT_ERR_RUNT);
	assert_int_equal(info.l3, SP_L3_NONE);
	assert_int_equal(info.ethertype, 0);
	assert_int_equal(info.l3_end, 0);
}

/* VLAN */

static void
test_vlan_single(void **state)
{
	static const uint16_t tpid[1] = {0x8100};
	static const uint16_t tci[1] = {0x2064}; /* PCP 1, VID 100 */
	uint8_t b[FRAME_MAX];
	size_t n = put_eth_tags(b, tpid, tci, 1, 0x0800);

	(void)state;
	n += put_ipv4(b + n, 5, 20 + 20, 0, 6);
	n += put_tcp(b + n, 8080, 1025, 5, 0x11);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .n_vlan = 1, .vlan_tci = {0x2064}, .l3 = SP_L3_IPV4,
		     .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 18, .l4_off = 38, .payload_off = 58,
		     .l3_end = 58, .sport = 8080, .dport = 1025, .tcp_flags = 0x11);

	/* ARP inside one tag */
	n = put_eth_tags(b, tpid, tci, 1, 0x0806);
	memset(b + n, 0, 28);
	n += 28;
	PARSE_EXPECT(b, n, .ethertype = 0x0806, .n_vlan = 1, .vlan_tci = {0x2064}, .l3 = SP_L3_ARP,
		     .l3_off = 18, .l3_end = 46);
	/* tag then a runt L3: 18 bytes, ARP truncated */
	PARSE_EXPECT(b, 18, .err = SP_PKT_ERR_ARP_TRUNCATED, .ethertype = 0x0806, .n_vlan = 1,
		     .vlan_tci = {0x2064}, .l3 = SP_L3_ARP, .l3_off = 18);
}

static void
test_vlan_qinq(void **state)
{
	static const uint16_t tpid[2] = {0x88a8, 0x8100};
	static const uint16_t tci[2] = {0x0fff, 0x0001};
	uint8_t b[FRAME_MAX];
	size_t n = put_eth_tags(b, tpid, tci, 2, 0x0800);

	(void)state;
	n += put_ipv4(b + n, 5, 20 + 8 + 8, 0, 1);
	n += put_icmp(b + n, 8, 0);
	n += put_payload(b + n, 8);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .n_vlan = 2, .vlan_tci = {0x0fff, 0x0001},
		     .l3 = SP_L3_IPV4, .l4 = SP_L4_ICMP, .ip_proto = 1, .l3_off = 22, .l4_off = 42,
		     .payload_off = 46, .l3_end = 58, .sport = 8);

	/* two 0x8100 tags are accepted too */
	put16(b + 12, 0x8100);
	PARSE_EXPECT(b, n, .ethertype = 0x0800, .n_vlan = 2, .vlan_tci = {0x0fff, 0x0001},
		     .l3 = SP_L3_IPV4, .l4 = SP_L4_ICMP, .ip_proto = 1, .l3_off = 22, .l4_off = 42,
		     .payload_off = 46, .l3_end = 58, .sport = 8);
}

static void
test_vlan_too_deep(void **state)
{
	static const uint16_t tpid[3] = {0x88a8, 0x8100, 0x8100};
	static const uint16_t tci[3] = {10, 20, 30};
	uint8_t b[FRAME_MAX];
	size_t n = put_eth_tags(b, tpid, tci, 3, 0x0800);

	(void)state;
	n += put_ipv4(b + n, 5, 20 + 8, 0, 17);
	n += put_udp(b + n, 1, 2, 8);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_VLAN_TOO_DEEP, .ethertype = 0x8100, .n_vlan = 2,
		     .vlan_tci = {10, 20});
	/* the third TPID alone (tag body cut off) is already too deep */
	PARSE_EXPECT(b, 22, .err = SP_PKT_ERR_VLAN_TOO_DEEP, .ethertype = 0x8100, .n_vlan = 2,
		     .vlan_tci = {10, 20});
	/* third tag 0x88a8 as well */
	put16(b + 20, 0x88a8);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_VLAN_TOO_DEEP, .ethertype = 0x88a8, .n_vlan = 2,
		     .vlan_tci = {10, 20});
}

/* IPv6 */

static void
test_ipv6_tcp(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n = put_eth(b, 0x86dd);

	(void)state;
	n += put_ipv6(b + n, 20 + 5, 6);
	n += put_tcp(b + n, 22, 61000, 5, 0x18);
	n += put_payload(b + n, 5);
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_TCP, .ip_proto = 6,
		     .l3_off = 14, .l4_off = 54, .payload_off = 74, .l3_end = 79, .sport = 22,
		     .dport = 61000, .tcp_flags = 0x18);
}

static void
test_ipv6_udp_icmpv6(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n;

	(void)state;
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 8 + 8, 58);
	n += put_icmp(b + n, 135, 0); /* neighbour solicitation */
	n += put_payload(b + n, 8);
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_ICMPV6,
		     .ip_proto = 58, .l3_off = 14, .l4_off = 54, .payload_off = 58, .l3_end = 70,
		     .sport = 135);

	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 8, 17);
	n += put_udp(b + n, 546, 547, 8);
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_UDP, .ip_proto = 17,
		     .l3_off = 14, .l4_off = 54, .payload_off = 62, .l3_end = 62, .sport = 546,
		     .dport = 547);

	/* ICMP (1) over IPv6 is not ICMPv6: "other" */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 8, 1);
	n += put_icmp(b + n, 8, 0);
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_OTHER, .ip_proto = 1,
		     .l3_off = 14, .l4_off = 54, .l3_end = 62);

	/* ICMPv6 with 3 bytes */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 3, 58);
	n += put_icmp(b + n, 128, 0);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_L4_TRUNCATED, .ethertype = 0x86dd, .l3 = SP_L3_IPV6,
		     .l4 = SP_L4_ICMPV6, .ip_proto = 58, .l3_off = 14, .l4_off = 54, .l3_end = 57);
}

static void
test_ipv6_fragments(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n;

	(void)state;
	/* hop-by-hop (8) + fragment (8, offset 0, M) + TCP */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 8 + 8 + 20 + 4, 0);
	n += put_ext(b + n, 44, 0);
	n += put_frag6(b + n, 6, 0, 1);
	n += put_tcp(b + n, 1000, 2000, 5, 0x02);
	n += put_payload(b + n, 4);
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_TCP, .ip_proto = 6,
		     .is_fragment = 1, .l3_off = 14, .l4_off = 70, .payload_off = 90, .l3_end = 94,
		     .sport = 1000, .dport = 2000, .tcp_flags = 0x02);

	/* same, non-first fragment (offset 185 units): no L4, no error */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 8 + 8 + 24, 0);
	n += put_ext(b + n, 44, 0);
	n += put_frag6(b + n, 6, 185, 0);
	n += put_payload(b + n, 24);
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_NONE, .ip_proto = 6,
		     .is_fragment = 1, .l3_off = 14, .l3_end = 94);

	/* atomic fragment (offset 0, M clear) + UDP */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 8 + 8, 44);
	n += put_frag6(b + n, 17, 0, 0);
	n += put_udp(b + n, 9, 10, 8);
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_UDP, .ip_proto = 17,
		     .is_fragment = 1, .l3_off = 14, .l4_off = 62, .payload_off = 70, .l3_end = 70,
		     .sport = 9, .dport = 10);

	/* fragment header cut short (payload length 6) */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 6, 44);
	n += put_frag6(b + n, 17, 0, 1);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV6_TRUNCATED, .ethertype = 0x86dd, .l3 = SP_L3_IPV6,
		     .ip_proto = 44, .is_fragment = 0, .l3_off = 14, .l3_end = 60);
}

static void
test_ipv6_ext_chain(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n, i;

	(void)state;
	/* hop-by-hop (16) -> routing (24) -> dest opts (8) -> AH (len 4: 24) -> UDP */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 16 + 24 + 8 + 24 + 8, 0);
	n += put_ext(b + n, 43, 1);
	n += put_ext(b + n, 60, 2);
	n += put_ext(b + n, 51, 0);
	n += put_ah(b + n, 17, 4);
	n += put_udp(b + n, 500, 4500, 8);
	assert_int_equal(n, 14 + 40 + 80);
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_UDP, .ip_proto = 17,
		     .l3_off = 14, .l4_off = 126, .payload_off = 134, .l3_end = 134, .sport = 500,
		     .dport = 4500);

	/* no next header (59) after a destination options header */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 8 + 4, 60);
	n += put_ext(b + n, 59, 0);
	n += put_payload(b + n, 4);
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_NONE, .ip_proto = 59,
		     .l3_off = 14, .l3_end = 66);
	/* 59 directly */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 1, 59);
	b[n++] = 0;
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_NONE, .ip_proto = 59,
		     .l3_off = 14, .l3_end = 55);

	/* exactly SP_PKT_MAX_IPV6_EXT (8) destination options headers: fine */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, SP_PKT_MAX_IPV6_EXT * 8 + 8, 60);
	for (i = 0; i < SP_PKT_MAX_IPV6_EXT; i++)
		n += put_ext(b + n, i + 1 < SP_PKT_MAX_IPV6_EXT ? 60 : 17, 0);
	n += put_udp(b + n, 1, 2, 8);
	PARSE_EXPECT(b, n, .ethertype = 0x86dd, .l3 = SP_L3_IPV6, .l4 = SP_L4_UDP, .ip_proto = 17,
		     .l3_off = 14, .l4_off = 54 + 64, .payload_off = 54 + 72, .l3_end = 54 + 72,
		     .sport = 1, .dport = 2);

	/* one more (9): bad header */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, (SP_PKT_MAX_IPV6_EXT + 1) * 8 + 8, 60);
	for (i = 0; i < SP_PKT_MAX_IPV6_EXT + 1; i++)
		n += put_ext(b + n, i < SP_PKT_MAX_IPV6_EXT ? 60 : 17, 0);
	n += put_udp(b + n, 1, 2, 8);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV6_BAD_HEADER, .ethertype = 0x86dd, .l3 = SP_L3_IPV6,
		     .ip_proto = 60, .l3_off = 14, .l3_end = 54 + 80);

	/* routing header length beyond l3_end, frame long enough (padding): truncated */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 16, 43);
	n += put_ext(b + n, 6, 2); /* claims 24 bytes, 16 in the packet */
	memset(b + n, 0, 20);
	PARSE_EXPECT(b, n + 20, .err = SP_PKT_ERR_IPV6_TRUNCATED, .ethertype = 0x86dd,
		     .l3 = SP_L3_IPV6, .ip_proto = 43, .l3_off = 14, .l3_end = 70);

	/* AH length beyond l3_end */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 12, 51);
	n += put_ah(b + n, 6, 2); /* 16 bytes, 12 in the packet */
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV6_TRUNCATED, .ethertype = 0x86dd, .l3 = SP_L3_IPV6,
		     .ip_proto = 51, .l3_off = 14, .l3_end = 66);

	/* an extension header announced but no byte of it (payload empty except 1 byte) */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 1, 0);
	b[n++] = 6;
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV6_TRUNCATED, .ethertype = 0x86dd, .l3 = SP_L3_IPV6,
		     .ip_proto = 0, .l3_off = 14, .l3_end = 55);

	/* TCP right after an extension header, but nothing left in the packet */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 8, 60);
	n += put_ext(b + n, 6, 0);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_L4_TRUNCATED, .ethertype = 0x86dd, .l3 = SP_L3_IPV6,
		     .l4 = SP_L4_TCP, .ip_proto = 6, .l3_off = 14, .l4_off = 62, .l3_end = 62);
}

static void
test_ipv6_bad_headers(void **state)
{
	uint8_t b[FRAME_MAX];
	size_t n;

	(void)state;
	/* version 4 under 0x86dd */
	n = put_eth(b, 0x86dd);
	n += put_ipv6(b + n, 8, 17);
	n += put_udp(b + n, 1, 2, 8);
	b[14] = 0x45;
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV6_BAD_HEADER, .ethertype = 0x86dd, .l3 = SP_L3_IPV6,
		     .l3_off = 14);

	/* payload length 0 (jumbogram) */
	b[14] = 0x60;
	put16(b + 18, 0);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV6_BAD_HEADER, .ethertype = 0x86dd, .l3 = SP_L3_IPV6,
		     .l3_off = 14);

	/* payload length one beyond the frame */
	put16(b + 18, 9);
	PARSE_EXPECT(b, n, .err = SP_PKT_ERR_IPV6_TRUNCATED, .ethertype = 0x86dd, .l3 = SP_L3_IPV6,
		     .l3_off = 14);

	/* IPv6 fixed header cut at 39 bytes */
	PARSE_EXPECT(b, 14 + 39, .err = SP_PKT_ERR_IPV6_TRUNCATED, .ethertype = 0x86dd,
		     .l3 = SP_L3_IPV6, .l3_off = 14);
}

/* Garbage */

static uint64_t
xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Make random bytes look plausible often enough to reach every parser stage. */
static void
fuzz_shape(uint8_t *b, size_t len, uint64_t *s)
{
	static const uint16_t ets[] = {0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8, 0x0800, 0x86dd};
	static const uint8_t protos[] = {6, 17, 1, 58, 0, 43, 44, 51, 60, 59, 47};
	size_t off = 12;
	unsigned int i, tags;
	uint16_t et;

	if (len < 14 || xorshift64(s) % 8 == 0)
		return;
	tags = (unsigned int)(xorshift64(s) % 8);
	tags = tags < 4 ? 0 : tags - 4; /* 0..3 tags, half without */
	for (i = 0; i < tags && off + 4 <= len; i++) {
		put16(b + off, i % 2 ? 0x8100 : 0x88a8);
		off += 4;
	}
	if (off + 2 > len)
		return;
	et = ets[xorshift64(s) % (sizeof(ets) / sizeof(ets[0]))];
	put16(b + off, et);
	off += 2;
	if (et == 0x0800 && off + 20 <= len && xorshift64(s) % 8 != 0) {
		size_t avail = len - off;

		b[off] = (uint8_t)(0x40 | (5 + xorshift64(s) % 4));
		put16(b + off + 2,
		      (uint16_t)(xorshift64(s) % 4 ? avail - xorshift64(s) % 32 % (avail + 1)
						   : xorshift64(s)));
		if (xorshift64(s) % 2)
			put16(b + off + 6, 0);
		b[off + 9] = protos[xorshift64(s) % (sizeof(protos) / sizeof(protos[0]))];
	} else if (et == 0x86dd && off + 40 <= len && xorshift64(s) % 8 != 0) {
		size_t avail = len - off - 40;

		b[off] = (uint8_t)(0x60 | (b[off] & 0x0f));
		put16(b + off + 4,
		      (uint16_t)(xorshift64(s) % 4 ? avail - xorshift64(s) % 32 % (avail + 1)
						   : xorshift64(s)));
		b[off + 6] = protos[xorshift64(s) % (sizeof(protos) / sizeof(protos[0]))];
		/* keep extension header lengths small and next headers plausible */
		for (i = off + 40; i + 1 < len; i += 8) {
			b[i] = protos[xorshift64(s) % (sizeof(protos) / sizeof(protos[0]))];
			b[i + 1] = (uint8_t)(xorshift64(s) % 4 ? 0 : xorshift64(s) % 3);
			if (i + 3 < len && xorshift64(s) % 2)
				b[i + 2] = b[i + 3] = 0;
		}
	}
}

static void
test_garbage(void **state)
{
	unsigned int seen_err[SP_PKT_ERR_MAX] = {0};
	unsigned int seen_l4[SP_L4_OTHER + 1] = {0};
	unsigned int seen_l3[SP_L3_OTHER + 1] = {0};
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	unsigned int iter, i;

	(void)state;
	for (iter = 0; iter < 10000; iter++) {
		size_t len = (size_t)(xorshift64(&s) % 2001);
		uint8_t *b = malloc(len ? len : 1); /* exact size: ASan catches over-reads */
		struct sp_pkt_info info;
		size_t k;
		int rc;

		assert_non_null(b);
		for (k = 0; k < len; k++)
			b[k] = (uint8_t)xorshift64(&s);
		fuzz_shape(b, len, &s);
		rc = sp_pkt_parse(b, (uint32_t)len, &info);
		free(b);

		assert_true(rc == 0 || rc == -EINVAL);
		assert_true(info.err < SP_PKT_ERR_MAX);
		assert_int_equal(rc == 0, info.err == SP_PKT_ERR_NONE);
		assert_true(info.l3 <= SP_L3_OTHER);
		assert_true(info.l4 <= SP_L4_OTHER);
		assert_true(info.n_vlan <= SP_PKT_MAX_VLAN);
		assert_true(info.is_fragment <= 1);
		assert_true(info.l3_off <= len);
		assert_true(info.l4_off <= len);
		assert_true(info.payload_off <= len);
		assert_true(info.l3_end <= len);
		if (info.l4_off != 0) {
			assert_true(info.l3_off < info.l4_off);
			assert_true(info.l4_off <= info.l3_end);
		}
		if (info.payload_off != 0) {
			assert_true(info.l4_off < info.payload_off);
			assert_true(info.payload_off <= info.l3_end);
		}
		seen_err[info.err]++;
		seen_l3[info.l3]++;
		seen_l4[info.l4]++;
	}
	/* the shaping must reach every outcome, otherwise this test proves little */
	for (i = 0; i < SP_PKT_ERR_MAX; i++) {
		if (seen_err[i] == 0)
			print_error("garbage never produced %s\n", sp_pkt_err_name(i));
		assert_true(seen_err[i] > 0);
	}
	for (i = 0; i <= SP_L3_OTHER; i++)
		assert_true(seen_l3[i] > 0);
	for (i = 0; i <= SP_L4_OTHER; i++)
		assert_true(seen_l4[i] > 0);
}

/* Names */

static void
test_err_names(void **state)
{
	static const char *const want[] = {
		[SP_PKT_ERR_NONE] = "none",
		[SP_PKT_ERR_RUNT] = "runt",
		[SP_PKT_ERR_VLAN_TRUNCATED] = "vlan_truncated",
		[SP_PKT_ERR_VLAN_TOO_DEEP] = "vlan_too_deep",
		[SP_PKT_ERR_ARP_TRUNCATED] = "arp_truncated",
		[SP_PKT_ERR_IPV4_TRUNCATED] = "ipv4_truncated",
		[SP_PKT_ERR_IPV4_BAD_HEADER] = "ipv4_bad_header",
		[SP_PKT_ERR_IPV6_TRUNCATED] = "ipv6_truncated",
		[SP_PKT_ERR_IPV6_BAD_HEADER] = "ipv6_bad_header",
		[SP_PKT_ERR_L4_TRUNCATED] = "l4_truncated",
		[SP_PKT_ERR_TCP_BAD_OFFSET] = "tcp_bad_offset",
	};
	unsigned int i;

	(void)state;
	/* a new error added to the X-macro must be added here too */
	assert_int_equal(sizeof(want) / sizeof(want[0]), SP_PKT_ERR_MAX);
	for (i = 0; i < SP_PKT_ERR_MAX; i++) {
		assert_non_null(want[i]);
		assert_string_equal(sp_pkt_err_name(i), want[i]);
	}
	assert_string_equal(sp_pkt_err_name(SP_PKT_ERR_MAX), "unknown");
	assert_string_equal(sp_pkt_err_name(255), "unknown");
	assert_string_equal(sp_pkt_err_name(UINT_MAX), "unknown");
}

/* A chained (jumbo) frame: only the first segment is readable, lengths refer to the frame. */
static void
test_partial_chained(void **state)
{
	static uint8_t b[9018];
	struct sp_pkt_info pi;
	size_t off = 0, frame = sizeof(b);
	uint8_t *copy;

	(void)state;
	memset(b, 0, sizeof(b));
	off += put_eth(b, 0x0800);
	off += put_ipv4(b + off, 5, (uint16_t)(frame - 14), 0, 17);
	off += put_udp(b + off, 4000, 53, (uint16_t)(frame - 34));
	/* only the first 2048 bytes exist in memory: an exact-size heap copy catches overreads */
	copy = malloc(2048);
	assert_non_null(copy);
	memcpy(copy, b, 2048);
	assert_int_equal(sp_pkt_parse_partial(copy, 2048, (uint32_t)frame, &pi), 0);
	assert_int_equal(pi.err, SP_PKT_ERR_NONE);
	assert_int_equal(pi.l3, SP_L3_IPV4);
	assert_int_equal(pi.l4, SP_L4_UDP);
	assert_int_equal(pi.l3_end, frame);
	assert_int_equal(pi.dport, 53);
	/* the same bytes parsed as a whole frame of 2048 bytes are truncated */
	assert_int_equal(sp_pkt_parse(copy, 2048, &pi), -EINVAL);
	assert_int_equal(pi.err, SP_PKT_ERR_IPV4_TRUNCATED);
	/* total length beyond even the full frame is still caught */
	assert_int_equal(sp_pkt_parse_partial(copy, 2048, 4000, &pi), -EINVAL);
	assert_int_equal(pi.err, SP_PKT_ERR_IPV4_TRUNCATED);
	/* L4 header not in the readable part: left unparsed, no error */
	assert_int_equal(sp_pkt_parse_partial(copy, 36, (uint32_t)frame, &pi), 0);
	assert_int_equal(pi.l4, SP_L4_NONE);
	/* avail larger than the frame is clamped to it */
	assert_int_equal(sp_pkt_parse_partial(copy, 2048, 20, &pi), -EINVAL);
	assert_int_equal(pi.err, SP_PKT_ERR_IPV4_TRUNCATED);
	free(copy);

	/* IPv6 whose extension chain continues past the readable part */
	memset(b, 0, sizeof(b));
	off = put_eth(b, 0x86dd);
	off += put_ipv6(b + off, (uint16_t)(frame - 54), 0);
	off += put_ext(b + off, 60, 0);
	off += put_ext(b + off, 17, 0);
	copy = malloc(64);
	assert_non_null(copy);
	memcpy(copy, b, 64);
	assert_int_equal(sp_pkt_parse_partial(copy, 64, (uint32_t)frame, &pi), 0);
	assert_int_equal(pi.l3, SP_L3_IPV6);
	assert_int_equal(pi.l4, SP_L4_NONE);
	free(copy);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_tcp),
		cmocka_unit_test(test_ipv4_tcp_options),
		cmocka_unit_test(test_ipv4_udp),
		cmocka_unit_test(test_ipv4_icmp),
		cmocka_unit_test(test_ipv4_other_proto),
		cmocka_unit_test(test_ipv4_fragments),
		cmocka_unit_test(test_ipv4_bad_headers),
		cmocka_unit_test(test_ipv4_padding),
		cmocka_unit_test(test_tcp_bad_offset),
		cmocka_unit_test(test_l4_truncated),
		cmocka_unit_test(test_truncate_ipv4_tcp),
		cmocka_unit_test(test_truncate_ipv4_tcp_consistent_len),
		cmocka_unit_test(test_truncate_qinq_udp),
		cmocka_unit_test(test_truncate_ipv6_tcp),
		cmocka_unit_test(test_arp),
		cmocka_unit_test(test_other_ethertype_and_runt),
		cmocka_unit_test(test_vlan_single),
		cmocka_unit_test(test_vlan_qinq),
		cmocka_unit_test(test_vlan_too_deep),
		cmocka_unit_test(test_ipv6_tcp),
		cmocka_unit_test(test_ipv6_udp_icmpv6),
		cmocka_unit_test(test_ipv6_fragments),
		cmocka_unit_test(test_ipv6_ext_chain),
		cmocka_unit_test(test_ipv6_bad_headers),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_err_names),
		cmocka_unit_test(test_partial_chained),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
