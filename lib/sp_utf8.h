/* Bytes read as UTF-8 the way Python decodes them with errors="replace": a byte-at-a-time decoder
 * that passes well-formed characters through and turns each maximal ill-formed subsequence into
 * U+FFFD (no DPDK). */
#ifndef SP_UTF8_H
#define SP_UTF8_H

#include <stdint.h>
#include <string.h>

struct sp_utf8 {
	uint8_t seq[4]; /* the character being read */
	uint8_t have;	/* bytes of it so far */
	uint8_t need;	/* continuation bytes still wanted */
	uint8_t lo, hi; /* the range the next continuation byte must be in */
};

#define SP_UTF8_OUT_MAX 6 /* bytes one sp_utf8_push() may give: U+FFFD, then U+FFFD or a byte */

static inline void
sp_utf8_init(struct sp_utf8 *u)
{
	memset(u, 0, sizeof(*u));
	u->lo = 0x80;
	u->hi = 0xbf;
}

static inline unsigned int
sp_utf8_fffd(uint8_t *out)
{
	out[0] = 0xef;
	out[1] = 0xbf;
	out[2] = 0xbd;
	return 3;
}

/*
 * Feed byte c; out (SP_UTF8_OUT_MAX bytes) gets what is decided so far, in UTF-8: nothing (a
 * character is being read), a whole character, or U+FFFD for a sequence c broke off followed by
 * what c itself gives. Returns the bytes written.
 */
static inline unsigned int
sp_utf8_push(struct sp_utf8 *u, uint8_t c, uint8_t *out)
{
	unsigned int n = 0;

	if (u->need > 0) {
		if (c >= u->lo && c <= u->hi) {
			u->seq[u->have++] = c;
			u->lo = 0x80;
			u->hi = 0xbf;
			if (--u->need > 0)
				return 0;
			memcpy(out, u->seq, u->have);
			n = u->have;
			u->have = 0;
			return n;
		}
		/* the sequence so far is one U+FFFD; c starts anew */
		n = sp_utf8_fffd(out);
		u->have = u->need = 0;
		u->lo = 0x80;
		u->hi = 0xbf;
	}
	if (c < 0x80) {
		out[n] = c;
		return n + 1;
	}
	if (c < 0xc2 || c > 0xf4)
		return n + sp_utf8_fffd(out + n);
	u->seq[0] = c;
	u->have = 1;
	if (c < 0xe0) {
		u->need = 1;
	} else if (c < 0xf0) {
		u->need = 2;
		if (c == 0xe0)
			u->lo = 0xa0; /* no overlong forms */
		else if (c == 0xed)
			u->hi = 0x9f; /* no surrogates */
	} else {
		u->need = 3;
		if (c == 0xf0)
			u->lo = 0x90; /* no overlong forms */
		else if (c == 0xf4)
			u->hi = 0x8f; /* nothing beyond U+10FFFF */
	}
	return n;
}

/* The end of the input: U+FFFD for a character left unfinished. Returns the bytes written. */
static inline unsigned int
sp_utf8_finish(struct sp_utf8 *u, uint8_t *out)
{
	unsigned int n = u->need > 0 ? sp_utf8_fffd(out) : 0;

	sp_utf8_init(u);
	return n;
}

#endif /* SP_UTF8_H */
