/*
 * fault_load: the client side of the fault-injection run (tests/faults/run).
 *
 *   fault_load load  --url U --cacert F --token-file F --ca ISSUER.pem --stop-file F
 *                    --journal OUT [--threads N] [--max-seconds S] [--progress FILE]
 *                    [--errors FILE] [--seed-journal J --hold-release-only 1]
 *   fault_load check --journal J --db-dump D --ocsp-url U --ca ISSUER.pem
 *                    --responder OCSP.pem --crl CRL.der
 *
 * load: N threads issue, revoke, hold and release certificates through hsmca-cad's API until
 * the stop file appears, while tests/faults/run kills the daemons. Each thread owns the
 * certificates it received. Only acknowledged operations count: a certificate is recorded
 * when a 201 carried it (serial and SHA-256 of the DER, checked against the CA key); a state
 * change when a 200 (or, for a retried hold/release whose first try got no answer, the 409
 * that shows the first try took effect) acknowledged it. An operation without an answer is
 * retried until it is acknowledged or 120 s pass; then the certificate's expected state is
 * "either" (counted, not an anomaly). With --seed-journal J --hold-release-only 1 (the soak) the
 * clients start with J's good and held certificates and only hold and release them: a fixed
 * population whose every change makes hsmca-ocspd sign afresh. The journal has one line per
 * certificate: <serial hex> <sha256 of DER> <state: good|revoked|hold> <reason> [<alternative
 * state>]
 * With --progress FILE the number of acknowledged operations so far is written to FILE (replaced
 * whole, five times a second), so that tests/faults/run can tell how much work was done
 * between two kills. With --errors FILE every 5xx answer is appended to FILE as a line
 * "<Unix time with fractions> <status> <error name>", so that tests/faults/run can tell the
 * ones while a daemon was down from the rest.
 *
 * check: every journal certificate is in the database dump with the same DER hash and the
 * expected status; hsmca-ocspd answers it (signature checked) with the expected status and
 * reason; the CRL (signature checked) lists exactly the revoked and held ones with their
 * reasons, and nothing the database does not have as revoked or held. Rows the client never
 * received that are reserved or failed must not be "good" in OCSP. Prints the anomalies and
 * exits 1 if there are any.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "harness.h"

#define RETRY_SECONDS 120.0
#define MAX_THREADS 16

enum st { ST_GOOD, ST_REVOKED, ST_HOLD };
static const char *st_name[] = {"good", "revoked", "hold"};

struct cert {
	char serial[48]; /* lower-case hex, no leading zeros */
	char sha[65];
	enum st st;
	int reason; /* CRLReason when revoked; 6 when held */
	int alt;    /* -1, or the other state it may be in (an unacknowledged change) */
	int alt_reason;
};

static const char *opt_url, *opt_cacert, *opt_token_file, *opt_ca, *opt_stop, *opt_journal,
    *opt_dump, *opt_ocsp_url, *opt_responder, *opt_crl;
static const char *opt_seed, *opt_progress, *opt_errors;
static FILE *errors_file;
static int opt_threads = 3, opt_hold_release;
static double opt_max_seconds = 3600;
static char auth_header[300];
static X509 *issuer;

