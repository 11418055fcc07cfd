/*
 * ACME (RFC 8555) in hsmca-cad end to end, over HTTPS with a client of our own (libcurl and
 * tests/acme_client.c), without a client certificate: the directory and newNonce, External
 * Account Binding credentials made by an officer through the API and the hsmca command line
 * (and refused to other roles), registration bound by them, account update, key rollover and
 * deactivation, and every bad JWS refused with a problem document and a fresh nonce, nothing
 * changed. Behind it: a private PostgreSQL cluster (tests/pg/pgtest), a throwaway keyd holding
 * the CA key, and hsmca-cad.
 */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "acme_client.h"
#include "db.h"
#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct harness_pg pg;
static char dir[256];
static char base_url[128], acme_url[160];
static pid_t cad_pid;
/* hsmca-ocspd, answering for the authority of the certificates certbot gets. */
static pid_t ocspd_pid;
static char ocsp_url[64], ocspd_ci[512];
/* hsmca-cad connects as its own role (migration 0013, and 0019's grants on the order tables),
 * as in the quickstart: whatever the ACME adapter needs beyond them fails here. */
static char cad_ci[512];
/* hsmca-acmevald: its directory (owned by the user it runs as), socket, and the ports it
 * checks http-01 and tls-alpn-01 on. */
static char vdir[128], vsock[200];
static pid_t val_pid;
static int http01_port, alpn_port;
/* Knot DNS (tests/dns/start.sh): zone example.test, TSIG-signed TXT updates for dns-01. */
static char dnsdir[200];
static int dns_port;
static OSSL_PROVIDER *prov_keyd, *prov_default;

#define in_dir(name) harness_pathf(dir, "%s", name)

/* ---- HTTP ---- */

struct reply {
	long status;
	char *body;
	char nonce[64], location[300], content_type[64];
	int retry_after;
	char links[8][400]; /* the Link headers */
	int n_links;
};

/* 1 when r has the Link header <url>;rel="rel". */
static int has_link(const struct reply *r, const char *url, const char *rel)
{
	char want[500];

	snprintf(want, sizeof(want), "<%s>;rel=\"%s\"", url, rel);
	for (int i = 0; i < r->n_links; i++)
		if (!strcmp(r->links[i], want))
			return 1;
	return 0;
}

/* How many Link headers of r have rel="rel". */
static int links_of(const struct reply *r, const char *rel)
{
	char want[64];
	int n = 0;

	snprintf(want, sizeof(want), ";rel=\"%s\"", rel);
	for (int i = 0; i < r->n_links; i++)
		n += strstr(r->links[i], want) != NULL;
	return n;
}

static void reply_clear(struct reply *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static const struct harness_site site = {.base_url = base_url, .dir = dir};

/* method url (absolute) with body (NULL: none) and content type (NULL: JOSE); who: a client
 * certificate's name or NULL. */
static struct reply http(const char *who, const char *method, const char *url, const char *body,
                         const char *ctype)
{
	struct harness_reply hr;
	struct reply r = {0};
	char v[16];

	r.status = harness_http(
	    &site,
	    &(struct harness_req){.who = who,
	                          .method = method,
	                          .path = url,
	                          .body = body,
	                          .content_type = ctype ? ctype : "application/jose+json"},
	    &hr);
	harness_reply_header(&hr, "Replay-Nonce", 0, r.nonce, sizeof(r.nonce));
	harness_reply_header(&hr, "Location", 0, r.location, sizeof(r.location));
	if (harness_reply_header(&hr, "Retry-After", 0, v, sizeof(v)))
		r.retry_after = atoi(v);
	harness_reply_header(&hr, "Content-Type", 0, r.content_type, sizeof(r.content_type));
	while (r.n_links < 8 &&
	       harness_reply_header(&hr, "Link", r.n_links, r.links[r.n_links], sizeof(r.links[0])))
		r.n_links++;
	r.body = hr.body;
	hr.body = NULL;
	harness_reply_clear(&hr);
	return r;
}

static PGconn *owner(void)
{
	return harness_pg_connect(pg.owner_ci);
}

static long long count(const char *sql)
{
	return harness_pg_count_on(pg.owner_ci, sql);
}

/* ---- the ACME client ---- */

static char nonce[64];

static void get_nonce(void)
{
	char url[256];
	struct reply r;

	snprintf(url, sizeof(url), "%s/new-nonce", acme_url);
	r = http(NULL, "HEAD", url, NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_gt(strlen(r.nonce), 0);
	snprintf(nonce, sizeof(nonce), "%s", r.nonce);
	reply_clear(&r);
}

/* A JWS for path (below /acme) signed with t, by jwk (kid NULL) or kid. */
static char *jws(const struct tkey *t, const char *kid, const char *path, const char *payload)
{
	char url[300];
	json_t *hdr;

	if (!nonce[0])
		get_nonce();
	snprintf(url, sizeof(url), "%s%s", acme_url, path);
	hdr = json_pack("{s:s, s:s, s:s}", "alg", t->alg, "nonce", nonce, "url", url);
	if (kid)
		json_object_set_new(hdr, "kid", json_string(kid));
	else
		json_object_set(hdr, "jwk", t->jwk);
	nonce[0] = '\0';
	return jws_with(t, hdr, payload);
}

/* POST body (freed) to path; the reply's nonce is kept for the next request. Every answer
 * must bring one. */
static struct reply post(const char *path, char *body)
{
	char url[300];
	struct reply r;

	snprintf(url, sizeof(url), "%s%s", acme_url, path);
	r = http(NULL, "POST", url, body, NULL);
	free(body);
	ck_assert_msg(strlen(r.nonce) > 0, "no Replay-Nonce on %ld %s", r.status,
	              r.body ? r.body : "");
	snprintf(nonce, sizeof(nonce), "%s", r.nonce);
	snprintf(url, sizeof(url), "%s/directory", acme_url);
	ck_assert_msg(links_of(&r, "index") == 1 && has_link(&r, url, "index"),
	              "no Link rel=index on %s", path);
	return r;
}

static int problem(const struct reply *r, const char *type)
{
	char want[96];
	json_t *o = r->body ? json_loads(r->body, 0, NULL) : NULL;
	int ok;

	snprintf(want, sizeof(want), "urn:ietf:params:acme:error:%s", type);
	ok = o && !strcmp(r->content_type, "application/problem+json") &&
	     !strcmp(json_string_value(json_object_get(o, "type")), want);
	if (!ok)
		fprintf(stderr, "expected %s, got %ld %s\n", type, r->status,
		        r->body ? r->body : "");
	json_decref(o);
	return ok;
}

struct eab {
	char kid[64];
	uint8_t key[64];
	size_t key_len;
};

static struct eab eab_from(const char *kid, const char *key_b64)
{
	struct eab e = {0};
	char std[128];
	size_t n = strlen(key_b64), i;

	snprintf(e.kid, sizeof(e.kid), "%s", kid);
	for (i = 0; i < n && i < 100; i++)
		std[i] = key_b64[i] == '-' ? '+' : key_b64[i] == '_' ? '/' : key_b64[i];
	while (i % 4)
		std[i++] = '=';
	std[i] = '\0';
	uint8_t buf[96];
	int len = EVP_DecodeBlock(buf, (const uint8_t *)std, (int)i);
	ck_assert_int_gt(len, 0);
	len -= (int)(i - n); /* the padding */
	ck_assert_int_eq(len, 32);
	memcpy(e.key, buf, (size_t)len);
	e.key_len = (size_t)len;
	return e;
}

/* An EAB credential made by the officer through the API; extra: more body members. */
static struct eab new_eab(const char *extra)
{
	char url[256], body[512];
	struct reply r;
	json_t *o;
	struct eab e;

	snprintf(url, sizeof(url), "%s/api/v1/acme/eab", base_url);
	snprintf(body, sizeof(body), "{\"profiles\":[\"web\"]%s}", extra);
	r = http("officer", "POST", url, body, "application/json");
	ck_assert_msg(r.status == 201, "eab: %ld %s", r.status, r.body ? r.body : "");
	o = json_loads(r.body, 0, NULL);
	e = eab_from(json_string_value(json_object_get(o, "kid")),
	             json_string_value(json_object_get(o, "hmac_key")));
	json_decref(o);
	reply_clear(&r);
	return e;
}

static char *account_payload(const struct tkey *t, const struct eab *e)
{
	char url[300], *s;
	json_t *o = json_pack("{s:b, s:[s]}", "termsOfServiceAgreed", 1, "contact",
	                      "mailto:ops@corp.example.com");

	snprintf(url, sizeof(url), "%s/new-account", acme_url);
	if (e)
		json_object_set_new(o, "externalAccountBinding",
		                    eab_for(t, e->kid, e->key, e->key_len, url));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Register t with e; its account URL into kid. */
static void register_key(const struct tkey *t, const struct eab *e, char *kid, size_t n)
{
	char *pl = account_payload(t, e);
	struct reply r = post("/new-account", jws(t, NULL, "/new-account", pl));

	free(pl);
	ck_assert_msg(r.status == 201, "newAccount: %ld %s", r.status, r.body ? r.body : "");
	snprintf(kid, n, "%s", r.location);
	reply_clear(&r);
}

/* ---- fixture ---- */

static EVP_PKEY *opca_key;
static X509 *opca;

static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int ca,
                       const char *san, long serial)
{
	time_t now = time(NULL);
	struct harness_cert c = {.cn = cn,
	                         .pub = pub,
	                         .issuer = issuer,
	                         .signer = signer,
	                         .ca = ca,
	                         .serial = serial,
	                         .not_before = now - 3600,
	                         .not_after = now + 86400L * 365,
	                         .san = san,
	                         .md = "SHA256"};

	return harness_make_cert(&c);
}

static void client_cert(const char *name, long serial)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	harness_write_credential(dir, name, make_cert(name, k, opca, opca_key, 0, NULL, serial), k);
}

static const char config_fmt[] =
    "listen: {address: 127.0.0.1, port: %d}\n"
    "tls: {certificate: %s/server.pem, key: %s/server.key, client_ca: %s/opca.pem}\n"
    "database: \"%s connect_timeout=3\"\n"
    "limits: {max_body_bytes: 65536, timeout_seconds: 20}\n"
    "authorities:\n"
    "  - {name: web, certificate: %s/webca.pem, key: \"keyd:label=web-p256\"}\n"
    "key_profiles:\n"
    "  - {name: ec-only, ec_curves: [P-256]}\n"
    "profiles:\n"
    "  - name: web\n"
    "    authority: web\n"
    "    key_profile: ec-only\n"
    "    max_validity_days: 90\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [serverAuth]\n"
    "    subject_fields: [CN]\n"
    "    san: {dns: [\"*.example.com\", \"*.example.test\"]}\n"
    "    san_required: true\n"
    "acme:\n"
    "  url: %s/acme\n"
    "  profiles: [web]\n"
    "  terms_of_service: https://ca.example.com/terms\n"
    "  nonce_store_size: 1024\n"
    "  validator: %s\n"
    "  validation_timeout_ms: 15000\n"
    "  orders_per_hour: 12\n"
    "  pending_authorizations: 20\n"
    "%s";

/* The alternate chain of the web CA: its key and name certified by another root. */
static const char alt_chain_fmt[] = "  alternate_chains: [{authority: web, chain: %s/cross.pem}]\n";

/* Write file (cad.yaml) for cad at port (base_url), with the alternate chain or without. */
static void write_cad_config(const char *file, int port, int with_alt)
{
	char conf[8192], alt[400] = "";

	if (with_alt)
		snprintf(alt, sizeof(alt), alt_chain_fmt, dir);
	snprintf(conf, sizeof(conf), config_fmt, port, dir, dir, dir, cad_ci, dir, base_url, vsock,
	         alt);
	harness_write_text(in_dir(file), conf);
}

/* The validator: names under example.com are 127.0.0.1 (its hosts: mapping), loopback only. */
static void validator_start(void)
{
	char text[2048], conf[300];
	struct stat st;

	snprintf(vdir, sizeof(vdir), "/tmp/hsmca-acmecad.XXXXXX");
	if (!mkdtemp(vdir))
		harness_die("mkdtemp");
	chmod(vdir, 0755);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("nobody");
		if (!pw || chown(vdir, pw->pw_uid, pw->pw_gid))
			harness_die("chown to nobody");
	}
	snprintf(vsock, sizeof(vsock), "%s/acmeval.sock", vdir);
	snprintf(dnsdir, sizeof(dnsdir), "%s/dns", vdir);
	{
		char cmd[400], out[300];
		snprintf(cmd, sizeof(cmd), "%s/tests/dns/start.sh", getenv("HSMCA_SRC"));
		snprintf(out, sizeof(out), "%s/dns-start.out", vdir);
		char *const argv[] = {cmd, dnsdir, NULL};
		if (harness_run(argv, out) != 0) {
			fputs(harness_slurp(out), stderr);
			harness_die("tests/dns/start.sh");
		}
		dns_port = atoi(harness_slurp(harness_pathf(dnsdir, "port")));
	}
	http01_port = harness_free_port();
	alpn_port = harness_free_port();
	snprintf(text, sizeof(text),
	         "listen: {path: %s, mode: \"0660\"}\n"
	         "allow: [127.0.0.1/32]\n"
	         "hosts:\n"
	         "  - {name: \"*.example.com\", address: 127.0.0.1}\n"
	         "ports: {http: %d, https: 443, tls_alpn: %d}\n"
	         "timeouts: {connect_ms: 2000, read_ms: 2000, total_ms: 8000}\n"
	         "resolver: 127.0.0.1:%d\n"
	         "%s",
	         vsock, http01_port, alpn_port, dns_port, geteuid() == 0 ? "user: nobody\n" : "");
	snprintf(conf, sizeof(conf), "%s/acmevald.yaml", vdir);
	harness_write_text(conf, text);
	val_pid =
	    harness_spawn_daemon("acmeval/hsmca-acmevald", conf, NULL, in_dir("acmevald.log"));
	for (int i = 0; i < 200; i++) {
		if (stat(vsock, &st) == 0 && S_ISSOCK(st.st_mode))
			return;
		usleep(50000);
	}
	fprintf(stderr, "test_acme_cad: hsmca-acmevald did not start: %s\n",
	        harness_slurp(in_dir("acmevald.log")));
	harness_die(__func__);
}

