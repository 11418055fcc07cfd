/*
 * hsmca-cad end to end: a private PostgreSQL cluster (tests/pg/pgtest), a throwaway keyd
 * (harness) holding the CA keys, and hsmca-cad itself, driven over HTTPS with libcurl. One
 * set-up for the whole suite (made in the parent, so a failing test leaves no server behind);
 * each test makes its own objects.
 */
#include <check.h>
#include <ctype.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include "db.h"
#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct harness_pg pg;
static const char *cad_ci; /* conninfo of hsmca-cad, its own login role */
static char dir[256];      /* = h.dir: certificates, keys, configuration, cad's log */
static char base_url[128];
static pid_t cad_pid;
static OSSL_PROVIDER *prov_keyd, *prov_default;

static void cleanup(void);

static const char *const roles[] = {"ca-admin", "admin", "officer", "auditor", "operator", "ra"};
#define NROLES 6

/* ---- processes and files ---- */

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* dir/name, in a rotating buffer of the harness. */
#define dir_file(name) harness_pathf(dir, "%s", name)

/* ---- certificates for the fixture ---- */

/* issuer NULL: self-signed. Valid from an hour ago for ten years and ten days (so that a
 * certificate of the longest profile, 3650 days, lies inside its issuer's validity, as the
 * linter requires: rule validity_within_issuer); serials from 1000 up. */
static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                       const char *san, const char *md)
{
	return harness_test_cert(cn, pub, issuer, signer, ca, san, md);
}

/* ---- HTTP ---- */

static const struct harness_site site = {.base_url = base_url, .dir = dir};

/* who: NULL (no credentials), "token:SECRET", or a role (its client certificate). Returns the
 * HTTP status (0: no answer); *out (may be NULL) gets the JSON body. */
static long api(const char *who, const char *method, const char *path, const char *body,
                json_t **out)
{
	return harness_api(&site, who, method, path, body, out);
}

/* GET /api/v1/whoami as who: its HTTP status (0: no answer), libcurl's result in *rc. */
static long whoami(const char *who, CURLcode *rc)
{
	struct harness_reply r;
	long st = harness_http(
	    &site, &(struct harness_req){.who = who, .method = "GET", .path = "/api/v1/whoami"},
	    &r);

	*rc = r.rc;
	harness_reply_clear(&r);
	return st;
}

/* A request (whoami()) reached cad and was turned away in TLS: it connected (cad is up) and
 * got no HTTP answer. Callers also show a request that works just before. */
static int refused_by_server(CURLcode rc)
{
	return rc != CURLE_OK && rc != CURLE_COULDNT_CONNECT && rc != CURLE_OPERATION_TIMEDOUT &&
	       rc != CURLE_COULDNT_RESOLVE_HOST;
}

static const char *jstr(json_t *o, const char *k)
{
	return harness_jstr(o, k);
}

/* ---- the database, as its owner ---- */

static struct db *owner_db(void)
{
	return harness_db_connect(pg.owner_ci);
}

static long long count(const char *sql)
{
	return harness_pg_count_on(pg.owner_ci, sql);
}

static void sql_ok(const char *sql)
{
	harness_pg_exec_on(pg.owner_ci, sql);
}

/* ---- CSRs ---- */

/* subject: "/CN=x/O=y" style; san: OpenSSL config form ("DNS:a,IP:1.2.3.4") or NULL. */
static char *make_csr(EVP_PKEY *k, const char *subject, const char *san)
{
	return harness_make_csr(k, subject, san);
}

static char *issue_body(const char *profile, const char *csr)
{
	json_t *o = json_pack("{s:s, s:s}", "profile", profile, "csr", csr);
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return s;
}

/* Issue and return the response (201 asserted). */
static json_t *issue_ok(const char *who, const char *profile, EVP_PKEY *k, const char *subject,
                        const char *san)
{
	char *csr = make_csr(k, subject, san), *body = issue_body(profile, csr);
	json_t *o = NULL;
	long st = api(who, "POST", "/api/v1/certificates", body, &o);

	ck_assert_msg(st == 201, "issue %s: %ld %s", profile, st, o ? jstr(o, "detail") : "");
	free(csr);
	free(body);
	return o;
}

static X509 *pem_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

	BIO_free(b);
	ck_assert_ptr_nonnull(x);
	return x;
}

/* ---- fixture ---- */

static EVP_PKEY *opca_key;
static X509 *opca;

static void client_cert(const char *name)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	harness_write_credential(dir, name, make_cert(name, k, opca, opca_key, 0, NULL, "SHA256"),
	                         k);
}

/* The operator-auth CA's CRL, opca.crl, listing the certificates in revoked (PEM files by
 * name; NULL-terminated). */
static void write_opca_crl(const char *const *revoked)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	FILE *f;
	char p[512];

	if (!crl || !t || !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(opca)) ||
	    !X509_gmtime_adj(t, -60) || !X509_CRL_set1_lastUpdate(crl, t) ||
	    !X509_gmtime_adj(t, 86400) || !X509_CRL_set1_nextUpdate(crl, t))
		harness_die(__func__);
	for (size_t i = 0; revoked && revoked[i]; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		X509 *x = NULL;
		path_of(p, sizeof(p), revoked[i]);
		if (!(f = fopen(p, "r")) || !(x = PEM_read_X509(f, NULL, NULL, NULL)))
			harness_die(__func__);
		fclose(f);
		X509_gmtime_adj(t, -30);
		if (!r || !X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(x)) ||
		    !X509_REVOKED_set_revocationDate(r, t) || !X509_CRL_add0_revoked(crl, r))
			harness_die(__func__);
		X509_free(x);
	}
	if (!X509_CRL_sort(crl) || !X509_CRL_sign(crl, opca_key, EVP_sha256()))
		harness_die(__func__);
	path_of(p, sizeof(p), "opca.crl.tmp");
	if (!(f = fopen(p, "w")) || !PEM_write_X509_CRL(f, crl) || fclose(f) != 0)
		harness_die(__func__);
	{
		char to[512];
		path_of(to, sizeof(to), "opca.crl");
		if (rename(p, to) != 0)
			harness_die(__func__);
	}
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
}

static void register_principal(struct db *db, const char *role, const char *profiles)
{
	harness_db_principal(db, dir, role, role, profiles);
}

static const char config_fmt[] =
    "listen: {address: 127.0.0.1, port: %d}\n"
    "tls: {certificate: %s/server.pem, key: %s/server.key, client_ca: %s/opca.pem,\n"
    "      client_crl: %s/opca.crl}\n"
    "database: \"%s connect_timeout=3\"\n"
    "limits: {max_body_bytes: 16384, timeout_seconds: 20, max_connections: 40}\n"
    "audit: {checkpoint_key: \"keyd:label=audit-p256\", checkpoint_interval_seconds: 1}\n"
    "key_archive: {key: key-archive-2026}\n"
    "authorities:\n"
    "  - {name: issuing, certificate: %s/issuing.pem, key: \"keyd:label=issuing-p256\"}\n"
    "  - {name: codesign, certificate: %s/codesign.pem, key: \"keyd:label=codesign-p384\",\n"
    "     crl_base_url: \"http://crl.test/\", crl_shards: 4}\n"
    "key_profiles:\n"
    "  - {name: standard, rsa_min_bits: 2048, rsa_max_bits: 4096, ec_curves: [P-256, P-384]}\n"
    "  - {name: ec-only, ec_curves: [P-256]}\n"
    "profiles:\n"
    "  - name: tls-server\n"
    "    authority: issuing\n"
    "    key_profile: standard\n"
    "    max_validity_days: 397\n"
    "    key_usage: [digitalSignature, encipherment]\n"
    "    extended_key_usage: [serverAuth]\n"
    "    subject_fields: [CN, O]\n"
    "    san: {dns: [\"*.example.com\", example.com], ip: [\"10.*\"]}\n"
    "    san_required: true\n"
    "    policies: [2.23.140.1.2.1, 1.3.6.1.4.1.99999.1.2]\n"
    "    cps_uri: \"https://cps.test/cps\"\n"
    "  - name: tls-uri\n"
    "    authority: issuing\n"
    "    key_profile: standard\n"
    "    max_validity_days: 30\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [serverAuth]\n"
    "    subject_fields: [CN]\n"
    "    san: {uri: [\"urn:svc:*\"]}\n"
    "    san_required: true\n"
    "  - name: tls-client\n"
    "    authority: issuing\n"
    "    key_profile: standard\n"
    "    max_validity_days: 365\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [clientAuth]\n"
    "    subject_fields: [CN, O, OU]\n"
    "    subject_cn_required: true\n"
    "    san: {email: [\"*@example.com\"]}\n"
    "  - name: device\n"
    "    authority: issuing\n"
    "    key_profile: ec-only\n"
    "    max_validity_days: 3650\n"
    "    key_usage: [digitalSignature, keyAgreement]\n"
    "    extended_key_usage: [clientAuth]\n"
    "    subject_fields: [CN, serialNumber]\n"
    "    subject_cn_required: true\n"
    "    san: {uri: [\"urn:dev:*\"]}\n"
    "  - name: email\n"
    "    authority: issuing\n"
    "    key_profile: standard\n"
    "    max_validity_days: 730\n"
    "    key_usage: [digitalSignature, keyEncipherment, nonRepudiation]\n"
    "    extended_key_usage: [emailProtection]\n"
    "    subject_fields: [CN, emailAddress]\n"
    "    san: {email: [\"*@example.com\"]}\n"
    "    san_required: true\n"
    "  - name: enc\n"
    "    authority: issuing\n"
    "    key_profile: standard\n"
    "    max_validity_days: 365\n"
    "    key_usage: [encipherment, keyAgreement]\n"
    "    extended_key_usage: [emailProtection]\n"
    "    subject_fields: [CN, emailAddress]\n"
    "    san: {email: [\"*@example.com\"]}\n"
    "    server_keygen: true\n"
    "    archive_key: true\n"
    "  - name: code-signing\n"
    "    authority: codesign\n"
    "    key_profile: standard\n"
    "    max_validity_days: 1095\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [codeSigning]\n"
    "    subject_fields: [CN, O, C]\n"
    "    subject_cn_required: true\n";

/* hsmca-cad --bootstrap-admin NAME --admin-cert NAME.pem; its exit status. */
static int bootstrap(const char *name)
{
	char conf[512], cert[512], bin[512], log[512];
	char *argv[] = {bin,          "--config",     conf, "--bootstrap-admin",
	                (char *)name, "--admin-cert", cert, NULL};

	path_of(conf, sizeof(conf), "cad.yaml");
	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
	path_of(log, sizeof(log), "bootstrap.log");
	snprintf(bin, sizeof(bin), "%s/ca-core/cad/hsmca-cad", getenv("HSMCA_BUILD"));
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
	return harness_run(argv, log);
}

static void cad_start(void)
{
	cad_pid = harness_cad_start(&site, dir_file("cad.yaml"), dir_file("cad.log"), NULL);
}

/* keyd's clients: this test's uid (and cad's), with wrap on the archive key or without. */
static void keyd_clients(char *out, size_t n, int wrap)
{
	snprintf(out, n,
	         "  - name: test\n"
	         "    uid: %u\n"
	         "    grants:\n"
	         "      - keys: [\"*\"]\n"
	         "        operations: [\"*\", generate]\n"
	         "        kinds: [\"*\", digest]\n"
	         "%s",
	         (unsigned)getuid(),
	         wrap ? "      - keys: [key-archive-2026]\n"
	                "        operations: [wrap]\n"
	              : "");
}

static void setup(void)
{
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err kerr;
	struct db *db;
	EVP_PKEY *ik, *ck;
	X509 *x;
	char conf[8192], clients[1024];
	int port;

	harness_setup_phase = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* The one uid of this test (and of hsmca-cad) gets what cad's grant gives in the
	 * quickstart: every key for signing, and wrap, not unwrap, with the key archive's key. */
	keyd_clients(clients, sizeof(clients), 1);
	if (harness_start(&h, &(struct harness_opts){.clients_yaml = clients}) != 0)
		harness_die(__func__);
	snprintf(dir, sizeof(dir), "%s", h.dir);
	c = keyd_client_new(NULL, 0);
	if (!c ||
	    keyd_client_generate(c, "issuing-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "codesign-p384", KEYD_KEY_EC, KEYD_CURVE_P384, &k, &kerr) ||
	    keyd_client_generate(c, "audit-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "key-archive-2026", KEYD_KEY_AES, 256, &k, &kerr))
		harness_die(__func__);
	keyd_client_free(c);
	harness_load_providers(&prov_keyd, &prov_default);

	/* The CAs: self-signed, their keys in keyd. */
	ik = harness_keyd_key("issuing-p256");
	x = make_cert("hsmca test issuing CA", ik, NULL, ik, 1, NULL, "SHA256");
	harness_write_cert(dir_file("issuing.pem"), x, 0);
	X509_free(x);
	EVP_PKEY_free(ik);
	ck = harness_keyd_key("codesign-p384");
	x = make_cert("hsmca test code signing CA", ck, NULL, ck, 1, NULL, "SHA384");
	harness_write_cert(dir_file("codesign.pem"), x, 0);
	X509_free(x);
	EVP_PKEY_free(ck);

	/* The operator-auth CA, the server's certificate, a client certificate per role, and
	 * one principal who is not registered. */
	opca = harness_opca(dir, "hsmca test operator CA", &opca_key);
	for (int i = 0; i < NROLES; i++)
		client_cert(roles[i]);
	client_cert("stranger");
	/* An officer whose certificate the operator-auth CA will revoke, and one whose
	 * certificate has expired. */
	client_cert("revokee");
	{
		EVP_PKEY *k = EVP_EC_gen("P-256");
		X509 *e = make_cert("expired-op", k, opca, opca_key, 0, NULL, "SHA256");
		if (!X509_gmtime_adj(X509_getm_notBefore(e), -7200) ||
		    !X509_gmtime_adj(X509_getm_notAfter(e), -3600) ||
		    !X509_sign(e, opca_key, EVP_sha256()))
			harness_die(__func__);
		harness_write_cert(dir_file("expired-op.pem"), e, 0);
		harness_write_key(dir_file("expired-op.key"), k);
		X509_free(e);
		EVP_PKEY_free(k);
	}
	write_opca_crl(NULL);

	/* The database. */
	db = harness_pg_migrated(&pg, "cad");
	/* The daemon connects as its own role (migration 0011), as in the quickstart. */
	cad_ci = harness_pg_daemon_ci(&pg, db_pgconn(db), "cad");
	/* The first ca-admin comes from hsmca-cad --bootstrap-admin (tested below); the others
	 * straight into the database. */
	for (int i = 1; i < NROLES; i++)
		register_principal(db, roles[i], !strcmp(roles[i], "ra") ? "tls-server" : "");
	harness_db_principal(db, dir, "revokee", "officer", NULL);
	harness_db_principal(db, dir, "expired-op", "officer", NULL);
	db_close(db);

	port = harness_free_port();
	snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port);
	snprintf(conf, sizeof(conf), config_fmt, port, dir, dir, dir, dir, cad_ci, dir, dir);
	harness_write_text(dir_file("cad.yaml"), conf);
	if (bootstrap("ca-admin") != 0)
		harness_die(__func__);
	harness_setup_phase = 0;
}

/* hsmca-cad runs under ASan/LSan here: a leak or any other report at its clean exit (SIGTERM)
 * fails the suite through harness_bad_exits (issue 9: no leaks in any daemon). */
static void cad_stop(void)
{
	harness_cad_stop(&cad_pid, dir_file("cad.log"), 0);
}

/* The crash test cases SIGKILL cad themselves: that death is expected, any other is not. */
static void cad_stop_after_crash(void)
{
	harness_cad_stop(&cad_pid, dir_file("cad.log"), HARNESS_STOP_MAY_BE_KILLED);
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

/* ================= slice 1: the server ================= */

START_TEST(health_answers_without_credentials)
{
	json_t *o = NULL;

	ck_assert_int_eq(api(NULL, "GET", "/api/v1/health", NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "status"), "ok");
	json_decref(o);
}
END_TEST

START_TEST(unknown_endpoint_and_method_get_json_errors)
{
	json_t *o = NULL;

	ck_assert_int_eq(api("officer", "GET", "/api/v1/nope", NULL, &o), 404);
	ck_assert_str_eq(jstr(o, "error"), "not-found");
	json_decref(o);
	ck_assert_int_eq(api("officer", "DELETE", "/api/v1/certificates", NULL, &o), 405);
	ck_assert_str_eq(jstr(o, "error"), "method-not-allowed");
	json_decref(o);
	/* An encoded "/" stays inside its segment; an encoded NUL matches nothing. */
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/principals/officer%2Fdisable", NULL, &o),
	                 405);
	json_decref(o);
	ck_assert_int_eq(api("ca-admin", "GET", "/api/v1/principals/officer%2Fdisable", NULL, &o),
	                 404);
	ck_assert_str_eq(jstr(o, "error"), "unknown-principal");
	json_decref(o);
	ck_assert_int_eq(api("ca-admin", "GET", "/api/v1/principals/officer%00x", NULL, &o), 404);
	ck_assert_str_eq(jstr(o, "error"), "not-found");
	json_decref(o);
	ck_assert_int_eq(api("officer", "GET", "/api/v1/whoami", NULL, NULL), 200);
}
END_TEST

/* 1 if openssl s_client completes a handshake with these settings (it prints the protocol it
 * agreed with -brief); the exit status alone depends on how the server closes. */
/* A TLS handshake with openssl s_client: 1 if it was made, 0 if cad refused it (it answered
 * with an alert), -1 for anything else (cad not there, client-side failure). A negative test
 * asserts 0, so a dead server cannot pass it. */
static int handshake(const char *version, const char *cipher)
{
	char log[512], cmd[700];
	char *argv[] = {"sh", "-c", cmd, NULL};

	path_of(log, sizeof(log), "s_client.log");
	snprintf(cmd, sizeof(cmd),
	         "openssl s_client -brief -connect 127.0.0.1:%s %s %s %s -verify_return_error "
	         "-CAfile %s/opca.pem </dev/null",
	         strrchr(base_url, ':') + 1, version, cipher ? "-cipher" : "", cipher ? cipher : "",
	         dir);
	harness_run(argv, log);
	if (strstr(harness_slurp(log), "Protocol version: TLSv1"))
		return 1;
	return strstr(harness_slurp(log), "alert") ? 0 : -1;
}

START_TEST(tls_1_2_and_1_3_are_accepted)
{
	ck_assert_int_eq(handshake("-tls1_3", NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(dir_file("s_client.log")), "TLSv1.3"));
	ck_assert_int_eq(handshake("-tls1_2", NULL), 1);
	ck_assert_ptr_nonnull(
	    strstr(harness_slurp(dir_file("s_client.log")), "Protocol version: TLSv1.2"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(dir_file("s_client.log")), "ECDHE"));
}
END_TEST

START_TEST(tls_1_1_and_weak_ciphers_are_refused)
{
	/* The same client makes a handshake in this setting: cad is up and listening. */
	ck_assert_int_eq(handshake("-tls1_2", "DEFAULT@SECLEVEL=0"), 1);
	/* SECLEVEL=0 so that it is the server that refuses (an alert), not the client's own
	 * policy. */
	ck_assert_int_eq(handshake("-tls1_1", "DEFAULT@SECLEVEL=0"), 0);
	ck_assert_int_eq(handshake("-tls1", "DEFAULT@SECLEVEL=0"), 0);
	/* TLS 1.2 without forward secrecy or without AEAD. */
	ck_assert_int_eq(handshake("-tls1_2", "AES128-SHA:AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA"
	                                      "@SECLEVEL=0"),
	                 0);
}
END_TEST

START_TEST(oversized_body_is_refused_with_json)
{
	size_t n = 20000;
	char *body = malloc(n + 1);
	json_t *o = NULL;

	memset(body, 'x', n);
	body[n] = '\0';
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", body, &o), 413);
	ck_assert_str_eq(jstr(o, "error"), "body-too-large");
	json_decref(o);
	free(body);
}
END_TEST

/* ================= slice 2: principals, tokens, roles ================= */

START_TEST(no_credentials_is_401_and_audited)
{
	long long before = count("SELECT count(*) FROM audit_log WHERE outcome = 'denied'"
	                         " AND actor = 'anonymous'");
	json_t *o = NULL;

	ck_assert_int_eq(api(NULL, "GET", "/api/v1/certificates", NULL, &o), 401);
	ck_assert_str_eq(jstr(o, "error"), "unauthenticated");
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE outcome = 'denied'"
	                       " AND actor = 'anonymous'"),
	                 before + 1);
}
END_TEST

