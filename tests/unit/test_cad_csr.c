/* hsmca-cad's reading of a PKCS#10 request (ca-core/ca/ca_csr.c reads it with its own ASN.1
 * templates and makes RSA and named-curve EC keys from their parts, not through OpenSSL's
 * decoders): every kind of request is judged as OpenSSL's own X509_REQ reading judges it, the key
 * is the request's key, and the certificate gets the request's SubjectPublicKeyInfo byte for byte.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "cad_internal.h"

static struct ca_key_profile kp = {
    .name = "test", .rsa_min_bits = 2048, .rsa_max_bits = 4096, .p256 = 1, .p384 = 1};
static char dns1[] = "*.example.com";
static struct ca_profile profile = {
    .name = "test",
    .key_profile = &kp,
    .max_validity_days = 365,
    .subject_fields = {NID_commonName, NID_organizationName},
    .n_subject_fields = 2,
    .san_patterns = {{dns1}},
    .n_san_patterns = {1},
};

/* A request for CN=host.example.com, DNS:host.example.com, signed by k (PSS when pss). */
static X509_REQ *make_req(EVP_PKEY *k, int pss)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *e =
	    X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:host.example.com");
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;

	ck_assert_ptr_nonnull(e);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	                           (const unsigned char *)"host.example.com", -1, -1, 0);
	X509_REQ_set_subject_name(req, n);
	X509_REQ_set_pubkey(req, k);
	sk_X509_EXTENSION_push(exts, e);
	X509_REQ_add_extensions(req, exts);
	ck_assert_int_eq(EVP_DigestSignInit(
	                     md, &pctx, EVP_PKEY_is_a(k, "ED25519") ? NULL : EVP_sha256(), NULL, k),
	                 1);
	if (pss)
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
	ck_assert_int_gt(X509_REQ_sign_ctx(req, md), 0);
	EVP_MD_CTX_free(md);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	return req;
}

static unsigned char *der_of(X509_REQ *req, int *len)
{
	unsigned char *der = NULL;

	*len = i2d_X509_REQ(req, &der);
	ck_assert_int_gt(*len, 0);
	return der;
}

/* DER as the PEM the API receives. */
static char *pem_of(const unsigned char *der, int len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	ck_assert_int_gt(PEM_write_bio(b, "CERTIFICATE REQUEST", "", der, len), 0);
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

/* ca_csr_check over DER; returns the error code ("" when accepted) in a static buffer.
 * ca_csr_check_der judges the DER itself exactly alike: the same outcome, code and reason
 * (but for the reading's own words), the same key, subject and SANs. */
static const char *judge(const unsigned char *der, int len, struct ca_csr *c)
{
	static char code[64];
	char *pem = pem_of(der, len), why[512] = "", why_der[512] = "";
	const char *error = NULL, *error_der = NULL;
	int rc = ca_csr_check(&profile, pem, c, &error, why, sizeof(why));
	struct ca_csr *d = calloc(1, sizeof(*d));
	int rc_der =
	    ca_csr_check_der(&profile, der, (size_t)len, d, &error_der, why_der, sizeof(why_der));

	ck_assert_int_eq(rc_der, rc);
	if (rc != 0) {
		ck_assert_str_eq(error_der, error);
		if (strcmp(why, "\"csr\" is not a PEM PKCS#10 request"))
			ck_assert_str_eq(why_der, why);
		else
			ck_assert_str_eq(why_der, "the CSR is not a DER PKCS#10 request");
	} else {
		ck_assert_ptr_null(error_der);
		ck_assert_mem_eq(d->spki_sha256, c->spki_sha256, 32);
		ck_assert_int_eq(EVP_PKEY_eq(d->pub, c->pub), 1);
		ck_assert_str_eq(d->subject, c->subject);
		ck_assert_uint_eq(d->n_sans, c->n_sans);
		for (size_t i = 0; i < c->n_sans; i++)
			ck_assert_str_eq(d->sans[i].value, c->sans[i].value);
	}
	ca_csr_free(d);
	free(d);
	free(pem);
	if (rc == 0) {
		ck_assert_ptr_null(error);
		return "";
	}
	ck_assert_ptr_nonnull(error);
	ck_assert_msg(why[0], "a refusal names the problem");
	snprintf(code, sizeof(code), "%s", error);
	return code;
}

/* What OpenSSL's own reading says of the same DER: "" (accepted by key and signature),
 * "bad-csr" or "csr-signature-invalid". */
static const char *openssl_judges(const unsigned char *der, int len)
{
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, len);
	EVP_PKEY *k = req ? X509_REQ_get_pubkey(req) : NULL;
	const char *v = !req || p != der + len || !k   ? "bad-csr"
	                : X509_REQ_verify(req, k) != 1 ? "csr-signature-invalid"
	                                               : "";

	EVP_PKEY_free(k);
	X509_REQ_free(req);
	return v;
}

