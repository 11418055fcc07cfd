/* The cache of pre-signed answers: an open-addressing hash table keyed by (authority, serial)
 * under one writer-preferring read-write lock, the ready-to-send answer bytes with their
 * RFC 5019 headers, and the lookup of a CertID's issuer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "httptext.h"
#include "ocsp_internal.h"

int64_t ocsp_now(void)
{
	return (int64_t)time(NULL);
}

int64_t ocsp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ocsp_cache_init(struct ocsp_cache *c)
{
	pthread_rwlockattr_t a;

	memset(c, 0, sizeof(*c));
	c->cap = 1024;
	c->slots = calloc(c->cap, sizeof(*c->slots));
	if (!c->slots)
		return -1;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&c->lock, &a);
	pthread_rwlockattr_destroy(&a);
	return 0;
}

void ocsp_cache_destroy(struct ocsp_cache *c)
{
	for (size_t i = 0; c->slots && i < c->cap; i++) {
		struct ocsp_entry *e = c->slots[i];
		if (!e)
			continue;
		for (int v = 0; v < OCSP_VARIANTS; v++)
			free(e->ans[v]);
		free(e);
	}
	free(c->slots);
	c->slots = NULL;
	pthread_rwlock_destroy(&c->lock);
}

/* Serials are random (at least 64 bits), so a simple mix of their bytes spreads well. */
static size_t hash_key(int ca, const uint8_t *serial, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)ca;

	for (size_t i = 0; i < len; i++)
		h = (h ^ serial[i]) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29));
}

struct ocsp_entry *ocsp_cache_find(const struct ocsp_cache *c, int ca, const uint8_t *serial,
                                   size_t len)
{
	size_t mask = c->cap - 1, i = hash_key(ca, serial, len) & mask;

	for (;;) {
		struct ocsp_entry *e = c->slots[i];
		if (!e)
			return NULL;
		if (e->ca == ca && e->serial_len == len && !memcmp(e->serial, serial, len))
			return e;
		i = (i + 1) & mask;
	}
}

static void place(struct ocsp_entry **slots, size_t cap, struct ocsp_entry *e)
{
	size_t mask = cap - 1, i = hash_key(e->ca, e->serial, e->serial_len) & mask;

	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = e;
}

int ocsp_cache_insert(struct ocsp_cache *c, struct ocsp_entry *e)
{
	if ((c->count + 1) * 2 > c->cap) {
		size_t ncap = c->cap * 2;
		struct ocsp_entry **n = calloc(ncap, sizeof(*n));
		if (!n)
			return -1;
		for (size_t i = 0; i < c->cap; i++)
			if (c->slots[i])
				place(n, ncap, c->slots[i]);
		free(c->slots);
		c->slots = n;
		c->cap = ncap;
	}
	place(c->slots, c->cap, e);
	c->count++;
	return 0;
}

struct ocsp_answer *ocsp_answer_new(const uint8_t *der, size_t der_len, int64_t this_update,
                                    int64_t next_update)
{
	char head[512], lm[32], ex[32];
	uint8_t sha[SHA256_DIGEST_LENGTH];
	char etag[33];
	struct ocsp_answer *a;
	int n;

	SHA256(der, der_len, sha);
	for (int i = 0; i < 16; i++)
		snprintf(etag + 2 * i, 3, "%02x", sha[i]);
	httptext_date(this_update, lm, sizeof(lm));
	httptext_date(next_update, ex, sizeof(ex));
	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 200 OK\r\n"
	             "Content-Type: application/ocsp-response\r\n"
	             "Content-Length: %zu\r\n"
	             "ETag: \"%s\"\r\n"
	             "Last-Modified: %s\r\n"
	             "Expires: %s\r\n",
	             der_len, etag, lm, ex);
	if (n <= 0 || (size_t)n >= sizeof(head))
		return NULL;
	a = malloc(sizeof(*a) + (size_t)n + der_len);
	if (!a)
		return NULL;
	a->this_update = this_update;
	a->next_update = next_update;
	snprintf(a->etag, sizeof(a->etag), "\"%s\"", etag);
	a->head_len = (size_t)n;
	a->der_len = der_len;
	memcpy(a->data, head, (size_t)n);
	memcpy(a->data + n, der, der_len);
	return a;
}

/* Per-thread cache of the Date header: one formatting per second. */
static _Thread_local int64_t date_t;
static _Thread_local char date_s[32];

static size_t put(uint8_t *out, size_t o, size_t cap, const void *p, size_t n)
{
	if (o + n > cap)
		return cap + 1;
	memcpy(out + o, p, n);
	return o + n;
}

static size_t put_uint(uint8_t *out, size_t o, size_t cap, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return put(out, o, cap, tmp + sizeof(tmp) - n, (size_t)n);
}

#define PUTS(s) (o = put(out, o, cap, s, sizeof(s) - 1))

