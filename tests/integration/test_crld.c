/*
 * hsmca-crld end to end: a private PostgreSQL cluster (tests/pg/pgtest), a throwaway keyd
 * (harness) holding the issuing CAs' keys, and hsmca-crld itself (--once, and as a daemon).
 * The CRLs are checked with the openssl command (verify -crl_check, -crl_check_all,
 * -use_deltas) and with OpenSSL's parser. A software root signs the issuing CAs, so chains
 * are real. One set-up for the suite, made in the parent; each test makes its own objects.
 */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include "crl.h"
#include "lint.h"
#include "crld.h"
#include "httptext.h"
#include "db.h"
#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct harness_pg pg;
static const char *crld_ci; /* conninfo of hsmca-crld, its own login role */
static char dir[256];
static OSSL_PROVIDER *prov_keyd, *prov_default;
static EVP_PKEY *root_key;
static X509 *root;
static void cleanup(void);

struct ca {
	const char *name;
	const char *label;
	X509 *cert;
	EVP_PKEY *key; /* through keyd */
	int32_t id;
};
static struct ca plain = {.name = "plain", .label = "plain-p256"},
                 sharded = {.name = "sharded", .label = "sharded-p256"},
                 rsa = {.name = "rsaca", .label = "rsa-2048"};

/* ---- processes and files ---- */

/* dir/FORMAT..., in a rotating buffer of the harness. */
#define path(...) harness_pathf(dir, __VA_ARGS__)

/* ---- certificates ---- */

/* serial: bytes (minimal); issuer NULL: self-signed; crldp: a URI or NULL. */
static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                       const uint8_t *serial, size_t serial_len, const char *crldp,
                       int64_t not_before, int64_t not_after)
{
	struct harness_cert c = {.cn = cn,
	                         .pub = pub,
	                         .issuer = issuer,
	                         .signer = signer,
	                         .ca = ca,
	                         .serial_bytes = serial,
	                         .serial_len = serial_len,
	                         .not_before = (time_t)not_before,
	                         .not_after = (time_t)not_after,
	                         .crldp = crldp,
	                         .md = "SHA256"};

	return harness_make_cert(&c);
}

static struct db *owner_db(void)
{
	struct db_err err = {0};
	struct db *db = NULL;

	if (db_connect(pg.owner_ci, &db, &err) != DB_OK) {
		fprintf(stderr, "connect: %s\n", err.msg);
		harness_die(__func__);
	}
	return db;
}

/* An issuing CA under the root, its key in keyd, registered in the database. */
static void ca_make(struct db *db, struct ca *ca, int rsa_key)
{
	static uint8_t serial = 10;
	struct keyd_client *c = keyd_client_new(NULL, 0);
	struct keyd_key k;
	struct keyd_err kerr;
	struct db_authority a = {0};
	struct db_err err = {0};
	uint8_t *subj = NULL, *der = NULL;
	const ASN1_OCTET_STRING *ski;
	int64_t now = time(NULL);
	int subj_len, der_len;

	serial++;
	if (!c ||
	    (rsa_key ? keyd_client_generate(c, ca->label, KEYD_KEY_RSA, 2048, &k, &kerr)
	             : keyd_client_generate(c, ca->label, KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr)))
		harness_die(__func__);
	keyd_client_free(c);
	ca->key = harness_keyd_key(ca->label);
	ca->cert = make_cert(ca->name, ca->key, root, root_key, 1, &serial, 1, NULL, now - 86400,
	                     now + 86400L * 3650);
	subj_len = i2d_X509_NAME(X509_get_subject_name(ca->cert), &subj);
	der_len = i2d_X509(ca->cert, &der);
	ski = X509_get0_subject_key_id(ca->cert);
	a.name = (char *)ca->name;
	a.subject = (char *)ca->name;
	a.subject_der = subj;
	a.subject_der_len = (size_t)subj_len;
	a.ski = (uint8_t *)ASN1_STRING_get0_data(ski);
	a.ski_len = (size_t)ASN1_STRING_length(ski);
	a.cert_der = der;
	a.cert_der_len = (size_t)der_len;
	a.key_label = (char *)ca->label;
	if (db_authority_add(db, &a, &ca->id, &err) != DB_OK) {
		fprintf(stderr, "authority %s: %s\n", ca->name, err.msg);
		harness_die(__func__);
	}
	OPENSSL_free(subj);
	OPENSSL_free(der);
}

struct leaf {
	uint8_t serial[20];
	size_t serial_len;
	char hex[41];
	char pem[600]; /* its file */
	X509 *cert;
};

/* A leaf certificate of ca, stored as issued (reserve, sign, mark issued). */
static void leaf_issue(struct ca *ca, struct leaf *l, int shard, const char *crldp,
                       int64_t not_before, int64_t not_after)
{
	struct db *db = owner_db();
	struct db_cert_request q = {0};
	struct db_err err = {0};
	EVP_PKEY *k = EVP_EC_gen("P-256");
	uint8_t *spki = NULL, *der = NULL;
	unsigned int hl;
	int64_t id;
	int n, dlen;

	if (!not_before) {
		not_before = time(NULL) - 60;
		not_after = time(NULL) + 86400 * 30;
	}
	RAND_bytes(l->serial, 16);
	l->serial[0] = (l->serial[0] & 0x7f) | 0x40;
	l->serial_len = 16;
	db_serial_to_hex(l->serial, l->serial_len, l->hex);
	n = i2d_PUBKEY(k, &spki);
	ck_assert(n > 0 && EVP_Digest(spki, (size_t)n, q.spki_sha256, &hl, EVP_sha256(), NULL));
	q.authority_id = ca->id;
	q.serial = l->serial;
	q.serial_len = l->serial_len;
	q.profile = "test";
	q.subject = "CN=leaf";
	q.subject_len = 7;
	q.not_before = not_before;
	q.not_after = not_after;
	q.requester = "test_crld";
	q.crl_shard = shard;
	ck_assert_msg(db_cert_reserve(db, &q, &id, &err) == DB_OK, "%s", err.msg);
	l->cert = make_cert("leaf", k, ca->cert, ca->key, 0, l->serial, l->serial_len, crldp,
	                    not_before, not_after);
	dlen = i2d_X509(l->cert, &der);
	ck_assert_msg(db_cert_mark_issued(db, ca->id, l->serial, l->serial_len, der, (size_t)dlen,
	                                  &err) == DB_OK,
	              "%s", err.msg);
	snprintf(l->pem, sizeof(l->pem), "%s", path("leaf-%s.pem", l->hex));
	harness_write_cert(l->pem, l->cert, 0);
	OPENSSL_free(spki);
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	db_close(db);
}

static void leaf_free(struct leaf *l)
{
	X509_free(l->cert);
}

static void cert_revoke(struct ca *ca, struct leaf *l, int reason, int64_t invalidity)
{
	struct db *db = owner_db();
	struct db_err err = {0};
	int changed;

	ck_assert_msg(db_cert_revoke(db, ca->id, l->serial, l->serial_len, reason, invalidity,
	                             &changed, &err) == DB_OK,
	              "%s", err.msg);
	db_close(db);
}

static void hold(struct ca *ca, struct leaf *l)
{
	struct db *db = owner_db();
	struct db_err err = {0};
	int changed;

	ck_assert_msg(db_cert_hold(db, ca->id, l->serial, l->serial_len, &changed, &err) == DB_OK,
	              "%s", err.msg);
	db_close(db);
}

static void release(struct ca *ca, struct leaf *l)
{
	struct db *db = owner_db();
	struct db_err err = {0};
	int changed;

	ck_assert_msg(db_cert_release(db, ca->id, l->serial, l->serial_len, &changed, &err) ==
	                  DB_OK,
	              "%s", err.msg);
	db_close(db);
}

/* ---- crld ---- */

static int http_port;
static int metrics_port; /* the metrics listener (metrics_listen) */

/* A configuration into <name>.yaml with its own publish folder <name>/. extra: authorities
 * and schedule YAML. */
static const char *crld_config(const char *name, const char *extra)
{
	char text[4096];
	const char *conf = path("%s.yaml", name);

	mkdir(path("%s", name), 0755);
	snprintf(text, sizeof(text),
	         "database: \"%s connect_timeout=3\"\n"
	         "publish: {folder: %s, base_url: \"http://crl.example/\", pem: true}\n"
	         "%s",
	         crld_ci, path("%s", name), extra ? extra : "");
	harness_write_text(conf, text);
	return conf;
}

static const char *const default_authorities = "authorities:\n"
                                               "  - {name: plain, idp: false}\n"
                                               "  - {name: sharded, shards: 2}\n"
                                               "  - {name: rsaca}\n";

static char *crld_bin(void)
{
	static char bin[512];

	snprintf(bin, sizeof(bin), "%s/crl/hsmca-crld", getenv("HSMCA_BUILD"));
	return bin;
}

/* hsmca-crld --config conf --once; its exit status, its log in log. */
static int crld_once(const char *conf, const char *log)
{
	char *argv[] = {crld_bin(), "--config", (char *)conf, "--once", NULL};

	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
	return harness_run(argv, log);
}

static pid_t crld_start(const char *conf, const char *log)
{
	pid_t pid;

	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 2);
		dup2(fd, 1);
		execl(crld_bin(), crld_bin(), "--config", conf, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* SIGTERM it and check its exit (harness_daemon_stop): 0 when it exited 0 with no sanitizer
 * report in log, else non-zero. */
static int crld_stop_pid(pid_t pid, const char *log)
{
	return harness_daemon_stop(&pid, "hsmca-crld", log, 0);
}

static X509_CRL *crl_load(const char *p)
{
	FILE *f = fopen(p, "rb");
	X509_CRL *c = f ? d2i_X509_CRL_fp(f, NULL) : NULL;

	if (f)
		fclose(f);
	return c;
}

static long long crl_number(const char *p)
{
	X509_CRL *c = crl_load(p);
	ASN1_INTEGER *n = c ? X509_CRL_get_ext_d2i(c, NID_crl_number, NULL, NULL) : NULL;
	long long v = n ? (long long)ASN1_INTEGER_get(n) : -1;

	ASN1_INTEGER_free(n);
	X509_CRL_free(c);
	return v;
}

/* The entry for l in the CRL file: NULL when absent. The caller frees the CRL. */
static X509_REVOKED *crl_entry(const char *p, const struct leaf *l, X509_CRL **crl)
{
	X509_REVOKED *r = NULL;
	ASN1_INTEGER *sn = X509_get_serialNumber(l->cert);

	*crl = crl_load(p);
	ck_assert_msg(*crl != NULL, "%s does not parse", p);
	for (int i = 0; i < sk_X509_REVOKED_num(X509_CRL_get_REVOKED(*crl)); i++) {
		X509_REVOKED *e = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(*crl), i);
		if (!ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(e), sn))
			r = e;
	}
	return r;
}

