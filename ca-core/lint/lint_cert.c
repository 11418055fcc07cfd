/*
 * Certificate checks: what is in the certificate against what the profile
 * asks for, in the order a reader would check by hand (version, serial, names,
 * validity, extensions, keys, constraints, usages), stopping at the first
 * finding.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>

#include "lint_internal.h"

static int is_ca(enum lint_role r)
{
	return r == LINT_ROOT || r == LINT_INTERMEDIATE || r == LINT_CROSS_SIGN;
}

/* "an OCSP signer", "a leaf certificate": for findings about a non-CA certificate. */
static const char *non_ca_name(enum lint_role r)
{
	return r == LINT_OCSP_SIGNER ? "an OCSP signer" : "a leaf certificate";
}

static void warn(const struct lint_parties *w, const char *msg)
{
	if (w->warn)
		w->warn(w->warn_arg, msg);
}

static int check_subject(const struct lint_cert_profile *p, const struct lint_parties *w, X509 *x,
                         char *err, size_t errsz)
{
	const X509_NAME *subject = X509_get_subject_name(x);
	int crit = -1, rc = 0;
	GENERAL_NAMES *san;

	san = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (san && sk_GENERAL_NAME_num(san) == 0)
		rc = lint_fail(err, errsz, "subjectAltName is empty (RFC 5280 4.2.1.6)");
	else if (X509_NAME_entry_count(subject) > 0)
		rc = 0;
	else if (p->role != LINT_LEAF || !san)
		rc = lint_fail(err, errsz, "the subject is empty (RFC 5280 4.1.2.6)");
	else if (crit != 1)
		rc = lint_fail(err, errsz,
		               "the subject is empty, so subjectAltName must be critical (RFC 5280 "
		               "4.2.1.6)");
	GENERAL_NAMES_free(san);
	if (rc == 0 && w->existing_ca &&
	    X509_NAME_cmp(subject, X509_get_subject_name(w->existing_ca)) != 0)
		rc = lint_fail(err, errsz, "the subject differs from the existing CA's");
	return rc;
}

static int check_validity(const struct lint_cert_profile *p, X509 *x, char *err, size_t errsz)
{
	const ASN1_TIME *nb = X509_get0_notBefore(x), *na = X509_get0_notAfter(x);
	int days = 0, secs = 0;

	if (lint_check_time(nb, p->not_before, "notBefore", &p->words, err, errsz) ||
	    lint_check_time(na, p->not_after, "notAfter", &p->words, err, errsz))
		return -1;
	if (ASN1_TIME_compare(nb, na) >= 0)
		return lint_fail(err, errsz, "notBefore is not before notAfter");
	if (p->max_validity && ASN1_TIME_diff(&days, &secs, nb, na) &&
	    (time_t)days * 86400 + secs > p->max_validity)
		return lint_fail(err, errsz,
		                 "the validity is %d days and %d seconds, longer than the %lld "
		                 "seconds %s allows",
		                 days, secs, (long long)p->max_validity, lint_source(&p->words));
	return 0;
}

static int check_subject_key(const struct lint_cert_profile *p, const struct lint_parties *w,
                             X509 *x, char *err, size_t errsz)
{
	X509_PUBKEY *xpk = X509_get_X509_PUBKEY(x);
	unsigned char *have = NULL, *want = NULL;
	int hl, wl, same;

	if (!w->subject_pub)
		return 0;
	hl = i2d_X509_PUBKEY(xpk, &have);
	wl = i2d_PUBKEY(w->subject_pub, &want);
	same = hl > 0 && hl == wl && memcmp(have, want, (size_t)hl) == 0;
	OPENSSL_free(have);
	OPENSSL_free(want);
	if (!same)
		return lint_fail(err, errsz,
		                 "the certificate's public key is not the key %s checked",
		                 lint_asker(&p->words));
	return 0;
}