static char cad_log[32]; /* the running cad's log, in the test's folder */

/* hsmca-cad with configuration file (in the test's folder), its log beside it, at base_url. */
static void cad_start_with(const char *file, const char *log)
{
	snprintf(cad_log, sizeof(cad_log), "%s", log);
	cad_pid = harness_cad_start(&site, in_dir(file), in_dir(log), NULL);
}

static void cad_start(void)
{
	cad_start_with("cad.yaml", "cad.log");
}

/* Its exit is checked (status 0, no sanitizer report): harness_bad_exits fails the suite. */
static void cad_stop(void)
{
	harness_cad_stop(&cad_pid, in_dir(cad_log), 0);
}

/* hsmca-ocspd over the same database, connecting as its own role (as in the quickstart). */
static void ocspd_start(void)
{
	char text[1024], url[128];
	int port = harness_free_port();

	snprintf(ocsp_url, sizeof(ocsp_url), "http://127.0.0.1:%d", port);
	snprintf(text, sizeof(text),
	         "listen: {address: 127.0.0.1, port: %d}\n"
	         "workers: 1\n"
	         "signers: 1\n"
	         "database: \"%s connect_timeout=3\"\n",
	         port, ocspd_ci);
	harness_write_text(in_dir("ocspd.yaml"), text);
	ocspd_pid = harness_spawn_daemon("ocsp/hsmca-ocspd", in_dir("ocspd.yaml"), NULL,
	                                 in_dir("ocspd.log"));
	snprintf(url, sizeof(url), "%s/health", ocsp_url);
	for (int i = 0; i < 200; i++) {
		struct reply r = http(NULL, "GET", url, NULL, NULL);
		int ok = r.status == 200 && r.body && strstr(r.body, "\"ok\"");
		reply_clear(&r);
		if (ok)
			return;
		usleep(50000);
	}
	fprintf(stderr, "test_acme_cad: hsmca-ocspd did not become healthy: %s\n",
	        harness_slurp(in_dir("ocspd.log")));
	harness_die(__func__);
}

static void setup(void)
{
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err kerr;
	struct db *db;
	static const char *const roles[] = {"officer", "auditor"};
	EVP_PKEY *ck;
	X509 *x;
	int port;

	harness_setup_phase = 1;
	signal(SIGPIPE,
	       SIG_IGN); /* the tls-alpn-01 responder's peer closes when it has seen enough */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (harness_start(&h, NULL) != 0)
		harness_die(__func__);
	snprintf(dir, sizeof(dir), "%s", h.dir);
	c = keyd_client_new(NULL, 0);
	if (!c || keyd_client_generate(c, "web-p256", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr))
		harness_die(__func__);
	keyd_client_free(c);
	harness_load_providers(&prov_keyd, &prov_default);
	ck = harness_keyd_key("web-p256");
	x = make_cert("hsmca test web CA", ck, NULL, ck, 1, NULL, 1);
	harness_write_cert(in_dir("webca.pem"), x, 0);
	X509_free(x);
	/* Another root, and the web CA (same name, same key) cross-certified by it: the
	 * alternate chain at download (cross.pem: the cross-certificate, then that root). */
	{
		EVP_PKEY *rk = EVP_EC_gen("P-256");
		X509 *root = make_cert("hsmca test other root", rk, NULL, rk, 1, NULL, 7);
		X509 *cross = make_cert("hsmca test web CA", ck, root, rk, 1, NULL, 8);
		harness_write_cert(in_dir("otherroot.pem"), root, 0);
		harness_write_cert(in_dir("cross.pem"), cross, 0);
		harness_write_cert(in_dir("cross.pem"), root, 1);
		X509_free(cross);
		X509_free(root);
		EVP_PKEY_free(rk);
	}
	EVP_PKEY_free(ck);
	opca = harness_opca(dir, "hsmca test operator CA", &opca_key);
	for (size_t i = 0; i < 2; i++)
		client_cert(roles[i], 5000 + (long)i);

	db = harness_pg_migrated(&pg, "acme");
	for (size_t i = 0; i < 2; i++)
		harness_db_principal(db, dir, roles[i], roles[i], NULL);
	snprintf(ocspd_ci, sizeof(ocspd_ci), "%s",
	         harness_pg_daemon_ci(&pg, db_pgconn(db), "ocspd"));
	snprintf(cad_ci, sizeof(cad_ci), "%s", harness_pg_daemon_ci(&pg, db_pgconn(db), "cad"));
	db_close(db);

	port = harness_free_port();
	snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port);
	snprintf(acme_url, sizeof(acme_url), "%s/acme", base_url);
	validator_start();
	write_cad_config("cad.yaml", port, 1);
	cad_start();
	ocspd_start(); /* after cad, which records its authorities */
	harness_setup_phase = 0;
}

static void teardown(void)
{
	char cmd[300];

	cad_stop();
	harness_daemon_stop(&ocspd_pid, "hsmca-ocspd", in_dir("ocspd.log"), 0);
	if (val_pid > 0) {
		kill(val_pid, SIGTERM);
		waitpid(val_pid, NULL, 0);
	}
	if (dnsdir[0]) {
		snprintf(cmd, sizeof(cmd), "%s/tests/dns/stop.sh", getenv("HSMCA_SRC"));
		char *const argv[] = {cmd, dnsdir, NULL};
		harness_run(argv, NULL);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", vdir);
	if (vdir[0] && system(cmd) != 0)
		fprintf(stderr, "test_acme_cad: %s failed\n", cmd);
	harness_suite_end(&h, &pg, opca, opca_key, prov_keyd, prov_default);
}

/* ================= the tests ================= */

START_TEST(directory_and_nonces_without_a_client_certificate)
{
	char url[256];
	struct reply r;
	json_t *d;

	snprintf(url, sizeof(url), "%s/directory", acme_url);
	r = http(NULL, "GET", url, NULL, NULL);
	ck_assert_int_eq(r.status, 200);
	d = json_loads(r.body, 0, NULL);
	snprintf(url, sizeof(url), "%s/new-account", acme_url);
	ck_assert_str_eq(json_string_value(json_object_get(d, "newAccount")), url);
	ck_assert(
	    json_is_true(json_object_get(json_object_get(d, "meta"), "externalAccountRequired")));
	json_decref(d);
	ck_assert_int_eq(links_of(&r, "index"), 0); /* the directory is the index */
	reply_clear(&r);
	snprintf(url, sizeof(url), "%s/new-nonce", acme_url);
	r = http(NULL, "GET", url, NULL, NULL);
	ck_assert_int_eq(r.status, 204);
	ck_assert_int_gt(strlen(r.nonce), 0);
	snprintf(url, sizeof(url), "%s/directory", acme_url);
	ck_assert(has_link(&r, url, "index")); /* RFC 8555 §7.1, on every other resource */
	reply_clear(&r);
	get_nonce();
}
END_TEST

START_TEST(eab_credentials_are_made_by_officers_only)
{
	char url[256], out[1024];
	struct reply r;
	const char *kid, *key;

	snprintf(url, sizeof(url), "%s/api/v1/acme/eab", base_url);
	r = http("auditor", "POST", url, "{\"profiles\":[\"web\"]}", "application/json");
	ck_assert_int_eq(r.status, 403);
	reply_clear(&r);
	r = http(NULL, "POST", url, "{\"profiles\":[\"web\"]}", "application/json");
	ck_assert_int_eq(r.status, 401);
	reply_clear(&r);
	r = http("officer", "POST", url, "{\"profiles\":[\"nope\"]}", "application/json");
	ck_assert_int_eq(r.status, 400);
	reply_clear(&r);
	/* "allow" is a list of strings (cad_body_string_list, shared with EST's allowlist). */
	{
		const char *bad[][2] = {
		    {"{\"profiles\":[\"web\"],\"allow\":\"*.example.com\"}",
		     "\"allow\" must be a list of at most 1000 identifier patterns"},
		    {"{\"profiles\":[\"web\"],\"allow\":[\"a.example.com\",7]}",
		     "\"allow\" entries must be strings"}};
		for (size_t i = 0; i < 2; i++) {
			r = http("officer", "POST", url, bad[i][0], "application/json");
			json_t *o = r.body ? json_loads(r.body, 0, NULL) : NULL;
			ck_assert_int_eq(r.status, 400);
			ck_assert_msg(o && !strcmp(json_string_value(json_object_get(o, "detail")),
			                           bad[i][1]),
			              "%s", r.body);
			json_decref(o);
			reply_clear(&r);
		}
	}
	ck_assert_int_eq(count("SELECT count(*) FROM acme_eab_credentials"), 0);
	/* The command line prints kid= and hmac_key= once; the key is not in the audit log. */
	ck_assert_int_eq(
	    harness_cli(&site, "officer",
	                (const char *[]){"acme", "eab", "create", "--profile", "web", "--allow",
	                                 "*.corp.example.com", "--principal", "team-a", NULL},
	                in_dir("eab.out"), in_dir("eab.err")),
	    0);
	snprintf(out, sizeof(out), "%s", harness_slurp(in_dir("eab.out")));
	kid = strstr(out, "kid=");
	key = strstr(out, "hmac_key=");
	ck_assert_ptr_nonnull(kid);
	ck_assert_ptr_nonnull(key);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_eab_credentials WHERE principal ="
	                       " 'team-a' AND allow = '{*.corp.example.com}'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'acme.eab.create'"
	                       " AND outcome = 'success'"),
	                 1);
	char key_text[64], sql[256];
	snprintf(key_text, sizeof(key_text), "%.*s", (int)strcspn(key + 9, "\n"), key + 9);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit_log WHERE detail LIKE '%%%s%%'",
	         key_text);
	ck_assert_int_eq(count(sql), 0);
	/* And the credential registers an account bound to team-a. */
	char kid_text[64], acct[300];
	snprintf(kid_text, sizeof(kid_text), "%.*s", (int)strcspn(kid + 4, "\n"), kid + 4);
	struct eab e = eab_from(kid_text, key_text);
	struct tkey t = tkey_new("ES256");
	register_key(&t, &e, acct, sizeof(acct));
	ck_assert_int_eq(count("SELECT count(*) FROM acme_accounts WHERE principal = 'team-a'"), 1);
	tkey_free(&t);
}
END_TEST

/* RFC 8555 7.3.5 keyChange: account kid, signed by t, rolls over to n (whose JWS alg is alg);
 * the server's answer. */
static struct reply key_change(const struct tkey *t, const char *kid, const struct tkey *n,
                               const char *alg)
{
	char url[300];
	struct reply r;

	snprintf(url, sizeof(url), "%s/key-change", acme_url);
	json_t *ih = json_pack("{s:s, s:s, s:O}", "alg", alg, "url", url, "jwk", n->jwk);
	json_t *ip = json_pack("{s:s, s:O}", "account", kid, "oldKey", t->jwk);
	char *ips = json_dumps(ip, JSON_COMPACT), *inner = jws_with(n, ih, ips);
	r = post("/key-change", jws(t, kid, "/key-change", inner));
	free(inner);
	free(ips);
	json_decref(ip);
	return r;
}

START_TEST(register_update_rollover_and_deactivate)
{
	struct eab e = new_eab(""), e2 = new_eab(",\"principal\":\"team-b\"");
	struct tkey t = tkey_new("EdDSA"), n = tkey_new("RS256"), u = tkey_new("ES384");
	char kid[300], path[300], *pl;
	struct reply r;
	long long accounts = count("SELECT count(*) FROM acme_accounts");

	/* No binding, then a good one, then the same credential for another key. */
	pl = account_payload(&t, NULL);
	r = post("/new-account", jws(&t, NULL, "/new-account", pl));
	free(pl);
	ck_assert_int_eq(r.status, 400);
	ck_assert(problem(&r, "externalAccountRequired"));
	reply_clear(&r);
	register_key(&t, &e, kid, sizeof(kid));
	snprintf(path, sizeof(path), "%s", kid + strlen(acme_url));
	pl = account_payload(&u, &e);
	r = post("/new-account", jws(&u, NULL, "/new-account", pl));
	free(pl);
	ck_assert_int_eq(r.status, 401);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_accounts"), accounts + 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action ="
	                       " 'acme.account.create'"),
	                 accounts + 1);
	/* Contact update. */
	r = post(path, jws(&t, kid, path, "{\"contact\":[\"mailto:pki@corp.example.com\"]}"));
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_accounts WHERE contact ="
	                       " '[\"mailto:pki@corp.example.com\"]'"),
	                 1);
	/* Key rollover to an RSA key. */
	r = key_change(&t, kid, &n, "RS256");
	ck_assert_msg(r.status == 200, "keyChange: %ld %s", r.status, r.body);
	reply_clear(&r);
	r = post(path, jws(&t, kid, path, NULL));
	ck_assert_int_eq(r.status, 400);
	reply_clear(&r);
	r = post(path, jws(&n, kid, path, NULL));
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	/* Another account (team-b); then deactivation of the first. */
	char kid2[300];
	register_key(&u, &e2, kid2, sizeof(kid2));
	ck_assert_int_eq(count("SELECT count(*) FROM acme_accounts WHERE principal = 'team-b'"), 1);
	r = post(path, jws(&n, kid, path, "{\"status\":\"deactivated\"}"));
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	r = post(path, jws(&n, kid, path, NULL));
	ck_assert_int_eq(r.status, 401);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action IN"
	                       " ('acme.account.update', 'acme.account.key-change',"
	                       " 'acme.account.deactivate')"),
	                 3);
	tkey_free(&t);
	tkey_free(&n);
	tkey_free(&u);
}
END_TEST