static int entry_reason(X509_REVOKED *e)
{
	ASN1_ENUMERATED *r = X509_REVOKED_get_ext_d2i(e, NID_crl_reason, NULL, NULL);
	int v = r ? (int)ASN1_ENUMERATED_get(r) : -1;

	ASN1_ENUMERATED_free(r);
	return v;
}

/* openssl verify of leaf against the chain with CRLs (PEM files); its exit status. flags:
 * "-crl_check" or "-crl_check_all"; crls: NULL-terminated. out: its output. */
static int verify(const struct ca *ca, const struct leaf *l, const char *flag,
                  const char *const *crls, int deltas, char **out)
{
	char *argv[24];
	const char *log = path("verify.out");
	char ca_pem[600], root_pem[600];
	int n = 0, rc;

	snprintf(root_pem, sizeof(root_pem), "%s", path("root.pem"));
	snprintf(ca_pem, sizeof(ca_pem), "%s", path("%s.pem", ca->name));
	argv[n++] = "openssl";
	argv[n++] = "verify";
	argv[n++] = (char *)flag;
	if (deltas)
		argv[n++] = "-use_deltas";
	argv[n++] = "-CAfile";
	argv[n++] = root_pem;
	argv[n++] = "-untrusted";
	argv[n++] = ca_pem;
	for (int i = 0; crls[i] && n < 18; i++) {
		argv[n++] = "-CRLfile";
		argv[n++] = (char *)crls[i];
	}
	argv[n++] = (char *)l->pem;
	argv[n] = NULL;
	rc = harness_run(argv, log);
	if (out)
		*out = harness_slurp(log);
	return rc;
}

/* ---- set-up ---- */

static void setup(void)
{
	struct db_err err = {0};
	struct db *db = NULL;
	static const uint8_t one = 1;
	int64_t now = time(NULL);
	int applied;
	X509_CRL *crl;
	FILE *f;

	harness_setup_phase = 1;
	if (harness_start(&h, NULL) != 0)
		harness_die(__func__);
	snprintf(dir, sizeof(dir), "%s", h.dir);
	chmod(dir, 0755);
	harness_load_providers(&prov_keyd, &prov_default);

	/* A software root and its (empty) CRL, for -crl_check_all. */
	root_key = EVP_EC_gen("P-256");
	root = make_cert("hsmca test root", root_key, NULL, root_key, 1, &one, 1, NULL, now - 86400,
	                 now + 86400L * 3650);
	harness_write_cert(path("root.pem"), root, 0);
	crl = X509_CRL_new();
	{
		ASN1_TIME *t1 = ASN1_TIME_set(NULL, (time_t)now - 60),
		          *t2 = ASN1_TIME_set(NULL, (time_t)now + 86400);
		if (!crl || !X509_CRL_set_version(crl, 1) ||
		    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(root)) ||
		    !X509_CRL_set1_lastUpdate(crl, t1) || !X509_CRL_set1_nextUpdate(crl, t2) ||
		    !X509_CRL_sign(crl, root_key, EVP_sha256()))
			harness_die(__func__);
		ASN1_TIME_free(t1);
		ASN1_TIME_free(t2);
	}
	f = fopen(path("root-crl.pem"), "w");
	if (!f || !PEM_write_X509_CRL(f, crl) || fclose(f) != 0)
		harness_die(__func__);
	X509_CRL_free(crl);

	if (harness_pg_start(&pg, "crld") != 0)
		harness_die(__func__);
	if (db_connect(pg.owner_ci, &db, &err) != DB_OK ||
	    db_migrate(db, NULL, NULL, &applied, &err) != DB_OK) {
		fprintf(stderr, "test_crld: %s\n", err.msg);
		harness_die(__func__);
	}
	PQclear(PQexec(db_pgconn(db), "ALTER ROLE hsmca_app LOGIN"));
	/* The daemon connects as its own role (migration 0011), as in the quickstart. */
	crld_ci = harness_pg_daemon_ci(&pg, db_pgconn(db), "crld");
	ca_make(db, &plain, 0);
	ca_make(db, &sharded, 0);
	ca_make(db, &rsa, 1);
	db_close(db);
	harness_write_cert(path("plain.pem"), plain.cert, 0);
	harness_write_cert(path("sharded.pem"), sharded.cert, 0);
	harness_write_cert(path("rsaca.pem"), rsa.cert, 0);
	harness_setup_phase = 0;
}

static void teardown(void)
{
	harness_pg_remove(&pg);
	struct ca *cas[] = {&plain, &sharded, &rsa};
	for (int i = 0; i < 3; i++) {
		X509_free(cas[i]->cert);
		EVP_PKEY_free(cas[i]->key);
	}
	X509_free(root);
	EVP_PKEY_free(root_key);
	OSSL_PROVIDER_unload(prov_keyd);
	OSSL_PROVIDER_unload(prov_default);
	harness_stop(&h);
}

static void cleanup(void)
{
	harness_pg_remove(&pg);
	if (h.dir[0])
		harness_stop(&h);
}

/* ================= tests ================= */

START_TEST(good_revoked_held_and_released_with_openssl_verify)
{
	struct leaf good, revoked, held, released;
	const char *conf = crld_config("basic", default_authorities);
	const char *crls[] = {NULL, NULL, NULL};
	X509_CRL *crl;
	X509_REVOKED *e;
	char *out;
	int64_t inv = time(NULL) - 3600;

	leaf_issue(&plain, &good, 0, NULL, 0, 0);
	leaf_issue(&plain, &revoked, 0, NULL, 0, 0);
	leaf_issue(&plain, &held, 0, NULL, 0, 0);
	leaf_issue(&plain, &released, 0, NULL, 0, 0);
	cert_revoke(&plain, &revoked, DB_REASON_KEY_COMPROMISE, inv);
	hold(&plain, &held);
	hold(&plain, &released);
	release(&plain, &released);
	ck_assert_msg(crld_once(conf, path("basic.log")) == 0, "%s",
	              harness_slurp(path("basic.log")));

	crls[0] = path("basic/plain.pem");
	ck_assert_msg(verify(&plain, &good, "-crl_check", crls, 0, &out) == 0, "%s", out);
	ck_assert_msg(verify(&plain, &released, "-crl_check", crls, 0, &out) == 0, "%s", out);
	ck_assert_int_ne(verify(&plain, &revoked, "-crl_check", crls, 0, &out), 0);
	ck_assert_msg(strstr(out, "certificate revoked"), "%s", out);
	ck_assert_int_ne(verify(&plain, &held, "-crl_check", crls, 0, &out), 0);
	ck_assert_msg(strstr(out, "certificate revoked"), "%s", out);
	/* The whole chain, the root's CRL too. */
	crls[1] = path("root-crl.pem");
	ck_assert_msg(verify(&plain, &good, "-crl_check_all", crls, 0, &out) == 0, "%s", out);
	ck_assert_int_ne(verify(&plain, &revoked, "-crl_check_all", crls, 0, &out), 0);
	ck_assert_msg(strstr(out, "certificate revoked"), "%s", out);
	ck_assert_int_ne(verify(&plain, &held, "-crl_check_all", crls, 0, &out), 0);
	ck_assert_msg(strstr(out, "certificate revoked"), "%s", out);
	ck_assert_msg(verify(&plain, &released, "-crl_check_all", crls, 0, &out) == 0, "%s", out);
	/* Without the root's CRL the chain check must fail: the check is real. */
	crls[1] = NULL;
	ck_assert_int_ne(verify(&plain, &good, "-crl_check_all", crls, 0, &out), 0);

	/* Reason codes, invalidity date, hold; AKI and a v2 CRL. */
	e = crl_entry(path("basic/plain.crl"), &revoked, &crl);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(entry_reason(e), 1);
	{
		ASN1_GENERALIZEDTIME *g =
		    X509_REVOKED_get_ext_d2i(e, NID_invalidity_date, NULL, NULL);
		struct tm tm;
		ck_assert_ptr_nonnull(g);
		ck_assert(ASN1_TIME_to_tm(g, &tm));
		ck_assert_int_eq((long long)timegm(&tm), (long long)inv);
		ASN1_GENERALIZEDTIME_free(g);
	}
	ck_assert_int_eq(X509_CRL_get_version(crl), 1);
	{
		AUTHORITY_KEYID *aki =
		    X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
		ck_assert_ptr_nonnull(aki);
		ck_assert_int_eq(
		    ASN1_OCTET_STRING_cmp(aki->keyid, X509_get0_subject_key_id(plain.cert)), 0);
		AUTHORITY_KEYID_free(aki);
	}
	ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(plain.cert)), 1);
	X509_CRL_free(crl);
	e = crl_entry(path("basic/plain.crl"), &held, &crl);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(entry_reason(e), 6);
	X509_CRL_free(crl);
	ck_assert_ptr_null(crl_entry(path("basic/plain.crl"), &released, &crl));
	X509_CRL_free(crl);
	ck_assert_ptr_null(crl_entry(path("basic/plain.crl"), &good, &crl));
	X509_CRL_free(crl);
	leaf_free(&good);
	leaf_free(&revoked);
	leaf_free(&held);
	leaf_free(&released);
}
END_TEST

START_TEST(rsa_ca_crl_verifies)
{
	struct leaf good, revoked;
	const char *conf = crld_config("rsa", "authorities: [{name: rsaca}]\n");
	const char *crls[] = {NULL, NULL};
	char *out;

	leaf_issue(&rsa, &good, 0, NULL, 0, 0);
	leaf_issue(&rsa, &revoked, 0, NULL, 0, 0);
	cert_revoke(&rsa, &revoked, DB_REASON_SUPERSEDED, 0);
	ck_assert_msg(crld_once(conf, path("rsa.log")) == 0, "%s", harness_slurp(path("rsa.log")));
	crls[0] = path("rsa/rsaca.pem");
	ck_assert_msg(verify(&rsa, &good, "-crl_check", crls, 0, &out) == 0, "%s", out);
	ck_assert_int_ne(verify(&rsa, &revoked, "-crl_check", crls, 0, &out), 0);
	ck_assert_msg(strstr(out, "certificate revoked"), "%s", out);
	leaf_free(&good);
	leaf_free(&revoked);
}
END_TEST

static long long crl_validity(const char *p)
{
	X509_CRL *c = crl_load(p);
	int days = 0, secs = 0;

	ck_assert_ptr_nonnull(c);
	ck_assert(
	    ASN1_TIME_diff(&days, &secs, X509_CRL_get0_lastUpdate(c), X509_CRL_get0_nextUpdate(c)));
	X509_CRL_free(c);
	return (long long)days * 86400 + secs;
}

