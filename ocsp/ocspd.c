/* hsmca-ocspd's life cycle: responder certificates, listeners, threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "log.h"
#include "ocsp_internal.h"

static X509 *read_cert(const char *path, char *err, size_t errsz)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	if (!x) {
		ERR_clear_error();
		snprintf(err, errsz, "responder certificate %s: %s", path,
		         f ? "no PEM certificate in it" : "cannot open it");
	}
	return x;
}

int ocspd_new(const struct ocspd_config *cfg, struct ocspd **out, char *err, size_t errsz)
{
	struct ocspd *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (!d) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	d->cfg = *cfg;
	pthread_mutex_init(&d->unknown_mu, NULL);
	d->unknown_tokens = (double)cfg->unknown_per_second;
	d->unknown_ms = ocsp_now_ms();
	if (evthread_use_pthreads() != 0 || ocsp_cache_init(&d->cache) != 0) {
		snprintf(err, errsz, "cannot set up threads or the cache");
		free(d);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_responder_certs; i++) {
		d->responders[i] = read_cert(cfg->responder_certs[i], err, errsz);
		if (!d->responders[i])
			goto fail;
		d->n_responders++;
	}
	if (ocsp_server_start(d, err, errsz) != 0 || ocsp_signer_start(d, err, errsz) != 0 ||
	    ocsp_sync_start(d, err, errsz) != 0)
		goto fail;
	*out = d;
	return 0;
fail:
	ocspd_free(d);
	return -1;
}

int ocspd_run(struct ocspd *d)
{
	return ocsp_server_run(d);
}

void ocspd_free(struct ocspd *d)
{
	int n;

	if (!d)
		return;
	atomic_store(&d->stopping, 1);
	ocsp_signer_stop(d);
	ocsp_sync_stop(d);
	ocsp_server_free(d);
	ocsp_cache_destroy(&d->cache);
	n = atomic_load(&d->n_cas);
	for (int i = 0; i < n; i++) {
		X509_free(d->cas[i].cert);
		X509_free(d->cas[i].signer_cert);
		EVP_PKEY_free(d->cas[i].signer_key);
		pthread_mutex_destroy(&d->cas[i].bucket_mu);
	}
	for (size_t i = 0; i < d->n_responders; i++)
		X509_free(d->responders[i]);
	pthread_mutex_destroy(&d->unknown_mu);
	free(d);
}
