/* Connection, statement execution with error context, transactions. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

enum db_status db_fail(struct db_err *err, enum db_status status, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return status;
	err->status = status;
	err->sqlstate[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return status;
}

/* libpq's messages end in a newline and may span lines; make them one clause. */
void db_one_line(const char *in, char *out, size_t cap)
{
	size_t n = 0;

	for (; in && *in && n + 1 < cap; in++)
		out[n++] = (*in == '\n' || *in == '\r') ? ' ' : *in;
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

/* The session settings the data layer relies on; re-applied after a reset. Durability: a
 * server or role configured with synchronous_commit=off would acknowledge commits that a
 * crash can lose, which invariants 2 and 3 (docs/architecture.md) forbid, so this session turns it
 * on (keeping a stricter setting such as remote_apply). bytea_output=hex is the form db_get_bytes
 * parses. */
static enum db_status session_setup(struct db *db, struct db_err *err)
{
	PGresult *r =
	    PQexec(db->conn, "SELECT set_config('bytea_output', 'hex', false),"
	                     " set_config('synchronous_commit',"
	                     "  CASE current_setting('synchronous_commit') WHEN 'off' THEN 'on'"
	                     "  ELSE current_setting('synchronous_commit') END, false)");
	enum db_status rc = DB_OK;
	char why[400];

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		db_one_line(PQerrorMessage(db->conn), why, sizeof(why));
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "setting up the database session: %s", why);
	}
	PQclear(r);
	return rc;
}

enum db_status db_connect(const char *conninfo, struct db **out, struct db_err *err)
{
	const char *keys[8], *vals[8];
	struct db *db = NULL;
	enum db_status rc;
	char why[400];
	int n = 0;

	*out = NULL;
	db = calloc(1, sizeof(*db));
	if (!db)
		return db_fail(err, DB_ERR_UNAVAILABLE,
		               "connecting to the database: out of memory");
	/* Order matters: the connection string overrides the defaults before it, and the client
	 * encoding after it wins, since the data layer checks text as UTF-8. */
	if (!getenv("PGCONNECT_TIMEOUT")) {
		keys[n] = "connect_timeout";
		vals[n++] = "10";
	}
	keys[n] = "fallback_application_name";
	vals[n++] = "hsmca";
	if (conninfo && *conninfo) {
		keys[n] = "dbname";
		vals[n++] = conninfo;
	}
	keys[n] = "client_encoding";
	vals[n++] = "UTF8";
	keys[n] = NULL;
	vals[n] = NULL;
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (!db->conn) {
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "connecting to the database: out of memory");
		goto out;
	}
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db_one_line(PQerrorMessage(db->conn), why, sizeof(why));
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "connecting to the database: %s", why);
		goto out;
	}
	rc = session_setup(db, err);
	if (rc != DB_OK)
		goto out;
	*out = db;
	db = NULL;
out:
	db_close(db);
	return rc;
}

/* Forget the prepared statements: the server forgot them (a new session) or they must be
 * planned afresh (a schema change under them). */
static void stmts_forget(struct db *db)
{
	for (int i = 0; i < db->n_stmts; i++)
		free(db->stmts[i].sql);
	db->n_stmts = 0;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	PQfinish(db->conn);
	stmts_forget(db);
	free(db);
}

static uint64_t sql_hash(const char *sql)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *sql; sql++)
		h = (h ^ (uint8_t)*sql) * 1099511628211ULL;
	return h;
}

/* The prepared statement for sql, preparing it now if needed: its index in the cache, or -1
 * when it cannot be cached (the cache is full: run it unprepared), or -2 with *r the error
 * of preparing it (the statement's own error, as executing it would give). */
static int stmt_index(struct db *db, const char *sql, int nparams, PGresult **r)
{
	uint64_t h = sql_hash(sql);
	char name[24], *copy;
	int i;

	*r = NULL;
	for (i = 0; i < db->n_stmts; i++)
		if (db->stmts[i].hash == h && !strcmp(db->stmts[i].sql, sql))
			return i;
	if (i == DB_STMT_CACHE || !(copy = strdup(sql)))
		return -1;
	snprintf(name, sizeof(name), "hsmca_%d", i);
	*r = PQprepare(db->conn, name, sql, nparams, NULL);
	if (PQresultStatus(*r) != PGRES_COMMAND_OK) {
		free(copy);
		return -2;
	}
	PQclear(*r);
	*r = NULL;
	db->stmts[i].hash = h;
	db->stmts[i].sql = copy;
	db->n_stmts++;
	return i;
}

