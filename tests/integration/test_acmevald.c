/* hsmca-acmevald end to end: the daemon of the build tree (as "nobody" under its seccomp filter
 * when the test runs as root), asked through acmeval_validate (the client cad links), against
 * responders in this process: an HTTP server, a TLS server answering ALPN acme-tls/1 with a
 * certificate made per case, Knot DNS (tests/dns/start.sh) for dns-01 and name resolution, and
 * listeners on 127.0.0.2 (outside the allowed ranges) that count every connection they get.
 * The fixture lives in this process (CK_NOFORK) so the counts are visible to the tests. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "acmeval.h"
#include "acmeval_wire.h"
#include "harness.h"

static char dir[64], sock[128], sock2[128], dnsdir[128], log1_path[128], log2_path[128];
static int http_port, tls_port, dns_port;
static pid_t daemon_pid = -1, daemon2_pid = -1;
static int http6_fd = -1;
static int http_fd = -1, tls_fd = -1, out_http_fd = -1, out_tls_fd = -1;
static atomic_int out_connections, stopping;
static pthread_t threads[5];
static int nthreads;

/* ---- helpers ---- */

static void ka_of(const char *token, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI", token);
}

static int listen_on(const char *addr, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	inet_pton(AF_INET, addr, &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16))
		harness_die("listen");
	return fd;
}

/* [::1]:port, or -1 when the host has no IPv6 loopback. */
static int listen6_on(int port)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6,
	                          .sin6_port = htons((uint16_t)port),
	                          .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* accept with a poll that notices stopping. */
static int accept_one(int lfd)
{
	while (!atomic_load(&stopping)) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		if (poll(&p, 1, 100) == 1)
			return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	}
	return -1;
}

static void *outside_thread(void *arg)
{
	int lfd = *(int *)arg, fd;

	while ((fd = accept_one(lfd)) >= 0 || !atomic_load(&stopping)) {
		if (fd >= 0) {
			atomic_fetch_add(&out_connections, 1);
			close(fd);
		}
	}
	return NULL;
}

/* ---- the HTTP responder: its answer depends on the token ---- */

static void reply(int fd, const char *status, const char *extra, const char *body, size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
	                 status, extra, len);

	(void)!write(fd, head, (size_t)n);
	if (len)
		(void)!write(fd, body, len);
}

static void http_serve(int fd)
{
	char req[4096], path[512], body[4096], loc[600];
	size_t got = 0;
	const char *tok;

	req[0] = 0;
	while (got < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
		ssize_t r = read(fd, req + got, sizeof(req) - 1 - got);
		if (r <= 0)
			return;
		got += (size_t)r;
		req[got] = 0;
	}
	if (sscanf(req, "GET %511s HTTP/1.1", path) != 1)
		return;
	if (strncmp(path, "/.well-known/acme-challenge/", 28) != 0) {
		reply(fd, "404 Not Found", "", "", 0);
		return;
	}
	tok = path + 28;
#define REDIRECT(fmt, ...)                                                                         \
	do {                                                                                       \
		char h[700];                                                                       \
		snprintf(loc, sizeof(loc), fmt, __VA_ARGS__);                                      \
		snprintf(h, sizeof(h), "Location: %s\r\n", loc);                                   \
		reply(fd, "302 Found", h, "", 0);                                                  \
	} while (0)
	if (strcmp(tok, "wrongbody") == 0)
		reply(fd, "200 OK", "", "not-the-key-authorization", 25);
	else if (strcmp(tok, "big") == 0) {
		memset(body, 'a', 2000);
		reply(fd, "200 OK", "", body, 2000);
	} else if (strcmp(tok, "slow") == 0)
		sleep(2); /* nothing at all, longer than the validator's read timeout */
	else if (strcmp(tok, "notfound") == 0)
		reply(fd, "404 Not Found", "", "", 0);
	else if (strcmp(tok, "loop") == 0)
		REDIRECT("http://www.example.com:%d/.well-known/acme-challenge/loop", http_port);
	else if (strcmp(tok, "redir") == 0)
		REDIRECT("http://other.example.com:%d/.well-known/acme-challenge/redir-target",
		         http_port);
	else if (strcmp(tok, "redir-target") == 0) {
		ka_of("redir", body, sizeof(body));
		reply(fd, "200 OK", "", body, strlen(body));
	} else if (strcmp(tok, "redir-out") == 0)
		REDIRECT("http://outside.example.net:%d/.well-known/acme-challenge/x", http_port);
	else if (strcmp(tok, "redir-ip-out") == 0)
		REDIRECT("http://127.0.0.2:%d/.well-known/acme-challenge/x", http_port);
	else if (strcmp(tok, "redir-mapped") == 0)
		REDIRECT("http://[::ffff:127.0.0.2]:%d/.well-known/acme-challenge/x", http_port);
	else if (strcmp(tok, "redir-port") == 0)
		REDIRECT("http://www.example.com:%d/.well-known/acme-challenge/x", http_port + 1);
	else if (strcmp(tok, "redir-ftp") == 0)
		REDIRECT("ftp://www.example.com:%d/x", http_port);
	else if (strcmp(tok, "chain") == 0)
		REDIRECT("http://www.example.com:%d/.well-known/acme-challenge/chain1", http_port);
	else if (strncmp(tok, "chain", 5) == 0) {
		int n = atoi(tok + 5);
		REDIRECT("http://www.example.com:%d/.well-known/acme-challenge/chain%d", http_port,
		         n + 1);
	} else {
		ka_of(tok, body, sizeof(body));
		strcat(body, " \r\n"); /* trailing white space is allowed */
		reply(fd, "200 OK", "", body, strlen(body));
	}
#undef REDIRECT
}

