/*
 * hsmca's PostgreSQL data layer: connection, schema migrations, authorities, the certificate
 * lifecycle (reserve before signing, then issued or failed; revoke, hold, release), the
 * hash-chained audit log and revocation announcements. docs/database.md describes the schema.
 *
 * Every value reaches the server as a statement parameter; no SQL text is built from input.
 * Every function returns DB_OK or fills *err (what, which object, why) and returns its status.
 * A connection is used by one thread at a time.
 *
 * Transactions: a function that changes several rows runs in the caller's transaction when
 * one is open (db_begin), else in its own; so a state change and its audit entry can be
 * committed together.
 */
#ifndef HSMCA_DB_H
#define HSMCA_DB_H

#include <stddef.h>
#include <stdint.h>

enum db_status {
	DB_OK = 0,
	DB_ERR_UNAVAILABLE, /* cannot reach the server, or the connection broke */
	DB_ERR_QUERY,       /* the server refused a statement (SQLSTATE in err.sqlstate) */
	DB_ERR_CONFLICT,    /* a uniqueness constraint, e.g. the serial exists for this issuer */
	DB_ERR_NOT_FOUND,   /* no such row */
	DB_ERR_INVALID,     /* bad input, refused before anything was sent */
	DB_ERR_STATE,       /* the row is not in a state that allows the change */
	DB_ERR_SCHEMA,      /* schema missing, newer than this build, or diverged from it */
};

struct db_err {
	enum db_status status;
	char sqlstate[6]; /* the server's SQLSTATE when it refused, else "" */
	char msg[512];
};

struct db;

/* --- connection (db_conn.c) --- */

/* conninfo: a libpq connection string or URI; NULL or "" uses libpq's environment
 * (PGHOST, PGPORT, PGDATABASE, PGUSER, ...). The session gets synchronous_commit on (unless
 * it is stricter already), so a commit that returned is durable. */
enum db_status db_connect(const char *conninfo, struct db **out, struct db_err *err);
void db_close(struct db *db);
/* The libpq connection, for callers that need it (e.g. its socket for an event loop). */
struct pg_conn *db_pgconn(struct db *db);

enum db_status db_begin(struct db *db, struct db_err *err);
enum db_status db_commit(struct db *db, struct db_err *err);
/* Never fails in a way the caller could act on; a broken connection is reset later. */
void db_rollback(struct db *db);

/* --- migrations (db_migrate.c) --- */

/* The newest schema version this build knows. */
int db_schema_latest(void);
/* The database's schema version; 0 when it has none yet. */
enum db_status db_schema_version(struct db *db, int *version, struct db_err *err);
/* Called after each migration is committed. */
typedef void (*db_migrate_cb)(void *arg, int version, const char *name);
/* Apply every pending migration, each in its own transaction, serialised against concurrent
 * migrators. Refuses (DB_ERR_SCHEMA) a database newer than this build or one whose applied
 * migrations differ from this build's. *applied counts what was applied (0 when current). */
enum db_status db_migrate(struct db *db, db_migrate_cb cb, void *arg, int *applied,
                          struct db_err *err);

/* --- authorities (db_authorities.c) --- */

enum db_authority_status { DB_AUTH_ACTIVE, DB_AUTH_RETIRED };

struct db_authority {
	int32_t id;
	char *name;
	char *subject; /* text form, e.g. RFC 2253 */
	uint8_t *subject_der;
	size_t subject_der_len;
	uint8_t *ski;
	size_t ski_len;
	uint8_t *cert_der;
	size_t cert_der_len;
	char *key_label; /* keyd key label */
	enum db_authority_status status;
	int64_t created_at; /* seconds since the epoch */
};

/* Register an authority (status active) and its CRL number counter. Fields read: name,
 * subject, subject_der, ski, cert_der, key_label. DB_ERR_CONFLICT if the name exists. */
enum db_status db_authority_add(struct db *db, const struct db_authority *a, int32_t *id,
                                struct db_err *err);
enum db_status db_authority_find(struct db *db, const char *name, struct db_authority *out,
                                 struct db_err *err);
void db_authority_clear(struct db_authority *a);

/* --- run-time settings: authorities retired, profiles switched off, CRL and OCSP settings
 * (db_settings.c) --- */

/* Every registered authority, by name; the DER fields are left empty. Free with
 * db_authority_list_free. */
enum db_status db_authority_list(struct db *db, struct db_authority **out, size_t *n,
                                 struct db_err *err);
void db_authority_list_free(struct db_authority *list, size_t n);
/* active -> retired, for good. *id is the authority's. DB_ERR_NOT_FOUND, DB_ERR_STATE when
 * retired already. Inside the caller's transaction if one is open. */
enum db_status db_authority_retire(struct db *db, const char *name, int32_t *id,
                                   struct db_err *err);
/* Whether issuance may go on: *retired when the authority is retired, *enabled 0 when an
 * admin switched the profile off. */
enum db_status db_issuance_allowed(struct db *db, int32_t authority_id, const char *profile,
                                   int *retired, int *enabled, struct db_err *err);
/* A profile's switch (1 when no admin ever set it). */
enum db_status db_profile_enabled(struct db *db, const char *profile, int *enabled,
                                  struct db_err *err);
enum db_status db_profile_set_enabled(struct db *db, const char *profile, int enabled,
                                      const char *by, struct db_err *err);

/* --- certificate profiles, versioned (db_profiles.c, migration 0020) --- */

#define DB_PROFILE_NAME_MAX 64
#define DB_PROFILE_BODY_MAX 16384
/* Announced after each change to a profile (payload: its name). */
#define DB_PROFILE_CHANNEL "hsmca_profiles"

/* One version of a profile. */
struct db_profile_version {
	char name[DB_PROFILE_NAME_MAX + 1];
	int32_t version; /* this version */
	int32_t current; /* the profile's current version */
	char *body;      /* the profile as JSON text (the configuration's field names) */
	char created_by[201];
	int64_t created_at;
	int enabled; /* profile_settings' switch (1 when never set) */
};
void db_profile_version_clear(struct db_profile_version *v);
void db_profile_list_free(struct db_profile_version *list, size_t n);
/* Every profile's current version, by name. */
enum db_status db_profile_list(struct db *db, struct db_profile_version **out, size_t *n,
                               struct db_err *err);
/* Version version of profile name (0: its current one). DB_ERR_NOT_FOUND. */
enum db_status db_profile_get(struct db *db, const char *name, int32_t version,
                              struct db_profile_version *out, struct db_err *err);
/* The versions of name, newest first, without their bodies; none when it does not exist. */
enum db_status db_profile_versions(struct db *db, const char *name, struct db_profile_version **out,
                                   size_t *n, struct db_err *err);
/* Store body (checked JSON text) as a new version of name: old_version 0 creates the profile
 * at version 1 (DB_ERR_CONFLICT when it exists); else the profile must still be at
 * old_version (DB_ERR_STATE otherwise) and moves to old_version + 1. *new_version gets the
 * number. Inside the caller's transaction if one is open. */
enum db_status db_profile_store(struct db *db, const char *name, const char *body, const char *by,
                                int32_t old_version, int32_t *new_version, struct db_err *err);
/* In the caller's open transaction: when the profile table is empty, store each of the n
 * bodies as version 1 of its name and set *seeded to n; else change nothing (*seeded 0).
 * Concurrent callers are serialised by a table lock, so only one seeds. */
enum db_status db_profiles_seed(struct db *db, const char *const *names, const char *const *bodies,
                                size_t n, const char *by, int *seeded, struct db_err *err);
