/*
 * Device enrolment over EST (RFC 7030) end to end, with real clients: the curl and openssl
 * commands are the device (openssl req makes each device's key and CSR, curl enrols with a
 * provisioning token over HTTP Basic or Bearer, or re-enrols with its certificate over mutual
 * TLS; openssl base64 and pkcs7 read the answers). Officers manage tokens and devices through
 * the API (libcurl) and the hsmca command line. Behind it: a private PostgreSQL cluster
 * (tests/pg/pgtest), a throwaway keyd holding the CA key, and hsmca-cad.
 */
#include <check.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
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
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509v3.h>

#include "db.h"
#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct harness_pg pg;
static char dir[256];
static char base_url[128];
static pid_t cad_pid;
static OSSL_PROVIDER *prov_keyd, *prov_default;
static void cleanup(void);

/* ---- processes and files ---- */

/* dir/name, in a rotating buffer of the harness. */
#define in_dir(name) harness_pathf(dir, "%s", name)

/* A shell command (in the test folder), stdout and stderr to sh.log; its exit status. */
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	char *argv[] = {"sh", "-c", cmd, NULL};
	va_list ap;
	int n;

	n = snprintf(cmd, sizeof(cmd), "cd '%s' && ", dir);
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	return harness_run(argv, in_dir("sh.log"));
}

/* ---- certificates for the fixture ---- */

/* issuer NULL: self-signed. Valid from nb to na seconds from now. */
static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                       const char *san, long nb, long na, long serial)
{
	time_t now = time(NULL);
	struct harness_cert c = {.cn = cn,
	                         .pub = pub,
	                         .issuer = issuer,
	                         .signer = signer,
	                         .ca = ca,
	                         .serial = serial,
	                         .not_before = now + nb,
	                         .not_after = now + na,
	                         .san = san,
	                         .md = "SHA256"};

	return harness_make_cert(&c);
}

/* ---- the API, as an operator (libcurl) ---- */

static const struct harness_site site = {.base_url = base_url, .dir = dir};

/* who: a role (its client certificate) or a file name of a certificate "X" (X.pem, X.key). */
static long api(const char *who, const char *method, const char *path, const char *body,
                json_t **out)
{
	return harness_api(&site, who, method, path, body, out);
}

static const char *jstr(json_t *o, const char *k)
{
	return harness_jstr(o, k);
}

/* A provisioning token made by the officer; body fields beyond name and profile in extra
 * (JSON members, "" for none). Returns a static copy of the token. */
static const char *new_token(const char *profile, const char *extra)
{
	static char token[4][128];
	static int i;
	char body[2048];
	json_t *o = NULL;
	long st;

	i = (i + 1) % 4;
	snprintf(body, sizeof(body), "{\"name\":\"t%d\",\"profile\":\"%s\"%s%s}", i, profile,
	         *extra ? "," : "", extra);
	st = api("officer", "POST", "/api/v1/provisioning-tokens", body, &o);
	ck_assert_msg(st == 201, "token: %ld %s", st, o ? jstr(o, "detail") : "");
	snprintf(token[i], sizeof(token[i]), "%s", jstr(o, "token"));
	ck_assert_ptr_nonnull(strstr(token[i], "hsmcaprov_"));
	json_decref(o);
	return token[i];
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

static long long issued(void)
{
	return count("SELECT count(*) FROM certificates");
}

static long long denied(const char *action)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND action = '%s'",
	         action);
	return count(sql);
}

/* ---- the device: openssl and curl ---- */

/* A fresh P-256 key NAME.key and CSR NAME.b64 (base64 of the DER, as RFC 7030 sends it) and
 * NAME.der. subj: "/CN=..."; san: e.g. "URI:urn:dev:1" or NULL. algo "rsa" for an RSA key. */
static void device_csr(const char *name, const char *subj, const char *san, const char *algo)
{
	char addext[300] = "";

	if (san)
		snprintf(addext, sizeof(addext), "-addext 'subjectAltName=%s'", san);
	ck_assert_msg(sh("openssl req -new %s -nodes -keyout %s.key -subj '%s' %s -outform DER "
	                 "-out %s.der && openssl base64 -in %s.der -out %s.b64",
	                 algo && !strcmp(algo, "rsa") ? "-newkey rsa:2048"
	                                              : "-newkey ec -pkeyopt "
	                                                "ec_paramgen_curve:P-256",
	                 name, subj, addext, name, name, name) == 0,
	              "openssl req: %s", harness_slurp(in_dir("sh.log")));
}

/* curl as an EST client: POST body_file to op (e.g. "simpleenroll", "sensor/simpleenroll");
 * auth: curl options ("-u dev:TOKEN", "--cert X.pem --key X.key", ...). The answer goes to
 * out (and its headers to out.h). The HTTP status, or 0 when there was none. */
static long est_post(const char *op, const char *auth, const char *body_file, const char *out)
{
	char code[16] = "";
	int rc = sh("curl -sS --cacert opca.pem %s -H 'Content-Type: application/pkcs10' "
	            "--data-binary @%s -D %s.h -o %s -w '%%{http_code}' %s/.well-known/est/%s",
	            auth, body_file, out, out, base_url, op);

	snprintf(code, sizeof(code), "%s", harness_slurp(in_dir("sh.log")));
	return rc == 0 ? atol(code) : 0;
}

static long est_get(const char *op, const char *out)
{
	char code[16] = "";
	int rc = sh("curl -sS --cacert opca.pem -D %s.h -o %s -w '%%{http_code}' "
	            "%s/.well-known/est/%s",
	            out, out, base_url, op);

	snprintf(code, sizeof(code), "%s", harness_slurp(in_dir("sh.log")));
	return rc == 0 ? atol(code) : 0;
}

/* The certificate in a base64 certs-only PKCS#7 answer, as PEM into pem_name. */
static void answer_cert(const char *answer, const char *pem_name)
{
	ck_assert_msg(sh("openssl base64 -d -in %s | openssl pkcs7 -inform DER -print_certs "
	                 "-out %s",
	                 answer, pem_name) == 0,
	              "pkcs7: %s", harness_slurp(in_dir("sh.log")));
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir(pem_name)), "BEGIN CERTIFICATE"));
}

/* Enrol NAME (key NAME.key, CSR NAME.b64) with token; the certificate into NAME.pem. */
static void enrol_ok(const char *name, const char *subj, const char *san, const char *token)
{
	char auth[300], body[64], out[64], pem[64];
	long st;

	device_csr(name, subj, san, NULL);
	snprintf(auth, sizeof(auth), "-u '%s:%s'", name, token);
	snprintf(body, sizeof(body), "%s.b64", name);
	snprintf(out, sizeof(out), "%s.p7", name);
	snprintf(pem, sizeof(pem), "%s.pem", name);
	st = est_post("simpleenroll", auth, body, out);
	ck_assert_msg(st == 200, "enrol %s: %ld %s", name, st, harness_slurp(in_dir(out)));
	answer_cert(out, pem);
}

/* ---- fixture ---- */

static EVP_PKEY *opca_key;
static X509 *opca;

static void client_cert(const char *name)
{
	static long serial = 5000;
	EVP_PKEY *k = EVP_EC_gen("P-256");

	harness_write_credential(
	    dir, name, make_cert(name, k, opca, opca_key, 0, NULL, -3600, 86400L * 365, serial++),
	    k);
}

