/* The ACME protocol library (ca-core/acme) without transport or database: base64url, the
 * nonce store, the directory, newNonce, JWS checks (every accepted algorithm, and every way a
 * JWS is refused), External Account Binding, contacts, account update and deactivation, and
 * key rollover, over an in-memory account store. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "acme_client.h"

#define BASE "https://ca.test:8443/acme"

/* --- an in-memory store --- */

#define MAX_ACCTS 16
static struct acme_account accts[MAX_ACCTS];
static int n_accts;
static struct acme_eab eabs[2];
static int updates, rekeys;

static void copy_account(const struct acme_account *a, struct acme_account *out)
{
	*out = *a;
	out->jwk = strdup(a->jwk);
	out->contact = strdup(a->contact);
}

static int st_by_thumb(void *ctx, const char *t, struct acme_account *out)
{
	(void)ctx;
	for (int i = 0; i < n_accts; i++)
		if (!strcmp(accts[i].thumbprint, t)) {
			copy_account(&accts[i], out);
			return 1;
		}
	return 0;
}

static int st_by_id(void *ctx, int64_t id, struct acme_account *out)
{
	(void)ctx;
	if (id < 1 || id > n_accts)
		return 0;
	copy_account(&accts[id - 1], out);
	return 1;
}

static int st_eab(void *ctx, const char *kid, struct acme_eab *out)
{
	(void)ctx;
	for (int i = 0; i < 2; i++)
		if (!strcmp(eabs[i].kid, kid)) {
			*out = eabs[i];
			return 1;
		}
	return 0;
}

static int st_create(void *ctx, struct acme_account *a)
{
	(void)ctx;
	ck_assert_int_lt(n_accts, MAX_ACCTS);
	for (int i = 0; i < 2; i++)
		if (a->eab_kid[0] && !strcmp(eabs[i].kid, a->eab_kid)) {
			if (eabs[i].account_id)
				return 0;
			eabs[i].account_id = n_accts + 1;
		}
	a->id = n_accts + 1;
	copy_account(a, &accts[n_accts++]);
	return 1;
}

static int st_update(void *ctx, const struct acme_account *a)
{
	(void)ctx;
	struct acme_account *s = &accts[a->id - 1];
	free(s->contact);
	s->contact = strdup(a->contact);
	s->status = a->status;
	updates++;
	return 1;
}

static int st_rekey(void *ctx, const struct acme_account *a, const char *jwk, const char *t)
{
	(void)ctx;
	struct acme_account *s = &accts[a->id - 1];
	for (int i = 0; i < n_accts; i++)
		if (!strcmp(accts[i].thumbprint, t))
			return 0;
	free(s->jwk);
	s->jwk = strdup(jwk);
	snprintf(s->thumbprint, sizeof(s->thumbprint), "%s", t);
	rekeys++;
	return 1;
}

static int revoked_reason = -1;
static int64_t revoked_by = -1;

static int st_revoke(void *ctx, const struct acme_account *by, const uint8_t *der, size_t len,
                     int reason, struct acme_problem *p)
{
	(void)ctx;
	(void)der;
	ck_assert_int_gt(len, 0);
	if (revoked_reason >= 0)
		return acme_problem_set(p, 400, "alreadyRevoked", "revoked already");
	revoked_reason = reason;
	revoked_by = by ? by->id : 0;
	return 0;
}

/* One certificate: AKI 01 02 03, serial 0a 0b, valid from 1000 to 7000, revoked as set. */
static int64_t cert_revoked_at;

static int st_validity(void *ctx, const uint8_t *aki, size_t aki_len, const uint8_t *serial,
                       size_t serial_len, int64_t *nb, int64_t *na, int64_t *rv)
{
	(void)ctx;
	if (aki_len != 3 || memcmp(aki, "\1\2\3", 3) || serial_len != 2 ||
	    memcmp(serial, "\x0a\x0b", 2))
		return 0;
	*nb = 1000;
	*na = 7000;
	*rv = cert_revoked_at;
	return 1;
}

static struct acme_server srv;

static void setup(void)
{
	struct acme_config cfg = {.base_url = BASE, .eab_required = 1, .nonce_capacity = 64};
	struct acme_store st = {.account_by_thumbprint = st_by_thumb,
	                        .account_by_id = st_by_id,
	                        .eab_lookup = st_eab,
	                        .account_create = st_create,
	                        .account_update = st_update,
	                        .account_rekey = st_rekey,
	                        .revoke_cert = st_revoke,
	                        .cert_validity = st_validity};

	snprintf(cfg.terms_url, sizeof(cfg.terms_url), "https://ca.test/terms");
	snprintf(cfg.website, sizeof(cfg.website), "https://ca.test/");
	ck_assert_int_eq(acme_server_init(&srv, &cfg, &st), 0);
	memset(eabs, 0, sizeof(eabs));
	for (int e = 0; e < 2; e++) {
		snprintf(eabs[e].kid, sizeof(eabs[e].kid), "kid-%d", e + 1);
		eabs[e].hmac_key_len = 32;
		for (int i = 0; i < 32; i++)
			eabs[e].hmac_key[i] = (uint8_t)(i * 7 + e);
		snprintf(eabs[e].principal, sizeof(eabs[e].principal), "team-%d", e + 1);
	}
	updates = rekeys = 0;
	revoked_reason = -1;
	revoked_by = -1;
}

static void teardown(void)
{
	for (int i = 0; i < n_accts; i++)
		acme_account_clear(&accts[i]);
	n_accts = 0;
	acme_server_fini(&srv);
}

static char nonce[ACME_NONCE_LEN + 1];

static void fresh_nonce(void)
{
	ck_assert_int_eq(acme_nonce_new(&srv.nonces, nonce), 0);
}

/* A JWS for path signed with t, by jwk (kid NULL) or by kid. */
static char *jws(const struct tkey *t, const char *kid, const char *path, const char *payload)
{
	char url[600];
	json_t *h;

	fresh_nonce();
	snprintf(url, sizeof(url), BASE "%s", path);
	h = json_pack("{s:s, s:s, s:s}", "alg", t->alg, "nonce", nonce, "url", url);
	if (kid)
		json_object_set_new(h, "kid", json_string(kid));
	else
		json_object_set(h, "jwk", t->jwk);
	return jws_with(t, h, payload);
}

static struct acme_reply rep;

static int post(const char *path, const char *body)
{
	struct acme_request req = {
	    "POST", path, "application/jose+json", (const uint8_t *)body, body ? strlen(body) : 0,
	    NULL};
	acme_reply_clear(&rep);
	acme_handle(&srv, &req, &rep);
	/* Every reply to a POST, good or bad, brings a fresh nonce and the directory link. */
	ck_assert_int_eq(strlen(rep.replay_nonce), ACME_NONCE_LEN);
	ck_assert_int_ge(rep.n_links, 1);
	return rep.status;
}

