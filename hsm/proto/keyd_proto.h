/*
 * hsmca-keyd wire protocol: the whole protocol on one screen.
 *
 * Every message is a frame: a 4-byte big-endian body length, then the body.
 * The body length is 1..KEYD_FRAME_MAX. A request body is
 *   u8 op | u32 request id | op payload
 * and a response body is
 *   u8 op | u32 request id | u8 status | payload (on OK) or str message (otherwise).
 * Integers are big-endian; "str" and "blob" are a u16 length followed by
 * that many bytes. Parsing is strict: a field that does not fit, a value out
 * of range or bytes left over make the frame malformed. docs/keyd-protocol.md
 * describes every operation and status.
 */
#ifndef HSMCA_KEYD_PROTO_H
#define HSMCA_KEYD_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Version 2 added unseal, seal and quorum-status and the statuses sealed and share; version 3
 * the token's capabilities at the end of status. keyd still speaks 1 and 2
 * (docs/keyd-protocol.md, "Versioning"). */
#define KEYD_PROTO_VERSION 3
#define KEYD_PROTO_VERSION_MIN 1
#define KEYD_FRAME_MAX 65536u /* body bytes, excluding the 4-byte length */
#define KEYD_LABEL_MAX 64
#define KEYD_MSG_MAX 200
#define KEYD_DIGEST_MAX 64
#define KEYD_SIG_MAX 1024 /* RSA-4096 is 512 bytes, DER ECDSA P-384 at most 104 */
#define KEYD_SPKI_MAX 1024
#define KEYD_NAME_MAX 64
/* WRAP: at most this much secret (a backup's data key) per request, and the wrapped form:
 * u8 format (1) | 12-byte GCM nonce | ciphertext | 16-byte tag. */
#define KEYD_WRAP_DATA_MAX 512
#define KEYD_WRAP_OVERHEAD (1 + 12 + 16)
#define KEYD_WRAP_BLOB_MAX (KEYD_WRAP_DATA_MAX + KEYD_WRAP_OVERHEAD)
/* METRICS: the text answer's bound (it must fit one frame). */
#define KEYD_METRICS_MAX 60000
/* UNSEAL: a quorum share file (hsm/quorum/quorum.h), at most this long; QUORUM_STATUS: the
 * custodians still expected, names joined by ", ". */
#define KEYD_SHARE_MAX 1024
#define KEYD_EXPECTED_MAX 1100
/* SIGN_DATA: at most this much data per frame. Certificates, certificate requests and their
 * kin must arrive in one frame; CRLs, OCSP responses, checkpoints and other data may stream. */
#define KEYD_CHUNK_MAX 65000u
/* SIGN_DATA flags: more frames of this data follow; this frame continues open data. */
#define KEYD_SD_MORE 0x01
#define KEYD_SD_CONT 0x02

/* What keyd signs through SIGN_DATA, as it reads it from the data's DER (docs/keyd.md).
 * DIGEST is anything that is none of the others, and SIGN of a precomputed digest. */
enum keyd_kind {
	KEYD_KIND_DIGEST = 0,
	KEYD_KIND_CERTIFICATE = 1,    /* TBSCertificate, basicConstraints cA FALSE or absent */
	KEYD_KIND_CA_CERTIFICATE = 2, /* TBSCertificate with cA TRUE, or version 1 */
	KEYD_KIND_CRL = 3,            /* TBSCertList */
	KEYD_KIND_OCSP = 4,           /* OCSP ResponseData */
	KEYD_KIND_CSR = 5,            /* CertificationRequestInfo */
	KEYD_KIND_CHECKPOINT = 6,     /* hsmca audit checkpoint (docs/keyd-protocol.md) */
	KEYD_KIND_MAX_ = 6,
};

enum keyd_op {
	KEYD_OP_HELLO = 1,
	KEYD_OP_LIST_KEYS = 2,
	KEYD_OP_GET_PUBKEY = 3,
	KEYD_OP_SIGN = 4,
	KEYD_OP_STATUS = 5,
	KEYD_OP_GENERATE = 6,
	KEYD_OP_WRAP = 7,       /* encrypt a short secret under an AES key on the token */
	KEYD_OP_UNWRAP = 8,     /* and back */
	KEYD_OP_METRICS = 9,    /* Prometheus text: counters, latencies, per-key signatures */
	KEYD_OP_SIGN_DATA = 10, /* sign the data itself (keyd tells its kind and hashes it) */
	KEYD_OP_UNSEAL = 11,    /* v2: a custodian presents a quorum share */
	KEYD_OP_SEAL = 12,      /* v2: drop the login and forget the PIN */
	KEYD_OP_QUORUM = 13,    /* v2: activation, sealed, k of M, custodians still expected */
	KEYD_OP_MAX_ = 13,
};

