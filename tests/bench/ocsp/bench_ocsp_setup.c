/*
 * Set-up for the OCSP benchmark (tests/bench/ocsp/run): migrate the database, register the CA
 * whose key is in keyd and store COUNT issued certificates of it, then write what the other
 * responders and the load generator need: the first certificate (leaf.pem), a DER request for
 * it (req.der, SHA-1 CertID, no nonce) and, with --index, an `openssl ca` index of all of them
 * (index.txt) for `openssl ocsp -index`.
 *
 *   bench_ocsp_setup [--index] OWNER_CONNINFO CA_PEM KEY_LABEL COUNT OUTDIR
 *
 * The first certificate is issued the way hsmca-cad issues one: reserved through the data
 * layer, signed through keyd, stored as issued. The others (1,000,000 for the scale run) are
 * bulk-loaded with one binary COPY into the same columns hsmca-cad fills, so that a million
 * rows take seconds instead of a million keyd round trips and two transactions each. Their DER
 * is the first certificate's with the row's serial and CN written over it: the same size and
 * shape, but its signature does not verify. hsmca-ocspd never reads the DER (it answers from
 * a certificate's status columns and the CA's key), so what it loads, signs and serves is what
 * it would for as many certificates issued by hsmca-cad.
 *
 * Serials are 16 bytes: 12 random (the first forced into 0x10..0x7f, so positive and minimal)
 * and a 4-byte row number, unique by construction and spread like cad's random ones.
 */
#include <stdint.h>
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

#define SERIAL_LEN 16
#define CN_FMT "leaf%08u.example" /* fixed width: every row's DER has the same length */
#define COUNT_MAX 99999999u
#define COPY_FLUSH (1u << 20) /* bytes of COPY data per PQputCopyData */
/* PostgreSQL's binary timestamps count microseconds from 2000-01-01 00:00:00 UTC. */
#define PG_EPOCH_OFFSET 946684800LL

struct setup {
	const char *owner, *ca_pem, *outdir;
	char *key_label; /* the data layer's authority row takes it as char * */
	unsigned count;
	int index;
	struct db *db;
	X509 *ca;
	EVP_PKEY *cak, *leafkey;
	int32_t ca_id;
	time_t not_before, not_after;
	uint8_t spki_sha256[32];
	/* the first certificate's DER, and where its serial and CN sit in it */
	unsigned char *der;
	size_t der_len, serial_off, cn_off;
};

static void fail(const char *what, const char *why)
{
	fprintf(stderr, "bench_ocsp_setup: %s: %s\n", what, why);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* Row i's serial: 12 random bytes, then i big-endian. */
static void row_serial(unsigned i, uint8_t serial[SERIAL_LEN])
{
	if (RAND_bytes(serial, SERIAL_LEN - 4) != 1)
		fail("serial", "no random bytes");
	serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x10);
	serial[12] = (uint8_t)(i >> 24);
	serial[13] = (uint8_t)(i >> 16);
	serial[14] = (uint8_t)(i >> 8);
	serial[15] = (uint8_t)i;
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

/* Migrate, let the application role log in, register the CA. */
static void prepare_database(struct setup *s)
{
	struct db_err err = {0};
	struct db_authority a = {0};
	unsigned char *subj = NULL, *der = NULL;
	int applied, slen, dlen;

	if (db_connect(s->owner, &s->db, &err) != DB_OK ||
	    db_migrate(s->db, NULL, NULL, &applied, &err) != DB_OK)
		fail("database", err.msg);
	PQclear(PQexec(db_pgconn(s->db), "ALTER ROLE hsmca_app LOGIN"));
	slen = i2d_X509_NAME(X509_get_subject_name(s->ca), &subj);
	dlen = i2d_X509(s->ca, &der);
	if (slen <= 0 || dlen <= 0 || !X509_get0_subject_key_id(s->ca))
		fail(s->ca_pem, "cannot encode the CA certificate (or it has no SKI)");
	a.name = "bench-ca";
	a.subject = "CN=hsmca bench CA";
	a.subject_der = subj;
	a.subject_der_len = (size_t)slen;
	a.ski = X509_get0_subject_key_id(s->ca)->data;
	a.ski_len = (size_t)X509_get0_subject_key_id(s->ca)->length;
	a.cert_der = der;
	a.cert_der_len = (size_t)dlen;
	a.key_label = s->key_label;
	if (db_authority_add(s->db, &a, &s->ca_id, &err) != DB_OK)
		fail("registering the CA", err.msg);
	OPENSSL_free(subj);
	OPENSSL_free(der);
}

/* Where needle sits in the DER (it must be there exactly once). */
static size_t find_once(const unsigned char *der, size_t len, const void *needle, size_t n,
                        const char *what)
{
	size_t at = SIZE_MAX;

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(der + i, needle, n))
			continue;
		if (at != SIZE_MAX)
			fail(what, "found twice in the first certificate");
		at = i;
	}
	if (at == SIZE_MAX)
		fail(what, "not found in the first certificate");
	return at;
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f))
		fail(path, "cannot write");
}

