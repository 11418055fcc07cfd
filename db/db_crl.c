/* CRLs: CRL numbers, and the entries of a full or delta CRL read through a cursor in binary
 * batches, so that a CRL of a million entries never sits in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

#define SCAN_BATCH 8192
#define SNAPSHOT_MAX (1 << 20)
#define STR_(x) #x
#define DB_CRL_STR(x) STR_(x)

struct db_crl_scan {
	struct db *db;
	PGresult *batch;
	int row, rows;
	int done;
};

enum db_status db_crl_number_next(struct db *db, int32_t authority_id, int64_t *number,
                                  struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*number = 0;
	db_param_int(&p, authority_id);
	rc = db_exec(db,
	             "UPDATE crl_numbers SET next_number = next_number + 1"
	             " WHERE authority_id = $1 RETURNING next_number - 1",
	             &p, &r, err, "drawing a CRL number for authority %d", (int)authority_id);
	if (rc != DB_OK)
		return rc;
	if (PQntuples(r) != 1)
		rc = db_fail(err, DB_ERR_NOT_FOUND, "authority %d has no CRL number counter",
		             (int)authority_id);
	else if (db_get_int64(r, 0, 0, number) != 0 || *number <= 0)
		rc = db_fail(err, DB_ERR_QUERY, "authority %d: unreadable CRL number",
		             (int)authority_id);
	PQclear(r);
	return rc;
}

/* Entry columns: serial, status, revoked_at (or the release), reason, invalidity date. */
#define ENTRY_COLS                                                                                 \
	"c.serial, c.status, floor(extract(epoch FROM coalesce(c.revoked_at, (SELECT max(x2.at)"   \
	" FROM crl_changes x2 WHERE x2.certificate_id = c.id), now())))::int8,"                    \
	" coalesce(c.revocation_reason, -1)::int4,"                                                \
	" coalesce(floor(extract(epoch FROM c.invalidity_date)), 0)::int8"

static const char full_sql[] =
    "DECLARE crl_scan NO SCROLL CURSOR FOR SELECT " ENTRY_COLS " FROM certificates c"
    " WHERE c.authority_id = $1 AND ($2::int4 < 0 OR c.crl_shard = $2::int4)"
    " AND c.status IN ('revoked', 'hold') AND c.not_after >= to_timestamp($3::int8)";

static const char delta_sql[] =
    "DECLARE crl_scan NO SCROLL CURSOR FOR SELECT " ENTRY_COLS " FROM certificates c"
    " WHERE c.authority_id = $1 AND ($2::int4 < 0 OR c.crl_shard = $2::int4)"
    " AND c.id IN (SELECT x.certificate_id FROM crl_changes x WHERE x.authority_id = $1"
    " AND x.xid >= pg_snapshot_xmin($4::pg_snapshot)"
    " AND NOT pg_visible_in_snapshot(x.xid, $4::pg_snapshot))"
    " AND (c.status = 'issued' OR (c.status IN ('revoked', 'hold')"
    " AND c.not_after >= to_timestamp($3::int8)))";

enum db_status db_crl_scan_open(struct db *db, const struct db_crl_scan_opts *o,
                                struct db_crl_scan **out, char **snapshot, struct db_err *err)
{
	struct db_crl_scan *s = NULL;
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*out = NULL;
	*snapshot = NULL;
	if (o->authority_id <= 0)
		return db_fail(err, DB_ERR_INVALID, "CRL scan: no authority");
	if (o->since_snapshot &&
	    (strlen(o->since_snapshot) > SNAPSHOT_MAX ||
	     (rc = db_check_text("base snapshot", o->since_snapshot, SNAPSHOT_MAX, err)) != DB_OK))
		return db_fail(err, DB_ERR_INVALID,
		               "CRL scan: the base snapshot is not valid text");
	if (db->in_tx)
		return db_fail(err, DB_ERR_STATE, "CRL scan: a transaction is open already");
	s = calloc(1, sizeof(*s));
	if (!s)
		return db_fail(err, DB_ERR_UNAVAILABLE, "CRL scan: out of memory");
	s->db = db;
	rc = db_exec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, &r, err,
	             "starting the CRL scan of authority %d", (int)o->authority_id);
	PQclear(r);
	r = NULL;
	if (rc != DB_OK)
		goto out;
	db->in_tx = 1;
	/* The first statement fixes the transaction's snapshot: the one the CRL shows. */
	rc = db_exec(db, "SELECT pg_current_snapshot()::text", NULL, &r, err,
	             "reading the snapshot of the CRL scan");
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) != 1 || !(*snapshot = db_get_text(r, 0, 0))) {
		rc = db_fail(err, DB_ERR_QUERY, "CRL scan: no snapshot");
		goto out;
	}
	PQclear(r);
	r = NULL;
	db_param_int(&p, o->authority_id);
	db_param_int(&p, o->shard);
	db_param_int(&p, o->not_after_from);
	if (o->since_snapshot)
		db_param_text(&p, o->since_snapshot);
	rc = db_exec(db, o->since_snapshot ? delta_sql : full_sql, &p, &r, err,
	             "opening the CRL cursor of authority %d", (int)o->authority_id);
	if (rc != DB_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	PQclear(r);
	if (rc != DB_OK) {
		free(*snapshot);
		*snapshot = NULL;
		if (db->in_tx)
			db_rollback(db);
	}
	free(s);
	return rc;
}

