/*
 * The PostgreSQL data layer end to end, each test case on a private cluster of its own
 * (tests/pg/pgtest): migrations, serial uniqueness, the certificate lifecycle, the audit
 * log's protection and tamper detection, revocation announcements, hostile text.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "db.h"
#include "db_internal.h" /* db_exec_commit, white-box */
#include "harness.h"

/* ---- the private cluster (unchecked fixture: set up and torn down in the parent, so a
 * failing test cannot leave a server behind) ---- */

static struct harness_pg pg;

/* Run argv; stdout to out_path (or /dev/null), stderr to err_path (or inherited). Extra
 * environment "NAME=value" in env (NULL-terminated, may be NULL). Returns the exit status. */
static int run(char *const argv[], const char *out_path, const char *err_path, char *const env[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int out =
		    open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(out, 1);
		if (err_path) {
			int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			dup2(e, 2);
		}
		for (char *const *e = env; e && *e; e++)
			putenv(*e);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void cluster_start(void)
{
	harness_pg_fixture_start(&pg, "db");
}

static void cluster_stop(void)
{
	harness_pg_remove(&pg);
}

/* ---- helpers ---- */

static struct db *connect_as(const char *ci)
{
	return harness_db_connect(ci);
}

/* sql must fail with SQLSTATE state; returns nothing, asserts. */
static void sql_fails(struct db *db, const char *sql, const char *state)
{
	harness_pg_fails(db_pgconn(db), sql, state);
}

/* Migrate as the owner and let hsmca_app log in (pgtest's cluster trusts its socket). */
static struct db *schema_ready(void)
{
	return harness_pg_migrate(&pg);
}

struct ca {
	EVP_PKEY *key;
	X509 *cert;
	int32_t id;
};

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(k);
	return k;
}

static X509 *make_cert(X509_NAME *subject, const X509_NAME *issuer, EVP_PKEY *pub, EVP_PKEY *signer,
                       const uint8_t *serial, size_t serial_len)
{
	X509 *x = X509_new();
	BIGNUM *bn = BN_bin2bn(serial, (int)serial_len, NULL);
	ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);

	ck_assert(x && ai);
	X509_set_version(x, X509_VERSION_3);
	X509_set_serialNumber(x, ai);
	X509_set_subject_name(x, subject);
	X509_set_issuer_name(x, issuer);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pub);
	ck_assert(X509_sign(x, signer, EVP_sha256()) > 0);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return x;
}

static X509_NAME *name_cn(const char *cn)
{
	X509_NAME *n = X509_NAME_new();
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	return n;
}

/* A self-signed CA, registered as authority "name". */
static void ca_make(struct db *db, const char *name, struct ca *ca)
{
	static const uint8_t one[] = {1};
	uint8_t ski[20], *subj = NULL, *der = NULL;
	X509_NAME *n = name_cn(name);
	struct db_authority a = {0};
	struct db_err err = {0};
	int subj_len, der_len;

	ca->key = ec_key();
	ca->cert = make_cert(n, n, ca->key, ca->key, one, 1);
	subj_len = i2d_X509_NAME(n, &subj);
	der_len = i2d_X509(ca->cert, &der);
	memset(ski, name[0], sizeof(ski));
	a.name = (char *)name;
	a.subject = (char *)name;
	a.subject_der = subj;
	a.subject_der_len = (size_t)subj_len;
	a.ski = ski;
	a.ski_len = sizeof(ski);
	a.cert_der = der;
	a.cert_der_len = (size_t)der_len;
	a.key_label = "ca-key";
	ck_assert_msg(db_authority_add(db, &a, &ca->id, &err) == DB_OK, "%s", err.msg);
	ck_assert_int_gt(ca->id, 0);
	OPENSSL_free(subj);
	OPENSSL_free(der);
	X509_NAME_free(n);
}

static void ca_free(struct ca *ca)
{
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
}

static void spki_hash(EVP_PKEY *k, uint8_t out[32])
{
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	unsigned int len;

	ck_assert(n > 0 && EVP_Digest(der, (size_t)n, out, &len, EVP_sha256(), NULL));
	OPENSSL_free(der);
}

static const struct db_san default_sans[] = {
    {DB_SAN_DNS, "www.example.com", 15},
    {DB_SAN_IP, "192.0.2.7", 9},
};

/* A request for a leaf key under ca with serial; subject "CN=leaf". */
static struct db_cert_request request(const struct ca *ca, const uint8_t *serial, size_t len,
                                      EVP_PKEY *leaf)
{
	struct db_cert_request q = {
	    .authority_id = ca->id,
	    .serial = serial,
	    .serial_len = len,
	    .profile = "tls-server",
	    .subject = "CN=leaf",
	    .subject_len = 7,
	    .sans = default_sans,
	    .n_sans = 2,
	    .not_before = time(NULL),
	    .not_after = time(NULL) + 86400,
	    .requester = "officer-1",
	};
	spki_hash(leaf, q.spki_sha256);
	return q;
}

/* The DER of leaf's certificate with serial, signed by ca. Caller frees. */
static uint8_t *leaf_der(const struct ca *ca, EVP_PKEY *leaf, const uint8_t *serial, size_t len,
                         size_t *der_len)
{
	X509_NAME *n = name_cn("leaf");
	X509 *x = make_cert(n, X509_get_subject_name(ca->cert), leaf, ca->key, serial, len);
	uint8_t *der = NULL;
	int dl = i2d_X509(x, &der);

	ck_assert_int_gt(dl, 0);
	*der_len = (size_t)dl;
	X509_free(x);
	X509_NAME_free(n);
	return der;
}

static void reserve_ok(struct db *db, const struct db_cert_request *q)
{
	struct db_err err = {0};
	int64_t id;

	ck_assert_msg(db_cert_reserve(db, q, &id, &err) == DB_OK, "reserve: %s", err.msg);
	ck_assert_int_gt(id, 0);
}

/* Reserve and issue a certificate with serial under ca. */
static void issue(struct db *db, const struct ca *ca, const uint8_t *serial, size_t len)
{
	EVP_PKEY *leaf = ec_key();
	struct db_cert_request q = request(ca, serial, len, leaf);
	struct db_err err = {0};
	size_t dl;
	uint8_t *der;

	reserve_ok(db, &q);
	der = leaf_der(ca, leaf, serial, len, &dl);
	ck_assert_msg(db_cert_mark_issued(db, ca->id, serial, len, der, dl, &err) == DB_OK, "%s",
	              err.msg);
	OPENSSL_free(der);
	EVP_PKEY_free(leaf);
}

static enum db_cert_status status_of(struct db *db, const struct ca *ca, const uint8_t *serial,
                                     size_t len)
{
	struct db_cert c;
	struct db_err err = {0};
	enum db_cert_status st;

	ck_assert_msg(db_cert_lookup(db, ca->id, serial, len, &c, &err) == DB_OK, "%s", err.msg);
	st = c.status;
	db_cert_clear(&c);
	return st;
}

static const uint8_t S1[] = {0x5a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                             0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static const uint8_t S2[] = {0x27, 0x3b, 0x2d, 0x2d, 0x00, 0x5c, 0x22, 0x25}; /* ';--\0\"% */
static const uint8_t S3[] = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* ---- migrations ---- */

struct applied_log {
	int n;
	char names[32][64];
};

static void note_applied(void *arg, int version, const char *name)
{
	struct applied_log *l = arg;

	if (l->n < 32)
		snprintf(l->names[l->n++], sizeof(l->names[0]), "%04d_%s", version, name);
}

START_TEST(migrate_applies_every_migration_then_nothing)
{
	struct db *db = connect_as(pg.owner_ci);
	struct applied_log log = {0};
	struct db_err err = {0};
	int applied, version;

	ck_assert_int_eq(db_schema_version(db, &version, &err), DB_OK);
	ck_assert_int_eq(version, 0);
	ck_assert_msg(db_migrate(db, note_applied, &log, &applied, &err) == DB_OK, "%s", err.msg);
	ck_assert_int_eq(applied, db_schema_latest());
	ck_assert_int_eq(log.n, db_schema_latest());
	ck_assert_str_eq(log.names[0], "0001_initial");
	ck_assert_int_eq(db_schema_version(db, &version, &err), DB_OK);
	ck_assert_int_eq(version, db_schema_latest());

	log.n = 0;
	ck_assert_msg(db_migrate(db, note_applied, &log, &applied, &err) == DB_OK, "%s", err.msg);
	ck_assert_int_eq(applied, 0);
	ck_assert_int_eq(log.n, 0);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM schema_version"),
	                 db_schema_latest());
	/* the migration created the application role */
	ck_assert_int_eq(
	    harness_pg_count(db_pgconn(db),
	                     "SELECT count(*) FROM pg_roles WHERE rolname = 'hsmca_app'"),
	    1);
	db_close(db);
}
END_TEST

START_TEST(migrate_refuses_a_newer_schema)
{
	struct db *db = schema_ready();
	struct db_err err = {0};
	char sql[256];
	int applied;

	snprintf(sql, sizeof(sql),
	         "INSERT INTO schema_version (version, name, checksum) VALUES (%d, 'future', 'x')",
	         db_schema_latest() + 1);
	harness_pg_exec_ok(db_pgconn(db), sql);
	ck_assert_int_eq(db_migrate(db, NULL, NULL, &applied, &err), DB_ERR_SCHEMA);
	ck_assert_int_eq(applied, 0);
	ck_assert_msg(strstr(err.msg, "newer than this hsmca knows"), "%s", err.msg);
	db_close(db);
}
END_TEST

START_TEST(migrate_refuses_a_diverged_schema)
{
	struct db *db = schema_ready();
	struct db_err err = {0};
	int applied;

	harness_pg_exec_ok(db_pgconn(db),
	                   "UPDATE schema_version SET checksum = 'other' WHERE version = 1");
	ck_assert_int_eq(db_migrate(db, NULL, NULL, &applied, &err), DB_ERR_SCHEMA);
	ck_assert_msg(strstr(err.msg, "differs"), "%s", err.msg);
	db_close(db);
}
END_TEST

START_TEST(cli_db_migrate_prints_what_it_applied)
{
	const char *build = getenv("HSMCA_BUILD");
	char bin[512], out[256], errf[256], host[256], bad[600];
	char *env[] = {host, "PGPORT=5432", "PGDATABASE=hsmca", "PGUSER=hsmca", NULL};
	char *argv[] = {bin, "db", "migrate", NULL};
	char *argv_bad[] = {bin, "db", "--database", bad, "migrate", NULL};

	ck_assert_ptr_nonnull(build);
	snprintf(bin, sizeof(bin), "%s/ca-core/cli/hsmca", build);
	snprintf(out, sizeof(out), "%s.out", pg.dir);
	snprintf(errf, sizeof(errf), "%s.err", pg.dir);
	snprintf(host, sizeof(host), "PGHOST=%s", pg.dir);
	snprintf(bad, sizeof(bad), "host=%s dbname=nosuchdb user=hsmca", pg.dir);

	ck_assert_int_eq(run(argv, out, errf, env), 0);
	ck_assert_msg(strstr(harness_slurp(out), "applied 0001_initial\n"), "stdout: %s",
	              harness_slurp(out));
	ck_assert_int_eq(run(argv, out, errf, env), 0);
	ck_assert_msg(strstr(harness_slurp(out), "up to date"), "stdout: %s", harness_slurp(out));
	ck_assert_ptr_null(strstr(harness_slurp(out), "applied"));

	ck_assert_int_ne(run(argv_bad, out, errf, env), 0);
	ck_assert_msg(strstr(harness_slurp(errf), "hsmca db migrate: connecting to the database") &&
	                  strstr(harness_slurp(errf), "nosuchdb"),
	              "stderr: %s", harness_slurp(errf));
	unlink(out);
	unlink(errf);
}
END_TEST

/* ---- certificates ---- */

START_TEST(serial_is_unique_per_issuer_by_constraint)
{
	struct db *db = schema_ready();
	struct ca a, b;
	EVP_PKEY *leaf = ec_key();
	struct db_cert_request q;
	struct db_err err = {0};
	int64_t id;

	ca_make(db, "ca-a", &a);
	ca_make(db, "ca-b", &b);
	q = request(&a, S1, sizeof(S1), leaf);
	reserve_ok(db, &q);
	ck_assert_int_eq(db_cert_reserve(db, &q, &id, &err), DB_ERR_CONFLICT);
	ck_assert_msg(strstr(err.msg, "exists already"), "%s", err.msg);
	/* the same serial under another issuer is a different certificate */
	q.authority_id = b.id;
	reserve_ok(db, &q);
	/* the constraint itself, not only the data layer, refuses the duplicate */
	sql_fails(db,
	          "INSERT INTO certificates (authority_id, serial, profile, subject, not_before,"
	          " not_after, spki_sha256, requester) SELECT authority_id, serial, profile,"
	          " subject, not_before, not_after, spki_sha256, requester FROM certificates"
	          " LIMIT 1",
	          "23505");
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM certificates"), 2);
	EVP_PKEY_free(leaf);
	ca_free(&a);
	ca_free(&b);
	db_close(db);
}
END_TEST

static void verify_finds(struct db *db, enum db_audit_finding f, int64_t seq);

/* Serial number i of a group test: 20 bytes, positive and minimal. */
static void group_serial(int i, uint8_t out[20])
{
	memset(out, 0x11, 20);
	out[0] = 0x40;
	out[19] = (uint8_t)i;
}

/* n new serials from base on, with their requests and signed certificates, for the
 * reservations and stores of a group test (which point at them). */
