/* keyd's typed signing end to end (SIGN_DATA, docs/keyd.md): a grant names the kinds of data a
 * client may have signed with a key, and keyd reads the kind, the cA flag, the issuer and a
 * self-signed certificate's public key from the data itself. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "harness.h"
#include "keyd_client.h"
#include "keyd_proto.h"

static struct harness h;
static struct keyd_client *cli;
static EVP_PKEY *soft; /* a software key: fills TBS signature fields and SPKIs not keyd's */
static char yaml[4096];

static void gen(const char *label)
{
	struct keyd_err err;
	struct keyd_key k;

	ck_assert_msg(keyd_client_generate(cli, label, KEYD_KEY_EC, KEYD_CURVE_P256, &k, &err) ==
	                  KEYD_OK,
	              "generate %s: %s", label, err.msg);
}

static EVP_PKEY *keyd_pub(const char *label)
{
	struct keyd_key k;
	struct keyd_err err;
	const unsigned char *p;
	EVP_PKEY *pk;

	ck_assert_int_eq(keyd_client_get_pubkey(cli, label, &k, &err), KEYD_OK);
	p = k.spki;
	pk = d2i_PUBKEY(NULL, &p, (long)k.spki_len);
	ck_assert_ptr_nonnull(pk);
	return pk;
}

/* A key's certificate file: any certificate with this subject (keyd reads only that). */
static void write_cert(const char *path, const char *subject)
{
	X509 *x = X509_new();
	X509_NAME *n = harness_cn(subject);
	FILE *f;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, soft);
	ck_assert_int_gt(X509_sign(x, soft, EVP_sha256()), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
	X509_NAME_free(n);
}

/* Keys: ocsp (ocsp-response only), ca (certificate and crl, with its certificate CN=Test CA),
 * root (ca-certificate, no certificate yet), star ("*"), tls (digest). */
static void setup(void)
{
	struct harness_opts o = {0};
	char cert[600];

	soft = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(soft);
	ck_assert_msg(harness_start(&h, NULL) == 0, "harness did not start");
	cli = keyd_client_new(h.socket, 5000);
	gen("ocsp");
	gen("ca");
	gen("root");
	gen("star");
	gen("tls");
	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	snprintf(cert, sizeof(cert), "%s/ca.pem", h.dir);
	write_cert(cert, "Test CA");
	snprintf(yaml, sizeof(yaml),
	         "  - name: typed\n"
	         "    uid: %u\n"
	         "    grants:\n"
	         "      - keys: [ocsp]\n"
	         "        operations: [get-public-key, sign]\n"
	         "        kinds: [ocsp-response]\n"
	         "      - keys: [ca]\n"
	         "        operations: [get-public-key, sign]\n"
	         "        kinds: [certificate, crl]\n"
	         "      - keys: [root]\n"
	         "        operations: [get-public-key, sign]\n"
	         "        kinds: [ca-certificate]\n"
	         "      - keys: [star]\n"
	         "        operations: [get-public-key, sign]\n"
	         "        kinds: [\"*\"]\n"
	         "      - keys: [tls]\n"
	         "        operations: [get-public-key, sign]\n"
	         "        kinds: [digest]\n"
	         "      - keys: [\"*\"]\n"
	         "        operations: [metrics]\n"
	         "key_certificates:\n"
	         "  - key: ca\n"
	         "    certificate: %s\n"
	         "  - key: root\n"
	         "    certificate: %s/root.pem\n",
	         (unsigned)getuid(), cert, h.dir);
	o.clients_yaml = yaml;
	ck_assert_int_eq(harness_write_config(&h, &o), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
}

static void teardown(void)
{
	ck_assert_msg(!harness_log_contains(&h, "Sanitizer") &&
	                  !harness_log_contains(&h, "runtime error"),
	              "sanitizer report in %s", h.log);
	keyd_client_free(cli);
	cli = NULL;
	EVP_PKEY_free(soft);
	soft = NULL;
	harness_stop(&h);
}

/* A TBSCertificate: issuer and subject names, cA (-1: no basicConstraints), the SPKI of pub. */
static size_t tbs_cert(const char *issuer, const char *subject, int ca, EVP_PKEY *pub,
                       uint8_t **der)
{
	return harness_tbs_cert(&(struct harness_tbs_cert){.version = 3,
	                                                   .serial = 77,
	                                                   .issuer = issuer,
	                                                   .subject = subject,
	                                                   .bc = ca < 0 ? NULL
	                                                         : ca   ? "critical,CA:TRUE"
	                                                                : "critical,CA:FALSE",
	                                                   .pub = pub,
	                                                   .signer = soft},
	                        der);
}

static size_t tbs_crl(const char *issuer, int entries, uint8_t **der)
{
	return harness_tbs_crl(&(struct harness_tbs_crl){.v2 = 1,
	                                                 .issuer = issuer,
	                                                 .entries = entries,
	                                                 .first_serial = 0x1000000000LL,
	                                                 .next_update = 1,
	                                                 .signer = soft},
	                       der);
}

/* An OCSP ResponseData: responder by key hash, producedAt, no responses. */
static const uint8_t ocsp_rd[] = {0x30, 0x1b, 0xa2, 0x06, 0x04, 0x04, 1,   2,    3,   4,
                                  0x18, 0x0f, '2',  '0',  '2',  '6',  '0', '1',  '0', '1',
                                  '0',  '0',  '0',  '0',  '0',  '0',  'Z', 0x30, 0x00};

/* Sign through keyd; on success the signature must verify with the key over the data. */
static int sign(const char *label, const uint8_t *d, size_t n, struct keyd_err *err)
{
	uint8_t sig[KEYD_SIG_MAX];
	size_t siglen = sizeof(sig);
	int r = keyd_client_sign_data(cli, label, KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, d, n, sig,
	                              &siglen, err);

	if (r == KEYD_OK) {
		EVP_PKEY *pk = keyd_pub(label);
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		ck_assert_int_eq(EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, pk), 1);
		ck_assert_int_eq(EVP_DigestVerify(m, sig, siglen, d, n), 1);
		EVP_MD_CTX_free(m);
		EVP_PKEY_free(pk);
	}
	return r;
}

