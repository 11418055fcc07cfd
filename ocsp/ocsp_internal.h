/* Shared inside ocsp/ only: the authorities served, the cache of pre-signed answers, response
 * signing, the database thread, the signer pool and the HTTP workers. */
#ifndef HSMCA_OCSP_INTERNAL_H
#define HSMCA_OCSP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "db.h"
#include "ocsp_parse.h"
#include "ocspd.h"

#define OCSP_MAX_CAS 64
#define OCSP_VARIANTS 2 /* pre-signed CertID hashes: SHA-1 and SHA-256 */

/* OCSPResponseStatus values (RFC 6960 4.2.1) for unsigned error answers. */
enum ocsp_error {
	OCSP_MALFORMED = 1,
	OCSP_INTERNAL = 2,
	OCSP_TRY_LATER = 3,
	OCSP_UNAUTHORIZED = 6
};

/* A signed response ready to send: immutable once published. data holds the fixed header
 * lines (status line to Expires, each ending in CRLF) and then the DER. */
struct ocsp_answer {
	int64_t this_update, next_update;
	char etag[36]; /* "<hex>" with its quotes */
	size_t head_len, der_len;
	uint8_t data[];
};

struct ocsp_answer *ocsp_answer_new(const uint8_t *der, size_t der_len, int64_t this_update,
                                    int64_t next_update);
static inline const uint8_t *ocsp_answer_der(const struct ocsp_answer *a)
{
	return a->data + a->head_len;
}

/* One authority served. Immutable after it is published except for the signer fields, which
 * change under the cache's write lock (readers up-ref what they use). */
struct ocsp_ca {
	int32_t db_id;
	char name[129];
	char key_label[256];
	X509 *cert;
	uint8_t name_hash[4][64], key_hash[4][64]; /* per enum ocsp_hash */
	/* settings from authority_settings */
	int64_t validity;
	int64_t nonce_rate;                      /* per second; 0 unlimited */
	char signer_label[DB_KEY_LABEL_MAX + 1]; /* the key that signs: CA's or delegated */
	char want_label[DB_KEY_LABEL_MAX + 1];   /* the key the settings name */
	EVP_PKEY *signer_key;                    /* NULL until loaded through keyd */
	X509 *signer_cert;                       /* the CA's certificate or the responder's */
	int delegated;
	/* nonce rate limit: a token bucket (mutex: rarely contended, nonce requests only) */
	pthread_mutex_t bucket_mu;
	double tokens;
	int64_t bucket_ms;
};

/* A certificate's state and its pre-signed answers. */
struct ocsp_entry {
	int ca; /* index into the authority table */
	uint8_t serial_len;
	uint8_t serial[DB_SERIAL_MAX];
	enum db_cert_status status; /* issued, revoked or hold */
	int64_t revoked_at;
	int reason;
	struct ocsp_answer *ans[OCSP_VARIANTS];
};

struct ocsp_cache {
	pthread_rwlock_t lock; /* writer-preferring: a revocation never waits behind readers */
	struct ocsp_entry **slots;
	size_t cap, count; /* cap a power of two, count <= cap / 2 */
};

int ocsp_cache_init(struct ocsp_cache *c);
void ocsp_cache_destroy(struct ocsp_cache *c);
/* Under the caller's lock. */
struct ocsp_entry *ocsp_cache_find(const struct ocsp_cache *c, int ca, const uint8_t *serial,
                                   size_t len);
/* Under the write lock; the entry must not be there yet. 0 or -1 (no memory). */
int ocsp_cache_insert(struct ocsp_cache *c, struct ocsp_entry *e);

/* Everything a process needs, shared by the threads. */
struct ocspd {
	struct ocspd_config cfg;
	/* authorities: appended by the database thread; n_cas published last */
	struct ocsp_ca cas[OCSP_MAX_CAS];
	_Atomic int n_cas;
	X509 *responders[OCSPD_MAX_RESPONDERS];
	size_t n_responders;
	struct ocsp_cache cache;
	/* health */
	atomic_int db_up, keyd_up, synced, loaded;
	/* back in touch with the database after losing it, statuses not all read again yet:
	 * announcements may have been missed, so no "good" is served, not even a cached one */
	atomic_int resyncing;
	atomic_llong signed_count;
	/* "unknown" answers: a token bucket (cfg.unknown_per_second), and those refused */
	pthread_mutex_t unknown_mu;
	double unknown_tokens;
	int64_t unknown_ms;
	atomic_llong unknown_refused;
	atomic_int conns;
	atomic_int stopping;
	struct ocsp_sync *sync;
	struct ocsp_signer *signer;
	struct ocsp_server *server;
};

