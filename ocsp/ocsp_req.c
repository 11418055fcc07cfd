/* A strict reader for OCSPRequest (RFC 6960 4.1.1) on top of the shared DER reader (der.h)
 * that extracts what a responder needs: each CertID and the nonce (RFC 8954). Bounded, never
 * allocating: the result points into the caller's bytes. Also the GET form's URL and base64
 * decoding (RFC 5019 5). */
#include <string.h>

#include "der.h"
#include "ocsp_parse.h"

static int oid_is(const struct der_in *oid, const uint8_t *want, size_t n)
{
	return oid->len == n && !memcmp(oid->p, want, n);
}

static const uint8_t oid_sha1[] = {0x2b, 0x0e, 0x03, 0x02, 0x1a};
static const uint8_t oid_sha256[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
static const uint8_t oid_sha384[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02};
static const uint8_t oid_sha512[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03};
/* id-pkix-ocsp 1.3.6.1.5.5.7.48.1 and its arcs .2 nonce, .4 response types, .7 service
 * locator, .8 preferred signature algorithms */
static const uint8_t oid_pkix_ocsp[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01};

/* Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension. With req NULL (single request
 * extensions) no nonce is allowed. */
static enum ocsp_req_status extensions(struct der_in *exts, struct ocsp_req *req)
{
	if (exts->len == 0)
		return OCSP_REQ_MALFORMED;
	while (exts->len) {
		struct der_in ext, oid, crit, val, inner, nonce;
		int critical = 0, arc = -1;

		if (der_get(exts, 0x30, &ext) || der_get(&ext, 0x06, &oid) || oid.len == 0)
			return OCSP_REQ_MALFORMED;
		if (der_peek(&ext, 0x01)) {
			if (der_get(&ext, 0x01, &crit) || crit.len != 1 ||
			    (crit.p[0] != 0 && crit.p[0] != 0xff))
				return OCSP_REQ_MALFORMED;
			critical = crit.p[0] == 0xff;
		}
		if (der_get(&ext, 0x04, &val) || ext.len)
			return OCSP_REQ_MALFORMED;
		if (oid.len == sizeof(oid_pkix_ocsp) + 1 &&
		    !memcmp(oid.p, oid_pkix_ocsp, sizeof(oid_pkix_ocsp)))
			arc = oid.p[sizeof(oid_pkix_ocsp)];
		if (arc == 2) {
			/* RFC 8954: Nonce ::= OCTET STRING (SIZE(1..32)), inside extnValue */
			inner = val;
			if (!req || req->has_nonce || der_get(&inner, 0x04, &nonce) || inner.len ||
			    nonce.len < 1 || nonce.len > OCSP_NONCE_MAX)
				return OCSP_REQ_MALFORMED;
			req->has_nonce = 1;
			req->nonce_ext = val.p;
			req->nonce_ext_len = val.len;
			req->nonce_len = nonce.len;
		} else if (critical && arc != 4 && arc != 7 && arc != 8) {
			return OCSP_REQ_MALFORMED;
		}
	}
	return OCSP_REQ_OK;
}

static enum ocsp_req_status certid(struct der_in *d, struct ocsp_certid *c)
{
	struct der_in id, alg, oid, param, nh, kh, serial;
	const uint8_t *start = d->p;
	size_t want;

	if (der_get(d, 0x30, &id))
		return OCSP_REQ_MALFORMED;
	c->der = start;
	c->der_len = (size_t)(d->p - start);
	if (der_get(&id, 0x30, &alg) || der_get(&alg, 0x06, &oid))
		return OCSP_REQ_MALFORMED;
	if (alg.len && (der_get(&alg, 0x05, &param) || param.len || alg.len))
		return OCSP_REQ_MALFORMED;
	if (der_get(&id, 0x04, &nh) || der_get(&id, 0x04, &kh) || der_get(&id, 0x02, &serial) ||
	    id.len)
		return OCSP_REQ_MALFORMED;
	if (oid_is(&oid, oid_sha1, sizeof(oid_sha1))) {
		c->hash = OCSP_HASH_SHA1;
		want = 20;
	} else if (oid_is(&oid, oid_sha256, sizeof(oid_sha256))) {
		c->hash = OCSP_HASH_SHA256;
		want = 32;
	} else if (oid_is(&oid, oid_sha384, sizeof(oid_sha384))) {
		c->hash = OCSP_HASH_SHA384;
		want = 48;
	} else if (oid_is(&oid, oid_sha512, sizeof(oid_sha512))) {
		c->hash = OCSP_HASH_SHA512;
		want = 64;
	} else {
		return OCSP_REQ_UNSUPPORTED_HASH;
	}
	if (nh.len != want || kh.len != want)
		return OCSP_REQ_MALFORMED;
	c->name_hash = nh.p;
	c->key_hash = kh.p;
	c->hash_len = want;
	/* INTEGER: at least one byte, minimal two's complement */
	if (serial.len == 0 || (serial.len > 1 && ((serial.p[0] == 0 && serial.p[1] < 0x80) ||
	                                           (serial.p[0] == 0xff && serial.p[1] >= 0x80))))
		return OCSP_REQ_MALFORMED;
	c->serial = NULL;
	c->serial_len = 0;
	if (serial.p[0] & 0x80)
		return OCSP_REQ_OK; /* negative: nobody's serial */
	if (serial.p[0] == 0) {
		serial.p++;
		serial.len--;
		if (!serial.len)
			return OCSP_REQ_OK; /* zero */
	}
	c->serial = serial.p;
	c->serial_len = serial.len;
	return OCSP_REQ_OK;
}

enum ocsp_req_status ocsp_req_parse(const uint8_t *der, size_t len, struct ocsp_req *req)
{
	struct der_in all = {der, len}, outer, tbs, x, list;
	enum ocsp_req_status st;

	memset(req, 0, sizeof(*req));
	if (len > OCSP_REQ_MAX_DER || der_get(&all, 0x30, &outer) || all.len)
		return OCSP_REQ_MALFORMED;
	if (der_get(&outer, 0x30, &tbs))
		return OCSP_REQ_MALFORMED;
	if (der_peek(&outer, 0xa0)) { /* optionalSignature: accepted, not checked */
		if (der_get(&outer, 0xa0, &x) || x.len == 0)
			return OCSP_REQ_MALFORMED;
	}
	if (outer.len)
		return OCSP_REQ_MALFORMED;
	if (der_peek(&tbs, 0xa0)) { /* version: v1 (0) only */
		struct der_in v;
		if (der_get(&tbs, 0xa0, &x) || der_get(&x, 0x02, &v) || x.len || v.len != 1 ||
		    v.p[0] != 0)
			return OCSP_REQ_MALFORMED;
	}
	if (der_peek(&tbs, 0xa1)) { /* requestorName: not used */
		if (der_get(&tbs, 0xa1, &x) || x.len == 0)
			return OCSP_REQ_MALFORMED;
	}
	if (der_get(&tbs, 0x30, &list) || list.len == 0)
		return OCSP_REQ_MALFORMED;
	while (list.len) {
		struct der_in one, exts;
		if (req->n_certs == OCSP_REQ_MAX_CERTS)
			return OCSP_REQ_TOO_MANY;
		if (der_get(&list, 0x30, &one))
			return OCSP_REQ_MALFORMED;
		if ((st = certid(&one, &req->certs[req->n_certs])) != OCSP_REQ_OK)
			return st;
		req->n_certs++;
		if (der_peek(&one, 0xa0)) {
			if (der_get(&one, 0xa0, &x) || der_get(&x, 0x30, &exts) || x.len)
				return OCSP_REQ_MALFORMED;
			if ((st = extensions(&exts, NULL)) != OCSP_REQ_OK)
				return st;
		}
		if (one.len)
			return OCSP_REQ_MALFORMED;
	}
	if (der_peek(&tbs, 0xa2)) {
		struct der_in exts;
		if (der_get(&tbs, 0xa2, &x) || der_get(&x, 0x30, &exts) || x.len)
			return OCSP_REQ_MALFORMED;
		if ((st = extensions(&exts, req)) != OCSP_REQ_OK)
			return st;
	}
	if (tbs.len)
		return OCSP_REQ_MALFORMED;
	return OCSP_REQ_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

long ocsp_get_decode(const char *path, size_t len, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	size_t o = 0, pad = 0;
	int bits = 0;

	for (size_t i = 0; i < len; i++) {
		char c = path[i];
		int v;

		if (c == '%') {
			int hi, lo;
			if (i + 2 >= len)
				return -1;
			hi = hexval(path[i + 1]);
			lo = hexval(path[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad)
			return -1; /* data after padding */
		v = b64val(c);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero padding, and '=' must fit the length. */
	if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0 || pad > 2)
		return -1;
	if (pad && ((bits == 4 && pad != 2) || (bits == 2 && pad != 1) || bits == 0))
		return -1;
	return o ? (long)o : -1;
}
