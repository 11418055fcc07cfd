/* Settings changed at run time through the API (schema version 3): authorities retired,
 * profiles switched off, and each authority's CRL and OCSP settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

enum db_status db_authority_list(struct db *db, struct db_authority **out, size_t *n,
                                 struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;
	struct db_authority *list = NULL;
	int rows;

	*out = NULL;
	*n = 0;
	rc = db_exec(db,
	             "SELECT id, name, subject, key_label, status,"
	             " floor(extract(epoch FROM created_at))::bigint"
	             " FROM authorities ORDER BY name",
	             NULL, &r, err, "listing authorities");
	if (rc != DB_OK)
		return rc;
	rows = PQntuples(r);
	list = calloc(rows ? (size_t)rows : 1, sizeof(*list));
	if (!list) {
		rc = db_fail(err, DB_ERR_QUERY, "listing authorities: out of memory");
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		struct db_authority *a = &list[i];
		int64_t v, t;
		a->name = db_get_text(r, i, 1);
		a->subject = db_get_text(r, i, 2);
		a->key_label = db_get_text(r, i, 3);
		if (db_get_int64(r, i, 0, &v) != 0 || db_get_int64(r, i, 5, &t) != 0 || !a->name ||
		    !a->subject || !a->key_label) {
			db_authority_list_free(list, (size_t)rows);
			list = NULL;
			rc = db_fail(err, DB_ERR_QUERY,
			             "listing authorities: unreadable row (or out of memory)");
			goto out;
		}
		a->id = (int32_t)v;
		a->created_at = t;
		a->status =
		    strcmp(PQgetvalue(r, i, 4), "retired") ? DB_AUTH_ACTIVE : DB_AUTH_RETIRED;
	}
	*out = list;
	*n = (size_t)rows;
out:
	PQclear(r);
	return rc;
}

void db_authority_list_free(struct db_authority *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		db_authority_clear(&list[i]);
	free(list);
}

enum db_status db_authority_retire(struct db *db, const char *name, int32_t *id, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v;

	*id = 0;
	if ((rc = db_check_text("authority name", name, 128, err)) != DB_OK)
		return rc;
	db_param_text(&p, name);
	/* One statement: the row as it was, and the change when it was active. */
	rc = db_exec(db,
	             "WITH a AS (SELECT id, status FROM authorities WHERE name = $1 FOR UPDATE),"
	             " u AS (UPDATE authorities SET status = 'retired'"
	             " WHERE id IN (SELECT id FROM a WHERE status = 'active') RETURNING id)"
	             " SELECT a.id, a.status FROM a",
	             &p, &r, err, "retiring authority %s", name);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no authority named %s", name);
		goto out;
	}
	if (db_get_int64(r, 0, 0, &v) != 0) {
		rc = db_fail(err, DB_ERR_QUERY, "retiring authority %s: unreadable row", name);
		goto out;
	}
	*id = (int32_t)v;
	if (strcmp(PQgetvalue(r, 0, 1), "active"))
		rc = db_fail(err, DB_ERR_STATE, "authority %s is retired already", name);
out:
	PQclear(r);
	return rc;
}

enum db_status db_issuance_allowed(struct db *db, int32_t authority_id, const char *profile,
                                   int *retired, int *enabled, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*retired = 1;
	*enabled = 0;
	if ((rc = db_check_text("profile", profile, 64, err)) != DB_OK)
		return rc;
	db_param_int(&p, authority_id);
	db_param_text(&p, profile);
	rc = db_exec(db,
	             "SELECT a.status = 'retired',"
	             " coalesce((SELECT enabled FROM profile_settings WHERE profile = $2), true)"
	             " FROM authorities a WHERE a.id = $1",
	             &p, &r, err, "checking authority %d and profile %s", (int)authority_id,
	             profile);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no authority with id %d", (int)authority_id);
		goto out;
	}
	*retired = !strcmp(PQgetvalue(r, 0, 0), "t");
	*enabled = !strcmp(PQgetvalue(r, 0, 1), "t");
out:
	PQclear(r);
	return rc;
}

