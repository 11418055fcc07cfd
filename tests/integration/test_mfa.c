/*
 * TOTP step-up end to end (docs/mfa.md): a private PostgreSQL cluster, a throwaway keyd whose
 * grant for the test's uid (hsmca-cad's) is exactly what cad needs (the issuing key for
 * certificates, the mfa-wrap AES key for wrap and unwrap), and hsmca-cad, driven over HTTPS
 * with libcurl; codes made by the oathtool command. Each test uses its own officer, so that
 * one test's last used step and failures are not another's.
 */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include "db.h"
#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct harness_pg pg;
static char dir[256], base_url[128];
static pid_t cad_pid;
static OSSL_PROVIDER *prov_keyd, *prov_default;
static EVP_PKEY *opca_key;
static X509 *opca;

#define dir_file(name) harness_pathf(dir, "%s", name)

/* The principals: name, role (a client certificate each). */
static const char *const principals[][2] = {
    {"admin0", "ca-admin"},   {"o-revoke", "officer"},
    {"o-window", "officer"},  {"o-throttle", "officer"},
    {"o-recover", "officer"}, {"o-cli", "officer"},
    {"o-reset", "officer"},   {"o-bind", "officer"},
    {"o-bind2", "officer"},   {"ra0", "ra"},
};
#define NPRINCIPALS (sizeof(principals) / sizeof(principals[0]))

/* ---- HTTP ---- */

struct reply {
	long status;
	json_t *body;
	char retry_after[32];
};

static const struct harness_site site = {.base_url = base_url, .dir = dir};

/* who: a principal's name (its client certificate). totp: X-HSMCA-TOTP's value or NULL. */
static struct reply api(const char *who, const char *method, const char *path, const char *body,
                        const char *totp)
{
	struct harness_reply hr;
	struct reply r = {0};

	r.status = harness_http(
	    &site,
	    &(struct harness_req){
	        .who = who, .method = method, .path = path, .body = body, .totp = totp},
	    &hr);
	r.body = hr.body ? json_loads(hr.body, 0, NULL) : NULL;
	harness_reply_header(&hr, "Retry-After", 0, r.retry_after, sizeof(r.retry_after));
	harness_reply_clear(&hr);
	return r;
}

static const char *jstr(json_t *o, const char *k)
{
	return harness_jstr(o, k);
}

/* The request's status, its error code checked when want_error is not NULL. */
static void expect(struct reply r, long status, const char *want_error, const char *what)
{
	ck_assert_msg(r.status == status, "%s: HTTP %ld (want %ld): %s %s", what, r.status, status,
	              jstr(r.body, "error"), jstr(r.body, "detail"));
	if (want_error)
		ck_assert_msg(!strcmp(jstr(r.body, "error"), want_error), "%s: error %s (want %s)",
		              what, jstr(r.body, "error"), want_error);
	json_decref(r.body);
}

/* ---- the database, as its owner ---- */

static PGconn *owner(void)
{
	return harness_pg_connect(pg.owner_ci);
}

static long long count(const char *sql)
{
	return harness_pg_count_on(pg.owner_ci, sql);
}

static void sql_ok(const char *sql)
{
	harness_pg_exec_on(pg.owner_ci, sql);
}

/* ---- TOTP codes, by oathtool ---- */

/* The code of secret (base32) at time t, made by oathtool. */
static void oathtool(const char *b32, time_t t, char out[16])
{
	char cmd[256];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "oathtool --totp -b '%s' --now @%lld", b32, (long long)t);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(fgets(out, 16, p));
	ck_assert_int_eq(pclose(p), 0);
	out[strcspn(out, "\n")] = '\0';
	ck_assert_uint_eq(strlen(out), 6);
}

/* Now, but never in the last 5 s of a 30 s step: a code made for a step relative to now must
 * still be that step when cad checks it. (At most a 5 s wait, the test clock hook of an
 * integration test that cannot set cad's clock: the ±1 / ±2 steps themselves are made by
 * oathtool at chosen times, and the unit tests check the window at exact times.) */
static time_t step_start_safe_now(void)
{
	time_t t = time(NULL);

	if (t % 30 >= 25) {
		sleep((unsigned)(30 - t % 30) + 1);
		t = time(NULL);
	}
	return t;
}

/* ---- fixture ---- */

static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                       const char *san)
{
	return harness_test_cert(cn, pub, issuer, signer, ca, san, NULL);
}