START_TEST(revoked_and_expired_client_certificates_are_refused)
{
	static const char *const revoked[] = {"revokee.pem", NULL};
	json_t *o = NULL;
	CURLcode rc;

	/* Registered principals both; until the CRL lists it, the revokee gets in. */
	ck_assert_int_eq(api("revokee", "GET", "/api/v1/whoami", NULL, &o), 200);
	json_decref(o);
	/* An expired certificate fails the handshake: no answer at all (cad is up: the revokee
	 * just got in). */
	ck_assert_int_eq(whoami("expired-op", &rc), 0);
	ck_assert_msg(refused_by_server(rc), "curl: %s", curl_easy_strerror(rc));
	/* The operator-auth CA publishes a CRL with it: the next request is refused, no
	 * restart, and the denial is audited. */
	write_opca_crl(revoked);
	ck_assert_int_eq(api("revokee", "GET", "/api/v1/whoami", NULL, &o), 401);
	ck_assert_str_eq(jstr(o, "error"), "certificate-revoked");
	json_decref(o);
	ck_assert_int_ge(count("SELECT count(*) FROM audit_log WHERE outcome = 'denied'"
	                       " AND detail LIKE '%certificate-revoked%'"),
	                 1);
	ck_assert_int_eq(api("officer", "GET", "/api/v1/whoami", NULL, &o), 200);
	json_decref(o);
	/* A replacement that does not verify is ignored: the last good CRL stays in force. */
	harness_write_text(dir_file("opca.crl"),
	                   "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
	ck_assert_int_eq(api("revokee", "GET", "/api/v1/whoami", NULL, &o), 401);
	json_decref(o);
	ck_assert_int_eq(api("officer", "GET", "/api/v1/whoami", NULL, &o), 200);
	json_decref(o);
	write_opca_crl(revoked);
}
END_TEST

START_TEST(client_certificate_names_the_principal)
{
	json_t *o = NULL;

	for (int i = 0; i < NROLES; i++) {
		ck_assert_int_eq(api(roles[i], "GET", "/api/v1/whoami", NULL, &o), 200);
		ck_assert_str_eq(jstr(o, "name"), roles[i]);
		ck_assert_str_eq(jstr(o, "role"), roles[i]);
		ck_assert_str_eq(jstr(o, "via"), "certificate");
		json_decref(o);
	}
	/* Issued by the operator CA but not registered: 401. */
	ck_assert_int_eq(api("stranger", "GET", "/api/v1/whoami", NULL, &o), 401);
	json_decref(o);
}
END_TEST

START_TEST(certificate_from_another_ca_fails_the_handshake)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = make_cert("intruder", k, NULL, k, 0, NULL, "SHA256");
	CURLcode rc;

	harness_write_cert(dir_file("intruder.pem"), x, 0);
	harness_write_key(dir_file("intruder.key"), k);
	/* The same request with a certificate of the operator CA is answered: cad is up. */
	ck_assert_int_eq(api("officer", "GET", "/api/v1/whoami", NULL, NULL), 200);
	ck_assert_int_eq(whoami("intruder", &rc), 0);
	ck_assert_msg(refused_by_server(rc), "curl: %s", curl_easy_strerror(rc));
	X509_free(x);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(token_is_shown_once_stored_hashed_and_revocable)
{
	json_t *o = NULL;
	char who[200], sql[300], hex[65], path[128], token[128];
	unsigned char sha[32];
	long long id;

	/* A token is only made with a role its maker holds: an admin cannot make one for an
	 * officer (it would see it, and could act as the officer), a ca-admin neither; the
	 * officer makes its own, and a ca-admin one for another ca-admin. */
	ck_assert_int_eq(
	    api("admin", "POST", "/api/v1/principals/officer/tokens", "{\"name\":\"mine\"}", &o),
	    403);
	ck_assert_str_eq(jstr(o, "error"), "role-not-permitted");
	json_decref(o);
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/principals/officer/tokens",
	                     "{\"name\":\"mine\"}", NULL),
	                 403);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/principals/officer/tokens",
	                     "{\"name\":\"own\",\"expires_days\":1}", &o),
	                 201);
	ck_assert_str_eq(jstr(o, "principal"), "officer");
	json_decref(o);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/principals/auditor/tokens",
	                     "{\"name\":\"theirs\"}", NULL),
	                 403);
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/principals",
	                     "{\"name\":\"bot-1\",\"role\":\"ca-admin\"}", &o),
	                 201);
	json_decref(o);
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/principals/bot-1/tokens",
	                     "{\"name\":\"ci\",\"expires_days\":30}", &o),
	                 201);
	snprintf(token, sizeof(token), "%s", jstr(o, "token"));
	ck_assert_int_gt(strlen(token), 40);
	id = json_integer_value(json_object_get(o, "id"));
	snprintf(who, sizeof(who), "token:%s", token);
	SHA256((const unsigned char *)token, strlen(token), sha);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", sha[i]);
	json_decref(o);

	/* Only the hash is stored. */
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM api_tokens WHERE token_sha256 = '\\x%s'::bytea", hex);
	ck_assert_int_eq(count(sql), 1);
	ck_assert_int_eq(api(who, "GET", "/api/v1/whoami", NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "name"), "bot-1");
	ck_assert_str_eq(jstr(o, "via"), "token");
	json_decref(o);
	/* Listing shows no secret. */
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/principals/bot-1/tokens", NULL, &o), 200);
	{
		char *text = json_dumps(o, 0);
		ck_assert_ptr_null(strstr(text, token));
		free(text);
	}
	json_decref(o);

	snprintf(path, sizeof(path), "/api/v1/tokens/%lld/revoke", id);
	ck_assert_int_eq(api("admin", "POST", path, NULL, &o), 403); /* not an admin's to manage */
	json_decref(o);
	ck_assert_int_eq(api("ca-admin", "POST", path, NULL, &o), 200);
	json_decref(o);
	ck_assert_int_eq(api(who, "GET", "/api/v1/whoami", NULL, &o), 401);
	json_decref(o);
	ck_assert_int_eq(api("token:hsmca_nonsense", "GET", "/api/v1/whoami", NULL, &o), 401);
	json_decref(o);
}
END_TEST

/* A principal made through the API with an API token; its "token:..." caller name in who.
 * Nobody but a principal of its own role may make it a token (and it has no credential yet),
 * so the token goes into the database directly, as a provisioning step would. */
static void token_principal(const char *name, const char *role_json, char *who, size_t n)
{
	char body[256], token[80];
	json_t *o = NULL;
	struct db *db;

	snprintf(body, sizeof(body), "{\"name\":\"%s\",%s}", name, role_json);
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/principals", body, &o), 201);
	json_decref(o);
	db = owner_db();
	harness_db_token(db, name, "t", token, sizeof(token));
	db_close(db);
	snprintf(who, n, "token:%s", token);
}

/* Issue as who in profile with a fresh key: the status, and the error code when refused. */
static int issue_as(const char *who, const char *profile, const char *cn, char *error, size_t n)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char subject[128], san[128], *csr, *body;
	json_t *o = NULL;
	int st;

	snprintf(subject, sizeof(subject), "/CN=%s", cn);
	snprintf(san, sizeof(san), "%s:%s", strncmp(cn, "dev", 3) ? "DNS" : "URI:urn:dev", cn);
	csr = make_csr(k, subject, san);
	body = issue_body(profile, csr);
	st = api(who, "POST", "/api/v1/certificates", body, &o);
	snprintf(error, n, "%s", st >= 400 && o ? jstr(o, "error") : "");
	json_decref(o);
	free(body);
	free(csr);
	EVP_PKEY_free(k);
	return st;
}

/* hsmca-cad's workers keep the API tokens they saw for issuance and check them again in the
 * statement that reserves: a token revoked, a principal disabled or given another role, or an
 * ra's grant taken away, issues nothing more at once, on every worker; a grant given is used at
 * once. (Several requests first, so that every worker has seen the token.) */
START_TEST(issuing_credentials_are_checked_again_at_each_issuance)
{
	static const char denied[] =
	    "SELECT count(*) FROM audit_log WHERE action = 'certificate.issue'"
	    " AND outcome = 'denied' AND actor IN ('bot-off', 'bot-ra', 'anonymous')";
	char off[200], ra[200], path[128], e[64];
	json_t *o = NULL;
	long long id, before = count(denied);

	token_principal("bot-off", "\"role\":\"officer\"", off, sizeof(off));
	token_principal("bot-ra", "\"role\":\"ra\",\"profiles\":[\"device\"]", ra, sizeof(ra));
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(issue_as(off, "tls-server", "c.example.com", e, sizeof(e)), 201);
		ck_assert_int_eq(issue_as(ra, "device", "dev-c", e, sizeof(e)), 201);
	}
	/* a grant given: used at once */
	sql_ok("INSERT INTO principal_profiles (principal_id, profile)"
	       " SELECT id, 'tls-server' FROM principals WHERE name = 'bot-ra'");
	ck_assert_int_eq(issue_as(ra, "tls-server", "g.example.com", e, sizeof(e)), 201);
	/* a grant taken away, a role changed, a principal disabled: refused at once */
	sql_ok("DELETE FROM principal_profiles WHERE profile = 'device' AND principal_id ="
	       " (SELECT id FROM principals WHERE name = 'bot-ra')");
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(issue_as(ra, "device", "dev-x", e, sizeof(e)), 403);
		ck_assert_str_eq(e, "profile-not-granted");
	}
	sql_ok("UPDATE principals SET role = 'auditor' WHERE name = 'bot-off'");
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(issue_as(off, "tls-server", "x.example.com", e, sizeof(e)), 403);
		ck_assert_str_eq(e, "role-not-permitted");
	}
	sql_ok("UPDATE principals SET role = 'officer' WHERE name = 'bot-off'");
	ck_assert_int_eq(issue_as(off, "tls-server", "c.example.com", e, sizeof(e)), 201);
	ck_assert_int_eq(api("admin", "POST", "/api/v1/principals/bot-off/disable", NULL, NULL),
	                 200);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(issue_as(off, "tls-server", "x.example.com", e, sizeof(e)), 401);
		ck_assert_str_eq(e, "unauthenticated");
	}
	ck_assert_int_eq(api("admin", "POST", "/api/v1/principals/bot-off/enable", NULL, NULL),
	                 200);
	ck_assert_int_eq(issue_as(off, "tls-server", "c.example.com", e, sizeof(e)), 201);
	/* the token revoked */
	ck_assert_int_eq(api("admin", "GET", "/api/v1/principals/bot-off/tokens", NULL, &o), 200);
	id = json_integer_value(
	    json_object_get(json_array_get(json_object_get(o, "tokens"), 0), "id"));
	json_decref(o);
	ck_assert_int_gt(id, 0);
	snprintf(path, sizeof(path), "/api/v1/tokens/%lld/revoke", id);
	ck_assert_int_eq(api("admin", "POST", path, NULL, NULL), 200);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(issue_as(off, "tls-server", "x.example.com", e, sizeof(e)), 401);
		ck_assert_str_eq(e, "unauthenticated");
	}
	/* nothing was reserved for the refused requests; each refusal is audited */
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE subject IN"
	                       " ('CN=x.example.com', 'CN=dev-x')"),
	                 0);
	ck_assert_int_eq(count(denied) - before, 32);
}
END_TEST

START_TEST(expired_token_and_disabled_principal_are_refused)
{
	char who[200];

	token_principal("bot-2", "\"role\":\"auditor\"", who, sizeof(who));
	ck_assert_int_eq(api(who, "GET", "/api/v1/whoami", NULL, NULL), 200);
	ck_assert_int_eq(api("admin", "POST", "/api/v1/principals/bot-2/disable", NULL, NULL), 200);
	ck_assert_int_eq(api(who, "GET", "/api/v1/whoami", NULL, NULL), 401);
	ck_assert_int_eq(api("admin", "POST", "/api/v1/principals/bot-2/enable", NULL, NULL), 200);
	ck_assert_int_eq(api(who, "GET", "/api/v1/whoami", NULL, NULL), 200);
	sql_ok("UPDATE api_tokens SET expires_at = now() - interval '1 second'"
	       " WHERE principal_id = (SELECT id FROM principals WHERE name = 'bot-2')");
	ck_assert_int_eq(api(who, "GET", "/api/v1/whoami", NULL, NULL), 401);
}
END_TEST

START_TEST(bootstrap_makes_the_first_ca_admin_only)
{
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'principal.bootstrap'"
	                       " AND object = 'ca-admin' AND outcome = 'success'"),
	                 1);
	ck_assert_int_ne(bootstrap("stranger"), 0);
	ck_assert_ptr_nonnull(
	    strstr(harness_slurp(dir_file("bootstrap.log")), "is a ca-admin already"));
	ck_assert_int_eq(count("SELECT count(*) FROM principals WHERE name = 'stranger'"), 0);
}
END_TEST

START_TEST(admin_manages_only_the_roles_below_it)
{
	json_t *o = NULL;
	long long before = count("SELECT count(*) FROM audit_log WHERE outcome = 'denied'"
	                         " AND action = 'principal.create' AND actor = 'admin'");

	ck_assert_int_eq(api("admin", "POST", "/api/v1/principals",
	                     "{\"name\":\"boss\",\"role\":\"ca-admin\"}", &o),
	                 403);
	ck_assert_str_eq(jstr(o, "error"), "role-not-permitted");
	json_decref(o);
	ck_assert_int_eq(api("admin", "POST", "/api/v1/principals",
	                     "{\"name\":\"peer\",\"role\":\"admin\"}", NULL),
	                 403);
	ck_assert_int_eq(count("SELECT count(*) FROM principals WHERE name IN ('boss', 'peer')"),
	                 0);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE outcome = 'denied'"
	                       " AND action = 'principal.create' AND actor = 'admin'"),
	                 before + 2);
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/principals",
	                     "{\"name\":\"admin-2\",\"role\":\"admin\"}", NULL),
	                 201);
	ck_assert_int_eq(api("admin", "POST", "/api/v1/principals/ca-admin/disable", NULL, NULL),
	                 403);
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/principals",
	                     "{\"name\":\"admin-2\",\"role\":\"admin\"}", &o),
	                 409);
	json_decref(o);
}
END_TEST

/* The permission matrix of docs/api.md: for each endpoint, the roles allowed. Bodies are
 * harmless (invalid or naming nothing), so an allowed role gets past the role check and then
 * a 2xx or a 4xx other than 401/403, and a refused role gets 403 role-not-permitted. */
#define CA_ADMIN (1 << 0)
#define ADMIN (1 << 1)
#define OFFICER (1 << 2)
#define AUDITOR (1 << 3)
#define OPERATOR (1 << 4)
#define RA (1 << 5)
#define ANY 0x3f

static const struct {
	const char *method, *path, *body;
	int allowed;
} matrix[] = {
    {"GET", "/api/v1/whoami", NULL, ANY},
    {"GET", "/api/v1/health/details", NULL, AUDITOR | OPERATOR},
    {"GET", "/metrics", NULL, AUDITOR | OPERATOR},
    {"GET", "/api/v1/profiles", NULL, ANY},
    {"POST", "/api/v1/principals", "{}", CA_ADMIN | ADMIN},
    {"GET", "/api/v1/principals", NULL, CA_ADMIN | ADMIN | AUDITOR},
    {"GET", "/api/v1/principals/nobody", NULL, CA_ADMIN | ADMIN | AUDITOR},
    {"POST", "/api/v1/principals/nobody/disable", NULL, CA_ADMIN | ADMIN},
    {"POST", "/api/v1/principals/nobody/enable", NULL, CA_ADMIN | ADMIN},
    {"POST", "/api/v1/principals/nobody/tokens", "{}", ANY},
    {"GET", "/api/v1/principals/nobody/tokens", NULL, CA_ADMIN | ADMIN | AUDITOR},
    {"POST", "/api/v1/tokens/999999/revoke", NULL, CA_ADMIN | ADMIN},
    {"POST", "/api/v1/certificates", "{}", OFFICER | RA},
    {"GET", "/api/v1/certificates?limit=1", NULL, CA_ADMIN | ADMIN | OFFICER | AUDITOR},
    {"GET", "/api/v1/certificates/7f01", NULL, CA_ADMIN | ADMIN | OFFICER | AUDITOR | RA},
    {"POST", "/api/v1/certificates/7f01/revoke", NULL, OFFICER | RA},
    {"POST", "/api/v1/certificates/7f01/hold", NULL, OFFICER},
    {"POST", "/api/v1/certificates/7f01/release", NULL, OFFICER},
    {"GET", "/api/v1/audit/verify", NULL, CA_ADMIN | AUDITOR},
    {"GET", "/api/v1/audit?limit=1", NULL, CA_ADMIN | AUDITOR},
    {"POST", "/api/v1/profiles/nope/disable", NULL, ADMIN},
    {"POST", "/api/v1/profiles/nope/enable", NULL, ADMIN},
    {"POST", "/api/v1/profiles", "{}", ADMIN},
    {"GET", "/api/v1/profiles/nope", NULL, ANY},
    {"PUT", "/api/v1/profiles/nope", "{}", ADMIN},
    {"POST", "/api/v1/profiles/nope/clone", "{}", ADMIN},
    {"GET", "/api/v1/authorities", NULL, CA_ADMIN | ADMIN | OFFICER | AUDITOR},
    {"POST", "/api/v1/authorities/nobody/retire", NULL, CA_ADMIN},
    {"GET", "/api/v1/authorities/nobody/settings", NULL, CA_ADMIN | ADMIN | OFFICER | AUDITOR},
    {"PUT", "/api/v1/authorities/nobody/settings", "{}", OFFICER},
    /* Device enrolment (EST itself authenticates devices, not principals: test_est). */
    {"POST", "/api/v1/provisioning-tokens", "{}", OFFICER},
    {"GET", "/api/v1/provisioning-tokens", NULL, CA_ADMIN | ADMIN | OFFICER | AUDITOR},
    {"POST", "/api/v1/provisioning-tokens/999999/revoke", NULL, OFFICER},
    {"GET", "/api/v1/devices", NULL, CA_ADMIN | ADMIN | OFFICER | AUDITOR},
    {"GET", "/api/v1/devices/nobody", NULL, CA_ADMIN | ADMIN | OFFICER | AUDITOR},
    {"POST", "/api/v1/devices/nobody/decommission", "{}", OFFICER},
    /* ACME's EAB credentials (ACME itself authenticates accounts by JWS: test_acme_cad). */
    {"POST", "/api/v1/acme/eab", "{}", OFFICER},
    {"GET", "/api/v1/acme/eab", NULL, CA_ADMIN | ADMIN | OFFICER | AUDITOR},
    {"POST", "/api/v1/acme/eab/nobody/revoke", NULL, OFFICER},
    {"POST", "/api/v1/acme/incidents", "{}", OFFICER},
};

/* A TLS connection to cad, handshake done (no client certificate); NULL on failure. */
static SSL *tls_open(SSL_CTX *ctx)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)atoi(strrchr(base_url, ':') + 1))};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	SSL *ssl;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	return ssl;
}

static void tls_close(SSL *ssl)
{
	int fd = SSL_get_fd(ssl);

	SSL_free(ssl);
	close(fd);
}

/* GET path on ssl; the reply's first bytes into out. */
static void tls_get(SSL *ssl, const char *path, char *out, size_t n)
{
	char req[256];
	int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	size_t got = 0;

	ck_assert_int_eq(SSL_write(ssl, req, len), len);
	while (got + 1 < n) {
		int k = SSL_read(ssl, out + got, (int)(n - 1 - got));
		if (k <= 0)
			break;
		got += (size_t)k;
		if (strstr(out, "\r\n\r\n") && memchr(out, '}', got))
			break;
		out[got] = '\0';
	}
	out[got] = '\0';
}

/* Application data records a client received (TLS 1.3: by their inner content type). */
static void count_app_records(int write_p, int version, int content_type, const void *buf,
                              size_t len, SSL *ssl, void *arg)
{
	(void)version, (void)ssl;
	if (!write_p && content_type == SSL3_RT_INNER_CONTENT_TYPE && len == 1 &&
	    ((const unsigned char *)buf)[0] == SSL3_RT_APPLICATION_DATA)
		(*(int *)arg)++;
}

/* A small reply (status line, headers and body) leaves in one TLS record, not one for its
 * headers and one for its body: one write() on the server, one record to decrypt here. */
START_TEST(small_reply_leaves_in_one_record)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	char reply[2048];
	int records = 0;

	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	ssl = tls_open(ctx);
	ck_assert_ptr_nonnull(ssl);
	SSL_set_msg_callback(ssl, count_app_records);
	SSL_set_msg_callback_arg(ssl, &records);
	tls_get(ssl, "/api/v1/health", reply, sizeof(reply));
	ck_assert_msg(!strncmp(reply, "HTTP/1.1 200", 12) && strstr(reply, "\r\n\r\n{"), "%s",
	              reply);
	ck_assert_int_eq(records, 1);
	tls_close(ssl);
	SSL_CTX_free(ctx);
}
END_TEST

/* limits.max_connections (40 here): the connection beyond it is answered 503 with the reason
 * and closed; once connections close, requests are served again. */
START_TEST(connections_beyond_the_cap_get_503)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *held[40], *extra;
	char reply[2048];
	int n = 0, ok = 0;

	for (; n < 40; n++) {
		held[n] = tls_open(ctx);
		ck_assert_msg(held[n], "connection %d failed", n);
	}
	extra = tls_open(ctx);
	ck_assert_ptr_nonnull(extra);
	tls_get(extra, "/api/v1/health", reply, sizeof(reply));
	ck_assert_msg(!strncmp(reply, "HTTP/1.1 503", 12) &&
	                  strstr(reply, "too-many-connections") &&
	                  strstr(reply, "at most 40 connections"),
	              "%s", reply);
	ck_assert_ptr_nonnull(strcasestr(reply, "Connection: close"));
	tls_close(extra);
	/* A held connection, within the cap, is served. */
	tls_get(held[0], "/api/v1/health", reply, sizeof(reply));
	ck_assert_msg(!strncmp(reply, "HTTP/1.1 200", 12), "%s", reply);
	while (n > 0)
		tls_close(held[--n]);
	for (int i = 0; i < 50 && !ok; i++) {
		extra = tls_open(ctx);
		ck_assert_ptr_nonnull(extra);
		tls_get(extra, "/api/v1/health", reply, sizeof(reply));
		ok = !strncmp(reply, "HTTP/1.1 200", 12);
		tls_close(extra);
		if (!ok)
			usleep(100000);
	}
	ck_assert_msg(ok, "%s", reply);
	SSL_CTX_free(ctx);
}
END_TEST

START_TEST(every_role_on_every_endpoint)
{
	for (size_t e = 0; e < sizeof(matrix) / sizeof(matrix[0]); e++)
		for (int ri = 0; ri < NROLES; ri++) {
			json_t *o = NULL;
			long st =
			    api(roles[ri], matrix[e].method, matrix[e].path, matrix[e].body, &o);
			int allowed = matrix[e].allowed & (1 << ri);

			if (allowed)
				ck_assert_msg(
				    st != 401 && st != 403 && st != 0 && st < 500,
				    "%s %s as %s: %ld (%s), expected to pass the role check",
				    matrix[e].method, matrix[e].path, roles[ri], st,
				    jstr(o, "detail"));
			else
				ck_assert_msg(
				    st == 403 && !strcmp(jstr(o, "error"), "role-not-permitted"),
				    "%s %s as %s: %ld (%s), expected 403", matrix[e].method,
				    matrix[e].path, roles[ri], st, jstr(o, "detail"));
			json_decref(o);
		}
}
END_TEST

