/* Who is asking: a client certificate (by the SHA-256 of its DER) or a bearer API token (by
 * the SHA-256 of the token); both map to a principal and its role in the database. Denials and
 * state changes go to the audit log. Tokens are never logged. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cad_internal.h"
#include "log.h"

#define TOKEN_MAX 256

void cad_audit_entry(const struct cad_req *r, const char *object, const char *outcome,
                     const char *detail, struct db_audit_entry *e)
{
	e->actor = r->who.name ? r->who.name : "anonymous";
	e->role = r->who.role ? r->who.role : "";
	e->action = r->action ? r->action : "request";
	e->object = object ? object : "";
	e->outcome = outcome;
	e->detail = detail ? detail : "";
}

static enum db_status audit(struct cad_req *r, const char *object, const char *outcome,
                            const char *detail, int commit, struct db_err *err)
{
	struct db_audit_entry e;
	struct db *db = r->w->db;
	int64_t seq;

	if (!db) {
		struct db_err e2 = {0};
		if (db_connect(r->cad->cfg->database, &r->w->db, &e2) != DB_OK) {
			r->w->db = NULL;
			*err = e2;
			return e2.status;
		}
		db = r->w->db;
	}
	cad_audit_entry(r, object, outcome, detail, &e);
	return commit ? db_audit_append_commit(db, &e, &seq, err)
	              : db_audit_append(db, &e, &seq, err);
}

enum db_status cad_audit(struct cad_req *r, const char *object, const char *outcome,
                         const char *detail, struct db_err *err)
{
	return audit(r, object, outcome, detail, 0, err);
}

enum db_status cad_audit_commit(struct cad_req *r, const char *object, const char *outcome,
                                const char *detail, struct db_err *err)
{
	return audit(r, object, outcome, detail, 1, err);
}

void cad_audit_denial(struct cad_req *r)
{
	struct db_err err = {0};
	json_t *d = json_pack("{s:i, s:s, s:s, s:s}", "status", r->status, "error", r->error,
	                      "detail", r->detail, "via", r->auth_via ? r->auth_via : "none");
	char *text = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	if (cad_audit(r, r->object[0] ? r->object : r->path, "denied", text ? text : r->detail,
	              &err) != DB_OK)
		/* The refusal stands either way; the operator learns the trail has a gap. */
		log_error("could not audit a denied request (%s %s): %s", r->action, r->path,
		          err.msg);
	free(text);
	json_decref(d);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

int cad_token_new(const char *prefix, char *token, size_t n, uint8_t sha256[32])
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
	if ((size_t)snprintf(token, n, "%s%s", prefix, b64) >= n)
		return -1;
	OPENSSL_cleanse(b64, sizeof(b64));
	SHA256((const unsigned char *)token, strlen(token), sha256);
	return 0;
}

void cad_token_cache_clear(struct cad_worker *w)
{
	for (int i = 0; i < CAD_TOKEN_CACHE; i++) {
		db_principal_clear(&w->tokens[i].who);
		OPENSSL_cleanse(w->tokens[i].sha256, 32);
	}
}

static int principal_copy(struct db_principal *to, const struct db_principal *from)
{
	*to = *from;
	to->name = strdup(from->name);
	to->role = strdup(from->role);
	to->profiles = strdup(from->profiles ? from->profiles : "");
	if (to->name && to->role && to->profiles)
		return 0;
	db_principal_clear(to);
	return -1;
}

/* The issuance route may take who from the worker's cache: the reservation checks the token
 * again, in the statement that reserves, and nothing else is done on the caller's behalf. Only
 * roles that may issue are kept, so that a cached role never refuses what a fresh one allows
 * (and a refusal on cached credentials is served again, fresh). */
static int cacheable(const struct cad_req *r)
{
	return r->action && !strcmp(r->action, "certificate.issue") && !r->fresh_only;
}

static struct cad_token_seen *token_seen(struct cad_worker *w, const uint8_t sha[32])
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	for (int i = 0; i < CAD_TOKEN_CACHE; i++) {
		struct cad_token_seen *t = &w->tokens[i];
		if (t->who.name && CRYPTO_memcmp(t->sha256, sha, 32) == 0) {
			if (now.tv_sec - t->at.tv_sec < CAD_TOKEN_CACHE_SECONDS)
				return t;
			db_principal_clear(&t->who);
		}
	}
	return NULL;
}