static atomic_long n_issue_ok, n_issue_unacked, n_revoke_ok, n_hold_ok, n_release_ok, n_retries,
    n_uncertain, n_anomalies;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int progress_stop;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void fatal(const char *what)
{
	fprintf(stderr, "fault_load: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(2);
}

static void anomaly(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	fputs("ANOMALY: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	atomic_fetch_add(&n_anomalies, 1);
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	if (!x) {
		fprintf(stderr, "fault_load: cannot read a certificate from %s\n", path);
		exit(2);
	}
	return x;
}

static void serial_hex(const ASN1_INTEGER *ai, char *out, size_t cap)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL, *p;

	if (!h)
		fatal("serial");
	p = h;
	while (*p == '0' && p[1])
		p++;
	snprintf(out, cap, "%s", p);
	for (char *q = out; *q; q++)
		if (*q >= 'A' && *q <= 'F')
			*q = (char)(*q - 'A' + 'a');
	OPENSSL_free(h);
	BN_free(bn);
}

/* ---- HTTP ---- */

struct client {
	CURL *c;
	struct curl_slist *hdrs;
	struct harness_buf resp;
	unsigned seed;
	struct cert *certs;
	size_t n, cap;
	int id;
};

static const char *error_name(struct client *cl);

/* POST path with body; returns the HTTP status, or 0 when no answer arrived (a 5xx is also
 * recorded in --errors). */
static long post(struct client *cl, const char *path, const char *body)
{
	char url[512];
	long code = 0;

	snprintf(url, sizeof(url), "%s%s", opt_url, path);
	cl->resp.len = 0;
	if (cl->resp.data)
		cl->resp.data[0] = '\0';
	curl_easy_setopt(cl->c, CURLOPT_URL, url);
	curl_easy_setopt(cl->c, CURLOPT_POSTFIELDS, body ? body : "");
	if (curl_easy_perform(cl->c) != CURLE_OK)
		return 0;
	curl_easy_getinfo(cl->c, CURLINFO_RESPONSE_CODE, &code);
	if (code >= 500 && errors_file) {
		struct timespec t;
		const char *name = error_name(cl);

		clock_gettime(CLOCK_REALTIME, &t);
		pthread_mutex_lock(&out_lock);
		fprintf(errors_file, "%lld.%03ld %ld %s\n", (long long)t.tv_sec,
		        t.tv_nsec / 1000000, code, name);
		fflush(errors_file);
		pthread_mutex_unlock(&out_lock);
	}
	return code;
}

static const char *error_name(struct client *cl)
{
	static __thread char name[64];
	json_t *o = cl->resp.data ? json_loads(cl->resp.data, 0, NULL) : NULL;
	const char *e = o ? json_string_value(json_object_get(o, "error")) : NULL;

	snprintf(name, sizeof(name), "%s", e ? e : "?");
	json_decref(o);
	return name;
}

/* ---- the workload ---- */

static struct cert *add_cert(struct client *cl);

static char *make_csr_body(unsigned char **spki, int *spki_len, int n)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *r = X509_REQ_new();
	X509_NAME *nm = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *san;
	char cn[64], sanv[80], *pem, *text, *s;
	BIO *b = BIO_new(BIO_s_mem());
	long len;
	json_t *o;

	snprintf(cn, sizeof(cn), "f%d.example.com", n);
	snprintf(sanv, sizeof(sanv), "DNS:%s", cn);
	san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sanv);
	if (!k || !r || !nm || !exts || !san || !b ||
	    !X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8, (const unsigned char *)"faults", -1,
	                                -1, 0) ||
	    !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
	                                0) ||
	    !X509_REQ_set_subject_name(r, nm) || !X509_REQ_set_pubkey(r, k) ||
	    !sk_X509_EXTENSION_push(exts, san) || !X509_REQ_add_extensions(r, exts) ||
	    !X509_REQ_sign(r, k, EVP_sha256()) || !PEM_write_bio_X509_REQ(b, r))
		fatal("making a CSR");
	len = BIO_get_mem_data(b, &pem);
	text = strndup(pem, len);
	o = json_pack("{s:s, s:s}", "profile", "tls-server", "csr", text);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (!s)
		fatal("json");
	*spki = NULL;
	*spki_len = i2d_PUBKEY(k, spki);
	json_decref(o);
	free(text);
	BIO_free(b);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(nm);
	X509_REQ_free(r);
	EVP_PKEY_free(k);
	return s;
}