/* ================= slice 3: issuance and revocation ================= */

static void verify_with_openssl(const char *pem, const char *ca_file)
{
	char cert[512], ca[512], log[512];
	static int n;
	char name[64];

	snprintf(name, sizeof(name), "verify-%d-%d.pem", (int)getpid(), n++);
	harness_write_text(dir_file(name), pem);
	path_of(cert, sizeof(cert), name);
	path_of(ca, sizeof(ca), ca_file);
	path_of(log, sizeof(log), "verify.log");
	{
		char *argv[] = {"openssl", "verify", "-CAfile", ca, cert, NULL};
		ck_assert_msg(harness_run(argv, log) == 0, "openssl verify failed for %s", cert);
	}
}

/* Check the profile's extensions in the issued certificate. */
static X509 *check_issued(json_t *o, const char *ca_file, unsigned ku, unsigned xku)
{
	X509 *x = pem_cert(jstr(o, "certificate"));
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
	int crit = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	X509 *ca;
	char path[512];
	FILE *f;

	verify_with_openssl(jstr(o, "certificate"), ca_file);
	/* More than 128 random bits, positive. */
	ck_assert_int_ge(BN_num_bits(bn), 150);
	ck_assert(!BN_is_negative(bn));
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(crit, 1);
	ck_assert(!bc->ca);
	ck_assert_uint_eq(X509_get_key_usage(x), ku);
	ck_assert(X509_get_extension_flags(x) & EXFLAG_XKUSAGE);
	ck_assert_uint_eq(X509_get_extended_key_usage(x), xku);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
	path_of(path, sizeof(path), ca_file);
	f = fopen(path, "r");
	ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_int_eq(
	    ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(ca)), 0);
	/* The chain starts with the issuing CA. */
	{
		X509 *first =
		    pem_cert(json_string_value(json_array_get(json_object_get(o, "chain"), 0)));
		ck_assert_int_eq(X509_cmp(first, ca), 0);
		X509_free(first);
	}
	X509_free(ca);
	BASIC_CONSTRAINTS_free(bc);
	BN_free(bn);
	return x;
}

/* The database holds exactly the certificate the client received. */
static void check_stored(json_t *o, const char *status)
{
	uint8_t serial[DB_SERIAL_MAX];
	size_t len;
	struct db_cert c = {0};
	struct db_err err = {0};
	struct db *db = owner_db();
	X509 *x = pem_cert(jstr(o, "certificate"));
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);

	ck_assert_int_eq(db_serial_from_hex(jstr(o, "serial"), serial, &len), 0);
	ck_assert_msg(db_cert_lookup(db, 0, serial, len, &c, &err) == DB_OK, "%s", err.msg);
	ck_assert_str_eq(db_cert_status_name(c.status), status);
	ck_assert_int_eq((int)c.der_len, n);
	ck_assert_int_eq(memcmp(c.der, der, (size_t)n), 0);
	OPENSSL_free(der);
	X509_free(x);
	db_cert_clear(&c);
	db_close(db);
}

static int has_san(X509 *x, int type, const char *value)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int found = 0;

	for (int i = 0; i < sk_GENERAL_NAME_num(g); i++) {
		GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
		int t;
		ASN1_STRING *s = GENERAL_NAME_get0_value(n, &t);
		if (t != type)
			continue;
		if (t == GEN_IPADD && s->length == 4) {
			char ip[32];
			snprintf(ip, sizeof(ip), "%d.%d.%d.%d", s->data[0], s->data[1], s->data[2],
			         s->data[3]);
			found |= !strcmp(ip, value);
		} else if (t != GEN_IPADD) {
			found |= (size_t)s->length == strlen(value) &&
			         !memcmp(s->data, value, strlen(value));
		}
	}
	GENERAL_NAMES_free(g);
	return found;
}

START_TEST(issue_tls_server)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	json_t *o = issue_ok("officer", "tls-server", k, "/CN=www.example.com/O=Example",
	                     "DNS:www.example.com,DNS:example.com,IP:10.1.2.3");
	/* An EC key: "encipherment" gives it no keyEncipherment (RFC 5480 3). */
	X509 *x = check_issued(o, "issuing.pem", KU_DIGITAL_SIGNATURE, XKU_SSL_SERVER);

	ck_assert(has_san(x, GEN_DNS, "www.example.com"));
	ck_assert(has_san(x, GEN_DNS, "example.com"));
	ck_assert(has_san(x, GEN_IPADD, "10.1.2.3"));
	ck_assert_int_le(X509_cmp_time(X509_get0_notAfter(x), NULL), 1);
	check_stored(o, "issued");
	X509_free(x);
	json_decref(o);
	EVP_PKEY_free(k);
}
END_TEST

/* hsmca-cad --issue PROFILE --csr FILE: the API's path without the server (the quickstart's
 * own TLS certificate): checked, reserved and stored, audited as the local user. */
static int offline_issue(const char *profile, const char *csr_file, const char *out)
{
	char conf[512], bin[512], csr[512];
	char *argv[] = {bin, "--config", conf, "--issue", (char *)profile, "--csr", csr, NULL};

	path_of(conf, sizeof(conf), "cad.yaml");
	path_of(csr, sizeof(csr), csr_file);
	snprintf(bin, sizeof(bin), "%s/ca-core/cad/hsmca-cad", getenv("HSMCA_BUILD"));
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
	return harness_run(argv, out);
}

/* A second hsmca-cad on the port the first one serves is refused at start, naming the port
 * (its SO_REUSEPORT listeners would otherwise join the first one's silently). */
START_TEST(a_second_cad_on_a_taken_port_is_refused)
{
	char conf[512], bin[512], out[512];
	char *argv[] = {bin, "--config", conf, NULL};
	char want[64];

	path_of(conf, sizeof(conf), "cad.yaml");
	path_of(out, sizeof(out), "second-cad.log");
	snprintf(bin, sizeof(bin), "%s/ca-core/cad/hsmca-cad", getenv("HSMCA_BUILD"));
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
	ck_assert_int_eq(harness_run(argv, out), 1);
	snprintf(want, sizeof(want), "port %s: Address already in use", strrchr(base_url, ':') + 1);
	ck_assert_msg(strstr(harness_slurp(out), want), "%s", harness_slurp(out));
	/* the first one still answers */
	ck_assert_int_eq(api(NULL, "GET", "/api/v1/health", NULL, NULL), 200);
}
END_TEST

START_TEST(offline_issue_is_reserved_stored_and_audited)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char *csr = make_csr(k, "/CN=offline.example.com", "DNS:offline.example.com");
	long long before = count("SELECT count(*) FROM certificates");
	char out[512], sql[512], hex[64] = "";
	X509 *x, *ca;
	BIGNUM *bn;
	char *h;

	harness_write_text(dir_file("offline.csr"), csr);
	path_of(out, sizeof(out), "offline.out");
	ck_assert_int_eq(offline_issue("tls-server", "offline.csr", out), 0);
	x = pem_cert(harness_slurp(out));
	ck_assert_ptr_nonnull(x);
	ca = pem_cert(harness_slurp(dir_file("issuing.pem")));
	ck_assert_ptr_nonnull(ca);
	ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(ca)), 1);
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	h = BN_bn2hex(bn);
	snprintf(hex, sizeof(hex), "%s", h);
	for (char *c = hex; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM certificates WHERE encode(serial, 'hex') = '%s'"
	         " AND status = 'issued' AND der IS NOT NULL AND requester LIKE 'local:%%'",
	         hex);
	ck_assert_int_eq(count(sql), 1);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM audit_log WHERE object = '%s' AND action ="
	         " 'certificate.issue' AND outcome = 'success' AND actor LIKE 'local:%%'",
	         hex);
	ck_assert_int_eq(count(sql), 1);
	/* Refusals name the problem and store nothing. */
	ck_assert_int_eq(offline_issue("no-such-profile", "offline.csr", out), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(out), "no profile named"));
	harness_write_text(dir_file("junk.csr"), "not a certificate request\n");
	ck_assert_int_eq(offline_issue("tls-server", "junk.csr", out), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), before + 1);
	OPENSSL_free(h);
	BN_free(bn);
	X509_free(ca);
	X509_free(x);
	free(csr);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(issue_tls_client_with_rsa)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	json_t *o = issue_ok("officer", "tls-client", k, "/CN=alice/O=Example/OU=Ops",
	                     "email:alice@example.com");
	X509 *x = check_issued(o, "issuing.pem", KU_DIGITAL_SIGNATURE, XKU_SSL_CLIENT);

	ck_assert(has_san(x, GEN_EMAIL, "alice@example.com"));
	check_stored(o, "issued");
	X509_free(x);
	json_decref(o);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(issue_device)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	json_t *o = issue_ok("officer", "device", k, "/CN=sensor-17/serialNumber=SN0017",
	                     "URI:urn:dev:sensor-17");
	X509 *x =
	    check_issued(o, "issuing.pem", KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT, XKU_SSL_CLIENT);

	ck_assert(has_san(x, GEN_URI, "urn:dev:sensor-17"));
	check_stored(o, "issued");
	X509_free(x);
	json_decref(o);
	EVP_PKEY_free(k);
}
END_TEST

/* The same profile gives an RSA key keyEncipherment. */
START_TEST(issue_tls_server_with_rsa)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	json_t *o =
	    issue_ok("officer", "tls-server", k, "/CN=www.example.com", "DNS:www.example.com");
	X509 *x = check_issued(o, "issuing.pem", KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT,
	                       XKU_SSL_SERVER);

	check_stored(o, "issued");
	X509_free(x);
	json_decref(o);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(issue_email)
{
	EVP_PKEY *k = EVP_EC_gen("P-384");
	json_t *o = issue_ok("officer", "email", k, "/CN=Bob/emailAddress=bob@example.com",
	                     "email:bob@example.com");
	X509 *x =
	    check_issued(o, "issuing.pem", KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION, XKU_SMIME);

	ck_assert(has_san(x, GEN_EMAIL, "bob@example.com"));
	check_stored(o, "issued");
	X509_free(x);
	json_decref(o);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(issue_code_signing_from_a_p384_ca)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	json_t *o = issue_ok("officer", "code-signing", k, "/CN=Release key/O=Example/C=DE", NULL);
	X509 *x = check_issued(o, "codesign.pem", KU_DIGITAL_SIGNATURE, XKU_CODE_SIGN);

	/* A P-384 CA signs with SHA-384. */
	ck_assert_int_eq(X509_get_signature_nid(x), NID_ecdsa_with_SHA384);
	ck_assert_int_lt(X509_get_ext_by_NID(x, NID_subject_alt_name, -1), 0);
	check_stored(o, "issued");
	X509_free(x);
	json_decref(o);
	EVP_PKEY_free(k);
}
END_TEST

/* An authority with CRL shards: each certificate's distribution point names the shard the
 * database assigned it (hsmca-crld publishes <name>-<shard>.crl); one without names none. */
static const char *crldp_uri(X509 *x)
{
	static char buf[256];
	CRL_DIST_POINTS *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
	GENERAL_NAME *g;

	buf[0] = '\0';
	if (!dps)
		return NULL;
	ck_assert_int_eq(sk_DIST_POINT_num(dps), 1);
	g = sk_GENERAL_NAME_value(sk_DIST_POINT_value(dps, 0)->distpoint->name.fullname, 0);
	ck_assert_int_eq(g->type, GEN_URI);
	snprintf(buf, sizeof(buf), "%.*s", ASN1_STRING_length(g->d.uniformResourceIdentifier),
	         (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier));
	CRL_DIST_POINTS_free(dps);
	return buf;
}

static int stored_shard(json_t *o)
{
	uint8_t serial[DB_SERIAL_MAX];
	size_t len;
	struct db_cert c = {0};
	struct db_err err = {0};
	struct db *db = owner_db();
	int shard;

	ck_assert_int_eq(db_serial_from_hex(jstr(o, "serial"), serial, &len), 0);
	ck_assert_msg(db_cert_lookup(db, 0, serial, len, &c, &err) == DB_OK, "%s", err.msg);
	shard = c.crl_shard;
	db_cert_clear(&c);
	db_close(db);
	return shard;
}

START_TEST(crl_shard_is_assigned_and_named_in_the_distribution_point)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	int seen[4] = {0}, distinct = 0;
	char want[128];
	json_t *o;
	X509 *x;

	for (int i = 0; i < 12; i++) {
		int shard;
		o = issue_ok("officer", "code-signing", k, "/CN=Shard test/O=Example/C=DE", NULL);
		x = pem_cert(jstr(o, "certificate"));
		shard = stored_shard(o);
		ck_assert_int_ge(shard, 0);
		ck_assert_int_lt(shard, 4);
		snprintf(want, sizeof(want), "http://crl.test/codesign-%d.crl", shard);
		ck_assert_ptr_nonnull(crldp_uri(x));
		ck_assert_str_eq(crldp_uri(x), want);
		distinct += !seen[shard]++;
		X509_free(x);
		json_decref(o);
	}
	/* 12 random draws over 4 shards: all in one shard has odds of 4^-11 */
	ck_assert_int_gt(distinct, 1);
	o = issue_ok("officer", "tls-server", k, "/CN=www.example.com", "DNS:www.example.com");
	x = pem_cert(jstr(o, "certificate"));
	ck_assert_ptr_null(crldp_uri(x));
	ck_assert_int_eq(stored_shard(o), 0);
	X509_free(x);
	json_decref(o);
	EVP_PKEY_free(k);
}
END_TEST

/* Each bad request: status and error code, and nothing issued. */
static void refused(const char *who, const char *body, long status, const char *error)
{
	long long before = count("SELECT count(*) FROM certificates");
	long long denied = count("SELECT count(*) FROM audit_log WHERE outcome = 'denied'");
	json_t *o = NULL;
	long st = api(who, "POST", "/api/v1/certificates", body, &o);

	ck_assert_msg(st == status && !strcmp(jstr(o, "error"), error),
	              "expected %ld %s, got %ld %s (%s)", status, error, st, jstr(o, "error"),
	              jstr(o, "detail"));
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), before);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE outcome = 'denied'"),
	                 denied + 1);
}

static void refused_csr(const char *profile, EVP_PKEY *k, const char *subject, const char *san,
                        const char *error)
{
	char *csr = make_csr(k, subject, san), *body = issue_body(profile, csr);

	refused("officer", body, 400, error);
	free(body);
	free(csr);
}

START_TEST(bad_requests_change_nothing)
{
	EVP_PKEY *p256 = EVP_EC_gen("P-256");
	EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *p521 = EVP_EC_gen("P-521");
	char *csr, *body, *bad;

	refused("officer", "{not json", 400, "malformed-json");
	refused("officer", "[1,2]", 400, "malformed-json");
	refused("officer", "{\"profile\":\"tls-server\"}", 400, "bad-request");
	refused("officer", "{\"profile\":\"tls-server\",\"csr\":\"x\",\"extra\":1}", 400,
	        "unknown-field");
	refused("officer",
	        "{\"profile\":\"tls-server\",\"csr\":\"-----BEGIN CERTIFICATE "
	        "REQUEST-----\\nAAAA\\n-----END CERTIFICATE REQUEST-----\\n\"}",
	        400, "bad-csr");
	csr = make_csr(p256, "/CN=www.example.com", "DNS:www.example.com");
	body = issue_body("no-such-profile", csr);
	refused("officer", body, 400, "unknown-profile");
	free(body);
	/* A signature that does not match: flip a byte inside the signature. */
	{
		BIO *b = BIO_new_mem_buf(csr, -1);
		X509_REQ *req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
		unsigned char *der = NULL, *p;
		int n = i2d_X509_REQ(req, &der);
		BIO *out = BIO_new(BIO_s_mem());
		char *data;
		long len;
		X509_REQ *bent;

		der[n - 5] ^= 0x01;
		p = der;
		bent = d2i_X509_REQ(NULL, (const unsigned char **)&p, n);
		ck_assert_ptr_nonnull(bent);
		PEM_write_bio_X509_REQ(out, bent);
		len = BIO_get_mem_data(out, &data);
		bad = strndup(data, (size_t)len);
		body = issue_body("tls-server", bad);
		refused("officer", body, 400, "csr-signature-invalid");
		free(body);
		free(bad);
		X509_REQ_free(bent);
		X509_REQ_free(req);
		OPENSSL_free(der);
		BIO_free(out);
		BIO_free(b);
	}
	free(csr);
	refused_csr("tls-server", rsa1024, "/CN=www.example.com", "DNS:www.example.com",
	            "key-not-allowed");
	refused_csr("tls-server", p521, "/CN=www.example.com", "DNS:www.example.com",
	            "key-not-allowed");
	refused_csr("device", rsa1024, "/CN=d1", "URI:urn:dev:d1", "key-not-allowed");
	refused_csr("tls-server", p256, "/CN=www.evil.com", "DNS:www.evil.com", "name-not-allowed");
	refused_csr("tls-server", p256, "/CN=a.example.com", "DNS:a.b.example.com",
	            "name-not-allowed");
	refused_csr("tls-server", p256, "/CN=x", "IP:192.168.1.1", "name-not-allowed");
	refused_csr("tls-server", p256, "/CN=www.example.com/OU=Nope", "DNS:www.example.com",
	            "name-not-allowed");
	refused_csr("tls-server", p256, "/CN=www.example.com", NULL, "name-not-allowed");
	refused_csr("tls-client", p256, "/O=Example", NULL, "name-not-allowed");
	refused_csr("tls-client", p256, "/CN=a", "DNS:www.example.com", "name-not-allowed");
	/* A TLS server's commonName must be one of its SANs: the request check refuses it first. */
	refused_csr("tls-server", p256, "/CN=mail.example.com", "DNS:www.example.com",
	            "name-not-allowed");
	/* The linter before signing catches what the profile's own checks let through: tls-uri
	 * names its servers by URI alone, which its SAN patterns allow and the TLS server rules
	 * (a dNSName or iPAddress SAN, the CN among them) do not. */
	{
		long long before = count("SELECT count(*) FROM certificates");
		json_t *o = NULL;
		csr = make_csr(p256, "/CN=svc1", "URI:urn:svc:1");
		body = issue_body("tls-uri", csr);
		ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", body, &o), 400);
		ck_assert_str_eq(jstr(o, "error"), "lint-failed");
		ck_assert_msg(strstr(jstr(o, "detail"), "lint rule tls_"), "%s", jstr(o, "detail"));
		ck_assert_int_eq(count("SELECT count(*) FROM certificates"), before);
		json_decref(o);
		free(body);
		free(csr);
	}
	EVP_PKEY_free(p256);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(p521);
}
END_TEST

