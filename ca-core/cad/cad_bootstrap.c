/* The first ca-admin: on a database with no ca-admin yet, register one by its client
 * certificate, so that everything after goes through the authenticated API. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cad.h"
#include "db.h"
#include "log.h"

int cad_bootstrap_admin(const struct cad_config *cfg, const char *name, const char *cert_path,
                        char *err, size_t errsz)
{
	struct db_principal *all = NULL;
	struct db_err derr = {0};
	struct db *db = NULL;
	uint8_t sha[32];
	unsigned int len = 0;
	int32_t id;
	size_t n = 0;
	X509 *cert = NULL;
	FILE *f;
	char detail[128];
	int64_t seq;
	int rc = -1;

	f = fopen(cert_path, "r");
	cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!cert || !X509_digest(cert, EVP_sha256(), sha, &len)) {
		snprintf(err, errsz, "%s: not a PEM certificate", cert_path);
		goto out;
	}
	if (db_connect(cfg->database, &db, &derr) != DB_OK || db_begin(db, &derr) != DB_OK ||
	    db_principal_list(db, &all, &n, &derr) != DB_OK) {
		snprintf(err, errsz, "%s", derr.msg);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(all[i].role, "ca-admin")) {
			snprintf(
			    err, errsz,
			    "principal %s is a ca-admin already: add principals through the API",
			    all[i].name);
			goto out;
		}
	snprintf(detail, sizeof(detail), "{\"role\":\"ca-admin\"}");
	{
		struct db_audit_entry e = {"hsmca-cad", "",        "principal.bootstrap",
		                           name,        "success", detail};
		if (db_principal_add(db, name, "ca-admin", sha, "", &id, &derr) != DB_OK ||
		    db_audit_append(db, &e, &seq, &derr) != DB_OK ||
		    db_commit(db, &derr) != DB_OK) {
			snprintf(err, errsz, "%s", derr.msg);
			goto out;
		}
	}
	log_info("bootstrap: principal %s is ca-admin", name);
	rc = 0;
out:
	if (db && rc != 0)
		db_rollback(db);
	db_principal_list_free(all, n);
	db_close(db);
	X509_free(cert);
	return rc;
}