/* LISTEN on DB_PROFILE_CHANNEL; then db_profiles_changed counts what arrived (without
 * waiting). */
enum db_status db_profiles_listen(struct db *db, struct db_err *err);
enum db_status db_profiles_changed(struct db *db, int *got, struct db_err *err);

#define DB_KEY_LABEL_MAX 64
#define DB_CRL_URL_MAX 400
#define DB_AIA_URL_MAX 400 /* one OCSP or caIssuers URL */
#define DB_OCSP_URLS_MAX 3

/* An authority's CRL and OCSP settings, for crld and ocspd. */
struct db_authority_settings {
	int64_t crl_next_update_seconds; /* nextUpdate - thisUpdate of each full CRL */
	int64_t delta_crl_seconds;       /* 0: no delta CRLs */
	int64_t ocsp_validity_seconds;   /* nextUpdate - thisUpdate of each OCSP response */
	int64_t ocsp_nonce_rate_limit;   /* nonce requests per second answered; 0: no limit */
	/* A keyd key label for delegated OCSP signing; "": the CA's own key signs. */
	char ocsp_signer_key_label[DB_KEY_LABEL_MAX + 1];
	/* Where certificates' CRL distribution point points and which CRLs crld publishes:
	 * <crl_base_url><ca>.crl, or with crl_shards (2..256) <crl_base_url><ca>-<shard>.crl.
	 * "" (and 0): none stored. The only source of both for cad and crld (migration 0010). */
	char crl_base_url[DB_CRL_URL_MAX + 1];
	int64_t crl_shards;
	/* Authority Information Access of the certificates cad issues (migration 0011): up to
	 * DB_OCSP_URLS_MAX http URLs separated by one space, and the caIssuers URL. "": none. */
	char ocsp_urls[DB_OCSP_URLS_MAX * (DB_AIA_URL_MAX + 1)];
	char ca_issuers_url[DB_AIA_URL_MAX + 1];
	/* Whether the authority's full CRL carries an Issuing Distribution Point (migration
	 * 0015): 1 or 0, or -1 when none is stored (hsmca-crld's configuration decides, and
	 * stores its choice through db_full_crl_idp_claim). */
	int full_crl_idp;
	/* Read only: nobody stored settings yet; who stored them last, and when. */
	int is_default;
	char updated_by[129];
	int64_t updated_at;
};
/* The defaults an authority has until an officer stores settings. */
void db_authority_settings_default(struct db_authority_settings *s);
enum db_status db_authority_settings_get(struct db *db, int32_t authority_id,
                                         struct db_authority_settings *out, struct db_err *err);
/* hsmca-crld: store idp (0 or 1) as the authority's full_crl_idp where none is stored, and
 * give the stored value in *stored (so a configuration that disagrees can be refused). */
enum db_status db_full_crl_idp_claim(struct db *db, int32_t authority_id, int idp, int *stored,
                                     struct db_err *err);
/* Store (insert or replace); the database's checks refuse out-of-range values with
 * DB_ERR_QUERY. Inside the caller's transaction if one is open. */
enum db_status db_authority_settings_put(struct db *db, int32_t authority_id,
                                         const struct db_authority_settings *s, const char *by,
                                         struct db_err *err);

/* --- certificates (db_certs.c) --- */

#define DB_SERIAL_MAX 20
#define DB_SANS_MAX 256

enum db_cert_status {
	DB_CERT_RESERVED,
	DB_CERT_ISSUED,
	DB_CERT_FAILED,
	DB_CERT_REVOKED,
	DB_CERT_HOLD,
};
const char *db_cert_status_name(enum db_cert_status s);
/* -1 for an unknown name. */
int db_cert_status_parse(const char *name);

enum db_san_kind { DB_SAN_DNS, DB_SAN_IP, DB_SAN_EMAIL, DB_SAN_URI };
const char *db_san_kind_name(enum db_san_kind k);

/* A SAN carries its length: a value with a NUL inside (e.g. "a.example\0.evil") is refused
 * rather than silently cut at the NUL. IP addresses in text form. */
struct db_san {
	enum db_san_kind kind;
	const char *value;
	size_t len;
};

/* What is committed before signing. The serial is the unsigned big-endian magnitude, minimal
 * (first byte non-zero), 1..20 bytes. Times are seconds since the epoch. */
struct db_cert_request {
	int32_t authority_id;
	const uint8_t *serial;
	size_t serial_len;
	const char *profile;
	const char *subject; /* text form; its length is explicit for the same reason as SANs */
	size_t subject_len;
	const struct db_san *sans;
	size_t n_sans;
	int64_t not_before, not_after;
	uint8_t spki_sha256[32];
	const char *requester;
	int32_t crl_shard;
	/* When set: reserve only if this API token is still usable (not revoked, not expired, its
	 * principal not disabled) and its principal still has role token_role and, for an ra, the
	 * profile: credentials the caller read earlier, checked again in the statement that
	 * reserves. Otherwise the reservation is refused as DB_ERR_STATE. */
	const uint8_t *token_sha256;
	const char *token_role;
	/* The version of the profile the certificate is issued under (migration 0020); 0: none
	 * recorded. */
	int32_t profile_version;
};

struct db_cert {
	int64_t id;
	int32_t authority_id;
	uint8_t serial[DB_SERIAL_MAX];
	size_t serial_len;
	enum db_cert_status status;
	char *profile;
	int32_t profile_version; /* 0: not recorded (issued before migration 0020) */
	char *subject;
	struct db_cert_san {
		enum db_san_kind kind;
		char *value;
	} * sans; /* lookup only */
	size_t n_sans;
	int64_t not_before, not_after;
	uint8_t spki_sha256[32];
	uint8_t *der; /* lookup only, NULL until signed */
	size_t der_len;
	char *requester;
	int32_t crl_shard;
	int64_t created_at;
	int64_t issued_at;       /* 0: not issued */
	int64_t revoked_at;      /* 0: not revoked or held */
	int revocation_reason;   /* -1: none */
	int64_t invalidity_date; /* 0: none */
};
void db_cert_clear(struct db_cert *c);

/* Invariant 2 (docs/architecture.md): commit the serial and contents before anything is signed.
 * Status reserved. DB_ERR_CONFLICT if the serial exists for this authority (draw another);
 * DB_ERR_STATE when the authority is retired or the profile disabled (db_issuance_allowed says
 * which). */
enum db_status db_cert_reserve(struct db *db, const struct db_cert_request *req, int64_t *id,
                               struct db_err *err);
/* A reservation to make (db_cert_reserve_many) and how it went. */
struct db_cert_reservation {
	const struct db_cert_request *req;
	enum db_status rc;
	struct db_err err;
	int64_t id;
};
/* Make each reservation and commit it, outside any transaction: rc, err and id as
 * db_cert_reserve gives them. Several go as one statement in one transaction, one commit and
 * one round trip; an item refused (retired, disabled, its token, its serial taken) is told so
 * alone and the others commit; when the statement fails, each is made alone. */
void db_cert_reserve_many(struct db *db, struct db_cert_reservation *const *items, size_t n);
/* reserved -> issued, storing the signed DER; the DER must carry the reserved serial and
 * public key. DB_ERR_STATE unless reserved. */
enum db_status db_cert_mark_issued(struct db *db, int32_t authority_id, const uint8_t *serial,
                                   size_t serial_len, const uint8_t *der, size_t der_len,
                                   struct db_err *err);