static const char config_fmt[] =
    "listen: {address: 127.0.0.1, port: %d}\n"
    "tls: {certificate: %s/server.pem, key: %s/server.key, client_ca: %s/opca.pem}\n"
    "database: \"%s connect_timeout=3\"\n"
    "authorities:\n"
    "  - {name: issuing, certificate: %s/issuing.pem, key: \"keyd:label=issuing-p256\"}\n"
    "key_profiles:\n"
    "  - {name: ec, ec_curves: [P-256]}\n"
    "profiles:\n"
    "  - name: tls-server\n"
    "    authority: issuing\n"
    "    key_profile: ec\n"
    "    max_validity_days: 90\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [serverAuth]\n"
    "    subject_fields: [CN]\n"
    "    san: {dns: [\"*.example.com\"]}\n"
    "    san_required: true\n"
    "mfa:\n"
    "  wrap_key: mfa-wrap\n"
    "  issuer: hsmca test\n"
    "  max_failures: 5\n"
    "  failure_window_seconds: 300\n"
    /* ra clients are programs: their policy asks for nothing; the other roles have the
     * defaults. */
    "  step_up: {ra: []}\n";

/* hsmca-cad's grant (deploy/keyd.example.yaml): its CA key for certificates, the mfa-wrap
 * key for wrap and unwrap only. */
static const char cad_grant_fmt[] = "  - name: cad\n"
                                    "    uid: %u\n"
                                    "    grants:\n"
                                    "      - keys: [issuing-p256]\n"
                                    "        operations: [get-public-key, sign]\n"
                                    "        kinds: [certificate]\n"
                                    "      - keys: [mfa-wrap]\n"
                                    "        operations: [wrap, unwrap]\n"
                                    "      - keys: [\"*\"]\n"
                                    "        operations: [status]\n";

static void cleanup(void)
{
	harness_cad_stop(&cad_pid, dir_file("cad.log"), 0);
	harness_pg_remove(&pg);
	if (h.dir[0])
		harness_stop(&h);
}

static void setup(void)
{
	struct harness_opts o = {0};
	char clients[1024], conf[8192];
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err kerr;
	struct db *db;
	EVP_PKEY *ik;
	const char *cad_ci;
	X509 *x;
	int port;

	harness_die_init("test_mfa", cleanup);
	harness_setup_phase = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* Set-up: keys made with a broad grant ... */
	snprintf(clients, sizeof(clients),
	         "  - name: setup\n    uid: %u\n    grants:\n"
	         "      - keys: [\"*\"]\n"
	         "        operations: [\"*\", generate, wrap, unwrap]\n"
	         "        kinds: [\"*\"]\n",
	         (unsigned)getuid());
	o.clients_yaml = clients;
	if (harness_start(&h, &o) != 0)
		harness_die(__func__);
	snprintf(dir, sizeof(dir), "%s", h.dir);
	c = keyd_client_new(NULL, 0);
	if (!c ||
	    keyd_client_generate(c, "issuing-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "mfa-wrap", KEYD_KEY_AES, 256, &k, &kerr) ||
	    keyd_client_generate(c, "other-aes", KEYD_KEY_AES, 256, &k, &kerr))
		harness_die(__func__);
	keyd_client_free(c);
	harness_load_providers(&prov_keyd, &prov_default);
	ik = harness_keyd_key("issuing-p256");
	x = make_cert("hsmca mfa test issuing CA", ik, NULL, ik, 1, NULL);
	harness_write_cert(dir_file("issuing.pem"), x, 0);
	X509_free(x);
	EVP_PKEY_free(ik);
	/* ... then keyd restarted with exactly cad's grant. */
	snprintf(clients, sizeof(clients), cad_grant_fmt, (unsigned)getuid());
	if (harness_keyd_stop(&h) != 0 || harness_write_config(&h, &o) != 0 ||
	    harness_keyd_start(&h) != 0)
		harness_die(__func__);

	opca = harness_opca(dir, "hsmca mfa test operator CA", &opca_key);

	db = harness_pg_migrated(&pg, "mfa"); /* hsmca_app LOGIN: for the grants' test */
	cad_ci = harness_pg_daemon_ci(&pg, db_pgconn(db), "cad");
	for (size_t i = 0; i < NPRINCIPALS; i++) {
		EVP_PKEY *pk = EVP_EC_gen("P-256");
		harness_write_credential(dir, principals[i][0],
		                         make_cert(principals[i][0], pk, opca, opca_key, 0, NULL),
		                         pk);
		harness_db_principal(db, dir, principals[i][0], principals[i][1],
		                     !strcmp(principals[i][1], "ra") ? "tls-server" : NULL);
	}
	db_close(db);

	port = harness_free_port();
	snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port);
	snprintf(conf, sizeof(conf), config_fmt, port, dir, dir, dir, cad_ci, dir);
	harness_write_text(dir_file("cad.yaml"), conf);
	cad_pid = harness_cad_start(&site, dir_file("cad.yaml"), dir_file("cad.log"), NULL);
	harness_setup_phase = 0;
}

