/* An ACME client's cryptography for the tests and the ACME benchmark: keys of every accepted
 * algorithm with their JWKs, flattened JWS signing, and External Account Binding MACs. A
 * failure (no memory, OpenSSL refusing) prints where and aborts: Check reports the test as
 * failed, a benchmark stops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "acme.h"
#include "acme_client.h"

#define need(cond)                                                                                 \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #cond);          \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

char *b64(const uint8_t *d, size_t n)
{
	char *s = malloc(4 * n / 3 + 4);
	need(s && acme_b64url_encode(d, n, s, 4 * n / 3 + 4) >= 0);
	return s;
}

static json_t *bn_member(const EVP_PKEY *k, const char *param, size_t pad)
{
	BIGNUM *bn = NULL;
	uint8_t buf[600];
	need(EVP_PKEY_get_bn_param(k, param, &bn));
	int n = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
	char *s = b64(buf, (size_t)n);
	json_t *j = json_string(s);
	free(s);
	BN_free(bn);
	return j;
}

struct tkey tkey_new(const char *alg)
{
	struct tkey t = {.alg = alg};

	if (!strcmp(alg, "ES256") || !strcmp(alg, "ES384")) {
		int p384 = !strcmp(alg, "ES384");
		t.k = EVP_EC_gen(p384 ? "P-384" : "P-256");
		t.jwk =
		    json_pack("{s:s, s:s, s:o, s:o}", "kty", "EC", "crv", p384 ? "P-384" : "P-256",
		              "x", bn_member(t.k, OSSL_PKEY_PARAM_EC_PUB_X, p384 ? 48 : 32), "y",
		              bn_member(t.k, OSSL_PKEY_PARAM_EC_PUB_Y, p384 ? 48 : 32));
		/* Made once: EVP_DigestSignInit fetches the algorithms again for every JWS. */
		need(t.k && (t.sctx = EVP_PKEY_CTX_new_from_pkey(NULL, t.k, NULL)) != NULL);
		need(EVP_PKEY_sign_init(t.sctx) == 1);
	} else if (!strcmp(alg, "RS256")) {
		t.k = EVP_RSA_gen(2048);
		t.jwk = json_pack("{s:s, s:o, s:o}", "kty", "RSA", "n",
		                  bn_member(t.k, OSSL_PKEY_PARAM_RSA_N, 0), "e",
		                  bn_member(t.k, OSSL_PKEY_PARAM_RSA_E, 0));
	} else {
		uint8_t raw[32];
		size_t n = sizeof(raw);
		t.k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		need(EVP_PKEY_get_raw_public_key(t.k, raw, &n));
		char *s = b64(raw, n);
		t.jwk = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", s);
		free(s);
	}
	need(t.k != NULL);
	need(t.jwk != NULL);
	return t;
}

void tkey_free(struct tkey *t)
{
	EVP_PKEY_CTX_free(t->sctx);
	EVP_PKEY_free(t->k);
	json_decref(t->jwk);
}

/* The JWS signature of input with t, as JWS encodes it. */
char *sign(const struct tkey *t, const char *input)
{
	const EVP_MD *md = !strcmp(t->alg, "ES384")   ? EVP_sha384()
	                   : !strcmp(t->alg, "EdDSA") ? NULL
	                                              : EVP_sha256();
	uint8_t sig[1024], raw[96], d[48];
	size_t n = sizeof(sig);

	if (t->sctx) {
		/* ECDSA over the digest with the key's own context. */
		int p384 = !strcmp(t->alg, "ES384");
		if (p384)
			SHA384((const uint8_t *)input, strlen(input), d);
		else
			SHA256((const uint8_t *)input, strlen(input), d);
		need(EVP_PKEY_sign(t->sctx, sig, &n, d, p384 ? 48 : 32) == 1);
	} else {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		need(ctx && EVP_DigestSignInit(ctx, NULL, md, NULL, t->k) == 1);
		need(EVP_DigestSign(ctx, sig, &n, (const uint8_t *)input, strlen(input)) == 1);
		EVP_MD_CTX_free(ctx);
	}
	if (t->alg[0] == 'E' && t->alg[1] == 'S') {
		size_t half = !strcmp(t->alg, "ES384") ? 48 : 32;
		const uint8_t *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)half);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + half, (int)half);
		ECDSA_SIG_free(es);
		return b64(raw, 2 * half);
	}
	return b64(sig, n);
}

/* A flattened JWS of payload (NULL: empty) under protected header hdr (stolen), signed with
 * t. */
char *jws_with(const struct tkey *t, json_t *hdr, const char *payload)
{
	char *h = json_dumps(hdr, JSON_COMPACT), *hb = b64((const uint8_t *)h, strlen(h));
	char *pb = payload ? b64((const uint8_t *)payload, strlen(payload)) : strdup("");
	char *input, *sig, *out;

	need(asprintf(&input, "%s.%s", hb, pb) >= 0);
	sig = sign(t, input);
	json_t *o = json_pack("{s:s, s:s, s:s}", "protected", hb, "payload", pb, "signature", sig);
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	json_decref(hdr);
	free(h);
	free(hb);
	free(pb);
	free(input);
	free(sig);
	return out;
}

/* The externalAccountBinding for t's jwk under credential e (alg HS256). */
json_t *eab_for(const struct tkey *t, const char *kid, const uint8_t *key, size_t key_len,
                const char *url)
{
	char *h, *hb, *p, *pb, *input, *sig;
	uint8_t mac[32];
	unsigned n = 0;
	json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", kid, "url", url), *o;

	h = json_dumps(hdr, JSON_COMPACT);
	hb = b64((const uint8_t *)h, strlen(h));
	p = json_dumps(t->jwk, JSON_COMPACT);
	pb = b64((const uint8_t *)p, strlen(p));
	need(asprintf(&input, "%s.%s", hb, pb) >= 0);
	HMAC(EVP_sha256(), key, (int)key_len, (const uint8_t *)input, strlen(input), mac, &n);
	sig = b64(mac, n);
	o = json_pack("{s:s, s:s, s:s}", "protected", hb, "payload", pb, "signature", sig);
	json_decref(hdr);
	free(h);
	free(hb);
	free(p);
	free(pb);
	free(input);
	free(sig);
	return o;
}
