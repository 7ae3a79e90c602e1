/* Bounds-checked Ethernet/VLAN/ARP/IPv4/IPv6/L4 header parser (plain C11, no DPDK). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "sp_pkt.h"

#define SP_ETH_HLEN 14
#define SP_VLAN_HLEN 4
#define SP_ARP_LEN 28
#define SP_IPV4_MIN_HLEN 20
#define SP_IPV6_HLEN 40
#define SP_TCP_MIN_HLEN 20
#define SP_UDP_HLEN 8
#define SP_ICMP_MIN_HLEN 4

#define SP_ETHERTYPE_IPV4 0x0800
#define SP_ETHERTYPE_ARP 0x0806
#define SP_ETHERTYPE_VLAN 0x8100
#define SP_ETHERTYPE_QINQ 0x88a8
#define SP_ETHERTYPE_IPV6 0x86dd

#define SP_IPPROTO_HOPOPTS 0
#define SP_IPPROTO_ICMP 1
#define SP_IPPROTO_TCP 6
#define SP_IPPROTO_UDP 17
#define SP_IPPROTO_ROUTING 43
#define SP_IPPROTO_FRAGMENT 44
#define SP_IPPROTO_AH 51
#define SP_IPPROTO_ICMPV6 58
#define SP_IPPROTO_NONE 59
#define SP_IPPROTO_DSTOPTS 60

#define SP_IPV4_MF 0x2000
#define SP_IPV4_FRAG_OFF_MASK 0x1fff
#define SP_IPV6_FRAG_OFF_MASK 0xfff8

static const char *const sp_pkt_err_names[SP_PKT_ERR_MAX] = {
#define SP_PKT_ERR_NAME(e, s) [SP_PKT_ERR_##e] = s,
	SP_PKT_ERRORS(SP_PKT_ERR_NAME)
#undef SP_PKT_ERR_NAME
};

/* Big-endian 16-bit load; b must have 2 readable bytes. */
static inline uint16_t
sp_be16(const uint8_t *b)
{
	return (uint16_t)(((unsigned int)b[0] << 8) | b[1]);
}

static inline int
sp_is_vlan_tpid(uint16_t et)
{
	return et == SP_ETHERTYPE_VLAN || et == SP_ETHERTYPE_QINQ;
}

static inline int
sp_is_ipv6_ext(uint8_t nh)
{
	switch (nh) {
	case SP_IPPROTO_HOPOPTS:
	case SP_IPPROTO_ROUTING:
	case SP_IPPROTO_DSTOPTS:
	case SP_IPPROTO_FRAGMENT:
	case SP_IPPROTO_AH:
		return 1;
	default:
		return 0;
	}
}

/* Ethernet header and up to SP_PKT_MAX_VLAN tags; sets ethertype, vlan_tci, n_vlan, *l3_off. */
static inline enum sp_pkt_err
sp_parse_l2(const uint8_t *p, uint32_t len, struct sp_pkt_info *info, uint32_t *l3_off)
{
	uint32_t off;
	uint16_t et;

	if (len < SP_ETH_HLEN)
		return SP_PKT_ERR_RUNT;
	et = sp_be16(p + 12);
	info->ethertype = et;
	off = SP_ETH_HLEN;
	while (sp_is_vlan_tpid(et)) {
		if (info->n_vlan >= SP_PKT_MAX_VLAN)
			return SP_PKT_ERR_VLAN_TOO_DEEP;
		if (len - off < SP_VLAN_HLEN)
			return SP_PKT_ERR_VLAN_TRUNCATED;
		info->vlan_tci[info->n_vlan++] = sp_be16(p + off);
		et = sp_be16(p + off + 2);
		info->ethertype = et;
		off += SP_VLAN_HLEN;
	}
	*l3_off = off;
	return SP_PKT_ERR_NONE;
}