static void new_group(const struct ca *ca, int base, int n, EVP_PKEY **leaf, uint8_t (*serial)[20],
                      struct db_cert_request *q, uint8_t **der, size_t *dl,
                      struct db_cert_store *st)
{
	for (int i = 0; i < n; i++) {
		OPENSSL_free(der[i]);
		group_serial(base + i, serial[i]);
		q[i] = request(ca, serial[i], 20, leaf[i]);
		der[i] = leaf_der(ca, leaf[i], serial[i], 20, &dl[i]);
		st[i].der = der[i];
		st[i].der_len = dl[i];
	}
}

/* The issued certificates from id on were committed by one transaction; the chain is intact. */
static void issued_in_one_transaction(struct db *owner, struct db *db, int64_t id)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(DISTINCT xmin::text) FROM certificates WHERE status = 'issued'"
	         " AND id >= %lld",
	         (long long)id);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), 1);
	verify_finds(db, DB_AUDIT_INTACT, 0);
}

/* Group commit (cad's issuance path): reservations and stores of several certificates in one
 * transaction each, and each alone when one of them fails, with every item told how it went. */
START_TEST(reservations_and_stores_go_in_groups)
{
	struct db *owner = schema_ready(), *db = connect_as(pg.app_ci);
	enum { N = 4 };
	EVP_PKEY *leaf[N];
	uint8_t serial[N][20], *der[N];
	size_t dl[N];
	struct db_cert_request q[N];
	struct db_cert_reservation rv[N], *rvp[N];
	struct db_cert_store st[N], *stp[N];
	struct db_err err = {0};
	struct ca ca;

	ca_make(db, "issuing", &ca);
	for (int i = 0; i < N; i++) {
		leaf[i] = ec_key();
		group_serial(i, serial[i]);
		q[i] = request(&ca, serial[i], 20, leaf[i]);
		rv[i] = (struct db_cert_reservation){.req = &q[i]};
		rvp[i] = &rv[i];
		der[i] = leaf_der(&ca, leaf[i], serial[i], 20, &dl[i]);
	}
	/* four reservations: one transaction */
	db_cert_reserve_many(db, rvp, N);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(rv[i].rc == DB_OK, "reservation %d: %s", i, rv[i].err.msg);
		ck_assert_int_gt(rv[i].id, 0);
	}
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner),
	                                  "SELECT count(DISTINCT xmin::text) FROM certificates"),
	                 1);
	ck_assert_int_eq(
	    harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM certificate_sans"), 2 * N);
	/* again: every serial is taken, so each goes alone and is told so */
	db_cert_reserve_many(db, rvp, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(rv[i].rc, DB_ERR_CONFLICT);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM certificates"),
	                 N);
	/* three stores go together; the one whose DER is another serial's fails alone */
	for (int i = 0; i < N; i++) {
		st[i] = (struct db_cert_store){
		    .authority_id = ca.id,
		    .serial = serial[i],
		    .serial_len = 20,
		    .der = der[i == 2 ? 1 : i],
		    .der_len = dl[i == 2 ? 1 : i],
		    .audit = {"officer-1", "officer", "issue", "x", "success", ""}};
		stp[i] = &st[i];
	}
	db_cert_store_many(db, stp, N);
	for (int i = 0; i < N; i++)
		if (i == 2) {
			ck_assert_int_eq(st[i].rc, DB_ERR_INVALID);
			ck_assert_ptr_nonnull(strstr(st[i].err.msg, "another serial"));
		} else {
			ck_assert_msg(st[i].rc == DB_OK, "store %d: %s", i, st[i].err.msg);
			ck_assert_int_gt(st[i].audit_seq, 0);
		}
	ck_assert_int_eq(status_of(db, &ca, serial[2], 20), DB_CERT_RESERVED);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM audit_log"),
	                 N - 1);
	/* the rest stored together: the three in one transaction, the audit chain intact */
	db_cert_store_many(db, stp + 2, 1); /* still the wrong DER: refused alone */
	ck_assert_int_eq(st[2].rc, DB_ERR_INVALID);
	st[2].der = der[2];
	st[2].der_len = dl[2];
	db_cert_store_many(db, stp + 2, 1);
	ck_assert_msg(st[2].rc == DB_OK, "%s", st[2].err.msg);
	/* storing twice: each is told it is not reserved; nothing changes */
	db_cert_store_many(db, stp, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(st[i].rc, DB_ERR_STATE);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM audit_log"), N);
	verify_finds(db, DB_AUDIT_INTACT, 0);
	/* a group of fresh reservations stores in one transaction */
	new_group(&ca, 100, N, leaf, serial, q, der, dl, st);
	db_cert_reserve_many(db, rvp, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(rv[i].rc, DB_OK);
	db_cert_store_many(db, stp, N);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(st[i].rc == DB_OK, "store %d: %s", i, st[i].err.msg);
		ck_assert_int_eq(st[i].audit_seq, st[0].audit_seq + i);
	}
	issued_in_one_transaction(owner, db, rv[0].id);
	/* one of a group is no longer reserved (marked failed): it changes nothing and is told
	 * so; the others commit together, each with its entry */
	new_group(&ca, 150, N, leaf, serial, q, der, dl, st);
	db_cert_reserve_many(db, rvp, N);
	ck_assert_int_eq(db_cert_mark_failed(db, ca.id, serial[1], 20, &err), DB_OK);
	{
		int64_t before =
		    harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM audit_log");
		db_cert_store_many(db, stp, N);
		for (int i = 0; i < N; i++)
			ck_assert_msg(st[i].rc == (i == 1 ? DB_ERR_STATE : DB_OK), "store %d: %s",
			              i, st[i].err.msg);
		ck_assert_int_eq(st[1].audit_seq, 0);
		ck_assert_int_eq(status_of(db, &ca, serial[1], 20), DB_CERT_FAILED);
		ck_assert_int_eq(
		    harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM audit_log"),
		    before + N - 1);
	}
	issued_in_one_transaction(owner, db, rv[0].id);
	/* a retired authority: every reservation is refused, and says so */
	harness_pg_exec_ok(db_pgconn(owner), "UPDATE authorities SET status = 'retired'");
	for (int i = 0; i < N; i++)
		group_serial(200 + i, serial[i]);
	db_cert_reserve_many(db, rvp, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(rv[i].rc, DB_ERR_STATE);
	for (int i = 0; i < N; i++) {
		OPENSSL_free(der[i]);
		EVP_PKEY_free(leaf[i]);
	}
	ca_free(&ca);
	db_close(db);
	db_close(owner);
	(void)err;
}
END_TEST

START_TEST(reserve_then_issue_stores_the_certificate)
{
	struct db *owner = schema_ready(), *db = connect_as(pg.app_ci);
	EVP_PKEY *leaf = ec_key();
	struct db_cert_request q;
	struct db_err err = {0};
	struct db_cert c;
	struct ca ca;
	uint8_t *der;
	size_t dl;

	/* everything as the application role: its grants suffice */
	ca_make(db, "issuing", &ca);
	q = request(&ca, S1, sizeof(S1), leaf);
	reserve_ok(db, &q);
	ck_assert_int_eq(db_cert_lookup(db, ca.id, S1, sizeof(S1), &c, &err), DB_OK);
	ck_assert_int_eq(c.status, DB_CERT_RESERVED);
	ck_assert_ptr_null(c.der);
	ck_assert_int_eq(c.n_sans, 2);
	ck_assert_int_eq(c.sans[0].kind, DB_SAN_DNS);
	ck_assert_str_eq(c.sans[0].value, "www.example.com");
	ck_assert_int_eq(c.sans[1].kind, DB_SAN_IP);
	ck_assert_str_eq(c.sans[1].value, "192.0.2.7");
	ck_assert_str_eq(c.profile, "tls-server");
	ck_assert_str_eq(c.requester, "officer-1");
	ck_assert_int_eq(c.not_after, q.not_after);
	ck_assert_int_eq(c.issued_at, 0);
	db_cert_clear(&c);

	der = leaf_der(&ca, leaf, S1, sizeof(S1), &dl);
	ck_assert_msg(db_cert_mark_issued(db, ca.id, S1, sizeof(S1), der, dl, &err) == DB_OK, "%s",
	              err.msg);
	/* authority 0: found by serial alone */
	ck_assert_int_eq(db_cert_lookup(db, 0, S1, sizeof(S1), &c, &err), DB_OK);
	ck_assert_int_eq(c.status, DB_CERT_ISSUED);
	ck_assert_int_eq(c.der_len, dl);
	ck_assert_mem_eq(c.der, der, dl);
	ck_assert_int_gt(c.issued_at, 0);
	ck_assert_int_eq(c.revocation_reason, -1);
	db_cert_clear(&c);
	/* storing twice is refused */
	ck_assert_int_eq(db_cert_mark_issued(db, ca.id, S1, sizeof(S1), der, dl, &err),
	                 DB_ERR_STATE);
	OPENSSL_free(der);
	EVP_PKEY_free(leaf);
	ca_free(&ca);
	db_close(db);
	db_close(owner);
}
END_TEST

START_TEST(issued_certificate_must_match_its_reservation)
{
	struct db *db = schema_ready();
	EVP_PKEY *leaf = ec_key(), *other = ec_key();
	struct db_cert_request q;
	struct db_err err = {0};
	struct ca ca, ca2;
	uint8_t *der;
	size_t dl;

	ca_make(db, "issuing", &ca);
	ca_make(db, "other-ca", &ca2);
	q = request(&ca, S1, sizeof(S1), leaf);
	reserve_ok(db, &q);
	/* another serial */
	der = leaf_der(&ca, leaf, S3, sizeof(S3), &dl);
	ck_assert_int_eq(db_cert_mark_issued(db, ca.id, S1, sizeof(S1), der, dl, &err),
	                 DB_ERR_INVALID);
	ck_assert_msg(strstr(err.msg, "another serial"), "%s", err.msg);
	OPENSSL_free(der);
	/* another public key */
	der = leaf_der(&ca, other, S1, sizeof(S1), &dl);
	ck_assert_int_eq(db_cert_mark_issued(db, ca.id, S1, sizeof(S1), der, dl, &err),
	                 DB_ERR_INVALID);
	ck_assert_msg(strstr(err.msg, "public key"), "%s", err.msg);
	OPENSSL_free(der);
	/* another issuer */
	der = leaf_der(&ca2, leaf, S1, sizeof(S1), &dl);
	ck_assert_int_eq(db_cert_mark_issued(db, ca.id, S1, sizeof(S1), der, dl, &err),
	                 DB_ERR_INVALID);
	ck_assert_msg(strstr(err.msg, "issuer"), "%s", err.msg);
	OPENSSL_free(der);
	/* not DER */
	ck_assert_int_eq(db_cert_mark_issued(db, ca.id, S1, sizeof(S1), S3, sizeof(S3), &err),
	                 DB_ERR_INVALID);
	/* an unknown serial */
	der = leaf_der(&ca, leaf, S3, sizeof(S3), &dl);
	ck_assert_int_eq(db_cert_mark_issued(db, ca.id, S3, sizeof(S3), der, dl, &err),
	                 DB_ERR_NOT_FOUND);
	OPENSSL_free(der);
	ck_assert_int_eq(status_of(db, &ca, S1, sizeof(S1)), DB_CERT_RESERVED);
	EVP_PKEY_free(leaf);
	EVP_PKEY_free(other);
	ca_free(&ca);
	ca_free(&ca2);
	db_close(db);
}
END_TEST

START_TEST(failed_signing_is_recorded_and_cannot_be_revoked)
{
	struct db *db = schema_ready();
	EVP_PKEY *leaf = ec_key();
	struct db_cert_request q;
	struct db_err err = {0};
	struct ca ca;
	int changed;

	ca_make(db, "issuing", &ca);
	q = request(&ca, S1, sizeof(S1), leaf);
	reserve_ok(db, &q);
	ck_assert_msg(db_cert_mark_failed(db, ca.id, S1, sizeof(S1), &err) == DB_OK, "%s", err.msg);
	ck_assert_int_eq(status_of(db, &ca, S1, sizeof(S1)), DB_CERT_FAILED);
	ck_assert_int_eq(db_cert_mark_failed(db, ca.id, S1, sizeof(S1), &err), DB_ERR_STATE);
	ck_assert_int_eq(db_cert_revoke(db, ca.id, S1, sizeof(S1), 0, 0, &changed, &err),
	                 DB_ERR_STATE);
	ck_assert_msg(strstr(err.msg, "is failed"), "%s", err.msg);
	EVP_PKEY_free(leaf);
	ca_free(&ca);
	db_close(db);
}
END_TEST

START_TEST(revoke_hold_release_report_whether_the_row_changed)
{
	struct db *owner = schema_ready(), *db = connect_as(pg.app_ci);
	struct db_err err = {0};
	int64_t before = time(NULL) - 1, inval = time(NULL) - 3600;
	struct db_cert c;
	struct ca ca;
	int changed;

	ca_make(db, "issuing", &ca);
	issue(db, &ca, S1, sizeof(S1));
	ck_assert_int_eq(db_cert_hold(db, ca.id, S1, sizeof(S1), &changed, &err), DB_OK);
	ck_assert_int_eq(changed, 1);
	ck_assert_int_eq(db_cert_hold(db, ca.id, S1, sizeof(S1), &changed, &err), DB_OK);
	ck_assert_int_eq(changed, 0);
	ck_assert_int_eq(db_cert_lookup(db, ca.id, S1, sizeof(S1), &c, &err), DB_OK);
	ck_assert_int_eq(c.status, DB_CERT_HOLD);
	ck_assert_int_eq(c.revocation_reason, DB_REASON_CERTIFICATE_HOLD);
	ck_assert_int_ge(c.revoked_at, before);
	db_cert_clear(&c);

	ck_assert_int_eq(db_cert_release(db, ca.id, S1, sizeof(S1), &changed, &err), DB_OK);
	ck_assert_int_eq(changed, 1);
	ck_assert_int_eq(db_cert_release(db, ca.id, S1, sizeof(S1), &changed, &err), DB_OK);
	ck_assert_int_eq(changed, 0);
	ck_assert_int_eq(db_cert_lookup(db, ca.id, S1, sizeof(S1), &c, &err), DB_OK);
	ck_assert_int_eq(c.status, DB_CERT_ISSUED);
	ck_assert_int_eq(c.revoked_at, 0);
	ck_assert_int_eq(c.revocation_reason, -1);
	db_cert_clear(&c);

	/* reasons that revoke does not take */
	ck_assert_int_eq(db_cert_revoke(db, ca.id, S1, sizeof(S1), 6, 0, &changed, &err),
	                 DB_ERR_INVALID);
	ck_assert_int_eq(db_cert_revoke(db, ca.id, S1, sizeof(S1), 7, 0, &changed, &err),
	                 DB_ERR_INVALID);
	ck_assert_int_eq(db_cert_revoke(db, ca.id, S1, sizeof(S1), 11, 0, &changed, &err),
	                 DB_ERR_INVALID);
	ck_assert_int_eq(
	    db_cert_revoke(db, ca.id, S1, sizeof(S1), 1, time(NULL) + 3600, &changed, &err),
	    DB_ERR_INVALID);

	ck_assert_msg(db_cert_revoke(db, ca.id, S1, sizeof(S1), DB_REASON_KEY_COMPROMISE, inval,
	                             &changed, &err) == DB_OK,
	              "%s", err.msg);
	ck_assert_int_eq(changed, 1);
	ck_assert_int_eq(
	    db_cert_revoke(db, ca.id, S1, sizeof(S1), DB_REASON_SUPERSEDED, 0, &changed, &err),
	    DB_OK);
	ck_assert_int_eq(changed, 0);
	ck_assert_int_eq(db_cert_lookup(db, ca.id, S1, sizeof(S1), &c, &err), DB_OK);
	ck_assert_int_eq(c.status, DB_CERT_REVOKED);
	ck_assert_int_eq(c.revocation_reason, DB_REASON_KEY_COMPROMISE);
	ck_assert_int_eq(c.invalidity_date, inval);
	ck_assert_int_ge(c.revoked_at, before);
	db_cert_clear(&c);
	/* a revoked certificate is neither held nor released */
	ck_assert_int_eq(db_cert_hold(db, ca.id, S1, sizeof(S1), &changed, &err), DB_ERR_STATE);
	ck_assert_int_eq(db_cert_release(db, ca.id, S1, sizeof(S1), &changed, &err), DB_ERR_STATE);
	/* unknown serial */
	ck_assert_int_eq(db_cert_revoke(db, ca.id, S3, sizeof(S3), 0, 0, &changed, &err),
	                 DB_ERR_NOT_FOUND);
	/* a reservation whose certificate may have been signed can be revoked */
	{
		EVP_PKEY *leaf = ec_key();
		struct db_cert_request q = request(&ca, S3, sizeof(S3), leaf);
		reserve_ok(db, &q);
		ck_assert_int_eq(db_cert_revoke(db, ca.id, S3, sizeof(S3), 0, 0, &changed, &err),
		                 DB_OK);
		ck_assert_int_eq(changed, 1);
		EVP_PKEY_free(leaf);
	}
	ca_free(&ca);
	db_close(db);
	db_close(owner);
}
END_TEST

START_TEST(revocation_and_its_audit_entry_commit_together)
{
	struct db *db = schema_ready();
	struct db_audit_entry e = {"officer-1", "officer", "revoke", "serial 5a01", "success", ""};
	struct db_err err = {0};
	struct ca ca;
	int64_t seq;
	int changed;

	ca_make(db, "issuing", &ca);
	issue(db, &ca, S1, sizeof(S1));
	ck_assert_int_eq(db_begin(db, &err), DB_OK);
	ck_assert_int_eq(db_cert_revoke(db, ca.id, S1, sizeof(S1), 0, 0, &changed, &err), DB_OK);
	ck_assert_int_eq(db_audit_append(db, &e, &seq, &err), DB_OK);
	db_rollback(db);
	ck_assert_int_eq(status_of(db, &ca, S1, sizeof(S1)), DB_CERT_ISSUED);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM audit_log"), 0);

	ck_assert_int_eq(db_begin(db, &err), DB_OK);
	ck_assert_int_eq(db_cert_revoke(db, ca.id, S1, sizeof(S1), 0, 0, &changed, &err), DB_OK);
	ck_assert_int_eq(db_audit_append(db, &e, &seq, &err), DB_OK);
	ck_assert_int_eq(db_commit(db, &err), DB_OK);
	ck_assert_int_eq(status_of(db, &ca, S1, sizeof(S1)), DB_CERT_REVOKED);
	ck_assert_int_eq(seq, 1);
	ca_free(&ca);
	db_close(db);
}
END_TEST

START_TEST(list_filters_and_pages)
{
	struct db *db = schema_ready();
	struct db_cert_filter f = {.status = -1};
	struct db_cert *rows;
	struct db_err err = {0};
	int64_t next, seen = 0;
	struct ca a, b;
	size_t n, total = 0;
	uint8_t serial[2];
	int changed;

	ca_make(db, "ca-a", &a);
	ca_make(db, "ca-b", &b);
	for (int i = 1; i <= 25; i++) {
		serial[0] = 0x40;
		serial[1] = (uint8_t)i;
		issue(db, i % 5 ? &a : &b, serial, 2);
	}
	serial[1] = 3;
	ck_assert_int_eq(db_cert_revoke(db, a.id, serial, 2, 0, 0, &changed, &err), DB_OK);

	/* pages of 10 over everything, in id order */
	f.limit = 10;
	do {
		ck_assert_msg(db_cert_list(db, &f, &rows, &n, &next, &err) == DB_OK, "%s", err.msg);
		for (size_t i = 0; i < n; i++) {
			ck_assert_int_gt(rows[i].id, seen);
			seen = rows[i].id;
			ck_assert_ptr_null(rows[i].der);
		}
		total += n;
		db_cert_list_free(rows, n);
		f.after_id = next;
	} while (next);
	ck_assert_int_eq(total, 25);

	memset(&f, 0, sizeof(f));
	f.status = -1;
	f.authority_id = b.id;
	ck_assert_int_eq(db_cert_list(db, &f, &rows, &n, &next, &err), DB_OK);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(next, 0);
	db_cert_list_free(rows, n);

	f.authority_id = 0;
	f.status = DB_CERT_REVOKED;
	ck_assert_int_eq(db_cert_list(db, &f, &rows, &n, &next, &err), DB_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(rows[0].serial_len, 2);
	ck_assert_int_eq(rows[0].serial[1], 3);
	db_cert_list_free(rows, n);

	f.status = -1;
	f.san = "www.example.com";
	ck_assert_int_eq(db_cert_list(db, &f, &rows, &n, &next, &err), DB_OK);
	ck_assert_int_eq(n, 25);
	db_cert_list_free(rows, n);
	f.san = "nowhere.example";
	ck_assert_int_eq(db_cert_list(db, &f, &rows, &n, &next, &err), DB_OK);
	ck_assert_int_eq(n, 0);
	f.san = NULL;

	f.subject = "CN=leaf";
	f.expires_after = time(NULL);
	f.expires_before = time(NULL) + 2 * 86400;
	ck_assert_int_eq(db_cert_list(db, &f, &rows, &n, &next, &err), DB_OK);
	ck_assert_int_eq(n, 25);
	db_cert_list_free(rows, n);
	f.expires_before = time(NULL) + 60;
	ck_assert_int_eq(db_cert_list(db, &f, &rows, &n, &next, &err), DB_OK);
	ck_assert_int_eq(n, 0);

	f.limit = DB_LIST_MAX + 1;
	ck_assert_int_eq(db_cert_list(db, &f, &rows, &n, &next, &err), DB_ERR_INVALID);
	ca_free(&a);
	ca_free(&b);
	db_close(db);
}
END_TEST

/* ---- hostile text ---- */

START_TEST(sql_metacharacters_are_stored_verbatim)
{
	static const char subject[] = "CN=O'Brien\"; DROP TABLE certificates; -- \\x00 $1 %s %n "
	                              "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91\t\n";
	static const char dns[] = "x'); DELETE FROM certificates; --.example.com";
	static const char uri[] = "https://e.example/?a=1&b='2'#\\";
	struct db_san sans[] = {
	    {DB_SAN_DNS, dns, sizeof(dns) - 1},
	    {DB_SAN_URI, uri, sizeof(uri) - 1},
	};
	struct db_audit_entry e = {"o'neil\\", "ra",      "issue; DROP TABLE audit_log",
	                           "$$ $1 $$", "success", "{\"q\": \"'\\\"\"}"};
	struct db *db = schema_ready();
	EVP_PKEY *leaf = ec_key();
	struct db_cert_request q;
	struct db_audit_report rep;
	struct db_err err = {0};
	struct db_cert c;
	struct ca ca;
	int64_t seq;

	ca_make(db, "it's a \"CA\"; --", &ca);
	q = request(&ca, S2, 4, leaf); /* ' ; - - */
	q.subject = subject;
	q.subject_len = sizeof(subject) - 1;
	q.sans = sans;
	q.n_sans = 2;
	q.requester = "robert'); DROP TABLE principals;--";
	reserve_ok(db, &q);
	ck_assert_int_eq(db_cert_lookup(db, ca.id, S2, 4, &c, &err), DB_OK);
	ck_assert_str_eq(c.subject, subject);
	ck_assert_str_eq(c.sans[0].value, dns);
	ck_assert_str_eq(c.sans[1].value, uri);
	ck_assert_str_eq(c.requester, q.requester);
	db_cert_clear(&c);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM certificates"), 1);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM principals"), 0);

	ck_assert_int_eq(db_audit_append(db, &e, &seq, &err), DB_OK);
	ck_assert_int_eq(db_audit_verify(db, &rep, &err), DB_OK);
	ck_assert_int_eq(rep.finding, DB_AUDIT_INTACT);
	ck_assert_int_eq(rep.entries, 1);
	EVP_PKEY_free(leaf);
	ca_free(&ca);
	db_close(db);
}
END_TEST

