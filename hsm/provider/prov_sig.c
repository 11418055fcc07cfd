/*
 * Signatures through keyd: RSA (PKCS#1 v1.5 and PSS) and ECDSA.
 *
 * A digest-sign (EVP_DigestSign*, what X509_sign, OCSP_basic_sign, TLS and every other
 * OpenSSL caller use) sends the message itself to keyd (SIGN_DATA), which reads what kind of
 * data it is, checks that this client may have it signed, hashes and signs it: the message
 * is kept here until the final call (at most PROV_DATA_MAX bytes). A signature of a
 * precomputed digest (EVP_PKEY_sign) is SIGN, which keyd grants only with kind "digest".
 * keyd wraps DigestInfo for PKCS#1 v1.5 itself.
 * keyd signs SHA-256, SHA-384 and SHA-512 digests, and PSS with MGF1 over
 * the same hash, so anything else is refused here with a clear error.
 * Verification needs only the public key: it is handed to the default
 * provider, so a key object verifies like any other key (X509_verify,
 * X509_REQ_verify on a request built in memory, a ceremony's checks).
 */
#include "prov.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

struct sig_ctx {
	struct prov_ctx *pc;
	int keytype; /* KEYD_KEY_RSA for "RSA", KEYD_KEY_EC for "ECDSA" */
	struct prov_key *key;
	int hash;          /* enum keyd_hash; 0 until set */
	int digest_fixed;  /* digest-sign: the digest was chosen at init */
	EVP_MD *md;        /* digest-sign: hashes the message */
	EVP_MD_CTX *mdctx; /* digest-sign: the message so far */
	int pad;           /* RSA_PKCS1_PADDING or RSA_PKCS1_PSS_PADDING */
	int saltlen;       /* bytes, or RSA_PSS_SALTLEN_DIGEST/AUTO/MAX */
	int mgf1_hash;     /* 0: the signature's hash */
	int signing;       /* digest-sign (the message is kept) rather than digest-verify */
	uint8_t *data;     /* digest-sign: the message so far */
	size_t data_len, data_cap;
};

/* The longest message a digest-sign keeps (a CRL of several million entries). */
#define PROV_DATA_MAX ((size_t)1 << 30)

struct hash_info {
	int hash;
	const char *name; /* our name for it, which OpenSSL also accepts */
	const char *is_a; /* OpenSSL's canonical name */
	int nid, rsa_nid, ecdsa_nid;
};

static const struct hash_info hashes[] = {
    {KEYD_HASH_SHA256, "SHA256", "SHA2-256", NID_sha256, NID_sha256WithRSAEncryption,
     NID_ecdsa_with_SHA256},
    {KEYD_HASH_SHA384, "SHA384", "SHA2-384", NID_sha384, NID_sha384WithRSAEncryption,
     NID_ecdsa_with_SHA384},
    {KEYD_HASH_SHA512, "SHA512", "SHA2-512", NID_sha512, NID_sha512WithRSAEncryption,
     NID_ecdsa_with_SHA512},
};

static const struct hash_info *hash_info(int hash)
{
	for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
		if (hashes[i].hash == hash)
			return &hashes[i];
	return NULL;
}

/* Any name OpenSSL knows for SHA-256/384/512 (SHA256, SHA2-256, sha256, OID). */
static int hash_from_name(struct prov_ctx *pc, const char *name, int *hash)
{
	EVP_MD *md;

	ERR_set_mark();
	md = EVP_MD_fetch(pc->swctx, name, NULL);
	ERR_pop_to_mark();
	*hash = 0;
	for (size_t i = 0; md && i < sizeof(hashes) / sizeof(hashes[0]); i++)
		if (EVP_MD_is_a(md, hashes[i].is_a))
			*hash = hashes[i].hash;
	EVP_MD_free(md);
	if (!*hash) {
		prov_raise(pc, PROV_R_UNSUPPORTED_DIGEST,
		           "digest '%s' is not supported: keyd signs SHA-256, SHA-384 and "
		           "SHA-512 only",
		           name);
		return 0;
	}
	return 1;
}

static struct sig_ctx *sig_newctx(void *provctx, int keytype)
{
	struct sig_ctx *sc = calloc(1, sizeof(*sc));