static int check_key_ids(const struct lint_parties *w, X509 *x, char *err, size_t errsz)
{
	int crit = -1, rc = -1;
	ASN1_OCTET_STRING *ski = X509_get_ext_d2i(x, NID_subject_key_identifier, &crit, NULL);
	AUTHORITY_KEYID *aki = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const ASN1_OCTET_STRING *issuer_ski;
	ASN1_OCTET_STRING *want = ASN1_OCTET_STRING_new();

	if (!ski) {
		lint_fail(err, errsz,
		          "the certificate has no subjectKeyIdentifier (RFC 5280 4.2.1.2)");
		goto out;
	}
	if (crit) {
		lint_fail(err, errsz, "subjectKeyIdentifier must not be critical");
		goto out;
	}
	/* A cross-certificate keeps the existing CA's identifier, whatever method made it. */
	if (w->existing_ca && X509_get0_subject_key_id(w->existing_ca)) {
		if (!lint_octets_equal(ski, X509_get0_subject_key_id(w->existing_ca))) {
			lint_fail(
			    err, errsz,
			    "subjectKeyIdentifier differs from the existing CA certificate's");
			goto out;
		}
	} else if (!want || !X509_pubkey_digest(x, EVP_sha1(), md, &mdlen) ||
	           !ASN1_OCTET_STRING_set(want, md, (int)mdlen) || !lint_octets_equal(ski, want)) {
		lint_fail(err, errsz,
		          "subjectKeyIdentifier is not the SHA-1 of the subjectPublicKey (RFC 5280 "
		          "4.2.1.2 method 1)");
		goto out;
	}
	aki = X509_get_ext_d2i(x, NID_authority_key_identifier, &crit, NULL);
	issuer_ski = w->issuer ? X509_get0_subject_key_id(w->issuer) : ski;
	if (lint_check_aki(aki, crit, issuer_ski, "the certificate", err, errsz) != 0)
		goto out;
	rc = 0;
out:
	ASN1_OCTET_STRING_free(ski);
	ASN1_OCTET_STRING_free(want);
	AUTHORITY_KEYID_free(aki);
	return rc;
}

static int check_basic_constraints(const struct lint_cert_profile *p, X509 *x, char *err,
                                   size_t errsz)
{
	int crit = -1, rc = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);

	if (is_ca(p->role)) {
		if (!bc || !bc->ca) {
			lint_fail(err, errsz, "a CA certificate needs basicConstraints cA=TRUE");
			goto out;
		}
		if (crit != 1) {
			lint_fail(err, errsz,
			          "basicConstraints must be critical on a CA (RFC 5280 4.2.1.9)");
			goto out;
		}
		if (!!bc->pathlen != !!p->has_path_length ||
		    (bc->pathlen && ASN1_INTEGER_get(bc->pathlen) != p->path_length)) {
			lint_fail(err, errsz, "basicConstraints' path length differs from %s",
			          lint_source_short(&p->words));
			goto out;
		}
	} else if (bc && (bc->ca || bc->pathlen)) {
		lint_fail(err, errsz, "%s must not be a CA (basicConstraints)",
		          non_ca_name(p->role));
		goto out;
	}
	rc = 0;
out:
	BASIC_CONSTRAINTS_free(bc);
	return rc;
}

static int check_key_usage(const struct lint_cert_profile *p, X509 *x, char *err, size_t errsz)
{
	int crit = -1, rc = -1;
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	unsigned have = 0;

	if (!ku) {
		lint_fail(err, errsz, "the certificate has no keyUsage (RFC 5280 4.2.1.3)");
		goto out;
	}
	if (crit != 1) {
		lint_fail(err, errsz, "keyUsage must be critical");
		goto out;
	}
	for (int bit = 0; bit < 9; bit++)
		if (ASN1_BIT_STRING_get_bit(ku, bit))
			have |= 1u << bit;
	if (have != p->key_usage) {
		lint_fail(err, errsz, "keyUsage differs from %s's key_usage",
		          lint_source_short(&p->words));
		goto out;
	}
	if (is_ca(p->role) && !(have & LINT_KU_KEY_CERT_SIGN)) {
		lint_fail(err, errsz, "a CA certificate needs keyUsage keyCertSign");
		goto out;
	}
	if (p->role == LINT_OCSP_SIGNER && (!(have & LINT_KU_DIGITAL_SIGNATURE) ||
	                                    (have & (LINT_KU_KEY_CERT_SIGN | LINT_KU_CRL_SIGN)))) {
		lint_fail(
		    err, errsz,
		    "an OCSP signer needs digitalSignature and neither keyCertSign nor cRLSign");
		goto out;
	}
	if (p->role == LINT_LEAF && (have & (LINT_KU_KEY_CERT_SIGN | LINT_KU_CRL_SIGN))) {
		lint_fail(err, errsz,
		          "a leaf certificate must not carry keyCertSign or cRLSign (RFC 5280 "
		          "4.2.1.3)");
		goto out;
	}
	rc = 0;
out:
	ASN1_BIT_STRING_free(ku);
	return rc;
}

