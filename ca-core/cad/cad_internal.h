/* Shared inside hsmca-cad: the server, a request being served, replies, auth and audit. */
#ifndef HSMCA_CAD_INTERNAL_H
#define HSMCA_CAD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "ca_csr.h"
#include "cad.h"
#include "cad_session.h"
#include "db.h"

#define CAD_MAX_WORKERS 64

/* One event loop with its own listening socket (SO_REUSEPORT: the kernel spreads connections
 * over the workers) and its own database connection, so several requests are in flight at once
 * while each request still runs start to finish on one thread. Worker 0 runs on the main
 * thread. */
/* API tokens a worker looked up lately for issuance (cad_auth.c). Used only on the issuance
 * route, whose reservation checks the token again in the statement that reserves. */
#define CAD_TOKEN_CACHE 4
#define CAD_TOKEN_CACHE_SECONDS 60
struct cad_token_seen {
	uint8_t sha256[32];
	struct db_principal who;
	struct timespec at; /* CLOCK_MONOTONIC; who.name NULL: empty */
};

struct cad_worker {
	struct cad *cad;
	int index;
	struct event_base *base;
	struct evhttp *http;
	struct db *db; /* NULL while the database is unreachable; retried per request */
	pthread_t thread;
	int started;
	struct cad_token_seen tokens[CAD_TOKEN_CACHE];
	unsigned next_token;
};

/* The profiles in use (cad_profiles.c): the current version of each stored profile, parsed.
 * Superseded versions stay allocated until cad_free (an edit costs a few KB), so a request
 * may keep using the version it looked up while a newer one is swapped in. */
#define CAD_MAX_STORED_PROFILES 256
struct cad_profiles {
	pthread_mutex_t mu;
	struct ca_profile *cur[CAD_MAX_STORED_PROFILES];
	size_t n_cur;
	struct ca_profile **old;
	size_t n_old, cap_old;
	int loaded; /* synchronised with the database at least once */
	/* LISTEN hsmca_profiles on the main thread's loop; retried while the database is away. */
	struct db *listen_db;
	struct event *listen_ev, *retry_ev;
};

struct cad {
	struct cad_config *cfg;
	struct event_base *base; /* worker 0's: signals and the checkpoint timer run here */
	SSL_CTX *ssl;
	struct cad_worker workers[CAD_MAX_WORKERS];
	int n_workers;
	int port; /* the port bound (the configured one, or the kernel's choice for 0) */
	/* Guards what the workers share and may change: the authorities' keys and database ids,
	 * and the audit key. */
	pthread_mutex_t lock;
	struct db *db; /* the checkpoint timer's own connection (main thread only) */
	struct event *checkpoint_timer;
	_Atomic int64_t last_checkpoint_seq; /* written by the checkpoint timer, read by /metrics */
	/* TLS connections open now (counted when accepted, uncounted when their SSL is freed),
	 * and those refused for going over cfg->max_connections. */
	_Atomic int connections;
	_Atomic uint64_t connections_refused;
	/* EST enrolments waiting now for their device identity's enrolment lock (cad_est.c). */
	_Atomic int est_lock_waits;
	/* tls.client_crl, as last read (cad_client_crl.c); under lock */
	X509_CRL *client_crl;
	struct timespec client_crl_mtime;
	off_t client_crl_size;
	/* The CA core over cfg's authorities: issuance, revocation, group commit. */
	struct ca ca;
	/* ACME (cad_acme.c); NULL when acme.url is not configured. */
	struct acme_server *acme;
	struct cad_profiles profiles;
	/* The console's sign-in sessions (cad_session.h, cad_console.c). */
	struct cad_sessions sessions;
	/* keyd, for TOTP secrets (wrap, unwrap; cad_mfa.c); NULL when MFA is off. */
	struct keyd_client *keyd;
#ifdef HSMCA_FUZZING
	const char *fuzz_role; /* fuzz builds: every request authenticates with this role */
#endif
};