static void refused(const char *label, const uint8_t *d, size_t n, const char *why)
{
	struct keyd_err err;
	int r = sign(label, d, n, &err);

	ck_assert_msg(r == KEYD_E_DENIED, "%s: %s, expected denied (%s)", label,
	              keyd_status_name(r), why);
	ck_assert_msg(strstr(err.msg, why), "%s: reason \"%s\" does not say \"%s\"", label, err.msg,
	              why);
}

static void signs(const char *label, const uint8_t *d, size_t n)
{
	struct keyd_err err;
	int r = sign(label, d, n, &err);

	ck_assert_msg(r == KEYD_OK, "%s: %s", label, err.msg);
}

static int metrics_has(const char *s)
{
	static char text[KEYD_METRICS_MAX + 1];
	struct keyd_err err;

	ck_assert_int_eq(keyd_client_metrics(cli, text, sizeof(text), &err), KEYD_OK);
	return strstr(text, s) != NULL;
}

START_TEST(ocsp_grant_signs_only_ocsp_responses)
{
	uint8_t *cert, *crl;
	size_t ncert = tbs_cert("Test CA", "www.example", 0, soft, &cert);
	size_t ncrl = tbs_crl("Test CA", 3, &crl);

	signs("ocsp", ocsp_rd, sizeof(ocsp_rd));
	refused("ocsp", cert, ncert, "kind certificate not granted to client typed for key ocsp");
	refused("ocsp", crl, ncrl, "kind crl not granted");
	ck_assert(harness_log_contains(&h, "kind certificate not granted"));
	ck_assert(metrics_has(
	    "hsmca_keyd_sign_refusals_total{kind=\"certificate\",reason=\"kind-not-granted\"} 1"));
	ck_assert(metrics_has(
	    "hsmca_keyd_sign_refusals_total{kind=\"crl\",reason=\"kind-not-granted\"} 1"));
	OPENSSL_free(cert);
	OPENSSL_free(crl);
}
END_TEST

