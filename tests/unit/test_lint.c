/*
 * The RFC 5280 linter: a good root, intermediate, OCSP signer and leaf pass,
 * signed and unsigned; then one certificate per check, each a good one with
 * one thing broken, fails with that check's finding. The same for CRLs. All
 * built here with OpenSSL and software keys.
 */
#include <check.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lint.h"

#define T2026 1767225600L /* 2026-01-01T00:00:00Z */
#define DAY 86400L

static EVP_PKEY *root_key, *inter_key, *leaf_key, *other_key;
static EVP_PKEY *rsa1024, *rsa2048, *p224; /* leaf keys of other kinds */
static X509 *root, *inter;

enum base { ROOT, INTER, LEAF, OCSP, CROSS };

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ck_assert_msg(e != NULL, "extension %d = %s", nid, value);
	ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

static void del_ext(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);

	ck_assert_int_ge(i, 0);
	X509_EXTENSION_free(X509_delete_ext(x, i));
}

/* Replace an extension, keeping nothing of the old one. */
static void set_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	del_ext(x, nid);
	add_ext(x, issuer, nid, value);
}

static void set_serial(X509 *x, const unsigned char *b, int n)
{
	BIGNUM *bn = BN_bin2bn(b, n, NULL);
	ASN1_INTEGER *s = BN_to_ASN1_INTEGER(bn, NULL);

	X509_set_serialNumber(x, s);
	ASN1_INTEGER_free(s);
	BN_free(bn);
}

static void set_times(X509 *x, time_t nb, time_t na)
{
	ASN1_TIME *a = ASN1_TIME_set(NULL, nb), *b = ASN1_TIME_set(NULL, na);

	X509_set1_notBefore(x, a);
	X509_set1_notAfter(x, b);
	ASN1_TIME_free(a);
	ASN1_TIME_free(b);
}

static X509_NAME *name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	if (cn)
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
		                           -1, 0);
	return n;
}

/* The profile each base certificate is built to. */
static struct lint_cert_profile profile_of(enum base b)
{
	static const char *const ocsp_eku[] = {"1.3.6.1.5.5.7.3.9"};
	static const char *const leaf_eku[] = {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"};
	struct lint_cert_profile p = {.hash_nid = NID_sha256};

	switch (b) {
	case ROOT:
		p.role = LINT_ROOT;
		p.not_before = T2026;
		p.not_after = T2026 + 3650 * DAY;
		p.key_usage = LINT_KU_KEY_CERT_SIGN | LINT_KU_CRL_SIGN;
		break;
	case INTER:
	case CROSS:
		p.role = b == INTER ? LINT_INTERMEDIATE : LINT_CROSS_SIGN;
		p.not_before = T2026 + DAY;
		p.not_after = T2026 + 1825 * DAY;
		p.key_usage = LINT_KU_KEY_CERT_SIGN | LINT_KU_CRL_SIGN;
		p.has_path_length = 1;
		p.path_length = 0;
		p.name_constraints = 1;
		break;
	case OCSP:
		p.role = LINT_OCSP_SIGNER;
		p.not_before = T2026 + 2 * DAY;
		p.not_after = T2026 + 365 * DAY;
		p.key_usage = LINT_KU_DIGITAL_SIGNATURE;
		p.eku = ocsp_eku;
		p.n_eku = 1;
		break;
	case LEAF:
		p.role = LINT_LEAF;
		p.not_before = T2026 + 2 * DAY;
		p.not_after = T2026 + 92 * DAY;
		p.max_validity = 100 * DAY;
		p.key_usage = LINT_KU_DIGITAL_SIGNATURE; /* an EC key: no keyEncipherment */
		p.eku = leaf_eku;
		p.n_eku = 2;
		break;
	}
	return p;
}

/* A good, unsigned certificate of the base's kind. */
static X509 *build(enum base b)
{
	X509 *x = X509_new(), *issuer = b == ROOT ? NULL : b == INTER || b == CROSS ? root : inter;
	EVP_PKEY *key = b == ROOT ? root_key : b == INTER || b == CROSS ? inter_key : leaf_key;
	struct lint_cert_profile p = profile_of(b);
	unsigned char serial[16];
	X509_NAME *subject = name(b == ROOT                  ? "Root"
	                          : b == INTER || b == CROSS ? "Inter"
	                          : b == OCSP                ? "OCSP"
	                                                     : NULL);

	ck_assert_int_eq(RAND_bytes(serial, sizeof(serial)), 1);
	serial[0] = (serial[0] & 0x3f) | 0x40; /* positive, 127 bits */
	X509_set_version(x, X509_VERSION_3);
	set_serial(x, serial, sizeof(serial));
	X509_set_subject_name(x, subject);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject);
	X509_NAME_free(subject);
	set_times(x, p.not_before, p.not_after);
	X509_set_pubkey(x, key);
	switch (b) {
	case ROOT:
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
		break;
	case INTER:
	case CROSS:
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
		add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(x, issuer, NID_name_constraints, "critical,permitted;DNS:example.com");
		break;
	case OCSP:
		add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
		add_ext(x, issuer, NID_ext_key_usage, "OCSPSigning");
		add_ext(x, issuer, NID_id_pkix_OCSP_noCheck, "ignored");
		break;
	case LEAF:
		/* As cad issues them: an empty subject, the name in a critical SAN. */
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
		add_ext(x, issuer, NID_subject_alt_name, "critical,DNS:www.example.com");
		add_ext(x, issuer, NID_crl_distribution_points, "URI:http://ca.example.com/crl");
		break;
	}
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	return x;
}

static struct lint_parties parties_of(enum base b)
{
	return (struct lint_parties){
	    .issuer = b == ROOT                  ? NULL
	              : b == INTER || b == CROSS ? root
	                                         : inter,
	    .subject_pub = b == ROOT                  ? root_key
	                   : b == INTER || b == CROSS ? inter_key
	                                              : leaf_key,
	};
}

static EVP_PKEY *signer_of(enum base b)
{
	return b == ROOT || b == INTER || b == CROSS ? root_key : inter_key;
}

static void sign(X509 *x, EVP_PKEY *key, const EVP_MD *md)
{
	ck_assert_int_gt(X509_sign(x, key, md), 0);
}

static void setup(void)
{
	root_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	inter_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	other_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ck_assert(root_key && inter_key && leaf_key && other_key);
	rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	p224 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-224");
	ck_assert(rsa1024 && rsa2048 && p224);
	root = build(ROOT);
	sign(root, root_key, EVP_sha256());
	inter = build(INTER);
	sign(inter, root_key, EVP_sha256());
}