static int check_eku_and_nocheck(const struct lint_cert_profile *p, X509 *x, char *err,
                                 size_t errsz)
{
	int crit = -1, rc = -1, ocsp = 0, nocheck_crit = -1;
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
	ASN1_NULL *nocheck = X509_get_ext_d2i(x, NID_id_pkix_OCSP_noCheck, &nocheck_crit, NULL);
	int n = eku ? sk_ASN1_OBJECT_num(eku) : 0;

	if (n != (int)p->n_eku) {
		lint_fail(err, errsz, "extendedKeyUsage differs from %s",
		          lint_source_short(&p->words));
		goto out;
	}
	if (eku && crit) {
		lint_fail(err, errsz, "extendedKeyUsage is not marked critical by this profile");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		char oid[128];
		OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i), 1);
		if (strcmp(oid, p->eku[i]) != 0) {
			lint_fail(err, errsz, "extendedKeyUsage differs from %s",
			          lint_source_short(&p->words));
			goto out;
		}
		ocsp |= OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_OCSP_sign;
	}
	if (p->role == LINT_ROOT && eku) {
		lint_fail(err, errsz, "a root certificate carries no extendedKeyUsage");
		goto out;
	}
	if (p->role == LINT_OCSP_SIGNER) {
		if (!ocsp) {
			lint_fail(err, errsz,
			          "an OCSP signer needs extendedKeyUsage id-kp-OCSPSigning");
			goto out;
		}
		if (!nocheck || nocheck_crit) {
			lint_fail(err, errsz,
			          "an OCSP signer needs a non-critical id-pkix-ocsp-nocheck (RFC "
			          "6960 4.2.2.2.1)");
			goto out;
		}
	} else if (nocheck) {
		lint_fail(err, errsz, "only an OCSP signer carries id-pkix-ocsp-nocheck");
		goto out;
	}
	rc = 0;
out:
	EXTENDED_KEY_USAGE_free(eku);
	ASN1_NULL_free(nocheck);
	return rc;
}

static int check_name_constraints(const struct lint_cert_profile *p, X509 *x, char *err,
                                  size_t errsz)
{
	int crit = -1, rc = 0;
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, &crit, NULL);

	if (!!nc != !!p->name_constraints)
		rc = lint_fail(err, errsz, "nameConstraints differ from %s",
		               lint_source_short(&p->words));
	else if (nc && crit != 1)
		rc = lint_fail(err, errsz, "nameConstraints must be critical (RFC 5280 4.2.1.10)");
	else if (nc && !is_ca(p->role))
		rc = lint_fail(err, errsz, "only a CA certificate carries nameConstraints");
	NAME_CONSTRAINTS_free(nc);
	return rc;
}

/* Relying parties reject a certificate outside its issuer's validity; a cross-certificate
 * may still be wanted that way (it only works while the issuer is valid), hence a warning. */
