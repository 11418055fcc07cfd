/*
 * Quorum approvals end to end (docs/approvals.md): a private PostgreSQL cluster, a throwaway
 * keyd holding the CA keys, and hsmca-cad configured with a threshold of 2, driven over HTTPS.
 * Retiring an authority answers 202 and waits for a second ca-admin; the requester, a wrong
 * role, a second vote and an expired request are refused; a rejection ends a request; two
 * approvers at once run the operation exactly once; the database's own rules refuse what the
 * C code would never send. A second set-up without approvals: retirement runs at once, as
 * before approvals existed.
 */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "db.h"
#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct harness_pg pg;
static const char *cad_ci;
static char ocspd_ci[512];
static char dir[256];
static char base_url[128];
static pid_t cad_pid;
static OSSL_PROVIDER *prov_keyd, *prov_default;
static EVP_PKEY *opca_key;
static X509 *opca;

/* name, role: a client certificate and a principal each. */
static const char *const people[][2] = {
    {"ca-admin", "ca-admin"},   {"ca-admin-2", "ca-admin"}, {"ca-admin-3", "ca-admin"},
    {"ca-admin-4", "ca-admin"}, {"officer", "officer"},     {"officer-2", "officer"},
    {"admin", "admin"},         {"auditor", "auditor"},     {"ra", "ra"},
};
#define NPEOPLE (sizeof(people) / sizeof(people[0]))
#define NAUTH 8 /* authorities auth1..auth7, one per test that retires one; auth8 issues */

static void cleanup(void);

#define dir_file(name) harness_pathf(dir, "%s", name)

static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                       const char *san)
{
	return harness_test_cert(cn, pub, issuer, signer, ca, san, NULL);
}

/* ---- HTTP ---- */

static const struct harness_site site = {.base_url = base_url, .dir = dir};

/* who: NULL or a person's name (their client certificate). The HTTP status (0: no answer);
 * *out (may be NULL) the JSON body; location (may be NULL) the Location header. */
static long api_loc(const char *who, const char *method, const char *path, const char *body,
                    json_t **out, char *location, size_t locsz)
{
	struct harness_reply r;
	long status = harness_http(
	    &site, &(struct harness_req){.who = who, .method = method, .path = path, .body = body},
	    &r);

	if (out)
		*out = r.body ? json_loads(r.body, 0, NULL) : NULL;
	if (location)
		harness_reply_header(&r, "Location", 0, location, locsz);
	harness_reply_clear(&r);
	return status;
}

static long api(const char *who, const char *method, const char *path, const char *body,
                json_t **out)
{
	return harness_api(&site, who, method, path, body, out);
}

static const char *jstr(json_t *o, const char *k)
{
	return harness_jstr(o, k);
}

static json_int_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* Assert an error answer: status and error code, and the detail contains needle. */
static void refused(long got, json_t **op, long status, const char *error, const char *needle)
{
	json_t *o = *op;

	ck_assert_msg(got == status, "status %ld, wanted %ld: %s %s", got, status, jstr(o, "error"),
	              jstr(o, "detail"));
	ck_assert_str_eq(jstr(o, "error"), error);
	if (needle)
		ck_assert_msg(strstr(jstr(o, "detail"), needle), "\"%s\" not in \"%s\"", needle,
		              jstr(o, "detail"));
}

/* ---- the database ---- */

static long long count_on(const char *ci, const char *sql)
{
	return harness_pg_count_on(ci, sql);
}

static long long count(const char *sql)
{
	return count_on(pg.owner_ci, sql);
}

/* Run sql as the connection ci; its SQLSTATE ("" when it succeeded) into state. */
static void sql_state(const char *ci, const char *sql, char state[6])
{
	PGconn *c = PQconnectdb(ci);
	PGresult *r;
	const char *s;

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
	r = PQexec(c, sql);
	s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	snprintf(state, 6, "%s", s ? s : "");
	PQclear(r);
	PQfinish(c);
}

static int authority_is(const char *name, const char *status)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM authorities WHERE name = '%s' AND status = '%s'", name,
	         status);
	return count(sql) == 1;
}

static long long audit_count(const char *action, const char *object, const char *like)
{
	char sql[600];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM audit_log WHERE action = '%s' AND object = '%s'"
	         " AND detail LIKE '%%%s%%'",
	         action, object, like ? like : "");
	return count(sql);
}

/* ---- fixture ---- */

static const char config_head[] =
    "listen: {address: 127.0.0.1, port: %d}\n"
    "tls: {certificate: %s/server.pem, key: %s/server.key, client_ca: %s/opca.pem}\n"
    "database: \"%s connect_timeout=3\"\n"
    "limits: {max_body_bytes: 16384, timeout_seconds: 20}\n"
    "key_profiles:\n"
    "  - {name: ec, ec_curves: [P-256]}\n"
    "profiles:\n"
    "  - name: tls-server\n"
    "    authority: auth8\n"
    "    key_profile: ec\n"
    "    max_validity_days: 90\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [serverAuth]\n"
    "    subject_fields: [CN]\n"
    "    san: {dns: [\"*.example.com\"]}\n"
    "    san_required: true\n"
    "  - name: enc\n"
    "    authority: auth8\n"
    "    key_profile: ec\n"
    "    max_validity_days: 90\n"
    "    key_usage: [keyAgreement]\n"
    "    extended_key_usage: [emailProtection]\n"
    "    subject_fields: [CN]\n"
    "    server_keygen: true\n"
    "    archive_key: true\n"
    "key_archive: {key: key-archive-2026}\n"
    "authorities:\n";

/* The quorum set-up: authority.retire and ceremony.run need 2 ca-admins, backup.restore 3
 * (so that a second vote of one approver can be tried on a request still pending). */
static const char config_quorum[] =
    "approvals:\n"
    "  expiry_seconds: 3600\n"
    "  kinds:\n"
    "    - {kind: authority.retire, required: 2, approvers: [ca-admin]}\n"
    "    - {kind: ceremony.run, required: 2, approvers: [ca-admin]}\n"
    "    - {kind: backup.restore, required: 3, approvers: [ca-admin]}\n"
    "    - {kind: certificate.revoke-ca, required: 2, approvers: [ca-admin]}\n"
    "    - {kind: key.recovery, required: 2, approvers: [officer]}\n"
    "    - {kind: key.generate, required: 2, approvers: [ca-admin]}\n";

/* The other set-up: no threshold for retirement (today's behaviour); ceremonies need 2, and
 * a request lives 2 seconds (the expiry test). */
static const char config_plain[] = "approvals:\n"
                                   "  expiry_seconds: 2\n"
                                   "  kinds:\n"
                                   "    - {kind: ceremony.run, required: 2}\n";

static void write_config(const char *approvals)
{
	char conf[8192];
	size_t n;
	int port = harness_free_port();

	snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port);
	n = (size_t)snprintf(conf, sizeof(conf), config_head, port, dir, dir, dir, cad_ci);
	for (int i = 1; i <= NAUTH; i++)
		n += (size_t)snprintf(conf + n, sizeof(conf) - n,
		                      "  - {name: auth%d, certificate: %s/auth%d.pem,"
		                      " key: \"keyd:label=auth%d\"}\n",
		                      i, dir, i, i);
	snprintf(conf + n, sizeof(conf) - n, "%s", approvals);
	harness_write_text(dir_file("cad.yaml"), conf);
}

static void cad_start(void)
{
	cad_pid = harness_cad_start(&site, dir_file("cad.yaml"), dir_file("cad.log"), NULL);
}

static void cad_stop(void)
{
	harness_cad_stop(&cad_pid, dir_file("cad.log"), 0);
}

static void quorum_start(void)
{
	write_config(config_quorum);
	cad_start();
}

static void plain_start(void)
{
	write_config(config_plain);
	cad_start();
}

