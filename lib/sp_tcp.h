/* TCP helpers for the worker's TCP endpoint and splice: incremental checksums (RFC 1624), option
 * parsing, SYN-ACK options, MSS clamping. */
#ifndef SP_TCP_H
#define SP_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Incremental Internet checksum update (RFC 1624, eqn. 3): the header checksum after a 16-bit
 * field changed from old to new. Every value as it sits in the packet (read with memcpy into a
 * uint16_t/uint32_t): one's complement sums give the same bytes in either byte order.
 */
uint16_t sp_csum_update16(uint16_t csum, uint16_t old, uint16_t new);

/* The same for a 32-bit field (a sequence or acknowledgment number, an IPv4 address). */
uint16_t sp_csum_update32(uint16_t csum, uint32_t old, uint32_t new);

/* The Internet checksum of len bytes (the one's complement of the one's complement sum). */
uint16_t sp_csum(const void *data, size_t len);

#define SP_TCP_OPT_EOL 0
#define SP_TCP_OPT_NOP 1
#define SP_TCP_OPT_MSS 2
#define SP_TCP_OPT_WSCALE 3
#define SP_TCP_OPT_SACK_PERM 4
#define SP_TCP_OPT_SACK 5
#define SP_TCP_OPT_TIMESTAMP 8
#define SP_TCP_MAX_OPT_LEN 40 /* data offset 15 words - 5 */
#define SP_TCP_MAX_SACK_BLOCKS 4

/* What a segment's options say (values in host byte order). */
struct sp_tcp_opts {
	uint16_t mss; /* 0: absent */
	uint8_t wscale;
	bool has_mss;
	bool has_wscale;
	bool sack_ok;
	bool has_ts;
	uint8_t sack_blocks; /* SACK blocks present (offsets in sack_off) */
	uint32_t ts_val;
	uint32_t ts_ecr;
	uint8_t mss_off; /* offset of the MSS value in the options, if any */
	uint8_t sack_off[SP_TCP_MAX_SACK_BLOCKS]; /* offset of each block's left edge */
};

/* Why options are malformed (counted by the workers; the segment is then treated per rule). */
enum sp_tcp_opt_error {
	SP_TCP_OPT_OK = 0,
	SP_TCP_OPT_TRUNCATED = -1,  /* a kind without its length byte, or a length past the end */
	SP_TCP_OPT_BAD_LENGTH = -2, /* length < 2, or wrong for a known kind */
};

/* Parses len (<= 40) bytes of options. Unknown kinds are skipped by their length. */
int sp_tcp_parse_opts(const uint8_t *opt, size_t len, struct sp_tcp_opts *out);

/*
 * Writes the options of our SYN-ACK: MSS, then window scale (if the VM offered it: our_wscale),
 * SACK-permitted (if the VM offered it), padded with NOPs to a multiple of 4. Returns the length
 * written (at most 12 bytes; buf must hold 12).
 */
size_t sp_tcp_write_synack_opts(uint8_t *buf, uint16_t mss, bool wscale, uint8_t our_wscale,
				bool sack_ok);

/*
 * Lowers an MSS option above mss to mss, in place, updating the TCP checksum *csum (as it sits
 * in the header) incrementally. opt must start at an even offset from the TCP header (options
 * always do: byte 20). Returns 1 if it changed the option, 0 if there was none or it was lower,
 * a negative enum sp_tcp_opt_error for malformed options (left as they are).
 */
int sp_tcp_clamp_mss(uint8_t *opt, size_t len, uint16_t mss, uint16_t *csum);

#endif /* SP_TCP_H */