START_TEST(nul_and_invalid_utf8_are_refused_cleanly)
{
	static const char nul_dns[] = "www.example.com\0.evil.example";
	static const char bad_utf8[] = "CN=\xc3\x28";
	struct db_san sans[] = {{DB_SAN_DNS, nul_dns, sizeof(nul_dns) - 1}};
	struct db_audit_entry e = {"actor", "", "act", "\xff\xfe", "success", ""};
	struct db *db = schema_ready();
	EVP_PKEY *leaf = ec_key();
	struct db_cert_request q;
	struct db_err err = {0};
	struct ca ca;
	int64_t id;

	ca_make(db, "issuing", &ca);
	q = request(&ca, S1, sizeof(S1), leaf);
	q.sans = sans;
	q.n_sans = 1;
	ck_assert_int_eq(db_cert_reserve(db, &q, &id, &err), DB_ERR_INVALID);
	ck_assert_msg(strstr(err.msg, "NUL"), "%s", err.msg);

	q = request(&ca, S1, sizeof(S1), leaf);
	q.subject = "CN=a\0b";
	q.subject_len = 6;
	ck_assert_int_eq(db_cert_reserve(db, &q, &id, &err), DB_ERR_INVALID);
	q.subject = bad_utf8;
	q.subject_len = sizeof(bad_utf8) - 1;
	ck_assert_int_eq(db_cert_reserve(db, &q, &id, &err), DB_ERR_INVALID);
	ck_assert_int_eq(db_audit_append(db, &e, &id, &err), DB_ERR_INVALID);
	/* a serial with a leading zero byte is not minimal */
	q = request(&ca, S2 + 4, 4, leaf);
	ck_assert_int_eq(db_cert_reserve(db, &q, &id, &err), DB_ERR_INVALID);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM certificates"), 0);
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM audit_log"), 0);

	/* the server refuses a NUL too, should one get past the data layer */
	{
		const char *vals[1] = {nul_dns};
		int lens[1] = {sizeof(nul_dns) - 1}, fmts[1] = {1};
		PGresult *r =
		    PQexecParams(db_pgconn(db), "SELECT $1::text", 1, NULL, vals, lens, fmts, 0);
		ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
		PQclear(r);
	}
	EVP_PKEY_free(leaf);
	ca_free(&ca);
	db_close(db);
}
END_TEST

/* ---- the audit log ---- */

static void append_n(struct db *db, int n)
{
	struct db_err err = {0};
	char obj[32];
	int64_t seq;

	for (int i = 0; i < n; i++) {
		struct db_audit_entry e = {"officer-1", "officer", "revoke",
		                           obj,         "success", "{\"reason\": 1}"};
		snprintf(obj, sizeof(obj), "serial %02x", i + 1);
		ck_assert_msg(db_audit_append(db, &e, &seq, &err) == DB_OK, "%s", err.msg);
	}
}

static void verify_finds(struct db *db, enum db_audit_finding f, int64_t seq)
{
	struct db_audit_report rep;
	struct db_err err = {0};

	ck_assert_msg(db_audit_verify(db, &rep, &err) == DB_OK, "%s", err.msg);
	ck_assert_msg(rep.finding == f && rep.seq == seq,
	              "found %s at %lld (%s), expected %s at %lld",
	              db_audit_finding_name(rep.finding), (long long)rep.seq, rep.detail,
	              db_audit_finding_name(f), (long long)seq);
}