/* IPv4 header at l3_off; sets ip_proto, is_fragment, l3_end; *l4_off = 0 if no L4 (non-first). */
static inline enum sp_pkt_err
sp_parse_ipv4(const uint8_t *p, uint32_t rd, uint32_t len, struct sp_pkt_info *info,
	      uint32_t l3_off, uint32_t *l4_off)
{
	const uint8_t *h = p + l3_off;
	uint32_t avail = rd - l3_off; /* readable header bytes */
	uint32_t hlen, tot_len;
	uint16_t frag;

	if (avail < SP_IPV4_MIN_HLEN)
		return SP_PKT_ERR_IPV4_TRUNCATED;
	if ((h[0] >> 4) != 4 || (h[0] & 0x0f) < 5)
		return SP_PKT_ERR_IPV4_BAD_HEADER;
	info->ip_proto = h[9];
	frag = sp_be16(h + 6);
	if ((frag & SP_IPV4_MF) != 0 || (frag & SP_IPV4_FRAG_OFF_MASK) != 0)
		info->is_fragment = 1;
	hlen = (uint32_t)(h[0] & 0x0f) * 4;
	if (hlen > avail)
		return SP_PKT_ERR_IPV4_TRUNCATED;
	tot_len = sp_be16(h + 2);
	if (tot_len < hlen)
		return SP_PKT_ERR_IPV4_BAD_HEADER;
	if (tot_len > len - l3_off)
		return SP_PKT_ERR_IPV4_TRUNCATED;
	info->l3_end = l3_off + tot_len;
	*l4_off = (frag & SP_IPV4_FRAG_OFF_MASK) != 0 ? 0 : l3_off + hlen;
	return SP_PKT_ERR_NONE;
}

/*
 * IPv6 header and extension chain at l3_off; sets ip_proto (final next header), is_fragment,
 * l3_end; *l4_off = 0 if there is no L4 header (non-first fragment, no next header).
 */
static inline enum sp_pkt_err
sp_parse_ipv6(const uint8_t *p, uint32_t rd, uint32_t len, struct sp_pkt_info *info,
	      uint32_t l3_off, uint32_t *l4_off)
{
	const uint8_t *h = p + l3_off;
	uint32_t avail = rd - l3_off; /* readable header bytes */
	uint32_t plen, end, off, ext_len;
	unsigned int n_ext = 0;
	uint8_t nh;

	if (avail < SP_IPV6_HLEN)
		return SP_PKT_ERR_IPV6_TRUNCATED;
	if ((h[0] >> 4) != 6)
		return SP_PKT_ERR_IPV6_BAD_HEADER;
	plen = sp_be16(h + 4);
	if (plen == 0) /* jumbogram (hop-by-hop jumbo payload option): not supported */
		return SP_PKT_ERR_IPV6_BAD_HEADER;
	if (SP_IPV6_HLEN + plen > len - l3_off)
		return SP_PKT_ERR_IPV6_TRUNCATED;
	end = l3_off + SP_IPV6_HLEN + plen;
	info->l3_end = end;
	nh = h[6];
	info->ip_proto = nh;
	off = l3_off + SP_IPV6_HLEN;
	while (sp_is_ipv6_ext(nh)) {
		const uint8_t *e = p + off;

		if (++n_ext > SP_PKT_MAX_IPV6_EXT)
			return SP_PKT_ERR_IPV6_BAD_HEADER;
		/* next header and length bytes (off <= end holds on every iteration) */
		if (end - off < 2)
			return SP_PKT_ERR_IPV6_TRUNCATED;
		if (rd < off + 2) /* chained frame: the rest of the chain is not readable here */
			break;
		if (nh == SP_IPPROTO_FRAGMENT)
			ext_len = 8;
		else if (nh == SP_IPPROTO_AH)
			ext_len = ((uint32_t)e[1] + 2) * 4;
		else
			ext_len = ((uint32_t)e[1] + 1) * 8;
		if (ext_len > end - off)
			return SP_PKT_ERR_IPV6_TRUNCATED;
		if (rd < off + ext_len)
			break;
		if (nh == SP_IPPROTO_FRAGMENT) {
			info->is_fragment = 1;
			if ((sp_be16(e + 2) & SP_IPV6_FRAG_OFF_MASK) != 0) {
				/* non-first fragment: the upper-layer header is elsewhere */
				info->ip_proto = e[0];
				*l4_off = 0;
				return SP_PKT_ERR_NONE;
			}
		}
		nh = e[0];
		info->ip_proto = nh;
		off += ext_len;
	}
	*l4_off = nh == SP_IPPROTO_NONE || sp_is_ipv6_ext(nh) ? 0 : off;
	return SP_PKT_ERR_NONE;
}