static void teardown(void)
{
	harness_cad_stop(&cad_pid, dir_file("cad.log"), 0);
	harness_suite_end(&h, &pg, opca, opca_key, prov_keyd, prov_default);
}

/* ---- helpers ---- */

/* A certificate issued to who (an officer or ra); its serial (hex) into serial. */
static void issue(const char *who, char serial[80])
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *e =
	    X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:www.example.com");
	BIO *b = BIO_new(BIO_s_mem());
	char *pem, *body;
	json_t *o;
	long len;
	struct reply r;

	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"www.example.com",
	                           -1, -1, 0);
	X509_REQ_set_subject_name(req, n);
	X509_REQ_set_pubkey(req, k);
	sk_X509_EXTENSION_push(exts, e);
	X509_REQ_add_extensions(req, exts);
	X509_REQ_sign(req, k, EVP_sha256());
	PEM_write_bio_X509_REQ(b, req);
	len = BIO_get_mem_data(b, &pem);
	o = json_pack("{s:s, s:s%}", "profile", "tls-server", "csr", pem, (size_t)len);
	body = json_dumps(o, JSON_COMPACT);
	r = api(who, "POST", "/api/v1/certificates", body, NULL);
	ck_assert_msg(r.status == 201, "issue: %ld %s", r.status, jstr(r.body, "detail"));
	snprintf(serial, 80, "%s", jstr(r.body, "serial"));
	ck_assert(serial[0]);
	json_decref(r.body);
	json_decref(o);
	free(body);
	BIO_free(b);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}

/* The certificate's status in the database. */
static const char *status_of(const char *serial)
{
	static char st[32];
	char sql[256];
	PGconn *c = owner();

	snprintf(sql, sizeof(sql),
	         "SELECT status FROM certificates WHERE encode(serial, 'hex') = lower('%s')",
	         serial);
	harness_pg_text(c, sql, st, sizeof(st));
	PQfinish(c);
	return st;
}

static struct reply revoke_cert(const char *who, const char *serial, const char *totp)
{
	char path[160];

	snprintf(path, sizeof(path), "/api/v1/certificates/%s/revoke", serial);
	return api(who, "POST", path, "{\"reason\": \"superseded\"}", totp);
}

/* Enrol who and confirm with oathtool's code: the secret (base32) into b32 and, when codes
 * is not NULL, the confirm reply's recovery codes (json, to decref). */
static void enrol(const char *who, char b32[64], json_t **codes)
{
	struct reply r = api(who, "POST", "/api/v1/mfa/totp", NULL, NULL);
	char code[16], body[64];

	ck_assert_msg(r.status == 201, "enrol %s: %ld %s", who, r.status, jstr(r.body, "detail"));
	snprintf(b32, 64, "%s", jstr(r.body, "secret"));
	ck_assert_uint_eq(strlen(b32), 32);
	json_decref(r.body);
	oathtool(b32, step_start_safe_now(), code);
	snprintf(body, sizeof(body), "{\"code\": \"%s\"}", code);
	r = api(who, "POST", "/api/v1/mfa/totp/confirm", body, NULL);
	ck_assert_msg(r.status == 200, "confirm %s: %ld %s", who, r.status, jstr(r.body, "detail"));
	if (codes)
		*codes = json_incref(json_object_get(r.body, "recovery_codes"));
	json_decref(r.body);
}

/* ---- tests ---- */