static void accepted_as_openssl_reads_it(EVP_PKEY *k, int pss)
{
	X509_REQ *req = make_req(k, pss);
	int len;
	unsigned char *der = der_of(req, &len), *spki = NULL, *cspki = NULL;
	struct ca_csr *c = calloc(1, sizeof(*c));
	uint8_t want[32];
	int slen, clen;
	X509 *cert = X509_new();

	ck_assert_str_eq(openssl_judges(der, len), "");
	ck_assert_str_eq(judge(der, len, c), "");
	/* The key is the request's key. */
	ck_assert_int_eq(EVP_PKEY_eq(c->pub, k), 1);
	/* The SPKI hash is over the SubjectPublicKeyInfo's DER. */
	slen = i2d_PUBKEY(k, &spki);
	SHA256(spki, (size_t)slen, want);
	ck_assert_mem_eq(c->spki_sha256, want, 32);
	/* Subject and SANs. */
	ck_assert_int_eq(X509_NAME_cmp(ca_csr_subject(c), X509_REQ_get_subject_name(req)), 0);
	ck_assert_str_eq(c->subject, "CN=host.example.com");
	ck_assert_uint_eq(c->n_sans, 1);
	ck_assert_str_eq(c->sans[0].value, "host.example.com");
	/* The certificate gets the same SubjectPublicKeyInfo, byte for byte. */
	ck_assert_int_eq(ca_csr_copy_pubkey(c, cert), 1);
	clen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &cspki);
	ck_assert_int_eq(clen, slen);
	ck_assert_mem_eq(cspki, spki, (size_t)slen);
	X509_free(cert);
	OPENSSL_free(cspki);
	OPENSSL_free(spki);
	ca_csr_free(c);
	free(c);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

START_TEST(p256_p384_and_rsa_are_read_as_openssl_reads_them)
{
	EVP_PKEY *p256 = EVP_EC_gen("P-256"), *p384 = EVP_EC_gen("P-384");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	accepted_as_openssl_reads_it(p256, 0);
	accepted_as_openssl_reads_it(p384, 0);
	accepted_as_openssl_reads_it(rsa, 0);
	accepted_as_openssl_reads_it(rsa, 1); /* signed with RSASSA-PSS */
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(rsa);
}
END_TEST

static const char *judge_key(EVP_PKEY *k, char *why, size_t n)
{
	X509_REQ *req = make_req(k, 0);
	int len;
	unsigned char *der = der_of(req, &len);
	char *pem = pem_of(der, len);
	struct ca_csr *c = calloc(1, sizeof(*c));
	const char *error = NULL;

	ca_csr_check(&profile, pem, c, &error, why, n);
	ca_csr_free(c);
	free(c);
	free(pem);
	OPENSSL_free(der);
	X509_REQ_free(req);
	return error ? error : "";
}

START_TEST(other_keys_are_refused_by_name)
{
	char why[512];
	EVP_PKEY *k;

	k = EVP_EC_gen("secp256k1"); /* a named curve the key profile does not allow */
	ck_assert_str_eq(judge_key(k, why, sizeof(why)), "key-not-allowed");
	ck_assert_ptr_nonnull(strstr(why, "EC curve secp256k1"));
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); /* read through the decoders */
	ck_assert_str_eq(judge_key(k, why, sizeof(why)), "key-not-allowed");
	ck_assert_ptr_nonnull(strstr(why, "ED25519"));
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	ck_assert_str_eq(judge_key(k, why, sizeof(why)), "key-not-allowed");
	ck_assert_ptr_nonnull(strstr(why, "RSA-1024"));
	EVP_PKEY_free(k);
}
END_TEST

/* Offset of the first occurrence of needle in der; -1 when absent. */
static int find(const unsigned char *der, int len, const unsigned char *needle, int n)
{
	for (int i = 0; i + n <= len; i++)
		if (!memcmp(der + i, needle, (size_t)n))
			return i;
	return -1;
}

