/* What the dashboard and the reports read, each answer built by PostgreSQL as one JSON
 * document in one round trip; CRL publications (hsmca-crld) and backup runs (hsmca backup)
 * recorded. docs/reports.md says what each figure counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

/* "to_char(TIMESTAMPTZ " UTC: RFC 3339 UTC text, as the API shows times
 * ("2026-01-02T03:04:05Z"). */
#define UTC "AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Run sql (one row, one column of JSON text) and hand the text over. */
static enum db_status json_query(struct db *db, const char *sql, const struct db_params *p,
                                 char **json, struct db_err *err, const char *what)
{
	PGresult *r = NULL;
	enum db_status rc;

	*json = NULL;
	rc = db_exec(db, sql, p, &r, err, "%s", what);
	if (rc != DB_OK)
		return rc;
	if (PQntuples(r) != 1 || PQnfields(r) != 1 || PQgetisnull(r, 0, 0))
		rc = db_fail(err, DB_ERR_QUERY, "%s: no answer", what);
	else if (!(*json = strdup(PQgetvalue(r, 0, 0))))
		rc = db_fail(err, DB_ERR_UNAVAILABLE, "%s: out of memory", what);
	PQclear(r);
	return rc;
}

/* The newest full or delta CRL publication of authority a. */
#define CRL_LATEST_OF                                                                              \
	"(SELECT json_build_object('scope', p.scope, 'number', p.number,"                          \
	" 'this_update', to_char(p.this_update " UTC ", 'next_update', to_char(p.next_update " UTC \
	", 'published_at', to_char(p.published_at " UTC ","                                        \
	" 'next_update_passed', p.next_update < now())"                                            \
	" FROM crl_publications p WHERE p.authority_id = a.id AND p.delta = "
#define CRL_LATEST_END " ORDER BY p.published_at DESC LIMIT 1)"

enum db_status db_report_dashboard(struct db *db, char **json, struct db_err *err)
{
	static const char sql[] =
	    "SELECT json_build_object("
	    /* One pass over the certificates for the four statuses. */
	    "'certificates', (SELECT json_build_object("
	    " 'issued', count(*) FILTER (WHERE status = 'issued' AND not_after >= now()),"
	    " 'revoked', count(*) FILTER (WHERE status = 'revoked'),"
	    " 'on_hold', count(*) FILTER (WHERE status = 'hold'),"
	    " 'expired', count(*) FILTER (WHERE status = 'issued' AND not_after < now()))"
	    " FROM certificates),"
	    "'issued_last_hour', (SELECT count(*) FROM certificates"
	    " WHERE issued_at >= now() - interval '1 hour'),"
	    "'issued_last_24_hours', (SELECT count(*) FROM certificates"
	    " WHERE issued_at >= now() - interval '24 hours'),"
	    "'audit', (SELECT json_build_object('head_seq', h.seq,"
	    " 'head_at', to_char(h.at " UTC ", 'checkpoint_seq', c.seq,"
	    " 'checkpoint_at', to_char(c.at " UTC ","
	    " 'entries_since_checkpoint', coalesce(h.seq, 0) - coalesce(c.seq, 0),"
	    " 'oldest_unchecked_age_seconds',"
	    "  (SELECT floor(extract(epoch FROM now() - u.at))::bigint"
	    "  FROM audit_log u WHERE u.seq = coalesce(c.seq, 0) + 1))"
	    " FROM (SELECT 1) o"
	    " LEFT JOIN LATERAL (SELECT seq, at FROM audit_log ORDER BY seq DESC LIMIT 1) h ON true"
	    " LEFT JOIN LATERAL (SELECT seq, at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1) c"
	    " ON true),"
	    "'authorities', (SELECT coalesce(json_agg(json_build_object("
	    " 'name', a.name, 'subject', a.subject, 'retired', a.status = 'retired',"
	    " 'certificate', encode(a.certificate_der, 'hex'),"
	    " 'crl', " CRL_LATEST_OF "false" CRL_LATEST_END ","
	    " 'delta_crl', " CRL_LATEST_OF "true" CRL_LATEST_END ","
	    " 'ocsp', (SELECT json_build_object("
	    "  'earliest_next_update', to_char(min(o.next_update) " UTC ","
	    "  'expired_responses', (SELECT count(*) FROM ocsp_responses x"
	    "   WHERE x.authority_id = a.id AND x.next_update < now()))"
	    "  FROM ocsp_responses o WHERE o.authority_id = a.id)"
	    ") ORDER BY a.name), '[]'::json) FROM authorities a)"
	    ")::text";

