/*
 * Certificate checks: what is in the certificate against what the profile
 * asks for, in the order a reader would check by hand (version, serial, names,
 * validity, extensions, keys, constraints, usages), stopping at the first
 * finding.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "der.h"
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
		rc = lint_finding(err, errsz, "san_not_empty",
		                  "subjectAltName is empty (RFC 5280 4.2.1.6)");
	else if (X509_NAME_entry_count(subject) > 0)
		rc = 0;
	else if (p->role != LINT_LEAF || !san)
		rc = lint_finding(err, errsz, "subject_not_empty",
		                  "the subject is empty (RFC 5280 4.1.2.6)");
	else if (crit != 1)
		rc = lint_finding(
		    err, errsz, "san_critical_if_subject_empty",
		    "the subject is empty, so subjectAltName must be critical (RFC 5280 "
		    "4.2.1.6)");
	GENERAL_NAMES_free(san);
	if (rc == 0 && w->existing_ca &&
	    X509_NAME_cmp(subject, X509_get_subject_name(w->existing_ca)) != 0)
		rc = lint_finding(err, errsz, "subject_cross_sign",
		                  "the subject differs from the existing CA's");
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
		return lint_finding(err, errsz, "validity_order",
		                    "notBefore is not before notAfter");
	if (p->max_validity && ASN1_TIME_diff(&days, &secs, nb, na) &&
	    (time_t)days * 86400 + secs > p->max_validity)
		return lint_finding(err, errsz, "validity_max",
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
	/* The caller's DER when it has it: encoding an EVP_PKEY goes through OpenSSL's
	 * encoders, which cost more than the rest of these checks together. */
	if (w->subject_spki) {
		same = hl > 0 && (size_t)hl == w->subject_spki_len &&
		       memcmp(have, w->subject_spki, (size_t)hl) == 0;
	} else {
		wl = i2d_PUBKEY(w->subject_pub, &want);
		same = hl > 0 && hl == wl && memcmp(have, want, (size_t)hl) == 0;
	}
	OPENSSL_free(have);
	OPENSSL_free(want);
	if (!same)
		return lint_finding(err, errsz, "subject_key_matches",
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
		lint_finding(err, errsz, "ski_present",
		             "the certificate has no subjectKeyIdentifier (RFC 5280 4.2.1.2)");
		goto out;
	}
	if (crit) {
		lint_finding(err, errsz, "ski_not_critical",
		             "subjectKeyIdentifier must not be critical");
		goto out;
	}
	/* A cross-certificate keeps the existing CA's identifier, whatever method made it. */
	if (w->existing_ca && X509_get0_subject_key_id(w->existing_ca)) {
		if (!lint_octets_equal(ski, X509_get0_subject_key_id(w->existing_ca))) {
			lint_finding(
			    err, errsz, "ski_cross_sign",
			    "subjectKeyIdentifier differs from the existing CA certificate's");
			goto out;
		}
	} else if (!want || !X509_pubkey_digest(x, EVP_sha1(), md, &mdlen) ||
	           !ASN1_OCTET_STRING_set(want, md, (int)mdlen) || !lint_octets_equal(ski, want)) {
		lint_finding(
		    err, errsz, "ski_method1",
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
			lint_finding(err, errsz, "bc_ca",
			             "a CA certificate needs basicConstraints cA=TRUE");
			goto out;
		}
		if (crit != 1) {
			lint_finding(
			    err, errsz, "bc_critical",
			    "basicConstraints must be critical on a CA (RFC 5280 4.2.1.9)");
			goto out;
		}
		if (!!bc->pathlen != !!p->has_path_length ||
		    (bc->pathlen && ASN1_INTEGER_get(bc->pathlen) != p->path_length)) {
			lint_finding(err, errsz, "bc_path_length",
			             "basicConstraints' path length differs from %s",
			             lint_source_short(&p->words));
			goto out;
		}
	} else if (bc && (bc->ca || bc->pathlen)) {
		lint_finding(err, errsz, "bc_not_ca", "%s must not be a CA (basicConstraints)",
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
		lint_finding(err, errsz, "ku_present",
		             "the certificate has no keyUsage (RFC 5280 4.2.1.3)");
		goto out;
	}
	if (crit != 1) {
		lint_finding(err, errsz, "ku_critical", "keyUsage must be critical");
		goto out;
	}
	for (int bit = 0; bit < 9; bit++)
		if (ASN1_BIT_STRING_get_bit(ku, bit))
			have |= 1u << bit;
	if (have != p->key_usage) {
		lint_finding(err, errsz, "ku_matches_profile",
		             "keyUsage differs from %s's key_usage", lint_source_short(&p->words));
		goto out;
	}
	if (is_ca(p->role) && !(have & LINT_KU_KEY_CERT_SIGN)) {
		lint_finding(err, errsz, "ku_ca_key_cert_sign",
		             "a CA certificate needs keyUsage keyCertSign");
		goto out;
	}
	if (p->role == LINT_OCSP_SIGNER && (!(have & LINT_KU_DIGITAL_SIGNATURE) ||
	                                    (have & (LINT_KU_KEY_CERT_SIGN | LINT_KU_CRL_SIGN)))) {
		lint_finding(
		    err, errsz, "ku_ocsp_signer",
		    "an OCSP signer needs digitalSignature and neither keyCertSign nor cRLSign");
		goto out;
	}
	if (p->role == LINT_LEAF && (have & (LINT_KU_KEY_CERT_SIGN | LINT_KU_CRL_SIGN))) {
		lint_finding(err, errsz, "ku_leaf_no_cert_sign",
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
		lint_finding(err, errsz, "eku_matches_profile", "extendedKeyUsage differs from %s",
		             lint_source_short(&p->words));
		goto out;
	}
	if (eku && crit) {
		lint_finding(err, errsz, "eku_not_critical",
		             "extendedKeyUsage is not marked critical by this profile");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		char oid[128];
		OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i), 1);
		if (strcmp(oid, p->eku[i]) != 0) {
			lint_finding(err, errsz, "eku_matches_profile",
			             "extendedKeyUsage differs from %s",
			             lint_source_short(&p->words));
			goto out;
		}
		ocsp |= OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_OCSP_sign;
	}
	if (p->role == LINT_ROOT && eku) {
		lint_finding(err, errsz, "eku_root_none",
		             "a root certificate carries no extendedKeyUsage");
		goto out;
	}
	if (p->role == LINT_OCSP_SIGNER) {
		if (!ocsp) {
			lint_finding(err, errsz, "eku_ocsp_signing",
			             "an OCSP signer needs extendedKeyUsage id-kp-OCSPSigning");
			goto out;
		}
		if (!nocheck || nocheck_crit) {
			lint_finding(
			    err, errsz, "ocsp_nocheck",
			    "an OCSP signer needs a non-critical id-pkix-ocsp-nocheck (RFC "
			    "6960 4.2.2.2.1)");
			goto out;
		}
	} else if (nocheck) {
		lint_finding(err, errsz, "ocsp_nocheck_only_signer",
		             "only an OCSP signer carries id-pkix-ocsp-nocheck");
		goto out;
	}
	rc = 0;
