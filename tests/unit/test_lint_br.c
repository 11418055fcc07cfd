/* The Baseline Requirements rules for CA certificates (ca-core/lint/lint_br.c): a root and a
 * subordinate CA made as a public CA would make them pass every rule; for each rule, one
 * certificate that misses exactly what it asks fails with that rule's name; an exception the
 * caller grants lets the certificate pass and is told which rule and why. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "lint_br.h"

static EVP_PKEY *key;

/* What a certificate is made of; NULL/0 fields take the good value for its kind, "" leaves an
 * extension out. */
struct shape {
	enum lint_br_kind kind;
	const char *subject; /* "C=DE/O=Example/CN=Example CA" */
	int utf8_country;    /* the C as UTF8String */
	long days;
	const char *bc, *ku, *eku, *aia, *cdp, *policies;
	int no_ski;
};

static void add(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e;

	if (!value || !*value)
		return;
	e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	ck_assert_msg(e != NULL, "extension %s = %s", OBJ_nid2sn(nid), value);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/* certificatePolicies from "[critical,]OID,OID..." (the OpenSSL config form needs a config
 * database for it). */
static void add_policies(X509 *x, const char *value)
{
	CERTIFICATEPOLICIES *cp;
	char *copy, *save = NULL;
	int crit = 0;

	if (!value || !*value)
		return;
	cp = sk_POLICYINFO_new_null();
	copy = strdup(value);
	for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		POLICYINFO *pi;
		if (!strcmp(f, "critical")) {
			crit = 1;
			continue;
		}
		pi = POLICYINFO_new();
		pi->policyid = OBJ_txt2obj(f, 1);
		ck_assert_ptr_nonnull(pi->policyid);
		sk_POLICYINFO_push(cp, pi);
	}
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_certificate_policies, cp, crit, 0), 1);
	CERTIFICATEPOLICIES_free(cp);
	free(copy);
}

static const char *pick(const char *v, const char *good)
{
	return v ? v : good;
}