static const char config_fmt[] =
    "listen: {address: 127.0.0.1, port: %d}\n"
    "tls: {certificate: %s/server.pem, key: %s/server.key, client_ca: %s/opca.pem}\n"
    "database: \"%s connect_timeout=3\"\n"
    "limits: {max_body_bytes: 16384, timeout_seconds: 20}\n"
    "authorities:\n"
    "  - {name: devices, certificate: %s/devca.pem, key: \"keyd:label=devices-p256\"}\n"
    "key_profiles:\n"
    "  - {name: ec-only, ec_curves: [P-256]}\n"
    "profiles:\n"
    "  - name: device\n"
    "    authority: devices\n"
    "    key_profile: ec-only\n"
    "    max_validity_days: 365\n"
    "    key_usage: [digitalSignature, keyAgreement]\n"
    "    extended_key_usage: [clientAuth]\n"
    "    subject_fields: [CN, serialNumber]\n"
    "    subject_cn_required: true\n"
    "    san: {uri: [\"urn:dev:*\"]}\n"
    "  - name: sensor\n"
    "    authority: devices\n"
    "    key_profile: ec-only\n"
    "    max_validity_days: 30\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [clientAuth]\n"
    "    subject_fields: [CN]\n"
    "    subject_cn_required: true\n"
    "  - name: server\n"
    "    authority: devices\n"
    "    key_profile: ec-only\n"
    "    max_validity_days: 30\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [serverAuth]\n"
    "    subject_fields: [CN]\n"
    "    subject_cn_required: true\n"
    "  - name: vault\n"
    "    authority: devices\n"
    "    key_profile: ec-only\n"
    "    max_validity_days: 30\n"
    "    key_usage: [keyAgreement]\n"
    "    extended_key_usage: [clientAuth]\n"
    "    subject_fields: [CN]\n"
    "    subject_cn_required: true\n"
    "    server_keygen: true\n"
    "    archive_key: true\n"
    "key_archive: {key: key-archive-2026}\n"
    "est:\n"
    "  profiles: [device, sensor, vault]\n";

static void cad_start(void)
{
	cad_pid = harness_cad_start(&site, in_dir("cad.yaml"), in_dir("cad.log"), NULL);
}

/* cad on one worker (every connection on one event loop), enrolments waiting up to 60 s for
 * their identity's lock; and the same with a 1 s limit. */
static void cad_start_one_worker(void)
{
	cad_pid = harness_cad_start(&site, in_dir("cad-one.yaml"), in_dir("cad-one.log"), NULL);
}

static void cad_start_short_wait(void)
{
	cad_pid = harness_cad_start(&site, in_dir("cad-short.yaml"), in_dir("cad-short.log"), NULL);
}

static void cad_stop_one_worker(void)
{
	harness_cad_stop(&cad_pid, in_dir("cad-one.log"), 0);
}

static void cad_stop_short_wait(void)
{
	harness_cad_stop(&cad_pid, in_dir("cad-short.log"), 0);
}

/* conf with listen.workers and est.lock_wait_seconds set, into file name. */
static void write_variant(const char *conf, const char *name, int workers, int wait_s)
{
	char text[sizeof(config_fmt) + 2048];
	const char *at = strstr(conf, "}\ntls:");

	if (!at)
		harness_die("cad.yaml has no listen line to give workers to");
	snprintf(text, sizeof(text), "%.*s, workers: %d%s  lock_wait_seconds: %d\n",
	         (int)(at - conf), conf, workers, at, wait_s);
	harness_write_text(in_dir(name), text);
}

/* Its exit is checked (status 0, no sanitizer report): harness_bad_exits fails the suite. */
static void cad_stop(void)
{
	harness_cad_stop(&cad_pid, in_dir("cad.log"), 0);
}

static void setup(void)
{
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err kerr;
	struct db *db;
	static const char *const roles[] = {"officer", "auditor", "admin", "ca-admin"};
	EVP_PKEY *dk;
	X509 *x;
	char conf[8192], cad_ci[1024];
	int port;

	harness_setup_phase = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	/* The test and hsmca-cad (one uid) sign, generate, and wrap (EST serverkeygen archives). */
	snprintf(conf, sizeof(conf),
	         "  - name: test\n"
	         "    uid: %u\n"
	         "    keys: [\"*\"]\n"
	         "    operations: [\"*\", generate, wrap]\n",
	         (unsigned)getuid());
	if (harness_start(&h, &(struct harness_opts){.clients_yaml = conf}) != 0)
		harness_die(__func__);
	snprintf(dir, sizeof(dir), "%s", h.dir);
	c = keyd_client_new(NULL, 0);
	if (!c ||
	    keyd_client_generate(c, "devices-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "key-archive-2026", KEYD_KEY_AES, 256, &k, &kerr))
		harness_die(__func__);
	keyd_client_free(c);
	harness_load_providers(&prov_keyd, &prov_default);

	/* The device-issuing CA (key in keyd), the operator-auth CA, the server, operators. */
	dk = harness_keyd_key("devices-p256");
	x = make_cert("hsmca test device CA", dk, NULL, dk, 1, NULL, -3600, 86400L * 3650, 1);
	harness_write_cert(in_dir("devca.pem"), x, 0);
	X509_free(x);
	EVP_PKEY_free(dk);
	opca = harness_opca(dir, "hsmca test operator CA", &opca_key);
	for (size_t i = 0; i < 4; i++)
		client_cert(roles[i]);

	db = harness_pg_migrated(&pg, "est");
	for (size_t i = 0; i < 4; i++)
		harness_db_principal(db, dir, roles[i], roles[i], NULL);
	/* hsmca-cad as in production: its own role (serverkeygen's archive needs its INSERT). */
	snprintf(cad_ci, sizeof(cad_ci), "%s", harness_pg_daemon_ci(&pg, db_pgconn(db), "cad"));
	db_close(db);

	port = harness_free_port();
	snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port);
	snprintf(conf, sizeof(conf), config_fmt, port, dir, dir, dir, cad_ci, dir);
	harness_write_text(in_dir("cad.yaml"), conf);
	write_variant(conf, "cad-one.yaml", 1, 60);
	write_variant(conf, "cad-short.yaml", 16, 1);
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

/* ================= the tests ================= */

START_TEST(cacerts_is_a_base64_pkcs7_of_the_device_ca)
{
	ck_assert_int_eq(est_get("cacerts", "cacerts.p7"), 200);
	ck_assert_ptr_nonnull(
	    strstr(harness_slurp(in_dir("cacerts.p7.h")), "application/pkcs7-mime"));
	ck_assert_ptr_nonnull(
	    strstr(harness_slurp(in_dir("cacerts.p7.h")), "Content-Transfer-Encoding: base64"));
	answer_cert("cacerts.p7", "cacerts.pem");
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("cacerts.pem")), "hsmca test device CA"));
	/* Per profile, by label; an unknown label or operation is 404 in plain text. */
	ck_assert_int_eq(est_get("sensor/cacerts", "cacerts2.p7"), 200);
	answer_cert("cacerts2.p7", "cacerts2.pem");
	ck_assert_int_eq(est_get("server/cacerts", "nolabel"), 404);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("nolabel")), "no EST label"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("nolabel.h")), "text/plain"));
	ck_assert_int_eq(est_get("fullcmc", "nocmc"), 404);
}
END_TEST

START_TEST(csrattrs_name_the_key_type_and_signature)
{
	ck_assert_int_eq(est_get("csrattrs", "attrs"), 200);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("attrs.h")), "application/csrattrs"));
	ck_assert_int_eq(sh("openssl base64 -d -in attrs | openssl asn1parse -inform DER"), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("sh.log")), "prime256v1"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("sh.log")), "ecdsa-with-SHA256"));
}
END_TEST