	if (!sc) {
		prov_raise(provctx, PROV_R_INTERNAL, "out of memory");
		return NULL;
	}
	sc->pc = provctx;
	sc->keytype = keytype;
	sc->pad = RSA_PKCS1_PADDING;
	sc->saltlen = RSA_PSS_SALTLEN_AUTO;
	return sc;
}

static void *sig_rsa_newctx(void *provctx, const char *propq)
{
	(void)propq;
	return sig_newctx(provctx, KEYD_KEY_RSA);
}

static void *sig_ecdsa_newctx(void *provctx, const char *propq)
{
	(void)propq;
	return sig_newctx(provctx, KEYD_KEY_EC);
}

static void sig_reset_digest(struct sig_ctx *sc)
{
	EVP_MD_CTX_free(sc->mdctx);
	EVP_MD_free(sc->md);
	sc->mdctx = NULL;
	sc->md = NULL;
	sc->hash = 0;
	sc->digest_fixed = 0;
	free(sc->data);
	sc->data = NULL;
	sc->data_len = sc->data_cap = 0;
	sc->signing = 0;
}

static void sig_freectx(void *ctx)
{
	struct sig_ctx *sc = ctx;

	if (!sc)
		return;
	sig_reset_digest(sc);
	prov_key_free(sc->key);
	free(sc);
}

static void *sig_dupctx(void *ctx)
{
	struct sig_ctx *sc = ctx, *d;

	d = malloc(sizeof(*d));
	if (!d) {
		prov_raise(sc->pc, PROV_R_INTERNAL, "out of memory");
		return NULL;
	}
	*d = *sc;
	d->md = NULL;
	d->mdctx = NULL;
	d->data = NULL;
	d->data_cap = 0;
	if (sc->data_len) {
		d->data = malloc(sc->data_len);
		if (!d->data) {
			d->data_len = 0;
			goto fail;
		}
		memcpy(d->data, sc->data, sc->data_len);
		d->data_cap = sc->data_len;
	}
	if (d->key)
		prov_key_up_ref(d->key);
	if (sc->md) {
		if (!EVP_MD_up_ref(sc->md))
			goto fail;
		d->md = sc->md;
	}
	if (sc->mdctx) {
		d->mdctx = EVP_MD_CTX_new();
		if (!d->mdctx || !EVP_MD_CTX_copy_ex(d->mdctx, sc->mdctx))
			goto fail;
	}
	return d;
fail:
	prov_raise(sc->pc, PROV_R_INTERNAL, "cannot copy the signature context");
	sig_freectx(d);
	return NULL;
}

static int sig_set_ctx_params(void *ctx, const OSSL_PARAM params[]);

/* Common to every init: a NULL key re-initialises with the current one. Signing needs
 * the HSM handle; verifying needs only the public key. */
static int sig_init(struct sig_ctx *sc, void *provkey, int sign, const OSSL_PARAM params[])
{
	struct prov_key *k = provkey ? provkey : sc->key;

	if (!k || k->type != sc->keytype || !k->pub) {
		prov_raise(sc->pc, PROV_R_BAD_KEY, "not a keyd %s key",
		           sc->keytype == KEYD_KEY_RSA ? "RSA" : "EC");
		return 0;
	}
	if (sign && !k->label[0]) {
		prov_raise(sc->pc, PROV_R_BAD_KEY,
		           "this public key has no HSM label and cannot sign: load signing "
		           "keys through a keyd:label=NAME URI");
		return 0;
	}
	if (k != sc->key) {
		prov_key_up_ref(k);
		prov_key_free(sc->key);
		sc->key = k;
	}
	sig_reset_digest(sc);
	sc->pad = RSA_PKCS1_PADDING;
	sc->saltlen = RSA_PSS_SALTLEN_AUTO; /* as OpenSSL: the maximum when signing */
	sc->mgf1_hash = 0;
	return sig_set_ctx_params(sc, params);
}

static int sig_sign_init(void *ctx, void *provkey, const OSSL_PARAM params[])
{
	return sig_init(ctx, provkey, 1, params);
}

static int sig_verify_init(void *ctx, void *provkey, const OSSL_PARAM params[])
{
	return sig_init(ctx, provkey, 0, params);
}

static size_t sig_max_size(const struct sig_ctx *sc)
{
	int n = EVP_PKEY_get_size(sc->key->pub);

	return n > 0 ? (size_t)n : 0;
}

