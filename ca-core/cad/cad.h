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

#include "ca.h"
#include "sandbox.h"

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
	/* EST (cad_est_config.c): the profiles devices enrol in, the first one at
	 * /.well-known/est/ itself; none: EST is off. */
	struct ca_profile *est_profiles[CAD_MAX_PROFILES];
	size_t n_est_profiles;
	int est_token_max_days;
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
};

/* Read and check the whole file (certificates included). 0, or -1 with err filled. Free with
 * cad_config_free even after a failure. */
int cad_config_load(const char *path, struct cad_config *cfg, char *err, size_t errsz);
void cad_config_free(struct cad_config *cfg);
struct ca_profile *cad_profile_find(struct cad_config *cfg, const char *name);

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