out:
	EXTENDED_KEY_USAGE_free(eku);
	ASN1_NULL_free(nocheck);
	return rc;
}

/* The subject's key: RSA of at least 2048 bits, or EC on P-256, P-384 or P-521 (CA/B Forum
 * BR 6.1.5; RFC 5480 2.1.1.1: a named curve). */
/* The subject's public key: OpenSSL's cached one, or, for a certificate built in memory from
 * a SubjectPublicKeyInfo copied as it is, decoded from it. Free with EVP_PKEY_free. */
static EVP_PKEY *subject_key(X509 *x)
{
	EVP_PKEY *k = X509_get_pubkey(x);
	unsigned char *der = NULL;
	const unsigned char *q;
	int n;

	if (k)
		return k;
	ERR_clear_error();
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	q = der;
	k = n > 0 ? d2i_PUBKEY(NULL, &q, n) : NULL;
	OPENSSL_free(der);
	ERR_clear_error();
	return k;
}

static int check_key_type(EVP_PKEY *k, char *err, size_t errsz)
{
	char curve[64] = "";
	size_t len = 0;

	if (!k)
		return lint_finding(err, errsz, "key_type",
		                    "the subject public key does not decode");
	if (EVP_PKEY_is_a(k, "RSA")) {
		if (EVP_PKEY_get_bits(k) < 2048)
			return lint_finding(err, errsz, "key_rsa_size",
			                    "the RSA key has %d bits; at least 2048 (CA/B Forum BR "
			                    "6.1.5)",
			                    EVP_PKEY_get_bits(k));
		return 0;
	}
	if (EVP_PKEY_is_a(k, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof(curve), &len) ||
		    (strcmp(curve, "prime256v1") && strcmp(curve, "P-256") &&
		     strcmp(curve, "secp384r1") && strcmp(curve, "P-384") &&
		     strcmp(curve, "secp521r1") && strcmp(curve, "P-521"))) {
			ERR_clear_error();
			return lint_finding(err, errsz, "key_ec_curve",
			                    "the EC key is on %s; only P-256, P-384 and P-521 as a "
			                    "named curve (CA/B Forum BR 6.1.5, RFC 5480 2.1.1.1)",
			                    curve[0] ? curve : "an unnamed curve");
		}
		return 0;
	}
	return lint_finding(err, errsz, "key_type",
	                    "the subject public key is %s; only RSA and EC keys (CA/B Forum BR "
	                    "6.1.5)",
	                    EVP_PKEY_get0_type_name(k) ? EVP_PKEY_get0_type_name(k) : "unknown");
}