static void setup(void)
{
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err kerr;
	struct db *db;
	X509 *x;
	char clients[256];

	harness_setup_phase = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* This uid (the test, cad and the operator's hsmca) may sign, generate, and wrap and
	 * unwrap (the backup key). */
	snprintf(clients, sizeof(clients),
	         "  - name: operator\n"
	         "    uid: %u\n"
	         "    keys: [\"*\"]\n"
	         "    operations: [\"*\", generate, wrap, unwrap]\n",
	         (unsigned)getuid());
	if (harness_start(&h, &(struct harness_opts){.clients_yaml = clients}) != 0)
		harness_die(__func__);
	snprintf(dir, sizeof(dir), "%s", h.dir);
	if (!(c = keyd_client_new(NULL, 0)))
		harness_die(__func__);
	for (int i = 1; i <= NAUTH; i++) {
		char label[16];
		snprintf(label, sizeof(label), "auth%d", i);
		if (keyd_client_generate(c, label, KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr))
			harness_die(__func__);
	}
	if (keyd_client_generate(c, "backup-aes", KEYD_KEY_AES, 256, &k, &kerr))
		harness_die(__func__);
	if (keyd_client_generate(c, "key-archive-2026", KEYD_KEY_AES, 256, &k, &kerr))
		harness_die(__func__);
	keyd_client_free(c);
	harness_load_providers(&prov_keyd, &prov_default);
	for (int i = 1; i <= NAUTH; i++) {
		char label[16], cn[64], file[32];
		EVP_PKEY *ak;
		snprintf(label, sizeof(label), "auth%d", i);
		snprintf(cn, sizeof(cn), "hsmca approvals test CA %d", i);
		snprintf(file, sizeof(file), "auth%d.pem", i);
		ak = harness_keyd_key(label);
		x = make_cert(cn, ak, NULL, ak, 1, NULL);
		harness_write_cert(dir_file(file), x, 0);
		X509_free(x);
		EVP_PKEY_free(ak);
	}

	opca = harness_opca(dir, "hsmca approvals operator CA", &opca_key);

	/* The command line (hsmca ceremony run) connects as the application role (LOGIN). */
	db = harness_pg_migrated(&pg, "approvals");
	cad_ci = harness_pg_daemon_ci(&pg, db_pgconn(db), "cad");
	snprintf(ocspd_ci, sizeof(ocspd_ci), "%s",
	         harness_pg_daemon_ci(&pg, db_pgconn(db), "ocspd"));
	for (size_t i = 0; i < NPEOPLE; i++) {
		EVP_PKEY *pk = EVP_EC_gen("P-256");
		harness_write_credential(dir, people[i][0],
		                         make_cert(people[i][0], pk, opca, opca_key, 0, NULL), pk);
		harness_db_principal(db, dir, people[i][0], people[i][1],
		                     !strcmp(people[i][1], "ra") ? "tls-server" : NULL);
	}
	db_close(db);
	harness_setup_phase = 0;
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

/* POST retire of authority as who, expecting 202: the approval's id (its Location checked). */
static long long retire_request(const char *who, const char *authority)
{
	char path[128], loc[128], want[128];
	json_t *o = NULL, *a;
	long long id;
	long st;

	snprintf(path, sizeof(path), "/api/v1/authorities/%s/retire", authority);
	st = api_loc(who, "POST", path, "{\"reason\":\"key compromise drill\"}", &o, loc,
	             sizeof(loc));
	ck_assert_msg(st == 202, "retire %s: %ld %s", authority, st, jstr(o, "detail"));
	a = json_object_get(o, "approval");
	id = jint(a, "id");
	ck_assert_int_gt(id, 0);
	ck_assert_str_eq(jstr(a, "state"), "pending");
	ck_assert_str_eq(jstr(a, "kind"), "authority.retire");
	ck_assert_str_eq(jstr(a, "target"), authority);
	ck_assert_str_eq(jstr(a, "requester"), who);
	ck_assert_int_eq(jint(a, "required_approvals"), 2);
	ck_assert_int_eq(jint(a, "approvals"), 0);
	snprintf(want, sizeof(want), "/api/v1/approvals/%lld", id);
	ck_assert_str_eq(loc, want);
	json_decref(o);
	return id;
}

static long vote(const char *who, long long id, const char *verb, const char *body, json_t **o)
{
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/approvals/%lld/%s", id, verb);
	return api(who, "POST", path, body, o);
}

/* ================= with quorum ================= */

/* POST /api/v1/approvals as who with body: the new request's id (202 asserted). */
static long long request_approval(const char *who, const char *body)
{
	json_t *o = NULL;
	long long id;

	ck_assert_int_eq(api(who, "POST", "/api/v1/approvals", body, &o), 202);
	id = jint(json_object_get(o, "approval"), "id");
	json_decref(o);
	return id;
}

START_TEST(retire_waits_for_a_second_ca_admin_and_runs_once)
{
	json_t *o = NULL;
	long long id;
	char obj[40];

	id = retire_request("ca-admin", "auth1");
	snprintf(obj, sizeof(obj), "approval/%lld", id);
	/* Not retired: only requested, and audited as such. */
	ck_assert(authority_is("auth1", "active"));
	ck_assert_int_eq(audit_count("approval.request", obj, "key compromise drill"), 1);
	ck_assert_int_eq(audit_count("authority.retire", "auth1", NULL), 0);

	/* The requester may not approve their own request. */
	refused(vote("ca-admin", id, "approve", NULL, &o), &o, 403, "self-approval", "ca-admin");
	json_decref(o);
	/* Nor may an officer or an admin: the approvers are ca-admins. */
	refused(vote("officer", id, "approve", NULL, &o), &o, 403, "role-not-permitted", "officer");
	json_decref(o);
	refused(vote("admin", id, "approve", "{\"reason\":\"fine by me\"}", &o), &o, 403,
	        "role-not-permitted", "ca-admin");
	json_decref(o);
	ck_assert(authority_is("auth1", "active"));
	ck_assert_int_eq(count("SELECT count(*) FROM approval_votes"), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM approval_requests WHERE state = 'pending'"),
	                 1);
	/* Each refusal is audited as denied. */
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'approval.approve'"
	                       " AND outcome = 'denied'"),
	                 3);

	/* A second ca-admin: the retirement runs, with the approval recorded. */
	ck_assert_int_eq(vote("ca-admin-2", id, "approve", "{\"reason\":\"confirmed\"}", &o), 200);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "executed");
	ck_assert_int_eq(jint(json_object_get(o, "approval"), "approvals"), 1);
	ck_assert_str_eq(jstr(json_object_get(json_object_get(o, "approval"), "result"), "status"),
	                 "retired");
	json_decref(o);
	ck_assert(authority_is("auth1", "retired"));
	ck_assert_int_eq(audit_count("approval.approve", obj, "confirmed"), 1);
	ck_assert_int_eq(audit_count("approval.execute", obj, "ca-admin-2"), 1);
	ck_assert_int_eq(
	    count("SELECT count(*) FROM audit_log WHERE action = 'authority.retire'"
	          " AND object = 'auth1' AND actor = 'ca-admin-2' AND detail LIKE '%\"requester\":"
	          "\"ca-admin\"%' AND detail LIKE '%key compromise drill%'"),
	    1);

	/* Done: a further vote is refused, and nothing runs again. */
	refused(vote("ca-admin-3", id, "approve", NULL, &o), &o, 409, "wrong-state", "executed");
	json_decref(o);
	ck_assert_int_eq(audit_count("authority.retire", "auth1", NULL), 1);
	/* The retired authority takes no new request. */
	refused(api("ca-admin", "POST", "/api/v1/authorities/auth1/retire", NULL, &o), &o, 409,
	        "wrong-state", "retired already");
	json_decref(o);

	/* The whole audit chain still verifies. */
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/audit/verify", NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "finding"), "intact");
	json_decref(o);
}
END_TEST

struct racer {
	const char *who;
	long long id;
	long status;
	char state[32];
};

static void *race(void *arg)
{
	struct racer *r = arg;

	json_t *o = NULL;

	r->status = vote(r->who, r->id, "approve", NULL, &o);
	snprintf(r->state, sizeof(r->state), "%s",
	         r->status == 200 ? jstr(json_object_get(o, "approval"), "state")
	                          : jstr(o, "error"));
	json_decref(o);
	return NULL;
}

