/* Building and signing OCSP responses through keyd (the keyd OpenSSL provider): the CA's own
 * key or a delegated responder's (RFC 6960 4.2.2.2), responder ID by key, certificate
 * included when delegated, the nonce extension echoed as the request had it (RFC 8954). */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "cakey.h"
#include "ocsp_internal.h"

int ocsp_cert_status(enum db_cert_status st)
{
	switch (st) {
	case DB_CERT_ISSUED:
		return V_OCSP_CERTSTATUS_GOOD;
	case DB_CERT_REVOKED:
	case DB_CERT_HOLD:
		return V_OCSP_CERTSTATUS_REVOKED;
	default:
		return V_OCSP_CERTSTATUS_UNKNOWN;
	}
}

static void ssl_err(char *err, size_t errsz, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errsz, "%s: %s", what, e ? buf : "failed");
	ERR_clear_error();
}

int ocsp_sign(EVP_PKEY *key, X509 *signer_cert, int delegated, const struct ocsp_single *s,
              size_t n, const uint8_t *nonce_ext, size_t nonce_len, int64_t this_update,
              int64_t next_update, uint8_t **der, size_t *der_len, char *err, size_t errsz)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	ASN1_TIME *tu = ASN1_TIME_set(NULL, (time_t)this_update);
	ASN1_TIME *nu = ASN1_TIME_set(NULL, (time_t)next_update);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	OCSP_RESPONSE *resp = NULL;
	unsigned char *out = NULL;
	int rc = -1, len;

	*der = NULL;
	*der_len = 0;
	if (!bs || !tu || !nu || !ctx) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = s[i].certid_der;
		OCSP_CERTID *cid = d2i_OCSP_CERTID(NULL, &p, (long)s[i].certid_len);
		ASN1_TIME *rt = NULL;
		OCSP_SINGLERESP *sr;
		if (!cid) {
			ssl_err(err, errsz, "CertID");
			goto out;
		}
		if (s[i].status == V_OCSP_CERTSTATUS_REVOKED)
			rt = ASN1_TIME_set(NULL, (time_t)s[i].revoked_at);
		/* reason unspecified (0) is left out, as RFC 5280 5.3.1 recommends for CRLs */
		sr = OCSP_basic_add1_status(
		    bs, cid, s[i].status,
		    s[i].reason > 0 ? s[i].reason : OCSP_REVOKED_STATUS_NOSTATUS, rt, tu, nu);
		ASN1_TIME_free(rt);
		OCSP_CERTID_free(cid);
		if (!sr) {
			ssl_err(err, errsz, "adding a status");
			goto out;
		}
	}
	if (nonce_ext) {
		ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
		X509_EXTENSION *x = NULL;
		if (!os || !ASN1_OCTET_STRING_set(os, nonce_ext, (int)nonce_len) ||
		    !(x = X509_EXTENSION_create_by_NID(NULL, NID_id_pkix_OCSP_Nonce, 0, os)) ||
		    !OCSP_BASICRESP_add_ext(bs, x, -1)) {
			ASN1_OCTET_STRING_free(os);
			X509_EXTENSION_free(x);
			ssl_err(err, errsz, "nonce");
			goto out;
		}
		ASN1_OCTET_STRING_free(os);
		X509_EXTENSION_free(x);
	}
	if (!ca_key_sign_init(ctx, key) ||
	    !OCSP_basic_sign_ctx(bs, signer_cert, ctx, NULL,
	                         OCSP_RESPID_KEY | (delegated ? 0 : OCSP_NOCERTS))) {
		ssl_err(err, errsz, "signing through keyd");
		goto out;
	}
	resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	if (!resp || (len = i2d_OCSP_RESPONSE(resp, &out)) <= 0) {
		ssl_err(err, errsz, "encoding the response");
		goto out;
	}
	*der = out;
	*der_len = (size_t)len;
	rc = 0;
out:
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	EVP_MD_CTX_free(ctx);
	return rc;
}

int ocsp_certid_der(const struct ocsp_ca *ca, int variant, const uint8_t *serial, size_t len,
                    uint8_t **der, size_t *der_len)
{
	BIGNUM *bn = BN_bin2bn(serial, (int)len, NULL);
	ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	OCSP_CERTID *id = ai ? OCSP_cert_id_new(variant ? EVP_sha256() : EVP_sha1(),
	                                        X509_get_subject_name(ca->cert),
	                                        X509_get0_pubkey_bitstr(ca->cert), ai)
	                     : NULL;
	unsigned char *out = NULL;
	int n = id ? i2d_OCSP_CERTID(id, &out) : -1;

	OCSP_CERTID_free(id);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	if (n <= 0)
		return -1;
	*der = out;
	*der_len = (size_t)n;
	return 0;
}

