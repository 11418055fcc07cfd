/* The console's session store (cad_session.h): a fixed table under a mutex; the cookie and the
 * CSRF token are fresh 256-bit random values, the cookie kept only as its SHA-256. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cad_session.h"

int cad_sessions_init(struct cad_sessions *ss, size_t cap, int idle_seconds, int max_seconds)
{
	memset(ss, 0, sizeof(*ss));
	ss->s = calloc(cap ? cap : 1, sizeof(*ss->s));
	if (!ss->s)
		return -1;
	ss->cap = cap;
	ss->idle_seconds = idle_seconds;
	ss->max_seconds = max_seconds;
	pthread_mutex_init(&ss->lock, NULL);
	return 0;
}

void cad_sessions_fini(struct cad_sessions *ss)
{
	if (!ss->s)
		return;
	OPENSSL_cleanse(ss->s, ss->cap * sizeof(*ss->s));
	free(ss->s);
	pthread_mutex_destroy(&ss->lock);
	memset(ss, 0, sizeof(*ss));
}

/* 256 random bits as 43 base64url characters. */
static int random_text(char *out)
{
	unsigned char raw[32];
	char b64[48];
	int len;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	len = EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	while (len > 0 && b64[len - 1] == '=')
		b64[--len] = '\0';
	for (int i = 0; i < len; i++)
		b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	memcpy(out, b64, (size_t)len + 1);
	OPENSSL_cleanse(b64, sizeof(b64));
	return len == CAD_SESSION_VALUE_LEN ? 0 : -1;
}

static int live(const struct cad_sessions *ss, const struct cad_session *s, int64_t now)
{
	return s->via && now - s->last <= ss->idle_seconds && now - s->created <= ss->max_seconds;
}

int cad_session_new(struct cad_sessions *ss, int64_t now, enum cad_session_via via,
                    const uint8_t cred_sha256[32], const char *principal, char *cookie, char *csrf)
{
	struct cad_session *slot = NULL;

	if (random_text(cookie) != 0 || random_text(csrf) != 0)
		return -2;
	pthread_mutex_lock(&ss->lock);
	for (size_t i = 0; i < ss->cap && !slot; i++)
		if (!live(ss, &ss->s[i], now))
			slot = &ss->s[i];
	if (slot) {
		memset(slot, 0, sizeof(*slot));
		SHA256((const unsigned char *)cookie, strlen(cookie), slot->id_sha256);
		memcpy(slot->cred_sha256, cred_sha256, 32);
		slot->via = via;
		memcpy(slot->csrf, csrf, strlen(csrf) + 1);
		strncpy(slot->principal, principal, sizeof(slot->principal) - 1);
		slot->created = slot->last = now;
	}
	pthread_mutex_unlock(&ss->lock);
	return slot ? 0 : -1;
}

static struct cad_session *lookup(struct cad_sessions *ss, const char *cookie)
{
	uint8_t sha[32];

	if (strlen(cookie) != CAD_SESSION_VALUE_LEN)
		return NULL;
	SHA256((const unsigned char *)cookie, CAD_SESSION_VALUE_LEN, sha);
	for (size_t i = 0; i < ss->cap; i++)
		if (ss->s[i].via && CRYPTO_memcmp(ss->s[i].id_sha256, sha, 32) == 0)
			return &ss->s[i];
	return NULL;
}

enum cad_session_found cad_session_find(struct cad_sessions *ss, const char *cookie, int64_t now,
                                        struct cad_session *out)
{
	enum cad_session_found rc = CAD_SESSION_FOUND;
	struct cad_session *s;

	pthread_mutex_lock(&ss->lock);
	s = lookup(ss, cookie);
	if (!s)
		rc = CAD_SESSION_UNKNOWN;
	else if (now - s->created > ss->max_seconds)
		rc = CAD_SESSION_EXPIRED;
	else if (now - s->last > ss->idle_seconds)
		rc = CAD_SESSION_IDLE;
	if (s && rc != CAD_SESSION_FOUND) {
		OPENSSL_cleanse(s, sizeof(*s));
	} else if (s) {
		s->last = now;
		*out = *s;
	}
	pthread_mutex_unlock(&ss->lock);
	return rc;
}

int cad_session_end(struct cad_sessions *ss, const char *cookie)
{
	struct cad_session *s;

	pthread_mutex_lock(&ss->lock);
	s = lookup(ss, cookie);
	if (s)
		OPENSSL_cleanse(s, sizeof(*s));
	pthread_mutex_unlock(&ss->lock);
	return s != NULL;
}

size_t cad_session_count(struct cad_sessions *ss, int64_t now)
{
	size_t n = 0;

	pthread_mutex_lock(&ss->lock);
	for (size_t i = 0; i < ss->cap; i++)
		n += live(ss, &ss->s[i], now) ? 1 : 0;
	pthread_mutex_unlock(&ss->lock);
	return n;
}

int cad_cookie_get(const char *header, const char *name, char *out, size_t n)
{
	size_t nlen = strlen(name);
	const char *p = header;

	if (!header || n == 0)
		return -1;
	while (*p) {
		const char *end;
		size_t len;
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		end = strchr(p, ';');
		if (!end)
			end = p + strlen(p);
		len = (size_t)(end - p);
		if (len > nlen && !strncmp(p, name, nlen) && p[nlen] == '=') {
			const char *v = p + nlen + 1;
			size_t vlen = len - nlen - 1;
			while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (vlen == 0 || vlen >= n)
				return -1;
			for (size_t i = 0; i < vlen; i++)
				if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f ||
				    v[i] == '"' || v[i] == ',' || v[i] == '\\')
					return -1;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = end;
	}
	return -1;
}