START_TEST(two_approvers_at_once_run_it_exactly_once)
{
	struct racer a = {.who = "ca-admin-2"}, b = {.who = "ca-admin-3"};
	pthread_t ta, tb;
	long long id = retire_request("ca-admin", "auth2");

	a.id = b.id = id;
	ck_assert_int_eq(pthread_create(&ta, NULL, race, &a), 0);
	ck_assert_int_eq(pthread_create(&tb, NULL, race, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	/* One vote executes it; the other finds it executed. */
	ck_assert_msg((a.status == 200 && b.status == 409) || (a.status == 409 && b.status == 200),
	              "statuses %ld (%s) and %ld (%s)", a.status, a.state, b.status, b.state);
	ck_assert(authority_is("auth2", "retired"));
	ck_assert_int_eq(audit_count("authority.retire", "auth2", NULL), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM approval_votes v JOIN approval_requests a"
	                       " ON a.id = v.request_id WHERE a.target = 'auth2'"),
	                 1);
}
END_TEST

START_TEST(a_rejection_ends_the_request)
{
	json_t *o = NULL;
	long long id = retire_request("ca-admin", "auth3"), again;
	char obj[40];

	snprintf(obj, sizeof(obj), "approval/%lld", id);
	/* One open request per operation. */
	refused(api("ca-admin-2", "POST", "/api/v1/authorities/auth3/retire", NULL, &o), &o, 409,
	        "approval-pending", "waits for approval");
	json_decref(o);
	/* A rejection says why. */
	refused(vote("ca-admin-2", id, "reject", NULL, &o), &o, 400, "bad-request", "reason");
	json_decref(o);
	refused(vote("ca-admin-2", id, "reject", "{\"reason\":\"\"}", &o), &o, 400, "bad-request",
	        "reason");
	json_decref(o);
	/* A wrong role may not reject either. */
	refused(vote("officer", id, "reject", "{\"reason\":\"no\"}", &o), &o, 403,
	        "role-not-permitted", NULL);
	json_decref(o);
	ck_assert_int_eq(
	    vote("ca-admin-2", id, "reject", "{\"reason\":\"not during the freeze\"}", &o), 200);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "rejected");
	json_decref(o);
	ck_assert_int_eq(audit_count("approval.reject", obj, "not during the freeze"), 1);
	/* Ended: approving it now is refused, and nothing ran. */
	refused(vote("ca-admin-3", id, "approve", NULL, &o), &o, 409, "wrong-state", "rejected");
	json_decref(o);
	ck_assert(authority_is("auth3", "active"));
	/* The operation may be asked for again, as a new request; its requester withdraws it. */
	again = retire_request("ca-admin", "auth3");
	ck_assert_int_ne(again, id);
	ck_assert_int_eq(vote("ca-admin", again, "reject", "{\"reason\":\"withdrawn\"}", &o), 200);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "rejected");
	json_decref(o);
	ck_assert(authority_is("auth3", "active"));
}
END_TEST

START_TEST(each_approver_counts_once)
{
	json_t *o = NULL;
	long long id;
	const char *body = "{\"kind\":\"backup.restore\",\"target\":"
	                   "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
	                   "\"reason\":\"restore drill\"}";

	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/approvals", body, &o), 202);
	id = jint(json_object_get(o, "approval"), "id");
	ck_assert_int_eq(jint(json_object_get(o, "approval"), "required_approvals"), 3);
	json_decref(o);
	ck_assert_int_eq(vote("ca-admin-2", id, "approve", NULL, &o), 200);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "pending");
	ck_assert_int_eq(jint(json_object_get(o, "approval"), "approvals"), 1);
	json_decref(o);
	refused(vote("ca-admin-2", id, "approve", NULL, &o), &o, 409, "duplicate-vote",
	        "counts once");
	json_decref(o);
	/* Nor may the same approver turn around and reject. */
	refused(vote("ca-admin-2", id, "reject", "{\"reason\":\"changed my mind\"}", &o), &o, 409,
	        "duplicate-vote", NULL);
	json_decref(o);
	/* The requester and two approvers make three: approved, waiting for `hsmca restore`. */
	ck_assert_int_eq(vote("ca-admin-3", id, "approve", NULL, &o), 200);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "approved");
	ck_assert_int_eq(json_array_size(json_object_get(json_object_get(o, "approval"), "votes")),
	                 2);
	json_decref(o);
	refused(vote("ca-admin-4", id, "approve", NULL, &o), &o, 409, "wrong-state", "approved");
	json_decref(o);
}
END_TEST

START_TEST(the_database_holds_the_rules_itself)
{
	char st[6], sql[400];
	long long id = retire_request("ca-admin", "auth4");

	/* As hsmca-cad's own role, straight into the tables, bypassing the C code. */
	snprintf(sql, sizeof(sql),
	         "INSERT INTO approval_votes (request_id, approver, vote) VALUES (%lld,"
	         " 'ca-admin', 'approve')",
	         id);
	sql_state(cad_ci, sql, st);
	ck_assert_str_eq(st, "HA004"); /* self-approval */
	snprintf(sql, sizeof(sql),
	         "INSERT INTO approval_votes (request_id, approver, vote) VALUES (%lld,"
	         " 'officer', 'approve')",
	         id);
	sql_state(cad_ci, sql, st);
	ck_assert_str_eq(st, "HA005"); /* wrong role */
	snprintf(sql, sizeof(sql),
	         "INSERT INTO approval_votes (request_id, approver, vote) VALUES (%lld,"
	         " 'nobody', 'approve')",
	         id);
	sql_state(cad_ci, sql, st);
	ck_assert_str_eq(st, "HA003"); /* no such principal */
	/* No state change the votes do not allow, and nothing else changes. */
	snprintf(sql, sizeof(sql),
	         "UPDATE approval_requests SET state = 'executed' WHERE id = %lld", id);
	sql_state(cad_ci, sql, st);
	ck_assert_str_eq(st, "HA007");
	snprintf(sql, sizeof(sql), "UPDATE approval_requests SET state = 'expired' WHERE id = %lld",
	         id);
	sql_state(cad_ci, sql, st);
	ck_assert_str_eq(st, "HA007");
	snprintf(sql, sizeof(sql),
	         "UPDATE approval_requests SET required_approvals = 1 WHERE id = %lld", id);
	sql_state(cad_ci, sql, st);
	ck_assert_str_eq(st, "HA006");
	snprintf(sql, sizeof(sql), "DELETE FROM approval_requests WHERE id = %lld", id);
	sql_state(cad_ci, sql, st);
	ck_assert_str_eq(st, "42501");
	/* Votes once cast stay as cast. */
	snprintf(sql, sizeof(sql),
	         "INSERT INTO approval_votes (request_id, approver, vote) VALUES (%lld,"
	         " 'ca-admin-2', 'reject')",
	         id);
	sql_state(cad_ci, sql, st);
	ck_assert_str_eq(st, "");
	sql_state(cad_ci, "UPDATE approval_votes SET vote = 'approve'", st);
	ck_assert_str_eq(st, "42501");
	/* hsmca-ocspd's role reads nothing of it. */
	sql_state(ocspd_ci, "SELECT count(*) FROM approval_requests", st);
	ck_assert_str_eq(st, "42501");
	ck_assert(authority_is("auth4", "active"));
}
END_TEST

