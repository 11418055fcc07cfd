/*
 * Keys through hsmca-keyd: the client library for what keyd knows about a
 * key (its attributes, its public half) and for generating it; the keyd
 * OpenSSL provider for signing, so certificates are signed with ordinary
 * OpenSSL calls and no private key is ever in this process.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "cakey.h"
#include "ceremony_internal.h"
#include "provpath.h"

int cer_keys_open(struct cer_keys *k, const char *socket, int timeout_ms, uint16_t *version,
                  char *err, size_t errsz)
{
	struct keyd_err ke = {0};

	memset(k, 0, sizeof(*k));
	k->client = keyd_client_new(socket, timeout_ms);
	if (!k->client)
		return cer_fail(err, errsz,
		                "no keyd socket: give --socket or set HSMCA_KEYD_SOCKET");
	if (keyd_client_hello(k->client, version, &ke) != KEYD_OK)
		return cer_fail(err, errsz, "keyd at %s: %s", keyd_client_socket(k->client),
		                ke.msg);
	/* The provider finds keyd through the same socket. */
	if (setenv("HSMCA_KEYD_SOCKET", keyd_client_socket(k->client), 1) != 0)
		return cer_fail(err, errsz, "cannot set HSMCA_KEYD_SOCKET");
	/* Software keys (verification, the lint's stand-in key) stay with the default
	 * provider; keyd keys come by URI only (docs/provider.md). */
	if (provpath_load_providers(&k->prov_default, &k->prov_keyd, err, errsz) != 0) {
		cer_append_ossl(err, errsz);
		return -1;
	}
	return 0;
}

void cer_keys_close(struct cer_keys *k)
{
	keyd_client_free(k->client);
	if (k->prov_keyd)
		OSSL_PROVIDER_unload(k->prov_keyd);
	if (k->prov_default)
		OSSL_PROVIDER_unload(k->prov_default);
	memset(k, 0, sizeof(*k));
}

static const char *acl_hint(int status)
{
	return status == KEYD_E_DENIED
	           ? " (keyd's ACL must grant this uid the key labels and the operations "
	             "get-public-key, sign and, to make keys, generate)"
	           : "";
}

int cer_key_absent(struct cer_keys *k, const char *label, char *err, size_t errsz)
{
	struct keyd_key key;
	struct keyd_err ke = {0};
	int st = keyd_client_get_pubkey(k->client, label, &key, &ke);

	if (st == KEYD_E_NO_KEY)
		return 0;
	if (st == KEYD_OK)
		return cer_fail(err, errsz,
		                "a key labelled \"%s\" already exists on the token: a ceremony "
		                "never reuses a label (to certify that key, set key.existing: "
		                "true)",
		                label);
	return cer_fail(err, errsz, "asking keyd whether key \"%s\" exists: %s%s", label, ke.msg,
	                acl_hint(st));
}

int cer_key_get(struct cer_keys *k, const char *label, struct keyd_key *out, char *err,
                size_t errsz)
{
	struct keyd_err ke = {0};
	int st = keyd_client_get_pubkey(k->client, label, out, &ke);

	if (st != KEYD_OK)
		return cer_fail(err, errsz, "key \"%s\": %s%s", label, ke.msg, acl_hint(st));
	return 0;
}

static void keyd_params(enum cer_keytype t, int *type, uint16_t *param)
{
	switch (t) {
	case CER_KT_RSA2048:
		*type = KEYD_KEY_RSA, *param = 2048;
		break;
	case CER_KT_RSA3072:
		*type = KEYD_KEY_RSA, *param = 3072;
		break;
	case CER_KT_RSA4096:
		*type = KEYD_KEY_RSA, *param = 4096;
		break;
	case CER_KT_EC_P256:
		*type = KEYD_KEY_EC, *param = KEYD_CURVE_P256;
		break;
	default:
		*type = KEYD_KEY_EC, *param = KEYD_CURVE_P384;
		break;
	}
}

int cer_key_is_type(const struct keyd_key *key, enum cer_keytype type)
{
	int kt;
	uint16_t param;

	keyd_params(type, &kt, &param);
	if (key->type != kt)
		return 0;
	if (kt == KEYD_KEY_RSA)
		return key->bits == param;
	return key->bits == (param == KEYD_CURVE_P256 ? 256 : 384);
}

int cer_key_generate(struct cer_keys *k, const char *label, enum cer_keytype type,
                     struct keyd_key *out, char *err, size_t errsz)
{
	struct keyd_err ke = {0};
	int kt, st;
	uint16_t param;

	keyd_params(type, &kt, &param);
	st = keyd_client_generate(k->client, label, kt, param, out, &ke);
	if (st != KEYD_OK)
		return cer_fail(err, errsz, "generating key \"%s\" (%s): %s%s", label,
		                ceremony_keytype_name(type), ke.msg, acl_hint(st));
	if (strcmp(out->label, label) != 0 || !cer_key_is_type(out, type))
		return cer_fail(err, errsz,
		                "keyd answered the generation of \"%s\" (%s) with key \"%s\" of "
		                "type %d, %u bits",
		                label, ceremony_keytype_name(type), out->label, out->type,
		                out->bits);
	return 0;
}