/* Run sql with p as a prepared statement, preparing it on first use; a statement that cannot
 * be cached (the cache is full) runs unprepared. The result as PQexecParams gives it. */
static PGresult *exec_prepared(struct db *db, const char *sql, const struct db_params *p)
{
	PGresult *r;
	char name[24];
	int i = stmt_index(db, sql, p->n, &r);

	if (i == -2)
		return r;
	if (i < 0)
		return PQexecParams(db->conn, sql, p->n, NULL, p->values, p->lengths, p->formats,
		                    0);
	snprintf(name, sizeof(name), "hsmca_%d", i);
	return PQexecPrepared(db->conn, name, p->n, p->values, p->lengths, p->formats, 0);
}

struct pg_conn *db_pgconn(struct db *db)
{
	return db->conn;
}

/* A connection that broke outside a transaction is re-established before the next statement,
 * so a server restart costs the statements in flight, not the process. Inside a transaction
 * it is not: its earlier statements are lost and the caller must know. */
static enum db_status ensure_connected(struct db *db, struct db_err *err)
{
	char why[400];

	/* An idle connection the server closed meanwhile (a restart: it says so and hangs up)
	 * is still CONNECTION_OK until libpq reads that; look first, so that the statement goes to
	 * a fresh connection instead of failing on the dead one. One poll, no wait. */
	if (PQstatus(db->conn) == CONNECTION_OK && (!db->in_tx || db->begin_pending)) {
		struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};
		int dead = pfd.fd < 0;
		if (!dead && poll(&pfd, 1, 0) == 1)
			dead = !PQconsumeInput(db->conn) || (pfd.revents & (POLLHUP | POLLERR));
		if (!dead)
			return DB_OK;
	} else if (PQstatus(db->conn) == CONNECTION_OK) {
		return DB_OK;
	}
	if (db->in_tx && !db->begin_pending)
		return db_fail(err, DB_ERR_UNAVAILABLE,
		               "the database connection broke inside a transaction");
	PQreset(db->conn);
	stmts_forget(db);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		db_one_line(PQerrorMessage(db->conn), why, sizeof(why));
		return db_fail(err, DB_ERR_UNAVAILABLE, "reconnecting to the database: %s", why);
	}
	return session_setup(db, err);
}

static enum db_status status_of(PGconn *conn, const char *sqlstate)
{
	if (PQstatus(conn) != CONNECTION_OK)
		return DB_ERR_UNAVAILABLE;
	if (!sqlstate)
		return DB_ERR_QUERY;
	if (!strcmp(sqlstate, "23505"))
		return DB_ERR_CONFLICT;
	/* connection exceptions, and the server shutting down or not yet accepting */
	if (!strncmp(sqlstate, "08", 2) || !strcmp(sqlstate, "57P01") ||
	    !strcmp(sqlstate, "57P02") || !strcmp(sqlstate, "57P03"))
		return DB_ERR_UNAVAILABLE;
	return DB_ERR_QUERY;
}

/* Read what is left up to the pipeline's sync point, then leave pipeline mode. */
static void pipeline_finish(struct db *db)
{
	PGresult *x;

	while (PQpipelineStatus(db->conn) != PQ_PIPELINE_OFF) {
		x = PQgetResult(db->conn);
		if (!x) {
			if (PQexitPipelineMode(db->conn))
				break;
			if (PQstatus(db->conn) != CONNECTION_OK)
				break;
			continue;
		}
		if (PQresultStatus(x) == PGRES_PIPELINE_SYNC) {
			PQclear(x);
			PQexitPipelineMode(db->conn);
			break;
		}
		PQclear(x);
	}
}

/* The next result of a pipeline and the NULL that ends it. */
static PGresult *pipeline_result(struct db *db)
{
	PGresult *r = PQgetResult(db->conn), *x;

	while (r && (x = PQgetResult(db->conn)))
		PQclear(x);
	return r;
}

/* BEGIN and a statement with parameters in one round trip (pipeline mode): the statement's
 * result, or BEGIN's if that failed; NULL when it cannot be done so (the caller sends them
 * one after the other). */
