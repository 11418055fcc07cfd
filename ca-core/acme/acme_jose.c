/* JOSE as ACME uses it: base64url, JWK public keys and their thumbprints, flattened JWS
 * parsing and verification (RFC 8555 §6.2), External Account Binding MACs (§7.3.4), and
 * problem documents (§6.7). Every input is bounded before it is decoded. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include "acme.h"

/* --- base64url --- */

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int acme_b64url_encode(const uint8_t *in, size_t n, char *out, size_t outsz)
{
	size_t need = (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0), k = 0, i;

	if (need + 1 > outsz)
		return -1;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[k++] = b64u[v >> 18];
		out[k++] = b64u[(v >> 12) & 63];
		out[k++] = b64u[(v >> 6) & 63];
		out[k++] = b64u[v & 63];
	}
	if (n - i == 1) {
		out[k++] = b64u[in[i] >> 2];
		out[k++] = b64u[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
		out[k++] = b64u[v >> 10];
		out[k++] = b64u[(v >> 4) & 63];
		out[k++] = b64u[(v & 15) << 2];
	}
	out[k] = '\0';
	return (int)k;
}

static int b64u_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int acme_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outsz)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t k = 0;

	if (n % 4 == 1 || n > 4 * (outsz / 3) + 4)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64u_value(in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (k >= outsz)
				return -1;
			out[k++] = (uint8_t)(acc >> bits);
		}
	}
	/* The bits left over must be zero: one encoding per byte string. */
	if (bits && (acc & ((1u << bits) - 1)))
		return -1;
	return (int)k;
}

/* A string member of obj decoded into a fresh buffer of at most max bytes (*n its length), or
 * NULL. */
static uint8_t *b64u_member(const json_t *obj, const char *name, size_t max, size_t *n)
{
	const json_t *v = json_object_get(obj, name);
	uint8_t *buf;
	int len;

	if (!json_is_string(v) || json_string_length(v) > 4 * (max / 3) + 4)
		return NULL;
	buf = malloc(max ? max : 1);
	if (!buf)
		return NULL;
	len = acme_b64url_decode(json_string_value(v), json_string_length(v), buf, max);
	if (len < 0) {
		free(buf);
		return NULL;
	}
	*n = (size_t)len;
	return buf;
}

/* --- problems --- */

