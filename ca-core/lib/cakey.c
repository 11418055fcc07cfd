/* A CA's signing key: opening through OSSL_STORE, the digest rule, and the held key that is
 * reopened after a failed signature (cakey.h). */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/store.h>

#include "cakey.h"

void ca_key_why(char *why, size_t n)
{
	const char *data = NULL;
	int flags = 0;
	/* The first error is the provider's own reason (keyd's); later ones are OpenSSL's
	 * wrapping of it. */
	unsigned long e = ERR_peek_error_data(&data, &flags);
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	if (!(flags & ERR_TXT_STRING) || (data && !*data))
		data = NULL;
	snprintf(why, n, "%s%s%s", e ? buf : "unknown error", data ? ": " : "", data ? data : "");
	ERR_clear_error();
}

EVP_PKEY *ca_key_open(const char *uri, char *err, size_t errsz)
{
	OSSL_STORE_CTX *sc = OSSL_STORE_open_ex(uri, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	EVP_PKEY *key = NULL;
	char why[512];

	if (sc) {
		OSSL_STORE_expect(sc, OSSL_STORE_INFO_PKEY);
		while (!key && !OSSL_STORE_eof(sc)) {
			OSSL_STORE_INFO *info = OSSL_STORE_load(sc);
			if (!info)
				break;
			key = OSSL_STORE_INFO_get1_PKEY(info);
			OSSL_STORE_INFO_free(info);
		}
		OSSL_STORE_close(sc);
	}
	if (!key) {
		ca_key_why(why, sizeof(why));
		snprintf(err, errsz, "cannot load the key %s: %s", uri, why);
	}
	ERR_clear_error();
	return key;
}

const char *ca_key_digest(const EVP_PKEY *key)
{
	if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return NULL;
	if (EVP_PKEY_is_a(key, "EC")) {
		int bits = EVP_PKEY_get_bits(key);
		if (bits > 384)
			return "SHA512";
		if (bits > 256)
			return "SHA384";
	}
	return "SHA256";
}

int ca_key_sign_init(EVP_MD_CTX *ctx, EVP_PKEY *key)
{
	return EVP_DigestSignInit_ex(ctx, NULL, ca_key_digest(key), NULL, NULL, key, NULL);
}

int ca_key_init(struct ca_key *k, const char *uri)
{
	memset(k, 0, sizeof(*k));
	if (strlen(uri) >= sizeof(k->uri) || pthread_mutex_init(&k->lock, NULL) != 0)
		return -1;
	memcpy(k->uri, uri, strlen(uri) + 1);
	return 0;
}

EVP_PKEY *ca_key_get(struct ca_key *k, char *err, size_t errsz)
{
	EVP_PKEY *key;

	/* Opening under the lock: concurrent users wait for one round trip to keyd instead of
	 * each making their own. */
	pthread_mutex_lock(&k->lock);
	if (!k->key)
		k->key = ca_key_open(k->uri, err, errsz);
	key = k->key;
	if (key && EVP_PKEY_up_ref(key) != 1) {
		snprintf(err, errsz, "cannot take a reference to the key %s", k->uri);
		key = NULL;
	}
	pthread_mutex_unlock(&k->lock);
	return key;
}

int ca_key_held(struct ca_key *k)
{
	int held;

	pthread_mutex_lock(&k->lock);
	held = k->key != NULL;
	pthread_mutex_unlock(&k->lock);
	return held;
}

void ca_key_failed(struct ca_key *k, EVP_PKEY *key)
{
	pthread_mutex_lock(&k->lock);
	/* Only the key that failed: another thread may already hold a fresh one. */
	if (key && k->key == key) {
		EVP_PKEY_free(k->key);
		k->key = NULL;
	}
	pthread_mutex_unlock(&k->lock);
}

void ca_key_clear(struct ca_key *k)
{
	EVP_PKEY_free(k->key);
	k->key = NULL;
	pthread_mutex_destroy(&k->lock);
}
