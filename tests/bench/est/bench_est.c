/*
 * bench_est: device enrolments per second through hsmca-cad's EST server, beside issuance of
 * the same kind of request through the API.
 *
 * Before anything is timed it makes a pool of PKCS#10 requests, each with a fresh software
 * P-256 key and its own device identity (CN=bench-dev-N), so that no key or identity is used
 * twice. Then, for each client count and round, it runs that many threads for S seconds; each
 * request takes the next CSR of the pool and opens a fresh TLS connection, as a device
 * enrolling on first boot does. Mode "est": POST /.well-known/est/simpleenroll, base64 DER,
 * HTTP Basic with a provisioning token. Mode "api": POST /api/v1/certificates (JSON with the
 * PEM CSR) as an officer over mutual TLS, same profile. The modes alternate within each round
 * so that noise on a shared machine falls on both alike. Per mode and count it prints
 * requests/s and p50/p99 latency, the median over the rounds, and the ratio est/api.
 *
 * Any answer other than 200 (EST) or 201 (API) ends the run with exit status 1. The first
 * certificate of each thread and round is checked: signed by the CA, carrying the CSR's key.
 *
 * Run it with tests/bench/est/run. The provisioning token (one per thread, with enough uses)
 * is read from the file named by HSMCA_BENCH_EST_TOKENS, one per line.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "bench_util.h"
#include "harness.h"

#define MAX_COUNTS 8
#define MAX_ROUNDS 16
#define MAX_THREADS 64

static const char *url_base, *cacert, *ca_file, *api_cert, *api_key, *profile = "device";
static double seconds = 2;
static int rounds = 3, pool_n = 8192;
static int counts[MAX_COUNTS] = {1, 4, 16}, ncounts = 3;
static char tokens[MAX_THREADS][160];
static int ntokens;

struct csr {
	char *b64;  /* base64 of the DER, for EST */
	char *json; /* {"profile", "csr"} for the API */
	unsigned char *spki;
	int spki_len;
};
static struct csr *pool;
static atomic_int next_csr, failed;
static EVP_PKEY *ca_pub;