START_TEST(certificate_grant_refuses_ca_and_wrong_issuer)
{
	uint8_t *d;
	size_t n;

	n = tbs_cert("Test CA", "www.example", 0, soft, &d);
	signs("ca", d, n);
	OPENSSL_free(d);
	n = tbs_cert("Test CA", "www.example", -1, soft, &d);
	signs("ca", d, n);
	OPENSSL_free(d);
	n = tbs_cert("Test CA", "Sub CA", 1, soft, &d);
	refused("ca", d, n, "kind ca-certificate not granted");
	OPENSSL_free(d);
	n = tbs_cert("Other CA", "www.example", 0, soft, &d);
	refused("ca", d, n, "issuer is not the subject of key ca's certificate");
	OPENSSL_free(d);
	n = tbs_crl("Other CA", 2, &d);
	refused("ca", d, n, "CRL's issuer is not the subject");
	OPENSSL_free(d);
	n = tbs_crl("Test CA", 2, &d);
	signs("ca", d, n);
	OPENSSL_free(d);
	ck_assert(metrics_has(
	    "hsmca_keyd_sign_refusals_total{kind=\"certificate\",reason=\"wrong-issuer\"} 1"));
	ck_assert(
	    metrics_has("hsmca_keyd_sign_refusals_total{kind=\"crl\",reason=\"wrong-issuer\"} 1"));
}
END_TEST

START_TEST(self_signed_only_as_root_with_own_key)
{
	EVP_PKEY *pub = keyd_pub("root");
	uint8_t *d;
	size_t n;

	n = tbs_cert("Root", "Root", 1, soft, &d);
	refused("root", d, n, "must carry key root's own public key");
	OPENSSL_free(d);
	n = tbs_cert("Root", "Root", 0, pub, &d);
	refused("root", d, n, "kind certificate not granted");
	OPENSSL_free(d);
	n = tbs_cert("Root", "Root", 1, pub, &d);
	signs("root", d, n);
	/* once the root's certificate is in place (keyd notices the new file), the key makes no
	 * second self-signed certificate, and signs only as that certificate's subject */
	{
		char path[600];
		uint8_t *sub;
		size_t nsub;
		snprintf(path, sizeof(path), "%s/root.pem", h.dir);
		write_cert(path, "Root");
		refused("root", d, n, "key root already has its certificate");
		nsub = tbs_cert("Root", "Sub CA", 1, soft, &sub);
		signs("root", sub, nsub);
		OPENSSL_free(sub);
		nsub = tbs_cert("Not Root", "Sub CA", 1, soft, &sub);
		refused("root", sub, nsub, "issuer is not the subject of key root's certificate");
		OPENSSL_free(sub);
	}
	OPENSSL_free(d);
	/* star has every kind but digest: a self-signed end-entity certificate is still refused */
	EVP_PKEY_free(pub);
	pub = keyd_pub("star");
	n = tbs_cert("Self", "Self", 0, pub, &d);
	refused("star", d, n, "self-signed certificate must be a CA certificate");
	OPENSSL_free(d);
	EVP_PKEY_free(pub);
	ck_assert(metrics_has("hsmca_keyd_sign_refusals_total{kind=\"ca-certificate\","
	                      "reason=\"self-signed-not-allowed\"} 2"));
}
END_TEST

START_TEST(digest_only_by_name)
{
	uint8_t tls[130], dgst[32] = {1}, sig[KEYD_SIG_MAX], *d;
	size_t siglen = sizeof(sig), n;
	struct keyd_err err;

	memset(tls, ' ', 64);
	memcpy(tls + 64, "TLS 1.3, server CertificateVerify", 33);
	memset(tls + 97, 0xab, 33);
	/* "*" is every kind but digest */
	refused("star", tls, sizeof(tls), "kind digest not granted to client typed for key star");
	ck_assert_int_eq(keyd_client_sign(cli, "star", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, dgst,
	                                  32, sig, &siglen, &err),
	                 KEYD_E_DENIED);
	ck_assert_ptr_nonnull(strstr(err.msg, "kind digest"));
	signs("star", ocsp_rd, sizeof(ocsp_rd));
	n = tbs_cert("Any CA", "www.example", 0, soft, &d);
	signs("star", d, n);
	/* digest by name: anything, a precomputed digest too */
	signs("tls", tls, sizeof(tls));
	signs("tls", d, n);
	siglen = sizeof(sig);
	ck_assert_int_eq(keyd_client_sign(cli, "tls", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, dgst, 32,
	                                  sig, &siglen, &err),
	                 KEYD_OK);
	/* and ocsp, granted ocsp-response only, has no digest */
	refused("ocsp", tls, sizeof(tls), "kind digest not granted");
	siglen = sizeof(sig);
	ck_assert_int_eq(keyd_client_sign(cli, "ocsp", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0, dgst,
	                                  32, sig, &siglen, &err),
	                 KEYD_E_DENIED);
	OPENSSL_free(d);
}
END_TEST

