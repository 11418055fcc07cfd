/* What a device sends over EST, parsed strictly and within bounds: the PKCS#10 body (base64,
 * DER or PEM) and the Authorization header (Basic or Bearer). No server state here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cad_est.h"

static int is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_b64(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Base64 with white space anywhere, '=' padding only at the end. The decoded length, or -1. */
static long b64_decode(const uint8_t *in, size_t len, uint8_t **out)
{
	uint8_t *clean = malloc(len + 1), *dec = NULL;
	size_t n = 0, pad = 0;
	int dlen;

	*out = NULL;
	if (!clean)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (is_space(in[i]))
			continue;
		if (in[i] == '=') {
			if (++pad > 2)
				goto bad;
		} else if (!is_b64(in[i]) || pad) {
			goto bad;
		}
		clean[n++] = in[i];
	}
	if (n == 0 || n % 4)
		goto bad;
	dec = malloc(n / 4 * 3 + 1);
	if (!dec)
		goto bad;
	dlen = EVP_DecodeBlock(dec, clean, (int)n);
	if (dlen < 0 || (size_t)dlen < pad)
		goto bad;
	free(clean);
	*out = dec;
	return dlen - (long)pad;
bad:
	free(clean);
	free(dec);
	return -1;
}

static X509_REQ *from_der(const uint8_t *der, size_t len, char *why, size_t n)
{
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);

	ERR_clear_error();
	if (!req) {
		snprintf(why, n, "the body is not a DER PKCS#10 certification request");
		return NULL;
	}
	if (p != der + len) {
		snprintf(why, n, "%zu bytes follow the PKCS#10 request", (size_t)(der + len - p));
		X509_REQ_free(req);
		return NULL;
	}
	return req;
}

X509_REQ *cad_est_parse_csr(const uint8_t *body, size_t len, char *why, size_t n)
{
	static const char pem_start[] = "-----BEGIN";
	X509_REQ *req = NULL;
	uint8_t *der = NULL;
	size_t i = 0;
	long dlen;

	if (!body || len == 0) {
		snprintf(why, n, "the body is empty: send a PKCS#10 request (base64 of its DER)");
		return NULL;
	}
	if (len > CAD_EST_BODY_MAX) {
		snprintf(why, n, "the body has %zu bytes; at most %d", len, CAD_EST_BODY_MAX);
		return NULL;
	}
	if (body[0] == 0x30) /* a DER SEQUENCE: base64 never starts with this byte */
		return from_der(body, len, why, n);
	while (i < len && is_space(body[i]))
		i++;
	if (len - i >= sizeof(pem_start) - 1 &&
	    !memcmp(body + i, pem_start, sizeof(pem_start) - 1)) {
		BIO *b = BIO_new_mem_buf(body, (int)len);
		req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		ERR_clear_error();
		if (!req)
			snprintf(why, n, "the body is not a PEM PKCS#10 certification request");
		return req;
	}
	dlen = b64_decode(body, len, &der);
	if (dlen <= 0) {
		free(der);
		snprintf(why, n, "the body is neither base64 nor DER of a PKCS#10 request");
		return NULL;
	}
	req = from_der(der, (size_t)dlen, why, n);
	free(der);
	return req;
}

static int token_ok(const char *t, size_t len)
{
	if (len == 0 || len > CAD_EST_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
			return 0;
	return 1;
}

enum cad_est_auth cad_est_parse_auth(const char *header, char *token, char *user, size_t n_user,
                                     char *why, size_t n)
{
	size_t hlen;

	token[0] = '\0';
	if (n_user)
		user[0] = '\0';
	if (!header)
		return CAD_EST_AUTH_NONE;
	hlen = strnlen(header, 2 * CAD_EST_TOKEN_MAX + 64);
	if (hlen >= 2 * CAD_EST_TOKEN_MAX + 64) {
		snprintf(why, n, "the Authorization header is too long");
		return CAD_EST_AUTH_BAD;
	}
	if (!strncasecmp(header, "Bearer ", 7)) {
		const char *t = header + 7;
		while (*t == ' ')
			t++;
		if (!token_ok(t, strlen(t))) {
			snprintf(why, n, "the bearer token is malformed");
			return CAD_EST_AUTH_BAD;
		}
		memcpy(token, t, strlen(t) + 1);
		return CAD_EST_AUTH_BEARER;
	}
	if (!strncasecmp(header, "Basic ", 6)) {
		const char *t = header + 6, *colon;
		uint8_t *dec = NULL;
		long dlen;

		while (*t == ' ')
			t++;
		dlen = b64_decode((const uint8_t *)t, strlen(t), &dec);
		if (dlen <= 0 || memchr(dec, '\0', (size_t)dlen) ||
		    !(colon = memchr(dec, ':', (size_t)dlen))) {
			free(dec);
			snprintf(why, n, "the Basic credentials are not base64 of user:password");
			return CAD_EST_AUTH_BAD;
		}
		{
			size_t ulen = (size_t)(colon - (const char *)dec);
			size_t plen = (size_t)dlen - ulen - 1;
			if (!token_ok(colon + 1, plen)) {
				free(dec);
				snprintf(why, n,
				         "the Basic password (the provisioning token) is "
				         "malformed");
				return CAD_EST_AUTH_BAD;
			}
			memcpy(token, colon + 1, plen);
			token[plen] = '\0';
			if (n_user) {
				size_t k = 0;
				/* The user name is only logged in the audit detail: printable
				 * ASCII, cut to fit. */
				for (size_t i = 0; i < ulen && k + 1 < n_user; i++)
					if (dec[i] >= 0x20 && dec[i] <= 0x7e && dec[i] != '"' &&
					    dec[i] != '\\')
						user[k++] = (char)dec[i];
				user[k] = '\0';
			}
		}
		OPENSSL_cleanse(dec, (size_t)dlen);
		free(dec);
		return CAD_EST_AUTH_BASIC;
	}
	snprintf(why, n,
	         "the Authorization header must be Basic (password: the provisioning "
	         "token) or Bearer");
	return CAD_EST_AUTH_BAD;
}
