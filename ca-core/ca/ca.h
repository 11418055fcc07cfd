/*
 * The CA core: issuance and revocation without any transport. A protocol adapter (the HTTP
 * API, EST, `hsmca-cad --issue`, later ACME) parses and authenticates a request, hands it
 * here, and turns the outcome into its own reply. The core judges the request against its
 * profile, commits the serial and contents to the database before keyd signs (so that no
 * signed certificate is ever unknown to OCSP and CRL), signs through the keyd provider, and
 * stores the certificate with its audit entry. Concurrent issuances share their database
 * transactions (group commit, ca_group.c). No libevent and no HTTP here: outcomes are an enum
 * with a machine code and a human reason.
 */
#ifndef HSMCA_CA_H
#define HSMCA_CA_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "db.h"

#define CA_NAME_MAX 64
#define CA_PATH_MAX 512
#define CA_MAX_PATTERNS 32
#define CA_MAX_FIELDS 16
#define CA_MAX_EKUS 8
#define CA_MAX_POLICIES 8
#define CA_OID_MAX 63
/* How long a cad instance may go on with an authority's AIA settings before it reads them
 * again; the instance where an officer changed them reads them at the next issuance. */
#define CA_AIA_REFRESH_SECONDS 10

enum ca_san_kind { CA_SAN_DNS, CA_SAN_IP, CA_SAN_EMAIL, CA_SAN_URI, CA_SAN_KINDS };

struct ca_authority {
	char name[CA_NAME_MAX + 1];
	char cert_path[CA_PATH_MAX];
	char chain_path[CA_PATH_MAX]; /* "" when the certificate is a root */
	char key_uri[CA_PATH_MAX];    /* keyd:label=NAME */
	char key_label[CA_NAME_MAX + 1];
	X509 *cert;
	STACK_OF(X509) * chain; /* certificates above cert, in order */
	EVP_PKEY *key;          /* loaded through keyd on first use; NULL while keyd is away */
	int32_t db_id;          /* 0 until registered in the database */
	/* CRL distribution point of issued certificates: <crl_base_url><name>.crl, or with
	 * crl_shards > 1 <crl_base_url><name>-<shard>.crl (hsmca-crld, docs/crld.md). "": none.
	 * The configuration's values until ca_authorities_ready has the database's: the one
	 * source that crld publishes by (a configuration that disagrees is refused). */
	char crl_base_url[CA_PATH_MAX];
	int crl_shards;
	/* Authority Information Access of issued certificates (OCSP URLs separated by one space,
	 * and the caIssuers URL; "": none), from the database's settings (migration 0011), the
	 * only source: read again when aia_read is CA_AIA_REFRESH_SECONDS old or was cleared by
	 * ca_authority_settings_changed. Guarded by the owner's lock. */
	char ocsp_urls[DB_OCSP_URLS_MAX * (DB_AIA_URL_MAX + 1)];
	char ca_issuers_url[DB_AIA_URL_MAX + 1];
	int64_t aia_read;
};

struct ca_key_profile {
	char name[CA_NAME_MAX + 1];
	int rsa_min_bits, rsa_max_bits; /* 0 0: no RSA */
	int p256, p384;
};

