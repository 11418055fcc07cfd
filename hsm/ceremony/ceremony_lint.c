/*
 * RFC 5280 profile checks, run on the to-be-signed certificate before keyd
 * signs it and on the signed certificate (decoded again from its DER) after.
 * Each check compares what is in the certificate with what the ceremony file
 * asked for, so a fault anywhere between the file and the bytes is caught.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ceremony_internal.h"

static void warn(const struct cer_lint *l, const char *msg)
{
	if (l->warn)
		l->warn(l->warn_arg, msg);
}

static int is_ca(enum cer_type t)
{
	return t == CER_ROOT || t == CER_INTERMEDIATE || t == CER_CROSS_SIGN;
}

/* ---- pieces shared by certificates and CRLs ---- */

static int year_of(const ASN1_TIME *t)
{
	struct tm tm;

	return ASN1_TIME_to_tm(t, &tm) ? tm.tm_year + 1900 : -1;
}

/* UTCTime YYMMDDHHMMSSZ through 2049, GeneralizedTime YYYYMMDDHHMMSSZ from 2050. */
static int check_time(const ASN1_TIME *t, time_t want, const char *what, char *err, size_t errsz)
{
	int y = year_of(t);
	int type = ASN1_STRING_type(t), len = ASN1_STRING_length(t);
	const unsigned char *d = ASN1_STRING_get0_data(t);

	if (y < 0 || !ASN1_TIME_check(t))
		return cer_fail(err, errsz, "%s is not a valid time", what);
	if (y < 2050 && (type != V_ASN1_UTCTIME || len != 13))
		return cer_fail(err, errsz,
		                "%s (%d) must be a UTCTime YYMMDDHHMMSSZ (RFC 5280 4.1.2.5)", what,
		                y);
	if (y >= 2050 && (type != V_ASN1_GENERALIZEDTIME || len != 15))
		return cer_fail(err, errsz,
		                "%s (%d) must be a GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280 "
		                "4.1.2.5)",
		                what, y);
	if (d[len - 1] != 'Z')
		return cer_fail(err, errsz, "%s is not in UTC", what);
	if (ASN1_TIME_cmp_time_t(t, want) != 0)
		return cer_fail(err, errsz, "%s differs from the ceremony file", what);
	return 0;
}

static int ext_duplicates(const STACK_OF(X509_EXTENSION) * exts, const char *what, char *err,
                          size_t errsz)
{
	int n = sk_X509_EXTENSION_num(exts);

	for (int i = 0; i < n; i++)
		for (int j = 0; j < i; j++) {
			const ASN1_OBJECT *a =
			    X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i));
			const ASN1_OBJECT *b =
			    X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, j));
			if (OBJ_cmp(a, b) == 0) {
				char name[128];
				OBJ_obj2txt(name, sizeof(name), a, 0);
				return cer_fail(err, errsz,
				                "%s has extension %s twice (RFC 5280 4.2)", what,
				                name);
			}
		}
	return 0;
}

static int ext_allowed(const STACK_OF(X509_EXTENSION) * exts, const int *nids, const char *what,
                       char *err, size_t errsz)
{
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		const ASN1_OBJECT *o = X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i));
		int nid = OBJ_obj2nid(o), k;
		char name[128];
		for (k = 0; nids[k]; k++)
			if (nids[k] == nid)
				break;
		if (!nids[k]) {
			OBJ_obj2txt(name, sizeof(name), o, 0);
			return cer_fail(err, errsz, "%s has an unexpected extension %s", what,
			                name);
		}
	}
	return 0;
}

static int octets_equal(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b)
{
	return a && b && ASN1_STRING_length(a) == ASN1_STRING_length(b) &&
	       memcmp(ASN1_STRING_get0_data(a), ASN1_STRING_get0_data(b),
	              (size_t)ASN1_STRING_length(a)) == 0;
}

