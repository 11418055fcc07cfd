/* Revocation of operators' client certificates: tls.client_crl names the operator-auth CA's
 * CRL (PEM or DER). It is read at start (a bad or unverifiable CRL refuses the start) and read
 * again whenever the file changes (checked at each authentication), so publishing a new CRL
 * takes effect on the next request without a restart; a replacement that does not verify is
 * ignored with a warning and the last good CRL stays in force. A certificate on it gets 401
 * certificate-revoked (and the denial is audited), whatever its principal. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cad_internal.h"
#include "log.h"

/* Read path as a CRL and check its signature with the client CA of the same name. */
static X509_CRL *load(const struct cad_config *cfg, const char *path, char *err, size_t errsz)
{
	STACK_OF(X509_INFO) *infos = NULL;
	X509_CRL *crl = NULL;
	EVP_PKEY *key = NULL;
	BIO *b = BIO_new_file(path, "rb");
	int ok = 0;

	if (!b) {
		snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
	if (!crl) {
		ERR_clear_error();
		(void)BIO_reset(b);
		crl = d2i_X509_CRL_bio(b, NULL);
	}
	if (!crl) {
		snprintf(err, errsz, "%s is not a CRL (PEM or DER)", path);
		goto out;
	}
	BIO_free(b);
	b = BIO_new_file(cfg->tls_client_ca, "r");
	infos = b ? PEM_X509_INFO_read_bio(b, NULL, NULL, NULL) : NULL;
	for (int i = 0; infos && i < sk_X509_INFO_num(infos) && !ok; i++) {
		X509 *ca = sk_X509_INFO_value(infos, i)->x509;
		if (ca && !X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) &&
		    (key = X509_get0_pubkey(ca)) && X509_CRL_verify(crl, key) == 1)
			ok = 1;
	}
	if (!ok)
		snprintf(err, errsz, "%s is not signed by a CA of tls.client_ca (%s)", path,
		         cfg->tls_client_ca);
out:
	ERR_clear_error();
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(b);
	if (!ok) {
		X509_CRL_free(crl);
		crl = NULL;
	}
	return crl;
}

int cad_client_crl_init(struct cad *cad, char *err, size_t errsz)
{
	struct stat st;

	if (!cad->cfg->tls_client_crl[0])
		return 0;
	if (stat(cad->cfg->tls_client_crl, &st) != 0) {
		snprintf(err, errsz, "tls.client_crl: cannot read %s: %s", cad->cfg->tls_client_crl,
		         strerror(errno));
		return -1;
	}
	cad->client_crl = load(cad->cfg, cad->cfg->tls_client_crl, err, errsz);
	if (!cad->client_crl)
		return -1;
	cad->client_crl_mtime = st.st_mtim;
	cad->client_crl_size = st.st_size;
	return 0;
}

int cad_client_cert_revoked(struct cad *cad, X509 *peer)
{
	X509_REVOKED *rev = NULL;
	struct stat st;
	int revoked;

	if (!cad->cfg->tls_client_crl[0])
		return 0;
	pthread_mutex_lock(&cad->lock);
	if (stat(cad->cfg->tls_client_crl, &st) == 0 &&
	    (st.st_mtim.tv_sec != cad->client_crl_mtime.tv_sec ||
	     st.st_mtim.tv_nsec != cad->client_crl_mtime.tv_nsec ||
	     st.st_size != cad->client_crl_size)) {
		char err[600];
		X509_CRL *fresh = load(cad->cfg, cad->cfg->tls_client_crl, err, sizeof(err));
		/* Seen either way: a bad file is reported once, not on every request. */
		cad->client_crl_mtime = st.st_mtim;
		cad->client_crl_size = st.st_size;
		if (fresh) {
			X509_CRL_free(cad->client_crl);
			cad->client_crl = fresh;
			log_info("tls.client_crl: read %s again", cad->cfg->tls_client_crl);
		} else {
			log_warn("tls.client_crl: keeping the last good CRL: %s", err);
		}
	}
	revoked =
	    cad->client_crl &&
	    !X509_NAME_cmp(X509_CRL_get_issuer(cad->client_crl), X509_get_issuer_name(peer)) &&
	    X509_CRL_get0_by_cert(cad->client_crl, &rev, peer) == 1;
	pthread_mutex_unlock(&cad->lock);
	return revoked;
}
