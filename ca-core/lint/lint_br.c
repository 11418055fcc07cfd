/*
 * The BR rules for CA certificates (lint_br.h). Each rule is a function that reads the
 * certificate as OpenSSL decodes it and says what is missing or wrong; the table names the
 * BR section and the requirement level it enforces. NOT RECOMMENDED and SHOULD are refused like
 * MUST: a public CA would need a documented reason for either, and so does a ceremony here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "lint_br.h"

#define ROOT (1u << LINT_BR_ROOT)
#define SUB (1u << LINT_BR_SUBORDINATE)

/* A rule: 1 when x satisfies it, else 0 with why. */
typedef int (*rule_fn)(X509 *x, char *why, size_t n);

static int say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return 0;
}

static int has_ext(X509 *x, int nid)
{
	return X509_get_ext_by_NID(x, nid, -1) >= 0;
}

/* The one value of attribute nid in x's subject: 1 found once, 0 absent, -1 more than once. */
static int subject_attr(X509 *x, int nid, const ASN1_STRING **value)
{
	const X509_NAME *name = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(name, nid, -1);

	if (i < 0)
		return 0;
	*value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	return X509_NAME_get_index_by_NID(name, nid, i) >= 0 ? -1 : 1;
}

static int subject_country(X509 *x, char *why, size_t n)
{
	const ASN1_STRING *v = NULL;
	const unsigned char *d;

	switch (subject_attr(x, NID_countryName, &v)) {
	case 0:
		return say(why, n, "the subject has no countryName (C)");
	case -1:
		return say(why, n, "the subject has more than one countryName (C)");
	}
	d = ASN1_STRING_get0_data(v);
	if (ASN1_STRING_length(v) != 2 || d[0] < 'A' || d[0] > 'Z' || d[1] < 'A' || d[1] > 'Z' ||
	    ASN1_STRING_type(v) != V_ASN1_PRINTABLESTRING)
		return say(why, n,
		           "the subject's countryName is not a two-letter ISO 3166-1 code in "
		           "upper case, encoded as PrintableString");
	return 1;
}

static int subject_one(X509 *x, int nid, const char *name, char *why, size_t n)
{
	const ASN1_STRING *v = NULL;

	switch (subject_attr(x, nid, &v)) {
	case 0:
		return say(why, n, "the subject has no %s", name);
	case -1:
		return say(why, n, "the subject has more than one %s", name);
	}
	if (ASN1_STRING_length(v) == 0)
		return say(why, n, "the subject's %s is empty", name);
	return 1;
}

static int subject_organization(X509 *x, char *why, size_t n)
{
	return subject_one(x, NID_organizationName, "organizationName (O)", why, n);
}

static int subject_common_name(X509 *x, char *why, size_t n)
{
	return subject_one(x, NID_commonName, "commonName (CN)", why, n);
}

static int subject_no_ou(X509 *x, char *why, size_t n)
{
	if (X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_organizationalUnitName, -1) >=
	    0)
		return say(why, n, "the subject has an organizationalUnitName (OU)");
	return 1;
}

static int basic_constraints(X509 *x, char *why, size_t n)
{
	int crit = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	int ok = bc && bc->ca && crit == 1;

	BASIC_CONSTRAINTS_free(bc);
	return ok ? 1 : say(why, n, "basicConstraints is not present, critical, with cA TRUE");
}

static int key_usage(X509 *x, char *why, size_t n)
{
	int crit = -1, cert_sign, crl_sign, other = 0;
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);

	/* From the extension itself: OpenSSL's cached flags may predate a to-be-signed
	 * certificate's last extension. */
	if (!ku || crit != 1) {
		ASN1_BIT_STRING_free(ku);
		return say(why, n, "keyUsage is not present and critical");
	}
	cert_sign = ASN1_BIT_STRING_get_bit(ku, 5);
	crl_sign = ASN1_BIT_STRING_get_bit(ku, 6);
	for (int b = 1; b < 9; b++)
		other |= b != 5 && b != 6 && ASN1_BIT_STRING_get_bit(ku, b);
	ASN1_BIT_STRING_free(ku);
	if (!cert_sign || !crl_sign)
		return say(why, n, "keyUsage lacks %s", cert_sign ? "cRLSign" : "keyCertSign");
	if (other)
		return say(why, n,
		           "keyUsage has a bit besides keyCertSign, cRLSign and digitalSignature");
	return 1;
}

