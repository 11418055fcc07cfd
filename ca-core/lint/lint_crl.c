/*
 * CRL checks (RFC 5280 section 5): version 2, the issuer's name and key
 * identifier, the update times, the cRLNumber, and every entry (serial,
 * revocation date, reasonCode), against what the profile asks for.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/objects.h>

#include "lint_internal.h"

static const int crl_exts[] = {NID_authority_key_identifier,
                               NID_crl_number,
                               NID_issuing_distribution_point,
                               NID_delta_crl,
                               NID_freshest_crl,
                               0};
static const int entry_exts[] = {NID_crl_reason, NID_invalidity_date, 0};

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

static int check_entry(X509_CRL *crl, STACK_OF(X509_REVOKED) * revs, int i, char *err, size_t errsz)
{
	X509_REVOKED *r = sk_X509_REVOKED_value(revs, i);
	const ASN1_TIME *t = X509_REVOKED_get0_revocationDate(r);
	const STACK_OF(X509_EXTENSION) *exts = X509_REVOKED_get0_extensions(r);
	int y = lint_year_of(t), crit = -1, rc = 0;
	ASN1_ENUMERATED *reason;

	/* Other issuers' serials: any positive size up to 20 octets. */
	if (lint_check_serial(X509_REVOKED_get0_serialNumber(r), 1, err, errsz) != 0)
		return -1;
	if ((y < 2050) != (ASN1_STRING_type(t) == V_ASN1_UTCTIME))
		return lint_finding(err, errsz, "crl_entry_time_encoding",
		                    "a revocation date has the wrong time type for its year");
	if (ASN1_TIME_compare(t, X509_CRL_get0_lastUpdate(crl)) > 0)
		return lint_finding(err, errsz, "crl_entry_date",
		                    "a revocation date is after thisUpdate");
	if (lint_ext_duplicates(exts, "a CRL entry", err, errsz) ||
	    lint_ext_allowed(exts, entry_exts, NULL, "a CRL entry", err, errsz))
		return -1;
	reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
	if (reason && crit)
		rc = lint_finding(err, errsz, "crl_reason_not_critical",
		                  "a reasonCode is marked critical");
	else if (reason && ASN1_ENUMERATED_get(reason) == CRL_REASON_UNSPECIFIED)
		rc = lint_finding(err, errsz, "crl_reason_not_unspecified",
		                  "reasonCode unspecified should be absent (RFC 5280 5.3.1)");
	ASN1_ENUMERATED_free(reason);
	return rc;
}

static int by_serial(const X509_REVOKED *const *a, const X509_REVOKED *const *b)
{
	return ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(*a),
	                        X509_REVOKED_get0_serialNumber(*b));
}

/* No serial twice: sorted, neighbours differ (n log n, for CRLs of millions of entries). */
static int check_unique(STACK_OF(X509_REVOKED) * revs, char *err, size_t errsz)
{
	STACK_OF(X509_REVOKED) *s = revs ? sk_X509_REVOKED_dup(revs) : NULL;
	int rc = 0;

	if (!revs)
		return 0;
	if (!s)
		return lint_finding(err, errsz, "crl_entry_unique", "out of memory");
	(void)sk_X509_REVOKED_set_cmp_func(s, by_serial);
	sk_X509_REVOKED_sort(s);
	for (int i = 1; i < sk_X509_REVOKED_num(s); i++)
		if (ASN1_INTEGER_cmp(
		        X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(s, i - 1)),
		        X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(s, i))) == 0) {
			rc = lint_finding(err, errsz, "crl_entry_unique",
			                  "the CRL lists a serial number twice (RFC 5280 5.1.2.6)");
			break;
		}
	sk_X509_REVOKED_free(s);
	return rc;
}

static int uri_of(GENERAL_NAMES *names, const char **uri)
{
	GENERAL_NAME *g;

	if (sk_GENERAL_NAME_num(names) != 1)
		return 0;
	g = sk_GENERAL_NAME_value(names, 0);
	if (g->type != GEN_URI)
		return 0;
	*uri = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
	return 1;
}

/* Issuing Distribution Point (RFC 5280 5.2.5), Delta CRL Indicator (5.2.4) and Freshest CRL
 * (5.2.6), against what the profile says the CRL is. */