START_TEST(enrol_confirm_then_revoke_needs_a_fresh_code)
{
	char serial[80], serial2[80], b32[64], code[16], body[64], sql[512];
	const char *uri;
	struct reply r;
	time_t t;

	issue("o-revoke", serial);
	issue("o-revoke", serial2);
	/* Not enrolled: the policy asks for a code the principal cannot give. */
	r = revoke_cert("o-revoke", serial, NULL);
	ck_assert_str_eq(jstr(r.body, "error"), "step-up-not-enrolled");
	ck_assert_ptr_nonnull(strstr(jstr(r.body, "detail"), "o-revoke"));
	expect(r, 403, NULL, "revoke before enrolment");
	ck_assert_str_eq(status_of(serial), "issued");

	/* Enrolment: the secret, its URI and its QR code, once. */
	r = api("o-revoke", "POST", "/api/v1/mfa/totp", NULL, NULL);
	ck_assert_int_eq(r.status, 201);
	snprintf(b32, sizeof(b32), "%s", jstr(r.body, "secret"));
	uri = jstr(r.body, "otpauth_uri");
	ck_assert_msg(!strncmp(uri, "otpauth://totp/hsmca%20test:o-revoke?secret=", 44), "%s", uri);
	ck_assert_ptr_nonnull(strstr(uri, b32));
	ck_assert_int_eq(strncmp(jstr(r.body, "qr_svg"), "<svg ", 5), 0);
	ck_assert_str_eq(jstr(r.body, "state"), "pending");
	json_decref(r.body);
	/* Stored only wrapped: neither the base32 text nor the raw secret is in the row, which
	 * is as long as keyd's blob of the bound secret (1 + 12 + 13 + 4 + 20 + 16 bytes). */
	{
		/* The raw secret, base32-decoded here. */
		char hexsecret[41] = "";
		static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
		unsigned long long acc = 0;
		int bits = 0, k = 0;
		for (const char *p = b32; *p; p++) {
			acc = (acc << 5) | (unsigned long long)(strchr(al, *p) - al);
			bits += 5;
			if (bits >= 8) {
				bits -= 8;
				sprintf(hexsecret + 2 * k++, "%02x",
				        (unsigned)((acc >> bits) & 0xff));
			}
		}
		ck_assert_int_eq(k, 20);
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM principal_totp t JOIN principals p ON"
		         " p.id = t.principal_id WHERE p.name = 'o-revoke' AND t.state = 'pending'"
		         " AND position(convert_to('%s', 'UTF8') IN t.secret_wrapped) = 0"
		         " AND position(decode('%s', 'hex') IN t.secret_wrapped) = 0"
		         " AND octet_length(t.secret_wrapped) = 1 + 12 + 37 + 16",
		         b32, hexsecret);
		ck_assert_int_eq(count(sql), 1);
	}
	/* Pending is not enough to revoke. */
	r = revoke_cert("o-revoke", serial, NULL);
	expect(r, 403, "step-up-not-enrolled", "revoke while pending");
	/* A wrong first code does not confirm. */
	r = api("o-revoke", "POST", "/api/v1/mfa/totp/confirm", "{\"code\": \"000000\"}", NULL);
	expect(r, 400, "invalid-code", "confirm with a wrong code");
	t = step_start_safe_now();
	oathtool(b32, t, code);
	snprintf(body, sizeof(body), "{\"code\": \"%s\"}", code);
	r = api("o-revoke", "POST", "/api/v1/mfa/totp/confirm", body, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r.body, "recovery_codes")), 10);
	expect(r, 200, NULL, "confirm");
	/* Active; enrolling again is refused. */
	r = api("o-revoke", "GET", "/api/v1/mfa", NULL, NULL);
	ck_assert_str_eq(jstr(r.body, "state"), "active");
	ck_assert_int_eq(json_integer_value(json_object_get(r.body, "recovery_codes_left")), 10);
	expect(r, 200, NULL, "status");
	r = api("o-revoke", "POST", "/api/v1/mfa/totp", NULL, NULL);
	expect(r, 409, "mfa-active", "enrol twice");

	/* No code: 401 step-up, and nothing changes. */
	r = revoke_cert("o-revoke", serial, NULL);
	ck_assert_ptr_nonnull(strstr(jstr(r.body, "detail"), "certificate.revoke"));
	expect(r, 401, "step-up", "revoke without a code");
	ck_assert_str_eq(status_of(serial), "issued");
	/* The confirming code was used: it does not step up again. */
	r = revoke_cert("o-revoke", serial, code);
	expect(r, 401, "step-up", "revoke with the confirming code");
	ck_assert_str_eq(status_of(serial), "issued");
	/* A fresh code (the next step's, within the window) revokes. */
	oathtool(b32, t + 30, code);
	r = revoke_cert("o-revoke", serial, code);
	expect(r, 200, NULL, "revoke with a fresh code");
	ck_assert_str_eq(status_of(serial), "revoked");
	/* The same code again, for another certificate: refused, nothing changed. */
	r = revoke_cert("o-revoke", serial2, code);
	expect(r, 401, "step-up", "replayed code");
	ck_assert_str_eq(status_of(serial2), "issued");
	/* Audited: the step-up, the failures, never a code. */
	ck_assert_int_ge(count("SELECT count(*) FROM audit_log WHERE actor = 'o-revoke' AND "
	                       "action = 'mfa.step-up' AND outcome = 'success'"),
	                 1);
	ck_assert_int_ge(count("SELECT count(*) FROM audit_log WHERE actor = 'o-revoke' AND "
	                       "action = 'certificate.revoke' AND outcome = 'denied' AND "
	                       "detail LIKE '%\"error\":\"step-up\"%'"),
	                 3);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action IN ('mfa.enrol', "
	                       "'mfa.confirm') AND actor = 'o-revoke' AND outcome = 'success'"),
	                 2);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM audit_log WHERE detail LIKE '%%%s%%' OR object LIKE '%%%s%%'"
	         " OR detail LIKE '%%%s%%'",
	         code, code, b32);
	ck_assert_int_eq(count(sql), 0);
	ck_assert(!strstr(harness_slurp(dir_file("cad.log")), b32));
}
END_TEST

