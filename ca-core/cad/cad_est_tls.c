/* Client certificates of devices: the CAs that issue the EST profiles are trusted beside the
 * operator-auth CA, so a device can re-enrol over mutual TLS; but such a certificate is told
 * apart by the CA its chain ends in, and authenticates to EST re-enrolment only, never to the
 * API (cad_tls_peer). An expired device certificate passes the handshake so that EST can
 * answer with a reason (RFC 7030 wants an HTTP answer); it is refused there. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "cad_internal.h"

static int ctx_index = -1, ops_index = -1;

static void free_cas(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	sk_X509_pop_free(ptr, X509_free);
}

static STACK_OF(X509) * device_cas(SSL_CTX *ctx)
{
	return ctx_index < 0 ? NULL : SSL_CTX_get_ex_data(ctx, ctx_index);
}

static STACK_OF(X509) * operator_cas(SSL_CTX *ctx)
{
	return ops_index < 0 ? NULL : SSL_CTX_get_ex_data(ctx, ops_index);
}

static int is_device_ca(STACK_OF(X509) * cas, X509 *x)
{
	for (int i = 0; x && i < sk_X509_num(cas); i++)
		if (!X509_cmp(sk_X509_value(cas, i), x))
			return 1;
	return 0;
}

static int issued_by_device_ca(STACK_OF(X509) * cas, X509 *leaf)
{
	for (int i = 0; leaf && i < sk_X509_num(cas); i++)
		if (X509_check_issued(sk_X509_value(cas, i), leaf) == X509_V_OK)
			return 1;
	return 0;
}

/* Expiry of a device's own certificate is decided per request (EST answers it); everything
 * else fails the handshake as before. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl;
	int e = X509_STORE_CTX_get_error(x);

	if (ok)
		return 1;
	if (X509_STORE_CTX_get_error_depth(x) != 0 ||
	    (e != X509_V_ERR_CERT_HAS_EXPIRED && e != X509_V_ERR_CERT_NOT_YET_VALID))
		return 0;
	ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	return ssl && issued_by_device_ca(device_cas(SSL_get_SSL_CTX(ssl)),
	                                  X509_STORE_CTX_get_current_cert(x));
}

int cad_est_tls_setup(SSL_CTX *ctx, const struct cad_config *cfg, char *err, size_t errsz)
{
	STACK_OF(X509) *cas = NULL, *ops = NULL;
	FILE *f = NULL;
	X509 *x;
	int rc = -1;

	if (cfg->n_est_profiles == 0)
		return 0;
	if (ctx_index < 0)
		ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_cas);
	if (ops_index < 0)
		ops_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_cas);
	cas = sk_X509_new_null();
	ops = sk_X509_new_null();
	if (ctx_index < 0 || ops_index < 0 || !cas || !ops) {
		snprintf(err, errsz, "EST: out of memory");
		goto out;
	}
	/* The operator-auth CA bundle, to refuse a device CA that is also an operator CA:
	 * then device certificates could not be told apart from operators'. */
	if (!(f = fopen(cfg->tls_client_ca, "r"))) {
		snprintf(err, errsz, "EST: cannot read %s", cfg->tls_client_ca);
		goto out;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)))
		sk_X509_push(ops, x);
	ERR_clear_error();
	for (size_t i = 0; i < cfg->n_est_profiles; i++) {
		X509 *ca = cfg->est_profiles[i]->authority->cert;
		if (is_device_ca(cas, ca))
			continue;
		if (is_device_ca(ops, ca)) {
			snprintf(err, errsz,
			         "EST: authority %s of profile %s is also in tls.client_ca: device "
			         "certificates must come from another CA than operators'",
			         cfg->est_profiles[i]->authority->name, cfg->est_profiles[i]->name);
			goto out;
		}
		if (!X509_up_ref(ca) || !sk_X509_push(cas, ca)) {
			snprintf(err, errsz, "EST: out of memory");
			goto out;
		}
		if (!X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) ||
		    !SSL_CTX_add_client_CA(ctx, ca)) {
			snprintf(err, errsz,
			         "EST: trusting authority %s for device certificates failed",
			         cfg->est_profiles[i]->authority->name);
			ERR_clear_error();
			goto out;
		}
	}
	SSL_CTX_set_ex_data(ctx, ctx_index, cas);
	SSL_CTX_set_ex_data(ctx, ops_index, ops);
	cas = NULL;
	ops = NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	rc = 0;
out:
	if (f)
		fclose(f);
	sk_X509_pop_free(ops, X509_free);
	sk_X509_pop_free(cas, X509_free);
	return rc;
}

int cad_est_peer_is_device(SSL *ssl)
{
	STACK_OF(X509) *cas = device_cas(SSL_get_SSL_CTX(ssl));
	STACK_OF(X509) * chain;

	if (sk_X509_num(cas) == 0)
		return 0;
	chain = SSL_get0_verified_chain(ssl);
	if (sk_X509_num(chain) > 1) {
		/* Above the leaf: a device CA and no operator-auth CA (were one CA under the
		 * other, the chain could run on past the one that matters). */
		int device = 0;
		for (int i = 1; i < sk_X509_num(chain); i++) {
			if (is_device_ca(operator_cas(SSL_get_SSL_CTX(ssl)),
			                 sk_X509_value(chain, i)))
				return 0;
			device |= is_device_ca(cas, sk_X509_value(chain, i));
		}
		return device;
	}
	/* No verified chain (an expired device certificate let through): by its issuer. */
	return issued_by_device_ca(cas, SSL_get0_peer_certificate(ssl));
}