/* The PSS salt length in bytes for this key and hash. */
static int sig_pss_saltlen(struct sig_ctx *sc, int hash, int *out)
{
	int hlen = (int)keyd_hash_len(hash);
	int emlen = (sc->key->bits - 1 + 7) / 8; /* RFC 8017 9.1.1: emBits = modBits - 1 */
	int max = emlen - hlen - 2;
	int v;

	switch (sc->saltlen) {
	case RSA_PSS_SALTLEN_DIGEST:
		v = hlen;
		break;
	case RSA_PSS_SALTLEN_AUTO:
	case RSA_PSS_SALTLEN_MAX:
		v = max;
		break;
	default:
		v = sc->saltlen;
		break;
	}
	if (v < 0 || v > max || v > UINT16_MAX) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER,
		           "PSS salt length %d does not fit a %d-bit key with %s (at most %d)", v,
		           sc->key->bits, hash_info(hash)->name, max);
		return 0;
	}
	*out = v;
	return 1;
}

/* The hash to use: the one set, else (ECDSA only) the one the digest's length names. */
static int sig_hash(struct sig_ctx *sc, size_t dlen)
{
	if (sc->hash)
		return sc->hash;
	if (sc->keytype == KEYD_KEY_EC)
		for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
			if (keyd_hash_len(hashes[i].hash) == dlen)
				return hashes[i].hash;
	return 0;
}

/* keyd's algorithm and PSS salt for this context and hash. */
static int sig_alg(struct sig_ctx *sc, int hash, int *alg, int *salt)
{
	*salt = 0;
	if (sc->keytype == KEYD_KEY_EC) {
		*alg = KEYD_ALG_ECDSA;
	} else if (sc->pad == RSA_PKCS1_PSS_PADDING) {
		*alg = KEYD_ALG_RSA_PSS;
		if (sc->mgf1_hash && sc->mgf1_hash != hash) {
			prov_raise(sc->pc, PROV_R_BAD_PARAMETER,
			           "MGF1 digest %s differs from the signature digest %s: keyd "
			           "uses one hash for both",
			           hash_info(sc->mgf1_hash)->name, hash_info(hash)->name);
			return 0;
		}
		if (!sig_pss_saltlen(sc, hash, salt))
			return 0;
	} else {
		*alg = KEYD_ALG_RSA_PKCS1;
	}
	return 1;
}

/* keyd's signature into the caller's buffer. */
static int sig_out(struct sig_ctx *sc, const uint8_t *buf, size_t len, unsigned char *sig,
                   size_t *siglen, size_t sigsize)
{
	/* An RSA signature is as long as the modulus (RFC 8017 8.1.1, 8.2.1);
	 * restore leading zeros should a token have dropped them. */
	size_t want = sc->keytype == KEYD_KEY_RSA ? sig_max_size(sc) : len;

	if (len > want || want > KEYD_SIG_MAX) {
		prov_raise(sc->pc, PROV_R_KEYD_FAILED,
		           "keyd returned a %zu-byte signature for key '%s', expected %zu", len,
		           sc->key->label, want);
		return 0;
	}
	if (want > sigsize) {
		prov_raise(sc->pc, PROV_R_BUFFER_TOO_SMALL,
		           "signature needs %zu bytes, the buffer has %zu", want, sigsize);
		return 0;
	}
	memset(sig, 0, want - len);
	memcpy(sig + (want - len), buf, len);
	*siglen = want;
	return 1;
}

/* Sign a digest through keyd. */
static int sig_sign_digest(struct sig_ctx *sc, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *dgst, size_t dlen)
{
	struct keyd_client *client;
	struct keyd_err err = {0};
	uint8_t buf[KEYD_SIG_MAX];
	size_t len = sizeof(buf);
	int hash, alg, salt;

	hash = sig_hash(sc, dlen);
	if (!hash) {
		prov_raise(sc->pc, PROV_R_UNSUPPORTED_DIGEST,
		           "no signature digest set (EVP_PKEY_CTX_set_signature_md) for a "
		           "%zu-byte digest: keyd signs SHA-256, SHA-384 or SHA-512 digests",
		           dlen);
		return 0;
	}
	if (dlen != keyd_hash_len(hash)) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER, "a %zu-byte digest is not a %s digest",
		           dlen, hash_info(hash)->name);
		return 0;
	}
	if (!sig_alg(sc, hash, &alg, &salt))
		return 0;
	client = prov_client(sc->pc);
	if (!client)
		return 0;
	if (keyd_client_sign(client, sc->key->label, alg, hash, (uint16_t)salt, dgst, dlen, buf,
	                     &len, &err) != KEYD_OK) {
		prov_raise_keyd(sc->pc, &err, "signing", sc->key->label);
		return 0;
	}
	return sig_out(sc, buf, len, sig, siglen, sigsize);
}

