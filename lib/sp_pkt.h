/* Bounds-checked Ethernet/VLAN/IPv4/IPv6/L4 header parser for the fast path (no DPDK dependency).
 */
#ifndef SP_PKT_H
#define SP_PKT_H

#include <stdint.h>

/* What sits above Ethernet (after any VLAN tags). */
enum sp_pkt_l3 {
	SP_L3_NONE = 0, /* not reached (runt or truncated tags) */
	SP_L3_ARP,
	SP_L3_IPV4,
	SP_L3_IPV6,
	SP_L3_OTHER, /* any other ethertype: forwarded as is */
};

/* Transport protocol, when the L3 header was parsed and this is a first fragment. */
enum sp_pkt_l4 {
	SP_L4_NONE = 0,
	SP_L4_TCP,
	SP_L4_UDP,
	SP_L4_ICMP,
	SP_L4_ICMPV6,
	SP_L4_OTHER,
};

/*
 * Parse anomalies: one table of names, counted per worker. A frame with an anomaly is
 * still forwarded unless the forwarding rule says otherwise (only RUNT is dropped).
 */
#define SP_PKT_ERRORS(X)                                                                           \
	X(NONE, "none")			    /* parsed cleanly */                                   \
	X(RUNT, "runt")			    /* shorter than an Ethernet header */                  \
	X(VLAN_TRUNCATED, "vlan_truncated") /* VLAN tag cut short */                               \
	X(VLAN_TOO_DEEP, "vlan_too_deep")   /* more than SP_PKT_MAX_VLAN tags */                   \
	X(ARP_TRUNCATED, "arp_truncated")                                                          \
	X(IPV4_TRUNCATED, "ipv4_truncated")   /* header or total length beyond the frame */        \
	X(IPV4_BAD_HEADER, "ipv4_bad_header") /* version != 4, IHL < 5, total length < IHL */      \
	X(IPV6_TRUNCATED, "ipv6_truncated")                                                        \
	X(IPV6_BAD_HEADER, "ipv6_bad_header") /* version != 6, extension chain too long */         \
	X(L4_TRUNCATED, "l4_truncated")	      /* TCP/UDP/ICMP header beyond the L3 payload */      \
	X(TCP_BAD_OFFSET, "tcp_bad_offset")   /* data offset < 5 or beyond the payload */

enum sp_pkt_err {
#define SP_PKT_ERR_ENUM(e, s) SP_PKT_ERR_##e,
	SP_PKT_ERRORS(SP_PKT_ERR_ENUM)
#undef SP_PKT_ERR_ENUM
		SP_PKT_ERR_MAX
};

#define SP_PKT_MAX_VLAN 2
#define SP_PKT_MAX_IPV6_EXT 8

struct sp_pkt_info {
	uint16_t ethertype;		    /* innermost ethertype, host order (0 if not reached) */
	uint16_t vlan_tci[SP_PKT_MAX_VLAN]; /* host order, outer first */
	uint8_t n_vlan;
	uint8_t l3;	       /* enum sp_pkt_l3 */
	uint8_t l4;	       /* enum sp_pkt_l4 */
	uint8_t ip_proto;      /* IPv4 protocol / IPv6 final next header */
	uint8_t err;	       /* enum sp_pkt_err */
	uint8_t is_fragment;   /* IPv4/IPv6 fragment (any) */
	uint16_t l3_off;       /* offset of the L3 header (== L2 length incl. tags) */
	uint16_t l4_off;       /* offset of the L4 header (0 if none) */
	uint16_t payload_off;  /* offset of the L4 payload (0 if none) */
	uint32_t l3_end;       /* end of the L3 packet per its length field (<= frame length) */
	uint16_t sport, dport; /* TCP/UDP ports, host order; ICMP: type, code */
	uint8_t tcp_flags;
};

/*
 * Parse the frame at p (len bytes). Never reads outside [p, p + len).
 * Returns 0 when parsed cleanly, -EINVAL when an anomaly was found (info->err says which;
 * the fields parsed before it are valid).
 */
int sp_pkt_parse(const uint8_t *p, uint32_t len, struct sp_pkt_info *info);

/*
 * The same for a frame of len bytes of which only the first avail are readable (the first
 * segment of a chained mbuf): length fields are checked against len, reads stay below avail,
 * and headers beyond avail are left unparsed (no error).
 */
int sp_pkt_parse_partial(const uint8_t *p, uint32_t avail, uint32_t len, struct sp_pkt_info *info);

/* Name of an anomaly ("runt", ...); "unknown" for out-of-range values. */
const char *sp_pkt_err_name(unsigned int err);

#endif /* SP_PKT_H */
