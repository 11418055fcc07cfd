/* The API's routes: the table of paths, methods and the roles allowed on each, and the
 * dispatch of one request to its handler (EST's paths to cad_est.c), with authentication,
 * the retry on stale cached credentials, the audit of denials and the request metrics. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <openssl/crypto.h>

#include "cad_approvals.h"
#include "cad_internal.h"
#include "cad_mfa.h"
#include "log.h"

#define ANY CAD_ROLE_ANY
#define CA_ADMIN CAD_ROLE_CA_ADMIN
#define ADMIN CAD_ROLE_ADMIN
#define OFFICER CAD_ROLE_OFFICER
#define AUDITOR CAD_ROLE_AUDITOR
#define RA CAD_ROLE_RA
#define OPERATOR CAD_ROLE_OPERATOR

/* The permission matrix (docs/api.md shows it as a table). "{}" is one path segment. Handlers
 * narrow further where the object matters (which role an admin may manage, which profiles an
 * ra principal is granted). roles 0: no authentication. */
static const struct route {
	enum evhttp_cmd_type method;
	const char *pattern;
	cad_handler handler;
	int roles;
	const char *action;
} routes[] = {
    {EVHTTP_REQ_GET, "/api/v1/health", cad_h_health, 0, "health"},
    {EVHTTP_REQ_GET, "/health", cad_h_health, 0, "health"},
    /* The state alone is public; details and metrics are for auditors and operators (or the
     * local metrics listener, cad_http.c). */
    {EVHTTP_REQ_GET, "/api/v1/health/details", cad_h_health_details, AUDITOR | OPERATOR,
     "health.details"},
    {EVHTTP_REQ_GET, "/metrics", cad_h_metrics, AUDITOR | OPERATOR, "metrics"},
    {EVHTTP_REQ_GET, "/api/v1/whoami", cad_h_whoami, ANY, "whoami"},
    {EVHTTP_REQ_GET, "/api/v1/profiles", cad_h_profile_list, ANY, "profile.list"},
    {EVHTTP_REQ_POST, "/api/v1/principals", cad_h_principal_create, CA_ADMIN | ADMIN,
     "principal.create"},
    {EVHTTP_REQ_GET, "/api/v1/principals", cad_h_principal_list, CA_ADMIN | ADMIN | AUDITOR,
     "principal.list"},
    {EVHTTP_REQ_GET, "/api/v1/principals/{}", cad_h_principal_show, CA_ADMIN | ADMIN | AUDITOR,
     "principal.show"},
    {EVHTTP_REQ_POST, "/api/v1/principals/{}/disable", cad_h_principal_disable, CA_ADMIN | ADMIN,
     "principal.disable"},
    {EVHTTP_REQ_POST, "/api/v1/principals/{}/enable", cad_h_principal_enable, CA_ADMIN | ADMIN,
     "principal.enable"},
    /* Any role for its own tokens; cad_role_may judges whose (cad_principals.c). */
    {EVHTTP_REQ_POST, "/api/v1/principals/{}/tokens", cad_h_token_create, ANY, "token.create"},
    {EVHTTP_REQ_GET, "/api/v1/principals/{}/tokens", cad_h_token_list, CA_ADMIN | ADMIN | AUDITOR,
     "token.list"},
    {EVHTTP_REQ_POST, "/api/v1/tokens/{}/revoke", cad_h_token_revoke, CA_ADMIN | ADMIN,
     "token.revoke"},
    {EVHTTP_REQ_POST, "/api/v1/certificates", cad_h_cert_issue, OFFICER | RA, "certificate.issue"},
    {EVHTTP_REQ_POST, "/api/v1/certificates/serverkeygen", cad_h_cert_serverkeygen, OFFICER | RA,
     "certificate.serverkeygen"},
    {EVHTTP_REQ_POST, "/api/v1/certificates/{}/recover", cad_h_cert_recover, OFFICER,
     "certificate.recover"},
    {EVHTTP_REQ_GET, "/api/v1/certificates", cad_h_cert_list, CA_ADMIN | ADMIN | OFFICER | AUDITOR,
     "certificate.list"},
    {EVHTTP_REQ_GET, "/api/v1/certificates/{}", cad_h_cert_show,
     CA_ADMIN | ADMIN | OFFICER | AUDITOR | RA, "certificate.show"},
    {EVHTTP_REQ_POST, "/api/v1/certificates/{}/revoke", cad_h_cert_revoke, OFFICER | RA,
     "certificate.revoke"},
    {EVHTTP_REQ_POST, "/api/v1/certificates/{}/hold", cad_h_cert_hold, OFFICER, "certificate.hold"},
    {EVHTTP_REQ_POST, "/api/v1/certificates/{}/release", cad_h_cert_release, OFFICER,
     "certificate.release"},
    {EVHTTP_REQ_GET, "/api/v1/audit/verify", cad_h_audit_verify, CA_ADMIN | AUDITOR,
     "audit.verify"},
    {EVHTTP_REQ_GET, "/api/v1/audit", cad_h_audit_export, CA_ADMIN | AUDITOR, "audit.export"},
    {EVHTTP_REQ_POST, "/api/v1/profiles/{}/disable", cad_h_profile_disable, ADMIN,
     "profile.disable"},
    {EVHTTP_REQ_POST, "/api/v1/profiles/{}/enable", cad_h_profile_enable, ADMIN, "profile.enable"},
    /* Stored, versioned profiles (cad_profiles.c): admins change them, anyone reads. */
    {EVHTTP_REQ_POST, "/api/v1/profiles", cad_h_profile_create, ADMIN, "profile.create"},
    {EVHTTP_REQ_GET, "/api/v1/profiles/{}", cad_h_profile_show, ANY, "profile.show"},
    {EVHTTP_REQ_PUT, "/api/v1/profiles/{}", cad_h_profile_edit, ADMIN, "profile.edit"},
    {EVHTTP_REQ_POST, "/api/v1/profiles/{}/clone", cad_h_profile_clone, ADMIN, "profile.clone"},
    {EVHTTP_REQ_GET, "/api/v1/authorities", cad_h_authority_list,
     CA_ADMIN | ADMIN | OFFICER | AUDITOR, "authority.list"},
    {EVHTTP_REQ_POST, "/api/v1/authorities/{}/retire", cad_h_authority_retire, CA_ADMIN,
     "authority.retire"},
    {EVHTTP_REQ_GET, "/api/v1/authorities/{}/settings", cad_h_authority_settings_get,
     CA_ADMIN | ADMIN | OFFICER | AUDITOR, "authority.settings.show"},
    {EVHTTP_REQ_PUT, "/api/v1/authorities/{}/settings", cad_h_authority_settings_put, OFFICER,
     "authority.settings.update"},
    /* Device enrolment (cad_est_api.c; EST itself is cad_est.c). */
    {EVHTTP_REQ_POST, "/api/v1/provisioning-tokens", cad_h_prov_token_create, OFFICER,
     "provisioning-token.create"},
    {EVHTTP_REQ_GET, "/api/v1/provisioning-tokens", cad_h_prov_token_list,
     CA_ADMIN | ADMIN | OFFICER | AUDITOR, "provisioning-token.list"},
    {EVHTTP_REQ_POST, "/api/v1/provisioning-tokens/{}/revoke", cad_h_prov_token_revoke, OFFICER,
     "provisioning-token.revoke"},
    {EVHTTP_REQ_GET, "/api/v1/devices", cad_h_device_list, CA_ADMIN | ADMIN | OFFICER | AUDITOR,
     "device.list"},
    {EVHTTP_REQ_GET, "/api/v1/devices/{}", cad_h_device_show, CA_ADMIN | ADMIN | OFFICER | AUDITOR,
     "device.show"},
    {EVHTTP_REQ_POST, "/api/v1/devices/{}/decommission", cad_h_device_decommission, OFFICER,
     "device.decommission"},
    /* ACME's External Account Binding credentials (cad_acme.c; ACME itself is /acme/). */
    {EVHTTP_REQ_POST, "/api/v1/acme/eab", cad_h_acme_eab_create, OFFICER, "acme.eab.create"},
    {EVHTTP_REQ_GET, "/api/v1/acme/eab", cad_h_acme_eab_list, CA_ADMIN | ADMIN | OFFICER | AUDITOR,
     "acme.eab.list"},
    {EVHTTP_REQ_POST, "/api/v1/acme/eab/{}/revoke", cad_h_acme_eab_revoke, OFFICER,
     "acme.eab.revoke"},
    {EVHTTP_REQ_POST, "/api/v1/acme/incidents", cad_h_acme_incident_create, OFFICER,
     "acme.incident.create"},
    /* The dashboard (any role), the reports (auditors and the CA administrator) and the
     * backup runs (cad_reports.c, docs/reports.md). */
    {EVHTTP_REQ_GET, "/api/v1/dashboard", cad_h_dashboard, ANY, "dashboard.show"},
    {EVHTTP_REQ_GET, "/api/v1/reports/issuance", cad_h_report_issuance, CA_ADMIN | AUDITOR,
     "report.issuance"},
    {EVHTTP_REQ_GET, "/api/v1/reports/expiring", cad_h_report_expiring, CA_ADMIN | AUDITOR,
     "report.expiring"},
    {EVHTTP_REQ_GET, "/api/v1/reports/principals", cad_h_report_principals, CA_ADMIN | AUDITOR,
     "report.principals"},
    {EVHTTP_REQ_GET, "/api/v1/backups", cad_h_backup_list, OPERATOR | CA_ADMIN | AUDITOR,
     "backup.list"},
    /* Quorum approvals (cad_approvals.c): who may vote on a request is the request's own
     * policy, judged by the database (migration 0017); requesting here is for the kinds the
     * command line runs, each naming its requesters. */
    {EVHTTP_REQ_GET, "/api/v1/approvals", cad_h_approval_list, CA_ADMIN | ADMIN | OFFICER | AUDITOR,
     "approval.list"},
    {EVHTTP_REQ_POST, "/api/v1/approvals", cad_h_approval_create, CA_ADMIN | ADMIN | OFFICER,
     "approval.request"},
    {EVHTTP_REQ_GET, "/api/v1/approvals/{}", cad_h_approval_show,
     CA_ADMIN | ADMIN | OFFICER | AUDITOR, "approval.show"},
    {EVHTTP_REQ_POST, "/api/v1/approvals/{}/approve", cad_h_approval_approve, ANY,
     "approval.approve"},
    {EVHTTP_REQ_POST, "/api/v1/approvals/{}/reject", cad_h_approval_reject, ANY, "approval.reject"},
    /* The console's sign-in (cad_console.c): a token or certificate for a session cookie. */
    {EVHTTP_REQ_POST, "/api/v1/session", cad_h_session_create, ANY, "session.create"},
    {EVHTTP_REQ_GET, "/api/v1/session", cad_h_session_show, ANY, "session.show"},
    {EVHTTP_REQ_DELETE, "/api/v1/session", cad_h_session_end, ANY, "session.end"},
    /* TOTP step-up (cad_mfa.c): every principal enrols, confirms and disables its own; a
     * ca-admin resets another's (a principal change: step-up by default). */
    {EVHTTP_REQ_GET, "/api/v1/mfa", cad_h_mfa_status, ANY, "mfa.status"},
    {EVHTTP_REQ_POST, "/api/v1/mfa/totp", cad_h_mfa_enrol, ANY, "mfa.enrol"},
    {EVHTTP_REQ_POST, "/api/v1/mfa/totp/confirm", cad_h_mfa_confirm, ANY, "mfa.confirm"},
    {EVHTTP_REQ_POST, "/api/v1/mfa/totp/disable", cad_h_mfa_disable, ANY, "mfa.disable"},
    {EVHTTP_REQ_POST, "/api/v1/principals/{}/mfa/reset", cad_h_mfa_reset, CA_ADMIN,
     "principal.mfa.reset"},
};

