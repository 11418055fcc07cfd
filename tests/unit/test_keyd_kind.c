/* keyd's reader of what SIGN_DATA signs (hsm/keyd/keyd_kind.h): each kind as OpenSSL encodes
 * it, and truncated, oversized, lying and foreign data, which must all read as "digest". */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "harness.h"
#include "keyd_kind.h"

static EVP_PKEY *key;

static void setup(void)
{
	key = EVP_EC_gen("P-256");
	if (!key)
		abort();
}

static void teardown(void)
{
	EVP_PKEY_free(key);
	key = NULL;
}

/* A TBSCertificate: version 1, 2 or 3; bc NULL for no basicConstraints. */
static size_t tbs_cert(int version, const char *bc, const char *issuer, uint8_t **der)
{
	/* the signature algorithm of the TBS is set by signing; any will do */
	return harness_tbs_cert(&(struct harness_tbs_cert){.version = version,
	                                                   .serial = 12345,
	                                                   .issuer = issuer,
	                                                   .subject = "subject",
	                                                   .bc = bc,
	                                                   .pub = key,
	                                                   .signer = key},
	                        der);
}

static size_t tbs_crl(int v2, int entries, uint8_t **der)
{
	return harness_tbs_crl(&(struct harness_tbs_crl){.v2 = v2,
	                                                 .issuer = "crl issuer",
	                                                 .entries = entries,
	                                                 .first_serial = 1000,
	                                                 .signer = key},
	                       der);
}

static void expect(const uint8_t *d, size_t n, int final, int kind)
{
	struct keyd_kind_info ki;

	keyd_kind_read(d, n, final, &ki);
	ck_assert_msg(ki.kind == kind, "read %s (%s), expected %s", keyd_kind_name(ki.kind),
	              ki.why ? ki.why : "", keyd_kind_name(kind));
}

START_TEST(certificates_by_basic_constraints)
{
	uint8_t *d;
	size_t n;
	struct keyd_kind_info ki;
	X509_NAME *in;
	uint8_t *ider = NULL;
	int ilen;

	n = tbs_cert(3, "critical,CA:FALSE", "issuer", &d);
	keyd_kind_read(d, n, 1, &ki);
	ck_assert_int_eq(ki.kind, KEYD_KIND_CERTIFICATE);
	ck_assert_uint_eq(ki.total, n);
	in = harness_cn("issuer");
	ilen = i2d_X509_NAME(in, &ider);
	ck_assert_uint_eq(ki.issuer_len, (size_t)ilen);
	ck_assert_int_eq(memcmp(ki.issuer, ider, (size_t)ilen), 0);
	ck_assert_uint_gt(ki.subject_len, 0);
	ck_assert_uint_gt(ki.spki_len, 0);
	ck_assert_int_eq(ki.spki[0], 0x30);
	OPENSSL_free(ider);
	X509_NAME_free(in);
	/* the same bytes as a first chunk of more: a certificate comes whole */
	expect(d, n - 10, 0, KEYD_KIND_DIGEST);
	OPENSSL_free(d);

	n = tbs_cert(3, "critical,CA:TRUE", "issuer", &d);
	expect(d, n, 1, KEYD_KIND_CA_CERTIFICATE);
	OPENSSL_free(d);
	n = tbs_cert(3, NULL, "issuer", &d);
	expect(d, n, 1, KEYD_KIND_CERTIFICATE);
	OPENSSL_free(d);
	/* version 1 has no extensions: some take it for a CA */
	n = tbs_cert(1, NULL, "issuer", &d);
	expect(d, n, 1, KEYD_KIND_CA_CERTIFICATE);
	OPENSSL_free(d);
}
END_TEST

START_TEST(crls_whole_and_first_chunk)
{
	uint8_t *d;
	size_t n = tbs_crl(1, 200, &d);
	struct keyd_kind_info ki;

	expect(d, n, 1, KEYD_KIND_CRL);
	keyd_kind_read(d, 120, 0, &ki);
	ck_assert_int_eq(ki.kind, KEYD_KIND_CRL);
	ck_assert_uint_eq(ki.total, n);
	ck_assert_uint_gt(ki.issuer_len, 0);
	/* a first chunk that stops inside the issuer is no CRL */
	expect(d, 30, 0, KEYD_KIND_DIGEST);
	/* whole data given as a first chunk of more, or less than all as the last */
	expect(d, n, 0, KEYD_KIND_DIGEST);
	expect(d, n - 1, 1, KEYD_KIND_DIGEST);
	OPENSSL_free(d);
	n = tbs_crl(0, 0, &d);
	expect(d, n, 1, KEYD_KIND_CRL);
	OPENSSL_free(d);
}
END_TEST