START_TEST(validity_is_bounded_by_the_profile)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char *csr = make_csr(k, "/CN=v.example.com", "DNS:v.example.com");
	json_t *b =
	    json_pack("{s:s, s:s, s:i}", "profile", "tls-server", "csr", csr, "validity_days", 398);
	char *body = json_dumps(b, 0);
	json_t *o = NULL;

	refused("officer", body, 400, "validity-not-allowed");
	free(body);
	json_object_set_new(b, "validity_days", json_integer(30));
	body = json_dumps(b, 0);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", body, &o), 201);
	{
		X509 *x = pem_cert(jstr(o, "certificate"));
		int days, secs;
		ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x));
		ck_assert_int_eq(days, 30);
		X509_free(x);
	}
	json_decref(o);
	json_decref(b);
	free(body);
	free(csr);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(ra_issues_and_revokes_only_in_granted_profiles)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char *csr = make_csr(k, "/CN=dev-9", "URI:urn:dev:dev-9"),
	     *body = issue_body("device", csr);
	json_t *o = issue_ok("ra", "tls-server", k, "/CN=ra.example.com", "DNS:ra.example.com");
	json_t *d;
	char path[128];

	refused("ra", body, 403, "profile-not-granted");
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/revoke", jstr(o, "serial"));
	ck_assert_int_eq(api("ra", "POST", path, "{\"reason\":\"superseded\"}", NULL), 200);
	/* A device certificate by an officer is outside ra's grant. */
	d = issue_ok("officer", "device", k, "/CN=dev-9", "URI:urn:dev:dev-9");
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/revoke", jstr(d, "serial"));
	ck_assert_int_eq(api("ra", "POST", path, NULL, NULL), 403);
	check_stored(d, "issued");
	json_decref(d);
	json_decref(o);
	free(body);
	free(csr);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(hold_release_revoke_are_durable_and_announced)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	json_t *o = issue_ok("officer", "tls-server", k, "/CN=r.example.com", "DNS:r.example.com");
	struct db_revocation_event ev;
	struct db_err err = {0};
	struct db *listener = NULL;
	char path[160], serial[64];
	json_t *r = NULL;
	int got = 0;

	snprintf(serial, sizeof(serial), "%s", jstr(o, "serial"));
	ck_assert_int_eq(db_connect(pg.app_ci, &listener, &err), DB_OK);
	ck_assert_int_eq(db_revocations_listen(listener, &err), DB_OK);

	snprintf(path, sizeof(path), "/api/v1/certificates/%s/hold", serial);
	ck_assert_int_eq(api("officer", "POST", path, NULL, &r), 200);
	ck_assert_str_eq(jstr(r, "status"), "hold");
	ck_assert_str_eq(jstr(r, "revocation_reason"), "certificateHold");
	json_decref(r);
	ck_assert_int_eq(db_revocation_next(listener, 5000, &ev, &got, &err), DB_OK);
	ck_assert_int_eq(got, 1);
	ck_assert_int_eq(ev.status, DB_CERT_HOLD);

	snprintf(path, sizeof(path), "/api/v1/certificates/%s/release", serial);
	ck_assert_int_eq(api("officer", "POST", path, NULL, &r), 200);
	ck_assert_str_eq(jstr(r, "status"), "issued");
	json_decref(r);
	ck_assert_int_eq(db_revocation_next(listener, 5000, &ev, &got, &err), DB_OK);
	ck_assert_int_eq(ev.status, DB_CERT_ISSUED);

	snprintf(path, sizeof(path), "/api/v1/certificates/%s/revoke", serial);
	ck_assert_int_eq(api("officer", "POST", path,
	                     "{\"reason\":\"keyCompromise\","
	                     "\"invalidity_date\":\"2026-01-01T00:00:00Z\"}",
	                     &r),
	                 200);
	ck_assert_str_eq(jstr(r, "status"), "revoked");
	ck_assert_str_eq(jstr(r, "revocation_reason"), "keyCompromise");
	ck_assert_str_eq(jstr(r, "invalidity_date"), "2026-01-01T00:00:00Z");
	json_decref(r);
	ck_assert_int_eq(db_revocation_next(listener, 5000, &ev, &got, &err), DB_OK);
	ck_assert_int_eq(ev.status, DB_CERT_REVOKED);
	/* Durable when answered: the database says so from another connection. */
	check_stored(o, "revoked");
	/* Each change is in the audit log, with who did it. */
	{
		char sql[300];
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM audit_log WHERE object = '%s' AND actor = 'officer'"
		         " AND outcome = 'success'",
		         serial);
		ck_assert_int_eq(count(sql), 4); /* issue, hold, release, revoke */
	}
	/* Held or released again: refused, revoked again: no change. */
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/hold", serial);
	ck_assert_int_eq(api("officer", "POST", path, NULL, &r), 409);
	json_decref(r);
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/revoke", serial);
	ck_assert_int_eq(api("officer", "POST", path, "{\"reason\":\"certificateHold\"}", &r), 400);
	json_decref(r);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates/7e0011/revoke", NULL, &r),
	                 404);
	ck_assert_str_eq(jstr(r, "error"), "unknown-serial");
	json_decref(r);
	db_close(listener);
	json_decref(o);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(show_and_list_with_filters_and_paging)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	json_t *a =
	    issue_ok("officer", "tls-server", k, "/CN=list.example.com", "DNS:list.example.com");
	json_t *b =
	    issue_ok("officer", "tls-server", k, "/CN=list.example.com", "DNS:list.example.com");
	json_t *o = NULL;
	char path[256];
	long long next;

	snprintf(path, sizeof(path), "/api/v1/certificates/%s", jstr(a, "serial"));
	ck_assert_int_eq(api("auditor", "GET", path, NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "certificate"), jstr(a, "certificate"));
	ck_assert_str_eq(jstr(o, "profile"), "tls-server");
	json_decref(o);

	ck_assert_int_eq(
	    api("auditor", "GET", "/api/v1/certificates?san=list.example.com&limit=1", NULL, &o),
	    200);
	ck_assert_int_eq(json_array_size(json_object_get(o, "certificates")), 1);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(o, "certificates"), 0), "serial"),
	                 jstr(a, "serial"));
	next = json_integer_value(json_object_get(o, "next"));
	ck_assert_int_gt(next, 0);
	json_decref(o);
	snprintf(path, sizeof(path), "/api/v1/certificates?san=list.example.com&limit=1&after=%lld",
	         next);
	ck_assert_int_eq(api("auditor", "GET", path, NULL, &o), 200);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(o, "certificates"), 0), "serial"),
	                 jstr(b, "serial"));
	json_decref(o);
	ck_assert_int_eq(
	    api("auditor", "GET",
	        "/api/v1/certificates?subject=CN%3Dlist.example.com&status=issued"
	        "&expires_after=2020-01-01T00:00:00Z&expires_before=2099-01-01T00:00:00Z",
	        NULL, &o),
	    200);
	ck_assert_int_eq(json_array_size(json_object_get(o, "certificates")), 2);
	json_decref(o);
	/* Substrings, case-insensitive; the profile exactly; LIKE wildcards are literal. */
	ck_assert_int_eq(
	    api("auditor", "GET",
	        "/api/v1/certificates?subject=LIST.EXAMPLE&san=st.exam&profile=tls-server", NULL,
	        &o),
	    200);
	ck_assert_int_eq(json_array_size(json_object_get(o, "certificates")), 2);
	json_decref(o);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/certificates?san=list%25example", NULL, &o),
	                 200);
	ck_assert_int_eq(json_array_size(json_object_get(o, "certificates")), 0);
	json_decref(o);
	ck_assert_int_eq(api("auditor", "GET",
	                     "/api/v1/certificates?san=list.example.com&profile=device", NULL, &o),
	                 200);
	ck_assert_int_eq(json_array_size(json_object_get(o, "certificates")), 0);
	json_decref(o);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/certificates?profile=nope", NULL, &o), 400);
	json_decref(o);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/certificates?status=bogus", NULL, &o), 400);
	json_decref(o);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/certificates/zz", NULL, &o), 400);
	json_decref(o);
	json_decref(a);
	json_decref(b);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(audit_verifies_and_exports)
{
	json_t *o = NULL;

	ck_assert_int_eq(api("auditor", "GET", "/api/v1/audit/verify", NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "finding"), "intact");
	ck_assert_int_gt(json_integer_value(json_object_get(o, "entries")), 0);
	json_decref(o);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/audit?limit=2", NULL, &o), 200);
	ck_assert_int_eq(json_array_size(json_object_get(o, "entries")), 2);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(o, "entries"), 0), "action"),
	                 "principal.bootstrap");
	ck_assert_str_eq(jstr(json_array_get(json_object_get(o, "entries"), 1), "action"),
	                 "authority.register");
	json_decref(o);
}
END_TEST

START_TEST(log_never_shows_a_token)
{
	char log[512], cmd[700];

	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/principals",
	                     "{\"name\":\"bot-3\",\"role\":\"ca-admin\"}", NULL),
	                 201);
	ck_assert_int_eq(
	    api("ca-admin", "POST", "/api/v1/principals/bot-3/tokens", "{\"name\":\"t\"}", NULL),
	    201);
	path_of(log, sizeof(log), "cad.log");
	snprintf(cmd, sizeof(cmd),
	         "grep -q 'status=201 principal=ca-admin' %s && ! grep -q hsmca_ %s", log, log);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ================= the command line ================= */

static char cli_out[512], cli_err[512];

/* Run hsmca with the API variables for who (a role, or "token:SECRET"); NULL-terminated
 * arguments after the command. stdout and stderr go to cli_out and cli_err. */
static int cli(const char *who, ...)
{
	const char *args[24];
	va_list ap;
	int n = 0;

	path_of(cli_out, sizeof(cli_out), "cli.out");
	path_of(cli_err, sizeof(cli_err), "cli.err");
	va_start(ap, who);
	while (n < 23 && (args[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	args[n] = NULL;
	return harness_cli(&site, who, args, cli_out, cli_err);
}

START_TEST(cli_issues_shows_lists_and_revokes)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char *csr = make_csr(k, "/CN=cli.example.com", "DNS:cli.example.com");
	char csr_path[512], serial[64], *pem, *p;

	harness_write_text(dir_file("cli.csr"), csr);
	path_of(csr_path, sizeof(csr_path), "cli.csr");
	ck_assert_int_eq(
	    cli("officer", "issue", "--profile", "tls-server", "--csr", csr_path, NULL), 0);
	pem = strdup(harness_slurp(cli_out));
	ck_assert_ptr_nonnull(strstr(pem, "-----BEGIN CERTIFICATE-----"));
	verify_with_openssl(pem, "issuing.pem");
	p = strstr(harness_slurp(cli_err), "issued serial ");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p, "issued serial %63s", serial), 1);

	ck_assert_int_eq(cli("auditor", "show", serial, "--pem", NULL), 0);
	ck_assert_str_eq(harness_slurp(cli_out), pem);
	ck_assert_int_eq(cli("officer", "revoke", serial, "--reason", "keyCompromise", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "revoked"));
	ck_assert_int_eq(
	    cli("auditor", "list", "--status", "revoked", "--san", "cli.example.com", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), serial));
	/* Errors: a message on stderr and a non-zero status. */
	ck_assert_int_eq(cli("officer", "hold", serial, NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "wrong-state"));
	ck_assert_int_eq(cli("officer", "issue", "--profile", "nope", "--csr", csr_path, NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "unknown-profile"));
	ck_assert_int_eq(cli("auditor", "revoke", serial, "--reason", "superseded", NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "role-not-permitted"));
	ck_assert_int_eq(cli(NULL, "list", NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "no credentials"));
	ck_assert_int_eq(cli("officer", "revoke", serial, NULL), 2);
	/* A malformed serial is named as such, not answered with the usage. */
	ck_assert_int_eq(cli("auditor", "show", "xyz", NULL), 2);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "serials are hex"));
	ck_assert_ptr_null(strstr(harness_slurp(cli_err), "usage:"));
	ck_assert_int_eq(cli("officer", "revoke", "12:zz", "--reason", "superseded", NULL), 2);
	ck_assert_ptr_nonnull(
	    strstr(harness_slurp(cli_err), "hsmca revoke: \"12:zz\" is not a serial"));
	ck_assert_int_eq(cli("officer", "hold", "xyz", NULL), 2);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "serials are hex"));
	ck_assert_int_eq(cli("officer", "issue", "--help", NULL), 0);
	free(pem);
	free(csr);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(cli_manages_principals_and_tokens_and_reads_the_audit_log)
{
	char token[200], who[220];

	ck_assert_int_eq(cli("ca-admin", "principal", "add", "cli-bot", "--role", "ca-admin", NULL),
	                 0);
	ck_assert_int_eq(
	    cli("ca-admin", "token", "create", "cli-bot", "--name", "ci", "--days", "7", NULL), 0);
	ck_assert_int_eq(sscanf(harness_slurp(cli_out), "%199s", token), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "not shown again"));
	snprintf(who, sizeof(who), "token:%s", token);
	ck_assert_int_eq(cli(who, "audit", "verify", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "audit log intact"));
	ck_assert_int_eq(cli(who, "audit", "export", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"action\":\"authority.register\""));
	ck_assert_int_eq(cli("auditor", "principal", "list", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "cli-bot"));
	ck_assert_int_eq(cli("auditor", "token", "list", "cli-bot", NULL), 0);
	ck_assert_ptr_null(strstr(harness_slurp(cli_out), token));
	ck_assert_int_eq(cli("ca-admin", "principal", "disable", "cli-bot", NULL), 0);
	ck_assert_int_eq(cli(who, "audit", "verify", NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "disabled"));
	ck_assert_int_eq(cli("auditor", "profiles", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "code-signing"));
}
END_TEST

START_TEST(audit_checkpoints_are_signed_and_checked)
{
	json_t *o = NULL, *sigs;
	PGresult *r;
	struct db *db;
	char sql[700], seq[32], sig[400];

	for (int i = 0; i < 100 && count("SELECT count(*) FROM audit_checkpoints") == 0; i++)
		usleep(100000);
	ck_assert_int_gt(count("SELECT count(*) FROM audit_checkpoints"), 0);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/audit/verify", NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "finding"), "intact");
	sigs = json_object_get(o, "checkpoint_signatures");
	ck_assert_int_gt(json_integer_value(json_object_get(sigs, "valid")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(sigs, "invalid")), 0);
	json_decref(o);

	/* Forge one checkpoint's signature (as the owner, triggers off), then put it back. */
	db = owner_db();
	r = PQexec(db_pgconn(db), "SELECT seq, encode(signature, 'hex') FROM audit_checkpoints"
	                          " ORDER BY seq LIMIT 1");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	snprintf(seq, sizeof(seq), "%s", PQgetvalue(r, 0, 0));
	snprintf(sig, sizeof(sig), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	db_close(db);
	snprintf(sql, sizeof(sql),
	         "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;"
	         " UPDATE audit_checkpoints SET signature = decode('%.*s' || "
	         "CASE substr('%s', %d, 1) WHEN '0' THEN '1' ELSE '0' END, 'hex') WHERE seq = %s;"
	         " ALTER TABLE audit_checkpoints ENABLE TRIGGER USER",
	         (int)strlen(sig) - 1, sig, sig, (int)strlen(sig), seq);
	sql_ok(sql);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/audit/verify", NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "finding"), "bad-checkpoint-signature");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "seq")), atoll(seq));
	json_decref(o);
	ck_assert_int_eq(cli("auditor", "audit", "verify", NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "bad-checkpoint-signature"));
	snprintf(sql, sizeof(sql),
	         "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;"
	         " UPDATE audit_checkpoints SET signature = decode('%s', 'hex') WHERE seq = %s;"
	         " ALTER TABLE audit_checkpoints ENABLE TRIGGER USER",
	         sig, seq);
	sql_ok(sql);
	ck_assert_int_eq(cli("auditor", "audit", "verify", NULL), 0);
}
END_TEST

START_TEST(cli_audit_verify_names_a_modified_entry)
{
	/* Change entry 2's object behind the application's back, then put it back. */
	sql_ok("ALTER TABLE audit_log DISABLE TRIGGER USER;"
	       " UPDATE audit_log SET object = object || '-forged' WHERE seq = 2;"
	       " ALTER TABLE audit_log ENABLE TRIGGER USER");
	ck_assert_int_eq(cli("auditor", "audit", "verify", NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "audit log modified at entry 2"));
	sql_ok("ALTER TABLE audit_log DISABLE TRIGGER USER;"
	       " UPDATE audit_log SET object = left(object, length(object) - 7) WHERE seq = 2;"
	       " ALTER TABLE audit_log ENABLE TRIGGER USER");
	ck_assert_int_eq(cli("auditor", "audit", "verify", NULL), 0);
}
END_TEST

/* ================= hostile input (issue 9) ================= */

/* Strings a careless server mishandles, each as it goes inside a JSON string (escaped) and raw
 * (for paths and queries, percent-encoded): SQL metacharacters, a NUL, overlong and invalid
 * UTF-8, control characters and header injection, path tricks, a right-to-left override, and
 * a value far beyond any field's limit. */
static const struct hostile {
	const char *json; /* inside "...": already escaped as JSON, or raw bytes to test UTF-8 */
	const char *raw;  /* for paths and queries (percent-encoded by the test) */
} hostiles[] = {
    {"'; DROP TABLE certificates; --", "'; DROP TABLE certificates; --"},
    {"x' OR '1'='1", "x' OR '1'='1"},
    {"a\\u0000b", "a\0b"},
    {"\xc0\xaf\xc0\xaf", "\xc0\xaf\xc0\xaf"}, /* overlong "/" */
    {"\xed\xa0\x80", "\xed\xa0\x80"},         /* a UTF-16 surrogate in UTF-8 */
    {"\xff\xfe", "\xff\xfe"},                 /* not UTF-8 at all */
    {"line\\r\\nX-Injected: 1", "line\r\nX-Injected: 1"},
    {"../../../etc/passwd", "../../../etc/passwd"},
    {"<script>alert(1)</script>", "<script>alert(1)</script>"},
    {"\\u202eexe.txt", "\xe2\x80\xae"
                       "exe.txt"},
    {"%00%27", "%00%27"},
    {"\\\\\\\"", "\\\""},
};

/* Bodies (printf with the hostile JSON string) and paths (with the percent-encoded raw one)
 * for every endpoint that takes text, with a principal allowed to call it. data: the field is
 * free text or a search filter, where taking the string as the data it is (2xx) is right too;
 * everywhere else only a 4xx is. */
static const struct hostile_target {
	const char *who, *method, *path, *body;
	int data;
} hostile_targets[] = {
    {"ca-admin", "POST", "/api/v1/principals", "{\"name\":\"%s\",\"role\":\"officer\"}", 0},
    {"ca-admin", "POST", "/api/v1/principals", "{\"name\":\"hx\",\"role\":\"%s\"}", 0},
    {"ca-admin", "POST", "/api/v1/principals",
     "{\"name\":\"hy\",\"role\":\"ra\",\"profiles\":[\"%s\"]}", 0},
    {"ca-admin", "POST", "/api/v1/principals",
     "{\"name\":\"hz\",\"role\":\"officer\",\"certificate\":\"%s\"}", 0},
    {"ca-admin", "POST", "/api/v1/principals/%s/disable", NULL, 0},
    {"ca-admin", "GET", "/api/v1/principals/%s", NULL, 0},
    {"officer", "POST", "/api/v1/principals/officer/tokens", "{\"name\":\"%s\",\"expires_days\":1}",
     1},
    {"ca-admin", "POST", "/api/v1/tokens/%s/revoke", NULL, 0},
    {"officer", "POST", "/api/v1/certificates", "{\"profile\":\"%s\",\"csr\":\"x\"}", 0},
    {"officer", "POST", "/api/v1/certificates", "{\"profile\":\"tls-server\",\"csr\":\"%s\"}", 0},
    {"officer", "GET", "/api/v1/certificates/%s", NULL, 0},
    {"officer", "POST", "/api/v1/certificates/%s/revoke", "{\"reason\":\"keyCompromise\"}", 0},
    {"officer", "POST", "/api/v1/certificates/{serial}/revoke", "{\"reason\":\"%s\"}", 0},
    {"officer", "POST", "/api/v1/certificates/{serial}/revoke",
     "{\"reason\":\"keyCompromise\",\"invalidity_date\":\"%s\"}", 0},
    {"officer", "GET", "/api/v1/certificates?subject=%s", NULL, 1},
    {"officer", "GET", "/api/v1/certificates?status=%s", NULL, 0},
    {"officer", "GET", "/api/v1/certificates?san=%s", NULL, 1},
    {"officer", "GET", "/api/v1/certificates?after=%s", NULL, 0},
    {"admin", "POST", "/api/v1/profiles/%s/disable", NULL, 0},
    {"ca-admin", "POST", "/api/v1/authorities/%s/retire", NULL, 0},
    {"officer", "PUT", "/api/v1/authorities/issuing/settings", "{\"ocsp_signer_key_label\":\"%s\"}",
     0},
    {"officer", "POST", "/api/v1/provisioning-tokens",
     "{\"name\":\"%s\",\"profile\":\"device\",\"expires_days\":1}", 1},
    {"officer", "POST", "/api/v1/provisioning-tokens",
     "{\"name\":\"pt\",\"profile\":\"%s\",\"expires_days\":1}", 0},
    {"officer", "POST", "/api/v1/devices/%s/decommission", "{\"reason\":\"keyCompromise\"}", 0},
    {"officer", "GET", "/api/v1/devices?identity=%s", NULL, 1},
    {"auditor", "GET", "/api/v1/audit?after=%s", NULL, 0},
};

static void percent_encode(const char *raw, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 4 < cap; i++) {
		unsigned char c = (unsigned char)raw[i];
		if (isalnum(c) || c == '-' || c == '_' || c == '.')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
	}
	out[o] = '\0';
}

START_TEST(hostile_strings_get_a_clean_4xx_unless_taken_as_data)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	json_t *o = issue_ok("officer", "tls-server", k, "/CN=sentinel.example.com",
	                     "DNS:sentinel.example.com");
	char serial[64], sql[256];
	const size_t huge_len = 20000; /* over max_body_bytes (16384): a JSON 413 */
	char *huge = malloc(huge_len + 1);
	long long certs, principals, tokens, retired;
	int tried = 0, accepted = 0;

	snprintf(serial, sizeof(serial), "%s", jstr(o, "serial"));
	json_decref(o);
	memset(huge, 'A', huge_len);
	huge[huge_len] = '\0';
	certs = count("SELECT count(*) FROM certificates");
	tokens = count("SELECT count(*) FROM api_tokens");
	principals = count("SELECT count(*) FROM principals");
	retired = count("SELECT count(*) FROM authorities WHERE status = 'retired'");
	for (size_t t = 0; t < sizeof(hostile_targets) / sizeof(hostile_targets[0]); t++) {
		const struct hostile_target *h = &hostile_targets[t];
		for (size_t i = 0; i <= sizeof(hostiles) / sizeof(hostiles[0]); i++) {
			int is_huge = i == sizeof(hostiles) / sizeof(hostiles[0]);
			const char *js = is_huge ? huge : hostiles[i].json;
			const char *raw = is_huge ? huge : hostiles[i].raw;
			size_t raw_len = is_huge ? huge_len : (i == 2 ? 3 : strlen(raw));
			char enc[4096], path[8192], *body = NULL, *p;
			long st;

			if (is_huge && !h->body)
				raw_len = 3000; /* a long path segment, under the header limit */
			percent_encode(raw, raw_len, enc, sizeof(enc));
			if (!h->body) {
				snprintf(path, sizeof(path), h->path, enc);
			} else {
				snprintf(path, sizeof(path), "%s", h->path);
				if ((p = strstr(path, "{serial}"))) {
					char rest[256];
					snprintf(rest, sizeof(rest), "%s", p + 8);
					snprintf(p, sizeof(path) - (size_t)(p - path), "%s%s",
					         serial, rest);
				}
				if (strstr(path, "%s")) {
					char tmp[8192];
					snprintf(tmp, sizeof(tmp), path, enc);
					snprintf(path, sizeof(path), "%s", tmp);
					body = strdup(h->body);
				} else {
					size_t n = strlen(h->body) + strlen(js) + 1;
					body = malloc(n);
					snprintf(body, n, h->body, js);
				}
			}
			o = NULL;
			st = api(h->who, h->method, path, body, &o);
			tried++;
			/* A clean answer: never a server error or a dropped connection; a refusal
			 * says why in JSON (api() asserts {error, detail} on every 4xx); a 2xx only
			 * where the field takes any text as data. */
			ck_assert_msg(st >= (h->data ? 200 : 400) && st < 500,
			              "%s %s [%zu]: status %ld", h->method, h->path, i, st);
			if (st >= 400)
				ck_assert_msg(o != NULL, "%s %s [%zu]: %ld without a JSON body",
				              h->method, h->path, i, st);
			else
				accepted++; /* stored as the data it is (e.g. a token's name) */
			json_decref(o);
			free(body);
		}
	}
	/* Nothing beyond the answers: no certificate issued, revoked or dropped, no principal
	 * made by an injected statement; the sentinel untouched; the audit chain intact; the
	 * service still answering. (Some names are legitimately accepted as plain data:
	 * tokens and provisioning tokens take free-text names.) */
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs);
	ck_assert_int_eq(count("SELECT count(*) FROM principals"), principals);
	ck_assert_int_le(count("SELECT count(*) FROM api_tokens"), tokens + accepted);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM certificates WHERE encode(serial, 'hex') = '%s'"
	         " AND status = 'issued'",
	         serial);
	ck_assert_int_eq(count(sql), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM authorities WHERE status = 'retired'"),
	                 retired);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/audit/verify", NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "finding"), "intact");
	json_decref(o);
	ck_assert_int_eq(api(NULL, "GET", "/api/v1/health", NULL, NULL), 200);
	ck_assert_int_gt(tried, 300);
	free(huge);
	EVP_PKEY_free(k);
}
END_TEST