START_TEST(database_settings_set_next_update_and_deltas)
{
	struct db_authority_settings st;
	struct db_err err = {0};
	struct db *db = owner_db();
	const char *from_db = crld_config("settings-db", "authorities: [{name: rsaca}]\n");
	const char *override =
	    crld_config("settings-cfg", "authorities: [{name: rsaca, next_update_seconds: 7200,"
	                                " delta_seconds: -1}]\n");
	X509_CRL *crl;
	ASN1_INTEGER *ind;

	db_authority_settings_default(&st);
	st.crl_next_update_seconds = 3600;
	st.delta_crl_seconds = 600;
	ck_assert_msg(db_authority_settings_put(db, rsa.id, &st, "test_crld", &err) == DB_OK, "%s",
	              err.msg);
	db_close(db);
	ck_assert_msg(crld_once(from_db, path("settings-db.log")) == 0, "%s",
	              harness_slurp(path("settings-db.log")));
	ck_assert_int_eq(crl_validity(path("settings-db/rsaca.crl")), 3600);
	/* deltas on: a delta on the base, valid for two periods */
	crl = crl_load(path("settings-db/rsaca-delta.crl"));
	ck_assert_ptr_nonnull(crl);
	ind = X509_CRL_get_ext_d2i(crl, NID_delta_crl, NULL, NULL);
	ck_assert_ptr_nonnull(ind);
	ck_assert_int_eq(ASN1_INTEGER_get(ind), crl_number(path("settings-db/rsaca.crl")));
	ASN1_INTEGER_free(ind);
	X509_CRL_free(crl);
	ck_assert_int_eq(crl_validity(path("settings-db/rsaca-delta.crl")), 1200);
	/* Each publication is recorded for the dashboard (crl_publications, docs/reports.md). */
	db = owner_db();
	{
		char sql[400];
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM crl_publications p JOIN authorities a"
		         " ON a.id = p.authority_id WHERE a.name = 'rsaca' AND p.scope = 'rsaca'"
		         " AND NOT p.delta AND p.number = %lld"
		         " AND p.next_update - p.this_update = interval '3600 seconds'",
		         (long long)crl_number(path("settings-db/rsaca.crl")));
		ck_assert_int_eq(harness_pg_count(db_pgconn(db), sql), 1);
		ck_assert_int_eq(
		    harness_pg_count(db_pgconn(db),
		                     "SELECT count(*) FROM crl_publications WHERE delta"
		                     " AND next_update - this_update = interval"
		                     " '1200 seconds'"),
		    1);
	}
	db_close(db);
	/* the configuration overrides the database */
	ck_assert_msg(crld_once(override, path("settings-cfg.log")) == 0, "%s",
	              harness_slurp(path("settings-cfg.log")));
	ck_assert_int_eq(crl_validity(path("settings-cfg/rsaca.crl")), 7200);
	ck_assert_int_ne(access(path("settings-cfg/rsaca-delta.crl"), F_OK), 0);
	crl = crl_load(path("settings-cfg/rsaca.crl"));
	ck_assert_ptr_null(X509_CRL_get_ext_d2i(crl, NID_freshest_crl, NULL, NULL));
	X509_CRL_free(crl);
	/* back to the defaults for the other tests */
	db = owner_db();
	db_authority_settings_default(&st);
	ck_assert_msg(db_authority_settings_put(db, rsa.id, &st, "test_crld", &err) == DB_OK, "%s",
	              err.msg);
	db_close(db);
}
END_TEST

START_TEST(expired_certificates_leave_after_the_grace_period)
{
	struct leaf old, recent;
	int64_t now = time(NULL);
	const char *c0 = crld_config("grace0", "authorities: [{name: plain}]\n");
	const char *c1 = crld_config("grace1", "schedule: {expired_grace_seconds: 7200}\n"
	                                       "authorities: [{name: plain}]\n");
	X509_CRL *crl;

	/* expired 3 hours ago, and 1 hour ago */
	leaf_issue(&plain, &old, 0, NULL, now - 86400, now - 3 * 3600);
	leaf_issue(&plain, &recent, 0, NULL, now - 86400, now - 3600);
	cert_revoke(&plain, &old, DB_REASON_SUPERSEDED, 0);
	cert_revoke(&plain, &recent, DB_REASON_SUPERSEDED, 0);
	ck_assert_msg(crld_once(c0, path("grace0.log")) == 0, "%s",
	              harness_slurp(path("grace0.log")));
	ck_assert_msg(crld_once(c1, path("grace1.log")) == 0, "%s",
	              harness_slurp(path("grace1.log")));
	ck_assert_ptr_null(crl_entry(path("grace0/plain.crl"), &old, &crl));
	X509_CRL_free(crl);
	ck_assert_ptr_null(crl_entry(path("grace0/plain.crl"), &recent, &crl));
	X509_CRL_free(crl);
	ck_assert_ptr_null(crl_entry(path("grace1/plain.crl"), &old, &crl));
	X509_CRL_free(crl);
	ck_assert_ptr_nonnull(crl_entry(path("grace1/plain.crl"), &recent, &crl));
	X509_CRL_free(crl);
	leaf_free(&old);
	leaf_free(&recent);
}
END_TEST

START_TEST(crl_numbers_grow_across_restarts_and_instances)
{
	const char *a = crld_config("num-a", "authorities: [{name: plain}]\n");
	const char *b = crld_config("num-b", "authorities: [{name: plain}]\n");
	long long n1, n2, na, nb;
	pid_t pa, pb;
	int st;

	ck_assert_msg(crld_once(a, path("num-a.log")) == 0, "%s", harness_slurp(path("num-a.log")));
	n1 = crl_number(path("num-a/plain.crl"));
	ck_assert_msg(crld_once(a, path("num-a.log")) == 0, "%s", harness_slurp(path("num-a.log")));
	n2 = crl_number(path("num-a/plain.crl"));
	ck_assert_int_gt(n1, 0);
	ck_assert_int_gt(n2, n1);
	/* Two instances at once: numbers are never shared. */
	for (int round = 0; round < 3; round++) {
		pa = fork();
		if (pa == 0)
			_exit(crld_once(a, path("num-a.log")));
		pb = fork();
		if (pb == 0)
			_exit(crld_once(b, path("num-b.log")));
		waitpid(pa, &st, 0);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		waitpid(pb, &st, 0);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		na = crl_number(path("num-a/plain.crl"));
		nb = crl_number(path("num-b/plain.crl"));
		ck_assert_int_ne(na, nb);
		ck_assert_int_gt(na, n2);
		ck_assert_int_gt(nb, n2);
		n2 = na > nb ? na : nb;
	}
}
END_TEST

static char *uri_of(GENERAL_NAMES *g)
{
	static char buf[256];
	GENERAL_NAME *n = sk_GENERAL_NAME_value(g, 0);

	ck_assert_int_eq(sk_GENERAL_NAME_num(g), 1);
	ck_assert_int_eq(n->type, GEN_URI);
	snprintf(buf, sizeof(buf), "%.*s", ASN1_STRING_length(n->d.uniformResourceIdentifier),
	         (const char *)ASN1_STRING_get0_data(n->d.uniformResourceIdentifier));
	return buf;
}

START_TEST(shards_carry_an_idp_matching_the_certificates_crldp)
{
	struct leaf l0, l1;
	const char *conf = crld_config("shards", "authorities: [{name: sharded, shards: 2}]\n");
	const char *crls[] = {NULL, NULL};
	X509_CRL *crl;
	ISSUING_DIST_POINT *idp;
	CRL_DIST_POINTS *dps;
	char *out, want[300];

	leaf_issue(&sharded, &l0, 0, "http://crl.example/sharded-0.crl", 0, 0);
	leaf_issue(&sharded, &l1, 1, "http://crl.example/sharded-1.crl", 0, 0);
	cert_revoke(&sharded, &l1, DB_REASON_KEY_COMPROMISE, 0);
	cert_revoke(&sharded, &l0, DB_REASON_AFFILIATION_CHANGED, 0);
	ck_assert_msg(crld_once(conf, path("shards.log")) == 0, "%s",
	              harness_slurp(path("shards.log")));
	for (int s = 0; s < 2; s++) {
		struct leaf *mine = s ? &l1 : &l0, *other = s ? &l0 : &l1;
		crl = crl_load(path("shards/sharded-%d.crl", s));
		ck_assert_ptr_nonnull(crl);
		idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, NULL, NULL);
		ck_assert_ptr_nonnull(idp);
		ck_assert_int_eq(idp->distpoint->type, 0);
		snprintf(want, sizeof(want), "http://crl.example/sharded-%d.crl", s);
		ck_assert_str_eq(uri_of(idp->distpoint->name.fullname), want);
		dps = X509_get_ext_d2i(mine->cert, NID_crl_distribution_points, NULL, NULL);
		ck_assert_str_eq(uri_of(sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname),
		                 want);
		CRL_DIST_POINTS_free(dps);
		ISSUING_DIST_POINT_free(idp);
		X509_CRL_free(crl);
		/* the shard lists its own certificates only */
		ck_assert_ptr_nonnull(crl_entry(path("shards/sharded-%d.crl", s), mine, &crl));
		X509_CRL_free(crl);
		ck_assert_ptr_null(crl_entry(path("shards/sharded-%d.crl", s), other, &crl));
		X509_CRL_free(crl);
		/* openssl accepts the shard for its certificate and finds it revoked... */
		crls[0] = path("shards/sharded-%d.pem", s);
		ck_assert_int_ne(verify(&sharded, mine, "-crl_check", crls, 0, &out), 0);
		ck_assert_msg(strstr(out, "certificate revoked"), "%s", out);
		/* ...and does not take the other shard's CRL as covering it */
		crls[0] = path("shards/sharded-%d.pem", 1 - s);
		ck_assert_int_ne(verify(&sharded, mine, "-crl_check", crls, 0, &out), 0);
		ck_assert_msg(strstr(out, "unable to get certificate CRL") ||
		                  strstr(out, "different CRL scope"),
		              "%s", out);
	}
	/* The whole-CA CRL lists both, without an IDP. */
	ck_assert_ptr_nonnull(crl_entry(path("shards/sharded.crl"), &l0, &crl));
	ck_assert_ptr_null(X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, NULL, NULL));
	X509_CRL_free(crl);
	ck_assert_ptr_nonnull(crl_entry(path("shards/sharded.crl"), &l1, &crl));
	X509_CRL_free(crl);
	leaf_free(&l0);
	leaf_free(&l1);
}
END_TEST

static void sql_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long sql_count(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The full CRL's IDP is the authority's setting in the database (PUT .../settings
 * full_crl_idp, migration 0015): crld's configuration seeded it (the default set-up's
 * "idp: false"), must agree with it when it names one, and follows it when it does not. */
