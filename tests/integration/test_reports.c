/*
 * The dashboard, the reports and the backup runs end to end (docs/reports.md): a private
 * PostgreSQL cluster, a throwaway keyd and hsmca-cad over HTTPS, with certificates really
 * issued, revoked and held through the API, some of them moved in time in the database (as
 * its owner) so that every count has one exact expected value; CSV parsed back; every role on
 * every endpoint; a real `hsmca backup` listed; and the database grants of migration
 * 0016_reports (what each role may do to the new tables, and what it may not).
 */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "db.h"
#include "harness.h"
#include "keyd_client.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"

static struct harness h;
static struct harness_pg pg;
static const char *cad_ci, *crld_ci;
static char dir[256], base_url[128];
static pid_t cad_pid;
static OSSL_PROVIDER *prov_keyd, *prov_default;
static EVP_PKEY *opca_key;
static X509 *opca;

static const char *const roles[] = {"ca-admin", "admin", "officer", "auditor", "operator", "ra"};
#define NROLES 6

#define dir_file(name) harness_pathf(dir, "%s", name)

/* ---- HTTP ---- */

static char last_type[128]; /* the last reply's Content-Type */

static const struct harness_site site = {.base_url = base_url, .dir = dir};

/* who: a role (its client certificate) or "token:SECRET". The status (0: no answer); *text
 * (may be NULL) the body, malloc'd; last_type its Content-Type. */
static long get_text(const char *who, const char *path, char **text)
{
	struct harness_reply r;
	long status = harness_http(
	    &site, &(struct harness_req){.who = who, .method = "GET", .path = path}, &r);

	harness_reply_header(&r, "Content-Type", 0, last_type, sizeof(last_type));
	if (text) {
		*text = r.body ? r.body : strdup("");
		r.body = NULL;
	}
	harness_reply_clear(&r);
	return status;
}

/* A JSON call; method POST sends body. Returns the status, *out the JSON (may be NULL). */
static long api(const char *who, const char *method, const char *path, const char *body,
                json_t **out)
{
	return harness_api(&site, who, method, path, body, out);
}

/* GET path as who, 200 and JSON asserted. */
static json_t *get_json(const char *who, const char *path)
{
	char *text = NULL;
	long st = get_text(who, path, &text);
	json_t *o = json_loads(text, 0, NULL);

	ck_assert_msg(st == 200 && o, "GET %s as %s: %ld %s", path, who, st, text);
	ck_assert_str_eq(last_type, "application/json");
	free(text);
	return o;
}

static long long jint(json_t *o, const char *path)
{
	/* path: "a.b.c" through objects */
	char copy[128], *save = NULL;
	json_t *v = o;

	snprintf(copy, sizeof(copy), "%s", path);
	for (char *k = strtok_r(copy, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
		v = json_object_get(v, k);
	ck_assert_msg(json_is_integer(v), "%s is not a number", path);
	return (long long)json_integer_value(v);
}

static const char *jstr(json_t *o, const char *k)
{
	return harness_jstr(o, k);
}

/* ---- CSV, read back strictly (RFC 4180) ---- */

#define CSV_MAX_ROWS 64
#define CSV_MAX_COLS 12
struct csv_table {
	int rows, cols;
	char cell[CSV_MAX_ROWS][CSV_MAX_COLS][256];
};

/* Parse text into t; every row must have as many fields as the header. 0, or -1. */
static int csv_parse(const char *s, struct csv_table *t)
{
	int row = 0, col = 0;

	memset(t, 0, sizeof(*t));
	while (*s) {
		char *out = row < CSV_MAX_ROWS && col < CSV_MAX_COLS ? t->cell[row][col] : NULL;
		size_t k = 0;
		if (!out)
			return -1;
		if (*s == '"') {
			for (s++;; s++) {
				if (!*s)
					return -1;
				if (*s == '"') {
					if (s[1] != '"')
						break;
					s++;
				}
				if (k < 255)
					out[k++] = *s;
			}
			s++;
		} else {
			for (; *s && *s != ',' && *s != '\r' && *s != '\n'; s++) {
				if (*s == '"')
					return -1;
				if (k < 255)
					out[k++] = *s;
			}
		}
		out[k] = '\0';
		if (*s == ',') {
			s++;
			col++;
		} else if (s[0] == '\r' && s[1] == '\n') {
			s += 2;
			if (row == 0)
				t->cols = col + 1;
			else if (col + 1 != t->cols)
				return -1;
			row++;
			col = 0;
		} else {
			return -1; /* a bare LF or text after a quoted field */
		}
	}
	t->rows = row;
	return col == 0 ? 0 : -1;
}

/* The row whose column c holds v (from row 1), or -1. */
static int csv_find(const struct csv_table *t, int c, const char *v)
{
	for (int r = 1; r < t->rows; r++)
		if (!strcmp(t->cell[r][c], v))
			return r;
	return -1;
}

/* ---- the database, as its owner or as a daemon's role ---- */

static PGconn *conn(const char *ci)
{
	return harness_pg_connect(ci);
}

static void sql_ok(const char *sql)
{
	harness_pg_exec_on(pg.owner_ci, sql);
}

static long long count(const char *sql)
{
	return harness_pg_count_on(pg.owner_ci, sql);
}

/* sql as ci fails with "permission denied". */
static void refused(const char *ci, const char *sql)
{
	PGconn *c = conn(ci);
	PGresult *r = PQexec(c, sql);

	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR &&
	                  strstr(PQresultErrorMessage(r), "permission denied"),
	              "%s: not refused: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

/* ---- certificates and the fixture ---- */

static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                       const char *san)
{
	return harness_test_cert(cn, pub, issuer, signer, ca, san, NULL);
}

static void client_cert(const char *name)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	harness_write_credential(dir, name, make_cert(name, k, opca, opca_key, 0, NULL), k);
}

static char *make_csr(const char *cn, const char *org, const char *san)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char subject[256], *out;

	if (org)
		snprintf(subject, sizeof(subject), "/CN=%s/O=%s", cn, org);
	else
		snprintf(subject, sizeof(subject), "/CN=%s", cn);
	out = harness_make_csr(k, subject, san);
	EVP_PKEY_free(k);
	return out;
}