static void teardown(void)
{
	X509_free(root);
	X509_free(inter);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(inter_key);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(p224);
}

/* ---- good certificates ---- */

static void passes(enum base b)
{
	struct lint_cert_profile p = profile_of(b);
	struct lint_parties w = parties_of(b);
	X509 *x = build(b);
	char err[512] = "";

	ck_assert_msg(lint_cert_tbs(&p, &w, x, err, sizeof(err)) == 0, "tbs: %s", err);
	sign(x, signer_of(b), EVP_sha256());
	ck_assert_msg(lint_cert_signed(&p, &w, x, err, sizeof(err)) == 0, "signed: %s", err);
	ck_assert_msg(lint_path(x, w.issuer ? w.issuer : x, T2026 + 3 * DAY, err, sizeof(err)) == 0,
	              "path: %s", err);
	X509_free(x);
}

START_TEST(good_root_passes)
{
	passes(ROOT);
}
END_TEST

START_TEST(good_intermediate_passes)
{
	passes(INTER);
}
END_TEST

START_TEST(good_leaf_passes)
{
	passes(LEAF);
}
END_TEST

START_TEST(good_ocsp_signer_passes)
{
	passes(OCSP);
}
END_TEST

/* ---- one failing certificate per check ---- */

struct bad {
	enum base base;
	void (*mutate)(X509 *x, struct lint_cert_profile *p, struct lint_parties *w);
	const char *finding;
	const char *rule; /* the rule the finding names (docs/lint.md) */
};

/* Each mutation uses the parts it breaks. */
#define UNUSED __attribute__((unused))
#define MUT(fn)                                                                                    \
	static void fn(UNUSED X509 *x, UNUSED struct lint_cert_profile *p,                         \
	               UNUSED struct lint_parties *w)

MUT(version_2)
{
	X509_set_version(x, X509_VERSION_2);
}
MUT(short_serial)
{
	set_serial(x, (const unsigned char *)"\x12\x34\x56\x78", 4);
}
MUT(zero_serial)
{
	set_serial(x, (const unsigned char *)"", 0);
}
MUT(long_serial)
{
	unsigned char s[21];
	memset(s, 0x55, sizeof(s));
	set_serial(x, s, sizeof(s));
}
MUT(wrong_issuer_name)
{
	X509_NAME *n = name("Someone Else");
	X509_set_issuer_name(x, n);
	X509_NAME_free(n);
}
MUT(empty_ca_subject)
{
	X509_NAME *n = name(NULL);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n); /* a root: its own issuer */
	X509_NAME_free(n);
}
MUT(san_not_critical)
{
	set_ext(x, w->issuer, NID_subject_alt_name, "DNS:www.example.com");
}
MUT(cross_subject_differs)
{
	w->existing_ca = root; /* names "Root"; the certificate "Inter" */
	w->subject_pub = inter_key;
}
MUT(generalized_before_2050)
{
	ASN1_GENERALIZEDTIME *t = ASN1_GENERALIZEDTIME_set(NULL, p->not_after);
	X509_set1_notAfter(x, t);
	ASN1_GENERALIZEDTIME_free(t);
}
MUT(not_before_differs)
{
	p->not_before += 1;
}
MUT(not_before_after_not_after)
{
	time_t na = p->not_after;
	p->not_before = na + DAY;
	p->not_after = 0; /* only the order is left to find */
	p->max_validity = 0;
	set_times(x, p->not_before, na);
}
MUT(too_long)
{
	p->max_validity = 30 * DAY;
}
MUT(duplicate_ext)
{
	X509_EXTENSION *e =
	    X509_EXTENSION_dup(X509_get_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1)));
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}
MUT(unexpected_ext)
{
	add_ext(x, w->issuer, NID_subject_alt_name, "DNS:ca.example.com");
}
MUT(extra_ext_allowed_by_profile)
{
	static const int extra[] = {NID_netscape_comment, 0};
	add_ext(x, NULL, NID_netscape_comment, "hello");
	p->extra_extensions = extra;
	w->subject_pub = other_key; /* a later check's finding: the extension got through */
}
MUT(other_subject_key)
{
	w->subject_pub = other_key;
}
MUT(no_ski)
{
	del_ext(x, NID_subject_key_identifier);
}
MUT(ski_critical)
{
	X509_EXTENSION_set_critical(
	    X509_get_ext(x, X509_get_ext_by_NID(x, NID_subject_key_identifier, -1)), 1);
}
MUT(ski_not_sha1)
{
	set_ext(x, NULL, NID_subject_key_identifier, "0102030405060708");
}
MUT(no_aki)
{
	del_ext(x, NID_authority_key_identifier);
}
MUT(aki_of_other_issuer)
{
	set_ext(x, NULL, NID_authority_key_identifier, "keyid:always"); /* its own SKI */
}
MUT(aki_with_issuer_and_serial)
{
	set_ext(x, w->issuer, NID_authority_key_identifier, "keyid:always,issuer:always");
}
MUT(ca_without_ca_flag)
{
	set_ext(x, w->issuer, NID_basic_constraints, "critical,CA:FALSE");
}
MUT(bc_not_critical)
{
	set_ext(x, w->issuer, NID_basic_constraints, "CA:TRUE,pathlen:0");
}
MUT(path_length_differs)
{
	p->path_length = 1;
}
MUT(leaf_is_ca)
{
	set_ext(x, w->issuer, NID_basic_constraints, "critical,CA:TRUE");
}
MUT(no_ku)
{
	del_ext(x, NID_key_usage);
}
MUT(ku_not_critical)
{
	set_ext(x, w->issuer, NID_key_usage, "keyCertSign,cRLSign");
}
MUT(ku_differs)
{
	set_ext(x, w->issuer, NID_key_usage, "critical,keyCertSign");
}
MUT(ca_without_cert_sign)
{
	set_ext(x, w->issuer, NID_key_usage, "critical,cRLSign");
	p->key_usage = LINT_KU_CRL_SIGN;
}
MUT(ocsp_with_crl_sign)
{
	set_ext(x, w->issuer, NID_key_usage, "critical,digitalSignature,cRLSign");
	p->key_usage = LINT_KU_DIGITAL_SIGNATURE | LINT_KU_CRL_SIGN;
}
MUT(leaf_with_cert_sign)
{
	set_ext(x, w->issuer, NID_key_usage, "critical,digitalSignature,keyCertSign");
	p->key_usage = LINT_KU_DIGITAL_SIGNATURE | LINT_KU_KEY_CERT_SIGN;
}
MUT(eku_differs)
{
	set_ext(x, w->issuer, NID_ext_key_usage, "clientAuth,serverAuth");
}
MUT(eku_critical)
{
	set_ext(x, w->issuer, NID_ext_key_usage, "critical,serverAuth,clientAuth");
}
MUT(root_with_eku)
{
	static const char *const eku[] = {"1.3.6.1.5.5.7.3.1"};
	add_ext(x, NULL, NID_ext_key_usage, "serverAuth");
	p->eku = eku;
	p->n_eku = 1;
}
MUT(ocsp_without_ocsp_eku)
{
	static const char *const eku[] = {"1.3.6.1.5.5.7.3.1"};
	set_ext(x, w->issuer, NID_ext_key_usage, "serverAuth");
	p->eku = eku;
}
MUT(ocsp_without_nocheck)
{
	del_ext(x, NID_id_pkix_OCSP_noCheck);
}
MUT(leaf_with_nocheck)
{
	add_ext(x, w->issuer, NID_id_pkix_OCSP_noCheck, "ignored");
}
MUT(nc_missing)
{
	del_ext(x, NID_name_constraints);
}
MUT(nc_not_critical)
{
	set_ext(x, w->issuer, NID_name_constraints, "permitted;DNS:example.com");
}
MUT(leaf_with_nc)
{
	add_ext(x, w->issuer, NID_name_constraints, "critical,permitted;DNS:example.com");
	p->name_constraints = 1;
}
MUT(outlives_issuer)
{
	p->not_after = T2026 + 4000 * DAY;
	set_times(x, p->not_before, p->not_after);
}