static void fatal(const char *what)
{
	fprintf(stderr, "bench_est: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void make_pool(void)
{
	pool = calloc((size_t)pool_n, sizeof(*pool));
	if (!pool)
		fatal("out of memory");
	for (int i = 0; i < pool_n; i++) {
		EVP_PKEY *k = EVP_EC_gen("P-256");
		X509_REQ *req = X509_REQ_new();
		X509_NAME *n = X509_NAME_new();
		unsigned char *der = NULL;
		char cn[64], *pem, *data;
		BIO *b = BIO_new(BIO_s_mem());
		long plen;
		int len;

		snprintf(cn, sizeof(cn), "bench-dev-%d-%ld", i, (long)time(NULL));
		if (!k || !req || !n || !b ||
		    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (unsigned char *)cn, -1, -1,
		                                0) ||
		    !X509_REQ_set_subject_name(req, n) || !X509_REQ_set_pubkey(req, k) ||
		    !X509_REQ_sign(req, k, EVP_sha256()) || (len = i2d_X509_REQ(req, &der)) <= 0 ||
		    !PEM_write_bio_X509_REQ(b, req) || (plen = BIO_get_mem_data(b, &data)) <= 0)
			fatal("making a CSR");
		pool[i].b64 = malloc((size_t)(4 * ((len + 2) / 3) + 1));
		EVP_EncodeBlock((unsigned char *)pool[i].b64, der, len);
		pem = strndup(data, (size_t)plen);
		pool[i].json = malloc(strlen(pem) * 2 + 128);
		{
			/* PEM has newlines only: escape them for JSON. */
			char *o = pool[i].json;
			o += sprintf(o, "{\"profile\":\"%s\",\"csr\":\"", profile);
			for (char *p = pem; *p; p++) {
				if (*p == '\n') {
					*o++ = '\\';
					*o++ = 'n';
				} else {
					*o++ = *p;
				}
			}
			strcpy(o, "\"}");
		}
		pool[i].spki_len = i2d_PUBKEY(k, &pool[i].spki);
		free(pem);
		OPENSSL_free(der);
		BIO_free(b);
		X509_NAME_free(n);
		X509_REQ_free(req);
		EVP_PKEY_free(k);
	}
}

/* The certificate in an answer: EST's base64 PKCS#7, or the API's JSON "certificate". */
static X509 *answer_cert(int est, const char *body)
{
	X509 *x = NULL;

	if (est) {
		size_t n = strlen(body), k = 0;
		char *clean = malloc(n + 1);
		unsigned char *der = malloc(n);
		const unsigned char *p;
		PKCS7 *p7;
		int len;
		for (size_t i = 0; i < n; i++)
			if (body[i] != '\r' && body[i] != '\n')
				clean[k++] = body[i];
		len = EVP_DecodeBlock(der, (unsigned char *)clean, (int)k);
		while (k > 0 && clean[k - 1] == '=') {
			k--;
			len--;
		}
		p = der;
		p7 = len > 0 ? d2i_PKCS7(NULL, &p, len) : NULL;
		if (p7 && PKCS7_type_is_signed(p7) && sk_X509_num(p7->d.sign->cert) > 0)
			x = X509_dup(sk_X509_value(p7->d.sign->cert, 0));
		PKCS7_free(p7);
		free(clean);
		free(der);
	} else {
		const char *s = strstr(body, "-----BEGIN CERTIFICATE-----");
		const char *e = s ? strstr(s, "-----END CERTIFICATE-----") : NULL;
		if (s && e) {
			char *pem = strndup(s, (size_t)(e - s) + 25), *w = pem;
			BIO *b;
			/* Undo JSON's "\n". */
			for (char *r = pem; *r; r++) {
				if (r[0] == '\\' && r[1] == 'n') {
					*w++ = '\n';
					r++;
				} else {
					*w++ = *r;
				}
			}
			*w = '\0';
			b = BIO_new_mem_buf(pem, -1);
			x = PEM_read_bio_X509(b, NULL, NULL, NULL);
			BIO_free(b);
			free(pem);
		}
	}
	return x;
}

static int check(int est, const char *body, const struct csr *c)
{
	X509 *x = answer_cert(est, body);
	unsigned char *spki = NULL;
	int len = x ? i2d_PUBKEY(X509_get0_pubkey(x), &spki) : -1;
	int ok = x && X509_verify(x, ca_pub) == 1 && len == c->spki_len &&
	         !memcmp(spki, c->spki, (size_t)len);

	OPENSSL_free(spki);
	X509_free(x);
	return ok;
}

struct worker {
	pthread_t t;
	int idx, est;
	double until;
	long done;
	double *lat;
	size_t nlat, caplat;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	char url[512], auth[256];
	int first = 1;

	snprintf(url, sizeof(url), "%s%s", url_base,
	         w->est ? "/.well-known/est/simpleenroll" : "/api/v1/certificates");
	snprintf(auth, sizeof(auth), "bench-%d:%s", w->idx, tokens[w->idx % ntokens]);
	while (!atomic_load(&failed) && bench_now() < w->until) {
		int i = atomic_fetch_add(&next_csr, 1);
		struct curl_slist *h = NULL;
		struct harness_buf b = {0};
		CURL *c;
		long st = 0;
		double t0;

		if (i >= pool_n) {
			fprintf(stderr, "bench_est: the CSR pool (%d) ran out; use --pool\n",
			        pool_n);
			atomic_store(&failed, 1);
			break;
		}
		c = curl_easy_init();
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_CAINFO, cacert);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, harness_curl_collect);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		if (w->est) {
			h = curl_slist_append(h, "Content-Type: application/pkcs10");
			curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(c, CURLOPT_USERPWD, auth);
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, pool[i].b64);
		} else {
			h = curl_slist_append(h, "Content-Type: application/json");
			curl_easy_setopt(c, CURLOPT_SSLCERT, api_cert);
			curl_easy_setopt(c, CURLOPT_SSLKEY, api_key);
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, pool[i].json);
		}
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		t0 = bench_now();
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
		if (w->nlat == w->caplat) {
			w->caplat = w->caplat ? 2 * w->caplat : 1024;
			w->lat = realloc(w->lat, w->caplat * sizeof(double));
		}
		w->lat[w->nlat++] = bench_now() - t0;
		if (st != (w->est ? 200 : 201)) {
			fprintf(stderr, "bench_est: %s answered %ld: %.300s\n", url, st,
			        b.data ? b.data : "");
			atomic_store(&failed, 1);
		} else if (first) {
			if (!check(w->est, b.data ? b.data : "", &pool[i])) {
				fprintf(stderr, "bench_est: a certificate did not check out\n");
				atomic_store(&failed, 1);
			}
			first = 0;
		}
		if (st == (w->est ? 200 : 201))
			w->done++;
		free(b.data);
		curl_slist_free_all(h);
		curl_easy_cleanup(c);
	}
	return NULL;
}

