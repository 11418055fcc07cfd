/*
 * bench_issue: certificates issued per second through hsmca-cad's API.
 *
 * Makes a pool of PKCS#10 CSRs (fresh software P-256 keys, one per CSR) before anything is
 * timed, then for each client count runs that many threads, each with one keep-alive HTTPS
 * connection (one libcurl easy handle per thread), POSTing /api/v1/certificates for S seconds.
 * Per count it reports certificates/s and the p50/p99 latency of a request, the median over R
 * rounds; rounds walk the client counts forwards and backwards in turn so that noise on a
 * shared machine falls on all counts alike. Any answer other than 201 ends the run with exit
 * status 1. Every thread's first and last certificate of every round is checked: signed by
 * the CA certificate, and carrying the public key of the CSR it was asked for.
 *
 * Run it with tests/bench/issue/run, which sets up PostgreSQL, keyd and hsmca-cad.
 * The API token is read from the file named by HSMCA_BENCH_TOKEN_FILE (never an argument).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bench_util.h"
#include "harness.h"

#define MAX_COUNTS 16
#define MAX_ROUNDS 32

static const char *url_base, *cacert, *ca_file, *profile = "tls-server", *csr_dir;
static double seconds = 3;
static int rounds = 3, pool_n = 4096, csr_dir_n = 0, verbose;
static int counts[MAX_COUNTS] = {1, 2, 4, 8, 16, 32}, ncounts = 6;
static char auth_header[256];

struct csr {
	char *body;          /* the JSON request */
	unsigned char *spki; /* DER SubjectPublicKeyInfo, to check the answer */
	int spki_len;
};
static struct csr *pool;
static atomic_uint next_csr;
static EVP_PKEY *ca_key;
static atomic_int failed;
static atomic_long verified;

static void fatal(const char *what)
{
	fprintf(stderr, "bench_issue: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* ---- the CSR pool ---- */

static char *json_body(const char *pem)
{
	json_t *o = json_pack("{s:s, s:s}", "profile", profile, "csr", pem);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (!s)
		fatal("json_pack");
	return s;
}

static void make_pool(void)
{
	pool = calloc(pool_n, sizeof(*pool));
	if (!pool)
		fatal("out of memory");
	for (int i = 0; i < pool_n; i++) {
		EVP_PKEY *k = EVP_EC_gen("P-256");
		X509_REQ *r = X509_REQ_new();
		X509_NAME *n = X509_NAME_new();
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *san;
		char cn[64], sanv[80], *pem;
		BIO *b = BIO_new(BIO_s_mem());
		long len;

		snprintf(cn, sizeof(cn), "host%d.example.com", i);
		snprintf(sanv, sizeof(sanv), "DNS:%s", cn);
		san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sanv);
		if (!k || !r || !n || !exts || !san || !b ||
		    !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
		                                (const unsigned char *)"hsmca bench", -1, -1, 0) ||
		    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
		                                -1, -1, 0) ||
		    !X509_REQ_set_subject_name(r, n) || !X509_REQ_set_pubkey(r, k) ||
		    !sk_X509_EXTENSION_push(exts, san) || !X509_REQ_add_extensions(r, exts) ||
		    !X509_REQ_sign(r, k, EVP_sha256()) || !PEM_write_bio_X509_REQ(b, r))
			fatal("making a CSR");
		len = BIO_get_mem_data(b, &pem);
		{
			char *text = strndup(pem, len);

			pool[i].body = json_body(text);
			if (csr_dir && i < csr_dir_n) {
				char path[4096];
				FILE *f;

				snprintf(path, sizeof(path), "%s/csr-%05d.pem", csr_dir, i);
				f = fopen(path, "w");
				if (!f || fputs(text, f) < 0 || fclose(f) != 0)
					fatal("writing a CSR file");
			}
			free(text);
		}
		pool[i].spki = NULL;
		pool[i].spki_len = i2d_PUBKEY(k, &pool[i].spki);
		if (pool[i].spki_len <= 0)
			fatal("i2d_PUBKEY");
		BIO_free(b);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		X509_NAME_free(n);
		X509_REQ_free(r);
		EVP_PKEY_free(k);
	}
}