/* The leaf with another subject key (and keyUsage), as the issuer would have built it. */
static void leaf_key_ku(X509 *x, struct lint_cert_profile *p, struct lint_parties *w, EVP_PKEY *k,
                        const char *ku, unsigned bits)
{
	X509_set_pubkey(x, k);
	w->subject_pub = k;
	set_ext(x, NULL, NID_subject_key_identifier, "hash");
	set_ext(x, w->issuer, NID_key_usage, ku);
	p->key_usage = bits;
}
MUT(rsa_1024)
{
	leaf_key_ku(x, p, w, rsa1024, "critical,digitalSignature,keyEncipherment",
	            LINT_KU_DIGITAL_SIGNATURE | LINT_KU_KEY_ENCIPHERMENT);
}
MUT(ec_p224)
{
	leaf_key_ku(x, p, w, p224, "critical,digitalSignature", LINT_KU_DIGITAL_SIGNATURE);
}
MUT(ec_key_encipherment)
{
	leaf_key_ku(x, p, w, leaf_key, "critical,digitalSignature,keyEncipherment",
	            LINT_KU_DIGITAL_SIGNATURE | LINT_KU_KEY_ENCIPHERMENT);
}
MUT(ec_data_encipherment)
{
	leaf_key_ku(x, p, w, leaf_key, "critical,digitalSignature,dataEncipherment",
	            LINT_KU_DIGITAL_SIGNATURE | LINT_KU_DATA_ENCIPHERMENT);
}
MUT(rsa_key_agreement)
{
	leaf_key_ku(x, p, w, rsa2048, "critical,digitalSignature,keyAgreement",
	            LINT_KU_DIGITAL_SIGNATURE | LINT_KU_KEY_AGREEMENT);
}
MUT(encipher_only_alone)
{
	leaf_key_ku(x, p, w, leaf_key, "critical,digitalSignature,encipherOnly",
	            LINT_KU_DIGITAL_SIGNATURE | LINT_KU_ENCIPHER_ONLY);
}
MUT(eku_without_its_ku)
{
	leaf_key_ku(x, p, w, leaf_key, "critical,nonRepudiation", LINT_KU_CONTENT_COMMITMENT);
}
MUT(tls_without_san)
{
	X509_NAME *n = name("www.example.com");
	X509_set_subject_name(x, n);
	X509_NAME_free(n);
	del_ext(x, NID_subject_alt_name);
}
MUT(tls_cn_not_in_san)
{
	X509_NAME *n = name("mail.example.com");
	X509_set_subject_name(x, n);
	X509_NAME_free(n);
}
MUT(nc_empty)
{
	NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
	X509_add1_ext_i2d(x, NID_name_constraints, nc, 1, X509V3_ADD_REPLACE);
	NAME_CONSTRAINTS_free(nc);
}
MUT(nc_wildcard)
{
	set_ext(x, w->issuer, NID_name_constraints, "critical,permitted;DNS:*.example.com");
}
MUT(nc_with_maximum)
{
	NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, NULL, NULL);
	GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 0);
	st->maximum = ASN1_INTEGER_new();
	ASN1_INTEGER_set(st->maximum, 2);
	X509_add1_ext_i2d(x, NID_name_constraints, nc, 1, X509V3_ADD_REPLACE);
	NAME_CONSTRAINTS_free(nc);
}
MUT(digest_the_key_cannot_use)
{
	p->hash_nid = NID_md5;
}

