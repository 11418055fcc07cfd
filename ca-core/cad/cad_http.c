/* The HTTPS server: libevent's evhttp over OpenSSL bufferevents, the route table with the
 * roles allowed on each route, JSON replies and errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/thread.h>
#include <openssl/err.h>

#include "cad_internal.h"
#include "daemon.h"
#include "log.h"

#define ANY CAD_ROLE_ANY
#define CA_ADMIN CAD_ROLE_CA_ADMIN
#define ADMIN CAD_ROLE_ADMIN
#define OFFICER CAD_ROLE_OFFICER
#define AUDITOR CAD_ROLE_AUDITOR
#define RA CAD_ROLE_RA

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
    {EVHTTP_REQ_GET, "/metrics", cad_h_metrics, 0, "metrics"},
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
    {EVHTTP_REQ_POST, "/api/v1/principals/{}/tokens", cad_h_token_create, CA_ADMIN | ADMIN,
     "token.create"},
    {EVHTTP_REQ_GET, "/api/v1/principals/{}/tokens", cad_h_token_list, CA_ADMIN | ADMIN | AUDITOR,
     "token.list"},
    {EVHTTP_REQ_POST, "/api/v1/tokens/{}/revoke", cad_h_token_revoke, CA_ADMIN | ADMIN,
     "token.revoke"},
    {EVHTTP_REQ_POST, "/api/v1/certificates", cad_h_cert_issue, OFFICER | RA, "certificate.issue"},
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
};

int cad_role_bit(const char *role)
{
	static const char *const names[] = {"ca-admin", "admin",    "officer",
	                                    "auditor",  "operator", "ra"};

	for (int i = 0; i < 6; i++)
		if (role && !strcmp(role, names[i]))
			return 1 << i;
	return 0;
}

/* --- replies --- */

static const char *reason_of(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	default:
		return "OTHER";
	}
}

void cad_reply_json(struct cad_req *r, int status, json_t *obj)
{
	struct evbuffer *out = r->req ? evhttp_request_get_output_buffer(r->req) : NULL;
	struct evkeyvalq *h = r->req ? evhttp_request_get_output_headers(r->req) : NULL;
	char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	if (r->replied) {
		json_decref(obj);
		free(text);
		return;
	}
	r->replied = 1;
	r->status = status;
	if (!r->req) { /* issuance without the server (cad_offline.c) */
		json_decref(r->offline_reply);
		r->offline_reply = obj;
		free(text);
		return;
	}
	if (!text) {
		status = 500;
		evbuffer_add_printf(out, "{\"error\":\"internal\",\"detail\":\"out of memory\"}");
	} else {
		evbuffer_add(out, text, strlen(text));
	}
	evbuffer_add(out, "\n", 1);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (status == 401)
		evhttp_add_header(h, "WWW-Authenticate", "Bearer");
	evhttp_send_reply(r->req, status, reason_of(status), NULL);
	log_info("request method=%s path=%s status=%d principal=%s via=%s",
	         method_name(evhttp_request_get_command(r->req)), r->path, status,
	         r->who.name ? r->who.name : "-", r->auth_via ? r->auth_via : "-");
	json_decref(obj);
	free(text);
}

void cad_reply_error(struct cad_req *r, int status, const char *error, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(r->error, sizeof(r->error), "%s", error);
	snprintf(r->detail, sizeof(r->detail), "%s", detail);
	if (r->plain) {
		cad_reply_plain(r, status, detail);
		return;
	}
	cad_reply_json(r, status, json_pack("{s:s, s:s}", "error", error, "detail", detail));
}

void cad_reply_db_error(struct cad_req *r, const struct db_err *err)
{
	if (err->status == DB_ERR_UNAVAILABLE) {
		log_warn("database unavailable: %s", err->msg);
		cad_reply_error(r, 503, "database-unavailable", "the database is unavailable: %s",
		                err->msg);
		return;
	}
	log_error("database error: %s", err->msg);
	cad_reply_error(r, 500, "database-error", "%s", err->msg);
}

struct db *cad_db(struct cad_req *r)
{
	struct cad_worker *w = r->w;
	struct db_err err = {0};

	if (!w->db && db_connect(r->cad->cfg->database, &w->db, &err) != DB_OK) {
		w->db = NULL;
		cad_reply_db_error(r, &err);
		return NULL;
	}
	return w->db;
}

