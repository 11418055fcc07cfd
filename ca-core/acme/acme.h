/*
 * ACME (RFC 8555) as an adapter over the transport-free CA core: the protocol without any
 * transport. A request goes in as method, path (below the ACME root), content type and body;
 * a reply comes out as status, headers and body. No libevent and no HTTP server here:
 * hsmca-cad's listener hands requests in and writes replies out. Where state must be kept
 * (accounts, External Account Binding credentials) the protocol asks a store (struct
 * acme_store), so this library needs no database either; the store records every state change
 * with its audit entry.
 *
 * What is served: the directory, newNonce, newAccount (with onlyReturnExisting, contact
 * checks and External Account Binding), account update and deactivation, keyChange,
 * revokeCert, renewal information (RFC 9773), and when the store takes orders newOrder,
 * authorizations, challenges, finalize and certificate download.
 */
#ifndef HSMCA_ACME_H
#define HSMCA_ACME_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

/* --- limits --- */

/* A request body (a flattened JWS); a CSR of an RSA-4096 key fits many times over. */
#define ACME_BODY_MAX (64 * 1024)
/* A nonce as text: base64url of 8 bytes of counter and 16 bytes of MAC. */
#define ACME_NONCE_LEN 32
#define ACME_URL_MAX 512
#define ACME_THUMBPRINT_LEN 43 /* base64url of a SHA-256 digest */
#define ACME_KID_MAX 64
#define ACME_CONTACTS_MAX 8
#define ACME_CONTACT_MAX 254
#define ACME_NAME_MAX 128
#define ACME_CERT_MAX (16 * 1024) /* a certificate to revoke, DER */

/* --- base64url without padding (RFC 7515 §2) --- */

/* Encode n bytes of in into out (outsz bytes, NUL-terminated). Its length, or -1 if out is too
 * small. */
int acme_b64url_encode(const uint8_t *in, size_t n, char *out, size_t outsz);
/* Decode strictly: only the base64url alphabet, no padding, no white space, unused bits zero.
 * The decoded length, or -1. out holds outsz bytes. */
int acme_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outsz);

/* --- problem documents (RFC 7807, RFC 8555 §6.7) --- */

struct acme_problem {
	int status;    /* HTTP status; 0: no problem */
	char type[40]; /* without "urn:ietf:params:acme:error:", e.g. "badNonce" */
	char detail[512];
	int retry_after; /* seconds, for rateLimited; 0: none */
};