/* Sign a message through keyd, which hashes it (SIGN_DATA). */
static int sig_sign_data(struct sig_ctx *sc, unsigned char *sig, size_t *siglen, size_t sigsize,
                         const unsigned char *data, size_t len)
{
	struct keyd_client *client;
	struct keyd_err err = {0};
	uint8_t buf[KEYD_SIG_MAX];
	size_t blen = sizeof(buf);
	int alg, salt;

	if (!sig_alg(sc, sc->hash, &alg, &salt))
		return 0;
	if (len == 0) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER, "keyd signs no empty message");
		return 0;
	}
	client = prov_client(sc->pc);
	if (!client)
		return 0;
	if (keyd_client_sign_data(client, sc->key->label, alg, sc->hash, (uint16_t)salt, data, len,
	                          buf, &blen, &err) != KEYD_OK) {
		prov_raise_keyd(sc->pc, &err, "signing", sc->key->label);
		return 0;
	}
	return sig_out(sc, buf, blen, sig, siglen, sigsize);
}

static int sig_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
	struct sig_ctx *sc = ctx;

	if (!sc->key) {
		prov_raise(sc->pc, PROV_R_BAD_KEY, "signature context has no key");
		return 0;
	}
	if (!sig) {
		*siglen = sig_max_size(sc);
		return 1;
	}
	return sig_sign_digest(sc, sig, siglen, sigsize, tbs, tbslen);
}

/* Choose the digest of a digest-sign operation and start hashing. */
static int sig_start_digest(struct sig_ctx *sc, const char *mdname)
{
	int hash;

	if (!hash_from_name(sc->pc, mdname, &hash))
		return 0;
	sc->md = EVP_MD_fetch(sc->pc->swctx, hash_info(hash)->name, NULL);
	sc->mdctx = EVP_MD_CTX_new();
	if (!sc->md || !sc->mdctx || !EVP_DigestInit_ex2(sc->mdctx, sc->md, NULL)) {
		prov_raise(sc->pc, PROV_R_INTERNAL, "cannot start a %s digest",
		           hash_info(hash)->name);
		return 0;
	}
	sc->hash = hash;
	sc->digest_fixed = 1;
	return 1;
}

static int sig_digest_init(struct sig_ctx *sc, const char *mdname, void *provkey, int sign,
                           const OSSL_PARAM params[])
{
	if (!sig_init(sc, provkey, sign, NULL))
		return 0;
	/* OpenSSL passes the key's default digest when the caller gave none. */
	if (!sig_start_digest(sc, mdname && *mdname ? mdname : "SHA256"))
		return 0;
	sc->signing = sign;
	return sig_set_ctx_params(sc, params);
}

static int sig_digest_sign_init(void *ctx, const char *mdname, void *provkey,
                                const OSSL_PARAM params[])
{
	return sig_digest_init(ctx, mdname, provkey, 1, params);
}

static int sig_digest_verify_init(void *ctx, const char *mdname, void *provkey,
                                  const OSSL_PARAM params[])
{
	return sig_digest_init(ctx, mdname, provkey, 0, params);
}

static int sig_digest_update(void *ctx, const unsigned char *data, size_t datalen)
{
	struct sig_ctx *sc = ctx;

	if (!sc->mdctx) {
		prov_raise(sc->pc, PROV_R_INTERNAL, "digest update without init");
		return 0;
	}
	if (!sc->signing)
		return EVP_DigestUpdate(sc->mdctx, data, datalen);
	if (datalen > PROV_DATA_MAX - sc->data_len) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER,
		           "message over %zu bytes: too long to sign through keyd", PROV_DATA_MAX);
		return 0;
	}
	if (sc->data_len + datalen > sc->data_cap) {
		size_t cap = sc->data_cap ? sc->data_cap : 4096;
		uint8_t *p;
		while (cap < sc->data_len + datalen)
			cap = cap > PROV_DATA_MAX / 2 ? PROV_DATA_MAX : cap * 2;
		p = realloc(sc->data, cap);
		if (!p) {
			prov_raise(sc->pc, PROV_R_INTERNAL, "out of memory");
			return 0;
		}
		sc->data = p;
		sc->data_cap = cap;
	}
	if (datalen)
		memcpy(sc->data + sc->data_len, data, datalen);
	sc->data_len += datalen;
	return 1;
}

