/* The ACME server's requests and replies (RFC 8555 §7): the directory, newNonce, and accounts
 * (newAccount, update, deactivation, keyChange). Every POST goes the same way: content type,
 * the JWS's shape, its url against the URL asked for, its nonce, then the key (jwk or kid as
 * the resource demands) and the signature; only then is the payload looked at. Every reply but
 * the directory carries a fresh Replay-Nonce. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "acme.h"

int acme_server_init(struct acme_server *s, const struct acme_config *cfg,
                     const struct acme_store *store)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->store = *store;
	if (!(s->keys = calloc(1, sizeof(*s->keys))))
		return -1;
	pthread_mutex_init(&s->keys->mu, NULL);
	if (acme_nonces_init(&s->nonces, cfg->nonce_capacity) != 0) {
		acme_server_fini(s);
		return -1;
	}
	return 0;
}

void acme_server_fini(struct acme_server *s)
{
	acme_nonces_fini(&s->nonces);
	if (s->keys) {
		for (size_t i = 0; i < ACME_KEY_CACHE; i++) {
			EVP_PKEY_free(s->keys->e[i].key);
			free(s->keys->e[i].profiles);
			free(s->keys->e[i].allow);
		}
		pthread_mutex_destroy(&s->keys->mu);
		free(s->keys);
		s->keys = NULL;
	}
}

static void swap(char **a, char **b)
{
	char *t = *a;

	*a = *b;
	*b = t;
}

/* Account a's key, parsed from its JWK or taken from the cache (a reference the caller frees).
 * NULL with p set when the stored JWK is unreadable or is not the key of a's thumbprint. */
static EVP_PKEY *account_key(struct acme_server *s, const struct acme_account *a,
                             struct acme_problem *p)
{
	struct acme_cached_key *c = &s->keys->e[(uint64_t)a->id % ACME_KEY_CACHE];
	char thumb[ACME_THUMBPRINT_LEN + 1];
	EVP_PKEY *key = NULL, *old = NULL;
	char *profiles, *allow;
	json_t *jwk;
	int rc;

	pthread_mutex_lock(&s->keys->mu);
	if (c->account_id == a->id && !strcmp(c->thumbprint, a->thumbprint) &&
	    EVP_PKEY_up_ref(c->key))
		key = c->key;
	pthread_mutex_unlock(&s->keys->mu);
	if (key)
		return key;
	jwk = json_loads(a->jwk, 0, NULL);
	rc = jwk ? acme_jwk_key(jwk, &key, thumb, p) : -1;
	json_decref(jwk);
	if (rc == 0 && strcmp(thumb, a->thumbprint)) {
		EVP_PKEY_free(key);
		rc = -1;
	}
	if (rc < 0) {
		memset(p, 0, sizeof(*p));
		acme_problem_set(p, 500, "serverInternal", "the account's key is unreadable");
		return NULL;
	}
	profiles = a->profiles ? strdup(a->profiles) : NULL;
	allow = a->allow ? strdup(a->allow) : NULL;
	if ((!a->profiles || profiles) && (!a->allow || allow) && EVP_PKEY_up_ref(key)) {
		pthread_mutex_lock(&s->keys->mu);
		old = c->key;
		c->account_id = a->id;
		snprintf(c->thumbprint, sizeof(c->thumbprint), "%s", a->thumbprint);
		snprintf(c->principal, sizeof(c->principal), "%s", a->principal);
		c->key = key;
		swap(&c->profiles, &profiles);
		swap(&c->allow, &allow);
		pthread_mutex_unlock(&s->keys->mu);
		EVP_PKEY_free(old);
	}
	free(profiles);
	free(allow);
	return key;
}

void acme_reply_clear(struct acme_reply *rep)
{
	free(rep->body);
	memset(rep, 0, sizeof(*rep));
}

void acme_account_clear(struct acme_account *a)
{
	free(a->jwk);
	free(a->contact);
	free(a->profiles);
	free(a->allow);
	memset(a, 0, sizeof(*a));
}

const char *acme_account_status_name(enum acme_account_status s)
{
	switch (s) {
	case ACME_ACCOUNT_VALID:
		return "valid";
	case ACME_ACCOUNT_DEACTIVATED:
		return "deactivated";
	default:
		return "revoked";
	}
}

/* --- replies --- */

static void add_link(struct acme_reply *rep, const char *url, const char *rel)
{
	if (rep->n_links < ACME_LINKS_MAX)
		snprintf(rep->links[rep->n_links++], sizeof(rep->links[0]), "<%s>;rel=\"%s\"", url,
		         rel);
}

static void reply_json(struct acme_reply *rep, int status, const char *type, json_t *o)
{
	rep->status = status;
	free(rep->body);
	rep->body = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	json_decref(o);
	if (!rep->body) {
		rep->status = 500;
		rep->content_type = NULL;
		rep->body_len = 0;
		return;
	}
	rep->body_len = strlen(rep->body);
	rep->content_type = type;
}

static void reply_problem(struct acme_server *s, struct acme_reply *rep,
                          const struct acme_problem *p)
{
	char index[ACME_URL_MAX + 16];

	/* A problem replaces whatever the reply was going to be, Location and links too. */
	rep->location[0] = '\0';
	rep->n_links = 0;
	rep->wait_chall = rep->wait_account = 0;
	rep->wait_unread = 0;
	snprintf(index, sizeof(index), "%s/directory", s->cfg.base_url);
	add_link(rep, index, "index");
	reply_json(rep, p->status, "application/problem+json", acme_problem_json(p));
	if (p->retry_after > 0)
		rep->retry_after = p->retry_after;
}

static void url_of(const struct acme_server *s, const char *path, char *out, size_t n)
{
	snprintf(out, n, "%s%s", s->cfg.base_url, path);
}

/* --- the directory and nonces --- */

static void h_directory(struct acme_server *s, struct acme_reply *rep)
{
	char u[5][ACME_URL_MAX + 32];
	json_t *meta = json_pack("{s:b}", "externalAccountRequired", s->cfg.eab_required), *j;

	url_of(s, "/new-nonce", u[0], sizeof(u[0]));
	url_of(s, "/new-account", u[1], sizeof(u[1]));
	url_of(s, "/key-change", u[2], sizeof(u[2]));
	url_of(s, "/revoke-cert", u[3], sizeof(u[3]));
	url_of(s, "/renewal-info", u[4], sizeof(u[4]));
	if (meta && s->cfg.terms_url[0])
		json_object_set_new(meta, "termsOfService", json_string(s->cfg.terms_url));
	if (meta && s->cfg.website[0])
		json_object_set_new(meta, "website", json_string(s->cfg.website));
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o*}", "newNonce", u[0], "newAccount", u[1],
	              "keyChange", u[2], "revokeCert", u[3], "renewalInfo", u[4], "meta", meta);
	/* newOrder only when this server takes orders. */
	if (j && s->store.order_new) {
		url_of(s, "/new-order", u[0], sizeof(u[0]));
		json_object_set_new(j, "newOrder", json_string(u[0]));
	}
	reply_json(rep, 200, "application/json", j);
}

/* --- accounts --- */