int cer_key_check_flags(const struct keyd_key *key, char *err, size_t errsz)
{
	static const struct {
		unsigned flag;
		int want;
		const char *what;
	} rules[] = {
	    {KEYD_KF_SENSITIVE, 1, "is not sensitive (CKA_SENSITIVE is false)"},
	    {KEYD_KF_EXTRACTABLE, 0, "is extractable (CKA_EXTRACTABLE is true)"},
	    {KEYD_KF_ALWAYS_SENSITIVE, 1,
	     "has not always been sensitive (CKA_ALWAYS_SENSITIVE is false)"},
	    {KEYD_KF_NEVER_EXTRACTABLE, 1, "has been extractable (CKA_NEVER_EXTRACTABLE is false)"},
	    {KEYD_KF_LOCAL, 1, "was not generated on the token (CKA_LOCAL is false)"},
	};

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (!!(key->flags & rules[i].flag) != rules[i].want)
			return cer_fail(err, errsz,
			                "key \"%s\" %s: its private half may exist outside the "
			                "HSM, so it must not become a CA key",
			                key->label, rules[i].what);
	return 0;
}

int cer_pkey_spki(EVP_PKEY *pk, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_PUBKEY(pk, &p);

	if (n <= 0)
		return -1;
	*der = p;
	*len = (size_t)n;
	return 0;
}

int cer_pubkey_equal_der(EVP_PKEY *a, const uint8_t *spki, size_t spki_len)
{
	uint8_t *der = NULL;
	size_t len;
	int eq;

	if (!a || cer_pkey_spki(a, &der, &len) != 0)
		return 0;
	eq = len == spki_len && memcmp(der, spki, len) == 0;
	OPENSSL_free(der);
	return eq;
}

int cer_key_load(struct cer_keys *k, const char *label, EVP_PKEY **out, char *err, size_t errsz)
{
	char uri[KEYD_LABEL_MAX + 16];

	(void)k;
	snprintf(uri, sizeof(uri), "keyd:label=%s", label);
	*out = ca_key_open(uri, err, errsz);
	return *out ? 0 : -1;
}

/* The test message: a CertificationRequestInfo for the key's own public key with a random
 * subject, so that keyd signs it as kind csr (keyd signs no arbitrary data for a client
 * without kind digest; docs/ceremony.md). It is never sent anywhere. *out is OPENSSL_malloc'd. */
static int test_message(EVP_PKEY *pub, unsigned char **out, size_t *outlen)
{
	unsigned char rnd[16];
	char cn[64] = "hsmca ceremony key check ";
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	int n = -1;

	*out = NULL;
	if (req && name && RAND_bytes(rnd, sizeof(rnd)) == 1) {
		size_t at = strlen(cn);
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(cn + at + 2 * i, sizeof(cn) - at - 2 * i, "%02x", rnd[i]);
		if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (unsigned char *)cn, -1,
		                               -1, 0) == 1 &&
		    X509_REQ_set_version(req, 0) == 1 &&
		    X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, pub) == 1)
			n = i2d_re_X509_REQ_tbs(req, out);
	}
	X509_NAME_free(name);
	X509_REQ_free(req);
	if (n <= 0) {
		OPENSSL_free(*out);
		*out = NULL;
		return -1;
	}
	*outlen = (size_t)n;
	return 0;
}

int cer_key_test_signature(EVP_PKEY *key, EVP_PKEY *pub, enum cer_hash hash,
                           enum cer_padding padding, char *err, size_t errsz)
{
	unsigned char *msg = NULL, *sig = NULL;
	EVP_MD_CTX *sctx = EVP_MD_CTX_new(), *vctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx;
	size_t siglen = 0, msglen = 0;
	int rc = -1;

	if (!sctx || !vctx || test_message(pub, &msg, &msglen) != 0) {
		cer_fail(err, errsz, "test signature: out of memory or randomness");
		goto out;
	}
	if (cer_sign_init(sctx, hash, padding, key, err, errsz) != 0)
		goto out;
	if (EVP_DigestSign(sctx, NULL, &siglen, msg, msglen) != 1 ||
	    !(sig = OPENSSL_malloc(siglen)) ||
	    EVP_DigestSign(sctx, sig, &siglen, msg, msglen) != 1) {
		cer_fail(err, errsz, "test signature through keyd failed");
		cer_append_ossl(err, errsz);
		goto out;
	}
	/* Verified in software with the public key the ceremony relies on. */
	if (EVP_DigestVerifyInit_ex(vctx, &pctx, cer_md_name(hash), NULL, NULL, pub, NULL) != 1 ||
	    (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA && padding == CER_PAD_PSS &&
	     (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))) {
		cer_fail(err, errsz, "test signature: cannot set up verification");
		cer_append_ossl(err, errsz);
		goto out;
	}
	if (EVP_DigestVerify(vctx, sig, siglen, msg, msglen) != 1) {
		ERR_clear_error();
		cer_fail(err, errsz,
		         "a test signature made by keyd does not verify with the expected public "
		         "key: the key keyd holds is not the one the ceremony expects");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(sig);
	OPENSSL_free(msg);
	EVP_MD_CTX_free(sctx);
	EVP_MD_CTX_free(vctx);
	return rc;
}

void cer_spki_fingerprint(const uint8_t *spki, size_t len, char *out, size_t outsz)
{
	uint8_t md[32];

	if (!EVP_Digest(spki, len, md, NULL, EVP_sha256(), NULL)) {
		snprintf(out, outsz, "(hash failed)");
		return;
	}
	cer_hex(md, sizeof(md), 1, out, outsz);
}