static int post_free(const char *path, char *body)
{
	int st = post(path, body);
	free(body);
	return st;
}

/* 1 when the reply is the problem document of type. */
static int problem_is(const char *type)
{
	char want[96];
	json_t *o = json_loadb(rep.body, rep.body_len, 0, NULL);
	int ok;

	snprintf(want, sizeof(want), "urn:ietf:params:acme:error:%s", type);
	ok = o && rep.content_type && !strcmp(rep.content_type, "application/problem+json") &&
	     !strcmp(json_string_value(json_object_get(o, "type")), want) &&
	     json_integer_value(json_object_get(o, "status")) == rep.status;
	if (!ok)
		fprintf(stderr, "expected %s, got %d %.*s\n", type, rep.status, (int)rep.body_len,
		        rep.body ? rep.body : "");
	json_decref(o);
	return ok;
}

/* A newAccount payload for t with credential e (NULL: none). */
static char *new_account_payload(const struct tkey *t, const struct acme_eab *e)
{
	json_t *o = json_pack("{s:b, s:[s]}", "termsOfServiceAgreed", 1, "contact",
	                      "mailto:ops@corp.example.com");
	if (e)
		json_object_set_new(
		    o, "externalAccountBinding",
		    eab_for(t, e->kid, e->hmac_key, e->hmac_key_len, BASE "/new-account"));
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Register t with credential e; the account URL into kid. */
static void register_key(const struct tkey *t, const struct acme_eab *e, char *kid, size_t n)
{
	char *pl = new_account_payload(t, e);
	ck_assert_int_eq(post_free("/new-account", jws(t, NULL, "/new-account", pl)), 201);
	free(pl);
	snprintf(kid, n, "%s", rep.location);
}

/* --- the tests --- */

START_TEST(b64url_is_strict)
{
	uint8_t in[5] = {0xfb, 0xff, 0x00, 0x10, 0x7f}, out[8];
	char s[16];

	ck_assert_int_eq(acme_b64url_encode(in, 5, s, sizeof(s)), 7);
	ck_assert_str_eq(s, "-_8AEH8");
	ck_assert_int_eq(acme_b64url_decode(s, 7, out, sizeof(out)), 5);
	ck_assert_mem_eq(in, out, 5);
	ck_assert_int_eq(acme_b64url_decode("-_8AEH8=", 8, out, sizeof(out)), -1); /* padding */
	ck_assert_int_eq(acme_b64url_decode("+/8AEH8", 7, out, sizeof(out)), -1);  /* base64 */
	ck_assert_int_eq(acme_b64url_decode("-_8AEH9", 7, out, sizeof(out)), -1);  /* spare bits */
	ck_assert_int_eq(acme_b64url_decode("-_8AE", 5, out, sizeof(out)), -1);    /* length */
	ck_assert_int_eq(acme_b64url_decode("-_8AEH8", 7, out, 4), -1);            /* room */
	ck_assert_int_eq(acme_b64url_encode(in, 5, s, 7), -1);
}
END_TEST

START_TEST(nonces_are_single_use_and_bounded)
{
	char a[ACME_NONCE_LEN + 1], b[ACME_NONCE_LEN + 1], forged[ACME_NONCE_LEN + 1];

	ck_assert_int_eq(acme_nonce_new(&srv.nonces, a), 0);
	ck_assert_int_eq(acme_nonce_new(&srv.nonces, b), 0);
	ck_assert_str_ne(a, b);
	ck_assert_int_eq(acme_nonce_use(&srv.nonces, b), 1);
	ck_assert_int_eq(acme_nonce_use(&srv.nonces, b), 0);
	/* A changed MAC, an unknown text, nothing. */
	memcpy(forged, a, sizeof(forged));
	forged[ACME_NONCE_LEN - 2] = forged[ACME_NONCE_LEN - 2] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(acme_nonce_use(&srv.nonces, forged), 0);
	ck_assert_int_eq(acme_nonce_use(&srv.nonces, "not-a-nonce"), 0);
	ck_assert_int_eq(acme_nonce_use(&srv.nonces, NULL), 0);
	/* Once 64 (the capacity) newer ones are out, a is forgotten: refused. */
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(acme_nonce_new(&srv.nonces, b), 0);
	ck_assert_int_eq(acme_nonce_use(&srv.nonces, a), 0);
	ck_assert_int_eq(acme_nonce_use(&srv.nonces, b), 1);
	/* A nonce of another store (another process) is refused. */
	struct acme_nonces other;
	ck_assert_int_eq(acme_nonces_init(&other, 16), 0);
	ck_assert_int_eq(acme_nonce_new(&other, a), 0);
	ck_assert_int_eq(acme_nonce_use(&srv.nonces, a), 0);
	acme_nonces_fini(&other);
	ck_assert_int_eq(acme_nonces_init(&other, 1), -1);
}
END_TEST

START_TEST(directory_and_new_nonce)
{
	struct acme_request get = {"GET", "/directory", NULL, NULL, 0, NULL};
	json_t *d, *meta;

	acme_handle(&srv, &get, &rep);
	ck_assert_int_eq(rep.status, 200);
	ck_assert_str_eq(rep.content_type, "application/json");
	d = json_loadb(rep.body, rep.body_len, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(d, "newNonce")), BASE "/new-nonce");
	ck_assert_str_eq(json_string_value(json_object_get(d, "newAccount")), BASE "/new-account");
	ck_assert_str_eq(json_string_value(json_object_get(d, "keyChange")), BASE "/key-change");
	ck_assert_str_eq(json_string_value(json_object_get(d, "revokeCert")), BASE "/revoke-cert");
	ck_assert_str_eq(json_string_value(json_object_get(d, "renewalInfo")),
	                 BASE "/renewal-info");
	meta = json_object_get(d, "meta");
	ck_assert(json_is_true(json_object_get(meta, "externalAccountRequired")));
	ck_assert_str_eq(json_string_value(json_object_get(meta, "termsOfService")),
	                 "https://ca.test/terms");
	ck_assert_str_eq(json_string_value(json_object_get(meta, "website")), "https://ca.test/");
	json_decref(d);

	struct acme_request head = {"HEAD", "/new-nonce", NULL, NULL, 0, NULL};
	acme_reply_clear(&rep);
	acme_handle(&srv, &head, &rep);
	ck_assert_int_eq(rep.status, 200);
	ck_assert(rep.cache_no_store);
	ck_assert_int_eq(acme_nonce_use(&srv.nonces, rep.replay_nonce), 1);
	head.method = "GET";
	acme_reply_clear(&rep);
	acme_handle(&srv, &head, &rep);
	ck_assert_int_eq(rep.status, 204);
	ck_assert_int_eq(acme_nonce_use(&srv.nonces, rep.replay_nonce), 1);
	head.method = "PUT";
	acme_reply_clear(&rep);
	acme_handle(&srv, &head, &rep);
	ck_assert_int_eq(rep.status, 405);
	ck_assert(problem_is("malformed"));
	struct acme_request none = {"GET", "/nothing-here", NULL, NULL, 0, NULL};
	acme_reply_clear(&rep);
	acme_handle(&srv, &none, &rep);
	ck_assert_int_eq(rep.status, 404);
	struct acme_request get_acct = {"GET", "/acct/1", NULL, NULL, 0, NULL};
	acme_reply_clear(&rep);
	acme_handle(&srv, &get_acct, &rep);
	ck_assert_int_eq(rep.status, 405);
	ck_assert_int_eq(post("/nothing-here", "{}"), 404);
}
END_TEST