static int sig_digest_sign_final(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
	struct sig_ctx *sc = ctx;
	int ok;

	if (!sc->mdctx || !sc->key) {
		prov_raise(sc->pc, PROV_R_INTERNAL, "digest-sign final without init");
		return 0;
	}
	if (!sig) {
		*siglen = sig_max_size(sc);
		return 1;
	}
	ok = sig_sign_data(sc, sig, siglen, sigsize, sc->data, sc->data_len);
	sc->data_len = 0; /* a final ends the message */
	return ok;
}

static int sig_digest_sign(void *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
	struct sig_ctx *sc = ctx;

	if (!sc->md || !sc->key) {
		prov_raise(sc->pc, PROV_R_INTERNAL, "digest-sign without init");
		return 0;
	}
	if (!sig) {
		*siglen = sig_max_size(sc);
		return 1;
	}
	return sig_sign_data(sc, sig, siglen, sigsize, tbs, tbslen);
}

/* ---- verification, by the default provider with the public key ---- */

static int sig_verify_digest(struct sig_ctx *sc, const unsigned char *sig, size_t siglen,
                             const unsigned char *dgst, size_t dlen)
{
	EVP_PKEY_CTX *v = NULL;
	EVP_MD *md = NULL;
	int hash, ok = 0;

	hash = sig_hash(sc, dlen);
	if (!hash || dlen != keyd_hash_len(hash)) {
		prov_raise(sc->pc, PROV_R_UNSUPPORTED_DIGEST,
		           "a %zu-byte digest with %s: verification takes a SHA-256, SHA-384 "
		           "or SHA-512 digest",
		           dlen, hash ? hash_info(hash)->name : "no digest set");
		return 0;
	}
	if (sc->keytype == KEYD_KEY_RSA && sc->pad == RSA_PKCS1_PSS_PADDING && sc->mgf1_hash &&
	    sc->mgf1_hash != hash) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER, "MGF1 digest %s differs from digest %s",
		           hash_info(sc->mgf1_hash)->name, hash_info(hash)->name);
		return 0;
	}
	md = EVP_MD_fetch(sc->pc->swctx, hash_info(hash)->name, NULL);
	v = EVP_PKEY_CTX_new_from_pkey(sc->pc->swctx, sc->key->pub, NULL);
	if (!md || !v || EVP_PKEY_verify_init(v) <= 0 || EVP_PKEY_CTX_set_signature_md(v, md) <= 0)
		goto done;
	if (sc->keytype == KEYD_KEY_RSA &&
	    (EVP_PKEY_CTX_set_rsa_padding(v, sc->pad) <= 0 ||
	     (sc->pad == RSA_PKCS1_PSS_PADDING &&
	      (EVP_PKEY_CTX_set_rsa_pss_saltlen(v, sc->saltlen) <= 0 ||
	       EVP_PKEY_CTX_set_rsa_mgf1_md(v, md) <= 0))))
		goto done;
	/* 1 for a good signature; 0 (with OpenSSL's reason queued) for a bad one. */
	ok = EVP_PKEY_verify(v, sig, siglen, dgst, dlen) == 1;
done:
	EVP_PKEY_CTX_free(v);
	EVP_MD_free(md);
	return ok;
}

static int sig_verify(void *ctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs,
                      size_t tbslen)
{
	struct sig_ctx *sc = ctx;

	if (!sc->key) {
		prov_raise(sc->pc, PROV_R_BAD_KEY, "signature context has no key");
		return 0;
	}
	return sig_verify_digest(sc, sig, siglen, tbs, tbslen);
}

static int sig_digest_verify_final(void *ctx, const unsigned char *sig, size_t siglen)
{
	struct sig_ctx *sc = ctx;
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (!sc->mdctx || !sc->key) {
		prov_raise(sc->pc, PROV_R_INTERNAL, "digest-verify final without init");
		return 0;
	}
	if (!EVP_DigestFinal_ex(sc->mdctx, dgst, &dlen))
		return 0;
	return sig_verify_digest(sc, sig, siglen, dgst, dlen);
}