static json_t *account_json(const struct acme_account *a)
{
	json_t *contact = json_loads(a->contact ? a->contact : "[]", 0, NULL);
	json_t *o = json_pack("{s:s, s:o*}", "status", acme_account_status_name(a->status),
	                      "contact", contact);

	if (o && a->tos_agreed)
		json_object_set_new(o, "termsOfServiceAgreed", json_true());
	return o;
}

static void reply_account(struct acme_server *s, struct acme_reply *rep, int status,
                          const struct acme_account *a)
{
	snprintf(rep->location, sizeof(rep->location), "%s/acct/%lld", s->cfg.base_url,
	         (long long)a->id);
	reply_json(rep, status, "application/json", account_json(a));
}

int acme_contacts_check(const json_t *contact, struct acme_problem *p)
{
	size_t i;
	const json_t *v;

	if (!json_is_array(contact))
		return acme_problem_set(p, 400, "malformed", "contact must be an array of URLs");
	if (json_array_size(contact) > ACME_CONTACTS_MAX)
		return acme_problem_set(p, 400, "invalidContact", "at most %d contacts",
		                        ACME_CONTACTS_MAX);
	json_array_foreach(contact, i, v)
	{
		const char *c = json_string_value(v), *addr, *at;
		if (!c)
			return acme_problem_set(p, 400, "malformed",
			                        "each contact must be a string");
		if (strncmp(c, "mailto:", 7))
			return acme_problem_set(p, 400, "unsupportedContact",
			                        "only mailto: contacts are supported (contact %zu)",
			                        i + 1);
		addr = c + 7;
		at = strchr(addr, '@');
		if (strlen(c) > ACME_CONTACT_MAX || !at || at == addr || !at[1] ||
		    strchr(at + 1, '@') || strpbrk(addr, "?,;:<>()[]\\\" \t\r\n") || at[1] == '.' ||
		    at[strlen(at) - 1] == '.' || !strchr(at + 1, '.'))
			return acme_problem_set(p, 400, "invalidContact",
			                        "contact %zu is not one mailto: address without "
			                        "hfields (\"mailto:name@host.example\")",
			                        i + 1);
		for (const char *q = c; *q; q++)
			if ((unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e)
				return acme_problem_set(p, 400, "invalidContact",
				                        "contact %zu has characters outside ASCII",
				                        i + 1);
	}
	return 0;
}

/* The account id in kid, when kid is one of this server's account URLs; else 0. */
static int64_t kid_account(const struct acme_server *s, const char *kid)
{
	size_t n = strlen(s->cfg.base_url);
	char *end;
	long long id;

	if (strncmp(kid, s->cfg.base_url, n) || strncmp(kid + n, "/acct/", 6))
		return 0;
	kid += n + 6;
	if (*kid < '1' || *kid > '9')
		return 0;
	errno = 0;
	id = strtoll(kid, &end, 10);
	if (errno || *end || id <= 0)
		return 0;
	return id;
}

/* What a POST brings once its JWS checks out. */
struct post {
	struct acme_jws jws;
	struct acme_account acct; /* kid requests: the account (valid) */
	/* KEY_KID_READ: acct is id, thumbprint and principal of the key cache's entry whose key
	 * verified the JWS, not yet judged against the store (own_authz does, with the read). */
	int unconfirmed;
	/* A read after a wait (acme_reread of a reply not read before): no JWS any more to
	 * confirm the account with, so an account that does not stand as it was is refused;
	 * and no new wait. */
	int rereading;
	void *ctx; /* the store's ctx for this request */
	char url[ACME_URL_MAX + 32];
};

/* KEY_KID_READ: a kid request whose first store call reads an authorization, an order or a
 * certificate, which brings the account's status and key thumbprint along (acme_authz,
 * acme_order, acme_account_seen). */
enum key_rule { KEY_JWK, KEY_KID, KEY_EITHER, KEY_KID_READ };

/* The account of po's kid read from the store, its key verifying the JWS, and valid. 0, or -1
 * with p set. */
static int account_confirm(struct acme_server *s, struct post *po, struct acme_problem *p)
{
	int64_t id = kid_account(s, po->jws.kid);
	int found;

	acme_account_clear(&po->acct);
	po->unconfirmed = 0;
	found = id ? s->store.account_by_id(po->ctx, id, &po->acct) : 0;
	if (found < 0)
		return acme_problem_set(p, 500, "serverInternal", "the account could not be read");
	if (!found)
		return acme_problem_set(p, 400, "accountDoesNotExist", "no account has this kid");
	{
		EVP_PKEY *key = account_key(s, &po->acct, p);
		int rc = key ? acme_jws_verify(&po->jws, key, p) : -1;
		EVP_PKEY_free(key);
		if (rc < 0)
			return -1;
	}
	if (po->acct.status != ACME_ACCOUNT_VALID)
		return acme_problem_set(p, 401, "unauthorized", "the account is %s",
		                        acme_account_status_name(po->acct.status));
	return 0;
}

/* KEY_KID_READ: the JWS verified with the key cache's entry for its kid's account; po->acct
 * then stands for that account until the read judges it. 0, or -1 (no entry, or its key does
 * not verify: the account is read as usual). */
static int account_cached(struct acme_server *s, struct post *po)
{
	int64_t id = kid_account(s, po->jws.kid);
	struct acme_cached_key *c = &s->keys->e[(uint64_t)id % ACME_KEY_CACHE];
	struct acme_problem ignored = {0};
	EVP_PKEY *key = NULL;
	int rc;

	if (!id)
		return -1;
	pthread_mutex_lock(&s->keys->mu);
	if (c->account_id == id && EVP_PKEY_up_ref(c->key)) {
		key = c->key;
		po->acct.id = id;
		snprintf(po->acct.thumbprint, sizeof(po->acct.thumbprint), "%s", c->thumbprint);
		snprintf(po->acct.principal, sizeof(po->acct.principal), "%s", c->principal);
		po->acct.profiles = c->profiles ? strdup(c->profiles) : NULL;
		po->acct.allow = c->allow ? strdup(c->allow) : NULL;
		if ((c->profiles && !po->acct.profiles) || (c->allow && !po->acct.allow)) {
			EVP_PKEY_free(key); /* no memory: read as usual */
			key = NULL;
		}
	}
	pthread_mutex_unlock(&s->keys->mu);
	if (!key) {
		acme_account_clear(&po->acct);
		return -1;
	}
	rc = acme_jws_verify(&po->jws, key, &ignored);
	EVP_PKEY_free(key);
	if (rc < 0) {
		acme_account_clear(&po->acct);
		return -1;
	}
	po->acct.status = ACME_ACCOUNT_VALID;
	po->unconfirmed = 1;
	return 0;
}

/* The common checks of every POST (RFC 8555 §6.2-§6.5). 0, or -1 with p set. */
static int post_open(struct acme_server *s, const struct acme_request *req, enum key_rule rule,
                     struct post *po, struct acme_problem *p)
{
	memset(po, 0, sizeof(*po));
	po->ctx = req->store_ctx ? req->store_ctx : s->store.ctx;
	url_of(s, req->path, po->url, sizeof(po->url));
	/* The media type, parameters (e.g. "; charset=utf-8") aside. */
	if (!req->content_type || strncasecmp(req->content_type, "application/jose+json", 21) ||
	    (req->content_type[21] && req->content_type[21] != ';' && req->content_type[21] != ' '))
		return acme_problem_set(p, 415, "malformed",
		                        "the content type must be application/jose+json");
	if (acme_jws_parse(req->body, req->body_len, 1, &po->jws, p) < 0)
		return -1;
	if (strcmp(po->jws.url, po->url))
		return acme_problem_set(p, 401, "unauthorized",
		                        "the JWS's url is not the URL of this request");
	if (!acme_nonce_use(&s->nonces, po->jws.nonce))
		return acme_problem_set(
		    p, 400, "badNonce",
		    "the nonce is not one this server gave or was used already");
	if (rule == KEY_JWK || (rule == KEY_EITHER && po->jws.jwk)) {
		if (!po->jws.jwk)
			return acme_problem_set(
			    p, 400, "malformed",
			    "this request must be signed with a jwk, not a kid");
		return acme_jws_verify(&po->jws, NULL, p);
	}
	if (!po->jws.kid)
		return acme_problem_set(
		    p, 400, "malformed",
		    "this request must be signed with an account's kid, not a jwk");
	if (rule == KEY_KID_READ && account_cached(s, po) == 0)
		return 0;
	return account_confirm(s, po, p);
}

static void post_close(struct post *po)
{
	acme_jws_clear(&po->jws);
	acme_account_clear(&po->acct);
}

static int bool_member(const json_t *o, const char *name, int *out, struct acme_problem *p)
{
	const json_t *v = json_object_get(o, name);

	*out = 0;
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return acme_problem_set(p, 400, "malformed", "%s must be true or false", name);
	*out = json_is_true(v);
	return 0;
}

static int h_new_account(struct acme_server *s, struct post *po, struct acme_reply *rep,
                         struct acme_problem *p)
{
	const json_t *pl = po->jws.payload, *contact, *binding;
	struct acme_account a = {0};
	struct acme_eab eab;
	int only_existing, tos, found, rc = -1;

	if (!pl)
		return acme_problem_set(p, 400, "malformed", "newAccount needs a payload");
	if (bool_member(pl, "onlyReturnExisting", &only_existing, p) < 0 ||
	    bool_member(pl, "termsOfServiceAgreed", &tos, p) < 0)
		return -1;
	found = s->store.account_by_thumbprint(po->ctx, po->jws.thumbprint, &a);
	if (found < 0)
		return acme_problem_set(p, 500, "serverInternal", "the account could not be read");
	if (found) {
		/* §7.3.1: the account this key already has, unchanged. */
		reply_account(s, rep, 200, &a);
		acme_account_clear(&a);
		return 0;
	}
	if (only_existing)
		return acme_problem_set(p, 400, "accountDoesNotExist", "no account has this key");
	contact = json_object_get(pl, "contact");
	if (contact && acme_contacts_check(contact, p) < 0)
		return -1;
	if (s->cfg.terms_url[0] && !tos)
		return acme_problem_set(p, 403, "userActionRequired",
		                        "agree to the terms of service at %s "
		                        "(termsOfServiceAgreed: true)",
		                        s->cfg.terms_url);
	binding = json_object_get(pl, "externalAccountBinding");
	if (!binding && s->cfg.eab_required)
		return acme_problem_set(p, 400, "externalAccountRequired",
		                        "this server requires an external account binding; ask an "
		                        "officer for a key identifier and HMAC key");
	a.status = ACME_ACCOUNT_VALID;
	a.tos_agreed = tos;
	snprintf(a.thumbprint, sizeof(a.thumbprint), "%s", po->jws.thumbprint);
	a.jwk = json_dumps(po->jws.jwk, JSON_COMPACT | JSON_SORT_KEYS);
	a.contact = contact ? json_dumps(contact, JSON_COMPACT) : strdup("[]");
	if (!a.jwk || !a.contact) {
		acme_problem_set(p, 500, "serverInternal", "out of memory");
		goto done;
	}
	if (binding) {
		if (acme_eab_verify(binding, po->jws.jwk, po->url, s->store.eab_lookup, po->ctx,
		                    &eab, p) < 0)
			goto done;
		if (eab.account_id) {
			acme_problem_set(
			    p, 401, "unauthorized",
			    "this external account binding is bound to another account");
			OPENSSL_cleanse(&eab, sizeof(eab));
			goto done;
		}
		snprintf(a.eab_kid, sizeof(a.eab_kid), "%s", eab.kid);
		snprintf(a.principal, sizeof(a.principal), "%s", eab.principal);
		OPENSSL_cleanse(&eab, sizeof(eab));
	}
	found = s->store.account_create(po->ctx, &a);
	if (found < 0) {
		acme_problem_set(p, 500, "serverInternal", "the account could not be stored");
		goto done;
	}
	if (!found) {
		acme_problem_set(p, 401, "unauthorized",
		                 "this external account binding is bound to another account");
		goto done;
	}
	reply_account(s, rep, 201, &a);
	rc = 0;
done:
	acme_account_clear(&a);
	return rc;
}

static int h_account(struct acme_server *s, struct post *po, struct acme_reply *rep,
                     struct acme_problem *p)
{
	const json_t *pl = po->jws.payload, *status, *contact;
	struct acme_account *a = &po->acct;
	int changed = 0;

	/* §7.3.2: only the account's own key may ask about or change it. */
	if (strcmp(po->jws.kid, po->url))
		return acme_problem_set(p, 401, "unauthorized",
		                        "the JWS's kid is not the account at this URL");
	if (pl) {
		status = json_object_get(pl, "status");
		contact = json_object_get(pl, "contact");
		if (status &&
		    (!json_is_string(status) || strcmp(json_string_value(status), "deactivated")))
			return acme_problem_set(
			    p, 400, "malformed",
			    "the only status a client may set is \"deactivated\"");
		if (contact) {
			char *text;
			if (acme_contacts_check(contact, p) < 0)
				return -1;
			text = json_dumps(contact, JSON_COMPACT);
			if (!text)
				return acme_problem_set(p, 500, "serverInternal", "out of memory");
			free(a->contact);
			a->contact = text;
			changed = 1;
		}
		if (status) {
			a->status = ACME_ACCOUNT_DEACTIVATED;
			changed = 1;
		}
		if (changed) {
			int rc = s->store.account_update(po->ctx, a);
			if (rc <= 0)
				return acme_problem_set(p, 500, "serverInternal",
				                        "the account could not be updated");
		}
	}
	reply_account(s, rep, 200, a);
	return 0;
}

/* §7.3.5: the payload is an inner JWS, signed by the new key, naming the account and its old
 * key. */
static int h_key_change(struct acme_server *s, struct post *po, struct acme_reply *rep,
                        struct acme_problem *p)
{
	struct acme_jws in;
	struct acme_account other = {0};
	const json_t *acct, *old;
	char *text = NULL, *jwk = NULL, old_thumb[ACME_THUMBPRINT_LEN + 1];
	EVP_PKEY *old_key = NULL;
	int rc = -1, found;

	memset(&in, 0, sizeof(in));
	if (!po->jws.payload)
		return acme_problem_set(p, 400, "malformed", "keyChange needs a payload");
	text = json_dumps(po->jws.payload, JSON_COMPACT);
	if (!text)
		return acme_problem_set(p, 500, "serverInternal", "out of memory");
	if (acme_jws_parse((const uint8_t *)text, strlen(text), 0, &in, p) < 0)
		goto done;
	if (!in.jwk) {
		acme_problem_set(p, 400, "malformed", "the inner JWS must be signed with a jwk");
		goto done;
	}
	if (strcmp(in.url, po->jws.url)) {
		acme_problem_set(p, 400, "malformed",
		                 "the inner JWS's url is not the outer JWS's url");
		goto done;
	}
	if (acme_jws_verify(&in, NULL, p) < 0)
		goto done;
	acct = in.payload ? json_object_get(in.payload, "account") : NULL;
	old = in.payload ? json_object_get(in.payload, "oldKey") : NULL;
	if (!json_is_string(acct) || !old) {
		acme_problem_set(p, 400, "malformed",
		                 "the inner payload needs account (a URL) and oldKey (a JWK)");
		goto done;
	}
	if (strcmp(json_string_value(acct), po->jws.kid)) {
		acme_problem_set(p, 401, "unauthorized",
		                 "the inner payload's account is not the outer JWS's kid");
		goto done;
	}
	if (acme_jwk_key(old, &old_key, old_thumb, p) < 0)
		goto done;
	if (strcmp(old_thumb, po->acct.thumbprint)) {
		acme_problem_set(p, 401, "unauthorized", "oldKey is not the account's key");
		goto done;
	}
	if (!strcmp(in.thumbprint, po->acct.thumbprint)) {
		acme_problem_set(p, 400, "badPublicKey",
		                 "the new key is the account's key already");
		goto done;
	}
	found = s->store.account_by_thumbprint(po->ctx, in.thumbprint, &other);
	if (found < 0) {
		acme_problem_set(p, 500, "serverInternal", "the accounts could not be read");
		goto done;
	}
	jwk = json_dumps(in.jwk, JSON_COMPACT | JSON_SORT_KEYS);
	found = found ? 0
	        : jwk ? s->store.account_rekey(po->ctx, &po->acct, jwk, in.thumbprint)
	              : -1;
	if (found < 0) {
		acme_problem_set(p, 500, "serverInternal",
		                 "the account's key could not be changed");
		goto done;
	}
	if (!found) {
		/* §7.3.5: 409 with the Location of the account that has the key. */
		if (!other.id)
			s->store.account_by_thumbprint(po->ctx, in.thumbprint, &other);
		acme_problem_set(p, 409, "conflict", "the new key belongs to another account");
		reply_problem(s, rep, p);
		if (other.id)
			snprintf(rep->location, sizeof(rep->location), "%s/acct/%lld",
			         s->cfg.base_url, (long long)other.id);
		p->status = 0;
		rc = 0;
		goto done;
	}
	free(po->acct.jwk);
	po->acct.jwk = jwk;
	jwk = NULL;
	snprintf(po->acct.thumbprint, sizeof(po->acct.thumbprint), "%s", in.thumbprint);
	reply_account(s, rep, 200, &po->acct);
	rc = 0;
done:
	acme_account_clear(&other);
	EVP_PKEY_free(old_key);
	acme_jws_clear(&in);
	free(text);
	free(jwk);
	return rc;
}

/* §7.6: revoke a certificate, asked by the account that ordered it (kid) or with the
 * certificate's own key (jwk). */
static int h_revoke_cert(struct acme_server *s, struct post *po, struct acme_reply *rep,
                         struct acme_problem *p)
{
	const json_t *pl = po->jws.payload, *c, *r;
	uint8_t *der = NULL;
	const uint8_t *q;
	X509 *x = NULL;
	int len, reason = 0, rc = -1;

	c = pl ? json_object_get(pl, "certificate") : NULL;
	r = pl ? json_object_get(pl, "reason") : NULL;
	if (!json_is_string(c))
		return acme_problem_set(p, 400, "malformed",
		                        "revokeCert needs certificate (base64url DER)");
	if (r) {
		/* RFC 8555 §7.6 and Boulder: what a subscriber may say (no CA compromise, no
		 * hold, no privilege withdrawal). */
		reason = json_is_integer(r) ? (int)json_integer_value(r) : -1;
		if (!json_is_integer(r) ||
		    (reason != 0 && reason != 1 && reason != 3 && reason != 4 && reason != 5))
			return acme_problem_set(
			    p, 400, "badRevocationReason",
			    "reason must be 0 (unspecified), 1 (keyCompromise), 3 "
			    "(affiliationChanged), 4 (superseded) or 5 "
			    "(cessationOfOperation)");
	}
	der = malloc(ACME_CERT_MAX);
	len = der ? acme_b64url_decode(json_string_value(c), json_string_length(c), der,
	                               ACME_CERT_MAX)
	          : -1;
	q = der;
	if (len > 0)
		x = d2i_X509(NULL, &q, len);
	if (!x || q != der + len) {
		acme_problem_set(p, 400, "malformed",
		                 "certificate is not base64url of one DER certificate (at most %d "
		                 "bytes)",
		                 ACME_CERT_MAX);
		goto done;
	}
	if (po->jws.jwk && EVP_PKEY_eq(X509_get0_pubkey(x), po->jws.key) != 1) {
		acme_problem_set(p, 403, "unauthorized",
		                 "the request is signed neither by an account nor by the "
		                 "certificate's key");
		goto done;
	}
	if (s->store.revoke_cert(po->ctx, po->jws.jwk ? NULL : &po->acct, der, (size_t)len, reason,
	                         p) < 0)
		goto done;
	rep->status = 200;
	rc = 0;
done:
	X509_free(x);
	free(der);
	return rc;
}

/* --- renewal information (RFC 9773) --- */

void acme_renewal_window(int64_t not_before, int64_t not_after, int64_t revoked_at, int64_t now,
                         int64_t *start, int64_t *end)
{
	int64_t life = not_after > not_before ? not_after - not_before : 0;

	if (revoked_at) {
		/* Renew now: a window that ended already (RFC 9773 §4.2). */
		*end = (revoked_at < now ? revoked_at : now) - 1;
		*start = *end - 3600;
		return;
	}
	*start = not_before + life * 2 / 3;
	*end = not_before + life * 5 / 6;
	if (*end <= *start)
		*end = *start + 1;
}

static void rfc3339(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* GET /renewal-info/<base64url(AKI keyIdentifier)>.<base64url(serial)> */
static int h_renewal_info(struct acme_server *s, void *ctx, const char *id, struct acme_reply *rep,
                          struct acme_problem *p)
{
	const char *dot = strchr(id, '.');
	uint8_t aki[64], serial[32];
	int aki_len, serial_len, found;
	int64_t nb, na, rv, start, end;
	char a[32], b[32];

	if (!dot || strchr(dot + 1, '.') || strlen(id) > 200)
		return acme_problem_set(
		    p, 400, "malformed",
		    "the certificate identifier is base64url(AKI).base64url(serial)");
	aki_len = acme_b64url_decode(id, (size_t)(dot - id), aki, sizeof(aki));
	serial_len = acme_b64url_decode(dot + 1, strlen(dot + 1), serial, sizeof(serial));
	if (aki_len <= 0 || serial_len <= 0)
		return acme_problem_set(
		    p, 400, "malformed",
		    "the certificate identifier is base64url(AKI).base64url(serial)");
	found = s->store.cert_validity(ctx, aki, (size_t)aki_len, serial, (size_t)serial_len, &nb,
	                               &na, &rv);
	if (found < 0)
		return acme_problem_set(p, 500, "serverInternal",
		                        "the certificate could not be read");
	if (!found)
		return acme_problem_set(p, 404, "malformed",
		                        "no certificate of this CA has that "
		                        "identifier");
	acme_renewal_window(nb, na, rv, (int64_t)time(NULL), &start, &end);
	rfc3339(start, a, sizeof(a));
	rfc3339(end, b, sizeof(b));
	rep->retry_after = ACME_ARI_RETRY_AFTER;
	reply_json(rep, 200, "application/json",
	           json_pack("{s:{s:s, s:s}}", "suggestedWindow", "start", a, "end", b));
	return 0;
}

/* --- orders, authorizations, challenges, finalize, certificates --- */

/* The id after prefix in path (e.g. "/order/" "12"), with rest (NULL: nothing may follow)
 * the text that follows it. 0 when path does not have that shape. */
static int64_t path_id(const char *path, const char *prefix, const char **rest)
{
	size_t n = strlen(prefix);
	long long id;
	char *end;

	if (strncmp(path, prefix, n) || path[n] < '1' || path[n] > '9')
		return 0;
	errno = 0;
	id = strtoll(path + n, &end, 10);
	if (errno || id <= 0 || (rest ? 0 : *end != '\0'))
		return 0;
	if (rest)
		*rest = end;
	return id;
}

static json_t *problem_of(const char *type, const char *detail, int status)
{
	struct acme_problem p = {.status = status};

	snprintf(p.type, sizeof(p.type), "%s", type);
	snprintf(p.detail, sizeof(p.detail), "%s", detail);
	return acme_problem_json(&p);
}

static json_t *order_json(const struct acme_server *s, const struct acme_order *o)
{
	char u[ACME_URL_MAX + 64], t[32];
	json_t *authz = json_array(), *ids = json_loads(o->identifiers, 0, NULL), *j;

	for (size_t i = 0; authz && i < o->n_authz; i++) {
		snprintf(u, sizeof(u), "%s/authz/%lld", s->cfg.base_url, (long long)o->authz[i]);
		json_array_append_new(authz, json_string(u));
	}
	rfc3339(o->expires_at, t, sizeof(t));
	snprintf(u, sizeof(u), "%s/order/%lld/finalize", s->cfg.base_url, (long long)o->id);
	j = json_pack("{s:s, s:s, s:o*, s:o*, s:s}", "status", o->status, "expires", t,
	              "identifiers", ids, "authorizations", authz, "finalize", u);
	if (j && o->not_before) {
		rfc3339(o->not_before, t, sizeof(t));
		json_object_set_new(j, "notBefore", json_string(t));
	}
	if (j && o->not_after) {
		rfc3339(o->not_after, t, sizeof(t));
		json_object_set_new(j, "notAfter", json_string(t));
	}
	if (j && o->cert_serial[0]) {
		snprintf(u, sizeof(u), "%s/cert/%s", s->cfg.base_url, o->cert_serial);
		json_object_set_new(j, "certificate", json_string(u));
	}
	if (j && o->error_type[0])
		json_object_set_new(j, "error", problem_of(o->error_type, o->error_detail, 403));
	return j;
}

static void reply_order(struct acme_server *s, struct acme_reply *rep, int status,
                        const struct acme_order *o)
{
	snprintf(rep->location, sizeof(rep->location), "%s/order/%lld", s->cfg.base_url,
	         (long long)o->id);
	if (!strcmp(o->status, "processing"))
		rep->retry_after = ACME_POLL_RETRY_AFTER;
	reply_json(rep, status, "application/json", order_json(s, o));
}

static json_t *chall_json(const struct acme_server *s, const struct acme_chall *c)
{
	char u[ACME_URL_MAX + 64], t[32];
	json_t *j;

	snprintf(u, sizeof(u), "%s/chall/%lld", s->cfg.base_url, (long long)c->id);
	j = json_pack("{s:s, s:s, s:s, s:s}", "type", c->type, "url", u, "token", c->token,
	              "status", c->status);
	if (j && c->validated_at) {
		rfc3339(c->validated_at, t, sizeof(t));
		json_object_set_new(j, "validated", json_string(t));
	}
	if (j && c->error_type[0])
		json_object_set_new(j, "error", problem_of(c->error_type, c->error_detail, 403));
	return j;
}

/* Whether the account read with a resource (seen; owner: the resource's account) is po's,
 * unconfirmed (KEY_KID_READ), as it stands; else the account is read and judged alone. 0, or
 * -1 with p set. */
static int judge_with(struct acme_server *s, struct post *po, int found, int64_t owner,
                      const struct acme_account_seen *seen, struct acme_problem *p)
{
	if (po->unconfirmed && po->rereading && found && owner == po->acct.id &&
	    (strcmp(seen->status, "valid") || strcmp(seen->thumbprint, po->acct.thumbprint)))
		return acme_problem_set(p, 401, "unauthorized",
		                        "the account is %s, or its key changed, since the request "
		                        "came",
		                        seen->status[0] ? seen->status : "gone");
	if (po->unconfirmed && po->rereading) { /* another account's, or none: own_* say 404 */
		po->unconfirmed = 0;
		return 0;
	}
	if (po->unconfirmed &&
	    (!found || owner != po->acct.id || strcmp(seen->status, "valid") ||
	     strcmp(seen->thumbprint, po->acct.thumbprint)) &&
	    account_confirm(s, po, p) < 0)
		return -1;
	po->unconfirmed = 0;
	return 0;
}

/* The account's order id, or a problem (404 for another account's: nothing to probe with). */
static int own_order(struct acme_server *s, struct post *po, int64_t id, struct acme_order *o,
                     struct acme_problem *p)
{
	int found;

	memset(o, 0, sizeof(*o));
	found = id ? s->store.order_get(po->ctx, id, o) : 0;
	if (found < 0)
		return acme_problem_set(p, 500, "serverInternal", "the order could not be read");
	if (judge_with(s, po, found, o->account_id, &o->account, p) < 0) {
		acme_order_clear(o);
		return -1;
	}
	if (!found || o->account_id != po->acct.id) {
		acme_order_clear(o);
		return acme_problem_set(p, 404, "malformed", "this account has no such order");
	}
	return 0;
}

/* The account's authorization id (by_chall: the one holding challenge id), or a problem (404
 * for another account's). A request whose account stands unconfirmed (KEY_KID_READ) is judged
 * here, against the account's status and key as read with the authorization; on any doubt the
 * account is read and judged as for every other request. */
static int own_authz(struct acme_server *s, struct post *po, int64_t id, int by_chall,
                     struct acme_authz *a, struct acme_problem *p)
{
	int found = !id        ? 0
	            : by_chall ? s->store.chall_authz_get(po->ctx, id, a)
	                       : s->store.authz_get(po->ctx, id, a);

	if (found < 0)
		return acme_problem_set(p, 500, "serverInternal",
		                        "the authorization could not be read");
	if (judge_with(s, po, found, found ? a->account_id : 0, &a->account, p) < 0)
		return -1;
	if (!found || a->account_id != po->acct.id)
		return acme_problem_set(p, 404, "malformed",
		                        by_chall ? "this account has no such challenge"
		                                 : "this account has no such authorization");
	return 0;
}

static int h_new_order(struct acme_server *s, struct post *po, struct acme_reply *rep,
                       struct acme_problem *p)
{
	const json_t *pl = po->jws.payload;
	struct acme_ident *ids;
	struct acme_order o = {0};
	char *text;
	int n, rc = -1;
	int64_t nb = 0, na = 0;
	const char *k;
	json_t *v;

	if (!pl)
		return acme_problem_set(p, 400, "malformed", "newOrder needs a payload");
	json_object_foreach((json_t *)pl, k, v)
	{
		int64_t *t = !strcmp(k, "notBefore") ? &nb : !strcmp(k, "notAfter") ? &na : NULL;
		if (t) {
			/* RFC 8555 §7.4: RFC 3339 date-times; the store judges them against the
			 * profile. */
			if (!json_is_string(v) || acme_time_parse(json_string_value(v), t) < 0)
				return acme_problem_set(p, 400, "malformed",
				                        "%s must be an RFC 3339 date-time such as "
				                        "\"2026-03-01T08:00:00Z\"",
				                        k);
			continue;
		}
		if (strcmp(k, "identifiers") && strcmp(k, "replaces") && strcmp(k, "profile"))
			return acme_problem_set(p, 400, "malformed", "unknown field \"%.32s\"", k);
	}
	if (nb && na && nb >= na)
		return acme_problem_set(p, 400, "malformed", "notBefore must be before notAfter");
	if (!(ids = calloc(ACME_IDENTS_MAX, sizeof(*ids))))
		return acme_problem_set(p, 500, "serverInternal", "out of memory");
	n = acme_identifiers_parse(json_object_get(pl, "identifiers"), ids, p);
	text = n > 0 ? json_dumps(json_object_get(pl, "identifiers"), JSON_COMPACT) : NULL;
	if (n > 0 && !text)
		acme_problem_set(p, 500, "serverInternal", "out of memory");
	else if (n > 0) {
		/* The account as the key cache has it (KEY_KID_READ), judged by the store under
		 * the account's lock; when the store finds otherwise, the account is read and
		 * judged alone, and the order asked for again. */
		int made =
		    s->store.order_new(po->ctx, &po->acct, ids, (size_t)n, text, nb, na, &o, p);
		if (made == 1 && po->unconfirmed && account_confirm(s, po, p) == 0) {
			acme_order_clear(&o);
			made = s->store.order_new(po->ctx, &po->acct, ids, (size_t)n, text, nb, na,
			                          &o, p);
		}
		if (made == 1 && !p->status)
			acme_problem_set(p, 401, "unauthorized",
			                 "the account changed while the order was made");
		if (made == 0) {
			po->unconfirmed = 0;
			reply_order(s, rep, 201, &o);
			rc = 0;
		}
	}
	acme_order_clear(&o);
	free(text);
	free(ids);
	return rc;
}

static int h_order(struct acme_server *s, struct post *po, int64_t id, struct acme_reply *rep,
                   struct acme_problem *p)
{
	struct acme_order o;

	if (po->jws.payload)
		return acme_problem_set(p, 400, "malformed",
		                        "an order is read with POST-as-GET (an empty payload)");
	if (own_order(s, po, id, &o, p) < 0)
		return -1;
	reply_order(s, rep, 200, &o);
	acme_order_clear(&o);
	return 0;
}

static int h_authz(struct acme_server *s, struct post *po, int64_t id, struct acme_reply *rep,
                   struct acme_problem *p)
{
	struct acme_authz a;
	char t[32];
	json_t *ch, *j;
	int processing = 0;

	const json_t *pl = po->jws.payload;
	const char *want = json_string_value(json_object_get(pl, "status"));

	if (pl && (json_object_size(pl) != 1 || !want || strcmp(want, "deactivated")))
		return acme_problem_set(
		    p, 400, "malformed",
		    "an authorization is read with POST-as-GET (an empty "
		    "payload) or deactivated with {\"status\": \"deactivated\"}");
	/* A read while this process validates one of its challenges for this account: the
	 * caller waits first and reads (judging the account) once, afterwards. */
	if (!pl && !po->rereading && s->store.authz_validating &&
	    s->store.authz_validating(po->ctx, id, po->acct.id, &rep->wait_chall) == 1) {
		rep->wait_account = po->acct.id;
		rep->wait_unread = 1;
		snprintf(rep->wait_thumbprint, sizeof(rep->wait_thumbprint), "%s",
		         po->acct.thumbprint);
		return 0;
	}
	if (own_authz(s, po, id, 0, &a, p) < 0)
		return -1;
	if (pl) {
		if (strcmp(a.status, "pending") && strcmp(a.status, "valid"))
			return acme_problem_set(
			    p, 400, "malformed",
			    "the authorization is %s: only a pending or valid one "
			    "is deactivated",
			    a.status);
		if (s->store.authz_deactivate(po->ctx, &po->acct, &a, p) < 0)
			return -1;
		snprintf(a.status, sizeof(a.status), "deactivated");
	}
	ch = json_array();
	for (size_t i = 0; ch && i < a.n_ch; i++) {
		json_array_append_new(ch, chall_json(s, &a.ch[i]));
		processing |= !strcmp(a.ch[i].status, "processing");
	}
	rfc3339(a.expires_at, t, sizeof(t));
	j = json_pack("{s:{s:s, s:s}, s:s, s:s, s:o*}", "identifier", "type", a.ident.type, "value",
	              a.ident.value, "status", a.status, "expires", t, "challenges", ch);
	if (j && a.ident.wildcard)
		json_object_set_new(j, "wildcard", json_true());
	if (processing)
		rep->retry_after = ACME_POLL_RETRY_AFTER;
	for (size_t i = 0; !pl && i < a.n_ch; i++)
		if (!strcmp(a.ch[i].status, "processing")) {
			rep->wait_chall = a.ch[i].id;
			rep->wait_account = po->acct.id;
		}
	reply_json(rep, 200, "application/json", j);
	return 0;
}

/* The answer for challenge c of authorization authz_id: a processing one with Retry-After,
 * and when read (POST-as-GET) worth waiting for; {} is answered at once. */
static int reply_chall(struct acme_server *s, const struct post *po, int64_t authz_id,
                       const struct acme_chall *c, struct acme_reply *rep)
{
	char up[ACME_URL_MAX + 64];

	if (!strcmp(c->status, "processing")) {
		rep->retry_after = ACME_POLL_RETRY_AFTER;
		if (!po->jws.payload) {
			rep->wait_chall = c->id;
			rep->wait_account = po->acct.id;
		}
	}
	snprintf(up, sizeof(up), "%s/authz/%lld", s->cfg.base_url, (long long)authz_id);
	add_link(rep, up, "up");
	reply_json(rep, 200, "application/json", chall_json(s, c));
	return 0;
}

static int h_chall(struct acme_server *s, struct post *po, int64_t id, struct acme_reply *rep,
                   struct acme_problem *p)
{
	struct acme_authz a;
	struct acme_chall *c = NULL;
	char keyauth[ACME_TOKEN_LEN + ACME_THUMBPRINT_LEN + 2];

	if (po->jws.payload && json_object_size(po->jws.payload) != 0)
		return acme_problem_set(
		    p, 400, "malformed",
		    "a challenge is answered with {} (or read with POST-as-GET)");
	/* {}: the challenge started in one statement that judges what the read below would
	 * (the account too, KEY_KID_READ); when it starts nothing, the way of a read. */
	if (po->jws.payload && s->store.chall_answer) {
		struct acme_chall now;
		int64_t authz_id = 0;
		int rc = s->store.chall_answer(po->ctx, &po->acct, id, &now, &authz_id, p);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			po->unconfirmed = 0;
			return reply_chall(s, po, authz_id, &now, rep);
		}
	}
	if (own_authz(s, po, id, 1, &a, p) < 0)
		return -1;
	for (size_t i = 0; i < a.n_ch; i++)
		if (a.ch[i].id == id)
			c = &a.ch[i];
	if (!c)
		return acme_problem_set(p, 404, "malformed", "this account has no such challenge");
	/* {} to a pending challenge of a pending authorization starts its validation; otherwise
	 * (already answered, or the authorization is settled) the challenge is shown as it is. */
	if (po->jws.payload && !strcmp(c->status, "pending") && !strcmp(a.status, "pending")) {
		snprintf(keyauth, sizeof(keyauth), "%s.%s", c->token, po->acct.thumbprint);
		if (s->store.chall_start(po->ctx, &po->acct, &a, c, keyauth, p) < 0)
			return -1;
		snprintf(c->status, sizeof(c->status), "processing");
	}
	return reply_chall(s, po, a.id, c, rep);
}

static int h_finalize(struct acme_server *s, struct post *po, int64_t id, struct acme_reply *rep,
                      struct acme_problem *p)
{
	const json_t *pl = po->jws.payload;
	const char *csr = json_string_value(json_object_get(pl, "csr"));
	struct acme_order o;
	struct acme_ident *ids = NULL;
	json_t *arr = NULL;
	uint8_t *der = NULL;
	int n, len, rc = -1;

	if (!csr || json_object_size(pl) != 1)
		return acme_problem_set(p, 400, "malformed",
		                        "finalize takes {\"csr\": base64url(DER PKCS#10)}");
	if (own_order(s, po, id, &o, p) < 0)
		return -1;
	if (strcmp(o.status, "ready")) {
		acme_problem_set(
		    p, 403, "orderNotReady", "the order is %s, not ready: %s", o.status,
		    !strcmp(o.status, "pending") ? "its authorizations are not all valid yet"
		                                 : "it cannot be finalized");
		goto out;
	}
	if (!(der = malloc(ACME_BODY_MAX)) || !(ids = calloc(ACME_IDENTS_MAX, sizeof(*ids)))) {
		acme_problem_set(p, 500, "serverInternal", "out of memory");
		goto out;
	}
	if ((len = acme_b64url_decode(csr, strlen(csr), der, ACME_BODY_MAX)) <= 0) {
		acme_problem_set(p, 400, "badCSR", "csr is not base64url without padding");
		goto out;
	}
	arr = json_loads(o.identifiers, 0, NULL);
	if ((n = acme_identifiers_parse(arr, ids, p)) < 0) {
		memset(p, 0, sizeof(*p));
		acme_problem_set(p, 500, "serverInternal",
		                 "the order's identifiers are unreadable");
		goto out;
	}
	if (acme_csr_matches(der, (size_t)len, ids, (size_t)n, p) < 0 ||
	    s->store.order_finalize(po->ctx, &po->acct, &o, der, (size_t)len, p) < 0)
		goto out;
	reply_order(s, rep, 200, &o); /* valid, with its certificate: not read again */
	rc = 0;
out:
	json_decref(arr);
	free(ids);
	free(der);
	acme_order_clear(&o);
	return rc;
}

/* GET .../cert/SERIAL (the default chain) or .../cert/SERIAL/K (the K-th alternate chain), with
 * Link rel="alternate" to each other chain (RFC 8555 §7.4.2). */
static int h_cert(struct acme_server *s, struct post *po, const char *serial,
                  struct acme_reply *rep, struct acme_problem *p)
{
	char *pem = NULL, hex[81], u[ACME_URL_MAX + 100];
	struct acme_account_seen seen = {0};
	size_t n = strcspn(serial, "/");
	int found, alt = 0, n_alt = 0;

	if (po->jws.payload)
		return acme_problem_set(
		    p, 400, "malformed",
		    "a certificate is read with POST-as-GET (an empty payload)");
	if (n < 2 || n > 80 || strspn(serial, "0123456789ABCDEFabcdef") != n)
		return acme_problem_set(p, 404, "malformed", "no such certificate");
	if (serial[n]) {
		const char *k = serial + n + 1;
		if (strlen(k) != 1 || *k < '1' || *k > '0' + ACME_ALT_CHAINS_MAX)
			return acme_problem_set(p, 404, "malformed", "no such certificate chain");
		alt = *k - '0';
	}
	snprintf(hex, sizeof(hex), "%.*s", (int)n, serial);
	found = s->store.cert_chain(po->ctx, &po->acct, hex, alt, &pem, &n_alt, &seen);
	if (found < 0)
		return acme_problem_set(p, 500, "serverInternal",
		                        "the certificate could not be read");
	/* The account as read with the certificate (KEY_KID_READ); on any doubt it is read and
	 * judged alone, and its refusal comes first. */
	if (judge_with(s, po, seen.status[0] != 0, po->acct.id, &seen, p) < 0) {
		free(pem);
		return -1;
	}
	if (!found)
		return acme_problem_set(p, 404, "malformed",
		                        alt ? "this account ordered no such certificate, or it has "
		                              "no such alternate chain"
		                            : "this account ordered no such certificate");
	for (int k = 0; k <= n_alt && k <= ACME_ALT_CHAINS_MAX; k++) {
		if (k == alt)
			continue;
		if (k)
			snprintf(u, sizeof(u), "%s/cert/%s/%d", s->cfg.base_url, hex, k);
		else
			snprintf(u, sizeof(u), "%s/cert/%s", s->cfg.base_url, hex);
		add_link(rep, u, "alternate");
	}
	rep->status = 200;
	rep->body = pem;
	rep->body_len = strlen(pem);
	rep->content_type = "application/pem-certificate-chain";
	return 0;
}

/* A request served with its account unconfirmed (KEY_KID_READ) that was refused before the
 * read judged the account: the account is judged now, and its refusal (e.g. a deactivated
 * account) comes first, as it would have. */
static void settle_account(struct acme_server *s, struct post *po, struct acme_problem *p)
{
	struct acme_problem q = {0};

	if (p->status && po->unconfirmed && account_confirm(s, po, &q) < 0)
		*p = q;
}

/* The POST resources of orders; 1 when path is one of them (served into rep or p). */
static int order_routes(struct acme_server *s, const struct acme_request *req, struct post *po,
                        struct acme_reply *rep, struct acme_problem *p)
{
	const char *path = req->path, *rest = NULL;
	int64_t id;

	if (!s->store.order_new)
		return 0;
	if (!strcmp(path, "/new-order")) {
		if (post_open(s, req, KEY_KID_READ, po, p) == 0) {
			h_new_order(s, po, rep, p);
			settle_account(s, po, p);
		}
	} else if ((id = path_id(path, "/order/", &rest)) &&
	           (!*rest || !strcmp(rest, "/finalize"))) {
		if (post_open(s, req, KEY_KID_READ, po, p) == 0) {
			(*rest ? h_finalize : h_order)(s, po, id, rep, p);
			settle_account(s, po, p);
		}
	} else if ((id = path_id(path, "/authz/", NULL))) {
		if (post_open(s, req, KEY_KID_READ, po, p) == 0) {
			h_authz(s, po, id, rep, p);
			settle_account(s, po, p);
		}
	} else if ((id = path_id(path, "/chall/", NULL))) {
		if (post_open(s, req, KEY_KID_READ, po, p) == 0) {
			h_chall(s, po, id, rep, p);
			settle_account(s, po, p);
		}
	} else if (!strncmp(path, "/cert/", 6)) {
		if (post_open(s, req, KEY_KID_READ, po, p) == 0) {
			h_cert(s, po, path + 6, rep, p);
			settle_account(s, po, p);
		}
	} else {
		return 0;
	}
	return 1;
}

/* --- dispatch --- */

static void add_index_link(struct acme_server *s, struct acme_reply *rep)
{
	char index[ACME_URL_MAX + 16];

	url_of(s, "/directory", index, sizeof(index));
	add_link(rep, index, "index");
}

int acme_reread(struct acme_server *s, const char *path, int64_t account_id, void *store_ctx,
                struct acme_reply *rep)
{
	struct acme_problem p = {0};
	struct acme_reply again = {0};
	struct post po;
	int64_t id;

	/* The request was verified when it came (its JWS, nonce and account); this reads the
	 * resource again for the same account, as a POST-as-GET would. */
	memset(&po, 0, sizeof(po));
	po.ctx = store_ctx ? store_ctx : s->store.ctx;
	po.acct.id = account_id;
	po.rereading = 1;
	if (rep->wait_unread) { /* judged now, with this read */
		po.unconfirmed = 1;
		snprintf(po.acct.thumbprint, sizeof(po.acct.thumbprint), "%s",
		         rep->wait_thumbprint);
	}
	if (!s->store.order_new)
		return -1;
	if ((id = path_id(path, "/authz/", NULL)))
		h_authz(s, &po, id, &again, &p);
	else if ((id = path_id(path, "/chall/", NULL)))
		h_chall(s, &po, id, &again, &p);
	else
		return -1;
	if (p.status || again.status != 200) {
		acme_reply_clear(&again);
		if (!rep->wait_unread)
			return -1; /* rep, as read before the wait, stands */
		if (!p.status)
			acme_problem_set(&p, 500, "serverInternal",
			                 "the authorization could not be read");
		reply_problem(s, &again, &p);
	} else {
		add_index_link(s, &again);
	}
	memcpy(again.replay_nonce, rep->replay_nonce, sizeof(again.replay_nonce));
	acme_reply_clear(rep);
	*rep = again;
	return 0;
}

void acme_reply_unavailable(struct acme_server *s, struct acme_reply *rep)
{
	struct acme_problem p = {0};
	char nonce[sizeof(rep->replay_nonce)];

	memcpy(nonce, rep->replay_nonce, sizeof(nonce));
	acme_reply_clear(rep);
	memcpy(rep->replay_nonce, nonce, sizeof(nonce));
	acme_problem_set(&p, 503, "serverInternal",
	                 "the server cannot read the resource now; ask again shortly");
	p.retry_after = ACME_POLL_RETRY_AFTER;
	reply_problem(s, rep, &p);
}

void acme_handle(struct acme_server *s, const struct acme_request *req, struct acme_reply *rep)
{
	struct acme_problem p = {0};
	struct post po;
	int is_post = !strcmp(req->method, "POST"), is_get = !strcmp(req->method, "GET"),
	    is_head = !strcmp(req->method, "HEAD");
	const char *path = req->path;

	memset(rep, 0, sizeof(*rep));
	memset(&po, 0, sizeof(po));
	if (!strcmp(path, "/directory")) {
		if (!is_get && !is_head)
			acme_problem_set(&p, 405, "malformed", "the directory is read with GET");
		else
			h_directory(s, rep);
	} else if (!strcmp(path, "/new-nonce")) {
		/* §7.2: HEAD answers 200, GET 204; neither is cached. */
		if (!is_get && !is_head)
			acme_problem_set(&p, 405, "malformed",
			                 "newNonce is asked with HEAD or GET");
		else
			rep->status = is_head ? 200 : 204;
		rep->cache_no_store = 1;
	} else if (!strncmp(path, "/renewal-info/", 14)) {
		if (!is_get && !is_head)
			acme_problem_set(&p, 405, "malformed",
			                 "renewal information is read with GET");
		else
			h_renewal_info(s, req->store_ctx ? req->store_ctx : s->store.ctx, path + 14,
			               rep, &p);
	} else if (!is_post) {
		if (strncmp(path, "/acct/", 6) && strcmp(path, "/new-account") &&
		    strcmp(path, "/key-change") && strcmp(path, "/revoke-cert") &&
		    (!s->store.order_new ||
		     (strcmp(path, "/new-order") && strncmp(path, "/order/", 7) &&
		      strncmp(path, "/authz/", 7) && strncmp(path, "/chall/", 7) &&
		      strncmp(path, "/cert/", 6))))
			acme_problem_set(&p, 404, "malformed",
			                 "there is no ACME resource at this URL");
		else
			acme_problem_set(&p, 405, "malformed",
			                 "%s is asked with POST (POST-as-GET to read it)",
			                 path + 1);
	} else if (!strcmp(path, "/new-account")) {
		if (post_open(s, req, KEY_JWK, &po, &p) == 0)
			h_new_account(s, &po, rep, &p);
	} else if (!strncmp(path, "/acct/", 6)) {
		if (post_open(s, req, KEY_KID, &po, &p) == 0)
			h_account(s, &po, rep, &p);
	} else if (!strcmp(path, "/key-change")) {
		if (post_open(s, req, KEY_KID, &po, &p) == 0)
			h_key_change(s, &po, rep, &p);
	} else if (!strcmp(path, "/revoke-cert")) {
		if (post_open(s, req, KEY_EITHER, &po, &p) == 0)
			h_revoke_cert(s, &po, rep, &p);
	} else if (order_routes(s, req, &po, rep, &p)) {
		/* served */
	} else {
		acme_problem_set(&p, 404, "malformed", "there is no ACME resource at this URL");
	}
	post_close(&po);
	/* RFC 8555 §7.1: every resource but the directory links to it (rel="index"). */
	if (p.status)
		reply_problem(s, rep, &p);
	else if (strcmp(path, "/directory"))
		add_index_link(s, rep);
	if (strcmp(path, "/directory") && acme_nonce_new(&s->nonces, rep->replay_nonce) < 0)
		rep->replay_nonce[0] = '\0';
}