START_TEST(bad_jws_is_refused_and_changes_nothing)
{
	struct eab e = new_eab("");
	struct tkey t = tkey_new("ES256"), o = tkey_new("ES256");
	char kid[300], path[300], url[300], *body, *big;
	struct reply r;
	json_t *hdr;
	long long audit;

	register_key(&t, &e, kid, sizeof(kid));
	snprintf(path, sizeof(path), "%s", kid + strlen(acme_url));
	snprintf(url, sizeof(url), "%s", kid);
	audit = count("SELECT count(*) FROM audit_log");
	long long accounts = count("SELECT count(*) FROM acme_accounts");
	/* A nonce never given; a nonce used twice. */
	hdr = json_pack("{s:s, s:s, s:s, s:s}", "alg", "ES256", "nonce",
	                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "url", url, "kid", kid);
	r = post(path, jws_with(&t, hdr, NULL));
	ck_assert_int_eq(r.status, 400);
	ck_assert(problem(&r, "badNonce"));
	reply_clear(&r);
	body = jws(&t, kid, path, NULL);
	r = post(path, strdup(body));
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	r = post(path, body);
	ck_assert_int_eq(r.status, 400);
	ck_assert(problem(&r, "badNonce"));
	reply_clear(&r);
	/* The url of another resource. */
	r = post(path, jws(&t, kid, "/key-change", NULL));
	ck_assert_int_eq(r.status, 401);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	/* An unknown kid. */
	char other[300];
	snprintf(other, sizeof(other), "%s/acct/999", acme_url);
	r = post("/acct/999", jws(&t, other, "/acct/999", NULL));
	ck_assert_int_eq(r.status, 400);
	ck_assert(problem(&r, "accountDoesNotExist"));
	reply_clear(&r);
	/* Another key with this kid. */
	r = post(path, jws(&o, kid, path, NULL));
	ck_assert_int_eq(r.status, 400);
	ck_assert(problem(&r, "malformed"));
	reply_clear(&r);
	/* alg none. */
	get_nonce();
	hdr = json_pack("{s:s, s:s, s:s, s:s}", "alg", "none", "nonce", nonce, "url", url, "kid",
	                kid);
	r = post(path, jws_with(&t, hdr, NULL));
	ck_assert_int_eq(r.status, 400);
	ck_assert(problem(&r, "badSignatureAlgorithm"));
	reply_clear(&r);
	/* Oversized: over the body bound, refused before anything is read. */
	big = malloc(70000);
	memset(big, 'a', 69999);
	big[69999] = '\0';
	char u2[300];
	snprintf(u2, sizeof(u2), "%s%s", acme_url, path);
	r = http(NULL, "POST", u2, big, NULL);
	ck_assert_int_eq(r.status, 413);
	reply_clear(&r);
	free(big);
	/* Wrong content type. */
	r = http(NULL, "POST", u2, "{}", "application/json");
	ck_assert_int_eq(r.status, 415);
	reply_clear(&r);
	/* EAB with a wrong key. */
	struct eab wrong = e;
	wrong.key[0] ^= 1;
	char *pl = account_payload(&o, &wrong);
	r = post("/new-account", jws(&o, NULL, "/new-account", pl));
	free(pl);
	ck_assert_int_eq(r.status, 401);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log"), audit);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_accounts"), accounts);
	tkey_free(&t);
	tkey_free(&o);
}
END_TEST

/* Officers revoke credentials; auditors may list them, without keys, but not revoke. */
START_TEST(revoked_eab_registers_nothing)
{
	struct eab e = new_eab(",\"principal\":\"revoked-team\"");
	struct tkey t = tkey_new("ES256");
	char url[300], *pl;
	struct reply r;

	snprintf(url, sizeof(url), "%s/api/v1/acme/eab/%s/revoke", base_url, e.kid);
	r = http("auditor", "POST", url, NULL, "application/json");
	ck_assert_int_eq(r.status, 403);
	reply_clear(&r);
	r = http("officer", "POST", url, NULL, "application/json");
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	r = http("officer", "POST", url, NULL, "application/json");
	ck_assert_int_eq(r.status, 409);
	reply_clear(&r);
	pl = account_payload(&t, &e);
	r = post("/new-account", jws(&t, NULL, "/new-account", pl));
	free(pl);
	ck_assert_int_eq(r.status, 401);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_accounts WHERE principal ="
	                       " 'revoked-team'"),
	                 0);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'acme.eab.revoke'"
	                       " AND outcome = 'success'"),
	                 1);
	/* The list (auditor, command line) names it revoked and shows no key. */
	ck_assert_int_eq(harness_cli(&site, "auditor",
	                             (const char *[]){"acme", "eab", "list", NULL},
	                             in_dir("eab-list.out"), in_dir("eab-list.err")),
	                 0);
	json_t *o = json_loads(harness_slurp(in_dir("eab-list.out")), 0, NULL), *c;
	size_t i;
	int seen = 0;
	ck_assert_ptr_nonnull(o);
	json_array_foreach(json_object_get(o, "credentials"), i, c)
	{
		ck_assert_ptr_null(json_object_get(c, "hmac_key"));
		if (!strcmp(json_string_value(json_object_get(c, "kid")), e.kid)) {
			seen = 1;
			ck_assert_ptr_nonnull(json_object_get(c, "revoked_at"));
		}
	}
	ck_assert(seen);
	json_decref(o);
	tkey_free(&t);
}
END_TEST

/* A certificate for www.example.com of t's key, issued by the officer through the API; its
 * PEM into pem (n bytes) and base64url DER returned (malloc). */
static char *issue_for(const struct tkey *t, char *pem, size_t n)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_REQ_get_subject_name(req);
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext =
	    X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:www.example.com");
	BIO *b = BIO_new(BIO_s_mem());
	char *csr, url[256], *body, *out;
	long len;
	struct reply r;
	json_t *o;

	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                           (const unsigned char *)"www.example.com", -1, -1, 0);
	sk_X509_EXTENSION_push(exts, ext);
	X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_set_pubkey(req, t->k);
	ck_assert(X509_REQ_sign(req, t->k, EVP_sha256()) > 0);
	PEM_write_bio_X509_REQ(b, req);
	len = BIO_get_mem_data(b, &csr);
	o = json_pack("{s:s, s:s%}", "profile", "web", "csr", csr, (size_t)len);
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	BIO_free(b);
	X509_REQ_free(req);
	snprintf(url, sizeof(url), "%s/api/v1/certificates", base_url);
	r = http("officer", "POST", url, body, "application/json");
	free(body);
	ck_assert_msg(r.status == 201 || r.status == 200, "issue: %ld %s", r.status, r.body);
	o = json_loads(r.body, 0, NULL);
	snprintf(pem, n, "%s", json_string_value(json_object_get(o, "certificate")));
	json_decref(o);
	reply_clear(&r);
	b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	uint8_t *der = NULL;
	int dlen = i2d_X509(x, &der);
	ck_assert_int_gt(dlen, 0);
	out = b64(der, (size_t)dlen);
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(b);
	return out;
}

static char *revoke_payload(const char *cert, int reason)
{
	json_t *o = json_pack("{s:s, s:i}", "certificate", cert, "reason", reason);
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return s;
}

/* RFC 9773's certificate identifier of pem, and the suggested window's end (seconds). */
static int64_t renewal_end(const char *pem, long *status)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	char *a = b64(ASN1_STRING_get0_data(aki), (size_t)ASN1_STRING_length(aki));
	char *sr = b64(ASN1_STRING_get0_data(sn), (size_t)ASN1_STRING_length(sn));
	char url[512];
	struct reply r;
	struct tm tm = {0};
	int64_t end = 0;
	json_t *o;

	snprintf(url, sizeof(url), "%s/renewal-info/%s.%s", acme_url, a, sr);
	r = http(NULL, "GET", url, NULL, NULL);
	*status = r.status;
	o = r.body ? json_loads(r.body, 0, NULL) : NULL;
	const char *e =
	    json_string_value(json_object_get(json_object_get(o, "suggestedWindow"), "end"));
	if (e && strptime(e, "%Y-%m-%dT%H:%M:%SZ", &tm))
		end = (int64_t)timegm(&tm);
	json_decref(o);
	reply_clear(&r);
	free(a);
	free(sr);
	X509_free(x);
	BIO_free(b);
	return end;
}

/* revokeCert with the certificate's own key; the account's key may not (it did not order
 * it); then OCSP's and CRL's source, the database, says revoked, keyCompromise. */
START_TEST(revoke_cert_with_its_own_key)
{
	struct eab e = new_eab("");
	struct tkey t = tkey_new("ES256"), c = tkey_new("ES256");
	char kid[300], pem[8192], *cert = issue_for(&c, pem, sizeof(pem)), *pl;
	struct reply r;
	long long audit;

	register_key(&t, &e, kid, sizeof(kid));
	/* Renewal information (RFC 9773) before: a window late in the certificate's life. */
	long st;
	int64_t end = renewal_end(pem, &st);
	ck_assert_int_eq(st, 200);
	ck_assert_int_gt(end, (int64_t)time(NULL) + 86400);
	audit = count("SELECT count(*) FROM audit_log");
	pl = revoke_payload(cert, 1);
	r = post("/revoke-cert", jws(&t, kid, "/revoke-cert", pl));
	ck_assert_int_eq(r.status, 403);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	/* A certificate this CA did not issue (same serial space, another issuer). */
	struct tkey other = tkey_new("ES256");
	X509 *self = make_cert("www.example.com", other.k, NULL, other.k, 0, NULL, 1);
	uint8_t *der = NULL;
	int dlen = i2d_X509(self, &der);
	char *sb = b64(der, (size_t)dlen), *spl = revoke_payload(sb, 1);
	r = post("/revoke-cert", jws(&other, NULL, "/revoke-cert", spl));
	ck_assert_int_eq(r.status, 404);
	ck_assert(problem(&r, "malformed"));
	reply_clear(&r);
	free(spl);
	free(sb);
	OPENSSL_free(der);
	X509_free(self);
	tkey_free(&other);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log"), audit);
	/* The certificate's key. */
	r = post("/revoke-cert", jws(&c, NULL, "/revoke-cert", pl));
	ck_assert_msg(r.status == 200, "revokeCert: %ld %s", r.status, r.body);
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE status = 'revoked' AND"
	                       " revocation_reason = 1"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action ="
	                       " 'acme.certificate.revoke' AND actor = 'acme-certificate-key'"),
	                 1);
	r = post("/revoke-cert", jws(&c, NULL, "/revoke-cert", pl));
	ck_assert_int_eq(r.status, 400);
	ck_assert(problem(&r, "alreadyRevoked"));
	reply_clear(&r);
	/* ... and after: renew at once (the window ended). */
	end = renewal_end(pem, &st);
	ck_assert_int_eq(st, 200);
	ck_assert_int_le(end, (int64_t)time(NULL));
	free(pl);
	free(cert);
	tkey_free(&t);
	tkey_free(&c);
}
END_TEST

/* An officer's renewal incident on the authority: its certificates issued until then get a
 * window that has ended; one issued afterwards does not. */
START_TEST(renewal_incident_moves_the_window)
{
	struct tkey c = tkey_new("ES256"), d = tkey_new("ES256");
	char pem[8192], pem2[8192], *cert = issue_for(&c, pem, sizeof(pem)), url[256];
	struct reply r;
	long st;

	ck_assert_int_gt(renewal_end(pem, &st), (int64_t)time(NULL) + 86400);
	snprintf(url, sizeof(url), "%s/api/v1/acme/incidents", base_url);
	r = http("auditor", "POST", url, "{\"authority\":\"web\",\"reason\":\"x\"}",
	         "application/json");
	ck_assert_int_eq(r.status, 403);
	reply_clear(&r);
	r = http("officer", "POST", url, "{\"authority\":\"nope\",\"reason\":\"x\"}",
	         "application/json");
	ck_assert_int_eq(r.status, 404);
	reply_clear(&r);
	ck_assert_int_eq(renewal_end(pem, &st) > (int64_t)time(NULL), 1);
	sleep(1);
	ck_assert_int_eq(
	    harness_cli(&site, "officer",
	                (const char *[]){"acme", "incident", "--authority", "web", "--reason",
	                                 "weak RNG on the build host", NULL},
	                in_dir("incident.out"), NULL),
	    0);
	ck_assert_int_le(renewal_end(pem, &st), (int64_t)time(NULL));
	ck_assert_int_eq(st, 200);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action ="
	                       " 'acme.incident.create' AND outcome = 'success'"),
	                 1);
	sleep(1);
	free(issue_for(&d, pem2, sizeof(pem2)));
	ck_assert_int_gt(renewal_end(pem2, &st), (int64_t)time(NULL) + 86400);
	free(cert);
	tkey_free(&c);
	tkey_free(&d);
}
END_TEST

/* certbot (Debian's) registers with an EAB credential, and shows the account it made. */
START_TEST(certbot_registers_with_eab)
{
	char url[256], cmd[4096], key[64];
	struct eab e = new_eab(",\"principal\":\"certbot-team\"");
	long long accounts = count("SELECT count(*) FROM acme_accounts");
	char *hk = b64(e.key, e.key_len);

	snprintf(key, sizeof(key), "%s", hk);
	free(hk);
	snprintf(url, sizeof(url), "%s/directory", acme_url);
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && REQUESTS_CA_BUNDLE='%s/opca.pem' certbot register --non-interactive "
	         "--server '%s' --agree-tos -m ops@corp.example.com --eab-kid='%s' "
	         "--eab-hmac-key='%s' --config-dir le/config --work-dir le/work --logs-dir le/logs "
	         "> certbot.log 2>&1",
	         dir, dir, url, e.kid, key);
	ck_assert_msg(system(cmd) == 0, "certbot register: %s",
	              harness_slurp(in_dir("certbot.log")));
	ck_assert_int_eq(count("SELECT count(*) FROM acme_accounts"), accounts + 1);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_accounts WHERE principal ="
	                       " 'certbot-team' AND contact = '[\"mailto:ops@corp.example.com\"]'"),
	                 1);
	/* The same credential a second time: refused by the server, no second account. */
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && REQUESTS_CA_BUNDLE='%s/opca.pem' certbot register --non-interactive "
	         "--server '%s' --agree-tos -m ops@corp.example.com --eab-kid='%s' "
	         "--eab-hmac-key='%s' --config-dir le2/config --work-dir le2/work "
	         "--logs-dir le2/logs > certbot2.log 2>&1",
	         dir, dir, url, e.kid, key);
	ck_assert_int_ne(system(cmd), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_accounts"), accounts + 1);
}
END_TEST