/* keyUsage that the key's algorithm can do: an EC key neither enciphers keys nor data (RFC
 * 5480 3), an RSA key agrees no keys (RFC 3279 2.3.1), encipherOnly and decipherOnly only
 * with keyAgreement (RFC 5280 4.2.1.3). */
static unsigned ku_bits(X509 *x)
{
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, NULL, NULL);
	unsigned have = 0;

	for (int bit = 0; ku && bit < 9; bit++)
		if (ASN1_BIT_STRING_get_bit(ku, bit))
			have |= 1u << bit;
	ASN1_BIT_STRING_free(ku);
	return have;
}

static int check_ku_key_type(EVP_PKEY *k, X509 *x, char *err, size_t errsz)
{
	unsigned have = ku_bits(x);

	if (k && EVP_PKEY_is_a(k, "EC") && (have & LINT_KU_KEY_ENCIPHERMENT))
		return lint_finding(err, errsz, "ku_ec_no_key_encipherment",
		                    "keyEncipherment on an EC key: it is for RSA keys only (RFC "
		                    "5480 3, CA/B Forum BR 7.1.2.7.11)");
	if (k && EVP_PKEY_is_a(k, "EC") && (have & LINT_KU_DATA_ENCIPHERMENT))
		return lint_finding(err, errsz, "ku_ec_no_data_encipherment",
		                    "dataEncipherment on an EC key: an EC key enciphers nothing "
		                    "(RFC 5480 3)");
	if (k && EVP_PKEY_is_a(k, "RSA") && (have & LINT_KU_KEY_AGREEMENT))
		return lint_finding(err, errsz, "ku_rsa_no_key_agreement",
		                    "keyAgreement on an RSA key: RSA agrees no keys (RFC 3279 "
		                    "2.3.1)");
	if ((have & (LINT_KU_ENCIPHER_ONLY | LINT_KU_DECIPHER_ONLY)) &&
	    !(have & LINT_KU_KEY_AGREEMENT))
		return lint_finding(err, errsz, "ku_encipher_only_needs_key_agreement",
		                    "encipherOnly or decipherOnly without keyAgreement (RFC 5280 "
		                    "4.2.1.3)");
	return 0;
}

/* extendedKeyUsage consistent with keyUsage (RFC 5280 4.2.1.12): each purpose of an
 * end-entity certificate needs one of the key usages RFC 5280 lists for it. (In a CA
 * certificate extendedKeyUsage restricts the purposes of the certificates below it, which its
 * own keyCertSign and cRLSign serve.) */