/* Certificate 0, as hsmca-cad issues one: reserve, sign through keyd, store. Also writes
 * leaf.pem and req.der, and keeps the DER as the template of the bulk rows. */
static void issue_first(struct setup *s)
{
	struct db_cert_request req = {0};
	struct db_err err = {0};
	uint8_t serial[SERIAL_LEN];
	char cn[32];
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	OCSP_REQUEST *oreq = OCSP_REQUEST_new();
	OCSP_CERTID *cid;
	BIGNUM *bn;
	BIO *pem = BIO_new(BIO_s_mem());
	unsigned char *rder = NULL, *spki = NULL;
	char *pem_data;
	long pem_len;
	int64_t id;
	int len, spki_len;

	if (!x || !n || !m || !oreq || !pem)
		fail("first certificate", "out of memory");
	row_serial(0, serial);
	snprintf(cn, sizeof(cn), CN_FMT, 0u);
	spki_len = i2d_PUBKEY(s->leafkey, &spki);
	if (spki_len <= 0)
		fail("leaf key", "cannot encode");
	EVP_Digest(spki, (size_t)spki_len, s->spki_sha256, NULL, EVP_sha256(), NULL);
	req.authority_id = s->ca_id;
	req.serial = serial;
	req.serial_len = sizeof(serial);
	req.profile = "tls-server";
	req.subject = cn;
	req.subject_len = strlen(cn);
	req.not_before = s->not_before;
	req.not_after = s->not_after;
	memcpy(req.spki_sha256, s->spki_sha256, 32);
	req.requester = "bench";
	if (db_cert_reserve(s->db, &req, &id, &err) != DB_OK)
		fail("reserve", err.msg);
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	X509_set_version(x, X509_VERSION_3);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, X509_get_subject_name(s->ca));
	ASN1_TIME_set(X509_getm_notBefore(x), s->not_before);
	ASN1_TIME_set(X509_getm_notAfter(x), s->not_after);
	X509_set_pubkey(x, s->leafkey);
	if (!EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, s->cak, NULL) ||
	    !X509_sign_ctx(x, m) || (len = i2d_X509(x, &s->der)) <= 0)
		fail("signing the first certificate", "through keyd");
	s->der_len = (size_t)len;
	if (db_cert_mark_issued(s->db, s->ca_id, serial, sizeof(serial), s->der, s->der_len,
	                        &err) != DB_OK)
		fail("storing the first certificate", err.msg);
	s->serial_off = find_once(s->der, s->der_len, serial, sizeof(serial), "the serial");
	s->cn_off = find_once(s->der, s->der_len, cn, strlen(cn), "the CN");

	if (!PEM_write_bio_X509(pem, x) || (pem_len = BIO_get_mem_data(pem, &pem_data)) <= 0)
		fail("leaf.pem", "cannot encode");
	write_file(s->outdir, "leaf.pem", pem_data, (size_t)pem_len);
	cid = OCSP_cert_to_id(EVP_sha1(), x, s->ca);
	if (!cid || !OCSP_request_add0_id(oreq, cid) || (len = i2d_OCSP_REQUEST(oreq, &rder)) <= 0)
		fail("request", "cannot encode");
	write_file(s->outdir, "req.der", rder, (size_t)len);

	OPENSSL_free(rder);
	OPENSSL_free(spki);
	OCSP_REQUEST_free(oreq);
	BIO_free(pem);
	BN_free(bn);
	EVP_MD_CTX_free(m);
	X509_NAME_free(n);
	X509_free(x);
}