static int check_scope(const struct lint_crl_profile *p, X509_CRL *crl, char *err, size_t errsz)
{
	int crit = -1, rc = 0;
	ISSUING_DIST_POINT *idp =
	    X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, &crit, NULL);
	ASN1_INTEGER *delta = NULL, *num = NULL;
	const char *uri = NULL;
	void *fresh = NULL;

	if (!p->idp_uri && idp) {
		rc = lint_finding(err, errsz, "crl_idp_absent",
		                  "the CRL carries an Issuing Distribution Point %s does not ask "
		                  "for (a full CRL carries none: NSS refuses it as critical)",
		                  lint_source_short(&p->words));
		goto out;
	}
	if (p->idp_uri && !idp) {
		rc = lint_finding(err, errsz, "crl_idp_present",
		                  "the CRL has no Issuing Distribution Point; %s names %s",
		                  lint_source_short(&p->words), p->idp_uri);
		goto out;
	}
	if (idp && crit != 1) {
		rc = lint_finding(err, errsz, "crl_idp_critical",
		                  "the Issuing Distribution Point must be critical (RFC 5280 "
		                  "5.2.5)");
		goto out;
	}
	if (idp && (!idp->distpoint || idp->distpoint->type != 0 ||
	            !uri_of(idp->distpoint->name.fullname, &uri) || strcmp(uri, p->idp_uri) ||
	            idp->onlyattr || idp->onlysomereasons || idp->indirectCRL)) {
		rc = lint_finding(err, errsz, "crl_idp_matches",
		                  "the Issuing Distribution Point is not the one fullName URI %s "
		                  "(the certificates' CRL distribution point) alone",
		                  p->idp_uri);
		goto out;
	}
	delta = X509_CRL_get_ext_d2i(crl, NID_delta_crl, &crit, NULL);
	if (p->delta_base <= 0 && delta) {
		rc = lint_finding(err, errsz, "crl_delta_indicator",
		                  "a full CRL carries a Delta CRL Indicator");
		goto out;
	}
	if (p->delta_base > 0) {
		num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
		if (!delta || crit != 1 || ASN1_INTEGER_get(delta) != (long)p->delta_base || !num ||
		    ASN1_INTEGER_cmp(delta, num) >= 0) {
			rc = lint_finding(err, errsz, "crl_delta_indicator",
			                  "a delta CRL needs a critical Delta CRL Indicator naming "
			                  "its base %lld, lower than its own cRLNumber (RFC 5280 "
			                  "5.2.4)",
			                  p->delta_base);
			goto out;
		}
	}
	fresh = X509_CRL_get_ext_d2i(crl, NID_freshest_crl, &crit, NULL);
	if (fresh && (p->delta_base > 0 || crit))
		rc = lint_finding(err, errsz, "crl_freshest",
		                  "Freshest CRL goes, not critical, into full CRLs only (RFC 5280 "
		                  "5.2.6)");
out:
	ISSUING_DIST_POINT_free(idp);
	ASN1_INTEGER_free(delta);
	ASN1_INTEGER_free(num);
	CRL_DIST_POINTS_free(fresh);
	return rc;
}

static int check_entries(const struct lint_crl_profile *p, X509_CRL *crl, char *err, size_t errsz)
{
	STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
	int n = revs ? sk_X509_REVOKED_num(revs) : 0;

	if (p->n_revoked >= 0 && n != p->n_revoked)
		return lint_finding(err, errsz, "crl_entry_count",
		                    "the CRL lists %d certificates, %s %ld", n,
		                    lint_source_short(&p->words), p->n_revoked);
	for (int i = 0; i < n; i++)
		if (check_entry(crl, revs, i, err, errsz) != 0)
			return -1;
	return check_unique(revs, err, errsz);
}

static int check_number(const struct lint_crl_profile *p, X509_CRL *crl, char *err, size_t errsz)
{
	int crit = -1, rc = -1;
	ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
	BIGNUM *have = NULL, *want = NULL;

	if (!num || crit) {
		lint_finding(err, errsz, "crl_number",
		             "the CRL needs a non-critical cRLNumber (RFC 5280 5.2.3)");
		goto out;
	}
	have = ASN1_INTEGER_to_BN(num, NULL);
	if (!have || BN_is_negative(have) || lint_der_int_len(num) > 20 ||
	    (p->number && (!BN_dec2bn(&want, p->number) || BN_cmp(have, want) != 0))) {
		lint_finding(err, errsz, "crl_number",
		             "the cRLNumber differs from %s or is over 20 octets",
		             lint_source_short(&p->words));
		goto out;
	}
	rc = 0;
out:
	ASN1_INTEGER_free(num);
	BN_free(have);
	BN_free(want);
	return rc;
}