size_t ocsp_http_answer(const struct ocsp_answer *a, int64_t now, int no_store, int keep_alive,
                        int head_only, uint8_t *out, size_t cap)
{
	size_t o = 0;

	if (now != date_t) {
		httptext_date(now, date_s, sizeof(date_s));
		date_t = now;
	}
	o = put(out, o, cap, a->data, a->head_len);
	PUTS("Date: ");
	o = put(out, o, cap, date_s, 29);
	if (no_store) {
		PUTS("\r\nCache-Control: no-store\r\n");
	} else {
		/* RFC 5019 6.2: max-age no later than nextUpdate */
		int64_t age = a->next_update - now;
		PUTS("\r\nCache-Control: max-age=");
		o = put_uint(out, o, cap, (uint64_t)(age > 0 ? age : 0));
		PUTS(", public, no-transform, must-revalidate\r\n");
	}
	if (!keep_alive)
		PUTS("Connection: close\r\n");
	PUTS("\r\n");
	if (!head_only)
		o = put(out, o, cap, a->data + a->head_len, a->der_len);
	return o > cap ? 0 : o;
}

size_t ocsp_http_not_modified(const struct ocsp_answer *a, const char *inm, size_t inm_len,
                              int64_t now, int keep_alive, uint8_t *out, size_t cap)
{
	size_t tl = strlen(a->etag), o = 0, i = 0;
	int64_t age = a->next_update - now;
	int match = 0;

	while (i < inm_len && !match) {
		size_t s, e;
		while (i < inm_len && (inm[i] == ' ' || inm[i] == '\t' || inm[i] == ','))
			i++;
		s = i;
		while (i < inm_len && inm[i] != ',')
			i++;
		e = i;
		while (e > s && (inm[e - 1] == ' ' || inm[e - 1] == '\t'))
			e--;
		if (e > s + 2 && inm[s] == 'W' && inm[s + 1] == '/')
			s += 2; /* weak comparison */
		match =
		    (e - s == 1 && inm[s] == '*') || (e - s == tl && !memcmp(inm + s, a->etag, tl));
	}
	if (!match)
		return 0;
	if (now != date_t) {
		httptext_date(now, date_s, sizeof(date_s));
		date_t = now;
	}
	PUTS("HTTP/1.1 304 Not Modified\r\nETag: ");
	o = put(out, o, cap, a->etag, tl);
	PUTS("\r\nDate: ");
	o = put(out, o, cap, date_s, 29);
	PUTS("\r\nCache-Control: max-age=");
	o = put_uint(out, o, cap, (uint64_t)(age > 0 ? age : 0));
	PUTS(", public, no-transform, must-revalidate\r\n");
	if (!keep_alive)
		PUTS("Connection: close\r\n");
	PUTS("\r\n");
	return o > cap ? 0 : o;
}

size_t ocsp_http_error(enum ocsp_error e, int keep_alive, uint8_t *out, size_t cap)
{
	/* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } without responseBytes */
	const uint8_t der[5] = {0x30, 0x03, 0x0a, 0x01, (uint8_t)e};
	size_t o = 0;

	PUTS("HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n"
	     "Content-Length: 5\r\nCache-Control: no-store\r\n");
	if (!keep_alive)
		PUTS("Connection: close\r\n");
	PUTS("\r\n");
	o = put(out, o, cap, der, sizeof(der));
	return o > cap ? 0 : o;
}

int ocsp_ca_match(struct ocspd *d, const struct ocsp_certid *id)
{
	int n = atomic_load(&d->n_cas);

	for (int i = 0; i < n; i++) {
		const struct ocsp_ca *ca = &d->cas[i];
		if (!memcmp(ca->name_hash[id->hash], id->name_hash, id->hash_len) &&
		    !memcmp(ca->key_hash[id->hash], id->key_hash, id->hash_len))
			return i;
	}
	return -1;
}

int ocsp_unknown_allowed(struct ocspd *d)
{
	int64_t now = ocsp_now_ms();
	int rate = d->cfg.unknown_per_second, ok;

	if (rate <= 0)
		return 0;
	pthread_mutex_lock(&d->unknown_mu);
	d->unknown_tokens += (double)(now - d->unknown_ms) * (double)rate / 1000.0;
	if (d->unknown_tokens > (double)rate)
		d->unknown_tokens = (double)rate; /* a burst of at most one second's worth */
	d->unknown_ms = now;
	ok = d->unknown_tokens >= 1.0;
	if (ok)
		d->unknown_tokens -= 1.0;
	pthread_mutex_unlock(&d->unknown_mu);
	return ok;
}

int ocsp_ca_nonce_allowed(struct ocsp_ca *ca)
{
	int64_t now = ocsp_now_ms();
	int ok;

	if (ca->nonce_rate <= 0)
		return 1;
	pthread_mutex_lock(&ca->bucket_mu);
	ca->tokens += (double)(now - ca->bucket_ms) * (double)ca->nonce_rate / 1000.0;
	if (ca->tokens > (double)ca->nonce_rate)
		ca->tokens = (double)ca->nonce_rate; /* a burst of at most one second's worth */
	ca->bucket_ms = now;
	ok = ca->tokens >= 1.0;
	if (ok)
		ca->tokens -= 1.0;
	pthread_mutex_unlock(&ca->bucket_mu);
	return ok;
}