/* ---- orders ---- */

/* A PEM-less DER CSR of key k for names (e.g. "DNS:a,DNS:b"), with CN cn (NULL: none), as
 * base64url. */
static char *csr_b64(EVP_PKEY *k, const char *cn, const char *names)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	uint8_t *der = NULL;
	char *out;
	int len;

	if (cn)
		X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
		                           (const unsigned char *)cn, -1, -1, 0);
	sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, names));
	X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_set_pubkey(req, k);
	ck_assert(X509_REQ_sign(req, k, EVP_sha256()) > 0);
	len = i2d_X509_REQ(req, &der);
	ck_assert_int_gt(len, 0);
	out = b64(der, (size_t)len);
	OPENSSL_free(der);
	X509_REQ_free(req);
	return out;
}

/* newOrder for identifiers (a JSON array's text) by t/kid. */
static struct reply new_order(const struct tkey *t, const char *kid, const char *identifiers)
{
	char pl[1024];

	snprintf(pl, sizeof(pl), "{\"identifiers\":%s}", identifiers);
	return post("/new-order", jws(t, kid, "/new-order", pl));
}

/* POST-as-GET of an absolute URL of this server. */
static struct reply get_as(const struct tkey *t, const char *kid, const char *url)
{
	const char *path = url + strlen(acme_url);

	ck_assert(!strncmp(url, acme_url, strlen(acme_url)));
	return post(path, jws(t, kid, path, NULL));
}

/* finalize of the order at absolute URL order_url with a CSR of key k for names. */
static struct reply finalize_as(const struct tkey *t, const char *kid, const char *order_url,
                                EVP_PKEY *k, const char *names)
{
	char *csr = csr_b64(k, NULL, names), body[2048], fin[400];

	snprintf(body, sizeof(body), "{\"csr\":\"%s\"}", csr);
	free(csr);
	snprintf(fin, sizeof(fin), "%s/finalize", order_url + strlen(acme_url));
	return post(fin, jws(t, kid, fin, body));
}

/* A statement as the owner (the tests' stand-in for what a validation would do). */
static void owner_sql(const char *q)
{
	PGconn *c = owner();
	PGresult *res = PQexec(c, q);

	ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", q, PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
}

static const char *member(json_t *o, const char *name)
{
	return json_string_value(json_object_get(o, name));
}

/* Orders by this project's own client: what is refused, CSRs that do not match, expiry, the
 * certificate's download, rate limits. */
START_TEST(orders_are_judged_finalized_and_expire)
{
	struct eab e =
	    new_eab(",\"principal\":\"orders-team\","
	            "\"allow\":[\"www.example.com\",\"api.example.com\",\"*.a.example.com\"]");
	struct tkey t = tkey_new("ES256");
	EVP_PKEY *ck = EVP_EC_gen("P-256");
	char kid[300], order_url[300], fin[300], path[2048], *csr;
	long long challenges;
	struct reply r;
	json_t *o, *a;

	register_key(&t, &e, kid, sizeof(kid));
	/* The directory names newOrder now. */
	r = http(NULL, "GET", harness_pathf(acme_url, "directory"), NULL, NULL);
	o = json_loads(r.body, 0, NULL);
	ck_assert_ptr_nonnull(member(o, "newOrder"));
	json_decref(o);
	reply_clear(&r);

	/* Outside the credential's patterns (the profile would allow it): refused. */
	challenges = count("SELECT count(*) FROM acme_challenges");
	r = new_order(&t, kid, "[{\"type\":\"dns\",\"value\":\"mail.example.com\"}]");
	ck_assert_int_eq(r.status, 400);
	ck_assert(problem(&r, "rejectedIdentifier"));
	ck_assert_ptr_nonnull(strstr(r.body, "External Account Binding"));
	reply_clear(&r);
	/* A wildcard the profile does not allow (its pattern *.example.com is one label). */
	r = new_order(&t, kid, "[{\"type\":\"dns\",\"value\":\"*.a.example.com\"}]");
	ck_assert(problem(&r, "rejectedIdentifier"));
	ck_assert_ptr_nonnull(strstr(r.body, "wildcard"));
	reply_clear(&r);
	/* Other types, and names that are not host names. */
	r = new_order(&t, kid, "[{\"type\":\"email\",\"value\":\"a@example.com\"}]");
	ck_assert(problem(&r, "unsupportedIdentifier"));
	reply_clear(&r);
	r = new_order(&t, kid, "[{\"type\":\"dns\",\"value\":\"www..example.com\"}]");
	ck_assert(problem(&r, "rejectedIdentifier"));
	reply_clear(&r);
	r = new_order(&t, kid, "[{\"type\":\"dns\",\"value\":\"a.*.example.com\"}]");
	ck_assert(problem(&r, "rejectedIdentifier"));
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_orders"), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_challenges"), challenges);

	/* An order: one authorization with the three challenges, pending. */
	r = new_order(&t, kid, "[{\"type\":\"dns\",\"value\":\"WWW.example.com\"}]");
	ck_assert_msg(r.status == 201, "newOrder: %ld %s", r.status, r.body);
	snprintf(order_url, sizeof(order_url), "%s", r.location);
	o = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(member(o, "status"), "pending");
	snprintf(fin, sizeof(fin), "%s", member(o, "finalize"));
	ck_assert_int_eq(json_array_size(json_object_get(o, "authorizations")), 1);
	snprintf(path, sizeof(path), "%s",
	         json_string_value(json_array_get(json_object_get(o, "authorizations"), 0)));
	json_decref(o);
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action = 'acme.order.create'"
	                       " AND actor = 'orders-team'"),
	                 1);
	r = get_as(&t, kid, path);
	ck_assert_int_eq(r.status, 200);
	a = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(member(json_object_get(a, "identifier"), "value"), "www.example.com");
	ck_assert_int_eq(json_array_size(json_object_get(a, "challenges")), 3);
	json_decref(a);
	reply_clear(&r);
	/* Another account sees none of it. */
	{
		struct tkey t2 = tkey_new("ES256");
		struct eab e2 = new_eab("");
		char kid2[300];
		register_key(&t2, &e2, kid2, sizeof(kid2));
		r = get_as(&t2, kid2, order_url);
		ck_assert_int_eq(r.status, 404);
		reply_clear(&r);
		tkey_free(&t2);
	}

	/* Not ready: finalize is orderNotReady and changes nothing. */
	csr = csr_b64(ck, "www.example.com", "DNS:www.example.com");
	snprintf(path, sizeof(path), "{\"csr\":\"%s\"}", csr);
	r = post(fin + strlen(acme_url), jws(&t, kid, fin + strlen(acme_url), path));
	ck_assert_int_eq(r.status, 403);
	ck_assert(problem(&r, "orderNotReady"));
	reply_clear(&r);

	/* Its authorization valid (as a validation would make it; the certbot test validates
	 * for real): the order is ready. */
	owner_sql("UPDATE acme_authorizations SET status = 'valid'");
	owner_sql("UPDATE acme_orders SET status = 'ready'");
	/* CSRs that name more, fewer or other names, or another CN: badCSR, still ready. */
	{
		const char *bad[][2] = {
		    {"www.example.com", "DNS:www.example.com,DNS:api.example.com"},
		    {"api.example.com", "DNS:www.example.com"},
		    {NULL, "DNS:api.example.com"},
		    {NULL, "DNS:www.example.com,IP:127.0.0.1"}};
		for (size_t i = 0; i < 4; i++) {
			char *c = csr_b64(ck, bad[i][0], bad[i][1]), body[2048];
			snprintf(body, sizeof(body), "{\"csr\":\"%s\"}", c);
			free(c);
			r = post(fin + strlen(acme_url),
			         jws(&t, kid, fin + strlen(acme_url), body));
			ck_assert_int_eq(r.status, 400);
			ck_assert(problem(&r, "badCSR"));
			reply_clear(&r);
		}
		ck_assert_int_eq(count("SELECT count(*) FROM acme_orders WHERE status = 'ready'"),
		                 1);
		ck_assert_int_eq(
		    count("SELECT count(*) FROM certificates WHERE requester LIKE 'acme/%'"), 0);
	}
	/* The matching CSR: issued, the order valid, the chain downloadable. */
	r = post(fin + strlen(acme_url), jws(&t, kid, fin + strlen(acme_url), path));
	ck_assert_msg(r.status == 200, "finalize: %ld %s", r.status, r.body);
	o = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(member(o, "status"), "valid");
	snprintf(path, sizeof(path), "%s", member(o, "certificate"));
	json_decref(o);
	reply_clear(&r);
	ck_assert_int_eq(
	    count("SELECT count(*) FROM certificates WHERE requester LIKE 'acme/acct/%'"
	          " AND status = 'issued'"),
	    1);
	/* Issued under the profile's stored version 1 (migration 0015), recorded in its row. */
	ck_assert_int_eq(
	    count("SELECT count(*) FROM certificates WHERE requester LIKE 'acme/acct/%'"
	          " AND status = 'issued' AND profile_version = 1"),
	    1);
	r = get_as(&t, kid, path);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.content_type, "application/pem-certificate-chain");
	{
		BIO *b = BIO_new_mem_buf(r.body, -1);
		X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL),
		     *issuer = PEM_read_bio_X509(b, NULL, NULL, NULL);
		ck_assert_ptr_nonnull(leaf);
		ck_assert_ptr_nonnull(issuer);
		ck_assert_int_eq(X509_check_issued(issuer, leaf), X509_V_OK);
		X509_free(leaf);
		X509_free(issuer);
		BIO_free(b);
	}
	/* RFC 8555 §7.4.2: the other chain (through the cross-certified CA) is linked as
	 * alternate, §7.1: the directory as index. */
	{
		char alt[400], dirurl[300];
		snprintf(alt, sizeof(alt), "%s/1", path);
		snprintf(dirurl, sizeof(dirurl), "%s/directory", acme_url);
		ck_assert_msg(has_link(&r, alt, "alternate"), "no alternate link to %s", alt);
		ck_assert_int_eq(links_of(&r, "alternate"), 1);
		ck_assert(has_link(&r, dirurl, "index"));
		reply_clear(&r);
		r = get_as(&t, kid, alt);
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.content_type, "application/pem-certificate-chain");
		ck_assert(has_link(&r, path, "alternate"));
		ck_assert(has_link(&r, dirurl, "index"));
		/* leaf, cross-certificate, other root: verifies up to the other root alone. */
		BIO *b = BIO_new_mem_buf(r.body, -1);
		X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL), *y;
		STACK_OF(X509) *mid = sk_X509_new_null();
		X509_STORE *trust = X509_STORE_new();
		X509_STORE_CTX *vctx = X509_STORE_CTX_new();
		FILE *f = fopen(in_dir("otherroot.pem"), "r");
		X509 *root = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		while ((y = PEM_read_bio_X509(b, NULL, NULL, NULL)))
			sk_X509_push(mid, y);
		ck_assert_int_eq(sk_X509_num(mid), 2);
		ck_assert_int_eq(X509_cmp(sk_X509_value(mid, 1), root), 0);
		X509_STORE_add_cert(trust, root);
		X509_STORE_CTX_init(vctx, trust, leaf, mid);
		ck_assert_msg(X509_verify_cert(vctx) == 1, "alternate chain: %s",
		              X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
		X509_STORE_CTX_free(vctx);
		X509_STORE_free(trust);
		sk_X509_pop_free(mid, X509_free);
		X509_free(leaf);
		X509_free(root);
		BIO_free(b);
		reply_clear(&r);
		/* No second alternate. */
		snprintf(alt, sizeof(alt), "%s/2", path);
		r = get_as(&t, kid, alt);
		ck_assert_int_eq(r.status, 404);
		reply_clear(&r);
		/* With one chain only (no alternate configured): no Link alternate. A second
		 * hsmca-cad over the same database, at its own URL, stopped by this test
		 * (this test runs in a child process: the fixture's cad must stay as it is). */
		{
			pid_t first = cad_pid;
			char saved_base[128], saved_acme[160], kid2[300], path2[400];
			int port2 = harness_free_port();
			snprintf(saved_base, sizeof(saved_base), "%s", base_url);
			snprintf(saved_acme, sizeof(saved_acme), "%s", acme_url);
			snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port2);
			snprintf(acme_url, sizeof(acme_url), "%s/acme", base_url);
			write_cad_config("cad2.yaml", port2, 0);
			cad_start_with("cad2.yaml", "cad2.log");
			nonce[0] = '\0';
			snprintf(kid2, sizeof(kid2), "%s%s", acme_url, kid + strlen(saved_acme));
			snprintf(path2, sizeof(path2), "%s%s", acme_url, path + strlen(saved_acme));
			snprintf(dirurl, sizeof(dirurl), "%s/directory", acme_url);
			r = get_as(&t, kid2, path2);
			ck_assert_int_eq(r.status, 200);
			ck_assert_int_eq(links_of(&r, "alternate"), 0);
			ck_assert(has_link(&r, dirurl, "index"));
			reply_clear(&r);
			cad_stop();
			cad_pid = first;
			snprintf(base_url, sizeof(base_url), "%s", saved_base);
			snprintf(acme_url, sizeof(acme_url), "%s", saved_acme);
			nonce[0] = '\0';
		}
	}
	reply_clear(&r);
	free(csr);

	/* An order whose time is up reads invalid and cannot be finalized. */
	r = new_order(&t, kid, "[{\"type\":\"dns\",\"value\":\"api.example.com\"}]");
	ck_assert_int_eq(r.status, 201);
	snprintf(order_url, sizeof(order_url), "%s", r.location);
	reply_clear(&r);
	owner_sql("UPDATE acme_orders SET status = 'ready', expires_at = now() -"
	          " interval '1 second' WHERE status = 'pending'");
	r = get_as(&t, kid, order_url);
	o = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(member(o, "status"), "invalid");
	json_decref(o);
	reply_clear(&r);
	r = finalize_as(&t, kid, order_url, ck, "DNS:api.example.com");
	ck_assert(problem(&r, "orderNotReady"));
	reply_clear(&r);

	/* Refused by the CA core before a serial is reserved (the notAfter it asked for has
	 * passed since): badCSR with the reason, and the order was never processing: still
	 * ready, nothing reserved, no acme.order.finalize entry; the client may finalize again. */
	{
		long long certs = count("SELECT count(*) FROM certificates"),
		          moves = count("SELECT count(*) FROM audit_log WHERE"
		                        " action = 'acme.order.finalize'");
		r = new_order(&t, kid, "[{\"type\":\"dns\",\"value\":\"api.example.com\"}]");
		ck_assert_msg(r.status == 201, "%ld %s", r.status, r.body);
		snprintf(order_url, sizeof(order_url), "%s", r.location);
		reply_clear(&r);
		owner_sql("UPDATE acme_orders SET status = 'ready', not_after = now() -"
		          " interval '1 second' WHERE status = 'pending'");
		r = finalize_as(&t, kid, order_url, ck, "DNS:api.example.com");
		ck_assert(problem(&r, "badCSR"));
		ck_assert_ptr_nonnull(strstr(r.body, "notAfter"));
		reply_clear(&r);
		r = get_as(&t, kid, order_url);
		o = json_loads(r.body, 0, NULL);
		ck_assert_str_eq(member(o, "status"), "ready");
		json_decref(o);
		reply_clear(&r);
		ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs);
		ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE"
		                       " action = 'acme.order.finalize'"),
		                 moves);
		owner_sql("UPDATE acme_orders SET status = 'invalid' WHERE status = 'ready'");
	}

	/* The account's orders per hour (12 in this configuration): then rateLimited with
	 * Retry-After, and no order added. */
	for (int i = count("SELECT count(*) FROM acme_orders WHERE account_id = (SELECT id FROM"
	                   " acme_accounts WHERE principal = 'orders-team')");
	     i < 12; i++) {
		r = new_order(&t, kid, "[{\"type\":\"dns\",\"value\":\"api.example.com\"}]");
		ck_assert_int_eq(r.status, 201);
		reply_clear(&r);
	}
	r = new_order(&t, kid, "[{\"type\":\"dns\",\"value\":\"api.example.com\"}]");
	ck_assert_int_eq(r.status, 429);
	ck_assert(problem(&r, "rateLimited"));
	ck_assert_int_gt(r.retry_after, 0);
	reply_clear(&r);

	/* Pending authorizations (20 here): an order that would pass them is rateLimited. */
	{
		struct tkey t3 = tkey_new("ES256");
		struct eab e3 = new_eab("");
		char kid3[300], list[2048] = "[";
		long long orders = count("SELECT count(*) FROM acme_orders");
		register_key(&t3, &e3, kid3, sizeof(kid3));
		for (int i = 1; i <= 21; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list),
			         "%s{\"type\":\"dns\",\"value\":\"n%d.example.com\"}",
			         i > 1 ? "," : "", i);
		strcat(list, "]");
		r = new_order(&t3, kid3, list);
		ck_assert_int_eq(r.status, 429);
		ck_assert(problem(&r, "rateLimited"));
		ck_assert_int_gt(r.retry_after, 0);
		reply_clear(&r);
		ck_assert_int_eq(count("SELECT count(*) FROM acme_orders"), orders);
		*strstr(list, ",{\"type\":\"dns\",\"value\":\"n21.") = '\0';
		strcat(list, "]"); /* 20 of them */
		r = new_order(&t3, kid3, list);
		ck_assert_msg(r.status == 201, "20 identifiers: %ld %s", r.status, r.body);
		reply_clear(&r);
		tkey_free(&t3);
	}
	EVP_PKEY_free(ck);
	tkey_free(&t);
}
END_TEST