int acme_problem_set(struct acme_problem *p, int status, const char *type, const char *fmt, ...)
{
	va_list ap;

	p->status = status;
	snprintf(p->type, sizeof(p->type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
	va_end(ap);
	return -1;
}

json_t *acme_problem_json(const struct acme_problem *p)
{
	char type[96];
	json_t *o;

	snprintf(type, sizeof(type), "urn:ietf:params:acme:error:%s", p->type);
	o = json_pack("{s:s, s:s, s:i}", "type", type, "detail", p->detail, "status", p->status);
	if (o && !strcmp(p->type, "badSignatureAlgorithm"))
		json_object_set_new(o, "algorithms",
		                    json_pack("[s,s,s,s]", "ES256", "ES384", "RS256", "EdDSA"));
	return o;
}

/* --- keys --- */

enum acme_alg acme_alg_by_name(const char *name)
{
	if (!strcmp(name, "ES256"))
		return ACME_ALG_ES256;
	if (!strcmp(name, "ES384"))
		return ACME_ALG_ES384;
	if (!strcmp(name, "RS256"))
		return ACME_ALG_RS256;
	if (!strcmp(name, "EdDSA"))
		return ACME_ALG_EDDSA;
	return ACME_ALG_NONE;
}

static EVP_PKEY *key_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *key = NULL;

	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		key = NULL;
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

static EVP_PKEY *ec_key(const char *group, const uint8_t *x, const uint8_t *y, size_t n)
{
	uint8_t point[1 + 2 * 48];
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *key = NULL;
	EVP_PKEY_CTX *check;

	point[0] = 4;
	memcpy(point + 1, x, n);
	memcpy(point + 1 + n, y, n);
	if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * n))
		key = key_fromdata("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	/* The point must be on the curve. */
	check = key ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
	if (key && (!check || EVP_PKEY_public_check(check) != 1)) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	EVP_PKEY_CTX_free(check);
	return key;
}

static EVP_PKEY *rsa_key(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len)
{
	BIGNUM *bn = BN_bin2bn(n, (int)n_len, NULL), *be = BN_bin2bn(e, (int)e_len, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *key = NULL;

	if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		key = key_fromdata("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return key;
}

/* The RFC 7638 thumbprint of the canonical members in canon (compact, sorted keys). */
static int thumbprint_of(json_t *canon, char *out)
{
	char *text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
	uint8_t md[SHA256_DIGEST_LENGTH];
	int rc = -1;

	if (text && SHA256((const uint8_t *)text, strlen(text), md))
		rc = acme_b64url_encode(md, sizeof(md), out, ACME_THUMBPRINT_LEN + 1) ==
		             ACME_THUMBPRINT_LEN
		         ? 0
		         : -1;
	free(text);
	return rc;
}

int acme_jwk_key(const json_t *jwk, EVP_PKEY **key, char *thumbprint, struct acme_problem *p)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	uint8_t *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	json_t *canon = NULL;
	int rc = -1;

	*key = NULL;
	if (!json_is_object(jwk) || !kty)
		return acme_problem_set(p, 400, "malformed", "the jwk must be an object with kty");
	if (json_object_get(jwk, "d") || json_object_get(jwk, "p") || json_object_get(jwk, "k"))
		return acme_problem_set(p, 400, "badPublicKey",
		                        "the jwk holds private or secret key material");
	if (!strcmp(kty, "EC")) {
		size_t len = crv && !strcmp(crv, "P-256")   ? 32
		             : crv && !strcmp(crv, "P-384") ? 48
		                                            : 0;
		if (!len)
			return acme_problem_set(p, 400, "badPublicKey",
			                        "EC keys must be on P-256 or P-384, not \"%.32s\"",
			                        crv ? crv : "(none)");
		a = b64u_member(jwk, "x", 48, &na);
		b = b64u_member(jwk, "y", 48, &nb);
		if (!a || !b || na != len || nb != len) {
			acme_problem_set(p, 400, "badPublicKey",
			                 "the EC jwk's x and y must be base64url of %zu bytes each",
			                 len);
			goto done;
		}
		*key = ec_key(len == 32 ? "P-256" : "P-384", a, b, len);
		if (!*key) {
			acme_problem_set(p, 400, "badPublicKey", "the EC jwk is not a point on %s",
			                 crv);
			goto done;
		}
		canon = json_pack("{s:s, s:s, s:O, s:O}", "crv", crv, "kty", "EC", "x",
		                  json_object_get(jwk, "x"), "y", json_object_get(jwk, "y"));
	} else if (!strcmp(kty, "RSA")) {
		a = b64u_member(jwk, "n", 512, &na);
		b = b64u_member(jwk, "e", 8, &nb);
		if (!a || !b || na == 0 || nb == 0 || a[0] == 0 || b[0] == 0) {
			acme_problem_set(
			    p, 400, "badPublicKey",
			    "the RSA jwk's n (at most 4096 bits) and e must be base64url of "
			    "their minimal big-endian bytes");
			goto done;
		}
		if (na < 256 || nb > 4 || !(b[nb - 1] & 1) || (nb == 1 && b[0] < 3)) {
			acme_problem_set(
			    p, 400, "badPublicKey",
			    "RSA keys must have 2048 to 4096 bits and an odd exponent of "
			    "at most 32 bits (this one: %zu bits)",
			    na * 8);
			goto done;
		}
		*key = rsa_key(a, na, b, nb);
		if (!*key) {
			acme_problem_set(p, 400, "badPublicKey", "the RSA jwk is not a usable key");
			goto done;
		}
		canon = json_pack("{s:O, s:s, s:O}", "e", json_object_get(jwk, "e"), "kty", "RSA",
		                  "n", json_object_get(jwk, "n"));
	} else if (!strcmp(kty, "OKP")) {
		if (!crv || strcmp(crv, "Ed25519"))
			return acme_problem_set(p, 400, "badPublicKey",
			                        "OKP keys must be Ed25519, not \"%.32s\"",
			                        crv ? crv : "(none)");
		a = b64u_member(jwk, "x", 32, &na);
		if (!a || na != 32) {
			acme_problem_set(p, 400, "badPublicKey",
			                 "the Ed25519 jwk's x must be base64url of 32 bytes");
			goto done;
		}
		*key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a, na);
		if (!*key) {
			acme_problem_set(p, 400, "badPublicKey",
			                 "the Ed25519 jwk is not a usable key");
			goto done;
		}
		canon = json_pack("{s:s, s:s, s:O}", "crv", "Ed25519", "kty", "OKP", "x",
		                  json_object_get(jwk, "x"));
	} else {
		return acme_problem_set(p, 400, "badPublicKey",
		                        "keys must be of kty EC, RSA or OKP, not \"%.16s\"", kty);
	}
	if (!canon || thumbprint_of(canon, thumbprint) < 0) {
		acme_problem_set(p, 500, "serverInternal", "the key's thumbprint was not computed");
		goto done;
	}
	rc = 0;
done:
	if (rc < 0) {
		EVP_PKEY_free(*key);
		*key = NULL;
	}
	json_decref(canon);
	free(a);
	free(b);
	return rc;
}

int acme_alg_fits(enum acme_alg alg, const EVP_PKEY *key)
{
	char group[16] = "";

	switch (alg) {
	case ACME_ALG_ES256:
	case ACME_ALG_ES384:
		if (!EVP_PKEY_is_a(key, "EC") ||
		    !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
		                                    sizeof(group), NULL))
			return 0;
		return !strcmp(group, alg == ACME_ALG_ES256 ? "prime256v1" : "secp384r1") ||
		       !strcmp(group, alg == ACME_ALG_ES256 ? "P-256" : "P-384");
	case ACME_ALG_RS256:
		return EVP_PKEY_is_a(key, "RSA");
	case ACME_ALG_EDDSA:
		return EVP_PKEY_is_a(key, "ED25519");
	default:
		return 0;
	}
}