/* reserved -> failed: signing did not produce a certificate. DB_ERR_STATE unless reserved. */
enum db_status db_cert_mark_failed(struct db *db, int32_t authority_id, const uint8_t *serial,
                                   size_t serial_len, struct db_err *err);

/* RFC 5280 CRLReason codes accepted by db_cert_revoke: 0-5, 9, 10 (6, certificateHold, is
 * db_cert_hold; 8, removeFromCRL, only appears in delta CRLs). */
#define DB_REASON_UNSPECIFIED 0
#define DB_REASON_KEY_COMPROMISE 1
#define DB_REASON_CA_COMPROMISE 2
#define DB_REASON_AFFILIATION_CHANGED 3
#define DB_REASON_SUPERSEDED 4
#define DB_REASON_CESSATION_OF_OPERATION 5
#define DB_REASON_CERTIFICATE_HOLD 6
#define DB_REASON_PRIVILEGE_WITHDRAWN 9
#define DB_REASON_AA_COMPROMISE 10

/* Revoke a reserved, issued or held certificate (a reserved row may stand for a certificate
 * that was signed but never stored). invalidity_date 0: none; it must not be in the future.
 * *changed is 0 when it was already revoked (nothing changes) and 1 otherwise. Returns once
 * committed (or, inside the caller's transaction, once done). DB_ERR_NOT_FOUND, DB_ERR_STATE
 * for a failed reservation. */
enum db_status db_cert_revoke(struct db *db, int32_t authority_id, const uint8_t *serial,
                              size_t serial_len, int reason, int64_t invalidity_date, int *changed,
                              struct db_err *err);
/* issued -> hold (reason certificateHold); *changed 0 when held already. */
enum db_status db_cert_hold(struct db *db, int32_t authority_id, const uint8_t *serial,
                            size_t serial_len, int *changed, struct db_err *err);
/* hold -> issued; *changed 0 when issued already. */
enum db_status db_cert_release(struct db *db, int32_t authority_id, const uint8_t *serial,
                               size_t serial_len, int *changed, struct db_err *err);

/* By serial; authority_id 0 looks in every authority and refuses (DB_ERR_CONFLICT) a serial
 * that more than one authority has. Fills SANs and DER. */
enum db_status db_cert_lookup(struct db *db, int32_t authority_id, const uint8_t *serial,
                              size_t serial_len, struct db_cert *out, struct db_err *err);

#define DB_LIST_MAX 1000

/* Filters for db_cert_list; zero / NULL fields do not filter. */
struct db_cert_filter {
	int32_t authority_id;
	int status;                            /* enum db_cert_status, or -1 for any */
	const char *subject;                   /* exact */
	const char *san;                       /* exact value of any SAN */
	int64_t expires_after, expires_before; /* not_after in [after, before) */
	int64_t after_id;                      /* paging: rows with id > after_id */
	size_t limit;                          /* 1..DB_LIST_MAX; 0 means 100 */
};

/* Certificates in id order, without SANs and DER. *next_after_id is the after_id of the
 * next page, 0 when this was the last. Free with db_cert_list_free. */
enum db_status db_cert_list(struct db *db, const struct db_cert_filter *f, struct db_cert **rows,
                            size_t *n, int64_t *next_after_id, struct db_err *err);
void db_cert_list_free(struct db_cert *rows, size_t n);

/* Search with substrings (db_certs_search.c): like db_cert_list, with the profile exact and
 * subject and SAN matched as case-insensitive substrings (LIKE wildcards in them are taken
 * literally). Zero / NULL fields do not filter. */
struct db_cert_search {
	int32_t authority_id;
	int status; /* enum db_cert_status, or -1 for any */
	const char *profile;
	const char *subject_contains;
	const char *san_contains;
	int64_t expires_after, expires_before;
	int64_t after_id;
	size_t limit; /* 1..DB_LIST_MAX; 0 means 100 */
};
enum db_status db_cert_search(struct db *db, const struct db_cert_search *f, struct db_cert **rows,
                              size_t *n, int64_t *next_after_id, struct db_err *err);

/* Serial bytes as lower-case hex ("0a1b..."); out must hold 2 * DB_SERIAL_MAX + 1. */
void db_serial_to_hex(const uint8_t *serial, size_t len, char *out);
/* Hex (upper or lower case, optional "0x", leading zeros dropped) to minimal serial bytes.
 * -1 if it is not a positive serial of at most 20 bytes. */
int db_serial_from_hex(const char *hex, uint8_t *serial, size_t *len);

/* --- audit log (db_audit.c) --- */

#define DB_AUDIT_FIELD_MAX 4096
#define DB_AUDIT_DETAIL_MAX 65536

struct db_audit_entry {
	const char *actor;
	const char *role; /* "" when not authenticated */
	const char *action;
	const char *object;
	const char *outcome; /* "success", "denied" or "error" */
	const char *detail;  /* free text (e.g. JSON), "" for none */
};

/* A signed certificate to store with its audit entry (db_cert_store_many). */
struct db_cert_store {
	int32_t authority_id;
	const uint8_t *serial;
	size_t serial_len;
	const uint8_t *der;
	size_t der_len;
	struct db_audit_entry audit;
	/* how it went */
	enum db_status rc;
	struct db_err err;
	int64_t audit_seq;
};
/* Store each signed certificate (as db_cert_mark_issued) and append its audit entry, in one
 * statement that appends the entry only when the certificate was stored, and commit; outside
 * any transaction. Several go in one transaction, one commit and one round trip; one whose
 * certificate does not store changes nothing, and the others commit. Each item's rc and err
 * say how it went. */
void db_cert_store_many(struct db *db, struct db_cert_store *const *items, size_t n);
/* A change of the caller's that commits with a certificate's reservation (an ACME order's move
 * to processing: db_..._with_reserve) or with its store (the move to valid: db_..._with_store),
 * freed by db_with_free. With a store it changes nothing unless the certificate is stored;
 * with a reservation, the reservation commits only if the change is made. */
struct db_with;
/* Reserve as db_cert_reserve does and make change w, in one transaction and one round trip
 * (BEGIN, the reservation, w, COMMIT); outside any transaction. DB_OK with *id; or w found
 * nothing to change (DB_ERR_STATE, db_with_outcome says the same): nothing was reserved; or
 * the reservation's own refusal or failure as db_cert_reserve's (a refusal without a row
 * still commits w; a failure commits nothing). db_with_outcome(w) is DB_OK exactly when w was
 * committed. */
enum db_status db_cert_reserve_with(struct db *db, const struct db_cert_request *req, int64_t *id,
                                    struct db_with *w, struct db_err *err);
/* Store one signed certificate as db_cert_store_many does and make change w, in one
 * transaction and one round trip (BEGIN, the store, w, COMMIT): it->rc and it->err say how the
 * certificate went, db_with_outcome how w went (DB_ERR_STATE: w found nothing to change,
 * e.g. because the certificate was not stored). Outside any transaction. */
void db_cert_store_with(struct db *db, struct db_cert_store *it, struct db_with *w);
enum db_status db_with_outcome(const struct db_with *w, struct db_err *err);
void db_with_free(struct db_with *w);

/* Append an entry at the chain head: seq = head + 1, at = the server's clock,
 * hash = SHA-256(prev_hash || canonical bytes). Appenders serialise on the chain head. */
enum db_status db_audit_append(struct db *db, const struct db_audit_entry *e, int64_t *seq,
                               struct db_err *err);
/* The same as the last statement of the caller's open transaction, and COMMIT it, in one round
 * trip (the chain's lock is held the shorter). On failure the transaction is left to the
 * caller to roll back (it may already have ended, if the COMMIT failed). */
