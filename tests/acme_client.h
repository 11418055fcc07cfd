/* An ACME client's cryptography (tests/acme_client.c): the unit test of ca-core/acme, the
 * end-to-end test against hsmca-cad and the ACME benchmark (tests/bench/acme) sign with it. A
 * failure prints where and aborts (no Check needed: the benchmark links it too). */
#ifndef HSMCA_TESTS_ACME_CLIENT_H
#define HSMCA_TESTS_ACME_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

/* A key for alg ("ES256", "ES384", "RS256", "EdDSA") and its public JWK. A tkey signs in one
 * thread at a time: an ECDSA key keeps its signing context (sctx, made by tkey_new; NULL in a
 * tkey made by hand, which then signs through a fresh context every time). */
struct tkey {
	EVP_PKEY *k;
	const char *alg;
	json_t *jwk;
	EVP_PKEY_CTX *sctx;
};
struct tkey tkey_new(const char *alg);
void tkey_free(struct tkey *t);
/* base64url of d (malloc). */
char *b64(const uint8_t *d, size_t n);
/* The JWS signature of input with t, base64url (malloc). */
char *sign(const struct tkey *t, const char *input);
/* A flattened JWS of payload (NULL: empty) under protected header hdr (stolen), signed with
 * t, as compact JSON text (malloc). */
char *jws_with(const struct tkey *t, json_t *hdr, const char *payload);
/* The externalAccountBinding for t's jwk under credential kid/key (HS256) for url. */
json_t *eab_for(const struct tkey *t, const char *kid, const uint8_t *key, size_t key_len,
                const char *url);

#endif