START_TEST(one_step_either_side_is_accepted_two_are_not)
{
	char s[4][80], b32[64], code[16];
	time_t t;

	for (int i = 0; i < 4; i++)
		issue("o-window", s[i]);
	enrol("o-window", b32, NULL);
	/* Two steps off either way: refused. (The confirming code used step now.) */
	t = step_start_safe_now();
	oathtool(b32, t + 60, code);
	expect(revoke_cert("o-window", s[0], code), 401, "step-up", "+2 steps");
	oathtool(b32, t + 90, code);
	expect(revoke_cert("o-window", s[0], code), 401, "step-up", "+3 steps");
	ck_assert_str_eq(status_of(s[0]), "issued");
	/* One step ahead: accepted; then one behind is older than the last used: refused. */
	oathtool(b32, t + 30, code);
	expect(revoke_cert("o-window", s[0], code), 200, NULL, "+1 step");
	oathtool(b32, t - 30, code);
	expect(revoke_cert("o-window", s[1], code), 401, "step-up", "-1 step after +1 was used");
	oathtool(b32, t - 60, code);
	expect(revoke_cert("o-window", s[1], code), 401, "step-up", "-2 steps");
	ck_assert_str_eq(status_of(s[1]), "issued");
	/* One step behind on a fresh last step: back the last used step off in the database
	 * (what a later clock would see), then -1 passes and -2 does not. */
	sql_ok("UPDATE principal_totp SET last_step = 0 FROM principals p WHERE p.id = "
	       "principal_id AND p.name = 'o-window'");
	oathtool(b32, t - 60, code);
	expect(revoke_cert("o-window", s[1], code), 401, "step-up", "-2 steps, fresh");
	oathtool(b32, t - 30, code);
	expect(revoke_cert("o-window", s[1], code), 200, NULL, "-1 step");
	ck_assert_str_eq(status_of(s[1]), "revoked");
}
END_TEST

START_TEST(five_failures_throttle_with_retry_after)
{
	char serial[80], b32[64], code[16];
	struct reply r;

	issue("o-throttle", serial);
	enrol("o-throttle", b32, NULL);
	for (int i = 0; i < 5; i++) {
		/* a wrong code for this secret, barring a one in a million match */
		r = revoke_cert("o-throttle", serial, "123456");
		ck_assert_msg(r.status == 401, "failure %d: %ld", i, r.status);
		json_decref(r.body);
	}
	oathtool(b32, step_start_safe_now() + 30, code);
	r = revoke_cert("o-throttle", serial, code);
	ck_assert_str_eq(jstr(r.body, "error"), "step-up-throttled");
	ck_assert_msg(atoi(r.retry_after) > 0 && atoi(r.retry_after) <= 300, "Retry-After \"%s\"",
	              r.retry_after);
	expect(r, 429, NULL, "a valid code while throttled");
	ck_assert_str_eq(status_of(serial), "issued");
	/* The window closes (moved into the past here): the same code passes. */
	sql_ok("UPDATE principal_totp SET failed_since = now() - interval '301 seconds' FROM "
	       "principals p WHERE p.id = principal_id AND p.name = 'o-throttle'");
	expect(revoke_cert("o-throttle", serial, code), 200, NULL, "after the window");
	ck_assert_int_ge(count("SELECT count(*) FROM audit_log WHERE actor = 'o-throttle' AND "
	                       "outcome = 'denied' AND detail LIKE '%step-up-throttled%'"),
	                 1);
}
END_TEST