static uint64_t be(const char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | (unsigned char)p[i];
	return v;
}

static enum db_status fetch(struct db_crl_scan *s, struct db_err *err)
{
	PGconn *c = s->db->conn;
	char why[400];

	PQclear(s->batch);
	s->batch = NULL;
	s->row = s->rows = 0;
	/* Binary results: bytea and integers as they are, nothing to parse from text. */
	s->batch = PQexecParams(c, "FETCH " DB_CRL_STR(SCAN_BATCH) " FROM crl_scan", 0, NULL, NULL,
	                        NULL, NULL, 1);
	if (PQresultStatus(s->batch) != PGRES_TUPLES_OK) {
		db_one_line(PQresultErrorMessage(s->batch), why, sizeof(why));
		return db_fail(err,
		               PQstatus(c) == CONNECTION_OK ? DB_ERR_QUERY : DB_ERR_UNAVAILABLE,
		               "reading the CRL cursor: %s", why);
	}
	if (PQnfields(s->batch) != 5)
		return db_fail(err, DB_ERR_QUERY, "reading the CRL cursor: unexpected columns");
	s->rows = PQntuples(s->batch);
	if (s->rows < SCAN_BATCH)
		s->done = 1;
	return DB_OK;
}

enum db_status db_crl_scan_next(struct db_crl_scan *s, struct db_crl_entry *e, int *got,
                                struct db_err *err)
{
	enum db_status rc;
	const char *v;
	int len, st;
	char status[16];

	*got = 0;
	memset(e, 0, sizeof(*e));
	if (s->row >= s->rows) {
		if (s->done && s->batch)
			return DB_OK;
		if ((rc = fetch(s, err)) != DB_OK)
			return rc;
		if (s->rows == 0)
			return DB_OK;
	}
	for (int col = 0; col < 5; col++)
		if (PQgetisnull(s->batch, s->row, col))
			return db_fail(err, DB_ERR_QUERY, "CRL cursor: NULL in column %d", col + 1);
	v = PQgetvalue(s->batch, s->row, 0);
	len = PQgetlength(s->batch, s->row, 0);
	if (len < 1 || len > DB_SERIAL_MAX || v[0] == 0)
		return db_fail(err, DB_ERR_QUERY, "CRL cursor: a serial of %d bytes", len);
	memcpy(e->serial, v, (size_t)len);
	e->serial_len = (size_t)len;
	len = PQgetlength(s->batch, s->row, 1);
	if (len < 1 || len >= (int)sizeof(status))
		return db_fail(err, DB_ERR_QUERY, "CRL cursor: unreadable status");
	memcpy(status, PQgetvalue(s->batch, s->row, 1), (size_t)len);
	status[len] = '\0';
	st = db_cert_status_parse(status);
	if (st != DB_CERT_REVOKED && st != DB_CERT_HOLD && st != DB_CERT_ISSUED)
		return db_fail(err, DB_ERR_QUERY, "CRL cursor: status %s", status);
	e->status = (enum db_cert_status)st;
	if (PQgetlength(s->batch, s->row, 2) != 8 || PQgetlength(s->batch, s->row, 3) != 4 ||
	    PQgetlength(s->batch, s->row, 4) != 8)
		return db_fail(err, DB_ERR_QUERY, "CRL cursor: unexpected column sizes");
	e->revoked_at = (int64_t)be(PQgetvalue(s->batch, s->row, 2), 8);
	e->reason = (int)(int32_t)be(PQgetvalue(s->batch, s->row, 3), 4);
	e->invalidity_date = (int64_t)be(PQgetvalue(s->batch, s->row, 4), 8);
	s->row++;
	*got = 1;
	return DB_OK;
}