/* AKI: present, not critical, keyid only, equal to the issuer's SKI. */
static int check_aki(AUTHORITY_KEYID *aki, int crit, const ASN1_OCTET_STRING *issuer_ski,
                     const char *what, char *err, size_t errsz)
{
	if (!aki)
		return cer_fail(err, errsz, "%s has no authorityKeyIdentifier (RFC 5280 4.2.1.1)",
		                what);
	if (crit)
		return cer_fail(err, errsz, "%s: authorityKeyIdentifier must not be critical",
		                what);
	if (!aki->keyid || aki->issuer || aki->serial)
		return cer_fail(err, errsz,
		                "%s: authorityKeyIdentifier must hold the keyIdentifier only",
		                what);
	if (!octets_equal(aki->keyid, issuer_ski))
		return cer_fail(
		    err, errsz,
		    "%s: authorityKeyIdentifier is not the issuer's subjectKeyIdentifier", what);
	return 0;
}

static int expected_sig_nid(const struct ceremony *c, EVP_PKEY *issuer_pub)
{
	static const int rsa[] = {NID_sha256WithRSAEncryption, NID_sha384WithRSAEncryption,
	                          NID_sha512WithRSAEncryption};
	static const int ec[] = {NID_ecdsa_with_SHA256, NID_ecdsa_with_SHA384,
	                         NID_ecdsa_with_SHA512};
	int h = (int)c->sig.hash - 1;

	if (EVP_PKEY_is_a(issuer_pub, "RSA"))
		return c->sig.padding == CER_PAD_PSS ? NID_rsassaPss : rsa[h];
	return ec[h];
}

static int check_sig_alg(const struct ceremony *c, const X509_ALGOR *inner, const X509_ALGOR *outer,
                         EVP_PKEY *issuer_pub, const char *what, char *err, size_t errsz)
{
	const ASN1_OBJECT *oid;
	int want = expected_sig_nid(c, issuer_pub);

	if (X509_ALGOR_cmp(inner, outer) != 0)
		return cer_fail(err, errsz,
		                "%s: the signed and the outer signature algorithms differ", what);
	X509_ALGOR_get0(&oid, NULL, NULL, outer);
	if (OBJ_obj2nid(oid) != want)
		return cer_fail(err, errsz, "%s is signed with %s, the ceremony asked for %s", what,
		                OBJ_nid2ln(OBJ_obj2nid(oid)), OBJ_nid2ln(want));
	return 0;
}

/* Octets of an INTEGER's DER contents (i2c_ASN1_INTEGER is not public). */
static int der_int_len(const ASN1_INTEGER *a)
{
	int n = i2d_ASN1_INTEGER(a, NULL);

	return n < 2 ? 0 : n < 130 ? n - 2 : n; /* short form: tag and one length octet */
}

/* The signature AlgorithmIdentifier inside the TBSCertList (OpenSSL 3.0 has no getter),
 * read from the CRL's own encoding, which is not re-encoded. */
static X509_ALGOR *crl_tbs_sigalg(X509_CRL *crl)
{
	unsigned char *der = NULL;
	const unsigned char *p, *q, *end;
	long len;
	int tag, cls, n = i2d_X509_CRL(crl, &der);
	X509_ALGOR *alg = NULL;

	if (n <= 0)
		return NULL;
	p = der;
	end = der + n;
	/* CertificateList, then TBSCertList, past the optional version, the algorithm. */
	for (int depth = 0; depth < 2; depth++)
		if ((ASN1_get_object(&p, &len, &tag, &cls, end - p) & 0x80) ||
		    tag != V_ASN1_SEQUENCE)
			goto out;
	q = p;
	if (!(ASN1_get_object(&q, &len, &tag, &cls, end - p) & 0x80) && tag == V_ASN1_INTEGER &&
	    len <= end - q)
		p = q + len;
	alg = d2i_X509_ALGOR(NULL, &p, end - p);
out:
	OPENSSL_free(der);
	return alg;
}

/* ---- certificates ---- */

