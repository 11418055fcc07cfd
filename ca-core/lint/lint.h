/*
 * The RFC 5280 linter: checks a certificate or a CRL against a profile that
 * says what it should be (CA or leaf, key usages, path length, validity,
 * extended key usages, CRL number and entries, signature algorithm). Run it on
 * the to-be-signed object before asking keyd to sign (lint_cert_tbs,
 * lint_crl_tbs) and on the signed object, decoded again from its DER, after
 * (lint_cert_signed, lint_crl_signed): each check compares what is in the
 * bytes with what the caller asked for, so a fault anywhere between the
 * request and the bytes is caught before anything is published.
 *
 * Every function returns 0, or -1 with the first finding in err: the name
 * of the rule that failed, a colon, and one sentence citing the RFC section
 * where there is one ("ku_ec_no_key_encipherment: keyEncipherment on an EC
 * key: ..."); lint_rule gives the name alone, docs/lint.md lists every rule.
 * The linter holds no
 * state, allocates nothing that outlives a call and depends on OpenSSL only.
 */
#ifndef HSMCA_LINT_H
#define HSMCA_LINT_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* What the certificate is. */
enum lint_role {
	LINT_ROOT = 1,     /* self-signed CA */
	LINT_INTERMEDIATE, /* CA signed by another CA */
	LINT_CROSS_SIGN,   /* an existing CA's name and key, signed by another CA */
	LINT_OCSP_SIGNER,  /* delegated OCSP responder (RFC 6960 4.2.2.2) */
	LINT_LEAF,         /* end entity */
};

/* keyUsage bits, in RFC 5280's order (bit 0 = digitalSignature). */
#define LINT_KU_DIGITAL_SIGNATURE 0x001
#define LINT_KU_CONTENT_COMMITMENT 0x002
#define LINT_KU_KEY_ENCIPHERMENT 0x004
#define LINT_KU_DATA_ENCIPHERMENT 0x008
#define LINT_KU_KEY_AGREEMENT 0x010
#define LINT_KU_KEY_CERT_SIGN 0x020
#define LINT_KU_CRL_SIGN 0x040
#define LINT_KU_ENCIPHER_ONLY 0x080
#define LINT_KU_DECIPHER_ONLY 0x100

/*
 * How findings name where the expectations came from. NULL fields read
 * "the profile", source again, and "the caller": "notBefore differs from
 * <source>", "keyUsage differs from <source_short>'s key_usage", "the
 * certificate's public key is not the key <asker> checked".
 */
struct lint_words {
	const char *source;
	const char *source_short;
	const char *asker;
};

/* What a certificate should be. Zero fields are not checked unless said otherwise. */
struct lint_cert_profile {
	enum lint_role role;
	/* The exact validity; 0: only the encoding is checked (RFC 5280 4.1.2.5). */
	time_t not_before, not_after;
	/* The longest validity, notAfter - notBefore in seconds; 0: no bound. */
	time_t max_validity;
	/* The exact keyUsage (LINT_KU_*); keyUsage is always required and critical. */
	unsigned key_usage;
	/* The extendedKeyUsage OIDs, dotted, in order; none: no extendedKeyUsage. */
	const char *const *eku;
	size_t n_eku;
	/* basicConstraints' pathLenConstraint (CA roles): present or not, and its value. */
	int has_path_length;
	long path_length;
	/* 1: nameConstraints must be present (critical, CA roles only); 0: absent. */
	int name_constraints;
	/* Random serial bits the issuer promises (CA/B Forum BR 7.1); 0: 64. */
	int min_serial_bits;
	/* The signature: digest (NID_sha256, ...) and RSA-PSS or not; the algorithm follows
	 * from the issuer's key. hash_nid 0: not checked. */
	int hash_nid;
	int rsa_pss;
	/* Extensions allowed besides the standard set (0-terminated NIDs); may be NULL. */
	const int *extra_extensions;
	struct lint_words words;
};

/* What a CRL should be. */
struct lint_crl_profile {
	/* The exact thisUpdate and nextUpdate; 0: only the encoding is checked. */
	time_t this_update, next_update;
	/* The cRLNumber, decimal; NULL: any (at most 20 octets). */
	const char *number;
	/* The number of entries; -1: any. */
	long n_revoked;
	int hash_nid;
	int rsa_pss;
	/* The Issuing Distribution Point's fullName URI; NULL: the CRL carries none. A CRL
	 * with one is a partitioned CRL; the extension must be critical (RFC 5280 5.2.5). */
	const char *idp_uri;
	/* > 0: a delta CRL on the full CRL of this number (a critical Delta CRL Indicator, RFC
	 * 5280 5.2.4); 0: a full CRL, which carries none. */
	long long delta_base;
	struct lint_words words;
};