START_TEST(enrol_with_token_then_reenrol_with_certificate)
{
	const char *token = new_token("device", "");
	json_t *o = NULL;
	long st;

	enrol_ok("dev-0001", "/CN=dev-0001/serialNumber=SN0001", "URI:urn:dev:0001", token);
	ck_assert_int_eq(sh("openssl verify -CAfile devca.pem dev-0001.pem"), 0);
	ck_assert_int_eq(
	    sh("openssl x509 -in dev-0001.pem -noout -ext subjectAltName,extendedKeyUsage"), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("sh.log")), "urn:dev:0001"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("sh.log")), "Client Authentication"));
	/* The key in the certificate is the device's own. */
	ck_assert_int_eq(sh("test \"$(openssl x509 -in dev-0001.pem -noout -pubkey)\" = "
	                    "\"$(openssl pkey -in dev-0001.key -pubout)\""),
	                 0);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/devices/dev-0001", NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "status"), "active");
	ck_assert_str_eq(jstr(o, "profile"), "device");
	ck_assert_int_eq(json_array_size(json_object_get(o, "certificates")), 1);
	json_decref(o);

	/* Re-enrolment: the current certificate over mutual TLS, a new key, the same name. */
	ck_assert_int_eq(sh("cp dev-0001.pem dev-0001-old.pem && cp dev-0001.key dev-0001-old.key"),
	                 0);
	device_csr("dev-0001", "/CN=dev-0001/serialNumber=SN0001", "URI:urn:dev:0001", NULL);
	st = est_post("simplereenroll", "--cert dev-0001-old.pem --key dev-0001-old.key",
	              "dev-0001.b64", "re.p7");
	ck_assert_msg(st == 200, "reenrol: %ld %s", st, harness_slurp(in_dir("re.p7")));
	answer_cert("re.p7", "dev-0001.pem");
	ck_assert_int_eq(sh("openssl verify -CAfile devca.pem dev-0001.pem"), 0);
	ck_assert_int_ne(sh("cmp -s dev-0001.pem dev-0001-old.pem"), 0);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/devices/dev-0001", NULL, &o), 200);
	ck_assert_int_eq(json_array_size(json_object_get(o, "certificates")), 2);
	json_decref(o);
	/* The label path works too, for the device's own profile. */
	device_csr("dev-0001b", "/CN=dev-0001/serialNumber=SN0001", "URI:urn:dev:0001", NULL);
	st = est_post("device/simplereenroll", "--cert dev-0001.pem --key dev-0001.key",
	              "dev-0001b.b64", "re2.p7");
	ck_assert_msg(st == 200, "reenrol by label: %ld %s", st, harness_slurp(in_dir("re2.p7")));
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'est.simplereenroll'"
	                       " AND outcome = 'success' AND actor = 'device/dev-0001'"),
	                 2);
	/* Enrolment and re-enrolment record the profile version issued under (migration 0015). */
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE subject LIKE '%dev-0001%'"
	                       " AND (profile_version IS NULL OR profile_version < 1)"),
	                 0);
	ck_assert_int_ge(count("SELECT count(*) FROM certificates WHERE subject LIKE '%dev-0001%'"
	                       " AND profile_version = 1"),
	                 1);
}
END_TEST

START_TEST(bearer_token_and_der_body_are_accepted)
{
	const char *token = new_token("sensor", "\"uses\":2");
	char auth[300];
	long st;

	device_csr("sensor-a", "/CN=sensor-a", NULL, NULL);
	snprintf(auth, sizeof(auth), "-H 'Authorization: Bearer %s'", token);
	st = est_post("sensor/simpleenroll", auth, "sensor-a.der", "sa.p7");
	ck_assert_msg(st == 200, "DER + bearer: %ld %s", st, harness_slurp(in_dir("sa.p7")));
	answer_cert("sa.p7", "sensor-a.pem");
	/* The token's profile is the default when no label is given. */
	device_csr("sensor-b", "/CN=sensor-b", NULL, NULL);
	st = est_post("simpleenroll", auth, "sensor-b.b64", "sb.p7");
	ck_assert_msg(st == 200, "no label: %ld %s", st, harness_slurp(in_dir("sb.p7")));
}
END_TEST

START_TEST(token_used_twice_is_refused)
{
	const char *token = new_token("device", "");
	char auth[300];
	long long before;
	long st;

	enrol_ok("dev-once", "/CN=dev-once", "URI:urn:dev:once", token);
	before = issued();
	device_csr("dev-twice", "/CN=dev-twice", "URI:urn:dev:twice", NULL);
	snprintf(auth, sizeof(auth), "-u 'dev-twice:%s'", token);
	st = est_post("simpleenroll", auth, "dev-twice.b64", "twice");
	ck_assert_int_eq(st, 401);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("twice")), "spent"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("twice.h")), "WWW-Authenticate: Basic"));
	ck_assert_int_eq(issued(), before);
	ck_assert_int_eq(count("SELECT count(*) FROM devices WHERE identity = 'dev-twice'"), 0);
	/* Stored as its SHA-256 only; neither the log nor the audit trail holds it. */
	{
		char sql[300];
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM provisioning_tokens WHERE token_sha256 ="
		         " sha256('%s'::bytea)",
		         token);
		ck_assert_int_eq(count(sql), 1);
	}
	ck_assert_int_ne(sh("grep -qF '%s' cad.log", token), 0);
	{
		char sql[300];
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM audit_log WHERE detail LIKE '%%%s%%'"
		         " OR object LIKE '%%%s%%'",
		         token, token);
		ck_assert_int_eq(count(sql), 0);
	}
	ck_assert_int_ge(count("SELECT count(*) FROM audit_log WHERE outcome = 'denied' AND"
	                       " action = 'est.simpleenroll' AND detail LIKE '%spent%'"),
	                 1);
}
END_TEST

START_TEST(wrong_or_missing_token_is_401_and_audited)
{
	long long before = issued(), d = denied("est.simpleenroll");

	device_csr("dev-x", "/CN=dev-x", "URI:urn:dev:x", NULL);
	ck_assert_int_eq(est_post("simpleenroll", "-u 'dev-x:hsmcaprov_nope'", "dev-x.b64", "w1"),
	                 401);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("w1")), "unknown provisioning token"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("w1.h")), "text/plain"));
	ck_assert_int_eq(est_post("simpleenroll", "", "dev-x.b64", "w2"), 401);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("w2")), "provisioning token"));
	ck_assert_int_eq(
	    est_post("simpleenroll", "-H 'Authorization: Basic !!!'", "dev-x.b64", "w3"), 401);
	ck_assert_int_eq(issued(), before);
	ck_assert_int_eq(denied("est.simpleenroll"), d + 3);
}
END_TEST

START_TEST(revoked_and_expired_tokens_are_401)
{
	json_t *o = NULL, *t;
	const char *token = new_token("device", "");
	char auth[300], path[128];
	long long id = 0;
	size_t i;

	ck_assert_int_eq(api("auditor", "GET", "/api/v1/provisioning-tokens", NULL, &o), 200);
	/* Listed without the token itself. */
	json_array_foreach(json_object_get(o, "tokens"), i, t) id =
	    json_integer_value(json_object_get(t, "id"));
	ck_assert_ptr_null(
	    json_object_get(json_array_get(json_object_get(o, "tokens"), 0), "token"));
	json_decref(o);
	snprintf(path, sizeof(path), "/api/v1/provisioning-tokens/%lld/revoke", id);
	ck_assert_int_eq(api("officer", "POST", path, NULL, NULL), 200);
	device_csr("dev-r", "/CN=dev-r", "URI:urn:dev:r", NULL);
	snprintf(auth, sizeof(auth), "-u 'dev-r:%s'", token);
	ck_assert_int_eq(est_post("simpleenroll", auth, "dev-r.b64", "rv"), 401);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("rv")), "revoked"));

	token = new_token("device", "");
	{
		PGconn *c = owner();
		PQclear(PQexec(c,
		               "UPDATE provisioning_tokens SET expires_at = now() - interval '1s'"
		               " WHERE id = (SELECT max(id) FROM provisioning_tokens)"));
		PQfinish(c);
	}
	snprintf(auth, sizeof(auth), "-u 'dev-r:%s'", token);
	ck_assert_int_eq(est_post("simpleenroll", auth, "dev-r.b64", "ex"), 401);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("ex")), "expired"));
}
END_TEST