START_TEST(list_and_show)
{
	json_t *o = NULL, *arr;
	long long id = retire_request("ca-admin-3", "auth5");
	char path[64];

	ck_assert_int_eq(api("auditor", "GET", "/api/v1/approvals", NULL, &o), 200);
	arr = json_object_get(o, "approvals");
	ck_assert_int_gt(json_array_size(arr), 0);
	/* Pending first. */
	ck_assert_str_eq(jstr(json_array_get(arr, 0), "state"), "pending");
	json_decref(o);
	ck_assert_int_eq(api("officer", "GET",
	                     "/api/v1/approvals?state=pending&kind=authority.retire", NULL, &o),
	                 200);
	arr = json_object_get(o, "approvals");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		ck_assert_str_eq(jstr(json_array_get(arr, i), "state"), "pending");
		ck_assert_str_eq(jstr(json_array_get(arr, i), "kind"), "authority.retire");
	}
	json_decref(o);
	snprintf(path, sizeof(path), "/api/v1/approvals/%lld", id);
	ck_assert_int_eq(api("auditor", "GET", path, NULL, &o), 200);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "target"), "auth5");
	ck_assert(json_is_array(json_object_get(json_object_get(o, "approval"), "votes")));
	json_decref(o);
	/* Bad input: a clear 4xx. */
	refused(api("auditor", "GET", "/api/v1/approvals?state=maybe", NULL, &o), &o, 400,
	        "bad-query", "state");
	json_decref(o);
	refused(api("auditor", "GET", "/api/v1/approvals/12abc", NULL, &o), &o, 404,
	        "unknown-approval", NULL);
	json_decref(o);
	refused(api("auditor", "GET", "/api/v1/approvals/999999", NULL, &o), &o, 404,
	        "unknown-approval", NULL);
	json_decref(o);
	refused(vote("ca-admin", id, "approve", "{\"reason\":\"ok\",\"extra\":1}", &o), &o, 400,
	        "bad-request", "extra");
	json_decref(o);
	/* The ra and the operator see no approvals. */
	refused(api("ra", "GET", "/api/v1/approvals", NULL, &o), &o, 403, "role-not-permitted",
	        NULL);
	json_decref(o);
	/* Kinds of the command line are asked for here; the others by their own endpoint. */
	refused(api("ca-admin", "POST", "/api/v1/approvals",
	            "{\"kind\":\"authority.retire\",\"target\":\"auth6\",\"reason\":\"x\"}", &o),
	        &o, 400, "bad-request", "own endpoint");
	json_decref(o);
	refused(api("ca-admin", "POST", "/api/v1/approvals",
	            "{\"kind\":\"ceremony.run\",\"target\":\"not-a-hash\",\"reason\":\"x\"}", &o),
	        &o, 400, "bad-request", "SHA-256");
	json_decref(o);
	refused(api("officer", "POST", "/api/v1/approvals",
	            "{\"kind\":\"ceremony.run\",\"target\":"
	            "\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\","
	            "\"reason\":\"x\"}",
	            &o),
	        &o, 403, "role-not-permitted", "requesters");
	json_decref(o);
	ck_assert(authority_is("auth5", "active"));
	/* The policy the command line reads was published. */
	ck_assert_int_eq(count("SELECT required_approvals FROM approval_policies"
	                       " WHERE kind = 'ceremony.run'"),
	                 2);
}
END_TEST

/* A subordinate CA certificate issued by auth8 (signed through keyd), recorded in the
 * database as cad records what it issues: reserved, then issued. Its serial in hex. */
static const char *record_sub_ca(void)
{
	static const uint8_t serial[] = {0x5e, 0xed, 0xca, 0x01};
	struct db_err err = {0};
	struct db *db = NULL;
	EVP_PKEY *k = EVP_EC_gen("P-256"), *ak = harness_keyd_key("auth8");
	FILE *f = fopen(dir_file("auth8.pem"), "r");
	X509 *issuer = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL, *x;
	time_t now = time(NULL);
	struct harness_cert c = {.cn = "hsmca approvals test sub CA",
	                         .pub = k,
	                         .issuer = issuer,
	                         .signer = ak,
	                         .ca = 1,
	                         .serial_bytes = serial,
	                         .serial_len = sizeof(serial),
	                         .not_before = now - 60,
	                         .not_after = now + 86400L * 365,
	                         .md = "SHA256"};
	struct db_cert_request req = {0};
	unsigned char *der = NULL, *spki = NULL;
	int der_len, spki_len;
	int64_t id;
	PGconn *pc;
	PGresult *pr;

	if (f)
		fclose(f);
	ck_assert_ptr_nonnull(issuer);
	x = harness_make_cert(&c);
	der_len = i2d_X509(x, &der);
	spki_len = i2d_PUBKEY(k, &spki);
	ck_assert_int_gt(der_len, 0);
	ck_assert_int_gt(spki_len, 0);
	ck_assert_msg(db_connect(pg.owner_ci, &db, &err) == DB_OK, "%s", err.msg);
	pc = db_pgconn(db);
	pr = PQexec(pc, "SELECT id FROM authorities WHERE name = 'auth8'");
	ck_assert_int_eq(PQntuples(pr), 1);
	req.authority_id = atoi(PQgetvalue(pr, 0, 0));
	PQclear(pr);
	req.serial = serial;
	req.serial_len = sizeof(serial);
	req.profile = "sub-ca";
	req.subject = "CN=hsmca approvals test sub CA";
	req.subject_len = strlen(req.subject);
	req.not_before = now - 60;
	req.not_after = now + 86400L * 365;
	SHA256(spki, (size_t)spki_len, req.spki_sha256);
	req.requester = "ceremony";
	ck_assert_msg(db_cert_reserve(db, &req, &id, &err) == DB_OK, "%s", err.msg);
	ck_assert_msg(db_cert_mark_issued(db, req.authority_id, serial, sizeof(serial), der,
	                                  (size_t)der_len, &err) == DB_OK,
	              "%s", err.msg);
	db_close(db);
	OPENSSL_free(der);
	OPENSSL_free(spki);
	X509_free(x);
	X509_free(issuer);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ak);
	return "5eedca01";
}

/* Issue a tls-server certificate from auth8 as the officer: its serial (static). */
static const char *issue_leaf(void)
{
	static char serial[64];
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	BIO *b = BIO_new(BIO_s_mem());
	char *pem, *body;
	long len;
	json_t *o = NULL, *bo;

	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"www.example.com",
	                           -1, -1, 0);
	X509_REQ_set_subject_name(req, n);
	X509_REQ_set_pubkey(req, k);
	sk_X509_EXTENSION_push(
	    exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:www.example.com"));
	X509_REQ_add_extensions(req, exts);
	ck_assert(X509_REQ_sign(req, k, EVP_sha256()));
	PEM_write_bio_X509_REQ(b, req);
	len = BIO_get_mem_data(b, &pem);
	bo = json_pack("{s:s, s:s%}", "profile", "tls-server", "csr", pem, (size_t)len);
	body = json_dumps(bo, JSON_COMPACT);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", body, &o), 201);
	snprintf(serial, sizeof(serial), "%s", jstr(o, "serial"));
	json_decref(o);
	json_decref(bo);
	free(body);
	BIO_free(b);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return serial;
}

static long long cert_count(const char *serial, const char *status)
{
	char sql[256];

	snprintf(
	    sql, sizeof(sql),
	    "SELECT count(*) FROM certificates WHERE serial = '\\x%s'::bytea AND status = '%s'",
	    serial, status);
	return count(sql);
}

START_TEST(revoking_a_ca_certificate_waits_for_a_ca_admin)
{
	const char *ca = record_sub_ca(), *leaf = issue_leaf();
	json_t *o = NULL, *a;
	char path[128];
	long long id;

	/* A leaf: revoked at once, as before. */
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/revoke", leaf);
	ck_assert_int_eq(api("officer", "POST", path, "{\"reason\":\"superseded\"}", &o), 200);
	ck_assert_str_eq(jstr(o, "status"), "revoked");
	json_decref(o);

	/* The CA certificate: a pending request, nothing revoked. */
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/revoke", ca);
	ck_assert_int_eq(api("officer", "POST", path, "{\"reason\":\"cACompromise\"}", &o), 202);
	a = json_object_get(o, "approval");
	id = jint(a, "id");
	ck_assert_str_eq(jstr(a, "kind"), "certificate.revoke-ca");
	ck_assert_str_eq(jstr(a, "target"), ca);
	ck_assert_str_eq(jstr(json_object_get(a, "parameters"), "reason"), "cACompromise");
	json_decref(o);
	ck_assert_int_eq(cert_count(ca, "issued"), 1);
	refused(api("officer", "POST", path, NULL, &o), &o, 409, "approval-pending", ca);
	json_decref(o);
	refused(vote("officer", id, "approve", NULL, &o), &o, 403, "self-approval", NULL);
	json_decref(o);
	refused(vote("auditor", id, "approve", NULL, &o), &o, 403, "role-not-permitted", NULL);
	json_decref(o);
	ck_assert_int_eq(cert_count(ca, "issued"), 1);

	ck_assert_int_eq(vote("ca-admin", id, "approve", NULL, &o), 200);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "executed");
	json_decref(o);
	ck_assert_int_eq(cert_count(ca, "revoked"), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE serial = '\\x5eedca01'"
	                       " AND revocation_reason = 2"),
	                 1);
	ck_assert_int_eq(
	    count("SELECT count(*) FROM audit_log WHERE action = 'certificate.revoke'"
	          " AND object = '5eedca01' AND actor = 'ca-admin' AND detail LIKE '%cACompromise%'"
	          " AND detail LIKE '%\"requester\":\"officer\"%'"),
	    1);
	/* Revoked for good: a second request is refused. */
	refused(api("officer", "POST", path, NULL, &o), &o, 409, "wrong-state", "revoked already");
	json_decref(o);
}
END_TEST