static EVP_PKEY *keyd_key(const char *label, char *err, size_t errsz)
{
	char uri[128];

	snprintf(uri, sizeof(uri), "keyd:label=%s", label);
	return ca_key_open(uri, err, errsz);
}

int ocsp_ca_load_signer(struct ocspd *d, struct ocsp_ca *ca, const char *label, char *err,
                        size_t errsz)
{
	EVP_PKEY *k = keyd_key(label, err, errsz);
	X509 *cert = NULL;
	int delegated = strcmp(label, ca->key_label) != 0;

	if (!k)
		return -1; /* keyd away or no such key: the health probe tells which */
	if (!delegated) {
		cert = ca->cert;
	} else {
		for (size_t i = 0; i < d->n_responders && !cert; i++) {
			X509 *x = d->responders[i];
			if (EVP_PKEY_eq(X509_get0_pubkey(x), k) == 1 &&
			    X509_check_issued(ca->cert, x) == X509_V_OK)
				cert = x;
		}
		ERR_clear_error();
		if (!cert) {
			snprintf(
			    err, errsz,
			    "authority %s: no responder certificate issued by it holds the public "
			    "key of keyd key %s (responder_certificates)",
			    ca->name, label);
			EVP_PKEY_free(k);
			return -1;
		}
	}
	if (X509_check_private_key(cert, k) != 1) {
		ERR_clear_error();
		snprintf(err, errsz, "authority %s: keyd key %s does not match its certificate",
		         ca->name, label);
		EVP_PKEY_free(k);
		return -1;
	}
	X509_up_ref(cert);
	pthread_rwlock_wrlock(&d->cache.lock);
	EVP_PKEY_free(ca->signer_key);
	X509_free(ca->signer_cert);
	ca->signer_key = k;
	ca->signer_cert = cert;
	ca->delegated = delegated;
	snprintf(ca->signer_label, sizeof(ca->signer_label), "%s", label);
	pthread_rwlock_unlock(&d->cache.lock);
	return 0;
}

struct ocsp_answer *ocsp_presign(struct ocspd *d, int ca_idx, int variant, const uint8_t *serial,
                                 size_t serial_len, enum db_cert_status st, int64_t revoked_at,
                                 int reason, int64_t now, char *err, size_t errsz)
{
	struct ocsp_ca *ca = &d->cas[ca_idx];
	struct ocsp_answer *a = NULL;
	struct ocsp_single s = {0};
	uint8_t *cid = NULL, *der = NULL;
	size_t cid_len, der_len;
	EVP_PKEY *key;
	X509 *cert;
	int delegated;
	int64_t validity;

	pthread_rwlock_rdlock(&d->cache.lock);
	key = ca->signer_key;
	cert = ca->signer_cert;
	delegated = ca->delegated;
	validity = ca->validity;
	if (key) {
		EVP_PKEY_up_ref(key);
		X509_up_ref(cert);
	}
	pthread_rwlock_unlock(&d->cache.lock);
	if (!key) {
		snprintf(err, errsz, "authority %s: its signer is not loaded (keyd unreachable?)",
		         ca->name);
		return NULL;
	}
	if (ocsp_certid_der(ca, variant, serial, serial_len, &cid, &cid_len) != 0) {
		snprintf(err, errsz, "authority %s: cannot make a CertID", ca->name);
		goto out;
	}
	s.certid_der = cid;
	s.certid_len = cid_len;
	s.status = ocsp_cert_status(st);
	s.revoked_at = revoked_at;
	s.reason = reason;
	if (ocsp_sign(key, cert, delegated, &s, 1, NULL, 0, now, now + validity, &der, &der_len,
	              err, errsz) != 0) {
		atomic_store(&d->keyd_up, 0);
		goto out;
	}
	atomic_store(&d->keyd_up, 1);
	atomic_fetch_add(&d->signed_count, 1);
	a = ocsp_answer_new(der, der_len, now, now + validity);
	if (!a)
		snprintf(err, errsz, "out of memory");
out:
	OPENSSL_free(cid);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
	X509_free(cert);
	return a;
}
