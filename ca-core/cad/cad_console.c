/* The web console (docs/console.md): its static files under /console/, compiled in by
 * console/embed.py, with a strict Content-Security-Policy and the other headers every console
 * answer carries; and the session endpoints (/api/v1/session) that exchange a token or a client
 * certificate for a session cookie, with the session's part of authentication: the look-up,
 * the CSRF token and the Origin check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "cad_console_assets.h"
#include "cad_internal.h"
#include "httptext.h"
#include "log.h"

/* No inline script or style, nothing from elsewhere, never framed. */
#define CAD_CONSOLE_CSP                                                                            \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "                \
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "                \
	"form-action 'self'; frame-ancestors 'none'"

static void security_headers(struct evkeyvalq *h)
{
	evhttp_add_header(h, "Content-Security-Policy", CAD_CONSOLE_CSP);
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
	evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
}

static void console_reply(struct cad_req *r, int status, const char *ctype, const void *body,
                          size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);

	r->replied = 1;
	r->status = status;
	security_headers(h);
	if (ctype)
		evhttp_add_header(h, "Content-Type", ctype);
	if (body && len)
		evbuffer_add(evhttp_request_get_output_buffer(r->req), body, len);
	evhttp_send_reply(r->req, status, httptext_status(status), NULL);
	cad_log_reply(r, status);
}

static void console_text(struct cad_req *r, int status, const char *text)
{
	console_reply(r, status, "text/plain; charset=utf-8", text, strlen(text));
}

const struct cad_asset *cad_console_asset(const char *name)
{
	for (size_t i = 0; i < cad_console_n_assets; i++)
		if (!strcmp(cad_console_assets[i].name, name))
			return &cad_console_assets[i];
	return NULL;
}

int cad_console_serve(struct cad_req *r)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(r->req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	const struct cad_asset *a;
	const char *inm, *name;

	if (strcmp(r->path, "/console") && strncmp(r->path, "/console/", 9))
		return 0;
	r->action = "console";
	if (!r->cad->cfg->console_enabled) {
		console_text(r, 404, "the console is switched off (console.enabled: false)\n");
		return 1;
	}
	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
		evhttp_add_header(h, "Allow", "GET, HEAD");
		console_text(r, 405, "the console's files take GET and HEAD only\n");
		return 1;
	}
	if (!strcmp(r->path, "/console")) {
		evhttp_add_header(h, "Location", "/console/");
		console_text(r, 301, "the console is at /console/\n");
		return 1;
	}
	name = r->path + 9;
	a = cad_console_asset(*name ? name : "index.html");
	if (!a) {
		console_text(r, 404, "no such file in the console\n");
		return 1;
	}
	evhttp_add_header(h, "ETag", a->etag);
	/* Always revalidated: a new hsmca-cad serves its own files at once, and an unchanged
	 * file costs a 304. */
	evhttp_add_header(h, "Cache-Control", "no-cache");
	inm = evhttp_find_header(evhttp_request_get_input_headers(r->req), "If-None-Match");
	if (inm && !strcmp(inm, a->etag)) {
		console_reply(r, 304, NULL, NULL, 0);
		return 1;
	}
	console_reply(r, 200, a->content_type, a->data, a->len);
	return 1;
}

/* --- sessions --- */

static int64_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static void set_cookie(struct cad_req *r, const char *value, int max_age)
{
	char c[256];

	snprintf(c, sizeof(c), "%s=%s; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d",
	         CAD_SESSION_COOKIE, value, max_age);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Set-Cookie", c);
	OPENSSL_cleanse(c, sizeof(c));
}

int cad_session_cookie(struct cad_req *r)
{
	const char *c = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Cookie");

	return c && cad_cookie_get(c, CAD_SESSION_COOKIE, r->session_cookie,
	                           sizeof(r->session_cookie)) == 0;
}

static int state_changing(const struct cad_req *r)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(r->req);

	return m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD;
}

int cad_session_auth(struct cad_req *r, X509 *peer, struct db *db, struct db_err *err,
                     enum db_status *rc)
{
	struct cad_session *s = &r->session;
	enum cad_session_found found;
	int32_t token_id;

