/* The object cache's HTTP pieces: response heads, HTTP dates, ETags, conditions, stored heads. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "sp_cache_http.h"

/* Helpers */

static inline unsigned char
sp_ch_lower(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 'A' && u <= 'Z' ? (unsigned char)(u + ('a' - 'A')) : u;
}

/* ASCII case-insensitive comparison of s[0, n) with the lower-case string lc. */
static bool
sp_ch_ieq(const char *s, size_t n, const char *lc)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lc[i] == '\0' || sp_ch_lower(s[i]) != (unsigned char)lc[i])
			return false;
	return lc[n] == '\0';
}

static inline bool
sp_ch_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 9110 tchar. */
static bool
sp_ch_is_tchar(char c)
{
	unsigned char u = (unsigned char)c;

	if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z'))
		return true;
	return u != 0 && strchr("!#$%&'*+-.^_`|~", u) != NULL;
}

/* Field value byte: VCHAR, obs-text, SP, HTAB. */
static inline bool
sp_ch_is_value(char c)
{
	unsigned char u = (unsigned char)c;

	return u == '\t' || (u >= 0x20 && u != 0x7f);
}

/* Python's str.isspace() of a byte decoded as ISO-8859-1 (how http.server reads headers). */
static inline bool
sp_ch_is_pyspace(char c)
{
	unsigned char u = (unsigned char)c;

	return (u >= 0x09 && u <= 0x0d) || (u >= 0x1c && u <= 0x20) || u == 0x85 || u == 0xa0;
}

/* Response head */

