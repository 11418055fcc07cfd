/* TOTP enrolments and recovery codes (migration 0018; db_mfa.h). The secret reaches this layer
 * only as keyd's wrapped blob; codes only as hashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "db_mfa.h"

static enum db_mfa_state state_of(const char *s)
{
	if (!strcmp(s, "pending"))
		return DB_MFA_PENDING;
	if (!strcmp(s, "active"))
		return DB_MFA_ACTIVE;
	return DB_MFA_DISABLED;
}

enum db_status db_mfa_get(struct db *db, int32_t principal_id, int window_seconds,
                          struct db_mfa *out, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v;
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	out->last_step = -1;
	db_param_int(&p, principal_id);
	db_param_int(&p, window_seconds);
	/* The window is open while failed_since is younger than window_seconds. */
	rc = db_exec(db,
	             "SELECT t.state, coalesce(t.wrap_key, ''), t.secret_wrapped, t.last_step,"
	             " CASE WHEN t.failed_since > now() - make_interval(secs => $2::int)"
	             " THEN t.failures ELSE 0 END,"
	             " CASE WHEN t.failed_since > now() - make_interval(secs => $2::int)"
	             " THEN ceil(extract(epoch FROM t.failed_since"
	             " + make_interval(secs => $2::int) - now()))::bigint ELSE 0 END,"
	             " (SELECT count(*) FROM principal_recovery_codes c"
	             " WHERE c.principal_id = t.principal_id AND c.used_at IS NULL"
	             " AND t.state = 'active'),"
	             " floor(extract(epoch FROM t.enrolled_at))::bigint,"
	             " coalesce(floor(extract(epoch FROM t.confirmed_at))::bigint, 0)"
	             " FROM principal_totp t WHERE t.principal_id = $1",
	             &p, &r, err, "reading the TOTP enrolment of principal %d", (int)principal_id);
	if (rc != DB_OK)
		return rc;
	if (PQntuples(r) == 0) {
		out->state = DB_MFA_NONE;
		goto done;
	}
	out->state = state_of(PQgetvalue(r, 0, 0));
	snprintf(out->wrap_key, sizeof(out->wrap_key), "%s", PQgetvalue(r, 0, 1));
	if (!PQgetisnull(r, 0, 2) &&
	    db_get_bytes_into(r, 0, 2, out->wrapped, sizeof(out->wrapped), 0, &len) != 0)
		goto bad;
	out->wrapped_len = len;
	if (db_get_int64(r, 0, 3, &out->last_step) != 0 || db_get_int64(r, 0, 4, &v) != 0)
		goto bad;
	out->failures = (int)v;
	if (db_get_int64(r, 0, 5, &out->window_left) != 0 || db_get_int64(r, 0, 6, &v) != 0)
		goto bad;
	out->recovery_left = (int)v;
	if (db_get_int64(r, 0, 7, &out->enrolled_at) != 0 ||
	    db_get_int64(r, 0, 8, &out->confirmed_at) != 0)
		goto bad;
done:
	PQclear(r);
	return DB_OK;
bad:
	PQclear(r);
	return db_fail(err, DB_ERR_QUERY, "the TOTP enrolment of principal %d: unreadable row",
	               (int)principal_id);
}

/* The number of rows a statement changed. */
static int changed_rows(PGresult *r)
{
	const char *s = PQcmdTuples(r);

	return s && *s ? atoi(s) : 0;
}