/* A newOrder's notBefore/notAfter (RFC 8555 §7.4): inside the profile's limits they are kept
 * with the order, shown in it and are the certificate's validity; outside them (or not RFC 3339
 * date-times) the order is malformed, naming the field, and nothing is recorded. */
START_TEST(order_validity_is_asked_and_judged)
{
	struct eab e = new_eab(",\"principal\":\"validity-team\",\"allow\":[\"*.example.com\"]");
	struct tkey t = tkey_new("ES256");
	EVP_PKEY *ck = EVP_EC_gen("P-256");
	char kid[300], fin[300], body[2048], cert_url[300], nb_s[32], na_s[32], *csr;
	time_t now = time(NULL), nb = now + 3600, na = nb + 10 * 86400;
	long long orders;
	struct reply r;
	json_t *o;

	register_key(&t, &e, kid, sizeof(kid));
	strftime(nb_s, sizeof(nb_s), "%Y-%m-%dT%H:%M:%SZ", gmtime(&nb));
	strftime(na_s, sizeof(na_s), "%Y-%m-%dT%H:%M:%SZ", gmtime(&na));
	snprintf(body, sizeof(body),
	         "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"when.example.com\"}],"
	         "\"notBefore\":\"%s\",\"notAfter\":\"%s\"}",
	         nb_s, na_s);
	r = post("/new-order", jws(&t, kid, "/new-order", body));
	ck_assert_msg(r.status == 201, "newOrder: %ld %s", r.status, r.body);
	o = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(member(o, "notBefore"), nb_s);
	ck_assert_str_eq(member(o, "notAfter"), na_s);
	snprintf(fin, sizeof(fin), "%s", member(o, "finalize") + strlen(acme_url));
	json_decref(o);
	reply_clear(&r);

	/* Refused, naming the field, recording nothing. */
	orders = count("SELECT count(*) FROM acme_orders");
	{
		time_t past = now - 3600, far = now + 91L * 86400;
		char past_s[32], far_s[32], bad[4][600];
		const char *field[4] = {"notBefore", "notAfter", "notAfter", "notBefore"};
		strftime(past_s, sizeof(past_s), "%Y-%m-%dT%H:%M:%SZ", gmtime(&past));
		strftime(far_s, sizeof(far_s), "%Y-%m-%dT%H:%M:%SZ", gmtime(&far));
		snprintf(bad[0], sizeof(bad[0]), "\"notBefore\":\"%s\"", past_s); /* backdated */
		snprintf(bad[1], sizeof(bad[1]), "\"notAfter\":\"%s\"", far_s);   /* > 90 days */
		snprintf(bad[2], sizeof(bad[2]), "\"notAfter\":\"tomorrow\"");
		snprintf(bad[3], sizeof(bad[3]), "\"notBefore\":\"%s\",\"notAfter\":\"%s\"", na_s,
		         nb_s); /* the wrong way round */
		for (int i = 0; i < 4; i++) {
			snprintf(body, sizeof(body),
			         "{\"identifiers\":[{\"type\":\"dns\",\"value\":"
			         "\"when.example.com\"}],%s}",
			         bad[i]);
			r = post("/new-order", jws(&t, kid, "/new-order", body));
			ck_assert_int_eq(r.status, 400);
			ck_assert(problem(&r, "malformed"));
			ck_assert_msg(strstr(r.body, field[i]), "%d: %s", i, r.body);
			reply_clear(&r);
		}
	}
	ck_assert_int_eq(count("SELECT count(*) FROM acme_orders"), orders);

	/* Validated (as the certbot test does for real) and finalized: the certificate spans
	 * exactly what was asked. */
	owner_sql("UPDATE acme_authorizations SET status = 'valid' WHERE account_id = (SELECT id"
	          " FROM acme_accounts WHERE principal = 'validity-team')");
	owner_sql("UPDATE acme_orders SET status = 'ready' WHERE account_id = (SELECT id FROM"
	          " acme_accounts WHERE principal = 'validity-team')");
	csr = csr_b64(ck, NULL, "DNS:when.example.com");
	snprintf(body, sizeof(body), "{\"csr\":\"%s\"}", csr);
	free(csr);
	r = post(fin, jws(&t, kid, fin, body));
	ck_assert_msg(r.status == 200, "finalize: %ld %s", r.status, r.body);
	o = json_loads(r.body, 0, NULL);
	snprintf(cert_url, sizeof(cert_url), "%s", member(o, "certificate"));
	json_decref(o);
	reply_clear(&r);
	r = get_as(&t, kid, cert_url);
	ck_assert_int_eq(r.status, 200);
	{
		BIO *b = BIO_new_mem_buf(r.body, -1);
		X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
		ASN1_TIME *want_nb = ASN1_TIME_set(NULL, nb), *want_na = ASN1_TIME_set(NULL, na);
		ck_assert_ptr_nonnull(leaf);
		ck_assert_int_eq(ASN1_TIME_compare(X509_get0_notBefore(leaf), want_nb), 0);
		ck_assert_int_eq(ASN1_TIME_compare(X509_get0_notAfter(leaf), want_na), 0);
		ASN1_TIME_free(want_nb);
		ASN1_TIME_free(want_na);
		X509_free(leaf);
		BIO_free(b);
	}
	reply_clear(&r);
	EVP_PKEY_free(ck);
	tkey_free(&t);
}
END_TEST

/* Rate limits under concurrency: PARALLEL newOrders of one account sent at once (each with
 * its own nonce, signed beforehand) pass the hourly limit (12 here) exactly 12 times, and
 * the pending authorizations limit (20 here) exactly as often as it allows. */
#define PARALLEL 24

struct shot {
	char *body;
	const char *path;
	struct reply r;
};

static void *fire(void *arg)
{
	struct shot *s = arg;
	char url[300];

	snprintf(url, sizeof(url), "%s%s", acme_url, s->path);
	s->r = http(NULL, "POST", url, s->body, NULL);
	return NULL;
}

/* PARALLEL newOrders by t/kid, each payload from payload(i), sent at once: how many got 201 and
 * 429 (rateLimited). */
static void parallel_orders(const struct tkey *t, const char *kid, void (*payload)(int, char *),
                            int *created, int *limited)
{
	struct shot shots[PARALLEL];
	pthread_t th[PARALLEL];
	char pl[1024];

	*created = *limited = 0;
	for (int i = 0; i < PARALLEL; i++) {
		payload(i, pl);
		shots[i].path = "/new-order";
		shots[i].body = jws(t, kid, "/new-order", pl); /* a fresh nonce each */
		memset(&shots[i].r, 0, sizeof(shots[i].r));
		nonce[0] = '\0';
	}
	for (int i = 0; i < PARALLEL; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, fire, &shots[i]), 0);
	for (int i = 0; i < PARALLEL; i++) {
		pthread_join(th[i], NULL);
		*created += shots[i].r.status == 201;
		if (shots[i].r.status == 429) {
			ck_assert(problem(&shots[i].r, "rateLimited"));
			(*limited)++;
		}
		free(shots[i].body);
		reply_clear(&shots[i].r);
	}
}

static void one_name(int i, char *pl)
{
	snprintf(pl, 1024, "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"p%d.example.com\"}]}",
	         i);
}

static void three_names(int i, char *pl)
{
	snprintf(pl, 1024,
	         "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"q%d.example.com\"},"
	         "{\"type\":\"dns\",\"value\":\"r%d.example.com\"},"
	         "{\"type\":\"dns\",\"value\":\"s%d.example.com\"}]}",
	         i, i, i);
}

START_TEST(rate_limits_hold_under_concurrency)
{
	struct tkey t = tkey_new("ES256"), t2 = tkey_new("ES256");
	struct eab e = new_eab(",\"principal\":\"parallel-orders\",\"allow\":[\"*.example.com\"]");
	struct eab e2 = new_eab(",\"principal\":\"parallel-authz\",\"allow\":[\"*.example.com\"]");
	char kid[300], kid2[300];
	int created, limited;

	register_key(&t, &e, kid, sizeof(kid));
	register_key(&t2, &e2, kid2, sizeof(kid2));
	/* 24 orders of one name each at once: the hourly limit of 12 lets exactly 12 through
	 * (and its 12 pending authorizations stay under the 20 allowed). */
	parallel_orders(&t, kid, one_name, &created, &limited);
	ck_assert_int_eq(created, 12);
	ck_assert_int_eq(limited, PARALLEL - 12);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_orders WHERE account_id = (SELECT id"
	                       " FROM acme_accounts WHERE principal = 'parallel-orders')"),
	                 12);
	/* 24 orders of three new names each: 20 pending authorizations allow 6 orders (18). */
	parallel_orders(&t2, kid2, three_names, &created, &limited);
	ck_assert_int_eq(created, 6);
	ck_assert_int_eq(limited, PARALLEL - 6);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_authorizations WHERE status = 'pending'"
	                       " AND account_id = (SELECT id FROM acme_accounts WHERE principal ="
	                       " 'parallel-authz')"),
	                 18);
	tkey_free(&t);
	tkey_free(&t2);
}
END_TEST

/* Run an ACME client's command line in the test's folder, its output into NAME.log; on failure
 * print that log, the end of extra_log (a file below the folder; NULL: none) and the logs of
 * hsmca-acmevald and hsmca-cad. 0, or -1. */
static int run_client(const char *name, const char *cmdline, const char *extra_log)
{
	char cmd[4600], log[64];

	snprintf(log, sizeof(log), "%s.log", name);
	snprintf(cmd, sizeof(cmd), "cd '%s' && %s > %s 2>&1", dir, cmdline, log);
	if (system(cmd) == 0)
		return 0;
	fprintf(stderr, "%s failed:\n%s\n", name, harness_slurp(in_dir(log)));
	if (extra_log) {
		snprintf(cmd, sizeof(cmd), "tail -n 40 '%s/%s' >&2", dir, extra_log);
		if (system(cmd) != 0)
			fprintf(stderr, "(no %s)\n", extra_log);
	}
	fprintf(stderr, "hsmca-acmevald:\n%s\n", harness_slurp(in_dir("acmevald.log")));
	fprintf(stderr, "hsmca-cad:\n%s\n", harness_slurp(in_dir("cad.log")));
	return -1;
}