/* ================= outages ================= */

START_TEST(database_down_is_503_then_service_resumes)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char *csr = make_csr(k, "/CN=pg.example.com", "DNS:pg.example.com");
	char *body = issue_body("tls-server", csr);
	json_t *o = NULL;
	time_t t0;

	ck_assert_int_eq(harness_pgtest(&pg, "stop", NULL), 0);
	t0 = time(NULL);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", body, &o), 503);
	ck_assert_str_eq(jstr(o, "error"), "database-unavailable");
	/* Promptly (cad's connect_timeout is 3 s), not after the client's 60 s: a bound for a
	 * loaded machine, far from what a hang would take. */
	ck_assert_int_le(time(NULL) - t0, 20);
	json_decref(o);
	ck_assert_int_eq(api(NULL, "GET", "/api/v1/health", NULL, NULL), 503);
	ck_assert_int_eq(harness_pgtest(&pg, "start", "--fast"), 0);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", body, &o), 201);
	check_stored(o, "issued");
	json_decref(o);
	free(body);
	free(csr);
	EVP_PKEY_free(k);
}
END_TEST

/* One client: issue until the file load.stop exists (at most 300 s), writing "serial
 * sha256(DER)" for each certificate received, "503" for each 503 and "status N" for any other
 * answer; each line flushed, so that the test can watch. */
static void load_client(int id)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char name[64], cn[64], san[80], *csr, *body, path[512], stop[512];
	time_t end = time(NULL) + 300;
	FILE *f;

	snprintf(name, sizeof(name), "load-%d.out", id);
	path_of(path, sizeof(path), name);
	f = fopen(path, "w");
	snprintf(cn, sizeof(cn), "/CN=load%d.example.com", id);
	snprintf(san, sizeof(san), "DNS:load%d.example.com", id);
	csr = make_csr(k, cn, san);
	body = issue_body("tls-server", csr);
	path_of(stop, sizeof(stop), "load.stop");
	while (time(NULL) < end && access(stop, F_OK) != 0) {
		json_t *o = NULL;
		long st = api("officer", "POST", "/api/v1/certificates", body, &o);
		if (st == 201) {
			X509 *x = pem_cert(jstr(o, "certificate"));
			unsigned char md[32];
			unsigned int n;
			X509_digest(x, EVP_sha256(), md, &n);
			fprintf(f, "%s ", jstr(o, "serial"));
			for (int i = 0; i < 32; i++)
				fprintf(f, "%02x", md[i]);
			fprintf(f, "\n");
			X509_free(x);
		} else if (st == 503) {
			fprintf(f, "503\n");
		} else {
			fprintf(f, "status %ld %s\n", st, jstr(o, "detail"));
		}
		fflush(f);
		json_decref(o);
	}
	fclose(f);
	_exit(0);
}

/* The number of lines of the load clients' outputs that start with prefix (NULL: the
 * certificates received). */
static long load_lines(const char *prefix)
{
	long n = 0;

	for (int i = 0; i < 3; i++) {
		char name[64], line[300];
		FILE *f;

		snprintf(name, sizeof(name), "load-%d.out", i);
		if (!(f = fopen(dir_file(name), "r")))
			continue;
		while (fgets(line, sizeof(line), f))
			n += prefix ? !strncmp(line, prefix, strlen(prefix))
			            : strncmp(line, "503", 3) && strncmp(line, "status", 6);
		fclose(f);
	}
	return n;
}

/* Wait (at most 120 s) until load_lines(prefix) is more than `than`; returns it. */
static long wait_load_lines(const char *prefix, long than)
{
	long n = 0;

	for (int i = 0; i < 2400 && (n = load_lines(prefix)) <= than; i++)
		usleep(50000);
	return n;
}

START_TEST(database_restart_under_load_loses_no_certificate)
{
	pid_t clients[3];
	long long received = 0;
	long before;
	int st;

	unlink(dir_file("load.stop"));
	for (int i = 0; i < 3; i++) {
		clients[i] = fork();
		if (clients[i] == 0)
			load_client(i);
	}
	/* Each step waits for the event itself (the clients' answers), not for a time: a
	 * certificate before the outage, 503s during it, certificates again after it. */
	ck_assert_int_gt(wait_load_lines(NULL, 0), 0);
	ck_assert_int_eq(harness_pgtest(&pg, "stop", NULL), 0);
	ck_assert_int_gt(wait_load_lines("503", 0), 0);
	ck_assert_int_eq(harness_pgtest(&pg, "start", "--fast"), 0);
	before = load_lines(NULL);
	ck_assert_int_gt(wait_load_lines(NULL, before + 3), before + 3);
	harness_write_text(dir_file("load.stop"), "");
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(waitpid(clients[i], &st, 0), clients[i]);
	/* Every certificate a client received is in the database, as issued, byte for byte. */
	for (int i = 0; i < 3; i++) {
		char name[64], line[300], serial[64], digest[65], sql[400];
		FILE *f;

		snprintf(name, sizeof(name), "load-%d.out", i);
		f = fopen(dir_file(name), "r");
		ck_assert_ptr_nonnull(f);
		while (fgets(line, sizeof(line), f)) {
			ck_assert_msg(strncmp(line, "status", 6), "client %d got %s", i, line);
			if (!strcmp(line, "503\n"))
				continue;
			ck_assert_int_eq(sscanf(line, "%63s %64s", serial, digest), 2);
			snprintf(
			    sql, sizeof(sql),
			    "SELECT count(*) FROM certificates WHERE status = 'issued' AND"
			    " encode(serial, 'hex') = '%s' AND encode(sha256(der), 'hex') = '%s'",
			    serial, digest);
			ck_assert_msg(count(sql) == 1, "certificate %s is not in the database",
			              serial);
			received++;
		}
		fclose(f);
	}
	ck_assert_int_gt(received, 0);
	/* And the service is back without a restart. */
	ck_assert_int_eq(api(NULL, "GET", "/api/v1/health", NULL, NULL), 200);
}
END_TEST

START_TEST(keyd_down_is_503_nothing_signed_then_service_resumes)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char *csr = make_csr(k, "/CN=kd.example.com", "DNS:kd.example.com");
	char *body = issue_body("tls-server", csr);
	long long issued = count("SELECT count(*) FROM certificates WHERE status = 'issued'");
	json_t *o = NULL;

	/* A stopped keyd: it accepts connections but never answers. */
	ck_assert_int_eq(kill(h.keyd_pid, SIGSTOP), 0);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", body, &o), 503);
	ck_assert_str_eq(jstr(o, "error"), "keyd-unavailable");
	json_decref(o);
	kill(h.keyd_pid, SIGCONT);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE status = 'issued'"),
	                 issued);
	/* The reservation is recorded as failed: nothing signed that the database lacks. */
	ck_assert_int_ge(count("SELECT count(*) FROM certificates WHERE status = 'failed'"), 1);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", body, &o), 201);
	json_decref(o);
	free(body);
	free(csr);
	EVP_PKEY_free(k);
}
END_TEST

/* ================= crashes (invariant 2 of docs/architecture.md) ================= */

/* Start an issuance in a child process; returns its pid. The child exits 0 iff it received
 * no certificate. */
static pid_t issue_in_background(const char *cn)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char subject[128], san[128], *csr, *body;
	pid_t pid;

	snprintf(subject, sizeof(subject), "/CN=%s", cn);
	snprintf(san, sizeof(san), "DNS:%s", cn);
	csr = make_csr(k, subject, san);
	body = issue_body("tls-server", csr);
	pid = fork();
	if (pid == 0) {
		json_t *o = NULL;
		long st = api("officer", "POST", "/api/v1/certificates", body, &o);
		_exit(st == 201 || (o && json_object_get(o, "certificate")) ? 1 : 0);
	}
	free(body);
	free(csr);
	EVP_PKEY_free(k);
	return pid;
}

static long long wait_for(const char *sql)
{
	long long n = 0;

	for (int i = 0; i < 200 && (n = count(sql)) == 0; i++)
		usleep(50000);
	return n;
}

START_TEST(killed_between_reserve_and_sign_leaves_a_reservation)
{
	pid_t client;
	int st;

	ck_assert_int_eq(kill(h.keyd_pid, SIGSTOP), 0);
	client = issue_in_background("crash1.example.com");
	ck_assert_int_eq(wait_for("SELECT count(*) FROM certificates WHERE status = 'reserved'"
	                          " AND subject = 'CN=crash1.example.com'"),
	                 1);
	kill(cad_pid, SIGKILL);
	kill(h.keyd_pid, SIGCONT);
	ck_assert_int_eq(waitpid(client, &st, 0), client);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the client got a certificate");
	/* The database knows the serial and contents: OCSP and CRL can account for it. */
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE status = 'reserved'"
	                       " AND der IS NULL AND subject = 'CN=crash1.example.com'"),
	                 1);
}
END_TEST

START_TEST(killed_between_sign_and_store_the_database_still_records_it)
{
	struct db *db = owner_db();
	PGresult *r;
	pid_t client;
	int st;

	ck_assert_int_eq(kill(h.keyd_pid, SIGSTOP), 0);
	client = issue_in_background("crash2.example.com");
	ck_assert_int_eq(wait_for("SELECT count(*) FROM certificates WHERE status = 'reserved'"
	                          " AND subject = 'CN=crash2.example.com'"),
	                 1);
	/* Hold the row, let keyd sign, and wait until cad waits to store the signed DER. */
	r = PQexec(db_pgconn(db), "BEGIN; SELECT id FROM certificates"
	                          " WHERE subject = 'CN=crash2.example.com' FOR UPDATE");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	kill(h.keyd_pid, SIGCONT);
	ck_assert_int_eq(wait_for("SELECT count(*) FROM pg_locks WHERE NOT granted"), 1);
	kill(cad_pid, SIGKILL);
	PQclear(PQexec(db_pgconn(db), "ROLLBACK"));
	db_close(db);
	ck_assert_int_eq(waitpid(client, &st, 0), client);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the client got a certificate");
	/* Signed, never delivered. The store (one statement that is its own transaction) was
	 * already with the database, waiting for the row: the database finishes it after cad is
	 * gone, so the certificate is known with its DER, and audited. What must never be is a
	 * signed certificate the database does not know. That commit happens after our ROLLBACK,
	 * in its own time (on a loaded machine after the next query once): wait for it. The
	 * audit row is in the same transaction, visible with it. */
	ck_assert_int_eq(wait_for("SELECT count(*) FROM certificates WHERE status = 'issued'"
	                          " AND der IS NOT NULL AND subject = 'CN=crash2.example.com'"),
	                 1);
	ck_assert_int_eq(
	    count("SELECT count(*) FROM audit_log a JOIN certificates c"
	          " ON a.object = encode(c.serial, 'hex')"
	          " WHERE c.subject = 'CN=crash2.example.com' AND a.action = 'certificate.issue'"),
	    1);
}
END_TEST

/* ================= run-time settings: profiles, CRL and OCSP, retired authorities ========= */

START_TEST(unknown_endpoint_is_audited_when_authenticated)
{
	const char *q =
	    "SELECT count(*) FROM audit_log WHERE outcome = 'denied'"
	    " AND action = 'request.unknown-endpoint' AND object = '/api/v1/nope-probe'";
	const char *q_anon = "SELECT count(*) FROM audit_log WHERE outcome = 'denied'"
	                     " AND action = 'request.unknown-endpoint' AND actor = 'anonymous'"
	                     " AND object = '/api/v1/nope-probe'";
	json_t *o = NULL;

	ck_assert_int_eq(api("officer", "GET", "/api/v1/nope-probe", NULL, &o), 404);
	ck_assert_str_eq(jstr(o, "error"), "not-found");
	json_decref(o);
	ck_assert_int_eq(count(q), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE actor = 'officer'"
	                       " AND role = 'officer' AND action = 'request.unknown-endpoint'"
	                       " AND object = '/api/v1/nope-probe'"),
	                 1);
	/* Without credentials: still 404, not logged (anonymous noise). */
	ck_assert_int_eq(api(NULL, "GET", "/api/v1/nope-probe", NULL, &o), 404);
	json_decref(o);
	ck_assert_int_eq(count(q), 1);
	/* A bad token on an unknown path: 401, audited. */
	ck_assert_int_eq(api("token:not-a-token", "GET", "/api/v1/nope-probe", NULL, &o), 401);
	json_decref(o);
	ck_assert_int_eq(count(q_anon), 1);
	/* A known path with the wrong method, authenticated: 405, audited. */
	ck_assert_int_eq(api("auditor", "DELETE", "/api/v1/authorities", NULL, &o), 405);
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE actor = 'auditor'"
	                       " AND action = 'request.method-not-allowed'"
	                       " AND object = '/api/v1/authorities'"),
	                 1);
}
END_TEST

static int profile_enabled_in_list(const char *name)
{
	json_t *o = NULL, *p;
	size_t i;
	int enabled = -1;

	ck_assert_int_eq(api("ra", "GET", "/api/v1/profiles", NULL, &o), 200);
	json_array_foreach(json_object_get(o, "profiles"), i, p)
	{
		if (!strcmp(jstr(p, "name"), name))
			enabled = json_is_true(json_object_get(p, "enabled"));
	}
	json_decref(o);
	return enabled;
}

START_TEST(disabled_profile_issues_nothing)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char *csr = make_csr(k, "/CN=dis.example.com", "DNS:dis.example.com");
	char *body = issue_body("tls-server", csr);
	long long certs = count("SELECT count(*) FROM certificates");
	long long changes = count("SELECT count(*) FROM audit_log WHERE action = 'profile.disable'"
	                          " AND outcome = 'success'");
	json_t *o = NULL;

	ck_assert_int_eq(profile_enabled_in_list("tls-server"), 1);
	/* Only an admin switches profiles (the ca-admin neither: the emCA split). */
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/profiles/tls-server/disable", NULL, &o),
	                 403);
	json_decref(o);
	ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles/tls-server/disable", NULL, &o),
	                 200);
	ck_assert(json_is_false(json_object_get(o, "enabled")));
	json_decref(o);
	ck_assert_int_eq(profile_enabled_in_list("tls-server"), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM profile_settings WHERE profile = 'tls-server'"
	                       " AND NOT enabled AND updated_by = 'admin'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'profile.disable'"
	                       " AND outcome = 'success' AND actor = 'admin'"
	                       " AND object = 'tls-server'"),
	                 changes + 1);
	/* Again: nothing changes, nothing more audited. */
	ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles/tls-server/disable", NULL, NULL),
	                 200);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'profile.disable'"
	                       " AND outcome = 'success'"),
	                 changes + 1);

	/* Refused for officer and ra alike, nothing reserved, the denial audited. */
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", body, &o), 409);
	ck_assert_str_eq(jstr(o, "error"), "profile-disabled");
	ck_assert_ptr_nonnull(strstr(jstr(o, "detail"), "tls-server"));
	json_decref(o);
	ck_assert_int_eq(api("ra", "POST", "/api/v1/certificates", body, &o), 409);
	ck_assert_str_eq(jstr(o, "error"), "profile-disabled");
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs);
	ck_assert_int_ge(count("SELECT count(*) FROM audit_log WHERE action = 'certificate.issue'"
	                       " AND outcome = 'denied' AND object = 'tls-server'"
	                       " AND detail LIKE '%profile-disabled%'"),
	                 2);
	/* Other profiles go on issuing. */
	json_decref(issue_ok("officer", "device", k, "/CN=dev-dis", "URI:urn:dev:dis"));

	ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles/nope/disable", NULL, &o), 404);
	ck_assert_str_eq(jstr(o, "error"), "unknown-profile");
	json_decref(o);
	ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles/tls-server/enable", NULL, &o), 200);
	ck_assert(json_is_true(json_object_get(o, "enabled")));
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'profile.enable'"
	                       " AND outcome = 'success' AND object = 'tls-server'"),
	                 1);
	ck_assert_int_eq(profile_enabled_in_list("tls-server"), 1);
	json_decref(
	    issue_ok("officer", "tls-server", k, "/CN=dis.example.com", "DNS:dis.example.com"));
	free(csr);
	free(body);
	EVP_PKEY_free(k);
}
END_TEST

/* PUT with body as officer; the status, and the error code when 4xx. */
static long put_settings(const char *authority, const char *body, char *error, size_t n,
                         char *detail, size_t dn)
{
	char path[160];
	json_t *o = NULL;
	long st;

	snprintf(path, sizeof(path), "/api/v1/authorities/%s/settings", authority);
	st = api("officer", "PUT", path, body, &o);
	snprintf(error, n, "%s", jstr(o, "error"));
	snprintf(detail, dn, "%s", jstr(o, "detail"));
	json_decref(o);
	return st;
}

static json_int_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* One source for the CRL distribution: the configuration's crl_base_url and crl_shards seed
 * the authority's settings in the database, where hsmca-crld reads which CRLs to publish;
 * a configuration that disagrees with them is refused at start, naming both. */
START_TEST(crl_distribution_is_the_databases_and_a_disagreement_is_refused)
{
	static const char *const bad[] = {
	    "{\"crl_shards\":4}", /* issuing has no crl_base_url */
	    "{\"crl_shards\":1}",
	    "{\"crl_base_url\":\"ldap://crl.test/\"}",
	    "{\"crl_base_url\":\"http://crl.test/a,b/\"}",
	    "{\"crl_base_url\":7}",
	};
	char error[64], detail[1024], conf[8192], bin[512], out[512];
	char *argv[] = {bin, "--config", conf, NULL};
	const char *text;
	json_t *o = NULL;

	/* Seeded from the configuration at start; agreeing with it, cad runs. */
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/authorities/codesign/settings", NULL, &o),
	                 200);
	ck_assert_str_eq(jstr(o, "crl_base_url"), "http://crl.test/");
	ck_assert_int_eq(jint(o, "crl_shards"), 4);
	json_decref(o);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/authorities/issuing/settings", NULL, &o),
	                 200);
	ck_assert_str_eq(jstr(o, "crl_base_url"), "");
	ck_assert_int_eq(jint(o, "crl_shards"), 0);
	json_decref(o);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(
		    put_settings("issuing", bad[i], error, sizeof(error), detail, sizeof(detail)),
		    400);
		ck_assert_str_eq(error, "bad-setting");
		ck_assert_msg(strstr(detail, "crl_"), "%s", detail);
	}
	ck_assert_int_eq(count("SELECT count(*) FROM authority_settings s JOIN authorities a"
	                       " ON a.id = s.authority_id WHERE a.name = 'issuing'"
	                       " AND (crl_base_url <> '' OR crl_shards <> 0)"),
	                 0);

	/* The database says 8 shards, the configuration 4: a second cad (any port) refuses. */
	sql_ok("UPDATE authority_settings SET crl_shards = 8 WHERE authority_id ="
	       " (SELECT id FROM authorities WHERE name = 'codesign')");
	snprintf(conf, sizeof(conf), config_fmt, 0, dir, dir, dir, dir, cad_ci, dir, dir);
	harness_write_text(dir_file("cad-disagrees.yaml"), conf);
	path_of(conf, sizeof(conf), "cad-disagrees.yaml");
	path_of(out, sizeof(out), "cad-disagrees.log");
	snprintf(bin, sizeof(bin), "%s/ca-core/cad/hsmca-cad", getenv("HSMCA_BUILD"));
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
	ck_assert_int_eq(harness_run(argv, out), 1);
	text = harness_slurp(out);
	ck_assert_msg(strstr(text, "crl_base_url \"http://crl.test/\" and crl_shards 4") &&
	                  strstr(text, "database's \"http://crl.test/\" and 8"),
	              "%s", text);
	sql_ok("UPDATE authority_settings SET crl_shards = 4 WHERE authority_id ="
	       " (SELECT id FROM authorities WHERE name = 'codesign')");
}
END_TEST