START_TEST(app_role_cannot_update_or_delete_audit_rows)
{
	struct db *owner = schema_ready(), *app = connect_as(pg.app_ci);

	append_n(app, 3);
	sql_fails(app, "UPDATE audit_log SET detail = 'x' WHERE seq = 2", "42501");
	sql_fails(app, "DELETE FROM audit_log WHERE seq = 2", "42501");
	sql_fails(app, "TRUNCATE audit_log", "42501");
	sql_fails(app, "DELETE FROM certificates", "42501");
	sql_fails(app, "ALTER TABLE audit_log DISABLE TRIGGER USER", "42501");
	/* an append that does not extend the chain is refused by the table itself */
	sql_fails(app,
	          "INSERT INTO audit_log SELECT 9, now(), 'a', '', 'b', 'c', 'success', '',"
	          " hash, hash FROM audit_log WHERE seq = 3",
	          "23000");
	/* the owner is stopped by the trigger unless it disables it first */
	sql_fails(owner, "UPDATE audit_log SET detail = 'x' WHERE seq = 2", "42501");
	sql_fails(owner, "DELETE FROM audit_log WHERE seq = 2", "42501");
	sql_fails(owner, "TRUNCATE audit_log", "42501");
	verify_finds(app, DB_AUDIT_INTACT, 0);
	db_close(app);
	db_close(owner);
}
END_TEST

START_TEST(audit_verify_passes_an_intact_chain)
{
	struct db *db = schema_ready();
	struct db_audit_report rep;
	struct db_err err = {0};
	uint8_t head[32];
	int64_t seq;

	verify_finds(db, DB_AUDIT_INTACT, 0);
	append_n(db, 1205); /* more than one page of the walk */
	ck_assert_int_eq(db_audit_verify(db, &rep, &err), DB_OK);
	ck_assert_int_eq(rep.finding, DB_AUDIT_INTACT);
	ck_assert_int_eq(rep.entries, 1205);
	ck_assert_int_eq(rep.head_seq, 1205);
	ck_assert_int_eq(db_audit_head(db, &seq, head, &err), DB_OK);
	ck_assert_int_eq(seq, 1205);
	ck_assert_mem_eq(head, rep.head_hash, 32);
	db_close(db);
}
END_TEST

/* Tampering as the owner, who must first switch the append-only triggers off. */
static void tamper(struct db *owner, const char *sql)
{
	harness_pg_exec_ok(db_pgconn(owner), "ALTER TABLE audit_log DISABLE TRIGGER USER");
	harness_pg_exec_ok(db_pgconn(owner), sql);
	harness_pg_exec_ok(db_pgconn(owner), "ALTER TABLE audit_log ENABLE TRIGGER USER");
}

START_TEST(audit_verify_names_a_modified_entry)
{
	struct db *db = schema_ready();

	append_n(db, 6);
	tamper(db, "UPDATE audit_log SET outcome = 'denied' WHERE seq = 4");
	verify_finds(db, DB_AUDIT_MODIFIED, 4);
	db_close(db);
}
END_TEST

START_TEST(audit_verify_names_a_deleted_entry)
{
	struct db *db = schema_ready();

	append_n(db, 6);
	tamper(db, "DELETE FROM audit_log WHERE seq = 3");
	verify_finds(db, DB_AUDIT_DELETED, 3);
	db_close(db);
}
END_TEST

START_TEST(audit_verify_names_a_deleted_entry_after_renumbering)
{
	struct db *db = schema_ready();

	append_n(db, 6);
	tamper(db, "DELETE FROM audit_log WHERE seq = 3;"
	           " UPDATE audit_log SET seq = seq + 1000 WHERE seq > 3;"
	           " UPDATE audit_log SET seq = seq - 1001 WHERE seq > 1000");
	verify_finds(db, DB_AUDIT_DELETED, 3);
	db_close(db);
}
END_TEST

static void hexs(const uint8_t *b, size_t n, char *out)
{
	out[0] = '\\';
	out[1] = 'x';
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 + 2 * i, "%02x", b[i]);
}

/* The chain is extended by the table's trigger (migration 0009): every hash it computes is
 * the data layer's own (db_audit_canonical), for text of any kind, and a row that brings only
 * some of seq, at, prev_hash and hash is refused. */
START_TEST(audit_trigger_hashes_as_the_data_layer_does)
{
	struct db *db = schema_ready();
	struct db_err err = {0};
	static const char *texts[] = {"", "Z\xc3\xbcrich \xe2\x9c\x93", "\xe2\x80\xae rtl",
	                              "quote ' and \\ backslash", "line\nbreak"};
	char big[DB_AUDIT_DETAIL_MAX + 1];
	uint8_t prev[32] = {0}, canon[DB_AUDIT_DETAIL_MAX + 1024], hash[32];
	PGresult *r;
	int64_t seq;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct db_audit_entry e = {"actor \xc3\xa9", "officer", "issue",
		                           texts[i],         "success", i == 0 ? big : texts[i]};
		ck_assert_msg(db_audit_append(db, &e, &seq, &err) == DB_OK, "%s", err.msg);
		ck_assert_int_eq(seq, (int64_t)i + 1);
	}
	r = PQexec(db_pgconn(db),
	           "SELECT seq, (extract(epoch FROM at) * 1000000)::bigint, actor, role, action,"
	           " object, outcome, detail, encode(prev_hash, 'hex'), encode(hash, 'hex')"
	           " FROM audit_log ORDER BY seq");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_int_eq(PQntuples(r), 5);
	for (int i = 0; i < PQntuples(r); i++) {
		struct db_audit_entry e = {PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
		                           PQgetvalue(r, i, 4), PQgetvalue(r, i, 5),
		                           PQgetvalue(r, i, 6), PQgetvalue(r, i, 7)};
		char want[70];
		unsigned int hl = 0;
		size_t n = db_audit_canonical(atoll(PQgetvalue(r, i, 0)),
		                              atoll(PQgetvalue(r, i, 1)), &e, canon, sizeof(canon));
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		ck_assert_str_eq(PQgetvalue(r, i, 5), texts[i]);
		hexs(prev, 32, want);
		ck_assert_str_eq(PQgetvalue(r, i, 8), want + 2);
		ck_assert_uint_le(n, sizeof(canon));
		ck_assert(EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
		          EVP_DigestUpdate(md, prev, 32) && EVP_DigestUpdate(md, canon, n) &&
		          EVP_DigestFinal_ex(md, hash, &hl));
		EVP_MD_CTX_free(md);
		hexs(hash, 32, want);
		ck_assert_msg(!strcmp(PQgetvalue(r, i, 9), want + 2),
		              "entry %d: hash %s, expected %s", i + 1, PQgetvalue(r, i, 9),
		              want + 2);
		memcpy(prev, hash, 32);
	}
	PQclear(r);
	verify_finds(db, DB_AUDIT_INTACT, 0);
	/* some of the chain's values but not all: refused, nothing appended */
	sql_fails(db,
	          "INSERT INTO audit_log (seq, actor, role, action, object, outcome, detail)"
	          " VALUES (6, 'a', '', 'b', 'c', 'success', '')",
	          "23000");
	sql_fails(db,
	          "INSERT INTO audit_log (prev_hash, actor, role, action, object, outcome, detail)"
	          " VALUES (sha256('x'), 'a', '', 'b', 'c', 'success', '')",
	          "23000");
	ck_assert_int_eq(harness_pg_count(db_pgconn(db), "SELECT count(*) FROM audit_log"), 5);
	db_close(db);
}
END_TEST

START_TEST(audit_verify_names_an_inserted_entry)
{
	struct db *db = schema_ready();
	struct db_audit_entry e = {"mallory", "ca-admin", "issue", "serial 666", "success", ""};
	uint8_t prev[32], hash[32], canon[512];
	char prev_hex[70], hash_hex[70], sql[1024];
	int64_t at_us = 1700000000000000LL;
	unsigned int hl;
	size_t n;
	PGresult *r;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	append_n(db, 6);
	/* A forger who knows the format: entry 3 linked to entry 2 with a correct hash, the
	 * rest moved up by one. */
	r = PQexec(db_pgconn(db), "SELECT encode(hash, 'hex') FROM audit_log WHERE seq = 2");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	for (int i = 0; i < 32; i++)
		sscanf(PQgetvalue(r, 0, 0) + 2 * i, "%2hhx", &prev[i]);
	PQclear(r);
	n = db_audit_canonical(3, at_us, &e, canon, sizeof(canon));
	ck_assert_uint_le(n, sizeof(canon));
	ck_assert(EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, prev, 32) &&
	          EVP_DigestUpdate(md, canon, n) && EVP_DigestFinal_ex(md, hash, &hl));
	EVP_MD_CTX_free(md);
	hexs(prev, 32, prev_hex);
	hexs(hash, 32, hash_hex);
	snprintf(
	    sql, sizeof(sql),
	    "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3;"
	    " UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000;"
	    " INSERT INTO audit_log VALUES (3, to_timestamp(0) + %lld * interval '1 microsecond',"
	    " 'mallory', 'ca-admin', 'issue', 'serial 666', 'success', '', '%s', '%s')",
	    (long long)at_us, prev_hex, hash_hex);
	tamper(db, sql);
	verify_finds(db, DB_AUDIT_INSERTED, 3);
	db_close(db);
}
END_TEST

START_TEST(audit_verify_names_an_inserted_entry_with_a_bogus_hash)
{
	struct db *db = schema_ready();

	append_n(db, 6);
	tamper(db,
	       "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3;"
	       " UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000;"
	       " INSERT INTO audit_log VALUES (3, now(), 'mallory', '', 'issue', 'x', 'success',"
	       " '', sha256('a'), sha256('b'))");
	verify_finds(db, DB_AUDIT_INSERTED, 3);
	db_close(db);
}
END_TEST

START_TEST(audit_checkpoint_catches_a_truncated_tail)
{
	struct db *db = schema_ready();
	struct db_err err = {0};
	uint8_t head[32], bogus[32] = {1};
	int64_t seq;

	append_n(db, 6);
	ck_assert_int_eq(db_audit_head(db, &seq, head, &err), DB_OK);
	ck_assert_int_eq(
	    db_audit_checkpoint_add(db, seq, head, (const uint8_t *)"sig", 3, "audit-key", &err),
	    DB_OK);
	/* a checkpoint over a hash the log does not have is refused */
	ck_assert_int_eq(
	    db_audit_checkpoint_add(db, seq, bogus, (const uint8_t *)"sig", 3, "audit-key", &err),
	    DB_ERR_INVALID);
	verify_finds(db, DB_AUDIT_INTACT, 0);
	/* without the checkpoint, dropping the last entries would leave a valid chain */
	tamper(db, "DELETE FROM audit_log WHERE seq >= 5");
	verify_finds(db, DB_AUDIT_DELETED, 5);
	db_close(db);
}
END_TEST

struct appender {
	int n;
	enum db_status rc;
	char msg[512];
};

static void *append_thread(void *arg)
{
	struct appender *a = arg;
	struct db_audit_entry e = {"cad", "system", "tick", "thread", "success", ""};
	struct db_err err = {0};
	struct db *db = NULL;
	int64_t seq;

	a->rc = db_connect(pg.app_ci, &db, &err);
	for (int i = 0; i < a->n && a->rc == DB_OK; i++)
		a->rc = db_audit_append(db, &e, &seq, &err);
	if (a->rc != DB_OK)
		snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
	db_close(db);
	return NULL;
}

START_TEST(concurrent_appenders_keep_one_chain)
{
	struct db *owner = schema_ready();
	struct appender a[4];
	pthread_t t[4];

	for (int i = 0; i < 4; i++) {
		a[i] = (struct appender){.n = 50};
		ck_assert_int_eq(pthread_create(&t[i], NULL, append_thread, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(a[i].rc == DB_OK, "appender %d: %s", i, a[i].msg);
	}
	verify_finds(owner, DB_AUDIT_INTACT, 0);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), "SELECT max(seq) FROM audit_log"), 200);
	db_close(owner);
}
END_TEST

/* ---- announcements and connection loss ---- */

static void expect_event(struct db *listener, const struct ca *ca, const uint8_t *serial,
                         size_t len, enum db_cert_status st)
{
	struct db_revocation_event ev;
	struct db_err err = {0};
	int got;

	ck_assert_msg(db_revocation_next(listener, 5000, &ev, &got, &err) == DB_OK, "%s", err.msg);
	ck_assert_msg(got, "no announcement within 5 s");
	ck_assert_int_eq(ev.authority_id, ca->id);
	ck_assert_int_eq(ev.serial_len, len);
	ck_assert_mem_eq(ev.serial, serial, len);
	ck_assert_int_eq(ev.status, st);
}

START_TEST(revocation_is_announced_to_listeners)
{
	struct db *owner = schema_ready(), *db = connect_as(pg.app_ci),
	          *listener = connect_as(pg.app_ci);
	struct db_revocation_event ev;
	struct db_err err = {0};
	struct ca ca;
	int got, changed;

	ca_make(db, "issuing", &ca);
	ck_assert_int_eq(db_revocations_listen(listener, &err), DB_OK);
	issue(db, &ca, S3, sizeof(S3));
	/* issuance is not a revocation event */
	ck_assert_int_eq(db_revocation_next(listener, 200, &ev, &got, &err), DB_OK);
	ck_assert_int_eq(got, 0);

	ck_assert_int_eq(db_cert_hold(db, ca.id, S3, sizeof(S3), &changed, &err), DB_OK);
	expect_event(listener, &ca, S3, sizeof(S3), DB_CERT_HOLD);
	ck_assert_int_eq(db_cert_release(db, ca.id, S3, sizeof(S3), &changed, &err), DB_OK);
	expect_event(listener, &ca, S3, sizeof(S3), DB_CERT_ISSUED);
	ck_assert_int_eq(db_cert_revoke(db, ca.id, S3, sizeof(S3), 1, 0, &changed, &err), DB_OK);
	expect_event(listener, &ca, S3, sizeof(S3), DB_CERT_REVOKED);
	/* a repeated revocation changes nothing and announces nothing */
	ck_assert_int_eq(db_cert_revoke(db, ca.id, S3, sizeof(S3), 1, 0, &changed, &err), DB_OK);
	ck_assert_int_eq(db_revocation_next(listener, 200, &ev, &got, &err), DB_OK);
	ck_assert_int_eq(got, 0);
	ca_free(&ca);
	db_close(listener);
	db_close(db);
	db_close(owner);
}
END_TEST

