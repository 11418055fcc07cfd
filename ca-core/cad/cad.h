/*
 * hsmca-cad: the CA service. Configuration (cad_config.c), TLS (cad_tls.c), the HTTP server
 * (cad_http.c), routing (cad_routes.c), replies and bodies (cad_reply.c), authentication,
 * roles and the audit trail (cad_auth.c), handlers per resource (cad_principals.c,
 * cad_certs.c, cad_settings.c, cad_issue.c, cad_est.c), each an adapter over the CA core
 * (ca.h): issuance, revocation and their audit without HTTP. docs/cad.md describes the
 * configuration and docs/api.md the API.
 */
#ifndef HSMCA_CAD_H
#define HSMCA_CAD_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <jansson.h>

#include "ca.h"
#include "sandbox.h"
#include "yconf.h"

#define CAD_NAME_MAX CA_NAME_MAX
#define CAD_PATH_MAX CA_PATH_MAX
#define CAD_MAX_AUTHORITIES 16
#define CAD_MAX_PROFILES 64
#define CAD_MAX_APPROVAL_KINDS 16

/* One kind's quorum approval policy (approvals: in the configuration, docs/approvals.md). */
struct cad_approval_policy {
	char kind[65];
	int required;       /* approvals needed; 1: the operation runs at once */
	char approvers[64]; /* comma-separated roles */
};

/* TOTP step-up (cad_mfa.c, docs/mfa.md): the actions one role must confirm with a fresh code. */
#define CAD_MFA_MAX_RULES 32
#define CAD_MFA_ROLES 6 /* in cad_role_bit's order: ca-admin, admin, officer, auditor, ... */
struct cad_mfa_policy {
	int set; /* named in mfa.step_up; else the defaults apply */
	size_t n;
	char rules[CAD_MFA_MAX_RULES][64];
};

#define CAD_ACME_ALT_CHAINS_MAX 3

struct cad_config {
	char listen_address[64];
	int listen_port;
	int workers; /* event loops, each with its own database connection (1..64) */
	char tls_cert[CAD_PATH_MAX];
	char tls_key[CAD_PATH_MAX]; /* a file or a keyd: URI */
	char tls_client_ca[CAD_PATH_MAX];
	char tls_client_crl[CAD_PATH_MAX]; /* "" for none: the operator-auth CA's CRL */
	char database[1024]; /* libpq connection string; "" uses libpq's environment */
	size_t max_body_bytes;
	size_t max_header_bytes;
	int timeout_seconds;
	int token_max_days;
	/* Connections served at once (limits.max_connections); one more is answered 503. */
	int max_connections;
	/* The longest period a report covers, in days (limits.report_max_days; docs/reports.md). */
	int report_max_days;
	struct sandbox_config sandbox; /* user:, group:, seccomp: */
	/* Signed audit checkpoints: none when audit_key_uri is "". */
	char audit_key_uri[CAD_PATH_MAX];
	char audit_key_label[CAD_NAME_MAX + 1];
	int audit_checkpoint_seconds;
	EVP_PKEY *audit_key; /* loaded through keyd on first use */
	/* keyd's AES key that archived subscriber keys are wrapped under (key_archive.key);
	 * "": no archival (docs/key-recovery.md). */
	char key_archive_label[CAD_NAME_MAX + 1];
	struct ca_authority authorities[CAD_MAX_AUTHORITIES];
	size_t n_authorities;
	struct ca_key_profile key_profiles[CAD_MAX_PROFILES];
	size_t n_key_profiles;
	struct ca_profile profiles[CAD_MAX_PROFILES];
	size_t n_profiles;
	/* Each configuration profile as JSON text (the file's field names): what hsmca-cad
	 * stores as version 1 on its first start against an empty profile table. Once stored,
	 * the database's versions are the profiles in use (cad_profiles.c). */
	char *profile_json[CAD_MAX_PROFILES];
	/* EST (cad_est_config.c): the profiles devices enrol in, the first one at
	 * /.well-known/est/ itself; none: EST is off. */
	struct ca_profile *est_profiles[CAD_MAX_PROFILES];
	size_t n_est_profiles;
	int est_token_max_days;
	/* How long an enrolment waits for another enrolment of its device identity before it is
	 * answered 503 with Retry-After (est.lock_wait_seconds). */
	int est_lock_wait_seconds;
	/* ACME (cad_acme.c, docs/acme.md): served under /acme/ when acme_url is not "". */
	char acme_url[512]; /* the ACME root as clients reach it, e.g. https://host:8443/acme */
	char acme_terms_url[512];
	char acme_website[512];
	int acme_eab_required;
	long acme_nonce_store;
	int acme_eab_max_days;
	/* Orders (docs/acme.md): taken only with a validator (hsmca-acmevald's socket). */
	char acme_validator[256];
	long acme_validation_timeout_ms;
	long acme_authz_reuse;     /* seconds a valid authorization is reused */
	long acme_order_lifetime;  /* seconds an order (and a new authorization) lives */
	long acme_orders_per_hour; /* per account */
	long acme_pending_authz;   /* pending authorizations per account */
	struct ca_profile *acme_profiles[CAD_MAX_PROFILES]; /* the first is the default */
	size_t n_acme_profiles;
	/* Quorum approvals (cad_approvals.c): kinds not listed need 1 (none). */
	struct cad_approval_policy approvals[CAD_MAX_APPROVAL_KINDS];
	size_t n_approvals;
	int approval_expiry_seconds; /* how long a request waits for its approvals */
	/* The web console (console:, docs/console.md): served under /console/ when enabled;
	 * its sessions end after session_idle_seconds unused or session_max_seconds in all. */
	int console_enabled;
	int session_idle_seconds, session_max_seconds, max_sessions;
	/* TOTP step-up (the "mfa:" section, cad_mfa.c): off when mfa_wrap_key is "". */
	char mfa_wrap_key[CAD_NAME_MAX + 1]; /* keyd's AES key for the secrets (wrap, unwrap) */
	char mfa_issuer[64];                 /* the otpauth issuer authenticator apps show */
	int mfa_max_failures;                /* wrong codes before 429 ... */
	int mfa_window_seconds;              /* ... within this many seconds */
	struct cad_mfa_policy mfa_step_up[CAD_MFA_ROLES];
	/* Alternate chains offered at certificate download (Link rel="alternate"): for the
	 * authority at index authority, the certificates that follow the leaf in that chain
	 * (e.g. the issuing CA cross-signed by another root), as PEM text (malloc). */
	struct cad_acme_chain {
		size_t authority;
		char *pem;
	} acme_alt_chains[CAD_ACME_ALT_CHAINS_MAX];
	size_t n_acme_alt_chains;
};