START_TEST(damaged_requests_are_refused_as_openssl_refuses_them)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *req = make_req(k, 0);
	int len, at;
	size_t plen = 0;
	unsigned char *der = der_of(req, &len), *copy = malloc((size_t)len + 1), point[65];
	struct ca_csr *c;

	ck_assert_int_eq(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, point,
	                                                 sizeof(point), &plen),
	                 1);
	at = find(der, len, point, (int)plen);
	ck_assert_int_ge(at, 0);
	/* Every byte of the request flipped in turn: cad accepts exactly what OpenSSL accepts,
	 * and refuses a request whose key does not parse or whose signature does not verify with
	 * the same error. (Flips that OpenSSL still reads may fail cad's profile checks: the
	 * subject or SAN changed; those must then be name-not-allowed.) */
	for (int i = 0; i < len; i++) {
		const char *want, *got;
		memcpy(copy, der, (size_t)len);
		copy[i] ^= 0x01;
		want = openssl_judges(copy, len);
		c = calloc(1, sizeof(*c));
		got = judge(copy, len, c);
		if (strcmp(got, "name-not-allowed") || !strcmp(want, "bad-csr"))
			ck_assert_msg(!strcmp(want, got),
			              "byte %d flipped: OpenSSL says \"%s\", cad \"%s\"", i, want,
			              got);
		ca_csr_free(c);
		free(c);
	}
	/* A point off the curve: the key does not parse. */
	memcpy(copy, der, (size_t)len);
	copy[at + plen - 1] ^= 0x01;
	c = calloc(1, sizeof(*c));
	ck_assert_str_eq(judge(copy, len, c), "bad-csr");
	ca_csr_free(c);
	free(c);
	/* Bytes after the request. */
	memcpy(copy, der, (size_t)len);
	copy[len] = 0;
	c = calloc(1, sizeof(*c));
	ck_assert_str_eq(judge(copy, len + 1, c), "bad-csr");
	ca_csr_free(c);
	free(c);
	/* Cut short. */
	c = calloc(1, sizeof(*c));
	ck_assert_str_eq(judge(der, len - 1, c), "bad-csr");
	ca_csr_free(c);
	free(c);
	free(copy);
	OPENSSL_free(der);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}
END_TEST

/* A request with the subject fields in subj ({"CN", "x", "O", "y", NULL}) and the SANs in san
 * (X509V3 text, "" for none), as PEM (the caller frees it). */
static char *names_req(EVP_PKEY *k, const char *const *subj, const char *san)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_REQ_get_subject_name(req);
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long len;

	for (; *subj; subj += 2)
		ck_assert(X509_NAME_add_entry_by_txt(n, subj[0], V_ASN1_UTF8STRING,
		                                     (const unsigned char *)subj[1], -1, -1, 0));
	if (*san) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		ck_assert_ptr_nonnull(e);
		sk_X509_EXTENSION_push(exts, e);
		X509_REQ_add_extensions(req, exts);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	ck_assert(X509_REQ_set_pubkey(req, k) && X509_REQ_sign(req, k, EVP_sha256()) > 0);
	ck_assert(PEM_write_bio_X509_REQ(b, req));
	len = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)len);
	BIO_free(b);
	X509_REQ_free(req);
	return out;
}

/* p's judgement of the request: "" accepted, else the reason (static). */
static const char *names_judged(const struct ca_profile *p, EVP_PKEY *k, const char *const *subj,
                                const char *san)
{
	static char why[512];
	char *pem = names_req(k, subj, san);
	struct ca_csr *c = calloc(1, sizeof(*c));
	const char *error = NULL;
	int rc = ca_csr_check(p, pem, c, &error, why, sizeof(why));

	if (rc == 0)
		why[0] = '\0';
	else
		ck_assert_str_eq(error, "name-not-allowed");
	ca_csr_free(c);
	free(c);
	free(pem);
	return why;
}

static char sub_o1[] = "Example *", sub_o2[] = "Acme", mail1[] = "*@example.com",
            uri1[] = "urn:dev:*", ip1[] = "10.*";
static struct ca_profile names = {
    .name = "names",
    .key_profile = &kp,
    .max_validity_days = 365,
    .subject_fields = {NID_commonName, NID_organizationName, NID_pkcs9_emailAddress},
    .n_subject_fields = 3,
    .subject_patterns = {{NULL}, {sub_o1, sub_o2}},
    .n_subject_patterns = {0, 2},
    .san_patterns = {{dns1}, {ip1}, {mail1}, {uri1}},
    .n_san_patterns = {1, 1, 1, 1},
};