START_TEST(connection_recovers_after_a_server_restart)
{
	struct db *db = schema_ready();
	struct db_err err = {0};
	int version;

	ck_assert_int_eq(harness_pgtest(&pg, "stop", NULL), 0);
	ck_assert_int_eq(db_schema_version(db, &version, &err), DB_ERR_UNAVAILABLE);
	ck_assert_int_eq(harness_pgtest(&pg, "start", "--fast"), 0);
	ck_assert_msg(db_schema_version(db, &version, &err) == DB_OK, "%s", err.msg);
	ck_assert_int_eq(version, db_schema_latest());
	db_close(db);
}
END_TEST

START_TEST(serial_hex_round_trips)
{
	uint8_t s[DB_SERIAL_MAX];
	char hex[2 * DB_SERIAL_MAX + 1];
	size_t n;

	/* leading zeros dropped; an odd digit count puts one digit in the first byte */
	ck_assert_int_eq(db_serial_from_hex("0x00A1b2C", s, &n), 0);
	ck_assert_int_eq(n, 3);
	db_serial_to_hex(s, n, hex);
	ck_assert_str_eq(hex, "0a1b2c");
	ck_assert_int_eq(db_serial_from_hex("0", s, &n), -1);
	ck_assert_int_eq(db_serial_from_hex("", s, &n), -1);
	ck_assert_int_eq(db_serial_from_hex("12g4", s, &n), -1);
	ck_assert_int_eq(db_serial_from_hex("7fffffffffffffffffffffffffffffffffffffff", s, &n), 0);
	ck_assert_int_eq(n, 20);
	ck_assert_int_eq(db_serial_from_hex("1fffffffffffffffffffffffffffffffffffffffff", s, &n),
	                 -1);
}
END_TEST

/* Schema version 3: retirement, profile switches and CRL/OCSP settings, as the app role. */
START_TEST(settings_are_stored_and_checked_by_the_schema)
{
	struct db *owner = schema_ready(), *app = connect_as(pg.app_ci);
	struct db_authority_settings st, got;
	struct db_authority *list = NULL;
	struct db_err err = {0};
	struct ca a, b;
	int retired, enabled;
	int32_t id;
	size_t n;

	ca_make(app, "ca-b", &b);
	ca_make(app, "ca-a", &a);
	ck_assert_int_eq(db_authority_list(app, &list, &n, &err), DB_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(list[0].name, "ca-a");
	ck_assert_int_eq(list[0].status, DB_AUTH_ACTIVE);
	db_authority_list_free(list, n);

	/* Retirement: once, for good; issuance sees it. */
	ck_assert_int_eq(db_issuance_allowed(app, a.id, "tls", &retired, &enabled, &err), DB_OK);
	ck_assert_int_eq(retired, 0);
	ck_assert_int_eq(enabled, 1);
	ck_assert_int_eq(db_authority_retire(app, "ca-a", &id, &err), DB_OK);
	ck_assert_int_eq(id, a.id);
	ck_assert_int_eq(db_authority_retire(app, "ca-a", &id, &err), DB_ERR_STATE);
	ck_assert_int_eq(db_authority_retire(app, "nobody", &id, &err), DB_ERR_NOT_FOUND);
	ck_assert_int_eq(db_issuance_allowed(app, a.id, "tls", &retired, &enabled, &err), DB_OK);
	ck_assert_int_eq(retired, 1);
	ck_assert_int_eq(db_issuance_allowed(app, b.id, "tls", &retired, &enabled, &err), DB_OK);
	ck_assert_int_eq(retired, 0);

	/* Profiles: enabled until switched off; the switch is per profile. */
	ck_assert_int_eq(db_profile_set_enabled(app, "tls", 0, "admin", &err), DB_OK);
	ck_assert_int_eq(db_profile_enabled(app, "tls", &enabled, &err), DB_OK);
	ck_assert_int_eq(enabled, 0);
	ck_assert_int_eq(db_profile_enabled(app, "email", &enabled, &err), DB_OK);
	ck_assert_int_eq(enabled, 1);
	ck_assert_int_eq(db_issuance_allowed(app, b.id, "tls", &retired, &enabled, &err), DB_OK);
	ck_assert_int_eq(enabled, 0);
	ck_assert_int_eq(db_profile_set_enabled(app, "tls", 1, "admin", &err), DB_OK);
	ck_assert_int_eq(db_profile_enabled(app, "tls", &enabled, &err), DB_OK);
	ck_assert_int_eq(enabled, 1);

	/* Settings: defaults, a round trip, and the schema's own range checks. */
	ck_assert_int_eq(db_authority_settings_get(app, b.id, &got, &err), DB_OK);
	ck_assert_int_eq(got.is_default, 1);
	ck_assert_int_eq(got.crl_next_update_seconds, 86400);
	db_authority_settings_default(&st);
	st.crl_next_update_seconds = 7200;
	st.delta_crl_seconds = 600;
	st.ocsp_validity_seconds = 120;
	st.ocsp_nonce_rate_limit = 10;
	snprintf(st.ocsp_signer_key_label, sizeof(st.ocsp_signer_key_label), "ocsp-b");
	ck_assert_int_eq(db_authority_settings_put(app, b.id, &st, "officer", &err), DB_OK);
	ck_assert_int_eq(db_authority_settings_get(app, b.id, &got, &err), DB_OK);
	ck_assert_int_eq(got.is_default, 0);
	ck_assert_int_eq(got.crl_next_update_seconds, 7200);
	ck_assert_int_eq(got.delta_crl_seconds, 600);
	ck_assert_int_eq(got.ocsp_validity_seconds, 120);
	ck_assert_int_eq(got.ocsp_nonce_rate_limit, 10);
	ck_assert_str_eq(got.ocsp_signer_key_label, "ocsp-b");
	ck_assert_str_eq(got.updated_by, "officer");
	st.delta_crl_seconds = 7200; /* not below the CRL's period */
	ck_assert_int_eq(db_authority_settings_put(app, b.id, &st, "officer", &err), DB_ERR_QUERY);
	ck_assert_str_eq(err.sqlstate, "23514");
	st.delta_crl_seconds = 0;
	snprintf(st.ocsp_signer_key_label, sizeof(st.ocsp_signer_key_label), "a b");
	ck_assert_int_eq(db_authority_settings_put(app, b.id, &st, "officer", &err), DB_ERR_QUERY);
	sql_fails(app, "UPDATE authority_settings SET ocsp_validity_seconds = 59", "23514");
	sql_fails(app, "UPDATE authority_settings SET crl_next_update_seconds = 7776001", "23514");
	sql_fails(app, "DELETE FROM authority_settings", "42501");
	sql_fails(app, "DELETE FROM profile_settings", "42501");
	ck_assert_int_eq(db_authority_settings_get(app, b.id, &got, &err), DB_OK);
	ck_assert_int_eq(got.delta_crl_seconds, 600);
	ca_free(&a);
	ca_free(&b);
	db_close(app);
	db_close(owner);
}
END_TEST

/* BEGIN, sent (db_begin defers it to the transaction's first statement). */
static void begin_sent(struct db *db)
{
	struct db_err err = {0};
	PGresult *r = NULL;

	ck_assert_int_eq(db_begin(db, &err), DB_OK);
	ck_assert_int_eq(db_exec(db, "SELECT 1", NULL, &r, &err, "begin"), DB_OK);
	PQclear(r);
	ck_assert_int_eq(PQtransactionStatus(db_pgconn(db)), PQTRANS_INTRANS);
}

/* The last statement of a transaction and its COMMIT go in one round trip (pipeline mode):
 * on success both are done; if the statement fails, nothing is committed and the transaction
 * is left failed for the caller to roll back; the connection stays usable. */
START_TEST(statement_and_commit_in_one_round_trip)
{
	struct db *owner = schema_ready(), *other = connect_as(pg.owner_ci);
	PGconn *c = db_pgconn(owner);
	struct db_audit_entry e = {"tester", "officer", "test.append", "x", "success", ""};
	struct db_audit_report rep;
	struct db_err err = {0};
	struct db_params p = {0};
	PGresult *r = NULL;
	int64_t seq = 0;

	harness_pg_exec_ok(c, "CREATE TABLE pipe (x integer PRIMARY KEY)");
	db_param_int(&p, 1);
	begin_sent(owner);
	ck_assert_msg(db_exec_commit(owner, "INSERT INTO pipe VALUES ($1::integer) RETURNING x", &p,
	                             &r, &err, "first") == DB_OK,
	              "%s", err.msg);
	/* the statement's own result comes back */
	ck_assert_int_eq(PQntuples(r), 1);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
	PQclear(r);
	r = NULL;
	ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
	ck_assert_int_eq(harness_pg_count(db_pgconn(other), "SELECT count(*) FROM pipe"), 1);
	/* the same row again: a conflict, the transaction failed and still open */
	begin_sent(owner);
	ck_assert_int_eq(db_exec_commit(owner, "INSERT INTO pipe VALUES ($1::integer)", &p, NULL,
	                                &err, "second"),
	                 DB_ERR_CONFLICT);
	ck_assert_ptr_nonnull(strstr(err.msg, "second"));
	ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_INERROR);
	db_rollback(owner);
	ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
	/* BEGIN travels with a first statement that has parameters (one pipeline): its failure
	 * leaves the transaction open and failed, as a separate BEGIN would */
	ck_assert_int_eq(db_begin(owner, &err), DB_OK);
	ck_assert_int_eq(db_exec(owner, "INSERT INTO pipe VALUES ($1::integer)", &p, &r, &err,
	                         "begin and insert"),
	                 DB_ERR_CONFLICT);
	PQclear(r);
	r = NULL;
	ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_INERROR);
	db_rollback(owner);
	ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
	/* a statement that does not prepare: its own error, nothing committed */
	begin_sent(owner);
	ck_assert_int_ne(db_exec_commit(owner, "INSERT INTO no_such_table VALUES ($1::integer)", &p,
	                                NULL, &err, "third"),
	                 DB_OK);
	ck_assert_ptr_nonnull(strstr(err.msg, "no_such_table"));
	db_rollback(owner);
	/* earlier statements of the transaction commit with the last */
	{
		struct db_params q = {0}, t = {0};
		db_param_int(&q, 2);
		db_param_int(&t, 3);
		ck_assert_int_eq(db_begin(owner, &err), DB_OK);
		ck_assert_int_eq(
		    db_exec(owner, "INSERT INTO pipe VALUES ($1::integer)", &q, &r, &err, "fourth"),
		    DB_OK);
		PQclear(r);
		ck_assert_int_eq(db_exec_commit(owner, "INSERT INTO pipe VALUES ($1::integer)", &t,
		                                NULL, &err, "fifth"),
		                 DB_OK);
	}
	ck_assert_int_eq(harness_pg_count(db_pgconn(other), "SELECT count(*) FROM pipe"), 3);
	/* the audit chain's append-and-commit: the entry is there and the chain verifies */
	ck_assert_int_eq(db_begin(owner, &err), DB_OK);
	ck_assert_msg(db_audit_append_commit(owner, &e, &seq, &err) == DB_OK, "%s", err.msg);
	ck_assert_int_gt(seq, 0);
	ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
	ck_assert_int_eq(db_audit_verify(other, &rep, &err), DB_OK);
	ck_assert_int_eq(rep.finding, DB_AUDIT_INTACT);
	ck_assert_int_eq(rep.head_seq, seq);
	/* outside a transaction it is refused */
	ck_assert_int_eq(db_audit_append_commit(owner, &e, &seq, &err), DB_ERR_STATE);
	db_close(other);
	db_close(owner);
}
END_TEST

/* The audit entries of a group (db_audit_append_many_commit): one statement with the COMMIT,
 * the entries in the order given with consecutive seqs, the chain intact; with the BEGIN still
 * to send too; an entry that is refused appends none; no transaction, or too many, refused. */
static void objects_at(PGconn *c, const int64_t *seqs, size_t n, const char *const *want)
{
	for (size_t i = 0; i < n; i++) {
		char sql[96];
		snprintf(sql, sizeof(sql), "SELECT object FROM audit_log WHERE seq = %lld",
		         (long long)seqs[i]);
		PGresult *r = PQexec(c, sql);
		ck_assert_int_eq(PQntuples(r), 1);
		ck_assert_str_eq(PQgetvalue(r, 0, 0), want[i]);
		PQclear(r);
	}
}

