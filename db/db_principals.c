/* Principals (who may use the API, with which role) and their API tokens (stored hashed). */
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

static const char *const roles[] = {"ca-admin", "admin", "officer", "auditor", "operator", "ra"};

int db_role_valid(const char *role)
{
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (role && !strcmp(role, roles[i]))
			return 1;
	return 0;
}

void db_principal_clear(struct db_principal *p)
{
	free(p->name);
	free(p->role);
	free(p->profiles);
	memset(p, 0, sizeof(*p));
}

void db_principal_list_free(struct db_principal *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		db_principal_clear(&rows[i]);
	free(rows);
}

/* Columns, in the order principal_row reads them. */
#define PRINCIPAL_COLS                                                                             \
	"p.id, p.name, p.role, p.cert_sha256, p.disabled,"                                         \
	" floor(extract(epoch FROM p.created_at))::bigint,"                                        \
	" coalesce((SELECT string_agg(profile, ',' ORDER BY profile) FROM principal_profiles pp"   \
	" WHERE pp.principal_id = p.id), '')"

static int principal_row(const PGresult *r, int row, struct db_principal *out)
{
	int64_t id, t;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (db_get_int64(r, row, 0, &id) != 0 || db_get_int64(r, row, 5, &t) != 0)
		return -1;
	out->id = (int32_t)id;
	out->created_at = t;
	out->name = db_get_text(r, row, 1);
	out->role = db_get_text(r, row, 2);
	out->profiles = db_get_text(r, row, 6);
	out->disabled = !strcmp(PQgetvalue(r, row, 4), "t");
	if (!PQgetisnull(r, row, 3)) {
		if (db_get_bytes_into(r, row, 3, out->cert_sha256, 32, 1, &len) != 0)
			return -1;
		out->has_cert = 1;
	}
	return out->name && out->role && out->profiles ? 0 : -1;
}

/* Profile names are short identifiers; a comma-separated list keeps the API one parameter. */
static enum db_status check_profiles(const char *profiles, struct db_err *err)
{
	size_t run = 0;

	for (const char *s = profiles; *s; s++) {
		if (*s == ',') {
			if (run == 0)
				break;
			run = 0;
			continue;
		}
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_') ||
		    ++run > 64)
			return db_fail(err, DB_ERR_INVALID,
			               "profile list \"%.64s\": names are 1..64 of a-z 0-9 - _, "
			               "separated by commas",
			               profiles);
	}
	if (*profiles && run == 0)
		return db_fail(err, DB_ERR_INVALID, "profile list \"%.64s\": empty name", profiles);
	return DB_OK;
}

enum db_status db_principal_add(struct db *db, const char *name, const char *role,
                                const uint8_t *cert_sha256, const char *profiles, int32_t *id,
                                struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int own = 0;
	int64_t v;

	*id = 0;
	if (!profiles)
		profiles = "";
	if ((rc = db_check_text("principal name", name, 128, err)) != DB_OK)
		return rc;
	if (!name[0])
		return db_fail(err, DB_ERR_INVALID, "a principal needs a name");
	if (!db_role_valid(role))
		return db_fail(err, DB_ERR_INVALID, "principal %s: unknown role \"%.32s\"", name,
		               role ? role : "");
	if ((rc = check_profiles(profiles, err)) != DB_OK)
		return rc;
	db_param_text(&p, name);
	db_param_text(&p, role);
	if (cert_sha256)
		db_param_bytes(&p, cert_sha256, 32);
	else
		db_param_null(&p);
	db_param_text(&p, profiles);
	rc = db_tx_enter(db, &own, err);
	if (rc != DB_OK)
		return rc;
	rc = db_exec(db,
	             "WITH p AS (INSERT INTO principals (name, role, cert_sha256)"
	             " VALUES ($1, $2, $3) RETURNING id),"
	             " g AS (INSERT INTO principal_profiles (principal_id, profile)"
	             " SELECT p.id, x FROM p, unnest(string_to_array(nullif($4, ''), ',')) x)"
	             " SELECT id FROM p",
	             &p, &r, err, "adding principal %s", name);
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, &v) != 0))
		rc = db_fail(err, DB_ERR_QUERY, "adding principal %s: no id returned", name);
	if (rc == DB_OK)
		*id = (int32_t)v;
	PQclear(r);
	return db_tx_leave(db, own, rc, err);
}

static enum db_status find_one(struct db *db, const char *where, struct db_params *p,
                               struct db_principal *out, struct db_err *err, const char *what)
{
	char sql[1024];
	PGresult *r = NULL;
	enum db_status rc;

	memset(out, 0, sizeof(*out));
	snprintf(sql, sizeof(sql), "SELECT " PRINCIPAL_COLS " FROM principals p WHERE %s", where);
	rc = db_exec(db, sql, p, &r, err, "looking up principal %s", what);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no principal %s", what);
		goto out;
	}
	if (principal_row(r, 0, out) != 0)
		rc = db_fail(err, DB_ERR_QUERY, "principal %s: unreadable row", what);
