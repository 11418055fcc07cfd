/* Single-use nonces in bounded memory (RFC 8555 §6.5): a nonce is base64url(counter || first 16
 * bytes of HMAC-SHA256(key, counter)); one flag per counter modulo the capacity says whether it
 * is still unused. Issuing counter c overwrites the flag of c - capacity, so a nonce older than
 * the last `capacity` issued is refused like a used one, and memory never grows. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "acme.h"

#define MAC_LEN 16

int acme_nonces_init(struct acme_nonces *s, size_t capacity)
{
	memset(s, 0, sizeof(*s));
	if (capacity < ACME_NONCES_MIN || capacity > ACME_NONCES_MAX)
		return -1;
	s->unused = calloc(capacity, 1);
	if (!s->unused || RAND_priv_bytes(s->key, sizeof(s->key)) != 1) {
		free(s->unused);
		s->unused = NULL;
		return -1;
	}
	s->capacity = capacity;
	pthread_mutex_init(&s->mu, NULL);
	return 0;
}

void acme_nonces_fini(struct acme_nonces *s)
{
	if (!s->unused)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s->unused);
	OPENSSL_cleanse(s->key, sizeof(s->key));
	memset(s, 0, sizeof(*s));
}

static int mac(const struct acme_nonces *s, const uint8_t ctr[8], uint8_t out[MAC_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	if (!HMAC(EVP_sha256(), s->key, sizeof(s->key), ctr, 8, md, &n) || n < MAC_LEN)
		return -1;
	memcpy(out, md, MAC_LEN);
	return 0;
}

int acme_nonce_new(struct acme_nonces *s, char *out)
{
	uint8_t raw[8 + MAC_LEN];
	uint64_t c;

	pthread_mutex_lock(&s->mu);
	c = s->next++;
	s->unused[c % s->capacity] = 1;
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < 8; i++)
		raw[i] = (uint8_t)(c >> (56 - 8 * i));
	if (mac(s, raw, raw + 8) < 0)
		return -1;
	return acme_b64url_encode(raw, sizeof(raw), out, ACME_NONCE_LEN + 1) == ACME_NONCE_LEN ? 0
	                                                                                       : -1;
}

int acme_nonce_use(struct acme_nonces *s, const char *nonce)
{
	uint8_t raw[8 + MAC_LEN], want[MAC_LEN];
	uint64_t c = 0;
	int ok = 0;

	if (!nonce || strlen(nonce) != ACME_NONCE_LEN ||
	    acme_b64url_decode(nonce, ACME_NONCE_LEN, raw, sizeof(raw)) != (int)sizeof(raw) ||
	    mac(s, raw, want) < 0 || CRYPTO_memcmp(want, raw + 8, MAC_LEN))
		return 0;
	for (int i = 0; i < 8; i++)
		c = c << 8 | raw[i];
	pthread_mutex_lock(&s->mu);
	if (c < s->next && s->next - c <= s->capacity && s->unused[c % s->capacity]) {
		s->unused[c % s->capacity] = 0;
		ok = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}