/* min_bits: 64 for serials this ceremony made, 1 for serials others made (CRL entries). */
static int check_serial(const ASN1_INTEGER *s, int min_bits, char *err, size_t errsz)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);
	int len = der_int_len(s), bits = bn ? BN_num_bits(bn) : 0;
	int neg = bn && BN_is_negative(bn);

	BN_free(bn);
	if (neg || bits == 0)
		return cer_fail(err, errsz,
		                "the serial number must be positive (RFC 5280 4.1.2.2)");
	if (len > 20)
		return cer_fail(err, errsz,
		                "the serial number is %d octets; at most 20 (RFC 5280 4.1.2.2)",
		                len);
	if (bits < min_bits)
		return cer_fail(err, errsz,
		                "the serial number has %d bits; it must carry at least 64 random "
		                "bits (CA/B Forum BR 7.1)",
		                bits);
	return 0;
}

static int check_subject_key(const struct cer_lint *l, X509 *x, char *err, size_t errsz)
{
	X509_PUBKEY *xpk = X509_get_X509_PUBKEY(x);
	unsigned char *have = NULL, *want = NULL;
	int hl = i2d_X509_PUBKEY(xpk, &have), wl = i2d_PUBKEY(l->subject_pub, &want);
	int same = hl > 0 && hl == wl && memcmp(have, want, (size_t)hl) == 0;

	OPENSSL_free(have);
	OPENSSL_free(want);
	if (!same)
		return cer_fail(err, errsz,
		                "the certificate's public key is not the key the ceremony checked");
	return 0;
}

static int check_key_ids(const struct cer_lint *l, X509 *x, char *err, size_t errsz)
{
	int crit = -1, rc = -1;
	ASN1_OCTET_STRING *ski = X509_get_ext_d2i(x, NID_subject_key_identifier, &crit, NULL);
	AUTHORITY_KEYID *aki = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const ASN1_OCTET_STRING *issuer_ski;
	ASN1_OCTET_STRING *want = ASN1_OCTET_STRING_new();

	if (!ski) {
		cer_fail(err, errsz,
		         "the certificate has no subjectKeyIdentifier (RFC 5280 4.2.1.2)");
		goto out;
	}
	if (crit) {
		cer_fail(err, errsz, "subjectKeyIdentifier must not be critical");
		goto out;
	}
	if (l->existing_ca && X509_get0_subject_key_id(l->existing_ca)) {
		if (!octets_equal(ski, X509_get0_subject_key_id(l->existing_ca))) {
			cer_fail(err, errsz,
			         "subjectKeyIdentifier differs from the existing CA certificate's");
			goto out;
		}
	} else if (!want || !X509_pubkey_digest(x, EVP_sha1(), md, &mdlen) ||
	           !ASN1_OCTET_STRING_set(want, md, (int)mdlen) || !octets_equal(ski, want)) {
		cer_fail(err, errsz,
		         "subjectKeyIdentifier is not the SHA-1 of the subjectPublicKey (RFC 5280 "
		         "4.2.1.2 method 1)");
		goto out;
	}
	aki = X509_get_ext_d2i(x, NID_authority_key_identifier, &crit, NULL);
	issuer_ski = l->issuer ? X509_get0_subject_key_id(l->issuer) : ski;
	if (check_aki(aki, crit, issuer_ski, "the certificate", err, errsz) != 0)
		goto out;
	rc = 0;
out:
	ASN1_OCTET_STRING_free(ski);
	ASN1_OCTET_STRING_free(want);
	AUTHORITY_KEYID_free(aki);
	return rc;
}

static int check_basic_constraints(const struct cer_lint *l, X509 *x, char *err, size_t errsz)
{
	const struct ceremony *c = l->c;
	int crit = -1, rc = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);

	if (is_ca(c->type)) {
		if (!bc || !bc->ca) {
			cer_fail(err, errsz, "a CA certificate needs basicConstraints cA=TRUE");
			goto out;
		}
		if (crit != 1) {
			cer_fail(err, errsz,
			         "basicConstraints must be critical on a CA (RFC 5280 4.2.1.9)");
			goto out;
		}
		if (!!bc->pathlen != c->cert.has_path_length ||
		    (bc->pathlen && ASN1_INTEGER_get(bc->pathlen) != c->cert.path_length)) {
			cer_fail(err, errsz, "basicConstraints' path length differs from the file");
			goto out;
		}
	} else if (bc && (bc->ca || bc->pathlen)) {
		cer_fail(err, errsz, "an OCSP signer must not be a CA (basicConstraints)");
		goto out;
	}
	rc = 0;
