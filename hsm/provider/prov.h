/*
 * The keyd OpenSSL 3 provider: private declarations shared by its files.
 *
 * prov.c          entry point, dispatch tables, provider context, errors
 * prov_store.c    OSSL_OP_STORE for keyd:label=NAME URIs
 * prov_keymgmt.c  the key object and OSSL_OP_KEYMGMT for RSA and EC
 * prov_sig.c      OSSL_OP_SIGNATURE for RSA (PKCS#1 v1.5, PSS) and ECDSA
 *
 * A key object holds a label (the HSM handle) and a real public key decoded
 * with OpenSSL's default provider in a library context of our own; private
 * material never exists on this side of the socket.
 */
#ifndef HSMCA_KEYD_PROV_H
#define HSMCA_KEYD_PROV_H

#include <pthread.h>
#include <stdatomic.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include "keyd_client.h"

#define PROV_NAME "keyd"
#define PROV_PROPS "provider=keyd"

/* Reason codes of the provider's errors; the strings are in prov.c. */
enum prov_reason {
	PROV_R_NO_SOCKET = 1,      /* neither socket= nor $HSMCA_KEYD_SOCKET */
	PROV_R_KEYD_UNREACHABLE,   /* could not talk to keyd */
	PROV_R_KEYD_DENIED,        /* keyd refused the peer, key or operation */
	PROV_R_KEYD_NO_KEY,        /* keyd has no such key */
	PROV_R_KEYD_FAILED,        /* any other keyd failure */
	PROV_R_BAD_URI,            /* a keyd: URI that does not parse */
	PROV_R_BAD_KEY,            /* key object unusable for the operation */
	PROV_R_UNSUPPORTED_DIGEST, /* not SHA-256/384/512 */
	PROV_R_BAD_PARAMETER,      /* a parameter value we refuse */
	PROV_R_PRIVATE_KEY_EXPORT, /* the private half stays in the HSM */
	PROV_R_BUFFER_TOO_SMALL,
	PROV_R_INTERNAL,
};

struct prov_ctx {
	const OSSL_CORE_HANDLE *handle;
	OSSL_FUNC_core_new_error_fn *new_error;
	OSSL_FUNC_core_set_error_debug_fn *set_error_debug;
	OSSL_FUNC_core_vset_error_fn *vset_error;
	/* Only "default" is loaded here: public keys are decoded and messages
	 * hashed in it, so nothing we do can recurse into this provider. */
	OSSL_LIB_CTX *swctx;
	OSSL_PROVIDER *swdefault;
	char *socket; /* from the provider's config; NULL: $HSMCA_KEYD_SOCKET */
	int timeout_ms;
	pthread_mutex_t lock; /* guards the lazy creation of client */
	struct keyd_client *client;
};

/* One key: refcounted and immutable once built, so threads share it freely. */
struct prov_key {
	atomic_int refs;
	struct prov_ctx *pc;
	int type; /* enum keyd_keytype */
	/* The HSM handle; empty for a public key imported by OpenSSL, which
	 * therefore cannot sign. */
	char label[KEYD_LABEL_MAX + 1];
	int bits;
	EVP_PKEY *pub; /* in pc->swctx */
};

/* Raise an OpenSSL error from this provider; fmt describes what and why. */
void prov_raise_at(struct prov_ctx *pc, const char *file, int line, const char *func, int reason,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define prov_raise(pc, reason, ...)                                                                \
	prov_raise_at((pc), __FILE__, __LINE__, __func__, (reason), __VA_ARGS__)
/* Raise a keyd failure: what we were doing, then keyd's (or the client's) message. */
void prov_raise_keyd_at(struct prov_ctx *pc, const char *file, int line, const char *func,
                        const struct keyd_err *err, const char *what, const char *label);
#define prov_raise_keyd(pc, err, what, label)                                                      \
	prov_raise_keyd_at((pc), __FILE__, __LINE__, __func__, (err), (what), (label))

/* The provider's keyd client, made on first use; NULL with an error raised. */
struct keyd_client *prov_client(struct prov_ctx *pc);

/* Key objects (prov_keymgmt.c). */
struct prov_key *prov_key_new(struct prov_ctx *pc, int type);
/* Build a key from keyd's answer: checks that the SPKI decodes and fits the type. */
struct prov_key *prov_key_from_keyd(struct prov_ctx *pc, const struct keyd_key *kk);
void prov_key_up_ref(struct prov_key *k);
void prov_key_free(struct prov_key *k);
/* "RSA" or "EC": the name OpenSSL knows the key type by. */
const char *prov_key_type_name(int type);

extern const OSSL_DISPATCH prov_store_functions[];
extern const OSSL_DISPATCH prov_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH prov_ec_keymgmt_functions[];
extern const OSSL_DISPATCH prov_rsa_signature_functions[];
extern const OSSL_DISPATCH prov_ecdsa_signature_functions[];

#endif
