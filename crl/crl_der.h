/* The few DER encodings a CRL needs, written into bounded buffers (crl_der.c). */
#ifndef HSMCA_CRL_DER_H
#define HSMCA_CRL_DER_H

#include <stddef.h>
#include <stdint.h>

struct der {
	uint8_t *p;
	size_t len, cap;
	int overflow; /* set once something did not fit; everything after is dropped */
};

void der_init(struct der *d, uint8_t *buf, size_t cap);
void der_raw(struct der *d, const void *b, size_t n);
/* Tag and length header. */
void der_hdr(struct der *d, uint8_t tag, size_t len);
/* Bytes of a tag and length header for a content of len bytes. */
size_t der_hdr_size(size_t len);
/* A whole element: tag, length, content. */
void der_tlv(struct der *d, uint8_t tag, const void *content, size_t len);
/* INTEGER from an unsigned big-endian magnitude (leading zero bytes dropped, one added when
 * the top bit is set), and from a non-negative int64. */
void der_uint_bytes(struct der *d, const uint8_t *mag, size_t len);
void der_int64(struct der *d, int64_t v);
/* Time as RFC 5280 wants it: UTCTime through 2049, GeneralizedTime after (or always when
 * generalized is set, as for invalidityDate). -1 in d->overflow for a time X.509 cannot
 * express. */
void der_time(struct der *d, int64_t t, int generalized);

/* Reading. A cursor over a buffer; every read is bounded by it. */
struct der_in {
	const uint8_t *p;
	size_t len;
};
/* Read one element's tag and content; 0, or -1 when it does not parse or is not tag. */
int der_get(struct der_in *in, uint8_t tag, struct der_in *content);
/* Parse a length after the tag byte at buf: *hdr (tag + length bytes) and *len; 0 or -1
 * (needs at most 6 bytes of buf). */
int der_parse_hdr(const uint8_t *buf, size_t avail, uint8_t *tag, size_t *hdr, uint64_t *len);
/* Time (UTCTime or GeneralizedTime, Z only, seconds) to seconds since the epoch. */
int der_get_time(struct der_in *in, int64_t *t);
/* INTEGER that fits a non-negative int64. */
int der_get_int64(struct der_in *in, int64_t *v);

#endif