static X509 *make(const struct shape *s)
{
	int root = s->kind == LINT_BR_ROOT;
	char *subject = strdup(pick(s->subject, "C=DE/O=Example Trust/CN=Example CA")),
	     *save = NULL;
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;

	for (char *f = strtok_r(subject, "/", &save); f; f = strtok_r(NULL, "/", &save)) {
		char *eq = strchr(f, '=');
		*eq = '\0';
		if (!strcmp(f, "C") && s->utf8_country)
			X509_NAME_add_entry_by_NID(n, NID_countryName, V_ASN1_UTF8STRING,
			                           (unsigned char *)eq + 1, -1, -1, 0);
		else
			X509_NAME_add_entry_by_txt(n, f, MBSTRING_ASC, (unsigned char *)eq + 1, -1,
			                           -1, 0);
	}
	free(subject);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234567);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_time_adj_ex(X509_getm_notAfter(x),
	                 (int)(s->days ? s->days
	                       : root  ? 9000
	                               : 3650),
	                 -1, NULL);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	add(x, &ctx, NID_basic_constraints,
	    pick(s->bc, root ? "critical,CA:TRUE" : "critical,CA:TRUE,pathlen:0"));
	add(x, &ctx, NID_key_usage, pick(s->ku, "critical,keyCertSign,cRLSign,digitalSignature"));
	if (!s->no_ski)
		add(x, &ctx, NID_subject_key_identifier, "hash");
	if (!s->no_ski)
		add(x, &ctx, NID_authority_key_identifier, "keyid:always");
	add(x, &ctx, NID_ext_key_usage, pick(s->eku, root ? "" : "serverAuth,clientAuth"));
	add(x, &ctx, NID_info_access,
	    pick(s->aia, root ? ""
	                      : "caIssuers;URI:http://pki.example/ca/root.der,"
	                        "OCSP;URI:http://ocsp.example/"));
	add(x, &ctx, NID_crl_distribution_points,
	    pick(s->cdp, root ? "" : "URI:http://crl.example/root.crl"));
	add_policies(x, pick(s->policies, root ? "" : "2.23.140.1.2.1"));
	ck_assert(X509_sign(x, key, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static int check(const struct shape *s, char *err, size_t n)
{
	X509 *x = make(s);
	int rc;

	err[0] = '\0';
	rc = lint_br_ca(x, s->kind, NULL, NULL, err, n);
	X509_free(x);
	return rc;
}

START_TEST(good_root_and_subordinate_pass)
{
	char err[512];

	ck_assert_msg(check(&(struct shape){.kind = LINT_BR_ROOT}, err, sizeof(err)) == 0, "%s",
	              err);
	ck_assert_msg(check(&(struct shape){.kind = LINT_BR_SUBORDINATE}, err, sizeof(err)) == 0,
	              "%s", err);
	/* a non-TLS subordinate: client and e-mail, no serverAuth */
	ck_assert_msg(
	    check(&(struct shape){.kind = LINT_BR_SUBORDINATE, .eku = "clientAuth,emailProtection"},
	          err, sizeof(err)) == 0,
	    "%s", err);
	/* the CA's own policy and anyPolicy alone are policies too */
	ck_assert_msg(check(&(struct shape){.kind = LINT_BR_SUBORDINATE, .policies = "2.5.29.32.0"},
	                    err, sizeof(err)) == 0,
	              "%s", err);
}
END_TEST

/* One certificate per rule, missing just what the rule asks. */
static const struct {
	const char *rule;
	struct shape s;
} failing[] = {
    {"br_ca_subject_country", {.kind = LINT_BR_ROOT, .subject = "O=Example/CN=Example Root"}},
    {"br_ca_subject_country",
     {.kind = LINT_BR_SUBORDINATE, .subject = "C=de/O=Example/CN=Example CA"}},
    {"br_ca_subject_country", {.kind = LINT_BR_SUBORDINATE, .utf8_country = 1}},
    {"br_ca_subject_organization", {.kind = LINT_BR_SUBORDINATE, .subject = "C=DE/CN=Ex CA"}},
    {"br_ca_subject_common_name", {.kind = LINT_BR_ROOT, .subject = "C=DE/O=Example"}},
    {"br_ca_subject_no_ou",
     {.kind = LINT_BR_SUBORDINATE, .subject = "C=DE/O=Example/OU=PKI/CN=Example CA"}},
    {"br_ca_basic_constraints", {.kind = LINT_BR_ROOT, .bc = "CA:TRUE"}},
    {"br_ca_key_usage", {.kind = LINT_BR_SUBORDINATE, .ku = "critical,keyCertSign"}},
    {"br_ca_key_usage",
     {.kind = LINT_BR_ROOT, .ku = "critical,keyCertSign,cRLSign,keyEncipherment"}},
    {"br_ca_subject_key_identifier", {.kind = LINT_BR_SUBORDINATE, .no_ski = 1}},
    {"br_ca_http_urls",
     {.kind = LINT_BR_SUBORDINATE,
      .aia = "caIssuers;URI:https://pki.example/ca.der,OCSP;URI:http://ocsp.example/"}},
    {"br_root_validity", {.kind = LINT_BR_ROOT, .days = 2000}},
    {"br_root_validity", {.kind = LINT_BR_ROOT, .days = 9200}},
    {"br_root_no_eku", {.kind = LINT_BR_ROOT, .eku = "serverAuth"}},
    {"br_root_no_path_length", {.kind = LINT_BR_ROOT, .bc = "critical,CA:TRUE,pathlen:1"}},
    {"br_root_no_aia", {.kind = LINT_BR_ROOT, .aia = "OCSP;URI:http://ocsp.example/"}},
    {"br_root_no_crl_dp", {.kind = LINT_BR_ROOT, .cdp = "URI:http://crl.example/r.crl"}},
    {"br_root_no_policies", {.kind = LINT_BR_ROOT, .policies = "1.2.3.4"}},
    {"br_subca_policies", {.kind = LINT_BR_SUBORDINATE, .policies = ""}},
    {"br_subca_policies", {.kind = LINT_BR_SUBORDINATE, .policies = "critical,2.23.140.1.2.1"}},
    {"br_subca_policies", {.kind = LINT_BR_SUBORDINATE, .policies = "2.5.29.32.0,2.23.140.1.2.1"}},
    {"br_subca_crl_dp", {.kind = LINT_BR_SUBORDINATE, .cdp = ""}},
    {"br_subca_aia", {.kind = LINT_BR_SUBORDINATE, .aia = ""}},
    {"br_subca_eku", {.kind = LINT_BR_SUBORDINATE, .eku = ""}},
    {"br_subca_eku", {.kind = LINT_BR_SUBORDINATE, .eku = "anyExtendedKeyUsage"}},
    {"br_subca_eku", {.kind = LINT_BR_SUBORDINATE, .eku = "serverAuth,codeSigning"}},
    {"br_subca_eku", {.kind = LINT_BR_SUBORDINATE, .eku = "clientAuth,OCSPSigning"}},
};

START_TEST(each_rule_refuses_its_certificate_by_name)
{
	char err[512], want[80];
	const struct lint_br_rule *r;

	for (size_t i = 0; i < sizeof(failing) / sizeof(failing[0]); i++) {
		ck_assert_int_eq(check(&failing[i].s, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s (BR ", failing[i].rule);
		ck_assert_msg(!strncmp(err, want, strlen(want)), "%zu: want %s, got %s", i,
		              failing[i].rule, err);
		r = lint_br_rule_find(failing[i].rule);
		ck_assert_ptr_nonnull(r);
		ck_assert_msg(strstr(err, r->level), "%s", err);
	}
	/* every rule has its failing certificate here */
	for (size_t i = 0; i < lint_br_n_rules; i++) {
		int found = 0;
		for (size_t j = 0; j < sizeof(failing) / sizeof(failing[0]); j++)
			found |= !strcmp(failing[j].rule, lint_br_rules[i].name);
		ck_assert_msg(found, "no failing certificate for %s", lint_br_rules[i].name);
	}
	ck_assert_ptr_null(lint_br_rule_find("br_nosuch"));
}
END_TEST

struct excepted {
	const char *rule;
	char seen[80], finding[300];
	int calls;
};

static int except(void *arg, const struct lint_br_rule *rule, const char *finding)
{
	struct excepted *e = arg;

	e->calls++;
	snprintf(e->seen, sizeof(e->seen), "%s", rule->name);
	snprintf(e->finding, sizeof(e->finding), "%s", finding);
	return !strcmp(rule->name, e->rule);
}

START_TEST(an_exception_lets_only_its_rule_pass)
{
	struct shape no_eku = {.kind = LINT_BR_SUBORDINATE, .eku = ""};
	struct shape two = {.kind = LINT_BR_SUBORDINATE, .eku = "", .aia = ""};
	struct excepted e = {.rule = "br_subca_eku"};
	char err[512];
	X509 *x = make(&no_eku);

	ck_assert_msg(lint_br_ca(x, LINT_BR_SUBORDINATE, except, &e, err, sizeof(err)) == 0, "%s",
	              err);
	ck_assert_int_eq(e.calls, 1);
	ck_assert_str_eq(e.seen, "br_subca_eku");
	ck_assert_ptr_nonnull(strstr(e.finding, "extendedKeyUsage"));
	X509_free(x);
	/* another failing rule is still refused */
	x = make(&two);
	ck_assert_int_eq(lint_br_ca(x, LINT_BR_SUBORDINATE, except, &e, err, sizeof(err)), -1);
	ck_assert_msg(!strncmp(err, "br_subca_aia", 12), "%s", err);
	X509_free(x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lint-br");
	TCase *tc = tcase_create("br");
	SRunner *sr;
	int failed;

	key = EVP_EC_gen("P-256");
	tcase_add_test(tc, good_root_and_subordinate_pass);
	tcase_add_test(tc, each_rule_refuses_its_certificate_by_name);
	tcase_add_test(tc, an_exception_lets_only_its_rule_pass);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	EVP_PKEY_free(key);
	return failed ? 1 : 0;
}