static void do_issue(struct client *cl, int n)
{
	unsigned char *spki, *der = NULL, *got = NULL, md[32];
	int spki_len, der_len, got_len;
	char *body = make_csr_body(&spki, &spki_len, n);
	long code = post(cl, "/api/v1/certificates", body);
	json_t *o;
	const char *pem;
	BIO *b;
	X509 *x;
	struct cert *c;

	free(body);
	if (code != 201) {
		if (code != 0 && code < 500)
			anomaly("issue answered HTTP %ld %s", code, error_name(cl));
		atomic_fetch_add(&n_issue_unacked, 1);
		OPENSSL_free(spki);
		return;
	}
	o = json_loads(cl->resp.data, 0, NULL);
	pem = o ? json_string_value(json_object_get(o, "certificate")) : NULL;
	b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	got_len = x ? i2d_PUBKEY(X509_get0_pubkey(x), &got) : -1;
	if (!x || X509_verify(x, X509_get0_pubkey(issuer)) != 1 || got_len != spki_len ||
	    memcmp(got, spki, spki_len) != 0) {
		anomaly("a 201 carried no certificate signed by the CA for the CSR's key");
		goto out;
	}
	der_len = i2d_X509(x, &der);
	if (der_len <= 0 || !EVP_Digest(der, der_len, md, NULL, EVP_sha256(), NULL))
		fatal("DER");
	c = add_cert(cl);
	serial_hex(X509_get0_serialNumber(x), c->serial, sizeof(c->serial));
	for (int i = 0; i < 32; i++)
		sprintf(c->sha + 2 * i, "%02x", md[i]);
	c->st = ST_GOOD;
	c->reason = -1;
	c->alt = -1;
	atomic_fetch_add(&n_issue_ok, 1);
out:
	OPENSSL_free(der);
	OPENSSL_free(got);
	OPENSSL_free(spki);
	X509_free(x);
	BIO_free(b);
	json_decref(o);
}

static const char *reason_name(int r)
{
	return r == 1 ? "keyCompromise" : r == 4 ? "superseded" : "cessationOfOperation";
}

/* Move c to state to (reason) and retry until acknowledged. */
static void change_state(struct client *cl, struct cert *c, enum st to, int reason)
{
	char path[256], body[96];
	const char *verb = to == ST_REVOKED ? "revoke" : to == ST_HOLD ? "hold" : "release";
	double deadline = now() + RETRY_SECONDS;
	int tried = 0;

	snprintf(path, sizeof(path), "/api/v1/certificates/%s/%s", c->serial, verb);
	if (to == ST_REVOKED)
		snprintf(body, sizeof(body), "{\"reason\":\"%s\"}", reason_name(reason));
	for (;;) {
		long code = post(cl, path, to == ST_REVOKED ? body : NULL);

		if (code == 200 || (code == 409 && tried && to != ST_REVOKED)) {
			/* A 409 after an unanswered hold/release: the first try took effect. */
			c->st = to;
			c->reason = to == ST_REVOKED ? reason : to == ST_HOLD ? 6 : -1;
			atomic_fetch_add(to == ST_REVOKED ? &n_revoke_ok
			                 : to == ST_HOLD  ? &n_hold_ok
			                                  : &n_release_ok,
			                 1);
			return;
		}
		if (code != 0 && code < 500) {
			anomaly("%s of %s answered HTTP %ld %s", verb, c->serial, code,
			        error_name(cl));
			return;
		}
		tried = 1;
		if (now() > deadline) {
			c->alt = (int)to;
			c->alt_reason = to == ST_REVOKED ? reason : to == ST_HOLD ? 6 : -1;
			atomic_fetch_add(&n_uncertain, 1);
			return;
		}
		atomic_fetch_add(&n_retries, 1);
		usleep(300000);
	}
}

/* A random certificate of this client in state s (and certain), or NULL. */
static struct cert *pick(struct client *cl, enum st s)
{
	if (!cl->n)
		return NULL;
	for (int tries = 0; tries < 8; tries++) {
		struct cert *c = &cl->certs[rand_r(&cl->seed) % cl->n];

		if (c->st == s && c->alt < 0)
			return c;
	}
	return NULL;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	double end = now() + opt_max_seconds;
	int n = 0;

	while (access(opt_stop, F_OK) != 0 && now() < end) {
		int r = rand_r(&cl->seed) % 10;
		struct cert *c = NULL;

		if (opt_hold_release) {
			/* A fixed population: every change makes the responder sign afresh. */
			if ((c = pick(cl, ST_GOOD)))
				change_state(cl, c, ST_HOLD, 6);
			else if ((c = pick(cl, ST_HOLD)))
				change_state(cl, c, ST_GOOD, -1);
			continue;
		}
		if (r == 5 || r == 6) {
			if ((c = pick(cl, ST_GOOD)) || (c = pick(cl, ST_HOLD)))
				change_state(cl, c, ST_REVOKED, r == 5 ? 1 : 4);
		} else if (r == 7) {
			if ((c = pick(cl, ST_GOOD)))
				change_state(cl, c, ST_HOLD, 6);
		} else if (r == 8) {
			if ((c = pick(cl, ST_HOLD)))
				change_state(cl, c, ST_GOOD, -1);
		}
		if (!c)
			do_issue(cl, cl->id * 1000000 + n++);
		if (cl->resp.len == 0) /* no answer at all: the daemon is away */
			usleep(100000);
	}
	return NULL;
}