/* Issue as the officer (outside a test: harness_die on failure); the serial into serial. */
static void issue(const char *profile, const char *cn, const char *org, const char *san, int days,
                  char serial[64])
{
	char *csr = make_csr(cn, org, san), *body;
	json_t *req = json_pack("{s:s, s:s, s:i}", "profile", profile, "csr", csr, "validity_days",
	                        days),
	       *o = NULL;
	long st;

	body = json_dumps(req, JSON_COMPACT);
	st = api("officer", "POST", "/api/v1/certificates", body, &o);
	if (st != 201) {
		fprintf(stderr, "test_reports: issue %s: %ld %s\n", profile, st,
		        o ? jstr(o, "detail") : "");
		harness_die(__func__);
	}
	snprintf(serial, 64, "%s", jstr(o, "serial"));
	json_decref(o);
	json_decref(req);
	free(body);
	free(csr);
}

static const char config_fmt[] =
    "listen: {address: 127.0.0.1, port: %d}\n"
    "tls: {certificate: %s/server.pem, key: %s/server.key, client_ca: %s/opca.pem}\n"
    "database: \"%s connect_timeout=3\"\n"
    "limits: {report_max_days: 60}\n"
    "audit: {checkpoint_key: \"keyd:label=audit-p256\", checkpoint_interval_seconds: 1}\n"
    "authorities:\n"
    "  - {name: issuing, certificate: %s/issuing.pem, key: \"keyd:label=issuing-p256\"}\n"
    "  - {name: second, certificate: %s/second.pem, key: \"keyd:label=second-p256\"}\n"
    "key_profiles:\n"
    "  - {name: ec, ec_curves: [P-256]}\n"
    "profiles:\n"
    "  - {name: tls-server, authority: issuing, key_profile: ec, max_validity_days: 397,\n"
    "     key_usage: [digitalSignature], extended_key_usage: [serverAuth],\n"
    "     subject_fields: [CN, O], san: {dns: [\"*.example.com\"]}, san_required: true}\n"
    "  - {name: short, authority: issuing, key_profile: ec, max_validity_days: 30,\n"
    "     key_usage: [digitalSignature], extended_key_usage: [clientAuth],\n"
    "     subject_fields: [CN, O], subject_cn_required: true}\n"
    "  - {name: other, authority: second, key_profile: ec, max_validity_days: 397,\n"
    "     key_usage: [digitalSignature], extended_key_usage: [clientAuth],\n"
    "     subject_fields: [CN], subject_cn_required: true}\n";

static void setup(void)
{
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err kerr;
	struct db *db;
	char conf[8192], clients[1024];
	const char *const labels[] = {"issuing-p256", "second-p256"};
	const char *const files[] = {"issuing.pem", "second.pem"};
	int port;
	X509 *x;

	harness_setup_phase = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* This uid signs, generates, and wraps with the backup key (hsmca backup). */
	snprintf(clients, sizeof(clients),
	         "  - name: test\n"
	         "    uid: %u\n"
	         "    grants:\n"
	         "      - keys: [\"*\"]\n"
	         "        operations: [\"*\", generate, wrap, unwrap]\n"
	         "        kinds: [\"*\", digest]\n",
	         (unsigned)getuid());
	if (harness_start(&h, &(struct harness_opts){.clients_yaml = clients}) != 0)
		harness_die(__func__);
	snprintf(dir, sizeof(dir), "%s", h.dir);
	c = keyd_client_new(NULL, 0);
	if (!c ||
	    keyd_client_generate(c, "issuing-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "second-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "audit-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "backup-key", KEYD_KEY_AES, 256, &k, &kerr))
		harness_die(__func__);
	keyd_client_free(c);
	harness_load_providers(&prov_keyd, &prov_default);
	for (int i = 0; i < 2; i++) {
		EVP_PKEY *ik = harness_keyd_key(labels[i]);
		x = make_cert(i ? "hsmca test second CA" : "hsmca test issuing CA", ik, NULL, ik, 1,
		              NULL);
		harness_write_cert(dir_file(files[i]), x, 0);
		X509_free(x);
		EVP_PKEY_free(ik);
	}
	opca = harness_opca(dir, "hsmca test operator CA", &opca_key);
	for (int i = 0; i < NROLES; i++)
		client_cert(roles[i]);

	db = harness_pg_migrated(&pg, "reports");
	cad_ci = harness_pg_daemon_ci(&pg, db_pgconn(db), "cad");
	crld_ci = harness_pg_daemon_ci(&pg, db_pgconn(db), "crld");
	for (int i = 0; i < NROLES; i++)
		harness_db_principal(db, dir, roles[i], roles[i],
		                     !strcmp(roles[i], "ra") ? "tls-server" : "");
	db_close(db);
	port = harness_free_port();
	snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port);
	snprintf(conf, sizeof(conf), config_fmt, port, dir, dir, dir, cad_ci, dir, dir);
	harness_write_text(dir_file("cad.yaml"), conf);
	harness_setup_phase = 0;
}

/* The certificates every test counts (docs/reports.md), made once after cad starts:
 *   A1..A4  tls-server (issuing), 60 days: A1 revoked, A2 on hold, A4 issued 3 hours ago
 *   B1, B2  short (issuing): B1 issued 9 days ago and expired a day ago, B2 valid 5 days
 *   C1      other (second), 200 days, issued 2 days ago; its subject holds a comma
 */
static char A[5][64], B[3][64], C1[64];

static void move(const char *serial, const char *set)
{
	char sql[512];
	PGconn *c = PQconnectdb(pg.owner_ci);
	PGresult *r;

	snprintf(sql, sizeof(sql), "UPDATE certificates SET %s WHERE serial = '\\x%s'", set,
	         serial);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdTuples(r), "1")) {
		fprintf(stderr, "test_reports: %s: %s\n", sql, PQresultErrorMessage(r));
		harness_die(__func__);
	}
	PQclear(r);
	PQfinish(c);
}