/* TCP/UDP/ICMP/ICMPv6 header at l4_off, bounded by info->l3_end (not by the frame length). */
static inline enum sp_pkt_err
sp_parse_l4(const uint8_t *p, uint32_t rd, struct sp_pkt_info *info, uint32_t l4_off)
{
	const uint8_t *h = p + l4_off;
	uint32_t avail = info->l3_end - l4_off;
	uint32_t doff;

	/* chained frame whose L4 header is not in the readable part: leave L4 unparsed */
	if (rd < info->l3_end && rd < l4_off + SP_TCP_MIN_HLEN)
		return SP_PKT_ERR_NONE;

	info->l4_off = (uint16_t)l4_off;
	switch (info->ip_proto) {
	case SP_IPPROTO_TCP:
		info->l4 = SP_L4_TCP;
		if (avail < SP_TCP_MIN_HLEN)
			return SP_PKT_ERR_L4_TRUNCATED;
		info->sport = sp_be16(h);
		info->dport = sp_be16(h + 2);
		info->tcp_flags = h[13];
		doff = (uint32_t)(h[12] >> 4) * 4;
		if (doff < SP_TCP_MIN_HLEN || doff > avail)
			return SP_PKT_ERR_TCP_BAD_OFFSET;
		info->payload_off = (uint16_t)(l4_off + doff);
		return SP_PKT_ERR_NONE;
	case SP_IPPROTO_UDP:
		info->l4 = SP_L4_UDP;
		if (avail < SP_UDP_HLEN)
			return SP_PKT_ERR_L4_TRUNCATED;
		info->sport = sp_be16(h);
		info->dport = sp_be16(h + 2);
		info->payload_off = (uint16_t)(l4_off + SP_UDP_HLEN);
		return SP_PKT_ERR_NONE;
	case SP_IPPROTO_ICMP:
	case SP_IPPROTO_ICMPV6:
		/* ICMP only over IPv4, ICMPv6 only over IPv6; the other pairing is "other" */
		if ((info->ip_proto == SP_IPPROTO_ICMP) != (info->l3 == SP_L3_IPV4))
			break;
		info->l4 = info->l3 == SP_L3_IPV4 ? SP_L4_ICMP : SP_L4_ICMPV6;
		if (avail < SP_ICMP_MIN_HLEN)
			return SP_PKT_ERR_L4_TRUNCATED;
		info->sport = h[0]; /* type */
		info->dport = h[1]; /* code */
		info->payload_off = (uint16_t)(l4_off + SP_ICMP_MIN_HLEN);
		return SP_PKT_ERR_NONE;
	default:
		break;
	}
	info->l4 = SP_L4_OTHER;
	return SP_PKT_ERR_NONE;
}

static inline enum sp_pkt_err
sp_parse(const uint8_t *p, uint32_t rd, uint32_t len, struct sp_pkt_info *info)
{
	enum sp_pkt_err err;
	uint32_t l3_off = 0, l4_off = 0;

	err = sp_parse_l2(p, rd, info, &l3_off);
	if (err != SP_PKT_ERR_NONE)
		return err;
	info->l3_off = (uint16_t)l3_off;
	switch (info->ethertype) {
	case SP_ETHERTYPE_ARP:
		info->l3 = SP_L3_ARP;
		if (rd - l3_off < SP_ARP_LEN)
			return SP_PKT_ERR_ARP_TRUNCATED;
		info->l3_end = l3_off + SP_ARP_LEN;
		return SP_PKT_ERR_NONE;
	case SP_ETHERTYPE_IPV4:
		info->l3 = SP_L3_IPV4;
		err = sp_parse_ipv4(p, rd, len, info, l3_off, &l4_off);
		break;
	case SP_ETHERTYPE_IPV6:
		info->l3 = SP_L3_IPV6;
		err = sp_parse_ipv6(p, rd, len, info, l3_off, &l4_off);
		break;
	default:
		/* unknown L3: its extent is the rest of the frame */
		info->l3 = SP_L3_OTHER;
		info->l3_end = len;
		return SP_PKT_ERR_NONE;
	}
	if (err != SP_PKT_ERR_NONE || l4_off == 0)
		return err;
	return sp_parse_l4(p, rd, info, l4_off);
}

int
sp_pkt_parse_partial(const uint8_t *p, uint32_t avail, uint32_t len, struct sp_pkt_info *info)
{
	enum sp_pkt_err err;

	memset(info, 0, sizeof(*info));
	if (p == NULL)
		avail = len = 0;
	if (avail > len)
		avail = len;
	err = sp_parse(p, avail, len, info);
	info->err = (uint8_t)err;
	return err == SP_PKT_ERR_NONE ? 0 : -EINVAL;
}

int
sp_pkt_parse(const uint8_t *p, uint32_t len, struct sp_pkt_info *info)
{
	return sp_pkt_parse_partial(p, len, len, info);
}

const char *
sp_pkt_err_name(unsigned int err)
{
	if (err >= SP_PKT_ERR_MAX || sp_pkt_err_names[err] == NULL)
		return "unknown";
	return sp_pkt_err_names[err];
}
