/*
 * bench_acme: complete ACME orders per second through hsmca-cad.
 *
 * N client threads (--clients), each with its own account (ES256 key, registered with its own
 * External Account Binding credential before the clock starts) and one keep-alive HTTPS
 * connection (a libcurl easy handle), do complete orders one after the other for S seconds
 * per round (--seconds, --rounds):
 *
 *   newOrder   one new dns name (so every order needs a validation)
 *   challenge  the authorization read (POST-as-GET), the http-01 key authorization handed to
 *              this program's responder, the challenge answered with {}, the authorization
 *              polled until it is valid, waiting the answer's Retry-After between polls
 *              (--poll-ms when it has none), as certbot and lego do (hsmca-acmevald fetches
 *              /.well-known/acme-challenge/TOKEN from the responder; hsmca-cad holds a read of
 *              a processing authorization until the validation settles)
 *   finalize   a fresh P-256 key and CSR; hsmca-cad answers once the certificate is issued
 *              (a "processing" order is polled)
 *   download   POST-as-GET of the certificate chain, its leaf checked: signed by the CA and
 *              holding the CSR's key, and followed by the CA's certificate
 *
 * Every request is a JWS signed with tests/acme_client.c (the ACME test client's code), with
 * the nonce of the previous answer. The http-01 responder runs in this process (--http-port,
 * on 127.0.0.1) and answers from memory. Per round it prints the orders completed, orders/s,
 * requests per order and p50/p99 of each step and of the whole order; then the medians over
 * the rounds. Any failed order ends the run with exit status 1.
 *
 * Run it with tests/bench/acme/run, which sets up PostgreSQL, keyd, hsmca-acmevald and
 * hsmca-cad and makes the EAB credentials (the file named by --eab: "kid hmac_key" lines).
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "acme.h"
#include "acme_client.h"
#include "bench_util.h"
#include "der.h"
#include "harness.h"

#define MAX_CLIENTS 256
#define MAX_ROUNDS 32
#define RESPONDERS 4

enum step { S_NEW_ORDER, S_CHALLENGE, S_FINALIZE, S_DOWNLOAD, S_ORDER, N_STEPS };
static const char *const step_names[N_STEPS] = {"newOrder", "challenge", "finalize", "download",
                                                "order"};

static const char *directory_url, *cacert, *ca_file, *eab_file, *domain = "example.com";
static double seconds = 10, poll_s = 0.005;
static int nclients = 8, rounds = 3, http_port;
static char new_nonce_url[512], new_account_url[512], new_order_url[512];
static EVP_PKEY *ca_pub;
static uint8_t *ca_der; /* the CA's certificate, DER */
static long ca_der_len;
static atomic_int failed;

static void fatal(const char *what)
{
	fprintf(stderr, "bench_acme: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* ---- the http-01 responder: one key authorization per client, from memory ---- */

struct slot {
	char token[ACME_TOKEN_LEN + 1];
	char keyauth[ACME_TOKEN_LEN + ACME_THUMBPRINT_LEN + 2];
};
static struct slot slots[MAX_CLIENTS];
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static int listen_fd = -1;
static atomic_long served;

static void slot_set(int i, const char *token, const char *keyauth)
{
	pthread_mutex_lock(&slots_mu);
	snprintf(slots[i].token, sizeof(slots[i].token), "%s", token);
	snprintf(slots[i].keyauth, sizeof(slots[i].keyauth), "%s", keyauth);
	pthread_mutex_unlock(&slots_mu);
}

/* The key authorization for token into out; 0, or -1 when no client expects it. */
static int slot_find(const char *token, char *out, size_t n)
{
	int rc = -1;

	pthread_mutex_lock(&slots_mu);
	for (int i = 0; i < nclients && rc; i++)
		if (slots[i].token[0] && !strcmp(slots[i].token, token)) {
			snprintf(out, n, "%s", slots[i].keyauth);
			rc = 0;
		}
	pthread_mutex_unlock(&slots_mu);
	return rc;
}

/* One connection: one bounded GET, one answer, closed. */
static void respond(int fd)
{
	static const char prefix[] = "GET /.well-known/acme-challenge/";
	char req[2048] = "", token[ACME_TOKEN_LEN + 1], body[160], out[512];
	struct timeval tv = {.tv_sec = 2};
	size_t got = 0, tl;
	int n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
		ssize_t r = recv(fd, req + got, sizeof(req) - 1 - got, 0);
		if (r <= 0)
			return;
		got += (size_t)r;
		req[got] = '\0';
	}
	tl = strncmp(req, prefix, sizeof(prefix) - 1) ? 0 : strcspn(req + sizeof(prefix) - 1, " ");
	if (tl > 0 && tl <= ACME_TOKEN_LEN) {
		snprintf(token, sizeof(token), "%.*s", (int)tl, req + sizeof(prefix) - 1);
		if (slot_find(token, body, sizeof(body)) == 0) {
			n = snprintf(out, sizeof(out),
			             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			             strlen(body), body);
			send(fd, out, (size_t)n, MSG_NOSIGNAL);
			atomic_fetch_add(&served, 1);
			return;
		}
	}
	n = snprintf(out, sizeof(out),
	             "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
	send(fd, out, (size_t)n, MSG_NOSIGNAL);
}

static void *responder_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL; /* the listener was shut down */
		}
		respond(fd);
		close(fd);
	}
}

