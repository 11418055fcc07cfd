/*
 * Set-up for the OCSP benchmark (tests/bench/ocsp/run): migrate the database, register the CA
 * whose key is in keyd, issue N certificates the way hsmca-cad does (reserved, signed through
 * keyd, stored), and write what the other responders need: the first certificate (leaf.pem),
 * an `openssl ca` index of all of them (index.txt) and a DER request for the first one
 * (req.der, SHA-1 CertID, no nonce).
 *
 *   bench_ocsp_setup OWNER_CONNINFO CA_PEM KEY_LABEL COUNT OUTDIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include "db.h"

static void fail(const char *what, const char *why)
{
	fprintf(stderr, "bench_ocsp_setup: %s: %s\n", what, why);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static EVP_PKEY *keyd_key(const char *label)
{
	char uri[128];
	OSSL_STORE_CTX *sc;
	OSSL_STORE_INFO *info;
	EVP_PKEY *k;

	snprintf(uri, sizeof(uri), "keyd:label=%s", label);
	sc = OSSL_STORE_open_ex(uri, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
	info = sc ? OSSL_STORE_load(sc) : NULL;
	k = info ? OSSL_STORE_INFO_get1_PKEY(info) : NULL;
	OSSL_STORE_INFO_free(info);
	OSSL_STORE_close(sc);
	if (!k)
		fail(uri, "cannot load the key through keyd");
	return k;
}

int main(int argc, char **argv)
{
	struct db_err err = {0};
	struct db *db = NULL;
	struct db_authority a = {0};
	X509 *ca;
	EVP_PKEY *cak, *leafkey;
	FILE *f, *index;
	char p[1024];
	int32_t ca_id;
	int applied, count;
	unsigned char *subj = NULL, *der = NULL, *spki = NULL;
	int slen, dlen, spki_len;

	if (argc != 6)
		fail("usage", "bench_ocsp_setup OWNER_CONNINFO CA_PEM KEY_LABEL COUNT OUTDIR");
	count = atoi(argv[4]);
	if (count < 1)
		fail("COUNT", "must be at least 1");
	if (!OSSL_PROVIDER_load(NULL, "keyd") || !OSSL_PROVIDER_load(NULL, "default") ||
	    !EVP_set_default_properties(NULL, "?provider=default"))
		fail("providers", "cannot load keyd and default (OPENSSL_MODULES?)");
	f = fopen(argv[2], "r");
	ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!ca)
		fail(argv[2], "no certificate");
	cak = keyd_key(argv[3]);
	if (db_connect(argv[1], &db, &err) != DB_OK ||
	    db_migrate(db, NULL, NULL, &applied, &err) != DB_OK)
		fail("database", err.msg);
	PQclear(PQexec(db_pgconn(db), "ALTER ROLE hsmca_app LOGIN"));
	slen = i2d_X509_NAME(X509_get_subject_name(ca), &subj);
	dlen = i2d_X509(ca, &der);
	a.name = "bench-ca";
	a.subject = "CN=hsmca bench CA";
	a.subject_der = subj;
	a.subject_der_len = (size_t)slen;
	a.ski = X509_get0_subject_key_id(ca)->data;
	a.ski_len = (size_t)X509_get0_subject_key_id(ca)->length;
	a.cert_der = der;
	a.cert_der_len = (size_t)dlen;
	a.key_label = argv[3];
	if (db_authority_add(db, &a, &ca_id, &err) != DB_OK)
		fail("registering the CA", err.msg);
	leafkey = EVP_EC_gen("P-256");
	spki_len = i2d_PUBKEY(leafkey, &spki);
	snprintf(p, sizeof(p), "%s/index.txt", argv[5]);
	index = fopen(p, "w");
	if (!index)
		fail(p, "cannot write");
	for (int i = 0; i < count; i++) {
		struct db_cert_request req = {0};
		uint8_t serial[16];
		char hex[2 * DB_SERIAL_MAX + 1], cn[64], expiry[16];
		X509 *x = X509_new();
		X509_NAME *n = X509_NAME_new();
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		BIGNUM *bn;
		unsigned char *xder = NULL;
		int xlen;
		int64_t id;
		time_t na = time(NULL) + 86400 * 90;
		struct tm tm;

		RAND_bytes(serial, sizeof(serial));
		serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x10);
		snprintf(cn, sizeof(cn), "leaf%d.example", i);
		req.authority_id = ca_id;
		req.serial = serial;
		req.serial_len = sizeof(serial);
		req.profile = "tls-server";
		req.subject = cn;
		req.subject_len = strlen(cn);
		req.not_before = time(NULL) - 60;
		req.not_after = na;
		EVP_Digest(spki, (size_t)spki_len, req.spki_sha256, NULL, EVP_sha256(), NULL);
		req.requester = "bench";
		if (db_cert_reserve(db, &req, &id, &err) != DB_OK)
			fail("reserve", err.msg);
		bn = BN_bin2bn(serial, sizeof(serial), NULL);
		X509_set_version(x, X509_VERSION_3);
		BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (unsigned char *)cn, -1, -1, 0);
		X509_set_subject_name(x, n);
		X509_set_issuer_name(x, X509_get_subject_name(ca));
		ASN1_TIME_set(X509_getm_notBefore(x), (time_t)req.not_before);
		ASN1_TIME_set(X509_getm_notAfter(x), na);
		X509_set_pubkey(x, leafkey);
		if (!EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, cak, NULL) ||
		    !X509_sign_ctx(x, m) || (xlen = i2d_X509(x, &xder)) <= 0)
			fail("signing a certificate", "through keyd");
		if (db_cert_mark_issued(db, ca_id, serial, sizeof(serial), xder, (size_t)xlen,
		                        &err) != DB_OK)
			fail("storing a certificate", err.msg);
		db_serial_to_hex(serial, sizeof(serial), hex);
		for (char *c = hex; *c; c++)
			if (*c >= 'a' && *c <= 'f')
				*c = (char)(*c - 'a' + 'A');
		gmtime_r(&na, &tm);
		strftime(expiry, sizeof(expiry), "%y%m%d%H%M%SZ", &tm);
		fprintf(index, "V\t%s\t\t%s\tunknown\t/CN=%s\n", expiry, hex, cn);
		if (i == 0) {
			OCSP_REQUEST *oreq = OCSP_REQUEST_new();
			OCSP_CERTID *cid = OCSP_cert_to_id(EVP_sha1(), x, ca);
			unsigned char *rder = NULL;
			int rlen;
			snprintf(p, sizeof(p), "%s/leaf.pem", argv[5]);
			f = fopen(p, "w");
			if (!f || !PEM_write_X509(f, x) || fclose(f))
				fail(p, "cannot write");
			if (!cid || !OCSP_request_add0_id(oreq, cid) ||
			    (rlen = i2d_OCSP_REQUEST(oreq, &rder)) <= 0)
				fail("request", "cannot encode");
			snprintf(p, sizeof(p), "%s/req.der", argv[5]);
			f = fopen(p, "wb");
			if (!f || fwrite(rder, 1, (size_t)rlen, f) != (size_t)rlen || fclose(f))
				fail(p, "cannot write");
			OPENSSL_free(rder);
			OCSP_REQUEST_free(oreq);
		}
		OPENSSL_free(xder);
		BN_free(bn);
		EVP_MD_CTX_free(m);
		X509_NAME_free(n);
		X509_free(x);
	}
	fclose(index);
	snprintf(p, sizeof(p), "%s/index.txt.attr", argv[5]);
	f = fopen(p, "w");
	if (f) {
		fputs("unique_subject = no\n", f);
		fclose(f);
	}
	printf("bench_ocsp_setup: authority bench-ca (id %d) with %d certificates\n", (int)ca_id,
	       count);
	OPENSSL_free(subj);
	OPENSSL_free(der);
	OPENSSL_free(spki);
	EVP_PKEY_free(leafkey);
	EVP_PKEY_free(cak);
	X509_free(ca);
	db_close(db);
	return 0;
}