static int check_eku_ku(const struct lint_cert_profile *p, X509 *x, char *err, size_t errsz)
{
	static const struct {
		int nid;
		unsigned any;
		const char *needs;
	} need[] = {
	    {NID_server_auth,
	     LINT_KU_DIGITAL_SIGNATURE | LINT_KU_KEY_ENCIPHERMENT | LINT_KU_KEY_AGREEMENT,
	     "digitalSignature, keyEncipherment or keyAgreement"},
	    {NID_client_auth, LINT_KU_DIGITAL_SIGNATURE | LINT_KU_KEY_AGREEMENT,
	     "digitalSignature or keyAgreement"},
	    {NID_code_sign, LINT_KU_DIGITAL_SIGNATURE, "digitalSignature"},
	    {NID_email_protect,
	     LINT_KU_DIGITAL_SIGNATURE | LINT_KU_CONTENT_COMMITMENT | LINT_KU_KEY_ENCIPHERMENT |
	         LINT_KU_KEY_AGREEMENT,
	     "digitalSignature, nonRepudiation, keyEncipherment or keyAgreement"},
	    {NID_time_stamp, LINT_KU_DIGITAL_SIGNATURE | LINT_KU_CONTENT_COMMITMENT,
	     "digitalSignature or nonRepudiation"},
	    {NID_OCSP_sign, LINT_KU_DIGITAL_SIGNATURE | LINT_KU_CONTENT_COMMITMENT,
	     "digitalSignature or nonRepudiation"},
	};
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	unsigned have = ku_bits(x);
	int rc = 0;

	if (is_ca(p->role)) {
		EXTENDED_KEY_USAGE_free(eku);
		return 0;
	}
	for (int i = 0; eku && rc == 0 && i < sk_ASN1_OBJECT_num(eku); i++) {
		int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
		for (size_t j = 0; j < sizeof(need) / sizeof(need[0]); j++)
			if (need[j].nid == nid && !(have & need[j].any)) {
				rc = lint_finding(err, errsz, "eku_ku_consistent",
				                  "extendedKeyUsage %s needs keyUsage %s (RFC 5280 "
				                  "4.2.1.12)",
				                  OBJ_nid2sn(nid), need[j].needs);
				break;
			}
	}
	EXTENDED_KEY_USAGE_free(eku);
	return rc;
}

/* A TLS server certificate (extendedKeyUsage serverAuth) names its server in
 * subjectAltName, and a commonName, if any, repeats one of those names (CA/B Forum BR
 * 7.1.2.7.12, 7.1.4.3). */
static int cn_in_sans(const char *cn, GENERAL_NAMES *san)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
		if (g->type == GEN_DNS) {
			const ASN1_IA5STRING *d = g->d.dNSName;
			if ((size_t)ASN1_STRING_length(d) == strlen(cn) &&
			    OPENSSL_strncasecmp((const char *)ASN1_STRING_get0_data(d), cn,
			                        strlen(cn)) == 0)
				return 1;
		} else if (g->type == GEN_IPADD) {
			ASN1_OCTET_STRING *want = a2i_IPADDRESS(cn);
			int same = want && ASN1_OCTET_STRING_cmp(want, g->d.iPAddress) == 0;
			ASN1_OCTET_STRING_free(want);
			if (same)
				return 1;
		}
	}
	return 0;
}