enum db_status db_profile_enabled(struct db *db, const char *profile, int *enabled,
                                  struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*enabled = 1;
	if ((rc = db_check_text("profile", profile, 64, err)) != DB_OK)
		return rc;
	db_param_text(&p, profile);
	rc = db_exec(db, "SELECT enabled FROM profile_settings WHERE profile = $1", &p, &r, err,
	             "reading profile %s", profile);
	if (rc == DB_OK && PQntuples(r) == 1)
		*enabled = !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	return rc;
}

enum db_status db_profile_set_enabled(struct db *db, const char *profile, int enabled,
                                      const char *by, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if ((rc = db_check_text("profile", profile, 64, err)) != DB_OK ||
	    (rc = db_check_text("principal name", by, 128, err)) != DB_OK)
		return rc;
	if (!profile[0])
		return db_fail(err, DB_ERR_INVALID, "a profile needs a name");
	db_param_text(&p, profile);
	db_param_text(&p, enabled ? "true" : "false");
	db_param_text(&p, by);
	rc = db_exec(db,
	             "INSERT INTO profile_settings (profile, enabled, updated_by)"
	             " VALUES ($1, $2::boolean, $3) ON CONFLICT (profile) DO UPDATE"
	             " SET enabled = excluded.enabled, updated_by = excluded.updated_by,"
	             " updated_at = now()",
	             &p, &r, err, "setting profile %s", profile);
	PQclear(r);
	return rc;
}

void db_authority_settings_default(struct db_authority_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->crl_next_update_seconds = 86400;
	s->delta_crl_seconds = 0;
	s->ocsp_validity_seconds = 3600;
	s->ocsp_nonce_rate_limit = 0;
	s->full_crl_idp = -1;
	s->is_default = 1;
}

enum db_status db_authority_settings_get(struct db *db, int32_t authority_id,
                                         struct db_authority_settings *out, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	const char *label, *by;

	db_authority_settings_default(out);
	db_param_int(&p, authority_id);
	rc = db_exec(db,
	             "SELECT crl_next_update_seconds, delta_crl_seconds, ocsp_validity_seconds,"
	             " ocsp_nonce_rate_limit, ocsp_signer_key_label, updated_by,"
	             " floor(extract(epoch FROM updated_at))::bigint, crl_base_url, crl_shards,"
	             " ocsp_urls, ca_issuers_url, full_crl_idp FROM authority_settings"
	             " WHERE authority_id = $1",
	             &p, &r, err, "reading the settings of authority %d", (int)authority_id);
	if (rc != DB_OK || PQntuples(r) == 0)
		goto out;
	label = PQgetvalue(r, 0, 4);
	by = PQgetvalue(r, 0, 5);
	if (db_get_int64(r, 0, 0, &out->crl_next_update_seconds) != 0 ||
	    db_get_int64(r, 0, 1, &out->delta_crl_seconds) != 0 ||
	    db_get_int64(r, 0, 2, &out->ocsp_validity_seconds) != 0 ||
	    db_get_int64(r, 0, 3, &out->ocsp_nonce_rate_limit) != 0 ||
	    db_get_int64(r, 0, 6, &out->updated_at) != 0 || strlen(label) > DB_KEY_LABEL_MAX ||
	    db_get_int64(r, 0, 8, &out->crl_shards) != 0 ||
	    strlen(PQgetvalue(r, 0, 7)) > DB_CRL_URL_MAX ||
	    strlen(PQgetvalue(r, 0, 9)) >= sizeof(out->ocsp_urls) ||
	    strlen(PQgetvalue(r, 0, 10)) > DB_AIA_URL_MAX) {
		rc = db_fail(err, DB_ERR_QUERY, "authority %d: unreadable settings row",
		             (int)authority_id);
		goto out;
	}
	snprintf(out->ocsp_signer_key_label, sizeof(out->ocsp_signer_key_label), "%s", label);
	snprintf(out->updated_by, sizeof(out->updated_by), "%s", by);
	snprintf(out->crl_base_url, sizeof(out->crl_base_url), "%s", PQgetvalue(r, 0, 7));
	snprintf(out->ocsp_urls, sizeof(out->ocsp_urls), "%s", PQgetvalue(r, 0, 9));
	snprintf(out->ca_issuers_url, sizeof(out->ca_issuers_url), "%s", PQgetvalue(r, 0, 10));
	out->full_crl_idp = PQgetisnull(r, 0, 11) ? -1 : !strcmp(PQgetvalue(r, 0, 11), "t");
	out->is_default = 0;
out:
	PQclear(r);
	return rc;
}