/* Subject values: each field once, values by the profile's patterns, emailAddress by the
 * email patterns, a CN that is one of the SANs where the profile has DNS or IP SANs, no SAN
 * twice, and a subject never cut to fit. */
START_TEST(subject_values_and_sans_are_judged)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char big[300];

	ck_assert_str_eq(names_judged(&names, k, (const char *[]){"CN", "a.example.com", NULL},
	                              "DNS:a.example.com"),
	                 "");
	/* A second CN, a second O. */
	ck_assert_str_eq(
	    names_judged(&names, k,
	                 (const char *[]){"CN", "a.example.com", "CN", "b.example.com", NULL},
	                 "DNS:a.example.com,DNS:b.example.com"),
	    "subject field CN appears more than once");
	ck_assert_str_eq(
	    names_judged(&names, k, (const char *[]){"O", "Acme", "O", "Example Ltd", NULL}, ""),
	    "subject field O appears more than once");
	/* Value patterns. */
	ck_assert_str_eq(names_judged(&names, k, (const char *[]){"O", "example ltd", NULL}, ""),
	                 "");
	ck_assert_str_eq(names_judged(&names, k, (const char *[]){"O", "Evil Corp", NULL}, ""),
	                 "subject O \"Evil Corp\" does not match the patterns of profile names");
	/* emailAddress by the email patterns. */
	ck_assert_str_eq(
	    names_judged(&names, k, (const char *[]){"emailAddress", "bob@example.com", NULL}, ""),
	    "");
	ck_assert_str_eq(
	    names_judged(&names, k, (const char *[]){"emailAddress", "bob@evil.test", NULL}, ""),
	    "subject emailAddress \"bob@evil.test\" does not match the email patterns of "
	    "profile names");
	/* The CN is one of the SANs (DNS or IP), case aside. */
	ck_assert_str_eq(names_judged(&names, k, (const char *[]){"CN", "B.example.com", NULL},
	                              "DNS:a.example.com,DNS:b.example.com"),
	                 "");
	ck_assert_str_eq(
	    names_judged(&names, k, (const char *[]){"CN", "10.0.0.1", NULL}, "IP:10.0.0.1"), "");
	ck_assert_str_eq(names_judged(&names, k, (const char *[]){"CN", "c.example.com", NULL},
	                              "DNS:a.example.com"),
	                 "subject CN \"c.example.com\" is not one of the request's SANs "
	                 "(profile names)");
	ck_assert_str_eq(names_judged(&names, k, (const char *[]){"CN", "c.example.com", NULL}, ""),
	                 "subject CN \"c.example.com\" is not one of the request's SANs "
	                 "(profile names)");
	/* No SAN twice, whatever the case. */
	ck_assert_str_eq(
	    names_judged(&names, k, (const char *[]){NULL}, "DNS:a.example.com,DNS:A.Example.com"),
	    "dns SAN \"A.Example.com\" appears more than once");
	ck_assert_str_eq(
	    names_judged(&names, k, (const char *[]){NULL}, "URI:urn:dev:1,URI:urn:dev:1"),
	    "uri SAN \"urn:dev:1\" appears more than once");
	ck_assert_str_eq(names_judged(&names, k, (const char *[]){NULL}, "IP:10.0.0.1,IP:10.0.0.1"),
	                 "ip SAN \"10.0.0.1\" appears more than once");
	/* A subject longer than the stored text may be is refused, not cut. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "Example ", 8);
	ck_assert_str_eq(names_judged(&names, k,
	                              (const char *[]){"CN", "a.example.com", "O", big,
	                                               "emailAddress", "bob@example.com", NULL},
	                              "DNS:a.example.com"),
	                 "");
	{
		/* Four long fields make more than 1,023 characters of RFC 2253 text. */
		static struct ca_profile wide = {
		    .name = "wide",
		    .key_profile = &kp,
		    .max_validity_days = 365,
		    .subject_fields = {NID_commonName, NID_organizationName,
		                       NID_organizationalUnitName, NID_localityName},
		    .n_subject_fields = 4,
		};
		char *pem = names_req(
		    k, (const char *[]){"CN", big, "O", big, "OU", big, "L", big, NULL}, "");
		struct ca_csr *c = calloc(1, sizeof(*c));
		const char *error = NULL;
		char why[512];

		ck_assert_int_eq(ca_csr_check(&wide, pem, c, &error, why, sizeof(why)), -1);
		ck_assert_str_eq(why,
		                 "the subject is 1209 characters long; at most 1023 are allowed");
		ca_csr_free(c);
		free(c);
		free(pem);
	}
	EVP_PKEY_free(k);
}
END_TEST