static const struct bad bad_certs[] = {
    {ROOT, version_2, "not version 3", "cert_version_3"},
    {ROOT, short_serial, "at least 64 random bits", "serial_entropy"},
    {ROOT, zero_serial, "must be positive", "serial_positive"},
    {ROOT, long_serial, "at most 20", "serial_max_20_octets"},
    {INTER, wrong_issuer_name, "the issuer name is not the issuer's subject name",
     "issuer_name_matches"},
    {ROOT, empty_ca_subject, "the subject is empty", "subject_not_empty"},
    {LEAF, san_not_critical, "subjectAltName must be critical", "san_critical_if_subject_empty"},
    {CROSS, cross_subject_differs, "the subject differs from the existing CA's",
     "subject_cross_sign"},
    {ROOT, generalized_before_2050, "must be a UTCTime", "time_encoding"},
    {ROOT, not_before_differs, "notBefore differs from the profile", "time_matches_request"},
    {LEAF, not_before_after_not_after, "notBefore is not before notAfter", "validity_order"},
    {LEAF, too_long, "longer than the 2592000 seconds", "validity_max"},
    {ROOT, duplicate_ext, "twice", "ext_no_duplicates"},
    {INTER, unexpected_ext, "unexpected extension X509v3 Subject Alternative Name", "ext_allowed"},
    {LEAF, extra_ext_allowed_by_profile, "not the key the caller checked", "subject_key_matches"},
    {LEAF, other_subject_key, "not the key the caller checked", "subject_key_matches"},
    {ROOT, no_ski, "no subjectKeyIdentifier", "ski_present"},
    {ROOT, ski_critical, "subjectKeyIdentifier must not be critical", "ski_not_critical"},
    {ROOT, ski_not_sha1, "not the SHA-1 of the subjectPublicKey", "ski_method1"},
    {ROOT, no_aki, "no authorityKeyIdentifier", "aki_present"},
    {INTER, aki_of_other_issuer, "not the issuer's subjectKeyIdentifier", "aki_matches_issuer_ski"},
    {INTER, aki_with_issuer_and_serial, "keyIdentifier only", "aki_keyid_only"},
    {INTER, ca_without_ca_flag, "needs basicConstraints cA=TRUE", "bc_ca"},
    {INTER, bc_not_critical, "basicConstraints must be critical", "bc_critical"},
    {INTER, path_length_differs, "path length differs from the profile", "bc_path_length"},
    {LEAF, leaf_is_ca, "a leaf certificate must not be a CA", "bc_not_ca"},
    {OCSP, no_ku, "no keyUsage", "ku_present"},
    {ROOT, ku_not_critical, "keyUsage must be critical", "ku_critical"},
    {ROOT, ku_differs, "keyUsage differs from the profile's key_usage", "ku_matches_profile"},
    {ROOT, ca_without_cert_sign, "needs keyUsage keyCertSign", "ku_ca_key_cert_sign"},
    {OCSP, ocsp_with_crl_sign, "neither keyCertSign nor cRLSign", "ku_ocsp_signer"},
    {LEAF, leaf_with_cert_sign, "must not carry keyCertSign or cRLSign", "ku_leaf_no_cert_sign"},
    {LEAF, eku_differs, "extendedKeyUsage differs", "eku_matches_profile"},
    {LEAF, eku_critical, "not marked critical", "eku_not_critical"},
    {ROOT, root_with_eku, "a root certificate carries no extendedKeyUsage", "eku_root_none"},
    {OCSP, ocsp_without_ocsp_eku, "needs extendedKeyUsage id-kp-OCSPSigning", "eku_ocsp_signing"},
    {OCSP, ocsp_without_nocheck, "id-pkix-ocsp-nocheck (RFC 6960", "ocsp_nocheck"},
    {LEAF, leaf_with_nocheck, "only an OCSP signer carries id-pkix-ocsp-nocheck",
     "ocsp_nocheck_only_signer"},
    {INTER, nc_missing, "nameConstraints differ", "nc_matches_profile"},
    {INTER, nc_not_critical, "nameConstraints must be critical", "nc_critical"},
    {LEAF, leaf_with_nc, "only a CA certificate carries nameConstraints", "nc_ca_only"},
    {INTER, outlives_issuer, "must lie inside the issuer's validity", "validity_within_issuer"},

    {LEAF, rsa_1024, "the RSA key has 1024 bits", "key_rsa_size"},
    {LEAF, ec_p224, "the EC key is on secp224r1", "key_ec_curve"},
    {LEAF, ec_key_encipherment, "keyEncipherment on an EC key", "ku_ec_no_key_encipherment"},
    {LEAF, ec_data_encipherment, "dataEncipherment on an EC key", "ku_ec_no_data_encipherment"},
    {LEAF, rsa_key_agreement, "keyAgreement on an RSA key", "ku_rsa_no_key_agreement"},
    {LEAF, encipher_only_alone, "without keyAgreement", "ku_encipher_only_needs_key_agreement"},
    {LEAF, eku_without_its_ku, "extendedKeyUsage serverAuth needs keyUsage", "eku_ku_consistent"},
    {LEAF, tls_without_san, "needs subjectAltName", "tls_san_present"},
    {LEAF, tls_cn_not_in_san, "the commonName is none of", "tls_cn_in_san"},
    {INTER, nc_empty, "neither permitted nor excluded", "nc_syntax"},
    {INTER, nc_wildcard, "cannot hold", "nc_syntax"},
    {INTER, nc_with_maximum, "minimum or a maximum", "nc_syntax"},
    {LEAF, digest_the_key_cannot_use, "cannot sign with MD5", "sig_alg_for_key"},
};
START_TEST(bad_certificate_fails_its_check)
{
	const struct bad *b = &bad_certs[_i];
	struct lint_cert_profile p = profile_of(b->base);
	struct lint_parties w = parties_of(b->base);
	X509 *x = build(b->base);
	char err[512] = "", rule[64];

	b->mutate(x, &p, &w);
	ck_assert_msg(lint_cert_tbs(&p, &w, x, err, sizeof(err)) == -1, "case %d passed", _i);
	ck_assert_msg(strstr(err, b->finding), "case %d: expected \"%s\", got \"%s\"", _i,
	              b->finding, err);
	ck_assert_str_eq(lint_rule(err, rule, sizeof(rule)), b->rule);
	X509_free(x);
}
END_TEST

/* What the rules allow: an RSA leaf with keyEncipherment, an EC leaf with keyAgreement, a
 * TLS leaf whose commonName is one of its SANs (a DNS name, an IP address). */
static void leaf_passes_with(EVP_PKEY *k, const char *ku, unsigned bits, const char *cn,
                             const char *san)
{
	struct lint_cert_profile p = profile_of(LEAF);
	struct lint_parties w = parties_of(LEAF);
	X509 *x = build(LEAF);
	char err[512] = "";

	leaf_key_ku(x, &p, &w, k, ku, bits);
	if (cn) {
		X509_NAME *n = name(cn);
		X509_set_subject_name(x, n);
		X509_NAME_free(n);
		set_ext(x, w.issuer, NID_subject_alt_name, san);
	}
	ck_assert_msg(lint_cert_tbs(&p, &w, x, err, sizeof(err)) == 0, "%s", err);
	X509_free(x);
}

START_TEST(key_usage_by_key_type_passes)
{
	leaf_passes_with(rsa2048, "critical,digitalSignature,keyEncipherment",
	                 LINT_KU_DIGITAL_SIGNATURE | LINT_KU_KEY_ENCIPHERMENT, NULL, NULL);
	leaf_passes_with(leaf_key, "critical,digitalSignature,keyAgreement",
	                 LINT_KU_DIGITAL_SIGNATURE | LINT_KU_KEY_AGREEMENT, NULL, NULL);
	leaf_passes_with(leaf_key, "critical,digitalSignature", LINT_KU_DIGITAL_SIGNATURE,
	                 "WWW.example.com", "DNS:www.example.com,DNS:example.com");
	leaf_passes_with(leaf_key, "critical,digitalSignature", LINT_KU_DIGITAL_SIGNATURE,
	                 "192.0.2.7", "DNS:www.example.com,IP:192.0.2.7");
}
END_TEST

/* A CA restricted to clientAuth (the operator-auth CA) has keyCertSign and cRLSign only: the
 * EKU/KU consistency rule is for end-entity certificates. */