START_TEST(recovery_code_works_once_and_disables)
{
	char s1[80], s2[80], b32[64];
	json_t *codes = NULL;
	char body[128];
	const char *rc0, *rc1;

	issue("o-recover", s1);
	issue("o-recover", s2);
	enrol("o-recover", b32, &codes);
	rc0 = json_string_value(json_array_get(codes, 0));
	rc1 = json_string_value(json_array_get(codes, 1));
	ck_assert_ptr_nonnull(rc0);
	/* Hashed: the code's text is nowhere in the table. */
	snprintf(body, sizeof(body),
	         "SELECT count(*) FROM principal_recovery_codes WHERE position(convert_to('%s', "
	         "'UTF8') IN hash) > 0",
	         rc0);
	ck_assert_int_eq(count(body), 0);
	expect(revoke_cert("o-recover", s1, rc0), 200, NULL, "a recovery code");
	ck_assert_str_eq(status_of(s1), "revoked");
	expect(revoke_cert("o-recover", s2, rc0), 401, "step-up", "the recovery code again");
	ck_assert_str_eq(status_of(s2), "issued");
	/* Disabling needs a code: none, a wrong one, then a recovery code. */
	expect(api("o-recover", "POST", "/api/v1/mfa/totp/disable", "{}", NULL), 400, "bad-request",
	       "disable without a code");
	expect(api("o-recover", "POST", "/api/v1/mfa/totp/disable",
	           "{\"code\": \"aaaa-bbbb-cccc-"
	           "dddd\"}",
	           NULL),
	       401, "invalid-code", "disable with a wrong code");
	snprintf(body, sizeof(body), "{\"code\": \"%s\"}", rc1);
	expect(api("o-recover", "POST", "/api/v1/mfa/totp/disable", body, NULL), 200, NULL,
	       "disable with a recovery code");
	ck_assert_int_eq(count("SELECT count(*) FROM principal_totp t JOIN principals p ON p.id = "
	                       "t.principal_id WHERE p.name = 'o-recover' AND t.state = 'disabled' "
	                       "AND t.secret_wrapped IS NULL"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM principal_recovery_codes c JOIN principals p "
	                       "ON p.id = c.principal_id WHERE p.name = 'o-recover' AND "
	                       "c.used_at IS NULL"),
	                 0);
	expect(revoke_cert("o-recover", s2, NULL), 403, "step-up-not-enrolled", "after disabling");
	json_decref(codes);
}
END_TEST

START_TEST(a_role_whose_policy_needs_nothing_is_not_asked)
{
	char serial[80];
	struct reply r;

	issue("ra0", serial);
	expect(revoke_cert("ra0", serial, NULL), 200, NULL, "ra revokes without a code");
	ck_assert_str_eq(status_of(serial), "revoked");
	r = api("ra0", "GET", "/api/v1/mfa", NULL, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(r.body, "step_up")), 0);
	expect(r, 200, NULL, "ra's status");
	/* Issuance is not in the officers' default policy either. */
	issue("o-reset", serial);
}
END_TEST

START_TEST(ca_admin_resets_another_principal_with_its_own_step_up)
{
	char b32a[64], b32o[64], code[16], serial[80];
	struct reply r;

	enrol("o-reset", b32o, NULL);
	/* Only a ca-admin may reset; an officer may not reset another. */
	expect(api("o-revoke", "POST", "/api/v1/principals/o-reset/mfa/reset", NULL, NULL), 403,
	       "role-not-permitted", "officer resets");
	/* A principal change: the ca-admin steps up too. */
	expect(api("admin0", "POST", "/api/v1/principals/o-reset/mfa/reset", NULL, NULL), 403,
	       "step-up-not-enrolled", "ca-admin without enrolment");
	enrol("admin0", b32a, NULL);
	expect(api("admin0", "POST", "/api/v1/principals/o-reset/mfa/reset", NULL, NULL), 401,
	       "step-up", "ca-admin without a code");
	oathtool(b32a, step_start_safe_now() + 30, code);
	r = api("admin0", "POST", "/api/v1/principals/o-reset/mfa/reset", NULL, code);
	ck_assert(json_is_true(json_object_get(r.body, "changed")));
	expect(r, 200, NULL, "ca-admin resets with a code");
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE actor = 'admin0' AND action = "
	                       "'principal.mfa.reset' AND object = 'o-reset' AND outcome = "
	                       "'success'"),
	                 1);
	issue("o-reset", serial);
	expect(revoke_cert("o-reset", serial, NULL), 403, "step-up-not-enrolled",
	       "after the reset");
	expect(api("admin0", "POST", "/api/v1/principals/nobody/mfa/reset", NULL, NULL), 401,
	       "step-up", "unknown principal: step-up comes first");
}
END_TEST

START_TEST(a_secret_wrapped_for_another_principal_does_not_unwrap)
{
	char b32a[64], b32b[64], code[16], serial[80];
	struct reply r;

	/* o-bind and o-bind2 both enrol; o-bind's blob copied into o-bind2's row must not give
	 * o-bind2 o-bind's secret. */
	enrol("o-bind", b32a, NULL);
	enrol("o-bind2", b32b, NULL);
	sql_ok("UPDATE principal_totp SET secret_wrapped = (SELECT t.secret_wrapped FROM "
	       "principal_totp t JOIN principals p ON p.id = t.principal_id WHERE p.name = "
	       "'o-bind') FROM principals p WHERE p.id = principal_totp.principal_id AND p.name = "
	       "'o-bind2'");
	issue("o-bind2", serial);
	oathtool(b32a, step_start_safe_now() + 30, code);
	r = revoke_cert("o-bind2", serial, code);
	expect(r, 500, "mfa-secret-mismatch", "another principal's blob");
	ck_assert_str_eq(status_of(serial), "issued");
}
END_TEST