static int check_tls_server(const struct lint_cert_profile *p, X509 *x, char *err, size_t errsz)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	GENERAL_NAMES *san = NULL;
	const X509_NAME *subject = X509_get_subject_name(x);
	int server = 0, rc = 0, i = -1;

	for (int k = 0; eku && k < sk_ASN1_OBJECT_num(eku); k++)
		server |= OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, k)) == NID_server_auth;
	EXTENDED_KEY_USAGE_free(eku);
	if (!server || p->role != LINT_LEAF)
		return 0;
	san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (!san || sk_GENERAL_NAME_num(san) == 0) {
		rc = lint_finding(err, errsz, "tls_san_present",
		                  "a TLS server certificate needs subjectAltName (CA/B Forum BR "
		                  "7.1.2.7.12)");
		goto out;
	}
	while ((i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0) {
		unsigned char *cn = NULL;
		int n = ASN1_STRING_to_UTF8(
		    &cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
		int ok = n > 0 && memchr(cn, 0, (size_t)n) == NULL && cn_in_sans((char *)cn, san);
		OPENSSL_free(cn);
		if (!ok) {
			rc = lint_finding(
			    err, errsz, "tls_cn_in_san",
			    "the commonName is none of the subjectAltName's names (CA/B "
			    "Forum BR 7.1.4.3)");
			goto out;
		}
	}
out:
	GENERAL_NAMES_free(san);
	return rc;
}

/* nameConstraints' syntax (RFC 5280 4.2.1.10): not empty; each subtree a base with minimum
 * 0 and no maximum; bases of the forms RFC 5280 defines the matching of, an iPAddress as an
 * address and a mask of the same length (8 or 32 octets). */
static int check_subtrees(STACK_OF(GENERAL_SUBTREE) * t, const char *which, char *err, size_t errsz)
{
	for (int i = 0; i < sk_GENERAL_SUBTREE_num(t); i++) {
		GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(t, i);
		int type = st->base ? st->base->type : -1;
		if ((st->minimum && ASN1_INTEGER_get(st->minimum) != 0) || st->maximum)
			return lint_finding(err, errsz, "nc_syntax",
			                    "a %s subtree of nameConstraints has a minimum or a "
			                    "maximum (RFC 5280 4.2.1.10: minimum 0, no maximum)",
			                    which);
		if (type == GEN_IPADD) {
			int n = ASN1_STRING_length(st->base->d.iPAddress);
			if (n != 8 && n != 32)
				return lint_finding(
				    err, errsz, "nc_syntax",
				    "a %s iPAddress subtree of nameConstraints is %d "
				    "octets; an address and its mask are 8 or 32 (RFC "
				    "5280 4.2.1.10)",
				    which, n);
		} else if (type == GEN_DNS || type == GEN_EMAIL || type == GEN_URI) {
			const ASN1_IA5STRING *s = st->base->d.ia5;
			if (ASN1_STRING_length(s) == 0 && type != GEN_DNS)
				return lint_finding(err, errsz, "nc_syntax",
				                    "a %s subtree of nameConstraints is empty",
				                    which);
			for (int k = 0; k < ASN1_STRING_length(s); k++) {
				unsigned char c = ASN1_STRING_get0_data(s)[k];
				if (c <= ' ' || c >= 0x7f || (type == GEN_DNS && c == '*'))
					return lint_finding(
					    err, errsz, "nc_syntax",
					    "a %s subtree of nameConstraints holds a character a "
					    "name "
					    "of its form cannot hold (RFC 5280 4.2.1.10)",
					    which);
			}
		} else if (type != GEN_DIRNAME) {
			return lint_finding(err, errsz, "nc_syntax",
			                    "a %s subtree of nameConstraints is of a name form "
			                    "hsmca does not constrain by (dNSName, iPAddress, "
			                    "rfc822Name, URI and directoryName only)",
			                    which);
		}
	}
	return 0;
}

static int check_nc_syntax(NAME_CONSTRAINTS *nc, char *err, size_t errsz)
{
	if (sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) <= 0 &&
	    sk_GENERAL_SUBTREE_num(nc->excludedSubtrees) <= 0)
		return lint_finding(err, errsz, "nc_syntax",
		                    "nameConstraints has neither permitted nor excluded subtrees "
		                    "(RFC 5280 4.2.1.10)");
	if (check_subtrees(nc->permittedSubtrees, "permitted", err, errsz) ||
	    check_subtrees(nc->excludedSubtrees, "excluded", err, errsz))
		return -1;
	return 0;
}