int cad_route_action_known(const char *pattern)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].roles && routes[i].method != EVHTTP_REQ_GET &&
		    cad_mfa_pattern_matches(pattern, routes[i].action))
			return 1;
	return 0;
}

int cad_role_bit(const char *role)
{
	static const char *const names[] = {"ca-admin", "admin",    "officer",
	                                    "auditor",  "operator", "ra"};

	for (int i = 0; i < 6; i++)
		if (role && !strcmp(role, names[i]))
			return 1 << i;
	return 0;
}

/* Match the raw (still percent-encoded) path against pattern; "{}" matches one non-empty
 * segment, which is decoded into args, so that an encoded "/" stays inside its segment and
 * a NUL (%00) is refused. */
static int match(const char *pattern, const char *path, char args[CAD_MAX_ARGS][256])
{
	int n = 0;

	while (*pattern && *path) {
		if (!strncmp(pattern, "{}", 2)) {
			size_t len = strcspn(path, "/"), dlen = 0;
			char seg[256], *dec;
			if (len == 0 || len >= sizeof(seg) || n >= CAD_MAX_ARGS)
				return 0;
			memcpy(seg, path, len);
			seg[len] = '\0';
			dec = evhttp_uridecode(seg, 0, &dlen);
			if (!dec || dlen != strlen(dec)) {
				free(dec);
				return 0;
			}
			if (!db_text_valid(dec, dlen)) {
				free(dec);
				return -1; /* no name is bytes that are not UTF-8 text */
			}
			snprintf(args[n++], 256, "%s", dec);
			free(dec);
			path += len;
			pattern += 2;
			continue;
		}
		if (*pattern++ != *path++)
			return 0;
	}
	return !*pattern && !*path;
}