START_TEST(allowlist_miss_is_403_and_a_match_enrols)
{
	const char *token = new_token("device", "\"uses\":3,\"allowlist\":[\"gw-00?[0-9]\","
	                                        "\"urn:dev:1b4e28ba-*\"]");
	char auth[300];
	long long before = issued();

	snprintf(auth, sizeof(auth), "-u 'x:%s'", token);
	device_csr("intruder", "/CN=intruder", "URI:urn:dev:intruder", NULL);
	ck_assert_int_eq(est_post("simpleenroll", auth, "intruder.b64", "miss"), 403);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("miss")), "allowlist"));
	ck_assert_int_eq(issued(), before);
	/* The miss spent nothing: two identities on the list still enrol, one by its CN alone,
	 * one whose CN and SAN are both listed. */
	enrol_ok("gw-0042", "/CN=gw-0042", NULL, token);
	enrol_ok("gw-0043", "/CN=gw-0043", "URI:urn:dev:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
	         token);
	ck_assert_int_eq(
	    count("SELECT uses FROM provisioning_tokens WHERE 'gw-00?[0-9]' = ANY(allowlist)"), 2);
}
END_TEST

/* The allowlist vouches for every name: a listed CN with an unlisted SAN, or a listed SAN with
 * an unlisted CN, is refused; identities are one device whatever their case. */
START_TEST(allowlist_covers_the_identity_and_every_san)
{
	const char *token = new_token("device", "\"uses\":5,\"allowlist\":[\"gw-0001\","
	                                        "\"urn:dev:gw-0001\",\"gw-0077\"]");
	char auth[300];
	long long before = issued();
	const char *out;

	snprintf(auth, sizeof(auth), "-u 'x:%s'", token);
	device_csr("victim-san", "/CN=gw-0001", "URI:urn:dev:victim", NULL);
	ck_assert_int_eq(est_post("simpleenroll", auth, "victim-san.b64", "al1"), 403);
	out = harness_slurp(in_dir("al1"));
	ck_assert_msg(strstr(out, "SAN \"urn:dev:victim\" of device gw-0001 is not on the "
	                          "allowlist"),
	              "%s", out);
	device_csr("unlisted-cn", "/CN=intruder", "URI:urn:dev:gw-0001", NULL);
	ck_assert_int_eq(est_post("simpleenroll", auth, "unlisted-cn.b64", "al2"), 403);
	out = harness_slurp(in_dir("al2"));
	ck_assert_msg(strstr(out, "identity \"intruder\" of device intruder is not on"), "%s", out);
	ck_assert_int_eq(issued(), before);
	ck_assert_int_eq(count("SELECT uses FROM provisioning_tokens WHERE 'gw-0077' = "
	                       "ANY(allowlist)"),
	                 0);
	/* Both names listed: enrols. */
	enrol_ok("gw-0001", "/CN=gw-0001", "URI:urn:dev:gw-0001", token);
	/* GW-0077 is stored as gw-0077, and gw-0077 is then the same device (which already has a
	 * valid certificate, and this token does not replace). */
	enrol_ok("gw-0077-upper", "/CN=GW-0077", NULL, token);
	ck_assert_int_eq(count("SELECT count(*) FROM devices WHERE identity = 'gw-0077'"), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM devices WHERE identity = 'GW-0077'"), 0);
	device_csr("gw-0077-lower", "/CN=gw-0077", NULL, NULL);
	ck_assert_int_eq(est_post("simpleenroll", auth, "gw-0077-lower.b64", "al3"), 403);
	ck_assert_ptr_nonnull(
	    strstr(harness_slurp(in_dir("al3")), "already has a valid certificate"));
	ck_assert_int_eq(count("SELECT count(*) FROM devices WHERE lower(identity) = 'gw-0077'"),
	                 1);
}
END_TEST

START_TEST(csr_not_matching_the_profile_is_400_and_spends_nothing)
{
	const char *token = new_token("device", "");
	char auth[300];
	long long before = issued();

	snprintf(auth, sizeof(auth), "-u 'dev-bad:%s'", token);
	device_csr("dev-rsa", "/CN=dev-rsa", "URI:urn:dev:rsa", "rsa");
	ck_assert_int_eq(est_post("simpleenroll", auth, "dev-rsa.b64", "b1"), 400);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("b1")), "does not fit profile device"));
	device_csr("dev-dns", "/CN=dev-dns", "DNS:dev.example.com", NULL);
	ck_assert_int_eq(est_post("simpleenroll", auth, "dev-dns.b64", "b2"), 400);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("b2")), "SAN"));
	harness_write_text(in_dir("garbage"), "this is not base64 of a CSR!\n");
	ck_assert_int_eq(est_post("simpleenroll", auth, "garbage", "b3"), 400);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("b3")), "PKCS#10"));
	ck_assert_int_eq(issued(), before);
	ck_assert_int_ge(denied("est.simpleenroll"), 3);
	/* The token is still unused. */
	enrol_ok("dev-good", "/CN=dev-good", "URI:urn:dev:good", token);
}
END_TEST

START_TEST(identity_with_a_valid_certificate_needs_a_replacing_token)
{
	const char *t1 = new_token("device", "");
	const char *t2 = new_token("device", "");
	const char *t3 = new_token("device", "\"replace\":true");
	char auth[300], serial[80];
	long long before;

	enrol_ok("dev-dup", "/CN=dev-dup", "URI:urn:dev:dup", t1);
	ck_assert_int_eq(sh("openssl x509 -in dev-dup.pem -noout -serial > dup.serial"), 0);
	snprintf(serial, sizeof(serial), "%s",
	         strchr(harness_slurp(in_dir("dup.serial")), '=') + 1);
	serial[strcspn(serial, "\n")] = '\0';
	before = issued();
	device_csr("dev-dup2", "/CN=dev-dup", "URI:urn:dev:dup", NULL);
	snprintf(auth, sizeof(auth), "-u 'dev-dup:%s'", t2);
	ck_assert_int_eq(est_post("simpleenroll", auth, "dev-dup2.b64", "dup"), 403);
	ck_assert_ptr_nonnull(
	    strstr(harness_slurp(in_dir("dup")), "already has a valid certificate"));
	ck_assert_int_eq(issued(), before);
	/* A token that allows replacement: the new certificate supersedes the old one. */
	enrol_ok("dev-dup", "/CN=dev-dup", "URI:urn:dev:dup", t3);
	{
		char sql[300];
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM certificates WHERE lower(encode(serial, 'hex')) ="
		         " lower('%s') AND status = 'revoked' AND revocation_reason = 4",
		         serial);
		ck_assert_int_eq(count(sql), 1);
	}
}
END_TEST

/* In a child process: EST operation op (e.g. "simpleenroll") for NAME (CSR NAME.b64) with
 * token; exits 0 on 200, 3 on 403, else 1. The answer goes to NAME.p7 (its headers to
 * NAME.p7.h), the status to NAME.code (not to the shared sh.log). */
static void post_in_child(const char *op, const char *name, const char *token)
{
	char code[32];
	int rc = sh("curl -sS --cacert opca.pem -u '%s:%s' -H 'Content-Type: application/pkcs10' "
	            "--data-binary @%s.b64 -D %s.p7.h -o %s.p7 -w '%%{http_code}' "
	            "%s/.well-known/est/%s > %s.code",
	            name, token, name, name, name, base_url, op, name);

	snprintf(code, sizeof(code), "%s",
	         rc == 0 ? harness_slurp(harness_pathf(dir, "%s.code", name)) : "");
	_exit(!strcmp(code, "200") ? 0 : !strcmp(code, "403") ? 3 : 1);
}

/* post_in_child in a child of the test: its pid. */
static pid_t post_in_background(const char *op, const char *name, const char *token)
{
	pid_t pid = fork();

	if (pid == 0)
		post_in_child(op, name, token);
	ck_assert_int_gt(pid, 0);
	return pid;
}

/* Wait for the child post_in_background started: its exit status (0, 3 or 1). */
static int child_status(pid_t pid)
{
	int st;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st), "the child posting an enrolment did not exit");
	return WEXITSTATUS(st);
}

/* hsmca_cad_est_lock_waits from cad's /metrics (read as the auditor): enrolments waiting now
 * for another enrolment of their identity; -1 when /metrics did not answer within 20 s. */