enum keyd_status {
	KEYD_OK = 0,
	KEYD_E_MALFORMED = 1, /* request could not be parsed; connection is closed */
	KEYD_E_VERSION = 2,   /* no common protocol version */
	KEYD_E_DENIED = 3,    /* peer, key or operation not granted */
	KEYD_E_NO_KEY = 4,    /* no such key on the token */
	KEYD_E_BAD_ALG = 5,   /* algorithm/hash/digest does not fit the key */
	KEYD_E_BUSY = 6,      /* queue full: retry later */
	KEYD_E_OFFLINE = 7,   /* token offline, keyd is recovering: retry later */
	KEYD_E_HSM = 8,       /* the module refused the operation */
	KEYD_E_EXISTS = 9,    /* generate: label already in use */
	KEYD_E_INTERNAL = 10,
	KEYD_E_SEALED = 11, /* v2: keyd waits for its quorum to unseal it: retry later */
	KEYD_E_SHARE = 12,  /* v2: unseal: the share is corrupted, another quorum's or repeated */
	KEYD_E_MAX_ = 12,
};

/* AES keys (keyparam 256) serve WRAP/UNWRAP only; they have no public half. */
enum keyd_keytype { KEYD_KEY_RSA = 1, KEYD_KEY_EC = 2, KEYD_KEY_AES = 3 };
enum keyd_curve { KEYD_CURVE_P256 = 1, KEYD_CURVE_P384 = 2 };
enum keyd_alg { KEYD_ALG_RSA_PKCS1 = 1, KEYD_ALG_RSA_PSS = 2, KEYD_ALG_ECDSA = 3 };
enum keyd_hash { KEYD_HASH_SHA256 = 1, KEYD_HASH_SHA384 = 2, KEYD_HASH_SHA512 = 3 };

/* keyinfo.flags: the token's attributes for the private key */
#define KEYD_KF_SENSITIVE 0x01
#define KEYD_KF_EXTRACTABLE 0x02
#define KEYD_KF_ALWAYS_SENSITIVE 0x04
#define KEYD_KF_NEVER_EXTRACTABLE 0x08
#define KEYD_KF_LOCAL 0x10

struct keyd_req {
	uint8_t op;
	uint32_t id;
	/* HELLO */
	uint16_t vmin, vmax;
	/* GET_PUBKEY, SIGN, GENERATE */
	char label[KEYD_LABEL_MAX + 1];
	/* SIGN, SIGN_DATA */
	uint8_t alg, hash;
	uint16_t salt_len;
	uint8_t digest[KEYD_DIGEST_MAX];
	size_t digest_len;
	/* SIGN_DATA: KEYD_SD_* flags and this frame's data, pointing into the frame */
	uint8_t flags;
	const uint8_t *sdata;
	size_t sdata_len;
	/* GENERATE: keytype, and bits (RSA, AES) or enum keyd_curve (EC) */
	uint8_t keytype;
	uint16_t keyparam;
	/* UNSEAL: the share file (1..KEYD_SHARE_MAX bytes), pointing into the frame */
	const uint8_t *share;
	size_t share_len;
	/* WRAP: the secret (1..KEYD_WRAP_DATA_MAX); UNWRAP: the wrapped blob */
	uint8_t data[KEYD_WRAP_BLOB_MAX];
	size_t data_len;
};

struct keyd_keyinfo {
	char label[KEYD_LABEL_MAX + 1];
	uint8_t type;        /* enum keyd_keytype */
	uint16_t bits;       /* modulus, field or AES key size */
	uint8_t flags;       /* KEYD_KF_* */
	const uint8_t *spki; /* DER SubjectPublicKeyInfo, points into the frame; none for AES */
	size_t spki_len;
};

/* STATUS (version 3): what the token says it can do, as keyd asked it at its last bring-up
 * (docs/hsm-compatibility.md). The PKCS#11 values travel as they are: CKF_* token and
 * mechanism flags, CKM_* mechanism numbers, key sizes in the token's unit (bits; bytes for
 * AES). */
#define KEYD_CAPS_TOKEN_INFO 0x01 /* C_GetTokenInfo answered: flags, sessions, versions */
#define KEYD_CAPS_MECHS 0x02      /* the token listed its mechanisms: absent ones are missing */
#define KEYD_CAPS_MECH_MAX 16
#define KEYD_CAPS_TEXT_MAX 32 /* manufacturer, model: printable ASCII, trimmed */
struct keyd_mech_cap {
	uint32_t mech, min_size, max_size, flags;
};
struct keyd_token_caps {
	uint8_t present; /* the answer carried capabilities (a version 3 keyd) */
	uint8_t have;    /* KEYD_CAPS_*; 0 while the token is sealed or being re-initialised */
	uint32_t token_flags;
	uint32_t max_sessions; /* 0: no limit stated */
	uint8_t hw_major, hw_minor, fw_major, fw_minor;
	char manufacturer[KEYD_CAPS_TEXT_MAX + 1], model[KEYD_CAPS_TEXT_MAX + 1];
	uint8_t nmechs; /* of keyd's mechanisms (keyd_mechs), those the token has */
	struct keyd_mech_cap mechs[KEYD_CAPS_MECH_MAX];
};
/* The PKCS#11 mechanisms keyd uses, in the order status reports them. */
#define KEYD_NMECHS 7
extern const uint32_t keyd_mechs[KEYD_NMECHS];
/* "CKM_ECDSA", and what keyd does with it ("ECDSA signatures"); NULL for another mechanism. */
const char *keyd_mech_name(uint32_t mech);
const char *keyd_mech_use(uint32_t mech);