	r->auth_via = "session";
	found = cad_session_find(&r->cad->sessions, r->session_cookie, mono_now(), s);
	if (found != CAD_SESSION_FOUND)
		/* The browser drops the dead cookie, so that a certificate can sign in again. */
		set_cookie(r, "", 0);
	switch (found) {
	case CAD_SESSION_FOUND:
		break;
	case CAD_SESSION_IDLE:
		cad_deny(r, 401, "session-expired", r->path,
		         "the session was idle longer than %d seconds; sign in again",
		         r->cad->cfg->session_idle_seconds);
		return -1;
	case CAD_SESSION_EXPIRED:
		cad_deny(r, 401, "session-expired", r->path,
		         "the session is older than %d seconds; sign in again",
		         r->cad->cfg->session_max_seconds);
		return -1;
	default:
		cad_deny(r, 401, "session-expired", r->path,
		         "no such session (signed out, expired, or hsmca-cad restarted); "
		         "sign in again");
		return -1;
	}
	r->in_session = 1;
	if (s->via == CAD_SESSION_VIA_CERTIFICATE) {
		/* Bound to the client certificate that made it: the same one on every request. */
		uint8_t sha[32];
		unsigned int n = 0;
		if (!peer || !X509_digest(peer, EVP_sha256(), sha, &n) || n != 32 ||
		    CRYPTO_memcmp(sha, s->cred_sha256, 32)) {
			cad_deny(r, 401, "session-certificate-mismatch", r->path,
			         "this session was made with a client certificate that this "
			         "connection does not present");
			return -1;
		}
		if (cad_client_cert_revoked(r->cad, peer)) {
			cad_deny(r, 401, "certificate-revoked", r->path,
			         "the client certificate is on the operator-auth CA's CRL");
			return -1;
		}
		*rc = db_principal_find_by_cert(db, s->cred_sha256, &r->who, err);
	} else {
		*rc = db_token_authenticate(db, s->cred_sha256, &r->who, &token_id, err);
	}
	memcpy(r->cred_sha256, s->cred_sha256, 32);
	if (*rc == DB_ERR_NOT_FOUND) {
		cad_deny(r, 401, "unauthenticated", r->path,
		         "the %s this session was made with is no longer valid",
		         s->via == CAD_SESSION_VIA_CERTIFICATE ? "client certificate"
		                                               : "API token");
		return -1;
	}
	return 0;
}

/* Origin, when a browser sends one, must be this server: "https://" and the Host header. */
static int origin_ok(struct cad_req *r, const char *origin)
{
	const char *host = evhttp_find_header(evhttp_request_get_input_headers(r->req), "Host");

	return host && !strncmp(origin, "https://", 8) && !strcmp(origin + 8, host);
}

int cad_browser_checks(struct cad_req *r)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	const char *origin = evhttp_find_header(in, "Origin");
	const char *csrf = evhttp_find_header(in, "X-CSRF-Token");

	if (!state_changing(r))
		return 0;
	if (r->in_session) {
		if (!csrf) {
			cad_deny(
			    r, 403, "csrf-token-missing", r->path,
			    "a state-changing request authenticated by the session cookie must "
			    "carry the session's X-CSRF-Token header (GET /api/v1/session)");
			return -1;
		}
		if (strlen(csrf) != strlen(r->session.csrf) ||
		    CRYPTO_memcmp(csrf, r->session.csrf, strlen(csrf))) {
			cad_deny(r, 403, "csrf-token-mismatch", r->path,
			         "the X-CSRF-Token header is not this session's");
			return -1;
		}
		if (!origin) {
			cad_deny(
			    r, 403, "origin-missing", r->path,
			    "a state-changing request authenticated by the session cookie must "
			    "carry an Origin header");
			return -1;
		}
	}
	/* A browser holding a client certificate sends it to any site's form post too: an
	 * Origin that is not this server is refused, with or without a session. */
	if (origin && !origin_ok(r, origin)) {
		cad_deny(r, 403, "origin-mismatch", r->path,
		         "the request's Origin \"%.200s\" is not this server", origin);
		return -1;
	}
	return 0;
}

