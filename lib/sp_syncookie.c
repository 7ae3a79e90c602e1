/* TCP SYN cookies: encode the SYN's options in our ISN with keyed SipHash-2-4, check the ACK that
 * completes the handshake. */
#include "sp_syncookie.h"

#include <string.h>

#define COOKIE_BITS 24
#define COOKIE_MASK ((1u << COOKIE_BITS) - 1)
#define COUNT_MASK (0xffffffffu >> COOKIE_BITS)

/* data bits: MSS index 0..2, window scale 3..6, SACK 7 (8 bits of the 24) */
#define DATA_MSS_SHIFT 0
#define DATA_WSCALE_SHIFT 3
#define DATA_SACK_SHIFT 7
#define DATA_LIMIT (1u << 8)

/* 536: the default; 1220: IPv6 minimum MTU with tunnels; 1440/1460: Ethernet; 8960: jumbo */
const uint16_t sp_syncookie_mss_table[SP_SYNCOOKIE_MSS_COUNT] = {536,  1220, 1300, 1360,
								 1400, 1440, 1460, 8960};

/* tuple (+ count) as hash input: addresses, ports, count; 16 + 4 bytes for IPv4, 40 for IPv6 */
static uint64_t
tuple_hash(const struct sp_siphash_key *key, const struct sp_syncookie_tuple *t, uint32_t count,
	   int with_count)
{
	uint8_t in[16 + 16 + 2 + 2 + 4];
	size_t alen = t->ipv6 ? 16 : 4, n = 0;

	memcpy(in + n, t->src, alen);
	n += alen;
	memcpy(in + n, t->dst, alen);
	n += alen;
	memcpy(in + n, &t->sport, 2);
	n += 2;
	memcpy(in + n, &t->dport, 2);
	n += 2;
	if (with_count) {
		memcpy(in + n, &count, 4);
		n += 4;
	}
	return sp_siphash24(key, in, n);
}

uint32_t
sp_syncookie_make(const struct sp_syncookie_keys *keys, const struct sp_syncookie_tuple *t,
		  uint32_t client_isn, uint32_t count, const struct sp_syncookie_opts *syn,
		  uint16_t mss_clamp, struct sp_syncookie_opts *chosen)
{
	uint16_t mss = syn->mss ? syn->mss : 536;
	uint32_t idx = 0, data, wscale;

	if (mss_clamp && mss > mss_clamp)
		mss = mss_clamp;
	while (idx + 1 < SP_SYNCOOKIE_MSS_COUNT && sp_syncookie_mss_table[idx + 1] <= mss)
		idx++;
	wscale = syn->wscale == SP_SYNCOOKIE_NO_WSCALE ? SP_SYNCOOKIE_NO_WSCALE
		 : syn->wscale > 14		       ? 14
						       : syn->wscale;
	data = idx << DATA_MSS_SHIFT | wscale << DATA_WSCALE_SHIFT |
	       (uint32_t) !!syn->sack_ok << DATA_SACK_SHIFT;
	if (chosen) {
		chosen->mss = sp_syncookie_mss_table[idx];
		chosen->wscale = (uint8_t)wscale;
		chosen->sack_ok = syn->sack_ok;
	}
	return (uint32_t)tuple_hash(&keys->h1, t, 0, 0) + client_isn + (count << COOKIE_BITS) +
	       (((uint32_t)tuple_hash(&keys->h2, t, count, 1) + data) & COOKIE_MASK);
}

enum sp_syncookie_verdict
sp_syncookie_check(const struct sp_syncookie_keys *keys, const struct sp_syncookie_tuple *t,
		   uint32_t client_isn, uint32_t cookie, uint32_t count,
		   struct sp_syncookie_opts *out)
{
	uint32_t v = cookie - (uint32_t)tuple_hash(&keys->h1, t, 0, 0) - client_isn;
	uint32_t made = (count - ((count - (v >> COOKIE_BITS)) & COUNT_MASK));
	uint32_t data = (v - (uint32_t)tuple_hash(&keys->h2, t, made, 1)) & COOKIE_MASK;

	/* our data field is 8 bits: the other 16 must come out zero */
	if (data >= DATA_LIMIT)
		return SP_SYNCOOKIE_FORGED;
	if (((count - made) & COUNT_MASK) >= SP_SYNCOOKIE_MAX_AGE)
		return SP_SYNCOOKIE_STALE;
	if (out) {
		out->mss = sp_syncookie_mss_table[(data >> DATA_MSS_SHIFT) & 7];
		out->wscale = (uint8_t)((data >> DATA_WSCALE_SHIFT) & 0xf);
		out->sack_ok = (data >> DATA_SACK_SHIFT) & 1;
	}
	return SP_SYNCOOKIE_OK;
}