START_TEST(authority_settings_round_trip_and_are_validated)
{
	static const struct {
		const char *body, *field;
	} bad[] = {
	    {"{\"crl_next_update_seconds\":10}", "crl_next_update_seconds"},
	    {"{\"crl_next_update_seconds\":99999999}", "crl_next_update_seconds"},
	    {"{\"crl_next_update_seconds\":\"3600\"}", "crl_next_update_seconds"},
	    {"{\"delta_crl_seconds\":43200}", "delta_crl_seconds"}, /* not below the CRL's */
	    {"{\"delta_crl_seconds\":30}", "delta_crl_seconds"},
	    {"{\"ocsp_validity_seconds\":59}", "ocsp_validity_seconds"},
	    {"{\"ocsp_validity_seconds\":1.5}", "ocsp_validity_seconds"},
	    {"{\"ocsp_nonce_rate_limit\":-1}", "ocsp_nonce_rate_limit"},
	    {"{\"ocsp_nonce_rate_limit\":100001}", "ocsp_nonce_rate_limit"},
	    {"{\"ocsp_signer_key_label\":\"bad label\"}", "ocsp_signer_key_label"},
	    {"{\"ocsp_signer_key_label\":7}", "ocsp_signer_key_label"},
	};
	char error[64], detail[1024];
	json_t *o = NULL;
	long long audited;

	/* Defaults until an officer stores some; any reading role sees them. */
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/authorities/issuing/settings", NULL, &o),
	                 200);
	ck_assert(json_is_true(json_object_get(o, "default")));
	ck_assert_int_eq(jint(o, "crl_next_update_seconds"), 86400);
	ck_assert_int_eq(jint(o, "delta_crl_seconds"), 0);
	ck_assert_int_eq(jint(o, "ocsp_validity_seconds"), 3600);
	ck_assert_int_eq(jint(o, "ocsp_nonce_rate_limit"), 0);
	ck_assert_str_eq(jstr(o, "ocsp_signer_key_label"), "");
	json_decref(o);

	ck_assert_int_eq(put_settings("issuing",
	                              "{\"crl_next_update_seconds\":43200,"
	                              "\"delta_crl_seconds\":3600,\"ocsp_validity_seconds\":7200,"
	                              "\"ocsp_nonce_rate_limit\":50,"
	                              "\"ocsp_signer_key_label\":\"ocsp-signer_1\"}",
	                              error, sizeof(error), detail, sizeof(detail)),
	                 200);
	ck_assert_int_eq(api("officer", "GET", "/api/v1/authorities/issuing/settings", NULL, &o),
	                 200);
	ck_assert(json_is_false(json_object_get(o, "default")));
	ck_assert_int_eq(jint(o, "crl_next_update_seconds"), 43200);
	ck_assert_int_eq(jint(o, "delta_crl_seconds"), 3600);
	ck_assert_int_eq(jint(o, "ocsp_validity_seconds"), 7200);
	ck_assert_int_eq(jint(o, "ocsp_nonce_rate_limit"), 50);
	ck_assert_str_eq(jstr(o, "ocsp_signer_key_label"), "ocsp-signer_1");
	ck_assert_str_eq(jstr(o, "updated_by"), "officer");
	json_decref(o);
	/* Stored where crld and ocspd will read them. */
	ck_assert_int_eq(count("SELECT count(*) FROM authority_settings s JOIN authorities a"
	                       " ON a.id = s.authority_id WHERE a.name = 'issuing'"
	                       " AND crl_next_update_seconds = 43200 AND delta_crl_seconds = 3600"
	                       " AND ocsp_validity_seconds = 7200 AND ocsp_nonce_rate_limit = 50"
	                       " AND ocsp_signer_key_label = 'ocsp-signer_1'"),
	                 1);
	audited = count("SELECT count(*) FROM audit_log WHERE action = 'authority.settings.update'"
	                " AND outcome = 'success' AND actor = 'officer' AND object = 'issuing'");
	ck_assert_int_eq(audited, 1);

	/* Fields left out keep their value. */
	ck_assert_int_eq(put_settings("issuing", "{\"ocsp_validity_seconds\":600}", error,
	                              sizeof(error), detail, sizeof(detail)),
	                 200);
	ck_assert_int_eq(api("officer", "GET", "/api/v1/authorities/issuing/settings", NULL, &o),
	                 200);
	ck_assert_int_eq(jint(o, "ocsp_validity_seconds"), 600);
	ck_assert_int_eq(jint(o, "crl_next_update_seconds"), 43200);
	ck_assert_str_eq(jstr(o, "ocsp_signer_key_label"), "ocsp-signer_1");
	json_decref(o);

	/* Each bad value: 400 naming the field, nothing stored, the denial audited. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(put_settings("issuing", bad[i].body, error, sizeof(error), detail,
		                              sizeof(detail)),
		                 400);
		ck_assert_str_eq(error, "bad-setting");
		ck_assert_msg(strstr(detail, bad[i].field), "%s: %s", bad[i].body, detail);
	}
	ck_assert_int_eq(put_settings("issuing", "{\"crl_validity\":1}", error, sizeof(error),
	                              detail, sizeof(detail)),
	                 400);
	ck_assert_str_eq(error, "unknown-field");
	ck_assert_int_eq(
	    put_settings("issuing", "[1]", error, sizeof(error), detail, sizeof(detail)), 400);
	ck_assert_int_eq(count("SELECT count(*) FROM authority_settings s JOIN authorities a"
	                       " ON a.id = s.authority_id WHERE a.name = 'issuing'"
	                       " AND crl_next_update_seconds = 43200 AND delta_crl_seconds = 3600"
	                       " AND ocsp_validity_seconds = 600 AND ocsp_nonce_rate_limit = 50"),
	                 1);
	ck_assert_int_ge(count("SELECT count(*) FROM audit_log WHERE outcome = 'denied'"
	                       " AND action = 'authority.settings.update'"
	                       " AND detail LIKE '%bad-setting%'"),
	                 (long long)(sizeof(bad) / sizeof(bad[0])));
	/* The schema refuses what the API would (migration 0010 added the CRL distribution's). */
	ck_assert_int_eq(
	    count("SELECT count(*) FROM pg_constraint"
	          " WHERE conrelid = 'authority_settings'::regclass AND contype = 'c'"),
	    9);

	ck_assert_int_eq(put_settings("nobody", "{}", error, sizeof(error), detail, sizeof(detail)),
	                 404);
	ck_assert_str_eq(error, "unknown-authority");
	/* Only officers change them. */
	ck_assert_int_eq(api("ca-admin", "PUT", "/api/v1/authorities/issuing/settings",
	                     "{\"ocsp_validity_seconds\":900}", &o),
	                 403);
	json_decref(o);
}
END_TEST

/* The URLs of one access method (NID_ad_OCSP, NID_ad_ca_issuers) in x's AIA, space-separated,
 * into out ("" when there is no AIA or no such URL). */
static void aia_urls(X509 *x, int method, char *out, size_t n)
{
	AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; aia && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
		ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
		if (OBJ_obj2nid(ad->method) != method || ad->location->type != GEN_URI)
			continue;
		len += (size_t)snprintf(
		    out + len, n - len, "%s%s", len ? " " : "",
		    (const char *)ASN1_STRING_get0_data(ad->location->d.uniformResourceIdentifier));
	}
	AUTHORITY_INFO_ACCESS_free(aia);
}

/* A tls-server certificate issued now, as officer. */
static X509 *tls_server_now(const char *cn)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	char subject[128], san[128];
	json_t *o;
	X509 *x;

	snprintf(subject, sizeof(subject), "/CN=%s/O=Example", cn);
	snprintf(san, sizeof(san), "DNS:%s", cn);
	o = issue_ok("officer", "tls-server", k, subject, san);
	x = pem_cert(jstr(o, "certificate"));
	json_decref(o);
	EVP_PKEY_free(k);
	return x;
}

/* Issued leaves carry the authority's AIA (OCSP and caIssuers URLs from its settings, the one
 * source), and a change by an officer reaches the very next certificate, without a restart;
 * bad URLs are refused naming the field, audited, and change nothing. They also carry the
 * policies of their profile, the CPS URI only on the CA's own policy. */
START_TEST(leaves_carry_the_authoritys_aia_and_their_profiles_policies)
{
	static const struct {
		const char *body, *field;
	} bad[] = {
	    {"{\"ocsp_urls\":[\"https://ocsp.test/\"]}", "ocsp_urls"}, /* BR: http only */
	    {"{\"ocsp_urls\":\"http://ocsp.test/\"}", "ocsp_urls"},    /* not a list */
	    {"{\"ocsp_urls\":[\"http://a.test/\",\"http://b.test/\",\"http://c.test/\","
	     "\"http://d.test/\"]}",
	     "ocsp_urls"},
	    {"{\"ocsp_urls\":[\"http://a.test/\",\"http://a.test/\"]}", "ocsp_urls"},
	    {"{\"ocsp_urls\":[\"http://a.test/x,y\"]}", "ocsp_urls"},
	    {"{\"ocsp_urls\":[\"http://\"]}", "ocsp_urls"},
	    {"{\"ocsp_urls\":[7]}", "ocsp_urls"},
	    {"{\"ca_issuers_url\":\"ldap://ca.test/x\"}", "ca_issuers_url"},
	    {"{\"ca_issuers_url\":\"http://ca.test/a b\"}", "ca_issuers_url"},
	    {"{\"ca_issuers_url\":null}", "ca_issuers_url"},
	};
	char error[64], detail[1024], urls[1024], long_url[600];
	CERTIFICATEPOLICIES *cp;
	json_t *o = NULL;
	X509 *x;

	/* No AIA stored: none in the certificate. */
	x = tls_server_now("aia0.example.com");
	ck_assert_int_lt(X509_get_ext_by_NID(x, NID_info_access, -1), 0);
	/* The profile's policies, in order; the CPS URI on the CA's own policy only (BR
	 * 7.1.2.7.9: none on the CA/Browser Forum's reserved one). */
	cp = X509_get_ext_d2i(x, NID_certificate_policies, NULL, NULL);
	ck_assert_ptr_nonnull(cp);
	ck_assert_int_eq(sk_POLICYINFO_num(cp), 2);
	{
		char oid[64];
		POLICYINFO *p0 = sk_POLICYINFO_value(cp, 0), *p1 = sk_POLICYINFO_value(cp, 1);
		POLICYQUALINFO *q;
		OBJ_obj2txt(oid, sizeof(oid), p0->policyid, 1);
		ck_assert_str_eq(oid, "2.23.140.1.2.1");
		ck_assert_ptr_null(p0->qualifiers);
		OBJ_obj2txt(oid, sizeof(oid), p1->policyid, 1);
		ck_assert_str_eq(oid, "1.3.6.1.4.1.99999.1.2");
		ck_assert_int_eq(sk_POLICYQUALINFO_num(p1->qualifiers), 1);
		q = sk_POLICYQUALINFO_value(p1->qualifiers, 0);
		ck_assert_int_eq(OBJ_obj2nid(q->pqualid), NID_id_qt_cps);
		ck_assert_str_eq((const char *)ASN1_STRING_get0_data(q->d.cpsuri),
		                 "https://cps.test/cps");
	}
	CERTIFICATEPOLICIES_free(cp);
	X509_free(x);
	/* A profile without policies: no certificatePolicies. */
	{
		EVP_PKEY *k = EVP_EC_gen("P-256");
		o = issue_ok("officer", "tls-client", k, "/CN=client/O=Example", NULL);
		x = pem_cert(jstr(o, "certificate"));
		ck_assert_int_lt(X509_get_ext_by_NID(x, NID_certificate_policies, -1), 0);
		X509_free(x);
		json_decref(o);
		EVP_PKEY_free(k);
	}

	ck_assert_int_eq(put_settings("issuing",
	                              "{\"ocsp_urls\":[\"http://ocsp.test/\","
	                              "\"http://ocsp2.test/x\"],"
	                              "\"ca_issuers_url\":\"http://crl.test/ca/issuing.der\"}",
	                              error, sizeof(error), detail, sizeof(detail)),
	                 200);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/authorities/issuing/settings", NULL, &o),
	                 200);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "ocsp_urls"), 0)),
	                 "http://ocsp.test/");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "ocsp_urls"), 1)),
	                 "http://ocsp2.test/x");
	ck_assert_str_eq(jstr(o, "ca_issuers_url"), "http://crl.test/ca/issuing.der");
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action ="
	                       " 'authority.settings.update' AND outcome = 'success' AND detail"
	                       " LIKE '%http://ocsp2.test/x%' AND detail LIKE '%ca_issuers_url%'"),
	                 1);
	/* The next certificate, same cad, no restart. */
	x = tls_server_now("aia1.example.com");
	aia_urls(x, NID_ad_OCSP, urls, sizeof(urls));
	ck_assert_str_eq(urls, "http://ocsp.test/ http://ocsp2.test/x");
	aia_urls(x, NID_ad_ca_issuers, urls, sizeof(urls));
	ck_assert_str_eq(urls, "http://crl.test/ca/issuing.der");
	ck_assert_int_eq(X509_get_extension_flags(x) & EXFLAG_CRITICAL, 0);
	X509_free(x);

	/* Changed again: the next one follows. */
	ck_assert_int_eq(put_settings("issuing", "{\"ocsp_urls\":[\"http://ocsp3.test/\"]}", error,
	                              sizeof(error), detail, sizeof(detail)),
	                 200);
	x = tls_server_now("aia2.example.com");
	aia_urls(x, NID_ad_OCSP, urls, sizeof(urls));
	ck_assert_str_eq(urls, "http://ocsp3.test/");
	aia_urls(x, NID_ad_ca_issuers, urls, sizeof(urls));
	ck_assert_str_eq(urls, "http://crl.test/ca/issuing.der");
	X509_free(x);

	/* Bad values: 400 naming the field, nothing stored. */
	memset(long_url, 'a', sizeof(long_url) - 1);
	long_url[sizeof(long_url) - 1] = '\0';
	memcpy(long_url, "http://", 7);
	for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
		char body[800];
		const char *field = "ca_issuers_url";
		if (i < sizeof(bad) / sizeof(bad[0])) {
			snprintf(body, sizeof(body), "%s", bad[i].body);
			field = bad[i].field;
		} else { /* longer than DB_AIA_URL_MAX */
			snprintf(body, sizeof(body), "{\"ca_issuers_url\":\"%s\"}", long_url);
		}
		ck_assert_int_eq(
		    put_settings("issuing", body, error, sizeof(error), detail, sizeof(detail)),
		    400);
		ck_assert_str_eq(error, "bad-setting");
		ck_assert_msg(strstr(detail, field), "%s: %s", body, detail);
	}
	ck_assert_int_eq(count("SELECT count(*) FROM authority_settings s JOIN authorities a"
	                       " ON a.id = s.authority_id WHERE a.name = 'issuing'"
	                       " AND ocsp_urls = 'http://ocsp3.test/'"
	                       " AND ca_issuers_url = 'http://crl.test/ca/issuing.der'"),
	                 1);
	/* The schema refuses what the API would. */
	ck_assert_int_eq(count("SELECT count(*) FROM pg_constraint"
	                       " WHERE conrelid = 'authority_settings'::regclass AND contype = 'c'"
	                       " AND pg_get_constraintdef(oid) LIKE '%ocsp_urls%http://%'"),
	                 1);
	/* Cleared: no AIA again. */
	ck_assert_int_eq(put_settings("issuing", "{\"ocsp_urls\":[],\"ca_issuers_url\":\"\"}",
	                              error, sizeof(error), detail, sizeof(detail)),
	                 200);
	x = tls_server_now("aia3.example.com");
	ck_assert_int_lt(X509_get_ext_by_NID(x, NID_info_access, -1), 0);
	X509_free(x);
}
END_TEST

static int authority_status_is(const char *name, const char *status)
{
	json_t *o = NULL, *a;
	size_t i;
	int found = 0;

	ck_assert_int_eq(api("auditor", "GET", "/api/v1/authorities", NULL, &o), 200);
	json_array_foreach(json_object_get(o, "authorities"), i, a)
	{
		if (!strcmp(jstr(a, "name"), name)) {
			found = !strcmp(jstr(a, "status"), status);
			ck_assert(json_is_true(json_object_get(a, "configured")));
		}
	}
	json_decref(o);
	return found;
}

/* Retires codesign for the rest of its test case: keep it after every code-signing test. */
START_TEST(retired_authority_issues_nothing_and_still_revokes)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	json_t *o = issue_ok("officer", "code-signing", k, "/CN=Before retirement/O=Example/C=DE",
	                     NULL),
	       *r = NULL;
	char *csr = make_csr(k, "/CN=After retirement/O=Example/C=DE", NULL);
	char *body = issue_body("code-signing", csr), path[160];
	long long certs;

	ck_assert(authority_status_is("codesign", "active"));
	ck_assert(authority_status_is("issuing", "active"));
	ck_assert_int_eq(api("admin", "POST", "/api/v1/authorities/codesign/retire", NULL, &r),
	                 403);
	json_decref(r);
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/authorities/codesign/retire",
	                     "{\"reason\":\"key rollover\"}", &r),
	                 200);
	ck_assert_str_eq(jstr(r, "status"), "retired");
	json_decref(r);
	ck_assert(authority_status_is("codesign", "retired"));
	ck_assert_int_eq(count("SELECT count(*) FROM authorities WHERE name = 'codesign'"
	                       " AND status = 'retired'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'authority.retire'"
	                       " AND outcome = 'success' AND actor = 'ca-admin'"
	                       " AND object = 'codesign' AND detail LIKE '%key rollover%'"),
	                 1);
	/* For good: a second retirement is refused. */
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/authorities/codesign/retire", NULL, &r),
	                 409);
	ck_assert_str_eq(jstr(r, "error"), "wrong-state");
	json_decref(r);
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/authorities/nobody/retire", NULL, &r),
	                 404);
	ck_assert_str_eq(jstr(r, "error"), "unknown-authority");
	json_decref(r);

	/* Issues nothing more: a clear 409, nothing reserved, the denial audited. */
	certs = count("SELECT count(*) FROM certificates");
	ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", body, &r), 409);
	ck_assert_str_eq(jstr(r, "error"), "authority-retired");
	ck_assert_ptr_nonnull(strstr(jstr(r, "detail"), "codesign"));
	json_decref(r);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'certificate.issue'"
	                       " AND outcome = 'denied' AND object = 'codesign'"
	                       " AND detail LIKE '%authority-retired%'"),
	                 1);
	/* Its certificates still revoke, and its settings still change (its CRLs go on). */
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/revoke", jstr(o, "serial"));
	ck_assert_int_eq(api("officer", "POST", path, "{\"reason\":\"cessationOfOperation\"}", &r),
	                 200);
	ck_assert_str_eq(jstr(r, "status"), "revoked");
	json_decref(r);
	ck_assert_int_eq(api("officer", "PUT", "/api/v1/authorities/codesign/settings",
	                     "{\"crl_next_update_seconds\":604800}", &r),
	                 200);
	json_decref(r);
	/* The other authority issues on. */
	json_decref(
	    issue_ok("officer", "tls-server", k, "/CN=still.example.com", "DNS:still.example.com"));
	json_decref(o);
	free(csr);
	free(body);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(cli_manages_profiles_and_authorities)
{
	ck_assert_int_eq(cli("admin", "profiles", "disable", "email", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"enabled\": false"));
	ck_assert_int_eq(cli("auditor", "profiles", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"email\""));
	ck_assert_int_eq(cli("officer", "profiles", "enable", "email", NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "role-not-permitted"));
	ck_assert_int_eq(cli("admin", "profiles", "enable", "email", NULL), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM profile_settings WHERE profile = 'email'"
	                       " AND enabled"),
	                 1);
	ck_assert_int_eq(cli("admin", "profiles", "frobnicate", "email", NULL), 2);
	ck_assert_int_eq(cli("admin", "profiles", "--help", NULL), 0);

	ck_assert_int_eq(cli("auditor", "authority", "list", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"issuing\""));
	ck_assert_int_eq(cli("officer", "authority", "settings", "issuing", "--ocsp-validity",
	                     "1800", "--ocsp-nonce-rate", "20", "--ocsp-signer-key", "", NULL),
	                 0);
	ck_assert_int_eq(cli("auditor", "authority", "settings", "issuing", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"ocsp_validity_seconds\": 1800"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"ocsp_nonce_rate_limit\": 20"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"ocsp_signer_key_label\": \"\""));
	ck_assert_int_eq(
	    cli("officer", "authority", "settings", "issuing", "--delta-crl", "999999", NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "delta_crl_seconds"));
	ck_assert_int_eq(
	    cli("officer", "authority", "settings", "issuing", "--delta-crl", "x", NULL), 2);
	/* codesign was retired above: the CLI says it is retired already. */
	ck_assert_int_eq(
	    cli("ca-admin", "authority", "retire", "codesign", "--reason", "again", NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "wrong-state"));
	ck_assert_int_eq(cli("ca-admin", "authority", "--help", NULL), 0);
	ck_assert_int_eq(cli("ca-admin", "authority", NULL), 2);
}
END_TEST

/* ---- health and metrics ---- */

/* GET path as who (NULL: no credentials, or a role's client certificate): the body as text
 * (malloc'd, NULL when none), the status, and the Content-Type into ctype. */
static char *get_text(const char *who, const char *path, long *status, char *ctype, size_t ctsz)
{
	struct harness_reply r;
	char *text;

	*status = harness_http(
	    &site, &(struct harness_req){.who = who, .method = "GET", .path = path}, &r);
	harness_reply_header(&r, "Content-Type", 0, ctype, ctsz);
	text = r.body;
	r.body = NULL;
	harness_reply_clear(&r);
	return text;
}

static long long metric(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, series, n) && p[n] == ' ')
			return atoll(p + n + 1);
	return -1;
}

/* /health without credentials says the state alone; the details and /metrics are for an
 * auditor or an operator. */