struct ca_profile {
	char name[CA_NAME_MAX + 1];
	/* The stored version this is (docs/profiles.md: each change makes a new one); every
	 * certificate records it. 0: not from the database (a configuration file being read). */
	int32_t version;
	struct ca_authority *authority;
	struct ca_key_profile *key_profile;
	int max_validity_days;
	unsigned key_usage; /* X509v3 KU_* bits */
	int eku[CA_MAX_EKUS];
	size_t n_eku;
	int subject_fields[CA_MAX_FIELDS]; /* NIDs allowed in the subject, each at most once */
	size_t n_subject_fields;
	/* Value patterns of subject_fields[i] (fnmatch, case-insensitive); none: any value.
	 * emailAddress is judged by the email SAN patterns instead. */
	char *subject_patterns[CA_MAX_FIELDS][CA_MAX_PATTERNS];
	size_t n_subject_patterns[CA_MAX_FIELDS];
	int subject_cn_required;
	char *san_patterns[CA_SAN_KINDS][CA_MAX_PATTERNS];
	size_t n_san_patterns[CA_SAN_KINDS];
	int san_required;
	/* certificatePolicies (RFC 5280 4.2.1.4, BR 7.1.2.7.9): dotted policy OIDs, and a CPS URI
	 * qualifying each policy that is not a CA/Browser Forum reserved one ("": none). */
	char policies[CA_MAX_POLICIES][CA_OID_MAX + 1];
	size_t n_policies;
	char cps_uri[CA_PATH_MAX];
	/* A validity that would end after the issuing CA's notAfter: 0 refuses the request
	 * (the default), 1 clamps notAfter to the CA's. */
	int clamp_not_after;
	/* Server-side key generation (POST /api/v1/certificates/serverkeygen) may use this
	 * profile; its keys are archived under the key_archive key (docs/key-recovery.md). */
	int server_keygen;
	int archive_key;
};

/* --- the core's state, shared by every thread that issues --- */

/* Database work that requests queue for one leader to do in one transaction (ca_group.c). */
struct ca_group {
	pthread_mutex_t mu;
	struct ca_group_job *head, **tail; /* waiting, oldest first */
	int leading, max_leading;          /* leaders at work, and how many may be */
};

struct ca {
	struct ca_authority *authorities;
	size_t n_authorities;
	const char *database; /* libpq connection string for ca_db_open; "" uses the environment */
	/* The owner's lock: guards the authorities' keys and database ids (which the owner may
	 * read too, under the same lock). */
	pthread_mutex_t *lock;
	/* Opens an authority's key by its URI (keyd:label=NAME). */
	EVP_PKEY *(*load_key)(const char *uri, char *err, size_t errsz);
	/* Told of each commit group of n reservations (store 0) or stores; may be NULL. */
	void (*count_group)(int store, size_t n);
	struct ca_group reserve_group, store_group;
};

/* Reservation groups that may be at the database at once. */
#define CA_RESERVE_LEADERS 2

/* Set up ca over authorities (not copied). 0, or -1. Undo with ca_fini. */
int ca_init(struct ca *ca, struct ca_authority *authorities, size_t n, const char *database,
            pthread_mutex_t *lock, EVP_PKEY *(*load_key)(const char *, char *, size_t),
            void (*count_group)(int store, size_t n));
void ca_fini(struct ca *ca);

/* *db, connecting first when it is NULL (and keeping the connection there). DB_OK, or the
 * failure in err. */
enum db_status ca_db_open(const struct ca *ca, struct db **db, struct db_err *err);

/* Make sure every authority's key is loaded and the authority registered in the database
 * (ca_authorities.c); on failure err says which and why. Returns 0, or -1 (keyd), -2 (the
 * database), -3 (the database holds another certificate under an authority's name). */
int ca_authorities_ready(struct ca *ca, struct db *db, char *err, size_t errsz);
/* An officer changed authority name's settings: read its AIA again before the next issuance. */
void ca_authority_settings_changed(struct ca *ca, const char *name);
/* a's key with a reference of the caller's own (EVP_PKEY_free it), or NULL while keyd has not
 * given it. */
EVP_PKEY *ca_authority_key(struct ca *ca, struct ca_authority *a);
/* Signing with key failed: keyd may have restarted, so load a's key afresh next time. */
void ca_authority_key_failed(struct ca *ca, struct ca_authority *a, EVP_PKEY *key);

/* --- outcomes --- */