	return json_query(db, sql, NULL, json, err, "reading the dashboard");
}

enum db_status db_report_issuance(struct db *db, int64_t from, int64_t to, char **json,
                                  struct db_err *err)
{
	/* Events in [from, to): issued (issued_at), revoked (revoked_at of a certificate revoked
	 * now; a hold is not a revocation), expired (not_after, of a certificate that was signed,
	 * and only once it has passed). Days are UTC. */
	static const char sql[] =
	    "WITH p AS (SELECT to_timestamp($1::bigint) AS f, to_timestamp($2::bigint) AS t),"
	    " ev AS ("
	    "  SELECT 'i'::text AS k, c.authority_id, c.profile, c.issued_at AS at"
	    "  FROM certificates c, p WHERE c.issued_at >= p.f AND c.issued_at < p.t"
	    "  UNION ALL"
	    "  SELECT 'r', c.authority_id, c.profile, c.revoked_at FROM certificates c, p"
	    "  WHERE c.revoked_at >= p.f AND c.revoked_at < p.t AND c.status = 'revoked'"
	    "  UNION ALL"
	    "  SELECT 'e', c.authority_id, c.profile, c.not_after FROM certificates c, p"
	    "  WHERE c.not_after >= p.f AND c.not_after < least(p.t, now())"
	    "  AND c.issued_at IS NOT NULL)"
	    " SELECT json_build_object("
	    "'from', (SELECT to_char(f " UTC " FROM p), 'to', (SELECT to_char(t " UTC " FROM p),"
	    "'rows', (SELECT coalesce(json_agg(json_build_object('authority', a.name, 'profile',"
	    "  g.profile, 'issued', g.i, 'revoked', g.r, 'expired', g.e)"
	    "  ORDER BY a.name, g.profile), '[]'::json)"
	    "  FROM (SELECT authority_id, profile, count(*) FILTER (WHERE k = 'i') i,"
	    "   count(*) FILTER (WHERE k = 'r') r, count(*) FILTER (WHERE k = 'e') e"
	    "   FROM ev GROUP BY authority_id, profile) g"
	    "  JOIN authorities a ON a.id = g.authority_id),"
	    "'totals', (SELECT json_build_object('issued', count(*) FILTER (WHERE k = 'i'),"
	    "  'revoked', count(*) FILTER (WHERE k = 'r'),"
	    "  'expired', count(*) FILTER (WHERE k = 'e'))"
	    "  FROM ev),"
	    "'days', (SELECT coalesce(json_agg(json_build_object("
	    "  'day', to_char(d.day, 'YYYY-MM-DD'), 'issued', coalesce(x.i, 0),"
	    "  'revoked', coalesce(x.r, 0), 'expired', coalesce(x.e, 0))"
	    "  ORDER BY d.day), '[]'::json)"
	    "  FROM (SELECT generate_series(date_trunc('day', f AT TIME ZONE 'UTC'),"
	    "   (t - interval '1 microsecond') AT TIME ZONE 'UTC', interval '1 day') AS day"
	    "   FROM p) d"
	    "  LEFT JOIN (SELECT date_trunc('day', at AT TIME ZONE 'UTC') AS day,"
	    "   count(*) FILTER (WHERE k = 'i') i, count(*) FILTER (WHERE k = 'r') r,"
	    "   count(*) FILTER (WHERE k = 'e') e FROM ev GROUP BY 1) x ON x.day = d.day)"
	    ")::text";
	struct db_params p = {0};

	if (from >= to)
		return db_fail(err, DB_ERR_INVALID, "the period's start is not before its end");
	db_param_int(&p, from);
	db_param_int(&p, to);
	return json_query(db, sql, &p, json, err, "reporting issuance");
}

enum db_status db_report_expiring(struct db *db, int days, size_t limit, char **json,
                                  struct db_err *err)
{
	/* Valid certificates (issued, not revoked or held, not expired yet) whose not_after lies
	 * within days from now, soonest first; at most limit of them, with the total. */
	static const char sql[] =
	    "WITH e AS (SELECT c.id, c.serial, c.authority_id, c.profile, c.subject, c.requester,"
	    "  c.not_after FROM certificates c"
	    "  WHERE c.not_after >= now() AND c.not_after < now() + make_interval(days => $1::int)"
	    "  AND c.status = 'issued'),"
	    " l AS (SELECT * FROM e ORDER BY not_after, id LIMIT $2::bigint)"
	    " SELECT json_build_object('days', $1::int, 'total', (SELECT count(*) FROM e),"
	    "'certificates', (SELECT coalesce(json_agg(json_build_object("
	    "  'serial', encode(l.serial, 'hex'), 'authority', a.name, 'profile', l.profile,"
	    "  'subject', l.subject, 'requester', l.requester,"
	    "  'not_after', to_char(l.not_after " UTC ","
	    "  'days_left', floor(extract(epoch FROM l.not_after - now()) / 86400)::int)"
	    "  ORDER BY l.not_after, l.id), '[]'::json) FROM l JOIN authorities a"
	    "  ON a.id = l.authority_id))::text";
	struct db_params p = {0};