static void read_token(void)
{
	char tok[256];
	FILE *f = fopen(opt_token_file, "r");

	if (!f || !fgets(tok, sizeof(tok), f))
		fatal("cannot read the token file");
	fclose(f);
	tok[strcspn(tok, "\r\n")] = '\0';
	snprintf(auth_header, sizeof(auth_header), "Authorization: Bearer %s", tok);
}

static struct cert *add_cert(struct client *cl)
{
	if (cl->n == cl->cap) {
		cl->cap = cl->cap ? cl->cap * 2 : 256;
		cl->certs = realloc(cl->certs, cl->cap * sizeof(*cl->certs));
		if (!cl->certs)
			fatal("out of memory");
	}
	memset(&cl->certs[cl->n], 0, sizeof(*cl->certs));
	return &cl->certs[cl->n++];
}

/* The good and held certificates of an earlier run's journal, dealt out to the clients. */
static void seed_clients(struct client *cls)
{
	FILE *f = fopen(opt_seed, "r");
	char line[512], stn[16];
	int k = 0;

	if (!f)
		fatal("cannot read the seed journal");
	while (fgets(line, sizeof(line), f)) {
		struct cert tmp = {0};

		if (sscanf(line, "%47s %64s %15s %d", tmp.serial, tmp.sha, stn, &tmp.reason) != 4 ||
		    strlen(line) > 200 || !strcmp(stn, "revoked"))
			continue;
		tmp.st = !strcmp(stn, "good") ? ST_GOOD : ST_HOLD;
		tmp.alt = -1;
		*add_cert(&cls[k++ % opt_threads]) = tmp;
	}
	fclose(f);
}

static long acknowledged(void)
{
	return atomic_load(&n_issue_ok) + atomic_load(&n_revoke_ok) + atomic_load(&n_hold_ok) +
	       atomic_load(&n_release_ok);
}

/* --progress: the acknowledged operations so far, written to a temporary file and renamed over
 * opt_progress so that a reader never sees half a number. */
static void *progress_main(void *arg)
{
	char tmp[4096];

	(void)arg;
	snprintf(tmp, sizeof(tmp), "%s.tmp", opt_progress);
	while (!atomic_load(&progress_stop)) {
		FILE *f = fopen(tmp, "w");

		if (f) {
			fprintf(f, "%ld\n", acknowledged());
			if (fclose(f) == 0)
				rename(tmp, opt_progress);
		}
		usleep(200000);
	}
	return NULL;
}

