/*
 * Key ceremonies: one declarative YAML file describes one ceremony (a root, an
 * intermediate, a bare key, a cross-signature, a delegated OCSP signer or a
 * CRL). The file is parsed completely into struct ceremony before anything
 * else happens; ceremony_run() then checks every input, asks keyd for the
 * keys, builds, lints, signs, lints and verifies, and places every output and
 * the transcript at once or none of them. A failed run places its transcript
 * alone, under a name that says it failed. docs/ceremony.md is the reference.
 */
#ifndef HSMCA_CEREMONY_H
#define HSMCA_CEREMONY_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "keyd_proto.h"

#define CER_PATH_MAX 1024
#define CER_ERR_MAX 1024
#define CER_URL_MAX 512
#define CER_VALUE_MAX 256
#define CER_MAX_RDNS 16
#define CER_MAX_URLS 8
#define CER_MAX_POLICIES 8
#define CER_MAX_EKUS 8
#define CER_MAX_SUBTREES 32
#define CER_MAX_REVOKED 256
#define CER_OID_MAX 128
#define CER_MAX_BR_EXCEPTIONS 16
#define CER_BR_RULE_MAX 64

enum cer_type {
	CER_ROOT = 1,
	CER_INTERMEDIATE,
	CER_KEY,
	CER_CROSS_SIGN,
	CER_OCSP_SIGNER,
	CER_CRL,
};

enum cer_keytype {
	CER_KT_NONE = 0,
	CER_KT_RSA2048,
	CER_KT_RSA3072,
	CER_KT_RSA4096,
	CER_KT_EC_P256,
	CER_KT_EC_P384,
};

enum cer_hash { CER_HASH_SHA256 = 1, CER_HASH_SHA384, CER_HASH_SHA512 };
enum cer_padding { CER_PAD_DEFAULT = 0, CER_PAD_PKCS1, CER_PAD_PSS };

/* keyUsage bits, as in RFC 5280 (bit 0 = digitalSignature). */
#define CER_KU_DIGITAL_SIGNATURE 0x001
#define CER_KU_CONTENT_COMMITMENT 0x002
#define CER_KU_KEY_ENCIPHERMENT 0x004
#define CER_KU_DATA_ENCIPHERMENT 0x008
#define CER_KU_KEY_AGREEMENT 0x010
#define CER_KU_KEY_CERT_SIGN 0x020
#define CER_KU_CRL_SIGN 0x040

/* CRL reason codes (RFC 5280 5.3.1); hold and removeFromCRL are not offered. */
enum cer_reason {
	CER_REASON_UNSPECIFIED = 0,
	CER_REASON_KEY_COMPROMISE = 1,
	CER_REASON_CA_COMPROMISE = 2,
	CER_REASON_AFFILIATION_CHANGED = 3,
	CER_REASON_SUPERSEDED = 4,
	CER_REASON_CESSATION_OF_OPERATION = 5,
	CER_REASON_PRIVILEGE_WITHDRAWN = 9,
	CER_REASON_AA_COMPROMISE = 10,
};

/* One relative distinguished name: a single attribute. */
struct cer_rdn {
	int nid;
	char value[CER_VALUE_MAX];
	int line;
};

struct cer_name {
	struct cer_rdn rdn[CER_MAX_RDNS];
	size_t n;
	int line;
};

struct cer_url {
	char url[CER_URL_MAX];
	int line;
};

enum cer_gn_kind { CER_GN_DNS = 1, CER_GN_EMAIL, CER_GN_IP, CER_GN_DIR };

/* A name-constraints subtree base. */
struct cer_subtree {
	enum cer_gn_kind kind;
	char text[CER_VALUE_MAX]; /* dns/email: the name; ip: as written */
	uint8_t ip[32];           /* ip: address then mask (8 or 32 octets) */
	size_t ip_len;
	struct cer_name dir;
	int line;
};

struct cer_policy {
	char oid[CER_OID_MAX];
	char cps[CER_URL_MAX]; /* empty: no CPS qualifier */
	int line;
};

/* Paths as written in the file (relative to its folder) and resolved. */
struct cer_path {
	char as_written[CER_PATH_MAX];
	char resolved[CER_PATH_MAX];
	int line;
};

struct cer_cert_fields {
	struct cer_name subject; /* empty for cross-sign: taken from the existing CA */
	time_t not_before, not_after;
	int line_not_before, line_not_after;
	unsigned key_usage;
	int line_key_usage;
	char eku[CER_MAX_EKUS][CER_OID_MAX]; /* dotted OIDs */
	size_t n_eku;
	int line_eku;
	int has_path_length;
	long path_length;
	int line_path_length;
	struct cer_policy policies[CER_MAX_POLICIES];
	size_t n_policies;
	struct cer_url crl_dp[CER_MAX_URLS];
	size_t n_crl_dp;
	struct cer_url ocsp[CER_MAX_URLS];
	size_t n_ocsp;
	struct cer_url ca_issuers[CER_MAX_URLS];
	size_t n_ca_issuers;
	struct cer_subtree permitted[CER_MAX_SUBTREES];
	size_t n_permitted;
	struct cer_subtree excluded[CER_MAX_SUBTREES];
	size_t n_excluded;
	int line_name_constraints;
	int line;
};