/* Key recovery (docs/key-recovery.md): an officer asks for the archived key of a certificate;
 * a certificate without an archived key is refused, and the request needs a second officer. */
START_TEST(key_recovery_needs_an_archived_key_and_a_second_officer)
{
	const char *why = "{\"reason\":\"the laptop died\"}";
	char serial[64], path[128], body[256], sql[512], st[6];
	json_t *o = NULL, *a;
	long long id;

	snprintf(serial, sizeof(serial), "%s", issue_leaf());
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/recover", serial);
	snprintf(body, sizeof(body),
	         "{\"kind\":\"key.recovery\",\"target\":\"%s\",\"reason\":\"the laptop died\"}",
	         serial);
	/* No archived key: refused by both ways of asking, nothing recorded. */
	refused(api("officer", "POST", path, why, &o), &o, 409, "no-archived-key", serial);
	json_decref(o);
	refused(api("officer", "POST", "/api/v1/approvals", body, &o), &o, 409, "no-archived-key",
	        serial);
	json_decref(o);
	ck_assert_int_eq(
	    count("SELECT count(*) FROM approval_requests WHERE kind = 'key.recovery'"), 0);
	/* An unknown serial: 404. */
	refused(api("officer", "POST", "/api/v1/certificates/7e0011/recover", why, &o), &o, 404,
	        "unknown-serial", NULL);
	json_decref(o);

	/* Archive a key for it (its content is not read when asking). */
	snprintf(
	    sql, sizeof(sql),
	    "INSERT INTO key_archive (certificate_id, key_label, wrapped_key, nonce, ciphertext)"
	    " SELECT id, 'key-archive-2026', decode(repeat('00', 40), 'hex'),"
	    " decode(repeat('00', 12), 'hex'), decode(repeat('00', 40), 'hex')"
	    " FROM certificates WHERE serial = '\\x%s'::bytea",
	    serial);
	sql_state(pg.owner_ci, sql, st);
	ck_assert_str_eq(st, "");
	/* Only officers ask, and they say why. */
	refused(api("ra", "POST", path, why, &o), &o, 403, "role-not-permitted", NULL);
	json_decref(o);
	refused(api("officer", "POST", path, "{}", &o), &o, 400, "bad-request", "reason");
	json_decref(o);
	ck_assert_int_eq(
	    count("SELECT count(*) FROM approval_requests WHERE kind = 'key.recovery'"), 0);

	ck_assert_int_eq(api("officer", "POST", path, why, &o), 202);
	a = json_object_get(o, "approval");
	id = jint(a, "id");
	ck_assert_str_eq(jstr(a, "kind"), "key.recovery");
	ck_assert_str_eq(jstr(a, "target"), serial);
	ck_assert_str_eq(jstr(a, "state"), "pending");
	ck_assert_str_eq(jstr(json_object_get(a, "parameters"), "reason"), "the laptop died");
	json_decref(o);
	refused(api("officer", "POST", "/api/v1/approvals", body, &o), &o, 409, "approval-pending",
	        serial);
	json_decref(o);
	/* Not by the requester, not by a ca-admin: a second officer. */
	refused(vote("officer", id, "approve", NULL, &o), &o, 403, "self-approval", NULL);
	json_decref(o);
	refused(vote("ca-admin", id, "approve", NULL, &o), &o, 403, "role-not-permitted", NULL);
	json_decref(o);
	ck_assert_int_eq(vote("officer-2", id, "approve", NULL, &o), 200);
	/* Approved, not executed: `hsmca recover` on the keyd host runs it. */
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "approved");
	json_decref(o);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM audit_log WHERE action = 'approval.request'"
	         " AND actor = 'officer' AND outcome = 'success' AND detail LIKE '%%key.recovery%%'"
	         " AND detail LIKE '%%%s%%'",
	         serial);
	ck_assert_int_eq(count(sql), 1);
}
END_TEST

/* hsmca ARGS... as who (its client certificate); the exit status, its output in cli_out. */
static char cli_out[64 * 1024];

static int cli(const char *who, const char *const *args)
{
	const char *out = harness_pathf(dir, "cli.out");
	int rc = harness_cli(&site, who, args, out, NULL);

	snprintf(cli_out, sizeof(cli_out), "%s", harness_slurp(out));
	return rc;
}

START_TEST(cli_requests_lists_and_approves)
{
	const char *retire[] = {"authority", "retire", "auth7", "--reason", "cli drill", NULL};
	const char *list[] = {"approvals", "list", "--state", "pending", NULL};
	char id[24], line[64];
	const char *approve[] = {"approvals", "approve", id, "--reason", "seen", NULL};
	const char *self[] = {"approvals", "approve", id, NULL};
	const char *reject[] = {"approvals", "reject", id, NULL};
	const char *show[] = {"approvals", "show", id, NULL};
	json_t *o;

	ck_assert_msg(cli("ca-admin", retire) == 0, "%s", cli_out);
	o = json_loads(strstr(cli_out, "{"), 0, NULL);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "pending");
	snprintf(id, sizeof(id), "%lld", (long long)jint(json_object_get(o, "approval"), "id"));
	json_decref(o);
	ck_assert(authority_is("auth7", "active"));
	ck_assert_int_eq(cli("ca-admin-2", list), 0);
	snprintf(line, sizeof(line), "%s ", id);
	ck_assert_msg(strstr(cli_out, line) && strstr(cli_out, "auth7") && strstr(cli_out, "1/2"),
	              "%s", cli_out);
	/* The requester's own approval: refused, with the reason on stderr. */
	ck_assert_int_eq(cli("ca-admin", self), 1);
	ck_assert_msg(strstr(cli_out, "self-approval"), "%s", cli_out);
	ck_assert_int_eq(cli("ca-admin-2", reject), 2); /* a rejection needs --reason */
	ck_assert_msg(cli("ca-admin-2", approve) == 0, "%s", cli_out);
	ck_assert_msg(strstr(cli_out, "\"executed\""), "%s", cli_out);
	ck_assert(authority_is("auth7", "retired"));
	ck_assert_int_eq(cli("auditor", show), 0);
	ck_assert_msg(strstr(cli_out, "ca-admin-2") && strstr(cli_out, "seen"), "%s", cli_out);
}
END_TEST