START_TEST(audit_entries_of_a_group_in_one_statement)
{
	struct db *owner = schema_ready(), *other = connect_as(pg.owner_ci);
	PGconn *c = db_pgconn(owner), *o = db_pgconn(other);
	static const char *const objects[] = {"group/1", "group/2", "group/3"};
	struct db_audit_entry e[DB_GROUP_MAX + 1];
	const struct db_audit_entry *ep[DB_GROUP_MAX + 1];
	struct db_audit_report rep;
	struct db_err err = {0};
	int64_t seqs[DB_GROUP_MAX + 1], before;

	for (size_t i = 0; i < DB_GROUP_MAX + 1; i++) {
		e[i] = (struct db_audit_entry){"tester",       "officer", "test.group",
		                               objects[i % 3], "success", "d"};
		ep[i] = &e[i];
	}
	/* three in one statement with the COMMIT, after a statement of the transaction */
	begin_sent(owner);
	ck_assert_msg(db_audit_append_many_commit(owner, ep, 3, seqs, &err) == DB_OK, "%s",
	              err.msg);
	ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
	ck_assert_int_gt(seqs[0], 0);
	ck_assert_int_eq(seqs[1], seqs[0] + 1);
	ck_assert_int_eq(seqs[2], seqs[0] + 2);
	objects_at(o, seqs, 3, objects);
	ck_assert_int_eq(db_audit_verify(other, &rep, &err), DB_OK);
	ck_assert_int_eq(rep.finding, DB_AUDIT_INTACT);
	ck_assert_int_eq(rep.head_seq, seqs[2]);
	/* a transaction whose BEGIN has not gone out yet: the same outcome */
	ck_assert_int_eq(db_begin(owner, &err), DB_OK);
	ck_assert_msg(db_audit_append_many_commit(owner, ep, 3, seqs, &err) == DB_OK, "%s",
	              err.msg);
	ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
	ck_assert_int_eq(seqs[1], seqs[0] + 1);
	objects_at(o, seqs, 3, objects);
	/* a whole group of 32 */
	begin_sent(owner);
	ck_assert_msg(db_audit_append_many_commit(owner, ep, DB_GROUP_MAX, seqs, &err) == DB_OK,
	              "%s", err.msg);
	ck_assert_int_eq(seqs[DB_GROUP_MAX - 1], seqs[0] + DB_GROUP_MAX - 1);
	{
		const char *want[DB_GROUP_MAX];
		for (size_t i = 0; i < DB_GROUP_MAX; i++)
			want[i] = objects[i % 3];
		objects_at(o, seqs, DB_GROUP_MAX, want);
	}
	ck_assert_int_eq(db_audit_verify(other, &rep, &err), DB_OK);
	ck_assert_int_eq(rep.finding, DB_AUDIT_INTACT);
	ck_assert_int_eq(rep.head_seq, seqs[DB_GROUP_MAX - 1]);
	before = harness_pg_count(o, "SELECT count(*) FROM audit_log");
	/* one refused entry: none of them is appended, the error names it */
	e[1].outcome = "maybe";
	begin_sent(owner);
	ck_assert_int_eq(db_audit_append_many_commit(owner, ep, 3, seqs, &err), DB_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.msg, "maybe"));
	ck_assert_int_eq(seqs[0], 0);
	db_rollback(owner);
	e[1].outcome = "success";
	/* outside a transaction, and more than a group, refused */
	ck_assert_int_eq(db_audit_append_many_commit(owner, ep, 3, seqs, &err), DB_ERR_STATE);
	begin_sent(owner);
	ck_assert_int_eq(db_audit_append_many_commit(owner, ep, DB_GROUP_MAX + 1, seqs, &err),
	                 DB_ERR_INVALID);
	db_rollback(owner);
	ck_assert_int_eq(harness_pg_count(o, "SELECT count(*) FROM audit_log"), before);
	db_close(other);
	db_close(owner);
}
END_TEST

/* sql must succeed (a command or rows). */
static void sql_ok(struct db *db, const char *sql)
{
	harness_pg_exec_ok(db_pgconn(db), sql);
}

/* Each daemon's group role (migration 0013): what its code does works, the rest is refused
 * with insufficient_privilege (42501). "WHERE false" statements are checked for privileges
 * when planned, so no rows are needed. */
START_TEST(daemon_roles_hold_only_their_grants)
{
	struct db *owner = schema_ready();
	struct db *ocspd = connect_as(harness_pg_daemon_ci(&pg, db_pgconn(owner), "ocspd"));
	struct db *crld = connect_as(harness_pg_daemon_ci(&pg, db_pgconn(owner), "crld"));
	struct db *cad = connect_as(harness_pg_daemon_ci(&pg, db_pgconn(owner), "cad"));
	static const char *const no_one_but_cad[] = {
	    "SELECT count(*) FROM principals", "UPDATE principals SET disabled = true WHERE false",
	    "INSERT INTO principals (name, role) SELECT 'x', 'admin' WHERE false",
	    "SELECT count(*) FROM api_tokens",
	    "UPDATE api_tokens SET revoked_at = now() WHERE false",
	    "INSERT INTO api_tokens (principal_id) SELECT 1 WHERE false",
	    "SELECT count(*) FROM provisioning_tokens",
	    "UPDATE provisioning_tokens SET uses = 0 WHERE false", "SELECT count(*) FROM devices",
	    "INSERT INTO certificates (authority_id) SELECT 1 WHERE false",
	    "UPDATE certificates SET status = 'revoked' WHERE false",
	    "DELETE FROM certificates WHERE false",
	    "INSERT INTO certificate_sans (certificate_id) SELECT 1 WHERE false",
	    "INSERT INTO audit_log (actor) SELECT 'x' WHERE false",
	    "INSERT INTO audit_checkpoints (seq) SELECT 1 WHERE false",
	    "UPDATE authorities SET status = 'retired' WHERE false",
	    "INSERT INTO authority_settings (authority_id) SELECT 1 WHERE false",
	    "UPDATE profile_settings SET enabled = false WHERE false",
	    /* migration 0015: stored profiles */
	    "SELECT count(*) FROM profiles",
	    "UPDATE profiles SET current_version = current_version WHERE false",
	    "SELECT count(*) FROM profile_versions",
	    "INSERT INTO profile_versions (profile) SELECT 'x' WHERE false", NULL};

	/* ocspd: reads authorities, settings and certificates; writes its response copy only */
	sql_ok(ocspd, "SELECT count(*) FROM authorities");
	sql_ok(ocspd, "SELECT count(*) FROM authority_settings");
	sql_ok(ocspd, "SELECT count(*) FROM certificates");
	sql_ok(ocspd, "INSERT INTO ocsp_responses (authority_id) SELECT 1 WHERE false"
	              " ON CONFLICT (authority_id, serial, cert_id_hash) DO UPDATE SET der = "
	              "excluded.der");
	sql_ok(ocspd, "UPDATE ocsp_responses SET der = der WHERE false");
	for (size_t i = 0; no_one_but_cad[i]; i++)
		sql_fails(ocspd, no_one_but_cad[i], "42501");
	sql_fails(ocspd, "UPDATE crl_numbers SET next_number = next_number + 1 WHERE false",
	          "42501");
	sql_fails(ocspd, "SELECT crl_changes_prune(1, '1'::xid8, 0, 1)", "42501");
	sql_fails(ocspd, "SELECT count(*) FROM audit_log", "42501");

	/* crld: reads what a CRL is made of, advances CRL numbers, prunes the change log */
	sql_ok(crld, "SELECT count(*) FROM certificates");
	sql_ok(crld, "SELECT count(*) FROM crl_changes");
	sql_ok(crld, "SELECT count(*) FROM authority_settings");
	sql_ok(crld, "UPDATE crl_numbers SET next_number = next_number + 1 WHERE false"
	             " RETURNING next_number - 1");
	sql_ok(crld, "SELECT crl_changes_prune(1, '1'::xid8, 0, 1)");
	for (size_t i = 0; no_one_but_cad[i]; i++)
		sql_fails(crld, no_one_but_cad[i], "42501");
	sql_fails(crld, "INSERT INTO ocsp_responses (authority_id) SELECT 1 WHERE false", "42501");
	sql_fails(crld, "INSERT INTO crl_numbers (authority_id) SELECT 1 WHERE false", "42501");
	/* its one write to the settings: the full CRL's IDP choice where none is stored */
	sql_ok(crld, "SELECT authority_full_crl_idp_claim(0, false)");
	sql_fails(crld, "UPDATE authority_settings SET full_crl_idp = true WHERE false", "42501");
	sql_fails(ocspd, "SELECT authority_full_crl_idp_claim(0, false)", "42501");

	/* cad: all of the above that the daemons may not, and none of theirs */
	for (size_t i = 0; no_one_but_cad[i]; i++)
		if (strncmp(no_one_but_cad[i], "DELETE", 6) != 0)
			sql_ok(cad, no_one_but_cad[i]);
	sql_fails(cad, "DELETE FROM certificates WHERE false", "42501");
	sql_fails(cad, "DELETE FROM principals WHERE false", "42501");
	sql_fails(cad, "UPDATE audit_log SET actor = 'x' WHERE false", "42501");
	sql_fails(cad, "INSERT INTO ocsp_responses (authority_id) SELECT 1 WHERE false", "42501");
	sql_fails(cad, "UPDATE crl_numbers SET next_number = 1 WHERE false", "42501");
	sql_fails(cad, "SELECT crl_changes_prune(1, '1'::xid8, 0, 1)", "42501");
	sql_fails(cad, "UPDATE profile_versions SET version = version WHERE false", "42501");
	sql_fails(cad, "DELETE FROM profile_versions WHERE false", "42501");
	sql_fails(cad, "SELECT authority_full_crl_idp_claim(0, false)", "42501");

	/* the group roles cannot log in themselves */
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner),
	                                  "SELECT count(*) FROM pg_roles WHERE rolname IN "
	                                  "('hsmca_cad', 'hsmca_ocspd', 'hsmca_crld') AND NOT "
	                                  "rolcanlogin"),
	                 3);
	db_close(cad);
	db_close(crld);
	db_close(ocspd);
	db_close(owner);
}
END_TEST

/* The migration that lower-cases device identities (db/migrations/NNNN_device_identities.sql,
 * whatever its number): its SQL, as hsmca db migrate runs it. */
static const char *device_identities_sql(void)
{
	for (size_t i = 0; i < db_migrations_count; i++)
		if (!strcmp(db_migrations[i].name, "device_identities"))
			return db_migrations[i].sql;
	ck_abort_msg("no migration named device_identities");
	return NULL;
}

/* Devices stored before identities were lower-cased: the migration lower-cases them and then
 * refuses upper-case identities; two devices whose identities differ only in case make it
 * refuse, naming both, and change nothing. The migration's SQL runs as hsmca db migrate runs
 * it (one transaction, as the owner), on rows made as they were before it (its constraint
 * dropped first). */
START_TEST(device_identities_are_lower_cased_and_clashes_refused)
{
	struct db *db = schema_ready();
	PGconn *c = db_pgconn(db);
	PGresult *r;
	char *msg;

	harness_pg_exec_ok(c, "ALTER TABLE devices DROP CONSTRAINT devices_identity_lower_case");
	harness_pg_exec_ok(c,
	                   "INSERT INTO devices (identity, profile) VALUES ('GW-0042', 'device'),"
	                   " ('sensor-7', 'device'), ('Mixed.Example.COM', 'device'),"
	                   " ('ÉCLAIR-1', 'device')");
	/* a clash: GW-0042 and gw-0042 would be one device */
	harness_pg_exec_ok(c,
	                   "INSERT INTO devices (identity, profile) VALUES ('gw-0042', 'device')");
	harness_pg_exec_ok(c, "BEGIN");
	r = PQexec(c, device_identities_sql());
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	msg = PQresultErrorMessage(r);
	ck_assert_msg(strstr(msg, "device identities that differ only in case: gw-0042") &&
	                  strstr(msg, "=GW-0042") && strstr(msg, "=gw-0042"),
	              "%s", msg);
	ck_assert_msg(strstr(PQresultErrorField(r, PG_DIAG_MESSAGE_HINT), "nothing was changed"),
	              "%s", PQresultErrorField(r, PG_DIAG_MESSAGE_HINT));
	ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23505");
	PQclear(r);
	harness_pg_exec_ok(c, "ROLLBACK");
	ck_assert_int_eq(harness_pg_count(c, "SELECT count(*) FROM devices WHERE identity IN "
	                                     "('GW-0042', 'gw-0042', 'Mixed.Example.COM')"),
	                 3);

	/* Resolved by renaming one: the migration lower-cases the rest (lower(), as the data
	 * layer stores them) and keeps upper case out from then on. */
	harness_pg_exec_ok(
	    c, "UPDATE devices SET identity = 'gw-0042-old' WHERE identity = 'gw-0042'");
	harness_pg_exec_ok(c, "BEGIN");
	r = PQexec(c, device_identities_sql());
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
	harness_pg_exec_ok(c, "COMMIT");
	ck_assert_int_eq(harness_pg_count(c, "SELECT count(*) FROM devices WHERE identity IN "
	                                     "('gw-0042', 'gw-0042-old', 'sensor-7', "
	                                     "'mixed.example.com', lower('ÉCLAIR-1'))"),
	                 5);
	ck_assert_int_eq(harness_pg_count(c, "SELECT count(*) FROM devices"), 5);
	sql_fails(db, "INSERT INTO devices (identity, profile) VALUES ('GW-0099', 'device')",
	          "23514");
	sql_fails(db, "UPDATE devices SET identity = 'SENSOR-7' WHERE identity = 'sensor-7'",
	          "23514");
	harness_pg_exec_ok(c,
	                   "INSERT INTO devices (identity, profile) VALUES ('gw-0099', 'device')");
	db_close(db);
}
END_TEST

/* n items of a group test with fresh leaf keys: reservations of q, stores of serials with
 * copies of audit (new_group fills in the rest). */
static void group_items(const struct ca *ca, int n, EVP_PKEY **leaf, uint8_t (*serial)[20],
                        struct db_cert_request *q, struct db_cert_reservation *rv,
                        struct db_cert_reservation **rvp, struct db_cert_store *st,
                        const struct db_audit_entry *audit)
{
	for (int i = 0; i < n; i++) {
		leaf[i] = ec_key();
		rv[i] = (struct db_cert_reservation){.req = &q[i]};
		rvp[i] = &rv[i];
		st[i] = (struct db_cert_store){
		    .authority_id = ca->id, .serial = serial[i], .serial_len = 20, .audit = *audit};
	}
}