static void *http_thread(void *arg)
{
	int fd, lfd = *(int *)arg;

	while ((fd = accept_one(lfd)) >= 0 || !atomic_load(&stopping)) {
		if (fd >= 0) {
			http_serve(fd);
			close(fd);
		}
	}
	return NULL;
}

/* ---- the TLS-ALPN responder: the certificate of the current case ---- */

enum tls_mode {
	TLS_VALID,
	TLS_WRONG_DIGEST,
	TLS_NONCRITICAL,
	TLS_NO_EXT,
	TLS_TWO_SANS,
	TLS_NO_ALPN,
	TLS_WRONG_SAN
};
static _Atomic int tls_mode;
static char tls_ka[300];
static char tls_name[300];
static EVP_PKEY *tls_key;

static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)s, (void)arg;
	if (atomic_load(&tls_mode) == TLS_NO_ALPN)
		return SSL_TLSEXT_ERR_NOACK;
	if (inlen == 11 && memcmp(in,
	                          "\x0a"
	                          "acme-tls/1",
	                          11) == 0) {
		*out = in + 1;
		*outlen = 10;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static X509 *make_cert(int mode)
{
	X509 *x = X509_new();
	unsigned char d[32], der[40], *p = der;
	ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new(), *outer = ASN1_OCTET_STRING_new();
	ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	char san[700];
	int len;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"acme", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, tls_key);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (mode == TLS_TWO_SANS)
		snprintf(san, sizeof(san), "DNS:%s,DNS:extra.example.com", tls_name);
	else if (mode == TLS_WRONG_SAN)
		snprintf(san, sizeof(san), "DNS:someone-else.example.com");
	else
		snprintf(san, sizeof(san), "DNS:%s", tls_name);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (mode != TLS_NO_EXT) {
		SHA256((const unsigned char *)tls_ka, strlen(tls_ka), d);
		if (mode == TLS_WRONG_DIGEST)
			d[0] ^= 1;
		ASN1_OCTET_STRING_set(inner, d, 32);
		len = i2d_ASN1_OCTET_STRING(inner, &p);
		ASN1_OCTET_STRING_set(outer, der, len);
		ext = X509_EXTENSION_create_by_OBJ(NULL, oid, mode != TLS_NONCRITICAL, outer);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	X509_sign(x, tls_key, EVP_sha256());
	ASN1_OCTET_STRING_free(inner);
	ASN1_OCTET_STRING_free(outer);
	ASN1_OBJECT_free(oid);
	return x;
}

static void *tls_thread(void *arg)
{
	int fd;

	(void)arg;
	while ((fd = accept_one(tls_fd)) >= 0 || !atomic_load(&stopping)) {
		SSL_CTX *ctx;
		SSL *ssl;
		X509 *x;
		struct timeval tv = {2, 0};

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		x = make_cert(atomic_load(&tls_mode));
		ctx = SSL_CTX_new(TLS_server_method());
		SSL_CTX_use_certificate(ctx, x);
		SSL_CTX_use_PrivateKey(ctx, tls_key);
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

/* ---- the daemon ---- */

static void wait_socket(const char *path, pid_t pid)
{
	struct stat st;

	for (int i = 0; i < 200; i++) {
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			harness_die("hsmca-acmevald exited at start");
		usleep(50000);
	}
	harness_die("hsmca-acmevald's socket");
}

static void write_config(const char *path, const char *socket_path, const char *extra)
{
	char text[4096];

	snprintf(text, sizeof(text),
	         "listen:\n"
	         "  path: %s\n"
	         "  mode: \"0660\"\n"
	         "%s"
	         "allow: [127.0.0.1/32, \"::1/128\"]\n"
	         "hosts:\n"
	         "  - {name: outside.example.net, address: 127.0.0.2}\n"
	         "  - {name: \"*.example.com\", address: 127.0.0.1}\n"
	         "ports: {http: %d, https: %d, tls_alpn: %d}\n"
	         "timeouts: {connect_ms: 1000, read_ms: 700, total_ms: 4000}\n"
	         "max_response_bytes: 256\n"
	         "max_redirects: 4\n"
	         "resolver: 127.0.0.1:%d\n"
	         "%s",
	         socket_path, extra, http_port, http_port + 2, tls_port, dns_port,
	         geteuid() == 0 ? "user: nobody\n" : "");
	harness_write_text(path, text);
}

static int daemon_bad_exit;

/* SIGTERM a daemon and check it stopped cleanly (exit 0: no leak, no sanitizer report). */
static void stop_daemon(pid_t *pid, const char *log)
{
	int st = 0;

	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	waitpid(*pid, &st, 0);
	*pid = -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "hsmca-acmevald did not stop cleanly (status 0x%x); its log:\n%s\n",
		        st, harness_slurp(log));
		daemon_bad_exit = 1;
	}
}

static void cleanup(void)
{
	atomic_store(&stopping, 1);
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	nthreads = 0;
	stop_daemon(&daemon_pid, log1_path);
	stop_daemon(&daemon2_pid, log2_path);
	if (dnsdir[0]) {
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "%s/tests/dns/stop.sh", getenv("HSMCA_SRC"));
		char *const argv[] = {cmd, dnsdir, NULL};
		harness_run(argv, NULL);
	}
}