/* COPY ... (FORMAT binary) data: a buffer sent whenever it passes COPY_FLUSH. */
struct copybuf {
	PGconn *pg;
	unsigned char *p;
	size_t n, cap;
};

static void copy_put(struct copybuf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap)
		fail("COPY", "row larger than the buffer");
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void copy_be(struct copybuf *b, uint64_t v, int bytes)
{
	unsigned char o[8];

	for (int i = 0; i < bytes; i++)
		o[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	copy_put(b, o, (size_t)bytes);
}

static void copy_field(struct copybuf *b, const void *p, size_t n)
{
	copy_be(b, n, 4);
	copy_put(b, p, n);
}

static void copy_int32(struct copybuf *b, int32_t v)
{
	copy_be(b, 4, 4);
	copy_be(b, (uint32_t)v, 4);
}

static void copy_time(struct copybuf *b, time_t t)
{
	copy_be(b, 8, 4);
	copy_be(b, (uint64_t)(((int64_t)t - PG_EPOCH_OFFSET) * 1000000), 8);
}

static void copy_flush(struct copybuf *b, int force)
{
	if (b->n == 0 || (!force && b->n < COPY_FLUSH))
		return;
	if (PQputCopyData(b->pg, (const char *)b->p, (int)b->n) != 1)
		fail("COPY", PQerrorMessage(b->pg));
	b->n = 0;
}

/* One `openssl ca` index line (V, expiry, serial in upper-case hex, no file, subject). */
static void index_line(FILE *f, const uint8_t *serial, const char *cn, time_t not_after)
{
	char expiry[16];
	struct tm tm;

	gmtime_r(&not_after, &tm);
	strftime(expiry, sizeof(expiry), "%y%m%d%H%M%SZ", &tm);
	fprintf(f, "V\t%s\t\t", expiry);
	for (int i = 0; i < SERIAL_LEN; i++)
		fprintf(f, "%02X", serial[i]);
	fprintf(f, "\tunknown\t/CN=%s\n", cn);
}

/* Rows 1..count-1 in one COPY: issued, with the columns hsmca-cad's reserve and store fill
 * (created_at takes its default; no SANs, crl_shard 0, as certificate 0). */
static void bulk_load(struct setup *s, FILE *index)
{
	static const char sql[] =
	    "COPY certificates (authority_id, serial, status, profile, subject, not_before,"
	    " not_after, spki_sha256, der, requester, crl_shard, issued_at) FROM STDIN"
	    " (FORMAT binary)";
	static const unsigned char header[] = "PGCOPY\n\377\r\n";
	struct copybuf b = {.pg = db_pgconn(s->db), .cap = COPY_FLUSH + 8192};
	unsigned char *der = malloc(s->der_len);
	time_t now = time(NULL);
	PGresult *r;

	b.p = malloc(b.cap);
	if (!der || !b.p)
		fail("COPY", "out of memory");
	memcpy(der, s->der, s->der_len);
	r = PQexec(b.pg, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN)
		fail("COPY", PQerrorMessage(b.pg));
	PQclear(r);
	copy_put(&b, header, sizeof(header)); /* with its closing NUL, as the format wants */
	copy_be(&b, 0, 4);                    /* flags */
	copy_be(&b, 0, 4);                    /* header extension length */
	for (unsigned i = 1; i < s->count; i++) {
		uint8_t serial[SERIAL_LEN];
		char cn[32], subject[40];
		int cn_len = snprintf(cn, sizeof(cn), CN_FMT, i);
		int subj_len = snprintf(subject, sizeof(subject), "CN=%s", cn);

		row_serial(i, serial);
		memcpy(der + s->serial_off, serial, SERIAL_LEN);
		memcpy(der + s->cn_off, cn, (size_t)cn_len);
		copy_be(&b, 12, 2); /* fields */
		copy_int32(&b, s->ca_id);
		copy_field(&b, serial, SERIAL_LEN);
		copy_field(&b, "issued", 6);
		copy_field(&b, "tls-server", 10);
		copy_field(&b, subject, (size_t)subj_len);
		copy_time(&b, s->not_before);
		copy_time(&b, s->not_after);
		copy_field(&b, s->spki_sha256, 32);
		copy_field(&b, der, s->der_len);
		copy_field(&b, "bench", 5);
		copy_int32(&b, 0);
		copy_time(&b, now);
		copy_flush(&b, 0);
		if (index)
			index_line(index, serial, cn, s->not_after);
	}
	copy_be(&b, 0xffff, 2); /* trailer */
	copy_flush(&b, 1);
	if (PQputCopyEnd(b.pg, NULL) != 1)
		fail("COPY", PQerrorMessage(b.pg));
	while ((r = PQgetResult(b.pg))) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fail("COPY", PQerrorMessage(b.pg));
		PQclear(r);
	}
	/* as autovacuum would soon after: hsmca-ocspd's reads get the plans of a settled table */
	r = PQexec(b.pg, "ANALYZE certificates");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail("ANALYZE", PQerrorMessage(b.pg));
	PQclear(r);
	free(b.p);
	free(der);
}