static int run_certbot(const char *what, const char *le, const char *args)
{
	char cmd[4096], name[64], extra[128];

	snprintf(name, sizeof(name), "certbot-%s", what);
	snprintf(extra, sizeof(extra), "%s/logs/letsencrypt.log", le);
	snprintf(cmd, sizeof(cmd),
	         "REQUESTS_CA_BUNDLE='%s/opca.pem' certbot %s --non-interactive "
	         "--config-dir %s/config --work-dir %s/work --logs-dir %s/logs",
	         dir, args, le, le, le);
	return run_client(name, cmd, extra);
}

static void openssl_verify(const char *cert)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
	         "openssl verify -CAfile '%s/webca.pem' -purpose sslserver '%s/%s' > /dev/null",
	         dir, dir, cert);
	ck_assert_msg(system(cmd) == 0, "openssl verify %s", cert);
}

/* The status of the certificate in file (below the test's folder) as the API shows it to an
 * auditor; its requester must be an ACME account. */
static void api_status(const char *file, char *status, size_t n)
{
	FILE *f = fopen(harness_pathf(dir, "%s", file), "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	BIGNUM *bn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
	char *hex = bn ? BN_bn2hex(bn) : NULL, url[300];
	struct reply r;
	json_t *o;

	ck_assert_ptr_nonnull(hex);
	snprintf(url, sizeof(url), "%s/api/v1/certificates/%s", base_url, hex);
	r = http("auditor", "GET", url, NULL, NULL);
	ck_assert_msg(r.status == 200, "%s: %ld %s", url, r.status, r.body ? r.body : "");
	o = json_loads(r.body, 0, NULL);
	ck_assert(!strncmp(member(o, "requester"), "acme/acct/", 10));
	snprintf(status, n, "%s", member(o, "status"));
	json_decref(o);
	reply_clear(&r);
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	if (f)
		fclose(f);
}

/* The status hsmca-ocspd gives the certificate in file (below the test's folder), asked by
 * `openssl ocsp` and its answer verified against the authority: "good", "revoked", or what
 * openssl printed. Waits (up to 10 s) for want: a revocation reaches ocspd by NOTIFY. */
static void ocsp_status(const char *file, const char *want, char *status, size_t n)
{
	char cmd[1024], line[256], needle[300];

	snprintf(needle, sizeof(needle), "%s: ", file);
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && openssl ocsp -issuer webca.pem -CAfile webca.pem -cert '%s' -url '%s'"
	         " -no_nonce > ocsp.out 2>&1",
	         dir, file, ocsp_url);
	for (int i = 0; i < 50; i++) {
		FILE *f;
		status[0] = '\0';
		if (system(cmd) == 0 && (f = fopen(in_dir("ocsp.out"), "r"))) {
			while (fgets(line, sizeof(line), f))
				if (!strncmp(line, needle, strlen(needle))) {
					line[strcspn(line, "\r\n")] = '\0';
					snprintf(status, n, "%s", line + strlen(needle));
				}
			fclose(f);
		}
		if (!strcmp(status, want))
			return;
		usleep(200000);
	}
	if (!status[0])
		snprintf(status, n, "%s", harness_slurp(in_dir("ocsp.out")));
}

/* certbot: certonly --standalone with http-01 checked by hsmca-acmevald, renew (the valid
 * authorization reused: no new challenge), revoke with the account's key. */
START_TEST(certbot_http01_issue_renew_revoke)
{
	char args[2048], url[256], key[64], status[300];
	struct eab e = new_eab(",\"principal\":\"certbot-http\",\"allow\":[\"*.example.com\"]");
	char *hk = b64(e.key, e.key_len);
	long long certs = count("SELECT count(*) FROM certificates"), challenges;

	snprintf(key, sizeof(key), "%s", hk);
	free(hk);
	snprintf(url, sizeof(url), "%s/directory", acme_url);
	snprintf(args, sizeof(args),
	         "certonly --standalone --preferred-challenges http --http-01-port %d "
	         "--http-01-address 127.0.0.1 -d web1.example.com --key-type ecdsa "
	         "--elliptic-curve secp256r1 --server '%s' --agree-tos -m ops@corp.example.com "
	         "--eab-kid='%s' --eab-hmac-key='%s'",
	         http01_port, url, e.kid, key);
	ck_assert(run_certbot("certonly", "le-o", args) == 0);
	openssl_verify("le-o/config/live/web1.example.com/cert.pem");
	api_status("le-o/config/live/web1.example.com/cert.pem", status, sizeof(status));
	ck_assert_str_eq(status, "issued");
	ocsp_status("le-o/config/live/web1.example.com/cert.pem", "good", status, sizeof(status));
	ck_assert_str_eq(status, "good");
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs + 1);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_challenges WHERE status = 'valid'"
	                       " AND type = 'http-01'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action ="
	                       " 'acme.challenge.valid' AND actor = 'certbot-http'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_orders WHERE status = 'valid' AND"
	                       " account_id = (SELECT id FROM acme_accounts WHERE principal ="
	                       " 'certbot-http')"),
	                 1);

	challenges = count("SELECT count(*) FROM acme_challenges");
	ck_assert(
	    run_certbot("renew", "le-o", "renew --force-renewal --no-random-sleep-on-renew") == 0);
	openssl_verify("le-o/config/live/web1.example.com/cert.pem");
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs + 2);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_challenges"), challenges);
	ocsp_status("le-o/config/live/web1.example.com/cert.pem", "good", status, sizeof(status));
	ck_assert_str_eq(status, "good");

	snprintf(args, sizeof(args),
	         "revoke --cert-path le-o/config/live/web1.example.com/cert.pem --reason "
	         "keycompromise --no-delete-after-revoke --server '%s'",
	         url);
	ck_assert(run_certbot("revoke", "le-o", args) == 0);
	api_status("le-o/config/live/web1.example.com/cert.pem", status, sizeof(status));
	ck_assert_str_eq(status, "revoked");
	ocsp_status("le-o/config/live/web1.example.com/cert.pem", "revoked", status,
	            sizeof(status));
	ck_assert_str_eq(status, "revoked");
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE status = 'revoked' AND"
	                       " revocation_reason = 1 AND requester LIKE 'acme/acct/%'"),
	                 1);
}
END_TEST

/* certbot with dns-01 through its RFC 2136 plugin (TSIG-signed TXT records in Knot DNS, read
 * by hsmca-acmevald through its resolver), for a name and the wildcard of its zone: a
 * wildcard's authorization offers dns-01 alone. */
START_TEST(certbot_dns01_with_a_wildcard)
{
	char args[2048], url[256], key[64], status[300];
	struct eab e = new_eab(",\"principal\":\"certbot-dns\",\"allow\":[\"*.example.test\"]");
	char *hk = b64(e.key, e.key_len);

	snprintf(key, sizeof(key), "%s", hk);
	free(hk);
	snprintf(url, sizeof(url), "%s/directory", acme_url);
	snprintf(args, sizeof(args),
	         "certonly --dns-rfc2136 --dns-rfc2136-credentials '%s/rfc2136.ini' "
	         "--dns-rfc2136-propagation-seconds 1 -d dns1.example.test -d '*.example.test' "
	         "--cert-name dns1 --key-type ecdsa --elliptic-curve secp256r1 --server '%s' "
	         "--agree-tos -m ops@corp.example.com --eab-kid='%s' --eab-hmac-key='%s'",
	         dnsdir, url, e.kid, key);
	ck_assert(run_certbot("dns01", "le-d", args) == 0);
	openssl_verify("le-d/config/live/dns1/cert.pem");
	ocsp_status("le-d/config/live/dns1/cert.pem", "good", status, sizeof(status));
	ck_assert_str_eq(status, "good");
	ck_assert_int_eq(count("SELECT count(*) FROM acme_challenges c JOIN acme_authorizations a"
	                       " ON a.id = c.authz_id WHERE a.wildcard AND a.identifier ="
	                       " 'example.test'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_challenges c JOIN acme_authorizations a"
	                       " ON a.id = c.authz_id WHERE a.identifier LIKE '%example.test'"
	                       " AND c.type = 'dns-01' AND c.status = 'valid'"),
	                 2);
}
END_TEST

/* ---- tls-alpn-01 (RFC 8737) answered by this test ---- */

static char alpn_ka[300], alpn_name[256];
static _Atomic int alpn_wrong, alpn_stop;
static EVP_PKEY *alpn_key;

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl, (void)arg;
	if (inlen == 11 && !memcmp(in,
	                           "\x0a"
	                           "acme-tls/1",
	                           11)) {
		*out = in + 1;
		*outlen = 10;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* The self-signed certificate of RFC 8737 §3: the name, and the acmeIdentifier extension
 * (critical) holding SHA-256 of the key authorization (one bit off when alpn_wrong). */
static X509 *alpn_cert(void)
{
	X509 *x = X509_new();
	unsigned char d[32], der[40], *q = der;
	ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *outer = ASN1_OCTET_STRING_new();
	ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
	X509_EXTENSION *ext;
	char san[300];
	int len;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, alpn_key);
	snprintf(san, sizeof(san), "DNS:%s", alpn_name);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	SHA256((const unsigned char *)alpn_ka, strlen(alpn_ka), d);
	if (atomic_load(&alpn_wrong))
		d[0] ^= 1;
	ASN1_OCTET_STRING_set(inner, d, 32);
	len = i2d_ASN1_OCTET_STRING(inner, &q);
	ASN1_OCTET_STRING_set(outer, der, len);
	ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, outer);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, alpn_key, EVP_sha256());
	ASN1_OCTET_STRING_free(inner);
	ASN1_OCTET_STRING_free(outer);
	ASN1_OBJECT_free(oid);
	return x;
}

static void *alpn_thread(void *arg)
{
	int lfd = *(int *)arg;

	while (!atomic_load(&alpn_stop)) {
		struct pollfd pf = {.fd = lfd, .events = POLLIN};
		struct timeval tv = {2, 0};
		SSL_CTX *ctx;
		SSL *ssl;
		X509 *x;
		int fd;

		if (poll(&pf, 1, 100) != 1 || (fd = accept(lfd, NULL, NULL)) < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		x = alpn_cert();
		ctx = SSL_CTX_new(TLS_server_method());
		SSL_CTX_use_certificate(ctx, x);
		SSL_CTX_use_PrivateKey(ctx, alpn_key);
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) == 1) {
			char b[16];
			(void)SSL_read(ssl, b, sizeof(b)); /* until the validator closes */
		}
		SSL_free(ssl);
		SSL_CTX_free(ctx);
		X509_free(x);
		close(fd);
	}
	return NULL;
}

/* A new order for the one name NAME by t/kid, and its authorization's challenge of TYPE:
 * fills authz and chall (their URLs) and ka (token.thumbprint); order_url and finalize (its
 * path under acme_url) too when not NULL. Every buffer holds ACME_URL_BUF bytes. */
#define ACME_URL_BUF 300
static void order_challenge(const struct tkey *t, const char *kid, const char *name,
                            const char *type, char *authz, char *chall, char *ka, char *order_url,
                            char *finalize)
{
	char ids[300], thumb[ACME_THUMBPRINT_LEN + 1];
	struct acme_problem p;
	EVP_PKEY *k = NULL;
	struct reply r;
	json_t *o, *c;
	size_t i;

	ck_assert_int_eq(acme_jwk_key(t->jwk, &k, thumb, &p), 0);
	EVP_PKEY_free(k);
	snprintf(ids, sizeof(ids), "[{\"type\":\"dns\",\"value\":\"%s\"}]", name);
	r = new_order(t, kid, ids);
	ck_assert_msg(r.status == 201, "newOrder: %ld %s", r.status, r.body);
	if (order_url)
		snprintf(order_url, ACME_URL_BUF, "%s", r.location);
	o = json_loads(r.body, 0, NULL);
	snprintf(authz, ACME_URL_BUF, "%s",
	         json_string_value(json_array_get(json_object_get(o, "authorizations"), 0)));
	if (finalize)
		snprintf(finalize, ACME_URL_BUF, "%s", member(o, "finalize") + strlen(acme_url));
	json_decref(o);
	reply_clear(&r);
	r = get_as(t, kid, authz);
	ck_assert_msg(r.status == 200, "authorization: %ld %s", r.status, r.body);
	o = json_loads(r.body, 0, NULL);
	chall[0] = '\0';
	json_array_foreach(json_object_get(o, "challenges"), i, c)
	{
		if (!strcmp(member(c, "type"), type)) {
			snprintf(chall, ACME_URL_BUF, "%s", member(c, "url"));
			snprintf(ka, ACME_URL_BUF, "%s.%s", member(c, "token"), thumb);
		}
	}
	json_decref(o);
	reply_clear(&r);
	ck_assert_msg(chall[0], "no %s challenge for %s", type, name);
}

/* Answer name's tls-alpn-01 challenge for t/kid (the server presenting a wrong digest when
 * wrong) and wait for its authorization to settle: its final status. */
static void alpn_order(const struct tkey *t, const char *kid, const char *name, int wrong,
                       char *status, size_t n, char *order_url)
{
	char authz[ACME_URL_BUF], chall[ACME_URL_BUF];
	struct reply r;
	json_t *o;

	order_challenge(t, kid, name, "tls-alpn-01", authz, chall, alpn_ka, order_url, NULL);
	snprintf(alpn_name, sizeof(alpn_name), "%s", name);
	atomic_store(&alpn_wrong, wrong);
	r = post(chall + strlen(acme_url), jws(t, kid, chall + strlen(acme_url), "{}"));
	ck_assert_msg(r.status == 200, "challenge: %ld %s", r.status, r.body);
	ck_assert_int_gt(r.retry_after, 0); /* processing: poll later */
	reply_clear(&r);
	for (int tries = 0; tries < 150; tries++) {
		r = get_as(t, kid, authz);
		o = json_loads(r.body, 0, NULL);
		snprintf(status, n, "%s", member(o, "status"));
		json_decref(o);
		reply_clear(&r);
		if (strcmp(status, "pending"))
			return;
		usleep(200000);
	}
}