/* The issuer of a CertID among the authorities served, or -1. */
int ocsp_ca_match(struct ocspd *d, const struct ocsp_certid *id);
/* Take one nonce token of authority ca: 1 if allowed. */
int ocsp_ca_nonce_allowed(struct ocsp_ca *ca);
/* Take one token for signing an "unknown" answer (any authority): 1 if allowed. A flood of
 * requests for serials nobody issued must not take keyd's signing capacity from cad. */
int ocsp_unknown_allowed(struct ocspd *d);

/* ---- signing (ocsp_sign.c) ---- */

struct ocsp_single {
	const uint8_t *certid_der; /* as the request had it */
	size_t certid_len;
	int status; /* V_OCSP_CERTSTATUS_GOOD / REVOKED / UNKNOWN */
	int64_t revoked_at;
	int reason; /* -1: none */
};

/* A signed BasicOCSPResponse inside an OCSPResponse, DER in *der (OPENSSL_free). 0, or -1
 * with err (a keyd failure when the signature failed). */
int ocsp_sign(EVP_PKEY *key, X509 *signer_cert, int delegated, const struct ocsp_single *s,
              size_t n, const uint8_t *nonce_ext, size_t nonce_len, int64_t this_update,
              int64_t next_update, uint8_t **der, size_t *der_len, char *err, size_t errsz);
/* The DER CertID of a certificate of ca with the given hash (SHA-1 or SHA-256). */
int ocsp_certid_der(const struct ocsp_ca *ca, int variant, const uint8_t *serial, size_t len,
                    uint8_t **der, size_t *der_len);
/* The CertStatus of an entry's state. */
int ocsp_cert_status(enum db_cert_status st);
/* Load the CA's signer (its own key or the delegated responder's) through keyd. 0 or -1. */
int ocsp_ca_load_signer(struct ocspd *d, struct ocsp_ca *ca, const char *label, char *err,
                        size_t errsz);
/* Pre-sign one variant of an entry's answer with the CA's current signer. NULL on failure. */
struct ocsp_answer *ocsp_presign(struct ocspd *d, int ca, int variant, const uint8_t *serial,
                                 size_t serial_len, enum db_cert_status st, int64_t revoked_at,
                                 int reason, int64_t now, char *err, size_t errsz);

/* ---- threads ---- */

int ocsp_sync_start(struct ocspd *d, char *err, size_t errsz);
void ocsp_sync_stop(struct ocspd *d);
/* Ask the database thread to adopt a certificate found by a signer (not yet cached). */
void ocsp_sync_adopt(struct ocspd *d, int32_t authority_id, const uint8_t *serial, size_t len);

struct ocsp_job;
int ocsp_signer_start(struct ocspd *d, char *err, size_t errsz);
void ocsp_signer_stop(struct ocspd *d);
/* Queue a request that needs a fresh signature; done is called on a signer thread with the
 * complete HTTP response bytes (owned by the callee) or NULL. 0, or -1 when the queue is
 * full. */
typedef void (*ocsp_job_done)(void *arg, uint8_t *http, size_t len);
int ocsp_signer_submit(struct ocspd *d, const uint8_t *der, size_t der_len, int use_nonce,
                       int keep_alive, int head_only, ocsp_job_done done, void *arg);

/* ---- HTTP bits shared by the workers and the signers (ocsp_server.c) ---- */

/* A complete HTTP response for an answer: cache headers per RFC 5019 (or no-store). Into out
 * (cap bytes); returns the length or 0 when it does not fit. */
size_t ocsp_http_answer(const struct ocsp_answer *a, int64_t now, int no_store, int keep_alive,
                        int head_only, uint8_t *out, size_t cap);
/* 304 Not Modified for a conditional GET whose If-None-Match names the answer's ETag; 0 when
 * it does not (RFC 9110 13.1.2: a list of entity tags, or "*"). */
size_t ocsp_http_not_modified(const struct ocsp_answer *a, const char *inm, size_t inm_len,
                              int64_t now, int keep_alive, uint8_t *out, size_t cap);
/* An unsigned OCSP error response (RFC 6960 4.2.1). */
size_t ocsp_http_error(enum ocsp_error e, int keep_alive, uint8_t *out, size_t cap);

int ocsp_server_start(struct ocspd *d, char *err, size_t errsz);
int ocsp_server_run(struct ocspd *d);
void ocsp_server_free(struct ocspd *d);

int64_t ocsp_now(void);
int64_t ocsp_now_ms(void);

#endif