out:
	PQclear(r);
	if (rc != DB_OK)
		db_principal_clear(out);
	return rc;
}

enum db_status db_principal_find(struct db *db, const char *name, struct db_principal *out,
                                 struct db_err *err)
{
	struct db_params p = {0};
	enum db_status rc;
	char what[160];

	memset(out, 0, sizeof(*out));
	if ((rc = db_check_text("principal name", name, 128, err)) != DB_OK)
		return rc;
	db_param_text(&p, name);
	snprintf(what, sizeof(what), "named %s", name);
	return find_one(db, "p.name = $1", &p, out, err, what);
}

enum db_status db_principal_find_by_cert(struct db *db, const uint8_t cert_sha256[32],
                                         struct db_principal *out, struct db_err *err)
{
	struct db_params p = {0};

	PGresult *r = NULL;
	enum db_status rc;

	memset(out, 0, sizeof(*out));
	db_param_bytes(&p, cert_sha256, 32);
	/* As for API tokens (below), the use is noted at most once a minute (the principals
	 * report shows it), so that authenticating stays a read on almost every request. */
	rc = db_exec(db,
	             "SELECT " PRINCIPAL_COLS ","
	             " (p.last_used_at IS NULL OR p.last_used_at < now() - interval '60 seconds')"
	             " FROM principals p WHERE p.cert_sha256 = $1",
	             &p, &r, err, "looking up the principal of a client certificate");
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no principal with this client certificate");
		goto out;
	}
	if (principal_row(r, 0, out) != 0) {
		rc = db_fail(err, DB_ERR_QUERY,
		             "principal with this client certificate: unreadable row");
		goto out;
	}
	if (!out->disabled && !strcmp(PQgetvalue(r, 0, 7), "t")) {
		struct db_params q = {0};
		PGresult *u = NULL;
		db_param_int(&q, out->id);
		rc = db_exec(db, "UPDATE principals SET last_used_at = now() WHERE id = $1", &q, &u,
		             err, "noting the use of principal %s", out->name);
		PQclear(u);
	}
out:
	PQclear(r);
	if (rc != DB_OK)
		db_principal_clear(out);
	return rc;
}

enum db_status db_principal_list(struct db *db, struct db_principal **rows, size_t *n,
                                 struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;
	struct db_principal *out = NULL;
	size_t i = 0, count;

	*rows = NULL;
	*n = 0;
	rc = db_exec(db, "SELECT " PRINCIPAL_COLS " FROM principals p ORDER BY p.id", NULL, &r, err,
	             "listing principals");
	if (rc != DB_OK)
		goto out;
	count = (size_t)PQntuples(r);
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "listing principals: out of memory");
		goto out;
	}
	for (i = 0; i < count; i++)
		if (principal_row(r, (int)i, &out[i]) != 0) {
			rc = db_fail(err, DB_ERR_QUERY, "listing principals: unreadable row");
			i++;
			goto out;
		}
	*rows = out;
	*n = count;
	out = NULL;
out:
	PQclear(r);
	if (out)
		db_principal_list_free(out, i);
	return rc;
}

enum db_status db_principal_set_disabled(struct db *db, const char *name, int disabled,
                                         int *changed, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*changed = 0;
	if ((rc = db_check_text("principal name", name, 128, err)) != DB_OK)
		return rc;
	db_param_text(&p, name);
	db_param_text(&p, disabled ? "true" : "false");
	/* The first column says whether it exists, the second whether it changed. */
	rc = db_exec(db,
	             "WITH u AS (UPDATE principals SET disabled = $2::boolean"
	             " WHERE name = $1 AND disabled <> $2::boolean RETURNING id)"
	             " SELECT (SELECT count(*) FROM principals WHERE name = $1),"
	             " (SELECT count(*) FROM u)",
	             &p, &r, err, "%s principal %s", disabled ? "disabling" : "enabling", name);
	if (rc != DB_OK)
		goto out;
	if (!strcmp(PQgetvalue(r, 0, 0), "0")) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no principal named %s", name);
		goto out;
	}
	*changed = strcmp(PQgetvalue(r, 0, 1), "0") != 0;
out:
	PQclear(r);
	return rc;
}

/* --- API tokens --- */

void db_token_list_free(struct db_token *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].name);
	free(rows);
}

enum db_status db_token_add(struct db *db, int32_t principal_id, const uint8_t token_sha256[32],
                            const char *name, int64_t expires_at, int32_t *id, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v;

	*id = 0;
	if ((rc = db_check_text("token name", name, 128, err)) != DB_OK)
		return rc;
	db_param_int(&p, principal_id);
	db_param_bytes(&p, token_sha256, 32);
	db_param_text(&p, name);
	db_param_int(&p, expires_at);
	rc = db_exec(db,
	             "INSERT INTO api_tokens (principal_id, token_sha256, name, expires_at)"
	             " VALUES ($1, $2, $3, to_timestamp($4)) RETURNING id",
	             &p, &r, err, "adding API token %s", name);
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, &v) != 0))
		rc = db_fail(err, DB_ERR_QUERY, "adding API token %s: no id returned", name);
	if (rc == DB_OK)
		*id = (int32_t)v;
	PQclear(r);
	return rc;
}