static int check_validity_nesting(const struct lint_cert_profile *p, const struct lint_parties *w,
                                  X509 *x, char *err, size_t errsz)
{
	if (!w->issuer)
		return 0;
	if (ASN1_TIME_compare(X509_get0_notBefore(x), X509_get0_notBefore(w->issuer)) >= 0 &&
	    ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(w->issuer)) <= 0)
		return 0;
	if (p->role == LINT_CROSS_SIGN) {
		warn(w, "the cross-certificate's validity reaches outside its issuer's; relying "
		        "parties will not accept it outside the issuer's validity");
		return 0;
	}
	return lint_fail(err, errsz,
	                 "the certificate's validity must lie inside the issuer's validity");
}

/* The extensions a certificate of hsmca may carry; a leaf also names its subject in
 * subjectAltName. */
#define CERT_EXTS                                                                                  \
	NID_basic_constraints, NID_key_usage, NID_ext_key_usage, NID_subject_key_identifier,       \
	    NID_authority_key_identifier, NID_certificate_policies, NID_crl_distribution_points,   \
	    NID_info_access, NID_name_constraints, NID_id_pkix_OCSP_noCheck
static const int ca_exts[] = {CERT_EXTS, 0};
static const int leaf_exts[] = {CERT_EXTS, NID_subject_alt_name, 0};

static int check_extensions(const struct lint_cert_profile *p, X509 *x, char *err, size_t errsz)
{
	const STACK_OF(X509_EXTENSION) *exts = X509_get0_extensions(x);

	if (lint_ext_duplicates(exts, "the certificate", err, errsz) ||
	    lint_ext_allowed(exts, p->role == LINT_LEAF ? leaf_exts : ca_exts, p->extra_extensions,
	                     "the certificate", err, errsz))
		return -1;
	return 0;
}

int lint_cert_tbs(const struct lint_cert_profile *p, const struct lint_parties *w, X509 *x,
                  char *err, size_t errsz)
{
	const X509_NAME *subject = X509_get_subject_name(x);
	const X509_NAME *want_issuer = w->issuer ? X509_get_subject_name(w->issuer) : subject;

	if (X509_get_version(x) != X509_VERSION_3)
		return lint_fail(err, errsz, "the certificate is not version 3");
	if (lint_check_serial(X509_get0_serialNumber(x),
	                      p->min_serial_bits ? p->min_serial_bits : 64, err, errsz) != 0)
		return -1;
	if (X509_NAME_cmp(X509_get_issuer_name(x), want_issuer) != 0)
		return lint_fail(err, errsz, "the issuer name is not the issuer's subject name");
	if (check_subject(p, w, x, err, errsz) || check_validity(p, x, err, errsz) ||
	    check_extensions(p, x, err, errsz) || check_subject_key(p, w, x, err, errsz) ||
	    check_key_ids(w, x, err, errsz) || check_basic_constraints(p, x, err, errsz) ||
	    check_key_usage(p, x, err, errsz) || check_eku_and_nocheck(p, x, err, errsz) ||
	    check_name_constraints(p, x, err, errsz) || check_validity_nesting(p, w, x, err, errsz))
		return -1;
	return 0;
}

int lint_cert_signed(const struct lint_cert_profile *p, const struct lint_parties *w, X509 *x,
                     char *err, size_t errsz)
{
	EVP_PKEY *pub = w->issuer_pub;
	const X509_ALGOR *outer;

	if (lint_cert_tbs(p, w, x, err, errsz) != 0)
		return -1;
	if (!pub)
		pub = w->issuer        ? X509_get0_pubkey(w->issuer)
		      : w->subject_pub ? w->subject_pub
		                       : X509_get0_pubkey(x);
	/* OpenSSL decodes every extension it knows while caching them; one that fails to
	 * decode marks the whole certificate invalid for path validation. */
	if (X509_get_extension_flags(x) & EXFLAG_INVALID)
		return lint_fail(err, errsz,
		                 "OpenSSL finds an extension of the certificate invalid");
	X509_get0_signature(NULL, &outer, x);
	if (lint_check_sig_alg(p->hash_nid, p->rsa_pss, &p->words, X509_get0_tbs_sigalg(x), outer,
	                       pub, "the certificate", err, errsz) != 0)
		return -1;
	return lint_verify_cert_signature(x, pub, err, errsz);
}
