/*
 * Client library for hsmca-keyd. Thread-safe: every thread that calls in gets
 * its own connection (made on first use), so signers on several threads run
 * in parallel. A connection lost to a keyd restart is remade by the next
 * call: idempotent requests (everything but GENERATE) are retried on a fresh
 * connection until the client's timeout passes. No call blocks longer than
 * the timeout.
 */
#ifndef HSMCA_KEYD_CLIENT_H
#define HSMCA_KEYD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "keyd_proto.h"

/* Client-side statuses, beyond the wire's enum keyd_status. */
#define KEYD_E_UNREACHABLE 100 /* could not reach keyd within the timeout */
#define KEYD_E_PROTOCOL 101    /* keyd's answer did not parse or did not match */

#define KEYD_DEFAULT_TIMEOUT_MS 5000

struct keyd_client;

struct keyd_err {
	int status; /* KEYD_OK, an enum keyd_status, or KEYD_E_UNREACHABLE/PROTOCOL */
	char msg[256];
};

struct keyd_key {
	char label[KEYD_LABEL_MAX + 1];
	uint8_t type; /* enum keyd_keytype */
	uint16_t bits;
	uint8_t flags; /* KEYD_KF_* */
	uint8_t spki[KEYD_SPKI_MAX];
	size_t spki_len;
};

/* socket_path NULL means $HSMCA_KEYD_SOCKET. timeout_ms <= 0 means the default. */
struct keyd_client *keyd_client_new(const char *socket_path, int timeout_ms);
void keyd_client_free(struct keyd_client *c);
const char *keyd_client_socket(const struct keyd_client *c);

/* Each returns KEYD_OK (0) or the failing status, which is also in err. */
int keyd_client_hello(struct keyd_client *c, uint16_t *version, struct keyd_err *err);
int keyd_client_get_pubkey(struct keyd_client *c, const char *label, struct keyd_key *key,
                           struct keyd_err *err);
/* *keys is malloc'd; free() it. */
int keyd_client_list(struct keyd_client *c, struct keyd_key **keys, size_t *nkeys,
                     struct keyd_err *err);
int keyd_client_sign(struct keyd_client *c, const char *label, int alg, int hash, uint16_t salt_len,
                     const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t *sig_len,
                     struct keyd_err *err);
/* Have keyd sign data itself (SIGN_DATA): keyd reads what it is (a TBSCertificate, a
 * TBSCertList, an OCSP ResponseData, a CertificationRequestInfo, an audit checkpoint, or
 * other data, kind "digest"), checks that this client may have it signed, hashes it with
 * `hash` and signs. Data over one frame goes in frames of KEYD_CHUNK_MAX on one connection. */
int keyd_client_sign_data(struct keyd_client *c, const char *label, int alg, int hash,
                          uint16_t salt_len, const uint8_t *data, size_t data_len, uint8_t *sig,
                          size_t *sig_len, struct keyd_err *err);
int keyd_client_status(struct keyd_client *c, struct keyd_token_status *st, struct keyd_err *err);
/* keyparam: RSA modulus bits, or enum keyd_curve for EC. */
int keyd_client_generate(struct keyd_client *c, const char *label, int keytype, uint16_t keyparam,
                         struct keyd_key *key, struct keyd_err *err);
/* Encrypt a short secret (1..KEYD_WRAP_DATA_MAX bytes, e.g. a backup's data key) under the
 * AES key `label` on the token (AES-256-GCM, docs/keyd-protocol.md), and back. *blob_len /
 * *secret_len give the room and receive the length. An unwrap whose blob does not
 * authenticate fails with KEYD_E_BAD_ALG. The client's receive buffer briefly holds the
 * secret. */
int keyd_client_wrap(struct keyd_client *c, const char *label, const uint8_t *secret,
                     size_t secret_len, uint8_t *blob, size_t *blob_len, struct keyd_err *err);
int keyd_client_unwrap(struct keyd_client *c, const char *label, const uint8_t *blob,
                       size_t blob_len, uint8_t *secret, size_t *secret_len, struct keyd_err *err);
/* activation: quorum (docs/quorum.md). Present a share file (unseal; the answer is the
 * quorum's state after it: k of M, sealed or not), seal keyd, or read the quorum's state.
 * A keyd whose activation is file answers quorum with activation 1 and refuses the others. */
int keyd_client_unseal(struct keyd_client *c, const uint8_t *share, size_t share_len,
                       struct keyd_quorum_status *q, struct keyd_err *err);
int keyd_client_seal(struct keyd_client *c, struct keyd_quorum_status *q, struct keyd_err *err);
int keyd_client_quorum(struct keyd_client *c, struct keyd_quorum_status *q, struct keyd_err *err);
/* keyd's metrics in the Prometheus text format (docs/keyd.md), NUL-terminated in text (cap
 * bytes; KEYD_METRICS_MAX + 1 always fits). */
int keyd_client_metrics(struct keyd_client *c, char *text, size_t cap, struct keyd_err *err);

#endif