/* One timed run: n threads for S seconds. Rate, p50 and p99 in ms. */
static void one(int est, int n, double *rate, double *p50, double *p99)
{
	struct worker w[MAX_THREADS] = {0};
	double t0 = bench_now(), *all;
	size_t total = 0, k = 0;
	long done = 0;

	for (int i = 0; i < n; i++) {
		w[i].idx = i;
		w[i].est = est;
		w[i].until = t0 + seconds;
		pthread_create(&w[i].t, NULL, work, &w[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].t, NULL);
		done += w[i].done;
		total += w[i].nlat;
	}
	*rate = (double)done / (bench_now() - t0);
	all = malloc((total ? total : 1) * sizeof(double));
	for (int i = 0; i < n; i++) {
		memcpy(all + k, w[i].lat, w[i].nlat * sizeof(double));
		k += w[i].nlat;
		free(w[i].lat);
	}
	bench_sort(all, total);
	*p50 = 1e3 * bench_pct(all, total, 0.5);
	*p99 = 1e3 * bench_pct(all, total, 0.99);
	free(all);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: bench_est --url U --cacert F --ca F --api-cert F --api-key F\n"
	        "                 [--profile NAME] [--seconds S] [--rounds R] [--clients 1,4,16]\n"
	        "                 [--pool N]\n"
	        "The provisioning tokens are read from the file named by "
	        "HSMCA_BENCH_EST_TOKENS.\n");
}

int main(int argc, char **argv)
{
	double res[2][MAX_COUNTS][3][MAX_ROUNDS];
	const char *tf = getenv("HSMCA_BENCH_EST_TOKENS");
	const struct bench_opt opts[] = {
	    BENCH_OPT_NEEDED("url", &url_base),
	    BENCH_OPT_NEEDED("cacert", &cacert),
	    BENCH_OPT_NEEDED("ca", &ca_file),
	    BENCH_OPT_NEEDED("api-cert", &api_cert),
	    BENCH_OPT_NEEDED("api-key", &api_key),
	    BENCH_OPT_STR("profile", &profile),
	    BENCH_OPT_SECONDS(&seconds),
	    BENCH_OPT_ROUNDS(&rounds, MAX_ROUNDS),
	    BENCH_OPT_LIST("clients", counts, ncounts, MAX_THREADS),
	    BENCH_OPT_POOL(&pool_n),
	    {0},
	};
	FILE *f;
	double t;
	int rc = bench_parse_opts("bench_est", argc, argv, opts, usage);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (!tf) {
		fprintf(stderr, "bench_est: HSMCA_BENCH_EST_TOKENS names no file\n");
		usage(stderr);
		return 2;
	}
	if (!(f = fopen(tf, "r")))
		fatal("cannot read the token file");
	while (ntokens < MAX_THREADS && fgets(tokens[ntokens], sizeof(tokens[0]), f)) {
		tokens[ntokens][strcspn(tokens[ntokens], "\n")] = '\0';
		if (tokens[ntokens][0])
			ntokens++;
	}
	fclose(f);
	if (!ntokens)
		fatal("no provisioning token");
	{
		FILE *cf = fopen(ca_file, "r");
		X509 *ca = cf ? PEM_read_X509(cf, NULL, NULL, NULL) : NULL;
		if (cf)
			fclose(cf);
		if (!ca || !(ca_pub = X509_get_pubkey(ca)))
			fatal("cannot read the CA certificate");
		X509_free(ca);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	t = bench_now();
	make_pool();
	printf("CSR pool: %d fresh P-256 keys and CSRs in %.2f s (%.0f us each, not timed below)\n",
	       pool_n, bench_now() - t, 1e6 * (bench_now() - t) / pool_n);
	for (int r = 0; r < rounds && !atomic_load(&failed); r++)
		for (int ci = 0; ci < ncounts && !atomic_load(&failed); ci++) {
			/* Alternate which mode goes first, and walk the counts both ways. */
			int c = r % 2 ? ncounts - 1 - ci : ci;
			for (int m = 0; m < 2 && !atomic_load(&failed); m++) {
				int est = (m + r) % 2 == 0;
				one(est, counts[c], &res[est][c][0][r], &res[est][c][1][r],
				    &res[est][c][2][r]);
			}
		}
	if (atomic_load(&failed))
		return 1;
	printf("%-8s %-10s %12s %10s %10s\n", "clients", "mode", "requests/s", "p50 ms", "p99 ms");
	for (int c = 0; c < ncounts; c++) {
		double m[2][3];
		for (int est = 1; est >= 0; est--) {
			for (int k = 0; k < 3; k++)
				m[est][k] = bench_median(res[est][c][k], (size_t)rounds);
			printf("%-8d %-10s %12.0f %10.1f %10.1f\n", counts[c], est ? "est" : "api",
			       m[est][0], m[est][1], m[est][2]);
		}
		printf("%-8d %-10s %12.2f\n", counts[c], "est/api", m[1][0] / m[0][0]);
	}
	printf("(median of %d rounds of %.1f s each; a fresh TLS connection per request)\n", rounds,
	       seconds);
	EVP_PKEY_free(ca_pub);
	curl_global_cleanup();
	return 0;
}