/* A private-PKI exception to a CA/Browser Forum Baseline Requirements rule for CA
 * certificates (ca-core/lint/lint_br.h): the rule's name and why; both go into the transcript. */
struct cer_br_exception {
	char rule[CER_BR_RULE_MAX];
	char reason[CER_VALUE_MAX];
	int line;
};

struct cer_revoked {
	struct cer_path certificate; /* either a certificate file ... */
	char serial_hex[41];         /* ... or a serial, hex, at most 20 octets */
	time_t revoked_at;
	enum cer_reason reason;
	int line;
};

struct cer_crl_fields {
	char number[48]; /* decimal, at most 20 octets */
	time_t this_update, next_update;
	int line_this_update, line_next_update;
	struct cer_revoked revoked[CER_MAX_REVOKED];
	size_t n_revoked;
	int line;
};

struct ceremony {
	char name[CER_PATH_MAX]; /* the file as named by the operator */
	char dir[CER_PATH_MAX];  /* its folder: file paths are relative to it */
	char stem[256];          /* file name without folder and .yaml/.yml */
	uint8_t sha256[32];      /* of the file's bytes */
	char *text;              /* the file's bytes, NUL-terminated */
	size_t text_len;
	time_t now; /* "now" in the file: the ceremony's start, whole seconds */

	enum cer_type type;
	int line_type;
	char description[512];

	struct {
		char label[KEYD_LABEL_MAX + 1];
		enum cer_keytype type; /* CER_KT_NONE: existing key of any type */
		int existing;
		/* Instead of a label: a key on another token, by its CSR (proof of
		 * possession), as the key ceremony that made it wrote it. */
		struct cer_path csr;
		int has_csr;
		int line, line_label, line_type;
	} key;
	int has_key;

	struct {
		char label[KEYD_LABEL_MAX + 1];
		struct cer_path certificate;
		int line, line_label;
	} issuer;
	int has_issuer;

	struct {
		struct cer_path certificate;
		char label[KEYD_LABEL_MAX + 1]; /* optional: the CA's key is on this token */
		int line, line_label;
	} existing_ca;
	int has_existing_ca;

	struct {
		enum cer_hash hash;
		enum cer_padding padding;
		int line, line_hash, line_padding;
	} sig;
	int has_sig;

	struct cer_cert_fields cert;
	int has_cert;
	struct cer_crl_fields crl;
	int has_crl;

	/* CA certificates only: BR rules this ceremony's certificate may break, with reasons. */
	struct cer_br_exception br_exceptions[CER_MAX_BR_EXCEPTIONS];
	size_t n_br_exceptions;
	int line_br_exceptions;

	struct {
		struct cer_path certificate, public_key, csr, crl, transcript;
		int line;
	} out;
};

/* Parse a ceremony file completely. now is what "now" in the file means.
 * 0, or -1 with "file:line: field: why" in err. *out is freed with ceremony_free. */
int ceremony_parse_file(const char *path, time_t now, struct ceremony **out, char *err,
                        size_t errsz);
/* The same from memory; name is used in messages and for the folder. */
int ceremony_parse_mem(const char *name, const void *buf, size_t len, time_t now,
                       struct ceremony **out, char *err, size_t errsz);
void ceremony_free(struct ceremony *c);

const char *ceremony_type_name(enum cer_type t);
const char *ceremony_keytype_name(enum cer_keytype t);
const char *ceremony_hash_name(enum cer_hash h);
const char *ceremony_reason_name(enum cer_reason r);
/* "2026-01-01T00:00:00Z" */
void ceremony_time_str(time_t t, char *buf, size_t n);

struct ceremony_opts {
	const char *socket; /* NULL: $HSMCA_KEYD_SOCKET */
	int dry_run;        /* check everything, generate and sign nothing, write nothing */
	FILE *out;          /* the transcript as it is made; NULL: stdout */
	int timeout_ms;     /* keyd client timeout; 0: the client's default */
	/* Quorum approval (docs/approvals.md): when set, the ceremony file's SHA-256 must be
	 * approved_sha256 (lower-case hex) or nothing runs, and approval (one line naming the
	 * request, its requester and its approvers) goes into the transcript's header. */
	const char *approved_sha256;
	const char *approval;
};

/* Run the ceremony in path. 0 on success; -1 with the reason in err (the
 * transcript stream also shows it). No output is written unless everything
 * succeeded; a live run that fails after the file parsed writes its
 * transcript, ending with the failure, the key it left on the token and what
 * to do next, as NAME-FAILED-<time>.txt beside the transcript output NAME.txt,
 * and err ends with that file's name. It loads the keyd and default
 * providers into OpenSSL's default library context and sets its default
 * properties to "?provider=default". The provider keeps the first keyd socket
 * it used for the life of the process (docs/provider.md), so ceremonies
 * against different keyds run in different processes (as `hsmca ceremony
 * run` does). */
int ceremony_run(const char *path, const struct ceremony_opts *o, char *err, size_t errsz);

#endif