int lint_crl_tbs(const struct lint_crl_profile *p, const struct lint_parties *w, X509_CRL *crl,
                 char *err, size_t errsz)
{
	const STACK_OF(X509_EXTENSION) *exts = X509_CRL_get0_extensions(crl);
	int crit = -1, rc;
	AUTHORITY_KEYID *aki;

	if (!w->issuer)
		return lint_finding(err, errsz, "crl_issuer_given",
		                    "a CRL is checked against its issuer's certificate");
	if (X509_CRL_get_version(crl) != X509_CRL_VERSION_2)
		return lint_finding(err, errsz, "crl_version_2", "the CRL is not version 2");
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(w->issuer)) != 0)
		return lint_finding(err, errsz, "crl_issuer_name",
		                    "the CRL's issuer is not the issuer's subject name");
	if (!X509_CRL_get0_nextUpdate(crl))
		return lint_finding(err, errsz, "crl_next_update", "the CRL has no nextUpdate");
	if (lint_check_time(X509_CRL_get0_lastUpdate(crl), p->this_update, "thisUpdate", &p->words,
	                    err, errsz) ||
	    lint_check_time(X509_CRL_get0_nextUpdate(crl), p->next_update, "nextUpdate", &p->words,
	                    err, errsz))
		return -1;
	if (lint_ext_duplicates(exts, "the CRL", err, errsz) ||
	    lint_ext_allowed(exts, crl_exts, NULL, "the CRL", err, errsz))
		return -1;
	aki = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
	rc = lint_check_aki(aki, crit, X509_get0_subject_key_id(w->issuer), "the CRL", err, errsz);
	AUTHORITY_KEYID_free(aki);
	if (rc != 0 || check_number(p, crl, err, errsz) != 0 ||
	    check_scope(p, crl, err, errsz) != 0 || check_entries(p, crl, err, errsz) != 0)
		return -1;
	return 0;
}

int lint_crl_signed(const struct lint_crl_profile *p, const struct lint_parties *w, X509_CRL *crl,
                    char *err, size_t errsz)
{
	EVP_PKEY *pub;
	const X509_ALGOR *outer;
	X509_ALGOR *inner;
	int bad;

	if (lint_crl_tbs(p, w, crl, err, errsz) != 0)
		return -1;
	pub = w->issuer_pub ? w->issuer_pub : X509_get0_pubkey(w->issuer);
	inner = crl_tbs_sigalg(crl);
	X509_CRL_get0_signature(crl, NULL, &outer);
	bad = !inner ? lint_finding(err, errsz, "sig_alg_decodes",
	                            "the CRL's signature algorithm does not decode")
	             : lint_check_sig_alg(p->hash_nid, p->rsa_pss, &p->words, inner, outer, pub,
	                                  "the CRL", err, errsz);
	X509_ALGOR_free(inner);
	if (bad)
		return -1;
	return lint_verify_crl_signature(crl, pub, err, errsz);
}

int lint_crl_header(const struct lint_crl_profile *p, const struct lint_parties *w, X509_CRL *crl,
                    char *err, size_t errsz)
{
	struct lint_crl_profile h = *p;
	EVP_PKEY *pub;
	const X509_ALGOR *outer;
	X509_ALGOR *inner;
	int bad;

	h.n_revoked = 0; /* the entries were left out */
	if (lint_crl_tbs(&h, w, crl, err, errsz) != 0)
		return -1;
	pub = w->issuer_pub ? w->issuer_pub : X509_get0_pubkey(w->issuer);
	inner = crl_tbs_sigalg(crl);
	X509_CRL_get0_signature(crl, NULL, &outer);
	bad = !inner ? lint_finding(err, errsz, "sig_alg_decodes",
	                            "the CRL's signature algorithm does not decode")
	             : lint_check_sig_alg(p->hash_nid, p->rsa_pss, &p->words, inner, outer, pub,
	                                  "the CRL", err, errsz);
	X509_ALGOR_free(inner);
	return bad ? -1 : 0;
}
