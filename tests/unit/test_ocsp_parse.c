/* hsmca-ocspd's parsers alone: HTTP/1.1 framing, the GET form's decoding, the DER
 * OCSPRequest and the configuration file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "ocsp_parse.h"
#include "ocspd.h"

static const struct ocsp_http_limits lim = {1024, 8, 512};

static int parse(const char *s, struct ocsp_http_req *r)
{
	return ocsp_http_parse(s, strlen(s), &lim, r);
}

START_TEST(http_get_and_keep_alive)
{
	struct ocsp_http_req r;
	const char *s = "GET /abc HTTP/1.1\r\nHost: x\r\n\r\nGET /";

	ck_assert_int_eq(parse(s, &r), 30);
	ck_assert_int_eq(r.method, OCSP_HTTP_GET);
	ck_assert_int_eq(r.target_len, 4);
	ck_assert(!memcmp(r.target, "/abc", 4));
	ck_assert(r.keep_alive);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &r) > 0, 1);
	ck_assert(!r.keep_alive);
	ck_assert_int_eq(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0, 1);
	ck_assert(!r.keep_alive);
	ck_assert_int_eq(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r) > 0, 1);
	ck_assert(r.keep_alive);
}
END_TEST

START_TEST(http_post_needs_its_whole_body)
{
	struct ocsp_http_req r;
	const char *s = "POST / HTTP/1.1\r\nContent-Type: application/ocsp-request\r\n"
	                "Content-Length: 5\r\n\r\nabcde";

	ck_assert_int_eq(ocsp_http_parse(s, strlen(s) - 1, &lim, &r), 0);
	ck_assert_int_eq(parse(s, &r), (int)strlen(s));
	ck_assert_int_eq(r.body_len, 5);
	ck_assert_int_eq(r.content_type, 1);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 0"
	                       "\r\n\r\n",
	                       &r) > 0,
	                 1);
	ck_assert_int_eq(r.content_type, -1);
}
END_TEST

START_TEST(http_refusals)
{
	struct ocsp_http_req r;
	char big[2048];

	ck_assert_int_eq(parse("POST / HTTP/1.1\r\n\r\n", &r), -411);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nContent-Length: 513\r\n\r\n", &r), -413);
	ck_assert_int_eq(
	    parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", &r), -400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &r), -400);
	ck_assert_int_eq(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r), -501);
	ck_assert_int_eq(parse("PUT / HTTP/1.1\r\n\r\n", &r), -405);
	ck_assert_int_eq(parse("GET / HTTP/2.0\r\n\r\n", &r), -505);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\n folded\r\n\r\n", &r), -400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", &r), -400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\nHost: x\n\n", &r), -400);
	ck_assert_int_eq(parse("GET /a b HTTP/1.1\r\n\r\n", &r), -400);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\n"
	                       "G: 1\r\nH: 1\r\nI: 1\r\n\r\n",
	                       &r),
	                 -431);
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	ck_assert_int_eq(ocsp_http_parse(big, sizeof(big), &lim, &r), -431);
	ck_assert_int_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n", &r), 0);
}
END_TEST

/* A request for serial (hex) under a throwaway issuer. */
static size_t request(const EVP_MD *md, const char *serial_hex, int nonce_len, int n_ids,
                      uint8_t *out)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_NAME *name = X509_NAME_new();
	X509 *x = X509_new();
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	unsigned char *der = NULL;
	int len;

	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"ca", -1, -1,
	                           0);
	X509_set_subject_name(x, name);
	X509_set_pubkey(x, k);
	for (int i = 0; i < n_ids; i++) {
		BIGNUM *bn = NULL;
		ASN1_INTEGER *ai;
		BN_hex2bn(&bn, serial_hex);
		ai = BN_to_ASN1_INTEGER(bn, NULL);
		ck_assert(OCSP_request_add0_id(
		    req, OCSP_cert_id_new(md, name, X509_get0_pubkey_bitstr(x), ai)));
		ASN1_INTEGER_free(ai);
		BN_free(bn);
	}
	if (nonce_len)
		OCSP_request_add1_nonce(req, NULL, nonce_len);
	len = i2d_OCSP_REQUEST(req, &der);
	memcpy(out, der, (size_t)len);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	X509_free(x);
	X509_NAME_free(name);
	EVP_PKEY_free(k);
	return (size_t)len;
}

START_TEST(der_request_with_nonce)
{
	uint8_t der[8192];
	struct ocsp_req r;
	size_t n = request(EVP_sha1(), "00ab12", 16, 1, der);

	ck_assert_int_eq(ocsp_req_parse(der, n, &r), OCSP_REQ_OK);
	ck_assert_int_eq(r.n_certs, 1);
	ck_assert_int_eq(r.certs[0].hash, OCSP_HASH_SHA1);
	ck_assert_int_eq(r.certs[0].serial_len, 2);
	ck_assert_int_eq(r.certs[0].serial[0], 0xab);
	ck_assert(r.has_nonce);
	ck_assert_int_eq(r.nonce_len, 16);
	/* a leading zero byte of a positive INTEGER is not part of the serial */
	n = request(EVP_sha256(), "80", 0, 3, der);
	ck_assert_int_eq(ocsp_req_parse(der, n, &r), OCSP_REQ_OK);
	ck_assert_int_eq(r.n_certs, 3);
	ck_assert_int_eq(r.certs[2].hash, OCSP_HASH_SHA256);
	ck_assert_int_eq(r.certs[2].serial_len, 1);
	ck_assert_int_eq(r.certs[2].serial[0], 0x80);
	ck_assert(!r.has_nonce);
}
END_TEST