static long lock_waits(void)
{
	const char *text, *at;

	if (sh("curl -sS --max-time 20 --cacert opca.pem --cert auditor.pem --key auditor.key "
	       "-o metrics.txt %s/metrics",
	       base_url))
		return -1;
	text = harness_slurp(in_dir("metrics.txt"));
	at = strstr(text, "\nhsmca_cad_est_lock_waits ");
	return at ? atol(at + strlen("\nhsmca_cad_est_lock_waits ")) : -1;
}

/* Wait (up to 60 s, the event itself) until n enrolments wait for their identity's lock. */
static void await_lock_waits(long n)
{
	long w = -1;

	for (time_t end = time(NULL) + 60; (w = lock_waits()) != n && time(NULL) < end;)
		usleep(50 * 1000);
	ck_assert_msg(w == n, "%ld enrolments wait for their identity's lock, not %ld", w, n);
}

/* Holds identity id's enrolment lock from the test's own session (the advisory lock
 * db_device_trylock takes on the identity, the CSR's CN), as another enrolment would. */
static PGconn *hold_lock(const char *id)
{
	PGconn *holder = owner();
	char sql[160];

	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(hashtextextended('%s', 1752395107))",
	         id);
	harness_pg_exec_ok(holder, sql);
	return holder;
}

static void let_go(PGconn *holder, const char *id)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(hashtextextended('%s', 1752395107))",
	         id);
	harness_pg_exec_ok(holder, sql);
	PQfinish(holder);
}

/* The HTTP status enrolment NAME was answered with ("" when there was none). */
static const char *slurp_code(const char *name)
{
	static char buf[2][64];
	static int i;

	i = !i;
	snprintf(buf[i], sizeof(buf[i]), "%s", harness_slurp(harness_pathf(dir, "%s.code", name)));
	return buf[i];
}

/* Two tokens enrolling one identity at the same moment: one certificate, the other 403. The
 * test makes the race happen: it holds the identity's enrolment lock itself and waits until
 * both requests wait for it (cad's gauge), i.e. both passed token, CSR and allowlist checks
 * and neither has reserved anything. Released, they take it in turn, and the second finds the
 * first's certificate. cad runs one worker here, so both connections share its event loop:
 * the waits must not stop that loop (were the first waiting inside PostgreSQL, the second
 * request and /metrics itself would never be read). */
START_TEST(concurrent_enrolments_of_one_identity_issue_one_certificate)
{
	const char *t1 = new_token("device", ""), *t2 = new_token("device", "");
	char tok1[128], tok2[128];
	PGconn *holder;
	pid_t a, b;
	int sa, sb;

	snprintf(tok1, sizeof(tok1), "%s", t1);
	snprintf(tok2, sizeof(tok2), "%s", t2);
	device_csr("dev-race-1", "/CN=dev-race", "URI:urn:dev:race", NULL);
	device_csr("dev-race-2", "/CN=dev-race", "URI:urn:dev:race", NULL);
	holder = hold_lock("dev-race");
	a = post_in_background("simpleenroll", "dev-race-1", tok1);
	b = post_in_background("simpleenroll", "dev-race-2", tok2);
	await_lock_waits(2);
	/* neither had reserved anything before it had the lock */
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE subject = 'CN=dev-race'"),
	                 0);
	let_go(holder, "dev-race");
	sa = child_status(a);
	sb = child_status(b);
	ck_assert_msg((sa == 0 && sb == 3) || (sa == 3 && sb == 0),
	              "one enrolment succeeds and the other is refused: %d %d (HTTP %s, %s)", sa,
	              sb, slurp_code("dev-race-1"), slurp_code("dev-race-2"));
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE subject = 'CN=dev-race'"
	                       " AND status = 'issued'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE subject = 'CN=dev-race'"),
	                 1);
	ck_assert_int_eq(lock_waits(), 0);
}
END_TEST

/* While an enrolment waits for its identity's lock, the other requests of its worker (cad on
 * one worker) are answered, and the enrolment then completes. */
START_TEST(an_enrolment_waiting_for_its_lock_leaves_its_worker_free)
{
	const char *token = new_token("device", "");
	char tok[128];
	PGconn *holder;
	pid_t a;

	snprintf(tok, sizeof(tok), "%s", token);
	device_csr("dev-stall", "/CN=dev-stall", "URI:urn:dev:stall", NULL);
	holder = hold_lock("dev-stall");
	a = post_in_background("simpleenroll", "dev-stall", tok);
	await_lock_waits(1);
	ck_assert_int_eq(sh("curl -sS --max-time 20 --cacert opca.pem -o stall.p7 "
	                    "%s/.well-known/est/cacerts",
	                    base_url),
	                 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("stall.p7")), "MII"));
	/* answered while the enrolment still waited */
	ck_assert_int_eq(lock_waits(), 1);
	let_go(holder, "dev-stall");
	ck_assert_msg(child_status(a) == 0, "the enrolment: HTTP %s", slurp_code("dev-stall"));
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE subject = 'CN=dev-stall'"
	                       " AND status = 'issued'"),
	                 1);
}
END_TEST

static void split_multipart(const char *out);

/* serverkeygen waiting for its identity's lock: the key made by its first try is kept while it
 * waits, and the answer's key is the certificate's (and archived once). */
START_TEST(serverkeygen_that_waits_for_its_lock_returns_its_certificates_key)
{
	const char *token = new_token("vault", "");
	char tok[128];
	PGconn *holder;
	pid_t a;

	snprintf(tok, sizeof(tok), "%s", token);
	device_csr("skg-wait", "/CN=skg-wait", NULL, NULL);
	holder = hold_lock("skg-wait");
	a = post_in_background("vault/serverkeygen", "skg-wait", tok);
	await_lock_waits(1);
	let_go(holder, "skg-wait");
	ck_assert_msg(child_status(a) == 0, "serverkeygen: HTTP %s", slurp_code("skg-wait"));
	split_multipart("skg-wait.p7");
	ck_assert_int_eq(sh("openssl base64 -d -in skg-wait.p7.1.b64 -out skg-wait.key.der && "
	                    "openssl pkey -inform DER -in skg-wait.key.der -out skg-wait.skg.key"),
	                 0);
	answer_cert("skg-wait.p7.2.b64", "skg-wait.skg.pem");
	ck_assert_int_eq(sh("test \"$(openssl x509 -in skg-wait.skg.pem -noout -pubkey)\" = "
	                    "\"$(openssl pkey -in skg-wait.skg.key -pubout)\""),
	                 0);
	ck_assert_int_eq(count("SELECT count(*) FROM key_archive k JOIN certificates c ON c.id ="
	                       " k.certificate_id WHERE c.subject = 'CN=skg-wait'"),
	                 1);
}
END_TEST

/* An enrolment whose identity's lock stays held past est.lock_wait_seconds (1 s here) is
 * answered 503 with Retry-After, naming the setting, and spends nothing: its token enrols the
 * device once the lock is free. */
START_TEST(an_enrolment_that_waits_too_long_is_503_and_spends_nothing)
{
	const char *token = new_token("device", "");
	char tok[128], auth[300];
	long long before = issued();
	PGconn *holder;

	snprintf(tok, sizeof(tok), "%s", token);
	snprintf(auth, sizeof(auth), "-u 'dev-slow:%s'", tok);
	device_csr("dev-slow", "/CN=dev-slow", "URI:urn:dev:slow", NULL);
	holder = hold_lock("dev-slow");
	ck_assert_int_eq(est_post("simpleenroll", auth, "dev-slow.b64", "slow1"), 503);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("slow1")), "est.lock_wait_seconds"));
	ck_assert_ptr_nonnull(strcasestr(harness_slurp(in_dir("slow1.h")), "Retry-After: 5"));
	ck_assert_int_eq(issued(), before);
	ck_assert_int_eq(lock_waits(), 0);
	let_go(holder, "dev-slow");
	ck_assert_int_eq(est_post("simpleenroll", auth, "dev-slow.b64", "slow2"), 200);
	ck_assert_int_eq(issued(), before + 1);
}
END_TEST

