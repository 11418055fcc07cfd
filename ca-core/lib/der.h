/*
 * der: the one bounded DER reader and writer of hsmca, for the few structures it reads or
 * writes by hand (OCSP requests, CRLs, EST CSR attributes) instead of through OpenSSL's ASN.1.
 *
 * Reading is strict: single-byte tags, definite lengths in the fewest bytes (indefinite and
 * non-minimal lengths are refused), lengths of at most four bytes, and every element inside
 * the bytes it was read from. Nothing allocates: what is read points into the caller's bytes.
 * Writing goes into a caller's fixed buffer; what does not fit marks the buffer as overflowed
 * instead of being written.
 */
#ifndef HSMCA_DER_H
#define HSMCA_DER_H

#include <stddef.h>
#include <stdint.h>

/* ---- writing ---- */

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
 * generalized is set, as for invalidityDate). Marks d overflowed for a time X.509 cannot
 * express. */
void der_time(struct der *d, int64_t t, int generalized);

/* ---- reading ---- */

/* A cursor over bytes; every read is bounded by it and advances it. */
struct der_in {
	const uint8_t *p;
	size_t len;
};

/* The header of the element at buf (avail bytes of it are readable): its tag, the header's
 * size (tag and length bytes) in *hdr and the content length in *len, which is not checked
 * against avail so that a stream can be read a piece at a time. 0, or -1 when the header is
 * not strict DER (needs at most 6 bytes of buf). */
int der_parse_hdr(const uint8_t *buf, size_t avail, uint8_t *tag, size_t *hdr, uint64_t *len);
/* Read one element of the given tag: its content in *content, the cursor moved past it. 0, or
 * -1 (cursor unchanged) when it does not parse, is not tag or runs past the cursor. */
int der_get(struct der_in *in, uint8_t tag, struct der_in *content);
/* 1 when the next element has this tag (without reading it), else 0. */
int der_peek(const struct der_in *in, uint8_t tag);
/* Time (UTCTime or GeneralizedTime, Z only, seconds) to seconds since the epoch. */
int der_get_time(struct der_in *in, int64_t *t);
/* INTEGER that fits a non-negative int64. */
int der_get_int64(struct der_in *in, int64_t *v);

#endif
