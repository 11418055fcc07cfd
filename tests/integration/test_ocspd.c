/*
 * hsmca-ocspd end to end with real clients: a private PostgreSQL cluster (tests/pg/pgtest), a
 * throwaway keyd holding two CA keys and a delegated responder key, certificates issued the
 * way hsmca-cad issues them (reserved in the database, signed through keyd, stored), and
 * hsmca-ocspd itself, asked with `openssl ocsp` (POST) and with libcurl (GET), its answers
 * checked with `openssl ocsp -respin` and with OpenSSL's OCSP API. Revocations go through the
 * data layer, as cad's do, and must reach the served answer within a second.
 */
#include <check.h>
#include <curl/curl.h>
#include <fcntl.h>
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
#include "harness.h"
#include "keyd_client.h"

static struct harness h;
static struct harness_pg pg;
static const char *ocspd_ci; /* conninfo of hsmca-ocspd, its own login role */
static char dir[256];
static char url[128];
static char metrics_url[128]; /* the metrics listener (metrics_listen) */
static int port, metrics_port;
static pid_t ocspd_pid;
static OSSL_PROVIDER *prov_keyd, *prov_default;
static int32_t ca_a_id, ca_b_id;
static void cleanup(void);
static void replica_stop(void);

/* ---- processes and files ---- */

/* dir/name, in a rotating buffer of the harness. */
#define path(name) harness_pathf(dir, "%s", name)

/* Run a shell command; its output (stdout and stderr) is returned. */
static char *sh(const char *fmt, ...)
{
	char cmd[4096], *argv[] = {"sh", "-c", cmd, NULL};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	harness_run(argv, path("sh.out"));
	return harness_slurp(path("sh.out"));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- certificates ---- */

/* kind: 0 CA (self-signed when issuer NULL), 1 end entity, 2 OCSP responder. Valid from an
 * hour ago for a year. */
static X509 *make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *signer, int kind,
                       const uint8_t *serial, size_t serial_len)
{
	time_t now = time(NULL);
	struct harness_cert c = {.cn = cn,
	                         .pub = pub,
	                         .issuer = issuer,
	                         .signer = signer,
	                         .ca = kind == 0,
	                         .serial_bytes = serial,
	                         .serial_len = serial_len,
	                         .not_before = now - 3600,
	                         .not_after = now + 86400L * 365,
	                         .ocsp_signer = kind == 2,
	                         .md = "SHA256"};

	return harness_make_cert(&c);
}

static struct db *owner_db(void)
{
	struct db_err err = {0};
	struct db *db = NULL;

	if (db_connect(pg.owner_ci, &db, &err) != DB_OK) {
		fprintf(stderr, "test_ocspd: connect: %s\n", err.msg);
		harness_die(__func__);
	}
	return db;
}

static int32_t register_ca(struct db *db, const char *name, const char *label, X509 *x)
{
	struct db_authority a = {0};
	struct db_err err = {0};
	unsigned char *subj = NULL, *der = NULL;
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
	int slen = i2d_X509_NAME(X509_get_subject_name(x), &subj), len = i2d_X509(x, &der);
	int32_t id = 0;

	a.name = (char *)name;
	a.subject = (char *)name;
	a.subject_der = subj;
	a.subject_der_len = (size_t)slen;
	a.ski = ski->data;
	a.ski_len = (size_t)ski->length;
	a.cert_der = der;
	a.cert_der_len = (size_t)len;
	a.key_label = (char *)label;
	if (db_authority_add(db, &a, &id, &err) != DB_OK) {
		fprintf(stderr, "test_ocspd: %s\n", err.msg);
		harness_die(__func__);
	}
	OPENSSL_free(subj);
	OPENSSL_free(der);
	return id;
}

/* Issue as hsmca-cad does: reserve, sign through keyd, store. Writes NAME.pem; returns the
 * serial's hex in a static buffer. */
static const char *issue(const char *name, int32_t ca_id, const char *ca_pem, const char *label)
{
	static char hex[2 * DB_SERIAL_MAX + 1];
	struct db *db = owner_db();
	struct db_cert_request req = {0};
	struct db_err err = {0};
	uint8_t serial[16];
	unsigned char *der = NULL, *spki = NULL;
	EVP_PKEY *k = EVP_EC_gen("P-256"), *cak = harness_keyd_key(label);
	FILE *f = fopen(path(ca_pem), "r");
	X509 *ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL, *x;
	int64_t id;
	int len, slen;

	if (f)
		fclose(f);
	RAND_bytes(serial, sizeof(serial));
	serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x10);
	slen = i2d_PUBKEY(k, &spki);
	req.authority_id = ca_id;
	req.serial = serial;
	req.serial_len = sizeof(serial);
	req.profile = "tls-server";
	req.subject = name;
	req.subject_len = strlen(name);
	req.not_before = time(NULL) - 3600;
	req.not_after = time(NULL) + 86400 * 365;
	EVP_Digest(spki, (size_t)slen, req.spki_sha256, NULL, EVP_sha256(), NULL);
	req.requester = "test";
	if (!ca || db_cert_reserve(db, &req, &id, &err) != DB_OK) {
		fprintf(stderr, "test_ocspd: reserve: %s\n", err.msg);
		harness_die(__func__);
	}
	x = make_cert(name, k, ca, cak, 1, serial, sizeof(serial));
	X509_set1_notBefore(x, NULL);
	{
		ASN1_TIME *nb = ASN1_TIME_set(NULL, (time_t)req.not_before),
		          *na = ASN1_TIME_set(NULL, (time_t)req.not_after);
		EVP_MD_CTX *m = EVP_MD_CTX_new();
		X509_set1_notBefore(x, nb);
		X509_set1_notAfter(x, na);
		EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, cak, NULL);
		X509_sign_ctx(x, m);
		EVP_MD_CTX_free(m);
		ASN1_TIME_free(nb);
		ASN1_TIME_free(na);
	}
	len = i2d_X509(x, &der);
	if (db_cert_mark_issued(db, ca_id, serial, sizeof(serial), der, (size_t)len, &err) !=
	    DB_OK) {
		fprintf(stderr, "test_ocspd: mark issued: %s\n", err.msg);
		harness_die(__func__);
	}
	{
		char file[128];
		snprintf(file, sizeof(file), "%s.pem", name);
		harness_write_cert(path(file), x, 0);
	}
	db_serial_to_hex(serial, sizeof(serial), hex);
	OPENSSL_free(der);
	OPENSSL_free(spki);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(k);
	EVP_PKEY_free(cak);
	db_close(db);
	return hex;
}

/* ---- hsmca-ocspd ---- */

static long http_get(const char *target, char **body, size_t *body_len, char *headers, size_t hcap);

static const char *health(void)
{
	static char buf[1024];
	char *body = NULL;
	size_t n = 0;
	long st = http_get("/health", &body, &n, NULL, 0);

	snprintf(buf, sizeof(buf), "%ld %s", st, body ? body : "");
	free(body);
	return buf;
}

static void ocspd_start_with(const char *conf)
{
	const char *log = path("ocspd.log");

	ocspd_pid = harness_spawn_daemon("ocsp/hsmca-ocspd", conf, "--verbose", log);
	for (int i = 0; i < 400; i++) {
		if (strstr(health(), "\"status\": \"ok\""))
			return;
		usleep(50000);
	}
	fprintf(stderr, "test_ocspd: hsmca-ocspd did not become healthy (%s); see %s\n", health(),
	        log);
	harness_die(__func__);
}

static void ocspd_start(void)
{
	ocspd_start_with(path("ocspd.yaml"));
}

/* SIGTERM it and check its exit (harness_daemon_stop): 0 when it exited 0 with no sanitizer
 * report in its log, -1 when none was running, else non-zero (counted in harness_bad_exits). */
static int ocspd_stop(void)
{
	return harness_daemon_stop(&ocspd_pid, "hsmca-ocspd", path("ocspd.log"), 0);
}

static const char config_fmt[] = "listen: {address: 127.0.0.1, port: %d}\n"
                                 "metrics_listen: {address: 127.0.0.1, port: %d}\n"
                                 "workers: 2\n"
                                 "signers: 2\n"
                                 "database: \"%s connect_timeout=3\"\n"
                                 "responder_certificates: [%s/ocsp-b.pem]\n"
                                 "limits: {request_timeout_seconds: 2, idle_timeout_seconds: 5,"
                                 " max_certs_per_request: 4, max_header_bytes: 2048}\n";