START_TEST(reenrolment_with_another_identity_is_403)
{
	long long before;

	enrol_ok("dev-id", "/CN=dev-id", "URI:urn:dev:id", new_token("device", ""));
	before = issued();
	device_csr("dev-other", "/CN=dev-other", "URI:urn:dev:id", NULL);
	ck_assert_int_eq(
	    est_post("simplereenroll", "--cert dev-id.pem --key dev-id.key", "dev-other.b64", "o1"),
	    403);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("o1")), "same identity"));
	device_csr("dev-other2", "/CN=dev-id", "URI:urn:dev:other", NULL);
	ck_assert_int_eq(est_post("simplereenroll", "--cert dev-id.pem --key dev-id.key",
	                          "dev-other2.b64", "o2"),
	                 403);
	/* Another profile's label is refused too. */
	device_csr("dev-id3", "/CN=dev-id", "URI:urn:dev:id", NULL);
	ck_assert_int_eq(est_post("sensor/simplereenroll", "--cert dev-id.pem --key dev-id.key",
	                          "dev-id3.b64", "o3"),
	                 403);
	ck_assert_int_eq(issued(), before);
	ck_assert_int_ge(denied("est.simplereenroll"), 3);
}
END_TEST

START_TEST(reenrolment_without_a_device_certificate_is_401)
{
	long long before;

	enrol_ok("dev-nc", "/CN=dev-nc", "URI:urn:dev:nc", new_token("device", ""));
	before = issued();
	ck_assert_int_eq(est_post("simplereenroll", "", "dev-nc.b64", "n1"), 401);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("n1")), "current certificate"));
	/* An operator's certificate is no device's. */
	ck_assert_int_eq(
	    est_post("simplereenroll", "--cert officer.pem --key officer.key", "dev-nc.b64", "n2"),
	    401);
	ck_assert_int_eq(issued(), before);
}
END_TEST

START_TEST(reenrolment_with_a_revoked_certificate_is_401)
{
	char serial[80], path[200];
	long long before;

	enrol_ok("dev-rev", "/CN=dev-rev", "URI:urn:dev:rev", new_token("device", ""));
	ck_assert_int_eq(sh("openssl x509 -in dev-rev.pem -noout -serial > rev.serial"), 0);
	snprintf(serial, sizeof(serial), "%s",
	         strchr(harness_slurp(in_dir("rev.serial")), '=') + 1);
	serial[strcspn(serial, "\n")] = '\0';
	snprintf(path, sizeof(path), "/api/v1/certificates/%s/revoke", serial);
	ck_assert_int_eq(api("officer", "POST", path, "{\"reason\":\"keyCompromise\"}", NULL), 200);
	before = issued();
	device_csr("dev-rev2", "/CN=dev-rev", "URI:urn:dev:rev", NULL);
	ck_assert_int_eq(est_post("simplereenroll", "--cert dev-rev.pem --key dev-rev.key",
	                          "dev-rev2.b64", "r1"),
	                 401);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("r1")), "revoked"));
	ck_assert_int_eq(issued(), before);
}
END_TEST

/* An expired device certificate, signed by the device CA's key in keyd and recorded as the
 * CA would have (a device enrolled two years ago). */
START_TEST(reenrolment_with_an_expired_certificate_is_401)
{
	EVP_PKEY *ca = harness_keyd_key("devices-p256"), *k = EVP_EC_gen("P-256");
	FILE *f = fopen(in_dir("devca.pem"), "r");
	X509 *cax = PEM_read_X509(f, NULL, NULL, NULL);
	X509 *x = make_cert("dev-old", k, cax, ca, 0, "URI:urn:dev:old", -86400L * 400,
	                    -86400L * 35, 0x4a0b0c0d);
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	PGconn *c = owner();
	const char *vals[1] = {(const char *)der};
	int lens[1] = {len}, fmts[1] = {1};
	PGresult *r;
	long long before;

	fclose(f);
	r = PQexecParams(
	    c,
	    "WITH a AS (SELECT id FROM authorities WHERE name = 'devices'),"
	    " c AS (INSERT INTO certificates (authority_id, serial, status, profile, subject,"
	    " not_before, not_after, spki_sha256, der, requester, issued_at)"
	    " SELECT a.id, '\\x4a0b0c0d', 'issued', 'device', 'CN=dev-old',"
	    " now() - interval '400 days', now() - interval '35 days', sha256('x'), $1,"
	    " 'test', now() - interval '400 days' FROM a RETURNING id),"
	    " d AS (INSERT INTO devices (identity, profile) VALUES ('dev-old', 'device')"
	    " RETURNING id)"
	    " INSERT INTO device_certificates SELECT d.id, c.id, 'enroll' FROM c, d",
	    1, NULL, vals, lens, fmts, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	harness_write_cert(in_dir("dev-old.pem"), x, 0);
	harness_write_key(in_dir("dev-old.key"), k);
	before = issued();
	device_csr("dev-old2", "/CN=dev-old", "URI:urn:dev:old", NULL);
	ck_assert_int_eq(est_post("simplereenroll", "--cert dev-old.pem --key dev-old.key",
	                          "dev-old2.b64", "e1"),
	                 401);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("e1")), "not valid now"));
	ck_assert_int_eq(issued(), before);
	/* Expired is not a way into the API either. */
	ck_assert_int_eq(api("dev-old", "GET", "/api/v1/whoami", NULL, NULL), 401);
	OPENSSL_free(der);
	X509_free(x);
	X509_free(cax);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ca);
}
END_TEST

START_TEST(device_certificate_never_authenticates_to_the_api)
{
	json_t *o = NULL;

	enrol_ok("dev-api", "/CN=dev-api", "URI:urn:dev:api", new_token("device", ""));
	/* Even registered as a principal, a device-CA certificate gets nowhere in the API. */
	ck_assert_int_eq(sh("openssl x509 -in dev-api.pem -outform DER | sha256sum | cut -c1-64 "
	                    "> dev-api.sha"),
	                 0);
	{
		char sql[300];
		snprintf(sql, sizeof(sql),
		         "INSERT INTO principals (name, role, cert_sha256) VALUES ('dev-api',"
		         " 'officer', decode('%.64s', 'hex'))",
		         harness_slurp(in_dir("dev-api.sha")));
		PGconn *c = owner();
		PGresult *r = PQexec(c, sql);
		ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
	}
	ck_assert_int_eq(api("dev-api", "GET", "/api/v1/whoami", NULL, &o), 401);
	json_decref(o);
	ck_assert_int_eq(api("dev-api", "GET", "/api/v1/devices", NULL, NULL), 401);
	ck_assert_int_eq(api("officer", "GET", "/api/v1/whoami", NULL, NULL), 200);
}
END_TEST