out:
	BASIC_CONSTRAINTS_free(bc);
	return rc;
}

static int check_key_usage(const struct cer_lint *l, X509 *x, char *err, size_t errsz)
{
	const struct ceremony *c = l->c;
	int crit = -1, rc = -1;
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	unsigned have = 0;

	if (!ku) {
		cer_fail(err, errsz, "the certificate has no keyUsage (RFC 5280 4.2.1.3)");
		goto out;
	}
	if (crit != 1) {
		cer_fail(err, errsz, "keyUsage must be critical");
		goto out;
	}
	for (int bit = 0; bit < 9; bit++)
		if (ASN1_BIT_STRING_get_bit(ku, bit))
			have |= 1u << bit;
	if (have != c->cert.key_usage) {
		cer_fail(err, errsz, "keyUsage differs from the file's key_usage");
		goto out;
	}
	if (is_ca(c->type) && !(have & CER_KU_KEY_CERT_SIGN)) {
		cer_fail(err, errsz, "a CA certificate needs keyUsage keyCertSign");
		goto out;
	}
	if (c->type == CER_OCSP_SIGNER && (!(have & CER_KU_DIGITAL_SIGNATURE) ||
	                                   (have & (CER_KU_KEY_CERT_SIGN | CER_KU_CRL_SIGN)))) {
		cer_fail(
		    err, errsz,
		    "an OCSP signer needs digitalSignature and neither keyCertSign nor cRLSign");
		goto out;
	}
	rc = 0;
out:
	ASN1_BIT_STRING_free(ku);
	return rc;
}

static int check_eku_and_nocheck(const struct cer_lint *l, X509 *x, char *err, size_t errsz)
{
	const struct ceremony *c = l->c;
	int crit = -1, rc = -1, ocsp = 0, nocheck_crit = -1;
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
	ASN1_NULL *nocheck = X509_get_ext_d2i(x, NID_id_pkix_OCSP_noCheck, &nocheck_crit, NULL);
	int n = eku ? sk_ASN1_OBJECT_num(eku) : 0;

	if (n != (int)c->cert.n_eku) {
		cer_fail(err, errsz, "extendedKeyUsage differs from the file");
		goto out;
	}
	if (eku && crit) {
		cer_fail(err, errsz, "extendedKeyUsage is not marked critical by this profile");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		char oid[CER_OID_MAX];
		OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i), 1);
		if (strcmp(oid, c->cert.eku[i]) != 0) {
			cer_fail(err, errsz, "extendedKeyUsage differs from the file");
			goto out;
		}
		ocsp |= OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)) == NID_OCSP_sign;
	}
	if (c->type == CER_ROOT && eku) {
		cer_fail(err, errsz, "a root certificate carries no extendedKeyUsage");
		goto out;
	}
	if (c->type == CER_OCSP_SIGNER) {
		if (!ocsp) {
			cer_fail(err, errsz,
			         "an OCSP signer needs extendedKeyUsage id-kp-OCSPSigning");
			goto out;
		}
		if (!nocheck || nocheck_crit) {
			cer_fail(
			    err, errsz,
			    "an OCSP signer needs a non-critical id-pkix-ocsp-nocheck (RFC 6960 "
			    "4.2.2.2.1)");
			goto out;
		}
	} else if (nocheck) {
		cer_fail(err, errsz, "only an OCSP signer carries id-pkix-ocsp-nocheck");
		goto out;
	}
	rc = 0;
out:
	EXTENDED_KEY_USAGE_free(eku);
	ASN1_NULL_free(nocheck);
	return rc;
}