/* Set p; returns -1 so that callers can `return acme_problem_set(...)`. */
int acme_problem_set(struct acme_problem *p, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The problem document as JSON (badSignatureAlgorithm lists the algorithms accepted). */
json_t *acme_problem_json(const struct acme_problem *p);

/* --- nonces (RFC 8555 §6.5) --- */

/*
 * A bounded store of single-use nonces. A nonce is a counter and a MAC of it under a key made
 * at start; the store remembers, for the last `capacity` nonces issued, whether each is still
 * unused. A nonce is good once, only while it is among the last `capacity` issued, and only
 * from this process (a restart makes earlier nonces bad: the client gets badNonce and a fresh
 * one). Safe to use from several threads.
 */
struct acme_nonces {
	pthread_mutex_t mu;
	uint8_t key[32];
	uint64_t next; /* the counter of the next nonce issued */
	size_t capacity;
	uint8_t *unused; /* capacity flags, indexed by counter % capacity */
};

#define ACME_NONCES_MIN 16
#define ACME_NONCES_MAX (16 * 1024 * 1024)
/* 0, or -1 (capacity out of range, no memory, no randomness). Undo with acme_nonces_fini. */
int acme_nonces_init(struct acme_nonces *s, size_t capacity);
void acme_nonces_fini(struct acme_nonces *s);
/* A fresh nonce into out (ACME_NONCE_LEN + 1 bytes). 0, or -1. */
int acme_nonce_new(struct acme_nonces *s, char *out);
/* 1 when nonce is one this store issued and has not seen since (it is now used), else 0. */
int acme_nonce_use(struct acme_nonces *s, const char *nonce);

/* --- keys (RFC 7517, RFC 7518, RFC 7638, RFC 8037) --- */

enum acme_alg { ACME_ALG_NONE, ACME_ALG_ES256, ACME_ALG_ES384, ACME_ALG_RS256, ACME_ALG_EDDSA };

/* The algorithm named alg ("ES256", "ES384", "RS256", "EdDSA"), or ACME_ALG_NONE. */
enum acme_alg acme_alg_by_name(const char *name);
/* The names accepted, space-separated (for error messages). */
#define ACME_ALGS "ES256 ES384 RS256 EdDSA"

/* A public key from its JWK: EC P-256 or P-384, RSA of 2048 to 4096 bits, or OKP Ed25519;
 * never a private key ("d"). On success *key and thumbprint (RFC 7638, base64url of SHA-256,
 * ACME_THUMBPRINT_LEN + 1 bytes) are set and 0 is returned; else -1 with p set (badPublicKey or
 * malformed). */
int acme_jwk_key(const json_t *jwk, EVP_PKEY **key, char *thumbprint, struct acme_problem *p);
/* 1 when alg is the algorithm for key (ES256: P-256, ES384: P-384, RS256: RSA, EdDSA:
 * Ed25519). */
int acme_alg_fits(enum acme_alg alg, const EVP_PKEY *key);

/* --- JWS (RFC 7515 flattened JSON serialization, RFC 8555 §6.2) --- */

struct acme_jws {
	json_t *protected_hdr; /* the decoded protected header */
	enum acme_alg alg;
	const json_t *jwk; /* in protected_hdr, or NULL */
	const char *kid;   /* in protected_hdr, or NULL */
	const char *nonce; /* in protected_hdr, or NULL */
	const char *url;   /* in protected_hdr */
	/* The payload: NULL for the empty payload of a POST-as-GET, else a JSON object. */
	json_t *payload;
	/* The signing input (protected "." payload, as sent) and the signature. */
	char *signing_input;
	uint8_t *sig;
	size_t sig_len;
	/* From jwk, when there is one: the key and its thumbprint. */
	EVP_PKEY *key;
	char thumbprint[ACME_THUMBPRINT_LEN + 1];
};

/* Parse body (at most ACME_BODY_MAX bytes) as a flattened JWS whose protected header has alg
 * (an accepted asymmetric one: not "none", not a MAC), url, and exactly one of jwk and kid;
 * with nonce when need_nonce (an outer JWS) and without (an inner one: keyChange). No
 * unprotected header, no crit. Does not check the signature (acme_jws_verify). 0, or -1 with
 * p set; acme_jws_clear either way. */
int acme_jws_parse(const uint8_t *body, size_t len, int need_nonce, struct acme_jws *jws,
                   struct acme_problem *p);
/* Check jws's signature with key (jws->key when NULL) and that alg fits the key. 0, or -1 with
 * p set. */
int acme_jws_verify(const struct acme_jws *jws, EVP_PKEY *key, struct acme_problem *p);
void acme_jws_clear(struct acme_jws *jws);

/* --- accounts and External Account Binding (RFC 8555 §7.3) --- */

enum acme_account_status { ACME_ACCOUNT_VALID, ACME_ACCOUNT_DEACTIVATED, ACME_ACCOUNT_REVOKED };
const char *acme_account_status_name(enum acme_account_status s);

struct acme_account {
	int64_t id;
	enum acme_account_status status;
	char *jwk; /* the account key's JWK, compact JSON text (malloc) */
	char thumbprint[ACME_THUMBPRINT_LEN + 1];
	char *contact; /* JSON array text of mailto: URLs (malloc); "[]" for none */
	int tos_agreed;
	char eab_kid[ACME_KID_MAX + 1];    /* "" when not bound */
	char principal[ACME_NAME_MAX + 1]; /* who the EAB credential bound it to; "" none */
	/* The store's, read with the account (malloc; NULL: none): its credential's profiles
	 * (comma-separated) and identifier patterns (newline-separated), for its orders. */
	char *profiles, *allow;
};
void acme_account_clear(struct acme_account *a);

/* An External Account Binding credential an officer made. */
struct acme_eab {
	char kid[ACME_KID_MAX + 1];
	uint8_t hmac_key[64];
	size_t hmac_key_len;
	char principal[ACME_NAME_MAX + 1];
	int64_t account_id; /* the account it bound, 0 while unused */
};

/* The contact list of a newAccount or account update: an array of at most ACME_CONTACTS_MAX
 * "mailto:" URLs, each one address without hfields. 0, or -1 with p set (invalidContact,
 * unsupportedContact, malformed). */
int acme_contacts_check(const json_t *contact, struct acme_problem *p);

/* Check an externalAccountBinding value (§7.3.4): a flattened JWS with alg HS256, HS384 or
 * HS512, kid, url equal to url, no nonce, whose payload is account_jwk (equal as JSON) and
 * whose MAC verifies with the credential's key. The credential is looked up with lookup
 * (1: found, 0: none, -1: store error). 0 with *eab filled; or -1 with p set (unauthorized,
 * malformed, serverInternal). */
int acme_eab_verify(const json_t *binding, const json_t *account_jwk, const char *url,
                    int (*lookup)(void *ctx, const char *kid, struct acme_eab *out), void *ctx,
                    struct acme_eab *eab, struct acme_problem *p);

/* --- orders, authorizations, challenges (RFC 8555 §7.1.3-§7.1.5, §7.4, §7.5) --- */

#define ACME_IDENTS_MAX 100
#define ACME_CHALLS 3
#define ACME_TOKEN_LEN 43
/* Seconds a client should wait before polling a processing challenge or order again. */
#define ACME_POLL_RETRY_AFTER 2

struct acme_ident {
	char type[4];    /* "dns" or "ip" */
	char value[254]; /* lower-case name without "*.", or the address in its canonical text */
	int wildcard;    /* dns only: the client asked for "*." value */
};

/* An account's status ("valid", ...) and key thumbprint as a store read them with a resource
 * ("" when it does not say). */
struct acme_account_seen {
	char status[12];
	char thumbprint[ACME_THUMBPRINT_LEN + 1];
};

struct acme_order {
	int64_t id, account_id;
	char status[12]; /* pending, ready, processing, valid, invalid (an expired one: invalid) */
	int64_t expires_at;
	char *identifiers; /* JSON array text as the client named them (malloc) */
	char profile[65];
	char cert_serial[81]; /* hex; "" until valid */
	char error_type[33];  /* "" none */
	char error_detail[1025];
	int64_t not_before, not_after; /* asked for in newOrder (RFC 8555 §7.4); 0: none */
	int64_t authz[ACME_IDENTS_MAX];
	size_t n_authz;
	/* The owning account as read with the order (as in struct acme_authz). */
	struct acme_account_seen account;
};
void acme_order_clear(struct acme_order *o);

struct acme_chall {
	int64_t id;
	char type[16]; /* http-01, dns-01, tls-alpn-01 */
	char token[ACME_TOKEN_LEN + 1];
	char status[12]; /* pending, processing, valid, invalid */
	int64_t validated_at;
	char error_type[33];
	char error_detail[513];
};

struct acme_authz {
	int64_t id, account_id;
	struct acme_ident ident;
	char status[12]; /* pending, valid, invalid, deactivated, expired, revoked */
	int64_t expires_at;
	struct acme_chall ch[ACME_CHALLS];
	size_t n_ch;
	/* The owning account as read in the same statement as the authorization: a request
	 * that reads it is checked against the account as it is now without reading the
	 * account first (acme_server.c, own_authz). */
	struct acme_account_seen account;
};

/* The identifiers of a newOrder payload: 1..ACME_IDENTS_MAX objects {"type", "value"}, dns
 * names (lower-cased; "*." in front only, for a wildcard) and ip addresses (IPv4 or IPv6, in
 * canonical text), duplicates dropped. The number kept, or -1 with p set (malformed,
 * unsupportedIdentifier, rejectedIdentifier). */
int acme_identifiers_parse(const json_t *arr, struct acme_ident *out, struct acme_problem *p);
/* An RFC 3339 date-time (e.g. "2026-03-01T08:00:00Z", "2026-03-01T10:00:00.5+02:00"; a
 * fraction is dropped) as seconds since the epoch into *out: 0, or -1 when s is not one (at
 * most 40 characters, years 1970..9999). */
int acme_time_parse(const char *s, int64_t *out);
/* Whether the CSR (DER) names exactly the identifiers (n): its SANs (dns and ip only) are the
 * identifiers, and its subject's common names, if any, are among them. 0, or -1 with p set
 * (badCSR). */
int acme_csr_matches(const uint8_t *der, size_t len, const struct acme_ident *ids, size_t n,
                     struct acme_problem *p);

/*
 * Where accounts live. Every function returns 1 (done/found), 0 (not found, or for
 * account_create: the EAB credential already bound another account; for account_rekey: the
 * new key belongs to another account), or -1 (the store failed; it logged why). Every change is
 * recorded with its audit entry in the same transaction. Strings in the out structures are the
 * caller's to free (acme_account_clear).
 */
struct acme_store {
	void *ctx;
	int (*account_by_thumbprint)(void *ctx, const char *thumbprint, struct acme_account *out);
	int (*account_by_id)(void *ctx, int64_t id, struct acme_account *out);
	int (*eab_lookup)(void *ctx, const char *kid, struct acme_eab *out);
	/* Insert a (its id is set), binding a->eab_kid's credential to it when not "". */
	int (*account_create)(void *ctx, struct acme_account *a);
	/* Store a's contact and status. */
	int (*account_update)(void *ctx, const struct acme_account *a);
	/* Replace a's key by jwk with thumbprint. */
	int (*account_rekey)(void *ctx, const struct acme_account *a, const char *jwk,
	                     const char *thumbprint);
	/* Revoke cert (der, already parsed and checked: a certificate whose key signed the
	 * request when by is NULL, else asked by account by) with CRL reason. 0, or -1 with p
	 * set (malformed: not a certificate of this CA; unauthorized: not one by may revoke;
	 * alreadyRevoked; serverInternal). */
	int (*revoke_cert)(void *ctx, const struct acme_account *by, const uint8_t *der, size_t len,
	                   int reason, struct acme_problem *p);
	/* Renewal information (RFC 9773): the certificate with this authority key identifier and
	 * serial (DER INTEGER content, big-endian): its validity, and when it was revoked (0:
	 * not revoked). 1 found, 0 none, -1 the store failed. */
	int (*cert_validity)(void *ctx, const uint8_t *aki, size_t aki_len, const uint8_t *serial,
	                     size_t serial_len, int64_t *not_before, int64_t *not_after,
	                     int64_t *revoked_at);
	/* Orders; all NULL when the server takes no orders (newOrder is then not in the
	 * directory). order_new: judge ids (n, parsed; identifiers: the payload's array as JSON
	 * text) for account a (its profile, its credential's patterns, its rate limits) and add
	 * the order; 0 with *out filled, or -1 with p set (rejectedIdentifier, rateLimited,
	 * malformed, serverInternal), or 1 when the store finds the account, under its lock,
	 * not valid with the key of a's thumbprint (nothing changed: the server reads and
	 * judges the account, KEY_KID_READ). */
	/* not_before, not_after: the validity the payload asked for (0: none), judged against
	 * the profile (malformed naming the field). */
	int (*order_new)(void *ctx, const struct acme_account *a, const struct acme_ident *ids,
	                 size_t n, const char *identifiers, int64_t not_before, int64_t not_after,
	                 struct acme_order *out, struct acme_problem *p);
	int (*order_get)(void *ctx, int64_t id, struct acme_order *out); /* 1, 0, -1 */
	int (*authz_get)(void *ctx, int64_t id, struct acme_authz *out); /* 1, 0, -1 */
	/* The authorization holding challenge chall_id: 1, 0, -1. */
	int (*chall_authz_get)(void *ctx, int64_t chall_id, struct acme_authz *out);
	/* Deactivate account a's authorization az (pending or valid; RFC 8555 §7.5.2). 0, or -1
	 * with p set. */
	int (*authz_deactivate)(void *ctx, const struct acme_account *a,
	                        const struct acme_authz *az, struct acme_problem *p);
	/* Start validating challenge ch of az (pending) with key_authorization, off the
	 * caller's thread; the challenge is processing when this returns 0. -1 with p set. */
	int (*chall_start)(void *ctx, const struct acme_account *a, const struct acme_authz *az,
	                   const struct acme_chall *ch, const char *key_authorization,
	                   struct acme_problem *p);
	/* Answer challenge chall_id ({}) for account a without reading it first: when the
	 * challenge is a's and pending, its authorization pending and unexpired, and a valid with
	 * the key of a's thumbprint (all judged by the store in the statement that starts it),
	 * start validating it as chall_start does; *ch (processing) and *authz_id then say what
	 * was started: 0. 1 when nothing was started, for whatever reason (the server then reads
	 * the challenge and judges and answers as without this). -1 with p set. NULL: not
	 * offered. */
	int (*chall_answer)(void *ctx, const struct acme_account *a, int64_t chall_id,
	                    struct acme_chall *ch, int64_t *authz_id, struct acme_problem *p);
	/* Whether a challenge of authorization authz_id of account account_id is being
	 * validated by this process (started by chall_start or chall_answer): 1 with *chall_id,
	 * else 0. A read of the authorization then waits for it without a read first
	 * (acme_reply's wait_unread). NULL: not offered. */
	int (*authz_validating)(void *ctx, int64_t authz_id, int64_t account_id, int64_t *chall_id);
	/* Issue the certificate of order o (ready; the CSR, DER, names its identifiers
	 * exactly): 0 once the order is valid (o's status and cert_serial then say so, as a
	 * read would), or -1 with p set (badCSR, orderNotReady, serverInternal). */
	int (*order_finalize)(void *ctx, const struct acme_account *a, struct acme_order *o,
	                      const uint8_t *csr, size_t csr_len, struct acme_problem *p);
	/* The PEM chain of the certificate with serial (hex) that account a ordered, into *pem
	 * (malloc): alt 0 the default one (leaf first, then its issuer and what is above it),
	 * alt k (1..*n_alt) the k-th alternate chain (e.g. through a cross-signed issuer);
	 * *n_alt: how many alternates there are. 1, 0 (none of a's, or no such alternate), -1.
	 * seen gets account a's status and key thumbprint as read in the same statement ("" when
	 * the store does not say), as the reads of orders and authorizations give them. */
	int (*cert_chain)(void *ctx, const struct acme_account *a, const char *serial, int alt,
	                  char **pem, int *n_alt, struct acme_account_seen *seen);
};

/* RFC 9773's suggested renewal window for a certificate valid from not_before to not_after,
 * revoked at revoked_at (0: not) as of now: the last third of its life, from two thirds to five
 * sixths of it; a revoked certificate's window lies before now (renew at once). */
void acme_renewal_window(int64_t not_before, int64_t not_after, int64_t revoked_at, int64_t now,
                         int64_t *start, int64_t *end);
/* How long a client should wait before asking again for renewal information (seconds). */
#define ACME_ARI_RETRY_AFTER 21600

/* --- the server --- */

struct acme_config {
	/* The ACME root as clients reach it, e.g. "https://ca.example.com:8443/acme" (no trailing
	 * slash); every URL the server names starts with it. */
	char base_url[ACME_URL_MAX];
	char terms_url[ACME_URL_MAX]; /* meta.termsOfService; "" none (no agreement needed) */
	char website[ACME_URL_MAX];   /* meta.website; "" none */
	int eab_required;             /* meta.externalAccountRequired */
	size_t nonce_capacity;
};

/* Parsed account keys, so that a request signed with an account's kid does not parse the
 * account's JWK again: looked up by account id and thumbprint (a key change gives a new
 * thumbprint, so an entry of the old key is never used for the new one). The account itself
 * (its status, its key's thumbprint) is still read from the store on every request: before
 * the request's own work, or, for reads of authorizations and challenges, in the statement
 * that reads them (the entry's key and principal stand in until then, and any difference
 * means the account is read and judged as usual). */
#define ACME_KEY_CACHE 1024
struct acme_key_cache {
	pthread_mutex_t mu;
	struct acme_cached_key {
		int64_t account_id; /* 0: empty */
		char thumbprint[ACME_THUMBPRINT_LEN + 1];
		char principal[ACME_NAME_MAX + 1]; /* fixed at registration */
		/* Its credential's profiles and patterns (malloc; NULL: none), fixed when the
		 * credential was made: what newOrder judges the names by. */
		char *profiles, *allow;
		EVP_PKEY *key;
	} e[ACME_KEY_CACHE];
};

struct acme_server {
	struct acme_config cfg;
	struct acme_store store;
	struct acme_nonces nonces;
	struct acme_key_cache *keys;
};

/* 0, or -1 (see acme_nonces_init). cfg and store are copied. */
int acme_server_init(struct acme_server *s, const struct acme_config *cfg,
                     const struct acme_store *store);
void acme_server_fini(struct acme_server *s);

struct acme_request {
	const char *method;       /* "GET", "HEAD", "POST" */
	const char *path;         /* below the ACME root, e.g. "/new-account" */
	const char *content_type; /* NULL when absent */
	const uint8_t *body;
	size_t body_len;
	/* Passed to the store's functions for this request (e.g. the caller's database
	 * connection); NULL: the store's own ctx. */
	void *store_ctx;
};

/* index, up, and up to ACME_ALT_CHAINS_MAX alternates */
#define ACME_ALT_CHAINS_MAX 4
#define ACME_LINKS_MAX (2 + ACME_ALT_CHAINS_MAX)
struct acme_reply {
	int status;
	const char *content_type; /* static; NULL: no body */
	char *body;               /* malloc; acme_reply_clear frees it */
	size_t body_len;
	char replay_nonce[ACME_NONCE_LEN + 1];         /* "": none */
	char location[ACME_URL_MAX];                   /* "": none */
	char links[ACME_LINKS_MAX][ACME_URL_MAX + 32]; /* Link header values */
	int n_links;
	int retry_after;    /* seconds; 0: none */
	int cache_no_store; /* Cache-Control: no-store */
	/* A read (POST-as-GET) of an authorization or challenge while challenge wait_chall of
	 * account wait_account is processing: the caller may hold the answer until that
	 * validation settles (or a bounded wait ends) and answer with acme_reread instead.
	 * 0: nothing to wait for. */
	int64_t wait_chall, wait_account;
	/* wait_unread: the authorization was not read (its validation is in flight in this
	 * process, store.authz_validating): status is 0 and there is no body; the caller holds
	 * the request and acme_reread reads the resource then, judging the account (valid with
	 * the key of wait_thumbprint) with that read. */
	int wait_unread;
	char wait_thumbprint[ACME_THUMBPRINT_LEN + 1];
};

/* Serve one request into rep (cleared first). Never fails: a problem is a reply. */
void acme_handle(struct acme_server *s, const struct acme_request *req, struct acme_reply *rep);
void acme_reply_clear(struct acme_reply *rep);
/* rep becomes a 503 problem (with Retry-After), keeping its Replay-Nonce: for a held request
 * whose resource cannot be read at all (no database connection, the server stopping). */
void acme_reply_unavailable(struct acme_server *s, struct acme_reply *rep);
/* Read again, for account account_id, the authorization or challenge at path (a reply rep
 * said to wait for, its request already verified) and replace rep's status, body, links and
 * Retry-After with what it is now, keeping rep's Replay-Nonce. 0, or -1 (the store failed;
 * rep unchanged). When rep was not read (wait_unread), this read is the request's first: it
 * judges the account too, and always answers: a refusal (another account's authorization,
 * the account no longer valid with that key) or the store's failure replaces rep with its
 * problem (0). */
int acme_reread(struct acme_server *s, const char *path, int64_t account_id, void *store_ctx,
                struct acme_reply *rep);

#endif