enum db_status db_audit_append_commit(struct db *db, const struct db_audit_entry *e, int64_t *seq,
                                      struct db_err *err);
/* The n entries e[0..n) (at most 32), in that order, as the last statement of the caller's
 * open transaction, and COMMIT it, in one round trip: one statement and one hold of the
 * chain's lock for all of them. seqs[i] gets e[i]'s seq. An entry that is refused (an
 * over-long field) appends none of them; on failure the transaction is left to the caller to
 * roll back (it may already have ended, if the COMMIT failed). */
enum db_status db_audit_append_many_commit(struct db *db, const struct db_audit_entry *const *e,
                                           size_t n, int64_t *seqs, struct db_err *err);
/* The head: *seq 0 and a zero hash when the log is empty. */
enum db_status db_audit_head(struct db *db, int64_t *seq, uint8_t hash[32], struct db_err *err);
/* Record a checkpoint over seq/head_hash (signature made by the caller through keyd). */
enum db_status db_audit_checkpoint_add(struct db *db, int64_t seq, const uint8_t head_hash[32],
                                       const uint8_t *sig, size_t sig_len, const char *key_label,
                                       struct db_err *err);

enum db_audit_finding {
	DB_AUDIT_INTACT,
	DB_AUDIT_MODIFIED, /* the entry at seq does not match its hash */
	DB_AUDIT_DELETED,  /* the entry at seq is missing */
	DB_AUDIT_INSERTED, /* the entry at seq was not appended by the chain */
};
const char *db_audit_finding_name(enum db_audit_finding f);

struct db_audit_report {
	enum db_audit_finding finding;
	int64_t seq;         /* where the first problem is; 0 when intact */
	int64_t entries;     /* entries read */
	int64_t checkpoints; /* checkpoints compared with the chain */
	int64_t head_seq;
	uint8_t head_hash[32];
	char detail[256]; /* one sentence on what is wrong */
};

/* Walk the whole chain (in a consistent snapshot) and compare the checkpoints with it; stops
 * at the first problem. A checkpoint's signature is not checked here. */
enum db_status db_audit_verify(struct db *db, struct db_audit_report *r, struct db_err *err);

/* The canonical bytes of an entry that the hash covers (docs/database.md). Returns the length
 * written, or the length needed when it exceeds cap. */
size_t db_audit_canonical(int64_t seq, int64_t at_us, const struct db_audit_entry *e, uint8_t *out,
                          size_t cap);

/* --- revocation announcements (db_notify.c) --- */

#define DB_REVOCATION_CHANNEL "hsmca_revocation"

struct db_revocation_event {
	int32_t authority_id;
	uint8_t serial[DB_SERIAL_MAX];
	size_t serial_len;
	enum db_cert_status status; /* revoked, hold, or issued (released) */
};

/* LISTEN on the revocation channel on this connection. */
enum db_status db_revocations_listen(struct db *db, struct db_err *err);
/* Wait up to timeout_ms (0: do not wait, -1: forever) for the next announcement. *got is 0 on
 * timeout. Payloads that do not parse are refused with DB_ERR_INVALID. After
 * DB_ERR_UNAVAILABLE announcements may have been missed: call db_revocations_listen again (it
 * reconnects) and then re-read the state from the tables. */
enum db_status db_revocation_next(struct db *db, int timeout_ms, struct db_revocation_event *ev,
                                  int *got, struct db_err *err);

/* --- principals and API tokens (db_principals.c) --- */

/* 1 if role is one of ca-admin, admin, officer, auditor, operator, ra. */
int db_role_valid(const char *role);

struct db_principal {
	int32_t id;
	char *name;
	char *role;
	uint8_t cert_sha256[32]; /* SHA-256 of the client certificate's DER, when has_cert */
	int has_cert;
	int disabled;
	char *profiles; /* profiles an ra principal is granted, comma-separated; "" for none */
	int64_t created_at;
};
void db_principal_clear(struct db_principal *p);

/* cert_sha256 NULL: token-only. profiles: NULL or "" for none, else "a,b" (names of
 * 1..64 of a-z 0-9 - _). DB_ERR_CONFLICT if the name or certificate is taken. */
enum db_status db_principal_add(struct db *db, const char *name, const char *role,
                                const uint8_t *cert_sha256, const char *profiles, int32_t *id,
                                struct db_err *err);
enum db_status db_principal_find(struct db *db, const char *name, struct db_principal *out,
                                 struct db_err *err);
enum db_status db_principal_find_by_cert(struct db *db, const uint8_t cert_sha256[32],
                                         struct db_principal *out, struct db_err *err);
enum db_status db_principal_list(struct db *db, struct db_principal **rows, size_t *n,
                                 struct db_err *err);
void db_principal_list_free(struct db_principal *rows, size_t n);
/* *changed 0 when it was in that state already. DB_ERR_NOT_FOUND for an unknown name. */
enum db_status db_principal_set_disabled(struct db *db, const char *name, int disabled,
                                         int *changed, struct db_err *err);

struct db_token {
	int32_t id;
	int32_t principal_id;
	char *name;
	int64_t expires_at;
	int64_t revoked_at; /* 0: not revoked */
	int64_t created_at;
	int64_t last_used_at; /* 0: never used */
};

/* Only the SHA-256 of the token is stored; the token itself is the caller's to show once. */
enum db_status db_token_add(struct db *db, int32_t principal_id, const uint8_t token_sha256[32],
                            const char *name, int64_t expires_at, int32_t *id, struct db_err *err);
/* The principal of a token that is neither revoked nor expired (its last use is noted);
 * DB_ERR_NOT_FOUND otherwise. The caller checks out->disabled. */
enum db_status db_token_authenticate(struct db *db, const uint8_t token_sha256[32],
                                     struct db_principal *out, int32_t *token_id,
                                     struct db_err *err);
enum db_status db_token_list(struct db *db, int32_t principal_id, struct db_token **rows, size_t *n,
                             struct db_err *err);
void db_token_list_free(struct db_token *rows, size_t n);
/* *changed 0 when it was revoked already; *principal_id says whose it is. */
enum db_status db_token_revoke(struct db *db, int32_t id, int32_t *principal_id, int *changed,
                               struct db_err *err);

/* --- reading the audit log (db_audit_read.c) --- */

struct db_audit_row {
	int64_t seq;
	int64_t at_us; /* microseconds since the epoch */
	char *actor, *role, *action, *object, *outcome, *detail;
	uint8_t hash[32];
};

/* Up to limit (1..DB_LIST_MAX) entries with seq > after_seq, in order. */
enum db_status db_audit_list(struct db *db, int64_t after_seq, size_t limit,
                             struct db_audit_row **rows, size_t *n, struct db_err *err);
void db_audit_rows_free(struct db_audit_row *rows, size_t n);

struct db_audit_checkpoint {
	int64_t seq;
	uint8_t head_hash[32];
	uint8_t *signature;
	size_t signature_len;
	char *key_label;
};

/* Every checkpoint, in seq order (their signatures are the caller's to check). */
enum db_status db_audit_checkpoints_list(struct db *db, struct db_audit_checkpoint **rows,
                                         size_t *n, struct db_err *err);
void db_audit_checkpoints_free(struct db_audit_checkpoint *rows, size_t n);

/* --- device enrolment: provisioning tokens and devices (db_devices.c) --- */

#define DB_ALLOWLIST_MAX 1000
#define DB_IDENTITY_MAX 255