static int run_load(void)
{
	pthread_t progress;
	struct client cls[MAX_THREADS];
	pthread_t t[MAX_THREADS];
	FILE *j;
	double t0 = now();

	read_token();
	for (int i = 0; i < opt_threads; i++) {
		struct client *cl = &cls[i];

		memset(cl, 0, sizeof(*cl));
		cl->id = i;
		cl->seed =
		    (unsigned)time(NULL) * 7919u + (unsigned)i * 104729u + (unsigned)getpid();
		cl->c = curl_easy_init();
		if (!cl->c)
			fatal("curl_easy_init");
		cl->hdrs = curl_slist_append(NULL, auth_header);
		cl->hdrs = curl_slist_append(cl->hdrs, "Content-Type: application/json");
		curl_easy_setopt(cl->c, CURLOPT_HTTPHEADER, cl->hdrs);
		curl_easy_setopt(cl->c, CURLOPT_CAINFO, opt_cacert);
		curl_easy_setopt(cl->c, CURLOPT_WRITEFUNCTION, harness_curl_collect);
		curl_easy_setopt(cl->c, CURLOPT_WRITEDATA, &cl->resp);
		curl_easy_setopt(cl->c, CURLOPT_TIMEOUT, 30L);
		curl_easy_setopt(cl->c, CURLOPT_CONNECTTIMEOUT, 5L);
		curl_easy_setopt(cl->c, CURLOPT_NOSIGNAL, 1L);
	}
	if (opt_seed)
		seed_clients(cls);
	for (int i = 0; i < opt_threads; i++)
		if (pthread_create(&t[i], NULL, client_main, &cls[i]))
			fatal("pthread_create");
	if (opt_progress && pthread_create(&progress, NULL, progress_main, NULL))
		fatal("pthread_create");
	j = fopen(opt_journal, "w");
	if (!j)
		fatal("cannot write the journal");
	for (int i = 0; i < opt_threads; i++) {
		struct client *cl = &cls[i];

		pthread_join(t[i], NULL);
		for (size_t k = 0; k < cl->n; k++) {
			struct cert *c = &cl->certs[k];

			fprintf(j, "%s %s %s %d", c->serial, c->sha, st_name[c->st], c->reason);
			if (c->alt >= 0)
				fprintf(j, " %s %d", st_name[c->alt], c->alt_reason);
			fputc('\n', j);
		}
		free(cl->certs);
		free(cl->resp.data);
		curl_slist_free_all(cl->hdrs);
		curl_easy_cleanup(cl->c);
	}
	if (fclose(j) != 0)
		fatal("writing the journal");
	if (opt_progress) {
		atomic_store(&progress_stop, 1);
		pthread_join(progress, NULL);
	}
	printf("operations (%.0f s): issued %ld (unacknowledged %ld), revoked %ld, held %ld, "
	       "released %ld; retries %ld; left uncertain %ld; anomalies %ld\n",
	       now() - t0, atomic_load(&n_issue_ok), atomic_load(&n_issue_unacked),
	       atomic_load(&n_revoke_ok), atomic_load(&n_hold_ok), atomic_load(&n_release_ok),
	       atomic_load(&n_retries), atomic_load(&n_uncertain), atomic_load(&n_anomalies));
	return atomic_load(&n_anomalies) ? 1 : 0;
}

/* ---- the check ---- */

struct row {
	char serial[48], status[16], sha[65];
	int reason, seen;
};

static struct row *rows;
static size_t nrows;

static struct row *find_row(const char *serial)
{
	for (size_t i = 0; i < nrows; i++)
		if (!strcmp(rows[i].serial, serial))
			return &rows[i];
	return NULL;
}

static void read_dump(void)
{
	FILE *f = fopen(opt_dump, "r");
	char line[512];
	size_t cap = 0;

	if (!f)
		fatal("cannot read the database dump");
	while (fgets(line, sizeof(line), f)) {
		struct row r = {0};

		if (sscanf(line, "%47s %15s %64s %d", r.serial, r.status, r.sha, &r.reason) != 4)
			continue;
		if (nrows == cap) {
			cap = cap ? cap * 2 : 1024;
			rows = realloc(rows, cap * sizeof(*rows));
			if (!rows)
				fatal("out of memory");
		}
		rows[nrows++] = r;
	}
	fclose(f);
}

static const char *db_status_of(enum st s)
{
	return s == ST_GOOD ? "issued" : s == ST_REVOKED ? "revoked" : "hold";
}

