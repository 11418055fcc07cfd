#include "keyd_kind.h"

#include <string.h>

#include "der.h"

const uint8_t keyd_checkpoint_oid[21] = {0x69, 0x81, 0xd9, 0x8f, 0x9d, 0x94, 0xc3,
                                         0xd4, 0xf2, 0xad, 0xf5, 0x9c, 0x90, 0xd7,
                                         0xe1, 0xe8, 0xe9, 0xed, 0xf4, 0x61, 0x01};

/* basicConstraints, 2.5.29.19 */
static const uint8_t oid_bc[] = {0x55, 0x1d, 0x13};

static int unknown(struct keyd_kind_info *ki, const char *why)
{
	memset(ki, 0, sizeof(*ki));
	ki->kind = KEYD_KIND_DIGEST;
	ki->why = why;
	return KEYD_KIND_DIGEST;
}

/* The tag of the next element, or -1 when there is none. */
static int next_tag(const struct der_in *in)
{
	return in->len ? in->p[0] : -1;
}

/* Read one element of the given tag, keeping the whole element (header included). */
static int get_whole(struct der_in *in, uint8_t tag, const uint8_t **p, size_t *n)
{
	const uint8_t *start = in->p;
	struct der_in c;

	if (der_get(in, tag, &c))
		return -1;
	*p = start;
	*n = (size_t)(in->p - start);
	return 0;
}

static int is_time(int tag)
{
	return tag == 0x17 || tag == 0x18;
}

/* The extensions' basicConstraints: 1 when one says cA TRUE, 0 when none does, -1 when the
 * extensions do not parse. */
static int ext_ca(struct der_in exts)
{
	struct der_in seq;
	int ca = 0;

	if (der_get(&exts, 0x30, &seq) || exts.len)
		return -1;
	while (seq.len) {
		struct der_in ext, oid, val, bc, b;
		if (der_get(&seq, 0x30, &ext) || der_get(&ext, 0x06, &oid))
			return -1;
		if (der_peek(&ext, 0x01) && der_get(&ext, 0x01, &b))
			return -1;
		if (der_get(&ext, 0x04, &val) || ext.len)
			return -1;
		if (oid.len != sizeof(oid_bc) || memcmp(oid.p, oid_bc, sizeof(oid_bc)) != 0)
			continue;
		if (der_get(&val, 0x30, &bc) || val.len)
			return -1;
		if (der_peek(&bc, 0x01)) {
			if (der_get(&bc, 0x01, &b) || b.len != 1)
				return -1;
			if (b.p[0]) /* any non-zero is TRUE to someone: count it */
				ca = 1;
		}
	}
	return ca;
}

static void read_cert(struct der_in c, int version, struct keyd_kind_info *ki)
{
	struct der_in x;
	int ca = version < 2 ? 1 : 0; /* v1 and v2 have no basicConstraints: a CA to some */

	if (der_get(&c, 0x02, &x) || der_get(&c, 0x30, &x) ||
	    get_whole(&c, 0x30, &ki->issuer, &ki->issuer_len) || der_get(&c, 0x30, &x) ||
	    get_whole(&c, 0x30, &ki->subject, &ki->subject_len) ||
	    get_whole(&c, 0x30, &ki->spki, &ki->spki_len)) {
		unknown(ki, "a TBSCertificate whose fields do not parse");
		return;
	}
	if (next_tag(&c) == 0x81 && der_get(&c, 0x81, &x))
		goto bad;
	if (next_tag(&c) == 0x82 && der_get(&c, 0x82, &x))
		goto bad;
	if (next_tag(&c) == 0xa3) {
		if (der_get(&c, 0xa3, &x) || version < 3)
			goto bad;
		ca = ext_ca(x);
		if (ca < 0)
			goto bad;
	}
	if (c.len)
		goto bad;
	ki->kind = ca ? KEYD_KIND_CA_CERTIFICATE : KEYD_KIND_CERTIFICATE;
	return;
bad:
	unknown(ki, "a TBSCertificate whose extensions or end do not parse");
}