/* --- JWS --- */

/* A JSON object from base64url text of at most max bytes decoded, or NULL. */
static json_t *b64u_json(const char *text, size_t n, size_t max, int *empty)
{
	uint8_t *buf = malloc(max);
	json_t *o = NULL;
	int len;

	*empty = n == 0;
	if (!buf)
		return NULL;
	len = acme_b64url_decode(text, n, buf, max);
	if (len > 0)
		o = json_loadb((const char *)buf, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* The optional string member name of h: NULL when absent; -1 in *bad when not a string. */
static const char *hdr_string(const json_t *h, const char *name, int *bad)
{
	const json_t *v = json_object_get(h, name);

	if (v && !json_is_string(v))
		*bad = 1;
	return json_string_value(v);
}

int acme_jws_parse(const uint8_t *body, size_t len, int need_nonce, struct acme_jws *jws,
                   struct acme_problem *p)
{
	json_t *outer = NULL, *hdr;
	const json_t *prot, *payload, *sig;
	const char *alg, *key;
	json_t *v;
	uint8_t *sigbuf = NULL;
	int bad = 0, empty, rc = -1, siglen;

	memset(jws, 0, sizeof(*jws));
	if (len > ACME_BODY_MAX)
		return acme_problem_set(p, 413, "malformed",
		                        "the request body has %zu bytes; at most %d", len,
		                        ACME_BODY_MAX);
	outer = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(outer)) {
		acme_problem_set(p, 400, "malformed", "the body is not a JSON object");
		goto done;
	}
	json_object_foreach(outer, key, v)
	{
		if (strcmp(key, "protected") && strcmp(key, "payload") &&
		    strcmp(key, "signature")) {
			acme_problem_set(p, 400, "malformed",
			                 "the JWS must be in flattened JSON serialization with "
			                 "protected, payload and signature only (not \"%.32s\")",
			                 key);
			goto done;
		}
	}
	prot = json_object_get(outer, "protected");
	payload = json_object_get(outer, "payload");
	sig = json_object_get(outer, "signature");
	if (!json_is_string(prot) || !json_is_string(payload) || !json_is_string(sig)) {
		acme_problem_set(p, 400, "malformed",
		                 "the JWS needs protected, payload and signature as strings");
		goto done;
	}
	hdr = b64u_json(json_string_value(prot), json_string_length(prot), ACME_BODY_MAX, &empty);
	if (!hdr) {
		acme_problem_set(p, 400, "malformed",
		                 "the protected header is not base64url of a JSON object");
		goto done;
	}
	jws->protected_hdr = hdr;
	alg = hdr_string(hdr, "alg", &bad);
	jws->kid = hdr_string(hdr, "kid", &bad);
	jws->nonce = hdr_string(hdr, "nonce", &bad);
	jws->url = hdr_string(hdr, "url", &bad);
	jws->jwk = json_object_get(hdr, "jwk");
	if (bad) {
		acme_problem_set(p, 400, "malformed",
		                 "alg, kid, nonce and url in the protected header must be strings");
		goto done;
	}
	if (!alg) {
		acme_problem_set(p, 400, "malformed", "the protected header has no alg");
		goto done;
	}
	jws->alg = acme_alg_by_name(alg);
	if (jws->alg == ACME_ALG_NONE) {
		acme_problem_set(p, 400, "badSignatureAlgorithm",
		                 "alg \"%.16s\" is not accepted (only " ACME_ALGS ")", alg);
		goto done;
	}
	if (json_object_get(hdr, "crit") || json_object_get(hdr, "b64")) {
		acme_problem_set(p, 400, "malformed",
		                 "the protected header may not have crit or b64");
		goto done;
	}
	if (!jws->url) {
		acme_problem_set(p, 400, "malformed", "the protected header has no url");
		goto done;
	}
	if (!jws->jwk == !jws->kid) {
		acme_problem_set(p, 400, "malformed",
		                 "the protected header must have exactly one of jwk and kid");
		goto done;
	}
	if (need_nonce && !jws->nonce) {
		acme_problem_set(p, 400, "badNonce", "the protected header has no nonce");
		goto done;
	}
	if (!need_nonce && jws->nonce) {
		acme_problem_set(p, 400, "malformed", "the inner JWS may not have a nonce");
		goto done;
	}
	if (jws->jwk && acme_jwk_key(jws->jwk, &jws->key, jws->thumbprint, p) < 0)
		goto done;
	if (json_string_length(payload)) {
		jws->payload = b64u_json(json_string_value(payload), json_string_length(payload),
		                         ACME_BODY_MAX, &empty);
		if (!jws->payload) {
			acme_problem_set(
			    p, 400, "malformed",
			    "the payload is neither empty nor base64url of a JSON object");
			goto done;
		}
	}
	sigbuf = malloc(512);
	siglen = sigbuf ? acme_b64url_decode(json_string_value(sig), json_string_length(sig),
	                                     sigbuf, 512)
	                : -1;
	if (siglen <= 0) {
		acme_problem_set(p, 400, "malformed", "the signature is not base64url");
		goto done;
	}
	jws->sig = sigbuf;
	jws->sig_len = (size_t)siglen;
	sigbuf = NULL;
	if (asprintf(&jws->signing_input, "%s.%s", json_string_value(prot),
	             json_string_value(payload)) < 0) {
		jws->signing_input = NULL;
		acme_problem_set(p, 500, "serverInternal", "out of memory");
		goto done;
	}
	rc = 0;
done:
	free(sigbuf);
	json_decref(outer);
	return rc;
}

void acme_jws_clear(struct acme_jws *jws)
{
	json_decref(jws->protected_hdr);
	json_decref(jws->payload);
	free(jws->signing_input);
	free(jws->sig);
	EVP_PKEY_free(jws->key);
	memset(jws, 0, sizeof(*jws));
}

/* An ECDSA signature as JWS sends it (r || s, each n bytes) in DER, or NULL. */
static uint8_t *ecdsa_der(const uint8_t *sig, size_t n, int *der_len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)n, NULL), *ss = BN_bin2bn(sig + n, (int)n, NULL);
	uint8_t *der = NULL;

	if (s && r && ss && ECDSA_SIG_set0(s, r, ss)) {
		r = ss = NULL;
		*der_len = i2d_ECDSA_SIG(s, &der);
		if (*der_len <= 0)
			der = NULL;
	}
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	return der;
}