/* Each accepted algorithm registers, finds its account again, and reads it by kid. */
START_TEST(accounts_with_every_algorithm)
{
	static const char *algs[] = {"ES256", "ES384", "RS256", "EdDSA"};
	struct tkey t = tkey_new(algs[_i]);
	char kid[600], *pl;

	register_key(&t, &eabs[0], kid, sizeof(kid));
	ck_assert_str_eq(kid, BASE "/acct/1");
	ck_assert_str_eq(accts[0].principal, "team-1");
	ck_assert_str_eq(accts[0].eab_kid, "kid-1");
	ck_assert_str_eq(accts[0].contact, "[\"mailto:ops@corp.example.com\"]");
	ck_assert_int_eq(eabs[0].account_id, 1);
	/* The same key again: 200 and the same account, no new one. */
	pl = new_account_payload(&t, NULL);
	ck_assert_int_eq(post_free("/new-account", jws(&t, NULL, "/new-account", pl)), 200);
	free(pl);
	ck_assert_str_eq(rep.location, kid);
	ck_assert_int_eq(n_accts, 1);
	ck_assert_int_eq(post_free("/new-account",
	                           jws(&t, NULL, "/new-account", "{\"onlyReturnExisting\":true}")),
	                 200);
	ck_assert_str_eq(rep.location, kid);
	/* POST-as-GET of the account with its kid. */
	ck_assert_int_eq(post_free("/acct/1", jws(&t, kid, "/acct/1", NULL)), 200);
	json_t *o = json_loadb(rep.body, rep.body_len, 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(o, "status")), "valid");
	json_decref(o);
	tkey_free(&t);
}
END_TEST

START_TEST(bad_jws_is_refused)
{
	struct tkey t = tkey_new("ES256"), u = tkey_new("ES256");
	char kid[600], *body, url[600];
	json_t *h;

	register_key(&t, &eabs[0], kid, sizeof(kid));
	/* A nonce the server never gave, and one used already. */
	h = json_pack("{s:s, s:s, s:s, s:s}", "alg", "ES256", "nonce",
	              "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "kid", kid, "url", BASE "/acct/1");
	ck_assert_int_eq(post_free("/acct/1", jws_with(&t, h, NULL)), 400);
	ck_assert(problem_is("badNonce"));
	body = jws(&t, kid, "/acct/1", NULL);
	ck_assert_int_eq(post("/acct/1", body), 200);
	ck_assert_int_eq(post_free("/acct/1", body), 400);
	ck_assert(problem_is("badNonce"));
	/* No nonce at all. */
	h = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "kid", kid, "url", BASE "/acct/1");
	ck_assert_int_eq(post_free("/acct/1", jws_with(&t, h, NULL)), 400);
	ck_assert(problem_is("badNonce"));
	/* The url of another resource. */
	ck_assert_int_eq(post_free("/acct/1", jws(&t, kid, "/key-change", NULL)), 401);
	ck_assert(problem_is("unauthorized"));
	/* An unknown kid, and a kid that is not an account URL here. */
	ck_assert_int_eq(post_free("/acct/9", jws(&t, BASE "/acct/9", "/acct/9", NULL)), 400);
	ck_assert(problem_is("accountDoesNotExist"));
	ck_assert_int_eq(
	    post_free("/acct/1", jws(&t, "https://elsewhere.test/acme/acct/1", "/acct/1", NULL)),
	    400);
	ck_assert(problem_is("accountDoesNotExist"));
	/* Another key signing for this account's kid. */
	ck_assert_int_eq(post_free("/acct/1", jws(&u, kid, "/acct/1", NULL)), 400);
	ck_assert(problem_is("malformed"));
	/* alg none, and a MAC algorithm. */
	fresh_nonce();
	h = json_pack("{s:s, s:s, s:s, s:s}", "alg", "none", "nonce", nonce, "kid", kid, "url",
	              BASE "/acct/1");
	ck_assert_int_eq(post_free("/acct/1", jws_with(&t, h, NULL)), 400);
	ck_assert(problem_is("badSignatureAlgorithm"));
	ck_assert(strstr(rep.body, "\"algorithms\""));
	fresh_nonce();
	h = json_pack("{s:s, s:s, s:s, s:s}", "alg", "HS256", "nonce", nonce, "kid", kid, "url",
	              BASE "/acct/1");
	ck_assert_int_eq(post_free("/acct/1", jws_with(&t, h, NULL)), 400);
	ck_assert(problem_is("badSignatureAlgorithm"));
	/* An alg that does not fit the key. */
	fresh_nonce();
	h = json_pack("{s:s, s:s, s:s, s:s}", "alg", "ES384", "nonce", nonce, "kid", kid, "url",
	              BASE "/acct/1");
	ck_assert_int_eq(post_free("/acct/1", jws_with(&t, h, NULL)), 400);
	ck_assert(problem_is("badSignatureAlgorithm"));
	/* Both jwk and kid; kid where jwk is due; jwk where kid is due. */
	fresh_nonce();
	h = json_pack("{s:s, s:s, s:s, s:s, s:O}", "alg", "ES256", "nonce", nonce, "kid", kid,
	              "url", BASE "/acct/1", "jwk", t.jwk);
	ck_assert_int_eq(post_free("/acct/1", jws_with(&t, h, NULL)), 400);
	ck_assert(problem_is("malformed"));
	ck_assert_int_eq(post_free("/new-account", jws(&t, kid, "/new-account", "{}")), 400);
	ck_assert(problem_is("malformed"));
	ck_assert_int_eq(post_free("/acct/1", jws(&t, NULL, "/acct/1", NULL)), 400);
	ck_assert(problem_is("malformed"));
	/* crit; an unprotected header; a signature that does not verify. */
	fresh_nonce();
	h = json_pack("{s:s, s:s, s:s, s:s, s:[s]}", "alg", "ES256", "nonce", nonce, "kid", kid,
	              "url", BASE "/acct/1", "crit", "exp");
	ck_assert_int_eq(post_free("/acct/1", jws_with(&t, h, NULL)), 400);
	ck_assert(problem_is("malformed"));
	body = jws(&t, kid, "/acct/1", NULL);
	json_t *o = json_loads(body, 0, NULL);
	json_object_set_new(o, "header", json_pack("{s:s}", "kid", kid));
	free(body);
	ck_assert_int_eq(post_free("/acct/1", json_dumps(o, JSON_COMPACT)), 400);
	ck_assert(problem_is("malformed"));
	json_decref(o);
	body = jws(&t, kid, "/acct/1", NULL);
	body[strlen(body) - 4] = body[strlen(body) - 4] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(post_free("/acct/1", body), 400);
	ck_assert(problem_is("malformed"));
	/* Not JSON; an oversized body; the wrong content type. */
	ck_assert_int_eq(post("/acct/1", "{\"protected\":"), 400);
	ck_assert(problem_is("malformed"));
	body = malloc(ACME_BODY_MAX + 2);
	memset(body, ' ', ACME_BODY_MAX + 1);
	body[ACME_BODY_MAX + 1] = '\0';
	ck_assert_int_eq(post_free("/acct/1", body), 413);
	ck_assert(problem_is("malformed"));
	struct acme_request req = {"POST", "/acct/1", "application/json", (const uint8_t *)"{}",
	                           2,      NULL};
	acme_reply_clear(&rep);
	acme_handle(&srv, &req, &rep);
	ck_assert_int_eq(rep.status, 415);
	req.content_type = "application/jose+jsonx";
	acme_reply_clear(&rep);
	acme_handle(&srv, &req, &rep);
	ck_assert_int_eq(rep.status, 415);
	/* With a parameter, the media type is still right. */
	body = jws(&t, kid, "/acct/1", NULL);
	req.content_type = "application/jose+json; charset=utf-8";
	req.body = (const uint8_t *)body;
	req.body_len = strlen(body);
	acme_reply_clear(&rep);
	acme_handle(&srv, &req, &rep);
	ck_assert_int_eq(rep.status, 200);
	free(body);
	/* A url that is this resource but another server's. */
	fresh_nonce();
	snprintf(url, sizeof(url), "https://other.test/acme/acct/1");
	h = json_pack("{s:s, s:s, s:s, s:s}", "alg", "ES256", "nonce", nonce, "kid", kid, "url",
	              url);
	ck_assert_int_eq(post_free("/acct/1", jws_with(&t, h, NULL)), 401);
	ck_assert(problem_is("unauthorized"));
	/* Nothing changed. */
	ck_assert_int_eq(n_accts, 1);
	ck_assert_int_eq(updates, 0);
	tkey_free(&t);
	tkey_free(&u);
}
END_TEST