/* A provisioning token: only its SHA-256 is stored; the token is shown once. */
struct db_prov_token {
	int32_t id;
	char *name;
	char *profile;
	int32_t max_uses, uses;
	char **allowlist; /* device identifiers or shell patterns; n_allow 0: any */
	size_t n_allow;
	int allow_replace;
	int64_t expires_at;
	int64_t revoked_at; /* 0: not revoked */
	char *created_by;
	int64_t created_at;
	int64_t last_used_at; /* 0: never used */
};
void db_prov_token_clear(struct db_prov_token *t);
void db_prov_token_list_free(struct db_prov_token *rows, size_t n);

/* Allowlist entries: 1..DB_IDENTITY_MAX printable ASCII characters each. DB_ERR_INVALID
 * otherwise. */
enum db_status db_prov_token_add(struct db *db, const uint8_t token_sha256[32], const char *name,
                                 const char *profile, int32_t max_uses,
                                 const char *const *allowlist, size_t n_allow, int allow_replace,
                                 int64_t expires_at, const char *created_by, int32_t *id,
                                 struct db_err *err);
/* The token with this hash, whatever its state (the caller judges expiry, uses, revocation);
 * DB_ERR_NOT_FOUND when there is none. */
enum db_status db_prov_token_find(struct db *db, const uint8_t token_sha256[32],
                                  struct db_prov_token *out, struct db_err *err);
/* Take one use, atomically: DB_ERR_STATE when the token is spent, expired or revoked now. */
enum db_status db_prov_token_consume(struct db *db, int32_t id, struct db_err *err);
/* Give a use back after an enrolment that issued nothing. */
enum db_status db_prov_token_refund(struct db *db, int32_t id, struct db_err *err);
enum db_status db_prov_token_list(struct db *db, struct db_prov_token **rows, size_t *n,
                                  struct db_err *err);
/* *changed 0 when it was revoked already. DB_ERR_NOT_FOUND for an unknown id. */
enum db_status db_prov_token_revoke(struct db *db, int32_t id, int *changed, struct db_err *err);

struct db_device {
	int64_t id;
	char *identity;
	char *profile;
	int32_t token_id; /* 0: none */
	int decommissioned;
	int64_t created_at;
	int64_t decommissioned_at; /* 0: active */
	char *decommissioned_by;   /* NULL while active */
	char *decommission_reason; /* NULL while active */
	int64_t n_certs;           /* certificates issued to it */
	int64_t n_valid;           /* of which issued or held and not expired */
};
void db_device_clear(struct db_device *d);
void db_device_list_free(struct db_device *rows, size_t n);

/* The enrolment lock of a device identity: a session-level advisory lock, so that two
 * enrolments of one identity run one after the other from the "has it a certificate already?"
 * check to the commit of the certificate. Outside or inside a transaction; a connection that
 * closes lets go of it. db_device_trylock takes it without waiting: DB_OK with *got 1 (held
 * now) or 0 (another session holds it). db_device_unlock lets go of it. */
enum db_status db_device_trylock(struct db *db, const char *identity, int *got, struct db_err *err);
enum db_status db_device_unlock(struct db *db, const char *identity, struct db_err *err);
enum db_status db_device_find(struct db *db, const char *identity, struct db_device *out,
                              struct db_err *err);
/* The device a certificate was enrolled for; DB_ERR_NOT_FOUND when it is no device's. */
enum db_status db_device_of_cert(struct db *db, int64_t certificate_id, struct db_device *out,
                                 struct db_err *err);
/* Record that certificate_id was issued to the device with this identity (made on its first
 * enrolment, with profile and token_id, 0 for none); how is "enroll" or "reenroll".
 * DB_ERR_STATE for a decommissioned device. *device_id (may be NULL) gets its id. Inside the
 * caller's transaction if one is open. */
enum db_status db_device_record(struct db *db, const char *identity, const char *profile,
                                int32_t token_id, int64_t certificate_id, const char *how,
                                int64_t *device_id, struct db_err *err);
/* Revoke (reason superseded) the device's valid certificates other than keep_id; *n says how
 * many. Inside the caller's transaction if one is open. */
enum db_status db_device_supersede(struct db *db, int64_t device_id, int64_t keep_id, int *n,
                                   struct db_err *err);
/* Devices in id order; identity_contains (NULL: all) is a case-insensitive substring. Paging
 * as db_cert_list: *next_after_id 0 on the last page. */
enum db_status db_device_list(struct db *db, const char *identity_contains, int64_t after_id,
                              size_t limit, struct db_device **rows, size_t *n,
                              int64_t *next_after_id, struct db_err *err);
/* A device's certificates in id order (without SANs and DER), at most DB_LIST_MAX. */
enum db_status db_device_certs(struct db *db, int64_t device_id, struct db_cert **rows, size_t *n,
                               struct db_err *err);
/* Decommission the device: revoke every certificate of it that is not revoked yet with
 * reason (a db_cert_revoke code) and record who and why. *revoked counts the certificates
 * revoked now; *changed 0 when it was decommissioned already. DB_ERR_NOT_FOUND for an
 * unknown identity. Inside the caller's transaction if one is open. */
enum db_status db_device_decommission(struct db *db, const char *identity, int reason,
                                      const char *why, const char *by, int *revoked, int *changed,
                                      struct db_err *err);

/* --- CRLs (db_crl.c): numbers, and the revoked entries streamed through a cursor --- */

/* Draw the authority's next CRL number with one UPDATE ... RETURNING, so that numbers only
 * grow, across restarts and across several crld instances, and none is handed out twice.
 * DB_ERR_NOT_FOUND when the authority has no counter. */
enum db_status db_crl_number_next(struct db *db, int32_t authority_id, int64_t *number,
                                  struct db_err *err);

/* One CRL entry. status DB_CERT_REVOKED, DB_CERT_HOLD, or (deltas only) DB_CERT_ISSUED for a
 * certificate released from hold since the base: removeFromCRL. */
struct db_crl_entry {
	uint8_t serial[DB_SERIAL_MAX];
	size_t serial_len;
	enum db_cert_status status;
	int64_t revoked_at;      /* for a release: when it was released */
	int reason;              /* CRLReason; -1 for a release */
	int64_t invalidity_date; /* 0: none */
};

struct db_crl_scan_opts {
	int32_t authority_id;
	int32_t shard;              /* -1: every shard */
	int64_t not_after_from;     /* leave out certificates whose notAfter is before this */
	const char *since_snapshot; /* NULL: a full CRL; else a delta: the changes that this
	                             * snapshot (of an earlier scan) did not see */
};

struct db_crl_scan;

/* Open a read-only REPEATABLE READ transaction on db and a cursor over the entries. The
 * scan's snapshot (PostgreSQL pg_snapshot text, malloc'ed) goes to *snapshot for a later
 * delta. The connection is the scan's until db_crl_scan_close. */
enum db_status db_crl_scan_open(struct db *db, const struct db_crl_scan_opts *o,
                                struct db_crl_scan **out, char **snapshot, struct db_err *err);
/* The next entry; *got 0 at the end. Rows arrive in batches, so memory stays bounded. */
enum db_status db_crl_scan_next(struct db_crl_scan *s, struct db_crl_entry *e, int *got,
                                struct db_err *err);
/* Ends the transaction; NULL is fine. */
void db_crl_scan_close(struct db_crl_scan *s);

/* The CRL distribution of an authority when a daemon's configuration names one: if the
 * database has none stored yet, store url and shards (url "" stores nothing); then *stored_url
 * (DB_CRL_URL_MAX + 1 bytes) and *stored_shards say what the database holds, for the caller to
 * compare with its configuration. One statement: two daemons starting together agree. */