static void setup(void)
{
	struct keyd_client *c;
	struct keyd_key k;
	struct keyd_err kerr;
	struct db_err err = {0};
	struct db *db;
	struct db_authority_settings set;
	EVP_PKEY *ka, *kb, *ko;
	X509 *xa, *xb, *xo;
	uint8_t s1[] = {0x01}, s2[] = {0x02}, s3[] = {0x03};
	char conf[2048];
	int applied;

	harness_setup_phase = 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (harness_start(&h, NULL) != 0)
		harness_die(__func__);
	snprintf(dir, sizeof(dir), "%s", h.dir);
	c = keyd_client_new(NULL, 0);
	if (!c || keyd_client_generate(c, "ca-a", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "ca-b", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr) ||
	    keyd_client_generate(c, "ocsp-b", KEYD_KEY_EC, KEYD_CURVE_P256, &k, &kerr))
		harness_die(__func__);
	keyd_client_free(c);
	harness_load_providers(&prov_keyd, &prov_default);
	ka = harness_keyd_key("ca-a");
	kb = harness_keyd_key("ca-b");
	ko = harness_keyd_key("ocsp-b");
	xa = make_cert("hsmca test CA A", ka, NULL, ka, 0, s1, 1);
	xb = make_cert("hsmca test CA B", kb, NULL, kb, 0, s2, 1);
	xo = make_cert("hsmca test OCSP responder B", ko, xb, kb, 2, s3, 1);
	harness_write_cert(path("ca-a.pem"), xa, 0);
	harness_write_cert(path("ca-b.pem"), xb, 0);
	harness_write_cert(path("ocsp-b.pem"), xo, 0);
	/* an issuer nobody serves, for "unauthorized" */
	{
		EVP_PKEY *kx = EVP_EC_gen("P-256");
		X509 *xx = make_cert("stranger CA", kx, NULL, kx, 0, s1, 1);
		harness_write_cert(path("stranger.pem"), xx, 0);
		X509_free(xx);
		EVP_PKEY_free(kx);
	}

	if (harness_pg_start(&pg, "ocspd") != 0)
		harness_die(__func__);
	db = owner_db();
	if (db_migrate(db, NULL, NULL, &applied, &err) != DB_OK) {
		fprintf(stderr, "test_ocspd: %s\n", err.msg);
		harness_die(__func__);
	}
	PQclear(PQexec(db_pgconn(db), "ALTER ROLE hsmca_app LOGIN"));
	/* The daemon connects as its own role (migration 0011), as in the quickstart. */
	ocspd_ci = harness_pg_daemon_ci(&pg, db_pgconn(db), "ocspd");
	ca_a_id = register_ca(db, "ca-a", "ca-a", xa);
	ca_b_id = register_ca(db, "ca-b", "ca-b", xb);
	/* B: a delegated responder, and at most 2 nonce answers a second */
	db_authority_settings_default(&set);
	snprintf(set.ocsp_signer_key_label, sizeof(set.ocsp_signer_key_label), "ocsp-b");
	set.ocsp_nonce_rate_limit = 2;
	if (db_authority_settings_put(db, ca_b_id, &set, "test", &err) != DB_OK) {
		fprintf(stderr, "test_ocspd: %s\n", err.msg);
		harness_die(__func__);
	}
	db_close(db);
	X509_free(xa);
	X509_free(xb);
	X509_free(xo);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
	EVP_PKEY_free(ko);

	issue("a-good", ca_a_id, "ca-a.pem", "ca-a");
	issue("b-good", ca_b_id, "ca-b.pem", "ca-b");

	port = harness_free_port();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	do
		metrics_port = harness_free_port();
	while (metrics_port == port);
	snprintf(metrics_url, sizeof(metrics_url), "http://127.0.0.1:%d", metrics_port);
	snprintf(conf, sizeof(conf), config_fmt, port, metrics_port, ocspd_ci, dir);
	harness_write_text(path("ocspd.yaml"), conf);
	harness_setup_phase = 0;
}

static void teardown(void)
{
	ocspd_stop();
	replica_stop();
	harness_pg_remove(&pg);
	OSSL_PROVIDER_unload(prov_keyd);
	OSSL_PROVIDER_unload(prov_default);
	harness_stop(&h);
	curl_global_cleanup();
}

static void cleanup(void)
{
	ocspd_stop();
	replica_stop();
	harness_pg_remove(&pg);
	if (h.dir[0])
		harness_stop(&h);
}

static void fixture_start(void)
{
	harness_setup_phase = 1;
	ocspd_start();
	harness_setup_phase = 0;
}

/* hsmca-ocspd runs under ASan/LSan here: a leak or any other report at its clean exit fails
 * the suite through harness_bad_exits (issue 9: no leaks in any daemon). */
static void fixture_stop(void)
{
	ocspd_stop();
}

/* ---- clients ---- */

static long http_do(const char *target, const uint8_t *post, size_t post_len, const char *ctype,
                    char **body, size_t *body_len, char *headers, size_t hcap)
{
	CURL *c = curl_easy_init();
	struct harness_buf b = {0}, hd = {0};
	struct curl_slist *hdr = NULL;
	char u[8192], ct[128];
	long status = 0;

	snprintf(u, sizeof(u), "%s%s", url, target);
	curl_easy_setopt(c, CURLOPT_URL, u);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, harness_curl_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, harness_curl_collect);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hd);
	if (post) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
		hdr = curl_slist_append(hdr, ct);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)post_len);
	}
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (headers)
		snprintf(headers, hcap, "%s", hd.data ? hd.data : "");
	*body = b.data;
	*body_len = b.len;
	free(hd.data);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return status;
}

static long http_get(const char *target, char **body, size_t *body_len, char *headers, size_t hcap)
{
	return http_do(target, NULL, 0, NULL, body, body_len, headers, hcap);
}

/* GET TARGET from the metrics listener instead of the OCSP listener. */
static long metrics_listener_get(const char *target, char **body, size_t *body_len)
{
	char saved[sizeof(url)];
	long status;

	snprintf(saved, sizeof(saved), "%s", url);
	snprintf(url, sizeof(url), "%s", metrics_url);
	status = http_get(target, body, body_len, NULL, 0);
	snprintf(url, sizeof(url), "%s", saved);
	return status;
}