START_TEST(ca_with_eku_constraint_passes)
{
	static const char *const eku[] = {"1.3.6.1.5.5.7.3.2"};
	struct lint_cert_profile p = profile_of(INTER);
	struct lint_parties w = parties_of(INTER);
	X509 *x = build(INTER);
	char err[512] = "";

	add_ext(x, root, NID_ext_key_usage, "clientAuth");
	p.eku = eku;
	p.n_eku = 1;
	ck_assert_msg(lint_cert_tbs(&p, &w, x, err, sizeof(err)) == 0, "%s", err);
	X509_free(x);
}
END_TEST

START_TEST(rule_of_a_finding)
{
	char rule[64];

	ck_assert_str_eq(lint_rule("key_ec_curve: the EC key is on secp224r1", rule, sizeof(rule)),
	                 "key_ec_curve");
	ck_assert_str_eq(lint_rule("the CRL: something", rule, sizeof(rule)), "lint");
	ck_assert_str_eq(lint_rule("", rule, sizeof(rule)), "lint");
	ck_assert_str_eq(lint_rule("nocolon", rule, sizeof(rule)), "lint");
}
END_TEST

static void on_warning(void *arg, const char *msg)
{
	snprintf(arg, 512, "%s", msg);
}

START_TEST(cross_outliving_issuer_warns)
{
	struct lint_cert_profile p = profile_of(CROSS);
	struct lint_parties w = parties_of(CROSS);
	X509 *x = build(CROSS);
	char err[512] = "", warned[512] = "";

	p.not_after = T2026 + 4000 * DAY;
	set_times(x, p.not_before, p.not_after);
	w.existing_ca = inter;
	w.warn = on_warning;
	w.warn_arg = warned;
	ck_assert_msg(lint_cert_tbs(&p, &w, x, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_nonnull(strstr(warned, "reaches outside its issuer's"));
	X509_free(x);
}
END_TEST

START_TEST(words_name_the_caller)
{
	struct lint_cert_profile p = profile_of(ROOT);
	struct lint_parties w = parties_of(ROOT);
	X509 *x = build(ROOT);
	char err[512] = "";

	p.words = (struct lint_words){"the request", "the policy", "cad"};
	p.not_after += 1;
	ck_assert_int_eq(lint_cert_tbs(&p, &w, x, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "time_matches_request: notAfter differs from the request");
	p.not_after -= 1;
	p.key_usage = LINT_KU_KEY_CERT_SIGN;
	ck_assert_int_eq(lint_cert_tbs(&p, &w, x, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "ku_matches_profile: keyUsage differs from the policy's key_usage");
	p.key_usage = LINT_KU_KEY_CERT_SIGN | LINT_KU_CRL_SIGN;
	w.subject_pub = other_key;
	ck_assert_int_eq(lint_cert_tbs(&p, &w, x, err, sizeof(err)), -1);
	ck_assert_str_eq(err,
	                 "subject_key_matches: the certificate's public key is not the key cad "
	                 "checked");
	X509_free(x);
}
END_TEST

/* ---- signed certificates ---- */

START_TEST(signed_with_another_digest_fails)
{
	struct lint_cert_profile p = profile_of(LEAF);
	struct lint_parties w = parties_of(LEAF);
	X509 *x = build(LEAF);
	char err[512] = "";

	sign(x, inter_key, EVP_sha384());
	ck_assert_int_eq(lint_cert_tbs(&p, &w, x, err, sizeof(err)), 0);
	ck_assert_int_eq(lint_cert_signed(&p, &w, x, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "is signed with ecdsa-with-SHA384, the caller asked for "
	                          "ecdsa-with-SHA256"),
	              "%s", err);
	X509_free(x);
}
END_TEST

START_TEST(signed_by_another_key_fails)
{
	struct lint_cert_profile p = profile_of(LEAF);
	struct lint_parties w = parties_of(LEAF);
	X509 *x = build(LEAF);
	char err[512] = "";

	sign(x, other_key, EVP_sha256());
	ck_assert_int_eq(lint_cert_signed(&p, &w, x, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "does not verify with the public key"));
	ck_assert_int_eq(lint_verify_cert_signature(x, X509_get0_pubkey(inter), err, sizeof(err)),
	                 -1);
	X509_free(x);
}
END_TEST

START_TEST(path_fails_before_the_issuer_is_valid)
{
	X509 *x = build(LEAF);
	char err[512] = "";

	sign(x, inter_key, EVP_sha256());
	ck_assert_int_eq(lint_path(x, inter, T2026 - DAY, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "path validation of the new certificate at 2025-12-31T00:00:00Z "
	                          "failed"),
	              "%s", err);
	X509_free(x);
}
END_TEST

START_TEST(sig_nid_follows_the_key)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);

	ck_assert_int_eq(lint_sig_nid(root_key, NID_sha384, 0), NID_ecdsa_with_SHA384);
	ck_assert_int_eq(lint_sig_nid(rsa, NID_sha256, 0), NID_sha256WithRSAEncryption);
	ck_assert_int_eq(lint_sig_nid(rsa, NID_sha256, 1), NID_rsassaPss);
	EVP_PKEY_free(rsa);
}
END_TEST

/* ---- CRLs ---- */

static struct lint_crl_profile crl_profile(void)
{
	return (struct lint_crl_profile){.this_update = T2026 + 10 * DAY,
	                                 .next_update = T2026 + 17 * DAY,
	                                 .number = "7",
	                                 .n_revoked = 2,
	                                 .hash_nid = NID_sha256};
}

static void add_entry(X509_CRL *crl, const char *serial_hex, time_t when, int reason,
                      int reason_crit)
{
	X509_REVOKED *r = X509_REVOKED_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *s;
	ASN1_TIME *t = ASN1_TIME_set(NULL, when);

	BN_hex2bn(&bn, serial_hex);
	s = BN_to_ASN1_INTEGER(bn, NULL);
	X509_REVOKED_set_serialNumber(r, s);
	X509_REVOKED_set_revocationDate(r, t);
	if (reason >= 0) {
		ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();
		ASN1_ENUMERATED_set(e, reason);
		X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, e, reason_crit, 0);
		ASN1_ENUMERATED_free(e);
	}
	X509_CRL_add0_revoked(crl, r);
	ASN1_INTEGER_free(s);
	ASN1_TIME_free(t);
	BN_free(bn);
}

/* A good, unsigned CRL of inter. */
static X509_CRL *build_crl(void)
{
	struct lint_crl_profile p = crl_profile();
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *tu = ASN1_TIME_set(NULL, p.this_update),
	          *nu = ASN1_TIME_set(NULL, p.next_update);
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509V3_CTX ctx;
	X509_EXTENSION *aki;

	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(inter));
	X509_CRL_set1_lastUpdate(crl, tu);
	X509_CRL_set1_nextUpdate(crl, nu);
	add_entry(crl, "1F2E3D4C5B6A", T2026 + 5 * DAY, 1, 0);
	add_entry(crl, "7A", T2026 + 6 * DAY, -1, 0);
	ASN1_INTEGER_set(num, 7);
	X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0);
	X509V3_set_ctx(&ctx, inter, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	ck_assert_ptr_nonnull(aki);
	X509_CRL_add_ext(crl, aki, -1);
	X509_EXTENSION_free(aki);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_INTEGER_free(num);
	return crl;
}