/* cad's keyd grant (the one this keyd runs with) allows wrap and unwrap with mfa-wrap and
 * nothing else with it: no other AES key, no signing with it, no key generation. */
START_TEST(keyd_grant_is_wrap_and_unwrap_of_mfa_wrap_only)
{
	struct keyd_client *c = keyd_client_new(NULL, 5000);
	uint8_t blob[128], back[64], sig[512];
	size_t blen = sizeof(blob), bl = sizeof(back), sl = sizeof(sig);
	uint8_t digest[32] = {0};
	struct keyd_key k;
	struct keyd_err e;

	ck_assert_int_eq(keyd_client_wrap(c, "mfa-wrap", (const uint8_t *)"x", 1, blob, &blen, &e),
	                 KEYD_OK);
	ck_assert_int_eq(keyd_client_unwrap(c, "mfa-wrap", blob, blen, back, &bl, &e), KEYD_OK);
	blen = sizeof(blob);
	ck_assert_int_eq(keyd_client_wrap(c, "other-aes", (const uint8_t *)"x", 1, blob, &blen, &e),
	                 KEYD_E_DENIED);
	ck_assert_int_eq(keyd_client_sign(c, "mfa-wrap", KEYD_ALG_ECDSA, KEYD_HASH_SHA256, 0,
	                                  digest, 32, sig, &sl, &e),
	                 KEYD_E_DENIED);
	ck_assert_int_eq(keyd_client_generate(c, "mfa-wrap-2", KEYD_KEY_AES, 256, &k, &e),
	                 KEYD_E_DENIED);
	keyd_client_free(c);
}
END_TEST

/* 1 when sql, run over conninfo ci, is refused for want of privilege (SQLSTATE 42501). */
static int refused(const char *ci, const char *sql)
{
	PGconn *c = PQconnectdb(ci);
	PGresult *r;
	int denied;

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
	r = PQexec(c, sql);
	denied = PQresultStatus(r) == PGRES_FATAL_ERROR &&
	         !strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE)
	                     ? PQresultErrorField(r, PG_DIAG_SQLSTATE)
	                     : "",
	                 "42501");
	PQclear(r);
	PQfinish(c);
	return denied;
}

/* Only hsmca-cad's role reads and changes the enrolments, and it cannot delete them; ocspd's,
 * crld's and the command line's roles cannot read them at all. */
START_TEST(only_cads_role_reaches_the_tables_and_never_deletes)
{
	PGconn *o = owner();
	const char *cad = harness_pg_daemon_ci(&pg, o, "cad");
	const char *ocspd = harness_pg_daemon_ci(&pg, o, "ocspd");
	const char *crld = harness_pg_daemon_ci(&pg, o, "crld");
	static const char *const tables[] = {"principal_totp", "principal_recovery_codes"};

	PQfinish(o);
	for (size_t i = 0; i < 2; i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
		ck_assert_msg(!refused(cad, sql), "cad: %s", sql);
		ck_assert_msg(refused(ocspd, sql), "ocspd: %s", sql);
		ck_assert_msg(refused(crld, sql), "crld: %s", sql);
		ck_assert_msg(refused(pg.app_ci, sql), "hsmca_app: %s", sql);
		snprintf(sql, sizeof(sql), "DELETE FROM %s", tables[i]);
		ck_assert_msg(refused(cad, sql), "cad: %s", sql);
		snprintf(sql, sizeof(sql), "TRUNCATE %s", tables[i]);
		ck_assert_msg(refused(cad, sql), "cad: %s", sql);
	}
}
END_TEST

