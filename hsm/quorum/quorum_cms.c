/* Share files under a custodian's public key: CMS AuthEnvelopedData (quorum_cms.h). OpenSSL's
 * CMS does the work; this file bounds the input and names the failures. */
#include "quorum_cms.h"

#include <stdio.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "quorum.h"

#define PEM_HEAD "-----BEGIN CMS-----\n"

int quorum_cms_is(const char *text, size_t len)
{
	return len >= sizeof(PEM_HEAD) - 1 && memcmp(text, PEM_HEAD, sizeof(PEM_HEAD) - 1) == 0;
}

int quorum_cms_seal(const char *share, size_t len, X509 *cert, char *out, size_t cap, char *err,
                    size_t errlen)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	BIO *in = NULL, *pem = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms = NULL;
	CMS_RecipientInfo *ri;
	EVP_PKEY *pub = cert ? X509_get0_pubkey(cert) : NULL;
	unsigned char *der = NULL;
	char *data;
	long n;
	int dlen, rc = -1;

	if (len == 0 || len > QUORUM_FILE_MAX || !pub) {
		snprintf(err, errlen, "not a share, or a certificate without a public key");
		goto out;
	}
	if (!EVP_PKEY_is_a(pub, "EC") && !EVP_PKEY_is_a(pub, "RSA")) {
		snprintf(err, errlen, "the certificate's key is neither EC nor RSA");
		goto out;
	}
	if (!certs || !pem || !(in = BIO_new_mem_buf(share, (int)len)) ||
	    !(cms = CMS_encrypt(NULL, in, EVP_aes_256_gcm(),
	                        CMS_BINARY | CMS_PARTIAL | CMS_KEY_PARAM)) ||
	    !(ri = CMS_add1_recipient_cert(cms, cert, CMS_KEY_PARAM))) {
		snprintf(err, errlen, "cannot encrypt to this certificate's key");
		goto out;
	}
	/* RSA: OAEP, not PKCS#1 v1.5 key transport. */
	if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS &&
	    EVP_PKEY_CTX_set_rsa_padding(CMS_RecipientInfo_get0_pkey_ctx(ri),
	                                 RSA_PKCS1_OAEP_PADDING) <= 0) {
		snprintf(err, errlen, "cannot set RSA-OAEP");
		goto out;
	}
	if (!CMS_final(cms, in, NULL, CMS_BINARY) || (dlen = i2d_CMS_ContentInfo(cms, &der)) <= 0 ||
	    !PEM_write_bio(pem, "CMS", "", der, dlen) || (n = BIO_get_mem_data(pem, &data)) <= 0) {
		snprintf(err, errlen, "cannot encrypt to this certificate's key");
		goto out;
	}
	if ((size_t)n >= cap || (size_t)n > QUORUM_CMS_MAX) {
		snprintf(err, errlen, "the encrypted share is over %d bytes", QUORUM_CMS_MAX);
		goto out;
	}
	memcpy(out, data, (size_t)n);
	rc = (int)n;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(pem);
	sk_X509_free(certs);
	return rc;
}

/* The CMS in text, checked; NULL with err. */
static CMS_ContentInfo *parse(const char *text, size_t len, char *err, size_t errlen)
{
	BIO *b;
	CMS_ContentInfo *cms = NULL;
	char rest[2], *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	long dlen = 0;

	if (len > QUORUM_CMS_MAX || !quorum_cms_is(text, len)) {
		snprintf(err, errlen,
		         "encrypted share does not parse: not a PEM CMS of at most %d bytes",
		         QUORUM_CMS_MAX);
		return NULL;
	}
	if (!(b = BIO_new_mem_buf(text, (int)len)) ||
	    !PEM_read_bio(b, &name, &header, &der, &dlen) || strcmp(name, "CMS") != 0 ||
	    header[0]) {
		snprintf(err, errlen, "encrypted share does not parse: not one PEM block \"CMS\"");
		goto fail;
	}
	p = der;
	if (!(cms = d2i_CMS_ContentInfo(NULL, &p, dlen)) || p != der + dlen) {
		snprintf(err, errlen, "encrypted share does not parse: not a CMS structure");
		goto fail;
	}
	/* Nothing but white space after the PEM's end line. */
	while (BIO_read(b, rest, 1) == 1)
		if (rest[0] != '\n' && rest[0] != '\r' && rest[0] != ' ' && rest[0] != '\t') {
			snprintf(err, errlen, "encrypted share does not parse: data after the CMS");
			goto fail;
		}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_id_smime_ct_authEnvelopedData) {
		snprintf(err, errlen,
		         "encrypted share does not parse: not CMS AuthEnvelopedData (RFC 5083)");
		goto fail;
	}
	goto out;
fail:
	CMS_ContentInfo_free(cms);
	cms = NULL;
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(b);
	ERR_clear_error();
	return cms;
}

int quorum_cms_check(const char *text, size_t len, char *err, size_t errlen)
{
	CMS_ContentInfo *cms = parse(text, len, err, errlen);

	CMS_ContentInfo_free(cms);
	return cms ? 0 : -1;
}

int quorum_cms_open(const char *text, size_t len, EVP_PKEY *key, char *out, size_t cap, char *err,
                    size_t errlen)
{
	CMS_ContentInfo *cms = parse(text, len, err, errlen);
	BIO *plain = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int rc = -1;

	if (!cms || !plain)
		goto out;
	/* No certificate: each recipient is tried with key. Any failure (not a recipient, a
	 * changed file: the GCM tag does not verify) opens nothing. */
	if (!CMS_decrypt(cms, key, NULL, NULL, plain, CMS_BINARY)) {
		snprintf(err, errlen,
		         "encrypted share cannot be opened with this key: it is not the share's "
		         "recipient, or the file was changed");
		goto out;
	}
	n = BIO_get_mem_data(plain, &data);
	if (n <= 0 || (size_t)n > cap || (size_t)n > QUORUM_FILE_MAX) {
		snprintf(err, errlen, "encrypted share holds no share file of at most %d bytes",
		         QUORUM_FILE_MAX);
		goto out;
	}
	memcpy(out, data, (size_t)n);
	rc = (int)n;
out:
	if (plain && BIO_get_mem_data(plain, &data) > 0)
		OPENSSL_cleanse(data, (size_t)BIO_get_mem_data(plain, &data));
	BIO_free(plain);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return rc;
}
