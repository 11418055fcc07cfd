/* Certificate profiles, versioned (migration 0015): the current version of each, any version,
 * the list of versions, a new version stored against the one the caller read, the one-time
 * seeding from hsmca-cad's configuration, and the announcements of changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

static enum db_status check_name(const char *name, struct db_err *err)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > DB_PROFILE_NAME_MAX)
		return db_fail(err, DB_ERR_INVALID, "a profile name has 1..%d characters",
		               DB_PROFILE_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789-_", name[i]))
			return db_fail(err, DB_ERR_INVALID,
			               "profile name \"%.64s\": use a-z 0-9 - _", name);
	return DB_OK;
}

void db_profile_version_clear(struct db_profile_version *v)
{
	free(v->body);
	memset(v, 0, sizeof(*v));
}

void db_profile_list_free(struct db_profile_version *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		db_profile_version_clear(&list[i]);
	free(list);
}

/* Columns: name, version, current_version, body, created_by, created_at, enabled. */
#define VERSION_COLS                                                                               \
	"p.name, v.version, p.current_version, v.body::text, v.created_by,"                        \
	" floor(extract(epoch FROM v.created_at))::bigint,"                                        \
	" coalesce((SELECT enabled FROM profile_settings s WHERE s.profile = p.name), true)"

static enum db_status row(const PGresult *r, int i, int with_body, struct db_profile_version *v,
                          struct db_err *err)
{
	int64_t version, current;

	memset(v, 0, sizeof(*v));
	if (strlen(PQgetvalue(r, i, 0)) > DB_PROFILE_NAME_MAX ||
	    strlen(PQgetvalue(r, i, 4)) >= sizeof(v->created_by) ||
	    db_get_int64(r, i, 1, &version) != 0 || db_get_int64(r, i, 2, &current) != 0 ||
	    db_get_int64(r, i, 5, &v->created_at) != 0 || version < 1 || version > INT32_MAX ||
	    current < 1 || current > INT32_MAX)
		return db_fail(err, DB_ERR_QUERY, "an unreadable profile version row");
	snprintf(v->name, sizeof(v->name), "%s", PQgetvalue(r, i, 0));
	snprintf(v->created_by, sizeof(v->created_by), "%s", PQgetvalue(r, i, 4));
	v->version = (int32_t)version;
	v->current = (int32_t)current;
	v->enabled = !strcmp(PQgetvalue(r, i, 6), "t");
	if (with_body && !(v->body = db_get_text(r, i, 3)))
		return db_fail(err, DB_ERR_UNAVAILABLE, "profile %s: out of memory", v->name);
	return DB_OK;
}

static enum db_status rows(PGresult *r, int with_body, struct db_profile_version **out, size_t *n,
                           struct db_err *err)
{
	size_t k = (size_t)PQntuples(r);
	enum db_status rc = DB_OK;