static void populate(void)
{
	char path[256];
	json_t *o = NULL;

	for (int i = 1; i <= 4; i++) {
		char cn[64];
		snprintf(cn, sizeof(cn), "a%d.example.com", i);
		snprintf(path, sizeof(path), "DNS:%s", cn);
		issue("tls-server", cn, "Example", path, 60, A[i]);
	}
	issue("short", "b1", NULL, NULL, 30, B[1]);
	issue("short", "b2", NULL, NULL, 5, B[2]);
	issue("other", "c1, the comma", NULL, NULL, 200, C1);
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/revoke", A[1]);
	if (api("officer", "POST", path, "{\"reason\":\"keyCompromise\"}", &o) != 200)
		harness_die("revoke");
	json_decref(o);
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/hold", A[2]);
	if (api("officer", "POST", path, NULL, &o) != 200)
		harness_die("hold");
	json_decref(o);
	move(A[4], "issued_at = now() - interval '3 hours'");
	move(B[1], "created_at = now() - interval '9 days', issued_at = now() - interval '9 days',"
	           " not_before = now() - interval '9 days', not_after = now() - interval '1 day'");
	move(C1, "issued_at = now() - interval '2 days'");
}

static void cad_start(void)
{
	harness_setup_phase = 1;
	cad_pid = harness_cad_start(&site, dir_file("cad.yaml"), dir_file("cad.log"), "officer");
	populate();
	harness_setup_phase = 0;
}

static void cad_stop(void)
{
	harness_cad_stop(&cad_pid, dir_file("cad.log"), 0);
}

static void teardown(void)
{
	harness_suite_end(&h, &pg, opca, opca_key, prov_keyd, prov_default);
}

static void cleanup(void)
{
	cad_stop();
	harness_pg_remove(&pg);
	if (h.dir[0])
		harness_stop(&h);
}

/* ================= the dashboard ================= */

START_TEST(dashboard_counts_certificates_and_shows_freshness)
{
	json_t *o, *a, *audit;
	struct db *db = NULL;
	struct db_err err = {0};
	time_t now = time(NULL);

	/* hsmca-crld's record of a publication, as crld's own role writes it. */
	ck_assert_int_eq(db_connect(crld_ci, &db, &err), DB_OK);
	ck_assert_msg(db_crl_publication_add(db, 1, "issuing", 0, 7, now - 60, now + 3600, &err) ==
	                  DB_OK,
	              "%s", err.msg);
	ck_assert_int_eq(db_crl_publication_add(db, 1, "issuing", 1, 8, now - 30, now - 10, &err),
	                 DB_OK);
	db_close(db);
	sleep(3); /* a checkpoint (every second) covers the head */
	o = get_json("operator", "/api/v1/dashboard");
	ck_assert_int_eq(jint(o, "certificates.issued"), 4); /* A3 A4 B2 C1 */
	ck_assert_int_eq(jint(o, "certificates.revoked"), 1);
	ck_assert_int_eq(jint(o, "certificates.on_hold"), 1);
	ck_assert_int_eq(jint(o, "certificates.expired"), 1);
	ck_assert_int_eq(jint(o, "issued_last_hour"), 4);     /* A1 A2 A3 B2 */
	ck_assert_int_eq(jint(o, "issued_last_24_hours"), 5); /* and A4 */
	ck_assert(json_is_true(json_object_get(json_object_get(o, "keyd"), "online")));
	audit = json_object_get(o, "audit");
	ck_assert_int_gt(jint(audit, "head_seq"), 0);
	ck_assert_int_gt(jint(audit, "checkpoint_seq"), 0);
	ck_assert(json_is_true(json_object_get(audit, "checkpoints_enabled")));
	ck_assert_msg(json_is_true(json_object_get(audit, "head_checkpointed_recently")),
	              "audit: %s", json_dumps(audit, 0));
	ck_assert_uint_eq(json_array_size(json_object_get(o, "authorities")), 2);
	a = json_array_get(json_object_get(o, "authorities"), 0);
	ck_assert_str_eq(jstr(a, "name"), "issuing");
	ck_assert_ptr_nonnull(strstr(jstr(a, "subject"), "hsmca test issuing CA"));
	ck_assert(json_is_false(json_object_get(a, "retired")));
	ck_assert_int_eq(strlen(jstr(a, "not_before")), 20);
	ck_assert_int_eq(strlen(jstr(a, "not_after")), 20);
	ck_assert_ptr_null(json_object_get(a, "certificate"));
	ck_assert_int_eq(jint(a, "crl.number"), 7);
	ck_assert(json_is_false(json_object_get(json_object_get(a, "crl"), "next_update_passed")));
	ck_assert_int_eq(jint(a, "delta_crl.number"), 8);
	ck_assert(
	    json_is_true(json_object_get(json_object_get(a, "delta_crl"), "next_update_passed")));
	/* No OCSP response stored yet: no earliest nextUpdate, none expired. */
	ck_assert(
	    json_is_null(json_object_get(json_object_get(a, "ocsp"), "earliest_next_update")));
	ck_assert_int_eq(jint(a, "ocsp.expired_responses"), 0);
	a = json_array_get(json_object_get(o, "authorities"), 1);
	ck_assert_str_eq(jstr(a, "name"), "second");
	ck_assert(json_is_null(json_object_get(a, "crl")));
	json_decref(o);

	/* A retired authority says so. */
	sql_ok("UPDATE authorities SET status = 'retired' WHERE name = 'second'");
	o = get_json("auditor", "/api/v1/dashboard");
	a = json_array_get(json_object_get(o, "authorities"), 1);
	ck_assert(json_is_true(json_object_get(a, "retired")));
	json_decref(o);
	sql_ok("UPDATE authorities SET status = 'active' WHERE name = 'second'");
}
END_TEST

/* ================= reports ================= */

