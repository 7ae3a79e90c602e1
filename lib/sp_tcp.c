/* TCP helpers: RFC 1624 incremental checksums, bounds-checked option parsing, SYN-ACK options, MSS
 * clamping. */
#include "sp_tcp.h"

#include <string.h>

static inline uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One's complement sum folded to 16 bits. */
static inline uint16_t
fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/*
 * HC' = ~(~HC + ~m + m') (RFC 1624 eqn. 3). The fields are in network order, and so is the
 * checksum: one's complement arithmetic is byte-order independent as long as all are alike.
 */
uint16_t
sp_csum_update16(uint16_t csum, uint16_t old, uint16_t new)
{
	uint32_t sum = (uint16_t)~csum + (uint32_t)(uint16_t)~old + new;

	return (uint16_t)~fold(sum);
}

uint16_t
sp_csum_update32(uint16_t csum, uint32_t old, uint32_t new)
{
	uint32_t sum = (uint16_t)~csum;

	sum += (uint16_t) ~(old & 0xffff);
	sum += (uint16_t) ~(old >> 16);
	sum += new & 0xffff;
	sum += new >> 16;
	return (uint16_t)~fold(sum);
}

uint16_t
sp_csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	size_t i;

	/* summed in memory order (as 16-bit words read natively): the result is in that order */
	for (i = 0; i + 1 < len; i += 2) {
		uint16_t w;

		memcpy(&w, p + i, 2);
		sum += w;
		if (sum & 0x80000000u)
			sum = (sum & 0xffff) + (sum >> 16);
	}
	if (i < len) {
		uint16_t w = 0;

		memcpy(&w, p + i, 1);
		sum += w;
	}
	return (uint16_t)~fold(sum);
}

int
sp_tcp_parse_opts(const uint8_t *opt, size_t len, struct sp_tcp_opts *out)
{
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	if (len > SP_TCP_MAX_OPT_LEN)
		return SP_TCP_OPT_BAD_LENGTH;
	while (i < len) {
		uint8_t kind = opt[i], olen;

		if (kind == SP_TCP_OPT_EOL)
			break;
		if (kind == SP_TCP_OPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= len)
			return SP_TCP_OPT_TRUNCATED;
		olen = opt[i + 1];
		if (olen < 2)
			return SP_TCP_OPT_BAD_LENGTH;
		if (i + olen > len)
			return SP_TCP_OPT_TRUNCATED;
		switch (kind) {
		case SP_TCP_OPT_MSS:
			if (olen != 4)
				return SP_TCP_OPT_BAD_LENGTH;
			out->has_mss = true;
			out->mss = rd16(opt + i + 2);
			out->mss_off = (uint8_t)(i + 2);
			break;
		case SP_TCP_OPT_WSCALE:
			if (olen != 3)
				return SP_TCP_OPT_BAD_LENGTH;
			out->has_wscale = true;
			out->wscale = opt[i + 2];
			break;
		case SP_TCP_OPT_SACK_PERM:
			if (olen != 2)
				return SP_TCP_OPT_BAD_LENGTH;
			out->sack_ok = true;
			break;
		case SP_TCP_OPT_SACK:
			if (olen < 10 || (olen - 2) % 8 != 0)
				return SP_TCP_OPT_BAD_LENGTH;
			for (size_t b = 0; b < (size_t)(olen - 2) / 8; b++) {
				if (out->sack_blocks < SP_TCP_MAX_SACK_BLOCKS)
					out->sack_off[out->sack_blocks++] =
						(uint8_t)(i + 2 + 8 * b);
			}
			break;
		case SP_TCP_OPT_TIMESTAMP:
			if (olen != 10)
				return SP_TCP_OPT_BAD_LENGTH;
			out->has_ts = true;
			out->ts_val = rd32(opt + i + 2);
			out->ts_ecr = rd32(opt + i + 6);
			break;
		default:
			break;
		}
		i += olen;
	}
	return SP_TCP_OPT_OK;
}

size_t
sp_tcp_write_synack_opts(uint8_t *buf, uint16_t mss, bool wscale, uint8_t our_wscale, bool sack_ok)
{
	size_t n = 0;

	buf[n++] = SP_TCP_OPT_MSS;
	buf[n++] = 4;
	buf[n++] = (uint8_t)(mss >> 8);
	buf[n++] = (uint8_t)mss;
	if (wscale) {
		buf[n++] = SP_TCP_OPT_NOP;
		buf[n++] = SP_TCP_OPT_WSCALE;
		buf[n++] = 3;
		buf[n++] = our_wscale > 14 ? 14 : our_wscale;
	}
	if (sack_ok) {
		buf[n++] = SP_TCP_OPT_NOP;
		buf[n++] = SP_TCP_OPT_NOP;
		buf[n++] = SP_TCP_OPT_SACK_PERM;
		buf[n++] = 2;
	}
	return n;
}

/* The checksum after the byte at offset off (from a 16-bit aligned start) changed old -> new. */
static uint16_t
csum_update_byte(uint16_t csum, size_t off, uint8_t old, uint8_t new)
{
	uint8_t wo[2] = {0, 0}, wn[2] = {0, 0};
	uint16_t o, n;

	wo[off & 1] = old;
	wn[off & 1] = new;
	memcpy(&o, wo, 2);
	memcpy(&n, wn, 2);
	return sp_csum_update16(csum, o, n);
}

int
sp_tcp_clamp_mss(uint8_t *opt, size_t len, uint16_t mss, uint16_t *csum)
{
	struct sp_tcp_opts o;
	int rc = sp_tcp_parse_opts(opt, len, &o);

	if (rc < 0)
		return rc;
	if (!o.has_mss || o.mss <= mss)
		return 0;
	/* byte by byte: after NOPs the value may sit at an odd offset, across two checksum words */
	for (size_t k = 0; k < 2; k++) {
		uint8_t b = k == 0 ? (uint8_t)(mss >> 8) : (uint8_t)mss;

		*csum = csum_update_byte(*csum, o.mss_off + k, opt[o.mss_off + k], b);
		opt[o.mss_off + k] = b;
	}
	return 1;
}