START_TEST(unpartitioned_ca_carries_an_idp_when_the_database_says_so)
{
	struct leaf l;
	const char *conf;
	const char *crls[] = {NULL, NULL};
	ISSUING_DIST_POINT *idp;
	X509_CRL *crl;
	char *out;

	leaf_issue(&plain, &l, 0, "http://crl.example/plain.crl", 0, 0);
	cert_revoke(&plain, &l, DB_REASON_KEY_COMPROMISE, 0);
	/* Seeded from the configuration that ran first (this one, if none ran before), and
	 * refused when it disagrees. */
	conf = crld_config("idp-seed", default_authorities);
	ck_assert_msg(crld_once(conf, path("idp-seed.log")) == 0, "%s",
	              harness_slurp(path("idp-seed.log")));
	ck_assert_int_eq(sql_count("SELECT count(*) FROM authority_settings s JOIN authorities a"
	                           " ON a.id = s.authority_id WHERE a.name = 'plain'"
	                           " AND s.full_crl_idp = false"),
	                 1);
	conf = crld_config("idp-refused", "authorities: [{name: plain, idp: true}]\n");
	ck_assert_int_ne(crld_once(conf, path("idp-refused.log")), 0);
	ck_assert_msg(strstr(harness_slurp(path("idp-refused.log")),
	                     "full_crl_idp false differs from idp true"),
	              "%s", harness_slurp(path("idp-refused.log")));
	/* An officer turns it on; crld, its configuration silent, follows the database. */
	sql_ok("UPDATE authority_settings SET full_crl_idp = true WHERE authority_id ="
	       " (SELECT id FROM authorities WHERE name = 'plain')");
	conf = crld_config("idp", "authorities: [{name: plain}]\n");
	ck_assert_msg(crld_once(conf, path("idp.log")) == 0, "%s", harness_slurp(path("idp.log")));
	crl = crl_load(path("idp/plain.crl"));
	idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, NULL, NULL);
	ck_assert_ptr_nonnull(idp);
	ck_assert_str_eq(uri_of(idp->distpoint->name.fullname), "http://crl.example/plain.crl");
	ISSUING_DIST_POINT_free(idp);
	X509_CRL_free(crl);
	crls[0] = path("idp/plain.pem");
	ck_assert_int_ne(verify(&plain, &l, "-crl_check", crls, 0, &out), 0);
	ck_assert_msg(strstr(out, "certificate revoked"), "%s", out);
	/* Back to what the other tests' configuration says. */
	sql_ok("UPDATE authority_settings SET full_crl_idp = false WHERE authority_id ="
	       " (SELECT id FROM authorities WHERE name = 'plain')");
	leaf_free(&l);
}
END_TEST

/* Wait up to ms for file to hold a CRL whose number is above after; its number, or -1. */
static long long wait_newer(const char *file, long long after, int ms)
{
	for (int i = 0; i < ms / 50; i++) {
		long long n = crl_number(file);
		if (n > after)
			return n;
		usleep(50000);
	}
	return -1;
}

/* 1 if the CRL at p lists all three leaves. */
static int lists_all(const char *p, const struct leaf *a, const struct leaf *b,
                     const struct leaf *c)
{
	X509_CRL *crl;
	int n = crl_entry(p, a, &crl) != NULL;

	X509_CRL_free(crl);
	n += crl_entry(p, b, &crl) != NULL;
	X509_CRL_free(crl);
	n += crl_entry(p, c, &crl) != NULL;
	X509_CRL_free(crl);
	return n == 3;
}

START_TEST(delta_crls_list_changes_since_the_base)
{
	struct leaf before, revoked, held, released, good;
	const char *conf =
	    crld_config("delta", "schedule: {debounce_ms: 200}\n"
	                         "authorities: [{name: plain, delta_seconds: 600}]\n");
	const char *crls[] = {NULL, NULL, NULL};
	long long base, dnum;
	X509_CRL *crl, *dcrl;
	X509_REVOKED *e;
	ASN1_INTEGER *ind;
	STACK_OF(DIST_POINT) * fresh;
	char *out;
	pid_t pid;

	leaf_issue(&plain, &before, 0, NULL, 0, 0);
	leaf_issue(&plain, &revoked, 0, NULL, 0, 0);
	leaf_issue(&plain, &held, 0, NULL, 0, 0);
	leaf_issue(&plain, &released, 0, NULL, 0, 0);
	leaf_issue(&plain, &good, 0, NULL, 0, 0);
	cert_revoke(&plain, &before, DB_REASON_KEY_COMPROMISE, 0);
	hold(&plain, &released);
	pid = crld_start(conf, path("delta.log"));
	base = wait_newer(path("delta/plain.crl"), 0, 20000);
	ck_assert_msg(base > 0, "%s", harness_slurp(path("delta.log")));
	ck_assert_int_gt(wait_newer(path("delta/plain-delta.crl"), base, 20000), base);
	/* The base names where the delta is. */
	crl = crl_load(path("delta/plain.crl"));
	fresh = X509_CRL_get_ext_d2i(crl, NID_freshest_crl, NULL, NULL);
	ck_assert_ptr_nonnull(fresh);
	ck_assert_str_eq(uri_of(sk_DIST_POINT_value(fresh, 0)->distpoint->name.fullname),
	                 "http://crl.example/plain-delta.crl");
	sk_DIST_POINT_pop_free(fresh, DIST_POINT_free);
	X509_CRL_free(crl);
	ck_assert_ptr_nonnull(crl_entry(path("delta/plain.crl"), &released, &crl));
	X509_CRL_free(crl);

	/* Changes after the base: a revocation, a hold and a release. */
	dnum = crl_number(path("delta/plain-delta.crl"));
	cert_revoke(&plain, &revoked, DB_REASON_CA_COMPROMISE, 0);
	hold(&plain, &held);
	release(&plain, &released);
	dnum = wait_newer(path("delta/plain-delta.crl"), dnum, 10000);
	ck_assert_int_gt(dnum, base);
	/* The three announcements may come in more than one debounce window: wait (generously)
	 * for a delta that lists all three, then read it. */
	for (int i = 0; i < 600; i++) {
		if (lists_all(path("delta/plain-delta.crl"), &revoked, &held, &released))
			break;
		usleep(50000);
	}
	ck_assert_int_eq(crld_stop_pid(pid, path("delta.log")), 0);

	dcrl = crl_load(path("delta/plain-delta.crl"));
	ck_assert_ptr_nonnull(dcrl);
	ind = X509_CRL_get_ext_d2i(dcrl, NID_delta_crl, NULL, NULL);
	ck_assert_ptr_nonnull(ind);
	ck_assert_int_eq(ASN1_INTEGER_get(ind), base);
	ASN1_INTEGER_free(ind);
	ck_assert_ptr_null(X509_CRL_get_ext_d2i(dcrl, NID_freshest_crl, NULL, NULL));
	ck_assert_int_eq(X509_CRL_verify(dcrl, X509_get0_pubkey(plain.cert)), 1);
	X509_CRL_free(dcrl);
	e = crl_entry(path("delta/plain-delta.crl"), &revoked, &dcrl);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(entry_reason(e), 2);
	X509_CRL_free(dcrl);
	e = crl_entry(path("delta/plain-delta.crl"), &held, &dcrl);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(entry_reason(e), 6);
	X509_CRL_free(dcrl);
	e = crl_entry(path("delta/plain-delta.crl"), &released, &dcrl);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(entry_reason(e), 8); /* removeFromCRL */
	X509_CRL_free(dcrl);
	/* What the base has already is not repeated. */
	ck_assert_ptr_null(crl_entry(path("delta/plain-delta.crl"), &before, &dcrl));
	X509_CRL_free(dcrl);

	/* openssl with base + delta: the late revocation counts, the released one is good. */
	crls[0] = path("delta/plain.pem");
	crls[1] = path("delta/plain-delta.pem");
	ck_assert_int_ne(verify(&plain, &revoked, "-crl_check", crls, 1, &out), 0);
	ck_assert_msg(strstr(out, "certificate revoked"), "%s", out);
	ck_assert_msg(verify(&plain, &good, "-crl_check", crls, 1, &out) == 0, "%s", out);
	/* the base alone still says what it said */
	crls[1] = NULL;
	ck_assert_msg(verify(&plain, &revoked, "-crl_check", crls, 0, &out) == 0, "%s", out);
	leaf_free(&before);
	leaf_free(&revoked);
	leaf_free(&held);
	leaf_free(&released);
	leaf_free(&good);
}
END_TEST

START_TEST(revocation_is_published_once_the_debounce_window_has_passed)
{
	struct leaf l;
	const char *conf = crld_config("debounce", "schedule: {debounce_ms: 500}\n"
	                                           "authorities: [{name: plain}]\n");
	long long n;
	X509_CRL *crl;
	struct timespec t0, t1;
	pid_t pid;
	double took;

	leaf_issue(&plain, &l, 0, NULL, 0, 0);
	pid = crld_start(conf, path("debounce.log"));
	n = wait_newer(path("debounce/plain.crl"), 0, 20000);
	ck_assert_int_gt(n, 0);
	ck_assert_ptr_null(crl_entry(path("debounce/plain.crl"), &l, &crl));
	X509_CRL_free(crl);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cert_revoke(&plain, &l, DB_REASON_KEY_COMPROMISE, 0);
	for (int i = 0; i < 100; i++) {
		long long m = wait_newer(path("debounce/plain.crl"), n, 10000);
		ck_assert_int_gt(m, n);
		n = m;
		if (crl_entry(path("debounce/plain.crl"), &l, &crl))
			break;
		X509_CRL_free(crl);
		crl = NULL;
	}
	X509_CRL_free(crl);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_ptr_nonnull(crl_entry(path("debounce/plain.crl"), &l, &crl));
	X509_CRL_free(crl);
	/* Not before the debounce window (0.5 s) has passed: the announcement is held, so that a
	 * burst of revocations makes one CRL. A lower bound holds on any machine. */
	ck_assert_msg(took >= 0.5, "published after %.3f s, inside the 0.5 s debounce window",
	              took);
	/* And because of the announcement, not the schedule (hours here): the window plus one
	 * small build, with room for a loaded machine. */
	ck_assert_msg(took < 30.0, "took %.2f s", took);
	ck_assert_int_eq(crld_stop_pid(pid, path("debounce.log")), 0);
	leaf_free(&l);
}
END_TEST

/* One HTTP/1.1 request; the whole response into out. Returns the status code. */
static int http_get(const char *target, const char *extra_header, char *out, size_t n)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
	char req[1024];
	size_t len = 0;
	int s = socket(AF_INET, SOCK_STREAM, 0), code = -1;
	ssize_t k;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (s >= 0)
			close(s);
		return -1;
	}
	snprintf(req, sizeof(req),
	         "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s\r\n", target,
	         extra_header ? extra_header : "", extra_header ? "\r\n" : "");
	if (write(s, req, strlen(req)) < 0) {
		close(s);
		return -1;
	}
	while (len + 1 < n && (k = read(s, out + len, n - len - 1)) > 0)
		len += (size_t)k;
	out[len] = '\0';
	close(s);
	sscanf(out, "HTTP/1.1 %d", &code);
	return code;
}

/* GET /metrics from the metrics listener (metrics_port) instead of the CRL listener. */
static int metrics_get(char *out, size_t n)
{
	int saved = http_port, code;

	http_port = metrics_port;
	code = http_get("/metrics", NULL, out, n);
	http_port = saved;
	return code;
}