START_TEST(issuance_report_counts_per_authority_profile_and_day)
{
	json_t *o, *rows, *r, *d;
	long long issued = 0, revoked = 0, expired = 0;
	char day[16], path[256];
	time_t b1 = time(NULL) - 9 * 86400;
	struct tm tm;
	size_t i;

	o = get_json("auditor", "/api/v1/reports/issuance");
	rows = json_object_get(o, "rows");
	ck_assert_uint_eq(json_array_size(rows), 3);
	r = json_array_get(rows, 0);
	ck_assert_str_eq(jstr(r, "authority"), "issuing");
	ck_assert_str_eq(jstr(r, "profile"), "short");
	ck_assert_int_eq(jint(r, "issued"), 2);
	ck_assert_int_eq(jint(r, "revoked"), 0);
	ck_assert_int_eq(jint(r, "expired"), 1);
	r = json_array_get(rows, 1);
	ck_assert_str_eq(jstr(r, "profile"), "tls-server");
	ck_assert_int_eq(jint(r, "issued"), 4);
	ck_assert_int_eq(jint(r, "revoked"), 1); /* A1; A2's hold is not a revocation */
	ck_assert_int_eq(jint(r, "expired"), 0);
	r = json_array_get(rows, 2);
	ck_assert_str_eq(jstr(r, "authority"), "second");
	ck_assert_str_eq(jstr(r, "profile"), "other");
	ck_assert_int_eq(jint(r, "issued"), 1);
	ck_assert_int_eq(jint(o, "totals.issued"), 7);
	ck_assert_int_eq(jint(o, "totals.revoked"), 1);
	ck_assert_int_eq(jint(o, "totals.expired"), 1);
	/* 30 days by default, so 30 or 31 UTC days, whose counts add up to the totals. */
	ck_assert_uint_ge(json_array_size(json_object_get(o, "days")), 30);
	ck_assert_uint_le(json_array_size(json_object_get(o, "days")), 31);
	gmtime_r(&b1, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	json_array_foreach(json_object_get(o, "days"), i, d)
	{
		issued += jint(d, "issued");
		revoked += jint(d, "revoked");
		expired += jint(d, "expired");
		if (!strcmp(jstr(d, "day"), day))
			ck_assert_int_ge(jint(d, "issued"), 1); /* B1 */
	}
	ck_assert_int_eq(issued, 7);
	ck_assert_int_eq(revoked, 1);
	ck_assert_int_eq(expired, 1);
	json_decref(o);

	/* A period ending 5 days ago holds only B1's issuance; one starting an hour ago the four
	 * issued now and A1's revocation. */
	{
		time_t t = time(NULL) - 5 * 86400, f = time(NULL) - 3600;
		char ts[32], fs[32];
		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		gmtime_r(&f, &tm);
		strftime(fs, sizeof(fs), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(path, sizeof(path), "/api/v1/reports/issuance?to=%s", ts);
		o = get_json("ca-admin", path);
		ck_assert_int_eq(jint(o, "totals.issued"), 1);
		ck_assert_int_eq(jint(o, "totals.expired"), 0);
		json_decref(o);
		snprintf(path, sizeof(path), "/api/v1/reports/issuance?from=%s", fs);
		o = get_json("ca-admin", path);
		ck_assert_int_eq(jint(o, "totals.issued"), 4);
		ck_assert_int_eq(jint(o, "totals.revoked"), 1);
		ck_assert_int_eq(jint(o, "totals.expired"), 0);
		json_decref(o);
	}
}
END_TEST

START_TEST(periods_are_bounded_with_clear_errors)
{
	static const struct {
		const char *query, *error, *says;
	} bad[] = {
	    {"from=2026-02-01&to=2026-01-01", "bad-period", "must be before"},
	    {"from=2026-01-01&to=2026-01-01", "bad-period", "must be before"},
	    {"from=2025-01-01&to=2025-03-03", "period-too-long", "longer than 60 days"},
	    {"from=yesterday", "bad-period", "from \"yesterday\""},
	    {"to=2026-13-01", "bad-period", "to \"2026-13-01\""},
	    {"from=2026-02-30", "bad-period", "from \"2026-02-30\""},
	    {"to=2026-01-02T03:04:60Z", "bad-period", "to \"2026-01-02T03:04:60Z\""},
	    {"format=xml", "bad-format", "json or csv"},
	    {"table=months", "bad-filter", "rows or days"},
	};
	char path[256], *text = NULL;
	json_t *o;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "/api/v1/reports/issuance?%s", bad[i].query);
		ck_assert_int_eq(get_text("auditor", path, &text), 400);
		o = json_loads(text, 0, NULL);
		ck_assert_msg(o, "%s: %s", path, text);
		ck_assert_str_eq(jstr(o, "error"), bad[i].error);
		ck_assert_msg(strstr(jstr(o, "detail"), bad[i].says), "%s: %s", path,
		              jstr(o, "detail"));
		json_decref(o);
		free(text);
	}
	ck_assert_int_eq(get_text("auditor", "/api/v1/reports/expiring?days=0", &text), 400);
	free(text);
	ck_assert_int_eq(get_text("auditor", "/api/v1/reports/expiring?days=61", &text), 400);
	ck_assert_ptr_nonnull(strstr(text, "from 1 to 60"));
	free(text);
	ck_assert_int_eq(get_text("auditor", "/api/v1/reports/expiring?days=5x", &text), 400);
	free(text);
	/* The longest period allowed is answered. */
	ck_assert_int_eq(
	    get_text("auditor", "/api/v1/reports/issuance?from=2025-01-01&to=2025-03-02", &text),
	    200);
	free(text);
}
END_TEST