START_TEST(health_says_only_the_state_details_and_metrics_need_a_role)
{
	char ct[128], *t1, *t2, *hl;
	long st;
	long long before, after, issued;
	EVP_PKEY *k = EVP_EC_gen("P-256");
	json_t *o;

	hl = get_text(NULL, "/health", &st, ct, sizeof(ct));
	ck_assert_int_eq(st, 200);
	o = json_loads(hl, 0, NULL);
	ck_assert_msg(o && json_object_size(o) == 1 && !strcmp(jstr(o, "status"), "ok"), "%s", hl);
	json_decref(o);
	free(hl);
	free(get_text(NULL, "/metrics", &st, ct, sizeof(ct)));
	ck_assert_int_eq(st, 401);
	free(get_text("officer", "/metrics", &st, ct, sizeof(ct)));
	ck_assert_int_eq(st, 403);
	free(get_text(NULL, "/api/v1/health/details", &st, ct, sizeof(ct)));
	ck_assert_int_eq(st, 401);
	ck_assert_int_eq(api("operator", "GET", "/api/v1/health/details", NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "database"), "up");
	ck_assert_str_eq(jstr(o, "keyd"), "up");
	ck_assert_int_gt(json_integer_value(json_object_get(o, "schema_version")), 0);
	json_decref(o);
	t1 = get_text("auditor", "/metrics", &st, ct, sizeof(ct));
	ck_assert_int_eq(st, 200);
	ck_assert_msg(!strncmp(ct, "text/plain; version=0.0.4", 25), "%s", ct);
	before = metric(t1, "hsmca_cad_requests_total{action=\"health\",code=\"200\"}");
	ck_assert_int_ge(before, 1);
	issued = metric(t1, "hsmca_cad_requests_total{action=\"certificate.issue\",code=\"201\"}");
	o = issue_ok("officer", "tls-server", k, "/CN=metrics.example.com",
	             "DNS:metrics.example.com");
	json_decref(o);
	EVP_PKEY_free(k);
	free(get_text(NULL, "/api/v1/health", &st, ct, sizeof(ct)));
	t2 = get_text("operator", "/metrics", &st, ct, sizeof(ct));
	after = metric(t2, "hsmca_cad_requests_total{action=\"health\",code=\"200\"}");
	ck_assert_int_eq(after, before + 1);
	ck_assert_int_eq(
	    metric(t2, "hsmca_cad_requests_total{action=\"certificate.issue\",code=\"201\"}"),
	    (issued < 0 ? 0 : issued) + 1);
	ck_assert_int_eq(metric(t2, "hsmca_cad_database_up"), 1);
	ck_assert_int_eq(metric(t2, "hsmca_cad_authority_key_loaded{authority=\"issuing\"}"), 1);
	ck_assert_int_eq(metric(t2, "hsmca_cad_request_duration_seconds_bucket{le=\"+Inf\"}"),
	                 metric(t2, "hsmca_cad_request_duration_seconds_count"));
	ck_assert_int_gt(metric(t2, "hsmca_cad_request_duration_seconds_count"),
	                 metric(t1, "hsmca_cad_request_duration_seconds_count"));
	/* the issuance went through one reservation group and one store group, of one or more */
	for (int i = 0; i < 2; i++) {
		const char *g = i ? "hsmca_cad_commit_groups_total{kind=\"store\"}"
		                  : "hsmca_cad_commit_groups_total{kind=\"reserve\"}";
		const char *mb = i ? "hsmca_cad_commit_group_members_total{kind=\"store\"}"
		                   : "hsmca_cad_commit_group_members_total{kind=\"reserve\"}";
		ck_assert_int_eq(metric(t2, g), metric(t1, g) + 1);
		ck_assert_int_eq(metric(t2, mb), metric(t1, mb) + 1);
		ck_assert_int_ge(metric(t2, mb), metric(t2, g));
	}
	free(t1);
	free(t2);
}
END_TEST

/* ================= stored, versioned profiles (docs/profiles.md) ================= */

static const char web_profile[] =
    "{\"name\": \"web\", \"authority\": \"issuing\", \"key_profile\": \"standard\","
    " \"max_validity_days\": 90, \"key_usage\": [\"digitalSignature\", \"encipherment\"],"
    " \"extended_key_usage\": [\"serverAuth\"], \"subject_fields\": [\"CN\"],"
    " \"san\": {\"dns\": [\"*.example.com\"]}, \"san_required\": true,"
    " \"policies\": [\"2.23.140.1.2.1\"]}";

/* The version the certificate with serial (hex) records. */
static long long cert_profile_version(const char *serial)
{
	char sql[300];

	snprintf(sql, sizeof(sql),
	         "SELECT coalesce(profile_version, 0) FROM certificates WHERE serial = '\\x%s'",
	         serial);
	return count(sql);
}

static long long days_of(const char *pem)
{
	X509 *x = pem_cert(pem);
	int d = 0, s = 0;

	ck_assert(ASN1_TIME_diff(&d, &s, X509_get0_notBefore(x), X509_get0_notAfter(x)));
	X509_free(x);
	return d;
}

START_TEST(configuration_profiles_are_version_1_and_seeded_once)
{
	/* cad's first start stored every configuration profile as version 1, audited once. */
	ck_assert_int_eq(count("SELECT count(*) FROM profiles"), 7);
	ck_assert_int_eq(count("SELECT count(*) FROM profile_versions WHERE version = 1"
	                       " AND created_by = 'hsmca-cad configuration'"),
	                 7);
	ck_assert_int_eq(count("SELECT count(*) FROM profile_versions v JOIN profiles p"
	                       " ON p.name = v.profile WHERE p.name = 'tls-server'"
	                       " AND v.body->>'max_validity_days' = '397'"
	                       " AND v.body->'policies'->>1 = '1.3.6.1.4.1.99999.1.2'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'profile.seed'"), 1);
	/* A start against a filled table stores nothing more: see
	 * a_change_reaches_another_cad_without_restart, whose second hsmca-cad starts so. */
}
END_TEST

START_TEST(profiles_are_created_edited_cloned_and_versioned)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	json_t *o = NULL, *edit;
	char *body;
	char serial1[64], serial2[64];
	long long certs;

	/* Only an admin changes profiles; everyone authenticated reads them. */
	ck_assert_int_eq(api("officer", "POST", "/api/v1/profiles", web_profile, &o), 403);
	json_decref(o);
	ck_assert_int_eq(api("ca-admin", "POST", "/api/v1/profiles", web_profile, &o), 403);
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM profiles WHERE name = 'web'"), 0);
	ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles", web_profile, &o), 201);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "version")), 1);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(o, "profile"), "max_validity_days")),
	    90);
	json_decref(o);
	ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles", web_profile, &o), 409);
	ck_assert_str_eq(jstr(o, "error"), "profile-exists");
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'profile.create'"
	                       " AND outcome = 'success' AND object = 'web' AND actor = 'admin'"
	                       " AND detail::jsonb->>'new_version' = '1'"),
	                 1);

	/* Issued under version 1. */
	o = issue_ok("officer", "web", k, "/CN=a.example.com", "DNS:a.example.com");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "profile_version")), 1);
	snprintf(serial1, sizeof(serial1), "%s", jstr(o, "serial"));
	ck_assert_int_eq(days_of(jstr(o, "certificate")), 90);
	json_decref(o);
	ck_assert_int_eq(cert_profile_version(serial1), 1);

	/* An edit is a new version; the next certificate is issued under it. */
	edit = json_loads(web_profile, 0, NULL);
	json_object_set_new(edit, "max_validity_days", json_integer(30));
	json_object_set_new(edit, "policies",
	                    json_pack("[s, s]", "2.23.140.1.2.1", "1.3.6.1.4.1.99999.7"));
	json_object_del(edit, "name"); /* the path names it */
	body = json_dumps(edit, 0);
	ck_assert_int_eq(api("officer", "PUT", "/api/v1/profiles/web", body, &o), 403);
	json_decref(o);
	ck_assert_int_eq(api("admin", "PUT", "/api/v1/profiles/web", body, &o), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "version")), 2);
	json_decref(o);
	free(body);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'profile.edit'"
	                       " AND outcome = 'success' AND object = 'web'"
	                       " AND detail::jsonb->>'old_version' = '1'"
	                       " AND detail::jsonb->>'new_version' = '2'"),
	                 1);
	o = issue_ok("officer", "web", k, "/CN=b.example.com", "DNS:b.example.com");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "profile_version")), 2);
	snprintf(serial2, sizeof(serial2), "%s", jstr(o, "serial"));
	ck_assert_int_eq(days_of(jstr(o, "certificate")), 30);
	{
		X509 *x = pem_cert(jstr(o, "certificate"));
		CERTIFICATEPOLICIES *cp = X509_get_ext_d2i(x, NID_certificate_policies, NULL, NULL);
		char oid[64];
		ck_assert_ptr_nonnull(cp);
		ck_assert_int_eq(sk_POLICYINFO_num(cp), 2);
		OBJ_obj2txt(oid, sizeof(oid), sk_POLICYINFO_value(cp, 1)->policyid, 1);
		ck_assert_str_eq(oid, "1.3.6.1.4.1.99999.7");
		CERTIFICATEPOLICIES_free(cp);
		X509_free(x);
	}
	json_decref(o);
	ck_assert_int_eq(cert_profile_version(serial2), 2);
	ck_assert_int_eq(cert_profile_version(serial1), 1);

	/* Both versions stay readable; the list of versions is newest first. */
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/profiles/web?version=1", NULL, &o), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "version")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "current_version")), 2);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(o, "profile"), "max_validity_days")),
	    90);
	ck_assert_int_eq(json_array_size(json_object_get(o, "versions")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(
	                     json_array_get(json_object_get(o, "versions"), 0), "version")),
	                 2);
	json_decref(o);
	ck_assert_int_eq(api("ra", "GET", "/api/v1/profiles/web", NULL, &o), 200);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "version")), 2);
	json_decref(o);
	ck_assert_int_eq(api("ra", "GET", "/api/v1/profiles/web?version=3", NULL, &o), 404);
	json_decref(o);
	ck_assert_int_eq(api("ra", "GET", "/api/v1/profiles/web?version=x", NULL, &o), 400);
	json_decref(o);

	/* A clone is a new profile at version 1, the same fields under another name. */
	ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles/web/clone",
	                     "{\"name\": \"web-old\", \"version\": 1}", &o),
	                 201);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "version")), 1);
	ck_assert_int_eq(
	    json_integer_value(json_object_get(json_object_get(o, "profile"), "max_validity_days")),
	    90);
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'profile.clone'"
	                       " AND object = 'web-old' AND detail::jsonb->>'cloned_from' = 'web'"
	                       " AND detail::jsonb->>'cloned_version' = '1'"),
	                 1);
	o = issue_ok("officer", "web-old", k, "/CN=c.example.com", "DNS:c.example.com");
	ck_assert_int_eq(days_of(jstr(o, "certificate")), 90);
	json_decref(o);

	/* Disabled: nothing issues under it; the other profiles go on. */
	ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles/web-old/disable", NULL, &o), 200);
	json_decref(o);
	certs = count("SELECT count(*) FROM certificates");
	{
		char *csr = make_csr(k, "/CN=d.example.com", "DNS:d.example.com");
		char *ib = issue_body("web-old", csr);
		ck_assert_int_eq(api("officer", "POST", "/api/v1/certificates", ib, &o), 409);
		ck_assert_str_eq(jstr(o, "error"), "profile-disabled");
		json_decref(o);
		free(ib);
		free(csr);
	}
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs);

	/* Renaming through an edit is refused; a clone is the way. */
	ck_assert_int_eq(api("admin", "PUT", "/api/v1/profiles/web", web_profile, &o), 200);
	json_decref(o);
	body = strdup(web_profile);
	memcpy(strstr(body, "\"web\""), "\"wex\"", 5);
	ck_assert_int_eq(api("admin", "PUT", "/api/v1/profiles/web", body, &o), 422);
	json_decref(o);
	free(body);
	ck_assert_int_eq(api("admin", "PUT", "/api/v1/profiles/nope", web_profile, &o), 404);
	json_decref(o);
	ck_assert_int_eq(count("SELECT max(version) FROM profile_versions WHERE profile = 'web'"),
	                 3);
	/* Every certificate of this suite records the version it was issued under. */
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE profile_version IS NULL"),
	                 0);
	json_decref(edit);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(bad_profiles_are_refused_naming_the_field_and_change_nothing)
{
	static const struct {
		const char *from, *to, *field;
	} bad[] = {
	    {"\"max_validity_days\": 90", "\"max_validity_days\": 9000", "max_validity_days"},
	    {"\"max_validity_days\": 90", "\"max_validity_days\": \"x\"", "max_validity_days"},
	    {"\"authority\": \"issuing\"", "\"authority\": \"nobody\"", "authority"},
	    {"\"key_profile\": \"standard\"", "\"key_profile\": \"huge\"", "key_profile"},
	    {"\"2.23.140.1.2.1\"", "\"2.23.140.1.2.x\"", "policies"},
	    {"\"2.23.140.1.2.1\"", "\"2.5.29.32.0\"", "policies"},
	    {"\"serverAuth\"", "\"anyExtendedKeyUsage\"", "extended_key_usage"},
	    {"\"san_required\": true", "\"san_required\": null", "null"},
	    {"\"name\": \"web\"", "\"name\": \"Web!\"", "name"},
	};
	long long versions = count("SELECT count(*) FROM profile_versions");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char body[2048], *at;
		json_t *o = NULL;
		snprintf(body, sizeof(body), "%s", web_profile);
		ck_assert_ptr_nonnull(at = strstr(body, bad[i].from));
		memmove(at + strlen(bad[i].to), at + strlen(bad[i].from),
		        strlen(at + strlen(bad[i].from)) + 1);
		memcpy(at, bad[i].to, strlen(bad[i].to));
		/* as a new profile named web2 (unless the case is about the name) */
		if ((at = strstr(body, "\"name\": \"web\"")))
			memcpy(at, "\"name\": \"wb2\"", 13);
		ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles", body, &o), 422);
		ck_assert_str_eq(jstr(o, "error"), "bad-profile");
		ck_assert_msg(strstr(jstr(o, "detail"), bad[i].field), "case %zu: %s", i,
		              jstr(o, "detail"));
		json_decref(o);
	}
	ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles", "{\"name\": 1", NULL), 400);
	{
		json_t *o = NULL;
		ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles",
		                     "{\"name\": \"wb2\", \"sans\": true}", &o),
		                 400);
		ck_assert_str_eq(jstr(o, "error"), "unknown-field");
		ck_assert_ptr_nonnull(strstr(jstr(o, "detail"), "sans"));
		json_decref(o);
	}
	ck_assert_int_eq(api("admin", "POST", "/api/v1/profiles",
	                     "{\"name\": \"x\", \"san\": {\"dns\": [[[[\"a\"]]]]}}", NULL),
	                 422);
	/* Fields that parse but would make certificates the linter refuses: a TLS server
	 * profile naming servers by URI alone (its sample certificate has no dNSName or
	 * iPAddress SAN). Refused naming the lint rule, nothing stored. */
	{
		json_t *o = NULL;
		ck_assert_int_eq(
		    api("admin", "POST", "/api/v1/profiles",
		        "{\"name\": \"wb2\", \"authority\": \"issuing\", \"key_profile\": "
		        "\"standard\", \"max_validity_days\": 30, \"key_usage\": "
		        "[\"digitalSignature\"], \"extended_key_usage\": [\"serverAuth\"],"
		        " \"subject_fields\": [\"CN\"], \"san\": {\"uri\": [\"urn:svc:*\"]},"
		        " \"san_required\": true}",
		        &o),
		    422);
		ck_assert_str_eq(jstr(o, "error"), "lint-failed");
		ck_assert_msg(strstr(jstr(o, "detail"), "lint rule tls_"), "%s", jstr(o, "detail"));
		json_decref(o);
		/* The same through an edit of a stored profile: the stored version stays. */
		ck_assert_int_eq(
		    api("admin", "PUT", "/api/v1/profiles/tls-server",
		        "{\"authority\": \"issuing\", \"key_profile\": \"standard\","
		        " \"max_validity_days\": 30, \"key_usage\": [\"digitalSignature\"],"
		        " \"extended_key_usage\": [\"serverAuth\"], \"subject_fields\": [\"CN\"],"
		        " \"san\": {\"uri\": [\"urn:svc:*\"]}, \"san_required\": true}",
		        &o),
		    422);
		ck_assert_str_eq(jstr(o, "error"), "lint-failed");
		json_decref(o);
	}
	ck_assert_int_eq(count("SELECT count(*) FROM profile_versions"), versions);
	ck_assert_int_eq(count("SELECT count(*) FROM profiles WHERE name = 'wb2'"), 0);
	ck_assert_int_eq(count("SELECT current_version FROM profiles WHERE name = 'tls-server'"),
	                 1);
}
END_TEST

START_TEST(stored_versions_are_immutable_even_for_cad)
{
	struct db_err err = {0};
	struct db *db = NULL;
	PGresult *r;

	ck_assert_msg(db_connect(cad_ci, &db, &err) == DB_OK, "%s", err.msg);
	r = PQexec(db_pgconn(db), "UPDATE profile_versions SET body = '{}'");
	ck_assert_int_ne(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	r = PQexec(db_pgconn(db), "DELETE FROM profile_versions");
	ck_assert_int_ne(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	db_close(db);
	/* Not even the owner: the trigger refuses. */
	db = owner_db();
	r = PQexec(db_pgconn(db), "UPDATE profile_versions SET created_by = 'x'");
	ck_assert_int_ne(PQresultStatus(r), PGRES_COMMAND_OK);
	ck_assert_ptr_nonnull(strstr(PQresultErrorMessage(r), "immutable"));
	PQclear(r);
	db_close(db);
}
END_TEST

/* A second hsmca-cad on the same database: a change made through the first is used by the
 * second without a restart (LISTEN hsmca_profiles), and the second's start logs the edited
 * configuration profile as ignored. */
START_TEST(a_change_reaches_another_cad_without_restart)
{
	char conf[8192], log[512], url1[128];
	EVP_PKEY *k = EVP_EC_gen("P-256");
	int port = harness_free_port(), got = 0;
	long long versions;
	pid_t pid2;
	json_t *o = NULL;

	snprintf(conf, sizeof(conf), config_fmt, port, dir, dir, dir, dir, cad_ci, dir, dir);
	harness_write_text(dir_file("cad2.yaml"), conf);
	path_of(log, sizeof(log), "cad2.log");
	/* tls-client edited before the second starts: its file copy now differs. */
	ck_assert_int_eq(api("admin", "PUT", "/api/v1/profiles/tls-client",
	                     "{\"authority\": \"issuing\", \"key_profile\": \"standard\","
	                     " \"max_validity_days\": 20, \"key_usage\": [\"digitalSignature\"],"
	                     " \"extended_key_usage\": [\"clientAuth\"],"
	                     " \"subject_fields\": [\"CN\", \"O\", \"OU\"],"
	                     " \"subject_cn_required\": true,"
	                     " \"san\": {\"email\": [\"*@example.com\"]}}",
	                     &o),
	                 200);
	json_decref(o);
	versions = count("SELECT count(*) FROM profile_versions");
	snprintf(url1, sizeof(url1), "%s", base_url);
	pid2 = harness_spawn_daemon("ca-core/cad/hsmca-cad", dir_file("cad2.yaml"), NULL, log);
	snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port);
	for (int i = 0; i < 200 && api(NULL, "GET", "/api/v1/health", NULL, NULL) != 200; i++)
		usleep(50000);
	ck_assert_int_eq(api(NULL, "GET", "/api/v1/health", NULL, NULL), 200);
	ck_assert_ptr_nonnull(strstr(harness_slurp(log), "configuration profile tls-client differs "
	                                                 "from the database's version"));
	/* Its start against a filled table stored nothing (seeding is once). */
	ck_assert_int_eq(count("SELECT count(*) FROM profile_versions"), versions);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'profile.seed'"), 1);
	o = issue_ok("officer", "tls-client", k, "/CN=svc", "email:one@example.com");
	ck_assert_int_eq(days_of(jstr(o, "certificate")), 20);
	json_decref(o);

	/* Changed through the first; the second uses it at once. */
	snprintf(base_url, sizeof(base_url), "%s", url1);
	ck_assert_int_eq(api("admin", "PUT", "/api/v1/profiles/tls-client",
	                     "{\"authority\": \"issuing\", \"key_profile\": \"standard\","
	                     " \"max_validity_days\": 10, \"key_usage\": [\"digitalSignature\"],"
	                     " \"extended_key_usage\": [\"clientAuth\"],"
	                     " \"subject_fields\": [\"CN\", \"O\", \"OU\"],"
	                     " \"subject_cn_required\": true,"
	                     " \"san\": {\"email\": [\"*@example.com\"]}}",
	                     &o),
	                 200);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "version")), 3);
	json_decref(o);
	snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port);
	/* NOTIFY arrives within milliseconds; allow a second on a loaded machine. */
	for (int i = 0; i < 20 && got != 3; i++) {
		o = issue_ok("officer", "tls-client", k, "/CN=svc", "email:two@example.com");
		got = (int)json_integer_value(json_object_get(o, "profile_version"));
		if (got == 3)
			ck_assert_int_eq(days_of(jstr(o, "certificate")), 10);
		json_decref(o);
		if (got != 3)
			usleep(50000);
	}
	snprintf(base_url, sizeof(base_url), "%s", url1);
	ck_assert_int_eq(harness_daemon_stop(&pid2, "second hsmca-cad", log, 0), 0);
	ck_assert_int_eq(got, 3);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(cli_creates_edits_clones_and_shows_profiles)
{
	/* YAML as in the configuration file, and JSON from stdin-like files alike. */
	harness_write_text(dir_file("api-client.yaml"), "name: api-client\n"
	                                                "authority: issuing\n"
	                                                "key_profile: ec-only\n"
	                                                "max_validity_days: 60\n"
	                                                "key_usage: [digitalSignature]\n"
	                                                "extended_key_usage: [clientAuth]\n"
	                                                "subject_fields: [CN]\n"
	                                                "subject_cn_required: true\n"
	                                                "san: {uri: [\"urn:api:*\"]}\n");
	ck_assert_int_eq(cli("officer", "profile", "create", dir_file("api-client.yaml"), NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "role-not-permitted"));
	ck_assert_int_eq(cli("admin", "profile", "create", dir_file("api-client.yaml"), NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"version\": 1"));
	harness_write_text(
	    dir_file("api-client.json"),
	    "{\"authority\": \"issuing\", \"key_profile\": \"ec-only\","
	    " \"max_validity_days\": 45, \"key_usage\": [\"digitalSignature\"],"
	    " \"extended_key_usage\": [\"clientAuth\"], \"subject_fields\": [\"CN\"],"
	    " \"subject_cn_required\": true, \"san\": {\"uri\": [\"urn:api:*\"]}}");
	ck_assert_int_eq(
	    cli("admin", "profile", "edit", "api-client", dir_file("api-client.json"), NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"version\": 2"));
	ck_assert_int_eq(cli("auditor", "profile", "show", "api-client", "--version", "1", NULL),
	                 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"max_validity_days\": 60"));
	ck_assert_int_eq(cli("auditor", "profile", "show", "api-client", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"max_validity_days\": 45"));
	ck_assert_int_eq(
	    cli("admin", "profile", "clone", "api-client", "api-client2", "--version", "1", NULL),
	    0);
	ck_assert_int_eq(cli("admin", "profile", "disable", "api-client2", NULL), 0);
	ck_assert_int_eq(cli("auditor", "profile", "list", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"api-client2\""));
	ck_assert_int_eq(count("SELECT count(*) FROM profile_versions v JOIN profiles p ON"
	                       " p.name = v.profile AND v.version = p.current_version"
	                       " WHERE p.name = 'api-client2'"
	                       " AND v.body->>'max_validity_days' = '60'"),
	                 1);
	/* A bad file changes nothing and says why. */
	harness_write_text(dir_file("bad.yaml"), "name: [unclosed\n");
	ck_assert_int_eq(cli("admin", "profile", "create", dir_file("bad.yaml"), NULL), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "bad.yaml"));
	ck_assert_int_eq(cli("admin", "profile", "frobnicate", NULL), 2);
	ck_assert_int_eq(cli("admin", "profile", "--help", NULL), 0);
}
END_TEST