/* "HTTP/1.x DDD reason" in buf[s, e). */
static int
sp_resp_status_line(const char *buf, uint32_t s, uint32_t e, struct sp_http_resp *r)
{
	const char *p = buf + s;
	uint32_t n = e - s, i;

	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
		return -EINVAL;
	for (i = 9; i < 12; i++)
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
	if (p[9] == '0')
		return -EINVAL;
	r->version = p[7] == '1' ? 11 : 10;
	r->status = (uint16_t)((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
	r->reason.off = e;
	r->reason.len = 0;
	if (n == 12) /* no SP nor reason: tolerated */
		return 0;
	if (p[12] != ' ')
		return -EINVAL;
	for (i = 13; i < n; i++)
		if (!sp_ch_is_value(p[i]))
			return -EINVAL;
	r->reason.off = s + 13;
	r->reason.len = n - 13;
	return 0;
}

/* Whether the list v[0, n) holds the element "close". */
static bool
sp_resp_conn_close(const char *v, uint32_t n)
{
	uint32_t i = 0, j, a, b;

	while (i <= n) {
		for (j = i; j < n && v[j] != ','; j++)
			;
		for (a = i; a < j && sp_ch_is_ows(v[a]); a++)
			;
		for (b = j; b > a && sp_ch_is_ows(v[b - 1]); b--)
			;
		if (sp_ch_ieq(v + a, b - a, "close"))
			return true;
		i = j + 1;
	}
	return false;
}

/* "name: value" in buf[s, e), e > s. */
static int
sp_resp_header_line(const char *buf, uint32_t s, uint32_t e, struct sp_http_resp *r)
{
	struct sp_http_header *h;
	uint32_t i = s, v, ve, k, nl;
	const char *name = buf + s;
	uint64_t cl = 0;

	while (i < e && sp_ch_is_tchar(buf[i])) /* obs-fold (leading SP/HTAB) fails here too */
		i++;
	if (i == s || i == e || buf[i] != ':')
		return -EINVAL;
	nl = i - s;
	for (v = i + 1; v < e && sp_ch_is_ows(buf[v]); v++)
		;
	for (ve = e; ve > v && sp_ch_is_ows(buf[ve - 1]); ve--)
		;
	for (k = v; k < ve; k++)
		if (!sp_ch_is_value(buf[k]))
			return -EINVAL;
	if (r->n_headers >= SP_HTTP_MAX_HEADERS)
		return -EINVAL;
	h = &r->headers[r->n_headers++];
	h->name.off = s;
	h->name.len = nl;
	h->value.off = v;
	h->value.len = ve - v;

	if (sp_ch_ieq(name, nl, "content-length")) {
		if (r->has_content_length || ve == v)
			return -EINVAL;
		for (k = v; k < ve; k++) {
			unsigned int d = (unsigned char)buf[k] - (unsigned int)'0';

			if (d > 9 || cl > (UINT64_MAX - d) / 10)
				return -EINVAL;
			cl = cl * 10 + d;
		}
		r->has_content_length = true;
		r->content_length = cl;
	} else if (sp_ch_ieq(name, nl, "transfer-encoding")) {
		r->chunked = true;
	} else if (sp_ch_ieq(name, nl, "connection")) {
		if (sp_resp_conn_close(buf + v, ve - v))
			r->conn_close = true;
	}
	return 0;
}

int
sp_http_parse_response(const char *buf, size_t len, size_t max, struct sp_http_resp *r)
{
	uint32_t window, s = 0, scan = 0, e;
	bool status_done = false;
	const char *lf;
	int rc;

	if (max > INT_MAX) /* the head length is returned as an int */
		max = INT_MAX;
	window = (uint32_t)(len < max ? len : max);
	memset(r, 0, offsetof(struct sp_http_resp, headers));

	while (scan < window && (lf = memchr(buf + scan, '\n', window - scan)) != NULL) {
		uint32_t eol = (uint32_t)(lf - buf);

		if (eol == s || buf[eol - 1] != '\r')
			return -EINVAL; /* bare LF */
		e = eol - 1;
		if (memchr(buf + s, '\0', e - s) != NULL || memchr(buf + s, '\r', e - s) != NULL)
			return -EINVAL; /* NUL, bare CR */
		if (!status_done) {
			rc = sp_resp_status_line(buf, s, e, r);
			status_done = true;
		} else if (e == s) {
			return (int)(eol + 1);
		} else {
			rc = sp_resp_header_line(buf, s, e, r);
		}
		if (rc != 0)
			return rc;
		s = scan = eol + 1;
	}
	/* max bytes seen without the end of the head */
	if (len >= max)
		return -EINVAL;
	return 0;
}

const char *
sp_http_resp_header(const char *buf, const struct sp_http_resp *r, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	unsigned int i, k;

	for (i = 0; i < r->n_headers; i++) {
		const struct sp_http_header *h = &r->headers[i];

		if (h->name.len != nl)
			continue;
		for (k = 0; k < nl; k++)
			if (sp_ch_lower(buf[h->name.off + k]) != sp_ch_lower(name[k]))
				break;
		if (k == nl) {
			*len = h->value.len;
			return buf + h->value.off;
		}
	}
	*len = 0;
	return NULL;
}

/* Dates: a port of email._parseaddr._parsedate_tz and datetime(...).timestamp() */

struct sp_dtok {
	const char *p;
	size_t n;
};

#define SP_DATE_TOKENS 8

static const char *const sp_date_months[] = {
	"jan", "feb",  "mar",  "apr",	 "may",	      "jun",	  "jul",      "aug",
	"sep", "oct",  "nov",  "dec",	 "january",   "february", "march",    "april",
	"may", "june", "july", "august", "september", "october",  "november", "december",
};

static const char *const sp_date_days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static const struct {
	const char *name; /* lower case */
	int off;	  /* as _parseaddr's table: hhmm */
} sp_date_zones[] = {
	{"ut", 0},     {"utc", 0},    {"gmt", 0},    {"z", 0},	    {"ast", -400},
	{"adt", -300}, {"est", -500}, {"edt", -400}, {"cst", -600}, {"cdt", -500},
	{"mst", -700}, {"mdt", -600}, {"pst", -800}, {"pdt", -700},
};

/* Month of t (1..12) or 0. */
static int
sp_date_month(struct sp_dtok t)
{
	unsigned int i;

	for (i = 0; i < sizeof(sp_date_months) / sizeof(sp_date_months[0]); i++)
		if (sp_ch_ieq(t.p, t.n, sp_date_months[i]))
			return (int)(i % 12) + 1;
	return 0;
}

static bool
sp_date_is_day(struct sp_dtok t)
{
	unsigned int i;

	for (i = 0; i < sizeof(sp_date_days) / sizeof(sp_date_days[0]); i++)
		if (sp_ch_ieq(t.p, t.n, sp_date_days[i]))
			return true;
	return false;
}

/* Python's int(str) (sign, digits, '_' between digits), saturating far beyond any date. */
#define SP_DATE_INT_SAT 1000000000000000LL

static bool
sp_date_int(struct sp_dtok t, int64_t *out)
{
	int64_t v = 0;
	size_t i = 0;
	bool neg = false, digit = false;

	if (t.n > 0 && (t.p[0] == '+' || t.p[0] == '-')) {
		neg = t.p[0] == '-';
		i = 1;
	}
	if (i == t.n)
		return false;
	for (; i < t.n; i++) {
		char c = t.p[i];

		if (c == '_') {
			/* only between two digits */
			if (!digit || i + 1 == t.n || t.p[i + 1] < '0' || t.p[i + 1] > '9')
				return false;
			digit = false;
			continue;
		}
		if (c < '0' || c > '9')
			return false;
		digit = true;
		if (v < SP_DATE_INT_SAT)
			v = v * 10 + (c - '0');
	}
	*out = neg ? -v : v;
	return true;
}

static inline bool
sp_date_ends(struct sp_dtok t, char c)
{
	return t.n > 0 && t.p[t.n - 1] == c;
}

/* Index of the first c in t, or -1. */
static long
sp_date_find(struct sp_dtok t, char c)
{
	const char *q = t.n ? memchr(t.p, c, t.n) : NULL;

	return q != NULL ? (long)(q - t.p) : -1;
}

/* Split t at every c into up to max pieces; returns the number of pieces (may exceed max). */
static unsigned int
sp_date_split(struct sp_dtok t, char c, struct sp_dtok *out, unsigned int max)
{
	unsigned int n = 0;
	size_t i, start = 0;

	for (i = 0; i <= t.n; i++) {
		if (i < t.n && t.p[i] != c)
			continue;
		if (n < max)
			out[n] = (struct sp_dtok){t.p + start, i - start};
		n++;
		start = i + 1;
	}
	return n;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
sp_days_from_civil(int64_t y, unsigned int m, unsigned int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool
sp_is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

int
sp_http_date_parse(const char *s, size_t len, int64_t *out)
{
	static const uint8_t mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	struct sp_dtok d[SP_DATE_TOKENS], dd, mm, yy, tm, tz, tmp, hms[3];
	unsigned int n = 0, k, np;
	int64_t year, day, hh, mi, ss, off = 0, v;
	bool has_off = false;
	int month;
	size_t i = 0, st;
	long c;

	/* data = data.split() */
	while (i < len) {
		while (i < len && sp_ch_is_pyspace(s[i]))
			i++;
		if (i == len)
			break;
		st = i;
		while (i < len && !sp_ch_is_pyspace(s[i]))
			i++;
		if (n < SP_DATE_TOKENS)
			d[n] = (struct sp_dtok){s + st, i - st};
		n++;
	}
	if (n == 0)
		return -EINVAL;
	if (n > SP_DATE_TOKENS) /* only the first 5 after the day name count */
		n = SP_DATE_TOKENS;
	/* a day name (or anything ending in ','), else what follows a ',' in the first word */
	if (sp_date_ends(d[0], ',') || sp_date_is_day(d[0])) {
		memmove(d, d + 1, (n - 1) * sizeof(d[0]));
		n--;
	} else {
		for (k = (unsigned int)d[0].n; k > 0 && d[0].p[k - 1] != ','; k--)
			;
		if (k > 0) {
			d[0].p += k;
			d[0].n -= k;
		}
	}
	if (n == 3) { /* RFC 850 */
		struct sp_dtok parts[3];

		if (sp_date_split(d[0], '-', parts, 3) == 3) {
			d[4] = d[2];
			d[3] = d[1];
			memcpy(d, parts, sizeof(parts));
			n = 5;
		}
	}
	if (n == 4) {
		tmp = d[3];
		c = sp_date_find(tmp, '+');
		if (c == -1)
			c = sp_date_find(tmp, '-');
		if (c > 0) {
			d[3] = (struct sp_dtok){tmp.p, (size_t)c};
			d[4] = (struct sp_dtok){tmp.p + c, tmp.n - (size_t)c};
		} else {
			d[4] = (struct sp_dtok){s, 0}; /* dummy zone */
		}
		n = 5;
	}
	if (n < 5)
		return -EINVAL;
	dd = d[0];
	mm = d[1];
	yy = d[2];
	tm = d[3];
	tz = d[4];
	if (dd.n == 0 || mm.n == 0 || yy.n == 0)
		return -EINVAL;
	month = sp_date_month(mm);
	if (month == 0) {
		tmp = dd;
		dd = mm;
		mm = tmp;
		month = sp_date_month(mm);
		if (month == 0)
			return -EINVAL;
	}
	if (sp_date_ends(dd, ','))
		dd.n--;
	if (sp_date_find(yy, ':') > 0) {
		tmp = yy;
		yy = tm;
		tm = tmp;
	}
	if (sp_date_ends(yy, ',')) {
		yy.n--;
		if (yy.n == 0)
			return -EINVAL;
	}
	/* str.isdigit(): ASCII digits and the Latin-1 superscripts 2, 3, 1 */
	if (yy.n == 0 || !((yy.p[0] >= '0' && yy.p[0] <= '9') || (unsigned char)yy.p[0] == 0xb2 ||
			   (unsigned char)yy.p[0] == 0xb3 || (unsigned char)yy.p[0] == 0xb9)) {
		tmp = yy;
		yy = tz;
		tz = tmp;
	}
	if (tm.n == 0)
		return -EINVAL;
	if (sp_date_ends(tm, ','))
		tm.n--;
	np = sp_date_split(tm, ':', hms, 3);
	if (np == 1 && sp_date_find(tm, '.') >= 0)
		np = sp_date_split(tm, '.', hms, 3);
	if (np == 2)
		hms[2] = (struct sp_dtok){"0", 1};
	else if (np != 3)
		return -EINVAL;
	if (!sp_date_int(yy, &year) || !sp_date_int(dd, &day) || !sp_date_int(hms[0], &hh) ||
	    !sp_date_int(hms[1], &mi) || !sp_date_int(hms[2], &ss))
		return -EINVAL;
	if (year < 100)
		year += year > 68 ? 1900 : 2000;

	/* the zone: a name, else a number (hhmm); "-0000" and anything else: none (naive, UTC) */
	for (k = 0; k < sizeof(sp_date_zones) / sizeof(sp_date_zones[0]); k++) {
		if (sp_ch_ieq(tz.p, tz.n, sp_date_zones[k].name)) {
			off = sp_date_zones[k].off;
			has_off = true;
			break;
		}
	}
	if (!has_off && sp_date_int(tz, &v) && !(v == 0 && tz.p[0] == '-')) {
		off = v;
		has_off = true;
	}
	if (off != 0) {
		int64_t a = off < 0 ? -off : off;

		a = (a / 100) * 3600 + (a % 100) * 60;
		off = off < 0 ? -a : a;
	}

	/* datetime()'s checks, then timezone()'s */
	if (year < 1 || year > 9999 || day < 1 ||
	    day > mdays[month - 1] + (month == 2 && sp_is_leap(year)) || hh < 0 || hh > 23 ||
	    mi < 0 || mi > 59 || ss < 0 || ss > 59)
		return -EINVAL;
	if (has_off && (off <= -86400 || off >= 86400))
		return -EINVAL;
	*out = sp_days_from_civil(year, (unsigned int)month, (unsigned int)day) * 86400 +
	       hh * 3600 + mi * 60 + ss - off;
	return 0;
}

/* Two decimal digits of v (0..99) at p. */
static inline void
sp_put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

void
sp_http_date_format(int64_t t, char out[SP_HTTP_DATE_LEN])
{
	static const char days[] = "SunMonTueWedThuFriSat";
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;
	time_t tt;

	/* four-digit years only: 1970-01-01 .. 9999-12-31 */
	if (t < 0)
		t = 0;
	if (t > 253402300799LL)
		t = 253402300799LL;
	tt = (time_t)t;
	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	memcpy(out, days + 3 * (tm.tm_wday % 7), 3);
	out[3] = ',';
	out[4] = ' ';
	sp_put2(out + 5, tm.tm_mday);
	out[7] = ' ';
	memcpy(out + 8, months + 3 * (tm.tm_mon % 12), 3);
	out[11] = ' ';
	sp_put2(out + 12, (tm.tm_year + 1900) / 100);
	sp_put2(out + 14, (tm.tm_year + 1900) % 100);
	out[16] = ' ';
	sp_put2(out + 17, tm.tm_hour);
	out[19] = ':';
	sp_put2(out + 20, tm.tm_min);
	out[22] = ':';
	sp_put2(out + 23, tm.tm_sec);
	memcpy(out + 25, " GMT", 4);
}

/* ETags and conditions */

/* s[0, n) with the characters c stripped from both ends (Python's str.strip(c)). */
static void
sp_strip_char(const char **s, size_t *n, char c)
{
	while (*n > 0 && (*s)[0] == c) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && (*s)[*n - 1] == c)
		(*n)--;
}

bool
sp_http_etag_matches(const char *hdr, size_t hlen, const char *etag, size_t elen)
{
	size_t i = 0, j, n;
	const char *t;

	sp_strip_char(&etag, &elen, '"');
	while (i <= hlen) {
		for (j = i; j < hlen && hdr[j] != ','; j++)
			;
		t = hdr + i;
		n = j - i;
		/* strip() (whitespace), removeprefix("W/"), strip('"') */
		while (n > 0 && sp_ch_is_pyspace(t[0])) {
			t++;
			n--;
		}
		while (n > 0 && sp_ch_is_pyspace(t[n - 1]))
			n--;
		if (n >= 2 && t[0] == 'W' && t[1] == '/') {
			t += 2;
			n -= 2;
		}
		sp_strip_char(&t, &n, '"');
		if ((n == 1 && t[0] == '*') || (n == elen && memcmp(t, etag, n) == 0))
			return true;
		i = j + 1;
	}
	return false;
}

enum sp_http_cond_rc
sp_http_conditions(const struct sp_http_conds *c, const char *etag, size_t elen, int64_t mtime)
{
	int64_t t;

	if (c->if_match != NULL) {
		if (!sp_http_etag_matches(c->if_match, c->if_match_len, etag, elen))
			return SP_HTTP_COND_FAILED_IF_MATCH;
	} else if (c->if_unmodified_since != NULL && mtime != INT64_MIN &&
		   sp_http_date_parse(c->if_unmodified_since, c->if_unmodified_since_len, &t) ==
			   0 &&
		   mtime > t) {
		return SP_HTTP_COND_FAILED_IF_UNMODIFIED_SINCE;
	}
	if (c->if_none_match != NULL)
		return sp_http_etag_matches(c->if_none_match, c->if_none_match_len, etag, elen)
			       ? SP_HTTP_COND_NOT_MODIFIED
			       : SP_HTTP_COND_GO;
	if (c->if_modified_since != NULL && mtime != INT64_MIN &&
	    sp_http_date_parse(c->if_modified_since, c->if_modified_since_len, &t) == 0 &&
	    mtime <= t)
		return SP_HTTP_COND_NOT_MODIFIED;
	return SP_HTTP_COND_GO;
}

/* Stored heads */

/* The mark of a header named name[0, n), -1 for a plain line, -2 for a line left out. */
static int
sp_tmpl_kind(const char *name, size_t n)
{
	if (sp_ch_ieq(name, n, "date"))
		return SP_CACHE_MARK_DATE;
	if (sp_ch_ieq(name, n, "x-amz-request-id"))
		return SP_CACHE_MARK_REQID;
	if (sp_ch_ieq(name, n, "x-amz-id-2"))
		return SP_CACHE_MARK_ID2;
	if (sp_ch_ieq(name, n, "content-length"))
		return SP_CACHE_MARK_LENGTH;
	if (sp_ch_ieq(name, n, "connection") || sp_ch_ieq(name, n, "keep-alive") ||
	    sp_ch_ieq(name, n, "transfer-encoding") || sp_ch_ieq(name, n, "proxy-connection"))
		return -2;
	return -1;
}

int
sp_cache_tmpl_build(const char *buf, const struct sp_http_resp *r, char *out, size_t cap,
		    struct sp_cache_tmpl_mark *marks, unsigned int *n_marks)
{
	size_t o = 0;
	unsigned int i, nm = 0;

	*n_marks = 0;
	if (!r->has_content_length)
		return -EINVAL;
	for (i = 0; i < r->n_headers; i++) {
		const struct sp_http_header *h = &r->headers[i];
		int kind = sp_tmpl_kind(buf + h->name.off, h->name.len);
		size_t need = h->name.len + 2 + (kind >= 0 ? 0 : h->value.len) + 2;

		if (kind == -2)
			continue;
		if (cap - o < need)
			return -ENOSPC;
		memcpy(out + o, buf + h->name.off, h->name.len);
		o += h->name.len;
		out[o++] = ':';
		out[o++] = ' ';
		if (kind >= 0) {
			if (nm == SP_CACHE_TMPL_MARKS || o > UINT16_MAX)
				return -ENOSPC;
			marks[nm].off = (uint16_t)o;
			marks[nm].kind = (uint8_t)kind;
			nm++;
		} else {
			memcpy(out + o, buf + h->value.off, h->value.len);
			o += h->value.len;
		}
		out[o++] = '\r';
		out[o++] = '\n';
	}
	if (o > INT_MAX)
		return -ENOSPC;
	*n_marks = nm;
	return (int)o;
}

/* Decimal digits of v at the end of buf[20]: returns where they start. */
static inline char *
sp_u64_dec(uint64_t v, char *end)
{
	char *p = end;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return p;
}

int
sp_cache_tmpl_render(char *out, size_t cap, const char *tmpl, size_t len,
		     const struct sp_cache_tmpl_mark *m, unsigned int n,
		     const struct sp_cache_tmpl_vals *v)
{
	char num[20], *dec = sp_u64_dec(v->length, num + sizeof(num));
	size_t o = 0, at = 0, decn = (size_t)(num + sizeof(num) - dec);
	unsigned int i;

	for (i = 0; i <= n; i++) {
		size_t end = i < n ? m[i].off : len, vn;
		const char *val;

		if (end < at || end > len)
			return -EINVAL;
		if (cap - o < end - at)
			return -ENOSPC;
		memcpy(out + o, tmpl + at, end - at);
		o += end - at;
		at = end;
		if (i == n)
			break;
		switch (m[i].kind) {
		case SP_CACHE_MARK_DATE:
			val = v->date;
			vn = SP_HTTP_DATE_LEN;
			break;
		case SP_CACHE_MARK_REQID:
			val = v->reqid;
			vn = 16;
			break;
		case SP_CACHE_MARK_ID2:
			val = v->id2;
			vn = 24;
			break;
		case SP_CACHE_MARK_LENGTH:
			val = dec;
			vn = decn;
			break;
		default:
			return -EINVAL;
		}
		if (cap - o < vn)
			return -ENOSPC;
		memcpy(out + o, val, vn);
		o += vn;
	}
	if (o > INT_MAX)
		return -ENOSPC;
	return (int)o;
}

void
sp_cache_id2(const char reqid[16], char out[24])
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *in = (const unsigned char *)reqid;
	unsigned int i, o = 0;
	uint32_t w;

	for (i = 0; i < 15; i += 3) {
		w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64[w >> 18];
		out[o++] = b64[(w >> 12) & 63];
		out[o++] = b64[(w >> 6) & 63];
		out[o++] = b64[w & 63];
	}
	w = (uint32_t)in[15] << 16;
	out[o++] = b64[w >> 18];
	out[o++] = b64[(w >> 12) & 63];
	out[o++] = '=';
	out[o] = '=';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

uint32_t
sp_cache_name(const char *path, uint32_t len, char *out, uint32_t cap)
{
	uint32_t i, o = 0;
	int hi, lo;

	for (i = 0; i < len; i++) {
		char c = path[i];

		if (c == '%' && i + 2 < len && (hi = hexval(path[i + 1])) >= 0 &&
		    (lo = hexval(path[i + 2])) >= 0) {
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o == cap)
			return 0;
		out[o++] = c;
	}
	return o;
}