static void responder_start(pthread_t *t)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
	int one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(listen_fd, 256))
		fatal("the http-01 responder cannot listen on its port");
	for (int i = 0; i < RESPONDERS; i++)
		if (pthread_create(&t[i], NULL, responder_main, NULL))
			fatal("pthread_create");
}

static void responder_stop(pthread_t *t)
{
	shutdown(listen_fd, SHUT_RDWR);
	for (int i = 0; i < RESPONDERS; i++)
		pthread_join(t[i], NULL);
	close(listen_fd);
}

/* ---- HTTP and JWS ---- */

struct client {
	int idx;
	pthread_t t;
	CURL *c;
	struct curl_slist *hdrs;
	struct harness_buf body;
	struct tkey key;
	EVP_PKEY_CTX *keygen; /* P-256, for each order's key */
	EVP_PKEY_CTX *verify; /* with the CA's key, for each leaf */
	char thumb[ACME_THUMBPRINT_LEN + 1];
	char kid[512];
	char nonce[128];    /* from the last answer; "" none */
	char location[512]; /* of the last answer */
	int retry_after;    /* of the last answer, seconds; 0: none */
	long status;
	long requests; /* this round */
	int n_orders;
	const char *eab_kid, *eab_key;
	/* this round's step times (seconds), n_orders x N_STEPS */
	double *times;
	size_t cap;
	char err[600];
};

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
	struct client *cl = arg;
	size_t len = sz * n, k;
	char *dst = NULL;
	size_t dn = 0;

	if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		cl->retry_after = atoi(p + 12); /* delta-seconds, as hsmca-cad sends it */
	} else if (len > 14 && !strncasecmp(p, "Replay-Nonce:", 13)) {
		k = 13;
		dst = cl->nonce;
		dn = sizeof(cl->nonce);
	} else if (len > 10 && !strncasecmp(p, "Location:", 9)) {
		k = 9;
		dst = cl->location;
		dn = sizeof(cl->location);
	}
	if (dst) {
		while (k < len && (p[k] == ' ' || p[k] == '\t'))
			k++;
		size_t e = len;
		while (e > k && (p[e - 1] == '\r' || p[e - 1] == '\n' || p[e - 1] == ' '))
			e--;
		snprintf(dst, dn, "%.*s", (int)(e - k), p + k);
	}
	return len;
}

/* One request (body NULL: HEAD) to url; the answer in cl->body, cl->status, cl->nonce,
 * cl->location. 0, or -1 (transport error, in cl->err). */
static int http(struct client *cl, const char *url, const char *body)
{
	CURLcode rc;

	cl->body.len = 0;
	if (cl->body.data)
		cl->body.data[0] = '\0';
	cl->nonce[0] = cl->location[0] = '\0';
	cl->retry_after = 0;
	curl_easy_setopt(cl->c, CURLOPT_URL, url);
	if (body) {
		curl_easy_setopt(cl->c, CURLOPT_NOBODY, 0L);
		curl_easy_setopt(cl->c, CURLOPT_POSTFIELDS, body);
	} else {
		curl_easy_setopt(cl->c, CURLOPT_NOBODY, 1L);
	}
	rc = curl_easy_perform(cl->c);
	cl->requests++;
	curl_easy_getinfo(cl->c, CURLINFO_RESPONSE_CODE, &cl->status);
	if (rc != CURLE_OK) {
		snprintf(cl->err, sizeof(cl->err), "%s: %s", url, curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

/* POST a JWS of payload (NULL: POST-as-GET) to url with the account's kid (or its jwk before
 * it has one); a badNonce is retried with the fresh nonce it brings. The answer as http().
 * 0, or -1 (transport error). */
static int post(struct client *cl, const char *url, const char *payload)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		json_t *hdr;
		char *jws;
		int rc;

		if (!cl->nonce[0] && (http(cl, new_nonce_url, NULL) || !cl->nonce[0])) {
			snprintf(cl->err, sizeof(cl->err), "newNonce gave no nonce");
			return -1;
		}
		hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "nonce", cl->nonce, "url", url);
		if (!hdr)
			fatal("out of memory");
		if (cl->kid[0])
			json_object_set_new(hdr, "kid", json_string(cl->kid));
		else
			json_object_set(hdr, "jwk", cl->key.jwk);
		jws = jws_with(&cl->key, hdr, payload);
		rc = http(cl, url, jws);
		free(jws);
		if (rc)
			return -1;
		if (!(cl->status == 400 && cl->body.data && strstr(cl->body.data, "badNonce")))
			return 0;
	}
	return 0;
}