START_TEST(bad_keys_are_refused)
{
	struct tkey t = tkey_new("ES256");
	json_t *jwk = json_deep_copy(t.jwk), *h;
	EVP_PKEY *k;
	char thumb[ACME_THUMBPRINT_LEN + 1];
	struct acme_problem p;

	/* A point off the curve. */
	json_object_set_new(jwk, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	ck_assert_int_eq(acme_jwk_key(jwk, &k, thumb, &p), -1);
	ck_assert_str_eq(p.type, "badPublicKey");
	/* Private key material. */
	json_decref(jwk);
	jwk = json_deep_copy(t.jwk);
	json_object_set_new(jwk, "d", json_string("AAAA"));
	ck_assert_int_eq(acme_jwk_key(jwk, &k, thumb, &p), -1);
	ck_assert_str_eq(p.type, "badPublicKey");
	/* P-521, symmetric, small RSA. */
	json_decref(jwk);
	jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-521", "x", "AA", "y", "AA");
	ck_assert_int_eq(acme_jwk_key(jwk, &k, thumb, &p), -1);
	json_decref(jwk);
	jwk = json_pack("{s:s, s:s}", "kty", "oct", "k", "AAAA");
	ck_assert_int_eq(acme_jwk_key(jwk, &k, thumb, &p), -1);
	json_decref(jwk);
	struct tkey small = {.alg = "RS256"};
	small.k = EVP_RSA_gen(1024);
	BIGNUM *n = NULL;
	uint8_t buf[256];
	EVP_PKEY_get_bn_param(small.k, OSSL_PKEY_PARAM_RSA_N, &n);
	int len = BN_bn2bin(n, buf);
	char *nb = b64(buf, (size_t)len);
	jwk = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", nb, "e", "AQAB");
	ck_assert_int_eq(acme_jwk_key(jwk, &k, thumb, &p), -1);
	ck_assert_str_eq(p.type, "badPublicKey");
	/* And through newAccount: badPublicKey, nothing stored. */
	fresh_nonce();
	h = json_pack("{s:s, s:s, s:s, s:O}", "alg", "RS256", "nonce", nonce, "url",
	              BASE "/new-account", "jwk", jwk);
	ck_assert_int_eq(post_free("/new-account", jws_with(&small, h, "{}")), 400);
	ck_assert(problem_is("badPublicKey"));
	ck_assert_int_eq(n_accts, 0);
	json_decref(jwk);
	free(nb);
	BN_free(n);
	EVP_PKEY_free(small.k);
	tkey_free(&t);
}
END_TEST

/* RFC 7638 §3.1's example: the thumbprint of its RSA key. */
START_TEST(thumbprint_matches_rfc7638)
{
	json_t *jwk = json_pack(
	    "{s:s, s:s, s:s, s:s}", "kty", "RSA", "n",
	    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc"
	    "_"
	    "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"
	    "65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyr"
	    "dkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-"
	    "kEgU8awapJzKnqDK"
	    "gw",
	    "e", "AQAB", "alg", "RS256");
	EVP_PKEY *k;
	char thumb[ACME_THUMBPRINT_LEN + 1];
	struct acme_problem p;

	ck_assert_int_eq(acme_jwk_key(jwk, &k, thumb, &p), 0);
	ck_assert_str_eq(thumb, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	EVP_PKEY_free(k);
	json_decref(jwk);
}
END_TEST

START_TEST(external_account_binding_is_required_and_checked)
{
	struct tkey t = tkey_new("ES256"), u = tkey_new("EdDSA");
	struct acme_eab wrong = eabs[0];
	char *pl, kid[600];
	json_t *o;

	/* Missing. */
	pl = new_account_payload(&t, NULL);
	ck_assert_int_eq(post_free("/new-account", jws(&t, NULL, "/new-account", pl)), 400);
	free(pl);
	ck_assert(problem_is("externalAccountRequired"));
	/* A wrong HMAC key, and an unknown kid: the same answer. */
	wrong.hmac_key[0] ^= 1;
	pl = new_account_payload(&t, &wrong);
	ck_assert_int_eq(post_free("/new-account", jws(&t, NULL, "/new-account", pl)), 401);
	free(pl);
	ck_assert(problem_is("unauthorized"));
	snprintf(wrong.kid, sizeof(wrong.kid), "kid-unknown");
	pl = new_account_payload(&t, &wrong);
	ck_assert_int_eq(post_free("/new-account", jws(&t, NULL, "/new-account", pl)), 401);
	free(pl);
	ck_assert(problem_is("unauthorized"));
	/* A binding of another key. */
	o = json_pack(
	    "{s:b, s:o}", "termsOfServiceAgreed", 1, "externalAccountBinding",
	    eab_for(&u, eabs[0].kid, eabs[0].hmac_key, eabs[0].hmac_key_len, BASE "/new-account"));
	pl = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	ck_assert_int_eq(post_free("/new-account", jws(&t, NULL, "/new-account", pl)), 400);
	free(pl);
	ck_assert(problem_is("malformed"));
	/* A binding made for another URL. */
	o = json_pack(
	    "{s:b, s:o}", "termsOfServiceAgreed", 1, "externalAccountBinding",
	    eab_for(&t, eabs[0].kid, eabs[0].hmac_key, eabs[0].hmac_key_len, BASE "/acct/1"));
	pl = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	ck_assert_int_eq(post_free("/new-account", jws(&t, NULL, "/new-account", pl)), 401);
	free(pl);
	ck_assert(problem_is("unauthorized"));
	ck_assert_int_eq(n_accts, 0);
	/* Good; then the same credential for a second key is refused. */
	register_key(&t, &eabs[0], kid, sizeof(kid));
	pl = new_account_payload(&u, &eabs[0]);
	ck_assert_int_eq(post_free("/new-account", jws(&u, NULL, "/new-account", pl)), 401);
	free(pl);
	ck_assert(problem_is("unauthorized"));
	ck_assert_int_eq(n_accts, 1);
	/* Terms of service not agreed. */
	pl = strdup("{\"contact\":[]}");
	ck_assert_int_eq(post_free("/new-account", jws(&u, NULL, "/new-account", pl)), 403);
	free(pl);
	ck_assert(problem_is("userActionRequired"));
	/* onlyReturnExisting for a key without an account. */
	ck_assert_int_eq(post_free("/new-account",
	                           jws(&u, NULL, "/new-account", "{\"onlyReturnExisting\":true}")),
	                 400);
	ck_assert(problem_is("accountDoesNotExist"));
	tkey_free(&t);
	tkey_free(&u);
}
END_TEST

START_TEST(contacts_are_checked)
{
	static const char *bad[] = {
	    "[\"tel:+15551234\"]",
	    "[\"mailto:\"]",
	    "[\"mailto:a@b\"]",
	    "[\"mailto:a@b.example?subject=x\"]",
	    "[\"mailto:a@b.example,c@d.example\"]",
	    "[\"mailto:a b@c.example\"]",
	    "[1]",
	    "\"mailto:a@b.example\"",
	};
	static const char *types[] = {"unsupportedContact", "invalidContact", "invalidContact",
	                              "invalidContact",     "invalidContact", "invalidContact",
	                              "malformed",          "malformed"};
	struct acme_problem p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *c = json_loads(bad[i], JSON_DECODE_ANY, NULL);
		ck_assert_int_eq(acme_contacts_check(c, &p), -1);
		ck_assert_str_eq(p.type, types[i]);
		json_decref(c);
	}
	json_t *ok = json_pack("[s,s]", "mailto:a@b.example", "mailto:ops+pki@corp.example.com");
	ck_assert_int_eq(acme_contacts_check(ok, &p), 0);
	json_decref(ok);
	json_t *many = json_array();
	for (int i = 0; i <= ACME_CONTACTS_MAX; i++)
		json_array_append_new(many, json_string("mailto:a@b.example"));
	ck_assert_int_eq(acme_contacts_check(many, &p), -1);
	json_decref(many);
}
END_TEST

START_TEST(account_update_and_deactivation)
{
	struct tkey t = tkey_new("ES256"), u = tkey_new("ES384");
	char kid[600], kid2[600];

	register_key(&t, &eabs[0], kid, sizeof(kid));
	register_key(&u, &eabs[1], kid2, sizeof(kid2));
	/* Another account's key may not read or change this one. */
	ck_assert_int_eq(post_free("/acct/1", jws(&u, kid2, "/acct/1", NULL)), 401);
	ck_assert(problem_is("unauthorized"));
	ck_assert_int_eq(
	    post_free("/acct/1",
	              jws(&t, kid, "/acct/1", "{\"contact\":[\"mailto:new@corp.example.com\"]}")),
	    200);
	ck_assert_str_eq(accts[0].contact, "[\"mailto:new@corp.example.com\"]");
	ck_assert_int_eq(post_free("/acct/1", jws(&t, kid, "/acct/1", "{\"contact\":[\"tel:1\"]}")),
	                 400);
	ck_assert(problem_is("unsupportedContact"));
	ck_assert_int_eq(post_free("/acct/1", jws(&t, kid, "/acct/1", "{\"status\":\"valid\"}")),
	                 400);
	ck_assert_int_eq(updates, 1);
	ck_assert_int_eq(
	    post_free("/acct/1", jws(&t, kid, "/acct/1", "{\"status\":\"deactivated\"}")), 200);
	ck_assert_int_eq(accts[0].status, ACME_ACCOUNT_DEACTIVATED);
	ck_assert(strstr(rep.body, "\"deactivated\""));
	/* A deactivated account's key is refused from now on. */
	ck_assert_int_eq(post_free("/acct/1", jws(&t, kid, "/acct/1", NULL)), 401);
	ck_assert(problem_is("unauthorized"));
	ck_assert_int_eq(post_free("/acct/2", jws(&u, kid2, "/acct/2", NULL)), 200);
	tkey_free(&t);
	tkey_free(&u);
}
END_TEST

/* The inner JWS of a keyChange for account kid from old to new_key, signed by signer. */
static char *key_change_inner(const struct tkey *signer, const struct tkey *new_key,
                              const struct tkey *old, const char *kid, const char *url)
{
	json_t *h =
	    json_pack("{s:s, s:s, s:O}", "alg", signer->alg, "url", url, "jwk", new_key->jwk);
	json_t *pl = json_pack("{s:s, s:O}", "account", kid, "oldKey", old->jwk);
	char *pls = json_dumps(pl, JSON_COMPACT), *out = jws_with(signer, h, pls);

	json_decref(pl);
	free(pls);
	return out;
}

START_TEST(key_rollover)
{
	struct tkey t = tkey_new("ES256"), n = tkey_new("RS256"), o = tkey_new("EdDSA");
	char kid[600], kid2[600], *inner;

	register_key(&t, &eabs[0], kid, sizeof(kid));
	register_key(&o, &eabs[1], kid2, sizeof(kid2));
	/* Signed by the wrong key, naming the wrong old key, the wrong account, the wrong url,
	 * the key of another account: refused, nothing changed. */
	inner = key_change_inner(&t, &n, &t, kid, BASE "/key-change");
	ck_assert_int_eq(post_free("/key-change", jws(&t, kid, "/key-change", inner)), 400);
	free(inner);
	inner = key_change_inner(&n, &n, &o, kid, BASE "/key-change");
	ck_assert_int_eq(post_free("/key-change", jws(&t, kid, "/key-change", inner)), 401);
	free(inner);
	inner = key_change_inner(&n, &n, &t, kid2, BASE "/key-change");
	ck_assert_int_eq(post_free("/key-change", jws(&t, kid, "/key-change", inner)), 401);
	free(inner);
	inner = key_change_inner(&n, &n, &t, kid, BASE "/acct/1");
	ck_assert_int_eq(post_free("/key-change", jws(&t, kid, "/key-change", inner)), 400);
	free(inner);
	inner = key_change_inner(&o, &o, &t, kid, BASE "/key-change");
	ck_assert_int_eq(post_free("/key-change", jws(&t, kid, "/key-change", inner)), 409);
	free(inner);
	ck_assert(problem_is("conflict"));
	ck_assert_str_eq(rep.location, kid2);
	ck_assert_int_eq(rekeys, 0);
	/* The inner JWS with a nonce is refused. */
	{
		json_t *h = json_pack("{s:s, s:s, s:O, s:s}", "alg", "RS256", "url",
		                      BASE "/key-change", "jwk", n.jwk, "nonce", "x");
		json_t *pl = json_pack("{s:s, s:O}", "account", kid, "oldKey", t.jwk);
		char *pls = json_dumps(pl, JSON_COMPACT);
		inner = jws_with(&n, h, pls);
		ck_assert_int_eq(post_free("/key-change", jws(&t, kid, "/key-change", inner)), 400);
		free(inner);
		free(pls);
		json_decref(pl);
	}
	/* Good: the new key works, the old one no longer does. */
	inner = key_change_inner(&n, &n, &t, kid, BASE "/key-change");
	ck_assert_int_eq(post_free("/key-change", jws(&t, kid, "/key-change", inner)), 200);
	free(inner);
	ck_assert_int_eq(rekeys, 1);
	ck_assert_int_eq(post_free("/acct/1", jws(&t, kid, "/acct/1", NULL)), 400);
	ck_assert(problem_is("badSignatureAlgorithm"));
	ck_assert_int_eq(post_free("/acct/1", jws(&n, kid, "/acct/1", NULL)), 200);
	ck_assert_int_eq(post_free("/new-account",
	                           jws(&n, NULL, "/new-account", "{\"onlyReturnExisting\":true}")),
	                 200);
	ck_assert_str_eq(rep.location, kid);
	tkey_free(&t);
	tkey_free(&n);
	tkey_free(&o);
}
END_TEST

/* A self-signed certificate of t's key, base64url DER (malloc); extra bytes appended. */
static char *cert_of(const struct tkey *t, const char *extra)
{
	X509 *x = X509_new();
	uint8_t *der = NULL, buf[4096];
	int n;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	                           (const unsigned char *)"www.example.com", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, t->k);
	ck_assert(X509_sign(x, t->k, strcmp(t->alg, "EdDSA") ? EVP_sha256() : NULL) > 0);
	n = i2d_X509(x, &der);
	ck_assert_int_gt(n, 0);
	memcpy(buf, der, (size_t)n);
	if (extra) {
		memcpy(buf + n, extra, strlen(extra));
		n += (int)strlen(extra);
	}
	OPENSSL_free(der);
	X509_free(x);
	return b64(buf, (size_t)n);
}