enum db_status db_crl_distribution_claim(struct db *db, int32_t authority_id, const char *url,
                                         int shards, const char *by, char *stored_url,
                                         int *stored_shards, struct db_err *err);
/* Forget at most max_rows entries of the authority's change log that are older than
 * before_xid (the oldest xmin of the base CRL snapshots still in use) and than margin_seconds;
 * *deleted says how many went. One bounded statement (migration 0010). */
enum db_status db_crl_changes_prune(struct db *db, int32_t authority_id, uint64_t before_xid,
                                    int64_t margin_seconds, int max_rows, int64_t *deleted,
                                    struct db_err *err);
/* The number of entries in the change log (every authority): for crld's metrics. */
enum db_status db_crl_changes_count(struct db *db, int64_t *rows, struct db_err *err);

/* 1 when s[0..len) is UTF-8 without NULs, overlong forms or surrogates: text PostgreSQL takes
 * (db_values.c). Callers check outside input with it before it reaches a query. */
int db_text_valid(const char *s, size_t len);
/* --- OCSP: certificate statuses in id order and the shared copy of pre-signed responses
 * (db_ocsp.c, for hsmca-ocspd) --- */

struct db_ocsp_status {
	int64_t id;
	int32_t authority_id;
	uint8_t serial[DB_SERIAL_MAX];
	size_t serial_len;
	enum db_cert_status status;
	int64_t revoked_at;    /* 0: not revoked or held */
	int revocation_reason; /* -1: none */
};

/* Up to limit (1..DB_LIST_MAX * 10) certificates with id > after_id, every status, in id
 * order. *rows is malloc'ed (free()), *n may be 0. */
enum db_status db_ocsp_status_page(struct db *db, int64_t after_id, size_t limit,
                                   struct db_ocsp_status **rows, size_t *n, struct db_err *err);

/* A stored response; cert_id_hash is "sha1" or "sha256". */
struct db_ocsp_response {
	int32_t authority_id;
	uint8_t serial[DB_SERIAL_MAX];
	size_t serial_len;
	char cert_id_hash[8];
	enum db_cert_status status;
	int64_t revoked_at;    /* 0: none */
	int revocation_reason; /* -1: none */
	char signer_key_label[DB_KEY_LABEL_MAX + 1];
	int64_t this_update, next_update;
	uint8_t *der;
	size_t der_len;
};

/* Insert or replace a response (fields as above; der borrowed). Inside the caller's
 * transaction if one is open. */
enum db_status db_ocsp_response_put(struct db *db, const struct db_ocsp_response *r,
                                    struct db_err *err);
/* Where a paged read of the shared copy stands: the key of the last row read. Zeroed: before
 * the first row. */
struct db_ocsp_response_key {
	int32_t authority_id;
	uint8_t serial[DB_SERIAL_MAX];
	size_t serial_len;
	char cert_id_hash[8];
};
/* The next up to limit (1..DB_LIST_MAX * 10) stored responses after *after, in key order,
 * that still describe their certificate as the certificates table does now (status,
 * revocation time and reason) and whose next_update is after valid_after; *after moves to
 * the last of them. Fewer than limit: the copy has been read to its end. Free with
 * db_ocsp_responses_free. */
enum db_status db_ocsp_responses_page(struct db *db, int64_t valid_after,
                                      struct db_ocsp_response_key *after, size_t limit,
                                      struct db_ocsp_response **rows, size_t *n,
                                      struct db_err *err);
void db_ocsp_responses_free(struct db_ocsp_response *rows, size_t n);
/* 1 when the server is a standby (pg_is_in_recovery()): it cannot LISTEN or be written. */
enum db_status db_in_recovery(struct db *db, int *standby, struct db_err *err);

/* --- ACME accounts and External Account Binding credentials (db_acme.c) --- */

/* An External Account Binding credential (RFC 8555 §7.3.4). */
struct db_acme_eab {
	int64_t id;
	char kid[65];
	uint8_t hmac_key[64];
	size_t hmac_key_len;
	char *principal;
	char *profiles; /* comma-separated */
	char *allow;    /* identifier patterns, newline-separated; "" any */
	int64_t expires_at, revoked_at, created_at;
	char *created_by;
	int64_t account_id; /* 0 while unbound */
};
void db_acme_eab_clear(struct db_acme_eab *e);

/* Add a credential (allow: n_allow patterns of printable ASCII). In the caller's transaction
 * when one is open. *id gets its id. */
enum db_status db_acme_eab_add(struct db *db, const char *kid, const uint8_t *hmac_key,
                               size_t key_len, const char *principal, const char *profiles,
                               const char *const *allow, size_t n_allow, int64_t expires_at,
                               const char *created_by, int64_t *id, struct db_err *err);
/* The credential with kid that is neither revoked nor expired; DB_ERR_NOT_FOUND otherwise. */
enum db_status db_acme_eab_find(struct db *db, const char *kid, struct db_acme_eab *out,
                                struct db_err *err);

/* Revoke the credential with kid (usable or not); DB_ERR_NOT_FOUND when there is none,
 * DB_ERR_STATE when it is revoked already. An account it bound keeps working. In the caller's
 * transaction when one is open. */
enum db_status db_acme_eab_revoke(struct db *db, const char *kid, struct db_err *err);
/* Every credential (without its key) in id order, at most DB_LIST_MAX; free with
 * db_acme_eab_list_free. */
enum db_status db_acme_eab_list(struct db *db, struct db_acme_eab **rows, size_t *n,
                                struct db_err *err);
void db_acme_eab_list_free(struct db_acme_eab *rows, size_t n);

/* Record a renewal incident: authority_id's certificates issued before now should be renewed
 * at once. *id gets its id. In the caller's transaction when one is open. */
enum db_status db_acme_incident_add(struct db *db, int32_t authority_id, const char *reason,
                                    const char *created_by, int64_t *id, struct db_err *err);
/* The latest incident moment of authority_id (seconds; 0: none) into *issued_before. */
enum db_status db_acme_incident_latest(struct db *db, int32_t authority_id, int64_t *issued_before,
                                       struct db_err *err);

struct db_acme_account {
	int64_t id;
	char status[16]; /* "valid", "deactivated", "revoked" */
	char *jwk;
	char thumbprint[44];
	char *contact; /* JSON array text */
	int tos_agreed;
	char eab_kid[65]; /* "" when not bound */
	char *principal;  /* "" when not bound */
	char *profiles;   /* the credential's, "" when not bound */
	char *allow;      /* the credential's patterns, newline-separated */
};
void db_acme_account_clear(struct db_acme_account *a);

/* The account with this key thumbprint, or with this id; DB_ERR_NOT_FOUND when none. */
enum db_status db_acme_account_by_thumbprint(struct db *db, const char *thumbprint,
                                             struct db_acme_account *out, struct db_err *err);
enum db_status db_acme_account_by_id(struct db *db, int64_t id, struct db_acme_account *out,
                                     struct db_err *err);
/* Insert a (a->id is set) bound to credential eab_kid ("" for none), with the audit entry
 * audit (its object filled in here as acct/ID), committed together. DB_ERR_STATE when the
 * credential bound another account already or is no longer usable; DB_ERR_CONFLICT when the
 * key has an account. */
enum db_status db_acme_account_create(struct db *db, struct db_acme_account *a, const char *eab_kid,
                                      const struct db_audit_entry *audit, struct db_err *err);
/* Store a's status and contact, with the audit entry, committed together. */
enum db_status db_acme_account_update(struct db *db, const struct db_acme_account *a,
                                      const struct db_audit_entry *audit, struct db_err *err);