static int failf(struct client *cl, const char *what)
{
	snprintf(cl->err, sizeof(cl->err), "%s: HTTP %ld %.400s", what, cl->status,
	         cl->body.data ? cl->body.data : "");
	return -1;
}

/* A string member's value, "" when it is absent or not a string. */
static const char *jstr(const json_t *v)
{
	const char *s = json_string_value(v);

	return s ? s : "";
}

static json_t *answer_json(struct client *cl)
{
	return cl->body.data ? json_loads(cl->body.data, 0, NULL) : NULL;
}

static int register_account(struct client *cl)
{
	uint8_t key[64];
	int klen = acme_b64url_decode(cl->eab_key, strlen(cl->eab_key), key, sizeof(key));
	json_t *eab, *pl;
	char *text;
	int rc;

	if (klen <= 0)
		return failf(cl, "the EAB key is not base64url");
	eab = eab_for(&cl->key, cl->eab_kid, key, (size_t)klen, new_account_url);
	pl = json_pack("{s:b, s:o, s:[s]}", "termsOfServiceAgreed", 1, "externalAccountBinding",
	               eab, "contact", "mailto:bench@example.com");
	text = json_dumps(pl, JSON_COMPACT);
	json_decref(pl);
	rc = post(cl, new_account_url, text);
	free(text);
	if (rc)
		return -1;
	if ((cl->status != 201 && cl->status != 200) || !cl->location[0])
		return failf(cl, "newAccount");
	snprintf(cl->kid, sizeof(cl->kid), "%s", cl->location);
	return 0;
}

/* A status member of the last answer into out ("" none). */
static void answer_status(struct client *cl, char *out, size_t n)
{
	json_t *o = answer_json(cl);

	snprintf(out, n, "%s", jstr(json_object_get(o, "status")));
	json_decref(o);
}

/* Before polling again: the last answer's Retry-After, as certbot and lego honour it, else
 * --poll-ms. */
static void pause_poll(const struct client *cl)
{
	double s = cl->retry_after > 0 ? cl->retry_after : poll_s;
	struct timespec ts = {.tv_sec = (time_t)s,
	                      .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

/* ---- the CSR and the downloaded chain, in DER written and read by hand ----
 *
 * OpenSSL 3.0 encodes a public key into a CSR and decodes one out of a certificate through its
 * encoder and decoder machinery, whose contexts are costly to make: over a third of this
 * client's CPU went there, taken from the server's on this one machine. The CSR is written here
 * instead (the same bytes as X509_REQ_sign made), and the leaf read with the bounded reader of
 * der.h. */

/* SubjectPublicKeyInfo of a P-256 key without the 65 bytes of its uncompressed point. */
static const uint8_t p256_spki_prefix[26] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                             0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
#define P256_SPKI_LEN (sizeof(p256_spki_prefix) + 65)
/* AlgorithmIdentifier ecdsa-with-SHA256 (no parameters). */
static const uint8_t ecdsa_sha256[12] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                         0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t oid_cn[5] = {0x06, 0x03, 0x55, 0x04, 0x03};
static const uint8_t oid_ext_req[11] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                        0xf7, 0x0d, 0x01, 0x09, 0x0e};
static const uint8_t oid_san[5] = {0x06, 0x03, 0x55, 0x1d, 0x11};

static size_t tlv_size(size_t content)
{
	return der_hdr_size(content) + content;
}

/* The ECDSA signature (DER) of SHA-256(data) with k into sig (cap bytes); its length, or 0. */
static size_t ecdsa_sha256_sign(EVP_PKEY *k, const uint8_t *data, size_t len, uint8_t *sig,
                                size_t cap)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
	uint8_t d[SHA256_DIGEST_LENGTH];
	size_t n = cap;
	int ok;

	SHA256(data, len, d);
	ok = c && EVP_PKEY_sign_init(c) == 1 && EVP_PKEY_sign(c, sig, &n, d, sizeof(d)) == 1;
	EVP_PKEY_CTX_free(c);
	return ok ? n : 0;
}

/* A CSR (DER, base64url) for name (subject CN=name, subjectAltName dNSName name) with a fresh
 * P-256 key from gen; *key the key, spki its SubjectPublicKeyInfo (P256_SPKI_LEN bytes). */