/* Read and check the whole file (certificates included). 0, or -1 with err filled. Free with
 * cad_config_free even after a failure. */
int cad_config_load(const char *path, struct cad_config *cfg, char *err, size_t errsz);
void cad_config_free(struct cad_config *cfg);
struct ca_profile *cad_profile_find(struct cad_config *cfg, const char *name);
/* Read and check one profile from mapping m into p (zeroed by the caller): the one check of a
 * profile's fields, for the configuration file and for profiles sent to the API (as JSON,
 * cad_profile_from_json) alike. Its authority and key profile must be among cfg's. 0, or -1
 * with y->err. Free what it holds with cad_profile_clear. */
int cad_profile_parse(struct yconf *y, yaml_node_t *m, struct cad_config *cfg,
                      struct ca_profile *p);
void cad_profile_clear(struct ca_profile *p);
/* A profile body (a JSON object with the configuration's field names) checked into p, as
 * cad_profile_parse checks a file's: bounded (nesting, sizes, counts) before anything else.
 * 0, or -1 with err naming the field and the problem. */
int cad_profile_from_json(struct cad_config *cfg, const json_t *body, struct ca_profile *p,
                          char *err, size_t errsz);

/* Register the first ca-admin principal, identified by the client certificate in cert_path,
 * on a database that has none (cad_bootstrap.c). 0, or -1 with err filled. */
int cad_bootstrap_admin(const struct cad_config *cfg, const char *name, const char *cert_path,
                        char *err, size_t errsz);

struct cad;

/* Issue one certificate from a PEM CSR with profile, valid for days, without the HTTP server
 * (cad_offline.c): the API's own path, audited as the local user. The certificate goes to out
 * as PEM. 0, or -1 with err filled. */
int cad_issue_offline(struct cad_config *cfg, const char *profile, const char *csr_pem, int days,
                      FILE *out, char *err, size_t errsz);

/* Set up TLS, the listener and the database connection (which may be down: it is retried per
 * request). 0, or -1 with err filled. */
int cad_new(struct cad_config *cfg, struct cad **out, char *err, size_t errsz);
/* Serve until cad_stop (the daemon calls it on SIGTERM and SIGINT). */
int cad_run(struct cad *cad);
/* Ask every event loop to finish what it is doing and return; from any thread. */
void cad_stop(struct cad *cad);
/* Worker 0's event base, on which cad_run runs: where the daemon watches signals. */
struct event_base *cad_base(struct cad *cad);
void cad_free(struct cad *cad);

#endif
