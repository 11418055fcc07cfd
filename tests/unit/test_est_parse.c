/* What a device sends over EST, parsed: PKCS#10 bodies in base64 (with line breaks), DER and
 * PEM, and nothing else; the Authorization header, Basic (the password is the token) or
 * Bearer, and nothing else. And hsmca-cad's est: configuration section. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cad_est.h"

static unsigned char *der;
static int der_len;

static void make_csr(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();

	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"dev-1", -1, -1,
	                           0);
	X509_REQ_set_subject_name(req, n);
	X509_REQ_set_pubkey(req, k);
	X509_REQ_sign(req, k, EVP_sha256());
	der_len = i2d_X509_REQ(req, &der);
	X509_NAME_free(n);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}

/* base64 of der, a line break every width characters (0: none). */
static char *b64(int width)
{
	char *flat = malloc((size_t)(4 * ((der_len + 2) / 3) + 1)), *out;
	int n = EVP_EncodeBlock((unsigned char *)flat, der, der_len), k = 0;

	out = malloc((size_t)(2 * n + 2));
	for (int i = 0; i < n; i++) {
		out[k++] = flat[i];
		if (width && (i + 1) % width == 0)
			out[k++] = '\n';
	}
	out[k] = '\0';
	free(flat);
	return out;
}

static int parses(const void *body, size_t len)
{
	char why[256];
	X509_REQ *r = cad_est_parse_csr(body, len, why, sizeof(why));

	X509_REQ_free(r);
	return r != NULL;
}

START_TEST(csr_in_base64_der_and_pem_parses)
{
	char *s = b64(0), *lines = b64(64), crlf[4096];
	BIO *b = BIO_new(BIO_s_mem());
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, der_len);
	char *pem;
	long n;

	ck_assert(parses(s, strlen(s)));
	ck_assert(parses(lines, strlen(lines)));
	/* CRLF line ends, as RFC 2045 writes them. */
	snprintf(crlf, sizeof(crlf), "%.64s\r\n%s\r\n", s, s + 64);
	ck_assert(parses(crlf, strlen(crlf)));
	ck_assert(parses(der, (size_t)der_len));
	PEM_write_bio_X509_REQ(b, req);
	n = BIO_get_mem_data(b, &pem);
	ck_assert(parses(pem, (size_t)n));
	BIO_free(b);
	X509_REQ_free(req);
	free(s);
	free(lines);
}
END_TEST

START_TEST(anything_else_is_refused_with_a_reason)
{
	char why[256] = "", *s = b64(0), *junk;
	unsigned char *extra = malloc((size_t)der_len + 1);
	size_t n = strlen(s);

	ck_assert_ptr_null(cad_est_parse_csr(NULL, 0, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "empty"));
	ck_assert(!parses("not base64!", 11));
	/* Bytes after the request: in DER, and in base64. */
	memcpy(extra, der, (size_t)der_len);
	extra[der_len] = 0;
	ck_assert_ptr_null(cad_est_parse_csr(extra, (size_t)der_len + 1, why, sizeof(why)));
	ck_assert_ptr_nonnull(strstr(why, "follow"));
	ck_assert(!parses(der, (size_t)der_len - 1));
	/* Padding inside, a character outside the alphabet, a cut length. */
	junk = strdup(s);
	junk[8] = '=';
	ck_assert(!parses(junk, n));
	junk[8] = '*';
	ck_assert(!parses(junk, n));
	ck_assert(!parses(s, n - 1));
	/* Too large. */
	{
		size_t big = CAD_EST_BODY_MAX + 1;
		char *b = malloc(big);
		memset(b, 'A', big);
		ck_assert_ptr_null(cad_est_parse_csr((const uint8_t *)b, big, why, sizeof(why)));
		ck_assert_ptr_nonnull(strstr(why, "at most"));
		free(b);
	}
	free(junk);
	free(extra);
	free(s);
}
END_TEST

static enum cad_est_auth auth(const char *h, char *token, char *user)
{
	char why[256];

	return cad_est_parse_auth(h, token, user, 64, why, sizeof(why));
}

