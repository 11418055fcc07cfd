/* tls-alpn-01 (RFC 8737): a TLS handshake with the identifier's address (checked against the
 * allow-ranges before connecting), offering only ALPN "acme-tls/1" with the identifier as SNI
 * (RFC 8738 §6: the reverse-DNS name for an ip identifier). The self-signed certificate must
 * name exactly the identifier in its SAN and carry a critical acmeIdentifier extension
 * (id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31) holding SHA-256 of the key authorization. No
 * other property of the certificate or its chain is checked. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "acmevald.h"

#define ACME_TLS_1 "acme-tls/1"
#define OID_ACME_IDENTIFIER "1.3.6.1.5.5.7.1.31"

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A connected non-blocking socket to ss within timeout_ms, or -1. */
static int connect_to(const struct sockaddr_storage *ss, long timeout_ms)
{
	socklen_t len =
	    ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), soerr = 0;
	socklen_t sl = sizeof(soerr);
	struct pollfd p;

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss, len) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, (int)(timeout_ms > 0 ? timeout_ms : 1)) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/* RFC 8738 §6: "4.3.2.1.in-addr.arpa" or the ip6.arpa nibbles. */
static void reverse_name(const char *ip, char *out, size_t outlen)
{
	unsigned char a[16];
	size_t pos = 0;

	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(out, outlen, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return;
	}
	if (inet_pton(AF_INET6, ip, a) != 1) {
		snprintf(out, outlen, "%s", ip);
		return;
	}
	for (int i = 15; i >= 0 && pos + 4 < outlen; i--)
		pos += (size_t)snprintf(out + pos, outlen - pos, "%x.%x.", a[i] & 0xf, a[i] >> 4);
	snprintf(out + pos, outlen - pos, "ip6.arpa");
}

/* The certificate's checks: 0 when it proves the challenge, else -1 with res filled. */
static int check_cert(X509 *cert, const struct acmeval_req *req, struct acmeval_result *res)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	ASN1_OBJECT *oid = OBJ_txt2obj(OID_ACME_IDENTIFIER, 1);
	unsigned char want[34];
	int idx, rc = -1;

	if (!oid) {
		acmeval_fail(res, "serverInternal", "out of memory");
		goto out;
	}
	if (!sans || sk_GENERAL_NAME_num(sans) != 1) {
		acmeval_fail(res, "unauthorized",
		             "incorrect validation certificate for tls-alpn-01: it must name "
		             "exactly one subjectAltName, %s (it names %d)",
		             req->identifier, sans ? sk_GENERAL_NAME_num(sans) : 0);
		goto out;
	}
	{
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, 0);
		int ok = 0;
		if (!req->is_ip && gn->type == GEN_DNS) {
			const ASN1_IA5STRING *s = gn->d.dNSName;
			size_t n = strlen(req->identifier);
			ok = (size_t)s->length == n &&
			     strncasecmp((const char *)s->data, req->identifier, n) == 0;
		} else if (req->is_ip && gn->type == GEN_IPADD) {
			unsigned char a[16];
			int alen = inet_pton(AF_INET, req->identifier, a) == 1 ? 4 : 16;
			if (alen == 16 && inet_pton(AF_INET6, req->identifier, a) != 1)
				alen = 0;
			ok = alen && gn->d.iPAddress->length == alen &&
			     memcmp(gn->d.iPAddress->data, a, (size_t)alen) == 0;
		}
		if (!ok) {
			acmeval_fail(res, "unauthorized",
			             "incorrect validation certificate for tls-alpn-01: its "
			             "subjectAltName is not %s",
			             req->identifier);
			goto out;
		}
	}
	idx = X509_get_ext_by_OBJ(cert, oid, -1);
	if (idx < 0) {
		acmeval_fail(res, "unauthorized",
		             "incorrect validation certificate for tls-alpn-01: no acmeIdentifier "
		             "extension");
		goto out;
	}
	if (X509_get_ext_by_OBJ(cert, oid, idx) >= 0) {
		acmeval_fail(res, "unauthorized",
		             "incorrect validation certificate for tls-alpn-01: more than one "
		             "acmeIdentifier extension");
		goto out;
	}
	{
		X509_EXTENSION *ext = X509_get_ext(cert, idx);
		const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
		if (!X509_EXTENSION_get_critical(ext)) {
			acmeval_fail(res, "unauthorized",
			             "incorrect validation certificate for tls-alpn-01: the "
			             "acmeIdentifier extension is not critical");
			goto out;
		}
		/* extnValue = DER of OCTET STRING (SIZE (32)): 04 20 and the digest. */
		want[0] = 0x04;
		want[1] = 0x20;
		acmeval_keyauth_digest(req->key_authorization, want + 2);
		if (ASN1_STRING_length(v) != (int)sizeof(want) ||
		    memcmp(ASN1_STRING_get0_data(v), want, sizeof(want)) != 0) {
			acmeval_fail(res, "unauthorized",
			             "incorrect validation certificate for tls-alpn-01: the "
			             "acmeIdentifier extension does not hold the SHA-256 of this "
			             "challenge's key authorization");
			goto out;
		}
	}
	rc = 0;