	*out = NULL;
	*n = 0;
	if (k == 0)
		return DB_OK;
	if (!(*out = calloc(k, sizeof(**out))))
		return db_fail(err, DB_ERR_UNAVAILABLE, "profiles: out of memory");
	for (size_t i = 0; i < k && rc == DB_OK; i++) {
		rc = row(r, (int)i, with_body, &(*out)[i], err);
		*n = i + 1;
	}
	if (rc != DB_OK) {
		db_profile_list_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

enum db_status db_profile_list(struct db *db, struct db_profile_version **out, size_t *n,
                               struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;

	*out = NULL;
	*n = 0;
	rc = db_exec(db,
	             "SELECT " VERSION_COLS " FROM profiles p JOIN profile_versions v"
	             " ON v.profile = p.name AND v.version = p.current_version ORDER BY p.name",
	             NULL, &r, err, "listing profiles");
	if (rc == DB_OK)
		rc = rows(r, 1, out, n, err);
	PQclear(r);
	return rc;
}

enum db_status db_profile_get(struct db *db, const char *name, int32_t version,
                              struct db_profile_version *out, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	memset(out, 0, sizeof(*out));
	if ((rc = check_name(name, err)) != DB_OK)
		return rc;
	db_param_text(&p, name);
	db_param_int(&p, version);
	rc = db_exec(db,
	             "SELECT " VERSION_COLS " FROM profiles p JOIN profile_versions v"
	             " ON v.profile = p.name AND v.version = CASE WHEN $2::integer = 0 THEN"
	             " p.current_version ELSE $2::integer END WHERE p.name = $1",
	             &p, &r, err, "reading profile %s", name);
	if (rc == DB_OK && PQntuples(r) == 0)
		rc = version ? db_fail(err, DB_ERR_NOT_FOUND, "profile %s has no version %d", name,
		                       (int)version)
		             : db_fail(err, DB_ERR_NOT_FOUND, "no profile named \"%s\"", name);
	else if (rc == DB_OK)
		rc = row(r, 0, 1, out, err);
	PQclear(r);
	return rc;
}

enum db_status db_profile_versions(struct db *db, const char *name, struct db_profile_version **out,
                                   size_t *n, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*out = NULL;
	*n = 0;
	if ((rc = check_name(name, err)) != DB_OK)
		return rc;
	db_param_text(&p, name);
	rc = db_exec(db,
	             "SELECT " VERSION_COLS " FROM profiles p JOIN profile_versions v"
	             " ON v.profile = p.name WHERE p.name = $1 ORDER BY v.version DESC",
	             &p, &r, err, "listing the versions of profile %s", name);
	if (rc == DB_OK)
		rc = rows(r, 0, out, n, err);
	PQclear(r);
	return rc;
}

enum db_status db_profile_store(struct db *db, const char *name, const char *body, const char *by,
                                int32_t old_version, int32_t *new_version, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v;

	*new_version = 0;
	if ((rc = check_name(name, err)) != DB_OK ||
	    (rc = db_check_text("profile body", body, DB_PROFILE_BODY_MAX, err)) != DB_OK ||
	    (rc = db_check_text("principal name", by, 200, err)) != DB_OK)
		return rc;
	if (old_version < 0)
		return db_fail(err, DB_ERR_INVALID, "profile %s: no version %d", name,
		               (int)old_version);
	db_param_text(&p, name);
	db_param_int(&p, old_version);
	db_param_text(&p, body);
	db_param_text(&p, by);
	/* One statement: the profile row moves to the new version only if it is still at the
	 * version the caller read (a concurrent edit makes this one fail, not vanish). */
	if (old_version == 0)
		rc = db_exec(db,
		             "WITH p AS (INSERT INTO profiles (name, current_version)"
		             " SELECT $1, 1 WHERE $2::integer = 0 ON CONFLICT (name) DO NOTHING"
		             " RETURNING current_version)"
		             " INSERT INTO profile_versions (profile, version, body, created_by)"
		             " SELECT $1, current_version, $3::jsonb, $4 FROM p RETURNING version",
		             &p, &r, err, "creating profile %s", name);
	else
		rc = db_exec(db,
		             "WITH p AS (UPDATE profiles SET current_version = current_version + 1,"
		             " updated_at = now() WHERE name = $1 AND current_version = $2::integer"
		             " RETURNING current_version)"
		             " INSERT INTO profile_versions (profile, version, body, created_by)"
		             " SELECT $1, current_version, $3::jsonb, $4 FROM p RETURNING version",
		             &p, &r, err, "storing a version of profile %s", name);
	if (rc == DB_OK && PQntuples(r) != 1)
		rc = old_version == 0 ? db_fail(err, DB_ERR_CONFLICT, "profile %s exists", name)
		                      : db_fail(err, DB_ERR_STATE,
		                                "profile %s is no longer at version %d (changed "
		                                "meanwhile, or absent)",
		                                name, (int)old_version);
	else if (rc == DB_OK && (db_get_int64(r, 0, 0, &v) != 0 || v < 1 || v > INT32_MAX))
		rc = db_fail(err, DB_ERR_QUERY, "profile %s: no version returned", name);
	else if (rc == DB_OK)
		*new_version = (int32_t)v;
	PQclear(r);
	return rc;
}

enum db_status db_profiles_seed(struct db *db, const char *const *names, const char *const *bodies,
                                size_t n, const char *by, int *seeded, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;
	int64_t have;
	int32_t v;

	*seeded = 0;
	if (!db->in_tx)
		return db_fail(err, DB_ERR_INVALID, "seeding profiles needs an open transaction");
	/* Two cad processes starting together: the second waits here and then finds the
	 * table filled. */
	rc = db_exec(db, "LOCK TABLE profiles IN SHARE ROW EXCLUSIVE MODE", NULL, &r, err,
	             "locking the profiles");
	PQclear(r);
	r = NULL;
	if (rc == DB_OK)
		rc = db_exec(db, "SELECT count(*) FROM profiles", NULL, &r, err,
		             "counting the profiles");
	if (rc == DB_OK && db_get_int64(r, 0, 0, &have) != 0)
		rc = db_fail(err, DB_ERR_QUERY, "counting the profiles: no count");
	PQclear(r);
	if (rc != DB_OK || have > 0)
		return rc;
	for (size_t i = 0; i < n && rc == DB_OK; i++)
		rc = db_profile_store(db, names[i], bodies[i], by, 0, &v, err);
	if (rc == DB_OK)
		*seeded = (int)n;
	return rc;
}

enum db_status db_profiles_listen(struct db *db, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;

	rc = db_exec(db, "LISTEN " DB_PROFILE_CHANNEL, NULL, &r, err, "listening on %s",
	             DB_PROFILE_CHANNEL);
	PQclear(r);
	return rc;
}

enum db_status db_profiles_changed(struct db *db, int *got, struct db_err *err)
{
	PGnotify *nt;

	*got = 0;
	if (!PQconsumeInput(db->conn)) {
		char why[400];
		db_one_line(PQerrorMessage(db->conn), why, sizeof(why));
		return db_fail(err, DB_ERR_UNAVAILABLE, "waiting for profile changes: %s", why);
	}
	while ((nt = PQnotifies(db->conn))) {
		if (!strcmp(nt->relname, DB_PROFILE_CHANNEL))
			(*got)++;
		PQfreemem(nt);
	}
	return DB_OK;
}