static int check_name_constraints(const struct lint_cert_profile *p, X509 *x, char *err,
                                  size_t errsz)
{
	int crit = -1, rc = 0;
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, &crit, NULL);

	if (!!nc != !!p->name_constraints)
		rc = lint_finding(err, errsz, "nc_matches_profile",
		                  "nameConstraints differ from %s", lint_source_short(&p->words));
	else if (nc && crit != 1)
		rc = lint_finding(err, errsz, "nc_critical",
		                  "nameConstraints must be critical (RFC 5280 4.2.1.10)");
	else if (nc && !is_ca(p->role))
		rc = lint_finding(err, errsz, "nc_ca_only",
		                  "only a CA certificate carries nameConstraints");
	else if (nc)
		rc = check_nc_syntax(nc, err, errsz);
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
	return lint_finding(err, errsz, "validity_within_issuer",
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
	EVP_PKEY *key, *issuer_pub;
	int rc = 0;

	if (X509_get_version(x) != X509_VERSION_3)
		return lint_finding(err, errsz, "cert_version_3",
		                    "the certificate is not version 3");
	if (lint_check_serial(X509_get0_serialNumber(x),
	                      p->min_serial_bits ? p->min_serial_bits : 64, err, errsz) != 0)
		return -1;
	if (X509_NAME_cmp(X509_get_issuer_name(x), want_issuer) != 0)
		return lint_finding(err, errsz, "issuer_name_matches",
		                    "the issuer name is not the issuer's subject name");
	/* The caller's key when it gave one (check_subject_key compares it with the
	 * certificate's first), else the certificate's, decoded. */
	key = w->subject_pub && EVP_PKEY_up_ref(w->subject_pub) ? w->subject_pub : subject_key(x);
	issuer_pub = w->issuer_pub    ? w->issuer_pub
	             : w->issuer      ? X509_get0_pubkey(w->issuer)
	             : w->subject_pub ? w->subject_pub
	                              : key;
	if (p->hash_nid && issuer_pub &&
	    lint_sig_nid(issuer_pub, p->hash_nid, p->rsa_pss) == NID_undef)
		rc = lint_finding(err, errsz, "sig_alg_for_key",
		                  "the issuer's key cannot sign with %s%s (RFC 5280 4.1.1.2)",
		                  OBJ_nid2sn(p->hash_nid), p->rsa_pss ? " and RSASSA-PSS" : "");
	else if (check_subject(p, w, x, err, errsz) || check_validity(p, x, err, errsz) ||
	         check_extensions(p, x, err, errsz) || check_subject_key(p, w, x, err, errsz) ||
	         check_key_ids(w, x, err, errsz) || check_basic_constraints(p, x, err, errsz) ||
	         check_key_usage(p, x, err, errsz) || check_eku_and_nocheck(p, x, err, errsz) ||
	         check_key_type(key, err, errsz) || check_ku_key_type(key, x, err, errsz) ||
	         check_eku_ku(p, x, err, errsz) || check_tls_server(p, x, err, errsz) ||
	         check_name_constraints(p, x, err, errsz) ||
	         check_validity_nesting(p, w, x, err, errsz))
		rc = -1;
	EVP_PKEY_free(key);
	return rc;
}

int lint_cert_signed(const struct lint_cert_profile *p, const struct lint_parties *w, X509 *x,
                     char *err, size_t errsz)
{
	if (lint_cert_tbs(p, w, x, err, errsz) != 0)
		return -1;
	return lint_cert_signature(p, w, x, err, errsz);
}

/* The key that signed x: the caller's, the issuer certificate's, or (self-signed) the
 * subject's. */
static EVP_PKEY *signer_pub(const struct lint_parties *w, X509 *x)
{
	if (w->issuer_pub)
		return w->issuer_pub;
	return w->issuer        ? X509_get0_pubkey(w->issuer)
	       : w->subject_pub ? w->subject_pub
	                        : X509_get0_pubkey(x);
}

/* OpenSSL decodes every extension it knows while caching them; one that fails to decode
 * marks the whole certificate invalid for path validation. */
static int check_ext_decode(X509 *x, char *err, size_t errsz)
{
	if (X509_get_extension_flags(x) & EXFLAG_INVALID)
		return lint_finding(err, errsz, "ext_decodes",
		                    "OpenSSL finds an extension of the certificate invalid");
	return 0;
}