static void start_all(void)
{
	static int out_ports[2];
	char cmd[400], conf[200], out[200];
	EVP_PKEY_CTX *kctx;

	harness_die_init("test_acmevald", cleanup);
	harness_setup_phase = 1;
	snprintf(dir, sizeof(dir), "/tmp/hsmca-acmeval.XXXXXX");
	if (!mkdtemp(dir))
		harness_die("mkdtemp");
	chmod(dir, 0755);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("nobody");
		if (!pw || chown(dir, pw->pw_uid, pw->pw_gid))
			harness_die("chown to nobody");
	}
	snprintf(sock, sizeof(sock), "%s/acmeval.sock", dir);
	snprintf(sock2, sizeof(sock2), "%s/acmeval2.sock", dir);
	snprintf(log1_path, sizeof(log1_path), "%s/acmevald.log", dir);
	snprintf(log2_path, sizeof(log2_path), "%s/acmevald2.log", dir);
	snprintf(dnsdir, sizeof(dnsdir), "%s/dns", dir);

	/* Knot DNS for dns-01 and names resolved through DNS. */
	snprintf(cmd, sizeof(cmd), "%s/tests/dns/start.sh", getenv("HSMCA_SRC"));
	snprintf(out, sizeof(out), "%s/dns-start.out", dir);
	{
		char *const argv[] = {cmd, dnsdir, NULL};
		if (harness_run(argv, out) != 0) {
			fputs(harness_slurp(out), stderr);
			harness_die("tests/dns/start.sh");
		}
	}
	dns_port = atoi(harness_slurp(harness_pathf(dnsdir, "port")));

	http_port = harness_free_port();
	tls_port = harness_free_port();
	http_fd = listen_on("127.0.0.1", http_port);
	tls_fd = listen_on("127.0.0.1", tls_port);
	out_http_fd = listen_on("127.0.0.2", http_port);
	http6_fd = listen6_on(http_port);
	out_tls_fd = listen_on("127.0.0.2", tls_port);
	out_ports[0] = out_http_fd;
	out_ports[1] = out_tls_fd;
	kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY_keygen_init(kctx);
	EVP_PKEY_CTX_set_group_name(kctx, "P-256");
	EVP_PKEY_keygen(kctx, &tls_key);
	EVP_PKEY_CTX_free(kctx);
	pthread_create(&threads[nthreads++], NULL, http_thread, &http_fd);
	if (http6_fd >= 0)
		pthread_create(&threads[nthreads++], NULL, http_thread, &http6_fd);
	pthread_create(&threads[nthreads++], NULL, tls_thread, NULL);
	pthread_create(&threads[nthreads++], NULL, outside_thread, &out_ports[0]);
	pthread_create(&threads[nthreads++], NULL, outside_thread, &out_ports[1]);

	snprintf(conf, sizeof(conf), "%s/acmevald.yaml", dir);
	write_config(conf, sock, "");
	daemon_pid = harness_spawn_daemon("acmeval/hsmca-acmevald", conf, "--verbose", log1_path);
	wait_socket(sock, daemon_pid);
	/* A second validator that answers only uid 65533 (nobody we are). */
	snprintf(conf, sizeof(conf), "%s/acmevald2.yaml", dir);
	write_config(conf, sock2, "  peer_user: \"65533\"\n");
	daemon2_pid = harness_spawn_daemon("acmeval/hsmca-acmevald", conf, NULL, log2_path);
	wait_socket(sock2, daemon2_pid);
	harness_setup_phase = 0;
}

