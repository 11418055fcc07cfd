/*
 * ca_key: a CA's signing key as every process of hsmca uses it. A key is opened by an
 * OSSL_STORE URI (keyd:label=NAME through the keyd provider, where the private key never
 * leaves hsmca-keyd) or by a file path; the digest that goes with it is chosen by one rule;
 * and a key held across requests is dropped when a signature with it fails, so that the next
 * use opens it afresh (hsmca-keyd may have restarted, and the provider's handle with it).
 */
#ifndef HSMCA_CAKEY_H
#define HSMCA_CAKEY_H

#include <pthread.h>
#include <stddef.h>

#include <openssl/evp.h>

#define CA_KEY_URI_MAX 512

/* The private key at uri (keyd:label=NAME, file:PATH or a plain path), or NULL with why in err
 * ("cannot load the key URI: reason"; never key material, which stays in keyd or the file). */
EVP_PKEY *ca_key_open(const char *uri, char *err, size_t errsz);

/* The digest to sign with key, as an OpenSSL name: SHA256 for RSA and P-256, SHA384 for
 * P-384, SHA512 for P-521, NULL for Ed25519 and Ed448 (which hash by themselves). The same
 * rule for certificates, CRLs and OCSP responses, so that one CA never mixes digests. */
const char *ca_key_digest(const EVP_PKEY *key);

/* EVP_DigestSignInit_ex on ctx for key with ca_key_digest(key). 1 on success, as OpenSSL. */
int ca_key_sign_init(EVP_MD_CTX *ctx, EVP_PKEY *key);

/* The reason at the head of OpenSSL's error queue (with keyd's own text when the provider gave
 * one) into why, and the queue cleared. */
void ca_key_why(char *why, size_t n);

/* A key held for repeated signing, opened on first use and after a failure. Thread-safe. */
struct ca_key {
	pthread_mutex_t lock;
	char uri[CA_KEY_URI_MAX];
	EVP_PKEY *key; /* NULL until opened (again) */
};

/* 0, or -1 when uri does not fit. Opens nothing yet. */
int ca_key_init(struct ca_key *k, const char *uri);
/* A reference to the key (the caller frees it), opening it when it is not held; NULL with err
 * when it cannot be opened. */
EVP_PKEY *ca_key_get(struct ca_key *k, char *err, size_t errsz);
/* 1 when a key is held now (no attempt to open it). */
int ca_key_held(struct ca_key *k);
/* Signing with key (from ca_key_get) failed: keyd may have gone away, so the held key is
 * dropped, if it is still that one, and the next ca_key_get opens it afresh. */
void ca_key_failed(struct ca_key *k, EVP_PKEY *key);
void ca_key_clear(struct ca_key *k);

#endif