/* Roles as bits, for the route table. */
enum cad_role {
	CAD_ROLE_CA_ADMIN = 1 << 0,
	CAD_ROLE_ADMIN = 1 << 1,
	CAD_ROLE_OFFICER = 1 << 2,
	CAD_ROLE_AUDITOR = 1 << 3,
	CAD_ROLE_OPERATOR = 1 << 4,
	CAD_ROLE_RA = 1 << 5,
};
#define CAD_ROLE_ANY 0x3f
int cad_role_bit(const char *role);

#define CAD_MAX_ARGS 2

struct cad_req {
	struct cad *cad;
	struct cad_worker *w; /* the worker serving it: its database connection */
	struct evhttp_request *req;
	const char *action; /* the route's audit name, e.g. "certificate.revoke" */
	char path[512];
	char args[CAD_MAX_ARGS][256]; /* the route's {} segments, percent-decoded */
	struct evkeyvalq query;
	int query_parsed;
	struct db_principal who; /* who.name NULL: not authenticated */
	const char *auth_via;    /* "certificate" or "token" */
	/* who came from the worker's token cache (issuance only): token_sha256 is the token's
	 * hash, for the reservation to check again. When that check fails, or a decision on who
	 * goes against the caller, the handler sets stale_credentials instead of replying, and
	 * the request is served again with a fresh look-up (fresh_only). */
	int auth_cached, stale_credentials, fresh_only;
	uint8_t token_sha256[32];
	int replied;
	int status;     /* the reply's status */
	char error[48]; /* the reply's error code, for the audit entry of a denial */
	char detail[1024];
	char object[300]; /* what a denial was about; the path when not set */
	/* The SHA-256 of the credential that authenticated r (token or certificate DER). */
	uint8_t cred_sha256[32];
	/* Authenticated by the console's session cookie (cad_console.c): its value and a copy. */
	int in_session;
	char session_cookie[CAD_SESSION_TEXT_MAX];
	struct cad_session session;
	int stepped_up; /* a fresh TOTP code was accepted for this request (cad_mfa.c) */
	/* The answer comes later, from an event on the worker's loop (an EST enrolment waiting
	 * for its identity's lock, cad_est.c): the dispatcher neither answers nor counts it. */
	int deferred;
};

/* --- requests answered later (cad_held.c) ---
 * A request whose answer comes from an event on its worker's loop (an ACME read waiting for a
 * validation, an EST enrolment waiting for its identity's lock) is held: a copy of what
 * answering it needs, an event of that loop, and a place in a list that cad's stop empties.
 * Embed struct cad_held first in the holder's own struct. */
struct cad_held {
	struct cad_held *next;
	struct cad_req r; /* cad, w, req, action and path of the request held */
	struct event *ev; /* on r.w's loop; cb(fd, what, arg) of cad_held_init */
};
/* Define one as {.mu = PTHREAD_MUTEX_INITIALIZER}. */
struct cad_held_list {
	pthread_mutex_t mu; /* guards head; taken by cad_held_add, _unlink, _take */
	struct cad_held *head;
};

/* Copy from r what answering it later needs into h and make h's event on r's worker loop,
 * not yet added. 0, or -1 (h->ev NULL). */
int cad_held_init(struct cad_held *h, const struct cad_req *r, event_callback_fn cb, void *arg);
/* A fresh request r for serving h again from the start (what cad_held_init kept, the rest
 * zero). */
void cad_held_request(const struct cad_held *h, struct cad_req *r);
/* Put h on l (cad_held_push: with l->mu held by the caller). */
void cad_held_add(struct cad_held_list *l, struct cad_held *h);
void cad_held_push(struct cad_held_list *l, struct cad_held *h);
/* Take h off l, if it is there. */
void cad_held_unlink(struct cad_held_list *l, struct cad_held *h);
/* Take every request of cad off l: a list linked by next, for cad's stop to answer. */
struct cad_held *cad_held_take(struct cad_held_list *l, const struct cad *cad);

/* --- health and metrics (cad_metrics.c) --- */