static int root_path_length(X509 *x, char *why, size_t n)
{
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
	int has = bc && bc->pathlen;

	BASIC_CONSTRAINTS_free(bc);
	return has ? say(why, n, "the root's basicConstraints has a pathLenConstraint") : 1;
}

static int ski(X509 *x, char *why, size_t n)
{
	return has_ext(x, NID_subject_key_identifier)
	           ? 1
	           : say(why, n, "there is no subjectKeyIdentifier");
}

static int root_validity(X509 *x, char *why, size_t n)
{
	int days = 0, secs = 0;

	if (!ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)))
		return say(why, n, "the validity does not decode");
	/* notAfter - notBefore + 1 second, in whole days (RFC 5280's inclusive validity). */
	if (secs + 1 >= 86400) {
		days++;
		secs = secs + 1 - 86400;
	}
	if (days < 2922 || (days > 9132 || (days == 9132 && secs > 0)))
		return say(why, n, "the validity is %d days; a root's is 2922..9132 days", days);
	return 1;
}

static int root_no_eku(X509 *x, char *why, size_t n)
{
	return has_ext(x, NID_ext_key_usage) ? say(why, n, "the root has extendedKeyUsage") : 1;
}

static int root_no_aia(X509 *x, char *why, size_t n)
{
	return has_ext(x, NID_info_access)
	           ? say(why, n,
	                 "the root has authorityInformationAccess: there is no issuer "
	                 "to point to")
	           : 1;
}

static int root_no_crl_dp(X509 *x, char *why, size_t n)
{
	return has_ext(x, NID_crl_distribution_points)
	           ? say(why, n, "the root has crlDistributionPoints: nobody revokes a root")
	           : 1;
}

static int root_no_policies(X509 *x, char *why, size_t n)
{
	return has_ext(x, NID_certificate_policies)
	           ? say(why, n, "the root has certificatePolicies")
	           : 1;
}

static int subca_policies(X509 *x, char *why, size_t n)
{
	int crit = -1;
	CERTIFICATEPOLICIES *cp = X509_get_ext_d2i(x, NID_certificate_policies, &crit, NULL);
	int k = cp ? sk_POLICYINFO_num(cp) : 0, any = 0;

	for (int i = 0; i < k; i++)
		any |= OBJ_obj2nid(sk_POLICYINFO_value(cp, i)->policyid) == NID_any_policy;
	CERTIFICATEPOLICIES_free(cp);
	if (k == 0)
		return say(why, n, "there is no certificatePolicies with a policy");
	if (crit == 1)
		return say(why, n, "certificatePolicies is critical");
	if (any && k > 1)
		return say(why, n, "certificatePolicies has anyPolicy besides other policies");
	return 1;
}

/* 1 when gn is a URI with the scheme http:// */
static int http_uri(const GENERAL_NAME *gn)
{
	const unsigned char *d;

	if (gn->type != GEN_URI)
		return 0;
	d = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
	return ASN1_STRING_length(gn->d.uniformResourceIdentifier) > 7 &&
	       !strncmp((const char *)d, "http://", 7);
}

static int subca_crl_dp(X509 *x, char *why, size_t n)
{
	CRL_DIST_POINTS *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	int found = 0;

	for (int i = 0; dps && i < sk_DIST_POINT_num(dps); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
		if (!dp->distpoint || dp->distpoint->type != 0)
			continue;
		for (int j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); j++)
			found |= http_uri(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j));
	}
	CRL_DIST_POINTS_free(dps);
	return found ? 1
	             : say(why, n,
	                   "there is no crlDistributionPoints with an http:// URL of "
	                   "the issuer's CRL");
}