START_TEST(good_crl_passes)
{
	struct lint_crl_profile p = crl_profile();
	struct lint_parties w = {.issuer = inter};
	X509_CRL *crl = build_crl();
	char err[512] = "";

	ck_assert_msg(lint_crl_tbs(&p, &w, crl, err, sizeof(err)) == 0, "tbs: %s", err);
	ck_assert_int_gt(X509_CRL_sign(crl, inter_key, EVP_sha256()), 0);
	ck_assert_msg(lint_crl_signed(&p, &w, crl, err, sizeof(err)) == 0, "signed: %s", err);
	X509_CRL_free(crl);
}
END_TEST

struct bad_crl {
	void (*mutate)(X509_CRL *crl, struct lint_crl_profile *p, struct lint_parties *w);
	const char *finding;
	const char *rule;
};

#define CMUT(fn)                                                                                   \
	static void fn(UNUSED X509_CRL *crl, UNUSED struct lint_crl_profile *p,                    \
	               UNUSED struct lint_parties *w)

CMUT(crl_v1)
{
	X509_CRL_set_version(crl, 0);
}
CMUT(crl_issuer_differs)
{
	w->issuer = root;
}
CMUT(crl_no_issuer)
{
	w->issuer = NULL;
}
CMUT(crl_this_update_differs)
{
	p->this_update -= 1;
}
CMUT(crl_next_update_generalized)
{
	ASN1_GENERALIZEDTIME *t = ASN1_GENERALIZEDTIME_set(NULL, p->next_update);
	X509_CRL_set1_nextUpdate(crl, t);
	ASN1_GENERALIZEDTIME_free(t);
}
CMUT(crl_unexpected_ext)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_netscape_comment, "hello");
	ck_assert_ptr_nonnull(e);
	X509_CRL_add_ext(crl, e, -1);
	X509_EXTENSION_free(e);
}
CMUT(crl_no_aki)
{
	X509_EXTENSION_free(X509_CRL_delete_ext(
	    crl, X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1)));
}
CMUT(crl_number_critical)
{
	X509_EXTENSION_set_critical(
	    X509_CRL_get_ext(crl, X509_CRL_get_ext_by_NID(crl, NID_crl_number, -1)), 1);
}
CMUT(crl_number_differs)
{
	p->number = "8";
}
CMUT(crl_count_differs)
{
	p->n_revoked = 3;
}
CMUT(crl_serial_twice)
{
	add_entry(crl, "7A", T2026 + 6 * DAY, -1, 0);
	p->n_revoked = 3;
}
CMUT(crl_revoked_after_this_update)
{
	add_entry(crl, "7B", T2026 + 11 * DAY, -1, 0);
	p->n_revoked = 3;
}
CMUT(crl_reason_critical)
{
	add_entry(crl, "7C", T2026 + 6 * DAY, 4, 1);
	p->n_revoked = 3;
}
CMUT(crl_reason_unspecified)
{
	add_entry(crl, "7D", T2026 + 6 * DAY, 0, 0);
	p->n_revoked = 3;
}

static void add_idp(X509_CRL *crl, const char *uri, int crit)
{
	ISSUING_DIST_POINT *idp = ISSUING_DIST_POINT_new();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	ASN1_STRING_set(s, uri, -1);
	GENERAL_NAME_set0_value(g, GEN_URI, s);
	idp->distpoint = DIST_POINT_NAME_new();
	idp->distpoint->type = 0;
	idp->distpoint->name.fullname = sk_GENERAL_NAME_new_null();
	sk_GENERAL_NAME_push(idp->distpoint->name.fullname, g);
	ck_assert_int_eq(X509_CRL_add1_ext_i2d(crl, NID_issuing_distribution_point, idp, crit, 0),
	                 1);
	ISSUING_DIST_POINT_free(idp);
}
static void add_delta(X509_CRL *crl, long base, int crit)
{
	ASN1_INTEGER *b = ASN1_INTEGER_new();
	ASN1_INTEGER_set(b, base);
	ck_assert_int_eq(X509_CRL_add1_ext_i2d(crl, NID_delta_crl, b, crit, 0), 1);
	ASN1_INTEGER_free(b);
}
#define IDP_URI "http://crl.example.com/inter-3.crl"
CMUT(crl_full_with_idp)
{
	add_idp(crl, IDP_URI, 1);
}
CMUT(crl_shard_without_idp)
{
	p->idp_uri = IDP_URI;
}
CMUT(crl_idp_not_critical)
{
	add_idp(crl, IDP_URI, 0);
	p->idp_uri = IDP_URI;
}
CMUT(crl_idp_other_uri)
{
	add_idp(crl, "http://crl.example.com/inter-4.crl", 1);
	p->idp_uri = IDP_URI;
}
CMUT(crl_full_with_delta_indicator)
{
	add_delta(crl, 5, 1);
}
CMUT(crl_delta_without_indicator)
{
	p->delta_base = 5;
}
CMUT(crl_delta_indicator_not_critical)
{
	add_delta(crl, 5, 0);
	p->delta_base = 5;
}
CMUT(crl_delta_of_a_later_base)
{
	add_delta(crl, 9, 1);
	p->delta_base = 9;
}
CMUT(crl_delta_with_freshest)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	add_delta(crl, 5, 1);
	p->delta_base = 5;
	X509V3_set_ctx(&ctx, inter, NULL, NULL, crl, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_freshest_crl, "URI:http://crl.example.com/d.crl");
	ck_assert_ptr_nonnull(e);
	X509_CRL_add_ext(crl, e, -1);
	X509_EXTENSION_free(e);
}