static void write_index(struct setup *s)
{
	char path[1024];
	FILE *f;
	uint8_t serial[SERIAL_LEN];
	char cn[32];

	snprintf(path, sizeof(path), "%s/index.txt", s->outdir);
	f = fopen(path, "w");
	if (!f)
		fail(path, "cannot write");
	/* certificate 0's line from its DER: the template still holds its serial and CN */
	memcpy(serial, s->der + s->serial_off, SERIAL_LEN);
	snprintf(cn, sizeof(cn), CN_FMT, 0u);
	index_line(f, serial, cn, s->not_after);
	bulk_load(s, f);
	if (fclose(f))
		fail(path, "cannot write");
	write_file(s->outdir, "index.txt.attr", "unique_subject = no\n", 20);
}

int main(int argc, char **argv)
{
	struct setup s = {0};
	unsigned long count;
	FILE *f;
	int a = 1;

	if (argc > 1 && !strcmp(argv[1], "--index"))
		s.index = 1, a++;
	if (argc - a != 5)
		fail("usage",
		     "bench_ocsp_setup [--index] OWNER_CONNINFO CA_PEM KEY_LABEL COUNT OUTDIR");
	s.owner = argv[a];
	s.ca_pem = argv[a + 1];
	s.key_label = argv[a + 2];
	count = strtoul(argv[a + 3], NULL, 10);
	s.outdir = argv[a + 4];
	if (count < 1 || count > COUNT_MAX)
		fail("COUNT", "must be 1..99999999");
	s.count = (unsigned)count;
	if (!OSSL_PROVIDER_load(NULL, "keyd") || !OSSL_PROVIDER_load(NULL, "default") ||
	    !EVP_set_default_properties(NULL, "?provider=default"))
		fail("providers", "cannot load keyd and default (OPENSSL_MODULES?)");
	f = fopen(s.ca_pem, "r");
	s.ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!s.ca)
		fail(s.ca_pem, "no certificate");
	s.cak = keyd_key(s.key_label);
	s.leafkey = EVP_EC_gen("P-256");
	if (!s.leafkey)
		fail("leaf key", "cannot generate");
	s.not_before = time(NULL) - 60;
	s.not_after = time(NULL) + 86400 * 90;

	prepare_database(&s);
	issue_first(&s);
	if (s.index)
		write_index(&s);
	else
		bulk_load(&s, NULL);
	printf("bench_ocsp_setup: authority bench-ca (id %d) with %u certificates\n", (int)s.ca_id,
	       s.count);
	OPENSSL_free(s.der);
	EVP_PKEY_free(s.leafkey);
	EVP_PKEY_free(s.cak);
	X509_free(s.ca);
	db_close(s.db);
	return 0;
}