static char *revoke_payload(const char *cert, int reason)
{
	json_t *o = json_pack("{s:s}", "certificate", cert);
	char *s;

	if (reason >= 0)
		json_object_set_new(o, "reason", json_integer(reason));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

START_TEST(revoke_cert_by_its_key_or_by_account)
{
	struct tkey t = tkey_new("ES256"), c = tkey_new("ES384"), o = tkey_new("EdDSA");
	char kid[600], *cert = cert_of(&c, NULL), *pl;

	register_key(&t, &eabs[0], kid, sizeof(kid));
	/* Another key than the certificate's, with a jwk: refused, the store not asked. */
	pl = revoke_payload(cert, 1);
	ck_assert_int_eq(post_free("/revoke-cert", jws(&o, NULL, "/revoke-cert", pl)), 403);
	ck_assert(problem_is("unauthorized"));
	ck_assert_int_eq(revoked_reason, -1);
	/* Bad reasons, a body that is not one certificate. */
	free(pl);
	pl = revoke_payload(cert, 6);
	ck_assert_int_eq(post_free("/revoke-cert", jws(&c, NULL, "/revoke-cert", pl)), 400);
	ck_assert(problem_is("badRevocationReason"));
	free(pl);
	pl = revoke_payload(cert, 2);
	ck_assert_int_eq(post_free("/revoke-cert", jws(&c, NULL, "/revoke-cert", pl)), 400);
	ck_assert(problem_is("badRevocationReason"));
	free(pl);
	char *trailing = cert_of(&c, "xx");
	pl = revoke_payload(trailing, 1);
	free(trailing);
	ck_assert_int_eq(post_free("/revoke-cert", jws(&c, NULL, "/revoke-cert", pl)), 400);
	ck_assert(problem_is("malformed"));
	free(pl);
	ck_assert_int_eq(post_free("/revoke-cert", jws(&c, NULL, "/revoke-cert", "{}")), 400);
	ck_assert(problem_is("malformed"));
	ck_assert_int_eq(revoked_reason, -1);
	/* By the certificate's key (keyCompromise), then again: alreadyRevoked. */
	pl = revoke_payload(cert, 1);
	ck_assert_int_eq(post_free("/revoke-cert", jws(&c, NULL, "/revoke-cert", pl)), 200);
	ck_assert_int_eq(revoked_reason, 1);
	ck_assert_int_eq(revoked_by, 0);
	ck_assert_int_eq(post_free("/revoke-cert", jws(&c, NULL, "/revoke-cert", pl)), 400);
	ck_assert(problem_is("alreadyRevoked"));
	free(pl);
	/* By an account's kid: the store judges with the account (reason default 0). */
	revoked_reason = -1;
	pl = revoke_payload(cert, -1);
	ck_assert_int_eq(post_free("/revoke-cert", jws(&t, kid, "/revoke-cert", pl)), 200);
	ck_assert_int_eq(revoked_reason, 0);
	ck_assert_int_eq(revoked_by, 1);
	free(pl);
	free(cert);
	tkey_free(&t);
	tkey_free(&c);
	tkey_free(&o);
}
END_TEST

START_TEST(renewal_information)
{
	struct acme_request get = {"GET", "/renewal-info/AQID.Cgs", NULL, NULL, 0, NULL};
	int64_t start, end;
	json_t *o, *w;

	/* The window: two thirds to five sixths of the life; before now once revoked. */
	acme_renewal_window(1000, 7000, 0, 2000, &start, &end);
	ck_assert_int_eq(start, 5000);
	ck_assert_int_eq(end, 6000);
	acme_renewal_window(1000, 7000, 1500, 2000, &start, &end);
	ck_assert_int_lt(end, 1500);
	ck_assert_int_lt(start, end);
	acme_reply_clear(&rep);
	cert_revoked_at = 0;
	acme_handle(&srv, &get, &rep);
	ck_assert_int_eq(rep.status, 200);
	ck_assert_int_eq(rep.retry_after, ACME_ARI_RETRY_AFTER);
	o = json_loadb(rep.body, rep.body_len, 0, NULL);
	w = json_object_get(o, "suggestedWindow");
	ck_assert_str_eq(json_string_value(json_object_get(w, "start")), "1970-01-01T01:23:20Z");
	ck_assert_str_eq(json_string_value(json_object_get(w, "end")), "1970-01-01T01:40:00Z");
	json_decref(o);
	/* Unknown, malformed, and POST. */
	get.path = "/renewal-info/AQID.Cgw";
	acme_reply_clear(&rep);
	acme_handle(&srv, &get, &rep);
	ck_assert_int_eq(rep.status, 404);
	get.path = "/renewal-info/AQID";
	acme_reply_clear(&rep);
	acme_handle(&srv, &get, &rep);
	ck_assert_int_eq(rep.status, 400);
	ck_assert(problem_is("malformed"));
	get.path = "/renewal-info/AQ=D.Cgs";
	acme_reply_clear(&rep);
	acme_handle(&srv, &get, &rep);
	ck_assert_int_eq(rep.status, 400);
	get.path = "/renewal-info/AQID.Cgs";
	get.method = "POST";
	acme_reply_clear(&rep);
	acme_handle(&srv, &get, &rep);
	ck_assert_int_eq(rep.status, 405);
}
END_TEST

/* newOrder's identifiers: normalized, deduplicated, and refused with the right problem. */
START_TEST(order_identifiers_are_parsed_strictly)
{
	struct acme_ident ids[ACME_IDENTS_MAX];
	struct acme_problem p = {0};
	json_t *j = json_loads("[{\"type\":\"dns\",\"value\":\"WWW.Example.com\"},"
	                       "{\"type\":\"dns\",\"value\":\"www.example.com\"},"
	                       "{\"type\":\"dns\",\"value\":\"*.example.com\"},"
	                       "{\"type\":\"ip\",\"value\":\"::0001\"}]",
	                       0, NULL);
	static const char *const bad[][2] = {
	    {"[{\"type\":\"dns\",\"value\":\"a.*.example.com\"}]", "rejectedIdentifier"},
	    {"[{\"type\":\"dns\",\"value\":\"-a.example.com\"}]", "rejectedIdentifier"},
	    {"[{\"type\":\"dns\",\"value\":\"localhost\"}]", "rejectedIdentifier"},
	    {"[{\"type\":\"dns\",\"value\":\"example.com.\"}]", "rejectedIdentifier"},
	    {"[{\"type\":\"ip\",\"value\":\"127.0.0.01\"}]", "rejectedIdentifier"},
	    {"[{\"type\":\"email\",\"value\":\"a@example.com\"}]", "unsupportedIdentifier"},
	    {"[{\"type\":\"dns\",\"value\":\"a.example.com\",\"x\":1}]", "malformed"},
	    {"[]", "malformed"},
	    {"{}", "malformed"}};

	ck_assert_int_eq(acme_identifiers_parse(j, ids, &p), 3);
	json_decref(j);
	ck_assert_str_eq(ids[0].value, "www.example.com");
	ck_assert(!ids[0].wildcard);
	ck_assert_str_eq(ids[1].value, "example.com");
	ck_assert(ids[1].wildcard);
	ck_assert_str_eq(ids[2].type, "ip");
	ck_assert_str_eq(ids[2].value, "::1");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&p, 0, sizeof(p));
		j = json_loads(bad[i][0], 0, NULL);
		ck_assert_msg(acme_identifiers_parse(j, ids, &p) < 0, "%s", bad[i][0]);
		ck_assert_str_eq(p.type, bad[i][1]);
		json_decref(j);
	}
}
END_TEST