static void header_value(const char *resp, const char *name, char *out, size_t n)
{
	const char *p = strcasestr(resp, name), *end;

	out[0] = '\0';
	if (!p)
		return;
	p += strlen(name);
	while (*p == ':' || *p == ' ')
		p++;
	end = strstr(p, "\r\n");
	snprintf(out, n, "%.*s", (int)(end ? end - p : 0), p);
}

/* A free port for a test (a failure here fails the test, as a check, rather than aborting
 * like harness_free_port, which serves set-ups). */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert(s >= 0 && !bind(s, (struct sockaddr *)&a, sizeof(a)) &&
	          !getsockname(s, (struct sockaddr *)&a, &len));
	port = ntohs(a.sin_port);
	close(s);
	return port;
}

START_TEST(http_serves_crls_with_etag_and_304)
{
	static char resp[1 << 20];
	char extra[600], conf_extra[600], etag[128], lm[128], hdr[300];
	const char *conf;
	const char *body;
	size_t size;
	struct stat st;
	pid_t pid;

	http_port = free_port();
	do
		metrics_port = free_port();
	while (metrics_port == http_port);
	snprintf(conf_extra, sizeof(conf_extra),
	         "listen: {address: 127.0.0.1, port: %d}\nmetrics_listen: {address: 127.0.0.1, "
	         "port: %d}\nauthorities: [{name: plain}]\n",
	         http_port, metrics_port);
	conf = crld_config("http", conf_extra);
	pid = crld_start(conf, path("http.log"));
	ck_assert_int_gt(wait_newer(path("http/plain.crl"), 0, 20000), 0);
	for (int i = 0; i < 100 && http_get("/health", NULL, resp, sizeof(resp)) != 200; i++)
		usleep(50000);
	ck_assert_int_eq(http_get("/health", NULL, resp, sizeof(resp)), 200);
	ck_assert_int_eq(http_get("/plain.crl", NULL, resp, sizeof(resp)), 200);
	ck_assert_ptr_nonnull(strstr(resp, "application/pkix-crl"));
	header_value(resp, "ETag", etag, sizeof(etag));
	header_value(resp, "Last-Modified", lm, sizeof(lm));
	ck_assert(etag[0] == '"');
	ck_assert(lm[0]);
	/* the body is the published file, byte for byte */
	body = strstr(resp, "\r\n\r\n") + 4;
	ck_assert_int_eq(stat(path("http/plain.crl"), &st), 0);
	size = (size_t)st.st_size;
	{
		FILE *f = fopen(path("http/plain.crl"), "rb");
		char *file = malloc(size);
		ck_assert(f && fread(file, 1, size, f) == size);
		fclose(f);
		ck_assert_int_eq(memcmp(body, file, size), 0);
		free(file);
	}
	snprintf(hdr, sizeof(hdr), "If-None-Match: %s", etag);
	ck_assert_int_eq(http_get("/plain.crl", hdr, resp, sizeof(resp)), 304);
	snprintf(hdr, sizeof(hdr), "If-Modified-Since: %s", lm);
	ck_assert_int_eq(http_get("/plain.crl", hdr, resp, sizeof(resp)), 304);
	ck_assert_int_eq(http_get("/plain.crl", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
	                          resp, sizeof(resp)),
	                 200);
	ck_assert_int_eq(http_get("/plain.pem", NULL, resp, sizeof(resp)), 200);
	ck_assert_ptr_nonnull(strstr(resp, "-----BEGIN X509 CRL-----"));
	/* nothing outside the folder, nothing but CRL names */
	ck_assert_int_eq(http_get("/../plain.crl", NULL, resp, sizeof(resp)), 404);
	ck_assert_int_eq(http_get("/http.yaml", NULL, resp, sizeof(resp)), 404);
	ck_assert_int_eq(http_get("/nosuch.crl", NULL, resp, sizeof(resp)), 404);
	/* a new CRL, a new ETag */
	snprintf(extra, sizeof(extra), "If-None-Match: %s", etag);
	{
		struct leaf l;
		long long n = crl_number(path("http/plain.crl"));
		leaf_issue(&plain, &l, 0, NULL, 0, 0);
		cert_revoke(&plain, &l, DB_REASON_SUPERSEDED, 0);
		ck_assert_int_gt(wait_newer(path("http/plain.crl"), n, 10000), n);
		leaf_free(&l);
	}
	ck_assert_int_eq(http_get("/plain.crl", extra, resp, sizeof(resp)), 200);
	/* Prometheus metrics: the number just published, when, and not stale. */
	{
		char want[128];
		long long n = crl_number(path("http/plain.crl"));
		/* The file is renamed into place a moment before crld records what it published:
		 * wait for the record rather than race it. */
		snprintf(want, sizeof(want),
		         "hsmca_crld_crl_number{crl=\"plain\",kind=\"full\"} %lld\n", n);
		for (int i = 0; i < 100; i++) {
			ck_assert_int_eq(metrics_get(resp, sizeof(resp)), 200);
			if (strstr(resp, want))
				break;
			usleep(100 * 1000);
		}
		ck_assert_ptr_nonnull(strstr(resp, "text/plain; version=0.0.4"));
		ck_assert_msg(strstr(resp, want), "%s", resp);
		ck_assert_ptr_nonnull(
		    strstr(resp, "hsmca_crld_stale{crl=\"plain\",kind=\"full\"} 0\n"));
		/* /metrics is served on the metrics listener alone (metrics_listen): the CRL
		 * listener, which faces the network, answers 404 for it; the metrics listener
		 * answers /health but no CRL. */
		ck_assert_int_eq(http_get("/metrics", NULL, resp, sizeof(resp)), 404);
		ck_assert_ptr_null(strstr(resp, "hsmca_crld_"));
		{
			int saved = http_port;
			http_port = metrics_port;
			ck_assert_int_eq(http_get("/health", NULL, resp, sizeof(resp)), 200);
			ck_assert_int_eq(http_get("/plain.crl", NULL, resp, sizeof(resp)), 404);
			http_port = saved;
		}
		ck_assert_int_eq(metrics_get(resp, sizeof(resp)), 200);
		ck_assert_ptr_nonnull(strstr(
		    resp,
		    "hsmca_crld_last_publish_timestamp_seconds{crl=\"plain\",kind=\"full\"} 1"));
		ck_assert_ptr_nonnull(
		    strstr(resp, "hsmca_crld_build_failures_total{crl=\"plain\"} 0\n"));
	}
	ck_assert_int_eq(crld_stop_pid(pid, path("http.log")), 0);
}
END_TEST

/* The caIssuers URL of an authority's certificates: /ca/<name>.der serves its certificate from
 * the database, DER, application/pkix-cert, with the same caching headers as the CRLs; an
 * authority crld does not serve, or a name that is none, is 404; a CA outside the database is
 * served from the file ca/<name>.der of the publish folder. */
START_TEST(http_serves_the_issuer_certificate_at_its_ca_issuers_path)
{
	static char resp[1 << 16];
	char conf_extra[600], etag[128], lm[128], hdr[300], len_text[32];
	unsigned char *der = NULL;
	const char *conf, *body;
	int der_len;
	pid_t pid;

	http_port = free_port();
	do
		metrics_port = free_port();
	while (metrics_port == http_port);
	snprintf(conf_extra, sizeof(conf_extra),
	         "listen: {address: 127.0.0.1, port: %d}\nmetrics_listen: {address: 127.0.0.1, "
	         "port: %d}\nauthorities: [{name: plain}]\n",
	         http_port, metrics_port);
	conf = crld_config("issuer", conf_extra);
	pid = crld_start(conf, path("issuer.log"));
	ck_assert_int_gt(wait_newer(path("issuer/plain.crl"), 0, 20000), 0);
	der_len = i2d_X509(plain.cert, &der);
	ck_assert_int_gt(der_len, 0);
	ck_assert_int_eq(http_get("/ca/plain.der", NULL, resp, sizeof(resp)), 200);
	header_value(resp, "Content-Type", hdr, sizeof(hdr));
	ck_assert_str_eq(hdr, "application/pkix-cert");
	header_value(resp, "Content-Length", len_text, sizeof(len_text));
	ck_assert_int_eq(atoi(len_text), der_len);
	body = strstr(resp, "\r\n\r\n") + 4;
	ck_assert_int_eq(memcmp(body, der, (size_t)der_len), 0);
	header_value(resp, "ETag", etag, sizeof(etag));
	header_value(resp, "Last-Modified", lm, sizeof(lm));
	header_value(resp, "Cache-Control", hdr, sizeof(hdr));
	ck_assert(etag[0] == '"');
	ck_assert(lm[0]);
	ck_assert_str_eq(hdr, "public, no-cache");
	snprintf(hdr, sizeof(hdr), "If-None-Match: %s", etag);
	ck_assert_int_eq(http_get("/ca/plain.der", hdr, resp, sizeof(resp)), 304);
	snprintf(hdr, sizeof(hdr), "If-Modified-Since: %s", lm);
	ck_assert_int_eq(http_get("/ca/plain.der", hdr, resp, sizeof(resp)), 304);
	/* sharded is in the database, but this crld does not serve it; nosuch is nowhere */
	ck_assert_int_eq(http_get("/ca/sharded.der", NULL, resp, sizeof(resp)), 404);
	ck_assert_int_eq(http_get("/ca/nosuch.der", NULL, resp, sizeof(resp)), 404);
	ck_assert_int_eq(http_get("/ca/plain.pem", NULL, resp, sizeof(resp)), 404);
	ck_assert_int_eq(http_get("/ca/../plain.der", NULL, resp, sizeof(resp)), 404);
	ck_assert_int_eq(http_get("/ca/Plain.der", NULL, resp, sizeof(resp)), 404);
	ck_assert_int_eq(http_get("/ca/.der", NULL, resp, sizeof(resp)), 404);
	OPENSSL_free(der);
	/* A CA crld does not load (an offline root): the file ca/<name>.der the operator put into
	 * the publish folder, served the same way. */
	der = NULL;
	der_len = i2d_X509(root, &der);
	ck_assert_int_eq(mkdir(path("issuer/ca"), 0755), 0);
	{
		FILE *f = fopen(path("issuer/ca/offline-root.der"), "wb");
		ck_assert(f && fwrite(der, 1, (size_t)der_len, f) == (size_t)der_len);
		fclose(f);
	}
	ck_assert_int_eq(http_get("/ca/offline-root.der", NULL, resp, sizeof(resp)), 200);
	header_value(resp, "Content-Type", hdr, sizeof(hdr));
	ck_assert_str_eq(hdr, "application/pkix-cert");
	body = strstr(resp, "\r\n\r\n") + 4;
	ck_assert_int_eq(memcmp(body, der, (size_t)der_len), 0);
	header_value(resp, "ETag", etag, sizeof(etag));
	snprintf(hdr, sizeof(hdr), "If-None-Match: %s", etag);
	ck_assert_int_eq(http_get("/ca/offline-root.der", hdr, resp, sizeof(resp)), 304);
	OPENSSL_free(der);
	ck_assert_int_eq(crld_stop_pid(pid, path("issuer.log")), 0);
}
END_TEST