static json_t *session_json(struct cad_req *r, const char *csrf, enum cad_session_via via,
                            int64_t created, int64_t last)
{
	const struct cad_config *cfg = r->cad->cfg;
	int64_t now = mono_now();
	int64_t idle_left = cfg->session_idle_seconds - (now - last);
	int64_t max_left = cfg->session_max_seconds - (now - created);

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "name", r->who.name, "role",
	                 r->who.role, "profiles", r->who.profiles ? r->who.profiles : "", "via",
	                 via == CAD_SESSION_VIA_CERTIFICATE ? "certificate" : "token", "csrf_token",
	                 csrf, "idle_timeout_seconds", (json_int_t)cfg->session_idle_seconds,
	                 "expires_in_seconds",
	                 (json_int_t)(idle_left < max_left ? idle_left : max_left),
	                 "max_seconds_left", (json_int_t)max_left);
}

void cad_h_session_create(struct cad_req *r)
{
	char cookie[CAD_SESSION_TEXT_MAX], csrf[CAD_SESSION_TEXT_MAX];
	enum cad_session_via via;
	struct db_err err = {0};
	int64_t now = mono_now();
	int rc;

	if (!r->cad->cfg->console_enabled) {
		cad_deny(r, 403, "sessions-disabled", "session",
		         "the console and its sessions are switched off (console.enabled: false)");
		return;
	}
	if (r->in_session) {
		cad_deny(r, 400, "bad-request", "session",
		         "a session cannot make another: sign in with an API token "
		         "(Authorization: Bearer) or a client certificate");
		return;
	}
	via = !strcmp(r->auth_via, "certificate") ? CAD_SESSION_VIA_CERTIFICATE
	                                          : CAD_SESSION_VIA_TOKEN;
	rc =
	    cad_session_new(&r->cad->sessions, now, via, r->cred_sha256, r->who.name, cookie, csrf);
	if (rc == -1) {
		cad_reply_error(r, 503, "too-many-sessions",
		                "all %d console sessions are in use (console.max_sessions); try "
		                "again later",
		                r->cad->cfg->max_sessions);
		return;
	}
	if (rc != 0) {
		cad_reply_error(r, 500, "internal", "no randomness for a session");
		return;
	}
	if (cad_audit(r, "session", "success",
	              via == CAD_SESSION_VIA_CERTIFICATE ? "{\"via\":\"certificate\"}"
	                                                 : "{\"via\":\"token\"}",
	              &err) != DB_OK) {
		cad_session_end(&r->cad->sessions, cookie);
		OPENSSL_cleanse(cookie, sizeof(cookie));
		cad_reply_db_error(r, &err);
		return;
	}
	set_cookie(r, cookie, r->cad->cfg->session_max_seconds);
	OPENSSL_cleanse(cookie, sizeof(cookie));
	cad_reply_json(r, 201, session_json(r, csrf, via, now, now));
	OPENSSL_cleanse(csrf, sizeof(csrf));
}

void cad_h_session_show(struct cad_req *r)
{
	if (!r->in_session) {
		cad_reply_error(r, 404, "no-session",
		                "this request was authenticated by its %s, not by a session; POST "
		                "/api/v1/session starts one",
		                r->auth_via ? r->auth_via : "credentials");
		return;
	}
	cad_reply_json(
	    r, 200,
	    session_json(r, r->session.csrf, r->session.via, r->session.created, r->session.last));
}

void cad_h_session_end(struct cad_req *r)
{
	struct db_err err = {0};

	if (!r->in_session) {
		cad_reply_error(r, 404, "no-session",
		                "this request was authenticated by its %s, not by a session",
		                r->auth_via ? r->auth_via : "credentials");
		return;
	}
	cad_session_end(&r->cad->sessions, r->session_cookie);
	if (cad_audit(r, "session", "success", NULL, &err) != DB_OK)
		log_error("could not audit the end of %s's session: %s", r->who.name, err.msg);
	set_cookie(r, "", 0);
	cad_reply_json(r, 200, json_pack("{s:b}", "ended", 1));
}