/* tls-alpn-01 by this project's client: a right answer makes the order ready and issuable;
 * a wrong digest makes the challenge invalid with the validator's problem, and the order
 * invalid. */
START_TEST(tls_alpn01_by_our_client)
{
	struct eab e = new_eab(",\"principal\":\"alpn-team\",\"allow\":[\"*.example.com\"]");
	struct tkey t = tkey_new("ES256");
	char kid[300], status[32], order_url[300], fin[300], body[2048], authz[300], *csr;
	EVP_PKEY *ck = EVP_EC_gen("P-256");
	pthread_t th;
	struct reply r;
	json_t *o;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)alpn_port)};

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 8) == 0);
	alpn_key = EVP_EC_gen("P-256");
	atomic_store(&alpn_stop, 0);
	pthread_create(&th, NULL, alpn_thread, &lfd);
	register_key(&t, &e, kid, sizeof(kid));

	alpn_order(&t, kid, "alpn1.example.com", 0, status, sizeof(status), order_url);
	ck_assert_str_eq(status, "valid");
	r = get_as(&t, kid, order_url);
	o = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(member(o, "status"), "ready");
	snprintf(fin, sizeof(fin), "%s", member(o, "finalize") + strlen(acme_url));
	json_decref(o);
	reply_clear(&r);
	csr = csr_b64(ck, NULL, "DNS:alpn1.example.com");
	snprintf(body, sizeof(body), "{\"csr\":\"%s\"}", csr);
	free(csr);
	r = post(fin, jws(&t, kid, fin, body));
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"valid\""), "finalize: %ld %s", r.status,
	              r.body);
	o = json_loads(r.body, 0, NULL);
	snprintf(authz, sizeof(authz), "%s",
	         json_string_value(json_array_get(json_object_get(o, "authorizations"), 0)) +
	             strlen(acme_url));
	json_decref(o);
	reply_clear(&r);
	/* The client deactivates its valid authorization (RFC 8555 §7.5.2): never reused again,
	 * and a second deactivation is refused. */
	r = post(authz, jws(&t, kid, authz, "{\"status\":\"deactivated\"}"));
	ck_assert_msg(r.status == 200 && strstr(r.body, "\"deactivated\""), "deactivate: %ld %s",
	              r.status, r.body);
	reply_clear(&r);
	r = post(authz, jws(&t, kid, authz, "{\"status\":\"deactivated\"}"));
	ck_assert(problem(&r, "malformed"));
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE actor = 'alpn-team' AND"
	                       " action = 'acme.authz.deactivate'"),
	                 1);
	r = new_order(&t, kid, "[{\"type\":\"dns\",\"value\":\"alpn1.example.com\"}]");
	ck_assert_int_eq(r.status, 201);
	o = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(member(o, "status"), "pending");
	json_decref(o);
	reply_clear(&r);

	alpn_order(&t, kid, "alpn2.example.com", 1, status, sizeof(status), order_url);
	ck_assert_str_eq(status, "invalid");
	ck_assert_int_eq(count("SELECT count(*) FROM acme_challenges WHERE type = 'tls-alpn-01'"
	                       " AND status = 'invalid' AND error_type = 'unauthorized'"),
	                 1);
	r = get_as(&t, kid, order_url);
	o = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(member(o, "status"), "invalid");
	json_decref(o);
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE actor = 'alpn-team' AND"
	                       " action IN ('acme.challenge.valid', 'acme.challenge.invalid')"),
	                 2);

	atomic_store(&alpn_stop, 1);
	pthread_join(th, NULL);
	close(lfd);
	EVP_PKEY_free(alpn_key);
	EVP_PKEY_free(ck);
	tkey_free(&t);
}
END_TEST

/* ---- a challenge left processing by a killed hsmca-cad ---- */

/* An http-01 responder on the validator's port: while h01_stall is set it takes the connection
 * and answers nothing (a slow validation); then it answers h01_ka. */
static char h01_ka[300];
static _Atomic int h01_stall, h01_stop, h01_seen, h01_delay_ms;

static void *h01_thread(void *arg)
{
	int lfd = *(int *)arg;

	while (!atomic_load(&h01_stop)) {
		struct pollfd pf = {.fd = lfd, .events = POLLIN};
		char req[2048], rep[600];
		ssize_t got;
		int fd;

		if (poll(&pf, 1, 100) != 1 || (fd = accept(lfd, NULL, NULL)) < 0)
			continue;
		atomic_fetch_add(&h01_seen, 1);
		if (atomic_load(&h01_stall)) {
			/* Hold it until the validator gives up or the test moves on. */
			for (int i = 0;
			     i < 100 && atomic_load(&h01_stall) && !atomic_load(&h01_stop); i++)
				usleep(100000);
			close(fd);
			continue;
		}
		got = read(fd, req, sizeof(req) - 1);
		(void)got;
		if (atomic_load(&h01_delay_ms)) /* a slow responder: the validation takes a while */
			usleep((useconds_t)atomic_load(&h01_delay_ms) * 1000);
		snprintf(rep, sizeof(rep),
		         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		         "Connection: close\r\n\r\n%s",
		         strlen(h01_ka), h01_ka);
		if (write(fd, rep, strlen(rep)) < 0)
			fprintf(stderr, "http-01 responder: write failed\n");
		close(fd);
	}
	return NULL;
}

/* The http-01 responder (h01_thread) listening on http01_port: *lfd its socket, *th its
 * thread; h01_finish stops both. */
static void h01_start(int *lfd, pthread_t *th)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http01_port)};
	int one = 1;

	*lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(*lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ck_assert(bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(*lfd, 8) == 0);
	atomic_store(&h01_stop, 0);
	pthread_create(th, NULL, h01_thread, lfd);
}

static void h01_finish(int lfd, pthread_t th)
{
	atomic_store(&h01_stop, 1);
	pthread_join(th, NULL);
	close(lfd);
}

/* A new account of principal (its names: *.example.com) with t, kid into kid, and an order
 * for name: its authorization's URL and its http-01 challenge's (key authorization in
 * h01_ka, for the responder). */
static void account_and_order(const struct tkey *t, char *kid, const char *principal,
                              const char *name, char *authz, char *chall)
{
	char extra[200];
	struct eab e;

	snprintf(extra, sizeof(extra), ",\"principal\":\"%s\",\"allow\":[\"*.example.com\"]",
	         principal);
	e = new_eab(extra);
	nonce[0] = '\0';
	register_key(t, &e, kid, 300);
	order_challenge(t, kid, name, "http-01", authz, chall, h01_ka, NULL, NULL);
}

/* A validation under way when hsmca-cad is killed (SIGKILL: nothing recorded) leaves its
 * challenge processing; the next start of hsmca-cad validates it again, and it settles. A
 * second hsmca-cad over the same database is the one killed (this test runs in a child
 * process: the fixture's cad stays as it is). */
START_TEST(killed_cad_leaves_no_stuck_challenge)
{
	struct tkey t = tkey_new("ES256");
	char kid[300], authz[300], chall[300], status[32] = "";
	char saved_base[128], saved_acme[160];
	pthread_t th;
	struct reply r;
	json_t *o;
	int lfd, port2;
	pid_t first = cad_pid;

	atomic_store(&h01_stall, 1);
	h01_start(&lfd, &th);

	snprintf(saved_base, sizeof(saved_base), "%s", base_url);
	snprintf(saved_acme, sizeof(saved_acme), "%s", acme_url);
	port2 = harness_free_port();
	snprintf(base_url, sizeof(base_url), "https://127.0.0.1:%d", port2);
	snprintf(acme_url, sizeof(acme_url), "%s/acme", base_url);
	write_cad_config("cad3.yaml", port2, 1);
	cad_start_with("cad3.yaml", "cad3.log");
	account_and_order(&t, kid, "stuck-team", "stuck.example.com", authz, chall);
	r = post(chall + strlen(acme_url), jws(&t, kid, chall + strlen(acme_url), "{}"));
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	/* The validator is at the responder, which stalls: kill cad now. */
	for (int tries = 0; tries < 100 && !atomic_load(&h01_seen); tries++)
		usleep(50000);
	ck_assert_int_gt(atomic_load(&h01_seen), 0);
	kill(cad_pid, SIGKILL);
	waitpid(cad_pid, NULL, 0);
	cad_pid = 0;
	ck_assert_int_eq(count("SELECT count(*) FROM acme_challenges c JOIN acme_authorizations a"
	                       " ON a.id = c.authz_id WHERE a.identifier = 'stuck.example.com'"
	                       " AND c.status = 'processing'"),
	                 1);

	/* The responder answers from now on; cad starts again and retries the challenge. */
	atomic_store(&h01_stall, 0);
	cad_start_with("cad3.yaml", "cad3.log");
	nonce[0] = '\0';
	for (int tries = 0; tries < 150; tries++) {
		r = get_as(&t, kid, authz);
		o = json_loads(r.body, 0, NULL);
		snprintf(status, sizeof(status), "%s", member(o, "status"));
		json_decref(o);
		reply_clear(&r);
		if (strcmp(status, "pending"))
			break;
		usleep(200000);
	}
	if (strcmp(status, "valid"))
		fprintf(stderr, "hsmca-cad after its restart:\n%s\n",
		        harness_slurp(in_dir("cad3.log")));
	ck_assert_msg(!strcmp(status, "valid"), "the authorization is %s, not valid", status);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_challenges c JOIN acme_authorizations a"
	                       " ON a.id = c.authz_id WHERE a.identifier = 'stuck.example.com'"
	                       " AND c.type = 'http-01' AND c.status = 'valid'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE actor = 'stuck-team' AND"
	                       " action = 'acme.challenge.valid'"),
	                 1);
	ck_assert(strstr(harness_slurp(in_dir("cad3.log")), "was left processing"));

	cad_stop();
	cad_pid = first;
	snprintf(base_url, sizeof(base_url), "%s", saved_base);
	snprintf(acme_url, sizeof(acme_url), "%s", saved_acme);
	nonce[0] = '\0';
	h01_finish(lfd, th);
	tkey_free(&t);
}
END_TEST

/* lego (Debian's), a second real client: registers with an EAB credential, gets a certificate
 * with http-01 on its own listener (checked by hsmca-acmevald), renews it (the valid
 * authorization reused) and revokes it with the account's key (keyCompromise). */
static int run_lego(const char *what, const char *eab_kid, const char *eab_key, const char *args)
{
	char cmd[4096], name[64];

	snprintf(name, sizeof(name), "lego-%s", what);
	snprintf(cmd, sizeof(cmd),
	         "LEGO_CA_CERTIFICATES='%s/opca.pem' lego --server '%s/directory' "
	         "--email ops@corp.example.com --accept-tos --eab --kid '%s' --hmac '%s' "
	         "--domains web2.example.com --http --http.port 127.0.0.1:%d --key-type ec256 "
	         "--path lego %s",
	         dir, acme_url, eab_kid, eab_key, http01_port, args);
	return run_client(name, cmd, NULL);
}

START_TEST(lego_http01_issue_renew_revoke)
{
	static const char crt[] = "lego/certificates/web2.example.com.crt";
	struct eab e = new_eab(",\"principal\":\"lego-http\",\"allow\":[\"*.example.com\"]");
	char *hk = b64(e.key, e.key_len), key[64], status[300];
	long long certs = count("SELECT count(*) FROM certificates"), challenges;

	snprintf(key, sizeof(key), "%s", hk);
	free(hk);
	ck_assert(run_lego("run", e.kid, key, "run") == 0);
	openssl_verify(crt);
	api_status(crt, status, sizeof(status));
	ck_assert_str_eq(status, "issued");
	ocsp_status(crt, "good", status, sizeof(status));
	ck_assert_str_eq(status, "good");
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs + 1);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action ="
	                       " 'acme.challenge.valid' AND actor = 'lego-http'"),
	                 1);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_accounts WHERE principal = 'lego-http'"),
	                 1);

	/* Renewal of a certificate far from its end: --days beyond its life asks for it. */
	challenges = count("SELECT count(*) FROM acme_challenges");
	ck_assert(run_lego("renew", e.kid, key, "renew --days 400 --no-random-sleep") == 0);
	openssl_verify(crt);
	ck_assert_int_eq(count("SELECT count(*) FROM certificates"), certs + 2);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_challenges"), challenges);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_orders WHERE status = 'valid' AND"
	                       " account_id = (SELECT id FROM acme_accounts WHERE principal ="
	                       " 'lego-http')"),
	                 2);

	ck_assert(run_lego("revoke", e.kid, key, "revoke --reason 1 --keep") == 0);
	api_status(crt, status, sizeof(status));
	ck_assert_str_eq(status, "revoked");
	ocsp_status(crt, "revoked", status, sizeof(status));
	ck_assert_str_eq(status, "revoked");
	ck_assert_int_eq(count("SELECT count(*) FROM certificates WHERE status = 'revoked' AND"
	                       " revocation_reason = 1 AND requester = (SELECT 'acme/acct/' || id"
	                       " FROM acme_accounts WHERE principal = 'lego-http')"),
	                 1);
}
END_TEST

/* Seconds since t0 (CLOCK_MONOTONIC). */
static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A read (POST-as-GET) of an authorization whose validation runs is held until the validation
 * settles, so a client polls once (RFC 8555 §7.5.1): with a responder that takes 500 ms, the
 * first read after the challenge's {} already says valid, and took about that long; the {}
 * itself is answered at once (processing, with Retry-After). Runs in a child process, as the
 * killed-cad test does, with its own responder on the validator's port. */