enum db_status db_mfa_enrol(struct db *db, int32_t principal_id, const char *wrap_key,
                            const uint8_t *wrapped, size_t wrapped_len, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if ((rc = db_check_text("wrap key label", wrap_key, DB_MFA_KEY_MAX, err)) != DB_OK)
		return rc;
	if (wrapped_len < 30 || wrapped_len > DB_MFA_WRAPPED_MAX)
		return db_fail(err, DB_ERR_INVALID, "a wrapped TOTP secret has 30..%d bytes",
		               DB_MFA_WRAPPED_MAX);
	db_param_int(&p, principal_id);
	db_param_text(&p, wrap_key);
	db_param_bytes(&p, wrapped, wrapped_len);
	rc = db_exec(db,
	             "INSERT INTO principal_totp (principal_id, state, wrap_key, secret_wrapped)"
	             " VALUES ($1, 'pending', $2, $3)"
	             " ON CONFLICT (principal_id) DO UPDATE SET state = 'pending',"
	             " wrap_key = $2, secret_wrapped = $3, last_step = -1, failures = 0,"
	             " failed_since = NULL, enrolled_at = now(), confirmed_at = NULL"
	             " WHERE principal_totp.state <> 'active'",
	             &p, &r, err, "enrolling principal %d for TOTP", (int)principal_id);
	if (rc == DB_OK && changed_rows(r) != 1)
		rc = db_fail(err, DB_ERR_STATE, "principal %d has an active TOTP enrolment",
		             (int)principal_id);
	PQclear(r);
	return rc;
}

enum db_status db_mfa_confirm(struct db *db, int32_t principal_id, int64_t step,
                              const struct db_mfa_recovery codes[DB_MFA_RECOVERY_CODES],
                              struct db_err *err)
{
	struct db_params p = {0}, q = {0};
	PGresult *r = NULL;
	enum db_status rc;
	char sql[1024];
	size_t off;
	int own = 0;

	db_param_int(&p, principal_id);
	db_param_int(&p, step);
	/* One statement for the ten codes: (n, salt, hash) from parameters 2.. */
	off = (size_t)snprintf(sql, sizeof(sql),
	                       "INSERT INTO principal_recovery_codes (principal_id, n, salt, hash)"
	                       " VALUES");
	db_param_int(&q, principal_id);
	for (int i = 0; i < DB_MFA_RECOVERY_CODES; i++) {
		off += (size_t)snprintf(sql + off, sizeof(sql) - off, "%s ($1, %d, $%d, $%d)",
		                        i ? "," : "", codes[i].n, 2 + 2 * i, 3 + 2 * i);
		db_param_bytes(&q, codes[i].salt, DB_MFA_SALT_LEN);
		db_param_bytes(&q, codes[i].hash, DB_MFA_HASH_LEN);
	}
	snprintf(sql + off, sizeof(sql) - off,
	         " ON CONFLICT (principal_id, n) DO UPDATE SET salt = excluded.salt,"
	         " hash = excluded.hash, made_at = now(), used_at = NULL");
	if ((rc = db_tx_enter(db, &own, err)) != DB_OK)
		return rc;
	rc = db_exec(db,
	             "UPDATE principal_totp SET state = 'active', last_step = $2,"
	             " confirmed_at = now(), failures = 0, failed_since = NULL"
	             " WHERE principal_id = $1 AND state = 'pending' AND last_step < $2",
	             &p, &r, err, "confirming the TOTP enrolment of principal %d",
	             (int)principal_id);
	if (rc == DB_OK && changed_rows(r) != 1)
		rc = db_fail(err, DB_ERR_STATE, "principal %d has no pending TOTP enrolment",
		             (int)principal_id);
	PQclear(r);
	r = NULL;
	if (rc == DB_OK)
		rc = db_exec(db, sql, &q, &r, err, "storing the recovery codes of principal %d",
		             (int)principal_id);
	PQclear(r);
	return db_tx_leave(db, own, rc, err);
}

enum db_status db_mfa_use_step(struct db *db, int32_t principal_id, int64_t step, int *ok,
                               struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*ok = 0;
	db_param_int(&p, principal_id);
	db_param_int(&p, step);
	/* One statement: two requests with the same code cannot both pass. */
	rc = db_exec(db,
	             "UPDATE principal_totp SET last_step = $2, failures = 0, failed_since = NULL"
	             " WHERE principal_id = $1 AND state = 'active' AND last_step < $2",
	             &p, &r, err, "using a TOTP step of principal %d", (int)principal_id);
	if (rc == DB_OK)
		*ok = changed_rows(r) == 1;
	PQclear(r);
	return rc;
}