static int check_name_constraints(const struct cer_lint *l, X509 *x, char *err, size_t errsz)
{
	int crit = -1;
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, &crit, NULL);
	int want = l->c->cert.n_permitted || l->c->cert.n_excluded;
	int rc = 0;

	if (!!nc != want)
		rc = cer_fail(err, errsz, "nameConstraints differ from the file");
	else if (nc && crit != 1)
		rc = cer_fail(err, errsz, "nameConstraints must be critical (RFC 5280 4.2.1.10)");
	else if (nc && !is_ca(l->c->type))
		rc = cer_fail(err, errsz, "only a CA certificate carries nameConstraints");
	NAME_CONSTRAINTS_free(nc);
	return rc;
}

static int check_validity_nesting(const struct cer_lint *l, X509 *x, char *err, size_t errsz)
{
	const struct ceremony *c = l->c;
	char msg[512];

	if (!l->issuer)
		return 0;
	if (ASN1_TIME_compare(X509_get0_notBefore(x), X509_get0_notBefore(l->issuer)) >= 0 &&
	    ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(l->issuer)) <= 0)
		return 0;
	if (c->type == CER_CROSS_SIGN) {
		snprintf(msg, sizeof(msg),
		         "the cross-certificate's validity reaches outside its issuer's; relying "
		         "parties will not accept it outside the issuer's validity");
		warn(l, msg);
		return 0;
	}
	return cer_fail(err, errsz,
	                "the certificate's validity must lie inside the issuer's validity");
}

static const int cert_exts[] = {NID_basic_constraints,
                                NID_key_usage,
                                NID_ext_key_usage,
                                NID_subject_key_identifier,
                                NID_authority_key_identifier,
                                NID_certificate_policies,
                                NID_crl_distribution_points,
                                NID_info_access,
                                NID_name_constraints,
                                NID_id_pkix_OCSP_noCheck,
                                0};

int cer_lint_cert(const struct cer_lint *l, X509 *x, char *err, size_t errsz)
{
	const struct ceremony *c = l->c;
	const X509_NAME *subject = X509_get_subject_name(x);
	const X509_NAME *want_issuer = l->issuer ? X509_get_subject_name(l->issuer) : subject;

	if (X509_get_version(x) != X509_VERSION_3)
		return cer_fail(err, errsz, "the certificate is not version 3");
	if (check_serial(X509_get0_serialNumber(x), 64, err, errsz) != 0)
		return -1;
	if (X509_NAME_cmp(X509_get_issuer_name(x), want_issuer) != 0)
		return cer_fail(err, errsz, "the issuer name is not the issuer's subject name");
	if (X509_NAME_entry_count(subject) == 0)
		return cer_fail(err, errsz, "the subject is empty (RFC 5280 4.1.2.6)");
	if (l->existing_ca && X509_NAME_cmp(subject, X509_get_subject_name(l->existing_ca)) != 0)
		return cer_fail(err, errsz, "the subject differs from the existing CA's");
	if (check_time(X509_get0_notBefore(x), c->cert.not_before, "notBefore", err, errsz) ||
	    check_time(X509_get0_notAfter(x), c->cert.not_after, "notAfter", err, errsz))
		return -1;
	if (ASN1_TIME_compare(X509_get0_notBefore(x), X509_get0_notAfter(x)) >= 0)
		return cer_fail(err, errsz, "notBefore is not before notAfter");
	if (ext_duplicates(X509_get0_extensions(x), "the certificate", err, errsz) ||
	    ext_allowed(X509_get0_extensions(x), cert_exts, "the certificate", err, errsz))
		return -1;
	if (check_subject_key(l, x, err, errsz) || check_key_ids(l, x, err, errsz) ||
	    check_basic_constraints(l, x, err, errsz) || check_key_usage(l, x, err, errsz) ||
	    check_eku_and_nocheck(l, x, err, errsz) || check_name_constraints(l, x, err, errsz) ||
	    check_validity_nesting(l, x, err, errsz))
		return -1;
	if (!l->signed_)
		return 0;
	/* The signed certificate, as decoded from its DER. */
	if (X509_get_extension_flags(x) & EXFLAG_INVALID)
		return cer_fail(err, errsz,
		                "OpenSSL finds an extension of the certificate invalid");
	{
		const X509_ALGOR *outer;
		X509_get0_signature(NULL, &outer, x);
		if (check_sig_alg(c, X509_get0_tbs_sigalg(x), outer, l->issuer_pub,
		                  "the certificate", err, errsz) != 0)
			return -1;
	}
	return cer_verify_cert_signature(x, l->issuer_pub, err, errsz);
}

