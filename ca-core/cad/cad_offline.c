/* Issuance without the HTTP server: `hsmca-cad --issue PROFILE --csr FILE`, an adapter over
 * ca_issue (profile checks, reservation before keyd signs, store, audit), for the certificates
 * a deployment needs before any daemon can serve TLS, such as hsmca-cad's own. The audit log
 * names the local user who ran it, as no API principal is involved. */
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "cad_internal.h"

int cad_issue_offline(struct cad_config *cfg, const char *profile, const char *csr_pem, int days,
                      FILE *out, char *err, size_t errsz)
{
	const struct passwd *pw = getpwuid(getuid());
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct ca_issue_request req = {0};
	struct ca_issue_result res = {0};
	struct db *db = NULL;
	struct ca_profile stored = {0}, *p = &stored;
	struct db_err derr = {0};
	struct ca ca;
	char actor[128];
	enum ca_outcome o;
	int rc = -1;

	ca_init(&ca, cfg->authorities, cfg->n_authorities, cfg->database, &lock, cad_load_key,
	        NULL);
	/* The profile's current stored version (seeded from the configuration on a fresh
	 * database), as hsmca-cad itself issues under. */
	if (db_connect(cfg->database, &db, &derr) != DB_OK) {
		snprintf(err, errsz, "database: %s", derr.msg);
		goto out;
	}
	switch (cad_profile_load(cfg, db, profile, &stored, err, errsz)) {
	case 0:
		break;
	case 1:
		snprintf(err, errsz, "no profile named \"%.64s\"", profile);
		goto out;
	default:
		goto out;
	}
	if (days < 0 || days > p->max_validity_days) { /* 0: the profile's default */
		snprintf(err, errsz, "--days must be 1..%d for profile %s", p->max_validity_days,
		         p->name);
		goto out;
	}
	snprintf(actor, sizeof(actor), "local:%s", pw ? pw->pw_name : "?");
	req.who.kind = CA_REQUESTER_LOCAL;
	req.who.name = actor;
	req.who.role = "local";
	req.action = "certificate.issue";
	req.profile = p;
	req.csr_pem = csr_pem;
	req.validity_days = days;
	if ((o = ca_issue(&ca, &db, &req, &res)) != CA_OK) {
		snprintf(err, errsz, "%s: %s", res.why.code[0] ? res.why.code : "refused",
		         res.why.reason[0] ? res.why.reason : "issuance failed");
		goto out;
	}
	if (!PEM_write_X509(out, res.cert) || fflush(out) != 0) {
		snprintf(err, errsz, "writing the certificate failed");
		goto out;
	}
	rc = 0;
out:
	ca_issue_result_clear(&res);
	cad_profile_clear(&stored);
	db_close(db);
	ca_fini(&ca);
	pthread_mutex_destroy(&lock);
	return rc;
}