/* What a group test with a certificate signed by another key leaves to free. */
static void group_free(int n, uint8_t **der, EVP_PKEY **leaf, uint8_t *wrong_key, EVP_PKEY *other,
                       struct ca *ca, struct db *db, struct db *owner)
{
	for (int i = 0; i < n; i++) {
		OPENSSL_free(der[i]);
		EVP_PKEY_free(leaf[i]);
	}
	OPENSSL_free(wrong_key);
	EVP_PKEY_free(other);
	ca_free(ca);
	db_close(db);
	db_close(owner);
}

/* An ACME account and one pending order of it (a.example.com), as the ACME data layer makes
 * them: the order's id. */
static int64_t acme_order_made(struct db *db)
{
	static const struct db_audit_entry made = {
	    "acme-account", "acme-account", "acme.order.create", "", "success", ""};
	struct db_acme_account a = {.jwk = (char *)"{\"kty\":\"OKP\"}", .contact = (char *)"[]"};
	struct db_acme_ident ident = {.type = "dns", .value = "a.example.com"};
	struct db_acme_order_opts opts = {0};
	struct db_acme_order o;
	struct db_err err = {0};
	char tokens[3][44];
	int64_t id;

	snprintf(a.thumbprint, sizeof(a.thumbprint), "%s",
	         "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	ck_assert_msg(db_acme_account_create(db, &a, "", &made, &err) == DB_OK, "%s", err.msg);
	for (int i = 0; i < 3; i++)
		snprintf(tokens[i], sizeof(tokens[i]), "%042d%c", i, 'a' + i);
	ck_assert_msg(db_acme_order_create(db, a.id, &ident, 1,
	                                   "[{\"type\":\"dns\",\"value\":\"a.example.com\"}]",
	                                   "web", 3600, 3600, (const char(*)[44])tokens, &opts,
	                                   &made, &o, &err) == DB_OK,
	              "%s", err.msg);
	id = o.id;
	db_acme_order_clear(&o);
	return id;
}

/* A change committed with a reservation (db_cert_reserve_with; ACME's order moving to
 * processing): the serial is reserved only when the change is made, both in one transaction;
 * a change that finds nothing to change refuses, and nothing is reserved. */
START_TEST(a_change_with_the_reservation_commits_only_with_it)
{
	struct db *owner = schema_ready(), *db = connect_as(pg.app_ci);
	EVP_PKEY *leaf = ec_key();
	uint8_t serial[20];
	struct db_cert_request q;
	struct db_err err = {0};
	struct db_audit_entry e = {
	    "acme-account", "acme-account", "acme.order.finalize", "", "success", ""};
	struct db_with *w;
	char sql[512], ready[128];
	struct ca ca;
	int64_t id = 0, made_id = 0, order;

	ca_make(db, "issuing", &ca);
	order = acme_order_made(db);
	snprintf(ready, sizeof(ready), "UPDATE acme_orders SET status = 'ready' WHERE id = %lld",
	         (long long)order);
	ck_assert_ptr_nonnull(w = db_acme_order_processing_with_reserve(order, &e, &err));
	/* the order still pending, then processing: refused, nothing reserved or appended */
	for (int k = 0; k < 3; k++) {
		if (k == 1) {
			harness_pg_exec_ok(db_pgconn(owner), ready);
			group_serial(700, serial);
			q = request(&ca, serial, 20, leaf);
			ck_assert_msg(db_cert_reserve_with(db, &q, &id, w, &err) == DB_OK, "%s",
			              err.msg);
			ck_assert_msg(db_with_outcome(w, &err) == DB_OK, "%s", err.msg);
			made_id = id;
			continue;
		}
		group_serial(710 + k, serial);
		q = request(&ca, serial, 20, leaf);
		ck_assert_int_eq(db_cert_reserve_with(db, &q, &id, w, &err), DB_ERR_STATE);
		ck_assert_ptr_nonnull(strstr(err.msg, "not ready"));
		ck_assert_int_eq(db_with_outcome(w, &err), DB_ERR_STATE);
		ck_assert_int_eq(id, 0);
		ck_assert_int_eq(
		    harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM certificates"), k / 2);
	}
	/* made: the order processing and the serial reserved in one transaction, one entry */
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM acme_orders o JOIN certificates c ON c.id = %lld"
	         " WHERE o.id = %lld AND o.status = 'processing' AND c.status = 'reserved'"
	         " AND o.xmin::text = c.xmin::text",
	         (long long)made_id, (long long)order);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), 1);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM audit_log WHERE"
	                                                    " action = 'acme.order.finalize'"),
	                 1);
	verify_finds(db, DB_AUDIT_INTACT, 0);
	db_with_free(w);
	EVP_PKEY_free(leaf);
	ca_free(&ca);
	db_close(db);
	db_close(owner);
}
END_TEST

/* A change committed with a stored certificate (db_cert_store_with; ACME's order moving to valid):
 * it commits only with the certificate, in the same transaction, its audit entry right after the
 * certificate's; a certificate that does not store takes it with it; when it finds nothing to
 * change, the certificate is still stored and the caller is told. */
START_TEST(a_change_with_the_store_commits_only_with_it)
{
	struct db *owner = schema_ready(), *db = connect_as(pg.app_ci);
	enum { N = 2 };
	EVP_PKEY *leaf[N], *other = ec_key();
	uint8_t serial[N][20], *der[N] = {0}, *wrong_key;
	size_t dl[N], wl;
	struct db_cert_request q[N];
	struct db_cert_reservation rv[N], *rvp[N];
	struct db_cert_store st[N];
	struct db_err err = {0};
	struct db_audit_entry e = {
	    "acme-account", "acme-account", "acme.order.valid", "", "success", ""};
	struct db_with *w;
	char sql[512], hex[41];
	long long orders_valid = 0;
	struct ca ca;
	int64_t order;

	ca_make(db, "issuing", &ca);
	group_items(&ca, N, leaf, serial, q, rv, rvp, st,
	            &(struct db_audit_entry){"acme-account", "acme-account",
	                                     "acme.certificate.issue", "x", "success", ""});
	new_group(&ca, 300, N, leaf, serial, q, der, dl, st);
	db_cert_reserve_many(db, rvp, N);
	for (int i = 0; i < N; i++)
		ck_assert_msg(rv[i].rc == DB_OK, "reservation %d: %s", i, rv[i].err.msg);
	order = acme_order_made(db);
	snprintf(sql, sizeof(sql), "UPDATE acme_orders SET status = 'processing' WHERE id = %lld",
	         (long long)order);
	harness_pg_exec_ok(db_pgconn(owner), sql);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM acme_orders WHERE id = %lld AND status = 'valid'",
	         (long long)order);
	/* a bad audit entry: refused before anything is sent */
	e.outcome = "maybe";
	ck_assert_ptr_null(db_acme_order_valid_with_store(order, &e, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "outcome"));
	e.outcome = "success";
	ck_assert_ptr_nonnull(w = db_acme_order_valid_with_store(order, &e, &err));
	ck_assert_int_eq(db_with_outcome(w, &err), DB_ERR_STATE); /* nothing done yet */
	/* the certificate does not store (signed with another key): the order does not move */
	wrong_key = leaf_der(&ca, other, serial[0], 20, &wl);
	st[0].der = wrong_key;
	st[0].der_len = wl;
	db_cert_store_with(db, &st[0], w);
	ck_assert_int_eq(st[0].rc, DB_ERR_INVALID);
	ck_assert_int_eq(db_with_outcome(w, &err), DB_ERR_STATE);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), orders_valid);
	ck_assert_int_eq(status_of(db, &ca, serial[0], 20), DB_CERT_RESERVED);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM audit_log WHERE"
	                                                    " action = 'acme.order.valid'"),
	                 0);
	/* it stores: the order is valid with its serial, in the same transaction, its entry
	 * the certificate's + 1 */
	st[0].der = der[0];
	st[0].der_len = dl[0];
	db_cert_store_with(db, &st[0], w);
	ck_assert_msg(st[0].rc == DB_OK, "%s", st[0].err.msg);
	ck_assert_msg(db_with_outcome(w, &err) == DB_OK, "%s", err.msg);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), ++orders_valid);
	db_serial_to_hex(serial[0], 20, hex);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM acme_orders o JOIN certificates c ON c.id = %lld"
	         " WHERE o.id = %lld AND o.cert_serial = '%s' AND o.xmin::text = c.xmin::text",
	         (long long)rv[0].id, (long long)order, hex);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), 1);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM audit_log WHERE seq = %lld AND action = 'acme.order.valid'"
	         " AND object = 'order/%lld'",
	         (long long)st[0].audit_seq + 1, (long long)order);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), 1);
	/* the order is valid already: another certificate still stores, the caller is told */
	db_cert_store_with(db, &st[1], w);
	ck_assert_msg(st[1].rc == DB_OK, "%s", st[1].err.msg);
	ck_assert_int_eq(db_with_outcome(w, &err), DB_ERR_STATE);
	ck_assert_ptr_nonnull(strstr(err.msg, "not processing"));
	ck_assert_int_eq(status_of(db, &ca, serial[1], 20), DB_CERT_ISSUED);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM audit_log WHERE"
	                                                    " action = 'acme.order.valid'"),
	                 1);
	verify_finds(db, DB_AUDIT_INTACT, 0);
	db_with_free(w);
	group_free(N, der, leaf, wrong_key, other, &ca, db, owner);
}
END_TEST

/* One statement stores a whole group (db_cert_store_many): each bad item is refused alone,
 * with its own error, and changes nothing; the others land in one transaction, their audit
 * entries in the items' order and each item told its own entry's seq; the chain is intact. */
START_TEST(a_group_store_refuses_bad_items_alone)
{
	struct db *owner = schema_ready(), *db = connect_as(pg.app_ci);
	enum { N = 7 };
	EVP_PKEY *leaf[N], *other = ec_key();
	uint8_t serial[N][20], *der[N] = {0}, *wrong_key;
	size_t dl[N], wl;
	struct db_cert_request q[N];
	struct db_cert_reservation rv[N], *rvp[N];
	struct db_cert_store st[N], *stp[N];
	struct db_err err = {0};
	char object[N][16], sql[256];
	struct ca ca;

	ca_make(db, "issuing", &ca);
	group_items(&ca, N, leaf, serial, q, rv, rvp, st,
	            &(struct db_audit_entry){"officer-1", "officer", "issue", "", "success", ""});
	for (int i = 0; i < N; i++) {
		stp[i] = &st[i];
		snprintf(object[i], sizeof(object[i]), "item-%d", i);
		st[i].audit.object = object[i];
	}
	new_group(&ca, 0, N, leaf, serial, q, der, dl, st);
	/* item 5 is never reserved; the others are */
	db_cert_reserve_many(db, rvp, 5);
	db_cert_reserve_many(db, rvp + 6, 1);
	for (int i = 0; i < N; i++)
		ck_assert_msg(i == 5 || rv[i].rc == DB_OK, "reservation %d: %s", i, rv[i].err.msg);
	/* 1: signed with another key; 3: marked failed meanwhile; 6: its audit entry is bad */
	wrong_key = leaf_der(&ca, other, serial[1], 20, &wl);
	st[1].der = wrong_key;
	st[1].der_len = wl;
	ck_assert_int_eq(db_cert_mark_failed(db, ca.id, serial[3], 20, &err), DB_OK);
	st[6].audit.outcome = "maybe";
	db_cert_store_many(db, stp, N);
	ck_assert_int_eq(st[1].rc, DB_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(st[1].err.msg, "public key"));
	ck_assert_int_eq(st[3].rc, DB_ERR_STATE);
	ck_assert_int_eq(st[5].rc, DB_ERR_NOT_FOUND);
	ck_assert_int_eq(st[6].rc, DB_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(st[6].err.msg, "outcome"));
	for (int i = 1; i < N; i += 2)
		ck_assert_int_eq(st[i].audit_seq, 0);
	ck_assert_int_eq(status_of(db, &ca, serial[1], 20), DB_CERT_RESERVED);
	ck_assert_int_eq(status_of(db, &ca, serial[3], 20), DB_CERT_FAILED);
	ck_assert_int_eq(status_of(db, &ca, serial[6], 20), DB_CERT_RESERVED);
	/* 0, 2, 4 stored, their entries consecutive in the items' order, each its own */
	for (int i = 0; i < N; i += 2) {
		if (i == 6)
			break;
		ck_assert_msg(st[i].rc == DB_OK, "store %d: %s", i, st[i].err.msg);
		ck_assert_int_eq(status_of(db, &ca, serial[i], 20), DB_CERT_ISSUED);
		ck_assert_int_eq(st[i].audit_seq, st[0].audit_seq + i / 2);
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM audit_log WHERE seq = %lld AND object = '%s'",
		         (long long)st[i].audit_seq, object[i]);
		ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), 1);
	}
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM audit_log"), 3);
	issued_in_one_transaction(owner, db, rv[0].id);
	/* the refused ones, put right, store afterwards */
	st[1].der = der[1];
	st[1].der_len = dl[1];
	st[6].audit.outcome = "success";
	db_cert_store_many(db, stp, N);
	ck_assert_msg(st[1].rc == DB_OK, "%s", st[1].err.msg);
	ck_assert_msg(st[6].rc == DB_OK, "%s", st[6].err.msg);
	ck_assert_int_eq(st[6].audit_seq, st[1].audit_seq + 1);
	ck_assert_int_eq(st[0].rc, DB_ERR_STATE); /* stored already */
	verify_finds(db, DB_AUDIT_INTACT, 0);
	group_free(N, der, leaf, wrong_key, other, &ca, db, owner);
}
END_TEST