START_TEST(issuance_csv_reads_back_as_the_json)
{
	struct csv_table t;
	char *text = NULL;
	int r;

	ck_assert_int_eq(get_text("auditor", "/api/v1/reports/issuance?format=csv", &text), 200);
	ck_assert_str_eq(last_type, "text/csv; charset=utf-8; header=present");
	ck_assert_msg(csv_parse(text, &t) == 0, "not RFC 4180: %s", text);
	ck_assert_int_eq(t.rows, 4);
	ck_assert_int_eq(t.cols, 5);
	ck_assert_str_eq(t.cell[0][0], "authority");
	ck_assert_str_eq(t.cell[0][4], "expired");
	r = csv_find(&t, 1, "tls-server");
	ck_assert_int_gt(r, 0);
	ck_assert_str_eq(t.cell[r][0], "issuing");
	ck_assert_str_eq(t.cell[r][2], "4");
	ck_assert_str_eq(t.cell[r][3], "1");
	ck_assert_str_eq(t.cell[r][4], "0");
	r = csv_find(&t, 1, "short");
	ck_assert_str_eq(t.cell[r][4], "1");
	free(text);
	ck_assert_int_eq(
	    get_text("auditor", "/api/v1/reports/issuance?format=csv&table=days", &text), 200);
	ck_assert_int_eq(csv_parse(text, &t), 0);
	ck_assert_str_eq(t.cell[0][0], "day");
	ck_assert_int_ge(t.rows, 31);
	free(text);
}
END_TEST

START_TEST(expiring_report_lists_valid_certificates_soonest_first)
{
	json_t *o, *c;
	struct csv_table t;
	char *text = NULL;
	int r;

	o = get_json("auditor", "/api/v1/reports/expiring?days=30");
	ck_assert_int_eq(jint(o, "total"), 1);
	c = json_array_get(json_object_get(o, "certificates"), 0);
	ck_assert_str_eq(jstr(c, "serial"), B[2]);
	ck_assert_str_eq(jstr(c, "profile"), "short");
	ck_assert_str_eq(jstr(c, "requester"), "officer");
	ck_assert_str_eq(jstr(c, "authority"), "issuing");
	ck_assert_int_eq(jint(c, "days_left"), 4);
	json_decref(o);
	/* 60 days: B2, then A3 and A4 (A1 revoked, A2 on hold, B1 expired, C1 later). */
	o = get_json("ca-admin", "/api/v1/reports/expiring?days=60");
	ck_assert_int_eq(jint(o, "total"), 3);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(o, "certificates"), 0), "serial"),
	                 B[2]);
	json_decref(o);
	o = get_json("ca-admin", "/api/v1/reports/expiring?days=60&limit=1");
	ck_assert_int_eq(jint(o, "total"), 3);
	ck_assert_uint_eq(json_array_size(json_object_get(o, "certificates")), 1);
	json_decref(o);
	/* C1 expires in 200 days: beyond the longest period (60). Its subject's comma comes back
	 * through the CSV once C1 is moved within reach. */
	{
		PGconn *pc = conn(pg.owner_ci);
		char sql[256];
		snprintf(sql, sizeof(sql),
		         "UPDATE certificates SET not_after = now() + interval '20 days'"
		         " WHERE serial = '\\x%s'",
		         C1);
		harness_pg_exec_ok(pc, sql);
		PQfinish(pc);
	}
	ck_assert_int_eq(get_text("auditor", "/api/v1/reports/expiring?days=30&format=csv", &text),
	                 200);
	ck_assert_str_eq(last_type, "text/csv; charset=utf-8; header=present");
	ck_assert_msg(csv_parse(text, &t) == 0, "not RFC 4180: %s", text);
	ck_assert_int_eq(t.rows, 3);
	ck_assert_str_eq(t.cell[0][0], "serial");
	ck_assert_str_eq(t.cell[0][4], "requester");
	r = csv_find(&t, 0, C1);
	ck_assert_int_gt(r, 0);
	/* The subject (as the JSON has it) holds a comma: quoted, it reads back whole. */
	{
		json_t *j = get_json("auditor", "/api/v1/reports/expiring?days=30");
		const char *subj = NULL;
		size_t k;
		json_t *e;
		char quoted[300];
		json_array_foreach(json_object_get(j, "certificates"), k,
		                   e) if (!strcmp(jstr(e, "serial"), C1)) subj = jstr(e, "subject");
		ck_assert_ptr_nonnull(subj);
		ck_assert_ptr_nonnull(strstr(subj, "c1"));
		ck_assert_ptr_nonnull(strchr(subj, ','));
		ck_assert_str_eq(t.cell[r][3], subj);
		snprintf(quoted, sizeof(quoted), ",\"%s\",", subj);
		ck_assert_ptr_nonnull(strstr(text, quoted));
		json_decref(j);
	}
	ck_assert_str_eq(t.cell[r][2], "other");
	ck_assert_str_eq(t.cell[r][4], "officer");
	ck_assert_str_eq(t.cell[1][0], B[2]); /* soonest first */
	free(text);
	{
		PGconn *pc = conn(pg.owner_ci);
		char sql[256];
		snprintf(sql, sizeof(sql),
		         "UPDATE certificates SET not_after = now() + interval '200 days'"
		         " WHERE serial = '\\x%s'",
		         C1);
		harness_pg_exec_ok(pc, sql);
		PQfinish(pc);
	}
}
END_TEST