static struct acmeval_result ask(enum acmeval_type type, const char *idtype, const char *ident,
                                 const char *token)
{
	struct acmeval_request r = {type, idtype, ident, token, NULL};
	struct acmeval_result res;
	char ka[300];
	int rc;

	ka_of(token, ka, sizeof(ka));
	r.key_authorization = ka;
	rc = acmeval_validate(sock, &r, 10000, &res);
	ck_assert_msg(rc == 0, "acmeval_validate: %s", res.detail);
	return res;
}

#define ck_valid(res)                                                                              \
	ck_assert_msg((res).valid == 1, "not valid: %s: %s", (res).problem_type, (res).detail)
#define ck_invalid(res, type, text)                                                                \
	do {                                                                                       \
		ck_assert_msg((res).valid == 0, "unexpectedly valid");                             \
		ck_assert_str_eq((res).problem_type, type);                                        \
		ck_assert_msg(strstr((res).detail, text), "detail \"%s\" lacks \"%s\"",            \
		              (res).detail, text);                                                 \
	} while (0)

/* ---- http-01 ---- */

START_TEST(http_valid)
{
	ck_valid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "tokenOK_1"));
	/* Resolved through DNS (Knot), not the hosts mapping. */
	ck_valid(ask(ACMEVAL_HTTP01, "dns", "www.example.test", "tokenOK_2"));
	ck_valid(ask(ACMEVAL_HTTP01, "ip", "127.0.0.1", "tokenOK_3"));
	if (http6_fd >= 0)
		ck_valid(ask(ACMEVAL_HTTP01, "ip", "::1", "tokenOK_4"));
}
END_TEST

START_TEST(http_wrong_body)
{
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "wrongbody"), "unauthorized",
	           "does not match");
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "notfound"), "unauthorized",
	           "HTTP 404");
}
END_TEST

START_TEST(http_refused_outside)
{
	int before = atomic_load(&out_connections);

	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "outside.example.net", "x1"), "connection",
	           "outside the validator's allowed address ranges");
	ck_invalid(ask(ACMEVAL_HTTP01, "ip", "127.0.0.2", "x2"), "connection", "outside");
	ck_invalid(ask(ACMEVAL_HTTP01, "ip", "::ffff:127.0.0.2", "x3"), "connection", "outside");
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "redir-out"), "connection",
	           "outside");
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "redir-ip-out"), "connection",
	           "outside");
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "redir-mapped"), "connection",
	           "outside");
	usleep(200000);
	ck_assert_int_eq(atomic_load(&out_connections), before);
}
END_TEST

START_TEST(http_redirects)
{
	ck_valid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "redir"));
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "loop"), "connection",
	           "redirect loop");
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "chain"), "connection",
	           "too many redirects");
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "redir-port"), "connection",
	           "port");
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "redir-ftp"), "connection",
	           "scheme");
}
END_TEST

START_TEST(http_timeout_and_size)
{
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "slow"), "connection", "timeout");
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "big"), "unauthorized",
	           "larger than 256 bytes");
	/* Nothing listens on 127.0.0.1:http_port+2. */
	ck_invalid(ask(ACMEVAL_HTTP01, "dns", "nothing.example.org", "x4"), "dns", "");
}
END_TEST