enum ca_outcome {
	CA_OK,                /* issued, or the status changed */
	CA_REFUSED,           /* the request does not fit: bad CSR, validity, name, serial... */
	CA_NOT_GRANTED,       /* the requester may not use this profile */
	CA_NOT_FOUND,         /* no such certificate */
	CA_AMBIGUOUS,         /* the serial names certificates of several authorities */
	CA_WRONG_STATE,       /* the certificate's status does not allow the change */
	CA_AUTHORITY_RETIRED, /* the authority issues no more: retired, or its certificate expired
	                       * or not yet valid */
	CA_PROFILE_DISABLED,  /* an admin switched the profile off */
	CA_STALE_CREDENTIALS, /* cached credentials no longer hold: ask again with fresh ones */
	CA_KEYD_UNAVAILABLE,  /* keyd did not load or use the key */
	CA_DB_UNAVAILABLE,    /* the database is unreachable */
	CA_CONFIG_ERROR,      /* the configuration does not match the database */
	CA_INTERNAL,          /* anything else: out of memory, a database error */
};

/* Why an outcome is not CA_OK: a machine code (the API's error codes, such as "bad-csr" or
 * "authority-retired"), a human reason, and for a refusal of the requester's authority the
 * object it was about ("" otherwise). */
struct ca_why {
	char code[48];
	char reason[1024];
	char object[300];
};

/* A database failure as an outcome: CA_DB_UNAVAILABLE or CA_INTERNAL, logged. */
enum ca_outcome ca_db_failure(struct ca_why *why, const struct db_err *err);

/* --- who asks --- */

enum ca_requester_kind {
	CA_REQUESTER_PRINCIPAL, /* an API principal (certificate or token) */
	CA_REQUESTER_DEVICE,    /* an EST device (provisioning token or its certificate) */
	CA_REQUESTER_LOCAL,     /* a local user on the CA host (hsmca-cad --issue) */
	CA_REQUESTER_ACCOUNT,   /* a protocol account (ACME) whose identifiers were validated */
};

struct ca_requester {
	enum ca_requester_kind kind;
	const char *name; /* the audit log's actor and the certificate's requester */
	const char *role; /* the audit log's role: a principal's, "device", "local" */
	/* The profiles it may use, comma-separated; NULL: any the adapter offers. */
	const char *profiles;
	/* The credentials came from a cache: the API token's hash, checked again in the
	 * reservation's own statement; NULL when they were looked up fresh. */
	const uint8_t *token_sha256;
};

/* --- issuance (ca_issue.c) --- */

struct ca_csr;

struct ca_issue_request {
	struct ca_requester who;
	const char *action; /* the audit entry's action, e.g. "certificate.issue" */
	struct ca_profile *profile;
	/* The request: csr, already judged against profile (ca_csr_check), or else csr_pem,
	 * judged here. Its subject and SANs are what the certificate gets. */
	const struct ca_csr *csr;
	const char *csr_pem;
	/* 1..profile->max_validity_days; 0 for the profile's default: max_validity_days, ending
	 * no later than the issuing CA's notAfter whatever the profile's option (the requester
	 * asked for no particular length). */
	int64_t validity_days;
	/* An explicit validity (ACME's newOrder notBefore/notAfter), seconds since the epoch; 0:
	 * none (notBefore now, notAfter from validity_days). With not_after the certificate
	 * spans not_before (or now) to not_after: after now, at most the profile's
	 * max_validity_days long and inside the issuing CA's validity, else refused. With only
	 * not_before, validity_days count from it. */
	int64_t not_before, not_after;
	json_t *audit_detail; /* borrowed: fields added to the audit entry's detail; NULL */
	/* A step inside the transaction that stores the certificate, before its audit entry
	 * (EST's device record); an error rolls both back. NULL for none. */
	enum db_status (*in_tx)(struct db *db, int64_t cert_id, void *arg, struct db_err *err);
	void *in_tx_arg;
	/* With in_tx: receives the certificate's serial in hex (2 * DB_SERIAL_MAX + 1 bytes)
	 * before in_tx runs (key archival binds its ciphertext to it). NULL: not wanted. */
	char *in_tx_serial;
	/* A change of the caller's committed with the certificate, in the round trip that stores
	 * it (an ACME order's move to valid: db_cert_store_with); its outcome is the caller's to
	 * read (db_with_outcome). NULL for none; not with in_tx. */
	struct db_with *with_store;
	/* A change of the caller's committed with the serial's reservation, in its round trip
	 * (an ACME order's move to processing: db_cert_reserve_with). If it finds nothing to
	 * change, nothing is reserved or signed and ca_issue returns CA_WRONG_STATE with its
	 * reason; its outcome is the caller's to read (db_with_outcome: DB_OK when it was
	 * committed). NULL for none; not with in_tx. */
	struct db_with *with_reserve;
};