START_TEST(principals_report_shows_last_use_noted_once_a_minute)
{
	json_t *o, *p, *tok = NULL;
	struct csv_table t;
	char *text = NULL, who[300], before[64], after[64];
	size_t i;
	int r;

	/* A token for the auditor, used once; a provisioning token used a day ago. */
	ck_assert_int_eq(api("auditor", "POST", "/api/v1/principals/auditor/tokens",
	                     "{\"name\":\"report-bot\"}", &tok),
	                 201);
	snprintf(who, sizeof(who), "token:%s", jstr(tok, "token"));
	ck_assert_int_eq(get_text(who, "/api/v1/whoami", NULL), 200);
	sql_ok("INSERT INTO provisioning_tokens (token_sha256, name, profile, max_uses, expires_at,"
	       " created_by, last_used_at, uses) VALUES (sha256('x'), 'line-7', 'tls-server', 5,"
	       " now() + interval '1 day', 'officer', now() - interval '1 day', 1)");

	o = get_json("auditor", "/api/v1/reports/principals");
	ck_assert_uint_eq(json_array_size(json_object_get(o, "principals")), NROLES);
	json_array_foreach(json_object_get(o, "principals"), i, p)
	{
		if (!strcmp(jstr(p, "name"), "officer")) {
			/* It issued above with its certificate. */
			ck_assert_int_eq(strlen(jstr(p, "certificate_last_used_at")), 20);
			ck_assert_str_eq(jstr(p, "state"), "enabled");
		}
		if (!strcmp(jstr(p, "name"), "auditor")) {
			ck_assert_int_eq(strlen(jstr(p, "token_last_used_at")), 20);
			ck_assert_int_eq(jint(p, "active_tokens"), 1);
		}
		if (!strcmp(jstr(p, "name"), "ra"))
			ck_assert(json_is_null(json_object_get(p, "last_used_at")));
	}
	p = json_array_get(json_object_get(o, "api_tokens"), 0);
	ck_assert_str_eq(jstr(p, "name"), "report-bot");
	ck_assert_str_eq(jstr(p, "principal"), "auditor");
	ck_assert_str_eq(jstr(p, "state"), "active");
	ck_assert_int_eq(strlen(jstr(p, "last_used_at")), 20);
	p = json_array_get(json_object_get(o, "provisioning_tokens"), 0);
	ck_assert_str_eq(jstr(p, "name"), "line-7");
	ck_assert_str_eq(jstr(p, "principal"), "officer");
	ck_assert_str_eq(jstr(p, "state"), "active");
	ck_assert_int_eq(jint(p, "uses"), 1);
	json_decref(o);

	/* Noted at most once a minute: a use 30 s after the last changes nothing, one 2 min after
	 * does (the token's and the client certificate's alike). */
	sql_ok("UPDATE api_tokens SET last_used_at = '2026-01-01T00:00:00Z'");
	ck_assert_int_eq(get_text(who, "/api/v1/whoami", NULL), 200);
	ck_assert_int_eq(count("SELECT count(*) FROM api_tokens WHERE last_used_at > now() - "
	                       "interval '1 minute'"),
	                 1);
	sql_ok("UPDATE api_tokens SET last_used_at = now() - interval '30 seconds'");
	snprintf(before, sizeof(before), "%lld",
	         count("SELECT floor(extract(epoch FROM last_used_at))::bigint FROM api_tokens"));
	ck_assert_int_eq(get_text(who, "/api/v1/whoami", NULL), 200);
	snprintf(after, sizeof(after), "%lld",
	         count("SELECT floor(extract(epoch FROM last_used_at))::bigint FROM api_tokens"));
	ck_assert_str_eq(before, after);
	sql_ok("UPDATE principals SET last_used_at = now() - interval '30 seconds' WHERE name = "
	       "'operator'");
	ck_assert_int_eq(get_text("operator", "/api/v1/whoami", NULL), 200);
	ck_assert_int_eq(count("SELECT count(*) FROM principals WHERE name = 'operator' AND"
	                       " last_used_at < now() - interval '29 seconds'"),
	                 1);
	sql_ok("UPDATE principals SET last_used_at = now() - interval '2 minutes' WHERE name = "
	       "'operator'");
	ck_assert_int_eq(get_text("operator", "/api/v1/whoami", NULL), 200);
	ck_assert_int_eq(count("SELECT count(*) FROM principals WHERE name = 'operator' AND"
	                       " last_used_at > now() - interval '1 minute'"),
	                 1);

	/* One CSV table of the three lists. */
	ck_assert_int_eq(get_text("ca-admin", "/api/v1/reports/principals?format=csv", &text), 200);
	ck_assert_msg(csv_parse(text, &t) == 0, "not RFC 4180: %s", text);
	ck_assert_int_eq(t.rows, 1 + NROLES + 1 + 1);
	ck_assert_str_eq(t.cell[0][0], "kind");
	ck_assert_str_eq(t.cell[0][8], "last_used_at");
	r = csv_find(&t, 1, "report-bot");
	ck_assert_str_eq(t.cell[r][0], "api-token");
	ck_assert_str_eq(t.cell[r][2], "auditor");
	r = csv_find(&t, 1, "line-7");
	ck_assert_str_eq(t.cell[r][0], "provisioning-token");
	ck_assert_str_eq(t.cell[r][4], "tls-server");
	r = csv_find(&t, 1, "ra");
	ck_assert_str_eq(t.cell[r][0], "principal");
	ck_assert_str_eq(t.cell[r][8], "");
	free(text);
	json_decref(tok);
}
END_TEST

/* ================= roles ================= */

START_TEST(each_role_gets_what_it_may_and_403_for_the_rest)
{
	static const struct {
		const char *path;
		const char *allowed[NROLES];
	} eps[] = {
	    {"/api/v1/dashboard", {"ca-admin", "admin", "officer", "auditor", "operator", "ra"}},
	    {"/api/v1/reports/issuance", {"ca-admin", "auditor"}},
	    {"/api/v1/reports/expiring", {"ca-admin", "auditor"}},
	    {"/api/v1/reports/principals", {"ca-admin", "auditor"}},
	    {"/api/v1/reports/issuance?format=csv", {"ca-admin", "auditor"}},
	    {"/api/v1/backups", {"ca-admin", "auditor", "operator"}},
	};
	long long denied = count("SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND"
	                         " action LIKE 'report.%'");
	long long expect_denied = 0;
	char *text;

	for (size_t e = 0; e < sizeof(eps) / sizeof(eps[0]); e++)
		for (int i = 0; i < NROLES; i++) {
			int ok = 0;
			long st;
			for (int j = 0; j < NROLES && eps[e].allowed[j]; j++)
				ok |= !strcmp(eps[e].allowed[j], roles[i]);
			text = NULL;
			st = get_text(roles[i], eps[e].path, &text);
			ck_assert_msg(st == (ok ? 200 : 403), "%s as %s: %ld %s", eps[e].path,
			              roles[i], st, text);
			if (!ok) {
				ck_assert_ptr_nonnull(strstr(text, "role-not-permitted"));
				if (strstr(eps[e].path, "/reports/"))
					expect_denied++;
			}
			free(text);
		}
	/* Every refusal is in the audit log. */
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND"
	                       " action LIKE 'report.%'"),
	                 denied + expect_denied);
	/* And none of it works without credentials. */
	ck_assert_int_eq(api(NULL, "GET", "/api/v1/dashboard", NULL, NULL), 401);
}
END_TEST

