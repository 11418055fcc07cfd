/* PKCS#10 (RFC 2986) requests read with ASN.1 templates of our own whose SubjectPublicKeyInfo
 * stays plain data (pkcs10.c): the one reader of certificate requests that both the CA core
 * (ca_csr.c, which judges and issues) and ACME's identifier match (acme_order.c) use, so that
 * both read the same names from the same bytes. */
#ifndef HSMCA_PKCS10_H
#define HSMCA_PKCS10_H

#include <stddef.h>

#include <openssl/asn1t.h>
#include <openssl/x509.h>

typedef struct hsmca_pkcs10_spki {
	X509_ALGOR *algor;
	ASN1_BIT_STRING *public_key;
} HSMCA_PKCS10_SPKI;

typedef struct hsmca_pkcs10_info {
	ASN1_ENCODING enc; /* the bytes as received: proof of possession is checked over them */
	ASN1_INTEGER *version;
	X509_NAME *subject;
	HSMCA_PKCS10_SPKI *spki;
	STACK_OF(X509_ATTRIBUTE) * attributes;
} HSMCA_PKCS10_INFO;

typedef struct hsmca_pkcs10 {
	HSMCA_PKCS10_INFO *info;
	X509_ALGOR *sig_alg;
	ASN1_BIT_STRING *signature;
} HSMCA_PKCS10;

DECLARE_ASN1_ITEM(HSMCA_PKCS10_SPKI)
DECLARE_ASN1_ITEM(HSMCA_PKCS10_INFO)
DECLARE_ASN1_ITEM(HSMCA_PKCS10)

/* The request that is exactly der[0..len) (nothing after it); NULL when it is not one. */
HSMCA_PKCS10 *pkcs10_read(const unsigned char *der, size_t len);
void pkcs10_free(HSMCA_PKCS10 *req);
/* How many of its attributes ask for extensions (extensionRequest or Microsoft's). Readers of
 * requests differ in which they take when there are several (OpenSSL takes the standard one
 * first, whatever the order), so both users refuse more than one. */
int pkcs10_extension_requests(const HSMCA_PKCS10 *req);
/* The extensions its (first) such attribute asks for; NULL when there are none or they do
 * not parse. */
STACK_OF(X509_EXTENSION) * pkcs10_requested_extensions(const HSMCA_PKCS10 *req);

#endif