static int csr_der(const char *cn, const char *sans, uint8_t **der)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	int len;

	if (cn)
		X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
		                           (const unsigned char *)cn, -1, -1, 0);
	sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans));
	X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_set_pubkey(req, k);
	ck_assert(X509_REQ_sign(req, k, EVP_sha256()) > 0);
	*der = NULL;
	len = i2d_X509_REQ(req, der);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return len;
}

/* finalize's CSR names exactly the order's identifiers, a CN only among them. */
/* newOrder's notBefore/notAfter (RFC 8555 §7.4): RFC 3339 date-times, strictly. */
START_TEST(order_times_are_rfc3339)
{
	static const char *const bad[] = {"",
	                                  "2026-03-01",
	                                  "2026-03-01 08:00:00Z",
	                                  "2026-03-01T08:00:00",
	                                  "2026-3-01T08:00:00Z",
	                                  "2026-02-30T08:00:00Z",
	                                  "2026-13-01T08:00:00Z",
	                                  "2026-03-01T24:00:00Z",
	                                  "2026-03-01T08:00:00.Z",
	                                  "2026-03-01T08:00:00+0200",
	                                  "2026-03-01T08:00:00+24:00",
	                                  "1969-12-31T23:59:59Z",
	                                  "2026-03-01T08:00:00Z ",
	                                  "+2026-03-01T08:00:00Z",
	                                  "2026-03-01T08:00:00.1234567890Z"};
	int64_t t = 0;

	ck_assert_int_eq(acme_time_parse("2026-03-01T08:00:00Z", &t), 0);
	ck_assert_int_eq(t, 1772352000);
	ck_assert_int_eq(acme_time_parse("2026-03-01T10:00:00.5+02:00", &t), 0);
	ck_assert_int_eq(t, 1772352000);
	ck_assert_int_eq(acme_time_parse("2026-03-01t03:30:00-04:30", &t), 0);
	ck_assert_int_eq(t, 1772352000);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(acme_time_parse(bad[i], &t) < 0, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(csr_must_match_the_order_exactly)
{
	static const struct acme_ident order[] = {
	    {"dns", "www.example.com", 0}, {"dns", "example.com", 1}, {"ip", "127.0.0.1", 0}};
	static const char *const good[][2] = {
	    {"www.example.com", "DNS:www.example.com,DNS:*.example.com,IP:127.0.0.1"},
	    {NULL, "IP:127.0.0.1,DNS:*.example.com,DNS:WWW.example.com"}};
	static const char *const bad[][2] = {
	    {NULL, "DNS:www.example.com,DNS:*.example.com"},
	    {NULL, "DNS:www.example.com,DNS:*.example.com,IP:127.0.0.1,DNS:a.example.com"},
	    {NULL, "DNS:www.example.com,DNS:example.com,IP:127.0.0.1"},
	    {"a.example.com", "DNS:www.example.com,DNS:*.example.com,IP:127.0.0.1"},
	    {NULL, "DNS:www.example.com,DNS:*.example.com,IP:127.0.0.1,email:a@example.com"}};
	struct acme_problem p;
	uint8_t *der;
	int len;

	for (size_t i = 0; i < 2; i++) {
		memset(&p, 0, sizeof(p));
		len = csr_der(good[i][0], good[i][1], &der);
		ck_assert_msg(acme_csr_matches(der, (size_t)len, order, 3, &p) == 0, "%s: %s",
		              good[i][1], p.detail);
		OPENSSL_free(der);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&p, 0, sizeof(p));
		len = csr_der(bad[i][0], bad[i][1], &der);
		ck_assert_msg(acme_csr_matches(der, (size_t)len, order, 3, &p) < 0, "%s",
		              bad[i][1]);
		ck_assert_str_eq(p.type, "badCSR");
		OPENSSL_free(der);
	}
	memset(&p, 0, sizeof(p));
	ck_assert_int_lt(acme_csr_matches((const uint8_t *)"\x30\x00", 2, order, 3, &p), 0);
	ck_assert_str_eq(p.type, "badCSR");
	/* The order's names in extensionRequest and another name in Microsoft's attribute, put
	 * first: refused (OpenSSL's reading takes the standard one, the CA core refuses both),
	 * so that the names matched are always the names issued. */
	{
		EVP_PKEY *k = EVP_EC_gen("P-256");
		X509_REQ *req = X509_REQ_new();
		STACK_OF(X509_EXTENSION) *mine = sk_X509_EXTENSION_new_null(),
		                         *other = sk_X509_EXTENSION_new_null();
		sk_X509_EXTENSION_push(
		    mine, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, good[0][1]));
		sk_X509_EXTENSION_push(other, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
		                                                  "DNS:elsewhere.example.net"));
		ck_assert_int_eq(X509_REQ_add_extensions_nid(req, other, NID_ms_ext_req), 1);
		ck_assert_int_eq(X509_REQ_add_extensions_nid(req, mine, NID_ext_req), 1);
		X509_REQ_set_pubkey(req, k);
		ck_assert(X509_REQ_sign(req, k, EVP_sha256()) > 0);
		der = NULL;
		len = i2d_X509_REQ(req, &der);
		memset(&p, 0, sizeof(p));
		ck_assert_int_lt(acme_csr_matches(der, (size_t)len, order, 3, &p), 0);
		ck_assert_str_eq(p.type, "badCSR");
		ck_assert_ptr_nonnull(strstr(p.detail, "more than one attribute"));
		OPENSSL_free(der);
		sk_X509_EXTENSION_pop_free(mine, X509_EXTENSION_free);
		sk_X509_EXTENSION_pop_free(other, X509_EXTENSION_free);
		X509_REQ_free(req);
		EVP_PKEY_free(k);
	}
}
END_TEST