START_TEST(der_refusals)
{
	uint8_t der[8192];
	struct ocsp_req r;
	size_t n = request(EVP_sha1(), "01", 0, 1, der);

	ck_assert_int_eq(ocsp_req_parse(der, n - 1, &r), OCSP_REQ_MALFORMED); /* cut short */
	der[n] = 0;
	ck_assert_int_eq(ocsp_req_parse(der, n + 1, &r), OCSP_REQ_MALFORMED); /* trailing */
	n = request(EVP_sha1(), "01", 33, 1, der);
	ck_assert_int_eq(ocsp_req_parse(der, n, &r), OCSP_REQ_MALFORMED); /* nonce too long */
	n = request(EVP_sha1(), "01", 0, OCSP_REQ_MAX_CERTS + 1, der);
	ck_assert_int_eq(ocsp_req_parse(der, n, &r), OCSP_REQ_TOO_MANY);
	n = request(EVP_md5(), "01", 0, 1, der);
	ck_assert_int_eq(ocsp_req_parse(der, n, &r), OCSP_REQ_UNSUPPORTED_HASH);
	/* indefinite length (BER) is not DER */
	{
		const uint8_t ber[] = {0x30, 0x80, 0x30, 0x00, 0x00, 0x00};
		ck_assert_int_eq(ocsp_req_parse(ber, sizeof(ber), &r), OCSP_REQ_MALFORMED);
	}
}
END_TEST

START_TEST(get_form_decoding)
{
	uint8_t out[16];

	ck_assert_int_eq(ocsp_get_decode("MEEw", 4, out, sizeof(out)), 3);
	ck_assert_int_eq(out[0], 0x30);
	ck_assert_int_eq(ocsp_get_decode("MA%3D%3D", 8, out, sizeof(out)), 1);
	ck_assert_int_eq(ocsp_get_decode("MA==", 4, out, sizeof(out)), 1);
	ck_assert_int_eq(ocsp_get_decode("MA", 2, out, sizeof(out)), 1);
	ck_assert_int_eq(ocsp_get_decode("MA=x", 4, out, sizeof(out)), -1);
	ck_assert_int_eq(ocsp_get_decode("M%4", 3, out, sizeof(out)), -1);
	ck_assert_int_eq(ocsp_get_decode("M!EE", 4, out, sizeof(out)), -1);
	ck_assert_int_eq(ocsp_get_decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAA", 28, out, sizeof(out)), -1);
}
END_TEST

START_TEST(config_defaults_and_errors_name_the_line)
{
	struct ocspd_config c;
	char err[512];
	const char *ok = "listen: {port: 9999}\npath: /ocsp/\nlimits: {max_certs_per_request: 4}\n";
	const char *bad = "listen: {port: 9999}\nlimits:\n  max_certs_per_request: 99\n";

	ck_assert_int_eq(ocspd_config_parse("t.yaml", ok, strlen(ok), &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.listen_port, 9999);
	ck_assert_str_eq(c.path, "/ocsp/");
	ck_assert_int_eq(c.max_certs_per_request, 4);
	ck_assert_int_eq(c.workers, 2);
	ck_assert_int_eq(ocspd_config_parse("t.yaml", bad, strlen(bad), &c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "t.yaml:3") && strstr(err, "max_certs_per_request"), "%s", err);
	ck_assert_int_eq(ocspd_config_parse("t.yaml", "nope: 1\n", 8, &c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "nope"), "%s", err);
	ck_assert_int_eq(ocspd_config_parse("t.yaml", "path: ocsp\n", 11, &c, err, sizeof(err)),
	                 -1);
	/* /metrics only on a listener of its own: none by default, a port it must name, not
	 * the OCSP listener's */
	ck_assert_int_eq(ocspd_config_parse("t.yaml", ok, strlen(ok), &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.metrics_port, 0);
	{
		const char *m = "listen: {port: 9999}\nmetrics_listen: {port: 9180}\n";
		const char *noport = "metrics_listen: {address: 127.0.0.1}\n";
		const char *same = "listen: {port: 9999}\nmetrics_listen: {port: 9999}\n";
		ck_assert_int_eq(ocspd_config_parse("t.yaml", m, strlen(m), &c, err, sizeof(err)),
		                 0);
		ck_assert_int_eq(c.metrics_port, 9180);
		ck_assert_str_eq(c.metrics_address, "127.0.0.1");
		ck_assert_int_eq(
		    ocspd_config_parse("t.yaml", noport, strlen(noport), &c, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, "metrics_listen") && strstr(err, "needs a port"), "%s",
		              err);
		ck_assert_int_eq(
		    ocspd_config_parse("t.yaml", same, strlen(same), &c, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, "must differ from listen"), "%s", err);
	}
}
END_TEST

START_TEST(example_config_is_valid)
{
	struct ocspd_config c;
	char path[1024], err[512];

	snprintf(path, sizeof(path), "%s/deploy/ocspd.example.yaml", getenv("HSMCA_SRC"));
	ck_assert_msg(ocspd_config_load(path, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(c.n_responder_certs, 1);
	ck_assert_int_eq(c.listen_port, 8080);
	ck_assert_int_eq(c.metrics_port, 9180);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ocsp-parse");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, http_get_and_keep_alive);
	tcase_add_test(tc, http_post_needs_its_whole_body);
	tcase_add_test(tc, http_refusals);
	tcase_add_test(tc, der_request_with_nonce);
	tcase_add_test(tc, der_refusals);
	tcase_add_test(tc, get_form_decoding);
	tcase_add_test(tc, config_defaults_and_errors_name_the_line);
	tcase_add_test(tc, example_config_is_valid);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
