/*
 * The parts of a ceremony, one file each: the transcript
 * (ceremony_transcript.c), all-or-nothing outputs (ceremony_output.c), keys
 * through keyd and its provider (ceremony_keys.c), certificates and CRLs
 * (ceremony_cert.c), the RFC 5280 profile checks (ceremony_lint.c, the file
 * turned into a profile for ca-core/lint), and the order they run in
 * (ceremony_run.c).
 */
#ifndef HSMCA_CEREMONY_INTERNAL_H
#define HSMCA_CEREMONY_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "ceremony.h"
#include "keyd_client.h"

/* Formats into err and returns -1, so that "return cer_fail(...)" reads well. */
int cer_fail(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same, for a field of the ceremony file: "file:line: field: message". */
int cer_fail_at(char *err, size_t errsz, const struct ceremony *c, int line, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Appends OpenSSL's error queue (which it empties) to a message. */
void cer_append_ossl(char *err, size_t errsz);
/* "ab:cd:..." for SHA-256 fingerprints, lower-case hex without colons for file hashes. */
void cer_hex(const uint8_t *p, size_t n, int colons, char *out, size_t outsz);

/* ---- transcript: stdout as it happens, and a copy kept for the file ---- */

struct cer_transcript {
	FILE *out;
	char *buf;
	size_t len, cap;
	int oom;
};

void cer_tr_init(struct cer_transcript *t, FILE *out);
void cer_tr_free(struct cer_transcript *t);
/* A line as is. */
void cer_tr_line(struct cer_transcript *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A step with the time and its result: "2026-...Z  ok      what". */
void cer_tr_step(struct cer_transcript *t, const char *result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Text for the file only (the ceremony file itself, at the end). */
void cer_tr_file_only(struct cer_transcript *t, const char *text, size_t len);
/* Forget the file's text from len on (the terminal has seen it already). */
void cer_tr_rewind(struct cer_transcript *t, size_t len);
/* The header: who, where, when, what. */
void cer_tr_header(struct cer_transcript *t, const struct ceremony *c, const char *socket,
                   int dry_run);

/* ---- outputs: temporary files in the target folder, linked into place at the end ---- */

struct cer_output {
	const char *what; /* "certificate", "transcript", ... */
	const struct cer_path *path;
	char tmp[CER_PATH_MAX + 32];
	int fd;
	int written;
	int placed;
	uint8_t sha256[32];
};

/* Refuse an existing file; make the temporary file (proves the folder is writable). */
int cer_out_reserve(struct cer_output *o, const char *what, const struct cer_path *path,
                    const struct ceremony *c, char *err, size_t errsz);
int cer_out_write(struct cer_output *o, const void *data, size_t len, char *err, size_t errsz);
/* Link every output into place, in order; if one fails, remove those placed. */
int cer_out_place(struct cer_output *outs, size_t n, char *err, size_t errsz);
/* Remove the temporary files (placed outputs stay). Safe to call more than once. */
void cer_out_discard(struct cer_output *outs, size_t n);
/* A failed run's transcript, beside the transcript output under a name that
 * says so: "NAME-FAILED-20260101T120000Z.txt" for NAME.txt (then -2, -3, ... if
 * that exists). Written, synced and linked in one go, never over an existing
 * file; the name it got goes into placed. */
int cer_out_failed_transcript(const struct cer_path *transcript, time_t when, const void *data,
                              size_t len, char *placed, size_t placedsz, char *err, size_t errsz);

/* ---- keys through keyd and its OpenSSL provider ---- */

struct cer_keys {
	struct keyd_client *client;
	OSSL_PROVIDER *prov_keyd, *prov_default;
};

int cer_keys_open(struct cer_keys *k, const char *socket, int timeout_ms, uint16_t *version,
                  char *err, size_t errsz);
void cer_keys_close(struct cer_keys *k);
/* 0 if no key has label; -1 naming the problem (it exists, or keyd denies). */
int cer_key_absent(struct cer_keys *k, const char *label, char *err, size_t errsz);
int cer_key_get(struct cer_keys *k, const char *label, struct keyd_key *out, char *err,
                size_t errsz);
int cer_key_generate(struct cer_keys *k, const char *label, enum cer_keytype type,
                     struct keyd_key *out, char *err, size_t errsz);
/* Sensitive, always sensitive, never extractable, not extractable, made on the token. */
int cer_key_check_flags(const struct keyd_key *key, char *err, size_t errsz);
/* Does keyd's key have this type? */
int cer_key_is_type(const struct keyd_key *key, enum cer_keytype type);
/* The key through the provider (keyd:label=...); *out holds no private material. */
int cer_key_load(struct cer_keys *k, const char *label, EVP_PKEY **out, char *err, size_t errsz);
/* 1 if the two keys' SubjectPublicKeyInfo encodings are the same bytes. */
int cer_pubkey_equal_der(EVP_PKEY *a, const uint8_t *spki, size_t spki_len);
/* Sign a fresh random message with key (through keyd) and verify it with pub. */
int cer_key_test_signature(EVP_PKEY *key, EVP_PKEY *pub, enum cer_hash hash,
                           enum cer_padding padding, char *err, size_t errsz);
/* SHA-256 of a SubjectPublicKeyInfo, with colons. */
void cer_spki_fingerprint(const uint8_t *spki, size_t len, char *out, size_t outsz);
int cer_pkey_spki(EVP_PKEY *pk, uint8_t **der, size_t *len);

/* ---- certificates and CRLs ---- */

/* What goes into the certificate besides the file's fields. */
struct cer_subject_key {
	EVP_PKEY *pub;     /* the subject's public key */
	X509 *existing_ca; /* cross-sign: subject name and SKI from here */
};

/* Build the to-be-signed certificate: random serial, names, validity, extensions. */
int cer_cert_build(const struct ceremony *c, const struct cer_subject_key *sk, X509 *issuer,
                   X509 **out, char *err, size_t errsz);
int cer_cert_sign(const struct ceremony *c, X509 *x, EVP_PKEY *signer, char *err, size_t errsz);
/* revoked_serials[i] belongs to c->crl.revoked[i]. */
int cer_crl_build(const struct ceremony *c, X509 *issuer, ASN1_INTEGER **revoked_serials,
                  X509_CRL **out, char *err, size_t errsz);
int cer_crl_sign(const struct ceremony *c, X509_CRL *crl, EVP_PKEY *signer, char *err,
                 size_t errsz);
/* Digest name and RSA padding for a signature with key. */
const char *cer_md_name(enum cer_hash h);
int cer_sign_init(EVP_MD_CTX *mctx, enum cer_hash hash, enum cer_padding padding, EVP_PKEY *key,
                  char *err, size_t errsz);

/* ---- RFC 5280 profile checks: the ceremony file as the linter's profile (lint.h) ---- */

typedef void (*cer_warn_fn)(void *arg, const char *msg);

struct cer_lint {
	const struct ceremony *c;
	X509 *issuer;          /* NULL for a self-signed root */
	EVP_PKEY *issuer_pub;  /* the issuer's key from its certificate (root: its own) */
	EVP_PKEY *subject_pub; /* the key the certificate must carry */
	X509 *existing_ca;     /* cross-sign: the certificate whose SKI must be kept */
	int signed_;           /* also check and verify the signature */
	cer_warn_fn warn;
	void *warn_arg;
};

int cer_lint_cert(const struct cer_lint *l, X509 *x, char *err, size_t errsz);
int cer_lint_crl(const struct cer_lint *l, X509_CRL *crl, char *err, size_t errsz);
/* The CA/Browser Forum Baseline Requirements for CA certificates (root, intermediate,
 * cross-sign; 0 for other ceremonies): each rule the file excepts goes to note (NULL: none)
 * with the finding and the file's reason; a rule broken without an exception, or an exception
 * the certificate does not need, fails naming the rule. */
typedef void (*cer_br_note_fn)(void *arg, const char *rule, const char *section, const char *level,
                               const char *finding, const char *reason);
int cer_lint_br(const struct ceremony *c, X509 *x, cer_br_note_fn note, void *note_arg, char *err,
                size_t errsz);
/* Path validation of x with issuer as the trust anchor, at time t. */
int cer_lint_path(X509 *x, X509 *issuer, time_t t, char *err, size_t errsz);
/* The signature on x verifies with pub; the message says what to suspect when not. */
int cer_verify_cert_signature(X509 *x, EVP_PKEY *pub, char *err, size_t errsz);
int cer_verify_crl_signature(X509_CRL *crl, EVP_PKEY *pub, char *err, size_t errsz);
/* Is the issuer fit to sign this (CA, key usage, path length, validity)? */
int cer_lint_issuer(const struct ceremony *c, X509 *issuer, cer_warn_fn warn, void *warn_arg,
                    char *err, size_t errsz);

#endif