/* SQL as the schema owner, checked. */
static void sql_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sql_ok(const char *fmt, ...)
{
	struct db *db = owner_db();
	char sql[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	harness_pg_exec_ok(db_pgconn(db), sql);
	db_close(db);
}

static long long sql_count(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long sql_count(const char *fmt, ...)
{
	struct db *db = owner_db();
	char sql[2048];
	long long n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	n = harness_pg_count(db_pgconn(db), sql);
	db_close(db);
	return n;
}

/* The change log keeps only what a delta on a base still in use can need: a thousand changes
 * before the base go, the changes after it stay, and base + delta still say the truth. */
START_TEST(change_log_is_pruned_and_deltas_stay_right)
{
	static char resp[1 << 16];
	struct leaf toggled, late, good;
	char extra[600], line[128];
	const char *crls[] = {NULL, NULL, NULL};
	const char *conf;
	long long base, dnum, rows = -1;
	X509_REVOKED *e;
	X509_CRL *crl;
	char *out;
	pid_t pid;

	leaf_issue(&rsa, &toggled, 0, NULL, 0, 0);
	leaf_issue(&rsa, &late, 0, NULL, 0, 0);
	leaf_issue(&rsa, &good, 0, NULL, 0, 0);
	/* 1,000 changes: held and released 500 times. */
	sql_ok("DO $$ BEGIN FOR i IN 1..500 LOOP"
	       " UPDATE certificates SET status = 'hold', revoked_at = now(),"
	       " revocation_reason = 6 WHERE authority_id = %d AND encode(serial, 'hex') = '%s';"
	       " UPDATE certificates SET status = 'issued', revoked_at = NULL,"
	       " revocation_reason = NULL WHERE authority_id = %d AND encode(serial, 'hex') = '%s';"
	       " END LOOP; END $$",
	       (int)rsa.id, toggled.hex, (int)rsa.id, toggled.hex);
	ck_assert_int_ge(
	    sql_count("SELECT count(*) FROM crl_changes WHERE authority_id = %d", (int)rsa.id),
	    1000);

	http_port = free_port();
	do
		metrics_port = free_port();
	while (metrics_port == http_port);
	snprintf(extra, sizeof(extra),
	         "listen: {address: 127.0.0.1, port: %d}\nmetrics_listen: {address: 127.0.0.1, "
	         "port: %d}\n"
	         "schedule: {debounce_ms: 200, prune_margin_seconds: 0}\n"
	         "authorities: [{name: rsaca, next_update_seconds: 3600, delta_seconds: 600}]\n",
	         http_port, metrics_port);
	conf = crld_config("prune", extra);
	pid = crld_start(conf, path("prune.log"));
	base = wait_newer(path("prune/rsaca.crl"), 0, 20000);
	ck_assert_msg(base > 0, "%s", harness_slurp(path("prune.log")));
	ck_assert_int_gt(wait_newer(path("prune/rsaca-delta.crl"), base, 20000), base);
	/* Everything before the base goes, in batches between builds. */
	for (int i = 0; i < 200; i++) {
		rows = sql_count("SELECT count(*) FROM crl_changes WHERE authority_id = %d",
		                 (int)rsa.id);
		if (rows == 0)
			break;
		usleep(50000);
	}
	ck_assert_msg(rows == 0, "%lld changes left; %s", rows, harness_slurp(path("prune.log")));
	/* and the size is exported */
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(metrics_get(resp, sizeof(resp)), 200);
		snprintf(line, sizeof(line), "\nhsmca_crld_change_log_rows %lld\n",
		         sql_count("SELECT count(*) FROM crl_changes"));
		if (strstr(resp, line))
			break;
		usleep(50000);
	}
	ck_assert_msg(strstr(resp, line), "%s", resp);
	ck_assert_ptr_nonnull(strstr(resp, "\nhsmca_crld_database_up 1\n"));

	/* Changes after the base: kept, and listed by the next delta. */
	dnum = crl_number(path("prune/rsaca-delta.crl"));
	cert_revoke(&rsa, &late, DB_REASON_KEY_COMPROMISE, 0);
	hold(&rsa, &toggled);
	dnum = wait_newer(path("prune/rsaca-delta.crl"), dnum, 10000);
	for (int i = 0; i < 50 && !crl_entry(path("prune/rsaca-delta.crl"), &toggled, &crl); i++) {
		X509_CRL_free(crl);
		crl = NULL;
		dnum = wait_newer(path("prune/rsaca-delta.crl"), dnum, 2000);
	}
	X509_CRL_free(crl);
	usleep(600000);
	ck_assert_int_eq(
	    sql_count("SELECT count(*) FROM crl_changes WHERE authority_id = %d", (int)rsa.id), 2);
	ck_assert_int_eq(crld_stop_pid(pid, path("prune.log")), 0);
	e = crl_entry(path("prune/rsaca-delta.crl"), &late, &crl);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(entry_reason(e), 1);
	X509_CRL_free(crl);
	e = crl_entry(path("prune/rsaca-delta.crl"), &toggled, &crl);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(entry_reason(e), 6);
	X509_CRL_free(crl);
	crls[0] = path("prune/rsaca.pem");
	crls[1] = path("prune/rsaca-delta.pem");
	ck_assert_int_ne(verify(&rsa, &late, "-crl_check", crls, 1, &out), 0);
	ck_assert_msg(strstr(out, "certificate revoked"), "%s", out);
	ck_assert_int_ne(verify(&rsa, &toggled, "-crl_check", crls, 1, &out), 0);
	ck_assert_msg(verify(&rsa, &good, "-crl_check", crls, 1, &out) == 0, "%s", out);
	leaf_free(&toggled);
	leaf_free(&late);
	leaf_free(&good);
}
END_TEST

/* Where certificates' CRL distribution points point comes from the database; crld publishes
 * the shards it names and refuses a configuration that says otherwise, naming both values. */
START_TEST(crl_distribution_is_the_databases_and_a_disagreement_is_refused)
{
	struct db *db = owner_db();
	struct db_err err = {0};
	char url[DB_CRL_URL_MAX + 1], text[2048];
	const char *conf, *log;
	struct stat st;
	int shards;

	/* The first claim stores, a later one reads what is stored. */
	ck_assert_msg(db_crl_distribution_claim(db, sharded.id, "http://crl.example/", 2, "test",
	                                        url, &shards, &err) == DB_OK,
	              "%s", err.msg);
	ck_assert_str_eq(url, "http://crl.example/");
	ck_assert_int_eq(shards, 2);
	ck_assert_int_eq(db_crl_distribution_claim(db, sharded.id, "http://other.example/", 4,
	                                           "test", url, &shards, &err),
	                 DB_OK);
	ck_assert_str_eq(url, "http://crl.example/");
	ck_assert_int_eq(shards, 2);
	db_close(db);

	/* Agreement: shards left out are the database's. */
	conf = crld_config("dpagree", "authorities: [{name: sharded}]\n");
	ck_assert_msg(crld_once(conf, path("dpagree.log")) == 0, "%s",
	              harness_slurp(path("dpagree.log")));
	ck_assert_int_eq(stat(path("dpagree/sharded-1.crl"), &st), 0);
	conf = crld_config("dpsame", "authorities: [{name: sharded, shards: 2}]\n");
	ck_assert_int_eq(crld_once(conf, path("dpsame.log")), 0);

	/* Other shards than the database's. */
	conf = crld_config("dpshards", "authorities: [{name: sharded, shards: 4}]\n");
	log = path("dpshards.log");
	ck_assert_int_eq(crld_once(conf, log), 1);
	ck_assert_msg(strstr(harness_slurp(log), "crl_shards 2 differs from shards 4"), "%s",
	              harness_slurp(log));
	ck_assert_int_ne(stat(path("dpshards/sharded.crl"), &st), 0);

	/* Another base URL than the database's. */
	mkdir(path("dpurl"), 0755);
	snprintf(text, sizeof(text),
	         "database: \"%s connect_timeout=3\"\n"
	         "publish: {folder: %s, base_url: \"http://other.example/\"}\n"
	         "authorities: [{name: sharded}]\n",
	         crld_ci, path("dpurl"));
	harness_write_text(path("dpurl.yaml"), text);
	log = path("dpurl.log");
	ck_assert_int_eq(crld_once(path("dpurl.yaml"), log), 1);
	ck_assert_msg(strstr(harness_slurp(log), "crl_base_url \"http://crl.example/\"") &&
	                  strstr(harness_slurp(log), "publish.base_url \"http://other.example/\""),
	              "%s", harness_slurp(log));
	sql_ok("UPDATE authority_settings SET crl_base_url = '', crl_shards = 0"
	       " WHERE authority_id = %d",
	       (int)sharded.id);
}
END_TEST

/* PostgreSQL down at start: crld runs degraded, serves what is published, says so on /health
 * and in its log, and publishes once the database is back. */
START_TEST(starts_degraded_without_the_database_and_publishes_once_it_is_up)
{
	static char resp[1 << 16];
	char extra[300];
	const char *conf, *log = path("nodb.log");
	long long n0, n1;
	pid_t pid;
	int st = 0;

	http_port = free_port();
	do
		metrics_port = free_port();
	while (metrics_port == http_port);
	snprintf(extra, sizeof(extra),
	         "listen: {address: 127.0.0.1, port: %d}\nmetrics_listen: {address: 127.0.0.1, "
	         "port: %d}\nauthorities: [{name: plain}]\n",
	         http_port, metrics_port);
	conf = crld_config("nodb", extra);
	ck_assert_int_eq(crld_once(conf, path("nodb-once.log")), 0);
	n0 = crl_number(path("nodb/plain.crl"));
	ck_assert_int_eq(harness_pgtest(&pg, "stop", NULL), 0);
	/* --once cannot publish without it */
	ck_assert_int_eq(crld_once(conf, path("nodb-once.log")), 1);
	pid = crld_start(conf, log);
	for (int i = 0; i < 200; i++) {
		st = http_get("/health", NULL, resp, sizeof(resp));
		if (st == 503)
			break;
		usleep(50000);
	}
	ck_assert_int_eq(st, 503);
	/* the state alone: nothing of what libpq said */
	ck_assert_msg(strstr(resp, "\r\n\r\ndegraded") && strlen(strstr(resp, "\r\n\r\n") + 4) < 12,
	              "%s", resp);
	ck_assert_int_eq(http_get("/plain.crl", NULL, resp, sizeof(resp)), 200);
	ck_assert_int_eq(metrics_get(resp, sizeof(resp)), 200);
	ck_assert_ptr_nonnull(strstr(resp, "\nhsmca_crld_database_up 0\n"));
	ck_assert_int_eq(harness_pgtest(&pg, "start", "--fast"), 0);
	n1 = wait_newer(path("nodb/plain.crl"), n0, 40000);
	ck_assert_msg(n1 > n0, "%s", harness_slurp(log));
	for (int i = 0; i < 100 && http_get("/health", NULL, resp, sizeof(resp)) != 200; i++)
		usleep(50000);
	ck_assert_int_eq(http_get("/health", NULL, resp, sizeof(resp)), 200);
	ck_assert_int_eq(crld_stop_pid(pid, log), 0);
	ck_assert_msg(strstr(harness_slurp(log), "degraded: database:"), "%s", harness_slurp(log));
}
END_TEST

static int no_entries(void *arg, struct crl_entry *e, int *got, char *why, size_t n)
{
	(void)arg;
	(void)e;
	(void)why;
	(void)n;
	*got = 0;
	return 0;
}

START_TEST(stale_crl_is_reported_in_the_log_and_health)
{
	static char resp[1 << 16];
	struct crl_params p = {0};
	struct crl_result res;
	char conf[4096], why[512];
	int64_t now = time(NULL);
	pid_t pid;
	int code = 0;

	/* A CRL of plain's, signed by its key, whose nextUpdate has passed... */
	mkdir(path("stale"), 0755);
	p.ca_cert = plain.cert;
	p.key = plain.key;
	p.number = 1;
	p.this_update = now - 7200;
	p.next_update = now - 3600;
	p.tmp_dir = dir;
	ck_assert_msg(
	    crl_build(&p, no_entries, NULL, path("stale/plain.crl"), &res, why, sizeof(why)) == 0,
	    "%s", why);
	/* ...and a crld that cannot sign a new one (a key keyd does not have). */
	http_port = free_port();
	do
		metrics_port = free_port();
	while (metrics_port == http_port);
	snprintf(conf, sizeof(conf),
	         "database: \"%s connect_timeout=3\"\n"
	         "publish: {folder: %s, base_url: \"http://crl.example/\"}\n"
	         "listen: {address: 127.0.0.1, port: %d}\nmetrics_listen: {address: 127.0.0.1, "
	         "port: %d}\n"
	         "schedule: {retry_seconds: 600}\n"
	         "authorities: [{name: plain, key: \"keyd:label=no-such-key\"}]\n",
	         crld_ci, path("stale"), http_port, metrics_port);
	harness_write_text(path("stale.yaml"), conf);
	pid = crld_start(path("stale.yaml"), path("stale.log"));
	for (int i = 0; i < 200 && code != 503; i++) {
		code = http_get("/health", NULL, resp, sizeof(resp));
		if (code != 503)
			usleep(50000);
	}
	ck_assert_int_eq(code, 503);
	/* /health answers anyone: the state alone; which CRL is stale goes to the log */
	ck_assert_msg(strstr(resp, "\r\n\r\ndegraded") && !strstr(resp, "plain.crl"), "%s", resp);
	for (int i = 0;
	     i < 100 && !strstr(harness_slurp(path("stale.log")), "plain.crl: past its nextUpdate");
	     i++)
		usleep(50000);
	ck_assert_msg(strstr(harness_slurp(path("stale.log")), "plain.crl: past its nextUpdate"),
	              "%s", harness_slurp(path("stale.log")));
	/* The first build fails (no such key); /metrics counts it, and the CRL is stale. */
	for (int i = 0; i < 200; i++) {
		ck_assert_int_eq(metrics_get(resp, sizeof(resp)), 200);
		if (!strstr(resp, "hsmca_crld_build_failures_total{crl=\"plain\"} 0\n"))
			break;
		usleep(50000);
	}
	ck_assert_msg(strstr(resp, "hsmca_crld_stale{crl=\"plain\",kind=\"full\"} 1\n"), "%s",
	              resp);
	ck_assert_msg(!strstr(resp, "hsmca_crld_build_failures_total{crl=\"plain\"} 0\n"), "%s",
	              resp);
	for (int i = 0; i < 100 && !strstr(harness_slurp(path("stale.log")), "STALE CRL"); i++)
		usleep(50000);
	ck_assert_msg(
	    strstr(harness_slurp(path("stale.log")), "STALE CRL: plain.crl: past its nextUpdate"),
	    "%s", harness_slurp(path("stale.log")));
	ck_assert_int_eq(crl_number(path("stale/plain.crl")), 1);
	ck_assert_int_eq(crld_stop_pid(pid, path("stale.log")), 0);
}
END_TEST

START_TEST(failed_run_keeps_the_published_crl)
{
	const char *good = crld_config("keep", "authorities: [{name: plain}]\n");
	char before[1 << 12], conf[4096];
	struct stat st1, st2;
	size_t n;
	FILE *f;

	ck_assert_msg(crld_once(good, path("keep.log")) == 0, "%s",
	              harness_slurp(path("keep.log")));
	ck_assert_int_eq(stat(path("keep/plain.crl"), &st1), 0);
	f = fopen(path("keep/plain.crl"), "rb");
	n = fread(before, 1, sizeof(before), f);
	fclose(f);
	/* The same folder, a key keyd does not have: the build fails, the old CRL stays. */
	snprintf(conf, sizeof(conf),
	         "database: \"%s connect_timeout=3\"\n"
	         "publish: {folder: %s, base_url: \"http://crl.example/\"}\n"
	         "authorities: [{name: plain, key: \"keyd:label=no-such-key\"}]\n",
	         crld_ci, path("keep"));
	harness_write_text(path("keep-bad.yaml"), conf);
	ck_assert_int_ne(crld_once(path("keep-bad.yaml"), path("keep-bad.log")), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(path("keep-bad.log")), "not published"));
	ck_assert_int_eq(stat(path("keep/plain.crl"), &st2), 0);
	ck_assert_int_eq(st1.st_ino, st2.st_ino);
	{
		char after[1 << 12];
		f = fopen(path("keep/plain.crl"), "rb");
		ck_assert_int_eq(fread(after, 1, sizeof(after), f), n);
		fclose(f);
		ck_assert_int_eq(memcmp(before, after, n), 0);
	}
}
END_TEST