START_TEST(large_crl_streams)
{
	uint8_t *d;
	size_t n = tbs_crl("Test CA", 40000, &d); /* about 1.3 MB: 20 frames and more */

	ck_assert_uint_gt(n, 8 * KEYD_CHUNK_MAX);
	signs("ca", d, n);
	/* the kind and issuer come from the first frame: refused, and keyd keeps serving */
	refused("ocsp", d, n, "kind crl not granted");
	signs("ca", d, n);
	OPENSSL_free(d);
	n = tbs_crl("Other CA", 40000, &d);
	refused("ca", d, n, "CRL's issuer is not the subject");
	OPENSSL_free(d);
	signs("ocsp", ocsp_rd, sizeof(ocsp_rd));
}
END_TEST

static EVP_PKEY *store_load(const char *uri)
{
	OSSL_STORE_CTX *sc = OSSL_STORE_open_ex(uri, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	EVP_PKEY *pk = NULL;

	ck_assert_ptr_nonnull(sc);
	while (!pk && !OSSL_STORE_eof(sc)) {
		OSSL_STORE_INFO *info = OSSL_STORE_load(sc);
		if (!info)
			break;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			pk = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	OSSL_STORE_close(sc);
	ck_assert_ptr_nonnull(pk);
	return pk;
}

/* OpenSSL callers change nothing: X509_sign through the provider is typed signing. */
START_TEST(provider_signs_through_typed_signing)
{
	OSSL_PROVIDER *pk, *pd;
	EVP_PKEY *ocsp, *ca;
	X509 *x = X509_new();
	X509_CRL *crl = X509_CRL_new();
	X509_NAME *in = harness_cn("Test CA"), *sn = harness_cn("www.example");
	ASN1_TIME *t = X509_gmtime_adj(NULL, 0);
	char buf[2048] = "";

	setenv("HSMCA_KEYD_SOCKET", h.socket, 1);
	ck_assert_int_eq(OSSL_PROVIDER_set_default_search_path(NULL, getenv("HSMCA_PROVIDER_DIR")),
	                 1);
	pk = OSSL_PROVIDER_load(NULL, "keyd");
	pd = OSSL_PROVIDER_load(NULL, "default");
	ck_assert_ptr_nonnull(pk);
	ck_assert_ptr_nonnull(pd);
	ocsp = store_load("keyd:label=ocsp");
	ca = store_load("keyd:label=ca");

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 5);
	X509_set_issuer_name(x, in);
	X509_set_subject_name(x, sn);
	X509_set1_notBefore(x, t);
	X509_set1_notAfter(x, t);
	X509_set_pubkey(x, soft);
	ERR_clear_error();
	ck_assert_int_le(X509_sign(x, ocsp, EVP_sha256()), 0);
	{
		/* the provider's reason, with keyd's message as the error's data */
		BIO *m = BIO_new(BIO_s_mem());
		int n;
		ERR_print_errors(m);
		n = BIO_read(m, buf, (int)sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		BIO_free(m);
	}
	ck_assert_msg(strstr(buf, "kind certificate not granted"), "error: %s", buf);
	ck_assert_int_gt(X509_sign(x, ca, EVP_sha256()), 0);
	ck_assert_int_eq(X509_verify(x, ca), 1);

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, in);
	X509_CRL_set1_lastUpdate(crl, t);
	ck_assert_int_gt(X509_CRL_sign(crl, ca, EVP_sha256()), 0);
	ck_assert_int_eq(X509_CRL_verify(crl, ca), 1);

	EVP_PKEY_free(ocsp);
	EVP_PKEY_free(ca);
	X509_free(x);
	X509_CRL_free(crl);
	X509_NAME_free(in);
	X509_NAME_free(sn);
	ASN1_TIME_free(t);
	OSSL_PROVIDER_unload(pk);
	OSSL_PROVIDER_unload(pd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyd-typed");
	TCase *tc = tcase_create("typed");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 180);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, ocsp_grant_signs_only_ocsp_responses);
	tcase_add_test(tc, certificate_grant_refuses_ca_and_wrong_issuer);
	tcase_add_test(tc, self_signed_only_as_root_with_own_key);
	tcase_add_test(tc, digest_only_by_name);
	tcase_add_test(tc, large_crl_streams);
	tcase_add_test(tc, provider_signs_through_typed_signing);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