	if (days < 1 || limit < 1 || limit > DB_LIST_MAX * 10)
		return db_fail(err, DB_ERR_INVALID, "days must be positive, limit 1..%d",
		               DB_LIST_MAX * 10);
	db_param_int(&p, days);
	db_param_int(&p, (int64_t)limit);
	return json_query(db, sql, &p, json, err, "reporting expiring certificates");
}

/* Every object below carries the same leading keys (kind, name, principal, role, profile,
 * state, created_at, expires_at, last_used_at), so that the three lists make one table. */
enum db_status db_report_principals(struct db *db, char **json, struct db_err *err)
{
	static const char sql[] =
	    "SELECT json_build_object("
	    "'principals', (SELECT coalesce(json_agg(json_build_object("
	    "  'kind', 'principal', 'name', p.name, 'principal', p.name, 'role', p.role,"
	    "  'profile', '', 'state', CASE WHEN p.disabled THEN 'disabled' ELSE 'enabled' END,"
	    "  'created_at', to_char(p.created_at " UTC ", 'expires_at', NULL,"
	    "  'last_used_at', to_char(greatest(p.last_used_at, t.last) " UTC ","
	    "  'certificate_last_used_at', to_char(p.last_used_at " UTC ","
	    "  'token_last_used_at', to_char(t.last " UTC ", 'active_tokens', t.active)"
	    "  ORDER BY p.name), '[]'::json) FROM principals p LEFT JOIN LATERAL"
	    "  (SELECT max(last_used_at) AS last, count(*) FILTER (WHERE revoked_at IS NULL"
	    "   AND expires_at > now()) AS active FROM api_tokens WHERE principal_id = p.id) t"
	    "  ON true),"
	    "'api_tokens', (SELECT coalesce(json_agg(json_build_object("
	    "  'kind', 'api-token', 'name', t.name, 'principal', p.name, 'role', p.role,"
	    "  'profile', '', 'state', CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked'"
	    "   WHEN t.expires_at <= now() THEN 'expired' ELSE 'active' END,"
	    "  'created_at', to_char(t.created_at " UTC ","
	    "  'expires_at', to_char(t.expires_at " UTC ","
	    "  'last_used_at', to_char(t.last_used_at " UTC ", 'id', t.id,"
	    "  'revoked_at', to_char(t.revoked_at " UTC ") ORDER BY t.id), '[]'::json)"
	    "  FROM api_tokens t JOIN principals p ON p.id = t.principal_id),"
	    "'provisioning_tokens', (SELECT coalesce(json_agg(json_build_object("
	    "  'kind', 'provisioning-token', 'name', t.name, 'principal', t.created_by,"
	    "  'role', '', 'profile', t.profile, 'state', CASE WHEN t.revoked_at IS NOT NULL"
	    "   THEN 'revoked' WHEN t.uses >= t.max_uses THEN 'spent'"
	    "   WHEN t.expires_at <= now() THEN 'expired' ELSE 'active' END,"
	    "  'created_at', to_char(t.created_at " UTC ","
	    "  'expires_at', to_char(t.expires_at " UTC ","
	    "  'last_used_at', to_char(t.last_used_at " UTC ", 'id', t.id, 'uses', t.uses,"
	    "  'max_uses', t.max_uses, 'revoked_at', to_char(t.revoked_at " UTC ") ORDER BY t.id),"
	    "  '[]'::json) FROM provisioning_tokens t)"
	    ")::text";

	return json_query(db, sql, NULL, json, err, "reporting principals and tokens");
}

/* --- CRL publications (hsmca-crld) --- */

