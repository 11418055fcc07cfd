/* Server-side key generation (POST /api/v1/certificates/serverkeygen, docs/api.md): the
 * request body's parser, apart so that tests/fuzz/fuzz_serverkeygen_json can reach it. */
#ifndef HSMCA_CAD_KEYGEN_H
#define HSMCA_CAD_KEYGEN_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca.h"
#include "db.h"

#define CAD_SKG_MAX_SUBJECT 8  /* subject fields */
#define CAD_SKG_MAX_SANS 16    /* names of each SAN kind */
#define CAD_SKG_VALUE_MAX 256  /* bytes of one subject value or name */
#define CAD_SKG_PASSWORD_MIN 8 /* bytes */
#define CAD_SKG_PASSWORD_MAX 1024

enum cad_skg_format { CAD_SKG_PKCS12, CAD_SKG_PKCS8 };

/* A parsed request; its strings point into the JSON body it came from. */
struct cad_skg_request {
	const char *profile;
	const char *subject_field[CAD_SKG_MAX_SUBJECT]; /* "CN", "O", ... */
	const char *subject_value[CAD_SKG_MAX_SUBJECT];
	size_t n_subject;
	const char *san[CA_SAN_KINDS][CAD_SKG_MAX_SANS];
	size_t n_san[CA_SAN_KINDS];
	const char *key_type; /* "ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096" */
	const char *algorithm, *curve; /* "EC" and a curve, or "RSA" */
	int rsa_bits;
	const char *password;
	enum cad_skg_format format;
	long long validity_days; /* 0: the profile's default; -1: not a positive integer */
};

/* The body's fields (NULL-terminated). */
extern const char *const cad_skg_fields[];

/* Read body (a JSON object) into out. 0, or -1 with the problem, naming the field, in err. */
int cad_skg_parse(json_t *body, struct cad_skg_request *out, char *err, size_t errsz);

/* --- shared by the API's serverkeygen and EST's /serverkeygen (cad_keygen.c) --- */

/* A fresh key pair in this process's memory (OpenSSL's default provider): EC on curve, or RSA
 * of rsa_bits when curve is NULL. NULL on failure. */
EVP_PKEY *cad_keygen_key(const char *curve, int rsa_bits);

/* The key a profile's key profile asks for when the requester does not choose (EST): P-256,
 * else P-384, else RSA of the profile's minimum size (at least 2048 bits). NULL on failure. */
EVP_PKEY *cad_keygen_profile_key(const struct ca_key_profile *kp);

/* req re-keyed: key's public half set in it and req signed with key; the request as PEM
 * (the caller frees it), or NULL. */
char *cad_keygen_csr_pem(X509_REQ *req, EVP_PKEY *key);

/* Archival of a generated key (docs/key-recovery.md), to run inside the transaction that
 * stores its certificate: set up with cad_key_archive_init, hand cad_key_archive_in_tx,
 * the struct and its serial to ca_issue (in_tx, in_tx_arg, in_tx_serial), then clear. */
struct cad_key_archive {
	const char *label;     /* keyd's archive key */
	const char *authority; /* the issuing authority's name */
	uint8_t *pkcs8;        /* the key, PKCS#8 DER */
	size_t pkcs8_len;
	char serial[2 * DB_SERIAL_MAX + 1]; /* set by ca_issue before the step runs */
	char why[256];                      /* what failed, when it did */
};
/* 0, or -1 when the key could not be encoded. */
int cad_key_archive_init(struct cad_key_archive *a, const char *label, const char *authority,
                         EVP_PKEY *key);
/* Encrypt the key under a fresh data key, have keyd wrap that, store the row; an error rolls
 * the certificate back and leaves the reason in a->why. */
enum db_status cad_key_archive_in_tx(struct db *db, int64_t cert_id, void *a, struct db_err *err);
/* Wipes and frees the encoded key. */
void cad_key_archive_clear(struct cad_key_archive *a);

#endif