/* ================= backup runs ================= */

static int hsmca_backup(const char *archive, const char *key)
{
	char *argv[] = {(char *)getenv("HSMCA_CLI_BIN"),
	                "backup",
	                (char *)archive,
	                "--key",
	                (char *)key,
	                "--database",
	                pg.owner_ci,
	                "--pg-bin",
	                PG_BIN,
	                "--ca-cert",
	                (char *)dir_file("issuing.pem"),
	                NULL};

	return harness_run(argv, dir_file("backup.log"));
}

START_TEST(backup_runs_are_recorded_and_listed_newest_first)
{
	const char *good = dir_file("first.hsmcabk"), *bad = dir_file("second.hsmcabk");
	unsigned char sha[32];
	char hex[65], *data;
	json_t *o, *run, *o2;
	struct stat st;
	FILE *f;
	char path[128];

	ck_assert_msg(hsmca_backup(good, "backup-key") == 0, "hsmca backup: %s",
	              harness_slurp(dir_file("backup.log")));
	ck_assert_ptr_nonnull(strstr(harness_slurp(dir_file("backup.log")), "recorded backup run"));
	/* A run that fails (keyd has no such key) is recorded as failed, with the reason. */
	ck_assert_int_ne(hsmca_backup(bad, "no-such-key"), 0);
	ck_assert_int_ne(stat(bad, &st), 0);

	ck_assert_int_eq(stat(good, &st), 0);
	data = malloc((size_t)st.st_size);
	f = fopen(good, "rb");
	ck_assert_uint_eq(fread(data, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	SHA256((unsigned char *)data, (size_t)st.st_size, sha);
	free(data);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sha[i]);

	o = get_json("operator", "/api/v1/backups");
	ck_assert_uint_eq(json_array_size(json_object_get(o, "runs")), 2);
	run = json_array_get(json_object_get(o, "runs"), 0); /* newest first */
	ck_assert_str_eq(jstr(run, "outcome"), "failed");
	ck_assert_str_eq(jstr(run, "archive"), bad);
	ck_assert_ptr_nonnull(strstr(jstr(run, "error"), "no-such-key"));
	ck_assert(json_is_null(json_object_get(run, "sha256")));
	run = json_array_get(json_object_get(o, "runs"), 1);
	ck_assert_str_eq(jstr(run, "outcome"), "success");
	ck_assert_str_eq(jstr(run, "archive"), good);
	ck_assert_int_eq(jint(run, "size_bytes"), (long long)st.st_size);
	ck_assert_str_eq(jstr(run, "sha256"), hex);
	ck_assert_str_eq(jstr(run, "run_by"), "hsmca");
	ck_assert_int_eq(strlen(jstr(run, "started_at")), 20);
	ck_assert_int_eq(strlen(jstr(run, "finished_at")), 20);
	ck_assert_int_eq(jint(o, "last_success.id"), jint(run, "id"));
	ck_assert_str_eq(jstr(json_object_get(o, "last_success"), "finished_at"),
	                 jstr(run, "finished_at"));
	ck_assert(json_is_null(json_object_get(o, "next")));
	/* Paging: one a page. */
	o2 = get_json("auditor", "/api/v1/backups?limit=1");
	ck_assert_uint_eq(json_array_size(json_object_get(o2, "runs")), 1);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(o2, "runs"), 0), "outcome"), "failed");
	snprintf(path, sizeof(path), "/api/v1/backups?limit=1&before=%lld", jint(o2, "next"));
	json_decref(o2);
	o2 = get_json("auditor", path);
	ck_assert_uint_eq(json_array_size(json_object_get(o2, "runs")), 1);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(o2, "runs"), 0), "outcome"),
	                 "success");
	ck_assert(json_is_null(json_object_get(o2, "next")));
	json_decref(o2);
	json_decref(o);
	{
		char *text = NULL;
		ck_assert_int_eq(get_text("operator", "/api/v1/backups?before=x", &text), 400);
		free(text);
		ck_assert_int_eq(get_text("operator", "/api/v1/backups?limit=0", &text), 400);
		free(text);
	}
}
END_TEST

/* ================= the grants of migration 0016 ================= */

START_TEST(each_role_has_only_the_grants_its_queries_need)
{
	const char *app = pg.app_ci;
	struct db *db = NULL;
	struct db_err err = {0};
	int64_t mine = 0, owners = 0;

	/* hsmca-crld adds publications, and may neither read nor change them. */
	refused(crld_ci, "SELECT * FROM crl_publications");
	refused(crld_ci, "UPDATE crl_publications SET number = 1");
	refused(crld_ci, "DELETE FROM crl_publications");
	refused(crld_ci, "SELECT * FROM backup_runs");
	/* hsmca-cad reads; it writes neither table, runs no backup, and sees only whose and
	 * until when of the OCSP responses. */
	refused(cad_ci,
	        "INSERT INTO crl_publications (authority_id, scope, delta, number,"
	        " this_update, next_update) VALUES (1, 'x', false, 1, now(), now() + '1h')");
	refused(cad_ci, "UPDATE backup_runs SET outcome = 'success'");
	refused(cad_ci, "SELECT backup_run_start('x')");
	refused(cad_ci, "SELECT der FROM ocsp_responses");
	{
		PGconn *c = conn(cad_ci);
		harness_pg_exec_ok(c, "SELECT min(next_update) FROM ocsp_responses");
		harness_pg_exec_ok(c, "SELECT count(*) FROM backup_runs");
		PQfinish(c);
	}
	/* The command line's role runs backups only through the two functions, and finishes
	 * only its own running run. */
	refused(app, "INSERT INTO backup_runs (archive) VALUES ('x')");
	refused(app, "UPDATE backup_runs SET outcome = 'success'");
	refused(app, "DELETE FROM backup_runs");
	ck_assert_int_eq(db_connect(pg.owner_ci, &db, &err), DB_OK);
	ck_assert_int_eq(db_backup_run_start(db, "/owners.hsmcabk", &owners, &err), DB_OK);
	db_close(db);
	ck_assert_int_eq(db_connect(app, &db, &err), DB_OK);
	ck_assert_msg(db_backup_run_start(db, "/mine.hsmcabk", &mine, &err) == DB_OK, "%s",
	              err.msg);
	ck_assert_int_eq(db_backup_run_finish(db, owners, 0, 0, NULL, "not mine", &err),
	                 DB_ERR_NOT_FOUND);
	ck_assert_int_eq(db_backup_run_finish(db, mine, 0, 0, NULL, "disk full", &err), DB_OK);
	/* Once finished, a run stays as it ended. */
	ck_assert_int_eq(db_backup_run_finish(db, mine, 0, 0, NULL, "again", &err),
	                 DB_ERR_NOT_FOUND);
	db_close(db);
	ck_assert_int_eq(count("SELECT count(*) FROM backup_runs WHERE archive = '/owners.hsmcabk'"
	                       " AND outcome = 'running'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM backup_runs WHERE archive = '/mine.hsmcabk'"
	                       " AND outcome = 'failed' AND error = 'disk full'"
	                       " AND run_by = 'hsmca_app'"),
	                 1);
	sql_ok("DELETE FROM backup_runs WHERE archive IN ('/owners.hsmcabk', '/mine.hsmcabk')");
}
END_TEST

