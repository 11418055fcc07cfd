/* Fuzz hsmca-cad's API front end: HTTP framing (libevent's evhttp as cad configures it), the
 * route table and path decoding, query strings, JSON bodies and every handler's checks of
 * them, and EST's request intake. Each input is one byte choosing the caller's role, then the
 * raw bytes of one or more HTTP requests, written to cad over a connection of its own.
 *
 * That connection is a Unix socket, not TCP on loopback: the client half-closes first, so over
 * TCP every input left a socket in TIME_WAIT for a minute, and a few minutes in, at over a
 * thousand inputs a second, they held every ephemeral port and connect() failed. A Unix socket
 * has no ports and no TIME_WAIT; evhttp reads from it exactly as from a TCP connection.
 *
 * No PostgreSQL and no keyd: the configured database is a socket that does not exist, so a
 * handler that gets past its input checks ends in a clean 503. Authentication is the fuzz
 * build's seam (HSMCA_FUZZING): every request is the chosen role, so that the handlers behind
 * it see the input. TLS is left out (cad's TLS is OpenSSL's). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cad_internal.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct cad_config cfg;
static struct cad cad;
static struct cad_worker *w;
static struct sockaddr_un listen_addr; /* where cad accepts the fuzzer's connections */

static const char *const roles[] = {"ca-admin", "admin", "officer", "auditor", "operator", "ra"};

static const char config_fmt[] =
    "listen: {address: 127.0.0.1, port: 0}\n"
    "tls: {certificate: %s/ca.pem, key: %s/ca.key, client_ca: %s/ca.pem}\n"
    "database: \"host=/nonexistent-hsmca-fuzz dbname=none connect_timeout=1\"\n"
    "limits: {max_body_bytes: 16384, timeout_seconds: 5}\n"
    "authorities:\n"
    "  - {name: issuing, certificate: %s/ca.pem, key: \"keyd:label=issuing\",\n"
    "     crl_base_url: \"http://crl.test/\", crl_shards: 4}\n"
    "key_profiles:\n"
    "  - {name: standard, rsa_min_bits: 2048, rsa_max_bits: 4096, ec_curves: [P-256, P-384]}\n"
    "profiles:\n"
    "  - name: tls-server\n"
    "    authority: issuing\n"
    "    key_profile: standard\n"
    "    max_validity_days: 397\n"
    "    key_usage: [digitalSignature, keyEncipherment]\n"
    "    extended_key_usage: [serverAuth]\n"
    "    subject_fields: [CN, O]\n"
    "    san: {dns: [\"*.example.com\"], ip: [\"10.*\"]}\n"
    "  - name: device\n"
    "    authority: issuing\n"
    "    key_profile: standard\n"
    "    max_validity_days: 3650\n"
    "    key_usage: [digitalSignature]\n"
    "    extended_key_usage: [clientAuth]\n"
    "    subject_fields: [CN, serialNumber]\n"
    "    subject_cn_required: true\n"
    "est:\n"
    "  profiles: [device]\n"
    /* TOTP's endpoints on, the step-up policy empty: the handlers behind it keep their
     * inputs (a step-up would end each request at the database). */
    "mfa:\n"
    "  wrap_key: mfa-wrap\n"
    "  step_up: {ca-admin: [], admin: [], officer: [], auditor: [], operator: [], ra: []}\n";

/* A self-signed P-256 CA certificate and its key in dir. */
static void make_ca(const char *dir)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	char path[512];
	FILE *f;

	if (!k || !x)
		abort();
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"fuzz CA", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	if (!X509_sign(x, k, EVP_sha256()))
		abort();
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	if (!(f = fopen(path, "w")) || !PEM_write_X509(f, x) || fclose(f))
		abort();
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	if (!(f = fopen(path, "w")) || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) ||
	    fclose(f))
		abort();
	X509_free(x);
	EVP_PKEY_free(k);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/hsmca-fuzz-cad-api.XXXXXX", path[600], text[4096], err[512];
	FILE *f;
	int lfd;

	(void)argc;
	(void)argv;
	log_init("fuzz_cad_api", LOG_ERROR);
	if (!mkdtemp(dir))
		abort();
	make_ca(dir);
	snprintf(text, sizeof(text), config_fmt, dir, dir, dir, dir);
	snprintf(path, sizeof(path), "%s/cad.yaml", dir);
	if (!(f = fopen(path, "w")) || fputs(text, f) < 0 || fclose(f))
		abort();
	if (cad_config_load(path, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_cad_api: %s\n", err);
		abort();
	}
	cad.cfg = &cfg;
	pthread_mutex_init(&cad.lock, NULL);
	ca_init(&cad.ca, cfg.authorities, cfg.n_authorities, cfg.database, &cad.lock, cad_load_key,
	        NULL);
	if (cad_sessions_init(&cad.sessions, 16, cfg.session_idle_seconds,
	                      cfg.session_max_seconds) != 0)
		abort();
	cad.n_workers = 1;
	w = &cad.workers[0];
	w->cad = &cad;
	w->base = event_base_new();
	w->http = w->base ? evhttp_new(w->base) : NULL;
	if (!w->http)
		abort();
	evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg.max_body_bytes * 2);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg.max_header_bytes);
	evhttp_set_timeout(w->http, 5);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	                                        EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	                                        EVHTTP_REQ_HEAD);
	evhttp_set_gencb(w->http, cad_dispatch, w);
	listen_addr.sun_family = AF_UNIX;
	if ((size_t)snprintf(listen_addr.sun_path, sizeof(listen_addr.sun_path), "%s/cad.sock",
	                     dir) >= sizeof(listen_addr.sun_path))
		abort();
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) != 0 ||
	    listen(lfd, 64) != 0 || !evhttp_accept_socket_with_handle(w->http, lfd))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t sent = 0;
	char buf[65536];
	int fd, eof = 0;

	if (size < 1 || size > 64 * 1024)
		return 0;
	cad.fuzz_role = roles[data[0] % 6];
	data++;
	size--;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		abort();
	/* A full backlog answers EAGAIN: let cad accept, then try again. Anything else, or a
	 * backlog cad never drains, is the harness's fault, not a finding about the input. */
	for (int i = 0; connect(fd, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) != 0;
	     i++) {
		if (errno != EAGAIN || i == 1000) {
			perror("fuzz_cad_api: connect");
			abort();
		}
		event_base_loop(w->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
	}
	/* Write the requests while cad runs, then half-close: cad answers what is complete and
	 * closes. Bounded: a stuck exchange ends after the iterations. */
	for (int i = 0; i < 20000 && !eof; i++) {
		ssize_t n;
		if (sent < size) {
			n = write(fd, data + sent, size - sent);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				sent = size;
			if (sent == size)
				shutdown(fd, SHUT_WR);
		}
		event_base_loop(w->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			;
		if (n == 0 || (n < 0 && errno != EAGAIN))
			eof = 1;
	}
	close(fd);
	/* Let cad see the close and free the connection. */
	for (int i = 0; i < 50; i++)
		event_base_loop(w->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
	return 0;
}