static int subca_aia(X509 *x, char *why, size_t n)
{
	AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
	int ca_issuers = 0, ocsp = 0;

	for (int i = 0; aia && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
		ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
		int m = OBJ_obj2nid(ad->method);
		ca_issuers |= m == NID_ad_ca_issuers && http_uri(ad->location);
		ocsp |= m == NID_ad_OCSP && http_uri(ad->location);
	}
	AUTHORITY_INFO_ACCESS_free(aia);
	if (!ca_issuers && !ocsp)
		return say(why, n,
		           "there is no authorityInformationAccess with an http:// caIssuers or "
		           "OCSP URL");
	return 1;
}

/* Every URL in AIA and crlDistributionPoints: http, neither https nor ldap (BR 7.1.2.10.3,
 * 7.1.2.11.2). */
static int http_urls(X509 *x, char *why, size_t n)
{
	AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
	CRL_DIST_POINTS *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	int ok = 1;

	for (int i = 0; aia && i < sk_ACCESS_DESCRIPTION_num(aia); i++)
		ok &= http_uri(sk_ACCESS_DESCRIPTION_value(aia, i)->location);
	for (int i = 0; dps && i < sk_DIST_POINT_num(dps); i++) {
		DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
		if (!dp->distpoint || dp->distpoint->type != 0)
			continue;
		for (int j = 0; j < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); j++)
			ok &= http_uri(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, j));
	}
	AUTHORITY_INFO_ACCESS_free(aia);
	CRL_DIST_POINTS_free(dps);
	return ok ? 1
	          : say(why, n,
	                "an authorityInformationAccess or crlDistributionPoints location "
	                "is not an http:// URL");
}

static int subca_eku(X509 *x, char *why, size_t n)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	int server = 0, other = 0, any = 0, ocsp = 0, k = eku ? sk_ASN1_OBJECT_num(eku) : 0;

	for (int i = 0; i < k; i++) {
		int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
		server |= nid == NID_server_auth;
		any |= nid == NID_anyExtendedKeyUsage;
		ocsp |= nid == NID_OCSP_sign;
		other |= nid == NID_email_protect || nid == NID_code_sign || nid == NID_time_stamp;
	}
	EXTENDED_KEY_USAGE_free(eku);
	if (!k)
		return say(why, n, "there is no extendedKeyUsage saying what the CA issues for");
	if (any)
		return say(why, n, "extendedKeyUsage has anyExtendedKeyUsage");
	if (ocsp)
		return say(why, n, "extendedKeyUsage has OCSPSigning");
	if (server && other)
		return say(why, n,
		           "extendedKeyUsage mixes serverAuth with emailProtection, codeSigning "
		           "or timeStamping");
	return 1;
}

