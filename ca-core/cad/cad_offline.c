/* Issuance without the HTTP server: `hsmca-cad --issue PROFILE --csr FILE`. The same path as
 * the API (profile checks, reservation before keyd signs, store, audit), for the certificates
 * a deployment needs before any daemon can serve TLS, such as hsmca-cad's own. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "cad_internal.h"

int cad_issue_offline(struct cad_config *cfg, const char *profile, const char *csr_pem, int days,
                      FILE *out, char *err, size_t errsz)
{
	struct cad *cad = calloc(1, sizeof(*cad));
	struct cad_csr *csrc = calloc(1, sizeof(*csrc));
	const struct passwd *pw = getpwuid(getuid());
	struct cad_issued issued = {0};
	struct db_err derr = {0};
	struct cad_profile *p;
	struct cad_req r = {0};
	const char *error;
	char why[512], actor[128];
	X509 *cert = NULL;
	int rc = -1;

	if (!cad || !csrc) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	cad->cfg = cfg;
	pthread_mutex_init(&cad->lock, NULL);
	cad_group_init(&cad->reserve_group, CAD_RESERVE_LEADERS);
	cad_group_init(&cad->store_group, 1);
	cad->n_workers = 1;
	cad->workers[0].cad = cad;
	if (!(p = cad_profile_find(cfg, profile))) {
		snprintf(err, errsz, "no profile named \"%.64s\"", profile);
		goto out;
	}
	if (days < 1 || days > p->max_validity_days) {
		snprintf(err, errsz, "--days must be 1..%d for profile %s", p->max_validity_days,
		         p->name);
		goto out;
	}
	if (cad_csr_check(p, csr_pem, csrc, &error, why, sizeof(why)) != 0) {
		snprintf(err, errsz, "%s: %s", error, why);
		goto out;
	}
	if (db_connect(cfg->database, &cad->workers[0].db, &derr) != DB_OK) {
		snprintf(err, errsz, "%s", derr.msg);
		goto out;
	}
	/* The audit log names who ran it: the local user, as no API principal is involved. */
	snprintf(actor, sizeof(actor), "local:%s", pw ? pw->pw_name : "?");
	r.cad = cad;
	r.w = &cad->workers[0];
	r.action = "certificate.issue";
	snprintf(r.path, sizeof(r.path), "(hsmca-cad --issue)");
	r.who.name = actor;
	r.who.role = (char *)"local";
	cert = cad_issue_cert(&r, p, csrc, days, NULL, &issued);
	if (!cert) {
		snprintf(err, errsz, "%s: %s", r.error[0] ? r.error : "refused",
		         r.detail[0] ? r.detail : "issuance failed");
		goto out;
	}
	if (!PEM_write_X509(out, cert) || fflush(out) != 0) {
		snprintf(err, errsz, "writing the certificate failed");
		goto out;
	}
	rc = 0;
out:
	json_decref(r.offline_reply);
	X509_free(cert);
	if (csrc)
		cad_csr_free(csrc);
	free(csrc);
	if (cad) {
		db_close(cad->workers[0].db);
		pthread_mutex_destroy(&cad->lock);
		cad_group_destroy(&cad->reserve_group);
		cad_group_destroy(&cad->store_group);
	}
	free(cad);
	return rc;
}