enum db_status db_crl_publication_add(struct db *db, int32_t authority_id, const char *scope,
                                      int delta, int64_t number, int64_t this_update,
                                      int64_t next_update, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	if ((rc = db_check_text("CRL scope", scope, 160, err)) != DB_OK)
		return rc;
	db_param_int(&p, authority_id);
	db_param_text(&p, scope);
	db_param_text(&p, delta ? "t" : "f");
	db_param_int(&p, number);
	db_param_int(&p, this_update);
	db_param_int(&p, next_update);
	/* INSERT only (hsmca_crld may not read the table back). */
	rc =
	    db_exec(db,
	            "INSERT INTO crl_publications (authority_id, scope, delta, number, this_update,"
	            " next_update) VALUES ($1, $2, $3::boolean, $4, to_timestamp($5),"
	            " to_timestamp($6))",
	            &p, &r, err, "recording CRL %lld of %s", (long long)number, scope);
	PQclear(r);
	return rc;
}

/* --- backup runs (hsmca backup) --- */

enum db_status db_backup_run_start(struct db *db, const char *archive, int64_t *id,
                                   struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;

	*id = 0;
	if ((rc = db_check_text("archive name", archive, 1024, err)) != DB_OK)
		return rc;
	db_param_text(&p, archive);
	rc = db_exec(db, "SELECT backup_run_start($1)", &p, &r, err, "recording a backup run");
	if (rc == DB_OK && (PQntuples(r) != 1 || db_get_int64(r, 0, 0, id) != 0))
		rc = db_fail(err, DB_ERR_QUERY, "recording a backup run: no id returned");
	PQclear(r);
	return rc;
}

enum db_status db_backup_run_finish(struct db *db, int64_t id, int success, int64_t size,
                                    const uint8_t sha256[32], const char *error, struct db_err *err)
{
	struct db_params p = {0};
	PGresult *r = NULL;
	enum db_status rc;
	char msg[1025];

	db_param_int(&p, id);
	db_param_text(&p, success ? "t" : "f");
	if (success) {
		db_param_int(&p, size);
		db_param_bytes(&p, sha256, 32);
		db_param_null(&p);
	} else {
		/* The error as text of at most 1024 bytes, cut before a character. */
		size_t n = error ? strlen(error) : 0;
		if (n > 1024)
			n = 1024;
		while (n > 0 && error[n] && ((unsigned char)error[n] & 0xc0) == 0x80)
			n--;
		snprintf(msg, sizeof(msg), "%.*s", (int)n, error ? error : "");
		db_param_null(&p);
		db_param_null(&p);
		db_param_text(&p, msg);
	}
	rc = db_exec(db, "SELECT backup_run_finish($1, $2::boolean, $3::bigint, $4::bytea, $5)", &p,
	             &r, err, "finishing backup run %lld", (long long)id);
	if (rc == DB_OK && (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "t")))
		rc = db_fail(err, DB_ERR_NOT_FOUND,
		             "backup run %lld is not a running run of this database role",
		             (long long)id);
	PQclear(r);
	return rc;
}

enum db_status db_backup_runs_list(struct db *db, int64_t before_id, size_t limit, char **json,
                                   struct db_err *err)
{
	/* Newest first; before_id 0: from the newest. "next" is the before of the next page. */
	static const char sql[] =
	    "WITH l AS (SELECT * FROM backup_runs WHERE ($1::bigint = 0 OR id < $1::bigint)"
	    "  ORDER BY id DESC LIMIT $2::bigint + 1)"
	    " SELECT json_build_object('runs', (SELECT coalesce(json_agg(json_build_object("
	    "  'id', id, 'run_by', run_by, 'archive', archive,"
	    "  'started_at', to_char(started_at " UTC ","
	    "  'finished_at', to_char(finished_at " UTC ", 'outcome', outcome,"
	    "  'size_bytes', size_bytes, 'sha256', encode(sha256, 'hex'), 'error', error)"
	    "  ORDER BY id DESC), '[]'::json)"
	    "  FROM (SELECT * FROM l ORDER BY id DESC LIMIT $2::bigint) x),"
	    "'next', (SELECT CASE WHEN count(*) > $2::bigint THEN min(id) + 1 END FROM l),"
	    "'last_success', (SELECT json_build_object('id', id, 'archive', archive,"
	    "  'finished_at', to_char(finished_at " UTC ","
	    "  'age_seconds', floor(extract(epoch FROM now() - finished_at))::bigint)"
	    "  FROM backup_runs WHERE outcome = 'success'"
	    "  ORDER BY finished_at DESC LIMIT 1))::text";
	struct db_params p = {0};

	if (before_id < 0 || limit < 1 || limit > DB_LIST_MAX)
		return db_fail(err, DB_ERR_INVALID, "before must be positive, limit 1..%d",
		               DB_LIST_MAX);
	db_param_int(&p, before_id);
	db_param_int(&p, (int64_t)limit);
	return json_query(db, sql, &p, json, err, "listing backup runs");
}