void db_crl_scan_close(struct db_crl_scan *s)
{
	if (!s)
		return;
	PQclear(s->batch);
	db_rollback(s->db);
	free(s);
}

enum db_status db_crl_distribution_claim(struct db *db, int32_t authority_id, const char *url,
                                         int shards, const char *by, char *stored_url,
                                         int *stored_shards, struct db_err *err)
{
	struct db_authority_settings d;
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v;

	stored_url[0] = '\0';
	*stored_shards = 0;
	if ((rc = db_check_text("CRL base URL", url, DB_CRL_URL_MAX, err)) != DB_OK ||
	    (rc = db_check_text("principal name", by, 128, err)) != DB_OK)
		return rc;
	/* A row made here carries the defaults every other reader assumes for a missing row. */
	db_authority_settings_default(&d);
	db_param_int(&p, authority_id);
	db_param_text(&p, url);
	db_param_int(&p, url[0] ? shards : 0);
	db_param_text(&p, by);
	db_param_int(&p, d.crl_next_update_seconds);
	db_param_int(&p, d.delta_crl_seconds);
	db_param_int(&p, d.ocsp_validity_seconds);
	db_param_int(&p, d.ocsp_nonce_rate_limit);
	/* Stored only where nothing is: the first daemon's configuration seeds the database,
	 * every later one is compared with it. The SELECT sees the row as it was when no change
	 * was made. */
	rc = db_exec(
	    db,
	    "WITH ins AS (INSERT INTO authority_settings (authority_id,"
	    " crl_next_update_seconds, delta_crl_seconds, ocsp_validity_seconds,"
	    " ocsp_nonce_rate_limit, updated_by, crl_base_url, crl_shards)"
	    " SELECT $1::int4, $5::int4, $6::int4, $7::int4, $8::int4, $4::text, $2::text,"
	    " $3::int4 WHERE $2::text <> ''"
	    " ON CONFLICT (authority_id) DO UPDATE SET crl_base_url = excluded.crl_base_url,"
	    " crl_shards = excluded.crl_shards, updated_by = excluded.updated_by,"
	    " updated_at = now() WHERE authority_settings.crl_base_url = ''"
	    " RETURNING crl_base_url, crl_shards)"
	    " SELECT crl_base_url, crl_shards FROM ins UNION ALL"
	    " SELECT crl_base_url, crl_shards FROM authority_settings"
	    " WHERE authority_id = $1::int4 AND NOT EXISTS (SELECT 1 FROM ins)",
	    &p, &r, err, "claiming the CRL distribution of authority %d", (int)authority_id);
	if (rc != DB_OK)
		goto out;
	if (PQntuples(r) == 0)
		goto out; /* no row and nothing to store */
	if (strlen(PQgetvalue(r, 0, 0)) > DB_CRL_URL_MAX || db_get_int64(r, 0, 1, &v) != 0) {
		rc = db_fail(err, DB_ERR_QUERY, "authority %d: unreadable CRL distribution",
		             (int)authority_id);
		goto out;
	}
	snprintf(stored_url, DB_CRL_URL_MAX + 1, "%s", PQgetvalue(r, 0, 0));
	*stored_shards = (int)v;
out:
	PQclear(r);
	return rc;
}

enum db_status db_crl_changes_prune(struct db *db, int32_t authority_id, uint64_t before_xid,
                                    int64_t margin_seconds, int max_rows, int64_t *deleted,
                                    struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	char xid[24];

	*deleted = 0;
	snprintf(xid, sizeof(xid), "%llu", (unsigned long long)before_xid);
	db_param_int(&p, authority_id);
	db_param_text(&p, xid);
	db_param_int(&p, margin_seconds);
	db_param_int(&p, max_rows);
	rc = db_exec(db, "SELECT crl_changes_prune($1, $2::xid8, $3::int4, $4::int4)::int8", &p, &r,
	             err, "pruning the CRL change log of authority %d", (int)authority_id);
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, deleted) != 0))
		rc = db_fail(err, DB_ERR_QUERY, "pruning the CRL change log: unexpected answer");
	PQclear(r);
	return rc;
}

enum db_status db_crl_changes_count(struct db *db, int64_t *rows, struct db_err *err)
{
	PGresult *r = NULL;
	enum db_status rc;

	*rows = 0;
	rc = db_exec(db, "SELECT count(*) FROM crl_changes", NULL, &r, err,
	             "counting the CRL change log");
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, rows) != 0))
		rc = db_fail(err, DB_ERR_QUERY, "counting the CRL change log: unexpected answer");
	PQclear(r);
	return rc;
}