static X509 *load_cert(const char *name)
{
	FILE *f = fopen(path(name), "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	ck_assert_msg(x != NULL, "cannot read %s", name);
	return x;
}

/* A DER request for (issuer, leaf) or (issuer, serial hex); nonce_len 0: none, else that many
 * random octets. */
static size_t make_req(const char *issuer, const char *leaf, const char *serial_hex,
                       const EVP_MD *md, int nonce_len, uint8_t *out, size_t cap)
{
	X509 *ca = load_cert(issuer), *x = leaf ? load_cert(leaf) : NULL;
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_CERTID *id;
	unsigned char *der = NULL;
	int n;

	if (x) {
		id = OCSP_cert_to_id(md, x, ca);
	} else {
		BIGNUM *bn = NULL;
		ASN1_INTEGER *ai;
		BN_hex2bn(&bn, serial_hex);
		ai = BN_to_ASN1_INTEGER(bn, NULL);
		id = OCSP_cert_id_new(md, X509_get_subject_name(ca), X509_get0_pubkey_bitstr(ca),
		                      ai);
		ASN1_INTEGER_free(ai);
		BN_free(bn);
	}
	ck_assert(id && OCSP_request_add0_id(req, id));
	if (nonce_len)
		ck_assert(OCSP_request_add1_nonce(req, NULL, nonce_len));
	n = i2d_OCSP_REQUEST(req, &der);
	ck_assert(n > 0 && (size_t)n <= cap);
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	X509_free(ca);
	X509_free(x);
	return (size_t)n;
}

/* GET form: base64 of the DER, URL-encoded. */
static void get_target(const uint8_t *der, size_t len, char *out, size_t cap)
{
	unsigned char b64[8192];
	int n = EVP_EncodeBlock(b64, der, (int)len);
	size_t o = 0;

	out[o++] = '/';
	for (int i = 0; i < n && o + 4 < cap; i++) {
		if (b64[i] == '+' || b64[i] == '/' || b64[i] == '=')
			o += (size_t)snprintf(out + o, cap - o, "%%%02X", b64[i]);
		else
			out[o++] = (char)b64[i];
	}
	out[o] = '\0';
}

struct answer {
	int response_status; /* OCSP_RESPONSE_STATUS_* or -1 */
	int cert_status;     /* V_OCSP_CERTSTATUS_* or -1 */
	int reason;
	int nonce; /* OCSP_check_nonce's result */
	int certs; /* certificates in the response */
	int verified;
	time_t this_update, next_update;
	long http;
	char headers[4096];
};

/* Ask by GET (post 0) or POST; decode and verify the answer against issuer (trusted). */
static struct answer ask(const uint8_t *der, size_t len, int post, const char *issuer)
{
	struct answer a = {-1, -1, -1, 0, 0, 0, 0, 0, 0, ""};
	char target[16384], *body = NULL;
	const unsigned char *p;
	size_t blen = 0;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	OCSP_REQUEST *req;

	if (post)
		a.http = http_do("/", der, len, "application/ocsp-request", &body, &blen, a.headers,
		                 sizeof(a.headers));
	else {
		get_target(der, len, target, sizeof(target));
		a.http = http_get(target, &body, &blen, a.headers, sizeof(a.headers));
	}
	p = (const unsigned char *)body;
	resp = body ? d2i_OCSP_RESPONSE(NULL, &p, (long)blen) : NULL;
	if (resp) {
		a.response_status = OCSP_response_status(resp);
		bs = OCSP_response_get1_basic(resp);
		p = der;
		req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
		if (bs && req) {
			X509 *ca = load_cert(issuer);
			X509_STORE *st = X509_STORE_new();
			STACK_OF(X509) *chain = sk_X509_new_null();
			OCSP_ONEREQ *one = OCSP_request_onereq_get0(req, 0);
			int status, reason;
			ASN1_GENERALIZEDTIME *rev, *thisu, *nextu;
			X509_STORE_add_cert(st, ca);
			sk_X509_push(chain, ca);
			a.verified = OCSP_basic_verify(bs, chain, st, OCSP_TRUSTOTHER) == 1;
			ERR_clear_error();
			a.nonce = OCSP_check_nonce(req, bs);
			a.certs = sk_X509_num(OCSP_resp_get0_certs(bs));
			if (OCSP_resp_find_status(bs, OCSP_onereq_get0_id(one), &status, &reason,
			                          &rev, &thisu, &nextu)) {
				struct tm tm;
				a.cert_status = status;
				a.reason = reason;
				if (thisu && ASN1_TIME_to_tm(thisu, &tm))
					a.this_update = timegm(&tm);
				if (nextu && ASN1_TIME_to_tm(nextu, &tm))
					a.next_update = timegm(&tm);
			}
			sk_X509_free(chain);
			X509_STORE_free(st);
			X509_free(ca);
		}
		OCSP_REQUEST_free(req);
		OCSP_BASICRESP_free(bs);
		OCSP_RESPONSE_free(resp);
	}
	free(body);
	return a;
}

static struct answer ask_cert(const char *issuer, const char *leaf, int post, int nonce)
{
	uint8_t der[4096];
	size_t n = make_req(issuer, leaf, NULL, EVP_sha1(), nonce, der, sizeof(der));

	return ask(der, n, post, issuer);
}

/* `openssl ocsp` as a client over POST; its output. */
static char *openssl_ocsp(const char *issuer, const char *leaf, const char *extra)
{
	return sh("openssl ocsp -url %s/ -issuer %s -cert %s -CAfile %s %s -timeout 10 2>&1", url,
	          path(issuer), path(leaf), path(issuer), extra);
}

/* How long a test waits for a change in the database to reach the answers: far beyond what it
 * takes (well under a second, logged by the tests), so that a loaded machine passes, and far
 * below anything that would find the change without the path under test (the announcement,
 * or the standby's reading of every status each second, vs. re-signing after hours). */
#define ANNOUNCED_S 30.0

static int wait_status(const char *issuer, const char *leaf, int want, double limit, double *took)
{
	double t0 = now_s();

	while (now_s() - t0 < limit) {
		struct answer a = ask_cert(issuer, leaf, 0, 0);
		if (a.cert_status == want && a.verified) {
			*took = now_s() - t0;
			return 1;
		}
		usleep(20000);
	}
	*took = now_s() - t0;
	return 0;
}

static int revoke_db(const char *serial_hex, int32_t ca_id, int what, int reason)
{
	struct db *db = owner_db();
	struct db_err err = {0};
	uint8_t s[DB_SERIAL_MAX];
	size_t n;
	int changed = 0;
	enum db_status rc;

	ck_assert_int_eq(db_serial_from_hex(serial_hex, s, &n), 0);
	if (what == 0)
		rc = db_cert_revoke(db, ca_id, s, n, reason, 0, &changed, &err);
	else if (what == 1)
		rc = db_cert_hold(db, ca_id, s, n, &changed, &err);
	else
		rc = db_cert_release(db, ca_id, s, n, &changed, &err);
	ck_assert_msg(rc == DB_OK, "%s", err.msg);
	db_close(db);
	return changed;
}

/* ================= tests ================= */

START_TEST(openssl_post_good_ca_signed)
{
	char *out = openssl_ocsp("ca-a.pem", "a-good.pem", "-no_nonce");

	ck_assert_msg(strstr(out, ": good") && strstr(out, "Response verify OK"), "%s", out);
}
END_TEST

START_TEST(openssl_post_good_delegated_with_responder_certificate)
{
	char *out = openssl_ocsp("ca-b.pem", "b-good.pem", "-no_nonce -resp_text");

	ck_assert_msg(strstr(out, ": good") && strstr(out, "Response verify OK"), "%s", out);
	ck_assert_msg(strstr(out, "hsmca test OCSP responder B"), "no responder certificate: %s",
	              out);
}
END_TEST

START_TEST(openssl_post_with_nonce_gets_it_echoed)
{
	char *out = openssl_ocsp("ca-a.pem", "a-good.pem", "-nonce");

	ck_assert_msg(strstr(out, ": good") && strstr(out, "Response verify OK"), "%s", out);
	ck_assert_msg(!strstr(out, "WARNING: no nonce in response") && !strstr(out, "Nonce Verify"),
	              "%s", out);
}
END_TEST

START_TEST(get_good_without_and_with_nonce_ca_signed_and_delegated)
{
	struct answer a = ask_cert("ca-a.pem", "a-good.pem", 0, 0);

	ck_assert_int_eq(a.http, 200);
	ck_assert_int_eq(a.response_status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
	ck_assert(a.verified);
	ck_assert_int_eq(a.nonce, 2); /* neither has a nonce */
	ck_assert_int_le(a.certs, 0); /* CA-signed: no certificates */
	a = ask_cert("ca-a.pem", "a-good.pem", 0, 16);
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
	ck_assert(a.verified);
	ck_assert_int_eq(a.nonce, 1); /* equal */
	a = ask_cert("ca-b.pem", "b-good.pem", 0, 32);
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
	ck_assert(a.verified);
	ck_assert_int_eq(a.certs, 1);
	/* also unencoded base64, as some clients send it */
	{
		uint8_t der[4096];
		unsigned char b64[8192];
		char target[8300], *body = NULL;
		size_t n = make_req("ca-a.pem", "a-good.pem", NULL, EVP_sha1(), 0, der,
		                    sizeof(der)),
		       blen;
		EVP_EncodeBlock(b64, der, (int)n);
		snprintf(target, sizeof(target), "/%s", b64);
		ck_assert_int_eq(http_get(target, &body, &blen, NULL, 0), 200);
		ck_assert(blen > 100);
		free(body);
	}
}
END_TEST

/* Prometheus metrics: answers counted by how they were given, the cache and its freshness,
 * the parts that are up. */
static long long metric(const char *text, const char *name)
{
	char line[200];
	const char *p;

	snprintf(line, sizeof(line), "\n%s", name); /* a sample line, not its # HELP */
	p = strstr(text, line);
	return p ? atoll(p + strlen(line)) : -1;
}

/* One series of /metrics now (which part is away is there, not in /health); -1 if absent. */
static long long metric_now(const char *series)
{
	char *body = NULL;
	size_t n = 0;
	long long v = -1;

	if (metrics_listener_get("/metrics", &body, &n) == 200 && body)
		v = metric(body, series);
	free(body);
	return v;
}

/* A second hsmca-ocspd on a taken port is refused at start, naming the port. */
START_TEST(a_second_ocspd_on_a_taken_port_is_refused)
{
	char bin[512], conf[512], *argv[] = {bin, "--config", conf, NULL};
	char want[80];

	snprintf(bin, sizeof(bin), "%s/ocsp/hsmca-ocspd", getenv("HSMCA_BUILD"));
	snprintf(conf, sizeof(conf), "%s", path("ocspd.yaml"));
	setenv("OPENSSL_MODULES", getenv("HSMCA_PROVIDER_DIR"), 1);
	ck_assert_int_ne(harness_run(argv, path("second-ocspd.log")), 0);
	snprintf(want, sizeof(want), ":%d: Address already in use", port);
	ck_assert_msg(strstr(harness_slurp(path("second-ocspd.log")), want), "%s",
	              harness_slurp(path("second-ocspd.log")));
	ck_assert_msg(strstr(health(), "\"status\": \"ok\""), "%s", health());
}
END_TEST

/* /metrics is served on the metrics listener alone (metrics_listen, loopback here): the OCSP
 * listener, which faces the network, answers 404 for it, and the metrics listener answers
 * nothing but /metrics and /health. */
START_TEST(metrics_only_on_the_metrics_listener)
{
	char *body = NULL;
	size_t n = 0;

	ck_assert_int_eq(http_get("/metrics", &body, &n, NULL, 0), 404);
	ck_assert(!body || !strstr(body, "hsmca_ocspd_"));
	free(body);
	body = NULL;
	ck_assert_int_eq(metrics_listener_get("/metrics", &body, &n), 200);
	ck_assert_ptr_nonnull(strstr(body, "hsmca_ocspd_requests_total"));
	free(body);
	body = NULL;
	ck_assert_int_eq(metrics_listener_get("/health", &body, &n), 200);
	free(body);
	body = NULL;
	/* an OCSP GET (junk or not) is not answered there */
	ck_assert_int_eq(metrics_listener_get("/AAAA", &body, &n), 404);
	free(body);
}
END_TEST

START_TEST(metrics_count_answers_and_report_freshness)
{
	char *body = NULL;
	size_t n = 0;
	long long cached0, cached1, malformed0, malformed1;
	struct answer a;

	ck_assert_int_eq(metrics_listener_get("/metrics", &body, &n), 200);
	cached0 = metric(body, "hsmca_ocspd_requests_total{answer=\"cached\"} ");
	malformed0 = metric(body, "hsmca_ocspd_requests_total{answer=\"malformedRequest\"} ");
	ck_assert_int_ge(cached0, 0);
	free(body);
	a = ask_cert("ca-a.pem", "a-good.pem", 0, 0);
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
	ck_assert_int_eq(http_get("/AAAA", &body, &n, NULL, 0), 200); /* junk: malformedRequest */
	free(body);
	ck_assert_int_eq(metrics_listener_get("/metrics", &body, &n), 200);
	cached1 = metric(body, "hsmca_ocspd_requests_total{answer=\"cached\"} ");
	malformed1 = metric(body, "hsmca_ocspd_requests_total{answer=\"malformedRequest\"} ");
	ck_assert_int_ge(cached1, cached0 + 1);
	ck_assert_int_ge(malformed1, malformed0 + 1);
	ck_assert_int_gt(metric(body, "hsmca_ocspd_cached_certificates "), 0);
	ck_assert_int_gt(metric(body, "hsmca_ocspd_soonest_next_update_seconds "), 0);
	ck_assert_int_eq(metric(body, "hsmca_ocspd_up{part=\"database\"} "), 1);
	ck_assert_int_eq(metric(body, "hsmca_ocspd_up{part=\"keyd\"} "), 1);
	free(body);
}
END_TEST

START_TEST(sha256_certid_is_answered_and_matched)
{
	uint8_t der[4096];
	size_t n = make_req("ca-a.pem", "a-good.pem", NULL, EVP_sha256(), 0, der, sizeof(der));
	struct answer a = ask(der, n, 1, "ca-a.pem");

	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
	ck_assert(a.verified);
	a = ask(der, n, 0, "ca-a.pem"); /* now from the cache */
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
	ck_assert(a.verified);
}
END_TEST

START_TEST(cache_headers_follow_rfc5019)
{
	struct answer a = ask_cert("ca-a.pem", "a-good.pem", 0, 0);

	ck_assert_msg(strstr(a.headers, "Content-Type: application/ocsp-response"), "%s",
	              a.headers);
	ck_assert_msg(strstr(a.headers, "Cache-Control: max-age="), "%s", a.headers);
	ck_assert_msg(strstr(a.headers, "ETag: \""), "%s", a.headers);
	ck_assert_msg(strstr(a.headers, "Last-Modified: "), "%s", a.headers);
	ck_assert_msg(strstr(a.headers, "Expires: "), "%s", a.headers);
	/* max-age never runs past nextUpdate (validity 3600 by default) */
	{
		long age = atol(strstr(a.headers, "max-age=") + 8);
		ck_assert(age > 0 && age <= 3600);
	}
	a = ask_cert("ca-a.pem", "a-good.pem", 0, 8);
	ck_assert_msg(strstr(a.headers, "Cache-Control: no-store"), "%s", a.headers);
}
END_TEST

static size_t raw(const char *req, size_t len, char *out, size_t cap, int wait_ms);

START_TEST(conditional_get_with_the_etag_is_not_modified)
{
	struct answer a = ask_cert("ca-a.pem", "a-good.pem", 0, 0);
	uint8_t der[4096];
	char target[8192], etag[64], req[9000], out[4096];
	size_t n = make_req("ca-a.pem", "a-good.pem", NULL, EVP_sha1(), 0, der, sizeof(der));
	const char *e = strstr(a.headers, "ETag: ");

	ck_assert_ptr_nonnull(e);
	sscanf(e + 6, "%63s", etag);
	get_target(der, n, target, sizeof(target));
	snprintf(req, sizeof(req),
	         "GET %s HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/\"other\", %s\r\n"
	         "Connection: close\r\n\r\n",
	         target, etag);
	raw(req, strlen(req), out, sizeof(out), 5000);
	ck_assert_msg(!strncmp(out, "HTTP/1.1 304 Not Modified\r\n", 27) && strstr(out, etag) &&
	                  strstr(out, "max-age="),
	              "%s", out);
	snprintf(req, sizeof(req),
	         "GET %s HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"other\"\r\n"
	         "Connection: close\r\n\r\n",
	         target);
	raw(req, strlen(req), out, sizeof(out), 5000);
	ck_assert_msg(!strncmp(out, "HTTP/1.1 200 OK\r\n", 17), "%s", out);
}
END_TEST

START_TEST(unknown_serial_is_unknown_never_good)
{
	uint8_t der[4096];
	size_t n = make_req("ca-a.pem", NULL, "7a11ce0000000000000000000001", EVP_sha1(), 0, der,
	                    sizeof(der));
	struct answer a = ask(der, n, 1, "ca-a.pem");
	char *out;

	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_UNKNOWN);
	ck_assert(a.verified);
	a = ask(der, n, 0, "ca-a.pem");
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_UNKNOWN);
	out =
	    sh("openssl ocsp -url %s/ -issuer %s -serial 0x7a11ce0000000000000000000002 -CAfile %s "
	       "-no_nonce 2>&1",
	       url, path("ca-a.pem"), path("ca-a.pem"));
	ck_assert_msg(strstr(out, ": unknown"), "%s", out);
}
END_TEST