int cer_verify_cert_signature(X509 *x, EVP_PKEY *pub, char *err, size_t errsz)
{
	if (X509_verify(x, pub) == 1)
		return 0;
	ERR_clear_error();
	return cer_fail(err, errsz,
	                "the signature keyd made does not verify with the public key of the "
	                "issuer certificate: keyd signed with a different key than the "
	                "certificate names (is keyd serving the wrong token or key?)");
}

int cer_verify_crl_signature(X509_CRL *crl, EVP_PKEY *pub, char *err, size_t errsz)
{
	if (X509_CRL_verify(crl, pub) == 1)
		return 0;
	ERR_clear_error();
	return cer_fail(err, errsz,
	                "the CRL signature keyd made does not verify with the public key of the "
	                "issuer certificate: keyd signed with a different key than the "
	                "certificate names (is keyd serving the wrong token or key?)");
}

int cer_lint_path(X509 *x, X509 *issuer, time_t t, char *err, size_t errsz)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = -1;

	if (!st || !ctx || !X509_STORE_add_cert(st, issuer) ||
	    !X509_STORE_CTX_init(ctx, st, x, NULL)) {
		cer_fail(err, errsz, "cannot set up path validation");
		cer_append_ossl(err, errsz);
		goto out;
	}
	/* The issuer is the trust anchor even when it is not self-signed. */
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT |
	                                  X509_V_FLAG_CHECK_SS_SIGNATURE);
	X509_STORE_CTX_set_time(ctx, 0, t);
	if (X509_verify_cert(ctx) != 1) {
		char when[32];
		ceremony_time_str(t, when, sizeof(when));
		cer_fail(err, errsz, "path validation of the new certificate at %s failed: %s",
		         when, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		ERR_clear_error();
		goto out;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return rc;
}

/* ---- the issuer ---- */

int cer_lint_issuer(const struct ceremony *c, X509 *issuer, cer_warn_fn warnf, void *warn_arg,
                    char *err, size_t errsz)
{
	uint32_t flags = X509_get_extension_flags(issuer);
	uint32_t ku = X509_get_key_usage(issuer);
	long pathlen = X509_get_pathlen(issuer);
	const char *f = "issuer.certificate";
	int line = c->issuer.certificate.line;
	time_t now = c->now;

	if (flags & EXFLAG_INVALID)
		return cer_fail_at(err, errsz, c, line, f,
		                   "%s: OpenSSL finds an extension of it invalid",
		                   c->issuer.certificate.resolved);
	if (!(flags & EXFLAG_CA))
		return cer_fail_at(err, errsz, c, line, f, "%s is not a CA certificate",
		                   c->issuer.certificate.resolved);
	if (c->type == CER_CRL ? !(ku & KU_CRL_SIGN) : !(ku & KU_KEY_CERT_SIGN))
		return cer_fail_at(err, errsz, c, line, f, "%s's key usage does not allow %s",
		                   c->issuer.certificate.resolved,
		                   c->type == CER_CRL ? "cRLSign" : "keyCertSign");
	if (!X509_get0_subject_key_id(issuer))
		return cer_fail_at(err, errsz, c, line, f,
		                   "%s has no subjectKeyIdentifier, so the authorityKeyIdentifier "
		                   "cannot name it",
		                   c->issuer.certificate.resolved);
	if (X509_cmp_time(X509_get0_notAfter(issuer), &now) <= 0)
		return cer_fail_at(err, errsz, c, line, f, "%s has expired",
		                   c->issuer.certificate.resolved);
	if (X509_cmp_time(X509_get0_notBefore(issuer), &now) > 0 && warnf)
		warnf(warn_arg, "the issuer certificate is not valid yet");
	if (c->sig.padding != CER_PAD_DEFAULT && !EVP_PKEY_is_a(X509_get0_pubkey(issuer), "RSA"))
		return cer_fail_at(err, errsz, c, c->sig.line_padding, "signature.padding",
		                   "padding applies to RSA keys only; the issuer's key is not RSA");
	if (c->type == CER_INTERMEDIATE || c->type == CER_CROSS_SIGN) {
		if (pathlen == 0)
			return cer_fail_at(err, errsz, c, line, f,
			                   "%s has path length 0: it may not sign CA certificates",
			                   c->issuer.certificate.resolved);
		if (pathlen > 0 && (!c->cert.has_path_length || c->cert.path_length >= pathlen))
			return cer_fail_at(err, errsz, c,
			                   c->cert.has_path_length ? c->cert.line_path_length
			                                           : c->cert.line,
			                   "certificate.path_length",
			                   "the issuer allows %ld more CA level(s) below it: set "
			                   "path_length to at most %ld",
			                   pathlen - 1, pathlen - 1);
	}
	if (c->type == CER_INTERMEDIATE || c->type == CER_OCSP_SIGNER) {
		time_t nb = c->cert.not_before, na = c->cert.not_after;
		if (X509_cmp_time(X509_get0_notBefore(issuer), &nb) > 0)
			return cer_fail_at(
			    err, errsz, c, c->cert.line_not_before, "certificate.not_before",
			    "is before the issuer's notBefore: a certificate must lie "
			    "inside its issuer's validity");
		if (X509_cmp_time(X509_get0_notAfter(issuer), &na) < 0)
			return cer_fail_at(err, errsz, c, c->cert.line_not_after,
			                   "certificate.not_after",
			                   "is after the issuer's notAfter: a certificate must lie "
			                   "inside its issuer's validity");
	}
	if (c->type == CER_CRL) {
		time_t tu = c->crl.this_update, nu = c->crl.next_update;
		if (X509_cmp_time(X509_get0_notBefore(issuer), &tu) > 0)
			return cer_fail_at(err, errsz, c, c->crl.line_this_update,
			                   "crl.this_update", "is before the issuer's notBefore");
		if (X509_cmp_time(X509_get0_notAfter(issuer), &nu) < 0 && warnf)
			warnf(warn_arg, "crl.next_update is after the issuer certificate expires");
	}
	return 0;
}

/* ---- CRLs ---- */

static const int crl_exts[] = {NID_authority_key_identifier, NID_crl_number, 0};
static const int entry_exts[] = {NID_crl_reason, 0};

static int check_crl_entries(const struct cer_lint *l, X509_CRL *crl, char *err, size_t errsz)
{
	STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
	int n = revs ? sk_X509_REVOKED_num(revs) : 0;

	if (n != (int)l->c->crl.n_revoked)
		return cer_fail(err, errsz, "the CRL lists %d certificates, the file %zu", n,
		                l->c->crl.n_revoked);
	for (int i = 0; i < n; i++) {
		X509_REVOKED *r = sk_X509_REVOKED_value(revs, i);
		const ASN1_TIME *t = X509_REVOKED_get0_revocationDate(r);
		const STACK_OF(X509_EXTENSION) *exts = X509_REVOKED_get0_extensions(r);
		int y = year_of(t), crit = -1;
		ASN1_ENUMERATED *reason;

		for (int j = 0; j < i; j++)
			if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(r),
			                     X509_REVOKED_get0_serialNumber(
			                         sk_X509_REVOKED_value(revs, j))) == 0)
				return cer_fail(err, errsz, "the CRL lists a serial number twice");
		if (check_serial(X509_REVOKED_get0_serialNumber(r), 1, err, errsz) != 0)
			return -1;
		if ((y < 2050) != (ASN1_STRING_type(t) == V_ASN1_UTCTIME))
			return cer_fail(err, errsz,
			                "a revocation date has the wrong time type for its year");
		if (ASN1_TIME_compare(t, X509_CRL_get0_lastUpdate(crl)) > 0)
			return cer_fail(err, errsz, "a revocation date is after thisUpdate");
		if (ext_duplicates(exts, "a CRL entry", err, errsz) ||
		    ext_allowed(exts, entry_exts, "a CRL entry", err, errsz))
			return -1;
		reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
		if (reason && crit) {
			ASN1_ENUMERATED_free(reason);
			return cer_fail(err, errsz, "a reasonCode is marked critical");
		}
		if (reason && ASN1_ENUMERATED_get(reason) == CER_REASON_UNSPECIFIED) {
			ASN1_ENUMERATED_free(reason);
			return cer_fail(err, errsz,
			                "reasonCode unspecified should be absent (RFC 5280 5.3.1)");
		}
		ASN1_ENUMERATED_free(reason);
	}
	return 0;
}