/* Non-fatal findings (a cross-certificate outliving its issuer, ...). */
typedef void (*lint_warn_fn)(void *arg, const char *msg);

/* Who issues, and to which key. */
struct lint_parties {
	X509 *issuer;          /* the issuing CA's certificate; NULL: self-signed (certificates) */
	EVP_PKEY *issuer_pub;  /* the key that signs; NULL: the issuer certificate's (root: the
	                          subject's) */
	EVP_PKEY *subject_pub; /* the key the certificate must carry; NULL: not compared */
	/* The DER SubjectPublicKeyInfo of subject_pub as the caller has it (a CSR's): compared
	 * with the certificate's byte for byte, so that subject_pub need not be encoded again;
	 * NULL: subject_pub is encoded for the comparison. */
	const unsigned char *subject_spki;
	size_t subject_spki_len;
	X509 *existing_ca; /* cross-sign: name and subjectKeyIdentifier to keep */
	lint_warn_fn warn; /* may be NULL */
	void *warn_arg;
};

/* The to-be-signed certificate: everything but the signature. */
int lint_cert_tbs(const struct lint_cert_profile *p, const struct lint_parties *w, X509 *x,
                  char *err, size_t errsz);
/* The signed certificate (decode it again from its DER first): the same checks, the
 * extensions as OpenSSL decodes them, the signature algorithm, and the signature. */
int lint_cert_signed(const struct lint_cert_profile *p, const struct lint_parties *w, X509 *x,
                     char *err, size_t errsz);

/* What signing added, for a certificate whose TBSCertificate passed lint_cert_tbs (decode it
 * again from its DER first): every extension decodes, the signature algorithm, the
 * signature. lint_cert_signed is lint_cert_tbs and this. */
int lint_cert_signature(const struct lint_cert_profile *p, const struct lint_parties *w, X509 *x,
                        char *err, size_t errsz);

/* lint_cert_signature on the signed bytes in hand instead of a certificate decoded again:
 * der (len bytes) must be one Certificate and nothing after it, with the inner and the outer
 * signature algorithm the same and the one asked for, and its signature must verify over the
 * TBSCertificate's bytes in der with the issuer's key; x is the signed certificate der was
 * encoded from, whose extensions must all decode (ext_decodes). For the caller that linted
 * x's TBSCertificate itself (lint_cert_tbs) and will store or send der. */
int lint_cert_signature_der(const struct lint_cert_profile *p, const struct lint_parties *w,
                            X509 *x, const unsigned char *der, size_t len, char *err, size_t errsz);

/* The to-be-signed and the signed CRL; w->issuer is required. */
int lint_crl_tbs(const struct lint_crl_profile *p, const struct lint_parties *w, X509_CRL *crl,
                 char *err, size_t errsz);
int lint_crl_signed(const struct lint_crl_profile *p, const struct lint_parties *w, X509_CRL *crl,
                    char *err, size_t errsz);

/* The rule a finding names ("key_ec_curve"), into buf; "lint" for a finding without one. */
const char *lint_rule(const char *finding, char *buf, size_t n);

/* A CRL without its entries (one too large to decode whole, its signature verified as a
 * stream by the caller): lint_crl_tbs but the entries, and the signature algorithm. */
int lint_crl_header(const struct lint_crl_profile *p, const struct lint_parties *w, X509_CRL *crl,
                    char *err, size_t errsz);

/* The signature on x (crl) verifies with pub; the finding says what to suspect when not. */
int lint_verify_cert_signature(X509 *x, EVP_PKEY *pub, char *err, size_t errsz);
int lint_verify_crl_signature(X509_CRL *crl, EVP_PKEY *pub, char *err, size_t errsz);

/* Path validation of x with anchor as the trust anchor (strict, partial chains allowed),
 * at time t. */
int lint_path(X509 *x, X509 *anchor, time_t t, char *err, size_t errsz);

/* The signature algorithm NID a key signs with for hash_nid (rsa_pss: RSASSA-PSS);
 * NID_undef when there is none. */
int lint_sig_nid(EVP_PKEY *key, int hash_nid, int rsa_pss);

#endif