/* Lint before publishing: an authority whose certificate has no subjectKeyIdentifier gets
 * CRLs whose authorityKeyIdentifier the builder computed (RFC 5280 method 1), which no
 * relying party can match with the certificate; the linter refuses them by the rule's name
 * (aki_matches_issuer_ski), nothing is published, and the log says which rule. */
START_TEST(crl_failing_lint_is_not_published)
{
	static struct ca noski = {.name = "noski", .label = "noski-p256"};
	struct keyd_client *c = keyd_client_new(NULL, 0);
	struct keyd_key k;
	struct keyd_err kerr;
	struct db_authority a = {0};
	struct db_err err = {0};
	struct db *db = owner_db();
	uint8_t serial = 99, *subj = NULL, *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int64_t now = time(NULL);
	int subj_len, der_len;
	const char *conf = crld_config("lintfail", "authorities: [{name: noski}]\n");
	const char *log;

	ck_assert(c && keyd_client_generate(c, noski.label, KEYD_KEY_EC, KEYD_CURVE_P256, &k,
	                                    &kerr) == 0);
	keyd_client_free(c);
	noski.key = harness_keyd_key(noski.label);
	noski.cert = make_cert(noski.name, noski.key, root, root_key, 1, &serial, 1, NULL,
	                       now - 86400, now + 86400L * 3650);
	X509_EXTENSION_free(X509_delete_ext(
	    noski.cert, X509_get_ext_by_NID(noski.cert, NID_subject_key_identifier, -1)));
	ck_assert_int_gt(X509_sign(noski.cert, root_key, EVP_sha256()), 0);
	subj_len = i2d_X509_NAME(X509_get_subject_name(noski.cert), &subj);
	der_len = i2d_X509(noski.cert, &der);
	a.name = (char *)noski.name;
	a.subject = (char *)noski.name;
	a.subject_der = subj;
	a.subject_der_len = (size_t)subj_len;
	ck_assert(X509_pubkey_digest(noski.cert, EVP_sha1(), md, &mdlen));
	a.ski = md; /* the database's record; the certificate carries none */
	a.ski_len = mdlen;
	a.cert_der = der;
	a.cert_der_len = (size_t)der_len;
	a.key_label = (char *)noski.label;
	ck_assert_msg(db_authority_add(db, &a, &noski.id, &err) == DB_OK, "%s", err.msg);
	OPENSSL_free(subj);
	OPENSSL_free(der);
	db_close(db);
	ck_assert_int_ne(crld_once(conf, path("lintfail.log")), 0);
	log = harness_slurp(path("lintfail.log"));
	ck_assert_msg(strstr(log, "lint: aki_matches_issuer_ski:") && strstr(log, "not published"),
	              "%s", log);
	ck_assert_int_ne(access(path("lintfail/noski.crl"), F_OK), 0);
	X509_free(noski.cert);
	EVP_PKEY_free(noski.key);
}
END_TEST

START_TEST(bad_configurations_are_refused_with_the_field_named)
{
	static const struct {
		const char *yaml, *expect;
	} cases[] = {
	    {"publish: {folder: /tmp, base_url: \"http://x/\"}\nbogus: 1\n", "bogus"},
	    {"database: x\n", "publish"},
	    {"publish: {folder: relative, base_url: \"http://x/\"}\n", "folder"},
	    {"publish: {folder: /tmp, base_url: \"ftp://x/\"}\n", "base_url"},
	    {"publish: {folder: /tmp, base_url: \"http://x/\"}\n"
	     "authorities: [{name: a, shards: 1}]\n",
	     "shards"},
	    {"publish: {folder: /tmp, base_url: \"http://x/\"}\n"
	     "authorities: [{name: a, shards: 999}]\n",
	     "shards"},
	    {"publish: {folder: /tmp, base_url: \"http://x/\"}\n"
	     "authorities: [{name: \"A B\"}]\n",
	     "name"},
	    {"publish: {folder: /tmp, base_url: \"http://x/\"}\n"
	     "authorities: [{name: a}, {name: a}]\n",
	     "twice"},
	    {"publish: {folder: /tmp, base_url: \"http://x/\"}\n"
	     "authorities: [{name: a, next_update_seconds: 600, delta_seconds: 600}]\n",
	     "delta_seconds"},
	    {"publish: {folder: /tmp, base_url: \"http://x/\"}\n"
	     "schedule: {debounce_ms: -5}\n",
	     "debounce_ms"},
	    {"publish: {folder: /tmp, base_url: \"http://x/\"}\n"
	     "listen: {address: 127.0.0.1}\n",
	     "port"},
	    {"publish: {folder: /tmp, base_url: \"http://x/\"}\n"
	     "metrics_listen: {address: 127.0.0.1}\n",
	     "port"},
	    {"publish: {folder: /tmp, base_url: \"http://x/\"}\n"
	     "listen: {address: 127.0.0.1, port: 8480}\n"
	     "metrics_listen: {address: 127.0.0.1, port: 8480}\n",
	     "must differ from listen"},
	};
	struct crld_config cfg;
	char err[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_ne(crld_config_load_mem("t.yaml", cases[i].yaml,
		                                      strlen(cases[i].yaml), &cfg, err,
		                                      sizeof(err)),
		                 0);
		ck_assert_msg(strstr(err, cases[i].expect), "case %zu: %s", i, err);
	}
	/* the daemon says so too, and exits non-zero */
	harness_write_text(path("bad.yaml"), cases[0].yaml);
	{
		char *argv[] = {crld_bin(), "--config", (char *)path("bad.yaml"), "--check", NULL};
		ck_assert_int_eq(harness_run(argv, path("bad.log")), 1);
		ck_assert_ptr_nonnull(strstr(harness_slurp(path("bad.log")), "bogus"));
	}
	/* a good one passes --check */
	{
		const char *ok = crld_config("check-ok", default_authorities);
		char *argv[] = {crld_bin(), "--config", (char *)ok, "--check", NULL};
		ck_assert_int_eq(harness_run(argv, path("check-ok.log")), 0);
	}
}
END_TEST