/* OCSP status of serial: 0 with status and reason set, or -1 when no valid answer came. */
static int ocsp_query(CURL *c, STACK_OF(X509) * resp_certs, const char *serial, int *status,
                      int *reason, char *err, size_t errlen)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	OCSP_CERTID *id = NULL;
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	int der_len, rc = -1, st, rs = -1;
	struct harness_buf b = {0};
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/ocsp-request");
	long code = 0;
	ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;

	if (!BN_hex2bn(&bn, serial) || !(ai = BN_to_ASN1_INTEGER(bn, NULL)) ||
	    !(id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(issuer),
	                            X509_get0_pubkey_bitstr(issuer), ai)) ||
	    !OCSP_request_add0_id(req, OCSP_CERTID_dup(id)) ||
	    (der_len = i2d_OCSP_REQUEST(req, &der)) <= 0)
		fatal("making an OCSP request");
	curl_easy_setopt(c, CURLOPT_URL, opt_ocsp_url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, der);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)der_len);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, harness_curl_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (curl_easy_perform(c) != CURLE_OK) {
		snprintf(err, errlen, "no answer from hsmca-ocspd");
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	p = (const unsigned char *)b.data;
	if (code != 200 || !p || !(resp = d2i_OCSP_RESPONSE(NULL, &p, (long)b.len))) {
		snprintf(err, errlen, "HTTP %ld without an OCSP response", code);
		goto out;
	}
	if ((st = OCSP_response_status(resp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		snprintf(err, errlen, "responseStatus %d", st);
		goto out;
	}
	if (!(bs = OCSP_response_get1_basic(resp)) ||
	    OCSP_basic_verify(bs, resp_certs, NULL, OCSP_TRUSTOTHER | OCSP_NOVERIFY) != 1) {
		snprintf(err, errlen, "the response's signature does not verify");
		goto out;
	}
	if (!OCSP_resp_find_status(bs, id, &st, &rs, &rev, &thisupd, &nextupd)) {
		snprintf(err, errlen, "the response does not answer for this serial");
		goto out;
	}
	*status = st;
	*reason = rs;
	rc = 0;
out:
	ERR_clear_error();
	curl_slist_free_all(h);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	free(b.data);
	OPENSSL_free(der);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_CERTID_free(id);
	OCSP_REQUEST_free(req);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return rc;
}

/* The OCSP answer, retried for up to 60 s while the responder is unavailable or tryLater. */
static int ocsp_status(CURL *c, STACK_OF(X509) * rc_certs, const char *serial, int *status,
                       int *reason, char *err, size_t errlen)
{
	double deadline = now() + 60;

	for (;;) {
		if (ocsp_query(c, rc_certs, serial, status, reason, err, errlen) == 0)
			return 0;
		if (now() > deadline)
			return -1;
		usleep(500000);
	}
}

static int ocsp_matches(enum st s, int reason, int status, int rs)
{
	if (s == ST_GOOD)
		return status == V_OCSP_CERTSTATUS_GOOD;
	if (status != V_OCSP_CERTSTATUS_REVOKED)
		return 0;
	return s == ST_HOLD ? rs == 6 : rs == reason || (reason == 0 && rs == -1);
}

struct crl_entry {
	char serial[48];
	int reason;
};

static int run_check(void)
{
	FILE *jf = fopen(opt_journal, "r"), *cf;
	X509_CRL *crl;
	STACK_OF(X509) *rc_certs = sk_X509_new_null();
	CURL *c = curl_easy_init();
	char line[512];
	long n_certs = 0, n_ocsp = 0, n_crl_listed = 0, n_either = 0, n_unsigned = 0;
	struct crl_entry *ce = NULL;
	int nce = 0, crl_ok;
	long crl_number = -1;
	STACK_OF(X509_REVOKED) * revs;

	if (!jf || !c || !rc_certs)
		fatal("cannot read the journal");
	sk_X509_push(rc_certs, read_cert(opt_responder));
	read_dump();

	/* The CRL: signed by the CA; its entries with reasons. */
	cf = fopen(opt_crl, "rb");
	crl = cf ? d2i_X509_CRL_fp(cf, NULL) : NULL;
	if (cf)
		fclose(cf);
	crl_ok = crl && X509_CRL_verify(crl, X509_get0_pubkey(issuer)) == 1;
	if (!crl_ok)
		anomaly("the CRL %s does not parse or does not verify with the CA key", opt_crl);
	revs = crl ? X509_CRL_get_REVOKED(crl) : NULL;
	nce = revs ? sk_X509_REVOKED_num(revs) : 0;
	ce = calloc(nce + 1, sizeof(*ce));
	for (int i = 0; i < nce; i++) {
		X509_REVOKED *r = sk_X509_REVOKED_value(revs, i);
		ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);

		serial_hex(X509_REVOKED_get0_serialNumber(r), ce[i].serial, sizeof(ce[i].serial));
		ce[i].reason = e ? (int)ASN1_ENUMERATED_get(e) : 0;
		ASN1_ENUMERATED_free(e);
	}

	while (fgets(line, sizeof(line), jf)) {
		struct cert jc = {0};
		char stn[16], altn[16] = "";
		int altr = -1, nf, status = -1, rs = -1, ok, crl_reason = -1;
		enum st alt = ST_GOOD;
		struct row *r;
		char err[160];

		nf = sscanf(line, "%47s %64s %15s %d %15s %d", jc.serial, jc.sha, stn, &jc.reason,
		            altn, &altr);
		if (nf < 4)
			continue;
		n_certs++;
		jc.st = !strcmp(stn, "good")      ? ST_GOOD
		        : !strcmp(stn, "revoked") ? ST_REVOKED
		                                  : ST_HOLD;
		jc.alt = -1;
		if (nf == 6) {
			alt = !strcmp(altn, "good")      ? ST_GOOD
			      : !strcmp(altn, "revoked") ? ST_REVOKED
			                                 : ST_HOLD;
			jc.alt = (int)alt;
			n_either++;
		}
		r = find_row(jc.serial);
		if (!r) {
			anomaly("certificate %s (received by a client) is not in the database",
			        jc.serial);
			continue;
		}
		r->seen = 1;
		if (strcmp(r->sha, jc.sha))
			anomaly("certificate %s: the database's DER differs from what the client "
			        "received",
			        jc.serial);
		/* The state as the database has it must be the expected one (or the alternative).
		 */
		{
			enum st dbst = !strcmp(r->status, "issued")    ? ST_GOOD
			               : !strcmp(r->status, "revoked") ? ST_REVOKED
			               : !strcmp(r->status, "hold")    ? ST_HOLD
			                                               : (enum st) - 1;
			if (dbst == jc.st && (dbst != ST_REVOKED || r->reason == jc.reason)) {
				/* as expected */
			} else if (jc.alt >= 0 && (int)dbst == jc.alt) {
				jc.st = alt; /* the unacknowledged change took effect */
				jc.reason = altr;
			} else {
				anomaly(
				    "certificate %s: database status %s (reason %d), expected %s "
				    "(reason %d)",
				    jc.serial, r->status, r->reason, db_status_of(jc.st),
				    jc.reason);
				continue;
			}
		}
		if (ocsp_status(c, rc_certs, jc.serial, &status, &rs, err, sizeof(err)) != 0) {
			anomaly("certificate %s: no valid OCSP answer: %s", jc.serial, err);
			continue;
		}
		ok = ocsp_matches(jc.st, jc.reason, status, rs);
		if (!ok)
			anomaly("certificate %s: OCSP says %s (reason %d), expected %s (reason %d)",
			        jc.serial, OCSP_cert_status_str(status), rs, st_name[jc.st],
			        jc.reason);
		else
			n_ocsp++;
		for (int i = 0; i < nce; i++)
			if (!strcmp(ce[i].serial, jc.serial))
				crl_reason = ce[i].reason;
		if (jc.st == ST_GOOD && crl_reason >= 0)
			anomaly("certificate %s: good, but listed in the CRL", jc.serial);
		else if (jc.st != ST_GOOD && crl_reason < 0)
			anomaly("certificate %s: %s, but not in the CRL", jc.serial,
			        st_name[jc.st]);
		else if (jc.st == ST_HOLD && crl_reason != 6)
			anomaly("certificate %s: held, but the CRL gives reason %d", jc.serial,
			        crl_reason);
		else if (jc.st == ST_REVOKED && crl_reason != jc.reason)
			anomaly("certificate %s: revoked (reason %d), but the CRL gives reason %d",
			        jc.serial, jc.reason, crl_reason);
		else if (jc.st != ST_GOOD)
			n_crl_listed++;
	}
	fclose(jf);

	/* Nothing listed that should not be: every CRL entry is revoked or held in the database
	 * (a lost release, a revocation undone, a serial never issued would show here). */
	for (int i = 0; i < nce; i++) {
		struct row *r = find_row(ce[i].serial);

		if (!r)
			anomaly("the CRL lists %s, which the database does not have", ce[i].serial);
		else if (strcmp(r->status, "revoked") && strcmp(r->status, "hold"))
			anomaly("the CRL lists %s, whose database status is %s", ce[i].serial,
			        r->status);
	}

	/* Rows no client received: a reservation or a failed signing must never be "good". */
	for (size_t i = 0; i < nrows; i++) {
		int status = -1, rs = -1;
		char err[160];

		if (rows[i].seen ||
		    (strcmp(rows[i].status, "reserved") && strcmp(rows[i].status, "failed")))
			continue;
		n_unsigned++;
		if (ocsp_status(c, rc_certs, rows[i].serial, &status, &rs, err, sizeof(err)) != 0)
			anomaly("%s row %s: no valid OCSP answer: %s", rows[i].status,
			        rows[i].serial, err);
		else if (status == V_OCSP_CERTSTATUS_GOOD)
			anomaly("%s row %s: OCSP says good", rows[i].status, rows[i].serial);
	}
	if (crl) {
		ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);

		crl_number = num ? ASN1_INTEGER_get(num) : -1;
		ASN1_INTEGER_free(num);
	}
	printf("checked %ld received certificates against the database (%zu rows): OCSP right "
	       "for %ld, %ld revoked or held listed in CRL number %ld; %ld with an "
	       "unacknowledged last change; %ld reserved/failed rows never good in OCSP; "
	       "anomalies %ld\n",
	       n_certs, nrows, n_ocsp, n_crl_listed, crl_number, n_either, n_unsigned,
	       atomic_load(&n_anomalies));
	free(ce);
	X509_CRL_free(crl);
	sk_X509_pop_free(rc_certs, X509_free);
	curl_easy_cleanup(c);
	free(rows);
	return atomic_load(&n_anomalies) ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: fault_load load --url U --cacert F --token-file F --ca F "
	                "--stop-file F --journal F [--threads N] [--max-seconds S]\n"
	                "                [--progress FILE] [--errors FILE]\n"
	                "       fault_load check --journal J --db-dump D --ocsp-url U --ca F "
	                "--responder F --crl F\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int rc;

	if (argc < 2)
		usage();
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--url"))
			opt_url = v;
		else if (!strcmp(a, "--cacert"))
			opt_cacert = v;
		else if (!strcmp(a, "--token-file"))
			opt_token_file = v;
		else if (!strcmp(a, "--ca"))
			opt_ca = v;
		else if (!strcmp(a, "--stop-file"))
			opt_stop = v;
		else if (!strcmp(a, "--journal"))
			opt_journal = v;
		else if (!strcmp(a, "--threads"))
			opt_threads = atoi(v);
		else if (!strcmp(a, "--max-seconds"))
			opt_max_seconds = atof(v);
		else if (!strcmp(a, "--db-dump"))
			opt_dump = v;
		else if (!strcmp(a, "--ocsp-url"))
			opt_ocsp_url = v;
		else if (!strcmp(a, "--responder"))
			opt_responder = v;
		else if (!strcmp(a, "--crl"))
			opt_crl = v;
		else if (!strcmp(a, "--progress"))
			opt_progress = v;
		else if (!strcmp(a, "--errors"))
			opt_errors = v;
		else if (!strcmp(a, "--seed-journal"))
			opt_seed = v;
		else if (!strcmp(a, "--hold-release-only"))
			opt_hold_release = atoi(v);
		else
			usage();
	}
	if (opt_threads < 1 || opt_threads > MAX_THREADS || !opt_ca || !opt_journal)
		usage();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	issuer = read_cert(opt_ca);
	if (!strcmp(argv[1], "load")) {
		if (!opt_url || !opt_cacert || !opt_token_file || !opt_stop)
			usage();
		if (opt_errors && !(errors_file = fopen(opt_errors, "a")))
			fatal("cannot write the errors file");
		rc = run_load();
		if (errors_file)
			fclose(errors_file);
	} else if (!strcmp(argv[1], "check")) {
		if (!opt_dump || !opt_ocsp_url || !opt_responder || !opt_crl)
			usage();
		rc = run_check();
	} else {
		usage();
	}
	X509_free(issuer);
	curl_global_cleanup();
	return rc;
}