static int sig_digest_verify(void *ctx, const unsigned char *sig, size_t siglen,
                             const unsigned char *tbs, size_t tbslen)
{
	struct sig_ctx *sc = ctx;
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (!sc->md || !sc->key) {
		prov_raise(sc->pc, PROV_R_INTERNAL, "digest-verify without init");
		return 0;
	}
	if (!EVP_Digest(tbs, tbslen, dgst, &dlen, sc->md, NULL))
		return 0;
	return sig_verify_digest(sc, sig, siglen, dgst, dlen);
}

/* ---- AlgorithmIdentifier ---- */

/* Wrap DER bytes as the SEQUENCE parameter of an AlgorithmIdentifier. */
static int algor_set_seq(X509_ALGOR *alg, int nid, const unsigned char *der, int len)
{
	ASN1_STRING *s = ASN1_STRING_new();

	if (!s || !ASN1_STRING_set(s, der, len) ||
	    !X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_SEQUENCE, s)) {
		ASN1_STRING_free(s);
		return 0;
	}
	return 1;
}

/*
 * RSASSA-PSS AlgorithmIdentifier (RFC 4055): hashAlgorithm and MGF1 over the
 * same hash, each hash identifier with NULL parameters as OpenSSL 3.0's
 * default provider writes them; saltLength unless it is the default 20;
 * trailerField omitted (always 1).
 */
static X509_ALGOR *algor_pss(const struct hash_info *hi, int salt)
{
	RSA_PSS_PARAMS *pss = RSA_PSS_PARAMS_new();
	X509_ALGOR *out = X509_ALGOR_new(), *mgf_hash = X509_ALGOR_new();
	unsigned char *der = NULL;
	int len, ok = 0;

	if (!pss || !out || !mgf_hash)
		goto done;
	pss->hashAlgorithm = X509_ALGOR_new();
	pss->maskGenAlgorithm = X509_ALGOR_new();
	if (!pss->hashAlgorithm || !pss->maskGenAlgorithm ||
	    !X509_ALGOR_set0(pss->hashAlgorithm, OBJ_nid2obj(hi->nid), V_ASN1_NULL, NULL) ||
	    !X509_ALGOR_set0(mgf_hash, OBJ_nid2obj(hi->nid), V_ASN1_NULL, NULL))
		goto done;
	len = i2d_X509_ALGOR(mgf_hash, &der);
	if (len <= 0 || !algor_set_seq(pss->maskGenAlgorithm, NID_mgf1, der, len))
		goto done;
	OPENSSL_free(der);
	der = NULL;
	if (salt != 20) {
		pss->saltLength = ASN1_INTEGER_new();
		if (!pss->saltLength || !ASN1_INTEGER_set(pss->saltLength, salt))
			goto done;
	}
	len = i2d_RSA_PSS_PARAMS(pss, &der);
	if (len <= 0 || !algor_set_seq(out, NID_rsassaPss, der, len))
		goto done;
	ok = 1;
done:
	OPENSSL_free(der);
	X509_ALGOR_free(mgf_hash);
	RSA_PSS_PARAMS_free(pss);
	if (!ok) {
		X509_ALGOR_free(out);
		out = NULL;
	}
	return out;
}

/* DER of this context's signature AlgorithmIdentifier into *der (OPENSSL_free it). */
static int sig_algorithm_id(struct sig_ctx *sc, unsigned char **der)
{
	const struct hash_info *hi = hash_info(sc->hash);
	X509_ALGOR *alg = NULL;
	int salt, len = 0;

	if (sc->keytype == KEYD_KEY_EC) {
		alg = X509_ALGOR_new();
		if (alg && !X509_ALGOR_set0(alg, OBJ_nid2obj(hi->ecdsa_nid), V_ASN1_UNDEF, NULL))
			goto done;
	} else if (sc->pad == RSA_PKCS1_PSS_PADDING) {
		if (!sig_pss_saltlen(sc, sc->hash, &salt))
			goto done;
		alg = algor_pss(hi, salt);
	} else {
		alg = X509_ALGOR_new();
		if (alg && !X509_ALGOR_set0(alg, OBJ_nid2obj(hi->rsa_nid), V_ASN1_NULL, NULL))
			goto done;
	}
	if (alg)
		len = i2d_X509_ALGOR(alg, der);
done:
	X509_ALGOR_free(alg);
	if (len <= 0)
		prov_raise(sc->pc, PROV_R_INTERNAL, "cannot encode the signature algorithm");
	return len;
}