/* The builder alone, with a software key: what it writes OpenSSL parses entry by entry. */
static int gen_next(void *arg, struct crl_entry *e, int *got, char *why, size_t n)
{
	int *left = arg;

	(void)why;
	(void)n;
	*got = 0;
	if (*left <= 0)
		return 0;
	memset(e, 0, sizeof(*e));
	e->serial_len = 1 + (size_t)(*left % 20);
	for (size_t i = 0; i < e->serial_len; i++)
		e->serial[i] = (uint8_t)(1 + (*left + (int)i) % 250);
	e->revoked_at = 1700000000 + *left;
	e->reason = *left % 11 == 7 ? 0 : *left % 11;
	e->invalidity_date = *left % 3 ? 0 : 1600000000;
	(*left)--;
	*got = 1;
	return 0;
}

START_TEST(builder_output_parses_entry_by_entry)
{
	struct crl_params p = {0};
	struct crl_result res;
	struct crl_info info;
	char why[512];
	int left = 3000;
	X509_CRL *crl;
	EVP_PKEY *k = EVP_EC_gen("P-384");
	static const uint8_t one = 1;
	X509 *ca = make_cert("builder", k, NULL, k, 1, &one, 1, NULL, 1600000000, 1900000000);

	p.ca_cert = ca;
	p.key = k;
	p.number = 77;
	p.this_update = 1700000000;
	p.next_update = 2600000000LL; /* after 2049: GeneralizedTime */
	p.delta_base = 70;
	p.tmp_dir = dir;
	ck_assert_msg(crl_build(&p, gen_next, &left, path("builder.crl"), &res, why, sizeof(why)) ==
	                  0,
	              "%s", why);
	ck_assert_int_eq(res.entries, 3000);
	ck_assert_msg(crl_verify_file(path("builder.crl"), k, &info, why, sizeof(why)) == 0, "%s",
	              why);
	ck_assert_int_eq(info.number, 77);
	ck_assert_int_eq(info.delta_base, 70);
	ck_assert_int_eq(info.this_update, 1700000000);
	ck_assert_int_eq(info.next_update, 2600000000LL);
	crl = crl_load(path("builder.crl"));
	ck_assert_ptr_nonnull(crl);
	ck_assert_int_eq(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 3000);
	ck_assert_int_eq(X509_CRL_verify(crl, k), 1);
	X509_CRL_free(crl);
	/* The CRL without its entries, as crld lints one too large to decode whole: the same
	 * header passes the linter, the entries are counted, and a wrong expectation fails. */
	{
		uint8_t *der = NULL;
		const unsigned char *q;
		size_t len = 0;
		uint64_t entries = 0;
		char err[512];
		struct lint_crl_profile lp = {.this_update = 1700000000,
		                              .next_update = (time_t)2600000000LL,
		                              .number = "77",
		                              .n_revoked = -1,
		                              .hash_nid = NID_sha384,
		                              .delta_base = 70};
		struct lint_parties w = {.issuer = ca};
		ck_assert_msg(crl_read_header(path("builder.crl"), &der, &len, &entries, why,
		                              sizeof(why)) == 0,
		              "%s", why);
		ck_assert_int_eq(entries, 3000);
		q = der;
		crl = d2i_X509_CRL(NULL, &q, (long)len);
		free(der);
		ck_assert_ptr_nonnull(crl);
		ck_assert_ptr_null(X509_CRL_get_REVOKED(crl));
		ck_assert_msg(lint_crl_header(&lp, &w, crl, err, sizeof(err)) == 0, "%s", err);
		lp.delta_base = 0; /* a full CRL: no Delta CRL Indicator */
		ck_assert_int_eq(lint_crl_header(&lp, &w, crl, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, "crl_delta_indicator:"), "%s", err);
		X509_CRL_free(crl);
	}
	/* a wrong key does not verify, and a flipped byte is caught */
	{
		EVP_PKEY *other = EVP_EC_gen("P-384");
		FILE *f;
		ck_assert_int_ne(
		    crl_verify_file(path("builder.crl"), other, &info, why, sizeof(why)), 0);
		EVP_PKEY_free(other);
		f = fopen(path("builder.crl"), "r+b");
		fseek(f, 300, SEEK_SET);
		fputc(0x5a ^ fgetc(f), f);
		fclose(f);
		ck_assert_int_ne(crl_verify_file(path("builder.crl"), k, &info, why, sizeof(why)),
		                 0);
	}
	X509_free(ca);
	EVP_PKEY_free(k);
}
END_TEST

/* The builder's output and the PEM copy are new files of crld's own: a symlink planted at the
 * temporary name (pointing at a file crld may write) or a file already there fails the build,
 * and the link's target is untouched. */
START_TEST(temporary_files_are_created_new_never_through_a_symlink)
{
	struct crl_params p = {0};
	struct crl_result res;
	char why[512], target[600], buf[16] = "";
	int left = 2;
	EVP_PKEY *k = EVP_EC_gen("P-256");
	static const uint8_t one = 1;
	X509 *ca = make_cert("tmpfiles", k, NULL, k, 1, &one, 1, NULL, 1600000000, 1900000000);
	FILE *f;

	p.ca_cert = ca;
	p.key = k;
	p.number = 1;
	p.this_update = 1700000000;
	p.next_update = 1800000000;
	p.tmp_dir = dir;
	snprintf(target, sizeof(target), "%s", path("victim"));
	f = fopen(target, "w");
	fputs("victim", f);
	fclose(f);
	unlink(path(".planted.crl.tmp"));
	ck_assert_int_eq(symlink(target, path(".planted.crl.tmp")), 0);
	ck_assert_int_ne(
	    crl_build(&p, gen_next, &left, path(".planted.crl.tmp"), &res, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "cannot create") && strstr(why, ".planted.crl.tmp"), "%s", why);
	/* A file already there is not reused either. */
	left = 2;
	ck_assert_int_ne(crl_build(&p, gen_next, &left, target, &res, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "File exists"), "%s", why);
	/* The PEM copy likewise. */
	left = 2;
	unlink(path("tmpfiles.crl"));
	ck_assert_msg(
	    crl_build(&p, gen_next, &left, path("tmpfiles.crl"), &res, why, sizeof(why)) == 0, "%s",
	    why);
	unlink(path(".planted.pem.tmp"));
	ck_assert_int_eq(symlink(target, path(".planted.pem.tmp")), 0);
	ck_assert_int_ne(
	    crl_write_pem(path("tmpfiles.crl"), path(".planted.pem.tmp"), why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "cannot create"), "%s", why);
	f = fopen(target, "r");
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	ck_assert_str_eq(buf, "victim");
	X509_free(ca);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(http_dates_and_file_names)
{
	int64_t t;
	char s[40];

	ck_assert_int_eq(httptext_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
	ck_assert_int_eq(t, 784111777);
	httptext_date(784111777, s, sizeof(s));
	ck_assert_str_eq(s, "Sun, 06 Nov 1994 08:49:37 GMT");
	ck_assert_int_ne(httptext_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
	ck_assert_int_ne(httptext_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", &t), 0);
	ck_assert_int_ne(httptext_date_parse("", &t), 0);
	ck_assert(crld_file_name_ok("plain.crl"));
	ck_assert(crld_file_name_ok("sharded-1-delta.pem"));
	ck_assert(!crld_file_name_ok("../x.crl"));
	ck_assert(!crld_file_name_ok(".plain.crl.tmp"));
	ck_assert(!crld_file_name_ok("plain.yaml"));
	ck_assert(!crld_file_name_ok(".crl"));
}
END_TEST

int main(void)
{
	harness_die_init("test_crld", cleanup);
	Suite *s = suite_create("crld");
	TCase *tc = tcase_create("crld");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, http_dates_and_file_names);
	tcase_add_test(tc, builder_output_parses_entry_by_entry);
	tcase_add_test(tc, bad_configurations_are_refused_with_the_field_named);
	tcase_add_test(tc, crl_failing_lint_is_not_published);
	tcase_add_test(tc, good_revoked_held_and_released_with_openssl_verify);
	tcase_add_test(tc, rsa_ca_crl_verifies);
	tcase_add_test(tc, database_settings_set_next_update_and_deltas);
	tcase_add_test(tc, expired_certificates_leave_after_the_grace_period);
	tcase_add_test(tc, crl_numbers_grow_across_restarts_and_instances);
	tcase_add_test(tc, shards_carry_an_idp_matching_the_certificates_crldp);
	tcase_add_test(tc, unpartitioned_ca_carries_an_idp_when_the_database_says_so);
	tcase_add_test(tc, delta_crls_list_changes_since_the_base);
	tcase_add_test(tc, revocation_is_published_once_the_debounce_window_has_passed);
	tcase_add_test(tc, http_serves_crls_with_etag_and_304);
	tcase_add_test(tc, http_serves_the_issuer_certificate_at_its_ca_issuers_path);
	tcase_add_test(tc, failed_run_keeps_the_published_crl);
	tcase_add_test(tc, stale_crl_is_reported_in_the_log_and_health);
	tcase_add_test(tc, change_log_is_pruned_and_deltas_stay_right);
	tcase_add_test(tc, crl_distribution_is_the_databases_and_a_disagreement_is_refused);
	tcase_add_test(tc, starts_degraded_without_the_database_and_publishes_once_it_is_up);
	suite_add_tcase(s, tc);
	tc = tcase_create("files");
	tcase_add_test(tc, temporary_files_are_created_new_never_through_a_symlink);
	suite_add_tcase(s, tc);
	setup();
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	teardown();
	failed += harness_bad_exits; /* daemons stopped in this process */
	return failed ? 1 : 0;
}