/* ca_csr_check_der takes the request and nothing else: no byte after it, none missing. */
START_TEST(der_requests_are_read_whole)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *req = make_req(k, 0);
	int len;
	unsigned char *der = der_of(req, &len), *more = malloc((size_t)len + 1);
	struct ca_csr c = {0};
	const char *error = NULL;
	char why[512];

	ck_assert_ptr_nonnull(more);
	memcpy(more, der, (size_t)len);
	more[len] = 0;
	ck_assert_int_eq(
	    ca_csr_check_der(&profile, more, (size_t)len, &c, &error, why, sizeof(why)), 0);
	ca_csr_free(&c);
	memset(&c, 0, sizeof(c));
	for (size_t n = 0; n <= (size_t)len + 1; n += n + 1 == (size_t)len ? 2 : 1) {
		ck_assert_int_eq(ca_csr_check_der(&profile, more, n, &c, &error, why, sizeof(why)),
		                 -1);
		ck_assert_str_eq(error, "bad-csr");
		ck_assert_str_eq(why, "the CSR is not a DER PKCS#10 request");
		ca_csr_free(&c);
		memset(&c, 0, sizeof(c));
	}
	free(more);
	OPENSSL_free(der);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}
END_TEST

/* A request asking for extensions in two attributes (the standard extensionRequest and
 * Microsoft's, in either order) is refused whole: readers differ in
 * which one they take (OpenSSL the standard one first), so the names judged could be other
 * than the names issued. */
static unsigned char *two_requests(EVP_PKEY *k, int first_nid, int second_nid, int *len)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *a = sk_X509_EXTENSION_new_null(),
	                         *b = sk_X509_EXTENSION_new_null();
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *der;

	sk_X509_EXTENSION_push(
	    a, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:host.example.com"));
	sk_X509_EXTENSION_push(
	    b, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:other.example.com"));
	X509_REQ_set_pubkey(req, k);
	/* each as X509_REQ_add_extensions_nid writes it */
	for (int i = 0; i < 2; i++) {
		unsigned char *ext = NULL;
		int n = i2d_X509_EXTENSIONS(i ? b : a, &ext);
		ck_assert_int_gt(n, 0);
		ck_assert_int_eq(X509_REQ_add1_attr_by_NID(req, i ? second_nid : first_nid,
		                                           V_ASN1_SEQUENCE, ext, n),
		                 1);
		OPENSSL_free(ext);
	}
	ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
	ck_assert_int_gt(X509_REQ_sign_ctx(req, md), 0);
	der = der_of(req, len);
	EVP_MD_CTX_free(md);
	sk_X509_EXTENSION_pop_free(a, X509_EXTENSION_free);
	sk_X509_EXTENSION_pop_free(b, X509_EXTENSION_free);
	X509_REQ_free(req);
	return der;
}

START_TEST(extensions_asked_for_twice_are_refused)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	static const int pairs[][2] = {{NID_ms_ext_req, NID_ext_req},
	                               {NID_ext_req, NID_ms_ext_req}};
	struct ca_csr c = {0};
	int len;

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		unsigned char *der = two_requests(k, pairs[i][0], pairs[i][1], &len);
		ck_assert_str_eq(judge(der, len, &c), "bad-csr");
		ca_csr_free(&c);
		memset(&c, 0, sizeof(c));
		OPENSSL_free(der);
	}
	/* one of them alone is read as before */
	{
		X509_REQ *req = make_req(k, 0);
		unsigned char *der = der_of(req, &len);
		ck_assert_str_eq(judge(der, len, &c), "");
		ca_csr_free(&c);
		OPENSSL_free(der);
		X509_REQ_free(req);
	}
	EVP_PKEY_free(k);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cad-csr");
	TCase *tc = tcase_create("csr");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, p256_p384_and_rsa_are_read_as_openssl_reads_them);
	tcase_add_test(tc, other_keys_are_refused_by_name);
	tcase_add_test(tc, damaged_requests_are_refused_as_openssl_refuses_them);
	tcase_add_test(tc, subject_values_and_sans_are_judged);
	tcase_add_test(tc, der_requests_are_read_whole);
	tcase_add_test(tc, extensions_asked_for_twice_are_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