/* A flood of requests for serials nobody issued costs keyd a bounded number of signatures
 * (limits.unknown_signatures_per_second, 5 by default: a burst of 5, then 5 a second); the
 * rest get the unsigned "unauthorized", counted in /metrics. */
START_TEST(a_flood_of_unknown_serials_takes_a_bounded_number_of_signatures)
{
	char *body = NULL;
	size_t n = 0;
	long long signed0, signed1, refused0, refused1;
	int unknown = 0, unauthorized = 0;
	double t0, took;

	usleep(1100000); /* let the bucket fill after the tests before */
	ck_assert_int_eq(metrics_listener_get("/metrics", &body, &n), 200);
	signed0 = metric(body, "hsmca_ocspd_signed_total ");
	refused0 = metric(body, "hsmca_ocspd_unknown_refused_total ");
	free(body);
	t0 = now_s();
	for (int i = 0; i < 60; i++) {
		uint8_t der[4096];
		char serial[64];
		size_t len;
		struct answer a;

		snprintf(serial, sizeof(serial), "f100d%08x%08x", (unsigned)getpid(), (unsigned)i);
		len = make_req("ca-a.pem", NULL, serial, EVP_sha1(), 0, der, sizeof(der));
		a = ask(der, len, 1, "ca-a.pem");
		if (a.cert_status == V_OCSP_CERTSTATUS_UNKNOWN && a.verified)
			unknown++;
		else if (a.response_status == OCSP_RESPONSE_STATUS_UNAUTHORIZED)
			unauthorized++;
		ck_assert_int_ne(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
	}
	took = now_s() - t0;
	ck_assert_int_eq(metrics_listener_get("/metrics", &body, &n), 200);
	usleep(1100000); /* the bucket full again for the tests after this one, pass or fail */
	signed1 = metric(body, "hsmca_ocspd_signed_total ");
	refused1 = metric(body, "hsmca_ocspd_unknown_refused_total ");
	free(body);
	ck_assert_msg(unknown + unauthorized == 60, "unknown %d, unauthorized %d", unknown,
	              unauthorized);
	ck_assert_msg(unknown >= 1 && unknown <= 6 + (int)(5 * took),
	              "unknown (signed) %d in %.2f s", unknown, took);
	ck_assert_msg(signed1 - signed0 <= 6 + (long long)(5 * took),
	              "keyd signed %lld in %.2f s for 60 unknown serials", signed1 - signed0, took);
	ck_assert_int_eq(refused1 - refused0, unauthorized);
	ck_assert_msg(took > 10 || unauthorized >= 1, "nothing was limited in %.2f s", took);
}
END_TEST

START_TEST(reserved_but_unsigned_serial_is_not_good)
{
	struct db *db = owner_db();
	struct db_cert_request req = {0};
	struct db_err err = {0};
	uint8_t serial[12] = {0x55, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
	char hex[2 * DB_SERIAL_MAX + 1];
	uint8_t der[4096];
	int64_t id;
	size_t n;
	struct answer a;

	req.authority_id = ca_a_id;
	req.serial = serial;
	req.serial_len = sizeof(serial);
	req.profile = "tls-server";
	req.subject = "reserved";
	req.subject_len = 8;
	req.not_before = time(NULL);
	req.not_after = time(NULL) + 3600;
	req.requester = "test";
	ck_assert_msg(db_cert_reserve(db, &req, &id, &err) == DB_OK, "%s", err.msg);
	db_close(db);
	db_serial_to_hex(serial, sizeof(serial), hex);
	n = make_req("ca-a.pem", NULL, hex, EVP_sha1(), 0, der, sizeof(der));
	a = ask(der, n, 1, "ca-a.pem");
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_UNKNOWN);
}
END_TEST

START_TEST(revocation_reaches_the_answer_by_its_announcement)
{
	const char *serial = issue("rev1", ca_a_id, "ca-a.pem", "ca-a");
	char s[64];
	double took;
	char *out;

	snprintf(s, sizeof(s), "%s", serial);
	ck_assert(wait_status("ca-a.pem", "rev1.pem", V_OCSP_CERTSTATUS_GOOD, 5, &took));
	ck_assert_int_eq(revoke_db(s, ca_a_id, 0, DB_REASON_KEY_COMPROMISE), 1);
	/* Listening, the responder reads only new rows on its own: a revocation reaches the
	 * answer through its announcement or not at all. Waited for under a deadline generous
	 * for a loaded machine (typically well under a second; the time is logged). */
	ck_assert_msg(
	    wait_status("ca-a.pem", "rev1.pem", V_OCSP_CERTSTATUS_REVOKED, ANNOUNCED_S, &took),
	    "still not revoked after %.3f s", took);
	fprintf(stderr, "test_ocspd: revocation served after %.3f s\n", took);
	out = openssl_ocsp("ca-a.pem", "rev1.pem", "-no_nonce");
	ck_assert_msg(strstr(out, ": revoked") && strstr(out, "Reason: keyCompromise") &&
	                  strstr(out, "Revocation Time:") && strstr(out, "Response verify OK"),
	              "%s", out);
	out = openssl_ocsp("ca-a.pem", "rev1.pem", "-nonce");
	ck_assert_msg(strstr(out, ": revoked") && !strstr(out, "WARNING"), "%s", out);
}
END_TEST

START_TEST(hold_and_release_reach_the_answer_by_their_announcement)
{
	const char *serial = issue("held1", ca_b_id, "ca-b.pem", "ca-b");
	char s[64];
	double took;
	char *out;

	snprintf(s, sizeof(s), "%s", serial);
	ck_assert(wait_status("ca-b.pem", "held1.pem", V_OCSP_CERTSTATUS_GOOD, 5, &took));
	ck_assert_int_eq(revoke_db(s, ca_b_id, 1, 0), 1);
	ck_assert_msg(
	    wait_status("ca-b.pem", "held1.pem", V_OCSP_CERTSTATUS_REVOKED, ANNOUNCED_S, &took),
	    "not held after %.3f s", took);
	out = openssl_ocsp("ca-b.pem", "held1.pem", "-no_nonce");
	ck_assert_msg(strstr(out, ": revoked") && strstr(out, "Reason: certificateHold") &&
	                  strstr(out, "Response verify OK"),
	              "%s", out);
	ck_assert_int_eq(revoke_db(s, ca_b_id, 2, 0), 1);
	ck_assert_msg(
	    wait_status("ca-b.pem", "held1.pem", V_OCSP_CERTSTATUS_GOOD, ANNOUNCED_S, &took),
	    "not released after %.3f s", took);
	out = openssl_ocsp("ca-b.pem", "held1.pem", "-nonce");
	ck_assert_msg(strstr(out, ": good") && strstr(out, "Response verify OK"), "%s", out);
}
END_TEST

START_TEST(several_certificates_in_one_request)
{
	char *out = sh("openssl ocsp -url %s/ -issuer %s -cert %s -serial 0x1234567890 -CAfile %s "
	               "-no_nonce 2>&1",
	               url, path("ca-a.pem"), path("a-good.pem"), path("ca-a.pem"));

	ck_assert_msg(strstr(out, "a-good.pem: good") && strstr(out, "0x1234567890: unknown") &&
	                  strstr(out, "Response verify OK"),
	              "%s", out);
}
END_TEST

START_TEST(too_many_certificates_is_malformed)
{
	char *out = sh("openssl ocsp -url %s/ -issuer %s -serial 1 -serial 2 -serial 3 -serial 4 "
	               "-serial 5 -CAfile %s -no_nonce 2>&1",
	               url, path("ca-a.pem"), path("ca-a.pem"));

	ck_assert_msg(strstr(out, "malformedrequest"), "%s", out);
}
END_TEST

START_TEST(junk_is_malformed)
{
	char *body = NULL;
	size_t n;
	const uint8_t junk[] = "this is not DER";
	long st =
	    http_do("/", junk, sizeof(junk) - 1, "application/ocsp-request", &body, &n, NULL, 0);

	ck_assert_int_eq(st, 200);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq((unsigned char)body[4], OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	free(body);
	st = http_get("/not%base64!", &body, &n, NULL, 0);
	ck_assert_int_eq(st, 200);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq((unsigned char)body[4], OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	free(body);
}
END_TEST

START_TEST(nonce_of_33_octets_is_malformed)
{
	uint8_t der[4096];
	size_t n = make_req("ca-a.pem", "a-good.pem", NULL, EVP_sha1(), 33, der, sizeof(der));
	struct answer a = ask(der, n, 1, "ca-a.pem");

	ck_assert_int_eq(a.response_status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	n = make_req("ca-a.pem", "a-good.pem", NULL, EVP_sha1(), 32, der, sizeof(der));
	a = ask(der, n, 1, "ca-a.pem");
	ck_assert_int_eq(a.response_status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	ck_assert_int_eq(a.nonce, 1);
}
END_TEST

START_TEST(issuer_not_served_is_unauthorized)
{
	char *out = sh("openssl ocsp -url %s/ -issuer %s -serial 0x10 -CAfile %s -no_nonce 2>&1",
	               url, path("stranger.pem"), path("stranger.pem"));

	ck_assert_msg(strstr(out, "unauthorized"), "%s", out);
}
END_TEST

START_TEST(nonces_beyond_the_rate_limit_get_the_presigned_answer)
{
	int echoed = 0, plain = 0;
	double t0, took;

	/* authority B answers at most 2 nonce requests a second (a bucket of 2); let it fill */
	usleep(1100000);
	t0 = now_s();
	for (int i = 0; i < 20; i++) {
		struct answer a = ask_cert("ca-b.pem", "b-good.pem", 0, 16);
		ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
		ck_assert(a.verified);
		if (a.nonce == 1)
			echoed++;
		else if (a.nonce == -1)
			plain++; /* the pre-signed answer, without nonce */
	}
	took = now_s() - t0;
	/* the burst of 2, then 2 a second of what the 20 requests took */
	ck_assert_msg(echoed >= 2 && echoed <= 3 + (int)(2 * took) && echoed + plain == 20,
	              "echoed %d, without %d, in %.2f s", echoed, plain, took);
	ck_assert_msg(took > 8 || plain >= 1, "nothing was limited in %.2f s", took);
}
END_TEST

/* A raw connection: send, then read what comes back until close or timeout. */
static size_t raw(const char *req, size_t len, char *out, size_t cap, int wait_ms)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
	size_t o = 0;
	ssize_t n;

	a.sin_port = htons((uint16_t)port);
	ck_assert(connect(s, (struct sockaddr *)&a, sizeof(a)) == 0);
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (len && write(s, req, len) != (ssize_t)len) {
		/* the server closed it first (a refused connection) */
		close(s);
		out[0] = '\0';
		return 0;
	}
	while (o + 1 < cap && (n = read(s, out + o, cap - 1 - o)) > 0)
		o += (size_t)n;
	out[o] = '\0';
	close(s);
	return o;
}

START_TEST(http_limits_and_keep_alive)
{
	char out[65536], big[4096];
	size_t n;

	/* two requests on one connection (pipelined), the second closes it */
	{
		char req[300];
		snprintf(req, sizeof(req),
		         "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
		         "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
		n = raw(req, strlen(req), out, sizeof(out), 5000);
		ck_assert_msg(n > 0 && strstr(out, "200 OK") &&
		                  strstr(strstr(out, "200 OK") + 6, "200 OK"),
		              "%s", out);
	}
	/* a head beyond max_header_bytes */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /health HTTP/1.1\r\nX-Big: ", 29);
	raw(big, sizeof(big), out, sizeof(out), 5000);
	ck_assert_msg(strstr(out, "HTTP/1.1 431"), "%s", out);
	/* a body beyond max_body_bytes */
	raw("POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 43, out, sizeof(out), 5000);
	ck_assert_msg(strstr(out, "HTTP/1.1 413"), "%s", out);
	/* chunked bodies are not accepted */
	raw("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 48, out, sizeof(out), 5000);
	ck_assert_msg(strstr(out, "HTTP/1.1 501"), "%s", out);
	raw("BREW / HTTP/1.1\r\n\r\n", 19, out, sizeof(out), 5000);
	ck_assert_msg(strstr(out, "HTTP/1.1 405"), "%s", out);
	raw("GET / HTTP/2.0\r\n\r\n", 18, out, sizeof(out), 5000);
	ck_assert_msg(strstr(out, "HTTP/1.1 505"), "%s", out);
}
END_TEST

START_TEST(slow_client_is_cut_off)
{
	char out[1024];
	double t0;

	/* The responder is there: a connection that ends fast below is its doing. */
	ck_assert_msg(strstr(health(), "\"status\": \"ok\""), "%s", health());
	/* half a request, then nothing: request_timeout_seconds is 2; kept at least 1 s (not
	 * refused) and cut off well before the client's own 10 s */
	t0 = now_s();
	raw("GET /health HTTP/1.1\r\nHo", 24, out, sizeof(out), 10000);
	ck_assert_msg(now_s() - t0 > 1.0 && now_s() - t0 < 9.0, "kept for %.1f s", now_s() - t0);
	/* an idle keep-alive connection is closed too (idle_timeout_seconds 5) */
	t0 = now_s();
	raw("", 0, out, sizeof(out), 12000);
	ck_assert_msg(now_s() - t0 > 3.0 && now_s() - t0 < 11.0, "idle for %.1f s", now_s() - t0);
}
END_TEST

START_TEST(a_restarted_responder_starts_warm_from_the_shared_copy)
{
	const char *h0;
	int st = ocspd_stop();

	ck_assert_msg(st == 0, "hsmca-ocspd did not exit cleanly (%d)", st);
	ocspd_start();
	h0 = health();
	ck_assert_msg(strstr(h0, "\"status\": \"ok\""), "%s", h0);
	ck_assert_msg(strstr(harness_slurp(path("ocspd.log")), "stored responses reused"),
	              "no warm start");
	/* Nothing needed signing: every answer came from the shared copy. */
	ck_assert_int_eq(metric_now("hsmca_ocspd_signed_total "), 0);
	ck_assert_int_eq(ask_cert("ca-a.pem", "a-good.pem", 0, 0).cert_status,
	                 V_OCSP_CERTSTATUS_GOOD);
}
END_TEST

/* The shared copy read a page at a time, as hsmca-ocspd's warm start reads it: at any page
 * size, the same rows in the same order as one read of the whole copy, none twice or left
 * out. */
START_TEST(the_shared_copy_read_page_by_page_is_the_whole_copy)
{
	struct db *db = owner_db();
	struct db_ocsp_response *all = NULL;
	struct db_ocsp_response_key at = {0};
	struct db_err err = {0};
	size_t n_all = 0, n;
	int cas[2] = {0, 0};
	int64_t now = time(NULL);

	ck_assert_int_eq(db_ocsp_responses_page(db, now, &at, 10000, &all, &n_all, &err), DB_OK);
	/* a-good, b-good and the rest of the fixture's certificates, both authorities */
	ck_assert_msg(n_all >= 3, "%zu rows", n_all);
	for (size_t i = 0; i < n_all; i++) {
		cas[0] |= all[i].authority_id == ca_a_id;
		cas[1] |= all[i].authority_id == ca_b_id;
	}
	ck_assert(cas[0] && cas[1]);
	for (size_t limit = 1; limit <= 3; limit++) {
		size_t seen = 0, pages = 0;
		memset(&at, 0, sizeof(at));
		do {
			struct db_ocsp_response *rows = NULL;
			ck_assert_int_eq(
			    db_ocsp_responses_page(db, now, &at, limit, &rows, &n, &err), DB_OK);
			ck_assert_uint_le(n, limit);
			for (size_t i = 0; i < n; i++, seen++) {
				const struct db_ocsp_response *a = &rows[i], *b = &all[seen];
				ck_assert_uint_lt(seen, n_all);
				ck_assert_int_eq(a->authority_id, b->authority_id);
				ck_assert_uint_eq(a->serial_len, b->serial_len);
				ck_assert(!memcmp(a->serial, b->serial, a->serial_len));
				ck_assert_str_eq(a->cert_id_hash, b->cert_id_hash);
				ck_assert_int_eq(a->status, b->status);
				ck_assert_uint_eq(a->der_len, b->der_len);
				ck_assert(!memcmp(a->der, b->der, a->der_len));
			}
			db_ocsp_responses_free(rows, n);
			ck_assert_uint_le(++pages, n_all + 1);
		} while (n == limit);
		ck_assert_uint_eq(seen, n_all);
	}
	{
		struct db_ocsp_response *none = NULL;
		ck_assert_int_eq(db_ocsp_responses_page(db, now, &at, 0, &none, &n, &err),
		                 DB_ERR_INVALID);
		ck_assert_ptr_null(none);
	}
	db_ocsp_responses_free(all, n_all);
	db_close(db);
}
END_TEST

/* While the shared copy cannot be read (here: locked by another transaction; at scale: still
 * being read) a restarted responder already answers: health 200 and "degraded", not in step,
 * the database up; a certificate not cached yet is looked up and signed, an unknown serial is
 * never good. Once the copy is read it is in step as before. */
START_TEST(a_warm_start_answers_before_the_shared_copy_is_read)
{
	struct db *db = owner_db();
	PGresult *r;
	char during[1024] = "", after[1024], *metrics_during = NULL;
	size_t metrics_len = 0;
	struct answer good, unknown;
	uint8_t der[4096];
	size_t n;
	int st = ocspd_stop();

	ck_assert_msg(st == 0, "hsmca-ocspd did not exit cleanly (%d)", st);
	r = PQexec(db_pgconn(db), "BEGIN; LOCK TABLE ocsp_responses IN ACCESS EXCLUSIVE MODE");
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(db_pgconn(db)));
	PQclear(r);
	ocspd_pid = harness_spawn_daemon("ocsp/hsmca-ocspd", path("ocspd.yaml"), "--verbose",
	                                 path("ocspd.log"));
	for (int i = 0; i < 200 && !strstr(during, "\"status\": \"degraded\""); i++) {
		usleep(50000);
		snprintf(during, sizeof(during), "%s", health());
	}
	/* which part is away: /metrics, not /health (which says the state alone) */
	metrics_listener_get("/metrics", &metrics_during, &metrics_len);
	good = ask_cert("ca-a.pem", "a-good.pem", 0, 0);
	n = make_req("ca-a.pem", NULL, "7e570000000000000002", EVP_sha1(), 0, der, sizeof(der));
	unknown = ask(der, n, 1, "ca-a.pem");
	snprintf(after, sizeof(after), "%s", health()); /* still before the copy is read */
	/* the lock goes before any assertion: later tests need the table */
	db_close(db);
	ck_assert_msg(!strncmp(during, "200 ", 4) && strstr(during, "\"status\": \"degraded\""),
	              "%s", during);
	ck_assert_msg(!strcmp(during, "200 {\"status\": \"degraded\"}\n"), "%s", during);
	ck_assert_int_eq(metric(metrics_during, "hsmca_ocspd_up{part=\"revocations\"} "), 0);
	ck_assert_int_eq(metric(metrics_during, "hsmca_ocspd_up{part=\"database\"} "), 1);
	free(metrics_during);
	ck_assert_int_eq(good.response_status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	ck_assert_int_eq(good.cert_status, V_OCSP_CERTSTATUS_GOOD);
	ck_assert(good.verified);
	ck_assert_int_ne(unknown.cert_status, V_OCSP_CERTSTATUS_GOOD);
	ck_assert_msg(strstr(after, "\"status\": \"degraded\""), "%s", after);
	for (int i = 0; i < 400 && !strstr(after, "\"status\": \"ok\""); i++) {
		usleep(50000);
		snprintf(after, sizeof(after), "%s", health());
	}
	ck_assert_msg(strstr(after, "\"status\": \"ok\""), "%s", after);
	ck_assert_msg(strstr(harness_slurp(path("ocspd.log")), "stored responses reused"),
	              "no warm start");
}
END_TEST

/* Occurrences of needle in text. */
static int count_in(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* SQL as the cluster's superuser (roles and other sessions are not the schema owner's). */
static void superuser_sql(const char *sql)
{
	char ci[512];
	PGconn *c;

	snprintf(ci, sizeof(ci), "host=%s port=5432 dbname=hsmca user=postgres", pg.dir);
	c = PQconnectdb(ci);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	harness_pg_exec_ok(c, sql);
	PQfinish(c);
}

START_TEST(database_stopped_cached_answers_still_served_then_resync)
{
	const char *serial = issue("pgdown", ca_a_id, "ca-a.pem", "ca-a");
	char s[64];
	int in_step;
	double took;
	struct answer a;
	uint8_t der[4096];
	size_t n;

	snprintf(s, sizeof(s), "%s", serial);
	ck_assert(wait_status("ca-a.pem", "pgdown.pem", V_OCSP_CERTSTATUS_GOOD, 5, &took));
	ck_assert_int_eq(harness_pgtest(&pg, "stop", NULL), 0);
	for (int i = 0; i < 100 && !strstr(health(), "degraded"); i++)
		usleep(50000);
	ck_assert_msg(strstr(health(), "\"status\": \"degraded\""), "%s", health());
	ck_assert_int_eq(metric_now("hsmca_ocspd_up{part=\"database\"} "), 0);
	a = ask_cert("ca-a.pem", "a-good.pem", 0, 0);
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
	ck_assert(a.verified);
	a = ask_cert("ca-b.pem", "b-good.pem", 1, 0);
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
	/* what it cannot know without the database: tryLater, never a guess */
	n = make_req("ca-a.pem", NULL, "7e570000000000000001", EVP_sha1(), 0, der, sizeof(der));
	a = ask(der, n, 1, "ca-a.pem");
	ck_assert_int_eq(a.response_status, OCSP_RESPONSE_STATUS_TRYLATER);
	a = ask_cert("ca-a.pem", "a-good.pem", 1, 16); /* a fresh "good" */
	ck_assert_int_eq(a.response_status, OCSP_RESPONSE_STATUS_TRYLATER);
	/* The database returns, and a revocation happens before the responder is back (its
	 * announcement is lost): it must still be found, by reading every status again. To be
	 * sure the announcement is lost, the responder's role may not log in until after it was
	 * sent (its connection, should it have made one already, is ended). */
	ck_assert_int_eq(harness_pgtest(&pg, "start", "--fast"), 0);
	in_step = count_in(harness_slurp(path("ocspd.log")), "in step with the database");
	superuser_sql("ALTER ROLE \"hsmca-ocspd\" NOLOGIN; SELECT pg_terminate_backend(pid) FROM "
	              "pg_stat_activity WHERE usename = 'hsmca-ocspd'");
	for (int i = 0; i < 400 && metric_now("hsmca_ocspd_up{part=\"database\"} ") != 0; i++)
		usleep(50000);
	ck_assert_int_eq(revoke_db(s, ca_a_id, 0, DB_REASON_SUPERSEDED), 1);
	ck_assert_int_eq(metric_now("hsmca_ocspd_up{part=\"database\"} "), 0);
	superuser_sql("ALTER ROLE \"hsmca-ocspd\" LOGIN");
	ck_assert_msg(
	    wait_status("ca-a.pem", "pgdown.pem", V_OCSP_CERTSTATUS_REVOKED, ANNOUNCED_S, &took),
	    "revocation during the outage never served");
	/* found by the resynchronisation, which logs itself once more when it has finished (the
	 * answer may be served a moment before the line is written: wait for it) */
	for (int i = 0; i < 600 && count_in(harness_slurp(path("ocspd.log")),
	                                    "in step with the database") <= in_step;
	     i++)
		usleep(50000);
	ck_assert_int_gt(count_in(harness_slurp(path("ocspd.log")), "in step with the database"),
	                 in_step);
	for (int i = 0; i < 100 && !strstr(health(), "\"status\": \"ok\""); i++)
		usleep(50000);
	ck_assert_msg(strstr(health(), "\"status\": \"ok\""), "%s", health());
}
END_TEST

START_TEST(keyd_stopped_cached_answers_served_signing_is_trylater)
{
	struct answer a;
	uint8_t der[4096];
	size_t n;

	ck_assert_int_eq(harness_keyd_stop(&h), 0);
	for (int i = 0; i < 100 && metric_now("hsmca_ocspd_up{part=\"keyd\"} ") != 0; i++)
		usleep(50000);
	ck_assert_msg(strstr(health(), "\"status\": \"degraded\""), "%s", health());
	a = ask_cert("ca-a.pem", "a-good.pem", 0, 0);
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
	ck_assert(a.verified);
	n = make_req("ca-a.pem", NULL, "7e570000000000000002", EVP_sha1(), 0, der, sizeof(der));
	a = ask(der, n, 1, "ca-a.pem");
	ck_assert_int_eq(a.response_status, OCSP_RESPONSE_STATUS_TRYLATER);
	ck_assert_int_eq(metric_now("hsmca_ocspd_up{part=\"keyd\"} "), 0);
	ck_assert_int_eq(harness_keyd_start(&h), 0);
	for (int i = 0; i < 100 && !strstr(health(), "\"status\": \"ok\""); i++)
		usleep(50000);
	a = ask(der, n, 1, "ca-a.pem");
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_UNKNOWN);
}
END_TEST

/* ---- a streaming replica ---- */

static char repdir[128];

static int as_postgres(const char *fmt, ...)
{
	char cmd[2048], full[2300], *argv[] = {"sh", "-c", full, NULL};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (geteuid() == 0)
		snprintf(full, sizeof(full), "cd / && runuser -u postgres -- %s", cmd);
	else
		snprintf(full, sizeof(full), "%s", cmd);
	return harness_run(argv, path("replica.log"));
}

static void replica_stop(void)
{
	if (repdir[0]) {
		as_postgres("/usr/lib/postgresql/15/bin/pg_ctl -D %s/data -m fast -w stop", repdir);
		sh("rm -rf -- %s", repdir);
		repdir[0] = '\0';
	}
}

/* A hot standby of the test cluster, streaming from it, on its own socket folder. */
static void replica_start(void)
{
	FILE *f;
	char conf[512];

	snprintf(repdir, sizeof(repdir), "/tmp/hsmca-ocspd-rep.XXXXXX");
	ck_assert(mkdtemp(repdir));
	if (geteuid() == 0)
		sh("chown postgres: %s && chmod 0700 %s", repdir, repdir);
	ck_assert_msg(as_postgres("/usr/lib/postgresql/15/bin/pg_basebackup -h %s -p 5432 -U "
	                          "postgres -D %s/data -R -X stream",
	                          pg.dir, repdir) == 0,
	              "pg_basebackup: %s", harness_slurp(path("replica.log")));
	snprintf(conf, sizeof(conf), "%s/data/postgresql.conf", repdir);
	f = fopen(conf, "a");
	ck_assert(f);
	fprintf(f, "\nunix_socket_directories = '%s'\nhot_standby = on\n", repdir);
	fclose(f);
	if (geteuid() == 0)
		sh("chown postgres: %s", conf);
	ck_assert_msg(as_postgres("/usr/lib/postgresql/15/bin/pg_ctl -D %s/data -l %s/log -w -t 60 "
	                          "start",
	                          repdir, repdir) == 0,
	              "replica: %s", harness_slurp(path("replica.log")));
}

START_TEST(reads_from_a_streaming_replica)
{
	char conf[2048], rep_ci[512], saved_url[128];
	int saved_port = port, rport = harness_free_port();
	pid_t main_pid = ocspd_pid;
	const char *serial;
	char s1[64], s2[64];
	double took;

	replica_start();
	snprintf(rep_ci, sizeof(rep_ci), "host=%s port=5432 dbname=hsmca user=hsmca-ocspd", repdir);
	snprintf(saved_url, sizeof(saved_url), "%s", url);
	port = rport;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	/* 1: reads from the replica, LISTEN and the shared copy on the primary */
	snprintf(conf, sizeof(conf),
	         "listen: {address: 127.0.0.1, port: %d}\n"
	         "database: \"%s connect_timeout=3\"\n"
	         "primary_database: \"%s connect_timeout=3\"\n"
	         "responder_certificates: [%s/ocsp-b.pem]\n",
	         port, rep_ci, ocspd_ci, dir);
	harness_write_text(path("ocspd-rep.yaml"), conf);
	ocspd_start_with(path("ocspd-rep.yaml"));
	serial = issue("rep1", ca_a_id, "ca-a.pem", "ca-a");
	snprintf(s1, sizeof(s1), "%s", serial);
	ck_assert(wait_status("ca-a.pem", "rep1.pem", V_OCSP_CERTSTATUS_GOOD, 5, &took));
	ck_assert_int_eq(revoke_db(s1, ca_a_id, 0, DB_REASON_KEY_COMPROMISE), 1);
	ck_assert_msg(
	    wait_status("ca-a.pem", "rep1.pem", V_OCSP_CERTSTATUS_REVOKED, ANNOUNCED_S, &took),
	    "replica with primary: not revoked after %.3f s", took);
	ocspd_stop();
	/* 2: the replica alone: no LISTEN possible, every status is read each second */
	snprintf(conf, sizeof(conf),
	         "listen: {address: 127.0.0.1, port: %d}\n"
	         "database: \"%s connect_timeout=3\"\n"
	         "responder_certificates: [%s/ocsp-b.pem]\n",
	         port, rep_ci, dir);
	harness_write_text(path("ocspd-rep.yaml"), conf);
	ocspd_start_with(path("ocspd-rep.yaml"));
	ck_assert_msg(strstr(harness_slurp(path("ocspd.log")), "the database is a standby"),
	              "no warning");
	serial = issue("rep2", ca_b_id, "ca-b.pem", "ca-b");
	snprintf(s2, sizeof(s2), "%s", serial);
	ck_assert(wait_status("ca-b.pem", "rep2.pem", V_OCSP_CERTSTATUS_GOOD, 5, &took));
	ck_assert_int_eq(revoke_db(s2, ca_b_id, 1, 0), 1);
	ck_assert_msg(
	    wait_status("ca-b.pem", "rep2.pem", V_OCSP_CERTSTATUS_REVOKED, ANNOUNCED_S, &took),
	    "replica alone: not held after %.3f s", took);
	fprintf(stderr, "test_ocspd: replica alone: hold served after %.3f s\n", took);
	{
		int st = ocspd_stop();
		ck_assert_msg(st == 0, "hsmca-ocspd did not exit cleanly (%d)", st);
	}
	ocspd_pid = main_pid;
	port = saved_port;
	snprintf(url, sizeof(url), "%s", saved_url);
	replica_stop();
}
END_TEST

START_TEST(connections_beyond_the_limit_are_closed_at_once)
{
	char conf[1024], saved_url[128], out[256];
	int saved_port = port, held[2], st;
	pid_t main_pid = ocspd_pid;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	double t0;

	snprintf(saved_url, sizeof(saved_url), "%s", url);
	port = harness_free_port();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	snprintf(conf, sizeof(conf),
	         "listen: {address: 127.0.0.1, port: %d}\nworkers: 1\n"
	         "database: \"%s connect_timeout=3\"\n"
	         "responder_certificates: [%s/ocsp-b.pem]\n"
	         "limits: {max_connections: 2, idle_timeout_seconds: 30}\n",
	         port, ocspd_ci, dir);
	harness_write_text(path("ocspd-limit.yaml"), conf);
	ocspd_start_with(path("ocspd-limit.yaml"));
	a.sin_port = htons((uint16_t)port);
	for (int i = 0; i < 2; i++) {
		held[i] = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert(connect(held[i], (struct sockaddr *)&a, sizeof(a)) == 0);
	}
	usleep(200000);
	/* the third is accepted and closed without an answer, at once: far sooner than the idle
	 * timeout (30 s) that would end it otherwise */
	t0 = now_s();
	ck_assert_int_eq(raw("GET /health HTTP/1.1\r\n\r\n", 24, out, sizeof(out), 20000), 0);
	ck_assert_msg(now_s() - t0 < 10.0, "closed after %.2f s", now_s() - t0);
	/* one of the two goes: there is room again (as soon as the server has seen it go) */
	close(held[0]);
	for (int i = 0; i < 400 && !strstr(health(), "\"status\": \"ok\""); i++)
		usleep(50000);
	ck_assert_msg(strstr(health(), "\"status\": \"ok\""), "%s", health());
	close(held[1]);
	st = ocspd_stop();
	ck_assert_msg(st == 0, "hsmca-ocspd did not exit cleanly (%d)", st);
	ocspd_pid = main_pid;
	port = saved_port;
	snprintf(url, sizeof(url), "%s", saved_url);
}
END_TEST

START_TEST(answers_are_signed_again_before_half_their_validity)
{
	struct db *db = owner_db();
	struct db_authority_settings set;
	struct db_err err = {0};
	struct answer a;
	time_t first;
	double t0 = now_s();

	/* validity 60 s: the settings are read within 10 s and every answer is signed again */
	db_authority_settings_default(&set);
	set.ocsp_validity_seconds = 60;
	ck_assert_msg(db_authority_settings_put(db, ca_a_id, &set, "test", &err) == DB_OK, "%s",
	              err.msg);
	db_close(db);
	do {
		usleep(200000);
		a = ask_cert("ca-a.pem", "a-good.pem", 0, 0);
	} while (a.next_update - a.this_update != 60 && now_s() - t0 < 20);
	ck_assert_msg(a.next_update - a.this_update == 60, "validity %ld",
	              (long)(a.next_update - a.this_update));
	ck_assert(a.verified);
	/* then it is replaced before half of those 60 s have passed */
	first = a.this_update;
	t0 = now_s();
	do {
		usleep(500000);
		a = ask_cert("ca-a.pem", "a-good.pem", 0, 0);
	} while (a.this_update == first && now_s() - t0 < 40);
	ck_assert_msg(a.this_update > first && a.this_update < first + 30,
	              "signed at %ld, again at %ld", (long)first, (long)a.this_update);
	ck_assert(a.verified);
	ck_assert_int_eq(a.cert_status, V_OCSP_CERTSTATUS_GOOD);
}
END_TEST

/* CK_NOFORK: Check's timeout does nothing; each test gets a deadline of its own. */
static void watchdog_arm(void)
{
	harness_watchdog_arm("test_ocspd", 300);
}

static Suite *suite(void)
{
	Suite *s = suite_create("ocspd");
	TCase *tc = tcase_create("ocspd");

	tcase_set_timeout(tc, 600);
	tcase_add_unchecked_fixture(tc, fixture_start, fixture_stop);
	tcase_add_checked_fixture(tc, watchdog_arm, harness_watchdog_disarm);
	tcase_add_test(tc, openssl_post_good_ca_signed);
	tcase_add_test(tc, openssl_post_good_delegated_with_responder_certificate);
	tcase_add_test(tc, openssl_post_with_nonce_gets_it_echoed);
	tcase_add_test(tc, get_good_without_and_with_nonce_ca_signed_and_delegated);
	tcase_add_test(tc, metrics_count_answers_and_report_freshness);
	tcase_add_test(tc, metrics_only_on_the_metrics_listener);
	tcase_add_test(tc, a_second_ocspd_on_a_taken_port_is_refused);
	tcase_add_test(tc, sha256_certid_is_answered_and_matched);
	tcase_add_test(tc, cache_headers_follow_rfc5019);
	tcase_add_test(tc, conditional_get_with_the_etag_is_not_modified);
	tcase_add_test(tc, unknown_serial_is_unknown_never_good);
	tcase_add_test(tc, a_flood_of_unknown_serials_takes_a_bounded_number_of_signatures);
	tcase_add_test(tc, reserved_but_unsigned_serial_is_not_good);
	tcase_add_test(tc, revocation_reaches_the_answer_by_its_announcement);
	tcase_add_test(tc, hold_and_release_reach_the_answer_by_their_announcement);
	tcase_add_test(tc, several_certificates_in_one_request);
	tcase_add_test(tc, too_many_certificates_is_malformed);
	tcase_add_test(tc, junk_is_malformed);
	tcase_add_test(tc, nonce_of_33_octets_is_malformed);
	tcase_add_test(tc, issuer_not_served_is_unauthorized);
	tcase_add_test(tc, nonces_beyond_the_rate_limit_get_the_presigned_answer);
	tcase_add_test(tc, http_limits_and_keep_alive);
	tcase_add_test(tc, slow_client_is_cut_off);
	tcase_add_test(tc, a_restarted_responder_starts_warm_from_the_shared_copy);
	tcase_add_test(tc, the_shared_copy_read_page_by_page_is_the_whole_copy);
	tcase_add_test(tc, a_warm_start_answers_before_the_shared_copy_is_read);
	tcase_add_test(tc, database_stopped_cached_answers_still_served_then_resync);
	tcase_add_test(tc, keyd_stopped_cached_answers_served_signing_is_trylater);
	tcase_add_test(tc, reads_from_a_streaming_replica);
	tcase_add_test(tc, connections_beyond_the_limit_are_closed_at_once);
	tcase_add_test(tc, answers_are_signed_again_before_half_their_validity);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	harness_die_init("test_ocspd", cleanup);
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	setup();
	sr = srunner_create(suite());
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* keep hsmca-ocspd's log where meson keeps its own */
	sh("cp %s %s/meson-logs/test_ocspd-ocspd.log", path("ocspd.log"), getenv("HSMCA_BUILD"));
	teardown();
	if (harness_bad_exits) {
		fprintf(stderr,
		        "test_ocspd: %d daemon run(s) did not exit cleanly (a sanitizer or leak "
		        "report, or a crash): see meson-logs/test_ocspd-ocspd.log\n",
		        harness_bad_exits);
		failed++;
	}
	return failed ? 1 : 0;
}