int cer_lint_crl(const struct cer_lint *l, X509_CRL *crl, char *err, size_t errsz)
{
	const struct ceremony *c = l->c;
	const STACK_OF(X509_EXTENSION) *exts = X509_CRL_get0_extensions(crl);
	int crit = -1, rc = -1;
	AUTHORITY_KEYID *aki = NULL;
	ASN1_INTEGER *num = NULL;
	BIGNUM *have = NULL, *want = NULL;

	if (X509_CRL_get_version(crl) != X509_CRL_VERSION_2)
		return cer_fail(err, errsz, "the CRL is not version 2");
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(l->issuer)) != 0)
		return cer_fail(err, errsz, "the CRL's issuer is not the issuer's subject name");
	if (!X509_CRL_get0_nextUpdate(crl))
		return cer_fail(err, errsz, "the CRL has no nextUpdate");
	if (check_time(X509_CRL_get0_lastUpdate(crl), c->crl.this_update, "thisUpdate", err,
	               errsz) ||
	    check_time(X509_CRL_get0_nextUpdate(crl), c->crl.next_update, "nextUpdate", err, errsz))
		return -1;
	if (ext_duplicates(exts, "the CRL", err, errsz) ||
	    ext_allowed(exts, crl_exts, "the CRL", err, errsz))
		return -1;
	aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
	if (check_aki(aki, crit, X509_get0_subject_key_id(l->issuer), "the CRL", err, errsz))
		goto out;
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	if (!num || crit) {
		cer_fail(err, errsz, "the CRL needs a non-critical cRLNumber (RFC 5280 5.2.3)");
		goto out;
	}
	have = ASN1_INTEGER_to_BN(num, NULL);
	if (!have || !BN_dec2bn(&want, c->crl.number) || BN_cmp(have, want) != 0 ||
	    der_int_len(num) > 20) {
		cer_fail(err, errsz, "the cRLNumber differs from the file or is over 20 octets");
		goto out;
	}
	if (check_crl_entries(l, crl, err, errsz) != 0)
		goto out;
	if (l->signed_) {
		const X509_ALGOR *outer;
		X509_ALGOR *inner = crl_tbs_sigalg(crl);
		int bad;
		X509_CRL_get0_signature(crl, NULL, &outer);
		bad = !inner ? cer_fail(err, errsz, "the CRL's signature algorithm does not decode")
		             : check_sig_alg(c, inner, outer, l->issuer_pub, "the CRL", err, errsz);
		X509_ALGOR_free(inner);
		if (bad || cer_verify_crl_signature(crl, l->issuer_pub, err, errsz))
			goto out;
	}
	rc = 0;
out:
	AUTHORITY_KEYID_free(aki);
	ASN1_INTEGER_free(num);
	BN_free(have);
	BN_free(want);
	return rc;
}
