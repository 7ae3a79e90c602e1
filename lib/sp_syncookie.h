/* TCP SYN cookies for the worker's TCP endpoint: no state until a valid ACK (keyed SipHash, MSS
 * index and the VM's options in the cookie, time counter). */
#ifndef SP_SYNCOOKIE_H
#define SP_SYNCOOKIE_H

#include <stdbool.h>
#include <stdint.h>

#include "sp_siphash.h"

/*
 * The cookie is the ISN of our SYN-ACK (Linux's layout, with SipHash-2-4):
 *
 *   cookie = H1(tuple) + client_isn + (count << 24) + ((H2(tuple, count) + data) mod 2^24)
 *
 * count is the time in 64-second units (sp_syncookie_count), data holds what the SYN told us
 * that the ACK will not repeat: the MSS index (3 bits), the VM's window scale (4 bits, 15 = none)
 * and SACK-permitted (1 bit). We offer no TCP timestamps, so the handshake needs no other state.
 * A cookie is accepted while count is the current one or the one before (64..128 s).
 * H1 and H2 use two independent keys. A forged ACK passes with probability about 2^-23
 * (2 of 256 counts, 2^8 of 2^24 data values).
 */
#define SP_SYNCOOKIE_MAX_AGE 2 /* counts: the current one and the previous one */
#define SP_SYNCOOKIE_NO_WSCALE 15
#define SP_SYNCOOKIE_MSS_COUNT 8

/* The MSS values a cookie can carry (the largest not above what the VM offered is used). */
extern const uint16_t sp_syncookie_mss_table[SP_SYNCOOKIE_MSS_COUNT];

struct sp_syncookie_keys {
	struct sp_siphash_key h1;
	struct sp_siphash_key h2;
};

/* A connection's addresses, as on the wire (network byte order), from the VM's point of view. */
struct sp_syncookie_tuple {
	uint8_t src[16]; /* the VM's address (IPv4: first 4 bytes, the rest zero) */
	uint8_t dst[16]; /* the service's address */
	uint16_t sport;	 /* network byte order, as in the header */
	uint16_t dport;
	uint8_t ipv6; /* 0: IPv4, 1: IPv6 */
};

/* The VM's SYN options that the cookie keeps. */
struct sp_syncookie_opts {
	uint16_t mss;	/* MSS (0 in a SYN without the option: 536 is assumed) */
	uint8_t wscale; /* 0..14, or SP_SYNCOOKIE_NO_WSCALE */
	bool sack_ok;
};

enum sp_syncookie_verdict {
	SP_SYNCOOKIE_OK = 0,
	SP_SYNCOOKIE_STALE = -1,  /* made with our keys for this tuple, but too old */
	SP_SYNCOOKIE_FORGED = -2, /* not a cookie of ours for this tuple and ISN */
};

/* The time counter for a clock in seconds (any monotonic or wall clock: only differences count). */
static inline uint32_t
sp_syncookie_count(uint64_t seconds)
{
	return (uint32_t)(seconds >> 6);
}

/*
 * The cookie for a SYN with sequence number client_isn and options syn. mss_clamp caps the MSS
 * (our own MTU's MSS). chosen (may be NULL) gets what the cookie encodes: the MSS we use (a table
 * value), the VM's window scale (values above 14 are taken as 14, RFC 7323) and SACK.
 */
uint32_t sp_syncookie_make(const struct sp_syncookie_keys *keys, const struct sp_syncookie_tuple *t,
			   uint32_t client_isn, uint32_t count, const struct sp_syncookie_opts *syn,
			   uint16_t mss_clamp, struct sp_syncookie_opts *chosen);

/*
 * Checks the ACK that completes a handshake: client_isn = the ACK's seq - 1, cookie = its
 * ack - 1. On SP_SYNCOOKIE_OK, out gets the options the cookie was made with.
 */
enum sp_syncookie_verdict sp_syncookie_check(const struct sp_syncookie_keys *keys,
					     const struct sp_syncookie_tuple *t,
					     uint32_t client_isn, uint32_t cookie, uint32_t count,
					     struct sp_syncookie_opts *out);

#endif /* SP_SYNCOOKIE_H */