/* One statement reserves a whole group (db_cert_reserve_many): each bad item is refused alone,
 * with its own error, and changes nothing; the others land in one transaction, each with its
 * own id and its own SANs. */
START_TEST(a_group_reservation_refuses_bad_items_alone)
{
	struct db *owner = schema_ready(), *db = connect_as(pg.app_ci);
	enum { N = 7 };
	EVP_PKEY *leaf[N];
	uint8_t serial[N][20], good[32], revoked[32];
	struct db_cert_request q[N];
	struct db_cert_reservation rv[N], *rvp[N];
	struct db_san three[3] = {{DB_SAN_DNS, "a.example.com", 13},
	                          {DB_SAN_DNS, "b.example.com", 13},
	                          {DB_SAN_EMAIL, "c@example.com", 13}};
	char sql[512];
	struct ca ca;

	ca_make(db, "issuing", &ca);
	memset(good, 0xaa, sizeof(good));
	memset(revoked, 0xbb, sizeof(revoked));
	harness_pg_exec_ok(db_pgconn(owner),
	                   "INSERT INTO principals (name, role) VALUES ('officer-1', 'officer')");
	harness_pg_exec_ok(
	    db_pgconn(owner),
	    "INSERT INTO api_tokens (principal_id, token_sha256, name, expires_at, revoked_at)"
	    " SELECT id, decode(repeat('aa', 32), 'hex'), 'good', now() + interval '1 day', NULL"
	    " FROM principals UNION ALL SELECT id, decode(repeat('bb', 32), 'hex'), 'revoked',"
	    " now() + interval '1 day', now() FROM principals");
	harness_pg_exec_ok(db_pgconn(owner),
	                   "INSERT INTO profile_settings (profile, enabled, updated_by)"
	                   " VALUES ('switched-off', false, 'admin-1')");
	for (int i = 0; i < N; i++) {
		leaf[i] = ec_key();
		group_serial(300 + i, serial[i]);
		q[i] = request(&ca, serial[i], 20, leaf[i]);
		rv[i] = (struct db_cert_reservation){.req = &q[i]};
		rvp[i] = &rv[i];
	}
	/* 0: a good token; 1: its serial taken before; 2: a disabled profile; 3: no SANs;
	 * 4: a revoked token; 5: refused by its checks (no validity); 6: three SANs */
	q[0].token_sha256 = good;
	q[0].token_role = "officer";
	db_cert_reserve_many(db, rvp + 1, 1);
	ck_assert_msg(rv[1].rc == DB_OK, "%s", rv[1].err.msg);
	q[2].profile = "switched-off";
	q[3].n_sans = 0;
	q[4].token_sha256 = revoked;
	q[4].token_role = "officer";
	q[5].not_after = q[5].not_before;
	q[6].sans = three;
	q[6].n_sans = 3;
	db_cert_reserve_many(db, rvp, N);
	ck_assert_int_eq(rv[1].rc, DB_ERR_CONFLICT);
	ck_assert_ptr_nonnull(strstr(rv[1].err.msg, "exists already"));
	ck_assert_int_eq(rv[2].rc, DB_ERR_STATE);
	ck_assert_ptr_nonnull(strstr(rv[2].err.msg, "switched-off"));
	ck_assert_int_eq(rv[4].rc, DB_ERR_STATE);
	ck_assert_ptr_nonnull(strstr(rv[4].err.msg, "API token"));
	ck_assert_int_eq(rv[5].rc, DB_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(rv[5].err.msg, "validity"));
	for (int i = 1; i < 6; i++)
		ck_assert_msg(i == 3 || rv[i].id == 0, "item %d: id %lld", i, (long long)rv[i].id);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM certificates"),
	                 4);
	/* 0, 3, 6 reserved by one transaction, in the items' order, each with its SANs */
	for (int i = 0; i < N; i += 3) {
		ck_assert_msg(rv[i].rc == DB_OK, "reservation %d: %s", i, rv[i].err.msg);
		ck_assert_int_eq(status_of(db, &ca, serial[i], 20), DB_CERT_RESERVED);
		char hex[41];
		for (int b = 0; b < 20; b++)
			snprintf(hex + 2 * b, 3, "%02x", serial[i][b]);
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM certificates WHERE id = %lld AND"
		         " serial = decode('%s', 'hex')",
		         (long long)rv[i].id, hex);
		ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), 1);
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM certificate_sans WHERE certificate_id = %lld",
		         (long long)rv[i].id);
		ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), (long long)q[i].n_sans);
	}
	ck_assert_int_lt(rv[0].id, rv[3].id);
	ck_assert_int_lt(rv[3].id, rv[6].id);
	snprintf(
	    sql, sizeof(sql),
	    "SELECT count(DISTINCT xmin::text) FROM certificates WHERE id IN (%lld, %lld, %lld)",
	    (long long)rv[0].id, (long long)rv[3].id, (long long)rv[6].id);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), 1);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM certificate_sans WHERE certificate_id = %lld AND"
	         " ordinal = 2 AND kind = 'email' AND value = 'c@example.com'",
	         (long long)rv[6].id);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), sql), 1);
	/* the refused ones, put right, reserve afterwards */
	group_serial(400, serial[1]);
	harness_pg_exec_ok(
	    db_pgconn(owner),
	    "UPDATE profile_settings SET enabled = true WHERE profile = 'switched-off'");
	q[4].token_sha256 = good;
	q[5].not_after = q[5].not_before + 60;
	db_cert_reserve_many(db, rvp + 1, 2);
	db_cert_reserve_many(db, rvp + 4, 2);
	for (int i = 1; i < 6; i++)
		ck_assert_msg(i == 3 || rv[i].rc == DB_OK, "reservation %d: %s", i, rv[i].err.msg);
	ck_assert_int_eq(harness_pg_count(db_pgconn(owner), "SELECT count(*) FROM certificates"),
	                 8);
	for (int i = 0; i < N; i++)
		EVP_PKEY_free(leaf[i]);
	ca_free(&ca);
	db_close(db);
	db_close(owner);
}
END_TEST

/* The group statements (reservations and stores) are planned once per connection, not again
 * for each execution: every execution after the first uses the generic plan. */
START_TEST(group_statements_use_their_generic_plan)
{
	struct db *owner = schema_ready(), *db = connect_as(pg.app_ci);
	enum { N = 2, ROUNDS = 8 };
	EVP_PKEY *leaf[N];
	uint8_t serial[N][20], *der[N] = {0};
	size_t dl[N];
	struct db_cert_request q[N];
	struct db_cert_reservation rv[N], *rvp[N];
	struct db_cert_store st[N], *stp[N];
	struct ca ca;

	ca_make(db, "issuing", &ca);
	for (int i = 0; i < N; i++) {
		leaf[i] = ec_key();
		rv[i] = (struct db_cert_reservation){.req = &q[i]};
		rvp[i] = &rv[i];
		stp[i] = &st[i];
		st[i] = (struct db_cert_store){
		    .authority_id = ca.id,
		    .serial = serial[i],
		    .serial_len = 20,
		    .audit = {"officer-1", "officer", "issue", "x", "success", ""}};
	}
	for (int r = 0; r < ROUNDS; r++) {
		new_group(&ca, 500 + N * r, N, leaf, serial, q, der, dl, st);
		db_cert_reserve_many(db, rvp, N);
		db_cert_store_many(db, stp, N);
		for (int i = 0; i < N; i++) {
			ck_assert_msg(rv[i].rc == DB_OK, "reservation %d: %s", i, rv[i].err.msg);
			ck_assert_msg(st[i].rc == DB_OK, "store %d: %s", i, st[i].err.msg);
		}
	}
	/* pg_prepared_statements is the session's own: ask on the data layer's connection */
	ck_assert_int_eq(
	    harness_pg_count(db_pgconn(db),
	                     "SELECT count(*) FROM pg_prepared_statements"
	                     " WHERE statement LIKE 'WITH v AS (SELECT * FROM unnest(%'"
	                     " AND custom_plans = 0 AND generic_plans >= 8"),
	    2);
	verify_finds(db, DB_AUDIT_INTACT, 0);
	for (int i = 0; i < N; i++) {
		OPENSSL_free(der[i]);
		EVP_PKEY_free(leaf[i]);
	}
	ca_free(&ca);
	db_close(db);
	db_close(owner);
}
END_TEST

/* A reservation alone (a group of one: ACME's finalize, the CLI) is planned once per
 * connection too, with an API token and without: one statement text for both was planned again
 * at every execution without a token (its custom plan drops the token's clause and so always
 * looked cheaper than the generic plan). */
START_TEST(lone_reservations_use_their_generic_plan)
{
	struct db *owner = schema_ready(), *db = connect_as(pg.app_ci);
	enum { ROUNDS = 8 };
	static const uint8_t token[32] = {1};
	EVP_PKEY *leaf = ec_key();
	uint8_t serial[20];
	struct db_cert_request q;
	struct db_err err = {0};
	struct ca ca;
	int64_t id;

	ca_make(db, "issuing", &ca);
	for (int r = 0; r < 2 * ROUNDS; r++) {
		group_serial(900 + r, serial);
		q = request(&ca, serial, 20, leaf);
		if (r >= ROUNDS) { /* a token nobody holds: refused, by the statement */
			q.token_sha256 = token;
			q.token_role = "officer";
			ck_assert_int_eq(db_cert_reserve(db, &q, &id, &err), DB_ERR_STATE);
		} else {
			ck_assert_msg(db_cert_reserve(db, &q, &id, &err) == DB_OK, "%s", err.msg);
		}
		/* PostgreSQL plans the first five executions for their values, then keeps the
		 * generic plan when it is not dearer than those were */
		if (r == ROUNDS - 1 || r == 2 * ROUNDS - 1)
			ck_assert_int_eq(
			    harness_pg_count(
			        db_pgconn(db),
			        "SELECT count(*) FROM pg_prepared_statements"
			        " WHERE statement LIKE 'WITH c AS (INSERT INTO certificates%'"
			        " AND custom_plans <= 5 AND generic_plans >= 3"),
			    r / ROUNDS + 1);
	}
	EVP_PKEY_free(leaf);
	ca_free(&ca);
	db_close(db);
	db_close(owner);
}
END_TEST

static TCase *add(Suite *s, const char *name, const TTest *t, int cluster)
{
	TCase *tc = tcase_create(name);

	if (cluster)
		tcase_add_unchecked_fixture(tc, cluster_start, cluster_stop);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("db");
	SRunner *sr;
	int failed;

	add(s, "migrate", migrate_applies_every_migration_then_nothing, 1);
	add(s, "exec-commit", statement_and_commit_in_one_round_trip, 1);
	add(s, "audit-group", audit_entries_of_a_group_in_one_statement, 1);
	add(s, "migrate-newer", migrate_refuses_a_newer_schema, 1);
	add(s, "migrate-diverged", migrate_refuses_a_diverged_schema, 1);
	add(s, "cli", cli_db_migrate_prints_what_it_applied, 1);
	add(s, "serial-unique", serial_is_unique_per_issuer_by_constraint, 1);
	add(s, "issue", reserve_then_issue_stores_the_certificate, 1);
	add(s, "issue-match", issued_certificate_must_match_its_reservation, 1);
	add(s, "failed", failed_signing_is_recorded_and_cannot_be_revoked, 1);
	add(s, "revoke", revoke_hold_release_report_whether_the_row_changed, 1);
	add(s, "revoke-audit-tx", revocation_and_its_audit_entry_commit_together, 1);
	add(s, "list", list_filters_and_pages, 1);
	add(s, "metachars", sql_metacharacters_are_stored_verbatim, 1);
	add(s, "nul", nul_and_invalid_utf8_are_refused_cleanly, 1);
	/* The grants of every role, on one cluster (a cluster per case costs seconds). */
	tcase_add_test(add(s, "audit-grants", app_role_cannot_update_or_delete_audit_rows, 1),
	               daemon_roles_hold_only_their_grants);
	add(s, "groups", reservations_and_stores_go_in_groups, 1);
	add(s, "audit-intact", audit_verify_passes_an_intact_chain, 1);
	add(s, "audit-trigger", audit_trigger_hashes_as_the_data_layer_does, 1);
	add(s, "audit-modified", audit_verify_names_a_modified_entry, 1);
	add(s, "audit-deleted", audit_verify_names_a_deleted_entry, 1);
	add(s, "audit-renumbered", audit_verify_names_a_deleted_entry_after_renumbering, 1);
	add(s, "audit-inserted", audit_verify_names_an_inserted_entry, 1);
	add(s, "audit-inserted-bogus", audit_verify_names_an_inserted_entry_with_a_bogus_hash, 1);
	add(s, "audit-checkpoint", audit_checkpoint_catches_a_truncated_tail, 1);
	add(s, "audit-concurrent", concurrent_appenders_keep_one_chain, 1);
	add(s, "notify", revocation_is_announced_to_listeners, 1);
	add(s, "reconnect", connection_recovers_after_a_server_restart, 1);
	add(s, "settings", settings_are_stored_and_checked_by_the_schema, 1);
	add(s, "device-identities", device_identities_are_lower_cased_and_clashes_refused, 1);
	add(s, "serial-hex", serial_hex_round_trips, 0);
	add(s, "groups-mixed", a_group_store_refuses_bad_items_alone, 1);
	add(s, "with-store", a_change_with_the_store_commits_only_with_it, 1);
	add(s, "with-reserve", a_change_with_the_reservation_commits_only_with_it, 1);
	add(s, "groups-reserve-mixed", a_group_reservation_refuses_bad_items_alone, 1);
	add(s, "groups-generic-plan", group_statements_use_their_generic_plan, 1);
	add(s, "lone-generic-plan", lone_reservations_use_their_generic_plan, 1);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