static void token_remember(struct cad_worker *w, const uint8_t sha[32],
                           const struct db_principal *who)
{
	struct cad_token_seen *t = NULL;

	if (who->disabled || (strcmp(who->role, "officer") && strcmp(who->role, "ra")))
		return;
	for (int i = 0; i < CAD_TOKEN_CACHE && !t; i++)
		if (!w->tokens[i].who.name || !CRYPTO_memcmp(w->tokens[i].sha256, sha, 32))
			t = &w->tokens[i];
	if (!t)
		t = &w->tokens[w->next_token++ % CAD_TOKEN_CACHE];
	db_principal_clear(&t->who);
	if (principal_copy(&t->who, who) != 0)
		return;
	memcpy(t->sha256, sha, 32);
	clock_gettime(CLOCK_MONOTONIC, &t->at);
}

void cad_token_forget(struct cad_req *r)
{
	for (int i = 0; i < CAD_TOKEN_CACHE; i++)
		if (r->w->tokens[i].who.name &&
		    !CRYPTO_memcmp(r->w->tokens[i].sha256, r->token_sha256, 32))
			db_principal_clear(&r->w->tokens[i].who);
}

int cad_authenticate(struct cad_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
	const char *authz = evhttp_find_header(h, "Authorization");
	X509 *peer = cad_tls_peer(r->req);
	uint8_t sha[32];
	char fp[65];
	struct db_err err = {0};
	enum db_status rc;
	int32_t token_id;
	struct db *db;

#ifdef HSMCA_FUZZING
	/* Fuzz builds only (-Dfuzz=true): the API fuzz target names the caller's role, so that
	 * the handlers behind authentication see its input without a database. Production builds
	 * have no such path. */
	if (r->cad->fuzz_role) {
		r->who.name = strdup("fuzz");
		r->who.role = strdup(r->cad->fuzz_role);
		r->who.profiles = strdup("");
		r->auth_via = "fuzz";
		return r->who.name && r->who.role && r->who.profiles ? 0 : -1;
	}
#endif
	db = cad_db(r);
	if (!db)
		return -1;
	if (authz) {
		/* A bearer token, when given, decides: a client that sends one means it. */
		size_t len;
		r->auth_via = "token";
		if (strncmp(authz, "Bearer ", 7)) {
			cad_deny(r, 401, "unauthenticated", r->path,
			         "the Authorization header must be \"Bearer <token>\"");
			return -1;
		}
		len = strlen(authz + 7);
		if (len == 0 || len > TOKEN_MAX) {
			cad_deny(r, 401, "unauthenticated", r->path,
			         "the bearer token is malformed");
			return -1;
		}
		SHA256((const unsigned char *)authz + 7, len, sha);
		memcpy(r->cred_sha256, sha, 32);
		if (cacheable(r)) {
			struct cad_token_seen *t = token_seen(r->w, sha);
			if (t && principal_copy(&r->who, &t->who) == 0) {
				r->auth_cached = 1;
				memcpy(r->token_sha256, sha, 32);
				return 0;
			}
		}
		rc = db_token_authenticate(db, sha, &r->who, &token_id, &err);
		if (rc == DB_OK && cacheable(r))
			token_remember(r->w, sha, &r->who);
		if (rc == DB_ERR_NOT_FOUND) {
			cad_deny(r, 401, "unauthenticated", r->path,
			         "unknown, revoked or expired API token");
			return -1;
		}
	} else if (cad_session_cookie(r)) {
		/* The console's session (cad_console.c): the credential it was made with is
		 * looked up again, as if presented now. */
		if (cad_session_auth(r, peer, db, &err, &rc) != 0)
			return -1;
	} else if (peer) {
		unsigned int n = 0;
		r->auth_via = "certificate";
		if (cad_client_cert_revoked(r->cad, peer)) {
			cad_deny(r, 401, "certificate-revoked", r->path,
			         "the client certificate is on the operator-auth CA's CRL");
			return -1;
		}
		if (!X509_digest(peer, EVP_sha256(), sha, &n) || n != 32) {
			cad_reply_error(r, 500, "internal",
			                "could not hash the client certificate");
			return -1;
		}
		memcpy(r->cred_sha256, sha, 32);
		rc = db_principal_find_by_cert(db, sha, &r->who, &err);
		if (rc == DB_ERR_NOT_FOUND) {
			hex(sha, 32, fp);
			cad_deny(r, 401, "unauthenticated", r->path,
			         "no principal has the client certificate with SHA-256 %s", fp);
			return -1;
		}
	} else {
		r->auth_via = NULL;
		cad_deny(r, 401, "unauthenticated", r->path,
		         "present a client certificate or an API token (Authorization: Bearer)");
		return -1;
	}
	if (rc != DB_OK) {
		db_principal_clear(&r->who);
		cad_reply_db_error(r, &err);
		return -1;
	}
	if (r->who.disabled) {
		cad_deny(r, 401, "unauthenticated", r->path, "principal %s is disabled",
		         r->who.name);
		return -1;
	}
	/* CSRF: a browser's state-changing request shows the session's token and its origin. */
	return cad_browser_checks(r);
}