json_t *cad_body_object(struct cad_req *r, const char *const *allowed)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	const char *key;
	json_t *obj, *v;

	if (len > r->cad->cfg->max_body_bytes) {
		cad_reply_error(r, 413, "body-too-large",
		                "the request body has %zu bytes; at most %zu", len,
		                r->cad->cfg->max_body_bytes);
		return NULL;
	}
	obj = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj) {
		cad_reply_error(r, 400, "malformed-json", "the body is not JSON: %s (line %d)",
		                jerr.text, jerr.line);
		return NULL;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		cad_reply_error(r, 400, "malformed-json", "the body must be a JSON object");
		return NULL;
	}
	json_object_foreach(obj, key, v)
	{
		size_t i;
		for (i = 0; allowed[i]; i++)
			if (!strcmp(key, allowed[i]))
				break;
		if (!allowed[i]) {
			cad_reply_error(r, 400, "unknown-field", "unknown field \"%.64s\"", key);
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

/* Parse the query string once: 0, or -1 when it does not parse or a name or value is not UTF-8
 * text once decoded (nothing that is not text reaches a query). */
static int query_parse(struct cad_req *r)
{
	const struct evhttp_uri *u;
	const struct evkeyval *kv;
	const char *q;

	if (r->query_parsed)
		return 0;
	u = r->req ? evhttp_request_get_evhttp_uri(r->req) : NULL;
	q = u ? evhttp_uri_get_query(u) : NULL;
	if (q && evhttp_parse_query_str(q, &r->query) != 0)
		return -1;
	r->query_parsed = 1;
	TAILQ_FOREACH(kv, &r->query, next)
	if (!db_text_valid(kv->key, strlen(kv->key)) ||
	    !db_text_valid(kv->value, strlen(kv->value)))
		return -1;
	return 0;
}

const char *cad_query(struct cad_req *r, const char *name)
{
	if (query_parse(r) != 0)
		return NULL;
	return evhttp_find_header(&r->query, name);
}

/* --- names --- */

int cad_name_ok(const char *s)
{
	size_t n = 0;

	if (!s ||
	    !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		return 0;
	for (; *s; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._@+-", *s)))
			return 0;
	return n <= 128;
}

int cad_label_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 128 || !db_text_valid(s, n))
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* --- routing --- */

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
	if (query_parse(&r) != 0) {
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
	/* Invariant 5 and the issue: every denied request is in the audit log. */
	if (r.action && ((rt && rt->roles) || audit_unrouted) && r.status >= 400 && r.status < 500)
		cad_audit_denial(&r);
	if (r.query_parsed)
		evhttp_clear_headers(&r.query);
	db_principal_clear(&r.who);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cad_metrics_request(rt ? rt->action : "unrouted", r.status,
	                    (double)(t1.tv_sec - t0.tv_sec) +
	                        (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* --- the server --- */

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
	struct cad *cad = arg;
	SSL *ssl = SSL_new(cad->ssl);
	struct bufferevent *bev;

	if (!ssl)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                     BEV_OPT_CLOSE_ON_FREE);
	if (bev)
		/* Clients often close without close_notify after the reply; that is not an
		 * attack on a request/response protocol with explicit lengths. */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

void cad_stop(struct cad *cad)
{
	for (int i = 0; i < cad->n_workers; i++)
		if (cad->workers[i].base)
			event_base_loopexit(cad->workers[i].base, NULL);
}

/* A listening socket on ai (its port set to port), shared with the other workers. */
static evutil_socket_t listen_socket(const struct addrinfo *ai, int port)
{
	struct sockaddr_storage ss;
	int fd, one = 1;

	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int bound_port(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
	                               : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static int worker_init(struct cad *cad, struct cad_worker *w, evutil_socket_t fd)
{
	const struct cad_config *cfg = cad->cfg;

	w->cad = cad;
	w->base = event_base_new();
	w->http = w->base ? evhttp_new(w->base) : NULL;
	if (!w->http)
		return -1;
	evhttp_set_bevcb(w->http, make_tls_bev, cad);
	/* libevent's own limit answers with an HTML 413; ours (cad_body_object) answers in
	 * JSON, so libevent's is a memory backstop above it. */
	evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->max_body_bytes * 2);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg->max_header_bytes);
	evhttp_set_timeout(w->http, cfg->timeout_seconds);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	                                        EVHTTP_REQ_HEAD);
	evhttp_set_gencb(w->http, cad_dispatch, w);
	/* evhttp owns fd from here (closed when w->http is freed). */
	if (!evhttp_accept_socket_with_handle(w->http, fd)) {
		close(fd);
		return -1;
	}
	return 0;
}

int cad_new(struct cad_config *cfg, struct cad **out, char *err, size_t errsz)
{
	struct cad *cad = calloc(1, sizeof(*cad));
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
	struct db_err derr = {0};
	char portbuf[8];
	int rc = -1, e;

	*out = NULL;
	if (!cad) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	cad->cfg = cfg;
	pthread_mutex_init(&cad->lock, NULL);
	cad_group_init(&cad->reserve_group, CAD_RESERVE_LEADERS);
	cad_group_init(&cad->store_group, 1);
	if (evthread_use_pthreads() != 0) {
		snprintf(err, errsz, "setting up libevent's threads failed");
		goto out;
	}
	cad->ssl = cad_tls_new(cfg, err, errsz);
	if (!cad->ssl)
		goto out;
	if (cad_client_crl_init(cad, err, errsz) != 0)
		goto out;
	snprintf(portbuf, sizeof(portbuf), "%d", cfg->listen_port);
	if (getaddrinfo(cfg->listen_address, portbuf, &hints, &ai) != 0 || !ai) {
		snprintf(err, errsz, "cannot listen on %s port %d: no such address",
		         cfg->listen_address, cfg->listen_port);
		goto out;
	}
	if (cfg->listen_port && (e = daemon_port_taken(ai)) != 0) {
		snprintf(err, errsz, "cannot listen on %s port %d: %s", cfg->listen_address,
		         cfg->listen_port, strerror(e));
		goto out;
	}
	cad->port = cfg->listen_port;
	for (int i = 0; i < cfg->workers && i < CAD_MAX_WORKERS; i++) {
		evutil_socket_t fd = listen_socket(ai, cad->port);
		if (fd < 0) {
			snprintf(err, errsz, "cannot listen on %s port %d: %s", cfg->listen_address,
			         cad->port, strerror(errno));
			goto out;
		}
		if (i == 0)
			cad->port = bound_port(fd); /* port 0: the kernel's choice, for all */
		cad->workers[i].index = i;
		cad->n_workers = i + 1;
		if (worker_init(cad, &cad->workers[i], fd) != 0) {
			snprintf(err, errsz, "setting up event loop %d failed", i);
			goto out;
		}
	}
	cad->base = cad->workers[0].base;
	if (cad_checkpoint_start(cad) != 0) {
		snprintf(err, errsz, "setting up the audit checkpoint timer failed");
		goto out;
	}
	/* The database may be down at start; requests retry it and answer 503 meanwhile. */
	if (db_connect(cfg->database, &cad->workers[0].db, &derr) != DB_OK) {
		log_warn("database unavailable at start (will retry per request): %s", derr.msg);
		cad->workers[0].db = NULL;
	} else {
		switch (cad_authorities_ready(cad, cad->workers[0].db, err, errsz)) {
		case -3:
			goto out; /* a configuration error: refuse to start */
		case -2:
			log_warn("authorities not registered yet (will retry per request): %s",
			         err);
			break;
		case -1:
			log_warn("authority keys not loaded yet (will retry per request): %s", err);
			break;
		default:
			break;
		}
	}
	*out = cad;
	cad = NULL;
	rc = 0;
out:
	if (ai)
		freeaddrinfo(ai);
	cad_free(cad);
	return rc;
}

static void *worker_main(void *arg)
{
	struct cad_worker *w = arg;

	if (event_base_dispatch(w->base) < 0)
		log_error("event loop %d failed", w->index);
	return NULL;
}

int cad_run(struct cad *cad)
{
	int rc;

	for (int i = 1; i < cad->n_workers; i++) {
		struct cad_worker *w = &cad->workers[i];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			log_error("cannot start event loop %d", i);
			cad_stop(cad);
			break;
		}
		w->started = 1;
	}
	log_info("listening on %s port %d with %d event loops", cad->cfg->listen_address, cad->port,
	         cad->n_workers);
	rc = event_base_dispatch(cad->base) < 0 ? -1 : 0;
	/* Worker 0 stopped (cad_stop, or its loop failed): stop the others too. */
	cad_stop(cad);
	for (int i = 1; i < cad->n_workers; i++)
		if (cad->workers[i].started) {
			pthread_join(cad->workers[i].thread, NULL);
			cad->workers[i].started = 0;
		}
	return rc;
}

struct event_base *cad_base(struct cad *cad)
{
	return cad->base;
}

void cad_free(struct cad *cad)
{
	if (!cad)
		return;
	if (cad->checkpoint_timer)
		event_free(cad->checkpoint_timer);
	for (int i = 0; i < cad->n_workers; i++) {
		struct cad_worker *w = &cad->workers[i];
		if (w->http)
			evhttp_free(w->http);
		if (w->base)
			event_base_free(w->base);
		db_close(w->db);
		cad_token_cache_clear(w);
	}
	SSL_CTX_free(cad->ssl);
	X509_CRL_free(cad->client_crl);
	db_close(cad->db);
	pthread_mutex_destroy(&cad->lock);
	cad_group_destroy(&cad->reserve_group);
	cad_group_destroy(&cad->store_group);
	free(cad);
}