START_TEST(authz_read_waits_for_its_validation)
{
	struct tkey t = tkey_new("ES256");
	char kid[300], authz[300], chall[300];
	struct timespec t0;
	pthread_t th;
	struct reply r;
	json_t *o;
	double took;
	int lfd;

	atomic_store(&h01_delay_ms, 500);
	h01_start(&lfd, &th);
	account_and_order(&t, kid, "wait-team", "held.example.com", authz, chall);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = post(chall + strlen(acme_url), jws(&t, kid, chall + strlen(acme_url), "{}"));
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_gt(r.retry_after, 0);
	o = json_loads(r.body, 0, NULL);
	ck_assert_str_eq(member(o, "status"), "processing");
	json_decref(o);
	reply_clear(&r);

	r = get_as(&t, kid, authz);
	took = seconds_since(&t0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(r.nonce[0] ? r.nonce : NULL);
	o = json_loads(r.body, 0, NULL);
	ck_assert_msg(!strcmp(member(o, "status"), "valid"),
	              "the first read after {} says %s (after %.3f s), not valid",
	              member(o, "status"), took);
	ck_assert_int_eq(r.retry_after, 0);
	json_decref(o);
	reply_clear(&r);
	/* held: the responder answered the validator 500 ms after the {} */
	ck_assert_msg(took >= 0.45, "validated and read in %.3f s", took);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE actor = 'wait-team' AND"
	                       " action = 'acme.challenge.valid'"),
	                 1);
	h01_finish(lfd, th);
	tkey_free(&t);
}
END_TEST

/* A read of an authorization whose validation this hsmca-cad has under way waits before it
 * reads (no read first); the read after the wait is the request's only one, so it judges the
 * account: deactivated meanwhile (behind cad's back, its key cache still says valid), the
 * answer is unauthorized, not the authorization. */
START_TEST(held_read_judges_the_account_after_its_wait)
{
	struct tkey t = tkey_new("ES256");
	char kid[300], authz[300], chall[300];
	struct timespec t0;
	pthread_t th;
	struct reply r;
	double took;
	int lfd;

	atomic_store(&h01_delay_ms, 600);
	h01_start(&lfd, &th);
	account_and_order(&t, kid, "held2-team", "held2.example.com", authz, chall);
	r = post(chall + strlen(acme_url), jws(&t, kid, chall + strlen(acme_url), "{}"));
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	ck_assert_int_eq(
	    count("UPDATE acme_accounts SET status = 'deactivated', deactivated_at = now()"
	          " WHERE principal = 'held2-team' RETURNING 1"),
	    1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = get_as(&t, kid, authz);
	took = seconds_since(&t0);
	ck_assert_msg(r.status == 401, "held read by a deactivated account: %ld %s", r.status,
	              r.body);
	ck_assert(problem(&r, "unauthorized"));
	ck_assert_ptr_nonnull(r.nonce[0] ? r.nonce : NULL);
	reply_clear(&r);
	/* it waited for the validation (the responder answers 600 ms after the {}) */
	ck_assert_msg(took >= 0.3, "answered in %.3f s, without waiting", took);
	atomic_store(&h01_delay_ms, 0);
	h01_finish(lfd, th);
	tkey_free(&t);
}
END_TEST

/* A validation whose result cannot be recorded (hsmca-cad's connections gone and refused for
 * a while, as in a database restart) records it once the database is back, seconds later,
 * not when the recovery of challenges left processing comes round a minute or two later. */
static const char *chall_status(const char *name)
{
	static char st[32];
	char q[300];
	PGconn *c = owner();

	snprintf(q, sizeof(q),
	         "SELECT c.status FROM acme_challenges c JOIN acme_authorizations a"
	         " ON a.id = c.authz_id WHERE a.identifier = '%s' AND c.type = 'http-01'",
	         name);
	harness_pg_text(c, q, st, sizeof(st));
	PQfinish(c);
	return st;
}

START_TEST(validation_result_waits_out_a_database_outage)
{
	struct tkey t = tkey_new("ES256");
	char kid[300], authz[300], chall[300];
	pthread_t th;
	struct reply r;
	int lfd, waited;

	atomic_store(&h01_delay_ms, 800);
	h01_start(&lfd, &th);
	account_and_order(&t, kid, "outage-team", "outage.example.com", authz, chall);
	r = post(chall + strlen(acme_url), jws(&t, kid, chall + strlen(acme_url), "{}"));
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	/* While the responder takes its time: every connection of hsmca-cad's role closed, and
	 * new ones refused. */
	owner_sql("GRANT pg_signal_backend TO CURRENT_USER");
	owner_sql("ALTER ROLE \"hsmca-cad\" CONNECTION LIMIT 0");
	ck_assert_int_ge(count("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	                       " WHERE usename = 'hsmca-cad'"),
	                 1);
	/* The validation ends (800 ms) and its result cannot be recorded: still processing. */
	nanosleep(&(struct timespec){2, 0}, NULL);
	ck_assert_str_eq(chall_status("outage.example.com"), "processing");
	owner_sql("ALTER ROLE \"hsmca-cad\" CONNECTION LIMIT -1");
	owner_sql("REVOKE pg_signal_backend FROM CURRENT_USER");
	/* Back: recorded within its retries (about six seconds in all), valid. */
	for (waited = 0; waited < 100 && strcmp(chall_status("outage.example.com"), "valid");
	     waited++)
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	ck_assert_msg(!strcmp(chall_status("outage.example.com"), "valid"),
	              "the challenge is %s 10 s after the database came back",
	              chall_status("outage.example.com"));
	r = get_as(&t, kid, authz);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "\"valid\""));
	reply_clear(&r);
	atomic_store(&h01_delay_ms, 0);
	h01_finish(lfd, th);
	tkey_free(&t);
}
END_TEST

/* Reads of authorizations and challenges judge the account in the statement that reads them
 * (no account read first, the key from hsmca-cad's cache): still, a key rolled over (or
 * changed by another hsmca-cad: the cache here still holds the old key) and a deactivated
 * account count at once. */
START_TEST(authz_reads_judge_the_account_at_once)
{
	struct eab e = new_eab(",\"principal\":\"fold-team\",\"allow\":[\"*.example.com\"]");
	struct tkey t = tkey_new("ES256"), n = tkey_new("ES256");
	char kid[300], path[300], authz[300], apath[300], chall[300], fin[300], ka[300], cert[300];
	char authz3[300], chall3[300], ka3[300], fin3[300], c3path[300];
	const char *ids = "[{\"type\":\"dns\",\"value\":\"fold2.example.com\"}]";
	long long orders;
	struct reply r;

	nonce[0] = '\0';
	register_key(&t, &e, kid, sizeof(kid));
	snprintf(path, sizeof(path), "%s", kid + strlen(acme_url));
	order_challenge(&t, kid, "fold.example.com", "dns-01", authz, chall, ka, NULL, fin);
	/* A second order whose challenge stays pending: answering it ({}) starts it in the
	 * statement that judges the account (no read first), so a stale key or a deactivated
	 * account must be refused there too. */
	order_challenge(&t, kid, "fold3.example.com", "dns-01", authz3, chall3, ka3, NULL, fin3);
	snprintf(c3path, sizeof(c3path), "%s", chall3 + strlen(acme_url));
	snprintf(apath, sizeof(apath), "%s", authz + strlen(acme_url));
	r = get_as(&t, kid, authz); /* read again: with the key from cad's cache */
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	/* Its certificate (the authorization made valid as a validation would): downloaded with
	 * the key from the cache. */
	owner_sql("UPDATE acme_authorizations SET status = 'valid'"
	          " WHERE identifier = 'fold.example.com'");
	owner_sql("UPDATE acme_orders o SET status = 'ready' FROM acme_order_authorizations oa"
	          " JOIN acme_authorizations a ON a.id = oa.authz_id WHERE oa.order_id = o.id"
	          " AND a.identifier = 'fold.example.com'");
	{
		EVP_PKEY *ck = EVP_EC_gen("P-256");
		char *c = csr_b64(ck, NULL, "DNS:fold.example.com"), body[2048];
		json_t *o;
		snprintf(body, sizeof(body), "{\"csr\":\"%s\"}", c);
		free(c);
		r = post(fin, jws(&t, kid, fin, body));
		ck_assert_msg(r.status == 200, "finalize: %ld %s", r.status, r.body);
		o = json_loads(r.body, 0, NULL);
		snprintf(cert, sizeof(cert), "%s", member(o, "certificate") + strlen(acme_url));
		json_decref(o);
		reply_clear(&r);
		EVP_PKEY_free(ck);
	}
	r = post(cert, jws(&t, kid, cert, NULL));
	ck_assert_msg(r.status == 200, "certificate: %ld %s", r.status, r.body);
	reply_clear(&r);
	r = post(cert, jws(&t, kid, cert, NULL)); /* the key cached */
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	orders = count("SELECT count(*) FROM acme_orders");

	/* Key rollover: the old key, still in the cache, is refused at once. */
	r = key_change(&t, kid, &n, "ES256");
	ck_assert_msg(r.status == 200, "keyChange: %ld %s", r.status, r.body);
	reply_clear(&r);
	r = post(apath, jws(&t, kid, apath, NULL));
	ck_assert_msg(r.status == 400 || r.status == 401, "old key read the authorization: %ld %s",
	              r.status, r.body);
	reply_clear(&r);
	r = post(chall + strlen(acme_url), jws(&t, kid, chall + strlen(acme_url), NULL));
	ck_assert_msg(r.status == 400 || r.status == 401, "old key read the challenge: %ld %s",
	              r.status, r.body);
	reply_clear(&r);
	r = post(cert, jws(&t, kid, cert, NULL));
	ck_assert_msg(r.status == 400 || r.status == 401, "old key read the certificate: %ld %s",
	              r.status, r.body);
	reply_clear(&r);
	r = new_order(&t, kid, ids);
	ck_assert_msg(r.status == 400 || r.status == 401, "old key made an order: %ld %s", r.status,
	              r.body);
	reply_clear(&r);
	r = post(c3path, jws(&t, kid, c3path, "{}"));
	ck_assert_msg(r.status == 400 || r.status == 401, "old key answered the challenge: %ld %s",
	              r.status, r.body);
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_orders"), orders);
	r = post(apath, jws(&n, kid, apath, NULL));
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	r = post(apath, jws(&n, kid, apath, NULL)); /* the new key cached */
	ck_assert_int_eq(r.status, 200);
	reply_clear(&r);
	r = post(cert, jws(&n, kid, cert, NULL));
	ck_assert_msg(r.status == 200, "certificate, new key: %ld %s", r.status, r.body);
	reply_clear(&r);

	/* Deactivated by another hsmca-cad (here: straight in the database, so this one's cache
	 * knows nothing of it): reads are refused at once, and so is answering the challenge. */
	ck_assert_int_eq(
	    count("UPDATE acme_accounts SET status = 'deactivated', deactivated_at = now()"
	          " WHERE principal ="
	          " 'fold-team' RETURNING 1"),
	    1);
	r = post(apath, jws(&n, kid, apath, NULL));
	ck_assert_int_eq(r.status, 401);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	r = post(chall + strlen(acme_url), jws(&n, kid, chall + strlen(acme_url), "{}"));
	ck_assert_int_eq(r.status, 401);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	r = post(c3path, jws(&n, kid, c3path, "{}"));
	ck_assert_msg(r.status == 401, "a deactivated account answered the challenge: %ld %s",
	              r.status, r.body);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	r = post(apath, jws(&n, kid, apath, "{\"bad\":1}")); /* the account comes first */
	ck_assert_int_eq(r.status, 401);
	reply_clear(&r);
	/* the certificate is read with the account, and newOrder locks the account: both
	 * unauthorized */
	r = post(cert, jws(&n, kid, cert, NULL));
	ck_assert_int_eq(r.status, 401);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	r = new_order(&n, kid, ids);
	ck_assert_int_eq(r.status, 401);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_orders"), orders);
	/* finalize reads its order with the account too: unauthorized, not orderNotReady */
	r = post(fin, jws(&n, kid, fin, "{\"csr\":\"AAAA\"}"));
	ck_assert_msg(r.status == 401, "finalize: %ld %s", r.status, r.body);
	ck_assert(problem(&r, "unauthorized"));
	reply_clear(&r);
	ck_assert_int_eq(count("SELECT count(*) FROM acme_challenges c JOIN acme_authorizations a"
	                       " ON a.id = c.authz_id WHERE a.identifier IN ('fold.example.com',"
	                       " 'fold3.example.com') AND c.status <> 'pending'"),
	                 0);
	ck_assert_int_eq(count("SELECT count(*) FROM audit_log WHERE action ="
	                       " 'acme.challenge.start' AND actor = 'fold-team'"),
	                 0);
	tkey_free(&t);
	tkey_free(&n);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("acme-cad");
	TCase *tc = tcase_create("acme");
	SRunner *sr;
	int failed;

	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 360);
	tcase_add_test(tc, directory_and_nonces_without_a_client_certificate);
	tcase_add_test(tc, eab_credentials_are_made_by_officers_only);
	tcase_add_test(tc, register_update_rollover_and_deactivate);
	tcase_add_test(tc, bad_jws_is_refused_and_changes_nothing);
	tcase_add_test(tc, revoked_eab_registers_nothing);
	tcase_add_test(tc, certbot_registers_with_eab);
	tcase_add_test(tc, revoke_cert_with_its_own_key);
	tcase_add_test(tc, renewal_incident_moves_the_window);
	tcase_add_test(tc, orders_are_judged_finalized_and_expire);
	tcase_add_test(tc, order_validity_is_asked_and_judged);
	tcase_add_test(tc, rate_limits_hold_under_concurrency);
	tcase_add_test(tc, certbot_http01_issue_renew_revoke);
	tcase_add_test(tc, certbot_dns01_with_a_wildcard);
	tcase_add_test(tc, lego_http01_issue_renew_revoke);
	tcase_add_test(tc, tls_alpn01_by_our_client);
	tcase_add_test(tc, killed_cad_leaves_no_stuck_challenge);
	tcase_add_test(tc, authz_read_waits_for_its_validation);
	tcase_add_test(tc, held_read_judges_the_account_after_its_wait);
	tcase_add_test(tc, authz_reads_judge_the_account_at_once);
	tcase_add_test(tc, validation_result_waits_out_a_database_outage);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr) + harness_bad_exits;
	srunner_free(sr);
	return failed ? 1 : 0;
}