/* The full CRL's IDP choice (issue 16, migration 0015): an officer's setting, null until set,
 * read by hsmca-crld (test_crld). Only a boolean; other roles may not change it. */
START_TEST(full_crl_idp_is_an_authority_setting)
{
	json_t *o = NULL;

	ck_assert_int_eq(api("auditor", "GET", "/api/v1/authorities/issuing/settings", NULL, &o),
	                 200);
	ck_assert(json_is_null(json_object_get(o, "full_crl_idp")));
	json_decref(o);
	ck_assert_int_eq(api("admin", "PUT", "/api/v1/authorities/issuing/settings",
	                     "{\"full_crl_idp\": true}", &o),
	                 403);
	json_decref(o);
	ck_assert_int_eq(api("officer", "PUT", "/api/v1/authorities/issuing/settings",
	                     "{\"full_crl_idp\": \"yes\"}", &o),
	                 400);
	ck_assert_ptr_nonnull(strstr(jstr(o, "detail"), "full_crl_idp"));
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM authority_settings s JOIN authorities a ON"
	                       " a.id = s.authority_id WHERE a.name = 'issuing'"
	                       " AND s.full_crl_idp IS NOT NULL"),
	                 0);
	ck_assert_int_eq(api("officer", "PUT", "/api/v1/authorities/issuing/settings",
	                     "{\"full_crl_idp\": true}", &o),
	                 200);
	ck_assert(json_is_true(json_object_get(o, "full_crl_idp")));
	json_decref(o);
	/* Other settings changed later keep it. */
	ck_assert_int_eq(api("officer", "PUT", "/api/v1/authorities/issuing/settings",
	                     "{\"ocsp_validity_seconds\": 7200}", &o),
	                 200);
	ck_assert(json_is_true(json_object_get(o, "full_crl_idp")));
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action ="
	                       " 'authority.settings.update' AND object = 'issuing'"
	                       " AND detail::jsonb->>'full_crl_idp' = 'true'"),
	                 2);
	/* The CLI sets it too (and only to true or false). */
	ck_assert_int_eq(
	    cli("officer", "authority", "settings", "issuing", "--full-crl-idp", "false", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"full_crl_idp\": false"));
	ck_assert_int_eq(
	    cli("officer", "authority", "settings", "issuing", "--full-crl-idp", "maybe", NULL), 2);
	ck_assert_int_eq(count("SELECT count(*) FROM authority_settings s JOIN authorities a ON"
	                       " a.id = s.authority_id WHERE a.name = 'issuing'"
	                       " AND s.full_crl_idp = false"),
	                 1);
}
END_TEST

/* ================= server-side key generation and key archival ================= */

static char *hex_of(const unsigned char *b, size_t n)
{
	char *h = malloc(2 * n + 1);

	ck_assert_ptr_nonnull(h);
	for (size_t i = 0; i < n; i++)
		snprintf(h + 2 * i, 3, "%02x", b[i]);
	return h;
}

/* The PKCS#8 DER of key, hex. */
static char *pkcs8_hex(EVP_PKEY *key)
{
	PKCS8_PRIV_KEY_INFO *p8i = EVP_PKEY2PKCS8(key);
	unsigned char *der = NULL;
	int n = p8i ? i2d_PKCS8_PRIV_KEY_INFO(p8i, &der) : 0;
	char *h;

	ck_assert_int_gt(n, 0);
	h = hex_of(der, (size_t)n);
	OPENSSL_clear_free(der, (size_t)n);
	PKCS8_PRIV_KEY_INFO_free(p8i);
	return h;
}

/* The archive row of serial holds a ciphertext as long as the key's PKCS#8 plus the GCM
 * tag, under the archive key, and the plaintext key appears nowhere in it. */
static void check_archived(const char *serial, EVP_PKEY *key)
{
	char *h = pkcs8_hex(key), *sql = malloc(4 * strlen(h) + 1024);

	ck_assert_ptr_nonnull(sql);
	snprintf(sql, 4 * strlen(h) + 1024,
	         "SELECT count(*) FROM key_archive k JOIN certificates c ON c.id = k.certificate_id"
	         " WHERE c.serial = decode(lower('%s'), 'hex') AND k.key_label = 'key-archive-2026'"
	         " AND length(k.ciphertext) = length(decode('%s', 'hex')) + 16"
	         " AND position(decode('%s', 'hex') in k.ciphertext) = 0"
	         " AND position(decode('%s', 'hex') in k.wrapped_key) = 0",
	         serial, h, h, h);
	ck_assert_int_eq(count(sql), 1);
	free(sql);
	free(h);
}

START_TEST(serverkeygen_returns_a_pkcs12_whose_key_matches_and_archives_it)
{
	static const char body[] =
	    "{\"profile\": \"enc\", \"subject\": {\"CN\": \"alice\"},"
	    " \"san\": {\"email\": [\"alice@example.com\"]}, \"key_type\": \"ec-p256\","
	    " \"password\": \"correct horse battery\"}";
	json_t *o = NULL;
	long st = api("officer", "POST", "/api/v1/certificates/serverkeygen", body, &o);
	const char *b64;
	unsigned char *der;
	const unsigned char *pp;
	size_t n;
	PKCS12 *p12;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL, *x;

	ck_assert_msg(st == 201, "serverkeygen: %ld %s", st, jstr(o, "detail"));
	ck_assert_str_eq(jstr(o, "format"), "pkcs12");
	ck_assert(json_is_true(json_object_get(o, "archived")));
	b64 = jstr(o, "pkcs12");
	der = malloc(strlen(b64));
	n = (size_t)EVP_DecodeBlock(der, (const unsigned char *)b64, (int)strlen(b64));
	for (const char *e = b64 + strlen(b64); e > b64 && e[-1] == '='; e--)
		n--; /* EVP_DecodeBlock counts the padding */
	pp = der;
	ck_assert_ptr_nonnull(p12 = d2i_PKCS12(NULL, &pp, (long)n));
	/* Only the requester's password opens it. */
	ck_assert_int_eq(PKCS12_verify_mac(p12, "wrong password", -1), 0);
	ck_assert_int_eq(PKCS12_parse(p12, "correct horse battery", &key, &cert, NULL), 1);
	x = pem_cert(jstr(o, "certificate"));
	ck_assert_int_eq(X509_cmp(x, cert), 0);
	ck_assert_int_eq(X509_check_private_key(x, key), 1);
	ck_assert_int_eq(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
	ck_assert(X509_get_key_usage(x) & KU_KEY_AGREEMENT);
	check_stored(o, "issued");
	check_archived(jstr(o, "serial"), key);
	/* Audited as server-side key generation, with the key type and the archival. */
	{
		char sql[512];
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM audit_log WHERE action = 'certificate.serverkeygen'"
		         " AND lower(object) = lower('%s')"
		         " AND detail::jsonb->>'server_keygen' = 'true'"
		         " AND detail::jsonb->>'key_type' = 'ec-p256'"
		         " AND detail::jsonb->>'archived' = 'true'",
		         jstr(o, "serial"));
		ck_assert_int_eq(count(sql), 1);
	}
	X509_free(x);
	X509_free(cert);
	EVP_PKEY_free(key);
	PKCS12_free(p12);
	free(der);
	json_decref(o);
}
END_TEST

START_TEST(serverkeygen_pkcs8_rsa_opens_with_the_password)
{
	static const char body[] =
	    "{\"profile\": \"enc\", \"subject\": {\"CN\": \"bob\"},"
	    " \"san\": {\"email\": [\"bob@example.com\"]}, \"key_type\": \"rsa-2048\","
	    " \"password\": \"another long one\", \"format\": \"pkcs8\", \"validity_days\": 30}";
	json_t *o = NULL;
	long st = api("officer", "POST", "/api/v1/certificates/serverkeygen", body, &o);
	BIO *b;
	EVP_PKEY *key;
	X509 *x;

	ck_assert_msg(st == 201, "serverkeygen: %ld %s", st, jstr(o, "detail"));
	ck_assert_ptr_nonnull(strstr(jstr(o, "pkcs8"), "BEGIN ENCRYPTED PRIVATE KEY"));
	b = BIO_new_mem_buf(jstr(o, "pkcs8"), -1);
	ck_assert_ptr_null(PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"not it at all"));
	BIO_free(b);
	b = BIO_new_mem_buf(jstr(o, "pkcs8"), -1);
	key = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"another long one");
	BIO_free(b);
	ck_assert_ptr_nonnull(key);
	x = pem_cert(jstr(o, "certificate"));
	ck_assert_int_eq(X509_check_private_key(x, key), 1);
	ck_assert_int_eq(EVP_PKEY_get_bits(key), 2048);
	check_archived(jstr(o, "serial"), key);
	X509_free(x);
	EVP_PKEY_free(key);
	json_decref(o);
}
END_TEST

/* Bad requests are refused naming the problem, and nothing is reserved or archived. */
START_TEST(serverkeygen_bad_requests_change_nothing)
{
	static const struct {
		const char *who, *body, *error, *detail;
	} cases[] = {
	    {"officer",
	     "{\"profile\": \"tls-client\", \"subject\": {\"CN\": \"x\"}, \"key_type\":"
	     " \"ec-p256\", \"password\": \"long enough\"}",
	     "serverkeygen-not-allowed", "server-side key generation"},
	    {"officer",
	     "{\"profile\": \"enc\", \"key_type\": \"dsa-1024\", \"password\": \"long "
	     "enough\"}",
	     "bad-request", "key_type"},
	    {"officer",
	     "{\"profile\": \"enc\", \"key_type\": \"ec-p256\", \"password\": \"short\"}",
	     "bad-request", "password"},
	    {"officer",
	     "{\"profile\": \"enc\", \"key_type\": \"ec-p256\", \"password\": \"long "
	     "enough\", \"format\": \"jks\"}",
	     "bad-request", "format"},
	    {"officer",
	     "{\"profile\": \"enc\", \"subject\": {\"CN\": \"x\"}, \"san\": {\"email\":"
	     " [\"x@evil.test\"]}, \"key_type\": \"ec-p256\", \"password\": \"long "
	     "enough\"}",
	     "", "evil.test"},
	    {"officer",
	     "{\"profile\": \"enc\", \"subject\": {\"XX\": \"x\"}, \"key_type\": "
	     "\"ec-p256\", \"password\": \"long enough\"}",
	     "bad-request", "no subject field"},
	    {"officer", "{\"profile\": \"enc\", \"pin\": 1}", "unknown-field", "pin"},
	    {"auditor",
	     "{\"profile\": \"enc\", \"key_type\": \"ec-p256\", \"password\": \"long "
	     "enough\"}",
	     "role-not-permitted", ""},
	};
	long long certs = count("SELECT count(*) FROM certificates"),
	          archived = count("SELECT count(*) FROM key_archive");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *o = NULL;
		long st = api(cases[i].who, "POST", "/api/v1/certificates/serverkeygen",
		              cases[i].body, &o);
		ck_assert_msg(st >= 400 && st < 500, "case %zu: %ld", i, st);
		if (cases[i].error[0])
			ck_assert_str_eq(jstr(o, "error"), cases[i].error);
		ck_assert_msg(strstr(jstr(o, "detail"), cases[i].detail), "case %zu: %s", i,
		              jstr(o, "detail"));
		json_decref(o);
	}
	ck_assert_int_eq(count("SELECT count(*) FROM key_archive"), archived);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs);
}
END_TEST

/* cad's keyd grant on the archive key is wrap only: keyd refuses it the unwrap that would
 * open archived keys (recovery runs elsewhere, docs/key-recovery.md). This process runs as
 * cad's uid under the same grant. */
START_TEST(cad_grant_cannot_unwrap_the_archive_key)
{
	struct keyd_client *c = keyd_client_new(NULL, 0);
	struct keyd_err kerr = {0};
	uint8_t secret[32] = {1, 2, 3}, blob[KEYD_WRAP_BLOB_MAX], back[KEYD_WRAP_DATA_MAX];
	size_t blen = sizeof(blob), slen = sizeof(back);

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(
	    keyd_client_wrap(c, "key-archive-2026", secret, sizeof(secret), blob, &blen, &kerr),
	    KEYD_OK);
	ck_assert_int_eq(keyd_client_unwrap(c, "key-archive-2026", blob, blen, back, &slen, &kerr),
	                 KEYD_E_DENIED);
	keyd_client_free(c);
}
END_TEST

/* Archival that fails issues nothing: the archive row is refused (a trigger the test adds
 * as the owner stands for a full disk or a broken constraint), and the request gets 503
 * archival-failed naming it; no certificate is stored as issued, no row archived. */
START_TEST(failed_archival_issues_nothing)
{
	static const char body[] =
	    "{\"profile\": \"enc\", \"subject\": {\"CN\": \"carol\"},"
	    " \"san\": {\"email\": [\"carol@example.com\"]}, \"key_type\": \"ec-p256\","
	    " \"password\": \"correct horse battery\"}";
	long long issued = count("SELECT count(*) FROM certificates WHERE status = 'issued'"),
	          archived = count("SELECT count(*) FROM key_archive");
	struct db *db = owner_db();
	json_t *o = NULL;
	long st;

	harness_pg_exec_ok(db_pgconn(db),
	                   "CREATE FUNCTION test_refuse_archive() RETURNS trigger LANGUAGE plpgsql"
	                   " AS $$ BEGIN RAISE EXCEPTION 'test: archive refused'; END $$;"
	                   " CREATE TRIGGER test_refuse_archive BEFORE INSERT ON key_archive"
	                   " FOR EACH ROW EXECUTE FUNCTION test_refuse_archive()");
	st = api("officer", "POST", "/api/v1/certificates/serverkeygen", body, &o);
	ck_assert_msg(st == 503 && !strcmp(jstr(o, "error"), "archival-failed"), "%ld %s", st,
	              jstr(o, "detail"));
	ck_assert_msg(strstr(jstr(o, "detail"), "archive refused"), "%s", jstr(o, "detail"));
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE status = 'issued'"),
	                 issued);
	ck_assert_int_eq(count("SELECT count(*) FROM key_archive"), archived);
	harness_pg_exec_ok(db_pgconn(db), "DROP TRIGGER test_refuse_archive ON key_archive;"
	                                  " DROP FUNCTION test_refuse_archive()");
	db_close(db);
	/* Without it, the same request is issued and archived. */
	st = api("officer", "POST", "/api/v1/certificates/serverkeygen", body, &o);
	ck_assert_msg(st == 201, "%ld %s", st, jstr(o, "detail"));
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM key_archive"), archived + 1);
}
END_TEST

/* hsmca-cad's database role archives and never reads an archived key back. */
START_TEST(cad_role_cannot_read_the_archive)
{
	PGconn *c = PQconnectdb(cad_ci);
	PGresult *r;

	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	r = PQexec(c, "SELECT ciphertext FROM key_archive");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42501");
	PQclear(r);
	r = PQexec(c, "DELETE FROM key_archive");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	PQfinish(c);
}
END_TEST

int main(void)
{
	harness_die_init("test_cad", cleanup);
	Suite *s = suite_create("cad");
	TCase *tc = tcase_create("cad");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, cad_start, cad_stop);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, health_answers_without_credentials);
	tcase_add_test(tc, unknown_endpoint_and_method_get_json_errors);
	tcase_add_test(tc, tls_1_2_and_1_3_are_accepted);
	tcase_add_test(tc, tls_1_1_and_weak_ciphers_are_refused);
	tcase_add_test(tc, oversized_body_is_refused_with_json);
	tcase_add_test(tc, no_credentials_is_401_and_audited);
	tcase_add_test(tc, client_certificate_names_the_principal);
	tcase_add_test(tc, revoked_and_expired_client_certificates_are_refused);
	tcase_add_test(tc, certificate_from_another_ca_fails_the_handshake);
	tcase_add_test(tc, token_is_shown_once_stored_hashed_and_revocable);
	tcase_add_test(tc, issuing_credentials_are_checked_again_at_each_issuance);
	tcase_add_test(tc, expired_token_and_disabled_principal_are_refused);
	tcase_add_test(tc, bootstrap_makes_the_first_ca_admin_only);
	tcase_add_test(tc, admin_manages_only_the_roles_below_it);
	tcase_add_test(tc, every_role_on_every_endpoint);
	tcase_add_test(tc, connections_beyond_the_cap_get_503);
	tcase_add_test(tc, small_reply_leaves_in_one_record);
	tcase_add_test(tc, issue_tls_server);
	tcase_add_test(tc, issue_tls_client_with_rsa);
	tcase_add_test(tc, issue_tls_server_with_rsa);
	tcase_add_test(tc, offline_issue_is_reserved_stored_and_audited);
	tcase_add_test(tc, a_second_cad_on_a_taken_port_is_refused);
	tcase_add_test(tc, issue_device);
	tcase_add_test(tc, issue_email);
	tcase_add_test(tc, issue_code_signing_from_a_p384_ca);
	tcase_add_test(tc, crl_shard_is_assigned_and_named_in_the_distribution_point);
	tcase_add_test(tc, bad_requests_change_nothing);
	tcase_add_test(tc, validity_is_bounded_by_the_profile);
	tcase_add_test(tc, ra_issues_and_revokes_only_in_granted_profiles);
	tcase_add_test(tc, hold_release_revoke_are_durable_and_announced);
	tcase_add_test(tc, show_and_list_with_filters_and_paging);
	tcase_add_test(tc, audit_verifies_and_exports);
	tcase_add_test(tc, log_never_shows_a_token);
	tcase_add_test(tc, cli_issues_shows_lists_and_revokes);
	tcase_add_test(tc, cli_manages_principals_and_tokens_and_reads_the_audit_log);
	tcase_add_test(tc, audit_checkpoints_are_signed_and_checked);
	tcase_add_test(tc, cli_audit_verify_names_a_modified_entry);
	tcase_add_test(tc, database_down_is_503_then_service_resumes);
	tcase_add_test(tc, database_restart_under_load_loses_no_certificate);
	tcase_add_test(tc, keyd_down_is_503_nothing_signed_then_service_resumes);
	tcase_add_test(tc, unknown_endpoint_is_audited_when_authenticated);
	tcase_add_test(tc, disabled_profile_issues_nothing);
	tcase_add_test(tc, authority_settings_round_trip_and_are_validated);
	tcase_add_test(tc, crl_distribution_is_the_databases_and_a_disagreement_is_refused);
	tcase_add_test(tc, leaves_carry_the_authoritys_aia_and_their_profiles_policies);
	tcase_add_test(tc, retired_authority_issues_nothing_and_still_revokes);
	tcase_add_test(tc, cli_manages_profiles_and_authorities);
	tcase_add_test(tc, hostile_strings_get_a_clean_4xx_unless_taken_as_data);
	tcase_add_test(tc, health_says_only_the_state_details_and_metrics_need_a_role);
	suite_add_tcase(s, tc);
	/* Each crash kills hsmca-cad: a fresh set-up apiece. */
	tc = tcase_create("crash-before-sign");
	tcase_add_unchecked_fixture(tc, cad_start, cad_stop_after_crash);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, killed_between_reserve_and_sign_leaves_a_reservation);
	suite_add_tcase(s, tc);
	tc = tcase_create("crash-before-store");
	tcase_add_unchecked_fixture(tc, cad_start, cad_stop_after_crash);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, killed_between_sign_and_store_the_database_still_records_it);
	suite_add_tcase(s, tc);
	/* CK_RUN_CASE=keygen runs these alone. */
	tc = tcase_create("keygen");
	tcase_add_unchecked_fixture(tc, cad_start, cad_stop);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, serverkeygen_returns_a_pkcs12_whose_key_matches_and_archives_it);
	tcase_add_test(tc, serverkeygen_pkcs8_rsa_opens_with_the_password);
	tcase_add_test(tc, serverkeygen_bad_requests_change_nothing);
	tcase_add_test(tc, cad_grant_cannot_unwrap_the_archive_key);
	tcase_add_test(tc, failed_archival_issues_nothing);
	tcase_add_test(tc, cad_role_cannot_read_the_archive);
	suite_add_tcase(s, tc);
	/* Stored, versioned profiles: after the others, since it edits the configuration's. */
	tc = tcase_create("profiles");
	tcase_add_unchecked_fixture(tc, cad_start, cad_stop);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, configuration_profiles_are_version_1_and_seeded_once);
	tcase_add_test(tc, profiles_are_created_edited_cloned_and_versioned);
	tcase_add_test(tc, bad_profiles_are_refused_naming_the_field_and_change_nothing);
	tcase_add_test(tc, stored_versions_are_immutable_even_for_cad);
	tcase_add_test(tc, a_change_reaches_another_cad_without_restart);
	tcase_add_test(tc, cli_creates_edits_clones_and_shows_profiles);
	tcase_add_test(tc, full_crl_idp_is_an_authority_setting);
	suite_add_tcase(s, tc);
	/* One environment (keyd, PostgreSQL, certificates) for the whole suite, made and removed
	 * here in the parent so that no failing test can leave a server behind. */
	setup();
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	teardown();
	if (harness_bad_exits) {
		fprintf(stderr,
		        "test_cad: %d daemon(s) did not exit cleanly on SIGTERM: see above\n",
		        harness_bad_exits);
		failed++;
	}
	return failed ? 1 : 0;
}