const struct lint_br_rule lint_br_rules[] = {
    {"br_ca_subject_country", "BR 7.1.2.10.2", "MUST",
     "countryName in the subject, a two-letter code in a PrintableString"},
    {"br_ca_subject_organization", "BR 7.1.2.10.2", "MUST", "organizationName in the subject"},
    {"br_ca_subject_common_name", "BR 7.1.2.10.2", "MUST", "commonName in the subject"},
    {"br_ca_subject_no_ou", "BR 7.1.2.10.2", "MUST NOT",
     "no organizationalUnitName in the subject"},
    {"br_ca_basic_constraints", "BR 7.1.2.10.4", "MUST", "basicConstraints critical, cA TRUE"},
    {"br_ca_key_usage", "BR 7.1.2.10.7", "MUST",
     "keyUsage critical with keyCertSign and cRLSign, and besides them digitalSignature only"},
    {"br_ca_subject_key_identifier", "BR 7.1.2.1.2, 7.1.2.10", "MUST", "a subjectKeyIdentifier"},
    {"br_ca_http_urls", "BR 7.1.2.10.3, 7.1.2.11.2", "MUST",
     "AIA and CRL distribution point locations are http:// URLs"},
    {"br_root_validity", "BR 7.1.2.1.1", "MUST", "a root's validity is 2922 to 9132 days"},
    {"br_root_no_eku", "BR 7.1.2.1.2", "MUST NOT", "no extendedKeyUsage in a root"},
    {"br_root_no_path_length", "BR 7.1.2.1.4", "NOT RECOMMENDED",
     "no pathLenConstraint in a root's basicConstraints"},
    {"br_root_no_aia", "BR 7.1.2.1.2", "NOT RECOMMENDED",
     "no authorityInformationAccess in a root (it is none of the root's extensions)"},
    {"br_root_no_crl_dp", "BR 7.1.2.1.2", "NOT RECOMMENDED",
     "no crlDistributionPoints in a root (it is none of the root's extensions)"},
    {"br_root_no_policies", "BR 7.1.2.1.2", "NOT RECOMMENDED", "no certificatePolicies in a root"},
    {"br_subca_policies", "BR 7.1.2.10.5", "MUST",
     "certificatePolicies, not critical, with at least one policy (anyPolicy only alone)"},
    {"br_subca_crl_dp", "BR 7.1.2.11.2 (7.1.2.2-7.1.2.6)", "MUST",
     "crlDistributionPoints with an http:// URL"},
    {"br_subca_aia", "BR 7.1.2.10.3 (7.1.2.2-7.1.2.6)", "SHOULD",
     "authorityInformationAccess with an http:// caIssuers or OCSP URL"},
    {"br_subca_eku", "BR 7.1.2.10.6 (7.1.2.3, 7.1.2.6)", "MUST",
     "extendedKeyUsage, without anyExtendedKeyUsage or OCSPSigning, and serverAuth not mixed "
     "with emailProtection, codeSigning or timeStamping"},
};

const size_t lint_br_n_rules = sizeof(lint_br_rules) / sizeof(lint_br_rules[0]);

/* Which kinds each rule of lint_br_rules applies to, and its check, in the same order. */
static const struct {
	unsigned kinds;
	rule_fn fn;
} checks[] = {
    {ROOT | SUB, subject_country},
    {ROOT | SUB, subject_organization},
    {ROOT | SUB, subject_common_name},
    {ROOT | SUB, subject_no_ou},
    {ROOT | SUB, basic_constraints},
    {ROOT | SUB, key_usage},
    {ROOT | SUB, ski},
    {ROOT | SUB, http_urls},
    {ROOT, root_validity},
    {ROOT, root_no_eku},
    {ROOT, root_path_length},
    {ROOT, root_no_aia},
    {ROOT, root_no_crl_dp},
    {ROOT, root_no_policies},
    {SUB, subca_policies},
    {SUB, subca_crl_dp},
    {SUB, subca_aia},
    {SUB, subca_eku},
};

_Static_assert(sizeof(checks) / sizeof(checks[0]) ==
                   sizeof(lint_br_rules) / sizeof(lint_br_rules[0]),
               "every BR rule has its check");

const struct lint_br_rule *lint_br_rule_find(const char *name)
{
	for (size_t i = 0; i < lint_br_n_rules; i++)
		if (!strcmp(lint_br_rules[i].name, name))
			return &lint_br_rules[i];
	return NULL;
}

int lint_br_ca(X509 *x, enum lint_br_kind kind, lint_br_except_fn except, void *arg, char *err,
               size_t errsz)
{
	char why[300];

	if (kind != LINT_BR_ROOT && kind != LINT_BR_SUBORDINATE) {
		snprintf(err, errsz, "lint_br_ca: unknown kind of CA certificate");
		return -1;
	}
	for (size_t i = 0; i < lint_br_n_rules; i++) {
		const struct lint_br_rule *r = &lint_br_rules[i];
		if (!(checks[i].kinds & (1u << kind)) || checks[i].fn(x, why, sizeof(why)))
			continue;
		if (except && except(arg, r, why))
			continue;
		snprintf(err, errsz, "%s (%s, %s): %s", r->name, r->section, r->level, why);
		return -1;
	}
	return 0;
}