/* ---- parameters ---- */

static int sig_get_ctx_params(void *ctx, OSSL_PARAM params[])
{
	struct sig_ctx *sc = ctx;
	unsigned char *der = NULL;
	OSSL_PARAM *p;
	int len, ok = 0;

	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
	/* Only a complete context has one: a key and a digest. */
	if (p && sc->key && sc->hash) {
		len = sig_algorithm_id(sc, &der);
		if (len <= 0 || !OSSL_PARAM_set_octet_string(p, der, (size_t)len))
			goto done;
	}
	p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
	if (p && sc->hash && !OSSL_PARAM_set_utf8_string(p, hash_info(sc->hash)->name))
		goto done;
	if (sc->keytype == KEYD_KEY_RSA) {
		p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
		if (p && p->data_type == OSSL_PARAM_UTF8_STRING) {
			if (!OSSL_PARAM_set_utf8_string(p, sc->pad == RSA_PKCS1_PSS_PADDING
			                                       ? OSSL_PKEY_RSA_PAD_MODE_PSS
			                                       : OSSL_PKEY_RSA_PAD_MODE_PKCSV15))
				goto done;
		} else if (p && !OSSL_PARAM_set_int(p, sc->pad)) {
			goto done;
		}
		p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
		if (p && p->data_type == OSSL_PARAM_UTF8_STRING) {
			char num[16];
			const char *s =
			    sc->saltlen == RSA_PSS_SALTLEN_DIGEST
			        ? OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST
			    : sc->saltlen == RSA_PSS_SALTLEN_MAX  ? OSSL_PKEY_RSA_PSS_SALT_LEN_MAX
			    : sc->saltlen == RSA_PSS_SALTLEN_AUTO ? OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO
			                                          : NULL;
			if (!s) {
				snprintf(num, sizeof(num), "%d", sc->saltlen);
				s = num;
			}
			if (!OSSL_PARAM_set_utf8_string(p, s))
				goto done;
		} else if (p && !OSSL_PARAM_set_int(p, sc->saltlen)) {
			goto done;
		}
		p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
		if (p && (sc->mgf1_hash || sc->hash) &&
		    !OSSL_PARAM_set_utf8_string(
		        p, hash_info(sc->mgf1_hash ? sc->mgf1_hash : sc->hash)->name))
			goto done;
	}
	ok = 1;
done:
	OPENSSL_free(der);
	return ok;
}

static int sig_set_digest(struct sig_ctx *sc, const OSSL_PARAM *p)
{
	const char *name = NULL;
	int hash;

	if (!OSSL_PARAM_get_utf8_string_ptr(p, &name)) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER, "digest parameter is not a string");
		return 0;
	}
	if (!hash_from_name(sc->pc, name, &hash))
		return 0;
	if (sc->digest_fixed && hash != sc->hash) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER,
		           "digest %s: the digest of a digest-sign operation is fixed at init (%s)",
		           name, hash_info(sc->hash)->name);
		return 0;
	}
	if (sc->mgf1_hash && sc->mgf1_hash != hash) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER,
		           "digest %s differs from the MGF1 digest %s: keyd uses one hash for both",
		           name, hash_info(sc->mgf1_hash)->name);
		return 0;
	}
	sc->hash = hash;
	return 1;
}

static int sig_set_pad(struct sig_ctx *sc, const OSSL_PARAM *p)
{
	const char *s = NULL;
	int pad = 0;

	if (p->data_type == OSSL_PARAM_UTF8_STRING) {
		if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
			return 0;
		if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
			pad = RSA_PKCS1_PADDING;
		else if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0)
			pad = RSA_PKCS1_PSS_PADDING;
	} else if (!OSSL_PARAM_get_int(p, &pad)) {
		pad = 0;
	}
	if (pad != RSA_PKCS1_PADDING && pad != RSA_PKCS1_PSS_PADDING) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER,
		           "RSA padding mode %s%s is not supported: keyd signs pkcs1 or pss",
		           s ? s : "number ", s ? "" : "other than 1 or 6");
		return 0;
	}
	sc->pad = pad;
	return 1;
}