int acme_jws_verify(const struct acme_jws *jws, EVP_PKEY *key, struct acme_problem *p)
{
	EVP_MD_CTX *ctx;
	const EVP_MD *md = NULL;
	const uint8_t *sig = jws->sig;
	uint8_t *der = NULL;
	size_t sig_len = jws->sig_len;
	int ok = 0, der_len = 0;

	if (!key)
		key = jws->key;
	if (!key || !acme_alg_fits(jws->alg, key))
		return acme_problem_set(p, 400, "badSignatureAlgorithm",
		                        "the JWS's alg does not fit the account's key");
	switch (jws->alg) {
	case ACME_ALG_ES256:
	case ACME_ALG_ES384: {
		size_t n = jws->alg == ACME_ALG_ES256 ? 32 : 48;
		md = jws->alg == ACME_ALG_ES256 ? EVP_sha256() : EVP_sha384();
		if (sig_len != 2 * n)
			return acme_problem_set(
			    p, 400, "malformed", "an %s signature has %zu bytes, not %zu",
			    jws->alg == ACME_ALG_ES256 ? "ES256" : "ES384", 2 * n, sig_len);
		der = ecdsa_der(sig, n, &der_len);
		if (!der)
			return acme_problem_set(p, 500, "serverInternal", "out of memory");
		sig = der;
		sig_len = (size_t)der_len;
		break;
	}
	case ACME_ALG_RS256:
		md = EVP_sha256();
		break;
	default:
		break;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1)
		ok = EVP_DigestVerify(ctx, sig, sig_len, (const uint8_t *)jws->signing_input,
		                      strlen(jws->signing_input)) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	if (!ok)
		return acme_problem_set(p, 400, "malformed", "the JWS signature does not verify");
	return 0;
}