/* ---- dns-01 ---- */

static void txt_add(const char *name, const char *value)
{
	char script[600], path[200], key[200];

	snprintf(path, sizeof(path), "%s/update.txt", dir);
	snprintf(key, sizeof(key), "%s/tsig.key", dnsdir);
	snprintf(script, sizeof(script),
	         "server 127.0.0.1 %d\nzone example.test\nupdate add %s. 5 TXT \"%s\"\nsend\n",
	         dns_port, name, value);
	harness_write_text(path, script);
	char *const argv[] = {"nsupdate", "-k", key, path, NULL};
	ck_assert_int_eq(harness_run(argv, NULL), 0);
}

START_TEST(dns_valid_and_wrong)
{
	char ka[300], digest[44];

	ka_of("dnstok1", ka, sizeof(ka));
	acmeval_keyauth_digest_b64(ka, digest);
	txt_add("_acme-challenge.a.example.test", "some-other-record");
	txt_add("_acme-challenge.a.example.test", digest);
	ck_valid(ask(ACMEVAL_DNS01, "dns", "a.example.test", "dnstok1"));
	/* The digest of another key authorization. */
	txt_add("_acme-challenge.b.example.test", digest);
	ck_invalid(ask(ACMEVAL_DNS01, "dns", "b.example.test", "dnstok2"), "unauthorized",
	           "incorrect TXT record");
	ck_invalid(ask(ACMEVAL_DNS01, "dns", "c.example.test", "dnstok3"), "unauthorized",
	           "no TXT record");
}
END_TEST

/* ---- tls-alpn-01 ---- */

static struct acmeval_result ask_tls(int mode, const char *ident, const char *token)
{
	atomic_store(&tls_mode, mode);
	snprintf(tls_name, sizeof(tls_name), "%s", ident);
	ka_of(token, tls_ka, sizeof(tls_ka));
	return ask(ACMEVAL_TLSALPN01, "dns", ident, token);
}

START_TEST(tls_valid)
{
	ck_valid(ask_tls(TLS_VALID, "www.example.com", "tlstok1"));
}
END_TEST

START_TEST(tls_bad_certificates)
{
	ck_invalid(ask_tls(TLS_WRONG_DIGEST, "www.example.com", "tlstok2"), "unauthorized",
	           "does not hold the SHA-256");
	ck_invalid(ask_tls(TLS_NONCRITICAL, "www.example.com", "tlstok3"), "unauthorized",
	           "not critical");
	ck_invalid(ask_tls(TLS_NO_EXT, "www.example.com", "tlstok4"), "unauthorized",
	           "no acmeIdentifier");
	ck_invalid(ask_tls(TLS_TWO_SANS, "www.example.com", "tlstok5"), "unauthorized",
	           "exactly one");
	ck_invalid(ask_tls(TLS_WRONG_SAN, "www.example.com", "tlstok6"), "unauthorized",
	           "subjectAltName is not");
	ck_invalid(ask_tls(TLS_NO_ALPN, "www.example.com", "tlstok7"), "unauthorized", "ALPN");
}
END_TEST

START_TEST(tls_refused_outside)
{
	int before = atomic_load(&out_connections);

	ck_invalid(ask_tls(TLS_VALID, "outside.example.net", "tlstok8"), "connection", "outside");
	usleep(200000);
	ck_assert_int_eq(atomic_load(&out_connections), before);
}
END_TEST

/* ---- the process ---- */

START_TEST(peer_refused)
{
	struct acmeval_request r = {ACMEVAL_HTTP01, "dns", "www.example.com", "tokenP",
	                            "tokenP.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"};
	struct acmeval_result res;

	ck_assert_int_eq(acmeval_validate(sock2, &r, 5000, &res), -1);
	ck_assert_str_eq(res.problem_type, "serverInternal");
	for (int i = 0; i < 50 && !strstr(harness_slurp(log2_path), "refused a connection"); i++)
		usleep(50000);
	ck_assert_ptr_nonnull(strstr(harness_slurp(log2_path), "refused a connection from uid"));
}
END_TEST

