/* PKCS#10 (RFC 2986) read with ASN.1 templates of our own whose SubjectPublicKeyInfo is plain
 * data. OpenSSL 3.0's X509_REQ decodes its X509_PUBKEY through the provider decoders, which
 * build a decoder chain for every key: about 100 us a request, more than the signature check,
 * and under locks that every thread shares. The structure is the one d2i_X509_REQ accepts
 * (which does not refuse a request for a key it cannot decode either); the request info keeps
 * its encoding as received, so that proof of possession is checked over the signed bytes
 * themselves, exactly as X509_REQ_verify does. */
#include <limits.h>

#include <openssl/x509v3.h>

#include "pkcs10.h"

/* clang-format off */
ASN1_SEQUENCE(HSMCA_PKCS10_SPKI) = {
	ASN1_SIMPLE(HSMCA_PKCS10_SPKI, algor, X509_ALGOR),
	ASN1_SIMPLE(HSMCA_PKCS10_SPKI, public_key, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(HSMCA_PKCS10_SPKI)

ASN1_SEQUENCE_enc(HSMCA_PKCS10_INFO, enc, NULL) = {
	ASN1_SIMPLE(HSMCA_PKCS10_INFO, version, ASN1_INTEGER),
	ASN1_SIMPLE(HSMCA_PKCS10_INFO, subject, X509_NAME),
	ASN1_SIMPLE(HSMCA_PKCS10_INFO, spki, HSMCA_PKCS10_SPKI),
	/* Not OPTIONAL in RFC 2986, but some requesters leave it out (as OpenSSL allows). */
	ASN1_IMP_SET_OF_OPT(HSMCA_PKCS10_INFO, attributes, X509_ATTRIBUTE, 0),
} ASN1_SEQUENCE_END_enc(HSMCA_PKCS10_INFO, HSMCA_PKCS10_INFO)

ASN1_SEQUENCE(HSMCA_PKCS10) = {
	ASN1_SIMPLE(HSMCA_PKCS10, info, HSMCA_PKCS10_INFO),
	ASN1_SIMPLE(HSMCA_PKCS10, sig_alg, X509_ALGOR),
	ASN1_SIMPLE(HSMCA_PKCS10, signature, ASN1_BIT_STRING),
} ASN1_SEQUENCE_END(HSMCA_PKCS10)
                    /* clang-format on */

                    HSMCA_PKCS10
                    * pkcs10_read(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	HSMCA_PKCS10 *req =
	    len > 0 && len <= LONG_MAX
	        ? (HSMCA_PKCS10 *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(HSMCA_PKCS10))
	        : NULL;

	if (req && p == der + len)
		return req;
	pkcs10_free(req);
	return NULL;
}

void pkcs10_free(HSMCA_PKCS10 *req)
{
	ASN1_item_free((ASN1_VALUE *)req, ASN1_ITEM_rptr(HSMCA_PKCS10));
}

static int asks_for_extensions(const X509_ATTRIBUTE *at)
{
	int nid = OBJ_obj2nid(X509_ATTRIBUTE_get0_object((X509_ATTRIBUTE *)at));

	return nid == NID_ext_req || nid == NID_ms_ext_req;
}

int pkcs10_extension_requests(const HSMCA_PKCS10 *req)
{
	const STACK_OF(X509_ATTRIBUTE) *attrs = req->info->attributes;
	int n = 0;

	for (int i = 0; i < sk_X509_ATTRIBUTE_num(attrs); i++)
		n += asks_for_extensions(sk_X509_ATTRIBUTE_value(attrs, i));
	return n;
}

STACK_OF(X509_EXTENSION) * pkcs10_requested_extensions(const HSMCA_PKCS10 *req)
{
	const STACK_OF(X509_ATTRIBUTE) *attrs = req->info->attributes;

	for (int i = 0; i < sk_X509_ATTRIBUTE_num(attrs); i++) {
		X509_ATTRIBUTE *at = sk_X509_ATTRIBUTE_value(attrs, i);
		const ASN1_TYPE *t;

		if (!asks_for_extensions(at))
			continue;
		t = X509_ATTRIBUTE_get0_type(at, 0);
		if (!t || t->type != V_ASN1_SEQUENCE)
			return NULL;
		return (STACK_OF(X509_EXTENSION) *)ASN1_item_unpack(
		    t->value.sequence, ASN1_ITEM_rptr(X509_EXTENSIONS));
	}
	return NULL;
}