START_TEST(decommission_revokes_and_refuses_reenrolment)
{
	json_t *o = NULL;
	char auth[300];
	long long before;

	enrol_ok("dev-dc", "/CN=dev-dc", "URI:urn:dev:dc", new_token("device", ""));
	ck_assert_int_eq(api("officer", "POST", "/api/v1/devices/dev-dc/decommission", "{}", &o),
	                 400);
	json_decref(o);
	ck_assert_int_eq(api("auditor", "POST", "/api/v1/devices/dev-dc/decommission",
	                     "{\"reason\":\"keyCompromise\"}", &o),
	                 403);
	json_decref(o);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/devices/dev-dc/decommission",
	                     "{\"reason\":\"keyCompromise\",\"comment\":\"stolen from site 4\"}",
	                     &o),
	                 200);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "revoked")), 1);
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates c JOIN device_certificates x"
	                       " ON x.certificate_id = c.id JOIN devices d ON d.id = x.device_id"
	                       " WHERE d.identity = 'dev-dc' AND c.status = 'revoked'"
	                       " AND c.revocation_reason = 1"),
	                 1);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/devices/dev-dc", NULL, &o), 200);
	ck_assert_str_eq(jstr(o, "status"), "decommissioned");
	ck_assert_ptr_nonnull(strstr(jstr(o, "decommission_reason"), "stolen"));
	json_decref(o);
	before = issued();
	device_csr("dev-dc2", "/CN=dev-dc", "URI:urn:dev:dc", NULL);
	ck_assert_int_eq(
	    est_post("simplereenroll", "--cert dev-dc.pem --key dev-dc.key", "dev-dc2.b64", "d1"),
	    401);
	/* Nor does a fresh token bring it back. */
	snprintf(auth, sizeof(auth), "-u 'dev-dc:%s'", new_token("device", "\"replace\":true"));
	ck_assert_int_eq(est_post("simpleenroll", auth, "dev-dc2.b64", "d2"), 403);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("d2")), "decommissioned"));
	ck_assert_int_eq(issued(), before);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/devices/dev-dc/decommission",
	                     "{\"reason\":\"keyCompromise\"}", &o),
	                 409);
	json_decref(o);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'device.decommission'"
	                       " AND outcome = 'success' AND object = 'dev-dc'"),
	                 1);
}
END_TEST

START_TEST(devices_are_listed_by_identity)
{
	json_t *o = NULL;

	enrol_ok("list-me-1", "/CN=list-me-1", "URI:urn:dev:l1", new_token("device", ""));
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/devices?identity=LIST-me", NULL, &o), 200);
	ck_assert_int_eq(json_array_size(json_object_get(o, "devices")), 1);
	ck_assert_str_eq(jstr(json_array_get(json_object_get(o, "devices"), 0), "identity"),
	                 "list-me-1");
	json_decref(o);
	ck_assert_int_eq(api("auditor", "GET", "/api/v1/devices/nobody", NULL, &o), 404);
	json_decref(o);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/provisioning-tokens",
	                     "{\"name\":\"x\",\"profile\":\"server\"}", &o),
	                 400);
	ck_assert_str_eq(jstr(o, "error"), "unknown-profile");
	json_decref(o);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/provisioning-tokens",
	                     "{\"name\":\"x\",\"profile\":\"device\",\"allowlist\":[\"a b\"]}", &o),
	                 400);
	json_decref(o);
	/* The allowlist is a list of strings (cad_body_string_list, shared with ACME's EAB). */
	ck_assert_int_eq(api("officer", "POST", "/api/v1/provisioning-tokens",
	                     "{\"name\":\"x\",\"profile\":\"device\",\"allowlist\":\"gw-1\"}", &o),
	                 400);
	ck_assert(strstr(jstr(o, "detail"), "\"allowlist\" must be a list of at most"));
	json_decref(o);
	ck_assert_int_eq(api("officer", "POST", "/api/v1/provisioning-tokens",
	                     "{\"name\":\"x\",\"profile\":\"device\",\"allowlist\":[1]}", &o),
	                 400);
	ck_assert_str_eq(jstr(o, "detail"), "\"allowlist\" entries must be strings");
	json_decref(o);
}
END_TEST

/* ---- the command line ---- */

static char cli_out[512], cli_err[512];

static int cli(const char *who, ...)
{
	const char *args[32];
	int n = 0;
	va_list ap;

	snprintf(cli_out, sizeof(cli_out), "%s/cli.out", dir);
	snprintf(cli_err, sizeof(cli_err), "%s/cli.err", dir);
	va_start(ap, who);
	while (n < 31 && (args[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	args[n] = NULL;
	return harness_cli(&site, who, args, cli_out, cli_err);
}

START_TEST(cli_provisions_and_decommissions)
{
	char token[200];

	ck_assert_int_eq(cli("officer", "provision", "create", "--profile", "device", "--name",
	                     "batch-7", "--uses", "2", "--allow", "cli-*", "--allow", "urn:dev:cli",
	                     "--days", "3", NULL),
	                 0);
	ck_assert_int_eq(sscanf(harness_slurp(cli_out), "%199s", token), 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "not shown again"));
	enrol_ok("cli-dev", "/CN=cli-dev", "URI:urn:dev:cli", token);
	ck_assert_int_eq(cli("auditor", "provision", "list", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "batch-7"));
	ck_assert_ptr_null(strstr(harness_slurp(cli_out), token));
	ck_assert_int_eq(cli("auditor", "device", "list", "--identity", "cli-", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "cli-dev"));
	ck_assert_int_eq(cli("auditor", "device", "show", "cli-dev", NULL), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "\"certificates\""));
	ck_assert_int_eq(cli("auditor", "device", "decommission", "cli-dev", "--reason",
	                     "cessationOfOperation", NULL),
	                 1);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_err), "role-not-permitted"));
	ck_assert_int_eq(cli("officer", "device", "decommission", "cli-dev", "--reason",
	                     "cessationOfOperation", NULL),
	                 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(cli_out), "decommissioned"));
	ck_assert_int_eq(cli("officer", "device", "decommission", "cli-dev", NULL), 2);
	ck_assert_int_eq(cli("officer", "provision", "create", "--name", "x", NULL), 2);
	ck_assert_int_eq(cli("officer", "provision", "--help", NULL), 0);
	ck_assert_int_eq(cli("officer", "device", "--help", NULL), 0);
}
END_TEST

/* ---- serverkeygen (RFC 7030 4.4) ---- */

/* Split the multipart/mixed answer out (headers in out.h) with awk into out.N.h (a part's
 * headers) and out.N.b64 (its base64 body), N from 1. */
static void split_multipart(const char *out)
{
	ck_assert_msg(
	    sh("b=$(tr -d '\\r' < %s.h | sed -n 's/^Content-Type: multipart\\/mixed; "
	       "boundary=//p') && test -n \"$b\" && tr -d '\\r' < %s | awk -v b=\"--$b\" "
	       "-v o=%s '$0 == b || $0 == b \"--\" { n++; hdr = 1; next } "
	       "hdr && $0 == \"\" { hdr = 0; next } "
	       "hdr { print > (o \".\" n \".h\"); next } { print > (o \".\" n \".b64\") }'",
	       out, out, out) == 0,
	    "split: %s", harness_slurp(in_dir("sh.log")));
}

