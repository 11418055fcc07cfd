/* The bounded DER writer and strict reader (der.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "der.h"

void der_init(struct der *d, uint8_t *buf, size_t cap)
{
	d->p = buf;
	d->len = 0;
	d->cap = cap;
	d->overflow = 0;
}

void der_raw(struct der *d, const void *b, size_t n)
{
	if (d->overflow || n > d->cap - d->len) {
		d->overflow = 1;
		return;
	}
	memcpy(d->p + d->len, b, n);
	d->len += n;
}

size_t der_hdr_size(size_t len)
{
	size_t n = 2;

	if (len < 0x80)
		return n;
	for (; len; len >>= 8)
		n++;
	return n;
}

void der_hdr(struct der *d, uint8_t tag, size_t len)
{
	uint8_t b[10];
	size_t n = 0, k = 0;

	b[n++] = tag;
	if (len < 0x80) {
		b[n++] = (uint8_t)len;
	} else {
		for (size_t v = len; v; v >>= 8)
			k++;
		b[n++] = (uint8_t)(0x80 | k);
		for (size_t i = k; i > 0; i--)
			b[n++] = (uint8_t)(len >> (8 * (i - 1)));
	}
	der_raw(d, b, n);
}

void der_tlv(struct der *d, uint8_t tag, const void *content, size_t len)
{
	der_hdr(d, tag, len);
	der_raw(d, content, len);
}

void der_uint_bytes(struct der *d, const uint8_t *mag, size_t len)
{
	static const uint8_t zero = 0;

	while (len > 1 && mag[0] == 0) {
		mag++;
		len--;
	}
	if (len == 0) {
		der_tlv(d, 0x02, &zero, 1);
		return;
	}
	der_hdr(d, 0x02, len + (mag[0] & 0x80 ? 1 : 0));
	if (mag[0] & 0x80)
		der_raw(d, &zero, 1);
	der_raw(d, mag, len);
}

void der_int64(struct der *d, int64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)v >> (8 * (7 - i)));
	der_uint_bytes(d, b, 8);
}

void der_time(struct der *d, int64_t t, int generalized)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char s[32];

	if (t < 0 || t > 253402300799LL || !gmtime_r(&tt, &tm)) {
		d->overflow = 1;
		return;
	}
	if (!generalized && tm.tm_year + 1900 >= 1950 && tm.tm_year + 1900 < 2050) {
		snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100, tm.tm_mon + 1,
		         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		der_tlv(d, 0x17, s, 13);
	} else {
		snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		der_tlv(d, 0x18, s, 15);
	}
}

int der_parse_hdr(const uint8_t *buf, size_t avail, uint8_t *tag, size_t *hdr, uint64_t *len)
{
	size_t k;

	if (avail < 2)
		return -1;
	*tag = buf[0];
	if ((buf[0] & 0x1f) == 0x1f) /* no high tag numbers in what hsmca reads */
		return -1;
	if (buf[1] < 0x80) {
		*hdr = 2;
		*len = buf[1];
		return 0;
	}
	k = buf[1] & 0x7f;
	if (k == 0 || k > 4 || avail < 2 + k || buf[2] == 0)
		return -1; /* indefinite, over 4 GiB, or not minimal */
	*len = 0;
	for (size_t i = 0; i < k; i++)
		*len = *len << 8 | buf[2 + i];
	if (*len < 0x80)
		return -1;
	*hdr = 2 + k;
	return 0;
}

int der_get(struct der_in *in, uint8_t tag, struct der_in *content)
{
	uint8_t t;
	size_t h;
	uint64_t l;

	if (der_parse_hdr(in->p, in->len, &t, &h, &l) != 0 || t != tag || l > in->len - h)
		return -1;
	content->p = in->p + h;
	content->len = (size_t)l;
	in->p += h + l;
	in->len -= h + l;
	return 0;
}

int der_peek(const struct der_in *in, uint8_t tag)
{
	return in->len > 0 && in->p[0] == tag;
}

static int digits(const uint8_t *p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (p[i] - '0');
	}
	return 0;
}

int der_get_time(struct der_in *in, int64_t *t)
{
	struct der_in c;
	struct tm tm = {0};
	const uint8_t *s;
	int y, mo, d, h, mi, se, off;

	if (in->len && in->p[0] == 0x17) {
		if (der_get(in, 0x17, &c) || c.len != 13 || digits(c.p, 2, &y))
			return -1;
		y += y < 50 ? 2000 : 1900;
		off = 2;
	} else {
		if (der_get(in, 0x18, &c) || c.len != 15 || digits(c.p, 4, &y))
			return -1;
		off = 4;
	}
	s = c.p + off;
	if (digits(s, 2, &mo) || digits(s + 2, 2, &d) || digits(s + 4, 2, &h) ||
	    digits(s + 6, 2, &mi) || digits(s + 8, 2, &se) || s[10] != 'Z' || mo < 1 || mo > 12 ||
	    d < 1 || d > 31 || h > 23 || mi > 59 || se > 59)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*t = (int64_t)timegm(&tm);
	return 0;
}

int der_get_int64(struct der_in *in, int64_t *v)
{
	struct der_in c;
	uint64_t u = 0;

	if (der_get(in, 0x02, &c) || c.len == 0 || c.len > 9 || (c.p[0] & 0x80))
		return -1;
	if (c.len == 9 && c.p[0] != 0)
		return -1;
	for (size_t i = 0; i < c.len; i++)
		u = u << 8 | c.p[i];
	if (u > INT64_MAX)
		return -1;
	*v = (int64_t)u;
	return 0;
}