START_TEST(bad_requests)
{
	struct acmeval_request r = {ACMEVAL_DNS01, "ip", "127.0.0.1", "tok",
	                            "tok.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"};
	struct acmeval_result res;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint8_t junk[16] = "AVQ1\0\0\0\x05\x01\x03xyz";
	uint8_t ans[600];
	char err[200];
	ssize_t n;
	int fd;

	/* The client refuses what the validator would. */
	ck_assert_int_eq(acmeval_validate(sock, &r, 5000, &res), -1);
	ck_assert_ptr_nonnull(strstr(res.detail, "dns-01 cannot validate an ip"));
	r.type = ACMEVAL_HTTP01;
	ck_assert_int_eq(acmeval_validate("/nonexistent/socket", &r, 1000, &res), -1);
	ck_assert_ptr_nonnull(strstr(res.detail, "cannot reach the validator"));
	/* A malformed frame gets an answer naming the problem. */
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(write(fd, junk, 13), 13);
	n = read(fd, ans, sizeof(ans) - 1);
	close(fd);
	ck_assert_int_gt(n, 8);
	ck_assert_int_eq(acmeval_ans_decode(ans + 8, (size_t)n - 8, &res, err, sizeof(err)), 0);
	ck_assert_int_eq(res.valid, 0);
	ck_assert_msg(strstr(res.detail, "identifier is truncated"), "%s", res.detail);
}
END_TEST

/* The metrics frame: the counts of the cases above, by type and result. */
START_TEST(metrics_and_logs)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char text[16384];
	uint8_t hdr[8];
	size_t got = 0;
	ssize_t n;
	int fd;

	ck_valid(ask(ACMEVAL_HTTP01, "dns", "www.example.com", "tokenM"));
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	acmeval_frame_put_header(hdr, ACMEVAL_MAGIC_METRICS, 0);
	ck_assert_int_eq(write(fd, hdr, 8), 8);
	while ((n = read(fd, text + got, sizeof(text) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	text[got] = 0;
	ck_assert_int_gt(got, 8);
	ck_assert_int_eq(memcmp(text, "AVT1", 4), 0);
	ck_assert_msg(strstr(text + 8, "hsmca_acmeval_validations_total{type=\"http-01\","
	                               "result=\"valid\"}"),
	              "%s", text + 8);
	/* The log names the token, never the key authorization. */
	ck_assert_ptr_nonnull(strstr(harness_slurp(log1_path), "token=tokenM"));
	ck_assert_ptr_null(strstr(harness_slurp(log1_path), "9jg46WB3rR_AHD"));
}
END_TEST

/* The daemon runs as configured: dropped to nobody (when started as root), no_new_privs and
 * its seccomp filter, and still validates (the checks above ran under it). */
START_TEST(sandbox_loaded)
{
	char path[64], *st;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
	st = harness_slurp(path);
	ck_assert_msg(strstr(st, "NoNewPrivs:\t1"), "%s", st);
	ck_assert_msg(strstr(st, "Seccomp:\t2"), "%s", st);
	if (geteuid() == 0) {
		char uidline[64];
		unsigned u = (unsigned)getpwnam("nobody")->pw_uid;
		snprintf(uidline, sizeof(uidline), "Uid:\t%u\t%u\t%u\t%u", u, u, u, u);
		ck_assert_msg(strstr(st, uidline), "%s", st);
	}
	ck_assert_ptr_nonnull(strstr(harness_slurp(log1_path), "seccomp on"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("acmevald");
	TCase *tc = tcase_create("acmevald");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	start_all();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, http_valid);
	tcase_add_test(tc, http_wrong_body);
	tcase_add_test(tc, http_refused_outside);
	tcase_add_test(tc, http_redirects);
	tcase_add_test(tc, http_timeout_and_size);
	tcase_add_test(tc, dns_valid_and_wrong);
	tcase_add_test(tc, tls_valid);
	tcase_add_test(tc, tls_bad_certificates);
	tcase_add_test(tc, tls_refused_outside);
	tcase_add_test(tc, peer_refused);
	tcase_add_test(tc, bad_requests);
	tcase_add_test(tc, metrics_and_logs);
	tcase_add_test(tc, sandbox_loaded);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cleanup();
	failed += daemon_bad_exit;
	EVP_PKEY_free(tls_key);
	close(http_fd);
	close(tls_fd);
	close(out_http_fd);
	close(out_tls_fd);
	if (http6_fd >= 0)
		close(http6_fd);
	if (!failed) {
		char *const argv[] = {"rm", "-rf", dir, NULL};
		harness_run(argv, NULL);
	}
	return failed ? 1 : 0;
}