static void sha256_hex(const char *text, char out[65])
{
	unsigned char md[32];

	SHA256((const unsigned char *)text, strlen(text), md);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

/* hsmca recover: a key hsmca-cad made and archived comes back only under a key.recovery
 * request that a second officer approved, matching its certificate, and once. */
START_TEST(recover_writes_the_archived_key_under_two_officers_once)
{
	char serial[64], first[64], path[128], p12[512], p12b[512], pwf[512], sql[300];
	const char *recover[] = {"recover", serial,       "--out",   p12, "--password-file",
	                         pwf,       "--database", pg.app_ci, NULL};
	const char *again[] = {"recover", serial,       "--out",   p12b, "--password-file",
	                       pwf,       "--database", pg.app_ci, NULL};
	json_t *o = NULL;
	long long id;
	X509 *cert = NULL, *got = NULL;
	EVP_PKEY *key = NULL;
	PKCS12 *pk = NULL;
	FILE *f;
	BIO *b;
	struct stat st;

	snprintf(p12, sizeof(p12), "%s/recovered.p12", dir);
	snprintf(p12b, sizeof(p12b), "%s/recovered-again.p12", dir);
	snprintf(pwf, sizeof(pwf), "%s/p12.pw", dir);
	harness_write_text(pwf, "recovery passphrase\n");
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates/serverkeygen",
	                     "{\"profile\":\"enc\",\"subject\":{\"CN\":\"alice\"},"
	                     "\"key_type\":\"ec-p256\",\"password\":\"subscriber pw\"}",
	                     &o),
	                 201);
	ck_assert(json_is_true(json_object_get(o, "archived")));
	snprintf(serial, sizeof(serial), "%s", jstr(o, "serial"));
	snprintf(first, sizeof(first), "%s", serial);
	b = BIO_new_mem_buf(jstr(o, "certificate"), -1);
	cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	ck_assert_ptr_nonnull(cert);
	json_decref(o);

	/* No request: refused, keyd unwraps nothing. */
	ck_assert_int_eq(cli("officer", recover), 1);
	ck_assert_msg(strstr(cli_out, "no key.recovery request"), "%s", cli_out);
	ck_assert_int_eq(access(p12, F_OK), -1);
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/recover", serial);
	ck_assert_int_eq(api("officer", "POST", path, "{\"reason\":\"alice left\"}", &o), 202);
	id = jint(json_object_get(o, "approval"), "id");
	json_decref(o);
	/* Pending: refused. */
	ck_assert_int_eq(cli("officer", recover), 1);
	ck_assert_msg(strstr(cli_out, "pending"), "%s", cli_out);
	ck_assert_int_eq(access(p12, F_OK), -1);
	refused(vote("officer", id, "approve", NULL, &o), &o, 403, "self-approval", NULL);
	json_decref(o);
	ck_assert_int_eq(vote("officer-2", id, "approve", NULL, &o), 200);
	json_decref(o);

	ck_assert_msg(cli("officer", recover) == 0, "%s", cli_out);
	ck_assert_msg(strstr(cli_out, "approved by officer-2"), "%s", cli_out);
	ck_assert_int_eq(stat(p12, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_ptr_nonnull(f = fopen(p12, "rb"));
	pk = d2i_PKCS12_fp(f, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(pk);
	ck_assert_int_eq(PKCS12_parse(pk, "recovery passphrase", &key, &got, NULL), 1);
	ck_assert_int_eq(X509_check_private_key(cert, key), 1);
	ck_assert_int_eq(X509_cmp(cert, got), 0);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM approval_requests WHERE id = %lld AND state = 'executed'",
	         id);
	ck_assert_int_eq(count(sql), 1);
	snprintf(sql, sizeof(sql), "approval/%lld", id);
	ck_assert_int_eq(audit_count("approval.execute", sql, serial), 1);

	/* Used: a second recovery needs a new approval. */
	ck_assert_int_eq(cli("officer", again), 1);
	ck_assert_msg(strstr(cli_out, "executed"), "%s", cli_out);
	ck_assert_int_eq(access(p12b, F_OK), -1);
	/* A certificate without an archived key: never requested, refused. */
	snprintf(serial, sizeof(serial), "%s", issue_leaf());
	ck_assert_int_eq(cli("officer", again), 1);
	ck_assert_msg(strstr(cli_out, "no key.recovery request"), "%s", cli_out);
	ck_assert_int_eq(access(p12b, F_OK), -1);

	/* The first certificate's archive copied to this one (by someone with the owner's
	 * rights): bound to its own serial, it does not decrypt; the request ends failed. */
	{
		char copy[700], st[6];
		snprintf(
		    copy, sizeof(copy),
		    "INSERT INTO key_archive (certificate_id, key_label, wrapped_key, nonce,"
		    " ciphertext) SELECT c.id, k.key_label, k.wrapped_key, k.nonce, k.ciphertext"
		    " FROM certificates c, certificates a JOIN key_archive k"
		    " ON k.certificate_id = a.id WHERE c.serial = '\\x%s'::bytea"
		    " AND a.serial = '\\x%s'::bytea",
		    serial, first);
		sql_state(pg.owner_ci, copy, st);
		ck_assert_str_eq(st, "");
	}
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/recover", serial);
	ck_assert_int_eq(api("officer", "POST", path, "{\"reason\":\"moved row\"}", &o), 202);
	id = jint(json_object_get(o, "approval"), "id");
	json_decref(o);
	ck_assert_int_eq(vote("officer-2", id, "approve", NULL, &o), 200);
	json_decref(o);
	ck_assert_int_eq(cli("officer", again), 1);
	ck_assert_msg(strstr(cli_out, "does not decrypt"), "%s", cli_out);
	ck_assert_int_eq(access(p12b, F_OK), -1);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM approval_requests WHERE id = %lld AND state = 'failed'", id);
	ck_assert_int_eq(count(sql), 1);
	PKCS12_free(pk);
	EVP_PKEY_free(key);
	X509_free(got);
	X509_free(cert);
}
END_TEST

START_TEST(ceremony_runs_only_under_an_approval_and_names_its_approvers)
{
	static const char text[] = "ceremony: key\n"
	                           "key: {label: approved-key, type: ec-p256}\n"
	                           "outputs: {public_key: approved-key.pub.pem}\n";
	char file[512], transcript[512], sha[65], body[400], want[200], sql[300], idtext[24];
	const char *run[] = {"ceremony", "run", file, "--database", pg.app_ci, NULL};
	const char *run_id[] = {"ceremony", "run",        file,   "--database",
	                        pg.app_ci,  "--approval", idtext, NULL};
	json_t *o = NULL;
	long long id;

	snprintf(file, sizeof(file), "%s/approved-key.yaml", dir);
	snprintf(transcript, sizeof(transcript), "%s/approved-key.transcript.txt", dir);
	harness_write_text(file, text);
	sha256_hex(text, sha);
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);

	/* No approval: refused before anything is made. */
	ck_assert_int_eq(cli("ca-admin", run), 1);
	ck_assert_msg(strstr(cli_out, "needs 2 people's approval") && strstr(cli_out, sha), "%s",
	              cli_out);
	ck_assert_int_eq(access(transcript, F_OK), -1);

	/* Requested by one ca-admin, approved by another. */
	snprintf(body, sizeof(body),
	         "{\"kind\":\"ceremony.run\",\"target\":\"%s\",\"reason\":\"spare key\","
	         "\"parameters\":{\"file\":\"approved-key.yaml\"}}",
	         sha);
	id = request_approval("ca-admin", body);
	snprintf(idtext, sizeof(idtext), "%lld", id);
	/* Pending is not enough. */
	ck_assert_int_eq(cli("ca-admin", run_id), 1);
	ck_assert_msg(strstr(cli_out, "pending, not approved"), "%s", cli_out);
	ck_assert_int_eq(vote("ca-admin-2", id, "approve", "{\"reason\":\"file reviewed\"}", &o),
	                 200);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "approved");
	json_decref(o);

	/* The approval is for that file only: a changed file is refused. */
	harness_write_text(file, "ceremony: key\n"
	                         "key: {label: other-key, type: ec-p256}\n"
	                         "outputs: {public_key: approved-key.pub.pem}\n");
	ck_assert_int_eq(cli("ca-admin", run), 1);
	ck_assert_msg(strstr(cli_out, "no approved request is for this file"), "%s", cli_out);
	ck_assert_int_eq(cli("ca-admin", run_id), 1);
	ck_assert_msg(strstr(cli_out, "not ceremony.run of this file"), "%s", cli_out);
	ck_assert_int_eq(access(transcript, F_OK), -1);

	/* The approved file: it runs, and the transcript names the request and its approvers. */
	harness_write_text(file, text);
	ck_assert_msg(cli("ca-admin", run) == 0, "%s", cli_out);
	snprintf(want, sizeof(want),
	         "request %lld (ceremony.run) by ca-admin, approved by ca-admin-2", id);
	ck_assert_msg(strstr(harness_slurp(transcript), want), "%s", harness_slurp(transcript));
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM approval_requests WHERE id = %lld AND state = 'executed'"
	         " AND executed_at IS NOT NULL",
	         id);
	ck_assert_int_eq(count(sql), 1);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM audit_log WHERE action = 'approval.execute'"
	         " AND object = 'approval/%lld' AND role = 'local' AND outcome = 'success'",
	         id);
	ck_assert_int_eq(count(sql), 1);

	/* Used once: the same file does not run again on it. */
	ck_assert_int_eq(cli("ca-admin", run), 1);
	ck_assert_msg(strstr(cli_out, "no approved request is for this file"), "%s", cli_out);
}
END_TEST