START_TEST(basic_and_bearer_give_the_token)
{
	char token[CAD_EST_TOKEN_MAX + 1], user[64];

	ck_assert_int_eq(auth(NULL, token, user), CAD_EST_AUTH_NONE);
	/* "dev-1:hsmcaprov_abc" */
	ck_assert_int_eq(auth("Basic ZGV2LTE6aHNtY2Fwcm92X2FiYw==", token, user),
	                 CAD_EST_AUTH_BASIC);
	ck_assert_str_eq(token, "hsmcaprov_abc");
	ck_assert_str_eq(user, "dev-1");
	/* An empty user name is fine: ":tok" */
	ck_assert_int_eq(auth("basic OnRvaw==", token, user), CAD_EST_AUTH_BASIC);
	ck_assert_str_eq(token, "tok");
	ck_assert_str_eq(user, "");
	ck_assert_int_eq(auth("Bearer hsmcaprov_abc", token, user), CAD_EST_AUTH_BEARER);
	ck_assert_str_eq(token, "hsmcaprov_abc");
}
END_TEST

START_TEST(malformed_credentials_are_bad)
{
	char token[CAD_EST_TOKEN_MAX + 1], user[64], big[1200];

	ck_assert_int_eq(auth("Digest x", token, user), CAD_EST_AUTH_BAD);
	ck_assert_int_eq(auth("Basic !!!", token, user), CAD_EST_AUTH_BAD);
	/* "nocolon" */
	ck_assert_int_eq(auth("Basic bm9jb2xvbg==", token, user), CAD_EST_AUTH_BAD);
	/* "dev:" (empty password) */
	ck_assert_int_eq(auth("Basic ZGV2Og==", token, user), CAD_EST_AUTH_BAD);
	/* "dev:a b" (a space in the token) */
	ck_assert_int_eq(auth("Basic ZGV2OmEgYg==", token, user), CAD_EST_AUTH_BAD);
	ck_assert_int_eq(auth("Bearer ", token, user), CAD_EST_AUTH_BAD);
	ck_assert_int_eq(auth("Bearer a\tb", token, user), CAD_EST_AUTH_BAD);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "Bearer ", 7);
	ck_assert_int_eq(auth(big, token, user), CAD_EST_AUTH_BAD);
	ck_assert_str_eq(token, "");
}
END_TEST

/* --- the est: section --- */

static char dir[] = "/tmp/hsmca-estconf.XXXXXX";

static void write_ca(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	char path[256];
	FILE *f;

	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"ca", -1, -1, 0);
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	X509_sign(x, k, EVP_sha256());
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	f = fopen(path, "w");
	PEM_write_X509(f, x);
	fclose(f);
	X509_NAME_free(n);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* Load a configuration whose est: section is est; 0 or -1 with err. */
