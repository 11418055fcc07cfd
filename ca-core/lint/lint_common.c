/* What certificates and CRLs share: findings, times, extensions, key ids, serials,
 * signature algorithms; and the signature and path checks of lint.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "lint_internal.h"

int lint_fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -1;
}

int lint_finding(char *err, size_t errsz, const char *rule, const char *fmt, ...)
{
	va_list ap;
	int k;

	k = snprintf(err, errsz, "%s: ", rule);
	if (k < 0 || (size_t)k >= errsz)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err + k, errsz - (size_t)k, fmt, ap);
	va_end(ap);
	return -1;
}

const char *lint_rule(const char *finding, char *buf, size_t n)
{
	size_t k = 0;

	while (finding && ((finding[k] >= 'a' && finding[k] <= 'z') ||
	                   (finding[k] >= '0' && finding[k] <= '9') || finding[k] == '_'))
		k++;
	if (!finding || k == 0 || finding[k] != ':' || finding[k + 1] != ' ' || k >= n)
		snprintf(buf, n, "lint");
	else
		snprintf(buf, n, "%.*s", (int)k, finding);
	return buf;
}

const char *lint_source(const struct lint_words *w)
{
	return w->source ? w->source : "the profile";
}

const char *lint_source_short(const struct lint_words *w)
{
	return w->source_short ? w->source_short : lint_source(w);
}

const char *lint_asker(const struct lint_words *w)
{
	return w->asker ? w->asker : "the caller";
}

int lint_year_of(const ASN1_TIME *t)
{
	struct tm tm;

	return ASN1_TIME_to_tm(t, &tm) ? tm.tm_year + 1900 : -1;
}

/* UTCTime YYMMDDHHMMSSZ through 2049, GeneralizedTime YYYYMMDDHHMMSSZ from 2050. */
int lint_check_time(const ASN1_TIME *t, time_t want, const char *what,
                    const struct lint_words *words, char *err, size_t errsz)
{
	int y = lint_year_of(t);
	int type = ASN1_STRING_type(t), len = ASN1_STRING_length(t);
	const unsigned char *d = ASN1_STRING_get0_data(t);

	if (y < 0 || !ASN1_TIME_check(t))
		return lint_finding(err, errsz, "time_valid", "%s is not a valid time", what);
	if (y < 2050 && (type != V_ASN1_UTCTIME || len != 13))
		return lint_finding(err, errsz, "time_encoding",
		                    "%s (%d) must be a UTCTime YYMMDDHHMMSSZ (RFC 5280 4.1.2.5)",
		                    what, y);
	if (y >= 2050 && (type != V_ASN1_GENERALIZEDTIME || len != 15))
		return lint_finding(err, errsz, "time_encoding",
		                    "%s (%d) must be a GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280 "
		                    "4.1.2.5)",
		                    what, y);
	if (d[len - 1] != 'Z')
		return lint_finding(err, errsz, "time_utc", "%s is not in UTC", what);
	if (want && ASN1_TIME_cmp_time_t(t, want) != 0)
		return lint_finding(err, errsz, "time_matches_request", "%s differs from %s", what,
		                    lint_source(words));
	return 0;
}

int lint_ext_duplicates(const STACK_OF(X509_EXTENSION) * exts, const char *what, char *err,
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
				return lint_finding(err, errsz, "ext_no_duplicates",
				                    "%s has extension %s twice (RFC 5280 4.2)",
				                    what, name);
			}
		}
	return 0;
}

static int nid_in(const int *nids, int nid)
{
	for (int k = 0; nids && nids[k]; k++)
		if (nids[k] == nid)
			return 1;
	return 0;
}

int lint_ext_allowed(const STACK_OF(X509_EXTENSION) * exts, const int *nids, const int *extra,
                     const char *what, char *err, size_t errsz)
{
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		const ASN1_OBJECT *o = X509_EXTENSION_get_object(sk_X509_EXTENSION_value(exts, i));
		int nid = OBJ_obj2nid(o);
		char name[128];

		if (nid != NID_undef && (nid_in(nids, nid) || nid_in(extra, nid)))
			continue;
		OBJ_obj2txt(name, sizeof(name), o, 0);
		return lint_finding(err, errsz, "ext_allowed", "%s has an unexpected extension %s",
		                    what, name);
	}
	return 0;
}

int lint_octets_equal(const ASN1_OCTET_STRING *a, const ASN1_OCTET_STRING *b)
{
	return a && b && ASN1_STRING_length(a) == ASN1_STRING_length(b) &&
	       memcmp(ASN1_STRING_get0_data(a), ASN1_STRING_get0_data(b),
	              (size_t)ASN1_STRING_length(a)) == 0;
}

int lint_check_aki(AUTHORITY_KEYID *aki, int crit, const ASN1_OCTET_STRING *issuer_ski,
                   const char *what, char *err, size_t errsz)
{
	if (!aki)
		return lint_finding(err, errsz, "aki_present",
		                    "%s has no authorityKeyIdentifier (RFC 5280 4.2.1.1)", what);
	if (crit)
		return lint_finding(err, errsz, "aki_not_critical",
		                    "%s: authorityKeyIdentifier must not be critical", what);
	if (!aki->keyid || aki->issuer || aki->serial)
		return lint_finding(err, errsz, "aki_keyid_only",
		                    "%s: authorityKeyIdentifier must hold the keyIdentifier only",
		                    what);
	if (!lint_octets_equal(aki->keyid, issuer_ski))
		return lint_finding(
		    err, errsz, "aki_matches_issuer_ski",
		    "%s: authorityKeyIdentifier is not the issuer's subjectKeyIdentifier", what);
	return 0;
}