static char *make_csr(EVP_PKEY_CTX *gen, const char *name, EVP_PKEY **key, uint8_t *spki)
{
	EVP_PKEY *k = NULL;
	size_t n = strlen(name), pl = 0, gn, gns, ext, exts, set, attr, attrs, atv, rdn, subj, cri,
	       cri_len, sl;
	uint8_t cri_der[600], sig[80], out_der[800];
	struct der d;

	/* CN is at most 64 characters (RFC 5280), as X509_NAME_add_entry_by_txt insists. */
	if (n == 0 || n > 64 || EVP_PKEY_generate(gen, &k) != 1 ||
	    EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
	                                    spki + sizeof(p256_spki_prefix), 65, &pl) != 1 ||
	    pl != 65 || spki[sizeof(p256_spki_prefix)] != 0x04)
		fatal("making a CSR (the key)");
	memcpy(spki, p256_spki_prefix, sizeof(p256_spki_prefix));
	/* CertificationRequestInfo ::= SEQUENCE { version 0, subject, subjectPKInfo,
	 *   [0] { Attribute { extensionRequest, SET { Extensions { subjectAltName } } } } } */
	gn = tlv_size(n);                           /* [2] dNSName */
	gns = tlv_size(gn);                         /* GeneralNames */
	ext = sizeof(oid_san) + tlv_size(gns);      /* Extension content */
	exts = tlv_size(ext);                       /* Extensions content */
	set = tlv_size(exts);                       /* SET content */
	attr = sizeof(oid_ext_req) + tlv_size(set); /* Attribute content */
	attrs = tlv_size(attr);                     /* [0] content */
	atv = sizeof(oid_cn) + tlv_size(n);         /* AttributeTypeAndValue content */
	rdn = tlv_size(atv);
	subj = tlv_size(rdn);
	cri = 3 + tlv_size(subj) + P256_SPKI_LEN + tlv_size(attrs);
	der_init(&d, cri_der, sizeof(cri_der));
	der_hdr(&d, 0x30, cri);
	der_raw(&d, "\x02\x01\x00", 3);
	der_hdr(&d, 0x30, subj);
	der_hdr(&d, 0x31, rdn);
	der_hdr(&d, 0x30, atv);
	der_raw(&d, oid_cn, sizeof(oid_cn));
	der_tlv(&d, 0x0c, name, n); /* UTF8String */
	der_raw(&d, spki, P256_SPKI_LEN);
	der_hdr(&d, 0xa0, attrs);
	der_hdr(&d, 0x30, attr);
	der_raw(&d, oid_ext_req, sizeof(oid_ext_req));
	der_hdr(&d, 0x31, set);
	der_hdr(&d, 0x30, exts);
	der_hdr(&d, 0x30, ext);
	der_raw(&d, oid_san, sizeof(oid_san));
	der_hdr(&d, 0x04, gns);
	der_hdr(&d, 0x30, gn);
	der_tlv(&d, 0x82, name, n);
	if (d.overflow || !(sl = ecdsa_sha256_sign(k, cri_der, d.len, sig, sizeof(sig))))
		fatal("making a CSR");
	/* CertificationRequest ::= SEQUENCE { info, ecdsa-with-SHA256, BIT STRING signature } */
	cri_len = d.len;
	der_init(&d, out_der, sizeof(out_der));
	der_hdr(&d, 0x30, cri_len + sizeof(ecdsa_sha256) + tlv_size(sl + 1));
	der_raw(&d, cri_der, cri_len);
	der_raw(&d, ecdsa_sha256, sizeof(ecdsa_sha256));
	der_hdr(&d, 0x03, sl + 1);
	der_raw(&d, "", 1); /* no unused bits */
	der_raw(&d, sig, sl);
	if (d.overflow)
		fatal("making a CSR");
	*key = k;
	return b64(out_der, d.len);
}

/* The next PEM CERTIFICATE of b, its DER in *der (OPENSSL_free) and *len; 0, or -1. */
static int pem_cert(BIO *b, uint8_t **der, long *len)
{
	char *name = NULL, *header = NULL;
	int ok = PEM_read_bio(b, &name, &header, der, len) == 1 && !strcmp(name, "CERTIFICATE");

	OPENSSL_free(name);
	OPENSSL_free(header);
	if (!ok) {
		OPENSSL_free(*der);
		*der = NULL;
		ERR_clear_error();
	}
	return ok ? 0 : -1;
}

/* The leaf as OpenSSL checks it: what an issuer other than ECDSA with SHA-256 signs. */
static int check_leaf_x509(const uint8_t *der, long len, EVP_PKEY *key)
{
	X509 *x = d2i_X509(NULL, &der, len);
	int ok = x && X509_verify(x, ca_pub) == 1 && EVP_PKEY_eq(X509_get0_pubkey(x), key) == 1;

	X509_free(x);
	return ok ? 0 : -1;
}

/* The leaf (DER, len bytes): one Certificate signed by the CA (verify: its context) with
 * ecdsa-with-SHA256 in both places, whose SubjectPublicKeyInfo is spki (P256_SPKI_LEN bytes). */