int lint_cert_signature(const struct lint_cert_profile *p, const struct lint_parties *w, X509 *x,
                        char *err, size_t errsz)
{
	EVP_PKEY *pub = signer_pub(w, x);
	const X509_ALGOR *outer;

	if (check_ext_decode(x, err, errsz))
		return -1;
	X509_get0_signature(NULL, &outer, x);
	if (lint_check_sig_alg(p->hash_nid, p->rsa_pss, &p->words, X509_get0_tbs_sigalg(x), outer,
	                       pub, "the certificate", err, errsz) != 0)
		return -1;
	return lint_verify_cert_signature(x, pub, err, errsz);
}

/* An AlgorithmIdentifier element of in (a SEQUENCE), decoded; NULL when it is not one. */
static X509_ALGOR *algor_of(struct der_in *in)
{
	const unsigned char *start = in->p, *q = in->p;
	struct der_in content;

	if (der_get(in, 0x30, &content) != 0)
		return NULL;
	return d2i_X509_ALGOR(NULL, &q, (long)(in->p - start));
}

/* der as one Certificate and nothing after it (RFC 5280 4.1): its TBSCertificate's element
 * (tbs), the algorithm inside it and the outer one, the signature's octets. 0 or -1. */
static int cert_parts(const unsigned char *der, size_t len, struct der_in *tbs, X509_ALGOR **inner,
                      X509_ALGOR **outer, struct der_in *sig)
{
	struct der_in in = {der, len}, cert, tbs_in, skip;

	if (der_get(&in, 0x30, &cert) != 0 || in.len != 0)
		return -1;
	tbs->p = cert.p;
	if (der_get(&cert, 0x30, &tbs_in) != 0)
		return -1;
	tbs->len = (size_t)(cert.p - tbs->p);
	/* TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, ... } */
	if ((der_peek(&tbs_in, 0xa0) && der_get(&tbs_in, 0xa0, &skip) != 0) ||
	    der_get(&tbs_in, 0x02, &skip) != 0 || !(*inner = algor_of(&tbs_in)) ||
	    !(*outer = algor_of(&cert)) || der_get(&cert, 0x03, sig) != 0 || cert.len != 0)
		return -1;
	/* A signature is whole octets: the BIT STRING's first octet (unused bits) is 0. */
	if (sig->len < 2 || sig->p[0] != 0)
		return -1;
	sig->p++;
	sig->len--;
	return 0;
}

int lint_cert_signature_der(const struct lint_cert_profile *p, const struct lint_parties *w,
                            X509 *x, const unsigned char *der, size_t len, char *err, size_t errsz)
{
	struct der_in tbs, sig;
	X509_ALGOR *inner = NULL, *outer = NULL;
	EVP_PKEY *pub = signer_pub(w, x);
	EVP_MD_CTX *md = NULL;
	int rc = -1, sig_nid, md_nid = NID_undef, pk_nid;

	if (cert_parts(der, len, &tbs, &inner, &outer, &sig) != 0) {
		lint_finding(err, errsz, "ext_decodes",
		             "the signed certificate is not one DER Certificate (RFC 5280 4.1)");
		goto out;
	}
	if (check_ext_decode(x, err, errsz) ||
	    lint_check_sig_alg(p->hash_nid, p->rsa_pss, &p->words, inner, outer, pub,
	                       "the certificate", err, errsz) != 0)
		goto out;
	/* The signature over the TBSCertificate's bytes as they will be stored; RSASSA-PSS
	 * (its parameters are in the algorithm) and digest-less algorithms as X509_verify
	 * does it. */
	sig_nid = OBJ_obj2nid(outer->algorithm);
	if (sig_nid == NID_rsassaPss || !OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) ||
	    md_nid == NID_undef) {
		rc = lint_verify_cert_signature(x, pub, err, errsz);
		goto out;
	}
	if (!pub || !(md = EVP_MD_CTX_new()) ||
	    EVP_DigestVerifyInit_ex(md, NULL, OBJ_nid2sn(md_nid), NULL, NULL, pub, NULL) != 1 ||
	    EVP_DigestVerify(md, sig.p, sig.len, tbs.p, tbs.len) != 1) {
		ERR_clear_error();
		lint_sig_not_verified(err, errsz);
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	X509_ALGOR_free(inner);
	X509_ALGOR_free(outer);
	return rc;
}