static void file_sha256_hex(const char *path, char out[65])
{
	unsigned char buf[8192], md[32];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	size_t n;

	ck_assert_ptr_nonnull(f);
	ck_assert(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		ck_assert(EVP_DigestUpdate(ctx, buf, n));
	ck_assert(EVP_DigestFinal_ex(ctx, md, &mdlen));
	fclose(f);
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

START_TEST(restore_unwraps_only_under_an_approval)
{
	char archive[512], into[512], into2[512], sha[65], body[300], sql[300], cfg[512];
	const char *backup[] = {"backup",     archive,     "--key",    "backup-aes",
	                        "--database", pg.owner_ci, "--pg-bin", "/usr/lib/postgresql/15/bin",
	                        "--config",   cfg,         NULL};
	const char *restore[] = {
	    "restore", archive, "--into", into, "--files-only", "--approval-database",
	    pg.app_ci, NULL};
	const char *again[] = {
	    "restore", archive, "--into", into2, "--files-only", "--approval-database",
	    pg.app_ci, NULL};
	json_t *o = NULL;
	long long id;

	snprintf(archive, sizeof(archive), "%s/site.hsmbak", dir);
	snprintf(into, sizeof(into), "%s/restored", dir);
	snprintf(into2, sizeof(into2), "%s/restored-again", dir);
	snprintf(cfg, sizeof(cfg), "%s/cad.yaml", dir);
	ck_assert_msg(cli("ca-admin", backup) == 0, "%s", cli_out);
	file_sha256_hex(archive, sha);

	/* No approval: refused before keyd unwraps anything. */
	ck_assert_int_eq(cli("ca-admin", restore), 1);
	ck_assert_msg(strstr(cli_out, "needs 3 people's approval") && strstr(cli_out, sha), "%s",
	              cli_out);
	ck_assert_msg(!strstr(cli_out, "authentication tag"), "%s", cli_out);
	ck_assert_int_eq(access(into, F_OK), -1);

	snprintf(body, sizeof(body),
	         "{\"kind\":\"backup.restore\",\"target\":\"%s\",\"reason\":\"restore drill\"}",
	         sha);
	id = request_approval("ca-admin", body);
	ck_assert_int_eq(vote("ca-admin-2", id, "approve", NULL, &o), 200);
	json_decref(o);
	/* Two of three people: still refused. */
	ck_assert_int_eq(cli("ca-admin", restore), 1);
	ck_assert_int_eq(access(into, F_OK), -1);
	ck_assert_int_eq(vote("ca-admin-3", id, "approve", NULL, &o), 200);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "approved");
	json_decref(o);

	ck_assert_msg(cli("ca-admin", restore) == 0, "%s", cli_out);
	ck_assert_msg(strstr(cli_out, "approved by ca-admin-2, ca-admin-3"), "%s", cli_out);
	ck_assert_int_eq(access(harness_pathf(into, "config/cad.yaml"), F_OK), 0);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM approval_requests WHERE id = %lld AND state = 'executed'",
	         id);
	ck_assert_int_eq(count(sql), 1);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM audit_log WHERE action = 'approval.execute'"
	         " AND object = 'approval/%lld' AND role = 'local'",
	         id);
	ck_assert_int_eq(count(sql), 1);
	/* Used once. */
	ck_assert_int_eq(cli("ca-admin", again), 1);
	ck_assert_int_eq(access(into2, F_OK), -1);
}
END_TEST

/* hsmca-cad --check on the configuration with approvals (YAML text): its exit status, its
 * output in cli_out. */
static int check_config(const char *approvals)
{
	char conf[8192], bin[512], path[512], out[512];
	char *argv[] = {bin, "--config", path, "--check", NULL};
	size_t n;
	int rc;

	snprintf(bin, sizeof(bin), "%s/ca-core/cad/hsmca-cad", getenv("HSMCA_BUILD"));
	snprintf(path, sizeof(path), "%s/check.yaml", dir);
	snprintf(out, sizeof(out), "%s/check.out", dir);
	n = (size_t)snprintf(conf, sizeof(conf), config_head, 1, dir, dir, dir, cad_ci);
	for (int i = 1; i <= NAUTH; i++)
		n += (size_t)snprintf(conf + n, sizeof(conf) - n,
		                      "  - {name: auth%d, certificate: %s/auth%d.pem,"
		                      " key: \"keyd:label=auth%d\"}\n",
		                      i, dir, i, i);
	snprintf(conf + n, sizeof(conf) - n, "%s", approvals);
	harness_write_text(path, conf);
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
	rc = harness_run(argv, out);
	snprintf(cli_out, sizeof(cli_out), "%s", harness_slurp(out));
	return rc;
}

START_TEST(bad_approval_configuration_is_refused_by_name)
{
	static const struct {
		const char *yaml, *needle;
	} bad[] = {
	    {"approvals: {kinds: [{kind: authority.delete, required: 2}]}\n", "authority.delete"},
	    {"approvals: {kinds: [{kind: authority.retire, required: 17}]}\n", "required"},
	    {"approvals: {kinds: [{kind: authority.retire, required: 0}]}\n", "required"},
	    {"approvals: {kinds: [{kind: authority.retire, approvers: [root]}]}\n", "root"},
	    {"approvals: {kinds: [{kind: authority.retire, approvers: [officer, officer]}]}\n",
	     "listed twice"},
	    {"approvals: {kinds: [{kind: ceremony.run}, {kind: ceremony.run}]}\n", "listed twice"},
	    {"approvals: {expiry_seconds: 0}\n", "expiry_seconds"},
	    {"approvals: {kinds: [{kind: ceremony.run, quorum: 2}]}\n", "quorum"},
	};

	ck_assert_msg(check_config(config_quorum) == 0, "%s", cli_out);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(check_config(bad[i].yaml) != 0, "accepted: %s", bad[i].yaml);
		ck_assert_msg(strstr(cli_out, bad[i].needle), "%s: %s", bad[i].yaml, cli_out);
	}
}
END_TEST

/* ================= without a threshold for retirement ================= */

/* Without a key.recovery quorum in the configuration, no recovery is ever requested. */
START_TEST(key_recovery_without_a_quorum_is_refused)
{
	json_t *o = NULL;
	char path[128];

	snprintf(path, sizeof(path), "/api/v1/certificates/%s/recover", issue_leaf());
	refused(api("officer", "POST", path, "{\"reason\":\"the laptop died\"}", &o), &o, 409,
	        "quorum-required", "key.recovery");
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM approval_requests WHERE kind = 'key.recovery'"
	                       " AND state = 'pending'"),
	                 0);
}
END_TEST

START_TEST(threshold_one_retires_at_once)
{
	json_t *o = NULL;

	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/authorities/auth6/retire",
	                     "{\"reason\":\"rollover\"}", &o),
	                 200);
	ck_assert_str_eq(jstr(o, "status"), "retired");
	json_decref(o);
	ck_assert(authority_is("auth6", "retired"));
	ck_assert_int_eq(count("SELECT count(*) FROM approval_requests WHERE target = 'auth6'"), 0);
	ck_assert_int_eq(audit_count("authority.retire", "auth6", "rollover"), 1);
	ck_assert_int_eq(count("SELECT required_approvals FROM approval_policies"
	                       " WHERE kind = 'authority.retire'"),
	                 1);
}
END_TEST