static const struct bad_crl bad_crls[] = {
    {crl_v1, "the CRL is not version 2", "crl_version_2"},
    {crl_issuer_differs, "the CRL's issuer is not the issuer's subject name", "crl_issuer_name"},
    {crl_no_issuer, "checked against its issuer's certificate", "crl_issuer_given"},
    {crl_this_update_differs, "thisUpdate differs from the profile", "time_matches_request"},
    {crl_next_update_generalized, "nextUpdate (2026) must be a UTCTime", "time_encoding"},
    {crl_unexpected_ext, "the CRL has an unexpected extension", "ext_allowed"},
    {crl_no_aki, "the CRL has no authorityKeyIdentifier", "aki_present"},
    {crl_number_critical, "non-critical cRLNumber", "crl_number"},
    {crl_number_differs, "the cRLNumber differs from the profile", "crl_number"},
    {crl_count_differs, "the CRL lists 2 certificates, the profile 3", "crl_entry_count"},
    {crl_serial_twice, "a serial number twice", "crl_entry_unique"},
    {crl_revoked_after_this_update, "a revocation date is after thisUpdate", "crl_entry_date"},
    {crl_reason_critical, "a reasonCode is marked critical", "crl_reason_not_critical"},
    {crl_reason_unspecified, "reasonCode unspecified should be absent",
     "crl_reason_not_unspecified"},
    {crl_full_with_idp, "carries an Issuing Distribution Point", "crl_idp_absent"},
    {crl_shard_without_idp, "has no Issuing Distribution Point", "crl_idp_present"},
    {crl_idp_not_critical, "must be critical", "crl_idp_critical"},
    {crl_idp_other_uri, "is not the one fullName URI", "crl_idp_matches"},
    {crl_full_with_delta_indicator, "a full CRL carries a Delta CRL Indicator",
     "crl_delta_indicator"},
    {crl_delta_without_indicator, "needs a critical Delta CRL Indicator", "crl_delta_indicator"},
    {crl_delta_indicator_not_critical, "needs a critical Delta CRL Indicator",
     "crl_delta_indicator"},
    {crl_delta_of_a_later_base, "lower than its own cRLNumber", "crl_delta_indicator"},
    {crl_delta_with_freshest, "into full CRLs only", "crl_freshest"},
};

START_TEST(bad_crl_fails_its_check)
{
	const struct bad_crl *b = &bad_crls[_i];
	struct lint_crl_profile p = crl_profile();
	struct lint_parties w = {.issuer = inter};
	X509_CRL *crl = build_crl();
	char err[512] = "", rule[64];

	b->mutate(crl, &p, &w);
	ck_assert_msg(lint_crl_tbs(&p, &w, crl, err, sizeof(err)) == -1, "case %d passed", _i);
	ck_assert_msg(strstr(err, b->finding), "case %d: expected \"%s\", got \"%s\"", _i,
	              b->finding, err);
	ck_assert_str_eq(lint_rule(err, rule, sizeof(rule)), b->rule);
	X509_CRL_free(crl);
}
END_TEST

/* A shard's CRL with its critical IDP, and a delta CRL, pass. */
START_TEST(good_shard_and_delta_crls_pass)
{
	struct lint_crl_profile p = crl_profile();
	struct lint_parties w = {.issuer = inter};
	X509_CRL *crl = build_crl();
	char err[512] = "";

	add_idp(crl, IDP_URI, 1);
	p.idp_uri = IDP_URI;
	ck_assert_msg(lint_crl_tbs(&p, &w, crl, err, sizeof(err)) == 0, "shard: %s", err);
	X509_CRL_free(crl);
	crl = build_crl();
	p = crl_profile();
	add_delta(crl, 6, 1);
	p.delta_base = 6;
	ck_assert_msg(lint_crl_tbs(&p, &w, crl, err, sizeof(err)) == 0, "delta: %s", err);
	X509_CRL_free(crl);
}
END_TEST

START_TEST(crl_signed_by_another_key_fails)
{
	struct lint_crl_profile p = crl_profile();
	struct lint_parties w = {.issuer = inter};
	X509_CRL *crl = build_crl();
	char err[512] = "";

	ck_assert_int_gt(X509_CRL_sign(crl, other_key, EVP_sha256()), 0);
	ck_assert_int_eq(lint_crl_signed(&p, &w, crl, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "the CRL signature keyd made does not verify"));
	X509_CRL_free(crl);
}
END_TEST

START_TEST(crl_signed_with_another_digest_fails)
{
	struct lint_crl_profile p = crl_profile();
	struct lint_parties w = {.issuer = inter};
	X509_CRL *crl = build_crl();
	char err[512] = "";

	ck_assert_int_gt(X509_CRL_sign(crl, inter_key, EVP_sha512()), 0);
	ck_assert_int_eq(lint_crl_signed(&p, &w, crl, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "the CRL is signed with ecdsa-with-SHA512"), "%s", err);
	X509_CRL_free(crl);
}
END_TEST

/* ---- the signed bytes in hand (lint_cert_signature_der, as hsmca-cad checks) ---- */

/* A leaf built and linted as cad does, signed with key and md; its DER into *der. */
static X509 *signed_leaf(EVP_PKEY *key, const EVP_MD *md, unsigned char **der, int *len)
{
	X509 *x = build(LEAF);

	sign(x, key, md);
	*der = NULL;
	*len = i2d_X509(x, der);
	ck_assert_int_gt(*len, 0);
	return x;
}

/* lint_cert_signature_der on a leaf signed with key and md, its DER as signed: 0 or -1, the
 * refusal in err. */
static int lint_signed_leaf(EVP_PKEY *key, const EVP_MD *md, char *err, size_t errlen)
{
	struct lint_cert_profile p = profile_of(LEAF);
	struct lint_parties w = parties_of(LEAF);
	unsigned char *der;
	int len, rc;
	X509 *x = signed_leaf(key, md, &der, &len);

	rc = lint_cert_signature_der(&p, &w, x, der, (size_t)len, err, errlen);
	OPENSSL_free(der);
	X509_free(x);
	return rc;
}

START_TEST(signed_der_passes)
{
	char err[512] = "";

	ck_assert_msg(lint_signed_leaf(inter_key, EVP_sha256(), err, sizeof(err)) == 0, "%s", err);
}
END_TEST

START_TEST(signed_der_by_another_key_fails)
{
	char err[512] = "";

	ck_assert_int_eq(lint_signed_leaf(other_key, EVP_sha256(), err, sizeof(err)), -1);
	ck_assert_msg(!strncmp(err, "sig_verifies: ", 14), "%s", err);
}
END_TEST

START_TEST(signed_der_with_another_digest_fails)
{
	char err[512] = "";

	ck_assert_int_eq(lint_signed_leaf(inter_key, EVP_sha384(), err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "sig_alg_for_key: the certificate is signed with "
	                          "ecdsa-with-SHA384"),
	              "%s", err);
}
END_TEST

/* The signature is checked over the TBSCertificate's bytes in der, not over x: a byte of the
 * serial changed in der after signing fails it. */