static int sig_set_saltlen(struct sig_ctx *sc, const OSSL_PARAM *p)
{
	const char *s = NULL;
	char *end;
	long v = -100;

	if (p->data_type == OSSL_PARAM_UTF8_STRING) {
		if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
			return 0;
		if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0) {
			v = RSA_PSS_SALTLEN_DIGEST;
		} else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0) {
			v = RSA_PSS_SALTLEN_MAX;
		} else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0) {
			v = RSA_PSS_SALTLEN_AUTO;
		} else {
			/* EVP_PKEY_CTX_set_rsa_pss_saltlen arrives as a decimal string. */
			errno = 0;
			v = strtol(s, &end, 10);
			if (errno || end == s || *end)
				v = -100;
		}
	} else {
		int i;

		if (OSSL_PARAM_get_int(p, &i))
			v = i;
	}
	if (v < RSA_PSS_SALTLEN_MAX || v > UINT16_MAX) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER,
		           "PSS salt length %s is not supported: a byte count, digest, max or auto",
		           s ? s : "(number out of range)");
		return 0;
	}
	sc->saltlen = (int)v;
	return 1;
}

static int sig_set_mgf1(struct sig_ctx *sc, const OSSL_PARAM *p)
{
	const char *name = NULL;
	int hash;

	if (!OSSL_PARAM_get_utf8_string_ptr(p, &name)) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER, "MGF1 digest parameter is not a string");
		return 0;
	}
	if (!hash_from_name(sc->pc, name, &hash))
		return 0;
	if (sc->hash && hash != sc->hash) {
		prov_raise(sc->pc, PROV_R_BAD_PARAMETER,
		           "MGF1 digest %s differs from the signature digest %s: keyd uses one "
		           "hash for both",
		           name, hash_info(sc->hash)->name);
		return 0;
	}
	sc->mgf1_hash = hash;
	return 1;
}

static int sig_set_ctx_params(void *ctx, const OSSL_PARAM params[])
{
	struct sig_ctx *sc = ctx;
	const OSSL_PARAM *p;

	if (!params)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
	if (p && !sig_set_digest(sc, p))
		return 0;
	if (sc->keytype != KEYD_KEY_RSA)
		return 1;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
	if (p && !sig_set_pad(sc, p))
		return 0;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
	if (p && !sig_set_saltlen(sc, p))
		return 0;
	p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
	if (p && !sig_set_mgf1(sc, p))
		return 0;
	return 1;
}

static const OSSL_PARAM sig_rsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM sig_ecdsa_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM sig_rsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM sig_ecdsa_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_END,
};

static const OSSL_PARAM *sig_rsa_settable_ctx_params(void *ctx, void *provctx)
{
	(void)ctx;
	(void)provctx;
	return sig_rsa_settable;
}

static const OSSL_PARAM *sig_ecdsa_settable_ctx_params(void *ctx, void *provctx)
{
	(void)ctx;
	(void)provctx;
	return sig_ecdsa_settable;
}

static const OSSL_PARAM *sig_rsa_gettable_ctx_params(void *ctx, void *provctx)
{
	(void)ctx;
	(void)provctx;
	return sig_rsa_gettable;
}

static const OSSL_PARAM *sig_ecdsa_gettable_ctx_params(void *ctx, void *provctx)
{
	(void)ctx;
	(void)provctx;
	return sig_ecdsa_gettable;
}

const OSSL_DISPATCH prov_rsa_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_rsa_newctx},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_sign_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_sign_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign},
    {OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))sig_verify_init},
    {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))sig_digest_verify_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))sig_digest_verify_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))sig_digest_verify},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_rsa_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_rsa_settable_ctx_params},
    {0, NULL},
};

const OSSL_DISPATCH prov_ecdsa_signature_functions[] = {
    {OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_ecdsa_newctx},
    {OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx},
    {OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx},
    {OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init},
    {OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_sign_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_sign_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign},
    {OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))sig_verify_init},
    {OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))sig_digest_verify_init},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))sig_digest_update},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))sig_digest_verify_final},
    {OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))sig_digest_verify},
    {OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params},
    {OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))sig_ecdsa_gettable_ctx_params},
    {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params},
    {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))sig_ecdsa_settable_ctx_params},
    {0, NULL},
};