/* ================= the CLI ================= */

START_TEST(cli_reports_in_json_csv_and_table)
{
	char *api_csv = NULL;
	char cert[300], key[300], out[300];
	char *argv[] = {(char *)getenv("HSMCA_CLI_BIN"),
	                "report",
	                "issuance",
	                "--format",
	                "csv",
	                "--url",
	                base_url,
	                "--ca-bundle",
	                (char *)dir_file("opca.pem"),
	                "--cert",
	                cert,
	                "--key",
	                key,
	                NULL};

	snprintf(cert, sizeof(cert), "%s/auditor.pem", dir);
	snprintf(key, sizeof(key), "%s/auditor.key", dir);
	snprintf(out, sizeof(out), "%s/cli.out", dir);
	/* The CLI's CSV is the API's, byte for byte. */
	ck_assert_int_eq(harness_run(argv, out), 0);
	ck_assert_int_eq(get_text("auditor", "/api/v1/reports/issuance?format=csv", &api_csv), 200);
	ck_assert_str_eq(harness_slurp(out), api_csv);
	free(api_csv);
	/* A table, with the columns aligned. */
	argv[2] = "expiring";
	argv[4] = "table";
	ck_assert_int_eq(harness_run(argv, out), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(out), "serial"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(out), B[2]));
	/* JSON. */
	argv[2] = "principals";
	argv[4] = "json";
	ck_assert_int_eq(harness_run(argv, out), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(out), "\"provisioning_tokens\""));
	/* The server's refusal is the CLI's: a role that may not, a bad period. */
	snprintf(cert, sizeof(cert), "%s/officer.pem", dir);
	snprintf(key, sizeof(key), "%s/officer.key", dir);
	ck_assert_int_eq(harness_run(argv, out), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(out), "role-not-permitted"));
	argv[4] = "xml";
	ck_assert_int_eq(harness_run(argv, out), 2);
}
END_TEST

/* The chain's head is "checkpointed recently" only while the checkpoint timer can sign: with
 * keyd stopped, a new audit entry stays uncovered, and after two intervals the dashboard says
 * so; once keyd is back, a checkpoint covers it again. */
START_TEST(dashboard_says_when_the_audit_head_is_not_checkpointed)
{
	json_t *o = NULL, *audit;
	int recent = 0;
	char *text = NULL;

	ck_assert_int_eq(kill(h.keyd_pid, SIGSTOP), 0);
	/* A refusal is an audit entry that needs no key. */
	ck_assert_int_eq(get_text("officer", "/api/v1/reports/principals", &text), 403);
	free(text);
	sleep(4); /* two intervals (1 s) and some */
	o = get_json("auditor", "/api/v1/dashboard");
	audit = json_object_get(o, "audit");
	ck_assert_int_ge(jint(audit, "entries_since_checkpoint"), 1);
	ck_assert_int_ge(jint(audit, "oldest_unchecked_age_seconds"), 3);
	ck_assert_msg(json_is_false(json_object_get(audit, "head_checkpointed_recently")),
	              "audit: %s", json_dumps(audit, 0));
	json_decref(o);
	ck_assert_int_eq(kill(h.keyd_pid, SIGCONT), 0);
	for (int i = 0; i < 60 && !recent; i++) {
		sleep(1);
		o = get_json("auditor", "/api/v1/dashboard");
		recent = json_is_true(
		    json_object_get(json_object_get(o, "audit"), "head_checkpointed_recently"));
		json_decref(o);
	}
	ck_assert(recent);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reports");
	TCase *tc = tcase_create("reports");
	SRunner *sr;
	int failed;

	harness_die_init("test_reports", cleanup);
	tcase_add_unchecked_fixture(tc, cad_start, cad_stop);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, dashboard_counts_certificates_and_shows_freshness);
	tcase_add_test(tc, issuance_report_counts_per_authority_profile_and_day);
	tcase_add_test(tc, periods_are_bounded_with_clear_errors);
	tcase_add_test(tc, issuance_csv_reads_back_as_the_json);
	tcase_add_test(tc, expiring_report_lists_valid_certificates_soonest_first);
	tcase_add_test(tc, principals_report_shows_last_use_noted_once_a_minute);
	tcase_add_test(tc, each_role_gets_what_it_may_and_403_for_the_rest);
	tcase_add_test(tc, backup_runs_are_recorded_and_listed_newest_first);
	tcase_add_test(tc, each_role_has_only_the_grants_its_queries_need);
	tcase_add_test(tc, cli_reports_in_json_csv_and_table);
	tcase_add_test(tc, dashboard_says_when_the_audit_head_is_not_checkpointed);
	suite_add_tcase(s, tc);
	setup();
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	teardown();
	if (harness_bad_exits) {
		fprintf(stderr, "test_reports: hsmca-cad did not exit cleanly: see above\n");
		failed++;
	}
	return failed ? 1 : 0;
}