static PGresult *begin_and_exec(struct db *db, const char *sql, const struct db_params *p)
{
	PGresult *rb, *rs, *prep = NULL;
	char name[24];
	int i = stmt_index(db, sql, p->n, &prep);

	if (i < 0) {
		PQclear(prep); /* the plain way reports a statement that does not prepare */
		return NULL;
	}
	if (!PQenterPipelineMode(db->conn))
		return NULL;
	snprintf(name, sizeof(name), "hsmca_%d", i);
	if (!PQsendQueryParams(db->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQsendQueryPrepared(db->conn, name, p->n, p->values, p->lengths, p->formats, 0) ||
	    !PQpipelineSync(db->conn)) {
		pipeline_finish(db);
		return NULL;
	}
	rb = pipeline_result(db);
	rs = pipeline_result(db);
	pipeline_finish(db);
	if (PQresultStatus(rb) != PGRES_COMMAND_OK) {
		PQclear(rs);
		return rb;
	}
	PQclear(rb);
	return rs;
}

/* The error of a failed statement (r may be NULL: the connection failed) as a db_err. */
static enum db_status result_error(struct db *db, const PGresult *r, const char *whatbuf,
                                   struct db_err *err)
{
	const char *sqlstate, *primary, *det;
	char why[400], detail[200];
	enum db_status rc;

	sqlstate = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	det = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
	db_one_line(primary ? primary : PQerrorMessage(db->conn), why, sizeof(why));
	db_one_line(det, detail, sizeof(detail));
	rc = db_fail(err, status_of(db->conn, sqlstate), "%s: %s%s%s", whatbuf, why,
	             detail[0] ? " (" : "", detail[0] ? detail : "");
	if (detail[0] && err && strlen(err->msg) + 1 < sizeof(err->msg))
		strcat(err->msg, ")");
	if (err && sqlstate && strlen(sqlstate) == 5)
		memcpy(err->sqlstate, sqlstate, 6);
	/* "cached plan must not change result type": a migration changed a table under a
	 * prepared statement. Prepare everything afresh (once the transaction is over). */
	if (sqlstate && !strcmp(sqlstate, "0A000") && db->n_stmts > 0 && !db->in_tx) {
		PGresult *d = PQexec(db->conn, "DEALLOCATE ALL");
		PQclear(d);
		stmts_forget(db);
	}
	return rc;
}

enum db_status db_exec(struct db *db, const char *sql, const struct db_params *p, PGresult **res,
                       struct db_err *err, const char *what, ...)
{
	char whatbuf[256];
	enum db_status rc;
	PGresult *r = NULL;
	ExecStatusType st;
	va_list ap;

	*res = NULL;
	va_start(ap, what);
	vsnprintf(whatbuf, sizeof(whatbuf), what, ap);
	va_end(ap);
	rc = ensure_connected(db, err);
	if (rc != DB_OK)
		goto out;
	/* Without parameters, the simple protocol: it runs several statements (a migration). */
	if (db->begin_pending) {
		/* Without parameters the simple protocol takes both in one message; each statement
		 * still gets its own snapshot. */
		db->begin_pending = 0;
		if (!p) {
			size_t n = strlen(sql);
			char *both = malloc(n + 7);
			if (!both) {
				rc = db_fail(err, DB_ERR_UNAVAILABLE, "%s: out of memory", whatbuf);
				goto out;
			}
			memcpy(both, "BEGIN;", 6);
			memcpy(both + 6, sql, n + 1);
			r = PQexec(db->conn, both);
			free(both);
			goto result;
		}
		r = begin_and_exec(db, sql, p);
		if (r)
			goto result;
		r = PQexec(db->conn, "BEGIN");
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			goto result;
		PQclear(r);
	}
	if (p)
		r = exec_prepared(db, sql, p);
	else
		r = PQexec(db->conn, sql);
result:
	st = PQresultStatus(r);
	if (r && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
		*res = r;
		r = NULL;
		rc = DB_OK;
		goto out;
	}
	rc = result_error(db, r, whatbuf, err);
out:
	PQclear(r);
	return rc;
}

enum db_status db_exec_commit(struct db *db, const char *sql, const struct db_params *p,
                              PGresult **out, struct db_err *err, const char *what, ...)
{
	PGresult *r = NULL, *rc_commit = NULL;
	char whatbuf[256], name[24];
	enum db_status rc;
	va_list ap;
	int i;

	if (out)
		*out = NULL;
	va_start(ap, what);
	vsnprintf(whatbuf, sizeof(whatbuf), what, ap);
	va_end(ap);
	/* A transaction whose BEGIN has gone out, and a statement that can be prepared: else
	 * nothing to save, and the two go one after the other. */
	i = -1;
	if (db->in_tx && !db->begin_pending && p && PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) == PQTRANS_INTRANS) {
		i = stmt_index(db, sql, p->n, &r);
		if (i == -2) {
			/* its own error; preparing it has failed the transaction already */
			rc = result_error(db, r, whatbuf, err);
			PQclear(r);
			return rc;
		}
	}
	if (i < 0 || !PQenterPipelineMode(db->conn)) {
		rc = db_exec(db, sql, p, &r, err, "%s", whatbuf);
		if (rc == DB_OK)
			rc = db_commit(db, err);
		if (rc == DB_OK && out)
			*out = r;
		else
			PQclear(r);
		return rc;
	}
	/* One round trip: the statement, then COMMIT; if the statement fails the server skips
	 * the COMMIT and the transaction stays open, failed, for the caller to roll back. */
	snprintf(name, sizeof(name), "hsmca_%d", i);
	if (!PQsendQueryPrepared(db->conn, name, p->n, p->values, p->lengths, p->formats, 0) ||
	    !PQsendQueryParams(db->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQpipelineSync(db->conn)) {
		rc = result_error(db, NULL, whatbuf, err);
		goto drain;
	}
	r = pipeline_result(db);
	rc_commit = pipeline_result(db);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = result_error(db, r, whatbuf, err);
	} else if (PQresultStatus(rc_commit) != PGRES_COMMAND_OK) {
		rc = result_error(db, rc_commit, "COMMIT", err);
		db->in_tx = 0; /* a failed COMMIT ends the transaction */
	} else {
		rc = DB_OK;
		db->in_tx = 0;
		if (out) {
			*out = r;
			r = NULL;
		}
	}
drain:
	pipeline_finish(db);
	PQclear(r);
	PQclear(rc_commit);
	return rc;
}