enum db_status db_authority_settings_put(struct db *db, int32_t authority_id,
                                         const struct db_authority_settings *s, const char *by,
                                         struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if ((rc = db_check_text("OCSP signer key label", s->ocsp_signer_key_label, DB_KEY_LABEL_MAX,
	                        err)) != DB_OK ||
	    (rc = db_check_text("principal name", by, 128, err)) != DB_OK ||
	    (rc = db_check_text("CRL base URL", s->crl_base_url, DB_CRL_URL_MAX, err)) != DB_OK ||
	    (rc = db_check_text("OCSP URLs", s->ocsp_urls, sizeof(s->ocsp_urls) - 1, err)) !=
	        DB_OK ||
	    (rc = db_check_text("caIssuers URL", s->ca_issuers_url, DB_AIA_URL_MAX, err)) != DB_OK)
		return rc;
	db_param_int(&p, authority_id);
	db_param_int(&p, s->crl_next_update_seconds);
	db_param_int(&p, s->delta_crl_seconds);
	db_param_int(&p, s->ocsp_validity_seconds);
	db_param_int(&p, s->ocsp_nonce_rate_limit);
	db_param_text(&p, s->ocsp_signer_key_label);
	db_param_text(&p, by);
	db_param_text(&p, s->crl_base_url);
	db_param_int(&p, s->crl_shards);
	db_param_text(&p, s->ocsp_urls);
	db_param_text(&p, s->ca_issuers_url);
	if (s->full_crl_idp < 0)
		db_param_null(&p);
	else
		db_param_text(&p, s->full_crl_idp ? "true" : "false");
	rc = db_exec(db,
	             "INSERT INTO authority_settings (authority_id, crl_next_update_seconds,"
	             " delta_crl_seconds, ocsp_validity_seconds, ocsp_nonce_rate_limit,"
	             " ocsp_signer_key_label, updated_by, crl_base_url, crl_shards, ocsp_urls,"
	             " ca_issuers_url, full_crl_idp)"
	             " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::boolean)"
	             " ON CONFLICT "
	             "(authority_id) DO UPDATE"
	             " SET crl_next_update_seconds = excluded.crl_next_update_seconds,"
	             " delta_crl_seconds = excluded.delta_crl_seconds,"
	             " ocsp_validity_seconds = excluded.ocsp_validity_seconds,"
	             " ocsp_nonce_rate_limit = excluded.ocsp_nonce_rate_limit,"
	             " ocsp_signer_key_label = excluded.ocsp_signer_key_label,"
	             " crl_base_url = excluded.crl_base_url, crl_shards = excluded.crl_shards,"
	             " ocsp_urls = excluded.ocsp_urls, ca_issuers_url = excluded.ca_issuers_url,"
	             " full_crl_idp = excluded.full_crl_idp,"
	             " updated_by = excluded.updated_by, updated_at = now()",
	             &p, &r, err, "storing the settings of authority %d", (int)authority_id);
	PQclear(r);
	return rc;
}

enum db_status db_full_crl_idp_claim(struct db *db, int32_t authority_id, int idp, int *stored,
                                     struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	db_param_int(&p, authority_id);
	db_param_text(&p, idp ? "true" : "false");
	rc = db_exec(db, "SELECT authority_full_crl_idp_claim($1::integer, $2::boolean)", &p, &r,
	             err, "claiming the full CRL's IDP choice of authority %d", (int)authority_id);
	if (rc == DB_OK && (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)))
		rc = db_fail(err, DB_ERR_QUERY, "authority %d: no IDP choice stored",
		             (int)authority_id);
	else if (rc == DB_OK)
		*stored = !strcmp(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	return rc;
}
