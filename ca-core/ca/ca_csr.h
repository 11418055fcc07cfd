/* A PKCS#10 certificate request judged against a profile (ca_csr.c): proof of possession, key
 * profile, subject fields, SAN types and patterns, before anything is written or signed. */
#ifndef HSMCA_CA_CSR_H
#define HSMCA_CA_CSR_H

#include <openssl/x509v3.h>

#include "ca.h"

#define CA_SANS_MAX 100

struct hsmca_pkcs10; /* a PKCS#10 request as pkcs10.c reads it (its own ASN.1 type) */

struct ca_csr {
	struct hsmca_pkcs10 *req;
	EVP_PKEY *pub;
	uint8_t spki_sha256[32]; /* SHA-256 of the SubjectPublicKeyInfo's DER */
	unsigned char *spki;     /* that DER (OPENSSL_malloc'd), spki_len bytes */
	size_t spki_len;
	GENERAL_NAMES *gens; /* the SANs as they go into the certificate; NULL when none */
	struct db_san sans[CA_SANS_MAX];
	char text[CA_SANS_MAX][256]; /* the SANs' text, which sans[] points into */
	size_t n_sans;
	char subject[1024]; /* RFC 2253 */
};

/* Parse a PEM PKCS#10 request and check it against p: proof of possession, key profile,
 * subject fields, SAN types and patterns. 0, or -1 with *error the API error code and why the
 * reason. Free with ca_csr_free either way (out zeroed first by the caller). */
int ca_csr_check(const struct ca_profile *p, const char *pem, struct ca_csr *out,
                 const char **error, char *why, size_t n);
/* The same for a DER request (len bytes, all of them the request): an ACME finalize's CSR
 * as it came, without a PEM round trip. */
int ca_csr_check_der(const struct ca_profile *p, const unsigned char *der, size_t len,
                     struct ca_csr *out, const char **error, char *why, size_t n);
void ca_csr_free(struct ca_csr *c);
/* The checked request's subject. */
const X509_NAME *ca_csr_subject(const struct ca_csr *c);
/* Give cert the request's SubjectPublicKeyInfo as it is (algorithm, parameters, key bits). */
int ca_csr_copy_pubkey(const struct ca_csr *c, X509 *cert);

#endif
