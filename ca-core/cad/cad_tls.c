/* TLS for the API: TLS 1.2 and 1.3 only, ECDHE with AEAD ciphers only, client certificates
 * checked against the operator-auth CA when offered (bearer tokens are the alternative). */
#include <stdio.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "cad_internal.h"
#include "cakey.h"

/* TLS 1.2: forward secrecy and AEAD only. TLS 1.3's suites are all AEAD with (EC)DHE. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char tls13_suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

static void ssl_err(char *err, size_t errsz, const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errsz, "%s: %s", what, e ? buf : "unknown OpenSSL error");
	ERR_clear_error();
}

EVP_PKEY *cad_load_key(const char *uri, char *err, size_t errsz)
{
	return ca_key_open(uri, err, errsz);
}

SSL_CTX *cad_tls_new(const struct cad_config *cfg, char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	STACK_OF(X509_NAME) *names = NULL;
	EVP_PKEY *key = NULL;
	SSL_CTX *ret = NULL;

	if (!ctx) {
		ssl_err(err, errsz, "creating the TLS context");
		goto out;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, tls12_ciphers) ||
	    !SSL_CTX_set_ciphersuites(ctx, tls13_suites) ||
	    !SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384")) {
		ssl_err(err, errsz, "setting TLS versions and ciphers");
		goto out;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		ssl_err(err, errsz, "loading the TLS certificate chain");
		goto out;
	}
	key = cad_load_key(cfg->tls_key, err, errsz);
	if (!key)
		goto out;
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errsz, "the TLS key does not match the certificate");
		goto out;
	}
	if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1) {
		ssl_err(err, errsz, "loading the client CA bundle");
		goto out;
	}
	names = SSL_load_client_CA_file(cfg->tls_client_ca);
	if (!names) {
		ssl_err(err, errsz, "reading the client CA names");
		goto out;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	/* Ask for a certificate but do not require one: bearer tokens are the other way in. A
	 * certificate that is offered must verify, or the handshake fails. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	/* The operator-auth CA itself is the trust anchor, though it is an
	 * intermediate: trusting its root would let every certificate under the
	 * root (servers, devices) through the handshake. */
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
	/* Devices' certificates too, for EST re-enrolment only (cad_est_tls.c). */
	if (cad_est_tls_setup(ctx, cfg, err, errsz) != 0)
		goto out;
	ret = ctx;
	ctx = NULL;
out:
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return ret;
}

SSL *cad_request_ssl(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;

	return bev ? bufferevent_openssl_get_ssl(bev) : NULL;
}

X509 *cad_tls_peer(struct evhttp_request *req)
{
	SSL *ssl = cad_request_ssl(req);
	X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;

	if (!peer || SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	/* A device's certificate is for EST only, never the API. */
	if (cad_est_peer_is_device(ssl))
		return NULL;
	return peer;
}