/* The request is read whole and exactly (no byte after it, none missing), its SANs one by one;
 * its public key is not judged here (the CA core reads it at issuance), so a key of an
 * algorithm nobody decodes still matches. */
START_TEST(csr_match_reads_the_request_exactly)
{
	static const struct acme_ident order[] = {{"dns", "www.example.com", 0}};
	static const uint8_t ec_oid[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
	struct acme_problem p;
	uint8_t *der, *more, *oid;
	int len;

	len = csr_der("www.example.com", "DNS:www.example.com", &der);
	memset(&p, 0, sizeof(p));
	ck_assert_msg(acme_csr_matches(der, (size_t)len, order, 1, &p) == 0, "%s", p.detail);
	ck_assert_ptr_nonnull(more = malloc((size_t)len + 1));
	memcpy(more, der, (size_t)len);
	more[len] = 0;
	memset(&p, 0, sizeof(p));
	ck_assert_int_lt(acme_csr_matches(more, (size_t)len + 1, order, 1, &p), 0);
	ck_assert_str_eq(p.type, "badCSR");
	ck_assert_str_eq(p.detail, "the CSR is not a DER PKCS#10 request");
	memset(&p, 0, sizeof(p));
	ck_assert_int_lt(acme_csr_matches(der, (size_t)len - 1, order, 1, &p), 0);
	ck_assert_str_eq(p.detail, "the CSR is not a DER PKCS#10 request");
	/* id-ecPublicKey made 1.2.840.10045.2.9, an algorithm without a decoder */
	oid = memmem(more, (size_t)len, ec_oid, sizeof(ec_oid));
	ck_assert_ptr_nonnull(oid);
	oid[sizeof(ec_oid) - 1] = 0x09;
	memset(&p, 0, sizeof(p));
	ck_assert_msg(acme_csr_matches(more, (size_t)len, order, 1, &p) == 0, "%s", p.detail);
	free(more);
	OPENSSL_free(der);

	len = csr_der(NULL, "DNS:www.example.com,URI:https://www.example.com/", &der);
	memset(&p, 0, sizeof(p));
	ck_assert_int_lt(acme_csr_matches(der, (size_t)len, order, 1, &p), 0);
	ck_assert_str_eq(p.detail,
	                 "the CSR names a subjectAltName that is neither dNSName nor iPAddress");
	OPENSSL_free(der);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("acme");
	TCase *tc = tcase_create("protocol");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, b64url_is_strict);
	tcase_add_test(tc, nonces_are_single_use_and_bounded);
	tcase_add_test(tc, directory_and_new_nonce);
	tcase_add_loop_test(tc, accounts_with_every_algorithm, 0, 4);
	tcase_add_test(tc, bad_jws_is_refused);
	tcase_add_test(tc, bad_keys_are_refused);
	tcase_add_test(tc, thumbprint_matches_rfc7638);
	tcase_add_test(tc, external_account_binding_is_required_and_checked);
	tcase_add_test(tc, contacts_are_checked);
	tcase_add_test(tc, account_update_and_deactivation);
	tcase_add_test(tc, key_rollover);
	tcase_add_test(tc, revoke_cert_by_its_key_or_by_account);
	tcase_add_test(tc, renewal_information);
	tcase_add_test(tc, order_identifiers_are_parsed_strictly);
	tcase_add_test(tc, csr_must_match_the_order_exactly);
	tcase_add_test(tc, csr_match_reads_the_request_exactly);
	tcase_add_test(tc, order_times_are_rfc3339);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	acme_reply_clear(&rep);
	return failed ? 1 : 0;
}
