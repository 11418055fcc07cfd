/*
 * Building CRLs (RFC 5280 v2) as a stream: entries go DER-encoded into a temporary file as
 * they arrive, the TBSCertList is fed to EVP_DigestSign (through the keyd provider only the
 * digest leaves this process), and the signed CertificateList is assembled from header,
 * entries and signature. Memory does not grow with the number of entries. The result is
 * verified against the CA's public key before it is reported built (crl_build.c).
 */
#ifndef HSMCA_CRL_H
#define HSMCA_CRL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define CRL_SERIAL_MAX 20
#define CRL_REASON_REMOVE_FROM_CRL 8

struct crl_entry {
	uint8_t serial[CRL_SERIAL_MAX]; /* unsigned big-endian magnitude, minimal */
	size_t serial_len;
	int64_t revoked_at;      /* revocationDate, seconds since the epoch */
	int reason;              /* CRLReason; 0 (unspecified) is left out, as RFC 5280 asks */
	int64_t invalidity_date; /* 0: none */
};

/* The next entry into *e; *got 0 at the end. 0, or -1 with why set. */
typedef int (*crl_next_fn)(void *arg, struct crl_entry *e, int *got, char *why, size_t n);

struct crl_params {
	X509 *ca_cert;  /* issuer name, AKI (its SKI), and the key the result is verified with */
	EVP_PKEY *key;  /* the signing key: a keyd: key, or any other (benchmarks, tests) */
	int64_t number; /* CRL number */
	int64_t this_update, next_update;
	int64_t delta_base;       /* > 0: a delta CRL whose base has this CRL number */
	const char *idp_uri;      /* Issuing Distribution Point fullName; NULL: none */
	const char *freshest_uri; /* Freshest CRL (where the delta is); NULL: none */
	const char *tmp_dir;      /* where the entries' temporary file goes */
};

struct crl_result {
	uint64_t entries;
	uint64_t bytes;
	/* Where the time went, in milliseconds: reading and encoding the entries (the source's
	 * time included), digesting and signing, writing the CertificateList. */
	int64_t ms_entries, ms_sign, ms_write;
};

/* Write the signed CRL's DER to out_path, a new file (mode 0644) created with
 * O_EXCL|O_NOFOLLOW: an existing name or a symlink there fails the build, nothing is written
 * through it. Returns 0, or -1 with why set; on failure out_path may hold garbage (callers
 * write to a temporary name). */
int crl_build(const struct crl_params *p, crl_next_fn next, void *arg, const char *out_path,
              struct crl_result *res, char *why, size_t n);

/* Check a CRL file without loading its entries: structure, that the signature verifies with
 * pub, and (when not NULL) its CRL number, thisUpdate and nextUpdate. 0, or -1 with why. */
struct crl_info {
	int64_t number;
	int64_t delta_base; /* 0: a full CRL */
	int64_t this_update, next_update;
};
int crl_verify_file(const char *path, EVP_PKEY *pub, struct crl_info *info, char *why, size_t n);

/* The CRL at path without its entries, for linting a CRL too large to decode whole: a
 * CertificateList of the same TBSCertList fields but revokedCertificates, the same algorithm
 * and signature (which no longer verifies: crl_verify_file checks it), into *der (free it),
 * and the number of entries streamed past. 0, or -1 with why. */
int crl_read_header(const char *path, uint8_t **der, size_t *len, uint64_t *entries, char *why,
                    size_t n);

/* Write the PEM form of the DER file der_path to pem_path, created new as crl_build creates
 * its output. 0, or -1 with why. */
int crl_write_pem(const char *der_path, const char *pem_path, char *why, size_t n);

#endif