/* Replace the key of account id (whose key has old_thumbprint) by jwk/thumbprint, with the
 * audit entry, committed together. DB_ERR_CONFLICT when another account has that key;
 * DB_ERR_STATE when the account's key is no longer old_thumbprint. */
enum db_status db_acme_account_rekey(struct db *db, int64_t id, const char *old_thumbprint,
                                     const char *jwk, const char *thumbprint,
                                     const struct db_audit_entry *audit, struct db_err *err);

/* --- ACME orders, authorizations and challenges (db_acme_order.c) --- */

#define DB_ACME_IDENTS_MAX 100
#define DB_ACME_CHALLS 3

struct db_acme_ident {
	char type[4];    /* "dns" or "ip" */
	char value[254]; /* lower case dns name without "*.", or the address as text */
	int wildcard;
};

struct db_acme_order {
	int64_t id, account_id;
	char status[12]; /* expired pending and ready orders read as "invalid" */
	int64_t expires_at;
	char *identifiers; /* JSON array text */
	char profile[65];
	char cert_serial[81]; /* "" until valid */
	char error_type[33];
	char error_detail[1025];
	int64_t not_before, not_after; /* asked for in newOrder (epoch); 0: none */
	int64_t authz[DB_ACME_IDENTS_MAX];
	size_t n_authz;
	/* Its account's status and key thumbprint, read in the same statement (db_acme_order_get
	 * only). */
	char account_status[16], account_thumbprint[44];
};
void db_acme_order_clear(struct db_acme_order *o);

/* The certificate an ACME account downloads: the one with serial (as db_cert_lookup: under
 * any authority, and exactly one), issued, requested by requester ("acme-account:ID"). */
struct db_acme_cert {
	int found; /* 1 when it is that certificate; 0: no such one (or another's, or ambiguous) */
	int32_t authority_id;
	uint8_t *der; /* malloc */
	size_t der_len;
	/* Account account_id's status and key thumbprint, read in the same statement ("" when
	 * there is no such account). */
	char account_status[16], account_thumbprint[44];
};
/* One statement: the certificate and the account that asks for it. DB_OK (out->found says
 * whether there is such a certificate), or the error. */
enum db_status db_acme_cert_read(struct db *db, const uint8_t *serial, size_t serial_len,
                                 int64_t account_id, const char *requester,
                                 struct db_acme_cert *out, struct db_err *err);
void db_acme_cert_clear(struct db_acme_cert *c);

struct db_acme_challenge {
	int64_t id;
	char type[16];
	char token[44];
	char status[12];
	int64_t validated_at;
	char error_type[33];
	char error_detail[513];
};

struct db_acme_authz {
	int64_t id, account_id;
	struct db_acme_ident ident;
	char status[12]; /* expired ones read as "expired" */
	int64_t expires_at;
	struct db_acme_challenge ch[DB_ACME_CHALLS];
	size_t n_ch;
	/* Its account's status and key thumbprint, read in the same statement. */
	char account_status[16], account_thumbprint[44];
};

/* What a newOrder asks besides its identifiers, and the account's rate limits. */
struct db_acme_order_opts {
	int64_t not_before, not_after; /* the validity the client asked for (epoch); 0: none */
	int64_t orders_max,
	    window_seconds;  /* at most orders_max orders in window_seconds; 0: any */
	int64_t pending_max; /* at most this many pending authorizations; 0: any */
	/* When set, the account must be valid with the key of this thumbprint (judged under the
	 * account's lock, before anything changes). */
	const char *account_thumbprint;
	/* Out, when a limit refused the order (DB_ERR_STATE): 1 orders, 2 pending
	 * authorizations, 3 the account is not valid with account_thumbprint's key; count: what
	 * the account had; oldest: when its oldest order of the window was made (epoch). */
	int limited;
	int64_t count, oldest;
};

/* Add an order of account_id for idents (n of them; identifiers: their JSON as the client
 * named them) with profile, expiring in order_ttl seconds. Each identifier gets the account's
 * valid authorization for it when one has not expired, else a new pending one expiring in
 * authz_ttl seconds with its challenges (dns-01 alone for a wildcard; no dns-01 for an ip), whose
 * tokens come from tokens (3 per identifier, 43 base64url characters each). With the audit entry
 * (object order/ID), committed together. out is filled (db_acme_order_clear). The rate limits
 * of o are judged inside the same transaction under a lock on the account's row, so parallel
 * newOrders of one account are counted one after the other and never pass them together:
 * DB_ERR_STATE with o->limited set when one refuses (nothing is recorded). */
enum db_status db_acme_order_create(struct db *db, int64_t account_id,
                                    const struct db_acme_ident *idents, size_t n,
                                    const char *identifiers, const char *profile, int64_t order_ttl,
                                    int64_t authz_ttl, const char (*tokens)[44],
                                    struct db_acme_order_opts *o,
                                    const struct db_audit_entry *audit, struct db_acme_order *out,
                                    struct db_err *err);
enum db_status db_acme_order_get(struct db *db, int64_t id, struct db_acme_order *out,
                                 struct db_err *err);
enum db_status db_acme_authz_get(struct db *db, int64_t id, struct db_acme_authz *out,
                                 struct db_err *err);
/* The authorization holding challenge chall_id (one statement), or DB_ERR_NOT_FOUND. */
enum db_status db_acme_authz_of_challenge(struct db *db, int64_t chall_id,
                                          struct db_acme_authz *out, struct db_err *err);
/* Challenge chall_id of account_id goes from pending to processing (its authorization pending,
 * unexpired, no other challenge of it processing), with the audit entry, committed together.
 * DB_ERR_STATE otherwise. */
enum db_status db_acme_challenge_start(struct db *db, int64_t chall_id, int64_t account_id,
                                       const struct db_audit_entry *audit, struct db_err *err);
/* A processing challenge's result: valid (its authorization valid for reuse seconds; orders
 * whose authorizations are all valid become ready) or invalid with the validator's problem
 * (its authorization and pending orders invalid). With the audit entry, committed together. */
enum db_status db_acme_challenge_done(struct db *db, int64_t chall_id, int valid,
                                      const char *error_type, const char *error_detail,
                                      int64_t reuse, const struct db_audit_entry *audit,
                                      struct db_err *err);
/* A challenge left processing, with what its validation needs again. */
struct db_acme_stuck {
	int64_t chall_id;
	char type[16];
	char token[44];
	char ident_type[4];
	char ident[254];
	char thumbprint[44]; /* the account key's, for the key authorization */
	char principal[129];
	int64_t started_at; /* epoch; 0 when unknown (started before migration 0019) */
};
/* Challenges still processing whose validation started at least older_than seconds ago (0:
 * all), e.g. left by an hsmca-cad that stopped or died mid-validation; at most max of them,
 * oldest first, into out (*n). */
enum db_status db_acme_challenges_processing(struct db *db, int64_t older_than,
                                             struct db_acme_stuck *out, size_t max, size_t *n,
                                             struct db_err *err);
/* The client deactivates authorization id of account_id (RFC 8555 §7.5.2): pending or valid
 * becomes deactivated (never reused again), and its pending and ready orders invalid. With the
 * audit entry, committed together. DB_ERR_STATE when it is neither pending nor valid. */
enum db_status db_acme_authz_deactivate(struct db *db, int64_t id, int64_t account_id,
                                        const struct db_audit_entry *audit, struct db_err *err);