/* db_exec_many without a pipeline: one statement after the other (a statement the cache
 * cannot hold, or libpq refusing pipeline mode). */
static enum db_status exec_many_plain(struct db *db, int begin, size_t n, const char *const *sql,
                                      struct db_params *const *p, PGresult **res, int commit,
                                      struct db_err *err, const char *what)
{
	enum db_status rc = begin ? db_begin(db, err) : DB_OK;

	for (size_t i = 0; rc == DB_OK && i < n; i++)
		rc = db_exec(db, sql[i], p[i], &res[i], err, "%s", what);
	if (rc == DB_OK && commit)
		rc = db_commit(db, err);
	if (rc != DB_OK)
		for (size_t i = 0; i < n; i++) {
			PQclear(res[i]);
			res[i] = NULL;
		}
	return rc;
}

enum db_status db_exec_many(struct db *db, int begin, size_t n, const char *const *sql,
                            struct db_params *const *p, PGresult **res, int commit,
                            struct db_err *err, const char *what)
{
	enum db_status rc = DB_OK;
	PGresult *r = NULL;
	char name[24];
	int *idx, lead;

	for (size_t i = 0; i < n; i++)
		res[i] = NULL;
	if (begin && db->in_tx)
		return db_fail(err, DB_ERR_STATE, "%s: a transaction is open already", what);
	if (!begin && !db->in_tx)
		return db_fail(err, DB_ERR_STATE, "%s: no transaction has begun", what);
	/* db_begin's BEGIN not sent yet: it leads the pipeline as begin's would (sent plainly
	 * by the first statement when there is no pipeline). */
	lead = begin || db->begin_pending;
	if (lead) {
		rc = ensure_connected(db, err);
		if (rc != DB_OK)
			return rc;
	} else if (PQstatus(db->conn) != CONNECTION_OK) {
		return result_error(db, NULL, what, err);
	}
	if (!(idx = malloc((n ? n : 1) * sizeof(*idx))))
		return db_fail(err, DB_ERR_UNAVAILABLE, "%s: out of memory", what);
	/* Statements are prepared (once per connection) before the pipeline starts. */
	for (size_t i = 0; i < n; i++) {
		idx[i] = stmt_index(db, sql[i], p[i]->n, &r);
		if (idx[i] == -2) {
			rc = result_error(db, r, what, err);
			PQclear(r);
			free(idx);
			return rc;
		}
		if (idx[i] < 0) { /* the cache is full: one after the other */
			free(idx);
			return exec_many_plain(db, begin, n, sql, p, res, commit, err, what);
		}
	}
	if (!PQenterPipelineMode(db->conn)) {
		free(idx);
		return exec_many_plain(db, begin, n, sql, p, res, commit, err, what);
	}
	if (lead) {
		db->in_tx = 1; /* from here the caller rolls back on failure */
		db->begin_pending = 0;
	}
	if (lead && !PQsendQueryParams(db->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
		rc = result_error(db, NULL, what, err);
	for (size_t i = 0; rc == DB_OK && i < n; i++) {
		snprintf(name, sizeof(name), "hsmca_%d", idx[i]);
		if (!PQsendQueryPrepared(db->conn, name, p[i]->n, p[i]->values, p[i]->lengths,
		                         p[i]->formats, 0))
			rc = result_error(db, NULL, what, err);
	}
	if (rc == DB_OK && commit &&
	    !PQsendQueryParams(db->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
		rc = result_error(db, NULL, what, err);
	if (rc == DB_OK && !PQpipelineSync(db->conn))
		rc = result_error(db, NULL, what, err);
	free(idx);
	if (rc != DB_OK)
		goto drain;
	if (lead) {
		r = pipeline_result(db);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = result_error(db, r, "BEGIN", err);
		PQclear(r);
	}
	/* After a failed statement the server skips the rest (the COMMIT too) up to the sync. */
	for (size_t i = 0; i < n; i++) {
		ExecStatusType st;
		r = pipeline_result(db);
		st = PQresultStatus(r);
		if (rc == DB_OK && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
			res[i] = r;
			continue;
		}
		if (rc == DB_OK)
			rc = result_error(db, r, what, err);
		PQclear(r);
	}
	if (commit) {
		r = pipeline_result(db);
		if (rc == DB_OK) {
			if (PQresultStatus(r) != PGRES_COMMAND_OK)
				rc = result_error(db, r, "COMMIT", err);
			db->in_tx = 0; /* committed, or a failed COMMIT ended it */
		}
		PQclear(r);
	}
drain:
	pipeline_finish(db);
	if (rc != DB_OK)
		for (size_t i = 0; i < n; i++) {
			PQclear(res[i]);
			res[i] = NULL;
		}
	return rc;
}

enum db_status db_exec_group(struct db *db, int begin, const char *sql, struct db_params *p,
                             PGresult **r, struct db_err *err, const char *what)
{
	const char *sqls[2] = {"SET LOCAL plan_cache_mode = force_generic_plan", sql};
	struct db_params none = {0}, *ps[2] = {&none, p};
	PGresult *res[2] = {NULL, NULL};
	enum db_status rc = db_exec_many(db, begin, 2, sqls, ps, res, 1, err, what);

	PQclear(res[0]);
	*r = res[1];
	return rc;
}

static enum db_status simple(struct db *db, const char *sql, struct db_err *err)
{
	PGresult *r;
	enum db_status rc = db_exec(db, sql, NULL, &r, err, "%s", sql);

	PQclear(r);
	return rc;
}

enum db_status db_begin(struct db *db, struct db_err *err)
{
	if (db->in_tx)
		return db_fail(err, DB_ERR_STATE, "BEGIN: a transaction is open already");
	db->in_tx = 1;
	db->begin_pending = 1;
	return DB_OK;
}

enum db_status db_commit(struct db *db, struct db_err *err)
{
	enum db_status rc;

	if (!db->in_tx)
		return db_fail(err, DB_ERR_STATE, "COMMIT: no transaction is open");
	if (db->begin_pending) { /* nothing was sent: nothing to commit */
		db->in_tx = db->begin_pending = 0;
		return DB_OK;
	}
	/* A COMMIT of a failed transaction "succeeds" as a rollback: say so. */
	if (PQtransactionStatus(db->conn) == PQTRANS_INERROR) {
		db_rollback(db);
		return db_fail(err, DB_ERR_STATE,
		               "COMMIT: the transaction had failed and was rolled back");
	}
	rc = simple(db, "COMMIT", err);
	db->in_tx = 0;
	return rc;
}

void db_rollback(struct db *db)
{
	PGresult *r;

	if (!db->in_tx)
		return; /* nothing open (a failed COMMIT has ended it already) */
	db->in_tx = 0;
	if (db->begin_pending) { /* nothing was sent */
		db->begin_pending = 0;
		return;
	}
	if (PQstatus(db->conn) != CONNECTION_OK)
		return;
	r = PQexec(db->conn, "ROLLBACK");
	PQclear(r);
}

enum db_status db_tx_enter(struct db *db, int *own, struct db_err *err)
{
	*own = 0;
	if (db->in_tx) {
		if (PQtransactionStatus(db->conn) == PQTRANS_INERROR)
			return db_fail(err, DB_ERR_STATE,
			               "the open transaction has failed; roll it back first");
		return DB_OK;
	}
	*own = 1;
	return db_begin(db, err);
}

enum db_status db_tx_leave(struct db *db, int own, enum db_status rc, struct db_err *err)
{
	if (!own)
		return rc;
	if (rc != DB_OK) {
		db_rollback(db);
		return rc;
	}
	return db_commit(db, err);
}