struct ca_issue_result {
	X509 *cert; /* CA_OK: the certificate (ca_issue_result_clear frees it) */
	/* Its issuer: authority->cert, then authority->chain, make the chain above it. */
	const struct ca_authority *authority;
	char serial[2 * DB_SERIAL_MAX + 1];
	int64_t id, not_before, not_after; /* the validity (also when refused after it was set) */
	char subject[1024];                /* RFC 2253 */
	struct ca_why why;                 /* not CA_OK: why */
};

/* The keyUsage bits (X509v3 KU_*) a certificate for key gets of a profile's key_usage: an EC
 * key never keyEncipherment or dataEncipherment (RFC 5480 3), keyAgreement only when the
 * profile asks for it; an RSA key never keyAgreement. */
unsigned ca_key_usage_for(unsigned key_usage, EVP_PKEY *key);

/* Lint what profile p would issue before it is stored: for each key type its key profile
 * allows, a throwaway software key, a sample request with a subject and SANs the profile
 * accepts (names made from its patterns), built as issuance builds it (the authority's real
 * issuer name, AIA and CRL distribution point) and linted with the linter issuance uses. 0
 * when every sample passes; 1 with the failing rule's name in rule and the finding in why; -1
 * when no sample could be made (why says so). */
int ca_profile_lint(struct ca *ca, const struct ca_profile *p, char *rule, size_t rn, char *why,
                    size_t n);

/* Issue one certificate for req on *db (connected first when NULL). */
enum ca_outcome ca_issue(struct ca *ca, struct db **db, const struct ca_issue_request *req,
                         struct ca_issue_result *res);
void ca_issue_result_clear(struct ca_issue_result *res);

/* --- revocation, hold and release (ca_status.c) --- */

struct ca_status_request {
	struct ca_requester who;
	const char *action; /* the audit entry's action, e.g. "certificate.revoke" */
	const char *serial; /* in hex, as the requester gave it (the audit entry's object) */
	/* ca_revoke only: the CRL reason code (RFC 5280 5.3.1, not certificateHold or
	 * removeFromCRL), and the invalidity date, 0 for none, with its text for the audit. */
	int reason;
	int64_t invalidity_date;
	const char *invalidity_text;
};

struct ca_status_result {
	struct db_cert cert; /* CA_OK: the certificate as it is now (db_cert_clear it either way) */
	struct ca_why why;
};

/* The certificate with serial (hex) that who may see, into cert (db_cert_clear it). */
enum ca_outcome ca_cert_find(struct ca *ca, struct db **db, const struct ca_requester *who,
                             const char *serial, struct db_cert *cert, struct ca_why *why);
/* Change a certificate's status, with its audit entry, committed before returning. */
enum ca_outcome ca_revoke(struct ca *ca, struct db **db, const struct ca_status_request *req,
                          struct ca_status_result *res);
enum ca_outcome ca_hold(struct ca *ca, struct db **db, const struct ca_status_request *req,
                        struct ca_status_result *res);
enum ca_outcome ca_release(struct ca *ca, struct db **db, const struct ca_status_request *req,
                           struct ca_status_result *res);

/* A SAN kind's name in configuration and JSON: "dns", "ip", "email", "uri". */
const char *ca_san_kind_name(enum ca_san_kind k);
/* 1 when profile is in the comma-separated list. */
int ca_profile_listed(const char *list, const char *profile);

#endif