out:
	GENERAL_NAMES_free(sans);
	ASN1_OBJECT_free(oid);
	return rc;
}

void acmeval_tlsalpn01(const struct acmeval_config *cfg, const struct acmeval_req *req,
                       struct acmeval_result *res)
{
	static const unsigned char alpn[] = "\x0a" ACME_TLS_1;
	struct sockaddr_storage addrs[ACMEVAL_MAX_ADDRS];
	long deadline = now_ms() + cfg->total_timeout_ms;
	char sni[80], a[64];
	const unsigned char *sel = NULL;
	unsigned int sellen = 0;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	X509 *cert = NULL;
	size_t n = 0;
	int fd = -1, r;

	memset(res, 0, sizeof(*res));
	if (acmeval_resolve(cfg, req->identifier, cfg->tls_alpn_port, addrs, ACMEVAL_MAX_ADDRS, &n,
	                    cfg->total_timeout_ms, res))
		return;
	for (size_t i = 0; i < n && fd < 0; i++) {
		long left = deadline - now_ms();
		if (!acmeval_addr_allowed(cfg->allow, cfg->nallow,
		                          (const struct sockaddr *)&addrs[i]))
			continue;
		fd = connect_to(&addrs[i],
		                left < cfg->connect_timeout_ms ? left : cfg->connect_timeout_ms);
		if (fd < 0) {
			acmeval_addr_text((const struct sockaddr *)&addrs[i], a, sizeof(a));
			acmeval_fail(res, "connection", "cannot connect to %s port %d", a,
			             cfg->tls_alpn_port);
		}
	}
	if (fd < 0) {
		if (!res->problem_type[0]) {
			acmeval_addr_text((const struct sockaddr *)&addrs[0], a, sizeof(a));
			acmeval_fail(res, "connection",
			             "%s resolves to %s, outside the validator's allowed address "
			             "ranges: not connecting",
			             req->identifier, a);
		}
		return;
	}
	if (req->is_ip)
		reverse_name(req->identifier, sni, sizeof(sni));
	else
		snprintf(sni, sizeof(sni), "%s", req->identifier);
	if (!(ctx = SSL_CTX_new(TLS_client_method())) ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) || !(ssl = SSL_new(ctx)) ||
	    SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1) != 0 ||
	    !SSL_set_tlsext_host_name(ssl, sni) || !SSL_set_fd(ssl, fd)) {
		acmeval_fail(res, "serverInternal", "TLS set-up failed");
		goto out;
	}
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	while ((r = SSL_connect(ssl)) != 1) {
		int e = SSL_get_error(ssl, r);
		struct pollfd p = {.fd = fd};
		long left = deadline - now_ms();
		if (e == SSL_ERROR_WANT_READ)
			p.events = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			p.events = POLLOUT;
		else {
			unsigned long oe = ERR_peek_last_error();
			acmeval_fail(res, "tls", "TLS handshake with %s failed%s%s",
			             req->identifier, oe ? ": " : "",
			             oe ? ERR_reason_error_string(oe) : "");
			ERR_clear_error();
			goto out;
		}
		if (left > cfg->read_timeout_ms)
			left = cfg->read_timeout_ms;
		if (left <= 0 || poll(&p, 1, (int)left) != 1) {
			acmeval_fail(res, "connection", "timeout during the TLS handshake with %s",
			             req->identifier);
			goto out;
		}
	}
	SSL_get0_alpn_selected(ssl, &sel, &sellen);
	if (sellen != strlen(ACME_TLS_1) || memcmp(sel, ACME_TLS_1, sellen) != 0) {
		acmeval_fail(res, "unauthorized", "the server at %s did not negotiate ALPN \"%s\"",
		             req->identifier, ACME_TLS_1);
		goto out;
	}
	cert = SSL_get1_peer_certificate(ssl);
	if (!cert) {
		acmeval_fail(res, "unauthorized", "the server at %s sent no certificate",
		             req->identifier);
		goto out;
	}
	if (check_cert(cert, req, res) == 0)
		res->valid = 1;
out:
	X509_free(cert);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	ERR_clear_error();
}