enum db_status db_token_authenticate(struct db *db, const uint8_t token_sha256[32],
                                     struct db_principal *out, int32_t *token_id,
                                     struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v;

	memset(out, 0, sizeof(*out));
	*token_id = 0;
	db_param_bytes(&p, token_sha256, 32);
	/* Find a usable token. Its use is noted at most once a minute, so that authenticating is
	 * a read, not a commit, on every request. */
	rc = db_exec(db,
	             "SELECT " PRINCIPAL_COLS ", t.id,"
	             " (t.last_used_at IS NULL OR t.last_used_at < now() - interval '60 seconds')"
	             " FROM api_tokens t JOIN principals p ON p.id = t.principal_id"
	             " WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND t.expires_at > now()",
	             &p, &r, err, "looking up an API token");
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND,
		             "no such API token, or it was revoked or has expired");
		goto out;
	}
	if (principal_row(r, 0, out) != 0 || db_get_int64(r, 0, 7, &v) != 0) {
		rc = db_fail(err, DB_ERR_QUERY, "API token: unreadable row");
		goto out;
	}
	if (!strcmp(PQgetvalue(r, 0, 8), "t")) {
		struct db_params q = {0};
		PGresult *u = NULL;
		db_param_int(&q, v);
		rc = db_exec(db, "UPDATE api_tokens SET last_used_at = now() WHERE id = $1", &q, &u,
		             err, "noting the use of API token %lld", (long long)v);
		PQclear(u);
		if (rc != DB_OK)
			goto out;
	}
	*token_id = (int32_t)v;
out:
	PQclear(r);
	if (rc != DB_OK)
		db_principal_clear(out);
	return rc;
}

enum db_status db_token_list(struct db *db, int32_t principal_id, struct db_token **rows, size_t *n,
                             struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	struct db_token *out = NULL;
	size_t i = 0, count;
	int64_t v[6];

	*rows = NULL;
	*n = 0;
	db_param_int(&p, principal_id);
	rc = db_exec(db,
	             "SELECT id, principal_id, name,"
	             " floor(extract(epoch FROM expires_at))::bigint,"
	             " coalesce(floor(extract(epoch FROM revoked_at))::bigint, 0),"
	             " floor(extract(epoch FROM created_at))::bigint,"
	             " coalesce(floor(extract(epoch FROM last_used_at))::bigint, 0)"
	             " FROM api_tokens WHERE principal_id = $1 ORDER BY id",
	             &p, &r, err, "listing API tokens of principal %d", (int)principal_id);
	if (rc != DB_OK)
		goto out;
	count = (size_t)PQntuples(r);
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "listing API tokens: out of memory");
		goto out;
	}
	for (i = 0; i < count; i++) {
		int row = (int)i;

		if (db_get_int64(r, row, 0, &v[0]) || db_get_int64(r, row, 1, &v[1]) ||
		    db_get_int64(r, row, 3, &v[2]) || db_get_int64(r, row, 4, &v[3]) ||
		    db_get_int64(r, row, 5, &v[4]) || db_get_int64(r, row, 6, &v[5]) ||
		    !(out[i].name = db_get_text(r, row, 2))) {
			rc = db_fail(err, DB_ERR_QUERY, "listing API tokens: unreadable row");
			i++;
			goto out;
		}
		out[i].id = (int32_t)v[0];
		out[i].principal_id = (int32_t)v[1];
		out[i].expires_at = v[2];
		out[i].revoked_at = v[3];
		out[i].created_at = v[4];
		out[i].last_used_at = v[5];
	}
	*rows = out;
	*n = count;
	out = NULL;
out:
	PQclear(r);
	if (out)
		db_token_list_free(out, i);
	return rc;
}

enum db_status db_token_revoke(struct db *db, int32_t id, int32_t *principal_id, int *changed,
                               struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v;

	*changed = 0;
	*principal_id = 0;
	db_param_int(&p, id);
	rc = db_exec(db,
	             "WITH u AS (UPDATE api_tokens SET revoked_at = now()"
	             " WHERE id = $1 AND revoked_at IS NULL RETURNING id)"
	             " SELECT principal_id, (SELECT count(*) FROM u) FROM api_tokens WHERE id = $1",
	             &p, &r, err, "revoking API token %d", (int)id);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0) {
		rc = db_fail(err, DB_ERR_NOT_FOUND, "no API token %d", (int)id);
		goto out;
	}
	if (db_get_int64(r, 0, 0, &v) != 0) {
		rc = db_fail(err, DB_ERR_QUERY, "revoking API token %d: unreadable row", (int)id);
		goto out;
	}
	*principal_id = (int32_t)v;
	*changed = strcmp(PQgetvalue(r, 0, 1), "0") != 0;
out:
	PQclear(r);
	return rc;
}