void keyd_kind_read(const uint8_t *data, size_t avail, int final, struct keyd_kind_info *ki)
{
	struct der_in c, x, y;
	uint8_t tag;
	size_t hdr;
	uint64_t len;
	int t;

	memset(ki, 0, sizeof(*ki));
	if (der_parse_hdr(data, avail, &tag, &hdr, &len) || tag != 0x30) {
		unknown(ki, "not a DER SEQUENCE");
		return;
	}
	if (len > UINT64_MAX - hdr) {
		unknown(ki, "length out of range");
		return;
	}
	ki->total = hdr + len;
	if ((final && ki->total != avail) || (!final && ki->total <= avail)) {
		unknown(ki, final ? "the data is not exactly one DER SEQUENCE"
		                  : "the first chunk holds the whole SEQUENCE and more");
		return;
	}
	c.p = data + hdr;
	c.len = avail - hdr;

	t = next_tag(&c);
	if (t == 0xa0) { /* [0] version: a certificate (INTEGER next) or an OCSP ResponseData */
		struct der_in v;
		int64_t ver = -1;
		if (der_get(&c, 0xa0, &v)) {
			unknown(ki, "a version that does not parse");
			return;
		}
		if (next_tag(&c) == 0x02) {
			if (!final) {
				unknown(ki, "a TBSCertificate must come in one chunk");
				return;
			}
			if (der_get_int64(&v, &ver) || v.len || ver < 0 || ver > 2) {
				unknown(ki, "a TBSCertificate with a bad version");
				return;
			}
			read_cert(c, (int)ver + 1, ki);
			return;
		}
		t = next_tag(&c);
		if (t != 0xa1 && t != 0xa2) {
			unknown(ki, "a [0] version followed by neither a serial nor a responder");
			return;
		}
	}
	if (t == 0xa1 || t == 0xa2) { /* OCSP ResponseData: responderID, producedAt */
		if (der_get(&c, (uint8_t)t, &x) || der_get(&c, 0x18, &y)) {
			unknown(ki, "an OCSP ResponseData whose responder does not parse");
			return;
		}
		ki->kind = KEYD_KIND_OCSP;
		return;
	}
	if (t == 0x06) {
		if (der_get(&c, 0x06, &x) || x.len != sizeof(keyd_checkpoint_oid) ||
		    memcmp(x.p, keyd_checkpoint_oid, x.len) != 0) {
			unknown(ki, "an object identifier other than hsmca's checkpoint");
			return;
		}
		ki->kind = KEYD_KIND_CHECKPOINT;
		return;
	}
	if (t == 0x02) { /* v1 certificate, v2 CRL or certification request */
		const uint8_t *a, *b;
		size_t alen, blen;
		if (der_get(&c, 0x02, &x) || get_whole(&c, 0x30, &a, &alen) ||
		    get_whole(&c, 0x30, &b, &blen)) {
			unknown(ki, "an INTEGER and two SEQUENCEs that do not parse");
			return;
		}
		t = next_tag(&c);
		if (is_time(t)) { /* TBSCertList: version, signature, issuer, thisUpdate */
			if (x.len != 1 || x.p[0] != 1) {
				unknown(ki, "a TBSCertList whose version is not v2");
				return;
			}
			ki->kind = KEYD_KIND_CRL;
			ki->issuer = b;
			ki->issuer_len = blen;
			return;
		}
		if (!final) {
			unknown(ki, "a certificate or request must come in one chunk");
			return;
		}
		if (t == 0xa0) { /* CertificationRequestInfo: version, subject, spki, attributes */
			if (x.len != 1 || x.p[0] != 0 || der_get(&c, 0xa0, &y) || c.len) {
				unknown(ki, "a CertificationRequestInfo that does not parse");
				return;
			}
			ki->kind = KEYD_KIND_CSR;
			ki->subject = a;
			ki->subject_len = alen;
			ki->spki = b;
			ki->spki_len = blen;
			return;
		}
		/* a version 1 TBSCertificate: serial, signature, issuer, validity, ... */
		c.p = data + hdr;
		c.len = avail - hdr;
		read_cert(c, 1, ki);
		return;
	}
	if (t == 0x30) { /* TBSCertList v1: signature, issuer, thisUpdate */
		const uint8_t *b;
		size_t blen;
		if (der_get(&c, 0x30, &x) || get_whole(&c, 0x30, &b, &blen) ||
		    !is_time(next_tag(&c))) {
			unknown(ki, "a SEQUENCE that is no TBSCertList");
			return;
		}
		ki->kind = KEYD_KIND_CRL;
		ki->issuer = b;
		ki->issuer_len = blen;
		return;
	}
	unknown(ki, "no known structure begins this way");
}