static int check_leaf(EVP_PKEY_CTX *verify, const uint8_t *der, size_t len, const uint8_t *spki)
{
	struct der_in in = {der, len}, cert, tbs, c, f, sig;
	const uint8_t *tbs_p, *inner_p, *spki_p;
	size_t tbs_len, inner_len, spki_len;
	uint8_t d[SHA256_DIGEST_LENGTH];

	/* Certificate ::= SEQUENCE { TBSCertificate, AlgorithmIdentifier, BIT STRING } */
	if (der_get(&in, 0x30, &cert) || in.len != 0)
		return -1;
	tbs_p = cert.p;
	if (der_get(&cert, 0x30, &tbs))
		return -1;
	tbs_len = (size_t)(cert.p - tbs_p);
	if (cert.len < sizeof(ecdsa_sha256) || memcmp(cert.p, ecdsa_sha256, sizeof(ecdsa_sha256)))
		return 1; /* another algorithm: check_leaf_x509 */
	cert.p += sizeof(ecdsa_sha256);
	cert.len -= sizeof(ecdsa_sha256);
	if (der_get(&cert, 0x03, &sig) || cert.len != 0 || sig.len < 2 || sig.p[0] != 0)
		return -1;
	/* TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer,
	 *   validity, subject, subjectPublicKeyInfo, ... } */
	if ((der_peek(&tbs, 0xa0) && der_get(&tbs, 0xa0, &f)) || der_get(&tbs, 0x02, &f))
		return -1;
	inner_p = tbs.p;
	if (der_get(&tbs, 0x30, &f))
		return -1;
	inner_len = (size_t)(tbs.p - inner_p);
	if (inner_len != sizeof(ecdsa_sha256) || memcmp(inner_p, ecdsa_sha256, inner_len) ||
	    der_get(&tbs, 0x30, &f) || der_get(&tbs, 0x30, &f) || der_get(&tbs, 0x30, &f))
		return -1;
	spki_p = tbs.p;
	if (der_get(&tbs, 0x30, &c))
		return -1;
	spki_len = (size_t)(tbs.p - spki_p);
	if (spki_len != P256_SPKI_LEN || memcmp(spki_p, spki, P256_SPKI_LEN))
		return -1;
	SHA256(tbs_p, tbs_len, d);
	if (EVP_PKEY_verify(verify, sig.p + 1, sig.len - 1, d, sizeof(d)) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* The downloaded chain: its first certificate signed by the CA and holding the CSR's key
 * (key; spki its SubjectPublicKeyInfo), its second the CA's certificate. */
static int check_chain(EVP_PKEY_CTX *verify, const char *pem, EVP_PKEY *key, const uint8_t *spki)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	uint8_t *leaf = NULL, *next = NULL;
	long leaf_len = 0, next_len = 0;
	int rc = -1;

	if (b && pem_cert(b, &leaf, &leaf_len) == 0 && pem_cert(b, &next, &next_len) == 0 &&
	    next_len == ca_der_len && !memcmp(next, ca_der, (size_t)next_len)) {
		rc = check_leaf(verify, leaf, (size_t)leaf_len, spki);
		if (rc > 0)
			rc = check_leaf_x509(leaf, leaf_len, key);
	}
	OPENSSL_free(leaf);
	OPENSSL_free(next);
	BIO_free(b);
	return rc ? -1 : 0;
}

/* One complete order for name; its step times (seconds) into t. 0, or -1 (cl->err). */
static int one_order(struct client *cl, const char *name, double *t)
{
	char payload[400], authz[512], chall[512] = "", token[ACME_TOKEN_LEN + 1] = "",
	                               finalize[512], order[512], cert[512], st[16],
	                               keyauth[ACME_TOKEN_LEN + ACME_THUMBPRINT_LEN + 2];
	double t0 = bench_now(), t1, t2, t3, t4;
	EVP_PKEY *k = NULL;
	uint8_t spki[P256_SPKI_LEN];
	json_t *o, *chs, *ch;
	char *csr;
	size_t i;
	int rc = -1;

	snprintf(payload, sizeof(payload),
	         "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"%s\"}]}", name);
	if (post(cl, new_order_url, payload))
		return -1;
	if (cl->status != 201 || !cl->location[0])
		return failf(cl, "newOrder");
	snprintf(order, sizeof(order), "%s", cl->location);
	o = answer_json(cl);
	snprintf(authz, sizeof(authz), "%s",
	         jstr(json_array_get(json_object_get(o, "authorizations"), 0)));
	snprintf(finalize, sizeof(finalize), "%s", jstr(json_object_get(o, "finalize")));
	json_decref(o);
	if (!authz[0] || !finalize[0])
		return failf(cl, "newOrder (no authorization or finalize URL)");
	t1 = bench_now();

	if (post(cl, authz, NULL))
		return -1;
	if (cl->status != 200)
		return failf(cl, "authorization");
	o = answer_json(cl);
	chs = json_object_get(o, "challenges");
	json_array_foreach(chs, i, ch)
	{
		if (!strcmp(jstr(json_object_get(ch, "type")), "http-01")) {
			snprintf(chall, sizeof(chall), "%s", jstr(json_object_get(ch, "url")));
			snprintf(token, sizeof(token), "%s", jstr(json_object_get(ch, "token")));
		}
	}
	json_decref(o);
	if (!chall[0] || strlen(token) != ACME_TOKEN_LEN)
		return failf(cl, "authorization (no http-01 challenge)");
	snprintf(keyauth, sizeof(keyauth), "%s.%s", token, cl->thumb);
	slot_set(cl->idx, token, keyauth);
	if (post(cl, chall, "{}"))
		return -1;
	if (cl->status != 200)
		return failf(cl, "challenge");
	for (;;) {
		if (post(cl, authz, NULL))
			return -1;
		answer_status(cl, st, sizeof(st));
		if (cl->status != 200 || strcmp(st, "pending"))
			break;
		pause_poll(cl);
	}
	slot_set(cl->idx, "", "");
	if (strcmp(st, "valid"))
		return failf(cl, "authorization not valid");
	t2 = bench_now();

	csr = make_csr(cl->keygen, name, &k, spki);
	{
		char *body;
		if (asprintf(&body, "{\"csr\":\"%s\"}", csr) < 0)
			fatal("out of memory");
		rc = post(cl, finalize, body);
		free(body);
	}
	free(csr);
	if (rc)
		goto out;
	rc = -1;
	if (cl->status != 200) {
		failf(cl, "finalize");
		goto out;
	}
	for (;;) {
		answer_status(cl, st, sizeof(st));
		if (strcmp(st, "processing"))
			break;
		pause_poll(cl);
		if (post(cl, order, NULL))
			goto out;
	}
	o = answer_json(cl);
	snprintf(cert, sizeof(cert), "%s", jstr(json_object_get(o, "certificate")));
	json_decref(o);
	if (strcmp(st, "valid") || !cert[0]) {
		failf(cl, "order not valid after finalize");
		goto out;
	}
	t3 = bench_now();

	if (post(cl, cert, NULL))
		goto out;
	if (cl->status != 200 || !cl->body.data ||
	    check_chain(cl->verify, cl->body.data, k, spki)) {
		failf(cl, "download (or the certificate does not verify with the CA or lacks the "
		          "CSR's key, or the CA's certificate does not follow it)");
		goto out;
	}
	t4 = bench_now();
	t[S_NEW_ORDER] = t1 - t0;
	t[S_CHALLENGE] = t2 - t1;
	t[S_FINALIZE] = t3 - t2;
	t[S_DOWNLOAD] = t4 - t3;
	t[S_ORDER] = t4 - t0;
	rc = 0;
out:
	EVP_PKEY_free(k);
	return rc;
}

/* ---- the rounds ---- */

static pthread_barrier_t barrier;
static double t_end;
static int round_no;

static void *client_main(void *arg)
{
	struct client *cl = arg;
	int serial = 0;

	if (register_account(cl)) {
		fprintf(stderr, "bench_acme: client %d: %s\n", cl->idx, cl->err);
		atomic_store(&failed, 1);
	}
	for (int r = 0; r < rounds; r++) {
		pthread_barrier_wait(&barrier); /* the round starts: t_end set */
		cl->n_orders = 0;
		cl->requests = 0;
		while (!atomic_load(&failed) && bench_now() < t_end) {
			char name[128];
			if ((size_t)(cl->n_orders + 1) * N_STEPS > cl->cap) {
				cl->cap = cl->cap ? cl->cap * 2 : 1024 * N_STEPS;
				if (!(cl->times = realloc(cl->times, cl->cap * sizeof(double))))
					fatal("out of memory");
			}
			snprintf(name, sizeof(name), "b%d-%d-%d-%ld.%s", cl->idx, r, ++serial,
			         (long)time(NULL), domain);
			if (one_order(cl, name, cl->times + (size_t)cl->n_orders * N_STEPS)) {
				if (!atomic_exchange(&failed, 1))
					fprintf(stderr, "bench_acme: client %d, order %s: %s\n",
					        cl->idx, name, cl->err);
				break;
			}
			cl->n_orders++;
		}
		pthread_barrier_wait(&barrier); /* the round ends */
	}
	return NULL;
}

static void load_eab(struct client *cl, char (*lines)[256])
{
	FILE *f = fopen(eab_file, "r");
	int n = 0;

	if (!f)
		fatal("cannot read the --eab file");
	while (n < nclients && fgets(lines[n], 256, f)) {
		char *sp = strchr(lines[n], ' ');
		if (!sp)
			continue;
		*sp = '\0';
		lines[n][strcspn(lines[n], "\r\n")] = '\0';
		sp[1 + strcspn(sp + 1, "\r\n ")] = '\0';
		cl[n].eab_kid = lines[n];
		cl[n].eab_key = sp + 1;
		n++;
	}
	fclose(f);
	if (n < nclients)
		fatal("the --eab file has fewer credentials than --clients");
}

static void read_directory(void)
{
	struct client d = {0};
	json_t *o;

	d.c = curl_easy_init();
	curl_easy_setopt(d.c, CURLOPT_CAINFO, cacert);
	curl_easy_setopt(d.c, CURLOPT_WRITEFUNCTION, harness_curl_collect);
	curl_easy_setopt(d.c, CURLOPT_WRITEDATA, &d.body);
	curl_easy_setopt(d.c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(d.c, CURLOPT_URL, directory_url);
	if (curl_easy_perform(d.c) != CURLE_OK || !d.body.data)
		fatal("cannot read the ACME directory");
	o = json_loads(d.body.data, 0, NULL);
	snprintf(new_nonce_url, sizeof(new_nonce_url), "%s", jstr(json_object_get(o, "newNonce")));
	snprintf(new_account_url, sizeof(new_account_url), "%s",
	         jstr(json_object_get(o, "newAccount")));
	snprintf(new_order_url, sizeof(new_order_url), "%s", jstr(json_object_get(o, "newOrder")));
	json_decref(o);
	free(d.body.data);
	curl_easy_cleanup(d.c);
	if (!new_nonce_url[0] || !new_account_url[0] || !new_order_url[0])
		fatal("the directory lacks newNonce, newAccount or newOrder");
}

static void setup_client(struct client *cl)
{
	char *jwk;

	cl->key = tkey_new("ES256");
	/* RFC 7638: the required members in lexical order, as jansson's sorted output. */
	jwk = json_dumps(cl->key.jwk, JSON_COMPACT | JSON_SORT_KEYS);
	{
		uint8_t d[32];
		unsigned n = 0;
		char *s;
		if (!jwk || !EVP_Digest(jwk, strlen(jwk), d, &n, EVP_sha256(), NULL))
			fatal("the account key's thumbprint");
		s = b64(d, n);
		snprintf(cl->thumb, sizeof(cl->thumb), "%s", s);
		free(s);
	}
	free(jwk);
	if (!(cl->keygen = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) ||
	    EVP_PKEY_keygen_init(cl->keygen) != 1 ||
	    EVP_PKEY_CTX_set_group_name(cl->keygen, "P-256") != 1 ||
	    !(cl->verify = EVP_PKEY_CTX_new_from_pkey(NULL, ca_pub, NULL)) ||
	    EVP_PKEY_verify_init(cl->verify) != 1)
		fatal("the key generation and verification contexts");
	cl->c = curl_easy_init();
	if (!cl->c)
		fatal("curl_easy_init");
	cl->hdrs = curl_slist_append(NULL, "Content-Type: application/jose+json");
	curl_easy_setopt(cl->c, CURLOPT_HTTPHEADER, cl->hdrs);
	curl_easy_setopt(cl->c, CURLOPT_CAINFO, cacert);
	curl_easy_setopt(cl->c, CURLOPT_WRITEFUNCTION, harness_curl_collect);
	curl_easy_setopt(cl->c, CURLOPT_WRITEDATA, &cl->body);
	curl_easy_setopt(cl->c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(cl->c, CURLOPT_HEADERDATA, cl);
	curl_easy_setopt(cl->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cl->c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(cl->c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(cl->c, CURLOPT_MAXCONNECTS, 1L);
}

/* CPU seconds (user + system) this process has used. */
static double cpu_self(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bench_acme --directory URL --cacert PEM --ca PEM --eab FILE "
	           "--http-port PORT [--clients N] [--seconds S] [--rounds R] [--poll-ms MS] "
	           "[--domain D]\n");
}

int main(int argc, char **argv)
{
	static struct client cl[MAX_CLIENTS];
	static char eab_lines[MAX_CLIENTS][256];
	double rates[MAX_ROUNDS], reqs[MAX_ROUNDS], p[N_STEPS][2][MAX_ROUNDS];
	pthread_t resp[RESPONDERS];
	BIO *f;
	X509 *ca;
	const uint8_t *ca_p;
	long total_orders = 0;
	double cpu0, poll_ms = poll_s * 1000.0;
	const struct bench_opt opts[] = {
	    BENCH_OPT_NEEDED("directory", &directory_url),
	    BENCH_OPT_NEEDED("cacert", &cacert),
	    BENCH_OPT_NEEDED("ca", &ca_file),
	    BENCH_OPT_NEEDED("eab", &eab_file),
	    BENCH_OPT_STR("domain", &domain),
	    {.name = "http-port",
	     .kind = BENCH_INT,
	     .dest = &http_port,
	     .min = 1,
	     .max = 65535,
	     .required = 1},
	    {.name = "clients", .kind = BENCH_INT, .dest = &nclients, .min = 1, .max = MAX_CLIENTS},
	    BENCH_OPT_SECONDS(&seconds),
	    BENCH_OPT_ROUNDS(&rounds, MAX_ROUNDS),
	    {.name = "poll-ms", .kind = BENCH_NUM, .dest = &poll_ms, .min = 0, .max = 60000},
	    {0},
	};
	int rc = bench_parse_opts("bench_acme", argc, argv, opts, usage);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	poll_s = poll_ms / 1000.0;
	if (!(f = BIO_new_file(ca_file, "r")) || pem_cert(f, &ca_der, &ca_der_len))
		fatal("cannot read the CA certificate (--ca)");
	BIO_free(f);
	ca_p = ca_der;
	if (!(ca = d2i_X509(NULL, &ca_p, ca_der_len)))
		fatal("cannot read the CA certificate (--ca)");
	ca_pub = X509_get_pubkey(ca);
	X509_free(ca);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	read_directory();
	load_eab(cl, eab_lines);
	responder_start(resp);
	for (int i = 0; i < nclients; i++) {
		cl[i].idx = i;
		setup_client(&cl[i]);
	}
	pthread_barrier_init(&barrier, NULL, (unsigned)nclients + 1);
	for (int i = 0; i < nclients; i++)
		if (pthread_create(&cl[i].t, NULL, client_main, &cl[i]))
			fatal("pthread_create");
	printf("%d clients, %d rounds of %g s, polling every %g ms; accounts registered before "
	       "the clock starts\n",
	       nclients, rounds, seconds, poll_s * 1000);
	printf("%5s %7s %9s %9s", "round", "orders", "orders/s", "reqs/ord");
	for (int s = 0; s < N_STEPS; s++)
		printf("  %22s", step_names[s]);
	printf("\n%5s %7s %9s %9s", "", "", "", "");
	for (int s = 0; s < N_STEPS; s++)
		printf("  %22s", "p50 / p99 ms");
	printf("\n");
	cpu0 = cpu_self();
	for (round_no = 0; round_no < rounds; round_no++) {
		double t0, wall, *v;
		size_t n = 0;
		long nreq = 0;

		t0 = bench_now();
		t_end = t0 + seconds;
		pthread_barrier_wait(&barrier);
		pthread_barrier_wait(&barrier);
		wall = bench_now() - t0;
		for (int i = 0; i < nclients; i++) {
			n += (size_t)cl[i].n_orders;
			nreq += cl[i].requests;
		}
		total_orders += (long)n;
		rates[round_no] = (double)n / wall;
		reqs[round_no] = n ? (double)nreq / (double)n : 0;
		printf("%5d %7zu %9.1f %9.1f", round_no + 1, n, rates[round_no], reqs[round_no]);
		if (!(v = malloc((n ? n : 1) * sizeof(double))))
			fatal("out of memory");
		for (int s = 0; s < N_STEPS; s++) {
			size_t k = 0;
			for (int i = 0; i < nclients; i++)
				for (int j = 0; j < cl[i].n_orders; j++)
					v[k++] = 1e3 * cl[i].times[(size_t)j * N_STEPS + (size_t)s];
			bench_sort(v, k);
			p[s][0][round_no] = bench_pct(v, k, 0.5);
			p[s][1][round_no] = bench_pct(v, k, 0.99);
			printf("  %10.1f / %9.1f", p[s][0][round_no], p[s][1][round_no]);
		}
		free(v);
		printf("\n");
		fflush(stdout);
	}
	for (int i = 0; i < nclients; i++)
		pthread_join(cl[i].t, NULL);
	if (!atomic_load(&failed)) {
		printf("%5s %7s %9.1f %9.1f", "median", "", bench_median(rates, (size_t)rounds),
		       bench_median(reqs, (size_t)rounds));
		for (int s = 0; s < N_STEPS; s++) {
			double a = bench_median(p[s][0], (size_t)rounds),
			       b = bench_median(p[s][1], (size_t)rounds);
			printf("  %10.1f / %9.1f", a, b);
		}
		printf("\n%ld orders complete, every certificate checked against the CA and its "
		       "CSR's key; the responder served %ld key authorizations\n",
		       total_orders, atomic_load(&served));
		printf("this client's CPU (every thread, the responder included): %.2f ms per "
		       "order\n",
		       total_orders ? 1e3 * (cpu_self() - cpu0) / (double)total_orders : 0);
	}
	responder_stop(resp);
	for (int i = 0; i < nclients; i++) {
		curl_slist_free_all(cl[i].hdrs);
		curl_easy_cleanup(cl[i].c);
		free(cl[i].body.data);
		free(cl[i].times);
		tkey_free(&cl[i].key);
		EVP_PKEY_CTX_free(cl[i].keygen);
		EVP_PKEY_CTX_free(cl[i].verify);
	}
	EVP_PKEY_free(ca_pub);
	OPENSSL_free(ca_der);
	curl_global_cleanup();
	return atomic_load(&failed) ? 1 : 0;
}