/* The hsmca command line: mfa enrol, confirm, status; a step-up answered from HSMCA_TOTP. */
START_TEST(cli_enrols_confirms_and_steps_up_from_the_environment)
{
	char out[512], svg[512], code[16], b32[64] = "", serial[80];
	char *argv[12];
	const char *text, *p;
	int n = 0;

	snprintf(out, sizeof(out), "%s/cli.out", dir);
	snprintf(svg, sizeof(svg), "%s/o-cli.svg", dir);
	harness_cli_env(&site, "o-cli");
	unsetenv("HSMCA_TOTP");
	argv[n++] = getenv("HSMCA_CLI_BIN");
	argv[n++] = "mfa";
	argv[n++] = "enrol";
	argv[n++] = "--svg";
	argv[n++] = svg;
	argv[n] = NULL;
	ck_assert_int_eq(harness_run(argv, out), 0);
	text = harness_slurp(out);
	ck_assert_ptr_nonnull(strstr(text, "otpauth://totp/"));
	p = strstr(text, "secret: ");
	ck_assert_ptr_nonnull(p);
	sscanf(p + 8, "%63[A-Z2-7]", b32);
	ck_assert_uint_eq(strlen(b32), 32);
	ck_assert_int_eq(strncmp(harness_slurp(svg), "<svg ", 5), 0);
	oathtool(b32, step_start_safe_now(), code);
	argv[2] = "confirm";
	argv[3] = code;
	argv[4] = NULL;
	ck_assert_int_eq(harness_run(argv, out), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(out), "recovery codes"));
	argv[2] = "status";
	argv[3] = NULL;
	ck_assert_int_eq(harness_run(argv, out), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(out), "\"active\""));
	/* hsmca revoke: the server asks to step up, the CLI answers from HSMCA_TOTP once. */
	issue("o-cli", serial);
	argv[1] = "revoke";
	argv[2] = serial;
	argv[3] = "--reason";
	argv[4] = "superseded";
	argv[5] = NULL;
	ck_assert_int_ne(harness_run(argv, out), 0); /* no code, no terminal: refused */
	ck_assert_msg(strstr(harness_slurp(out), "(step-up, HTTP 401)") &&
	                  strstr(harness_slurp(out), "HSMCA_TOTP"),
	              "%s", harness_slurp(out));
	ck_assert_str_eq(status_of(serial), "issued");
	oathtool(b32, step_start_safe_now() + 30, code);
	setenv("HSMCA_TOTP", code, 1);
	ck_assert_int_eq(harness_run(argv, out), 0);
	ck_assert_str_eq(status_of(serial), "revoked");
	/* mfa disable with a code: the one the revocation used is refused ... */
	unsetenv("HSMCA_TOTP");
	argv[1] = "mfa";
	argv[2] = "disable";
	argv[3] = "--code";
	argv[4] = code;
	argv[5] = NULL;
	ck_assert_int_ne(harness_run(argv, out), 0);
	ck_assert_str_eq(status_of(serial), "revoked");
	/* ... and passes once the last used step is older (what a later clock would see). */
	sql_ok("UPDATE principal_totp SET last_step = 0 FROM principals p WHERE p.id = "
	       "principal_id AND p.name = 'o-cli'");
	ck_assert_int_eq(harness_run(argv, out), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM principal_totp t JOIN principals p ON p.id = "
	                       "t.principal_id WHERE p.name = 'o-cli' AND t.state = 'disabled'"),
	                 1);
	/* Enrolling again without --svg draws the QR code on the terminal: half blocks, a
	 * line per two module rows (a version-3 or larger code and its quiet zone). */
	argv[2] = "enrol";
	argv[3] = NULL;
	ck_assert_int_eq(harness_run(argv, out), 0);
	text = harness_slurp(out);
	ck_assert_ptr_nonnull(strstr(text, "\u2580"));
	ck_assert_ptr_nonnull(strstr(text, "\u2584"));
	ck_assert_ptr_nonnull(strstr(text, "secret: "));
	n = 0; /* lines that start with the left quiet zone's two light modules */
	for (p = text; p; p = strchr(p, '\n'))
		if (!strncmp(*p == '\n' ? ++p : p, "\u2588\u2588", 6))
			n++;
	ck_assert_int_ge(n, 12); /* (21 + 4) / 2 for the smallest code */
	unsetenv("HSMCA_CLIENT_CERT");
	unsetenv("HSMCA_CLIENT_KEY");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mfa");
	TCase *tc = tcase_create("mfa");
	SRunner *sr;
	int failed;

	if (harness_token_skip())
		return 77;
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, enrol_confirm_then_revoke_needs_a_fresh_code);
	tcase_add_test(tc, one_step_either_side_is_accepted_two_are_not);
	tcase_add_test(tc, five_failures_throttle_with_retry_after);
	tcase_add_test(tc, recovery_code_works_once_and_disables);
	tcase_add_test(tc, a_role_whose_policy_needs_nothing_is_not_asked);
	tcase_add_test(tc, ca_admin_resets_another_principal_with_its_own_step_up);
	tcase_add_test(tc, a_secret_wrapped_for_another_principal_does_not_unwrap);
	tcase_add_test(tc, keyd_grant_is_wrap_and_unwrap_of_mfa_wrap_only);
	tcase_add_test(tc, only_cads_role_reaches_the_tables_and_never_deletes);
	tcase_add_test(tc, cli_enrols_confirms_and_steps_up_from_the_environment);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr) + harness_bad_exits;
	srunner_free(sr);
	return failed ? 1 : 0;
}
