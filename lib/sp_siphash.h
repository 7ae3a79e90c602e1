/* SipHash-2-4 (Aumasson & Bernstein): the keyed hash behind SYN cookies and other secrets in the
 * fast path. */
#ifndef SP_SIPHASH_H
#define SP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* A 128-bit SipHash key, as the two little-endian 64-bit halves of its 16 bytes. */
struct sp_siphash_key {
	uint64_t k0;
	uint64_t k1;
};

/* The key from 16 bytes (byte order as in the SipHash paper's test vectors). */
void sp_siphash_key_from_bytes(struct sp_siphash_key *key, const uint8_t bytes[16]);

/* SipHash-2-4 of len bytes at data: the 64-bit result (the paper's output read little-endian). */
uint64_t sp_siphash24(const struct sp_siphash_key *key, const void *data, size_t len);

#endif /* SP_SIPHASH_H */