START_TEST(signed_der_changed_after_signing_fails)
{
	struct lint_cert_profile p = profile_of(LEAF);
	struct lint_parties w = parties_of(LEAF);
	unsigned char *der;
	const unsigned char *sn;
	int len;
	X509 *x = signed_leaf(inter_key, EVP_sha256(), &der, &len);
	char err[512] = "";

	sn = ASN1_STRING_get0_data(X509_get0_serialNumber(x));
	for (int i = 0; i + 4 <= len; i++)
		if (!memcmp(der + i, sn, 4)) {
			der[i + 3] ^= 1;
			break;
		}
	ck_assert_int_eq(lint_cert_signature_der(&p, &w, x, der, (size_t)len, err, sizeof(err)),
	                 -1);
	ck_assert_msg(!strncmp(err, "sig_verifies: ", 14), "%s", err);
	OPENSSL_free(der);
	X509_free(x);
}
END_TEST

START_TEST(signed_der_not_one_certificate_fails)
{
	struct lint_cert_profile p = profile_of(LEAF);
	struct lint_parties w = parties_of(LEAF);
	unsigned char *der, *longer;
	int len;
	X509 *x = signed_leaf(inter_key, EVP_sha256(), &der, &len);
	char err[512] = "";

	/* cut short, and with a byte after it */
	ck_assert_int_eq(lint_cert_signature_der(&p, &w, x, der, (size_t)len - 1, err, sizeof(err)),
	                 -1);
	ck_assert_msg(strstr(err, "is not one DER Certificate"), "%s", err);
	longer = OPENSSL_malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(longer);
	memcpy(longer, der, (size_t)len);
	longer[len] = 0;
	ck_assert_int_eq(
	    lint_cert_signature_der(&p, &w, x, longer, (size_t)len + 1, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "is not one DER Certificate"), "%s", err);
	OPENSSL_free(longer);
	OPENSSL_free(der);
	X509_free(x);
}
END_TEST

/* RSASSA-PSS carries its parameters in the algorithm: verified the way X509_verify does. */
START_TEST(signed_der_rsa_pss_passes)
{
	struct lint_cert_profile p = profile_of(LEAF);
	struct lint_parties w = parties_of(LEAF);
	X509 *x = build(LEAF);
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *der = NULL;
	char err[512] = "";
	int len;

	ck_assert_int_eq(EVP_DigestSignInit(mctx, &pctx, EVP_sha256(), NULL, rsa2048), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
	ck_assert_int_gt(X509_sign_ctx(x, mctx), 0);
	len = i2d_X509(x, &der);
	ck_assert_int_gt(len, 0);
	p.rsa_pss = 1;
	w.issuer_pub = rsa2048;
	ck_assert_msg(lint_cert_signature_der(&p, &w, x, der, (size_t)len, err, sizeof(err)) == 0,
	              "%s", err);
	w.issuer_pub = rsa1024;
	ck_assert_int_eq(lint_cert_signature_der(&p, &w, x, der, (size_t)len, err, sizeof(err)),
	                 -1);
	ck_assert_msg(!strncmp(err, "sig_verifies: ", 14), "%s", err);
	OPENSSL_free(der);
	EVP_MD_CTX_free(mctx);
	X509_free(x);
}
END_TEST

/* The caller's SubjectPublicKeyInfo DER, when given, is what the certificate's key is
 * compared with. */
START_TEST(subject_spki_is_compared)
{
	struct lint_cert_profile p = profile_of(LEAF);
	struct lint_parties w = parties_of(LEAF);
	X509 *x = build(LEAF);
	unsigned char *mine = NULL, *other = NULL;
	int ml = i2d_PUBKEY(leaf_key, &mine), ol = i2d_PUBKEY(other_key, &other);
	char err[512] = "";

	ck_assert(ml > 0 && ol > 0);
	w.subject_spki = mine;
	w.subject_spki_len = (size_t)ml;
	ck_assert_msg(lint_cert_tbs(&p, &w, x, err, sizeof(err)) == 0, "%s", err);
	w.subject_spki = other;
	w.subject_spki_len = (size_t)ol;
	ck_assert_int_eq(lint_cert_tbs(&p, &w, x, err, sizeof(err)), -1);
	ck_assert_msg(!strncmp(err, "subject_key_matches: ", 21), "%s", err);
	w.subject_spki = mine;
	w.subject_spki_len = (size_t)ml - 1;
	ck_assert_int_eq(lint_cert_tbs(&p, &w, x, err, sizeof(err)), -1);
	ck_assert_msg(!strncmp(err, "subject_key_matches: ", 21), "%s", err);
	OPENSSL_free(mine);
	OPENSSL_free(other);
	X509_free(x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lint");
	TCase *tc = tcase_create("lint");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, good_root_passes);
	tcase_add_test(tc, good_intermediate_passes);
	tcase_add_test(tc, good_leaf_passes);
	tcase_add_test(tc, good_ocsp_signer_passes);
	tcase_add_loop_test(tc, bad_certificate_fails_its_check, 0,
	                    (int)(sizeof(bad_certs) / sizeof(bad_certs[0])));
	tcase_add_test(tc, key_usage_by_key_type_passes);
	tcase_add_test(tc, rule_of_a_finding);
	tcase_add_test(tc, ca_with_eku_constraint_passes);
	tcase_add_test(tc, cross_outliving_issuer_warns);
	tcase_add_test(tc, words_name_the_caller);
	tcase_add_test(tc, signed_with_another_digest_fails);
	tcase_add_test(tc, signed_by_another_key_fails);
	tcase_add_test(tc, path_fails_before_the_issuer_is_valid);
	tcase_add_test(tc, sig_nid_follows_the_key);
	tcase_add_test(tc, good_crl_passes);
	tcase_add_loop_test(tc, bad_crl_fails_its_check, 0,
	                    (int)(sizeof(bad_crls) / sizeof(bad_crls[0])));
	tcase_add_test(tc, good_shard_and_delta_crls_pass);
	tcase_add_test(tc, crl_signed_by_another_key_fails);
	tcase_add_test(tc, crl_signed_with_another_digest_fails);
	tcase_add_test(tc, signed_der_passes);
	tcase_add_test(tc, signed_der_by_another_key_fails);
	tcase_add_test(tc, signed_der_with_another_digest_fails);
	tcase_add_test(tc, signed_der_changed_after_signing_fails);
	tcase_add_test(tc, signed_der_not_one_certificate_fails);
	tcase_add_test(tc, signed_der_rsa_pss_passes);
	tcase_add_test(tc, subject_spki_is_compared);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