START_TEST(serverkeygen_returns_the_key_and_its_certificate_and_archives_it)
{
	const char *token = new_token("vault", "");
	char auth[300], sql[300];
	long st;

	/* The device's CSR names it; its key is not the one certified. */
	device_csr("skg-01", "/CN=skg-01", NULL, NULL);
	snprintf(auth, sizeof(auth), "-u 'skg-01:%s'", token);
	st = est_post("vault/serverkeygen", auth, "skg-01.b64", "skg.out");
	ck_assert_msg(st == 200, "serverkeygen: %ld %s", st, harness_slurp(in_dir("skg.out")));
	ck_assert_ptr_nonnull(
	    strstr(harness_slurp(in_dir("skg.out.h")), "Content-Type: multipart/mixed; boundary="));
	split_multipart("skg.out");
	/* RFC 7030 4.4.2: the private key first, as PKCS#8, then the certificate. */
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("skg.out.1.h")), "application/pkcs8"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("skg.out.1.h")), "base64"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("skg.out.2.h")),
	                             "application/pkcs7-mime; smime-type=certs-only"));
	ck_assert_int_eq(sh("openssl base64 -d -in skg.out.1.b64 -out skg.key.der && "
	                    "openssl pkey -inform DER -in skg.key.der -out skg.key"),
	                 0);
	answer_cert("skg.out.2.b64", "skg.pem");
	ck_assert_int_eq(sh("openssl verify -CAfile devca.pem skg.pem"), 0);
	ck_assert_int_eq(sh("openssl x509 -in skg.pem -noout -subject -ext keyUsage"), 0);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("sh.log")), "CN = skg-01"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("sh.log")), "Key Agreement"));
	/* The key matches the certificate, and it is not the one of the device's CSR. */
	ck_assert_int_eq(sh("test \"$(openssl x509 -in skg.pem -noout -pubkey)\" = "
	                    "\"$(openssl pkey -in skg.key -pubout)\""),
	                 0);
	ck_assert_int_ne(sh("test \"$(openssl x509 -in skg.pem -noout -pubkey)\" = "
	                    "\"$(openssl pkey -in skg-01.key -pubout)\""),
	                 0);
	/* Archived under keyd's key in the certificate's transaction; a device; audited. */
	ck_assert_int_eq(count("SELECT count(*) FROM key_archive k JOIN certificates c ON c.id ="
	                       " k.certificate_id WHERE c.subject LIKE '%skg-01%'"
	                       " AND k.key_label = 'key-archive-2026'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM devices WHERE identity = 'skg-01'"), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'est.serverkeygen'"
	                       " AND outcome = 'success' AND detail LIKE '%server_keygen%'"),
	                 1);
	/* The key is in no log. */
	ck_assert_int_eq(sh("k=$(sed -n 2p skg.out.1.b64) && ! grep -qF \"$k\" cad.log"), 0);
	/* One certificate per device: the same identity again with a fresh token is refused. */
	token = new_token("vault", "");
	snprintf(auth, sizeof(auth), "-u 'skg-01:%s'", token);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM key_archive");
	{
		long long before = issued(), archived = count(sql);
		st = est_post("vault/serverkeygen", auth, "skg-01.b64", "skg2.out");
		ck_assert_int_eq(st, 403);
		ck_assert_ptr_nonnull(
		    strstr(harness_slurp(in_dir("skg2.out")), "already has a valid certificate"));
		ck_assert_int_eq(issued(), before);
		ck_assert_int_eq(count(sql), archived);
	}
}
END_TEST

START_TEST(serverkeygen_is_refused_where_the_profile_does_not_allow_it)
{
	const char *token = new_token("device", "");
	char auth[300], sql[300];
	long long before = issued();
	long st;

	device_csr("skg-no", "/CN=skg-no", "URI:urn:dev:skg-no", NULL);
	snprintf(auth, sizeof(auth), "-u 'skg-no:%s'", token);
	st = est_post("serverkeygen", auth, "skg-no.b64", "skgno.out");
	ck_assert_int_eq(st, 403);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("skgno.out")),
	                             "profile device does not allow server-side key generation"));
	ck_assert_int_eq(issued(), before);
	ck_assert_int_ge(denied("est.serverkeygen"), 1);
	/* Nothing spent: the token still enrols the device with its own key. */
	snprintf(sql, sizeof(sql),
	         "SELECT uses FROM provisioning_tokens WHERE token_sha256 = sha256('%s'::bytea)",
	         token);
	ck_assert_int_eq(count(sql), 0);
	st = est_post("simpleenroll", auth, "skg-no.b64", "skgno.p7");
	ck_assert_msg(st == 200, "enrol: %ld %s", st, harness_slurp(in_dir("skgno.p7")));
	/* Without a token, 401; GET is 405. */
	ck_assert_int_eq(est_post("vault/serverkeygen", "", "skg-no.b64", "skgno2.out"), 401);
	ck_assert_int_eq(est_get("vault/serverkeygen", "skgno3.out"), 405);
}
END_TEST

/* RFC 7030 4.4.1.2: a CSR asking for the key encrypted to a key it names is refused, clearly. */
START_TEST(serverkeygen_refuses_an_encrypted_key_request)
{
	const char *token = new_token("vault", "");
	char auth[300];
	long long before = issued();
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	unsigned char kid[8] = {1, 2, 3, 4, 5, 6, 7, 8}, *der = NULL;
	int len;
	FILE *f;

	ck_assert(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                                     (const unsigned char *)"skg-enc", -1, -1, 0));
	ck_assert(X509_REQ_set_subject_name(req, n) && X509_REQ_set_pubkey(req, k));
	ck_assert(X509_REQ_add1_attr_by_txt(req, "1.2.840.113549.1.9.16.2.54", V_ASN1_OCTET_STRING,
	                                    kid, sizeof(kid)));
	ck_assert(X509_REQ_sign(req, k, EVP_sha256()));
	ck_assert_int_gt(len = i2d_X509_REQ(req, &der), 0);
	ck_assert_ptr_nonnull(f = fopen(in_dir("skg-enc.der"), "wb"));
	ck_assert_int_eq(fwrite(der, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	OPENSSL_free(der);
	X509_NAME_free(n);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	snprintf(auth, sizeof(auth), "-u 'skg-enc:%s'", token);
	ck_assert_int_eq(est_post("vault/serverkeygen", auth, "skg-enc.der", "skgenc.out"), 400);
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("skgenc.out")), "not supported"));
	ck_assert_ptr_nonnull(strstr(harness_slurp(in_dir("skgenc.out")), "4.4.1.2"));
	ck_assert_int_eq(issued(), before);
	ck_assert_int_eq(count("SELECT count(*) FROM devices WHERE identity = 'skg-enc'"), 0);
}
END_TEST

int main(void)
{
	harness_die_init("test_est", cleanup);
	Suite *s = suite_create("est");
	TCase *tc = tcase_create("est");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, cad_start, cad_stop);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, cacerts_is_a_base64_pkcs7_of_the_device_ca);
	tcase_add_test(tc, csrattrs_name_the_key_type_and_signature);
	tcase_add_test(tc, enrol_with_token_then_reenrol_with_certificate);
	tcase_add_test(tc, bearer_token_and_der_body_are_accepted);
	tcase_add_test(tc, token_used_twice_is_refused);
	tcase_add_test(tc, wrong_or_missing_token_is_401_and_audited);
	tcase_add_test(tc, revoked_and_expired_tokens_are_401);
	tcase_add_test(tc, allowlist_miss_is_403_and_a_match_enrols);
	tcase_add_test(tc, allowlist_covers_the_identity_and_every_san);
	tcase_add_test(tc, csr_not_matching_the_profile_is_400_and_spends_nothing);
	tcase_add_test(tc, identity_with_a_valid_certificate_needs_a_replacing_token);
	tcase_add_test(tc, reenrolment_with_another_identity_is_403);
	tcase_add_test(tc, reenrolment_without_a_device_certificate_is_401);
	tcase_add_test(tc, reenrolment_with_a_revoked_certificate_is_401);
	tcase_add_test(tc, reenrolment_with_an_expired_certificate_is_401);
	tcase_add_test(tc, device_certificate_never_authenticates_to_the_api);
	tcase_add_test(tc, decommission_revokes_and_refuses_reenrolment);
	tcase_add_test(tc, devices_are_listed_by_identity);
	tcase_add_test(tc, cli_provisions_and_decommissions);
	tcase_add_test(tc, serverkeygen_returns_the_key_and_its_certificate_and_archives_it);
	tcase_add_test(tc, serverkeygen_is_refused_where_the_profile_does_not_allow_it);
	tcase_add_test(tc, serverkeygen_refuses_an_encrypted_key_request);
	suite_add_tcase(s, tc);
	tc = tcase_create("est-one-worker");
	tcase_add_unchecked_fixture(tc, cad_start_one_worker, cad_stop_one_worker);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, concurrent_enrolments_of_one_identity_issue_one_certificate);
	tcase_add_test(tc, an_enrolment_waiting_for_its_lock_leaves_its_worker_free);
	tcase_add_test(tc, serverkeygen_that_waits_for_its_lock_returns_its_certificates_key);
	suite_add_tcase(s, tc);
	tc = tcase_create("est-short-wait");
	tcase_add_unchecked_fixture(tc, cad_start_short_wait, cad_stop_short_wait);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, an_enrolment_that_waits_too_long_is_503_and_spends_nothing);
	suite_add_tcase(s, tc);
	setup();
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	teardown();
	failed += harness_bad_exits;
	return failed ? 1 : 0;
}
