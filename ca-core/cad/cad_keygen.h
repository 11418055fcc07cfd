/* Server-side key generation (POST /api/v1/certificates/serverkeygen, docs/api.md): the
 * request body's parser, apart so that tests/fuzz/fuzz_serverkeygen_json can reach it. */
#ifndef HSMCA_CAD_KEYGEN_H
#define HSMCA_CAD_KEYGEN_H

#include <stddef.h>

#include <jansson.h>

#include "ca.h"

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

#endif
