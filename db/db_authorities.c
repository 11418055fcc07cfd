/* Authorities: the CAs whose certificates this database records. */
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

enum db_status db_authority_add(struct db *db, const struct db_authority *a, int32_t *id,
                                struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v;

	*id = 0;
	if ((rc = db_check_text("authority name", a->name, 128, err)) != DB_OK ||
	    (rc = db_check_text("authority subject", a->subject, 4096, err)) != DB_OK ||
	    (rc = db_check_text("authority key label", a->key_label, 255, err)) != DB_OK)
		return rc;
	if (!a->name[0] || !a->key_label[0])
		return db_fail(err, DB_ERR_INVALID, "an authority needs a name and a key label");
	if (!a->subject_der_len || !a->cert_der_len || !a->ski_len || a->ski_len > 64)
		return db_fail(err, DB_ERR_INVALID,
		               "authority %s: subject DER, certificate DER and a key identifier "
		               "(1..64 bytes) are required",
		               a->name);
	db_param_text(&p, a->name);
	db_param_text(&p, a->subject);
	db_param_bytes(&p, a->subject_der, a->subject_der_len);
	db_param_bytes(&p, a->ski, a->ski_len);
	db_param_bytes(&p, a->cert_der, a->cert_der_len);
	db_param_text(&p, a->key_label);
	/* One statement: the authority and its CRL number counter exist together or not at all. */
	rc = db_exec(db,
	             "WITH a AS (INSERT INTO authorities"
	             " (name, subject, subject_der, ski, certificate_der, key_label)"
	             " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id),"
	             " c AS (INSERT INTO crl_numbers (authority_id) SELECT id FROM a)"
	             " SELECT id FROM a",
	             &p, &r, err, "registering authority %s", a->name);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) != 1 || db_get_int64(r, 0, 0, &v) != 0) {
		rc =
		    db_fail(err, DB_ERR_QUERY, "registering authority %s: no id returned", a->name);
		goto out;
	}
	*id = (int32_t)v;
out:
	PQclear(r);
	return rc;
}

enum db_status db_authority_find(struct db *db, const char *name, struct db_authority *out,
                                 struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v, t;

	memset(out, 0, sizeof(*out));
	if ((rc = db_check_text("authority name", name, 128, err)) != DB_OK)
		return rc;
	db_param_text(&p, name);
	rc = db_exec(db,
	             "SELECT id, name, subject, subject_der, ski, certificate_der, key_label,"
	             " status, floor(extract(epoch FROM created_at))::bigint"
	             " FROM authorities WHERE name = $1",
	             &p, &r, err, "looking up authority %s", name);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no authority named %s", name);
		goto out;
	}
	out->name = db_get_text(r, 0, 1);
	out->subject = db_get_text(r, 0, 2);
	out->key_label = db_get_text(r, 0, 6);
	if (db_get_int64(r, 0, 0, &v) != 0 || db_get_int64(r, 0, 8, &t) != 0 || !out->name ||
	    !out->subject || !out->key_label ||
	    db_get_bytes(r, 0, 3, &out->subject_der, &out->subject_der_len) != 0 ||
	    db_get_bytes(r, 0, 4, &out->ski, &out->ski_len) != 0 ||
	    db_get_bytes(r, 0, 5, &out->cert_der, &out->cert_der_len) != 0) {
		rc = db_fail(err, DB_ERR_QUERY, "authority %s: unreadable row (or out of memory)",
		             name);
		goto out;
	}
	out->id = (int32_t)v;
	out->created_at = t;
	out->status = strcmp(PQgetvalue(r, 0, 7), "retired") ? DB_AUTH_ACTIVE : DB_AUTH_RETIRED;
out:
	PQclear(r);
	if (rc != DB_OK)
		db_authority_clear(out);
	return rc;
}

void db_authority_clear(struct db_authority *a)
{
	free(a->name);
	free(a->subject);
	free(a->subject_der);
	free(a->ski);
	free(a->cert_der);
	free(a->key_label);
	memset(a, 0, sizeof(*a));
}