START_TEST(an_expired_request_cannot_be_approved)
{
	json_t *o = NULL;
	long long id;
	char obj[40];
	const char *body = "{\"kind\":\"ceremony.run\",\"target\":"
	                   "\"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\","
	                   "\"reason\":\"new issuing CA\"}";

	id = request_approval("ca-admin", body);
	snprintf(obj, sizeof(obj), "approval/%lld", id);
	sleep(3); /* the configuration's expiry is 2 seconds */
	refused(vote("ca-admin-2", id, "approve", NULL, &o), &o, 409, "approval-expired",
	        "expired");
	json_decref(o);
	{
		char sql[120];
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM approval_votes WHERE request_id = %lld", id);
		ck_assert_int_eq(count(sql), 0);
	}
	ck_assert_int_eq(audit_count("approval.expire", obj, "ceremony.run"), 1);
	{
		char path[64];
		snprintf(path, sizeof(path), "/api/v1/approvals/%lld", id);
		ck_assert_int_eq(api("auditor", "GET", path, NULL, &o), 200);
		ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "expired");
		json_decref(o);
	}
	/* Even straight into the table, an expired request takes no vote. */
	{
		char st[6], sql[200];
		snprintf(sql, sizeof(sql),
		         "INSERT INTO approval_votes (request_id, approver, vote) VALUES (%lld,"
		         " 'ca-admin-2', 'approve')",
		         id);
		sql_state(cad_ci, sql, st);
		ck_assert_str_eq(st, "HA001");
	}
}
END_TEST

/* hsmca keyd generate under key.generate (2 ca-admins): refused without an approved request
 * for exactly this label and type, the requester's own approval refused, another label or
 * type refused on that request, then it runs once and is audited. */
START_TEST(key_generation_runs_only_under_an_approval_for_that_key)
{
	char sha[65], body[400], sql[400], idtext[24];
	const char *gen[] = {"keyd",    "generate",   "--label", "quorum-gen", "--type",
	                     "ec-p256", "--database", pg.app_ci, NULL};
	const char *other_label[] = {"keyd",       "generate", "--label",    "quorum-gen-2",
	                             "--type",     "ec-p256",  "--database", pg.app_ci,
	                             "--approval", idtext,     NULL};
	const char *other_type[] = {"keyd",       "generate", "--label",    "quorum-gen",
	                            "--type",     "ec-p384",  "--database", pg.app_ci,
	                            "--approval", idtext,     NULL};
	struct keyd_client *c = keyd_client_new(NULL, 0);
	struct keyd_key k;
	struct keyd_err kerr;
	json_t *o = NULL;
	long long id;

	ck_assert_ptr_nonnull(c);
	sha256_hex("key.generate\nquorum-gen\nec-p256\n", sha);
	/* No approval: refused before keyd is asked, naming the target to request. */
	ck_assert_int_eq(cli("ca-admin", gen), 1);
	ck_assert_msg(strstr(cli_out, "key.generate needs 2 people's approval") &&
	                  strstr(cli_out, "key quorum-gen (ec-p256)") && strstr(cli_out, sha),
	              "%s", cli_out);
	ck_assert_int_ne(keyd_client_get_pubkey(c, "quorum-gen", &k, &kerr), KEYD_OK);

	snprintf(body, sizeof(body),
	         "{\"kind\":\"key.generate\",\"target\":\"%s\",\"reason\":\"next issuing CA\"}",
	         sha);
	id = request_approval("ca-admin", body);
	snprintf(idtext, sizeof(idtext), "%lld", id);
	/* Pending: not yet; the requester cannot approve their own. */
	ck_assert_int_eq(cli("ca-admin", gen), 1);
	ck_assert_int_ne(keyd_client_get_pubkey(c, "quorum-gen", &k, &kerr), KEYD_OK);
	refused(vote("ca-admin", id, "approve", NULL, &o), &o, 403, "self-approval", "ca-admin");
	json_decref(o);
	/* An officer is not an approver of key.generate. */
	ck_assert_int_eq(vote("officer", id, "approve", NULL, &o), 403);
	json_decref(o);
	ck_assert_int_eq(vote("ca-admin-2", id, "approve", "{\"reason\":\"ceremony plan\"}", &o),
	                 200);
	ck_assert_str_eq(jstr(json_object_get(o, "approval"), "state"), "approved");
	json_decref(o);

	/* The approval is for that label and type only. */
	ck_assert_int_eq(cli("ca-admin", other_label), 1);
	ck_assert_msg(strstr(cli_out, "not key.generate of key quorum-gen-2 (ec-p256)"), "%s",
	              cli_out);
	ck_assert_int_eq(cli("ca-admin", other_type), 1);
	ck_assert_msg(strstr(cli_out, "not key.generate of key quorum-gen (ec-p384)"), "%s",
	              cli_out);
	ck_assert_int_ne(keyd_client_get_pubkey(c, "quorum-gen-2", &k, &kerr), KEYD_OK);

	/* Approved: it runs once, names its approvers, and is executed and audited. */
	ck_assert_msg(cli("ca-admin", gen) == 0, "%s", cli_out);
	ck_assert_msg(strstr(cli_out, "(key.generate) by ca-admin, approved by ca-admin-2") &&
	                  strstr(cli_out, "BEGIN PUBLIC KEY"),
	              "%s", cli_out);
	ck_assert_int_eq(keyd_client_get_pubkey(c, "quorum-gen", &k, &kerr), KEYD_OK);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM approval_requests WHERE id = %lld AND state = 'executed'",
	         id);
	ck_assert_int_eq(count(sql), 1);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM audit_log WHERE action = 'approval.execute'"
	         " AND object = 'approval/%lld' AND outcome = 'success'"
	         " AND detail LIKE '%%generated key quorum-gen (ec-p256)%%'",
	         id);
	ck_assert_int_eq(count(sql), 1);
	/* Spent: a second run finds no approved request. */
	ck_assert_int_eq(cli("ca-admin", gen), 1);
	ck_assert_msg(strstr(cli_out, "no approved request is for key quorum-gen"), "%s", cli_out);
	keyd_client_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("approvals");
	TCase *tc;
	SRunner *sr;
	int failed;

	harness_die_init("test_approvals", cleanup);
	setup();
	tc = tcase_create("quorum");
	tcase_add_unchecked_fixture(tc, quorum_start, cad_stop);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, retire_waits_for_a_second_ca_admin_and_runs_once);
	tcase_add_test(tc, two_approvers_at_once_run_it_exactly_once);
	tcase_add_test(tc, a_rejection_ends_the_request);
	tcase_add_test(tc, each_approver_counts_once);
	tcase_add_test(tc, the_database_holds_the_rules_itself);
	tcase_add_test(tc, list_and_show);
	tcase_add_test(tc, cli_requests_lists_and_approves);
	tcase_add_test(tc, revoking_a_ca_certificate_waits_for_a_ca_admin);
	tcase_add_test(tc, ceremony_runs_only_under_an_approval_and_names_its_approvers);
	tcase_add_test(tc, restore_unwraps_only_under_an_approval);
	tcase_add_test(tc, key_recovery_needs_an_archived_key_and_a_second_officer);
	tcase_add_test(tc, recover_writes_the_archived_key_under_two_officers_once);
	tcase_add_test(tc, key_generation_runs_only_under_an_approval_for_that_key);
	suite_add_tcase(s, tc);
	tc = tcase_create("plain");
	tcase_add_unchecked_fixture(tc, plain_start, cad_stop);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, threshold_one_retires_at_once);
	tcase_add_test(tc, key_recovery_without_a_quorum_is_refused);
	tcase_add_test(tc, an_expired_request_cannot_be_approved);
	tcase_add_test(tc, bad_approval_configuration_is_refused_by_name);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	teardown();
	return (failed || harness_bad_exits) ? 1 : 0;
}