START_TEST(ocsp_csr_and_checkpoint)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *sn = harness_cn("device");
	uint8_t *d = NULL, cp[64], other[64];
	int n;

	/* an OCSP ResponseData, by hand: responder by key hash, producedAt, no responses */
	{
		static const uint8_t rd[] = {
		    0x30, 0x1b, 0xa2, 0x06, 0x04, 0x04, 1,   2,    3,   4, /* responderID byKey */
		    0x18, 0x0f, '2',  '0',  '2',  '6',  '0', '1',  '0', '1',
		    '0',  '0',  '0',  '0',  '0',  '0',  'Z', 0x30, 0x00}; /* producedAt, responses
		                                                           */
		expect(rd, sizeof(rd), 1, KEYD_KIND_OCSP);
		expect(rd, 14, 0, KEYD_KIND_DIGEST); /* cut inside producedAt */
	}
	X509_REQ_set_version(req, 0);
	X509_REQ_set_subject_name(req, sn);
	X509_REQ_set_pubkey(req, key);
	ck_assert_int_gt(X509_REQ_sign(req, key, EVP_sha256()), 0);
	n = i2d_re_X509_REQ_tbs(req, &d);
	ck_assert_int_gt(n, 0);
	expect(d, (size_t)n, 1, KEYD_KIND_CSR);
	expect(d, (size_t)n - 5, 0, KEYD_KIND_DIGEST);
	OPENSSL_free(d);
	X509_REQ_free(req);
	X509_NAME_free(sn);

	/* SEQUENCE { OID checkpoint, OCTET STRING } */
	cp[0] = 0x30;
	cp[1] = (uint8_t)(2 + sizeof(keyd_checkpoint_oid) + 4);
	cp[2] = 0x06;
	cp[3] = sizeof(keyd_checkpoint_oid);
	memcpy(cp + 4, keyd_checkpoint_oid, sizeof(keyd_checkpoint_oid));
	memcpy(cp + 4 + sizeof(keyd_checkpoint_oid), "\x04\x02hi", 4);
	expect(cp, 2 + cp[1], 1, KEYD_KIND_CHECKPOINT);
	memcpy(other, cp, sizeof(cp));
	other[10] ^= 1; /* another OID */
	expect(other, 2 + cp[1], 1, KEYD_KIND_DIGEST);
}
END_TEST

START_TEST(foreign_data_is_digest)
{
	uint8_t tls[130];

	memset(tls, ' ', 64);
	memcpy(tls + 64, "TLS 1.3, server CertificateVerify", 33);
	memset(tls + 98, 0xab, 32);
	expect(tls, sizeof(tls), 1, KEYD_KIND_DIGEST);
	expect((const uint8_t *)"\x30", 1, 1, KEYD_KIND_DIGEST);
	expect((const uint8_t *)"\x30\x00", 2, 1, KEYD_KIND_DIGEST);
	/* indefinite length, and a length longer than four bytes */
	expect((const uint8_t *)"\x30\x80\x02\x01\x00\x00\x00", 7, 1, KEYD_KIND_DIGEST);
	expect((const uint8_t *)"\x30\x85\xff\xff\xff\xff\xff", 7, 0, KEYD_KIND_DIGEST);
}
END_TEST

/* Every prefix of every kind, and every single-byte change of a certificate's length bytes,
 * reads without running past the data (ASan watches) and never as a certificate unless whole. */
START_TEST(truncated_and_lying_lengths)
{
	uint8_t *d, *copy;
	size_t n = tbs_cert(3, "critical,CA:TRUE", "issuer", &d);
	struct keyd_kind_info ki;

	for (size_t i = 1; i < n; i++) {
		copy = malloc(i); /* exactly i bytes: a read past them is caught */
		memcpy(copy, d, i);
		keyd_kind_read(copy, i, 1, &ki);
		ck_assert_int_eq(ki.kind, KEYD_KIND_DIGEST);
		keyd_kind_read(copy, i, 0, &ki);
		ck_assert_int_ne(ki.kind, KEYD_KIND_CERTIFICATE);
		ck_assert_int_ne(ki.kind, KEYD_KIND_CA_CERTIFICATE);
		free(copy);
	}
	copy = malloc(n);
	for (size_t i = 0; i < n && i < 400; i++)
		for (int delta = -2; delta <= 2; delta += 4) {
			memcpy(copy, d, n);
			copy[i] = (uint8_t)(copy[i] + delta);
			keyd_kind_read(copy, n, 1, &ki);
			/* a nested length that lies breaks the structure: digest, or (when the
			 * changed byte is inside a value) still a CA certificate */
			ck_assert(ki.kind == KEYD_KIND_DIGEST ||
			          ki.kind == KEYD_KIND_CA_CERTIFICATE ||
			          ki.kind == KEYD_KIND_CERTIFICATE);
			if (ki.kind != KEYD_KIND_DIGEST)
				ck_assert_uint_eq(ki.total, n);
		}
	/* the issuer's SEQUENCE claims more than the TBS holds */
	memcpy(copy, d, n);
	{
		struct keyd_kind_info good;
		keyd_kind_read(d, n, 1, &good);
		copy[good.issuer - d + 1] = 0x7f;
		expect(copy, n, 1, KEYD_KIND_DIGEST);
	}
	free(copy);
	OPENSSL_free(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyd-kind");
	TCase *tc = tcase_create("kinds");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, certificates_by_basic_constraints);
	tcase_add_test(tc, crls_whole_and_first_chunk);
	tcase_add_test(tc, ocsp_csr_and_checkpoint);
	tcase_add_test(tc, foreign_data_is_digest);
	tcase_add_test(tc, truncated_and_lying_lengths);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