/* Order id goes from status `from` (unexpired when "ready") to `to`, with cert_serial (NULL:
 * none) or the problem (error_type "" none), and the audit entry, in one statement outside any
 * transaction (its own commit). DB_ERR_STATE when it is not in `from`. */
enum db_status db_acme_order_move(struct db *db, int64_t id, const char *from, const char *to,
                                  const char *cert_serial, const char *error_type,
                                  const char *error_detail, const struct db_audit_entry *audit,
                                  struct db_err *err);
/* Order id goes from processing to valid with the certificate's serial, and the audit entry
 * is appended, in the transaction that stores the certificate (db_cert_store_with): nothing
 * changes unless the certificate is stored. NULL (err set) for a bad entry or no memory. */
struct db_with *db_acme_order_valid_with_store(int64_t id, const struct db_audit_entry *audit,
                                               struct db_err *err);
/* Order id goes from ready (unexpired) to processing, and the audit entry is appended, in the
 * transaction that reserves its certificate's serial (db_cert_reserve_with): an order not
 * ready refuses (DB_ERR_STATE, "the order is not ready") and nothing is reserved. NULL (err
 * set) for a bad entry or no memory. */
struct db_with *db_acme_order_processing_with_reserve(int64_t id,
                                                      const struct db_audit_entry *audit,
                                                      struct db_err *err);
/* The arguments of db_acme_order_create, as data (db_acme_changes' ORDER_CREATE). */
struct db_acme_order_new {
	int64_t account_id;
	const struct db_acme_ident *idents;
	size_t n;
	const char *identifiers, *profile;
	int64_t order_ttl, authz_ttl;
	const char (*tokens)[44];
	struct db_acme_order_opts *opts;
	struct db_acme_order *out; /* filled when it is committed (db_acme_order_clear) */
};
/* What a challenge's start read back (db_acme_change's started). */
struct db_acme_started {
	char type[16], token[44], ident_type[4], ident[254]; /* ident: "*." off, as stored */
	int64_t authz_id;
};
/* One of the state changes above, as data, for db_acme_changes. */
struct db_acme_change {
	enum { DB_ACME_CHALL_START, DB_ACME_CHALL_DONE, DB_ACME_ORDER_CREATE } kind;
	int64_t id; /* the challenge's (CHALL_*) or the order's (ORDER_CREATE: set) */
	struct db_acme_order_new *order; /* ORDER_CREATE */
	int64_t account_id;              /* CHALL_START */
	/* CHALL_START: when set, the account must be valid with the key of this thumbprint (judged
	 * in the statement that starts the challenge: DB_ERR_STATE otherwise, as for any other
	 * reason the challenge is not started); started, when set, gets the challenge and its
	 * authorization as they were. */
	const char *account_thumbprint;
	struct db_acme_started *started;
	int valid;                             /* CHALL_DONE */
	int64_t reuse;                         /* CHALL_DONE */
	const char *error_type, *error_detail; /* CHALL_DONE */
	const struct db_audit_entry *audit;
	/* The outcome, as the function for the change alone would give it. */
	enum db_status rc;
	struct db_err err;
};
/* Group commit of ACME state changes (several requests' changes, hsmca-cad's ACME adapter): all
 * n in one transaction (one that is refused, e.g. DB_ERR_STATE, is refused before it changes
 * anything, so no savepoint is needed, and the rest go on), their audit entries appended after
 * all of them in one statement that travels with the COMMIT, so that the audit chain's lock
 * is held once, for one round trip, for the group. If anything else fails, nothing of the
 * group is kept and each change is done again in a transaction of its own. A group of more
 * than 32 is done that way too. The changes are made in a fixed order (new orders, then
 * challenges' results, then starts, each kind by id; c itself is left as it is), so that
 * groups committed at once lock shared rows alike. Each change's outcome is in its rc and err. */
void db_acme_changes(struct db *db, struct db_acme_change **c, size_t n);

/* --- the dashboard, the reports, CRL publications and backup runs (db_reports.c) ---
 * docs/reports.md says what each figure counts. Each report is built by PostgreSQL as one
 * JSON document (one round trip) into *json, malloc'd (free it). */
enum db_status db_report_dashboard(struct db *db, char **json, struct db_err *err);
/* Certificates issued, revoked and expired in [from, to) (seconds since the epoch) per
 * authority and profile, in total and per UTC day. DB_ERR_INVALID when from >= to. */
enum db_status db_report_issuance(struct db *db, int64_t from, int64_t to, char **json,
                                  struct db_err *err);
/* Valid certificates expiring within days, soonest first, at most limit
 * (1..DB_LIST_MAX * 10), with the total. */
enum db_status db_report_expiring(struct db *db, int days, size_t limit, char **json,
                                  struct db_err *err);
/* Principals, API tokens and provisioning tokens with their last use. */
enum db_status db_report_principals(struct db *db, char **json, struct db_err *err);
/* hsmca-crld published CRL number of scope (full or delta) for authority_id. */
enum db_status db_crl_publication_add(struct db *db, int32_t authority_id, const char *scope,
                                      int delta, int64_t number, int64_t this_update,
                                      int64_t next_update, struct db_err *err);
/* A backup run of archive starts (recorded as running, by this connection's role): *id. */
enum db_status db_backup_run_start(struct db *db, const char *archive, int64_t *id,
                                   struct db_err *err);
/* Run id ends: success with the archive's size and SHA-256, or failure with error.
 * DB_ERR_NOT_FOUND when id is not a running run started by this connection's role. */
enum db_status db_backup_run_finish(struct db *db, int64_t id, int success, int64_t size,
                                    const uint8_t sha256[32], const char *error,
                                    struct db_err *err);
/* Up to limit (1..DB_LIST_MAX) runs newest first, with id < before_id (0: from the newest),
 * "next" (the before_id of the next page, or null) and the last successful run. */
enum db_status db_backup_runs_list(struct db *db, int64_t before_id, size_t limit, char **json,
                                   struct db_err *err);

/* --- key archival (db_archive.c, migration 0020) --- */

/* Store the encrypted key of certificate_id (docs/key-recovery.md): the data key wrapped by
 * keyd's AES key key_label, the AES-GCM nonce, and the ciphertext with its tag. Inside the
 * caller's transaction (the one that stores the certificate). */
enum db_status db_key_archive_put(struct db *db, int64_t certificate_id, const char *key_label,
                                  const uint8_t *wrapped_key, size_t wrapped_len,
                                  const uint8_t *nonce, size_t nonce_len, const uint8_t *ct,
                                  size_t ct_len, struct db_err *err);
/* Whether certificate_id has an archived key (*exists 1 or 0); reads the certificate_id
 * column only (migration 0021 lets hsmca-cad do this, nothing more). */
enum db_status db_key_archive_exists(struct db *db, int64_t certificate_id, int *exists,
                                     struct db_err *err);
/* The certificate authority_id / serial and its archive row, for `hsmca recover` (role
 * hsmca_app). DB_ERR_NOT_FOUND when no such certificate; archived 0 when it has no row. */
struct db_key_archive {
	int64_t certificate_id;
	char *authority; /* the authority's name */
	uint8_t *der;    /* the certificate (NULL until signed) */
	size_t der_len;
	int archived;
	char *key_label;
	uint8_t *wrapped, *ct, nonce[12];
	size_t wrapped_len, ct_len;
};
enum db_status db_key_archive_get(struct db *db, int32_t authority_id, const uint8_t *serial,
                                  size_t serial_len, struct db_key_archive *out,
                                  struct db_err *err);
void db_key_archive_clear(struct db_key_archive *a);

#endif