/* i2c_ASN1_INTEGER is not public: the DER less its tag and length octets. */
int lint_der_int_len(const ASN1_INTEGER *a)
{
	int n = i2d_ASN1_INTEGER(a, NULL);

	return n < 2 ? 0 : n < 130 ? n - 2 : n; /* short form: tag and one length octet */
}

int lint_check_serial(const ASN1_INTEGER *s, int min_bits, char *err, size_t errsz)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);
	int len = lint_der_int_len(s), bits = bn ? BN_num_bits(bn) : 0;
	int neg = bn && BN_is_negative(bn);

	BN_free(bn);
	if (neg || bits == 0)
		return lint_finding(err, errsz, "serial_positive",
		                    "the serial number must be positive (RFC 5280 4.1.2.2)");
	if (len > 20)
		return lint_finding(err, errsz, "serial_max_20_octets",
		                    "the serial number is %d octets; at most 20 (RFC 5280 4.1.2.2)",
		                    len);
	if (bits < min_bits)
		return lint_finding(
		    err, errsz, "serial_entropy",
		    "the serial number has %d bits; it must carry at least 64 random "
		    "bits (CA/B Forum BR 7.1)",
		    bits);
	return 0;
}

int lint_sig_nid(EVP_PKEY *key, int hash_nid, int rsa_pss)
{
	int sig = NID_undef, pkey;

	if (EVP_PKEY_is_a(key, "RSA"))
		return rsa_pss                                                     ? NID_rsassaPss
		       : OBJ_find_sigid_by_algs(&sig, hash_nid, NID_rsaEncryption) ? sig
		                                                                   : NID_undef;
	pkey = EVP_PKEY_is_a(key, "EC") ? NID_X9_62_id_ecPublicKey : NID_undef;
	return pkey != NID_undef && OBJ_find_sigid_by_algs(&sig, hash_nid, pkey) ? sig : NID_undef;
}

int lint_check_sig_alg(int hash_nid, int rsa_pss, const struct lint_words *words,
                       const X509_ALGOR *inner, const X509_ALGOR *outer, EVP_PKEY *issuer_pub,
                       const char *what, char *err, size_t errsz)
{
	const ASN1_OBJECT *oid;
	int want;

	if (X509_ALGOR_cmp(inner, outer) != 0)
		return lint_finding(err, errsz, "sig_alg_inner_outer",
		                    "%s: the signed and the outer signature algorithms differ",
		                    what);
	if (!hash_nid)
		return 0;
	want = lint_sig_nid(issuer_pub, hash_nid, rsa_pss);
	X509_ALGOR_get0(&oid, NULL, NULL, outer);
	if (OBJ_obj2nid(oid) != want)
		return lint_finding(
		    err, errsz, "sig_alg_for_key", "%s is signed with %s, %s asked for %s", what,
		    OBJ_nid2ln(OBJ_obj2nid(oid)), lint_asker(words),
		    want == NID_undef ? "an algorithm this key cannot use" : OBJ_nid2ln(want));
	return 0;
}

/* hsmca's issuers sign through keyd, so a signature that does not verify with the issuer
 * certificate's key most likely comes from the wrong token or key behind keyd. */
int lint_sig_not_verified(char *err, size_t errsz)
{
	return lint_finding(err, errsz, "sig_verifies",
	                    "the signature keyd made does not verify with the public key of the "
	                    "issuer certificate: keyd signed with a different key than the "
	                    "certificate names (is keyd serving the wrong token or key?)");
}

int lint_verify_cert_signature(X509 *x, EVP_PKEY *pub, char *err, size_t errsz)
{
	if (pub && X509_verify(x, pub) == 1)
		return 0;
	ERR_clear_error();
	return lint_sig_not_verified(err, errsz);
}

int lint_verify_crl_signature(X509_CRL *crl, EVP_PKEY *pub, char *err, size_t errsz)
{
	if (pub && X509_CRL_verify(crl, pub) == 1)
		return 0;
	ERR_clear_error();
	return lint_finding(err, errsz, "sig_verifies",
	                    "the CRL signature keyd made does not verify with the public key of "
	                    "the issuer certificate: keyd signed with a different key than the "
	                    "certificate names (is keyd serving the wrong token or key?)");
}

int lint_path(X509 *x, X509 *anchor, time_t t, char *err, size_t errsz)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = -1;

	if (!st || !ctx || !X509_STORE_add_cert(st, anchor) ||
	    !X509_STORE_CTX_init(ctx, st, x, NULL)) {
		unsigned long e = ERR_get_error();
		lint_finding(err, errsz, "path_setup", "cannot set up path validation%s%s%s",
		             e ? " (OpenSSL: " : "", e ? ERR_reason_error_string(e) : "",
		             e ? ")" : "");
		ERR_clear_error();
		goto out;
	}
	/* The anchor is trusted even when it is not self-signed. */
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT |
	                                  X509_V_FLAG_CHECK_SS_SIGNATURE);
	X509_STORE_CTX_set_time(ctx, 0, t);
	if (X509_verify_cert(ctx) != 1) {
		char when[32];
		struct tm tm;
		if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
			snprintf(when, sizeof(when), "(time %lld)", (long long)t);
		lint_finding(err, errsz, "path_valid",
		             "path validation of the new certificate at %s failed: %s", when,
		             X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		ERR_clear_error();
		goto out;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return rc;
}