/* --- External Account Binding --- */

int acme_eab_verify(const json_t *binding, const json_t *account_jwk, const char *url,
                    int (*lookup)(void *ctx, const char *kid, struct acme_eab *out), void *ctx,
                    struct acme_eab *eab, struct acme_problem *p)
{
	const json_t *prot = json_object_get(binding, "protected"),
	             *payload = json_object_get(binding, "payload"),
	             *sig = json_object_get(binding, "signature");
	json_t *hdr = NULL, *jwk = NULL;
	const char *alg, *kid, *hurl;
	const EVP_MD *md;
	uint8_t *mac = NULL, expect[EVP_MAX_MD_SIZE];
	unsigned expect_len = 0;
	size_t mac_len = 0;
	char *input = NULL;
	int empty, rc = -1, found;

	memset(eab, 0, sizeof(*eab));
	if (!json_is_object(binding) || json_object_size(binding) != 3 || !json_is_string(prot) ||
	    !json_is_string(payload) || !json_is_string(sig))
		return acme_problem_set(p, 400, "malformed",
		                        "externalAccountBinding must be a flattened JWS");
	hdr = b64u_json(json_string_value(prot), json_string_length(prot), 4096, &empty);
	jwk = b64u_json(json_string_value(payload), json_string_length(payload), 4096, &empty);
	if (!hdr || !jwk) {
		acme_problem_set(p, 400, "malformed",
		                 "externalAccountBinding's protected header and payload must be "
		                 "base64url JSON objects");
		goto done;
	}
	alg = json_string_value(json_object_get(hdr, "alg"));
	kid = json_string_value(json_object_get(hdr, "kid"));
	hurl = json_string_value(json_object_get(hdr, "url"));
	if (!alg || !(md = !strcmp(alg, "HS256")   ? EVP_sha256()
	                   : !strcmp(alg, "HS384") ? EVP_sha384()
	                   : !strcmp(alg, "HS512") ? EVP_sha512()
	                                           : NULL)) {
		acme_problem_set(p, 400, "badSignatureAlgorithm",
		                 "externalAccountBinding's alg must be HS256, HS384 or HS512");
		goto done;
	}
	if (!kid || !*kid || strlen(kid) > ACME_KID_MAX || !hurl || json_object_get(hdr, "nonce") ||
	    json_object_get(hdr, "jwk") || json_object_get(hdr, "crit")) {
		acme_problem_set(p, 400, "malformed",
		                 "externalAccountBinding's header needs kid and url, and no nonce");
		goto done;
	}
	if (strcmp(hurl, url)) {
		acme_problem_set(p, 401, "unauthorized",
		                 "externalAccountBinding's url is not the newAccount URL");
		goto done;
	}
	if (!json_equal(jwk, (json_t *)account_jwk)) {
		acme_problem_set(p, 400, "malformed",
		                 "externalAccountBinding's payload is not the account's jwk");
		goto done;
	}
	mac = b64u_member(binding, "signature", EVP_MAX_MD_SIZE, &mac_len);
	if (!mac) {
		acme_problem_set(p, 400, "malformed",
		                 "externalAccountBinding's signature is not base64url");
		goto done;
	}
	found = lookup(ctx, kid, eab);
	if (found < 0) {
		acme_problem_set(p, 500, "serverInternal",
		                 "the external account could not be looked up");
		goto done;
	}
	if (asprintf(&input, "%s.%s", json_string_value(prot), json_string_value(payload)) < 0) {
		input = NULL;
		acme_problem_set(p, 500, "serverInternal", "out of memory");
		goto done;
	}
	if (found && !HMAC(md, eab->hmac_key, (int)eab->hmac_key_len, (const uint8_t *)input,
	                   strlen(input), expect, &expect_len))
		expect_len = 0;
	if (!found || expect_len == 0 || expect_len != mac_len ||
	    CRYPTO_memcmp(expect, mac, mac_len)) {
		/* One answer for an unknown kid and a wrong MAC: nothing to probe kids with. */
		acme_problem_set(p, 401, "unauthorized",
		                 "the external account binding does not verify");
		goto done;
	}
	rc = 0;
done:
	if (rc < 0)
		OPENSSL_cleanse(eab, sizeof(*eab));
	OPENSSL_cleanse(expect, sizeof(expect));
	json_decref(hdr);
	json_decref(jwk);
	free(mac);
	free(input);
	return rc;
}
