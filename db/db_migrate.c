/* Schema migrations: the SQL in db/migrations/, compiled in, applied in order. */
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

/* pg_advisory_xact_lock(HSMCA_LOCK_CLASS, 1): one migrator at a time. */
#define MIGRATE_LOCK "SELECT pg_advisory_xact_lock(1752395107, 1)"

int db_schema_latest(void)
{
	return (int)db_migrations_count;
}

/* Reads schema_version inside the caller's transaction; checks that what was applied is what
 * this build has, and that the database is not ahead of it. */
static enum db_status read_version(struct db *db, int *version, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v;
	int rows;

	*version = 0;
	rc = db_exec(db, "SELECT to_regclass('schema_version') IS NOT NULL", NULL, &r, err,
	             "looking for the schema_version table");
	if (rc != DB_OK)
		goto out;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0)
		goto out; /* a database without hsmca's schema: version 0 */
	PQclear(r);
	rc = db_exec(db, "SELECT version, name, checksum FROM schema_version ORDER BY version",
	             NULL, &r, err, "reading schema_version");
	if (rc != DB_OK)
		goto out;
	rows = PQntuples(r);
	for (int i = 0; i < rows; i++) {
		const struct db_migration *m;

		if (db_get_int64(r, i, 0, &v) != 0 || v != i + 1) {
			rc = db_fail(err, DB_ERR_SCHEMA,
			             "schema_version is damaged: version %d is missing", i + 1);
			goto out;
		}
		if (v > (int64_t)db_migrations_count) {
			rc = db_fail(err, DB_ERR_SCHEMA,
			             "the database schema is at version %d, newer than this hsmca "
			             "knows (%d): upgrade hsmca before using this database",
			             rows, (int)db_migrations_count);
			goto out;
		}
		m = &db_migrations[i];
		if (strcmp(PQgetvalue(r, i, 1), m->name) != 0 ||
		    strcmp(PQgetvalue(r, i, 2), m->checksum) != 0) {
			rc = db_fail(err, DB_ERR_SCHEMA,
			             "migration %04d applied to this database (%s) differs from "
			             "this hsmca's %04d_%s: they are different schemas",
			             m->version, PQgetvalue(r, i, 1), m->version, m->name);
			goto out;
		}
	}
	*version = rows;
out:
	PQclear(r);
	return rc;
}

enum db_status db_schema_version(struct db *db, int *version, struct db_err *err)
{
	int own;
	enum db_status rc = db_tx_enter(db, &own, err);

	if (rc != DB_OK)
		return rc;
	rc = read_version(db, version, err);
	return db_tx_leave(db, own, rc, err);
}

/* Apply the one migration after the current version, if any, in one transaction. */
static enum db_status migrate_one(struct db *db, int *done, const struct db_migration **which,
                                  struct db_err *err)
{
	const struct db_migration *m;
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int version;

	*done = 0;
	*which = NULL;
	rc = db_begin(db, err);
	if (rc != DB_OK)
		return rc;
	/* Concurrent migrators: the second waits here, then sees what the first committed. */
	rc = db_exec(db, MIGRATE_LOCK, NULL, &r, err, "taking the migration lock");
	if (rc != DB_OK)
		goto out;
	rc = read_version(db, &version, err);
	if (rc != DB_OK)
		goto out;
	if (version == (int)db_migrations_count) {
		*done = 1;
		goto out;
	}
	m = &db_migrations[version];
	PQclear(r);
	rc = db_exec(db, m->sql, NULL, &r, err, "migration %04d_%s", m->version, m->name);
	if (rc != DB_OK)
		goto out;
	PQclear(r);
	db_param_int(&p, m->version);
	db_param_text(&p, m->name);
	db_param_text(&p, m->checksum);
	rc = db_exec(db, "INSERT INTO schema_version (version, name, checksum) VALUES ($1, $2, $3)",
	             &p, &r, err, "recording migration %04d_%s", m->version, m->name);
	if (rc != DB_OK)
		goto out;
	*which = m;
out:
	PQclear(r);
	if (rc != DB_OK || *done) {
		db_rollback(db);
		return rc;
	}
	return db_commit(db, err);
}

enum db_status db_migrate(struct db *db, db_migrate_cb cb, void *arg, int *applied,
                          struct db_err *err)
{
	const struct db_migration *m;
	enum db_status rc = DB_OK;
	int done = 0;

	*applied = 0;
	if (db->in_tx)
		return db_fail(err, DB_ERR_STATE,
		               "migrate runs each migration in its own transaction; one is open");
	while (!done) {
		rc = migrate_one(db, &done, &m, err);
		if (rc != DB_OK)
			break;
		if (m) {
			(*applied)++;
			if (cb)
				cb(arg, m->version, m->name);
		}
	}
	return rc;
}