static int load(const char *est, char *err, size_t n)
{
	char path[256], text[2048];
	struct cad_config cfg;
	FILE *f;
	int rc;

	snprintf(text, sizeof(text),
	         "tls: {certificate: /x.pem, key: /x.key, client_ca: /ca.pem}\n"
	         "authorities:\n"
	         "  - {name: devices, certificate: %s/ca.pem, key: \"keyd:label=d\"}\n"
	         "key_profiles:\n"
	         "  - {name: kp, ec_curves: [P-256]}\n"
	         "profiles:\n"
	         "  - {name: device, authority: devices, key_profile: kp, max_validity_days: 9,\n"
	         "     key_usage: [digitalSignature], extended_key_usage: [clientAuth],\n"
	         "     subject_fields: [CN],\n"
	         "     subject_cn_required: true}\n"
	         "  - {name: anon, authority: devices, key_profile: kp, max_validity_days: 9,\n"
	         "     key_usage: [digitalSignature], extended_key_usage: [clientAuth],\n"
	         "     subject_fields: [CN]}\n"
	         "%s",
	         dir, est);
	snprintf(path, sizeof(path), "%s/cad.yaml", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	rc = cad_config_load(path, &cfg, err, n);
	if (rc == 0 && strstr(est, "device"))
		ck_assert_int_eq((int)cfg.n_est_profiles, 1);
	cad_config_free(&cfg);
	return rc;
}

/* A certificate carrying the SANs in text (X509V3 form), and the same as GENERAL_NAMES. */
static X509 *cert_with_sans(const char *text)
{
	X509 *x = X509_new();
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, text);

	ck_assert_ptr_nonnull(e);
	ck_assert(X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
	return x;
}

static GENERAL_NAMES *sans(const char *text)
{
	X509 *x = cert_with_sans(text);
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	X509_free(x);
	return g;
}

/* Re-enrolment keeps the SAN set: compared both ways, so a certificate with a SAN twice cannot
 * have the second replaced by a new name of the same count. */
START_TEST(reenrolment_sans_are_compared_as_sets_both_ways)
{
	static const struct {
		const char *have, *want;
		int same;
	} cases[] = {
	    {"URI:urn:dev:a", "URI:urn:dev:a", 1},
	    {"URI:urn:dev:a,URI:urn:dev:b", "URI:urn:dev:b,URI:urn:dev:a", 1},
	    {"URI:urn:dev:a", "URI:urn:dev:b", 0},
	    {"URI:urn:dev:a", "URI:urn:dev:a,URI:urn:dev:b", 0},
	    {"URI:urn:dev:a,URI:urn:dev:b", "URI:urn:dev:a", 0},
	    {"URI:urn:dev:a,URI:urn:dev:a", "URI:urn:dev:a,URI:urn:dev:victim", 0},
	    {"URI:urn:dev:a,URI:urn:dev:b", "URI:urn:dev:a,URI:urn:dev:a", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509 *x = cert_with_sans(cases[i].have);
		GENERAL_NAMES *g = sans(cases[i].want);
		ck_assert_msg(cad_est_same_sans(x, g) == cases[i].same, "%s vs %s", cases[i].have,
		              cases[i].want);
		GENERAL_NAMES_free(g);
		X509_free(x);
	}
	{ /* No SANs on either side, or on one. */
		X509 *none = X509_new(), *one = cert_with_sans("URI:urn:dev:a");
		GENERAL_NAMES *g = sans("URI:urn:dev:a");
		ck_assert_int_eq(cad_est_same_sans(none, NULL), 1);
		ck_assert_int_eq(cad_est_same_sans(none, g), 0);
		ck_assert_int_eq(cad_est_same_sans(one, NULL), 0);
		GENERAL_NAMES_free(g);
		X509_free(none);
		X509_free(one);
	}
}
END_TEST

START_TEST(est_section_is_checked)
{
	char err[512];

	ck_assert_msg(load("", err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(load("est: {profiles: [device], token_max_days: 30}\n", err, sizeof(err)),
	                 0);
	ck_assert_int_eq(load("est: {profiles: [nope]}\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "no profile named \"nope\""));
	ck_assert_int_eq(load("est: {profiles: [anon]}\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "no identity"));
	ck_assert_int_eq(load("est: {profiles: [device, device]}\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "named twice"));
	ck_assert_int_eq(load("est: {token_max_days: 3}\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "required"));
	ck_assert_int_eq(load("est: {profiles: [device], extra: 1}\n", err, sizeof(err)), -1);
}
END_TEST

static void setup(void)
{
	if (!mkdtemp(dir))
		abort();
	write_ca();
	make_csr();
}

static void teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf -- %s", dir);
	if (system(cmd) != 0)
		abort();
	OPENSSL_free(der);
}

int main(void)
{
	Suite *s = suite_create("est-parse");
	TCase *tc = tcase_create("est-parse");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, csr_in_base64_der_and_pem_parses);
	tcase_add_test(tc, anything_else_is_refused_with_a_reason);
	tcase_add_test(tc, basic_and_bearer_give_the_token);
	tcase_add_test(tc, malformed_credentials_are_bad);
	tcase_add_test(tc, est_section_is_checked);
	tcase_add_test(tc, reenrolment_sans_are_compared_as_sets_both_ways);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