struct keyd_token_status {
	uint8_t online;
	char token[KEYD_NAME_MAX + 1];
	uint32_t keys, workers, queue_depth, queue_max, reinits;
	uint64_t signs_ok, signs_failed, requests_denied;
	struct keyd_token_caps caps; /* after the rest, from version 3 */
};

/* UNSEAL, SEAL, QUORUM. activation: 1 file (no quorum), 2 quorum. */
struct keyd_quorum_status {
	uint8_t activation;
	uint8_t sealed;
	uint8_t presented, threshold, total;
	char expected[KEYD_EXPECTED_MAX + 1];
};

struct keyd_resp {
	uint8_t op;
	uint32_t id;
	uint8_t status;
	char msg[KEYD_MSG_MAX + 1]; /* when status != KEYD_OK */
	/* HELLO */
	uint16_t version;
	char server[KEYD_NAME_MAX + 1];
	/* GET_PUBKEY, GENERATE */
	struct keyd_keyinfo key;
	/* LIST_KEYS: count and the raw, already validated, key records */
	uint16_t nkeys;
	const uint8_t *keys;
	size_t keys_len;
	/* SIGN; WRAP and UNWRAP (the wrapped blob, the secret); METRICS (the text) */
	const uint8_t *sig;
	size_t sig_len;
	/* STATUS */
	struct keyd_token_status st;
	/* UNSEAL, SEAL, QUORUM */
	struct keyd_quorum_status q;
};

/* A bounded writer: once a write does not fit, err is set and stays set. */
struct keyd_wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

/* A strict reader over one frame body. */
struct keyd_rbuf {
	const uint8_t *p;
	size_t len, off;
	int err;
};

const char *keyd_op_name(int op);
const char *keyd_status_name(int status);
const char *keyd_alg_name(int alg);
const char *keyd_hash_name(int hash);
/* "certificate", "ca-certificate", "crl", "ocsp-response", "csr", "audit-checkpoint",
 * "digest"; and back (-1 for an unknown name). */
const char *keyd_kind_name(int kind);
int keyd_kind_from_name(const char *name);
size_t keyd_hash_len(int hash);
/* 1 if label is 1..KEYD_LABEL_MAX of [A-Za-z0-9._-] */
int keyd_label_valid(const char *label);
/* 1 for statuses that a client should retry after a pause */
int keyd_status_retryable(int status);

/* Frame length prefix: returns 0 and the body length, -1 if it is 0 or over the maximum. */
int keyd_frame_len(const uint8_t hdr[4], uint32_t *body_len);

/* Decode a request body. On failure returns -1 and a static reason in *why. */
int keyd_req_decode(const uint8_t *body, size_t len, struct keyd_req *req, const char **why);
/* Encode a whole request frame (length prefix included). */
int keyd_req_encode(const struct keyd_req *req, struct keyd_wbuf *w);

/* Decode a response body; pointers in resp point into body. */
int keyd_resp_decode(const uint8_t *body, size_t len, struct keyd_resp *resp, const char **why);
/* Iterate the key records of a LIST_KEYS response: returns 1 with *ki filled, 0 at the end. */
int keyd_list_next(struct keyd_rbuf *r, struct keyd_keyinfo *ki);

/* Response building: begin writes the length placeholder and header, end patches the length. */
void keyd_resp_begin(struct keyd_wbuf *w, uint8_t op, uint32_t id, uint8_t status);
int keyd_resp_end(struct keyd_wbuf *w);
/* A whole error response frame with a message. */
int keyd_resp_error(struct keyd_wbuf *w, uint8_t op, uint32_t id, uint8_t status, const char *msg);
void keyd_put_keyinfo(struct keyd_wbuf *w, const struct keyd_keyinfo *ki);
void keyd_put_status(struct keyd_wbuf *w, const struct keyd_token_status *st);
/* The capabilities after the status record: only on a connection that agreed on version 3. */
void keyd_put_caps(struct keyd_wbuf *w, const struct keyd_token_caps *caps);
void keyd_put_quorum(struct keyd_wbuf *w, const struct keyd_quorum_status *q);

void keyd_put_u8(struct keyd_wbuf *w, uint8_t v);
void keyd_put_u16(struct keyd_wbuf *w, uint16_t v);
void keyd_put_u32(struct keyd_wbuf *w, uint32_t v);
void keyd_put_u64(struct keyd_wbuf *w, uint64_t v);
void keyd_put_blob(struct keyd_wbuf *w, const void *p, size_t n);
void keyd_put_str(struct keyd_wbuf *w, const char *s);

#endif