/* ---- HTTP ---- */

/* Check an answer: a certificate signed by the CA, for the key of pool[idx]. */
static int check_answer(const char *body, unsigned idx)
{
	json_error_t je;
	json_t *o = json_loads(body, 0, &je);
	const char *pem = o ? json_string_value(json_object_get(o, "certificate")) : NULL;
	BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	unsigned char *spki = NULL;
	int len = x ? i2d_PUBKEY(X509_get0_pubkey(x), &spki) : -1, ok;

	ok = x && X509_verify(x, ca_key) == 1 && len == pool[idx].spki_len &&
	     !memcmp(spki, pool[idx].spki, len);
	OPENSSL_free(spki);
	X509_free(x);
	BIO_free(b);
	json_decref(o);
	if (ok)
		atomic_fetch_add(&verified, 1);
	return ok ? 0 : -1;
}

struct client {
	pthread_t t;
	CURL *c;
	struct curl_slist *hdrs;
	struct harness_buf resp;
	double *lat; /* seconds per request in this round */
	size_t nlat, caplat;
	long connects; /* new connections made during the timed part */
	double stop;
};

static pthread_barrier_t barrier;
static double t_start, t_end;

/* One request; returns the latency or -1 (and reports) on anything but 201. */
static double one_request(struct client *cl, int check)
{
	unsigned idx = atomic_fetch_add(&next_csr, 1) % (unsigned)pool_n;
	long code = 0, nc = 0;
	double t0, t1;
	CURLcode rc;

	cl->resp.len = 0;
	curl_easy_setopt(cl->c, CURLOPT_POSTFIELDS, pool[idx].body);
	t0 = bench_now();
	rc = curl_easy_perform(cl->c);
	t1 = bench_now();
	curl_easy_getinfo(cl->c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(cl->c, CURLINFO_NUM_CONNECTS, &nc);
	cl->connects += nc;
	if (rc != CURLE_OK || code != 201) {
		if (!atomic_exchange(&failed, 1))
			fprintf(stderr, "bench_issue: request failed: %s, HTTP %ld: %.400s\n",
			        curl_easy_strerror(rc), code, cl->resp.data ? cl->resp.data : "");
		return -1;
	}
	if (check && check_answer(cl->resp.data, idx) != 0) {
		if (!atomic_exchange(&failed, 1))
			fprintf(stderr, "bench_issue: a returned certificate does not verify with "
			                "the CA certificate or does not hold the CSR's key\n");
		return -1;
	}
	return t1 - t0;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	double lat, last_ok = -1;

	/* Warm-up, not timed: opens the connection (TLS handshake) and checks an answer. */
	if (one_request(cl, 1) < 0)
		atomic_store(&failed, 1);
	cl->connects = 0;
	pthread_barrier_wait(&barrier);
	pthread_barrier_wait(&barrier); /* t_start, t_end set by the main thread */
	while (!atomic_load(&failed)) {
		int first = cl->nlat == 0;

		if (bench_now() >= t_end)
			break;
		lat = one_request(cl, first);
		if (lat < 0)
			break;
		if (cl->nlat == cl->caplat) {
			cl->caplat = cl->caplat ? cl->caplat * 2 : 4096;
			cl->lat = realloc(cl->lat, cl->caplat * sizeof(double));
			if (!cl->lat)
				fatal("out of memory");
		}
		cl->lat[cl->nlat++] = lat;
		last_ok = lat;
	}
	cl->stop = bench_now();
	/* The last certificate of the round is checked too (not timed). */
	if (last_ok >= 0 && !atomic_load(&failed) && one_request(cl, 1) < 0)
		atomic_store(&failed, 1);
	return NULL;
}

struct result {
	double rate, p50, p99;
	long reqs, connects;
};

static void setup_handle(struct client *cl)
{
	char url[512];

	snprintf(url, sizeof(url), "%s/api/v1/certificates", url_base);
	cl->c = curl_easy_init();
	if (!cl->c)
		fatal("curl_easy_init");
	cl->hdrs = curl_slist_append(NULL, auth_header);
	cl->hdrs = curl_slist_append(cl->hdrs, "Content-Type: application/json");
	curl_easy_setopt(cl->c, CURLOPT_URL, url);
	curl_easy_setopt(cl->c, CURLOPT_HTTPHEADER, cl->hdrs);
	curl_easy_setopt(cl->c, CURLOPT_CAINFO, cacert);
	curl_easy_setopt(cl->c, CURLOPT_WRITEFUNCTION, harness_curl_collect);
	curl_easy_setopt(cl->c, CURLOPT_WRITEDATA, &cl->resp);
	curl_easy_setopt(cl->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cl->c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(cl->c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(cl->c, CURLOPT_MAXCONNECTS, 1L);
}

static struct result run_cell(int n)
{
	struct client *cl = calloc(n, sizeof(*cl));
	struct result r = {0};
	double *all, last_stop = 0;
	size_t total = 0, k = 0;

	if (!cl)
		fatal("out of memory");
	pthread_barrier_init(&barrier, NULL, n + 1);
	for (int i = 0; i < n; i++) {
		setup_handle(&cl[i]);
		if (pthread_create(&cl[i].t, NULL, client_main, &cl[i]))
			fatal("pthread_create");
	}
	pthread_barrier_wait(&barrier); /* every client is connected */
	t_start = bench_now();
	t_end = t_start + seconds;
	pthread_barrier_wait(&barrier);
	for (int i = 0; i < n; i++) {
		pthread_join(cl[i].t, NULL);
		total += cl[i].nlat;
		r.connects += cl[i].connects;
		if (cl[i].stop > last_stop)
			last_stop = cl[i].stop;
	}
	pthread_barrier_destroy(&barrier);
	all = malloc((total ? total : 1) * sizeof(double));
	if (!all)
		fatal("out of memory");
	for (int i = 0; i < n; i++) {
		memcpy(all + k, cl[i].lat, cl[i].nlat * sizeof(double));
		k += cl[i].nlat;
		free(cl[i].lat);
		free(cl[i].resp.data);
		curl_slist_free_all(cl[i].hdrs);
		curl_easy_cleanup(cl[i].c);
	}
	bench_sort(all, total);
	r.reqs = (long)total;
	r.rate = total / (last_stop - t_start);
	r.p50 = bench_pct(all, total, 0.50) * 1e3;
	r.p99 = bench_pct(all, total, 0.99) * 1e3;
	free(all);
	free(cl);
	return r;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_issue --url URL --cacert PEM --ca CA.pem [--profile NAME]\n"
	           "                   [--seconds S] [--rounds R] [--clients 1,2,4,8,16,32]\n"
	           "                   [--pool N] [--csr-dir DIR --csr-count M] [--verbose]\n"
	           "The API token is read from the file named by HSMCA_BENCH_TOKEN_FILE.\n");
}

int main(int argc, char **argv)
{
	static struct result res[MAX_COUNTS][MAX_ROUNDS];
	const char *token_file = getenv("HSMCA_BENCH_TOKEN_FILE");
	char token[200] = "";
	const struct bench_opt opts[] = {
	    BENCH_OPT_NEEDED("url", &url_base),
	    BENCH_OPT_NEEDED("cacert", &cacert),
	    BENCH_OPT_NEEDED("ca", &ca_file),
	    BENCH_OPT_STR("profile", &profile),
	    BENCH_OPT_SECONDS(&seconds),
	    BENCH_OPT_ROUNDS(&rounds, MAX_ROUNDS),
	    BENCH_OPT_LIST("clients", counts, ncounts, 256),
	    BENCH_OPT_POOL(&pool_n),
	    BENCH_OPT_STR("csr-dir", &csr_dir),
	    {.name = "csr-count", .kind = BENCH_INT, .dest = &csr_dir_n, .min = 0, .max = 1 << 20},
	    BENCH_OPT_VERBOSE(&verbose),
	    {0},
	};
	FILE *f;
	X509 *ca;
	int rc = bench_parse_opts("bench_issue", argc, argv, opts, usage);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (csr_dir_n > pool_n) {
		fprintf(stderr, "bench_issue: --csr-count %d is more than --pool %d\n", csr_dir_n,
		        pool_n);
		return 2;
	}
	if (!token_file) {
		fprintf(stderr, "bench_issue: HSMCA_BENCH_TOKEN_FILE names no file\n");
		usage(stderr);
		return 2;
	}
	f = fopen(token_file, "r");
	if (!f || !fgets(token, sizeof(token), f))
		fatal("cannot read the token file");
	fclose(f);
	token[strcspn(token, "\r\n")] = '\0';
	snprintf(auth_header, sizeof(auth_header), "Authorization: Bearer %s", token);
	OPENSSL_cleanse(token, sizeof(token));
	f = fopen(ca_file, "r");
	ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!ca || !(ca_key = X509_get_pubkey(ca)))
		fatal("cannot read the CA certificate");
	X509_free(ca);
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		fatal("curl_global_init");

	{
		double t0 = bench_now();

		make_pool();
		printf("CSR pool: %d CSRs (fresh P-256 keys, SAN DNS:hostN.example.com), made in "
		       "%.1f s before timing\n",
		       pool_n, bench_now() - t0);
	}
	fflush(stdout);

	for (int r = 0; r < rounds; r++) {
		for (int j = 0; j < ncounts; j++) {
			int ci = r % 2 ? ncounts - 1 - j : j;

			res[ci][r] = run_cell(counts[ci]);
			if (atomic_load(&failed)) {
				fprintf(stderr,
				        "bench_issue: stopped: a request failed (clients %d, "
				        "round %d)\n",
				        counts[ci], r + 1);
				return 1;
			}
			if (verbose)
				printf("  round %d clients %2d: %8.1f certs/s  p50 %7.2f ms  p99 "
				       "%7.2f ms"
				       "  (%ld requests, %ld reconnects)\n",
				       r + 1, counts[ci], res[ci][r].rate, res[ci][r].p50,
				       res[ci][r].p99, res[ci][r].reqs, res[ci][r].connects);
			fflush(stdout);
		}
	}

	printf("\n| clients | certs/s | p50 ms | p99 ms | requests | reconnects |\n"
	       "|---:|---:|---:|---:|---:|---:|\n");
	for (int ci = 0; ci < ncounts; ci++) {
		double rate[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS];
		long reqs = 0, conn = 0;

		for (int r = 0; r < rounds; r++) {
			rate[r] = res[ci][r].rate;
			p50[r] = res[ci][r].p50;
			p99[r] = res[ci][r].p99;
			reqs += res[ci][r].reqs;
			conn += res[ci][r].connects;
		}
		printf("| %d | %.0f | %.2f | %.2f | %ld | %ld |\n", counts[ci],
		       bench_median(rate, (size_t)rounds), bench_median(p50, (size_t)rounds),
		       bench_median(p99, (size_t)rounds), reqs, conn);
	}
	printf("\nmedians of %d rounds of %g s; requests and reconnects are totals over the "
	       "rounds; %ld certificates checked against the CA certificate and their CSR's key\n",
	       rounds, seconds, (long)atomic_load(&verified));
	{
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		printf("load generator CPU (CSR pool included): %.1f s user, %.1f s system\n",
		       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	}
	EVP_PKEY_free(ca_key);
	curl_global_cleanup();
	return 0;
}