/*
 * evhttp writes an answer's headers and body separately; with Nagle on, the
 * body waits for the client's delayed ACK of the headers (~40 ms a request,
 * found by tests/bench/issue). Answers are small and complete: send them now.
 */
static void set_nodelay(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void cad_dispatch(struct evhttp_request *req, void *arg)
{
	struct cad_worker *w = arg;
	struct cad_req r = {.cad = w->cad, .w = w, .req = req};
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const struct route *rt = NULL;
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	int path_known = 0, audit_unrouted = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	set_nodelay(req);
	TAILQ_INIT(&r.query);
	if (cad_conn_over_cap(req)) {
		/* Too many connections at once: a clear answer, and the connection closes. */
		static _Atomic int64_t last_logged;
		int64_t now = (int64_t)time(NULL);
		uint64_t n = atomic_fetch_add(&w->cad->connections_refused, 1) + 1;
		if (atomic_exchange(&last_logged, now) != now)
			log_warn("refusing requests: more than %d connections open at once "
			         "(limits.max_connections); %llu refused so far",
			         w->cad->cfg->max_connections, (unsigned long long)n);
		snprintf(r.path, sizeof(r.path), "%s",
		         raw && strlen(raw) < sizeof(r.path) ? raw : "?");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		cad_reply_error(
		    &r, 503, "too-many-connections",
		    "hsmca-cad serves at most %d connections at once; try again shortly",
		    w->cad->cfg->max_connections);
		goto out;
	}
	if (!raw || strlen(raw) >= sizeof(r.path)) {
		snprintf(r.path, sizeof(r.path), "?");
		cad_reply_error(&r, 400, "bad-path", "the request path is missing or too long");
		goto out;
	}
	snprintf(r.path, sizeof(r.path), "%s", raw);
	if (!strncmp(r.path, "/.well-known/est/", 17)) {
		cad_est_serve(&r); /* RFC 7030's own replies and audit */
		goto out;
	}
	if (cad_console_serve(&r))
		goto out; /* the console's static files (cad_console.c) */
	if (!strncmp(r.path, "/acme/", 6)) {
		cad_acme_serve(&r); /* RFC 8555's own replies; account changes audited */
		goto out;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		char args[CAD_MAX_ARGS][256];
		int m = match(routes[i].pattern, r.path, args);
		if (m < 0) {
			cad_reply_error(&r, 400, "bad-path",
			                "a segment of the path is not UTF-8 text once decoded");
			goto out;
		}
		if (!m)
			continue;
		path_known = 1;
		if (routes[i].method == method) {
			rt = &routes[i];
			memcpy(r.args, args, sizeof(args));
			break;
		}
	}
	if (!rt) {
		/* No route: answered without credentials, but a caller who presents some is
		 * authenticated first and its request audited as denied (a known principal
		 * probing the API is worth knowing about; anonymous noise is not logged). */
		r.action = path_known ? "request.method-not-allowed" : "request.unknown-endpoint";
		if (evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization") ||
		    cad_tls_peer(req)) {
			audit_unrouted = 1;
			if (cad_authenticate(&r) != 0)
				goto out;
		}
		if (path_known)
			cad_reply_error(&r, 405, "method-not-allowed",
			                "%s does not take this method", r.path);
		else
			cad_reply_error(&r, 404, "not-found", "no such endpoint: %s", r.path);
		goto out;
	}
	r.action = rt->action;
	if (cad_query_parse(&r) != 0) {
		cad_reply_error(
		    &r, 400, "bad-query",
		    "the query string does not parse, or a parameter is not UTF-8 text");
		goto out;
	}
	for (;;) {
		if (rt->roles) {
			if (cad_authenticate(&r) != 0)
				goto out;
			if (!(cad_role_bit(r.who.role) & rt->roles)) {
				cad_deny(&r, 403, "role-not-permitted", r.path,
				         "role %s may not %s", r.who.role, rt->action);
				goto out;
			}
		}
		/* Step-up (docs/mfa.md): a change the role's policy names needs a fresh TOTP
		 * code, checked once (a request served again keeps its accepted code). */
		if (rt->roles && method != EVHTTP_REQ_GET && !r.stepped_up &&
		    cad_mfa_step_up(&r) != 0)
			goto out;
		rt->handler(&r);
		if (!r.stale_credentials || r.replied || r.fresh_only)
			break;
		/* The cached credentials no longer hold (nothing was changed): serve it again with
		 * a fresh look-up, which answers as the credentials are now. */
		cad_token_forget(&r);
		db_principal_clear(&r.who);
		r.auth_cached = r.stale_credentials = 0;
		r.fresh_only = 1;
	}
	if (!r.replied)
		cad_reply_error(&r, 500, "internal", "the handler gave no answer");
out:
	/* Invariant 5 of docs/architecture.md: every denied request is in the audit log too. */
	if (r.action && ((rt && rt->roles) || audit_unrouted) && r.status >= 400 && r.status < 500)
		cad_audit_denial(&r);
	if (r.query_parsed)
		evhttp_clear_headers(&r.query);
	db_principal_clear(&r.who);
	OPENSSL_cleanse(&r.session, sizeof(r.session));
	OPENSSL_cleanse(r.session_cookie, sizeof(r.session_cookie));
	if (r.deferred)
		return; /* counted when it is answered */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cad_metrics_request(rt ? rt->action : "unrouted", r.status,
	                    (double)(t1.tv_sec - t0.tv_sec) +
	                        (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}