/* Count one answered request: the route's action (a static string), its status, its time. */
void cad_metrics_request(const char *action, int code, double seconds);
/* Count one commit group (ca_group.c) of n requests' reservations (store 0) or stores. */
void cad_metrics_group(int store, size_t n);
void cad_h_metrics(struct cad_req *r);

/* --- replies, bodies and names (cad_reply.c: a leaf every handler may use) --- */

/* Log the answer to r (method, path, status, who). */
void cad_log_reply(const struct cad_req *r, int status);
/* Send obj (stolen) with status. */
void cad_reply_json(struct cad_req *r, int status, json_t *obj);
/* {"error": error, "detail": formatted}. */
void cad_reply_error(struct cad_req *r, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A database failure: 503 when unavailable, else 500; logs it. */
void cad_reply_db_error(struct cad_req *r, const struct db_err *err);
/* The request body parsed as a JSON object whose keys are all in allowed (NULL-terminated).
 * NULL after replying with a 4xx. */
json_t *cad_body_object(struct cad_req *r, const char *const *allowed);
/* Member name of body, when present, as a JSON list of at most max strings (what: what they
 * are, for the message) into out (pointers into body, valid while body lives), *n of them;
 * absent: none. 0, or -1 after a 400 naming the member. */
int cad_body_string_list(struct cad_req *r, const json_t *body, const char *name, const char *what,
                         const char **out, size_t max, size_t *n);
/* Parse the query string once: 0, or -1 when it does not parse or a name or value is not
 * UTF-8 text once decoded. */
int cad_query_parse(struct cad_req *r);
/* A query parameter, or NULL. */
const char *cad_query(struct cad_req *r, const char *name);
/* A principal's name: 1..128 of A-Z a-z 0-9 . _ @ + -, starting with a letter or digit. */
int cad_name_ok(const char *s);
/* A free-text label (a token's name): 1..128 bytes of UTF-8 text without control characters. */
int cad_label_ok(const char *s);
/* The database connection, reconnecting when needed; NULL after replying 503. */
struct db *cad_db(struct cad_req *r);
/* The HTTP status of a core outcome (0 for CA_STALE_CREDENTIALS: no answer). */
int cad_outcome_status(enum ca_outcome o);
/* Answer a core outcome other than CA_OK: the error as JSON, a denial when it names an
 * object, or, for stale credentials, no answer yet (the request is served again). */
void cad_reply_ca(struct cad_req *r, enum ca_outcome o, const struct ca_why *why);
/* Who asks, as the core sees r's principal (its strings point into r). */
struct ca_requester cad_requester(const struct cad_req *r);

/* Send text as a text/plain reply (EST's errors). */
void cad_reply_plain(struct cad_req *r, int status, const char *text);
/* Refuse with status and error, naming the object. Every 4xx answer to a route is audited as
 * denied once the request is done (cad_routes.c), this one with object. */
void cad_deny(struct cad_req *r, int status, const char *error, const char *object, const char *fmt,
              ...) __attribute__((format(printf, 5, 6)));
/* t (seconds since the epoch) as RFC 3339 UTC text in buf; NULL for 0. */
const char *cad_time_text(int64_t t, char *buf, size_t n);

/* --- authentication and audit (cad_auth.c) --- */

/* A fresh secret token: 256 random bits, base64url without padding, behind prefix (one that
 * secret scanners can recognise), into token (n bytes); its SHA-256, all that is stored, into
 * sha256. 0, or -1 (no randomness, or n too small). */
int cad_token_new(const char *prefix, char *token, size_t n, uint8_t sha256[32]);
/* Establish r->who from the client certificate or a bearer token. 0, or -1 after replying
 * 401/503 (and auditing the denial). */
int cad_authenticate(struct cad_req *r);
/* Audit r's 4xx answer as a denial. */
void cad_audit_denial(struct cad_req *r);
/* Append an audit entry for r's principal and action. detail may be NULL. Inside the caller's
 * transaction if one is open. */
enum db_status cad_audit(struct cad_req *r, const char *object, const char *outcome,
                         const char *detail, struct db_err *err);
/* The same as the last statement of the transaction open on r's connection, committing it in
 * the same round trip. On failure roll back (the transaction may have ended already). */
/* The audit entry of r's action on object (its strings point into r and the arguments). */
void cad_audit_entry(const struct cad_req *r, const char *object, const char *outcome,
                     const char *detail, struct db_audit_entry *e);
enum db_status cad_audit_commit(struct cad_req *r, const char *object, const char *outcome,
                                const char *detail, struct db_err *err);

/* Commit the change open in db together with r's audit entry (success, object, detail). 0, or
 * -1 after rolling back and replying with the database error. */
int cad_commit_with_audit(struct cad_req *r, struct db *db, const char *object, json_t *detail);

/* Serve one request on worker arg (evhttp's callback, cad_routes.c; public for the API fuzz
 * target). */
void cad_dispatch(struct evhttp_request *req, void *arg);

/* --- stored, versioned profiles (cad_profiles.c) --- */

/* Set up the profiles in use: store the configuration's profiles as version 1 when the
 * database has none, load every current version, and LISTEN for changes (retried while the
 * database is away). 0, or -1 with err. */
int cad_profiles_start(struct cad *cad, char *err, size_t errsz);
void cad_profiles_stop(struct cad *cad);
/* Read the current versions from db into the profiles in use (seeding first when the table
 * is empty). 0, or -1 with err. */
int cad_profiles_sync(struct cad *cad, struct db *db, char *err, size_t errsz);
/* The current version of profile name, or NULL when there is none usable here. When the
 * profiles were never loaded, they are loaded first over *db. Valid until cad_free. */
struct ca_profile *cad_profile_current(struct cad *cad, struct db *db, const char *name);
/* Seed the configuration's profiles into an empty table (with the audit entry) over db, and
 * check that the configuration's profiles agree with the stored ones (a difference is logged
 * as ignored). For hsmca-cad --issue too. 0, or -1 with err. */
int cad_profiles_seed(struct cad_config *cfg, struct db *db, int log_differences, char *err,
                      size_t errsz);
/* The current stored version of name parsed into p (cad_profile_clear it), for hsmca-cad
 * --issue. 0; 1 when there is no such profile; -1 with err. */
int cad_profile_load(struct cad_config *cfg, struct db *db, const char *name, struct ca_profile *p,
                     char *err, size_t errsz);
void cad_h_profile_create(struct cad_req *r);
void cad_h_profile_edit(struct cad_req *r);
void cad_h_profile_clone(struct cad_req *r);
void cad_h_profile_show(struct cad_req *r);

/* --- ACME (cad_acme.c) --- */

/* Set up cad->acme when the configuration has an acme: section. 0, or -1 with err. */
int cad_acme_new(struct cad *cad, char *err, size_t errsz);
void cad_acme_free(struct cad *cad);
/* Answer the ACME reads still waiting for a validation (before the event loops are freed). */
void cad_acme_stop_waits(struct cad *cad);
/* cad stops: every EST enrolment still waiting for its identity's lock is answered 503. */
void cad_est_stop_waits(struct cad *cad);
/* Serve a request under /acme/ (RFC 8555's own replies; its state changes audited). */
void cad_acme_serve(struct cad_req *r);
void cad_h_acme_eab_create(struct cad_req *r);
void cad_h_acme_eab_list(struct cad_req *r);
void cad_h_acme_eab_revoke(struct cad_req *r);
void cad_h_acme_incident_create(struct cad_req *r);

/* --- the console and its sessions (cad_console.c) --- */

/* Serve r when its path is /console or under /console/: 1 (answered), else 0. */
int cad_console_serve(struct cad_req *r);
/* 1 when r carries the session cookie (copied into r->session_cookie). */
int cad_session_cookie(struct cad_req *r);
/* Authenticate r by its session: 0 with *rc the principal look-up's status (r->who filled on
 * DB_OK), or -1 after replying 401. */
int cad_session_auth(struct cad_req *r, X509 *peer, struct db *db, struct db_err *err,
                     enum db_status *rc);
/* What a browser's request must also show once authenticated: for a state-changing request by
 * session, the session's X-CSRF-Token and an Origin; for any state-changing request, an Origin
 * (when sent) that is this server. 0, or -1 after replying 403. */
int cad_browser_checks(struct cad_req *r);
void cad_h_session_create(struct cad_req *r);
void cad_h_session_show(struct cad_req *r);
void cad_h_session_end(struct cad_req *r);
/* --- TOTP step-up (cad_mfa.c, docs/mfa.md) --- */

/* Set up cad->keyd when MFA is on. 0, or -1 with err. */
int cad_mfa_new(struct cad *cad, char *err, size_t errsz);
void cad_mfa_free(struct cad *cad);
/* 1 when role must confirm action (a route's action name) with a fresh code. */
int cad_mfa_required(const struct cad_config *cfg, const char *role, const char *action);
/* Before a state-changing request's handler: 0 when no code is needed or a valid one came
 * with it; -1 after answering 401 step-up, 403 (not enrolled) or 429 (throttled). */
int cad_mfa_step_up(struct cad_req *r);
/* 1 when some route that changes state has an action the pattern matches (cad_routes.c). */
int cad_route_action_known(const char *pattern);
void cad_h_mfa_status(struct cad_req *r);
void cad_h_mfa_enrol(struct cad_req *r);
void cad_h_mfa_confirm(struct cad_req *r);
void cad_h_mfa_disable(struct cad_req *r);
void cad_h_mfa_reset(struct cad_req *r);

/* --- handlers --- */

typedef void (*cad_handler)(struct cad_req *r);

void cad_h_health(struct cad_req *r);
/* What a principal may do to another (cad_principals.c): create or manage (disable, enable,
 * revoke tokens) one of target_role, or make a token for target_name (of target_role). */
enum cad_principal_op { CAD_OP_CREATE, CAD_OP_MANAGE, CAD_OP_MINT_TOKEN };
int cad_role_may(const char *actor_role, const char *actor_name, enum cad_principal_op op,
                 const char *target_role, const char *target_name);
void cad_h_health_details(struct cad_req *r);
void cad_h_whoami(struct cad_req *r);
/* Forget what the worker's token cache holds; forget r's token (cad_auth.c). */
void cad_token_cache_clear(struct cad_worker *w);
void cad_token_forget(struct cad_req *r);
void cad_h_principal_create(struct cad_req *r);
void cad_h_principal_list(struct cad_req *r);
void cad_h_principal_show(struct cad_req *r);
void cad_h_principal_disable(struct cad_req *r);
void cad_h_principal_enable(struct cad_req *r);
void cad_h_token_create(struct cad_req *r);
void cad_h_token_list(struct cad_req *r);
void cad_h_token_revoke(struct cad_req *r);
void cad_h_profile_list(struct cad_req *r);
void cad_h_cert_issue(struct cad_req *r);
void cad_h_cert_serverkeygen(struct cad_req *r); /* cad_keygen.c */
void cad_h_cert_recover(struct cad_req *r);      /* cad_recover.c */
/* Record a key.recovery approval request for serial (hex) with reason, or answer why not
 * (no quorum configured, no such certificate, no archived key). */
void cad_key_recovery_request(struct cad_req *r, const char *serial, const char *reason);
void cad_h_cert_show(struct cad_req *r);
void cad_h_cert_list(struct cad_req *r);
void cad_h_cert_revoke(struct cad_req *r);
void cad_h_cert_hold(struct cad_req *r);
void cad_h_cert_release(struct cad_req *r);
void cad_h_audit_verify(struct cad_req *r);
void cad_h_audit_export(struct cad_req *r);
void cad_h_authority_list(struct cad_req *r);
void cad_h_authority_retire(struct cad_req *r);
void cad_h_authority_settings_get(struct cad_req *r);
void cad_h_authority_settings_put(struct cad_req *r);
void cad_h_profile_enable(struct cad_req *r);
void cad_h_profile_disable(struct cad_req *r);
/* The dashboard, the reports and the backup runs (cad_reports.c, docs/reports.md). */
void cad_h_dashboard(struct cad_req *r);
void cad_h_report_issuance(struct cad_req *r);
void cad_h_report_expiring(struct cad_req *r);
void cad_h_report_principals(struct cad_req *r);
void cad_h_backup_list(struct cad_req *r);

/* --- signed audit checkpoints (cad_checkpoint.c) --- */

/* Sign the audit chain's head through keyd and record it, unless it is checkpointed already.
 * 0, or -1 with err filled. */
int cad_checkpoint_now(struct cad *cad, char *err, size_t errsz);
/* The DER that a checkpoint signs (docs/keyd-protocol.md): its length, 0 if it does not fit
 * (CAD_CHECKPOINT_DER_MAX always does). */
#define CAD_CHECKPOINT_DER_MAX 96
size_t cad_checkpoint_der(int64_t seq, const uint8_t hash[32], uint8_t *out);
/* Start the periodic checkpoint timer when the configuration asks for one. */
int cad_checkpoint_start(struct cad *cad);
/* Check every checkpoint's signature; fills the counts and, for the first bad one, its seq. */
enum db_status cad_checkpoint_verify(struct cad *cad, struct db *db, int64_t *valid,
                                     int64_t *invalid, int64_t *unchecked, int64_t *first_bad,
                                     struct db_err *err);

/* --- TLS (cad_tls.c) --- */

SSL_CTX *cad_tls_new(const struct cad_config *cfg, char *err, size_t errsz);
/* Read tls.client_crl when configured: 0, or -1 with err filled (cad_client_crl.c). */
int cad_client_crl_init(struct cad *cad, char *err, size_t errsz);
/* 1 when peer is on the operator-auth CA's CRL (read again when the file changed). */
int cad_client_cert_revoked(struct cad *cad, X509 *peer);
/* The verified client certificate of r's connection, or NULL. Not owned. */
X509 *cad_tls_peer(struct evhttp_request *req);
/* The TLS session of req's connection, or NULL. */
SSL *cad_request_ssl(struct evhttp_request *req);
/* 1 when req's connection was accepted beyond limits.max_connections (cad_http.c). */
int cad_conn_over_cap(struct evhttp_request *req);
/* A private key by OSSL_STORE URI or file path. */
EVP_PKEY *cad_load_key(const char *uri, char *err, size_t errsz);

/* A certificate as the API shows it (cad_certs.c). */
json_t *cad_cert_json(struct cad *cad, const struct db_cert *c);
/* Add to o, the JSON of c, its fields decoded ("decoded") and its authority's chain ("chain"),
 * for GET /certificates/{serial} (cad_certview.c). */
void cad_cert_view(struct cad *cad, const struct db_cert *c, json_t *o);

/* --- EST and devices (cad_est*.c) --- */

/* Serve a request under /.well-known/est/; it replies and audits its own refusals. */
void cad_est_serve(struct cad_req *r);
/* Trust the device-issuing CAs for client certificates besides the operator-auth CA, for EST
 * re-enrolment only (cad_est_tls.c). 0, or -1 with err filled. */
int cad_est_tls_setup(SSL_CTX *ctx, const struct cad_config *cfg, char *err, size_t errsz);
/* 1 if the connection's client certificate chains to a device-issuing CA rather than to the
 * operator-auth CA: such a certificate never authenticates to the API. */
int cad_est_peer_is_device(SSL *ssl);

void cad_h_prov_token_create(struct cad_req *r);
void cad_h_prov_token_list(struct cad_req *r);
void cad_h_prov_token_revoke(struct cad_req *r);
void cad_h_device_list(struct cad_req *r);
void cad_h_device_show(struct cad_req *r);
void cad_h_device_decommission(struct cad_req *r);

#endif