enum db_status db_mfa_fail(struct db *db, int32_t principal_id, int window_seconds, int *failures,
                           struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int64_t v = 0;

	*failures = 0;
	db_param_int(&p, principal_id);
	db_param_int(&p, window_seconds);
	rc = db_exec(
	    db,
	    "UPDATE principal_totp SET"
	    " failures = CASE WHEN failed_since > now() - make_interval(secs => $2::int)"
	    " THEN failures + 1 ELSE 1 END,"
	    " failed_since = CASE WHEN failed_since > now() - make_interval(secs => $2::int)"
	    " THEN failed_since ELSE now() END"
	    " WHERE principal_id = $1 RETURNING failures",
	    &p, &r, err, "counting a wrong TOTP code of principal %d", (int)principal_id);
	if (rc == DB_OK && PQntuples(r) == 1 && db_get_int64(r, 0, 0, &v) == 0)
		*failures = (int)v;
	PQclear(r);
	return rc;
}

enum db_status db_mfa_disable(struct db *db, int32_t principal_id, int *changed, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	int own = 0;

	*changed = 0;
	db_param_int(&p, principal_id);
	if ((rc = db_tx_enter(db, &own, err)) != DB_OK)
		return rc;
	rc =
	    db_exec(db,
	            "UPDATE principal_totp SET state = 'disabled', wrap_key = NULL,"
	            " secret_wrapped = NULL, failures = 0, failed_since = NULL"
	            " WHERE principal_id = $1 AND state <> 'disabled'",
	            &p, &r, err, "disabling the TOTP enrolment of principal %d", (int)principal_id);
	if (rc == DB_OK)
		*changed = changed_rows(r) == 1;
	PQclear(r);
	r = NULL;
	if (rc == DB_OK)
		rc = db_exec(db,
		             "UPDATE principal_recovery_codes SET used_at = now()"
		             " WHERE principal_id = $1 AND used_at IS NULL",
		             &p, &r, err, "spending the recovery codes of principal %d",
		             (int)principal_id);
	PQclear(r);
	return db_tx_leave(db, own, rc, err);
}

enum db_status db_mfa_recovery_list(struct db *db, int32_t principal_id,
                                    struct db_mfa_recovery out[DB_MFA_RECOVERY_CODES], size_t *n,
                                    struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	size_t len;
	int64_t v;

	*n = 0;
	db_param_int(&p, principal_id);
	rc = db_exec(db,
	             "SELECT c.n, c.salt, c.hash FROM principal_recovery_codes c"
	             " JOIN principal_totp t ON t.principal_id = c.principal_id"
	             " WHERE c.principal_id = $1 AND c.used_at IS NULL AND t.state = 'active'"
	             " ORDER BY c.n LIMIT 10",
	             &p, &r, err, "reading the recovery codes of principal %d", (int)principal_id);
	if (rc != DB_OK)
		return rc;
	for (int i = 0; i < PQntuples(r) && i < DB_MFA_RECOVERY_CODES; i++) {
		if (db_get_int64(r, i, 0, &v) != 0 ||
		    db_get_bytes_into(r, i, 1, out[i].salt, DB_MFA_SALT_LEN, 1, &len) != 0 ||
		    db_get_bytes_into(r, i, 2, out[i].hash, DB_MFA_HASH_LEN, 1, &len) != 0) {
			PQclear(r);
			return db_fail(err, DB_ERR_QUERY,
			               "the recovery codes of principal %d: unreadable row",
			               (int)principal_id);
		}
		out[i].n = (int)v;
		(*n)++;
	}
	PQclear(r);
	return DB_OK;
}

enum db_status db_mfa_recovery_use(struct db *db, int32_t principal_id, int n, int *ok,
                                   struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*ok = 0;
	db_param_int(&p, principal_id);
	db_param_int(&p, n);
	rc =
	    db_exec(db,
	            "WITH c AS (UPDATE principal_recovery_codes SET used_at = now()"
	            " WHERE principal_id = $1 AND n = $2 AND used_at IS NULL RETURNING n),"
	            " t AS (UPDATE principal_totp SET failures = 0, failed_since = NULL"
	            " WHERE principal_id = $1 AND EXISTS (SELECT FROM c))"
	            " SELECT count(*) FROM c",
	            &p, &r, err, "spending recovery code %d of principal %d", n, (int)principal_id);
	if (rc == DB_OK)
		*ok = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "0") != 0;
	PQclear(r);
	return rc;
}
